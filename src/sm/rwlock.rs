//! The state word of `sync::RwLock`: readers, a writer, and FIFO handoff to
//! queued waiters (so neither readers nor writers can starve the other side).
//!
//! ```text
//!  usize::BITS-1                  2   1   0
//! +--------------------------------+---+---+
//! |            readers             | W | X |   X: WRITER holds the lock
//! +--------------------------------+---+---+   W: WAITERS queue
//! ```
//!
//! Invariants (the queue is behind a lock owned by the user of this word):
//! - `W` is set and cleared only with the queue lock held;
//! - while `W` is set the fast paths refuse to take the lock, so arriving
//!   readers queue behind a waiting writer (Go's RWMutex also blocks new
//!   readers once a writer waits);
//! - the party that releases the lock last while `W` is set (the writer, or
//!   the last reader) takes the queue lock and hands the lock over: to the
//!   writer at the front, or to every reader at the front up to the first
//!   writer. While `W` is set and nobody holds the lock, only the queue lock
//!   holder changes the word, so the handoff can simply store the new state.

// Under loom only `sm` is compiled: the users of these items are not.

use crate::loom::{AtomicUsize, Ordering};

const WRITER: usize = 1;
const WAITERS: usize = 2;
const READER: usize = 4;

/// Whom a handoff goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handoff {
    /// The writer at the front of the queue.
    Writer,
    /// This many readers from the front of the queue.
    Readers(usize),
}

/// An RwLock state word (see the module docs).
#[derive(Debug)]
pub(crate) struct RwWord {
    word: AtomicUsize,
}

impl RwWord {
    pub(crate) fn new() -> RwWord {
        RwWord {
            word: AtomicUsize::new(0),
        }
    }

    /// Read fast path.
    #[inline]
    pub(crate) fn try_read(&self) -> bool {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            if cur & (WRITER | WAITERS) != 0 {
                return false;
            }
            assert!(cur < usize::MAX - READER, "too many readers");
            // Acquire: pairs with the Release of the last write unlock.
            match self.word.compare_exchange_weak(
                cur,
                cur + READER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Write fast path.
    #[inline]
    pub(crate) fn try_write(&self) -> bool {
        // Acquire: pairs with the Release of the previous unlocks.
        self.word
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Releases a read lock; false if the caller was the last reader while
    /// waiters queue, and must hand off under the queue lock.
    #[inline]
    pub(crate) fn read_unlock(&self) -> bool {
        // Release: publishes the read section before a writer's Acquire.
        // Acquire: if this is the last reader and a writer queues, this
        // thread hands the lock to that writer, which synchronises only with
        // this thread (queue lock, wake-up), never with the word; acquiring
        // the other readers' releases (this RMW reads the end of their
        // release sequence) orders their read sections before the writer's.
        // A fence would do in that branch only, but ThreadSanitizer does not
        // model fences, and on x86 the RMW is the same instruction.
        let prev = self.word.fetch_sub(READER, Ordering::AcqRel);
        debug_assert!(prev >= READER, "read unlock without a reader");
        prev != READER | WAITERS
    }

    /// Releases the write lock; false if waiters queue and the caller must
    /// hand off under the queue lock (the lock is then free, with `W` set).
    #[inline]
    pub(crate) fn write_unlock(&self) -> bool {
        // Release: publishes the write section to the next holder.
        if self
            .word
            .compare_exchange(WRITER, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return true;
        }
        let prev = self.word.fetch_and(!WRITER, Ordering::Release);
        debug_assert_eq!(prev, WRITER | WAITERS, "write unlock without the lock");
        false
    }

    /// With the queue lock held: takes a read lock (true) or sets `W` so the
    /// caller must queue (false).
    pub(crate) fn read_or_wait(&self) -> bool {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            let next = if cur & (WRITER | WAITERS) == 0 {
                cur + READER
            } else {
                cur | WAITERS
            };
            match self
                .word
                .compare_exchange_weak(cur, next, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return next & WAITERS == 0,
                Err(actual) => cur = actual,
            }
        }
    }

    /// With the queue lock held: takes the write lock (true) or sets `W` so
    /// the caller must queue (false).
    pub(crate) fn write_or_wait(&self) -> bool {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            let next = if cur == 0 { WRITER } else { cur | WAITERS };
            match self
                .word
                .compare_exchange_weak(cur, next, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return next == WRITER,
                Err(actual) => cur = actual,
            }
        }
    }

    /// With the queue lock held, nobody holding the lock and `W` set: the
    /// lock now belongs to `to` (already popped from the queue); `W` stays
    /// if the queue is not empty. `Readers(0)` (nobody was left to pop: the
    /// waiters were unwound) just clears `W`, which frees the lock.
    pub(crate) fn handoff(&self, to: Handoff, queue_empty: bool) {
        let w = if queue_empty { 0 } else { WAITERS };
        let next = match to {
            Handoff::Writer => WRITER | w,
            Handoff::Readers(0) => {
                debug_assert!(queue_empty);
                self.word.fetch_and(!WAITERS, Ordering::Release);
                return;
            }
            Handoff::Readers(k) => (k * READER) | w,
        };
        debug_assert_eq!(
            self.word.load(Ordering::Relaxed),
            WAITERS,
            "handoff while held"
        );
        // Release: publishes the releasing section to the new holders (they
        // also synchronise through the queue lock and their wake-up).
        self.word.store(next, Ordering::Release);
    }

    /// With the queue lock held, after a queued waiter left without the lock
    /// (unwound): clears `W` if the queue is now empty. A release that is
    /// under way hands off to whoever is left.
    pub(crate) fn waiter_left(&self, queue_empty: bool) {
        if queue_empty {
            self.word.fetch_and(!WAITERS, Ordering::Release);
        }
    }

    /// True if a writer holds the lock (a snapshot, for tests and dumps).
    #[cfg(any(test, not(loom)))]
    pub(crate) fn is_write_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) & WRITER != 0
    }

    /// Readers holding the lock (a snapshot, for tests and dumps).
    #[cfg(any(test, not(loom)))]
    pub(crate) fn readers(&self) -> usize {
        self.word.load(Ordering::Relaxed) / READER
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! A writer and a reader contend with a reader holding the lock; the
    //! real word and wait list, waiters spinning on their woken flag.
    use super::*;
    use crate::sm::waitq::{Node, TestBlocker, WaitList};
    use loom::sync::{Arc, Mutex};

    struct Q(WaitList<(), TestBlocker>);
    // SAFETY: (test) nodes are only touched under the loom mutex.
    unsafe impl Send for Q {}
    struct L {
        word: RwWord,
        q: Mutex<Q>,
        writers: AtomicUsize,
        readers: AtomicUsize,
    }

    const R: usize = 1;
    const W: usize = 2;

    fn acquire(l: &L, kind: usize) {
        let fast = if kind == R {
            l.word.try_read()
        } else {
            l.word.try_write()
        };
        if fast {
            return;
        }
        let mut q = l.q.lock().unwrap();
        let got = if kind == R {
            l.word.read_or_wait()
        } else {
            l.word.write_or_wait()
        };
        if got {
            return;
        }
        let b = TestBlocker::new();
        let n: Node<(), TestBlocker> = Node::new(None);
        n.prepare(&b, kind);
        // SAFETY: stays on this frame until woken; popped before woken.
        unsafe { q.0.push_back(&n) };
        drop(q);
        while !b.woken.load(Ordering::Acquire) {
            loom::thread::yield_now();
        }
    }

    fn handoff(l: &L) {
        let mut q = l.q.lock().unwrap();
        let mut popped = Vec::new();
        let mut to = Handoff::Readers(0);
        while let Some(n) = q.0.pop_claim(std::ptr::null()) {
            // SAFETY: claimed under the lock.
            let (tok, b) = unsafe { ((*n).token(), (*n).blocker_ptr()) };
            popped.push(b);
            if tok == W {
                assert!(popped.len() == 1, "test queues at most one writer first");
                to = Handoff::Writer;
                break;
            }
            to = Handoff::Readers(popped.len());
        }
        // The word first, then the wake-ups: a woken waiter may release at
        // once.
        l.word.handoff(to, q.0.is_empty());
        for b in popped {
            // SAFETY: alive until woken.
            unsafe { (*b).woken.store(true, Ordering::Release) };
        }
    }

    fn release(l: &L, kind: usize) {
        let done = if kind == R {
            l.word.read_unlock()
        } else {
            l.word.write_unlock()
        };
        if !done {
            handoff(l);
        }
    }

    fn section(l: &L, kind: usize) {
        acquire(l, kind);
        if kind == R {
            l.readers.fetch_add(1, Ordering::SeqCst);
            assert_eq!(l.writers.load(Ordering::SeqCst), 0);
            l.readers.fetch_sub(1, Ordering::SeqCst);
        } else {
            assert_eq!(l.writers.fetch_add(1, Ordering::SeqCst), 0);
            assert_eq!(l.readers.load(Ordering::SeqCst), 0);
            l.writers.fetch_sub(1, Ordering::SeqCst);
        }
        release(l, kind);
    }

    #[test]
    fn reader_writer_handoff() {
        loom::model(|| {
            let l = Arc::new(L {
                word: RwWord::new(),
                q: Mutex::new(Q(WaitList::new())),
                writers: AtomicUsize::new(0),
                readers: AtomicUsize::new(0),
            });
            let w = {
                let l = l.clone();
                loom::thread::spawn(move || section(&l, W))
            };
            section(&l, R);
            w.join().unwrap();
            assert_eq!(l.word.readers(), 0);
            assert!(!l.word.is_write_locked());
            assert!(l.q.lock().unwrap().0.is_empty());
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn readers_then_writer() {
        let w = RwWord::new();
        assert!(w.try_read() && w.try_read());
        assert!(!w.try_write());
        assert!(!w.write_or_wait(), "writer queues, W set");
        assert!(!w.try_read(), "new readers queue behind the writer");
        assert!(w.read_unlock());
        assert!(!w.read_unlock(), "last reader hands off");
        w.handoff(Handoff::Writer, true);
        assert!(w.is_write_locked());
        assert!(w.write_unlock());
        assert_eq!(w.readers(), 0);
    }
}
