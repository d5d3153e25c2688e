//! `TimerLoop::reinit_after_fork` in a forked child.
//!
//! Alone in its test binary so the fork happens in a process with no other
//! test threads (only this test's thread and the loop thread, which is idle
//! in `poll` at fork time).
//!
//! The child: reinit the loop, arm a MONO timer 5 ms ahead, wait for its
//! callback (spinning on an atomic, at most 5 s), then `_exit` with a status
//! that says what happened. Only the child's new loop thread can run the
//! callback: the parent's loop thread does not exist in the child. The
//! parent then checks its own loop still works: the child closed only its
//! copies of the shared timerfd and eventfd.

mod backend_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backend_common::wait_flag;
use itimer_hostalarm::alarm::Precedence;
use itimer_hostalarm::time::NS_PER_MS;
use itimer_hostalarm::{Clocks, Scale, TimerLoop};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

const CHILD_OK: i32 = 0;
const CHILD_REINIT_FAILED: i32 = 10;
const CHILD_ARM_FAILED: i32 = 11;
const CHILD_TIMER_NEVER_FIRED: i32 = 12;

#[test]
fn a_timer_fires_in_a_forked_child_after_reinit() {
    let clocks = Clocks::new_real();
    let mut l = TimerLoop::start(&clocks, &Precedence::default()).unwrap();
    let fired = Arc::new(AtomicBool::new(false));
    let f2 = fired.clone();
    let t = clocks
        .mono()
        .new_timer(Scale::Ns, move |_| f2.store(true, Ordering::SeqCst));
    // Let the loop settle into poll.
    std::thread::sleep(Duration::from_millis(20));

    // SAFETY: fork in a test binary whose only other thread (the loop) is
    // idle in poll holding no lock; the child only reinitialises the loop,
    // waits, and leaves with _exit (no destructors, no atexit handlers).
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = if l.reinit_after_fork().is_err() {
                CHILD_REINIT_FAILED
            } else if t.arm(clocks.mono().now() + 5 * NS_PER_MS).is_err() {
                CHILD_ARM_FAILED
            } else if !wait_flag(&fired, Duration::from_secs(5)) {
                CHILD_TIMER_NEVER_FIRED
            } else {
                CHILD_OK
            };
            // SAFETY: _exit ends the child at once; nothing of the parent's
            // (buffers, destructors, test harness state) runs in it.
            unsafe { libc::_exit(code) };
        }
        ForkResult::Parent { child } => {
            let status = waitpid(child, None).expect("waitpid");
            assert_eq!(
                status,
                WaitStatus::Exited(child, CHILD_OK),
                "child: {status:?}"
            );
            assert!(
                !fired.load(Ordering::SeqCst),
                "the child's callback ran in the child only"
            );
            // The parent's loop is unaffected by the child's reinit.
            t.arm(clocks.mono().now() + 2 * NS_PER_MS).unwrap();
            assert!(
                wait_flag(&fired, Duration::from_secs(5)),
                "parent timer fired"
            );
            assert_eq!(l.stats().timers_run, 1);
        }
    }
}
