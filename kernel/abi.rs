//! The raw ABI: the numbers and `#[repr(C)]` structures a C caller or a
//! service would pass across the syscall boundary.
//!
//! Numbers follow illumos (`<sys/time_impl.h>`, `<sys/siginfo.h>`,
//! `<sys/port.h>`) wherever illumos defines them. Deliberate deviations:
//!
//! * Signals are numbered 1..=64 (`NSIG` = 65) so a signal set fits one
//!   `u64`; the classic numbers (SIGALRM = 14, SIGUSR1 = 16 as on illumos)
//!   keep their illumos values, real-time signals are [`SIGRTMIN`]..=[`SIGRTMAX`].
//! * There is no user memory to `copyin` from, so a [`Sigevent`] carries its
//!   `port_notify_t` inline ([`Sigevent::sigev_port`]) instead of behind
//!   `sigev_value.sival_ptr`.
//! * Our own clocks start at [`CLOCK_OURS_BASE`] so they never collide with a
//!   future illumos clock id.

/// `CLOCK_REALTIME`'s historical alias (illumos `__CLOCK_REALTIME0`).
pub const CLOCK_REALTIME0: i32 = 0;
/// Per-LWP user CPU time (illumos `CLOCK_VIRTUAL`).
pub const CLOCK_VIRTUAL: i32 = 1;
/// Per-LWP user + system CPU time.
pub const CLOCK_THREAD_CPUTIME_ID: i32 = 2;
/// illumos' older name for [`CLOCK_THREAD_CPUTIME_ID`].
pub const CLOCK_PROF: i32 = 2;
/// The wall clock.
pub const CLOCK_REALTIME: i32 = 3;
/// The monotonic, high-resolution clock.
pub const CLOCK_MONOTONIC: i32 = 4;
/// illumos' name for [`CLOCK_MONOTONIC`].
pub const CLOCK_HIGHRES: i32 = 4;
/// Per-process CPU time.
pub const CLOCK_PROCESS_CPUTIME_ID: i32 = 5;
/// The first clock id that is ours rather than illumos'.
pub const CLOCK_OURS_BASE: i32 = 16;
/// The VM clock: guest time that stops with the VM (ours).
pub const CLOCK_VM: i32 = CLOCK_OURS_BASE;
/// One past the largest clock id the registry can hold.
pub const CLOCK_MAX: i32 = 32;

/// `sigev_notify`: no notification.
pub const SIGEV_NONE: i32 = 1;
/// `sigev_notify`: queue a signal.
pub const SIGEV_SIGNAL: i32 = 2;
/// `sigev_notify`: run a callback on a notification thread (built on a port).
pub const SIGEV_THREAD: i32 = 3;
/// `sigev_notify`: post an event to an event port.
pub const SIGEV_PORT: i32 = 4;

/// `si_code` of a timer expiration signal.
pub const SI_TIMER: i32 = -3;
/// `si_code` of a signal sent by `sigqueue` (user).
pub const SI_QUEUE: i32 = -2;

/// `timer_settime` flag: the value is an absolute time on the timer's clock.
pub const TIMER_ABSTIME: i32 = 0x1;

/// The largest overrun count `timer_getoverrun` reports (`INT_MAX`).
pub const DELAYTIMER_MAX: i32 = i32::MAX;

/// One more than the largest signal number.
pub const NSIG: i32 = 65;
/// Alarm clock: the default signal of every timer.
pub const SIGALRM: i32 = 14;
/// User signal 1.
pub const SIGUSR1: i32 = 16;
/// User signal 2.
pub const SIGUSR2: i32 = 17;
/// Kill (cannot be caught, blocked or ignored).
pub const SIGKILL: i32 = 9;
/// Stop (cannot be caught, blocked or ignored).
pub const SIGSTOP: i32 = 23;
/// The first real-time signal.
pub const SIGRTMIN: i32 = 41;
/// The last real-time signal.
pub const SIGRTMAX: i32 = 64;

/// Port event source: a timer (illumos `PORT_SOURCE_TIMER`).
pub const PORT_SOURCE_TIMER: i32 = 2;
/// Port event source: `port_send` (illumos `PORT_SOURCE_USER`).
pub const PORT_SOURCE_USER: i32 = 3;
/// Port event source: `port_alert` (illumos `PORT_SOURCE_ALERT`).
pub const PORT_SOURCE_ALERT: i32 = 5;

/// `port_alert` flag: set alert mode, overwriting any alert in place
/// (illumos `PORT_ALERT_SET`).
pub const PORT_ALERT_SET: i32 = 0x01;
/// `port_alert` flag: set alert mode, `EBUSY` if already set (illumos
/// `PORT_ALERT_UPDATE`).
pub const PORT_ALERT_UPDATE: i32 = 0x02;

/// Nanoseconds in a second.
pub const NANOSEC: i64 = 1_000_000_000;

/// `struct timespec`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Timespec {
    /// Seconds.
    pub tv_sec: i64,
    /// Nanoseconds; valid in `[0, 1e9)`.
    pub tv_nsec: i64,
}

/// `struct itimerspec`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Itimerspec {
    /// Period after the first expiration; zero for a one-shot timer.
    pub it_interval: Timespec,
    /// Time to the first expiration (relative, or absolute with
    /// `TIMER_ABSTIME`); zero disarms.
    pub it_value: Timespec,
}

/// `union sigval`, held as the pointer-sized integer both arms share.
pub type Sigval = u64;

/// `port_notify_t`: where a `SIGEV_PORT` / `SIGEV_THREAD` timer posts.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PortNotify {
    /// The event port's id.
    pub portnfy_port: i32,
    /// The user value reported in `portev_user`.
    pub portnfy_user: u64,
}

/// `struct sigevent`, with its port notification inline (see module docs).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Sigevent {
    /// One of `SIGEV_NONE`, `SIGEV_SIGNAL`, `SIGEV_THREAD`, `SIGEV_PORT`.
    pub sigev_notify: i32,
    /// The signal for `SIGEV_SIGNAL`.
    pub sigev_signo: i32,
    /// The value delivered with the signal or to the callback.
    pub sigev_value: Sigval,
    /// For `SIGEV_PORT` and `SIGEV_THREAD`: the port to post to.
    pub sigev_port: PortNotify,
}

/// The `siginfo_t` fields a timer or queued signal fills.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Siginfo {
    /// Signal number.
    pub si_signo: i32,
    /// Why it was sent: `SI_TIMER`, `SI_QUEUE`.
    pub si_code: i32,
    /// Sender's process id.
    pub si_pid: i32,
    /// Sender's user id.
    pub si_uid: u32,
    /// The `sigev_value` (the timer id when the timer was created with no
    /// sigevent).
    pub si_value: Sigval,
    /// For `SI_TIMER`: the timer id.
    pub si_timerid: i32,
    /// For `SI_TIMER`: the overrun count latched at delivery.
    pub si_overrun: i32,
}

/// `port_event_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PortEvent {
    /// For timers: the number of expirations since the last retrieval.
    pub portev_events: i32,
    /// `PORT_SOURCE_*`.
    pub portev_source: u16,
    /// Padding, as in the C layout.
    pub portev_pad: u16,
    /// The source object: the timer id for `PORT_SOURCE_TIMER`.
    pub portev_object: u64,
    /// The user value given at association.
    pub portev_user: u64,
}
