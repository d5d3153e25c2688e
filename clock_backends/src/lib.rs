//! # itimer-clock-backends — illumos clock backends on emulator clocks
//!
//! The middle layer: each module implements the kernel's
//! [`ClockBackend`](itimer_kernel::ClockBackend) contract for one model
//! clock, on top of hostalarm's emulator clocks.
//!
//! | clock id | module | runs on |
//! |---|---|---|
//! | `CLOCK_REALTIME` (3, alias 0) | [`realtime`] | relative: host monotonic; absolute: model wall clock |
//! | `CLOCK_HIGHRES` / `CLOCK_MONOTONIC` (4) | [`highres`] | host monotonic, 200 µs guard |
//! | `CLOCK_VM` (16, ours) | [`vm`] | guest time (VIRTUAL) |
//! | `CLOCK_VIRTUAL` (1), `CLOCK_THREAD_CPUTIME_ID` (2), `CLOCK_PROCESS_CPUTIME_ID` (5) | [`cputime`] | host CPU time; no timers |
//!
//! [`emu_timer`] is the one timer implementation they share; [`bases`]
//! maps model clocks onto emulator clocks. [`install`] registers them all.

use std::sync::Arc as StdArc;

use nix::errno::Errno;

use itimer_kernel::ClockRegistry;
use itimer_kernel::abi::{CLOCK_HIGHRES, CLOCK_REALTIME, CLOCK_REALTIME0, CLOCK_VM};

pub mod bases;
pub mod cputime;
pub mod emu_timer;
pub mod highres;
pub mod realtime;
pub mod vm;

pub use bases::{Base, Bases};

/// Registers every backend: REALTIME (3 and 0), HIGHRES (4), the VM clock,
/// and the three CPU-time clocks.
pub fn install(registry: &mut ClockRegistry, bases: &StdArc<Bases>) -> Result<(), Errno> {
    let realtime = StdArc::new(realtime::RealtimeBackend::new(bases.clone()));
    registry.clock_add_backend(CLOCK_REALTIME, realtime.clone())?;
    registry.clock_add_backend(CLOCK_REALTIME0, realtime)?;
    registry.clock_add_backend(
        CLOCK_HIGHRES,
        StdArc::new(highres::HighresBackend::new(bases.clone())),
    )?;
    registry.clock_add_backend(CLOCK_VM, StdArc::new(vm::VmBackend::new(bases.clone())))?;
    for c in [
        cputime::CpuClock::ThreadUser,
        cputime::CpuClock::Thread,
        cputime::CpuClock::Process,
    ] {
        registry.clock_add_backend(c.clock_id(), StdArc::new(cputime::CpuTimeBackend::new(c)))?;
    }
    Ok(())
}
