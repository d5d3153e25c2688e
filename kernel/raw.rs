//! The raw syscall layer: ABI numbers and `#[repr(C)]` structures in, an
//! errno out. Every invalid combination a C caller could pass is reachable
//! here, and each gets its errno, never a panic.
//!
//! Obtain it with [`Process::raw`]. The typed layer ([`crate::typed`]) is
//! built on these calls.

use nix::errno::Errno;

use crate::abi::{Itimerspec, Sigevent, Siginfo, Timespec};
use crate::process::{LwpId, Process};
use crate::sigqueue::{Disposition, SigSet};
use crate::time::Nsec;
use crate::{itimer, signal};

/// `SIG_DFL` for [`RawSyscalls::sigaction`].
pub const SIG_DFL: i32 = 0;
/// `SIG_IGN` for [`RawSyscalls::sigaction`].
pub const SIG_IGN: i32 = 1;

/// The raw syscalls of one process.
#[derive(Debug, Clone, Copy)]
pub struct RawSyscalls<'a> {
    proc: &'a Process,
}

impl Process {
    /// The raw, ABI-number syscall layer of this process.
    pub fn raw(&self) -> RawSyscalls<'_> {
        RawSyscalls { proc: self }
    }
}

impl RawSyscalls<'_> {
    /// `timer_create(clock, evp, &timerid)`: returns the new timer id.
    pub fn timer_create(&self, clock: i32, evp: Option<&Sigevent>) -> Result<i32, Errno> {
        itimer::timer_create(&self.proc.shared, clock, evp)
    }

    /// `timer_settime(tid, flags, value, &old)`: returns the old setting.
    pub fn timer_settime(
        &self,
        tid: i32,
        flags: i32,
        value: &Itimerspec,
    ) -> Result<Itimerspec, Errno> {
        itimer::timer_settime(&self.proc.shared, tid, flags, value).map(|o| o.to_raw())
    }

    /// `timer_gettime(tid, &cur)`.
    pub fn timer_gettime(&self, tid: i32) -> Result<Itimerspec, Errno> {
        itimer::timer_gettime(&self.proc.shared, tid).map(|c| c.to_raw())
    }

    /// `timer_getoverrun(tid)`.
    pub fn timer_getoverrun(&self, tid: i32) -> Result<i32, Errno> {
        itimer::timer_getoverrun(&self.proc.shared, tid)
    }

    /// `timer_delete(tid)`.
    pub fn timer_delete(&self, tid: i32) -> Result<(), Errno> {
        itimer::timer_delete(&self.proc.shared, tid)
    }

    /// `timer_lwpbind(tid)` on behalf of LWP `lwp`.
    pub fn timer_lwpbind(&self, tid: i32, lwp: i32) -> Result<(), Errno> {
        itimer::timer_lwpbind(&self.proc.shared, tid, LwpId(lwp))
    }

    /// `clock_gettime(clock, &ts)`.
    pub fn clock_gettime(&self, clock: i32) -> Result<Timespec, Errno> {
        self.proc
            .registry()
            .clock_gettime(clock)
            .map(Nsec::to_timespec)
    }

    /// `clock_settime(clock, &ts)`: `EINVAL` unknown clock, `EPERM`
    /// unprivileged, `EINVAL` bad timespec, then the backend's answer.
    pub fn clock_settime(&self, clock: i32, ts: &Timespec) -> Result<(), Errno> {
        drop(self.proc.shared.lock_live()?);
        self.proc
            .registry()
            .clock_settime(&self.proc.shared.cred, clock, ts)
    }

    /// `clock_getres(clock, &res)`.
    pub fn clock_getres(&self, clock: i32) -> Result<Timespec, Errno> {
        self.proc
            .registry()
            .clock_getres(clock)
            .map(Nsec::to_timespec)
    }

    /// `sigtimedwait(set, &info, timeout)`: `timeout` `None` waits forever.
    /// `EINVAL` for a bad timespec, `EAGAIN` on timeout.
    pub fn sigtimedwait(&self, set: u64, timeout: Option<&Timespec>) -> Result<Siginfo, Errno> {
        let timeout = timeout.map(Nsec::from_timespec).transpose()?;
        signal::sigtimedwait(&self.proc.shared, SigSet(set), timeout)
    }

    /// `sigwaitinfo(set, &info)`: waits without a timeout.
    pub fn sigwaitinfo(&self, set: u64) -> Result<Siginfo, Errno> {
        signal::sigtimedwait(&self.proc.shared, SigSet(set), None)
    }

    /// `sigpending(&set)`.
    pub fn sigpending(&self) -> Result<u64, Errno> {
        signal::sigpending(&self.proc.shared).map(|s| s.0)
    }

    /// `sigprocmask(how, set, &old)`: returns the old mask.
    pub fn sigprocmask(&self, how: i32, set: Option<u64>) -> Result<u64, Errno> {
        signal::sigprocmask(&self.proc.shared, how, set.map(SigSet)).map(|s| s.0)
    }

    /// `sigaction(signo, {SIG_DFL | SIG_IGN}, &old)`: returns the old
    /// disposition's number. `EINVAL` for anything else.
    pub fn sigaction(&self, signo: i32, handler: i32) -> Result<i32, Errno> {
        let disp = match handler {
            SIG_DFL => Disposition::Default,
            SIG_IGN => Disposition::Ignore,
            _ => return Err(Errno::EINVAL),
        };
        signal::sigaction(&self.proc.shared, signo, disp).map(|old| match old {
            Disposition::Default => SIG_DFL,
            Disposition::Ignore => SIG_IGN,
        })
    }
}

impl Process {
    pub(crate) fn registry(&self) -> &crate::backend::ClockRegistry {
        &self.shared.kernel.registry
    }
}
