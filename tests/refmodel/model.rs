//! The reference model: the whole timer syscall surface of the simulated
//! host, written from POSIX, illumos and ARCHITECTURE.md's "Decided
//! semantics", not from the product's code.
//!
//! # What it holds
//!
//! * Three clocks as plain numbers: host monotonic time (HIGHRES, and the
//!   base of relative REALTIME timers), the model's wall clock (REALTIME
//!   reads, absolute REALTIME timers) and the VM clock (advances with
//!   monotonic time only while the VM runs).
//! * Per process: its timers by id, each with its clock, the base its
//!   current arming runs on, its deadline (absolute ns on that base), its
//!   interval, how it notifies, `pending` (expirations behind the
//!   notification now outstanding; 0 when none is) and the overrun latched
//!   at the last consumption; its signal queue, in generation order; the
//!   signals it ignores and the signals it blocks.
//!   Its LWPs (ids handed out from 1, never reused) and whether it has
//!   exited; each timer's LWP binding.
//! * The open event ports: owner, queue in posting order, the timers
//!   associated with them, the alert if the port is in alert mode.
//!
//! # Expirations, by arithmetic
//!
//! Time only moves in [`Model::advance`]. For every armed timer whose
//! deadline `d` is reached by the end of the step, the expirations in the
//! step are the deadlines `d, d + i, d + 2i, ...` up to the new time: `1 +
//! (now - d) / i` of them (one for a one-shot), and the timer's next
//! deadline is the first one after that. A timer notifies at its *first*
//! expiration in the step, if no notification is outstanding; the later
//! ones only add to `pending` (nothing consumes during a step).
//!
//! One exception needs the host's granularity: a signal that is ignored
//! (and not blocked) is discarded as it is generated, and its discarding
//! consumes it, latching the overrun. The simulated host runs every
//! deadline at its own instant, so a timer that was already late when the
//! step began reports its missed expirations in one go at the start, and
//! every later one on its own: the overrun left behind is that of the
//! last generation.
//!
//! # What is not ordered
//!
//! Notifications generated at the same instant (one pass of the host) have
//! no specified order among themselves. Each queued notification carries a
//! [`Batch`] tag: (the operation that moved time, the host instant). A
//! retrieval may return any of the oldest batch's entries of the wanted
//! kind; [`Model::apply`] offers them all as candidates and commits the
//! one the product returned.
//!
//! `port_getn` takes up to `max` events one after the other, each from
//! the oldest batch left (so its list is checked event by event against
//! the same candidates a run of `port_get`s would have).
//!
//! # Ports in alert mode
//!
//! While a port holds an alert, every retrieval returns the alert event
//! alone, at once, and consumes nothing (it is checked before "only other
//! processes' events": `EACCES`); `port_getn` with `max` 0 still counts
//! the queued events. `PORT_ALERT_UPDATE` on an alerted port is `EBUSY`,
//! events 0 leaves alert mode (with either flag), closing the port drops
//! the alert.
//!
//! # LWPs and exit
//!
//! A process starts with LWP 1; `lwp_create` hands out the next id, never
//! reusing one. Every timer is bound to LWP 1 at creation;
//! `timer_lwpbind` rebinds it to a live LWP; an LWP's exit leaves its
//! timers unbound (`lwp` none) and running. The last LWP's exit is the
//! process's exit (illumos `lwp_exit`). Exit deletes every timer as
//! `timer_delete` does (queued signals orphaned, its port events withdrawn
//! from every port, their slots freed), closes the ports the process owns
//! as `close` does (other processes' timers on them detached, their events
//! and the alert gone), discards the signal queue and leaves no LWP.
//!
//! A call on an exited process fails with `ESRCH`, after only the checks
//! the call makes on its arguments alone: the timespecs it converts
//! (`timer_settime`'s value and interval, `sigtimedwait`'s timeout),
//! `timer_create`'s clock id and sigevent, `timer_settime`'s flags, a
//! negative timer id, `sigaction`'s `SIG_*` value. `clock_gettime` still
//! reads the clocks (they are the system's), and `exit` again does
//! nothing.
//!
//! # Deliberately not modelled
//!
//! Blocking calls (only zero timeouts: a wait that sleeps ends when a
//! callout or another thread says so, which the sequential model cannot
//! schedule), signal handlers (a disposition is default or ignore: a
//! handler runs on the process's delivery thread, asynchronously to the
//! simulated host's passes, so how many notifications a periodic timer
//! makes within one step depends on the scheduler; and the raw layer
//! cannot install one), `SIGEV_THREAD` through the typed layer (its raw
//! form is modelled: the kernel treats it as `SIGEV_PORT`), the CPU-time
//! clocks' readings (their ids are used only to check that timers on them
//! fail), and steps of the host's own wall clock.

use std::collections::{BTreeMap, BTreeSet};

use itimer::Errno;
use itimer::abi::*;

pub use super::ops::{Op, Outcome};

/// Nanoseconds per second.
pub const SEC: i64 = 1_000_000_000;
/// The simulated host's wall clock at boot (its default).
pub const WALL0: i64 = 1_700_000_000 * SEC;
/// illumos' HIGHRES floor for unprivileged callers, ns.
pub const HIGHRES_FLOOR: i64 = 200_000;
/// Clock ids the kernel knows: the timer clocks and the CPU-time clocks.
pub const KNOWN_CLOCKS: [i32; 7] = [0, 1, 2, 3, 4, 5, CLOCK_VM];

/// Which clock a timer's current arming counts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// Host monotonic time.
    Mono,
    /// The model's wall clock.
    Wall,
    /// The VM clock.
    Vm,
}

/// How a timer notifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notify {
    /// `SIGEV_NONE`.
    Nothing,
    /// `SIGEV_SIGNAL` (or the default sigevent).
    Signal {
        /// Signal number.
        signo: i32,
        /// `si_value`.
        value: u64,
    },
    /// `SIGEV_PORT` (or raw `SIGEV_THREAD`).
    Port {
        /// The port id.
        port: i32,
        /// `portev_user`.
        user: u64,
        /// False once the port closed.
        attached: bool,
    },
}

/// One timer.
#[derive(Debug, Clone)]
pub struct Timer {
    /// Its clock id.
    pub clock: i32,
    /// The base of the current (or last) arming.
    pub base: Base,
    /// Next expiration, absolute ns on `base`; `None` when disarmed.
    pub deadline: Option<i64>,
    /// Period, ns (0: one-shot).
    pub interval: i64,
    /// How it notifies.
    pub notify: Notify,
    /// Expirations behind the outstanding notification (0: none).
    pub pending: u64,
    /// Overrun latched at the last consumption.
    pub overrun: i32,
    /// The LWP it is bound to; `None` once that LWP exited.
    pub lwp: Option<i32>,
}

/// The LWP every process starts with.
pub const LWP_MAIN: i32 = 1;

/// When a notification was generated: (operation number, host instant).
/// Notifications with equal tags have no order among themselves.
pub type Batch = (u64, i64);

/// A queued signal.
#[derive(Debug, Clone)]
pub struct QueuedSig {
    /// The timer that sent it.
    pub tid: i32,
    /// The signal.
    pub signo: i32,
    /// `si_value`.
    pub value: u64,
    /// Its timer was deleted while it was queued.
    pub orphan: bool,
    /// When it was generated.
    pub batch: Batch,
}

/// One process.
#[derive(Debug, Clone)]
pub struct Proc {
    /// Its pid (as the product reports it).
    pub pid: i32,
    /// Its uid.
    pub uid: u32,
    /// Holds the clock privileges.
    pub privileged: bool,
    /// Live timers by id.
    pub timers: BTreeMap<i32, Timer>,
    /// Queued signals, oldest first.
    pub sigq: Vec<QueuedSig>,
    /// Signals whose disposition is ignore (bit `signo - 1`).
    pub ignored: u64,
    /// The blocked mask.
    pub blocked: u64,
    /// Live LWPs.
    pub lwps: BTreeSet<i32>,
    /// The id the next `lwp_create` hands out.
    pub next_lwp: i32,
    /// Has exited (every call but `clock_gettime` is `ESRCH`).
    pub exited: bool,
}

/// The bit of `signo` in a signal set.
pub fn sigbit(signo: i32) -> u64 {
    1u64 << (signo - 1)
}

/// A queued port event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortQ {
    /// From `port_send`.
    User {
        /// `portev_events`.
        events: i32,
        /// `portev_user`.
        user: u64,
        /// When it was sent (unique).
        batch: Batch,
    },
    /// A timer's event.
    Timer {
        /// Index of the timer's process.
        proc: usize,
        /// The timer.
        tid: i32,
        /// When it was posted.
        batch: Batch,
    },
}

impl PortQ {
    fn batch(&self) -> Batch {
        match self {
            PortQ::User { batch, .. } | PortQ::Timer { batch, .. } => *batch,
        }
    }

    /// Whether process `p` may take this event.
    pub fn takeable_by(&self, p: usize) -> bool {
        match self {
            PortQ::User { .. } => true,
            PortQ::Timer { proc, .. } => *proc == p,
        }
    }
}

/// One open event port.
#[derive(Debug, Clone)]
pub struct Port {
    /// Index of the owning process.
    pub owner: usize,
    /// Queued events, oldest first.
    pub queue: Vec<PortQ>,
    /// Associated timers: (process index, timer id).
    pub timers: BTreeSet<(usize, i32)>,
    /// Alert mode: (`portev_events`, `portev_user`) of the alert.
    pub alert: Option<(i32, u64)>,
}

impl Port {
    /// Event slots in use: queued user events plus associated timers.
    pub fn slots(&self) -> usize {
        let user = self
            .queue
            .iter()
            .filter(|e| matches!(e, PortQ::User { .. }))
            .count();
        user + self.timers.len()
    }
}

/// Kernel limits the model is built with.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Timers per process.
    pub timer_max: usize,
    /// Ports per process.
    pub port_max: usize,
    /// Event slots per port.
    pub port_max_events: usize,
}

/// The whole model.
#[derive(Debug, Clone)]
pub struct Model {
    /// Operations applied so far (tags batches).
    pub ops: u64,
    /// Host monotonic time, ns.
    pub mono: i64,
    /// The model's wall clock, ns.
    pub wall: i64,
    /// The VM clock, ns.
    pub vm: i64,
    /// Whether the VM runs.
    pub vm_running: bool,
    /// The processes.
    pub procs: Vec<Proc>,
    /// Open ports by id.
    pub ports: BTreeMap<i32, Port>,
    /// The limits.
    pub limits: Limits,
    /// How often each notable situation arose (for the coverage report).
    pub notes: BTreeMap<&'static str, u64>,
}

/// A `timespec` as ns: `EINVAL` unless `tv_sec >= 0`, `0 <= tv_nsec <
/// 1e9` and the total fits an `i64`.
pub fn ns_of(ts: &Timespec) -> Result<i64, Errno> {
    if ts.tv_sec < 0 || !(0..SEC).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    ts.tv_sec
        .checked_mul(SEC)
        .and_then(|s| s.checked_add(ts.tv_nsec))
        .ok_or(Errno::EINVAL)
}

/// ns as a `timespec` (floor division: a negative time has a negative
/// `tv_sec`, which the kernel refuses).
pub fn ts_of(ns: i64) -> Timespec {
    Timespec {
        tv_sec: ns.div_euclid(SEC),
        tv_nsec: ns.rem_euclid(SEC),
    }
}

/// A pending count as the overrun a consumption latches.
fn overrun_of(pending: u64) -> i32 {
    pending.saturating_sub(1).min(DELAYTIMER_MAX as u64) as i32
}

impl Model {
    /// A fresh model: clocks at the simulated host's boot values, no
    /// timers, no ports; `procs` = (pid, uid, privileged).
    pub fn new(limits: Limits, procs: &[(i32, u32, bool)]) -> Model {
        Model {
            ops: 0,
            mono: 0,
            wall: WALL0,
            vm: 0,
            vm_running: true,
            procs: procs
                .iter()
                .map(|&(pid, uid, privileged)| Proc {
                    pid,
                    uid,
                    privileged,
                    timers: BTreeMap::new(),
                    sigq: Vec::new(),
                    ignored: 0,
                    blocked: 0,
                    lwps: BTreeSet::from([LWP_MAIN]),
                    next_lwp: LWP_MAIN + 1,
                    exited: false,
                })
                .collect(),
            ports: BTreeMap::new(),
            limits,
            notes: BTreeMap::new(),
        }
    }

    fn note(&mut self, what: &'static str) {
        *self.notes.entry(what).or_default() += 1;
    }

    /// The current time on `base`.
    pub fn now(&self, base: Base) -> i64 {
        match base {
            Base::Mono => self.mono,
            Base::Wall => self.wall,
            Base::Vm => self.vm,
        }
    }

    /// A timer's `timer_gettime` value: time to its deadline (0 if due),
    /// and its interval.
    pub fn current(&self, t: &Timer) -> Itimerspec {
        let left = t.deadline.map_or(0, |d| (d - self.now(t.base)).max(0));
        Itimerspec {
            it_interval: ts_of(t.interval),
            it_value: ts_of(left),
        }
    }

    /// The signals queued for process `p`, as a `sigpending` set.
    pub fn sigpending(&self, p: usize) -> u64 {
        self.procs[p]
            .sigq
            .iter()
            .fold(0, |set, q| set | sigbit(q.signo))
    }

    /// Signal entries process `p` holds: one per signal timer, plus each
    /// orphan still queued.
    pub fn sig_entries(&self, p: usize) -> usize {
        let pr = &self.procs[p];
        let timers = pr
            .timers
            .values()
            .filter(|t| matches!(t.notify, Notify::Signal { .. }))
            .count();
        timers + pr.sigq.iter().filter(|q| q.orphan).count()
    }

    /// Host steps (passes) an advance of `dt` would make at most: a cost
    /// bound the generator keeps small, since the simulated host stops at
    /// every deadline.
    pub fn passes_for(&self, dt: i64) -> u64 {
        let mut n = 0u64;
        for pr in &self.procs {
            for t in pr.timers.values() {
                let moves = t.base != Base::Vm || self.vm_running;
                if t.deadline.is_none() || !moves {
                    continue;
                }
                n += if t.interval == 0 {
                    1
                } else {
                    (dt / t.interval) as u64 + 2
                };
            }
        }
        n
    }

    /// Applies `op`. Without `actual` (generating), retrievals that could
    /// return several entries take the first; with the product's
    /// `actual` outcome, it must be one of the candidates, which is then
    /// committed. `Err` holds the candidates when it is not.
    pub fn apply(&mut self, op: &Op, actual: Option<&Outcome>) -> Result<Outcome, Vec<Outcome>> {
        self.ops += 1;
        if let Some(out) = self.exited_outcome(op) {
            return match actual {
                Some(a) if *a != out => Err(vec![out]),
                _ => Ok(out),
            };
        }
        match *op {
            Op::Sigwait { p, set, timeout } => {
                let cands = self.sigwait_candidates(p, set, &timeout);
                if cands.len() > 1 {
                    self.note("sigwait: several same-instant candidates");
                }
                let (out, key) = pick(cands, actual)?;
                if let Some(i) = key {
                    self.sigwait_commit(p, i);
                }
                Ok(out)
            }
            Op::PortGet { p, port } => {
                let cands = self.port_get_candidates(p, port);
                if cands.len() > 1 {
                    self.note("port_get: several same-instant candidates");
                }
                let (out, key) = pick(cands, actual)?;
                if let Some(i) = key {
                    self.port_get_commit(port, i);
                }
                Ok(out)
            }
            Op::PortGetn {
                p,
                port,
                max,
                nget,
                list_len,
                timeout,
            } => self.port_getn(p, port, max, nget, list_len, &timeout, actual),
            _ => {
                let out = self.apply_determined(op);
                match actual {
                    Some(a) if *a != out => Err(vec![out]),
                    _ => Ok(out),
                }
            }
        }
    }

    fn apply_determined(&mut self, op: &Op) -> Outcome {
        match *op {
            Op::Create { p, clock, ev } => Outcome::Id(self.create(p, clock, ev.as_ref())),
            Op::Settime {
                p,
                tid,
                flags,
                spec,
            } => Outcome::Spec(self.settime(p, tid, flags, &spec)),
            Op::Gettime { p, tid } => Outcome::Spec(
                self.procs[p]
                    .timers
                    .get(&tid)
                    .map(|t| self.current(t))
                    .ok_or(Errno::EINVAL),
            ),
            Op::Getoverrun { p, tid } => Outcome::Count(
                self.procs[p]
                    .timers
                    .get(&tid)
                    .map(|t| t.overrun)
                    .ok_or(Errno::EINVAL),
            ),
            Op::Delete { p, tid } => Outcome::Done(self.delete(p, tid)),
            Op::Advance { ns } => {
                self.advance(ns);
                Outcome::Done(Ok(()))
            }
            Op::PortCreate { p } => Outcome::Id(self.port_create(p)),
            Op::PortClose { p, port } => Outcome::Done(self.port_close(p, port)),
            Op::PortSend {
                port, events, user, ..
            } => Outcome::Done(self.port_send(port, events, user)),
            Op::ClockSettime { p, clock, ts } => Outcome::Done(self.clock_settime(p, clock, &ts)),
            Op::ClockGettime { clock, .. } => Outcome::Time(match clock {
                CLOCK_REALTIME | CLOCK_REALTIME0 => Ok(ts_of(self.wall)),
                CLOCK_HIGHRES => Ok(ts_of(self.mono)),
                CLOCK_VM => Ok(ts_of(self.vm)),
                c => {
                    assert!(!KNOWN_CLOCKS.contains(&c), "CPU clocks are not modelled");
                    Err(Errno::EINVAL)
                }
            }),
            Op::Sigaction { p, signo, handler } => Outcome::Disp(self.sigaction(p, signo, handler)),
            Op::Sigprocmask { p, how, set } => Outcome::Mask(self.sigprocmask(p, how, set)),
            Op::VmStop => {
                self.vm_running = false;
                Outcome::Done(Ok(()))
            }
            Op::VmStart => {
                self.vm_running = true;
                Outcome::Done(Ok(()))
            }
            Op::PortAlert {
                port,
                flags,
                events,
                user,
                ..
            } => Outcome::Done(self.port_alert(port, flags, events, user)),
            Op::LwpCreate { p } => {
                let pr = &mut self.procs[p];
                let id = pr.next_lwp;
                pr.next_lwp += 1;
                pr.lwps.insert(id);
                Outcome::Id(Ok(id))
            }
            Op::LwpExit { p, lwp } => Outcome::Done(self.lwp_exit(p, lwp)),
            Op::Lwpbind { p, tid, lwp } => Outcome::Done(self.lwpbind(p, tid, lwp)),
            Op::Exit { p } => {
                self.exit(p);
                Outcome::Done(Ok(()))
            }
            Op::Sigwait { .. } | Op::PortGet { .. } | Op::PortGetn { .. } => {
                unreachable!("handled by apply")
            }
        }
    }

    /// The outcome of `op` when it is a call of a process that has exited
    /// (see the module docs); `None` when it is not.
    fn exited_outcome(&self, op: &Op) -> Option<Outcome> {
        let p = match *op {
            Op::Create { p, .. }
            | Op::Settime { p, .. }
            | Op::Gettime { p, .. }
            | Op::Getoverrun { p, .. }
            | Op::Delete { p, .. }
            | Op::Sigwait { p, .. }
            | Op::PortCreate { p }
            | Op::PortClose { p, .. }
            | Op::PortSend { p, .. }
            | Op::PortGet { p, .. }
            | Op::PortGetn { p, .. }
            | Op::PortAlert { p, .. }
            | Op::ClockSettime { p, .. }
            | Op::Sigaction { p, .. }
            | Op::Sigprocmask { p, .. }
            | Op::LwpCreate { p }
            | Op::LwpExit { p, .. }
            | Op::Lwpbind { p, .. }
            | Op::Exit { p } => p,
            Op::ClockGettime { .. } | Op::Advance { .. } | Op::VmStop | Op::VmStart => {
                return None;
            }
        };
        if !self.procs[p].exited {
            return None;
        }
        let srch = Errno::ESRCH;
        let id_first = |tid: i32| if tid < 0 { Errno::EINVAL } else { srch };
        Some(match *op {
            Op::Create { clock, ev, .. } => {
                let bad = !KNOWN_CLOCKS.contains(&clock) || ev.is_some_and(|e| !sigevent_ok(&e));
                Outcome::Id(Err(if bad { Errno::EINVAL } else { srch }))
            }
            Op::Settime {
                tid, flags, spec, ..
            } => Outcome::Spec(Err(
                settime_args(flags, &spec).map_or_else(|e| e, |_| id_first(tid))
            )),
            Op::Gettime { tid, .. } => Outcome::Spec(Err(id_first(tid))),
            Op::Getoverrun { tid, .. } => Outcome::Count(Err(id_first(tid))),
            Op::Delete { tid, .. } => Outcome::Done(Err(id_first(tid))),
            Op::Sigwait { timeout, .. } => {
                Outcome::Sig(Err(ns_of(&timeout).map_or_else(|e| e, |_| srch)))
            }
            Op::Sigaction { handler, .. } => Outcome::Disp(Err(if (0..=1).contains(&handler) {
                srch
            } else {
                Errno::EINVAL
            })),
            Op::Exit { .. } => Outcome::Done(Ok(())),
            Op::PortCreate { .. } | Op::LwpCreate { .. } => Outcome::Id(Err(srch)),
            Op::PortGet { .. } => Outcome::Event(Err(srch)),
            Op::PortGetn { .. } => Outcome::Getn(Err(srch)),
            Op::Sigprocmask { .. } => Outcome::Mask(Err(srch)),
            _ => Outcome::Done(Err(srch)),
        })
    }

    /// `timer_create`, checking in illumos' order: the clock, the
    /// sigevent, a free id, the port, the port's slots, then whether the
    /// clock has timers at all.
    fn create(&mut self, p: usize, clock: i32, ev: Option<&Sigevent>) -> Result<i32, Errno> {
        if !KNOWN_CLOCKS.contains(&clock) {
            return Err(Errno::EINVAL);
        }
        if ev.is_some_and(|ev| !sigevent_ok(ev)) {
            return Err(Errno::EINVAL);
        }
        let tid = (0..self.limits.timer_max as i32)
            .find(|t| !self.procs[p].timers.contains_key(t))
            .ok_or(Errno::EAGAIN)?;
        let notify = match ev {
            None => Notify::Signal {
                signo: SIGALRM,
                value: tid as u64,
            },
            Some(ev) if ev.sigev_notify == SIGEV_NONE => Notify::Nothing,
            Some(ev) if ev.sigev_notify == SIGEV_SIGNAL => Notify::Signal {
                signo: ev.sigev_signo,
                value: ev.sigev_value,
            },
            Some(ev) => {
                let id = ev.sigev_port.portnfy_port;
                let port = self.ports.get(&id).ok_or(Errno::EBADF)?;
                if port.slots() >= self.limits.port_max_events {
                    return Err(Errno::EAGAIN);
                }
                Notify::Port {
                    port: id,
                    user: ev.sigev_port.portnfy_user,
                    attached: true,
                }
            }
        };
        let base = match clock {
            CLOCK_REALTIME | CLOCK_REALTIME0 | CLOCK_HIGHRES => Base::Mono,
            CLOCK_VM => Base::Vm,
            _ => return Err(Errno::EINVAL), // CPU-time clocks have no timers
        };
        if let Notify::Port { port, .. } = notify {
            self.ports
                .get_mut(&port)
                .expect("checked")
                .timers
                .insert((p, tid));
        }
        self.procs[p].timers.insert(
            tid,
            Timer {
                clock,
                base,
                deadline: None,
                interval: 0,
                notify,
                pending: 0,
                overrun: 0,
                lwp: Some(LWP_MAIN),
            },
        );
        Ok(tid)
    }

    /// `timer_settime`: returns the old setting.
    fn settime(
        &mut self,
        p: usize,
        tid: i32,
        flags: i32,
        spec: &Itimerspec,
    ) -> Result<Itimerspec, Errno> {
        let (abs, mut value, mut interval) = settime_args(flags, spec)?;
        let pr = &self.procs[p];
        let t = pr.timers.get(&tid).ok_or(Errno::EINVAL)?;
        let asked = (value, interval);
        if t.clock == CLOCK_HIGHRES && !pr.privileged {
            // The DoS guard: relative values and the interval of an armed
            // timer are raised to the floor; absolute values are not.
            if !abs && value > 0 {
                value = value.max(HIGHRES_FLOOR);
            }
            if value > 0 && interval > 0 {
                interval = interval.max(HIGHRES_FLOOR);
            }
        }
        let raised = asked != (value, interval);
        let base = match t.clock {
            CLOCK_REALTIME | CLOCK_REALTIME0 if abs => Base::Wall,
            CLOCK_VM => Base::Vm,
            _ => Base::Mono,
        };
        let old = self.current(t);
        let deadline = if value == 0 {
            None
        } else if abs {
            Some(value)
        } else {
            let d = self.now(base).checked_add(value);
            if d.is_none() {
                self.note("settime: relative deadline overflows, EINVAL");
            }
            Some(d.ok_or(Errno::EINVAL)?)
        };
        if raised {
            self.note("settime: HIGHRES floor raised the setting");
        }
        if deadline.is_none() && interval > 0 {
            self.note("settime: disarmed, interval kept");
        }
        if deadline.is_some_and(|d| d <= self.now(base)) {
            self.note("settime: absolute deadline already due");
        }
        let t = self.procs[p].timers.get_mut(&tid).expect("looked up above");
        t.base = base;
        t.deadline = deadline;
        t.interval = interval;
        Ok(old)
    }

    /// `timer_delete`: a queued signal stays queued as an orphan; a queued
    /// port event goes, and the timer's slot in its port is freed.
    fn delete(&mut self, p: usize, tid: i32) -> Result<(), Errno> {
        let t = self.procs[p].timers.remove(&tid).ok_or(Errno::EINVAL)?;
        match t.notify {
            Notify::Signal { .. } => {
                for q in &mut self.procs[p].sigq {
                    if q.tid == tid && !q.orphan {
                        q.orphan = true;
                        *self
                            .notes
                            .entry("delete: queued signal orphaned")
                            .or_default() += 1;
                    }
                }
            }
            Notify::Port {
                port,
                attached: true,
                ..
            } => {
                let port = self.ports.get_mut(&port).expect("attached to an open port");
                port.timers.remove(&(p, tid));
                let before = port.queue.len();
                port.queue.retain(
                    |e| !matches!(e, PortQ::Timer { proc, tid: t, .. } if *proc == p && *t == tid),
                );
                if port.queue.len() < before {
                    self.note("delete: queued port event withdrawn");
                }
            }
            Notify::Port { .. } | Notify::Nothing => {}
        }
        Ok(())
    }

    /// Moves time forward `dt` ns (see the module docs).
    fn advance(&mut self, dt: i64) {
        let (mono0, wall0, vm0) = (self.mono, self.wall, self.vm);
        let vm_dt = if self.vm_running { dt } else { 0 };
        let end = |b: Base| match b {
            Base::Mono => mono0 + dt,
            Base::Wall => wall0.saturating_add(dt),
            Base::Vm => vm0 + vm_dt,
        };
        let start = |b: Base| match b {
            Base::Mono => mono0,
            Base::Wall => wall0,
            Base::Vm => vm0,
        };
        // (host instant of the first expiration, process, timer,
        // expirations in the step, expirations of the last generation)
        let mut fires: Vec<(i64, usize, i32, u64, u64)> = Vec::new();
        for (pi, pr) in self.procs.iter_mut().enumerate() {
            for (&tid, t) in &mut pr.timers {
                let Some(d) = t.deadline else { continue };
                let now1 = end(t.base);
                if d > now1 {
                    continue;
                }
                let now0 = start(t.base);
                let first_at = mono0 + (d - now0).max(0);
                let (count, first_k) = if t.interval == 0 {
                    (1, 1)
                } else {
                    let late = if d < now0 { (now0 - d) / t.interval } else { 0 };
                    (1 + (now1 - d) / t.interval, 1 + late)
                };
                let last_k = if count > first_k { 1 } else { count };
                t.deadline = if t.interval == 0 {
                    None
                } else {
                    let next = i128::from(d) + i128::from(count) * i128::from(t.interval);
                    // Past the largest time: clamped to it (still armed),
                    // unless the clock reads it already (then disarmed).
                    i64::try_from(next)
                        .ok()
                        .or(Some(i64::MAX).filter(|&end| end > now1))
                };
                fires.push((first_at, pi, tid, count as u64, last_k as u64));
            }
        }
        fires.sort_by_key(|f| f.0);
        let op = self.ops;
        for &(at, pi, tid, count, last_k) in &fires {
            let t = &self.procs[pi].timers[&tid];
            let (periodic, rearmed, base) = (t.interval > 0, t.deadline.is_some(), t.base);
            let clamped = periodic && t.deadline == Some(i64::MAX);
            if at == mono0 && count > 1 && rearmed {
                self.note("advance: late periodic timer catches up");
            }
            if clamped {
                self.note("advance: next deadline past the largest time, clamped to it");
            }
            if periodic && !rearmed {
                self.note("advance: next deadline past the largest time, disarmed");
            }
            if base == Base::Vm && !self.vm_running {
                self.note("advance: VM timer runs while the VM is stopped");
            }
            self.fire(pi, tid, count, last_k, (op, at));
        }
        self.mono = mono0 + dt;
        // The wall clock can be set as far as the largest time; it stays
        // there (the kernel's times are at most i64::MAX ns).
        self.wall = wall0.saturating_add(dt);
        self.vm = vm0 + vm_dt;
    }

    /// `count` expirations of timer `tid` of process `pi` in one step, the
    /// last generation of which reported `last_k` of them.
    fn fire(&mut self, pi: usize, tid: i32, count: u64, last_k: u64, batch: Batch) {
        let pr = &mut self.procs[pi];
        let t = pr.timers.get_mut(&tid).expect("live");
        if t.pending > 0 {
            t.pending = t.pending.saturating_add(count);
            return;
        }
        match t.notify {
            Notify::Nothing
            | Notify::Port {
                attached: false, ..
            } => {}
            Notify::Signal { signo, value } => {
                if (pr.ignored & !pr.blocked) & sigbit(signo) != 0 {
                    // Each generation is discarded, and consumed, at once.
                    t.overrun = overrun_of(last_k);
                    self.note("fire: ignored signal discarded at generation");
                } else {
                    t.pending = count;
                    pr.sigq.push(QueuedSig {
                        tid,
                        signo,
                        value,
                        orphan: false,
                        batch,
                    });
                }
            }
            Notify::Port { port, .. } => {
                t.pending = count;
                let port = self.ports.get_mut(&port).expect("attached to an open port");
                port.queue.push(PortQ::Timer {
                    proc: pi,
                    tid,
                    batch,
                });
            }
        }
    }

    /// Discards the queued signals of process `p` that `drop` selects, as
    /// if each were consumed (a live timer latches its overrun; an orphan
    /// just goes).
    fn discard_queued(&mut self, p: usize, drop: impl Fn(&QueuedSig) -> bool) {
        let pr = &mut self.procs[p];
        let (gone, kept): (Vec<QueuedSig>, Vec<QueuedSig>) = std::mem::take(&mut pr.sigq)
            .into_iter()
            .partition(|q| drop(q));
        pr.sigq = kept;
        for q in &gone {
            if !q.orphan {
                let t = pr.timers.get_mut(&q.tid).expect("not an orphan");
                t.overrun = overrun_of(t.pending);
                t.pending = 0;
            }
        }
        if !gone.is_empty() {
            self.note("signal: queued signals discarded by ignore/unblock");
        }
    }

    /// `sigaction(signo, SIG_DFL | SIG_IGN)`: returns the old disposition.
    /// Ignoring a signal discards what is queued for it.
    fn sigaction(&mut self, p: usize, signo: i32, handler: i32) -> Result<i32, Errno> {
        const SIG_DFL: i32 = 0;
        const SIG_IGN: i32 = 1;
        if handler != SIG_DFL && handler != SIG_IGN {
            return Err(Errno::EINVAL);
        }
        if !(1..NSIG).contains(&signo) || signo == SIGKILL || signo == SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let pr = &mut self.procs[p];
        let old = if pr.ignored & sigbit(signo) != 0 {
            SIG_IGN
        } else {
            SIG_DFL
        };
        if handler == SIG_IGN {
            pr.ignored |= sigbit(signo);
            self.discard_queued(p, |q| q.signo == signo);
        } else {
            pr.ignored &= !sigbit(signo);
        }
        Ok(old)
    }

    /// `sigprocmask(how, set)`: returns the old mask. SIGKILL and SIGSTOP
    /// cannot be blocked; a signal unblocked while ignored is discarded.
    fn sigprocmask(&mut self, p: usize, how: i32, set: Option<u64>) -> Result<u64, Errno> {
        let pr = &mut self.procs[p];
        let old = pr.blocked;
        let Some(set) = set else { return Ok(old) };
        let new = match how {
            1 => old | set,
            2 => old & !set,
            3 => set,
            _ => return Err(Errno::EINVAL),
        };
        pr.blocked = new & !(sigbit(SIGKILL) | sigbit(SIGSTOP));
        let discard = pr.ignored & !pr.blocked;
        self.discard_queued(p, |q| discard & sigbit(q.signo) != 0);
        Ok(old)
    }

    /// The signals a zero-timeout `sigtimedwait` may return: the oldest
    /// batch of the lowest queued signal in `set`; each with the queue
    /// index it would take.
    fn sigwait_candidates(
        &self,
        p: usize,
        set: u64,
        timeout: &Timespec,
    ) -> Vec<(Outcome, Option<usize>)> {
        match ns_of(timeout) {
            Err(e) => return vec![(Outcome::Sig(Err(e)), None)],
            Ok(n) => assert_eq!(n, 0, "only polls are modelled"),
        }
        let pr = &self.procs[p];
        let wanted = |q: &QueuedSig| set & (1 << (q.signo - 1)) != 0;
        let Some(signo) = pr.sigq.iter().filter(|q| wanted(q)).map(|q| q.signo).min() else {
            return vec![(Outcome::Sig(Err(Errno::EAGAIN)), None)];
        };
        let oldest = pr
            .sigq
            .iter()
            .find(|q| q.signo == signo)
            .expect("found above")
            .batch;
        pr.sigq
            .iter()
            .enumerate()
            .filter(|(_, q)| q.signo == signo && q.batch == oldest)
            .map(|(i, q)| {
                let si_overrun = if q.orphan {
                    0
                } else {
                    overrun_of(pr.timers[&q.tid].pending)
                };
                let info = Siginfo {
                    si_signo: q.signo,
                    si_code: SI_TIMER,
                    si_pid: pr.pid,
                    si_uid: pr.uid,
                    si_value: q.value,
                    si_timerid: q.tid,
                    si_overrun,
                };
                (Outcome::Sig(Ok(info)), Some(i))
            })
            .collect()
    }

    /// Takes queued signal `i` of process `p`: a live timer latches its
    /// overrun and its notification is no longer outstanding.
    fn sigwait_commit(&mut self, p: usize, i: usize) {
        let q = self.procs[p].sigq.remove(i);
        if q.orphan {
            self.note("sigwait: orphan delivered");
        } else {
            let t = self.procs[p].timers.get_mut(&q.tid).expect("not an orphan");
            t.overrun = overrun_of(t.pending);
            t.pending = 0;
        }
    }

    /// The events a zero-timeout `port_get` by process `p` may return.
    fn port_get_candidates(&self, p: usize, id: i32) -> Vec<(Outcome, Option<usize>)> {
        let Some(port) = self.ports.get(&id) else {
            return vec![(Outcome::Event(Err(Errno::EBADF)), None)];
        };
        if let Some(alert) = port.alert {
            return vec![(Outcome::Event(Ok(alert_event(alert))), None)];
        }
        let Some(oldest) = port
            .queue
            .iter()
            .find(|e| e.takeable_by(p))
            .map(PortQ::batch)
        else {
            // Only other processes' timer events (or nothing) queued.
            let e = if port.queue.is_empty() {
                Errno::ETIME
            } else {
                Errno::EACCES
            };
            return vec![(Outcome::Event(Err(e)), None)];
        };
        self.oldest_takeable(p, id, oldest)
            .into_iter()
            .map(|(ev, i)| (Outcome::Event(Ok(ev)), Some(i)))
            .collect()
    }

    /// The events of batch `oldest` on port `id` that process `p` may
    /// take, each with its queue index.
    fn oldest_takeable(&self, p: usize, id: i32, oldest: Batch) -> Vec<(PortEvent, usize)> {
        self.ports[&id]
            .queue
            .iter()
            .enumerate()
            .filter(|(_, e)| e.takeable_by(p) && e.batch() == oldest)
            .map(|(i, e)| {
                let ev = match *e {
                    PortQ::User { events, user, .. } => PortEvent {
                        portev_events: events,
                        portev_source: PORT_SOURCE_USER as u16,
                        portev_object: 0,
                        portev_user: user,
                        ..PortEvent::default()
                    },
                    PortQ::Timer { proc, tid, .. } => {
                        let t = &self.procs[proc].timers[&tid];
                        let Notify::Port { user, .. } = t.notify else {
                            unreachable!("a port timer")
                        };
                        PortEvent {
                            portev_events: t.pending.min(i32::MAX as u64) as i32,
                            portev_source: PORT_SOURCE_TIMER as u16,
                            portev_object: tid as u64,
                            portev_user: user,
                            ..PortEvent::default()
                        }
                    }
                };
                (ev, i)
            })
            .collect()
    }

    /// `port_getn` with a zero (or malformed) timeout: checks in the
    /// order port, `nget > max > 0`, timeout, then `max == 0` (a count of
    /// every queued event), the list's room, the alert, `EACCES`; then
    /// takes `min(max, takeable)` events one by one, each among the
    /// oldest batch left, following `actual`'s list when there is one.
    #[allow(clippy::too_many_arguments)]
    fn port_getn(
        &mut self,
        p: usize,
        id: i32,
        max: u32,
        nget: u32,
        list_len: usize,
        timeout: &Timespec,
        actual: Option<&Outcome>,
    ) -> Result<Outcome, Vec<Outcome>> {
        let settled = |out: Outcome| match actual {
            Some(a) if *a != out => Err(vec![out]),
            _ => Ok(out),
        };
        let Some(port) = self.ports.get(&id) else {
            return settled(Outcome::Getn(Err(Errno::EBADF)));
        };
        if nget > max && max > 0 {
            return settled(Outcome::Getn(Err(Errno::EINVAL)));
        }
        match ns_of(timeout) {
            Err(e) => return settled(Outcome::Getn(Err(e))),
            Ok(n) => assert_eq!(n, 0, "only polls are modelled"),
        }
        if max == 0 {
            return settled(Outcome::Getn(Ok((port.queue.len() as u32, Vec::new()))));
        }
        if list_len < max as usize {
            return settled(Outcome::Getn(Err(Errno::EFAULT)));
        }
        if let Some(alert) = port.alert {
            self.note("port_getn: alert returned");
            return settled(Outcome::Getn(Ok((1, vec![alert_event(alert)]))));
        }
        let takeable = port.queue.iter().filter(|e| e.takeable_by(p)).count();
        if nget > 0 && takeable == 0 && !port.queue.is_empty() {
            return settled(Outcome::Getn(Err(Errno::EACCES)));
        }
        let n = takeable.min(max as usize);
        let want = match actual {
            Some(Outcome::Getn(Ok((k, evs)))) if *k as usize == n && evs.len() == n => Some(evs),
            _ => None,
        };
        let mut got = Vec::with_capacity(n);
        for i in 0..n {
            let oldest = self.ports[&id]
                .queue
                .iter()
                .find(|e| e.takeable_by(p))
                .map(PortQ::batch)
                .expect("takeable events left");
            let cands = self.oldest_takeable(p, id, oldest);
            if cands.len() > 1 {
                self.note("port_getn: several same-instant candidates");
            }
            let chosen = match want {
                None => cands.first(),
                Some(evs) => cands.iter().find(|(ev, _)| *ev == evs[i]),
            };
            let Some(&(ev, qi)) = chosen else {
                // The product's i-th event is none of these.
                return Err(cands
                    .into_iter()
                    .map(|(ev, _)| {
                        let mut list = got.clone();
                        list.push(ev);
                        Outcome::Getn(Ok((n as u32, list)))
                    })
                    .collect());
            };
            self.port_get_commit(id, qi);
            got.push(ev);
        }
        if n > 1 {
            self.note("port_getn: several events in one call");
        }
        let out = Outcome::Getn(Ok((n as u32, got)));
        match actual {
            Some(a) if *a != out => Err(vec![out]),
            _ => Ok(out),
        }
    }

    /// `port_alert`: port first (`EBADF`), then flags (`EINVAL` unless
    /// exactly SET or UPDATE); events 0 leaves alert mode; UPDATE on an
    /// alerted port is `EBUSY`.
    fn port_alert(&mut self, id: i32, flags: i32, events: i32, user: u64) -> Result<(), Errno> {
        let port = self.ports.get_mut(&id).ok_or(Errno::EBADF)?;
        if flags != PORT_ALERT_SET && flags != PORT_ALERT_UPDATE {
            return Err(Errno::EINVAL);
        }
        if events == 0 {
            port.alert = None;
            return Ok(());
        }
        if flags == PORT_ALERT_UPDATE && port.alert.is_some() {
            return Err(Errno::EBUSY);
        }
        port.alert = Some((events, user));
        Ok(())
    }

    /// `lwp_exit(lwp)`: `EINVAL` unless it is live; its timers are left
    /// unbound; the last LWP's exit is the process's.
    fn lwp_exit(&mut self, p: usize, lwp: i32) -> Result<(), Errno> {
        let pr = &mut self.procs[p];
        if !pr.lwps.remove(&lwp) {
            return Err(Errno::EINVAL);
        }
        let mut unbound = false;
        for t in pr.timers.values_mut() {
            if t.lwp == Some(lwp) {
                t.lwp = None;
                unbound = true;
            }
        }
        let last = pr.lwps.is_empty();
        if unbound {
            self.note("lwp_exit: bound timers unbound");
        }
        if last {
            self.note("lwp_exit: the last LWP's exit ends the process");
            self.exit(p);
        }
        Ok(())
    }

    /// `timer_lwpbind(tid)` by LWP `lwp`: `EINVAL` for an LWP that is not
    /// live, then for a bad timer id.
    fn lwpbind(&mut self, p: usize, tid: i32, lwp: i32) -> Result<(), Errno> {
        let pr = &mut self.procs[p];
        if !pr.lwps.contains(&lwp) {
            return Err(Errno::EINVAL);
        }
        let t = pr.timers.get_mut(&tid).ok_or(Errno::EINVAL)?;
        let was_unbound = t.lwp.is_none();
        t.lwp = Some(lwp);
        if was_unbound {
            self.note("lwpbind: an unbound timer bound again");
        }
        Ok(())
    }

    /// Process exit (see the module docs).
    fn exit(&mut self, p: usize) {
        let withdrawn_elsewhere = self.ports.values().any(|port| {
            port.owner != p
                && port
                    .queue
                    .iter()
                    .any(|e| matches!(e, PortQ::Timer { proc, .. } if *proc == p))
        });
        if withdrawn_elsewhere {
            self.note("exit: its timer events withdrawn from another's port");
        }
        let tids: Vec<i32> = self.procs[p].timers.keys().copied().collect();
        for tid in tids {
            self.delete(p, tid).expect("live timer");
        }
        let owned: Vec<i32> = self
            .ports
            .iter()
            .filter(|(_, port)| port.owner == p)
            .map(|(id, _)| *id)
            .collect();
        for id in owned {
            if self.ports[&id].timers.iter().any(|&(q, _)| q != p) {
                self.note("exit: another process's timers detached from its port");
            }
            self.port_close(p, id).expect("its own open port");
        }
        if !self.procs[p].sigq.is_empty() {
            self.note("exit: queued signals discarded");
        }
        let pr = &mut self.procs[p];
        pr.sigq.clear();
        pr.lwps.clear();
        pr.exited = true;
    }

    /// Takes event `i` of port `id`.
    fn port_get_commit(&mut self, id: i32, i: usize) {
        let e = self.ports.get_mut(&id).expect("open").queue.remove(i);
        if let PortQ::Timer { proc, tid, .. } = e {
            let t = self.procs[proc].timers.get_mut(&tid).expect("live");
            t.overrun = overrun_of(t.pending);
            t.pending = 0;
        }
    }

    /// `port_create`: the lowest id from 3 not open; `EMFILE` past the
    /// per-process limit.
    fn port_create(&mut self, p: usize) -> Result<i32, Errno> {
        let owned = self.ports.values().filter(|port| port.owner == p).count();
        if owned >= self.limits.port_max {
            return Err(Errno::EMFILE);
        }
        let id = (3..)
            .find(|id| !self.ports.contains_key(id))
            .expect("ids left");
        self.ports.insert(
            id,
            Port {
                owner: p,
                queue: Vec::new(),
                timers: BTreeSet::new(),
                alert: None,
            },
        );
        Ok(id)
    }

    /// `close(port)`: only the owner; events discarded; associated timers
    /// run on with no notification.
    fn port_close(&mut self, p: usize, id: i32) -> Result<(), Errno> {
        if self.ports.get(&id).is_none_or(|port| port.owner != p) {
            return Err(Errno::EBADF);
        }
        let port = self.ports.remove(&id).expect("checked");
        if !port.timers.is_empty() {
            self.note("port_close: associated timers detached");
        }
        for (pi, tid) in port.timers {
            let t = self.procs[pi]
                .timers
                .get_mut(&tid)
                .expect("associated timers are live");
            if let Notify::Port { attached, .. } = &mut t.notify {
                *attached = false;
            }
            t.pending = 0;
        }
        Ok(())
    }

    /// `port_send`.
    fn port_send(&mut self, id: i32, events: i32, user: u64) -> Result<(), Errno> {
        let max = self.limits.port_max_events;
        let port = self.ports.get_mut(&id).ok_or(Errno::EBADF)?;
        if port.slots() >= max {
            return Err(Errno::EAGAIN);
        }
        // A tag no timer batch can share: host instants are >= 0.
        port.queue.push(PortQ::User {
            events,
            user,
            batch: (self.ops, -1),
        });
        Ok(())
    }

    /// `clock_settime`, checking in illumos' order: clock, privilege,
    /// timespec, then whether the clock can be set (only REALTIME).
    fn clock_settime(&mut self, p: usize, clock: i32, ts: &Timespec) -> Result<(), Errno> {
        if !KNOWN_CLOCKS.contains(&clock) {
            return Err(Errno::EINVAL);
        }
        if !self.procs[p].privileged {
            return Err(Errno::EPERM);
        }
        let now = ns_of(ts)?;
        match clock {
            CLOCK_REALTIME | CLOCK_REALTIME0 => {
                let moved = self.procs.iter().any(|pr| {
                    pr.timers
                        .values()
                        .any(|t| t.base == Base::Wall && t.deadline.is_some())
                });
                if moved {
                    self.note("clock_settime: armed absolute REALTIME timers follow");
                }
                self.wall = now;
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }
}

/// Whether a sigevent is well formed: a known notification kind, and for
/// `SIGEV_SIGNAL` a signal number in range.
fn sigevent_ok(ev: &Sigevent) -> bool {
    match ev.sigev_notify {
        SIGEV_NONE | SIGEV_PORT | SIGEV_THREAD => true,
        SIGEV_SIGNAL => (1..NSIG).contains(&ev.sigev_signo),
        _ => false,
    }
}

/// `timer_settime`'s checks on its arguments alone: (absolute, value ns,
/// interval ns). A disarming setting does not validate its interval
/// (stored as 0 when malformed).
fn settime_args(flags: i32, spec: &Itimerspec) -> Result<(bool, i64, i64), Errno> {
    if flags & !TIMER_ABSTIME != 0 {
        return Err(Errno::EINVAL);
    }
    let value = ns_of(&spec.it_value)?;
    let interval = if value == 0 {
        ns_of(&spec.it_interval).unwrap_or(0)
    } else {
        ns_of(&spec.it_interval)?
    };
    Ok((flags & TIMER_ABSTIME != 0, value, interval))
}

/// The event every retrieval returns while a port is in alert mode.
fn alert_event((events, user): (i32, u64)) -> PortEvent {
    PortEvent {
        portev_events: events,
        portev_source: PORT_SOURCE_ALERT as u16,
        portev_object: 0,
        portev_user: user,
        ..PortEvent::default()
    }
}

/// Chooses among candidates: the first when generating, else the one equal
/// to `actual` (or all of them as the error).
fn pick<K>(
    cands: Vec<(Outcome, K)>,
    actual: Option<&Outcome>,
) -> Result<(Outcome, K), Vec<Outcome>> {
    let Some(actual) = actual else {
        return Ok(cands.into_iter().next().expect("at least one candidate"));
    };
    if let Some(i) = cands.iter().position(|(o, _)| o == actual) {
        return Ok(cands.into_iter().nth(i).expect("found"));
    }
    Err(cands.into_iter().map(|(o, _)| o).collect())
}
