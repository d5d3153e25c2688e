//! `itimer demo`: the whole stack on a real host alarm, for about two
//! seconds.
//!
//! Two processes (`root`, privileged, and `user`, uid 1000) run timers on
//! every timer clock, notified in every way:
//!
//! | process | timer | clock, arming | period | notification |
//! |---|---|---|---|---|
//! | root | `wall-abs` | REALTIME, absolute | 250 ms | SIGALRM, taken by a `sigtimedwait` loop |
//! | root | `halfway` | REALTIME, absolute, one-shot | - | SIGUSR2, same loop |
//! | root | `vm` | VM (stopped for a fifth of the run) | 200 ms | SIGEV_THREAD callback |
//! | root | `fast` | HIGHRES | 1 ms | event port, taken by a `port_get` loop |
//! | user | `wall-rel` | REALTIME, relative | 300 ms | SIGUSR1, `sigtimedwait` loop |
//! | user | `hr` | HIGHRES | 125 ms | event port, `port_get` loop |
//! | user | `lagging` | HIGHRES | 10 ms | its own port, read only every 45 ms (overruns) |
//!
//! The timeline lists every notification of the slower timers (period 50 ms
//! or more); the fast ones are summed up. Wake-up latency is the timer's
//! clock read at delivery minus the deadline of the latest expiration the
//! notification accounts for (`first + (n - 1) * period`, n counting every
//! expiration so far, overruns included). For relative timers the first
//! deadline is the clock read just before `timer_settime` plus the value,
//! which overstates their latency by the call's duration (microseconds).
//! `lagging` is left out of the latency figures: its reader is late on
//! purpose.
//!
//! The consumer threads are the demo's "user programs", so they are plain
//! `std` threads and use timed waits (the kernel's rules on threads and
//! locks are for kernel code).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use itimer::abi::{SIGALRM, SIGUSR1, SIGUSR2};
use itimer::kernel::PortId;
use itimer::{Arm, ClockId, Credentials, Errno, ItimerSpec, Kernel, Process, SigEvent, SigSet};

use super::EXIT_USAGE;

/// Arguments of `itimer demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// How long the timers run (e.g. `2s`, `300ms`).
    #[arg(long, default_value = "2s", value_parser = super::parse_duration_arg)]
    duration: Duration,
}

/// How long a consumer waits before checking whether the demo is over.
const POLL: Duration = Duration::from_millis(50);
/// Timers with a shorter period are summed up, not listed.
const LISTED_PERIOD: Duration = Duration::from_millis(50);
/// How long `lagging`'s reader sleeps between retrievals.
const LAGGING_READER_SLEEP: Duration = Duration::from_millis(45);

/// One demo timer's description and counters.
#[derive(Debug)]
struct TimerInfo {
    proc: &'static str,
    name: &'static str,
    clock: ClockId,
    clock_name: &'static str,
    how: &'static str,
    /// Zero for a one-shot.
    period: Duration,
    /// Its first deadline on its clock, ns (set just before arming).
    first_ns: u64,
    /// Expirations so far (notified + overruns).
    expirations: u64,
    notifications: u64,
    overruns: u64,
    /// Counted in the latency figures.
    measured: bool,
}

/// One notification, for the timeline.
#[derive(Debug)]
struct Delivery {
    at: Duration,
    key: (i32, i32),
    expirations: u64,
    late_ns: Option<i64>,
}

/// What the consumers record.
struct Record {
    start: Instant,
    /// (pid, timer id) → timer.
    timers: BTreeMap<(i32, i32), TimerInfo>,
    deliveries: Vec<Delivery>,
    host_events: Vec<(Duration, String)>,
    latency: Histogram<u64>,
    early: u64,
}

type Shared = Arc<Mutex<Record>>;

fn lock(r: &Shared) -> std::sync::MutexGuard<'_, Record> {
    r.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Records a notification of `expirations` expirations of timer `tid` of
/// `p`, reading its clock now.
fn deliver(rec: &Shared, p: &Process, tid: i32, expirations: u64) {
    let key = (p.pid().0, tid);
    let clock = match lock(rec).timers.get(&key) {
        Some(t) => t.clock,
        None => return,
    };
    let now = p.clock_gettime(clock).map(|d| d.as_nanos() as i64);
    let mut r = lock(rec);
    let at = r.start.elapsed();
    let Some(t) = r.timers.get_mut(&key) else {
        return;
    };
    t.expirations += expirations;
    t.notifications += 1;
    t.overruns += expirations.saturating_sub(1);
    let deadline = t.first_ns + t.period.as_nanos() as u64 * (t.expirations - 1);
    let late_ns = now.ok().map(|now| now - deadline as i64);
    let measured = t.measured;
    if let (Some(late), true) = (late_ns, measured) {
        if late < 0 {
            r.early += 1;
        }
        r.latency.saturating_record(late.max(1) as u64);
    }
    r.deliveries.push(Delivery {
        at,
        key,
        expirations,
        late_ns,
    });
}

/// Creates a timer and registers it (not yet armed).
fn create(
    rec: &Shared,
    p: &Process,
    info: TimerInfo,
    ev: SigEvent,
) -> Result<itimer::TimerId, Errno> {
    let t = p.timer_create(info.clock, Some(ev))?;
    lock(rec).timers.insert((p.pid().0, t.0), info);
    Ok(t)
}

/// Arms a registered timer, recording its first deadline.
fn arm(
    rec: &Shared,
    p: &Process,
    t: itimer::TimerId,
    arm: Arm,
    value: Duration,
) -> Result<(), Errno> {
    let key = (p.pid().0, t.0);
    let (clock, period) = {
        let r = lock(rec);
        let i = &r.timers[&key];
        (i.clock, i.period)
    };
    let now = p.clock_gettime(clock)?;
    let first = match arm {
        Arm::Relative => now + value,
        Arm::Absolute => value,
    };
    lock(rec).timers.get_mut(&key).expect("registered").first_ns = first.as_nanos() as u64;
    p.timer_settime(t, arm, ItimerSpec::periodic(value, period))?;
    Ok(())
}

/// A `sigtimedwait` loop for `set`, until `stop`.
fn signal_loop(p: Arc<Process>, set: SigSet, rec: Shared, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match p.sigtimedwait(set, Some(POLL)) {
                Ok(info) => deliver(&rec, &p, info.si_timerid, 1 + info.si_overrun.max(0) as u64),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    })
}

/// A `port_get` loop on `port`, until `stop`, sleeping `pause` after each
/// event.
fn port_loop(
    p: Arc<Process>,
    port: PortId,
    pause: Duration,
    rec: Shared,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match p.port_get(port, Some(POLL)) {
                Ok(ev) => {
                    deliver(
                        &rec,
                        &p,
                        ev.portev_object as i32,
                        ev.portev_events.max(1) as u64,
                    );
                    if !pause.is_zero() {
                        std::thread::sleep(pause);
                    }
                }
                Err(Errno::ETIME | Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    })
}

fn info(
    proc: &'static str,
    name: &'static str,
    clock: (ClockId, &'static str),
    how: &'static str,
    period_ms: u64,
) -> TimerInfo {
    TimerInfo {
        proc,
        name,
        clock: clock.0,
        clock_name: clock.1,
        how,
        period: Duration::from_millis(period_ms),
        first_ns: 0,
        expirations: 0,
        notifications: 0,
        overruns: 0,
        measured: true,
    }
}

const REALTIME: (ClockId, &str) = (ClockId::REALTIME, "realtime");
const HIGHRES: (ClockId, &str) = (ClockId::HIGHRES, "highres");
const VM: (ClockId, &str) = (ClockId::VM, "vm");

/// Runs `itimer demo`.
pub fn run(clock: Option<&str>, args: &DemoArgs) -> ExitCode {
    let mut builder = Kernel::builder();
    if let Some(list) = clock {
        builder = builder.alarms(list);
    }
    let kernel = match builder.boot() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("itimer demo: cannot boot: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match demo(&kernel, args.duration) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("itimer demo: a syscall failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn demo(kernel: &Kernel, duration: Duration) -> Result<(), Errno> {
    println!(
        "itimer demo: kernel booted on host alarm `{}` (resolution {} ns); running for {:.3} s",
        kernel.alarm_backend(),
        kernel.resolution_ns(),
        duration.as_secs_f64()
    );
    let rec: Shared = Arc::new(Mutex::new(Record {
        start: Instant::now(),
        timers: BTreeMap::new(),
        deliveries: Vec::new(),
        host_events: Vec::new(),
        latency: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
        early: 0,
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let root = Arc::new(kernel.spawn_process(Credentials::ROOT));
    let user = Arc::new(kernel.spawn_process(Credentials::user(1000)));
    println!(
        "processes: root (pid {}, privileged), user (pid {}, uid 1000)",
        root.pid().0,
        user.pid().0
    );

    // root
    let wall_abs = create(
        &rec,
        &root,
        info("root", "wall-abs", REALTIME, "signal", 250),
        SigEvent::Signal {
            signo: SIGALRM,
            value: 1,
        },
    )?;
    let halfway = create(
        &rec,
        &root,
        info("root", "halfway", REALTIME, "signal", 0),
        SigEvent::Signal {
            signo: SIGUSR2,
            value: 2,
        },
    )?;
    let rec2 = rec.clone();
    let vm = create(
        &rec,
        &root,
        info("root", "vm", VM, "thread", 200),
        SigEvent::thread(3, move |p, n| {
            deliver(&rec2, p, n.timer.0, n.expirations.max(1) as u64);
        }),
    )?;
    let root_port = root.port_create()?;
    let fast = create(
        &rec,
        &root,
        info("root", "fast", HIGHRES, "port", 1),
        SigEvent::Port {
            port: root_port.0,
            user: 4,
        },
    )?;
    // user
    let wall_rel = create(
        &rec,
        &user,
        info("user", "wall-rel", REALTIME, "signal", 300),
        SigEvent::Signal {
            signo: SIGUSR1,
            value: 5,
        },
    )?;
    let user_port = user.port_create()?;
    let hr = create(
        &rec,
        &user,
        info("user", "hr", HIGHRES, "port", 125),
        SigEvent::Port {
            port: user_port.0,
            user: 6,
        },
    )?;
    let lag_port = user.port_create()?;
    let mut lag_info = info("user", "lagging", HIGHRES, "port", 10);
    lag_info.measured = false;
    let lagging = create(
        &rec,
        &user,
        lag_info,
        SigEvent::Port {
            port: lag_port.0,
            user: 7,
        },
    )?;

    let signals = SigSet::of(SIGALRM)?.with(SIGUSR1)?.with(SIGUSR2)?;
    let threads = vec![
        signal_loop(root.clone(), signals, rec.clone(), stop.clone()),
        signal_loop(user.clone(), signals, rec.clone(), stop.clone()),
        port_loop(
            root.clone(),
            root_port,
            Duration::ZERO,
            rec.clone(),
            stop.clone(),
        ),
        port_loop(
            user.clone(),
            user_port,
            Duration::ZERO,
            rec.clone(),
            stop.clone(),
        ),
        port_loop(
            user.clone(),
            lag_port,
            LAGGING_READER_SLEEP,
            rec.clone(),
            stop.clone(),
        ),
    ];

    lock(&rec).start = Instant::now();
    let ms = Duration::from_millis;
    let wall_now = root.clock_gettime(ClockId::REALTIME)?;
    arm(&rec, &root, wall_abs, Arm::Absolute, wall_now + ms(250))?;
    arm(&rec, &root, halfway, Arm::Absolute, wall_now + duration / 2)?;
    arm(&rec, &root, vm, Arm::Relative, ms(200))?;
    arm(&rec, &root, fast, Arm::Relative, ms(1))?;
    arm(&rec, &user, wall_rel, Arm::Relative, ms(300))?;
    arm(&rec, &user, hr, Arm::Relative, ms(125))?;
    arm(&rec, &user, lagging, Arm::Relative, ms(10))?;

    // The VM stops for the middle fifth of the run.
    let start = lock(&rec).start;
    let sleep_until = |t: Duration| {
        let el = start.elapsed();
        if t > el {
            std::thread::sleep(t - el);
        }
    };
    sleep_until(duration * 2 / 5);
    kernel.vm_stop();
    lock(&rec)
        .host_events
        .push((start.elapsed(), "VM stopped".to_owned()));
    sleep_until(duration * 3 / 5);
    kernel.vm_start();
    lock(&rec)
        .host_events
        .push((start.elapsed(), "VM resumed".to_owned()));
    sleep_until(duration);
    let ran = start.elapsed();

    // Stop: disarm everything, then let the consumers see the flag.
    for (p, t) in [
        (&root, wall_abs),
        (&root, halfway),
        (&root, vm),
        (&root, fast),
        (&user, wall_rel),
        (&user, hr),
        (&user, lagging),
    ] {
        p.timer_settime(t, Arm::Relative, ItimerSpec::disarm())?;
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    root.exit();
    user.exit();

    let r = lock(&rec);
    print_timeline(&r);
    print_summary(kernel, &r, ran);
    Ok(())
}

fn print_timeline(r: &Record) {
    println!();
    println!("Timeline (timers with a period of 50 ms or more; time since the timers were armed)");
    println!(
        "  {:>8}  {:<5} {:<9} {:<9} {:<7} {:>11} {:>7} {:>9}",
        "time", "proc", "timer", "clock", "notify", "expirations", "overrun", "late"
    );
    let mut lines: Vec<(Duration, String)> = r
        .host_events
        .iter()
        .map(|(at, what)| {
            (
                *at,
                format!("  {:>7.3}s  {:<5} {what}", at.as_secs_f64(), "host"),
            )
        })
        .collect();
    for d in &r.deliveries {
        let t = &r.timers[&d.key];
        if !t.period.is_zero() && t.period < LISTED_PERIOD {
            continue;
        }
        let late = d.late_ns.map_or("-".to_owned(), fmt_late);
        lines.push((
            d.at,
            format!(
                "  {:>7.3}s  {:<5} {:<9} {:<9} {:<7} {:>11} {:>7} {:>9}",
                d.at.as_secs_f64(),
                t.proc,
                t.name,
                t.clock_name,
                t.how,
                d.expirations,
                d.expirations - 1,
                late
            ),
        ));
    }
    lines.sort_by_key(|(at, _)| *at);
    for (_, l) in lines {
        println!("{l}");
    }
}

fn fmt_late(ns: i64) -> String {
    if ns.abs() >= 1_000_000 {
        format!("{:.2}ms", ns as f64 / 1e6)
    } else {
        format!("{:.0}us", ns as f64 / 1e3)
    }
}

fn print_summary(kernel: &Kernel, r: &Record, ran: Duration) {
    let stats = kernel.loop_stats();
    println!();
    println!("Summary");
    println!(
        "  host alarm backend: {} (resolution {} ns)",
        kernel.alarm_backend(),
        kernel.resolution_ns()
    );
    println!(
        "  ran {:.3} s; timer loop: {} wakeups ({} by the alarm, {} spurious), {} host re-arms",
        ran.as_secs_f64(),
        stats.wakeups,
        stats.alarm_wakeups,
        stats.spurious_wakeups,
        stats.rearm_calls
    );
    if let Some(e) = stats.last_poll_error {
        println!(
            "  timer loop: {} failed waits (last {e}), each retried after a back-off",
            stats.poll_errors
        );
    }
    println!(
        "  {:<14} {:<9} {:<7} {:>7} {:>13} {:>11} {:>8}",
        "timer", "clock", "notify", "period", "notifications", "expirations", "overruns"
    );
    let (mut total_exp, mut total_over) = (0, 0);
    for t in r.timers.values() {
        total_exp += t.expirations;
        total_over += t.overruns;
        let period = if t.period.is_zero() {
            "one-shot".to_owned()
        } else {
            format!("{}ms", t.period.as_millis())
        };
        println!(
            "  {:<14} {:<9} {:<7} {:>7} {:>13} {:>11} {:>8}",
            format!("{}/{}", t.proc, t.name),
            t.clock_name,
            t.how,
            period,
            t.notifications,
            t.expirations,
            t.overruns
        );
    }
    println!("  total: {total_exp} expirations, {total_over} overruns");
    println!(
        "  (user/lagging's reader sleeps {} ms after each event, so its expirations arrive as overruns)",
        LAGGING_READER_SLEEP.as_millis()
    );
    let h = &r.latency;
    if h.is_empty() {
        println!("  wake-up latency: no samples");
    } else {
        println!(
            "  wake-up latency (deadline to delivery, {} notifications): p50 {}, p99 {}, max {}{}",
            h.len(),
            fmt_late(h.value_at_quantile(0.5) as i64),
            fmt_late(h.value_at_quantile(0.99) as i64),
            fmt_late(h.max() as i64),
            if r.early > 0 {
                format!(", {} early", r.early)
            } else {
                String::new()
            }
        );
    }
}
