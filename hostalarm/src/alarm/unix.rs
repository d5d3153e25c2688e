//! The `unix` alarm backend: `setitimer(ITIMER_REAL)` and `SIGALRM`.
//!
//! Models QEMU's `unix` entry in `alarm_timers[]` (`unix_start_timer` /
//! `unix_rearm_timer` / `host_alarm_handler` in `qemu-timer.c`). Deliberate
//! deviations: QEMU's handler did the loop's bookkeeping itself; ours only
//! wakes the loop through an eventfd. QEMU never gave the process's previous
//! `SIGALRM` disposition back; we restore it on stop. QEMU allowed only one
//! alarm per process implicitly; we make that an explicit claim so a second
//! instance fails to start and the registry falls back to the next backend.
//! QEMU floored every backend's re-arm at 250 µs from now; this backend
//! alone caps its signal rate at one per millisecond, counted from the
//! previous alarm ([`super::pacing`]). And start unblocks `SIGALRM` on the
//! loop thread, which QEMU's main loop never needed to.
//!
//! # Host mechanism
//!
//! * `ITIMER_REAL` is one per process and `SIGALRM` is process-directed:
//!   the kernel delivers it to **any** thread of the program that does not
//!   block it, not necessarily the loop thread. Our handler therefore does
//!   nothing but an async-signal-safe `write(2)` to an eventfd (errno saved
//!   and restored), installed with `SA_RESTART` so the interrupted thread's
//!   restartable system calls (`read`, `write`, `wait`, ...) resume instead
//!   of failing with `EINTR`. Calls that Linux never restarts (`poll`,
//!   `epoll_wait`, `nanosleep`, ...) still see `EINTR`, as they would for
//!   any signal; `std` retries its sleeps. The handler never kills, stalls
//!   (it takes no lock) or storms a thread.
//! * Every `SIGALRM` still interrupts *some* thread: its `nanosleep`,
//!   `poll` or `epoll_wait` fails with `EINTR`, and a sleep retried with
//!   the time remaining loses the time spent in the handler and waiting for
//!   a CPU afterwards. Linux hands a process-directed signal to the main
//!   thread first, so at the loop's natural rate under load (18,000 alarms
//!   a second) the program's main thread was stalled: its 1 ms sleeps ended
//!   5–15 ms late and a 3 s run lasted up to 23 s. Hence the rate cap: at
//!   most one `SIGALRM` per [`SIGNAL_SPACING_NS`] (1 ms), anchored at the
//!   previous alarm ([`super::pacing`]). A deadline a spacing or more after
//!   the last alarm is armed to the microsecond; a closer one waits, and
//!   every timer due by then runs on that one alarm. Measured in
//!   `docs/performance.md` ("Spurious wakeups under churn"). A program
//!   that cannot have these `EINTR`s blocks `SIGALRM` in its own threads;
//!   every alarm then lands on the loop thread (see the loop thread's mask
//!   below).
//! * `setitimer` is relative: [`AlarmBackend::rearm`] converts the absolute
//!   deadline at call time, rounding **up** to the microsecond so the alarm
//!   never fires early. A deadline already past becomes the smallest
//!   non-zero interval, 1 µs, because a zero interval disarms.
//! * The pacer must know whether the pending arming fired. `setitimer`'s
//!   old value says so (zero: it fired), read atomically with the
//!   replacement. A re-arm less than one spacing after the pending arming
//!   therefore disarms first and arms second (two counted host calls), so
//!   an alarm firing in between can still be paced against. This asks the
//!   kernel whether an alarm *happened*, never whether to re-arm.
//!
//! # Resolution and limits
//!
//! 1 µs (`struct timeval`); `min_rearm_ns` is 1 µs, but alarms are at
//! least [`SIGNAL_SPACING_NS`] apart, so a timer due less than 1 ms after
//! the previous alarm runs up to that much late. A program that blocks
//! `SIGALRM` in all its own threads can have the cap off
//! ([`UnixBackend::with_spacing`]`(0)`, started through
//! [`crate::TimerLoop::start_with`]). The kernel runs
//! `ITIMER_REAL` on a monotonic hrtimer, so a wall-clock step does not move
//! it. Only one instance per process (`CLAIMED`); start also refuses
//! (`EBUSY`) when the program has `ITIMER_REAL` armed itself.
//!
//! # Process-wide state and its protocol
//!
//! The statics below are `std` atomics, not `itimer_sync` ones: they
//! are shared with an async-signal handler, which can only use lock-free
//! host atomics and is never part of a loom model.
//!
//! * `CLAIMED`: set by the one started instance (compare-exchange), cleared
//!   by its stop. Guards every other static here and `SIGALRM`'s
//!   disposition: only the claimant changes them.
//! * `WAKE_FD`: the eventfd the handler writes to, or `NO_FD`.
//! * `IN_HANDLER`: handlers currently running. The handler increments it
//!   *before* loading `WAKE_FD` and decrements it after its write. Stop
//!   stores `NO_FD`, then waits for `IN_HANDLER == 0` before closing the
//!   eventfd (all `SeqCst`), so no handler can write to a closed, and
//!   possibly reused, fd number.
//! * The loop thread's mask: start (on the loop thread, as the backend
//!   contract says) unblocks `SIGALRM` there, and stop blocks it again if
//!   it was blocked. The loop thread inherits the mask of the thread that
//!   spawned it, and a program that followed the advice below and blocked
//!   `SIGALRM` in its threads before starting us would otherwise have it
//!   blocked everywhere: the alarm would stay pending and no timer would
//!   ever run (`alarms_reach_a_loop_thread_that_inherited_a_blocked_sigalrm`
//!   in `tests/backend_unix.rs` saw exactly that). With every other thread
//!   blocking it, every alarm lands on the loop thread and no other thread
//!   sees an `EINTR`.
//! * Stop order: disarm the itimer; set `SIGALRM` to `SIG_IGN` (which
//!   discards an alarm already pending for a thread that blocks it: left
//!   pending, it would reach the restored disposition, perhaps the default
//!   "terminate"); restore the previous disposition; restore the loop
//!   thread's mask; retire `WAKE_FD` as above; close the eventfd; release
//!   the claim.
//!
//! # Fork
//!
//! In a child the itimer is not inherited (disarmed) and pending signals are
//! cleared, but our handler stays installed, the claim stays set and the
//! eventfd is shared with the parent (a wakeup written by the child would
//! wake the parent's loop), and `IN_HANDLER` may count handlers that were
//! running on threads that do not exist in the child (stop would then wait
//! for ever). [`AlarmBackend::reinit_after_fork`] therefore resets
//! `IN_HANDLER`, gives the handler a fresh eventfd, closes the child's copy
//! of the parent's, and keeps the handler and the claim: the default stop +
//! start would hang or, at best, re-install the handler needlessly.

use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use super::pacing::Pacer;
use super::sigwake::{WakeFd, thread_mask_change, wake_raw_preserving_errno};
use super::{AlarmBackend, MonoNs, StartError, Wakeup};

/// The name in precedence lists.
pub const NAME: &str = "unix";

/// `struct timeval` granularity, in ns.
pub const RESOLUTION_NS: u64 = 1_000;

/// The smallest non-zero `setitimer` interval, in ns (zero would disarm).
pub const MIN_INTERVAL_NS: u64 = 1_000;

/// At most one `SIGALRM` per this many ns (see [`super::pacing`]): 1 ms,
/// chosen by measurement (`cargo bench --bench churn`). At 250 µs a
/// bystander thread's 1 ms sleeps still ended about 0.3 ms late at the
/// median, 4× what they do with `timerfd`; at 1 ms, within about 60 µs of
/// `timerfd`'s (p50 and p99).
pub const SIGNAL_SPACING_NS: u64 = 1_000_000;

/// "No eventfd": the handler writes nowhere.
const NO_FD: RawFd = -1;

/// Set while a started `unix` backend exists in this process.
static CLAIMED: AtomicBool = AtomicBool::new(false);
/// The eventfd the `SIGALRM` handler writes to, or `NO_FD`.
static WAKE_FD: AtomicI32 = AtomicI32::new(NO_FD);
/// `SIGALRM` handlers running right now, on any thread.
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Whether some `unix` backend is started in this process (for probes).
pub fn is_claimed() -> bool {
    CLAIMED.load(Ordering::SeqCst)
}

/// The `SIGALRM` handler: wakes the loop, nothing else.
extern "C" fn on_sigalrm(_signo: libc::c_int) {
    IN_HANDLER.fetch_add(1, Ordering::SeqCst);
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd != NO_FD {
        wake_raw_preserving_errno(fd);
    }
    IN_HANDLER.fetch_sub(1, Ordering::SeqCst);
}

/// `setitimer(ITIMER_REAL)` with a one-shot `value_ns` (0 disarms),
/// rounded up to the microsecond. Returns whether the arming it replaced
/// was still pending: Linux reads the old value and cancels under the lock
/// the expiry handler takes to send `SIGALRM`, so "not pending" means that
/// arming fired (or there was none).
fn set_itimer_real(value_ns: u64) -> Result<bool, Errno> {
    let micros = value_ns.div_ceil(1_000);
    let tv_sec = libc::time_t::try_from(micros / 1_000_000).unwrap_or(libc::time_t::MAX);
    let tv_usec = libc::suseconds_t::try_from(micros % 1_000_000).unwrap_or(0);
    let spec = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval { tv_sec, tv_usec },
    };
    let mut old = std::mem::MaybeUninit::<libc::itimerval>::uninit();
    // SAFETY: `spec` is a valid itimerval; `old` is written on success.
    Errno::result(unsafe { libc::setitimer(libc::ITIMER_REAL, &spec, old.as_mut_ptr()) })?;
    // SAFETY: initialised by the successful setitimer.
    let old = unsafe { old.assume_init() };
    Ok(old.it_value.tv_sec != 0 || old.it_value.tv_usec != 0)
}

/// Whether `ITIMER_REAL` is armed right now (by anyone).
fn itimer_real_armed() -> Result<bool, Errno> {
    let mut cur = std::mem::MaybeUninit::<libc::itimerval>::uninit();
    // SAFETY: getitimer writes the whole struct on success.
    Errno::result(unsafe { libc::getitimer(libc::ITIMER_REAL, cur.as_mut_ptr()) })?;
    // SAFETY: initialised by the successful getitimer.
    let cur = unsafe { cur.assume_init() };
    Ok(cur.it_value.tv_sec != 0 || cur.it_value.tv_usec != 0)
}

/// The host side of a started backend.
#[derive(Debug)]
struct Host {
    /// The eventfd the handler writes to; the backend's `wait_fd`.
    wake: WakeFd,
    /// `SIGALRM`'s disposition before start, restored on stop.
    previous: SigAction,
    /// Whether the loop thread had `SIGALRM` blocked before start (it
    /// inherits the mask of the thread that spawned it); blocked again on
    /// stop.
    loop_thread_blocked: bool,
}

/// The `unix` backend. See the module documentation.
#[derive(Debug)]
pub struct UnixBackend {
    /// `Some` between start and stop; only then is `CLAIMED` ours.
    host: Option<Host>,
    /// `setitimer` calls since start (re-arms and disarms).
    rearm_calls: u64,
    /// The `SIGALRM` rate cap; reset by start.
    pacer: Pacer,
}

impl Default for UnixBackend {
    fn default() -> UnixBackend {
        UnixBackend::with_spacing(SIGNAL_SPACING_NS)
    }
}

fn start_error(errno: Option<Errno>, reason: &str) -> StartError {
    StartError {
        backend: NAME,
        errno,
        reason: reason.to_owned(),
    }
}

impl UnixBackend {
    /// A stopped backend with the default rate cap,
    /// [`SIGNAL_SPACING_NS`].
    pub fn new() -> UnixBackend {
        UnixBackend::default()
    }

    /// A stopped backend whose alarms are at least `spacing_ns` apart; 0
    /// turns the cap off. For a program that blocks `SIGALRM` in all its
    /// own threads, so that every alarm lands on the loop thread and the
    /// cap protects no one; start it with
    /// [`crate::TimerLoop::start_with`].
    pub fn with_spacing(spacing_ns: u64) -> UnixBackend {
        UnixBackend {
            host: None,
            rearm_calls: 0,
            pacer: Pacer::new(spacing_ns),
        }
    }

    /// The minimum time between two alarms, ns (0: uncapped).
    pub fn spacing_ns(&self) -> u64 {
        self.pacer.spacing_ns()
    }

    /// Start's steps once the claim is held; on failure, undoes them and
    /// leaves the claim to the caller.
    fn acquire(&mut self) -> Result<(), StartError> {
        match itimer_real_armed() {
            Ok(false) => {}
            Ok(true) => {
                return Err(start_error(
                    Some(Errno::EBUSY),
                    "ITIMER_REAL is already armed by the program",
                ));
            }
            Err(e) => return Err(start_error(Some(e), "getitimer(ITIMER_REAL) failed")),
        }
        let wake = WakeFd::new().map_err(|e| start_error(Some(e), "eventfd failed"))?;
        WAKE_FD.store(wake.raw(), Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(on_sigalrm),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler only touches atomics and calls write(2): it is
        // async-signal-safe.
        let previous = match unsafe { sigaction(Signal::SIGALRM, &action) } {
            Ok(previous) => previous,
            Err(e) => {
                WAKE_FD.store(NO_FD, Ordering::SeqCst);
                return Err(start_error(Some(e), "sigaction(SIGALRM) failed"));
            }
        };
        let loop_thread_blocked = match thread_mask_change(libc::SIGALRM, libc::SIG_UNBLOCK) {
            Ok(was) => was,
            Err(e) => {
                // SAFETY: the disposition the program had; runs no code of ours.
                let _ = unsafe { sigaction(Signal::SIGALRM, &previous) };
                WAKE_FD.store(NO_FD, Ordering::SeqCst);
                return Err(start_error(Some(e), "pthread_sigmask(SIG_UNBLOCK) failed"));
            }
        };
        self.host = Some(Host {
            wake,
            previous,
            loop_thread_blocked,
        });
        self.rearm_calls = 0;
        self.pacer = Pacer::new(self.pacer.spacing_ns());
        Ok(())
    }
}

impl AlarmBackend for UnixBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self) -> Result<(), StartError> {
        if self.host.is_some() {
            return Ok(());
        }
        if CLAIMED
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(start_error(
                Some(Errno::EBUSY),
                "another `unix` backend is live in this process (setitimer(ITIMER_REAL) and SIGALRM are process-wide)",
            ));
        }
        self.acquire().inspect_err(|_| {
            CLAIMED.store(false, Ordering::SeqCst);
        })
    }

    fn stop(&mut self) {
        let Some(host) = self.host.take() else {
            return;
        };
        let _ = set_itimer_real(0);
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: installing SIG_IGN, then the disposition the program had:
        // neither runs code of ours.
        unsafe {
            let _ = sigaction(Signal::SIGALRM, &ignore);
            let _ = sigaction(Signal::SIGALRM, &host.previous);
        }
        if host.loop_thread_blocked {
            let _ = thread_mask_change(libc::SIGALRM, libc::SIG_BLOCK);
        }
        WAKE_FD.store(NO_FD, Ordering::SeqCst);
        while IN_HANDLER.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        drop(host.wake);
        CLAIMED.store(false, Ordering::SeqCst);
    }

    fn rearm(&mut self, deadline: Option<MonoNs>) -> Result<(), Errno> {
        if self.host.is_none() {
            return Err(Errno::EBADF);
        }
        let settle = match deadline {
            Some(d) => self.pacer.must_settle(d),
            None => true,
        };
        if settle {
            // Disarm first; the old value tells whether it had fired.
            self.rearm_calls += 1;
            let still_armed = set_itimer_real(0)?;
            self.pacer.replaced(still_armed, None);
        }
        let Some(deadline) = deadline else {
            return Ok(());
        };
        let left = self
            .pacer
            .paced(deadline)
            .saturating_since(MonoNs::host_now())
            .max(MIN_INTERVAL_NS)
            .next_multiple_of(RESOLUTION_NS);
        self.rearm_calls += 1;
        let still_armed = set_itimer_real(left)?;
        let fires_by = MonoNs(MonoNs::host_now().0.saturating_add(left));
        self.pacer.replaced(still_armed, Some(fires_by));
        Ok(())
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        self.host.as_ref().map(|h| h.wake.as_fd())
    }

    fn consume(&mut self) -> Result<Wakeup, Errno> {
        self.host.as_ref().ok_or(Errno::EBADF)?.wake.consume()
    }

    fn resolution_ns(&self) -> u64 {
        RESOLUTION_NS
    }

    fn min_rearm_ns(&self) -> u64 {
        MIN_INTERVAL_NS
    }

    fn rearm_calls(&self) -> u64 {
        self.rearm_calls
    }

    fn reinit_after_fork(&mut self) -> Result<(), StartError> {
        let Some(host) = self.host.as_mut() else {
            return self.start();
        };
        // Handlers counted here ran on threads the child does not have.
        IN_HANDLER.store(0, Ordering::SeqCst);
        let fresh = match WakeFd::new() {
            Ok(fresh) => fresh,
            Err(e) => {
                // Do not keep waking the parent: give everything back.
                self.stop();
                return Err(start_error(Some(e), "eventfd failed"));
            }
        };
        WAKE_FD.store(fresh.raw(), Ordering::SeqCst);
        // Closes the child's copy of the parent's eventfd only.
        drop(std::mem::replace(&mut host.wake, fresh));
        self.rearm_calls = 0;
        // The child does not inherit the parent's itimer.
        self.pacer.forget_arming();
        Ok(())
    }
}

impl Drop for UnixBackend {
    fn drop(&mut self) {
        self.stop();
    }
}
