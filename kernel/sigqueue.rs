//! The per-process signal queue: queued `siginfo`, preallocated timer
//! entries, dispositions, the blocked mask, and the waiting syscalls.
//!
//! Models the parts of illumos `sigqueue_t` / `sigaddqa` / `sigdeq` and
//! `sigtimedwait` that timers use.
//!
//! # Invariants (all under `p_lock`)
//!
//! * Every entry lives in one slab. A timer's entry is allocated at
//!   `timer_create` and reused by every expiry, so queueing a timer signal
//!   never allocates. An entry is queued at most once: `queued` says so, and
//!   the timer's `pending > 0` is what stops a second queueing.
//! * Queued entries form one FIFO list per signal number (intrusive, through
//!   `next`), and `queued` has bit `signo - 1` set exactly when that list is
//!   non-empty. Retrieval takes the lowest queued signal in the wanted set,
//!   oldest first.
//! * An entry's kind says what happens when it is consumed: a live timer's
//!   entry runs the timer's consumption callback and stays allocated; an
//!   orphan (its timer was deleted while it was queued) is delivered with no
//!   callback and then freed.
//! * A signal whose disposition is *ignore* and which is not blocked is
//!   discarded when generated (its callback runs at once). Installing
//!   *ignore* discards what is queued for that signal the same way.
//! * A signal whose disposition is a *handler* stays queued until the
//!   process's delivery thread ([`crate::delivery`]) takes it with
//!   `SigState::take_handled` — only while it is not blocked — or a
//!   `sigtimedwait` takes it first.
//!
//! # Deviations
//!
//! * The *default* disposition keeps a signal queued until a `sigtimedwait`
//!   takes it; the model never terminates a process on a signal.

use std::sync::Arc as StdArc;

use nix::errno::Errno;
use slab::Slab;

use crate::abi::{NSIG, SIGKILL, SIGSTOP, Siginfo};
use crate::proc::Process;
use crate::sync::Arc;

/// Index of an entry in the process's signal slab.
pub type SigKey = usize;

/// The consumption callback a timer's entry carries (illumos `sq_func`
/// with its back-pointer `sq_backptr`: `timer_signal` on the timer), so
/// that this queue names no timer code. Run with `p_lock` held.
pub(crate) trait SigConsumer: Send + Sync + std::fmt::Debug {
    /// The entry was consumed (or discarded at generation): latch and
    /// return the overrun to report as `si_overrun`.
    fn consumed(&self) -> i32;
}

/// An entry's consumer, as the entry holds it (boxed because loom's `Arc`
/// cannot hold an unsized value).
pub(crate) type SigConsumerRef = Arc<Box<dyn SigConsumer>>;

/// A set of signals 1..NSIG, bit `signo - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SigSet(pub u64);

impl SigSet {
    /// No signals.
    pub const EMPTY: SigSet = SigSet(0);
    /// Every signal.
    pub const FULL: SigSet = SigSet(u64::MAX);

    /// The set holding just `signo` (`EINVAL` outside 1..NSIG).
    pub fn of(signo: i32) -> Result<SigSet, Errno> {
        Ok(SigSet(1 << bit(signo)?))
    }

    /// Whether `signo` is in the set.
    pub fn contains(self, signo: i32) -> bool {
        bit(signo).is_ok_and(|b| self.0 & (1 << b) != 0)
    }

    /// This set plus `signo`.
    pub fn with(self, signo: i32) -> Result<SigSet, Errno> {
        Ok(SigSet(self.0 | SigSet::of(signo)?.0))
    }

    /// The lowest signal in the set.
    pub fn lowest(self) -> Option<i32> {
        (self.0 != 0).then(|| self.0.trailing_zeros() as i32 + 1)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Whether `signo`'s disposition may be changed: `EINVAL` for a bad
/// number, or for SIGKILL and SIGSTOP.
pub(crate) fn check_settable(signo: i32) -> Result<(), Errno> {
    bit(signo)?;
    if signo == SIGKILL || signo == SIGSTOP {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn bit(signo: i32) -> Result<u32, Errno> {
    if (1..NSIG).contains(&signo) {
        Ok((signo - 1) as u32)
    } else {
        Err(Errno::EINVAL)
    }
}

/// A signal handler: runs on the process's delivery thread with a view of
/// the process (for syscalls) and the signal's siginfo, after the timer's
/// consumption callback (so `timer_getoverrun` in it is current). Use the
/// `&Process` it is given rather than capturing an owned [`Process`],
/// which would keep the process from exiting on drop.
#[derive(Clone)]
pub struct SigHandler(StdArc<HandlerFn>);

/// The function a [`SigHandler`] holds.
type HandlerFn = dyn Fn(&Process, &Siginfo) + Send + Sync;

impl SigHandler {
    /// Wraps a closure.
    pub fn new(f: impl Fn(&Process, &Siginfo) + Send + Sync + 'static) -> SigHandler {
        SigHandler(StdArc::new(f))
    }

    /// Runs the handler.
    pub(crate) fn call(&self, p: &Process, info: &Siginfo) {
        (self.0)(p, info)
    }
}

impl std::fmt::Debug for SigHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigHandler(..)")
    }
}

/// Two handlers are equal when they are the same closure.
impl PartialEq for SigHandler {
    fn eq(&self, other: &Self) -> bool {
        StdArc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SigHandler {}

/// What a process does with a signal. Not `Copy`: a handler holds a
/// closure.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Disposition {
    /// `SIG_DFL`: queued until taken (see the module's deviations).
    #[default]
    Default,
    /// `SIG_IGN`: discarded at generation unless blocked.
    Ignore,
    /// Caught: run by the delivery thread while not blocked.
    Handler(SigHandler),
}

/// What consuming an entry does.
#[derive(Debug)]
enum EntryKind {
    /// A timer's preallocated entry; the owner is set once the timer is
    /// published.
    Timer(Option<SigConsumerRef>),
    /// A timer's entry whose timer was deleted while it was queued.
    Orphan,
}

#[derive(Debug)]
struct SigEntry {
    info: Siginfo,
    kind: EntryKind,
    queued: bool,
    next: Option<SigKey>,
}

#[derive(Debug, Clone, Copy, Default)]
struct List {
    head: Option<SigKey>,
    tail: Option<SigKey>,
}

/// A consumed signal: its siginfo and, for a live timer, the owner whose
/// consumption callback must run (with `p_lock` held) to fill `si_overrun`.
#[derive(Debug)]
pub(crate) struct Taken {
    pub info: Siginfo,
    pub owner: Option<SigConsumerRef>,
}

impl Taken {
    /// Runs the consumption callback, if any, and returns the final
    /// siginfo. Call with `p_lock` held.
    pub fn complete(self) -> Siginfo {
        let mut info = self.info;
        if let Some(owner) = self.owner {
            info.si_overrun = owner.consumed();
        }
        info
    }
}

/// The signal state `p_lock` guards.
#[derive(Debug)]
pub(crate) struct SigState {
    entries: Slab<SigEntry>,
    lists: [List; NSIG as usize],
    queued: SigSet,
    blocked: SigSet,
    disp: [Disposition; NSIG as usize],
}

impl SigState {
    pub fn new() -> SigState {
        SigState {
            entries: Slab::new(),
            lists: [List::default(); NSIG as usize],
            queued: SigSet::EMPTY,
            blocked: SigSet::EMPTY,
            disp: std::array::from_fn(|_| Disposition::Default),
        }
    }

    /// Allocates a timer's entry (at `timer_create`).
    pub fn alloc_timer_entry(&mut self, info: Siginfo) -> SigKey {
        self.entries.insert(SigEntry {
            info,
            kind: EntryKind::Timer(None),
            queued: false,
            next: None,
        })
    }

    /// Records the timer that owns entry `key`.
    pub fn set_owner(&mut self, key: SigKey, owner: SigConsumerRef) {
        self.entries[key].kind = EntryKind::Timer(Some(owner));
    }

    /// The timer is gone: a queued entry becomes an orphan (delivered later
    /// with no callback), an idle one is freed.
    pub fn release_timer_entry(&mut self, key: SigKey) {
        if self.entries[key].queued {
            self.entries[key].kind = EntryKind::Orphan;
        } else {
            self.entries.remove(key);
        }
    }

    /// Queues entry `key` (illumos `sigaddqa`). Returns the owner when the
    /// signal is discarded at generation instead (ignored and not blocked):
    /// the caller runs its consumption callback.
    pub fn enqueue(&mut self, key: SigKey) -> Option<SigConsumerRef> {
        let signo = self.entries[key].info.si_signo;
        if self.discards(signo) {
            return match &self.entries[key].kind {
                EntryKind::Timer(owner) => owner.clone(),
                EntryKind::Orphan => None,
            };
        }
        debug_assert!(!self.entries[key].queued);
        let entry = &mut self.entries[key];
        entry.queued = true;
        entry.next = None;
        let list = &mut self.lists[signo as usize];
        match list.tail {
            Some(t) => self.entries[t].next = Some(key),
            None => list.head = Some(key),
        }
        list.tail = Some(key);
        self.queued.0 |= 1 << (signo - 1);
        None
    }

    fn discards(&self, signo: i32) -> bool {
        self.disp[signo as usize] == Disposition::Ignore && !self.blocked.contains(signo)
    }

    /// Dequeues the oldest entry of the lowest queued signal in `set`.
    pub fn take(&mut self, set: SigSet) -> Option<Taken> {
        let signo = SigSet(self.queued.0 & set.0).lowest()?;
        Some(self.take_signo(signo))
    }

    /// Signals a handler would catch now: queued, not blocked, caught.
    pub fn deliverable(&self) -> SigSet {
        let mut set = SigSet(self.queued.0 & !self.blocked.0);
        let mut caught = SigSet::EMPTY;
        while let Some(signo) = set.lowest() {
            set.0 &= !(1 << (signo - 1));
            if matches!(self.disp[signo as usize], Disposition::Handler(_)) {
                caught.0 |= 1 << (signo - 1);
            }
        }
        caught
    }

    /// For the delivery thread (illumos `psig`): dequeues the oldest entry
    /// of the lowest signal that is queued, not blocked and caught, with
    /// its handler.
    pub fn take_handled(&mut self) -> Option<(Taken, SigHandler)> {
        let signo = self.deliverable().lowest()?;
        let Disposition::Handler(h) = &self.disp[signo as usize] else {
            return None; // deliverable() holds only caught signals
        };
        let h = h.clone();
        Some((self.take_signo(signo), h))
    }

    fn take_signo(&mut self, signo: i32) -> Taken {
        let list = &mut self.lists[signo as usize];
        let key = list.head.expect("queued bit set only for non-empty lists");
        list.head = self.entries[key].next;
        if list.head.is_none() {
            list.tail = None;
            self.queued.0 &= !(1 << (signo - 1));
        }
        let entry = &mut self.entries[key];
        entry.queued = false;
        entry.next = None;
        let info = entry.info;
        let owner = match &entry.kind {
            EntryKind::Timer(owner) => owner.clone(),
            EntryKind::Orphan => {
                self.entries.remove(key);
                None
            }
        };
        Taken { info, owner }
    }

    /// Signals with at least one queued entry.
    pub fn queued(&self) -> SigSet {
        self.queued
    }

    /// The blocked mask.
    pub fn blocked(&self) -> SigSet {
        self.blocked
    }

    /// Replaces the blocked mask (SIGKILL and SIGSTOP cannot be blocked).
    /// A signal that becomes unblocked while ignored is discarded now; its
    /// entries are returned so the caller can complete them.
    pub fn set_blocked(&mut self, set: SigSet) -> Vec<Taken> {
        let unblockable = (1u64 << (SIGKILL - 1)) | (1u64 << (SIGSTOP - 1));
        self.blocked = SigSet(set.0 & !unblockable);
        let mut discarded = Vec::new();
        let mut candidates = SigSet(self.queued.0 & !self.blocked.0);
        while let Some(signo) = candidates.lowest() {
            candidates.0 &= !(1 << (signo - 1));
            if self.disp[signo as usize] == Disposition::Ignore {
                while self.queued.contains(signo) {
                    discarded.push(self.take_signo(signo));
                }
            }
        }
        discarded
    }

    /// Sets the disposition of `signo` and returns the old one. `EINVAL` for
    /// a bad number, or for changing SIGKILL or SIGSTOP. Installing *ignore*
    /// discards the signal's queued entries, returned so the caller can
    /// complete them (their callbacks run).
    pub fn set_disposition(
        &mut self,
        signo: i32,
        disp: Disposition,
    ) -> Result<(Disposition, Vec<Taken>), Errno> {
        check_settable(signo)?;
        let ignore = disp == Disposition::Ignore;
        let old = std::mem::replace(&mut self.disp[signo as usize], disp);
        let mut discarded = Vec::new();
        if ignore {
            while self.queued.contains(signo) {
                discarded.push(self.take_signo(signo));
            }
        }
        Ok((old, discarded))
    }

    /// Process exit: empties every list (no callbacks: the timers are gone).
    pub fn discard_all(&mut self) {
        while let Some(signo) = self.queued.lowest() {
            let _ = self.take_signo(signo);
        }
    }

    /// Entries allocated (for leak checks).
    pub fn entries_allocated(&self) -> usize {
        self.entries.len()
    }
}
