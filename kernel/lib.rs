//! # itimer-kernel — the illumos `timer.c` layer
//!
//! A per-process table of POSIX interval timers, modelled on illumos
//! `usr/src/uts/common/os/timer.c`, with its lock protocol, its registry of
//! per-clock backends, its overrun accounting and its notification by
//! queued signal (and, with [`port`], by event port).
//!
//! The kernel knows nothing of how time is kept: every clock is a
//! [`backend::ClockBackend`] registered at boot (the facade crate wires the
//! real ones from `clock_backends`; the kernel's tests use
//! `manual_clock`).
//!
//! ## Modules, top to bottom
//!
//! | module | concept |
//! |---|---|
//! | [`typed`] / [`raw`] | the two faces of the syscalls |
//! | [`itimer`] | timer_create/settime/gettime/getoverrun/delete, `timer_fire`, `timer_signal` |
//! | [`lock`] | the `ITLK_LOCKED` / `ITLK_REMOVE` protocol |
//! | [`table`] | the per-process timer table and its growth |
//! | [`backend`] | the clock-backend contract and registry, `clock_*` |
//! | [`sigqueue`] / [`signal`] | the signal queue, dispositions, `sigtimedwait` |
//! | [`port`] | event ports |
//! | [`callout`] | timeouts without timed waits |
//! | [`process`] / [`kernel`] | processes, LWPs, exit; the process table |
//! | [`abi`] / [`time`] | ABI numbers and structures; validated times |
//! | [`sync`] | the one place naming parking_lot or loom |
//!
//! ## Lock order (whole crate)
//!
//! backend per-timer lock → `p_lock` → `it_mutex` → port queue lock. The
//! kernel's process-table lock is never held with any of them.
#![forbid(unsafe_code)]

pub mod abi;
pub mod backend;
pub mod callout;
pub mod itimer;
pub mod kernel;
pub mod lock;
#[cfg(any(test, feature = "manual-clock"))]
pub mod manual_clock;
pub mod notify_thread;
pub mod port;
pub mod process;
pub mod raw;
pub mod service;
pub mod signal;
pub mod sigqueue;
pub mod sync;
pub mod table;
pub mod time;
pub mod typed;

pub use backend::{BackendTimer, ClockBackend, ClockRegistry, Fire, SettimeFlags, TimerCreate};
pub use kernel::{Kernel, KernelConfig};
pub use nix::errno::Errno;
pub use notify_thread::{ThreadCallback, ThreadNotify};
pub use process::{Credentials, LwpId, Pid, ProcStats, Process, TimerStatus};
pub use sigqueue::{Disposition, SigSet};
pub use time::{ItimerSpecNs, Nsec};
pub use typed::{AlertMode, Arm, ClockId, ItimerSpec, PortEvents, PortId, SigEvent, TimerId};
