//! The host eventfd behind the notify handshake's [`Waker`] trait.
//!
//! An eventfd's counter is the sticky wakeup the handshake in
//! [`crate::notify`] requires: a `write` before the loop polls still makes
//! the poll return. The loop drains it right after waking.
//!
//! # Locks
//!
//! `fd` is a leaf lock held across one non-blocking `write` or `read`. It
//! exists so a forked child can close its copy (the parent shares the
//! eventfd's counter); in the parent the descriptor lives as long as the
//! loop.

use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};

use itimer_sync::Mutex;

use crate::notify::Waker;

/// The eventfd behind the notify handshake: a sticky waker (its counter
/// stays readable until drained).
#[derive(Debug)]
pub struct EventFdWaker {
    /// `None` once closed in a forked child. Leaf lock.
    fd: Mutex<Option<EventFd>>,
}

impl EventFdWaker {
    /// A non-blocking, close-on-exec eventfd.
    pub fn new() -> Result<Self, Errno> {
        let fd = EventFd::from_value_and_flags(0, EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
        Ok(EventFdWaker {
            fd: Mutex::new(Some(fd)),
        })
    }

    pub(crate) fn raw_fd(&self) -> Option<RawFd> {
        self.fd.lock().as_ref().map(|f| f.as_fd().as_raw_fd())
    }

    /// Resets the counter (non-blocking; nothing to read is fine).
    pub(crate) fn drain(&self) {
        if let Some(fd) = &*self.fd.lock() {
            // EAGAIN: a stray readiness already drained. Nothing else can
            // fail on an eventfd read of 8 bytes.
            let _ = fd.read();
        }
    }

    /// Closes the child's copy after fork. False if the lock was held at
    /// fork time (the descriptor then leaks; it is never used again).
    pub(crate) fn close_after_fork(&self) -> bool {
        match self.fd.try_lock() {
            Some(mut g) => {
                g.take();
                true
            }
            None => false,
        }
    }
}

impl Waker for EventFdWaker {
    fn wake(&self) {
        if let Some(fd) = &*self.fd.lock() {
            // EAGAIN only if the counter would overflow 2^64-2: it is
            // readable then anyway, which is all a kick needs.
            let _ = fd.write(1);
        }
    }
}
