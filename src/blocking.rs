//! The blocking pool: threads for calls that block their thread (file
//! system calls, name resolution, a blocking C library), so that they do not
//! stall the coroutines of a worker.
//!
//! A started coroutine never leaves its worker thread (docs/SAFETY.md,
//! section 1), so a blocking system call made by a coroutine blocks every
//! coroutine of that worker. [`blocking`] hands the call to a pool thread and
//! parks the coroutine until it returns; [`spawn_blocking`] starts the call
//! and hands back a [`BlockingHandle`] to join later.
//!
//! ## The pool
//! Each runtime has its own pool, started empty. A job goes to an idle pool
//! thread if there is one; otherwise a new thread is started, up to
//! [`RuntimeBuilder::max_blocking_threads`](crate::RuntimeBuilder::max_blocking_threads)
//! (default 512); beyond that, jobs queue (first in, first out) until a thread
//! is free. A thread that stays idle for 10 seconds exits, so an idle runtime
//! keeps no pool threads and uses no CPU (the idle threads sleep on a
//! condition variable; nothing wakes them periodically). While jobs arrive
//! quickly (two in a row within 200 us of the thread going idle, as a
//! coroutine calling [`blocking`] in a loop makes them), an idle thread
//! first spins up to 20 us and takes the next job without the condition
//! variable's wake-up (a futex call, and the kernel's wake-up of the thread:
//! 25-50 us on a VM whose idle CPUs halt). Threads are named
//! `<runtime name>-blocking`.
//!
//! The pool is per runtime rather than per process so that the cap is a
//! property of the runtime that sets it, one runtime's blocking calls cannot
//! use up another's threads, and the threads of a dropped runtime go away
//! with it: once the runtime is gone its pool threads finish the jobs already
//! queued and then exit, without waiting out the idle timeout. The calls
//! themselves are never interrupted (a system call in progress cannot be).
//!
//! ## Cancellation
//! The job's result goes to a slot shared (`Arc`) between the job and the
//! waiting coroutine, never to the coroutine's stack. If the coroutine is
//! cancelled while it waits (its runtime is dropped), it unwinds at once:
//! it withdraws its wake-up from the slot and lets go of the slot; the job
//! runs to the end on its pool thread, which then drops the result.

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::coroutine::{self, Waiter};
use crate::runtime::affinity::CpuSet;
use crate::runtime::worker::{HANDOFF_QUICK_NS, HANDOFF_SPIN, HANDOFF_STREAK, SPIN_HINTS};
use crate::runtime::{self, worker, Runtime};
use crate::sync::waiter::{lock, OnDrop};
use crate::wait::Wait;

/// Default cap on a runtime's blocking threads (as tokio's).
pub(crate) const DEFAULT_MAX_THREADS: usize = 512;
/// How long a pool thread waits for a job before it exits.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// A job runs the user's closure and stores its result; it returns the
/// packet, which the pool thread completes (marks done, wakes the caller)
/// once it has counted itself idle again (see `Pool::run`).
type Job = Box<dyn FnOnce() -> Option<Arc<dyn Complete>> + Send + 'static>;

/// The last step of a job, run by the pool thread.
trait Complete: Send + Sync {
    /// Marks the result available and wakes whoever waits for it.
    fn complete(&self);
}

/// One runtime's pool of blocking threads (see the module docs).
pub(crate) struct Pool {
    state: Mutex<State>,
    cond: Condvar,
    /// `State::notified`, mirrored (written under the lock) for the
    /// spinning threads, which look at it without the lock.
    notified_hint: AtomicUsize,
    cap: usize,
    keep_alive: Duration,
    name: String,
    /// The mask a pool thread takes when the workers are pinned (a pool
    /// thread started by a pinned worker would inherit its one CPU).
    affinity: Option<CpuSet>,
}

struct State {
    queue: VecDeque<Job>,
    /// Threads alive (running a job, idle, or starting).
    threads: usize,
    /// Idle threads that have not been handed a wake-up yet.
    idle: usize,
    /// Wake-ups handed to idle threads and not yet taken.
    notified: usize,
    /// Idle threads spinning (off the condition variable) before their
    /// sleep: they take the first `spinning` wake-ups without a notify.
    spinning: usize,
    /// The runtime is gone: drain the queue, then exit.
    shutdown: bool,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock(&self.state);
        f.debug_struct("Pool")
            .field("cap", &self.cap)
            .field("threads", &s.threads)
            .field("idle", &s.idle)
            .field("queued", &s.queue.len())
            .finish()
    }
}

impl Pool {
    fn new(name: String, cap: usize, keep_alive: Duration, affinity: Option<CpuSet>) -> Arc<Pool> {
        Arc::new(Pool {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                notified: 0,
                spinning: 0,
                shutdown: false,
            }),
            cond: Condvar::new(),
            notified_hint: AtomicUsize::new(0),
            cap: cap.max(1),
            keep_alive,
            name,
            affinity,
        })
    }

    /// Queues `job`; wakes an idle thread or starts one if under the cap.
    fn submit(self: &Arc<Self>, job: Job) {
        let mut s = lock(&self.state);
        s.queue.push_back(job);
        if s.idle > 0 {
            s.idle -= 1;
            s.notified += 1;
            self.notified_hint.store(s.notified, Ordering::Relaxed);
            // A spinning thread takes it without a system call; beyond the
            // spinners, wake a sleeping one.
            let notify = s.notified > s.spinning;
            drop(s);
            if notify {
                self.cond.notify_one();
            }
            return;
        }
        if s.threads >= self.cap {
            return; // a busy thread takes it when it is done
        }
        s.threads += 1;
        let first = s.threads == 1;
        drop(s);
        let pool = self.clone();
        let spawned = thread::Builder::new()
            .name(format!("{}-blocking", self.name))
            .spawn(move || pool.run());
        if let Err(e) = spawned {
            let mut s = lock(&self.state);
            s.threads -= 1;
            if first && s.threads == 0 {
                // Nobody will ever run the queue: run it here rather than
                // leave the callers waiting for ever.
                let jobs: Vec<Job> = s.queue.drain(..).collect();
                drop(s);
                eprintln!("gopark: cannot start a blocking thread ({e}); running the job inline");
                for job in jobs {
                    if let Some(done) = run_job(job) {
                        finish(done);
                    }
                }
            }
        }
    }

    /// A pool thread's loop.
    fn run(&self) {
        if let Some(set) = &self.affinity {
            // Not fatal: the thread then keeps the mask it inherited.
            let _ = set.apply_to_current_thread();
        }
        // Waits for a job in a row that ended quickly (see `wait_idle`).
        let mut quick = 0;
        let mut s = lock(&self.state);
        loop {
            if let Some(job) = s.queue.pop_front() {
                drop(s);
                let done = run_job(job);
                s = lock(&self.state);
                let Some(done) = done else { continue };
                if !s.queue.is_empty() || s.shutdown {
                    drop(s);
                    finish(done);
                    s = lock(&self.state);
                    continue;
                }
                // Count this thread idle *before* the caller can see the
                // result: a coroutine that calls `blocking` in a loop then
                // hands its next job to this thread instead of starting one.
                s.idle += 1;
                drop(s);
                finish(done);
                s = lock(&self.state);
            } else if s.shutdown {
                break;
            } else {
                s.idle += 1;
            }
            match self.wait_idle(s, &mut quick) {
                Some(g) => s = g,
                None => return,
            }
        }
        s.threads -= 1;
    }

    /// Waits, counted in `idle`, for `submit` to hand this thread a job:
    /// returns the lock to take it, or `None` (the thread has been
    /// uncounted) when the keep-alive passed or the runtime is gone.
    ///
    /// `quick` counts this thread's waits in a row that a job ended within
    /// [`HANDOFF_QUICK_NS`] (a coroutine calling `blocking` in a loop, a file
    /// read chunk by chunk). From [`HANDOFF_STREAK`] on, the thread first
    /// spins up to [`HANDOFF_SPIN`] (the workers' policy), counted in `spinning` so that `submit` hands it the
    /// job without a notify: the condition variable's wake-up costs a
    /// futex call and the kernel's wake-up of this thread, 25-50 us on a VM
    /// whose idle CPUs halt. A spin that finds nothing ends the streak.
    fn wait_idle<'a>(
        &'a self,
        mut s: std::sync::MutexGuard<'a, State>,
        quick: &mut u8,
    ) -> Option<std::sync::MutexGuard<'a, State>> {
        let start = Instant::now();
        if *quick >= HANDOFF_STREAK && s.notified == 0 && !s.shutdown {
            s.spinning += 1;
            drop(s);
            let mut round = 0u32;
            while self.notified_hint.load(Ordering::Relaxed) == 0 {
                round = round.wrapping_add(1);
                if round % 16 == 0 && start.elapsed() >= HANDOFF_SPIN {
                    break;
                }
                for _ in 0..SPIN_HINTS {
                    std::hint::spin_loop();
                }
            }
            s = lock(&self.state);
            s.spinning -= 1;
            if s.notified == 0 {
                *quick = 0;
            }
        }
        let mut timed_out = false;
        loop {
            if s.notified > 0 {
                // `submit` took us off `idle`.
                s.notified -= 1;
                self.notified_hint.store(s.notified, Ordering::Relaxed);
                *quick = if start.elapsed().as_nanos() < u128::from(HANDOFF_QUICK_NS) {
                    (*quick + 1).min(HANDOFF_STREAK)
                } else {
                    0
                };
                return Some(s);
            }
            if s.shutdown || timed_out {
                s.idle -= 1;
                s.threads -= 1;
                return None;
            }
            let (g, to) = self
                .cond
                .wait_timeout(s, self.keep_alive)
                .unwrap_or_else(|e| e.into_inner());
            s = g;
            // A spurious wake-up waits one more keep-alive at most.
            timed_out = to.timed_out();
        }
    }

    /// The runtime is gone: idle threads exit now, busy ones once the queue
    /// is empty.
    fn shutdown(&self) {
        let mut s = lock(&self.state);
        s.shutdown = true;
        drop(s);
        self.cond.notify_all();
    }

    #[cfg(test)]
    fn threads(&self) -> usize {
        lock(&self.state).threads
    }
}

/// Runs a job, containing whatever it throws: a pool thread never unwinds.
fn run_job(job: Job) -> Option<Arc<dyn Complete>> {
    contain(job).flatten()
}

/// Completes a job and drops the pool thread's reference to its packet
/// (the last one if the caller is gone: the result is dropped here).
fn finish(done: Arc<dyn Complete>) {
    contain(move || {
        done.complete();
        drop(done);
    });
}

fn contain<R>(f: impl FnOnce() -> R) -> Option<R> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(p) => {
            // Only the drop of a result or payload nobody took can get here
            // (the user's closure runs under its own catch_unwind). Its
            // payload may panic on drop too: leak it rather than unwind.
            std::mem::forget(p);
            None
        }
    }
}

/// A runtime's handle on its pool: dropping it (with the runtime's shared
/// state) shuts the pool down.
pub(crate) struct PoolHandle(Arc<Pool>);

impl PoolHandle {
    pub(crate) fn new(runtime_name: &str, cap: usize, affinity: Option<CpuSet>) -> PoolHandle {
        PoolHandle(Pool::new(
            runtime_name.to_owned(),
            cap,
            KEEP_ALIVE,
            affinity,
        ))
    }

    /// True while a job runs or waits in the queue (for the deadlock
    /// report: a job may still wake a coroutine).
    pub(crate) fn busy(&self) -> bool {
        let s = lock(&self.0.state);
        !s.queue.is_empty() || s.threads > s.idle + s.notified
    }
}

impl PoolHandle {
    /// Threads alive, idle threads, and queued jobs (for the metrics).
    pub(crate) fn stats(&self) -> (usize, usize, usize) {
        let s = lock(&self.0.state);
        (s.threads, s.idle, s.queue.len())
    }
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

impl fmt::Debug for PoolHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The slot a job's result goes to, shared by the job and its joiner.
struct Packet<R> {
    /// Set (Release) once `result` is written.
    done: AtomicBool,
    inner: Mutex<PacketInner<R>>,
}

struct PacketInner<R> {
    result: Option<thread::Result<R>>,
    /// Who to wake when the result is in.
    waiter: Option<Waiter>,
}

fn submit<F, R>(pool: &Arc<Pool>, f: F) -> Arc<Packet<R>>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let packet = Arc::new(Packet {
        done: AtomicBool::new(false),
        inner: Mutex::new(PacketInner {
            result: None,
            waiter: None,
        }),
    });
    let p = packet.clone();
    pool.submit(Box::new(move || {
        // Through the short-backtrace marker, as a coroutine's body: a
        // panic's RUST_BACKTRACE=1 backtrace ends at the user's closure.
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            crate::spawn::__rust_begin_short_backtrace(f)
        }));
        lock(&p.inner).result = Some(r);
        Some(p as Arc<dyn Complete>)
    }));
    packet
}

impl<R: Send> Complete for Packet<R> {
    fn complete(&self) {
        let waiter = {
            let g = &mut *lock(&self.inner);
            self.done.store(true, Ordering::Release);
            g.waiter.take()
        };
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

impl<R> Packet<R> {
    /// Parks the calling coroutine (blocks the calling thread) until the
    /// result is in, then takes it.
    fn wait(&self) -> thread::Result<R> {
        if !self.done.load(Ordering::Acquire) {
            // If the coroutine is unwound while it waits (runtime shutdown),
            // withdraw its wake-up: the job must not ready a coroutine that
            // has moved on, nor keep its task (and runtime) alive.
            let withdraw = OnDrop::new(|| {
                let w = lock(&self.inner).waiter.take();
                drop(w);
            });
            let wait = Wait::plain(crate::CoroutineState::Blocking, None);
            coroutine::block_on(&wait, |w| {
                let mut g = lock(&self.inner);
                if self.done.load(Ordering::Relaxed) {
                    return false;
                }
                g.waiter = Some(w);
                true
            });
            if let Some(ctx) = worker::current_ctx() {
                // The wake-up stays registered across a spurious resume.
                coroutine::park_while(ctx, &wait, || !self.done.load(Ordering::Acquire));
            }
            withdraw.disarm();
        }
        lock(&self.inner)
            .result
            .take()
            .expect("gopark: blocking job result taken twice")
    }
}

/// Runs `f` on the current runtime's pool of blocking threads and parks the
/// calling coroutine until it returns; returns its result. On a plain thread
/// (not a coroutine) `f` simply runs inline.
///
/// Use it for anything that blocks its thread: `std::fs`, a blocking C
/// library, `std::thread::sleep`, a blocking pipe read, name resolution. The
/// worker meanwhile runs its other coroutines. `f` cannot borrow from the
/// caller (`'static`): move what it needs into it. The pool's size and
/// life are described at
/// [`RuntimeBuilder::max_blocking_threads`](crate::RuntimeBuilder::max_blocking_threads).
///
/// # Panics
/// A panic in `f` is resumed in the caller.
///
/// # Cancellation
/// If the runtime is dropped while the caller waits, the caller unwinds at
/// once (as at any park point); `f` runs to the end on its pool thread,
/// which then drops its result.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let rt = gopark::Runtime::builder().workers(1).build().unwrap();
/// rt.run(|| {
///     // A coroutine on the same (single) worker keeps running while the
///     // blocking call sleeps.
///     let ticker = gopark::spawn(|| {
///         let mut ticks = 0;
///         let end = Instant::now() + Duration::from_millis(50);
///         while Instant::now() < end {
///             gopark::time::sleep(Duration::from_millis(1));
///             ticks += 1;
///         }
///         ticks
///     });
///     let v = gopark::blocking(|| {
///         std::thread::sleep(Duration::from_millis(100)); // blocks a pool thread
///         42
///     });
///     assert_eq!(v, 42);
///     assert!(ticker.join().unwrap() > 5);
/// });
/// ```
pub fn blocking<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let Some(ctx) = worker::current_ctx() else {
        return f();
    };
    match submit(&ctx.shared.blocking.0, f).wait() {
        Ok(v) => v,
        Err(p) => panic::resume_unwind(p),
    }
}

/// Starts `f` on the current runtime's pool of blocking threads (the
/// default runtime's, from a plain thread) and returns a handle to join it.
/// Dropping the handle detaches the job; it still runs to the end.
///
/// ```
/// let h = gopark::spawn_blocking(|| std::fs::metadata("/").is_ok());
/// // ... other work ...
/// assert!(h.join().unwrap());
/// ```
pub fn spawn_blocking<F, R>(f: F) -> BlockingHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    runtime::with_current_shared(|shared| BlockingHandle::new(submit(&shared.blocking.0, f)))
}

impl Runtime {
    /// [`spawn_blocking`] on this runtime's pool.
    ///
    /// ```
    /// let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    /// let h = rt.spawn_blocking(|| 6 * 7);
    /// assert_eq!(h.join().unwrap(), 42);
    /// ```
    pub fn spawn_blocking<F, R>(&self, f: F) -> BlockingHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        BlockingHandle::new(submit(&self.shared().blocking.0, f))
    }
}

/// An owned permission to join a job started with [`spawn_blocking`], like
/// [`JoinHandle`](crate::JoinHandle) for a coroutine. Dropping it detaches
/// the job.
///
/// ```
/// let h = gopark::spawn_blocking(|| panic!("no luck"));
/// let err = h.join().unwrap_err();
/// assert_eq!(err.downcast_ref::<&str>(), Some(&"no luck"));
/// ```
pub struct BlockingHandle<R> {
    packet: Arc<Packet<R>>,
    /// Joined by one party at a time (the wait registers one waiter).
    _not_sync: PhantomData<*const ()>,
}

// SAFETY: the handle only moves the right to take an `R: Send` out of the
// packet (a Mutex-protected slot); nothing in it is tied to a thread.
unsafe impl<R: Send> Send for BlockingHandle<R> {}

impl<R> BlockingHandle<R> {
    fn new(packet: Arc<Packet<R>>) -> BlockingHandle<R> {
        BlockingHandle {
            packet,
            _not_sync: PhantomData,
        }
    }

    /// Waits for the job to end and returns its result, or the panic it
    /// ended with. Parks the caller if it is a coroutine, blocks it if it is
    /// a plain thread.
    ///
    /// ```
    /// gopark::run(|| {
    ///     let h = gopark::spawn_blocking(|| "done");
    ///     assert_eq!(h.join().unwrap(), "done");
    /// });
    /// ```
    pub fn join(self) -> thread::Result<R> {
        self.packet.wait()
    }

    /// True once the job has ended (returned or panicked).
    ///
    /// ```
    /// let h = gopark::spawn_blocking(|| ());
    /// while !h.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// h.join().unwrap();
    /// ```
    pub fn is_finished(&self) -> bool {
        self.packet.done.load(Ordering::Acquire)
    }
}

impl<R> fmt::Debug for BlockingHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// One `read` of at most `max` bytes into `buf` on the pool (for
/// `fs::File` and `io::Stdin`): the job reads into a buffer it owns, since a
/// coroutine cancelled at shutdown may unwind while the job still runs;
/// what it read is copied into `buf` afterwards.
pub(crate) fn read_on_pool(
    buf: &mut [u8],
    max: usize,
    read: impl FnOnce(&mut [u8]) -> std::io::Result<usize> + Send + 'static,
) -> std::io::Result<usize> {
    let len = buf.len().min(max);
    let (r, data) = blocking(move || {
        let mut data = vec![0u8; len];
        let r = read(&mut data);
        (r, data)
    });
    let n = r?;
    buf[..n].copy_from_slice(&data[..n]);
    Ok(n)
}

/// A `read_to_end` on the pool, as [`read_on_pool`]; on an error what was
/// read before it is kept, as std does.
pub(crate) fn read_to_end_on_pool(
    buf: &mut Vec<u8>,
    read_to_end: impl FnOnce(&mut Vec<u8>) -> std::io::Result<usize> + Send + 'static,
) -> std::io::Result<usize> {
    let (r, data) = blocking(move || {
        let mut data = Vec::new();
        let r = read_to_end(&mut data);
        (r, data)
    });
    buf.extend_from_slice(&data);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    /// Threads start on demand up to the cap, jobs beyond it queue, and idle
    /// threads exit after the keep-alive.
    #[test]
    fn grows_to_the_cap_then_idle_threads_exit() {
        let pool = Pool::new("t".into(), 3, Duration::from_millis(50), None);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..12 {
            let (r, m, d) = (running.clone(), most.clone(), done.clone());
            pool.submit(Box::new(move || {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(20));
                r.fetch_sub(1, Ordering::SeqCst);
                d.fetch_add(1, Ordering::SeqCst);
                None::<Arc<dyn Complete>>
            }));
        }
        let t = Instant::now();
        while done.load(Ordering::SeqCst) < 12 {
            assert!(t.elapsed() < Duration::from_secs(10), "jobs did not finish");
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(most.load(Ordering::SeqCst), 3, "the cap bounds the threads");
        while pool.threads() > 0 {
            assert!(t.elapsed() < Duration::from_secs(10), "idle threads stayed");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Jobs handed over in quick succession by several submitters at once,
    /// each waiting for its job before the next (as coroutines calling
    /// `blocking` in loops): the pool threads spin between jobs and take
    /// them without a notify while other threads sleep on the condition
    /// variable, and no job is lost (a lost one fails the 10 s wait).
    #[test]
    fn quick_jobs_from_several_submitters_are_all_taken() {
        let pool = Pool::new("t".into(), 3, Duration::from_secs(3600), None);
        let submitters: Vec<_> = (0..4)
            .map(|k| {
                let pool = pool.clone();
                thread::spawn(move || {
                    let (tx, rx) = std::sync::mpsc::channel();
                    for i in 0..2_000u32 {
                        let tx = tx.clone();
                        pool.submit(Box::new(move || {
                            tx.send(i).unwrap();
                            None::<Arc<dyn Complete>>
                        }));
                        let got = rx.recv_timeout(Duration::from_secs(10));
                        assert_eq!(got, Ok(i), "submitter {k}: job {i} lost");
                    }
                })
            })
            .collect();
        for s in submitters {
            s.join().unwrap();
        }
        // A spin lasts at most 20 us.
        thread::sleep(Duration::from_millis(10));
        let s = lock(&pool.state);
        assert_eq!(
            (s.spinning, s.notified),
            (0, 0),
            "no spinner or wake-up left over"
        );
        assert!(s.queue.is_empty());
    }

    /// After a shutdown, queued jobs still run and the threads exit without
    /// waiting out the keep-alive.
    #[test]
    fn shutdown_drains_then_exits() {
        let pool = Pool::new("t".into(), 1, Duration::from_secs(3600), None);
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let d = done.clone();
            pool.submit(Box::new(move || {
                thread::sleep(Duration::from_millis(10));
                d.fetch_add(1, Ordering::SeqCst);
                None::<Arc<dyn Complete>>
            }));
        }
        drop(PoolHandle(pool.clone()));
        let t = Instant::now();
        while pool.threads() > 0 {
            assert!(t.elapsed() < Duration::from_secs(10), "threads stayed");
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(done.load(Ordering::SeqCst), 3);
    }
}
