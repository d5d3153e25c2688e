//! The three emulator clocks and their shared state.
//!
//! Models `QEMUClock` and the clock half of QEMU's `qemu-timer.c`
//! (`qemu_get_clock_ns`, `qemu_clock_enable`, `qemu_clock_deadline`,
//! `vm_stop`/`vm_start`, `qemu_register_clock_reset_notifier`).
//!
//! * MONO reads host monotonic time.
//! * WALL reads host wall time; it can step (see [`crate::step`]).
//! * GUEST is guest time: `base_virtual + (mono - base_mono)` while the VM
//!   runs, frozen at `base_virtual` while it is stopped. It can be warped
//!   (jump forward) and, while stopped, stepped (advanced with every
//!   GUEST timer run at its exact deadline). It starts running at 0.
//!
//! A [`Clocks`] is one group of the three clocks bound to one host (the
//! simulated host or the real timer loop); [`Clock`] is a handle on one of
//! them. Timers are created on a clock (see [`crate::timer`]).
//!
//! # Locks and their order
//!
//! ```text
//!   run (ClocksInner::run)  →  clock list lock (ClockCell::state)
//!   link, reset-notifier list, notifier phase: leaves, never nested
//! ```
//!
//! * `run` guards who is running timers and which timer's callback is
//!   running (see [`crate::runner`]). Taken before a list lock when both are
//!   needed (popping a timer; deleting one).
//! * A clock's list lock guards its enabled flag, its timer table, its
//!   armed list and (GUEST) the VM state.
//! * No lock is ever held while a callback or reset notifier runs, nor while
//!   the host is notified.
//!
//! # Deviations from QEMU
//!
//! * O(log n) lists ([`crate::timerlist`]) instead of a sorted linked list.
//! * Locks, so timers can be armed from any thread (QEMU 0.x had none).
//! * Deleting a timer waits for its running callback (see
//!   [`crate::timer::TimerHandle::del`]).
//! * Reset notifiers exist only on WALL (the only clock that steps);
//!   registering one on another clock is `EINVAL`.

use nix::errno::Errno;
use slab::Slab;

use itimer_sync::{Arc, Condvar, Mutex};

use crate::clock_state::{
    Callback, ClockCell, ClockState, ClocksInner, RunState, Slot, ThreadKey, VmState,
};
use crate::notify::DeadlineListener;
use crate::runner::RunnerToken;
use crate::time::{Scale, TimeSource};
use crate::timer::{Timer, TimerHandle};
use crate::timerlist::{TimerKey, TimerList, TimerQueue};

pub use crate::clock_state::{ClockType, ClocksConfig, DEFAULT_WALL_STEP_THRESHOLD_NS};
pub use crate::reset::{NotifierId, ResetNotifier, WallStep};

/// A group of the three emulator clocks, bound to at most one host.
/// Cloning gives another handle on the same clocks.
#[derive(Clone)]
pub struct Clocks {
    pub(crate) inner: Arc<ClocksInner>,
}

impl std::fmt::Debug for Clocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clocks")
            .field("source", &self.inner.source)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A handle on one clock of a [`Clocks`] group.
#[derive(Clone)]
pub struct Clock {
    pub(crate) inner: Arc<ClocksInner>,
    pub(crate) kind: ClockType,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Clocks {
    /// Three clocks on `source`; GUEST starts running at 0.
    /// `EINVAL` for a negative wall-step threshold.
    pub fn new(source: TimeSource, config: ClocksConfig) -> Result<Clocks, Errno> {
        if config.wall_step_threshold_ns < 0 {
            return Err(Errno::EINVAL);
        }
        let mono = source.monotonic_ns();
        let cell = || ClockCell {
            state: Mutex::new(ClockState {
                enabled: true,
                slots: Slab::new(),
                list: TimerList::new(),
                next_gen: 0,
                vm: VmState {
                    running: true,
                    base_virtual_ns: 0,
                    base_mono_ns: mono,
                },
            }),
        };
        Ok(Clocks {
            inner: Arc::new(ClocksInner {
                source,
                config,
                run: Mutex::new(RunState::default()),
                run_cv: Condvar::new(),
                cells: [cell(), cell(), cell()],
                reset_notifiers: Mutex::new(Slab::new()),
                link: Mutex::new(None),
            }),
        })
    }

    /// Three clocks on the real host, default settings.
    pub fn new_real() -> Clocks {
        Clocks::new(TimeSource::Real, ClocksConfig::default())
            .expect("the default configuration is valid")
    }

    /// The host time source.
    pub fn source(&self) -> &TimeSource {
        &self.inner.source
    }

    /// The group's settings.
    pub fn config(&self) -> ClocksConfig {
        self.inner.config
    }

    /// A handle on one clock.
    pub fn clock(&self, kind: ClockType) -> Clock {
        Clock {
            inner: self.inner.clone(),
            kind,
        }
    }

    /// MONO (host monotonic time).
    pub fn mono(&self) -> Clock {
        self.clock(ClockType::Mono)
    }

    /// WALL (host wall time).
    pub fn wall(&self) -> Clock {
        self.clock(ClockType::Wall)
    }

    /// GUEST (guest time).
    pub fn guest(&self) -> Clock {
        self.clock(ClockType::Guest)
    }

    /// The current value of a clock, ns.
    pub fn now(&self, kind: ClockType) -> i64 {
        self.inner.now(kind)
    }

    /// The earliest deadline over all enabled clocks, as host-monotonic ns.
    pub fn earliest_host_deadline(&self) -> Option<i64> {
        ClockType::ALL
            .iter()
            .filter_map(|&k| {
                let st = self.inner.cell(k).state.lock();
                self.inner.host_deadline_locked(k, &st)
            })
            .min()
    }

    /// Binds the group to a host. `EBUSY` if one is bound already.
    pub(crate) fn bind(&self, listener: Box<dyn DeadlineListener>) -> Result<(), Errno> {
        let mut link = self.inner.link.lock();
        if link.is_some() {
            return Err(Errno::EBUSY);
        }
        *link = Some(Arc::new(listener));
        Ok(())
    }

    /// Replaces the bound host (in a forked child: the new loop's).
    pub(crate) fn rebind(&self, listener: Box<dyn DeadlineListener>) {
        *self.inner.link.lock() = Some(Arc::new(listener));
    }

    /// In a forked child, where only the calling thread exists: forgets a
    /// runner token (and running callback) left by a thread that is gone.
    /// False if the run lock itself was held at fork time.
    pub(crate) fn clear_dead_runner_after_fork(&self) -> bool {
        let me = ThreadKey::current();
        match self.inner.run.try_lock() {
            Some(mut run) => {
                if run.runner.is_some_and(|r| r != me) {
                    run.runner = None;
                    run.current = None;
                }
                true
            }
            None => false,
        }
    }

    /// Unbinds the host.
    pub(crate) fn unbind(&self) {
        *self.inner.link.lock() = None;
    }
}

impl Clock {
    /// Which clock this is.
    pub fn kind(&self) -> ClockType {
        self.kind
    }

    /// The clock's current value, ns (`qemu_get_clock_ns`).
    pub fn now(&self) -> i64 {
        self.inner.now(self.kind)
    }

    /// Enables or disables the clock (`qemu_clock_enable`). A disabled clock
    /// reports no deadline and runs no timers; its timers stay armed.
    /// Enabling a disabled clock tells the host to re-arm.
    pub fn enable(&self, enabled: bool) {
        let was = {
            let mut st = self.inner.cell(self.kind).state.lock();
            std::mem::replace(&mut st.enabled, enabled)
        };
        if enabled && !was {
            self.inner.notify_changed();
        }
    }

    /// Whether the clock is enabled.
    pub fn is_enabled(&self) -> bool {
        self.inner.cell(self.kind).state.lock().enabled
    }

    /// The expire time of the clock's first armed timer, ns on this clock;
    /// `None` when disabled or no timer is armed.
    pub fn deadline(&self) -> Option<i64> {
        let st = self.inner.cell(self.kind).state.lock();
        if !st.enabled {
            return None;
        }
        st.list.first().map(|(e, _)| e)
    }

    /// Nanoseconds until the first timer expires (0 if already due), as
    /// QEMU's `qemu_clock_deadline`; `None` when there is no deadline. For a
    /// stopped GUEST this is guest time, which does not pass.
    pub fn deadline_ns(&self) -> Option<i64> {
        let st = self.inner.cell(self.kind).state.lock();
        if !st.enabled {
            return None;
        }
        let (expire, _) = st.list.first()?;
        Some(
            expire
                .saturating_sub(self.inner.now_locked(self.kind, &st))
                .max(0),
        )
    }

    /// The host-monotonic deadline of the first timer, ns; `None` when
    /// disabled, empty, or (GUEST) stopped with nothing due.
    pub fn host_deadline(&self) -> Option<i64> {
        let st = self.inner.cell(self.kind).state.lock();
        self.inner.host_deadline_locked(self.kind, &st)
    }

    /// Number of armed timers.
    pub fn armed_count(&self) -> usize {
        self.inner.cell(self.kind).state.lock().list.len()
    }

    /// Registers a reset notifier (WALL only: `EINVAL` on the others). It
    /// runs, on the host's runner thread with no lock held, whenever the
    /// wall clock is found to have stepped backwards, or forwards by more
    /// than [`crate::ClocksConfig::wall_step_threshold_ns`].
    pub fn add_reset_notifier<F>(&self, f: F) -> Result<NotifierId, Errno>
    where
        F: Fn(&WallStep) + Send + Sync + 'static,
    {
        if self.kind != ClockType::Wall {
            return Err(Errno::EINVAL);
        }
        Ok(NotifierId(
            self.inner
                .reset_notifiers
                .lock()
                .insert(Arc::new(Box::new(f))),
        ))
    }

    /// Removes a reset notifier. `ENOENT` if it is not registered. A
    /// notifier already cloned out by a running pass may still run once.
    pub fn remove_reset_notifier(&self, id: NotifierId) -> Result<(), Errno> {
        let removed = self.inner.reset_notifiers.lock().try_remove(id.0);
        removed.map(drop).ok_or(Errno::ENOENT)
    }

    /// Creates a timer on this clock (`qemu_new_timer`). Expire times are
    /// given in `scale` units. The callback runs on the host's runner
    /// thread (the timer loop, or the thread driving the simulated host)
    /// with no lock held, and may arm or delete any timer, itself included.
    pub fn new_timer<F>(&self, scale: Scale, callback: F) -> Timer
    where
        F: FnMut(&TimerHandle) + Send + 'static,
    {
        let cb: Callback = Box::new(callback);
        let (key, generation) = {
            let mut st = self.inner.cell(self.kind).state.lock();
            let generation = st.next_gen;
            st.next_gen += 1;
            let key = st.slots.insert(Slot {
                generation,
                scale,
                callback: Some(cb),
            });
            (key, generation)
        };
        Timer::new(TimerHandle::new(
            self.inner.clone(),
            self.kind,
            TimerKey(key),
            generation,
            scale,
        ))
    }

    /// Runs this clock's expired timers now, on the calling thread
    /// (`qemu_run_timers`). The host normally does this; see
    /// [`crate::runner`] for the exact semantics. Returns how many ran.
    ///
    /// `EDEADLK` when called from a timer callback or reset notifier; waits
    /// while another thread is running timers.
    pub fn run_timers(&self) -> Result<usize, Errno> {
        let token = RunnerToken::acquire(&self.inner)?;
        Ok(token.run_clock(self.kind))
    }
}
