//! The `dynticks` alarm backend: a POSIX timer (`timer_create(2)` on
//! `CLOCK_MONOTONIC`) whose signal is directed at the loop thread
//! (`SIGEV_THREAD_ID`) and consumed through a `signalfd(2)`.
//!
//! Models QEMU's `dynticks` entry in `alarm_timers[]` (`dynticks_start_timer`
//! / `dynticks_rearm_timer` in `qemu-timer.c`). Deliberate deviations: QEMU
//! used `SIGALRM` with a process-directed `SIGEV_SIGNAL` and a handler, and
//! armed relative delays after checking the time left; here the signal is
//! our own real-time signal, thread-directed, read through a signalfd, and
//! the timer is armed with absolute deadlines (`TIMER_ABSTIME`).
//!
//! # Host mechanism
//!
//! * The signal is [`dynticks_signal`]`()` = `SIGRTMIN + `[`SIGNAL_OFFSET`]
//!   (`SIGRTMIN` is the first real-time signal glibc leaves to programs, so
//!   this is usually signal 38). It is never `SIGALRM`, so it cannot collide
//!   with the `unix` backend. Offset 4 rather than 0 because libraries that
//!   want "a real-time signal" tend to take the first one.
//! * [`AlarmBackend::start`] runs **on the loop thread** (the contract with
//!   the timer loop: start, rearm, consume and stop are all called there).
//!   It records the thread's id (`gettid`), blocks the signal in that
//!   thread's mask, opens a non-blocking, close-on-exec signalfd for it, and
//!   creates the timer with `SIGEV_THREAD_ID` naming that thread.
//! * Blocking the signal in the loop thread alone is enough: a
//!   thread-directed signal can only ever be delivered to, or be pending
//!   on, its target thread, so no other thread's mask matters. Pending and
//!   blocked there, it is exactly what the signalfd reports; its default
//!   disposition (terminate) can never act.
//! * A signalfd reports the signals pending for the thread that *reads or
//!   polls* it. Hence the loop thread must also be the one that polls
//!   [`AlarmBackend::wait_fd`] and calls [`AlarmBackend::consume`].
//! * A POSIX timer queues at most one signal at a time; expirations that
//!   happen while it is pending are counted as overruns, which the signalfd
//!   reports (`ssi_overrun`), so `Wakeup::expirations` is `1 + overrun`.
//!   (A one-shot re-armed while its signal is pending: older kernels count
//!   an overrun; Linux 6.13 and later discard the stale signal instead.)
//!
//! # Resolution and limits
//!
//! Nominally 1 ns; [`AlarmBackend::resolution_ns`] reports
//! `clock_getres(CLOCK_MONOTONIC)`. `min_rearm_ns` is 0: an absolute
//! deadline in the past fires at once. Signal delivery adds a little
//! latency over a timerfd (signal queueing, signalfd read). One instance per
//! thread: two on one thread would read each other's signals, so a second
//! start on the same thread fails with `EBUSY`. Start also fails with
//! `EBUSY` when the program has installed a handler for the signal (it is
//! then the program's). The timer's `si_value` carries no meaning.
//!
//! # State machine and invariants
//!
//! `Stopped` (`host` `None`) --start (loop thread)--> `Started` (signal
//! blocked in the loop thread, `CLAIMED_HERE` set there, timer disarmed)
//! --rearm/consume--> `Started` --stop (loop thread)--> `Stopped` (timer
//! deleted, pending signals drained, mask restored, claim cleared). No lock:
//! all state is confined to the loop thread. If `stop` runs on another
//! thread (e.g. the backend is dropped elsewhere, against the contract), it
//! still deletes the timer and closes the fd, but cannot restore another
//! thread's mask or claim: the signal stays blocked on the old loop thread,
//! which is harmless.
//!
//! # Fork
//!
//! POSIX timers are not inherited by a child and pending signals are
//! cleared, but the signalfd and the forking thread's mask and claim are
//! copied. [`AlarmBackend::reinit_after_fork`] therefore never calls
//! `timer_delete` on the parent's timer id (in the child that id is
//! unallocated or, worse, could name a timer the child created since),
//! closes the inherited signalfd, undoes the inherited mask and claim on the
//! calling thread when it has them (safe: nothing can be pending), and
//! starts afresh on the calling thread.

use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use super::sigwake::{single_signal_set, thread_mask_change};
use super::{AlarmBackend, MonoNs, StartError, Wakeup, monotonic_resolution_ns};

/// The name in precedence lists.
pub const NAME: &str = "dynticks";

/// The backend's signal is `SIGRTMIN + SIGNAL_OFFSET`.
pub const SIGNAL_OFFSET: libc::c_int = 4;

/// How many signalfd records one `read` takes at most.
const SIGINFO_BATCH: usize = 8;

thread_local! {
    /// Whether a started `dynticks` backend is bound to this thread.
    static CLAIMED_HERE: Cell<bool> = const { Cell::new(false) };
}

/// The real-time signal this backend uses: `SIGRTMIN + SIGNAL_OFFSET`.
pub fn dynticks_signal() -> libc::c_int {
    libc::SIGRTMIN() + SIGNAL_OFFSET
}

/// The calling thread's kernel thread id.
fn current_tid() -> libc::pid_t {
    nix::unistd::gettid().as_raw()
}

/// A POSIX timer id (`timer_t`, an opaque pointer-sized handle).
#[derive(Debug)]
struct PosixTimer(libc::timer_t);

// SAFETY: a timer_t is a per-process handle, not a pointer to memory this
// thread owns; any thread of the process may pass it to timer_settime or
// timer_delete.
unsafe impl Send for PosixTimer {}

/// The host side of a started backend.
#[derive(Debug)]
struct Host {
    /// The timer (deleted on stop, forgotten after fork).
    timer: PosixTimer,
    /// Non-blocking signalfd for the signal; the backend's `wait_fd`.
    sigfd: OwnedFd,
    /// The loop thread's id: the timer's target.
    tid: libc::pid_t,
    /// The signal number.
    signo: libc::c_int,
    /// The signal was unblocked in the loop thread before start: unblock it
    /// again on stop.
    unblock_on_stop: bool,
}

/// The `dynticks` backend. See the module documentation.
#[derive(Debug)]
pub struct DynticksBackend {
    /// `Some` between start and stop.
    host: Option<Host>,
    /// `timer_settime` calls since start.
    rearm_calls: u64,
    /// `clock_getres(CLOCK_MONOTONIC)` in ns, sampled at start (1 before).
    resolution_ns: u64,
}

impl Default for DynticksBackend {
    fn default() -> Self {
        DynticksBackend::new()
    }
}

fn start_error(errno: Option<Errno>, reason: String) -> StartError {
    StartError {
        backend: NAME,
        errno,
        reason,
    }
}

/// Whether the program installed a handler for `signo` (default and ignore
/// leave it free for us).
fn has_foreign_handler(signo: libc::c_int) -> Result<bool, Errno> {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a null new action only queries; `old` is written on success.
    Errno::result(unsafe { libc::sigaction(signo, std::ptr::null(), old.as_mut_ptr()) })?;
    // SAFETY: sigaction succeeded, so `old` is initialised.
    let handler = unsafe { old.assume_init() }.sa_sigaction;
    Ok(handler != libc::SIG_DFL && handler != libc::SIG_IGN)
}

/// Reads every pending record from the signalfd; returns the expirations
/// they stand for (`1 + overrun` each, for records of `signo`).
fn drain_signalfd(sigfd: &OwnedFd, signo: libc::c_int) -> Result<u64, Errno> {
    let record = std::mem::size_of::<libc::signalfd_siginfo>();
    let mut expirations = 0u64;
    loop {
        // SAFETY: signalfd_siginfo is plain old data; all-zero is valid.
        let mut buf: [libc::signalfd_siginfo; SIGINFO_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: the buffer is valid for its full size in bytes, and the
        // kernel writes whole records only.
        let n = unsafe {
            libc::read(
                sigfd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                record * SIGINFO_BATCH,
            )
        };
        if n < 0 {
            return match Errno::last() {
                Errno::EAGAIN => Ok(expirations),
                Errno::EINTR => continue,
                e => Err(e),
            };
        }
        let records = usize::try_from(n).unwrap_or(0) / record;
        for info in &buf[..records] {
            if i64::from(info.ssi_signo) == i64::from(signo) {
                expirations = expirations.saturating_add(1 + u64::from(info.ssi_overrun));
            }
        }
        if records < SIGINFO_BATCH {
            return Ok(expirations);
        }
    }
}

impl DynticksBackend {
    /// A stopped backend; [`AlarmBackend::start`] must be called on the loop
    /// thread.
    pub fn new() -> DynticksBackend {
        DynticksBackend {
            host: None,
            rearm_calls: 0,
            resolution_ns: 1,
        }
    }

    /// Start's host steps once the claim is held; on failure, undoes what
    /// it did (mask) and leaves the claim to the caller.
    fn acquire(&mut self, signo: libc::c_int) -> Result<(), StartError> {
        match has_foreign_handler(signo) {
            Ok(false) => {}
            Ok(true) => {
                return Err(start_error(
                    Some(Errno::EBUSY),
                    format!(
                        "signal {signo} (SIGRTMIN+{SIGNAL_OFFSET}) has a handler installed by the program"
                    ),
                ));
            }
            Err(e) => return Err(start_error(Some(e), "sigaction query failed".into())),
        }
        let was_blocked = thread_mask_change(signo, libc::SIG_BLOCK)
            .map_err(|e| start_error(Some(e), "pthread_sigmask(SIG_BLOCK) failed".into()))?;
        let undo_mask = || {
            if !was_blocked {
                // Nothing of ours can be pending yet (no timer exists).
                let _ = thread_mask_change(signo, libc::SIG_UNBLOCK);
            }
        };
        let set = match single_signal_set(signo) {
            Ok(set) => set,
            Err(e) => {
                undo_mask();
                return Err(start_error(Some(e), "sigaddset failed".into()));
            }
        };
        // SAFETY: `set` is an initialised sigset_t; fd -1 asks for a new
        // signalfd, whose ownership we take only on success.
        let raw = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if raw < 0 {
            let e = Errno::last();
            undo_mask();
            return Err(start_error(Some(e), "signalfd failed".into()));
        }
        // SAFETY: `raw` is a fresh fd nobody else owns.
        let sigfd = unsafe { OwnedFd::from_raw_fd(raw) };
        let tid = current_tid();
        // SAFETY: sigevent is plain old data; zero is a valid start.
        let mut sev: libc::sigevent = unsafe { std::mem::zeroed() };
        sev.sigev_notify = libc::SIGEV_THREAD_ID;
        sev.sigev_signo = signo;
        sev.sigev_notify_thread_id = tid;
        let mut timer = std::mem::MaybeUninit::<libc::timer_t>::uninit();
        // SAFETY: `sev` is fully initialised; `timer` is written on success.
        let rc = unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, timer.as_mut_ptr()) };
        if rc < 0 {
            let e = Errno::last();
            drop(sigfd);
            undo_mask();
            return Err(start_error(
                Some(e),
                "timer_create(CLOCK_MONOTONIC, SIGEV_THREAD_ID) failed".into(),
            ));
        }
        // SAFETY: timer_create succeeded and initialised `timer`.
        let timer = PosixTimer(unsafe { timer.assume_init() });
        self.host = Some(Host {
            timer,
            sigfd,
            tid,
            signo,
            unblock_on_stop: !was_blocked,
        });
        self.rearm_calls = 0;
        self.resolution_ns = monotonic_resolution_ns();
        Ok(())
    }

    /// Releases the mask and claim of `host` if we are on its thread.
    fn release_thread_state(host: &Host) {
        if current_tid() != host.tid {
            return;
        }
        if host.unblock_on_stop {
            let _ = thread_mask_change(host.signo, libc::SIG_UNBLOCK);
        }
        CLAIMED_HERE.with(|c| c.set(false));
    }
}

impl AlarmBackend for DynticksBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self) -> Result<(), StartError> {
        if self.host.is_some() {
            return Ok(());
        }
        let signo = dynticks_signal();
        if signo > libc::SIGRTMAX() {
            return Err(start_error(
                Some(Errno::EINVAL),
                format!("SIGRTMIN+{SIGNAL_OFFSET} is beyond SIGRTMAX on this host"),
            ));
        }
        if CLAIMED_HERE.with(|c| c.replace(true)) {
            return Err(start_error(
                Some(Errno::EBUSY),
                "this thread already runs a dynticks backend (one per thread)".into(),
            ));
        }
        self.acquire(signo).inspect_err(|_| {
            CLAIMED_HERE.with(|c| c.set(false));
        })
    }

    fn stop(&mut self) {
        let Some(host) = self.host.take() else {
            return;
        };
        // SAFETY: the timer id came from timer_create in this process and
        // is deleted exactly once (host was taken out of self).
        unsafe { libc::timer_delete(host.timer.0) };
        // No new signal can be generated now; drain what is pending (only
        // readable on the target thread) before the mask is restored, or
        // the default disposition would terminate the process.
        if current_tid() == host.tid {
            let _ = drain_signalfd(&host.sigfd, host.signo);
        }
        Self::release_thread_state(&host);
    }

    fn rearm(&mut self, deadline: Option<MonoNs>) -> Result<(), Errno> {
        let host = self.host.as_ref().ok_or(Errno::EBADF)?;
        self.rearm_calls += 1;
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let (value, flags) = match deadline {
            Some(d) => (*d.to_abs_timespec().as_ref(), libc::TIMER_ABSTIME),
            None => (zero, 0),
        };
        let spec = libc::itimerspec {
            it_interval: zero,
            it_value: value,
        };
        // SAFETY: the timer id is live (host is Some); `spec` is valid and
        // the old value is not requested.
        Errno::result(unsafe {
            libc::timer_settime(host.timer.0, flags, &spec, std::ptr::null_mut())
        })
        .map(drop)
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        self.host.as_ref().map(|h| h.sigfd.as_fd())
    }

    fn consume(&mut self) -> Result<Wakeup, Errno> {
        let host = self.host.as_ref().ok_or(Errno::EBADF)?;
        Ok(Wakeup {
            expirations: drain_signalfd(&host.sigfd, host.signo)?,
            wall_clock_stepped: false,
        })
    }

    fn resolution_ns(&self) -> u64 {
        self.resolution_ns
    }

    fn min_rearm_ns(&self) -> u64 {
        0
    }

    fn rearm_calls(&self) -> u64 {
        self.rearm_calls
    }

    fn reinit_after_fork(&mut self) -> Result<(), StartError> {
        if let Some(host) = self.host.take() {
            // The parent's timer does not exist here: forget its id.
            // The signalfd is a copy: closing it leaves the parent's alone.
            // Nothing is pending after fork, so undoing the inherited mask
            // (on the forking thread, which keeps its tid-independent
            // claim) is safe.
            if CLAIMED_HERE.with(|c| c.get()) {
                if host.unblock_on_stop {
                    let _ = thread_mask_change(host.signo, libc::SIG_UNBLOCK);
                }
                CLAIMED_HERE.with(|c| c.set(false));
            }
            drop(host.sigfd);
        }
        self.start()
    }
}

impl Drop for DynticksBackend {
    fn drop(&mut self) {
        self.stop();
    }
}
