//! SIGEV_THREAD on the manual clock: callbacks on the process's
//! notification thread, their counts, no callback after delete, syscalls
//! (delete and exit included) from inside a callback, and thread teardown.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use itimer_kernel::abi::*;
use itimer_kernel::manual_clock::ManualClock;
use itimer_kernel::{
    Arm, ClockId, ClockRegistry, Credentials, Errno, ItimerSpec, KernelConfig, Nsec, PortId,
    Process, SigEvent, Subsystem, ThreadNotify, TimerId,
};

const MS: u64 = 1_000_000;
/// How long a test waits for something that must happen (generous: the
/// machine is a loaded 2-core VM; nothing here is timed, only bounded).
const PATIENCE: Duration = Duration::from_secs(10);
/// How long a test watches for something that must not happen.
const QUIET: Duration = Duration::from_millis(50);

fn boot_with(config: KernelConfig) -> (Subsystem, Arc<ManualClock>) {
    let clock = ManualClock::new(Nsec(1_000 * MS));
    let mut reg = ClockRegistry::new();
    clock
        .register(&mut reg, &[CLOCK_REALTIME, CLOCK_HIGHRES])
        .unwrap();
    (Subsystem::new(config, reg), clock)
}

fn boot() -> (Subsystem, Arc<ManualClock>) {
    boot_with(KernelConfig {
        timer_max: 64,
        ..KernelConfig::default()
    })
}

fn periodic_ms(p: &Process, t: TimerId) {
    let ms = Duration::from_millis(1);
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(ms, ms))
        .unwrap();
}

/// A SIGEV_THREAD timer whose callback reports each notification, with
/// the overrun it reads from inside the callback.
fn reporting_timer(p: &Process, value: u64) -> (TimerId, Receiver<(ThreadNotify, i32)>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let t = p
        .timer_create(
            ClockId::HIGHRES,
            Some(SigEvent::thread(value, move |p, n| {
                let overrun = p.timer_getoverrun(n.timer).unwrap();
                tx.lock().unwrap().send((n, overrun)).unwrap();
            })),
        )
        .unwrap();
    (t, rx)
}

/// A latch a callback can wait on.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

/// Opens the gate when dropped, so that a failing assertion does not leave
/// a callback blocked (the process's exit would wait for it). Declared
/// after the process, it drops before it.
struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// A SIGEV_THREAD timer whose callback announces itself on `started`,
/// then waits for `gate`.
fn gated_timer(p: &Process, gate: &Arc<Gate>) -> (TimerId, Receiver<ThreadNotify>) {
    let (tx, rx) = mpsc::channel::<ThreadNotify>();
    let tx: Mutex<Sender<ThreadNotify>> = Mutex::new(tx);
    let gate = gate.clone();
    let t = p
        .timer_create(
            ClockId::HIGHRES,
            Some(SigEvent::thread(0, move |_, n| {
                tx.lock().unwrap().send(n).unwrap();
                gate.wait();
            })),
        )
        .unwrap();
    (t, rx)
}

fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < PATIENCE, "{what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn one_callback_per_notification_with_exact_counts() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let (t, rx) = reporting_timer(&p, 0xbeef);
    assert_eq!(k.service_threads(), 1, "started with the first timer");
    periodic_ms(&p, t);
    for _ in 0..10 {
        clock.advance(Nsec(MS));
        let (n, overrun) = rx.recv_timeout(PATIENCE).unwrap();
        assert_eq!(
            n,
            ThreadNotify {
                timer: t,
                value: 0xbeef,
                expirations: 1
            }
        );
        assert_eq!(overrun, 0);
    }
    // A late backend: 6 periods in one fire, one callback.
    clock.advance(Nsec(6 * MS));
    let (n, overrun) = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!((n.expirations, overrun), (6, 5));
    assert!(rx.recv_timeout(QUIET).is_err(), "exactly one callback");
}

#[test]
fn expirations_while_the_callback_runs_are_counted_in_the_next() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(gate.clone());
    let (t, rx) = gated_timer(&p, &gate);
    periodic_ms(&p, t);
    clock.advance(Nsec(MS));
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap().expirations, 1);
    // The callback is blocked: 3 more expirations queue one event.
    for _ in 0..3 {
        clock.advance(Nsec(MS));
    }
    assert_eq!(p.timer_status(t.0).unwrap().pending, 3);
    gate.open();
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap().expirations, 3);
    assert!(rx.recv_timeout(QUIET).is_err());
    assert_eq!(p.timer_getoverrun(t).unwrap(), 2);
}

#[test]
fn no_callback_after_delete() {
    let (k, clock) = boot();
    let p = Arc::new(k.spawn_process(Credentials::ROOT));
    // Timer g's callback holds the notification thread; timer d's event
    // queues behind it.
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(gate.clone());
    let (g, g_rx) = gated_timer(&p, &gate);
    let (d, d_rx) = reporting_timer(&p, 1);
    let one = ItimerSpec::one_shot(Duration::from_millis(1));
    p.timer_settime(g, Arm::Relative, one).unwrap();
    clock.advance(Nsec(MS));
    g_rx.recv_timeout(PATIENCE).unwrap();
    periodic_ms(&p, d);
    clock.advance(Nsec(2 * MS));
    assert_eq!(p.timer_status(d.0).unwrap().pending, 2, "queued, not run");
    p.timer_delete(d).unwrap();
    gate.open();
    // The thread serves events in order: once g's next callback has run,
    // d's would have run before it, had it still been queued.
    p.timer_settime(g, Arm::Relative, one).unwrap();
    clock.advance(Nsec(MS));
    g_rx.recv_timeout(PATIENCE).unwrap();
    assert!(d_rx.try_recv().is_err(), "d's callback never ran");
    assert_eq!(p.timer_gettime(d), Err(Errno::EINVAL));
}

#[test]
fn delete_waits_for_a_running_callback() {
    let (k, clock) = boot();
    let p = Arc::new(k.spawn_process(Credentials::ROOT));
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(gate.clone());
    let (t, rx) = gated_timer(&p, &gate);
    periodic_ms(&p, t);
    clock.advance(Nsec(MS));
    rx.recv_timeout(PATIENCE).unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let deleter = {
        let p = p.clone();
        std::thread::spawn(move || done_tx.send(p.timer_delete(t)).unwrap())
    };
    assert!(
        done_rx.recv_timeout(QUIET).is_err(),
        "delete returned while the callback still ran"
    );
    gate.open();
    assert_eq!(done_rx.recv_timeout(PATIENCE).unwrap(), Ok(()));
    deleter.join().unwrap();
    clock.advance(Nsec(5 * MS));
    assert!(rx.recv_timeout(QUIET).is_err());
}

#[test]
fn a_callback_may_use_and_delete_its_own_timer() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let t = p
        .timer_create(
            ClockId::HIGHRES,
            Some(SigEvent::thread(3, move |p, n| {
                let t = n.timer;
                let r = (
                    p.timer_gettime(t).map(|s| s.interval),
                    p.timer_settime(
                        t,
                        Arm::Relative,
                        ItimerSpec::periodic(Duration::from_millis(2), Duration::from_millis(2)),
                    )
                    .map(|_| ()),
                    p.timer_getoverrun(t),
                    p.timer_delete(t),
                    p.timer_delete(t),
                );
                tx.lock().unwrap().send(r).unwrap();
            })),
        )
        .unwrap();
    periodic_ms(&p, t);
    clock.advance(Nsec(3 * MS));
    let r = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(
        r,
        (
            Ok(Duration::from_millis(1)),
            Ok(()),
            Ok(2),
            Ok(()),
            Err(Errno::EINVAL)
        )
    );
    clock.advance(Nsec(10 * MS));
    assert!(rx.recv_timeout(QUIET).is_err(), "deleted from its callback");
    assert_eq!(clock.timers(), 0);
    // The service carries on for new timers.
    let (t2, rx2) = reporting_timer(&p, 4);
    periodic_ms(&p, t2);
    clock.advance(Nsec(MS));
    assert_eq!(rx2.recv_timeout(PATIENCE).unwrap().0.value, 4);
}

#[test]
fn a_callback_may_exit_its_process() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let t = p
        .timer_create(
            ClockId::HIGHRES,
            Some(SigEvent::thread(0, move |p, _| {
                p.exit();
                tx.lock().unwrap().send(p.has_exited()).unwrap();
            })),
        )
        .unwrap();
    periodic_ms(&p, t);
    clock.advance(Nsec(MS));
    assert!(rx.recv_timeout(PATIENCE).unwrap());
    assert!(p.has_exited());
    assert_eq!(clock.timers(), 0);
    assert!(k.ports().is_empty());
    assert!(k.processes().is_empty());
    // The thread could not join itself; it returns once the callback has.
    eventually("the notification thread ends", || k.service_threads() == 0);
}

#[test]
fn exit_joins_the_notification_thread() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(gate.clone());
    let (t, rx) = gated_timer(&p, &gate);
    let (n, n_rx) = reporting_timer(&p, 0);
    assert_eq!(k.service_threads(), 1, "one thread serves every timer");
    periodic_ms(&p, t);
    clock.advance(Nsec(MS));
    rx.recv_timeout(PATIENCE).unwrap();
    periodic_ms(&p, n);
    clock.advance(Nsec(MS));
    assert_eq!(p.timer_status(n.0).unwrap().pending, 1, "queued behind");
    // Exit from another thread waits for the running callback, and starts
    // no other (n's event is queued behind it).
    let exiter = std::thread::spawn(move || {
        drop(p);
    });
    std::thread::sleep(QUIET);
    assert_eq!(k.service_threads(), 1, "still in the callback");
    gate.open();
    exiter.join().unwrap();
    assert_eq!(k.service_threads(), 0, "joined by exit");
    assert!(k.ports().is_empty());
    assert_eq!(clock.timers(), 0);
    assert!(n_rx.try_recv().is_err(), "no callback started during exit");
}

#[test]
fn the_notification_port_is_private() {
    let (k, _clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let (_t, _rx) = reporting_timer(&p, 0);
    let ports = k.ports();
    assert_eq!(ports.len(), 1);
    let (port, owner) = ports[0];
    assert_eq!(owner, p.pid());
    let raw = p.raw();
    assert_eq!(
        raw.port_get(port.0, Some(&Timespec::default())),
        Err(Errno::EBADF)
    );
    assert_eq!(raw.port_send(port.0, 1, 1), Err(Errno::EBADF));
    assert_eq!(
        raw.port_alert(port.0, PORT_ALERT_SET, 1, 1),
        Err(Errno::EBADF)
    );
    assert_eq!(raw.port_close(port.0), Err(Errno::EBADF));
    assert_eq!(
        p.timer_create(
            ClockId::HIGHRES,
            Some(SigEvent::Port {
                port: port.0,
                user: 0
            })
        ),
        Err(Errno::EBADF)
    );
    // It counts against the process's port limit, and user ports get the
    // next ids.
    assert_eq!(p.port_create().unwrap(), PortId(port.0 + 1));
}

#[test]
fn thread_timer_errors_leave_nothing_behind() {
    let (k, _clock) = boot_with(KernelConfig {
        timer_max: 8,
        port_max: 1,
        ..KernelConfig::default()
    });
    let p = k.spawn_process(Credentials::ROOT);
    let user_port = p.port_create().unwrap();
    // No port left for the service.
    assert_eq!(
        p.timer_create(ClockId::HIGHRES, Some(SigEvent::thread(0, |_, _| {}))),
        Err(Errno::EMFILE)
    );
    assert_eq!(k.service_threads(), 0);
    p.port_close(user_port).unwrap();
    // Unknown clock: the service starts, the timer does not exist.
    assert_eq!(
        p.timer_create(ClockId(99), Some(SigEvent::thread(0, |_, _| {}))),
        Err(Errno::EINVAL)
    );
    for want in 0..8 {
        let t = p
            .timer_create(ClockId::HIGHRES, Some(SigEvent::thread(0, |_, _| {})))
            .unwrap();
        assert_eq!(t, TimerId(want));
    }
    assert_eq!(
        p.timer_create(ClockId::HIGHRES, Some(SigEvent::thread(0, |_, _| {}))),
        Err(Errno::EAGAIN)
    );
    assert_eq!(p.stats().timers, 8);
    p.exit();
    assert_eq!(k.service_threads(), 0);
    assert_eq!(
        p.timer_create(ClockId::HIGHRES, Some(SigEvent::thread(0, |_, _| {}))),
        Err(Errno::ESRCH)
    );
}

#[test]
fn sigevent_thread_has_no_raw_form_and_compares_by_closure() {
    let a = SigEvent::thread(1, |_, _| {});
    let b = a.clone();
    assert_eq!(a, b);
    assert_ne!(a, SigEvent::thread(1, |_, _| {}));
    assert_eq!(a.to_raw(), None);
    assert_eq!(
        SigEvent::Port { port: 3, user: 4 }
            .to_raw()
            .unwrap()
            .sigev_notify,
        SIGEV_PORT
    );
}

#[test]
fn many_thread_timers_balance() {
    // Several SIGEV_THREAD timers, fired from another thread: the
    // expirations their callbacks report add up exactly.
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let total = Arc::new(Mutex::new([0i64; 4]));
    let timers: Vec<TimerId> = (0..4u64)
        .map(|i| {
            let total = total.clone();
            let t = p
                .timer_create(
                    ClockId::HIGHRES,
                    Some(SigEvent::thread(i, move |_, n| {
                        total.lock().unwrap()[n.value as usize] += i64::from(n.expirations);
                    })),
                )
                .unwrap();
            periodic_ms(&p, t);
            t
        })
        .collect();
    let firer = {
        let clock = clock.clone();
        std::thread::spawn(move || {
            for _ in 0..1_000 {
                clock.advance(Nsec(MS / 2));
            }
        })
    };
    firer.join().unwrap();
    for t in &timers {
        p.timer_settime(*t, Arm::Relative, ItimerSpec::disarm())
            .unwrap();
    }
    // 1000 half-periods: 500 expirations per timer, reported or pending.
    eventually("every callback ran", || {
        let seen = *total.lock().unwrap();
        timers.iter().enumerate().all(|(i, t)| {
            seen[i] + p.timer_status(t.0).unwrap().pending as i64 == 500
                && p.timer_status(t.0).unwrap().pending == 0
        })
    });
}

#[test]
fn deletes_racing_fires_never_see_a_late_callback() {
    // A thread fires timers continuously; the test creates SIGEV_THREAD
    // timers and deletes them while callbacks run. A callback that starts
    // (or is still running) after its timer's delete returned is a
    // violation.
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let violations = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let firer = {
        let (clock, stop) = (clock.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                clock.advance(Nsec(MS / 4));
                std::thread::yield_now();
            }
        })
    };
    for round in 0..300u64 {
        let deleted = Arc::new(AtomicBool::new(false));
        let (d, v, c) = (deleted.clone(), violations.clone(), calls.clone());
        let t = p
            .timer_create(
                ClockId::HIGHRES,
                Some(SigEvent::thread(round, move |_, _| {
                    c.fetch_add(1, Ordering::SeqCst);
                    if d.load(Ordering::SeqCst) {
                        v.fetch_add(1, Ordering::SeqCst);
                    }
                    // Linger, so that deletes often find it running.
                    std::thread::sleep(Duration::from_micros(200));
                    if d.load(Ordering::SeqCst) {
                        v.fetch_add(1, Ordering::SeqCst);
                    }
                })),
            )
            .unwrap();
        periodic_ms(&p, t);
        std::thread::sleep(Duration::from_micros(round % 7 * 150));
        p.timer_delete(t).unwrap();
        deleted.store(true, Ordering::SeqCst);
    }
    stop.store(true, Ordering::Relaxed);
    firer.join().unwrap();
    drop(p);
    assert_eq!(k.service_threads(), 0);
    assert!(calls.load(Ordering::SeqCst) > 0, "callbacks ran");
    assert_eq!(violations.load(Ordering::SeqCst), 0);
}
