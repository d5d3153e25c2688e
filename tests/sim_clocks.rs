//! The whole stack on the simulated host: every clock, exact nanoseconds.
//!
//! "Fires at exactly t" is checked as: after advancing to t − 1 ns nothing
//! is pending; after one more nanosecond the signal is.

use std::time::Duration;

use itimer::abi::*;
use itimer::{Arm, ClockId, Credentials, Errno, ItimerSpec, Kernel, Process, SigSet, SimKernel};

const US: i64 = 1_000;
const MS: i64 = 1_000_000;
const SEC: i64 = 1_000_000_000;

fn alrm() -> SigSet {
    SigSet::of(SIGALRM).unwrap()
}

fn d(ns: i64) -> Duration {
    Duration::from_nanos(ns as u64)
}

/// Advances by `ns - 1`, checks nothing is pending, advances 1 more and
/// takes the signal; returns its overrun.
fn fires_after(k: &SimKernel, p: &Process, ns: i64) -> i32 {
    k.advance_ns(ns - 1).unwrap();
    assert_eq!(
        p.sigpending().unwrap(),
        SigSet::EMPTY,
        "fired early (before {ns} ns)"
    );
    k.advance_ns(1).unwrap();
    p.sigtimedwait(alrm(), Some(Duration::ZERO))
        .unwrap_or_else(|e| panic!("did not fire at {ns} ns: {e}"))
        .si_overrun
}

fn quiet(p: &Process) {
    assert_eq!(p.sigpending().unwrap(), SigSet::EMPTY);
}

#[test]
fn one_shot_and_periodic_on_every_timer_clock() {
    for clock in [
        ClockId::REALTIME,
        ClockId(CLOCK_REALTIME0),
        ClockId::HIGHRES,
        ClockId::VM,
    ] {
        let k = Kernel::simulated();
        let p = k.spawn_process(Credentials::ROOT);
        let t = p.timer_create(clock, None).unwrap();
        p.timer_settime(t, Arm::Relative, ItimerSpec::one_shot(d(1_500 * US)))
            .unwrap();
        assert_eq!(fires_after(&k, &p, 1_500 * US), 0, "{clock:?}");
        k.advance_ns(10 * MS).unwrap();
        quiet(&p);

        p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(d(7 * MS), d(3 * MS)))
            .unwrap();
        assert_eq!(fires_after(&k, &p, 7 * MS), 0);
        assert_eq!(p.timer_gettime(t).unwrap().value, d(3 * MS));
        for _ in 0..5 {
            assert_eq!(fires_after(&k, &p, 3 * MS), 0, "{clock:?}");
        }
        assert_eq!(
            p.timer_gettime(t).unwrap(),
            ItimerSpec::periodic(d(3 * MS), d(3 * MS))
        );
    }
}

#[test]
fn unconsumed_periods_count_as_overrun() {
    let k = Kernel::simulated();
    let p = k.spawn_process(Credentials::ROOT);
    let t = p.timer_create(ClockId::HIGHRES, None).unwrap();
    p.timer_settime(
        t,
        Arm::Relative,
        ItimerSpec::periodic(d(100 * MS), d(100 * MS)),
    )
    .unwrap();
    k.advance(Duration::from_secs(1)).unwrap();
    let i = p.sigtimedwait(alrm(), Some(Duration::ZERO)).unwrap();
    assert_eq!(i.si_overrun, 9);
    assert_eq!(p.timer_getoverrun(t).unwrap(), 9);
}

#[test]
fn abstime_in_the_past_fires_at_once_with_missed_periods() {
    for clock in [ClockId::REALTIME, ClockId::HIGHRES, ClockId::VM] {
        let k = Kernel::simulated();
        let p = k.spawn_process(Credentials::ROOT);
        k.advance_ns(5 * SEC).unwrap();
        let now = p.clock_gettime(clock).unwrap();
        let t = p.timer_create(clock, None).unwrap();
        // One-shot, 1 ns in the past.
        p.timer_settime(t, Arm::Absolute, ItimerSpec::one_shot(now - d(1)))
            .unwrap();
        k.settle().unwrap();
        assert_eq!(
            p.sigtimedwait(alrm(), Some(Duration::ZERO))
                .unwrap()
                .si_overrun,
            0,
            "{clock:?}"
        );
        // Periodic, 1 s in the past with a 300 ms period: expirations at
        // -1000, -700, -400, -100 ms: four, so overrun 3; next in 200 ms.
        p.timer_settime(
            t,
            Arm::Absolute,
            ItimerSpec::periodic(now - d(SEC), d(300 * MS)),
        )
        .unwrap();
        k.settle().unwrap();
        assert_eq!(
            p.sigtimedwait(alrm(), Some(Duration::ZERO))
                .unwrap()
                .si_overrun,
            3,
            "{clock:?}"
        );
        assert_eq!(p.timer_gettime(t).unwrap().value, d(200 * MS), "{clock:?}");
        assert_eq!(fires_after(&k, &p, 200 * MS), 0);
    }
}

#[test]
fn clock_settime_moves_absolute_realtime_timers_only() {
    let k = Kernel::simulated();
    let p = k.spawn_process(Credentials::ROOT);
    let now = p.clock_gettime(ClockId::REALTIME).unwrap();
    let abs = p.timer_create(ClockId::REALTIME, None).unwrap();
    let rel = p
        .timer_create(
            ClockId::REALTIME,
            Some(itimer::SigEvent::Signal {
                signo: SIGUSR1,
                value: 1,
            }),
        )
        .unwrap();
    p.timer_settime(abs, Arm::Absolute, ItimerSpec::one_shot(now + d(10 * SEC)))
        .unwrap();
    p.timer_settime(rel, Arm::Relative, ItimerSpec::one_shot(d(10 * SEC)))
        .unwrap();

    // Back 5 s: the absolute timer now has 15 s to go; the relative one 10.
    p.clock_settime(ClockId::REALTIME, now - d(5 * SEC))
        .unwrap();
    k.settle().unwrap();
    assert_eq!(p.timer_gettime(abs).unwrap().value, d(15 * SEC));
    assert_eq!(p.timer_gettime(rel).unwrap().value, d(10 * SEC));
    k.advance_ns(10 * SEC).unwrap();
    assert_eq!(p.sigpending().unwrap(), SigSet::of(SIGUSR1).unwrap());
    p.sigtimedwait(SigSet::of(SIGUSR1).unwrap(), Some(Duration::ZERO))
        .unwrap();
    // Forward past the absolute deadline: it fires at once.
    let wall = p.clock_gettime(ClockId::REALTIME).unwrap();
    assert_eq!(wall, now + d(5 * SEC));
    p.clock_settime(ClockId::REALTIME, wall + d(60 * SEC))
        .unwrap();
    k.settle().unwrap();
    assert_eq!(
        p.sigtimedwait(alrm(), Some(Duration::ZERO))
            .unwrap()
            .si_timerid,
        abs.0
    );
    // The host's wall clock was never touched.
    assert_eq!(k.host().wall_ns(), 1_700_000_000 * SEC + 10 * SEC);
}

#[test]
fn periodic_absolute_timer_stepped_forward_counts_skipped_periods() {
    let k = Kernel::simulated();
    let p = k.spawn_process(Credentials::ROOT);
    let now = p.clock_gettime(ClockId::REALTIME).unwrap();
    let t = p.timer_create(ClockId::REALTIME, None).unwrap();
    p.timer_settime(t, Arm::Absolute, ItimerSpec::periodic(now + d(SEC), d(SEC)))
        .unwrap();
    // Jump 10.5 s: deadlines at +1..+10 s passed: 10 expirations.
    p.clock_settime(ClockId::REALTIME, now + d(10 * SEC + SEC / 2))
        .unwrap();
    k.settle().unwrap();
    assert_eq!(
        p.sigtimedwait(alrm(), Some(Duration::ZERO))
            .unwrap()
            .si_overrun,
        9
    );
    assert_eq!(p.timer_gettime(t).unwrap().value, d(SEC / 2));
}

#[test]
fn relative_realtime_periodic_is_unaffected_by_clock_settime() {
    let k = Kernel::simulated();
    let p = k.spawn_process(Credentials::ROOT);
    let t = p.timer_create(ClockId::REALTIME, None).unwrap();
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(d(2 * MS), d(2 * MS)))
        .unwrap();
    let now = p.clock_gettime(ClockId::REALTIME).unwrap();
    p.clock_settime(ClockId::REALTIME, now + d(3600 * SEC))
        .unwrap();
    k.settle().unwrap();
    quiet(&p);
    assert_eq!(fires_after(&k, &p, 2 * MS), 0);
    p.clock_settime(ClockId::REALTIME, now - d(3600 * SEC))
        .unwrap();
    assert_eq!(fires_after(&k, &p, 2 * MS), 0);
}

#[test]
fn vm_clock_stops_and_resumes() {
    let k = Kernel::simulated();
    let p = k.spawn_process(Credentials::ROOT);
    let t = p.timer_create(ClockId::VM, None).unwrap();
    p.timer_settime(
        t,
        Arm::Relative,
        ItimerSpec::periodic(d(10 * MS), d(10 * MS)),
    )
    .unwrap();
    k.advance_ns(4 * MS).unwrap();
    let vm_before = p.clock_gettime(ClockId::VM).unwrap();
    k.vm_stop();
    k.advance_ns(SEC).unwrap();
    quiet(&p);
    assert_eq!(p.clock_gettime(ClockId::VM).unwrap(), vm_before, "frozen");
    assert_eq!(
        p.timer_gettime(t).unwrap().value,
        d(6 * MS),
        "remaining frozen"
    );
    k.vm_start();
    assert_eq!(fires_after(&k, &p, 6 * MS), 0);
    assert_eq!(fires_after(&k, &p, 10 * MS), 0);
    // A HIGHRES timer is not affected by the VM stopping.
    let h = p.timer_create(ClockId::HIGHRES, None).unwrap();
    p.timer_settime(h, Arm::Relative, ItimerSpec::one_shot(d(MS)))
        .unwrap();
    k.vm_stop();
    assert_eq!(
        fires_after(&k, &p, MS),
        0,
        "HIGHRES fires while the VM is stopped"
    );
}

/// Takes `sig` (it must be pending) and returns its overrun.
fn take(p: &Process, sig: i32) -> i32 {
    p.sigtimedwait(SigSet::of(sig).unwrap(), Some(Duration::ZERO))
        .unwrap_or_else(|e| panic!("signal {sig} not pending: {e}"))
        .si_overrun
}

fn not_pending(p: &Process, sig: i32) -> bool {
    !p.sigpending().unwrap().contains(sig)
}

/// A periodic `CLOCK_VM` timer (10 ms from guest 0) across stop, step,
/// warp (stopped and running) and start, next to a HIGHRES timer (every
/// 4 ms of host time) that keeps host time throughout.
#[test]
fn vm_step_and_warp_drive_guest_time_exactly() {
    let k = Kernel::simulated();
    let p = k.spawn_process(Credentials::ROOT);
    let sig = |signo| {
        Some(itimer::SigEvent::Signal {
            signo,
            value: u64::try_from(signo).unwrap(),
        })
    };
    let vm = p.timer_create(ClockId::VM, sig(SIGUSR1)).unwrap();
    let hr = p.timer_create(ClockId::HIGHRES, sig(SIGUSR2)).unwrap();
    assert_eq!(p.clock_gettime(ClockId::VM).unwrap(), d(0));
    p.timer_settime(
        vm,
        Arm::Relative,
        ItimerSpec::periodic(d(10 * MS), d(10 * MS)),
    )
    .unwrap();
    p.timer_settime(
        hr,
        Arm::Relative,
        ItimerSpec::periodic(d(4 * MS), d(4 * MS)),
    )
    .unwrap();
    let vm_now = |p: &Process| p.clock_gettime(ClockId::VM).unwrap();
    let vm_expirations = |p: &Process| p.timer_status(vm.0).unwrap().expirations;

    // Running: guest time follows host time. VM expiries at 10 and 20 ms.
    k.advance_ns(25 * MS).unwrap();
    assert_eq!(take(&p, SIGUSR1), 1);
    assert_eq!(take(&p, SIGUSR2), 5, "4, 8, ... 24 ms: six expiries");

    // The errno cases; none of them moves a clock.
    assert_eq!(
        k.vm_step(d(MS)),
        Err(Errno::EBUSY),
        "only a stopped VM steps"
    );
    assert_eq!(k.vm_step_ns(-1), Err(Errno::EINVAL));
    assert_eq!(k.vm_warp_ns(-1), Err(Errno::EINVAL));
    assert_eq!(k.vm_warp(Duration::MAX), Err(Errno::EOVERFLOW));
    assert_eq!(k.vm_step(Duration::MAX), Err(Errno::EOVERFLOW));
    assert_eq!(vm_now(&p), d(25 * MS));
    assert!(k.vm_running());

    // Stopped, stepped: to 1 ns before the 30 ms deadline, then onto it.
    k.vm_stop();
    assert!(!k.vm_running());
    k.vm_step_ns(5 * MS - 1).unwrap();
    assert_eq!(vm_now(&p), d(30 * MS - 1));
    assert!(not_pending(&p, SIGUSR1), "fired before its guest deadline");
    k.vm_step_ns(1).unwrap();
    assert_eq!(vm_now(&p), d(30 * MS));
    assert_eq!(take(&p, SIGUSR1), 0, "on time to the nanosecond");
    assert_eq!(p.timer_gettime(vm).unwrap().value, d(10 * MS));
    // One step across three deadlines (40, 50, 60 ms): each expires at
    // its own guest time; the unconsumed signal counts the later two.
    k.vm_step(d(35 * MS)).unwrap();
    assert_eq!(vm_now(&p), d(65 * MS));
    assert_eq!(p.timer_status(vm.0).unwrap().pending, 3);
    assert_eq!(take(&p, SIGUSR1), 2);
    assert_eq!(vm_expirations(&p), 6);
    assert_eq!(
        p.timer_gettime(vm).unwrap().value,
        d(5 * MS),
        "next at 70 ms"
    );
    assert_eq!(k.mono_ns(), 25 * MS, "a step does not move host time");
    assert!(not_pending(&p, SIGUSR2), "nor run host timers");

    // Stopped, warped by 100 ms to 165 ms: ten deadlines (70 ... 160 ms)
    // jumped over. The timer runs before `vm_warp` returns (no host time
    // passes), late, once: overrun 9, next deadline on its grid (170 ms).
    k.vm_warp(d(100 * MS)).unwrap();
    assert_eq!(vm_now(&p), d(165 * MS));
    assert_eq!(take(&p, SIGUSR1), 9);
    assert_eq!(vm_expirations(&p), 16);
    assert_eq!(p.timer_gettime(vm).unwrap().value, d(5 * MS));
    assert_eq!(k.mono_ns(), 25 * MS);
    assert!(!k.vm_running(), "a warp does not start the VM");

    // Host time passes while stopped: HIGHRES at 28 and 32 ms, VM frozen.
    k.advance_ns(10 * MS).unwrap();
    assert_eq!(take(&p, SIGUSR2), 1);
    assert_eq!(vm_now(&p), d(165 * MS));
    assert!(not_pending(&p, SIGUSR1));
    assert_eq!(p.timer_gettime(vm).unwrap().value, d(5 * MS), "frozen");

    // Started at host 35 ms, then warped while running by 22 ms to 187 ms:
    // 170 and 180 ms jumped over (overrun 1); next at 190 ms, which is
    // 3 ms of host time away.
    k.vm_start();
    k.vm_warp(d(22 * MS)).unwrap();
    assert_eq!(vm_now(&p), d(187 * MS));
    assert_eq!(take(&p, SIGUSR1), 1);
    assert_eq!(vm_expirations(&p), 18);
    assert_eq!(fires_after_sig(&k, &p, SIGUSR1, 3 * MS), 0);
    assert_eq!(vm_now(&p), d(190 * MS));
    assert_eq!(k.mono_ns(), 38 * MS);
    assert_eq!(p.clock_gettime(ClockId::HIGHRES).unwrap(), d(38 * MS));
    assert_eq!(take(&p, SIGUSR2), 0, "36 ms");
    assert_eq!(
        p.timer_status(hr.0).unwrap().expirations,
        9,
        "HIGHRES: every 4 ms of host time up to 38 ms, warps and steps aside"
    );
    // Running again: the VM timer keeps its period in guest = host time.
    assert_eq!(fires_after_sig(&k, &p, SIGUSR1, 10 * MS), 0);
    assert_eq!(vm_expirations(&p), 20);
}

/// As [`fires_after`], for signal `sig`.
fn fires_after_sig(k: &SimKernel, p: &Process, sig: i32, ns: i64) -> i32 {
    k.advance_ns(ns - 1).unwrap();
    assert!(not_pending(p, sig), "fired early (before {ns} ns)");
    k.advance_ns(1).unwrap();
    take(p, sig)
}

#[test]
fn clock_settime_permissions_and_settability() {
    let k = Kernel::simulated();
    let user = k.spawn_process(Credentials::user(1000));
    let root = k.spawn_process(Credentials::ROOT);
    assert_eq!(
        user.clock_settime(ClockId::REALTIME, d(SEC)),
        Err(Errno::EPERM)
    );
    for clock in [
        ClockId::HIGHRES,
        ClockId::VM,
        ClockId::VIRTUAL,
        ClockId::THREAD_CPUTIME,
        ClockId::PROCESS_CPUTIME,
    ] {
        assert_eq!(
            root.clock_settime(clock, d(SEC)),
            Err(Errno::EINVAL),
            "{clock:?}"
        );
        assert_eq!(
            user.clock_settime(clock, d(SEC)),
            Err(Errno::EPERM),
            "{clock:?}"
        );
    }
    root.clock_settime(ClockId::REALTIME, d(42 * SEC)).unwrap();
    assert_eq!(
        user.clock_gettime(ClockId(CLOCK_REALTIME0)).unwrap(),
        d(42 * SEC)
    );
}

#[test]
fn cpu_time_clocks_read_but_refuse_timers() {
    let k = Kernel::simulated();
    let p = k.spawn_process(Credentials::ROOT);
    for clock in [
        ClockId::VIRTUAL,
        ClockId(CLOCK_PROF),
        ClockId::PROCESS_CPUTIME,
    ] {
        assert_eq!(p.timer_create(clock, None), Err(Errno::EINVAL), "{clock:?}");
        assert!(p.clock_gettime(clock).is_ok());
        assert!(p.clock_getres(clock).unwrap() > Duration::ZERO);
    }
    assert_eq!(p.stats().timers, 0);
    assert_eq!(p.stats().sig_entries, 0, "failed creates leak nothing");
}

#[test]
fn highres_guard_raises_unprivileged_values_to_200us() {
    let k = Kernel::simulated();
    let user = k.spawn_process(Credentials::user(1000));
    let t = user.timer_create(ClockId::HIGHRES, None).unwrap();
    user.timer_settime(
        t,
        Arm::Relative,
        ItimerSpec::periodic(d(10 * US), d(50 * US)),
    )
    .unwrap();
    assert_eq!(
        user.timer_gettime(t).unwrap(),
        ItimerSpec::periodic(d(200 * US), d(200 * US))
    );
    assert_eq!(fires_after(&k, &user, 200 * US), 0);
    assert_eq!(fires_after(&k, &user, 200 * US), 0);
    // Values at or above the floor are untouched; so is REALTIME.
    user.timer_settime(
        t,
        Arm::Relative,
        ItimerSpec::periodic(d(300 * US), d(250 * US)),
    )
    .unwrap();
    assert_eq!(
        user.timer_gettime(t).unwrap(),
        ItimerSpec::periodic(d(300 * US), d(250 * US))
    );
    let r = user.timer_create(ClockId::REALTIME, None).unwrap();
    user.timer_settime(
        r,
        Arm::Relative,
        ItimerSpec::periodic(d(10 * US), d(10 * US)),
    )
    .unwrap();
    assert_eq!(user.timer_gettime(r).unwrap().interval, d(10 * US));

    let root = k.spawn_process(Credentials::ROOT);
    let t = root.timer_create(ClockId::HIGHRES, None).unwrap();
    root.timer_settime(t, Arm::Relative, ItimerSpec::periodic(d(10 * US), d(1)))
        .unwrap();
    assert_eq!(
        root.timer_gettime(t).unwrap(),
        ItimerSpec::periodic(d(10 * US), d(1)),
        "privileged callers are exempt"
    );
}

#[test]
fn gettime_and_getres_on_the_simulated_host() {
    let k = Kernel::simulated();
    let p = k.spawn_process(Credentials::ROOT);
    for clock in [ClockId::REALTIME, ClockId::HIGHRES, ClockId::VM] {
        assert_eq!(p.clock_getres(clock).unwrap(), d(1));
    }
    let h0 = p.clock_gettime(ClockId::HIGHRES).unwrap();
    k.advance_ns(123_456_789).unwrap();
    assert_eq!(
        p.clock_gettime(ClockId::HIGHRES).unwrap() - h0,
        d(123_456_789)
    );
    assert_eq!(
        p.clock_gettime(ClockId::REALTIME).unwrap(),
        d(1_700_000_000 * SEC + 123_456_789)
    );
}

#[test]
fn timers_stop_after_delete_and_exit() {
    let k = Kernel::simulated();
    let p = k.spawn_process(Credentials::ROOT);
    let t = p.timer_create(ClockId::HIGHRES, None).unwrap();
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(d(MS), d(MS)))
        .unwrap();
    k.advance_ns(MS).unwrap();
    p.timer_delete(t).unwrap();
    p.sigtimedwait(alrm(), Some(Duration::ZERO)).unwrap();
    k.advance_ns(10 * MS).unwrap();
    quiet(&p);
    for c in [ClockId::REALTIME, ClockId::HIGHRES, ClockId::VM] {
        let t = p.timer_create(c, None).unwrap();
        p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(d(MS), d(MS)))
            .unwrap();
    }
    p.exit();
    k.advance_ns(10 * MS).unwrap();
    assert_eq!(
        k.host().clocks().earliest_host_deadline(),
        None,
        "nothing armed"
    );
}

#[test]
fn sigtimedwait_timeout_is_exact_on_the_simulated_host() {
    let k = Kernel::simulated();
    let p = std::sync::Arc::new(k.spawn_process(Credentials::ROOT));
    let waiter = {
        let p = p.clone();
        std::thread::spawn(move || p.sigtimedwait(SigSet::FULL, Some(Duration::from_millis(20))))
    };
    while k.host().clocks().earliest_host_deadline().is_none() {
        std::thread::yield_now();
    }
    k.advance_ns(20 * MS - 1).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(!waiter.is_finished());
    k.advance_ns(1).unwrap();
    assert_eq!(waiter.join().unwrap(), Err(Errno::EAGAIN));
}

/// The end of guest time. A warp that would carry VIRTUAL past `i64::MAX`
/// ns is refused (`EOVERFLOW`, nothing changes); one that lands 1 ms short
/// of it (after the last 10 ms period that fits) makes a 10 ms periodic
/// timer fire once with every missed period counted, and its next
/// deadline, past the end, is clamped to the last instant: still armed,
/// `timer_gettime` shows the 1 ms left and the interval.
#[test]
fn vm_warp_to_the_end_of_guest_time() {
    let k = Kernel::simulated();
    let p = k.spawn_process(Credentials::ROOT);
    let vm = p.timer_create(ClockId::VM, None).unwrap();
    p.timer_settime(
        vm,
        Arm::Relative,
        ItimerSpec::periodic(d(10 * MS), d(10 * MS)),
    )
    .unwrap();
    k.advance_ns(MS).unwrap();
    k.vm_stop();
    assert_eq!(k.vm_warp_ns(i64::MAX), Err(Errno::EOVERFLOW));
    assert_eq!(p.clock_gettime(ClockId::VM).unwrap(), d(MS), "unchanged");
    let to = i64::MAX - MS;
    k.vm_warp_ns(to - MS).unwrap();
    assert_eq!(
        p.clock_gettime(ClockId::VM).unwrap(),
        Duration::from_nanos(to as u64)
    );
    let st = p.timer_status(vm.0).unwrap();
    // Deadlines 10 ms, 20 ms, ... up to `to`: all of them, in one fire.
    assert_eq!(st.expirations, ((to - 10 * MS) / (10 * MS) + 1) as u64);
    assert_eq!(
        p.timer_gettime(vm).unwrap(),
        ItimerSpec::periodic(d(MS), d(10 * MS)),
        "clamped to the last instant, still armed"
    );
    assert_eq!(k.vm_warp_ns(MS + 1), Err(Errno::EOVERFLOW));
}
