//! `CLOCK_VM` (id 16, ours): guest time, on the emulator VIRTUAL clock.
//!
//! The clock advances only while the VM runs. Timers on it stop with the VM
//! and their remaining time freezes, so a scenario driven on it is
//! reproducible whatever the host does meanwhile. It cannot be set by a
//! syscall (`EINVAL`): the VM's owner stops, starts, warps and steps it
//! through the booted kernel.

use std::sync::Arc as StdArc;

use nix::errno::Errno;

use itimer_kernel::{BackendTimer, ClockBackend, Nsec, TimerCreate};

use crate::bases::{Base, Bases};
use crate::emu_timer::{BasePolicy, EmuTimer};

/// The VM clock backend.
#[derive(Debug)]
pub struct VmBackend {
    bases: StdArc<Bases>,
}

impl VmBackend {
    /// The backend over `bases`.
    pub fn new(bases: StdArc<Bases>) -> VmBackend {
        VmBackend { bases }
    }
}

impl ClockBackend for VmBackend {
    fn name(&self) -> &'static str {
        "vm"
    }

    fn clock_settime(&self, _now: Nsec) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }

    fn clock_gettime(&self) -> Result<Nsec, Errno> {
        Ok(Nsec(self.bases.now(Base::Vm).max(0) as u64))
    }

    fn clock_getres(&self) -> Result<Nsec, Errno> {
        Ok(Nsec(self.bases.resolution_ns()))
    }

    fn timer_create(&self, req: TimerCreate) -> Result<Box<dyn BackendTimer>, Errno> {
        Ok(Box::new(EmuTimer::new(
            &self.bases,
            BasePolicy::Fixed(Base::Vm),
            None,
            req.fire,
            req.lwp,
        )))
    }
}
