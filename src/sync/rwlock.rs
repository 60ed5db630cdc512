//! A reader-writer lock that parks coroutines (Go's `sync.RWMutex`, without
//! poisoning).

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex as StdMutex;

use super::waiter::{self, lock, Node, OnDrop, Parker, WaitList, Wake};
use crate::sm::rwlock::{Handoff, RwWord};
use crate::wait::Wait;

/// Node tokens: what a queued waiter wants.
const READ: usize = 1;
const WRITE: usize = 2;

/// A reader-writer lock for coroutines and threads: many readers or one
/// writer. Waiting parks a coroutine and blocks a thread; guards may be
/// held across parks.
///
/// Fair: once a waiter queues, newcomers queue behind it, and a release
/// hands the lock to the front of the queue (a writer, or every reader up to
/// the next writer), so neither side starves. Uncontended, each lock and
/// unlock is one atomic operation. No poisoning.
///
/// ```
/// use std::sync::Arc;
/// let lock = Arc::new(gopark::sync::RwLock::new(vec![1, 2]));
/// let l2 = lock.clone();
/// gopark::go!(move || l2.write().push(3)).join().unwrap();
/// let r1 = lock.read();
/// let r2 = lock.read(); // readers share
/// assert_eq!(r1.len() + r2.len(), 6);
/// ```
pub struct RwLock<T: ?Sized> {
    word: RwWord,
    /// Waiters, FIFO. Held only for list operations.
    queue: StdMutex<WaitList<()>>,
    /// The id of the coroutine that write-locked last (0: a thread), for
    /// dumps (as `Mutex::holder`).
    writer: AtomicU64,
    data: UnsafeCell<T>,
}

// SAFETY: a writer gets `&mut T` (possibly on another thread: T: Send);
// readers share `&T` across threads (T: Sync). As for std's RwLock.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to an [`RwLock`]; released on drop.
///
/// ```
/// let l = gopark::sync::RwLock::new(1);
/// let g: gopark::sync::RwLockReadGuard<'_, i32> = l.read();
/// assert_eq!(*g, 1);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

/// Exclusive access to an [`RwLock`]; released on drop.
///
/// ```
/// let l = gopark::sync::RwLock::new(1);
/// let mut g: gopark::sync::RwLockWriteGuard<'_, i32> = l.write();
/// *g = 2;
/// assert!(l.try_read().is_none()); // readers wait while the guard lives
/// drop(g);
/// assert_eq!(*l.read(), 2);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

// SAFETY: a shared read guard only gives `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: sharing a write guard shares `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    ///
    /// ```
    /// let l = gopark::sync::RwLock::new("a");
    /// assert_eq!(*l.read(), "a");
    /// ```
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            word: RwWord::new(),
            queue: StdMutex::new(WaitList::new()),
            writer: AtomicU64::new(0),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock, returning the data.
    ///
    /// ```
    /// assert_eq!(gopark::sync::RwLock::new(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access, parking while a writer holds or waits for the lock.
    ///
    /// ```
    /// let l = gopark::sync::RwLock::new(0);
    /// assert_eq!(*l.read(), 0);
    /// ```
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        crate::runtime::worker::coop_tick();
        if !self.word.try_read() {
            self.wait(READ);
        }
        RwLockReadGuard { lock: self }
    }

    /// Exclusive access, parking while anyone holds the lock.
    ///
    /// ```
    /// let l = gopark::sync::RwLock::new(0);
    /// *l.write() += 1;
    /// assert_eq!(*l.read(), 1);
    /// ```
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        crate::runtime::worker::coop_tick();
        if !self.word.try_write() {
            self.wait(WRITE);
        }
        self.written()
    }

    /// Shared access if available without waiting.
    ///
    /// ```
    /// let l = gopark::sync::RwLock::new(0);
    /// let w = l.write();
    /// assert!(l.try_read().is_none());
    /// drop(w);
    /// assert!(l.try_read().is_some());
    /// ```
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.word.try_read().then(|| RwLockReadGuard { lock: self })
    }

    /// Exclusive access if available without waiting.
    ///
    /// ```
    /// let l = gopark::sync::RwLock::new(0);
    /// let r = l.read();
    /// assert!(l.try_write().is_none());
    /// drop(r);
    /// assert!(l.try_write().is_some());
    /// ```
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.word.try_write().then(|| self.written())
    }

    /// The data, through a unique borrow.
    ///
    /// ```
    /// let mut l = gopark::sync::RwLock::new(1);
    /// *l.get_mut() = 2;
    /// assert_eq!(*l.read(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Records the caller as the writer (for dumps).
    #[inline]
    fn written(&self) -> RwLockWriteGuard<'_, T> {
        self.writer
            .store(crate::runtime::worker::current_id(), Ordering::Relaxed);
        RwLockWriteGuard { lock: self }
    }

    #[cold]
    fn wait(&self, kind: usize) {
        let mut q = lock(&self.queue);
        let got = if kind == READ {
            self.word.read_or_wait()
        } else {
            self.word.write_or_wait()
        };
        if got {
            return;
        }
        let parker = Parker::new(None);
        let node = Node::new(None);
        node.prepare(parker.waiter(), kind);
        // SAFETY: `node` stays in this frame until popped by a releaser or
        // unlinked by `cleanup` (declared after it, dropped first, also on
        // unwind).
        unsafe { q.push_back(&node) };
        // Only runs if this frame is unwound while parked (runtime
        // shutdown): leave the queue, or release what we were handed.
        let cleanup = OnDrop::new(|| {
            let mut q = lock(&self.queue);
            // SAFETY: the node was only ever linked in this queue.
            if unsafe { q.remove(&node) } {
                self.word.waiter_left(q.is_empty());
            } else if parker.state() == kind {
                drop(q);
                if kind == READ {
                    self.read_unlock();
                } else {
                    self.write_unlock();
                }
            }
        });
        parker.park(
            q,
            Wait::rwlock(self, &self.word, &self.writer, kind == WRITE),
        );
        cleanup.disarm();
    }

    fn read_unlock(&self) {
        if !self.word.read_unlock() {
            self.handoff();
        }
    }

    fn write_unlock(&self) {
        if !self.word.write_unlock() {
            self.handoff();
        }
    }

    /// The lock is free and waiters queue: give it to the writer at the
    /// front, or to every reader up to the next writer.
    #[cold]
    fn handoff(&self) {
        let mut popped = Vec::new();
        let mut q = lock(&self.queue);
        let mut to = Handoff::Readers(0);
        while let Some(tok) = q.front_token() {
            if tok == WRITE && !popped.is_empty() {
                break;
            }
            let Some(n) = q.pop_claim(std::ptr::null()) else {
                break;
            };
            popped.push(n);
            if tok == WRITE {
                to = Handoff::Writer;
                break;
            }
            to = Handoff::Readers(popped.len());
        }
        // Publish the new owners in the word before waking them: a woken
        // thread may release the lock at once.
        self.word.handoff(to, q.is_empty());
        let wakes: Vec<Wake> = popped
            .into_iter()
            // SAFETY: each node was claimed by us under the queue lock, which
            // we still hold; none is touched after `finish`.
            .map(|n| unsafe { waiter::finish(n) })
            .collect();
        drop(q);
        for w in wakes {
            w.wake();
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves a read lock: no writer exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the write lock: no one else has access.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.read_unlock();
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
