//! The scenario language's values: durations and clock readings, raw
//! `timespec` literals, signal names and sets, clock names, errno names.
//!
//! Every value is exact: durations are integer nanoseconds, and each
//! formatter prints a form [`parse_duration`] reads back to the same
//! number. Durations are signed so that a script can pass a negative
//! `timespec` to the raw layer (and see its `EINVAL`).
//!
//! | written | means |
//! |---|---|
//! | `0`, `7ns`, `250us` (or `250µs`), `5ms`, `10s`, `1.5ms`, `-1ns` | a duration (a unit is required except for `0`) |
//! | `{0,1000000000}` | a raw `timespec` `{tv_sec, tv_nsec}`, unchecked |
//! | `1700000000.000000001s` | a clock reading, in seconds with nine decimals |

use crate::kernel::abi::{
    self, CLOCK_HIGHRES, CLOCK_PROCESS_CPUTIME_ID, CLOCK_REALTIME, CLOCK_REALTIME0,
    CLOCK_THREAD_CPUTIME_ID, CLOCK_VIRTUAL, CLOCK_VM, NSIG, SIGALRM, SIGKILL, SIGRTMAX, SIGRTMIN,
    SIGSTOP, SIGUSR1, SIGUSR2, Timespec,
};
use crate::kernel::{Errno, SigSet};

/// Nanoseconds per second.
pub const NS_PER_SEC: i128 = 1_000_000_000;

/// The units a duration may carry, largest first, with their size in ns.
const UNITS: [(&str, i128); 5] = [
    ("s", NS_PER_SEC),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("µs", 1_000),
    ("ns", 1),
];

/// Parses a duration (`5ms`, `1.5s`, `-1ns`, `+10s`, `0`) into signed
/// nanoseconds. A fraction must be a whole number of nanoseconds.
pub fn parse_duration(text: &str) -> Result<i128, String> {
    let bad =
        || format!("`{text}` is not a duration (write e.g. `5ms`, `1.5s`, `250us`, `7ns`, `0`)");
    let (sign, body) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    if body == "0" {
        return Ok(0);
    }
    // The longest matching unit suffix ("ms" before "s").
    let (number, scale) = UNITS
        .iter()
        .filter(|(u, _)| body.ends_with(u))
        .max_by_key(|(u, _)| u.len())
        .map(|(u, scale)| (&body[..body.len() - u.len()], *scale))
        .ok_or_else(bad)?;
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (number.contains('.') && frac.is_empty()) {
        return Err(bad());
    }
    let int: i128 = int.parse().map_err(|_| bad())?;
    let mut ns = int.checked_mul(scale).ok_or_else(bad)?;
    let mut place = scale;
    for digit in frac.bytes() {
        if place % 10 != 0 {
            return Err(format!("`{text}` is finer than a nanosecond"));
        }
        place /= 10;
        ns += i128::from(digit - b'0') * place;
    }
    if ns > i128::from(i64::MAX) * 4 {
        return Err(format!("`{text}` is too long"));
    }
    Ok(sign * ns)
}

/// Formats a duration in the largest unit that divides it exactly
/// (`5ms`, `1500us`, `1000000001ns`, `0`).
pub fn fmt_duration(ns: i128) -> String {
    if ns == 0 {
        return "0".to_owned();
    }
    let (sign, mag) = if ns < 0 { ("-", -ns) } else { ("", ns) };
    for (unit, scale) in [
        ("s", NS_PER_SEC),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        if mag % scale == 0 {
            return format!("{sign}{}{unit}", mag / scale);
        }
    }
    unreachable!("every integer is a whole number of ns")
}

/// Formats a clock reading as seconds with nine decimals
/// (`1700000000.005000000s`).
pub fn fmt_reading(ns: i128) -> String {
    let (sign, mag) = if ns < 0 { ("-", -ns) } else { ("", ns) };
    format!("{sign}{}.{:09}s", mag / NS_PER_SEC, mag % NS_PER_SEC)
}

/// The model time column of a trace line: seconds with nine decimals.
pub fn fmt_time(ns: i64) -> String {
    let ns = i128::from(ns);
    format!("{}.{:09}", ns / NS_PER_SEC, ns % NS_PER_SEC)
}

/// Splits signed nanoseconds into a `timespec` (`tv_nsec` in `0..1e9`,
/// `tv_sec` negative for a negative duration), or `None` if the seconds
/// do not fit.
pub fn ns_to_timespec(ns: i128) -> Option<Timespec> {
    let sec = ns.div_euclid(NS_PER_SEC);
    let nsec = ns.rem_euclid(NS_PER_SEC);
    Some(Timespec {
        tv_sec: i64::try_from(sec).ok()?,
        tv_nsec: nsec as i64,
    })
}

/// A kernel-produced `timespec` as nanoseconds.
pub fn timespec_ns(ts: &Timespec) -> i128 {
    i128::from(ts.tv_sec) * NS_PER_SEC + i128::from(ts.tv_nsec)
}

/// A time written in a script: either exact nanoseconds, or a raw
/// `timespec` literal passed to the kernel unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeArg {
    /// Signed nanoseconds.
    Ns(i128),
    /// `{tv_sec,tv_nsec}`, as written.
    Raw(Timespec),
}

impl TimeArg {
    /// Parses a duration or a `{sec,nsec}` literal.
    pub fn parse(text: &str) -> Result<TimeArg, String> {
        if let Some(inner) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            let bad = || format!("`{text}` is not a timespec literal (write `{{sec,nsec}}`)");
            let (s, n) = inner.split_once(',').ok_or_else(bad)?;
            return Ok(TimeArg::Raw(Timespec {
                tv_sec: s.trim().parse().map_err(|_| bad())?,
                tv_nsec: n.trim().parse().map_err(|_| bad())?,
            }));
        }
        parse_duration(text).map(TimeArg::Ns)
    }

    /// The `timespec` to pass (`EINVAL` when the seconds overflow).
    pub fn to_timespec(self) -> Result<Timespec, Errno> {
        match self {
            TimeArg::Ns(ns) => ns_to_timespec(ns).ok_or(Errno::EINVAL),
            TimeArg::Raw(ts) => Ok(ts),
        }
    }

    /// As written back in a trace (durations in their exact unit).
    pub fn fmt_duration(self) -> String {
        match self {
            TimeArg::Ns(ns) => fmt_duration(ns),
            TimeArg::Raw(ts) => format!("{{{},{}}}", ts.tv_sec, ts.tv_nsec),
        }
    }

    /// As written back in a trace (readings in seconds).
    pub fn fmt_reading(self) -> String {
        match self {
            TimeArg::Ns(ns) => fmt_reading(ns),
            TimeArg::Raw(ts) => format!("{{{},{}}}", ts.tv_sec, ts.tv_nsec),
        }
    }
}

/// Named signals (besides `SIGRTMIN+n` / `SIGRTMAX-n` and numbers).
const SIGNALS: [(&str, i32); 7] = [
    ("SIGALRM", SIGALRM),
    ("SIGUSR1", SIGUSR1),
    ("SIGUSR2", SIGUSR2),
    ("SIGKILL", SIGKILL),
    ("SIGSTOP", SIGSTOP),
    ("SIGRTMIN", SIGRTMIN),
    ("SIGRTMAX", SIGRTMAX),
];

/// Parses a signal: `SIGALRM`, `SIGUSR1`, `SIGRTMIN+2`, `SIGRTMAX-1`, or a
/// number (any number: the kernel judges it). Case-insensitive.
pub fn parse_signal(text: &str) -> Result<i32, String> {
    let bad = || {
        format!(
            "`{text}` is not a signal (write SIGALRM, SIGUSR1, SIGUSR2, SIGRTMIN+N, SIGRTMAX-N \
             or a number)"
        )
    };
    if let Ok(n) = text.parse::<i32>() {
        return Ok(n);
    }
    let up = text.to_ascii_uppercase();
    if let Some((_, n)) = SIGNALS.iter().find(|(name, _)| *name == up) {
        return Ok(*n);
    }
    for (base, n, dir) in [("SIGRTMIN+", SIGRTMIN, 1), ("SIGRTMAX-", SIGRTMAX, -1)] {
        if let Some(k) = up.strip_prefix(base) {
            let k: i32 = k.parse().map_err(|_| bad())?;
            return n.checked_add(dir * k).ok_or_else(bad);
        }
    }
    Err(bad())
}

/// A signal's name (`SIGALRM`, `SIGRTMIN+2`, or `SIG<n>`).
pub fn fmt_signal(signo: i32) -> String {
    if let Some((name, _)) = SIGNALS.iter().find(|(_, n)| *n == signo) {
        return (*name).to_owned();
    }
    if (SIGRTMIN..SIGRTMAX).contains(&signo) {
        return format!("SIGRTMIN+{}", signo - SIGRTMIN);
    }
    format!("SIG{signo}")
}

/// A signal set as `{SIGALRM,SIGUSR1}`, lowest first.
pub fn fmt_sigset(set: SigSet) -> String {
    let names: Vec<String> = (1..NSIG)
        .filter(|s| set.contains(*s))
        .map(fmt_signal)
        .collect();
    format!("{{{}}}", names.join(","))
}

/// Clock names, in the order `help` lists them.
pub const CLOCKS: [(&str, i32); 8] = [
    ("realtime", CLOCK_REALTIME),
    ("highres", CLOCK_HIGHRES),
    ("monotonic", abi::CLOCK_MONOTONIC),
    ("vm", CLOCK_VM),
    ("realtime0", CLOCK_REALTIME0),
    ("virtual", CLOCK_VIRTUAL),
    ("thread_cputime", CLOCK_THREAD_CPUTIME_ID),
    ("process_cputime", CLOCK_PROCESS_CPUTIME_ID),
];

/// Parses a clock name (case-insensitive) or a clock id number.
pub fn parse_clock(text: &str) -> Result<i32, String> {
    if let Ok(n) = text.parse::<i32>() {
        return Ok(n);
    }
    let low = text.to_ascii_lowercase();
    CLOCKS
        .iter()
        .find(|(name, _)| *name == low)
        .map(|(_, id)| *id)
        .ok_or_else(|| {
            let names: Vec<&str> = CLOCKS.iter().map(|(n, _)| *n).collect();
            format!(
                "`{text}` is not a clock (valid: {}, or a number)",
                names.join(", ")
            )
        })
}

/// A clock id's canonical name (`monotonic` prints as `highres`, its id's
/// first name), or its number.
pub fn fmt_clock(id: i32) -> String {
    CLOCKS
        .iter()
        .find(|(_, n)| *n == id)
        .map_or_else(|| id.to_string(), |(name, _)| (*name).to_owned())
}

/// An errno as its symbolic name (`EINVAL`).
pub fn fmt_errno(e: Errno) -> String {
    format!("{e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_exactly() {
        for (text, ns) in [
            ("0", 0),
            ("7ns", 7),
            ("250us", 250_000),
            ("250µs", 250_000),
            ("5ms", 5_000_000),
            ("1.5ms", 1_500_000),
            ("10s", 10_000_000_000),
            ("-1ns", -1),
            ("+10s", 10_000_000_000),
            ("1700000000.000000001s", 1_700_000_000_000_000_001),
        ] {
            assert_eq!(parse_duration(text), Ok(ns), "{text}");
            assert_eq!(parse_duration(&fmt_duration(ns)), Ok(ns));
            assert_eq!(parse_duration(&fmt_reading(ns)), Ok(ns));
        }
        assert_eq!(fmt_duration(1_500_000), "1500us");
        assert_eq!(fmt_duration(-2_000_000_000), "-2s");
        assert_eq!(fmt_reading(5_000_000), "0.005000000s");
        assert_eq!(fmt_time(1_000_000_007), "1.000000007");
        for bad in [
            "",
            "5",
            "ms",
            "1.ms",
            ".5s",
            "1.0000000001s",
            "5 ms",
            "5h",
            "--1s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timespecs() {
        assert_eq!(
            TimeArg::parse("{0,1000000000}").unwrap().to_timespec(),
            Ok(Timespec {
                tv_sec: 0,
                tv_nsec: 1_000_000_000
            })
        );
        assert_eq!(
            TimeArg::parse("-1ns").unwrap().to_timespec(),
            Ok(Timespec {
                tv_sec: -1,
                tv_nsec: 999_999_999
            })
        );
        assert!(TimeArg::parse("{1}").is_err());
    }

    #[test]
    fn signals_and_clocks() {
        assert_eq!(parse_signal("sigalrm"), Ok(SIGALRM));
        assert_eq!(parse_signal("SIGRTMIN+2"), Ok(SIGRTMIN + 2));
        assert_eq!(parse_signal("SIGRTMAX-1"), Ok(SIGRTMAX - 1));
        assert_eq!(parse_signal("99"), Ok(99));
        assert!(parse_signal("SIGFOO").is_err());
        assert_eq!(fmt_signal(SIGRTMIN + 2), "SIGRTMIN+2");
        assert_eq!(fmt_signal(99), "SIG99");
        assert_eq!(
            fmt_sigset(SigSet::of(SIGALRM).unwrap().with(SIGUSR1).unwrap()),
            "{SIGALRM,SIGUSR1}"
        );
        assert_eq!(parse_clock("MONOTONIC"), Ok(CLOCK_HIGHRES));
        assert_eq!(fmt_clock(CLOCK_HIGHRES), "highres");
        assert_eq!(fmt_clock(42), "42");
        assert!(
            parse_clock("wall")
                .unwrap_err()
                .contains("realtime, highres")
        );
        assert_eq!(fmt_errno(Errno::EINVAL), "EINVAL");
    }
}
