//! Per-worker timers (Go's per-P timer heap).
//!
//! A worker's heap is behind a mutex because deadlines may be set, and
//! cancelled, from any thread; the owner's lock is uncontended in the common
//! case. `next` mirrors the earliest deadline (in nanoseconds since the
//! runtime's epoch, `u64::MAX` for none) so the scheduler can check for due
//! timers with one atomic load and no lock; every change of the heap's top
//! (add, fire, cancel) stores it under the lock.
//!
//! The runtime's shutdown shows in the same word: [`Timers::stop`] pins
//! `next` to 0 (everything looks due) until the worker itself, in its
//! shutdown, clears that ([`Timers::unstop`]). So the worker loop's check
//! for due timers is also its check for the shutdown: while no timer is
//! armed and the runtime runs, one load and one compare per round for
//! both; any other value takes the slow path, which looks at the shutdown
//! flag first.
//!
//! ## Cancelling
//! [`Timers::add`] returns a [`Key`]; [`Timers::cancel`] removes that timer
//! from the heap in O(log n) and drops its action after unlocking, so a
//! timed wait that ends early (a `recv_timeout` that got its value, a
//! `park_timeout` that was unparked) frees its entry, and whatever the action
//! holds (the task, the waiter), at once rather than at the deadline. A
//! sleep's timer is its only waker and is never cancelled. The heap
//! is indexed: entries live in a slab of slots, each heap node names its slot
//! and each slot records its node's position, so a key finds its node
//! directly. A key carries the timer's sequence number, unique for the
//! heap's life; a key whose timer has fired or was cancelled no longer
//! matches its slot (possibly reused by a newer timer) and cancels nothing.
//! Memory is the armed timers plus the slab's free slots, which never exceed
//! the peak number of armed timers and are given back when the heap empties.
//!
//! Actions still check a claim, a generation or a sequence number before
//! they wake anyone: a timer that fires while its wait is ending (before the waiter
//! got to cancel it) loses that race and does nothing.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::coroutine::{self, Task};
use crate::sync::waiter::Waiter;

/// What a timer does when it fires.
pub(crate) enum Action {
    /// Ready a coroutine parked in `sleep` (its only waker is this timer).
    Ready(Arc<Task>),
    /// Unpark a coroutine parked in `park_timeout`, if it is still in the
    /// park of this generation.
    Unpark(Arc<Task>, u32),
    /// The deadline of a coroutine's timed wait on a wait queue: times the
    /// waiter out if nobody has claimed it yet.
    TimeOut(Arc<Waiter>),
    /// Anything else (netpoll deadlines); the closure does its own checks.
    Call(Box<dyn FnOnce() + Send>),
}

impl Action {
    /// Carries the action out (on the worker that owns the heap).
    pub(crate) fn fire(self) {
        match self {
            Action::Ready(task) => coroutine::ready(task),
            Action::Unpark(task, gen) => {
                if task.token.unpark_gen(gen) {
                    coroutine::ready(task);
                }
            }
            Action::TimeOut(w) => w.time_out(),
            Action::Call(f) => f(),
        }
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Ready(t) => f.debug_tuple("Ready").field(&t.id).finish(),
            Action::Unpark(t, g) => f.debug_tuple("Unpark").field(&t.id).field(g).finish(),
            Action::TimeOut(w) => f.debug_tuple("TimeOut").field(w).finish(),
            Action::Call(_) => f.write_str("Call(..)"),
        }
    }
}

/// Names one armed timer of a heap (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    slot: u32,
    seq: u64,
}

/// An armed timer of one of a runtime's workers, to be cancelled with
/// [`Shared::cancel_timer`](crate::runtime::Shared::cancel_timer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Handle {
    /// Index of the worker whose heap holds the timer.
    pub(crate) worker: usize,
    pub(crate) key: Key,
}

/// Slab and heap arrays above this capacity are shrunk when the heap empties.
const KEEP_CAPACITY: usize = 1024;

/// A heap node: ordered by `(when, seq)`, so timers due at the same time
/// fire in the order they were added.
#[derive(Clone, Copy)]
struct Node {
    when: u64,
    seq: u64,
    /// The slot holding the action.
    slot: u32,
}

impl Node {
    #[inline]
    fn before(&self, other: &Node) -> bool {
        (self.when, self.seq) < (other.when, other.seq)
    }
}

/// A timer's action and where its node is; free while `action` is `None`.
struct Slot {
    /// Sequence number of the timer using the slot.
    seq: u64,
    /// Index of its node in `Heap::nodes`.
    pos: u32,
    action: Option<Action>,
}

/// An indexed binary min-heap (see the module docs).
#[derive(Default)]
struct Heap {
    nodes: Vec<Node>,
    slots: Vec<Slot>,
    /// Free slots (each below `slots.len()`).
    free: Vec<u32>,
    /// Sequence number of the last timer added.
    seq: u64,
    /// Set by [`Timers::stop`]: `next` stays 0 until [`Timers::unstop`].
    stopped: bool,
}

impl Heap {
    fn top(&self) -> u64 {
        self.nodes.first().map_or(u64::MAX, |n| n.when)
    }

    /// What `Timers::next` holds: the earliest deadline, or 0 while stopped.
    fn next_word(&self) -> u64 {
        if self.stopped {
            0
        } else {
            self.top()
        }
    }

    fn push(&mut self, when: u64, action: Action) -> Key {
        self.seq += 1;
        let seq = self.seq;
        let pos = self.nodes.len() as u32;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Slot {
                    seq,
                    pos,
                    action: Some(action),
                };
                s
            }
            None => {
                self.slots.push(Slot {
                    seq,
                    pos,
                    action: Some(action),
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.nodes.push(Node { when, seq, slot });
        self.sift_up(pos as usize);
        Key { slot, seq }
    }

    /// The position of `key`'s node, if that timer is still armed.
    fn find(&self, key: Key) -> Option<usize> {
        let s = self.slots.get(key.slot as usize)?;
        (s.seq == key.seq && s.action.is_some()).then_some(s.pos as usize)
    }

    /// Removes the node at `pos`, frees its slot and returns its action.
    fn remove_at(&mut self, pos: usize) -> Action {
        let node = self.nodes.swap_remove(pos);
        if pos < self.nodes.len() {
            // The last node moved into the hole: restore the order.
            if self.sift_up(pos) == pos {
                self.sift_down(pos);
            }
        }
        let action = self.slots[node.slot as usize]
            .action
            .take()
            .expect("gopark: timer slot without an action");
        if self.nodes.is_empty() {
            // No key can match a slot any more (none is armed), and sequence
            // numbers are never reused: start the slab afresh.
            self.release();
        } else {
            self.free.push(node.slot);
        }
        action
    }

    /// Forgets every slot (all free) and returns memory left by a burst.
    fn release(&mut self) {
        self.slots.clear();
        self.free.clear();
        if self.slots.capacity() > KEEP_CAPACITY {
            self.slots.shrink_to(KEEP_CAPACITY);
            self.free.shrink_to(KEEP_CAPACITY);
        }
        if self.nodes.capacity() > KEEP_CAPACITY {
            self.nodes.shrink_to(KEEP_CAPACITY);
        }
    }

    #[inline]
    fn set_pos(&mut self, i: usize) {
        self.slots[self.nodes[i].slot as usize].pos = i as u32;
    }

    /// Moves the node at `i` up to its place; returns where it ended.
    fn sift_up(&mut self, mut i: usize) -> usize {
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.nodes[i].before(&self.nodes[parent]) {
                break;
            }
            self.nodes.swap(i, parent);
            self.set_pos(i);
            i = parent;
        }
        self.set_pos(i);
        i
    }

    /// Moves the node at `i` down to its place.
    fn sift_down(&mut self, mut i: usize) {
        let n = self.nodes.len();
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let c = if r < n && self.nodes[r].before(&self.nodes[l]) {
                r
            } else {
                l
            };
            if !self.nodes[c].before(&self.nodes[i]) {
                break;
            }
            self.nodes.swap(i, c);
            self.set_pos(i);
            i = c;
        }
        self.set_pos(i);
    }
}

/// One worker's timers.
pub(crate) struct Timers {
    heap: Mutex<Heap>,
    /// Earliest `when` in the heap, `u64::MAX` if empty; 0 while stopped
    /// (module docs). Stored under the heap's lock.
    next: AtomicU64,
}

impl fmt::Debug for Timers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timers")
            .field("next", &self.next.load(Ordering::Relaxed))
            .finish()
    }
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            heap: Mutex::new(Heap::default()),
            next: AtomicU64::new(u64::MAX),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Heap> {
        self.heap.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a timer; returns its key, and true if it is now the earliest one
    /// (a sleeping owner must then be woken to shorten its sleep).
    pub(crate) fn add(&self, when: u64, action: Action) -> (Key, bool) {
        let mut h = self.lock();
        let key = h.push(when, action);
        let earliest = self.next.load(Ordering::Relaxed) > when;
        if earliest {
            self.next.store(when, Ordering::Release);
        }
        (key, earliest)
    }

    /// Cancels the timer `key` if it is still armed: removes it and drops its
    /// action (after unlocking). Returns false if it has fired or was
    /// cancelled already. Any thread may cancel.
    pub(crate) fn cancel(&self, key: Key) -> bool {
        let action = {
            let mut h = self.lock();
            let Some(pos) = h.find(key) else {
                return false;
            };
            let action = h.remove_at(pos);
            if pos == 0 {
                // The earliest timer went: a later one (or none) is next. A
                // sleeping owner is not woken; at worst it wakes early for
                // nothing and sleeps again.
                self.next.store(h.next_word(), Ordering::Release);
            }
            action
        };
        drop(action);
        true
    }

    /// Earliest deadline, `u64::MAX` if none; 0 while stopped (module
    /// docs).
    #[inline]
    pub(crate) fn next(&self) -> u64 {
        self.next.load(Ordering::Acquire)
    }

    /// Removes every timer due at `now` into `out`.
    pub(crate) fn take_due(&self, now: u64, out: &mut Vec<Action>) {
        let mut h = self.lock();
        // `top` is u64::MAX for an empty heap: check emptiness too, so that
        // `now = u64::MAX` (shutdown: everything is due) stops.
        while !h.nodes.is_empty() && h.top() <= now {
            let a = h.remove_at(0);
            out.push(a);
        }
        self.next.store(h.next_word(), Ordering::Release);
    }

    /// Removes every timer (runtime shutdown).
    pub(crate) fn take_all(&self, out: &mut Vec<Action>) {
        let mut h = self.lock();
        out.extend(h.slots.iter_mut().filter_map(|s| s.action.take()));
        h.nodes.clear();
        h.release();
        self.next.store(h.next_word(), Ordering::Release);
    }

    /// Pins `next` to 0 until [`unstop`](Self::unstop): the runtime's
    /// shutdown, before it sets the shutdown flag (module docs).
    pub(crate) fn stop(&self) {
        let mut h = self.lock();
        h.stopped = true;
        self.next.store(0, Ordering::Release);
    }

    /// Ends [`stop`](Self::stop): `next` is the earliest deadline again.
    /// Called by the owner as its shutdown begins (the shutdown's scheduler
    /// tells armed timers by `next`).
    pub(crate) fn unstop(&self) {
        let mut h = self.lock();
        h.stopped = false;
        self.next.store(h.top(), Ordering::Release);
    }

    /// Number of armed timers.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().nodes.len()
    }

    /// Slots in the slab, armed or free (the heap's memory).
    #[cfg(test)]
    fn slab_len(&self) -> usize {
        self.lock().slots.len()
    }

    /// Checks the heap order and the slot positions.
    #[cfg(test)]
    fn check(&self) {
        let h = self.lock();
        for (i, n) in h.nodes.iter().enumerate() {
            if i > 0 {
                assert!(!n.before(&h.nodes[(i - 1) / 2]), "heap order at {i}");
            }
            let s = &h.slots[n.slot as usize];
            assert_eq!(s.pos as usize, i);
            assert_eq!(s.seq, n.seq);
            assert!(s.action.is_some());
        }
        let armed = h.slots.iter().filter(|s| s.action.is_some()).count();
        assert_eq!(armed, h.nodes.len());
        assert_eq!(armed + h.free.len(), h.slots.len());
        assert_eq!(self.next(), h.next_word());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn fires_in_order_and_tracks_next() {
        let t = Timers::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        for when in [30u64, 10, 20, 10] {
            let log = log.clone();
            t.add(
                when,
                Action::Call(Box::new(move || log.lock().unwrap().push(when))),
            );
        }
        assert_eq!(t.next(), 10);
        let mut due = Vec::new();
        t.take_due(20, &mut due);
        due.into_iter().for_each(Action::fire);
        assert_eq!(*log.lock().unwrap(), vec![10, 10, 20]);
        assert_eq!(t.next(), 30);
        assert_eq!(t.len(), 1);
    }

    /// `stop` pins `next` to 0 through adds, cancels, firings and
    /// `take_all`; `unstop` restores the earliest deadline.
    #[test]
    fn stop_pins_next_to_zero_until_unstop() {
        let t = Timers::new();
        let mk = || Action::Call(Box::new(|| {}));
        let (k, _) = t.add(100, mk());
        t.stop();
        assert_eq!(t.next(), 0);
        assert!(!t.add(50, mk()).1, "no wake-up for an earlier timer");
        t.add(300, mk());
        assert_eq!(t.next(), 0);
        assert!(t.cancel(k));
        assert_eq!(t.next(), 0);
        let mut due = Vec::new();
        t.take_due(60, &mut due);
        assert_eq!(due.len(), 1);
        assert_eq!(t.next(), 0);
        t.check();
        t.unstop();
        assert_eq!(t.next(), 300);
        t.check();
        t.stop();
        t.take_all(&mut due);
        assert_eq!(t.next(), 0);
        t.unstop();
        assert_eq!(t.next(), u64::MAX);
    }

    #[test]
    fn add_reports_new_earliest() {
        let t = Timers::new();
        let n = Arc::new(AtomicUsize::new(0));
        let mk = || {
            let n = n.clone();
            Action::Call(Box::new(move || {
                n.fetch_add(1, Ordering::Relaxed);
            }))
        };
        assert!(t.add(100, mk()).1);
        assert!(!t.add(200, mk()).1);
        assert!(t.add(50, mk()).1);
        let mut all = Vec::new();
        t.take_all(&mut all);
        assert_eq!(all.len(), 3);
        assert_eq!(t.next(), u64::MAX);
    }
    /// An action that counts its firings; dropping it drops a clone of
    /// `alive`, so `Arc::strong_count(alive)` counts the live actions.
    fn counting(fired: &Arc<AtomicUsize>, alive: &Arc<()>) -> Action {
        let (fired, alive) = (fired.clone(), alive.clone());
        Action::Call(Box::new(move || {
            let _alive = alive;
            fired.fetch_add(1, Ordering::Relaxed);
        }))
    }

    #[test]
    fn cancel_removes_drops_and_tracks_next() {
        let t = Timers::new();
        let fired = Arc::new(AtomicUsize::new(0));
        let alive = Arc::new(());
        let k10 = t.add(10, counting(&fired, &alive)).0;
        let k20 = t.add(20, counting(&fired, &alive)).0;
        let k30 = t.add(30, counting(&fired, &alive)).0;
        let k40 = t.add(40, counting(&fired, &alive)).0;
        assert_eq!(Arc::strong_count(&alive), 5);
        t.check();

        // Cancelling a middle timer leaves `next` alone and drops the action
        // now, not at its deadline.
        assert!(t.cancel(k30));
        assert_eq!(Arc::strong_count(&alive), 4);
        assert_eq!(t.next(), 10);
        t.check();
        // Cancelling the earliest moves `next` to the following one.
        assert!(t.cancel(k10));
        assert_eq!(t.next(), 20);
        t.check();
        // Twice is a no-op.
        assert!(!t.cancel(k10));
        assert_eq!(t.len(), 2);

        // Cancelled timers never fire.
        let mut due = Vec::new();
        t.take_due(35, &mut due);
        due.drain(..).for_each(Action::fire);
        assert_eq!(fired.load(Ordering::Relaxed), 1);
        assert_eq!(t.next(), 40);
        // A fired timer cannot be cancelled.
        assert!(!t.cancel(k20));
        assert!(t.cancel(k40));
        assert_eq!(t.next(), u64::MAX);
        assert_eq!(t.len(), 0);
        assert_eq!(Arc::strong_count(&alive), 1);
        t.take_due(u64::MAX - 1, &mut due);
        assert!(due.is_empty());
        assert_eq!(fired.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_stale_key_does_not_cancel_the_slots_next_timer() {
        let t = Timers::new();
        let fired = Arc::new(AtomicUsize::new(0));
        let alive = Arc::new(());
        let _long = t.add(1_000, counting(&fired, &alive)).0;
        let old = t.add(10, counting(&fired, &alive)).0;
        assert!(t.cancel(old));
        // Reuses the freed slot.
        let new = t.add(20, counting(&fired, &alive)).0;
        assert_eq!(t.slab_len(), 2);
        assert!(!t.cancel(old));
        assert_eq!(t.len(), 2);
        assert_eq!(t.next(), 20);
        assert!(t.cancel(new));
        t.check();
    }

    /// Armed-then-cancelled timers do not pile up: the slab stays at the
    /// number of timers armed at once, also beside a long-lived timer.
    #[test]
    fn memory_is_bounded_by_the_armed_timers() {
        let t = Timers::new();
        let fired = Arc::new(AtomicUsize::new(0));
        let alive = Arc::new(());
        let long = t.add(u64::MAX - 1, counting(&fired, &alive)).0;
        for i in 0..100_000u64 {
            let a = t.add(1_000 + i, counting(&fired, &alive)).0;
            let b = t.add(2_000 + i, counting(&fired, &alive)).0;
            assert!(t.cancel(b));
            assert!(t.cancel(a));
        }
        assert_eq!(t.len(), 1);
        assert!(t.slab_len() <= 3, "slab grew to {}", t.slab_len());
        assert_eq!(Arc::strong_count(&alive), 2);
        t.check();
        // A burst, cancelled: the arrays are given back once the heap empties.
        let keys: Vec<Key> = (0..10_000)
            .map(|i| t.add(i, counting(&fired, &alive)).0)
            .collect();
        assert_eq!(t.len(), 10_001);
        keys.into_iter().for_each(|k| assert!(t.cancel(k)));
        t.check();
        assert!(t.cancel(long));
        {
            let h = t.lock();
            assert!(h.slots.capacity() <= KEEP_CAPACITY);
            assert!(h.nodes.capacity() <= KEEP_CAPACITY);
        }
        assert_eq!(Arc::strong_count(&alive), 1);
        assert_eq!(fired.load(Ordering::Relaxed), 0);
    }

    /// Random adds, cancels and firings against a sorted model.
    #[test]
    fn random_operations_match_a_model() {
        use std::collections::BTreeMap;
        let t = Timers::new();
        let fired = Arc::new(Mutex::new(Vec::new()));
        // (when, seq) -> key
        let mut model: BTreeMap<(u64, u64), Key> = BTreeMap::new();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut now = 0u64;
        for i in 0..20_000u64 {
            match rand(10) {
                0..=4 => {
                    let when = now + rand(1_000);
                    let f = fired.clone();
                    let key = t
                        .add(
                            when,
                            Action::Call(Box::new(move || f.lock().unwrap().push(i))),
                        )
                        .0;
                    model.insert((when, i), key);
                }
                5..=7 => {
                    if !model.is_empty() {
                        let nth = rand(model.len() as u64) as usize;
                        let k = *model.keys().nth(nth).unwrap();
                        let key = model.remove(&k).unwrap();
                        assert!(t.cancel(key));
                        assert!(!t.cancel(key));
                    }
                }
                _ => {
                    now += rand(300);
                    let mut due = Vec::new();
                    t.take_due(now, &mut due);
                    due.into_iter().for_each(Action::fire);
                    let expect: Vec<u64> = model
                        .keys()
                        .take_while(|(w, _)| *w <= now)
                        .map(|&(_, s)| s)
                        .collect();
                    for (w, s) in model.keys().copied().collect::<Vec<_>>() {
                        if w <= now {
                            model.remove(&(w, s));
                        }
                    }
                    assert_eq!(std::mem::take(&mut *fired.lock().unwrap()), expect);
                }
            }
            assert_eq!(t.len(), model.len());
            assert_eq!(t.next(), model.keys().next().map_or(u64::MAX, |k| k.0));
            if i % 64 == 0 {
                t.check();
            }
        }
    }

    fn pending(rt: &crate::Runtime) -> usize {
        rt.shared().workers.iter().map(|w| w.timers.len()).sum()
    }

    /// Timed waits of coroutines that end early leave no timer behind.
    #[test]
    fn early_ending_waits_leave_no_timers() {
        use std::time::Duration;
        const HOUR: Duration = Duration::from_secs(3600);
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        rt.run(|| {
            let (tx, rx) = crate::chan::bounded::<u32>(0);
            let r = crate::spawn(move || {
                for i in 0..1_000 {
                    assert_eq!(rx.recv_timeout(HOUR), Ok(i));
                }
                for _ in 0..1_000 {
                    crate::park_timeout(HOUR);
                }
            });
            for i in 0..1_000 {
                crate::yield_now();
                tx.send(i).unwrap();
            }
            while !r.is_finished() {
                r.coroutine().unpark();
                crate::yield_now();
            }
            r.join().unwrap();
        });
        assert_eq!(pending(&rt), 0);
        // One that times out is gone too, and a sleep's timer fires.
        rt.run(|| {
            let (_tx, rx) = crate::chan::bounded::<u32>(0);
            assert!(rx.recv_timeout(Duration::from_millis(1)).is_err());
            crate::time::sleep(Duration::from_millis(1));
        });
        assert_eq!(pending(&rt), 0);
    }
}
