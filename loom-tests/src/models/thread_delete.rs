//! Model 7: `SIGEV_THREAD`: `timer_delete` against the notification
//! thread, with fires in flight (`kernel/notify_thread.rs`).
//!
//! The kernel spawns the process's notification thread itself (a
//! `ServiceThread`, from `sync::thread`, so loom schedules it like the
//! model's own threads): the first `SIGEV_THREAD` timer creates the private
//! port and the thread, which loops on `port_getn`, looks the event's token
//! up under the service lock, marks it running, and calls the callback
//! with no lock held.
//!
//! [`delete_vs_notify`] (3 threads: main, F, the notification thread N):
//! F makes the timer expire twice through the probe backend (the real
//! `timer_fire`, which posts the cached port event); N retrieves and runs
//! callbacks; the main thread deletes the timer. Whatever the interleaving:
//!
//! * when `timer_delete` returns, the callback is not running, and it never
//!   starts afterwards (each callback checks, as it starts, a flag the main
//!   thread sets right after the delete returned);
//! * callbacks never overlap, each reports at least one expiration, and
//!   together they report no more than F made: what the callbacks saw is
//!   exactly what was delivered before the delete;
//! * nothing deadlocks (loom would report it), and exit then ends N: no
//!   service thread, no port, no timer, no backend timer is left.
//!
//! [`self_delete`] (3 threads: main, F, N): the callback deletes its own
//! timer while the main thread deletes it too. The callback's delete does
//! not wait for itself (no deadlock); exactly one delete succeeds; after a
//! callback's delete succeeded no callback starts (so that one ran once);
//! a callback whose delete failed (`EINVAL`: the main thread's delete is
//! under way) may be followed by another, until the main delete has
//! unregistered the timer; and a main delete that succeeded returned with
//! no callback running and none to come.
//!
//! Not covered here: several SIGEV_THREAD timers sharing the thread (only
//! the token look-up differs, and it is a map), callbacks that panic, and
//! `exit` racing a callback (exit runs only after the race, to end N).

use itimer_kernel::sync::Arc;
use itimer_kernel::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use itimer_kernel::sync::thread;
use itimer_kernel::{Arm, ClockId, Errno, ItimerSpec, Process, SigEvent, TimerId};

use super::common::*;

/// What the callback records (loom atomics: every access is a point where
/// loom may switch threads). A callback runs on the notification thread,
/// where a failed assertion would only end that thread (the kernel
/// swallows a callback's panic, as a crashed C callback is not its
/// business): so the callback records what it saw, and the main thread
/// asserts on it.
#[derive(Debug, Default)]
struct Watch {
    /// A callback is between its first and last step.
    running: AtomicBool,
    /// Set by the main thread as soon as `timer_delete` returned `Ok` (and
    /// in model 7b by a callback whose own delete succeeded).
    deleted: AtomicBool,
    /// Callbacks started.
    calls: AtomicUsize,
    /// Expirations the callbacks reported (sum of `expirations`).
    expirations: AtomicU64,
    /// Callbacks that started with `deleted` already set.
    late: AtomicUsize,
    /// Callbacks that started while another was running.
    overlapped: AtomicUsize,
    /// Callbacks told of fewer than one expiration.
    empty: AtomicUsize,
}

impl Watch {
    /// The callback's first step: records the guarantees at its start.
    fn enter(&self, expirations: i32) {
        if self.deleted.load(SeqCst) {
            self.late.fetch_add(1, SeqCst);
        }
        if self.running.swap(true, SeqCst) {
            self.overlapped.fetch_add(1, SeqCst);
        }
        if expirations < 1 {
            self.empty.fetch_add(1, SeqCst);
        }
        self.calls.fetch_add(1, SeqCst);
        self.expirations
            .fetch_add(expirations.max(0) as u64, SeqCst);
    }

    /// The callback's last step.
    fn leave(&self) {
        self.running.store(false, SeqCst);
    }

    /// The main thread, right after its `timer_delete` returned `Ok`.
    fn after_delete(&self) {
        assert!(
            !self.running.load(SeqCst),
            "the callback is running after timer_delete returned"
        );
        self.deleted.store(true, SeqCst);
    }

    /// The main thread, once the notification thread has ended.
    fn check(&self) {
        assert_eq!(
            self.late.load(SeqCst),
            0,
            "a callback started after timer_delete returned"
        );
        assert_eq!(self.overlapped.load(SeqCst), 0, "two callbacks at once");
        assert_eq!(self.empty.load(SeqCst), 0, "a callback for no expiration");
        assert!(!self.running.load(SeqCst), "a callback never returned");
    }
}

/// Creates a periodic SIGEV_THREAD timer running `callback` (which gets
/// the `Watch`), and a thread firing it twice. Returns the timer, the
/// firing thread and the probe timer.
fn setup(
    p: &Proc,
    clock: &crate::probe::ProbeClock,
    watch: &Arc<Watch>,
    callback: impl Fn(&Process, &Watch, TimerId, i32) + Send + Sync + 'static,
) -> (
    TimerId,
    thread::JoinHandle<()>,
    Arc<crate::probe::ProbeTimer>,
) {
    let w = watch.clone();
    let t = p
        .timer_create(
            ClockId::HIGHRES,
            Some(SigEvent::thread(SIGVAL, move |p, note| {
                assert_eq!(note.value, SIGVAL);
                callback(p, &w, note.timer, note.expirations);
            })),
        )
        .expect("a SIGEV_THREAD timer");
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(MS, MS))
        .expect("arming a live timer");
    let probe = clock.timer(0);
    let firer = {
        let probe = probe.clone();
        thread::spawn(move || {
            let first = probe.fire(1);
            let second = probe.fire(1);
            assert!(first || !second, "fired again after being deleted");
        })
    };
    (t, firer, probe)
}

/// Ends the process (which stops the notification thread from starting
/// callbacks, and joins it) and checks that nothing is left.
fn finish(kernel: &itimer_kernel::Subsystem, p: &Proc, clock: &crate::probe::ProbeClock) {
    p.exit();
    assert_eq!(clock.live(), 0, "no backend timer is left");
    assert_eq!(kernel.service_threads(), 0, "the notification thread ended");
    assert!(kernel.ports().is_empty(), "the private port is closed");
}

/// Model 7 (one interleaving; run it with the harness). Outcome: fires
/// that ran, then callbacks and the expirations they reported.
pub fn delete_vs_notify() -> String {
    let (kernel, clock) = boot(8);
    let p = spawn_process(&kernel);
    let watch = Arc::new(Watch::default());
    let (t, firer, probe) = setup(&p, &clock, &watch, |_, w, _, k| {
        w.enter(k);
        w.leave();
    });

    assert_eq!(p.timer_delete(t), Ok(()));
    watch.after_delete();
    firer.join().unwrap();

    let fired = probe.counts().expirations;
    assert!(!probe.fire(1), "a deleted timer never fires again");
    assert_eq!(p.stats().timers, 0);
    assert_eq!(clock.live(), 0, "the backend timer is gone");
    let calls = watch.calls.load(SeqCst);
    finish(&kernel, &p, &clock);
    watch.check();
    assert_eq!(
        watch.calls.load(SeqCst),
        calls,
        "a callback started after timer_delete returned"
    );
    let reported = watch.expirations.load(SeqCst);
    assert!(
        reported <= fired,
        "callbacks reported {reported} of {fired}"
    );
    format!("fired {fired}: {calls} callbacks, {reported} expirations")
}

/// What the self-deleting callback's own delete returned.
#[derive(Debug, Default)]
struct SelfDelete {
    ok: AtomicUsize,
    einval: AtomicUsize,
}

/// Model 7b (one interleaving; run it with the harness). Outcome: fires
/// that ran, the callback's delete result (if it ran) and the main
/// thread's.
pub fn self_delete() -> String {
    let (kernel, clock) = boot(8);
    let p = spawn_process(&kernel);
    let watch = Arc::new(Watch::default());
    let own = Arc::new(SelfDelete::default());
    let o = own.clone();
    let (t, firer, probe) = setup(&p, &clock, &watch, move |p, w, tid, k| {
        w.enter(k);
        match p.timer_delete(tid) {
            Ok(()) => {
                o.ok.fetch_add(1, SeqCst);
                // Not waited for (it is this very callback), but no other
                // callback may start from now on.
                w.deleted.store(true, SeqCst);
            }
            // The main thread's delete is under way: until it unregisters
            // the timer, further callbacks may still start.
            Err(Errno::EINVAL) => {
                o.einval.fetch_add(1, SeqCst);
            }
            Err(e) => panic!("the callback's timer_delete: {e}"),
        }
        w.leave();
    });

    let main = p.timer_delete(t);
    match main {
        Ok(()) => watch.after_delete(),
        Err(e) => assert_eq!(e, Errno::EINVAL, "main's timer_delete"),
    }
    firer.join().unwrap();
    let fired = probe.counts().expirations;

    // If the callback's delete won, main's EINVAL came as soon as the slot
    // was freed: the callback may still be finishing its delete. Exit
    // joins the notification thread, so check after it.
    finish(&kernel, &p, &clock);
    watch.check();
    let calls = watch.calls.load(SeqCst);
    let (ok, einval) = (own.ok.load(SeqCst), own.einval.load(SeqCst));
    assert_eq!(ok + einval, calls);
    assert!(calls as u64 <= fired);
    assert_eq!(
        ok + usize::from(main.is_ok()),
        1,
        "exactly one delete succeeds"
    );
    // A callback whose delete succeeded was the last to start (checked as
    // each starts): so it is the only one.
    assert!(ok == 0 || calls == 1, "{calls} callbacks, one deleted");
    format!("fired {fired}: callbacks deleted {ok}, EINVAL {einval}; main {main:?}")
}
