//! Expirations per second of host CPU on the simulated host, with 100,000
//! periodic timers.
//!
//! One process (root, so no 200 µs floor) creates `N` `CLOCK_HIGHRES`
//! timers and arms each periodic with an interval spread over 1–10 ms and
//! a first expiry spread over one interval. The simulated host then
//! advances in 1 ms steps; every timer runs at its exact deadline. The
//! thread driving the host is the one that runs every expiry (the loop
//! pass, the emulator timer's callback, `timer_fire`), so its CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) is the host CPU spent on expirations.
//!
//! Two spreads of the deadlines:
//!
//! * `us grid`: intervals and first expiries are whole microseconds, so
//!   several timers share each deadline and one pass of the host runs
//!   them together (about 25 per pass here);
//! * `ns spread`: nanosecond values, so nearly every expiry is a pass of
//!   its own (the worst case for the host: one alarm per expiry).
//!
//! Three notifications:
//!
//! * `none`: `SIGEV_NONE` (`timer_fire` only counts nothing);
//! * `signal, consumed`: `SIGEV_SIGNAL` (SIGRTMIN); after each step the
//!   process drains its queue with `sigtimedwait` (zero timeout), so every
//!   expiry queues the preallocated entry again. The drain runs on the
//!   same thread and is reported separately;
//! * `signal, unconsumed`: never drained: after its first expiry a
//!   timer's signal stays queued and later expiries only add to its
//!   pending count (the overrun path).
//!
//! The expirations are counted twice and must agree exactly: from the
//! host's `timers_run`, and from the arithmetic of every timer's first
//! expiry and interval; for the consumed-signal variant, signals taken
//! plus overruns must equal expirations as well. The bench panics if they
//! differ (correctness on the simulated host is exact; speed is only
//! printed).
//!
//! Run: `cargo bench --bench expirations` (about 30 s). Environment:
//! `ITIMER_BENCH_TIMERS` (default 100000), `ITIMER_BENCH_SIM_MS` (simulated
//! milliseconds per variant, default 50). Without `--bench` it runs 1,000
//! timers for 5 ms.

use std::time::{Duration, Instant};

use itimer::abi::SIGRTMIN;
use itimer::{
    Arm, ClockId, Credentials, Errno, ItimerSpec, Kernel, Process, SigEvent, SigSet, SimKernel,
};
use nix::time::{ClockId as HostClockId, clock_gettime};

/// Timers unless `ITIMER_BENCH_TIMERS` says otherwise.
const DEFAULT_TIMERS: usize = 100_000;
/// Simulated milliseconds per variant unless `ITIMER_BENCH_SIM_MS` says
/// otherwise.
const DEFAULT_SIM_MS: u64 = 50;
/// The simulated host advances by this much per step.
const STEP: Duration = Duration::from_millis(1);
/// Shortest interval, ns.
const MIN_INTERVAL_NS: u64 = 1_000_000;
/// Intervals spread over `MIN_INTERVAL_NS .. MIN_INTERVAL_NS + SPREAD_NS`.
const SPREAD_NS: u64 = 9_000_000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// SplitMix64: a deterministic, dependency-free random sequence.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spread {
    MicroGrid,
    Nanos,
}

impl Spread {
    fn name(self) -> &'static str {
        match self {
            Spread::MicroGrid => "us grid",
            Spread::Nanos => "ns spread",
        }
    }

    /// Timer `i`'s (first expiry, interval), ns.
    fn timing(self, i: usize) -> (u64, u64) {
        let r1 = splitmix(i as u64);
        let r2 = splitmix(r1);
        let interval = MIN_INTERVAL_NS + r1 % SPREAD_NS;
        let first = 1 + r2 % interval;
        match self {
            Spread::Nanos => (first, interval),
            Spread::MicroGrid => (first.div_ceil(1_000) * 1_000, interval / 1_000 * 1_000),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notify {
    None,
    SignalConsumed,
    SignalUnconsumed,
}

impl Notify {
    fn name(self) -> &'static str {
        match self {
            Notify::None => "none",
            Notify::SignalConsumed => "signal, consumed",
            Notify::SignalUnconsumed => "signal, unconsumed",
        }
    }

    fn sigevent(self, i: usize) -> SigEvent {
        match self {
            Notify::None => SigEvent::None,
            Notify::SignalConsumed | Notify::SignalUnconsumed => SigEvent::Signal {
                signo: SIGRTMIN,
                value: i as u64,
            },
        }
    }
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let ts = clock_gettime(HostClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32)
}

/// Expirations of a timer first due at `first` with period `interval` in
/// `(0, t]`, all ns.
fn expected(first: u64, interval: u64, t: u64) -> u64 {
    if t < first {
        0
    } else {
        (t - first) / interval + 1
    }
}

/// Takes every queued signal; returns (signals, sum of overruns).
fn drain(p: &Process, set: SigSet) -> (u64, u64) {
    let (mut n, mut over) = (0, 0);
    loop {
        match p.sigtimedwait(set, Some(Duration::ZERO)) {
            Ok(info) => {
                n += 1;
                over += u64::try_from(info.si_overrun).expect("overrun >= 0");
            }
            Err(Errno::EAGAIN) => return (n, over),
            Err(e) => panic!("sigtimedwait: {e}"),
        }
    }
}

struct Outcome {
    expirations: u64,
    passes: u64,
    fire_cpu: Duration,
    fire_wall: Duration,
    drain_cpu: Duration,
    signals: u64,
    setup: Duration,
}

fn run(n: usize, sim_ms: u64, spread: Spread, notify: Notify) -> Outcome {
    let t0 = Instant::now();
    let k: SimKernel = Kernel::builder()
        .timer_max(n)
        .simulated()
        .expect("simulated kernel");
    let p = k.spawn_process(Credentials::ROOT);
    let set = SigSet::of(SIGRTMIN).expect("SIGRTMIN is valid");
    let mut want = 0;
    let end_ns = sim_ms * 1_000_000;
    for i in 0..n {
        let (first, interval) = spread.timing(i);
        let t = p
            .timer_create(ClockId::HIGHRES, Some(notify.sigevent(i)))
            .expect("timer_create");
        p.timer_settime(
            t,
            Arm::Relative,
            ItimerSpec::periodic(Duration::from_nanos(first), Duration::from_nanos(interval)),
        )
        .expect("timer_settime");
        want += expected(first, interval, end_ns);
    }
    k.settle().expect("settle");
    let setup = t0.elapsed();

    let before = k.loop_stats();
    let (mut fire_cpu, mut drain_cpu) = (Duration::ZERO, Duration::ZERO);
    let (mut signals, mut overruns) = (0, 0);
    let wall0 = Instant::now();
    let mut drain_wall = Duration::ZERO;
    for _ in 0..sim_ms {
        let c0 = thread_cpu();
        k.advance(STEP).expect("advance");
        let c1 = thread_cpu();
        fire_cpu += c1 - c0;
        if notify == Notify::SignalConsumed {
            let w = Instant::now();
            let (s, o) = drain(&p, set);
            signals += s;
            overruns += o;
            drain_cpu += thread_cpu() - c1;
            drain_wall += w.elapsed();
        }
    }
    let fire_wall = wall0.elapsed() - drain_wall;
    let after = k.loop_stats();
    let expirations = after.timers_run - before.timers_run;
    assert_eq!(
        expirations,
        want,
        "{} / {}: host ran {expirations} expirations, arithmetic says {want}",
        spread.name(),
        notify.name()
    );
    if notify == Notify::SignalConsumed {
        assert_eq!(
            signals + overruns,
            want,
            "signals {signals} + overruns {overruns} != expirations {want}"
        );
    }
    Outcome {
        expirations,
        passes: after.wakeups - before.wakeups,
        fire_cpu,
        fire_wall,
        drain_cpu,
        signals,
        setup,
    }
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let (n, sim_ms) = if bench_mode {
        (
            env_or("ITIMER_BENCH_TIMERS", DEFAULT_TIMERS),
            env_or("ITIMER_BENCH_SIM_MS", DEFAULT_SIM_MS),
        )
    } else {
        (1_000, 5)
    };
    println!(
        "{n} periodic HIGHRES timers, intervals {}-{} ms, simulated host advanced \
         {sim_ms} x 1 ms; CPU = the driving thread's CPU time",
        MIN_INTERVAL_NS / 1_000_000,
        (MIN_INTERVAL_NS + SPREAD_NS) / 1_000_000
    );
    println!(
        "{:<10} {:<19} {:>11} {:>9} {:>8} {:>13} {:>13} {:>10} {:>11} {:>8}",
        "spread",
        "notify",
        "expirations",
        "passes",
        "exp/pass",
        "exp/s CPU",
        "exp/s wall",
        "ns/exp CPU",
        "drain ns/sig",
        "setup s"
    );
    for spread in [Spread::MicroGrid, Spread::Nanos] {
        for notify in [
            Notify::None,
            Notify::SignalConsumed,
            Notify::SignalUnconsumed,
        ] {
            let o = run(n, sim_ms, spread, notify);
            let drain = if notify == Notify::SignalConsumed {
                format!(
                    "{:.0}",
                    o.drain_cpu.as_nanos() as f64 / o.signals.max(1) as f64
                )
            } else {
                "-".to_owned()
            };
            println!(
                "{:<10} {:<19} {:>11} {:>9} {:>8.1} {:>13.0} {:>13.0} {:>10.0} {:>11} {:>8.2}",
                spread.name(),
                notify.name(),
                o.expirations,
                o.passes,
                o.expirations as f64 / o.passes.max(1) as f64,
                o.expirations as f64 / o.fire_cpu.as_secs_f64(),
                o.expirations as f64 / o.fire_wall.as_secs_f64(),
                o.fire_cpu.as_nanos() as f64 / o.expirations.max(1) as f64,
                drain,
                o.setup.as_secs_f64()
            );
        }
    }
}
