//! Validated time values: the one place a raw `timespec` becomes a number.
//!
//! Inside the kernel every time is a [`Nsec`]: an unsigned count of
//! nanoseconds. A `timespec` is accepted only when `tv_sec >= 0`,
//! `0 <= tv_nsec < 1e9` and `tv_sec * 1e9 + tv_nsec` fits in 63 bits (so a
//! clock value can also be held as an `i64`); anything else is `EINVAL`.
//! Arithmetic that could overflow is checked and also yields `EINVAL`.

use nix::errno::Errno;

use crate::abi::{Itimerspec, NANOSEC, Timespec};

/// A non-negative number of nanoseconds, at most `i64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Nsec(pub u64);

impl Nsec {
    /// Zero nanoseconds.
    pub const ZERO: Nsec = Nsec(0);
    /// The largest representable time.
    pub const MAX: Nsec = Nsec(i64::MAX as u64);

    /// Validates a `timespec`: `EINVAL` for a negative second, a nanosecond
    /// field outside `[0, 1e9)`, or a total that overflows.
    pub fn from_timespec(ts: &Timespec) -> Result<Nsec, Errno> {
        if ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= NANOSEC {
            return Err(Errno::EINVAL);
        }
        ts.tv_sec
            .checked_mul(NANOSEC)
            .and_then(|s| s.checked_add(ts.tv_nsec))
            .map(|n| Nsec(n as u64))
            .ok_or(Errno::EINVAL)
    }

    /// The `timespec` for this many nanoseconds.
    pub fn to_timespec(self) -> Timespec {
        let n = self.0 as i64;
        Timespec {
            tv_sec: n / NANOSEC,
            tv_nsec: n % NANOSEC,
        }
    }

    /// Whether this is zero (a disarming value).
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, or `EINVAL` past [`Nsec::MAX`].
    pub fn checked_add(self, other: Nsec) -> Result<Nsec, Errno> {
        match self.0.checked_add(other.0) {
            Some(n) if n <= Nsec::MAX.0 => Ok(Nsec(n)),
            _ => Err(Errno::EINVAL),
        }
    }

    /// `self - other`, clamped at zero.
    pub fn saturating_sub(self, other: Nsec) -> Nsec {
        Nsec(self.0.saturating_sub(other.0))
    }

    /// From a `Duration`, or `EINVAL` past [`Nsec::MAX`].
    pub fn from_duration(d: std::time::Duration) -> Result<Nsec, Errno> {
        u64::try_from(d.as_nanos())
            .ok()
            .filter(|n| *n <= Nsec::MAX.0)
            .map(Nsec)
            .ok_or(Errno::EINVAL)
    }

    /// As a `Duration`.
    pub fn to_duration(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0)
    }
}

/// A validated `itimerspec`, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ItimerSpecNs {
    /// Time to the first expiration (relative, or absolute on the timer's
    /// clock with `TIMER_ABSTIME`); zero means disarmed.
    pub value: Nsec,
    /// The period; zero for one-shot.
    pub interval: Nsec,
}

impl ItimerSpecNs {
    /// Validates an `itimerspec` as `timer_settime` does: the value always,
    /// the interval only when the value is non-zero (illumos: disarming
    /// ignores the interval's validity, and it is then stored as zero if
    /// invalid). `EINVAL` on failure.
    pub fn from_raw(raw: &Itimerspec) -> Result<ItimerSpecNs, Errno> {
        let value = Nsec::from_timespec(&raw.it_value)?;
        let interval = if value.is_zero() {
            Nsec::from_timespec(&raw.it_interval).unwrap_or(Nsec::ZERO)
        } else {
            Nsec::from_timespec(&raw.it_interval)?
        };
        Ok(ItimerSpecNs { value, interval })
    }

    /// The raw `itimerspec`.
    pub fn to_raw(self) -> Itimerspec {
        Itimerspec {
            it_interval: self.interval.to_timespec(),
            it_value: self.value.to_timespec(),
        }
    }
}

/// A timer run at `now` for its deadline `deadline` (`deadline <= now`):
/// the expirations to report and the next deadline, the one period rule
/// every clock backend follows (and `manual_clock`, so the kernel's tests
/// run against the product's arithmetic).
///
/// One-shot (`interval == 0`): one expiration, no next deadline. Periodic:
/// `k = 1 + ⌊(now − deadline) / interval⌋` expirations and the next
/// deadline `deadline + k × interval`, in O(1) however many periods were
/// missed. A next deadline past the end of time (`i64::MAX` ns) is clamped
/// to that instant, as Linux clamps to `KTIME_MAX`, so the timer stays
/// armed and `timer_gettime` tells the truth; it is `None` (disarmed) only
/// when `now` already reads that instant, since the timer would then run
/// again at once, for ever.
pub fn periods(deadline: i64, now: i64, interval: u64) -> (u64, Option<i64>) {
    if interval == 0 {
        return (1, None);
    }
    let iv = i128::from(interval);
    let k = (i128::from(now) - i128::from(deadline)).max(0) / iv + 1;
    let next = i128::from(deadline) + k * iv;
    let next = i64::try_from(next)
        .ok()
        .or(Some(i64::MAX).filter(|&end| end > now));
    (u64::try_from(k).unwrap_or(u64::MAX), next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(tv_sec: i64, tv_nsec: i64) -> Timespec {
        Timespec { tv_sec, tv_nsec }
    }

    #[test]
    fn timespec_bounds() {
        assert_eq!(Nsec::from_timespec(&ts(0, 0)), Ok(Nsec(0)));
        assert_eq!(
            Nsec::from_timespec(&ts(1, 999_999_999)),
            Ok(Nsec(1_999_999_999))
        );
        assert_eq!(Nsec::from_timespec(&ts(-1, 0)), Err(Errno::EINVAL));
        assert_eq!(Nsec::from_timespec(&ts(0, -1)), Err(Errno::EINVAL));
        assert_eq!(
            Nsec::from_timespec(&ts(0, 1_000_000_000)),
            Err(Errno::EINVAL)
        );
        assert_eq!(Nsec::from_timespec(&ts(i64::MAX, 0)), Err(Errno::EINVAL));
        let max_sec = i64::MAX / NANOSEC;
        assert!(Nsec::from_timespec(&ts(max_sec, 0)).is_ok());
        assert_eq!(
            Nsec::from_timespec(&ts(max_sec, 999_999_999)),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn round_trip() {
        let n = Nsec(12_345_678_901);
        assert_eq!(n.to_timespec(), ts(12, 345_678_901));
        assert_eq!(Nsec::from_timespec(&n.to_timespec()), Ok(n));
    }

    #[test]
    fn interval_checked_only_when_armed() {
        let bad = ts(0, -5);
        let disarm = Itimerspec {
            it_interval: bad,
            it_value: ts(0, 0),
        };
        assert_eq!(
            ItimerSpecNs::from_raw(&disarm),
            Ok(ItimerSpecNs {
                value: Nsec(0),
                interval: Nsec(0)
            })
        );
        let arm = Itimerspec {
            it_interval: bad,
            it_value: ts(1, 0),
        };
        assert_eq!(ItimerSpecNs::from_raw(&arm), Err(Errno::EINVAL));
    }

    #[test]
    fn checked_add_overflow() {
        assert_eq!(Nsec::MAX.checked_add(Nsec(1)), Err(Errno::EINVAL));
        assert_eq!(Nsec(1).checked_add(Nsec(2)), Ok(Nsec(3)));
    }

    #[test]
    fn periods_counts_missed_periods_and_clamps_at_the_end_of_time() {
        assert_eq!(periods(100, 100, 0), (1, None));
        assert_eq!(periods(100, 100, 10), (1, Some(110)));
        assert_eq!(periods(100, 135, 10), (4, Some(140)));
        let end = i64::MAX;
        assert_eq!(periods(end - 5, end - 1, 10), (1, Some(end)));
        assert_eq!(periods(end - 5, end, 10), (1, None));
    }
}
