//! The semaphore word behind `sync::Semaphore`: a permit count with FIFO
//! handoff to waiters (Go's `semacquire`/`semrelease` with `handoff = true`),
//! so that a busy semaphore cannot starve a waiter. (`sync::Mutex` has its
//! own word, [`sm::mutex`](super::mutex), which lets lockers overtake.)
//!
//! ```text
//!  usize::BITS-1                    1   0
//! +----------------------------------+---+
//! |             permits              | W |   W: WAITERS, the wait queue is
//! +----------------------------------+---+      (or is about to be) non-empty
//! ```
//!
//! Invariants (the queue is a [`WaitList`](super::waitq::WaitList) behind a
//! lock owned by the user of this word):
//! - `W` is set and cleared only with the queue lock held;
//! - while `W` is set, `permits` is 0 and only the queue lock holder changes
//!   the word: the lock-free fast paths refuse to run when they see `W`.
//!
//! | operation          | lock held | transition                               |
//! |--------------------|-----------|------------------------------------------|
//! | `try_acquire`      | no        | (p, 0) -> (p-1, 0) if p > 0              |
//! | `release_fast`     | no        | (p, 0) -> (p+1, 0); fails if W           |
//! | `acquire_or_wait`  | queue     | (p, 0) -> (p-1, 0) if p > 0, else set W  |
//! | `handed_off`       | queue     | permit went to a waiter; clear W if last |
//! | `release_no_waiter`| queue     | (0, W) -> (1, 0) (queue found empty)     |
//!
//! Because a release with waiters hands its permit to the first waiter
//! instead of adding it to the count, a newcomer can never overtake a queued
//! waiter: the fast path sees `W` and queues behind it.

// Under loom only `sm` is compiled: the users of these items are not.

use crate::loom::{AtomicUsize, Ordering};

const WAITERS: usize = 1;
const ONE: usize = 2;

/// A semaphore word (see the module docs).
#[derive(Debug)]
pub(crate) struct SemaWord {
    word: AtomicUsize,
}

impl SemaWord {
    /// A word with `permits` permits and no waiters.
    pub(crate) fn new(permits: usize) -> SemaWord {
        assert!(permits <= usize::MAX >> 1, "too many permits");
        SemaWord {
            word: AtomicUsize::new(permits << 1),
        }
    }

    /// Takes a permit if one is free and nobody queues.
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            if cur & WAITERS != 0 || cur < ONE {
                return false;
            }
            // Acquire: pairs with the Release in `release_fast`.
            match self.word.compare_exchange_weak(
                cur,
                cur - ONE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Returns a permit if nobody queues; false means the caller must take
    /// the queue lock and hand the permit over (`handed_off` or
    /// `release_no_waiter`).
    #[inline]
    pub(crate) fn release_fast(&self) -> bool {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            if cur & WAITERS != 0 {
                return false;
            }
            assert!(cur < usize::MAX - ONE, "semaphore permit overflow");
            // Release: pairs with the Acquire of the next `try_acquire`.
            match self.word.compare_exchange_weak(
                cur,
                cur + ONE,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// With the queue lock held: takes a permit (true), or marks the queue as
    /// having waiters so that the caller must enqueue itself before it
    /// releases the queue lock (false).
    pub(crate) fn acquire_or_wait(&self) -> bool {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            let next = if cur >= ONE && cur & WAITERS == 0 {
                cur - ONE
            } else {
                debug_assert!(cur < ONE, "permits left while waiters queue");
                cur | WAITERS
            };
            // Acquire: as in `try_acquire`. Relaxed would do for setting W
            // (the queue lock orders it) but one ordering keeps it simple.
            match self
                .word
                .compare_exchange_weak(cur, next, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return next & WAITERS == 0,
                Err(actual) => cur = actual,
            }
        }
    }

    /// With the queue lock held, after `release_fast` failed and a waiter
    /// was popped and handed the permit: clears `W` if the queue is now
    /// empty. The permit count does not change (0 before and after).
    pub(crate) fn handed_off(&self, queue_empty: bool) {
        if queue_empty {
            // Release: the next fast-path acquirer (once W is gone) sees the
            // queue's final state; nothing else changes the word while W is
            // set (module invariants).
            self.word.fetch_and(!WAITERS, Ordering::Release);
        }
    }

    /// With the queue lock held, after `release_fast` failed but the queue
    /// held no claimable waiter (they were unwound): returns the permit and
    /// clears `W`.
    pub(crate) fn release_no_waiter(&self) {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            let next = (cur & !WAITERS) + ONE;
            match self
                .word
                .compare_exchange_weak(cur, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }

    /// With the queue lock held, after a waiter left the queue without a
    /// permit (unwound): clears `W` if the queue is now empty.
    pub(crate) fn waiter_left(&self, queue_empty: bool) {
        if queue_empty {
            self.word.fetch_and(!WAITERS, Ordering::Release);
        }
    }

    /// Free permits (a snapshot).
    pub(crate) fn permits(&self) -> usize {
        self.word.load(Ordering::Relaxed) >> 1
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! The handoff, on a one-permit semaphore: the real [`SemaWord`] and
    //! [`WaitList`] with the acquire/release steps of `sync::Semaphore`;
    //! waiters "park" by spinning on their woken flag.
    use super::*;
    use crate::sm::waitq::{Node, TestBlocker, WaitList};
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::{Arc, Mutex};

    struct M {
        word: SemaWord,
        queue: Mutex<Q>,
        inside: AtomicUsize,
    }
    struct Q(WaitList<(), TestBlocker>);
    // SAFETY: (test) nodes are only touched under the loom mutex.
    unsafe impl Send for Q {}

    fn lock(m: &M) {
        if m.word.try_acquire() {
            return;
        }
        let mut q = m.queue.lock().unwrap();
        if m.word.acquire_or_wait() {
            return;
        }
        let b = TestBlocker::new();
        let node: Node<(), TestBlocker> = Node::new(None);
        node.prepare(&b, 1);
        // SAFETY: the node stays on this frame until it is woken, and a
        // waker pops it before waking.
        unsafe { q.0.push_back(&node) };
        drop(q);
        while !b.woken.load(Ordering::Acquire) {
            loom::thread::yield_now();
        }
        assert_eq!(b.claim.get(), 1);
    }

    fn unlock(m: &M) {
        if m.word.release_fast() {
            return;
        }
        let mut q = m.queue.lock().unwrap();
        match q.0.pop_claim(std::ptr::null()) {
            Some(n) => {
                m.word.handed_off(q.0.is_empty());
                // SAFETY: claimed under the lock, woken last.
                let b = unsafe { (*n).blocker_ptr() };
                // SAFETY: the blocker is alive until woken.
                unsafe { (*b).woken.store(true, Ordering::Release) };
            }
            None => m.word.release_no_waiter(),
        }
    }

    fn critical(m: &M) {
        lock(m);
        assert_eq!(m.inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
        m.inside.fetch_sub(1, Ordering::SeqCst);
        unlock(m);
    }

    /// Mutual exclusion holds and no waiter is lost when two threads contend
    /// with a holder that hands the lock off.
    #[test]
    fn one_permit_handoff() {
        loom::model(|| {
            let m = Arc::new(M {
                word: SemaWord::new(1),
                queue: Mutex::new(Q(WaitList::new())),
                inside: AtomicUsize::new(0),
            });
            let t = {
                let m = m.clone();
                loom::thread::spawn(move || critical(&m))
            };
            critical(&m);
            t.join().unwrap();
            assert_eq!(m.word.permits(), 1, "lock free at the end");
            assert!(m.queue.lock().unwrap().0.is_empty());
        });
    }

    /// The holder releases while a second thread is queueing: the release
    /// either hands the lock to the queued waiter or finds no waiter and
    /// frees it; the waiter always gets the lock exactly once.
    #[test]
    fn release_races_enqueue() {
        loom::model(|| {
            let m = Arc::new(M {
                word: SemaWord::new(1),
                queue: Mutex::new(Q(WaitList::new())),
                inside: AtomicUsize::new(0),
            });
            lock(&m);
            let t = {
                let m = m.clone();
                loom::thread::spawn(move || critical(&m))
            };
            unlock(&m);
            t.join().unwrap();
            assert_eq!(m.word.permits(), 1);
            assert!(m.queue.lock().unwrap().0.is_empty());
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_and_waiters() {
        let s = SemaWord::new(2);
        assert!(s.try_acquire());
        assert!(s.try_acquire());
        assert!(!s.try_acquire());
        assert!(!s.acquire_or_wait(), "must wait: W set");
        assert!(!s.release_fast(), "W set: slow path");
        s.handed_off(true);
        assert_eq!(s.permits(), 0);
        assert!(s.release_fast());
        assert_eq!(s.permits(), 1);
    }

    #[test]
    fn one_permit() {
        let m = SemaWord::new(1);
        assert!(m.try_acquire());
        assert!(!m.try_acquire());
        assert!(m.release_fast());
        assert_eq!(m.permits(), 1);
    }
}
