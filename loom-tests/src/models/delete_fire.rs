//! Model 3: `timer_delete` against an in-flight fire.
//!
//! Three threads: F makes the timer expire twice (`fire(1)`, `fire(1)`)
//! through the probe backend (the real `timer_fire`); C takes SIGALRM once
//! if it is there; the main thread deletes the timer, then takes SIGALRM
//! once if it is there. Whatever the interleaving:
//!
//! * each fire either ran before the delete finished, or never runs: after
//!   `timer_delete` returns, `timer_fire` never runs for the timer and
//!   nothing of it is queued any more, so the main thread's post-delete
//!   poll empties the queue for good;
//! * a notification queued before the delete is still delivered (as an
//!   orphan once the timer is gone), with no overrun update after the
//!   delete: what the main thread takes after deleting reports one
//!   expiration, however many were pending (illumos semantics);
//! * a notification exists iff a fire ran, and none reports more
//!   expirations than ran;
//! * afterwards no timer, no signal entry and no backend timer is left.

use itimer_kernel::{Arm, ItimerSpec};

use super::common::*;

/// The model (one interleaving; run it with the harness). Outcome: how
/// many fires ran, and the expirations reported by what the consumer and
/// the deleter took.
pub fn delete_vs_fire() -> String {
    let (kernel, clock) = boot(8);
    let p = spawn_process(&kernel);
    let t = signal_timer(&p);
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(MS, MS))
        .expect("arming a live timer");
    let probe = clock.timer(0);

    let firer = {
        let probe = probe.clone();
        itimer_kernel::sync::thread::spawn(move || {
            let first = probe.fire(1);
            let second = probe.fire(1);
            assert!(first || !second, "fired again after being deleted");
        })
    };
    let consumer = on(&p, move |p| poll_alrm(p).map(|i| expirations_in(&i, t)));

    assert_eq!(p.timer_delete(t), Ok(()));
    let deleter = poll_alrm(&p).map(|i| expirations_in(&i, t));

    firer.join().unwrap();
    let consumer = consumer.join().unwrap();

    // Nothing was queued after the delete's own poll.
    assert_eq!(poll_alrm(&p), None, "a notification arrived after delete");
    assert!(p.sigpending().expect("live process").is_empty());

    let counts = probe.counts();
    assert!(counts.deleted);
    assert!(!probe.fire(1), "a deleted timer never fires again");
    let fired = counts.expirations;
    let delivered: Vec<u64> = consumer.iter().chain(deleter.iter()).copied().collect();
    assert_eq!(
        !delivered.is_empty(),
        fired > 0,
        "{delivered:?} for {fired} fires"
    );
    assert!(
        delivered.iter().sum::<u64>() <= fired,
        "{delivered:?} > {fired}"
    );
    assert!(
        deleter.is_none_or(|e| e == 1),
        "no overrun update after delete: {deleter:?}"
    );

    let stats = p.stats();
    assert_eq!(stats.timers, 0);
    assert_eq!(stats.sig_entries, 0, "the orphan was freed on delivery");
    assert_eq!(clock.live(), 0);
    format!("fired {fired}: consumer {consumer:?}, deleter {deleter:?}")
}
