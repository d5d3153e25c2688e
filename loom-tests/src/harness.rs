//! Running a model: the preemption bound, the thread limit, and the count
//! of interleavings explored.
//!
//! Every model goes through [`explore`] (or [`explore_expecting_panic`] for
//! a deliberately broken kernel), which wraps `loom::model::Builder`:
//!
//! * the preemption bound comes from `LOOM_MAX_PREEMPTIONS`, defaulting to
//!   [`DEFAULT_PREEMPTIONS`] so that a plain run is bounded too (CI uses 2;
//!   3 is documented for runs on demand);
//! * loom is told at most [`MAX_MODEL_THREADS`] threads (the model's main
//!   thread included), so a model that spawns one too many fails loudly;
//! * each execution of the model's closure bumps a counter kept outside
//!   loom, and the total (the number of interleavings loom explored) is
//!   printed with the wall time, one line per model:
//!   `loom model <name>: <n> interleavings, preemption bound <p>, <t> s`.
//!   Run the tests with `--nocapture` to see it.
//! * a model returns a short label of the outcome of its interleaving
//!   (who won, what each thread saw); the harness tallies them, so a test
//!   can assert that every outcome it expects was actually reached and the
//!   race was really explored, not dodged.
//!
//! A broken variant that loses a wakeup shows as a loom **deadlock**, which
//! cannot be caught like an assertion: loom panics with no thread active,
//! and the destructors that run while that panic unwinds call back into
//! loom, panic again, and abort the process. [`expect_deadlock`] therefore
//! runs such a model in a child process (the test binary again, with only
//! that test) and checks how the child died.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The preemption bound when `LOOM_MAX_PREEMPTIONS` is not set.
pub const DEFAULT_PREEMPTIONS: usize = 2;

/// The most threads a model may run, its main thread included (the
/// issue's limit; loom itself allows 5).
pub const MAX_MODEL_THREADS: usize = 4;

/// What one exploration did.
#[derive(Debug, Clone)]
pub struct Explored {
    /// Executions of the model closure: the interleavings explored.
    pub interleavings: usize,
    /// How many interleavings ended with each outcome label (those that
    /// completed: a failing one has no label).
    pub outcomes: BTreeMap<String, usize>,
    /// The preemption bound used.
    pub preemption_bound: usize,
    /// Wall time of the whole exploration.
    pub elapsed: Duration,
}

fn builder() -> (loom::model::Builder, usize) {
    let mut b = loom::model::Builder::new();
    b.max_threads = MAX_MODEL_THREADS;
    let bound = *b.preemption_bound.get_or_insert(DEFAULT_PREEMPTIONS);
    (b, bound)
}

fn report(name: &str, what: &str, e: &Explored) {
    eprintln!(
        "loom model {name}: {} interleavings{what}, preemption bound {}, {:.1} s",
        e.interleavings,
        e.preemption_bound,
        e.elapsed.as_secs_f64()
    );
}

/// Counts executions and outcome labels from inside the model closure.
/// Kept outside loom (a std mutex, never contended: loom runs one model
/// thread at a time, and this is touched only by the model's main thread).
#[derive(Default)]
struct Tally {
    interleavings: usize,
    outcomes: BTreeMap<String, usize>,
}

/// Interleavings started in this process, all explorations together: what
/// a panic hook can read when the panic will not return to the harness
/// (a deadlock in [`expect_deadlock`]'s child).
static STARTED: AtomicUsize = AtomicUsize::new(0);

fn run<F>(b: &loom::model::Builder, tally: &Arc<Mutex<Tally>>, model: F)
where
    F: Fn() -> String + Sync + Send + 'static,
{
    let tally = tally.clone();
    b.check(move || {
        tally.lock().expect("tally").interleavings += 1;
        STARTED.fetch_add(1, Ordering::SeqCst);
        let outcome = model();
        *tally
            .lock()
            .expect("tally")
            .outcomes
            .entry(outcome)
            .or_default() += 1;
    });
}

fn explored(tally: &Mutex<Tally>, bound: usize, start: Instant) -> Explored {
    let t = tally.lock().unwrap_or_else(|e| e.into_inner());
    Explored {
        interleavings: t.interleavings,
        outcomes: t.outcomes.clone(),
        preemption_bound: bound,
        elapsed: start.elapsed(),
    }
}

/// Explores every interleaving of `model` (within the bound) and reports
/// how many there were and the outcomes reached. A failing assertion in
/// any interleaving panics out of here with loom's report of it.
pub fn explore<F>(name: &str, model: F) -> Explored
where
    F: Fn() -> String + Sync + Send + 'static,
{
    let (b, bound) = builder();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let start = Instant::now();
    run(&b, &tally, model);
    let e = explored(&tally, bound, start);
    report(name, "", &e);
    eprintln!("loom model {name}: outcomes {:?}", e.outcomes);
    e
}

/// Explores `model` and asserts that it reached exactly the outcomes in
/// `expected` (each at least once, no other).
pub fn explore_expecting<F>(name: &str, model: F, expected: &[&str]) -> Explored
where
    F: Fn() -> String + Sync + Send + 'static,
{
    let e = explore(name, model);
    let seen: Vec<&str> = e.outcomes.keys().map(String::as_str).collect();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(seen, want, "loom model {name}: outcomes reached");
    e
}

/// Like [`explore_expecting`], for a model with outcomes that need more
/// than [`DEFAULT_PREEMPTIONS`] preemptions to reach: at the default bound
/// (or below) it must reach exactly `expected`; at a deeper bound exactly
/// `expected` plus `deeper`.
pub fn explore_expecting_deeper<F>(
    name: &str,
    model: F,
    expected: &[&str],
    deeper: &[&str],
) -> Explored
where
    F: Fn() -> String + Sync + Send + 'static,
{
    let e = explore(name, model);
    let seen: Vec<&str> = e.outcomes.keys().map(String::as_str).collect();
    let mut want = expected.to_vec();
    if e.preemption_bound > DEFAULT_PREEMPTIONS {
        want.extend_from_slice(deeper);
    }
    want.sort_unstable();
    assert_eq!(seen, want, "loom model {name}: outcomes reached");
    e
}

/// Explores `model`, which must fail in some interleaving: for a kernel
/// built with a deliberately broken variant. Returns the panic message of
/// the first failing interleaving and how many interleavings it took to
/// find it; panics if every interleaving passed.
pub fn explore_expecting_panic<F>(name: &str, model: F) -> (String, Explored)
where
    F: Fn() -> String + Sync + Send + 'static,
{
    let (b, bound) = builder();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let start = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| run(&b, &tally, model)));
    let e = explored(&tally, bound, start);
    let Err(payload) = outcome else {
        panic!(
            "loom model {name}: all {} interleavings passed, but this kernel is broken on purpose",
            e.interleavings
        );
    };
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "<non-string panic>".to_owned());
    report(name, " until the first failure", &e);
    (msg, e)
}

/// Runs `model` on deliberately broken code and asserts that loom finds an
/// interleaving where it fails with a message containing one of `why`.
///
/// The failure is the point, so while exploring, the process-wide panic
/// hook prints it as expected instead of as a crash with a backtrace: call
/// this only from a test binary that runs nothing else at the same time.
pub fn expect_caught<F>(name: &str, model: F, why: &[&str])
where
    F: Fn() -> String + Sync + Send + 'static,
{
    std::panic::set_hook(Box::new(|info| {
        eprintln!("expected failure of a model on deliberately broken code: {info}");
    }));
    let (msg, e) = explore_expecting_panic(name, model);
    let _ = std::panic::take_hook();
    assert!(
        why.iter().any(|w| msg.contains(w)),
        "model {name} failed after {} interleavings, but not for the expected reason: {msg}",
        e.interleavings
    );
    eprintln!("loom model {name} caught the broken variant: {msg}");
}

/// Set in the environment of [`expect_deadlock`]'s child process.
const DEADLOCK_CHILD: &str = "ITIMER_LOOM_DEADLOCK_CHILD";

/// How the child reports its first failure on stderr:
/// `<FIRST_FAILURE> <n> interleavings: <panic>`.
const FIRST_FAILURE: &str = "loom first failure after";

/// What loom's panic says when no thread can run.
const LOOM_DEADLOCK: &str = "deadlock; threads";

/// Runs `model` on deliberately broken code and asserts that loom finds an
/// interleaving where it deadlocks (a lost wakeup: every thread waits).
///
/// `test` is the name of the calling `#[test]` function. The test binary
/// runs itself again with only that test, as a child process, where the
/// model is explored and the deadlock aborts the process (see the module
/// docs); this process asserts that the child's first failure was loom's
/// deadlock report, and prints after how many interleavings it came. A
/// model that passes every interleaving, or fails for another reason,
/// fails the test.
pub fn expect_deadlock<F>(name: &str, test: &str, model: F)
where
    F: Fn() -> String + Sync + Send + 'static,
{
    if std::env::var_os(DEADLOCK_CHILD).is_some() {
        static REPORTED: AtomicBool = AtomicBool::new(false);
        std::panic::set_hook(Box::new(|info| {
            // Only the first panic is the model's failure; the ones that
            // follow a deadlock are loom's cleanup panicking in turn.
            if !REPORTED.swap(true, Ordering::SeqCst) {
                let n = STARTED.load(Ordering::SeqCst);
                eprintln!("{FIRST_FAILURE} {n} interleavings: {info}");
            }
        }));
        let (msg, e) = explore_expecting_panic(name, model);
        panic!(
            "model {name} failed after {} interleavings, but not by a deadlock: {msg}",
            e.interleavings
        );
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let start = Instant::now();
    let out = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(DEADLOCK_CHILD, "1")
        .output()
        .expect("running the test binary again as a child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr
        .lines()
        .find(|l| l.starts_with(FIRST_FAILURE))
        .unwrap_or_else(|| {
            panic!(
                "model {name}: the child ({}) reported no failure; its stderr:\n{stderr}",
                out.status
            )
        });
    assert!(
        !out.status.success(),
        "model {name}: the child deadlocked but exited successfully"
    );
    // The hook's line ends with the panic's location; its message (loom's
    // report) is on the next line.
    let idx = stderr.find(first).expect("found above");
    let report: String = stderr[idx..].lines().take(2).collect::<Vec<_>>().join(" ");
    assert!(
        report.contains(LOOM_DEADLOCK),
        "model {name} failed, but not by a deadlock: {report}"
    );
    eprintln!(
        "loom model {name} caught the broken variant ({:.1} s, in a child process): {report}",
        start.elapsed().as_secs_f64()
    );
}
