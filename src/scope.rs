//! Scoped coroutines: [`scope`], like `std::thread::scope`.
//!
//! ## Soundness
//! A scoped coroutine borrows from the stack of the code that called
//! [`scope`], so `scope` must not return, nor unwind past its own frame,
//! while any child can still touch those borrows. The rules:
//!
//! - every child is waited for before `scope` returns or resumes a panic,
//!   and that wait cannot be interrupted: if the caller is a coroutine that
//!   runtime shutdown cancels (an unwind raised at its park point), the
//!   wait catches the cancellation, goes on waiting, and resumes the
//!   cancellation only once every child has ended;
//! - a child that runtime shutdown *leaks* (it can never finish unwinding;
//!   its stack is kept and it may still be linked in wait queues that other
//!   threads read, through references into the caller's frame) can never be
//!   waited for: the process is aborted with a message naming the cause.
//!   Returning would let the caller's frame be reused under those
//!   references; blocking for ever would hide the failure and hold a thread
//!   (the repository's `docs/SAFETY.md`, section "Scoped coroutines").

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::thread;

use crate::coroutine::{self, Cancelled, Coroutine};
use crate::runtime::{self, worker, Runtime, Shared};
use crate::spawn::JoinHandle;
use crate::sync::waiter::lock;
use crate::wait::Wait;

type Payload = Box<dyn Any + Send + 'static>;
/// A child's join handle, shared by the scope and the child's
/// [`ScopedJoinHandle`]; `None` once one of them has waited for it.
type Slot = Arc<StdMutex<Option<JoinHandle<()>>>>;

/// State shared by a scope and its children.
#[derive(Debug, Default)]
struct ScopeData {
    /// A child panicked without being joined, or was cancelled.
    a_child_failed: AtomicBool,
}

/// A scope to spawn coroutines that borrow from the caller's stack; see
/// [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    children: StdMutex<Vec<Slot>>,
    /// Invariant in `'scope` and `'env`, as `std::thread::Scope`.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// An owned permission to join a scoped coroutine; see [`Scope::spawn`].
pub struct ScopedJoinHandle<'scope, T> {
    slot: Slot,
    packet: Arc<Packet<'scope, T>>,
    coroutine: Coroutine,
}

/// Where a child leaves its result.
struct Packet<'scope, T> {
    result: StdMutex<Option<thread::Result<T>>>,
    data: Arc<ScopeData>,
    _scope: PhantomData<&'scope ()>,
}

impl<T> Drop for Packet<'_, T> {
    fn drop(&mut self) {
        let r = self.result.get_mut().unwrap_or_else(|e| e.into_inner());
        if matches!(r, Some(Err(_))) {
            // A panic nobody joined: the scope panics once every child ended.
            self.data.a_child_failed.store(true, Ordering::Relaxed);
        }
    }
}

/// Runs `f` with a [`Scope`] whose coroutines may borrow non-`'static` data
/// from the caller, and waits for all of them before returning (like
/// `std::thread::scope`). Works from coroutines (the caller parks while it
/// waits) and from plain threads.
///
/// # Panics
/// After every child has ended: if `f` panicked, with its panic; else if a
/// child panicked and was not joined through its handle, or a child was
/// cancelled by runtime shutdown.
///
/// # Aborts
/// If runtime shutdown leaks a child (see the module docs): returning would
/// be unsound.
///
/// ```
/// let mut data = vec![1, 2, 3];
/// let total = std::sync::atomic::AtomicI32::new(0);
/// gopark::scope(|s| {
///     s.spawn(|| {
///         // Borrows `data` and `total` from the caller's stack.
///         let sum: i32 = data.iter().sum();
///         total.fetch_add(sum, std::sync::atomic::Ordering::Relaxed);
///     });
///     s.spawn(|| total.fetch_add(100, std::sync::atomic::Ordering::Relaxed));
/// });
/// // Every child has ended: the borrows are over.
/// data.push(4);
/// assert_eq!(total.into_inner(), 106);
/// ```
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let s = Scope {
        data: Arc::default(),
        children: StdMutex::new(Vec::new()),
        scope: PhantomData,
        env: PhantomData,
    };
    let r = panic::catch_unwind(AssertUnwindSafe(|| f(&s)));
    let mut cancel = None;
    s.wait_all(&mut cancel);
    // Every child has ended: nothing refers to this frame any more.
    if let Some(c) = cancel {
        // The caller was cancelled (runtime shutdown) while it waited:
        // carry on with that unwind now.
        drop(r);
        panic::resume_unwind(c);
    }
    match r {
        Err(p) => panic::resume_unwind(p),
        Ok(v) => {
            if s.data.a_child_failed.load(Ordering::Relaxed) {
                panic!("gopark: a scoped coroutine panicked or was cancelled");
            }
            v
        }
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a coroutine that may borrow from outside the scope, on the
    /// current runtime (the caller's, in a coroutine; else the default one).
    /// It is joined before [`scope`] returns at the latest.
    ///
    /// # Panics
    /// If no stack can be allocated.
    ///
    /// ```
    /// let names = ["a", "b"];
    /// let lens = gopark::scope(|s| {
    ///     let hs: Vec<_> = names.iter().map(|n| s.spawn(move || n.len())).collect();
    ///     hs.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
    /// });
    /// assert_eq!(lens, 2);
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let at = Location::caller();
        runtime::with_current_shared(|shared| self.spawn_in(shared, at, f))
    }

    /// [`spawn`](Self::spawn) on runtime `rt`.
    ///
    /// # Panics
    /// If no stack can be allocated.
    ///
    /// ```
    /// let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    /// let x = 20;
    /// let v = gopark::scope(|s| s.spawn_on(&rt, || x + 22).join().unwrap());
    /// assert_eq!(v, 42);
    /// ```
    #[track_caller]
    pub fn spawn_on<F, T>(&'scope self, rt: &Runtime, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.spawn_in(rt.shared(), Location::caller(), f)
    }

    fn spawn_in<F, T>(
        &'scope self,
        shared: &Arc<Shared>,
        at: &'static Location<'static>,
        f: F,
    ) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.prune();
        let packet = Arc::new(Packet {
            result: StdMutex::new(None),
            data: self.data.clone(),
            _scope: PhantomData,
        });
        let their_packet = packet.clone();
        let data = self.data.clone();
        let main = move || {
            let r = panic::catch_unwind(AssertUnwindSafe(f));
            let r = match r {
                // Runtime shutdown's unwind must reach the coroutine's entry
                // (swallowing it would get the coroutine leaked).
                Err(p) if p.is::<Cancelled>() => panic::resume_unwind(p),
                r => r,
            };
            *lock(&their_packet.result) = Some(r);
            // Dropping the packet may drop the result (user code) if the
            // handle is gone: a panic there is this child's failure.
            if let Err(p) = panic::catch_unwind(AssertUnwindSafe(move || drop(their_packet))) {
                data.a_child_failed.store(true, Ordering::Relaxed);
                worker::drop_payload(Some(p));
            }
        };
        let main: Box<dyn FnOnce() + Send + 'scope> = Box::new(main);
        // SAFETY: only the lifetime is changed. `scope` does not return, nor
        // unwind past its frame, before this coroutine has ended (it waits
        // for every handle in `children`, uncancellably) and aborts if the
        // coroutine is leaked, so nothing the closure borrows for 'scope is
        // used after 'scope ends. This is what `std::thread::scope` does.
        let main: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(main) };
        let h = crate::spawn::spawn_in(shared, None, None, None, at, main)
            .unwrap_or_else(|e| panic!("gopark: failed to spawn a scoped coroutine: {e}"));
        let coroutine = h.coroutine();
        let slot: Slot = Arc::new(StdMutex::new(Some(h)));
        lock(&self.children).push(slot.clone());
        ScopedJoinHandle {
            slot,
            packet,
            coroutine,
        }
    }

    /// Forgets children that have ended (so a long-lived scope that spawns
    /// many stays small), checking their outcome.
    fn prune(&self) {
        let done: Vec<JoinHandle<()>> = {
            let mut children = lock(&self.children);
            let mut done = Vec::new();
            children.retain(|slot| {
                let mut s = lock(slot);
                match &*s {
                    None => false,
                    Some(h) if h.is_finished() => {
                        done.extend(s.take());
                        false
                    }
                    Some(_) => true,
                }
            });
            done
        };
        for h in done {
            self.check(h.join());
        }
    }

    /// Waits for every child, including those spawned meanwhile.
    fn wait_all(&self, cancel: &mut Option<Payload>) {
        loop {
            let batch = std::mem::take(&mut *lock(&self.children));
            if batch.is_empty() {
                return;
            }
            for slot in batch {
                // `None`: joined through its handle already (such a join
                // also waits uncancellably, so the child has ended).
                let h = lock(&slot).take();
                if let Some(h) = h {
                    wait_ended(&h, cancel);
                    self.check(h.join());
                }
            }
        }
    }

    /// Records the outcome of an ended child's `JoinHandle` (its own panics
    /// are in its packet; an error here comes from the runtime).
    fn check(&self, r: thread::Result<()>) {
        if let Err(p) = r {
            abort_if_leaked(&p);
            self.data.a_child_failed.store(true, Ordering::Relaxed);
            worker::drop_payload(Some(p));
        }
    }
}

/// True for the join error of a coroutine that runtime shutdown leaked.
fn is_leaked(p: &Payload) -> bool {
    p.downcast_ref::<&str>()
        .is_some_and(|s| *s == crate::runtime::worker::LEAKED_MSG)
}

fn abort_if_leaked(p: &Payload) {
    if is_leaked(p) {
        eprintln!(
            "gopark: a scoped coroutine was leaked by runtime shutdown (it could not finish \
             unwinding) while it may still refer to its scope's borrowed data; \
             gopark::scope cannot return soundly: aborting"
        );
        std::process::abort();
    }
}

/// Waits until the coroutine of `h` has ended, without consuming `h`. A
/// cancellation of the calling coroutine (runtime shutdown) is caught into
/// `cancel` and the wait goes on.
fn wait_ended(h: &JoinHandle<()>, cancel: &mut Option<Payload>) {
    let task = h.task();
    if task.join.is_done() {
        return;
    }
    let Some(ctx) = worker::current_ctx() else {
        // A plain thread is never cancelled.
        coroutine::block_on(&Wait::join(task.id), |w| task.join.register(w));
        return;
    };
    let wait = Wait::join(task.id);
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        coroutine::block_on(&wait, |w| task.join.register(w));
    }));
    if let Err(p) = r {
        if !p.is::<Cancelled>() || cancel.is_some() {
            // Nothing else can unwind out of a join's park.
            eprintln!("gopark: unexpected unwind while waiting for a scoped coroutine; aborting");
            std::process::abort();
        }
        *cancel = Some(p);
    }
    // The waiter stays registered across a cancelled or spurious resume: the
    // child's completion readies us (see `JoinHandle::join`).
    coroutine::park_while(ctx, &wait, || !task.join.is_done());
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the coroutine to end and returns its result, or its panic
    /// (which then does not make the scope panic).
    ///
    /// ```
    /// let v = gopark::scope(|s| {
    ///     let h = s.spawn(|| panic!("boom"));
    ///     h.join().is_err()
    /// });
    /// assert!(v); // joined: the scope itself does not panic
    /// ```
    pub fn join(self) -> thread::Result<T> {
        let h = lock(&self.slot).take();
        if let Some(h) = h {
            let mut cancel = None;
            wait_ended(&h, &mut cancel);
            let r = h.join();
            if let Err(p) = &r {
                abort_if_leaked(p);
            }
            if let Some(c) = cancel {
                drop(r);
                panic::resume_unwind(c);
            }
            r?; // an error: cancelled by runtime shutdown
        }
        lock(&self.packet.result).take().unwrap_or_else(|| {
            Err(Box::new(
                "gopark: the scoped coroutine was cancelled by runtime shutdown",
            ))
        })
    }

    /// True once the coroutine has ended.
    ///
    /// ```
    /// gopark::scope(|s| {
    ///     let h = s.spawn(|| ());
    ///     while !h.is_finished() {
    ///         gopark::yield_now();
    ///     }
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        match &*lock(&self.slot) {
            Some(h) => h.is_finished(),
            None => true,
        }
    }

    /// The coroutine's handle.
    ///
    /// ```
    /// gopark::scope(|s| {
    ///     let h = s.spawn(|| gopark::current().unwrap().id());
    ///     let id = h.coroutine().id();
    ///     assert_eq!(h.join().unwrap(), id);
    /// });
    /// ```
    pub fn coroutine(&self) -> &Coroutine {
        &self.coroutine
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("children", &lock(&self.children).len())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("coroutine", &self.coroutine)
            .finish_non_exhaustive()
    }
}
