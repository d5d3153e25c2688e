//! The `dynticks` backend on the real host. Each test thread acts as the
//! loop thread: it starts, polls, consumes and stops on itself.

#[macro_use]
mod backend_common;

use backend_common::{MS, after, assert_fires_at, serial};
use itimer_hostalarm::alarm::AlarmBackend;
use itimer_hostalarm::alarm::dynticks::{DynticksBackend, SIGNAL_OFFSET, dynticks_signal};
use nix::errno::Errno;

fn make() -> Box<dyn AlarmBackend> {
    Box::new(DynticksBackend::new())
}

conformance_suite!(make);

/// Whether `signo` is blocked in the calling thread's mask.
fn blocked_here(signo: libc::c_int) -> bool {
    let mut cur = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: a null new set only queries; `cur` is written on success.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), cur.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: initialised by the successful pthread_sigmask.
    unsafe { libc::sigismember(cur.as_ptr(), signo) == 1 }
}

#[test]
fn uses_its_own_realtime_signal_blocked_only_while_started() {
    let _g = serial();
    let signo = dynticks_signal();
    assert_eq!(signo, libc::SIGRTMIN() + SIGNAL_OFFSET);
    assert_ne!(signo, libc::SIGALRM);
    assert!(signo <= libc::SIGRTMAX());
    assert!(!blocked_here(signo));
    let mut b = DynticksBackend::new();
    b.start().unwrap();
    assert!(
        blocked_here(signo),
        "blocked in the loop thread while started"
    );
    assert_eq!(b.min_rearm_ns(), 0);
    assert!((1..=10 * MS).contains(&b.resolution_ns()));
    // Fire, and leave one expiration pending at stop: stop drains it before
    // unblocking (or the default action would kill this test process).
    let d = after(MS);
    b.rearm(Some(d)).unwrap();
    assert_fires_at(&mut b, d, "1 ms");
    b.rearm(Some(after(0))).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    b.stop();
    assert!(!blocked_here(signo), "mask restored at stop");
}

#[test]
fn one_per_thread_but_independent_across_threads() {
    let _g = serial();
    let mut first = DynticksBackend::new();
    first.start().unwrap();
    let mut second = DynticksBackend::new();
    let e = second.start().unwrap_err();
    assert_eq!(e.backend, "dynticks");
    assert_eq!(e.errno, Some(Errno::EBUSY));
    // Another thread runs its own, and the two never see each other's
    // signals: each fires at its own deadline only.
    let other = std::thread::spawn(|| {
        let mut b = DynticksBackend::new();
        b.start().unwrap();
        let d = after(30 * MS);
        b.rearm(Some(d)).unwrap();
        let w = assert_fires_at(&mut b, d, "other thread's 30 ms");
        assert_eq!(w.expirations, 1);
    });
    let d = after(5 * MS);
    first.rearm(Some(d)).unwrap();
    let w = assert_fires_at(&mut first, d, "this thread's 5 ms");
    assert_eq!(w.expirations, 1);
    other.join().unwrap();
    // Nothing of the other thread's landed here.
    assert_eq!(first.consume().unwrap().expirations, 0);
    first.stop();
    second.start().expect("free again after stop");
}

#[test]
fn refuses_a_signal_the_program_handles() {
    let _g = serial();
    extern "C" fn programs_handler(_: libc::c_int) {}
    let signo = dynticks_signal();
    // SAFETY: zeroed sigaction is valid; we install a no-op handler and
    // restore the previous disposition below.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = programs_handler as *const () as libc::sighandler_t;
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: valid action and out-pointer.
    assert_eq!(unsafe { libc::sigaction(signo, &act, old.as_mut_ptr()) }, 0);
    let mut b = DynticksBackend::new();
    let e = b.start().unwrap_err();
    // SAFETY: restoring the disposition sigaction returned above.
    let restored = unsafe { libc::sigaction(signo, old.as_ptr(), std::ptr::null_mut()) };
    assert_eq!(restored, 0);
    assert_eq!(e.errno, Some(Errno::EBUSY));
    assert!(!blocked_here(signo), "a failed start leaves the mask alone");
    b.start().expect("starts once the handler is gone");
}

#[test]
fn consume_drains_everything_pending() {
    let _g = serial();
    let mut b = DynticksBackend::new();
    b.start().unwrap();
    // Two expirations before one consume. Whether the second shows as an
    // overrun of the still-pending signal (older kernels) or replaces it
    // (Linux 6.13 and later discard a stale timer signal on re-arm) is the
    // kernel's business: 1 or 2 expirations. What matters is that one
    // consume takes it all and leaves the fd quiet.
    b.rearm(Some(after(0))).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(10));
    b.rearm(Some(after(0))).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(10));
    let w = b.consume().unwrap();
    assert!((1..=2).contains(&w.expirations), "{w:?}");
    backend_common::assert_quiet_until(&b, after(20 * MS), "after a full consume");
    assert_eq!(b.consume().unwrap().expirations, 0);
}
