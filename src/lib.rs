//! Stackful coroutines that behave like Go's goroutines, for blocking-style
//! network servers that run as fast as hand-written epoll.
//!
//! Platforms: Linux on x86_64 and aarch64.
//!
//! ```
//! use std::time::Duration;
//!
//! let total = gopark::run(|| {
//!     let handles: Vec<_> = (1..=10u64)
//!         .map(|i| gopark::go!(move || {
//!             gopark::time::sleep(Duration::from_millis(1));
//!             i
//!         }))
//!         .collect();
//!     handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(total, 55);
//! ```
//!
//! A coroutine runs ordinary blocking-style code. When it must wait (a
//! socket that would block, a sleep, a join, a channel) it *parks*, and its
//! worker thread runs other coroutines; a per-runtime epoll poller readies
//! it again. Coroutines are cheap: a guarded, lazily committed stack each.
//!
//! ## Glossary (Go's vocabulary, Rust casing)
//! - **coroutine** (Go: goroutine, `g`): a function running on its own stack.
//! - **worker** (Go: an M holding a P): an OS thread that runs coroutines.
//! - **park** (Go: `gopark`): suspend the running coroutine; the worker then
//!   runs the park's *commit* step, which publishes the coroutine where a
//!   waker will find it.
//! - **ready** (Go: `ready`/`goready`): make a parked coroutine runnable
//!   again, on its home worker.
//! - **runnext**: the slot for the coroutine that runs next on a worker.
//! - **spinning**: an idle worker looking for work to steal.
//! - **find_runnable** (Go: `findRunnable`): how a worker picks what runs next.
//! - **netpoll**, **PollDesc**: the epoll poller and its per-descriptor state.
//!
//! See `docs/ARCHITECTURE.md` and `docs/SAFETY.md` in the repository.

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
compile_error!("gopark supports Linux on x86_64 and aarch64 only");

// The stack unit tests include tests/common, which names the crate `gopark`.
#[cfg(all(test, not(loom)))]
extern crate self as gopark;

mod loom;
mod sm;

#[cfg(not(loom))]
pub mod chan;
#[cfg(not(loom))]
mod coroutine;
#[cfg(not(loom))]
mod macros;
#[cfg(not(loom))]
pub mod net;
#[cfg(not(loom))]
mod netpoll;
#[cfg(not(loom))]
mod runtime;
#[cfg(not(loom))]
mod spawn;
#[cfg(not(loom))]
mod stack;
#[cfg(not(loom))]
pub mod sync;
/// The integration tests' helpers, for unit tests that re-run themselves in
/// a child process.
#[cfg(all(test, not(loom)))]
#[path = "../tests/common/mod.rs"]
mod test_common;
#[cfg(not(loom))]
pub mod time;

#[cfg(not(loom))]
pub use coroutine::{current, park, park_timeout, yield_now, Coroutine, CoroutineId};
#[doc(hidden)]
#[cfg(not(loom))]
pub use macros::__go_spawn;
#[cfg(not(loom))]
pub use runtime::{Runtime, RuntimeBuilder};
#[cfg(not(loom))]
pub use spawn::{run, spawn, worker_index, Builder, JoinHandle};

/// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
