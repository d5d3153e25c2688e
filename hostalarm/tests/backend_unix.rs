//! The `unix` backend (setitimer + SIGALRM) on the real host. All tests in
//! this binary hold `serial()`, so only one of them at a time touches
//! `SIGALRM` and `ITIMER_REAL`.

#[macro_use]
mod backend_common;

use std::time::{Duration, Instant};

use backend_common::{MS, after, assert_fires_at, now, serial};
use itimer_hostalarm::alarm::unix::{UnixBackend, is_claimed};
use itimer_hostalarm::alarm::{AlarmBackend, MonoNs};
use nix::errno::Errno;

fn make() -> Box<dyn AlarmBackend> {
    Box::new(UnixBackend::new())
}

conformance_suite!(make);

/// The current `SIGALRM` handler address (SIG_DFL, SIG_IGN or a function).
fn sigalrm_handler() -> libc::sighandler_t {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a null new action only queries; `old` is written on success.
    let rc = unsafe { libc::sigaction(libc::SIGALRM, std::ptr::null(), old.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: initialised by the successful sigaction.
    unsafe { old.assume_init() }.sa_sigaction
}

#[test]
fn one_per_process_and_claim_released_at_stop() {
    let _g = serial();
    assert!(!is_claimed());
    let mut a = UnixBackend::new();
    a.start().unwrap();
    assert!(is_claimed());
    assert_eq!(a.resolution_ns(), 1_000);
    assert_eq!(a.min_rearm_ns(), 1_000);
    let mut b = UnixBackend::new();
    let e = b.start().unwrap_err();
    assert_eq!(e.backend, "unix");
    assert_eq!(e.errno, Some(Errno::EBUSY));
    assert!(e.to_string().contains("process-wide"), "{e}");
    // The failed start did not disturb the live one.
    let d = after(2 * MS);
    a.rearm(Some(d)).unwrap();
    assert_fires_at(&mut a, d, "live instance after a refused second start");
    a.stop();
    assert!(!is_claimed());
    b.start().expect("free after stop");
}

#[test]
fn restores_the_previous_disposition_and_disarms() {
    let _g = serial();
    let before = sigalrm_handler();
    let mut b = UnixBackend::new();
    b.start().unwrap();
    assert_ne!(sigalrm_handler(), before, "our handler while started");
    b.rearm(Some(after(1_000 * MS))).unwrap();
    b.stop();
    assert_eq!(sigalrm_handler(), before, "previous disposition restored");
    let mut cur = std::mem::MaybeUninit::<libc::itimerval>::uninit();
    // SAFETY: getitimer writes the whole struct on success.
    let rc = unsafe { libc::getitimer(libc::ITIMER_REAL, cur.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: initialised by the successful getitimer.
    let cur = unsafe { cur.assume_init() };
    assert_eq!(
        (cur.it_value.tv_sec, cur.it_value.tv_usec),
        (0, 0),
        "disarmed at stop"
    );
}

#[test]
fn refuses_when_the_program_armed_itimer_real() {
    let _g = serial();
    let ten_s = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: 10,
            tv_usec: 0,
        },
    };
    let off = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
    };
    // SAFETY: valid itimervals; disarmed again right after the start try
    // (its 10 s never elapse within the test).
    let rc = unsafe { libc::setitimer(libc::ITIMER_REAL, &ten_s, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
    let mut b = UnixBackend::new();
    let r = b.start();
    // SAFETY: as above.
    let rc = unsafe { libc::setitimer(libc::ITIMER_REAL, &off, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
    assert_eq!(r.unwrap_err().errno, Some(Errno::EBUSY));
    assert!(!is_claimed(), "a refused start releases the claim");
}

/// SIGALRM is process-directed. Run in a forked child, whose only other
/// threads are the two below, and with SIGALRM blocked in the loop thread
/// after the start:
/// every alarm must then be taken by one of them, one blocked in `read` on
/// a pipe, one in `std::thread::sleep`. The handler must only wake the
/// loop: the reader's `read` must resume (SA_RESTART) and return its data,
/// never EINTR; the sleeper must sleep its full time; every alarm must
/// still reach the loop.
#[test]
fn sigalrm_does_not_disturb_other_threads() {
    let _g = serial();
    let outcome = backend_common::in_child(|| {
        let mut fds = [0; 2];
        // SAFETY: valid out-array for two fds.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err("pipe".into());
        }
        let (rd, wr) = (fds[0], fds[1]);
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: initialising a set holding SIGALRM only. It is blocked in
        // this (loop) thread after the helpers are spawned, so they keep an
        // unblocked mask and must take every alarm.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            libc::sigaddset(set.as_mut_ptr(), libc::SIGALRM);
        }
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4];
            // SAFETY: reading into a valid 4-byte buffer from our pipe.
            let n = unsafe { libc::read(rd, buf.as_mut_ptr().cast(), buf.len()) };
            let err = std::io::Error::last_os_error();
            (n, err.raw_os_error(), buf)
        });
        let sleeper = std::thread::spawn(|| {
            let t0 = Instant::now();
            std::thread::sleep(Duration::from_millis(150));
            t0.elapsed()
        });
        let mut b = UnixBackend::new();
        b.start().map_err(|e| e.to_string())?;
        // SAFETY: blocking SIGALRM in this thread only, after start (which
        // unblocks it on the loop thread).
        if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut()) }
            != 0
        {
            return Err("pthread_sigmask".into());
        }
        let mut fired = 0u64;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(120) {
            let d = after(MS);
            b.rearm(Some(d)).map_err(|e| e.to_string())?;
            let (seen, w) = backend_common::wait_fire(&mut b).ok_or("an alarm was lost")?;
            if seen < d {
                return Err("alarm before its deadline".into());
            }
            fired += w.expirations;
        }
        // SAFETY: writing 4 valid bytes to our pipe.
        if unsafe { libc::write(wr, b"done".as_ptr().cast(), 4) } != 4 {
            return Err("write".into());
        }
        let (n, errno, buf) = reader.join().map_err(|_| "reader panicked")?;
        let slept = sleeper.join().map_err(|_| "sleeper panicked")?;
        b.stop();
        if (n, &buf) != (4, b"done") {
            return Err(format!(
                "read returned {n} (errno {errno:?}) instead of resuming"
            ));
        }
        if slept < Duration::from_millis(150) {
            return Err(format!("sleep cut short: {slept:?}"));
        }
        if fired < 20 {
            return Err(format!("only {fired} alarms in 120 ms of 1 ms re-arms"));
        }
        Ok(())
    });
    assert_eq!(outcome, Ok(()));
}

#[test]
fn past_deadline_uses_the_smallest_interval() {
    let _g = serial();
    let mut b = UnixBackend::new();
    b.start().unwrap();
    // A zero interval would disarm: the backend must still fire.
    for _ in 0..10 {
        b.rearm(Some(MonoNs(0))).unwrap();
        assert_fires_at(&mut b, now(), "deadline at the clock's epoch");
    }
}

/// The rate cap (`SIGNAL_SPACING_NS`): re-armed into the past again and
/// again, as a loop drowning in due timers would, the backend still lets
/// at most one `SIGALRM` through per spacing. Counted by the handler's
/// wakeups over a measured window: at most `window / spacing + 1`, exact
/// by construction, whatever the load. The lower bound only shows it kept
/// firing: 10 in 300 ms leaves a loaded CI machine 30 ms per round trip.
#[test]
fn sigalrm_rate_is_capped_at_one_per_spacing() {
    use itimer_hostalarm::alarm::unix::SIGNAL_SPACING_NS;
    let _g = serial();
    let mut b = UnixBackend::new();
    b.start().unwrap();
    let mut fired = 0u64;
    let t0 = now();
    while now().saturating_since(t0) < 300 * MS {
        b.rearm(Some(MonoNs(0))).unwrap();
        let (_, w) = backend_common::wait_fire(&mut b).expect("an alarm was lost");
        fired += w.expirations;
    }
    // Every alarm counted so far fired by now.
    let window = now().saturating_since(t0);
    b.stop();
    let cap = window / SIGNAL_SPACING_NS + 1;
    assert!(
        fired <= cap,
        "{fired} alarms in {window} ns: more than one per {SIGNAL_SPACING_NS} ns ({cap})"
    );
    assert!(fired >= 10, "only {fired} alarms in {window} ns");
}

/// A re-arm less than one spacing after the pending arming first disarms
/// (to learn whether it fired) and then arms: two counted host calls. One
/// a whole spacing later needs only the one.
#[test]
fn settling_a_close_rearm_is_counted() {
    let _g = serial();
    let mut b = UnixBackend::new();
    b.start().unwrap();
    b.rearm(Some(after(1_000 * MS))).unwrap();
    assert_eq!(b.rearm_calls(), 1);
    b.rearm(Some(after(900 * MS))).unwrap();
    assert_eq!(b.rearm_calls(), 3, "earlier: disarm + arm");
    b.rearm(Some(after(1_200 * MS))).unwrap();
    assert_eq!(b.rearm_calls(), 4, "a whole spacing later: arm only");
    let d = after(2 * MS);
    b.rearm(Some(d)).unwrap();
    assert_eq!(b.rearm_calls(), 6);
    assert_fires_at(&mut b, d, "the earlier re-arm after settling");
    b.stop();
}

/// The advice to a program that cannot have `EINTR`s: block `SIGALRM` in
/// its own threads. If it does so before it starts us, the loop thread
/// inherits the block and, without more, no thread could take an alarm:
/// it would stay pending and no timer would ever run. So start unblocks
/// `SIGALRM` on the loop thread (and stop blocks it again). Run in a
/// forked child: the main thread blocks `SIGALRM`, starts a timer loop on
/// `unix`, and runs 20 timers 1 ms apart while it sleeps in raw
/// `nanosleep`s: every timer must run, the main thread must see no `EINTR`,
/// and its mask must be untouched afterwards.
#[test]
fn alarms_reach_a_loop_thread_that_inherited_a_blocked_sigalrm() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use itimer_hostalarm::alarm::Precedence;
    use itimer_hostalarm::{Clocks, Scale, TimerLoop};

    let _g = serial();
    let outcome = backend_common::in_child(|| {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: initialising a set holding SIGALRM only, then blocking it
        // in this thread, before the loop thread is spawned from it.
        let set = unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            libc::sigaddset(set.as_mut_ptr(), libc::SIGALRM);
            set.assume_init()
        };
        // SAFETY: `set` is initialised; no old mask is requested.
        if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
            return Err("pthread_sigmask".into());
        }
        let clocks = Clocks::new_real();
        let l = TimerLoop::start(
            &clocks,
            &Precedence::parse("unix").map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("{e:?}"))?;
        if l.backend_name() != "unix" {
            return Err(format!("started {} instead of unix", l.backend_name()));
        }
        let fired = Arc::new(AtomicU32::new(0));
        let f2 = fired.clone();
        let t = clocks.mono().new_timer(Scale::Ns, move |_| {
            f2.fetch_add(1, Ordering::SeqCst);
        });
        let mut eintr = 0u32;
        for i in 1..=20 {
            t.arm(clocks.now(itimer_hostalarm::ClockType::Mono) + MS as i64)
                .map_err(|e| e.to_string())?;
            let mut waited_ms = 0;
            while fired.load(Ordering::SeqCst) < i {
                if waited_ms > 2_000 {
                    return Err(format!("timer {i} never ran (the alarm went nowhere)"));
                }
                let req = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 1_000_000,
                };
                // SAFETY: a valid timespec; no remainder requested.
                if unsafe { libc::nanosleep(&req, std::ptr::null_mut()) } != 0 {
                    eintr += 1;
                }
                waited_ms += 1;
            }
        }
        drop(t);
        drop(l);
        if eintr != 0 {
            return Err(format!("{eintr} EINTRs on a thread that blocks SIGALRM"));
        }
        let mut now = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: a null new set only reads the mask into `now`.
        if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), now.as_mut_ptr()) }
            != 0
        {
            return Err("pthread_sigmask (read)".into());
        }
        // SAFETY: initialised by the successful call above.
        if unsafe { libc::sigismember(now.as_ptr(), libc::SIGALRM) } != 1 {
            return Err("the main thread's mask changed".into());
        }
        Ok(())
    });
    assert_eq!(outcome, Ok(()));
}

/// `with_spacing(0)` turns the cap off: a re-arm earlier than the pending
/// arming is one host call (nothing to pace against, so nothing to settle),
/// and an alarm right after another is armed as asked.
#[test]
fn spacing_zero_is_uncapped() {
    let _g = serial();
    let mut b = UnixBackend::with_spacing(0);
    assert_eq!(b.spacing_ns(), 0);
    b.start().unwrap();
    b.rearm(Some(after(1_000 * MS))).unwrap();
    b.rearm(Some(after(900 * MS))).unwrap();
    assert_eq!(b.rearm_calls(), 2, "no settling call");
    let d = after(MS);
    b.rearm(Some(d)).unwrap();
    assert_fires_at(&mut b, d, "first");
    // Well inside the default 1 ms spacing of the alarm just taken.
    let d2 = MonoNs(now().0 + 100_000);
    b.rearm(Some(d2)).unwrap();
    let (seen, _) = backend_common::wait_fire(&mut b).expect("second alarm");
    assert!(seen >= d2, "never early");
    b.stop();
    assert_eq!(UnixBackend::new().spacing_ns(), 1_000_000);
}
