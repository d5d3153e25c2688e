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
//! * A freshly started backend is disarmed and its `rearm_calls` is 0.
//! * `start`, `rearm`, `consume` and `stop` are called on the loop thread,
//!   which is also the thread that polls `wait_fd` (`dynticks` depends on
//!   it: its signal is directed at, and its signalfd reads, that thread).
//!
//! # Backends (default precedence order, see [`registry`])
//!
//! | name | host mechanism | resolution | `min_rearm_ns` | process-wide state |
//! |---|---|---|---|---|
//! | [`timerfd`] | timerfd `CLOCK_MONOTONIC` + `CLOCK_REALTIME` canceller, one epoll fd | `clock_getres` (1 ns) | 0 | none |
//! | [`dynticks`] | `timer_create`, `SIGEV_THREAD_ID`, `SIGRTMIN+4`, signalfd | `clock_getres` (1 ns) | 0 | one per thread |
//! | [`unix`] | `setitimer(ITIMER_REAL)`, `SIGALRM` handler → eventfd, at most one alarm per ms ([`pacing`]) | 1 µs | 1 µs | one per process |
//! | [`mmtimer`] | Windows `timeSetEvent` semantics, emulated thread → eventfd | 1 ms | 1 ms | none |
//! | [`timerqueue`] | Windows `CreateTimerQueueTimer` semantics, emulated thread → eventfd | 1 ms | 1 ms | none |
//!
//! # Synchronisation
//!
//! A backend is owned by the loop (`&mut self`) and has no lock of its own.
//! Two deliberate exceptions to "everything from `itimer_sync`",
//! each explained in its module: the `unix` backend's statics are `std`
//! atomics (shared with an async-signal handler), and the emulated Windows
//! timer thread (`hostemu`) uses `std` threads, mutex and timed condvar
//! because it stands in for the host OS. Neither is ever part of a loom
//! model.

use std::fmt;
use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::time::{ClockId, clock_getres, clock_gettime};

pub mod dynticks;
mod hostemu;
pub mod mmtimer;
pub mod pacing;
pub mod registry;
mod sigwake;
pub mod timerfd;
pub mod timerqueue;
pub mod unix;

pub use registry::{
    AllFailed, BackendKind, Choice, HelpListing, Precedence, Probe, ProbeInfo, UnknownBackend,
    candidates, help, start_first, start_first_of, which_start_here,
};

/// Nanoseconds on the host's `CLOCK_MONOTONIC`: the only time base an alarm
/// backend is ever armed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MonoNs(pub u64);

/// Nanoseconds in one second.
const NANOS_PER_SEC: u64 = 1_000_000_000;

impl MonoNs {
    /// The host's `CLOCK_MONOTONIC` now (the real host, never a simulated
    /// one). `CLOCK_MONOTONIC` cannot fail on Linux; should it, this reports
    /// zero, which every backend treats as "already due".
    pub fn host_now() -> MonoNs {
        clock_gettime(ClockId::CLOCK_MONOTONIC)
            .map(timespec_to_mono)
            .unwrap_or_default()
    }

    /// This deadline as an absolute `timespec`, never the all-zero value:
    /// an all-zero `it_value` means "disarm" to `timerfd_settime` and
    /// `timer_settime`, so `MonoNs(0)` (long past) becomes 1 ns (also long
    /// past, so it fires at once).
    pub(crate) fn to_abs_timespec(self) -> TimeSpec {
        let ns = self.0.max(1);
        let secs = i64::try_from(ns / NANOS_PER_SEC).unwrap_or(i64::MAX);
        // The remainder is below 10^9 and always fits.
        let nanos = i64::try_from(ns % NANOS_PER_SEC).unwrap_or(0);
        TimeSpec::new(secs, nanos)
    }

    /// Nanoseconds from `now` until this deadline; zero when it has passed.
    pub fn saturating_since(self, now: MonoNs) -> u64 {
        self.0.saturating_sub(now.0)
    }
}

/// A non-negative `timespec` as nanoseconds (negative parts count as zero).
fn timespec_to_mono(ts: TimeSpec) -> MonoNs {
    let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
    MonoNs(secs.saturating_mul(NANOS_PER_SEC).saturating_add(nanos))
}

/// The granularity of `CLOCK_MONOTONIC` high-resolution timers, from
/// `clock_getres` (1 ns on a kernel with hrtimers, a jiffy without). Never 0.
pub(crate) fn monotonic_resolution_ns() -> u64 {
    clock_getres(ClockId::CLOCK_MONOTONIC)
        .map(|ts| timespec_to_mono(ts).0)
        .unwrap_or(1)
        .max(1)
}

/// What one readiness of the backend's fd meant, as reported by
/// [`AlarmBackend::consume`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wakeup {
    /// Host expirations consumed (a timerfd's read count; 1 for a signal).
    /// Zero means the fd was readable for another reason.
    pub expirations: u64,
    /// The host wall clock was stepped (timerfd `TFD_TIMER_CANCEL_ON_SET`
    /// reported `ECANCELED`). The loop then checks the WALL clock's reset
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
        write!(
            f,
            "alarm backend `{}` cannot start: {}",
            self.backend, self.reason
        )?;
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
