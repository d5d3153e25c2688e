//! hostalarm on its own, as an emulator would use it: two device timers of
//! a pretend guest, driven by a real host alarm.
//!
//! * A programmable interval timer ticks every 10 ms of **guest** time
//!   (GUEST): its callback re-arms it one period after the deadline it
//!   ran for, so ticks never drift. While the VM is stopped, guest time
//!   stands still and so does the PIT.
//! * A serial port's receive timeout runs on **host** time (MONO, in
//!   microseconds): every received byte pushes it 3.5 ms further; it fires
//!   once the line has been quiet that long.
//!
//! The main thread plays the outside world: it feeds the serial port a
//! byte every millisecond for 30 ms, stops the VM from 100 to 200 ms, and
//! quits at 300 ms. Expect about 20 PIT ticks (300 ms minus the 100 ms
//! pause, at 10 ms; with a 1 ms backend a tick due just before the stop
//! may run just after it, on time in guest time), one receive timeout
//! 3.5 ms after the last byte, and the loop's statistics.
//!
//! The statistics show some spurious wakeups, about one per 3.5 ms of
//! traffic. They are the receive timeout's: pushing the first deadline
//! *later* does not re-arm the host alarm (that would cost a host call per
//! byte), so the alarm still fires at the old deadline and finds nothing
//! due, as in QEMU. Only an *earlier* first deadline re-arms at once.
//!
//! Run: `cargo run -p itimer-hostalarm --example device_timers [-- LIST]`,
//! where `LIST` is an alarm precedence list like QEMU's `-clock`
//! (`timerfd` by default; `help` lists the backends).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use itimer_hostalarm::alarm::{Choice, help};
use itimer_hostalarm::{ClockType, Clocks, Scale, TimerLoop};

/// The PIT's period, ns of guest time.
const PIT_PERIOD_NS: i64 = 10_000_000;
/// The serial receive timeout, µs of host time.
const RX_TIMEOUT_US: i64 = 3_500;
/// Bytes the outside world sends, one per millisecond.
const BYTES: u32 = 30;

fn main() {
    let option = std::env::args().nth(1).unwrap_or_else(|| "timerfd".into());
    let precedence = match Choice::parse(&option) {
        Ok(Choice::Help) => {
            print!("{}", help());
            return;
        }
        Ok(Choice::List(p)) => p,
        Err(e) => {
            eprintln!("device_timers: {e}");
            std::process::exit(2);
        }
    };
    let clocks = Clocks::new_real();
    let timer_loop = match TimerLoop::start(&clocks, &precedence) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("device_timers: no alarm backend started: {e:?}");
            std::process::exit(2);
        }
    };
    println!(
        "alarm backend: {} (resolution {} ns)",
        timer_loop.backend_name(),
        timer_loop.resolution_ns()
    );

    // The PIT: a GUEST timer that re-arms itself from its own deadline.
    let ticks = Arc::new(AtomicU32::new(0));
    let next_tick = Arc::new(AtomicI64::new(clocks.now(ClockType::Guest) + PIT_PERIOD_NS));
    let pit = {
        let (ticks, next_tick) = (ticks.clone(), next_tick.clone());
        clocks.guest().new_timer(Scale::Ns, move |me| {
            ticks.fetch_add(1, Ordering::SeqCst);
            let next = next_tick.fetch_add(PIT_PERIOD_NS, Ordering::SeqCst) + PIT_PERIOD_NS;
            me.arm(next).expect("the PIT re-arms itself");
        })
    };
    pit.arm(next_tick.load(Ordering::SeqCst))
        .expect("arm the PIT");

    // The serial port's receive timeout, in µs on host time.
    let timeouts = Arc::new(AtomicI64::new(-1));
    let rx_timeout = {
        let (timeouts, c) = (timeouts.clone(), clocks.clone());
        clocks.mono().new_timer(Scale::Us, move |_| {
            timeouts.store(c.now(ClockType::Mono), Ordering::SeqCst);
        })
    };

    let t0 = Instant::now();
    let us_now = |c: &Clocks| c.now(ClockType::Mono) / 1_000;
    let mut last_byte_ns = 0;
    for _ in 0..BYTES {
        last_byte_ns = clocks.now(ClockType::Mono);
        rx_timeout
            .arm(us_now(&clocks) + RX_TIMEOUT_US)
            .expect("push the receive timeout");
        std::thread::sleep(Duration::from_millis(1));
    }
    sleep_until(t0 + Duration::from_millis(100));
    clocks.vm_stop();
    let ticks_at_stop = ticks.load(Ordering::SeqCst);
    sleep_until(t0 + Duration::from_millis(200));
    let ticks_while_stopped = ticks.load(Ordering::SeqCst) - ticks_at_stop;
    clocks.vm_start();
    sleep_until(t0 + Duration::from_millis(300));

    let fired_at = timeouts.load(Ordering::SeqCst);
    println!(
        "PIT: {} ticks in 300 ms of host time with the VM stopped for 100 ms \
         ({ticks_while_stopped} while stopped); guest time {:.1} ms",
        ticks.load(Ordering::SeqCst),
        clocks.now(ClockType::Guest) as f64 / 1e6
    );
    if fired_at >= 0 {
        println!(
            "serial: receive timeout fired {:.3} ms after the last of {BYTES} bytes \
             (timeout {:.1} ms)",
            (fired_at - last_byte_ns) as f64 / 1e6,
            RX_TIMEOUT_US as f64 / 1e3
        );
    } else {
        println!("serial: the receive timeout never fired");
    }
    let s = timer_loop.stats();
    println!(
        "timer loop: {} wakeups ({} by the alarm, {} spurious), {} timers run, {} host re-arms",
        s.wakeups, s.alarm_wakeups, s.spurious_wakeups, s.timers_run, s.rearm_calls
    );
    // Timers first, then the loop: dropping the loop stops the backend.
    drop((pit, rx_timeout));
    drop(timer_loop);
}

/// Sleeps until `t`, however often a sleep is cut short.
fn sleep_until(t: Instant) {
    while let Some(left) = t.checked_duration_since(Instant::now()) {
        std::thread::sleep(left);
    }
}
