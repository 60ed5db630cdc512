//! A condition variable for [`Mutex`](super::Mutex) (Go's `sync.Cond`).

use std::fmt;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use super::mutex::MutexGuard;
use super::waiter::{self, lock, Node, OnDrop, Parker, WaitList};
use crate::sm::waitq::TIMED_OUT;
use crate::wait::Wait;
use crate::CoroutineState;

/// A condition variable: waiters release a [`Mutex`](super::Mutex) and
/// park until notified, then lock it again. Notifications wake waiters in
/// FIFO order; as with every condition variable, re-check the condition in
/// a loop.
///
/// ```
/// use std::sync::Arc;
/// use gopark::sync::{Condvar, Mutex};
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let p2 = pair.clone();
/// gopark::go!(move || {
///     *p2.0.lock() = true;
///     p2.1.notify_one();
/// });
/// let (m, cv) = &*pair;
/// let mut ready = m.lock();
/// while !*ready {
///     ready = cv.wait(ready);
/// }
/// ```
pub struct Condvar {
    /// Waiters, FIFO. Held only for list operations.
    queue: StdMutex<WaitList<()>>,
}

/// Whether [`Condvar::wait_timeout`] returned because of the timeout.
///
/// ```
/// use std::time::Duration;
/// let m = gopark::sync::Mutex::new(());
/// let cv = gopark::sync::Condvar::new();
/// let (_g, r) = cv.wait_timeout(m.lock(), Duration::from_millis(1));
/// assert!(r.timed_out());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True if the wait ended because the timeout elapsed.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = gopark::sync::Mutex::new(());
    /// let cv = gopark::sync::Condvar::new();
    /// assert!(cv.wait_timeout(m.lock(), Duration::ZERO).1.timed_out());
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    /// A condition variable with no waiters.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = gopark::sync::Mutex::new(());
    /// let cv = gopark::sync::Condvar::new();
    /// cv.notify_all(); // nobody waits: nothing happens, nothing is remembered
    /// let (_g, r) = cv.wait_timeout(m.lock(), Duration::from_millis(1));
    /// assert!(r.timed_out());
    /// ```
    pub fn new() -> Condvar {
        Condvar {
            queue: StdMutex::new(WaitList::new()),
        }
    }

    /// Releases the guard's mutex, parks until notified, and locks the
    /// mutex again. It returns only after a notification, but another
    /// party may have changed the state since: re-check it in a loop.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gopark::sync::{Condvar, Mutex};
    /// let pair = Arc::new((Mutex::new(0), Condvar::new()));
    /// let p = pair.clone();
    /// let h = gopark::go!(move || {
    ///     let mut g = p.0.lock();
    ///     while *g == 0 { g = p.1.wait(g); }
    ///     *g
    /// });
    /// *pair.0.lock() = 7;
    /// pair.1.notify_all();
    /// assert_eq!(h.join().unwrap(), 7);
    /// ```
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_until(guard, None).0
    }

    /// Like [`wait`](Self::wait), giving up after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = gopark::sync::Mutex::new(1);
    /// let cv = gopark::sync::Condvar::new();
    /// let (g, r) = cv.wait_timeout(m.lock(), Duration::from_millis(2));
    /// assert!(r.timed_out());
    /// assert_eq!(*g, 1);
    /// ```
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let deadline = Instant::now().checked_add(timeout);
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return (guard, WaitTimeoutResult(true));
        }
        self.wait_until(guard, deadline)
    }

    fn wait_until<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let mutex = guard.mutex;
        let parker = Parker::new(deadline);
        let node = Node::new(None);
        node.prepare(parker.waiter(), 1);
        let mut q = lock(&self.queue);
        // SAFETY: `node` stays in this frame until popped by a notifier or
        // unlinked by `cleanup` (declared after it, dropped first, also on
        // unwind).
        unsafe { q.push_back(&node) };
        let cleanup = OnDrop::new(|| {
            // SAFETY: the node was only ever linked in this queue.
            unsafe { lock(&self.queue).remove(&node) };
        });
        // Unlock the mutex while we are already queued (still holding the
        // queue lock), so a notify after this point finds us.
        drop(guard);
        let wait = Wait::on(CoroutineState::Condvar, self).until(deadline);
        let timed_out = match parker.park(q, wait) {
            TIMED_OUT => {
                drop(cleanup);
                true
            }
            _ => {
                cleanup.disarm();
                false
            }
        };
        (mutex.lock(), WaitTimeoutResult(timed_out))
    }

    /// Wakes the longest-waiting waiter, if any.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gopark::sync::{Condvar, Mutex};
    /// let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    /// let p = pair.clone();
    /// let consumer = gopark::go!(move || {
    ///     let mut items = p.0.lock();
    ///     while *items == 0 {
    ///         items = p.1.wait(items);
    ///     }
    ///     *items -= 1;
    /// });
    /// *pair.0.lock() += 1;
    /// pair.1.notify_one();
    /// consumer.join().unwrap();
    /// assert_eq!(*pair.0.lock(), 0);
    /// ```
    pub fn notify_one(&self) {
        let mut q = lock(&self.queue);
        let Some(n) = q.pop_claim(std::ptr::null()) else {
            return;
        };
        // SAFETY: claimed by us under the queue lock; not touched after.
        let w = unsafe { waiter::finish(n) };
        drop(q);
        w.wake();
    }

    /// Wakes every waiter.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gopark::sync::{Condvar, Mutex};
    /// // (go?, how many got through)
    /// let pair = Arc::new((Mutex::new((false, 0)), Condvar::new()));
    /// let waiters: Vec<_> = (0..4)
    ///     .map(|_| {
    ///         let p = pair.clone();
    ///         gopark::go!(move || {
    ///             let mut st = p.0.lock();
    ///             while !st.0 {
    ///                 st = p.1.wait(st);
    ///             }
    ///             st.1 += 1;
    ///         })
    ///     })
    ///     .collect();
    /// pair.0.lock().0 = true;
    /// pair.1.notify_all();
    /// for h in waiters {
    ///     h.join().unwrap();
    /// }
    /// assert_eq!(pair.0.lock().1, 4);
    /// ```
    pub fn notify_all(&self) {
        let mut wakes = Vec::new();
        waiter::drain_all(&mut lock(&self.queue), false, &mut wakes);
        for w in wakes {
            w.wake();
        }
    }
}

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Condvar { .. }")
    }
}
