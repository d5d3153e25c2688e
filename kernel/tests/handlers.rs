//! Signal handlers on the manual clock: the delivery thread (illumos
//! `psig`), `timer_getoverrun` inside a handler, masking, SIG_IGN over a
//! caught signal, syscalls and exit from a handler, and thread teardown.

use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use itimer_kernel::abi::*;
use itimer_kernel::manual_clock::ManualClock;
use itimer_kernel::raw::{SIG_DFL, SIG_HANDLER};
use itimer_kernel::{
    Arm, ClockId, ClockRegistry, Credentials, Disposition, Errno, ItimerSpec, KernelConfig, Nsec,
    Process, SigEvent, SigHandler, SigSet, Subsystem, TimerId,
};

const MS: u64 = 1_000_000;
/// How long a test waits for something that must happen (bounded, not
/// timed: the machine is a loaded 2-core VM).
const PATIENCE: Duration = Duration::from_secs(10);
/// How long a test watches for something that must not happen.
const QUIET: Duration = Duration::from_millis(50);

fn boot() -> (Subsystem, Arc<ManualClock>) {
    let clock = ManualClock::new(Nsec(1_000 * MS));
    let mut reg = ClockRegistry::new();
    clock
        .register(&mut reg, &[CLOCK_REALTIME, CLOCK_HIGHRES])
        .unwrap();
    let config = KernelConfig {
        timer_max: 64,
        ..KernelConfig::default()
    };
    (Subsystem::new(config, reg), clock)
}

fn usr1() -> SigSet {
    SigSet::of(SIGUSR1).unwrap()
}

/// A periodic 1 ms timer queueing `signo` with value `value`.
fn signal_timer(p: &Process, signo: i32, value: u64) -> TimerId {
    let t = p
        .timer_create(ClockId::HIGHRES, Some(SigEvent::Signal { signo, value }))
        .unwrap();
    let ms = Duration::from_millis(1);
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(ms, ms))
        .unwrap();
    t
}

/// What a reporting handler saw: the siginfo, and `timer_getoverrun` of
/// the signal's timer read inside the handler.
type Seen = (Siginfo, Result<i32, Errno>);

/// A handler that reports each delivery.
fn reporting_handler() -> (SigHandler, Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let h = SigHandler::new(move |p, info| {
        let overrun = p.timer_getoverrun(TimerId(info.si_timerid));
        tx.lock().unwrap().send((*info, overrun)).unwrap();
    });
    (h, rx)
}

fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < PATIENCE, "{what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn handler_sees_the_overrun_of_its_own_delivery() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::user(42));
    let t = signal_timer(&p, SIGUSR1, 0x77);
    clock.advance(Nsec(4 * MS));
    assert_eq!(
        p.sigpending().unwrap(),
        usr1(),
        "queued: default disposition"
    );
    let (h, rx) = reporting_handler();
    assert_eq!(k.service_threads(), 0);
    assert_eq!(
        p.sigaction(SIGUSR1, Disposition::Handler(h.clone())),
        Ok(Disposition::Default)
    );
    assert_eq!(
        k.service_threads(),
        1,
        "the first handler starts the thread"
    );
    // What was queued is delivered once a handler is installed.
    let (info, overrun) = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(
        info,
        Siginfo {
            si_signo: SIGUSR1,
            si_code: SI_TIMER,
            si_pid: p.pid().0,
            si_uid: 42,
            si_value: 0x77,
            si_timerid: t.0,
            si_overrun: 3,
        }
    );
    assert_eq!(overrun, Ok(3), "latched just before the handler ran");
    for _ in 0..5 {
        clock.advance(Nsec(MS));
        let (info, overrun) = rx.recv_timeout(PATIENCE).unwrap();
        assert_eq!((info.si_overrun, overrun), (0, Ok(0)));
    }
    clock.advance(Nsec(6 * MS));
    let (info, overrun) = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!((info.si_overrun, overrun), (5, Ok(5)));
    assert!(rx.recv_timeout(QUIET).is_err(), "one delivery per signal");
    assert_eq!(p.sigpending().unwrap(), SigSet::EMPTY);
    // The old disposition comes back as the same handler.
    assert_eq!(
        p.sigaction(SIGUSR1, Disposition::Default),
        Ok(Disposition::Handler(h))
    );
}

#[test]
fn masked_signals_wait_until_unblocked() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let (h, rx) = reporting_handler();
    p.sigblock(usr1()).unwrap();
    p.sigaction(SIGUSR1, Disposition::Handler(h)).unwrap();
    let t = signal_timer(&p, SIGUSR1, 1);
    clock.advance(Nsec(3 * MS));
    assert!(rx.recv_timeout(QUIET).is_err(), "blocked: not delivered");
    assert_eq!(p.sigpending().unwrap(), usr1());
    assert_eq!(p.timer_status(t.0).unwrap().pending, 3);
    assert_eq!(p.sigunblock(usr1()), Ok(usr1()));
    let (info, overrun) = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!((info.si_timerid, info.si_overrun, overrun), (t.0, 2, Ok(2)));
    assert!(rx.recv_timeout(QUIET).is_err());
    // Blocked again: a sigtimedwait takes it instead, and no handler runs.
    p.sigblock(usr1()).unwrap();
    clock.advance(Nsec(2 * MS));
    let info = p.sigtimedwait(usr1(), Some(Duration::ZERO)).unwrap();
    assert_eq!(info.si_overrun, 1);
    p.sigunblock(usr1()).unwrap();
    assert!(rx.recv_timeout(QUIET).is_err());
}

#[test]
fn caught_signals_are_delivered_lowest_first_then_fifo() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let h = SigHandler::new(move |_, info| {
        tx.lock()
            .unwrap()
            .send((info.si_signo, info.si_value))
            .unwrap();
    });
    let all = SigSet::of(SIGRTMIN).unwrap().with(SIGRTMIN + 1).unwrap();
    p.sigblock(all).unwrap();
    for signo in [SIGRTMIN, SIGRTMIN + 1] {
        p.sigaction(signo, Disposition::Handler(h.clone())).unwrap();
    }
    for (signo, value) in [
        (SIGRTMIN + 1, 1),
        (SIGRTMIN, 2),
        (SIGRTMIN + 1, 3),
        (SIGRTMIN, 4),
    ] {
        let t = p
            .timer_create(ClockId::HIGHRES, Some(SigEvent::Signal { signo, value }))
            .unwrap();
        p.timer_settime(
            t,
            Arm::Relative,
            ItimerSpec::one_shot(Duration::from_nanos(value)),
        )
        .unwrap();
    }
    clock.advance(Nsec(10));
    p.sigunblock(all).unwrap();
    let order: Vec<(i32, u64)> = (0..4).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
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
fn sig_ign_over_a_caught_signal_discards_and_runs_the_callback() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let (h, rx) = reporting_handler();
    p.sigblock(usr1()).unwrap();
    p.sigaction(SIGUSR1, Disposition::Handler(h)).unwrap();
    let t = signal_timer(&p, SIGUSR1, 1);
    clock.advance(Nsec(5 * MS));
    assert_eq!(p.sigpending().unwrap(), usr1());
    // Installing SIG_IGN discards the queued signal, blocked or not
    // (POSIX), and runs its consumption callback.
    assert!(matches!(
        p.sigaction(SIGUSR1, Disposition::Ignore),
        Ok(Disposition::Handler(_))
    ));
    assert_eq!(p.sigpending().unwrap(), SigSet::EMPTY);
    assert_eq!(p.timer_getoverrun(t).unwrap(), 4);
    // Blocked and ignored: held while blocked, discarded when unblocked.
    clock.advance(Nsec(3 * MS));
    assert_eq!(p.sigpending().unwrap(), usr1());
    p.sigunblock(usr1()).unwrap();
    assert_eq!(p.sigpending().unwrap(), SigSet::EMPTY);
    assert_eq!(p.timer_getoverrun(t).unwrap(), 2);
    // Ignored and unblocked: discarded at generation.
    clock.advance(Nsec(2 * MS));
    assert_eq!(p.sigpending().unwrap(), SigSet::EMPTY);
    assert_eq!(p.timer_getoverrun(t).unwrap(), 1);
    assert!(rx.recv_timeout(QUIET).is_err(), "the handler never ran");
    assert_eq!(p.raw().sigaction(SIGUSR1, SIG_DFL), Ok(SIG_IGN_NUM));
}

/// `raw::SIG_IGN`, named here to keep the import list short.
const SIG_IGN_NUM: i32 = itimer_kernel::raw::SIG_IGN;

#[test]
fn an_orphan_signal_reaches_the_handler_without_an_overrun() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let (h, rx) = reporting_handler();
    p.sigblock(usr1()).unwrap();
    p.sigaction(SIGUSR1, Disposition::Handler(h)).unwrap();
    let t = signal_timer(&p, SIGUSR1, 9);
    clock.advance(Nsec(3 * MS));
    p.timer_delete(t).unwrap();
    p.sigunblock(usr1()).unwrap();
    let (info, overrun) = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(
        (info.si_timerid, info.si_value, info.si_overrun),
        (t.0, 9, 0)
    );
    assert_eq!(overrun, Err(Errno::EINVAL), "the timer is gone");
    assert_eq!(p.stats().sig_entries, 0, "the orphan was freed");
}

#[test]
fn a_handler_may_use_and_delete_its_timer() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let h = SigHandler::new(move |p, info| {
        let t = TimerId(info.si_timerid);
        let r = (
            p.timer_gettime(t).map(|s| s.interval),
            p.timer_getoverrun(t),
            p.timer_delete(t),
            p.timer_getoverrun(t),
        );
        tx.lock().unwrap().send(r).unwrap();
    });
    p.sigaction(SIGUSR1, Disposition::Handler(h)).unwrap();
    signal_timer(&p, SIGUSR1, 1);
    clock.advance(Nsec(2 * MS));
    assert_eq!(
        rx.recv_timeout(PATIENCE).unwrap(),
        (
            Ok(Duration::from_millis(1)),
            Ok(1),
            Ok(()),
            Err(Errno::EINVAL)
        )
    );
    clock.advance(Nsec(5 * MS));
    assert!(rx.recv_timeout(QUIET).is_err());
    assert_eq!(clock.timers(), 0);
}

#[test]
fn a_handler_may_exit_its_process() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    p.sigaction(
        SIGUSR1,
        Disposition::Handler(SigHandler::new(move |p, _| {
            p.exit();
            tx.lock().unwrap().send(p.has_exited()).unwrap();
        })),
    )
    .unwrap();
    // A SIGEV_THREAD timer too: exit from the handler joins that thread.
    let t2 = p
        .timer_create(ClockId::HIGHRES, Some(SigEvent::thread(0, |_, _| {})))
        .unwrap();
    assert_eq!(k.service_threads(), 2);
    signal_timer(&p, SIGUSR1, 1);
    clock.advance(Nsec(MS));
    assert!(rx.recv_timeout(PATIENCE).unwrap());
    assert!(k.processes().is_empty());
    assert_eq!(clock.timers(), 0);
    eventually("both service threads end", || k.service_threads() == 0);
    let _ = t2;
}

#[test]
fn exit_joins_the_delivery_thread() {
    let (k, clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let (h, rx) = reporting_handler();
    p.sigaction(SIGUSR1, Disposition::Handler(h.clone()))
        .unwrap();
    p.sigaction(SIGUSR2, Disposition::Handler(h)).unwrap();
    assert_eq!(k.service_threads(), 1, "one thread for every handler");
    signal_timer(&p, SIGUSR2, 1);
    clock.advance(Nsec(MS));
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap().0.si_signo, SIGUSR2);
    drop(p);
    assert_eq!(k.service_threads(), 0, "joined by exit");
    assert!(k.processes().is_empty());
}

#[test]
fn errno_for_bad_handlers() {
    let (k, _clock) = boot();
    let p = k.spawn_process(Credentials::ROOT);
    let (h, _rx) = reporting_handler();
    for signo in [0, -1, NSIG, SIGKILL, SIGSTOP, i32::MIN] {
        assert_eq!(
            p.sigaction(signo, Disposition::Handler(h.clone())),
            Err(Errno::EINVAL),
            "{signo}"
        );
    }
    assert_eq!(k.service_threads(), 0, "no thread for a refused handler");
    p.sigaction(SIGALRM, Disposition::Handler(h)).unwrap();
    // Raw callers see a handler as SIG_HANDLER and cannot install one.
    assert_eq!(p.raw().sigaction(SIGALRM, SIG_DFL), Ok(SIG_HANDLER));
    assert_eq!(p.raw().sigaction(SIGALRM, SIG_HANDLER), Err(Errno::EINVAL));
    p.exit();
    assert_eq!(p.sigaction(SIGALRM, Disposition::Ignore), Err(Errno::ESRCH));
}
