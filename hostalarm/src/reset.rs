//! WALL reset notifiers: callbacks told when the wall clock steps.
//!
//! Models `qemu_register_clock_reset_notifier` and the `reset_notifiers`
//! list of QEMU's host clock. QEMU fires them when a read of the host clock
//! finds it went backwards; here the host's pass compares the wall clock
//! with the monotonic clock on every wakeup (see [`crate::step`]) and fires
//! them on a step backwards or forwards past
//! [`crate::clock::ClocksConfig::wall_step_threshold_ns`].
//!
//! # Locks
//!
//! The list (`ClocksInner::reset_notifiers`) is a leaf lock; a pass clones
//! the notifiers out and calls them with no lock held, on the runner thread
//! (holding the runner token, so a notifier may delete timers without
//! waiting). Only WALL has notifiers: registering on another clock is
//! `EINVAL` (deviation: QEMU accepts and never fires them).

use itimer_sync::Arc;

/// What a WALL reset notifier is told: the wall clock was not where
/// monotonic time said it should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallStep {
    /// Where the wall clock should have been, ns since the epoch.
    pub expected_wall_ns: i64,
    /// Where it was, ns since the epoch.
    pub observed_wall_ns: i64,
}

impl WallStep {
    /// The size of the step, ns: negative when the wall clock went back.
    pub fn delta_ns(&self) -> i64 {
        self.observed_wall_ns.saturating_sub(self.expected_wall_ns)
    }
}

/// A reset notifier callback. Runs on the host's runner thread with no lock
/// held. (Boxed inside the `Arc` because loom's `Arc` cannot hold an
/// unsized value.)
pub type ResetNotifier = Arc<Box<dyn Fn(&WallStep) + Send + Sync>>;

/// Identifies a registered reset notifier, for removing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotifierId(pub(crate) usize);
