//! The interpreter: a simulated kernel, the script's names for its
//! processes, timers and ports, and the rules that make the trace
//! deterministic.
//!
//! # Determinism
//!
//! Time moves only when the script says (`advance`, `step`; guest time
//! also `vm step`, `vm warp`); the interpreter drives the simulated host
//! one armed deadline at a time (`vm step`: one VM deadline at a time), so
//! every instant at which something expires is seen on its own. Signal and
//! port notifications stay queued until the script takes them (`consume`,
//! `port get`), so their state after each instant is exact. After every
//! command, the interpreter also runs what is due at the current time
//! (`settle`: an arming in the past, a `clock_settime` past an absolute
//! deadline), so "at once" happens at the same model time as the call.
//!
//! SIGEV_THREAD callbacks run on the process's notification thread,
//! concurrently with the interpreter. After each instant, the interpreter
//! waits for them with a **barrier**: it creates one more SIGEV_THREAD
//! timer in the process, arms it at an absolute time already past, lets it
//! fire, and waits until its callback reports. One notification thread
//! serves a process's callbacks one at a time, in the order the events
//! were queued on its port, so when the barrier's callback runs, every
//! callback due before it has returned. The barrier timer is deleted at
//! once, so timer ids the script sees are unchanged (lowest free slot).
//! Costs: it needs one free slot in the process's timer table (a script
//! error says so if there is none), and model time does not move while
//! callbacks run, so a SIGEV_THREAD timer's callback always keeps up (its
//! overruns come only from expirations at one instant, e.g. a clock step).
//!
//! Signal handlers (`handle P SIG`) run on the process's delivery thread,
//! also concurrently. Every handler the script installs is the same
//! reporting closure: it reads `timer_getoverrun` of the signal's timer and
//! sends the siginfo to the interpreter. After each instant (and after
//! every command, which may unblock a caught signal or install a handler
//! over a queued one), the interpreter waits for them with a second
//! barrier: if some caught signal is not blocked, it takes the **highest**
//! such signal `S`, creates a SIGEV_SIGNAL timer on `S` with a value no
//! script timer uses, fires it at a time already past and waits until the
//! handler reports the barrier's siginfo. The delivery thread runs one
//! handler at a time, lowest deliverable signal first and oldest first
//! within a signal, so when the barrier's signal (queued last, on the
//! highest caught signal) is handled, every signal deliverable before it
//! has been handled. The barrier timer is deleted at once. Same costs as
//! above: one free timer slot, and model time stands still while handlers
//! run. Signals that are caught but blocked stay queued (and their timers
//! show expiry lines) until unblocked. The handler reads
//! `timer_getoverrun` only for timers the script has not deleted: an
//! orphan signal's timer id may by then belong to a tracer's timer, and
//! asking it would make the trace depend on thread timing. See
//! [`super::events`] for the order of handler runs within an instant.
//!
//! # LWPs
//!
//! Every process starts with LWP 1; `lwp create` makes more, named by the
//! script per process. Binding a timer (`lwp bind`) only records the LWP
//! in the model (the status line's `lwp=`): notifications go to the
//! process either way. When an LWP exits, the timers bound to it are
//! unbound and keep running; the trace shows one `unbound` line for each.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use crate::kernel::abi::{
    CLOCK_HIGHRES, CLOCK_REALTIME, Itimerspec, PORT_SOURCE_ALERT, PORT_SOURCE_TIMER,
    PORT_SOURCE_USER, PortEvent, PortNotify, SI_QUEUE, SI_TIMER, SIGALRM, SIGEV_NONE, SIGEV_PORT,
    SIGEV_SIGNAL, Sigevent, Siginfo, TIMER_ABSTIME,
};
use crate::kernel::itimer::ItFlags;
use crate::kernel::port::{PORT_MAX_DEFAULT, PORT_MAX_EVENTS_DEFAULT};
use crate::kernel::raw::{SIG_DFL, SIG_IGN};
use crate::kernel::signal::{SIG_BLOCK, SIG_UNBLOCK};
use crate::kernel::{AlertMode, Disposition, LwpId, PortId, SigHandler};
use crate::{
    Arm, ClockId, Credentials, Errno, ItimerSpec, Kernel, KernelConfig, Process, SigEvent, SigSet,
    SimKernel, TimerId,
};

use super::command::{ClockValue, Command, LwpOp, Notify, PortOp, Ref, SetValue, VmOp, parse_line};
use super::events::{Event, EventKind, Shown, UNNAMED};
use super::units::{
    TimeArg, fmt_clock, fmt_duration, fmt_errno, fmt_reading, fmt_signal, fmt_sigset, fmt_time,
    timespec_ns,
};

/// The `timer_max` a script's kernel has unless `boot` says otherwise
/// (fixed, not derived from the CPU count, so traces agree everywhere).
pub const SCRIPT_TIMER_MAX: usize = 32;
/// Expiry lines shown per timer per command unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 6;
/// The most deadlines one `advance` may step through.
pub const MAX_STEPS_PER_COMMAND: u64 = 100_000;
/// How long the interpreter waits for a SIGEV_THREAD callback that must
/// come (generous: the machine may be loaded; nothing is timed, only
/// bounded).
const PATIENCE: Duration = Duration::from_secs(30);

/// What a process's SIGEV_THREAD callbacks report to the interpreter.
#[derive(Debug, Clone, Copy)]
enum Note {
    /// A script timer's callback ran.
    Callback {
        tid: i32,
        value: u64,
        expirations: i32,
        overrun: i32,
    },
    /// The barrier's callback ran (its token).
    Barrier(u64),
    /// The script's signal handler ran (the barrier's signal included).
    Handled {
        info: Siginfo,
        /// `timer_getoverrun(si_timerid)` inside the handler; `None`: not
        /// called, the script deleted that timer.
        getoverrun: Option<Result<i32, Errno>>,
    },
}

/// The value of the handler barrier's timer for `token`: counted down
/// from `u64::MAX`, far from the small values scripts give.
fn handler_barrier_value(token: u64) -> u64 {
    u64::MAX - token
}

/// A timer the script named.
#[derive(Debug)]
struct TimerEntry {
    name: String,
    id: i32,
    clock: i32,
    /// SIGEV_THREAD (seen through callbacks, not `pending`).
    thread: bool,
    /// A signal timer's `(si_signo, si_value)`, to tie handler runs to it.
    signal: Option<(i32, u64)>,
    /// Not deleted (as far as the script knows).
    live: bool,
}

/// A process the script spawned.
#[derive(Debug)]
struct Proc {
    name: String,
    handle: Process,
    exited: bool,
    timers: Vec<TimerEntry>,
    /// LWPs the script created, by name (creation order; a name is
    /// reused only after its LWP exited).
    lwps: Vec<LwpEntry>,
    /// Signals whose disposition is the script's handler.
    handled: std::collections::BTreeSet<i32>,
    /// The reporting handler, made at the first `handle`.
    handler: Option<SigHandler>,
    /// Ids of the script's live timers, shared with the handler: it calls
    /// `timer_getoverrun` only for these. (An orphan signal's id may
    /// belong to a tracer's timer by the time the handler runs; asking it
    /// would make the trace depend on thread timing.)
    live_ids: LiveIds,
    tx: Sender<Note>,
    rx: Receiver<Note>,
}

/// See [`Proc::live_ids`].
type LiveIds = std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<i32>>>;

/// Updates a [`LiveIds`] (a poisoned lock is only a panicked handler's).
fn set_live(ids: &LiveIds, id: i32, live: bool) {
    let mut ids = ids
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if live {
        ids.insert(id);
    } else {
        ids.remove(&id);
    }
}

/// An LWP the script named.
#[derive(Debug)]
struct LwpEntry {
    name: String,
    id: i32,
    live: bool,
}

impl Proc {
    fn thread_timers(&self) -> bool {
        !self.exited && self.timers.iter().any(|t| t.live && t.thread)
    }

    /// The highest caught signal that is not blocked (the handler
    /// barrier's signal), if any.
    fn handler_barrier_signal(&self) -> Option<i32> {
        if self.exited || self.handled.is_empty() {
            return None;
        }
        let blocked = SigSet(self.handle.raw().sigprocmask(SIG_BLOCK, None).ok()?);
        self.handled
            .iter()
            .rev()
            .copied()
            .find(|&s| !blocked.contains(s))
    }

    /// The timer a handler run belongs to: the latest the script made
    /// with this id, signal and value ([`UNNAMED`] if none).
    fn handled_timer(&self, info: &Siginfo) -> usize {
        self.timers
            .iter()
            .rposition(|t| {
                t.id == info.si_timerid && t.signal == Some((info.si_signo, info.si_value))
            })
            .unwrap_or(UNNAMED)
    }

    /// An LWP reference: (entry index if named, id).
    fn lwp_ref(&self, r: &Ref) -> Result<(Option<usize>, i32), String> {
        match r {
            Ref::Name(n) => self
                .lwps
                .iter()
                .rposition(|l| &l.name == n)
                .map(|li| (Some(li), self.lwps[li].id))
                .ok_or_else(|| {
                    format!(
                        "unknown LWP `{n}` in process `{}` (create it with `lwp create`; \
                         the first LWP is `1`)",
                        self.name
                    )
                }),
            Ref::Id(id) => Ok((self.lwps.iter().rposition(|l| l.live && l.id == *id), *id)),
        }
    }
}

/// A port the script named.
#[derive(Debug, Clone, Copy)]
struct PortEntry {
    id: i32,
    live: bool,
}

/// A command's trace: its call line's parts and the events it caused.
struct Outcome {
    proc: String,
    call: String,
    result: String,
}

impl Outcome {
    fn new(proc: &str, call: String, result: String) -> Outcome {
        Outcome {
            proc: proc.to_owned(),
            call,
            result,
        }
    }
}

fn errno_or<T>(r: Result<T, Errno>, f: impl FnOnce(T) -> String) -> String {
    match r {
        Ok(v) => f(v),
        Err(e) => fmt_errno(e),
    }
}

fn ok_or_errno(r: Result<(), Errno>) -> String {
    errno_or(r, |()| "ok".to_owned())
}

/// A trace line for a call.
pub fn call_line(time: i64, proc: &str, call: &str, result: &str) -> String {
    format!("{:>12}  {proc:<3} {call} => {result}", fmt_time(time))
}

fn fmt_spec(s: &Itimerspec) -> String {
    format!(
        "value={} interval={}",
        fmt_duration(timespec_ns(&s.it_value)),
        fmt_duration(timespec_ns(&s.it_interval))
    )
}

fn fmt_siginfo(i: &Siginfo) -> String {
    let code = match i.si_code {
        SI_TIMER => "SI_TIMER".to_owned(),
        SI_QUEUE => "SI_QUEUE".to_owned(),
        c => format!("code={c}"),
    };
    format!(
        "{} {code} timerid={} value={} overrun={}",
        fmt_signal(i.si_signo),
        i.si_timerid,
        i.si_value,
        i.si_overrun
    )
}

fn fmt_port_event(e: &PortEvent) -> String {
    let source = match i32::from(e.portev_source) {
        PORT_SOURCE_TIMER => "TIMER".to_owned(),
        PORT_SOURCE_USER => "USER".to_owned(),
        PORT_SOURCE_ALERT => "ALERT".to_owned(),
        s => s.to_string(),
    };
    format!(
        "source={source} object={} events={} user={}",
        e.portev_object, e.portev_events, e.portev_user
    )
}

/// The status line's binding: nothing for the first LWP, where every
/// timer starts (so older traces read the same), else ` lwp=N`, or
/// ` lwp=none` once the LWP it was bound to exited.
fn fmt_lwp(lwp: Option<LwpId>) -> String {
    match lwp {
        Some(LwpId::MAIN) => String::new(),
        Some(LwpId(n)) => format!(" lwp={n}"),
        None => " lwp=none".to_owned(),
    }
}

fn fmt_flags(f: ItFlags) -> String {
    let mut names = Vec::new();
    if f.contains(ItFlags::SIGNAL) {
        names.push("SIGNAL");
    }
    if f.contains(ItFlags::PORT) {
        names.push("PORT");
    }
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join("|")
    }
}

/// A signal set from script signals; `EINVAL` for one outside 1..NSIG (as
/// `sigaddset` would fail).
fn sigset(sigs: &[i32]) -> Result<SigSet, Errno> {
    sigs.iter().try_fold(SigSet::EMPTY, |s, &n| s.with(n))
}

fn sig_list(sigs: &[i32]) -> String {
    let names: Vec<String> = sigs.iter().map(|&s| fmt_signal(s)).collect();
    format!("{{{}}}", names.join(","))
}

/// A scenario interpreter on its own simulated kernel. Feed it lines with
/// [`Session::exec`]; each trace line goes to the sink as it is made.
pub struct Session {
    config: KernelConfig,
    kernel: Option<SimKernel>,
    procs: Vec<Proc>,
    ports: BTreeMap<String, PortEntry>,
    /// The previous command's result, for `expect`.
    last: Option<String>,
    shown: Shown,
    next_token: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("booted", &self.kernel.is_some())
            .field("processes", &self.procs.len())
            .finish_non_exhaustive()
    }
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

impl Session {
    /// A session; its kernel boots at the first command (or `boot`).
    pub fn new() -> Session {
        Session {
            config: KernelConfig {
                timer_max: SCRIPT_TIMER_MAX,
                port_max: PORT_MAX_DEFAULT,
                port_max_events: PORT_MAX_EVENTS_DEFAULT,
            },
            kernel: None,
            procs: Vec::new(),
            ports: BTreeMap::new(),
            last: None,
            shown: Shown {
                limit: Some(DEFAULT_LIMIT),
            },
            next_token: 0,
        }
    }

    /// Model time, ns since boot (0 before boot).
    pub fn now_ns(&self) -> i64 {
        self.kernel.as_ref().map_or(0, |k| k.mono_ns())
    }

    /// Runs one line. Trace lines go to `out` as they are made. `Err` is a
    /// script error (a parse error, an unknown name, a failed
    /// expectation): the message, without the `file:line:` prefix.
    pub fn exec(&mut self, text: &str, out: &mut dyn FnMut(&str)) -> Result<(), String> {
        let Some(line) = parse_line(text)? else {
            return Ok(());
        };
        match line.command {
            Command::Expect(want) => return self.check(&want),
            Command::Limit(n) => {
                self.shown.limit = n;
                return Ok(());
            }
            Command::Echo(text) => {
                out(&format!("# {text}"));
                return Ok(());
            }
            Command::Boot {
                timer_max,
                port_max,
                port_max_events,
            } => {
                if self.kernel.is_some() {
                    return Err("`boot` must come before every other command".to_owned());
                }
                if let Some(n) = timer_max {
                    self.config.timer_max = n;
                }
                if let Some(n) = port_max {
                    self.config.port_max = n;
                }
                if let Some(n) = port_max_events {
                    self.config.port_max_events = n;
                }
                self.boot()?;
                let call = format!(
                    "boot timer_max={} port_max={} port_max_events={}",
                    self.config.timer_max, self.config.port_max, self.config.port_max_events
                );
                out(&call_line(0, "-", &call, "ok"));
                self.last = Some("ok".to_owned());
            }
            command => {
                if self.kernel.is_none() {
                    self.boot()?;
                }
                let start = self.now_ns();
                let mut events = Vec::new();
                let o = self.run(command, &mut events)?;
                // Whatever the call made due now runs now.
                self.drive(&mut events, |k| k.settle().map(drop))?;
                out(&call_line(start, &o.proc, &o.call, &o.result));
                for l in self.shown.lines(&events, |p, t| {
                    let p = &self.procs[p];
                    (p.name.clone(), p.timers[t].name.clone())
                }) {
                    out(&l);
                }
                self.last = Some(o.result);
            }
        }
        match line.expect {
            Some(want) => self.check(&want),
            None => Ok(()),
        }
    }

    fn boot(&mut self) -> Result<(), String> {
        let k = Kernel::builder()
            .config(self.config.clone())
            .simulated()
            .map_err(|e| format!("boot: {e} (timer_max must be at least 1)"))?;
        self.kernel = Some(k);
        Ok(())
    }

    fn kernel(&self) -> &SimKernel {
        self.kernel
            .as_ref()
            .expect("booted before any command runs")
    }

    /// `expect`: the previous result equals `want`, or starts with it and
    /// a blank.
    fn check(&self, want: &str) -> Result<(), String> {
        let Some(got) = &self.last else {
            return Err("`expect` needs a command before it".to_owned());
        };
        if got == want || got.strip_prefix(want).is_some_and(|r| r.starts_with(' ')) {
            Ok(())
        } else {
            Err(format!("expected `{want}`, got `{got}`"))
        }
    }

    fn proc_index(&self, name: &str) -> Result<usize, String> {
        self.procs
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| format!("unknown process `{name}` (spawn it first)"))
    }

    /// A timer reference: (entry index if named or live with that id, id).
    fn timer_ref(&self, pi: usize, r: &Ref) -> Result<(Option<usize>, i32), String> {
        let p = &self.procs[pi];
        match r {
            Ref::Name(n) => p
                .timers
                .iter()
                .rposition(|t| &t.name == n)
                .map(|ti| (Some(ti), p.timers[ti].id))
                .ok_or_else(|| format!("unknown timer `{n}` in process `{}`", p.name)),
            Ref::Id(id) => Ok((p.timers.iter().rposition(|t| t.live && t.id == *id), *id)),
        }
    }

    fn port_ref(&self, r: &Ref) -> Result<i32, String> {
        match r {
            Ref::Name(n) => self
                .ports
                .get(n)
                .map(|e| e.id)
                .ok_or_else(|| format!("unknown port `{n}` (create it with `port create`)")),
            Ref::Id(id) => Ok(*id),
        }
    }

    /// Runs one command (not expect/limit/echo/boot).
    fn run(&mut self, command: Command, events: &mut Vec<Event>) -> Result<Outcome, String> {
        Ok(match command {
            Command::Spawn { name, root, uid } => {
                if self.procs.iter().any(|p| p.name == name) {
                    return Err(format!("process `{name}` exists already"));
                }
                let cred = if root {
                    Credentials::ROOT
                } else {
                    Credentials::user(uid)
                };
                let handle = self.kernel().spawn_process(cred);
                let pid = handle.pid().0;
                let (tx, rx) = mpsc::channel();
                self.procs.push(Proc {
                    name: name.clone(),
                    handle,
                    exited: false,
                    timers: Vec::new(),
                    lwps: Vec::new(),
                    handled: Default::default(),
                    handler: None,
                    live_ids: Default::default(),
                    tx,
                    rx,
                });
                let call = if root {
                    "spawn root".to_owned()
                } else {
                    format!("spawn uid={uid}")
                };
                Outcome::new(&name, call, pid.to_string())
            }
            Command::Exit(name) => {
                let pi = self.proc_index(&name)?;
                let p = &mut self.procs[pi];
                p.handle.exit();
                p.exited = true;
                for t in &mut p.timers {
                    t.live = false;
                }
                p.live_ids
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clear();
                Outcome::new(&name, "exit".to_owned(), "ok".to_owned())
            }
            Command::Create {
                proc,
                timer,
                clock,
                notify,
            } => self.create(&proc, timer, clock, notify)?,
            Command::Settime {
                proc,
                timer,
                value,
                interval,
            } => self.settime(&proc, &timer, value, interval)?,
            Command::Gettime(proc, timer) => {
                let pi = self.proc_index(&proc)?;
                let (_, id) = self.timer_ref(pi, &timer)?;
                let r = self.procs[pi].handle.raw().timer_gettime(id);
                let call = format!("timer_gettime {}", timer.show());
                Outcome::new(&proc, call, errno_or(r, |s| fmt_spec(&s)))
            }
            Command::Getoverrun(proc, timer) => {
                let pi = self.proc_index(&proc)?;
                let (_, id) = self.timer_ref(pi, &timer)?;
                let r = self.procs[pi].handle.raw().timer_getoverrun(id);
                let call = format!("timer_getoverrun {}", timer.show());
                Outcome::new(&proc, call, errno_or(r, |n| n.to_string()))
            }
            Command::Delete(proc, timer) => {
                let pi = self.proc_index(&proc)?;
                let (ti, id) = self.timer_ref(pi, &timer)?;
                let r = self.procs[pi].handle.timer_delete(TimerId(id));
                if let (Ok(()), Some(ti)) = (r, ti) {
                    self.procs[pi].timers[ti].live = false;
                    set_live(&self.procs[pi].live_ids, id, false);
                }
                Outcome::new(
                    &proc,
                    format!("timer_delete {}", timer.show()),
                    ok_or_errno(r),
                )
            }
            Command::Status(proc, timer) => {
                let pi = self.proc_index(&proc)?;
                let (_, id) = self.timer_ref(pi, &timer)?;
                let r = self.procs[pi].handle.timer_status(id);
                let call = format!("timer_status {}", timer.show());
                Outcome::new(
                    &proc,
                    call,
                    errno_or(r, |s| {
                        format!(
                            "flags={} pending={} overrun={}{}",
                            fmt_flags(s.flags),
                            s.pending,
                            s.overrun,
                            fmt_lwp(s.lwp)
                        )
                    }),
                )
            }
            Command::Stats(proc) => {
                let pi = self.proc_index(&proc)?;
                let s = self.procs[pi].handle.stats();
                Outcome::new(
                    &proc,
                    "stats".to_owned(),
                    format!(
                        "timers={} sig_entries={} lwps={}",
                        s.timers, s.sig_entries, s.lwps
                    ),
                )
            }
            Command::Advance(d) => {
                let now = self.now_ns();
                let target = i64::try_from(i128::from(now) + d)
                    .map_err(|_| "`advance`: model time would overflow".to_owned())?;
                let mut steps = 0;
                while self.drive(events, |k| {
                    k.settle()?;
                    match k.host().armed_deadline()? {
                        Some(at) if at <= target => k.step_to_next_deadline().map(|_| true),
                        _ => Ok(false),
                    }
                })? {
                    steps += 1;
                    if steps > MAX_STEPS_PER_COMMAND {
                        return Err(format!(
                            "`advance` stopped after {MAX_STEPS_PER_COMMAND} deadlines: \
                             advance in smaller steps"
                        ));
                    }
                }
                let rest = target - self.now_ns();
                self.drive(events, |k| k.advance_ns(rest).map(drop))?;
                Outcome::new(
                    "-",
                    format!("advance {}", fmt_duration(d)),
                    format!("now {}", fmt_time(self.now_ns())),
                )
            }
            Command::Step(n) => {
                let mut done = 0;
                for _ in 0..n {
                    if self.drive(events, |k| k.step_to_next_deadline())?.is_none() {
                        break;
                    }
                    done += 1;
                }
                let call = if n == 1 {
                    "step".to_owned()
                } else {
                    format!("step {n}")
                };
                let result = match done {
                    0 => "nothing armed".to_owned(),
                    d if d == n => format!("now {}", fmt_time(self.now_ns())),
                    d => format!(
                        "now {} (nothing armed after {d} steps)",
                        fmt_time(self.now_ns())
                    ),
                };
                Outcome::new("-", call, result)
            }
            Command::Consume(proc, sigs) => {
                let pi = self.proc_index(&proc)?;
                let set = if sigs.is_empty() {
                    Ok(SigSet::FULL)
                } else {
                    sigset(&sigs)
                };
                let r =
                    set.and_then(|s| self.procs[pi].handle.sigtimedwait(s, Some(Duration::ZERO)));
                let what = if sigs.is_empty() {
                    "all".to_owned()
                } else {
                    sig_list(&sigs)
                };
                Outcome::new(
                    &proc,
                    format!("sigtimedwait {what} timeout=0"),
                    errno_or(r, |i| fmt_siginfo(&i)),
                )
            }
            Command::Pending(proc) => {
                let pi = self.proc_index(&proc)?;
                let r = self.procs[pi].handle.sigpending();
                Outcome::new(&proc, "sigpending".to_owned(), errno_or(r, fmt_sigset))
            }
            Command::Block(proc, sigs) => self.mask(&proc, &sigs, true)?,
            Command::Unblock(proc, sigs) => self.mask(&proc, &sigs, false)?,
            Command::Ignore(proc, sig) => self.disposition(&proc, sig, true)?,
            Command::DefaultAction(proc, sig) => self.disposition(&proc, sig, false)?,
            Command::Handle(proc, sig) => self.handle(&proc, sig)?,
            Command::Lwp { proc, op } => self.lwp(&proc, op, events)?,
            Command::Port { proc, port, op } => self.port(&proc, &port, op)?,
            Command::ClockSettime(proc, clock, value) => {
                let pi = self.proc_index(&proc)?;
                let h = &self.procs[pi].handle;
                let value = match value {
                    ClockValue::At(t) => Ok(t),
                    ClockValue::Shift(d) => h
                        .raw()
                        .clock_gettime(clock)
                        .map(|now| TimeArg::Ns(timespec_ns(&now) + d)),
                };
                let (shown, r) = match value {
                    Ok(t) => (
                        t.fmt_reading(),
                        t.to_timespec()
                            .and_then(|ts| h.raw().clock_settime(clock, &ts)),
                    ),
                    Err(e) => ("(now unreadable)".to_owned(), Err(e)),
                };
                Outcome::new(
                    &proc,
                    format!("clock_settime {} {shown}", fmt_clock(clock)),
                    ok_or_errno(r),
                )
            }
            Command::ClockGettime(proc, clock) => {
                let pi = self.proc_index(&proc)?;
                let r = self.procs[pi].handle.raw().clock_gettime(clock);
                Outcome::new(
                    &proc,
                    format!("clock_gettime {}", fmt_clock(clock)),
                    errno_or(r, |t| fmt_reading(timespec_ns(&t))),
                )
            }
            Command::ClockGetres(proc, clock) => {
                let pi = self.proc_index(&proc)?;
                let r = self.procs[pi].handle.raw().clock_getres(clock);
                Outcome::new(
                    &proc,
                    format!("clock_getres {}", fmt_clock(clock)),
                    errno_or(r, |t| fmt_duration(timespec_ns(&t))),
                )
            }
            Command::Vm(VmOp::Start) => {
                self.kernel().vm_start();
                Outcome::new("-", "vm_start".to_owned(), "ok".to_owned())
            }
            Command::Vm(VmOp::Stop) => {
                self.kernel().vm_stop();
                Outcome::new("-", "vm_stop".to_owned(), "ok".to_owned())
            }
            Command::Vm(VmOp::Warp(dt)) => {
                // One instant: the timers it makes due expire late, together.
                let r = self.drive(events, |k| Ok(k.vm_warp_ns(dt)))?;
                let call = format!("vm_warp {}", fmt_duration(i128::from(dt)));
                Outcome::new("-", call, self.vm_result(r))
            }
            Command::Vm(VmOp::Step(dt)) => {
                let r = self.vm_step(dt, events)?;
                let call = format!("vm_step {}", fmt_duration(i128::from(dt)));
                Outcome::new("-", call, self.vm_result(r))
            }
            Command::Boot { .. } | Command::Expect(_) | Command::Limit(_) | Command::Echo(_) => {
                unreachable!("handled by exec")
            }
        })
    }

    /// The VM clock (`CLOCK_VM` = VIRTUAL), guest ns.
    fn vm_now(&self) -> i64 {
        self.kernel().host_kind().clocks().guest().now()
    }

    /// A `vm warp` / `vm step` result: `ok vm=READING` (the VM clock
    /// after it), or the errno.
    fn vm_result(&self, r: Result<(), Errno>) -> String {
        errno_or(r, |()| {
            format!("ok vm={}", fmt_reading(i128::from(self.vm_now())))
        })
    }

    /// `vm step D`: one VM deadline at a time, each in its own instant
    /// (as `advance` does for host deadlines), so every guest instant's
    /// expiries are seen on their own; the facade's step from each
    /// deadline to the next runs exactly that deadline's timers. The call's
    /// errnos (negative D, a running VM, past the end of guest time) come
    /// from the first call.
    fn vm_step(&mut self, dt: i64, events: &mut Vec<Event>) -> Result<Result<(), Errno>, String> {
        let target = self.vm_now().checked_add(dt);
        let Some(target) = target.filter(|_| dt >= 0 && !self.kernel().vm_running()) else {
            return Ok(self.kernel().vm_step_ns(dt));
        };
        let mut steps = 0;
        loop {
            let now = self.vm_now();
            let next = self
                .kernel()
                .host_kind()
                .clocks()
                .guest()
                .deadline()
                .filter(|&at| at <= target);
            let to = next.unwrap_or(target).max(now);
            let r = self.drive(events, |k| Ok(k.vm_step_ns(to - now)))?;
            if r.is_err() || next.is_none() || self.kernel().vm_running() {
                return Ok(r);
            }
            steps += 1;
            if steps > MAX_STEPS_PER_COMMAND {
                return Err(format!(
                    "`vm step` stopped after {MAX_STEPS_PER_COMMAND} deadlines: \
                     step in smaller steps"
                ));
            }
        }
    }

    fn create(
        &mut self,
        proc: &str,
        timer: String,
        clock: i32,
        notify: Notify,
    ) -> Result<Outcome, String> {
        let pi = self.proc_index(proc)?;
        if let Some(t) = self.procs[pi]
            .timers
            .iter()
            .find(|t| t.name == timer && t.live)
        {
            return Err(format!(
                "timer `{timer}` of `{proc}` exists already (id {}): delete it first or pick \
                 another name",
                t.id
            ));
        }
        let mut call = format!("timer_create {timer} clock={}", fmt_clock(clock));
        let p = &self.procs[pi];
        let raw_ev = match &notify {
            Notify::Default => {
                call.push_str(" notify=default");
                None
            }
            Notify::None => {
                call.push_str(" notify=none");
                Some(Sigevent {
                    sigev_notify: SIGEV_NONE,
                    ..Sigevent::default()
                })
            }
            Notify::Signal { signo, value } => {
                call.push_str(&format!(
                    " notify=signal signo={} value={value}",
                    fmt_signal(*signo)
                ));
                Some(Sigevent {
                    sigev_notify: SIGEV_SIGNAL,
                    sigev_signo: *signo,
                    sigev_value: *value,
                    ..Sigevent::default()
                })
            }
            Notify::Port { port, user } => {
                call.push_str(&format!(" notify=port port={} user={user}", port.show()));
                Some(Sigevent {
                    sigev_notify: SIGEV_PORT,
                    sigev_port: PortNotify {
                        portnfy_port: self.port_ref(port)?,
                        portnfy_user: *user,
                    },
                    ..Sigevent::default()
                })
            }
            Notify::Thread { value } => {
                call.push_str(&format!(" notify=thread value={value}"));
                None
            }
        };
        let r = match notify {
            Notify::Thread { value } => {
                let tx = p.tx.clone();
                let ev = SigEvent::thread(value, move |me, n| {
                    let overrun = me.timer_getoverrun(n.timer).unwrap_or(-1);
                    // The interpreter may be gone at teardown.
                    let _ = tx.send(Note::Callback {
                        tid: n.timer.0,
                        value: n.value,
                        expirations: n.expirations,
                        overrun,
                    });
                });
                p.handle.timer_create(ClockId(clock), Some(ev)).map(|t| t.0)
            }
            Notify::Default => p.handle.raw().timer_create(clock, None),
            _ => p.handle.raw().timer_create(clock, raw_ev.as_ref()),
        };
        if let Ok(id) = r {
            let signal = match notify {
                // No sigevent: SIGALRM with the timer id as its value.
                Notify::Default => Some((SIGALRM, u64::try_from(id).unwrap_or(0))),
                Notify::Signal { signo, value } => Some((signo, value)),
                _ => None,
            };
            set_live(&self.procs[pi].live_ids, id, true);
            self.procs[pi].timers.push(TimerEntry {
                name: timer,
                id,
                clock,
                thread: matches!(notify, Notify::Thread { .. }),
                signal,
                live: true,
            });
        }
        Ok(Outcome::new(proc, call, errno_or(r, |id| id.to_string())))
    }

    fn settime(
        &mut self,
        proc: &str,
        timer: &Ref,
        value: SetValue,
        interval: TimeArg,
    ) -> Result<Outcome, String> {
        let pi = self.proc_index(proc)?;
        let (ti, id) = self.timer_ref(pi, timer)?;
        let h = &self.procs[pi].handle;
        let (flags, value) = match value {
            SetValue::Relative(t) => (0, Ok(t)),
            SetValue::Absolute(t) => (TIMER_ABSTIME, Ok(t)),
            SetValue::AbsoluteFromNow(d) => {
                let Some(ti) = ti else {
                    return Err(format!(
                        "`abs={}` needs a timer the script created (to know its clock)",
                        fmt_duration(d)
                    ));
                };
                let clock = self.procs[pi].timers[ti].clock;
                (
                    TIMER_ABSTIME,
                    h.raw()
                        .clock_gettime(clock)
                        .map(|now| TimeArg::Ns(timespec_ns(&now) + d)),
                )
            }
        };
        let abs = flags == TIMER_ABSTIME;
        let (shown, r) = match value {
            Ok(v) => {
                let shown = if abs {
                    format!("abs value={}", v.fmt_reading())
                } else {
                    format!("value={}", v.fmt_duration())
                };
                let spec = v.to_timespec().and_then(|value| {
                    Ok(Itimerspec {
                        it_value: value,
                        it_interval: interval.to_timespec()?,
                    })
                });
                (
                    shown,
                    spec.and_then(|s| h.raw().timer_settime(id, flags, &s)),
                )
            }
            Err(e) => ("abs value=(clock unreadable)".to_owned(), Err(e)),
        };
        let call = format!(
            "timer_settime {} {shown} interval={}",
            timer.show(),
            interval.fmt_duration()
        );
        Ok(Outcome::new(
            proc,
            call,
            errno_or(r, |old| format!("old {}", fmt_spec(&old))),
        ))
    }

    fn mask(&mut self, proc: &str, sigs: &[i32], block: bool) -> Result<Outcome, String> {
        let pi = self.proc_index(proc)?;
        let how = if block { SIG_BLOCK } else { SIG_UNBLOCK };
        let r = sigset(sigs).and_then(|s| {
            self.procs[pi]
                .handle
                .raw()
                .sigprocmask(how, Some(s.0))
                .map(drop)
        });
        let name = if block { "SIG_BLOCK" } else { "SIG_UNBLOCK" };
        Ok(Outcome::new(
            proc,
            format!("sigprocmask {name} {}", sig_list(sigs)),
            ok_or_errno(r),
        ))
    }

    fn disposition(&mut self, proc: &str, sig: i32, ignore: bool) -> Result<Outcome, String> {
        let pi = self.proc_index(proc)?;
        let (handler, name) = if ignore {
            (SIG_IGN, "SIG_IGN")
        } else {
            (SIG_DFL, "SIG_DFL")
        };
        let r = self.procs[pi]
            .handle
            .raw()
            .sigaction(sig, handler)
            .map(drop);
        if r.is_ok() {
            self.procs[pi].handled.remove(&sig);
        }
        Ok(Outcome::new(
            proc,
            format!("sigaction {} {name}", fmt_signal(sig)),
            ok_or_errno(r),
        ))
    }

    /// `handle P SIG`: installs the process's reporting handler.
    fn handle(&mut self, proc: &str, sig: i32) -> Result<Outcome, String> {
        let pi = self.proc_index(proc)?;
        let p = &mut self.procs[pi];
        let handler = p
            .handler
            .get_or_insert_with(|| {
                let tx = std::sync::Mutex::new(p.tx.clone());
                let live = p.live_ids.clone();
                SigHandler::new(move |me, info| {
                    let tid = info.si_timerid;
                    let is_live = live
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .contains(&tid);
                    let getoverrun = is_live.then(|| me.timer_getoverrun(TimerId(tid)));
                    let note = Note::Handled {
                        info: *info,
                        getoverrun,
                    };
                    // The interpreter may be gone at teardown.
                    let _ = tx.lock().map(|tx| tx.send(note));
                })
            })
            .clone();
        let r = p.handle.sigaction(sig, Disposition::Handler(handler));
        if r.is_ok() {
            p.handled.insert(sig);
        }
        Ok(Outcome::new(
            proc,
            format!("sigaction {} handler", fmt_signal(sig)),
            ok_or_errno(r.map(drop)),
        ))
    }

    /// `lwp create`, `lwp exit`, `lwp bind`.
    fn lwp(&mut self, proc: &str, op: LwpOp, events: &mut Vec<Event>) -> Result<Outcome, String> {
        let pi = self.proc_index(proc)?;
        let (call, result) = match op {
            LwpOp::Create(name) => {
                let p = &mut self.procs[pi];
                if let Some(l) = p.lwps.iter().find(|l| l.name == name && l.live) {
                    return Err(format!(
                        "LWP `{name}` of `{proc}` exists already (id {}): end it with \
                         `lwp exit` first or pick another name",
                        l.id
                    ));
                }
                let r = p.handle.lwp_create();
                if let Ok(id) = r {
                    p.lwps.push(LwpEntry {
                        name: name.clone(),
                        id: id.0,
                        live: true,
                    });
                }
                (
                    format!("lwp_create {name}"),
                    errno_or(r, |id| id.0.to_string()),
                )
            }
            LwpOp::Exit(lwp) => {
                let (li, id) = self.procs[pi].lwp_ref(&lwp)?;
                // The timers bound to it, to show each unbinding.
                let bound = self.bound_to(pi, id);
                let p = &mut self.procs[pi];
                let r = p.handle.lwp_exit(LwpId(id));
                if r.is_ok() {
                    if let Some(li) = li {
                        p.lwps[li].live = false;
                    }
                    let time = self.now_ns();
                    for ti in bound {
                        let unbound = self.procs[pi]
                            .handle
                            .timer_status(self.procs[pi].timers[ti].id)
                            .is_ok_and(|s| s.lwp.is_none());
                        if unbound {
                            events.push(Event {
                                time,
                                proc: pi,
                                timer: ti,
                                kind: EventKind::Unbound { lwp: id },
                            });
                        }
                    }
                }
                (format!("lwp_exit {}", lwp.show()), ok_or_errno(r))
            }
            LwpOp::Bind { timer, lwp } => {
                let (_, tid) = self.timer_ref(pi, &timer)?;
                let (_, lid) = self.procs[pi].lwp_ref(&lwp)?;
                let r = self.procs[pi].handle.raw().timer_lwpbind(tid, lid);
                (
                    format!("timer_lwpbind {} lwp={}", timer.show(), lwp.show()),
                    ok_or_errno(r),
                )
            }
        };
        Ok(Outcome::new(proc, call, result))
    }

    /// The live timers of process `pi` bound to LWP `lwp`.
    fn bound_to(&self, pi: usize, lwp: i32) -> Vec<usize> {
        let p = &self.procs[pi];
        if p.exited {
            return Vec::new();
        }
        (0..p.timers.len())
            .filter(|&ti| {
                let t = &p.timers[ti];
                t.live
                    && p.handle
                        .timer_status(t.id)
                        .is_ok_and(|s| s.lwp == Some(LwpId(lwp)))
            })
            .collect()
    }

    fn port(&mut self, proc: &str, port: &Ref, op: PortOp) -> Result<Outcome, String> {
        let pi = self.proc_index(proc)?;
        let shown = port.show();
        if let PortOp::Create = op {
            let Ref::Name(name) = port else {
                unreachable!("the parser gives port create a name")
            };
            if self.ports.get(name).is_some_and(|e| e.live) {
                return Err(format!(
                    "port `{name}` exists already: close it first or pick another name"
                ));
            }
            let r = self.procs[pi].handle.port_create();
            if let Ok(id) = r {
                self.ports.insert(
                    name.clone(),
                    PortEntry {
                        id: id.0,
                        live: true,
                    },
                );
            }
            return Ok(Outcome::new(
                proc,
                format!("port_create {shown}"),
                errno_or(r, |id| id.0.to_string()),
            ));
        }
        let id = PortId(self.port_ref(port)?);
        let h = &self.procs[pi].handle;
        let (call, result) = match op {
            PortOp::Create => unreachable!("handled above"),
            PortOp::Close => {
                let r = h.port_close(id);
                if let (Ok(()), Ref::Name(n)) = (r, port)
                    && let Some(e) = self.ports.get_mut(n)
                {
                    e.live = false;
                }
                (format!("port_close {shown}"), ok_or_errno(r))
            }
            PortOp::Get => (
                format!("port_get {shown} timeout=0"),
                errno_or(h.port_get(id, Some(Duration::ZERO)), |e| fmt_port_event(&e)),
            ),
            PortOp::Getn { max, nget } => (
                format!("port_getn {shown} max={max} nget={nget} timeout=0"),
                errno_or(h.port_getn(id, max, nget, Some(Duration::ZERO)), |got| {
                    let mut s = if got.timed_out {
                        format!("ETIME n={}", got.events.len())
                    } else {
                        format!("n={}", got.events.len())
                    };
                    for e in &got.events {
                        s.push_str(&format!(" {{{}}}", fmt_port_event(e)));
                    }
                    s
                }),
            ),
            PortOp::Send { events, user } => (
                format!("port_send {shown} events={events} user={user}"),
                ok_or_errno(h.port_send(id, events, user)),
            ),
            PortOp::Alert {
                update,
                events,
                user,
            } => {
                let (mode, name) = if update {
                    (AlertMode::Update, "UPDATE")
                } else {
                    (AlertMode::Set, "SET")
                };
                (
                    format!("port_alert {shown} {name} events={events} user={user}"),
                    ok_or_errno(h.port_alert(id, mode, events, user)),
                )
            }
            PortOp::Pending => (
                format!("port_pending {shown}"),
                errno_or(h.port_pending(id), |n| n.to_string()),
            ),
        };
        Ok(Outcome::new(proc, call, result))
    }

    /// `pending` of every live signal or port timer, by (process, timer).
    fn snapshot(&self) -> BTreeMap<(usize, usize), u64> {
        let mut snap = BTreeMap::new();
        for (pi, p) in self.procs.iter().enumerate() {
            if p.exited {
                continue;
            }
            for (ti, t) in p.timers.iter().enumerate() {
                if t.live
                    && !t.thread
                    && let Ok(s) = p.handle.timer_status(t.id)
                {
                    snap.insert((pi, ti), s.pending);
                }
            }
        }
        snap
    }

    /// Runs one driving call of the simulated host (everything it fires
    /// happens at one instant, or is a plain `advance` with nothing
    /// armed on the way), waits for the SIGEV_THREAD callbacks it caused,
    /// and records what expired.
    fn drive<R>(
        &mut self,
        events: &mut Vec<Event>,
        f: impl FnOnce(&SimKernel) -> Result<R, crate::hostalarm::SimError>,
    ) -> Result<R, String> {
        let before = self.snapshot();
        let r = f(self.kernel()).map_err(|e| format!("simulated host: {e}"))?;
        let notes = self.quiesce()?;
        let after = self.snapshot();
        let time = self.now_ns();
        let mut here = Vec::new();
        for (&(proc, timer), &pending) in &after {
            let was = before.get(&(proc, timer)).copied().unwrap_or(0);
            if pending > was {
                here.push(Event {
                    time,
                    proc,
                    timer,
                    kind: EventKind::Expired {
                        delta: pending - was,
                        pending,
                    },
                });
            }
        }
        let mut handled = Vec::new();
        for (proc, note) in notes {
            if let Note::Handled { info, getoverrun } = note {
                handled.push(Event {
                    time,
                    proc,
                    timer: self.procs[proc].handled_timer(&info),
                    kind: EventKind::Handler {
                        signo: info.si_signo,
                        timerid: info.si_timerid,
                        value: info.si_value,
                        overrun: info.si_overrun,
                        getoverrun,
                    },
                });
                continue;
            }
            let Note::Callback {
                tid,
                value,
                expirations,
                overrun,
            } = note
            else {
                continue;
            };
            let Some(timer) = self.procs[proc]
                .timers
                .iter()
                .rposition(|t| t.live && t.thread && t.id == tid)
            else {
                continue;
            };
            here.push(Event {
                time,
                proc,
                timer,
                kind: EventKind::Callback {
                    value,
                    expirations,
                    overrun,
                },
            });
        }
        here.sort_by_key(|e| (e.proc, e.timer));
        events.extend(here);
        // Handler runs by process, lowest signal first, in the order they
        // ran within a signal (FIFO: the order the signals were queued).
        // That is the order the delivery thread runs what is queued; when
        // expirations at one instant race with the thread, it may have run
        // a higher signal first, and the trace shows the canonical order.
        handled.sort_by_key(|e| match e.kind {
            EventKind::Handler { signo, .. } => (e.proc, signo),
            _ => (e.proc, 0),
        });
        events.extend(handled);
        Ok(r)
    }

    /// Waits until every callback and handler due so far has run, in
    /// every process with a SIGEV_THREAD timer or a caught signal that is
    /// not blocked (see the module docs); returns what the callbacks and
    /// handlers reported, by process.
    fn quiesce(&mut self) -> Result<Vec<(usize, Note)>, String> {
        let mut notes = Vec::new();
        for pi in 0..self.procs.len() {
            if self.procs[pi].thread_timers() {
                self.barrier(pi, &mut notes)?;
            }
            if let Some(signo) = self.procs[pi].handler_barrier_signal() {
                self.handler_barrier(pi, signo, &mut notes)?;
            }
            // Handler runs the barrier did not wait for: none, unless a
            // signal was handled by a process whose every caught signal is
            // blocked again. Collect them all the same.
            while let Ok(n) = self.procs[pi].rx.try_recv() {
                notes.push((pi, n));
            }
        }
        Ok(notes)
    }

    /// A clock of the process that reads past 0, for arming a barrier at
    /// an absolute time already reached.
    fn barrier_clock(h: &Process, tracer: &str) -> Result<i32, String> {
        [CLOCK_REALTIME, CLOCK_HIGHRES]
            .into_iter()
            .find(|&c| h.clock_gettime(ClockId(c)).is_ok_and(|t| !t.is_zero()))
            .ok_or_else(|| {
                format!("the {tracer} tracer needs a clock reading past 0 (set realtime later)")
            })
    }

    /// Waits on process `pi`'s channel until `done` says a note is the
    /// barrier's; keeps every other note in `notes`.
    fn await_barrier(
        &self,
        pi: usize,
        notes: &mut Vec<(usize, Note)>,
        what: &str,
        done: impl Fn(&Note) -> bool,
    ) -> Result<(), String> {
        let p = &self.procs[pi];
        loop {
            match p.rx.recv_timeout(PATIENCE) {
                Ok(n) if done(&n) => return Ok(()),
                Ok(Note::Barrier(_)) => {}
                Ok(n) => notes.push((pi, n)),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "the {what} of `{}` did not finish within {PATIENCE:?}",
                        p.name
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    unreachable!("the session holds a sender")
                }
            }
        }
    }

    /// The handler barrier on signal `signo` (see the module docs).
    fn handler_barrier(
        &mut self,
        pi: usize,
        signo: i32,
        notes: &mut Vec<(usize, Note)>,
    ) -> Result<(), String> {
        let token = self.next_token;
        self.next_token += 1;
        let value = handler_barrier_value(token);
        let ev = SigEvent::Signal { signo, value };
        self.tracer_barrier(
            pi,
            ev,
            "signal handler",
            "signal handlers",
            notes,
            |n, bt| {
                matches!(n, Note::Handled { info, .. }
                if info.si_timerid == bt.0 && info.si_value == value && info.si_signo == signo)
            },
        )
    }

    fn barrier(&mut self, pi: usize, notes: &mut Vec<(usize, Note)>) -> Result<(), String> {
        let token = self.next_token;
        self.next_token += 1;
        let tx = self.procs[pi].tx.clone();
        let ev = SigEvent::thread(token, move |_, n| {
            let _ = tx.send(Note::Barrier(n.value));
        });
        self.tracer_barrier(
            pi,
            ev,
            "SIGEV_THREAD",
            "SIGEV_THREAD callbacks",
            notes,
            |n, _| matches!(n, Note::Barrier(t) if *t == token),
        )
    }

    /// One barrier: a tracer timer notifying by `ev`, created in process
    /// `pi`, armed at an absolute time already reached, the host settled,
    /// then notes collected until `done` sees the tracer's own; the tracer
    /// is deleted whatever happened. An exited process needs no barrier.
    /// `tracer` and `what` name it in errors.
    fn tracer_barrier(
        &mut self,
        pi: usize,
        ev: SigEvent,
        tracer: &str,
        what: &str,
        notes: &mut Vec<(usize, Note)>,
        done: impl Fn(&Note, TimerId) -> bool,
    ) -> Result<(), String> {
        let k = self.kernel.as_ref().expect("booted");
        let p = &self.procs[pi];
        let h = &p.handle;
        // An absolute time already reached on a clock that reads past 0.
        let clock = Self::barrier_clock(h, tracer)?;
        let bt = match h.timer_create(ClockId(clock), Some(ev)) {
            Ok(t) => t,
            Err(Errno::ESRCH) => return Ok(()),
            Err(e) => {
                return Err(format!(
                    "the {tracer} tracer needs one free timer slot in process `{}` \
                     ({}); raise `boot timer_max=`",
                    p.name,
                    fmt_errno(e)
                ));
            }
        };
        let armed = h
            .timer_settime(
                bt,
                Arm::Absolute,
                ItimerSpec::one_shot(Duration::from_nanos(1)),
            )
            .map_err(|e| format!("the {tracer} tracer could not arm: {}", fmt_errno(e)));
        let mut result = armed.and_then(|_| {
            k.settle()
                .map_err(|e| format!("simulated host: {e}"))
                .map(drop)
        });
        if result.is_ok() {
            result = self.await_barrier(pi, notes, what, |n| done(n, bt));
        }
        let _ = self.procs[pi].handle.timer_delete(bt);
        result
    }
}
