//! Choosing a host alarm backend: the precedence list, its `-clock`-style
//! reordering, `help`, and "first that starts wins".
//!
//! Models `alarm_timers[]`, `configure_alarms`, `show_available_alarms` and
//! `init_timer_alarm` in QEMU's `qemu-timer.c`.
//!
//! # Precedence
//!
//! The default order is [`BackendKind::ALL`]: `timerfd, dynticks, unix,
//! mmtimer, timerqueue` (most precise and least intrusive first; the two
//! Windows emulations last). [`start_first`] tries each in order and keeps
//! the first whose `start` succeeds; if none does, it returns every
//! [`StartError`] in [`AllFailed`].
//!
//! # The name list (QEMU's `-clock`), and where we differ
//!
//! QEMU's `configure_alarms` split the list on commas, moved each known
//! name to the front in the order given (ignoring a name seen twice),
//! printed "Unknown clock" for an unknown name and skipped it, then
//! **disabled every backend not named**; `help` printed the list and exited
//! the process, and a list with no known name printed it and exited with
//! status 1. Our choices:
//!
//! * named backends come first, in the given order; the **unnamed ones
//!   stay, after them, in default order**, as fallbacks (so `unix` alone
//!   still falls back to `timerfd` when another `unix` is live);
//! * a repeated name is ignored after its first occurrence, as in QEMU;
//! * surrounding whitespace of a name is ignored;
//! * an unknown or empty name is an error ([`UnknownBackend`]) that lists
//!   the valid names, not a warning, and nothing exits;
//! * `help` (alone) yields [`Choice::Help`]; the listing is data
//!   ([`HelpListing`]) with a `Display`, printed by the caller.
//!
//! # Probing
//!
//! [`which_start_here`] starts and stops each backend on the calling thread
//! (for `itimer alarms`). `unix` is probed carefully: if another `unix`
//! backend is live it is reported busy without touching anything (the
//! process-wide claim fails first); otherwise it installs and restores its
//! `SIGALRM` handler without arming the timer. `dynticks` is probed on the
//! calling thread, and reports busy if that thread runs one already.
//!
//! No state and no lock live here.

use std::fmt;

use super::dynticks::DynticksBackend;
use super::mmtimer::MmTimerBackend;
use super::timerfd::TimerFdBackend;
use super::timerqueue::TimerQueueBackend;
use super::unix::UnixBackend;
use super::{AlarmBackend, StartError};

/// One kind of host alarm backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Linux timerfd on `CLOCK_MONOTONIC` (+ wall-clock step detection).
    Timerfd,
    /// POSIX timer, thread-directed real-time signal, signalfd.
    Dynticks,
    /// `setitimer(ITIMER_REAL)` + `SIGALRM`, one per process.
    Unix,
    /// Windows multimedia timer semantics, emulated.
    Mmtimer,
    /// Windows timer-queue semantics, emulated.
    Timerqueue,
}

impl BackendKind {
    /// Every backend, in default precedence order.
    pub const ALL: [BackendKind; 5] = [
        BackendKind::Timerfd,
        BackendKind::Dynticks,
        BackendKind::Unix,
        BackendKind::Mmtimer,
        BackendKind::Timerqueue,
    ];

    /// The name used in precedence lists.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Timerfd => super::timerfd::NAME,
            BackendKind::Dynticks => super::dynticks::NAME,
            BackendKind::Unix => super::unix::NAME,
            BackendKind::Mmtimer => super::mmtimer::NAME,
            BackendKind::Timerqueue => super::timerqueue::NAME,
        }
    }

    /// A one-line description for `help`.
    pub fn description(self) -> &'static str {
        match self {
            BackendKind::Timerfd => {
                "timerfd on CLOCK_MONOTONIC, absolute deadlines, detects wall-clock steps (1 ns)"
            }
            BackendKind::Dynticks => {
                "POSIX timer, signal SIGRTMIN+4 to the loop thread, read via signalfd (1 ns)"
            }
            BackendKind::Unix => {
                "setitimer(ITIMER_REAL) and SIGALRM, one per process, one alarm per ms at most (1 us)"
            }
            BackendKind::Mmtimer => {
                "Windows multimedia timer semantics (timeSetEvent), emulated (1 ms)"
            }
            BackendKind::Timerqueue => {
                "Windows timer-queue semantics (CreateTimerQueueTimer), emulated (1 ms)"
            }
        }
    }

    /// The kind named `name` exactly, if any.
    pub fn from_name(name: &str) -> Option<BackendKind> {
        BackendKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// A new, stopped backend of this kind.
    pub fn instantiate(self) -> Box<dyn AlarmBackend> {
        match self {
            BackendKind::Timerfd => Box::new(TimerFdBackend::new()),
            BackendKind::Dynticks => Box::new(DynticksBackend::new()),
            BackendKind::Unix => Box::new(UnixBackend::new()),
            BackendKind::Mmtimer => Box::new(MmTimerBackend::new()),
            BackendKind::Timerqueue => Box::new(TimerQueueBackend::new()),
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The word that asks for the listing instead of a list.
pub const HELP_WORD: &str = "help";

/// A name in a list that is not a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBackend {
    /// The offending name, whitespace-trimmed (empty for an empty entry).
    pub name: String,
}

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown alarm backend `{}`; valid names are: ",
            self.name
        )?;
        for (i, k) in BackendKind::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(k.name())?;
        }
        write!(f, " (or `{HELP_WORD}` for the list)")
    }
}

impl std::error::Error for UnknownBackend {}

/// An order in which to try backends; always holds every kind exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precedence(Vec<BackendKind>);

impl Default for Precedence {
    fn default() -> Self {
        Precedence(BackendKind::ALL.to_vec())
    }
}

impl Precedence {
    /// Parses a comma-separated name list: the named backends first, in the
    /// given order, then the others in default order. `help` is not a
    /// backend name here (see [`Choice::parse`]).
    pub fn parse(list: &str) -> Result<Precedence, UnknownBackend> {
        let mut order: Vec<BackendKind> = Vec::with_capacity(BackendKind::ALL.len());
        for raw in list.split(',') {
            let name = raw.trim();
            let kind = BackendKind::from_name(name).ok_or_else(|| UnknownBackend {
                name: name.to_owned(),
            })?;
            if !order.contains(&kind) {
                order.push(kind);
            }
        }
        for kind in BackendKind::ALL {
            if !order.contains(&kind) {
                order.push(kind);
            }
        }
        Ok(Precedence(order))
    }

    /// The kinds, in the order they are tried.
    pub fn kinds(&self) -> &[BackendKind] {
        &self.0
    }
}

impl fmt::Display for Precedence {
    /// The list in the syntax [`Precedence::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, k) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(k.name())?;
        }
        Ok(())
    }
}

/// What a `-clock`-style option asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// `help`: show [`help`]'s listing.
    Help,
    /// A precedence to try.
    List(Precedence),
}

impl Choice {
    /// `help` (surrounding whitespace ignored) or a name list.
    pub fn parse(option: &str) -> Result<Choice, UnknownBackend> {
        if option.trim() == HELP_WORD {
            return Ok(Choice::Help);
        }
        Precedence::parse(option).map(Choice::List)
    }
}

/// The `help` listing: every backend in default order with its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpListing {
    /// `(name, one-line description)`, in default precedence order.
    pub entries: Vec<(&'static str, &'static str)>,
}

/// The listing `help` shows.
pub fn help() -> HelpListing {
    HelpListing {
        entries: BackendKind::ALL
            .iter()
            .map(|k| (k.name(), k.description()))
            .collect(),
    }
}

impl fmt::Display for HelpListing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Available alarm backends, in default precedence order:")?;
        let width = self.entries.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        for (name, description) in &self.entries {
            writeln!(f, "  {name:<width$}  {description}")?;
        }
        Ok(())
    }
}

/// No backend could start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllFailed {
    /// Each backend's failure, in the order they were tried.
    pub errors: Vec<StartError>,
}

impl fmt::Display for AllFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no host alarm backend could start")?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AllFailed {}

/// New, stopped backends in `precedence` order.
pub fn candidates(precedence: &Precedence) -> Vec<Box<dyn AlarmBackend>> {
    precedence.kinds().iter().map(|k| k.instantiate()).collect()
}

/// Starts the first of `candidates` that starts (on the calling thread,
/// which must be the loop thread); the others are dropped unstarted.
pub fn start_first_of(
    candidates: Vec<Box<dyn AlarmBackend>>,
) -> Result<Box<dyn AlarmBackend>, AllFailed> {
    let mut errors = Vec::new();
    for mut backend in candidates {
        match backend.start() {
            Ok(()) => return Ok(backend),
            Err(e) => errors.push(e),
        }
    }
    Err(AllFailed { errors })
}

/// Starts the first backend of `precedence` that starts, on the calling
/// thread (which must be the loop thread).
pub fn start_first(precedence: &Precedence) -> Result<Box<dyn AlarmBackend>, AllFailed> {
    start_first_of(candidates(precedence))
}

/// What a started backend reported while probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeInfo {
    /// [`AlarmBackend::resolution_ns`] once started.
    pub resolution_ns: u64,
    /// [`AlarmBackend::min_rearm_ns`] once started.
    pub min_rearm_ns: u64,
}

/// One backend's probe result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The backend probed.
    pub kind: BackendKind,
    /// What it reported, or why it cannot start here now.
    pub outcome: Result<ProbeInfo, StartError>,
}

/// Starts and stops every backend, in default order, on the calling thread.
pub fn which_start_here() -> Vec<Probe> {
    BackendKind::ALL
        .into_iter()
        .map(|kind| {
            let mut backend = kind.instantiate();
            let outcome = backend.start().map(|()| ProbeInfo {
                resolution_ns: backend.resolution_ns(),
                min_rearm_ns: backend.min_rearm_ns(),
            });
            backend.stop();
            Probe { kind, outcome }
        })
        .collect()
}
