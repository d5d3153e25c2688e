//! The kernel's ids: processes, LWPs, credentials, timers, event ports.
//!
//! A leaf: plain newtypes that every other module may name without
//! importing the module that owns the object (illumos keeps `pid_t`,
//! `id_t` and `cred_t` in headers of their own for the same reason).

/// A process id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(pub i32);

/// An LWP (thread) id within a process; the first LWP is [`LwpId::MAIN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LwpId(pub i32);

impl LwpId {
    /// Every process starts with this LWP.
    pub const MAIN: LwpId = LwpId(1);
}

/// Who a process runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// User id, reported as `si_uid`.
    pub uid: u32,
    /// Holds the privileges for `clock_settime` and the HIGHRES resolution
    /// guard's exemption (illumos `PRIV_SYS_TIME` / `PRIV_PROC_CLOCK_HIGHRES`).
    pub privileged: bool,
}

impl Credentials {
    /// uid 0, privileged.
    pub const ROOT: Credentials = Credentials {
        uid: 0,
        privileged: true,
    };

    /// An unprivileged user.
    pub fn user(uid: u32) -> Credentials {
        Credentials {
            uid,
            privileged: false,
        }
    }
}

/// A timer id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId(pub i32);

/// An event port id (kernel-wide; see [`crate::port`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(pub i32);
