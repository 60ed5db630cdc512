//! Helpers shared by the integration tests (and the stack unit tests, which
//! include this file): re-running one test alone in a child process (for
//! crashes, process-wide limits and signal dispositions), and reading the
//! process's memory figures.
//!
//! The parent calls [`child`] with the test's own name; the re-run test sees
//! [`in_child`] return true and does the dangerous part.

#![allow(dead_code)] // each test binary uses a subset

use std::process::{Command, Output};

/// Names the test a child process was started for.
pub const CHILD_ENV: &str = "GOPARK_TEST_CHILD";

/// Re-runs test `name` of this test binary alone in a child process and
/// returns its output (also echoed to the parent's stderr for diagnosis).
pub fn child(name: &str) -> Output {
    child_at(name, name)
}

/// [`child`] for a test whose full path differs from its name, as in unit
/// test modules: `path` selects the test (`--exact`), `name` is what
/// [`in_child`] sees.
pub fn child_at(path: &str, name: &str) -> Output {
    let out = child_command(path, name).output().unwrap();
    echo_child(path, &out);
    out
}

/// [`child`] with extra environment variables set in the child (which
/// otherwise runs without `RUST_BACKTRACE`).
pub fn child_env(name: &str, vars: &[(&str, &str)]) -> Output {
    let out = child_command(name, name)
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    echo_child(name, &out);
    out
}

/// The command that re-runs test `path` alone, as the child for `name`.
fn child_command(path: &str, name: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", path, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .env_remove("RUST_BACKTRACE");
    c
}

/// Echoes a child's outcome to the parent's stderr, for diagnosis.
fn echo_child(path: &str, out: &Output) {
    eprintln!(
        "child {path}: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// [`child`] with a time limit: a child still running after `limit` is
/// killed (its status then shows SIGKILL), so a hang fails the test instead
/// of hanging the suite.
pub fn child_within(name: &str, limit: std::time::Duration) -> Output {
    child_at_within(name, name, limit)
}

/// [`child_within`] for a test whose full path differs from its name (see
/// [`child_at`]).
pub fn child_at_within(path: &str, name: &str, limit: std::time::Duration) -> Output {
    wait_within(path, child_command(path, name), limit)
}

/// Re-runs unit test `name` of the module whose `module_path!()` is
/// `module` alone in a child process, within `limit`; the child must exit
/// successfully and print "child ok" (a path that selects no test would
/// also succeed, having run nothing).
pub fn unit_child_ok(module: &str, name: &str, limit: std::time::Duration) {
    let module = module.split_once("::").map_or("", |(_, m)| m);
    let out = child_at_within(&format!("{module}::{name}"), name, limit);
    assert!(
        out.status.success(),
        "child failed ({:?}): {}",
        out.status,
        stderr(&out)
    );
    assert!(stdout(&out).contains("child ok"), "the child ran no test");
}

/// [`child_within`] with extra environment variables for the child.
pub fn child_within_env(name: &str, limit: std::time::Duration, env: &[(&str, &str)]) -> Output {
    let mut c = child_command(name, name);
    c.envs(env.iter().copied());
    wait_within(name, c, limit)
}

/// Runs `c` (the child for test `path`), killing it after `limit`.
fn wait_within(path: &str, mut c: Command, limit: std::time::Duration) -> Output {
    use std::io::Read;
    let mut c = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Drain both pipes on threads so a chatty child never blocks on them.
    let mut so = c.stdout.take().unwrap();
    let mut se = c.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let te = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = c.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = c.kill();
            break c.wait().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let out = Output {
        status,
        stdout: to.join().unwrap(),
        stderr: te.join().unwrap(),
    };
    echo_child(path, &out);
    out
}

/// True in the child process started by [`child`] for test `name`.
pub fn in_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// The child's stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The child's stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Raises this process's soft RLIMIT_NOFILE to at least `need` descriptors
/// (as Go does at start-up); many shells default to 1024. Panics with the
/// fix to apply if the hard limit is lower than `need`.
pub fn raise_fd_limit(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur >= need {
        return;
    }
    assert!(
        lim.rlim_max >= need,
        "this test needs {need} file descriptors but the hard RLIMIT_NOFILE is {}; \
         raise it (ulimit -Hn {need}) and run again",
        lim.rlim_max
    );
    lim.rlim_cur = need;
    // SAFETY: `lim` is a valid rlimit within the hard limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
}

/// Memory mappings of this process (lines of /proc/self/maps).
pub fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// A field of /proc/self/status in KiB (e.g. "VmRSS").
pub fn status_kib(field: &str) -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A connected TCP pair on loopback: (client side, server side).
pub fn tcp_pair() -> (gopark::net::TcpStream, gopark::net::TcpStream) {
    let l = gopark::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let c = gopark::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// User + system CPU time of the whole process.
pub fn process_cpu() -> std::time::Duration {
    // SAFETY: all-zero bytes are a valid rusage; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` outlives the call.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) }, 0);
    let tv = |t: libc::timeval| std::time::Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Spawns a coroutine (on the current runtime) that sleeps 1 ms in a loop
/// until `stop` is set, and returns the longest gap it saw between two
/// wake-ups: how long something held its worker.
pub fn sleeper(
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> gopark::JoinHandle<std::time::Duration> {
    use std::time::{Duration, Instant};
    gopark::spawn(move || {
        let mut worst = Duration::ZERO;
        let mut last = Instant::now();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            gopark::time::sleep(Duration::from_millis(1));
            let now = Instant::now();
            worst = worst.max(now - last);
            last = now;
        }
        worst
    })
}

/// Asserts that this process uses almost no CPU (< 50 ms) over the next
/// second: what an idle runtime must cost.
pub fn assert_idle_for_a_second() {
    let before = process_cpu();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let used = process_cpu() - before;
    assert!(
        used < std::time::Duration::from_millis(50),
        "idle runtime used {used:?} of CPU in 1 s"
    );
}

/// Keeps the calling thread busy for `d` of wall time without parking or
/// yielding (a CPU loop, as a stalled coroutine runs).
pub fn spin(d: std::time::Duration) {
    let t = std::time::Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}
