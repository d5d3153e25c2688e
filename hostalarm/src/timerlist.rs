//! The O(log n) list of active timers of one emulator clock.
//!
//! Models `active_timers` of QEMU's `qemu-timer.c` (a singly linked list
//! kept sorted by expire time, O(n) to insert). Here it is an ordered map
//! keyed by `(expire, sequence)` plus a dense table from timer key to its
//! current key in the map, so arm, cancel and pop are all O(log n).
//!
//! # Invariants
//!
//! * A timer is in the list at most once: `armed[k]` is `Some(e)` exactly
//!   when `(e, k)` is in `by_deadline`.
//! * Entries with equal expire times are ordered by the sequence number they
//!   were armed with, which only grows, so equal deadlines pop in arming
//!   order, and re-arming a timer puts it behind the others with its expire
//!   time (as QEMU's insertion after equal entries does).
//! * The list holds no locks; its owner (a clock, see [`crate::clock`])
//!   guards it.
//!
//! Both this list and the reference [`crate::sorted_list::SortedList`]
//! implement [`TimerQueue`], so the property test and the benchmark can drive
//! them through one interface.

use std::collections::BTreeMap;

/// Identifies a timer inside one clock's list: the index of its slot in the
/// clock's timer table. The list only orders keys; the clock owns the timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerKey(pub usize);

/// A list of armed timers ordered by expire time (ns on the owning clock),
/// ties broken by arming order.
pub trait TimerQueue {
    /// Arms `key` to expire at `expire_ns`, replacing any earlier arming of
    /// it. Among equal expire times it goes last.
    fn arm(&mut self, key: TimerKey, expire_ns: i64);

    /// Disarms `key`. Returns whether it was armed.
    fn cancel(&mut self, key: TimerKey) -> bool;

    /// The expire time of `key`, if armed.
    fn expire_of(&self, key: TimerKey) -> Option<i64>;

    /// The timer that expires first, and when.
    fn first(&self) -> Option<(i64, TimerKey)>;

    /// Removes and returns the first timer if it has expired at `now_ns`
    /// (expire time `<= now_ns`).
    fn pop_due(&mut self, now_ns: i64) -> Option<(i64, TimerKey)>;

    /// Number of armed timers.
    fn len(&self) -> usize;

    /// Whether no timer is armed.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Position of an armed timer in [`TimerList::by_deadline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ListPos {
    /// Expire time, ns on the owning clock.
    expire_ns: i64,
    /// Arming sequence number: breaks ties in arming order.
    seq: u64,
}

/// The O(log n) timer list: a B-tree keyed by `(expire, sequence)`.
#[derive(Debug, Default, Clone)]
pub struct TimerList {
    /// Armed timers in firing order.
    by_deadline: BTreeMap<ListPos, TimerKey>,
    /// `armed[k]` is the position of timer `k` in `by_deadline`, if armed.
    /// Dense because keys are slab indices.
    armed: Vec<Option<ListPos>>,
    /// The sequence number the next arming gets.
    next_seq: u64,
}

impl TimerList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }
}

impl TimerQueue for TimerList {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_then_arming_order() {
        let mut l = TimerList::new();
        l.arm(TimerKey(3), 20);
        l.arm(TimerKey(1), 10);
        l.arm(TimerKey(2), 10);
        l.arm(TimerKey(0), 30);
        assert_eq!(l.len(), 4);
        assert_eq!(l.first(), Some((10, TimerKey(1))));
        assert_eq!(l.pop_due(9), None);
        assert_eq!(l.pop_due(20), Some((10, TimerKey(1))));
        assert_eq!(l.pop_due(20), Some((10, TimerKey(2))));
        assert_eq!(l.pop_due(20), Some((20, TimerKey(3))));
        assert_eq!(l.pop_due(20), None);
        assert_eq!(l.expire_of(TimerKey(0)), Some(30));
        assert_eq!(l.expire_of(TimerKey(3)), None);
    }

    #[test]
    fn rearm_moves_behind_equals_and_cancel_removes() {
        let mut l = TimerList::new();
        l.arm(TimerKey(0), 5);
        l.arm(TimerKey(1), 5);
        l.arm(TimerKey(0), 5);
        assert_eq!(l.len(), 2);
        assert_eq!(l.first(), Some((5, TimerKey(1))));
        assert!(l.cancel(TimerKey(1)));
        assert!(!l.cancel(TimerKey(1)));
        assert!(!l.cancel(TimerKey(99)));
        assert_eq!(l.pop_due(i64::MAX), Some((5, TimerKey(0))));
        assert!(l.is_empty());
    }
}
