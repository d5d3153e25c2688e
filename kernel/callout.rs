//! Callouts: how a blocking call gives up after a timeout without a timed
//! wait.
//!
//! `kernel/sync.rs` offers no timed wait, on purpose. A call that must stop
//! waiting after a while arms a one-shot backend timer on `CLOCK_HIGHRES`
//! whose expiry sets the waiter's flag and wakes it, as a real kernel's
//! `cv_timedwait` arms a callout. The timeout is thus measured on the
//! model's own clock: exact on the simulated host, and as precise as the
//! host alarm on the real one.
//!
//! A [`Callout`] must be created and dropped **without** `p_lock` held
//! (its backend calls take the backend's lock, which comes before
//! `p_lock`). Dropping it deletes the backend timer, so its wake action
//! never runs afterwards.

use nix::errno::Errno;

use crate::abi::CLOCK_HIGHRES;
use crate::backend::{BackendTimer, ClockRegistry, Fire, SettimeFlags, TimerCreate};
use crate::ids::{Credentials, LwpId, Pid};
use crate::time::{ItimerSpecNs, Nsec};

/// An armed timeout; see the module docs.
pub(crate) struct Callout {
    btimer: Box<dyn BackendTimer>,
}

impl Callout {
    /// Arms `wake` to run once, `timeout` from now on `CLOCK_HIGHRES`.
    /// `ENOTSUP` if no HIGHRES backend is registered.
    pub fn arm(
        registry: &ClockRegistry,
        pid: Pid,
        timeout: Nsec,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Result<Callout, Errno> {
        let backend = registry
            .clock_get_backend(CLOCK_HIGHRES)
            .ok_or(Errno::ENOTSUP)?;
        let btimer = backend.timer_create(TimerCreate {
            fire: Fire::new(move |_| wake()),
            pid,
            lwp: LwpId::MAIN,
            privileged: true,
        })?;
        let spec = ItimerSpecNs {
            value: timeout,
            interval: Nsec::ZERO,
        };
        if let Err(e) = btimer.settime(&Credentials::ROOT, SettimeFlags::empty(), spec) {
            btimer.delete();
            return Err(e);
        }
        Ok(Callout { btimer })
    }
}

impl Drop for Callout {
    fn drop(&mut self) {
        self.btimer.delete();
    }
}
