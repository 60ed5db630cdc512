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
//! worker thread runs other coroutines; its worker's epoll poller readies
//! it again. Coroutines are cheap: a guarded, lazily committed stack each.
//!
//! ## Modules
//! - [`spawn`], [`go!`], [`Builder`], [`JoinHandle`], [`run`], [`yield_now`],
//!   [`park`], [`current`], [`worker_index`]: coroutines; [`scope`] for
//!   coroutines that borrow; [`coroutine_local!`] for per-coroutine values.
//! - [`Runtime`]: independent runtimes and their settings (the default one
//!   starts on first use); [`Runtime::metrics`] and [`metrics`]: live
//!   coroutines, queues, busy time, parks and polls per worker.
//! - [`dump`], [`coroutines`], [`Runtime::dump`]: what every coroutine is
//!   doing and waits for, with spawn sites and lock holders; a deadlock
//!   report and an opt-in dump on a signal (`docs/DEBUGGING.md`).
//! - [`net`]: TCP, UDP and Unix sockets with std's names, Go's deadlines and
//!   errors; [`io`] for pipes, child stdio and the standard streams; [`fs`]:
//!   std's file API off the workers; [`blocking`] for any other blocking call.
//! - [`chan`] and [`select!`]: Go's channels; [`sync`]: locks, `WaitGroup`,
//!   `ErrGroup` and friends that park instead of block; [`time`]: sleeps and
//!   timer channels; [`context`]: cancellation and deadlines; [`signal`]:
//!   signals as a channel.
//!
//! ## Pitfalls
//! A started coroutine never leaves its worker thread, and a worker runs many
//! coroutines. Whatever holds the worker's thread therefore stalls every
//! coroutine on that worker:
//!
//! - **Blocking calls.** `std::thread::sleep`, `std::fs`, `std::io::stdin`,
//!   a blocking pipe read, `Child::wait`, a blocking C library: each blocks
//!   the worker. Use [`time::sleep`], [`fs`] (std's file API, run on a pool
//!   of blocking threads), [`io::stdin`]/[`io::stdout`]/[`io::stderr`],
//!   [`io::Pollable`] for pipes, child stdio and other pollable descriptors,
//!   and [`blocking`] (or [`spawn_blocking`]) for anything else:
//!
//! ```
//! gopark::run(|| {
//!     let status = gopark::blocking(|| std::process::Command::new("true").status()).unwrap();
//!     assert!(status.success());
//! });
//! ```
//! - **Name resolution.** `getaddrinfo` blocks. gopark's socket functions
//!   take [`net::ToSocketAddrs`], which resolves host names on the blocking
//!   pool (numeric addresses are parsed on the spot); [`net::lookup_host`]
//!   resolves a name. Calling std's `to_socket_addrs` on a host name
//!   yourself blocks the worker.
//! - **CPU loops.** A coroutine that computes for a long time without
//!   parking keeps the others of its worker waiting (there is no
//!   preemption): call [`yield_now`] now and then, or move the work to
//!   [`blocking`] or a thread.
//!
//!   gopark's own operations that complete without parking (socket reads
//!   and writes that find data or room, datagrams and accepts, channel
//!   sends, receives and [`select!`]s that do not wait, uncontended
//!   [`sync::Mutex`], [`sync::RwLock`] and [`sync::Semaphore`]
//!   acquisitions) count against a
//!   cooperative budget: after 128 of them in a row the coroutine yields
//!   on its own, so a coroutine reading an always-ready socket does not
//!   starve its neighbours. Expect the occasional yield in such a loop.
//! - **`std::sync::Mutex` across a park.** Holding a std lock while the
//!   coroutine parks (a socket op, a channel, a sleep) can deadlock the
//!   worker: another coroutine of the same worker that calls `lock()` blocks
//!   the thread, and the holder can never run to release it. Use
//!   [`sync::Mutex`] (it parks instead), or release the std lock before any
//!   park.
//! - **Thread-locals.** Every coroutine of a worker sees that worker's
//!   `thread_local!`s, so a value set by one coroutine is seen by the others.
//!   Use [`coroutine_local!`] for a value per coroutine.
//!
//! ## Panics
//! A panic in a coroutine unwinds the coroutine's stack and ends it, as a
//! panic ends a thread; its worker and the other coroutines carry on.
//! [`JoinHandle::join`] returns the panic as an `Err` ([`run`] and
//! [`Runtime::run`] re-raise it in the caller). It is printed when it
//! happens, as a thread's is, after a line naming the coroutine:
//!
//! ```text
//! gopark: panic in coroutine 'conn-7' (id 42):
//!
//! thread 'gopark-worker-1' (1234) panicked at src/main.rs:10:5:
//! index out of bounds: the len is 0 but the index is 0
//! note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
//! ```
//!
//! With `RUST_BACKTRACE=1` the backtrace shows the coroutine's own frames,
//! not the runtime's (`RUST_BACKTRACE=full` shows all). A panic hook the
//! program installed before the first runtime started is still called for
//! every coroutine panic.
//!
//! A panic in a coroutine whose handle was dropped (detached) is printed
//! and the process carries on, as with a detached `std::thread`; a Go
//! program would die instead. To die too, build the runtime with
//! [`RuntimeBuilder::unjoined_panic`]`(`[`UnjoinedPanic::Abort`]`)`, or set
//! `GOPARK_UNJOINED_PANIC=abort` (which also covers the default runtime).
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
mod blocking;
#[cfg(not(loom))]
pub mod chan;
#[cfg(not(loom))]
pub mod context;
#[cfg(not(loom))]
mod coroutine;
#[cfg(not(loom))]
pub mod fs;
#[cfg(not(loom))]
pub mod io;
#[cfg(not(loom))]
mod local;
#[cfg(not(loom))]
mod macros;
#[cfg(not(loom))]
pub mod net;
#[cfg(not(loom))]
mod netpoll;
#[cfg(not(loom))]
mod runtime;
#[cfg(not(loom))]
mod scope;
#[cfg(not(loom))]
pub mod signal;
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
mod wait;

#[cfg(not(loom))]
pub use blocking::{blocking, spawn_blocking, BlockingHandle};
#[cfg(not(loom))]
pub use coroutine::{current, park, park_timeout, yield_now, Coroutine, CoroutineId};
#[cfg(not(loom))]
pub use local::CoroutineLocal;
#[doc(hidden)]
#[cfg(not(loom))]
pub use macros::__go_spawn;
#[cfg(not(loom))]
pub use runtime::dump::{coroutines, dump, CoroutineInfo, IoDirection};
#[cfg(not(loom))]
pub use runtime::metrics::{metrics, RuntimeMetrics, WorkerMetrics};
#[cfg(not(loom))]
pub use runtime::{Runtime, RuntimeBuilder, UnjoinedPanic};
#[cfg(not(loom))]
pub use scope::{scope, Scope, ScopedJoinHandle};
#[cfg(not(loom))]
pub use spawn::{run, spawn, worker_index, Builder, JoinHandle};
#[cfg(not(loom))]
pub use wait::CoroutineState;

/// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
