//! The typed syscall layer: the same calls as [`crate::raw`], with Rust
//! types. Each method converts its arguments to the raw ABI and calls the
//! raw layer, so both faces share one implementation and one set of errors.

use std::time::Duration;

use nix::errno::Errno;

use crate::abi::{
    self, Itimerspec, PORT_ALERT_SET, PORT_ALERT_UPDATE, PortEvent, PortNotify, SIGEV_NONE,
    SIGEV_PORT, SIGEV_SIGNAL, Sigevent, Siginfo, TIMER_ABSTIME, Timespec,
};
use crate::ids::LwpId;
use crate::notify_thread::ThreadCallback;
use crate::proc::Process;
use crate::sigqueue::{Disposition, SigSet};
use crate::time::Nsec;

pub use crate::ids::{PortId, TimerId};

/// A clock id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClockId(pub i32);

impl ClockId {
    /// The wall clock.
    pub const REALTIME: ClockId = ClockId(abi::CLOCK_REALTIME);
    /// The monotonic high-resolution clock.
    pub const HIGHRES: ClockId = ClockId(abi::CLOCK_HIGHRES);
    /// Alias of [`ClockId::HIGHRES`].
    pub const MONOTONIC: ClockId = ClockId(abi::CLOCK_MONOTONIC);
    /// Per-LWP user CPU time.
    pub const VIRTUAL: ClockId = ClockId(abi::CLOCK_VIRTUAL);
    /// Per-LWP CPU time.
    pub const THREAD_CPUTIME: ClockId = ClockId(abi::CLOCK_THREAD_CPUTIME_ID);
    /// Per-process CPU time.
    pub const PROCESS_CPUTIME: ClockId = ClockId(abi::CLOCK_PROCESS_CPUTIME_ID);
    /// The VM clock (ours): guest time that stops with the VM.
    pub const VM: ClockId = ClockId(abi::CLOCK_VM);
}

/// How [`Process::port_alert`] sets alert mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertMode {
    /// Set it, overwriting an alert in place (`PORT_ALERT_SET`).
    Set,
    /// Set it unless already set (`PORT_ALERT_UPDATE`; else `EBUSY`).
    Update,
}

/// What [`Process::port_getn`] retrieved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortEvents {
    /// The events taken, oldest first.
    pub events: Vec<PortEvent>,
    /// The timeout passed before `nget` events were available (the raw
    /// call's `ETIME`); `events` holds what was taken anyway.
    pub timed_out: bool,
}

/// How a timer notifies its expirations.
///
/// Not `Copy`: [`SigEvent::Thread`] holds a callback. Two `Thread` events
/// are equal when they hold the same closure and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigEvent {
    /// No notification; the timer can still be read.
    None,
    /// Queue signal `signo` with `value`.
    Signal {
        /// The signal number, 1..NSIG.
        signo: i32,
        /// Delivered as `si_value`.
        value: u64,
    },
    /// Post to event port `port`, reporting `user`.
    Port {
        /// The port id (a [`PortId`]'s number).
        port: i32,
        /// Reported as `portev_user`.
        user: u64,
    },
    /// Run `callback` on the process's notification thread for each
    /// notification (`SIGEV_THREAD`; see [`crate::notify_thread`]).
    Thread {
        /// The function to run.
        callback: ThreadCallback,
        /// Passed to it as [`ThreadNotify::value`](crate::notify_thread::ThreadNotify::value).
        value: u64,
    },
}

impl SigEvent {
    /// A [`SigEvent::Thread`] running `f`.
    pub fn thread(
        value: u64,
        f: impl Fn(&Process, crate::notify_thread::ThreadNotify) + Send + Sync + 'static,
    ) -> SigEvent {
        SigEvent::Thread {
            callback: ThreadCallback::new(f),
            value,
        }
    }

    /// The raw sigevent; `None` for [`SigEvent::Thread`], whose raw form
    /// names the process's private notification port, which only the
    /// typed `timer_create` (the model's libc) can set up.
    pub fn to_raw(&self) -> Option<Sigevent> {
        Some(match *self {
            SigEvent::None => Sigevent {
                sigev_notify: SIGEV_NONE,
                ..Sigevent::default()
            },
            SigEvent::Signal { signo, value } => Sigevent {
                sigev_notify: SIGEV_SIGNAL,
                sigev_signo: signo,
                sigev_value: value,
                ..Sigevent::default()
            },
            SigEvent::Port { port, user } => Sigevent {
                sigev_notify: SIGEV_PORT,
                sigev_port: PortNotify {
                    portnfy_port: port,
                    portnfy_user: user,
                },
                ..Sigevent::default()
            },
            SigEvent::Thread { .. } => return None,
        })
    }
}

/// A timer setting: the first expiration and the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ItimerSpec {
    /// Time to the first expiration (or the absolute time, with
    /// [`Arm::Absolute`]); zero disarms.
    pub value: Duration,
    /// The period; zero for a one-shot timer.
    pub interval: Duration,
}

impl ItimerSpec {
    /// Fires once after `value`.
    pub fn one_shot(value: Duration) -> ItimerSpec {
        ItimerSpec {
            value,
            interval: Duration::ZERO,
        }
    }

    /// Fires after `value`, then every `interval`.
    pub fn periodic(value: Duration, interval: Duration) -> ItimerSpec {
        ItimerSpec { value, interval }
    }

    /// Disarms.
    pub fn disarm() -> ItimerSpec {
        ItimerSpec::default()
    }

    /// The raw form; `EINVAL` for a duration beyond `i64` seconds.
    pub fn to_raw(self) -> Result<Itimerspec, Errno> {
        Ok(Itimerspec {
            it_interval: duration_to_timespec(self.interval)?,
            it_value: duration_to_timespec(self.value)?,
        })
    }

    /// From the raw form (as returned by the kernel, always valid).
    pub fn from_raw(raw: &Itimerspec) -> ItimerSpec {
        ItimerSpec {
            value: timespec_to_duration(&raw.it_value),
            interval: timespec_to_duration(&raw.it_interval),
        }
    }
}

/// Whether a setting's value is relative or absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Arm {
    /// From now.
    #[default]
    Relative,
    /// An absolute time on the timer's clock (`TIMER_ABSTIME`).
    Absolute,
}

/// An optional timeout as an optional `timespec` (`EINVAL` if too long).
fn timeout_to_timespec(timeout: Option<Duration>) -> Result<Option<Timespec>, Errno> {
    timeout.map(duration_to_timespec).transpose()
}

/// A `Duration` as a `timespec`; `EINVAL` if its seconds overflow `i64`.
pub fn duration_to_timespec(d: Duration) -> Result<Timespec, Errno> {
    Ok(Timespec {
        tv_sec: i64::try_from(d.as_secs()).map_err(|_| Errno::EINVAL)?,
        tv_nsec: i64::from(d.subsec_nanos()),
    })
}

/// A kernel-produced (valid) `timespec` as a `Duration`; invalid fields
/// read as zero.
pub fn timespec_to_duration(ts: &Timespec) -> Duration {
    Nsec::from_timespec(ts).map_or(Duration::ZERO, Nsec::to_duration)
}

impl Process {
    /// `timer_create`; `None` gives the clock's default (SIGALRM with the
    /// timer id as value). [`SigEvent::Thread`] goes through the model's
    /// libc ([`crate::notify_thread`]).
    pub fn timer_create(&self, clock: ClockId, ev: Option<SigEvent>) -> Result<TimerId, Errno> {
        if let Some(SigEvent::Thread { callback, value }) = ev {
            return crate::notify_thread::timer_create(self, clock.0, callback, value).map(TimerId);
        }
        let raw = ev.as_ref().and_then(SigEvent::to_raw);
        self.raw().timer_create(clock.0, raw.as_ref()).map(TimerId)
    }

    /// `timer_settime`: returns the previous setting.
    pub fn timer_settime(
        &self,
        timer: TimerId,
        arm: Arm,
        spec: ItimerSpec,
    ) -> Result<ItimerSpec, Errno> {
        let flags = match arm {
            Arm::Relative => 0,
            Arm::Absolute => TIMER_ABSTIME,
        };
        self.raw()
            .timer_settime(timer.0, flags, &spec.to_raw()?)
            .map(|o| ItimerSpec::from_raw(&o))
    }

    /// `timer_gettime`.
    pub fn timer_gettime(&self, timer: TimerId) -> Result<ItimerSpec, Errno> {
        self.raw()
            .timer_gettime(timer.0)
            .map(|c| ItimerSpec::from_raw(&c))
    }

    /// `timer_getoverrun`.
    pub fn timer_getoverrun(&self, timer: TimerId) -> Result<i32, Errno> {
        self.raw().timer_getoverrun(timer.0)
    }

    /// `timer_delete`.
    pub fn timer_delete(&self, timer: TimerId) -> Result<(), Errno> {
        self.raw().timer_delete(timer.0)
    }

    /// `timer_lwpbind`: binds the timer to `lwp`.
    pub fn timer_lwpbind(&self, timer: TimerId, lwp: LwpId) -> Result<(), Errno> {
        self.raw().timer_lwpbind(timer.0, lwp.0)
    }

    /// `clock_gettime`.
    pub fn clock_gettime(&self, clock: ClockId) -> Result<Duration, Errno> {
        self.raw()
            .clock_gettime(clock.0)
            .map(|t| timespec_to_duration(&t))
    }

    /// `clock_settime`.
    pub fn clock_settime(&self, clock: ClockId, now: Duration) -> Result<(), Errno> {
        self.raw()
            .clock_settime(clock.0, &duration_to_timespec(now)?)
    }

    /// `clock_getres`.
    pub fn clock_getres(&self, clock: ClockId) -> Result<Duration, Errno> {
        self.raw()
            .clock_getres(clock.0)
            .map(|t| timespec_to_duration(&t))
    }

    /// `sigtimedwait`: `None` waits forever, zero polls.
    pub fn sigtimedwait(&self, set: SigSet, timeout: Option<Duration>) -> Result<Siginfo, Errno> {
        let ts = timeout.map(duration_to_timespec).transpose()?;
        self.raw().sigtimedwait(set.0, ts.as_ref())
    }

    /// `sigwaitinfo`.
    pub fn sigwaitinfo(&self, set: SigSet) -> Result<Siginfo, Errno> {
        self.raw().sigwaitinfo(set.0)
    }

    /// `sigpending`.
    pub fn sigpending(&self) -> Result<SigSet, Errno> {
        self.raw().sigpending().map(SigSet)
    }

    /// Blocks `set` (adds it to the mask); returns the old mask.
    pub fn sigblock(&self, set: SigSet) -> Result<SigSet, Errno> {
        self.raw()
            .sigprocmask(crate::signal::SIG_BLOCK, Some(set.0))
            .map(SigSet)
    }

    /// Unblocks `set`; returns the old mask.
    pub fn sigunblock(&self, set: SigSet) -> Result<SigSet, Errno> {
        self.raw()
            .sigprocmask(crate::signal::SIG_UNBLOCK, Some(set.0))
            .map(SigSet)
    }

    /// Sets `signo`'s disposition; returns the old one. A
    /// [`Disposition::Handler`] runs on the process's delivery thread (see
    /// [`crate::delivery`]).
    pub fn sigaction(&self, signo: i32, disp: Disposition) -> Result<Disposition, Errno> {
        // Not through the raw layer: a handler's closure has no ABI number.
        crate::signal::sigaction(&self.shared, signo, disp)
    }
}

impl Process {
    /// `port_create`: a new event port, owned by this process.
    pub fn port_create(&self) -> Result<PortId, Errno> {
        self.raw().port_create().map(PortId)
    }

    /// Closes a port this process owns.
    pub fn port_close(&self, port: PortId) -> Result<(), Errno> {
        self.raw().port_close(port.0)
    }

    /// `port_send`: queues a `PORT_SOURCE_USER` event.
    pub fn port_send(&self, port: PortId, events: i32, user: u64) -> Result<(), Errno> {
        self.raw().port_send(port.0, events, user)
    }

    /// `port_alert`: `events` 0 leaves alert mode.
    pub fn port_alert(
        &self,
        port: PortId,
        mode: AlertMode,
        events: i32,
        user: u64,
    ) -> Result<(), Errno> {
        let flags = match mode {
            AlertMode::Set => PORT_ALERT_SET,
            AlertMode::Update => PORT_ALERT_UPDATE,
        };
        self.raw().port_alert(port.0, flags, events, user)
    }

    /// `port_get`: one event; `None` waits forever, zero polls (`ETIME`
    /// when nothing is queued).
    pub fn port_get(&self, port: PortId, timeout: Option<Duration>) -> Result<PortEvent, Errno> {
        let ts = timeout_to_timespec(timeout)?;
        self.raw().port_get(port.0, ts.as_ref())
    }

    /// `port_getn`: waits for at least `nget` events, takes up to `max`
    /// (`1 <= max`, `nget <= max`, else `EINVAL`; `u32` bounds apply). A
    /// timeout is reported in [`PortEvents::timed_out`], with whatever was
    /// taken, not as an error.
    pub fn port_getn(
        &self,
        port: PortId,
        max: usize,
        nget: usize,
        timeout: Option<Duration>,
    ) -> Result<PortEvents, Errno> {
        let max32 = u32::try_from(max).map_err(|_| Errno::EINVAL)?;
        let mut n = u32::try_from(nget).map_err(|_| Errno::EINVAL)?;
        if max32 == 0 {
            return Err(Errno::EINVAL);
        }
        let ts = timeout_to_timespec(timeout)?;
        let mut list = vec![PortEvent::default(); max];
        let timed_out = match self
            .raw()
            .port_getn(port.0, &mut list, max32, &mut n, ts.as_ref())
        {
            Ok(()) => false,
            Err(Errno::ETIME) => true,
            Err(e) => return Err(e),
        };
        list.truncate(n as usize);
        Ok(PortEvents {
            events: list,
            timed_out,
        })
    }

    /// The number of events queued on `port` (`port_getn` with `max` 0).
    pub fn port_pending(&self, port: PortId) -> Result<usize, Errno> {
        let mut n = 0;
        self.raw().port_getn(port.0, &mut [], 0, &mut n, None)?;
        Ok(n as usize)
    }
}
