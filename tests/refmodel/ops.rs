//! The vocabulary of the reference model: the operations a test case is
//! made of (raw syscall arguments, exactly as a C caller would pass them,
//! the LWP and exit calls of the process handle, plus the host actions
//! that move time and stop the VM) and the
//! outcomes they return.

use itimer::Errno;
use itimer::abi::{Itimerspec, PortEvent, Sigevent, Siginfo, Timespec};

/// One syscall or host action, with raw arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `timer_create(clock, ev)`.
    Create {
        /// Process index.
        p: usize,
        /// Clock id.
        clock: i32,
        /// The sigevent (`None`: NULL).
        ev: Option<Sigevent>,
    },
    /// `timer_settime(tid, flags, spec)`.
    Settime {
        /// Process index.
        p: usize,
        /// Timer id.
        tid: i32,
        /// Flags.
        flags: i32,
        /// The setting.
        spec: Itimerspec,
    },
    /// `timer_gettime(tid)`.
    Gettime {
        /// Process index.
        p: usize,
        /// Timer id.
        tid: i32,
    },
    /// `timer_getoverrun(tid)`.
    Getoverrun {
        /// Process index.
        p: usize,
        /// Timer id.
        tid: i32,
    },
    /// `timer_delete(tid)`.
    Delete {
        /// Process index.
        p: usize,
        /// Timer id.
        tid: i32,
    },
    /// Host time moves forward `ns` (0: run what is due now).
    Advance {
        /// Nanoseconds.
        ns: i64,
    },
    /// `sigtimedwait(set, timeout)` with a zero (or malformed) timeout.
    Sigwait {
        /// Process index.
        p: usize,
        /// The signal set.
        set: u64,
        /// The timeout.
        timeout: Timespec,
    },
    /// `port_create()`.
    PortCreate {
        /// Process index.
        p: usize,
    },
    /// `close(port)`.
    PortClose {
        /// Process index.
        p: usize,
        /// Port id.
        port: i32,
    },
    /// `port_send(port, events, user)`.
    PortSend {
        /// Process index.
        p: usize,
        /// Port id.
        port: i32,
        /// `portev_events`.
        events: i32,
        /// `portev_user`.
        user: u64,
    },
    /// `port_get(port, timeout 0)`.
    PortGet {
        /// Process index.
        p: usize,
        /// Port id.
        port: i32,
    },
    /// `clock_settime(clock, ts)`.
    ClockSettime {
        /// Process index.
        p: usize,
        /// Clock id.
        clock: i32,
        /// The new time.
        ts: Timespec,
    },
    /// `clock_gettime(clock)` (never a CPU-time clock).
    ClockGettime {
        /// Process index.
        p: usize,
        /// Clock id.
        clock: i32,
    },
    /// `sigaction(signo, SIG_DFL | SIG_IGN | other)`.
    Sigaction {
        /// Process index.
        p: usize,
        /// Signal number.
        signo: i32,
        /// 0 (`SIG_DFL`), 1 (`SIG_IGN`), anything else is `EINVAL`.
        handler: i32,
    },
    /// `sigprocmask(how, set)`.
    Sigprocmask {
        /// Process index.
        p: usize,
        /// `SIG_BLOCK` (1), `SIG_UNBLOCK` (2), `SIG_SETMASK` (3), other.
        how: i32,
        /// The set; `None` only reads the mask.
        set: Option<u64>,
    },
    /// `port_getn(port, list[list_len], max, &nget, timeout)` with a zero
    /// (or malformed) timeout.
    PortGetn {
        /// Process index.
        p: usize,
        /// Port id.
        port: i32,
        /// `max`.
        max: u32,
        /// `*nget` on entry.
        nget: u32,
        /// Entries the list has room for (`< max`: `EFAULT`).
        list_len: usize,
        /// The timeout.
        timeout: Timespec,
    },
    /// `port_alert(port, flags, events, user)`.
    PortAlert {
        /// Process index.
        p: usize,
        /// Port id.
        port: i32,
        /// `PORT_ALERT_SET`, `PORT_ALERT_UPDATE`, or anything else.
        flags: i32,
        /// `portev_events` of the alert (0 leaves alert mode).
        events: i32,
        /// `portev_user` of the alert.
        user: u64,
    },
    /// `lwp_create()`.
    LwpCreate {
        /// Process index.
        p: usize,
    },
    /// `lwp_exit()` of LWP `lwp` (the last one's is the process's exit).
    LwpExit {
        /// Process index.
        p: usize,
        /// LWP id.
        lwp: i32,
    },
    /// `timer_lwpbind(tid)` on behalf of LWP `lwp`.
    Lwpbind {
        /// Process index.
        p: usize,
        /// Timer id.
        tid: i32,
        /// LWP id.
        lwp: i32,
    },
    /// `exit()` of the whole process.
    Exit {
        /// Process index.
        p: usize,
    },
    /// Stop the VM.
    VmStop,
    /// Resume the VM.
    VmStart,
}

/// What an operation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No value.
    Done(Result<(), Errno>),
    /// A timer or port id.
    Id(Result<i32, Errno>),
    /// A setting.
    Spec(Result<Itimerspec, Errno>),
    /// An overrun count.
    Count(Result<i32, Errno>),
    /// A signal.
    Sig(Result<Siginfo, Errno>),
    /// A port event.
    Event(Result<PortEvent, Errno>),
    /// A clock reading.
    Time(Result<Timespec, Errno>),
    /// An old disposition (`SIG_DFL` 0, `SIG_IGN` 1).
    Disp(Result<i32, Errno>),
    /// An old signal mask.
    Mask(Result<u64, Errno>),
    /// What `port_getn` left in `*nget`, and the list's first `*nget`
    /// entries (none when `max` was 0: `*nget` is then a count).
    Getn(Result<(u32, Vec<PortEvent>), Errno>),
}
