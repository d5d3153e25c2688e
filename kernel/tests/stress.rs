//! Threads doing settime / gettime / delete / create / fire / consume on the
//! same timers at once: no deadlock, no panic, and the books balance.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use itimer_kernel::abi::*;
use itimer_kernel::manual_clock::ManualClock;
use itimer_kernel::{ClockRegistry, Credentials, Errno, KernelConfig, Nsec, Subsystem};

const TIMERS: i32 = 16;
const ROUNDS: usize = 20_000;

#[test]
fn concurrent_syscalls_and_fires() {
    let clock = ManualClock::new(Nsec(0));
    let mut reg = ClockRegistry::new();
    clock.register(&mut reg, &[CLOCK_HIGHRES]).unwrap();
    let k = Subsystem::new(
        KernelConfig {
            timer_max: 64,
            ..KernelConfig::default()
        },
        reg,
    );
    let p = Arc::new(k.spawn_process(Credentials::ROOT));
    let stop = Arc::new(AtomicBool::new(false));

    let mut workers = Vec::new();
    for seed in 0..4u64 {
        let p = p.clone();
        workers.push(std::thread::spawn(move || {
            let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let raw = p.raw();
            for _ in 0..ROUNDS {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let id = (x % TIMERS as u64) as i32;
                let r = match (x >> 8) % 6 {
                    0 => raw.timer_create(CLOCK_HIGHRES, None).map(|_| ()),
                    1 | 2 => raw
                        .timer_settime(
                            id,
                            0,
                            &Itimerspec {
                                it_interval: Timespec {
                                    tv_sec: 0,
                                    tv_nsec: 1 + (x % 50) as i64,
                                },
                                it_value: Timespec {
                                    tv_sec: 0,
                                    tv_nsec: 1 + (x % 100) as i64,
                                },
                            },
                        )
                        .map(|_| ()),
                    3 => raw.timer_gettime(id).map(|_| ()),
                    4 => raw.timer_getoverrun(id).map(|o| assert!(o >= 0)),
                    _ => raw.timer_delete(id),
                };
                match r {
                    Ok(()) | Err(Errno::EINVAL) | Err(Errno::EAGAIN) => {}
                    Err(e) => panic!("unexpected {e}"),
                }
            }
        }));
    }
    let firer = {
        let (clock, stop) = (clock.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                clock.advance(Nsec(7));
            }
        })
    };
    let consumer = {
        let (p, stop) = (p.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut got = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(i) = p.raw().sigtimedwait(u64::MAX, Some(&Timespec::default())) {
                    assert_eq!(i.si_code, SI_TIMER);
                    assert!(i.si_overrun >= 0);
                    got += 1;
                }
            }
            got
        })
    };
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    firer.join().unwrap();
    let delivered = consumer.join().unwrap();
    assert!(delivered > 0, "some signals were delivered");

    // Drain, then exit: nothing may be left anywhere.
    while p
        .raw()
        .sigtimedwait(u64::MAX, Some(&Timespec::default()))
        .is_ok()
    {}
    let live = p.stats().timers;
    assert_eq!(clock.timers(), live);
    p.exit();
    assert_eq!(clock.timers(), 0);
    assert_eq!(p.stats().sig_entries, 0);
}
