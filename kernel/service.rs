//! Service threads: the threads the kernel itself spawns for a process
//! (the SIGEV_THREAD notification thread, [`crate::notify_thread`]; the
//! signal delivery thread, [`crate::delivery`]).
//!
//! Each comes from [`crate::sync::thread`] (so loom can model it), is
//! counted in the kernel's live service-thread count while its body runs
//! (see [`crate::Subsystem::service_threads`]; the count drops even if the
//! body panics), and is ended by its process's exit: the exit makes the
//! body return, then joins it (`ServiceThread::finish`). A service thread
//! runs user code (callbacks, handlers) that may itself call `exit`; a
//! thread cannot join itself, so when `finish` runs on the thread it would
//! join, it detaches it instead: the body returns as soon as the user code
//! does, and the count shows when it has.
//!
//! `ServiceThread::is_current` recognises the thread by the `ThreadId`
//! recorded at spawn (`sync::thread::ThreadId`: std's, or loom's).

use nix::errno::Errno;

use crate::sync::Arc;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::thread::{self, JoinHandle};

/// The kernel's count of service threads whose bodies are running. The
/// kernel holds one; each service thread holds a share of it while its
/// body runs.
#[derive(Debug)]
pub(crate) struct ServiceCount(AtomicUsize);

impl ServiceCount {
    /// No service thread yet.
    pub fn new() -> ServiceCount {
        ServiceCount(AtomicUsize::new(0))
    }

    /// Service threads whose bodies are running now.
    pub fn live(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Decrements the live count when the body ends, panicking or not.
struct Alive<'a>(&'a ServiceCount);

impl Drop for Alive<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A spawned service thread; see the module docs.
pub(crate) struct ServiceThread {
    handle: JoinHandle<()>,
    /// The thread's id, to recognise a call made on it.
    id: thread::ThreadId,
}

impl std::fmt::Debug for ServiceThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceThread(..)")
    }
}

impl ServiceThread {
    /// Spawns `body` as service thread `name`, counted in `count` (the
    /// kernel's). `EAGAIN` if the host cannot make a thread.
    pub fn spawn(
        count: &Arc<ServiceCount>,
        name: &str,
        body: impl FnOnce() + Send + 'static,
    ) -> Result<ServiceThread, Errno> {
        count.0.fetch_add(1, Ordering::SeqCst);
        let k = count.clone();
        let spawned = thread::spawn_named(name, move || {
            let _alive = Alive(&k);
            body();
        });
        let handle = match spawned {
            Ok(h) => h,
            Err(_) => {
                count.0.fetch_sub(1, Ordering::SeqCst);
                return Err(Errno::EAGAIN);
            }
        };
        let id = handle.thread().id();
        Ok(ServiceThread { handle, id })
    }

    /// Whether the calling thread is this service thread.
    pub fn is_current(&self) -> bool {
        thread::current().id() == self.id
    }

    /// Waits for the body to return (the caller has made sure it will),
    /// or detaches the thread when called on it (see the module docs).
    pub fn finish(self) {
        if !self.is_current() {
            // A body that panicked has already reported it; nothing to add.
            let _ = self.handle.join();
        }
    }
}
