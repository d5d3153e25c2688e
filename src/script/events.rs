//! What happened while a command ran: expiries seen in the kernel's
//! timer state, SIGEV_THREAD callbacks, signal handler runs and timers
//! unbound by an exiting LWP, and how they are printed.
//!
//! An expiry of a signal or port timer is seen as a rise of the timer's
//! `pending` count (the expirations behind its outstanding notification,
//! [`Process::timer_status`](crate::Process::timer_status)) across one
//! instant of model time. A SIGEV_THREAD timer's `pending` is reset by its
//! notification thread, so it is seen through its callbacks instead. A
//! timer that notifies nothing (`SIGEV_NONE`, a signal ignored at
//! generation, a port timer whose port closed) keeps `pending` at zero, and
//! so shows no expiry line: the trace shows what the kernel records.
//!
//! A timer whose signal is caught (`handle`) and not blocked is seen
//! through its handler runs instead: the delivery thread consumes the
//! notification, so its `pending` is back to zero when the instant is
//! over. An instant's handler runs come after its expiries and callbacks,
//! lowest signal first and oldest first within a signal: the order in
//! which the delivery thread runs what is queued (signals unblocked
//! together run in exactly this order; when expirations at one instant
//! race with the delivery thread it may run a higher signal first, and
//! the trace still lists the runs in this order, so it stays
//! deterministic).
//!
//! Each command prints at most [`Shown::limit`] lines per timer (the
//! script's `limit`), then one line summing up the rest.

use std::collections::BTreeMap;

use nix::errno::Errno;

use super::units::{fmt_errno, fmt_signal, fmt_time};

/// The timer index of a handler run whose signal the script cannot tie
/// to one of its timers (its name shows as `-`).
pub const UNNAMED: usize = usize::MAX;

/// One observed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A signal or port timer expired `delta` times at this instant; its
    /// notification now stands for `pending` expirations.
    Expired {
        /// Expirations at this instant.
        delta: u64,
        /// `pending` after them.
        pending: u64,
    },
    /// A SIGEV_THREAD callback ran.
    Callback {
        /// `sigev_value`.
        value: u64,
        /// Expirations the notification accounts for.
        expirations: i32,
        /// `timer_getoverrun` read inside the callback.
        overrun: i32,
    },
    /// The script's signal handler ran for a timer's signal.
    Handler {
        /// `si_signo`.
        signo: i32,
        /// `si_timerid`.
        timerid: i32,
        /// `si_value`.
        value: u64,
        /// `si_overrun`.
        overrun: i32,
        /// `timer_getoverrun(si_timerid)` called inside the handler;
        /// `None` when the script had deleted that timer (an orphan
        /// signal), so the handler did not ask.
        getoverrun: Option<Result<i32, Errno>>,
    },
    /// The LWP the timer was bound to exited; the timer is unbound and
    /// keeps running.
    Unbound {
        /// The LWP's id.
        lwp: i32,
    },
}

/// An event, with where and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Model time, ns since boot.
    pub time: i64,
    /// Index of the process (spawn order).
    pub proc: usize,
    /// Index of the timer in its process (creation order), or
    /// [`UNNAMED`].
    pub timer: usize,
    /// What happened.
    pub kind: EventKind,
}

/// What was not shown of one timer's events.
#[derive(Debug, Default, Clone, Copy)]
struct Hidden {
    lines: u64,
    expirations: u64,
    last_time: i64,
    last_pending: Option<u64>,
    /// The hidden lines are handler runs (else expiries or callbacks).
    handlers: bool,
}

/// Formats a command's events under a per-timer line limit.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    /// Lines per timer per command; `None`: all.
    pub limit: Option<usize>,
}

/// A trace line for an event or a summary (`~` marks lines that are not
/// calls).
pub fn event_line(time: i64, proc: &str, text: &str) -> String {
    format!("{:>12}  {proc:<3} ~ {text}", fmt_time(time))
}

impl Shown {
    /// The trace lines for `events` (already in time order), naming
    /// processes and timers with `name`.
    pub fn lines(
        &self,
        events: &[Event],
        name: impl Fn(usize, usize) -> (String, String),
    ) -> Vec<String> {
        let mut out = Vec::new();
        let mut shown: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        let mut hidden: BTreeMap<(usize, usize), Hidden> = BTreeMap::new();
        for ev in events {
            let key = (ev.proc, ev.timer);
            let n = shown.entry(key).or_default();
            // An unbinding is one line per timer per command: always shown.
            let always = matches!(ev.kind, EventKind::Unbound { .. });
            if always || self.limit.is_none_or(|l| *n < l) {
                *n += 1;
                let (p, t) = name(ev.proc, ev.timer);
                let text = match ev.kind {
                    EventKind::Expired { delta, pending } => {
                        format!("{t} expired x{delta}, pending {pending}")
                    }
                    EventKind::Callback {
                        value,
                        expirations,
                        overrun,
                    } => format!(
                        "{t} callback value={value} expirations={expirations} overrun={overrun}"
                    ),
                    EventKind::Handler {
                        signo,
                        timerid,
                        value,
                        overrun,
                        getoverrun,
                    } => format!(
                        "{t} handler {} SI_TIMER timerid={timerid} value={value} \
                         overrun={overrun} {}",
                        fmt_signal(signo),
                        match getoverrun {
                            Some(Ok(n)) => format!("getoverrun={n}"),
                            Some(Err(e)) => format!("getoverrun={}", fmt_errno(e)),
                            None => "(timer deleted)".to_owned(),
                        }
                    ),
                    EventKind::Unbound { lwp } => {
                        format!("{t} unbound: LWP {lwp} exited, the timer runs on")
                    }
                };
                out.push(event_line(ev.time, &p, &text));
            } else {
                let h = hidden.entry(key).or_default();
                h.lines += 1;
                h.last_time = ev.time;
                match ev.kind {
                    EventKind::Expired { delta, pending } => {
                        h.expirations += delta;
                        h.last_pending = Some(pending);
                    }
                    EventKind::Callback { expirations, .. } => {
                        h.expirations += u64::try_from(expirations).unwrap_or(0);
                    }
                    EventKind::Handler { overrun, .. } => {
                        h.handlers = true;
                        h.expirations += u64::try_from(overrun).unwrap_or(0) + 1;
                    }
                    EventKind::Unbound { .. } => unreachable!("always shown"),
                }
            }
        }
        let mut summaries: Vec<((usize, usize), Hidden)> = hidden.into_iter().collect();
        summaries.sort_by_key(|(key, h)| (h.last_time, *key));
        for ((p, t), h) in summaries {
            let (pn, tn) = name(p, t);
            let text = match h.last_pending {
                Some(pending) => format!(
                    "{tn} ... {} more expiries not shown ({} expirations) up to here, pending {pending}",
                    h.lines, h.expirations
                ),
                None => format!(
                    "{tn} ... {} more {} not shown ({} expirations) up to here",
                    h.lines,
                    if h.handlers {
                        "handler runs"
                    } else {
                        "callbacks"
                    },
                    h.expirations
                ),
            };
            out.push(event_line(h.last_time, &pn, &text));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_sums_up_the_rest() {
        let ev = |time, delta, pending| Event {
            time,
            proc: 0,
            timer: 0,
            kind: EventKind::Expired { delta, pending },
        };
        let events = [ev(1, 1, 1), ev(2, 1, 2), ev(3, 2, 4)];
        let name = |_, _| ("a".to_owned(), "t1".to_owned());
        let lines = Shown { limit: Some(1) }.lines(&events, name);
        assert_eq!(
            lines,
            [
                " 0.000000001  a   ~ t1 expired x1, pending 1",
                " 0.000000003  a   ~ t1 ... 2 more expiries not shown (3 expirations) up to here, pending 4",
            ]
        );
        assert_eq!(Shown { limit: None }.lines(&events, name).len(), 3);
        assert!(Shown { limit: Some(0) }.lines(&events, name).len() == 1);
    }

    #[test]
    fn handler_runs_and_unbindings() {
        let run = |time, overrun, getoverrun| Event {
            time,
            proc: 0,
            timer: 0,
            kind: EventKind::Handler {
                signo: crate::kernel::abi::SIGUSR1,
                timerid: 0,
                value: 7,
                overrun,
                getoverrun,
            },
        };
        let unbound = Event {
            time: 4,
            proc: 0,
            timer: 0,
            kind: EventKind::Unbound { lwp: 2 },
        };
        let events = [
            run(1, 0, Some(Ok(0))),
            run(2, 2, Some(Ok(2))),
            run(3, 0, None),
            unbound,
        ];
        let name = |_, _| ("a".to_owned(), "t1".to_owned());
        assert_eq!(
            Shown { limit: Some(1) }.lines(&events, name),
            [
                " 0.000000001  a   ~ t1 handler SIGUSR1 SI_TIMER timerid=0 value=7 overrun=0 getoverrun=0",
                " 0.000000004  a   ~ t1 unbound: LWP 2 exited, the timer runs on",
                " 0.000000003  a   ~ t1 ... 2 more handler runs not shown (4 expirations) up to here",
            ]
        );
        let all = Shown { limit: None }.lines(&events, name);
        assert_eq!(
            all[2],
            " 0.000000003  a   ~ t1 handler SIGUSR1 SI_TIMER timerid=0 value=7 overrun=0 (timer deleted)"
        );
        let failed = [run(5, 0, Some(Err(Errno::ESRCH)))];
        assert!(Shown { limit: None }.lines(&failed, name)[0].ends_with("getoverrun=ESRCH"));
        assert_eq!(all.len(), 4);
        // A limit of 0 hides every handler run, never an unbinding.
        assert_eq!(
            Shown { limit: Some(0) }.lines(&[unbound], name),
            [" 0.000000004  a   ~ t1 unbound: LWP 2 exited, the timer runs on"]
        );
    }
}
