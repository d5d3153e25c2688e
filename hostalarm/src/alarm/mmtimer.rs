//! The `mmtimer` alarm backend: the Windows multimedia timer's semantics,
//! **emulated** on a portable thread.
//!
//! Models QEMU's `mmtimer` entry in `alarm_timers[]` (`mm_start_timer` /
//! `mm_rearm_timer` / `mm_stop_timer` in `qemu-timer.c`, later
//! `main-loop.c`). The private functions `time_get_dev_caps`,
//! `time_set_event` and `time_kill_event` carry the meaning of the Windows
//! calls of those names, so this file reads like the Windows backend would;
//! underneath they program the emulated OS timer thread of
//! `hostemu`, whose "callback" writes to an eventfd that is the
//! backend's [`AlarmBackend::wait_fd`].
//!
//! # Windows semantics kept
//!
//! * `timeGetDevCaps` reports `wPeriodMin` = 1 ms and `wPeriodMax` =
//!   1,000,000 ms ([`MM_CAPS`]); every delay is clamped into that range.
//! * `timeSetEvent(delay, resolution, callback, user, TIME_ONESHOT |
//!   TIME_CALLBACK_FUNCTION)` creates a **new** one-shot event with a
//!   **relative** delay in whole milliseconds and returns its id; the event
//!   is gone once it has fired.
//! * A re-arm kills the current event (`timeKillEvent`) and creates a new
//!   one, as QEMU did: an mm timer cannot be moved. A stale id cannot kill
//!   a newer event.
//!
//! # Emulation and its limits
//!
//! The absolute deadline is converted at re-arm time to a delay rounded
//! **up** to the millisecond (never early), clamped to `[wPeriodMin,
//! wPeriodMax]`. A deadline further than 1,000 s away therefore fires early
//! at 1,000 s: a spurious wakeup, which the contract allows (the loop
//! re-arms). Resolution and `min_rearm_ns` are 1 ms. QEMU also called
//! `timeBeginPeriod(wPeriodMin)` to make Windows tick at 1 ms; the emulation
//! sleeps on the host's monotonic clock (see `hostemu` for why it
//! uses `std` synchronisation and a timed wait) and needs no such call.
//!
//! # State machine
//!
//! `Stopped` (`host` `None`) --start (spawns the timer thread)--> `Started`,
//! no event --rearm(Some)--> `Started`, event `current` pending --fires-->
//! no event (the id in `current` is now stale and harmless) --rearm--> ...
//! --stop (kills the event, joins the thread, closes the eventfd)-->
//! `Stopped`. No lock of ours: the timer loop owns the backend.
//!
//! # Fork
//!
//! The timer thread does not exist in a child and the eventfd is shared with
//! the parent, so [`AlarmBackend::reinit_after_fork`] abandons the parent's
//! thread state without touching it, closes the child's copy of the
//! eventfd, and starts afresh.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::hostemu::{EmulatedTimerThread, EventId};
use super::sigwake::WakeFd;
use super::{AlarmBackend, MonoNs, StartError, Wakeup};

/// The name in precedence lists.
pub const NAME: &str = "mmtimer";

/// Nanoseconds in one millisecond.
const NANOS_PER_MS: u64 = 1_000_000;

/// The multimedia timer's capabilities (`TIMECAPS`), in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeCaps {
    /// `wPeriodMin`: the smallest delay and resolution, in ms.
    pub period_min_ms: u32,
    /// `wPeriodMax`: the largest delay, in ms.
    pub period_max_ms: u32,
}

/// What `timeGetDevCaps` reports on Windows, and what the emulation obeys.
pub const MM_CAPS: TimeCaps = TimeCaps {
    period_min_ms: 1,
    period_max_ms: 1_000_000,
};

/// `timeGetDevCaps`: the timer's delay range.
fn time_get_dev_caps() -> TimeCaps {
    MM_CAPS
}

/// The delay, in whole ms clamped to the device range, that makes a
/// one-shot event fire no earlier than `deadline` seen from `now`.
pub fn delay_ms_for(deadline: MonoNs, now: MonoNs, caps: TimeCaps) -> u32 {
    let ms = deadline.saturating_since(now).div_ceil(NANOS_PER_MS);
    let ms = u32::try_from(ms).unwrap_or(u32::MAX);
    ms.clamp(caps.period_min_ms, caps.period_max_ms)
}

/// The host side of a started backend.
#[derive(Debug)]
struct Host {
    /// The emulated multimedia timer thread.
    thread: EmulatedTimerThread,
    /// The eventfd the callback writes to; the backend's `wait_fd`. Declared
    /// after `thread` so the thread is joined before the fd closes.
    wake: WakeFd,
    /// The id of the last event created, if not killed since.
    current: Option<EventId>,
    /// The next id `timeSetEvent` hands out (ids start at 1: 0 is failure
    /// on Windows).
    next_id: u64,
}

impl Host {
    /// `timeSetEvent(delay_ms, resolution, callback, 0, TIME_ONESHOT |
    /// TIME_CALLBACK_FUNCTION)`: a new one-shot event `delay_ms` from now.
    fn time_set_event(&mut self, delay_ms: u32) -> EventId {
        let id = EventId(self.next_id);
        self.next_id += 1;
        let due = Instant::now() + Duration::from_millis(u64::from(delay_ms));
        self.thread.program(id, due, None);
        id
    }

    /// `timeKillEvent(id)`: cancels the event if it has not fired.
    fn time_kill_event(&mut self, id: EventId) {
        self.thread.cancel(id);
    }
}

/// The `mmtimer` backend. See the module documentation.
#[derive(Debug, Default)]
pub struct MmTimerBackend {
    /// `Some` between start and stop.
    host: Option<Host>,
    /// Re-arms since start (each one `timeKillEvent` + `timeSetEvent`, or
    /// one `timeKillEvent` to disarm).
    rearm_calls: u64,
}

fn start_error(errno: Option<Errno>, reason: &str) -> StartError {
    StartError {
        backend: NAME,
        errno,
        reason: reason.to_owned(),
    }
}

impl MmTimerBackend {
    /// A stopped backend.
    pub fn new() -> MmTimerBackend {
        MmTimerBackend::default()
    }
}

impl AlarmBackend for MmTimerBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self) -> Result<(), StartError> {
        if self.host.is_some() {
            return Ok(());
        }
        let wake = WakeFd::new().map_err(|e| start_error(Some(e), "eventfd failed"))?;
        let thread = EmulatedTimerThread::spawn("mmtimer-emul", wake.raw()).map_err(|e| {
            start_error(
                e.raw_os_error().map(Errno::from_raw),
                "cannot spawn the emulated multimedia timer thread",
            )
        })?;
        self.host = Some(Host {
            thread,
            wake,
            current: None,
            next_id: 1,
        });
        self.rearm_calls = 0;
        Ok(())
    }

    fn stop(&mut self) {
        let Some(mut host) = self.host.take() else {
            return;
        };
        if let Some(id) = host.current.take() {
            host.time_kill_event(id);
        }
        host.thread.shutdown();
        // `wake` closes when `host` drops, after the join.
    }

    fn rearm(&mut self, deadline: Option<MonoNs>) -> Result<(), Errno> {
        let host = self.host.as_mut().ok_or(Errno::EBADF)?;
        self.rearm_calls += 1;
        if let Some(id) = host.current.take() {
            host.time_kill_event(id);
        }
        if let Some(d) = deadline {
            let delay = delay_ms_for(d, MonoNs::host_now(), time_get_dev_caps());
            host.current = Some(host.time_set_event(delay));
        }
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
        u64::from(MM_CAPS.period_min_ms) * NANOS_PER_MS
    }

    fn min_rearm_ns(&self) -> u64 {
        u64::from(MM_CAPS.period_min_ms) * NANOS_PER_MS
    }

    fn rearm_calls(&self) -> u64 {
        self.rearm_calls
    }

    fn reinit_after_fork(&mut self) -> Result<(), StartError> {
        if let Some(host) = self.host.take() {
            host.thread.abandon_after_fork();
            drop(host.wake);
        }
        self.start()
    }
}

impl Drop for MmTimerBackend {
    fn drop(&mut self) {
        self.stop();
    }
}
