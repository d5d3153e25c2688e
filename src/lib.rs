//! # itimer — a POSIX per-process interval-timer subsystem
//!
//! The facade crate: it boots the stack (the illumos-style kernel over
//! clock backends over QEMU-style emulator clocks and host alarms) and
//! re-exports the typed and raw syscall layers.
//!
//! ```
//! use std::time::Duration;
//! use itimer::{Arm, ClockId, Credentials, ItimerSpec, Kernel, SigSet, abi};
//!
//! let k = Kernel::simulated();
//! let p = k.spawn_process(Credentials::user(1000));
//! let t = p.timer_create(ClockId::HIGHRES, None).unwrap();
//! p.timer_settime(t, Arm::Relative, ItimerSpec::one_shot(Duration::from_millis(5))).unwrap();
//! k.advance(Duration::from_millis(5)).unwrap();
//! let info = p.sigtimedwait(SigSet::of(abi::SIGALRM).unwrap(), Some(Duration::ZERO)).unwrap();
//! assert_eq!(info.si_timerid, t.0);
//! ```

pub mod boot;
pub mod script;

pub use boot::{BootError, Kernel, KernelBuilder, SimKernel};
pub use itimer_clock_backends as clock_backends;
pub use itimer_hostalarm as hostalarm;
pub use itimer_kernel as kernel;
pub use itimer_kernel::{
    AlertMode, Arm, ClockId, Credentials, Disposition, Errno, ItimerSpec, KernelConfig, LwpId, Pid,
    PortEvents, PortId, Process, SigEvent, SigHandler, SigSet, ThreadCallback, ThreadNotify,
    TimerId, abi,
};
