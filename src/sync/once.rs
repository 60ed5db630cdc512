//! One-time initialisation that parks coroutines while another initialises
//! (Go's `sync.Once`, Rust's `OnceLock`).
//!
//! std's `Once` and `OnceLock` block the *thread* while another party runs
//! the initialiser. If that initialiser parks (I/O, a channel, a sleep) and
//! the blocked thread is the worker its coroutine lives on, the program
//! deadlocks; these types park the waiting coroutine instead.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex as StdMutex;

use super::waiter::{self, lock, OnDrop, WaitList};
use crate::wait::Wait;
use crate::CoroutineState;

const INCOMPLETE: u8 = 0;
const RUNNING: u8 = 1;
const COMPLETE: u8 = 2;

/// Runs an initialiser exactly once (Go's `sync.Once`). Callers that arrive
/// while it runs park until it has finished. If the initialiser panics, the
/// `Once` stays incomplete and the next caller runs its own initialiser
/// (like std's `OnceLock`; Go would treat it as done).
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// static INIT: gopark::sync::Once = gopark::sync::Once::new();
/// static RUNS: AtomicUsize = AtomicUsize::new(0);
/// let hs: Vec<_> = (0..4).map(|_| gopark::go!(|| {
///     INIT.call_once(|| {
///         gopark::time::sleep(std::time::Duration::from_millis(1));
///         RUNS.fetch_add(1, Ordering::SeqCst);
///     });
///     assert!(INIT.is_completed());
/// })).collect();
/// for h in hs { h.join().unwrap(); }
/// assert_eq!(RUNS.load(Ordering::SeqCst), 1);
/// ```
pub struct Once {
    state: AtomicU8,
    /// Callers waiting for RUNNING to end. Held only for list operations.
    queue: StdMutex<WaitList<()>>,
}

impl Once {
    /// A `Once` that has not run.
    ///
    /// ```
    /// static O: gopark::sync::Once = gopark::sync::Once::new();
    /// assert!(!O.is_completed());
    /// ```
    pub const fn new() -> Once {
        Once {
            state: AtomicU8::new(INCOMPLETE),
            queue: StdMutex::new(WaitList::new()),
        }
    }

    /// Runs `f` if no call has completed yet; otherwise returns at once, or
    /// parks until the running call has finished.
    ///
    /// ```
    /// let o = gopark::sync::Once::new();
    /// let mut n = 0;
    /// o.call_once(|| n += 1);
    /// o.call_once(|| n += 1);
    /// assert_eq!(n, 1);
    /// ```
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        // Acquire: pairs with the Release store of COMPLETE.
        if self.state.load(Ordering::Acquire) == COMPLETE {
            return;
        }
        self.call_slow(f);
    }

    /// True once a call has completed.
    ///
    /// ```
    /// let o = gopark::sync::Once::new();
    /// o.call_once(|| ());
    /// assert!(o.is_completed());
    /// ```
    pub fn is_completed(&self) -> bool {
        self.state.load(Ordering::Acquire) == COMPLETE
    }

    #[cold]
    fn call_slow<F: FnOnce()>(&self, f: F) {
        let mut f = Some(f);
        loop {
            match self.state.compare_exchange(
                INCOMPLETE,
                RUNNING,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // If `f` panics, go back to INCOMPLETE and let a waiter
                    // try; otherwise COMPLETE.
                    let reset = OnDrop::new(|| self.finish(INCOMPLETE));
                    (f.take().expect("initialiser run twice"))();
                    reset.disarm();
                    self.finish(COMPLETE);
                    return;
                }
                Err(COMPLETE) => return,
                Err(_) => self.wait_running(),
            }
        }
    }

    /// Publishes the outcome and wakes every waiter.
    fn finish(&self, state: u8) {
        // Release: publishes the initialiser's writes.
        self.state.store(state, Ordering::Release);
        let mut wakes = Vec::new();
        waiter::drain_all(&mut lock(&self.queue), false, &mut wakes);
        for w in wakes {
            w.wake();
        }
    }

    /// Parks until the running initialiser has finished.
    fn wait_running(&self) {
        let q = lock(&self.queue);
        // `finish` stores the state before it takes the queue lock: seeing
        // RUNNING here means it will find us.
        if self.state.load(Ordering::Acquire) != RUNNING {
            return;
        }
        waiter::wait_in(&self.queue, q, Wait::on(CoroutineState::Once, self));
    }
}

impl Default for Once {
    fn default() -> Self {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("completed", &self.is_completed())
            .finish()
    }
}

/// A cell written once, read many times (std's `OnceLock`), whose
/// initialiser may park: others asking for the value meanwhile park too.
///
/// ```
/// use gopark::sync::OnceLock;
/// static CONFIG: OnceLock<String> = OnceLock::new();
/// let v = gopark::run(|| CONFIG.get_or_init(|| "loaded".to_string()).clone());
/// assert_eq!(v, "loaded");
/// assert_eq!(CONFIG.get().map(String::as_str), Some("loaded"));
/// ```
pub struct OnceLock<T> {
    once: Once,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written once, by the single caller that runs the
// `Once`, before COMPLETE is published (Release); readers only read it after
// seeing COMPLETE (Acquire). Sharing hands out `&T` on many threads (T:
// Sync) and the value may be created on one thread and dropped on another
// (T: Send), as for std's OnceLock.
unsafe impl<T: Sync + Send> Sync for OnceLock<T> {}
// SAFETY: moving the cell moves the value.
unsafe impl<T: Send> Send for OnceLock<T> {}

impl<T> OnceLock<T> {
    /// An empty cell.
    ///
    /// ```
    /// let c: gopark::sync::OnceLock<u8> = gopark::sync::OnceLock::new();
    /// assert!(c.get().is_none());
    /// ```
    pub const fn new() -> OnceLock<T> {
        OnceLock {
            once: Once::new(),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The value, if initialised.
    ///
    /// ```
    /// let c = gopark::sync::OnceLock::new();
    /// c.set(1).unwrap();
    /// assert_eq!(c.get(), Some(&1));
    /// ```
    pub fn get(&self) -> Option<&T> {
        if self.once.is_completed() {
            // SAFETY: COMPLETE (seen with Acquire) means the value was
            // written and will not change.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// Initialises the cell with `f` if it is empty (parking while another
    /// caller initialises it) and returns the value.
    ///
    /// ```
    /// let c = gopark::sync::OnceLock::new();
    /// assert_eq!(*c.get_or_init(|| 5), 5);
    /// assert_eq!(*c.get_or_init(|| 6), 5);
    /// ```
    pub fn get_or_init<F: FnOnce() -> T>(&self, f: F) -> &T {
        self.once.call_once(|| {
            let v = f();
            // SAFETY: we run the Once: nobody else writes or reads the value
            // until COMPLETE is published.
            unsafe { (*self.value.get()).write(v) };
        });
        self.get().expect("gopark: OnceLock initialised but empty")
    }

    /// Sets the value if the cell is empty; otherwise returns `value`.
    ///
    /// # Errors
    /// `Err(value)` if the cell was already initialised.
    ///
    /// ```
    /// let c = gopark::sync::OnceLock::new();
    /// assert_eq!(c.set(1), Ok(()));
    /// assert_eq!(c.set(2), Err(2));
    /// ```
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect("value taken twice"));
        match value {
            None => Ok(()),
            Some(v) => Err(v),
        }
    }

    /// Consumes the cell, returning the value if initialised.
    ///
    /// ```
    /// let c = gopark::sync::OnceLock::new();
    /// c.set("x").unwrap();
    /// assert_eq!(c.into_inner(), Some("x"));
    /// ```
    pub fn into_inner(self) -> Option<T> {
        let this = std::mem::ManuallyDrop::new(self);
        if this.once.is_completed() {
            // SAFETY: initialised (COMPLETE), and `this` is never dropped, so
            // the value is moved out exactly once.
            Some(unsafe { (*this.value.get()).assume_init_read() })
        } else {
            None
        }
    }
}

impl<T> Default for OnceLock<T> {
    fn default() -> Self {
        OnceLock::new()
    }
}

impl<T> Drop for OnceLock<T> {
    fn drop(&mut self) {
        if self.once.is_completed() {
            // SAFETY: initialised, and dropped once (we have `&mut self`).
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OnceLock").field(&self.get()).finish()
    }
}
