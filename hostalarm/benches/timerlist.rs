//! The O(log n) timer list against the sorted-vector reference, at N =
//! 1e3, 1e4, 1e5 and 1e6 armed timers.
//!
//! * `arm_cancel`: arm one more timer at a uniformly random expire time
//!   within the armed span, then cancel it (the list returns to N).
//! * `pop_rearm`: pop the earliest timer and re-arm it behind all others,
//!   as a periodic timer does (the list stays at N).
//!
//! Lists are prefilled in ascending expire order, which costs O(log n) per
//! timer for both structures, so the sorted list's O(n) insertion does not
//! make the setup itself take minutes; the resulting contents are the same
//! as for any insertion order. Sample sizes are small (10) and measurement
//! short: these are orders of magnitude, not fine comparisons. Run with
//! `cargo bench -p itimer-hostalarm --bench timerlist`.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use itimer_hostalarm::sorted_list::SortedList;
use itimer_hostalarm::timerlist::{TimerKey, TimerList, TimerQueue};

/// Spacing of the prefilled expire times, ns.
const SPACING: i64 = 1_000;

const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];

/// SplitMix64: a deterministic, dependency-free random sequence.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn prefilled<Q: TimerQueue + Default>(n: usize) -> Q {
    let mut q = Q::default();
    for k in 0..n {
        q.arm(TimerKey(k), k as i64 * SPACING);
    }
    q
}

fn arm_cancel<Q: TimerQueue + Default>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, n: usize) {
    let mut q: Q = prefilled(n);
    let mut rng = SplitMix(n as u64);
    let span = n as u64 * SPACING as u64;
    let extra = TimerKey(n);
    g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
        b.iter(|| {
            q.arm(extra, (rng.next() % span) as i64);
            black_box(q.cancel(extra))
        })
    });
    assert_eq!(q.len(), n);
}

fn pop_rearm<Q: TimerQueue + Default>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, n: usize) {
    let mut q: Q = prefilled(n);
    let mut next = n as i64 * SPACING;
    g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
        b.iter(|| {
            let (e, k) = q.pop_due(i64::MAX).expect("never empty");
            q.arm(k, next);
            next += SPACING;
            black_box(e)
        })
    });
    assert_eq!(q.len(), n);
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));
    g
}

fn lists(c: &mut Criterion) {
    let mut g = configure(c, "arm_cancel");
    for n in SIZES {
        arm_cancel::<TimerList>(&mut g, "btree", n);
        arm_cancel::<SortedList>(&mut g, "sorted", n);
    }
    g.finish();
    let mut g = configure(c, "pop_rearm");
    for n in SIZES {
        pop_rearm::<TimerList>(&mut g, "btree", n);
        pop_rearm::<SortedList>(&mut g, "sorted", n);
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // Plot rendering takes longer than the measurements on a loaded VM.
    config = Criterion::default().without_plots();
    targets = lists
}
criterion_main!(benches);
