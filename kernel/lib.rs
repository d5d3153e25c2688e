//! # itimer-kernel — the illumos `timer.c` layer
//!
//! A per-process table of POSIX interval timers, modelled on illumos
//! `usr/src/uts/common/os/timer.c`, with its lock protocol, its registry of
//! per-clock backends, its overrun accounting, and its three ways of
//! notifying an expiration: a queued signal (taken by `sigtimedwait` or
//! run by a handler on the process's delivery thread, [`delivery`]), an
//! event on an event port ([`port`], `SIGEV_PORT`), or a callback on the
//! process's notification thread ([`notify_thread`], `SIGEV_THREAD`, built
//! on a port as illumos libc builds it).
//!
//! The kernel knows nothing of how time is kept: every clock is a
//! [`backend::ClockBackend`] registered at boot (the facade crate wires the
//! real ones from `clock_backends`; the kernel's tests use
//! `manual_clock`).
//!
//! ## Reading order (the imports' order: each group names only groups above it)
//!
//! | # | module | concept |
//! |---|---|---|
//! | 1 | [`abi`] / [`ids`] / [`time`] / [`sync`] | ABI numbers and structures; pids, LWP ids, credentials, timer and port ids; validated times; the sync seam (`itimer-sync`) |
//! | 2 | [`backend`] / [`callout`] / [`service`] | the clock-backend contract and registry, `clock_*`; timeouts without timed waits; the threads the kernel spawns, counted |
//! | 3 | [`port::queue`] / [`port::table`] / [`shared`] | one port's event queue (it reaches a timer only through the callback the association carries); the kernel's port table; what the kernel and every process share |
//! | 4 | the core, which illumos also ties together: [`proc`] (`proc_t`, `p_lock`), [`table`] (the timer table and its growth), [`itimer`] (timer_create/settime/gettime/getoverrun/delete, `timer_fire`, the consumption callbacks), [`lock`] (`ITLK_LOCKED` / `ITLK_REMOVE`), [`sigqueue`] (the signal queue; a timer's entry carries its consumption callback, illumos `sq_func`), [`port`] (the port syscalls, `port_getn`, alert mode), [`notify_thread`] (`SIGEV_THREAD`: the model's libc on a private port) | |
//! | 5 | [`delivery`] / [`signal`] | the delivery thread running handlers (illumos `psig`); dispositions, the mask, `sigtimedwait` |
//! | 6 | [`process`] / [`subsystem`] | the process handle's operations (LWPs, status, exit); [`Subsystem`], the booted subsystem's handle (boot, spawn; the facade's `itimer::Kernel` wraps it) |
//! | 7 | [`typed`] / [`raw`] | the two faces of the syscalls |
//!
//! `tests/architecture.rs` (in the workspace root) checks that the core
//! (group 4) is the only import cycle and holds at most seven modules.
//!
//! ## Lock order (whole crate; the one statement, which every module links to)
//!
//! libc's SIGEV_THREAD service lock → backend per-timer lock → `p_lock` →
//! `it_mutex` → port queue lock. The kernel's process-table and port-table
//! locks are leaves, never held with any other. User callbacks and signal
//! handlers run with no lock held.
#![forbid(unsafe_code)]
// Module docs name the private types that hold each lock and state on
// purpose: they are written for readers of the source. `cargo doc
// --document-private-items` (as CI runs it) renders those links.
#![allow(rustdoc::private_intra_doc_links)]

pub mod abi;
pub mod backend;
pub mod callout;
pub mod delivery;
pub mod ids;
pub mod itimer;
pub mod lock;
#[cfg(any(test, feature = "manual-clock"))]
pub mod manual_clock;
pub mod notify_thread;
pub mod port;

pub mod proc;
pub mod process;
pub mod raw;
pub mod service;
pub mod shared;
pub mod signal;
pub mod sigqueue;
pub mod subsystem;
pub mod table;
pub mod time;
pub mod typed;

/// The sync seam (the `itimer-sync` crate), re-exported so that kernel code
/// and the loom models say `sync::Mutex` wherever they take a lock.
pub use itimer_sync as sync;

pub use backend::{BackendTimer, ClockBackend, ClockRegistry, Fire, SettimeFlags, TimerCreate};
pub use nix::errno::Errno;
pub use notify_thread::{ThreadCallback, ThreadNotify};
pub use process::{Credentials, LwpId, Pid, ProcStats, Process, TimerStatus};
pub use shared::KernelConfig;
pub use sigqueue::{Disposition, SigHandler, SigSet};
pub use subsystem::Subsystem;
pub use time::{ItimerSpecNs, Nsec};
pub use typed::{AlertMode, Arm, ClockId, ItimerSpec, PortEvents, PortId, SigEvent, TimerId};
