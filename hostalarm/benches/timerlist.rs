//! The timer list ([`TimerList`], an indexed 4-ary heap) against the
//! sorted-vector reference and against the B-tree list it replaced, at
//! N = 1e3, 1e4, 1e5 and 1e6 armed timers, in one run, with a table of
//! ratios at the end.
//!
//! # Workloads (N armed timers throughout)
//!
//! * `arm_cancel`: arm a timer that is not armed at a uniformly random
//!   expire time within the armed span, then cancel a uniformly random armed
//!   timer (which becomes the next one armed). Both ends of the operation hit
//!   a random place in the structure, as arming and cancelling unrelated
//!   timers (timeouts of different connections, say) do. This is the
//!   headline arm + cancel figure.
//! * `arm_cancel_same`: arm a timer at a random expire time and cancel that
//!   same timer at once. This is how the earlier version of this benchmark
//!   measured arm + cancel; it is kept because it is a real pattern (a
//!   timeout armed and cancelled before anything else happens) and for
//!   comparison with earlier figures, but it flatters a heap: the entry just
//!   pushed is still at the bottom, in cache, when it is cancelled.
//! * `pop_rearm`: pop the earliest timer and re-arm it behind all others,
//!   as periodic timers with one common period do.
//! * `pop_hold`: pop the earliest timer and re-arm it a random period later
//!   (uniform in [span/2, 3 span/2), so the N timers stay spread over about
//!   the same span): periodic timers with different periods, the "hold"
//!   model of event-set benchmarks.
//! * `harness`: the random draws of one `arm_cancel` iteration alone (no
//!   list), so the fixed cost inside every figure is visible.
//!
//! # Setup (never timed)
//!
//! Every list holds the same timers: key `k` expires at `perm[k] * 1 µs` for
//! a random permutation `perm`, so a timer's key (its slot in the per-key
//! tables) says nothing about where it sits in the firing order, as with
//! real timers. (`TIMERLIST_KEYS=firing` makes key order the firing order,
//! as the first version of this benchmark did; every per-key table is then
//! walked in order, a best case.)
//!
//! The shape of a heap or a B-tree depends on the order timers were armed
//! in, and the shape a workload leaves lasts: a heap filled at random times
//! and then driven by `pop_rearm` stays several times slower to pop than one
//! filled in order, long after every timer has been re-armed. So each list
//! is filled in the order the workload itself arms timers (random times for
//! `arm_cancel*` and `pop_hold`, ascending for `pop_rearm`, whose re-arms
//! are ascending), and then the workload runs N times, untimed, before
//! timing starts (`TIMERLIST_FILL=random` fills at random times for every
//! workload, to see the other case). The sorted list is the exception: its contents and layout
//! depend only on which timers are armed, so it is always filled in
//! ascending order (no O(n) moves) and not churned. Its arming still scans
//! for an earlier arming of the key, so filling it with 1e6 timers takes a
//! minute or two; each filled list is built once, on first use (a filter
//! that skips it skips the fill), and cloned for each workload.
//!
//! Before anything is timed, the three lists are driven through the same
//! random operations and must fire identically.
//!
//! # Measurement
//!
//! Time is the CPU time of the benchmarking thread, not wall time: the
//! figures come from a machine shared with other jobs, and wall time would
//! include the time this thread waited for a CPU. What other jobs do to the
//! shared caches still shows (a million timers do not fit in what is left of
//! them), so the large sizes are the noisiest.
//!
//! # Reading the figures
//!
//! Criterion prints its own estimates per benchmark; the table at the end
//! gives the median ns per iteration, how many times faster than the sorted
//! list each list is, and the 1e6 / 1e3 cost ratio for each list. Sample
//! sizes are small (10) and measurement short: these are orders of magnitude
//! and ratios, not fine comparisons. Run with
//! `cargo bench -p itimer-hostalarm --bench timerlist`; a criterion filter
//! (e.g. `-- 'heap|btree'`) runs a subset, and the table shows what ran.

#[path = "timerlist/btree_list.rs"]
mod btree_list;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use itimer_hostalarm::sorted_list::SortedList;
use itimer_hostalarm::timerlist::{TimerKey, TimerList, TimerQueue};
use nix::time::{ClockId, clock_gettime};

use btree_list::BTreeList;

/// Spacing of the prefilled expire times, ns.
const SPACING: i64 = 1_000;

/// Numbers of armed timers.
const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];

/// The workloads, in the order they run and are tabulated.
const GROUPS: [&str; 5] = [
    "arm_cancel",
    "arm_cancel_same",
    "pop_rearm",
    "pop_hold",
    "harness",
];

/// The lists, in table order.
const LISTS: [&str; 3] = ["sorted", "btree", "heap"];

/// Criterion measurement: CPU time of the benchmarking thread
/// (`CLOCK_THREAD_CPUTIME_ID`), not wall time. The machine these figures
/// come from is shared with other jobs; wall time would count the time this
/// thread waits for a CPU, which has nothing to do with the list.
struct ThreadCpu;

impl ThreadCpu {
    fn now() -> Duration {
        let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
        Duration::from(t)
    }
}

impl Measurement for ThreadCpu {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        Self::now()
    }

    fn end(&self, start: Duration) -> Duration {
        Self::now().saturating_sub(start)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Prints CPU nanoseconds in the unit that suits them.
struct CpuFormatter;

impl CpuFormatter {
    fn unit(typical_ns: f64) -> (f64, &'static str) {
        match typical_ns {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e3, "µs"),
            t if t < 1e9 => (1e6, "ms"),
            _ => (1e9, "s"),
        }
    }
}

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical_ns: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = Self::unit(typical_ns);
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }

    fn scale_throughputs(&self, _: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        // Not used by these benchmarks; elements (or bytes) per CPU second.
        let per = match *t {
            Throughput::Bits(n)
            | Throughput::Bytes(n)
            | Throughput::BytesDecimal(n)
            | Throughput::Elements(n)
            | Throughput::ElementsAndBytes { elements: n, .. } => n,
        } as f64;
        values.iter_mut().for_each(|v| *v = per * 1e9 / *v);
        "/s"
    }

    fn scale_for_machines(&self, _: &mut [f64]) -> &'static str {
        "ns"
    }
}

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

    /// Uniform in `0..m` (multiply-shift: no division in the timed loop).
    fn below(&mut self, m: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(m)) >> 64) as u64
    }
}

/// How a list is filled (see the module docs for why they differ).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FillOrder {
    /// In key order, which is random expire order.
    Random,
    /// In ascending expire order.
    Ascending,
}

/// `TIMERLIST_KEYS=firing` gives key `k` the expire time `k * SPACING`, as
/// the first version of this benchmark did: firing order is then key order,
/// and every per-key table is walked sequentially (a best case; see
/// `docs/performance.md`).
fn keys_in_firing_order() -> bool {
    std::env::var_os("TIMERLIST_KEYS").is_some_and(|v| v == "firing")
}

/// `TIMERLIST_FILL=random` fills the heap and the B-tree at random times
/// for every workload, `pop_rearm` included (see the module docs).
fn fill_all_random() -> bool {
    std::env::var_os("TIMERLIST_FILL").is_some_and(|v| v == "random")
}

/// `(key, expire)` of every prefilled timer, in key order: keys `0..n`,
/// expire times a random permutation of `0, SPACING, .., (n-1) * SPACING`.
fn timers(n: usize) -> Vec<(TimerKey, i64)> {
    let mut perm: Vec<i64> = (0..n as i64).map(|i| i * SPACING).collect();
    if keys_in_firing_order() {
        return perm
            .into_iter()
            .enumerate()
            .map(|(k, e)| (TimerKey(k), e))
            .collect();
    }
    let mut rng = SplitMix(0x5EED ^ n as u64);
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        perm.swap(i, j);
    }
    perm.into_iter()
        .enumerate()
        .map(|(k, e)| (TimerKey(k), e))
        .collect()
}

fn fill<Q: TimerQueue + Default>(n: usize, order: FillOrder) -> Q {
    let mut t = timers(n);
    if let FillOrder::Ascending = order {
        t.sort_by_key(|&(_, e)| e);
    }
    let mut q = Q::default();
    for (k, e) in t {
        q.arm(k, e);
    }
    assert_eq!(q.len(), n);
    q
}

/// One list type under test: its name, whether it is canonical, and a
/// cache of filled lists by size and fill order (built on first use, cloned
/// per workload).
struct Subject<Q> {
    name: &'static str,
    /// The sorted list's contents and layout depend only on which timers
    /// are armed, not on the order they were armed in: it is always filled
    /// in ascending order (cheap for it) and never churned. The other lists
    /// are filled in the order the workload arms timers, then churned: the
    /// workload runs N times, untimed, so that every timer has been re-armed
    /// once and the structure has the shape that workload gives it.
    canonical: bool,
    filled: RefCell<BTreeMap<(usize, FillOrder), Q>>,
}

impl<Q: TimerQueue + Default + Clone> Subject<Q> {
    fn new(name: &'static str, canonical: bool) -> Self {
        Subject {
            name,
            canonical,
            filled: RefCell::new(BTreeMap::new()),
        }
    }

    fn filled(&self, n: usize, order: FillOrder) -> Q {
        let order = if self.canonical {
            FillOrder::Ascending
        } else if fill_all_random() {
            FillOrder::Random
        } else {
            order
        };
        self.filled
            .borrow_mut()
            .entry((n, order))
            .or_insert_with(|| fill(n, order))
            .clone()
    }
}

/// Which benchmarks ran in this invocation (a filter may skip some), as
/// `(group, list, n)`.
type Ran = Rc<RefCell<Vec<(&'static str, &'static str, usize)>>>;

/// The state of one workload on one list, and one iteration of it.
trait Workload<Q: TimerQueue> {
    /// Group name.
    const NAME: &'static str;
    /// The order this workload arms timers in, to fill the list in.
    const FILL: FillOrder;
    fn new(q: Q, n: usize) -> Self;
    fn step(&mut self) -> u64;
    /// Checks the list is back at `n` armed timers.
    fn check(&self, n: usize);
}

/// `arm_cancel`: keys `0..n` start armed and key `n` is the spare.
struct ArmCancel<Q> {
    q: Q,
    rng: SplitMix,
    n: u64,
    span: u64,
    spare: TimerKey,
}

impl<Q: TimerQueue> Workload<Q> for ArmCancel<Q> {
    const NAME: &'static str = "arm_cancel";
    const FILL: FillOrder = FillOrder::Random;

    fn new(q: Q, n: usize) -> Self {
        ArmCancel {
            q,
            rng: SplitMix(n as u64),
            n: n as u64,
            span: n as u64 * SPACING as u64,
            spare: TimerKey(n),
        }
    }

    fn step(&mut self) -> u64 {
        self.q.arm(self.spare, self.rng.below(self.span) as i64);
        let victim = TimerKey(self.rng.below(self.n + 1) as usize);
        let was_armed = self.q.cancel(victim);
        self.spare = victim;
        u64::from(was_armed)
    }

    fn check(&self, n: usize) {
        assert_eq!(self.q.len(), n);
        assert_eq!(self.q.expire_of(self.spare), None);
    }
}

/// `arm_cancel_same`: key `n` is armed and cancelled at once.
struct ArmCancelSame<Q> {
    q: Q,
    rng: SplitMix,
    span: u64,
    extra: TimerKey,
}

impl<Q: TimerQueue> Workload<Q> for ArmCancelSame<Q> {
    const NAME: &'static str = "arm_cancel_same";
    const FILL: FillOrder = FillOrder::Random;

    fn new(q: Q, n: usize) -> Self {
        ArmCancelSame {
            q,
            rng: SplitMix(n as u64),
            span: n as u64 * SPACING as u64,
            extra: TimerKey(n),
        }
    }

    fn step(&mut self) -> u64 {
        self.q.arm(self.extra, self.rng.below(self.span) as i64);
        u64::from(self.q.cancel(self.extra))
    }

    fn check(&self, n: usize) {
        assert_eq!(self.q.len(), n);
    }
}

/// `pop_rearm`: each popped timer is re-armed after every other.
struct PopRearm<Q> {
    q: Q,
    next: i64,
}

impl<Q: TimerQueue> Workload<Q> for PopRearm<Q> {
    const NAME: &'static str = "pop_rearm";
    const FILL: FillOrder = FillOrder::Ascending;

    fn new(q: Q, n: usize) -> Self {
        PopRearm {
            q,
            next: n as i64 * SPACING,
        }
    }

    fn step(&mut self) -> u64 {
        let (e, k) = self.q.pop_due(i64::MAX).expect("never empty");
        self.q.arm(k, self.next);
        self.next += SPACING;
        e as u64
    }

    fn check(&self, n: usize) {
        assert_eq!(self.q.len(), n);
    }
}

/// `pop_hold`: each popped timer is re-armed one random period later, the
/// period uniform in `[span / 2, 3 span / 2)` so N timers keep spreading
/// over about the same span (the "hold" model of event-set benchmarks).
struct PopHold<Q> {
    q: Q,
    rng: SplitMix,
    span: u64,
}

impl<Q: TimerQueue> Workload<Q> for PopHold<Q> {
    const NAME: &'static str = "pop_hold";
    const FILL: FillOrder = FillOrder::Random;

    fn new(q: Q, n: usize) -> Self {
        PopHold {
            q,
            rng: SplitMix(n as u64 ^ 0x401D),
            span: n as u64 * SPACING as u64,
        }
    }

    fn step(&mut self) -> u64 {
        let (e, k) = self.q.pop_due(i64::MAX).expect("never empty");
        let period = self.span / 2 + self.rng.below(self.span);
        self.q.arm(k, e + period as i64);
        e as u64
    }

    fn check(&self, n: usize) {
        assert_eq!(self.q.len(), n);
    }
}

/// Times workload `W` on list `s` with `n` timers armed. Setup (fill,
/// clone, churn) happens on the first call from criterion, untimed, and only
/// if the filter selects this benchmark.
fn run<Q, W>(g: &mut BenchmarkGroup<'_, ThreadCpu>, s: &Subject<Q>, n: usize, ran: &Ran)
where
    Q: TimerQueue + Default + Clone,
    W: Workload<Q>,
{
    let mut state: Option<W> = None;
    g.bench_with_input(BenchmarkId::new(s.name, n), &n, |b, _| {
        let w = state.get_or_insert_with(|| {
            ran.borrow_mut().push((W::NAME, s.name, n));
            let mut w = W::new(s.filled(n, W::FILL), n);
            if !s.canonical {
                for _ in 0..n {
                    black_box(w.step());
                }
            }
            w
        });
        b.iter(|| black_box(w.step()));
    });
    if let Some(w) = &state {
        w.check(n);
    }
}

/// The random draws of one `arm_cancel` iteration, without a list.
fn harness(g: &mut BenchmarkGroup<'_, ThreadCpu>, n: usize, ran: &Ran) {
    let mut rng = SplitMix(n as u64);
    let span = n as u64 * SPACING as u64;
    let mut marked = false;
    g.bench_with_input(BenchmarkId::new("rng", n), &n, |b, _| {
        if !marked {
            ran.borrow_mut().push(("harness", "rng", n));
            marked = true;
        }
        b.iter(|| black_box((rng.below(span), rng.below(n as u64 + 1))));
    });
}

/// Drives the three lists through the same random operations and checks
/// they fire identically, so the figures compare equal semantics.
fn check_same_semantics() {
    fn run<Q: TimerQueue + Default>() -> Vec<(i64, TimerKey)> {
        let mut q = Q::default();
        let mut rng = SplitMix(7);
        let mut log = Vec::new();
        for step in 0..20_000 {
            let k = TimerKey(rng.below(300) as usize);
            match rng.below(4) {
                0 | 1 => q.arm(k, rng.below(2_000) as i64 - 100),
                2 => log.push((i64::from(q.cancel(k)), k)),
                _ => {
                    while let Some(fired) = q.pop_due(step / 10) {
                        log.push(fired);
                    }
                }
            }
        }
        while let Some(fired) = q.pop_due(i64::MAX) {
            log.push(fired);
        }
        log
    }
    let reference = run::<SortedList>();
    assert!(reference.len() > 10_000, "the check fires timers");
    assert_eq!(run::<BTreeList>(), reference, "btree vs sorted");
    assert_eq!(run::<TimerList>(), reference, "heap vs sorted");
}

fn configure<'a>(c: &'a mut Criterion<ThreadCpu>, name: &str) -> BenchmarkGroup<'a, ThreadCpu> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));
    g
}

/// Criterion's output directory: `$CRITERION_HOME`, else `criterion` in the
/// cargo target directory this binary was built in
/// (`<target>/<profile>/deps/<bench>`), as criterion itself would choose.
fn output_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let exe = std::env::current_exe().expect("bench executable path");
    exe.ancestors()
        .nth(3)
        .expect("bench executable inside <target>/<profile>/deps")
        .join("criterion")
}

/// The median estimate, ns, from criterion's `estimates.json` for one
/// benchmark.
fn median_ns(dir: &std::path::Path, group: &str, list: &str, n: usize) -> Option<f64> {
    let path = dir
        .join(group)
        .join(list)
        .join(n.to_string())
        .join("new/estimates.json");
    let json = std::fs::read_to_string(path).ok()?;
    let median = &json[json.find("\"median\":")?..];
    let value = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

fn print_table(dir: &std::path::Path, ran: &Ran) {
    let ran = ran.borrow();
    let get = |group: &str, list: &str, n: usize| {
        if ran
            .iter()
            .any(|&(g, l, m)| g == group && l == list && m == n)
        {
            median_ns(dir, group, list, n)
        } else {
            None
        }
    };
    let show = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => match a / b {
            r if r >= 100.0 => format!("{r:.0}"),
            r if r >= 10.0 => format!("{r:.1}"),
            r => format!("{r:.2}"),
        },
        _ => "-".to_string(),
    };
    println!();
    println!("Timer list scaling: median CPU ns per iteration (criterion estimates)");
    println!(
        "{:<16} {:>8} {:>11} {:>9} {:>9} {:>13} {:>12} {:>11}",
        "workload", "N", "sorted", "btree", "heap", "sorted/btree", "sorted/heap", "btree/heap"
    );
    for group in GROUPS {
        if group == "harness" {
            for n in SIZES {
                if let Some(v) = get(group, "rng", n) {
                    println!("{:<16} {:>8} {:>11.1}  (random draws alone)", group, n, v);
                }
            }
            continue;
        }
        for n in SIZES {
            let [s, b, h] = LISTS.map(|l| get(group, l, n));
            if s.or(b).or(h).is_none() {
                continue;
            }
            println!(
                "{:<16} {:>8} {:>11} {:>9} {:>9} {:>13} {:>12} {:>11}",
                group,
                n,
                show(s),
                show(b),
                show(h),
                ratio(s, b),
                ratio(s, h),
                ratio(b, h)
            );
        }
        if SIZES
            .iter()
            .all(|&n| LISTS.iter().all(|l| get(group, l, n).is_none()))
        {
            continue;
        }
        let (lo, hi) = (SIZES[0], SIZES[SIZES.len() - 1]);
        let line: Vec<String> = LISTS
            .iter()
            .map(|l| format!("{l} {}", ratio(get(group, l, hi), get(group, l, lo))))
            .collect();
        println!("{:<16} {:>8}   {}", group, "1e6/1e3", line.join("   "));
    }
}

/// One workload on the three lists, sizes ascending, lists side by side.
fn group<WS, WB, WH>(
    c: &mut Criterion<ThreadCpu>,
    sorted: &Subject<SortedList>,
    btree: &Subject<BTreeList>,
    heap: &Subject<TimerList>,
    ran: &Ran,
) where
    WS: Workload<SortedList>,
    WB: Workload<BTreeList>,
    WH: Workload<TimerList>,
{
    let mut g = configure(c, WS::NAME);
    for n in SIZES {
        run::<_, WS>(&mut g, sorted, n, ran);
        run::<_, WB>(&mut g, btree, n, ran);
        run::<_, WH>(&mut g, heap, n, ran);
    }
    g.finish();
}

fn main() {
    check_same_semantics();
    let dir = output_dir();
    // Plot rendering takes longer than the measurements on a loaded VM.
    let mut c = Criterion::default()
        .with_measurement(ThreadCpu)
        .without_plots()
        .output_directory(&dir)
        .configure_from_args();
    let ran: Ran = Rc::new(RefCell::new(Vec::new()));
    let sorted = Subject::<SortedList>::new("sorted", true);
    let btree = Subject::<BTreeList>::new("btree", false);
    let heap = Subject::<TimerList>::new("heap", false);

    group::<ArmCancel<_>, ArmCancel<_>, ArmCancel<_>>(&mut c, &sorted, &btree, &heap, &ran);
    group::<ArmCancelSame<_>, ArmCancelSame<_>, ArmCancelSame<_>>(
        &mut c, &sorted, &btree, &heap, &ran,
    );
    group::<PopRearm<_>, PopRearm<_>, PopRearm<_>>(&mut c, &sorted, &btree, &heap, &ran);
    group::<PopHold<_>, PopHold<_>, PopHold<_>>(&mut c, &sorted, &btree, &heap, &ran);
    let mut g = configure(&mut c, "harness");
    for n in SIZES {
        harness(&mut g, n, &ran);
    }
    g.finish();

    c.final_summary();
    print_table(&dir, &ran);
}
