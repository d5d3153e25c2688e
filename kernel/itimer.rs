//! Interval timers: the syscalls, `timer_fire` and the consumption callback.
//!
//! Models illumos `usr/src/uts/common/os/timer.c` (`timer_create`,
//! `timer_settime`, `timer_gettime`, `timer_getoverrun`, `timer_delete`,
//! `timer_fire`, `timer_signal`, `timer_lwpexit`, `timer_lwpbind`,
//! `timer_exit`).
//!
//! # Objects
//!
//! * [`Itimer`] sits in the process's timer table: the timer's id, clock,
//!   the backend's per-timer half, and `it_cv` (waited on with `p_lock` by
//!   the lock protocol, see [`crate::lock`]).
//! * [`ItCore`] is what expiry needs, shared with the backend's [`Fire`] and
//!   with the queued signal entry (illumos `sq_backptr`): the process, the
//!   timer's [`Notify`] (with a signal timer's entry key) and `it_mutex`.
//! * [`ItState`], under `it_mutex`: `pending` (expirations since the
//!   notification now outstanding was queued, that one included; 0 when no
//!   notification is outstanding), `overrun` (latched at consumption),
//!   `expirations` (every expiration ever reported, for accounting), the
//!   LWP binding, and for a port timer its `PortLink`
//!   (illumos `it_portev`), cleared when the port closes.
//!
//! # Accounting (the invariant every test and loom model checks)
//!
//! For each timer, expirations = notifications consumed + overruns latched
//! plus `pending` of the outstanding notification. `timer_fire(k)` with a
//! notification outstanding adds `k` to `pending` (64-bit, saturating); with
//! none it sets `pending = k` and queues the preallocated entry, or posts
//! the timer's cached port event (no allocation on either path).
//! Consumption latches `overrun = pending - 1` (clamped to
//! `DELAYTIMER_MAX`) and clears `pending`; a port retrieval
//! (`timer_port_callback`) also reports `pending` as `portev_events`.
//!
//! # Locks
//!
//! The order is stated once, in [`crate`]. `timer_fire` of a signal timer takes `p_lock` then `it_mutex`; every
//! other notification only `it_mutex` (then, for a port timer, the port
//! queue lock to post the cached event). A port retrieval runs
//! `timer_port_callback` after dropping the queue lock.
//!
//! # Deviations from illumos
//!
//! * A timer under construction is invisible (`EINVAL`) to `timer_grab`
//!   instead of making grabbers wait for the outcome; no caller can hold its
//!   id yet, so the difference is unobservable to correct programs.
//! * `it_pending` is 64-bit and saturating; `timer_getoverrun` reports at most
//!   `DELAYTIMER_MAX`.
//! * `timer_fire` takes a count, so a backend that was late reports all
//!   missed periods in one O(1) step.

use nix::errno::Errno;

use crate::abi::{
    DELAYTIMER_MAX, NSIG, SI_TIMER, SIGEV_NONE, SIGEV_PORT, SIGEV_SIGNAL, SIGEV_THREAD, Sigevent,
    Siginfo,
};
use crate::backend::{BackendTimer, Fire, SettimeFlags, TimerCreate};
use crate::ids::{LwpId, Pid};
use crate::lock::{GrabMode, timer_delete_locked, timer_grab, timer_release};
use crate::port::queue::{EventSource, Port, PortLink};
use crate::port::table::Caller;
use crate::proc::ProcShared;
use crate::sigqueue::{SigConsumer, SigKey};
use crate::sync::{Arc, Condvar, Mutex};
use crate::table::{Alloc, Growth, LiveSlot};
use crate::time::ItimerSpecNs;

/// How a timer notifies, fixed at `timer_create`: the one place this is
/// stored (illumos keeps `IT_SIGNAL` / `IT_PORT` in `it_flags` beside the
/// entry and event pointers; [`ItFlags`] is now only how it is reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notify {
    /// `SIGEV_SIGNAL`: by the preallocated signal entry `SigKey`;
    /// `timer_fire` then takes `p_lock`.
    Signal(SigKey),
    /// `SIGEV_PORT` / `SIGEV_THREAD`: by the cached event on a port (the
    /// association is `ItState::port`, cleared when the port closes).
    Port,
    /// `SIGEV_NONE`: not at all.
    Nothing,
}

bitflags::bitflags! {
    /// How a timer notifies, as reported (illumos `it_flags`): derived from
    /// its [`Notify`] and whether its port association still stands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct ItFlags: u8 {
        /// Notifies by queued signal (illumos `IT_SIGNAL`).
        const SIGNAL = 0x1;
        /// Notifies by port event (illumos `IT_PORT`); cleared when the
        /// port closes.
        const PORT = 0x2;
    }
}

/// What `it_mutex` guards.
#[derive(Debug, Default)]
pub(crate) struct ItState {
    /// Expirations since the outstanding notification was queued (that one
    /// included); 0 when none is outstanding. Saturating.
    pub pending: u64,
    /// The overrun latched at the last consumption, at most `DELAYTIMER_MAX`.
    pub overrun: i32,
    /// Every expiration the backend has reported (the sum of `k` over
    /// `timer_fire(k)`), saturating: the count the conservation invariant
    /// is checked against.
    pub expirations: u64,
    /// The LWP the timer is bound to; `None` once that LWP exited.
    pub lwp: Option<LwpId>,
    /// A `SIGEV_PORT` / `SIGEV_THREAD` timer's association with its port
    /// (illumos `it_portev`); `None` for other timers, and once the port
    /// closed or the timer is being deleted.
    pub port: Option<PortLink>,
}

impl ItState {
    /// The `IT_*` flags of a timer that notifies by `notify` in this state.
    pub fn flags(&self, notify: Notify) -> ItFlags {
        match notify {
            Notify::Signal(_) => ItFlags::SIGNAL,
            Notify::Port if self.port.is_some() => ItFlags::PORT,
            Notify::Port | Notify::Nothing => ItFlags::empty(),
        }
    }
}

/// The part of a timer that expiry needs (see the module docs).
#[derive(Debug)]
pub(crate) struct ItCore {
    /// The timer id (its slot index).
    pub id: usize,
    /// The owning process.
    pub proc: Arc<ProcShared>,
    /// How it notifies (immutable; a signal timer's `timer_fire` needs
    /// `p_lock`).
    pub notify: Notify,
    /// `it_mutex`.
    pub it_mutex: Mutex<ItState>,
}

/// A timer in the table (illumos `itimer_t`).
pub(crate) struct Itimer {
    /// Shared with the backend and the signal entry.
    pub core: Arc<ItCore>,
    /// The clock id it was created on.
    pub clock: i32,
    /// The backend's per-timer half.
    pub btimer: Box<dyn BackendTimer>,
    /// Waited on with `p_lock` by the lock protocol.
    pub it_cv: Condvar,
}

impl std::fmt::Debug for Itimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Itimer")
            .field("id", &self.core.id)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Itimer {
    /// The timer id.
    pub fn id(&self) -> usize {
        self.core.id
    }
}

/// Validates a caller's sigevent, in illumos' order: the notify kind
/// (exactly one of the four, nothing else), then the signal number. The
/// port of a `SIGEV_PORT` / `SIGEV_THREAD` sigevent is looked up later,
/// after the timer id is reserved, as illumos does.
fn validate_sigevent(ev: &Sigevent) -> Result<(), Errno> {
    match ev.sigev_notify {
        SIGEV_NONE | SIGEV_PORT | SIGEV_THREAD => Ok(()),
        SIGEV_SIGNAL if (1..NSIG).contains(&ev.sigev_signo) => Ok(()),
        _ => Err(Errno::EINVAL),
    }
}

/// Whether a sigevent asks for port notification. The kernel treats
/// `SIGEV_THREAD` exactly as `SIGEV_PORT` (illumos: libc builds threads on
/// a port and passes it in the sigevent).
fn wants_port(ev: &Sigevent) -> bool {
    matches!(ev.sigev_notify, SIGEV_PORT | SIGEV_THREAD)
}

/// Reserves the lowest free timer id, growing the table outside `p_lock`
/// when needed. `EAGAIN` at `timer_max`, `ESRCH` if the process exited.
fn reserve_id(p: &ProcShared) -> Result<usize, Errno> {
    loop {
        let want = match p.lock_live()?.timers.alloc_id() {
            Alloc::Got(id) => return Ok(id),
            Alloc::Full => return Err(Errno::EAGAIN),
            Alloc::Grow(want) => want,
        };
        let growth = Growth::allocate(want);
        p.lock_live()?.timers.install(growth);
    }
}

/// `timer_create`, checking in illumos' order: `EINVAL` for an unknown
/// clock or a bad sigevent, `EAGAIN` when the table is full, `EBADF` for a
/// `SIGEV_PORT` / `SIGEV_THREAD` port that `caller` cannot name, `EAGAIN`
/// when that port has no free event slot, else the backend's answer.
/// Returns the new id.
pub(crate) fn timer_create(
    p: &Arc<ProcShared>,
    clock: i32,
    evp: Option<&Sigevent>,
    caller: Caller,
) -> Result<i32, Errno> {
    let backend = p
        .kernel
        .registry
        .clock_get_backend(clock)
        .ok_or(Errno::EINVAL)?
        .clone();
    let mut ev = match evp {
        Some(ev) => {
            validate_sigevent(ev)?;
            *ev
        }
        None => backend.default_sigevent(),
    };
    let id = reserve_id(p)?;
    if evp.is_none() {
        ev.sigev_value = id as u64;
    }
    let signals = ev.sigev_notify == SIGEV_SIGNAL;
    let port = if wants_port(&ev) {
        match p.kernel.ports.lookup(ev.sigev_port.portnfy_port, caller) {
            Ok(port) => Some(port),
            Err(e) => {
                p.p_lock.lock().timers.free_slot(id);
                return Err(e);
            }
        }
    } else {
        None
    };

    let sigq_key = if signals {
        let mut st = p.p_lock.lock();
        Some(st.sig.alloc_timer_entry(Siginfo {
            si_signo: ev.sigev_signo,
            si_code: SI_TIMER,
            si_pid: p.pid.0,
            si_uid: p.cred.uid,
            si_value: ev.sigev_value,
            si_timerid: id as i32,
            si_overrun: 0,
        }))
    } else {
        None
    };
    let notify = match (sigq_key, &port) {
        (Some(key), _) => Notify::Signal(key),
        (None, Some(_)) => Notify::Port,
        (None, None) => Notify::Nothing,
    };
    let core = Arc::new(ItCore {
        id,
        proc: p.clone(),
        notify,
        it_mutex: Mutex::new(ItState {
            lwp: Some(LwpId::MAIN),
            ..ItState::default()
        }),
    });
    if let Some(port) = port {
        // Reserve the cached event's slot now, so timer_fire never fails.
        match port.attach_timer(
            Arc::new(Box::new(TimerEvents(core.clone()))),
            ev.sigev_port.portnfy_user,
        ) {
            Ok(source) => core.it_mutex.lock().port = Some(PortLink { port, source }),
            Err(e) => {
                p.p_lock.lock().timers.free_slot(id);
                return Err(e);
            }
        }
    }

    let fire_core = core.clone();
    let created = backend.timer_create(TimerCreate {
        fire: Fire::new(move |k| timer_fire(&fire_core, k)),
        pid: p.pid,
        lwp: LwpId::MAIN,
        privileged: p.cred.privileged,
    });
    let btimer = match created {
        Ok(b) => b,
        Err(e) => {
            detach_port(&core);
            let mut st = p.p_lock.lock();
            if let Some(key) = sigq_key {
                st.sig.release_timer_entry(key);
            }
            st.timers.free_slot(id);
            return Err(e);
        }
    };

    let it = Arc::new(Itimer {
        core: core.clone(),
        clock,
        btimer,
        it_cv: Condvar::new(),
    });
    let mut st = p.p_lock.lock();
    if st.exited {
        // Exit ran while we built the timer; it could not see it. Undo.
        if let Some(key) = sigq_key {
            st.sig.release_timer_entry(key);
        }
        st.timers.free_slot(id);
        drop(st);
        it.btimer.delete();
        detach_port(&core);
        return Err(Errno::ESRCH);
    }
    if let Some(key) = sigq_key {
        st.sig.set_owner(key, Arc::new(Box::new(core)));
    }
    st.timers.publish(
        id,
        LiveSlot {
            it,
            itlk: Default::default(),
            blockers: 0,
        },
    );
    Ok(id as i32)
}

/// `timer_settime`: returns the previous setting, read atomically with the
/// set. `EINVAL` for unknown flag bits, a bad itimerspec, or a bad id.
pub(crate) fn timer_settime(
    p: &ProcShared,
    tid: i32,
    flags: i32,
    value: &crate::abi::Itimerspec,
) -> Result<ItimerSpecNs, Errno> {
    let flags = SettimeFlags::from_bits(flags).ok_or(Errno::EINVAL)?;
    let spec = ItimerSpecNs::from_raw(value)?;
    let it = timer_grab(p, tid, GrabMode::Syscall)?;
    let old = it.btimer.settime(&p.cred, flags, spec);
    timer_release(p, &it);
    old
}

/// `timer_gettime`: the time remaining and the interval.
pub(crate) fn timer_gettime(p: &ProcShared, tid: i32) -> Result<ItimerSpecNs, Errno> {
    let it = timer_grab(p, tid, GrabMode::Syscall)?;
    let cur = it.btimer.gettime();
    timer_release(p, &it);
    Ok(cur)
}

/// `timer_getoverrun`: the overrun latched at the last consumption.
pub(crate) fn timer_getoverrun(p: &ProcShared, tid: i32) -> Result<i32, Errno> {
    let it = timer_grab(p, tid, GrabMode::Syscall)?;
    let overrun = it.core.it_mutex.lock().overrun;
    timer_release(p, &it);
    Ok(overrun)
}

/// `timer_delete`.
pub(crate) fn timer_delete(p: &ProcShared, tid: i32) -> Result<(), Errno> {
    let it = timer_grab(p, tid, GrabMode::Syscall)?;
    timer_delete_locked(p, &it, p.p_lock.lock());
    Ok(())
}

/// `timer_lwpbind`: binds timer `tid` to `lwp`. `EINVAL` for a bad id or an
/// LWP that is not alive.
pub(crate) fn timer_lwpbind(p: &ProcShared, tid: i32, lwp: LwpId) -> Result<(), Errno> {
    if !p.lock_live()?.lwps.contains(&lwp) {
        return Err(Errno::EINVAL);
    }
    let it = timer_grab(p, tid, GrabMode::Syscall)?;
    let res = it.btimer.lwpbind(lwp);
    if res.is_ok() {
        it.core.it_mutex.lock().lwp = Some(lwp);
    }
    timer_release(p, &it);
    res
}

/// `timer_lwpexit`: timers bound to `lwp` are unbound and told so; they keep
/// running.
pub(crate) fn timer_lwpexit(p: &ProcShared, lwp: LwpId) {
    let ids = p.p_lock.lock().timers.live_ids();
    for id in ids {
        let Ok(it) = timer_grab(p, id as i32, GrabMode::Teardown) else {
            continue;
        };
        let was_bound = {
            let mut s = it.core.it_mutex.lock();
            let bound = s.lwp == Some(lwp);
            if bound {
                s.lwp = None;
            }
            bound
        };
        if was_bound {
            it.btimer.lwpexit(lwp);
        }
        timer_release(p, &it);
    }
}

/// `timer_exit`: deletes every timer of an exiting process.
pub(crate) fn timer_exit(p: &ProcShared) {
    let ids = p.p_lock.lock().timers.live_ids();
    for id in ids {
        if let Ok(it) = timer_grab(p, id as i32, GrabMode::Teardown) {
            timer_delete_locked(p, &it, p.p_lock.lock());
        }
    }
}

/// The last step of a delete, after the backend has let go: the
/// notification is detached (a queued signal entry is orphaned: still
/// delivered, with no overrun update; an idle one is freed; a port event
/// is removed from its port, which releases its slot; a SIGEV_THREAD
/// callback is unregistered and, unless this runs on the notification
/// thread, waited for).
pub(crate) fn timer_detach_notification(p: &ProcShared, it: &Itimer) {
    if let Notify::Signal(key) = it.core.notify {
        p.p_lock.lock().sig.release_timer_entry(key);
    }
    detach_port(&it.core);
    crate::notify_thread::timer_forget(p, it.id() as i32);
}

/// Dissociates a port timer from its port (delete, or an undone create).
/// The link is cleared under `it_mutex` first, so a retrieval already
/// holding the event drops it; then, with `it_mutex` released (the queue
/// lock comes after it, and is all that is needed), the event leaves the
/// queue and its slot is freed.
fn detach_port(core: &ItCore) {
    let link = {
        let mut s = core.it_mutex.lock();
        s.pending = 0;
        s.port.take()
    };
    if let Some(link) = link {
        link.port.detach_timer(link.source);
    }
}

/// `timer_fire`: `k >= 1` expirations happened. See the module docs.
pub(crate) fn timer_fire(core: &ItCore, k: u64) {
    if let Notify::Signal(key) = core.notify {
        let mut st = core.proc.p_lock.lock();
        {
            let mut s = core.it_mutex.lock();
            s.expirations = s.expirations.saturating_add(k);
            if s.pending > 0 {
                s.pending = s.pending.saturating_add(k);
                return;
            }
            s.pending = k;
        }
        if let Some(owner) = st.sig.enqueue(key) {
            // Discarded at generation (ignored and not blocked): the
            // consumption callback runs at once.
            owner.consumed();
        } else {
            core.proc.p_sigcv.notify_all();
        }
    } else {
        let mut s = core.it_mutex.lock();
        s.expirations = s.expirations.saturating_add(k);
        if s.pending > 0 {
            s.pending = s.pending.saturating_add(k);
            return;
        }
        if let Some(link) = &s.port
            && link.port.post_timer(link.source)
        {
            s.pending = k;
        }
        // SIGEV_NONE, or a port timer whose port closed: nothing to
        // notify, nothing to count.
    }
}

/// `timer_signal`, the consumption callback: latches the overrun and clears
/// `pending`. Called with `p_lock` held. Returns the latched overrun.
pub(crate) fn timer_signal(core: &ItCore) -> i32 {
    let mut s = core.it_mutex.lock();
    let overrun = s.pending.saturating_sub(1).min(DELAYTIMER_MAX as u64) as i32;
    s.overrun = overrun;
    s.pending = 0;
    overrun
}

/// `timer_port_callback`: run by a port retrieval, without the port queue
/// lock, for the cached event of association `source` of `port` that it
/// took out of the queue. Returns `portev_events` (the expirations behind
/// the event, at most `i32::MAX`), latches the overrun and clears
/// `pending`; `None` if the timer was detached or deleted since the event
/// was taken (the retrieval drops it).
pub(crate) fn timer_port_callback(core: &ItCore, port: &Arc<Port>, source: u64) -> Option<i32> {
    let mut s = core.it_mutex.lock();
    if !s.port.as_ref().is_some_and(|l| l.is(port, source)) {
        return None;
    }
    debug_assert!(s.pending > 0, "a taken event has pending expirations");
    let events = s.pending.min(i32::MAX as u64) as i32;
    s.overrun = s.pending.saturating_sub(1).min(DELAYTIMER_MAX as u64) as i32;
    s.pending = 0;
    Some(events)
}

/// `timer_close_port`: `port` closed while timer `core` was associated as
/// `source`. The timer loses its notification (`IT_PORT` cleared, nothing
/// outstanding) and keeps running; it can still be read and deleted.
/// Called without the port queue lock.
pub(crate) fn timer_close_port(core: &ItCore, port: &Arc<Port>, source: u64) {
    let mut s = core.it_mutex.lock();
    if s.port.as_ref().is_some_and(|l| l.is(port, source)) {
        s.port = None;
        s.pending = 0;
    }
}

/// A timer as the consumer of its signal entry: `timer_signal`.
impl SigConsumer for Arc<ItCore> {
    fn consumed(&self) -> i32 {
        timer_signal(self)
    }
}

/// A timer as the source of its port's cached event: the port's callbacks
/// on it are `timer_port_callback` and `timer_close_port` (illumos passes
/// the same pair as the event's `portkev_callback`).
#[derive(Debug)]
struct TimerEvents(Arc<ItCore>);

impl EventSource for TimerEvents {
    fn owner(&self) -> Pid {
        self.0.proc.pid
    }

    fn object(&self) -> u64 {
        self.0.id as u64
    }

    fn taken(&self, port: &Arc<Port>, source: u64) -> Option<i32> {
        timer_port_callback(&self.0, port, source)
    }

    fn port_closed(&self, port: &Arc<Port>, source: u64) {
        timer_close_port(&self.0, port, source);
    }
}
