//! # itimer — a POSIX per-process interval-timer subsystem
//!
//! The facade crate: it boots the stack (kernel over clock backends over
//! host alarms) and re-exports the typed and raw syscall layers.

pub use itimer_hostalarm as hostalarm;
pub use itimer_kernel as kernel;
