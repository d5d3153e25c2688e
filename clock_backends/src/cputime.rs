//! The CPU-time clocks: `CLOCK_VIRTUAL` (1), `CLOCK_THREAD_CPUTIME_ID` /
//! `CLOCK_PROF` (2) and `CLOCK_PROCESS_CPUTIME_ID` (5).
//!
//! Models illumos' `clock_thread.c` / `clock_process.c` backends as far as
//! timers go: the clocks can be read, but every timer operation on them
//! fails with `EINVAL` (illumos implements none), and `clock_settime` is
//! `EINVAL` too.
//!
//! What they read: the model's processes and LWPs are not host threads, so
//! the clocks report the CPU time of the **host** thread (1, 2) or the
//! **host** process (5) making the call, measured by the host kernel.
//! `CLOCK_VIRTUAL` is user time only (`getrusage(RUSAGE_THREAD)`), as
//! illumos' per-LWP user time; 2 is user + system time of the thread.
//! The resolution is what the host reports for the clock.

use nix::errno::Errno;
use nix::sys::resource::{UsageWho, getrusage};
use nix::time::{ClockId, clock_getres, clock_gettime};

use itimer_kernel::abi::{CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID, CLOCK_VIRTUAL};
use itimer_kernel::{BackendTimer, ClockBackend, Nsec, TimerCreate};

/// Which CPU-time clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuClock {
    /// `CLOCK_VIRTUAL`: the calling thread's user time.
    ThreadUser,
    /// `CLOCK_THREAD_CPUTIME_ID`: the calling thread's user + system time.
    Thread,
    /// `CLOCK_PROCESS_CPUTIME_ID`: the process's user + system time.
    Process,
}

impl CpuClock {
    /// The illumos clock id.
    pub fn clock_id(self) -> i32 {
        match self {
            CpuClock::ThreadUser => CLOCK_VIRTUAL,
            CpuClock::Thread => CLOCK_THREAD_CPUTIME_ID,
            CpuClock::Process => CLOCK_PROCESS_CPUTIME_ID,
        }
    }

    fn host_clock(self) -> ClockId {
        match self {
            CpuClock::ThreadUser | CpuClock::Thread => ClockId::CLOCK_THREAD_CPUTIME_ID,
            CpuClock::Process => ClockId::CLOCK_PROCESS_CPUTIME_ID,
        }
    }
}

/// A CPU-time clock backend.
#[derive(Debug, Clone, Copy)]
pub struct CpuTimeBackend {
    clock: CpuClock,
}

impl CpuTimeBackend {
    /// The backend for `clock`.
    pub fn new(clock: CpuClock) -> CpuTimeBackend {
        CpuTimeBackend { clock }
    }
}

fn timespec_ns(ts: nix::sys::time::TimeSpec) -> Result<Nsec, Errno> {
    let raw = itimer_kernel::abi::Timespec {
        tv_sec: ts.tv_sec(),
        tv_nsec: ts.tv_nsec(),
    };
    Nsec::from_timespec(&raw).map_err(|_| Errno::EOVERFLOW)
}

impl ClockBackend for CpuTimeBackend {
    fn name(&self) -> &'static str {
        match self.clock {
            CpuClock::ThreadUser => "virtual",
            CpuClock::Thread => "thread-cputime",
            CpuClock::Process => "process-cputime",
        }
    }

    fn clock_settime(&self, _now: Nsec) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }

    fn clock_gettime(&self) -> Result<Nsec, Errno> {
        match self.clock {
            CpuClock::ThreadUser => {
                let usage = getrusage(UsageWho::RUSAGE_THREAD)?;
                let tv = usage.user_time();
                let us = u64::try_from(tv.tv_sec())
                    .ok()
                    .and_then(|s| s.checked_mul(1_000_000))
                    .and_then(|s| s.checked_add(u64::try_from(tv.tv_usec()).ok()?))
                    .ok_or(Errno::EOVERFLOW)?;
                Ok(Nsec(us.saturating_mul(1_000)))
            }
            other => timespec_ns(clock_gettime(other.host_clock())?),
        }
    }

    fn clock_getres(&self) -> Result<Nsec, Errno> {
        match self.clock {
            // getrusage reports microseconds.
            CpuClock::ThreadUser => Ok(Nsec(1_000)),
            other => timespec_ns(clock_getres(other.host_clock())?),
        }
    }

    fn timer_create(&self, _req: TimerCreate) -> Result<Box<dyn BackendTimer>, Errno> {
        Err(Errno::EINVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU time the test burns before it checks that the clocks moved, ns.
    const BURN_NS: u64 = 5_000_000;
    /// How long (wall time) the test may take to get that much CPU on a
    /// loaded machine before it gives up.
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

    fn host_ns(clock: ClockId) -> u64 {
        timespec_ns(clock_gettime(clock).unwrap()).unwrap().0
    }

    #[test]
    fn thread_and_process_clocks_read_the_host_cpu_clocks() {
        for c in [CpuClock::Thread, CpuClock::Process] {
            let b = CpuTimeBackend::new(c);
            // Bracketed by the host's own readings: exact, whatever the load.
            let lo = host_ns(c.host_clock());
            let ours = b.clock_gettime().unwrap().0;
            let hi = host_ns(c.host_clock());
            assert!(lo <= ours && ours <= hi, "{c:?}: {lo} <= {ours} <= {hi}");
            assert_eq!(
                b.clock_getres().unwrap(),
                timespec_ns(clock_getres(c.host_clock()).unwrap()).unwrap()
            );
        }
    }

    #[test]
    fn cpu_clocks_advance_with_work() {
        for c in [CpuClock::ThreadUser, CpuClock::Thread, CpuClock::Process] {
            let b = CpuTimeBackend::new(c);
            let before = b.clock_gettime().unwrap();
            let start = std::time::Instant::now();
            let mut x = 0u64;
            // Spin until this clock shows BURN_NS of CPU: the test needs
            // CPU time to pass, not a share of the machine.
            while b.clock_gettime().unwrap().0 - before.0 < BURN_NS {
                assert!(start.elapsed() < PATIENCE, "{c:?} did not advance");
                for _ in 0..10_000 {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            assert_eq!(b.clock_settime(Nsec(0)), Err(Errno::EINVAL));
        }
    }

    #[test]
    fn timers_are_refused() {
        let b = CpuTimeBackend::new(CpuClock::Process);
        let req = TimerCreate {
            fire: itimer_kernel::Fire::new(|_| {}),
            pid: itimer_kernel::Pid(1),
            lwp: itimer_kernel::LwpId::MAIN,
            privileged: true,
        };
        assert_eq!(b.timer_create(req).err(), Some(Errno::EINVAL));
    }
}
