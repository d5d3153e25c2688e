//! The timer loop on the real host (default precedence: timerfd first).
//!
//! Tolerances: the machine is a loaded 2-core VM, so a timer may fire up to
//! `LATE` after its deadline (scheduling delay, timer slack); it may never
//! fire before it (the clock is read once per pass and only timers due at
//! that reading run). Waits for events give up after `GIVE_UP`, which only
//! a broken loop reaches.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use itimer_hostalarm::alarm::timerfd::TimerFdBackend;
use itimer_hostalarm::alarm::{AlarmBackend, Precedence, StartError};
use itimer_hostalarm::sim::SimBackend;
use itimer_hostalarm::time::NS_PER_MS;
use itimer_hostalarm::{ClockType, Clocks, LoopError, Scale, TimerLoop};

/// Largest lateness accepted: 20 ms (loaded 2-core VM).
const LATE: i64 = 20 * NS_PER_MS;
/// Longest wait for something that should take milliseconds.
const GIVE_UP: Duration = Duration::from_secs(5);

fn wait_until(what: &str, mut pred: impl FnMut() -> bool) {
    let start = Instant::now();
    while !pred() {
        assert!(start.elapsed() < GIVE_UP, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn start() -> (Clocks, TimerLoop) {
    let clocks = Clocks::new_real();
    let l = TimerLoop::start(&clocks, &Precedence::default()).expect("a backend starts");
    (clocks, l)
}

type Fired = Arc<Mutex<Vec<(&'static str, i64, Option<String>)>>>;

/// A MONO timer recording its name, the clock reading in its callback,
/// and the thread it ran on.
fn recorder(
    clocks: &Clocks,
    kind: ClockType,
    name: &'static str,
    fired: &Fired,
) -> itimer_hostalarm::Timer {
    let (f, c) = (fired.clone(), clocks.clone());
    clocks.clock(kind).new_timer(Scale::Ns, move |_| {
        let now = c.now(kind);
        let thread = std::thread::current().name().map(str::to_owned);
        f.lock().unwrap().push((name, now, thread));
    })
}

fn assert_on_time(name: &str, fired_at: i64, deadline: i64) {
    assert!(
        fired_at >= deadline,
        "{name} fired {} ns early",
        deadline - fired_at
    );
    assert!(
        fired_at - deadline <= LATE,
        "{name} fired {} ns late",
        fired_at - deadline
    );
}

#[test]
fn fires_1ms_and_5ms_timers_on_time_on_the_loop_thread() {
    let (clocks, l) = start();
    assert_eq!(l.backend_name(), "timerfd");
    let fired = Fired::default();
    let t5 = recorder(&clocks, ClockType::Mono, "5ms", &fired);
    let t1 = recorder(&clocks, ClockType::Mono, "1ms", &fired);
    let now = clocks.now(ClockType::Mono);
    t5.arm(now + 5 * NS_PER_MS).unwrap();
    t1.arm(now + NS_PER_MS).unwrap();
    wait_until("both timers", || fired.lock().unwrap().len() == 2);
    let f = fired.lock().unwrap().clone();
    assert_eq!((f[0].0, f[1].0), ("1ms", "5ms"));
    assert_on_time("1ms", f[0].1, now + NS_PER_MS);
    assert_on_time("5ms", f[1].1, now + 5 * NS_PER_MS);
    assert!(f.iter().all(|x| x.2.as_deref() == Some("itimer-loop")));
    let s = l.stats();
    assert_eq!(s.timers_run, 2);
    assert!((1..=2).contains(&s.alarm_wakeups), "{s:?}");
    assert_eq!(s.rearm_errors + s.consume_errors, 0);
}

#[test]
fn periodic_1ms_timer_is_never_early_and_rarely_late() {
    let (clocks, _l) = start();
    let ticks = Arc::new(Mutex::new(Vec::new()));
    let (t2, c) = (ticks.clone(), clocks.clone());
    let timer = clocks.mono().new_timer(Scale::Ns, move |me| {
        let now = c.now(ClockType::Mono);
        let mut t = t2.lock().unwrap();
        t.push(now);
        if t.len() < 50 {
            me.arm(now + NS_PER_MS).unwrap();
        }
    });
    let start_ns = clocks.now(ClockType::Mono);
    timer.arm(start_ns + NS_PER_MS).unwrap();
    wait_until("50 ticks", || ticks.lock().unwrap().len() == 50);
    let t = ticks.lock().unwrap().clone();
    let mut deadline = start_ns + NS_PER_MS;
    for (i, &at) in t.iter().enumerate() {
        assert_on_time(&format!("tick {i}"), at, deadline);
        deadline = at + NS_PER_MS;
    }
}

#[test]
fn arming_earlier_from_another_thread_wakes_the_loop() {
    let (clocks, l) = start();
    let fired = Fired::default();
    let far = recorder(&clocks, ClockType::Mono, "far", &fired);
    let near = recorder(&clocks, ClockType::Mono, "near", &fired);
    far.arm(clocks.now(ClockType::Mono) + 10_000 * NS_PER_MS)
        .unwrap();
    // Wait until the loop has armed the far deadline and gone to sleep.
    wait_until("the far deadline armed", || l.stats().rearm_calls >= 1);
    std::thread::sleep(Duration::from_millis(5));
    let before = (l.kicks(), l.stats().notify_wakeups);
    let c = clocks.clone();
    let near_h = near.handle();
    let deadline = std::thread::spawn(move || {
        let d = c.now(ClockType::Mono) + 2 * NS_PER_MS;
        near_h.arm(d).unwrap();
        d
    })
    .join()
    .unwrap();
    wait_until("the near timer", || !fired.lock().unwrap().is_empty());
    let f = fired.lock().unwrap().clone();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].0, "near");
    assert_on_time("near", f[0].1, deadline);
    assert_eq!(l.kicks(), before.0 + 1, "one kick for the earlier deadline");
    assert!(l.stats().notify_wakeups > before.1);
    assert!(far.is_armed());
}

#[test]
fn deleting_the_armed_timer_gives_one_spurious_wakeup() {
    let (clocks, l) = start();
    let t = clocks
        .mono()
        .new_timer(Scale::Ms, |_| panic!("deleted timer ran"));
    let t0 = clocks.mono().now();
    t.arm(t0 / NS_PER_MS + 5).unwrap();
    wait_until("armed", || l.stats().rearm_calls == 1);
    t.del();
    wait_until("the stale alarm", || l.stats().alarm_wakeups == 1);
    let s = l.stats();
    assert_eq!((s.spurious_wakeups, s.timers_run), (1, 0), "{s:?}");
    // Nothing armed after it: no further host call.
    assert_eq!(s.rearm_calls, 1);
}

#[test]
fn del_waits_for_the_running_callback() {
    let (clocks, _l) = start();
    let started = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let (s2, r2, f2) = (started.clone(), release.clone(), finished.clone());
    let t = clocks.mono().new_timer(Scale::Ns, move |_| {
        s2.store(true, Ordering::SeqCst);
        wait_until("release", || r2.load(Ordering::SeqCst));
        f2.store(true, Ordering::SeqCst);
    });
    t.arm(clocks.mono().now() + NS_PER_MS).unwrap();
    wait_until("the callback to start", || started.load(Ordering::SeqCst));
    let returned = Arc::new(AtomicBool::new(false));
    let (h, ret2, f3) = (t.handle(), returned.clone(), finished.clone());
    let deleter = std::thread::spawn(move || {
        h.del();
        ret2.store(true, Ordering::SeqCst);
        f3.load(Ordering::SeqCst)
    });
    // 100 ms is ample for a del that does not wait to return.
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !returned.load(Ordering::SeqCst),
        "del returned while its callback ran"
    );
    release.store(true, Ordering::SeqCst);
    assert!(
        deleter.join().unwrap(),
        "the callback had finished when del returned"
    );
}

#[test]
fn disabled_clock_and_stopped_vm_fire_once_reenabled() {
    let (clocks, _l) = start();
    let fired = Fired::default();
    let rt = recorder(&clocks, ClockType::Mono, "rt", &fired);
    let vm = recorder(&clocks, ClockType::Guest, "vm", &fired);
    clocks.mono().enable(false);
    clocks.vm_stop();
    rt.arm(clocks.now(ClockType::Mono) + NS_PER_MS).unwrap();
    let vm_deadline = clocks.now(ClockType::Guest) + NS_PER_MS;
    vm.arm(vm_deadline).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    assert!(
        fired.lock().unwrap().is_empty(),
        "disabled / stopped: nothing runs"
    );
    let t_enable = clocks.now(ClockType::Mono);
    clocks.mono().enable(true);
    wait_until("rt after enable", || fired.lock().unwrap().len() == 1);
    assert_on_time("rt after enable", fired.lock().unwrap()[0].1, t_enable);
    let resumed_at_vm = clocks.now(ClockType::Guest);
    assert_eq!(
        resumed_at_vm,
        vm_deadline - NS_PER_MS,
        "guest time frozen while stopped"
    );
    clocks.vm_start();
    wait_until("vm after resume", || fired.lock().unwrap().len() == 2);
    let f = fired.lock().unwrap().clone();
    assert_eq!(f[1].0, "vm");
    assert_on_time("vm after resume", f[1].1, vm_deadline);
}

#[test]
fn drop_stops_the_loop_and_the_clocks_can_be_driven_again() {
    let clocks = Clocks::new_real();
    let l = TimerLoop::start(&clocks, &Precedence::default()).unwrap();
    assert!(matches!(
        TimerLoop::start(&clocks, &Precedence::default()),
        Err(LoopError::AlreadyBound)
    ));
    let count = Arc::new(AtomicU32::new(0));
    let c2 = count.clone();
    let t = clocks.mono().new_timer(Scale::Ns, move |_| {
        c2.fetch_add(1, Ordering::SeqCst);
    });
    let deadline = clocks.mono().now() + 20 * NS_PER_MS;
    t.arm(deadline).unwrap();
    drop(l); // joins the thread
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(count.load(Ordering::SeqCst), 0, "no loop, no callbacks");
    assert!(t.is_armed());
    let l2 = TimerLoop::start(&clocks, &Precedence::default()).unwrap();
    let restarted = clocks.mono().now();
    wait_until("the overdue timer", || count.load(Ordering::SeqCst) == 1);
    assert!(clocks.mono().now() - restarted <= LATE);
    assert_eq!(l2.stats().timers_run, 1);
}

/// A backend that refuses to start.
struct Refuses;

impl AlarmBackend for Refuses {
    fn name(&self) -> &'static str {
        "refuses"
    }
    fn start(&mut self) -> Result<(), StartError> {
        Err(StartError {
            backend: "refuses",
            errno: Some(nix::errno::Errno::ENOSYS),
            reason: "test backend".into(),
        })
    }
    fn stop(&mut self) {}
    fn rearm(
        &mut self,
        _: Option<itimer_hostalarm::alarm::MonoNs>,
    ) -> Result<(), nix::errno::Errno> {
        unreachable!("never started")
    }
    fn wait_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }
    fn consume(&mut self) -> Result<itimer_hostalarm::alarm::Wakeup, nix::errno::Errno> {
        unreachable!("never started")
    }
    fn resolution_ns(&self) -> u64 {
        1
    }
    fn min_rearm_ns(&self) -> u64 {
        0
    }
    fn rearm_calls(&self) -> u64 {
        0
    }
}

#[test]
fn backends_are_tried_in_order_and_every_failure_is_reported() {
    let clocks = Clocks::new_real();
    let err = TimerLoop::start_with(
        &clocks,
        vec![Box::new(Refuses), Box::new(SimBackend::new(0))],
    )
    .unwrap_err();
    let LoopError::AllFailed(all) = err else {
        panic!("expected AllFailed, got {err:?}");
    };
    let names: Vec<_> = all.errors.iter().map(|e| e.backend).collect();
    assert_eq!(names, ["refuses", "sim"]);
    assert_eq!(all.errors[0].errno, Some(nix::errno::Errno::ENOSYS));
    // The failed start left the clocks unbound.
    let mut l = TimerLoop::start_with(
        &clocks,
        vec![Box::new(Refuses), Box::new(TimerFdBackend::new())],
    )
    .unwrap();
    assert_eq!(l.backend_name(), "timerfd");
    // Not a forked child: refused, and the loop is untouched.
    assert!(matches!(l.reinit_after_fork(), Err(LoopError::NotForked)));
    let ran = Arc::new(AtomicBool::new(false));
    let r2 = ran.clone();
    let t = clocks
        .mono()
        .new_timer(Scale::Ns, move |_| r2.store(true, Ordering::SeqCst));
    t.arm(clocks.mono().now() + NS_PER_MS).unwrap();
    wait_until("a timer after the refused reinit", || {
        ran.load(Ordering::SeqCst)
    });
}
