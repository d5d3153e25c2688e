//! Booting the stack: kernel over clock backends over a host.
//!
//! ```text
//!   itimer_kernel::Subsystem  ── ClockRegistry ──▶ clock_backends (Bases)
//!                                                   │
//!                                  hostalarm Clocks ┘── SimHost | TimerLoop
//! ```
//!
//! [`Kernel::builder`] picks the host alarm precedence and the kernel's
//! limits; [`KernelBuilder::boot`] starts the real timer loop on the first
//! alarm backend that starts, [`KernelBuilder::simulated`] builds the
//! simulated host, where time moves only by hand and every result is exact
//! to the nanosecond.

use std::fmt;
use std::sync::Arc as StdArc;
use std::time::Duration;

use itimer_clock_backends::{Bases, install};
use itimer_hostalarm::alarm::Precedence;
use itimer_hostalarm::host::Host;
use itimer_hostalarm::timer_loop::LoopError;
use itimer_hostalarm::{ClocksConfig, LoopStats, SimConfig, SimError, SimHost};
use itimer_kernel::{ClockRegistry, Credentials, Errno, KernelConfig, Process};

/// Why a kernel did not boot.
#[derive(Debug)]
pub enum BootError {
    /// The alarm precedence list named an unknown backend.
    UnknownAlarm(itimer_hostalarm::alarm::UnknownBackend),
    /// The timer loop could not start (no alarm backend started, or a
    /// host call failed).
    NoAlarm(LoopError),
    /// A setting was invalid.
    Invalid(Errno),
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::UnknownAlarm(e) => write!(f, "{e}"),
            BootError::NoAlarm(e) => write!(f, "{e}"),
            BootError::Invalid(e) => write!(f, "invalid setting: {e}"),
        }
    }
}

impl std::error::Error for BootError {}

impl From<Errno> for BootError {
    fn from(e: Errno) -> Self {
        BootError::Invalid(e)
    }
}

/// Settings for a kernel to boot.
#[derive(Debug, Clone, Default)]
pub struct KernelBuilder {
    alarms: Option<String>,
    config: KernelConfig,
    sim: SimConfig,
}

impl KernelBuilder {
    /// The host alarm precedence, as QEMU's `-clock` list
    /// (`"timerfd,unix"`): the named backends first, in order, the rest
    /// after them as fallbacks.
    pub fn alarms(mut self, list: &str) -> Self {
        self.alarms = Some(list.to_owned());
        self
    }

    /// The most timers a process may have.
    pub fn timer_max(mut self, n: usize) -> Self {
        self.config.timer_max = n;
        self
    }

    /// The whole kernel configuration.
    pub fn config(mut self, config: KernelConfig) -> Self {
        self.config = config;
        self
    }

    /// The simulated host's settings (start times, clock settings).
    pub fn sim_config(mut self, sim: SimConfig) -> Self {
        self.sim = sim;
        self
    }

    /// Boots on the simulated host.
    pub fn simulated(self) -> Result<SimKernel, BootError> {
        let host = Host::sim(self.sim)?;
        let bases = StdArc::new(Bases::new(host.clocks().clone(), 1));
        let kernel = assemble(self.config, &bases)?;
        Ok(SimKernel {
            kernel: Kernel {
                kernel,
                bases,
                host,
            },
        })
    }

    /// Boots on the real host: starts the timer loop on the first alarm
    /// backend of the precedence list that starts.
    pub fn boot(self) -> Result<Kernel, BootError> {
        let precedence = match &self.alarms {
            Some(list) => Precedence::parse(list).map_err(BootError::UnknownAlarm)?,
            None => Precedence::default(),
        };
        let host = Host::real(ClocksConfig::default(), &precedence).map_err(BootError::NoAlarm)?;
        let resolution = real_resolution_ns(&host);
        let bases = StdArc::new(Bases::new(host.clocks().clone(), resolution));
        let kernel = assemble(self.config, &bases)?;
        Ok(Kernel {
            kernel,
            bases,
            host,
        })
    }
}

/// The resolution of the alarm backend a real host started with.
fn real_resolution_ns(host: &Host) -> u64 {
    host.as_real().map_or(1, |l| l.resolution_ns())
}

fn assemble(
    config: KernelConfig,
    bases: &StdArc<Bases>,
) -> Result<itimer_kernel::Subsystem, Errno> {
    if config.timer_max == 0 {
        return Err(Errno::EINVAL);
    }
    let mut registry = ClockRegistry::new();
    install(&mut registry, bases)?;
    Ok(itimer_kernel::Subsystem::new(config, registry))
}

/// A booted kernel: processes are spawned here; syscalls are methods on
/// the [`Process`].
pub struct Kernel {
    kernel: itimer_kernel::Subsystem,
    bases: StdArc<Bases>,
    host: Host,
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel")
            .field("alarm", &self.alarm_backend())
            .finish_non_exhaustive()
    }
}

impl Kernel {
    /// Settings for a kernel to boot.
    pub fn builder() -> KernelBuilder {
        KernelBuilder::default()
    }

    /// A kernel on the simulated host with default settings.
    pub fn simulated() -> SimKernel {
        KernelBuilder::default()
            .simulated()
            .expect("the default simulated configuration is valid")
    }

    /// Starts a process with one LWP and no timers.
    pub fn spawn_process(&self, cred: Credentials) -> Process {
        self.kernel.spawn_process(cred)
    }

    /// The kernel underneath (registry, configuration, process list).
    pub fn inner(&self) -> &itimer_kernel::Subsystem {
        &self.kernel
    }

    /// The name of the host alarm backend driving the timers.
    pub fn alarm_backend(&self) -> &'static str {
        match &self.host {
            Host::Sim(_) => "sim",
            Host::Real(l) => l.backend_name(),
        }
    }

    /// The timer loop's counters (wakeups, spurious wakeups, re-arms).
    pub fn loop_stats(&self) -> LoopStats {
        self.host.stats()
    }

    /// The host the clocks run on.
    pub fn host_kind(&self) -> &Host {
        &self.host
    }

    /// Stops the VM: `CLOCK_VM` freezes, and so do its timers' remaining
    /// times.
    pub fn vm_stop(&self) {
        self.host.clocks().vm_stop();
    }

    /// Resumes the VM.
    pub fn vm_start(&self) {
        self.host.clocks().vm_start();
    }

    /// Whether the VM runs (`CLOCK_VM` advances with host time).
    pub fn vm_running(&self) -> bool {
        self.host.clocks().vm_running()
    }

    /// Jumps `CLOCK_VM` forward by `dt`, whether the VM runs or not, like
    /// QEMU's icount warp. VM timers that come due expire **late**, at the
    /// warped time, as after any late wakeup: a periodic timer counts the
    /// periods jumped over as overruns. Host time does not move.
    ///
    /// On the simulated host the due timers have run when this returns
    /// (see [`Kernel::vm_warp_ns`]). Errors: `EOVERFLOW` if `dt` does not
    /// fit in `i64` nanoseconds; otherwise as [`Kernel::vm_warp_ns`].
    pub fn vm_warp(&self, dt: Duration) -> Result<(), Errno> {
        self.vm_warp_ns(duration_ns(dt)?)
    }

    /// [`Kernel::vm_warp`] by `dt_ns` nanoseconds.
    ///
    /// Errors: `EINVAL` for a negative `dt_ns` (guest time never goes
    /// back); `EOVERFLOW` (nothing changes) if `CLOCK_VM` would pass
    /// `i64::MAX` ns; on the simulated host, the error of the pass that runs the
    /// due timers (`EDEADLK`: called with the host's runner token held).
    /// On the simulated host, called while a driving call is in progress
    /// (from a SIGEV_THREAD callback, or another thread), the warp is done
    /// and the driving call runs the due timers at its next pass.
    pub fn vm_warp_ns(&self, dt_ns: i64) -> Result<(), Errno> {
        self.host.clocks().vm_warp(dt_ns)?;
        self.sim_pass()
    }

    /// Advances a **stopped** VM's clock by `dt`, on the calling thread:
    /// `CLOCK_VM` is set to each due VM timer's deadline in turn and that
    /// deadline's timers expire there, exactly on time, so a periodic
    /// timer expires once per period, with no overrun from the step
    /// itself. `CLOCK_VM` ends `dt` later; host time does not move, and
    /// no other clock's timer runs. If a timer's notification resumes the
    /// VM, the step ends there.
    ///
    /// Errors: `EOVERFLOW` if `dt` does not fit in `i64` nanoseconds;
    /// otherwise as [`Kernel::vm_step_ns`].
    pub fn vm_step(&self, dt: Duration) -> Result<(), Errno> {
        self.vm_step_ns(duration_ns(dt)?)
    }

    /// [`Kernel::vm_step`] by `dt_ns` nanoseconds.
    ///
    /// Errors: `EINVAL` for a negative `dt_ns`; `EBUSY` if the VM runs
    /// (stop it first: a running VM's clock already advances);
    /// `EOVERFLOW` (nothing changes) if `CLOCK_VM` would pass `i64::MAX` ns;
    /// `EDEADLK` when called from a host timer callback. Waits while
    /// another thread is running timers.
    pub fn vm_step_ns(&self, dt_ns: i64) -> Result<(), Errno> {
        self.host.clocks().vm_step(dt_ns)?;
        self.sim_pass()
    }

    /// On the simulated host, the pass a real timer loop would make when
    /// woken by a clock change: runs the timers now due and re-arms the
    /// host alarm. Nothing to do on the real host, whose loop is woken.
    /// A driving call in progress (`Busy`) makes that pass itself, at the
    /// latest at its next one.
    fn sim_pass(&self) -> Result<(), Errno> {
        let Some(sim) = self.host.as_sim() else {
            return Ok(());
        };
        match sim.advance(0) {
            Ok(_) | Err(SimError::Busy) => Ok(()),
            Err(SimError::Pass(e)) => Err(e),
            // `advance(0)` neither goes backwards nor counts steps.
            Err(SimError::NegativeDuration | SimError::NotIdle { .. }) => Err(Errno::EINVAL),
        }
    }

    /// The resolution with which timers really fire, ns.
    pub fn resolution_ns(&self) -> u64 {
        self.bases.resolution_ns()
    }
}

/// A kernel on the simulated host. Dereferences to [`Kernel`]; adds the
/// hands that move time.
pub struct SimKernel {
    kernel: Kernel,
}

impl fmt::Debug for SimKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimKernel")
            .field("mono_ns", &self.host().mono_ns())
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for SimKernel {
    type Target = Kernel;
    fn deref(&self) -> &Kernel {
        &self.kernel
    }
}

fn ns(d: Duration) -> Result<i64, SimError> {
    duration_ns(d).map_err(SimError::Pass)
}

/// `d` in nanoseconds; `EOVERFLOW` beyond `i64`.
fn duration_ns(d: Duration) -> Result<i64, Errno> {
    i64::try_from(d.as_nanos()).map_err(|_| Errno::EOVERFLOW)
}

impl SimKernel {
    /// The simulated host.
    pub fn host(&self) -> &SimHost {
        self.kernel
            .host
            .as_sim()
            .expect("a SimKernel is only built on the simulated host")
    }

    /// Moves time forward by `dt`, running every timer at its exact
    /// deadline on the way. Returns the alarm firings.
    pub fn advance(&self, dt: Duration) -> Result<u64, SimError> {
        self.host().advance(ns(dt)?)
    }

    /// Moves time forward by `dt_ns` nanoseconds.
    pub fn advance_ns(&self, dt_ns: i64) -> Result<u64, SimError> {
        self.host().advance(dt_ns)
    }

    /// Runs what is due now (after a clock step or an arming in the past)
    /// without moving time.
    pub fn settle(&self) -> Result<u64, SimError> {
        self.host().advance(0)
    }

    /// Jumps to the next armed deadline and runs its timers; `None` when
    /// nothing is armed. Returns the new host-monotonic time, ns.
    pub fn step_to_next_deadline(&self) -> Result<Option<i64>, SimError> {
        self.host().step_to_next_deadline()
    }

    /// Steps until nothing is armed, at most `max_steps` times.
    pub fn run_until_idle(&self, max_steps: u64) -> Result<u64, SimError> {
        self.host().run_until_idle(max_steps)
    }

    /// Host monotonic time, ns.
    pub fn mono_ns(&self) -> i64 {
        self.host().mono_ns()
    }

    /// Steps the host's wall clock (not the model's) by `delta_ns`.
    pub fn step_host_wall(&self, delta_ns: i64) -> Result<(), SimError> {
        self.host().step_wall(delta_ns)
    }
}
