//! Overload and conservation on the real host (the default alarm backend).
//!
//! Two thousand periodic timers with 50–500 µs intervals overload the
//! timer loop while a slow consumer thread takes a few notifications every
//! few milliseconds. The invariant
//!
//! > expirations notified and consumed + overruns reported with them +
//! > `pending` = expirations that happened
//!
//! is checked against the backend's own count, read from the backend's
//! own state: a periodic timer's next deadline is always `first + m ×
//! interval`, where `m` is the number of expirations the backend has
//! reported to the kernel (each report of `k` expirations moves the
//! deadline `k` periods on). So:
//!
//! * **VM-clock timers, exactly.** Stopping the VM freezes their clock;
//!   once every due timer has run (each reports a deadline after the
//!   frozen time), `m = (frozen VM time + time left − first) / interval`,
//!   and the division must be exact.
//! * **Absolute REALTIME timers, exactly.** Stepping the wall clock back a
//!   day moves their deadlines a day away (they follow the clock), so they
//!   stop; each one's time left, read between two wall-clock readings
//!   (retried until the readings are closer than a period), pins its next
//!   deadline to a window holding exactly one point of its period grid.
//! * **Every timer, exactly, against the backend's report.** The kernel
//!   counts every expiration the backend reports (`TimerStatus::expirations`,
//!   the sum of `k` over `timer_fire(k)`); consumed + overruns + pending
//!   must equal it for every timer.
//! * **HIGHRES timers, bounded by the clock.** Nothing stops HIGHRES time, and under
//!   this overload a timer is nearly always due at any instant, so the
//!   disarming `timer_settime` (which returns the time left atomically with
//!   the disarm) usually reports 0 left: that pins only the upper end of
//!   `m`; the lower end is the deadlines up to [`LATE`] before the disarm.
//!   When it reports time left, two clock readings around it pin `m` to a
//!   window about one period wide.
//!
//! Memory stays bounded: the process's signal entries stay one per signal
//! timer throughout, a port never holds more events than its timers, and
//! draining yields exactly one notification per timer with pending
//! expirations.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use itimer::abi::*;
use itimer::kernel::PortId;
use itimer::{Credentials, Kernel, Process};

const US: i64 = 1_000;
const MS: i64 = 1_000_000;
const NANOS: i64 = 1_000_000_000;
/// How late the timer loop may be on a loaded 2-core CI machine (used only
/// for the lower bound of a HIGHRES timer that was due but unrun at its
/// disarm).
const LATE: i64 = 1_000 * MS;
/// How long the overload lasts.
const RUN: Duration = Duration::from_millis(400);

/// xorshift64*: the same timers on every run.
struct Rng(u64);

impl Rng {
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        lo + (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % (hi - lo + 1) as u64) as i64
    }
}

fn ns(ts: Timespec) -> i64 {
    ts.tv_sec * NANOS + ts.tv_nsec
}

fn ts(ns: i64) -> Timespec {
    Timespec {
        tv_sec: ns / NANOS,
        tv_nsec: ns % NANOS,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// VM clock, signal.
    VmSignal,
    /// VM clock, port event.
    VmPort,
    /// REALTIME, armed absolute, signal.
    Realtime,
    /// HIGHRES, signal.
    Highres,
}

#[derive(Debug)]
struct Tracked {
    tid: i32,
    kind: Kind,
    /// First deadline, absolute ns on the timer's clock.
    first: i64,
    interval: i64,
    /// Expirations consumed (1 + overrun per signal, events per port event).
    consumed: AtomicU64,
}

/// Takes up to `budget` signals and `budget` port events; returns how many.
fn consume(p: &Process, port: PortId, timers: &[Tracked], budget: usize, wait: Duration) -> usize {
    let mut took = 0;
    let wait = Timespec {
        tv_sec: 0,
        tv_nsec: wait.as_nanos() as i64,
    };
    for _ in 0..budget {
        let Ok(info) = p.raw().sigtimedwait(u64::MAX, Some(&wait)) else {
            break;
        };
        let t = &timers[info.si_value as usize];
        assert_eq!(t.tid, info.si_timerid);
        assert_ne!(t.kind, Kind::VmPort);
        t.consumed
            .fetch_add(1 + info.si_overrun as u64, Ordering::Relaxed);
        took += 1;
    }
    for _ in 0..budget {
        let Ok(ev) = p.port_get(port, Some(Duration::ZERO)) else {
            break;
        };
        let t = &timers[ev.portev_user as usize];
        assert_eq!((t.kind, t.tid as u64), (Kind::VmPort, ev.portev_object));
        assert!(ev.portev_events >= 1);
        t.consumed
            .fetch_add(ev.portev_events as u64, Ordering::Relaxed);
        took += 1;
    }
    took
}

fn memory_bounds(p: &Process, port: PortId, timers: &[Tracked]) {
    let signal_timers = timers.iter().filter(|t| t.kind != Kind::VmPort).count();
    let port_timers = timers.len() - signal_timers;
    assert_eq!(
        p.stats().sig_entries,
        signal_timers,
        "one signal entry per timer"
    );
    assert!(p.port_pending(port).unwrap() <= port_timers);
}

#[test]
fn thousands_of_fast_timers_conserve_expirations_on_the_real_host() {
    let k = Kernel::builder()
        .alarms("timerfd")
        .timer_max(4096)
        .boot()
        .expect("a real alarm backend starts");
    assert_eq!(k.alarm_backend(), "timerfd");
    let res = k.resolution_ns() as i64;
    assert!(
        res < 50 * US,
        "resolution {res} ns: periods would not be resolved"
    );
    let p = k.spawn_process(Credentials::ROOT);
    let raw = p.raw();
    let port = p.port_create().unwrap();
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    let signos = [SIGALRM, SIGUSR1, SIGRTMIN, SIGRTMIN + 5];
    let mut timers: Vec<Tracked> = Vec::new();
    let vm0 = ns(raw.clock_gettime(CLOCK_VM).unwrap());
    for i in 0..2000 {
        let kind = match i % 4 {
            0 => Kind::VmSignal,
            1 => Kind::VmPort,
            2 => Kind::Realtime,
            _ => Kind::Highres,
        };
        let ev = match kind {
            Kind::VmPort => Sigevent {
                sigev_notify: SIGEV_PORT,
                sigev_port: PortNotify {
                    portnfy_port: port.0,
                    portnfy_user: i as u64,
                },
                ..Sigevent::default()
            },
            _ => Sigevent {
                sigev_notify: SIGEV_SIGNAL,
                sigev_signo: signos[i % signos.len()],
                sigev_value: i as u64,
                ..Sigevent::default()
            },
        };
        let clock = match kind {
            Kind::Highres => CLOCK_HIGHRES,
            Kind::Realtime => CLOCK_REALTIME,
            Kind::VmSignal | Kind::VmPort => CLOCK_VM,
        };
        let tid = raw.timer_create(clock, Some(&ev)).unwrap();
        let interval = rng.range(50 * US, 500 * US);
        // Absolute first deadlines, known exactly (relative to a reading
        // taken before, so possibly already past: the backend then
        // reports the missed periods at once).
        let base = match kind {
            Kind::VmSignal | Kind::VmPort => vm0,
            _ => ns(raw.clock_gettime(clock).unwrap()),
        };
        let first = base + 20 * MS + rng.range(0, interval);
        let spec = Itimerspec {
            it_interval: ts(interval),
            it_value: ts(first),
        };
        raw.timer_settime(tid, TIMER_ABSTIME, &spec).unwrap();
        timers.push(Tracked {
            tid,
            kind,
            first,
            interval,
            consumed: AtomicU64::new(0),
        });
    }

    // The slow consumer: a few notifications every few milliseconds.
    let stop = AtomicBool::new(false);
    // The backend's count of each timer's expirations, once known: lo..=hi.
    let mut counts: Vec<(u64, u64)> = vec![(0, u64::MAX); timers.len()];
    let consumed_notifications = std::thread::scope(|s| {
        let consumer = s.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += consume(&p, port, &timers, 16, Duration::from_millis(1));
                std::thread::sleep(Duration::from_millis(3));
            }
            n
        });
        let start = Instant::now();
        while start.elapsed() < RUN {
            memory_bounds(&p, port, &timers);
            std::thread::sleep(Duration::from_millis(20));
        }

        // VM: stop it, and wait until every due VM timer has run.
        k.vm_stop();
        let frozen = ns(raw.clock_gettime(CLOCK_VM).unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let unrun = timers
                .iter()
                .filter(|t| matches!(t.kind, Kind::VmSignal | Kind::VmPort))
                .filter(|t| ns(raw.timer_gettime(t.tid).unwrap().it_value) == 0)
                .count();
            if unrun == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{unrun} VM timers still due 20 s after the VM stopped"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(ns(raw.clock_gettime(CLOCK_VM).unwrap()), frozen, "frozen");
        for (t, count) in timers
            .iter()
            .zip(&mut counts)
            .filter(|(t, _)| matches!(t.kind, Kind::VmSignal | Kind::VmPort))
        {
            let left = ns(raw.timer_gettime(t.tid).unwrap().it_value);
            // next deadline N = frozen + left, exactly when the resolution
            // is 1 ns, else within one resolution step below.
            let top = frozen + left - t.first;
            let m = top.div_euclid(t.interval);
            if res == 1 {
                assert_eq!(
                    top.rem_euclid(t.interval),
                    0,
                    "{t:?}: next deadline off the period grid"
                );
            } else {
                assert!(top.rem_euclid(t.interval) < res, "{t:?}");
            }
            *count = (m as u64, m as u64);
        }

        // REALTIME: a day back, and every absolute timer stops.
        let wall = ns(raw.clock_gettime(CLOCK_REALTIME).unwrap());
        raw.clock_settime(CLOCK_REALTIME, &ts(wall - 86_400 * NANOS))
            .unwrap();
        for (t, count) in timers
            .iter()
            .zip(&mut counts)
            .filter(|(t, _)| t.kind == Kind::Realtime)
        {
            // N = now + left (left rounded up to the resolution), now in
            // [before, after]: N in (before + left - res, after + left].
            let (lo_n, hi_n) = (0..1000)
                .find_map(|_| {
                    let before = ns(raw.clock_gettime(CLOCK_REALTIME).unwrap());
                    let left = ns(raw.timer_gettime(t.tid).unwrap().it_value);
                    let after = ns(raw.clock_gettime(CLOCK_REALTIME).unwrap());
                    assert!(left > 0, "{t:?}: due a day early");
                    let window = (before + left - res + 1, after + left);
                    (window.1 - window.0 < t.interval).then_some(window)
                })
                .expect("two clock readings within one period, in 1000 tries");
            let m = (hi_n - t.first).div_euclid(t.interval);
            assert!(
                t.first + m * t.interval >= lo_n,
                "{t:?}: no deadline on its period grid in [{lo_n}, {hi_n}]"
            );
            *count = (m as u64, m as u64);
        }

        // HIGHRES (the loop now carries only these): disarm, bracketing
        // each disarm with clock readings.
        for (t, count) in timers
            .iter()
            .zip(&mut counts)
            .filter(|(t, _)| t.kind == Kind::Highres)
        {
            let before = ns(raw.clock_gettime(CLOCK_HIGHRES).unwrap());
            let old = raw.timer_settime(t.tid, 0, &Itimerspec::default()).unwrap();
            let after = ns(raw.clock_gettime(CLOCK_HIGHRES).unwrap());
            assert_eq!(ns(old.it_interval), t.interval);
            let left = ns(old.it_value);
            // next deadline N = first + m × interval lies in
            // [before + left − res, after + left] when left > 0
            // (left is rounded up to the resolution), and N ≤ after
            // when left = 0.
            let hi = (after + left - t.first).div_euclid(t.interval);
            let lo = if left > 0 {
                (before + left - res - t.first).div_euclid(t.interval)
                    + i64::from((before + left - res - t.first).rem_euclid(t.interval) != 0)
            } else {
                (before - LATE - t.first).div_euclid(t.interval)
            };
            *count = (lo.max(0) as u64, hi.max(0) as u64);
        }

        stop.store(true, Ordering::Relaxed);
        consumer.join().unwrap()
    });

    // Quiescent now: nothing fires (HIGHRES disarmed, VM stopped and
    // settled), nothing consumes.
    memory_bounds(&p, port, &timers);
    let mut outstanding = 0;
    for (t, &(lo, hi)) in timers.iter().zip(&counts) {
        let status = p.timer_status(t.tid).unwrap();
        outstanding += usize::from(status.pending > 0);
        let seen = t.consumed.load(Ordering::Relaxed) + status.pending;
        // Exactly: every expiration the backend reported to the kernel was
        // notified, counted as an overrun, or is pending.
        assert_eq!(
            seen, status.expirations,
            "{t:?}: consumed + pending against the backend's own count"
        );
        // And the backend's count agrees with the clock arithmetic.
        assert!(
            (lo..=hi).contains(&seen),
            "{t:?}: consumed + pending = {seen}, the clock arithmetic allows {lo}..={hi}"
        );
    }
    let mut drained = 0;
    loop {
        let took = consume(&p, port, &timers, usize::MAX, Duration::ZERO);
        if took == 0 {
            break;
        }
        drained += took;
    }
    assert_eq!(drained, outstanding, "one queued notification per timer");
    let (mut total, mut exact, mut narrow, mut width) = (0u64, 0, 0, 0u64);
    for (t, &(lo, hi)) in timers.iter().zip(&counts) {
        assert_eq!(p.timer_status(t.tid).unwrap().pending, 0);
        let c = t.consumed.load(Ordering::Relaxed);
        assert!((lo..=hi).contains(&c), "{t:?}: consumed {c}");
        total += c;
        exact += usize::from(lo == hi);
        narrow += usize::from(hi - lo <= 1);
        width = width.max(hi - lo);
    }
    println!(
        "{total} expirations, {} notifications; of {} timers, {exact} checked exactly, \
         {narrow} within one expiration, all within {width}",
        consumed_notifications + drained,
        timers.len()
    );
    assert!(
        exact >= 1500,
        "every VM and REALTIME timer is checked exactly"
    );
    assert!(total > 0);
}
