//! Model 2: `timer_fire` against signal consumption.
//!
//! Three threads: F makes the timer expire twice (`fire(1)`, then
//! `fire(2)`) through the probe backend, which calls the kernel's real
//! `timer_fire`; C takes SIGALRM twice with `sigtimedwait` (zero timeout),
//! which runs the real consumption callback `timer_signal`; the main
//! thread waits for both, then checks and drains.
//!
//! The accounting invariant of `kernel/itimer.rs` must hold exactly in
//! every interleaving: each expiration is either behind a consumed
//! notification (1 + its `si_overrun`) or in the `pending` of the one
//! notification still outstanding, never lost and never counted twice;
//! and a notification is outstanding (SIGALRM queued) exactly when
//! `pending > 0`.

use itimer_kernel::{Arm, ItimerSpec};

use super::common::*;

/// The expirations F reports, one `fire` call each.
const FIRES: [u64; 2] = [1, 2];

/// The model (one interleaving; run it with the harness). Outcome: the
/// expirations behind each notification the consumer took, and what was
/// left pending for the drain.
pub fn fire_vs_consume() -> String {
    let (kernel, clock) = boot(8);
    let p = spawn_process(&kernel);
    let t = signal_timer(&p);
    // The probe fires when told; the setting only makes the story honest.
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(MS, MS))
        .expect("arming a live timer");
    let probe = clock.timer(0);

    let firer = {
        let probe = probe.clone();
        itimer_kernel::sync::thread::spawn(move || {
            for k in FIRES {
                assert!(probe.fire(k), "the timer is live");
            }
        })
    };
    let consume = move |polls: usize| {
        move |p: &itimer_kernel::Process| {
            (0..polls)
                .filter_map(|_| poll_alrm(p))
                .map(|info| expirations_in(&info, t))
                .collect::<Vec<u64>>()
        }
    };
    let c1 = on(&p, consume(2));
    let c2 = on(&p, consume(1));
    firer.join().unwrap();
    let mut took = c1.join().unwrap();
    took.extend(c2.join().unwrap());
    took.sort_unstable();
    let mut consumed: u64 = took.iter().sum();

    let fired: u64 = FIRES.iter().sum();
    assert_eq!(probe.counts().expirations, fired);

    // Quiescent: pending is exactly what no consumed notification covers,
    // and a notification is outstanding exactly when pending > 0.
    let status = p.timer_status(t.0).expect("live timer");
    assert_eq!(
        consumed + status.pending,
        fired,
        "consumed {consumed}, pending {}",
        status.pending
    );
    let queued = p.sigpending().expect("live process").contains(ALRM);
    assert_eq!(queued, status.pending > 0, "pending {}", status.pending);

    // Draining takes exactly the rest, in one notification.
    if let Some(info) = poll_alrm(&p) {
        let rest = expirations_in(&info, t);
        assert_eq!(rest, status.pending);
        assert_eq!(p.timer_getoverrun(t), Ok(info.si_overrun));
        consumed += rest;
    }
    assert_eq!(poll_alrm(&p), None);
    assert_eq!(consumed, fired, "every expiration accounted once");
    assert_eq!(p.timer_status(t.0).expect("live timer").pending, 0);
    format!("consumer took {took:?}, left {}", status.pending)
}
