//! What the models share: booting, spawning, and reading the signal queue.

use std::time::Duration;

use itimer_kernel::abi::{SI_TIMER, SIGALRM, Siginfo};
use itimer_kernel::sync::{Arc, thread};
use itimer_kernel::{ClockId, Credentials, Errno, Process, SigEvent, SigSet, TimerId};

pub use crate::boot;

/// A process shared by the model's threads.
pub type Proc = Arc<Process>;

/// An unprivileged process on `kernel`, shareable between model threads.
pub fn spawn_process(kernel: &itimer_kernel::Subsystem) -> Proc {
    Arc::new(kernel.spawn_process(Credentials::user(1000)))
}

/// A `SIGEV_NONE` timer on the probe clock.
pub fn quiet_timer(p: &Process) -> TimerId {
    p.timer_create(ClockId::HIGHRES, Some(SigEvent::None))
        .expect("the table has room")
}

/// The `si_value` of the signal timers the models make.
pub const SIGVAL: u64 = 7;

/// A `SIGEV_SIGNAL` (SIGALRM, value [`SIGVAL`]) timer on the probe clock.
pub fn signal_timer(p: &Process) -> TimerId {
    p.timer_create(
        ClockId::HIGHRES,
        Some(SigEvent::Signal {
            signo: SIGALRM,
            value: SIGVAL,
        }),
    )
    .expect("the table has room")
}

/// SIGALRM's number, for `SigSet::contains`.
pub const ALRM: i32 = SIGALRM;

/// One millisecond: the settings the models install (time is data here).
pub const MS: Duration = Duration::from_millis(1);

/// SIGALRM alone.
pub fn alrm() -> SigSet {
    SigSet::of(SIGALRM).expect("SIGALRM is a signal")
}

/// Polls for SIGALRM (`sigtimedwait` with a zero timeout: never blocks,
/// arms no callout). `None` when nothing is queued.
pub fn poll_alrm(p: &Process) -> Option<Siginfo> {
    match p.sigtimedwait(alrm(), Some(Duration::ZERO)) {
        Ok(info) => Some(info),
        Err(Errno::EAGAIN) => None,
        Err(e) => panic!("sigtimedwait on a live process: {e}"),
    }
}

/// Checks that `info` is timer `t`'s notification and returns the
/// expirations it accounts for (`1 + si_overrun`).
pub fn expirations_in(info: &Siginfo, t: TimerId) -> u64 {
    assert_eq!(info.si_signo, SIGALRM);
    assert_eq!(info.si_code, SI_TIMER);
    assert_eq!(info.si_timerid, t.0);
    assert_eq!(info.si_value, SIGVAL);
    assert!(info.si_overrun >= 0, "overrun {} < 0", info.si_overrun);
    1 + info.si_overrun as u64
}

/// Spawns a model thread running `f` on a clone of `p`.
pub fn on<T, F>(p: &Proc, f: F) -> thread::JoinHandle<T>
where
    T: Send + 'static,
    F: FnOnce(&Process) -> T + Send + 'static,
{
    let p = p.clone();
    thread::spawn(move || f(&p))
}
