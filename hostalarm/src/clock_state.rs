//! The shared state of a clock group: the types every other clock file
//! builds on, what each lock guards, and the conversions between emulator
//! clock time and host time.
//!
//! This is the floor of the clock files, which import only downwards:
//! `clock_state` ← `timer` (arming, deleting) and `runner` (running
//! expired timers) ← `clock` (the public handles) ← `vclock`, `step`. It owns the clock kinds ([`ClockType`]), a clock's
//! table entry (`Slot`) and the handle naming one ([`TimerHandle`]'s
//! fields; its operations are in [`crate::timer`]), and the runner state
//! (`RunState`; the protocol is in [`crate::runner`]).
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
//! * MONO: the expire time itself;
//! * WALL: `mono + (expire - wall)` from one (mono, wall) pair, exact on the
//!   simulated host and recomputed on every pass (so a wall step is
//!   followed);
//! * GUEST running: `base_mono + (expire - base_virtual)`, exact;
//! * GUEST stopped: none, unless the timer is already due (then now).

use slab::Slab;

use itimer_sync::{Arc, Condvar, Mutex, thread};

use crate::notify::DeadlineListener;
use crate::reset::ResetNotifier;
use crate::time::{NS_PER_MS, Scale, TimeSource};
use crate::timerlist::{TimerKey, TimerList, TimerQueue};

/// One of the three emulator clocks, named for what they read (QEMU's
/// names, `rt_clock` / `QEMU_CLOCK_REALTIME`, `host_clock` and `vm_clock` /
/// `QEMU_CLOCK_VIRTUAL`, are in the book's mapping table, chapter 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockType {
    /// Host monotonic time (QEMU's `rt_clock`, "realtime").
    Mono,
    /// Host wall time (QEMU's `host_clock`); can step.
    Wall,
    /// Guest time (QEMU's `vm_clock`, "virtual"); runs only while the VM
    /// runs.
    Guest,
}

impl ClockType {
    /// Every clock, in the order a pass of the host runs their timers (so
    /// timers due at the same host instant on different clocks run
    /// MONO first, then WALL, then GUEST).
    pub const ALL: [ClockType; 3] = [ClockType::Mono, ClockType::Wall, ClockType::Guest];

    pub(crate) fn index(self) -> usize {
        match self {
            ClockType::Mono => 0,
            ClockType::Wall => 1,
            ClockType::Guest => 2,
        }
    }
}

/// Forward wall-clock jumps larger than this fire the WALL reset notifiers
/// unless [`ClocksConfig`] says otherwise, ns. (Backward jumps always do.)
pub const DEFAULT_WALL_STEP_THRESHOLD_NS: i64 = 100 * NS_PER_MS;

/// Settings of a clock group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClocksConfig {
    /// A forward wall-clock jump larger than this fires the WALL reset
    /// notifiers, ns. Must be `>= 0`.
    pub wall_step_threshold_ns: i64,
}

impl Default for ClocksConfig {
    fn default() -> Self {
        ClocksConfig {
            wall_step_threshold_ns: DEFAULT_WALL_STEP_THRESHOLD_NS,
        }
    }
}

/// The host a clock group is bound to, as the clocks hold it (boxed for the
/// same reason as [`ResetNotifier`]).
pub(crate) type Listener = Arc<Box<dyn DeadlineListener>>;

/// The VM run state behind GUEST.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VmState {
    /// Whether the VM runs (GUEST advances with host monotonic time).
    pub(crate) running: bool,
    /// GUEST at `base_mono_ns` (running) or its frozen value (stopped), ns.
    pub(crate) base_virtual_ns: i64,
    /// Host monotonic time when the VM last resumed, ns (running only).
    pub(crate) base_mono_ns: i64,
}

impl VmState {
    /// GUEST at host monotonic time `mono_ns`.
    pub(crate) fn value_at(&self, mono_ns: i64) -> i64 {
        if self.running {
            self.base_virtual_ns
                .saturating_add(mono_ns.saturating_sub(self.base_mono_ns))
        } else {
            self.base_virtual_ns
        }
    }
}

/// A timer callback. It is given a handle on its own timer.
pub type Callback = Box<dyn FnMut(&TimerHandle) + Send>;

/// A timer's entry in its clock's table (guarded by the list lock).
pub(crate) struct Slot {
    /// Tells this timer from earlier ones that used the same slot.
    pub(crate) generation: u64,
    /// The unit the owner gave expire times in.
    pub(crate) scale: Scale,
    /// The callback; `None` while it runs (the runner holds it).
    pub(crate) callback: Option<Callback>,
}

/// Names one timer: arm, delete and query it. Cheap to clone. Goes inert
/// when the owning [`crate::timer::Timer`] is dropped.
///
/// A handle keeps its clock group alive; a handle captured by a callback of
/// the same group forms a cycle that is broken when that callback's timer
/// is freed.
#[derive(Clone)]
pub struct TimerHandle {
    pub(crate) inner: Arc<ClocksInner>,
    pub(crate) kind: ClockType,
    pub(crate) key: TimerKey,
    pub(crate) generation: u64,
    pub(crate) scale: Scale,
}

impl std::fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerHandle")
            .field("clock", &self.kind)
            .field("key", &self.key)
            .field("generation", &self.generation)
            .field("scale", &self.scale)
            .finish()
    }
}

impl TimerHandle {
    pub(crate) fn new(
        inner: Arc<ClocksInner>,
        kind: ClockType,
        key: TimerKey,
        generation: u64,
        scale: Scale,
    ) -> Self {
        TimerHandle {
            inner,
            kind,
            key,
            generation,
            scale,
        }
    }
}

/// Names a thread (see [`crate::runner`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ThreadKey(thread::ThreadId);

impl ThreadKey {
    pub(crate) fn current() -> ThreadKey {
        ThreadKey(thread::current().id())
    }
}

/// Names a timer across clocks and slot reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunningTimer {
    pub(crate) kind: ClockType,
    pub(crate) key: TimerKey,
    pub(crate) generation: u64,
}

/// Guarded by `ClocksInner::run`.
#[derive(Debug, Default)]
pub(crate) struct RunState {
    /// The thread holding the runner token.
    pub(crate) runner: Option<ThreadKey>,
    /// The timer whose callback is running (on the runner thread).
    pub(crate) current: Option<RunningTimer>,
}

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
    /// VM state (meaningful for GUEST only).
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
    /// WALL reset notifiers. Leaf lock; cloned out before calling.
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
            ClockType::Mono => self.source.monotonic_ns(),
            ClockType::Wall => self.source.wall_ns(),
            ClockType::Guest => st.vm.value_at(self.source.monotonic_ns()),
        }
    }

    pub(crate) fn now(&self, kind: ClockType) -> i64 {
        match kind {
            ClockType::Guest => {
                let st = self.cell(kind).state.lock();
                self.now_locked(kind, &st)
            }
            _ => self.now_locked_free(kind),
        }
    }

    fn now_locked_free(&self, kind: ClockType) -> i64 {
        match kind {
            ClockType::Mono => self.source.monotonic_ns(),
            _ => self.source.wall_ns(),
        }
    }

    /// The host-monotonic deadline of this clock's first timer given its
    /// (locked) state: `None` when disabled, empty, or GUEST stopped with
    /// nothing already due.
    pub(crate) fn host_deadline_locked(&self, kind: ClockType, st: &ClockState) -> Option<i64> {
        if !st.enabled {
            return None;
        }
        let (expire, _) = st.list.first()?;
        match kind {
            ClockType::Mono => Some(expire),
            ClockType::Wall => {
                let pair = self.source.sample_pair();
                Some(
                    pair.mono_ns
                        .saturating_add(expire.saturating_sub(pair.wall_ns)),
                )
            }
            ClockType::Guest if st.vm.running => Some(
                st.vm
                    .base_mono_ns
                    .saturating_add(expire.saturating_sub(st.vm.base_virtual_ns)),
            ),
            ClockType::Guest => {
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
