//! Model 4: closing an event port against a timer firing into it and
//! against a retrieval from it.
//!
//! Three threads: F makes a `SIGEV_PORT` timer expire twice through the
//! probe backend (the real `timer_fire`, which posts the timer's cached
//! event); R blocks in `port_get` with no timeout; the main thread closes
//! the port. Whatever the interleaving:
//!
//! * R always wakes (loom reports a deadlock otherwise): with the timer's
//!   event, with `EBADFD` (closed while it waited), or with `EBADF` (closed
//!   before it looked);
//! * an event R gets is the timer's (source, object, user) and reports
//!   between one and as many expirations as F made, never 0, and
//!   `timer_getoverrun` latches it minus one;
//! * after the close the timer lives on with no notification: no `IT_PORT`
//!   flag, nothing pending, and a later fire changes neither;
//! * the port is gone from the kernel's table and the timer can still be
//!   deleted.

use itimer_kernel::abi::PORT_SOURCE_TIMER;
use itimer_kernel::itimer::ItFlags;
use itimer_kernel::{Arm, ClockId, Errno, ItimerSpec, SigEvent};

use super::common::*;

/// The `portev_user` of the model's timer.
const USER: u64 = 0x5eed;

/// The model (one interleaving; run it with the harness). Outcome: what
/// the retrieval got.
pub fn close_vs_fire_and_get() -> String {
    let (kernel, clock) = boot(8);
    let p = spawn_process(&kernel);
    let port = p.port_create().expect("a first port");
    let t = p
        .timer_create(
            ClockId::HIGHRES,
            Some(SigEvent::Port {
                port: port.0,
                user: USER,
            }),
        )
        .expect("a port timer");
    p.timer_settime(t, Arm::Relative, ItimerSpec::periodic(MS, MS))
        .expect("arming a live timer");
    let probe = clock.timer(0);

    let firer = {
        let probe = probe.clone();
        itimer_kernel::sync::thread::spawn(move || {
            assert!(probe.fire(1) && probe.fire(1), "the timer stays alive");
        })
    };
    let getter = on(&p, move |p| p.port_get(port, None));
    assert_eq!(p.port_close(port), Ok(()));
    firer.join().unwrap();
    let got = getter.join().unwrap();

    let fired = probe.counts().expirations;
    assert_eq!(fired, 2);
    let outcome = match got {
        Ok(ev) => {
            assert_eq!(ev.portev_source, PORT_SOURCE_TIMER as u16);
            assert_eq!(ev.portev_object, t.0 as u64);
            assert_eq!(ev.portev_user, USER);
            let k = ev.portev_events;
            assert!((1..=fired as i32).contains(&k), "portev_events {k}");
            assert_eq!(p.timer_getoverrun(t), Ok(k - 1));
            format!("event {k}")
        }
        Err(e) => {
            assert!(matches!(e, Errno::EBADF | Errno::EBADFD), "port_get: {e}");
            assert_eq!(p.timer_getoverrun(t), Ok(0));
            format!("{e:?}")
        }
    };

    // The timer lives on, with no notification, and stays that way.
    for _ in 0..2 {
        let s = p.timer_status(t.0).expect("the timer outlives its port");
        assert!(!s.flags.contains(ItFlags::PORT), "flags {:?}", s.flags);
        assert_eq!(s.pending, 0, "nothing outstanding after close");
        assert!(probe.fire(1));
    }
    assert!(kernel.ports().is_empty(), "the port is gone");
    assert_eq!(p.port_get(port, None), Err(Errno::EBADF));
    assert_eq!(p.timer_delete(t), Ok(()));
    assert_eq!(p.stats().timers, 0);
    assert_eq!(clock.live(), 0);
    outcome
}
