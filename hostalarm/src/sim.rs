//! The simulated host: a `sim` alarm backend and a driver that moves
//! simulated time by hand.
//!
//! There is no QEMU counterpart; it plays the part QEMU's `qtest`
//! accelerator plays for its tests (time moves only when told), and it
//! drives the **same** pass as the real loop ([`crate::step`]): consume,
//! run expired timers on every enabled clock, recompute the earliest
//! deadline, re-arm only if it changed. Time moves only to the deadline the
//! [`SimBackend`] was armed with, so the simulation tests the real re-arm
//! logic: a deadline the pass forgot to arm is a timer that never fires.
//!
//! # Semantics
//!
//! * [`SimHost::advance`] moves time to each armed deadline in turn (never
//!   past the target), fires the alarm there and runs a pass, so every
//!   callback reads exactly its deadline on its clock; then it sets time to
//!   the target.
//! * Timers armed from other threads kick the [`SimWaker`]; the kick is
//!   handled (a pass at the current time) at the start of the next
//!   `advance` / `step_to_next_deadline` / `run_until_idle`. Callbacks run
//!   on the thread calling those.
//! * A timer armed at or before the current time runs on the next call
//!   (`advance(0)` suffices).
//! * [`SimHost::step_wall`] steps the wall clock and fires the alarm the
//!   way a timerfd with cancel-on-set does (`wall_clock_stepped`).
//!
//! # Locks
//!
//! `driver` (a `Mutex<Option<Driver>>`) is held only to take the driver out
//! and put it back; a driving call owns it in between, with no lock held,
//! so callbacks run lock-free. A second driving call meanwhile (another
//! thread, or a callback) gets [`SimError::Busy`]. A callback that panics
//! unwinds out of the driving call and the driver is not put back: every
//! later driving call is `Busy` (the simulation is over).

use std::fmt;
use std::os::fd::BorrowedFd;

use nix::errno::Errno;

use itimer_sync::atomic::{AtomicBool, Ordering};
use itimer_sync::{Arc, Mutex};

use crate::alarm::{AlarmBackend, MonoNs, StartError, Wakeup};
use crate::clock::{Clocks, ClocksConfig};
use crate::notify::{Notifier, Waker};
use crate::step::{LoopCore, LoopStats, StatCounters, WakeCause};
use crate::time::{NS_PER_SEC, SimTime, TimeSource};

/// The `sim` alarm backend: records the armed deadline; no host side.
#[derive(Debug, Default)]
pub struct SimBackend {
    started: bool,
    /// The armed absolute deadline (host-monotonic ns).
    armed: Option<MonoNs>,
    /// What the next `consume` reports.
    unconsumed: Wakeup,
    rearm_calls: u64,
    min_rearm_ns: u64,
}

impl SimBackend {
    /// A backend whose floor is `min_rearm_ns` (0: arm anywhere).
    pub fn new(min_rearm_ns: u64) -> Self {
        SimBackend {
            min_rearm_ns,
            ..SimBackend::default()
        }
    }

    /// The armed deadline, if any.
    pub fn armed(&self) -> Option<MonoNs> {
        self.armed
    }

    /// The alarm fires: one expiry to consume, the one-shot timer disarmed.
    fn fire(&mut self) {
        self.unconsumed.expirations += 1;
        self.armed = None;
    }

    /// The wall clock was stepped (as timerfd cancel-on-set reports).
    fn signal_wall_step(&mut self) {
        self.unconsumed.wall_clock_stepped = true;
    }
}

impl AlarmBackend for SimBackend {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn start(&mut self) -> Result<(), StartError> {
        self.started = true;
        Ok(())
    }

    fn stop(&mut self) {
        self.started = false;
        self.armed = None;
    }

    fn rearm(&mut self, deadline: Option<MonoNs>) -> Result<(), Errno> {
        if !self.started {
            return Err(Errno::EBADF);
        }
        self.rearm_calls += 1;
        self.armed = deadline;
        Ok(())
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    fn consume(&mut self) -> Result<Wakeup, Errno> {
        Ok(std::mem::take(&mut self.unconsumed))
    }

    fn resolution_ns(&self) -> u64 {
        1
    }

    fn min_rearm_ns(&self) -> u64 {
        self.min_rearm_ns
    }

    fn rearm_calls(&self) -> u64 {
        self.rearm_calls
    }
}

/// The simulated host's sticky waker: a flag.
#[derive(Debug, Default)]
pub struct SimWaker(AtomicBool);

impl SimWaker {
    /// Clears the flag, returning whether it was set.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

impl Waker for SimWaker {
    fn wake(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Settings of a simulated host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimConfig {
    /// Initial host monotonic time, ns.
    pub start_mono_ns: i64,
    /// Initial host wall time, ns since the epoch.
    pub start_wall_ns: i64,
    /// The sim backend's re-arm floor, ns.
    pub min_rearm_ns: u64,
    /// The clock group's settings.
    pub clocks: ClocksConfig,
}

impl Default for SimConfig {
    /// Monotonic 0, wall 2023-11-14T22:13:20Z, no floor, default clocks.
    fn default() -> Self {
        SimConfig {
            start_mono_ns: 0,
            start_wall_ns: 1_700_000_000 * NS_PER_SEC,
            min_rearm_ns: 0,
            clocks: ClocksConfig::default(),
        }
    }
}

/// Why a simulated-host call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    /// Another driving call is in progress (another thread, or a callback
    /// calling back into the host).
    Busy,
    /// A negative duration.
    NegativeDuration,
    /// `run_until_idle` made `steps` steps and timers are still armed
    /// (periodic timers never go idle).
    NotIdle {
        /// Steps made.
        steps: u64,
    },
    /// The pass failed (`EDEADLK`: called with the runner token held).
    Pass(Errno),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Busy => write!(f, "the simulated host is being driven already"),
            SimError::NegativeDuration => write!(f, "simulated time cannot go backwards"),
            SimError::NotIdle { steps } => {
                write!(f, "timers still armed after {steps} steps")
            }
            SimError::Pass(e) => write!(f, "simulated pass failed: {e}"),
        }
    }
}

impl std::error::Error for SimError {}

impl From<Errno> for SimError {
    fn from(e: Errno) -> Self {
        SimError::Pass(e)
    }
}

/// The part of the simulated host a driving call owns.
struct Driver {
    core: LoopCore,
    backend: SimBackend,
}

/// A simulated host: three clocks on simulated time, moved by hand.
pub struct SimHost {
    clocks: Clocks,
    time: Arc<SimTime>,
    notifier: Arc<Notifier<SimWaker>>,
    /// Taken out by a driving call (see the module documentation).
    driver: Mutex<Option<Driver>>,
    stats: Arc<StatCounters>,
}

impl fmt::Debug for SimHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHost")
            .field("mono_ns", &self.time.mono_ns())
            .field("wall_ns", &self.time.wall_ns())
            .finish_non_exhaustive()
    }
}

impl SimHost {
    /// A simulated host. `EINVAL` for an invalid clock configuration.
    pub fn new(config: SimConfig) -> Result<SimHost, Errno> {
        let time = Arc::new(SimTime::new(config.start_mono_ns, config.start_wall_ns));
        let clocks = Clocks::new(TimeSource::Sim(time.clone()), config.clocks)?;
        let notifier = Arc::new(Notifier::new(SimWaker::default()));
        clocks.bind(Box::new(notifier.clone()))?;
        let stats = Arc::new(StatCounters::default());
        let mut backend = SimBackend::new(config.min_rearm_ns);
        backend.start().expect("the sim backend always starts");
        let mut driver = Driver {
            core: LoopCore::new(clocks.clone(), stats.clone()),
            backend,
        };
        driver
            .core
            .pass(&mut driver.backend, WakeCause::default(), &notifier)?;
        Ok(SimHost {
            clocks,
            time,
            notifier,
            driver: Mutex::new(Some(driver)),
            stats,
        })
    }

    /// The clocks.
    pub fn clocks(&self) -> &Clocks {
        &self.clocks
    }

    /// Simulated host monotonic time, ns.
    pub fn mono_ns(&self) -> i64 {
        self.time.mono_ns()
    }

    /// Simulated host wall time, ns since the epoch.
    pub fn wall_ns(&self) -> i64 {
        self.time.wall_ns()
    }

    /// The deadline the sim backend is armed with (host-monotonic ns), as
    /// of the last pass. `Busy` while a driving call runs.
    pub fn armed_deadline(&self) -> Result<Option<i64>, SimError> {
        let d = self.driver.lock();
        let d = d.as_ref().ok_or(SimError::Busy)?;
        Ok(d.backend.armed().map(|m| m.0 as i64))
    }

    /// The pass counters.
    pub fn stats(&self) -> LoopStats {
        self.stats.snapshot()
    }

    /// Kicks received from arming threads.
    pub fn kicks(&self) -> u64 {
        self.notifier.kicks()
    }

    fn drive<R>(
        &self,
        f: impl FnOnce(&Self, &mut Driver) -> Result<R, SimError>,
    ) -> Result<R, SimError> {
        let mut d = self.driver.lock().take().ok_or(SimError::Busy)?;
        let r = f(self, &mut d);
        *self.driver.lock() = Some(d);
        r
    }

    /// Handles a pending kick: a pass at the current time.
    fn settle(&self, d: &mut Driver) -> Result<(), SimError> {
        if self.notifier.waker().take() {
            let cause = WakeCause {
                alarm: false,
                notify: true,
            };
            d.core.pass(&mut d.backend, cause, &self.notifier)?;
        }
        Ok(())
    }

    /// Moves time to `at` (not before now), fires the alarm, runs a pass.
    fn fire_at(&self, d: &mut Driver, at: i64) -> Result<i64, SimError> {
        let at = at.max(self.time.mono_ns());
        self.time.set_mono(at);
        d.backend.fire();
        let cause = WakeCause {
            alarm: true,
            notify: false,
        };
        d.core.pass(&mut d.backend, cause, &self.notifier)?;
        Ok(at)
    }

    /// Advances host time by `dt_ns`, stopping at every armed deadline on
    /// the way to run that deadline's timers with the clocks reading exactly
    /// it. Returns the number of alarm firings.
    pub fn advance(&self, dt_ns: i64) -> Result<u64, SimError> {
        if dt_ns < 0 {
            return Err(SimError::NegativeDuration);
        }
        self.drive(|h, d| {
            let target = h.time.mono_ns().saturating_add(dt_ns);
            let mut fired = 0;
            loop {
                h.settle(d)?;
                match d.backend.armed() {
                    Some(at) if at.0 as i64 <= target => {
                        h.fire_at(d, at.0 as i64)?;
                        fired += 1;
                    }
                    _ => break,
                }
            }
            h.time.set_mono(target.max(h.time.mono_ns()));
            Ok(fired)
        })
    }

    /// Handles pending kicks, then jumps to the sim backend's armed
    /// deadline (or stays, if it is past) and runs a pass there. Returns
    /// the new monotonic time, or `None` (time unchanged) when nothing is
    /// armed.
    pub fn step_to_next_deadline(&self) -> Result<Option<i64>, SimError> {
        self.drive(|h, d| {
            h.settle(d)?;
            match d.backend.armed() {
                Some(at) => h.fire_at(d, at.0 as i64).map(Some),
                None => Ok(None),
            }
        })
    }

    /// Steps to the next deadline until nothing is armed, at most
    /// `max_steps` times: a periodic timer never goes idle, so the bound is
    /// required. Returns the steps made, or [`SimError::NotIdle`] when the
    /// bound is reached with timers still armed.
    pub fn run_until_idle(&self, max_steps: u64) -> Result<u64, SimError> {
        self.drive(|h, d| {
            let mut steps = 0;
            loop {
                h.settle(d)?;
                let Some(at) = d.backend.armed() else {
                    return Ok(steps);
                };
                if steps == max_steps {
                    return Err(SimError::NotIdle { steps });
                }
                h.fire_at(d, at.0 as i64)?;
                steps += 1;
            }
        })
    }

    /// Steps the simulated wall clock by `delta_ns` (either sign) without
    /// moving monotonic time, as `clock_settime(CLOCK_REALTIME)` would, and
    /// wakes the host the way a timerfd with cancel-on-set does. The pass
    /// runs on the calling thread: reset notifiers fire if the step is
    /// backwards or forward past the threshold, and WALL timers now due run.
    pub fn step_wall(&self, delta_ns: i64) -> Result<(), SimError> {
        self.drive(|h, d| {
            h.settle(d)?;
            h.time.step_wall(delta_ns);
            d.backend.signal_wall_step();
            let cause = WakeCause {
                alarm: true,
                notify: false,
            };
            d.core.pass(&mut d.backend, cause, &h.notifier)?;
            Ok(())
        })
    }
}

impl Drop for SimHost {
    fn drop(&mut self) {
        self.clocks.unbind();
    }
}
