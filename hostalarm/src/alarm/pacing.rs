//! Signal pacing: never let a process-directed alarm fire more often than
//! once per spacing.
//!
//! Used by the `unix` backend ([`super::unix`]). Its `SIGALRM` lands on
//! whichever thread of the program the kernel picks (on Linux, the main
//! thread first), and every one cuts that thread's `nanosleep`, `poll` or
//! `epoll_wait` short with `EINTR`. A sleep retried with the time
//! remaining, as `std::thread::sleep` does, loses the time the thread then
//! spends in the handler and waiting for a CPU after it, so at tens of
//! thousands of alarms a second a bystander's 1 ms sleep ended 5–15 ms
//! late (`cargo bench --bench churn`, see `docs/performance.md`). The
//! pacer caps the alarm rate instead of flooring every re-arm: a deadline
//! at least one spacing after the last alarm that may have fired is armed
//! exactly; a closer one waits until the spacing has passed, and whatever
//! timers fall due meanwhile run together on that one alarm.
//!
//! QEMU's `qemu-timer.c` floored every re-arm of every backend at 250 µs
//! from now (`MIN_TIMER_REARM_US`). Deliberate deviation: this is one
//! backend's rate cap anchored at its previous alarm, so a lone timer after
//! a quiet spell is not delayed at all.
//!
//! # Invariant
//!
//! Every instant here is an **upper bound** of the host instant it stands
//! for (the clock is read after `setitimer` returns, plus the interval
//! given), and no arming is ever made less than `spacing_ns` after an
//! alarm that may have fired: two alarms are always at least `spacing_ns`
//! apart. The one arming whose fate is unknown is the pending one: it may
//! fire at any moment up to the `setitimer` that replaces it. When the new
//! deadline is less than one spacing after it ([`Pacer::must_settle`]),
//! the backend first disarms (one `setitimer`, whose old value tells
//! whether it fired) and only then arms. The pacer is plain data owned by
//! the backend (no lock); it never reads a clock itself, so its tests are
//! exact.

use super::MonoNs;

/// Rate-cap bookkeeping for one host alarm. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacer {
    /// Minimum time between two alarms, ns.
    spacing_ns: u64,
    /// Upper bound of when the current arming fires; `None` if disarmed.
    armed: Option<MonoNs>,
    /// Upper bound of when the last alarm that fired did; `None` before
    /// the first.
    last_fired: Option<MonoNs>,
}

impl Pacer {
    /// A disarmed pacer that has seen no alarm.
    pub const fn new(spacing_ns: u64) -> Pacer {
        Pacer {
            spacing_ns,
            armed: None,
            last_fired: None,
        }
    }

    /// The spacing, ns.
    pub const fn spacing_ns(&self) -> u64 {
        self.spacing_ns
    }

    /// The earliest instant an alarm may be armed for: `deadline`, or one
    /// spacing after the last alarm if that is later.
    pub fn paced(&self, deadline: MonoNs) -> MonoNs {
        match self.last_fired {
            Some(t) => deadline.max(MonoNs(t.0.saturating_add(self.spacing_ns))),
            None => deadline,
        }
    }

    /// Whether the pending arming must be settled (disarmed, learning
    /// whether it fired) before arming for `deadline`: it might fire less
    /// than one spacing before the instant `deadline` would be armed for.
    pub fn must_settle(&self, deadline: MonoNs) -> bool {
        match self.armed {
            Some(t) if self.spacing_ns > 0 => {
                self.paced(deadline).0 < t.0.saturating_add(self.spacing_ns)
            }
            _ => false,
        }
    }

    /// Records a `setitimer` that replaced the previous arming.
    /// `previous_still_armed` is whether the old value it returned was
    /// non-zero (a pending arming, cancelled without firing); zero means the
    /// previous arming, if there was one, fired. `now_armed` is the upper
    /// bound of the new arming (`None` for a disarm). Returns whether this
    /// discovered an alarm.
    pub fn replaced(&mut self, previous_still_armed: bool, now_armed: Option<MonoNs>) -> bool {
        let fired = match self.armed {
            Some(t) if !previous_still_armed => {
                self.last_fired = Some(t);
                true
            }
            _ => false,
        };
        self.armed = now_armed;
        fired
    }

    /// Forgets the current arming (the host timer is gone: stop, or a
    /// forked child, which does not inherit it) but not the last alarm.
    pub fn forget_arming(&mut self) {
        self.armed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    #[test]
    fn first_arming_is_exact() {
        let p = Pacer::new(S);
        assert_eq!(p.paced(MonoNs(5)), MonoNs(5));
    }

    #[test]
    fn after_an_alarm_the_next_waits_one_spacing() {
        let mut p = Pacer::new(S);
        assert!(!p.replaced(false, Some(MonoNs(10_000))));
        // The 10 µs arming fired (old value zero) before this re-arm.
        assert!(p.replaced(false, Some(MonoNs(12_000))));
        assert_eq!(p.paced(MonoNs(11_000)), MonoNs(1_010_000));
        assert_eq!(p.paced(MonoNs(1_010_000)), MonoNs(1_010_000));
        assert_eq!(p.paced(MonoNs(3_000_000)), MonoNs(3_000_000));
    }

    #[test]
    fn a_cancelled_arming_is_no_alarm() {
        let mut p = Pacer::new(S);
        p.replaced(false, Some(MonoNs(10_000)));
        // Re-armed while still pending: nothing fired.
        assert!(!p.replaced(true, Some(MonoNs(20_000))));
        assert_eq!(p.paced(MonoNs(15_000)), MonoNs(15_000));
        // A disarm that finds it pending: still nothing.
        assert!(!p.replaced(true, None));
        // A disarm with nothing armed reports no alarm either.
        assert!(!p.replaced(false, None));
        assert_eq!(p.paced(MonoNs(0)), MonoNs(0));
    }

    #[test]
    fn a_disarm_after_the_alarm_still_paces_the_next() {
        let mut p = Pacer::new(S);
        p.replaced(false, Some(MonoNs(7_000)));
        assert!(p.replaced(false, None));
        assert_eq!(p.paced(MonoNs(8_000)), MonoNs(1_007_000));
    }

    #[test]
    fn forgetting_the_arming_keeps_the_last_alarm() {
        let mut p = Pacer::new(S);
        p.replaced(false, Some(MonoNs(7_000)));
        p.replaced(false, Some(MonoNs(2_000_000)));
        p.forget_arming();
        // The forgotten arming did not fire as far as we know.
        assert!(!p.replaced(false, Some(MonoNs(3_000_000))));
        assert_eq!(p.paced(MonoNs(0)), MonoNs(1_007_000));
    }

    #[test]
    fn settle_only_within_one_spacing_of_the_pending_arming() {
        let mut p = Pacer::new(S);
        assert!(!p.must_settle(MonoNs(0)), "nothing armed");
        p.replaced(false, Some(MonoNs(2_000_000)));
        assert!(p.must_settle(MonoNs(1_500_000)), "earlier");
        assert!(p.must_settle(MonoNs(2_999_999)), "later, but too close");
        assert!(!p.must_settle(MonoNs(3_000_000)), "a whole spacing later");
        // Settled: it had fired. The next arming is paced behind it.
        assert!(p.replaced(false, None));
        assert!(!p.must_settle(MonoNs(0)));
        assert_eq!(p.paced(MonoNs(0)), MonoNs(3_000_000));
    }

    #[test]
    fn spacing_zero_paces_nothing_and_never_settles() {
        let mut p = Pacer::new(0);
        p.replaced(false, Some(MonoNs(10_000)));
        assert!(p.replaced(false, Some(MonoNs(20_000))));
        assert_eq!(p.paced(MonoNs(10_001)), MonoNs(10_001));
        assert!(!p.must_settle(MonoNs(5)), "earlier than the pending arming");
    }

    #[test]
    fn saturates_at_the_end_of_time() {
        let mut p = Pacer::new(S);
        p.replaced(false, Some(MonoNs(u64::MAX - 1)));
        p.replaced(false, None);
        assert_eq!(p.paced(MonoNs(0)), MonoNs(u64::MAX));
    }
}
