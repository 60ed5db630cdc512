//! A mutual-exclusion lock that parks coroutines instead of blocking their
//! worker (Go's `sync.Mutex`, without poisoning).

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use super::waiter::{self, lock, Node, OnDrop, Parker, WaitList};
use crate::sm::mutex::{MutexWord, Unlocked, HANDOFF, WAKE};
use crate::sm::waitq::TIMED_OUT;
use crate::wait::Wait;
use crate::CoroutineState;

/// A mutual-exclusion lock for coroutines and threads. Waiting parks a
/// coroutine (its worker runs others) and blocks a thread. The guard may be
/// held across parks: holding it while doing socket I/O or waiting on a
/// channel is fine.
///
/// Uncontended, `lock` and unlock are one compare-and-swap each. Under
/// contention it behaves like Go's `sync.Mutex`:
///
/// - **Normal mode.** Waiters queue in FIFO order. An unlock frees the lock
///   and wakes the first waiter, but does not hand it the lock: a locker
///   that is running may take it first, which keeps a busy lock with
///   running coroutines instead of passing it through a park and a wake-up
///   each time. A woken waiter that loses queues again at the front. A
///   thread spins briefly before it blocks (on a machine with more than one
///   CPU).
/// - **Starvation mode.** A waiter that has waited more than 1 ms switches
///   the mutex to starvation mode: unlocks then hand the lock directly to
///   the first waiter and newcomers queue behind the waiters. The mutex
///   returns to normal mode when a waiter that was handed the lock waited
///   less than 1 ms or was the last one.
///
/// So a waiter is never overtaken indefinitely (after about 1 ms it is
/// served in FIFO order), but the order in which lockers get the lock is
/// not their arrival order. There is no poisoning (as in Go): a panic while
/// holding the guard simply unlocks it.
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
    raw: RawMutex,
    /// The id of the coroutine that took the lock last (0: a thread), for
    /// dumps: "held by coroutine 12". Written by every taker after it got
    /// the lock (one Relaxed store), never cleared: only read while the
    /// lock is contended, when it names the holder (or, for a moment after
    /// an acquisition, the previous one).
    holder: AtomicU64,
    data: UnsafeCell<T>,
}

// SAFETY: the Mutex hands out `&mut T` to one holder at a time (the
// state word's L bit, sm::mutex), possibly on another thread: T: Send suffices,
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
            raw: RawMutex::new(),
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
        if !self.raw.word.lock_fast() {
            self.raw.lock_slow(None, self.wait());
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

    /// Locks if the lock is free. In normal mode this may take the lock
    /// ahead of queued waiters; in starvation mode it fails while anyone
    /// waits.
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
        self.raw.word.try_lock().then(|| self.held())
    }

    /// Like [`lock`](Self::lock), giving up after `timeout`: `None` if the
    /// lock could not be taken in time. A timed-out waiter leaves the queue
    /// without taking anything, and a wake-up it received but could not use
    /// passes to the next waiter.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = gopark::sync::Mutex::new(0);
    /// let g = m.lock();
    /// assert!(m.lock_timeout(Duration::from_millis(10)).is_none());
    /// drop(g);
    /// assert!(m.lock_timeout(Duration::from_millis(10)).is_some());
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        crate::runtime::worker::coop_tick();
        if self.raw.word.lock_fast() {
            return Some(self.held());
        }
        // An unrepresentable deadline waits forever.
        let deadline = Instant::now().checked_add(timeout);
        self.raw
            .lock_slow(deadline, self.wait())
            .then(|| self.held())
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
        if !self.raw.word.unlock_fast() {
            self.raw.unlock_slow();
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

/// A waiter that has waited this long since it first queued switches the
/// mutex to starvation mode (Go's threshold).
const STARVATION: Duration = Duration::from_millis(1);

/// Attempts a locker spins for a held lock before it queues, each after
/// [`SPIN_PAUSES`] spin-loop hints (Go's `active_spin` and
/// `active_spin_cnt`).
const SPIN_TRIES: u32 = 4;
const SPIN_PAUSES: u32 = 30;

/// The lock itself, without the data: the state word of
/// [`sm::mutex`](crate::sm::mutex) and the queue of parked waiters.
struct RawMutex {
    word: MutexWord,
    /// Parked waiters, front first. Held only for list operations.
    queue: StdMutex<WaitList<()>>,
}

impl RawMutex {
    fn new() -> RawMutex {
        RawMutex {
            word: MutexWord::new(),
            queue: StdMutex::new(WaitList::new()),
        }
    }

    /// Locks after the fast path failed (Go's `lockSlow`); gives up at
    /// `deadline` if any (false: the lock was not taken). `wait` is what a
    /// dump shows of the caller while it is parked.
    #[cold]
    #[inline(never)]
    fn lock_slow(&self, deadline: Option<Instant>, wait: Wait<'_>) -> bool {
        // The caller owns the word's K bit (it was woken, or set it while
        // spinning): it must clear it by taking the lock, by queueing, or
        // by passing the wake-up on.
        let mut awoke = false;
        let mut starving = false;
        // When the caller first queued (the clock is read only by waiters
        // that park, and again after each wake-up).
        let mut since: Option<Instant> = None;
        let mut spins = 0;
        loop {
            if self.word.take(awoke) {
                return true;
            }
            if spins < SPIN_TRIES && self.word.spinnable() && can_spin() {
                if !awoke {
                    awoke = self.word.spin_woken();
                }
                for _ in 0..SPIN_PAUSES {
                    std::hint::spin_loop();
                }
                spins += 1;
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                if awoke && self.word.pass_wake() {
                    self.wake(WAKE);
                }
                return false;
            }
            let mut q = lock(&self.queue);
            if self.word.register(awoke, starving) {
                return true;
            }
            let parker = Parker::new(deadline);
            let node = Node::new(None);
            node.prepare(parker.waiter(), WAKE);
            let requeue = since.is_some();
            let first = *since.get_or_insert_with(Instant::now);
            // SAFETY: `node` stays in this frame until it is popped by an
            // unlocker or unlinked by `cleanup` (declared after it, dropped
            // first, also on unwind).
            unsafe {
                if requeue {
                    // Woken and beaten: back to the front.
                    q.push_front(&node);
                } else {
                    q.push_back(&node);
                }
            }
            // `register` gave up K; `awoke` is set again by a WAKE below.
            // Runs on a timeout or an unwind (runtime shutdown).
            let cleanup = OnDrop::new(|| self.leave(&node, &parker));
            let state = parker.park(q, wait.until(deadline));
            if state == TIMED_OUT {
                drop(cleanup);
                return false;
            }
            cleanup.disarm();
            starving = starving || first.elapsed() > STARVATION;
            if state == HANDOFF {
                // The unlocker kept the lock held for us.
                self.word.handed_off(starving);
                return true;
            }
            debug_assert_eq!(state, WAKE);
            awoke = true;
            spins = 0;
        }
    }

    /// A parked waiter leaves without the lock (a timeout, or its frame is
    /// unwound at runtime shutdown): unlinks its node, or passes on what an
    /// unlocker gave it after unlinking it.
    fn leave(&self, node: &Node<()>, parker: &Parker) {
        let mut q = lock(&self.queue);
        // SAFETY: the node was only ever linked in this queue.
        if unsafe { q.remove(node) } {
            if q.is_empty() {
                self.word.queue_emptied();
            }
            return;
        }
        drop(q);
        match parker.state() {
            // Unwound after the lock was handed over: release it.
            HANDOFF => self.unlock_slow(),
            // Unwound after a wake-up: pass it on.
            WAKE if self.word.pass_wake() => self.wake(WAKE),
            // Timed out: an unlocker dropped the stale node and woke the
            // next one instead.
            _ => {}
        }
    }

    /// Unlocks after the fast path failed (Go's `unlockSlow`).
    #[cold]
    #[inline(never)]
    fn unlock_slow(&self) {
        match self.word.unlock_slow() {
            Unlocked::Done => {}
            Unlocked::Wake => self.wake(WAKE),
            Unlocked::HandOff => self.wake(HANDOFF),
        }
    }

    /// Wakes the first waiter with `token`: `WAKE` (the caller owns K) to
    /// compete for the free lock, or `HANDOFF` to take over the held lock.
    fn wake(&self, token: usize) {
        let mut q = lock(&self.queue);
        match q.pop_claim_as(token) {
            Some(n) => {
                if q.is_empty() {
                    self.word.queue_emptied();
                }
                // SAFETY: claimed by us under the queue lock; not touched
                // after this.
                let w = unsafe { waiter::finish(n) };
                drop(q);
                w.wake();
            }
            // Every waiter left (timed out, or unwound) meanwhile.
            None if token == WAKE => self.word.woke_none(),
            None => self.word.handoff_none(),
        }
    }
}

/// Whether a locker spins before it parks (Go's `sync_runtime_canSpin`):
/// only a thread on a machine with more than one CPU, for which blocking
/// costs a futex sleep and wake-up. A coroutine does not spin: parking one
/// costs a switch, and measured with 8 coroutines on 2 workers, spinning
/// whenever another worker was busy made locks slower (17-40 ns against
/// 15-24 ns per lock), and spinning only when the worker had nothing else to
/// run (Go's rule) made no difference, because under contention it always
/// has.
fn can_spin() -> bool {
    crate::runtime::worker::current_ctx().is_none() && *MULTI_CPU
}

static MULTI_CPU: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1));
