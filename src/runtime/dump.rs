//! The coroutine dump: every live coroutine of a runtime with its state,
//! time in state, spawn site and the object it waits on (Go's goroutine
//! dump, with wait objects and lock holders).
//!
//! A dump may be taken from any thread, a coroutine included, while the
//! runtime runs. For each worker it clones the `Arc`s of the worker's
//! registry in a read section (`registry::read`: spawns and finishes on
//! that worker never wait for it), then reads each coroutine:
//!
//! - the immutable fields (id, name, spawn site, parent) and the home worker;
//! - the status and `since` (racy reads of atomics: a coroutine may change
//!   state while the dump looks at it, as in Go);
//! - for a parked coroutine, its wait record, under SCANNING
//!   (`Task::inspect_wait`, see `crate::wait`), which also reads the live
//!   state behind it: a mutex's holder, a descriptor's deadline.
//!
//! Cost: a read section per worker, an `Arc` clone per coroutine, two CASes per
//! parked coroutine, and the text. No park, wake-up or resume pays for it.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::os::fd::RawFd;
use std::panic::Location;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::{registry, Runtime, Shared};
use crate::coroutine::{CoroutineId, Task, RUNNING, SCANNING, WAITING};
use crate::wait::Snapshot;
use crate::CoroutineState;

/// One coroutine in a dump: what [`Runtime::coroutines`] returns and
/// [`Runtime::dump`] prints.
///
/// ```
/// use gopark::CoroutineState;
/// let rt = gopark::Runtime::builder().workers(1).build().unwrap();
/// let (tx, rx) = gopark::chan::bounded::<()>(0);
/// let h = gopark::Builder::new().name("waiter").spawn_on(&rt, move || rx.recv()).unwrap();
/// let info = loop {
///     let all = rt.coroutines();
///     match all.into_iter().find(|c| c.id() == h.coroutine().id()) {
///         Some(c) if c.state() == CoroutineState::ChanReceive => break c,
///         _ => std::thread::yield_now(),
///     }
/// };
/// assert_eq!(info.name(), Some("waiter"));
/// assert_eq!(info.channel_capacity(), Some(0));
/// assert_eq!(info.spawned_at().file(), file!());
/// drop(tx);
/// h.join().unwrap().unwrap_err();
/// ```
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct CoroutineInfo {
    id: CoroutineId,
    name: Option<String>,
    state: CoroutineState,
    in_state: Option<Duration>,
    spawned_at: &'static Location<'static>,
    parent: Option<CoroutineId>,
    worker: Option<usize>,
    wait: Snapshot,
    /// Names of the coroutines this entry refers to (holder, joined), filled
    /// in by the dump that made it.
    holder_name: Option<String>,
    joining_name: Option<String>,
}

/// Which way a coroutine waiting on a descriptor wants to go.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoDirection {
    /// Waiting to read (or accept, or receive).
    Read,
    /// Waiting to write (or connect, or send).
    Write,
}

impl CoroutineInfo {
    /// The coroutine's id.
    pub fn id(&self) -> CoroutineId {
        self.id
    }

    /// The coroutine's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What it was doing when the dump looked.
    pub fn state(&self) -> CoroutineState {
        self.state
    }

    /// How long it has been in that state (running: since it was resumed;
    /// parked: since it parked), or `None` for a runnable coroutine. Taken
    /// from its worker's cached clock: exact to within one scheduling round
    /// in the common case, 10 ms at worst (see docs/DEBUGGING.md).
    pub fn time_in_state(&self) -> Option<Duration> {
        self.in_state
    }

    /// Where it was spawned: the call of `spawn`, `go!`, a `Builder` or
    /// `Runtime` spawn method, or a scope's spawn.
    pub fn spawned_at(&self) -> &'static Location<'static> {
        self.spawned_at
    }

    /// The coroutine that spawned it, `None` if a plain thread did.
    pub fn parent(&self) -> Option<CoroutineId> {
        self.parent
    }

    /// The worker it lives on.
    pub fn worker(&self) -> Option<usize> {
        self.worker
    }

    /// The address of the object it waits on (a channel, a lock, a
    /// descriptor's poller state): equal addresses, same object.
    pub fn object(&self) -> Option<usize> {
        (self.wait.object != 0).then_some(self.wait.object)
    }

    /// When its wait ends on its own: a sleep's end, the timeout of a timed
    /// wait, a descriptor's pending deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.wait
            .until
            .or_else(|| self.wait.io.and_then(|io| io.deadline.flatten()))
    }

    /// For a coroutine waiting on a [`Mutex`](crate::sync::Mutex) (or to
    /// write-lock an [`RwLock`](crate::sync::RwLock) held by a writer): the
    /// coroutine holding it, `None` if a plain thread holds it.
    pub fn holder(&self) -> Option<CoroutineId> {
        self.holder_id().and_then(CoroutineId::from_u64)
    }

    fn holder_id(&self) -> Option<u64> {
        match self.wait.rw {
            Some(rw) => rw.writer,
            None => self.wait.holder,
        }
    }

    /// For a coroutine in a join: the coroutine it joins.
    pub fn joining(&self) -> Option<CoroutineId> {
        self.wait.joining
    }

    /// For a coroutine in an IO wait: the descriptor.
    pub fn fd(&self) -> Option<RawFd> {
        self.wait.io.map(|io| io.fd)
    }

    /// For a coroutine in an IO wait: which way.
    pub fn io_direction(&self) -> Option<IoDirection> {
        self.wait.io.map(|io| {
            if io.write {
                IoDirection::Write
            } else {
                IoDirection::Read
            }
        })
    }

    /// For a channel operation: the channel's capacity (`usize::MAX` for an
    /// unbounded channel).
    pub fn channel_capacity(&self) -> Option<usize> {
        self.wait.chan.map(|(cap, _)| cap.unwrap_or(usize::MAX))
    }

    /// For a channel operation: the values buffered in the channel.
    pub fn channel_len(&self) -> Option<usize> {
        self.wait.chan.map(|(_, len)| len)
    }

    /// For a [`Semaphore`](crate::sync::Semaphore): the permits available;
    /// for a [`WaitGroup`](crate::sync::WaitGroup): its counter.
    pub fn count(&self) -> Option<usize> {
        self.wait.count
    }
}

/// The time in state as the dump prints it: microseconds below a
/// millisecond, then milliseconds, then seconds, with three decimals.
fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} us", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{:.3} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.3} s", d.as_secs_f64())
    }
}

fn fmt_deadline(d: Instant, now: Instant) -> String {
    match d.checked_duration_since(now) {
        Some(left) => format!("deadline in {}", fmt_duration(left)),
        None => format!("deadline {} ago", fmt_duration(now - d)),
    }
}

fn who(id: u64, name: Option<&str>) -> String {
    match (id, name) {
        (0, _) => "a thread".to_owned(),
        (id, Some(n)) => format!("coroutine {id} '{n}'"),
        (id, None) => format!("coroutine {id}"),
    }
}

impl fmt::Display for CoroutineInfo {
    /// The dump entry: a header line, then one indented line per fact.
    ///
    /// ```text
    /// coroutine 17 'conn-42' [chan receive, 1.204 s]:
    ///     spawned at src/server.rs:88:9 by coroutine 3
    ///     worker 1
    ///     channel 0x55d0c3a0: capacity 4, length 0
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = Instant::now();
        write!(f, "coroutine {}", self.id)?;
        if let Some(n) = &self.name {
            write!(f, " '{n}'")?;
        }
        match self.in_state {
            Some(d) => writeln!(f, " [{}, {}]:", self.state, fmt_duration(d))?,
            None => writeln!(f, " [{}]:", self.state)?,
        }
        let by = match self.parent {
            Some(p) => format!("coroutine {p}"),
            None => "a thread".to_owned(),
        };
        let at = self.spawned_at;
        writeln!(
            f,
            "    spawned at {}:{}:{} by {by}",
            at.file(),
            at.line(),
            at.column()
        )?;
        if let Some(w) = self.worker {
            writeln!(f, "    worker {w}")?;
        }
        let w = &self.wait;
        let obj = w.object;
        match self.state {
            CoroutineState::Running | CoroutineState::Runnable => return Ok(()),
            CoroutineState::ChanReceive | CoroutineState::ChanSend => {
                if let Some((cap, len)) = w.chan {
                    match cap {
                        Some(c) => writeln!(f, "    channel {obj:#x}: capacity {c}, length {len}")?,
                        None => writeln!(f, "    channel {obj:#x}: unbounded, length {len}")?,
                    }
                }
            }
            CoroutineState::Select => {
                if let Some(n) = w.arms {
                    writeln!(
                        f,
                        "    select over {n} arm{}",
                        if n == 1 { "" } else { "s" }
                    )?;
                }
            }
            CoroutineState::IoWait => {
                if let Some(io) = w.io {
                    let dir = if io.write { "write" } else { "read" };
                    let what = if io.polling {
                        format!("waiting to {dir}")
                    } else {
                        format!("queued behind another {dir} on it")
                    };
                    let deadline = match io.deadline {
                        None => "no deadline".to_owned(),
                        Some(None) => "deadline expired".to_owned(),
                        Some(Some(d)) => fmt_deadline(d, now),
                    };
                    writeln!(f, "    fd {}: {what}, {deadline}", io.fd)?;
                }
            }
            CoroutineState::Mutex => {
                if let Some(h) = w.holder {
                    writeln!(
                        f,
                        "    mutex {obj:#x}: held by {}",
                        who(h, self.holder_name.as_deref())
                    )?;
                }
            }
            CoroutineState::RwLock => {
                if let Some(rw) = w.rw {
                    let want = if rw.write { "to write" } else { "to read" };
                    let held = match rw.writer {
                        Some(h) => {
                            format!("write-locked by {}", who(h, self.holder_name.as_deref()))
                        }
                        None if rw.readers > 0 => format!(
                            "read-locked by {} reader{}",
                            rw.readers,
                            if rw.readers == 1 { "" } else { "s" }
                        ),
                        None => "being handed over".to_owned(),
                    };
                    writeln!(f, "    rwlock {obj:#x}: waiting {want}, {held}")?;
                }
            }
            CoroutineState::Semaphore => {
                let n = w.count.unwrap_or(0);
                writeln!(f, "    semaphore {obj:#x}: {n} permits available")?;
            }
            CoroutineState::WaitGroup => {
                let n = w.count.unwrap_or(0);
                writeln!(f, "    waitgroup {obj:#x}: counter {n}")?;
            }
            CoroutineState::Condvar => writeln!(f, "    condvar {obj:#x}")?,
            CoroutineState::Barrier => writeln!(f, "    barrier {obj:#x}")?,
            CoroutineState::Once => writeln!(f, "    once {obj:#x}")?,
            CoroutineState::Join => {
                if let Some(j) = w.joining {
                    writeln!(
                        f,
                        "    joining {}",
                        who(j.as_u64(), self.joining_name.as_deref())
                    )?;
                }
            }
            CoroutineState::Sleep | CoroutineState::Park | CoroutineState::Blocking => {}
        }
        if let Some(u) = w.until {
            writeln!(f, "    {}", fmt_deadline(u, now))?;
        }
        Ok(())
    }
}

/// Reads one task (module docs); `None` if it has ended.
fn info(task: &Task, now: u64) -> Option<CoroutineInfo> {
    if task.join.is_done() {
        return None;
    }
    let mut wait = Snapshot::default();
    let mut state = None;
    // A parked coroutine may be readied between the status load and the
    // CAS of `inspect_wait`; look again (a few times: it may also park
    // again at once). Another dumper holding it SCANNING lets go soon.
    let mut changes = 0;
    let mut scans = 0u32;
    while changes < 4 {
        match task.status.load(Ordering::Acquire) {
            SCANNING if scans < 10_000 => {
                scans += 1;
                std::thread::yield_now();
            }
            WAITING | SCANNING => {
                // SAFETY: inside `inspect_wait`, the task is SCANNING.
                if let Some((s, snap)) = task.inspect_wait(|w| (w.state, unsafe { w.snapshot() })) {
                    state = Some(s);
                    wait = snap;
                    break;
                }
                changes += 1;
                std::hint::spin_loop();
            }
            RUNNING => {
                state = Some(CoroutineState::Running);
                break;
            }
            _ => {
                state = Some(CoroutineState::Runnable);
                break;
            }
        }
    }
    // Still changing state after four looks: call it runnable.
    let state = state.unwrap_or(CoroutineState::Runnable);
    let in_state = (state != CoroutineState::Runnable)
        .then(|| Duration::from_nanos(now.saturating_sub(task.since.load(Ordering::Relaxed))));
    let home = task.home.load(Ordering::Relaxed);
    Some(CoroutineInfo {
        id: task.id,
        name: task.name.as_deref().map(str::to_owned),
        state,
        in_state,
        spawned_at: task.spawned_at,
        parent: task.parent,
        worker: (home != crate::coroutine::NO_HOME).then_some(home),
        wait,
        holder_name: None,
        joining_name: None,
    })
}

/// Every live (started, unfinished) coroutine of `sh`, by id.
pub(crate) fn collect(sh: &Shared) -> Vec<CoroutineInfo> {
    let now = sh.now();
    let mut out = Vec::new();
    for ws in sh.workers.iter() {
        let tasks = registry::read(&ws.registry).tasks();
        out.extend(tasks.iter().filter_map(|t| info(t, now)));
    }
    out.sort_unstable_by_key(|c| c.id);
    // Name the coroutines that entries refer to.
    let names: HashMap<u64, &str> = out
        .iter()
        .filter_map(|c| Some((c.id.as_u64(), c.name.as_deref()?)))
        .collect();
    let named: Vec<(Option<String>, Option<String>)> = out
        .iter()
        .map(|c| {
            let h = c
                .holder_id()
                .and_then(|h| names.get(&h))
                .map(|n| n.to_string());
            let j = c
                .wait
                .joining
                .and_then(|j| names.get(&j.as_u64()))
                .map(|n| n.to_string());
            (h, j)
        })
        .collect();
    for (c, (h, j)) in out.iter_mut().zip(named) {
        c.holder_name = h;
        c.joining_name = j;
    }
    out
}

/// The dump of `sh` as text (module docs; format in docs/DEBUGGING.md).
pub(crate) fn dump_text(sh: &Shared) -> String {
    let all = collect(sh);
    let mut s = String::with_capacity(all.len() * 160);
    for (i, c) in all.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        let _ = write!(s, "{c}");
    }
    // Queued coroutines that have not started are not in any registry: the
    // workers' loads count them (a racy difference).
    let load: usize = sh.workers.iter().map(|w| w.load.get()).sum();
    let unstarted = load.saturating_sub(all.len());
    if unstarted > 0 {
        if !all.is_empty() {
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "{unstarted} more coroutine{} queued, not started yet",
            if unstarted == 1 { "" } else { "s" }
        );
    }
    s
}

// ---- every runtime of the process --------------------------------------

/// Every runtime built in this process (dead ones are pruned), for the
/// dump on a signal.
static RUNTIMES: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// Records a new runtime for [`dump_all`].
pub(crate) fn register(sh: &Arc<Shared>) {
    let mut all = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|w| w.strong_count() > 0);
    all.push(Arc::downgrade(sh));
}

/// The dump of every running runtime, each under a header line.
pub(crate) fn dump_all() -> String {
    let live: Vec<Arc<Shared>> = RUNTIMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    let mut s = String::new();
    for sh in live {
        if sh.shutdown.load(Ordering::Relaxed) {
            continue;
        }
        let _ = writeln!(
            s,
            "gopark: dump of runtime '{}' ({} worker{}):\n",
            sh.name,
            sh.workers.len(),
            if sh.workers.len() == 1 { "" } else { "s" }
        );
        s.push_str(&dump_text(&sh));
        s.push('\n');
    }
    s
}

// ---- the dump on a signal ----------------------------------------------

/// The signal named by `GOPARK_DUMP_SIGNAL` (`SIGQUIT`, `QUIT`, `SIGUSR1`,
/// `USR1`, `SIGUSR2`, `USR2`, or a number); a value that names none is
/// ignored with a warning, once per process.
pub(crate) fn signal_from_env() -> Option<i32> {
    let v = std::env::var_os("GOPARK_DUMP_SIGNAL")?;
    let s = v.to_string_lossy();
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let name = t.strip_prefix("SIG").unwrap_or(t);
    let sig = match name {
        "QUIT" => Some(libc::SIGQUIT),
        "USR1" => Some(libc::SIGUSR1),
        "USR2" => Some(libc::SIGUSR2),
        n => n.parse::<i32>().ok(),
    };
    if sig.is_none() {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            eprintln!(
                "gopark: ignoring GOPARK_DUMP_SIGNAL={s}: expected SIGQUIT, SIGUSR1, SIGUSR2 or a signal number"
            );
        });
    }
    sig
}

/// Makes `sig` write the dump of every runtime to stderr (once per signal
/// per process; later calls for the same signal do nothing). The handler
/// only writes to a pipe (`crate::signal`); a thread named `gopark-dump`
/// takes the dump and writes it.
pub(crate) fn install_signal(sig: i32) -> std::io::Result<()> {
    static INSTALLED: Mutex<Vec<i32>> = Mutex::new(Vec::new());
    let mut done = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if done.contains(&sig) {
        return Ok(());
    }
    let rx = crate::signal::notify(&[sig])
        .map_err(|e| std::io::Error::new(e.kind(), format!("dump signal {sig}: {e}")))?;
    std::thread::Builder::new()
        .name("gopark-dump".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                let text = dump_all();
                let mut err = std::io::stderr().lock();
                let _ = std::io::Write::write_all(&mut err, text.as_bytes());
            }
        })
        .map_err(|e| std::io::Error::new(e.kind(), format!("dump signal thread: {e}")))?;
    done.push(sig);
    Ok(())
}

// ---- the public entry points -------------------------------------------

impl Runtime {
    /// The coroutine dump of this runtime: one entry per live coroutine,
    /// separated by blank lines, in Go's style; see
    /// [`coroutines`](Self::coroutines) for the same as records, and
    /// docs/DEBUGGING.md for how to read it.
    ///
    /// ```text
    /// coroutine 17 'conn-42' [chan receive, 1.204 s]:
    ///     spawned at src/server.rs:88:9 by coroutine 3
    ///     worker 1
    ///     channel 0x55d0c3a0: capacity 4, length 0
    /// ```
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    /// let h = gopark::Builder::new()
    ///     .name("napper")
    ///     .spawn_on(&rt, || gopark::time::sleep(Duration::from_secs(60)))
    ///     .unwrap();
    /// while !rt.dump().contains("[sleep") {
    ///     std::thread::yield_now();
    /// }
    /// let dump = rt.dump();
    /// assert!(dump.starts_with(&format!("coroutine {} 'napper' [sleep, ", h.coroutine().id())));
    /// assert!(dump.contains(&format!("spawned at {}:", file!())));
    /// ```
    pub fn dump(&self) -> String {
        dump_text(self.shared())
    }

    /// Every live coroutine of this runtime (started and not finished), by
    /// id, as records: the data [`dump`](Self::dump) prints. Coroutines
    /// queued but not started yet are not included.
    ///
    /// ```
    /// let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    /// let me = rt.run(|| gopark::current().unwrap().id());
    /// assert!(rt.coroutines().iter().all(|c| c.id() != me)); // it ended
    /// let inside = rt.run(|| {
    ///     let me = gopark::current().unwrap().id();
    ///     gopark::coroutines().into_iter().find(|c| c.id() == me).map(|c| c.state())
    /// });
    /// assert_eq!(inside, Some(gopark::CoroutineState::Running));
    /// ```
    pub fn coroutines(&self) -> Vec<CoroutineInfo> {
        collect(self.shared())
    }
}

/// The runtime [`dump`] and [`coroutines`] look at: the caller's, else the
/// default one if it has started.
fn current_or_default() -> Option<Arc<Shared>> {
    match super::worker::worker_here() {
        Some(ctx) => Some(ctx.shared.clone()),
        None => super::default_runtime_if_started().map(|rt| rt.shared().clone()),
    }
}

/// The dump of the current runtime (the caller's, in a coroutine or on a
/// worker; else the default runtime's if it has started; else an empty
/// string). See [`Runtime::dump`].
///
/// ```
/// let text = gopark::run(gopark::dump);
/// assert!(text.contains("[running, "));
/// ```
pub fn dump() -> String {
    current_or_default().map_or_else(String::new, |sh| dump_text(&sh))
}

/// The coroutines of the current runtime (as for [`dump`]); see
/// [`Runtime::coroutines`].
///
/// ```
/// let n = gopark::run(|| gopark::coroutines().len());
/// assert!(n >= 1);
/// ```
pub fn coroutines() -> Vec<CoroutineInfo> {
    current_or_default().map_or_else(Vec::new, |sh| collect(&sh))
}

#[cfg(test)]
mod tests {
    use super::fmt_duration;
    use std::time::Duration;

    #[test]
    fn durations_keep_microseconds() {
        assert_eq!(fmt_duration(Duration::from_micros(417)), "417 us");
        assert_eq!(fmt_duration(Duration::from_micros(12_345)), "12.345 ms");
        assert_eq!(fmt_duration(Duration::from_millis(1_204)), "1.204 s");
    }
}
