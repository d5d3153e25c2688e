//! Time units and the host time source.
//!
//! Models the `get_clock()` / `get_clock_realtime()` helpers and the
//! `SCALE_*` constants of QEMU's `qemu-timer.c` / `qemu-timer.h`.
//!
//! * Emulator clock values are nanoseconds in an `i64`, as QEMU's
//!   `int64_t`: negative values are legal (a deadline in the past), and
//!   arithmetic on them saturates rather than wrapping.
//! * The host is a [`TimeSource`]: either [`TimeSource::Real`] (the kernel's
//!   `CLOCK_MONOTONIC` and `CLOCK_REALTIME`, read with `clock_gettime`) or
//!   [`TimeSource::Sim`] (a [`SimTime`] that moves only when the simulated
//!   host in [`crate::sim`] moves it), so every layer above can be tested to
//!   the nanosecond.
//!
//! # Invariants
//!
//! * On the simulated host the wall clock is always `mono + wall_offset`;
//!   the offset changes only through a deliberate wall-clock step, so
//!   between steps both clocks advance by exactly the same amount.
//! * [`SimTime`] is mutated only by this crate (the simulated host): user
//!   code cannot move time without the timers that depend on it running.
//!
//! Deviation from QEMU: QEMU reads the wall clock with `gettimeofday`
//! (microseconds); this reads `CLOCK_REALTIME` in nanoseconds.

use nix::errno::Errno;
use nix::time::{ClockId, clock_gettime};

use itimer_sync::atomic::{AtomicI64, Ordering};

/// Nanoseconds in one microsecond.
pub const NS_PER_US: i64 = 1_000;
/// Nanoseconds in one millisecond.
pub const NS_PER_MS: i64 = 1_000_000;
/// Nanoseconds in one second.
pub const NS_PER_SEC: i64 = 1_000_000_000;

/// The unit a timer's expire times are given in (QEMU's `SCALE_NS`,
/// `SCALE_US`, `SCALE_MS`). A timer is always kept in nanoseconds inside;
/// the scale only converts at the API boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scale {
    /// Expire times in nanoseconds.
    Ns,
    /// Expire times in microseconds.
    Us,
    /// Expire times in milliseconds.
    Ms,
}

impl Scale {
    /// Nanoseconds in one unit of this scale.
    pub const fn nanos(self) -> i64 {
        match self {
            Scale::Ns => 1,
            Scale::Us => NS_PER_US,
            Scale::Ms => NS_PER_MS,
        }
    }

    /// Converts `value` units to nanoseconds; `EOVERFLOW` when the result
    /// does not fit an `i64`.
    pub fn to_ns(self, value: i64) -> Result<i64, Errno> {
        value.checked_mul(self.nanos()).ok_or(Errno::EOVERFLOW)
    }

    /// Converts nanoseconds to whole units of this scale, rounding towards
    /// negative infinity (so a deadline is never reported early).
    pub fn from_ns(self, ns: i64) -> i64 {
        ns.div_euclid(self.nanos())
    }
}

/// One reading of both host clocks taken together, for detecting wall-clock
/// steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockPair {
    /// Host monotonic time, ns.
    pub mono_ns: i64,
    /// Host wall time (ns since the Unix epoch).
    pub wall_ns: i64,
    /// How far `mono_ns` may be from the instant `wall_ns` was read, ns
    /// (0 on the simulated host, where the two are read atomically).
    pub uncertainty_ns: i64,
}

/// Largest gap between the two monotonic reads bracketing a wall read that
/// [`TimeSource::sample_pair`] accepts without retrying, ns. A larger gap
/// means the reader was preempted and the pair is imprecise.
pub const PAIR_MAX_GAP_NS: i64 = 50 * NS_PER_US;

/// Retries [`TimeSource::sample_pair`] makes before settling for the
/// tightest pair it saw.
pub const PAIR_MAX_TRIES: u32 = 4;

/// The simulated host's two clocks. Moves only when the simulated host
/// ([`crate::sim::SimHost`]) advances or steps it.
#[derive(Debug)]
pub struct SimTime {
    /// Host monotonic time, ns. Written only by the simulated host driver.
    mono_ns: AtomicI64,
    /// Wall time minus monotonic time, ns. Changes only on a wall step.
    wall_offset_ns: AtomicI64,
}

impl SimTime {
    /// A simulated host whose clocks read `mono_ns` and `wall_ns`.
    pub fn new(mono_ns: i64, wall_ns: i64) -> Self {
        SimTime {
            mono_ns: AtomicI64::new(mono_ns),
            wall_offset_ns: AtomicI64::new(wall_ns.saturating_sub(mono_ns)),
        }
    }

    /// The simulated monotonic time, ns.
    pub fn mono_ns(&self) -> i64 {
        self.mono_ns.load(Ordering::SeqCst)
    }

    /// The simulated wall time, ns since the epoch.
    pub fn wall_ns(&self) -> i64 {
        self.mono_ns()
            .saturating_add(self.wall_offset_ns.load(Ordering::SeqCst))
    }

    /// Moves monotonic time (and with it wall time) to `mono_ns`. Only the
    /// simulated host calls this, and never backwards.
    pub(crate) fn set_mono(&self, mono_ns: i64) {
        debug_assert!(mono_ns >= self.mono_ns(), "simulated time never goes back");
        self.mono_ns.store(mono_ns, Ordering::SeqCst);
    }

    /// Steps the wall clock by `delta_ns` (either sign) without moving
    /// monotonic time, as `clock_settime(CLOCK_REALTIME)` would.
    pub(crate) fn step_wall(&self, delta_ns: i64) {
        let old = self.wall_offset_ns.load(Ordering::SeqCst);
        self.wall_offset_ns
            .store(old.saturating_add(delta_ns), Ordering::SeqCst);
    }
}

/// Where host time comes from.
#[derive(Debug, Clone)]
pub enum TimeSource {
    /// The kernel's `CLOCK_MONOTONIC` and `CLOCK_REALTIME`.
    Real,
    /// A simulated host, moved by hand.
    Sim(itimer_sync::Arc<SimTime>),
}

fn read_clock(id: ClockId) -> i64 {
    // CLOCK_MONOTONIC and CLOCK_REALTIME exist on every Linux and the
    // timespec pointer is ours, so clock_gettime cannot fail here.
    let ts = clock_gettime(id).expect("CLOCK_MONOTONIC/CLOCK_REALTIME are always readable");
    ts.tv_sec()
        .saturating_mul(NS_PER_SEC)
        .saturating_add(ts.tv_nsec())
}

impl TimeSource {
    /// Host monotonic time, ns.
    pub fn monotonic_ns(&self) -> i64 {
        match self {
            TimeSource::Real => read_clock(ClockId::CLOCK_MONOTONIC),
            TimeSource::Sim(t) => t.mono_ns(),
        }
    }

    /// Host wall time, ns since the Unix epoch.
    pub fn wall_ns(&self) -> i64 {
        match self {
            TimeSource::Real => read_clock(ClockId::CLOCK_REALTIME),
            TimeSource::Sim(t) => t.wall_ns(),
        }
    }

    /// Reads both clocks as one pair. On the real host the wall read is
    /// bracketed by two monotonic reads and retried (up to
    /// [`PAIR_MAX_TRIES`]) while the bracket is wider than
    /// [`PAIR_MAX_GAP_NS`]; the pair's monotonic time is the bracket's
    /// midpoint and its uncertainty half the bracket.
    pub fn sample_pair(&self) -> ClockPair {
        match self {
            TimeSource::Sim(t) => ClockPair {
                mono_ns: t.mono_ns(),
                wall_ns: t.wall_ns(),
                uncertainty_ns: 0,
            },
            TimeSource::Real => {
                let mut best: Option<ClockPair> = None;
                for _ in 0..PAIR_MAX_TRIES {
                    let before = read_clock(ClockId::CLOCK_MONOTONIC);
                    let wall = read_clock(ClockId::CLOCK_REALTIME);
                    let after = read_clock(ClockId::CLOCK_MONOTONIC);
                    let half = (after - before) / 2;
                    let pair = ClockPair {
                        mono_ns: before + half,
                        wall_ns: wall,
                        uncertainty_ns: half + 1,
                    };
                    if best.is_none_or(|b| pair.uncertainty_ns < b.uncertainty_ns) {
                        best = Some(pair);
                    }
                    if after - before <= PAIR_MAX_GAP_NS {
                        break;
                    }
                }
                best.expect("PAIR_MAX_TRIES is at least one")
            }
        }
    }

    /// The simulated clocks, when this is the simulated host.
    pub fn sim(&self) -> Option<&SimTime> {
        match self {
            TimeSource::Real => None,
            TimeSource::Sim(t) => Some(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_round_trips_and_overflows() {
        assert_eq!(Scale::Ms.to_ns(3), Ok(3_000_000));
        assert_eq!(Scale::Us.to_ns(-2), Ok(-2_000));
        assert_eq!(Scale::Ms.to_ns(i64::MAX / 1000), Err(Errno::EOVERFLOW));
        assert_eq!(Scale::Ms.from_ns(3_999_999), 3);
        assert_eq!(Scale::Ms.from_ns(-1), -1);
    }

    #[test]
    fn sim_time_moves_only_by_hand() {
        let t = SimTime::new(10, 1_000);
        assert_eq!((t.mono_ns(), t.wall_ns()), (10, 1_000));
        t.set_mono(25);
        assert_eq!((t.mono_ns(), t.wall_ns()), (25, 1_015));
        t.step_wall(-500);
        assert_eq!((t.mono_ns(), t.wall_ns()), (25, 515));
        let src = TimeSource::Sim(itimer_sync::Arc::new(t));
        assert_eq!(
            src.sample_pair(),
            ClockPair {
                mono_ns: 25,
                wall_ns: 515,
                uncertainty_ns: 0
            }
        );
    }

    #[test]
    fn real_pair_is_plausible() {
        let src = TimeSource::Real;
        let a = src.monotonic_ns();
        let p = src.sample_pair();
        let b = src.monotonic_ns();
        assert!(a <= p.mono_ns && p.mono_ns <= b);
        assert!(p.uncertainty_ns >= 1);
        // The wall clock is after 2020-01-01 on any machine running this.
        assert!(p.wall_ns > 1_577_836_800 * NS_PER_SEC);
    }
}
