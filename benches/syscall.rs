//! The syscall path: one `timer_settime` + `timer_gettime` pair on an armed
//! timer, ours against the host kernel's own, in the same run.
//!
//! Ours runs on the real host (`Kernel::builder().boot()`, the default alarm
//! precedence, a root process, a `SIGEV_NONE` timer), through the typed
//! layer (`Process::timer_settime` / `timer_gettime`) and through the raw
//! layer (`Process::raw()`, ABI structures), on `CLOCK_HIGHRES` and on
//! `CLOCK_REALTIME` (armed relative, so on host monotonic time). The
//! host's is a `SIGEV_NONE` POSIX timer on `CLOCK_MONOTONIC` through
//! `nix::sys::timer::Timer` (`timer_settime` with a null old value, then
//! `timer_gettime`). Every variant re-arms its timer one hour ahead and
//! reads it back, so none ever fires during the run.
//!
//! Two measurements, both printed:
//!
//! 1. criterion, one benchmark per variant (group `settime_gettime_pair`);
//! 2. an interleaved table: `ROUNDS` rounds, each timing `BATCH` pairs of
//!    every variant in turn, so all variants see the same machine load.
//!    It gives each variant's median ns per pair and the median of the
//!    per-round ratios ours / host. The target is a ratio of at
//!    most 0.5.
//!
//! Run: `cargo bench --bench syscall` (about 35 s). Without `--bench` (as
//! `cargo test --benches` runs it) it does a few iterations only. This is
//! a measurement, never an assertion.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use itimer::abi::Itimerspec;
use itimer::{Arm, ClockId, Credentials, ItimerSpec, Kernel, Process, SigEvent, TimerId};
use nix::sys::signal::{SigEvent as HostSigEvent, SigevNotify};
use nix::sys::time::TimeSpec;
use nix::sys::timer::{Expiration, Timer as HostTimer, TimerSetTimeFlags};
use nix::time::ClockId as HostClockId;

/// How far ahead every variant arms its timer.
const AHEAD: Duration = Duration::from_secs(3600);
/// Interleaved rounds (bench mode).
const ROUNDS: usize = 40;
/// Pairs per variant per round (bench mode).
const BATCH: usize = 20_000;
/// The target: ours at most this fraction of the host's time.
const TARGET_RATIO: f64 = 0.5;

/// One way of doing the pair.
trait Pair {
    fn name(&self) -> &'static str;
    /// One `timer_settime` + `timer_gettime`.
    fn pair(&mut self);
}

/// Our kernel, one timer, through the typed or the raw layer.
struct Ours {
    name: &'static str,
    raw: bool,
    proc: Process,
    tid: TimerId,
    spec: ItimerSpec,
    raw_spec: Itimerspec,
    // Keeps the timer loop alive; dropped after the process (field order).
    _kernel: Kernel,
}

impl Ours {
    fn new(name: &'static str, clock: ClockId, raw: bool) -> Ours {
        let kernel = Kernel::builder().boot().expect("the real host boots");
        let proc = kernel.spawn_process(Credentials::ROOT);
        let tid = proc
            .timer_create(clock, Some(SigEvent::None))
            .expect("timer_create");
        let spec = ItimerSpec::one_shot(AHEAD);
        let raw_spec = spec.to_raw().expect("an hour fits a timespec");
        let mut me = Ours {
            name,
            raw,
            proc,
            tid,
            spec,
            raw_spec,
            _kernel: kernel,
        };
        me.pair();
        me
    }
}

impl Pair for Ours {
    fn name(&self) -> &'static str {
        self.name
    }

    fn pair(&mut self) {
        if self.raw {
            let r = self.proc.raw();
            black_box(r.timer_settime(self.tid.0, 0, black_box(&self.raw_spec))).expect("settime");
            black_box(r.timer_gettime(self.tid.0)).expect("gettime");
        } else {
            black_box(
                self.proc
                    .timer_settime(self.tid, Arm::Relative, black_box(self.spec)),
            )
            .expect("settime");
            black_box(self.proc.timer_gettime(self.tid)).expect("gettime");
        }
    }
}

/// The host kernel's POSIX timer.
struct Host {
    timer: HostTimer,
    exp: Expiration,
}

impl Host {
    fn new() -> Host {
        let ev = HostSigEvent::new(SigevNotify::SigevNone);
        let timer = HostTimer::new(HostClockId::CLOCK_MONOTONIC, ev).expect("host timer_create");
        let exp = Expiration::OneShot(TimeSpec::from_duration(AHEAD));
        let mut me = Host { timer, exp };
        me.pair();
        me
    }
}

impl Pair for Host {
    fn name(&self) -> &'static str {
        HOST_NAME
    }

    fn pair(&mut self) {
        self.timer
            .set(black_box(self.exp), TimerSetTimeFlags::empty())
            .expect("host timer_settime");
        black_box(self.timer.get()).expect("host timer_gettime");
    }
}

const HOST_NAME: &str = "host nix MONOTONIC";

fn variants() -> Vec<Box<dyn Pair>> {
    vec![
        Box::new(Host::new()),
        Box::new(Ours::new("ours typed HIGHRES", ClockId::HIGHRES, false)),
        Box::new(Ours::new("ours raw HIGHRES", ClockId::HIGHRES, true)),
        Box::new(Ours::new("ours typed REALTIME", ClockId::REALTIME, false)),
        Box::new(Ours::new("ours raw REALTIME", ClockId::REALTIME, true)),
    ]
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The interleaved table (see the module docs).
fn interleaved(vs: &mut [Box<dyn Pair>], rounds: usize, batch: usize) {
    // per_round[v][r]: ns per pair of variant v in round r.
    let mut per_round = vec![Vec::with_capacity(rounds); vs.len()];
    for _ in 0..rounds {
        for (i, v) in vs.iter_mut().enumerate() {
            let t0 = Instant::now();
            for _ in 0..batch {
                v.pair();
            }
            per_round[i].push(t0.elapsed().as_nanos() as f64 / batch as f64);
        }
    }
    println!(
        "\ninterleaved: {rounds} rounds x {batch} pairs per variant; \
         median ns/pair, and median over rounds of (variant / host) in the same round"
    );
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>12}",
        "variant", "median ns", "min ns", "max ns", "ratio/host"
    );
    let host = per_round[0].clone();
    for (i, v) in vs.iter().enumerate() {
        let mut ratios: Vec<f64> = per_round[i].iter().zip(&host).map(|(m, h)| m / h).collect();
        let ratio = median(&mut ratios);
        let mut ns = per_round[i].clone();
        let med = median(&mut ns);
        println!(
            "{:<22} {:>10.1} {:>10.1} {:>10.1} {:>12.3}{}",
            v.name(),
            med,
            ns[0],
            ns[ns.len() - 1],
            ratio,
            if i == 0 {
                String::new()
            } else if ratio <= TARGET_RATIO {
                format!("  target <= {TARGET_RATIO}: met")
            } else {
                format!("  target <= {TARGET_RATIO}: NOT met")
            }
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; without it this is a smoke run.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let mut vs = variants();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
        .configure_from_args();
    {
        let mut g = c.benchmark_group("settime_gettime_pair");
        for v in vs.iter_mut() {
            let name = v.name();
            g.bench_function(name, |b| b.iter(|| v.pair()));
        }
        g.finish();
    }
    c.final_summary();
    let (rounds, batch) = if bench_mode { (ROUNDS, BATCH) } else { (2, 10) };
    interleaved(&mut vs, rounds, batch);
}
