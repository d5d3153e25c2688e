//! Model 3: `timer_delete` against an in-flight fire.
//!
//! Three threads: F makes the timer expire once through the probe backend
//! (the real `timer_fire`); C takes SIGALRM once if it is there; the main
//! thread deletes the timer, then takes SIGALRM once if it is there.
//! Whatever the interleaving:
//!
//! * the fire either ran before the delete finished (its notification was
//!   queued, and is still delivered, as an orphan if the timer is gone,
//!   with no overrun update) or never runs at all: after `timer_delete`
//!   returns, `timer_fire` never runs for the timer and nothing of it is
//!   queued any more: the main thread's post-delete poll empties the
//!   queue for good;
//! * exactly one notification is delivered per fire that ran;
//! * afterwards no timer, no signal entry and no backend timer is left.

use itimer_kernel::{Arm, ItimerSpec};

use super::common::*;

/// The model (one interleaving; run it with the harness). Outcome: whether
/// the fire ran, and who took its notification.
pub fn delete_vs_fire() -> String {
    let (kernel, clock) = boot(8);
    let p = spawn_process(&kernel);
    let t = signal_timer(&p);
    p.timer_settime(t, Arm::Relative, ItimerSpec::one_shot(MS))
        .expect("arming a live timer");
    let probe = clock.timer(0);

    let firer = {
        let probe = probe.clone();
        itimer_kernel::sync::thread::spawn(move || probe.fire(1))
    };
    let consumer = on(&p, poll_alrm);

    assert_eq!(p.timer_delete(t), Ok(()));
    let after_delete = poll_alrm(&p);

    let fired = firer.join().unwrap();
    let raced = consumer.join().unwrap();

    // Nothing was queued after the delete's own poll.
    assert_eq!(poll_alrm(&p), None, "a notification arrived after delete");
    assert!(p.sigpending().expect("live process").is_empty());

    let delivered: Vec<_> = raced.iter().chain(after_delete.iter()).collect();
    assert_eq!(
        delivered.len(),
        usize::from(fired),
        "one notification per fire that ran (fired: {fired})"
    );
    for info in delivered {
        assert_eq!(expirations_in(info, t), 1, "a single expiration");
    }

    let counts = probe.counts();
    assert!(counts.deleted);
    assert_eq!(counts.expirations, u64::from(fired));
    assert!(!probe.fire(1), "a deleted timer never fires again");
    let stats = p.stats();
    assert_eq!(stats.timers, 0);
    assert_eq!(stats.sig_entries, 0, "the orphan was freed on delivery");
    assert_eq!(clock.live(), 0);
    match (fired, raced.is_some()) {
        (false, _) => "fire lost to the delete".to_owned(),
        (true, true) => "fired, consumer took it".to_owned(),
        (true, false) => "fired, deleter took it after the delete".to_owned(),
    }
}
