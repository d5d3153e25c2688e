//! Model 5: two `timer_create` calls racing the growth of the table.
//!
//! The table starts full at its first size ([`TABLE_INITIAL`] timers,
//! `timer_max` twice that). Two threads create one timer each: both find
//! no free slot, drop `p_lock` to allocate a bigger table, and race to
//! install it. Whatever the interleaving:
//!
//! * both creations succeed, with distinct ids, the lowest free ones
//!   (`TABLE_INITIAL` and `TABLE_INITIAL + 1`);
//! * the table grew once, to `2 × TABLE_INITIAL`, and every timer made
//!   before the race is still there;
//! * no slot was lost: creating timers until `EAGAIN` yields exactly the
//!   remaining slots, each id once.

use std::collections::BTreeSet;

use itimer_kernel::Errno;
use itimer_kernel::table::TABLE_INITIAL;

use super::common::*;

/// The model (one interleaving; run it with the harness). Outcome: the
/// ids the two racing threads got.
pub fn create_vs_growth() -> String {
    let max = 2 * TABLE_INITIAL;
    let (kernel, clock) = boot(max);
    let p = spawn_process(&kernel);
    for want in 0..TABLE_INITIAL {
        assert_eq!(quiet_timer(&p).0 as usize, want);
    }
    assert_eq!(p.stats().table_slots, TABLE_INITIAL);

    let a = on(&p, quiet_timer);
    let b = on(&p, quiet_timer);
    let (a, b) = (a.join().unwrap(), b.join().unwrap());

    let raced: BTreeSet<usize> = [a.0 as usize, b.0 as usize].into();
    assert_eq!(raced.len(), 2, "distinct ids: {a:?} {b:?}");
    assert_eq!(
        raced,
        [TABLE_INITIAL, TABLE_INITIAL + 1].into(),
        "the lowest free ids"
    );
    let stats = p.stats();
    assert_eq!(stats.table_slots, max, "grown once");
    assert_eq!(stats.timers, TABLE_INITIAL + 2);
    assert_eq!(clock.created(), TABLE_INITIAL + 2);
    for id in (0..TABLE_INITIAL).chain(raced.iter().copied()) {
        assert!(
            p.timer_gettime(itimer_kernel::TimerId(id as i32)).is_ok(),
            "timer {id} survived the growth"
        );
    }

    // No slot lost: the rest of the table fills exactly, each id once.
    let mut ids = raced;
    ids.extend(0..TABLE_INITIAL);
    loop {
        match p.timer_create(
            itimer_kernel::ClockId::HIGHRES,
            Some(itimer_kernel::SigEvent::None),
        ) {
            Ok(id) => assert!(ids.insert(id.0 as usize), "id {id:?} handed out twice"),
            Err(e) => {
                assert_eq!(e, Errno::EAGAIN);
                break;
            }
        }
    }
    assert_eq!(ids, (0..max).collect(), "every slot used once");
    assert_eq!(p.stats().timers, max);
    format!("a={} b={}", a.0, b.0)
}
