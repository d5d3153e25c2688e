//! HOST reset notifiers: callbacks told when the wall clock steps.
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
//! waiting). Only HOST has notifiers: registering on another clock is
//! `EINVAL` (deviation: QEMU accepts and never fires them).

use nix::errno::Errno;

use itimer_sync::Arc;

use crate::clock::{Clock, ClockType};

/// What a HOST reset notifier is told: the wall clock was not where
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
pub struct NotifierId(usize);

impl Clock {
    /// Registers a reset notifier (HOST only: `EINVAL` on the others). It
    /// runs, on the host's runner thread with no lock held, whenever the
    /// wall clock is found to have stepped backwards, or forwards by more
    /// than [`crate::ClocksConfig::wall_step_threshold_ns`].
    pub fn add_reset_notifier<F>(&self, f: F) -> Result<NotifierId, Errno>
    where
        F: Fn(&WallStep) + Send + Sync + 'static,
    {
        if self.kind != ClockType::Host {
            return Err(Errno::EINVAL);
        }
        Ok(NotifierId(
            self.inner
                .reset_notifiers
                .lock()
                .insert(Arc::new(Box::new(f))),
        ))
    }

    /// Removes a reset notifier. `ENOENT` if it is not registered. A
    /// notifier already cloned out by a running pass may still run once.
    pub fn remove_reset_notifier(&self, id: NotifierId) -> Result<(), Errno> {
        let removed = self.inner.reset_notifiers.lock().try_remove(id.0);
        removed.map(drop).ok_or(Errno::ENOENT)
    }
}
