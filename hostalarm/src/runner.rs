//! Running expired timers: the runner token and `run_timers`.
//!
//! Models `qemu_run_timers` of QEMU's `qemu-timer.c`, plus the bookkeeping
//! QEMU lacks for deleting a timer whose callback runs on another thread.
//!
//! # State machine (`ClocksInner::run`, guarded by the `run` lock)
//!
//! ```text
//!   runner: None ──acquire──▶ Some(thread) ──release──▶ None
//!   current: None ──pop (under run + list lock)──▶ Some(timer)
//!            ◀──callback returned (under run lock)──┘
//! ```
//!
//! * At most one thread (the *runner*) runs timers of a clock group at a
//!   time; it holds a `RunnerToken`. Another thread that wants to run
//!   timers waits; the runner itself asking again (from a callback) gets
//!   `EDEADLK`.
//! * `current` names the timer whose callback is running, set in the same
//!   critical section (run lock, then list lock) that pops it from the list.
//!   [`crate::timer::TimerHandle::del`] cancels under the same two locks and
//!   then waits while `current` is its timer and the runner is another
//!   thread. So once `del` returns, the callback is neither running nor
//!   about to run.
//!
//! # `run_timers` semantics
//!
//! * The clock is read **once**; every timer with expire time `<=` that
//!   reading runs, in expire order, equal expire times in arming order.
//! * Each timer is removed from the list before its callback runs, so the
//!   callback may re-arm it (even at a time already due: it then runs again
//!   in the same pass, as in QEMU, so a callback that always re-arms itself
//!   in the past never lets the pass end) or delete any timer.
//! * Disabling the clock from a callback stops the pass.
//! * No lock is held while a callback runs. A callback that panics unwinds
//!   into the host; the token and `current` are cleared on the way out, and
//!   the timer's callback is lost (the timer never runs again).
//!
//! Thread identity: a thread is named by its `ThreadId` from
//! `itimer_kernel::sync::thread` (std's or loom's).

use nix::errno::Errno;

use itimer_kernel::sync::{Arc, thread};

use crate::clock::{ClockType, ClocksInner, WallStep};
use crate::timer::TimerHandle;
use crate::timerlist::{TimerKey, TimerQueue};

/// Names a thread (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ThreadKey(thread::ThreadId);

impl ThreadKey {
    pub(crate) fn current() -> ThreadKey {
        ThreadKey(thread::current().id())
    }
}

/// Names a timer across clocks and slot reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunningTimer {
    pub(crate) kind: ClockType,
    pub(crate) key: TimerKey,
    pub(crate) generation: u64,
}

/// Guarded by `ClocksInner::run`.
#[derive(Debug, Default)]
pub(crate) struct RunState {
    /// The thread holding the runner token.
    pub(crate) runner: Option<ThreadKey>,
    /// The timer whose callback is running (on the runner thread).
    pub(crate) current: Option<RunningTimer>,
}

/// The right to run timers of one clock group. Released on drop.
pub(crate) struct RunnerToken {
    inner: Arc<ClocksInner>,
}

/// Clears `current` when a callback returns or unwinds.
struct CurrentGuard<'a> {
    inner: &'a ClocksInner,
}

impl Drop for CurrentGuard<'_> {
    fn drop(&mut self) {
        self.inner.run.lock().current = None;
        self.inner.run_cv.notify_all();
    }
}

impl RunnerToken {
    /// Takes the token, waiting while another thread holds it. `EDEADLK`
    /// if the calling thread holds it already (a callback).
    pub(crate) fn acquire(inner: &Arc<ClocksInner>) -> Result<RunnerToken, Errno> {
        let me = ThreadKey::current();
        let mut run = inner.run.lock();
        loop {
            match run.runner {
                None => break,
                Some(t) if t == me => return Err(Errno::EDEADLK),
                Some(_) => run = inner.run_cv.wait(run),
            }
        }
        run.runner = Some(me);
        Ok(RunnerToken {
            inner: inner.clone(),
        })
    }

    /// Runs `kind`'s expired timers, reading the clock once. Returns how
    /// many callbacks ran.
    pub(crate) fn run_clock(&self, kind: ClockType) -> usize {
        let inner = &*self.inner;
        let cell = inner.cell(kind);
        let now = inner.now(kind);
        let mut ran = 0;
        loop {
            let popped = {
                let mut run = inner.run.lock();
                let mut st = cell.state.lock();
                if !st.enabled {
                    None
                } else if let Some((_, key)) = st.list.pop_due(now) {
                    let slot = st
                        .slots
                        .get_mut(key.0)
                        .expect("an armed timer has a slot: free cancels first");
                    let (generation, scale) = (slot.generation, slot.scale);
                    let cb = slot.callback.take();
                    run.current = Some(RunningTimer {
                        kind,
                        key,
                        generation,
                    });
                    Some((key, generation, scale, cb))
                } else {
                    None
                }
            };
            let Some((key, generation, scale, cb)) = popped else {
                return ran;
            };
            let guard = CurrentGuard { inner };
            let Some(mut cb) = cb else {
                // Lost to an earlier panic: nothing to run.
                drop(guard);
                continue;
            };
            let handle = TimerHandle::new(self.inner.clone(), kind, key, generation, scale);
            cb(&handle);
            ran += 1;
            drop(guard);
            let leftover = {
                let mut st = cell.state.lock();
                match st.slots.get_mut(key.0) {
                    Some(s) if s.generation == generation && s.callback.is_none() => {
                        s.callback = Some(cb);
                        None
                    }
                    _ => Some(cb),
                }
            };
            // A timer freed by its own callback: drop the callback here,
            // with no lock held.
            drop(leftover);
        }
    }

    /// Runs every HOST reset notifier with `step`.
    pub(crate) fn fire_reset_notifiers(&self, step: &WallStep) -> usize {
        let notifiers: Vec<_> = self
            .inner
            .reset_notifiers
            .lock()
            .iter()
            .map(|(_, n)| n.clone())
            .collect();
        for n in &notifiers {
            n(step);
        }
        notifiers.len()
    }
}

impl Drop for RunnerToken {
    fn drop(&mut self) {
        let mut run = self.inner.run.lock();
        run.runner = None;
        run.current = None;
        drop(run);
        self.inner.run_cv.notify_all();
    }
}
