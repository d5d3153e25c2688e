//! Time bases: how a model clock maps onto an emulator clock.
//!
//! Every model clock reads, and arms its timers on, one of hostalarm's
//! emulator clocks:
//!
//! | base | model clock | emulator clock | model time = |
//! |---|---|---|---|
//! | [`Base::Mono`] | HIGHRES, relative REALTIME timers | REALTIME (host monotonic) | emulator time |
//! | [`Base::Wall`] | REALTIME reads, absolute REALTIME timers | HOST (host wall) | emulator time + offset |
//! | [`Base::Vm`] | the VM clock | VIRTUAL (guest) | emulator time |
//!
//! The wall offset is what `clock_settime(CLOCK_REALTIME)` changes: the
//! model's wall clock is the host's plus an offset, and the host's own
//! clock is never touched.
//!
//! # Locks
//!
//! `offset` is a leaf lock: nothing is taken while it is held. It is read
//! by timers with their own state lock held (state → offset).

use itimer_hostalarm::{ClockType, Clocks};
use itimer_kernel::sync::Mutex;

/// One of the three time bases (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Base {
    /// Host monotonic time.
    Mono,
    /// The model's wall clock: host wall time plus the model's offset.
    Wall,
    /// Guest time, stopped with the VM.
    Vm,
}

impl Base {
    /// The emulator clock a timer in this base is armed on.
    pub fn emu_clock(self) -> ClockType {
        match self {
            Base::Mono => ClockType::Mono,
            Base::Wall => ClockType::Wall,
            Base::Vm => ClockType::Guest,
        }
    }
}

/// The emulator clocks plus the model's wall offset, shared by every
/// backend of one booted kernel.
#[derive(Debug)]
pub struct Bases {
    clocks: Clocks,
    /// Model wall time minus host wall time, ns. Leaf lock.
    offset: Mutex<i64>,
    /// The granularity with which timers really fire (the host alarm's
    /// resolution; 1 on the simulated host), ns.
    resolution_ns: u64,
}

impl Bases {
    /// Bases over `clocks`, whose host alarm fires with `resolution_ns`
    /// granularity.
    pub fn new(clocks: Clocks, resolution_ns: u64) -> Bases {
        Bases {
            clocks,
            offset: Mutex::new(0),
            resolution_ns: resolution_ns.max(1),
        }
    }

    /// The emulator clocks.
    pub fn clocks(&self) -> &Clocks {
        &self.clocks
    }

    /// The timer resolution, ns.
    pub fn resolution_ns(&self) -> u64 {
        self.resolution_ns
    }

    /// Model time on `base`, ns.
    pub fn now(&self, base: Base) -> i64 {
        let emu = self.clocks.now(base.emu_clock());
        match base {
            Base::Wall => emu.saturating_add(*self.offset.lock()),
            Base::Mono | Base::Vm => emu,
        }
    }

    /// Converts model time on `base` to its emulator clock's time.
    pub fn to_emu(&self, base: Base, model_ns: i64) -> i64 {
        match base {
            Base::Wall => model_ns.saturating_sub(*self.offset.lock()),
            Base::Mono | Base::Vm => model_ns,
        }
    }

    /// Makes the model's wall clock read `model_now_ns` from now on.
    pub fn set_wall(&self, model_now_ns: i64) {
        let host = self.clocks.now(ClockType::Wall);
        *self.offset.lock() = model_now_ns.saturating_sub(host);
    }
}
