//! A worker thread: the scheduling loop (Go's `schedule`/`findRunnable`),
//! running coroutines, and sleeping when there is nothing to do.
//!
//! ## find_runnable order
//! 1. due timers are fired (their coroutines become runnable);
//! 2. every 61st round, for fairness: one coroutine from the global queue,
//!    else the inbox moved into the run queue, a non-blocking netpoll, and
//!    one unstarted coroutine from the local spawn queue;
//! 3. `runnext`, the local run queue, the inbox, the local spawn queue, the
//!    global queue;
//! 4. stealing unstarted coroutines from more loaded workers (spinning: at
//!    most half of the busy workers spin, as in Go);
//! 5. sleep: join the idle list (with more than one worker), re-check, then
//!    block in the worker's own poller shard with the timeout of the
//!    worker's next timer.
//!
//! ## Fields
//! [`WorkerCtx`] lives on the worker thread's stack for the thread's whole
//! life; everything in it but `shared` is touched only by that thread (cells,
//! no locks). Code inside a coroutine reaches it through the thread-local
//! `CTX`, set once per thread; since a started coroutine never leaves its
//! thread, that lookup is valid before and after any park.

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use corosensei::CoroutineResult;

use self::runq::RunQueue;
use super::timer::{Action, Handle};
use super::{Shared, WorkerShared};
use crate::coroutine::{
    Body, Cancelled, Resume, Task, Yielder, CANCEL_DELIVERED, CANCEL_NONE, CANCEL_REQUESTED,
    CANCEL_SWALLOWED, NO_HOME, RUNNABLE, RUNNING, WAITING,
};
use crate::stack;

mod runq;
mod shutdown;
#[cfg(all(test, not(loom)))]
mod tests;
pub(crate) use shutdown::cancel_queued;

/// `pop` that first checks emptiness with plain loads: crossbeam's `pop` on
/// an empty queue costs tens of instructions (about 80 per yield for the
/// inbox and global queue, measured with callgrind), `is_empty` a few.
trait QuickPop<T> {
    fn quick_pop(&self) -> Option<T>;
}

impl<T> QuickPop<T> for crossbeam_queue::SegQueue<T> {
    #[inline]
    fn quick_pop(&self) -> Option<T> {
        if self.is_empty() {
            None
        } else {
            self.pop()
        }
    }
}

impl<T> QuickPop<T> for crossbeam_queue::ArrayQueue<T> {
    #[inline]
    fn quick_pop(&self) -> Option<T> {
        if self.is_empty() {
            None
        } else {
            self.pop()
        }
    }
}

/// A flag of `WorkerCtx::flags`: the worker is spinning (Go's spinning M:
/// looking for work to steal, counted in `Shared::nspinning`).
const SPINNING: u8 = 1;
/// A flag of `WorkerCtx::flags`, set once a resume may have more to say
/// than `Resume::Run`: when the worker enters its shutdown (before any
/// coroutine of it can be cancelled: only the shutdown requests and
/// delivers cancellations), or when a commit's panic is left in a task
/// (`pending_panic`). Until then
/// [`resume_input`](WorkerCtx::resume_input) looks at no task, and no task
/// of this worker can have swallowed a cancellation.
const CAREFUL: u8 = 2;

/// How often (in scheduling rounds) the fairness checks run (Go: 61).
const FAIRNESS_TICK: u32 = 61;
/// Rounds of stealing attempts before a spinning worker gives up.
const STEAL_ROUNDS: usize = 4;
/// How long a thief leaves an awake worker's only queued coroutine to it
/// before taking it (Go's `stealRunNextG` waits 3 us for the same reason;
/// 3 us left 13-15% of the children of a spawn-then-connect-then-wait
/// loop to the thief here, 20 us none): see [`WorkerCtx::steal`].
const STEAL_GRACE: Duration = Duration::from_micros(20);

/// The spin before a sleep after quick hand-offs, shared by the workers
/// (`WorkerCtx::spin_for_handoff`) and the blocking pool's threads
/// (`Pool::wait_idle`): a sleep (or a pool thread's wait for a job) that
/// another thread ended within this many nanoseconds counts as a quick
/// hand-off (the kernel's wake-up alone takes 25-50 us on a VM whose idle
/// CPUs halt).
pub(crate) const HANDOFF_QUICK_NS: u64 = 200_000;

/// Quick hand-offs in a row after which a thread spins before it sleeps.
pub(crate) const HANDOFF_STREAK: u8 = 2;

/// The longest spin before a sleep.
pub(crate) const HANDOFF_SPIN: Duration = Duration::from_micros(20);

/// Spin hints between two looks at the queues while spinning.
pub(crate) const SPIN_HINTS: u32 = 30;

thread_local! {
    /// The worker context of this thread (null on plain threads). Set once
    /// when the worker starts, cleared when it exits.
    static CTX: Cell<*const WorkerCtx> = const { Cell::new(ptr::null()) };
}

/// The worker context of this thread, if it is a worker thread.
#[inline]
pub(crate) fn worker_here() -> Option<&'static WorkerCtx> {
    let p = CTX.with(Cell::get);
    // SAFETY: CTX is non-null only while the WorkerCtx it points to is alive:
    // `run` sets it after creating the context on its stack and clears it
    // before the context is dropped; code on this thread (coroutines
    // included) only runs inside that window.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Operations a coroutine may complete without parking before
/// [`coop_tick`] makes it yield (tokio's coop budget).
pub(crate) const COOP_BUDGET: u32 = 128;

/// Spends one unit of the running coroutine's cooperative budget; when it
/// is spent, yields so the other coroutines, timers and the poller of this
/// worker get their turn. Called by gopark operations that can complete
/// without parking (socket reads/writes, datagrams, accepts, channel
/// sends/receives and selects, lock and semaphore acquisitions) before they
/// do their work. The budget is refilled whenever the
/// worker resumes the coroutine. Does nothing on plain threads.
#[inline]
pub(crate) fn coop_tick() {
    if let Some(ctx) = current_ctx() {
        coop_tick_in(ctx);
    }
}

/// [`coop_tick`] for a caller that already looked up the context of the
/// running coroutine (one thread-local lookup less).
#[inline]
pub(crate) fn coop_tick_in(ctx: &WorkerCtx) {
    // Decrement, then test for zero (two instructions on the hot path). A
    // resume refills the budget; a tick that could not yield (the
    // coroutine is unwinding) wraps it around, and the next resume refills
    // it again.
    let left = ctx.budget.get().wrapping_sub(1);
    ctx.budget.set(left);
    if left == 0 {
        coop_yield();
    }
}

/// [`coop_tick`], returning the running coroutine's id (0 on a plain
/// thread): `sync::Mutex::lock` records its holder with it, at the cost of
/// two loads over the tick.
#[inline]
pub(crate) fn coop_tick_id() -> u64 {
    match current_ctx() {
        Some(ctx) => {
            coop_tick_in(ctx);
            // The same coroutine after a yield: it never changes workers.
            ctx.current_task().id.as_u64()
        }
        None => 0,
    }
}

/// The running coroutine's id, 0 on a plain thread.
#[inline]
pub(crate) fn current_id() -> u64 {
    current_ctx().map_or(0, |ctx| ctx.current_task().id.as_u64())
}

#[cold]
#[inline(never)]
fn coop_yield() {
    // A coroutine unwinding (a panic, or a cancellation at shutdown) must
    // not be suspended: a cancelling resume would panic inside the unwind.
    if !std::thread::panicking() {
        crate::coroutine::yield_now();
    }
}

/// The worker context if the caller runs inside a coroutine.
#[inline]
pub(crate) fn current_ctx() -> Option<&'static WorkerCtx> {
    worker_here().filter(|ctx| ctx.in_coroutine())
}

/// Notes that the running coroutine (if any) accepted a connection: from now
/// on its children are spread by load alone (`Shared::place`). One store.
pub(crate) fn note_accept() {
    if let Some(ctx) = current_ctx() {
        // SAFETY: the running task's owner-only part, touched on its own
        // worker thread while it runs (coroutine module docs).
        unsafe { ctx.current_task().local().accepts = true };
    }
}

/// Calls `f` with the worker context and the running task, if any.
pub(crate) fn with_current<R>(f: impl FnOnce(&WorkerCtx, &Arc<Task>) -> R) -> Option<R> {
    let ctx = current_ctx()?;
    Some(f(ctx, ctx.current_task()))
}

/// A worker's private context (see the module docs).
pub(crate) struct WorkerCtx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) index: usize,
    /// `&shared.workers[index]`, looked up once: [`shared_part`] is on
    /// every path of the loop, and the indexing costs a bounds check and a
    /// multiplication each time.
    ///
    /// [`shared_part`]: WorkerCtx::shared_part
    me: ptr::NonNull<WorkerShared>,
    /// The running task: a bitwise copy of the `Arc` that `execute` holds
    /// (no count of its own: valid while the task runs, kept alive by
    /// `execute`, and never dropped), `None` between resumes. A copy rather
    /// than a pointer to `execute`'s `Arc`: that local would then live in
    /// memory, reloaded after every call of the loop, and every use of
    /// `current_task` would take one load more.
    current: UnsafeCell<Option<ManuallyDrop<Arc<Task>>>>,
    runnext: Cell<Option<Arc<Task>>>,
    runq: RunQueue,
    /// Rounds of the scheduling loop left until the next fairness round
    /// (counts down from [`FAIRNESS_TICK`]: a decrement and a test for
    /// zero per round, where a count up took a divisibility test more).
    tick: Cell<u32>,
    /// The running coroutine's cooperative budget (see [`coop_tick`]).
    budget: Cell<u32>,
    /// [`SPINNING`] and [`CAREFUL`], in one byte so that `execute` tests
    /// both with one compare.
    flags: Cell<u8>,
    /// More than one worker in the runtime (see `idle`).
    multi: bool,
    /// Set when the worker enters its shutdown: every coroutine it resumes
    /// from then on is cancelled first.
    shutting_down: Cell<bool>,
    rng: Cell<u32>,
    /// The coroutine that yielded last, queued behind the others: when its
    /// turn comes an unstarted coroutine goes first (see `requeue_yielded`).
    yielded: Cell<*const Task>,
    /// How many sleeps in a row ended quickly by another thread's wake-up
    /// (a hand-off: a coroutine readied or placed here from elsewhere);
    /// from [`HANDOFF_STREAK`] on, the worker spins before it sleeps
    /// (see [`WorkerCtx::spin_for_handoff`]).
    handoffs: Cell<u8>,
    /// Set while `said` holds what the worker tells the coroutine it
    /// resumes, other than `Resume::Run` (see `Resume`): the coroutine
    /// takes it right after the switch.
    told: Cell<bool>,
    said: Cell<Resume>,
    /// The payload of a park's commit that panicked, from the commit
    /// function to `execute` (see `CommitWord`).
    commit_panic: Cell<Option<Box<dyn Any + Send>>>,
    /// Scratch buffers reused across rounds.
    due: RefCell<Vec<Action>>,
    /// Stale wake-ups a poll returned, dropped after it (see `Readier`).
    stale: RefCell<Vec<Arc<Task>>>,
}

impl WorkerCtx {
    fn new(shared: Arc<Shared>, index: usize) -> WorkerCtx {
        let me = ptr::NonNull::from(&shared.workers[index]);
        let multi = shared.workers.len() > 1;
        WorkerCtx {
            shared,
            index,
            me,
            current: UnsafeCell::new(None),
            runnext: Cell::new(None),
            runq: RunQueue::with_capacity(256),
            tick: Cell::new(FAIRNESS_TICK),
            budget: Cell::new(COOP_BUDGET),
            flags: Cell::new(0),
            multi,
            shutting_down: Cell::new(false),
            rng: Cell::new(0x9E37_79B9 ^ (index as u32).wrapping_mul(0x85EB_CA6B) | 1),
            yielded: Cell::new(ptr::null()),
            handoffs: Cell::new(0),
            told: Cell::new(false),
            said: Cell::new(Resume::Run),
            commit_panic: Cell::new(None),
            due: RefCell::new(Vec::new()),
            stale: RefCell::new(Vec::new()),
        }
    }

    /// This worker's shared part.
    #[inline]
    pub(crate) fn shared_part(&self) -> &WorkerShared {
        // SAFETY: `me` points into `shared.workers`, a boxed slice that is
        // never resized or moved, and `self.shared` keeps it alive for as
        // long as `self` (see `new`).
        unsafe { self.me.as_ref() }
    }

    /// The running task. Only valid inside a coroutine, and only until it
    /// next parks or yields: the reference points into this context, which
    /// holds the next coroutine's task after that (clone the `Arc` to keep
    /// it).
    #[inline]
    pub(crate) fn current_task(&self) -> &Arc<Task> {
        debug_assert!(self.in_coroutine());
        // SAFETY: `current` is written only by `execute` on this thread, on
        // the worker's side of a resume (not while the caller, a coroutine
        // of this thread, runs); inside a coroutine it is `Some`, a copy of
        // the `Arc` that `execute` holds for as long as the task runs.
        unsafe { (*self.current.get()).as_deref().unwrap_unchecked() }
    }

    /// Sets or clears (`None`) the running task.
    #[inline(always)]
    fn set_current(&self, task: Option<&Arc<Task>>) {
        // SAFETY: only `execute` calls this, on the worker's side of a
        // resume: no reference from `current_task` is in use (a suspended
        // coroutine does not use one across its park, see there). The copy
        // is never dropped (`ManuallyDrop`), and `execute` clears it before
        // its own `Arc` can go.
        unsafe { *self.current.get() = task.map(|t| ManuallyDrop::new(ptr::read(t))) };
    }

    /// The running coroutine's yielder.
    #[inline]
    pub(crate) fn current_yielder(&self) -> *const Yielder {
        let task = self.current_task();
        // SAFETY: only the `yielder` field is read, through a raw pointer, so
        // no reference aliases the `body` field that `execute` is borrowing; the
        // running task is owned by this thread (coroutine module docs).
        unsafe { (*task.local.get()).yielder }
    }

    /// True if the worker told the running coroutine, as it resumed it,
    /// something other than `Resume::Run` (see `Resume`).
    #[inline(always)]
    pub(crate) fn told(&self) -> bool {
        self.told.get()
    }

    /// What the worker told the running coroutine (once).
    pub(crate) fn take_told(&self) -> Resume {
        self.told.set(false);
        self.said.replace(Resume::Run)
    }

    /// Leaves `input` for the coroutine about to be resumed (see `Resume`);
    /// nothing may resume another coroutine before it.
    #[inline(always)]
    fn tell(&self, input: Resume) {
        if !matches!(input, Resume::Run) {
            self.said.set(input);
            self.told.set(true);
        }
    }

    /// Arms a timer on this worker; cancel it with `Shared::cancel_timer`.
    pub(crate) fn add_timer(&self, when: Instant, action: Action) -> Handle {
        let nanos = self.shared.nanos(when);
        let (key, _) = self.shared_part().timers.add(nanos, action);
        Handle {
            worker: self.index,
            key,
        }
    }

    /// Go's `runqput(next=true)`: `task` runs next, the previous `runnext`
    /// goes to the back of the run queue (see `demote`).
    fn put_runnext(&self, task: Arc<Task>) {
        if let Some(old) = self.runnext.replace(Some(task)) {
            self.demote(old);
        }
    }

    /// True if `runnext` holds a coroutine: a load and a test, where
    /// `take` also stores `None` back when it is empty.
    #[inline(always)]
    fn has_runnext(&self) -> bool {
        // SAFETY: a plain read; no reference into the cell is live (`Cell`
        // hands out none) and only this thread touches it.
        unsafe { (*self.runnext.as_ptr()).is_some() }
    }

    /// Queues a coroutine displaced from `runnext`: a started one at the
    /// back of the run queue, an unstarted one (a child spawned here) in the
    /// spawn queue, where idle workers can still take it.
    fn demote(&self, task: Arc<Task>) {
        if task.home.load(Ordering::Relaxed) == NO_HOME {
            if self.shared.push_spawnq(self.index, task) {
                self.shared.wakep();
            }
        } else {
            self.runq.push_back(task);
        }
    }

    /// True while a coroutine runs on this worker (the caller is in it).
    #[inline]
    pub(crate) fn in_coroutine(&self) -> bool {
        // SAFETY: a plain read of a field written only on this thread, by
        // `execute`, which is not running at the same time as the caller.
        unsafe { (*self.current.get()).is_some() }
    }

    #[inline]
    fn spinning(&self) -> bool {
        self.flags.get() & SPINNING != 0
    }

    #[inline]
    fn set_spinning(&self) {
        self.flags.set(self.flags.get() | SPINNING);
    }

    /// Clears `SPINNING`; true if it was set.
    #[inline]
    fn take_spinning(&self) -> bool {
        let f = self.flags.get();
        self.flags.set(f & !SPINNING);
        f & SPINNING != 0
    }

    #[inline]
    fn careful(&self) -> bool {
        self.flags.get() & CAREFUL != 0
    }

    fn set_careful(&self) {
        self.flags.set(self.flags.get() | CAREFUL);
    }

    pub(crate) fn next_rand(&self) -> u32 {
        // xorshift32
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng.set(x);
        x
    }

    // ---- the scheduling loop -------------------------------------------

    fn find_runnable(&self) -> Option<Arc<Task>> {
        let me = self.shared_part();
        loop {
            // Also the check for the shutdown (see `run_timers`).
            if !self.run_timers() {
                return None;
            }

            // Counted after the call: the new count is then not kept across
            // it, and the count is a decrement in memory and a branch.
            let tick = self.tick.get() - 1;
            self.tick.set(tick);
            if tick == 0 {
                self.tick.set(FAIRNESS_TICK);
                // Keep the cached clock fresh on a worker that never idles
                // and has no timer (one clock read per 61 rounds).
                me.monitor.set_clock(self.shared.now());
                if let Some(t) = self.shared.global.quick_pop() {
                    return Some(t);
                }
                let q = &self.runq;
                if let Some(rn) = self.runnext.take() {
                    q.push_back(rn);
                }
                while let Some(t) = me.inbox.quick_pop() {
                    q.push_back(t);
                }
                // A worker that always has coroutines to run still looks
                // at its own shard: its connections are not starved by its
                // run queue.
                if self.shared.poller.has_fds(self.index) {
                    self.netpoll(Some(Duration::ZERO));
                }
                self.publish_runq();
                // And one unstarted coroutine: below, the spawn queue is
                // only reached when nothing else is runnable, which under a
                // ping-pong (each side readies the other as `runnext`) or a
                // run queue that never empties is never.
                if let Some(t) = me.spawnq.quick_pop() {
                    return Some(t);
                }
            }

            if self.has_runnext() {
                return self.runnext.take();
            }
            if let Some(t) = self.pop_runq() {
                return Some(t);
            }
            if let Some(t) = me.inbox.quick_pop() {
                return Some(t);
            }
            if let Some(t) = me.spawnq.quick_pop() {
                return Some(t);
            }
            if let Some(t) = self.shared.global.quick_pop() {
                return Some(t);
            }
            // No non-blocking netpoll here (Go's step before stealing):
            // every worker blocks in its own shard when idle, and a blocking
            // poll with events pending returns at once, so the look would
            // only add an empty epoll_wait per idle round (Go polls here
            // because its idle M may not be the one that blocks in netpoll).
            if let Some(t) = self.steal() {
                return Some(t);
            }
            self.idle();
        }
    }

    /// The front of the run queue; when that is the coroutine that yielded
    /// last, an unstarted coroutine (own spawn queue, else the global queue)
    /// goes first, so a yield loop cannot starve new coroutines. Unstarted
    /// coroutines wait in the spawn queue until then, where thieves see them.
    fn pop_runq(&self) -> Option<Arc<Task>> {
        let t = self.runq.pop_front()?;
        if ptr::eq(Arc::as_ptr(&t), self.yielded.get()) {
            self.yielded.set(ptr::null());
            let fresh = self
                .shared_part()
                .spawnq
                .quick_pop()
                .or_else(|| self.shared.global.quick_pop());
            if let Some(fresh) = fresh {
                self.runq.push_front(t);
                return Some(fresh);
            }
        }
        Some(t)
    }

    /// Publishes the length of the run queue (with `runnext`) for the
    /// metrics. Not on every resume: every 61 rounds, and after a sleep.
    fn publish_runq(&self) {
        let rn = self.runnext.take();
        let n = self.runq.len() + usize::from(rn.is_some());
        self.runnext.set(rn);
        self.shared_part().metrics.runq.set(n as u64);
    }

    /// Fires due timers; false when the runtime shuts down. One atomic load
    /// and a compare when no timer is armed: the shutdown shows in the same
    /// word (`Timers::stop`, done before the flag is set), so the flag is
    /// looked at only when that word is not `u64::MAX`.
    #[inline(always)]
    fn run_timers(&self) -> bool {
        let next = self.shared_part().timers.next();
        if next == u64::MAX {
            return true;
        }
        self.run_timers_armed(next)
    }

    /// [`run_timers`](Self::run_timers) with a timer armed or the shutdown
    /// begun.
    #[inline(never)]
    fn run_timers_armed(&self, next: u64) -> bool {
        // Acquire: pairs with the flag's store, after which the workers
        // leave their loops (`Runtime::drop`).
        if self.shared.shutdown.load(Ordering::Acquire) {
            return false;
        }
        let timers = &self.shared_part().timers;
        let now = self.shared.now();
        self.shared_part().monitor.set_clock(now);
        if next > now {
            return true;
        }
        let mut due = std::mem::take(&mut *self.due.borrow_mut());
        timers.take_due(now, &mut due);
        for a in due.drain(..) {
            a.fire();
        }
        *self.due.borrow_mut() = due;
        true
    }

    /// Polls this worker's poller shard and readies what it returns.
    fn netpoll(&self, timeout: Option<Duration>) -> usize {
        let n = self.poll_ready(timeout);
        let m = &self.shared_part().metrics;
        m.netpoll_calls.inc();
        m.netpoll_events.add(n as u64);
        n
    }

    /// Polls this worker's poller shard (blocking up to `timeout`) and
    /// readies the coroutines the poll returns as it finds them, as one
    /// batch (Go's `injectglist`; see [`Readier`]). Returns how many the
    /// poll returned (stale wake-ups included).
    #[inline(never)]
    fn poll_ready(&self, timeout: Option<Duration>) -> usize {
        let mut sink = Readier {
            me: self.me.as_ptr(),
            ctx: self,
            // SAFETY: nothing but the filler touches the run queue until the
            // sink is dropped: the poll calls only the sink and the
            // PollDescs' unblocking (atomics), and the sink's other paths
            // (`send_home`, `keep_stale`) touch no run queue of this worker
            // and run no user code (see `Readier`).
            fill: unsafe { self.runq.filler() },
            other: 0,
        };
        self.shared.poller.poll(self.index, timeout, &mut sink);
        let polled = sink.fill.pushed() + sink.other;
        drop(sink);
        if sink_had_stale(self) {
            drop_stale(self);
        }
        polled
    }

    /// Steals unstarted coroutines from other workers (Go's `stealWork`),
    /// but only from workers more loaded than this one (`runtime::Load`):
    /// placement already put each coroutine on the least-loaded worker and
    /// woke it, so taking from an equally loaded worker would only
    /// unbalance the two.
    fn steal(&self) -> Option<Arc<Task>> {
        let n = self.shared.workers.len();
        if n == 1 {
            return None;
        }
        if !self.spinning() {
            let busy = n - self.shared.nidle.load(Ordering::SeqCst);
            if 2 * self.shared.nspinning.load(Ordering::SeqCst) >= busy {
                return None;
            }
            self.set_spinning();
            self.shared.nspinning.fetch_add(1, Ordering::SeqCst);
        }
        let me = self.shared_part();
        for _ in 0..STEAL_ROUNDS {
            let mine = me.load.get();
            let start = self.next_rand() as usize % n;
            for k in 0..n {
                let v = (start + k) % n;
                if v == self.index {
                    continue;
                }
                let vs = &self.shared.workers[v];
                let theirs = vs.load.get();
                if theirs <= mine {
                    continue;
                }
                let victim = &vs.spawnq;
                if victim.len() == 1 && !vs.sleep.is_asleep() {
                    // Most likely a child its spawner will wait for at once
                    // (a join, a channel, a connection's other end): the
                    // victim runs it when the spawner parks, with no
                    // wake-up between them, where taken here each message
                    // between the two would cross threads. Leave it a
                    // moment first.
                    let t0 = Instant::now();
                    while victim.len() == 1 && t0.elapsed() < STEAL_GRACE {
                        std::hint::spin_loop();
                    }
                }
                // The charge of `first` moves when it starts (`execute`).
                let Some(first) = victim.pop() else { continue };
                // Take up to half of what is left, as Go's runqsteal does,
                // but not so much that this worker ends up more loaded.
                let extra = (victim.len() / 2).min((theirs - mine).saturating_sub(2) / 2);
                let mut moved = 0;
                for _ in 0..extra {
                    let Some(t) = victim.pop() else { break };
                    // SAFETY: an unstarted task popped from a queue is owned
                    // by its popper (coroutine module docs).
                    unsafe { t.local().charge = self.index };
                    // The load moves before the push: once queued here,
                    // another thief may start and end the task at once.
                    me.load.add(1);
                    vs.load.sub(1);
                    moved += 1;
                    if let Err(t) = me.spawnq.push(t) {
                        self.shared.global.push(t);
                    }
                }
                me.metrics.steals.add(1 + moved as u64);
                return Some(first);
            }
            if let Some(t) = self.shared.global.pop() {
                return Some(t);
            }
        }
        None
    }

    /// Leaves the spinning state after finding work (Go's `resetspinning`):
    /// if this was the last spinner, wake another worker in case there is
    /// more work.
    fn reset_spinning(&self) {
        if self.take_spinning() && self.shared.nspinning.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.shared.wakep();
        }
    }

    /// Spins up to [`HANDOFF_SPIN`] before a sleep, while hand-offs from
    /// other threads keep arriving quickly (`handoffs`): a coroutine readied
    /// here by a coroutine of another worker, by a blocking-pool thread or a
    /// plain thread, or one placed here. Asleep, each such hand-off costs
    /// the waker an eventfd write and this worker the kernel's wake-up of
    /// its thread (25-50 us on a VM whose idle CPUs halt); spinning, the
    /// worker stays `AWAKE`, so the waker's `SleepState::wake` is one load.
    /// Readiness of this worker's own descriptors is looked at without
    /// blocking every 16 rounds, its timers on every clock read. Returns
    /// true when something to run appeared.
    ///
    /// Sleeps that end by readiness or a timer never start a streak: a
    /// server whose connections live on their worker sleeps as before, and
    /// its CPU stays with whatever else runs on the machine (a spin on
    /// every idle entry costs a co-located client; measured, see
    /// docs/PERFORMANCE.md).
    #[cold]
    fn spin_for_handoff(&self) -> bool {
        let sh = &*self.shared;
        let me = self.shared_part();
        let start = sh.now();
        let mut round = 0u32;
        loop {
            if !me.inbox.is_empty()
                || !me.spawnq.is_empty()
                || !sh.global.is_empty()
                || sh.shutdown.load(Ordering::Relaxed)
            {
                return true;
            }
            round = round.wrapping_add(1);
            if round % 16 == 0 {
                if sh.poller.has_fds(self.index) && self.netpoll(Some(Duration::ZERO)) > 0 {
                    return true;
                }
                let now = sh.now();
                if me.timers.next() <= now {
                    return true;
                }
                if now.saturating_sub(start) >= HANDOFF_SPIN.as_nanos() as u64 {
                    return false;
                }
            }
            for _ in 0..SPIN_HINTS {
                std::hint::spin_loop();
            }
        }
    }

    /// Goes to sleep until woken (see `sm::sleep` for the handshake).
    fn idle(&self) {
        let sh = &*self.shared;
        let me = self.shared_part();
        if self.take_spinning() {
            let last = sh.nspinning.fetch_sub(1, Ordering::SeqCst) == 1;
            // Go: the last spinner re-checks everything after dropping the
            // spinning state, or a wakep that saw it spinning would be lost.
            if last && sh.has_visible_work_of(Some(self.index)) {
                return;
            }
        }
        if self.handoffs.get() >= HANDOFF_STREAK {
            me.metrics.spins.inc();
            if self.spin_for_handoff() {
                return;
            }
            me.metrics.spins_empty.inc();
            // Nothing came: hand-offs no longer arrive quickly. Sleep, and
            // spin again only after another streak of quick wake-ups.
            self.handoffs.set(0);
        }
        // The idle set only serves `wakep`, which wakes an idle worker for
        // work that was not handed to a worker of its own. With one worker
        // there is no such work: whoever queues work for it wakes it
        // (`submit`, `ready_runnable`, a timer armed from another thread),
        // and the other calls of `wakep` come from the worker itself while
        // it runs. So a lone worker stays out of it: two read-modify-writes
        // on entry and two on exit less per sleep.
        let listed = self.multi;
        if listed {
            sh.push_idle(self.index);
        }
        // Every worker sleeps in its own poller shard: readiness for its
        // coroutines, a wake-up for work handed to it and its next timer
        // all end the same wait.
        me.sleep.prepare(true);
        // `woken_spinning`: a wakep that popped us off the idle list before
        // `prepare` found us AWAKE and did not wake us; its work may be gone
        // already, but the spinning role it handed us must not sleep (it
        // would hold nspinning at 1 and mute every later wakep).
        // No clock read unless a timer is armed (the common idle entry of a
        // busy server has none); a worker that goes to sleep reads it anyway,
        // its idle time starts there.
        let next = me.timers.next();
        let armed = (next != u64::MAX).then(|| sh.now());
        let has_work = sh.shutdown.load(Ordering::SeqCst)
            || (listed && me.woken_spinning.load(Ordering::SeqCst))
            || !me.inbox.is_empty()
            || if listed {
                sh.has_visible_work_of(Some(self.index))
            } else {
                // `has_visible_work_of` for the only worker (its own spawn
                // queue is every spawn queue): no loop over the workers.
                !sh.global.is_empty() || !me.spawnq.is_empty()
            }
            || armed.is_some_and(|now| next <= now);
        if has_work {
            me.sleep.finish();
        } else {
            let now = armed.unwrap_or_else(|| sh.now());
            let timeout =
                (next != u64::MAX).then(|| Duration::from_nanos(next.saturating_sub(now)));
            // Free stacks left dirty by a burst go back to the kernel once
            // they have aged: wake once for that, then sleep for good.
            let timeout = match (timeout, stack::scavenge()) {
                (Some(t), Some(s)) => Some(t.min(s)),
                (t, s) => t.or(s),
            };
            // The sleep is the worker's idle time: one clock read more per
            // sleep, after a blocking epoll_wait.
            me.metrics.idle.sleep(now);
            me.metrics.runq.set(0); // nothing to run, or it would not sleep
            let polled = self.poll_ready(timeout);
            let woke = sh.now();
            me.metrics.idle.wake(woke);
            me.monitor.set_clock(woke);
            // A quick wake-up by another thread is a hand-off that a short
            // spin would have caught without the sleep.
            let handoff = me.sleep.finish_woken() && woke.saturating_sub(now) < HANDOFF_QUICK_NS;
            self.handoffs.set(if handoff {
                self.handoffs.get().saturating_add(1).min(HANDOFF_STREAK)
            } else {
                0
            });
            me.metrics.netpoll_calls.inc();
            me.metrics.netpoll_events.add(polled as u64);
            self.publish_runq();
        }
        sh.monitor.worker_woke();
        // Only `wakep` sets `woken_spinning`, and only on a listed worker.
        if listed {
            sh.remove_idle(self.index);
            if me.woken_spinning.swap(false, Ordering::SeqCst) {
                self.set_spinning();
            }
        }
    }

    /// Runs `task` until it parks, yields or ends (Go's `execute`).
    ///
    /// User code runs here only inside `resume` and the commit function,
    /// each under `catch_unwind`, and in the drop of a panic payload
    /// ([`drop_payload`]): no panic of user code unwinds the worker loop.
    ///
    /// Inlined into the worker loop (`run`; measured: the call's prologue,
    /// epilogue and the loop's reloads around it were some 27 instructions
    /// per resume), and into the shutdown's, which is cold.
    #[inline(always)]
    fn execute(&self, mut task: Arc<Task>) {
        // One compare each for the common resume: a worker neither spinning
        // nor careful, and a started coroutine that has its stack (its
        // `home_worker` is set from its first run until it finishes or is
        // leaked, see `finish` and `leak`).
        if (self.flags.get() != 0 || task.home_worker.load(Ordering::Relaxed).is_null())
            && !self.prepare_resume(&task)
        {
            return;
        }
        let me = self.shared_part();
        let monitor = &me.monitor;
        loop {
            task.status.store(RUNNING, Ordering::Relaxed);
            self.set_current(Some(&task));
            self.budget.set(COOP_BUDGET);
            // SAFETY: owner-only field of a task this worker owns; the raw
            // place expression borrows only `body`, disjoint from `yielder`
            // which the coroutine reads while running. It is `Built`:
            // checked above, and only `finish` and `leak` take it, after
            // which this function returns.
            let co = match unsafe { &mut (*task.local.get()).body } {
                Body::Built(co) => co,
                // SAFETY: see above.
                _ => unsafe { std::hint::unreachable_unchecked() },
            };
            // `current` also tells the overflow handler what runs
            // (`running_info`).
            monitor.enter(&task);
            let r = panic::catch_unwind(AssertUnwindSafe(|| co.resume(())));
            monitor.leave();
            self.set_current(None);
            match r {
                Ok(CoroutineResult::Yield(None)) => {
                    task.status.store(RUNNABLE, Ordering::Relaxed);
                    if self.careful() && swallowed(&task) {
                        self.leak(task, LEAK_SWALLOWED);
                        return;
                    }
                    self.requeue_yielded(task);
                    return;
                }
                Ok(CoroutineResult::Yield(Some(frame))) => {
                    // Its time in state starts now (the cached clock, which
                    // the monitor refreshes during a long resume).
                    task.since.store(monitor.clock(), Ordering::Relaxed);
                    // WAITING before the commit publishes the task: a waker
                    // may ready it the moment the commit returns.
                    task.status.store(WAITING, Ordering::Release);
                    // The commit takes this worker's reference (see
                    // `Committed`); `raw` stays valid without it: the task
                    // is in this worker's registry (see `registered`).
                    let raw = Arc::as_ptr(&task);
                    // The commit function catches the commit's panic (see
                    // `CommitWord`): no unwind to contain here.
                    // SAFETY: `frame` comes from `suspend_park` in the
                    // coroutine, which is suspended inside it: it points to
                    // the park's live frame, which starts with its commit
                    // function, and the commit gets the frame it came with
                    // (see `Suspend`).
                    let parked = unsafe { (*frame.as_ptr())(frame.as_ptr().cast(), task, self) };
                    if parked.parked() {
                        // SAFETY: `raw` is the task this worker runs, in its
                        // registry (see `registered`).
                        if self.careful() && swallowed(unsafe { &*raw }) {
                            // Published or not, it is never resumed again; a
                            // waker that readies it later finds no stack.
                            // SAFETY: as above.
                            self.leak(unsafe { registered(raw) }, LEAK_SWALLOWED);
                            return;
                        }
                        me.metrics.parks.inc();
                        return;
                    }
                    task = match parked.handed_back() {
                        Some(task) if self.careful() && swallowed(&task) => {
                            self.leak(task, LEAK_SWALLOWED);
                            return;
                        }
                        // The event already came: run it again at once.
                        Some(task) => {
                            task.take_back();
                            self.tell(self.resume_input(&task));
                            task
                        }
                        // The commit panicked, maybe after publishing the
                        // task: claim it back as a waker would, and re-raise
                        // the panic inside the coroutine, at its park.
                        // SAFETY: `raw` as above.
                        None => match unsafe { self.commit_panic_back(raw) } {
                            Some(task) => task,
                            None => return,
                        },
                    };
                }
                Ok(CoroutineResult::Return(())) => {
                    self.finish(task, None);
                    return;
                }
                Err(payload) => {
                    self.finish(task, Some(payload));
                    return;
                }
            }
        }
    }

    /// A park's commit panicked (`CommitWord`; the payload is in
    /// `commit_panic`): the task, to resume at once with the panic to
    /// re-raise at its park, or `None` if a waker readied it first (the
    /// panic is then delivered when it runs).
    ///
    /// # Safety
    /// `raw` must be the task this worker was running, in its registry
    /// (see `registered`).
    #[cold]
    #[inline(never)]
    unsafe fn commit_panic_back(&self, raw: *const Task) -> Option<Arc<Task>> {
        let p = self
            .commit_panic
            .take()
            .expect("gopark: a commit's panic payload is missing");
        // SAFETY: the caller's contract (the commit's reference is in the
        // slot, or was dropped by the unwind).
        let task = unsafe { registered(raw) };
        if !task.claim_parked() {
            // SAFETY: owner-only field, task not running.
            unsafe { task.local().pending_panic = Some(p) };
            self.set_careful();
            return None;
        }
        self.tell(Resume::Panic(p));
        Some(task)
    }

    /// Keeps the payload of a park's commit that panicked, for `execute`
    /// (the commit function caught it, see `CommitWord`).
    #[cold]
    #[inline(never)]
    pub(crate) fn commit_panicked(&self, p: Box<dyn Any + Send>) {
        let old = self.commit_panic.replace(Some(p));
        debug_assert!(old.is_none());
        drop_payload(old);
    }

    /// The uncommon start of `execute`: leaves the spinning state, sets up
    /// a coroutine's first run, refuses one that has lost its stack, and
    /// tells a careful worker's coroutine what it must (see
    /// `resume_input`). False if the coroutine must not be resumed.
    #[cold]
    #[inline(never)]
    fn prepare_resume(&self, task: &Arc<Task>) -> bool {
        if self.spinning() {
            self.reset_spinning();
        }
        if task.home.load(Ordering::Relaxed) == NO_HOME {
            task.home.store(self.index, Ordering::Relaxed);
            // SAFETY: this worker owns its registry.
            let slot = unsafe { self.shared_part().registry.insert(task.clone()) };
            // SAFETY: the task is now owned by this worker, which is the only
            // one that touches `local` from here on (coroutine module docs).
            let local = unsafe { task.local() };
            local.slot = slot;
            self.shared_part().metrics.started.inc();
            // It lives here now: move its charge (placed on another worker,
            // then stolen or taken from the global queue).
            if local.charge != self.index {
                if let Some(w) = self.shared.workers.get(local.charge) {
                    w.load.sub(1);
                }
                self.shared_part().load.add(1);
                local.charge = self.index;
            }
            // Spawned on a cold stack: build it now, on this worker's warmest
            // stack of that size (`stack::bind`; a pool pop, and the push of
            // the cold one, when it trades).
            if let Some(start) = local.body.take_unstarted() {
                match start.start() {
                    Ok((co, limit)) => {
                        task.stack_limit.store(limit, Ordering::Relaxed);
                        local.body = Body::Built(co);
                    }
                    Err(e) => {
                        self.fail_start(task.clone(), e);
                        return false;
                    }
                }
            }
            if local.body.is_built() {
                task.home_worker.store(self.me.as_ptr(), Ordering::Relaxed);
            }
        }
        // SAFETY: owner-only field of a task this worker owns.
        if unsafe { !task.local().body.is_built() } {
            // Only a coroutine leaked at shutdown can be readied after it
            // lost its stack (a waker that found it in a wait slot).
            assert_ne!(
                task.cancel.load(Ordering::Relaxed),
                CANCEL_NONE,
                "gopark: resumed a finished coroutine"
            );
            return false;
        }
        self.tell(self.resume_input(task));
        true
    }

    /// What to tell `task` when it is resumed: a panic of its commit to
    /// re-raise, a cancellation to unwind from (once), or carry on; the
    /// last without looking at the task until the worker is `careful`.
    #[inline(always)]
    fn resume_input(&self, task: &Arc<Task>) -> Resume {
        if !self.careful() {
            return Resume::Run;
        }
        self.resume_input_careful(task)
    }

    #[cold]
    #[inline(never)]
    fn resume_input_careful(&self, task: &Arc<Task>) -> Resume {
        // SAFETY: owner-only field of a task this worker owns, not running.
        if let Some(p) = unsafe { task.local().pending_panic.take() } {
            return Resume::Panic(p);
        }
        let c = task.cancel.load(Ordering::Relaxed);
        if c == CANCEL_REQUESTED || (c == CANCEL_NONE && self.shutting_down.get()) {
            task.cancel.store(CANCEL_DELIVERED, Ordering::Relaxed);
            return Resume::Cancel;
        }
        Resume::Run
    }

    /// Go's Gosched: the yielding coroutine goes behind the others. Readied
    /// coroutines from the inbox and one unstarted coroutine go before it, so
    /// a yield loop cannot starve them; the unstarted one is taken only when
    /// the yielder's turn comes (`pop_runq`), so until then it stays in the
    /// spawn queue, stealable.
    fn requeue_yielded(&self, task: Arc<Task>) {
        let me = self.shared_part();
        let q = &self.runq;
        if let Some(rn) = self.runnext.take() {
            q.push_back(rn);
        }
        while let Some(t) = me.inbox.quick_pop() {
            q.push_back(t);
        }
        self.yielded.set(Arc::as_ptr(&task));
        q.push_back(task);
    }

    /// A coroutine that could not start (its stack's guard could not be
    /// installed, see `stack::bind`): it ends as if it had panicked with the
    /// error's message at once, which its joiner gets (or the panic report
    /// of an unjoined coroutine prints). Cold.
    #[cold]
    #[inline(never)]
    fn fail_start(&self, task: Arc<Task>, e: std::io::Error) {
        let msg = format!("gopark: the coroutine could not start: {e}");
        self.finish(task, Some(Box::new(msg)));
    }

    /// A coroutine ended: recycle its stack, hand the result to the joiner.
    fn finish(&self, task: Arc<Task>, panic: Option<Box<dyn Any + Send>>) {
        // SAFETY: owner-only fields of a task this worker owns; it no longer
        // runs, so nothing else borrows them.
        let local = unsafe { task.local() };
        match local.body.take() {
            Body::Built(co) if co.done() => stack::free(co.into_stack()),
            other => drop(other),
        }
        // No stack: `execute` must look before it resumes (see there).
        task.home_worker.store(ptr::null_mut(), Ordering::Relaxed);
        let slot = local.slot;
        // After `monitor.leave` (in `execute`): see the monitor's docs.
        // SAFETY: this worker owns its registry.
        if unsafe { self.shared_part().registry.remove(slot) } {
            self.shared_part().load.sub(1);
            // Before `complete`: a joiner sees the coroutine no longer live.
            self.shared_part().metrics.ended.inc_release();
        }
        let outcome = match panic {
            Some(mut p) => Err(match p.downcast_mut::<Cancelled>() {
                Some(c) => {
                    // The unwind this worker raised came back: not swallowed.
                    c.consumed = true;
                    drop(p);
                    Box::new(CANCELLED_MSG) as Box<dyn Any + Send>
                }
                None => p,
            }),
            // Stored by the entry function as it returned (`spawn`).
            None => local
                .result
                .take()
                .ok_or_else(|| Box::new(NO_RESULT_MSG) as Box<dyn Any + Send>),
        };
        if let Some(p) = task.complete(outcome) {
            crate::spawn::unjoined_panic(&task, &*p);
            drop_payload(Some(p));
        }
        // Usually the last reference of a detached coroutine.
        Task::recycle(task);
    }

    /// Stops running `task` for good without unwinding it: its stack is
    /// never freed or reused (so whatever still points into it stays valid)
    /// and its remaining destructors never run. Sound, unlike resuming it on
    /// another thread or unwinding it forever.
    fn leak(&self, task: Arc<Task>, why: &str) {
        // SAFETY: owner-only fields of a task this worker owns, not running.
        let local = unsafe { task.local() };
        if let Body::Built(co) = local.body.take() {
            std::mem::forget(co);
        }
        // No stack: `execute` must look before it resumes (see there).
        task.home_worker.store(ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: this worker owns its registry.
        if unsafe { self.shared_part().registry.remove(local.slot) } {
            self.shared_part().load.sub(1);
            self.shared_part().metrics.ended.inc_release();
        }
        let name = task
            .name
            .as_deref()
            .map_or_else(String::new, |n| format!(" '{n}'"));
        eprintln!(
            "gopark: coroutine {}{name} {why}; it is leaked: its stack stays allocated and its remaining destructors do not run",
            task.id
        );
        drop_payload(task.complete(Err(Box::new(LEAKED_MSG))));
    }
}

/// The join error of a coroutine cancelled by runtime shutdown.
pub(crate) const CANCELLED_MSG: &str =
    "gopark: the runtime was dropped before the coroutine finished";
/// The outcome of a coroutine that returned without a result: its handle
/// was gone, so it dropped the value itself (`spawn::make_co`; nobody joins
/// it, and it is no unjoined panic). It would also be the join error of one
/// cancelled before it started outside a worker, which cannot happen.
pub(crate) const NO_RESULT_MSG: &str = "gopark: coroutine finished without a result";
/// The join error of a coroutine leaked at runtime shutdown.
pub(crate) const LEAKED_MSG: &str =
    "gopark: the runtime was dropped and the coroutine could not be unwound (leaked)";
const LEAK_SWALLOWED: &str =
    "caught the unwind that runtime shutdown raised in it and went on running";

/// A new reference to a task this worker runs, from its raw pointer: once
/// the worker's own reference went to a commit function (which may have
/// published it, and a waker taken and dropped it since).
///
/// # Safety
/// `task` is `Arc::as_ptr` of a started task of this worker that has not
/// finished or been leaked: the worker's registry holds a reference to it
/// (`execute` inserts it at its first run; only `finish` and `leak`, on this
/// thread, remove it), so it is alive.
unsafe fn registered(task: *const Task) -> Arc<Task> {
    // SAFETY: the task is alive (the caller's contract), and `task` came
    // from `Arc::as_ptr`, as `increment_strong_count` and `from_raw` need.
    unsafe {
        Arc::increment_strong_count(task);
        Arc::from_raw(task)
    }
}

/// True if `task` caught and dropped its shutdown unwind (only ever on a
/// `CAREFUL` worker: only it delivers cancellations).
fn swallowed(task: &Task) -> bool {
    task.cancel.load(Ordering::Relaxed) == CANCEL_SWALLOWED
}

/// Drops a panic payload that nobody will join (user data: its `Drop` may
/// panic). A panicking drop is contained; if the payload of that second
/// panic panics too, the process aborts with a message, as std does for a
/// thread result that panics on drop: the worker must not unwind.
pub(crate) fn drop_payload(p: Option<Box<dyn Any + Send>>) {
    let Some(p) = p else { return };
    if let Err(p) = panic::catch_unwind(AssertUnwindSafe(move || drop(p))) {
        if panic::catch_unwind(AssertUnwindSafe(move || drop(p))).is_err() {
            eprintln!("gopark: a coroutine's panic payload kept panicking when dropped; aborting");
            std::process::abort();
        }
    }
}

/// Routes a runnable (started) coroutine to its home worker: `runnext` when
/// called on that worker, else its inbox, waking it.
pub(crate) fn ready_runnable(task: Arc<Task>) {
    debug_assert_ne!(
        task.home.load(Ordering::Relaxed),
        NO_HOME,
        "ready of a coroutine that never ran"
    );
    if let Some(ctx) = worker_here() {
        if task.home_worker.load(Ordering::Relaxed) == ctx.me.as_ptr() {
            ctx.put_runnext(task);
            return;
        }
    }
    send_home(task);
}

/// Hands a runnable coroutine that does not live on the calling worker (or
/// is readied off the workers) to its home worker's inbox and wakes that
/// worker. Touches no run queue and runs no user code (`Readier` relies on
/// it): the coroutine's reference moves to the inbox.
#[inline(never)]
fn send_home(task: Arc<Task>) {
    let home = task.home.load(Ordering::Relaxed);
    let shared = task.shared.clone();
    shared.workers[home].inbox.push(task);
    shared.wake_worker(home);
    // Off the fast path above (it kept its code unchanged when this count
    // was added there: measured).
    count_handoff(&shared);
}

/// Where a poll of a worker's shard delivers the coroutines it unblocked
/// (`WorkerCtx::poll_ready`): each leaves WAITING with the CAS `ready`
/// makes; those living on this worker go to the back of its run queue in
/// the order the poll found them, each one store into room reserved per
/// poll (no `runnext` swap, no thread-local lookup, no queue reloads).
/// No other worker is woken: a started coroutine runs only here. One of
/// another worker or runtime (a descriptor waited on from there, see the
/// netpoll module docs) is routed home (`send_home`).
///
/// While it lives, the run queue's filler holds the queue (see
/// `RunQueue::filler`), so nothing here may reach a run queue method or
/// user code (which could ready a coroutine on this worker): a stale
/// wake-up's reference, whose drop may be the task's last and run the
/// destructors of what it holds, is kept in `WorkerCtx::stale` and dropped
/// after the filler.
///
/// The fields the pushes use stay in registers: the cold paths take none
/// of their addresses, and only they count (`other`).
struct Readier<'a> {
    /// This worker's shared part (`WorkerCtx::me`): a coroutine lives here
    /// if its `home_worker` is this address.
    me: *mut super::WorkerShared,
    ctx: &'a WorkerCtx,
    fill: runq::Filler<'a>,
    /// Coroutines the poll returned that did not go into `fill`.
    other: usize,
}

impl crate::netpoll::PollSink for Readier<'_> {
    #[inline]
    fn reserve(&mut self, n: usize) {
        self.fill.reserve(n);
    }

    /// # Safety
    /// The trait's contract: at most `n` pushes after `reserve(n)`, which
    /// is what `runq::Filler::push` needs (it writes into the room
    /// `reserve` made, without a bounds check).
    #[inline]
    unsafe fn push(&mut self, t: Arc<Task>) {
        // The task is never live across a call (which would give it a
        // stack slot, a store and a load per push): the calls off the common
        // case take it, and the contended one hands it back.
        let t = if crate::coroutine::make_runnable_uncontended(&t) {
            if t.home_worker.load(Ordering::Relaxed) != self.me {
                send_home(t);
                self.other += 1;
                return;
            }
            t
        } else {
            match readier_contended(self.ctx, self.me, t) {
                Some(t) => t,
                None => {
                    self.other += 1;
                    return;
                }
            }
        };
        // SAFETY: at most as many pushes as reserved (the caller's
        // contract, passed on).
        unsafe { self.fill.push(t) };
    }
}

/// `Readier::push` when the uncontended CAS failed: the rest of
/// `make_runnable`. Gives back a task of this worker (`me`) to queue; one
/// of another worker goes home (`send_home`), a stale wake-up to
/// `keep_stale`.
#[cold]
#[inline(never)]
fn readier_contended(
    ctx: &WorkerCtx,
    me: *mut super::WorkerShared,
    t: Arc<Task>,
) -> Option<Arc<Task>> {
    if !crate::coroutine::ready_contended(&t) {
        keep_stale(ctx, t);
        return None;
    }
    if t.home_worker.load(Ordering::Relaxed) == me {
        return Some(t);
    }
    send_home(t);
    None
}

/// A stale wake-up of `Readier` (see there), dropped after the poll.
#[cold]
#[inline(never)]
fn keep_stale(ctx: &WorkerCtx, t: Arc<Task>) {
    ctx.stale.borrow_mut().push(t);
}

/// True if a poll left stale wake-ups to drop (one load).
#[inline]
fn sink_had_stale(ctx: &WorkerCtx) -> bool {
    // SAFETY: a plain read of the length; no borrow of `stale` is live
    // (only `keep_stale` borrows it, for its push).
    !unsafe { &*ctx.stale.as_ptr() }.is_empty()
}

/// Drops the stale wake-ups a poll left (their drops may run user code:
/// after the poll's filler is gone).
#[cold]
#[inline(never)]
fn drop_stale(ctx: &WorkerCtx) {
    let stale = std::mem::take(&mut *ctx.stale.borrow_mut());
    drop(stale);
}

/// Counts a coroutine handed to another worker, if the caller is a worker
/// of `shared` (the coroutine's runtime).
#[inline(never)]
fn count_handoff(shared: &Arc<Shared>) {
    if let Some(ctx) = worker_here().filter(|ctx| Arc::ptr_eq(&ctx.shared, shared)) {
        ctx.shared_part().metrics.handoffs.inc();
    }
}

/// The coroutine this worker thread is running, for the stack-overflow
/// handler (the stack module's `RunningFn`: called inside the SIGSEGV
/// handler, on the faulting thread). Plain loads only: `CTX` is a `const`
/// thread-local without destructor, `current` is non-null exactly while
/// `execute` resumes a task, and that task's fields stay valid meanwhile.
fn running_info() -> Option<stack::RunningInfo> {
    let ctx = worker_here()?;
    if !ctx.in_coroutine() {
        return None;
    }
    let task = ctx.current_task();
    Some(stack::RunningInfo {
        id: task.id.as_u64(),
        stack_size: task.stack_size,
        limit: task.stack_limit.load(Ordering::Relaxed),
        name: task.name.as_deref().map(|n| (n.as_ptr(), n.len())),
    })
}

/// A worker thread's body.
pub(crate) fn run(shared: Arc<Shared>, index: usize) {
    /// Armed while the worker loop runs: a panic that escapes it (a bug in
    /// gopark: user code is contained, see `execute`) would leave this
    /// worker's coroutines with no thread allowed to run or unwind them.
    struct AbortOnUnwind(usize);
    impl Drop for AbortOnUnwind {
        fn drop(&mut self) {
            eprintln!(
                "gopark: worker {} panicked outside any coroutine; aborting, since its coroutines can run on no other thread",
                self.0
            );
            std::process::abort();
        }
    }
    let _ = shared.workers[index].thread.set(thread::current());
    // Up to here the worker counted as idle (see `metrics::IdleClock`).
    let now = shared.now();
    shared.workers[index].metrics.idle.wake(now);
    stack::worker_init(running_info);
    let ctx = WorkerCtx::new(shared, index);
    CTX.with(|c| c.set(&ctx));
    let guard = AbortOnUnwind(index);
    while let Some(task) = ctx.find_runnable() {
        ctx.execute(task);
    }
    ctx.shutdown();
    std::mem::forget(guard);
    CTX.with(|c| c.set(ptr::null()));
}
