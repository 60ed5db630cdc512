//! A mutual-exclusion lock that parks coroutines instead of blocking their
//! worker (Go's `sync.Mutex`, without poisoning).

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};

use super::sema::Sema;
use crate::wait::Wait;
use crate::CoroutineState;

/// A mutual-exclusion lock for coroutines and threads. Waiting parks a
/// coroutine (its worker runs others) and blocks a thread. The guard may be
/// held across parks: holding it while doing socket I/O or waiting on a
/// channel is fine.
///
/// Uncontended, `lock` and unlock are one compare-and-swap each. Waiters
/// queue in FIFO order and an unlock hands the lock straight to the first
/// one, so a busy lock cannot starve a waiter. There is no poisoning (as in
/// Go): a panic while holding the guard simply unlocks it.
///
/// ```
/// use std::sync::Arc;
/// use gopark::sync::Mutex;
///
/// let counter = Arc::new(Mutex::new(0));
/// let hs: Vec<_> = (0..10).map(|_| {
///     let c = counter.clone();
///     gopark::go!(move || {
///         let mut g = c.lock();
///         gopark::yield_now(); // parked while holding the lock: fine
///         *g += 1;
///     })
/// }).collect();
/// for h in hs { h.join().unwrap(); }
/// assert_eq!(*counter.lock(), 10);
/// ```
pub struct Mutex<T: ?Sized> {
    sema: Sema,
    /// The id of the coroutine that took the lock last (0: a thread), for
    /// dumps: "held by coroutine 12". Written by every taker after it got
    /// the lock (one Relaxed store), never cleared: only read while the
    /// lock is contended, when it names the holder (or, for a moment after a
    /// handoff, the previous one).
    holder: AtomicU64,
    data: UnsafeCell<T>,
}

// SAFETY: the Mutex hands out `&mut T` to one holder at a time (the
// semaphore's single permit), possibly on another thread: T: Send suffices,
// as for std::sync::Mutex.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Proof of holding a [`Mutex`]; unlocks on drop. Dereferences to the data.
///
/// ```
/// let m = gopark::sync::Mutex::new(vec![1]);
/// let mut g: gopark::sync::MutexGuard<'_, Vec<i32>> = m.lock();
/// g.push(2);
/// drop(g);
/// assert_eq!(m.lock().len(), 2);
/// ```
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    pub(crate) mutex: &'a Mutex<T>,
}

// SAFETY: sharing the guard shares `&T`: needs T: Sync. (Send is derived:
// `&Mutex<T>` is Send when T: Send, and unlocking from another thread is
// fine for this lock.)
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    ///
    /// ```
    /// let m = gopark::sync::Mutex::new(5);
    /// assert_eq!(*m.lock(), 5);
    /// ```
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            sema: Sema::new(1),
            holder: AtomicU64::new(0),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex, returning the data.
    ///
    /// ```
    /// let m = gopark::sync::Mutex::new(String::from("x"));
    /// assert_eq!(m.into_inner(), "x");
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, parking the coroutine (blocking the thread) until the lock is
    /// free.
    ///
    /// ```
    /// let m = gopark::sync::Mutex::new(1);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        let me = crate::runtime::worker::coop_tick_id();
        if !self.sema.word.try_acquire_one_of_one() {
            self.sema.acquire_slow(self.wait());
        }
        self.holder.store(me, Ordering::Relaxed);
        MutexGuard { mutex: self }
    }

    /// What a dump shows of a coroutine waiting here.
    fn wait(&self) -> Wait<'_> {
        Wait::lock(CoroutineState::Mutex, self, &self.holder)
    }

    /// Records the caller as the holder (for dumps).
    #[inline]
    fn held(&self) -> MutexGuard<'_, T> {
        self.holder
            .store(crate::runtime::worker::current_id(), Ordering::Relaxed);
        MutexGuard { mutex: self }
    }

    /// Locks if the lock is free (and nobody queues for it).
    ///
    /// ```
    /// let m = gopark::sync::Mutex::new(());
    /// let g = m.lock();
    /// assert!(m.try_lock().is_none());
    /// drop(g);
    /// assert!(m.try_lock().is_some());
    /// ```
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.sema.word.try_acquire_one_of_one().then(|| self.held())
    }

    /// Like [`lock`](Self::lock), giving up after `timeout`: `None` if the
    /// lock could not be taken in time. A timed-out waiter leaves the queue
    /// without taking or losing anything.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = gopark::sync::Mutex::new(0);
    /// let g = m.lock();
    /// assert!(m.lock_timeout(Duration::from_millis(10)).is_none());
    /// drop(g);
    /// assert!(m.lock_timeout(Duration::from_millis(10)).is_some());
    /// ```
    pub fn lock_timeout(&self, timeout: std::time::Duration) -> Option<MutexGuard<'_, T>> {
        crate::runtime::worker::coop_tick();
        if self.sema.word.try_acquire_one_of_one() {
            return Some(self.held());
        }
        let acquired = match std::time::Instant::now().checked_add(timeout) {
            Some(deadline) => self.sema.acquire_slow_until(Some(deadline), self.wait()),
            None => {
                self.sema.acquire_slow(self.wait());
                true
            }
        };
        acquired.then(|| self.held())
    }

    /// The data, through a unique borrow (no locking needed).
    ///
    /// ```
    /// let mut m = gopark::sync::Mutex::new(1);
    /// *m.get_mut() = 3;
    /// assert_eq!(*m.lock(), 3);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    #[inline]
    pub(crate) fn unlock(&self) {
        if !self.sema.word.release_one_of_one() {
            self.sema.release_slow();
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(v: T) -> Self {
        Mutex::new(v)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock's only permit.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this borrow unique.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
