//! Model 8: signal handler delivery (`kernel/delivery.rs`, illumos
//! `psig`) against `sigprocmask` and a fire.
//!
//! The first `sigaction` installing a handler spawns the process's delivery
//! thread D (a `ServiceThread`, from `sync::thread`, so loom schedules it).
//! D sleeps on `p_sigcv` with `p_lock` until a signal is queued, not blocked
//! and caught, dequeues it and runs its consumption callback
//! (`timer_signal`: the overrun is latched) with `p_lock` held, then runs
//! the handler without it.
//!
//! Three threads: D; M blocks SIGALRM, fires the timer once, unblocks it;
//! the main thread fires the timer once, concurrently, then waits until
//! the handler has accounted for both expirations. Whatever the
//! interleaving:
//!
//! * **a masked signal is never taken**: between M's block and unblock,
//!   the timer's `pending` only grows (M's fire, perhaps the main
//!   thread's; nothing was consumed in between) and SIGALRM is pending;
//! * **consumption before the handler**: inside the handler,
//!   `timer_getoverrun` equals the `si_overrun` of the signal being
//!   handled (the overrun latched for this very notification);
//! * **nothing lost or handled twice**: the handlers' expirations
//!   (`1 + si_overrun` each) add up to exactly the two fired, and stay so
//!   until exit has joined D. A lost signal leaves the main thread
//!   waiting for ever: loom reports the deadlock.
//!
//! Not covered: several signals or timers (the queue's per-signal lists are
//! plain data under `p_lock`), `sigtimedwait` racing D for an unblocked
//! caught signal (a documented deviation), and exit racing a handler.

use itimer_kernel::sync::{Arc, Condvar, Mutex};
use itimer_kernel::{Arm, Disposition, ItimerSpec, SigHandler};

use super::common::*;

/// Expirations fired in all: one by M, one by the main thread.
const FIRED: u64 = 2;

/// What the handler recorded.
#[derive(Debug, Default)]
struct Handled {
    /// Expirations of each signal handled, in order.
    each: Mutex<Vec<u64>>,
    /// Notified after each handler.
    cv: Condvar,
    /// Signals handled whose siginfo was not the timer's, or for which
    /// `timer_getoverrun` in the handler was not their `si_overrun`.
    wrong: Mutex<Vec<String>>,
}

impl Handled {
    fn total(each: &[u64]) -> u64 {
        each.iter().sum()
    }
}

/// The model (one interleaving; run it with the harness). Outcome: the
/// expirations behind each signal handled, and what M found pending when
/// it had just blocked SIGALRM.
pub fn mask_vs_delivery() -> String {
    let (kernel, clock) = boot(8);
    let p = spawn_process(&kernel);
    let t = signal_timer(&p);
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(MS, MS))
        .expect("arming a live timer");
    let probe = clock.timer(0);
    let handled = Arc::new(Handled::default());

    let h = handled.clone();
    // The handler runs on D, where a failed assertion would only end D:
    // it records what it saw, and the main thread asserts on it.
    let handler = SigHandler::new(move |p, info| {
        let k = 1 + info.si_overrun.max(0) as u64;
        let latched = p.timer_getoverrun(t);
        let mut each = h.each.lock();
        each.push(k);
        if (info.si_timerid, info.si_signo, latched) != (t.0, ALRM, Ok(info.si_overrun)) {
            h.wrong
                .lock()
                .push(format!("{info:?} with timer_getoverrun {latched:?}"));
        }
        h.cv.notify_all();
    });
    p.sigaction(ALRM, Disposition::Handler(handler))
        .expect("installing a handler starts the delivery thread");
    assert_eq!(kernel.service_threads(), 1);

    let masker = {
        let probe = probe.clone();
        on(&p, move |p| {
            p.sigblock(alrm()).expect("live process");
            let before = p.timer_status(t.0).expect("live timer").pending;
            assert!(probe.fire(1), "the timer is live");
            let after = p.timer_status(t.0).expect("live timer").pending;
            // Fires only raise `pending`, consumption zeroes it: M's own
            // fire (and perhaps the main thread's) and nothing else.
            assert!(
                after > before,
                "a blocked signal was taken: {before} -> {after}"
            );
            assert!(p.sigpending().expect("live process").contains(ALRM));
            p.sigunblock(alrm()).expect("live process");
            before
        })
    };
    assert!(probe.fire(1), "the timer is live");
    let before = masker.join().unwrap();

    // Every expiration reaches a handler, once.
    let each = {
        let mut each = handled.each.lock();
        while Handled::total(&each) < FIRED {
            each = handled.cv.wait(each);
        }
        each.clone()
    };
    assert_eq!(Handled::total(&each), FIRED, "handled twice: {each:?}");
    assert_eq!(
        *handled.wrong.lock(),
        Vec::<String>::new(),
        "the consumption callback runs before the handler"
    );
    assert!(p.sigpending().expect("live process").is_empty());
    assert_eq!(p.timer_status(t.0).expect("live timer").pending, 0);

    p.exit();
    assert_eq!(kernel.service_threads(), 0, "the delivery thread ended");
    assert_eq!(*handled.each.lock(), each, "nothing handled after");
    assert_eq!(clock.live(), 0);
    format!("handled {each:?}, pending {before} at block")
}
