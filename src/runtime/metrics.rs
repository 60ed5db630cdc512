//! Runtime metrics: per-worker counters, and the snapshot that
//! [`Runtime::metrics`] and [`metrics`] build from them.
//!
//! ## Who writes what
//! Every counter belongs to one worker and only that worker's thread writes
//! it; the one exception, the stall count, has one writer too (the monitor
//! thread). A single writer needs no read-modify-write: an increment is a
//! Relaxed load and a Relaxed store of the same word (on x86-64 and aarch64
//! a plain load, add and store, as for a non-atomic integer). The counters
//! of a worker sit together in [`Counters`], aligned to their own cache
//! lines in `WorkerShared`, away from the fields other threads write (the
//! load counter, the queues). A reader sums them with plain loads.
//!
//! | counter | written | cost there |
//! |---|---|---|
//! | `runq` | every 61 scheduling rounds and after each sleep | the run queue's length loaded and stored |
//! | resumes | before each resume | none: the stall monitor's resume count (`monitor::Slot`) |
//! | `parks` | after a park's commit published the coroutine | one add to memory (`incq`) |
//! | `started`, `ended` | first resume, end of a coroutine | one load + store each |
//! | `spawned`, `handoffs` | a spawn from one of the runtime's coroutines | one load + store (two when placed on another worker) |
//! | `handoffs` | a coroutine readied for another worker | a thread-local lookup beside the inbox push |
//! | `wakeups` | a sleeping worker woken | a thread-local lookup beside the wake-up syscall |
//! | `steals` | a successful steal | one load + store |
//! | `spins`, `spins_empty` | a spin before a sleep (only after quick hand-offs) | one load + store each |
//! | `netpoll_calls`, `netpoll_events` | each poll of the worker's poller shard | two load + store pairs per poll, not per event |
//! | `idle` | a worker's sleep in its poller | two clock reads and two stores per sleep, around a blocking `epoll_wait` |
//! | `stalls` | a stall report (monitor thread) | one load + store |
//! | `rescued` (counted in `steals`) | the monitor moved queued coroutines here from a stuck worker (monitor thread) | one load + store |
//!
//! Spawns from threads that are not workers of the runtime go to one
//! shared counter with a `fetch_add`: that path already costs a wake-up.
//!
//! The run queue's length is not published per resume: that one store,
//! with the queue's `RefCell` check, cost 5 of the 15 instructions the
//! counters first added to an echo request (callgrind, 984 before). It is
//! sampled where the worker touches the queue anyway: every 61 rounds (the
//! fairness check) and after each sleep's poll. An echo request now costs
//! about 12 instructions more than without metrics (995, +1.2%); the
//! remaining cost is the `parks` increment, the idle clock and code layout.
//!
//! ## Busy and idle time
//! A worker's idle time is the time it spent asleep in its poller with
//! nothing to run; its busy time is the rest of its life. Reading a clock
//! per resume would cost more than the resume, so only the sleep is timed:
//! [`IdleClock`] keeps the idle nanoseconds in one word, with a flag bit for
//! a sleep in progress, whose start is folded into the word (see there), so
//! a reader gets the idle time up to now with one load and no lock.
//!
//! ## Reading
//! A snapshot loads each counter once, without a lock: each value is
//! exact for some moment during the read, and counters only grow, but two
//! counters may be read a few instructions apart while the worker runs.
//! `started` is read after `ended` (Acquire, paired with the Release store
//! of `ended`), so a worker's live count is never negative. The blocking
//! pool's figures are read under the pool's lock.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Runtime, Shared};

/// A counter with one writer (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds one. Only the counter's single writer may call this.
    #[inline]
    pub(crate) fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`. Only the counter's single writer may call this.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Adds one, with Release: a reader that loads the new value with
    /// [`Counter::get_acquire`] sees every write the writer made before.
    #[inline]
    pub(crate) fn inc_release(&self) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Release,
        );
    }

    /// Stores `v`. Only the counter's single writer may call this.
    #[inline]
    pub(crate) fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn get_acquire(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// A worker's idle time in one word, written by the worker only.
///
/// Bit 0 is set while the worker sleeps; bits 1..64 hold a 63-bit number
/// `acc`, in nanoseconds of the runtime's clock (`Shared::nanos`), taken
/// modulo 2^63:
/// - awake: `acc` is the idle time so far;
/// - asleep since `t`: `acc` is the idle time before this sleep minus `t`,
///   so the idle time at `now` is `acc + now`.
///
/// Going to sleep at `t` subtracts `t`, waking at `u` adds `u`: one load and
/// one store each, and a reader needs one load and the current time. The
/// word starts as "asleep since 0", so the time between the runtime's start
/// and the worker thread's first [`IdleClock::wake`] counts as idle.
#[derive(Debug)]
pub(crate) struct IdleClock(AtomicU64);

/// The low 63 bits.
const ACC_MASK: u64 = u64::MAX >> 1;

impl IdleClock {
    fn new() -> IdleClock {
        IdleClock(AtomicU64::new(1))
    }

    /// The worker goes to sleep at `now` (nanoseconds since the epoch).
    #[inline]
    pub(crate) fn sleep(&self, now: u64) {
        let w = self.0.load(Ordering::Relaxed);
        debug_assert_eq!(w & 1, 0, "gopark: idle clock: asleep twice");
        let acc = (w >> 1).wrapping_sub(now) & ACC_MASK;
        self.0.store((acc << 1) | 1, Ordering::Relaxed);
    }

    /// The worker wakes at `now`.
    #[inline]
    pub(crate) fn wake(&self, now: u64) {
        let w = self.0.load(Ordering::Relaxed);
        debug_assert_eq!(w & 1, 1, "gopark: idle clock: awake twice");
        let acc = (w >> 1).wrapping_add(now) & ACC_MASK;
        self.0.store(acc << 1, Ordering::Relaxed);
    }

    /// The raw word, for [`idle_at`].
    fn load(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Idle nanoseconds at `now` from a word loaded before `now` was read.
///
/// `now` is not earlier than the start of a sleep the word shows, in
/// practice: the worker read its clock before its store, the reader after
/// its load, and the monotonic clock agrees across CPUs. Should the
/// reader's clock read still come out a few nanoseconds early, the result
/// is short by as much, or, if that is more than the idle time before the
/// sleep, the sum wraps and the result exceeds `now`: `None`, read the
/// clock again. Either way the result never exceeds `now`, so busy time
/// (`now - idle`) never underflows.
fn idle_at(word: u64, now: u64) -> Option<u64> {
    let idle = if word & 1 == 1 {
        (word >> 1).wrapping_add(now) & ACC_MASK
    } else {
        word >> 1
    };
    // Idle periods are disjoint and lie within [0, now].
    (idle <= now).then_some(idle)
}

/// A worker's counters (see the module docs), on cache lines of their own.
#[repr(align(64))]
#[derive(Debug)]
pub(crate) struct Counters {
    /// Length of the run queue (with `runnext`), sampled (module docs).
    pub(crate) runq: Counter,
    pub(crate) parks: Counter,
    pub(crate) netpoll_calls: Counter,
    pub(crate) netpoll_events: Counter,
    pub(crate) idle: IdleClock,
    pub(crate) started: Counter,
    /// Release store: see the module docs (Reading).
    pub(crate) ended: Counter,
    pub(crate) spawned: Counter,
    pub(crate) steals: Counter,
    pub(crate) handoffs: Counter,
    pub(crate) wakeups: Counter,
    pub(crate) spins: Counter,
    pub(crate) spins_empty: Counter,
    /// Written by the monitor thread.
    pub(crate) stalls: Counter,
    /// Unstarted coroutines the monitor moved here from a stuck worker;
    /// written by the monitor thread.
    pub(crate) rescued: Counter,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            runq: Counter::default(),
            parks: Counter::default(),
            netpoll_calls: Counter::default(),
            netpoll_events: Counter::default(),
            idle: IdleClock::new(),
            started: Counter::default(),
            ended: Counter::default(),
            spawned: Counter::default(),
            steals: Counter::default(),
            handoffs: Counter::default(),
            wakeups: Counter::default(),
            spins: Counter::default(),
            spins_empty: Counter::default(),
            stalls: Counter::default(),
            rescued: Counter::default(),
        }
    }
}

/// Coroutines spawned from threads that are not the runtime's workers,
/// on a line of its own (other threads write it).
#[repr(align(64))]
#[derive(Debug, Default)]
pub(crate) struct Outside(AtomicU64);

impl Outside {
    pub(crate) fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Started, unfinished coroutines of a runtime (for `Debug`).
pub(crate) fn live(sh: &Shared) -> usize {
    sh.workers.iter().map(|w| live_of(&w.metrics)).sum()
}

fn live_of(c: &Counters) -> usize {
    // `ended` first: see the module docs (Reading).
    let ended = c.ended.get_acquire();
    let started = c.started.get();
    usize::try_from(started.saturating_sub(ended)).unwrap_or(usize::MAX)
}

/// A snapshot of a runtime's metrics: [`Runtime::metrics`] or [`metrics`].
///
/// Totals for the whole runtime, and per worker a [`WorkerMetrics`]. The
/// counters (`spawned_total`, parks, resumes, ...) count from the runtime's
/// start and only grow: compare two snapshots for a rate. The other figures
/// (live coroutines, queue lengths, blocking threads) are the state at the
/// time of the snapshot.
///
/// Taking a snapshot costs a few loads per worker and one lock of the
/// blocking pool; the workers are not stopped, so two figures may come
/// from instants a few instructions apart.
///
/// `Debug` prints every figure, per worker too:
///
/// ```
/// let rt = gopark::Runtime::builder().workers(2).build().unwrap();
/// rt.run(|| gopark::time::sleep(std::time::Duration::from_millis(1)));
/// let m = rt.metrics();
/// assert_eq!(m.workers(), 2);
/// assert_eq!(m.spawned_total(), 1);
/// assert_eq!(m.live_coroutines(), 0);
/// assert!(m.per_worker().iter().map(|w| w.parks()).sum::<u64>() >= 1);
/// println!("{m:#?}");
/// ```
#[derive(Debug, Clone)]
pub struct RuntimeMetrics {
    uptime: Duration,
    live_coroutines: usize,
    spawned_total: u64,
    spawned_outside: u64,
    global_queue_depth: usize,
    blocking_threads: usize,
    blocking_idle_threads: usize,
    blocking_queue_depth: usize,
    workers: Vec<WorkerMetrics>,
}

/// One worker's figures in a [`RuntimeMetrics`] snapshot.
///
/// Counters count from the runtime's start; the others are the state at
/// the snapshot. "This worker" is the worker thread and the coroutines that
/// live on it: a coroutine that has started never changes workers.
///
/// `Display` prints one line, `Debug` every field:
///
/// ```
/// let rt = gopark::Runtime::builder().workers(1).build().unwrap();
/// let line = rt.metrics().worker(0).to_string();
/// assert!(line.starts_with("worker 0: 0 live, 0 runnable, "), "{line}");
/// ```
#[derive(Debug, Clone)]
pub struct WorkerMetrics {
    index: usize,
    live_coroutines: usize,
    runnable: usize,
    sleeping: bool,
    busy: Duration,
    idle: Duration,
    started: u64,
    spawned: u64,
    resumes: u64,
    parks: u64,
    steals: u64,
    netpoll_calls: u64,
    netpoll_events: u64,
    handoffs: u64,
    wakeups: u64,
    spins: u64,
    spins_empty: u64,
    stalls: u64,
}

impl RuntimeMetrics {
    /// Time since the runtime was built.
    pub fn uptime(&self) -> Duration {
        self.uptime
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Coroutines that have started and not ended (running, runnable or
    /// parked): the sum of [`WorkerMetrics::live_coroutines`]. Coroutines
    /// spawned but not started yet are not counted: they wait in a queue
    /// ([`WorkerMetrics::runnable`], [`RuntimeMetrics::global_queue_depth`]).
    pub fn live_coroutines(&self) -> usize {
        self.live_coroutines
    }

    /// Coroutines spawned on this runtime since it started, whether they
    /// have started, ended or still wait: the sum of
    /// [`WorkerMetrics::spawned`] plus [`RuntimeMetrics::spawned_outside`].
    /// A spawn that failed (no stack memory) is not counted.
    pub fn spawned_total(&self) -> u64 {
        self.spawned_total
    }

    /// The part of [`RuntimeMetrics::spawned_total`] spawned from threads
    /// that are not this runtime's workers (plain threads, coroutines of
    /// another runtime).
    pub fn spawned_outside(&self) -> u64 {
        self.spawned_outside
    }

    /// Unstarted coroutines in the runtime's global queue (where a spawn
    /// goes when the chosen worker's spawn queue is full).
    pub fn global_queue_depth(&self) -> usize {
        self.global_queue_depth
    }

    /// Threads of the runtime's blocking pool (running a job or idle); see
    /// [`RuntimeBuilder::max_blocking_threads`](crate::RuntimeBuilder::max_blocking_threads).
    pub fn blocking_threads(&self) -> usize {
        self.blocking_threads
    }

    /// Blocking-pool threads waiting for a job (they exit after 10 idle
    /// seconds). The others run a job or are about to.
    pub fn blocking_idle_threads(&self) -> usize {
        self.blocking_idle_threads
    }

    /// Jobs of [`blocking`](crate::blocking), [`spawn_blocking`](crate::spawn_blocking),
    /// [`fs`](crate::fs) and name resolution waiting for a pool thread. A
    /// job stays here until a thread takes it, so this is briefly non-zero
    /// even under the thread cap; it stays non-zero when every thread is
    /// busy and the cap is reached.
    pub fn blocking_queue_depth(&self) -> usize {
        self.blocking_queue_depth
    }

    /// Worker `i`'s figures.
    ///
    /// # Panics
    /// If `i >= self.workers()`.
    pub fn worker(&self, i: usize) -> &WorkerMetrics {
        &self.workers[i]
    }

    /// Every worker's figures, in worker order.
    pub fn per_worker(&self) -> &[WorkerMetrics] {
        &self.workers
    }
}

impl WorkerMetrics {
    /// The worker's index (as [`worker_index`](crate::worker_index)).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Coroutines that started on this worker and have not ended: running,
    /// runnable or parked. A coroutine counts from its first resume to the
    /// moment it returns, panics or is cancelled by runtime shutdown
    /// (before its join handle sees the result).
    pub fn live_coroutines(&self) -> usize {
        self.live_coroutines
    }

    /// Coroutines waiting for this worker to run them: its run queue
    /// (readied on this worker), its inbox (readied from other threads, or
    /// placed with [`Builder::worker`](crate::Builder::worker)), and its
    /// spawn queue (unstarted, placed here; other workers may still steal
    /// them). The coroutine running now is not counted.
    ///
    /// The inbox and spawn queue are read at the snapshot. The run queue,
    /// which only the worker may touch, is as the worker last published
    /// it: every 61 scheduling rounds (each resume is a round) and after
    /// each sleep; 0 while the worker sleeps. A busy worker's figure may
    /// therefore be up to 61 resumes old.
    pub fn runnable(&self) -> usize {
        self.runnable
    }

    /// True if the worker is asleep in its poller with nothing to run.
    pub fn sleeping(&self) -> bool {
        self.sleeping
    }

    /// Time the worker was not asleep: running coroutines, and the
    /// scheduling, timers and polling around them. `busy() + idle()` is
    /// [`RuntimeMetrics::uptime`].
    pub fn busy(&self) -> Duration {
        self.busy
    }

    /// Time the worker spent asleep in its poller with nothing to run
    /// (including the moments before its thread first ran).
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Coroutines whose first resume was on this worker (they live here
    /// for good). `started() - live_coroutines()` have ended.
    pub fn started(&self) -> u64 {
        self.started
    }

    /// Coroutines spawned by code running on this worker, wherever they
    /// were placed.
    pub fn spawned(&self) -> u64 {
        self.spawned
    }

    /// Times the worker resumed a coroutine: its first run, and each run
    /// after a park, a yield, or a park whose event had already come.
    pub fn resumes(&self) -> u64 {
        self.resumes
    }

    /// Times a coroutine of this worker parked: a wait (socket, channel,
    /// lock, sleep, join, ...) that suspended it until a wake-up. A wait
    /// whose event came before the park took effect is not counted (the
    /// coroutine is resumed at once, which counts as a resume); nor is a
    /// yield.
    pub fn parks(&self) -> u64 {
        self.parks
    }

    /// Unstarted coroutines this worker took from other workers' spawn
    /// queues (it steals only from more loaded workers), and those the
    /// monitor moved here from a worker stuck in one coroutine.
    pub fn steals(&self) -> u64 {
        self.steals
    }

    /// Polls of the worker's poller shard (epoll): the blocking ones when
    /// it sleeps and the non-blocking look every 61 scheduling rounds.
    /// A poll is counted when it returns: a sleep in progress is not yet.
    pub fn netpoll_calls(&self) -> u64 {
        self.netpoll_calls
    }

    /// Coroutines those polls readied: one per socket direction (read,
    /// write) that became ready with a coroutine waiting on it. Readiness
    /// with nobody waiting, and wake-ups of the worker, are not counted.
    pub fn netpoll_events(&self) -> u64 {
        self.netpoll_events
    }

    /// Coroutines this worker handed to another worker of the runtime: a
    /// spawn placed on another worker, and a parked coroutine living on
    /// another worker readied from here (it goes to that worker's inbox).
    pub fn handoffs(&self) -> u64 {
        self.handoffs
    }

    /// Times this worker woke another, sleeping worker of the runtime
    /// (to run a coroutine handed to it, or to look for work to steal).
    pub fn wakeups(&self) -> u64 {
        self.wakeups
    }

    /// Times this worker spun before it slept, instead of sleeping at once:
    /// it does so only while coroutines handed to it by other threads (other
    /// workers, the blocking pool, plain threads) arrived within moments of
    /// its last sleeps, and for at most 20 us. Spinning counts as
    /// [`busy`](WorkerMetrics::busy) time.
    pub fn spins(&self) -> u64 {
        self.spins
    }

    /// Those of the [`spins`](WorkerMetrics::spins) that found nothing and
    /// ended in a sleep; the worker then waits for a new streak of quick
    /// hand-offs before it spins again.
    pub fn spins_empty(&self) -> u64 {
        self.spins_empty
    }

    /// Stalls the stall monitor reported on this worker: a coroutine that
    /// ran longer than [`RuntimeBuilder::stall_threshold`](crate::RuntimeBuilder::stall_threshold)
    /// without parking or yielding (one per such run). Always zero when
    /// the monitor is off.
    pub fn stalls(&self) -> u64 {
        self.stalls
    }
}

/// Reads a snapshot of `sh`'s metrics (see the module docs).
pub(crate) fn snapshot(sh: &Shared) -> RuntimeMetrics {
    let mut workers: Vec<WorkerMetrics> = Vec::with_capacity(sh.workers.len());
    let mut idle_words = Vec::with_capacity(sh.workers.len());
    for (index, ws) in sh.workers.iter().enumerate() {
        let c = &ws.metrics;
        idle_words.push(c.idle.load());
        let runnable =
            usize::try_from(c.runq.get()).unwrap_or(usize::MAX) + ws.inbox.len() + ws.spawnq.len();
        workers.push(WorkerMetrics {
            index,
            live_coroutines: live_of(c),
            runnable,
            sleeping: ws.sleep.is_asleep(),
            busy: Duration::ZERO,
            idle: Duration::ZERO,
            started: c.started.get(),
            spawned: c.spawned.get(),
            resumes: ws.monitor.resumes(),
            parks: c.parks.get(),
            steals: c.steals.get() + c.rescued.get(),
            netpoll_calls: c.netpoll_calls.get(),
            netpoll_events: c.netpoll_events.get(),
            handoffs: c.handoffs.get(),
            wakeups: c.wakeups.get(),
            spins: c.spins.get(),
            spins_empty: c.spins_empty.get(),
            stalls: c.stalls.get(),
        });
    }
    // The clock after the words (see `idle_at`); again if it lagged a
    // sleep that began just before.
    let (now, idle) = loop {
        let now = sh.now();
        let idle: Option<Vec<u64>> = idle_words.iter().map(|&w| idle_at(w, now)).collect();
        if let Some(idle) = idle {
            break (now, idle);
        }
    };
    for (w, idle) in workers.iter_mut().zip(idle) {
        w.idle = Duration::from_nanos(idle);
        w.busy = Duration::from_nanos(now - idle);
    }
    let spawned_outside = sh.spawned_outside.0.load(Ordering::Relaxed);
    let (blocking_threads, blocking_idle_threads, blocking_queue_depth) = sh.blocking.stats();
    RuntimeMetrics {
        uptime: Duration::from_nanos(now),
        live_coroutines: workers.iter().map(|w| w.live_coroutines).sum(),
        spawned_total: workers.iter().map(|w| w.spawned).sum::<u64>() + spawned_outside,
        spawned_outside,
        global_queue_depth: sh.global.len(),
        blocking_threads,
        blocking_idle_threads,
        blocking_queue_depth,
        workers,
    }
}

impl Runtime {
    /// A snapshot of this runtime's metrics: live and spawned coroutines,
    /// the blocking pool, and per worker its coroutines, queue, busy time,
    /// parks, steals, polls, hand-offs and stalls (see [`RuntimeMetrics`]
    /// and [`WorkerMetrics`] for each figure's exact meaning).
    ///
    /// The workers keep these counters as they run, at the cost of a few
    /// plain stores per scheduling operation; this call only reads them.
    ///
    /// ```
    /// let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    /// let (tx, rx) = gopark::chan::bounded::<()>(0);
    /// let h = rt.spawn(move || rx.recv().unwrap());
    /// // Wait until the coroutine has started and parked in `recv`.
    /// while rt.metrics().worker(0).parks() == 0 {
    ///     std::thread::yield_now();
    /// }
    /// let m = rt.metrics();
    /// assert_eq!((m.live_coroutines(), m.spawned_total()), (1, 1));
    /// tx.send(()).unwrap();
    /// h.join().unwrap();
    /// assert_eq!(rt.metrics().live_coroutines(), 0);
    /// ```
    pub fn metrics(&self) -> RuntimeMetrics {
        snapshot(self.shared())
    }
}

/// [`Runtime::metrics`] of the runtime the caller runs on (inside a
/// coroutine), else of the default runtime (started if need be).
///
/// ```
/// let m = gopark::run(gopark::metrics);
/// assert!(m.live_coroutines() >= 1); // the caller itself
/// ```
pub fn metrics() -> RuntimeMetrics {
    super::with_current_shared(|sh| snapshot(sh))
}

impl fmt::Display for WorkerMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "worker {}: {} live, {} runnable, {}, busy {:?} idle {:?}, {} resumes, {} parks, \
             {} steals, {} polls ({} events), {} hand-offs, {} wake-ups, {} spins ({} empty), {} stalls",
            self.index,
            self.live_coroutines,
            self.runnable,
            if self.sleeping { "sleeping" } else { "awake" },
            self.busy,
            self.idle,
            self.resumes,
            self.parks,
            self.steals,
            self.netpoll_calls,
            self.netpoll_events,
            self.handoffs,
            self.wakeups,
            self.spins,
            self.spins_empty,
            self.stalls,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_clock_counts_sleeps_only() {
        let c = IdleClock::new();
        // Asleep since 0: idle up to now.
        assert_eq!(idle_at(c.load(), 40), Some(40));
        c.wake(50);
        assert_eq!(idle_at(c.load(), 70), Some(50));
        c.sleep(100);
        assert_eq!(idle_at(c.load(), 100), Some(50));
        assert_eq!(idle_at(c.load(), 130), Some(80));
        // A reader whose clock is behind the sleep's start: short by the
        // lag, or, past the idle time so far, told to read it again.
        assert_eq!(idle_at(c.load(), 99), Some(49));
        assert_eq!(idle_at(c.load(), 40), None);
        c.wake(200);
        assert_eq!(idle_at(c.load(), 1_000), Some(150));
        // Large clock values (centuries) wrap inside the word correctly.
        let t = 1u64 << 62;
        c.sleep(t);
        c.wake(t + 7);
        assert_eq!(idle_at(c.load(), t + 10), Some(157));
    }

    #[test]
    fn counter_adds() {
        let c = Counter::default();
        c.inc();
        c.add(4);
        c.inc_release();
        assert_eq!(c.get(), 6);
        assert_eq!(c.get_acquire(), 6);
        c.set(2);
        assert_eq!(c.get(), 2);
    }
}
