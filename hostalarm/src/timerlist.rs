//! The O(log n) list of active timers of one emulator clock: an indexed
//! 4-ary min-heap.
//!
//! Models `active_timers` of QEMU's `qemu-timer.c` (a singly linked list
//! kept sorted by expire time, O(n) to insert). Here the armed timers sit in
//! an implicit 4-ary min-heap in one vector, ordered by `(expire, sequence)`,
//! and a dense table maps each timer key to its entry's index in the heap,
//! so a timer can be found, moved and removed without a search.
//!
//! # Invariants
//!
//! * Heap order: the entry at index `i > 0` has its parent at
//!   `(i - 1) / ARITY`, and no entry fires before its parent: its
//!   `(expire, sequence)` is greater. The root (index 0) fires first.
//! * Every armed timer has exactly one entry, and the index agrees with it:
//!   `index[k]` is `Some(i)` exactly when `heap[i].key == k`; a timer that is
//!   not armed has `index[k] == None` (or `k` beyond the table).
//! * Sequence numbers are unique and only grow (a `u64` does not wrap at any
//!   arming rate), so `(expire, sequence)` is a total order: equal expire
//!   times pop in arming order, and re-arming a timer gives it a new, larger
//!   sequence number, which puts it behind the others with its expire time
//!   (as QEMU's insertion after equal entries does). The heap is not a
//!   stable structure by itself; the sequence number is what makes the
//!   firing order exact.
//! * The list holds no locks; its owner (a clock, see [`crate::clock`])
//!   guards it.
//!
//! # Cost
//!
//! With `n` armed timers and `d = ARITY`:
//!
//! * arm a timer that is not armed: append, then sift up, at most
//!   `log_d n` levels, and O(1) expected levels for a uniformly random
//!   expire time (most entries live near the bottom of a heap);
//! * re-arm an armed timer: change its key in place and sift up or down;
//! * cancel: move the last entry into the hole and sift it up or down, at
//!   most `log_d n` levels (O(1) expected levels for a random timer, since
//!   the hole is usually near the bottom);
//! * pop: move the last entry to the root and sift it down, `log_d n`
//!   levels;
//! * `first`, `expire_of`, `len`: O(1).
//!
//! Every move of an entry updates its timer's index entry. The heap array
//! holds the keys inline (`expire`, `sequence`, timer key: 24 bytes), so
//! comparisons never leave the array; the four children of a node are
//! adjacent (96 bytes, two or three cache lines) and the depth is half a
//! binary heap's. Sifting down picks the earliest child without branches
//! (which child wins is unpredictable) and touches the grandchildren's
//! cache lines one level ahead, so that in a heap larger than the cache the
//! misses of successive levels overlap instead of queueing.
//!
//! # Why a heap, and what it costs in memory terms
//!
//! It replaced a `BTreeMap` keyed by `(expire, sequence)`, whose arm and
//! cancel each walk a deep tree of small nodes (at most eleven keys): at a
//! million timers each walk is several cache misses. Here arming and
//! cancelling usually work at the bottom of the heap, next to the end of
//! the vector. A pop walks from the root to a leaf, and below the levels
//! that fit in the cache each level can miss, where the B-tree pops from
//! its leftmost leaf, which stays in cache. Measured, the heap pops as fast
//! or faster at every size, with one exception: a million timers armed at
//! random times and then popped and re-armed in deadline order keep the
//! heap's scattered layout, and pop about 1.3 times slower than from the
//! B-tree. Figures for both, and the benchmark that produced them, are in
//! `docs/performance.md`.
//!
//! Both this list and the reference [`crate::sorted_list::SortedList`]
//! implement [`TimerQueue`], so the property test and the benchmark can drive
//! them through one interface.

use std::num::NonZeroU32;

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

/// Children per heap node. Four halves the depth of a binary heap for one
/// more comparison per level, and a node's children are adjacent in memory.
/// [`TimerList::earliest_child`] is written for exactly four.
const ARITY: usize = 4;
const _: () = assert!(ARITY == 4);

/// One armed timer in the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// Expire time, ns on the owning clock.
    expire_ns: i64,
    /// Arming sequence number: breaks ties in arming order.
    seq: u64,
    /// The timer.
    key: TimerKey,
}

impl Entry {
    /// `(expire, seq)` as one unsigned number with the same order: the
    /// expire time with its sign bit flipped (so negative times sort first)
    /// in the high half, the sequence number in the low half. One 128-bit
    /// comparison instead of two branches.
    fn order(&self) -> u128 {
        let expire = (self.expire_ns as u64) ^ (1 << 63);
        (u128::from(expire) << 64) | u128::from(self.seq)
    }

    /// Whether `self` fires before `other`.
    fn before(&self, other: &Entry) -> bool {
        self.order() < other.order()
    }
}

/// Index of an armed timer's entry in [`TimerList::heap`], stored plus one
/// in 32 bits so that `Option<HeapIndex>` is four bytes. Every move of an
/// entry writes its timer's index entry, at a place given by an unrelated
/// key: a table half the size of one of words stays in cache for twice as
/// many timers (see `docs/performance.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeapIndex(NonZeroU32);

/// The most timers one list can hold armed: heap indices must fit
/// [`HeapIndex`]. Far beyond memory in practice (each armed timer costs the
/// list 28 bytes and its clock a timer slot), so reaching it is treated like
/// a vector's capacity overflow: a panic.
const MAX_ARMED: usize = u32::MAX as usize;

impl HeapIndex {
    fn new(i: usize) -> Self {
        // `i < MAX_ARMED` (checked when arming), so `i + 1` fits and is
        // not zero.
        let stored = u32::try_from(i + 1).ok().and_then(NonZeroU32::new);
        HeapIndex(stored.expect("heap index below MAX_ARMED"))
    }

    fn get(self) -> usize {
        self.0.get() as usize - 1
    }
}

/// The O(log n) timer list: an indexed 4-ary min-heap ordered by
/// `(expire, sequence)`.
#[derive(Debug, Default, Clone)]
pub struct TimerList {
    /// The armed timers in heap order (see the module invariants).
    heap: Vec<Entry>,
    /// `index[k]` is where timer `k`'s entry is in `heap`, if armed. Dense
    /// because keys are slab indices.
    index: Vec<Option<HeapIndex>>,
    /// The sequence number the next arming gets.
    next_seq: u64,
}

impl TimerList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where `key`'s entry is in the heap, if armed.
    fn index_of(&self, key: TimerKey) -> Option<usize> {
        self.index.get(key.0).copied().flatten().map(HeapIndex::get)
    }

    /// Puts `e` at heap index `i` and records where it is.
    fn place(&mut self, i: usize, e: Entry) {
        self.heap[i] = e;
        self.index[e.key.0] = Some(HeapIndex::new(i));
    }

    /// Puts `e` into the hole at `i` and restores heap order around it:
    /// up if it fires before the parent, else down.
    fn fill(&mut self, i: usize, e: Entry) {
        if i > 0 && e.before(&self.heap[(i - 1) / ARITY]) {
            self.sift_up(i, e);
        } else {
            self.sift_down(i, e);
        }
    }

    /// Moves the hole at `i` towards the root while `e` fires before the
    /// hole's parent, then puts `e` in it.
    fn sift_up(&mut self, mut i: usize, e: Entry) {
        while i > 0 {
            let parent = (i - 1) / ARITY;
            let p = self.heap[parent];
            if !e.before(&p) {
                break;
            }
            self.place(i, p);
            i = parent;
        }
        self.place(i, e);
    }

    /// Moves the hole at `i` towards the leaves while its earliest child
    /// fires before `e`, then puts `e` in it.
    fn sift_down(&mut self, mut i: usize, e: Entry) {
        let len = self.heap.len();
        loop {
            let first = i * ARITY + 1;
            if first >= len {
                break;
            }
            self.touch_grandchildren(first);
            let c = self.earliest_child(first);
            let child = self.heap[c];
            if !child.before(&e) {
                break;
            }
            self.place(i, child);
            i = c;
        }
        self.place(i, e);
    }

    /// Index of the earliest of the children that start at `first` (a
    /// full family of `ARITY`, or fewer at the end of the heap).
    fn earliest_child(&self, first: usize) -> usize {
        let len = self.heap.len();
        if first + ARITY <= len {
            // A full family: a tournament written as selects, which compile
            // without branches. Which child wins is data, not a pattern, so
            // branches would be mispredicted about half the time.
            let g = &self.heap[first..first + ARITY];
            let (o0, o1, o2, o3) = (g[0].order(), g[1].order(), g[2].order(), g[3].order());
            let (a, oa) = if o1 < o0 { (1, o1) } else { (0, o0) };
            let (b, ob) = if o3 < o2 { (3, o3) } else { (2, o2) };
            first + if ob < oa { b } else { a }
        } else {
            (first + 1..len).fold(first, |c, j| {
                if self.heap[j].before(&self.heap[c]) {
                    j
                } else {
                    c
                }
            })
        }
    }

    /// Reads one word from every cache line holding the grandchildren of
    /// the node whose children start at `first`, so that the memory system
    /// fetches the level after next while this level is compared: without
    /// it a sift down through a heap larger than the cache waits for each
    /// level's miss in turn. A software prefetch without `unsafe`: the
    /// loads are real and their result is discarded through `black_box`.
    /// Entries are 24 bytes, so one load every two entries reaches every
    /// 64-byte line. Skipped near the bottom, where the level is partial.
    fn touch_grandchildren(&self, first: usize) {
        let start = first * ARITY + 1;
        let end = start + ARITY * ARITY;
        if let Some(g) = self.heap.get(start..end) {
            let mut words = 0;
            for pair in g.chunks_exact(2) {
                words ^= pair[0].seq;
            }
            std::hint::black_box(words);
        }
    }

    /// Removes the entry at `i` (its timer's index entry must already be
    /// cleared) and refills the hole with the last entry.
    fn remove_at(&mut self, i: usize) {
        let last = self.heap.pop().expect("remove_at on an armed entry");
        if i < self.heap.len() {
            self.fill(i, last);
        }
    }
}

impl TimerQueue for TimerList {
    fn arm(&mut self, key: TimerKey, expire_ns: i64) {
        let e = Entry {
            expire_ns,
            seq: self.next_seq,
            key,
        };
        self.next_seq += 1;
        match self.index_of(key) {
            Some(i) => {
                // Re-arm in place: the new key may be earlier or later.
                if e.before(&self.heap[i]) {
                    self.sift_up(i, e);
                } else {
                    self.sift_down(i, e);
                }
            }
            None => {
                assert!(
                    self.heap.len() < MAX_ARMED,
                    "more than {MAX_ARMED} timers armed on one clock"
                );
                if self.index.len() <= key.0 {
                    self.index.resize(key.0 + 1, None);
                }
                self.heap.push(e);
                self.sift_up(self.heap.len() - 1, e);
            }
        }
    }

    fn cancel(&mut self, key: TimerKey) -> bool {
        match self.index.get_mut(key.0).and_then(Option::take) {
            Some(i) => {
                self.remove_at(i.get());
                true
            }
            None => false,
        }
    }

    fn expire_of(&self, key: TimerKey) -> Option<i64> {
        self.index_of(key).map(|i| self.heap[i].expire_ns)
    }

    fn first(&self) -> Option<(i64, TimerKey)> {
        self.heap.first().map(|e| (e.expire_ns, e.key))
    }

    fn pop_due(&mut self, now_ns: i64) -> Option<(i64, TimerKey)> {
        let root = *self.heap.first()?;
        if root.expire_ns > now_ns {
            return None;
        }
        self.index[root.key.0] = None;
        self.remove_at(0);
        Some((root.expire_ns, root.key))
    }

    fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    impl TimerList {
        /// Checks every module invariant; panics with the first violation.
        fn check(&self) {
            for (i, e) in self.heap.iter().enumerate() {
                if i > 0 {
                    let p = &self.heap[(i - 1) / ARITY];
                    assert!(p.before(e), "entry {i} {e:?} fires before its parent {p:?}");
                }
                assert!(e.seq < self.next_seq, "entry {i} has an unissued sequence");
                assert_eq!(self.index_of(e.key), Some(i), "index of entry {i}");
            }
            let indexed = self.index.iter().filter(|x| x.is_some()).count();
            assert_eq!(indexed, self.heap.len(), "index entries vs heap entries");
        }
    }

    #[test]
    fn pops_in_deadline_then_arming_order() {
        let mut l = TimerList::new();
        l.arm(TimerKey(3), 20);
        l.arm(TimerKey(1), 10);
        l.arm(TimerKey(2), 10);
        l.arm(TimerKey(0), 30);
        l.check();
        assert_eq!(l.len(), 4);
        assert_eq!(l.first(), Some((10, TimerKey(1))));
        assert_eq!(l.pop_due(9), None);
        assert_eq!(l.pop_due(20), Some((10, TimerKey(1))));
        assert_eq!(l.pop_due(20), Some((10, TimerKey(2))));
        assert_eq!(l.pop_due(20), Some((20, TimerKey(3))));
        assert_eq!(l.pop_due(20), None);
        assert_eq!(l.expire_of(TimerKey(0)), Some(30));
        assert_eq!(l.expire_of(TimerKey(3)), None);
        l.check();
    }

    #[test]
    fn rearm_moves_behind_equals_and_cancel_removes() {
        let mut l = TimerList::new();
        l.arm(TimerKey(0), 5);
        l.arm(TimerKey(1), 5);
        l.arm(TimerKey(0), 5);
        l.check();
        assert_eq!(l.len(), 2);
        assert_eq!(l.first(), Some((5, TimerKey(1))));
        assert!(l.cancel(TimerKey(1)));
        assert!(!l.cancel(TimerKey(1)));
        assert!(!l.cancel(TimerKey(99)));
        l.check();
        assert_eq!(l.pop_due(i64::MAX), Some((5, TimerKey(0))));
        assert!(l.is_empty());
    }

    #[test]
    fn order_packs_sign_and_sequence() {
        let e = |expire_ns, seq| Entry {
            expire_ns,
            seq,
            key: TimerKey(0),
        };
        assert!(e(i64::MIN, u64::MAX).before(&e(-1, 0)));
        assert!(e(-1, u64::MAX).before(&e(0, 0)));
        assert!(e(0, 1).before(&e(0, 2)));
        assert!(e(i64::MAX - 1, u64::MAX).before(&e(i64::MAX, 0)));
        assert!(!e(7, 3).before(&e(7, 3)));
    }

    #[test]
    fn heap_index_round_trips() {
        for i in [0, 1, 3, 4, 5, 1 << 31, MAX_ARMED - 1] {
            assert_eq!(HeapIndex::new(i).get(), i);
        }
        assert_eq!(std::mem::size_of::<Option<HeapIndex>>(), 4);
    }

    /// A deep heap, cancels from the middle (holes filled from below that
    /// must move up as well as down), re-arms both ways, pops: the
    /// invariants after every operation, and the full firing order at the
    /// end against a plain sort.
    #[test]
    fn invariants_hold_through_a_deep_heap() {
        let mut l = TimerList::new();
        let mut x: u64 = 1;
        let mut rnd = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let n = 2_000;
        for k in 0..n {
            l.arm(TimerKey(k), rnd(500) as i64);
        }
        l.check();
        for _ in 0..3_000 {
            let k = TimerKey(rnd(n as u64) as usize);
            match rnd(3) {
                0 => {
                    l.cancel(k);
                }
                _ => l.arm(k, rnd(600) as i64 - 50),
            }
            l.check();
        }
        let mut expected: Vec<(i64, u64, TimerKey)> =
            l.heap.iter().map(|e| (e.expire_ns, e.seq, e.key)).collect();
        expected.sort();
        let mut got = Vec::new();
        while let Some((e, k)) = l.pop_due(i64::MAX) {
            got.push((e, k));
            if got.len() % 97 == 0 {
                l.check();
            }
        }
        let expected: Vec<_> = expected.into_iter().map(|(e, _, k)| (e, k)).collect();
        assert_eq!(got, expected);
        l.check();
    }

    proptest! {
        /// The invariants after every operation of any short sequence.
        #[test]
        fn invariants_hold_after_every_operation(
            ops in proptest::collection::vec((0u8..3, 0usize..40, -20i64..20), 0..300)
        ) {
            let mut l = TimerList::new();
            for (op, k, e) in ops {
                match op {
                    0 => l.arm(TimerKey(k), e),
                    1 => {
                        l.cancel(TimerKey(k));
                    }
                    _ => {
                        l.pop_due(e);
                    }
                }
                l.check();
            }
        }
    }
}
