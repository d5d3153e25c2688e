//! The three clocks on the simulated host, to the nanosecond: firing order
//! and times across clocks, scales, enable/disable, GUEST stop / warp /
//! step, wall-clock steps and reset notifiers.

use std::sync::{Arc, Mutex};

use itimer_hostalarm::time::{NS_PER_MS, NS_PER_SEC, NS_PER_US};
use itimer_hostalarm::{ClockType, Scale, SimConfig, SimError, SimHost, Timer};
use nix::errno::Errno;

const W0: i64 = 1_700_000_000 * NS_PER_SEC;

/// What each callback saw: (name, its clock's reading, host mono).
type Log = Arc<Mutex<Vec<(&'static str, i64, i64)>>>;

fn host() -> SimHost {
    SimHost::new(SimConfig::default()).unwrap()
}

fn logging_timer(
    h: &SimHost,
    kind: ClockType,
    scale: Scale,
    name: &'static str,
    log: &Log,
) -> Timer {
    let log = log.clone();
    let clocks = h.clocks().clone();
    h.clocks().clock(kind).new_timer(scale, move |_| {
        let now = clocks.now(kind);
        let mono = clocks.now(ClockType::Mono);
        log.lock().unwrap().push((name, now, mono));
    })
}

fn take(log: &Log) -> Vec<(&'static str, i64, i64)> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[test]
fn many_timers_across_three_clocks_fire_in_order_at_exact_times() {
    let h = host();
    let log = Log::default();
    let ms = NS_PER_MS;
    let timers = [
        (ClockType::Mono, "rt5", 5 * ms),
        (ClockType::Mono, "rt1", ms),
        (ClockType::Guest, "vm3", 3 * ms),
        (ClockType::Wall, "host3", W0 + 3 * ms),
        (ClockType::Mono, "rt3", 3 * ms),
        (ClockType::Wall, "host2", W0 + 2 * ms),
        (ClockType::Guest, "vm4", 4 * ms),
        (ClockType::Mono, "rt1b", ms),
        (ClockType::Wall, "host9", W0 + 9 * ms + 7),
    ]
    .map(|(kind, name, at)| {
        let t = logging_timer(&h, kind, Scale::Ns, name, &log);
        t.arm(at).unwrap();
        t
    });
    assert!(timers.iter().all(|t| t.is_armed()));
    let fired = h.advance(10 * ms).unwrap();
    assert_eq!(
        fired, 6,
        "one alarm per distinct deadline: 1, 2, 3, 4, 5, 9ms+7"
    );
    assert_eq!(
        take(&log),
        [
            ("rt1", ms, ms),
            ("rt1b", ms, ms),
            ("host2", W0 + 2 * ms, 2 * ms),
            // Same host instant on three clocks: MONO, WALL, GUEST.
            ("rt3", 3 * ms, 3 * ms),
            ("host3", W0 + 3 * ms, 3 * ms),
            ("vm3", 3 * ms, 3 * ms),
            ("vm4", 4 * ms, 4 * ms),
            ("rt5", 5 * ms, 5 * ms),
            ("host9", W0 + 9 * ms + 7, 9 * ms + 7),
        ]
    );
    assert_eq!(h.mono_ns(), 10 * ms);
    assert!(timers.iter().all(|t| !t.is_armed()));
    assert_eq!(h.armed_deadline(), Ok(None));
    let s = h.stats();
    assert_eq!(
        (s.alarm_wakeups, s.spurious_wakeups, s.timers_run),
        (6, 0, 9)
    );
}

#[test]
fn scales_convert_at_the_boundary() {
    let h = host();
    let log = Log::default();
    let t_ms = logging_timer(&h, ClockType::Mono, Scale::Ms, "ms", &log);
    let t_us = logging_timer(&h, ClockType::Mono, Scale::Us, "us", &log);
    let t_ns = logging_timer(&h, ClockType::Mono, Scale::Ns, "ns", &log);
    t_ms.arm(2).unwrap();
    t_us.arm(1_500).unwrap();
    t_ns.arm(1_999_999).unwrap();
    assert_eq!(t_ms.expire_time(), Some(2));
    assert_eq!(t_us.expire_time(), Some(1_500));
    assert_eq!(t_us.expire_time_ns(), Some(1_500 * NS_PER_US));
    // arm_ns on a ms timer: expire_time rounds down.
    t_ms.arm_ns(2 * NS_PER_MS + 1).unwrap();
    assert_eq!(t_ms.expire_time(), Some(2));
    assert_eq!(t_ms.arm(i64::MAX / 2), Err(Errno::EOVERFLOW));
    assert_eq!(
        t_ms.expire_time_ns(),
        Some(2 * NS_PER_MS + 1),
        "a failed arm changes nothing"
    );
    h.advance(3 * NS_PER_MS).unwrap();
    assert_eq!(
        take(&log),
        [
            ("us", 1_500_000, 1_500_000),
            ("ns", 1_999_999, 1_999_999),
            ("ms", 2_000_001, 2_000_001)
        ]
    );
}

#[test]
fn disabled_clock_has_no_deadline_and_runs_nothing_until_enabled() {
    let h = host();
    let log = Log::default();
    let rt = h.clocks().mono();
    let t = logging_timer(&h, ClockType::Mono, Scale::Ms, "rt", &log);
    let v = logging_timer(&h, ClockType::Guest, Scale::Ms, "vm", &log);
    rt.enable(false);
    assert!(!rt.is_enabled());
    t.arm(1).unwrap();
    v.arm(4).unwrap();
    assert_eq!(rt.deadline(), None);
    assert_eq!(rt.deadline_ns(), None);
    assert_eq!(rt.host_deadline(), None);
    h.advance(2 * NS_PER_MS).unwrap();
    assert!(take(&log).is_empty(), "disabled: nothing runs");
    assert!(t.is_armed(), "disabled clocks keep their timers armed");
    assert_eq!(
        h.armed_deadline(),
        Ok(Some(4 * NS_PER_MS)),
        "only VIRTUAL counts"
    );
    // Enabling re-arms the alarm: the overdue timer runs on the next pass.
    rt.enable(true);
    assert_eq!(rt.deadline(), Some(NS_PER_MS));
    assert_eq!(rt.deadline_ns(), Some(0), "already due");
    h.advance(0).unwrap();
    assert_eq!(take(&log), [("rt", 2 * NS_PER_MS, 2 * NS_PER_MS)]);
    // Disabling GUEST drops its deadline from the earliest.
    h.clocks().guest().enable(false);
    assert_eq!(h.clocks().earliest_host_deadline(), None);
    h.advance(10 * NS_PER_MS).unwrap();
    assert!(take(&log).is_empty());
    assert!(v.is_armed());
}

#[test]
fn virtual_stops_resumes_and_fires_in_guest_time() {
    let h = host();
    let log = Log::default();
    let clocks = h.clocks();
    let v = logging_timer(&h, ClockType::Guest, Scale::Ms, "vm10", &log);
    v.arm(10).unwrap();
    h.advance(4 * NS_PER_MS).unwrap();
    clocks.vm_stop();
    assert!(!clocks.vm_running());
    assert_eq!(
        clocks.guest().host_deadline(),
        None,
        "stopped: guest time does not pass"
    );
    h.advance(20 * NS_PER_MS).unwrap();
    assert!(take(&log).is_empty());
    assert_eq!(clocks.now(ClockType::Guest), 4 * NS_PER_MS);
    assert_eq!(clocks.guest().deadline_ns(), Some(6 * NS_PER_MS));
    clocks.vm_stop(); // idempotent
    clocks.vm_start();
    assert_eq!(clocks.guest().host_deadline(), Some(30 * NS_PER_MS));
    h.advance(10 * NS_PER_MS).unwrap();
    assert_eq!(take(&log), [("vm10", 10 * NS_PER_MS, 30 * NS_PER_MS)]);
    assert_eq!(clocks.now(ClockType::Guest), 14 * NS_PER_MS);
}

#[test]
fn virtual_warp_jumps_forward_and_late_timers_see_the_warped_time() {
    let h = host();
    let log = Log::default();
    let clocks = h.clocks();
    let a = logging_timer(&h, ClockType::Guest, Scale::Ns, "a", &log);
    let b = logging_timer(&h, ClockType::Guest, Scale::Ns, "b", &log);
    a.arm(1_000).unwrap();
    b.arm(5_000).unwrap();
    h.advance(100).unwrap();
    clocks.vm_warp(2_000).unwrap();
    assert_eq!(clocks.now(ClockType::Guest), 2_100);
    assert_eq!(clocks.vm_warp(-1), Err(Errno::EINVAL));
    h.advance(0).unwrap();
    assert_eq!(take(&log), [("a", 2_100, 100)]);
    // Warping a stopped VM makes b due although guest time is frozen.
    clocks.vm_stop();
    clocks.vm_warp(3_000).unwrap();
    assert_eq!(clocks.guest().host_deadline(), Some(100), "due now");
    h.advance(0).unwrap();
    assert_eq!(take(&log), [("b", 5_100, 100)]);
}

#[test]
fn virtual_step_runs_each_timer_at_its_deadline_while_stopped() {
    let h = host();
    let log = Log::default();
    let clocks = h.clocks();
    let names = ["s1", "s2a", "s2b", "s9"];
    let at = [1_000, 2_000, 2_000, 9_000];
    let ts: Vec<_> = names
        .iter()
        .zip(at)
        .map(|(n, at)| {
            let t = logging_timer(&h, ClockType::Guest, Scale::Ns, n, &log);
            t.arm(at).unwrap();
            t
        })
        .collect();
    assert_eq!(
        clocks.vm_step(10),
        Err(Errno::EBUSY),
        "only a stopped VM steps"
    );
    clocks.vm_stop();
    assert_eq!(clocks.vm_step(-1), Err(Errno::EINVAL));
    clocks.vm_step(5_000).unwrap();
    assert_eq!(
        take(&log),
        [("s1", 1_000, 0), ("s2a", 2_000, 0), ("s2b", 2_000, 0)]
    );
    assert_eq!(clocks.now(ClockType::Guest), 5_000);
    assert_eq!(h.mono_ns(), 0, "host time did not move");
    assert!(ts[3].is_armed());
    clocks.vm_step(4_000).unwrap();
    assert_eq!(take(&log), [("s9", 9_000, 0)]);
    assert_eq!(clocks.now(ClockType::Guest), 9_000);
}

#[test]
fn wall_steps_fire_reset_notifiers_backwards_and_past_the_threshold_only() {
    let h = host();
    let steps = Arc::new(Mutex::new(Vec::new()));
    let s2 = steps.clone();
    let host_clock = h.clocks().wall();
    let id = host_clock
        .add_reset_notifier(move |s| s2.lock().unwrap().push(s.delta_ns()))
        .unwrap();
    assert_eq!(
        h.clocks().mono().add_reset_notifier(|_| {}).err(),
        Some(Errno::EINVAL)
    );
    let threshold = h.clocks().config().wall_step_threshold_ns;
    assert_eq!(threshold, 100 * NS_PER_MS);
    h.advance(NS_PER_MS).unwrap();
    h.step_wall(-1).unwrap();
    h.step_wall(threshold).unwrap(); // forward by exactly the threshold: not a step
    h.step_wall(threshold / 2).unwrap();
    h.step_wall(threshold + 1).unwrap();
    h.step_wall(-5 * NS_PER_SEC).unwrap();
    assert_eq!(*steps.lock().unwrap(), [-1, threshold + 1, -5 * NS_PER_SEC]);
    assert_eq!(h.stats().wall_steps, 3);
    assert_eq!(
        h.mono_ns(),
        NS_PER_MS,
        "wall steps do not move monotonic time"
    );
    host_clock.remove_reset_notifier(id).unwrap();
    assert_eq!(host_clock.remove_reset_notifier(id), Err(Errno::ENOENT));
    h.step_wall(-1).unwrap();
    assert_eq!(steps.lock().unwrap().len(), 3, "removed");
    assert_eq!(h.stats().wall_steps, 4, "still detected");
}

#[test]
fn host_timers_follow_wall_steps() {
    let h = host();
    let log = Log::default();
    let fwd = logging_timer(&h, ClockType::Wall, Scale::Ns, "fwd", &log);
    let back = logging_timer(&h, ClockType::Wall, Scale::Ns, "back", &log);
    fwd.arm(W0 + NS_PER_SEC).unwrap();
    back.arm(W0 + 2 * NS_PER_SEC).unwrap();
    h.advance(10).unwrap();
    // Stepping forward 1.5 s makes `fwd` overdue: it runs in the step's pass.
    h.step_wall(1_500 * NS_PER_MS).unwrap();
    assert_eq!(take(&log), [("fwd", W0 + 10 + 1_500 * NS_PER_MS, 10)]);
    // Back by 1 s: `back` (due at wall W0+2s) now needs 1.5 s - 10 ns more.
    h.step_wall(-NS_PER_SEC).unwrap();
    let due_mono = NS_PER_SEC + NS_PER_SEC / 2;
    assert_eq!(h.armed_deadline(), Ok(Some(due_mono)));
    h.advance(due_mono - 10 - 1).unwrap();
    assert!(take(&log).is_empty());
    h.advance(1).unwrap();
    assert_eq!(take(&log), [("back", W0 + 2 * NS_PER_SEC, due_mono)]);
}

#[test]
fn negative_and_reentrant_driving_is_refused() {
    let h = Arc::new(host());
    assert_eq!(h.advance(-1), Err(SimError::NegativeDuration));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (h2, seen2) = (h.clone(), seen.clone());
    let clocks = h.clocks().clone();
    let t = h.clocks().mono().new_timer(Scale::Ns, move |_| {
        seen2.lock().unwrap().push(format!("{:?}", h2.advance(1)));
        seen2
            .lock()
            .unwrap()
            .push(format!("{:?}", clocks.vm_step(1)));
        seen2
            .lock()
            .unwrap()
            .push(format!("{:?}", clocks.mono().run_timers()));
    });
    t.arm(5).unwrap();
    h.advance(5).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["Err(Busy)", "Err(EDEADLK)", "Err(EDEADLK)"]
    );
    drop(t);
}
