//! Port (`SIGEV_PORT`) and `SIGEV_THREAD` notification on the real host,
//! once per alarm backend.
//!
//! Tolerances, stated for a loaded 2-core CI machine (the same as
//! `tests/real_clocks.rs`): a notification never arrives before its
//! deadline minus the backend's resolution, and at most [`LATE`] after it.
//! A periodic timer's counts are bounded by wall time: every expiration
//! due more than [`LATE`] before the count was taken is in it, and none
//! due after (plus the resolution). The `unix` backend is process-wide and
//! these measure wall time, so the tests run one at a time.

use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use itimer::abi::*;
use itimer::kernel::{PortId, ThreadNotify};
use itimer::{Arm, ClockId, Credentials, ItimerSpec, Kernel, Process, SigEvent, TimerId};

const BACKENDS: [&str; 5] = ["timerfd", "dynticks", "unix", "mmtimer", "timerqueue"];
/// The most a delivery may be late on a loaded CI machine.
const LATE: Duration = Duration::from_millis(60);
/// The period of the counting scenarios.
const PERIOD: Duration = Duration::from_millis(10);

static SERIAL: Mutex<()> = Mutex::new(());

fn boot(name: &str) -> Kernel {
    let k = Kernel::builder().alarms(name).boot().expect("boots");
    assert_eq!(k.alarm_backend(), name, "the named backend started");
    k
}

/// Checks that a notification seen `at` after arming was on time for a
/// deadline `due` after arming.
fn on_time(at: Duration, due: Duration, res: Duration, what: &str) {
    assert!(at + res >= due, "{what}: early: {at:?} < {due:?}");
    assert!(
        at <= due + LATE,
        "{what}: late: {at:?} > {due:?} + {LATE:?}"
    );
}

/// Checks a count of periodic expirations taken between `from` and `to`
/// after arming (first expiration one period after arming).
fn count_in_bounds(n: u64, from: Duration, to: Duration, res: Duration, what: &str) {
    let min = from.saturating_sub(LATE).as_nanos() / PERIOD.as_nanos();
    let max = (to + res).as_nanos() / PERIOD.as_nanos();
    assert!(
        (min..=max).contains(&u128::from(n)),
        "{what}: {n} expirations, expected {min}..={max} (taken {from:?}..{to:?})"
    );
}

fn arm(p: &Process, t: TimerId, spec: ItimerSpec) -> Instant {
    let start = Instant::now();
    p.timer_settime(t, Arm::Relative, spec).unwrap();
    start
}

#[test]
fn port_timer_delivers_on_time_and_counts_on_every_backend() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for name in BACKENDS {
        let k = boot(name);
        let res = Duration::from_nanos(k.resolution_ns());
        let p = k.spawn_process(Credentials::ROOT);
        let port: PortId = p.port_create().unwrap();
        let t = p
            .timer_create(
                ClockId::HIGHRES,
                Some(SigEvent::Port {
                    port: port.0,
                    user: 7,
                }),
            )
            .unwrap();
        for ms in [1, 5] {
            let due = Duration::from_millis(ms);
            let start = arm(&p, t, ItimerSpec::one_shot(due));
            let ev = p
                .port_get(port, Some(due + LATE + Duration::from_millis(200)))
                .unwrap_or_else(|e| panic!("{name} {ms} ms: no event ({e})"));
            on_time(start.elapsed(), due, res, &format!("{name} {ms} ms"));
            assert_eq!(
                (
                    ev.portev_source,
                    ev.portev_object,
                    ev.portev_user,
                    ev.portev_events
                ),
                (PORT_SOURCE_TIMER as u16, t.0 as u64, 7, 1),
                "{name}"
            );
        }
        // Periodic, not retrieved for 10 periods: one event counts them all.
        let start = arm(&p, t, ItimerSpec::periodic(PERIOD, PERIOD));
        std::thread::sleep(10 * PERIOD);
        let from = start.elapsed();
        let ev = p.port_get(port, Some(Duration::from_secs(1))).unwrap();
        let to = start.elapsed();
        count_in_bounds(
            ev.portev_events as u64,
            from,
            to,
            res,
            &format!("{name} periodic"),
        );
        p.timer_delete(t).unwrap();
        assert_eq!(
            p.port_pending(port).unwrap(),
            0,
            "{name}: delete removed it"
        );
    }
}

#[test]
fn sigev_thread_callback_runs_on_time_and_counts_on_every_backend() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for name in BACKENDS {
        let k = boot(name);
        let res = Duration::from_nanos(k.resolution_ns());
        let p = k.spawn_process(Credentials::ROOT);
        let (tx, rx) = mpsc::channel::<(Instant, ThreadNotify)>();
        let tx = Mutex::new(tx);
        let t = p
            .timer_create(
                ClockId::HIGHRES,
                Some(SigEvent::thread(9, move |_, n| {
                    let _ = tx.lock().unwrap().send((Instant::now(), n));
                })),
            )
            .unwrap();
        for ms in [1, 5] {
            let due = Duration::from_millis(ms);
            let start = arm(&p, t, ItimerSpec::one_shot(due));
            let (when, n) = rx
                .recv_timeout(due + LATE + Duration::from_millis(200))
                .unwrap_or_else(|e| panic!("{name} {ms} ms: no callback ({e})"));
            on_time(when - start, due, res, &format!("{name} {ms} ms"));
            assert_eq!(
                n,
                ThreadNotify {
                    timer: t,
                    value: 9,
                    expirations: 1
                },
                "{name}"
            );
        }
        // Periodic for 10 periods, then disarmed: the callbacks' counts
        // plus what is still pending add up to the expirations.
        let start = arm(&p, t, ItimerSpec::periodic(PERIOD, PERIOD));
        std::thread::sleep(10 * PERIOD);
        let from = start.elapsed();
        p.timer_settime(t, Arm::Relative, ItimerSpec::disarm())
            .unwrap();
        let to = start.elapsed();
        let mut total = 0u64;
        while let Ok((_, n)) = rx.recv_timeout(Duration::from_millis(200)) {
            assert!(n.expirations >= 1);
            total += n.expirations as u64;
        }
        total += p.timer_status(t.0).unwrap().pending;
        count_in_bounds(total, from, to, res, &format!("{name} periodic"));
        drop(p);
        assert_eq!(k.inner().service_threads(), 0, "{name}: exit joined it");
    }
}
