//! The runtime: workers, queues, idle workers and the default runtime.
//!
//! Go's G/M/P, adapted to the rule of docs/SAFETY.md section 1 (a started coroutine
//! never changes threads):
//!
//! | Go                 | gopark                                                   |
//! |--------------------|----------------------------------------------------------|
//! | G                  | [`Task`](crate::coroutine::Task)                         |
//! | M + P (fused)      | a worker thread ([`worker::WorkerCtx`])                  |
//! | `p.runnext`        | `WorkerCtx::runnext` (owner only)                        |
//! | `p.runq`           | `WorkerCtx::runq` (owner only, started coroutines)       |
//! |                    | `WorkerShared::spawnq` (unstarted, stealable)            |
//! |                    | `WorkerShared::inbox` (readied from other threads)       |
//! |                    | `WorkerShared::load` (live + placed unstarted)           |
//! | `sched.runq`       | `Shared::global` (spawnq overflow)                       |
//! | `sched.pidle`      | `WorkerShared::idle` flags + `Shared::nidle`             |
//! | `sched.nmspinning` | `Shared::nspinning`                                      |
//! | `wakep()`          | [`Shared::wakep`]                                        |
//! | `p.timers`         | `WorkerShared::timers`                                   |
//!
//! Go steals any runnable G; gopark steals only coroutines that have not run
//! yet (they are a boxed `Send` closure), and a coroutine readied from another
//! thread is routed to its home worker's inbox. Since a started coroutine
//! never moves, a new one starts on the least-loaded worker
//! ([`Shared::place`]), and stealing only takes from more loaded workers.

pub(crate) mod affinity;
pub(crate) mod dump;
pub(crate) mod metrics;
pub(crate) mod monitor;
pub(crate) mod registry;
pub(crate) mod timer;
pub(crate) mod worker;

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle as ThreadHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam_queue::{ArrayQueue, SegQueue};

use crate::coroutine::Task;
use crate::netpoll::Poller;
use crate::sm::sleep::{SleepState, Wake};
use crate::spawn::JoinHandle;

/// Capacity of a worker's stealable queue of unstarted coroutines.
const SPAWNQ_CAP: usize = 256;
/// Up to this many workers, placement compares them all; above, it samples
/// two (see [`Shared::place`]).
const PLACE_SCAN_ALL: usize = 8;
/// How much lighter (in coroutines) another worker must be to take a
/// coroutine spawned from a coroutine: an eighth of the spawning worker's
/// load, at least one (see [`Shared::place`]).
#[inline]
fn place_margin(load: usize) -> usize {
    (load / 8).max(1)
}

/// `CLOCK_MONOTONIC` in nanoseconds (see [`Shared::now`]).
#[inline]
fn mono_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Default coroutine stack size: enough for ordinary Rust code; lazily
/// committed, so unused parts cost no memory.
pub(crate) const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// The part of a worker other threads may touch.
pub(crate) struct WorkerShared {
    /// Unstarted coroutines spawned on this worker; other workers steal here.
    pub(crate) spawnq: ArrayQueue<Arc<Task>>,
    /// Started coroutines readied by other threads (they live here).
    pub(crate) inbox: SegQueue<Arc<Task>>,
    /// Timers (sleeps, park timeouts, netpoll deadlines).
    pub(crate) timers: timer::Timers,
    /// AWAKE / PARKED / POLLING (see `sm::sleep`).
    pub(crate) sleep: SleepState,
    /// Set by `wakep` when it hands this worker the spinning role.
    pub(crate) woken_spinning: AtomicBool,
    /// In the idle set (Go's pidle): set by the worker before it sleeps;
    /// cleared by whoever takes it out (`wakep`, or the worker on waking),
    /// and only the one whose swap saw `true` decrements `Shared::nidle`.
    idle: AtomicBool,
    /// The worker's thread, set by the worker itself before it can sleep.
    pub(crate) thread: OnceLock<Thread>,
    /// How loaded the worker is: its live coroutines plus the unstarted
    /// ones charged to it (see [`Shared::place`]).
    pub(crate) load: Load,
    /// What the worker runs, for the stall monitor.
    pub(crate) monitor: monitor::Slot,
    /// The worker's metrics counters, written by the worker only.
    pub(crate) metrics: metrics::Counters,
    /// The worker's live coroutines (see `registry`).
    pub(crate) registry: registry::Registry,
}

/// A worker's load counter, on its own cache line: other threads bump it
/// on every spawn placed there, and the owner's hot fields should not share
/// that line.
///
/// It counts the coroutines *charged* to the worker: every started,
/// unfinished coroutine that lives there, and every unstarted one placed in
/// its spawn queue or inbox. Each unstarted task records the worker it is
/// charged to (`TaskLocal::charge`); whoever moves it to another worker
/// (a thief, or the first resume on another worker) moves the charge, and
/// its end (finish, leak, or a drop before it started) releases it.
#[repr(align(64))]
#[derive(Debug, Default)]
pub(crate) struct Load(AtomicUsize);

impl Load {
    #[inline]
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn add(&self, n: usize) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn sub(&self, n: usize) {
        let old = self.0.fetch_sub(n, Ordering::Relaxed);
        debug_assert!(old >= n, "gopark: worker load underflow");
    }
}

/// State shared by all workers of one runtime.
pub(crate) struct Shared {
    pub(crate) workers: Box<[WorkerShared]>,
    /// Coroutines spawned from outside the runtime, and spawnq overflow.
    pub(crate) global: SegQueue<Arc<Task>>,
    /// Number of workers whose `WorkerShared::idle` flag is set.
    pub(crate) nidle: AtomicUsize,
    /// Workers looking for work to steal (Go's nmspinning).
    pub(crate) nspinning: AtomicUsize,
    pub(crate) poller: Poller,
    pub(crate) shutdown: AtomicBool,
    /// Workers that have not finished their shutdown (see
    /// `worker::shutdown`).
    pub(crate) shutdown_active: AtomicUsize,
    /// Workers in their shutdown with nothing to run.
    pub(crate) shutdown_idle: AtomicUsize,
    /// Set when no worker in its shutdown can make progress any more.
    pub(crate) shutdown_stuck: AtomicBool,
    pub(crate) stack_size: usize,
    /// Zero point of the timers' nanosecond clock.
    pub(crate) epoch: Instant,
    /// `CLOCK_MONOTONIC` in nanoseconds, read just after `epoch`: the zero
    /// point of [`Shared::now`].
    epoch_raw: u64,
    /// Round-robin choice of a worker for timers set from plain threads.
    next_timer_worker: AtomicUsize,
    /// The pool of blocking threads (`crate::blocking`).
    pub(crate) blocking: crate::blocking::PoolHandle,
    /// The stall monitor's state.
    pub(crate) monitor: monitor::Monitor,
    /// What a panic that no join observes does.
    pub(crate) unjoined_panic: UnjoinedPanic,
    /// Coroutines spawned from threads that are not workers of this
    /// runtime (the workers count theirs in their own `metrics`).
    pub(crate) spawned_outside: metrics::Outside,
    /// The builder's name (the worker threads' prefix), for dumps.
    pub(crate) name: String,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("workers", &self.workers.len())
            .field("nidle", &self.nidle.load(Ordering::Relaxed))
            .field("nspinning", &self.nspinning.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Nanoseconds since the epoch for a timer deadline.
    pub(crate) fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// The time now, in the nanoseconds of [`Shared::nanos`]: one
    /// `clock_gettime(CLOCK_MONOTONIC)` (the clock `Instant` reads on
    /// Linux) and a subtraction, without `Instant` and `Duration`
    /// arithmetic (about 65 instructions less per read under callgrind; the
    /// worker reads it twice per sleep).
    ///
    /// Its zero point, `epoch_raw`, was read just after `epoch`, so it lags
    /// `nanos(Instant::now())` by the few nanoseconds between the two reads
    /// and is never ahead: a timer whose deadline came from an `Instant`
    /// fires no earlier than that instant, and a reader that compares a
    /// stamp of this clock with `nanos(Instant::now())` never sees it in
    /// the future.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        mono_nanos().saturating_sub(self.epoch_raw)
    }

    /// Queues a new (unstarted) coroutine on the worker chosen by
    /// [`Shared::place`], or on worker `pin` (modulo the worker count) for an
    /// explicitly placed one, and wakes that worker if it sleeps.
    ///
    /// A placed coroutine goes to the worker's spawn queue, where a less
    /// loaded worker may still steal it before it starts; a pinned one goes
    /// to the worker's inbox, which only its owner reads. Cost when the
    /// target is awake: one RMW on its load counter, the push, and a fence
    /// and a load to see that no wake-up is needed.
    ///
    /// Placed on the spawning worker itself, it also goes to the spawn
    /// queue, not to `runnext` as Go's `newproc` does: `runnext` is the
    /// owner's alone, so a child left there by a spawner that then computes
    /// without parking could not start anywhere else until it parks (Go
    /// lets an idle P steal `runnext`). The newest-first order would walk a
    /// spawn tree depth first (skynet, `examples/skynet.rs`: about 155k
    /// coroutines alive at the peak instead of 335k); a `runnext` other
    /// workers can steal is the way to get it back.
    pub(crate) fn submit(self: &Arc<Self>, task: Arc<Task>, pin: Option<usize>) {
        let here = worker::worker_here().filter(|ctx| Arc::ptr_eq(&ctx.shared, self));
        let (w, local) = match pin {
            Some(w) => (w % self.workers.len(), false),
            None => {
                let w = self.place(here);
                (w, here.is_some_and(|ctx| ctx.index == w))
            }
        };
        match here {
            Some(ctx) => {
                let m = &ctx.shared_part().metrics;
                m.spawned.inc();
                if ctx.index != w {
                    m.handoffs.inc();
                }
            }
            None => self.spawned_outside.inc(),
        }
        let ws = &self.workers[w];
        // SAFETY: the task is unstarted and not queued yet: the caller owns it.
        unsafe { task.local().charge = w };
        ws.load.add(1);
        if pin.is_some() {
            ws.inbox.push(task);
            // Also the SeqCst fence (inside `SleepState::wake`) that orders
            // the push before the shutdown checks below.
            self.wake_worker(w);
        } else {
            if self.push_spawnq(w, task) {
                self.wakep();
            }
            if !local {
                self.wake_worker(w);
            }
        }
        // On the spawning worker itself no one is woken: the spawner
        // usually waits for its child soon (spawn then join), and the child
        // then starts right here; see `place`.

        // After the push (SeqCst, as the store in `Runtime::drop`): either
        // the workers' shutdown drains see the task, or we see the flag and
        // drop it here; a join handle never waits for a runtime that is gone.
        // A pinned task sits in an inbox, which only its worker drains until
        // every worker has stopped.
        if self.shutdown.load(Ordering::SeqCst) {
            let all_stopped = self.shutdown_active.load(Ordering::SeqCst) == 0;
            worker::cancel_queued(self, all_stopped);
        }
    }

    /// Pushes an unstarted coroutine on worker `w`'s spawn queue. When the
    /// queue is full, its older half moves to the global queue first and the
    /// new one takes its place (Go's `runqputslow`): the worker goes on with
    /// the coroutines spawned last, which keeps a spawn tree mostly depth
    /// first, while the older ones wait where any worker may take them (the
    /// global queue is read every 61st round and when a worker has nothing
    /// else). Their load stays charged to `w` until one starts (`execute`
    /// moves the charge). Returns true if the global queue received
    /// coroutines: the caller then calls `wakep`. The move costs a pop and a
    /// push per moved coroutine, once per `SPAWNQ_CAP / 2` spawns.
    pub(crate) fn push_spawnq(&self, w: usize, task: Arc<Task>) -> bool {
        let q = &self.workers[w].spawnq;
        let Err(task) = q.push(task) else {
            return false;
        };
        for _ in 0..SPAWNQ_CAP / 2 {
            match q.pop() {
                Some(old) => self.global.push(old),
                None => break,
            }
        }
        // Other threads may have filled the room again meanwhile.
        if let Err(task) = q.push(task) {
            self.global.push(task);
        }
        true
    }

    /// Moves the coroutines queued to start on worker `from` to the least
    /// loaded other worker and wakes it. The monitor calls this when it
    /// finds `from` inside one resume for a whole sample period: whatever
    /// that coroutine does, the worker cannot start them meanwhile, and a
    /// thief would not take them from a worker less loaded than itself
    /// (its load counts parked coroutines too). Only unstarted coroutines
    /// move; each pop hands that task to us, as a steal does.
    pub(crate) fn rescue_unstarted(self: &Arc<Self>, from: usize) {
        let to = (0..self.workers.len())
            .filter(|&w| w != from)
            .min_by_key(|&w| self.workers[w].load.get());
        let Some(to) = to else { return };
        let (src, dst) = (&self.workers[from], &self.workers[to]);
        let mut moved = 0;
        while let Some(t) = src.spawnq.pop() {
            // SAFETY: an unstarted task popped from a queue is owned by its
            // popper (coroutine module docs).
            unsafe { t.local().charge = to };
            // The load moves before the push: once queued, `to` may start
            // and end the task at once, and its end subtracts from `to`.
            dst.load.add(1);
            src.load.sub(1);
            moved += 1;
            if self.push_spawnq(to, t) {
                self.wakep();
            }
        }
        if moved > 0 {
            dst.metrics.rescued.add(moved as u64);
            self.wake_worker(to);
        }
        // As in `submit`: a shutdown that began meanwhile may have drained
        // `to`'s queue before the push; then the tasks are cancelled here.
        if self.shutdown.load(Ordering::SeqCst) {
            let all_stopped = self.shutdown_active.load(Ordering::SeqCst) == 0;
            worker::cancel_queued(self, all_stopped);
        }
    }

    /// The worker a new coroutine starts on: the least loaded one (live
    /// coroutines plus queued unstarted ones, [`Load`]).
    ///
    /// Spawned from one of this runtime's coroutines, the spawning worker
    /// does not count the spawner itself, which usually blocks soon (a
    /// join, a channel), and keeps the child unless another worker is
    /// lighter by more than [`place_margin`]: a child joined at once, or a
    /// producer and a consumer spawned side by side, then run on the same
    /// worker with no wake-up (a 1-producer 1-consumer channel on 2 workers:
    /// 14-17 ns per message together, 170-470 ns split), while a fan-out
    /// still spreads (the spawning worker takes the first two, then the
    /// workers alternate around that margin).
    ///
    /// A coroutine that has accepted a connection (an accept loop) places
    /// its children with no margin: each is a connection's handler,
    /// long-lived and independent of its siblings, and at small loads the
    /// margin's whole coroutine would skew them for good (8 CPU-heavy
    /// connections split 5/3 instead of 4/4, as Netty hands each accepted
    /// channel to the next event loop). The margin is the
    /// hysteresis that keeps two busy workers, each spawning, from handing
    /// half of their children to each other whenever their loads cross:
    /// with equal loads winning, skynet on 2 workers placed about every
    /// other child remotely, and each of those children's messages to its
    /// parent crossed threads (an inbox push and a wake check each way);
    /// with the margin it used ~20% less CPU (2.11 against 2.77 s per tree,
    /// 3 rounds interleaved on a loaded machine). Up to 8
    /// workers are all compared; above that, two chosen at random
    /// (Mitzenmacher's power of two choices) and the spawning worker.
    /// Ties between other workers are broken by a random start, so spawns
    /// from plain threads spread evenly.
    pub(crate) fn place(&self, here: Option<&worker::WorkerCtx>) -> usize {
        let n = self.workers.len();
        if n == 1 {
            return 0;
        }
        let (mut best, mut best_load) = match here {
            Some(ctx) => {
                let load = self.workers[ctx.index].load.get();
                let load = load.saturating_sub(usize::from(ctx.in_coroutine()));
                if load == 0 {
                    return ctx.index;
                }
                (ctx.index, load)
            }
            None => (usize::MAX, usize::MAX),
        };
        let r = match here {
            Some(ctx) => ctx.next_rand() as usize,
            None => plain_thread_rand() as usize,
        };
        if let Some(ctx) = here {
            // SAFETY: the running task's owner-only part, read on its own
            // worker thread while it runs (coroutine module docs).
            let accepts = ctx.in_coroutine() && unsafe { ctx.current_task().local().accepts };
            if !accepts {
                best_load = best_load.saturating_sub(place_margin(best_load));
            }
        }
        let mut consider = |w: usize| {
            let load = self.workers[w].load.get();
            if load < best_load {
                best = w;
                best_load = load;
            }
        };
        if n <= PLACE_SCAN_ALL {
            for k in 0..n {
                consider((r + k) % n);
            }
        } else {
            consider(r % n);
            consider((r >> 16) % n);
        }
        best
    }

    /// Go's `wakep`: if a worker is idle and none is spinning, wake one to
    /// spin. Costs two atomic loads and no syscall when every worker is busy.
    pub(crate) fn wakep(&self) {
        // Pairs with the fence in the idle worker's `SleepState::prepare`,
        // issued after it joined the idle list and before it re-checks the
        // queues (Dekker: either we see the idle worker, or it sees the work
        // the caller pushed before calling wakep).
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.nidle.load(Ordering::SeqCst) == 0 || self.nspinning.load(Ordering::SeqCst) != 0 {
            return;
        }
        if self
            .nspinning
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        // Take the first idle worker out of the idle set (no lock: the
        // swap decides between us and the worker waking by itself).
        let w = self.workers.iter().position(|ws| {
            ws.idle.load(Ordering::Relaxed) && ws.idle.swap(false, Ordering::SeqCst)
        });
        if w.is_some() {
            self.nidle.fetch_sub(1, Ordering::SeqCst);
        }
        match w {
            Some(w) => {
                self.workers[w].woken_spinning.store(true, Ordering::SeqCst);
                self.wake_worker(w);
            }
            None => {
                self.nspinning.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Wakes worker `w` if it sleeps (after work was pushed for it).
    pub(crate) fn wake_worker(&self, w: usize) {
        let ws = &self.workers[w];
        match ws.sleep.wake() {
            Wake::None => return,
            Wake::Thread => {
                if let Some(t) = ws.thread.get() {
                    t.unpark();
                }
            }
            Wake::Poller => self.poller.wake(w),
        }
        // A wake-up made (a syscall): count it on the waking worker.
        if let Some(ctx) = worker::worker_here() {
            if ctx.index != w && ptr_eq(&ctx.shared, self) {
                ctx.shared_part().metrics.wakeups.inc();
            }
        }
    }

    /// Adds worker `w` (the caller) to the idle set.
    pub(crate) fn push_idle(&self, w: usize) {
        // Count first, then flag: `nidle` may briefly exceed the flags set
        // (a `wakep` then finds no flag and backs off, as it would had it
        // come a moment earlier), never the reverse, so a flag taken by
        // `wakep` always has its count to decrement. SeqCst: see `wakep`.
        self.nidle.fetch_add(1, Ordering::SeqCst);
        self.workers[w].idle.store(true, Ordering::SeqCst);
    }

    /// Takes worker `w` (the caller) out of the idle set if `wakep` has not
    /// already.
    pub(crate) fn remove_idle(&self, w: usize) {
        if self.workers[w].idle.swap(false, Ordering::SeqCst) {
            self.nidle.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Arms a timer from any thread: on the calling worker if it belongs to
    /// this runtime, else on a worker chosen round-robin (woken if the timer
    /// is now its earliest).
    pub(crate) fn add_timer(&self, when: Instant, action: timer::Action) -> timer::Handle {
        let nanos = self.nanos(when);
        let here = worker::worker_here().filter(|ctx| ptr_eq(&ctx.shared, self));
        let w = match here {
            Some(ctx) => ctx.index,
            None => self.next_timer_worker.fetch_add(1, Ordering::Relaxed) % self.workers.len(),
        };
        let (key, earliest) = self.workers[w].timers.add(nanos, action);
        if earliest && here.is_none() {
            self.wake_worker(w);
        }
        timer::Handle { worker: w, key }
    }

    /// Cancels a timer from any thread (see [`timer::Timers::cancel`]):
    /// its entry and action are freed now; false if it fired already.
    pub(crate) fn cancel_timer(&self, h: timer::Handle) -> bool {
        self.workers[h.worker].timers.cancel(h.key)
    }

    /// True if any queue the calling worker could take work from is
    /// non-empty: the global queue, its own spawn queue, and the spawn queue
    /// of any worker more loaded than it (the others it does not steal
    /// from, so their queued coroutines must not keep it awake). During
    /// shutdown, and off the runtime's workers, every spawn queue counts.
    pub(crate) fn has_visible_work(&self) -> bool {
        let me = worker::worker_here()
            .filter(|ctx| ptr_eq(&ctx.shared, self))
            .map(|ctx| ctx.index);
        self.has_visible_work_of(me)
    }

    /// [`Shared::has_visible_work`] for a caller that knows which worker of
    /// this runtime it is (`Some(index)`), if any: no thread-local lookup.
    #[inline]
    pub(crate) fn has_visible_work_of(&self, me: Option<usize>) -> bool {
        if !self.global.is_empty() {
            return true;
        }
        match me {
            Some(me) if !self.shutdown.load(Ordering::Relaxed) => {
                let mine = self.workers[me].load.get();
                self.workers
                    .iter()
                    .enumerate()
                    .any(|(i, w)| !w.spawnq.is_empty() && (i == me || w.load.get() > mine))
            }
            _ => self.workers.iter().any(|w| !w.spawnq.is_empty()),
        }
    }

    /// True if a coroutine waits in any queue: unstarted (global queue,
    /// spawn queues, pinned in an inbox) or readied (an inbox).
    pub(crate) fn has_queued_work(&self) -> bool {
        !self.global.is_empty()
            || self
                .workers
                .iter()
                .any(|w| !w.spawnq.is_empty() || !w.inbox.is_empty())
    }
}

fn ptr_eq(a: &Arc<Shared>, b: &Shared) -> bool {
    std::ptr::eq(Arc::as_ptr(a), b)
}

/// A per-thread xorshift for placement from plain threads (no shared
/// counter: that would be another contended RMW per spawn).
fn plain_thread_rand() -> u32 {
    thread_local! {
        static RNG: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    RNG.with(|c| {
        let mut x = c.get();
        if x == 0 {
            // Seed from the address of the thread-local: distinct per thread.
            x = (c as *const _ as usize as u32) | 1;
        }
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c.set(x);
        x
    })
}

/// A gopark runtime: worker threads, their queues and timers, and a poller
/// (an epoll per worker). Dropping it stops the workers and cancels every coroutine: a
/// parked one unwinds from its park point on its own worker, so its
/// destructors run (they may park; socket operations fail at once and
/// timers are all due), and its join handle gets an error. A coroutine that
/// can never finish unwinding (a destructor waits for something nothing will
/// do) is leaked with a message on stderr; `drop` never hangs on it.
///
/// Most programs use the default runtime through [`spawn`](crate::spawn),
/// [`go!`](crate::go) and [`run`](crate::run); build your own for isolation
/// (tests, libraries) or to choose the worker count.
///
/// ```
/// let rt = gopark::Runtime::builder().workers(2).build().unwrap();
/// let h = rt.spawn(|| 6 * 7);
/// assert_eq!(h.join().unwrap(), 42);
/// assert_eq!(rt.run(|| gopark::current().is_some()), true);
/// ```
///
/// `Debug` shows the worker count, the coroutines not yet finished
/// (started or queued) and the live ones among them (started):
/// `Runtime { workers: 2, coroutines: 0, live: 0 }`. [`Runtime::metrics`]
/// has the full picture.
pub struct Runtime {
    shared: Arc<Shared>,
    threads: Vec<ThreadHandle<()>>,
    monitor: Option<ThreadHandle<()>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The sum of the workers' loads: a snapshot, racing with spawns.
        let coroutines: usize = self.shared.workers.iter().map(|w| w.load.get()).sum();
        f.debug_struct("Runtime")
            .field("workers", &self.shared.workers.len())
            .field("coroutines", &coroutines)
            .field("live", &metrics::live(&self.shared))
            .finish()
    }
}

/// Configures and builds a [`Runtime`].
///
/// ```
/// let rt = gopark::Runtime::builder()
///     .workers(1)
///     .stack_size(64 * 1024)
///     .name("svc")
///     .build()
///     .unwrap();
/// assert_eq!(rt.workers(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct RuntimeBuilder {
    workers: Option<usize>,
    stack_size: usize,
    name: String,
    max_blocking_threads: usize,
    stall_threshold: Option<Duration>,
    unjoined_panic: Option<UnjoinedPanic>,
    deadlock_report: bool,
    dump_signal: Option<i32>,
    pin_workers: bool,
}

/// What a runtime does when a coroutine panics and no join observes the
/// panic (see [`RuntimeBuilder::unjoined_panic`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnjoinedPanic {
    /// The panic is printed when it happens (by the panic hook) and the
    /// process carries on, as it does when a detached `std::thread`
    /// panics. The default.
    #[default]
    Continue,
    /// The panic is printed, the coroutine's stack unwinds (its destructors
    /// run), and then the process aborts, as a Go program dies of an
    /// unrecovered panic in any goroutine.
    Abort,
}

impl RuntimeBuilder {
    /// Number of worker threads (Go's GOMAXPROCS). Default: the
    /// `GOPARK_WORKERS` environment variable, else
    /// [`std::thread::available_parallelism`], which on Linux honours both
    /// the CPU affinity mask (`sched_getaffinity`, e.g. `taskset`) and the
    /// cgroup CPU quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us`; a container's
    /// `--cpus`), whichever is smaller, with a fractional quota rounded
    /// down and at least 1. (Go 1.25 rounds a quota up and uses at least 2;
    /// gopark rounds down, since a worker beyond the quota only gets
    /// throttled.) Read when the runtime is built. A `GOPARK_WORKERS` that
    /// is not a positive integer is ignored with a warning on stderr (once
    /// per process).
    ///
    /// Coroutines start on the least-loaded worker; see
    /// [`Builder::worker`](crate::Builder::worker) to choose one.
    ///
    /// ```
    /// let rt = gopark::Runtime::builder().workers(3).build().unwrap();
    /// assert_eq!(rt.workers(), 3);
    ///
    /// // The default, unless GOPARK_WORKERS says otherwise:
    /// if std::env::var_os("GOPARK_WORKERS").is_none() {
    ///     let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    ///     assert_eq!(gopark::Runtime::new().unwrap().workers(), cpus);
    /// }
    /// ```
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Pins each worker thread to its own CPU (default off): worker `i` to
    /// the `i`-th CPU of the affinity mask of the thread that builds the
    /// runtime (`taskset`, a container's cpuset). Building fails with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) when the mask holds
    /// fewer CPUs than there are workers.
    ///
    /// A started coroutine never leaves its worker; pinned, the worker never
    /// leaves its CPU either, so a connection's coroutine, its socket's
    /// softirq-warmed buffers and its stack stay in that CPU's caches, and the
    /// kernel cannot stack two workers on one CPU while another idles (which
    /// it does when a load generator or other busy threads share the
    /// machine: see docs/PERFORMANCE.md for the measurements). The price is
    /// the kernel's balancing: a pinned worker whose CPU is busy with another
    /// process cannot move to an idle one, so pin only where the runtime has
    /// its CPUs to itself (a dedicated machine or an exclusive cpuset).
    ///
    /// Threads started from a coroutine (`std::thread::spawn`) inherit its
    /// worker's one-CPU mask, as on any pinned thread; the runtime's own
    /// blocking-pool threads and its monitor run on the builder's whole mask.
    /// A worker that cannot be pinned (its CPU went offline since the
    /// runtime was built) runs unpinned, with a warning on stderr.
    ///
    /// ```
    /// let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    /// let rt = gopark::Runtime::builder().workers(1).pin_workers(true).build().unwrap();
    /// assert_eq!(rt.workers(), 1);
    /// // More workers than CPUs cannot be pinned one to a CPU.
    /// let err = gopark::Runtime::builder().workers(cpus + 1).pin_workers(true).build();
    /// assert_eq!(err.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn pin_workers(mut self, on: bool) -> Self {
        self.pin_workers = on;
        self
    }

    /// Default stack size for this runtime's coroutines (default 256 KiB,
    /// committed lazily); [`Builder::stack_size`](crate::Builder::stack_size)
    /// overrides it per coroutine. As there, a size below the 16 KiB minimum
    /// (`0` included) becomes 16 KiB and sizes are rounded up to whole pages;
    /// more than 1 TiB makes each spawn fail.
    ///
    /// ```
    /// let rt = gopark::Runtime::builder().stack_size(1 << 20).build().unwrap();
    /// rt.run(|| { let big = [0u8; 512 * 1024]; std::hint::black_box(&big); });
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Prefix of the worker threads' names (default `gopark`).
    ///
    /// ```
    /// let rt = gopark::Runtime::builder().name("net").workers(1).build().unwrap();
    /// let name = rt.run(|| std::thread::current().name().map(str::to_owned));
    /// assert_eq!(name.as_deref(), Some("net-worker-0"));
    /// ```
    pub fn name(mut self, prefix: impl Into<String>) -> Self {
        self.name = prefix.into();
        self
    }

    /// Most threads the runtime's blocking pool may run at once (default
    /// 512, as tokio's). The pool serves [`blocking`](crate::blocking),
    /// [`spawn_blocking`](crate::spawn_blocking), [`gopark::fs`](crate::fs),
    /// the standard streams of [`gopark::io`](crate::io) and name
    /// resolution. It starts empty and grows on demand: a job goes to an idle
    /// pool thread, else to a new one while under this cap, else it queues
    /// (first in, first out) until a thread is free. A thread idle for 10
    /// seconds exits, so an idle runtime keeps no pool threads and uses no
    /// CPU. Each runtime has its own pool; when the runtime is dropped, its
    /// pool threads finish the jobs already queued and exit. Zero counts as
    /// one.
    ///
    /// ```
    /// let rt = gopark::Runtime::builder().workers(1).max_blocking_threads(2).build().unwrap();
    /// let v = rt.run(|| {
    ///     // Eight jobs, two threads: they queue, and all complete.
    ///     let hs: Vec<_> = (0..8).map(|i| gopark::spawn_blocking(move || i)).collect();
    ///     hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
    /// });
    /// assert_eq!(v, 28);
    /// ```
    pub fn max_blocking_threads(mut self, n: usize) -> Self {
        self.max_blocking_threads = n;
        self
    }

    /// Reports a coroutine that runs too long without parking or yielding
    /// (default 100 ms; the `GOPARK_STALL_MS` environment variable, in
    /// milliseconds, sets the default, read when the runtime is built; zero
    /// turns the report off). A `GOPARK_STALL_MS` that is not a whole
    /// number of milliseconds is ignored with a warning on stderr, once per
    /// process.
    ///
    /// A started coroutine never leaves its worker, so one that runs a CPU
    /// loop or a blocking call holds up every coroutine on that worker. A
    /// monitor thread (Go's sysmon) samples the workers
    /// every 10 ms while any is awake and sleeps while all of them do; when
    /// a worker has run the same coroutine for longer than this threshold,
    /// it writes one line to stderr, once per stall:
    ///
    /// ```text
    /// gopark: coroutine 'crunch' (id 7) has run on worker 0 for 250 ms without parking or yielding; every coroutine on that worker waits (a CPU loop or a blocking call? see gopark::blocking / yield_now)
    /// ```
    ///
    /// Move such work to [`blocking`](crate::blocking), or call
    /// [`yield_now`](crate::yield_now) in long loops. The time is measured
    /// by the monitor's samples, so it is accurate to about 10 ms.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = gopark::Runtime::builder()
    ///     .workers(1)
    ///     .stall_threshold(Duration::from_millis(50))
    ///     .build()
    ///     .unwrap();
    /// // Yields often enough: no report.
    /// rt.run(|| {
    ///     let t = std::time::Instant::now();
    ///     while t.elapsed() < Duration::from_millis(20) {
    ///         gopark::yield_now();
    ///     }
    /// });
    /// // No stall report (the monitor thread still runs for the deadlock
    /// // report unless that is off too):
    /// let quiet = gopark::Runtime::builder()
    ///     .stall_threshold(Duration::ZERO)
    ///     .build()
    ///     .unwrap();
    /// # drop(quiet);
    /// ```
    pub fn stall_threshold(mut self, threshold: Duration) -> Self {
        self.stall_threshold = Some(threshold);
        self
    }

    /// What happens when a coroutine panics and no [`join`] observes the
    /// panic: its [`JoinHandle`] was dropped (detached) before it ended, or
    /// is dropped after it ended without being joined. Default:
    /// [`UnjoinedPanic::Continue`], or the `GOPARK_UNJOINED_PANIC`
    /// environment variable (`abort` or `continue`; another value is
    /// ignored with a warning on stderr), which also sets it for the
    /// default runtime.
    ///
    /// Either way the panic is printed when it happens, naming the
    /// coroutine, and a joined panic is the joiner's to handle: `join`
    /// returns it as an `Err`, and a [`scope`](crate::scope) re-raises its
    /// children's panics. With [`UnjoinedPanic::Abort`], a panic nobody will
    /// see as an `Err` ends the process (with `SIGABRT`, after one more line
    /// on stderr), as it would in Go, instead of leaving a server running
    /// without the coroutine that failed. A coroutine cancelled by the
    /// runtime's shutdown has not panicked and does not abort.
    ///
    /// [`join`]: JoinHandle::join
    ///
    /// ```
    /// use gopark::UnjoinedPanic;
    /// let rt = gopark::Runtime::builder()
    ///     .unjoined_panic(UnjoinedPanic::Abort)
    ///     .build()
    ///     .unwrap();
    /// // A joined panic is observed: an `Err`, no abort.
    /// let h = rt.spawn(|| panic!("seen"));
    /// assert!(h.join().is_err());
    /// ```
    pub fn unjoined_panic(mut self, what: UnjoinedPanic) -> Self {
        self.unjoined_panic = Some(what);
        self
    }

    /// Whether to report a runtime whose coroutines all wait on each other
    /// (default on). When no coroutine is running or runnable, and none
    /// waits on a descriptor, a timer or the blocking pool, and that has
    /// lasted a second, the monitor thread writes once to stderr
    ///
    /// ```text
    /// gopark: all coroutines are asleep - possible deadlock
    /// ```
    ///
    /// followed by the [dump](Runtime::dump); once per such state (it is
    /// written again only after some coroutine has run). It only warns: a
    /// plain thread may still hold what they wait for (a channel's sender,
    /// a lock). It costs nothing while a worker is awake and adds no
    /// periodic wake-up to an idle runtime.
    ///
    /// ```
    /// let rt = gopark::Runtime::builder().deadlock_report(false).build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn deadlock_report(mut self, on: bool) -> Self {
        self.deadlock_report = on;
        self
    }

    /// Writes the [dump](Runtime::dump) of every runtime of the process to
    /// stderr whenever the process receives `signal` (for example
    /// `libc::SIGQUIT`, as Go does, or `libc::SIGUSR1`); the process keeps
    /// running. The `GOPARK_DUMP_SIGNAL` environment variable (`SIGQUIT`,
    /// `SIGUSR1`, `SIGUSR2` or a number) does the same for every runtime
    /// built while it is set, without a code change. Off by default.
    ///
    /// The signal handler only writes a byte to a pipe (see
    /// [`signal::notify`](crate::signal::notify)); a thread named
    /// `gopark-dump` takes the dump and writes it, so the dump runs in
    /// ordinary code. Installed once per signal per process, when the
    /// runtime is built.
    ///
    /// # Errors
    /// [`build`](Self::build) fails with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for a signal that
    /// cannot be caught or reports faults (`SIGKILL`, `SIGSEGV`, ...).
    ///
    /// ```
    /// let rt = gopark::Runtime::builder().dump_signal(libc::SIGUSR1).build().unwrap();
    /// assert!(gopark::Runtime::builder().dump_signal(libc::SIGKILL).build().is_err());
    /// # drop(rt);
    /// ```
    pub fn dump_signal(mut self, signal: i32) -> Self {
        self.dump_signal = Some(signal);
        self
    }

    /// Starts the worker threads.
    ///
    /// # Errors
    /// If the poller (epoll, eventfd) or a worker thread cannot be created,
    /// or the worker count is zero.
    ///
    /// ```
    /// let err = gopark::Runtime::builder().workers(0).build().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn build(self) -> io::Result<Runtime> {
        let n = match self.workers {
            Some(n) => n,
            None => default_workers(),
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a runtime needs at least one worker",
            ));
        }
        // Before anything starts: a mask too small is the caller's error.
        let pins = if self.pin_workers {
            Some(affinity::worker_cpus(n)?)
        } else {
            None
        };
        crate::spawn::install_panic_hook();
        for sig in self.dump_signal.into_iter().chain(dump::signal_from_env()) {
            dump::install_signal(sig)?;
        }
        let workers = (0..n)
            .map(|_| WorkerShared {
                spawnq: ArrayQueue::new(SPAWNQ_CAP),
                inbox: SegQueue::new(),
                timers: timer::Timers::new(),
                sleep: SleepState::new(),
                woken_spinning: AtomicBool::new(false),
                idle: AtomicBool::new(false),
                thread: OnceLock::new(),
                load: Load::default(),
                monitor: monitor::Slot::default(),
                metrics: metrics::Counters::default(),
                registry: registry::Registry::default(),
            })
            .collect();
        let epoch = Instant::now();
        let shared = Arc::new(Shared {
            workers,
            global: SegQueue::new(),
            nidle: AtomicUsize::new(0),
            nspinning: AtomicUsize::new(0),
            poller: Poller::new(n)?,
            shutdown: AtomicBool::new(false),
            shutdown_active: AtomicUsize::new(n),
            shutdown_idle: AtomicUsize::new(0),
            shutdown_stuck: AtomicBool::new(false),
            stack_size: self.stack_size,
            epoch,
            epoch_raw: mono_nanos(),
            next_timer_worker: AtomicUsize::new(0),
            blocking: crate::blocking::PoolHandle::new(
                &self.name,
                self.max_blocking_threads,
                pins.as_ref().map(|(allowed, _)| *allowed),
            ),
            monitor: monitor::Monitor::new(
                self.stall_threshold
                    .unwrap_or_else(monitor::threshold_from_env),
                self.deadlock_report,
                n,
            ),
            unjoined_panic: self.unjoined_panic.unwrap_or_else(unjoined_panic_from_env),
            spawned_outside: metrics::Outside::default(),
            name: self.name.clone(),
        });
        dump::register(&shared);
        let mut rt = Runtime {
            shared: shared.clone(),
            threads: Vec::with_capacity(n),
            monitor: None,
        };
        for i in 0..n {
            let s = shared.clone();
            let cpu = pins.as_ref().map(|(_, cpus)| cpus[i]);
            let t = thread::Builder::new()
                .name(format!("{}-worker-{i}", self.name))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        if let Err(e) = affinity::CpuSet::only(cpu).apply_to_current_thread() {
                            eprintln!(
                                "gopark: worker {i} runs unpinned: cannot pin it to CPU {cpu}: {e}"
                            );
                        }
                    }
                    worker::run(s, i)
                })?;
            rt.threads.push(t);
        }
        if shared.monitor.enabled() {
            let s = shared.clone();
            let t = thread::Builder::new()
                .name(format!("{}-monitor", self.name))
                .spawn(move || monitor::run(s))?;
            rt.monitor = Some(t);
        }
        Ok(rt)
    }
}

/// The worker count when the builder sets none: `GOPARK_WORKERS`, else the
/// available parallelism.
///
/// A `GOPARK_WORKERS` that is not a positive integer (`0`, `abc`) is
/// ignored, as Go ignores a bad `GOMAXPROCS`, but unlike Go with a warning
/// on stderr, once per process: a typo in a deployment's environment would
/// otherwise change the worker count unnoticed.
fn default_workers() -> usize {
    let cpus = || thread::available_parallelism().map_or(1, |n| n.get());
    let Some(v) = std::env::var_os("GOPARK_WORKERS") else {
        return cpus();
    };
    match v.to_str().and_then(|s| s.trim().parse::<usize>().ok()) {
        Some(n) if n > 0 => n,
        _ => {
            let n = cpus();
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                eprintln!(
                    "gopark: ignoring GOPARK_WORKERS={}: not a positive integer; using {n} workers",
                    v.to_string_lossy()
                );
            });
            n
        }
    }
}

/// The reaction to an unjoined panic when the builder sets none:
/// `GOPARK_UNJOINED_PANIC` (`abort` or `continue`), else
/// [`UnjoinedPanic::Continue`]; another value is ignored with a warning on
/// stderr, once per process.
fn unjoined_panic_from_env() -> UnjoinedPanic {
    let Some(v) = std::env::var_os("GOPARK_UNJOINED_PANIC") else {
        return UnjoinedPanic::Continue;
    };
    match v.to_str().map(str::trim) {
        Some(s) if s.eq_ignore_ascii_case("abort") => UnjoinedPanic::Abort,
        Some(s) if s.eq_ignore_ascii_case("continue") => UnjoinedPanic::Continue,
        _ => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                eprintln!(
                    "gopark: ignoring GOPARK_UNJOINED_PANIC={}: expected abort or continue",
                    v.to_string_lossy()
                );
            });
            UnjoinedPanic::Continue
        }
    }
}

impl Runtime {
    /// A builder with the defaults (see [`RuntimeBuilder`]).
    ///
    /// ```
    /// let rt = gopark::Runtime::builder().build().unwrap();
    /// assert!(rt.workers() >= 1);
    /// ```
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            workers: None,
            stack_size: DEFAULT_STACK_SIZE,
            name: "gopark".to_owned(),
            max_blocking_threads: crate::blocking::DEFAULT_MAX_THREADS,
            stall_threshold: None,
            unjoined_panic: None,
            deadlock_report: true,
            pin_workers: false,
            dump_signal: None,
        }
    }

    /// A runtime with the default settings.
    ///
    /// # Errors
    /// As [`RuntimeBuilder::build`].
    ///
    /// ```
    /// let rt = gopark::Runtime::new().unwrap();
    /// assert_eq!(rt.spawn(|| 1).join().unwrap(), 1);
    /// ```
    pub fn new() -> io::Result<Runtime> {
        Runtime::builder().build()
    }

    /// Number of worker threads.
    ///
    /// ```
    /// assert_eq!(gopark::Runtime::builder().workers(2).build().unwrap().workers(), 2);
    /// ```
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// Spawns a coroutine on this runtime.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`Builder::spawn_on`](crate::Builder::spawn_on)
    /// for the fallible form).
    ///
    /// ```
    /// let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    /// assert_eq!(rt.spawn(|| "hi").join().unwrap(), "hi");
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let at = std::panic::Location::caller();
        crate::spawn::spawn_in(&self.shared, None, None, None, at, f)
            .unwrap_or_else(|e| panic!("gopark: failed to spawn a coroutine: {e}"))
    }

    /// Runs `f` as a coroutine on this runtime and blocks the calling thread
    /// (or parks the calling coroutine) until it returns. A panic in `f` is
    /// resumed in the caller.
    ///
    /// ```
    /// let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    /// let v = rt.run(|| {
    ///     let h = gopark::spawn(|| 20);
    ///     h.join().unwrap() + 22
    /// });
    /// assert_eq!(v, 42);
    /// ```
    #[track_caller]
    pub fn run<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.spawn(f).join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Before the flag: a worker's loop looks at the flag only when its
        // timers' `next` is not `u64::MAX`, and one that saw the flag (here
        // or in its idle check) sees the stop too (see `timer`).
        for w in self.shared.workers.iter() {
            w.timers.stop();
        }
        self.shared.shutdown.store(true, Ordering::SeqCst);
        for w in 0..self.shared.workers.len() {
            self.shared.wake_worker(w);
        }
        self.shared.monitor.wake();
        let inside =
            worker::worker_here().is_some_and(|ctx| Arc::ptr_eq(&ctx.shared, &self.shared));
        if inside {
            // Dropped from one of its own coroutines: the workers stop on
            // their own; joining them here would wait for ourselves.
            return;
        }
        for t in self.threads.drain(..).chain(self.monitor.take()) {
            let _ = t.join();
        }
        // Whatever is still queued never started (or was cancelled already).
        worker::cancel_queued(&self.shared, true);
    }
}

/// The default runtime, if it has started.
static DEFAULT: once_cell::sync::OnceCell<Runtime> = once_cell::sync::OnceCell::new();

/// The default runtime, started on first use.
pub(crate) fn default_runtime() -> &'static Runtime {
    DEFAULT.get_or_init(|| {
        Runtime::builder()
            .build()
            .unwrap_or_else(|e| panic!("gopark: cannot start the default runtime: {e}"))
    })
}

/// The default runtime if something has started it.
pub(crate) fn default_runtime_if_started() -> Option<&'static Runtime> {
    DEFAULT.get()
}

/// Calls `f` with the runtime of the calling worker, else the default one.
pub(crate) fn with_current_shared<R>(f: impl FnOnce(&Arc<Shared>) -> R) -> R {
    match worker::worker_here() {
        Some(ctx) => f(&ctx.shared),
        None => f(default_runtime().shared()),
    }
}

/// The runtime of the calling worker, else the default one.
pub(crate) fn current_shared() -> Arc<Shared> {
    with_current_shared(Arc::clone)
}
