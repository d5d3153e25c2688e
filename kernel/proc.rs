//! The process structure (illumos `proc_t`, the parts the timer subsystem
//! touches): `p_lock` and what it guards, the signal condvar, the exit
//! flag, and the [`Process`] handle's data.
//!
//! # Locks
//!
//! * `p_lock` ([`ProcShared::p_lock`]) guards [`ProcState`]: the timer table
//!   (slots, their `ITLK_*` bits and blocker counts), the signal queue, the
//!   LWP set, the exit flag and the handle of the signal delivery thread.
//! * [`ProcShared::p_sigcv`] is waited on with `p_lock` by signal waiters
//!   (`sigtimedwait`); each timer's `it_cv` is waited on with `p_lock` by
//!   `timer_lock` blockers.
//! * Where `p_lock` stands in the lock order: see [`crate`] (the one
//!   statement). Nothing is called into a backend with `p_lock` held.
//!
//! The handle's operations (LWPs, status, exit) are in [`crate::process`];
//! the syscalls on it in [`crate::typed`] and [`crate::raw`].

use std::collections::BTreeSet;

use nix::errno::Errno;

use crate::ids::{Credentials, LwpId, Pid};
use crate::notify_thread::NotifyService;
use crate::shared::KernelShared;
use crate::sigqueue::SigState;
use crate::sync::atomic::AtomicBool;
use crate::sync::{Arc, Condvar, Mutex, MutexGuard};
use crate::table::TimerTable;

/// What `p_lock` guards.
#[derive(Debug)]
pub(crate) struct ProcState {
    /// The timer table (illumos `p_itimer`).
    pub timers: TimerTable,
    /// The signal queue and dispositions.
    pub sig: SigState,
    /// Live LWPs.
    pub lwps: BTreeSet<LwpId>,
    /// The next LWP id to hand out.
    pub next_lwp: i32,
    /// Set once by exit; never cleared.
    pub exited: bool,
    /// The signal delivery thread, once a handler was installed; taken by
    /// exit.
    pub delivery: Option<crate::service::ServiceThread>,
}

/// The shared core of a process, referenced by its handle and its timers.
pub(crate) struct ProcShared {
    /// This process's id.
    pub pid: Pid,
    /// Its credentials (immutable).
    pub cred: Credentials,
    /// The kernel it runs on.
    pub kernel: Arc<KernelShared>,
    /// `p_lock`: see the module docs.
    pub p_lock: Mutex<ProcState>,
    /// Signal waiters sleep here, with `p_lock`.
    pub p_sigcv: Condvar,
    /// Set by exit, before it wakes anyone; never cleared. The lock-free
    /// twin of `ProcState::exited`, for waiters that hold a port queue lock
    /// (which comes after `p_lock` in the lock order).
    pub exiting: AtomicBool,
    /// libc's SIGEV_THREAD service (its own lock, before every kernel
    /// lock).
    pub notify: NotifyService,
}

impl std::fmt::Debug for ProcShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcShared")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl ProcShared {
    /// Takes `p_lock`, failing with `ESRCH` once the process has exited.
    pub fn lock_live(&self) -> Result<MutexGuard<'_, ProcState>, Errno> {
        let st = self.p_lock.lock();
        if st.exited {
            return Err(Errno::ESRCH);
        }
        Ok(st)
    }
}

/// A handle to a running process. Syscalls are methods on it (the typed
/// layer directly, the raw layer through [`Process::raw`]). Dropping the
/// handle [`Subsystem::spawn_process`](crate::Subsystem::spawn_process) returned
/// exits the process; dropping the view a callback or handler is given
/// does not.
#[derive(Debug)]
pub struct Process {
    pub(crate) shared: Arc<ProcShared>,
    /// Whether dropping this handle exits the process.
    pub(crate) exits_on_drop: bool,
}

impl Process {
    pub(crate) fn new(pid: Pid, cred: Credentials, kernel: Arc<KernelShared>) -> Process {
        let timer_max = kernel.config.timer_max;
        let mut lwps = BTreeSet::new();
        lwps.insert(LwpId::MAIN);
        let state = ProcState {
            timers: TimerTable::new(timer_max),
            sig: SigState::new(),
            lwps,
            next_lwp: LwpId::MAIN.0 + 1,
            exited: false,
            delivery: None,
        };
        Process {
            shared: Arc::new(ProcShared {
                pid,
                cred,
                kernel,
                p_lock: Mutex::new(state),
                p_sigcv: Condvar::new(),
                exiting: AtomicBool::new(false),
                notify: NotifyService::default(),
            }),
            exits_on_drop: true,
        }
    }

    /// A handle to the same process that does not exit it when dropped:
    /// what service threads hand to callbacks and signal handlers.
    pub(crate) fn service_view(shared: Arc<ProcShared>) -> Process {
        Process {
            shared,
            exits_on_drop: false,
        }
    }
}
