//! Timers on the simulated host: callbacks arming and deleting timers,
//! equal deadlines, the simulated host's stepping API, the re-arm logic
//! (counted), the backend's re-arm floor, and the delete guarantee.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use itimer_hostalarm::time::NS_PER_MS;
use itimer_hostalarm::{ClockType, Scale, SimConfig, SimError, SimHost, TimerHandle};
use nix::errno::Errno;

type Log = Arc<Mutex<Vec<(String, i64)>>>;

fn host() -> SimHost {
    SimHost::new(SimConfig::default()).unwrap()
}

fn push(log: &Log, s: impl Into<String>, t: i64) {
    log.lock().unwrap().push((s.into(), t));
}

fn take(log: &Log) -> Vec<(String, i64)> {
    std::mem::take(&mut *log.lock().unwrap())
}

/// Spins until `flag` is set; panics after 10 s so a broken build fails
/// instead of hanging.
fn wait_for(flag: &AtomicBool) {
    let start = std::time::Instant::now();
    while !flag.load(Ordering::SeqCst) {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn pairs(v: &[(&str, i64)]) -> Vec<(String, i64)> {
    v.iter().map(|&(s, t)| (s.to_owned(), t)).collect()
}

#[test]
fn equal_deadlines_run_in_arming_order_and_rearm_goes_last() {
    let h = host();
    let log = Log::default();
    let ts: Vec<_> = (0..5)
        .map(|i| {
            let log = log.clone();
            h.clocks()
                .mono()
                .new_timer(Scale::Ns, move |_| push(&log, format!("t{i}"), 0))
        })
        .collect();
    for i in [3, 1, 4, 0, 2] {
        ts[i].arm(100).unwrap();
    }
    ts[1].arm(100).unwrap(); // re-armed: now last among the 100s
    h.advance(100).unwrap();
    let names: Vec<_> = take(&log).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["t3", "t4", "t0", "t2", "t1"]);
}

#[test]
fn periodic_callback_rearms_itself_at_exact_times() {
    let h = host();
    let log = Log::default();
    let l2 = log.clone();
    let clocks = h.clocks().clone();
    let count = Arc::new(AtomicU32::new(0));
    let c2 = count.clone();
    let t = h
        .clocks()
        .mono()
        .new_timer(Scale::Us, move |me: &TimerHandle| {
            let now = clocks.now(ClockType::Mono);
            push(&l2, "tick", now);
            assert!(!me.is_armed(), "removed before its callback runs");
            if c2.fetch_add(1, Ordering::SeqCst) < 4 {
                me.arm(now / 1_000 + 250).unwrap();
            }
        });
    t.arm(250).unwrap();
    h.advance(10 * NS_PER_MS).unwrap();
    assert_eq!(
        take(&log),
        pairs(&[
            ("tick", 250_000),
            ("tick", 500_000),
            ("tick", 750_000),
            ("tick", 1_000_000),
            ("tick", 1_250_000)
        ])
    );
    assert!(!t.is_armed());
}

#[test]
fn callbacks_delete_and_arm_other_timers_and_delete_themselves() {
    let h = host();
    let log = Log::default();
    let clocks = h.clocks().clone();
    let rt = h.clocks().mono();
    let mk = |name: &'static str| {
        let (log, clocks) = (log.clone(), clocks.clone());
        rt.new_timer(Scale::Ns, move |_| {
            push(&log, name, clocks.now(ClockType::Mono))
        })
    };
    let victim = mk("victim");
    let late = mk("late");
    let early = mk("early");
    let (vh, lh, eh) = (victim.handle(), late.handle(), early.handle());
    let l2 = log.clone();
    let killer = rt.new_timer(Scale::Ns, move |me| {
        push(&l2, "killer", 0);
        vh.del(); // due at the same instant, armed after us: must not run
        lh.arm(50).unwrap(); // moved later
        eh.arm(20).unwrap(); // earlier than anything armed: the pass re-arms
        me.arm(1_000).unwrap();
        me.del(); // armed then deleted by itself: does not run again
    });
    killer.arm(10).unwrap();
    victim.arm(10).unwrap();
    late.arm(30).unwrap();
    h.advance(10).unwrap();
    assert_eq!(take(&log), pairs(&[("killer", 0)]));
    assert!(!victim.is_armed() && !killer.is_armed());
    assert_eq!(
        h.armed_deadline(),
        Ok(Some(20)),
        "re-armed to the callback's earlier timer"
    );
    h.advance(1_000).unwrap();
    assert_eq!(take(&log), pairs(&[("early", 20), ("late", 50)]));
}

#[test]
fn a_callback_may_free_its_own_timer() {
    let h = host();
    let slot: Arc<Mutex<Option<itimer_hostalarm::Timer>>> = Arc::default();
    let s2 = slot.clone();
    let ran = Arc::new(AtomicU32::new(0));
    let r2 = ran.clone();
    let t = h.clocks().mono().new_timer(Scale::Ns, move |_| {
        r2.fetch_add(1, Ordering::SeqCst);
        drop(s2.lock().unwrap().take()); // frees the running timer
    });
    let handle = t.handle();
    t.arm(5).unwrap();
    *slot.lock().unwrap() = Some(t);
    h.advance(10).unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert!(!handle.is_live());
    assert_eq!(handle.arm(20), Err(Errno::ENOENT));
    assert!(!handle.is_armed());
    handle.del(); // inert
    assert_eq!(h.clocks().mono().armed_count(), 0);
}

#[test]
fn step_to_next_deadline_and_run_until_idle() {
    let h = host();
    let rt = h.clocks().mono();
    let a = rt.new_timer(Scale::Ns, |_| {});
    let b = rt.new_timer(Scale::Ns, |_| {});
    a.arm(70).unwrap();
    b.arm(30).unwrap();
    assert_eq!(h.step_to_next_deadline(), Ok(Some(30)));
    assert_eq!(h.mono_ns(), 30);
    assert_eq!(h.step_to_next_deadline(), Ok(Some(70)));
    assert_eq!(h.step_to_next_deadline(), Ok(None));
    assert_eq!(h.mono_ns(), 70);
    a.arm(100).unwrap();
    b.arm(200).unwrap();
    assert_eq!(h.run_until_idle(10), Ok(2));
    assert_eq!(h.mono_ns(), 200);
    // A periodic timer never goes idle: the bound is reported.
    let clocks = h.clocks().clone();
    let periodic = rt.new_timer(Scale::Ns, move |me| {
        me.arm(clocks.now(ClockType::Mono) + 10).unwrap();
    });
    periodic.arm(210).unwrap();
    assert_eq!(h.run_until_idle(5), Err(SimError::NotIdle { steps: 5 }));
    assert_eq!(h.mono_ns(), 250);
    periodic.del();
    assert_eq!(
        h.run_until_idle(5),
        Ok(1),
        "one stale alarm left, found nothing due"
    );
}

#[test]
fn rearm_logic_kicks_only_for_earlier_deadlines_and_counts_spurious_wakeups() {
    let h = host();
    let rt = h.clocks().mono();
    let base = h.stats();
    assert_eq!(base.rearm_calls, 0, "nothing armed at start: no host call");
    let a = rt.new_timer(Scale::Ns, |_| {});
    let b = rt.new_timer(Scale::Ns, |_| {});
    let c = rt.new_timer(Scale::Ns, |_| {});
    a.arm(500).unwrap(); // nothing armed in the host: kick
    assert_eq!(h.kicks(), 1);
    h.advance(0).unwrap(); // the kick's pass arms 500
    assert_eq!(h.armed_deadline(), Ok(Some(500)));
    assert_eq!(h.stats().rearm_calls, 1);
    b.arm(800).unwrap(); // later than the armed deadline: no kick
    assert_eq!(h.kicks(), 1);
    c.arm(100).unwrap(); // earlier: kick
    assert_eq!(h.kicks(), 2);
    h.advance(0).unwrap();
    assert_eq!(h.armed_deadline(), Ok(Some(100)));
    assert_eq!(h.stats().rearm_calls, 2);
    h.advance(0).unwrap(); // no kick, no pass, no re-arm
    assert_eq!(h.stats().rearm_calls, 2);
    // Delete the armed timer: the alarm still fires at 100, finds nothing.
    c.del();
    h.advance(200).unwrap();
    let s = h.stats();
    assert_eq!(
        (s.alarm_wakeups, s.spurious_wakeups, s.timers_run),
        (1, 1, 0)
    );
    assert_eq!(h.armed_deadline(), Ok(Some(500)));
    h.advance(1_000).unwrap();
    let s = h.stats();
    assert_eq!(
        (s.alarm_wakeups, s.spurious_wakeups, s.timers_run),
        (3, 1, 2)
    );
    assert_eq!(s.notify_wakeups, 2);
    assert_eq!(s.wakeups, 5);
    // One re-arm per alarm that left something armed, none at the end.
    assert_eq!(s.rearm_calls, 4);
    assert_eq!(s.rearm_errors, 0);
}

#[test]
fn the_backend_floor_delays_near_deadlines() {
    let cfg = SimConfig {
        min_rearm_ns: 1_000,
        ..SimConfig::default()
    };
    let h = SimHost::new(cfg).unwrap();
    let log = Log::default();
    let (l2, clocks) = (log.clone(), h.clocks().clone());
    let t = h.clocks().mono().new_timer(Scale::Ns, move |_| {
        push(&l2, "t", clocks.now(ClockType::Mono))
    });
    h.advance(5_000).unwrap();
    t.arm(5_010).unwrap();
    h.advance(0).unwrap();
    assert_eq!(
        h.armed_deadline(),
        Ok(Some(6_000)),
        "now + floor, not the deadline"
    );
    h.advance(100_000).unwrap();
    assert_eq!(take(&log), pairs(&[("t", 6_000)]));
    // A deadline beyond the floor is armed exactly.
    t.arm(200_000).unwrap();
    h.advance(0).unwrap();
    assert_eq!(h.armed_deadline(), Ok(Some(200_000)));
}

#[test]
fn del_from_another_thread_waits_for_the_running_callback() {
    let h = Arc::new(host());
    let started = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let (s2, r2, f2) = (started.clone(), release.clone(), finished.clone());
    let t = h.clocks().mono().new_timer(Scale::Ns, move |_| {
        s2.store(true, Ordering::SeqCst);
        wait_for(&r2);
        f2.store(true, Ordering::SeqCst);
    });
    t.arm(10).unwrap();
    let h2 = h.clone();
    let driver = std::thread::spawn(move || h2.advance(100));
    wait_for(&started);
    let handle = t.handle();
    let del_returned = Arc::new(AtomicBool::new(false));
    let (d2, f3) = (del_returned.clone(), finished.clone());
    let deleter = std::thread::spawn(move || {
        handle.del();
        d2.store(true, Ordering::SeqCst);
        f3.load(Ordering::SeqCst) // was the callback finished when del returned?
    });
    // While the callback is held, del must not return. 100 ms is ample for
    // a del that does not wait to return, even on a loaded machine.
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !del_returned.load(Ordering::SeqCst),
        "del returned while the callback ran"
    );
    release.store(true, Ordering::SeqCst);
    assert!(
        deleter.join().unwrap(),
        "callback finished before del returned"
    );
    assert_eq!(driver.join().unwrap(), Ok(1));
}
