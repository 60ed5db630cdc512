//! Go's `golang.org/x/sync/errgroup`.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex as StdMutex};

use super::waiter::lock;
use super::{Semaphore, WaitGroup};
use crate::context::{self, CancelHandle, Context};

/// A group of coroutines working on subtasks of one task, that fails as a
/// whole with the first error (Go's `errgroup.Group`).
///
/// [`go`](Self::go) runs a subtask in a new coroutine; [`wait`](Self::wait)
/// waits for all of them and returns the first error. With
/// [`with_context`](Self::with_context), the group's context is cancelled
/// by the first error (and when `wait` returns), so the other subtasks can
/// stop early. [`set_limit`](Self::set_limit) bounds how many run at once.
/// Clones share the group. A subtask that panics makes `wait` resume that
/// panic.
///
/// ```
/// use gopark::sync::ErrGroup;
///
/// let g = ErrGroup::new();
/// for i in 0..5 {
///     g.go(move || if i == 3 { Err(format!("task {i} failed")) } else { Ok(()) });
/// }
/// assert_eq!(g.wait(), Err("task 3 failed".to_string()));
/// ```
pub struct ErrGroup<E> {
    inner: Arc<Inner<E>>,
}

struct Inner<E> {
    wg: WaitGroup,
    state: StdMutex<State<E>>,
    /// Cancels the group's context (`with_context`).
    cancel: Option<CancelHandle>,
}

struct State<E> {
    err: Option<E>,
    panic: Option<Box<dyn Any + Send>>,
    limit: Option<Arc<Semaphore>>,
}

impl<E: Send + 'static> ErrGroup<E> {
    /// An empty group without a context or a limit.
    ///
    /// ```
    /// let g = gopark::sync::ErrGroup::<std::io::Error>::new();
    /// assert!(g.wait().is_ok());
    /// ```
    pub fn new() -> ErrGroup<E> {
        ErrGroup::with_cancel(None)
    }

    fn with_cancel(cancel: Option<CancelHandle>) -> ErrGroup<E> {
        ErrGroup {
            inner: Arc::new(Inner {
                wg: WaitGroup::new(),
                state: StdMutex::new(State {
                    err: None,
                    panic: None,
                    limit: None,
                }),
                cancel,
            }),
        }
    }

    /// A group and a context derived from `parent` that is cancelled when a
    /// subtask first fails or [`wait`](Self::wait) returns (Go's
    /// `errgroup.WithContext`).
    ///
    /// ```
    /// use gopark::{context, select, sync::ErrGroup};
    ///
    /// let (g, ctx) = ErrGroup::with_context(&context::background());
    /// let c = ctx.clone();
    /// g.go(move || {
    ///     // Waits for work that never comes, or for the group to fail.
    ///     let (_tx, rx) = gopark::chan::bounded::<()>(0);
    ///     select! {
    ///         recv(rx) -> _ => Ok(()),
    ///         recv(c.done()) -> _ => Err("cancelled"),
    ///     }
    /// });
    /// g.go(|| Err("failed"));
    /// assert_eq!(g.wait(), Err("failed"));
    /// assert!(ctx.is_done());
    /// ```
    pub fn with_context(parent: &Context) -> (ErrGroup<E>, Context) {
        let (ctx, cancel) = context::with_cancel(parent);
        (ErrGroup::with_cancel(Some(cancel)), ctx)
    }

    /// Runs `f` in a new coroutine. With a limit set, first waits (parks
    /// the caller) until fewer than the limit are running. The first error
    /// any subtask returns is kept for [`wait`](Self::wait), and cancels the
    /// group's context.
    ///
    /// ```
    /// let g = gopark::sync::ErrGroup::<()>::new();
    /// g.go(|| Ok(()));
    /// assert_eq!(g.wait(), Ok(()));
    /// ```
    #[track_caller]
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let limit = lock(&self.inner.state).limit.clone();
        if let Some(sem) = &limit {
            std::mem::forget(sem.acquire());
        }
        self.start(f, limit);
    }

    /// Like [`go`](Self::go), but only if the limit allows starting now;
    /// returns false (and does not run `f`) otherwise (Go's `TryGo`).
    ///
    /// ```
    /// let g = gopark::sync::ErrGroup::<()>::new();
    /// g.set_limit(1);
    /// let (tx, rx) = gopark::chan::bounded::<()>(0);
    /// assert!(g.try_go(move || { let _ = rx.recv(); Ok(()) }));
    /// assert!(!g.try_go(|| Ok(()))); // one is running
    /// drop(tx);
    /// g.wait().unwrap();
    /// ```
    #[track_caller]
    pub fn try_go<F>(&self, f: F) -> bool
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let limit = lock(&self.inner.state).limit.clone();
        if let Some(sem) = &limit {
            match sem.try_acquire() {
                Some(p) => std::mem::forget(p),
                None => return false,
            }
        }
        self.start(f, limit);
        true
    }

    #[track_caller]
    fn start<F>(&self, f: F, limit: Option<Arc<Semaphore>>)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        /// Releases the subtask's permit when it ends, however it ends.
        struct Permit(Option<Arc<Semaphore>>);
        impl Drop for Permit {
            fn drop(&mut self) {
                if let Some(s) = &self.0 {
                    s.add_permits(1);
                }
            }
        }
        let permit = Permit(limit);
        let inner = self.inner.clone();
        self.inner.wg.go(move || {
            let _permit = permit;
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let failed = match r {
                Ok(Ok(())) => false,
                Ok(Err(e)) => {
                    let mut st = lock(&inner.state);
                    if st.err.is_none() {
                        st.err = Some(e);
                    }
                    true
                }
                Err(p) => {
                    if p.is::<crate::coroutine::Cancelled>() {
                        // Runtime shutdown's unwind: let it through.
                        std::panic::resume_unwind(p);
                    }
                    let mut st = lock(&inner.state);
                    if st.panic.is_none() {
                        st.panic = Some(p);
                    }
                    true
                }
            };
            if failed {
                if let Some(c) = &inner.cancel {
                    c.cancel();
                }
            }
        });
    }

    /// Waits for every subtask, then returns the first error (or resumes
    /// the first panic), and cancels the group's context.
    ///
    /// ```
    /// let g = gopark::sync::ErrGroup::new();
    /// g.go(|| Err(1));
    /// assert_eq!(g.wait(), Err(1));
    /// assert_eq!(g.wait(), Ok(())); // the error was taken
    /// ```
    pub fn wait(&self) -> Result<(), E> {
        self.inner.wg.wait();
        if let Some(c) = &self.inner.cancel {
            c.cancel();
        }
        let (err, panic) = {
            let mut st = lock(&self.inner.state);
            (st.err.take(), st.panic.take())
        };
        if let Some(p) = panic {
            std::panic::resume_unwind(p);
        }
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Allows at most `n` subtasks to run at once; [`go`](Self::go) waits
    /// for room (Go's `SetLimit`).
    ///
    /// # Panics
    /// If subtasks are running (as Go), or `n` is zero.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// let g = gopark::sync::ErrGroup::<()>::new();
    /// g.set_limit(2);
    /// let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// for _ in 0..8 {
    ///     let (now, peak) = (now.clone(), peak.clone());
    ///     g.go(move || {
    ///         peak.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
    ///         gopark::time::sleep(std::time::Duration::from_millis(2));
    ///         now.fetch_sub(1, Ordering::SeqCst);
    ///         Ok(())
    ///     });
    /// }
    /// g.wait().unwrap();
    /// assert!(peak.load(Ordering::SeqCst) <= 2);
    /// ```
    pub fn set_limit(&self, n: usize) {
        assert!(n > 0, "gopark: ErrGroup::set_limit(0)");
        assert_eq!(
            self.inner.wg.count(),
            0,
            "gopark: ErrGroup::set_limit while subtasks are running"
        );
        lock(&self.inner.state).limit = Some(Arc::new(Semaphore::new(n)));
    }
}

impl<E: Send + 'static> Default for ErrGroup<E> {
    fn default() -> Self {
        ErrGroup::new()
    }
}

impl<E> Clone for ErrGroup<E> {
    fn clone(&self) -> Self {
        ErrGroup {
            inner: self.inner.clone(),
        }
    }
}

impl<E> fmt::Debug for ErrGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrGroup")
            .field("running", &self.inner.wg.count())
            .finish_non_exhaustive()
    }
}
