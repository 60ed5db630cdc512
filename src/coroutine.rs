//! The coroutine record (Go's `g`) and the park/ready protocol.
//!
//! A [`Task`] is created by spawn and shared through `Arc`s: the run queues,
//! wait slots (a channel's waiter list, a PollDesc's `rg`), timers and join
//! handles each hold one. Its fields fall in three groups:
//!
//! - immutable after spawn: id, name, stack size, runtime, spawn site and
//!   parent (and the stack's limit, which the first run may change once,
//!   see `TaskLocal::body`);
//! - atomics any thread may touch: `home`, `status`, `since`, the park token,
//!   the join state (behind its mutex);
//! - `wait`: a pointer to what the coroutine parked on (`crate::wait`), a
//!   [`Wait`] in the parked frame; written by the coroutine itself while
//!   RUNNING and followed by a dumper only while it holds the status at
//!   SCANNING (see [`Task::inspect_wait`]);
//! - `local`: owned by the worker that runs the coroutine. Before the first
//!   resume whoever holds the task in a run queue owns it; from the first
//!   resume on only the home worker touches it, since a started coroutine
//!   never changes threads (docs/SAFETY.md, section 1).
//!
//! ## Park and ready (docs/SAFETY.md, section 2)
//! A coroutine never publishes itself. [`park_commit`] suspends with a
//! command; after `resume()` has returned, the worker runs the command's
//! commit function, which publishes the task where a waker will find it (a
//! CAS into a wait slot, a timer, a waiter list; the worker's reference to
//! the task moves there, see [`Committed`]), or hands the reference back if
//! the event already came, in which case the worker resumes the coroutine at
//! once. A waker that takes the task out of its slot calls
//! [`ready`]; the task's status (Go's `casgstatus`) turns a second ready of the
//! same park into a loud panic instead of a coroutine run twice.
//!
//! ## Status
//! ```text
//!            resume               park (store, Release)
//! RUNNABLE ---------> RUNNING -----------------------> WAITING <--> SCANNING
//!    ^   <---------     |  yield                          |     (a dumper,
//!    |                  +--> RUNNABLE                     |      CAS both ways)
//!    +----------------------------------------------------+
//!     ready / claim_parked / take_back: CAS WAITING -> RUNNABLE
//! ```
//! Only the home worker stores RUNNING, RUNNABLE (after a yield) and WAITING.
//! Everything that leaves WAITING does so with a CAS, and waits while a dumper
//! holds SCANNING (Go's `_Gscan` bit), so a parked coroutine cannot resume
//! while a dumper reads its wait record.

use std::any::Any;
use std::cell::UnsafeCell;
use std::fmt;
use std::mem;
use std::num::NonZeroU64;
use std::panic::Location;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::runtime::worker::{self, WorkerCtx};
use crate::runtime::{Shared, WorkerShared};
use crate::sm::join::JoinCell;
use crate::sm::park_token::ParkToken;
use crate::stack::Stack;
use crate::wait::{Wait, WaitRecord};

/// What a worker tells a coroutine when it resumes it. Not passed through
/// the switch (the resume's input is `()`, so corosensei passes it, with
/// its forced-unwind case, in one register): `Run` is said by saying
/// nothing, the other two are left in the worker context
/// (`WorkerCtx::tell`), which the coroutine looks at after every switch
/// ([`on_resume`]).
pub(crate) enum Resume {
    /// Carry on: the park's event came (or the yield is over).
    Run,
    /// The runtime is shutting down: unwind from the park point (see
    /// [`Cancelled`]).
    Cancel,
    /// The park's commit function panicked on the worker: re-raise the panic
    /// in the coroutine, where the code that parked can see it.
    Panic(Box<dyn Any + Send>),
}
/// The corosensei coroutine type used for every gopark coroutine.
pub(crate) type Co = corosensei::Coroutine<(), Suspend, (), Stack>;
/// The yielder handed to a coroutine's entry function.
pub(crate) type Yielder = corosensei::Yielder<(), Suspend>;
/// A commit function (Go's `unlockf`): runs on the worker after the switch,
/// handed the worker's own reference to the parked task (see [`Committed`]).
/// It catches a panic of the commit itself (see [`CommitWord`]).
///
/// # Safety
/// `arg` must be the pointer `park_commit` passed along with this function:
/// it points into the suspended coroutine's frame, valid until it resumes.
pub(crate) type CommitFn = unsafe fn(arg: *mut (), task: Arc<Task>, ctx: &WorkerCtx) -> CommitWord;

/// What a commit function hands back to the worker, in one word (a
/// register): the [`Committed`] of the commit, or that it panicked, its
/// payload left in the worker context (`WorkerCtx::commit_panicked`). The
/// worker then needs no unwind handling of its own around the call, nor
/// a result in memory: one test for the common case, parked.
#[must_use]
pub(crate) struct CommitWord(usize);

impl CommitWord {
    /// Parked (`Ok(())`).
    const PARKED: usize = 0;
    /// The commit panicked: the low bit, which no task address has (an
    /// `Arc`'s data is aligned).
    const PANICKED: usize = 1;

    #[inline(always)]
    fn from_committed(c: Committed) -> CommitWord {
        match c {
            Ok(()) => CommitWord(Self::PARKED),
            Err(task) => CommitWord(Arc::into_raw(task) as usize),
        }
    }

    /// True if the coroutine stays parked (the commit took the reference).
    #[inline(always)]
    pub(crate) fn parked(&self) -> bool {
        self.0 == Self::PARKED
    }

    /// Not parked: the task reference handed back (`Err(task)`), or `None`
    /// if the commit panicked.
    #[inline(always)]
    pub(crate) fn handed_back(self) -> Option<Arc<Task>> {
        debug_assert!(!self.parked());
        // A bit test, not a compare with `PANICKED`: the compiler would
        // merge that with `parked`'s into a switch that tests it first.
        if self.0 & Self::PANICKED != 0 {
            return None;
        }
        // SAFETY: the word is the `Arc::into_raw` of `from_committed`, taken
        // back once (`self` is consumed).
        Some(unsafe { Arc::from_raw(self.0 as *const Task) })
    }
}

/// What a commit function did with the task reference it was handed.
/// `Ok(())`: the coroutine stays parked, and the reference is gone from the
/// worker: published where a waker finds it (the wait slot owns it; no
/// clone, no drop on the worker), or dropped by the commit. `Err(task)`: the
/// event already came; the reference goes back to the worker, which
/// resumes the coroutine at once.
pub(crate) type Committed = Result<(), Arc<Task>>;

/// The command a coroutine suspends with, one word (corosensei passes it
/// in a register): `None` is Go's Gosched (go to the back of the run
/// queue); `Some(frame)` is Go's gopark: `frame` points to the park's
/// [`ParkFrame`] on the suspended coroutine's stack, whose first field is
/// its commit function; the worker runs `commit(frame, ..)` after the
/// switch and, if it hands the task back, resumes the coroutine at once.
pub(crate) type Suspend = Option<ptr::NonNull<CommitFn>>;

/// A park's commit, in the parked coroutine's frame: the commit function
/// first (`repr(C)`), so a pointer to the frame is a pointer to it.
#[repr(C)]
struct ParkFrame<F> {
    commit: CommitFn,
    /// The commit closure, moved out by the commit function. The worker
    /// runs the commit of every park exactly once, before it resumes the
    /// coroutine (`WorkerCtx::execute`), so it is moved out exactly once and
    /// the frame never drops it.
    f: mem::ManuallyDrop<F>,
}

/// Task status (Go's `_Grunnable`, `_Grunning`, `_Gwaiting`).
pub(crate) const RUNNABLE: u8 = 0;
pub(crate) const RUNNING: u8 = 1;
pub(crate) const WAITING: u8 = 2;
/// WAITING, held by a dumper reading the wait record (Go's `_Gscan` bit on
/// `_Gwaiting`): whatever would leave WAITING waits until it is WAITING again.
pub(crate) const SCANNING: u8 = 3;

/// `home` before the coroutine first runs.
pub(crate) const NO_HOME: usize = usize::MAX;

/// `Task::cancel`: no cancellation.
pub(crate) const CANCEL_NONE: u8 = 0;
/// `Task::cancel`: the runtime is shutting down; the next resume unwinds.
pub(crate) const CANCEL_REQUESTED: u8 = 1;
/// `Task::cancel`: the [`Cancelled`] unwind has been raised in the coroutine.
pub(crate) const CANCEL_DELIVERED: u8 = 2;
/// `Task::cancel`: the coroutine caught the [`Cancelled`] unwind and dropped
/// it; its next park or yield leaks it (see the worker's shutdown).
pub(crate) const CANCEL_SWALLOWED: u8 = 3;

mod unstarted;
pub(crate) use unstarted::{Start, Unstarted};

/// A task's coroutine, in one place whatever its stage (the two stages
/// never coexist, so the record keeps room for the larger only).
pub(crate) enum Body {
    /// Not made yet, finished, or dropped at shutdown.
    Gone,
    /// Spawned on a cold stack: built at its first run (see [`Unstarted`]).
    Unstarted(Unstarted),
    /// Built: on a warm stack at the spawn, else at its first run.
    Built(Co),
}

impl Body {
    /// Whether the coroutine is built (and not finished).
    #[inline]
    pub(crate) fn is_built(&self) -> bool {
        matches!(self, Body::Built(_))
    }

    /// Takes the body out, leaving `Gone`.
    #[inline]
    pub(crate) fn take(&mut self) -> Body {
        mem::replace(self, Body::Gone)
    }

    /// Takes a coroutine waiting for its first run out, leaving `Gone`;
    /// anything else stays.
    #[inline]
    pub(crate) fn take_unstarted(&mut self) -> Option<Unstarted> {
        match self {
            Body::Unstarted(_) => match self.take() {
                Body::Unstarted(u) => Some(u),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Owner-only part of a task (see the module docs).
pub(crate) struct TaskLocal {
    /// The coroutine.
    pub(crate) body: Body,
    /// Set by the entry function; valid while the coroutine is alive.
    pub(crate) yielder: *const Yielder,
    /// Index in the home worker's registry of live coroutines.
    pub(crate) slot: usize,
    /// Set once the coroutine has accepted a connection: its children are
    /// placed with no margin (see `runtime::Shared::place`).
    pub(crate) accepts: bool,
    /// The worker whose load counter counts this coroutine (`NO_HOME`:
    /// none yet); its home once started (see `runtime::Load`).
    pub(crate) charge: usize,
    /// A panic of this coroutine's commit function, to re-raise in the
    /// coroutine at its next resume.
    pub(crate) pending_panic: Option<Box<dyn Any + Send>>,
    /// Coroutine-local values (`crate::local`), touched only by the running
    /// coroutine; emptied on its stack when it ends.
    pub(crate) locals: crate::local::Locals,
    /// The value the entry closure returned (a `Box<T>` of the join
    /// handle's `T`; no allocation for a zero-sized `T`), stored by the
    /// running coroutine as it returns (unless its handle is gone and the
    /// value has a destructor: the coroutine then drops it itself, see
    /// `spawn::make_co`); `finish` moves it into `join`.
    pub(crate) result: Option<Box<dyn Any + Send>>,
}

/// How a coroutine ended: the value its closure returned (boxed, of the
/// join handle's type) or the panic payload it ended with.
pub(crate) type Outcome = Result<Box<dyn Any + Send>, Box<dyn Any + Send>>;

/// A coroutine record (Go's `g`).
pub(crate) struct Task {
    pub(crate) id: CoroutineId,
    pub(crate) name: Option<Box<str>>,
    pub(crate) stack_size: usize,
    /// Lowest address of the stack including its guard (for the overflow
    /// handler). Set at spawn; the first run stores it again when it traded
    /// the reserved stack for a warm one (`stack::bind`). Written and read by
    /// the owner (Relaxed).
    pub(crate) stack_limit: AtomicUsize,
    pub(crate) shared: Arc<Shared>,
    /// Index of the worker the coroutine lives on, `NO_HOME` before it starts.
    /// Written once by the worker that first resumes it.
    pub(crate) home: AtomicUsize,
    /// The home worker's shared part (`&shared.workers[home]`) while the
    /// coroutine can be resumed: null before its first run and again once
    /// it has lost its stack (finished or leaked); written by the home
    /// worker. One compare tells a worker whether a coroutine lives on it
    /// (an address names one worker of one runtime: `shared` keeps that
    /// runtime's workers alive), and whether `execute` may resume it at
    /// once.
    pub(crate) home_worker: AtomicPtr<WorkerShared>,
    /// RUNNABLE / RUNNING / WAITING / SCANNING (module docs).
    pub(crate) status: AtomicU8,
    /// Where the coroutine was spawned (`#[track_caller]` on the spawn
    /// functions).
    pub(crate) spawned_at: &'static Location<'static>,
    /// The coroutine that spawned it, if it was spawned from one.
    pub(crate) parent: Option<CoroutineId>,
    /// When the coroutine last resumed or parked, on its worker's cached
    /// clock (`monitor::Slot::clock`, nanoseconds since the runtime's epoch):
    /// written by the home worker, read racily by dumpers.
    pub(crate) since: AtomicU64,
    /// What the coroutine waits for: the `Wait` of its current park, in
    /// the parked frame (module docs); null before the first park.
    pub(crate) wait: UnsafeCell<*const WaitRecord>,
    /// Token for the public park/unpark API.
    pub(crate) token: ParkToken,
    /// `CANCEL_NONE` .. `CANCEL_SWALLOWED`; written by the home worker and,
    /// for `CANCEL_SWALLOWED`, by the drop of the [`Cancelled`] payload.
    pub(crate) cancel: AtomicU8,
    /// Set (before the status CAS that makes it so) when the home worker
    /// resumed the coroutine without a waker: at shutdown, or after its
    /// commit panicked. A waker that took the task from a wait slot just
    /// before may then find it not parked, or parked again in a later wait:
    /// `ready` drops the first kind, and every wait re-checks its condition
    /// after a resume, so the second is a spurious wake-up.
    pub(crate) stale_wakes: AtomicBool,
    /// Completion, the outcome, and the joiner waiting for it.
    pub(crate) join: JoinCell<Waiter, Outcome>,
    pub(crate) local: UnsafeCell<TaskLocal>,
}

// SAFETY: `local` is only accessed by the task's single owner at a time: the
// queue holder before the first resume (the unstarted coroutine, built or
// not, holds only a `Send` closure and a pointer to
// this task that is dereferenced only once it runs), the home worker thread
// afterwards (see module docs). `wait` is written by the running coroutine
// and read by other threads only under the SCANNING protocol
// (`inspect_wait`); its raw pointers are only dereferenced there. All other
// fields are immutable, atomic, or behind a Mutex.
unsafe impl Send for Task {}
// SAFETY: as above.
unsafe impl Sync for Task {}

impl Task {
    /// [`Task::new`] in its `Arc`, built in place: `Arc::new(Task::new(..))`
    /// builds the record on the stack and copies it (twice, through a `Box`).
    /// The allocation is a finished task's when one is spare ([`Task::recycle`]).
    #[inline]
    pub(crate) fn new_arc(
        name: Option<String>,
        stack: &Stack,
        shared: Arc<Shared>,
        spawned_at: &'static Location<'static>,
        parent: Option<CoroutineId>,
    ) -> Arc<Task> {
        let arc = spare::take().unwrap_or_else(|| Arc::new(mem::MaybeUninit::<Task>::uninit()));
        let slot = Arc::into_raw(arc).cast_mut();
        // SAFETY: the `Arc` is unique: just allocated, or a spare, which
        // `recycle` made from an `Arc` that `get_mut` proved unique (no other
        // strong or weak reference) and which the spare lists alone held
        // since; nothing else reads or writes its value, so writing through
        // its pointer is sound (what `Arc::get_mut` would check with an
        // atomic operation). After the write the value is an initialized
        // `Task`, and `MaybeUninit<Task>` has the size and alignment of
        // `Task`, as `Arc::from_raw` requires of a pointer from
        // `Arc::<U>::into_raw`.
        unsafe {
            (*slot).write(Task::new(name, stack, shared, spawned_at, parent));
            Arc::from_raw(slot.cast::<Task>())
        }
    }

    /// Drops `task`; if this was its last reference (none strong or weak
    /// left), keeps its allocation for a later [`Task::new_arc`] instead of
    /// freeing it (the module `spare`).
    #[inline]
    pub(crate) fn recycle(mut task: Arc<Task>) {
        // A load first: in the common case of another holder (a join
        // handle), this saves `get_mut`'s atomic read-modify-write.
        if Arc::strong_count(&task) != 1 || Arc::get_mut(&mut task).is_none() {
            return;
        }
        let p = Arc::into_raw(task).cast_mut();
        // SAFETY: `get_mut` proved the `Arc` unique, so nothing else can
        // reach the task: dropping it in place is its last use. The
        // allocation then holds a dropped task, which `MaybeUninit<Task>`
        // (same size and alignment) describes, so rebuilding the `Arc` as
        // that type is sound, and dropping it later frees without dropping
        // the task again. If the task's drop panics, the allocation is
        // leaked, never reused.
        let spare = unsafe {
            ptr::drop_in_place(p);
            Arc::from_raw(p.cast::<mem::MaybeUninit<Task>>())
        };
        spare::put(spare);
    }

    #[inline]
    pub(crate) fn new(
        name: Option<String>,
        stack: &Stack,
        shared: Arc<Shared>,
        spawned_at: &'static Location<'static>,
        parent: Option<CoroutineId>,
    ) -> Task {
        Task {
            id: CoroutineId::next(),
            name: name.map(String::into_boxed_str),
            stack_size: stack.size(),
            stack_limit: AtomicUsize::new(corosensei::stack::Stack::limit(stack).get()),
            shared,
            home: AtomicUsize::new(NO_HOME),
            home_worker: AtomicPtr::new(ptr::null_mut()),
            status: AtomicU8::new(RUNNABLE),
            spawned_at,
            parent,
            since: AtomicU64::new(0),
            wait: UnsafeCell::new(ptr::null()),
            token: ParkToken::new(),
            cancel: AtomicU8::new(CANCEL_NONE),
            stale_wakes: AtomicBool::new(false),
            join: JoinCell::new(),
            local: UnsafeCell::new(TaskLocal {
                body: Body::Gone,
                yielder: ptr::null(),
                slot: usize::MAX,
                accepts: false,
                charge: NO_HOME,
                pending_panic: None,
                locals: Vec::new(),
                result: None,
            }),
        }
    }

    /// The owner-only part.
    ///
    /// # Safety
    /// The caller is the task's current owner (module docs) and holds no
    /// other reference into `local`.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn local(&self) -> &mut TaskLocal {
        // SAFETY: exclusivity is the caller's contract.
        unsafe { &mut *self.local.get() }
    }

    /// Marks the task finished with `outcome` and wakes its joiner. If the
    /// join handle was dropped already, drops a returned value here (user
    /// code, contained: `worker::drop_payload`) and returns a panic payload
    /// for the caller to deal with the same way.
    #[must_use = "a returned payload must be dropped with care"]
    pub(crate) fn complete(&self, outcome: Outcome) -> Option<Box<dyn Any + Send>> {
        let (w, unclaimed) = self.join.complete(Some(outcome));
        if let Some(w) = w {
            w.wake();
        }
        match unclaimed {
            Some(Ok(v)) => {
                worker::drop_payload(Some(v));
                None
            }
            Some(Err(p)) => Some(p),
            None => None,
        }
    }

    /// Claims a parked coroutine for its home worker, as a waker would, but
    /// for a resume that no waker asked for (shutdown, a panicking commit):
    /// true if it was parked and is now the caller's to run.
    pub(crate) fn claim_parked(&self) -> bool {
        self.stale_wakes.store(true, Ordering::Relaxed);
        // Release: a waker whose CAS fails on the new status sees
        // `stale_wakes` (see `ready`).
        self.leave_waiting(Ordering::Relaxed) == WAITING
    }

    /// The home worker takes back a coroutine whose commit found its event
    /// already there (it was never published, so no waker readies it; a
    /// dumper may hold it SCANNING, though).
    pub(crate) fn take_back(&self) {
        let _ = self.leave_waiting(Ordering::Relaxed);
    }

    /// CAS WAITING -> RUNNABLE, waiting while a dumper holds SCANNING.
    /// Returns the status found: WAITING if the CAS succeeded.
    #[inline]
    fn leave_waiting(&self, failure: Ordering) -> u8 {
        match self
            .status
            .compare_exchange(WAITING, RUNNABLE, Ordering::AcqRel, failure)
        {
            Ok(s) => s,
            Err(SCANNING) => self.leave_waiting_slow(failure),
            Err(s) => s,
        }
    }

    #[cold]
    #[inline(never)]
    fn leave_waiting_slow(&self, failure: Ordering) -> u8 {
        let mut spins = 0u32;
        loop {
            match self
                .status
                .compare_exchange(WAITING, RUNNABLE, Ordering::AcqRel, failure)
            {
                Err(SCANNING) => {
                    // A dumper copies a few words and stores WAITING back.
                    spins += 1;
                    if spins < 64 {
                        std::hint::spin_loop();
                    } else {
                        thread::yield_now();
                    }
                }
                Ok(s) | Err(s) => return s,
            }
        }
    }

    /// Runs `f` on the wait record of a parked coroutine, keeping it parked
    /// meanwhile: `None` if it is not parked (or another dumper holds it).
    /// `f` gets the record and must take no lock and not park (a waker that
    /// holds a lock may be spinning on this task's status meanwhile); it may
    /// read through the record's pointers (`WaitRecord::snapshot`).
    pub(crate) fn inspect_wait<R>(&self, f: impl FnOnce(&WaitRecord) -> R) -> Option<R> {
        // Acquire: pairs with the worker's Release store of WAITING, after
        // the coroutine wrote its record.
        self.status
            .compare_exchange(WAITING, SCANNING, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        struct Unscan<'a>(&'a AtomicU8);
        impl Drop for Unscan<'_> {
            fn drop(&mut self) {
                // Release: our reads happen before whoever leaves WAITING
                // next (and so before the coroutine writes its next record).
                self.0.store(WAITING, Ordering::Release);
            }
        }
        let _unscan = Unscan(&self.status);
        // SAFETY: SCANNING: the coroutine is parked and cannot resume until
        // `_unscan` stores WAITING back, so nothing writes the pointer, and
        // the writes of the park that set it happen before our CAS. It
        // points to the `Wait` of that park, in a frame that stays
        // suspended inside `park_commit`/`park_while` while it is parked.
        let record = unsafe { (*self.wait.get()).as_ref() }?;
        Some(f(record))
    }
}

/// Spare task records: the allocations of finished tasks, kept for new ones
/// (Go's `gfput`/`gfget`). A skynet tree spawns a million coroutines, and
/// on two workers most of them finish on the worker that did not spawn
/// them: with every record freed there, into the other worker's malloc
/// arena, the two workers took turns at that arena's lock (a tenth of a
/// tree's time in futex calls). Each thread keeps up to [`LOCAL_MAX`]
/// records; beyond that it moves [`BATCH`] to a global list (at most
/// [`GLOBAL_MAX`] records, the rest are freed), and a thread with none takes
/// a batch from there before it allocates.
mod spare {
    use std::cell::RefCell;
    use std::mem::MaybeUninit;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};

    use super::Task;

    /// An allocation of a task record, holding no task.
    pub(super) type Spare = Arc<MaybeUninit<Task>>;

    const LOCAL_MAX: usize = 64;
    const BATCH: usize = 32;
    const GLOBAL_MAX: usize = 16 * 1024;

    thread_local! {
        static LOCAL: RefCell<Vec<Spare>> = const { RefCell::new(Vec::new()) };
    }

    static GLOBAL: Global<Spare> = Global::new();

    /// The global list: batches of [`BATCH`], and their number, which a
    /// thread with no spare reads before it takes the lock (a spawn whose
    /// records are freed elsewhere, by its joiner, finds the list empty
    /// every time).
    pub(super) struct Global<S>(Mutex<Vec<Vec<S>>>, AtomicUsize);

    impl<S> Global<S> {
        pub(super) const fn new() -> Self {
            Global(Mutex::new(Vec::new()), AtomicUsize::new(0))
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<S>>> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }

        fn pop(&self) -> Option<Vec<S>> {
            if self.1.load(Ordering::Relaxed) == 0 {
                return None;
            }
            let mut g = self.lock();
            let b = g.pop();
            self.1.store(g.len(), Ordering::Relaxed);
            b
        }

        /// Keeps `batch` unless the list holds [`GLOBAL_MAX`] records
        /// (then it is dropped, after the lock).
        fn push(&self, batch: Vec<S>) {
            let mut g = self.lock();
            if g.len() * BATCH < GLOBAL_MAX {
                g.push(batch);
                self.1.store(g.len(), Ordering::Relaxed);
                return;
            }
            drop(g);
            drop(batch);
        }
    }

    /// A spare record, if this thread or the global list has one.
    #[inline]
    pub(super) fn take() -> Option<Spare> {
        LOCAL
            .try_with(|l| take_from(&mut *l.try_borrow_mut().ok()?, &GLOBAL))
            .ok()
            .flatten()
    }

    /// Keeps `spare` for a later [`take`] (or frees it if the lists are
    /// full or this thread is exiting).
    #[inline]
    pub(super) fn put(spare: Spare) {
        let _ = LOCAL.try_with(|l| {
            if let Ok(mut l) = l.try_borrow_mut() {
                put_into(&mut l, &GLOBAL, spare);
            }
        });
    }

    /// [`take`] from the lists `local` and `global`.
    pub(super) fn take_from<S>(local: &mut Vec<S>, global: &Global<S>) -> Option<S> {
        if let Some(s) = local.pop() {
            return Some(s);
        }
        // Appended, not swapped in: the thread's list keeps its capacity.
        local.append(&mut global.pop()?);
        local.pop()
    }

    /// [`put`] into the lists `local` and `global`.
    pub(super) fn put_into<S>(local: &mut Vec<S>, global: &Global<S>, spare: S) {
        if local.len() >= LOCAL_MAX {
            global.push(local.drain(..BATCH).collect());
        }
        if local.capacity() == 0 {
            local.reserve_exact(LOCAL_MAX);
        }
        local.push(spare);
    }

    /// Records this thread holds (tests).
    #[cfg(test)]
    pub(super) fn local_len() -> usize {
        LOCAL.with(|l| l.borrow().len())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Beyond `LOCAL_MAX` a thread passes the oldest `BATCH` on, the
        /// global list keeps at most `GLOBAL_MAX` (the rest is freed), and
        /// a thread with none takes a whole batch at once.
        #[test]
        fn surplus_moves_in_batches_and_is_bounded() {
            let global = Global::new();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let n = GLOBAL_MAX + LOCAL_MAX + 10 * BATCH;
            let items: Vec<Arc<usize>> = (0..n).map(Arc::new).collect();
            for it in &items {
                put_into(&mut a, &global, it.clone());
            }
            assert_eq!(a.len(), LOCAL_MAX - BATCH + 1 + (n - LOCAL_MAX - 1) % BATCH);
            assert_eq!(global.lock().len() * BATCH, GLOBAL_MAX, "bounded");
            assert!(global.lock().iter().all(|b| b.len() == BATCH));
            // The batches beyond the bound were freed: only `items` holds them.
            let held = items.iter().filter(|i| Arc::strong_count(i) == 2).count();
            assert_eq!(held, a.len() + GLOBAL_MAX);
            // Thread b has none: it takes the newest batch, then works it.
            let newest = global.lock().last().unwrap().clone();
            let first = take_from(&mut b, &global).unwrap();
            assert!(Arc::ptr_eq(&first, newest.last().unwrap()));
            assert_eq!(b.len(), BATCH - 1);
            assert_eq!(global.lock().len() * BATCH, GLOBAL_MAX - BATCH);
            // a's own come back newest first.
            let last = items.last().unwrap();
            assert!(Arc::ptr_eq(&take_from(&mut a, &global).unwrap(), last));
            // Empty everywhere: nothing.
            let (mut c, empty) = (Vec::<u8>::new(), Global::new());
            assert!(take_from(&mut c, &empty).is_none());
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        let local = self.local.get_mut();
        if let Body::Built(co) = local.body.take() {
            if co.started() && !co.done() {
                // A suspended coroutine is unwound only on its home worker
                // (docs/SAFETY.md); the home worker always finishes or
                // leaks its coroutines before it lets go of them, so this is
                // a last line of defence: never unwind a stack here, on a
                // thread that may not be its home; leak it instead.
                std::mem::forget(co);
            }
        }
        // Values left by a leaked coroutine are leaked with it (they may be
        // !Send, and this may not be their thread).
        std::mem::forget(std::mem::take(&mut local.locals));
    }
}

/// The unwind that shutdown raises in a parked coroutine, at its park point.
///
/// Its payload is consumed by the home worker when the unwind reaches the
/// coroutine's entry. A coroutine that catches it (`catch_unwind`) and drops
/// it has swallowed the cancellation: dropping the payload records that, and
/// the worker leaks the coroutine at its next park instead of unwinding it
/// again forever.
pub(crate) struct Cancelled {
    pub(crate) task: Arc<Task>,
    /// Set by the worker that received the payload at the coroutine's entry.
    pub(crate) consumed: bool,
}

impl Drop for Cancelled {
    fn drop(&mut self) {
        if !self.consumed {
            self.task.cancel.store(CANCEL_SWALLOWED, Ordering::Relaxed);
        }
    }
}

/// Acts on what the worker said when it resumed the current coroutine
/// (see [`Resume`]): called right after every switch into it.
#[inline(always)]
pub(crate) fn on_resume(ctx: &WorkerCtx) {
    if ctx.told() {
        on_resume_slow(ctx);
    }
}

/// [`on_resume`] for a cancellation or a panic to re-raise.
#[cold]
#[inline(never)]
fn on_resume_slow(ctx: &WorkerCtx) {
    act_on(ctx.take_told(), ctx);
}

/// Acts on `input` (raises the cancellation or the panic it carries).
#[cold]
pub(crate) fn act_on(input: Resume, ctx: &WorkerCtx) {
    match input {
        Resume::Run => {}
        Resume::Cancel => {
            let task = ctx.current_task().clone();
            std::panic::resume_unwind(Box::new(Cancelled {
                task,
                consumed: false,
            }))
        }
        Resume::Panic(p) => std::panic::resume_unwind(p),
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("home", &self.home.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Readies a parked coroutine: Go's `ready(gp)`. The readied coroutine runs
/// next on its home worker if called there (`runnext`), otherwise it goes to
/// the home worker's inbox and that worker is woken.
///
/// # Panics
/// If the coroutine is not parked: that would be a double wake-up, a bug in
/// the caller's wait protocol.
#[inline]
pub(crate) fn ready(task: Arc<Task>) {
    if make_runnable(&task) {
        worker::ready_runnable(task);
    }
}

/// The status half of [`ready`], for a caller that queues the task itself
/// (the worker readying what its poll returned): CAS WAITING -> RUNNABLE;
/// true if the task is now the caller's to queue, false for a stale
/// wake-up (dropped).
///
/// # Panics
/// As [`ready`].
#[inline]
pub(crate) fn make_runnable(task: &Task) -> bool {
    make_runnable_uncontended(task) || ready_contended(task)
}

/// The first half of [`make_runnable`], its CAS: true if the task is now
/// the caller's to queue; false, and the caller must go on with
/// [`ready_contended`].
#[inline(always)]
pub(crate) fn make_runnable_uncontended(task: &Task) -> bool {
    task.status
        .compare_exchange(WAITING, RUNNABLE, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

/// `ready`'s CAS failed: wait out a dumper (SCANNING), or drop a stale
/// wake-up; true if the task is now ours to run.
///
/// # Panics
/// As [`ready`].
#[cold]
#[inline(never)]
pub(crate) fn ready_contended(task: &Task) -> bool {
    if task.leave_waiting(Ordering::Acquire) == WAITING {
        return true;
    }
    // Acquire above: pairs with the release in `claim_parked`.
    if task.stale_wakes.load(Ordering::Relaxed) {
        return false; // its worker resumed it without us (see `stale_wakes`)
    }
    panic!("gopark: ready of a coroutine that is not parked (double wake-up)");
}

/// Go's `gopark(unlockf, reason)`: records what the coroutine waits for
/// (`wait`, for dumps), suspends it, and the worker then calls
/// `commit(task, ctx)` off the coroutine's stack. If `commit` returns false
/// the coroutine resumes at once.
///
/// Must be called from a coroutine: `ctx` is the current worker context.
/// Costs over a bare park: building `wait` (which stays in the caller's
/// frame) and one store of a pointer to it; the worker stamps `since`.
#[inline]
pub(crate) fn park_commit<F>(ctx: &WorkerCtx, wait: &Wait<'_>, commit: F)
where
    F: FnOnce(&Arc<Task>, &WorkerCtx) -> bool,
{
    park_commit_owned(ctx, wait, by_ref(commit));
}

/// [`park_commit`] with a commit that takes the worker's task reference
/// (see [`Committed`]): a commit that publishes the task moves that
/// reference into the wait slot instead of cloning it (and the worker no
/// longer drops its own), two atomic read-modify-writes less per park.
/// Always inlined (as is [`suspend_park`]): the stack switch then sits in
/// the parking caller, whose frame holds the wait record and the commit's
/// captures; out of line it costs a call, a frame and the captures' copies
/// per park (measured 12-17 instructions per echo request when the
/// compiler's guess flipped).
#[inline(always)]
pub(crate) fn park_commit_owned<F>(ctx: &WorkerCtx, wait: &Wait<'_>, commit: F)
where
    F: FnOnce(Arc<Task>, &WorkerCtx) -> Committed,
{
    // SAFETY: the running task.
    unsafe { park_commit_running(ctx, ctx.current_task(), wait, commit) };
}

/// [`park_commit_owned`] for a caller that has the running task at hand
/// (`ctx.current_task()`, looked up before): the park then looks up
/// neither the task nor, through it, the yielder.
///
/// # Safety
/// `task` must be the running task, `ctx.current_task()`.
#[inline(always)]
pub(crate) unsafe fn park_commit_running<F>(
    ctx: &WorkerCtx,
    task: &Task,
    wait: &Wait<'_>,
    commit: F,
) where
    F: FnOnce(Arc<Task>, &WorkerCtx) -> Committed,
{
    debug_assert!(ptr::eq(task, &**ctx.current_task()));
    set_wait(task, wait);
    // SAFETY: the caller's contract.
    unsafe { suspend_park(ctx, task, commit) };
}

/// A commit of [`park_commit`]'s kind (true: parked) as one that owns the
/// task reference: parked, it drops the reference (the waker holds its own
/// clone, or none is needed); not parked, it hands it back.
#[inline(always)]
fn by_ref<F>(commit: F) -> impl FnOnce(Arc<Task>, &WorkerCtx) -> Committed
where
    F: FnOnce(&Arc<Task>, &WorkerCtx) -> bool,
{
    move |task, ctx| {
        if commit(&task, ctx) {
            Ok(())
        } else {
            Err(task)
        }
    }
}

/// Points the running task's wait record at `wait`.
#[inline]
fn set_wait(task: &Task, wait: &Wait<'_>) {
    // SAFETY: only the running coroutine writes the pointer (module docs),
    // and a dumper follows it only while the status is SCANNING, never
    // while RUNNING. `wait` and its borrows outlive the park that follows
    // (the caller's park_commit or park_while call), and the pointer is
    // followed only during a park that stored it.
    unsafe { *task.wait.get() = (wait as *const Wait<'_>).cast::<WaitRecord>() };
}

/// The park itself, leaving the wait record as it is (a repeated park of
/// the same wait, see [`park_while`]).
///
/// # Safety
/// `task` must be the running task, `ctx.current_task()`.
#[inline(always)]
unsafe fn suspend_park<F>(ctx: &WorkerCtx, task: &Task, commit: F)
where
    F: FnOnce(Arc<Task>, &WorkerCtx) -> Committed,
{
    /// # Safety
    /// `arg` points to the `ParkFrame<F>` on the suspended coroutine's stack.
    unsafe fn trampoline<F>(arg: *mut (), task: Arc<Task>, ctx: &WorkerCtx) -> CommitWord
    where
        F: FnOnce(Arc<Task>, &WorkerCtx) -> Committed,
    {
        // SAFETY: the coroutine is suspended inside `suspend_park`, so the
        // frame it points to is alive and nothing else touches it; the
        // worker runs this once per park (see `ParkFrame::f`), so `f` is
        // still there and is never used again.
        let f = unsafe { mem::ManuallyDrop::take(&mut (*arg.cast::<ParkFrame<F>>()).f) };
        // A panic of the commit is contained here, on the worker (see
        // `CommitWord`; the worker re-raises it in the coroutine).
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(task, ctx))) {
            Ok(c) => CommitWord::from_committed(c),
            Err(p) => {
                ctx.commit_panicked(p);
                CommitWord(CommitWord::PANICKED)
            }
        }
    }
    let mut frame = ParkFrame {
        commit: trampoline::<F>,
        f: mem::ManuallyDrop::new(commit),
    };
    // SAFETY: `task` is the running task (the callers' contract): only the
    // `yielder` field is read, through a raw pointer, as in
    // `WorkerCtx::current_yielder`; it is the running coroutine's yielder,
    // alive for as long as the coroutine (set by the entry function).
    let y = unsafe { &*(*task.local.get()).yielder };
    // `ParkFrame` is `repr(C)` with the commit function first: a pointer to
    // the frame points to it (see `Suspend`).
    y.suspend(Some(ptr::NonNull::from(&mut frame).cast::<CommitFn>()));
    on_resume(ctx);
}

/// A unique identifier of a coroutine, like `std::thread::ThreadId`.
///
/// ```
/// let a = gopark::spawn(|| gopark::current().unwrap().id());
/// let b = gopark::spawn(|| gopark::current().unwrap().id());
/// assert_ne!(a.join().unwrap(), b.join().unwrap());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CoroutineId(NonZeroU64);

impl CoroutineId {
    fn next() -> CoroutineId {
        /// Ids are handed to threads in batches (Go's goidcache), so spawns
        /// on different workers do not contend on one counter.
        const BATCH: u64 = 1024;
        static NEXT: AtomicU64 = AtomicU64::new(1);
        thread_local! {
            static CACHE: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
        }
        let id = CACHE.with(|c| {
            let (mut next, mut end) = c.get();
            if next == end {
                next = NEXT.fetch_add(BATCH, Ordering::Relaxed);
                end = next + BATCH;
            }
            c.set((next + 1, end));
            next
        });
        CoroutineId(NonZeroU64::new(id).expect("coroutine id overflow"))
    }

    /// The id with this number, if it can be one (not zero).
    pub(crate) fn from_u64(v: u64) -> Option<CoroutineId> {
        NonZeroU64::new(v).map(CoroutineId)
    }

    /// The id as a number (unique for the life of the process).
    ///
    /// ```
    /// let id = gopark::spawn(|| gopark::current().unwrap().id()).join().unwrap();
    /// assert!(id.as_u64() > 0);
    /// ```
    pub fn as_u64(&self) -> u64 {
        self.0.get()
    }
}

impl fmt::Debug for CoroutineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CoroutineId({})", self.0)
    }
}

impl fmt::Display for CoroutineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A handle to a coroutine, like `std::thread::Thread`: its id, its name,
/// and [`unpark`](Coroutine::unpark).
///
/// ```
/// let h = gopark::Builder::new()
///     .name("worker-1")
///     .spawn(|| gopark::current().unwrap().name().map(str::to_owned))
///     .unwrap();
/// assert_eq!(h.join().unwrap().as_deref(), Some("worker-1"));
/// ```
#[derive(Clone)]
pub struct Coroutine {
    pub(crate) task: Arc<Task>,
}

impl Coroutine {
    /// The coroutine's id.
    ///
    /// ```
    /// let h = gopark::spawn(|| gopark::current().unwrap().id());
    /// let id = h.coroutine().id();
    /// assert_eq!(h.join().unwrap(), id);
    /// ```
    pub fn id(&self) -> CoroutineId {
        self.task.id
    }

    /// The name given with [`Builder::name`](crate::Builder::name), if any.
    ///
    /// ```
    /// let h = gopark::Builder::new().name("conn").spawn(|| ()).unwrap();
    /// assert_eq!(h.coroutine().name(), Some("conn"));
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.task.name.as_deref()
    }

    /// Makes this coroutine's park token available, like
    /// `std::thread::Thread::unpark`: if it is blocked in [`park`], it
    /// resumes; otherwise its next `park` returns at once. Any thread may call
    /// this, any number of times; the coroutine is woken once per park.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// let flag = Arc::new(AtomicBool::new(false));
    /// let f = flag.clone();
    /// let h = gopark::spawn(move || {
    ///     while !f.load(Ordering::Acquire) {
    ///         gopark::park();
    ///     }
    /// });
    /// flag.store(true, Ordering::Release);
    /// h.coroutine().unpark();
    /// h.join().unwrap();
    /// ```
    pub fn unpark(&self) {
        if self.task.token.unpark() {
            ready(self.task.clone());
        }
    }
}

impl fmt::Debug for Coroutine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coroutine")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish()
    }
}

/// The coroutine this code runs in, or `None` on a plain thread.
///
/// ```
/// assert!(gopark::current().is_none());
/// let named = gopark::Builder::new()
///     .name("job")
///     .spawn(|| gopark::current().map(|c| c.name().unwrap().to_owned()))
///     .unwrap();
/// assert_eq!(named.join().unwrap().as_deref(), Some("job"));
/// ```
pub fn current() -> Option<Coroutine> {
    worker::with_current(|_, task| Coroutine { task: task.clone() })
}

/// Blocks the current coroutine until its token is made available by
/// [`Coroutine::unpark`], like `std::thread::park`; on a plain thread it is
/// `std::thread::park`. It may also return spuriously: call it in a loop
/// that checks your condition.
///
/// ```
/// let h = gopark::spawn(|| gopark::park());
/// h.coroutine().unpark();
/// h.join().unwrap();
/// ```
pub fn park() {
    park_inner(None);
}

/// Like [`park`], but returns after `dur` at the latest.
///
/// ```
/// use std::time::{Duration, Instant};
/// gopark::run(|| {
///     let t = Instant::now();
///     gopark::park_timeout(Duration::from_millis(5));
///     assert!(t.elapsed() >= Duration::from_millis(5) || cfg!(miri));
/// });
/// ```
pub fn park_timeout(dur: Duration) {
    park_inner(Some(Instant::now() + dur));
}

fn park_inner(deadline: Option<Instant>) {
    let Some(ctx) = worker::current_ctx() else {
        match deadline {
            None => thread::park(),
            Some(d) => thread::park_timeout(d.saturating_duration_since(Instant::now())),
        }
        return;
    };
    let task = ctx.current_task();
    if task.token.try_consume() {
        return;
    }
    if let Some(d) = deadline {
        if d <= Instant::now() {
            return;
        }
    }
    // Resumed without an unpark (at shutdown), or unwinding: leave PARKED.
    // (Looked up again when it runs: `task` points into the frame that
    // resumed the coroutine before this park, gone after it.)
    let _abandon = crate::sync::waiter::OnDrop::new(|| ctx.current_task().token.abandon());
    let timer = std::cell::Cell::new(None);
    let wait = Wait::plain(crate::CoroutineState::Park, deadline);
    park_commit_owned(ctx, &wait, |task, ctx| match task.token.commit_park() {
        None => Err(task),
        Some(gen) => {
            if let Some(d) = deadline {
                // The worker's reference moves into the timer.
                let action = crate::runtime::timer::Action::Unpark(task, gen);
                timer.set(Some(ctx.add_timer(d, action)));
            }
            Ok(())
        }
    });
    // Unparked before the deadline: free the timer (and the task reference
    // it holds) now. If it fired instead, this finds nothing.
    if let Some(h) = timer.get() {
        ctx.shared.cancel_timer(h);
    }
}

/// Gives up the worker to the other runnable coroutines, like Go's
/// `runtime.Gosched`: the caller goes behind every coroutine that is ready to
/// run. On a plain thread it is `std::thread::yield_now`.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// let rt = gopark::Runtime::builder().workers(1).build().unwrap();
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let (l1, l2) = (log.clone(), log.clone());
/// rt.run(move || {
///     let a = gopark::spawn(move || for _ in 0..3 { l1.lock().unwrap().push('a'); gopark::yield_now(); });
///     let b = gopark::spawn(move || for _ in 0..3 { l2.lock().unwrap().push('b'); gopark::yield_now(); });
///     a.join().unwrap();
///     b.join().unwrap();
/// });
/// assert_eq!(log.lock().unwrap().iter().collect::<String>(), "ababab");
/// ```
pub fn yield_now() {
    match worker::current_ctx() {
        Some(ctx) => {
            // SAFETY: as in park_commit: the yielder of the running coroutine.
            let y = unsafe { &*ctx.current_yielder() };
            y.suspend(None);
            on_resume(ctx);
        }
        None => thread::yield_now(),
    }
}

/// Who waits for a one-shot event: a parked coroutine or a blocked thread.
///
/// The wait structure that holds a `Waiter` owns the right to wake it; waking
/// consumes it, so each wait is woken exactly once.
pub(crate) enum Waiter {
    /// A coroutine parked through [`park_commit`].
    Co(Arc<Task>),
    /// A plain thread blocked in [`block_on`].
    Thread(Arc<ThreadWaiter>),
}

/// A plain thread's side of a one-shot wait.
pub(crate) struct ThreadWaiter {
    thread: Thread,
    woken: std::sync::atomic::AtomicBool,
}

impl Waiter {
    /// Wakes the waiter (readies the coroutine, or unblocks the thread).
    pub(crate) fn wake(self) {
        match self {
            Waiter::Co(task) => ready(task),
            Waiter::Thread(t) => {
                t.woken.store(true, Ordering::Release);
                t.thread.unpark();
            }
        }
    }
}

/// Parks the current coroutine while `waiting()` holds, for a wait whose
/// waker is already registered: a resume that finds `waiting()` still true
/// was spurious (see `Task::stale_wakes`), and the coroutine parks again,
/// as `wait` (the wait it repeats).
/// The waker must make `waiting()` false before it readies the coroutine.
#[inline]
pub(crate) fn park_while(ctx: &WorkerCtx, wait: &Wait<'_>, waiting: impl Fn() -> bool) {
    while waiting() {
        let task = ctx.current_task();
        set_wait(task, wait);
        // SAFETY: the running task.
        unsafe { suspend_park(ctx, task, by_ref(|_, _| waiting())) };
    }
}

/// Blocks the current coroutine or thread until the waiter handed to
/// `register` is woken. `register` runs with the caller already off its
/// stack (in a coroutine) and returns false if there is nothing to wait for
/// (the waiter is then dropped, never woken). `wait` is what a dump shows.
pub(crate) fn block_on<F>(wait: &Wait<'_>, register: F)
where
    F: FnOnce(Waiter) -> bool,
{
    match worker::current_ctx() {
        Some(ctx) => park_commit(ctx, wait, move |task, _| register(Waiter::Co(task.clone()))),
        None => {
            let w = Arc::new(ThreadWaiter {
                thread: thread::current(),
                woken: std::sync::atomic::AtomicBool::new(false),
            });
            if register(Waiter::Thread(w.clone())) {
                while !w.woken.load(Ordering::Acquire) {
                    thread::park();
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// What building a task record needs: a runtime (kept alive by the
    /// caller), a reserved stack, a spawn site, the runtime's shared part
    /// and its reference count before any task holds it.
    fn fixture() -> (
        crate::Runtime,
        Stack,
        &'static Location<'static>,
        Arc<Shared>,
        usize,
    ) {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let stack = crate::stack::reserve(64 * 1024).unwrap();
        let shared = rt.shared().clone();
        let before = Arc::strong_count(&shared);
        (rt, stack, Location::caller(), shared, before)
    }

    /// `Task::new_arc` writes the record into a fresh `Arc` through a raw
    /// pointer: the result must be the record `Task::new` builds, in an
    /// `Arc` that is unique and drops it (and only it) once.
    #[test]
    fn new_arc_builds_the_record_in_a_unique_arc() {
        let (_rt, stack, at, shared, before) = fixture();
        let parent = Some(CoroutineId::next());
        let t = Task::new_arc(Some("n".into()), &stack, shared.clone(), at, parent);
        assert_eq!(Arc::strong_count(&t), 1);
        assert_eq!(Arc::weak_count(&t), 0);
        assert_eq!(t.name.as_deref(), Some("n"));
        assert_eq!(t.stack_size, stack.size());
        assert_eq!(
            t.stack_limit.load(Ordering::Relaxed),
            corosensei::stack::Stack::limit(&stack).get()
        );
        assert!(Arc::ptr_eq(&t.shared, &shared));
        assert_eq!(t.home.load(Ordering::Relaxed), NO_HOME);
        assert_eq!(t.status.load(Ordering::Relaxed), RUNNABLE);
        assert_eq!(t.parent, parent);
        assert!(std::ptr::eq(t.spawned_at, at));
        assert!(!t.join.is_done());
        let next = Task::new_arc(None, &stack, shared.clone(), at, None);
        assert!(next.id.as_u64() > t.id.as_u64());
        assert_eq!(Arc::strong_count(&shared), before + 2);
        drop((t, next));
        assert_eq!(Arc::strong_count(&shared), before);
    }

    /// A finished task's allocation holds a new task, built fresh, after
    /// the old one was dropped (its runtime let go of); shared records are
    /// never reused.
    #[test]
    fn recycle_reuses_only_unique_records_and_drops_the_old_task() {
        let (_rt, stack, at, shared, before) = fixture();
        // Run on a thread of its own: its spare list is this test's alone.
        std::thread::scope(|s| {
            s.spawn(|| {
                let t = Task::new_arc(Some("old".into()), &stack, shared.clone(), at, None);
                t.status.store(WAITING, Ordering::Relaxed);
                t.home.store(3, Ordering::Relaxed);
                let old = Arc::as_ptr(&t);
                let old_id = t.id;
                let kept = spare::local_len();
                Task::recycle(t);
                assert_eq!(spare::local_len(), kept + 1, "kept as a spare");
                assert_eq!(
                    Arc::strong_count(&shared),
                    before,
                    "the old task was dropped"
                );
                let n = Task::new_arc(Some("new".into()), &stack, shared.clone(), at, None);
                assert_eq!(spare::local_len(), kept, "the spare was taken");
                assert_eq!(Arc::as_ptr(&n), old, "the spare allocation was reused");
                assert_eq!(n.name.as_deref(), Some("new"));
                assert!(n.id.as_u64() > old_id.as_u64());
                assert_eq!(n.status.load(Ordering::Relaxed), RUNNABLE);
                assert_eq!(n.home.load(Ordering::Relaxed), NO_HOME);
                assert!(!n.join.is_done());
                assert_eq!((Arc::strong_count(&n), Arc::weak_count(&n)), (1, 0));

                // Another strong reference: only this one is dropped.
                let other = n.clone();
                Task::recycle(n);
                assert_eq!(spare::local_len(), kept, "not kept");
                assert_eq!(other.name.as_deref(), Some("new"), "still alive");
                let m = Task::new_arc(None, &stack, shared.clone(), at, None);
                assert_ne!(Arc::as_ptr(&m), Arc::as_ptr(&other));
                // A weak reference: not reused either, and it sees the end.
                let weak = Arc::downgrade(&other);
                let kept = spare::local_len();
                Task::recycle(other);
                assert_eq!(spare::local_len(), kept, "not kept");
                assert!(weak.upgrade().is_none());
                let k = Task::new_arc(None, &stack, shared.clone(), at, None);
                assert_ne!(k.as_ref() as *const Task, weak.as_ptr());
                drop((m, k));
            });
        });
        assert_eq!(Arc::strong_count(&shared), before);
    }
}
