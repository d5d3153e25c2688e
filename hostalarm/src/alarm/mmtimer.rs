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
//! backend's [`crate::alarm::AlarmBackend::wait_fd`].
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
//! The backend's start, stop, consume and fork are `hostemu`'s
//! `EmulatedBackend`; this file is its millisecond policy. No event
//! --rearm(Some)--> event `current` pending --fires--> no event (the id in
//! `current` is now stale and harmless) --rearm--> ... --stop (kills the
//! event)--> no event.

use std::time::{Duration, Instant};

use super::MonoNs;
use super::hostemu::{EmulatedBackend, EmulatedTimerThread, EventId, MsPolicy, NANOS_PER_MS};

/// The name in precedence lists.
pub const NAME: &str = "mmtimer";

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

/// The multimedia timer's policy: a new one-shot event per re-arm.
#[derive(Debug, Default)]
pub struct MmTimer {
    /// The id of the last event created, if not killed since.
    current: Option<EventId>,
    /// The ids `timeSetEvent` handed out so far (ids start at 1: 0 is
    /// failure on Windows).
    last_id: u64,
}

impl MmTimer {
    /// `timeSetEvent(delay_ms, resolution, callback, 0, TIME_ONESHOT |
    /// TIME_CALLBACK_FUNCTION)`: a new one-shot event `delay_ms` from now.
    fn time_set_event(&mut self, thread: &EmulatedTimerThread, delay_ms: u32) -> EventId {
        self.last_id += 1;
        let id = EventId(self.last_id);
        let due = Instant::now() + Duration::from_millis(u64::from(delay_ms));
        thread.program(id, due, None);
        id
    }

    /// `timeKillEvent(id)`: cancels the current event if it has not fired.
    fn time_kill_event(&mut self, thread: &EmulatedTimerThread) {
        if let Some(id) = self.current.take() {
            thread.cancel(id);
        }
    }
}

impl MsPolicy for MmTimer {
    const NAME: &'static str = NAME;
    const THREAD_NAME: &'static str = "mmtimer-emul";
    const THREAD_WHAT: &'static str = "the emulated multimedia timer thread";
    const RESOLUTION_NS: u64 = MM_CAPS.period_min_ms as u64 * NANOS_PER_MS;
    const MIN_REARM_NS: u64 = MM_CAPS.period_min_ms as u64 * NANOS_PER_MS;

    fn started(&mut self, _thread: &EmulatedTimerThread) {}

    /// A re-arm kills the current event and creates a new one.
    fn rearm(&mut self, thread: &EmulatedTimerThread, deadline: Option<MonoNs>) {
        self.time_kill_event(thread);
        if let Some(d) = deadline {
            let delay = delay_ms_for(d, MonoNs::host_now(), time_get_dev_caps());
            self.current = Some(self.time_set_event(thread, delay));
        }
    }

    fn stopping(&mut self, thread: &EmulatedTimerThread) {
        self.time_kill_event(thread);
    }
}

/// The `mmtimer` backend. See the module documentation.
pub type MmTimerBackend = EmulatedBackend<MmTimer>;
