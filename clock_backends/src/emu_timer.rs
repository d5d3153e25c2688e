//! One model timer on the emulator clocks: the `BackendTimer` every clock
//! backend here hands the kernel.
//!
//! Models the per-timer half of illumos' `clock_realtime.c` /
//! `clock_highres.c` (the callout or cyclic behind `it_arg`), built on
//! hostalarm timers instead.
//!
//! # State and locks
//!
//! * `state` (one mutex per timer) guards the `Fire`, the current base,
//!   the deadline (model ns on that base), the interval and the LWP binding.
//!   The emulator timer's callback takes it and **calls `Fire` with it
//!   held**, which is how `delete` knows no fire is in progress: it takes
//!   the lock, drops the `Fire`, and from then on nothing can call it.
//! * Order: `state` → the wall offset (leaf) → hostalarm's list lock (via
//!   `arm_ns`); through `Fire`, `state` is the kernel's "backend per-timer
//!   lock", first in the kernel's one statement of the order
//!   (`itimer_kernel`'s crate documentation).
//! * hostalarm's `del` may wait for a running callback, which may be
//!   waiting for `state`; so `del` is only ever called with `state`
//!   released.
//!
//! # Periods
//!
//! When the emulator timer runs at (or after) the deadline `d`, the number
//! of expirations is `k = 1 + ⌊(now − d) / interval⌋` and the next deadline
//! is `d + k × interval`: the missed periods reach `timer_fire` as one
//! `fire(k)`, in O(1) however late the loop was. A next deadline past
//! `i64::MAX` ns (a VM warped to the end of guest time) is clamped to
//! `i64::MAX`, as Linux clamps to `KTIME_MAX`, unless the clock already
//! reads that instant: then the timer is disarmed, since it could only
//! fire again at once, for ever. The rule is the kernel's one
//! [`periods`] function, which `manual_clock` shares.
//!
//! # One timer, several bases
//!
//! A REALTIME timer armed relative runs on host monotonic time; armed
//! absolute it runs on the model's wall clock. Such a timer owns one
//! emulator timer per base it may use and arms only the one for its
//! current base.

use std::sync::{Arc as StdArc, Weak};

use nix::errno::Errno;

use itimer_hostalarm::{Scale, Timer, TimerHandle};
use itimer_kernel::sync::Mutex;
use itimer_kernel::time::periods;
use itimer_kernel::{BackendTimer, Credentials, Fire, ItimerSpecNs, LwpId, Nsec, SettimeFlags};

use crate::bases::{Base, Bases};

/// Which base a `timer_settime` arms on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BasePolicy {
    /// Always this base.
    Fixed(Base),
    /// REALTIME: relative values on [`Base::Mono`], absolute on
    /// [`Base::Wall`].
    RelativeMonoAbsoluteWall,
}

impl BasePolicy {
    fn bases(self) -> &'static [Base] {
        match self {
            BasePolicy::Fixed(Base::Mono) => &[Base::Mono],
            BasePolicy::Fixed(Base::Wall) => &[Base::Wall],
            BasePolicy::Fixed(Base::Vm) => &[Base::Vm],
            BasePolicy::RelativeMonoAbsoluteWall => &[Base::Mono, Base::Wall],
        }
    }

    fn base_for(self, flags: SettimeFlags) -> Base {
        match self {
            BasePolicy::Fixed(b) => b,
            BasePolicy::RelativeMonoAbsoluteWall if flags.contains(SettimeFlags::ABSTIME) => {
                Base::Wall
            }
            BasePolicy::RelativeMonoAbsoluteWall => Base::Mono,
        }
    }
}

/// illumos' HIGHRES guard: unprivileged callers may not ask for a
/// relative value or an interval below `min_ns`; they get `min_ns`.
/// Absolute values are points in time and are not raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResolutionGuard {
    /// The floor, ns.
    pub min_ns: u64,
}

impl ResolutionGuard {
    fn apply(self, cred: &Credentials, flags: SettimeFlags, spec: ItimerSpecNs) -> ItimerSpecNs {
        if cred.privileged {
            return spec;
        }
        let raise = |n: Nsec| {
            if n.0 > 0 && n.0 < self.min_ns {
                Nsec(self.min_ns)
            } else {
                n
            }
        };
        ItimerSpecNs {
            value: if flags.contains(SettimeFlags::ABSTIME) {
                spec.value
            } else {
                raise(spec.value)
            },
            interval: if spec.value.is_zero() {
                spec.interval
            } else {
                raise(spec.interval)
            },
        }
    }
}

#[derive(Debug)]
struct EmuState {
    /// `None` once deleted.
    fire: Option<Fire>,
    /// The base of the current (or last) arming.
    base: Base,
    /// Next expiration, model ns on `base`; `None` when disarmed.
    deadline: Option<i64>,
    /// Period, ns; zero for one-shot.
    interval: u64,
    /// One emulator timer per usable base.
    handles: Vec<(Base, TimerHandle)>,
    /// The LWP the timer is bound to (see [`EmuTimer`]'s binding docs).
    lwp: Option<LwpId>,
}

impl EmuState {
    fn handle(&self, base: Base) -> &TimerHandle {
        &self
            .handles
            .iter()
            .find(|(b, _)| *b == base)
            .expect("a timer has an emulator timer for every base its policy uses")
            .1
    }
}

/// The part of a timer its emulator callbacks share.
#[derive(Debug)]
pub(crate) struct EmuShared {
    state: Mutex<EmuState>,
    bases: StdArc<Bases>,
}

impl EmuShared {
    /// The remaining time, rounded up to the resolution with which the
    /// host really fires, and the interval.
    fn current(&self, s: &EmuState) -> ItimerSpecNs {
        let value = match s.deadline {
            None => 0,
            Some(d) => {
                let rem = d.saturating_sub(self.bases.now(s.base)).max(0) as u64;
                let res = self.bases.resolution_ns();
                rem.div_ceil(res).saturating_mul(res)
            }
        };
        ItimerSpecNs {
            value: Nsec(value),
            interval: Nsec(s.interval),
        }
    }

    /// The emulator timer for `base` ran.
    fn on_expire(&self, base: Base, me: &TimerHandle) {
        let mut s = self.state.lock();
        if s.base != base {
            return; // armed on another base since; stale
        }
        let Some(d) = s.deadline else {
            return;
        };
        let now = self.bases.now(base);
        if d > now {
            // Not due on the model clock (the wall offset moved, or the
            // host fired early): wait for the real deadline.
            let _ = me.arm_ns(self.bases.to_emu(base, d));
            return;
        }
        let (k, next) = periods(d, now, s.interval);
        s.deadline = next;
        if let Some(n) = next {
            let _ = me.arm_ns(self.bases.to_emu(base, n));
        }
        if let Some(fire) = &s.fire {
            fire.fire(k);
        }
    }

    /// The wall offset changed: re-arm a wall-based timer at its model
    /// deadline's new emulator time (a deadline now in the past runs on
    /// the host's next pass).
    pub(crate) fn rebase_wall(&self) {
        let s = self.state.lock();
        if let (Base::Wall, Some(d)) = (s.base, s.deadline) {
            let _ = s
                .handle(Base::Wall)
                .arm_ns(self.bases.to_emu(Base::Wall, d));
        }
    }
}

/// A model timer on the emulator clocks.
///
/// **Binding.** `timer_lwpbind` records the LWP the timer is bound to and
/// `timer_lwpexit` clears it. In illumos a bound HIGHRES timer's cyclic
/// moves to the CPU of that LWP; the model has one timer loop and no CPUs,
/// so the binding changes no timing: it is kept, reported by
/// [`EmuTimer::bound_lwp`], and dropped when the LWP exits.
pub struct EmuTimer {
    shared: StdArc<EmuShared>,
    policy: BasePolicy,
    guard: Option<ResolutionGuard>,
    on_delete: Option<Box<dyn Fn() + Send + Sync>>,
    /// Owned so the emulator timers live exactly as long as this one.
    _timers: Vec<Timer>,
}

impl std::fmt::Debug for EmuTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmuTimer")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl EmuTimer {
    /// A disarmed timer calling `fire`.
    pub(crate) fn new(
        bases: &StdArc<Bases>,
        policy: BasePolicy,
        guard: Option<ResolutionGuard>,
        fire: Fire,
        lwp: LwpId,
    ) -> EmuTimer {
        let usable = policy.bases();
        let shared = StdArc::new(EmuShared {
            state: Mutex::new(EmuState {
                fire: Some(fire),
                base: usable[0],
                deadline: None,
                interval: 0,
                handles: Vec::new(),
                lwp: Some(lwp),
            }),
            bases: bases.clone(),
        });
        let timers: Vec<Timer> = usable
            .iter()
            .map(|&base| {
                // Weak: the emulator timer's callback must not keep the
                // model timer alive.
                let weak: Weak<EmuShared> = StdArc::downgrade(&shared);
                bases
                    .clocks()
                    .clock(base.emu_clock())
                    .new_timer(Scale::Ns, move |me| {
                        if let Some(sh) = weak.upgrade() {
                            sh.on_expire(base, me);
                        }
                    })
            })
            .collect();
        shared.state.lock().handles = usable
            .iter()
            .zip(&timers)
            .map(|(&b, t)| (b, t.handle()))
            .collect();
        EmuTimer {
            shared,
            policy,
            guard,
            on_delete: None,
            _timers: timers,
        }
    }

    /// Runs `f` once when the timer is deleted (a backend's registry
    /// clean-up).
    pub(crate) fn on_delete(mut self, f: impl Fn() + Send + Sync + 'static) -> EmuTimer {
        self.on_delete = Some(Box::new(f));
        self
    }

    /// A weak reference for a backend's registry.
    pub(crate) fn downgrade(&self) -> Weak<EmuShared> {
        StdArc::downgrade(&self.shared)
    }

    /// The LWP the timer is bound to.
    pub fn bound_lwp(&self) -> Option<LwpId> {
        self.shared.state.lock().lwp
    }
}

impl BackendTimer for EmuTimer {
    fn settime(
        &self,
        cred: &Credentials,
        flags: SettimeFlags,
        spec: ItimerSpecNs,
    ) -> Result<ItimerSpecNs, Errno> {
        let spec = match self.guard {
            Some(g) => g.apply(cred, flags, spec),
            None => spec,
        };
        let base = self.policy.base_for(flags);
        let (old, to_cancel) = {
            let mut s = self.shared.state.lock();
            let old = self.shared.current(&s);
            let value = i64::try_from(spec.value.0).map_err(|_| Errno::EINVAL)?;
            let deadline = if value == 0 {
                None
            } else if flags.contains(SettimeFlags::ABSTIME) {
                Some(value)
            } else {
                Some(
                    self.shared
                        .bases
                        .now(base)
                        .checked_add(value)
                        .ok_or(Errno::EINVAL)?,
                )
            };
            if let Some(d) = deadline {
                // Armed before the state changes, so a failure leaves the
                // old setting in force.
                s.handle(base)
                    .arm_ns(self.shared.bases.to_emu(base, d))
                    .map_err(|_| Errno::EINVAL)?;
            }
            // Only the current base's emulator timer can be armed: each
            // settime cancels the one of the base it leaves, and
            // `on_expire` / `rebase_wall` arm only the current base's. So
            // at most the old base's needs cancelling: when disarming, or
            // when moving to another base (re-arming on the same base
            // replaced it already).
            let old_base = s.base;
            let to_cancel =
                (deadline.is_none() || old_base != base).then(|| s.handle(old_base).clone());
            s.base = base;
            s.deadline = deadline;
            s.interval = spec.interval.0;
            (old, to_cancel)
        };
        if let Some(h) = to_cancel {
            h.del();
        }
        Ok(old)
    }

    fn gettime(&self) -> ItimerSpecNs {
        let s = self.shared.state.lock();
        self.shared.current(&s)
    }

    fn delete(&self) {
        let handles: Vec<TimerHandle> = {
            let mut s = self.shared.state.lock();
            s.fire = None;
            s.deadline = None;
            s.handles.iter().map(|(_, h)| h.clone()).collect()
        };
        for h in handles {
            h.del();
        }
        if let Some(f) = &self.on_delete {
            f();
        }
    }

    fn lwpbind(&self, lwp: LwpId) -> Result<(), Errno> {
        self.shared.state.lock().lwp = Some(lwp);
        Ok(())
    }

    fn lwpexit(&self, lwp: LwpId) {
        let mut s = self.shared.state.lock();
        if s.lwp == Some(lwp) {
            s.lwp = None;
        }
    }
}
