//! Model 5: two `timer_create` calls racing the growth of the table.
//!
//! The table starts full at its first size ([`TABLE_INITIAL`] timers,
//! `timer_max` twice that). Threads A and B create one timer each while the
//! main thread deletes timer [`VICTIM`]. A creator that finds no free slot
//! drops `p_lock` to allocate a bigger table and races to install it; one
//! that comes after the delete takes the freed slot instead. Whatever the
//! interleaving:
//!
//! * both creations succeed, with distinct ids: the lowest free ones,
//!   `{TABLE_INITIAL, TABLE_INITIAL + 1}`, or `{VICTIM, TABLE_INITIAL}` when
//!   the delete freed a slot first;
//! * the table grew exactly once, to `2 × TABLE_INITIAL`, and every timer
//!   made before the race (the victim aside) is still there;
//! * no slot was lost: creating timers until `EAGAIN` yields exactly the
//!   remaining slots, each id once.

use std::collections::BTreeSet;

use itimer_kernel::table::TABLE_INITIAL;
use itimer_kernel::{ClockId, Errno, SigEvent, TimerId};

use super::common::*;

/// The timer the main thread deletes during the race.
pub const VICTIM: usize = 3;

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
    assert_eq!(p.timer_delete(TimerId(VICTIM as i32)), Ok(()));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());

    let raced: BTreeSet<usize> = [a.0 as usize, b.0 as usize].into();
    assert_eq!(raced.len(), 2, "distinct ids: {a:?} {b:?}");
    let lowest_free: [BTreeSet<usize>; 2] = [
        [TABLE_INITIAL, TABLE_INITIAL + 1].into(),
        [VICTIM, TABLE_INITIAL].into(),
    ];
    assert!(
        lowest_free.contains(&raced),
        "the lowest free ids: {raced:?}"
    );
    let stats = p.stats();
    assert_eq!(stats.table_slots, max, "grown exactly once");
    assert_eq!(stats.timers, TABLE_INITIAL + 1);
    assert_eq!(clock.created(), TABLE_INITIAL + 2);
    assert_eq!(clock.live(), TABLE_INITIAL + 1);
    for id in 0..max {
        let live = raced.contains(&id) || (id < TABLE_INITIAL && id != VICTIM);
        assert_eq!(
            p.timer_gettime(TimerId(id as i32)).is_ok(),
            live,
            "timer {id} (live: {live})"
        );
    }

    // No slot lost: the rest of the table fills exactly, each id once.
    let mut ids: BTreeSet<usize> = (0..TABLE_INITIAL).filter(|&i| i != VICTIM).collect();
    ids.extend(&raced);
    loop {
        match p.timer_create(ClockId::HIGHRES, Some(SigEvent::None)) {
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
