//! The channel itself (Go's `hchan`), its senders and receivers.
//!
//! ## Fields and their lock
//! [`Chan::state`] is one lock (Go's `hchan.lock`) over the buffer, the
//! `closed` flag and both wait queues. It is held for a few instructions
//! and never across user code: values are moved, not dropped, under it. The
//! sender and receiver counts are atomics outside the lock.
//!
//! ## Invariants (with the lock held)
//! - `recvq` is non-empty only while the buffer is empty and the channel is
//!   open (receivers wait only then, and a close drains the queue);
//! - `sendq` is non-empty only while the buffer is full (`cap` values; 0 for
//!   a rendezvous channel) and the channel is open;
//! - nodes in the queues may be stale (their waiter timed out or won another
//!   select arm): `pop_claim` skips them.
//!
//! ## send (Go's `chansend`)
//! 1. closed: fail, returning the value;
//! 2. a receiver waits: claim it and move the value into its node (Go's
//!    direct send); ready it after unlocking: it runs next if it lives on
//!    the sender's worker;
//! 3. room in the buffer: push;
//! 4. otherwise link a node holding the value in `sendq` and park; the
//!    lock is released after the switch. A receiver (or a close, or the
//!    deadline) claims the node.
//!
//! ## recv (Go's `chanrecv`)
//! 1. a value is buffered: take the oldest; if a sender waits (the buffer
//!    was full), claim it and move its value into the freed place, so FIFO
//!    order holds across the buffer and the waiting senders;
//! 2. a sender waits (rendezvous): claim it and take its value;
//! 3. closed: fail;
//! 4. otherwise link an empty node in `recvq` and park.
//!
//! ## A timeout racing a handoff
//! The waiter's deadline and a waker both try to claim the waiter (see
//! `sm::waitq`); exactly one wins. If the waker wins, the value was moved
//! into the node before the waiter can run, and the wait succeeds even if
//! its deadline has passed meanwhile. If the deadline wins, the waker skips
//! the node and the value goes to the next receiver or into the buffer.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use crate::sm::waitq::TIMED_OUT;
use crate::sync::waiter::{self, lock, Node, OnDrop, Parker, WaitList, Wake};
use crate::wait::Wait;
use crate::CoroutineState;

/// Capacity of an unbounded channel.
const UNBOUNDED: usize = usize::MAX;

/// What the channel lock protects.
pub(crate) struct State<T> {
    /// Buffered values, oldest first; at most `cap`.
    pub(crate) buf: VecDeque<T>,
    /// Set by a close (explicit, or when either side is gone); never reset.
    pub(crate) closed: bool,
    /// Waiting senders; their nodes hold the values.
    pub(crate) sendq: WaitList<T>,
    /// Waiting receivers; their nodes receive the values.
    pub(crate) recvq: WaitList<T>,
}

/// A channel (Go's `hchan`).
pub(crate) struct Chan<T> {
    pub(crate) state: Mutex<State<T>>,
    /// Buffer capacity; 0 = rendezvous, `UNBOUNDED` = no limit.
    pub(crate) cap: usize,
    senders: AtomicUsize,
    receivers: AtomicUsize,
}

impl<T> Chan<T> {
    fn new(cap: usize) -> Chan<T> {
        let initial = if cap == UNBOUNDED { 16 } else { cap.min(1024) };
        Chan {
            state: Mutex::new(State {
                buf: VecDeque::with_capacity(initial),
                closed: false,
                sendq: WaitList::new(),
                recvq: WaitList::new(),
            }),
            cap,
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
        }
    }

    /// Steps 1-3 of send, with the lock held. On success returns the
    /// receiver to wake after unlocking, if any.
    pub(crate) fn try_send_locked(
        &self,
        st: &mut State<T>,
        v: T,
    ) -> Result<Option<Wake>, TrySendError<T>> {
        if st.closed {
            return Err(TrySendError::Disconnected(v));
        }
        if let Some(n) = st.recvq.pop_claim(std::ptr::null()) {
            // SAFETY: `n` was claimed by us and we hold the lock: its slot
            // is ours (sm::waitq module docs); we touch it no more after
            // `finish`.
            unsafe {
                (*n).put_value(v);
                return Ok(Some(waiter::finish(n)));
            }
        }
        if st.buf.len() < self.cap {
            st.buf.push_back(v);
            return Ok(None);
        }
        Err(TrySendError::Full(v))
    }

    /// Steps 1-3 of recv, with the lock held. On success returns the value
    /// and the sender to wake after unlocking, if any.
    pub(crate) fn try_recv_locked(
        &self,
        st: &mut State<T>,
    ) -> Result<(T, Option<Wake>), TryRecvError> {
        if let Some(v) = st.buf.pop_front() {
            let wake = st.sendq.pop_claim(std::ptr::null()).map(|n| {
                // SAFETY: claimed by us under the lock; a waiting sender's
                // node always holds its value.
                unsafe {
                    let sent = (*n).take_value().expect("waiting sender without a value");
                    st.buf.push_back(sent);
                    waiter::finish(n)
                }
            });
            return Ok((v, wake));
        }
        if let Some(n) = st.sendq.pop_claim(std::ptr::null()) {
            // SAFETY: as above.
            unsafe {
                let v = (*n).take_value().expect("waiting sender without a value");
                return Ok((v, Some(waiter::finish(n))));
            }
        }
        if st.closed {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// What a dump shows of a coroutine parked sending or receiving here,
    /// with `len` values buffered, until `deadline`.
    #[inline]
    fn wait(&self, state: CoroutineState, len: usize, deadline: Option<Instant>) -> Wait<'_> {
        // UNBOUNDED is usize::MAX, which is what the dump reads as unbounded.
        Wait::chan(state, self, self.cap, len, deadline)
    }

    /// True if a recv would complete now (for select's registration).
    pub(crate) fn recv_ready(&self, st: &State<T>, me: *const waiter::Waiter) -> bool {
        !st.buf.is_empty() || st.closed || st.sendq.has_waiter(me)
    }

    /// True if a send would complete now (for select's registration).
    pub(crate) fn send_ready(&self, st: &State<T>, me: *const waiter::Waiter) -> bool {
        st.closed || st.buf.len() < self.cap || st.recvq.has_waiter(me)
    }

    fn send(&self, v: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        crate::runtime::worker::coop_tick();
        let mut st = lock(&self.state);
        let v = match self.try_send_locked(&mut st, v) {
            Ok(wake) => {
                drop(st);
                if let Some(w) = wake {
                    w.wake();
                }
                return Ok(());
            }
            Err(TrySendError::Disconnected(v)) => return Err(SendTimeoutError::Disconnected(v)),
            Err(TrySendError::Full(v)) => v,
        };
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(SendTimeoutError::Timeout(v));
        }
        let parker = Parker::new(deadline);
        let node = Node::new(Some(v));
        node.prepare(parker.waiter(), 1);
        // SAFETY: `node` lives in this frame until `cleanup` (declared
        // after it, so dropped before it) has unlinked it, also when the
        // frame is unwound; a waker pops it before claiming it.
        unsafe { st.sendq.push_back(&node) };
        let cleanup = OnDrop::new(|| {
            // SAFETY: the node was only ever linked in this sendq.
            unsafe { lock(&self.state).sendq.remove(&node) };
        });
        let wait = self.wait(CoroutineState::ChanSend, st.buf.len(), deadline);
        match parker.park(st, wait) {
            TIMED_OUT => {
                drop(cleanup);
                // SAFETY: unlinked and unclaimed: the slot is ours again.
                let v = unsafe { node.take_value() }.expect("timed-out send lost its value");
                Err(SendTimeoutError::Timeout(v))
            }
            _ => {
                // A waker claimed the node and unlinked it.
                cleanup.disarm();
                if node.was_closed() {
                    // SAFETY: woken: the slot is ours again.
                    let v = unsafe { node.take_value() }.expect("closed send lost its value");
                    Err(SendTimeoutError::Disconnected(v))
                } else {
                    Ok(())
                }
            }
        }
    }

    fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        crate::runtime::worker::coop_tick();
        let mut st = lock(&self.state);
        match self.try_recv_locked(&mut st) {
            Ok((v, wake)) => {
                drop(st);
                if let Some(w) = wake {
                    w.wake();
                }
                return Ok(v);
            }
            Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => {}
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(RecvTimeoutError::Timeout);
        }
        let parker = Parker::new(deadline);
        let node = Node::new(None);
        node.prepare(parker.waiter(), 1);
        // SAFETY: as in `send`.
        unsafe { st.recvq.push_back(&node) };
        let cleanup = OnDrop::new(|| {
            // SAFETY: the node was only ever linked in this recvq.
            unsafe { lock(&self.state).recvq.remove(&node) };
        });
        let wait = self.wait(CoroutineState::ChanReceive, st.buf.len(), deadline);
        match parker.park(st, wait) {
            TIMED_OUT => {
                drop(cleanup);
                Err(RecvTimeoutError::Timeout)
            }
            _ => {
                cleanup.disarm();
                // SAFETY: woken: the slot is ours again.
                match unsafe { node.take_value() } {
                    Some(v) => Ok(v),
                    None => {
                        debug_assert!(node.was_closed());
                        Err(RecvTimeoutError::Disconnected)
                    }
                }
            }
        }
    }

    /// Go's `closechan`: marks the channel closed and wakes every waiter
    /// (receivers get `RecvError`, senders their value back). Returns false
    /// if it was closed already.
    fn close(&self) -> bool {
        let mut wakes = Vec::new();
        {
            let mut st = lock(&self.state);
            if st.closed {
                return false;
            }
            st.closed = true;
            waiter::drain_all(&mut st.recvq, true, &mut wakes);
            waiter::drain_all(&mut st.sendq, true, &mut wakes);
        }
        for w in wakes {
            w.wake();
        }
        true
    }

    /// The last receiver is gone: close, and drop what is buffered (nobody
    /// can receive it), outside the lock.
    fn disconnect_receivers(&self) {
        self.close();
        let buf = std::mem::take(&mut lock(&self.state).buf);
        drop(buf);
    }
}

/// Converts a timeout to a deadline; `None` (wait forever) if it overflows.
fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// The sending side of a channel. Clone it for more producers; when the
/// last clone is dropped the channel closes for the receivers (after they
/// drained the buffer).
///
/// ```
/// let (tx, rx) = gopark::chan::bounded(4);
/// let tx2 = tx.clone();
/// gopark::go!(move || tx.send(1).unwrap());
/// gopark::go!(move || tx2.send(2).unwrap());
/// let mut got: Vec<i32> = rx.iter().collect();
/// got.sort();
/// assert_eq!(got, [1, 2]);
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving side of a channel. Clone it for more consumers; each value
/// goes to exactly one of them.
///
/// ```
/// let (tx, rx) = gopark::chan::unbounded();
/// tx.send("hi").unwrap();
/// assert_eq!(rx.recv(), Ok("hi"));
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

/// A channel of capacity `cap`: `send` parks while `cap` values are
/// buffered. `bounded(0)` is Go's unbuffered channel: a send completes only
/// when a receiver takes the value (a rendezvous).
///
/// ```
/// let (tx, rx) = gopark::chan::bounded(0);
/// let h = gopark::go!(move || rx.recv().unwrap());
/// tx.send(42).unwrap(); // returns once the coroutine has the value
/// assert_eq!(h.join().unwrap(), 42);
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    assert!(cap < UNBOUNDED, "bounded: capacity too large");
    new_pair(cap)
}

/// A channel without a capacity limit: `send` never blocks.
///
/// ```
/// let (tx, rx) = gopark::chan::unbounded();
/// for i in 0..1000 {
///     tx.send(i).unwrap();
/// }
/// assert_eq!(rx.len(), 1000);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    new_pair(UNBOUNDED)
}

fn new_pair<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(cap));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

impl<T> Sender<T> {
    /// Sends `v`, parking the coroutine (blocking the thread) while the
    /// channel is full. Fails, returning `v`, if the channel is closed.
    ///
    /// # Errors
    /// [`SendError`] if every receiver is gone or the channel was closed.
    ///
    /// ```
    /// let (tx, rx) = gopark::chan::bounded(1);
    /// tx.send(1).unwrap();
    /// drop(rx);
    /// assert_eq!(tx.send(2), Err(gopark::chan::SendError(2)));
    /// ```
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        self.chan
            .send(v, None)
            .map_err(|e| SendError(e.into_inner()))
    }

    /// Sends `v` if that can be done without waiting.
    ///
    /// # Errors
    /// [`TrySendError::Full`] if the buffer is full (rendezvous: no receiver
    /// waits), [`TrySendError::Disconnected`] if the channel is closed.
    ///
    /// ```
    /// let (tx, _rx) = gopark::chan::bounded(0);
    /// assert!(tx.try_send(1).unwrap_err().is_full());
    /// ```
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        let mut st = lock(&self.chan.state);
        let wake = self.chan.try_send_locked(&mut st, v)?;
        drop(st);
        if let Some(w) = wake {
            w.wake();
        }
        Ok(())
    }

    /// Like [`send`](Self::send), giving up after `timeout`.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] with the value if there was no room in
    /// time, [`SendTimeoutError::Disconnected`] if the channel is closed.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, rx) = gopark::chan::bounded(1);
    /// tx.send_timeout(1, Duration::from_millis(10)).unwrap();
    /// assert!(tx.send_timeout(2, Duration::from_millis(10)).unwrap_err().is_timeout());
    /// assert_eq!(rx.recv(), Ok(1));
    /// ```
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(v, deadline_after(timeout))
    }

    /// Like [`send`](Self::send), giving up at `deadline`.
    ///
    /// # Errors
    /// As [`send_timeout`](Self::send_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, _rx) = gopark::chan::bounded(0);
    /// let d = Instant::now() + Duration::from_millis(5);
    /// assert!(tx.send_deadline((), d).unwrap_err().is_timeout());
    /// assert!(Instant::now() >= d);
    /// ```
    pub fn send_deadline(&self, v: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(v, Some(deadline))
    }

    /// Go's `close(ch)`: closes the channel for every sender. Receivers
    /// drain the buffered values, then get [`RecvError`]; parked senders and
    /// later sends fail with their value. Returns false if it was already
    /// closed (Go would panic).
    ///
    /// ```
    /// let (tx, rx) = gopark::chan::bounded(2);
    /// let tx2 = tx.clone();
    /// tx.send(1).unwrap();
    /// assert!(tx.close());
    /// assert!(tx2.send(2).is_err());
    /// assert_eq!(rx.recv(), Ok(1));
    /// assert!(rx.recv().is_err());
    /// ```
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    /// True if the channel is closed (explicitly or because every receiver
    /// is gone).
    ///
    /// ```
    /// let (tx, rx) = gopark::chan::bounded::<()>(0);
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        lock(&self.chan.state).closed
    }

    /// Number of buffered values.
    ///
    /// ```
    /// let (tx, _rx) = gopark::chan::bounded(3);
    /// tx.send(()).unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        lock(&self.chan.state).buf.len()
    }

    /// True if nothing is buffered.
    ///
    /// ```
    /// let (tx, _rx) = gopark::chan::bounded::<u8>(3);
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity, or `None` for an unbounded channel.
    ///
    /// ```
    /// assert_eq!(gopark::chan::bounded::<u8>(0).0.capacity(), Some(0));
    /// assert_eq!(gopark::chan::unbounded::<u8>().0.capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        (self.chan.cap != UNBOUNDED).then_some(self.chan.cap)
    }

    pub(crate) fn chan(&self) -> &Chan<T> {
        &self.chan
    }
}

impl<T> Receiver<T> {
    /// Receives a value, parking the coroutine (blocking the thread) while
    /// the channel is empty.
    ///
    /// # Errors
    /// [`RecvError`] once the channel is closed and drained.
    ///
    /// ```
    /// let (tx, rx) = gopark::chan::bounded(1);
    /// gopark::go!(move || tx.send(5).unwrap());
    /// assert_eq!(rx.recv(), Ok(5));
    /// assert!(rx.recv().is_err()); // the sender is gone
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv(None).map_err(|_| RecvError)
    }

    /// Receives a value if one is ready.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if none is, [`TryRecvError::Disconnected`]
    /// if the channel is closed and drained.
    ///
    /// ```
    /// let (tx, rx) = gopark::chan::bounded(1);
    /// assert!(rx.try_recv().unwrap_err().is_empty());
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut st = lock(&self.chan.state);
        let (v, wake) = self.chan.try_recv_locked(&mut st)?;
        drop(st);
        if let Some(w) = wake {
            w.wake();
        }
        Ok(v)
    }

    /// Like [`recv`](Self::recv), giving up after `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] if nothing arrived in time,
    /// [`RecvTimeoutError::Disconnected`] if the channel is closed and
    /// drained.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, rx) = gopark::chan::bounded(1);
    /// gopark::go!(move || {
    ///     gopark::time::sleep(Duration::from_millis(1));
    ///     tx.send(9).unwrap();
    /// });
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(9));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.chan.recv(deadline_after(timeout))
    }

    /// Like [`recv`](Self::recv), giving up at `deadline`.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (_tx, rx) = gopark::chan::bounded::<u8>(0);
    /// let d = Instant::now() + Duration::from_millis(5);
    /// assert!(rx.recv_deadline(d).unwrap_err().is_timeout());
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.chan.recv(Some(deadline))
    }

    /// A blocking iterator: yields values until the channel is closed and
    /// drained.
    ///
    /// ```
    /// let (tx, rx) = gopark::chan::bounded(0);
    /// gopark::go!(move || for i in 0..3 { tx.send(i).unwrap() });
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator: yields the values ready now.
    ///
    /// ```
    /// let (tx, rx) = gopark::chan::unbounded();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().sum::<i32>(), 3);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Number of buffered values.
    ///
    /// ```
    /// let (tx, rx) = gopark::chan::bounded(3);
    /// tx.send(()).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        lock(&self.chan.state).buf.len()
    }

    /// True if nothing is buffered.
    ///
    /// ```
    /// let (_tx, rx) = gopark::chan::bounded::<u8>(3);
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity, or `None` for an unbounded channel.
    ///
    /// ```
    /// assert_eq!(gopark::chan::bounded::<u8>(8).1.capacity(), Some(8));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        (self.chan.cap != UNBOUNDED).then_some(self.chan.cap)
    }

    pub(crate) fn chan(&self) -> &Chan<T> {
        &self.chan
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // AcqRel: the last one out sees every other handle's drop.
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.close();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.chan.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.disconnect_receivers();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

/// Blocking iterator over received values; see [`Receiver::iter`].
///
/// ```
/// let (tx, rx) = gopark::chan::unbounded();
/// tx.send(1).unwrap();
/// drop(tx);
/// let it: gopark::chan::Iter<'_, i32> = rx.iter();
/// assert_eq!(it.count(), 1);
/// ```
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

/// Non-blocking iterator over ready values; see [`Receiver::try_iter`].
///
/// ```
/// let (_tx, rx) = gopark::chan::unbounded::<u8>();
/// let mut it: gopark::chan::TryIter<'_, u8> = rx.try_iter();
/// assert_eq!(it.next(), None);
/// ```
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

/// Owning blocking iterator; see `IntoIterator for Receiver`.
///
/// ```
/// let (tx, rx) = gopark::chan::unbounded();
/// tx.send('a').unwrap();
/// drop(tx);
/// let v: Vec<char> = rx.into_iter().collect();
/// assert_eq!(v, ['a']);
/// ```
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
