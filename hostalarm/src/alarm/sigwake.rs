//! Wake-up plumbing shared by the backends whose host mechanism is not a
//! file descriptor of its own (`unix`, `mmtimer`, `timerqueue`): an
//! `eventfd` the mechanism writes to and the timer loop polls, plus the
//! small signal-mask helpers `dynticks` uses.
//!
//! # Invariants
//!
//! * A [`WakeFd`] is non-blocking and close-on-exec. Writing to it never
//!   blocks: when the 64-bit counter is saturated the write fails with
//!   `EAGAIN`, and the fd is then readable anyway, so no wakeup is lost.
//! * [`wake_raw_preserving_errno`] is async-signal-safe: one `write(2)` and
//!   an errno save/restore, no allocation, no lock. It is the only thing the
//!   `unix` backend's `SIGALRM` handler does besides two atomic operations.
//! * No lock lives here.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::Wakeup;

/// The value one wakeup adds to the eventfd counter.
const ONE_WAKEUP: u64 = 1;

/// A non-blocking, close-on-exec `eventfd` used as a wakeup counter: each
/// [`wake_raw_preserving_errno`] on its [`WakeFd::raw`] number adds one,
/// [`WakeFd::drain`] reads and resets the count.
#[derive(Debug)]
pub(crate) struct WakeFd {
    /// The eventfd (counter semantics, not `EFD_SEMAPHORE`).
    fd: OwnedFd,
}

impl WakeFd {
    /// Creates the eventfd with a zero counter.
    pub(crate) fn new() -> Result<WakeFd, Errno> {
        let fd = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
        Ok(WakeFd { fd: fd.into() })
    }

    /// The raw descriptor number, for a signal handler or an emulation
    /// thread that must not own the fd.
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Reads and resets the counter: the number of wakeups since the last
    /// drain, 0 when there were none (`EAGAIN`).
    pub(crate) fn drain(&self) -> Result<u64, Errno> {
        let mut buf = [0u8; 8];
        match nix::unistd::read(&self.fd, &mut buf) {
            Ok(8) => Ok(u64::from_ne_bytes(buf)),
            // An eventfd read is all 8 bytes or an error.
            Ok(_) => Err(Errno::EIO),
            Err(Errno::EAGAIN) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// `AlarmBackend::consume` of a backend whose alarm writes this fd:
    /// the wakeups since the last call; the wall clock is never reported.
    pub(crate) fn consume(&self) -> Result<Wakeup, Errno> {
        Ok(Wakeup {
            expirations: self.drain()?,
            wall_clock_stepped: false,
        })
    }
}

impl AsFd for WakeFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Adds one wakeup to the eventfd `fd` from any context, including a signal
/// handler: one `write(2)`, errors ignored (a saturated counter or a closed
/// fd both mean there is nothing more useful to do), `errno` preserved so
/// the interrupted code never sees ours.
pub(crate) fn wake_raw_preserving_errno(fd: RawFd) {
    // SAFETY: `__errno_location` returns this thread's errno slot, valid for
    // the thread's lifetime; reading it is async-signal-safe.
    let saved = unsafe { *libc::__errno_location() };
    let value = ONE_WAKEUP.to_ne_bytes();
    // SAFETY: `write(2)` is async-signal-safe; the buffer is 8 valid bytes on
    // our stack. A stale fd number is excluded by the caller's protocol (see
    // `unix.rs`), so at worst this fails with EBADF, which we ignore.
    let _ = unsafe { libc::write(fd, value.as_ptr().cast(), value.len()) };
    // SAFETY: as above; restoring the interrupted code's errno.
    unsafe { *libc::__errno_location() = saved };
}

/// A signal set holding only `signo` (which may be a real-time signal, which
/// `nix::sys::signal::SigSet` cannot name).
pub(crate) fn single_signal_set(signo: libc::c_int) -> Result<libc::sigset_t, Errno> {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the whole set it is given.
    Errno::result(unsafe { libc::sigemptyset(set.as_mut_ptr()) })?;
    // SAFETY: initialised by sigemptyset just above.
    let mut set = unsafe { set.assume_init() };
    // SAFETY: `set` is a valid, initialised sigset_t; sigaddset validates
    // `signo` and fails with EINVAL when it is out of range.
    Errno::result(unsafe { libc::sigaddset(&mut set, signo) })?;
    Ok(set)
}

/// Changes the calling thread's signal mask for `signo` (`how` is
/// `SIG_BLOCK` or `SIG_UNBLOCK`) and reports whether it was blocked before.
pub(crate) fn thread_mask_change(signo: libc::c_int, how: libc::c_int) -> Result<bool, Errno> {
    let set = single_signal_set(signo)?;
    let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `set` is initialised; `old` is written by pthread_sigmask on
    // success before we read it. pthread_sigmask returns the error number.
    let rc = unsafe { libc::pthread_sigmask(how, &set, old.as_mut_ptr()) };
    if rc != 0 {
        return Err(Errno::from_raw(rc));
    }
    // SAFETY: pthread_sigmask succeeded, so `old` is initialised.
    let old = unsafe { old.assume_init() };
    // SAFETY: `old` is a valid sigset_t and `signo` was accepted above.
    Ok(unsafe { libc::sigismember(&old, signo) } == 1)
}
