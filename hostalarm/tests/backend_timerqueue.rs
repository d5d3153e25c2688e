//! The `timerqueue` backend (Windows timer-queue semantics, emulated) on
//! the real host, and its due-time arithmetic exactly.

#[macro_use]
mod backend_common;

use backend_common::{MS, after, assert_fires_at, serial};
use itimer_hostalarm::alarm::timerqueue::{
    DUMMY_PERIOD_MS, MIN_DUE_MS, PARKED_DUE_MS, TimerQueueBackend, due_ms_for,
};
use itimer_hostalarm::alarm::{AlarmBackend, MonoNs};

fn make() -> Box<dyn AlarmBackend> {
    Box::new(TimerQueueBackend::new())
}

conformance_suite!(make);

#[test]
fn constants_are_the_windows_ones() {
    assert_eq!(DUMMY_PERIOD_MS, 3_600_000, "one hour");
    assert_eq!(PARKED_DUE_MS, 0xFFFF_FFFE, "just below INFINITE");
    assert_eq!(MIN_DUE_MS, 1);
    let b = TimerQueueBackend::new();
    assert_eq!(b.resolution_ns(), 1_000_000);
    assert_eq!(b.min_rearm_ns(), 1_000_000);
}

#[test]
fn due_time_rounds_up_to_whole_ms_and_parks_beyond_range() {
    let now = MonoNs(7_000_000_000);
    let at = |ns: u64| due_ms_for(MonoNs(now.0 + ns), now);
    assert_eq!(at(1), 1);
    assert_eq!(at(2_000_000), 2);
    assert_eq!(at(2_000_001), 3, "never early: round up");
    assert_eq!(at(3_600_000_000_000), 3_600_000);
    let parked_ns = u64::from(PARKED_DUE_MS) * 1_000_000;
    assert_eq!(at(parked_ns), PARKED_DUE_MS);
    assert_eq!(
        at(parked_ns + 1),
        PARKED_DUE_MS,
        "beyond a DWORD of ms: parked"
    );
    assert_eq!(due_ms_for(MonoNs(0), now), 1, "past: the 1 ms floor");
}

/// A freshly started backend is parked: it does not kick the loop the way
/// QEMU's 1 ms initial due time did.
#[test]
fn starts_parked() {
    let _g = serial();
    let mut b = TimerQueueBackend::new();
    b.start().unwrap();
    backend_common::assert_quiet_until(&b, after(50 * MS), "freshly started");
    assert_eq!(b.rearm_calls(), 0, "creation is not a re-arm");
    // The one timer is moved, not recreated, on every re-arm.
    for k in 1..=4u64 {
        b.rearm(Some(after(k * 15 * MS))).unwrap();
    }
    let last = after(50 * MS);
    b.rearm(Some(last)).unwrap();
    let w = assert_fires_at(&mut b, last, "the last of five changes");
    assert_eq!(w.expirations, 1);
    assert_eq!(b.rearm_calls(), 5);
}
