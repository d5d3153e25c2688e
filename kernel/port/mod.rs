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
//! Where the port queue lock stands: last in the lock order (see
//! [`crate`], the one statement). `timer_fire` of a port timer posts the
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

use nix::errno::Errno;

use crate::abi::{PORT_SOURCE_ALERT, PORT_SOURCE_TIMER, PortEvent};
use crate::callout::Callout;
use crate::proc::ProcShared;
use crate::sync::Arc;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::time::Nsec;

pub mod queue;
pub mod table;

pub(crate) use queue::Port;
use queue::Taken;
pub(crate) use table::Caller;
pub use table::{FIRST_PORT_ID, PORT_MAX_DEFAULT, PORT_MAX_EVENTS_DEFAULT};

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
                    if let Some(events) = core.taken(&port, source) {
                        got.push(PortEvent {
                            portev_events: events,
                            portev_source: PORT_SOURCE_TIMER as u16,
                            portev_object: core.object(),
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
