//! The monitor (Go's sysmon): stalls and deadlocks.
//!
//! A started coroutine never leaves its worker, so one that runs a long CPU
//! loop or a blocking call stalls every coroutine on that worker. One
//! monitor thread per runtime notices a worker that has run the same
//! coroutine for longer than a threshold and writes one line to stderr
//! naming it, once per stall. Coroutines that have not started yet may
//! still move: when a worker has been inside one resume for a whole
//! [`TICK`] with coroutines queued on it to start, the monitor moves them
//! to the least loaded other worker and wakes it (Go's sysmon hands a P
//! stuck in a system call to another thread for the same reason).
//!
//! It also notices a runtime whose coroutines all wait on each other (see
//! [`deadlock_suspect`]) and, once that has lasted [`DEADLOCK_AFTER`],
//! writes `gopark: all coroutines are asleep - possible deadlock` and the
//! dump, once per such state. This costs nothing while a worker is awake,
//! and one look at the workers' timers (and, if none is armed, at their
//! coroutines' wait reasons, stopping at the first that can still be woken
//! by a descriptor, a timer or a blocking call) each time the whole runtime
//! falls asleep; the monitor then sleeps without a timeout, as before,
//! unless the look found a suspect state: then it sleeps one second, looks
//! again, reports, and sleeps for good.
//!
//! The worker's cost is three plain stores per resume ([`Slot::enter`],
//! [`Slot::leave`]): a resume counter, and a pointer to the running task,
//! cleared when the resume returns. It reads no clock: as Go's sysmon does
//! with `schedtick`, the monitor times a stall from the first sample that
//! saw the counter at its current value. It samples every [`TICK`] while
//! some worker is awake, and sleeps without a timeout once every worker
//! sleeps; a worker leaving its sleep wakes it ([`Monitor::worker_woke`],
//! on the worker's cold path, after its wait).
//!
//! The task pointer is read only to name the coroutine in a report, inside
//! a read section of the worker's registry (`registry::read`). The worker
//! removes a task from its registry (finish, leak) only after the pointer
//! was cleared, and keeps a removed task alive while a section that may
//! have seen it is open (see `registry`), so a pointer read in a section
//! points to a live task until the section ends.
//!
//! ## The cached clock
//! Each slot also holds the worker's clock as last read (`clock`,
//! nanoseconds since the runtime's epoch), which stamps a coroutine's
//! `since` at resume and park without reading a clock per operation (a
//! clock read costs 76 ns on the VMs this was measured on, a park and a
//! resume together about 280 ns). The worker refreshes it where it reads
//! the clock anyway (firing timers, waking from its sleep) and every 61st
//! scheduling round; the monitor refreshes it at each sample of an awake
//! worker. So a time in state is exact to within one scheduling round in
//! the common case and within a [`TICK`] at worst (a coroutine that ran
//! for a long time before parking).

use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use super::{registry, Shared};
use crate::coroutine::{Task, RUNNABLE, RUNNING};
use crate::CoroutineState;

/// Sampling period while some worker is awake.
const TICK: Duration = Duration::from_millis(10);

/// Default stall threshold.
pub(crate) const DEFAULT_THRESHOLD: Duration = Duration::from_millis(100);

/// How long every coroutine must have been asleep before the deadlock
/// report.
pub(crate) const DEADLOCK_AFTER: Duration = Duration::from_secs(1);

/// The threshold from `GOPARK_STALL_MS`, else the default. A value that is
/// not a whole number of milliseconds is ignored with a warning on stderr,
/// once per process (as a bad `GOPARK_WORKERS` is).
pub(crate) fn threshold_from_env() -> Duration {
    let Some(v) = std::env::var_os("GOPARK_STALL_MS") else {
        return DEFAULT_THRESHOLD;
    };
    match v.to_str().and_then(|s| s.trim().parse::<u64>().ok()) {
        Some(ms) => Duration::from_millis(ms),
        None => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                eprintln!(
                    "gopark: ignoring GOPARK_STALL_MS={}: not a number of milliseconds; \
                     using {} ms",
                    v.to_string_lossy(),
                    DEFAULT_THRESHOLD.as_millis()
                );
            });
            DEFAULT_THRESHOLD
        }
    }
}

/// What a worker publishes for the monitor, on its own cache line (the
/// owner writes it on every resume).
#[repr(align(64))]
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// Resumes so far (written by the owner only).
    tick: AtomicU64,
    /// The task being resumed, null between resumes.
    running: AtomicPtr<Task>,
    /// The worker's cached clock (module docs).
    clock: AtomicU64,
}

impl Slot {
    /// Before a resume of `task`: also stamps the task's `since`.
    #[inline]
    pub(crate) fn enter(&self, task: &Arc<Task>) {
        // Only the owner writes `tick`: no read-modify-write needed.
        let t = self.tick.load(Ordering::Relaxed);
        self.tick.store(t.wrapping_add(1), Ordering::Relaxed);
        task.since
            .store(self.clock.load(Ordering::Relaxed), Ordering::Relaxed);
        // Release: the monitor that reads the pointer (Acquire) sees the
        // task's fields, which the worker saw before this store.
        self.running
            .store(Arc::as_ptr(task).cast_mut(), Ordering::Release);
    }

    /// Resumes so far (the metrics' resume count).
    pub(crate) fn resumes(&self) -> u64 {
        self.tick.load(Ordering::Relaxed)
    }

    /// After the resume returns.
    #[inline]
    pub(crate) fn leave(&self) {
        self.running.store(std::ptr::null_mut(), Ordering::Relaxed);
    }

    /// Runs `f` on the owner, inside a resume of `task`, with the slot
    /// showing no coroutine running: the panic hook prints a coroutine's
    /// panic so (symbolizing a backtrace can take a second, which is no
    /// stall of the coroutine's making). Afterwards the resume counts as a
    /// new one, so a stall is timed again from there.
    pub(crate) fn unwatched<R>(&self, task: &Arc<Task>, f: impl FnOnce() -> R) -> R {
        self.leave();
        let r = f();
        self.enter(task);
        r
    }

    /// The worker's cached clock: nanoseconds since the runtime's epoch.
    #[inline]
    pub(crate) fn clock(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }

    /// Refreshes the cached clock with a reading the caller took anyway.
    #[inline]
    pub(crate) fn set_clock(&self, nanos: u64) {
        self.clock.store(nanos, Ordering::Relaxed);
    }

    /// The running coroutine's id and name, if one runs. `registry` is the
    /// worker's registry.
    fn running_task(&self, registry: &registry::Registry) -> Option<(u64, Option<String>)> {
        let _g = registry::read(registry);
        let p = self.running.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: inside the read section, `p` points to a live task: it
        // was stored by `enter` while the task was in the registry, and the
        // worker clears it (`leave`) before it removes the task, whose
        // registry `Arc` it then keeps until the section ends (module docs,
        // and `registry`). `id` and `name` are immutable after construction.
        let task = unsafe { &*p };
        Some((task.id.as_u64(), task.name.as_deref().map(str::to_owned)))
    }
}

/// The monitor's shared state (in [`Shared`]).
#[derive(Debug)]
pub(crate) struct Monitor {
    /// Zero: no stall report.
    threshold: Duration,
    /// Whether to report deadlocks.
    deadlock: bool,
    /// Whether to hand a stuck worker's unstarted coroutines to another
    /// (more than one worker).
    handoff: bool,
    /// Set while the monitor sleeps without a timeout.
    parked: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Monitor {
    pub(crate) fn new(threshold: Duration, deadlock: bool, workers: usize) -> Monitor {
        Monitor {
            threshold,
            deadlock,
            handoff: workers > 1,
            parked: AtomicBool::new(false),
            thread: OnceLock::new(),
        }
    }

    /// True if the monitor thread runs (stall or deadlock reports wanted,
    /// or another worker to start a stuck worker's queued coroutines).
    pub(crate) fn enabled(&self) -> bool {
        !self.threshold.is_zero() || self.deadlock || self.handoff
    }

    /// Called by a worker after it left its sleep (state AWAKE again).
    pub(crate) fn worker_woke(&self) {
        if !self.enabled() {
            return;
        }
        // Pairs with the fence in `run`: either the monitor sees this
        // worker awake, or we see it parked.
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) && self.parked.swap(false, Ordering::SeqCst) {
            self.wake();
        }
    }

    /// Wakes the monitor (a new stall to watch, or shutdown).
    pub(crate) fn wake(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }
}

/// Per-worker state of the monitor thread.
struct Seen {
    tick: u64,
    since: Instant,
    reported: bool,
}

/// The monitor thread's loop; returns at shutdown.
pub(crate) fn run(sh: Arc<Shared>) {
    let mon = &sh.monitor;
    mon.thread.get_or_init(thread::current);
    let mut seen: Vec<Option<Seen>> = sh.workers.iter().map(|_| None).collect();
    // The state of the last deadlock report (see `deadlock_suspect`).
    let mut reported: Option<u64> = None;
    loop {
        if sh.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        // The workers' own clock (`Shared::now`), so the cached clock never
        // steps back when a worker refreshes it.
        let now_nanos = sh.now();
        let mut awake = false;
        for (w, ws) in sh.workers.iter().enumerate() {
            let slot = &ws.monitor;
            if !ws.sleep.is_asleep() {
                awake = true;
                if slot.clock() < now_nanos {
                    slot.set_clock(now_nanos);
                }
            }
            if slot.running.load(Ordering::Relaxed).is_null() {
                seen[w] = None;
                continue;
            }
            let tick = slot.tick.load(Ordering::Relaxed);
            match &mut seen[w] {
                Some(s) if s.tick == tick => {
                    let ran = now.saturating_duration_since(s.since);
                    // The worker has been inside one resume for a whole
                    // tick: coroutines queued on it to start would wait for
                    // that resume to end, so they move to another worker.
                    // Spawning onto one's own worker wakes nobody, so
                    // without this a coroutine that spawns and then
                    // computes would hold its children until it parks.
                    if mon.handoff && !ws.spawnq.is_empty() {
                        sh.rescue_unstarted(w);
                    }
                    if !mon.threshold.is_zero() && !s.reported && ran >= mon.threshold {
                        s.reported = true;
                        // Still the same resume? (It may have ended since.)
                        if let Some((id, name)) = slot.running_task(&ws.registry) {
                            if slot.tick.load(Ordering::Relaxed) == tick {
                                report(id, name.as_deref(), w, ran);
                                // The monitor thread is the count's only
                                // writer.
                                ws.metrics.stalls.inc();
                            }
                        }
                    }
                }
                s => {
                    *s = Some(Seen {
                        tick,
                        since: now,
                        reported: false,
                    })
                }
            }
        }
        if awake {
            thread::park_timeout(TICK);
            continue;
        }
        // Every worker sleeps: sleep until one wakes (or shutdown).
        mon.parked.store(true, Ordering::SeqCst);
        // Pairs with the fence in `worker_woke`.
        fence(Ordering::SeqCst);
        let still = sh.workers.iter().all(|ws| ws.sleep.is_asleep());
        if still && !sh.shutdown.load(Ordering::SeqCst) {
            match deadlock_suspect(&sh) {
                Some(state) if mon.deadlock && reported != Some(state) => {
                    // Sleep for DEADLOCK_AFTER unless a worker wakes (it
                    // clears `parked`) or the runtime shuts down.
                    let until = Instant::now() + DEADLOCK_AFTER;
                    let quiet =
                        || mon.parked.load(Ordering::SeqCst) && !sh.shutdown.load(Ordering::SeqCst);
                    while quiet() {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        thread::park_timeout(left);
                    }
                    let asleep = sh.workers.iter().all(|ws| ws.sleep.is_asleep());
                    if quiet() && asleep && deadlock_suspect(&sh) == Some(state) {
                        reported = Some(state);
                        report_deadlock(&sh);
                    }
                }
                _ => thread::park(),
            }
        }
        mon.parked.store(false, Ordering::SeqCst);
    }
}

/// Whether `sh` looks deadlocked: some coroutine lives, none is running or
/// runnable, none waits on a descriptor, a timer (no timer is armed at
/// all) or the blocking pool (which is idle), and nothing is queued to
/// start. Returns the state's key (the resume counts, which change as soon
/// as any coroutine runs), so one state is reported once.
///
/// Called with every worker asleep. Plain threads may still hold the other
/// end of what the coroutines wait for, so this only ever warns.
pub(crate) fn deadlock_suspect(sh: &Shared) -> Option<u64> {
    if sh.workers.iter().any(|ws| ws.timers.next() != u64::MAX) {
        return None;
    }
    if sh.blocking.busy() || sh.has_queued_work() {
        return None;
    }
    let mut any = false;
    for ws in sh.workers.iter() {
        let reg = registry::read(&ws.registry);
        for t in reg.iter() {
            if t.join.is_done() {
                continue;
            }
            let st = t.status.load(Ordering::Relaxed);
            if st == RUNNING || st == RUNNABLE {
                return None;
            }
            // No lock is taken inside (a registry read section holds no
            // lock either).
            let wakeable = t.inspect_wait(|w| {
                w.until.is_some()
                    || matches!(
                        w.state,
                        CoroutineState::IoWait | CoroutineState::Sleep | CoroutineState::Blocking
                    )
            });
            // `None`: it left its wait meanwhile (or a dump holds it).
            if wakeable != Some(false) {
                return None;
            }
            any = true;
        }
    }
    any.then(|| {
        sh.workers
            .iter()
            .fold(0u64, |k, ws| k.wrapping_add(ws.monitor.resumes()))
    })
}

/// The deadlock report: one line, then the dump.
fn report_deadlock(sh: &Shared) {
    let dump = super::dump::dump_text(sh);
    eprintln!("gopark: all coroutines are asleep - possible deadlock\n\n{dump}");
}

/// The stall report, in the form of the stack overflow message.
fn report(id: u64, name: Option<&str>, worker: usize, ran: Duration) {
    eprintln!("{}", message(id, name, worker, ran));
}

fn message(id: u64, name: Option<&str>, worker: usize, ran: Duration) -> String {
    let name = match name {
        Some(n) => format!("'{n}'"),
        None => "<unnamed>".to_owned(),
    };
    format!(
        "gopark: coroutine {name} (id {id}) has run on worker {worker} for {} ms without \
         parking or yielding; every coroutine on that worker waits (a CPU loop or a blocking \
         call? see gopark::blocking / yield_now)",
        ran.as_millis()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn message_names_the_coroutine() {
        let m = super::message(7, Some("crunch"), 0, std::time::Duration::from_millis(250));
        assert_eq!(
            m,
            "gopark: coroutine 'crunch' (id 7) has run on worker 0 for 250 ms without parking \
             or yielding; every coroutine on that worker waits (a CPU loop or a blocking call? \
             see gopark::blocking / yield_now)"
        );
        let m = super::message(8, None, 1, std::time::Duration::from_millis(100));
        assert!(m.starts_with("gopark: coroutine <unnamed> (id 8) has run on worker 1"));
    }
}
