//! The blocking pool: `gopark::blocking`, `spawn_blocking`, the thread cap,
//! cancellation at runtime shutdown, and name resolution off the worker.

mod common;
use common::sleeper;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn blocking_sleep_does_not_stall_the_worker() {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let (v, worst) = rt.run(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let s = sleeper(stop.clone());
        gopark::time::sleep(Duration::from_millis(5));
        let t = Instant::now();
        let v = gopark::blocking(|| {
            std::thread::sleep(Duration::from_secs(1));
            7
        });
        assert!(t.elapsed() >= Duration::from_secs(1));
        stop.store(true, Ordering::Relaxed);
        (v, s.join().unwrap())
    });
    assert_eq!(v, 7);
    eprintln!("sleeper's worst gap: {worst:?}");
    assert!(worst < Duration::from_millis(100), "worst gap {worst:?}");
}

#[test]
fn blocking_runs_on_a_pool_thread_and_inline_on_a_plain_thread() {
    let rt = gopark::Runtime::builder()
        .workers(1)
        .name("bt")
        .build()
        .unwrap();
    let name = rt.run(|| gopark::blocking(|| std::thread::current().name().map(str::to_owned)));
    assert_eq!(name.as_deref(), Some("bt-blocking"));
    let here = std::thread::current().id();
    assert_eq!(gopark::blocking(move || std::thread::current().id()), here);
}

#[test]
fn panics_propagate() {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let r = rt.run(|| {
        std::panic::catch_unwind(|| gopark::blocking(|| -> u32 { panic!("in the pool") }))
            .unwrap_err()
            .downcast_ref::<&str>()
            .copied()
    });
    assert_eq!(r, Some("in the pool"));
    // The pool survives it.
    assert_eq!(rt.run(|| gopark::blocking(|| 1)), 1);
    let h = rt.spawn_blocking(|| -> () { panic!("joined") });
    assert_eq!(
        h.join().unwrap_err().downcast_ref::<&str>(),
        Some(&"joined")
    );
}

#[test]
fn spawn_blocking_from_coroutines_and_threads() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let sum = rt.run(|| {
        let hs: Vec<_> = (0..20u64)
            .map(|i| {
                gopark::spawn_blocking(move || {
                    std::thread::sleep(Duration::from_millis(5));
                    i
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(sum, 190);
    // From a plain thread, joined by a plain thread.
    let h = rt.spawn_blocking(|| "plain");
    assert_eq!(h.join().unwrap(), "plain");
    // Started in a coroutine, joined on a plain thread.
    let h = rt.run(|| gopark::spawn_blocking(|| 5));
    assert_eq!(h.join().unwrap(), 5);
    // Detached: still runs.
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    drop(rt.spawn_blocking(move || r.store(true, Ordering::SeqCst)));
    let t = Instant::now();
    while !ran.load(Ordering::SeqCst) {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn more_jobs_than_threads_all_complete_within_the_cap() {
    let rt = gopark::Runtime::builder()
        .workers(1)
        .max_blocking_threads(3)
        .build()
        .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (r, m) = (running.clone(), most.clone());
    let done = rt.run(move || {
        let hs: Vec<_> = (0..30)
            .map(|_| {
                let (r, m) = (r.clone(), m.clone());
                gopark::spawn(move || {
                    gopark::blocking(move || {
                        let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                        m.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(10));
                        r.fetch_sub(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).count()
    });
    assert_eq!(done, 30);
    assert_eq!(most.load(Ordering::SeqCst), 3);
}

/// A coroutine waits in `blocking` while its runtime is dropped: the drop
/// returns promptly (the coroutine unwinds at its park point), the job runs
/// to the end on its pool thread, and the result is dropped there.
#[test]
fn runtime_dropped_while_a_coroutine_waits_in_blocking() {
    const NAME: &str = "runtime_dropped_while_a_coroutine_waits_in_blocking";
    if common::in_child(NAME) {
        struct Result;
        impl Drop for Result {
            fn drop(&mut self) {
                println!(
                    "result dropped on {}",
                    std::thread::current().name().unwrap_or("?")
                );
            }
        }
        struct Unwound;
        impl Drop for Unwound {
            fn drop(&mut self) {
                println!("coroutine unwound");
            }
        }
        let rt = gopark::Runtime::builder()
            .workers(1)
            .name("drop")
            .build()
            .unwrap();
        let started = Arc::new(AtomicBool::new(false));
        let s = started.clone();
        let h = rt.spawn(move || {
            let _u = Unwound;
            gopark::blocking(move || {
                s.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(500));
                Result
            })
        });
        while !started.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let t = Instant::now();
        drop(rt);
        println!("runtime dropped in {} ms", t.elapsed().as_millis());
        assert!(h.join().is_err());
        std::thread::sleep(Duration::from_millis(1500));
        println!("child done");
        return;
    }
    let out = common::child_within(NAME, Duration::from_secs(30));
    let so = common::stdout(&out);
    assert!(out.status.success(), "{out:?}");
    assert!(so.contains("coroutine unwound"), "{so}");
    assert!(so.contains("result dropped on drop-blocking"), "{so}");
    assert!(so.contains("child done"), "{so}");
    let ms: u64 = so
        .lines()
        .find_map(|l| l.strip_prefix("runtime dropped in "))
        .and_then(|l| l.strip_suffix(" ms"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(ms < 400, "the drop waited for the job: {ms} ms");
}

#[test]
fn lookup_host_localhost() {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let addrs: Vec<_> = rt.run(|| gopark::net::lookup_host("localhost").unwrap().collect());
    assert!(!addrs.is_empty());
    assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    let addrs: Vec<_> = rt.run(|| gopark::net::lookup_host("localhost:80").unwrap().collect());
    assert!(addrs.iter().all(|a| a.port() == 80), "{addrs:?}");
    // Numeric forms take no detour and keep their port.
    let one: Vec<_> = gopark::net::lookup_host("[::1]:8080").unwrap().collect();
    assert_eq!(one, vec!["[::1]:8080".parse().unwrap()]);
    let err = rt.run(|| gopark::net::lookup_host("no-such-host.invalid:80").map(|_| ()));
    assert!(err.is_err());
}

#[test]
fn connect_to_localhost_by_name() {
    use std::io::{Read, Write};
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let got = rt.run(|| {
        let l = gopark::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = gopark::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            c.write_all(b"hi").unwrap();
        });
        // "localhost" may resolve to ::1 first; connect tries each address.
        let mut c = gopark::net::TcpStream::connect(format!("localhost:{port}")).unwrap();
        drop(gopark::net::TcpStream::connect(("localhost", port)));
        let mut buf = [0u8; 2];
        c.read_exact(&mut buf).unwrap();
        server.join().unwrap();
        let u = gopark::net::UdpSocket::bind("localhost:0").unwrap();
        assert!(u.local_addr().unwrap().ip().is_loopback());
        buf
    });
    assert_eq!(&got, b"hi");
}

/// A coroutine calling `blocking` in a loop reuses one pool thread: the
/// thread counts itself idle before it wakes the caller.
#[test]
fn sequential_calls_reuse_one_thread() {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let ids = rt.run(|| {
        let mut ids = std::collections::HashSet::new();
        for _ in 0..2000 {
            ids.insert(gopark::blocking(|| std::thread::current().id()));
        }
        ids
    });
    assert_eq!(ids.len(), 1, "{ids:?}");
}
