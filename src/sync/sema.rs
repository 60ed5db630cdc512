//! The blocking semaphore behind [`Semaphore`](super::Semaphore): the
//! lock-free word of
//! [`sm::sema`](crate::sm::sema) plus a FIFO wait queue behind a short
//! internal lock. A release with waiters hands its permit straight to the
//! first waiter (which runs next if it lives on the releaser's worker).

use std::fmt;
use std::sync::Mutex as StdMutex;

use super::waiter::{self, lock, Node, OnDrop, Parker, WaitList};
use crate::sm::sema::SemaWord;
use crate::wait::Wait;

pub(crate) struct Sema {
    pub(crate) word: SemaWord,
    /// Waiters for a permit, FIFO. Held only for list operations.
    queue: StdMutex<WaitList<()>>,
}

impl fmt::Debug for Sema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sema")
            .field("permits", &self.word.permits())
            .finish_non_exhaustive()
    }
}

impl Sema {
    pub(crate) fn new(permits: usize) -> Sema {
        Sema {
            word: SemaWord::new(permits),
            queue: StdMutex::new(WaitList::new()),
        }
    }

    /// Waits for a permit after the fast path failed; `wait` is what a dump
    /// shows.
    #[cold]
    pub(crate) fn acquire_slow(&self, wait: Wait<'_>) {
        let got = self.acquire_slow_until(None, wait);
        debug_assert!(got, "an untimed wait cannot time out");
    }

    /// Like `acquire_slow`, giving up at `deadline` (if any): false if it
    /// timed out (then no permit was taken).
    #[cold]
    pub(crate) fn acquire_slow_until(
        &self,
        deadline: Option<std::time::Instant>,
        wait: Wait<'_>,
    ) -> bool {
        let mut q = lock(&self.queue);
        if self.word.acquire_or_wait() {
            return true;
        }
        let parker = Parker::new(deadline);
        let node = Node::new(None);
        node.prepare(parker.waiter(), 1);
        // SAFETY: `node` stays in this frame until it is popped by a
        // releaser or unlinked by `cleanup` (declared after it, dropped
        // first, also on unwind).
        unsafe { q.push_back(&node) };
        // Runs on a timeout or an unwind (runtime shutdown): leave the queue
        // (a releaser may have unlinked the stale node already), or pass on
        // a permit we were handed.
        let cleanup = OnDrop::new(|| {
            let mut q = lock(&self.queue);
            // SAFETY: the node was only ever linked in this queue.
            if unsafe { q.remove(&node) } {
                self.word.waiter_left(q.is_empty());
            } else if parker.state() == 1 {
                drop(q);
                self.release();
            }
        });
        if parker.park(q, wait.until(deadline)) == crate::sm::waitq::TIMED_OUT {
            drop(cleanup);
            return false;
        }
        // A releaser claimed our node and handed us its permit.
        cleanup.disarm();
        true
    }

    /// Returns a permit: to the first waiter if any (handoff), else to the
    /// count.
    pub(crate) fn release(&self) {
        if self.word.release_fast() {
            return;
        }
        self.release_slow();
    }

    #[cold]
    pub(crate) fn release_slow(&self) {
        let mut q = lock(&self.queue);
        match q.pop_claim(std::ptr::null()) {
            Some(n) => {
                // The word first: the woken waiter may release at once.
                self.word.handed_off(q.is_empty());
                // SAFETY: claimed by us under the queue lock; not touched
                // after this.
                let w = unsafe { waiter::finish(n) };
                drop(q);
                w.wake();
            }
            None => self.word.release_no_waiter(),
        }
    }
}
