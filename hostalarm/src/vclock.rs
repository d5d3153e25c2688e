//! GUEST: the VM run state behind guest time, and its controls (stop,
//! start, warp, step).
//!
//! Models `vm_stop` / `vm_start` / `cpu_get_clock` of QEMU (guest time is
//! an offset plus host time while the VM runs, frozen while it is stopped)
//! and the icount warp (a jump forward of guest time).
//!
//! # Invariants
//!
//! * GUEST = `base_virtual + (mono - base_mono)` while running,
//!   `base_virtual` while stopped; it never goes backwards.
//! * `VmState` lives in GUEST's `ClockState` and is guarded by
//!   GUEST's list lock, like the timers whose deadlines it converts.
//! * `vm_step` holds the runner token (see [`crate::runner`]) so that no
//!   other thread runs timers meanwhile; it takes and releases the list lock
//!   around each deadline and runs callbacks with no lock held.

use nix::errno::Errno;

use crate::clock::{ClockType, Clocks};
use crate::timerlist::TimerQueue;

impl Clocks {
    /// Whether the VM runs (GUEST advances).
    pub fn vm_running(&self) -> bool {
        self.inner.cell(ClockType::Guest).state.lock().vm.running
    }

    /// Stops the VM: GUEST freezes at its current value and its timers
    /// stop coming due. Idempotent.
    pub fn vm_stop(&self) {
        let mut st = self.inner.cell(ClockType::Guest).state.lock();
        // Host time is read under the lock, as readers read it: a reading
        // taken before the lock may be older than one a reader has just
        // turned into GUEST, which would then step back.
        let mono = self.inner.source.monotonic_ns();
        if st.vm.running {
            st.vm.base_virtual_ns = st.vm.value_at(mono);
            st.vm.running = false;
        }
    }

    /// Resumes the VM: GUEST advances again from where it stopped.
    /// Idempotent.
    pub fn vm_start(&self) {
        let resumed = {
            let mut st = self.inner.cell(ClockType::Guest).state.lock();
            // Under the lock, as in `vm_stop`.
            let mono = self.inner.source.monotonic_ns();
            let resumed = !st.vm.running;
            if resumed {
                st.vm.running = true;
                st.vm.base_mono_ns = mono;
            }
            resumed
        };
        if resumed {
            self.inner.notify_changed();
        }
    }

    /// Jumps GUEST forward by `dt_ns` (running or stopped), like QEMU's
    /// icount warp. Timers that come due run on the host's next pass, and
    /// see the warped time. `EINVAL` for a negative `dt_ns`; `EOVERFLOW`
    /// (and no change) if GUEST would pass `i64::MAX` ns.
    pub fn vm_warp(&self, dt_ns: i64) -> Result<(), Errno> {
        if dt_ns < 0 {
            return Err(Errno::EINVAL);
        }
        {
            let mut st = self.inner.cell(ClockType::Guest).state.lock();
            st.vm.base_virtual_ns = st
                .vm
                .base_virtual_ns
                .checked_add(dt_ns)
                .ok_or(Errno::EOVERFLOW)?;
        }
        self.inner.notify_changed();
        Ok(())
    }

    /// Advances a **stopped** GUEST by `dt_ns`, on the calling thread:
    /// GUEST is set to each due timer's deadline in turn and that
    /// deadline's timers run, so each callback reads exactly its deadline;
    /// GUEST ends at the old value plus `dt_ns`. If a callback resumes the
    /// VM the step ends there.
    ///
    /// Errors: `EINVAL` for a negative `dt_ns`; `EBUSY` if the VM runs;
    /// `EOVERFLOW` (and no change) if GUEST would pass `i64::MAX` ns;
    /// `EDEADLK` when called from a timer callback or reset notifier.
    /// Waits while another thread is running timers, and holds the host's
    /// next pass (every clock's timers) until the step is done.
    pub fn vm_step(&self, dt_ns: i64) -> Result<(), Errno> {
        if dt_ns < 0 {
            return Err(Errno::EINVAL);
        }
        let token = crate::runner::RunnerToken::acquire(&self.inner)?;
        let cell = self.inner.cell(ClockType::Guest);
        let target = {
            let st = cell.state.lock();
            if st.vm.running {
                return Err(Errno::EBUSY);
            }
            st.vm
                .base_virtual_ns
                .checked_add(dt_ns)
                .ok_or(Errno::EOVERFLOW)?
        };
        loop {
            {
                let mut st = cell.state.lock();
                if st.vm.running {
                    return Ok(());
                }
                let next = if st.enabled { st.list.first() } else { None };
                match next {
                    Some((expire, _)) if expire <= target => {
                        st.vm.base_virtual_ns = st.vm.base_virtual_ns.max(expire);
                    }
                    _ => {
                        st.vm.base_virtual_ns = st.vm.base_virtual_ns.max(target);
                        return Ok(());
                    }
                }
            }
            token.run_clock(ClockType::Guest);
        }
    }
}
