//! The `ITLK_LOCKED` / `ITLK_REMOVE` protocol (illumos `timer_lock`,
//! `timer_unlock`, `timer_grab`, `timer_release`, `timer_delete_locked`).
//!
//! A syscall that works on one timer *holds* it for the duration
//! (`ITLK_LOCKED`) without holding any mutex, so it may call into the clock
//! backend, which may sleep. The lock word and the blocker count live in the
//! timer's table slot and are guarded by `p_lock`; waiters sleep on the
//! timer's `it_cv` with `p_lock`.
//!
//! # State machine of one slot's lock word
//!
//! ```text
//!   {} ──timer_lock──▶ {LOCKED} ──timer_unlock──▶ {}
//!                         │
//!            timer_delete_locked: set REMOVE
//!                         ▼
//!                  {LOCKED|REMOVE} ──drain blockers──▶ slot cleared (Free)
//! ```
//!
//! * A thread that finds the timer `LOCKED` counts itself in `blockers` and
//!   waits; it takes the lock when it is released.
//! * `timer_grab` that takes the lock and then sees `REMOVE` lets go at once
//!   and returns `EINVAL`: the timer is as good as gone.
//! * The deleter, holding the lock, sets `REMOVE`, then repeatedly lets go
//!   and waits until `blockers` is zero; only then is the slot cleared, so
//!   a blocker always wakes to find its slot (and its timer) still there.
//! * After the slot is cleared no one can find the timer; the deleter drops
//!   `p_lock` and asks the backend to delete it (after which `timer_fire`
//!   never runs for it), detaches its port event, and orphans a queued
//!   signal entry.
//!
//! # Locks
//!
//! `p_lock` before `it_mutex`, as in the one statement of the order
//! ([`crate`]). Holding a timer (`LOCKED`) is not a mutex and is
//! never held across a wait for `p_lock` by anyone else's protocol step, but
//! a thread holding a timer must not try to hold a second one.

use nix::errno::Errno;

use crate::itimer::Itimer;
use crate::proc::{ProcShared, ProcState};
use crate::sync::{Arc, MutexGuard};
use crate::table::Itlk;

/// Whether `timer_grab` should refuse an exited process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrabMode {
    /// A syscall: `ESRCH` once the process has exited.
    Syscall,
    /// Process teardown (`timer_exit`, `timer_lwpexit`): the exit flag is
    /// already set and must not stop us.
    Teardown,
}

/// Takes the timer's lock word, waiting while another thread holds it.
/// Called and returns with `p_lock` held.
pub(crate) fn timer_lock<'a>(
    it: &Itimer,
    mut st: MutexGuard<'a, ProcState>,
) -> MutexGuard<'a, ProcState> {
    loop {
        let slot = st
            .timers
            .live_mut(it.id())
            .expect("a held or awaited timer keeps its slot until its blockers drain");
        if !slot.itlk.contains(Itlk::LOCKED) {
            slot.itlk |= Itlk::LOCKED;
            return st;
        }
        slot.blockers += 1;
        st = it.it_cv.wait(st);
        let slot = st
            .timers
            .live_mut(it.id())
            .expect("the deleter waits for blockers before clearing the slot");
        slot.blockers -= 1;
    }
}

/// Lets go of the timer's lock word and wakes whoever waits for it. Called
/// with `p_lock` held.
pub(crate) fn timer_unlock(it: &Itimer, st: &mut ProcState) {
    let slot = st
        .timers
        .live_mut(it.id())
        .expect("a held timer keeps its slot");
    debug_assert!(slot.itlk.contains(Itlk::LOCKED));
    slot.itlk.remove(Itlk::LOCKED);
    // Blockers and a draining deleter share it_cv; wake them all and let
    // each re-check its own condition.
    it.it_cv.notify_all();
}

/// Finds timer `tid` and holds it. `EINVAL` for an id out of range, an empty
/// or reserved slot, or a timer being removed; `ESRCH` (syscall mode) once
/// the process has exited.
pub(crate) fn timer_grab(p: &ProcShared, tid: i32, mode: GrabMode) -> Result<Arc<Itimer>, Errno> {
    let id = usize::try_from(tid).map_err(|_| Errno::EINVAL)?;
    let st = match mode {
        GrabMode::Syscall => p.lock_live()?,
        GrabMode::Teardown => p.p_lock.lock(),
    };
    let it = st.timers.live(id).ok_or(Errno::EINVAL)?.it.clone();
    let mut st = timer_lock(&it, st);
    let slot = st.timers.live(id).expect("held timer keeps its slot");
    if slot.itlk.contains(Itlk::REMOVE) {
        timer_unlock(&it, &mut st);
        return Err(Errno::EINVAL);
    }
    Ok(it)
}

/// Lets go of a timer taken with [`timer_grab`].
pub(crate) fn timer_release(p: &ProcShared, it: &Itimer) {
    let mut st = p.p_lock.lock();
    timer_unlock(it, &mut st);
}

/// Deletes a held timer: marks it `REMOVE`, drains the blockers, clears its
/// slot, then (without `p_lock`) deletes it in the backend, detaches its
/// port event and orphans or frees its signal entry. Consumes the
/// `p_lock` guard.
pub(crate) fn timer_delete_locked(p: &ProcShared, it: &Itimer, mut st: MutexGuard<'_, ProcState>) {
    let id = it.id();
    {
        let slot = st.timers.live_mut(id).expect("held timer keeps its slot");
        debug_assert!(slot.itlk.contains(Itlk::LOCKED));
        debug_assert!(!slot.itlk.contains(Itlk::REMOVE));
        slot.itlk |= Itlk::REMOVE;
    }
    while st.timers.live(id).is_some_and(|s| s.blockers > 0) {
        timer_unlock(it, &mut st);
        st = it.it_cv.wait(st);
        st = timer_lock(it, st);
    }
    st.timers.free_slot(id);
    drop(st);

    // From here on no one can find the timer.
    it.btimer.delete();
    crate::itimer::timer_detach_notification(p, it);
}
