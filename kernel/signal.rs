//! The signal syscalls: `sigtimedwait`, `sigwaitinfo`, `sigpending`,
//! `sigprocmask`, `sigaction` (default, ignore, or a handler).
//!
//! Waiters sleep on `p_sigcv` with `p_lock`; `timer_fire` notifies it after
//! queueing, and so do `sigprocmask` (a signal may have become deliverable)
//! and `sigaction` installing a handler, for the delivery thread
//! ([`crate::delivery`]), which the first handler starts. A timeout is a
//! [`Callout`] (no timed wait): its expiry sets the waiter's flag and
//! notifies under `p_lock`, so a waiter that checked the flag while
//! holding `p_lock` cannot miss the wakeup. Exit wakes waiters, which
//! return `EINTR`.

use nix::errno::Errno;

use crate::abi::Siginfo;
use crate::callout::Callout;
use crate::delivery::ensure_delivery;
use crate::proc::ProcShared;
use crate::sigqueue::{Disposition, SigSet, Taken, check_settable};
use crate::sync::Arc;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::time::Nsec;

/// `sigprocmask`'s `how`: add to the mask (illumos `SIG_BLOCK`).
pub const SIG_BLOCK: i32 = 1;
/// `sigprocmask`'s `how`: remove from the mask (illumos `SIG_UNBLOCK`).
pub const SIG_UNBLOCK: i32 = 2;
/// `sigprocmask`'s `how`: replace the mask (illumos `SIG_SETMASK`).
pub const SIG_SETMASK: i32 = 3;

fn complete_all(taken: Vec<Taken>) {
    for t in taken {
        let _ = t.complete();
    }
}

/// `sigtimedwait`: takes the lowest queued signal in `set` (oldest first),
/// waiting up to `timeout` (`None`: forever; zero: poll). `EAGAIN` on
/// timeout, `EINTR` when the process exits while waiting, `ESRCH` after.
pub(crate) fn sigtimedwait(
    p: &Arc<ProcShared>,
    set: SigSet,
    timeout: Option<Nsec>,
) -> Result<Siginfo, Errno> {
    {
        let mut st = p.lock_live()?;
        if let Some(t) = st.sig.take(set) {
            return Ok(t.complete());
        }
        if timeout == Some(Nsec::ZERO) {
            return Err(Errno::EAGAIN);
        }
    }
    let expired = Arc::new(AtomicBool::new(false));
    // Declared before the p_lock guard so it is dropped after it: a
    // callout is never deleted with p_lock held.
    let _callout = match timeout {
        Some(t) => {
            let (waker, flag) = (p.clone(), expired.clone());
            Some(Callout::arm(&p.kernel.registry, p.pid, t, move || {
                flag.store(true, Ordering::SeqCst);
                let _st = waker.p_lock.lock();
                waker.p_sigcv.notify_all();
            })?)
        }
        None => None,
    };
    let mut st = p.p_lock.lock();
    loop {
        if st.exited {
            return Err(Errno::EINTR);
        }
        if let Some(t) = st.sig.take(set) {
            return Ok(t.complete());
        }
        if expired.load(Ordering::SeqCst) {
            return Err(Errno::EAGAIN);
        }
        st = p.p_sigcv.wait(st);
    }
}

/// `sigpending` (POSIX's name): the signals with something queued.
pub(crate) fn sigpending(p: &ProcShared) -> Result<SigSet, Errno> {
    Ok(p.lock_live()?.sig.queued())
}

/// `sigprocmask`: changes the blocked mask as `how` says (`EINVAL` for an
/// unknown `how`); returns the old mask. Unblocked signals that are caught
/// go to the delivery thread; ignored ones are discarded.
pub(crate) fn sigprocmask(p: &ProcShared, how: i32, set: Option<SigSet>) -> Result<SigSet, Errno> {
    let mut st = p.lock_live()?;
    let old = st.sig.blocked();
    let Some(set) = set else {
        return Ok(old);
    };
    let new = match how {
        SIG_BLOCK => SigSet(old.0 | set.0),
        SIG_UNBLOCK => SigSet(old.0 & !set.0),
        SIG_SETMASK => set,
        _ => return Err(Errno::EINVAL),
    };
    complete_all(st.sig.set_blocked(new));
    p.p_sigcv.notify_all();
    Ok(old)
}

/// `sigaction`: sets the disposition, returns the old one. `EINVAL` for a
/// bad signal number or for SIGKILL / SIGSTOP; `EAGAIN` if the first
/// handler's delivery thread cannot be started (nothing changes then).
/// Installing a handler delivers what is queued for it (if not blocked).
pub(crate) fn sigaction(
    p: &Arc<ProcShared>,
    signo: i32,
    disp: Disposition,
) -> Result<Disposition, Errno> {
    let mut st = p.lock_live()?;
    let catches = matches!(disp, Disposition::Handler(_));
    if catches {
        check_settable(signo)?;
        ensure_delivery(p, &mut st)?;
    }
    let (old, discarded) = st.sig.set_disposition(signo, disp)?;
    complete_all(discarded);
    if catches {
        p.p_sigcv.notify_all();
    }
    Ok(old)
}
