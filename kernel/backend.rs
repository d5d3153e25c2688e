//! The clock-backend contract and registry, and the `clock_*` syscalls.
//!
//! Models illumos `clock_backend_t`, `clock_add_backend` and
//! `clock_get_backend` (`usr/src/uts/common/os/timer.c`, `sys/timer.h`).
//!
//! A [`ClockBackend`] answers for one clock: reading and setting it, its
//! resolution, and making timers on it. Each timer it makes is a
//! [`BackendTimer`], the per-timer half that illumos keeps behind
//! `it_arg`. The kernel hands every new backend timer a [`Fire`]: the
//! backend calls it with the number of expirations that just happened
//! (`k >= 1`, all at once for missed periods, never one call per period).
//!
//! # Contract a backend must keep
//!
//! * `BackendTimer::settime` returns the previous setting read atomically
//!   with installing the new one.
//! * After `BackendTimer::delete` returns, the backend never calls the timer's
//!   [`Fire`] again, is not inside it, and has dropped it.
//! * The kernel never holds `p_lock` or `it_mutex` while calling a
//!   `BackendTimer` method, so a backend may call [`Fire`] (which takes them)
//!   while holding its own per-timer lock: the backend lock comes before
//!   `p_lock` in the lock order (stated once, in [`crate`]).
//!
//! # The registry
//!
//! [`ClockRegistry`] maps illumos clock ids to backends, aliases included
//! (0 and 3 are both `CLOCK_REALTIME`; 2 is both `CLOCK_PROF` and
//! `CLOCK_THREAD_CPUTIME_ID`; 4 is both `CLOCK_MONOTONIC` and
//! `CLOCK_HIGHRES`), with room for our own ids from `CLOCK_OURS_BASE`. It is
//! filled before the kernel boots and never changes afterwards, so lookups
//! take no lock. Backends are `std::sync::Arc<dyn ...>` trait objects:
//! immutable configuration, not protocol state, so loom need not see them.

use std::sync::Arc as StdArc;

use bitflags::bitflags;
use nix::errno::Errno;

use crate::abi::{CLOCK_MAX, SIGALRM, SIGEV_SIGNAL, Sigevent};
use crate::ids::{Credentials, LwpId, Pid};
use crate::time::{ItimerSpecNs, Nsec};

bitflags! {
    /// `timer_settime` flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct SettimeFlags: i32 {
        /// The value is an absolute time on the timer's clock.
        const ABSTIME = crate::abi::TIMER_ABSTIME;
    }
}

/// The callback a backend invokes when a timer expires: `fire(k)` reports
/// `k >= 1` expirations in one step.
pub struct Fire(Box<dyn Fn(u64) + Send + Sync>);

impl Fire {
    /// Wraps a closure.
    pub fn new(f: impl Fn(u64) + Send + Sync + 'static) -> Fire {
        Fire(Box::new(f))
    }

    /// Reports `expirations` expirations (ignored when zero).
    pub fn fire(&self, expirations: u64) {
        if expirations > 0 {
            (self.0)(expirations)
        }
    }
}

impl std::fmt::Debug for Fire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fire(..)")
    }
}

/// What a backend is told when asked to make a timer.
#[derive(Debug)]
pub struct TimerCreate {
    /// Called on each expiration.
    pub fire: Fire,
    /// The owning process.
    pub pid: Pid,
    /// The creating LWP (the timer's initial binding).
    pub lwp: LwpId,
    /// Whether the creator is privileged (exempt from resolution guards).
    pub privileged: bool,
}

/// The per-timer half of a backend (illumos keeps it behind `it_arg`).
pub trait BackendTimer: Send + Sync {
    /// Installs `spec` (relative, or absolute on the clock with
    /// [`SettimeFlags::ABSTIME`]; a zero value disarms and stores the
    /// interval) and returns the previous setting, read atomically with the
    /// set. `cred` is the caller's (for guards such as HIGHRES' 200 µs
    /// floor).
    fn settime(
        &self,
        cred: &Credentials,
        flags: SettimeFlags,
        spec: ItimerSpecNs,
    ) -> Result<ItimerSpecNs, Errno>;

    /// The time remaining (zero if disarmed or due but not yet fired) and
    /// the interval.
    fn gettime(&self) -> ItimerSpecNs;

    /// Stops the timer for good: when this returns, `Fire` is not running,
    /// will never run again, and has been dropped.
    fn delete(&self);

    /// The timer is now bound to `lwp` (see the backend for what that
    /// means on its clock).
    fn lwpbind(&self, lwp: LwpId) -> Result<(), Errno> {
        let _ = lwp;
        Ok(())
    }

    /// The LWP the timer was bound to has exited; the timer keeps running.
    fn lwpexit(&self, lwp: LwpId) {
        let _ = lwp;
    }
}

/// One clock's backend (illumos `clock_backend_t`).
pub trait ClockBackend: Send + Sync {
    /// A short name for diagnostics.
    fn name(&self) -> &'static str;

    /// Sets the clock. Called only after the caller's privilege and the
    /// timespec have been checked.
    fn clock_settime(&self, now: Nsec) -> Result<(), Errno>;

    /// Reads the clock.
    fn clock_gettime(&self) -> Result<Nsec, Errno>;

    /// The clock's resolution: the granularity with which its timers really
    /// fire.
    fn clock_getres(&self) -> Result<Nsec, Errno>;

    /// Makes a timer on this clock.
    fn timer_create(&self, req: TimerCreate) -> Result<Box<dyn BackendTimer>, Errno>;

    /// The sigevent a timer gets when created with none (`evp == NULL`);
    /// its `sigev_value` is replaced by the timer id.
    fn default_sigevent(&self) -> Sigevent {
        Sigevent {
            sigev_notify: SIGEV_SIGNAL,
            sigev_signo: SIGALRM,
            ..Sigevent::default()
        }
    }
}

/// The clock id → backend table (illumos `clock_backend[]`).
#[derive(Clone, Default)]
pub struct ClockRegistry {
    /// Indexed by clock id; `None` is an unknown clock.
    slots: Vec<Option<StdArc<dyn ClockBackend>>>,
}

impl std::fmt::Debug for ClockRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (id, b) in self.slots.iter().enumerate() {
            if let Some(b) = b {
                m.entry(&id, &b.name());
            }
        }
        m.finish()
    }
}

impl ClockRegistry {
    /// An empty registry: every clock unknown.
    pub fn new() -> ClockRegistry {
        ClockRegistry {
            slots: vec![None; CLOCK_MAX as usize],
        }
    }

    /// Registers `backend` for `clock` (call once per id, aliases
    /// included). `EINVAL` for an id outside `0..CLOCK_MAX`.
    pub fn clock_add_backend(
        &mut self,
        clock: i32,
        backend: StdArc<dyn ClockBackend>,
    ) -> Result<(), Errno> {
        let slot = usize::try_from(clock)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .ok_or(Errno::EINVAL)?;
        *slot = Some(backend);
        Ok(())
    }

    /// The backend for `clock`, if any.
    pub fn clock_get_backend(&self, clock: i32) -> Option<&StdArc<dyn ClockBackend>> {
        usize::try_from(clock)
            .ok()
            .and_then(|i| self.slots.get(i))
            .and_then(Option::as_ref)
    }

    /// The registered clock ids, ascending.
    pub fn clock_ids(&self) -> impl Iterator<Item = i32> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, b)| b.is_some())
            .map(|(i, _)| i as i32)
    }

    /// `clock_gettime`: `EINVAL` for an unknown clock, else the backend's
    /// answer.
    pub fn clock_gettime(&self, clock: i32) -> Result<Nsec, Errno> {
        self.clock_get_backend(clock)
            .ok_or(Errno::EINVAL)?
            .clock_gettime()
    }

    /// `clock_getres`: `EINVAL` for an unknown clock, else the backend's
    /// answer.
    pub fn clock_getres(&self, clock: i32) -> Result<Nsec, Errno> {
        self.clock_get_backend(clock)
            .ok_or(Errno::EINVAL)?
            .clock_getres()
    }

    /// `clock_settime`, checking in illumos' order: unknown clock `EINVAL`,
    /// then privilege `EPERM`, then the timespec `EINVAL`, then the
    /// backend's answer.
    pub fn clock_settime(
        &self,
        cred: &Credentials,
        clock: i32,
        ts: &crate::abi::Timespec,
    ) -> Result<(), Errno> {
        let backend = self.clock_get_backend(clock).ok_or(Errno::EINVAL)?;
        if !cred.privileged {
            return Err(Errno::EPERM);
        }
        let now = Nsec::from_timespec(ts)?;
        backend.clock_settime(now)
    }
}
