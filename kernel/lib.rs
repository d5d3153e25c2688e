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
//! ## Modules, top to bottom
//!
//! | module | concept |
//! |---|---|
//! | [`typed`] / [`raw`] | the two faces of the syscalls |
//! | [`notify_thread`] | `SIGEV_THREAD`: the model's libc, a private port and a notification thread |
//! | [`itimer`] | timer_create/settime/gettime/getoverrun/delete, `timer_fire`, the consumption callbacks `timer_signal` and `timer_port_callback`, `timer_close_port` |
//! | [`lock`] | the `ITLK_LOCKED` / `ITLK_REMOVE` protocol |
//! | [`table`] | the per-process timer table and its growth |
//! | [`backend`] | the clock-backend contract and registry, `clock_*` |
//! | [`sigqueue`] / [`signal`] | the signal queue, dispositions (default, ignore, handler), the mask, `sigtimedwait` |
//! | [`delivery`] | the delivery thread running signal handlers (illumos `psig`) |
//! | [`port`] | event ports: the queue and its slots, `port_getn`, alert mode, the cached timer event |
//! | [`callout`] | timeouts without timed waits |
//! | [`service`] | the threads the kernel spawns: counted, joined at exit |
//! | [`process`] / [`kernel`] | processes, LWPs, exit; the process and port tables |
//! | [`abi`] / [`time`] | ABI numbers and structures; validated times |
//!
//! ## Lock order (whole crate)
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
pub mod table;
pub mod time;
pub mod typed;

/// The sync seam (the `itimer-sync` crate), re-exported so that kernel code
/// and the loom models say `sync::Mutex` wherever they take a lock.
pub use itimer_sync as sync;

pub use backend::{BackendTimer, ClockBackend, ClockRegistry, Fire, SettimeFlags, TimerCreate};
pub use kernel::{Kernel, KernelConfig};
pub use nix::errno::Errno;
pub use notify_thread::{ThreadCallback, ThreadNotify};
pub use process::{Credentials, LwpId, Pid, ProcStats, Process, TimerStatus};
pub use sigqueue::{Disposition, SigHandler, SigSet};
pub use time::{ItimerSpecNs, Nsec};
pub use typed::{AlertMode, Arm, ClockId, ItimerSpec, PortEvents, PortId, SigEvent, TimerId};
