//! The subsystem handle: boots the itimer subsystem on its clock backends
//! and starts its processes. (The facade crate's `itimer::Kernel` wraps
//! it together with the host that drives the clocks.)
//!
//! The state behind it (registry, configuration, process and port tables)
//! is [`crate::shared`]'s `KernelShared`, which every process also holds.
//!
//! A [`Subsystem`] is built from a filled [`ClockRegistry`] (the backends are
//! wired by whoever boots the stack: the facade crate, or a test with the
//! manual clock) and a [`KernelConfig`]. The registry and configuration are
//! immutable afterwards. The process table is guarded by its own mutex,
//! which is never held while any process's `p_lock` is taken. The kernel
//! also holds the event-port table ([`crate::port`]), kernel-wide so that
//! any process can name any port; its lock is a leaf too.

use crate::backend::ClockRegistry;
use crate::ids::{Credentials, Pid, PortId};
use crate::process::Process;
use crate::shared::KernelShared;
use crate::sync::Arc;

pub use crate::shared::{FIRST_PID, KernelConfig, TIMER_MAX_FLOOR, TIMER_MAX_PER_CPU};

/// A booted kernel.
#[derive(Debug, Clone)]
pub struct Subsystem {
    shared: Arc<KernelShared>,
}

impl Subsystem {
    /// Boots a kernel on these clock backends.
    pub fn new(config: KernelConfig, registry: ClockRegistry) -> Subsystem {
        Subsystem {
            shared: Arc::new(KernelShared::new(config, registry)),
        }
    }

    /// Starts a process with one LWP and no timers.
    pub fn spawn_process(&self, cred: Credentials) -> Process {
        let pid = self.shared.add_process();
        Process::new(pid, cred, self.shared.clone())
    }

    /// Pids of live processes, ascending.
    pub fn processes(&self) -> Vec<Pid> {
        self.shared.live_processes()
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
        self.shared.service_threads.live()
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
