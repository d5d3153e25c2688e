//! The real timer loop: one thread that waits on the alarm backend and an
//! eventfd, and runs the shared pass ([`crate::step`]).
//!
//! Models the `main_loop_wait` / `host_alarm_handler` pairing of QEMU's
//! `vl.c` and `qemu-timer.c`, with the alarm in its own thread, and
//! `init_timer_alarm` / `quit_timers` / the fork handling QEMU's timer
//! code gained later.
//!
//! # The loop thread
//!
//! ```text
//!   start backends in precedence order (on this thread) ─ report ─▶ caller
//!   loop {
//!       pass(cause)                  consume → run timers → re-arm if changed
//!       poll(alarm fd, eventfd)      no timeout (1 ms after a failed pass)
//!       cause = which fds were readable; drain the eventfd
//!       (poll failed: count it, sleep the back-off, retry)
//!   } until shutdown
//!   stop the backend (on this thread)
//! ```
//!
//! Every backend call (`start`, `rearm`, `consume`, `stop`) happens on the
//! loop thread, which is also the thread that polls: the `dynticks` backend
//! directs its signal at the thread that started it. Callbacks run on the
//! loop thread; one that panics ends the loop thread (timers then stay
//! armed and unrun until the loop is dropped and another started).
//!
//! A `poll` that fails (other than `EINTR`) is counted in
//! [`LoopStats::poll_errors`] with its errno in
//! [`LoopStats::last_poll_error`], and the loop sleeps before it polls
//! again: [`POLL_BACKOFF_MIN_MS`], doubling with each consecutive failure
//! up to [`POLL_BACKOFF_MAX_MS`], back to the minimum after a wait that
//! works. A lasting error (a descriptor limit lowered under the loop, say)
//! is so a slow, visible retry, never a busy loop.
//!
//! A thread arming a timer earlier than the armed deadline kicks the
//! eventfd through the notify handshake ([`crate::notify`]); the eventfd
//! counter is the sticky waker the handshake requires.
//!
//! # Locks
//!
//! * `LoopShared::backend` guards the started backend. Only the loop thread
//!   takes it, around each single backend call (never while polling or
//!   while callbacks run), so a forked child can take the backend over
//!   (`try_lock`).
//! * The eventfd's own leaf lock (see [`crate::eventfd`]).
//! * `Rendezvous::slot`: the start report. Leaf lock.
//!
//! None of them is held together with a clock lock.
//!
//! # Fork
//!
//! After `fork` only the forking thread exists in the child. The loop's
//! thread, its eventfd (shared with the parent's) and its backend's host
//! timer (a timerfd is shared with the parent) must all be replaced:
//! [`TimerLoop::reinit_after_fork`] closes the child's copy of the eventfd,
//! hands the old backend to a new loop thread, which calls
//! [`AlarmBackend::reinit_after_fork`] (stop, start) there, and rebinds the
//! clocks to the new notifier. As with any fork of a threaded process, fork
//! while the loop is idle: a callback running at fork time is lost in the
//! child (its runner token is cleared), and a lock held at fork time stays
//! held ([`LoopError::ForkBusy`] when that lock is the backend slot).

use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::{Pid, getpid};

use itimer_sync::atomic::{AtomicBool, Ordering};
use itimer_sync::thread::{self, JoinHandle};
use itimer_sync::{Arc, Condvar, Mutex};

use crate::alarm::{AlarmBackend, AllFailed, Precedence, StartError, candidates};
use crate::clock::Clocks;
use crate::clock_state::ThreadKey;
use crate::eventfd::EventFdWaker;
use crate::notify::{Notifier, Waker};
use crate::step::{BackendAccess, LoopCore, LoopStats, StatCounters, WakeCause};

/// Poll timeout after a failed pass (a failed `rearm` leaves the host timer
/// in an unknown state, so the loop retries on its own), ms.
pub const RETRY_AFTER_ERROR_MS: u16 = 1;

/// The sleep after a first failed `poll`, ms.
pub const POLL_BACKOFF_MIN_MS: u64 = 1;

/// The longest sleep between failed `poll`s, ms (also the longest a drop of
/// the loop may wait for a backing-off loop thread).
pub const POLL_BACKOFF_MAX_MS: u64 = 100;

/// Consecutive failed waits, and the sleep each earns.
#[derive(Debug, Default)]
struct PollBackoff {
    failures: u32,
}

impl PollBackoff {
    /// The sleep after one more failure: the minimum, doubled per earlier
    /// consecutive failure, at most the maximum.
    fn failed(&mut self) -> Duration {
        let ms = POLL_BACKOFF_MIN_MS
            .checked_shl(self.failures)
            .unwrap_or(POLL_BACKOFF_MAX_MS)
            .min(POLL_BACKOFF_MAX_MS);
        self.failures = self.failures.saturating_add(1);
        Duration::from_millis(ms)
    }

    /// A wait worked: the next failure starts from the minimum.
    fn succeeded(&mut self) {
        self.failures = 0;
    }
}

/// Why the loop could not start (or restart after fork).
#[derive(Debug)]
pub enum LoopError {
    /// No backend started; every backend's reason, in precedence order.
    AllFailed(AllFailed),
    /// The clocks are bound to another host already.
    AlreadyBound,
    /// Creating the eventfd or the thread failed.
    Host(Errno),
    /// After fork: the old loop held its backend slot at fork time.
    ForkBusy,
    /// `reinit_after_fork` called in the process that started the loop.
    NotForked,
    /// The loop thread ended without reporting (it panicked).
    ThreadDied,
}

impl fmt::Display for LoopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopError::AllFailed(e) => write!(f, "{e}"),
            LoopError::AlreadyBound => write!(f, "these clocks already have a host"),
            LoopError::Host(e) => write!(f, "timer loop: host call failed: {e}"),
            LoopError::ForkBusy => {
                write!(f, "fork happened while the timer loop held its backend")
            }
            LoopError::NotForked => write!(f, "reinit_after_fork called in the parent"),
            LoopError::ThreadDied => write!(f, "the timer loop thread died while starting"),
        }
    }
}

impl std::error::Error for LoopError {}

/// What the loop thread reports about the backend that started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// The backend's name.
    pub name: &'static str,
    /// The granularity with which it really fires, ns.
    pub resolution_ns: u64,
    /// Its re-arm floor, ns.
    pub min_rearm_ns: u64,
}

/// A one-shot report from the loop thread to the caller.
struct Rendezvous {
    slot: Mutex<Option<Result<Started, LoopError>>>,
    cv: Condvar,
}

impl Rendezvous {
    fn put(&self, r: Result<Started, LoopError>) {
        let mut g = self.slot.lock();
        if g.is_none() {
            *g = Some(r);
        }
        drop(g);
        self.cv.notify_all();
    }

    fn wait(&self) -> Result<Started, LoopError> {
        let mut g = self.slot.lock();
        loop {
            if let Some(r) = g.take() {
                return r;
            }
            g = self.cv.wait(g);
        }
    }
}

/// Reports `ThreadDied` if the thread unwinds before reporting.
struct ReportGuard(Arc<Rendezvous>);

impl Drop for ReportGuard {
    fn drop(&mut self) {
        self.0.put(Err(LoopError::ThreadDied));
    }
}

type BackendSlot = Mutex<Option<Box<dyn AlarmBackend>>>;

/// State shared by the loop thread and its owner.
struct LoopShared {
    notifier: Arc<Notifier<EventFdWaker>>,
    stats: Arc<StatCounters>,
    /// Set by the owner to end the loop.
    shutdown: AtomicBool,
    /// The started backend. See the module documentation.
    backend: BackendSlot,
    /// The loop thread, for refusing a join from itself.
    thread_key: Mutex<Option<ThreadKey>>,
}

impl LoopShared {
    fn new() -> Result<Arc<LoopShared>, LoopError> {
        Ok(Arc::new(LoopShared {
            notifier: Arc::new(Notifier::new(EventFdWaker::new().map_err(LoopError::Host)?)),
            stats: Arc::new(StatCounters::default()),
            shutdown: AtomicBool::new(false),
            backend: Mutex::new(None),
            thread_key: Mutex::new(None),
        }))
    }
}

/// The pass's access to the backend: the slot, locked per call.
struct SlotAccess<'a>(&'a BackendSlot);

impl BackendAccess for SlotAccess<'_> {
    fn with<R>(&mut self, f: impl FnOnce(&mut dyn AlarmBackend) -> R) -> R {
        let mut g = self.0.lock();
        let b = g
            .as_mut()
            .expect("the loop thread's backend slot is filled while it runs");
        f(&mut **b)
    }
}

/// How the loop thread gets its backend.
enum Startup {
    /// Try these, in order, with `start`.
    Fresh(Vec<Box<dyn AlarmBackend>>),
    /// Restart this one in a forked child with `reinit_after_fork`.
    AfterFork(Box<dyn AlarmBackend>),
}

fn start_backend(startup: Startup) -> Result<Box<dyn AlarmBackend>, LoopError> {
    let mut errors = Vec::new();
    let candidates = match startup {
        Startup::Fresh(c) => c,
        Startup::AfterFork(mut b) => {
            return match b.reinit_after_fork() {
                Ok(()) => Ok(b),
                Err(e) => Err(LoopError::AllFailed(AllFailed { errors: vec![e] })),
            };
        }
    };
    for mut b in candidates {
        match b.start() {
            Ok(()) if b.wait_fd().is_some() => return Ok(b),
            Ok(()) => {
                b.stop();
                errors.push(StartError {
                    backend: b.name(),
                    errno: None,
                    reason: "it has no fd to wait on; only the simulated host drives it".into(),
                });
            }
            Err(e) => errors.push(e),
        }
    }
    Err(LoopError::AllFailed(AllFailed { errors }))
}

fn loop_thread(shared: Arc<LoopShared>, clocks: Clocks, startup: Startup, report: Arc<Rendezvous>) {
    let guard = ReportGuard(report.clone());
    *shared.thread_key.lock() = Some(ThreadKey::current());
    match start_backend(startup) {
        Ok(b) => {
            let started = Started {
                name: b.name(),
                resolution_ns: b.resolution_ns(),
                min_rearm_ns: b.min_rearm_ns(),
            };
            *shared.backend.lock() = Some(b);
            report.put(Ok(started));
        }
        Err(e) => {
            report.put(Err(e));
            return;
        }
    }
    drop(guard);

    let notifier = &*shared.notifier;
    let mut core = LoopCore::new(clocks, shared.stats.clone());
    let mut cause = WakeCause::default();
    let mut backoff = PollBackoff::default();
    while !shared.shutdown.load(Ordering::SeqCst) {
        let failed = core
            .pass(&mut SlotAccess(&shared.backend), cause, notifier)
            .is_err();
        cause = WakeCause::default();
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let alarm_fd = SlotAccess(&shared.backend).with(|b| b.wait_fd().map(|f| f.as_raw_fd()));
        let (Some(alarm_fd), Some(event_fd)) = (alarm_fd, notifier.waker().raw_fd()) else {
            break;
        };
        // SAFETY: both descriptors stay open while this thread polls: the
        // backend's fd is closed only by `stop`, which only this thread
        // calls, after the loop; the eventfd is closed only in a forked
        // child, where this thread does not exist.
        let (alarm, event) = unsafe {
            (
                BorrowedFd::borrow_raw(alarm_fd),
                BorrowedFd::borrow_raw(event_fd),
            )
        };
        let mut fds = [
            PollFd::new(alarm, PollFlags::POLLIN),
            PollFd::new(event, PollFlags::POLLIN),
        ];
        let timeout = if failed {
            PollTimeout::from(RETRY_AFTER_ERROR_MS)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {
                backoff.succeeded();
                let ready = |f: &PollFd| {
                    f.revents().is_some_and(|r| {
                        r.intersects(PollFlags::POLLIN | PollFlags::POLLERR | PollFlags::POLLHUP)
                    })
                };
                cause.alarm = ready(&fds[0]);
                cause.notify = ready(&fds[1]);
                if cause.notify {
                    notifier.waker().drain();
                }
            }
            // A signal (the `unix` backend's SIGALRM) interrupted the wait:
            // its eventfd is readable on the next poll.
            Err(Errno::EINTR) => {}
            Err(e) => {
                shared.stats.poll_failed(e);
                std::thread::sleep(backoff.failed());
            }
        }
    }
    let backend = shared.backend.lock().take();
    if let Some(mut b) = backend {
        b.stop();
    }
}

/// The real host's timer loop. Dropping it stops the backend and joins the
/// thread.
pub struct TimerLoop {
    clocks: Clocks,
    shared: Arc<LoopShared>,
    thread: Option<JoinHandle<()>>,
    /// The backend that started.
    started: Started,
    /// The process that started the loop.
    pid: Pid,
}

impl fmt::Debug for TimerLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerLoop")
            .field("backend", &self.started.name)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl TimerLoop {
    /// Starts the loop for `clocks`, trying the backends of `precedence` in
    /// order on the loop thread (QEMU's `init_timer_alarm`).
    pub fn start(clocks: &Clocks, precedence: &Precedence) -> Result<TimerLoop, LoopError> {
        TimerLoop::start_with(clocks, candidates(precedence))
    }

    /// Starts the loop with these (unstarted) backends as candidates, tried
    /// in order on the loop thread. A backend without a wait fd (the `sim`
    /// one) is refused.
    pub fn start_with(
        clocks: &Clocks,
        candidates: Vec<Box<dyn AlarmBackend>>,
    ) -> Result<TimerLoop, LoopError> {
        let shared = LoopShared::new()?;
        clocks
            .bind(Box::new(shared.notifier.clone()))
            .map_err(|_| LoopError::AlreadyBound)?;
        match spawn(&shared, clocks, Startup::Fresh(candidates)) {
            Ok((thread, started)) => Ok(TimerLoop {
                clocks: clocks.clone(),
                shared,
                thread: Some(thread),
                started,
                pid: getpid(),
            }),
            Err(e) => {
                clocks.unbind();
                Err(e)
            }
        }
    }

    /// The clocks this loop drives.
    pub fn clocks(&self) -> &Clocks {
        &self.clocks
    }

    /// The name of the backend that started.
    pub fn backend_name(&self) -> &'static str {
        self.started.name
    }

    /// The granularity with which the started backend really fires, ns.
    pub fn resolution_ns(&self) -> u64 {
        self.started.resolution_ns
    }

    /// The started backend's re-arm floor, ns.
    pub fn min_rearm_ns(&self) -> u64 {
        self.started.min_rearm_ns
    }

    /// A snapshot of the loop's counters.
    pub fn stats(&self) -> LoopStats {
        self.shared.stats.snapshot()
    }

    /// Kicks received from arming threads.
    pub fn kicks(&self) -> u64 {
        self.shared.notifier.kicks()
    }

    /// In a forked child: replaces the loop thread, the eventfd and the
    /// backend's host timer (see the module documentation). The clocks and
    /// their timers carry over. Statistics restart from zero.
    pub fn reinit_after_fork(&mut self) -> Result<(), LoopError> {
        if getpid() == self.pid {
            return Err(LoopError::NotForked);
        }
        // The thread does not exist here: its handle must be neither joined
        // nor detached.
        if let Some(t) = self.thread.take() {
            std::mem::forget(t);
        }
        if !self.clocks.clear_dead_runner_after_fork() {
            return Err(LoopError::ForkBusy);
        }
        let old = &self.shared;
        let backend = old
            .backend
            .try_lock()
            .ok_or(LoopError::ForkBusy)?
            .take()
            .ok_or(LoopError::ForkBusy)?;
        old.notifier.waker().close_after_fork();
        let shared = LoopShared::new()?;
        self.clocks.rebind(Box::new(shared.notifier.clone()));
        let (thread, started) = spawn(&shared, &self.clocks, Startup::AfterFork(backend))?;
        self.shared = shared;
        self.thread = Some(thread);
        self.started = started;
        self.pid = getpid();
        Ok(())
    }
}

fn spawn(
    shared: &Arc<LoopShared>,
    clocks: &Clocks,
    startup: Startup,
) -> Result<(JoinHandle<()>, Started), LoopError> {
    let report = Arc::new(Rendezvous {
        slot: Mutex::new(None),
        cv: Condvar::new(),
    });
    let (s, c, r) = (shared.clone(), clocks.clone(), report.clone());
    let thread = thread::spawn_named("itimer-loop", move || loop_thread(s, c, startup, r))
        .map_err(|e| LoopError::Host(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN))))?;
    match report.wait() {
        Ok(started) => Ok((thread, started)),
        Err(e) => {
            let _ = thread.join();
            Err(e)
        }
    }
}

impl Drop for TimerLoop {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.notifier.waker().wake();
        let on_loop_thread = *self.shared.thread_key.lock() == Some(ThreadKey::current());
        if let Some(t) = self.thread.take() {
            if on_loop_thread {
                // Dropped from a callback: the thread ends after it returns.
                drop(t);
            } else {
                let _ = t.join();
            }
        }
        self.clocks.unbind();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_backoff_doubles_to_its_cap_and_resets_after_a_working_wait() {
        let mut b = PollBackoff::default();
        let ms: Vec<u128> = (0..10).map(|_| b.failed().as_millis()).collect();
        assert_eq!(ms, [1, 2, 4, 8, 16, 32, 64, 100, 100, 100]);
        for _ in 0..100 {
            b.failed();
        }
        assert_eq!(b.failed(), Duration::from_millis(POLL_BACKOFF_MAX_MS));
        b.succeeded();
        assert_eq!(b.failed(), Duration::from_millis(POLL_BACKOFF_MIN_MS));
    }
}
