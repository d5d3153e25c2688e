//! One event port's queue (illumos `port_t` and its `port_queue_t`): the
//! FIFO of queued events, the slot count, the associated timers' cached
//! events, alert mode, and close.
//!
//! The port queue lock (`Port::q`) guards `PortQueue`; waiters sleep on
//! `Port::cv` with it. It is the innermost lock of the kernel (see the lock
//! order in [`crate`]). The object behind a cached event is reached through
//! the callback its association carries ([`EventSource`], illumos'
//! `portkev_callback`), so the queue names no timer code. The state
//! machine of a cached event is in [`crate::port`].

use std::collections::BTreeMap;

use nix::errno::Errno;

use crate::abi::{PORT_ALERT_SET, PORT_ALERT_UPDATE, PORT_SOURCE_USER, PortEvent};
use crate::ids::Pid;
use crate::sync::{Arc, Condvar, Mutex};

/// What a port calls back on the object behind an associated source's
/// cached event (illumos' `portkev_callback`, with its
/// `PORT_CALLBACK_DEFAULT` and `PORT_CALLBACK_CLOSE` cases). Called with no
/// port lock held.
pub(crate) trait EventSource: Send + Sync + std::fmt::Debug {
    /// The process that alone may take the event.
    fn owner(&self) -> Pid;
    /// The event's `portev_object` (a timer's id).
    fn object(&self) -> u64;
    /// A retrieval took the event of association `source` of `port`: the
    /// event's `portev_events`, or `None` if the association is gone (the
    /// event is then dropped).
    fn taken(&self, port: &Arc<Port>, source: u64) -> Option<i32>;
    /// `port` closed while `source` was associated.
    fn port_closed(&self, port: &Arc<Port>, source: u64);
}

/// An associated source, as a port holds it (boxed because loom's `Arc`
/// cannot hold an unsized value).
pub(crate) type SourceRef = Arc<Box<dyn EventSource>>;

/// A queued event.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Queued {
    /// `port_send`: shareable with every process.
    User { events: i32, user: u64 },
    /// A timer's cached event: only `owner` may take it.
    Timer { source: u64, owner: Pid },
}

/// An associated timer (illumos: the timer's `port_kevent_t`).
#[derive(Debug)]
pub(crate) struct TimerSource {
    /// The timer.
    pub(crate) core: SourceRef,
    /// Reported as `portev_user`.
    pub(crate) user: u64,
    /// The event's queue position while queued.
    pub(crate) queued: Option<u64>,
}

/// Alert mode's event (illumos `port_alert_t`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Alert {
    pub(crate) events: i32,
    pub(crate) user: u64,
}

/// What the port queue lock guards.
#[derive(Debug, Default)]
pub(crate) struct PortQueue {
    /// Set once by close; never cleared.
    pub(crate) closed: bool,
    /// Queued events by sequence number: FIFO order, O(log n) removal.
    pub(crate) events: BTreeMap<u64, Queued>,
    /// The next sequence number.
    pub(crate) next_seq: u64,
    /// Queued user events.
    pub(crate) user_queued: usize,
    /// Queued timer events per owning process.
    pub(crate) timer_queued: BTreeMap<Pid, usize>,
    /// Event slots in use: queued user events plus associated timers.
    pub(crate) slots: usize,
    /// Associated timers by source id.
    pub(crate) sources: BTreeMap<u64, TimerSource>,
    /// The next source id.
    pub(crate) next_source: u64,
    /// Alert mode, if set.
    pub(crate) alert: Option<Alert>,
}

impl PortQueue {
    /// Reserves one event slot of at most `max`: `EBADF` once the port is
    /// closed, `EAGAIN` when every slot is in use.
    fn take_slot(&mut self, max: usize) -> Result<(), Errno> {
        if self.closed {
            return Err(Errno::EBADF);
        }
        if self.slots >= max {
            return Err(Errno::EAGAIN);
        }
        self.slots += 1;
        Ok(())
    }

    /// Queued events `pid` may take.
    pub(crate) fn deliverable(&self, pid: Pid) -> usize {
        self.user_queued + self.timer_queued.get(&pid).copied().unwrap_or(0)
    }

    pub(crate) fn push(&mut self, ev: Queued) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.events.insert(seq, ev);
        match ev {
            Queued::User { .. } => self.user_queued += 1,
            Queued::Timer { owner, .. } => *self.timer_queued.entry(owner).or_default() += 1,
        }
        seq
    }

    pub(crate) fn unqueue(&mut self, seq: u64) {
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
    pub(crate) fn take(&mut self, pid: Pid, limit: usize) -> Vec<Taken> {
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
pub(crate) enum Taken {
    /// Complete as it is.
    User(PortEvent),
    /// Needs its timer's callback (run without the queue lock).
    Timer {
        core: SourceRef,
        source: u64,
        user: u64,
    },
}

/// An event port (illumos `port_t`).
pub(crate) struct Port {
    /// Its id in the kernel's port table.
    pub(crate) id: i32,
    /// The process that created it (counts against its limit; closes it).
    pub(crate) owner: Pid,
    /// libc's private port (the SIGEV_THREAD service): invisible to user
    /// calls.
    pub(crate) private: bool,
    /// The most event slots (immutable).
    pub(crate) max_events: usize,
    /// The port queue lock.
    pub(crate) q: Mutex<PortQueue>,
    /// Waiters sleep here with `q`.
    pub(crate) cv: Condvar,
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
    pub(crate) port: Arc<Port>,
    /// The timer's source id in that port.
    pub(crate) source: u64,
}

impl PortLink {
    /// Whether this link is the association `source` of `port`.
    pub(crate) fn is(&self, port: &Arc<Port>, source: u64) -> bool {
        Arc::ptr_eq(&self.port, port) && self.source == source
    }
}

impl Port {
    pub(crate) fn new(id: i32, owner: Pid, private: bool, max_events: usize) -> Port {
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
    pub(crate) fn attach_timer(&self, core: SourceRef, user: u64) -> Result<u64, Errno> {
        let mut q = self.q.lock();
        q.take_slot(self.max_events)?;
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
        let owner = s.core.owner();
        let seq = q.push(Queued::Timer { source, owner });
        q.sources.get_mut(&source).expect("looked up above").queued = Some(seq);
        self.cv.notify_all();
        true
    }

    /// `port_send`: queues a `PORT_SOURCE_USER` event. `EAGAIN` when full,
    /// `EBADF` if closed.
    pub(crate) fn send(&self, events: i32, user: u64) -> Result<(), Errno> {
        let mut q = self.q.lock();
        q.take_slot(self.max_events)?;
        q.push(Queued::User { events, user });
        self.cv.notify_all();
        Ok(())
    }

    /// `port_alert`: see [`crate::port::port_alert`].
    pub(crate) fn alert(&self, flags: i32, events: i32, user: u64) -> Result<(), Errno> {
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
    pub(crate) fn queued(&self) -> usize {
        self.q.lock().events.len()
    }

    /// Closes the port: waiters wake with `EBADFD`, queued events are
    /// discarded, then every associated timer is detached
    /// (`timer_close_port`, with the queue lock dropped: it takes
    /// `it_mutex`).
    // An associated fn, not `self: &Arc<Self>`: under `--cfg loom` the
    // Arc is loom's, which stable Rust does not accept as a receiver.
    pub(crate) fn close(this: &Arc<Self>) {
        let sources = {
            let mut q = this.q.lock();
            q.closed = true;
            q.events.clear();
            q.user_queued = 0;
            q.timer_queued.clear();
            q.slots = 0;
            q.alert = None;
            this.cv.notify_all();
            std::mem::take(&mut q.sources)
        };
        for (source, s) in sources {
            s.core.port_closed(this, source);
        }
    }

    /// Wakes every waiter so it re-checks its conditions (process exit).
    pub(crate) fn wake_all(&self) {
        let _q = self.q.lock();
        self.cv.notify_all();
    }
}
