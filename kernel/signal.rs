//! The signal syscalls: `sigtimedwait`, `sigwaitinfo`, `sigpending`,
//! `sigprocmask`, `sigaction` (dispositions default and ignore).
//!
//! Waiters sleep on `p_sigcv` with `p_lock`; `timer_fire` notifies it after
//! queueing. A timeout is a [`Callout`] (no timed wait): its expiry sets the
//! waiter's flag and notifies under `p_lock`, so a waiter that checked the
//! flag while holding `p_lock` cannot miss the wakeup. Exit wakes waiters,
//! which return `EINTR`.

use nix::errno::Errno;

use crate::abi::Siginfo;
use crate::callout::Callout;
use crate::process::ProcShared;
use crate::sigqueue::{Disposition, SigSet, Taken};
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

/// `sigtimedwait`: takes the lowest pending signal in `set` (oldest first),
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

/// `sigpending`: the signals with something queued.
pub(crate) fn sigpending(p: &ProcShared) -> Result<SigSet, Errno> {
    Ok(p.lock_live()?.sig.pending())
}

/// `sigprocmask`: changes the blocked mask as `how` says (`EINVAL` for an
/// unknown `how`); returns the old mask.
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
    Ok(old)
}

/// `sigaction` for dispositions: returns the old one. `EINVAL` for a bad
/// signal number or for SIGKILL / SIGSTOP.
pub(crate) fn sigaction(
    p: &ProcShared,
    signo: i32,
    disp: Disposition,
) -> Result<Disposition, Errno> {
    let mut st = p.lock_live()?;
    let (old, discarded) = st.sig.set_disposition(signo, disp)?;
    complete_all(discarded);
    Ok(old)
}
