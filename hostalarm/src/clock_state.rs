//! The shared state of a clock group: what each lock guards, and the
//! conversions between emulator clock time and host time.
//!
//! See [`crate::clock`] for the lock order. In short: `run` before a
//! clock's list lock; `link` and the reset-notifier list are leaves; no
//! lock is held while a callback runs or the host is notified.
//!
//! # Host deadlines
//!
//! The host alarm is armed on host monotonic time, so each clock's first
//! expire time is converted:
//!
//! * REALTIME: the expire time itself;
//! * HOST: `mono + (expire - wall)` from one (mono, wall) pair, exact on the
//!   simulated host and recomputed on every pass (so a wall step is
//!   followed);
//! * VIRTUAL running: `base_mono + (expire - base_virtual)`, exact;
//! * VIRTUAL stopped: none, unless the timer is already due (then now).

use slab::Slab;

use itimer_sync::{Condvar, Mutex};

use crate::clock::{ClockType, ClocksConfig, Listener, ResetNotifier, VmState};
use crate::runner::RunState;
use crate::time::TimeSource;
use crate::timer::Slot;
use crate::timerlist::{TimerList, TimerQueue};

/// Everything one clock's list lock guards.
pub(crate) struct ClockState {
    /// A disabled clock reports no deadline and runs no timers.
    pub(crate) enabled: bool,
    /// Every live timer of this clock (armed or not), by key.
    pub(crate) slots: Slab<Slot>,
    /// The armed timers, by expire time (ns on this clock).
    pub(crate) list: TimerList,
    /// Generation the next created timer gets; tells a stale handle from a
    /// reused slot.
    pub(crate) next_gen: u64,
    /// VM state (meaningful for VIRTUAL only).
    pub(crate) vm: VmState,
}

/// One clock.
pub(crate) struct ClockCell {
    /// The list lock. See the module documentation for what it guards.
    pub(crate) state: Mutex<ClockState>,
}

/// The state of a clock group, shared by every handle and timer.
pub(crate) struct ClocksInner {
    /// Host time.
    pub(crate) source: TimeSource,
    /// Settings.
    pub(crate) config: ClocksConfig,
    /// Who runs timers; which callback is running. Before any list lock.
    pub(crate) run: Mutex<RunState>,
    /// Signalled when the running callback or the runner changes.
    pub(crate) run_cv: Condvar,
    /// The clocks, indexed by [`ClockType::index`].
    pub(crate) cells: [ClockCell; 3],
    /// HOST reset notifiers. Leaf lock; cloned out before calling.
    pub(crate) reset_notifiers: Mutex<Slab<ResetNotifier>>,
    /// The host told about earlier deadlines, if one is bound. Leaf lock.
    pub(crate) link: Mutex<Option<Listener>>,
}

impl ClocksInner {
    pub(crate) fn cell(&self, kind: ClockType) -> &ClockCell {
        &self.cells[kind.index()]
    }

    /// The clock's value given its (locked) state.
    pub(crate) fn now_locked(&self, kind: ClockType, st: &ClockState) -> i64 {
        match kind {
            ClockType::Realtime => self.source.monotonic_ns(),
            ClockType::Host => self.source.wall_ns(),
            ClockType::Virtual => st.vm.value_at(self.source.monotonic_ns()),
        }
    }

    pub(crate) fn now(&self, kind: ClockType) -> i64 {
        match kind {
            ClockType::Virtual => {
                let st = self.cell(kind).state.lock();
                self.now_locked(kind, &st)
            }
            _ => self.now_locked_free(kind),
        }
    }

    fn now_locked_free(&self, kind: ClockType) -> i64 {
        match kind {
            ClockType::Realtime => self.source.monotonic_ns(),
            _ => self.source.wall_ns(),
        }
    }

    /// The host-monotonic deadline of this clock's first timer given its
    /// (locked) state: `None` when disabled, empty, or VIRTUAL stopped with
    /// nothing already due.
    pub(crate) fn host_deadline_locked(&self, kind: ClockType, st: &ClockState) -> Option<i64> {
        if !st.enabled {
            return None;
        }
        let (expire, _) = st.list.first()?;
        match kind {
            ClockType::Realtime => Some(expire),
            ClockType::Host => {
                let pair = self.source.sample_pair();
                Some(
                    pair.mono_ns
                        .saturating_add(expire.saturating_sub(pair.wall_ns)),
                )
            }
            ClockType::Virtual if st.vm.running => Some(
                st.vm
                    .base_mono_ns
                    .saturating_add(expire.saturating_sub(st.vm.base_virtual_ns)),
            ),
            ClockType::Virtual => {
                (expire <= st.vm.base_virtual_ns).then(|| self.source.monotonic_ns())
            }
        }
    }

    pub(crate) fn notify_added(&self, host_deadline_ns: i64) {
        let link = self.link.lock().clone();
        if let Some(l) = link {
            l.deadline_added(host_deadline_ns);
        }
    }

    pub(crate) fn notify_changed(&self) {
        let link = self.link.lock().clone();
        if let Some(l) = link {
            l.deadlines_changed();
        }
    }
}
