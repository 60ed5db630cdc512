//! Wait queues (Go's `waitq` of `sudog`s) and the claim word that decides
//! who completes a blocked operation (Go's `selectDone` plus `sudog.success`).
//!
//! ## Vocabulary
//! - A **blocker** is one blocked coroutine or thread (Go: the `g`). It owns
//!   one [`Claim`].
//! - A **node** (Go: `sudog`) is one operation of a blocker waiting in one
//!   queue: a plain `recv` has one node, a `select!` has one per arm. A node
//!   lives on the blocked party's stack and carries a `token` (the arm index
//!   plus one) and a value slot.
//! - A [`WaitList`] is an intrusive FIFO of nodes, protected by a lock that
//!   the *user* of the list holds (a channel's lock, a Mutex's queue lock);
//!   holding `&mut WaitList` is the proof.
//!
//! ## The claim word
//! ```text
//! WAITING (0) --claim(token)-------> token      a waker won arm `token`
//!             --claim(TIMED_OUT)---> TIMED_OUT  the deadline won
//!             --claim(ABORTED)-----> ABORTED    the blocker itself won
//!                                               (select saw an arm ready
//!                                               while registering)
//! ```
//! Exactly one compare-and-swap out of `WAITING` succeeds. The winner, and
//! only the winner, completes the operation (moves the value) and wakes the
//! blocker. A waker that loses skips the node (it is stale: its blocker was
//! woken through another queue or timed out) and tries the next one, so a
//! value is never handed to a waiter that has given up, and a waiter that
//! was handed a value always receives it.
//!
//! ## Who touches a node
//! - `prev`, `next`, `linked`: only under the list's lock.
//! - `blocker`, `token`: written by the owner before the node is linked, read
//!   by wakers under the lock.
//! - `slot`, `closed`: by the owner while the node is not linked and not
//!   claimed; by the claiming waker under the list's lock after a successful
//!   claim; by the owner again after it was woken.
//!
//! A waker touches a node only while it holds the lock of the list it found
//! the node in; once it unlocks it uses only what it copied out (the wake
//! handle). The owner, before its node's memory goes away, locks that list
//! and unlinks the node if it is still linked. Together these make it safe
//! for the node to live on a stack that may be unwound (a coroutine dropped
//! at runtime shutdown).

// Under loom only `sm` is compiled: the users of these items are not.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::ptr;

use crate::loom::{AtomicUsize, Ordering};

/// Nobody has claimed the blocker yet.
pub(crate) const WAITING: usize = 0;
/// The blocker's deadline claimed it.
pub(crate) const TIMED_OUT: usize = usize::MAX;
/// The blocker claimed itself (it must retry, nothing was transferred).
pub(crate) const ABORTED: usize = usize::MAX - 1;

/// The claim word of a blocker (see the module docs).
pub(crate) struct Claim {
    state: AtomicUsize,
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Claim").field(&self.get()).finish()
    }
}

impl Claim {
    pub(crate) fn new() -> Claim {
        Claim {
            state: AtomicUsize::new(WAITING),
        }
    }

    /// Tries to move the word from `WAITING` to `token`; true if this caller
    /// won.
    #[inline]
    pub(crate) fn claim(&self, token: usize) -> bool {
        debug_assert_ne!(token, WAITING);
        // AcqRel: the Acquire half orders the winner after the owner's
        // writes that published the node (pairs with the owner's Release in
        // the lock that protects the list, or with its own earlier writes
        // when the owner claims itself); the Release half pairs with the
        // Acquire in `get` for an owner that reads the outcome.
        self.state
            .compare_exchange(WAITING, token, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The current state: `WAITING`, a token, `TIMED_OUT` or `ABORTED`.
    #[inline]
    pub(crate) fn get(&self) -> usize {
        // Acquire: pairs with the Release half of `claim`.
        self.state.load(Ordering::Acquire)
    }
}

/// What a node needs from its blocker.
pub(crate) trait Blocker {
    /// The blocker's claim word.
    fn claim_word(&self) -> &Claim;
}

/// One waiting operation (Go's `sudog`); see the module docs for which
/// field is touched by whom.
pub(crate) struct Node<T, B> {
    prev: Cell<*const Node<T, B>>,
    next: Cell<*const Node<T, B>>,
    linked: Cell<bool>,
    blocker: Cell<*const B>,
    token: Cell<usize>,
    slot: UnsafeCell<Option<T>>,
    closed: Cell<bool>,
}

impl<T, B> fmt::Debug for Node<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("token", &self.token.get())
            .finish_non_exhaustive()
    }
}

impl<T, B> Node<T, B> {
    /// An unlinked node with `value` in its slot.
    pub(crate) const fn new(value: Option<T>) -> Node<T, B> {
        Node {
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            linked: Cell::new(false),
            blocker: Cell::new(ptr::null()),
            token: Cell::new(0),
            slot: UnsafeCell::new(value),
            closed: Cell::new(false),
        }
    }

    /// Sets who waits and for which token; only while the node is unlinked
    /// (the owner does it before `push_back`).
    pub(crate) fn prepare(&self, blocker: &B, token: usize) {
        debug_assert!(!self.linked.get());
        self.blocker.set(blocker);
        self.token.set(token);
        self.closed.set(false);
    }

    /// The token this node was prepared with.
    #[cfg(all(test, loom))]
    pub(crate) fn token(&self) -> usize {
        self.token.get()
    }

    /// The blocker this node was prepared with.
    pub(crate) fn blocker_ptr(&self) -> *const B {
        self.blocker.get()
    }

    /// True while the node is in a list. Read it under that list's lock.
    #[cfg(test)]
    pub(crate) fn is_linked(&self) -> bool {
        self.linked.get()
    }

    /// Takes the value out of the slot.
    ///
    /// # Safety
    /// The caller has exclusive access to the slot (module docs): it is the
    /// owner of an unlinked, unclaimed node or of a node it was woken for,
    /// or the waker that claimed the node and still holds the list's lock.
    pub(crate) unsafe fn take_value(&self) -> Option<T> {
        // SAFETY: exclusive access is the caller's contract.
        unsafe { (*self.slot.get()).take() }
    }

    /// Puts a value into the (empty) slot.
    ///
    /// # Safety
    /// As [`take_value`](Self::take_value).
    pub(crate) unsafe fn put_value(&self, v: T) {
        // SAFETY: exclusive access is the caller's contract.
        let slot = unsafe { &mut *self.slot.get() };
        debug_assert!(slot.is_none(), "node slot already full");
        *slot = Some(v);
    }

    /// Marks the operation as completed by a close, not a transfer (Go's
    /// `sudog.success = false`). Same contract as `put_value`.
    pub(crate) fn set_closed(&self) {
        self.closed.set(true);
    }

    /// True if a close woke this node.
    pub(crate) fn was_closed(&self) -> bool {
        self.closed.get()
    }
}

/// An intrusive FIFO of nodes (see the module docs).
pub(crate) struct WaitList<T, B> {
    head: *const Node<T, B>,
    tail: *const Node<T, B>,
}

impl<T, B> fmt::Debug for WaitList<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitList")
            .field("empty", &self.is_empty())
            .finish()
    }
}

// SAFETY: the list is only reached through the lock that owns it; the nodes
// it points to are touched only under that lock (module docs), and values of
// type T move between threads through them, hence `T: Send`; the blocker is
// shared with other threads through the claim word, hence `B: Sync`.
unsafe impl<T: Send, B: Sync> Send for WaitList<T, B> {}

impl<T, B> Default for WaitList<T, B> {
    fn default() -> Self {
        WaitList::new()
    }
}

impl<T, B> WaitList<T, B> {
    pub(crate) const fn new() -> WaitList<T, B> {
        WaitList {
            head: ptr::null(),
            tail: ptr::null(),
        }
    }

    /// True if no node waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// The token of the node at the front, if any.
    pub(crate) fn front_token(&self) -> Option<usize> {
        // SAFETY: a linked node is alive (push_back contract) and the caller
        // holds the list's lock.
        (!self.head.is_null()).then(|| unsafe { (*self.head).token.get() })
    }

    /// Appends `node`.
    ///
    /// # Safety
    /// `node` is prepared and not linked in any list; it stays at this
    /// address and alive until it has been removed from this list (by a
    /// waker's pop, or by its owner's `remove` under this list's lock).
    pub(crate) unsafe fn push_back(&mut self, node: &Node<T, B>) {
        debug_assert!(!node.linked.get());
        debug_assert!(!node.blocker.get().is_null());
        node.prev.set(self.tail);
        node.next.set(ptr::null());
        node.linked.set(true);
        if self.tail.is_null() {
            self.head = node;
        } else {
            // SAFETY: `tail` is linked here, hence alive (push_back contract).
            unsafe { (*self.tail).next.set(node) };
        }
        self.tail = node;
    }

    /// Prepends `node` (a waiter that lost a race queues again ahead of the
    /// others).
    ///
    /// # Safety
    /// As [`push_back`](Self::push_back).
    pub(crate) unsafe fn push_front(&mut self, node: &Node<T, B>) {
        debug_assert!(!node.linked.get());
        debug_assert!(!node.blocker.get().is_null());
        node.prev.set(ptr::null());
        node.next.set(self.head);
        node.linked.set(true);
        if self.head.is_null() {
            self.tail = node;
        } else {
            // SAFETY: `head` is linked here, hence alive (push_back contract).
            unsafe { (*self.head).prev.set(node) };
        }
        self.head = node;
    }

    /// Unlinks `node` if it is linked; true if it was.
    ///
    /// # Safety
    /// If `node` is linked, it is linked in this list.
    pub(crate) unsafe fn remove(&mut self, node: &Node<T, B>) -> bool {
        if !node.linked.get() {
            return false;
        }
        // SAFETY: `node` is in this list (caller), so its neighbours are too.
        unsafe { self.unlink(node) };
        true
    }

    /// # Safety
    /// `node` is linked in this list.
    unsafe fn unlink(&mut self, node: *const Node<T, B>) {
        // SAFETY: linked nodes are alive (push_back contract); the caller
        // holds the lock that protects every link field.
        let n = unsafe { &*node };
        let (prev, next) = (n.prev.get(), n.next.get());
        if prev.is_null() {
            self.head = next;
        } else {
            // SAFETY: a linked neighbour is alive.
            unsafe { (*prev).next.set(next) };
        }
        if next.is_null() {
            self.tail = prev;
        } else {
            // SAFETY: a linked neighbour is alive.
            unsafe { (*next).prev.set(prev) };
        }
        n.prev.set(ptr::null());
        n.next.set(ptr::null());
        n.linked.set(false);
    }
}

impl<T, B: Blocker> WaitList<T, B> {
    /// Go's `dequeue`: unlinks nodes from the front until it claims one for
    /// its token, and returns it. Nodes whose claim fails are stale and are
    /// dropped from the list; nodes of `exclude` (the caller's own blocker,
    /// in a select that sends and receives on one channel) are left in place.
    ///
    /// The returned pointer is valid while the caller holds this list's lock
    /// and has not yet woken the node's blocker.
    pub(crate) fn pop_claim(&mut self, exclude: *const B) -> Option<*const Node<T, B>> {
        let mut cur = self.head;
        while !cur.is_null() {
            // SAFETY: a linked node is alive (push_back contract) and we hold
            // the lock (we have `&mut self`).
            let n = unsafe { &*cur };
            let next = n.next.get();
            let b = n.blocker.get();
            if !ptr::eq(b, exclude) {
                // SAFETY: `cur` is linked in this list.
                unsafe { self.unlink(cur) };
                // SAFETY: the blocker outlives its linked nodes (it is
                // created before them and the owner unlinks them first).
                if unsafe { (*b).claim_word() }.claim(n.token.get()) {
                    return Some(cur);
                }
            }
            cur = next;
        }
        None
    }

    /// Like `pop_claim` without exclusion, but claims with `token` instead
    /// of the node's own (a lock that wakes its first waiter in one of two
    /// ways).
    pub(crate) fn pop_claim_as(&mut self, token: usize) -> Option<*const Node<T, B>> {
        debug_assert_ne!(token, WAITING);
        while !self.head.is_null() {
            let cur = self.head;
            // SAFETY: as in `pop_claim`.
            let b = unsafe { (*cur).blocker.get() };
            // SAFETY: `cur` is linked in this list.
            unsafe { self.unlink(cur) };
            // SAFETY: as in `pop_claim`.
            if unsafe { (*b).claim_word() }.claim(token) {
                return Some(cur);
            }
        }
        None
    }

    /// True if some node other than `exclude`'s still waits unclaimed (a
    /// hint for select's registration; the answer may be stale at once).
    pub(crate) fn has_waiter(&self, exclude: *const B) -> bool {
        let mut cur = self.head;
        while !cur.is_null() {
            // SAFETY: as in `pop_claim`.
            let n = unsafe { &*cur };
            let b = n.blocker.get();
            // SAFETY: as in `pop_claim`.
            if !ptr::eq(b, exclude) && unsafe { (*b).claim_word() }.get() == WAITING {
                return true;
            }
            cur = n.next.get();
        }
        false
    }
}

/// The blocker the loom models of this file, `sm::sema` and `sm::rwlock`
/// share: its claim word, and a flag a waiter spins on instead of parking.
#[cfg(all(test, loom))]
pub(crate) struct TestBlocker {
    pub(crate) claim: Claim,
    pub(crate) woken: loom::sync::atomic::AtomicBool,
}

#[cfg(all(test, loom))]
impl TestBlocker {
    pub(crate) fn new() -> TestBlocker {
        TestBlocker {
            claim: Claim::new(),
            woken: loom::sync::atomic::AtomicBool::new(false),
        }
    }
}

#[cfg(all(test, loom))]
impl Blocker for TestBlocker {
    fn claim_word(&self) -> &Claim {
        &self.claim
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Models of the channel wait queue: a one-slot buffered channel whose
    //! receiver waits with a timeout, and a select over two channels. The
    //! "channel" here is the real [`WaitList`] and [`Claim`] under a loom
    //! mutex, with the same send/recv steps as `chan::channel`.
    use super::*;
    use loom::sync::{Arc, Mutex};
    use std::collections::VecDeque;

    struct State {
        buf: VecDeque<u32>,
        recvq: WaitList<u32, TestBlocker>,
    }
    // SAFETY: (test) nodes are only touched under the loom mutex.
    unsafe impl Send for State {}

    /// The sender's side of `chan::channel::send` (buffered, never blocks
    /// here): direct handoff to a claimed receiver, else the buffer.
    fn send(ch: &Mutex<State>, v: u32) {
        let mut st = ch.lock().unwrap();
        if let Some(n) = st.recvq.pop_claim(ptr::null()) {
            // SAFETY: claimed under the lock.
            let n = unsafe { &*n };
            // SAFETY: we claimed it and hold the lock.
            unsafe { n.put_value(v) };
            let b = n.blocker_ptr();
            // SAFETY: the blocker is alive until woken.
            unsafe { (*b).woken.store(true, Ordering::Release) };
            return;
        }
        st.buf.push_back(v);
    }

    /// A value sent while a receiver times out is delivered exactly once:
    /// to the receiver (claimed) or to the buffer (timed out).
    #[test]
    fn recv_timeout_races_send() {
        loom::model(|| {
            let ch = Arc::new(Mutex::new(State {
                buf: VecDeque::new(),
                recvq: WaitList::new(),
            }));
            let blocker = Arc::new(TestBlocker::new());
            let node: Arc<Node<u32, TestBlocker>> = Arc::new(Node::new(None));
            node.prepare(&blocker, 1);
            {
                let mut st = ch.lock().unwrap();
                // SAFETY: the Arc keeps the node alive and in place; it is
                // removed below before it is dropped.
                unsafe { st.recvq.push_back(&node) };
            }
            let sender = {
                let ch = ch.clone();
                loom::thread::spawn(move || send(&ch, 7))
            };
            let timer = {
                let blocker = blocker.clone();
                loom::thread::spawn(move || blocker.claim.claim(TIMED_OUT))
            };
            let timer_won = timer.join().unwrap();
            sender.join().unwrap();
            let mut st = ch.lock().unwrap();
            // SAFETY: the node was only ever linked in this list.
            unsafe { st.recvq.remove(&node) };
            let got = if timer_won {
                assert_eq!(blocker.claim.get(), TIMED_OUT);
                None
            } else {
                assert_eq!(blocker.claim.get(), 1);
                assert!(blocker.woken.load(Ordering::Acquire));
                // SAFETY: woken: the slot is ours.
                unsafe { node.take_value() }
            };
            let buffered = st.buf.pop_front();
            assert_eq!(
                usize::from(got.is_some()) + usize::from(buffered.is_some()),
                1
            );
        });
    }

    /// A select waits on two channels; two senders race. Exactly one value
    /// is taken by the select, the other stays buffered in its channel.
    #[test]
    fn select_two_senders_one_wins() {
        loom::model(|| {
            let mk = || {
                Arc::new(Mutex::new(State {
                    buf: VecDeque::new(),
                    recvq: WaitList::new(),
                }))
            };
            let (a, b) = (mk(), mk());
            let blocker = Arc::new(TestBlocker::new());
            let na: Arc<Node<u32, TestBlocker>> = Arc::new(Node::new(None));
            let nb: Arc<Node<u32, TestBlocker>> = Arc::new(Node::new(None));
            na.prepare(&blocker, 1);
            nb.prepare(&blocker, 2);
            // SAFETY: the Arcs keep the nodes in place; removed below.
            unsafe { a.lock().unwrap().recvq.push_back(&na) };
            // SAFETY: as above.
            unsafe { b.lock().unwrap().recvq.push_back(&nb) };
            let ta = {
                let a = a.clone();
                loom::thread::spawn(move || send(&a, 1))
            };
            let tb = {
                let b = b.clone();
                loom::thread::spawn(move || send(&b, 2))
            };
            ta.join().unwrap();
            tb.join().unwrap();
            // The owner cleans up both registrations.
            let mut sa = a.lock().unwrap();
            let mut sb = b.lock().unwrap();
            // SAFETY: each node was only linked in its own list.
            unsafe {
                sa.recvq.remove(&na);
                sb.recvq.remove(&nb);
            }
            let won = blocker.claim.get();
            assert!(won == 1 || won == 2);
            assert!(blocker.woken.load(Ordering::Acquire));
            let (winner, other_buf) = if won == 1 {
                (&na, &mut sb.buf)
            } else {
                (&nb, &mut sa.buf)
            };
            // SAFETY: woken for this node: the slot is ours.
            assert_eq!(unsafe { winner.take_value() }, Some(won as u32));
            assert_eq!(other_buf.pop_front(), Some(3 - won as u32));
            assert!(sa.buf.is_empty() && sb.buf.is_empty());
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    struct B(Claim);
    impl Blocker for B {
        fn claim_word(&self) -> &Claim {
            &self.0
        }
    }

    /// Unlinked nodes prepared for `blockers`, token 1 (a node may move
    /// until it is linked).
    fn prepared(blockers: [&B; 3]) -> [Node<(), B>; 3] {
        blockers.map(|b| {
            let n = Node::new(None);
            n.prepare(b, 1);
            n
        })
    }

    #[test]
    fn fifo_skips_stale_and_excluded() {
        let [b1, b2, b3] = [(); 3].map(|()| B(Claim::new()));
        let [n1, n2, n3] = prepared([&b1, &b2, &b3]);
        let mut l = WaitList::new();
        // SAFETY: the nodes outlive the list's use below.
        unsafe {
            l.push_back(&n1);
            l.push_back(&n2);
            l.push_back(&n3);
        }
        assert!(b1.0.claim(TIMED_OUT), "n1 went stale");
        let got = l.pop_claim(&b2).unwrap();
        assert!(ptr::eq(got, &n3), "n1 stale, n2 excluded");
        assert!(n2.is_linked() && !n1.is_linked());
        assert!(!l.has_waiter(&b2));
        // SAFETY: n2 is linked in l.
        assert!(unsafe { l.remove(&n2) });
        assert!(l.is_empty());
    }

    #[test]
    fn push_front_and_pop_claim_as() {
        let [b1, b2, b3] = [(); 3].map(|()| B(Claim::new()));
        let [n1, n2, n3] = prepared([&b1, &b2, &b3]);
        let mut l = WaitList::new();
        // SAFETY: the nodes outlive the list's use below.
        unsafe {
            l.push_back(&n1);
            l.push_front(&n2);
            l.push_front(&n3);
        }
        assert!(b3.0.claim(TIMED_OUT), "n3 went stale");
        let got = l.pop_claim_as(7).unwrap();
        assert!(ptr::eq(got, &n2), "front first, stale n3 dropped");
        assert_eq!(b2.0.get(), 7, "claimed with the given token");
        let got = l.pop_claim_as(9).unwrap();
        assert!(ptr::eq(got, &n1));
        assert!(l.is_empty() && l.pop_claim_as(9).is_none());
    }
}
