//! A hand-driven clock backend for the kernel's own tests (feature
//! `manual-clock`). Not a product backend: the real ones
//! live in `clock_backends/`.
//!
//! Time moves only when a test calls [`ManualClock::advance`] or
//! `clock_settime`. Each advance first moves the clock, then fires every
//! timer whose deadline it passed, earliest first, once each: a periodic
//! timer that missed periods reports them all in one `fire(k)` with
//! `k = 1 + missed`, and its next deadline becomes `deadline + k × interval`
//! (O(1), however many periods were skipped): the product's rule,
//! [`crate::time::periods`], clamp at the end of time included. Tests
//! wanting one fire per period advance one period at a time.
//!
//! # Locks
//!
//! * `clock` guards the current time and the set of timers.
//! * Each timer's own mutex guards its deadline, interval and `Fire`, and is
//!   held while `Fire` runs, which is how `delete` waits out an in-flight
//!   fire.
//! * Order: timer mutex → `clock`. The clock lock is never held while a
//!   timer fires (firing takes `p_lock`).

use std::sync::Arc as StdArc;

use nix::errno::Errno;
use slab::Slab;

use crate::backend::{BackendTimer, ClockBackend, ClockRegistry, Fire, SettimeFlags, TimerCreate};
use crate::ids::Credentials;
use crate::sync::{Arc, Mutex};
use crate::time::{ItimerSpecNs, Nsec, periods};

#[derive(Debug)]
struct ClockState {
    now: Nsec,
    timers: Slab<Arc<ManualTimerShared>>,
}

/// The manual clock. Register it with [`ManualClock::register`].
#[derive(Debug)]
pub struct ManualClock {
    clock: Arc<Mutex<ClockState>>,
    resolution: Nsec,
}

#[derive(Debug, Default)]
struct TimerState {
    /// Absolute deadline on the clock; `None` when disarmed.
    deadline: Option<Nsec>,
    /// Period, ns; zero for one-shot.
    interval: Nsec,
    /// `None` once deleted.
    fire: Option<Fire>,
    /// Whether `settime` has been called at least once.
    ever_set: bool,
}

#[derive(Debug)]
struct ManualTimerShared {
    state: Mutex<TimerState>,
}

struct ManualTimer {
    shared: Arc<ManualTimerShared>,
    key: usize,
    clock: Arc<Mutex<ClockState>>,
}

impl ManualClock {
    /// A clock reading `start`, with a 1 ns resolution.
    pub fn new(start: Nsec) -> StdArc<ManualClock> {
        StdArc::new(ManualClock {
            clock: Arc::new(Mutex::new(ClockState {
                now: start,
                timers: Slab::new(),
            })),
            resolution: Nsec(1),
        })
    }

    /// Registers this clock for each of `ids` (e.g. `CLOCK_REALTIME`, its
    /// alias 0, and `CLOCK_HIGHRES`, which callouts need).
    pub fn register(
        self: &StdArc<Self>,
        registry: &mut ClockRegistry,
        ids: &[i32],
    ) -> Result<(), Errno> {
        for &id in ids {
            registry.clock_add_backend(id, self.clone())?;
        }
        Ok(())
    }

    /// The current time.
    pub fn now(&self) -> Nsec {
        self.clock.lock().now
    }

    /// Moves time forward by `dt` (saturating at [`Nsec::MAX`]) and fires
    /// what came due. Returns the number of `fire` calls made.
    pub fn advance(&self, dt: Nsec) -> usize {
        {
            let mut c = self.clock.lock();
            c.now = Nsec(c.now.0.saturating_add(dt.0).min(Nsec::MAX.0));
        }
        self.fire_due()
    }

    /// Timers armed right now.
    pub fn armed(&self) -> usize {
        let timers: Vec<_> = self
            .clock
            .lock()
            .timers
            .iter()
            .map(|(_, t)| t.clone())
            .collect();
        timers
            .iter()
            .filter(|t| t.state.lock().deadline.is_some())
            .count()
    }

    /// Timers that exist (armed or not) in this backend.
    pub fn timers(&self) -> usize {
        self.clock.lock().timers.len()
    }

    /// Whether exactly `n` timers exist and each has been set at least
    /// once. A test waiting for another thread's timeout callout uses this:
    /// a callout exists an instant before it is armed, and time advanced in
    /// between would be lost on it.
    pub fn settled_timers(&self, n: usize) -> bool {
        let timers: Vec<_> = self
            .clock
            .lock()
            .timers
            .iter()
            .map(|(_, t)| t.clone())
            .collect();
        timers.len() == n && timers.iter().all(|t| t.state.lock().ever_set)
    }

    fn fire_due(&self) -> usize {
        fire_due(&self.clock)
    }
}

/// Fires every timer whose deadline has passed, earliest first; returns the
/// number of `fire` calls.
fn fire_due(clock: &Mutex<ClockState>) -> usize {
    let (now, candidates) = {
        let c = clock.lock();
        let v: Vec<_> = c.timers.iter().map(|(_, t)| t.clone()).collect();
        (c.now, v)
    };
    let mut due: Vec<(Nsec, Arc<ManualTimerShared>)> = candidates
        .into_iter()
        .filter_map(|t| {
            let d = t.state.lock().deadline?;
            (d <= now).then_some((d, t))
        })
        .collect();
    due.sort_by_key(|(d, _)| *d);
    let mut calls = 0;
    for (_, t) in due {
        let mut s = t.state.lock();
        let Some(deadline) = s.deadline.filter(|d| *d <= now) else {
            continue;
        };
        // Nsec values are at most i64::MAX: the casts are exact.
        let (k, next) = periods(deadline.0 as i64, now.0 as i64, s.interval.0);
        s.deadline = next.map(|n| Nsec(n as u64));
        if let Some(f) = &s.fire {
            f.fire(k);
            calls += 1;
        }
    }
    calls
}

impl ClockBackend for ManualClock {
    fn name(&self) -> &'static str {
        "manual"
    }

    fn clock_settime(&self, now: Nsec) -> Result<(), Errno> {
        self.clock.lock().now = now;
        self.fire_due();
        Ok(())
    }

    fn clock_gettime(&self) -> Result<Nsec, Errno> {
        Ok(self.now())
    }

    fn clock_getres(&self) -> Result<Nsec, Errno> {
        Ok(self.resolution)
    }

    fn timer_create(&self, req: TimerCreate) -> Result<Box<dyn BackendTimer>, Errno> {
        let shared = Arc::new(ManualTimerShared {
            state: Mutex::new(TimerState {
                fire: Some(req.fire),
                ..TimerState::default()
            }),
        });
        let key = self.clock.lock().timers.insert(shared.clone());
        Ok(Box::new(ManualTimer {
            shared,
            key,
            clock: self.clock.clone(),
        }))
    }
}

impl ManualTimer {
    fn current(&self, s: &TimerState) -> ItimerSpecNs {
        let now = self.clock.lock().now;
        ItimerSpecNs {
            value: s.deadline.map_or(Nsec::ZERO, |d| d.saturating_sub(now)),
            interval: s.interval,
        }
    }
}

impl BackendTimer for ManualTimer {
    fn settime(
        &self,
        _cred: &Credentials,
        flags: SettimeFlags,
        spec: ItimerSpecNs,
    ) -> Result<ItimerSpecNs, Errno> {
        let due_now = {
            let mut s = self.shared.state.lock();
            let old = self.current(&s);
            let now = self.clock.lock().now;
            let deadline = if spec.value.is_zero() {
                None
            } else if flags.contains(SettimeFlags::ABSTIME) {
                Some(spec.value)
            } else {
                Some(now.checked_add(spec.value)?)
            };
            s.deadline = deadline;
            s.interval = spec.interval;
            s.ever_set = true;
            (deadline.is_some_and(|d| d <= now), old)
        };
        let (fire_now, old) = due_now;
        if fire_now {
            // An absolute time already past fires at once.
            fire_due(&self.clock);
        }
        Ok(old)
    }

    fn gettime(&self) -> ItimerSpecNs {
        let s = self.shared.state.lock();
        self.current(&s)
    }

    fn delete(&self) {
        let mut s = self.shared.state.lock();
        s.fire = None;
        s.deadline = None;
        drop(s);
        self.clock.lock().timers.try_remove(self.key);
    }
}
