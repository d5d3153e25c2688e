//! The timer list this crate used before the indexed heap: a `BTreeMap`
//! keyed by `(expire, sequence)` plus a dense table from timer key to its
//! key in the map. Kept here, and only here, so every run of the benchmark
//! measures the old structure next to the new one on the same machine and
//! load. Same semantics (checked against the sorted list before timing).

use std::collections::BTreeMap;

use itimer_hostalarm::timerlist::{TimerKey, TimerQueue};

/// Position of an armed timer in the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ListPos {
    /// Expire time, ns.
    expire_ns: i64,
    /// Arming sequence number: breaks ties in arming order.
    seq: u64,
}

/// The B-tree timer list.
#[derive(Debug, Default, Clone)]
pub struct BTreeList {
    /// Armed timers in firing order.
    by_deadline: BTreeMap<ListPos, TimerKey>,
    /// `armed[k]` is the position of timer `k` in `by_deadline`, if armed.
    armed: Vec<Option<ListPos>>,
    /// The sequence number the next arming gets.
    next_seq: u64,
}

impl TimerQueue for BTreeList {
    fn arm(&mut self, key: TimerKey, expire_ns: i64) {
        self.cancel(key);
        let pos = ListPos {
            expire_ns,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        if self.armed.len() <= key.0 {
            self.armed.resize(key.0 + 1, None);
        }
        self.armed[key.0] = Some(pos);
        self.by_deadline.insert(pos, key);
    }

    fn cancel(&mut self, key: TimerKey) -> bool {
        match self.armed.get_mut(key.0).and_then(Option::take) {
            Some(pos) => {
                self.by_deadline.remove(&pos);
                true
            }
            None => false,
        }
    }

    fn expire_of(&self, key: TimerKey) -> Option<i64> {
        self.armed
            .get(key.0)
            .copied()
            .flatten()
            .map(|p| p.expire_ns)
    }

    fn first(&self) -> Option<(i64, TimerKey)> {
        self.by_deadline
            .first_key_value()
            .map(|(pos, key)| (pos.expire_ns, *key))
    }

    fn pop_due(&mut self, now_ns: i64) -> Option<(i64, TimerKey)> {
        let entry = self.by_deadline.first_entry()?;
        if entry.key().expire_ns > now_ns {
            return None;
        }
        let expire_ns = entry.key().expire_ns;
        let key = entry.remove();
        self.armed[key.0] = None;
        Some((expire_ns, key))
    }

    fn len(&self) -> usize {
        self.by_deadline.len()
    }
}
