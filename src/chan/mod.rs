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
mod error;
mod never;
mod select;

pub use channel::{bounded, unbounded, IntoIter, Iter, Receiver, Sender, TryIter};
pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use never::never;

/// Implementation details of [`select!`](crate::select); not a public API.
#[doc(hidden)]
pub mod __private {
    pub use super::select::{select, Arm, RecvArm, SelectCtx, SendArm, Timeout};
}
