//! Event ports on the manual clock: the cached timer event and its counts,
//! user events, `port_getn`'s rules, alert mode, close and exit, timeouts
//! in model time, and every errno.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use itimer_kernel::abi::*;
use itimer_kernel::itimer::ItFlags;
use itimer_kernel::manual_clock::ManualClock;
use itimer_kernel::{
    AlertMode, Arm, ClockId, ClockRegistry, Credentials, Errno, ItimerSpec, KernelConfig, Nsec,
    PortId, Process, SigEvent, Subsystem, TimerId,
};

const MS: u64 = 1_000_000;

fn boot_with(config: KernelConfig) -> (Subsystem, Arc<ManualClock>) {
    let clock = ManualClock::new(Nsec(1_000 * MS));
    let mut reg = ClockRegistry::new();
    clock
        .register(&mut reg, &[CLOCK_REALTIME0, CLOCK_REALTIME, CLOCK_HIGHRES])
        .unwrap();
    (Subsystem::new(config, reg), clock)
}

fn boot() -> (Subsystem, Arc<ManualClock>) {
    boot_with(KernelConfig {
        timer_max: 64,
        ..KernelConfig::default()
    })
}

/// A periodic 1 ms HIGHRES timer notifying `port` with `user`.
fn port_timer(p: &Process, port: PortId, user: u64) -> TimerId {
    let t = p
        .timer_create(
            ClockId::HIGHRES,
            Some(SigEvent::Port { port: port.0, user }),
        )
        .unwrap();
    let ms = Duration::from_millis(1);
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(ms, ms))
        .unwrap();
    t
}

fn timer_event(t: TimerId, events: i32, user: u64) -> PortEvent {
    PortEvent {
        portev_events: events,
        portev_source: PORT_SOURCE_TIMER as u16,
        portev_object: t.0 as u64,
        portev_user: user,
        ..PortEvent::default()
    }
}

fn user_event(events: i32, user: u64) -> PortEvent {
    PortEvent {
        portev_events: events,
        portev_source: PORT_SOURCE_USER as u16,
        portev_object: 0,
        portev_user: user,
        ..PortEvent::default()
    }
}

const POLL: Option<Duration> = Some(Duration::ZERO);

/// Spins (yielding) until the manual clock holds `n` backend timers: how a
/// test knows a blocked call has armed its timeout callout.
fn wait_for_timers(clock: &ManualClock, n: usize) {
    let start = std::time::Instant::now();
    while !clock.settled_timers(n) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "callout never armed"
        );
        std::thread::yield_now();
    }
}

#[test]
fn five_expirations_before_retrieval_report_five_then_one() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let port = p.port_create().unwrap();
    let t = port_timer(&p, port, 0xabc);
    assert_eq!(p.timer_status(t.0).unwrap().flags, ItFlags::PORT);
    for _ in 0..5 {
        assert_eq!(clock.advance(Nsec(MS)), 1, "one fire per period");
    }
    assert_eq!(p.timer_status(t.0).unwrap().pending, 5);
    assert_eq!(
        p.port_pending(port).unwrap(),
        1,
        "one cached event, queued once"
    );
    assert_eq!(p.port_get(port, POLL).unwrap(), timer_event(t, 5, 0xabc));
    assert_eq!(p.timer_status(t.0).unwrap().pending, 0);
    assert_eq!(p.timer_getoverrun(t).unwrap(), 4);
    assert_eq!(p.port_get(port, POLL), Err(Errno::ETIME), "nothing queued");
    clock.advance(Nsec(MS));
    assert_eq!(p.port_get(port, POLL).unwrap(), timer_event(t, 1, 0xabc));
    assert_eq!(p.timer_getoverrun(t).unwrap(), 0);
    // A late backend reports 7 missed periods in one fire: still one event.
    assert_eq!(clock.advance(Nsec(7 * MS)), 1);
    assert_eq!(p.port_get(port, POLL).unwrap(), timer_event(t, 7, 0xabc));
}

#[test]
fn expirations_during_retrieval_are_all_counted() {
    // Fire, retrieve, fire more: every expiration lands in exactly one
    // retrieval, across many rounds and several timers on one port.
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let port = p.port_create().unwrap();
    let timers: Vec<TimerId> = (0..3).map(|i| port_timer(&p, port, i)).collect();
    let mut total = [0i64; 3];
    for round in 1..=20u64 {
        clock.advance(Nsec(round % 4 * MS));
        let got = p.port_getn(port, 8, 0, POLL).unwrap();
        for ev in got.events {
            assert_eq!(ev.portev_source, PORT_SOURCE_TIMER as u16);
            total[ev.portev_user as usize] += i64::from(ev.portev_events);
        }
    }
    // 0+1+2+3 ms repeated 5 times = 30 ms = 30 periods for each timer.
    for (i, t) in timers.iter().enumerate() {
        assert_eq!(total[i], 30, "timer {t:?}");
    }
}

#[test]
fn user_events_and_timer_events_come_out_fifo() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::user(5));
    let port = p.port_create().unwrap();
    p.port_send(port, 0x10, 1).unwrap();
    let t = port_timer(&p, port, 99);
    clock.advance(Nsec(MS));
    p.port_send(port, 0x20, 2).unwrap();
    clock.advance(Nsec(MS)); // counts only: the timer event is queued
    assert_eq!(p.port_pending(port).unwrap(), 3);
    let got = p.port_getn(port, 10, 3, None).unwrap();
    assert_eq!(
        got.events,
        vec![
            user_event(0x10, 1),
            timer_event(t, 2, 99),
            user_event(0x20, 2)
        ]
    );
    assert!(!got.timed_out);
}

#[test]
fn another_process_gets_eacces_and_the_event_stays() {
    let (k, clock) = boot();
    let a = k.spawn_process(Credentials::ROOT);
    let b = k.spawn_process(Credentials::ROOT);
    let port = a.port_create().unwrap();
    let t = port_timer(&a, port, 7);
    clock.advance(Nsec(3 * MS));
    // Whatever the timeout, a retrieval that may take nothing fails at once.
    assert_eq!(b.port_get(port, POLL), Err(Errno::EACCES));
    assert_eq!(b.port_get(port, None), Err(Errno::EACCES));
    assert_eq!(
        b.port_getn(port, 4, 1, Some(Duration::from_secs(1))),
        Err(Errno::EACCES)
    );
    assert_eq!(a.timer_status(t.0).unwrap().pending, 3, "untouched");
    // A shareable event is taken by anyone; the timer's stays for its owner.
    a.port_send(port, 1, 42).unwrap();
    assert_eq!(b.port_get(port, POLL).unwrap(), user_event(1, 42));
    assert_eq!(b.port_pending(port).unwrap(), 1);
    clock.advance(Nsec(MS));
    assert_eq!(a.port_get(port, POLL).unwrap(), timer_event(t, 4, 7));
    // A timer of b's on a's port: a may not take it.
    let tb = port_timer(&b, port, 8);
    clock.advance(Nsec(MS));
    let got = a.port_getn(port, 4, 0, POLL).unwrap();
    assert_eq!(
        got.events,
        vec![timer_event(t, 1, 7)],
        "a takes only its own"
    );
    assert_eq!(a.port_get(port, POLL), Err(Errno::EACCES));
    assert_eq!(b.port_get(port, POLL).unwrap(), timer_event(tb, 1, 8));
}

#[test]
fn close_with_queued_events_detaches_timers_which_still_delete() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let port = p.port_create().unwrap();
    let t = port_timer(&p, port, 1);
    let quiet = port_timer(&p, port, 2);
    p.timer_settime(quiet, Arm::Relative, ItimerSpec::disarm())
        .unwrap();
    p.port_send(port, 3, 3).unwrap();
    clock.advance(Nsec(2 * MS));
    assert_eq!(p.port_pending(port).unwrap(), 2);
    p.port_close(port).unwrap();
    assert_eq!(p.port_get(port, POLL), Err(Errno::EBADF));
    assert_eq!(p.port_close(port), Err(Errno::EBADF), "closed twice");
    assert!(k.ports().is_empty());
    for id in [t, quiet] {
        let st = p.timer_status(id.0).unwrap();
        assert_eq!((st.flags, st.pending), (ItFlags::empty(), 0), "{id:?}");
    }
    // The timer keeps running, with no notification.
    clock.advance(Nsec(MS / 2));
    assert_eq!(
        p.timer_gettime(t).unwrap().value,
        Duration::from_micros(500)
    );
    clock.advance(Nsec(10 * MS));
    assert_eq!(p.timer_status(t.0).unwrap().pending, 0);
    assert_eq!(clock.timers(), 2);
    p.timer_delete(t).unwrap();
    p.timer_delete(quiet).unwrap();
    assert_eq!(clock.timers(), 0);
    // A new port may reuse the id; nothing of the old one leaks into it.
    let again = p.port_create().unwrap();
    assert_eq!(again, port, "lowest free id");
    assert_eq!(p.port_pending(again).unwrap(), 0);
}

#[test]
fn delete_removes_the_queued_event_and_frees_its_slot() {
    let (k, clock) = boot_with(KernelConfig {
        timer_max: 8,
        port_max_events: 2,
        ..KernelConfig::default()
    });
    let p = k.spawn_process(Credentials::ROOT);
    let port = p.port_create().unwrap();
    let t1 = port_timer(&p, port, 1);
    let t2 = port_timer(&p, port, 2);
    // Two associated timers fill the port's two slots.
    assert_eq!(p.port_send(port, 1, 1), Err(Errno::EAGAIN));
    assert_eq!(
        p.timer_create(
            ClockId::HIGHRES,
            Some(SigEvent::Port {
                port: port.0,
                user: 3
            })
        ),
        Err(Errno::EAGAIN)
    );
    assert_eq!(p.stats().timers, 2, "the failed create left nothing");
    clock.advance(Nsec(MS));
    assert_eq!(p.port_pending(port).unwrap(), 2);
    p.timer_delete(t1).unwrap();
    assert_eq!(p.port_pending(port).unwrap(), 1, "its event left the queue");
    assert_eq!(p.port_get(port, POLL).unwrap(), timer_event(t2, 1, 2));
    assert_eq!(p.port_get(port, POLL), Err(Errno::ETIME));
    // t1's slot is free again: one user event fits, then the port is full.
    p.port_send(port, 5, 5).unwrap();
    assert_eq!(p.port_send(port, 6, 6), Err(Errno::EAGAIN));
    assert_eq!(p.port_get(port, POLL).unwrap(), user_event(5, 5));
    p.port_send(port, 6, 6).unwrap();
}

#[test]
fn getn_waits_for_nget_and_returns_partial_on_timeout() {
    let (k, clock) = boot();
    let p = Arc::new(k.spawn_process(Credentials::ROOT));
    let port = p.port_create().unwrap();
    p.port_send(port, 1, 1).unwrap();
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let p = p.clone();
        std::thread::spawn(move || {
            tx.send(p.port_getn(port, 5, 3, Some(Duration::from_millis(10))))
                .unwrap()
        })
    };
    wait_for_timers(&clock, 1);
    p.port_send(port, 2, 2).unwrap();
    clock.advance(Nsec(10 * MS - 1));
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err(), "2 < 3");
    clock.advance(Nsec(1));
    let got = rx.recv().unwrap().unwrap();
    assert_eq!(got.events, vec![user_event(1, 1), user_event(2, 2)]);
    assert!(got.timed_out);
    waiter.join().unwrap();
    assert_eq!(clock.timers(), 0, "the callout is deleted");

    // Enough events: at most max taken, no waiting.
    for i in 0..4 {
        p.port_send(port, 1, i).unwrap();
    }
    let got = p.port_getn(port, 3, 2, None).unwrap();
    assert_eq!(got.events.len(), 3);
    assert_eq!(got.events[2], user_event(1, 2));
    // nget 0 and a zero timeout both take what is there, without waiting.
    assert_eq!(p.port_getn(port, 3, 0, None).unwrap().events.len(), 1);
    assert_eq!(p.port_getn(port, 3, 0, None).unwrap(), Default::default());
    p.port_send(port, 1, 9).unwrap();
    let got = p.port_getn(port, 3, 3, POLL).unwrap();
    assert_eq!((got.events.len(), got.timed_out), (1, false));
}

#[test]
fn raw_getn_follows_the_c_contract() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let raw = p.raw();
    let port = raw.port_create().unwrap();
    for i in 0..3 {
        raw.port_send(port, 1, i).unwrap();
    }
    let mut list = [PortEvent::default(); 4];
    // max 0: nget becomes the number queued, nothing is taken.
    let mut nget = 99;
    raw.port_getn(port, &mut list, 0, &mut nget, None).unwrap();
    assert_eq!(nget, 3);
    // nget > max > 0.
    let mut nget = 3;
    assert_eq!(
        raw.port_getn(port, &mut list, 2, &mut nget, None),
        Err(Errno::EINVAL)
    );
    // The list cannot hold max entries.
    let mut nget = 1;
    assert_eq!(
        raw.port_getn(port, &mut list, 5, &mut nget, None),
        Err(Errno::EFAULT)
    );
    let mut nget = 4;
    assert_eq!(
        raw.port_getn(port, &mut list, 4, &mut nget, Some(&Timespec::default())),
        Ok(()),
        "a zero timeout polls: success with what is there"
    );
    assert_eq!(nget, 3);
    assert_eq!(list[2], user_event(1, 2));
    // A timeout with fewer than nget: ETIME, and nget says what was taken.
    raw.port_send(port, 7, 7).unwrap();
    let mut nget = 2;
    let one_ns = Timespec {
        tv_sec: 0,
        tv_nsec: 1,
    };
    let start = std::thread::spawn({
        let clock = clock.clone();
        move || {
            wait_for_timers(&clock, 1);
            clock.advance(Nsec(1));
        }
    });
    assert_eq!(
        raw.port_getn(port, &mut list, 4, &mut nget, Some(&one_ns)),
        Err(Errno::ETIME)
    );
    start.join().unwrap();
    assert_eq!(nget, 1);
    assert_eq!(list[0], user_event(7, 7));
    // Bad ports come first, then bad arguments.
    let mut nget = 9;
    assert_eq!(
        raw.port_getn(77, &mut list, 2, &mut nget, None),
        Err(Errno::EBADF)
    );
}

#[test]
fn port_get_times_out_exactly_in_model_time() {
    let (k, clock) = boot();
    let p = Arc::new(k.spawn_process(Credentials::ROOT));
    let port = p.port_create().unwrap();
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let p = p.clone();
        std::thread::spawn(move || {
            tx.send(p.port_get(port, Some(Duration::from_millis(10))))
                .unwrap()
        })
    };
    wait_for_timers(&clock, 1);
    clock.advance(Nsec(10 * MS - 1));
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    clock.advance(Nsec(1));
    assert_eq!(rx.recv().unwrap(), Err(Errno::ETIME));
    waiter.join().unwrap();
    assert_eq!(clock.timers(), 0, "the callout is deleted");
}

#[test]
fn a_blocked_port_get_wakes_on_fire_close_and_exit() {
    let (k, clock) = boot();
    let p = Arc::new(k.spawn_process(Credentials::ROOT));
    let port = p.port_create().unwrap();
    let t = p
        .timer_create(
            ClockId::HIGHRES,
            Some(SigEvent::Port {
                port: port.0,
                user: 5,
            }),
        )
        .unwrap();
    p.timer_settime(
        t,
        Arm::Relative,
        ItimerSpec::one_shot(Duration::from_secs(5)),
    )
    .unwrap();
    let spawn_get = |p: &Arc<Process>| {
        let p = p.clone();
        std::thread::spawn(move || p.port_get(port, Some(Duration::from_secs(60))))
    };
    // Woken by the timer firing (the one-shot fires before the 60 s).
    let w = spawn_get(&p);
    wait_for_timers(&clock, 2);
    clock.advance(Nsec(5_000 * MS));
    assert_eq!(w.join().unwrap().unwrap(), timer_event(t, 1, 5));
    // Woken by close: EBADFD.
    let w = spawn_get(&p);
    wait_for_timers(&clock, 2);
    p.port_close(port).unwrap();
    assert_eq!(w.join().unwrap(), Err(Errno::EBADFD));
    // Woken by the exit of its process, even on another process's port.
    let other = k.spawn_process(Credentials::ROOT);
    let port = other.port_create().unwrap();
    let w = spawn_get(&p);
    wait_for_timers(&clock, 2);
    p.exit();
    assert_eq!(w.join().unwrap(), Err(Errno::EINTR));
    assert_eq!(clock.timers(), 0, "timer and callout gone");
    assert_eq!(p.port_get(port, POLL), Err(Errno::ESRCH));
    assert_eq!(other.port_pending(port).unwrap(), 0, "the port lives on");
}

#[test]
fn alert_mode() {
    let (k, clock) = boot();
    let p = Arc::new(k.spawn_process(Credentials::ROOT));
    let port = p.port_create().unwrap();
    let alert = PortEvent {
        portev_events: 0x5,
        portev_source: PORT_SOURCE_ALERT as u16,
        portev_object: 0,
        portev_user: 77,
        ..PortEvent::default()
    };
    // A waiter wakes with the alert.
    let w = {
        let p = p.clone();
        std::thread::spawn(move || p.port_get(port, Some(Duration::from_secs(1))))
    };
    wait_for_timers(&clock, 1);
    p.port_alert(port, AlertMode::Set, 0x5, 77).unwrap();
    assert_eq!(w.join().unwrap().unwrap(), alert);
    // Every retrieval gets it at once, and it is not consumed; queued
    // events stay queued.
    p.port_send(port, 1, 1).unwrap();
    assert_eq!(p.port_get(port, None).unwrap(), alert);
    let got = p.port_getn(port, 4, 4, None).unwrap();
    assert_eq!(got.events, vec![alert]);
    assert_eq!(p.port_pending(port).unwrap(), 1);
    assert_eq!(
        p.port_alert(port, AlertMode::Update, 1, 1),
        Err(Errno::EBUSY)
    );
    p.port_alert(port, AlertMode::Set, 0x6, 78).unwrap();
    assert_eq!(p.port_get(port, None).unwrap().portev_events, 0x6);
    // events 0 leaves alert mode.
    p.port_alert(port, AlertMode::Update, 0, 0).unwrap();
    assert_eq!(p.port_get(port, None).unwrap(), user_event(1, 1));
    p.port_alert(port, AlertMode::Update, 0x7, 1).unwrap();
    let raw = p.raw();
    for flags in [0, PORT_ALERT_SET | PORT_ALERT_UPDATE, 4, -1] {
        assert_eq!(
            raw.port_alert(port.0, flags, 1, 1),
            Err(Errno::EINVAL),
            "{flags}"
        );
    }
    assert_eq!(raw.port_alert(99, PORT_ALERT_SET, 1, 1), Err(Errno::EBADF));
}

#[test]
fn sigev_thread_in_the_raw_layer_is_a_port_notification() {
    // The kernel half of SIGEV_THREAD: like SIGEV_PORT, it needs a port.
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let raw = p.raw();
    let port = raw.port_create().unwrap();
    let mut ev = Sigevent {
        sigev_notify: SIGEV_THREAD,
        sigev_value: 0x55,
        sigev_port: PortNotify {
            portnfy_port: port,
            portnfy_user: 0x66,
        },
        ..Sigevent::default()
    };
    let t = raw.timer_create(CLOCK_HIGHRES, Some(&ev)).unwrap();
    let one = Itimerspec {
        it_interval: Timespec::default(),
        it_value: Timespec {
            tv_sec: 0,
            tv_nsec: 3,
        },
    };
    raw.timer_settime(t, 0, &one).unwrap();
    clock.advance(Nsec(3));
    assert_eq!(
        raw.port_get(port, None).unwrap(),
        timer_event(TimerId(t), 1, 0x66)
    );
    ev.sigev_port.portnfy_port = port + 1;
    assert_eq!(
        raw.timer_create(CLOCK_HIGHRES, Some(&ev)),
        Err(Errno::EBADF)
    );
}

#[test]
fn exit_closes_owned_ports_and_detaches_other_timers() {
    let (k, clock) = boot();
    let a = k.spawn_process(Credentials::ROOT);
    let b = k.spawn_process(Credentials::ROOT);
    let pa = a.port_create().unwrap();
    let pb = b.port_create().unwrap();
    let tb = port_timer(&b, pa, 1);
    let ta = port_timer(&a, pb, 2);
    clock.advance(Nsec(MS));
    assert_eq!(k.ports(), vec![(pa, a.pid()), (pb, b.pid())]);
    a.exit();
    assert_eq!(k.ports(), vec![(pb, b.pid())]);
    assert_eq!(
        b.timer_status(tb.0).unwrap().flags,
        ItFlags::empty(),
        "b's timer lost its port"
    );
    assert_eq!(b.port_pending(pb).unwrap(), 0, "a's timer event left pb");
    assert_eq!(b.port_get(pa, POLL), Err(Errno::EBADF));
    clock.advance(Nsec(MS));
    assert_eq!(clock.timers(), 1, "b's timer runs on");
    b.timer_delete(tb).unwrap();
    let _ = ta;
}

#[test]
fn errno_for_every_bad_port_call() {
    let (k, _clock) = boot_with(KernelConfig {
        timer_max: 8,
        port_max: 3,
        ..KernelConfig::default()
    });
    let p = k.spawn_process(Credentials::ROOT);
    let q = k.spawn_process(Credentials::ROOT);
    let raw = p.raw();
    let ports: Vec<i32> = (0..3).map(|_| raw.port_create().unwrap()).collect();
    assert_eq!(ports, vec![3, 4, 5], "lowest free id, from 3");
    assert_eq!(raw.port_create(), Err(Errno::EMFILE));
    assert_eq!(q.raw().port_create(), Ok(6), "the limit is per process");
    let mut list = [PortEvent::default(); 2];
    for bad in [-1, 0, 1, 2, 7, 100, i32::MAX, i32::MIN] {
        assert_eq!(raw.port_close(bad), Err(Errno::EBADF), "{bad}");
        assert_eq!(raw.port_send(bad, 1, 1), Err(Errno::EBADF));
        assert_eq!(raw.port_alert(bad, PORT_ALERT_SET, 1, 1), Err(Errno::EBADF));
        assert_eq!(raw.port_get(bad, None), Err(Errno::EBADF));
        let mut nget = 1;
        assert_eq!(
            raw.port_getn(bad, &mut list, 2, &mut nget, None),
            Err(Errno::EBADF)
        );
        let ev = Sigevent {
            sigev_notify: SIGEV_PORT,
            sigev_port: PortNotify {
                portnfy_port: bad,
                portnfy_user: 0,
            },
            ..Sigevent::default()
        };
        assert_eq!(
            raw.timer_create(CLOCK_HIGHRES, Some(&ev)),
            Err(Errno::EBADF)
        );
    }
    assert_eq!(p.stats().timers, 0, "failed creates leave nothing");
    // Only the owner closes a port.
    assert_eq!(q.raw().port_close(ports[0]), Err(Errno::EBADF));
    // Bad timeouts.
    for bad in [
        Timespec {
            tv_sec: -1,
            tv_nsec: 0,
        },
        Timespec {
            tv_sec: 0,
            tv_nsec: -1,
        },
        Timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000_000,
        },
        Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        },
    ] {
        raw.port_send(ports[0], 1, 1).unwrap();
        assert_eq!(raw.port_get(ports[0], Some(&bad)), Err(Errno::EINVAL));
        let mut nget = 1;
        assert_eq!(
            raw.port_getn(ports[0], &mut list, 2, &mut nget, Some(&bad)),
            Err(Errno::EINVAL)
        );
        raw.port_get(ports[0], None).unwrap();
    }
    assert_eq!(
        p.port_get(PortId(ports[0]), Some(Duration::from_secs(u64::MAX))),
        Err(Errno::EINVAL)
    );
    // Typed getn bounds.
    let port = PortId(ports[0]);
    assert_eq!(p.port_getn(port, 0, 0, None), Err(Errno::EINVAL));
    assert_eq!(p.port_getn(port, 2, 3, None), Err(Errno::EINVAL));
    assert_eq!(p.port_getn(port, usize::MAX, 1, None), Err(Errno::EINVAL));
    // A full timer table is reported before a bad port (illumos' order).
    let none = Sigevent {
        sigev_notify: SIGEV_NONE,
        ..Sigevent::default()
    };
    for _ in 0..8 {
        raw.timer_create(CLOCK_HIGHRES, Some(&none)).unwrap();
    }
    let bad_port = Sigevent {
        sigev_notify: SIGEV_PORT,
        sigev_port: PortNotify {
            portnfy_port: 1,
            portnfy_user: 0,
        },
        ..Sigevent::default()
    };
    assert_eq!(
        raw.timer_create(CLOCK_HIGHRES, Some(&bad_port)),
        Err(Errno::EAGAIN)
    );
    // After exit: ESRCH.
    p.exit();
    assert_eq!(raw.port_create(), Err(Errno::ESRCH));
    assert_eq!(raw.port_send(6, 1, 1), Err(Errno::ESRCH));
    assert_eq!(raw.port_get(6, None), Err(Errno::ESRCH));
    assert_eq!(raw.port_close(6), Err(Errno::ESRCH));
    assert_eq!(k.ports(), vec![(PortId(6), q.pid())]);
}

#[test]
fn concurrent_fires_and_retrievals_balance() {
    // A consumer blocks in port_getn while another thread fires the timers
    // by advancing the clock: every expiration is reported exactly once.
    let (k, clock) = boot();
    let p = Arc::new(k.spawn_process(Credentials::ROOT));
    let port = p.port_create().unwrap();
    let timers: Vec<TimerId> = (0..4).map(|i| port_timer(&p, port, i)).collect();
    const ADVANCES: u64 = 2_000;
    let consumer = {
        let p = p.clone();
        std::thread::spawn(move || {
            let mut total = 0i64;
            loop {
                match p.port_getn(port, 4, 1, None) {
                    Ok(got) => {
                        for ev in got.events {
                            if ev.portev_source == PORT_SOURCE_USER as u16 {
                                return total;
                            }
                            assert!(ev.portev_events >= 1);
                            total += i64::from(ev.portev_events);
                        }
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        })
    };
    for _ in 0..ADVANCES {
        clock.advance(Nsec(MS / 2));
    }
    // Stop the timers, then tell the consumer to finish after what is
    // queued (the user event comes after every timer event already queued).
    for t in &timers {
        p.timer_settime(*t, Arm::Relative, ItimerSpec::disarm())
            .unwrap();
    }
    let mut late = 0i64;
    // Whatever the consumer has not seen is either queued (it will see it
    // before the user event) or was never queued: nothing, since every
    // fire queues or adds to a queued/in-flight event.
    p.port_send(port, 0, 0).unwrap();
    let seen = consumer.join().unwrap();
    for ev in p.port_getn(port, 8, 0, POLL).unwrap().events {
        late += i64::from(ev.portev_events);
    }
    for t in &timers {
        late += p.timer_status(t.0).unwrap().pending as i64;
    }
    // 2000 half-periods = 1000 periods per timer.
    assert_eq!(seen + late, 4 * (ADVANCES as i64) / 2);
}
