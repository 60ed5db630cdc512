//! Go's `sync.WaitGroup`.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use super::waiter::{self, lock, WaitList};
use crate::wait::Wait;
use crate::CoroutineState;

/// Waits for a collection of tasks to finish (Go's `sync.WaitGroup`):
/// [`add`](Self::add) before starting work, [`done`](Self::done) when a
/// piece finishes, [`wait`](Self::wait) until the count is zero. Clones
/// share the same counter, so hand one to each coroutine.
///
/// ```
/// use gopark::sync::WaitGroup;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let wg = WaitGroup::new();
/// let n = Arc::new(AtomicUsize::new(0));
/// for _ in 0..100 {
///     wg.add(1);
///     let (wg, n) = (wg.clone(), n.clone());
///     gopark::go!(move || {
///         n.fetch_add(1, Ordering::Relaxed);
///         wg.done();
///     });
/// }
/// wg.wait();
/// assert_eq!(n.load(Ordering::Relaxed), 100);
/// ```
#[derive(Clone)]
pub struct WaitGroup {
    inner: Arc<Inner>,
}

struct Inner {
    count: AtomicUsize,
    /// Waiters for zero. Held only for list operations.
    queue: StdMutex<WaitList<()>>,
}

impl WaitGroup {
    /// A wait group with a count of zero.
    ///
    /// ```
    /// gopark::sync::WaitGroup::new().wait(); // zero: returns at once
    /// ```
    pub fn new() -> WaitGroup {
        WaitGroup {
            inner: Arc::new(Inner {
                count: AtomicUsize::new(0),
                queue: StdMutex::new(WaitList::new()),
            }),
        }
    }

    /// Adds `n` to the count.
    ///
    /// ```
    /// let wg = gopark::sync::WaitGroup::new();
    /// wg.add(2);
    /// assert_eq!(wg.count(), 2);
    /// wg.done();
    /// wg.done();
    /// wg.wait();
    /// ```
    pub fn add(&self, n: usize) {
        // Relaxed would do for an increment, but a later `done` reaching
        // zero must see it: AcqRel keeps the count's history ordered.
        let prev = self.inner.count.fetch_add(n, Ordering::AcqRel);
        assert!(prev.checked_add(n).is_some(), "WaitGroup counter overflow");
    }

    /// Subtracts one from the count, waking the waiters when it reaches
    /// zero.
    ///
    /// # Panics
    /// If the count is already zero (Go: "negative WaitGroup counter").
    ///
    /// ```
    /// let wg = gopark::sync::WaitGroup::new();
    /// wg.add(1);
    /// let w = wg.clone();
    /// gopark::go!(move || w.done());
    /// wg.wait();
    /// ```
    pub fn done(&self) {
        // AcqRel: Release publishes this task's work to the waiters, which
        // Acquire it in `wait`; Acquire lets the last `done` see the others'.
        let prev = self.inner.count.fetch_sub(1, Ordering::AcqRel);
        if prev == 0 {
            self.inner.count.fetch_add(1, Ordering::Relaxed);
            panic!("gopark: negative WaitGroup counter");
        }
        if prev == 1 {
            let mut wakes = Vec::new();
            {
                let mut q = lock(&self.inner.queue);
                // A new `add` may have raced in; then those waiters keep
                // waiting for the new zero.
                if self.inner.count.load(Ordering::Acquire) == 0 {
                    waiter::drain_all(&mut q, false, &mut wakes);
                }
            }
            for w in wakes {
                w.wake();
            }
        }
    }

    /// Parks the coroutine (blocks the thread) until the count is zero.
    ///
    /// ```
    /// let wg = gopark::sync::WaitGroup::new();
    /// wg.add(1);
    /// let w = wg.clone();
    /// std::thread::spawn(move || w.done());
    /// wg.wait();
    /// ```
    pub fn wait(&self) {
        if self.inner.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let q = lock(&self.inner.queue);
        // The last `done` takes the queue lock after its decrement, so
        // checking again under the lock cannot miss it.
        if self.inner.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let inner = &*self.inner;
        let wait = Wait::counted(CoroutineState::WaitGroup, inner, &inner.count);
        waiter::wait_in(&inner.queue, q, wait);
    }

    /// Runs `f` in a new coroutine, counted by this group (Go 1.25's
    /// `wg.Go`): adds one now, and calls [`done`](Self::done) when `f`
    /// returns or unwinds.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let wg = gopark::sync::WaitGroup::new();
    /// let n = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..10 {
    ///     let n = n.clone();
    ///     wg.go(move || {
    ///         n.fetch_add(1, Ordering::Relaxed);
    ///     });
    /// }
    /// wg.wait();
    /// assert_eq!(n.load(Ordering::Relaxed), 10);
    /// ```
    #[track_caller]
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        struct Done(WaitGroup);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.done();
            }
        }
        self.add(1);
        let done = Done(self.clone());
        // A spawn that fails drops the closure, and with it `done`.
        drop(crate::spawn(move || {
            let _done = done;
            f();
        }));
    }

    /// The current count (a snapshot).
    ///
    /// ```
    /// let wg = gopark::sync::WaitGroup::new();
    /// wg.add(3);
    /// assert_eq!(wg.count(), 3);
    /// ```
    pub fn count(&self) -> usize {
        self.inner.count.load(Ordering::Relaxed)
    }
}

impl Default for WaitGroup {
    fn default() -> Self {
        WaitGroup::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}
