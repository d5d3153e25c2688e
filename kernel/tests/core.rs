//! The kernel core on the manual clock: exact values, every errno.

use std::sync::Arc;
use std::time::Duration;

use itimer_kernel::abi::*;
use itimer_kernel::manual_clock::ManualClock;
use itimer_kernel::{
    Arm, ClockId, ClockRegistry, Credentials, Disposition, Errno, ItimerSpec, KernelConfig, Nsec,
    SigEvent, SigSet, Subsystem, TimerId,
};

const MS: u64 = 1_000_000;

fn boot(timer_max: usize) -> (Subsystem, Arc<ManualClock>) {
    let clock = ManualClock::new(Nsec(1_000 * MS));
    let mut reg = ClockRegistry::new();
    clock
        .register(&mut reg, &[CLOCK_REALTIME0, CLOCK_REALTIME, CLOCK_HIGHRES])
        .unwrap();
    (
        Subsystem::new(
            KernelConfig {
                timer_max,
                ..KernelConfig::default()
            },
            reg,
        ),
        clock,
    )
}

fn ts(tv_sec: i64, tv_nsec: i64) -> Timespec {
    Timespec { tv_sec, tv_nsec }
}

fn spec(value: Timespec, interval: Timespec) -> Itimerspec {
    Itimerspec {
        it_interval: interval,
        it_value: value,
    }
}

fn sig(signo: i32, value: u64) -> Sigevent {
    Sigevent {
        sigev_notify: SIGEV_SIGNAL,
        sigev_signo: signo,
        sigev_value: value,
        ..Sigevent::default()
    }
}

fn alrm() -> SigSet {
    SigSet::of(SIGALRM).unwrap()
}

#[test]
fn create_settime_fire_consume() {
    let (k, clock) = boot(32);
    let p = k.spawn_process(Credentials::user(1000));
    let t = p.raw().timer_create(CLOCK_HIGHRES, None).unwrap();
    assert_eq!(t, 0);
    let old = p
        .raw()
        .timer_settime(t, 0, &spec(ts(0, 5 * MS as i64), ts(0, 0)))
        .unwrap();
    assert_eq!(old, Itimerspec::default());
    assert_eq!(
        p.raw().timer_gettime(t).unwrap().it_value,
        ts(0, 5 * MS as i64)
    );
    clock.advance(Nsec(2 * MS));
    assert_eq!(
        p.raw().timer_gettime(t).unwrap().it_value,
        ts(0, 3 * MS as i64)
    );
    assert_eq!(p.raw().sigpending().unwrap(), 0);
    clock.advance(Nsec(3 * MS));
    assert_eq!(p.raw().sigpending().unwrap(), alrm().0);
    let info = p.raw().sigtimedwait(alrm().0, Some(&ts(0, 0))).unwrap();
    assert_eq!(
        info,
        Siginfo {
            si_signo: SIGALRM,
            si_code: SI_TIMER,
            si_pid: p.pid().0,
            si_uid: 1000,
            si_value: t as u64,
            si_timerid: t,
            si_overrun: 0,
        }
    );
    assert_eq!(p.raw().timer_gettime(t).unwrap(), Itimerspec::default());
    assert_eq!(
        p.raw().sigtimedwait(alrm().0, Some(&ts(0, 0))),
        Err(Errno::EAGAIN)
    );
}

#[test]
fn sigevent_value_and_signal_are_reported() {
    let (k, clock) = boot(32);
    let p = k.spawn_process(Credentials::ROOT);
    let t = p
        .timer_create(
            ClockId::REALTIME,
            Some(SigEvent::Signal {
                signo: SIGUSR1,
                value: 0xfeed,
            }),
        )
        .unwrap();
    p.timer_settime(
        t,
        Arm::Relative,
        ItimerSpec::one_shot(Duration::from_nanos(7)),
    )
    .unwrap();
    clock.advance(Nsec(7));
    let info = p
        .sigtimedwait(SigSet::of(SIGUSR1).unwrap(), Some(Duration::ZERO))
        .unwrap();
    assert_eq!((info.si_signo, info.si_value), (SIGUSR1, 0xfeed));
    assert_eq!(info.si_uid, 0);
}

#[test]
fn periodic_unconsumed_for_a_second_overruns_nine() {
    let (k, clock) = boot(32);
    let p = k.spawn_process(Credentials::ROOT);
    let t = p.timer_create(ClockId::HIGHRES, None).unwrap();
    let period = Duration::from_millis(100);
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(period, period))
        .unwrap();
    for _ in 0..10 {
        clock.advance(Nsec(100 * MS));
    }
    assert_eq!(p.sigpending().unwrap(), alrm(), "exactly one queued signal");
    assert_eq!(p.timer_status(t.0).unwrap().pending, 10);
    assert_eq!(p.timer_status(t.0).unwrap().expirations, 10);
    let info = p.sigtimedwait(alrm(), Some(Duration::ZERO)).unwrap();
    assert_eq!(info.si_overrun, 9);
    assert_eq!(p.timer_getoverrun(t).unwrap(), 9);
    assert_eq!(
        p.sigtimedwait(alrm(), Some(Duration::ZERO)),
        Err(Errno::EAGAIN),
        "only one signal was queued"
    );
    // The next period starts counting afresh.
    clock.advance(Nsec(100 * MS));
    let info = p.sigtimedwait(alrm(), Some(Duration::ZERO)).unwrap();
    assert_eq!(info.si_overrun, 0);
    assert_eq!(p.timer_status(t.0).unwrap().expirations, 11);
    assert_eq!(p.timer_getoverrun(t).unwrap(), 0);
}

#[test]
fn late_backend_reports_missed_periods_in_one_step() {
    let (k, clock) = boot(32);
    let p = k.spawn_process(Credentials::ROOT);
    let t = p.timer_create(ClockId::HIGHRES, None).unwrap();
    let period = Duration::from_millis(100);
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(period, period))
        .unwrap();
    assert_eq!(
        clock.advance(Nsec(1_050 * MS)),
        1,
        "one fire call for 10 periods"
    );
    assert_eq!(p.timer_status(t.0).unwrap().pending, 10);
    // 50 ms into the 11th period.
    assert_eq!(p.timer_gettime(t).unwrap().value, Duration::from_millis(50));
    assert_eq!(
        p.sigtimedwait(alrm(), Some(Duration::ZERO))
            .unwrap()
            .si_overrun,
        9
    );
}

#[test]
fn overrun_saturates_at_delaytimer_max() {
    let (k, clock) = boot(32);
    let p = k.spawn_process(Credentials::ROOT);
    let t = p.timer_create(ClockId::HIGHRES, None).unwrap();
    let one = Duration::from_nanos(1);
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(one, one))
        .unwrap();
    let started = std::time::Instant::now();
    // 3e9 periods: more than 2^31.
    clock.advance(Nsec(3_000_000_000));
    assert_eq!(p.timer_status(t.0).unwrap().pending, 3_000_000_000);
    clock.advance(Nsec(3_000_000_000));
    assert_eq!(p.timer_status(t.0).unwrap().pending, 6_000_000_000);
    let info = p.sigtimedwait(alrm(), Some(Duration::ZERO)).unwrap();
    assert_eq!(info.si_overrun, DELAYTIMER_MAX);
    assert_eq!(p.timer_getoverrun(t).unwrap(), DELAYTIMER_MAX);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn ids_are_lowest_free_first() {
    let (k, _clock) = boot(64);
    let p = k.spawn_process(Credentials::ROOT);
    let ids: Vec<i32> = (0..20)
        .map(|_| p.raw().timer_create(CLOCK_HIGHRES, None).unwrap())
        .collect();
    assert_eq!(ids, (0..20).collect::<Vec<_>>());
    for id in [13, 2, 7] {
        p.raw().timer_delete(id).unwrap();
    }
    assert_eq!(p.raw().timer_create(CLOCK_HIGHRES, None), Ok(2));
    assert_eq!(p.raw().timer_create(CLOCK_HIGHRES, None), Ok(7));
    assert_eq!(p.raw().timer_create(CLOCK_HIGHRES, None), Ok(13));
    assert_eq!(p.raw().timer_create(CLOCK_HIGHRES, None), Ok(20));
}

#[test]
fn eagain_at_timer_max() {
    let (k, _clock) = boot(40);
    let p = k.spawn_process(Credentials::ROOT);
    for want in 0..40 {
        assert_eq!(p.raw().timer_create(CLOCK_HIGHRES, None), Ok(want));
    }
    assert_eq!(
        p.raw().timer_create(CLOCK_HIGHRES, None),
        Err(Errno::EAGAIN)
    );
    assert_eq!(p.stats().table_slots, 40);
    p.raw().timer_delete(17).unwrap();
    assert_eq!(p.raw().timer_create(CLOCK_HIGHRES, None), Ok(17));
}

#[test]
fn default_timer_max_is_at_least_32() {
    let cfg = KernelConfig::default();
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(cfg.timer_max, 32.max(4 * cpus));
}

#[test]
fn million_timers_create_without_scanning() {
    let (k, _clock) = boot(1_000_000);
    let p = k.spawn_process(Credentials::ROOT);
    let none = Sigevent {
        sigev_notify: SIGEV_NONE,
        ..Sigevent::default()
    };
    for want in 0..1_000_000 {
        assert_eq!(p.raw().timer_create(CLOCK_HIGHRES, Some(&none)), Ok(want));
    }
    assert_eq!(
        p.raw().timer_create(CLOCK_HIGHRES, Some(&none)),
        Err(Errno::EAGAIN)
    );
    p.raw().timer_delete(123_456).unwrap();
    assert_eq!(
        p.raw().timer_create(CLOCK_HIGHRES, Some(&none)),
        Ok(123_456)
    );
}

#[test]
fn errno_for_every_bad_timer_create() {
    let (k, _clock) = boot(32);
    let p = k.spawn_process(Credentials::ROOT);
    let raw = p.raw();
    for clock in [-1, 1, 2, 5, 6, CLOCK_VM, CLOCK_MAX, i32::MAX, i32::MIN] {
        assert_eq!(
            raw.timer_create(clock, None),
            Err(Errno::EINVAL),
            "clock {clock}"
        );
    }
    for notify in [0, 5, -1, 0x102, SIGEV_SIGNAL | 0x100, i32::MIN] {
        let ev = Sigevent {
            sigev_notify: notify,
            sigev_signo: SIGALRM,
            ..Sigevent::default()
        };
        assert_eq!(
            raw.timer_create(CLOCK_HIGHRES, Some(&ev)),
            Err(Errno::EINVAL),
            "notify {notify}"
        );
    }
    for signo in [0, -1, NSIG, NSIG + 1, i32::MAX] {
        assert_eq!(
            raw.timer_create(CLOCK_HIGHRES, Some(&sig(signo, 0))),
            Err(Errno::EINVAL),
            "signo {signo}"
        );
    }
    // Signal numbers are not checked for SIGEV_NONE.
    let none = Sigevent {
        sigev_notify: SIGEV_NONE,
        sigev_signo: -7,
        ..Sigevent::default()
    };
    assert!(raw.timer_create(CLOCK_HIGHRES, Some(&none)).is_ok());
    for signo in [1, SIGRTMAX] {
        assert!(
            raw.timer_create(CLOCK_HIGHRES, Some(&sig(signo, 0)))
                .is_ok()
        );
    }
    assert_eq!(p.stats().timers, 3, "failed creates leave nothing behind");
    assert_eq!(p.stats().sig_entries, 2);
}

#[test]
fn errno_for_every_bad_timespec() {
    let (k, _clock) = boot(32);
    let p = k.spawn_process(Credentials::ROOT);
    let raw = p.raw();
    let t = raw.timer_create(CLOCK_HIGHRES, None).unwrap();
    let bad = [
        ts(-1, 0),
        ts(0, -1),
        ts(0, 1_000_000_000),
        ts(i64::MIN, 0),
        ts(i64::MAX, 0),
        ts(i64::MAX / 1_000_000_000, 999_999_999),
    ];
    for b in bad {
        assert_eq!(
            raw.timer_settime(t, 0, &spec(b, ts(0, 0))),
            Err(Errno::EINVAL),
            "value {b:?}"
        );
        assert_eq!(
            raw.timer_settime(t, 0, &spec(ts(1, 0), b)),
            Err(Errno::EINVAL),
            "interval {b:?}"
        );
        // Disarming does not look at the interval.
        assert!(raw.timer_settime(t, 0, &spec(ts(0, 0), b)).is_ok());
        assert_eq!(
            raw.clock_settime(CLOCK_REALTIME, &b),
            Err(Errno::EINVAL),
            "clock_settime {b:?}"
        );
        assert_eq!(raw.sigtimedwait(alrm().0, Some(&b)), Err(Errno::EINVAL));
    }
    // Valid alone, but now + value overflows.
    let huge = ts(i64::MAX / 1_000_000_000, 0);
    assert_eq!(
        raw.timer_settime(t, 0, &spec(huge, ts(0, 0))),
        Err(Errno::EINVAL)
    );
    // As an absolute time it is fine.
    assert!(
        raw.timer_settime(t, TIMER_ABSTIME, &spec(huge, ts(0, 0)))
            .is_ok()
    );
    for flags in [2, -1, TIMER_ABSTIME | 4] {
        assert_eq!(
            raw.timer_settime(t, flags, &spec(ts(1, 0), ts(0, 0))),
            Err(Errno::EINVAL)
        );
    }
    // Typed layer: a Duration beyond i64 seconds.
    assert_eq!(
        p.timer_settime(
            TimerId(t),
            Arm::Relative,
            ItimerSpec::one_shot(Duration::from_secs(u64::MAX))
        ),
        Err(Errno::EINVAL)
    );
}

#[test]
fn errno_for_unknown_and_deleted_ids() {
    let (k, _clock) = boot(32);
    let p = k.spawn_process(Credentials::ROOT);
    let raw = p.raw();
    let t = raw.timer_create(CLOCK_HIGHRES, None).unwrap();
    raw.timer_delete(t).unwrap();
    let one = spec(ts(1, 0), ts(0, 0));
    for id in [t, 1, 31, 32, 1_000_000, -1, i32::MIN, i32::MAX] {
        assert_eq!(raw.timer_settime(id, 0, &one), Err(Errno::EINVAL));
        assert_eq!(raw.timer_gettime(id), Err(Errno::EINVAL));
        assert_eq!(raw.timer_getoverrun(id), Err(Errno::EINVAL));
        assert_eq!(raw.timer_delete(id), Err(Errno::EINVAL));
        assert_eq!(raw.timer_lwpbind(id, 1), Err(Errno::EINVAL));
    }
}

#[test]
fn clock_calls_check_in_illumos_order() {
    let (k, clock) = boot(32);
    let user = k.spawn_process(Credentials::user(7));
    let root = k.spawn_process(Credentials::ROOT);
    // Unknown clock first, even for the unprivileged and a bad timespec.
    assert_eq!(user.raw().clock_settime(99, &ts(-1, 0)), Err(Errno::EINVAL));
    // Then privilege, even with a bad timespec.
    assert_eq!(
        user.raw().clock_settime(CLOCK_REALTIME, &ts(-1, 0)),
        Err(Errno::EPERM)
    );
    // Then the timespec.
    assert_eq!(
        root.raw().clock_settime(CLOCK_REALTIME, &ts(-1, 0)),
        Err(Errno::EINVAL)
    );
    root.raw().clock_settime(CLOCK_REALTIME, &ts(5, 0)).unwrap();
    assert_eq!(clock.now(), Nsec(5_000_000_000));
    assert_eq!(root.raw().clock_gettime(CLOCK_REALTIME0), Ok(ts(5, 0)));
    assert_eq!(user.raw().clock_gettime(CLOCK_REALTIME), Ok(ts(5, 0)));
    assert_eq!(user.raw().clock_getres(CLOCK_HIGHRES), Ok(ts(0, 1)));
    for bad in [-1, 1, 99, CLOCK_MAX] {
        assert_eq!(user.raw().clock_gettime(bad), Err(Errno::EINVAL));
        assert_eq!(user.raw().clock_getres(bad), Err(Errno::EINVAL));
    }
}

#[test]
fn settime_returns_old_value_and_disarm_keeps_interval() {
    let (k, clock) = boot(32);
    let p = k.spawn_process(Credentials::ROOT);
    let t = p.timer_create(ClockId::HIGHRES, None).unwrap();
    let a = ItimerSpec::periodic(Duration::from_millis(10), Duration::from_millis(3));
    assert_eq!(
        p.timer_settime(t, Arm::Relative, a).unwrap(),
        ItimerSpec::default()
    );
    clock.advance(Nsec(4 * MS));
    let disarm = ItimerSpec::periodic(Duration::ZERO, Duration::from_millis(9));
    assert_eq!(
        p.timer_settime(t, Arm::Relative, disarm).unwrap(),
        ItimerSpec::periodic(Duration::from_millis(6), Duration::from_millis(3))
    );
    assert_eq!(
        p.timer_gettime(t).unwrap(),
        disarm,
        "disarmed, interval stored"
    );
    clock.advance(Nsec(100 * MS));
    assert_eq!(p.sigpending().unwrap(), SigSet::EMPTY);
}

#[test]
fn absolute_time_in_the_past_fires_at_once() {
    let (k, clock) = boot(32);
    let p = k.spawn_process(Credentials::ROOT);
    let t = p.timer_create(ClockId::REALTIME, None).unwrap();
    let now = clock.now();
    let past = Duration::from_nanos(now.0 - 350 * MS);
    p.timer_settime(
        t,
        Arm::Absolute,
        ItimerSpec::periodic(past, Duration::from_millis(100)),
    )
    .unwrap();
    // Deadline was 350 ms ago: 4 expirations (at -350, -250, -150, -50).
    let info = p.sigtimedwait(alrm(), Some(Duration::ZERO)).unwrap();
    assert_eq!(info.si_overrun, 3);
    assert_eq!(p.timer_gettime(t).unwrap().value, Duration::from_millis(50));
}

#[test]
fn overrun_carries_over_settime() {
    let (k, clock) = boot(32);
    let p = k.spawn_process(Credentials::ROOT);
    let t = p.timer_create(ClockId::HIGHRES, None).unwrap();
    let ms = Duration::from_millis(1);
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(ms, ms))
        .unwrap();
    clock.advance(Nsec(5 * MS));
    p.sigtimedwait(alrm(), Some(Duration::ZERO)).unwrap();
    assert_eq!(p.timer_getoverrun(t).unwrap(), 4);
    p.timer_settime(t, Arm::Relative, ItimerSpec::one_shot(ms))
        .unwrap();
    assert_eq!(p.timer_getoverrun(t).unwrap(), 4);
}

#[test]
fn sigev_none_notifies_nothing_but_runs() {
    let (k, clock) = boot(32);
    let p = k.spawn_process(Credentials::ROOT);
    let t = p
        .timer_create(ClockId::HIGHRES, Some(SigEvent::None))
        .unwrap();
    let ms = Duration::from_millis(1);
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(ms, ms))
        .unwrap();
    clock.advance(Nsec(MS / 2));
    assert_eq!(
        p.timer_gettime(t).unwrap().value,
        Duration::from_micros(500)
    );
    clock.advance(Nsec(10 * MS));
    assert_eq!(p.sigpending().unwrap(), SigSet::EMPTY);
    assert_eq!(
        p.timer_gettime(t).unwrap().value,
        Duration::from_micros(500)
    );
    assert_eq!(p.stats().sig_entries, 0);
}

#[test]
fn delete_with_queued_signal_still_delivers_it() {
    let (k, clock) = boot(32);
    let p = k.spawn_process(Credentials::ROOT);
    let t = p.timer_create(ClockId::HIGHRES, None).unwrap();
    let ms = Duration::from_millis(1);
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(ms, ms))
        .unwrap();
    clock.advance(Nsec(3 * MS));
    assert_eq!(p.timer_status(t.0).unwrap().pending, 3);
    p.timer_delete(t).unwrap();
    assert_eq!(clock.timers(), 0, "backend let go");
    assert_eq!(p.stats().sig_entries, 1, "orphan still queued");
    let info = p.sigtimedwait(alrm(), Some(Duration::ZERO)).unwrap();
    assert_eq!((info.si_timerid, info.si_overrun), (t.0, 0));
    assert_eq!(p.stats().sig_entries, 0, "orphan freed on delivery");
    // The id is free again and a new timer there starts clean.
    let t2 = p.timer_create(ClockId::HIGHRES, None).unwrap();
    assert_eq!(t2, t);
    assert_eq!(p.timer_getoverrun(t2).unwrap(), 0);
}

#[test]
fn ignored_signal_is_discarded_and_latches_overrun() {
    let (k, clock) = boot(32);
    let p = k.spawn_process(Credentials::ROOT);
    let t = p.timer_create(ClockId::HIGHRES, None).unwrap();
    let ms = Duration::from_millis(1);
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(ms, ms))
        .unwrap();
    clock.advance(Nsec(4 * MS));
    assert_eq!(
        p.sigaction(SIGALRM, Disposition::Ignore),
        Ok(Disposition::Default)
    );
    assert_eq!(
        p.sigpending().unwrap(),
        SigSet::EMPTY,
        "queued one discarded"
    );
    assert_eq!(p.timer_getoverrun(t).unwrap(), 3, "its callback ran");
    clock.advance(Nsec(2 * MS));
    assert_eq!(p.sigpending().unwrap(), SigSet::EMPTY);
    assert_eq!(p.timer_getoverrun(t).unwrap(), 1, "discarded at generation");
    // Blocked and ignored: held until unblocked, then discarded.
    p.sigblock(alrm()).unwrap();
    clock.advance(Nsec(MS));
    assert_eq!(p.sigpending().unwrap(), alrm());
    p.sigunblock(alrm()).unwrap();
    assert_eq!(p.sigpending().unwrap(), SigSet::EMPTY);
    assert_eq!(p.timer_getoverrun(t).unwrap(), 0);
    assert_eq!(
        p.raw().sigaction(SIGKILL, itimer_kernel::raw::SIG_IGN),
        Err(Errno::EINVAL)
    );
    assert_eq!(p.raw().sigaction(0, 0), Err(Errno::EINVAL));
    assert_eq!(p.raw().sigaction(SIGALRM, 7), Err(Errno::EINVAL));
    assert_eq!(p.raw().sigprocmask(9, Some(0)), Err(Errno::EINVAL));
}

#[test]
fn lowest_signal_first_then_fifo() {
    let (k, clock) = boot(32);
    let p = k.spawn_process(Credentials::ROOT);
    let mk = |signo, value| {
        let t = p
            .timer_create(ClockId::HIGHRES, Some(SigEvent::Signal { signo, value }))
            .unwrap();
        p.timer_settime(
            t,
            Arm::Relative,
            ItimerSpec::one_shot(Duration::from_nanos(value)),
        )
        .unwrap();
    };
    mk(SIGRTMIN + 1, 1);
    mk(SIGRTMIN, 2);
    mk(SIGRTMIN + 1, 3);
    mk(SIGRTMIN, 4);
    clock.advance(Nsec(10));
    let set = SigSet::FULL;
    let order: Vec<(i32, u64)> = (0..4)
        .map(|_| {
            let i = p.sigtimedwait(set, Some(Duration::ZERO)).unwrap();
            (i.si_signo, i.si_value)
        })
        .collect();
    assert_eq!(
        order,
        vec![
            (SIGRTMIN, 2),
            (SIGRTMIN, 4),
            (SIGRTMIN + 1, 1),
            (SIGRTMIN + 1, 3)
        ]
    );
}

#[test]
fn exit_frees_everything() {
    let (k, clock) = boot(64);
    let p = k.spawn_process(Credentials::ROOT);
    let q = k.spawn_process(Credentials::ROOT);
    let ms = Duration::from_millis(1);
    for i in 0..50 {
        let t = p.timer_create(ClockId::HIGHRES, None).unwrap();
        if i % 2 == 0 {
            p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(ms, ms))
                .unwrap();
        }
    }
    let tq = q.timer_create(ClockId::HIGHRES, None).unwrap();
    clock.advance(Nsec(3 * MS));
    assert_eq!(p.sigpending().unwrap(), alrm());
    assert_eq!(clock.timers(), 51);
    assert_eq!(k.processes().len(), 2);
    p.exit();
    assert_eq!(clock.timers(), 1, "only q's timer is left in the backend");
    assert_eq!(
        p.stats(),
        itimer_kernel::ProcStats {
            timers: 0,
            table_slots: 64,
            sig_entries: 0,
            lwps: 0
        }
    );
    assert_eq!(p.timer_gettime(TimerId(0)), Err(Errno::ESRCH));
    assert_eq!(p.timer_create(ClockId::HIGHRES, None), Err(Errno::ESRCH));
    assert_eq!(k.processes(), vec![q.pid()]);
    drop(q);
    assert_eq!(clock.timers(), 0, "drop exits too");
    assert!(k.processes().is_empty());
    let _ = tq;
}

#[test]
fn sigtimedwait_times_out_on_the_model_clock() {
    let (k, clock) = boot(32);
    let p = Arc::new(k.spawn_process(Credentials::ROOT));
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = {
        let p = p.clone();
        std::thread::spawn(move || {
            tx.send(p.sigtimedwait(alrm(), Some(Duration::from_millis(10))))
                .unwrap()
        })
    };
    // Wait until the callout is armed, then move time just short of it.
    while !clock.settled_timers(1) {
        std::thread::yield_now();
    }
    clock.advance(Nsec(10 * MS - 1));
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    clock.advance(Nsec(1));
    assert_eq!(rx.recv().unwrap(), Err(Errno::EAGAIN));
    waiter.join().unwrap();
    assert_eq!(clock.timers(), 0, "the callout is deleted");
}

#[test]
fn sigwaitinfo_wakes_on_fire_and_exit_interrupts() {
    let (k, clock) = boot(32);
    let p = Arc::new(k.spawn_process(Credentials::ROOT));
    let t = p.timer_create(ClockId::HIGHRES, None).unwrap();
    p.timer_settime(
        t,
        Arm::Relative,
        ItimerSpec::one_shot(Duration::from_millis(1)),
    )
    .unwrap();
    let waiter = {
        let p = p.clone();
        std::thread::spawn(move || p.sigwaitinfo(SigSet::FULL))
    };
    std::thread::sleep(Duration::from_millis(20));
    clock.advance(Nsec(MS));
    assert_eq!(waiter.join().unwrap().unwrap().si_timerid, t.0);

    let waiter = {
        let p = p.clone();
        std::thread::spawn(move || p.sigwaitinfo(SigSet::FULL))
    };
    std::thread::sleep(Duration::from_millis(20));
    p.exit();
    assert_eq!(waiter.join().unwrap(), Err(Errno::EINTR));
}

#[test]
fn lwpbind_and_lwpexit() {
    let (k, _clock) = boot(32);
    let p = k.spawn_process(Credentials::ROOT);
    let t = p.timer_create(ClockId::HIGHRES, None).unwrap();
    assert_eq!(
        p.timer_status(t.0).unwrap().lwp,
        Some(itimer_kernel::LwpId::MAIN)
    );
    let l2 = p.lwp_create().unwrap();
    p.timer_lwpbind(t, l2).unwrap();
    assert_eq!(p.timer_status(t.0).unwrap().lwp, Some(l2));
    assert_eq!(
        p.timer_lwpbind(t, itimer_kernel::LwpId(999)),
        Err(Errno::EINVAL)
    );
    p.lwp_exit(l2).unwrap();
    assert_eq!(p.timer_status(t.0).unwrap().lwp, None);
    assert_eq!(p.lwp_exit(l2), Err(Errno::EINVAL));
    assert_eq!(p.timer_lwpbind(t, l2), Err(Errno::EINVAL));
    // The timer is still usable.
    assert!(p.timer_gettime(t).is_ok());
    // The last LWP's exit is the process's: its timers go with it.
    p.lwp_exit(itimer_kernel::LwpId::MAIN).unwrap();
    assert!(p.has_exited());
    assert_eq!(p.stats().timers, 0);
    assert_eq!(p.timer_gettime(t), Err(Errno::ESRCH));
    assert_eq!(p.lwp_create(), Err(Errno::ESRCH));
}
