//! `SIGEV_THREAD`: timer callbacks run on the process's notification
//! thread, built on an event port — the model's libc.
//!
//! Models illumos libc's `usr/src/lib/libc/port/rt/sigev_thread.c`: the
//! kernel knows nothing of threads or callbacks, it treats `SIGEV_THREAD`
//! exactly as `SIGEV_PORT`. libc creates a port and a thread that loops on
//! `port_get`, creates the timer with that port in its sigevent and its own
//! per-timer record as the event's user value, and runs the callback for
//! each event it retrieves.
//!
//! Here [`SigEvent::Thread`](crate::SigEvent::Thread) in the typed
//! `timer_create` is that libc part. The first such timer lazily creates
//! the process's **private** notification port (invisible to user port
//! calls, so user code cannot close, alert or flood it) and the
//! notification thread (a `ServiceThread`). Each timer gets a
//! registration (callback, sigval, timer id) under a unique token, which is
//! the port event's `portev_user`; the thread looks the token up, so a
//! stale event can never run a newer timer's callback even when timer ids
//! are reused. Each retrieval runs the callback once, with the
//! expirations the event accounts for (`portev_events`); inside it,
//! `timer_getoverrun` of the timer is `expirations - 1`.
//!
//! # Lock and guarantees
//!
//! The service lock (`NotifyService`) is libc's, outside the kernel: it
//! comes **before** every kernel lock (it is held across the kernel's
//! `timer_create` so that a racing delete finds the registration), and
//! the kernel calls into this module (`timer_forget`, from
//! `timer_delete`) holding no lock. Callbacks run with no lock held.
//!
//! * After `timer_delete` of a SIGEV_THREAD timer returns, its callback
//!   will not start again, and is not running — except when the delete is
//!   called on the notification thread itself (from a callback): waiting
//!   there would wait for itself, so the current callback finishes after
//!   the delete returns and no further one starts. A callback may thus
//!   make any syscall on its own timer, delete included, and may call
//!   `exit`. (Do not delete a timer from another thread while holding a
//!   lock its callback takes: the delete waits for the callback.)
//! * Exit stops the thread: no callback starts once the process is
//!   exiting, the port is closed, and the thread is joined (or detached if
//!   the exit runs on it).
//!
//! # Deviations from illumos libc
//!
//! * One notification thread per process serves every SIGEV_THREAD timer
//!   (illumos libc: one per timer), so callbacks of different timers never
//!   overlap in time.
//! * A callback that panics ends the notification thread; later
//!   notifications of that process are lost (a C callback that crashes
//!   takes the process with it).
//! * The callback receives a [`Process`] view of its own process and the
//!   expiration count as well as the sigval (C gets only the sigval).

use std::collections::BTreeMap;
use std::sync::Arc as StdArc;

use nix::errno::Errno;

use crate::abi::{PORT_SOURCE_TIMER, PortNotify, SIGEV_THREAD, Sigevent};
use crate::ids::TimerId;
use crate::itimer;
use crate::port::{self, Caller};
use crate::proc::{ProcShared, Process};
use crate::service::ServiceThread;
use crate::sync::atomic::Ordering;
use crate::sync::{Arc, Condvar, Mutex};

/// What a SIGEV_THREAD callback is told about one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ThreadNotify {
    /// The timer that expired.
    pub timer: TimerId,
    /// The sigevent's value (`sigev_value`).
    pub value: u64,
    /// Expirations this notification accounts for (at least 1; the port
    /// event's `portev_events`).
    pub expirations: i32,
}

/// A SIGEV_THREAD callback: runs on the process's notification thread
/// with a view of the process (for syscalls, including on its own timer)
/// and the notification. Use the `&Process` it is given rather than
/// capturing an owned [`Process`]: a captured handle would keep the
/// process from exiting on drop.
#[derive(Clone)]
pub struct ThreadCallback(StdArc<CallbackFn>);

/// The function a [`ThreadCallback`] holds.
type CallbackFn = dyn Fn(&Process, ThreadNotify) + Send + Sync;

impl ThreadCallback {
    /// Wraps a closure.
    pub fn new(f: impl Fn(&Process, ThreadNotify) + Send + Sync + 'static) -> ThreadCallback {
        ThreadCallback(StdArc::new(f))
    }
}

impl std::fmt::Debug for ThreadCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThreadCallback(..)")
    }
}

/// Two callbacks are equal when they are the same closure.
impl PartialEq for ThreadCallback {
    fn eq(&self, other: &Self) -> bool {
        StdArc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ThreadCallback {}

/// One SIGEV_THREAD timer's record (illumos libc's per-timer data).
#[derive(Debug)]
struct Registration {
    tid: i32,
    callback: ThreadCallback,
    value: u64,
}

/// What the service lock guards.
#[derive(Debug, Default)]
struct NotifyState {
    /// The private notification port, once created.
    port: Option<i32>,
    /// The notification thread, once created; taken by exit.
    thread: Option<ServiceThread>,
    /// Registrations by token (the port events' `portev_user`).
    regs: BTreeMap<u64, Registration>,
    /// Live SIGEV_THREAD timer id → its token.
    by_tid: BTreeMap<i32, u64>,
    /// The next token.
    next_token: u64,
    /// The token of the timer whose callback is running, if any.
    running: Option<u64>,
    /// Set by exit: nothing starts any more.
    stopped: bool,
}

/// A process's SIGEV_THREAD service (libc state); see the module docs.
#[derive(Debug, Default)]
pub(crate) struct NotifyService {
    /// The service lock.
    state: Mutex<NotifyState>,
    /// Signalled when a callback returns, with `state`.
    done: Condvar,
}

/// The typed `timer_create` with [`SigEvent::Thread`](crate::SigEvent::Thread):
/// starts the service if needed, creates the timer on the private port, and
/// registers the callback. Errors: those of `timer_create`, `EMFILE` (no
/// port left for the service), `EAGAIN` (no thread), `ESRCH` (exited).
pub(crate) fn timer_create(
    proc: &Process,
    clock: i32,
    callback: ThreadCallback,
    value: u64,
) -> Result<i32, Errno> {
    let p = &proc.shared;
    let svc = &p.notify;
    let mut st = svc.state.lock();
    if st.stopped {
        return Err(Errno::ESRCH);
    }
    let port = match st.port {
        Some(port) => port,
        None => start(p, &mut st)?,
    };
    let token = st.next_token;
    st.next_token += 1;
    let ev = Sigevent {
        sigev_notify: SIGEV_THREAD,
        sigev_value: value,
        sigev_port: PortNotify {
            portnfy_port: port,
            portnfy_user: token,
        },
        ..Sigevent::default()
    };
    let tid = itimer::timer_create(p, clock, Some(&ev), Caller::Libc)?;
    st.regs.insert(
        token,
        Registration {
            tid,
            callback,
            value,
        },
    );
    st.by_tid.insert(tid, token);
    Ok(tid)
}

/// Creates the private port and the notification thread.
fn start(p: &Arc<ProcShared>, st: &mut NotifyState) -> Result<i32, Errno> {
    let port = port::port_create(p, Caller::Libc)?;
    let p2 = p.clone();
    match ServiceThread::spawn(
        &p.kernel.service_threads,
        "itimer-sigev-thread",
        move || notify_loop(p2, port),
    ) {
        Ok(thread) => {
            st.port = Some(port);
            st.thread = Some(thread);
            Ok(port)
        }
        Err(e) => {
            let _ = port::port_close(p, port, Caller::Libc);
            Err(e)
        }
    }
}

/// The notification thread's body: retrieve, look up, call, until the
/// port closes or the process exits.
fn notify_loop(p: Arc<ProcShared>, port: i32) {
    let me = Process::service_view(p.clone());
    let svc = &p.notify;
    loop {
        let ev = match port::port_getn(&p, port, Caller::Libc, 1, 1, None) {
            Ok(got) => match got.events.first() {
                Some(ev) => *ev,
                None => continue,
            },
            // EINTR / ESRCH: exiting; EBADFD / EBADF: the port closed.
            Err(_) => return,
        };
        if ev.portev_source != PORT_SOURCE_TIMER as u16 {
            continue;
        }
        let (callback, note) = {
            let mut st = svc.state.lock();
            if st.stopped || p.exiting.load(Ordering::SeqCst) {
                return;
            }
            let Some(reg) = st.regs.get(&ev.portev_user) else {
                // Deleted after its event was retrieved.
                continue;
            };
            let note = ThreadNotify {
                timer: TimerId(reg.tid),
                value: reg.value,
                expirations: ev.portev_events,
            };
            let callback = reg.callback.clone();
            st.running = Some(ev.portev_user);
            (callback, note)
        };
        let _running = Running(svc);
        (callback.0)(&me, note);
    }
}

/// Clears `running` and wakes waiting deletes when a callback returns, or
/// unwinds.
struct Running<'a>(&'a NotifyService);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.state.lock().running = None;
        self.0.done.notify_all();
    }
}

/// Called by `timer_delete` (holding no lock) for every deleted timer: a
/// SIGEV_THREAD timer's registration goes, and the call waits for its
/// running callback unless it runs on the notification thread.
pub(crate) fn timer_forget(p: &ProcShared, tid: i32) {
    let svc = &p.notify;
    let mut st = svc.state.lock();
    let Some(token) = st.by_tid.remove(&tid) else {
        return;
    };
    st.regs.remove(&token);
    if st.thread.as_ref().is_some_and(ServiceThread::is_current) {
        return;
    }
    while st.running == Some(token) {
        st = svc.done.wait(st);
    }
}

/// Exit, first step: no callback starts from now on.
pub(crate) fn notify_stop(p: &ProcShared) {
    p.notify.state.lock().stopped = true;
}

/// Exit, last step (after the process's ports are closed, which ends the
/// thread's `port_get`): joins the notification thread.
pub(crate) fn notify_exit(p: &ProcShared) {
    let thread = {
        let mut st = p.notify.state.lock();
        st.regs.clear();
        st.by_tid.clear();
        st.port = None;
        st.thread.take()
    };
    if let Some(t) = thread {
        t.finish();
    }
}
