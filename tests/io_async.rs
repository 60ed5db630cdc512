//! `gopark::io::Pollable`: pipes and child stdio park instead of blocking
//! the worker; the standard streams go through the pool.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::sleeper;

use gopark::io::Pollable;

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just opened both; each is owned exactly once.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn is_nonblocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL on an open descriptor.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    fl & libc::O_NONBLOCK != 0
}

#[test]
fn pipe_read_parks_and_gets_the_data() {
    let (r, w) = pipe();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut w = std::fs::File::from(w);
        w.write_all(b"late data").unwrap();
    });
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let (got, waited, worst) = rt.run(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let s = sleeper(stop.clone());
        gopark::time::sleep(Duration::from_millis(5));
        let mut r = Pollable::new(r).unwrap();
        let t = Instant::now();
        let mut got = String::new();
        r.read_to_string(&mut got).unwrap(); // until the writer closes
        let waited = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        (got, waited, s.join().unwrap())
    });
    writer.join().unwrap();
    eprintln!("read waited {waited:?}; sleeper's worst gap {worst:?}");
    assert_eq!(got, "late data");
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(worst < Duration::from_millis(100), "worst gap {worst:?}");
}

#[test]
fn pipe_write_parks_while_full_and_flags_are_restored() {
    let (r, w) = pipe();
    assert!(!is_nonblocking(&w));
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let (w, total) = rt.run(move || {
        let w = Pollable::new(w).unwrap();
        let r = Pollable::new(r).unwrap();
        assert!(is_nonblocking(&w));
        // 1 MiB through a 64 KiB pipe: the writer parks while it is full.
        let reader = gopark::spawn(move || {
            let mut buf = vec![0u8; 8192];
            let mut total = 0usize;
            loop {
                let n = (&r).read(&mut buf).unwrap();
                if n == 0 {
                    return total;
                }
                assert!(buf[..n].iter().all(|&b| b == 7));
                total += n;
            }
        });
        let data = vec![7u8; 1 << 20];
        (&w).write_all(&data).unwrap();
        let w = w.into_inner();
        assert!(!is_nonblocking(&w), "blocking mode restored");
        drop(w); // EOF for the reader
        (None::<OwnedFd>, reader.join().unwrap())
    });
    assert!(w.is_none());
    assert_eq!(total, 1 << 20);
}

#[test]
fn child_stdout_and_plain_threads() {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let out = rt.run(|| {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 0.1; echo child says hi"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = Pollable::new(child.stdout.take().unwrap()).unwrap();
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        assert!(gopark::blocking(move || child.wait()).unwrap().success());
        s
    });
    assert_eq!(out, "child says hi\n");

    // A plain thread waits in poll(2).
    let (r, w) = pipe();
    let r = Pollable::new(r).unwrap();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        std::fs::File::from(w).write_all(b"x").unwrap();
    });
    let mut b = [0u8; 1];
    assert_eq!((&r).read(&mut b).unwrap(), 1);
    t.join().unwrap();
}

#[test]
fn regular_files_are_refused() {
    let f = std::fs::File::open("/proc/self/stat").unwrap();
    let before = is_nonblocking(&f);
    let e = Pollable::new(f.try_clone().unwrap()).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    assert_eq!(is_nonblocking(&f), before, "flags left as they were");
}

/// Standard input through the pool: a child process whose stdin is a pipe
/// that stays empty for 300 ms reads a line from a coroutine on one worker
/// while a 1 ms sleeper keeps ticking, then echoes it on stdout and stderr.
#[test]
fn stdin_read_line_does_not_stall_the_worker() {
    const NAME: &str = "stdin_read_line_does_not_stall_the_worker";
    if std::env::var("GOPARK_TEST_CHILD").is_ok_and(|v| v == NAME) {
        let rt = gopark::Runtime::builder().workers(1).build().unwrap();
        rt.run(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let s = sleeper(stop.clone());
            let mut line = String::new();
            gopark::io::stdin().read_line(&mut line).unwrap();
            stop.store(true, Ordering::Relaxed);
            let worst = s.join().unwrap();
            let mut out = gopark::io::stdout();
            writeln!(out, "got {:?} worst_ms {}", line, worst.as_millis()).unwrap();
            out.flush().unwrap();
            writeln!(gopark::io::stderr(), "on stderr").unwrap();
        });
        return;
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env("GOPARK_TEST_CHILD", NAME)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stdin.write_all(b"a line\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{so}\n{se}");
    assert!(se.contains("on stderr"), "{se}");
    let line = so
        .lines()
        .find_map(|l| l.find("got ").map(|i| &l[i..]))
        .expect(&so);
    assert!(line.starts_with("got \"a line\\n\" worst_ms "), "{line}");
    let worst: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(worst < 100, "worst gap {worst} ms");
}
