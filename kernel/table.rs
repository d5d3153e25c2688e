//! The per-process timer table (illumos `p_itimer`, `p_itimer_sz`).
//!
//! # Invariants (all under `p_lock`)
//!
//! * `slots.len()` only grows, by doubling from [`TABLE_INITIAL`], never past
//!   `max` (the kernel's `timer_max`).
//! * `free` holds exactly the indices of [`Slot::Free`] slots, so the lowest
//!   free id is `free.first()`: O(log n) to allocate and to free, with no
//!   scan of the table even at a million timers.
//! * A slot is `Free`, `Reserved` (its id handed to a `timer_create` still
//!   building the timer; invisible to `timer_grab`), or `Live` with the
//!   timer and its lock word.
//!
//! # Growth (illumos `timer_get_id`)
//!
//! Allocating a bigger array may sleep, so it is never done under `p_lock`:
//! [`TimerTable::alloc_id`] answers [`Alloc::Grow`] with the size wanted; the
//! caller drops `p_lock`, allocates, re-takes `p_lock` and offers the new
//! storage to [`TimerTable::install`], which uses it only if the table is
//! still smaller (another creator may have grown it meanwhile), then
//! retries. Two creators racing the growth therefore still get distinct
//! ids and lose no slot (loom model 5).

use std::collections::BTreeSet;

use bitflags::bitflags;

use crate::itimer::Itimer;
use crate::sync::Arc;

/// The table's first size (illumos `_TIMER_ALLOC_INIT`).
pub const TABLE_INITIAL: usize = 8;

bitflags! {
    /// A timer's lock word (illumos `it_lock`), guarded by `p_lock`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Itlk: u8 {
        /// A thread holds the timer (illumos `ITLK_LOCKED`).
        const LOCKED = 0x1;
        /// The timer is being deleted; no new holder may take it
        /// (illumos `ITLK_REMOVE`).
        const REMOVE = 0x2;
    }
}

/// A live slot: the timer plus its `p_lock`-guarded lock word.
#[derive(Debug)]
pub(crate) struct LiveSlot {
    /// The timer.
    pub it: Arc<Itimer>,
    /// `ITLK_*` bits.
    pub itlk: Itlk,
    /// Threads waiting in `timer_lock` for this timer (illumos `it_blockers`).
    pub blockers: u32,
}

/// One entry of the table.
#[derive(Debug, Default)]
pub(crate) enum Slot {
    /// Unused; its index is in `free`.
    #[default]
    Free,
    /// Id handed out to a `timer_create` that has not published the timer.
    Reserved,
    /// A timer.
    Live(LiveSlot),
}

/// The answer of [`TimerTable::alloc_id`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Alloc {
    /// This id is now `Reserved` for the caller.
    Got(usize),
    /// No free slot: drop `p_lock`, allocate this many slots, call
    /// [`TimerTable::install`], retry.
    Grow(usize),
    /// The table is at `timer_max` and full (`EAGAIN`).
    Full,
}

/// Fresh storage allocated outside `p_lock` for a growth.
#[derive(Debug)]
pub(crate) struct Growth(Vec<Slot>);

impl Growth {
    /// Allocates room for `len` slots (called without `p_lock`).
    pub fn allocate(len: usize) -> Growth {
        Growth(Vec::with_capacity(len))
    }
}

/// The table. See the module docs.
#[derive(Debug)]
pub(crate) struct TimerTable {
    /// Indexed by timer id.
    slots: Vec<Slot>,
    /// Indices of free slots.
    free: BTreeSet<usize>,
    /// The most slots this table may ever have.
    max: usize,
    /// Number of `Live` slots.
    live: usize,
}

impl TimerTable {
    /// An empty table that may grow to `max` slots.
    pub fn new(max: usize) -> TimerTable {
        TimerTable {
            slots: Vec::new(),
            free: BTreeSet::new(),
            max,
            live: 0,
        }
    }

    /// The current size (illumos `p_itimer_sz`).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Reserves the lowest free id, or says how to grow.
    pub fn alloc_id(&mut self) -> Alloc {
        if let Some(id) = self.free.pop_first() {
            self.slots[id] = Slot::Reserved;
            return Alloc::Got(id);
        }
        if self.slots.len() >= self.max {
            return Alloc::Full;
        }
        // Not `clamp`: a `timer_max` below TABLE_INITIAL is valid and must
        // give a table of `timer_max` slots, not a panic.
        let want = (self.slots.len() * 2).max(TABLE_INITIAL).min(self.max);
        Alloc::Grow(want)
    }

    /// Installs storage from [`Growth::allocate`] if the table is still
    /// smaller than it; otherwise the storage is dropped (someone else grew
    /// the table first).
    pub fn install(&mut self, growth: Growth) {
        let mut fresh = growth.0;
        let new_len = fresh.capacity().min(self.max);
        if new_len <= self.slots.len() {
            return;
        }
        let old_len = self.slots.len();
        fresh.append(&mut self.slots);
        fresh.resize_with(new_len, Slot::default);
        self.slots = fresh;
        self.free.extend(old_len..new_len);
    }

    /// Frees a `Reserved` or `Live` slot (its id becomes allocatable).
    pub fn free_slot(&mut self, id: usize) {
        debug_assert!(!matches!(self.slots[id], Slot::Free));
        if matches!(self.slots[id], Slot::Live(_)) {
            self.live -= 1;
        }
        self.slots[id] = Slot::Free;
        self.free.insert(id);
    }

    /// Publishes a timer into its reserved slot.
    pub fn publish(&mut self, id: usize, live: LiveSlot) {
        debug_assert!(matches!(self.slots[id], Slot::Reserved));
        self.slots[id] = Slot::Live(live);
        self.live += 1;
    }

    /// The live slot at `id`, if any.
    pub fn live(&self, id: usize) -> Option<&LiveSlot> {
        match self.slots.get(id) {
            Some(Slot::Live(s)) => Some(s),
            _ => None,
        }
    }

    /// The live slot at `id`, mutably.
    pub fn live_mut(&mut self, id: usize) -> Option<&mut LiveSlot> {
        match self.slots.get_mut(id) {
            Some(Slot::Live(s)) => Some(s),
            _ => None,
        }
    }

    /// Ids of live slots, ascending.
    pub fn live_ids(&self) -> Vec<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Slot::Live(_)))
            .map(|(i, _)| i)
            .collect()
    }

    /// Number of live timers.
    pub fn live_count(&self) -> usize {
        self.live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grow(t: &mut TimerTable) {
        match t.alloc_id() {
            Alloc::Grow(n) => t.install(Growth::allocate(n)),
            other => panic!("expected growth, got {other:?}"),
        }
    }

    #[test]
    fn lowest_first_and_doubling() {
        let mut t = TimerTable::new(20);
        grow(&mut t);
        assert_eq!(t.len(), TABLE_INITIAL);
        for want in 0..8 {
            assert_eq!(t.alloc_id(), Alloc::Got(want));
        }
        grow(&mut t);
        assert_eq!(t.len(), 16);
        assert_eq!(t.alloc_id(), Alloc::Got(8));
        t.free_slot(3);
        t.free_slot(1);
        assert_eq!(t.alloc_id(), Alloc::Got(1));
        assert_eq!(t.alloc_id(), Alloc::Got(3));
        for want in 9..16 {
            assert_eq!(t.alloc_id(), Alloc::Got(want));
        }
        grow(&mut t);
        assert_eq!(t.len(), 20, "clamped to max");
        for want in 16..20 {
            assert_eq!(t.alloc_id(), Alloc::Got(want));
        }
        assert_eq!(t.alloc_id(), Alloc::Full);
    }

    #[test]
    fn timer_max_below_initial_size() {
        let mut t = TimerTable::new(2);
        assert_eq!(t.alloc_id(), Alloc::Grow(2));
        grow(&mut t);
        assert_eq!(t.len(), 2);
        assert_eq!(t.alloc_id(), Alloc::Got(0));
        assert_eq!(t.alloc_id(), Alloc::Got(1));
        assert_eq!(t.alloc_id(), Alloc::Full);
    }

    #[test]
    fn stale_growth_is_dropped() {
        let mut t = TimerTable::new(64);
        let small = Growth::allocate(8);
        grow(&mut t);
        for _ in 0..8 {
            t.alloc_id();
        }
        grow(&mut t);
        assert_eq!(t.len(), 16);
        t.install(small);
        assert_eq!(t.len(), 16, "a smaller late growth changes nothing");
        assert_eq!(t.alloc_id(), Alloc::Got(8));
    }
}
