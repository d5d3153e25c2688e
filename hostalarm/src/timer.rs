//! Emulator timers: create, arm (`mod`), delete, query, free.
//!
//! Models `QEMUTimer` and `qemu_new_timer` / `qemu_mod_timer` /
//! `qemu_del_timer` / `qemu_timer_pending` / `qemu_timer_expire_time_ns` /
//! `qemu_free_timer` of QEMU's `qemu-timer.c`.
//!
//! A [`Timer`] owns its slot in its clock's timer table and frees it when
//! dropped. A [`TimerHandle`] names the same timer (slot key plus a
//! generation) and can arm, delete and query it while the owner lives;
//! once the owner is dropped every handle goes inert (`arm` is `ENOENT`,
//! `del` does nothing). The callback is given a handle on its own timer.
//!
//! # The delete guarantee
//!
//! After [`TimerHandle::del`] returns on a thread that is not running
//! timers, the timer's callback is not running and will not start unless
//! the timer is armed again. Called from a callback or reset notifier (on
//! the runner thread) it never waits, so a callback can delete itself or
//! any other timer. See [`crate::runner`] for how the runner records the
//! running callback.
//!
//! # Locks
//!
//! `arm` takes the clock's list lock, releases it, then notifies the host
//! (phase lock). `del` takes `run` then the list lock, and waits on the run
//! condvar with neither the list lock nor anything else held. A freed
//! timer's callback is dropped after every lock is released (its captures
//! may arm timers when dropped).

use nix::errno::Errno;

use crate::clock_state::{ClockType, RunningTimer, ThreadKey};
use crate::time::Scale;
use crate::timerlist::TimerQueue;

pub use crate::clock_state::{Callback, TimerHandle};

impl TimerHandle {
    /// The clock the timer runs on.
    pub fn clock(&self) -> ClockType {
        self.kind
    }

    /// The unit of [`arm`](Self::arm) and [`expire_time`](Self::expire_time).
    pub fn scale(&self) -> Scale {
        self.scale
    }

    pub(crate) fn running_id(&self) -> RunningTimer {
        RunningTimer {
            kind: self.kind,
            key: self.key,
            generation: self.generation,
        }
    }

    /// Arms the timer to expire at `expire` (absolute, in [`Self::scale`]
    /// units on its clock), replacing any earlier arming (`qemu_mod_timer`).
    /// A time already past runs it on the host's next pass. If it becomes
    /// the first timer of its clock, the host is told (and wakes if it
    /// would otherwise sleep past it).
    ///
    /// Errors: `EOVERFLOW` if `expire` in ns does not fit an `i64`;
    /// `ENOENT` if the timer was freed.
    #[doc(alias = "mod")]
    pub fn arm(&self, expire: i64) -> Result<(), Errno> {
        self.arm_ns(self.scale.to_ns(expire)?)
    }

    /// [`arm`](Self::arm) with the expire time in nanoseconds, whatever the
    /// timer's scale.
    pub fn arm_ns(&self, expire_ns: i64) -> Result<(), Errno> {
        let host_deadline = {
            let mut st = self.inner.cell(self.kind).state.lock();
            match st.slots.get(self.key.0) {
                Some(s) if s.generation == self.generation => {}
                _ => return Err(Errno::ENOENT),
            }
            st.list.arm(self.key, expire_ns);
            let first = st.list.first().map(|(_, k)| k) == Some(self.key);
            if first {
                self.inner.host_deadline_locked(self.kind, &st)
            } else {
                None
            }
        };
        if let Some(d) = host_deadline {
            self.inner.notify_added(d);
        }
        Ok(())
    }

    /// Disarms the timer (`qemu_del_timer`). From a thread that is not
    /// running timers, waits until the timer's callback is not running;
    /// afterwards it will not start unless armed again. From a callback or
    /// reset notifier it never waits. Does nothing for a freed timer.
    ///
    /// Because it may wait for the callback, do not call it while holding a
    /// lock that the callback takes (the classic `timer_delete` rule).
    pub fn del(&self) {
        let me = ThreadKey::current();
        let mut run = self.inner.run.lock();
        {
            let mut st = self.inner.cell(self.kind).state.lock();
            match st.slots.get(self.key.0) {
                Some(s) if s.generation == self.generation => {}
                _ => return,
            }
            st.list.cancel(self.key);
        }
        let id = self.running_id();
        while run.current == Some(id) && run.runner.is_some_and(|r| r != me) {
            run = self.inner.run_cv.wait(run);
        }
    }

    /// Whether the timer is armed (QEMU's `qemu_timer_pending`; in this
    /// project `pending` means only a timer's count of unnotified
    /// expirations). False once freed.
    #[doc(alias = "qemu_timer_pending")]
    pub fn is_armed(&self) -> bool {
        self.expire_time_ns().is_some()
    }

    /// The armed expire time in [`Self::scale`] units (rounded down), or
    /// `None` when not armed.
    pub fn expire_time(&self) -> Option<i64> {
        self.expire_time_ns().map(|ns| self.scale.from_ns(ns))
    }

    /// The armed expire time in ns, or `None` when not armed
    /// (`qemu_timer_expire_time_ns`, which says -1).
    pub fn expire_time_ns(&self) -> Option<i64> {
        let st = self.inner.cell(self.kind).state.lock();
        match st.slots.get(self.key.0) {
            Some(s) if s.generation == self.generation => st.list.expire_of(self.key),
            _ => None,
        }
    }

    /// Whether the owning [`Timer`] still lives.
    pub fn is_live(&self) -> bool {
        let st = self.inner.cell(self.kind).state.lock();
        matches!(st.slots.get(self.key.0), Some(s) if s.generation == self.generation)
    }

    /// Deletes the timer (with the [`del`](Self::del) guarantee) and frees
    /// its slot. Used by [`Timer`]'s drop.
    fn free(&self) {
        self.del();
        let removed = {
            let mut st = self.inner.cell(self.kind).state.lock();
            match st.slots.get(self.key.0) {
                Some(s) if s.generation == self.generation => Some(st.slots.remove(self.key.0)),
                _ => None,
            }
        };
        // Dropped here, with no lock held.
        drop(removed);
    }
}

/// An emulator timer; frees itself when dropped (`qemu_free_timer`), after
/// deleting itself with the [`TimerHandle::del`] guarantee. Dereferences to
/// its [`TimerHandle`] for arming and queries.
pub struct Timer {
    handle: TimerHandle,
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Timer").field(&self.handle).finish()
    }
}

impl Timer {
    pub(crate) fn new(handle: TimerHandle) -> Self {
        Timer { handle }
    }

    /// A handle naming this timer (inert once this timer is dropped).
    pub fn handle(&self) -> TimerHandle {
        self.handle.clone()
    }
}

impl std::ops::Deref for Timer {
    type Target = TimerHandle;

    fn deref(&self) -> &TimerHandle {
        &self.handle
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.handle.free();
    }
}
