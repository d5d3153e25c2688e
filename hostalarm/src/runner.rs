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
//! * Deliberate deviation from QEMU: when a callback re-arms its own timer
//!   at a time already due, the clock is read again and the pass goes on
//!   with the earlier of the two readings. Monotonic clocks never read
//!   earlier, so nothing changes for them. WALL does when the wall clock
//!   is stepped back during the pass: a callback that re-arms "one period
//!   after the wall time now" (as `clock_backends`' `CLOCK_REALTIME` timers do)
//!   would otherwise run again and again until the wall clock caught up
//!   with the first reading, an hour later after a one-hour step; now the
//!   timer waits for its time on the stepped clock, like every other.
//! * Disabling the clock from a callback stops the pass.
//! * No lock is held while a callback runs. A callback that panics unwinds
//!   into the host; the token and `current` are cleared on the way out, and
//!   the timer's callback is lost (the timer never runs again).
//!
//! Thread identity: a thread is named by its `ThreadId` from
//! `itimer_sync::thread` (std's or loom's).

use nix::errno::Errno;

use itimer_sync::Arc;

use crate::clock_state::{ClockType, ClocksInner, RunningTimer, ThreadKey, TimerHandle};
use crate::reset::WallStep;
use crate::timerlist::TimerQueue;

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
        let mut now = inner.now(kind);
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
                let leftover = match st.slots.get_mut(key.0) {
                    Some(s) if s.generation == generation && s.callback.is_none() => {
                        s.callback = Some(cb);
                        None
                    }
                    _ => Some(cb),
                };
                if st.list.expire_of(key).is_some_and(|e| e <= now) {
                    // Re-armed in the past: is it, by the clock now?
                    now = now.min(inner.now_locked(kind, &st));
                }
                leftover
            };
            // A timer freed by its own callback: drop the callback here,
            // with no lock held.
            drop(leftover);
        }
    }

    /// Runs every WALL reset notifier with `step`.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clocks, ClocksConfig};
    use crate::time::{NS_PER_MS, NS_PER_SEC, Scale, SimTime, TimeSource};
    use itimer_sync::Mutex;

    const W0: i64 = 1_700_000_000 * NS_PER_SEC;

    /// A WALL timer whose callback re-arms it one period after the wall
    /// time it reads, while the wall clock is stepped back an hour during
    /// the pass (here: by the first callback itself). It must run once and
    /// wait for its time on the stepped clock, not run again until the
    /// wall clock catches up with the pass's reading.
    #[test]
    fn wall_step_back_during_a_pass_does_not_rerun_a_self_rearming_timer() {
        let time = Arc::new(SimTime::new(0, W0));
        let clocks = Clocks::new(TimeSource::Sim(time.clone()), ClocksConfig::default()).unwrap();
        let runs = Arc::new(Mutex::new(Vec::new()));
        let (t2, r2, c2) = (time.clone(), runs.clone(), clocks.clone());
        let timer = clocks.wall().new_timer(Scale::Ns, move |me| {
            let mut runs = r2.lock();
            runs.push(c2.now(ClockType::Wall));
            if runs.len() == 1 {
                t2.step_wall(-3_600 * NS_PER_SEC);
            }
            // Bounded, so a regression fails instead of hanging.
            if runs.len() < 100 {
                me.arm_ns(c2.now(ClockType::Wall) + NS_PER_MS).unwrap();
            }
        });
        timer.arm(W0 + 5).unwrap();
        time.set_mono(10);
        time.step_wall(10);
        assert_eq!(clocks.wall().run_timers(), Ok(1));
        let back = W0 + 20 - 3_600 * NS_PER_SEC;
        assert_eq!(*runs.lock(), [W0 + 20]);
        assert_eq!(timer.expire_time(), Some(back + NS_PER_MS));
        // On a monotonic clock the QEMU rule still holds: re-armed at a
        // time already due, it runs again in the same pass.
        let again = Arc::new(Mutex::new(0));
        let (a2, c3) = (again.clone(), clocks.clone());
        let rt = clocks.mono().new_timer(Scale::Ns, move |me| {
            let mut n = a2.lock();
            *n += 1;
            if *n < 3 {
                me.arm_ns(c3.now(ClockType::Mono) - 1).unwrap();
            }
        });
        rt.arm(0).unwrap();
        assert_eq!(clocks.mono().run_timers(), Ok(3));
        assert_eq!(*again.lock(), 3);
    }
}
