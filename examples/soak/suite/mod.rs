//! The soak: an echo server, its clients, faulty peers, EMFILE windows,
//! channel/`select!`/`Mutex` churn and runtime churn, all at once in one
//! process; then the leak checks and the summary.
//!
//! It runs in two phases of the same shape. The warm-up fills every pool
//! (stacks, buffers, the allocator's arenas); after it, everything is
//! stopped and drained and the resident memory is the baseline. The main
//! phase runs, stops and drains the same way; then nothing may be left:
//! descriptors as at the start, no live coroutine, memory within a bound of
//! the baseline, every worker answering.

mod churn;
mod diag;
mod echo;
mod emfile;
mod probe;
mod rng;
mod stats;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gopark::net::TcpListener;
use gopark::Runtime;

use rng::Rng;
use stats::{Live, Role, Stats, C};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The warm-up phase, then the main phase.
    pub warmup: Duration,
    pub main: Duration,
    /// Client coroutines, each holding one connection at a time.
    pub conns: usize,
    /// Client plain threads (gopark sockets blocking in poll(2)).
    pub thread_clients: usize,
    /// Faulty-peer coroutines, one fault after another.
    pub fault_peers: usize,
    /// Largest message; sizes are log-uniform in `1..=max_msg`.
    pub max_msg: usize,
    /// Largest single read or write.
    pub chunk: usize,
    /// The server's read and write bounds (timeouts or deadlines).
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    /// The bound on every client op (and on a worker probe): hitting it is
    /// a failure (a lost wake-up or lost bytes).
    pub client_bound: Duration,
    /// Workers of the soak's runtime (default: gopark's default).
    pub workers: Option<usize>,
    pub seed: u64,
    /// Memory may end this much above its post-warm-up baseline (or a
    /// quarter of the baseline, whichever is more).
    pub mem_slack: u64,
    /// A progress line on stderr every ten seconds.
    pub progress: bool,
    /// Parts left out (to narrow down a failure): the faulty peers, the
    /// EMFILE windows, the channel churn, the runtime churn.
    pub skip: Skip,
}

/// Parts of the soak to leave out; all run by default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Skip {
    pub faults: bool,
    pub emfile: bool,
    pub channels: bool,
    pub runtimes: bool,
}

impl Skip {
    fn names(&self) -> Vec<&'static str> {
        [
            (self.faults, "faults"),
            (self.emfile, "emfile"),
            (self.channels, "channels"),
            (self.runtimes, "runtimes"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|&(_, n)| n)
        .collect()
    }
}

impl Config {
    /// The full soak for `secs` seconds (a fifth of it, at most a minute,
    /// warms up): 1,000 connections, messages up to 1 MiB.
    pub fn full(secs: u64) -> Config {
        let warmup = (secs / 5).clamp(1, 60);
        Config {
            warmup: Duration::from_secs(warmup),
            main: Duration::from_secs(secs.saturating_sub(warmup).max(1)),
            conns: 1000,
            thread_clients: 4,
            fault_peers: 50,
            max_msg: 1 << 20,
            chunk: 64 << 10,
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(5),
            client_bound: Duration::from_secs(30),
            workers: None,
            seed: 1,
            mem_slack: 64 << 20,
            progress: true,
            skip: Skip::default(),
        }
    }

    /// The test suite's run: about 15 s, 200 connections, messages up to
    /// 256 KiB, shorter server bounds.
    pub fn ci() -> Config {
        Config {
            warmup: Duration::from_secs(3),
            main: Duration::from_secs(12),
            conns: 200,
            thread_clients: 2,
            fault_peers: 20,
            max_msg: 256 << 10,
            chunk: 32 << 10,
            read_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(2),
            client_bound: Duration::from_secs(20),
            progress: false,
            ..Config::full(15)
        }
    }

    /// How long a stopped phase may take to drain: a client op's bound plus
    /// the server's bounds (a slowloris or silent peer in progress).
    fn drain(&self) -> Duration {
        self.client_bound + self.read_timeout + self.write_timeout + Duration::from_secs(5)
    }
}

/// What the parts of one phase share.
#[derive(Debug)]
pub struct Phase {
    pub cfg: Config,
    pub stats: Arc<Stats>,
    pub addr: SocketAddr,
    stop: AtomicBool,
    /// An EMFILE window is open, or when the last one closed.
    window: Mutex<(bool, Option<Instant>)>,
}

/// EMFILE is expected this long after a window closed (an op that failed
/// just before may report a little later).
const WINDOW_GRACE: Duration = Duration::from_millis(500);

impl Phase {
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps `d` in short steps; false if the phase stopped meanwhile.
    pub fn nap(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while !self.stopped() {
            let now = Instant::now();
            if now >= end {
                return true;
            }
            gopark::time::sleep((end - now).min(Duration::from_millis(50)));
        }
        false
    }

    pub fn begin_fd_window(&self) {
        *self.window.lock().unwrap() = (true, None);
    }

    pub fn end_fd_window(&self) {
        *self.window.lock().unwrap() = (false, Some(Instant::now()));
    }

    /// True if `err` is EMFILE/ENFILE during (or just after) an EMFILE
    /// window: the injected fault. Outside one it would be a real shortage.
    pub fn fd_limit_expected(&self, err: &std::io::Error) -> bool {
        if !stats::is_fd_limit(err) {
            return false;
        }
        match *self.window.lock().unwrap() {
            (true, _) => true,
            (false, Some(end)) => end.elapsed() < WINDOW_GRACE,
            (false, None) => false,
        }
    }
}

/// Runs `f`, recording a panic as a failure.
fn guarded(stats: &Stats, what: &str, f: impl FnOnce()) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        stats.fail(format!("{what} panicked: {msg}"));
    }
}

/// A plain thread, counted live while it runs.
pub fn spawn_thread(name: &str, f: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    let live = Live::enter(Role::Thread);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _live = live;
            f()
        })
        .unwrap_or_else(|e| panic!("soak: cannot start thread {name}: {e}"))
}

/// A coroutine on `rt`, counted live from now until it ends.
fn spawn_on(
    rt: &Runtime,
    stats: &Arc<Stats>,
    role: Role,
    what: &'static str,
    f: impl FnOnce() + Send + 'static,
) {
    let live = Live::enter(role);
    let s = stats.clone();
    let spawned = gopark::Builder::new().name(what).spawn_on(rt, move || {
        let _live = live;
        guarded(&s, what, f);
    });
    if let Err(e) = spawned {
        stats.error(&format!("spawn {what}"), &e, false);
    }
}

/// The outcome: the summary table, and what failed (empty: exit 0).
#[derive(Debug)]
pub struct Report {
    pub table: String,
    pub failures: Vec<String>,
}

/// Runs the soak described by `cfg`.
pub fn run(cfg: &Config) -> Report {
    let stats = Arc::new(Stats::default());
    let started = Instant::now();

    // Descriptors: two per connection (both ends live here) and room for
    // the rest. The soft limit is set to this, usually lowering it.
    let need = 2 * (cfg.conns + cfg.thread_clients + cfg.fault_peers) as u64 + 1024;
    match emfile::nofile() {
        Ok((_, hard)) if hard < need => {
            stats.fail(format!(
                "the soak needs {need} descriptors; the hard RLIMIT_NOFILE is {hard} (raise it: ulimit -Hn {need})"
            ));
            return report(cfg, &stats, None, started);
        }
        Ok(_) => {
            if let Err(e) = emfile::set_nofile(need) {
                stats.error("setrlimit", &e, false);
            }
        }
        Err(e) => stats.error("getrlimit", &e, false),
    }

    let mut b = Runtime::builder().name("soak");
    if let Some(n) = cfg.workers {
        b = b.workers(n);
    }
    let rt = match b.build() {
        Ok(rt) => Arc::new(rt),
        Err(e) => {
            stats.error("build the runtime", &e, false);
            return report(cfg, &stats, None, started);
        }
    };
    // Descriptors gopark opens once per process and keeps: the default
    // runtime's poller (sockets on plain threads register there) and the
    // placeholder socket that a closed socket's number is pointed at.
    // Open them before counting.
    let _ = gopark::spawn(|| ()).join();
    if let Ok(l) = rt.run(|| TcpListener::bind("127.0.0.1:0")) {
        let _ = l.close();
    }

    let mut leaks = Leaks {
        workers: rt.workers(),
        ..Leaks::default()
    };
    leaks.fd_start = probe::fds().ok();
    let mut rng = Rng::new(cfg.seed);
    let peak = Arc::new(AtomicU64::new(0));
    let mut drained = phase(cfg, &stats, &rt, cfg.warmup, "warm-up", &mut rng, &peak);
    leaks.fd_warm = probe::fds().ok();
    leaks.rss_base = probe::settled_rss().ok();
    if drained {
        drained = phase(cfg, &stats, &rt, cfg.main, "main", &mut rng, &peak);
    }
    leaks.fd_end = probe::fds().ok();
    leaks.rss_end = probe::settled_rss().ok();
    leaks.rss_peak = peak.load(Ordering::Relaxed);
    leaks.live = stats::live_total();
    if drained {
        // gopark's own count of the runtime's live coroutines (its
        // metrics), which may lag the guards by a moment.
        let t = Instant::now();
        loop {
            leaks.rt_count = rt_coroutines(&rt);
            if !matches!(leaks.rt_count, Some(n) if n > 0) || t.elapsed() > Duration::from_secs(5) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        leaks.probe = Some(probe::workers(&rt, Duration::from_secs(2)));
        // Dropping the runtime ends its workers; it must return.
        let t = Instant::now();
        let dropper = std::thread::spawn(move || drop(rt));
        while !dropper.is_finished() && t.elapsed() < DROP_BOUND {
            std::thread::sleep(Duration::from_millis(1));
        }
        if dropper.is_finished() {
            leaks.rt_drop = Some(t.elapsed());
        } else {
            stats.fail(format!(
                "runtime drop: did not return within {DROP_BOUND:?}"
            ));
        }
    } else {
        // Something is stuck in it: dropping it could wait for ever.
        std::mem::forget(rt);
    }
    report(cfg, &stats, Some(&leaks), started)
}

/// How long dropping the soak's (idle) runtime may take.
const DROP_BOUND: Duration = Duration::from_secs(10);

/// The runtime's count of its live coroutines.
fn rt_coroutines(rt: &Runtime) -> Option<usize> {
    Some(rt.metrics().live_coroutines())
}

/// Runs one phase for `dur`, stops it and drains it; false if something
/// did not stop within the drain bound.
fn phase(
    cfg: &Config,
    stats: &Arc<Stats>,
    rt: &Arc<Runtime>,
    dur: Duration,
    label: &'static str,
    rng: &mut Rng,
    peak: &Arc<AtomicU64>,
) -> bool {
    let listener = match rt.run(|| TcpListener::bind("127.0.0.1:0")) {
        Ok(l) => Arc::new(l),
        Err(e) => {
            stats.error("server: bind", &e, false);
            return false;
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let ph = Arc::new(Phase {
        cfg: cfg.clone(),
        stats: stats.clone(),
        addr,
        stop: AtomicBool::new(false),
        window: Mutex::new((false, None)),
    });

    let (p, l) = (ph.clone(), listener.clone());
    spawn_on(rt, stats, Role::Acceptor, "the accept loop", move || {
        echo::accept_loop(p, l)
    });
    for _ in 0..cfg.conns {
        let (p, r) = (ph.clone(), rng.fork());
        spawn_on(rt, stats, Role::Client, "a client", move || {
            echo::client(p, r, echo::Peer::Client)
        });
    }
    let fault_peers = if cfg.skip.faults { 0 } else { cfg.fault_peers };
    for _ in 0..fault_peers {
        let (p, r) = (ph.clone(), rng.fork());
        spawn_on(rt, stats, Role::FaultPeer, "a faulty peer", move || {
            echo::fault_peer(p, r)
        });
    }
    let mut threads = Vec::new();
    let mut thread = |name: &'static str, f: Box<dyn FnOnce() + Send>| {
        let s = stats.clone();
        threads.push((name, spawn_thread(name, move || guarded(&s, name, f))));
    };
    for _ in 0..cfg.thread_clients {
        let (p, r) = (ph.clone(), rng.fork());
        thread(
            "soak-client",
            Box::new(move || echo::client(p, r, echo::Peer::Thread)),
        );
    }
    let (p, q, r) = (ph.clone(), rt.clone(), rng.fork());
    if !cfg.skip.channels {
        thread("soak-chan", Box::new(move || churn::chan_driver(p, q, r)));
    }
    let (p, r) = (ph.clone(), rng.fork());
    if !cfg.skip.runtimes {
        thread("soak-runtimes", Box::new(move || churn::rt_driver(p, r)));
    }
    let (p, r) = (ph.clone(), rng.fork());
    if !cfg.skip.emfile {
        thread("soak-emfile", Box::new(move || emfile::injector(p, r)));
    }
    let (p, q, k) = (ph.clone(), rt.clone(), peak.clone());
    thread(
        "soak-monitor",
        Box::new(move || probe::monitor(p, q, k, label)),
    );

    std::thread::sleep(dur);
    ph.stop.store(true, Ordering::Relaxed);

    // Drain: the threads and the clients end on their own (a faulty peer
    // when the server's bound ends it); then the listener closes, and the
    // server's coroutines end as their peers have gone.
    let drain = cfg.drain();
    let stopped = Instant::now();
    let deadline = stopped + drain;
    let mut ok = true;
    for (name, t) in threads {
        while !t.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if t.is_finished() {
            let _ = t.join();
        } else {
            stats.fail(format!(
                "{label}: thread {name} did not stop within {drain:?}"
            ));
            ok = false;
        }
    }
    let clients = || {
        [
            Role::Client,
            Role::ClientReader,
            Role::FaultPeer,
            Role::FaultReader,
        ]
        .iter()
        .map(|&r| stats::live_count(r))
        .sum::<usize>()
    };
    while clients() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = listener.close();
    while stats::live_total() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if stats::live_total() > 0 {
        let left: Vec<String> = stats::live()
            .into_iter()
            .filter(|&(_, n)| n > 0)
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        stats.fail(format!(
            "{label}: still alive {drain:?} after the stop: {}",
            left.join(", ")
        ));
        ok = false;
    }
    if cfg.progress {
        eprintln!(
            "soak: {label} phase stopped; drained in {:.1?}",
            stopped.elapsed()
        );
    }
    ok
}

/// What the leak checks found.
#[derive(Debug, Default)]
struct Leaks {
    workers: usize,
    fd_start: Option<usize>,
    fd_warm: Option<usize>,
    fd_end: Option<usize>,
    rss_base: Option<u64>,
    rss_end: Option<u64>,
    rss_peak: u64,
    live: usize,
    rt_count: Option<usize>,
    probe: Option<Result<Duration, String>>,
    rt_drop: Option<Duration>,
}

/// Checks the leaks, adds their failures, and writes the summary.
fn report(cfg: &Config, stats: &Stats, leaks: Option<&Leaks>, started: Instant) -> Report {
    let mut t = String::new();
    let g = |c| stats.get(c);
    let b = |c| stats::bytes(stats.get(c));
    let _ = writeln!(
        t,
        "soak: {:.0} s ({} s warm-up, {} s main), {} workers, {} client coroutines + {} client threads + {} faulty peers, messages 1 B..{}, seed {}",
        started.elapsed().as_secs_f64(),
        cfg.warmup.as_secs(),
        cfg.main.as_secs(),
        leaks.map_or(0, |l| l.workers),
        cfg.conns,
        cfg.thread_clients,
        cfg.fault_peers,
        stats::bytes(cfg.max_msg as u64),
        cfg.seed,
    );
    let skipped = cfg.skip.names();
    if !skipped.is_empty() {
        let _ = writeln!(t, "  skipped: {}", skipped.join(", "));
    }
    let row = |t: &mut String, k: &str, v: String| {
        let _ = writeln!(t, "  {k:<24} {v}");
    };
    t.push_str("traffic\n");
    row(&mut t, "connections", format!(
        "{} accepted: {} client coroutines, {} client threads, {} faulty, {} during EMFILE windows",
        g(C::ConnsAccepted), g(C::ConnsClient), g(C::ConnsThread), g(C::ConnsFault), g(C::EmfileProbes)
    ));
    row(&mut t, "messages echoed whole", g(C::Messages).to_string());
    let (sent, by_client, by_server) = (
        g(C::BytesSent),
        g(C::BytesClientVerified),
        g(C::BytesServerVerified),
    );
    row(&mut t, "bytes verified", format!(
        "sent {}, checked by the server {} (+ {} from faulty peers), echo checked by the clients {}",
        stats::bytes(sent), stats::bytes(by_server), b(C::BytesServerFault), stats::bytes(by_client)
    ));
    let lost = sent.saturating_sub(by_client.min(by_server));
    row(&mut t, "bytes lost", lost.to_string());
    if sent != by_client || sent != by_server {
        stats.fail(format!(
            "bytes: sent {sent}, the server checked {by_server}, the clients {by_client}: not equal"
        ));
    }
    t.push_str("faults injected\n");
    row(&mut t, "peers", format!(
        "reset {}, half-close {}, slowloris {}, vanish mid-message (close) {}, vanish mid-message (silent) {}, cancel a parked read {}",
        g(C::FaultReset), g(C::FaultHalfClose), g(C::FaultSlowloris), g(C::FaultVanishClose), g(C::FaultVanishSilent), g(C::FaultCancel)
    ));
    row(&mut t, "EMFILE windows", format!(
        "{} (accept failed with EMFILE {} times, at most {} ms after a window opened, and kept accepting)",
        g(C::EmfileWindows), g(C::AcceptEmfile), g(C::EmfileWaitMaxMillis)
    ));
    row(
        &mut t,
        "runtimes",
        format!(
            "{} built and dropped ({} coroutines parked in them cancelled)",
            g(C::RtsBuilt),
            g(C::RtsCancelled)
        ),
    );
    t.push_str("churn\n");
    row(
        &mut t,
        "channels and select!",
        format!(
            "{} rounds, {} values, none lost, duplicated or out of order",
            g(C::ChurnRounds),
            g(C::ChurnValues)
        ),
    );
    row(
        &mut t,
        "Mutex",
        format!(
            "{} sections, all exclusive ({} lock_timeout expiries)",
            g(C::MutexLocks),
            g(C::MutexTimeouts)
        ),
    );
    t.push_str("errors by kind (expected: the consequence of an injected fault)\n");
    let errors = stats.errors();
    if errors.is_empty() {
        t.push_str("  none\n");
    }
    for (place, kind, n, expected, sample) in &errors {
        let _ = writeln!(
            t,
            "  {:<46} {:<16} {:>9}  {}",
            place,
            kind,
            n,
            if *expected {
                "expected".to_owned()
            } else {
                format!("UNEXPECTED: {sample}")
            }
        );
    }
    t.push_str("leaks\n");
    if let Some(l) = leaks {
        let fd = |v: Option<usize>| v.map_or("?".into(), |n| n.to_string());
        let leaked = match (l.fd_start, l.fd_warm, l.fd_end) {
            (Some(a), Some(w), Some(e)) => e.max(w) as i64 - a as i64,
            _ => {
                stats.fail("descriptors: /proc/self/fd unreadable");
                0
            }
        };
        row(
            &mut t,
            "descriptors",
            format!(
                "{leaked} leaked (start {}, after warm-up {}, end {})",
                fd(l.fd_start),
                fd(l.fd_warm),
                fd(l.fd_end)
            ),
        );
        if leaked != 0 || l.fd_warm != l.fd_start {
            stats.fail(format!(
                "descriptors: {} at the start, {} after the warm-up, {} at the end",
                fd(l.fd_start),
                fd(l.fd_warm),
                fd(l.fd_end)
            ));
        }
        row(
            &mut t,
            "coroutines",
            format!(
                "{} live by the soak's guards, {} by the runtime",
                l.live,
                l.rt_count.map_or("?".into(), |n| n.to_string())
            ),
        );
        if l.live != 0 || l.rt_count.is_some_and(|n| n != 0) {
            stats.fail(format!(
                "coroutines: {} still live ({:?} by the runtime's count)",
                l.live, l.rt_count
            ));
        }
        match (l.rss_base, l.rss_end) {
            (Some(base), Some(end)) => {
                let allowed = cfg.mem_slack.max(base / 4);
                let grew = end as i64 - base as i64;
                row(
                    &mut t,
                    "memory (RSS)",
                    format!(
                        "{}{} since the warm-up (after it {}, at the end {}, bound +{}), peak {}",
                        if grew < 0 { "-" } else { "+" },
                        stats::bytes(grew.unsigned_abs()),
                        stats::bytes(base),
                        stats::bytes(end),
                        stats::bytes(allowed),
                        stats::bytes(l.rss_peak)
                    ),
                );
                if end > base + allowed {
                    stats.fail(format!(
                        "memory: {} after the warm-up, {} at the end: more than +{}",
                        stats::bytes(base),
                        stats::bytes(end),
                        stats::bytes(allowed)
                    ));
                }
            }
            _ => stats.fail("memory: /proc/self/statm unreadable"),
        }
        let during = Duration::from_micros(g(C::ProbeMaxMicros));
        match &l.probe {
            Some(Ok(d)) => row(&mut t, "workers", format!(
                "all {} ran a pinned coroutine at the end (slowest {d:.1?}); {} probes during the run, slowest {during:.1?}",
                l.workers, g(C::Probes)
            )),
            Some(Err(e)) => {
                row(&mut t, "workers", format!("UNRESPONSIVE: {e}"));
                stats.fail(format!("workers: {e}"));
            }
            None => row(&mut t, "workers", "not probed (the run did not drain)".into()),
        }
        if let Some(d) = l.rt_drop {
            row(&mut t, "runtime drop", format!("returned in {d:.1?}"));
        }
    } else {
        t.push_str("  not checked (the run did not start)\n");
    }
    let failures = stats.failures();
    if failures.is_empty() {
        t.push_str("result: PASS (nothing lost, nothing leaked)\n");
    } else {
        let _ = writeln!(t, "result: FAIL ({} problems)", failures.len());
        for f in &failures {
            let _ = writeln!(t, "  - {f}");
        }
    }
    Report { table: t, failures }
}
