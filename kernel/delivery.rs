//! Signal delivery to handlers: the process's delivery thread, modelling
//! illumos `psig()` (`usr/src/uts/common/os/sig.c`).
//!
//! In illumos a caught signal is delivered by the thread it interrupts,
//! on its way back to user mode: `psig()` dequeues the signal, runs the
//! queued entry's consumption callback (`timer_signal` for a timer: the
//! overrun is latched there), and builds the handler's frame. The model has
//! no user threads to interrupt, so each process gets one **delivery
//! thread** (a `ServiceThread`, spawned by the first `sigaction` that
//! installs a handler). It sleeps on `p_sigcv` with `p_lock` until a
//! signal is queued, not blocked and caught (`SigState::take_handled`),
//! dequeues it and runs its consumption callback with `p_lock` held —
//! exactly as `sigtimedwait` does — then drops `p_lock` and runs the
//! handler with the final siginfo. `timer_getoverrun` called in the
//! handler therefore returns the overrun of this very notification.
//!
//! `p_sigcv` is notified by everything that can make a signal
//! deliverable: `timer_fire` queueing one, `sigprocmask` unblocking,
//! `sigaction` installing a handler; and by exit, after which the thread
//! returns (once any running handler returns) and is joined.
//!
//! # Deviations
//!
//! * Handlers run one at a time, on one thread per process, as if every
//!   handler's `sa_mask` held every signal; the process mask is not
//!   changed around a handler (there is no per-thread mask to restore).
//! * A signal that is caught and not blocked may still be taken by a
//!   concurrent `sigtimedwait` that names it (POSIX leaves `sigwait` on an
//!   unblocked signal undefined); whichever dequeues it first has it.
//! * A handler that panics ends the delivery thread; later caught
//!   signals stay queued.
//!

use nix::errno::Errno;

use crate::proc::{ProcShared, ProcState, Process};
use crate::service::ServiceThread;
use crate::sync::{Arc, MutexGuard};

/// Starts the delivery thread if the process has none. Called by
/// `sigaction` installing a handler, with `p_lock` held. `EAGAIN` if no
/// thread could be made.
pub(crate) fn ensure_delivery(
    p: &Arc<ProcShared>,
    st: &mut MutexGuard<'_, ProcState>,
) -> Result<(), Errno> {
    if st.delivery.is_some() {
        return Ok(());
    }
    let p2 = p.clone();
    st.delivery = Some(ServiceThread::spawn(
        &p.kernel.service_threads,
        "itimer-psig",
        move || delivery_loop(p2),
    )?);
    Ok(())
}

/// The delivery thread's body.
fn delivery_loop(p: Arc<ProcShared>) {
    let me = Process::service_view(p.clone());
    let mut st = p.p_lock.lock();
    loop {
        if st.exited {
            return;
        }
        let Some((taken, handler)) = st.sig.take_handled() else {
            st = p.p_sigcv.wait(st);
            continue;
        };
        let info = taken.complete();
        drop(st);
        handler.call(&me, &info);
        st = p.p_lock.lock();
    }
}

/// Exit, after the exit flag is set and `p_sigcv` notified: joins the
/// delivery thread (or detaches it when the exit runs in a handler).
pub(crate) fn delivery_exit(p: &ProcShared) {
    let thread = p.p_lock.lock().delivery.take();
    if let Some(t) = thread {
        t.finish();
    }
}
