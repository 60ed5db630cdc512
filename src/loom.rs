//! Synchronisation shim: std's atomics normally, loom's under `--cfg loom`.
//!
//! The lock-free protocols in [`crate::sm`] import their atomics from here so
//! that `RUSTFLAGS="--cfg loom" cargo test --release --lib sm::` model-checks
//! them with loom; the rest of the crate uses std directly.

#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

/// An `Arc` whose reference counts loom tracks (leaks, releases).
#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::Arc;

/// A thread yield loom can schedule.
#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::thread::yield_now;

/// A mutex loom can model.
#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::Mutex;

/// A mutex loom can model (std version).
#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::sync::Mutex;

#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

/// An `Arc` whose reference counts loom tracks (std version).
#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::sync::Arc;

/// A thread yield loom can schedule (std version).
#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::thread::yield_now;

/// `UnsafeCell` with loom's closure-based API, so loom can track accesses.
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `UnsafeCell` with loom's closure-based API (std version).
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(v: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(v))
    }

    /// Calls `f` with a raw pointer to the contents.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
