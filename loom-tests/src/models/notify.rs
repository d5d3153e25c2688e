//! Model 6: the timer loop's notify handshake against threads arming
//! earlier deadlines.
//!
//! Drives the real `itimer_hostalarm::notify::Notifier` with a sticky
//! condvar waker standing in for the loop's eventfd, and a set of
//! deadlines standing in for the clocks' timer lists (time is data).
//!
//! The main thread is the sleeper and runs the loop's rounds exactly as
//! `hostalarm/src/step.rs` orders them: `begin_run`, `begin_compute`, read
//! the earliest deadline `d`, `publish(d)`, wait; after a wakeup, clear
//! the waker (the loop drains its eventfd), then the next round. Two
//! arming threads each insert a deadline earlier than the one already
//! armed and, if it became the earliest, call `on_deadline_added`, as the
//! clocks do after releasing their list lock.
//!
//! A wait that ends with no kick stands for sleeping until `d`: the model
//! lets it end once both arming threads are done, and then checks the
//! invariant: **no lost wakeup**, i.e. no deadline earlier than the `d`
//! the sleeper went to sleep on was armed without a kick. A kick that
//! never comes while the sleeper needs it shows up as exactly that
//! failure, and a wakeup lost in the waker itself as a loom deadlock.

use std::collections::BTreeSet;

use itimer_kernel::sync::{Arc, Condvar, Mutex, thread};

use itimer_hostalarm::notify::{Notifier, Phase, Waker};

/// The deadline armed before the model starts, ns.
const ARMED: i64 = 100;
/// What the two arming threads arm, ns: both earlier than [`ARMED`].
const ARMS: [i64; 2] = [50, 70];

/// What the waker's lock guards.
#[derive(Debug, Default)]
struct WakeState {
    /// Kicked since the sleeper last cleared it (sticky, like an eventfd
    /// counter).
    kicked: bool,
    /// The sleeper is inside its wait (what a non-sticky waker looks at).
    waiting: bool,
    /// Arming threads that finished (the model's stand-in for time
    /// reaching the sleeper's deadline once nothing else can happen).
    armers_done: usize,
}

/// A waker on a condvar: sticky, or (for the proof that the model bites)
/// a bare notify that only reaches a sleeper already waiting.
#[derive(Debug, Default)]
struct CondvarWaker {
    state: Mutex<WakeState>,
    cv: Condvar,
    /// Whether a kick that lands before the wait still ends it.
    sticky: bool,
}

impl Waker for CondvarWaker {
    fn wake(&self) {
        let mut s = self.state.lock();
        if !self.sticky && !s.waiting {
            return;
        }
        s.kicked = true;
        self.cv.notify_all();
    }
}

/// The model (one interleaving; run it with the harness). Outcome: the
/// sleeper's rounds and the kicks issued.
pub fn notify_vs_arm() -> String {
    run(true)
}

/// The same model with a waker that is not sticky (a bare condvar notify
/// instead of an eventfd counter): a kick that lands while the sleeper is
/// computing is lost. Deliberately broken, for the proof that the model
/// bites (`tests/broken_waker.rs`); needs no special build.
pub fn notify_vs_arm_non_sticky_waker() -> String {
    run(false)
}

fn run(sticky: bool) -> String {
    let notifier = Arc::new(Notifier::new(CondvarWaker {
        sticky,
        ..CondvarWaker::default()
    }));
    let lists = Arc::new(Mutex::new(BTreeSet::from([ARMED])));

    let armers: Vec<_> = ARMS
        .iter()
        .map(|&t| {
            let (notifier, lists) = (notifier.clone(), lists.clone());
            thread::spawn(move || {
                let became_first = {
                    let mut l = lists.lock();
                    l.insert(t);
                    l.first() == Some(&t)
                };
                if became_first {
                    notifier.on_deadline_added(t);
                }
                let w = notifier.waker();
                w.state.lock().armers_done += 1;
                w.cv.notify_all();
            })
        })
        .collect();

    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 1 + ARMS.len(), "at most one round per kick");
        notifier.begin_run();
        notifier.begin_compute();
        let d = lists.lock().first().copied();
        notifier.publish(d);

        let w = notifier.waker();
        let mut s = w.state.lock();
        while !s.kicked && s.armers_done < ARMS.len() {
            s.waiting = true;
            s = w.cv.wait(s);
            s.waiting = false;
        }
        if s.kicked {
            // Woken early: drain the waker while awake, go round again.
            s.kicked = false;
            continue;
        }
        drop(s);
        // Asleep until `d` with nobody left to kick: nothing earlier may
        // be armed.
        let earliest = lists.lock().first().copied();
        assert_eq!(
            earliest, d,
            "lost wakeup: slept until {d:?} with {earliest:?} armed"
        );
        assert_eq!(notifier.phase(), Phase::Sleeping(d));
        break;
    }
    for a in armers {
        a.join().unwrap();
    }
    assert_eq!(lists.lock().first(), Some(&ARMS[0]));
    format!("{rounds} rounds, {} kicks", notifier.kicks())
}
