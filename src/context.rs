//! Go's `context`: cancellation and deadlines that flow down a tree of
//! contexts, observed through a channel usable in [`select!`](crate::select).
//!
//! A [`Context`] is cheap to clone and may be shared by any number of
//! coroutines and threads. Derive one with [`with_cancel`], [`with_timeout`]
//! or [`with_deadline`]; each returns the child and a [`CancelHandle`]. A
//! context is *done* when it is cancelled, its deadline passes, or its
//! parent is done: then [`Context::done`] is closed (a receive returns at
//! once with an error) and [`Context::err`] says why.
//!
//! ```
//! use std::time::Duration;
//! use gopark::{context, select};
//!
//! let (ctx, cancel) = context::with_timeout(&context::background(), Duration::from_millis(20));
//! let (_tx, work) = gopark::chan::bounded::<u32>(0); // work that never comes
//! let r = gopark::run(move || select! {
//!     recv(work) -> v => Ok(v.unwrap()),
//!     recv(ctx.done()) -> _ => Err(ctx.err().unwrap()),
//! });
//! assert_eq!(r, Err(context::ContextError::DeadlineExceeded));
//! drop(cancel);
//! ```
//!
//! ## Deadlines on sockets
//! Sockets take the context's deadline directly: a read or write that would
//! wait past it fails with [`TimedOut`](std::io::ErrorKind::TimedOut).
//!
//! ```
//! use std::io::Read;
//! use std::time::Duration;
//! use gopark::context;
//! use gopark::net::{TcpListener, TcpStream};
//!
//! gopark::run(|| {
//!     let l = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let mut s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
//!     let (ctx, _cancel) =
//!         context::with_timeout(&context::background(), Duration::from_millis(20));
//!     s.set_deadline(ctx.deadline()).unwrap(); // reads and writes
//!     let err = s.read(&mut [0; 8]).unwrap_err(); // the peer never writes
//!     assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
//! });
//! ```
//!
//! A deadline's timer lives on the runtime it was set from (the default
//! runtime on a plain thread); when that runtime shuts down, time runs out
//! and its contexts' deadlines pass at once.
//!
//! A deadline covers only its own expiry; to also stop a blocked read when
//! the context is *cancelled*, close the socket from a coroutine that waits
//! on [`done`](Context::done) (as `examples/fanout.rs` does).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::chan::{self, Receiver, Sender};
use crate::runtime::timer::{Action, Handle};
use crate::runtime::{self, Shared};

/// Why a context is done (Go's `context.Canceled` and
/// `context.DeadlineExceeded`).
///
/// ```
/// use gopark::context::{self, ContextError};
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// cancel.cancel();
/// assert_eq!(ctx.err(), Some(ContextError::Canceled));
/// assert_eq!(ContextError::Canceled.to_string(), "context canceled");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContextError {
    /// Cancelled through a [`CancelHandle`] (or a parent's).
    Canceled,
    /// The deadline passed.
    DeadlineExceeded,
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContextError::Canceled => "context canceled",
            ContextError::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl std::error::Error for ContextError {}

impl From<ContextError> for std::io::Error {
    fn from(e: ContextError) -> std::io::Error {
        let kind = match e {
            ContextError::Canceled => std::io::ErrorKind::Interrupted,
            ContextError::DeadlineExceeded => std::io::ErrorKind::TimedOut,
        };
        std::io::Error::new(kind, e)
    }
}

/// A node of the context tree.
struct Node {
    /// The parent, to leave its child list when cancelled.
    parent: Option<Arc<Node>>,
    /// Identifies this node in its parent's child list.
    id: u64,
    deadline: Option<Instant>,
    /// Closed when the context is done; nothing is ever sent. `None` for
    /// the background context, which is never done.
    done_tx: Option<Sender<()>>,
    done_rx: Receiver<()>,
    state: Mutex<State>,
}

struct State {
    err: Option<ContextError>,
    /// Children still to cancel with this node.
    children: HashMap<u64, Weak<Node>>,
    /// The deadline's timer, cancelled with the node.
    timer: Option<(Arc<Shared>, Handle)>,
}

fn lock(n: &Node) -> std::sync::MutexGuard<'_, State> {
    n.state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Node {
    /// Cancels this node and its subtree with `err` (first cause wins).
    fn cancel(self: &Arc<Node>, err: ContextError) {
        let (children, timer) = {
            let mut st = lock(self);
            if st.err.is_some() {
                return;
            }
            st.err = Some(err);
            (std::mem::take(&mut st.children), st.timer.take())
        };
        if let Some((shared, h)) = timer {
            shared.cancel_timer(h);
        }
        if let Some(tx) = &self.done_tx {
            tx.close();
        }
        for c in children.into_values() {
            if let Some(c) = c.upgrade() {
                c.cancel(err);
            }
        }
        if let Some(p) = &self.parent {
            lock(p).children.remove(&self.id);
        }
    }
}

/// Carries a cancellation signal and an optional deadline across API
/// boundaries and coroutines (Go's `context.Context`). Clones share the
/// same state. See the [module docs](self).
///
/// ```
/// let ctx = gopark::context::background();
/// assert!(ctx.err().is_none());
/// assert!(ctx.deadline().is_none());
/// let c2 = ctx.clone();
/// std::thread::spawn(move || assert!(c2.err().is_none())).join().unwrap();
/// ```
#[derive(Clone)]
pub struct Context {
    node: Arc<Node>,
}

/// Cancels its [`Context`] (Go's `CancelFunc`). Dropping it cancels too, so
/// keep it for as long as the context should live.
///
/// ```
/// use gopark::context;
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// drop(cancel);
/// assert_eq!(ctx.err(), Some(context::ContextError::Canceled));
/// ```
#[must_use = "dropping a CancelHandle cancels its context at once"]
pub struct CancelHandle {
    node: Arc<Node>,
}

/// The root context: never cancelled, no deadline (Go's
/// `context.Background()`). All calls return the same context.
///
/// ```
/// let ctx = gopark::context::background();
/// assert!(ctx.done().try_recv().unwrap_err().is_empty()); // never done
/// ```
pub fn background() -> Context {
    static BG: std::sync::OnceLock<Context> = std::sync::OnceLock::new();
    BG.get_or_init(|| Context {
        node: Arc::new(Node {
            parent: None,
            id: 0,
            deadline: None,
            done_tx: None,
            done_rx: chan::never(),
            state: Mutex::new(State {
                err: None,
                children: HashMap::new(),
                timer: None,
            }),
        }),
    })
    .clone()
}

/// A child of `parent` that is done when `cancel` is called on the handle
/// (or it is dropped), or when `parent` is done (Go's
/// `context.WithCancel`).
///
/// ```
/// use gopark::context;
/// let (parent, cancel_parent) = context::with_cancel(&context::background());
/// let (child, _cancel_child) = context::with_cancel(&parent);
/// cancel_parent.cancel();
/// assert!(child.done().recv().is_err()); // closed: done
/// assert_eq!(child.err(), Some(context::ContextError::Canceled));
/// ```
pub fn with_cancel(parent: &Context) -> (Context, CancelHandle) {
    derive(parent, parent.node.deadline)
}

/// A child of `parent` that is also done at `deadline` (Go's
/// `context.WithDeadline`). The child's deadline is the earlier of
/// `deadline` and the parent's; a deadline already past gives a context
/// that is born done.
///
/// ```
/// use std::time::{Duration, Instant};
/// use gopark::context;
/// let d = Instant::now() + Duration::from_millis(10);
/// let (ctx, _cancel) = context::with_deadline(&context::background(), d);
/// assert_eq!(ctx.deadline(), Some(d));
/// let _ = ctx.done().recv(); // returns when the deadline passes
/// assert!(Instant::now() >= d);
/// assert_eq!(ctx.err(), Some(context::ContextError::DeadlineExceeded));
/// ```
pub fn with_deadline(parent: &Context, deadline: Instant) -> (Context, CancelHandle) {
    let d = match parent.node.deadline {
        Some(p) if p <= deadline => p,
        _ => deadline,
    };
    derive(parent, Some(d))
}

/// [`with_deadline`] at `now + timeout` (Go's `context.WithTimeout`).
///
/// ```
/// use std::time::Duration;
/// use gopark::context;
/// let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::from_secs(60));
/// assert!(ctx.deadline().is_some());
/// assert!(ctx.err().is_none());
/// ```
pub fn with_timeout(parent: &Context, timeout: Duration) -> (Context, CancelHandle) {
    let now = Instant::now();
    match now.checked_add(timeout) {
        Some(d) => with_deadline(parent, d),
        None => with_cancel(parent),
    }
}

fn derive(parent: &Context, deadline: Option<Instant>) -> (Context, CancelHandle) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let (tx, rx) = chan::bounded(0);
    let is_root = parent.node.done_tx.is_none();
    let node = Arc::new(Node {
        // The background context never cancels anyone: no need to be in its
        // list (which would only grow).
        parent: (!is_root).then(|| parent.node.clone()),
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        deadline,
        done_tx: Some(tx),
        done_rx: rx,
        state: Mutex::new(State {
            err: None,
            children: HashMap::new(),
            timer: None,
        }),
    });
    if !is_root {
        let parent_err = {
            let mut pst = lock(&parent.node);
            if pst.err.is_none() {
                pst.children.insert(node.id, Arc::downgrade(&node));
            }
            pst.err
        };
        if let Some(e) = parent_err {
            // A child of a done parent is born done, for the same reason.
            node.cancel(e);
        }
    }
    if let Some(d) = deadline {
        if d <= Instant::now() {
            node.cancel(ContextError::DeadlineExceeded);
        } else {
            let mut st = lock(&node);
            if st.err.is_none() {
                let weak = Arc::downgrade(&node);
                let shared = runtime::current_shared();
                let h = shared.add_timer(
                    d,
                    Action::Call(Box::new(move || {
                        if let Some(n) = weak.upgrade() {
                            n.cancel(ContextError::DeadlineExceeded);
                        }
                    })),
                );
                st.timer = Some((shared, h));
            }
        }
    }
    (Context { node: node.clone() }, CancelHandle { node })
}

impl Context {
    /// A receiver that is closed when the context is done: a receive (or a
    /// [`select!`](crate::select) arm) then returns at once with an error.
    /// Nothing is ever sent on it. For [`background`] it never closes.
    ///
    /// ```
    /// use gopark::{context, select};
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// gopark::go!(move || cancel.cancel());
    /// select! { recv(ctx.done()) -> r => assert!(r.is_err()) }
    /// ```
    pub fn done(&self) -> &Receiver<()> {
        &self.node.done_rx
    }

    /// `None` while the context is live; afterwards why it is done.
    ///
    /// ```
    /// use gopark::context;
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// assert_eq!(ctx.err(), None);
    /// cancel.cancel();
    /// assert_eq!(ctx.err(), Some(context::ContextError::Canceled));
    /// ```
    pub fn err(&self) -> Option<ContextError> {
        lock(&self.node).err
    }

    /// True once the context is done (`err().is_some()`).
    ///
    /// ```
    /// assert!(!gopark::context::background().is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        self.err().is_some()
    }

    /// The deadline, if this context or an ancestor has one (the earliest).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use gopark::context;
    /// let d = Instant::now() + Duration::from_secs(5);
    /// let (parent, _c1) = context::with_deadline(&context::background(), d);
    /// let (child, _c2) = context::with_timeout(&parent, Duration::from_secs(60));
    /// assert_eq!(child.deadline(), Some(d)); // the parent's is earlier
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline
    }

    /// The time left before the deadline (zero once it passed), if any; handy
    /// for APIs that take a timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gopark::context;
    /// let (ctx, _c) = context::with_timeout(&context::background(), Duration::from_secs(60));
    /// assert!(ctx.remaining().unwrap() <= Duration::from_secs(60));
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline()
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

impl CancelHandle {
    /// Cancels the context and every context derived from it; its
    /// [`err`](Context::err) becomes [`ContextError::Canceled`] unless it was
    /// done already. Calling it again does nothing.
    ///
    /// ```
    /// use gopark::context;
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// cancel.cancel();
    /// cancel.cancel();
    /// assert!(ctx.is_done());
    /// ```
    pub fn cancel(&self) {
        self.node.cancel(ContextError::Canceled);
    }
}

impl Drop for CancelHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("deadline", &self.node.deadline)
            .field("err", &self.err())
            .finish()
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle").finish_non_exhaustive()
    }
}
