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
//! to an eventfd that is the backend's [`crate::alarm::AlarmBackend::wait_fd`].
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
//! The backend's start, stop, consume and fork are `hostemu`'s
//! `EmulatedBackend`; this file is its millisecond policy. start
//! (creates the parked timer) --rearm(Some)--> due in `d` ms, then every
//! hour --rearm(None)--> parked --stop (deletes the timer).

use std::time::{Duration, Instant};

use super::MonoNs;
use super::hostemu::{EmulatedBackend, EmulatedTimerThread, EventId, MsPolicy, NANOS_PER_MS};

/// The name in precedence lists.
pub const NAME: &str = "timerqueue";

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

/// The timer queue's policy: one periodic timer, moved on each re-arm.
#[derive(Debug, Default)]
pub struct TimerQueue;

impl MsPolicy for TimerQueue {
    const NAME: &'static str = NAME;
    const THREAD_NAME: &'static str = "timerqueue-emul";
    const THREAD_WHAT: &'static str = "the emulated timer-queue thread";
    const RESOLUTION_NS: u64 = NANOS_PER_MS;
    const MIN_REARM_NS: u64 = MIN_DUE_MS as u64 * NANOS_PER_MS;

    /// Creates the one timer, parked.
    fn started(&mut self, thread: &EmulatedTimerThread) {
        create_timer_queue_timer(thread, PARKED_DUE_MS, DUMMY_PERIOD_MS);
    }

    /// Moves the timer: due at the deadline, or parked.
    fn rearm(&mut self, thread: &EmulatedTimerThread, deadline: Option<MonoNs>) {
        let due_ms = match deadline {
            Some(d) => due_ms_for(d, MonoNs::host_now()),
            None => PARKED_DUE_MS,
        };
        change_timer_queue_timer(thread, THE_TIMER, due_ms, DUMMY_PERIOD_MS);
    }

    fn stopping(&mut self, thread: &EmulatedTimerThread) {
        delete_timer_queue_timer(thread, THE_TIMER);
    }
}

/// The `timerqueue` backend. See the module documentation.
pub type TimerQueueBackend = EmulatedBackend<TimerQueue>;
