//! Overload and conservation on the simulated host.
//!
//! Two thousand periodic timers with intervals of 1–100 µs, on every timer
//! clock, notifying by signal (several signal numbers, two processes) and
//! by event port, against a consumer that takes at most a few
//! notifications per 50 µs step. Because the simulated host is exact, the
//! number of expirations that happened to each timer is known by
//! arithmetic from the clocks, and the invariant is checked with no
//! tolerance, at every checkpoint:
//!
//! > for each timer: expirations notified and consumed + overruns
//! > reported with them + `pending` (the expirations behind the one
//! > notification still queued) = expirations that happened.
//!
//! Memory stays bounded: no expiration allocates (the process's signal
//! entries stay one per signal timer), and each timer has at most one
//! notification queued (draining yields exactly one per timer with
//! `pending > 0`; a port never holds more events than it has timers).

use std::collections::BTreeMap;
use std::time::Duration;

use itimer::abi::*;
use itimer::kernel::PortId;
use itimer::{Credentials, Kernel, KernelConfig, Process, SimKernel};

const US: i64 = 1_000;
const MS: i64 = 1_000_000;
/// illumos' floor for unprivileged HIGHRES values and intervals.
const HIGHRES_FLOOR: i64 = 200 * US;

/// A small deterministic generator (xorshift64*), so the scenario is the
/// same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notify {
    Signal(i32),
    Port,
}

/// One timer and what the test knows about it.
#[derive(Debug)]
struct Tracked {
    proc: usize,
    tid: i32,
    clock: i32,
    notify: Notify,
    /// First deadline, absolute ns on the timer's clock.
    first: i64,
    /// Period, ns (after the HIGHRES floor).
    interval: i64,
    /// Expirations consumed: 1 + overrun per signal, events per port event.
    consumed: u64,
    /// The clock reading when it was disarmed (`None` while armed).
    stopped_at: Option<i64>,
}

impl Tracked {
    /// Expirations that happened by `now` on its clock.
    fn happened(&self, now: i64) -> u64 {
        let now = self.stopped_at.unwrap_or(now);
        if now < self.first {
            0
        } else {
            1 + ((now - self.first) / self.interval) as u64
        }
    }
}

struct World {
    k: SimKernel,
    procs: Vec<Process>,
    port: PortId,
    timers: Vec<Tracked>,
    /// (process, timer id) → index in `timers`.
    by_id: BTreeMap<(usize, i32), usize>,
}

impl World {
    fn clock_now(&self, clock: i32) -> i64 {
        let ts = self.procs[0].raw().clock_gettime(clock).unwrap();
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }

    /// Takes at most `budget` signals from each process and `budget` port
    /// events; returns how many it took.
    fn consume(&mut self, budget: usize) -> usize {
        let mut took = 0;
        for p in 0..self.procs.len() {
            for _ in 0..budget {
                let Ok(info) = self.procs[p]
                    .raw()
                    .sigtimedwait(u64::MAX, Some(&Timespec::default()))
                else {
                    break;
                };
                assert_eq!(info.si_code, SI_TIMER);
                let i = self.by_id[&(p, info.si_timerid)];
                assert_eq!(self.timers[i].notify, Notify::Signal(info.si_signo));
                assert_eq!(info.si_value, i as u64);
                self.timers[i].consumed += 1 + info.si_overrun as u64;
                took += 1;
            }
        }
        // The port's owner (process 1) takes the events of its own timers.
        for _ in 0..budget {
            let Ok(ev) = self.procs[1].port_get(self.port, Some(Duration::ZERO)) else {
                break;
            };
            assert_eq!(ev.portev_source as i32, PORT_SOURCE_TIMER);
            assert!(ev.portev_events >= 1);
            let i = self.by_id[&(1, ev.portev_object as i32)];
            assert_eq!(ev.portev_user, i as u64);
            self.timers[i].consumed += ev.portev_events as u64;
            took += 1;
        }
        took
    }

    /// The invariant, for every timer, and the memory bounds.
    fn check(&self, when: &str) {
        let now: BTreeMap<i32, i64> = [CLOCK_HIGHRES, CLOCK_REALTIME, CLOCK_VM]
            .into_iter()
            .map(|c| (c, self.clock_now(c)))
            .collect();
        let mut outstanding_ports = 0;
        for (i, t) in self.timers.iter().enumerate() {
            let st = self.procs[t.proc].timer_status(t.tid).unwrap();
            let happened = t.happened(now[&t.clock]);
            assert_eq!(
                t.consumed + st.pending,
                happened,
                "{when}: timer #{i} {t:?}: consumed {} + pending {} != happened {happened}",
                t.consumed,
                st.pending
            );
            if t.notify == Notify::Port && st.pending > 0 {
                outstanding_ports += 1;
            }
        }
        for (p, proc) in self.procs.iter().enumerate() {
            let signal_timers = self
                .timers
                .iter()
                .filter(|t| t.proc == p && matches!(t.notify, Notify::Signal(_)))
                .count();
            assert_eq!(
                proc.stats().sig_entries,
                signal_timers,
                "{when}: process {p} allocated signal entries beyond one per timer"
            );
        }
        assert_eq!(
            self.procs[1].port_pending(self.port).unwrap(),
            outstanding_ports,
            "{when}: one queued port event per timer with pending expirations"
        );
    }
}

/// Sets up the timers: process 0 is privileged, process 1 is not (its
/// HIGHRES settings are raised to the 200 µs floor).
fn build(n_signal: usize, n_port: usize) -> World {
    let k = Kernel::builder()
        .config(KernelConfig {
            timer_max: 4096,
            ..KernelConfig::default()
        })
        .simulated()
        .unwrap();
    let procs = vec![
        k.spawn_process(Credentials::ROOT),
        k.spawn_process(Credentials::user(1000)),
    ];
    let port = procs[1].port_create().unwrap();
    let mut w = World {
        k,
        procs,
        port,
        timers: Vec::new(),
        by_id: BTreeMap::new(),
    };
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let clocks = [CLOCK_HIGHRES, CLOCK_REALTIME, CLOCK_VM];
    let signos = [SIGALRM, SIGUSR1, SIGRTMIN, SIGRTMIN + 3, SIGRTMAX];
    for i in 0..n_signal + n_port {
        let index = w.timers.len();
        let (proc, notify) = if i < n_signal {
            (i % 2, Notify::Signal(signos[rng.range(0, 4) as usize]))
        } else {
            (1, Notify::Port)
        };
        let clock = clocks[rng.range(0, 2) as usize];
        let ev = match notify {
            Notify::Signal(signo) => Sigevent {
                sigev_notify: SIGEV_SIGNAL,
                sigev_signo: signo,
                sigev_value: index as u64,
                ..Sigevent::default()
            },
            Notify::Port => Sigevent {
                sigev_notify: SIGEV_PORT,
                sigev_port: PortNotify {
                    portnfy_port: port.0,
                    portnfy_user: index as u64,
                },
                ..Sigevent::default()
            },
        };
        let raw = w.procs[proc].raw();
        let tid = raw.timer_create(clock, Some(&ev)).unwrap();
        let mut value = rng.range(US, 200 * US);
        let mut interval = rng.range(US, 100 * US);
        let privileged = proc == 0;
        if clock == CLOCK_HIGHRES && !privileged {
            value = value.max(HIGHRES_FLOOR);
            interval = interval.max(HIGHRES_FLOOR);
        }
        // REALTIME timers are armed absolute (they follow clock_settime);
        // the others relative.
        let (flags, it_value, first) = if clock == CLOCK_REALTIME {
            let d = w.clock_now(clock) + value;
            (TIMER_ABSTIME, d, d)
        } else {
            (0, value, w.clock_now(clock) + value)
        };
        let spec = Itimerspec {
            it_interval: ts(interval),
            it_value: ts(it_value),
        };
        raw.timer_settime(tid, flags, &spec).unwrap();
        w.by_id.insert((proc, tid), index);
        w.timers.push(Tracked {
            proc,
            tid,
            clock,
            notify,
            first,
            interval,
            consumed: 0,
            stopped_at: None,
        });
    }
    w
}

fn ts(ns: i64) -> Timespec {
    Timespec {
        tv_sec: ns / 1_000_000_000,
        tv_nsec: ns % 1_000_000_000,
    }
}

#[test]
fn thousands_of_fast_timers_against_a_slow_consumer_conserve_expirations() {
    let mut w = build(1500, 500);
    w.check("armed");
    let step = 50 * US;
    let mut consumed_any = 0;
    for n in 1..=60 {
        w.k.advance_ns(step).unwrap();
        match n {
            // The VM stops for a while: its timers freeze.
            20 => w.k.vm_stop(),
            30 => w.k.vm_start(),
            // The wall clock jumps 3 ms forward: the absolute REALTIME
            // timers catch up with every missed period at once.
            40 => {
                let now = w.clock_now(CLOCK_REALTIME);
                w.procs[0]
                    .raw()
                    .clock_settime(CLOCK_REALTIME, &ts(now + 3 * MS))
                    .unwrap();
                w.k.settle().unwrap();
            }
            _ => {}
        }
        consumed_any += w.consume(8);
        if n % 10 == 0 {
            w.check(&format!("step {n}"));
        }
    }
    assert!(consumed_any > 0);

    // Disarm everything (the old setting comes back atomically), then
    // drain: each timer with pending expirations has exactly one
    // notification queued.
    for i in 0..w.timers.len() {
        let (p, tid, clock) = (w.timers[i].proc, w.timers[i].tid, w.timers[i].clock);
        let now = w.clock_now(clock);
        w.procs[p]
            .raw()
            .timer_settime(tid, 0, &Itimerspec::default())
            .unwrap();
        w.timers[i].stopped_at = Some(now);
    }
    w.check("disarmed");
    let outstanding = w
        .timers
        .iter()
        .filter(|t| w.procs[t.proc].timer_status(t.tid).unwrap().pending > 0)
        .count();
    let mut drained = 0;
    loop {
        let took = w.consume(usize::MAX);
        if took == 0 {
            break;
        }
        drained += took;
    }
    assert_eq!(drained, outstanding, "one queued notification per timer");
    w.check("drained");
    let mut total = 0;
    for t in &w.timers {
        assert_eq!(w.procs[t.proc].timer_status(t.tid).unwrap().pending, 0);
        assert_eq!(t.consumed, t.happened(0));
        total += t.consumed;
    }
    // Far more expirations than notifications: the overload was real.
    let notifications = (consumed_any + drained) as u64;
    println!("{total} expirations, {notifications} notifications");
    assert!(
        total > 10 * notifications,
        "{total} expirations, {notifications} notifications"
    );
}
