//! One pass of the host: consume, run, re-arm. Shared, unchanged, by the
//! real timer loop ([`crate::timer_loop`]) and the simulated host
//! ([`crate::sim`]), so the simulation exercises the real re-arm logic.
//!
//! Models `host_alarm_handler` + `qemu_run_all_timers` +
//! `qemu_rearm_alarm_timer` of QEMU's `qemu-timer.c`, rebuilt as the
//! timerfd review asked:
//!
//! 1. the sleeper is marked awake ([`Notifier::begin_run`]);
//! 2. the alarm's notification is consumed **first** (if the alarm fd was
//!    readable); a consumed expiry means the one-shot host timer is now
//!    disarmed;
//! 3. the wall clock is checked against the monotonic clock, and WALL reset
//!    notifiers fire on a step (backwards, or forwards past the threshold);
//! 4. every enabled clock runs its expired timers (MONO, WALL,
//!    GUEST), holding the runner token;
//! 5. the earliest host deadline over all enabled clocks is computed
//!    (phase `Computing`) and published;
//! 6. the target is the deadline raised to at least `now +
//!    min_rearm_ns()` of the backend (its own floor; there is no global
//!    one), and the backend is re-armed **only if the target differs from
//!    what we armed last**, a value kept in our own state: the host is never
//!    asked how long is left.
//!
//! A pass with an alarm expiry consumed but no timer run is counted as a
//! spurious wakeup; it is legal (a timer deleted after the alarm was armed).
//!
//! # Wall-step detection
//!
//! Each pass samples a (monotonic, wall) pair. The wall clock should have
//! advanced exactly as much as the monotonic clock since the last pair; the
//! difference beyond the two samples' uncertainty is the step. A
//! `wall_clock_stepped` hint from the backend (timerfd cancel-on-set) only
//! makes the check happen promptly; the comparison decides.
//!
//! No lock is held while timers and notifiers run: the pass reaches the
//! backend through `BackendAccess`, which for the real loop locks the
//! backend slot around each call only, and it holds the runner token (see
//! [`crate::runner`]) while callbacks run.

use nix::errno::Errno;

use itimer_sync::Arc;
use itimer_sync::atomic::{AtomicI32, AtomicU64, Ordering};

use crate::alarm::{AlarmBackend, MonoNs, Wakeup};
use crate::clock::{ClockType, Clocks, WallStep};
use crate::notify::{Notifier, Waker};
use crate::runner::RunnerToken;
use crate::time::ClockPair;

/// A snapshot of a host's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoopStats {
    /// Passes started by a wakeup (alarm, kick, or both).
    pub wakeups: u64,
    /// Wakeups in which the alarm reported at least one expiry.
    pub alarm_wakeups: u64,
    /// Wakeups caused by a kick from an arming thread.
    pub notify_wakeups: u64,
    /// Alarm wakeups that found no timer due.
    pub spurious_wakeups: u64,
    /// Host re-arm calls (`AlarmBackend::rearm`) made by the loop.
    pub rearm_calls: u64,
    /// Re-arm calls that failed.
    pub rearm_errors: u64,
    /// `consume` calls that failed.
    pub consume_errors: u64,
    /// Timer callbacks run.
    pub timers_run: u64,
    /// Wall-clock steps detected (each fired the WALL reset notifiers).
    pub wall_steps: u64,
    /// Waits of the real timer loop that failed (`poll` errors other than
    /// `EINTR`); each is followed by a back-off sleep, never a busy retry.
    pub poll_errors: u64,
    /// The errno of the latest failed wait, if any failed.
    pub last_poll_error: Option<Errno>,
}

/// The live counters behind [`LoopStats`]; written by the pass, read by
/// anyone.
#[derive(Debug, Default)]
pub(crate) struct StatCounters {
    wakeups: AtomicU64,
    alarm_wakeups: AtomicU64,
    notify_wakeups: AtomicU64,
    spurious_wakeups: AtomicU64,
    rearm_calls: AtomicU64,
    rearm_errors: AtomicU64,
    consume_errors: AtomicU64,
    timers_run: AtomicU64,
    wall_steps: AtomicU64,
    poll_errors: AtomicU64,
    /// The raw errno of the latest failed wait; 0 until one fails.
    last_poll_errno: AtomicI32,
}

fn bump(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Ordering::Relaxed);
}

impl StatCounters {
    pub(crate) fn snapshot(&self) -> LoopStats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LoopStats {
            wakeups: r(&self.wakeups),
            alarm_wakeups: r(&self.alarm_wakeups),
            notify_wakeups: r(&self.notify_wakeups),
            spurious_wakeups: r(&self.spurious_wakeups),
            rearm_calls: r(&self.rearm_calls),
            rearm_errors: r(&self.rearm_errors),
            consume_errors: r(&self.consume_errors),
            timers_run: r(&self.timers_run),
            wall_steps: r(&self.wall_steps),
            poll_errors: r(&self.poll_errors),
            last_poll_error: match self.last_poll_errno.load(Ordering::Relaxed) {
                0 => None,
                raw => Some(Errno::from_raw(raw)),
            },
        }
    }

    /// Records a failed wait of the real timer loop.
    pub(crate) fn poll_failed(&self, e: Errno) {
        self.last_poll_errno.store(e as i32, Ordering::Relaxed);
        bump(&self.poll_errors, 1);
    }
}

/// How a pass reaches the alarm backend: for the duration of one call.
pub(crate) trait BackendAccess {
    /// Calls `f` with the backend.
    fn with<R>(&mut self, f: impl FnOnce(&mut dyn AlarmBackend) -> R) -> R;
}

impl<T: AlarmBackend> BackendAccess for T {
    fn with<R>(&mut self, f: impl FnOnce(&mut dyn AlarmBackend) -> R) -> R {
        f(self)
    }
}

/// Why a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct WakeCause {
    /// The alarm's fd was readable (consume it).
    pub(crate) alarm: bool,
    /// An arming thread kicked the waker.
    pub(crate) notify: bool,
}

/// Tracks the wall clock against the monotonic clock.
#[derive(Debug)]
struct WallWatch {
    /// The pair sampled at the previous check.
    last: ClockPair,
    /// Forward jumps larger than this count as steps, ns.
    threshold_ns: i64,
}

impl WallWatch {
    fn check(&mut self, now: ClockPair) -> Option<WallStep> {
        let prev = std::mem::replace(&mut self.last, now);
        let expected = prev
            .wall_ns
            .saturating_add(now.mono_ns.saturating_sub(prev.mono_ns));
        let deviation = now.wall_ns.saturating_sub(expected);
        let slack = prev.uncertainty_ns.saturating_add(now.uncertainty_ns);
        let stepped = deviation < -slack || deviation > self.threshold_ns.saturating_add(slack);
        stepped.then_some(WallStep {
            expected_wall_ns: expected,
            observed_wall_ns: now.wall_ns,
        })
    }
}

/// The pass state a host keeps between passes.
pub(crate) struct LoopCore {
    clocks: Clocks,
    /// What the backend is armed at, as far as we armed it (`None`:
    /// disarmed, or fired since). Our own record: never read back from the
    /// host.
    armed: Option<MonoNs>,
    wall: WallWatch,
    stats: Arc<StatCounters>,
}

impl LoopCore {
    pub(crate) fn new(clocks: Clocks, stats: Arc<StatCounters>) -> Self {
        let wall = WallWatch {
            last: clocks.source().sample_pair(),
            threshold_ns: clocks.config().wall_step_threshold_ns,
        };
        LoopCore {
            clocks,
            armed: None,
            wall,
            stats,
        }
    }

    /// One pass (see the module documentation). Errors: a failed
    /// `consume`; `EDEADLK` if called from a timer callback (the runner
    /// token is held by this thread); a failed `rearm` (counted; the next
    /// pass retries).
    pub(crate) fn pass<W: Waker, B: BackendAccess>(
        &mut self,
        backend: &mut B,
        cause: WakeCause,
        notifier: &Notifier<W>,
    ) -> Result<Wakeup, Errno> {
        notifier.begin_run();
        let stats = &*self.stats;
        let wake = if cause.alarm {
            backend
                .with(|b| b.consume())
                .inspect_err(|_| bump(&stats.consume_errors, 1))?
        } else {
            Wakeup::default()
        };
        if cause.alarm || cause.notify {
            bump(&stats.wakeups, 1);
        }
        if cause.notify {
            bump(&stats.notify_wakeups, 1);
        }
        if wake.expirations > 0 {
            bump(&stats.alarm_wakeups, 1);
            // A one-shot host timer that fired is disarmed.
            self.armed = None;
        }

        let ran = {
            let token = RunnerToken::acquire(&self.clocks.inner)?;
            if let Some(step) = self.wall.check(self.clocks.source().sample_pair()) {
                bump(&stats.wall_steps, 1);
                token.fire_reset_notifiers(&step);
            }
            ClockType::ALL
                .iter()
                .map(|&k| token.run_clock(k))
                .sum::<usize>()
        };
        bump(&stats.timers_run, ran as u64);
        if wake.expirations > 0 && ran == 0 {
            bump(&stats.spurious_wakeups, 1);
        }

        notifier.begin_compute();
        let earliest = self.clocks.earliest_host_deadline();
        notifier.publish(earliest);
        let floor =
            self.clocks.source().monotonic_ns().saturating_add(
                i64::try_from(backend.with(|b| b.min_rearm_ns())).unwrap_or(i64::MAX),
            );
        let target = earliest.map(|d| MonoNs(d.max(floor).max(0) as u64));
        if target != self.armed {
            bump(&stats.rearm_calls, 1);
            if let Err(e) = backend.with(|b| b.rearm(target)) {
                bump(&stats.rearm_errors, 1);
                self.armed = None;
                return Err(e);
            }
            self.armed = target;
        }
        Ok(wake)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(mono_ns: i64, wall_ns: i64, uncertainty_ns: i64) -> ClockPair {
        ClockPair {
            mono_ns,
            wall_ns,
            uncertainty_ns,
        }
    }

    #[test]
    fn wall_watch_thresholds() {
        let mut w = WallWatch {
            last: pair(0, 1_000, 0),
            threshold_ns: 100,
        };
        assert_eq!(w.check(pair(10, 1_010, 0)), None);
        assert_eq!(w.check(pair(20, 1_120, 0)), None, "forward by exactly 100");
        let back = w.check(pair(30, 1_129, 0)).expect("back by 1 ns");
        assert_eq!((back.expected_wall_ns, back.delta_ns()), (1_130, -1));
        let fwd = w.check(pair(40, 1_240, 0)).expect("forward by 101");
        assert_eq!(fwd.delta_ns(), 101);
        // Sampling uncertainty widens both edges.
        let mut w = WallWatch {
            last: pair(0, 0, 5),
            threshold_ns: 100,
        };
        assert_eq!(w.check(pair(10, 0, 5)), None, "back by 10 within 5 + 5");
        assert!(w.check(pair(20, -1, 5)).is_some(), "back by 11");
    }
}
