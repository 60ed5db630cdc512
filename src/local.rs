//! Coroutine-local storage: [`coroutine_local!`](crate::coroutine_local)
//! and [`CoroutineLocal`].
//!
//! Storage: each coroutine record holds a small vector of boxed values,
//! indexed by a number each key gets at its first use; plain threads have
//! one such vector in a thread-local. A coroutine's values are dropped on
//! its own stack when its entry function ends (returns or unwinds).

use std::any::Any;
use std::cell::UnsafeCell;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::coroutine::Task;
use crate::runtime::worker;

/// The values of one coroutine (or thread), by key index.
pub(crate) type Locals = Vec<Option<Box<dyn Any>>>;

/// Unassigned key index.
const UNASSIGNED: usize = usize::MAX;

thread_local! {
    /// The values of a plain thread (dropped when the thread exits).
    static THREAD_LOCALS: UnsafeCell<Locals> = const { UnsafeCell::new(Vec::new()) };
}

/// A key for coroutine-local values, declared with
/// [`coroutine_local!`](crate::coroutine_local): like a `thread_local!`
/// key, but each coroutine has its own value (initialised on its first
/// access, dropped when the coroutine ends). On a plain thread, each thread
/// has its own value.
///
/// ## Which to use
/// A `thread_local!` is shared by **every coroutine of a worker thread**:
/// coroutines take turns on their worker, so one coroutine sees what
/// another left there, and a value kept across a park may be changed
/// meanwhile. Use a thread-local for per-thread caches that are fine to
/// share (a buffer pool, a random generator's state); use a coroutine-local
/// for state that belongs to one logical task (a request id, a trace span,
/// a per-connection counter).
///
/// ```
/// use std::cell::Cell;
///
/// gopark::coroutine_local! {
///     static REQUEST_ID: Cell<u64> = Cell::new(0);
/// }
///
/// let hs: Vec<_> = (1..=3u64)
///     .map(|i| gopark::spawn(move || {
///         REQUEST_ID.with(|id| id.set(i));
///         gopark::yield_now(); // others run meanwhile, with their own value
///         REQUEST_ID.with(|id| id.get())
///     }))
///     .collect();
/// let ids: Vec<u64> = hs.into_iter().map(|h| h.join().unwrap()).collect();
/// assert_eq!(ids, [1, 2, 3]);
/// ```
pub struct CoroutineLocal<T: 'static> {
    init: fn() -> T,
    index: AtomicUsize,
}

impl<T: 'static> CoroutineLocal<T> {
    /// Used by [`coroutine_local!`](crate::coroutine_local).
    #[doc(hidden)]
    pub const fn __new(init: fn() -> T) -> CoroutineLocal<T> {
        CoroutineLocal {
            init,
            index: AtomicUsize::new(UNASSIGNED),
        }
    }

    fn index(&self) -> usize {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let i = self.index.load(Ordering::Acquire);
        if i != UNASSIGNED {
            return i;
        }
        let mine = NEXT.fetch_add(1, Ordering::Relaxed);
        match self
            .index
            .compare_exchange(UNASSIGNED, mine, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => mine,
            Err(theirs) => theirs,
        }
    }

    /// Calls `f` with this coroutine's value (this thread's, on a plain
    /// thread), initialising it first if needed.
    ///
    /// # Panics
    /// On a plain thread, if called while the thread's values are being
    /// dropped (from a value's `Drop` at thread exit).
    ///
    /// ```
    /// use std::cell::RefCell;
    /// gopark::coroutine_local!(static LOG: RefCell<Vec<&'static str>> = RefCell::new(Vec::new()));
    /// let n = gopark::run(|| {
    ///     LOG.with(|l| l.borrow_mut().push("a"));
    ///     LOG.with(|l| l.borrow_mut().push("b"));
    ///     LOG.with(|l| l.borrow().len())
    /// });
    /// assert_eq!(n, 2);
    /// // The calling thread has a value of its own.
    /// assert_eq!(LOG.with(|l| l.borrow().len()), 0);
    /// ```
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        match worker::current_ctx() {
            Some(ctx) => {
                let task: &Task = ctx.current_task();
                // SAFETY: the running coroutine's record; only the raw place
                // of the `locals` field is taken, disjoint from the fields
                // the worker borrows while the coroutine runs (see
                // `WorkerCtx::current_yielder`). The record outlives the
                // coroutine's run, hence this call.
                let p = unsafe { std::ptr::addr_of_mut!((*task.local.get()).locals) };
                // SAFETY: `p` is this coroutine's own vector, touched only by
                // it (owner-only task state), valid during the call.
                unsafe { self.with_in(p, f) }
            }
            None => {
                let p = THREAD_LOCALS.try_with(UnsafeCell::get).unwrap_or_else(|_| {
                    panic!("gopark: coroutine-local accessed while the thread's values are dropped")
                });
                // SAFETY: the thread's own vector, valid until thread exit.
                unsafe { self.with_in(p, f) }
            }
        }
    }

    /// # Safety
    /// `p` points to the caller's (coroutine's or thread's) vector, valid
    /// for the call and touched by nobody else meanwhile.
    unsafe fn with_in<R>(&'static self, p: *mut Locals, f: impl FnOnce(&T) -> R) -> R {
        let idx = self.index();
        // No reference into the vector is held while user code runs (the
        // initialiser, `f`, a drop): they may use other keys, which may
        // grow the vector. Values are boxed, so a pointer to one stays
        // valid when the vector reallocates; values are removed only when
        // the coroutine (or thread) ends.
        let existing = {
            // SAFETY: see the function's contract; this borrow ends here.
            let locals = unsafe { &*p };
            locals
                .get(idx)
                .and_then(Option::as_ref)
                .map(|b| b.downcast_ref::<T>().expect("gopark: coroutine-local type") as *const T)
        };
        let ptr = match existing {
            Some(ptr) => ptr,
            None => {
                let v = (self.init)();
                let (ptr, spare) = {
                    // SAFETY: as above; no other borrow is live.
                    let locals = unsafe { &mut *p };
                    if locals.len() <= idx {
                        locals.resize_with(idx + 1, || None);
                    }
                    let spare = match &locals[idx] {
                        // The initialiser itself set the value (re-entrant
                        // use): keep that one.
                        Some(_) => Some(v),
                        None => {
                            locals[idx] = Some(Box::new(v));
                            None
                        }
                    };
                    let b = locals[idx].as_ref().expect("just set");
                    let ptr =
                        b.downcast_ref::<T>().expect("gopark: coroutine-local type") as *const T;
                    (ptr, spare)
                };
                drop(spare);
                ptr
            }
        };
        // SAFETY: the value is boxed and stays in place until the coroutine
        // or thread ends, which cannot happen during this call.
        f(unsafe { &*ptr })
    }
}

impl<T: 'static> fmt::Debug for CoroutineLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoroutineLocal").finish_non_exhaustive()
    }
}

/// Drops a coroutine's values when its entry function ends (returns or
/// unwinds), on the coroutine's stack, so a panicking `Drop` is a panic of
/// the coroutine. Values created by those drops are dropped too.
pub(crate) struct DropLocals(pub(crate) *const Task);

impl Drop for DropLocals {
    fn drop(&mut self) {
        loop {
            // SAFETY: the running coroutine's own record (see `with`); the
            // borrow ends here. Most coroutines have no locals: a look
            // instead of a take and the drop of an empty Vec.
            if unsafe { (*(*self.0).local.get()).locals.is_empty() } {
                return;
            }
            // SAFETY: the running coroutine's own record (see `with`); the
            // borrow ends before any value is dropped.
            let v = unsafe {
                std::mem::take(&mut *std::ptr::addr_of_mut!(
                    (*(*self.0).local.get()).locals
                ))
            };
            if v.is_empty() {
                return;
            }
            drop(v);
        }
    }
}

/// Declares coroutine-local keys, like `thread_local!`:
/// `static NAME: T = init;` (any number, with attributes and visibility).
/// Each coroutine gets its own value, made by `init` at its first
/// [`with`](crate::CoroutineLocal::with) and dropped when the coroutine
/// ends; a plain thread gets one per thread. See
/// [`CoroutineLocal`](crate::CoroutineLocal) for when to use which.
///
/// ```
/// use std::cell::Cell;
/// gopark::coroutine_local! {
///     /// Calls made by this coroutine.
///     pub static CALLS: Cell<u32> = Cell::new(0);
///     static NAME: String = String::from("anon");
/// }
/// let n = gopark::run(|| {
///     CALLS.with(|c| c.set(c.get() + 1));
///     CALLS.with(|c| c.get()) + NAME.with(|n| n.len() as u32)
/// });
/// assert_eq!(n, 5);
/// ```
#[macro_export]
macro_rules! coroutine_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident : $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])*
        $vis static $name: $crate::CoroutineLocal<$t> = {
            #[allow(unused_braces)]
            fn __gopark_init() -> $t {
                $init
            }
            $crate::CoroutineLocal::__new(__gopark_init)
        };
        $crate::coroutine_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident : $t:ty = $init:expr) => {
        $crate::coroutine_local!($(#[$attr])* $vis static $name: $t = $init;);
    };
}
