//! loom models of the itimer lock protocols. See `README.md` in this folder
//! and `docs/loom.md` for what each model proves and how to run them.
//!
//! * `models` (under `--cfg loom` only): the models themselves, each a
//!   function run once per interleaving; `tests/models.rs` explores them
//!   against the kernel, `tests/broken.rs` against deliberately broken
//!   variants of it;
//! * [`probe`]: a model-only clock backend that lets a model thread fire a
//!   timer through the kernel's own `Fire` and trips on any use of a
//!   deleted timer;
//! * `harness` (under `--cfg loom` only): runs a model with the bound and
//!   thread limit of the suite and counts the interleavings explored;
//! * [`boot`]: a kernel on the probe clock.
//!
//! Everything the kernel does under a model goes through
//! `itimer_kernel::sync`, which `--cfg loom` switches to loom's primitives:
//! the models drive the real kernel code, not a copy of it.

#[cfg(loom)]
pub mod harness;
#[cfg(loom)]
pub mod models;
pub mod probe;

use std::sync::Arc as StdArc;

use itimer_kernel::abi::{CLOCK_HIGHRES, CLOCK_REALTIME};
use itimer_kernel::{ClockRegistry, KernelConfig, Subsystem};

use probe::ProbeClock;

/// Boots a kernel whose `CLOCK_REALTIME` and `CLOCK_HIGHRES` are one probe
/// clock, with at most `timer_max` timers per process.
pub fn boot(timer_max: usize) -> (Subsystem, StdArc<ProbeClock>) {
    let clock = StdArc::new(ProbeClock::new());
    let mut reg = ClockRegistry::new();
    for id in [CLOCK_REALTIME, CLOCK_HIGHRES] {
        reg.clock_add_backend(id, clock.clone())
            .expect("the probe's clock ids are in range");
    }
    // From the default, so that settings the kernel grows keep theirs.
    #[allow(clippy::needless_update)]
    let config = KernelConfig {
        timer_max,
        ..KernelConfig::default()
    };
    (Subsystem::new(config, reg), clock)
}
