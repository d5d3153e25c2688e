//! The notify handshake between threads that arm timers and the thread
//! that sleeps until the earliest deadline.
//!
//! Models `qemu_rearm_alarm_timer` being called from `qemu_mod_timer` when
//! a timer becomes the head of its list, and the `notify_me` / event
//! notifier handshake QEMU later adopted for its `AioContext`: the sleeper
//! announces what it is doing, and an arming thread kicks a sticky waker
//! only when the sleeper might otherwise miss the new deadline.
//!
//! The sleeper (the timer loop, or the simulated host's driver) moves
//! through three phases, each entered under the phase lock:
//!
//! ```text
//!   Running ──begin_compute──▶ Computing ──publish(d)──▶ Sleeping(d)
//!      ▲                                                     │
//!      └──────────────────────── begin_run ◀─────────────────┘ (woken)
//! ```
//!
//! * `Running`: the sleeper is awake and has not yet read the timer lists.
//!   It will read them later, so an arming thread need not kick.
//! * `Computing`: the sleeper is reading the lists. A timer inserted now may
//!   or may not be seen, so an arming thread **must** kick.
//! * `Sleeping(d)`: the sleeper read the lists and found the earliest host
//!   deadline `d` (`None`: nothing armed). An arming thread kicks only if
//!   its deadline is earlier than `d`.
//!
//! # Invariant (no lost wakeup)
//!
//! An arming thread inserts its timer (under the clock's list lock) and
//! *then* takes the phase lock. Hence whenever a timer with host deadline
//! `t` is armed, at least one of these holds:
//!
//! 1. the sleeper's next read of the lists happens after the insertion (it
//!    was `Running`, and `begin_compute` is ordered after our phase check);
//! 2. the sleeper's published deadline is `<= t` (it will wake in time and
//!    re-read the lists);
//! 3. the waker has been kicked after the sleeper last cleared it, so its
//!    next wait returns at once. This needs the waker to be **sticky**: a
//!    kick that lands before the wait still ends the wait (an eventfd
//!    counter; a flag under a mutex with a condvar).
//!
//! The sleeper must clear the waker only while awake and before
//! `begin_run`'s successor `begin_compute` (the loop clears it right after
//! waking). Kicks are issued after the phase lock is released, so a kick
//! decided in one round may land in the next and cause one extra, harmless
//! wakeup; never a lost one.
//!
//! # Locks
//!
//! `phase` is a leaf lock: nothing else is taken while it is held, and the
//! waker is called after it is released. Arming threads take it after
//! releasing their clock's list lock.
//!
//! This module names nothing but `itimer_sync`, so a loom model can
//! drive this exact code with a condvar-based [`Waker`].

use itimer_sync::atomic::{AtomicU64, Ordering};
use itimer_sync::{Arc, Mutex};

/// Something that ends the sleeper's wait. Must be sticky: a `wake` that
/// happens before the sleeper starts waiting still ends that wait.
pub trait Waker: Send + Sync {
    /// Ends the sleeper's current or next wait.
    fn wake(&self);
}

/// What the clocks tell their host when deadlines may have moved earlier.
/// Implemented by [`Notifier`]; the clocks hold it as a trait object.
pub trait DeadlineListener: Send + Sync {
    /// A timer became the first of its list with this host-monotonic
    /// deadline, ns.
    fn deadline_added(&self, host_deadline_ns: i64);

    /// Deadlines may have moved earlier in a way no single new timer
    /// describes (a clock enabled, the VM resumed, GUEST warped).
    fn deadlines_changed(&self);
}

/// The sleeper's phase. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Awake; will read the timer lists later.
    Running,
    /// Reading the timer lists now.
    Computing,
    /// About to sleep (or sleeping) until this host-monotonic deadline, ns;
    /// `None` means until kicked.
    Sleeping(Option<i64>),
}

/// The handshake state shared by the sleeper and every arming thread.
#[derive(Debug)]
pub struct Notifier<W> {
    /// Guards the phase. Leaf lock.
    phase: Mutex<Phase>,
    /// The sticky wakeup.
    waker: W,
    /// Kicks issued (statistics).
    kicks: AtomicU64,
}

impl<W: Waker> Notifier<W> {
    /// A notifier whose sleeper starts awake (`Running`): it will read the
    /// lists before it first sleeps.
    pub fn new(waker: W) -> Self {
        Notifier {
            phase: Mutex::new(Phase::Running),
            waker,
            kicks: AtomicU64::new(0),
        }
    }

    /// The waker.
    pub fn waker(&self) -> &W {
        &self.waker
    }

    /// Sleeper: woke up; will read the lists later.
    pub fn begin_run(&self) {
        *self.phase.lock() = Phase::Running;
    }

    /// Sleeper: about to read the lists.
    pub fn begin_compute(&self) {
        *self.phase.lock() = Phase::Computing;
    }

    /// Sleeper: read the lists, the earliest host deadline is `earliest`;
    /// about to arm the host alarm and sleep.
    pub fn publish(&self, earliest: Option<i64>) {
        *self.phase.lock() = Phase::Sleeping(earliest);
    }

    /// The current phase (for tests and models).
    pub fn phase(&self) -> Phase {
        *self.phase.lock()
    }

    /// Kicks issued so far.
    pub fn kicks(&self) -> u64 {
        self.kicks.load(Ordering::Relaxed)
    }

    fn kick(&self) {
        self.kicks.fetch_add(1, Ordering::Relaxed);
        self.waker.wake();
    }

    /// Arming thread: a timer with host deadline `host_deadline_ns` was
    /// inserted (the insertion is complete). Returns whether it kicked.
    pub fn on_deadline_added(&self, host_deadline_ns: i64) -> bool {
        let must_kick = match *self.phase.lock() {
            Phase::Running => false,
            Phase::Computing => true,
            Phase::Sleeping(None) => true,
            Phase::Sleeping(Some(d)) => host_deadline_ns < d,
        };
        if must_kick {
            self.kick();
        }
        must_kick
    }

    /// Any thread: deadlines may have moved earlier. Kicks unless the
    /// sleeper has yet to read the lists. Returns whether it kicked.
    pub fn on_deadlines_changed(&self) -> bool {
        let must_kick = !matches!(*self.phase.lock(), Phase::Running);
        if must_kick {
            self.kick();
        }
        must_kick
    }
}

impl<W: Waker> DeadlineListener for Notifier<W> {
    fn deadline_added(&self, host_deadline_ns: i64) {
        self.on_deadline_added(host_deadline_ns);
    }

    fn deadlines_changed(&self) {
        self.on_deadlines_changed();
    }
}

/// A shared notifier is a listener too (the clocks hold a boxed clone of
/// the host's `Arc`).
impl<W: Waker> DeadlineListener for Arc<Notifier<W>> {
    fn deadline_added(&self, host_deadline_ns: i64) {
        self.on_deadline_added(host_deadline_ns);
    }

    fn deadlines_changed(&self) {
        self.on_deadlines_changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use itimer_sync::atomic::AtomicU32;

    #[derive(Default)]
    struct CountingWaker(AtomicU32);
    impl Waker for CountingWaker {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn kicks_only_when_the_sleeper_could_miss_it() {
        let n = Notifier::new(CountingWaker::default());
        // Running: the sleeper will read the lists anyway.
        assert!(!n.on_deadline_added(5));
        assert!(!n.on_deadlines_changed());
        n.begin_compute();
        assert!(n.on_deadline_added(1_000));
        n.publish(Some(100));
        assert!(!n.on_deadline_added(100));
        assert!(!n.on_deadline_added(150));
        assert!(n.on_deadline_added(99));
        assert!(n.on_deadlines_changed());
        n.publish(None);
        assert!(n.on_deadline_added(i64::MAX));
        n.begin_run();
        assert!(!n.on_deadline_added(0));
        assert_eq!(n.waker().0.load(Ordering::SeqCst), 4);
        assert_eq!(n.kicks(), 4);
    }
}
