//! The stall monitor (Go's sysmon, reporting only).
//!
//! A started coroutine never leaves its worker, so one that runs a long CPU
//! loop or a blocking call stalls every coroutine on that worker. One
//! monitor thread per runtime notices a worker that has run the same
//! coroutine for longer than a threshold and writes one line to stderr
//! naming it, once per stall.
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
//! The task pointer is read only to name the coroutine in a report, under
//! the slot's lock. The worker takes and releases that lock after the
//! pointer is cleared and before the task leaves its registry (finish,
//! leak), so a pointer read under the lock is either to a task still in the
//! registry (alive) or already replaced.

use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use super::Shared;
use crate::coroutine::Task;

/// Sampling period while some worker is awake.
const TICK: Duration = Duration::from_millis(10);

/// Default stall threshold.
pub(crate) const DEFAULT_THRESHOLD: Duration = Duration::from_millis(100);

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
    /// See the module docs.
    lock: Mutex<()>,
}

impl Slot {
    /// Before a resume of `task`.
    #[inline]
    pub(crate) fn enter(&self, task: &Arc<Task>) {
        // Only the owner writes `tick`: no read-modify-write needed.
        let t = self.tick.load(Ordering::Relaxed);
        self.tick.store(t.wrapping_add(1), Ordering::Relaxed);
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

    /// Before a task leaves the worker's registry (after [`Slot::leave`]):
    /// waits out a monitor reading the task's name.
    pub(crate) fn retire(&self) {
        drop(self.lock.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The running coroutine's id and name, if one runs.
    fn running_task(&self) -> Option<(u64, Option<String>)> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let p = self.running.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: under the lock, `p` points to a task in the worker's
        // registry, which holds an `Arc` to it: it was stored by `enter`
        // while in the registry, and the worker clears it (`leave`) and
        // passes through the lock (`retire`) before removing it (module
        // docs). `id` and `name` are immutable after construction.
        let task = unsafe { &*p };
        Some((task.id.as_u64(), task.name.as_deref().map(str::to_owned)))
    }
}

/// The monitor's shared state (in [`Shared`]).
#[derive(Debug)]
pub(crate) struct Monitor {
    /// Zero: no monitor.
    threshold: Duration,
    /// Set while the monitor sleeps without a timeout.
    parked: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Monitor {
    pub(crate) fn new(threshold: Duration) -> Monitor {
        Monitor {
            threshold,
            parked: AtomicBool::new(false),
            thread: OnceLock::new(),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        !self.threshold.is_zero()
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
    loop {
        if sh.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        let mut awake = false;
        for (w, ws) in sh.workers.iter().enumerate() {
            let slot = &ws.monitor;
            if !ws.sleep.is_asleep() {
                awake = true;
            }
            if slot.running.load(Ordering::Relaxed).is_null() {
                seen[w] = None;
                continue;
            }
            let tick = slot.tick.load(Ordering::Relaxed);
            match &mut seen[w] {
                Some(s) if s.tick == tick => {
                    let ran = now.saturating_duration_since(s.since);
                    if !s.reported && ran >= mon.threshold {
                        s.reported = true;
                        // Still the same resume? (It may have ended since.)
                        if let Some((id, name)) = slot.running_task() {
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
            thread::park();
        }
        mon.parked.store(false, Ordering::SeqCst);
    }
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
