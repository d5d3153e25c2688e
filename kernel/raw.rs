//! The raw syscall layer: ABI numbers and `#[repr(C)]` structures in, an
//! errno out. Every invalid combination a C caller could pass is reachable
//! here, and each gets its errno, never a panic.
//!
//! Obtain it with [`Process::raw`]. The typed layer ([`crate::typed`]) is
//! built on these calls.

use nix::errno::Errno;

use crate::abi::{Itimerspec, PortEvent, Sigevent, Siginfo, Timespec};
use crate::ids::LwpId;
use crate::port::{self, Caller};
use crate::proc::Process;
use crate::sigqueue::{Disposition, SigSet};
use crate::time::Nsec;
use crate::{itimer, signal};

/// `SIG_DFL` for [`RawSyscalls::sigaction`].
pub const SIG_DFL: i32 = 0;
/// `SIG_IGN` for [`RawSyscalls::sigaction`].
pub const SIG_IGN: i32 = 1;
/// What [`RawSyscalls::sigaction`] reports as the old disposition when a
/// handler (installed through the typed layer) was in place: no function
/// pointer crosses this ABI, so raw callers can read but not install one.
pub const SIG_HANDLER: i32 = 2;

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
    /// `SIGEV_PORT` and `SIGEV_THREAD` both name a port in `sigev_port`
    /// (`EBADF` if it is not an open port, `EAGAIN` if it is full).
    pub fn timer_create(&self, clock: i32, evp: Option<&Sigevent>) -> Result<i32, Errno> {
        itimer::timer_create(&self.proc.shared, clock, evp, Caller::User)
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
    /// disposition's number ([`SIG_HANDLER`] for a handler). `EINVAL` for
    /// anything else.
    pub fn sigaction(&self, signo: i32, handler: i32) -> Result<i32, Errno> {
        let disp = match handler {
            SIG_DFL => Disposition::Default,
            SIG_IGN => Disposition::Ignore,
            _ => return Err(Errno::EINVAL),
        };
        signal::sigaction(&self.proc.shared, signo, disp).map(|old| match old {
            Disposition::Default => SIG_DFL,
            Disposition::Ignore => SIG_IGN,
            Disposition::Handler(_) => SIG_HANDLER,
        })
    }
}

/// Validates an optional timeout.
fn timeout_ns(timeout: Option<&Timespec>) -> Result<Option<Nsec>, Errno> {
    timeout.map(Nsec::from_timespec).transpose()
}

impl RawSyscalls<'_> {
    /// `port_create()`: a new event port's id. `EMFILE` past the
    /// process's `port_max`.
    pub fn port_create(&self) -> Result<i32, Errno> {
        port::port_create(&self.proc.shared, Caller::User)
    }

    /// `close(port)`: `EBADF` unless this process owns the open port.
    pub fn port_close(&self, port: i32) -> Result<(), Errno> {
        port::port_close(&self.proc.shared, port, Caller::User)
    }

    /// `port_send(port, events, user)`: queues a `PORT_SOURCE_USER` event.
    /// `EBADF` bad port, `EAGAIN` port full.
    pub fn port_send(&self, port: i32, events: i32, user: u64) -> Result<(), Errno> {
        port::port_send(&self.proc.shared, port, events, user)
    }

    /// `port_alert(port, flags, events, user)`: `events` 0 leaves alert
    /// mode. `EINVAL` for flags other than `PORT_ALERT_SET` /
    /// `PORT_ALERT_UPDATE`, `EBUSY` for UPDATE while alerted, `EBADF`.
    pub fn port_alert(&self, port: i32, flags: i32, events: i32, user: u64) -> Result<(), Errno> {
        port::port_alert(&self.proc.shared, port, flags, events, user)
    }

    /// `port_get(port, &pe, timeout)`: one event; `timeout` `None` waits
    /// forever, zero polls. `ETIME` when the timeout passes (or a poll
    /// finds nothing), `EINVAL` bad timespec, `EBADF` bad port, `EBADFD`
    /// port closed while waiting, `EINTR` process exited while waiting,
    /// `EACCES` only other processes' timer events queued.
    pub fn port_get(&self, port: i32, timeout: Option<&Timespec>) -> Result<PortEvent, Errno> {
        let timeout = timeout_ns(timeout)?;
        let got = port::port_getn(&self.proc.shared, port, Caller::User, 1, 1, timeout)?;
        got.events.first().copied().ok_or(Errno::ETIME)
    }

    /// `port_getn(port, list, max, &nget, timeout)`, as illumos: waits for
    /// at least `*nget` events (zero: none), then fills up to `max` entries
    /// of `list` and sets `*nget` to the number filled. `max == 0` only
    /// sets `*nget` to the number of events queued. On timeout it fails
    /// with `ETIME` **and** sets `*nget` (and `list`) to what it took.
    /// `EINVAL` for `*nget > max > 0` or a bad timespec, `EFAULT` when
    /// `list` is shorter than `max`; otherwise the errors of
    /// [`RawSyscalls::port_get`].
    pub fn port_getn(
        &self,
        port: i32,
        list: &mut [PortEvent],
        max: u32,
        nget: &mut u32,
        timeout: Option<&Timespec>,
    ) -> Result<(), Errno> {
        port::port_check(&self.proc.shared, port)?;
        if *nget > max && max > 0 {
            return Err(Errno::EINVAL);
        }
        let timeout = timeout_ns(timeout)?;
        if max == 0 {
            let n = port::port_pending(&self.proc.shared, port)?;
            *nget = u32::try_from(n).unwrap_or(u32::MAX);
            return Ok(());
        }
        let max_n = max as usize;
        if list.len() < max_n {
            return Err(Errno::EFAULT);
        }
        let got = port::port_getn(
            &self.proc.shared,
            port,
            Caller::User,
            max_n,
            *nget as usize,
            timeout,
        )?;
        list[..got.events.len()].copy_from_slice(&got.events);
        *nget = got.events.len() as u32;
        if got.timed_out {
            Err(Errno::ETIME)
        } else {
            Ok(())
        }
    }
}

impl Process {
    pub(crate) fn registry(&self) -> &crate::backend::ClockRegistry {
        &self.shared.kernel.registry
    }
}
