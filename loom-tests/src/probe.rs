//! A model-only clock backend that watches how the kernel uses it.
//!
//! The loom models want three things from a backend that the product
//! backends (and `manual_clock`) would bury under state irrelevant to the
//! protocol being checked:
//!
//! * a way for a model thread to make one timer expire *now*
//!   ([`ProbeTimer::fire`]), which calls the very [`Fire`] the kernel
//!   handed over at `timer_create`, hence the real `timer_fire`;
//! * a tripwire: any `settime`, `gettime` or second `delete` on a timer the
//!   kernel already deleted panics with [`TOUCHED_DELETED`];
//! * counts the model can check after the threads are joined (settimes,
//!   gettimes, expirations delivered to the kernel).
//!
//! # Locks
//!
//! All from `itimer_kernel::sync`, so loom sees them:
//!
//! * `ProbeClock::timers` guards the list of every timer ever made (kept
//!   after deletion, for inspection). Taken only by `timer_create` and the
//!   model's look-ups; nothing is called with it held.
//! * Each timer's `state` lock guards its setting, its `Fire` and its
//!   counts, and is held while `Fire` runs. That is how `delete` waits out
//!   an in-flight fire, as the backend contract requires
//!   (`itimer_kernel::backend`): backend lock → `p_lock` → `it_mutex`.
//!
//! Time is data here: a setting is stored and reported back, never counted
//! down. Models decide when a timer expires.

use itimer_kernel::Errno;

use itimer_kernel::sync::{Arc, Mutex};
use itimer_kernel::time::{ItimerSpecNs, Nsec};
use itimer_kernel::{BackendTimer, ClockBackend, Credentials, Fire, SettimeFlags, TimerCreate};

/// The panic message of the tripwire: the kernel called a backend method
/// on a timer it had already deleted.
pub const TOUCHED_DELETED: &str = "kernel touched a timer it had deleted";

/// The probe clock. Register it for the clock ids a model uses.
#[derive(Debug, Default)]
pub struct ProbeClock {
    /// Every timer made, in creation order.
    timers: Mutex<Vec<Arc<ProbeTimer>>>,
}

/// What the per-timer lock guards.
#[derive(Debug, Default)]
struct ProbeState {
    /// The kernel's callback; `None` once deleted.
    fire: Option<Fire>,
    /// Set by `delete`; never cleared.
    deleted: bool,
    /// The last setting installed (time is data: never counted down).
    setting: ItimerSpecNs,
    /// `settime` calls.
    settimes: u32,
    /// `gettime` calls.
    gettimes: u32,
    /// Expirations handed to the kernel's `Fire` (sum of the `k`s).
    expirations: u64,
}

/// One timer of the probe clock, as the model sees it.
#[derive(Debug, Default)]
pub struct ProbeTimer {
    state: Mutex<ProbeState>,
}

/// Counts of what the kernel did with one timer (see [`ProbeTimer::counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeCounts {
    /// Whether the kernel deleted it.
    pub deleted: bool,
    /// `settime` calls.
    pub settimes: u32,
    /// `gettime` calls.
    pub gettimes: u32,
    /// Expirations delivered to the kernel's `Fire`.
    pub expirations: u64,
}

impl ProbeClock {
    /// A probe clock with no timers.
    pub fn new() -> ProbeClock {
        ProbeClock::default()
    }

    /// The `n`th timer made on this clock (creation order, deleted ones
    /// included). Panics if fewer were made: a model bug, not a kernel one.
    pub fn timer(&self, n: usize) -> Arc<ProbeTimer> {
        self.timers.lock()[n].clone()
    }

    /// How many timers were ever made.
    pub fn created(&self) -> usize {
        self.timers.lock().len()
    }

    /// How many timers exist (made and not deleted).
    pub fn live(&self) -> usize {
        let all: Vec<_> = self.timers.lock().clone();
        all.iter().filter(|t| !t.counts().deleted).count()
    }
}

impl ProbeTimer {
    /// Makes `k` expirations happen now: calls the kernel's `Fire` (the
    /// real `timer_fire`) with the timer's lock held, as a backend does.
    /// Returns `false`, doing nothing, if the timer was deleted.
    pub fn fire(&self, k: u64) -> bool {
        let mut s = self.state.lock();
        let Some(fire) = &s.fire else {
            return false;
        };
        fire.fire(k);
        s.expirations += k;
        true
    }

    /// What the kernel did with this timer so far.
    pub fn counts(&self) -> ProbeCounts {
        let s = self.state.lock();
        ProbeCounts {
            deleted: s.deleted,
            settimes: s.settimes,
            gettimes: s.gettimes,
            expirations: s.expirations,
        }
    }
}

/// The kernel's handle on a probe timer.
struct ProbeHandle(Arc<ProbeTimer>);

impl BackendTimer for ProbeHandle {
    fn settime(
        &self,
        _cred: &Credentials,
        _flags: SettimeFlags,
        spec: ItimerSpecNs,
    ) -> Result<ItimerSpecNs, Errno> {
        let mut s = self.0.state.lock();
        assert!(!s.deleted, "{TOUCHED_DELETED} (settime)");
        s.settimes += 1;
        Ok(std::mem::replace(&mut s.setting, spec))
    }

    fn gettime(&self) -> ItimerSpecNs {
        let mut s = self.0.state.lock();
        assert!(!s.deleted, "{TOUCHED_DELETED} (gettime)");
        s.gettimes += 1;
        s.setting
    }

    fn delete(&self) {
        let mut s = self.0.state.lock();
        assert!(!s.deleted, "{TOUCHED_DELETED} (second delete)");
        s.deleted = true;
        s.fire = None;
        s.setting = ItimerSpecNs::default();
    }
}

impl ClockBackend for ProbeClock {
    fn name(&self) -> &'static str {
        "loom-probe"
    }

    fn clock_settime(&self, _now: Nsec) -> Result<(), Errno> {
        // Time is data in a model: the probe clock cannot be set.
        Err(Errno::EINVAL)
    }

    fn clock_gettime(&self) -> Result<Nsec, Errno> {
        Ok(Nsec::ZERO)
    }

    fn clock_getres(&self) -> Result<Nsec, Errno> {
        Ok(Nsec(1))
    }

    fn timer_create(&self, req: TimerCreate) -> Result<Box<dyn BackendTimer>, Errno> {
        let timer = Arc::new(ProbeTimer {
            state: Mutex::new(ProbeState {
                fire: Some(req.fire),
                ..ProbeState::default()
            }),
        });
        self.timers.lock().push(timer.clone());
        Ok(Box::new(ProbeHandle(timer)))
    }
}
