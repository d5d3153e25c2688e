//! `itimer bench`: wake-up latency through the whole stack on each host
//! alarm backend, against a raw timerfd measured in the same run.
//!
//! The method is the one of `hostalarm/benches/latency.rs`, one layer up.
//! For each backend (in precedence order): boot a kernel on it, spawn a
//! privileged process (no 200 µs guard) with a HIGHRES timer notifying an
//! event port. Then repeat N times, interleaved so that both see the same
//! machine load:
//!
//! * **raw**: arm a `CLOCK_MONOTONIC` timerfd at now + X (absolute), poll
//!   it, record `now - deadline`;
//! * **stack**: arm the timer at HIGHRES now + X (`TIMER_ABSTIME`),
//!   `port_get` its event, record HIGHRES `now - deadline`: the host alarm,
//!   the timer loop, the emulator clock, the clock backend, `timer_fire`,
//!   the port and the wake-up of the waiting thread.
//!
//! The table gives p50 / p99 / max in µs and the stack's p50 and p99 over
//! raw; the SVG shows both distributions per backend. A backend that cannot
//! start here is listed as such. This is a measurement, not a test: nothing
//! is asserted.

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use hdrhistogram::Histogram;
use itimer::hostalarm::alarm::{MonoNs, Precedence};
use itimer::kernel::PortId;
use itimer::{Arm, ClockId, Credentials, Errno, ItimerSpec, Kernel, Process, SigEvent, TimerId};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId as TfdClock, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use super::EXIT_USAGE;
use super::svg::{Panel, histogram_svg};

/// Arguments of `itimer bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Samples per backend (each one a stack sample and a raw one).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    samples: u64,
    /// How far ahead each deadline is armed, µs.
    #[arg(long, default_value_t = 1000, value_name = "US")]
    ahead_us: u64,
    /// Where to write the SVG histogram.
    #[arg(long, default_value = "itimer-bench.svg", value_name = "PATH")]
    svg: PathBuf,
}

/// A wake-up later than this counts as lost.
const LOST_AFTER: Duration = Duration::from_secs(2);

/// Latencies of one series, ns.
pub struct Series {
    /// The recorded latencies (ns; early wake-ups as 1).
    pub hist: Histogram<u64>,
    /// Wake-ups before the deadline (a bug if it happens; counted).
    pub early: u64,
    /// Wake-ups that never came within [`LOST_AFTER`].
    pub lost: u64,
}

impl Series {
    fn new() -> Series {
        Series {
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
            early: 0,
            lost: 0,
        }
    }

    fn record(&mut self, late_ns: i64) {
        if late_ns < 0 {
            self.early += 1;
        }
        self.hist.saturating_record(late_ns.max(1) as u64);
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
    let deadline = MonoNs::host_now().0 + ahead_ns;
    let ts = TimeSpec::new(
        (deadline / 1_000_000_000) as i64,
        (deadline % 1_000_000_000) as i64,
    );
    if tfd
        .set(
            Expiration::OneShot(ts),
            TimerSetTimeFlags::TFD_TIMER_ABSTIME,
        )
        .is_err()
    {
        s.lost += 1;
        return;
    }
    let timeout = PollTimeout::try_from(LOST_AFTER).unwrap_or(PollTimeout::MAX);
    loop {
        let mut fds = [PollFd::new(tfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(n) if n > 0 => break,
            Err(Errno::EINTR) => continue,
            _ => {
                s.lost += 1;
                return;
            }
        }
    }
    let seen = MonoNs::host_now().0;
    let _ = tfd.wait();
    s.record(seen as i64 - deadline as i64);
}

/// One sample through the stack.
fn stack_sample(p: &Process, t: TimerId, port: PortId, ahead: Duration, s: &mut Series) {
    let Ok(now) = p.clock_gettime(ClockId::HIGHRES) else {
        s.lost += 1;
        return;
    };
    let deadline = now + ahead;
    if p.timer_settime(t, Arm::Absolute, ItimerSpec::one_shot(deadline))
        .is_err()
    {
        s.lost += 1;
        return;
    }
    if p.port_get(port, Some(LOST_AFTER)).is_err() {
        s.lost += 1;
        return;
    }
    match p.clock_gettime(ClockId::HIGHRES) {
        Ok(seen) => s.record(seen.as_nanos() as i64 - deadline.as_nanos() as i64),
        Err(_) => s.lost += 1,
    }
}

/// A progress bar on stderr, drawn only on a terminal.
struct Progress {
    total: u64,
    done: u64,
    shown_pct: Option<u64>,
    on: bool,
}

impl Progress {
    fn new(total: u64) -> Progress {
        Progress {
            total,
            done: 0,
            shown_pct: None,
            on: std::io::stderr().is_terminal(),
        }
    }

    fn tick(&mut self, label: &str) {
        self.done += 1;
        let pct = self.done * 100 / self.total.max(1);
        if !self.on || self.shown_pct == Some(pct) {
            return;
        }
        self.shown_pct = Some(pct);
        let width = 30;
        let filled = (pct * width / 100) as usize;
        eprint!(
            "\r  [{}{}] {pct:>3}%  {label:<11}",
            "#".repeat(filled),
            ".".repeat(width as usize - filled)
        );
        let _ = std::io::stderr().flush();
    }

    fn finish(&self) {
        if self.on {
            eprintln!();
        }
    }
}

/// One backend's measurement, or why there is none.
struct Row {
    name: &'static str,
    result: Result<(Series, Series), String>,
}

/// Boots on `name` and measures it.
fn measure(
    name: &'static str,
    samples: u64,
    ahead: Duration,
    raw: &TimerFd,
    progress: &mut Progress,
) -> Result<(Series, Series), String> {
    let kernel = Kernel::builder()
        .alarms(name)
        .boot()
        .map_err(|e| e.to_string())?;
    if kernel.alarm_backend() != name {
        return Err(format!(
            "does not start here (the loop fell back to `{}`)",
            kernel.alarm_backend()
        ));
    }
    let p = kernel.spawn_process(Credentials::ROOT);
    let setup = || -> Result<(PortId, TimerId), Errno> {
        let port = p.port_create()?;
        let t = p.timer_create(
            ClockId::HIGHRES,
            Some(SigEvent::Port {
                port: port.0,
                user: 0,
            }),
        )?;
        Ok((port, t))
    };
    let (port, t) = setup().map_err(|e| format!("setup failed: {e}"))?;
    let ahead_ns = ahead.as_nanos() as u64;
    let mut stack = Series::new();
    let mut base = Series::new();
    for _ in 0..samples {
        raw_sample(raw, ahead_ns, &mut base);
        stack_sample(&p, t, port, ahead, &mut stack);
        progress.tick(name);
    }
    Ok((stack, base))
}

/// Runs `itimer bench`.
pub fn run(clock: Option<&str>, args: &BenchArgs) -> ExitCode {
    let precedence = match clock.map(Precedence::parse) {
        None => Precedence::default(),
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("itimer: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let raw = match TimerFd::new(
        TfdClock::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("itimer bench: cannot create the raw timerfd: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let ahead = Duration::from_micros(args.ahead_us);
    let kinds = precedence.kinds();
    println!(
        "wake-up latency through the stack (HIGHRES timer, TIMER_ABSTIME, SIGEV_PORT, port_get) \
         vs a raw timerfd, {} samples per backend, armed {} us ahead",
        args.samples, args.ahead_us
    );
    let mut progress = Progress::new(args.samples * kinds.len() as u64);
    let rows: Vec<Row> = kinds
        .iter()
        .map(|k| Row {
            name: k.name(),
            result: measure(k.name(), args.samples, ahead, &raw, &mut progress),
        })
        .collect();
    progress.finish();

    println!(
        "{:<11} {:>9} {:>9} {:>10} | {:>8} {:>8} {:>9} | {:>9} {:>9}",
        "backend",
        "p50 us",
        "p99 us",
        "max us",
        "raw p50",
        "raw p99",
        "raw max",
        "p50 ratio",
        "p99 ratio"
    );
    let mut panels = Vec::new();
    for row in &rows {
        match &row.result {
            Err(why) => println!("{:<11} {why}", row.name),
            Ok((stack, base)) => {
                let mut notes = Vec::new();
                if stack.early + base.early > 0 {
                    notes.push(format!("early: {} stack, {} raw", stack.early, base.early));
                }
                if stack.lost + base.lost > 0 {
                    notes.push(format!("lost: {} stack, {} raw", stack.lost, base.lost));
                }
                println!(
                    "{:<11} {:>9.1} {:>9.1} {:>10.1} | {:>8.1} {:>8.1} {:>9.1} | {:>9.2} {:>9.2}{}",
                    row.name,
                    stack.us(0.5),
                    stack.us(0.99),
                    stack.max_us(),
                    base.us(0.5),
                    base.us(0.99),
                    base.max_us(),
                    stack.us(0.5) / base.us(0.5).max(0.001),
                    stack.us(0.99) / base.us(0.99).max(0.001),
                    if notes.is_empty() {
                        String::new()
                    } else {
                        format!("  ({})", notes.join("; "))
                    }
                );
                panels.push(Panel {
                    title: row.name.to_owned(),
                    stack: &stack.hist,
                    raw: &base.hist,
                });
            }
        }
    }
    let svg = histogram_svg(&panels, args.samples, args.ahead_us);
    match std::fs::write(&args.svg, svg) {
        Ok(()) => println!("histogram written to {}", args.svg.display()),
        Err(e) => {
            eprintln!("itimer bench: cannot write {}: {e}", args.svg.display());
            return ExitCode::from(EXIT_USAGE);
        }
    }
    if panels.is_empty() {
        eprintln!("itimer bench: no backend could be measured");
        return ExitCode::from(EXIT_USAGE);
    }
    ExitCode::SUCCESS
}
