//! Property test: the O(log n) `TimerList` (an indexed 4-ary heap) and the
//! reference `SortedList` give identical results for any sequence of arm /
//! cancel / run.
//!
//! "Run" pops every timer due at a given time, as a clock's `run_timers`
//! does; the recorded firing order (key and expire time) must match exactly,
//! as must every query in between.
//!
//! Two strategies: few keys and a narrow time range (re-arming, equal
//! deadlines and cancelling armed timers are all frequent), and many keys
//! with times that include the extremes of `i64` (a heap several levels
//! deep, with full families of children, holes filled from below that must
//! move up, and the sign handling of the packed order).

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

/// Many keys; expire times mostly spread, sometimes equal, sometimes at the
/// ends of the range.
fn deep_op() -> impl Strategy<Value = Op> {
    let expire = prop_oneof![
        6 => -1_000i64..1_000,
        2 => -3i64..3,
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
        1 => Just(i64::MIN + 1),
        1 => Just(i64::MAX - 1),
    ];
    prop_oneof![
        8 => (0usize..DEEP_KEYS, expire).prop_map(|(k, e)| Op::Arm(k, e)),
        3 => (0usize..DEEP_KEYS).prop_map(Op::Cancel),
        1 => (-1_200i64..1_200).prop_map(Op::Run),
    ]
}

/// Keys used by [`deep_op`]: enough for a 4-ary heap five levels deep.
const DEEP_KEYS: usize = 400;

fn apply<Q: TimerQueue>(q: &mut Q, ops: &[Op]) -> Vec<String> {
    apply_keys(q, ops, 24)
}

/// Applies `ops`, logging every result and, after each operation, the
/// length, the first timer and the expire time of each of keys `0..keys`.
fn apply_keys<Q: TimerQueue>(q: &mut Q, ops: &[Op], keys: usize) -> Vec<String> {
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
        for k in 0..keys {
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
    fn timer_list_matches_sorted_list(ops in proptest::collection::vec(op(), 0..200)) {
        let fast = apply(&mut TimerList::new(), &ops);
        let reference = apply(&mut SortedList::new(), &ops);
        prop_assert_eq!(fast, reference);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn deep_timer_list_matches_sorted_list(
        ops in proptest::collection::vec(deep_op(), 0..1_500)
    ) {
        let fast = apply_keys(&mut TimerList::new(), &ops, DEEP_KEYS);
        let reference = apply_keys(&mut SortedList::new(), &ops, DEEP_KEYS);
        prop_assert_eq!(fast, reference);
    }
}

/// The deep strategy really builds a deep list: a fixed sequence of 400
/// arms at spread times, all cancelled from the middle out, then refilled
/// and drained in order.
#[test]
fn deep_sequence_matches_and_drains_in_order() {
    let mut ops: Vec<Op> = (0..DEEP_KEYS)
        .map(|k| Op::Arm(k, ((k * 7919) % 1_000) as i64 - 500))
        .collect();
    ops.extend((0..DEEP_KEYS / 2).map(|i| Op::Cancel(DEEP_KEYS / 2 + i)));
    ops.extend((0..DEEP_KEYS / 2).map(|i| Op::Cancel(DEEP_KEYS / 2 - 1 - i)));
    ops.extend((0..DEEP_KEYS).map(|k| Op::Arm(k, ((k * 31) % 97) as i64)));
    ops.push(Op::Run(1_000));
    let log = apply_keys(&mut TimerList::new(), &ops, DEEP_KEYS);
    assert_eq!(apply_keys(&mut SortedList::new(), &ops, DEEP_KEYS), log);
    let fires: Vec<(i64, usize)> = log
        .iter()
        .filter_map(|l| {
            let rest = l.strip_prefix("fire ")?;
            let (k, rest) = rest.split_once(" at ")?;
            let (e, _) = rest.split_once(' ')?;
            Some((e.parse().ok()?, k.parse().ok()?))
        })
        .collect();
    assert_eq!(fires.len(), DEEP_KEYS);
    // Expire order, and among equal expire times, arming order (= key order
    // here, as the refill armed keys ascending).
    let mut sorted = fires.clone();
    sorted.sort();
    assert_eq!(fires, sorted);
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
