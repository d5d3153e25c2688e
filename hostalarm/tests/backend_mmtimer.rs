//! The `mmtimer` backend (Windows multimedia timer semantics, emulated) on
//! the real host, and its delay arithmetic exactly.

#[macro_use]
mod backend_common;

use backend_common::{MS, after, assert_fires_at, serial};
use itimer_hostalarm::alarm::mmtimer::{MM_CAPS, MmTimerBackend, TimeCaps, delay_ms_for};
use itimer_hostalarm::alarm::{AlarmBackend, MonoNs};

fn make() -> Box<dyn AlarmBackend> {
    Box::new(MmTimerBackend::new())
}

conformance_suite!(make);

#[test]
fn device_caps_are_windows_defaults() {
    assert_eq!(
        MM_CAPS,
        TimeCaps {
            period_min_ms: 1,
            period_max_ms: 1_000_000
        }
    );
    let b = MmTimerBackend::new();
    assert_eq!(b.resolution_ns(), 1_000_000);
    assert_eq!(b.min_rearm_ns(), 1_000_000);
}

#[test]
fn delay_rounds_up_to_whole_ms_and_clamps_to_the_device_range() {
    let now = MonoNs(10_000_000_000);
    let at = |ns: u64| delay_ms_for(MonoNs(now.0 + ns), now, MM_CAPS);
    assert_eq!(at(1), 1, "1 ns ahead: one whole ms");
    assert_eq!(at(1_000_000), 1);
    assert_eq!(at(1_000_001), 2, "never early: round up");
    assert_eq!(at(1_500_000), 2);
    assert_eq!(at(5_000_000), 5);
    assert_eq!(at(999_999_000_000), 999_999);
    assert_eq!(at(1_000_000_000_000), 1_000_000, "wPeriodMax itself");
    assert_eq!(
        at(5_000_000_000_000),
        1_000_000,
        "beyond wPeriodMax: clamped"
    );
    assert_eq!(delay_ms_for(MonoNs(0), now, MM_CAPS), 1, "past: wPeriodMin");
    assert_eq!(delay_ms_for(now, now, MM_CAPS), 1, "now: wPeriodMin");
    assert_eq!(
        delay_ms_for(MonoNs(u64::MAX), MonoNs(0), MM_CAPS),
        1_000_000
    );
}

/// Re-arms kill the previous one-shot event: a burst of re-arms to
/// staggered deadlines yields exactly one wakeup, for the last one.
#[test]
fn rearm_kills_the_previous_event() {
    let _g = serial();
    let mut b = MmTimerBackend::new();
    b.start().unwrap();
    for k in 1..=5u64 {
        b.rearm(Some(after(k * 10 * MS))).unwrap();
    }
    let last = after(60 * MS);
    b.rearm(Some(last)).unwrap();
    let w = assert_fires_at(&mut b, last, "the last of six re-arms");
    assert_eq!(w.expirations, 1, "killed events never ran their callback");
    assert_eq!(b.rearm_calls(), 6);
    backend_common::assert_quiet_until(&b, after(40 * MS), "after the one-shot fired");
}
