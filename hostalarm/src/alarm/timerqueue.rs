//! The `timerqueue` alarm backend: the Windows timer queue's semantics,
//! **emulated** on a portable thread.
//!
//! Models QEMU's `dynticks` Windows entry in `alarm_timers[]`
//! (`win32_start_timer` / `win32_rearm_timer` / `win32_stop_timer` in
//! `qemu-timer.c`, later `main-loop.c`). The private functions
//! `create_timer_queue_timer`, `change_timer_queue_timer` and
//! `delete_timer_queue_timer` carry the meaning of the Windows calls
//! `CreateTimerQueueTimer`, `ChangeTimerQueueTimer` and
//! `DeleteTimerQueueTimer` on the default queue; underneath they program the
//! emulated OS timer thread of `hostemu`, whose "callback" writes
//! to an eventfd that is the backend's [`AlarmBackend::wait_fd`].
//!
//! # Windows semantics kept
//!
//! * One timer, created once at start with the **one-hour dummy period**
//!   ([`DUMMY_PERIOD_MS`]): a timer-queue timer is periodic, and the loop
//!   re-arms it (`ChangeTimerQueueTimer`) long before it would repeat. If
//!   nothing re-arms it, it does repeat every hour: a spurious wakeup, which
//!   the contract allows.
//! * Due times are **relative**, in whole milliseconds (a `DWORD`).
//! * Re-arming moves the existing timer; it is never recreated.
//!
//! # Emulation and its limits
//!
//! The absolute deadline is converted at re-arm time to a due time rounded
//! **up** to the millisecond (never early), at least 1 ms as QEMU did.
//! Disarming has no Windows call short of deleting the timer, so
//! `rearm(None)` parks it at [`PARKED_DUE_MS`] (~49.7 days, the largest due
//! time that is not `INFINITE`); so does a deadline beyond that. A parked
//! timer that is left alone for 49.7 days wakes the loop once, spuriously.
//! Resolution and `min_rearm_ns` are 1 ms. Deliberate deviation from QEMU:
//! QEMU created the timer with a 1 ms due time to kick its loop once at
//! start; ours is created parked, because our loop arms explicitly after
//! start and the contract says a started backend is disarmed.
//!
//! # State machine
//!
//! `Stopped` (`host` `None`) --start (spawns the timer-queue thread,
//! creates the parked timer)--> `Started` --rearm(Some)--> due in `d` ms,
//! then every hour --rearm(None)--> parked --stop (deletes the timer, joins
//! the thread, closes the eventfd)--> `Stopped`. No lock of ours: the timer
//! loop owns the backend.
//!
//! # Fork
//!
//! As for `mmtimer`: [`AlarmBackend::reinit_after_fork`] abandons the
//! parent's thread state untouched, closes the child's copy of the eventfd,
//! and starts afresh.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::hostemu::{EmulatedTimerThread, EventId};
use super::sigwake::WakeFd;
use super::{AlarmBackend, MonoNs, StartError, Wakeup};

/// The name in precedence lists.
pub const NAME: &str = "timerqueue";

/// Nanoseconds in one millisecond.
const NANOS_PER_MS: u64 = 1_000_000;

/// The period the timer is created and re-armed with, in ms: one hour, as
/// QEMU used; the loop re-arms before it ever repeats.
pub const DUMMY_PERIOD_MS: u32 = 3_600_000;

/// The due time, in ms, that stands for "disarmed": `0xFFFF_FFFE`
/// (`INFINITE` is `0xFFFF_FFFF`), about 49.7 days.
pub const PARKED_DUE_MS: u32 = 0xFFFF_FFFE;

/// The smallest due time the backend uses, in ms (QEMU's floor).
pub const MIN_DUE_MS: u32 = 1;

/// The due time, in whole ms, that makes the timer fire no earlier than
/// `deadline` seen from `now`: at least [`MIN_DUE_MS`], at most
/// [`PARKED_DUE_MS`].
pub fn due_ms_for(deadline: MonoNs, now: MonoNs) -> u32 {
    let ms = deadline.saturating_since(now).div_ceil(NANOS_PER_MS);
    u32::try_from(ms)
        .unwrap_or(PARKED_DUE_MS)
        .clamp(MIN_DUE_MS, PARKED_DUE_MS)
}

/// A timer-queue timer handle (`HANDLE` on Windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimerHandle(EventId);

/// The only handle this backend ever creates per start (one timer).
const THE_TIMER: TimerHandle = TimerHandle(EventId(1));

/// `CreateTimerQueueTimer(&handle, NULL /* default queue */, callback,
/// param, due_ms, period_ms, WT_EXECUTEINTIMERTHREAD)`.
fn create_timer_queue_timer(
    queue: &EmulatedTimerThread,
    due_ms: u32,
    period_ms: u32,
) -> TimerHandle {
    change_timer_queue_timer(queue, THE_TIMER, due_ms, period_ms);
    THE_TIMER
}

/// `ChangeTimerQueueTimer(NULL, handle, due_ms, period_ms)`: moves the
/// timer to `due_ms` from now, then every `period_ms`.
fn change_timer_queue_timer(
    queue: &EmulatedTimerThread,
    timer: TimerHandle,
    due_ms: u32,
    period_ms: u32,
) {
    let due = Instant::now() + Duration::from_millis(u64::from(due_ms));
    let period = Duration::from_millis(u64::from(period_ms));
    queue.program(timer.0, due, Some(period));
}

/// `DeleteTimerQueueTimer(NULL, handle, INVALID_HANDLE_VALUE)`: cancels the
/// timer (the caller then waits for the callback thread).
fn delete_timer_queue_timer(queue: &EmulatedTimerThread, timer: TimerHandle) {
    queue.cancel(timer.0);
}

/// The host side of a started backend.
#[derive(Debug)]
struct Host {
    /// The emulated timer-queue thread.
    queue: EmulatedTimerThread,
    /// The eventfd the callback writes to; the backend's `wait_fd`. Declared
    /// after `queue` so the thread is joined before the fd closes.
    wake: WakeFd,
    /// The one timer.
    timer: TimerHandle,
}

/// The `timerqueue` backend. See the module documentation.
#[derive(Debug, Default)]
pub struct TimerQueueBackend {
    /// `Some` between start and stop.
    host: Option<Host>,
    /// `ChangeTimerQueueTimer` calls since start.
    rearm_calls: u64,
}

fn start_error(errno: Option<Errno>, reason: &str) -> StartError {
    StartError {
        backend: NAME,
        errno,
        reason: reason.to_owned(),
    }
}

impl TimerQueueBackend {
    /// A stopped backend.
    pub fn new() -> TimerQueueBackend {
        TimerQueueBackend::default()
    }
}

impl AlarmBackend for TimerQueueBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self) -> Result<(), StartError> {
        if self.host.is_some() {
            return Ok(());
        }
        let wake = WakeFd::new().map_err(|e| start_error(Some(e), "eventfd failed"))?;
        let queue = EmulatedTimerThread::spawn("timerqueue-emul", wake.raw()).map_err(|e| {
            start_error(
                e.raw_os_error().map(Errno::from_raw),
                "cannot spawn the emulated timer-queue thread",
            )
        })?;
        let timer = create_timer_queue_timer(&queue, PARKED_DUE_MS, DUMMY_PERIOD_MS);
        self.host = Some(Host { queue, wake, timer });
        self.rearm_calls = 0;
        Ok(())
    }

    fn stop(&mut self) {
        let Some(mut host) = self.host.take() else {
            return;
        };
        delete_timer_queue_timer(&host.queue, host.timer);
        host.queue.shutdown();
        // `wake` closes when `host` drops, after the join.
    }

    fn rearm(&mut self, deadline: Option<MonoNs>) -> Result<(), Errno> {
        let host = self.host.as_ref().ok_or(Errno::EBADF)?;
        self.rearm_calls += 1;
        let due_ms = match deadline {
            Some(d) => due_ms_for(d, MonoNs::host_now()),
            None => PARKED_DUE_MS,
        };
        change_timer_queue_timer(&host.queue, host.timer, due_ms, DUMMY_PERIOD_MS);
        Ok(())
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        self.host.as_ref().map(|h| h.wake.as_fd())
    }

    fn consume(&mut self) -> Result<Wakeup, Errno> {
        let host = self.host.as_ref().ok_or(Errno::EBADF)?;
        Ok(Wakeup {
            expirations: host.wake.drain()?,
            wall_clock_stepped: false,
        })
    }

    fn resolution_ns(&self) -> u64 {
        NANOS_PER_MS
    }

    fn min_rearm_ns(&self) -> u64 {
        u64::from(MIN_DUE_MS) * NANOS_PER_MS
    }

    fn rearm_calls(&self) -> u64 {
        self.rearm_calls
    }

    fn reinit_after_fork(&mut self) -> Result<(), StartError> {
        if let Some(host) = self.host.take() {
            host.queue.abandon_after_fork();
            drop(host.wake);
        }
        self.start()
    }
}

impl Drop for TimerQueueBackend {
    fn drop(&mut self) {
        self.stop();
    }
}
