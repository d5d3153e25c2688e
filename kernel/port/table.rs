//! The kernel's event-port table: port ids to ports, per-owner counts.
//!
//! Ids are unique across the kernel (lowest free first, from
//! [`FIRST_PORT_ID`]). The table's lock is a leaf: nothing else is taken
//! while it is held (see the lock order in [`crate`]).

use std::collections::{BTreeMap, BTreeSet};

use nix::errno::Errno;

use crate::ids::Pid;
use crate::port::queue::Port;
use crate::sync::{Arc, Mutex};

/// The first port id (as if descriptors 0–2 were the standard streams).
pub const FIRST_PORT_ID: i32 = 3;
/// Default per-process port limit (illumos `process.max-port-ids`).
pub const PORT_MAX_DEFAULT: usize = 8192;
/// Default per-port event-slot limit (illumos `process.max-port-events`).
pub const PORT_MAX_EVENTS_DEFAULT: usize = 65536;

/// Who is using a port: user code through the syscall layers, or the
/// model's libc (the SIGEV_THREAD service, whose port is private).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// The raw and typed syscalls: private ports do not exist for them.
    User,
    /// libc's own machinery: may use its private ports.
    Libc,
}

#[derive(Debug)]
pub(crate) struct PortTableInner {
    /// Open ports by id.
    pub(crate) ports: BTreeMap<i32, Arc<Port>>,
    /// Freed ids below `next`.
    pub(crate) free: BTreeSet<i32>,
    /// The lowest id never handed out.
    pub(crate) next: i32,
    /// Open ports per owner.
    pub(crate) owned: BTreeMap<Pid, usize>,
}

/// The kernel's port table; see the module docs. Its lock is a leaf.
#[derive(Debug)]
pub(crate) struct PortTable {
    pub(crate) inner: Mutex<PortTableInner>,
}

impl PortTable {
    /// An empty table.
    pub(crate) fn new() -> PortTable {
        PortTable {
            inner: Mutex::new(PortTableInner {
                ports: BTreeMap::new(),
                free: BTreeSet::new(),
                next: FIRST_PORT_ID,
                owned: BTreeMap::new(),
            }),
        }
    }

    /// Creates a port owned by `owner`: `EMFILE` past `port_max` ports for
    /// that owner, `EAGAIN` if the kernel ran out of ids.
    pub(crate) fn create(
        &self,
        owner: Pid,
        private: bool,
        port_max: usize,
        max_events: usize,
    ) -> Result<Arc<Port>, Errno> {
        let mut t = self.inner.lock();
        let count = t.owned.get(&owner).copied().unwrap_or(0);
        if count >= port_max {
            return Err(Errno::EMFILE);
        }
        let id = match t.free.pop_first() {
            Some(id) => id,
            None => {
                let id = t.next;
                t.next = id.checked_add(1).ok_or(Errno::EAGAIN)?;
                id
            }
        };
        let port = Arc::new(Port::new(id, owner, private, max_events));
        t.ports.insert(id, port.clone());
        *t.owned.entry(owner).or_default() += 1;
        Ok(port)
    }

    /// The open port `id`, as `caller` may see it; `EBADF` otherwise.
    pub(crate) fn lookup(&self, id: i32, caller: Caller) -> Result<Arc<Port>, Errno> {
        let t = self.inner.lock();
        match t.ports.get(&id) {
            Some(port) if !port.private || caller == Caller::Libc => Ok(port.clone()),
            _ => Err(Errno::EBADF),
        }
    }

    pub(crate) fn unlink(t: &mut PortTableInner, id: i32) -> Option<Arc<Port>> {
        let port = t.ports.remove(&id)?;
        t.free.insert(id);
        if let Some(n) = t.owned.get_mut(&port.owner) {
            *n -= 1;
            if *n == 0 {
                t.owned.remove(&port.owner);
            }
        }
        Some(port)
    }

    /// Takes port `id` out of the table for `owner` to close: `EBADF` if it
    /// is not open, not `owner`'s, or private and `caller` is the user.
    pub(crate) fn remove(&self, id: i32, owner: Pid, caller: Caller) -> Result<Arc<Port>, Errno> {
        let mut t = self.inner.lock();
        match t.ports.get(&id) {
            Some(p) if p.owner == owner && (!p.private || caller == Caller::Libc) => {}
            _ => return Err(Errno::EBADF),
        }
        Ok(Self::unlink(&mut t, id).expect("checked above"))
    }

    /// Takes every port `owner` owns out of the table (process exit).
    pub(crate) fn remove_owned(&self, owner: Pid) -> Vec<Arc<Port>> {
        let mut t = self.inner.lock();
        let ids: Vec<i32> = t
            .ports
            .values()
            .filter(|p| p.owner == owner)
            .map(|p| p.id)
            .collect();
        ids.into_iter()
            .filter_map(|id| Self::unlink(&mut t, id))
            .collect()
    }

    /// Every open port.
    pub(crate) fn all(&self) -> Vec<Arc<Port>> {
        self.inner.lock().ports.values().cloned().collect()
    }

    /// Open ports: id and owner, ascending by id.
    pub(crate) fn list(&self) -> Vec<(i32, Pid)> {
        self.inner
            .lock()
            .ports
            .values()
            .map(|p| (p.id, p.owner))
            .collect()
    }
}
