//! Wake-up latency of every real host alarm backend, against a raw timerfd
//! measured in the same run.
//!
//! For each backend: start it on this thread (the bench thread acts as the
//! loop thread), then repeat N times: arm a raw `CLOCK_MONOTONIC` timerfd
//! at now + X, poll it, record `now - deadline`; arm the backend at now + X,
//! poll its `wait_fd`, record `now - deadline`, consume. Interleaving the
//! two puts both under the same machine load, so each backend has its own
//! baseline. The table gives p50 / p99 / max in µs, the backend's p99 over
//! the raw p99, and the p99 difference (the target for `timerfd`:
//! within 20 µs of raw).
//!
//! Run: `cargo bench -p itimer-hostalarm --bench latency`. Environment:
//! `ITIMER_BENCH_SAMPLES` (default 2000 per backend) and
//! `ITIMER_BENCH_AHEAD_US` (X, default 1000 µs). The defaults keep the whole
//! run near 25 s. This is a measurement, never an assertion.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use hdrhistogram::Histogram;
use itimer_hostalarm::alarm::{AlarmBackend, BackendKind, MonoNs};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// Samples per backend unless `ITIMER_BENCH_SAMPLES` says otherwise.
const DEFAULT_SAMPLES: usize = 2000;
/// Samples per backend when run as a test (without `--bench`).
const SMOKE_SAMPLES: usize = 10;
/// How far ahead each deadline is armed, in µs, unless overridden.
const DEFAULT_AHEAD_US: u64 = 1000;
/// A wakeup later than this (ms) counts as lost and is not recorded.
const LOST_AFTER_MS: i32 = 2000;
/// The target: timerfd backend p99 within this many µs of raw.
const TARGET_P99_DIFF_US: f64 = 20.0;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Polls `fd` for readability up to `LOST_AFTER_MS`, retrying EINTR.
fn wait_readable(fd: BorrowedFd<'_>) -> bool {
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, LOST_AFTER_MS) };
        if rc > 0 {
            return true;
        }
        if rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
}

/// Latency figures of one series, in ns.
struct Series {
    hist: Histogram<u64>,
    /// Wakeups seen before the deadline (would be a bug; counted, not hidden).
    early: u64,
    /// Wakeups that never came within `LOST_AFTER_MS`.
    lost: u64,
}

impl Series {
    fn new() -> Series {
        Series {
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds"),
            early: 0,
            lost: 0,
        }
    }

    fn record(&mut self, deadline: MonoNs, seen: MonoNs) {
        if seen < deadline {
            self.early += 1;
        }
        let late = seen.saturating_since(deadline).max(1);
        self.hist.saturating_record(late);
    }

    fn us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    fn max_us(&self) -> f64 {
        self.hist.max() as f64 / 1000.0
    }
}

/// One raw timerfd sample.
fn raw_sample(tfd: &TimerFd, ahead_ns: u64, s: &mut Series) {
    let d = MonoNs(MonoNs::host_now().0 + ahead_ns);
    let ts = TimeSpec::new((d.0 / 1_000_000_000) as i64, (d.0 % 1_000_000_000) as i64);
    tfd.set(
        Expiration::OneShot(ts),
        TimerSetTimeFlags::TFD_TIMER_ABSTIME,
    )
    .expect("raw timerfd_settime");
    if !wait_readable(tfd.as_fd()) {
        s.lost += 1;
        return;
    }
    let seen = MonoNs::host_now();
    let mut buf = [0u8; 8];
    let _ = nix::unistd::read(tfd, &mut buf);
    s.record(d, seen);
}

/// One backend sample.
fn backend_sample(b: &mut dyn AlarmBackend, ahead_ns: u64, s: &mut Series) {
    let d = MonoNs(MonoNs::host_now().0 + ahead_ns);
    b.rearm(Some(d)).expect("rearm");
    let fd = b.wait_fd().expect("started backend has a fd");
    if !wait_readable(fd) {
        s.lost += 1;
        return;
    }
    let seen = MonoNs::host_now();
    let _ = b.consume().expect("consume");
    s.record(d, seen);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // binary without it, and then a short smoke run is enough.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let samples: usize = if bench_mode {
        env_or("ITIMER_BENCH_SAMPLES", DEFAULT_SAMPLES)
    } else {
        SMOKE_SAMPLES
    };
    let ahead_us: u64 = env_or("ITIMER_BENCH_AHEAD_US", DEFAULT_AHEAD_US);
    let ahead_ns = ahead_us * 1000;
    let raw = TimerFd::new(
        ClockId::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )
    .expect("raw timerfd");

    println!(
        "alarm wake-up latency (now - deadline after poll), {samples} samples per backend, \
         armed {ahead_us} us ahead, interleaved with a raw timerfd"
    );
    println!(
        "{:<11} {:>8} {:>8} {:>9} | {:>8} {:>8} {:>9} | {:>9} {:>10} {:>6}",
        "backend",
        "p50 us",
        "p99 us",
        "max us",
        "raw p50",
        "raw p99",
        "raw max",
        "p99 ratio",
        "p99 diff",
        "early"
    );
    let mut timerfd_diff = None;
    for kind in BackendKind::ALL {
        let mut b = kind.instantiate();
        if let Err(e) = b.start() {
            println!("{:<11} cannot start: {e}", kind.name());
            continue;
        }
        let mut mine = Series::new();
        let mut base = Series::new();
        for _ in 0..samples {
            raw_sample(&raw, ahead_ns, &mut base);
            backend_sample(&mut *b, ahead_ns, &mut mine);
        }
        b.stop();
        let diff = mine.us(0.99) - base.us(0.99);
        if kind == BackendKind::Timerfd {
            timerfd_diff = Some(diff);
        }
        println!(
            "{:<11} {:>8.1} {:>8.1} {:>9.1} | {:>8.1} {:>8.1} {:>9.1} | {:>9.2} {:>10.1} {:>6}{}",
            kind.name(),
            mine.us(0.5),
            mine.us(0.99),
            mine.max_us(),
            base.us(0.5),
            base.us(0.99),
            base.max_us(),
            mine.us(0.99) / base.us(0.99).max(0.001),
            diff,
            mine.early,
            if mine.lost + base.lost > 0 {
                format!("  lost: {} backend, {} raw", mine.lost, base.lost)
            } else {
                String::new()
            }
        );
    }
    if let Some(diff) = timerfd_diff {
        println!(
            "target (timerfd p99 within {TARGET_P99_DIFF_US} us of raw timerfd p99): {} ({diff:.1} us)",
            if diff <= TARGET_P99_DIFF_US {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}
