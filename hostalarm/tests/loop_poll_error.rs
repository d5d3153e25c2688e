//! A lasting `poll` error in the real timer loop is counted, surfaces in
//! the loop's statistics, and is retried with a back-off, never in a busy
//! loop; once the error goes, the loop runs timers again.
//!
//! The error is real: Linux's `poll` fails with `EINVAL` when it is given
//! more descriptors than `RLIMIT_NOFILE` allows, and the loop polls two
//! (the alarm's and its eventfd). Lowering that limit is process-wide, so
//! the whole test runs in a forked child, alone in its test binary (the
//! fork happens before any loop thread exists), which reports by exit
//! status.

mod backend_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use backend_common::wait_flag;
use itimer_hostalarm::alarm::Precedence;
use itimer_hostalarm::time::NS_PER_MS;
use itimer_hostalarm::timer_loop::POLL_BACKOFF_MAX_MS;
use itimer_hostalarm::{Clocks, Scale, TimerLoop};
use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

const CHILD_OK: i32 = 0;
const CHILD_START_FAILED: i32 = 10;
const CHILD_FIRST_TIMER_LOST: i32 = 11;
const CHILD_RLIMIT_FAILED: i32 = 12;
const CHILD_ERROR_NOT_COUNTED: i32 = 13;
const CHILD_BUSY_LOOP: i32 = 14;
const CHILD_WRONG_ERRNO: i32 = 15;
const CHILD_NO_RECOVERY: i32 = 16;

/// How long the error lasts.
const ERROR_FOR: Duration = Duration::from_millis(400);

/// The most failed polls that many milliseconds of back-off allow: the
/// sleeps 1, 2, 4 … 64 ms (127 ms for the first 7), then one per
/// `POLL_BACKOFF_MAX_MS`. A busy loop would fail millions of times.
fn most_polls_in(d: Duration) -> u64 {
    let ms = u64::try_from(d.as_millis()).unwrap();
    7 + ms.saturating_sub(127) / POLL_BACKOFF_MAX_MS + 1
}

fn child() -> i32 {
    let clocks = Clocks::new_real();
    let Ok(l) = TimerLoop::start(&clocks, &Precedence::default()) else {
        return CHILD_START_FAILED;
    };
    let fired = Arc::new(AtomicBool::new(false));
    let f2 = fired.clone();
    let t = clocks
        .mono()
        .new_timer(Scale::Ns, move |_| f2.store(true, Ordering::SeqCst));
    if t.arm(clocks.mono().now() + NS_PER_MS).is_err() || !wait_flag(&fired, Duration::from_secs(5))
    {
        return CHILD_FIRST_TIMER_LOST;
    }
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return CHILD_RLIMIT_FAILED;
    };
    // One descriptor allowed: the loop's next poll (of two) fails. Kick it
    // out of its current poll by arming a timer it must wait for.
    if setrlimit(Resource::RLIMIT_NOFILE, 1, hard).is_err() {
        return CHILD_RLIMIT_FAILED;
    }
    fired.store(false, Ordering::SeqCst);
    let start = Instant::now();
    let _ = t.arm(clocks.mono().now() + 5 * NS_PER_MS);
    std::thread::sleep(ERROR_FOR);
    let during = l.stats();
    let elapsed = start.elapsed();
    if setrlimit(Resource::RLIMIT_NOFILE, soft, hard).is_err() {
        return CHILD_RLIMIT_FAILED;
    }
    eprintln!(
        "child: {} failed polls in {elapsed:?}, last {:?}",
        during.poll_errors, during.last_poll_error
    );
    if during.poll_errors < 2 {
        return CHILD_ERROR_NOT_COUNTED;
    }
    if during.poll_errors > most_polls_in(elapsed) {
        return CHILD_BUSY_LOOP;
    }
    if during.last_poll_error != Some(Errno::EINVAL) {
        return CHILD_WRONG_ERRNO;
    }
    // The error is gone: within one back-off the loop polls again, finds
    // the timer due, and runs it.
    if !wait_flag(&fired, Duration::from_secs(5)) {
        return CHILD_NO_RECOVERY;
    }
    drop(t);
    drop(l);
    CHILD_OK
}

#[test]
fn a_lasting_poll_error_is_counted_and_backed_off_then_recovered() {
    // SAFETY: fork in a test binary that has no other thread yet (this is
    // its only test); the child starts its own loop and leaves with _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = child();
            // SAFETY: _exit ends the child at once; nothing of the parent's
            // (buffers, destructors, test harness state) runs in it.
            unsafe { libc::_exit(code) };
        }
        ForkResult::Parent { child } => {
            let status = waitpid(child, None).expect("waitpid");
            assert_eq!(
                status,
                WaitStatus::Exited(child, CHILD_OK),
                "child status (10 start, 11 first timer, 12 rlimit, 13 not counted, \
                 14 busy loop, 15 errno, 16 no recovery): {status:?}"
            );
        }
    }
}
