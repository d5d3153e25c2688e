//! A portable thread standing in for a foreign host's timer service, and
//! the backend shell around it, shared by the `mmtimer` and `timerqueue`
//! emulations.
//!
//! On Windows both mechanisms run their callbacks on a thread the OS owns
//! (the multimedia timer thread, a timer-queue thread). This module plays
//! that OS thread: it holds at most one programmed event (an id, an
//! absolute due instant, an optional period), sleeps until the due instant
//! or until the event is reprogrammed, and "runs the callback", which is
//! always the same thing here: one write to the backend's eventfd.
//!
//! # Why `std` synchronisation here
//!
//! Everything else in `hostalarm` takes its locks from
//! `itimer_sync`, whose condition variable deliberately has no
//! timed wait (timeouts there are model time). This thread is not model
//! logic: it *is* the host OS, whose timer service sleeps on the host's
//! real clock. So it uses `std::thread`, `std::sync::{Arc, Mutex, Condvar}`
//! and `Condvar::wait_timeout` on `std::time::Instant` (which is
//! `CLOCK_MONOTONIC` on Linux, the same clock the loop's deadlines use).
//! It is never part of a loom model.
//!
//! # Invariants
//!
//! * `Shared::state` (a `std::sync::Mutex`) guards [`State`]; there is no
//!   other lock, so no lock order. The eventfd write happens under it; it
//!   never blocks (the fd is non-blocking).
//! * The thread writes only to `State::wake_fd`, a raw fd number it does not
//!   own. The owner ([`EmulatedTimerThread`]'s user) keeps the fd open until
//!   [`EmulatedTimerThread::shutdown`] has joined the thread, so the number
//!   can never be stale while the thread can use it.
//! * State machine of the programmed event: `Idle` (`event` is `None`)
//!   --program--> `Armed(id, due, period)` --due reached--> the callback
//!   runs, then `Armed(id, due + period, period)` for a periodic event or
//!   `Idle` for a one-shot; --cancel(id)--> `Idle` (only if `id` matches,
//!   as a stale handle cannot cancel a newer event); --shutdown--> the
//!   thread exits.
//! * After `fork` the thread does not exist in the child and the mutex may
//!   have been held by it at the instant of the fork: a child must never
//!   touch the parent's `Shared`; [`EmulatedTimerThread::abandon_after_fork`]
//!   forgets it without locking or joining.
//!
//! # The backend shell
//!
//! [`EmulatedBackend`] is everything the two emulated backends have in
//! common: the eventfd the "callback" writes (its `wait_fd`), the thread's
//! start and stop, `consume`, the re-arm count and the fork rule (abandon
//! the parent's thread untouched, close the child's copy of the eventfd,
//! start afresh). What differs, how a deadline becomes Windows calls in
//! whole milliseconds, is an [`MsPolicy`]: `mmtimer.rs` and `timerqueue.rs`
//! each hold only theirs. State machine: `Stopped` (`host` `None`)
//! --start--> `Started` --rearm--> (the policy's) --stop (the policy's
//! cleanup, join the thread, close the eventfd)--> `Stopped`. No lock of
//! ours: the timer loop owns the backend.

use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::sigwake::{WakeFd, wake_raw_preserving_errno};
use super::{AlarmBackend, MonoNs, StartError, Wakeup};

/// Identifies one programmed event (a Windows timer id or handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventId(pub(crate) u64);

/// The one event the emulated host timer may hold.
#[derive(Debug, Clone, Copy)]
struct Event {
    /// The caller's handle for it.
    id: EventId,
    /// When the callback runs next (host monotonic).
    due: Instant,
    /// `Some` for a periodic event: the next due is `due + period`.
    period: Option<Duration>,
}

/// Guarded by `Shared::state`.
#[derive(Debug)]
struct State {
    /// The programmed event, if any.
    event: Option<Event>,
    /// Set once by shutdown; the thread exits when it sees it.
    shutdown: bool,
    /// The eventfd the callback writes to (owned by the backend).
    wake_fd: RawFd,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Signalled on every change to `state`.
    changed: Condvar,
}

impl Shared {
    /// Locks the state. A poisoned lock (a panic on the timer thread, which
    /// has no panicking code path) still holds consistent state: take it.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The emulated host timer thread. See the module documentation.
#[derive(Debug)]
pub struct EmulatedTimerThread {
    shared: Arc<Shared>,
    /// `Some` until shutdown joins it.
    thread: Option<JoinHandle<()>>,
}

impl EmulatedTimerThread {
    /// Spawns the thread, named `name`, with no event programmed.
    pub(crate) fn spawn(name: &str, wake_fd: RawFd) -> std::io::Result<EmulatedTimerThread> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                event: None,
                shutdown: false,
                wake_fd,
            }),
            changed: Condvar::new(),
        });
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(&for_thread))?;
        Ok(EmulatedTimerThread {
            shared,
            thread: Some(thread),
        })
    }

    /// Programs the single event, replacing any other.
    pub(crate) fn program(&self, id: EventId, due: Instant, period: Option<Duration>) {
        let mut st = self.shared.lock();
        st.event = Some(Event { id, due, period });
        drop(st);
        self.shared.changed.notify_one();
    }

    /// Cancels the event if it is still `id`; reports whether it was.
    pub(crate) fn cancel(&self, id: EventId) -> bool {
        let mut st = self.shared.lock();
        let matches = st.event.is_some_and(|e| e.id == id);
        if matches {
            st.event = None;
        }
        drop(st);
        self.shared.changed.notify_one();
        matches
    }

    /// Stops the thread and waits for it: after this returns the thread
    /// will never write to the wake fd again. Idempotent.
    pub(crate) fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_one();
        // The thread has no panicking path; a join error carries nothing
        // we could act on.
        let _ = thread.join();
    }

    /// In a forked child: forgets the parent's thread and state without
    /// touching them (the thread does not exist here and its lock may be
    /// held forever). Leaks one small allocation per fork.
    pub(crate) fn abandon_after_fork(self) {
        // Neither join nor detach: both would be pthread calls on a thread
        // that does not exist in this process. Forgetting makes no call.
        std::mem::forget(self);
    }
}

impl Drop for EmulatedTimerThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Nanoseconds in one millisecond.
pub(crate) const NANOS_PER_MS: u64 = 1_000_000;

/// One emulated Windows timer service's millisecond policy: how the loop's
/// absolute deadline becomes calls on the emulated timer thread.
pub trait MsPolicy: Default + std::fmt::Debug + Send {
    /// The backend's name in precedence lists.
    const NAME: &'static str;
    /// The emulated OS thread's name.
    const THREAD_NAME: &'static str;
    /// What the thread is, for the start error.
    const THREAD_WHAT: &'static str;
    /// The backend's resolution, ns.
    const RESOLUTION_NS: u64;
    /// The smallest useful distance between re-arms, ns.
    const MIN_REARM_NS: u64;

    /// Right after the thread started (nothing programmed yet).
    fn started(&mut self, thread: &EmulatedTimerThread);
    /// Programs the thread for `deadline` (`None`: disarm).
    fn rearm(&mut self, thread: &EmulatedTimerThread, deadline: Option<MonoNs>);
    /// Right before the thread is stopped.
    fn stopping(&mut self, thread: &EmulatedTimerThread);
}

/// The host side of a started emulated backend.
#[derive(Debug)]
struct Host<P> {
    /// The emulated OS timer thread.
    thread: EmulatedTimerThread,
    /// The eventfd the callback writes to; the backend's `wait_fd`. Declared
    /// after `thread` so the thread is joined before the fd closes.
    wake: WakeFd,
    /// The policy's own state (event ids, the timer handle).
    policy: P,
}

/// An alarm backend on the emulated OS timer thread, with policy `P`. See
/// the module documentation.
#[derive(Debug)]
pub struct EmulatedBackend<P: MsPolicy> {
    /// `Some` between start and stop.
    host: Option<Host<P>>,
    /// Re-arms since start.
    rearm_calls: u64,
}

impl<P: MsPolicy> Default for EmulatedBackend<P> {
    fn default() -> Self {
        EmulatedBackend {
            host: None,
            rearm_calls: 0,
        }
    }
}

impl<P: MsPolicy> EmulatedBackend<P> {
    /// A stopped backend.
    pub fn new() -> Self {
        Self::default()
    }

    fn start_error(errno: Option<Errno>, reason: &str) -> StartError {
        StartError {
            backend: P::NAME,
            errno,
            reason: reason.to_owned(),
        }
    }
}

impl<P: MsPolicy> AlarmBackend for EmulatedBackend<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn start(&mut self) -> Result<(), StartError> {
        if self.host.is_some() {
            return Ok(());
        }
        let wake = WakeFd::new().map_err(|e| Self::start_error(Some(e), "eventfd failed"))?;
        let thread = EmulatedTimerThread::spawn(P::THREAD_NAME, wake.raw()).map_err(|e| {
            Self::start_error(
                e.raw_os_error().map(Errno::from_raw),
                &format!("cannot spawn {}", P::THREAD_WHAT),
            )
        })?;
        let mut policy = P::default();
        policy.started(&thread);
        self.host = Some(Host {
            thread,
            wake,
            policy,
        });
        self.rearm_calls = 0;
        Ok(())
    }

    fn stop(&mut self) {
        let Some(mut host) = self.host.take() else {
            return;
        };
        host.policy.stopping(&host.thread);
        host.thread.shutdown();
        // `wake` closes when `host` drops, after the join.
    }

    fn rearm(&mut self, deadline: Option<MonoNs>) -> Result<(), Errno> {
        let host = self.host.as_mut().ok_or(Errno::EBADF)?;
        self.rearm_calls += 1;
        host.policy.rearm(&host.thread, deadline);
        Ok(())
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        self.host.as_ref().map(|h| h.wake.as_fd())
    }

    fn consume(&mut self) -> Result<Wakeup, Errno> {
        self.host.as_ref().ok_or(Errno::EBADF)?.wake.consume()
    }

    fn resolution_ns(&self) -> u64 {
        P::RESOLUTION_NS
    }

    fn min_rearm_ns(&self) -> u64 {
        P::MIN_REARM_NS
    }

    fn rearm_calls(&self) -> u64 {
        self.rearm_calls
    }

    fn reinit_after_fork(&mut self) -> Result<(), StartError> {
        if let Some(host) = self.host.take() {
            host.thread.abandon_after_fork();
            drop(host.wake);
        }
        self.start()
    }
}

impl<P: MsPolicy> Drop for EmulatedBackend<P> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The emulated OS timer thread's body.
fn run(shared: &Shared) {
    let mut st = shared.lock();
    loop {
        if st.shutdown {
            return;
        }
        let Some(event) = st.event else {
            st = shared.changed.wait(st).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        let now = Instant::now();
        if now < event.due {
            st = shared
                .changed
                .wait_timeout(st, event.due - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        }
        // Due: run the "callback", then retire or reschedule the event.
        wake_raw_preserving_errno(st.wake_fd);
        st.event = event.period.map(|p| Event {
            due: event.due + p,
            ..event
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sleeps until `until`, then drains the wake fd.
    fn drain_at(wake: &WakeFd, until: Instant) -> u64 {
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
        wake.drain().expect("drain")
    }

    #[test]
    fn periodic_event_repeats_and_stale_ids_cannot_cancel() {
        let wake = WakeFd::new().unwrap();
        let mut t = EmulatedTimerThread::spawn("hostemu-test", wake.raw()).unwrap();
        let t0 = Instant::now();
        // Due at 5 ms, then every 20 ms: by 100 ms it has run at 5, 25, 45,
        // 65 and 85 ms.
        t.program(
            EventId(7),
            t0 + Duration::from_millis(5),
            Some(Duration::from_millis(20)),
        );
        assert!(!t.cancel(EventId(6)), "a stale id does not cancel");
        let runs = drain_at(&wake, t0 + Duration::from_millis(100));
        // At most 7: the drain may come late on a loaded machine (one more
        // run per 20 ms of lateness), but a runaway period would show here.
        assert!(
            (3..=7).contains(&runs),
            "{runs} runs in ~100 ms of a 20 ms period"
        );
        assert!(t.cancel(EventId(7)));
        let _ = wake.drain().unwrap();
        let after_cancel = drain_at(&wake, Instant::now() + Duration::from_millis(50));
        assert_eq!(after_cancel, 0, "cancelled: no more runs");
        t.shutdown();
        t.shutdown(); // idempotent
    }

    #[test]
    fn one_shot_runs_once() {
        let wake = WakeFd::new().unwrap();
        let t = EmulatedTimerThread::spawn("hostemu-test", wake.raw()).unwrap();
        let t0 = Instant::now();
        t.program(EventId(1), t0 + Duration::from_millis(2), None);
        assert_eq!(drain_at(&wake, t0 + Duration::from_millis(60)), 1);
        assert!(!t.cancel(EventId(1)), "a fired one-shot is gone");
    }
}
