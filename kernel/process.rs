//! Processes: the handle's operations: LWPs, status, and exit.
//!
//! Models the parts of illumos `proc_t` the timer subsystem touches.
//!
//! The process structure and its locks are in [`crate::proc`]; the lock
//! order is stated once, in [`crate`].
//!
//! # Exit
//!
//! [`Process::exit`] (also run when the process's own [`Process`] handle
//! drops) marks the process exited (`exited` under `p_lock`, and the
//! `exiting` flag that port waiters read under a port's queue lock), stops
//! the SIGEV_THREAD service from starting callbacks, wakes every waiter
//! (signal and port waiters return `EINTR`), runs `timer_exit` (every timer
//! deleted through the normal delete path), closes the ports it owns
//! (other processes' timers on them are detached), joins its service
//! threads, discards the signal queue, ends its LWPs and removes the
//! process from the kernel.
//!
//! A syscall on an exited process fails with `ESRCH` at the first step
//! that needs the process (its lock, a timer or port of its own); the
//! checks a call makes on its arguments alone before that step still come
//! first, in the same order as for a live process (`timer_create`'s clock
//! and sigevent, `timer_settime`'s flags and timespecs, a negative timer
//! id, a malformed timeout, `sigaction`'s `SIG_*` value). `sigprocmask`'s
//! `how`, `sigaction`'s signal number, `port_alert`'s flags and
//! `port_getn`'s counts are checked after the process, so they give
//! `ESRCH`. `clock_gettime` and `clock_getres` read the system's clocks
//! and need no process: they still answer.
//!
//! The handle a service thread gives to callbacks and handlers
//! (`Process::service_view`) does not exit the process when dropped.

use nix::errno::Errno;

use crate::sync::atomic::Ordering;

pub use crate::ids::{Credentials, LwpId, Pid};
pub use crate::proc::Process;

/// Resource counts of a process (see [`Process::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStats {
    /// Live timers.
    pub timers: usize,
    /// Size of the timer table (slots allocated).
    pub table_slots: usize,
    /// Signal entries allocated (one per signal timer, plus orphans still
    /// queued).
    pub sig_entries: usize,
    /// Live LWPs.
    pub lwps: usize,
}

/// The kernel-side state of one timer (see [`Process::timer_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerStatus {
    /// The clock id it was created on.
    pub clock: i32,
    /// `IT_*` flags: how it notifies.
    pub flags: crate::itimer::ItFlags,
    /// Expirations behind the outstanding notification (0: none outstanding).
    pub pending: u64,
    /// The overrun latched at the last consumption.
    pub overrun: i32,
    /// Every expiration the clock backend has reported for this timer
    /// (saturating). For a timer that notifies, notifications consumed +
    /// overruns latched with them + `pending` equals it.
    pub expirations: u64,
    /// The LWP it is bound to.
    pub lwp: Option<LwpId>,
}

impl Process {
    /// This process's id.
    pub fn pid(&self) -> Pid {
        self.shared.pid
    }

    /// Its credentials.
    pub fn credentials(&self) -> Credentials {
        self.shared.cred
    }

    /// Creates an LWP.
    pub fn lwp_create(&self) -> Result<LwpId, Errno> {
        let mut st = self.shared.lock_live()?;
        let id = LwpId(st.next_lwp);
        st.next_lwp = st.next_lwp.checked_add(1).ok_or(Errno::EAGAIN)?;
        st.lwps.insert(id);
        Ok(id)
    }

    /// Ends an LWP: timers bound to it are unbound (`timer_lwpexit`) and
    /// keep running. `EINVAL` for an unknown LWP. The last LWP's exit is
    /// the process's, as in illumos (`lwp_exit` calls `exit` when it is
    /// the only LWP left): the process then exits (see [`Process::exit`]).
    pub fn lwp_exit(&self, lwp: LwpId) -> Result<(), Errno> {
        let last = {
            let mut st = self.shared.lock_live()?;
            if !st.lwps.remove(&lwp) {
                return Err(Errno::EINVAL);
            }
            st.lwps.is_empty()
        };
        crate::itimer::timer_lwpexit(&self.shared, lwp);
        if last {
            self.exit();
        }
        Ok(())
    }

    /// Resource counts, for leak checks and the course book's traces.
    pub fn stats(&self) -> ProcStats {
        let st = self.shared.p_lock.lock();
        ProcStats {
            timers: st.timers.live_count(),
            table_slots: st.timers.len(),
            sig_entries: st.sig.entries_allocated(),
            lwps: st.lwps.len(),
        }
    }

    /// The kernel-side state of timer `tid` (not a POSIX call: the model's
    /// window for tests, traces and the course book). `EINVAL` for a bad id.
    pub fn timer_status(&self, tid: i32) -> Result<TimerStatus, Errno> {
        let p = &self.shared;
        let it = crate::lock::timer_grab(p, tid, crate::lock::GrabMode::Syscall)?;
        let status = {
            let s = it.core.it_mutex.lock();
            TimerStatus {
                clock: it.clock,
                flags: s.flags(it.core.notify),
                pending: s.pending,
                overrun: s.overrun,
                expirations: s.expirations,
                lwp: s.lwp,
            }
        };
        crate::lock::timer_release(p, &it);
        Ok(status)
    }

    /// Exits the process: waiters woken with `EINTR`, `timer_exit`, its
    /// ports closed, signal queue discarded, no LWP left, removed from the
    /// kernel. Idempotent.
    pub fn exit(&self) {
        {
            let mut st = self.shared.p_lock.lock();
            if st.exited {
                return;
            }
            st.exited = true;
            self.shared.exiting.store(true, Ordering::SeqCst);
            self.shared.p_sigcv.notify_all();
        }
        let p = &self.shared;
        crate::notify_thread::notify_stop(p);
        crate::port::port_exit_wake(p);
        crate::itimer::timer_exit(p);
        crate::port::port_exit_close(p);
        crate::notify_thread::notify_exit(p);
        crate::delivery::delivery_exit(p);
        {
            let mut st = self.shared.p_lock.lock();
            st.sig.discard_all();
            st.lwps.clear();
        }
        self.shared.kernel.remove_process(self.shared.pid);
    }

    /// Whether the process has exited.
    pub fn has_exited(&self) -> bool {
        self.shared.p_lock.lock().exited
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.exits_on_drop {
            self.exit();
        }
    }
}
