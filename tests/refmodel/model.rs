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
//! * The open event ports: owner, queue in posting order, the timers
//!   associated with them.
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
//! # Deliberately not modelled
//!
//! Blocking calls (only zero timeouts), signal handlers (a disposition is
//! default or ignore), port alerts, `port_getn`, `SIGEV_THREAD` through the typed layer (its raw form is modelled:
//! the kernel treats it as `SIGEV_PORT`), process exit, LWPs, the CPU-time
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
}

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

    fn takeable_by(&self, p: usize) -> bool {
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
            Op::Sigwait { .. } | Op::PortGet { .. } => unreachable!("handled by apply"),
        }
    }

    /// `timer_create`, checking in illumos' order: the clock, the
    /// sigevent, a free id, the port, the port's slots, then whether the
    /// clock has timers at all.
    fn create(&mut self, p: usize, clock: i32, ev: Option<&Sigevent>) -> Result<i32, Errno> {
        if !KNOWN_CLOCKS.contains(&clock) {
            return Err(Errno::EINVAL);
        }
        if let Some(ev) = ev {
            let ok = match ev.sigev_notify {
                SIGEV_NONE | SIGEV_PORT | SIGEV_THREAD => true,
                SIGEV_SIGNAL => (1..NSIG).contains(&ev.sigev_signo),
                _ => false,
            };
            if !ok {
                return Err(Errno::EINVAL);
            }
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
        if flags & !TIMER_ABSTIME != 0 {
            return Err(Errno::EINVAL);
        }
        let abs = flags & TIMER_ABSTIME != 0;
        let mut value = ns_of(&spec.it_value)?;
        // A disarming setting does not validate its interval (stored as 0
        // when malformed).
        let mut interval = if value == 0 {
            ns_of(&spec.it_interval).unwrap_or(0)
        } else {
            ns_of(&spec.it_interval)?
        };
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
                    i64::try_from(next).ok()
                };
                fires.push((first_at, pi, tid, count as u64, last_k as u64));
            }
        }
        fires.sort_by_key(|f| f.0);
        let op = self.ops;
        for &(at, pi, tid, count, last_k) in &fires {
            let t = &self.procs[pi].timers[&tid];
            let (periodic, rearmed, base) = (t.interval > 0, t.deadline.is_some(), t.base);
            if at == mono0 && count > 1 && rearmed {
                self.note("advance: late periodic timer catches up");
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
        port.queue
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
                (Outcome::Event(Ok(ev)), Some(i))
            })
            .collect()
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
