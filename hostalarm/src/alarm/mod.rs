//! Host alarm backends: the one thing in the stack that touches a real host
//! timer.
//!
//! Models the `alarm_timers[]` table of QEMU's `qemu-timer.c` (and the later
//! timerfd proposal for it). An alarm backend owns one host timer and one
//! readiness source. The timer loop ([`crate::timer_loop`]) keeps the armed
//! deadline in its own state, asks the backend to [`AlarmBackend::rearm`] to
//! an **absolute** host-monotonic deadline only when that deadline changes,
//! waits until [`AlarmBackend::wait_fd`] is readable, calls
//! [`AlarmBackend::consume`] first, then runs timers, then re-arms
//! (run-then-rearm). It never asks the host "how long is left?" to decide
//! whether to re-arm: that is the check the timerfd review showed to cause
//! spurious timeouts.
//!
//! # Contract
//!
//! * Deadlines are nanoseconds on the host's `CLOCK_MONOTONIC`.
//! * `rearm(Some(d))` replaces any earlier arming; `rearm(None)` disarms.
//!   A deadline already in the past must still produce a wakeup promptly.
//! * A wakeup with nothing due is legal (the loop counts it as spurious).
//! * `min_rearm_ns` is this backend's own floor; there is no global floor.
//!   The loop never arms closer than `min_rearm_ns` from now.
//! * After `stop` the backend holds no host resource and the fd is closed.

use std::fmt;
use std::os::fd::BorrowedFd;

use nix::errno::Errno;

/// Nanoseconds on the host's `CLOCK_MONOTONIC`: the only time base an alarm
/// backend is ever armed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MonoNs(pub u64);

/// What one readiness of the backend's fd meant, as reported by
/// [`AlarmBackend::consume`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wakeup {
    /// Host expirations consumed (a timerfd's read count; 1 for a signal).
    /// Zero means the fd was readable for another reason.
    pub expirations: u64,
    /// The host wall clock was stepped (timerfd `TFD_TIMER_CANCEL_ON_SET`
    /// reported `ECANCELED`). The loop then checks the HOST clock's reset
    /// notifiers.
    pub wall_clock_stepped: bool,
}

/// Why a backend could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError {
    /// The backend's name.
    pub backend: &'static str,
    /// The host errno, when the failure was a host call.
    pub errno: Option<Errno>,
    /// A sentence a user can act on.
    pub reason: String,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "alarm backend `{}` cannot start: {}", self.backend, self.reason)?;
        if let Some(e) = self.errno {
            write!(f, " ({e})")?;
        }
        Ok(())
    }
}

impl std::error::Error for StartError {}

/// One host alarm mechanism. See the module documentation for the contract.
pub trait AlarmBackend: Send {
    /// The name used in precedence lists (`timerfd`, `dynticks`, `unix`,
    /// `mmtimer`, `timerqueue`, `sim`).
    fn name(&self) -> &'static str;

    /// Acquires the host resources. Fails (and holds nothing) when the host
    /// cannot provide them, so the next backend in precedence can be tried.
    fn start(&mut self) -> Result<(), StartError>;

    /// Releases every host resource. Idempotent.
    fn stop(&mut self);

    /// Arms the host timer to fire at the absolute `deadline`, or disarms it
    /// with `None`. Exactly one host re-arm call per invocation.
    fn rearm(&mut self, deadline: Option<MonoNs>) -> Result<(), Errno>;

    /// The fd that becomes readable when the alarm fires. `None` for the
    /// simulated backend, which has no host side.
    fn wait_fd(&self) -> Option<BorrowedFd<'_>>;

    /// Consumes the notification that made `wait_fd` readable. Called before
    /// any timer runs. Must not block.
    fn consume(&mut self) -> Result<Wakeup, Errno>;

    /// The granularity with which this backend really fires, in ns.
    fn resolution_ns(&self) -> u64;

    /// The smallest distance from now this backend will be armed at, in ns
    /// (0 where the host allows arming in the past).
    fn min_rearm_ns(&self) -> u64;

    /// Host re-arm calls made since start (for statistics).
    fn rearm_calls(&self) -> u64;

    /// Recreates host timers in a forked child. The default stops and starts
    /// again, which is right for every backend whose host object would
    /// otherwise be shared with the parent (a timerfd is).
    fn reinit_after_fork(&mut self) -> Result<(), StartError> {
        self.stop();
        self.start()
    }
}
