//! Bytes per timer at 1,000,000 timers, per layer, and the host kernel's
//! own POSIX timers for comparison.
//!
//! Each variant runs in a fresh child process (this binary re-executed with
//! `ITIMER_MEM_VARIANT` set), so memory freed by one variant cannot be
//! reused by the next. A child builds what the variant needs apart from the
//! timers (clocks, kernel, process), takes a baseline, creates `N` timers,
//! and reports the growth divided by `N`:
//!
//! * `rss`: resident set growth (`VmRSS` in `/proc/self/status`), what the timers
//!   really cost the machine, allocator overhead and growth slack included;
//! * `heap`: bytes the allocator holds in use (glibc `mallinfo2`:
//!   `uordblks + hblkhd`), chunk headers included, free space excluded.
//!
//! Layers, from the bottom (each includes the ones below it):
//!
//! * `hostalarm`: an emulator timer on the REALTIME emulator clock (its
//!   slot in the clock's table and its callback), disarmed, then armed
//!   (adding its entry in the O(log n) list);
//! * `backend`: a HIGHRES backend timer (`EmuTimer`: its state, one
//!   emulator timer, the `Fire` closure), disarmed;
//! * `kernel`: `timer_create` through the typed layer on the simulated
//!   host (table slot, `Itimer`, `ItCore`, the backend timer), `SIGEV_NONE`
//!   disarmed and armed, `SIGEV_SIGNAL` armed (adds the preallocated
//!   signal entry), and `CLOCK_REALTIME` armed (two emulator timers: one
//!   per time base).
//!
//! The kernel table (`timer_max` raised to `N`) grows by doubling; its
//! slack and the free-id set it used while growing are in the `rss` figure.
//!
//! Host: `N` POSIX timers (`SIGEV_NONE`, `CLOCK_MONOTONIC`) through nix.
//! They live in kernel memory, so the figure is the objects added to the
//! kernel's `posix_timers_cache` slab (`/sys/kernel/slab/posix_timers_cache`)
//! times the bytes each takes in its slab (slab bytes / objects per slab).
//! Creating them needs `RLIMIT_SIGPENDING` above `N` on Linux 6.x (each
//! timer's embedded sigqueue is charged to it); the child raises it if it
//! may, else it creates as many as the limit allows and says so, and our
//! kernel is then measured again at that smaller count for a like-for-like
//! comparison.
//!
//! Run: `cargo bench --bench memory` (about 20 s). Environment:
//! `ITIMER_BENCH_TIMERS` (default 1,000,000). Without `--bench` it runs
//! 10,000 timers.

use std::process::Command;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use itimer::clock_backends::Bases;
use itimer::clock_backends::highres::HighresBackend;
use itimer::hostalarm::time::SimTime;
use itimer::hostalarm::{Clocks, ClocksConfig, Scale, TimeSource, Timer};
use itimer::kernel::{BackendTimer, ClockBackend, Fire, TimerCreate};
use itimer::{Arm, ClockId, Credentials, ItimerSpec, Kernel, LwpId, Pid, SigEvent, abi};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigEvent as HostSigEvent, SigevNotify};
use nix::sys::time::TimeSpec;
use nix::sys::timer::{Expiration, Timer as HostTimer, TimerSetTimeFlags};
use nix::time::ClockId as HostClockId;

/// Timers unless `ITIMER_BENCH_TIMERS` says otherwise.
const DEFAULT_TIMERS: usize = 1_000_000;
/// The environment variable naming a child's variant.
const VARIANT_ENV: &str = "ITIMER_MEM_VARIANT";
/// Where the kernel describes the POSIX timers slab cache.
const HOST_SLAB: &str = "/sys/kernel/slab/posix_timers_cache";

/// The environment variable giving a child its timer count.
const N_ENV: &str = "ITIMER_MEM_N";

/// Our layers, bottom up (see the module docs).
const OURS: [&str; 7] = [
    "hostalarm disarmed",
    "hostalarm armed",
    "backend HIGHRES disarmed",
    "kernel HIGHRES none disarmed",
    "kernel HIGHRES none armed",
    "kernel HIGHRES signal armed",
    "kernel REALTIME none armed",
];

/// The host kernel's timers.
const HOST: [&str; 2] = ["host POSIX none", "host POSIX none armed"];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident set size, bytes (`VmRSS` of `/proc/self/status`).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS line");
    kb * 1024
}

fn page_size() -> u64 {
    // SAFETY: sysconf reads a system constant; no pointers involved.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(p).unwrap_or(4096)
}

/// Bytes glibc's allocator holds in use (small chunks plus mmapped ones).
fn heap() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's statistics; it takes no
    // arguments and returns a plain struct.
    let mi = unsafe { libc::mallinfo2() };
    (mi.uordblks + mi.hblkhd) as u64
}

/// (rss, heap) now.
fn snapshot() -> (u64, u64) {
    (rss(), heap())
}

/// Reads a number from the start of a sysfs slab attribute.
fn slab_attr(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("{HOST_SLAB}/{name}"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What a child prints: one line, `key=value` pairs.
fn report(n: usize, before: (u64, u64), after: (u64, u64), took: Duration, extra: &str) {
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / n as f64;
    println!(
        "n={n} rss_per={:.1} heap_per={:.1} secs={:.2}{extra}",
        per(after.0, before.0),
        per(after.1, before.1),
        took.as_secs_f64()
    );
}

fn hostalarm(n: usize, armed: bool) {
    let clocks = Clocks::new(
        TimeSource::Sim(Arc::new(SimTime::new(0, 0))),
        ClocksConfig::default(),
    )
    .expect("clocks");
    let clock = clocks.mono();
    // The callback captures what the clock backends' does: a weak
    // reference and a small tag.
    let owner = Arc::new(());
    let mut timers: Vec<Timer> = Vec::with_capacity(n);
    let before = snapshot();
    let t0 = Instant::now();
    for i in 0..n {
        let weak: Weak<()> = Arc::downgrade(&owner);
        let tag = (i % 3) as u8;
        let t = clock.new_timer(Scale::Ns, move |_| {
            if weak.upgrade().is_some() {
                std::hint::black_box(tag);
            }
        });
        if armed {
            t.arm_ns(1_000_000_000 + i as i64).expect("arm");
        }
        timers.push(t);
    }
    // The Vec holding the timers was reserved before the baseline.
    report(n, before, snapshot(), t0.elapsed(), "");
    drop(timers);
}

fn backend(n: usize) {
    let clocks = Clocks::new(
        TimeSource::Sim(Arc::new(SimTime::new(0, 0))),
        ClocksConfig::default(),
    )
    .expect("clocks");
    let hr = HighresBackend::new(Arc::new(Bases::new(clocks, 1)));
    let mut timers: Vec<Box<dyn BackendTimer>> = Vec::with_capacity(n);
    let before = snapshot();
    let t0 = Instant::now();
    for _ in 0..n {
        // The kernel's Fire captures one Arc (its ItCore).
        let core = Arc::new(0u64);
        let fire = Fire::new(move |k| {
            std::hint::black_box((k, &core));
        });
        timers.push(
            hr.timer_create(TimerCreate {
                fire,
                pid: Pid(1),
                lwp: LwpId::MAIN,
                privileged: true,
            })
            .expect("backend timer_create"),
        );
    }
    // Includes the Arc<u64> standing in for the kernel's ItCore (32 bytes
    // requested; the kernel variant has the real one).
    report(n, before, snapshot(), t0.elapsed(), "");
    drop(timers);
}

fn kernel(n: usize, clock: ClockId, signal: bool, armed: bool) {
    let k = Kernel::builder()
        .timer_max(n)
        .simulated()
        .expect("simulated kernel");
    let p = k.spawn_process(Credentials::ROOT);
    let before = snapshot();
    let t0 = Instant::now();
    for i in 0..n {
        let ev = if signal {
            SigEvent::Signal {
                signo: abi::SIGRTMIN,
                value: i as u64,
            }
        } else {
            SigEvent::None
        };
        let t = p.timer_create(clock, Some(ev)).expect("timer_create");
        if armed {
            let first = Duration::from_secs(1) + Duration::from_nanos(i as u64);
            p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(first, first))
                .expect("timer_settime");
        }
    }
    let stats = p.stats();
    assert_eq!(stats.timers, n);
    report(
        n,
        before,
        snapshot(),
        t0.elapsed(),
        &format!(" table_slots={}", stats.table_slots),
    );
}

/// Waits (at most 10 s) until the slab's object count holds still: the
/// timers of an earlier child are freed after an RCU grace period, and
/// their departure would count against this child's.
fn settle_slab() {
    let mut last = slab_attr("objects");
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let now = slab_attr("objects");
        if now == last {
            return;
        }
        last = now;
    }
}

fn host(n: usize, armed: bool) {
    let mut note = String::new();
    let want = n as u64 + 1_000;
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_SIGPENDING)
        && soft < want
        && let Err(e) = setrlimit(Resource::RLIMIT_SIGPENDING, want, want.max(hard))
    {
        note = format!(" rlimit_sigpending={soft} (raise: {e})");
    }
    settle_slab();
    let (Some(objects0), Some(per_slab), Some(order), Some(object_size)) = (
        slab_attr("objects"),
        slab_attr("objs_per_slab"),
        slab_attr("order"),
        slab_attr("object_size"),
    ) else {
        println!("n=0 unavailable={HOST_SLAB}");
        return;
    };
    let mut timers = Vec::with_capacity(n);
    let t0 = Instant::now();
    let mut failed = String::new();
    let exp = Expiration::Interval(TimeSpec::new(3600, 0));
    for _ in 0..n {
        let ev = HostSigEvent::new(SigevNotify::SigevNone);
        match HostTimer::new(HostClockId::CLOCK_MONOTONIC, ev) {
            Ok(mut t) => {
                if armed {
                    t.set(exp, TimerSetTimeFlags::empty())
                        .expect("host timer_settime");
                }
                timers.push(t);
            }
            Err(e) => {
                failed = format!(" stopped_by={e}");
                break;
            }
        }
    }
    let took = t0.elapsed();
    let objects1 = slab_attr("objects").expect("slab readable");
    let made = timers.len().max(1) as f64;
    // Objects added (other users of a merged cache add noise) times the
    // bytes each object takes in its slab.
    let slot = (page_size() << order) as f64 / per_slab as f64;
    println!(
        "n={} kernel_per={:.1} objects_per_timer={:.3} secs={:.2} \
         object_size={object_size} slot={slot:.1}{note}{failed}",
        timers.len(),
        objects1.saturating_sub(objects0) as f64 * slot / made,
        objects1.saturating_sub(objects0) as f64 / made,
        took.as_secs_f64(),
    );
    drop(timers);
}

fn child(variant: &str, n: usize) {
    match variant {
        "hostalarm disarmed" => hostalarm(n, false),
        "hostalarm armed" => hostalarm(n, true),
        "backend HIGHRES disarmed" => backend(n),
        "kernel HIGHRES none disarmed" => kernel(n, ClockId::HIGHRES, false, false),
        "kernel HIGHRES none armed" => kernel(n, ClockId::HIGHRES, false, true),
        "kernel HIGHRES signal armed" => kernel(n, ClockId::HIGHRES, true, true),
        "kernel REALTIME none armed" => kernel(n, ClockId::REALTIME, false, true),
        "host POSIX none" => host(n, false),
        "host POSIX none armed" => host(n, true),
        other => panic!("unknown variant {other}"),
    }
}

/// Parses a child's `key=value` line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// Runs `variant` with `n` timers in a child; returns its report line.
fn run_child(exe: &std::path::Path, variant: &str, n: usize) -> Result<String, String> {
    let out = Command::new(exe)
        .args(std::env::args().skip(1))
        .env(VARIANT_ENV, variant)
        .env(N_ENV, n.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("").to_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().last().unwrap_or("").to_owned())
}

fn print_ours(label: &str, line: &str) {
    let get = |k: &str| field(line, k).unwrap_or("-").to_owned();
    println!(
        "{label:<34} {:>9} {:>10} {:>10} {:>7}  {}",
        get("n"),
        get("rss_per"),
        get("heap_per"),
        get("secs"),
        field(line, "table_slots")
            .map(|s| format!("table slots {s}"))
            .unwrap_or_default()
    );
}

fn print_host(label: &str, line: &str) {
    let get = |k: &str| field(line, k).unwrap_or("-").to_owned();
    let notes: Vec<&str> = line
        .split_whitespace()
        .filter(|kv| {
            !["n=", "kernel_per=", "secs="]
                .iter()
                .any(|p| kv.starts_with(p))
        })
        .collect();
    println!(
        "{label:<34} {:>9} {:>10} {:>10} {:>7}  host kernel slab; {}",
        get("n"),
        get("kernel_per"),
        "-",
        get("secs"),
        notes.join(" ")
    );
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let default_n = if bench_mode {
        env_or("ITIMER_BENCH_TIMERS", DEFAULT_TIMERS)
    } else {
        10_000
    };
    if let Ok(v) = std::env::var(VARIANT_ENV) {
        child(&v, env_or(N_ENV, default_n));
        return;
    }
    let n = default_n;
    let exe = std::env::current_exe().expect("current_exe");
    println!(
        "bytes per timer, each variant in a fresh process \
         (rss: resident growth / N; heap: glibc in-use growth / N)"
    );
    println!(
        "{:<34} {:>9} {:>10} {:>10} {:>7}  notes",
        "variant", "timers", "rss B/tmr", "heap B/tmr", "secs"
    );
    for v in OURS {
        match run_child(&exe, v, n) {
            Ok(line) => print_ours(v, &line),
            Err(e) => println!("{v:<34} child failed: {e}"),
        }
    }
    // The host's timers, then ours at the count the host reached (its
    // limits may stop it short of N).
    let mut host_n = n;
    for v in HOST {
        match run_child(&exe, v, n) {
            Ok(line) => {
                print_host(v, &line);
                if let Some(made) = field(&line, "n").and_then(|m| m.parse().ok()) {
                    host_n = host_n.min(made);
                }
            }
            Err(e) => println!("{v:<34} child failed: {e}"),
        }
    }
    if host_n < n && host_n > 0 {
        for v in ["kernel HIGHRES none armed", "kernel HIGHRES signal armed"] {
            let label = format!("{v} (host's N)");
            match run_child(&exe, v, host_n) {
                Ok(line) => print_ours(&label, &line),
                Err(e) => println!("{label:<34} child failed: {e}"),
            }
        }
    }
}
