//! What the kernel handle and every process share: the clock registry,
//! the configuration, the process table, the event-port table and the
//! service-thread count.
//!
//! The registry and configuration are immutable after boot. The process
//! table is guarded by its own mutex, which is never held while any
//! process's `p_lock` is taken. The event-port table ([`crate::port`]) is
//! kernel-wide so that any process can name any port; its lock is a leaf
//! too (see the lock order in [`crate`]).

use std::collections::BTreeSet;

use crate::backend::ClockRegistry;
use crate::ids::Pid;
use crate::port::table::{PORT_MAX_DEFAULT, PORT_MAX_EVENTS_DEFAULT, PortTable};
use crate::service::ServiceCount;
use crate::sync::{Arc, Mutex};

/// The first pid handed out (pid 0 and 1 are the model's own).
pub const FIRST_PID: i32 = 100;

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
    pub service_threads: Arc<ServiceCount>,
}

impl KernelShared {
    /// The state of a kernel just booted.
    pub(crate) fn new(config: KernelConfig, registry: ClockRegistry) -> KernelShared {
        KernelShared {
            registry,
            config,
            procs: Mutex::new(ProcTable {
                next_pid: FIRST_PID,
                live: BTreeSet::new(),
            }),
            ports: PortTable::new(),
            service_threads: Arc::new(ServiceCount::new()),
        }
    }

    /// Enters a new process in the table; its pid.
    pub(crate) fn add_process(&self) -> Pid {
        let mut t = self.procs.lock();
        let pid = Pid(t.next_pid);
        t.next_pid += 1;
        t.live.insert(pid);
        pid
    }

    /// Pids of live processes, ascending.
    pub(crate) fn live_processes(&self) -> Vec<Pid> {
        self.procs.lock().live.iter().copied().collect()
    }

    pub(crate) fn remove_process(&self, pid: Pid) {
        self.procs.lock().live.remove(&pid);
    }
}
