//! A multi-threaded soak on the real host: several threads issue random
//! syscalls against shared processes and ports for `ITIMER_SOAK_SECS`
//! seconds (default 10; CI may raise it, at most 60 is meant).
//!
//! * Two threads work on a privileged process, one on an unprivileged one,
//!   and one spawns short-lived processes (timers posting to the shared
//!   ports, a signal handler, SIGEV_THREAD callbacks that sometimes re-arm
//!   or delete their own timer), then lets them exit. Each worker creates, arms, reads and
//!   deletes its own timers (every timer clock, signals and ports, valid
//!   and invalid arguments), reads and sets clocks, waits briefly for
//!   signals and port events (taking whatever comes, its own or not),
//!   sends port events, opens and closes its own ports, blocks and
//!   unblocks signals, and stops and starts the VM.
//! * Every call's error must be one the call can give for that input; no
//!   thread may panic.
//! * **No deadlock**: a watchdog fails the test if no worker makes progress
//!   for [`STALL`], or if the workers have not finished [`STALL`] after
//!   the soak's end. Workers are detached threads, so a hung one cannot
//!   hang the test binary.
//! * **The invariant holds**: 64 tracked VM-clock timers (signals and port
//!   events) of the privileged process are armed before the soak and never
//!   touched by it (workers only touch timers they created). Their
//!   notifications are taken by whichever worker's wait returns them. At
//!   the end the VM is stopped and, as in `conservation_real.rs`, each
//!   tracked timer's next deadline gives the exact number of expirations
//!   the backend reported; after draining, the expirations consumed (1 +
//!   overrun per signal, events per port event) must equal it exactly.
//! * No leak: once the workers' timers are deleted, the process holds
//!   exactly the tracked timers and one signal entry per tracked signal
//!   timer, only the shared ports remain open, and every service thread
//!   of the exited processes is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use itimer::abi::*;
use itimer::kernel::{PortId, SigHandler, ThreadNotify};
use itimer::{
    Arm, ClockId, Credentials, Disposition, Errno, ItimerSpec, Kernel, Process, SigEvent, TimerId,
};

const US: i64 = 1_000;
const MS: i64 = 1_000_000;
const NANOS: i64 = 1_000_000_000;
/// No progress for this long, or not finished this long after the end: a
/// deadlock (or a livelock) is reported.
const STALL: Duration = Duration::from_secs(30);
/// `sigev_value` / `portev_user` of tracked timers: `TAG | index`.
const TAG: u64 = 0x7ac0_0000_0000;
/// The tracked timers' signal.
const TRACKED_SIGNO: i32 = SIGRTMIN + 1;
const TRACKED_SIGNAL: usize = 48;
const TRACKED_PORT: usize = 16;

fn soak_duration() -> Duration {
    let secs = std::env::var("ITIMER_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}

fn ns(ts: Timespec) -> i64 {
    ts.tv_sec * NANOS + ts.tv_nsec
}

fn ts(ns: i64) -> Timespec {
    Timespec {
        tv_sec: ns.div_euclid(NANOS),
        tv_nsec: ns.rem_euclid(NANOS),
    }
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A tracked timer.
struct Tracked {
    tid: i32,
    first: i64,
    interval: i64,
    port: bool,
}

/// What the workers share.
struct Shared {
    k: Kernel,
    root: Process,
    user: Process,
    /// Owned by `root`.
    port_a: PortId,
    /// Owned by `user`.
    port_b: PortId,
    tracked: Vec<Tracked>,
    /// Expirations consumed per tracked timer.
    consumed: Vec<AtomicU64>,
    /// Syscalls made, all workers.
    ops: AtomicU64,
    /// Set when the soak's time is up.
    stop: AtomicBool,
}

impl Shared {
    /// Records a signal if it is a tracked timer's.
    fn took_signal(&self, info: &Siginfo) {
        assert!((1..NSIG).contains(&info.si_signo), "{info:?}");
        if info.si_value & TAG == TAG {
            let i = (info.si_value & !TAG) as usize;
            assert_eq!(info.si_signo, TRACKED_SIGNO);
            assert_eq!(info.si_timerid, self.tracked[i].tid);
            assert!(info.si_overrun >= 0);
            self.consumed[i].fetch_add(1 + info.si_overrun as u64, Ordering::Relaxed);
        }
    }

    /// Records a port event if it is a tracked timer's.
    fn took_event(&self, ev: &PortEvent) {
        if ev.portev_source as i32 == PORT_SOURCE_TIMER {
            assert!(ev.portev_events >= 1, "{ev:?}");
        }
        if ev.portev_source as i32 == PORT_SOURCE_TIMER && ev.portev_user & TAG == TAG {
            let i = (ev.portev_user & !TAG) as usize;
            assert!(self.tracked[i].port);
            assert_eq!(ev.portev_object, self.tracked[i].tid as u64);
            self.consumed[i].fetch_add(ev.portev_events as u64, Ordering::Relaxed);
        }
    }
}

/// Asserts that `r` is Ok or one of the errors `allowed`.
fn allowed<T: std::fmt::Debug>(what: &str, r: &Result<T, Errno>, allowed: &[Errno]) {
    if let Err(e) = r {
        assert!(allowed.contains(e), "{what}: unexpected {e:?}");
    }
}

/// One random sigevent (valid or not) for a worker's timer.
fn random_sigevent(rng: &mut Rng, ports: &[i32], value: u64) -> Option<Sigevent> {
    let port = |rng: &mut Rng, notify| Sigevent {
        sigev_notify: notify,
        sigev_port: PortNotify {
            portnfy_port: rng.pick(ports),
            portnfy_user: value,
        },
        ..Sigevent::default()
    };
    match rng.below(10) {
        0 => None,
        1 => Some(Sigevent {
            sigev_notify: SIGEV_NONE,
            ..Sigevent::default()
        }),
        2..=5 => Some(Sigevent {
            sigev_notify: SIGEV_SIGNAL,
            sigev_signo: rng.pick(&[SIGALRM, SIGUSR1, SIGRTMIN, 0, NSIG]),
            sigev_value: value,
            ..Sigevent::default()
        }),
        6..=7 => Some(port(rng, SIGEV_PORT)),
        8 => Some(port(rng, SIGEV_THREAD)),
        _ => Some(Sigevent {
            sigev_notify: 99,
            ..Sigevent::default()
        }),
    }
}

/// A random setting: relative or absolute, small, sometimes malformed.
fn random_setting(rng: &mut Rng, p: &Process, clock: i32) -> (i32, Itimerspec) {
    let interval = rng.pick(&[0, 0, 100 * US, 500 * US, MS, 5 * MS]);
    let (flags, value) = match rng.below(10) {
        0 => (0, 0),
        1..=5 => (0, rng.pick(&[US, 50 * US, 300 * US, MS, 3 * MS])),
        6..=8 => {
            let now = p.raw().clock_gettime(clock).map(ns).unwrap_or(0);
            (TIMER_ABSTIME, now + rng.pick(&[-10 * MS, -US, MS, 4 * MS]))
        }
        _ => {
            return (
                rng.pick(&[0, TIMER_ABSTIME, 4]),
                Itimerspec {
                    it_interval: Timespec {
                        tv_sec: 0,
                        tv_nsec: -1,
                    },
                    it_value: Timespec {
                        tv_sec: -1,
                        tv_nsec: 0,
                    },
                },
            );
        }
    };
    (
        flags,
        Itimerspec {
            it_interval: ts(interval),
            it_value: ts(value),
        },
    )
}

/// A worker on process `p` (of `sh`): random syscalls until `sh.stop`.
/// Deletes its timers and closes its ports before returning.
fn worker(sh: &Shared, p: &Process, seed: u64) {
    let mut rng = Rng(seed);
    let raw = p.raw();
    let mut mine: Vec<i32> = Vec::new();
    let mut my_ports: Vec<i32> = Vec::new();
    let privileged = p.credentials().privileged;
    while !sh.stop.load(Ordering::Relaxed) {
        sh.ops.fetch_add(1, Ordering::Relaxed);
        let mut ports = vec![sh.port_a.0, sh.port_b.0, -1, 9999];
        ports.extend(&my_ports);
        match rng.below(20) {
            0..=2 if mine.len() < 24 => {
                let clock = rng.pick(&[
                    CLOCK_REALTIME,
                    CLOCK_HIGHRES,
                    CLOCK_VM,
                    CLOCK_HIGHRES,
                    CLOCK_PROCESS_CPUTIME_ID,
                    77,
                ]);
                let value = rng.below(1000);
                let ev = random_sigevent(&mut rng, &ports, value);
                let r = raw.timer_create(clock, ev.as_ref());
                allowed(
                    "timer_create",
                    &r,
                    &[Errno::EINVAL, Errno::EAGAIN, Errno::EBADF],
                );
                if let Ok(t) = r {
                    mine.push(t);
                }
            }
            3..=5 if !mine.is_empty() => {
                let t = rng.pick(&mine);
                let clock = p.timer_status(t).map_or(CLOCK_HIGHRES, |s| s.clock);
                let (flags, spec) = random_setting(&mut rng, p, clock);
                let r = raw.timer_settime(t, flags, &spec);
                allowed("timer_settime", &r, &[Errno::EINVAL]);
            }
            6 => {
                let t = if mine.is_empty() || rng.chance(20) {
                    rng.pick(&[-1, 100_000])
                } else {
                    rng.pick(&mine)
                };
                let r = raw.timer_gettime(t);
                allowed("timer_gettime", &r, &[Errno::EINVAL]);
                let r = raw.timer_getoverrun(t);
                allowed("timer_getoverrun", &r, &[Errno::EINVAL]);
                if let Ok(n) = r {
                    assert!((0..=DELAYTIMER_MAX).contains(&n));
                }
            }
            // Deletes; also instead of a create once it has 24 timers.
            0..=2 | 7 if !mine.is_empty() => {
                let i = rng.below(mine.len() as u64) as usize;
                raw.timer_delete(mine.swap_remove(i)).expect("own timer");
            }
            8..=10 => {
                let wait = Timespec {
                    tv_sec: 0,
                    tv_nsec: rng.pick(&[0, 0, 200 * US, 2 * MS]),
                };
                let r = raw.sigtimedwait(u64::MAX, Some(&wait));
                allowed("sigtimedwait", &r, &[Errno::EAGAIN]);
                if let Ok(info) = r {
                    sh.took_signal(&info);
                }
            }
            11..=13 => {
                let port = rng.pick(&ports);
                let wait = Timespec {
                    tv_sec: 0,
                    tv_nsec: rng.pick(&[0, 0, 200 * US, 2 * MS]),
                };
                let r = raw.port_get(port, Some(&wait));
                allowed(
                    "port_get",
                    &r,
                    &[Errno::ETIME, Errno::EBADF, Errno::EACCES, Errno::EBADFD],
                );
                if let Ok(ev) = r {
                    sh.took_event(&ev);
                }
            }
            14 => {
                let r = raw.port_send(rng.pick(&ports), 1, rng.below(1000));
                allowed("port_send", &r, &[Errno::EBADF, Errno::EAGAIN]);
            }
            15 => {
                if my_ports.len() < 2 && rng.chance(50) {
                    let r = raw.port_create();
                    allowed("port_create", &r, &[Errno::EMFILE]);
                    my_ports.extend(r);
                } else if let Some(port) = my_ports.pop() {
                    raw.port_close(port).expect("own port");
                }
            }
            16 => {
                let now = ns(raw.clock_gettime(CLOCK_REALTIME).unwrap());
                let step = rng.pick(&[-100 * MS, -MS, MS, 100 * MS]);
                let r = raw.clock_settime(CLOCK_REALTIME, &ts(now + step));
                if privileged {
                    r.expect("root sets the wall clock");
                } else {
                    assert_eq!(r, Err(Errno::EPERM));
                }
                let r = raw.clock_gettime(rng.pick(&[CLOCK_HIGHRES, CLOCK_VM, 77]));
                allowed("clock_gettime", &r, &[Errno::EINVAL]);
            }
            17 => {
                let set = rng.pick(&[1u64 << (SIGALRM - 1), 1u64 << (SIGUSR1 - 1)]);
                let how = rng.pick(&[1, 2]);
                raw.sigprocmask(how, Some(set)).expect("valid how");
            }
            18 => {
                // SIGUSR1 only: ignoring the tracked signal would consume
                // its expirations out of sight.
                let r = raw.sigaction(SIGUSR1, rng.pick(&[0, 1]));
                r.expect("valid sigaction");
            }
            _ => {
                if rng.chance(50) {
                    sh.k.vm_stop();
                } else {
                    sh.k.vm_start();
                }
            }
        }
    }
    for t in mine {
        raw.timer_delete(t).expect("own timer");
    }
    for port in my_ports {
        raw.port_close(port).expect("own port");
    }
}

/// Spawns short-lived processes whose timers post to the shared ports,
/// signal themselves (some to a handler run by the process's delivery
/// thread) and run SIGEV_THREAD callbacks (on its notification thread,
/// some of which re-arm or delete their own timer), and lets them exit,
/// until `sh.stop`.
fn process_churner(sh: &Shared, seed: u64) {
    let mut rng = Rng(seed);
    while !sh.stop.load(Ordering::Relaxed) {
        sh.ops.fetch_add(1, Ordering::Relaxed);
        let cred = if rng.chance(50) {
            Credentials::ROOT
        } else {
            Credentials::user(2000)
        };
        let p = sh.k.spawn_process(cred);
        let ports = [sh.port_a.0, sh.port_b.0];
        for _ in 0..rng.below(6) {
            let clock = rng.pick(&[CLOCK_HIGHRES, CLOCK_REALTIME, CLOCK_VM]);
            let value = rng.below(1000);
            let ev = random_sigevent(&mut rng, &ports, value);
            if let Ok(t) = p.raw().timer_create(clock, ev.as_ref()) {
                let spec = Itimerspec {
                    it_interval: ts(rng.pick(&[0, 100 * US, MS])),
                    it_value: ts(rng.pick(&[US, 200 * US, MS])),
                };
                p.raw().timer_settime(t, 0, &spec).expect("valid setting");
            }
        }
        if rng.chance(40) {
            let handler = SigHandler::new(|p: &Process, info: &Siginfo| {
                let _ = p.timer_getoverrun(TimerId(info.si_timerid));
            });
            p.sigaction(SIGUSR2, Disposition::Handler(handler))
                .expect("handler installed");
            let ev = SigEvent::Signal {
                signo: SIGUSR2,
                value: 0,
            };
            let t = p.timer_create(ClockId::HIGHRES, Some(ev)).unwrap();
            p.timer_settime(t, Arm::Relative, periodic(200))
                .expect("valid setting");
        }
        if rng.chance(40) {
            let action = rng.below(3);
            let ev = SigEvent::thread(action, |p: &Process, n: ThreadNotify| match n.value {
                0 => {}
                1 => {
                    let _ = p.timer_settime(n.timer, Arm::Relative, periodic(300));
                }
                _ => {
                    let _ = p.timer_delete(n.timer);
                }
            });
            let clock = rng.pick(&[ClockId::HIGHRES, ClockId::VM]);
            let t = p.timer_create(clock, Some(ev)).unwrap();
            p.timer_settime(t, Arm::Relative, periodic(100))
                .expect("valid setting");
        }
        std::thread::sleep(Duration::from_micros(rng.below(3_000)));
        if rng.chance(50) {
            let _ = p.raw().sigtimedwait(u64::MAX, Some(&Timespec::default()));
        }
        // Dropping the handle exits the process.
    }
}

/// A periodic setting of `us` microseconds.
fn periodic(us: u64) -> ItimerSpec {
    ItimerSpec::periodic(Duration::from_micros(us), Duration::from_micros(us))
}

/// Arms the tracked timers on `root`: absolute on the VM clock, so their
/// deadline grid is known exactly.
fn arm_tracked(root: &Process, port_a: PortId) -> Vec<Tracked> {
    let raw = root.raw();
    let vm0 = ns(raw.clock_gettime(CLOCK_VM).unwrap());
    let mut rng = Rng(0x50a4_0000_0001);
    (0..TRACKED_SIGNAL + TRACKED_PORT)
        .map(|i| {
            let port = i >= TRACKED_SIGNAL;
            let ev = if port {
                Sigevent {
                    sigev_notify: SIGEV_PORT,
                    sigev_port: PortNotify {
                        portnfy_port: port_a.0,
                        portnfy_user: TAG | i as u64,
                    },
                    ..Sigevent::default()
                }
            } else {
                Sigevent {
                    sigev_notify: SIGEV_SIGNAL,
                    sigev_signo: TRACKED_SIGNO,
                    sigev_value: TAG | i as u64,
                    ..Sigevent::default()
                }
            };
            let tid = raw.timer_create(CLOCK_VM, Some(&ev)).unwrap();
            let interval = 100 * US + (rng.below(900) as i64) * US;
            let first = vm0 + 10 * MS + rng.below(interval as u64) as i64;
            let spec = Itimerspec {
                it_interval: ts(interval),
                it_value: ts(first),
            };
            raw.timer_settime(tid, TIMER_ABSTIME, &spec).unwrap();
            Tracked {
                tid,
                first,
                interval,
                port,
            }
        })
        .collect()
}

#[test]
fn threads_issuing_random_syscalls_keep_the_invariant() {
    let k = Kernel::builder()
        .timer_max(512)
        .boot()
        .expect("a real alarm backend starts");
    let root = k.spawn_process(Credentials::ROOT);
    let user = k.spawn_process(Credentials::user(1000));
    let port_a = root.port_create().unwrap();
    let port_b = user.port_create().unwrap();
    let tracked = arm_tracked(&root, port_a);
    let consumed = tracked.iter().map(|_| AtomicU64::new(0)).collect();
    let sh = Arc::new(Shared {
        k,
        root,
        user,
        port_a,
        port_b,
        tracked,
        consumed,
        ops: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });

    // Detached workers: a hung one must not hang the test binary.
    let (done_tx, done_rx) = mpsc::channel::<&'static str>();
    let workers: [(&'static str, u64); 4] = [
        ("root-1", 11),
        ("root-2", 22),
        ("user", 33),
        ("processes", 44),
    ];
    for (name, seed) in workers {
        let (sh, done) = (sh.clone(), done_tx.clone());
        std::thread::Builder::new()
            .name(format!("soak-{name}"))
            .spawn(move || {
                match name {
                    "root-1" | "root-2" => worker(&sh, &sh.root, seed),
                    "user" => worker(&sh, &sh.user, seed),
                    _ => process_churner(&sh, seed),
                }
                let _ = done.send(name);
            })
            .unwrap();
    }
    drop(done_tx);

    // Watchdog: progress at least every STALL; all done within STALL of
    // the end. A worker that panics drops its sender without reporting.
    let end = Instant::now() + soak_duration();
    let mut last = (0, Instant::now());
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
        let ops = sh.ops.load(Ordering::Relaxed);
        if ops != last.0 {
            last = (ops, Instant::now());
        }
        assert!(
            last.1.elapsed() < STALL,
            "no syscall completed for {STALL:?} after {ops} ops: deadlock"
        );
    }
    sh.stop.store(true, Ordering::Relaxed);
    let mut finished = Vec::new();
    while finished.len() < workers.len() {
        match done_rx.recv_timeout(STALL) {
            Ok(name) => finished.push(name),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!(
                    "workers still running {STALL:?} after the end (finished: {finished:?}): deadlock"
                )
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("a worker panicked (finished: {finished:?})")
            }
        }
    }
    let ops = sh.ops.load(Ordering::Relaxed);

    // The invariant for the tracked timers: stop the VM, let every due
    // tracked timer run, read the backend's count, drain, compare.
    let raw = sh.root.raw();
    sh.k.vm_stop();
    let frozen = ns(raw.clock_gettime(CLOCK_VM).unwrap());
    let deadline = Instant::now() + STALL;
    while sh
        .tracked
        .iter()
        .any(|t| ns(raw.timer_gettime(t.tid).unwrap().it_value) == 0)
    {
        assert!(Instant::now() < deadline, "tracked timers still due");
        std::thread::sleep(Duration::from_millis(5));
    }
    while let Ok(info) = raw.sigtimedwait(u64::MAX, Some(&Timespec::default())) {
        sh.took_signal(&info);
    }
    while let Ok(ev) = sh.root.port_get(port_a, Some(Duration::ZERO)) {
        sh.took_event(&ev);
    }
    let res = sh.k.resolution_ns() as i64;
    let mut expirations = 0;
    for (t, c) in sh.tracked.iter().zip(&sh.consumed) {
        let left = ns(raw.timer_gettime(t.tid).unwrap().it_value);
        let top = frozen + left - t.first;
        assert!(top.rem_euclid(t.interval) < res, "off the period grid");
        let m = top.div_euclid(t.interval) as u64;
        assert_eq!(sh.root.timer_status(t.tid).unwrap().pending, 0, "drained");
        assert_eq!(
            c.load(Ordering::Relaxed),
            m,
            "tracked timer {} (port: {}): consumed != the backend's count",
            t.tid,
            t.port
        );
        expirations += m;
    }

    // No leak: the workers deleted their timers and closed their ports;
    // the short-lived processes are gone.
    let stats = sh.root.stats();
    assert_eq!(stats.timers, sh.tracked.len());
    assert_eq!(stats.sig_entries, TRACKED_SIGNAL);
    assert_eq!(sh.user.stats().timers, 0);
    let open: Vec<PortId> = sh.k.inner().ports().into_iter().map(|(id, _)| id).collect();
    assert_eq!(open, vec![port_a, port_b]);
    assert_eq!(sh.k.inner().processes().len(), 2);
    assert_eq!(
        sh.k.inner().service_threads(),
        0,
        "the exited processes' delivery and notification threads are gone"
    );
    println!(
        "{ops} syscalls in {:?}; tracked timers: {expirations} expirations, all accounted for",
        soak_duration()
    );
}

/// The VM clock never runs backwards, even while other threads stop and
/// start the VM. (A reading taken between `vm_stop`'s read of the host
/// clock and its taking the VIRTUAL lock used to be later than the value
/// the clock froze at: VIRTUAL stepped back, and the timer loop then
/// spun forever re-running a VM timer it had popped at the later reading.)
#[test]
fn vm_clock_never_runs_backwards_while_the_vm_stops_and_starts() {
    let k = Arc::new(
        Kernel::builder()
            .boot()
            .expect("a real alarm backend starts"),
    );
    let p = Arc::new(k.spawn_process(Credentials::ROOT));
    let stop = Arc::new(AtomicBool::new(false));
    let toggler = {
        let (k, stop) = (k.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                k.vm_stop();
                k.vm_start();
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut last = 0;
                while start.elapsed() < Duration::from_secs(2) {
                    let now = ns(p.raw().clock_gettime(CLOCK_VM).unwrap());
                    if now < last {
                        return Some((last, now));
                    }
                    last = now;
                }
                None
            })
        })
        .collect();
    let backwards: Vec<(i64, i64)> = readers
        .into_iter()
        .filter_map(|r| r.join().unwrap())
        .collect();
    stop.store(true, Ordering::Relaxed);
    toggler.join().unwrap();
    assert!(
        backwards.is_empty(),
        "CLOCK_VM ran backwards (earlier reading, later reading): {backwards:?}"
    );
}
