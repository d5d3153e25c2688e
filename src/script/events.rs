//! What happened while a command ran: expiries seen in the kernel's
//! timer state and SIGEV_THREAD callbacks, and how they are printed.
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
//! Each command prints at most [`Shown::limit`] lines per timer (the
//! script's `limit`), then one line summing up the rest.

use std::collections::BTreeMap;

use super::units::fmt_time;

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
}

/// An event, with where and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Model time, ns since boot.
    pub time: i64,
    /// Index of the process (spawn order).
    pub proc: usize,
    /// Index of the timer in its process (creation order).
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
            if self.limit.is_none_or(|l| *n < l) {
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
                    "{tn} ... {} more callbacks not shown ({} expirations) up to here",
                    h.lines, h.expirations
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
}
