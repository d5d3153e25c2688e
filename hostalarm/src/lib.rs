//! # hostalarm — emulator clocks, host alarm backends and the timer loop
//!
//! The bottom layer of itimer, modelling QEMU's `qemu-timer.c` the way its
//! later history and its reviewers said it should be:
//!
//! * emulator clocks MONO (host monotonic; QEMU's `rt_clock`), WALL (wall
//!   clock, can step; `host_clock`) and GUEST (guest time; `vm_clock`),
//!   each with an O(log n) list of active timers;
//! * host alarm backends (`timerfd`, `dynticks`, `unix`, `mmtimer`,
//!   `timerqueue`, and `sim` for the simulated host) chosen from a precedence
//!   list like QEMU's `-clock` option;
//! * the timer loop: wait, consume, run expired timers, re-arm.
//!
//! It is usable on its own and knows nothing of the itimer kernel above it:
//! its one itimer dependency is the sync seam below it (`itimer_sync`),
//! from which it takes its locks so that the loom models can check its
//! handshake. `examples/device_timers.rs` drives two
//! device timers of a pretend guest with it
//! (`cargo run -p itimer-hostalarm --example device_timers -- unix`).

//! ## Reading order (each group imports only groups above it; no cycle,
//! which `tests/architecture.rs` in the workspace root checks)
//!
//! | # | modules | concept |
//! |---|---|---|
//! | 1 | [`time`], [`timerlist`] ([`sorted_list`], its reference), [`notify`], [`reset`] | host time and scales; the O(log n) list; the deadline handshake with the host; what a wall-step notifier is told |
//! | 2 | [`clock_state`] | the clock kinds, a clock's table entry, the handle's fields, the runner state, and what each lock guards |
//! | 3 | [`timer`], [`runner`] | arming and deleting a timer; running expired timers (the runner token) |
//! | 4 | [`clock`], [`vclock`] | the public clock handles; GUEST's VM controls |
//! | 5 | [`alarm`] (its contract in `mod.rs`, then `sigwake`, `pacing`, `timerfd`, `dynticks`, `unix`, `hostemu` → `mmtimer`, `timerqueue`, `registry`), [`eventfd`] | host alarm backends; the loop's waker |
//! | 6 | [`step`], [`sim`], [`timer_loop`] | one pass (consume, run, re-arm); the simulated host; the real loop |
//! | 7 | [`host`] | either host, chosen at boot |

pub mod alarm;
pub mod clock;
pub mod clock_state;
pub mod eventfd;
pub mod host;
pub mod notify;
pub mod reset;
pub mod runner;
pub mod sim;
pub mod sorted_list;
pub mod step;
pub mod time;
pub mod timer;
pub mod timer_loop;
pub mod timerlist;
pub mod vclock;

pub use clock::{Clock, ClockType, Clocks, ClocksConfig, NotifierId, WallStep};
pub use host::Host;
pub use sim::{SimConfig, SimError, SimHost};
pub use step::LoopStats;
pub use time::{Scale, TimeSource};
pub use timer::{Timer, TimerHandle};
pub use timer_loop::{LoopError, Started, TimerLoop};
