//! The kernel: the clock registry, the configuration, and the process table.
//!
//! A [`Kernel`] is built from a filled [`ClockRegistry`] (the backends are
//! wired by whoever boots the stack: the facade crate, or a test with the
//! manual clock) and a [`KernelConfig`]. The registry and configuration are
//! immutable afterwards. The process table is guarded by its own mutex,
//! which is never held while any process's `p_lock` is taken. The kernel
//! also holds the event-port table ([`crate::port`]), kernel-wide so that
//! any process can name any port; its lock is a leaf too.

use std::collections::BTreeSet;

use crate::backend::ClockRegistry;
use crate::port::{PORT_MAX_DEFAULT, PORT_MAX_EVENTS_DEFAULT, PortTable};
use crate::process::{Credentials, Pid, Process};
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{Arc, Mutex};
use crate::typed::PortId;

/// The smallest `timer_max` the default gives (illumos `_TIMER_MAX`).
pub const TIMER_MAX_FLOOR: usize = 32;
/// Default `timer_max` per CPU.
pub const TIMER_MAX_PER_CPU: usize = 4;

/// Boot-time settings. Build with struct-update syntax from
/// [`KernelConfig::default`] (`KernelConfig { timer_max: 64,
/// ..KernelConfig::default() }`), so new settings do not break callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConfig {
    /// The most timers one process may have (default max(32, 4 × CPUs)).
    pub timer_max: usize,
    /// The most event ports one process may have open (default 8192, as
    /// illumos' `process.max-port-ids`); past it `port_create` fails with
    /// `EMFILE`.
    pub port_max: usize,
    /// The most event slots one port may hold: queued `port_send` events
    /// plus one per associated timer (default 65536, as illumos'
    /// `process.max-port-events`); past it `port_send` and `timer_create`
    /// fail with `EAGAIN`.
    pub port_max_events: usize,
}

impl Default for KernelConfig {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        KernelConfig {
            timer_max: TIMER_MAX_FLOOR.max(TIMER_MAX_PER_CPU * cpus),
            port_max: PORT_MAX_DEFAULT,
            port_max_events: PORT_MAX_EVENTS_DEFAULT,
        }
    }
}

#[derive(Debug)]
struct ProcTable {
    next_pid: i32,
    live: BTreeSet<Pid>,
}

/// State shared by the kernel handle and every process.
#[derive(Debug)]
pub(crate) struct KernelShared {
    /// Clock id → backend; immutable after boot.
    pub registry: ClockRegistry,
    /// Immutable after boot.
    pub config: KernelConfig,
    /// Live processes; its own lock, never held with a `p_lock`.
    procs: Mutex<ProcTable>,
    /// Open event ports; its own lock, a leaf.
    pub ports: PortTable,
    /// Service threads whose bodies are running (see [`crate::service`]).
    pub service_threads: AtomicUsize,
}

impl KernelShared {
    pub(crate) fn remove_process(&self, pid: Pid) {
        self.procs.lock().live.remove(&pid);
    }
}

/// A booted kernel.
#[derive(Debug, Clone)]
pub struct Kernel {
    shared: Arc<KernelShared>,
}

/// The first pid handed out (pid 0 and 1 are the model's own).
pub const FIRST_PID: i32 = 100;

impl Kernel {
    /// Boots a kernel on these clock backends.
    pub fn new(config: KernelConfig, registry: ClockRegistry) -> Kernel {
        Kernel {
            shared: Arc::new(KernelShared {
                registry,
                config,
                procs: Mutex::new(ProcTable {
                    next_pid: FIRST_PID,
                    live: BTreeSet::new(),
                }),
                ports: PortTable::new(),
                service_threads: AtomicUsize::new(0),
            }),
        }
    }

    /// Starts a process with one LWP and no timers.
    pub fn spawn_process(&self, cred: Credentials) -> Process {
        let pid = {
            let mut t = self.shared.procs.lock();
            let pid = Pid(t.next_pid);
            t.next_pid += 1;
            t.live.insert(pid);
            pid
        };
        Process::new(pid, cred, self.shared.clone())
    }

    /// Pids of live processes, ascending.
    pub fn processes(&self) -> Vec<Pid> {
        self.shared.procs.lock().live.iter().copied().collect()
    }

    /// The configuration this kernel booted with.
    pub fn config(&self) -> &KernelConfig {
        &self.shared.config
    }

    /// The clock registry.
    pub fn registry(&self) -> &ClockRegistry {
        &self.shared.registry
    }

    /// Service threads (SIGEV_THREAD notification and signal delivery
    /// threads, all processes) whose bodies are still running. Zero once
    /// every process has exited and every exit that ran on a service
    /// thread has let that thread return.
    pub fn service_threads(&self) -> usize {
        self.shared.service_threads.load(Ordering::SeqCst)
    }

    /// Open event ports (libc's private ones included) and their owners,
    /// ascending by id.
    pub fn ports(&self) -> Vec<(PortId, Pid)> {
        self.shared
            .ports
            .list()
            .into_iter()
            .map(|(id, owner)| (PortId(id), owner))
            .collect()
    }
}
