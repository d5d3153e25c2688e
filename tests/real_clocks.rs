//! The core scenarios on the real host, once per alarm backend.
//!
//! Tolerances (stated here, for a loaded 2-core CI machine): a timer never
//! fires before its deadline minus the backend's resolution, and is late
//! by at most [`LATE`]. The `unix` backend is process-wide, and all of these
//! measure wall time, so the tests take one lock and run one at a time.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use itimer::abi::*;
use itimer::{Arm, ClockId, Credentials, ItimerSpec, Kernel, SigEvent, SigSet};

const BACKENDS: [&str; 5] = ["timerfd", "dynticks", "unix", "mmtimer", "timerqueue"];
/// The most a delivery may be late on a loaded CI machine.
const LATE: Duration = Duration::from_millis(60);

static SERIAL: Mutex<()> = Mutex::new(());

fn boot(name: &str) -> Kernel {
    let k = Kernel::builder().alarms(name).boot().expect("boots");
    assert_eq!(k.alarm_backend(), name, "the named backend started");
    k
}

fn alrm() -> SigSet {
    SigSet::of(SIGALRM).unwrap()
}

/// Waits for a SIGALRM and checks when it came, relative to `start`.
fn expect_within(
    p: &itimer::Process,
    start: Instant,
    due: Duration,
    res: Duration,
    what: &str,
) -> i32 {
    let info = p
        .sigtimedwait(alrm(), Some(due + LATE + Duration::from_millis(200)))
        .unwrap_or_else(|e| panic!("{what}: no signal ({e})"));
    let at = start.elapsed();
    assert!(at + res >= due, "{what}: early: {at:?} < {due:?}");
    assert!(
        at <= due + LATE,
        "{what}: late: {at:?} > {due:?} + {LATE:?}"
    );
    info.si_overrun
}

#[test]
fn one_shot_periodic_and_absolute_on_every_backend() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for name in BACKENDS {
        let k = boot(name);
        let res = Duration::from_nanos(k.resolution_ns());
        let p = k.spawn_process(Credentials::ROOT);
        assert_eq!(p.clock_getres(ClockId::HIGHRES).unwrap(), res, "{name}");

        // One-shot, 1 ms and 5 ms.
        for ms in [1, 5] {
            let t = p.timer_create(ClockId::HIGHRES, None).unwrap();
            let start = Instant::now();
            p.timer_settime(
                t,
                Arm::Relative,
                ItimerSpec::one_shot(Duration::from_millis(ms)),
            )
            .unwrap();
            expect_within(&p, start, Duration::from_millis(ms), res, name);
            p.timer_delete(t).unwrap();
        }

        // Periodic 5 ms: every expiration is either notified or an overrun.
        let t = p.timer_create(ClockId::HIGHRES, None).unwrap();
        let period = Duration::from_millis(5);
        let start = Instant::now();
        p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(period, period))
            .unwrap();
        let mut expirations = 0u64;
        while start.elapsed() < Duration::from_millis(100) {
            let i = p
                .sigtimedwait(alrm(), Some(Duration::from_millis(500)))
                .unwrap();
            expirations += 1 + i.si_overrun as u64;
        }
        p.timer_settime(t, Arm::Relative, ItimerSpec::disarm())
            .unwrap();
        let elapsed = start.elapsed();
        while let Ok(i) = p.sigtimedwait(alrm(), Some(Duration::ZERO)) {
            expirations += 1 + i.si_overrun as u64;
        }
        let max = elapsed.as_nanos() / period.as_nanos();
        let min = (elapsed.saturating_sub(LATE)).as_nanos() / period.as_nanos();
        assert!(
            (min as u64..=max as u64).contains(&expirations),
            "{name}: {expirations} expirations in {elapsed:?}, want {min}..={max}"
        );

        // Absolute REALTIME 10 ms ahead.
        let r = p.timer_create(ClockId::REALTIME, None).unwrap();
        let now = p.clock_gettime(ClockId::REALTIME).unwrap();
        let start = Instant::now();
        p.timer_settime(
            r,
            Arm::Absolute,
            ItimerSpec::one_shot(now + Duration::from_millis(10)),
        )
        .unwrap();
        expect_within(&p, start, Duration::from_millis(10), res, name);

        // Absolute in the past: at once, missed periods counted.
        let now = p.clock_gettime(ClockId::REALTIME).unwrap();
        let start = Instant::now();
        p.timer_settime(
            r,
            Arm::Absolute,
            ItimerSpec::periodic(
                now - Duration::from_millis(1_000),
                Duration::from_secs(3600),
            ),
        )
        .unwrap();
        assert_eq!(expect_within(&p, start, Duration::ZERO, res, name), 0);

        // clock_settime forward past an absolute deadline fires it.
        let now = p.clock_gettime(ClockId::REALTIME).unwrap();
        p.timer_settime(
            r,
            Arm::Absolute,
            ItimerSpec::one_shot(now + Duration::from_secs(3600)),
        )
        .unwrap();
        let start = Instant::now();
        p.clock_settime(ClockId::REALTIME, now + Duration::from_secs(7200))
            .unwrap();
        expect_within(&p, start, Duration::ZERO, res, name);
        assert!(p.clock_gettime(ClockId::REALTIME).unwrap() >= now + Duration::from_secs(7200));

        // The VM clock: stopped, its timer does not fire; resumed, it does.
        let v = p.timer_create(ClockId::VM, None).unwrap();
        p.timer_settime(
            v,
            Arm::Relative,
            ItimerSpec::one_shot(Duration::from_millis(20)),
        )
        .unwrap();
        k.vm_stop();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            p.sigpending().unwrap(),
            SigSet::EMPTY,
            "{name}: VM timer ran while stopped"
        );
        let left = p.timer_gettime(v).unwrap().value;
        assert!(left > Duration::ZERO && left <= Duration::from_millis(20));
        let start = Instant::now();
        k.vm_start();
        expect_within(&p, start, left, res, name);
    }
}

#[test]
fn unprivileged_highres_floor_holds_on_the_real_host() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let k = boot("timerfd");
    let p = k.spawn_process(Credentials::user(1000));
    let t = p
        .timer_create(
            ClockId::HIGHRES,
            Some(SigEvent::Signal {
                signo: SIGALRM,
                value: 0,
            }),
        )
        .unwrap();
    let tiny = Duration::from_micros(1);
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(tiny, tiny))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    p.timer_settime(t, Arm::Relative, ItimerSpec::disarm())
        .unwrap();
    let i = p.sigtimedwait(alrm(), Some(Duration::ZERO)).unwrap();
    let expirations = 1 + i.si_overrun as u64;
    // 100 ms at a 200 µs floor is at most ~500 (+ scheduling slack), far
    // below the 100,000 a 1 µs period would give.
    assert!(
        expirations <= 700,
        "{expirations} expirations: the floor did not hold"
    );
    assert!(
        expirations >= 100,
        "{expirations} expirations: the timer hardly ran"
    );
}
