//! # itimer-sync — the sync seam
//!
//! The one crate that names a synchronisation implementation, at the bottom
//! of the layers (see `ARCHITECTURE.md`): `hostalarm` and `itimer-kernel`
//! both depend on it, and on nothing of each other for it.
//!
//! Every lock, condition variable, atomic, shared pointer and thread in the
//! kernel and in `hostalarm` comes from here. In a normal build they are
//! `parking_lot` locks and `std` atomics/threads; under `RUSTFLAGS="--cfg
//! loom"` they are loom's instrumented twins, so the loom models in
//! `loom-tests/` exercise the real protocol code rather than a copy of it.
//!
//! The API is the intersection of the two, shaped so that both compile the
//! same callers:
//!
//! * [`Mutex::lock`] returns the guard directly (no poisoning).
//! * [`Condvar::wait`] takes the guard **by value** and gives it back, which
//!   is loom's signature; parking_lot's `&mut guard` form is adapted here.
//! * There is deliberately **no timed wait**. Kernel logic that must give up
//!   after a while (a `port_get` or `sigtimedwait` timeout) arms a callout on
//!   a clock backend whose expiry wakes the waiter, as a real kernel's
//!   `cv_timedwait` does under the hood. That keeps every timeout on the
//!   model's own notion of time, so it is exact on the simulated host.

#[cfg(not(loom))]
mod imp {
    pub use std::sync::Arc;
    pub use std::sync::atomic;

    /// A mutual-exclusion lock (parking_lot in normal builds).
    #[derive(Debug, Default)]
    pub struct Mutex<T: ?Sized>(parking_lot::Mutex<T>);

    /// The guard of a locked [`Mutex`].
    pub type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        /// A new, unlocked mutex holding `value`.
        pub fn new(value: T) -> Self {
            Mutex(parking_lot::Mutex::new(value))
        }

        /// Consumes the mutex, returning the data.
        pub fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }

    impl<T: ?Sized> Mutex<T> {
        /// Blocks until the lock is held.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }

        /// Takes the lock if it is free.
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock()
        }
    }

    /// A condition variable used with [`Mutex`].
    #[derive(Debug, Default)]
    pub struct Condvar(parking_lot::Condvar);

    impl Condvar {
        /// A new condition variable.
        pub fn new() -> Self {
            Condvar(parking_lot::Condvar::new())
        }

        /// Atomically releases the guard's lock and sleeps until notified,
        /// then re-takes the lock. Spurious wakeups are possible: callers
        /// always wait in a loop on their predicate.
        pub fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(&mut guard);
            guard
        }

        /// Wakes one waiter.
        pub fn notify_one(&self) {
            self.0.notify_one();
        }

        /// Wakes every waiter.
        pub fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    /// Threads (std in normal builds).
    pub mod thread {
        pub use std::thread::{JoinHandle, ThreadId, current, spawn, yield_now};

        /// Spawns a named thread (the name shows in debuggers and `ps -L`).
        pub fn spawn_named<F, T>(name: &str, f: F) -> std::io::Result<JoinHandle<T>>
        where
            F: FnOnce() -> T + Send + 'static,
            T: Send + 'static,
        {
            std::thread::Builder::new().name(name.to_owned()).spawn(f)
        }
    }
}

#[cfg(loom)]
mod imp {
    pub use loom::sync::Arc;
    pub use loom::sync::atomic;

    /// A mutual-exclusion lock (loom's model of one under `--cfg loom`).
    #[derive(Debug)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    /// The guard of a locked [`Mutex`].
    pub type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Mutex::new(T::default())
        }
    }

    impl<T> Mutex<T> {
        /// A new, unlocked mutex holding `value`.
        pub fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        /// Consumes the mutex, returning the data.
        pub fn into_inner(self) -> T {
            self.0
                .into_inner()
                .expect("loom mutexes are never poisoned")
        }

        /// Blocks until the lock is held.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().expect("loom mutexes are never poisoned")
        }

        /// Takes the lock if it is free.
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock().ok()
        }
    }

    /// A condition variable used with [`Mutex`].
    #[derive(Debug, Default)]
    pub struct Condvar(loom::sync::Condvar);

    impl Condvar {
        /// A new condition variable.
        pub fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }

        /// Atomically releases the guard's lock and sleeps until notified.
        pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(guard).expect("loom mutexes are never poisoned")
        }

        /// Wakes one waiter.
        pub fn notify_one(&self) {
            self.0.notify_one();
        }

        /// Wakes every waiter.
        pub fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    /// Threads (loom's model threads under `--cfg loom`).
    pub mod thread {
        pub use loom::thread::{JoinHandle, ThreadId, current, spawn, yield_now};

        /// Spawns a thread; loom threads carry no name.
        pub fn spawn_named<F, T>(_name: &str, f: F) -> std::io::Result<JoinHandle<T>>
        where
            F: FnOnce() -> T + Send + 'static,
            T: Send + 'static,
        {
            Ok(loom::thread::spawn(f))
        }
    }
}

pub use imp::*;
