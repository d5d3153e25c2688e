//! `CLOCK_REALTIME` (ids 3 and 0): the model's wall clock.
//!
//! Models illumos `clock_realtime.c`, with POSIX's rule for absolute timers
//! that illumos does not follow.
//!
//! * Reading: host wall time plus the model's offset ([`Bases`]).
//!   `clock_settime` changes the offset; the host clock is never touched.
//! * Relative timers run on host monotonic time: `clock_settime` does not
//!   move them.
//! * Absolute (`TIMER_ABSTIME`) timers run on the model's wall clock and
//!   follow `clock_settime`: stepping past a deadline fires the timer on
//!   the host's next pass (with every missed period counted), stepping back
//!   delays it. They also follow steps of the host's own wall clock, which
//!   the HOST emulator clock tracks.
//!
//! # Locks
//!
//! `live` (the registry of this clock's timers, for re-arming them after a
//! `clock_settime`) is a leaf: it is only held to copy or edit the list,
//! never while a timer's state lock is taken.
//!
//! # Deviation from illumos
//!
//! illumos arms absolute REALTIME timers as relative callouts, so a later
//! `clock_settime` does not move them; POSIX (and Linux and FreeBSD) say
//! they must follow the clock. We follow POSIX (see ARCHITECTURE.md).

use std::sync::{Arc as StdArc, Weak};

use nix::errno::Errno;
use slab::Slab;

use itimer_kernel::sync::Mutex;
use itimer_kernel::{BackendTimer, ClockBackend, Nsec, TimerCreate};

use crate::bases::{Base, Bases};
use crate::emu_timer::{BasePolicy, EmuShared, EmuTimer};

/// The REALTIME backend.
#[derive(Debug)]
pub struct RealtimeBackend {
    bases: StdArc<Bases>,
    /// This clock's timers, for `clock_settime`. Leaf lock.
    live: StdArc<Mutex<Slab<Weak<EmuShared>>>>,
}

impl RealtimeBackend {
    /// The backend over `bases`.
    pub fn new(bases: StdArc<Bases>) -> RealtimeBackend {
        RealtimeBackend {
            bases,
            live: StdArc::new(Mutex::new(Slab::new())),
        }
    }
}

impl ClockBackend for RealtimeBackend {
    fn name(&self) -> &'static str {
        "realtime"
    }

    fn clock_settime(&self, now: Nsec) -> Result<(), Errno> {
        let now = i64::try_from(now.0).map_err(|_| Errno::EINVAL)?;
        self.bases.set_wall(now);
        let timers: Vec<Weak<EmuShared>> =
            self.live.lock().iter().map(|(_, w)| w.clone()).collect();
        for t in timers.iter().filter_map(Weak::upgrade) {
            t.rebase_wall();
        }
        Ok(())
    }

    fn clock_gettime(&self) -> Result<Nsec, Errno> {
        Ok(Nsec(self.bases.now(Base::Wall).max(0) as u64))
    }

    fn clock_getres(&self) -> Result<Nsec, Errno> {
        Ok(Nsec(self.bases.resolution_ns()))
    }

    fn timer_create(&self, req: TimerCreate) -> Result<Box<dyn BackendTimer>, Errno> {
        let timer = EmuTimer::new(
            &self.bases,
            BasePolicy::RelativeMonoAbsoluteWall,
            None,
            req.fire,
            req.lwp,
        );
        let key = self.live.lock().insert(timer.downgrade());
        let live = self.live.clone();
        Ok(Box::new(timer.on_delete(move || {
            live.lock().try_remove(key);
        })))
    }
}
