//! The reference timer list: a vector kept sorted by insertion.
//!
//! This is the seed's structure, and in spirit QEMU's `active_timers`
//! linked list: arming walks to the first entry that expires strictly later
//! and inserts before it (so equal expire times keep arming order);
//! cancelling searches linearly; popping removes the front. Every operation
//! is O(n). It is kept, not as a fallback, but as the obviously-correct
//! model the O(log n) [`crate::timerlist::TimerList`] is checked against
//! (property test `tests/sim_list_model.rs`) and measured against
//! (`benches/timerlist.rs`).
//!
//! # Invariants
//!
//! * `entries` is sorted by expire time; among equal expire times, by
//!   arming order.
//! * A key appears at most once.

use crate::timerlist::{TimerKey, TimerQueue};

/// The O(n) reference list.
#[derive(Debug, Default, Clone)]
pub struct SortedList {
    /// `(expire ns, key)` in firing order.
    entries: Vec<(i64, TimerKey)>,
}

impl SortedList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }
}

impl TimerQueue for SortedList {
    fn arm(&mut self, key: TimerKey, expire_ns: i64) {
        self.cancel(key);
        let at = self.entries.partition_point(|&(e, _)| e <= expire_ns);
        self.entries.insert(at, (expire_ns, key));
    }

    fn cancel(&mut self, key: TimerKey) -> bool {
        match self.entries.iter().position(|&(_, k)| k == key) {
            Some(i) => {
                self.entries.remove(i);
                true
            }
            None => false,
        }
    }

    fn expire_of(&self, key: TimerKey) -> Option<i64> {
        self.entries
            .iter()
            .find(|&&(_, k)| k == key)
            .map(|&(e, _)| e)
    }

    fn first(&self) -> Option<(i64, TimerKey)> {
        self.entries.first().copied()
    }

    fn pop_due(&mut self, now_ns: i64) -> Option<(i64, TimerKey)> {
        match self.entries.first() {
            Some(&(e, _)) if e <= now_ns => Some(self.entries.remove(0)),
            _ => None,
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_deadlines_keep_arming_order() {
        let mut l = SortedList::new();
        l.arm(TimerKey(0), 7);
        l.arm(TimerKey(1), 3);
        l.arm(TimerKey(2), 7);
        l.arm(TimerKey(1), 7);
        assert_eq!(l.pop_due(7), Some((7, TimerKey(0))));
        assert_eq!(l.pop_due(7), Some((7, TimerKey(2))));
        assert_eq!(l.expire_of(TimerKey(1)), Some(7));
        assert_eq!(l.pop_due(6), None);
        assert_eq!(l.pop_due(7), Some((7, TimerKey(1))));
        assert!(l.is_empty());
    }
}
