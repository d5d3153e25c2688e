//! The `timerfd` backend on the real host.

#[macro_use]
mod backend_common;

use backend_common::{MS, after, assert_fires_at, serial};
use itimer_hostalarm::alarm::AlarmBackend;
use itimer_hostalarm::alarm::timerfd::TimerFdBackend;

fn make() -> Box<dyn AlarmBackend> {
    Box::new(TimerFdBackend::new())
}

conformance_suite!(make);

#[test]
fn reports_its_host_floor_and_resolution() {
    let _g = serial();
    let mut b = TimerFdBackend::new();
    b.start().expect("start");
    assert_eq!(b.name(), "timerfd");
    assert_eq!(b.min_rearm_ns(), 0);
    // clock_getres(CLOCK_MONOTONIC): 1 ns with hrtimers, at most a jiffy
    // (10 ms at HZ=100) without.
    let res = b.resolution_ns();
    assert!((1..=10 * MS).contains(&res), "resolution {res} ns");
}

/// The wall-clock step path cannot be driven without CAP_SYS_TIME (and
/// stepping a shared machine's clock is not a test's business), so this
/// checks the other half: many real wakeups never report a step, and the
/// canceller stays armed (a zero-expiration wakeup would show otherwise).
#[test]
fn no_spurious_wall_clock_step() {
    let _g = serial();
    let mut b = TimerFdBackend::new();
    b.start().expect("start");
    for _ in 0..20 {
        let d = after(MS);
        b.rearm(Some(d)).expect("rearm");
        let w = assert_fires_at(&mut b, d, "repeated 1 ms");
        assert!(!w.wall_clock_stepped);
        assert_eq!(w.expirations, 1, "one-shot timerfd expires once");
    }
    // Nothing pending: consume reports an empty wakeup, no step.
    let w = b.consume().expect("consume");
    assert_eq!(w.expirations, 0);
    assert!(!w.wall_clock_stepped);
}

#[test]
fn rearm_before_start_is_ebadf() {
    let mut b = TimerFdBackend::new();
    assert_eq!(b.rearm(None), Err(nix::errno::Errno::EBADF));
    assert_eq!(b.consume().map(|_| ()), Err(nix::errno::Errno::EBADF));
}
