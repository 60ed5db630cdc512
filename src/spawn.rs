//! Spawning coroutines and joining them.

use std::any::Any;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem;
use std::panic::Location;
use std::ptr;
use std::sync::{Arc, Once};
use std::thread;

use crate::coroutine::{
    self, Body, Co, Coroutine, Resume, Start, Task, Unstarted, Waiter, Yielder,
};
use crate::runtime::{self, worker, Runtime, Shared, UnjoinedPanic};
use crate::stack;
use crate::wait::Wait;

/// An owned permission to join a coroutine (wait for it to end), like
/// `std::thread::JoinHandle`. Dropping it detaches the coroutine.
///
/// ```
/// let h = gopark::spawn(|| 40 + 2);
/// assert_eq!(h.join().unwrap(), 42);
/// ```
pub struct JoinHandle<T> {
    task: Arc<Task>,
    _result: PhantomData<*const T>,
}

// SAFETY: the handle only moves the right to take a `T: Send` out of the
// task's outcome; the task record is Send + Sync.
unsafe impl<T: Send> Send for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// Waits for the coroutine to end and returns its result, or the panic
    /// it ended with. Parks the caller if it is a coroutine, blocks it if it
    /// is a plain thread.
    ///
    /// ```
    /// let h = gopark::spawn(|| panic!("boom"));
    /// let err = h.join().unwrap_err();
    /// assert_eq!(err.downcast_ref::<&str>(), Some(&"boom"));
    /// ```
    pub fn join(self) -> thread::Result<T> {
        // Joining consumes the handle without detaching it: after the join
        // there is nothing left to detach (and `detach` is an atomic CAS).
        let this = mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the `Arc` is
        // moved out exactly once.
        let task = unsafe { ptr::read(&this.task) };
        if !task.join.is_done() {
            let wait = Wait::join(task.id);
            match worker::current_ctx() {
                Some(ctx) => {
                    coroutine::park_commit(ctx, &wait, |me, _| {
                        task.join.register(Waiter::Co(me.clone()))
                    });
                    // The waiter stays registered across a spurious resume.
                    coroutine::park_while(ctx, &wait, || !task.join.is_done());
                }
                None => coroutine::block_on(&wait, |w| task.join.register(w)),
            }
        }
        let outcome = task.join.take_panic();
        // Usually the last reference (the worker let go of the coroutine
        // when it completed it): keep the record for the next spawn here.
        coroutine::Task::recycle(task);
        match outcome {
            Some(Ok(v)) => {
                // SAFETY: an `Ok` outcome is the `Box<T>` the entry function
                // of this handle's coroutine stored (`make_co`), unsized to
                // `dyn Any`; `T` is the handle's type parameter, so the
                // allocation (if any) is a `T` with `T`'s layout. Nothing
                // else stores an `Ok` outcome.
                Ok(*unsafe { Box::from_raw(Box::into_raw(v).cast::<T>()) })
            }
            Some(Err(p)) => Err(p),
            None => unreachable!("gopark: a completed coroutine without an outcome"),
        }
    }

    /// True once the coroutine has ended (returned or panicked).
    ///
    /// ```
    /// let h = gopark::spawn(|| ());
    /// while !h.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// h.join().unwrap();
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.join.is_done()
    }

    /// The coroutine's handle.
    ///
    /// ```
    /// let h = gopark::Builder::new().name("x").spawn(|| ()).unwrap();
    /// assert_eq!(h.coroutine().name(), Some("x"));
    /// h.join().unwrap();
    /// ```
    pub fn coroutine(&self) -> Coroutine {
        Coroutine {
            task: self.task.clone(),
        }
    }

    /// The coroutine record (for waits that must not consume the handle).
    pub(crate) fn task(&self) -> &Arc<Task> {
        &self.task
    }
}

impl<T> Drop for JoinHandle<T> {
    /// Detaches the coroutine. If it has already ended with a panic that
    /// nobody joined, its payload is dropped here, by the caller (after
    /// aborting the process instead, if the runtime was built with
    /// [`UnjoinedPanic::Abort`](crate::UnjoinedPanic::Abort)); otherwise its
    /// home worker deals with the payload when the coroutine ends.
    fn drop(&mut self) {
        let outcome = self.task.join.detach();
        if let Some(Err(p)) = &outcome {
            unjoined_panic(&self.task, &**p);
        }
        drop(outcome);
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.task.id)
            .field("name", &self.task.name)
            .finish()
    }
}

/// Configures a coroutine before spawning it, like `std::thread::Builder`.
///
/// ```
/// let h = gopark::Builder::new()
///     .name("conn-1")
///     .stack_size(64 * 1024)
///     .spawn(|| gopark::current().unwrap().name().unwrap().len())
///     .unwrap();
/// assert_eq!(h.join().unwrap(), 6);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    worker: Option<usize>,
}

impl Builder {
    /// A builder with no name and the runtime's default stack size.
    ///
    /// ```
    /// let h = gopark::Builder::new().spawn(|| 1).unwrap();
    /// assert_eq!(h.join().unwrap(), 1);
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the coroutine (shown in panic and stack-overflow messages).
    ///
    /// ```
    /// let h = gopark::Builder::new().name("db").spawn(|| ()).unwrap();
    /// assert_eq!(h.coroutine().name(), Some("db"));
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Usable stack size in bytes, committed lazily, so only what the
    /// coroutine touches costs memory. At least 16 KiB: a smaller size
    /// (`0` included) becomes 16 KiB, and any size is rounded up to whole
    /// pages (4 KiB on most systems); a guard page below the stack is not
    /// counted. More than 1 TiB makes [`spawn`](Self::spawn) fail with
    /// [`InvalidInput`](std::io::ErrorKind::InvalidInput).
    ///
    /// ```
    /// let h = gopark::Builder::new().stack_size(1 << 20).spawn(|| {
    ///     let buf = [1u8; 600 * 1024];
    ///     std::hint::black_box(&buf).len()
    /// }).unwrap();
    /// assert_eq!(h.join().unwrap(), 600 * 1024);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Starts the coroutine on worker `index` (modulo the runtime's worker
    /// count) and keeps it there: no other worker steals it, and like every
    /// started coroutine it never leaves that worker's thread. For
    /// thread-per-core designs (one acceptor or shard per worker).
    ///
    /// Without it, a new coroutine starts on the least-loaded worker (its
    /// live coroutines plus those queued to start), and an idle worker may
    /// take it from a more loaded one before it starts. Spawned from a
    /// coroutine, it stays on the spawner's worker unless another worker is
    /// lighter by an eighth of that load (at least one coroutine), so a child
    /// joined at once, or a producer and a consumer spawned side by side,
    /// talk without waking another thread; the children of a coroutine that
    /// has accepted a connection (an accept loop's handlers) go to the least
    /// loaded worker with no such margin.
    ///
    /// ```
    /// let rt = gopark::Runtime::builder().workers(2).build()?;
    /// let hs: Vec<_> = (0..4)
    ///     .map(|i| gopark::Builder::new().worker(i).spawn_on(&rt, gopark::worker_index))
    ///     .collect::<Result<_, _>>()?;
    /// let placed: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    /// assert_eq!(placed, [Some(0), Some(1), Some(0), Some(1)]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn worker(mut self, index: usize) -> Builder {
        self.worker = Some(index);
        self
    }

    /// Spawns the coroutine on the current runtime (the caller's, inside a
    /// coroutine; else the default runtime).
    ///
    /// # Errors
    /// If no stack can be allocated: the error says what ran out.
    ///
    /// ```
    /// let h = gopark::Builder::new().spawn(|| 2 + 2)?;
    /// assert_eq!(h.join().unwrap(), 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let at = Location::caller();
        runtime::with_current_shared(|shared| {
            spawn_in(shared, self.name, self.stack_size, self.worker, at, f)
        })
    }

    /// Spawns the coroutine on `rt`.
    ///
    /// # Errors
    /// If no stack can be allocated.
    ///
    /// ```
    /// let rt = gopark::Runtime::builder().workers(1).build()?;
    /// let h = gopark::Builder::new().name("on-rt").spawn_on(&rt, || 7)?;
    /// assert_eq!(h.join().unwrap(), 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn_on<F, T>(self, rt: &Runtime, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let at = Location::caller();
        spawn_in(rt.shared(), self.name, self.stack_size, self.worker, at, f)
    }
}

/// Spawns a coroutine on the current runtime (the caller's, inside a
/// coroutine; else the default runtime) and returns its [`JoinHandle`].
///
/// # Panics
/// If no stack can be allocated, like `std::thread::spawn`; use
/// [`Builder::spawn`] to get the `io::Error` instead.
///
/// ```
/// let handles: Vec<_> = (0..10).map(|i| gopark::spawn(move || i * i)).collect();
/// let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, 285);
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let at = Location::caller();
    runtime::with_current_shared(|shared| spawn_in(shared, None, None, None, at, f))
        .unwrap_or_else(|e| panic!("gopark: failed to spawn a coroutine: {e}"))
}

/// The index of the worker the running coroutine lives on (0 to the
/// runtime's worker count - 1), or `None` outside a coroutine (a plain
/// thread). A coroutine never changes workers once started, so the answer
/// holds for its whole life.
///
/// ```
/// assert_eq!(gopark::worker_index(), None);
/// let rt = gopark::Runtime::builder().workers(3).build().unwrap();
/// let w = rt.run(gopark::worker_index).unwrap();
/// assert!(w < 3);
/// let h = gopark::Builder::new().worker(w + 1).spawn_on(&rt, gopark::worker_index).unwrap();
/// assert_eq!(h.join().unwrap(), Some((w + 1) % 3));
/// ```
pub fn worker_index() -> Option<usize> {
    crate::runtime::worker::current_ctx().map(|ctx| ctx.index)
}

/// Runs `f` as a coroutine on the default runtime and blocks the calling
/// thread until it returns; a panic in `f` is resumed in the caller.
///
/// ```
/// let v = gopark::run(|| {
///     let h = gopark::go!(|| 21);
///     h.join().unwrap() * 2
/// });
/// assert_eq!(v, 42);
/// ```
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match spawn(f).join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Closures larger than this are boxed before they are written onto the new
/// stack (corosensei accepts at most 1 KiB there).
const INLINE_CLOSURE_MAX: usize = 512;

/// Spawns a coroutine; `at` is the spawn site the dump shows (the caller's
/// `Location::caller()` under `#[track_caller]`).
pub(crate) fn spawn_in<F, T>(
    shared: &Arc<Shared>,
    name: Option<String>,
    stack_size: Option<usize>,
    worker: Option<usize>,
    at: &'static Location<'static>,
    f: F,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let stack = stack::reserve(stack_size.unwrap_or(shared.stack_size))?;
    let parent = runtime::worker::current_ctx().map(|ctx| ctx.current_task().id);
    let task = Task::new_arc(name, &stack, shared.clone(), at, parent);
    let tp = TaskPtr(Arc::as_ptr(&task));
    // SAFETY: the task was just created; nobody else can see it yet.
    let local = unsafe { task.local() };
    if stack.is_cold() {
        // Writing the first frame would fault a page of a stack that may
        // wait long in a queue: build it at the first run instead, on the
        // warmest stack of the worker then (stack module docs). Costs a
        // box, only on this path, which saves a page fault.
        // Costs no allocation either: kept in the task record, which is
        // reused (see `Unstarted`).
        local.body = Body::Unstarted(Unstarted::new(Pending {
            stack,
            tp,
            f,
            _result: PhantomData::<fn() -> T>,
        }));
    } else {
        // Over the `Gone` of a new task: no drop of it (an out-of-line
        // call of the drop glue, for nothing).
        let gone = mem::replace(&mut local.body, Body::Built(build_co::<F, T>(stack, tp, f)));
        debug_assert!(matches!(gone, Body::Gone));
        mem::forget(gone);
    }
    shared.submit(task.clone(), worker);
    Ok(JoinHandle {
        task,
        _result: PhantomData,
    })
}

/// A raw task pointer that the entry function carries onto its stack.
#[derive(Clone, Copy)]
struct TaskPtr(*const Task);

/// The first run of a coroutine spawned on a cold stack: what
/// `Unstarted` keeps until then.
struct Pending<F, T> {
    stack: stack::Stack,
    tp: TaskPtr,
    f: F,
    _result: PhantomData<fn() -> T>,
}

impl<F, T> Start for Pending<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn start(self) -> io::Result<(Co, usize)> {
        let stack = stack::bind(self.stack)?;
        let limit = corosensei::stack::Stack::limit(&stack).get();
        Ok((build_co::<F, T>(stack, self.tp, self.f), limit))
    }
}

/// Builds the coroutine of `f` on `stack`, boxing a closure too large to be
/// written onto the stack.
fn build_co<F, T>(stack: stack::Stack, tp: TaskPtr, f: F) -> Co
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if mem::size_of::<F>() <= INLINE_CLOSURE_MAX {
        make_co(stack, tp, f)
    } else {
        make_co(stack, tp, Box::new(f))
    }
}

/// Builds the coroutine; its entry function stores the closure's value in
/// `TaskLocal::result` as a `Box<T>` (which `JoinHandle::join` casts back).
fn make_co<F, T>(mut stack: stack::Stack, tp: TaskPtr, f: F) -> Co
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    stack.mark_used();
    Co::with_stack(stack, move |y: &Yielder, ()| {
        let tp = tp;
        // SAFETY: the task owns this coroutine, so it outlives the
        // coroutine's execution; the running coroutine is owned by its
        // worker, the only one touching `local` (coroutine module docs).
        unsafe { (*(*tp.0).local.get()).yielder = y };
        // Drops the coroutine-local values when this function returns or
        // unwinds, on this stack.
        let _locals = crate::local::DropLocals(tp.0);
        // What the worker said with this first resume (see `Resume`): only
        // a cancellation is possible (a panic to re-raise needs a park).
        if let Some(ctx) = runtime::worker::current_ctx().filter(|ctx| ctx.told()) {
            let input = ctx.take_told();
            if let Resume::Cancel = input {
                // Cancelled before it started (runtime shutdown): drop the
                // closure here, as a coroutine (its destructors may park),
                // then end the way a cancelled parked coroutine does.
                drop(f);
                coroutine::act_on(input, ctx);
                return;
            }
        }
        let v = __rust_begin_short_backtrace(f);
        // SAFETY: the task outlives its coroutine (as above).
        if mem::needs_drop::<T>() && unsafe { (*tp.0).join.is_detached() } {
            // Nobody will take it: drop it here, in the coroutine, where its
            // destructor may park. (A handle dropped from now until the
            // worker completes the task leaves it to the worker, which drops
            // it as it drops an unjoined panic: `Task::complete`.)
            drop(v);
            return;
        }
        let v: Box<dyn Any + Send> = Box::new(v);
        // SAFETY: as for `yielder` above; the worker moves the value into
        // the join cell once the coroutine has returned (`finish`).
        unsafe { (*(*tp.0).local.get()).result = Some(v) };
    })
}

/// Called with the payload of a coroutine that ended with a panic no join
/// will observe (its handle is gone): aborts the process if its runtime was
/// built with [`UnjoinedPanic::Abort`]. The join errors the runtime itself
/// gives a coroutine cancelled or leaked at shutdown are no panics and never
/// abort. The panic was printed when it happened, by the panic hook.
pub(crate) fn unjoined_panic(task: &Task, payload: &(dyn Any + Send)) {
    if task.shared.unjoined_panic != UnjoinedPanic::Abort {
        return;
    }
    let shutdown = payload.downcast_ref::<&str>().is_some_and(|s| {
        *s == worker::CANCELLED_MSG || *s == worker::LEAKED_MSG || *s == worker::NO_RESULT_MSG
    });
    if shutdown {
        return;
    }
    let name = task
        .name
        .as_deref()
        .map_or_else(|| "<unnamed>".to_owned(), |n| format!("'{n}'"));
    eprintln!(
        "gopark: coroutine {name} (id {}) panicked and nothing joined it; aborting, as UnjoinedPanic::Abort asks",
        task.id
    );
    std::process::abort();
}

/// Calls a coroutine's entry closure (and a blocking job). Its name is the
/// marker std's panic hook looks for (by substring) when it prints a short
/// backtrace (`RUST_BACKTRACE=1`): frames beyond it, here the runtime's and
/// corosensei's, are left out, as for a thread, whose closure std calls
/// through a function of the same name. Never inlined, and kept out of a
/// tail call, so that its frame is on the stack.
#[inline(never)]
pub(crate) fn __rust_begin_short_backtrace<F: FnOnce() -> T, T>(f: F) -> T {
    let v = f();
    std::hint::black_box(());
    v
}

/// Makes panics in coroutines print the coroutine's name and id, the way a
/// thread's panic names the thread. Installed once (when the first runtime is
/// built), wrapping the previous hook: a coroutine's panic is announced with
/// one line naming it and then handed to that hook, so a hook the program
/// installed before (logging, error reporting) still sees every panic.
///
/// While the hook runs, the stall monitor does not watch the coroutine:
/// printing a backtrace (symbolizing it) can take longer than the stall
/// threshold, and a stall report in the middle of the panic message would
/// only mislead.
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let Some(ctx) = crate::runtime::worker::current_ctx() else {
                return prev(info);
            };
            let task = ctx.current_task().clone();
            // Name the coroutine, then hand the panic to the hook that was
            // there before (std's default one, or the program's own logging
            // hook): it prints the message, the location, the backtrace or
            // the RUST_BACKTRACE hint, exactly as for a thread.
            let name = task
                .name
                .as_deref()
                .map_or_else(|| "<unnamed>".to_owned(), |n| format!("'{n}'"));
            eprintln!(
                "gopark: panic in coroutine {name} (id {}, spawned at {}):",
                task.id, task.spawned_at
            );
            ctx.shared_part().monitor.unwatched(&task, || prev(info));
        }));
    });
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Waits (up to 10 s) for the worker to let go of `task` too: it may
    /// still hold it for a moment after it woke the joiner.
    fn only_reference(task: &Arc<Task>) -> bool {
        let t = std::time::Instant::now();
        while Arc::strong_count(task) > 1 && t.elapsed() < std::time::Duration::from_secs(10) {
            thread::yield_now();
        }
        Arc::strong_count(task) == 1
    }

    /// `join` moves the task's `Arc` out of the handle it consumes: the
    /// reference is released exactly once, from a coroutine and from a
    /// thread, after a value and after a panic.
    #[test]
    fn join_releases_the_handles_reference_once() {
        let rt = Runtime::builder().workers(1).build().unwrap();
        for panics in [false, true] {
            let h = Builder::new()
                .spawn_on(&rt, move || {
                    if panics {
                        panic!("expected");
                    }
                    5
                })
                .unwrap();
            let task = h.task().clone();
            assert_eq!(h.join().ok(), (!panics).then_some(5));
            assert!(only_reference(&task));
            let task = rt.run(move || {
                let h = spawn(move || {
                    if panics {
                        panic!("expected");
                    }
                    6
                });
                let task = h.task().clone();
                assert_eq!(h.join().ok(), (!panics).then_some(6));
                task
            });
            assert!(only_reference(&task));
        }
    }
}
