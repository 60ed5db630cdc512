//! Counters, errors by kind, failures, and the live-coroutine guards.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

macro_rules! counters {
    ($($name:ident => $label:literal,)*) => {
        /// A counter of [`Stats`].
        #[derive(Debug, Clone, Copy)]
        pub enum C { $($name,)* }
        const C_COUNT: usize = [$($label,)*].len();
    };
}

counters! {
    ConnsClient => "client connections (coroutines)",
    ConnsThread => "client connections (threads)",
    ConnsFault => "faulty connections",
    ConnsAccepted => "connections accepted",
    Messages => "messages echoed whole",
    BytesSent => "bytes sent on whole exchanges",
    BytesClientVerified => "bytes verified by clients",
    BytesServerVerified => "bytes verified by the server (whole exchanges)",
    BytesServerFault => "bytes verified by the server (faulty peers)",
    FaultReset => "reset",
    FaultHalfClose => "half-close",
    FaultSlowloris => "slowloris",
    FaultVanishClose => "vanish (close mid-message)",
    FaultVanishSilent => "vanish (silent mid-message)",
    FaultCancel => "cancel a parked read",
    EmfileWindows => "EMFILE windows",
    EmfileProbes => "connections made during EMFILE windows",
    AcceptEmfile => "accept EMFILE (backed off)",
    EmfileWaitMaxMillis => "longest wait for accept's EMFILE in a window (ms)",
    ChurnRounds => "channel rounds",
    ChurnValues => "channel values delivered",
    MutexLocks => "Mutex sections",
    MutexTimeouts => "Mutex lock_timeout expired",
    RtsBuilt => "runtimes built and dropped",
    RtsCancelled => "coroutines cancelled by a runtime drop",
    Probes => "worker probes",
    ProbeMaxMicros => "worker probe latency max (us)",
}

/// One kind of error at one place.
#[derive(Debug)]
pub struct ErrEntry {
    pub count: u64,
    pub expected: bool,
    pub sample: String,
}

/// Everything the soak counts. Errors and failures are rare (faults), so
/// a lock over their maps is fine; the byte counters are plain atomics.
#[derive(Debug)]
pub struct Stats {
    counters: [AtomicU64; C_COUNT],
    errors: Mutex<BTreeMap<(String, &'static str), ErrEntry>>,
    /// Failures by what failed (the text before any ';', without its
    /// numbers): how many, and the first one's text.
    failures: Mutex<BTreeMap<String, (u64, String)>>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
            errors: Mutex::default(),
            failures: Mutex::default(),
        }
    }
}

impl Stats {
    pub fn add(&self, c: C, n: u64) {
        self.counters[c as usize].fetch_add(n, Relaxed);
    }

    pub fn inc(&self, c: C) {
        self.add(c, 1);
    }

    pub fn max(&self, c: C, v: u64) {
        self.counters[c as usize].fetch_max(v, Relaxed);
    }

    pub fn get(&self, c: C) -> u64 {
        self.counters[c as usize].load(Relaxed)
    }

    /// Counts `err`, seen at `place`, by kind. An unexpected kind fails the
    /// run.
    pub fn error(&self, place: &str, err: &io::Error, expected: bool) {
        let kind = kind(err);
        let mut map = self.errors.lock().unwrap();
        let e = map
            .entry((place.to_owned(), kind))
            .or_insert_with(|| ErrEntry {
                count: 0,
                expected,
                sample: err.to_string(),
            });
        e.count += 1;
        if e.expected && !expected {
            e.expected = false;
            e.sample = err.to_string();
        }
    }

    /// Records a failure: the run will exit non-zero.
    pub fn fail(&self, what: impl Into<String>) {
        let what = what.into();
        // Failures that differ only in numbers or in the details after a
        // ';' count as one.
        let head = what.split(';').next().unwrap_or_default();
        let key: String = head.chars().filter(|c| !c.is_ascii_digit()).collect();
        let mut f = self.failures.lock().unwrap();
        f.entry(key).or_insert((0, what)).0 += 1;
    }

    /// Every failure: the recorded ones by what failed, then the
    /// unexpected errors by place and kind.
    pub fn failures(&self) -> Vec<String> {
        let times = |n: u64| {
            if n > 1 {
                format!(" ({n} times)")
            } else {
                String::new()
            }
        };
        let mut v: Vec<String> = self
            .failures
            .lock()
            .unwrap()
            .values()
            .map(|(n, first)| format!("{first}{}", times(*n)))
            .collect();
        for ((place, kind), e) in self.errors.lock().unwrap().iter() {
            if !e.expected {
                v.push(format!(
                    "{place}: unexpected error ({kind}){}: {}",
                    times(e.count),
                    e.sample
                ));
            }
        }
        v
    }

    /// `(place, kind, entry)` for every error seen, sorted.
    pub fn errors(&self) -> Vec<(String, &'static str, u64, bool, String)> {
        self.errors
            .lock()
            .unwrap()
            .iter()
            .map(|((p, k), e)| (p.clone(), *k, e.count, e.expected, e.sample.clone()))
            .collect()
    }
}

/// A short name for the kind of `err`: the classes a fault can cause get
/// their own names; anything else is named by its `ErrorKind`.
pub fn kind(err: &io::Error) -> &'static str {
    if gopark::net::is_closed(err) {
        return "closed";
    }
    if is_fd_limit(err) {
        return "EMFILE/ENFILE";
    }
    match err.kind() {
        io::ErrorKind::ConnectionReset => "reset",
        io::ErrorKind::BrokenPipe => "broken pipe",
        io::ErrorKind::TimedOut => "timeout",
        io::ErrorKind::UnexpectedEof => "eof mid-message",
        io::ErrorKind::ConnectionAborted => "aborted",
        io::ErrorKind::ConnectionRefused => "refused",
        io::ErrorKind::AddrNotAvailable => "address not available",
        io::ErrorKind::InvalidData => "invalid data",
        io::ErrorKind::NotConnected => "not connected",
        io::ErrorKind::OutOfMemory => "out of memory",
        io::ErrorKind::WouldBlock => "would block",
        io::ErrorKind::Interrupted => "interrupted",
        _ => "other",
    }
}

/// True for EMFILE and ENFILE: the process (or system) is out of
/// descriptors, the injected fault of an EMFILE window.
pub fn is_fd_limit(err: &io::Error) -> bool {
    if matches!(
        gopark::net::raw_os_error(err),
        Some(libc::EMFILE | libc::ENFILE)
    ) {
        return true;
    }
    // `Runtime::build` reports a poller that could not be created as
    // "epoll_create1 failed: <the OS error>", which keeps the kind but not
    // the errno: recognise the OS error's text at the end.
    [libc::EMFILE, libc::ENFILE].iter().any(|&n| {
        let os = io::Error::from_raw_os_error(n);
        err.kind() == os.kind() && err.to_string().ends_with(&os.to_string())
    })
}

macro_rules! roles {
    ($($name:ident => $label:literal,)*) => {
        /// What a coroutine or thread of the soak is, for the live counts.
        #[derive(Debug, Clone, Copy)]
        pub enum Role { $($name,)* }
        const ROLE_NAMES: &[&str] = &[$($label,)*];
        const ROLE_COUNT: usize = ROLE_NAMES.len();
    };
}

roles! {
    Acceptor => "acceptor",
    ServerConn => "server connection",
    Client => "client",
    ClientReader => "client reader",
    FaultPeer => "faulty peer",
    FaultReader => "faulty peer reader",
    Churn => "channel/Mutex churn",
    RtChurn => "runtime churn",
    Probe => "worker probe",
    Thread => "thread",
}

/// Live coroutines (and threads) of the soak by role. A process runs one
/// soak, so these are process-wide.
static LIVE: [AtomicUsize; ROLE_COUNT] = [const { AtomicUsize::new(0) }; ROLE_COUNT];

/// Counts one live coroutine of a role from its creation to its drop. Made
/// before the spawn and moved into the closure, so a coroutine cancelled
/// before it started (its closure dropped unrun) is counted out too.
#[derive(Debug)]
pub struct Live(Role);

impl Live {
    pub fn enter(role: Role) -> Live {
        LIVE[role as usize].fetch_add(1, Relaxed);
        Live(role)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE[self.0 as usize].fetch_sub(1, Relaxed);
    }
}

/// All live counts, by role name.
pub fn live() -> Vec<(&'static str, usize)> {
    ROLE_NAMES
        .iter()
        .zip(LIVE.iter())
        .map(|(n, c)| (*n, c.load(Relaxed)))
        .collect()
}

/// The live count of one role.
pub fn live_count(role: Role) -> usize {
    LIVE[role as usize].load(Relaxed)
}

/// The total of the live counts.
pub fn live_total() -> usize {
    LIVE.iter().map(|c| c.load(Relaxed)).sum()
}

/// `n` bytes in a readable unit.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}
