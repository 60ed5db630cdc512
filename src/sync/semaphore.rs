//! A counting semaphore that parks coroutines (Go's
//! `golang.org/x/sync/semaphore` with weight 1, or a buffered channel used
//! as one).

use std::fmt;

use super::sema::Sema;
use crate::wait::Wait;

/// A counting semaphore: at most `permits` holders at a time. Waiting parks
/// a coroutine and blocks a thread; waiters are served FIFO and a release
/// hands its permit straight to the first one.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use gopark::sync::Semaphore;
///
/// let sem = Arc::new(Semaphore::new(2));
/// let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
/// let hs: Vec<_> = (0..8).map(|_| {
///     let (sem, now, peak) = (sem.clone(), now.clone(), peak.clone());
///     gopark::go!(move || {
///         let _permit = sem.acquire();
///         let n = now.fetch_add(1, Ordering::SeqCst) + 1;
///         peak.fetch_max(n, Ordering::SeqCst);
///         gopark::time::sleep(std::time::Duration::from_millis(1));
///         now.fetch_sub(1, Ordering::SeqCst);
///     })
/// }).collect();
/// for h in hs { h.join().unwrap(); }
/// assert!(peak.load(Ordering::SeqCst) <= 2);
/// ```
pub struct Semaphore {
    sema: Sema,
    /// Serialises `acquire_many` callers, so two of them cannot each hold
    /// part of what the other needs.
    many: Sema,
}

/// A permit of a [`Semaphore`]; released on drop.
///
/// ```
/// let s = gopark::sync::Semaphore::new(1);
/// let p: gopark::sync::SemaphorePermit<'_> = s.acquire();
/// assert_eq!(s.available_permits(), 0);
/// drop(p);
/// assert_eq!(s.available_permits(), 1);
/// ```
#[must_use = "the permit is released when dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    /// Permits held (1, or `n` from `acquire_many`).
    n: usize,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    ///
    /// ```
    /// let s = gopark::sync::Semaphore::new(3);
    /// assert_eq!(s.available_permits(), 3);
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            sema: Sema::new(permits),
            many: Sema::new(1),
        }
    }

    /// Takes a permit, parking the coroutine (blocking the thread) until one
    /// is free.
    ///
    /// ```
    /// let s = gopark::sync::Semaphore::new(1);
    /// let p = s.acquire();
    /// assert!(s.try_acquire().is_none());
    /// drop(p);
    /// ```
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        crate::runtime::worker::coop_tick();
        if !self.sema.word.try_acquire() {
            self.sema.acquire_slow(self.wait());
        }
        SemaphorePermit { sem: self, n: 1 }
    }

    /// Takes a permit if one is free and nobody queues for one.
    ///
    /// ```
    /// let s = gopark::sync::Semaphore::new(1);
    /// let p = s.try_acquire().unwrap();
    /// assert!(s.try_acquire().is_none());
    /// drop(p);
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.sema
            .word
            .try_acquire()
            .then(|| SemaphorePermit { sem: self, n: 1 })
    }

    /// Takes `n` permits at once, parking the coroutine (blocking the
    /// thread) until all are taken (Go's weighted `Acquire`). Callers of
    /// `acquire_many` queue behind each other, so two of them never
    /// deadlock holding part of what the other needs; single `acquire`s
    /// may go first meanwhile. If `n` exceeds what can ever be free, this
    /// waits for ever. `n == 0` returns at once.
    ///
    /// ```
    /// let s = gopark::sync::Semaphore::new(5);
    /// let p = s.acquire_many(3);
    /// assert_eq!(s.available_permits(), 2);
    /// drop(p); // gives back all 3
    /// assert_eq!(s.available_permits(), 5);
    /// ```
    pub fn acquire_many(&self, n: usize) -> SemaphorePermit<'_> {
        crate::runtime::worker::coop_tick();
        if n == 0 {
            return SemaphorePermit { sem: self, n: 0 };
        }
        if !self.many.word.try_acquire() {
            self.many.acquire_slow(self.wait());
        }
        /// Gives back the turn and, if unwound midway, what was taken.
        struct Turn<'a> {
            sem: &'a Semaphore,
            taken: usize,
        }
        impl Drop for Turn<'_> {
            fn drop(&mut self) {
                for _ in 0..self.taken {
                    self.sem.sema.release();
                }
                self.sem.many.release();
            }
        }
        let mut turn = Turn {
            sem: self,
            taken: 0,
        };
        while turn.taken < n {
            if !self.sema.word.try_acquire() {
                self.sema.acquire_slow(self.wait());
            }
            turn.taken += 1;
        }
        turn.taken = 0; // the permits now belong to the returned guard
        drop(turn);
        SemaphorePermit { sem: self, n }
    }

    /// What a dump shows of a coroutine waiting here.
    fn wait(&self) -> Wait<'_> {
        Wait::permits(self, &self.sema.word)
    }

    /// Adds `n` permits (wakes up to `n` waiters).
    ///
    /// ```
    /// let s = gopark::sync::Semaphore::new(0);
    /// s.add_permits(2);
    /// assert_eq!(s.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        for _ in 0..n {
            self.sema.release();
        }
    }

    /// Free permits right now (a snapshot).
    ///
    /// ```
    /// assert_eq!(gopark::sync::Semaphore::new(4).available_permits(), 4);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.sema.word.permits()
    }
}

impl SemaphorePermit<'_> {
    /// Gives the permit back now (the same as dropping it).
    ///
    /// ```
    /// let s = gopark::sync::Semaphore::new(1);
    /// s.acquire().release();
    /// assert_eq!(s.available_permits(), 1);
    /// ```
    pub fn release(self) {}
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        for _ in 0..self.n {
            self.sem.sema.release();
        }
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("permits", &self.available_permits())
            .finish()
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("n", &self.n)
            .finish()
    }
}
