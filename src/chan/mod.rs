//! Go's channels: multi-producer, multi-consumer, bounded (including the
//! unbuffered rendezvous channel) or unbounded, and [`select!`](crate::select).
//!
//! A channel works the same from coroutines and from plain threads: waiting
//! parks a coroutine (its worker runs others) and blocks a thread, so the
//! two can talk to each other.
//!
//! ```
//! use gopark::chan;
//!
//! let (tx, rx) = chan::bounded(0); // unbuffered, like Go's make(chan int)
//! let producer = gopark::go!(move || {
//!     for i in 0..5 {
//!         tx.send(i).unwrap();
//!     }
//!     // dropping the last Sender closes the channel
//! });
//! let sum: i32 = rx.iter().sum(); // a plain thread receiving
//! assert_eq!(sum, 10);
//! producer.join().unwrap();
//! ```
//!
//! ## Semantics
//! - Values are delivered in FIFO order, each to exactly one receiver;
//!   waiters are served in FIFO order.
//! - A send to a waiting receiver hands the value over directly (Go's
//!   direct send) and readies the receiver; on the sender's worker it runs
//!   next.
//! - Closing (dropping every [`Sender`], or [`Sender::close`]): receivers
//!   drain the buffer, then get [`RecvError`]; sends fail with
//!   [`SendError`] holding the value. Dropping every [`Receiver`] closes
//!   the channel too and drops the buffered values.
//! - A timed wait that times out just as a value is handed to it still
//!   receives the value (the handoff won); otherwise the value goes to
//!   someone else. Values are never lost or duplicated.
//!
//! Implementation: Go's `hchan` (one lock over the buffer and two wait
//! queues of waiters that live on the waiting stacks); see the
//! `channel` and `select` source files for the protocol.

mod channel;
mod dynamic;
mod error;
mod never;
mod select;

pub use channel::{bounded, unbounded, IntoIter, Iter, Receiver, Sender, TryIter};
pub use dynamic::{select_recv, select_recv_timeout, try_select_recv};
pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use never::never;

/// Implementation details of [`select!`](crate::select); not a public API.
///
/// The macro expands to code in the caller's crate, so these items must be
/// public. They are safe to reach from outside the crate anyway: `Arm` is
/// sealed, and the methods that link an arm's node into a channel's queue
/// can only be called by `select`, which unlinks every node before it
/// returns or unwinds.
///
/// No type outside gopark can be an arm:
///
/// ```compile_fail,E0277
/// use gopark::chan::__private::{select, Arm, Timeout};
///
/// struct MyArm;
/// impl Arm for MyArm {}
///
/// select(&[&MyArm as &dyn Arm], Timeout::Now);
/// ```
///
/// nor can one implement the methods a select drives:
///
/// ```compile_fail,E0407
/// use gopark::chan::__private::{Arm, RecvArm, SelectCtx};
///
/// /// Registers a boxed arm, then frees it while it is linked.
/// struct LeakyArm<'a>(&'a gopark::chan::Receiver<i32>);
///
/// impl Arm for LeakyArm<'_> {
///     fn try_now(&self, _: &SelectCtx<'_>) -> bool {
///         false
///     }
///     fn register(&self, cx: &SelectCtx<'_>, token: usize) -> bool {
///         let inner = Box::new(RecvArm::new(self.0));
///         inner.register(cx, token) // linked, then dropped
///     }
///     fn unregister(&self, _: &SelectCtx<'_>) {}
///     fn complete(&self, _: &SelectCtx<'_>) {}
/// }
/// ```
///
/// and code outside gopark cannot drive an arm's registration: the methods
/// live on the private supertrait and take a context whose type is not
/// exported (and that only `select` can build), so there is nothing to call
/// them with:
///
/// ```compile_fail,E0432
/// use gopark::chan::__private::{Arm, RecvArm, SelectCtx};
///
/// fn register_and_leak(arm: &RecvArm<'_, i32>, cx: &SelectCtx<'_>) {
///     arm.register(cx, 1);
///     (arm as &dyn Arm).register(cx, 2);
/// }
/// ```
///
/// ```compile_fail,E0599
/// use gopark::chan::__private::{Arm, RecvArm};
///
/// let (_tx, rx) = gopark::chan::bounded::<i32>(0);
/// let arm = RecvArm::new(&rx);
/// arm.unregister(&());
/// ```
#[doc(hidden)]
pub mod __private {
    pub use super::select::{select, Arm, RecvArm, SendArm, Timeout};
}
