//! A host for a clock group: simulated or real.
//!
//! The layer above builds on [`Host`] so the same code runs on the simulated
//! host in tests (time moved by hand, exact to the nanosecond) and on the
//! real timer loop in production. No state of its own; no lock.

use nix::errno::Errno;

use crate::alarm::Precedence;
use crate::clock::{Clocks, ClocksConfig};
use crate::sim::{SimConfig, SimHost};
use crate::step::LoopStats;
use crate::time::TimeSource;
use crate::timer_loop::{LoopError, TimerLoop};

/// Either host.
#[derive(Debug)]
pub enum Host {
    /// Simulated time, moved by hand.
    Sim(SimHost),
    /// The real timer loop on a host alarm backend.
    Real(TimerLoop),
}

impl Host {
    /// A simulated host.
    pub fn sim(config: SimConfig) -> Result<Host, Errno> {
        SimHost::new(config).map(Host::Sim)
    }

    /// Real clocks driven by the first backend of `precedence` that starts.
    pub fn real(config: ClocksConfig, precedence: &Precedence) -> Result<Host, LoopError> {
        let clocks = Clocks::new(TimeSource::Real, config).map_err(LoopError::Host)?;
        TimerLoop::start(&clocks, precedence).map(Host::Real)
    }

    /// The clocks.
    pub fn clocks(&self) -> &Clocks {
        match self {
            Host::Sim(s) => s.clocks(),
            Host::Real(l) => l.clocks(),
        }
    }

    /// The simulated host, if this is one.
    pub fn as_sim(&self) -> Option<&SimHost> {
        match self {
            Host::Sim(s) => Some(s),
            Host::Real(_) => None,
        }
    }

    /// The real loop, if this is one.
    pub fn as_real(&self) -> Option<&TimerLoop> {
        match self {
            Host::Sim(_) => None,
            Host::Real(l) => Some(l),
        }
    }

    /// The pass counters.
    pub fn stats(&self) -> LoopStats {
        match self {
            Host::Sim(s) => s.stats(),
            Host::Real(l) => l.stats(),
        }
    }
}
