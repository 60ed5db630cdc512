//! Synchronisation primitives that park coroutines instead of blocking
//! their worker thread: [`Mutex`], [`RwLock`], [`Condvar`], [`WaitGroup`],
//! [`Once`], [`OnceLock`], [`Semaphore`], [`Barrier`], and Go's
//! [`ErrGroup`].
//!
//! They work from plain threads too (blocking the thread), so coroutines and
//! threads can share them. Waiters queue in FIFO order. A [`Semaphore`]
//! release or an [`RwLock`] unlock hands the permit or lock directly to the
//! first waiter; a [`Mutex`] unlock wakes the first waiter but lets a
//! running locker take the lock first, as Go's `sync.Mutex` does, until a
//! waiter has waited 1 ms (then it hands off too). No waiter starves.
//! Uncontended, a lock and an unlock are one atomic compare-and-swap each.
//! There is no poisoning, as in Go.
//!
//! ```
//! use std::sync::Arc;
//! use gopark::sync::{Mutex, WaitGroup};
//!
//! let total = Arc::new(Mutex::new(0u64));
//! let wg = WaitGroup::new();
//! for i in 1..=100 {
//!     wg.add(1);
//!     let (total, wg) = (total.clone(), wg.clone());
//!     gopark::go!(move || {
//!         *total.lock() += i;
//!         wg.done();
//!     });
//! }
//! wg.wait();
//! assert_eq!(*total.lock(), 5050);
//! ```
//!
//! ## Why not `std::sync::Mutex`?
//! A std mutex blocks the *thread*. A coroutine that holds one and then
//! parks (a socket read that would block, a channel, a sleep, a gopark lock)
//! leaves it locked while its worker runs other coroutines. If one of those
//! calls `lock()` on the same std mutex, it blocks the worker thread itself,
//! and the holder, which can only resume on that very worker (a started
//! coroutine never changes threads), never runs again to unlock it: the
//! worker is deadlocked, together with every coroutine that lives on it.
//! Even without a deadlock, a coroutine blocked on a std mutex stalls all
//! the coroutines of its worker.
//!
//! A std mutex is fine for short critical sections that never park inside
//! (no I/O, no channel operation, no sleep, no gopark lock while holding
//! it). For anything else use [`gopark::sync::Mutex`](Mutex): waiting on it
//! parks only the waiting coroutine, and its guard may be held across parks.
//! The same holds for std's `RwLock`, `Condvar`, `Barrier`, `Once` and
//! `OnceLock` (whose initialiser might park) versus the types here.
//!
//! ## Implementation
//! Each primitive is a lock-free state word (model-checked with loom; see
//! docs/SAFETY.md in the repository) for the fast paths, plus a FIFO
//! wait queue of waiters that live on the waiting stacks, behind a short
//! internal lock that is never held across user code. A waiting coroutine
//! is published in the queue only after it has switched off its stack
//! (docs/SAFETY.md, section 2).

mod barrier;
mod condvar;
mod errgroup;
mod mutex;
mod once;
mod rwlock;
mod sema;
mod semaphore;
pub(crate) mod waiter;
mod waitgroup;

pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use errgroup::ErrGroup;
pub use mutex::{Mutex, MutexGuard};
pub use once::{Once, OnceLock};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphorePermit};
pub use waitgroup::WaitGroup;
