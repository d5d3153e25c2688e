//! Property test: the O(log n) `TimerList` and the reference `SortedList`
//! give identical results for any sequence of arm / cancel / run.
//!
//! "Run" pops every timer due at a given time, as a clock's `run_timers`
//! does; the recorded firing order (key and expire time) must match exactly,
//! as must every query in between.

use itimer_hostalarm::sorted_list::SortedList;
use itimer_hostalarm::timerlist::{TimerKey, TimerList, TimerQueue};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Arm(usize, i64),
    Cancel(usize),
    Run(i64),
}

/// Few keys and a narrow range of expire times, so re-arming, equal
/// deadlines and cancelling armed timers are all frequent.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..24, -5i64..60).prop_map(|(k, e)| Op::Arm(k, e)),
        2 => (0usize..24).prop_map(Op::Cancel),
        1 => (-5i64..70).prop_map(Op::Run),
    ]
}

fn apply<Q: TimerQueue>(q: &mut Q, ops: &[Op]) -> Vec<String> {
    let mut log = Vec::new();
    for op in ops {
        match *op {
            Op::Arm(k, e) => q.arm(TimerKey(k), e),
            Op::Cancel(k) => log.push(format!("cancel {k} -> {}", q.cancel(TimerKey(k)))),
            Op::Run(now) => {
                while let Some((e, k)) = q.pop_due(now) {
                    log.push(format!("fire {} at {e} (now {now})", k.0));
                }
            }
        }
        log.push(format!("len {} first {:?}", q.len(), q.first()));
        for k in 0..24 {
            if let Some(e) = q.expire_of(TimerKey(k)) {
                log.push(format!("{k}@{e}"));
            }
        }
    }
    // Drain what is left, in order.
    while let Some((e, k)) = q.pop_due(i64::MAX) {
        log.push(format!("drain {} at {e}", k.0));
    }
    log
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn btree_list_matches_sorted_list(ops in proptest::collection::vec(op(), 0..200)) {
        let fast = apply(&mut TimerList::new(), &ops);
        let reference = apply(&mut SortedList::new(), &ops);
        prop_assert_eq!(fast, reference);
    }
}

/// A fixed sequence, so the comparison above is known to see firings at all.
#[test]
fn model_fires_in_expected_order() {
    let ops = [
        Op::Arm(1, 10),
        Op::Arm(2, 5),
        Op::Arm(3, 10),
        Op::Cancel(2),
        Op::Arm(2, 10),
        Op::Run(10),
    ];
    let log = apply(&mut TimerList::new(), &ops);
    let fires: Vec<_> = log
        .iter()
        .filter(|l| l.starts_with("fire"))
        .cloned()
        .collect();
    assert_eq!(
        fires,
        [
            "fire 1 at 10 (now 10)",
            "fire 3 at 10 (now 10)",
            "fire 2 at 10 (now 10)"
        ]
    );
    assert_eq!(apply(&mut SortedList::new(), &ops), log);
}
