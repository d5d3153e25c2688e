//! Model 1: `timer_grab` (settime, gettime) by two threads against
//! `timer_delete`.
//!
//! Three threads: A sets the timer, B reads it, the main thread deletes it.
//! Whatever the interleaving:
//!
//! * the delete succeeds; each grabber either did its work (`Ok`) or lost
//!   to the delete (`EINVAL`), nothing else;
//! * a grabber that waited as a blocker wakes to its slot still there (the
//!   kernel's own `expect` in `timer_lock` would panic otherwise) and the
//!   deleter clears the slot only after every blocker has drained;
//! * nobody touches the timer in the backend after the kernel deleted it
//!   (the probe panics on that), and the backend saw exactly the calls
//!   that were reported successful;
//! * afterwards the id is invalid, the slot is free again (the next
//!   `timer_create` gets the same id), and the backend timer is gone.

use std::time::Duration;

use itimer_kernel::{Arm, Errno, ItimerSpec};

use super::common::*;

const ONE_S: Duration = Duration::from_secs(1);

/// Label of one grabber's result.
fn label<T>(r: &Result<T, Errno>) -> &'static str {
    if r.is_ok() { "ok" } else { "EINVAL" }
}

/// The model (one interleaving; run it with the harness). Outcome: what
/// the setter and the getter got.
pub fn grab_vs_delete() -> String {
    {
        let (kernel, clock) = boot(8);
        let p = spawn_process(&kernel);
        let t = quiet_timer(&p);

        let setter = on(&p, move |p| {
            p.timer_settime(t, Arm::Relative, ItimerSpec::one_shot(ONE_S))
        });
        let getter = on(&p, move |p| p.timer_gettime(t));
        let reader = on(&p, move |p| p.timer_getoverrun(t));
        assert_eq!(p.timer_delete(t), Ok(()));
        let set = setter.join().unwrap();
        let got = getter.join().unwrap();
        let over = reader.join().unwrap();
        assert!(matches!(over, Ok(0) | Err(Errno::EINVAL)), "{over:?}");

        match set {
            Ok(old) => assert_eq!(old, ItimerSpec::disarm(), "first setting"),
            Err(e) => assert_eq!(e, Errno::EINVAL),
        }
        match got {
            Ok(cur) => assert!(
                cur == ItimerSpec::disarm() || (set.is_ok() && cur.value == ONE_S),
                "gettime saw {cur:?}"
            ),
            Err(e) => assert_eq!(e, Errno::EINVAL),
        }

        let probe = clock.timer(0).counts();
        assert!(probe.deleted, "the backend timer was deleted");
        assert_eq!(probe.settimes, u32::from(set.is_ok()));
        assert_eq!(probe.gettimes, u32::from(got.is_ok()));

        assert_eq!(p.timer_gettime(t), Err(Errno::EINVAL));
        assert_eq!(p.timer_delete(t), Err(Errno::EINVAL));
        assert_eq!(p.stats().timers, 0);
        assert_eq!(clock.live(), 0);
        assert_eq!(quiet_timer(&p), t, "the slot is free again");
        format!(
            "set {}, get {}, getoverrun {}",
            label(&set),
            label(&got),
            label(&over)
        )
    }
}
