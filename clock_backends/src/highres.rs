//! `CLOCK_HIGHRES` / `CLOCK_MONOTONIC` (id 4): host monotonic time.
//!
//! Models illumos `clock_highres.c`. Timers run on the emulator REALTIME
//! clock (host monotonic). `clock_settime` is `EINVAL`: the clock cannot
//! be set.
//!
//! The DoS guard: an unprivileged caller's relative value or interval under
//! [`HIGHRES_MIN_NS`] (200 µs) is raised to it; privileged callers are
//! exempt, and absolute values are not raised (they are points in time).

use std::sync::Arc as StdArc;

use nix::errno::Errno;

use itimer_kernel::{BackendTimer, ClockBackend, Nsec, TimerCreate};

use crate::bases::{Base, Bases};
use crate::emu_timer::{BasePolicy, EmuTimer, ResolutionGuard};

/// The smallest value or interval an unprivileged caller gets, ns
/// (illumos' `clock_highres_interval_min`).
pub const HIGHRES_MIN_NS: u64 = 200_000;

/// The HIGHRES backend.
#[derive(Debug)]
pub struct HighresBackend {
    bases: StdArc<Bases>,
}

impl HighresBackend {
    /// The backend over `bases`.
    pub fn new(bases: StdArc<Bases>) -> HighresBackend {
        HighresBackend { bases }
    }
}

impl ClockBackend for HighresBackend {
    fn name(&self) -> &'static str {
        "highres"
    }

    fn clock_settime(&self, _now: Nsec) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }

    fn clock_gettime(&self) -> Result<Nsec, Errno> {
        Ok(Nsec(self.bases.now(Base::Mono).max(0) as u64))
    }

    fn clock_getres(&self) -> Result<Nsec, Errno> {
        Ok(Nsec(self.bases.resolution_ns()))
    }

    fn timer_create(&self, req: TimerCreate) -> Result<Box<dyn BackendTimer>, Errno> {
        Ok(Box::new(EmuTimer::new(
            &self.bases,
            BasePolicy::Fixed(Base::Mono),
            Some(ResolutionGuard {
                min_ns: HIGHRES_MIN_NS,
            }),
            req.fire,
            req.lwp,
        )))
    }
}
