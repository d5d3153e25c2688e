//! Event ports: `port_create`, `port_close`, `port_send`, `port_alert`,
//! `port_get`, `port_getn`, and the `PORT_SOURCE_TIMER` event source.
//!
//! Models illumos `usr/src/uts/common/fs/portfs/port.c` (the queue,
//! `port_getn`, alert mode) and the port half of `os/timer.c`
//! (`timer_port_callback`, `timer_close_port`; those two live in
//! [`crate::itimer`] because they work on the timer's `it_mutex`).
//!
//! # Objects and locks
//!
//! * The kernel-wide `PortTable` maps port ids to ports. Ids are unique
//!   across the kernel (lowest free first, from [`FIRST_PORT_ID`]), so one
//!   process can name another's port, as a descriptor inherited over
//!   `fork` would. Each port has an owner: the process that created it,
//!   whose [`KernelConfig::port_max`](crate::KernelConfig::port_max) limit
//!   it counts against, and which alone may close it. The table's lock is
//!   a leaf: nothing else is taken while it is held.
//! * Each `Port` has one lock, the **port queue lock** (`Port::q`),
//!   guarding `PortQueue`: the FIFO of queued events, the slot count, the
//!   associated timers, the alert, and the closed flag. Waiters sleep on
//!   `Port::cv` with it.
//!
//! Lock order (whole kernel): backend per-timer lock → `p_lock` →
//! `it_mutex` → port queue lock. `timer_fire` of a port timer posts the
//! cached event with `it_mutex` held, so **retrieval never runs a timer's
//! callback with the queue lock held**: a pass takes its batch of events
//! out of the queue under the lock, drops it, and only then runs each
//! timer event's callback (which takes `it_mutex`), as illumos runs
//! `port_copy_event` callbacks outside `portq_mutex`.
//!
//! # Slots (illumos `port_max_events`)
//!
//! A port holds at most `port_max_events` event slots
//! ([`KernelConfig::port_max_events`](crate::KernelConfig::port_max_events)):
//! one per queued `PORT_SOURCE_USER` event, and one per associated timer,
//! reserved at `timer_create` for the timer's whole association (illumos
//! allocates the timer's event at `timer_create`). Past the limit
//! `port_send` and `timer_create` fail with `EAGAIN`; `timer_fire` never
//! allocates and never fails.
//!
//! # The cached timer event, one per associated timer
//!
//! ```text
//!            timer_fire (pending 0 → k)           retrieval pass takes it
//!   idle ───────────────────────────▶ queued ───────────────────────────▶ in flight
//!    ▲                                  │ timer_fire: pending += k          │ timer_fire:
//!    │                                  │ (still queued once)               │ pending += k
//!    └──────────────────────────────────┴───── timer_port_callback ◀────────┘
//!                                               events = pending, pending = 0
//!
//!   any state ──port_close──▶ detached: IT_PORT cleared, pending 0, the timer
//!                             runs on with no notification (timer_close_port)
//!   any state ──timer_delete─▶ removed: out of the queue, slot released
//! ```
//!
//! Invariants: the event is queued at most once, and only while the
//! timer's `pending > 0`; `pending == 0` means neither queued nor in
//! flight. An in-flight event whose timer was detached or deleted before
//! its callback ran is dropped (the callback sees the link gone), so a
//! retrieval never reports `portev_events = 0` and never reports a deleted
//! timer.
//!
//! # Retrieval (`port_getn(max, nget, timeout)`)
//!
//! Waits until at least `nget` events the caller may take are queued (or
//! the timeout passes, or `timeout` is zero: then it takes what is there),
//! then takes up to `max` of them, oldest first. A timer's event may only
//! be taken by the timer's process; other processes skip it, and it stays
//! queued for its owner. Timeouts are `Callout`s on `CLOCK_HIGHRES`, so
//! they are exact on the model's clock. Closing the port wakes every
//! waiter with `EBADFD`; the exit of the waiter's process wakes it with
//! `EINTR`.
//!
//! # Deliberate deviations from illumos
//!
//! * Ids are kernel-wide, not per-process descriptors; only the owner may
//!   close a port (another process gets `EBADF`, as for a descriptor not
//!   in its table), and closing closes it for everyone.
//! * Past the per-process limit `port_create` fails with `EMFILE` (illumos:
//!   `EAGAIN` from the project-wide `project.max-port-ids`, `EMFILE` from
//!   a full descriptor table; ours is a per-process table).
//! * A retrieval that finds only other processes' timer events (nothing
//!   it may take) fails at once with `EACCES` (the error illumos'
//!   `timer_port_callback` gives the port framework) instead of silently
//!   waiting as illumos does.
//! * `nget = 0` takes what is there (up to `max`) at once; illumos returns
//!   no events at all.
//! * `port_get` with a zero timeout and nothing queued fails with `ETIME`;
//!   illumos returns success without filling in the event.
//! * A malformed timeout is `EINVAL` even when events are ready (illumos
//!   reads it only when it would block).
//! * `port_alert` accepts exactly `PORT_ALERT_SET` or `PORT_ALERT_UPDATE`
//!   (illumos refuses only both bits at once).
//! * `port_getn` on a port closed after some events were taken in an
//!   earlier pass of the same call fails with `EBADFD` and drops them, as
//!   illumos drops a closing port's events.
//! * The retrieval also latches the timer's `timer_getoverrun` value
//!   (`events - 1`), which illumos leaves to its libc (for SIGEV_THREAD).
//! * A detached timer's `pending` is reset to 0 (illumos leaves it
//!   counting, invisibly).

use std::collections::{BTreeMap, BTreeSet};

use nix::errno::Errno;

use crate::abi::{
    PORT_ALERT_SET, PORT_ALERT_UPDATE, PORT_SOURCE_ALERT, PORT_SOURCE_TIMER, PORT_SOURCE_USER,
    PortEvent,
};
use crate::callout::Callout;
use crate::itimer::{ItCore, timer_close_port, timer_port_callback};
use crate::process::{Pid, ProcShared};
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{Arc, Condvar, Mutex};
use crate::time::Nsec;

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

/// A queued event.
#[derive(Debug, Clone, Copy)]
enum Queued {
    /// `port_send`: shareable with every process.
    User { events: i32, user: u64 },
    /// A timer's cached event: only `owner` may take it.
    Timer { source: u64, owner: Pid },
}

/// An associated timer (illumos: the timer's `port_kevent_t`).
#[derive(Debug)]
struct TimerSource {
    /// The timer.
    core: Arc<ItCore>,
    /// Reported as `portev_user`.
    user: u64,
    /// The event's queue position while queued.
    queued: Option<u64>,
}

/// Alert mode's event (illumos `port_alert_t`).
#[derive(Debug, Clone, Copy)]
struct Alert {
    events: i32,
    user: u64,
}

/// What the port queue lock guards.
#[derive(Debug, Default)]
struct PortQueue {
    /// Set once by close; never cleared.
    closed: bool,
    /// Queued events by sequence number: FIFO order, O(log n) removal.
    events: BTreeMap<u64, Queued>,
    /// The next sequence number.
    next_seq: u64,
    /// Queued user events.
    user_queued: usize,
    /// Queued timer events per owning process.
    timer_queued: BTreeMap<Pid, usize>,
    /// Event slots in use: queued user events plus associated timers.
    slots: usize,
    /// Associated timers by source id.
    sources: BTreeMap<u64, TimerSource>,
    /// The next source id.
    next_source: u64,
    /// Alert mode, if set.
    alert: Option<Alert>,
}

impl PortQueue {
    /// Queued events `pid` may take.
    fn deliverable(&self, pid: Pid) -> usize {
        self.user_queued + self.timer_queued.get(&pid).copied().unwrap_or(0)
    }

    fn push(&mut self, ev: Queued) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.events.insert(seq, ev);
        match ev {
            Queued::User { .. } => self.user_queued += 1,
            Queued::Timer { owner, .. } => *self.timer_queued.entry(owner).or_default() += 1,
        }
        seq
    }

    fn unqueue(&mut self, seq: u64) {
        let Some(ev) = self.events.remove(&seq) else {
            return;
        };
        match ev {
            Queued::User { .. } => {
                self.user_queued -= 1;
                self.slots -= 1;
            }
            Queued::Timer { source, owner } => {
                if let Some(n) = self.timer_queued.get_mut(&owner) {
                    *n -= 1;
                    if *n == 0 {
                        self.timer_queued.remove(&owner);
                    }
                }
                if let Some(s) = self.sources.get_mut(&source) {
                    s.queued = None;
                }
            }
        }
    }

    /// Takes up to `limit` events `pid` may take, oldest first.
    fn take(&mut self, pid: Pid, limit: usize) -> Vec<Taken> {
        let seqs: Vec<(u64, Queued)> = self
            .events
            .iter()
            .filter(|(_, ev)| match ev {
                Queued::User { .. } => true,
                Queued::Timer { owner, .. } => *owner == pid,
            })
            .take(limit)
            .map(|(s, ev)| (*s, *ev))
            .collect();
        let mut out = Vec::with_capacity(seqs.len());
        for (seq, ev) in seqs {
            let taken = match ev {
                Queued::User { events, user } => Taken::User(PortEvent {
                    portev_events: events,
                    portev_source: PORT_SOURCE_USER as u16,
                    portev_object: 0,
                    portev_user: user,
                    ..PortEvent::default()
                }),
                Queued::Timer { source, .. } => {
                    let s = &self.sources[&source];
                    Taken::Timer {
                        core: s.core.clone(),
                        source,
                        user: s.user,
                    }
                }
            };
            self.unqueue(seq);
            out.push(taken);
        }
        out
    }
}

/// An event taken out of the queue by one retrieval pass.
enum Taken {
    /// Complete as it is.
    User(PortEvent),
    /// Needs its timer's callback (run without the queue lock).
    Timer {
        core: Arc<ItCore>,
        source: u64,
        user: u64,
    },
}

/// An event port (illumos `port_t`).
pub(crate) struct Port {
    /// Its id in the kernel's port table.
    pub id: i32,
    /// The process that created it (counts against its limit; closes it).
    pub owner: Pid,
    /// libc's private port (the SIGEV_THREAD service): invisible to user
    /// calls.
    pub private: bool,
    /// The most event slots (immutable).
    max_events: usize,
    /// The port queue lock.
    q: Mutex<PortQueue>,
    /// Waiters sleep here with `q`.
    cv: Condvar,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("id", &self.id)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// A timer's link to its port (in the timer's `it_mutex`-guarded state).
#[derive(Debug, Clone)]
pub(crate) struct PortLink {
    /// The port.
    pub port: Arc<Port>,
    /// The timer's source id in that port.
    pub source: u64,
}

impl PortLink {
    /// Whether this link is the association `source` of `port`.
    pub fn is(&self, port: &Arc<Port>, source: u64) -> bool {
        Arc::ptr_eq(&self.port, port) && self.source == source
    }
}

impl Port {
    fn new(id: i32, owner: Pid, private: bool, max_events: usize) -> Port {
        Port {
            id,
            owner,
            private,
            max_events,
            q: Mutex::new(PortQueue::default()),
            cv: Condvar::new(),
        }
    }

    /// Associates a timer (at `timer_create`), reserving its event slot.
    /// `EAGAIN` when the port has no free slot, `EBADF` if it was closed.
    pub(crate) fn attach_timer(&self, core: Arc<ItCore>, user: u64) -> Result<u64, Errno> {
        let mut q = self.q.lock();
        if q.closed {
            return Err(Errno::EBADF);
        }
        if q.slots >= self.max_events {
            return Err(Errno::EAGAIN);
        }
        q.slots += 1;
        let source = q.next_source;
        q.next_source += 1;
        q.sources.insert(
            source,
            TimerSource {
                core,
                user,
                queued: None,
            },
        );
        Ok(source)
    }

    /// Dissociates a timer (delete, or an undone create): its queued event,
    /// if any, is removed and its slot released. Nothing if the port was
    /// closed meanwhile (close already let go of it).
    pub(crate) fn detach_timer(&self, source: u64) {
        let mut q = self.q.lock();
        if let Some(seq) = q.sources.get(&source).and_then(|s| s.queued) {
            q.unqueue(seq);
        }
        if q.sources.remove(&source).is_some() {
            q.slots -= 1;
        }
    }

    /// Queues timer `source`'s cached event (from `timer_fire`, with the
    /// timer's `it_mutex` held). `false` if the port is closed or the timer
    /// no longer associated: nothing was queued.
    pub(crate) fn post_timer(&self, source: u64) -> bool {
        let mut q = self.q.lock();
        if q.closed {
            return false;
        }
        let Some(s) = q.sources.get(&source) else {
            return false;
        };
        debug_assert!(s.queued.is_none(), "queued only while pending > 0");
        let owner = s.core.proc.pid;
        let seq = q.push(Queued::Timer { source, owner });
        q.sources.get_mut(&source).expect("looked up above").queued = Some(seq);
        self.cv.notify_all();
        true
    }

    /// `port_send`: queues a `PORT_SOURCE_USER` event. `EAGAIN` when full,
    /// `EBADF` if closed.
    fn send(&self, events: i32, user: u64) -> Result<(), Errno> {
        let mut q = self.q.lock();
        if q.closed {
            return Err(Errno::EBADF);
        }
        if q.slots >= self.max_events {
            return Err(Errno::EAGAIN);
        }
        q.slots += 1;
        q.push(Queued::User { events, user });
        self.cv.notify_all();
        Ok(())
    }

    /// `port_alert`: see [`port_alert`].
    fn alert(&self, flags: i32, events: i32, user: u64) -> Result<(), Errno> {
        if flags != PORT_ALERT_SET && flags != PORT_ALERT_UPDATE {
            return Err(Errno::EINVAL);
        }
        let mut q = self.q.lock();
        if q.closed {
            return Err(Errno::EBADF);
        }
        if events == 0 {
            q.alert = None;
            return Ok(());
        }
        if flags == PORT_ALERT_UPDATE && q.alert.is_some() {
            return Err(Errno::EBUSY);
        }
        q.alert = Some(Alert { events, user });
        self.cv.notify_all();
        Ok(())
    }

    /// Events queued (every source, every owner).
    fn queued(&self) -> usize {
        self.q.lock().events.len()
    }

    /// Closes the port: waiters wake with `EBADFD`, queued events are
    /// discarded, then every associated timer is detached
    /// (`timer_close_port`, with the queue lock dropped: it takes
    /// `it_mutex`).
    // An associated fn, not `self: &Arc<Self>`: under `--cfg loom` the
    // Arc is loom's, which stable Rust does not accept as a receiver.
    fn close(this: &Arc<Self>) {
        // Deliberately broken variant, compiled only for the loom suite's
        // proof that model 4 bites on a race: the waiters are woken before
        // the port is marked closed. A retrieval that takes the queue lock
        // between the two still finds the port open and nothing queued, and
        // goes to sleep; no one wakes it again (a fire now finds the port
        // closed and posts nothing), so it sleeps for ever. The real code
        // marks the port closed and notifies under one hold of the queue
        // lock: a waiter checked `closed` under that lock and released it
        // only by waiting on `cv`, so the notify reaches it.
        #[cfg(loom_broken = "closewake")]
        this.wake_all();
        let sources = {
            let mut q = this.q.lock();
            q.closed = true;
            q.events.clear();
            q.user_queued = 0;
            q.timer_queued.clear();
            q.slots = 0;
            q.alert = None;
            #[cfg(not(loom_broken = "closewake"))]
            this.cv.notify_all();
            std::mem::take(&mut q.sources)
        };
        #[cfg(not(loom_broken = "portclose"))]
        for (source, s) in sources {
            timer_close_port(&s.core, this, source);
        }
        // Deliberately broken variant, compiled only for the loom suite's
        // proof that model 4 bites: the associated timers are not
        // detached, so they keep a link to a dead port.
        #[cfg(loom_broken = "portclose")]
        let _ = (sources, timer_close_port);
    }

    /// Wakes every waiter so it re-checks its conditions (process exit).
    fn wake_all(&self) {
        let _q = self.q.lock();
        self.cv.notify_all();
    }
}

#[derive(Debug)]
struct PortTableInner {
    /// Open ports by id.
    ports: BTreeMap<i32, Arc<Port>>,
    /// Freed ids below `next`.
    free: BTreeSet<i32>,
    /// The lowest id never handed out.
    next: i32,
    /// Open ports per owner.
    owned: BTreeMap<Pid, usize>,
}

/// The kernel's port table; see the module docs. Its lock is a leaf.
#[derive(Debug)]
pub(crate) struct PortTable {
    inner: Mutex<PortTableInner>,
}

impl PortTable {
    /// An empty table.
    pub fn new() -> PortTable {
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
    fn create(
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
    pub fn lookup(&self, id: i32, caller: Caller) -> Result<Arc<Port>, Errno> {
        let t = self.inner.lock();
        match t.ports.get(&id) {
            Some(port) if !port.private || caller == Caller::Libc => Ok(port.clone()),
            _ => Err(Errno::EBADF),
        }
    }

    fn unlink(t: &mut PortTableInner, id: i32) -> Option<Arc<Port>> {
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
    fn remove(&self, id: i32, owner: Pid, caller: Caller) -> Result<Arc<Port>, Errno> {
        let mut t = self.inner.lock();
        match t.ports.get(&id) {
            Some(p) if p.owner == owner && (!p.private || caller == Caller::Libc) => {}
            _ => return Err(Errno::EBADF),
        }
        Ok(Self::unlink(&mut t, id).expect("checked above"))
    }

    /// Takes every port `owner` owns out of the table (process exit).
    fn remove_owned(&self, owner: Pid) -> Vec<Arc<Port>> {
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
    fn all(&self) -> Vec<Arc<Port>> {
        self.inner.lock().ports.values().cloned().collect()
    }

    /// Open ports: id and owner, ascending by id.
    pub fn list(&self) -> Vec<(i32, Pid)> {
        self.inner
            .lock()
            .ports
            .values()
            .map(|p| (p.id, p.owner))
            .collect()
    }
}

/// `port_create`: a new port owned by `p`. `EMFILE` past the process's
/// `port_max`, `ESRCH` once it exited.
pub(crate) fn port_create(p: &ProcShared, caller: Caller) -> Result<i32, Errno> {
    drop(p.lock_live()?);
    let cfg = &p.kernel.config;
    let port = p.kernel.ports.create(
        p.pid,
        caller == Caller::Libc,
        cfg.port_max,
        cfg.port_max_events,
    )?;
    Ok(port.id)
}

/// `close` of a port: `EBADF` unless `p` owns the open port `id`. Waiters
/// wake with `EBADFD`, queued events are discarded, associated timers are
/// detached and keep running without notification.
pub(crate) fn port_close(p: &ProcShared, id: i32, caller: Caller) -> Result<(), Errno> {
    drop(p.lock_live()?);
    let port = p.kernel.ports.remove(id, p.pid, caller)?;
    Port::close(&port);
    Ok(())
}

/// Process exit, first step (after setting `p.exiting`): wakes every
/// port's waiters, so that `p`'s own waiters notice the exit (`EINTR`)
/// wherever they wait.
pub(crate) fn port_exit_wake(p: &ProcShared) {
    for port in p.kernel.ports.all() {
        port.wake_all();
    }
}

/// Process exit, after `timer_exit`: closes every port `p` owns (other
/// processes' timers on them are detached, their waiters get `EBADFD`).
pub(crate) fn port_exit_close(p: &ProcShared) {
    for port in p.kernel.ports.remove_owned(p.pid) {
        Port::close(&port);
    }
}

/// `port_send`: queues a `PORT_SOURCE_USER` event (object 0) on port `id`.
/// `EBADF` bad port, `EAGAIN` when the port's slots are all in use.
pub(crate) fn port_send(p: &ProcShared, id: i32, events: i32, user: u64) -> Result<(), Errno> {
    drop(p.lock_live()?);
    p.kernel.ports.lookup(id, Caller::User)?.send(events, user)
}

/// `port_alert`: `events != 0` puts the port in alert mode (every
/// retrieval returns the alert event at once, without consuming it, and
/// current waiters wake with it); `events == 0` leaves alert mode.
/// `flags` is `PORT_ALERT_SET` (overwrite) or `PORT_ALERT_UPDATE` (`EBUSY`
/// if already alerted), else `EINVAL`; `EBADF` bad port.
pub(crate) fn port_alert(
    p: &ProcShared,
    id: i32,
    flags: i32,
    events: i32,
    user: u64,
) -> Result<(), Errno> {
    drop(p.lock_live()?);
    p.kernel
        .ports
        .lookup(id, Caller::User)?
        .alert(flags, events, user)
}

/// Checks that `p` is alive (`ESRCH`) and `id` an open port it may name
/// (`EBADF`): the first checks of every port call on an existing port.
pub(crate) fn port_check(p: &ProcShared, id: i32) -> Result<(), Errno> {
    drop(p.lock_live()?);
    p.kernel.ports.lookup(id, Caller::User).map(drop)
}

/// `port_getn` with `max == 0`: the number of events queued on port `id`
/// (every source and owner), without taking any.
pub(crate) fn port_pending(p: &ProcShared, id: i32) -> Result<usize, Errno> {
    drop(p.lock_live()?);
    Ok(p.kernel.ports.lookup(id, Caller::User)?.queued())
}

/// What a retrieval returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Retrieved {
    /// The events taken, oldest first.
    pub events: Vec<PortEvent>,
    /// The timeout passed before `nget` events were available (illumos
    /// `ETIME`); `events` holds what was taken anyway.
    pub timed_out: bool,
}

/// `port_getn(max >= 1, nget <= max, timeout)`: see the module docs.
/// Errors: `ESRCH` (exited), `EBADF` (bad port), `EBADFD` (port closed
/// while waiting), `EINTR` (process exited while waiting), `EACCES` (only
/// other processes' timer events queued), or a failure to arm the timeout
/// (`ENOTSUP` without a HIGHRES clock).
pub(crate) fn port_getn(
    p: &Arc<ProcShared>,
    id: i32,
    caller: Caller,
    max: usize,
    nget: usize,
    timeout: Option<Nsec>,
) -> Result<Retrieved, Errno> {
    debug_assert!(max >= 1 && nget <= max);
    drop(p.lock_live()?);
    let port = p.kernel.ports.lookup(id, caller)?;
    let poll = timeout == Some(Nsec::ZERO);
    let expired = Arc::new(AtomicBool::new(false));
    // Declared before any queue guard, so dropped after it: a callout is
    // never deleted with the queue lock held.
    let mut callout: Option<Callout> = None;
    let mut got: Vec<PortEvent> = Vec::new();
    loop {
        let batch = {
            let mut q = port.q.lock();
            loop {
                if q.closed {
                    return Err(Errno::EBADFD);
                }
                if p.exiting.load(Ordering::SeqCst) {
                    return Err(Errno::EINTR);
                }
                if let Some(a) = q.alert {
                    if got.is_empty() {
                        got.push(PortEvent {
                            portev_events: a.events,
                            portev_source: PORT_SOURCE_ALERT as u16,
                            portev_object: 0,
                            portev_user: a.user,
                            ..PortEvent::default()
                        });
                    }
                    return Ok(Retrieved {
                        events: got,
                        timed_out: false,
                    });
                }
                let need = nget - got.len().min(nget);
                let mine = q.deliverable(p.pid);
                if need > 0 && mine == 0 && !q.events.is_empty() && got.is_empty() {
                    return Err(Errno::EACCES);
                }
                if mine >= need || poll || expired.load(Ordering::SeqCst) {
                    break;
                }
                if let (Some(t), None) = (timeout, &callout) {
                    drop(q);
                    let (port2, flag) = (port.clone(), expired.clone());
                    callout = Some(Callout::arm(&p.kernel.registry, p.pid, t, move || {
                        flag.store(true, Ordering::SeqCst);
                        port2.wake_all();
                    })?);
                    q = port.q.lock();
                    continue;
                }
                q = port.cv.wait(q);
            }
            q.take(p.pid, max - got.len())
        };
        for t in batch {
            match t {
                Taken::User(ev) => got.push(ev),
                Taken::Timer { core, source, user } => {
                    if let Some(events) = timer_port_callback(&core, &port, source) {
                        got.push(PortEvent {
                            portev_events: events,
                            portev_source: PORT_SOURCE_TIMER as u16,
                            portev_object: core.id as u64,
                            portev_user: user,
                            ..PortEvent::default()
                        });
                    }
                }
            }
        }
        let expired_now = expired.load(Ordering::SeqCst);
        if got.len() >= nget || poll || expired_now {
            let timed_out = expired_now && got.len() < nget;
            return Ok(Retrieved {
                events: got,
                timed_out,
            });
        }
        // Some taken timer events vanished (their timers were deleted or
        // detached before their callbacks ran): wait for more.
    }
}
