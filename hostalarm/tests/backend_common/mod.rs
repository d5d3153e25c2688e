//! Shared real-host checks for the alarm backends' integration tests.
//!
//! Every `backend_*.rs` test binary runs its tests one at a time behind
//! [`serial`]: several of them touch process-wide state (`SIGALRM`'s
//! disposition, `ITIMER_REAL`, a real-time signal's disposition) and the
//! fork tests want no other test thread in the middle of anything when they
//! fork. Each binary is its own process, so one lock per binary suffices.
//!
//! Tolerances (stated once, used everywhere): a wakeup may not come earlier
//! than the deadline minus the backend's resolution (the contract), and may
//! come at most [`LATE_TOLERANCE_NS`] late. The machine is a loaded 2-core
//! VM shared with other builds; 20 ms is generous for scheduling noise yet
//! still catches a backend that ignores a re-arm (the tests' competing
//! deadlines are 50 ms or more apart) or rounds to the wrong unit.

#![allow(dead_code, unused_macros)] // each test binary uses a different subset

use std::os::fd::{AsRawFd, BorrowedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, MutexGuard};

use itimer_hostalarm::alarm::{AlarmBackend, MonoNs, Wakeup};

/// How late a wakeup may be, in ns (see the module documentation).
pub const LATE_TOLERANCE_NS: u64 = 20_000_000;

/// How long to wait for a wakeup that must come before giving up, in ns.
pub const GIVE_UP_NS: u64 = 2_000_000_000;

/// One millisecond in ns.
pub const MS: u64 = 1_000_000;

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds this binary's tests to one at a time (a failed test's poison is
/// ignored: the state it guards is the host's, re-checked by each test).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The host's monotonic now.
pub fn now() -> MonoNs {
    MonoNs::host_now()
}

/// `now + ns`.
pub fn after(ns: u64) -> MonoNs {
    MonoNs(now().0 + ns)
}

/// Waits until `fd` is readable or `until` (host monotonic) has passed;
/// reports whether it became readable. Retries `EINTR` (a `SIGALRM` from
/// the `unix` backend may land on this thread).
pub fn readable_before(fd: BorrowedFd<'_>, until: MonoNs) -> bool {
    loop {
        let left = until.saturating_since(now());
        let ts = libc::timespec {
            tv_sec: (left / 1_000_000_000) as libc::time_t,
            tv_nsec: (left % 1_000_000_000) as libc::c_long,
        };
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, a valid timeout, no signal mask change.
        let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
        if rc > 0 {
            return true;
        }
        if rc == 0 {
            return false;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.raw_os_error(), Some(libc::EINTR), "ppoll failed: {err}");
        if left == 0 {
            return false;
        }
    }
}

/// Whether `b`'s fd is readable before `until` (without consuming).
pub fn fires_before(b: &dyn AlarmBackend, until: MonoNs) -> bool {
    readable_before(b.wait_fd().expect("started backend has a fd"), until)
}

/// Waits (up to [`GIVE_UP_NS`]) for a wakeup with at least one expiration;
/// returns when it was seen and what `consume` said. Readiness with zero
/// expirations (legal, e.g. timerfd's epoll woken by the canceller) is
/// consumed and waited past.
pub fn wait_fire(b: &mut dyn AlarmBackend) -> Option<(MonoNs, Wakeup)> {
    let give_up = after(GIVE_UP_NS);
    loop {
        if !fires_before(b, give_up) {
            return None;
        }
        let seen = now();
        let w = b.consume().expect("consume");
        if w.expirations > 0 {
            return Some((seen, w));
        }
    }
}

/// Asserts that `b` fires for `deadline`: not before `deadline - resolution`,
/// at most [`LATE_TOLERANCE_NS`] after it. Returns the wakeup.
pub fn assert_fires_at(b: &mut dyn AlarmBackend, deadline: MonoNs, what: &str) -> Wakeup {
    let res = b.resolution_ns();
    let (seen, w) =
        wait_fire(b).unwrap_or_else(|| panic!("{}: {what}: no wakeup within 2 s", b.name()));
    assert!(
        seen.0 + res >= deadline.0,
        "{}: {what}: woke {} ns early (resolution {res} ns)",
        b.name(),
        deadline.0 - seen.0
    );
    let late = seen.saturating_since(deadline);
    assert!(
        late <= LATE_TOLERANCE_NS,
        "{}: {what}: woke {late} ns late (tolerance {LATE_TOLERANCE_NS} ns)",
        b.name()
    );
    w
}

/// Asserts no wakeup until `until`. A readiness first seen after `until`
/// (the poll itself may overshoot its timeout on a loaded machine, and the
/// next deadline may then already have fired) is not evidence of an early
/// wakeup and passes.
pub fn assert_quiet_until(b: &dyn AlarmBackend, until: MonoNs, what: &str) {
    if fires_before(b, until) {
        let seen = now();
        assert!(
            seen >= until,
            "{}: {what}: unexpected wakeup {} ns before the window closed",
            b.name(),
            until.saturating_since(seen)
        );
    }
}

// ---------------------------------------------------------------------------
// The conformance scenarios every real backend must pass. Each takes a
// started backend on the calling thread (the thread acts as the loop).
// ---------------------------------------------------------------------------

/// Re-arming to now+1ms and now+5ms fires at each deadline.
pub fn fires_at_1ms_and_5ms(b: &mut dyn AlarmBackend) {
    for delay in [MS, 5 * MS] {
        let d = after(delay);
        b.rearm(Some(d)).expect("rearm");
        let w = assert_fires_at(b, d, &format!("now+{} ms", delay / MS));
        assert!(w.expirations >= 1);
        assert!(
            !w.wall_clock_stepped,
            "{}: spurious wall-clock step",
            b.name()
        );
    }
}

/// Re-armed earlier, the earlier deadline fires, and the later one (replaced)
/// never does.
pub fn rearm_earlier_fires_first(b: &mut dyn AlarmBackend) {
    let late = after(150 * MS);
    b.rearm(Some(late)).expect("rearm late");
    let early = after(5 * MS);
    b.rearm(Some(early)).expect("rearm early");
    assert_fires_at(b, early, "the earlier re-arm");
    assert_quiet_until(b, MonoNs(late.0 + 50 * MS), "the replaced later deadline");
}

/// Re-armed later, nothing fires at the old deadline; the new one fires.
pub fn rearm_later_replaces(b: &mut dyn AlarmBackend) {
    let early = after(5 * MS);
    b.rearm(Some(early)).expect("rearm early");
    let late = after(80 * MS);
    b.rearm(Some(late)).expect("rearm late");
    assert_quiet_until(
        b,
        MonoNs(late.0 - b.resolution_ns().max(MS)),
        "the replaced earlier deadline",
    );
    assert_fires_at(b, late, "the later re-arm");
}

/// A deadline in the past (1 s ago, and the epoch of the clock) fires
/// promptly: within the tolerance of the re-arm call.
pub fn past_deadline_fires_promptly(b: &mut dyn AlarmBackend) {
    for past in [MonoNs(now().0.saturating_sub(1_000_000_000)), MonoNs(0)] {
        let armed_at = now();
        b.rearm(Some(past)).expect("rearm past");
        let (seen, w) = wait_fire(b)
            .unwrap_or_else(|| panic!("{}: past deadline {past:?} never fired", b.name()));
        assert!(w.expirations >= 1);
        let delay = seen.saturating_since(armed_at);
        assert!(
            delay <= b.min_rearm_ns() + LATE_TOLERANCE_NS,
            "{}: past deadline {past:?} fired {delay} ns after the re-arm",
            b.name()
        );
    }
}

/// Disarming with `None` cancels a pending deadline: no wakeup in a window
/// well past it.
pub fn disarm_is_quiet(b: &mut dyn AlarmBackend) {
    let d = after(5 * MS);
    b.rearm(Some(d)).expect("rearm");
    b.rearm(None).expect("disarm");
    assert_quiet_until(b, MonoNs(d.0 + 60 * MS), "after rearm(None)");
}

/// Each `rearm` (arm or disarm) is one counted host re-arm call, from zero
/// at start.
pub fn rearm_calls_counted(b: &mut dyn AlarmBackend) {
    assert_eq!(b.rearm_calls(), 0, "{}: count at start", b.name());
    // Each re-arm is later than the last by more than `unix`'s signal
    // spacing, so none needs its settling call (counted in its own test).
    b.rearm(Some(after(1_000 * MS))).expect("rearm");
    b.rearm(Some(after(1_100 * MS))).expect("rearm");
    b.rearm(None).expect("disarm");
    let last = after(MS);
    b.rearm(Some(last)).expect("rearm");
    assert_eq!(b.rearm_calls(), 4, "{}: four re-arms", b.name());
    assert_fires_at(b, last, "last arming");
    assert_eq!(
        b.rearm_calls(),
        4,
        "{}: consuming does not re-arm",
        b.name()
    );
    b.stop();
    b.start().expect("restart");
    assert_eq!(b.rearm_calls(), 0, "{}: count restarts at start", b.name());
}

/// Runs `child` in a forked child process and reports its outcome: `Ok` if
/// it returned `Ok` and exited 0. The child writes its failure to stderr
/// with a raw `write(2)` (another test thread might hold Rust's stderr lock
/// at the instant of the fork) and leaves with `_exit`.
pub fn in_child(child: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    // SAFETY: the child only runs `child` (our code: backend calls, polls)
    // and `_exit`s; it never returns into the test harness. glibc's malloc
    // is fork-safe, which the backends' start (allocation, thread spawn for
    // the emulations) relies on.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = match catch_unwind(AssertUnwindSafe(child)) {
            Ok(Ok(())) => 0,
            Ok(Err(msg)) => {
                raw_stderr(&format!("child failed: {msg}\n"));
                1
            }
            Err(_) => {
                raw_stderr("child panicked\n");
                2
            }
        };
        // SAFETY: leaving the child without running the parent's atexit
        // handlers or test-harness code.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child; `status` is a valid out-pointer.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid: {}", std::io::Error::last_os_error());
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(format!("child exited with status {status:#x}"))
    }
}

fn raw_stderr(msg: &str) {
    // SAFETY: writing a valid buffer to fd 2.
    let _ = unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// In a forked child, `reinit_after_fork` gives a working alarm that fires
/// at its deadline, while the parent's own armed deadline is untouched by
/// anything the child does (no early wakeup, no lost wakeup). The child
/// exits with an unconsumed wakeup pending and without stopping, as a
/// child that `exec`s or `_exit`s would.
pub fn reinit_after_fork_in_child(b: &mut dyn AlarmBackend) {
    let parent_deadline = after(300 * MS);
    b.rearm(Some(parent_deadline)).expect("parent rearm");
    let outcome = in_child(|| {
        b.reinit_after_fork().map_err(|e| e.to_string())?;
        let d = after(2 * MS);
        b.rearm(Some(d)).map_err(|e| e.to_string())?;
        let (seen, w) = wait_fire(b).ok_or("no wakeup in the child")?;
        if seen.0 + b.resolution_ns() < d.0 {
            return Err(format!("child woke {} ns early", d.0 - seen.0));
        }
        if seen.saturating_since(d) > LATE_TOLERANCE_NS {
            return Err(format!("child woke {} ns late", seen.0 - d.0));
        }
        if w.expirations == 0 {
            return Err("child wakeup without expiration".into());
        }
        // Fire once more and leave it unconsumed: if the child's fd were
        // still the parent's (shared across fork), the parent would see it.
        let d = after(2 * MS);
        b.rearm(Some(d)).map_err(|e| e.to_string())?;
        if !fires_before(b, after(GIVE_UP_NS)) {
            return Err("no second wakeup in the child".into());
        }
        Ok(())
    });
    assert_eq!(outcome, Ok(()), "{}: forked child", b.name());
    // The parent's alarm: not disturbed by the child, fires on time.
    let res = b.resolution_ns();
    assert_quiet_until(
        b,
        MonoNs(parent_deadline.0.saturating_sub(res.max(MS))),
        "parent, while and after the child ran",
    );
    assert_fires_at(b, parent_deadline, "parent's own deadline after the fork");
}

/// Runs every conformance scenario on a fresh backend from `make`, started
/// on the calling thread.
pub fn conformance(make: fn() -> Box<dyn AlarmBackend>, scenario: fn(&mut dyn AlarmBackend)) {
    let _g = serial();
    let mut b = make();
    assert!(b.wait_fd().is_none(), "{}: fd before start", b.name());
    b.start().expect("start");
    assert!(b.wait_fd().is_some(), "{}: no fd after start", b.name());
    scenario(&mut *b);
    b.stop();
    assert!(b.wait_fd().is_none(), "{}: fd after stop", b.name());
    b.stop(); // idempotent
}

/// Declares one `#[test]` per conformance scenario for the backend that
/// `$make` (a `fn() -> Box<dyn AlarmBackend>`) builds.
macro_rules! conformance_suite {
    ($make:expr) => {
        #[test]
        fn fires_at_1ms_and_5ms() {
            backend_common::conformance($make, backend_common::fires_at_1ms_and_5ms);
        }
        #[test]
        fn rearm_earlier_fires_first() {
            backend_common::conformance($make, backend_common::rearm_earlier_fires_first);
        }
        #[test]
        fn rearm_later_replaces() {
            backend_common::conformance($make, backend_common::rearm_later_replaces);
        }
        #[test]
        fn past_deadline_fires_promptly() {
            backend_common::conformance($make, backend_common::past_deadline_fires_promptly);
        }
        #[test]
        fn disarm_is_quiet() {
            backend_common::conformance($make, backend_common::disarm_is_quiet);
        }
        #[test]
        fn rearm_calls_counted() {
            backend_common::conformance($make, backend_common::rearm_calls_counted);
        }
        #[test]
        fn reinit_after_fork_in_child() {
            backend_common::conformance($make, backend_common::reinit_after_fork_in_child);
        }
    };
}

/// Waits (polling every millisecond) until `flag` is set; false if `limit`
/// passes first.
pub fn wait_flag(flag: &std::sync::atomic::AtomicBool, limit: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    while !flag.load(std::sync::atomic::Ordering::SeqCst) {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    true
}
