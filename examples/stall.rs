//! Liveness: 20 coroutines sleep 10 ms in a loop while one more coroutine of
//! the same runtime does one thing that may hold its worker's thread; prints
//! how many sleepers stalled (a gap over 200 ms between two wake-ups) and the
//! worst gap.
//!
//! Run with: `cargo run --release --example stall -- ROW [--workers N] [--file PATH]`
//!
//! ROW is what the extra coroutine (named `work`) does:
//!
//! | ROW | work |
//! |---|---|
//! | `thread-sleep` | `std::thread::sleep(1 s)` |
//! | `blocking-sleep` | `gopark::blocking(\|\| std::thread::sleep(1 s))` |
//! | `std-read` | `std::fs::read(PATH)` |
//! | `fs-read` | `gopark::fs::read(PATH)`, the buffer dropped on the worker |
//! | `fs-read-free` | `gopark::fs::read(PATH)`, the buffer dropped inside `gopark::blocking` |
//! | `cpu` | a 2 s CPU loop |
//! | `cpu-blocking` | the same loop inside `gopark::blocking` |
//! | `std-resolve` | `("slow.test", port).to_socket_addrs()` (std), then connect |
//! | `lookup-host` | `gopark::net::lookup_host(("slow.test", port))`, then connect |
//! | `connect` | `gopark::net::TcpStream::connect(("slow.test", port))` |
//!
//! PATH defaults to `/tmp/gopark-stall-1g` and must exist (`benches/stall.sh`
//! writes it). The resolve rows need a name server that is slow to answer
//! `slow.test`: `cargo run --release --example stall -- dns 127.0.0.1:53 2000`
//! is one (it answers every A query with 127.0.0.1 and every other query with
//! no records, each after the given milliseconds), and `benches/stall.sh`
//! points the resolver at it inside a private network and mount namespace.
//! The Go counterpart is `benches/go/stall.go`; `benches/stall.sh` runs both.
//!
//! Output, one line: `ROW workers=N stalled=K/20 worst_ms=G work_ms=W`
//! (`error=...` appended if the work failed). A stall report from gopark's
//! monitor, if any, goes to stderr as usual.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SLEEPERS: usize = 20;
const PERIOD: Duration = Duration::from_millis(10);
const STALLED: Duration = Duration::from_millis(200);
const SLOW_NAME: &str = "slow.test";

fn usage() -> ! {
    eprintln!("usage: stall ROW [--workers N] [--file PATH] | stall dns ADDR DELAY_MS");
    std::process::exit(2);
}

/// A CPU loop of `d` that never parks or yields.
fn spin(d: Duration) -> u64 {
    let end = Instant::now() + d;
    let mut x = 1u64;
    while Instant::now() < end {
        for _ in 0..1000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    x
}

/// Runs one row's work; `port` is a local listener's.
fn work(row: &str, file: &str, port: u16) -> Result<(), String> {
    let err = |e: std::io::Error| e.to_string();
    match row {
        "thread-sleep" => std::thread::sleep(Duration::from_secs(1)),
        "blocking-sleep" => gopark::blocking(|| std::thread::sleep(Duration::from_secs(1))),
        "std-read" => drop(std::fs::read(file).map_err(err)?),
        "fs-read" => drop(gopark::fs::read(file).map_err(err)?),
        "fs-read-free" => {
            // Freeing 1 GiB (munmap) takes a few hundred ms too.
            let v = gopark::fs::read(file).map_err(err)?;
            gopark::blocking(move || drop(v));
        }
        "cpu" => drop(spin(Duration::from_secs(2))),
        "cpu-blocking" => drop(gopark::blocking(|| spin(Duration::from_secs(2)))),
        "std-resolve" => {
            let addrs: Vec<SocketAddr> =
                (SLOW_NAME, port).to_socket_addrs().map_err(err)?.collect();
            gopark::net::TcpStream::connect(&addrs[..]).map_err(err)?;
        }
        "lookup-host" => {
            let addrs: Vec<SocketAddr> = gopark::net::lookup_host((SLOW_NAME, port))
                .map_err(err)?
                .collect();
            gopark::net::TcpStream::connect(&addrs[..]).map_err(err)?;
        }
        "connect" => drop(gopark::net::TcpStream::connect((SLOW_NAME, port)).map_err(err)?),
        _ => usage(),
    }
    Ok(())
}

fn measure(row: &str, workers: usize, file: &str) {
    // The resolve rows connect to this (the connection sits in the backlog).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let rt = gopark::Runtime::builder().workers(workers).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sleepers: Vec<_> = (0..SLEEPERS)
        .map(|_| {
            let stop = stop.clone();
            rt.spawn(move || {
                let mut worst = Duration::ZERO;
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    gopark::time::sleep(PERIOD);
                    let now = Instant::now();
                    worst = worst.max(now - last);
                    last = now;
                }
                worst
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (row_owned, file_owned) = (row.to_owned(), file.to_owned());
    let (took, result) = gopark::Builder::new()
        .name("work")
        .spawn_on(&rt, move || {
            let t = Instant::now();
            let r = work(&row_owned, &file_owned, port);
            (t.elapsed(), r)
        })
        .unwrap()
        .join()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let gaps: Vec<Duration> = sleepers.into_iter().map(|h| h.join().unwrap()).collect();
    let stalled = gaps.iter().filter(|&&g| g > STALLED).count();
    let worst = gaps.iter().max().unwrap();
    print!(
        "{row} workers={workers} stalled={stalled}/{SLEEPERS} worst_ms={:.1} work_ms={:.0}",
        worst.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e3
    );
    match result {
        Ok(()) => println!(),
        Err(e) => println!(" error={}", e.replace(' ', "_")),
    }
    drop(listener);
}

/// A name server that answers every query after `delay`: an A query with
/// 127.0.0.1, any other with no records (both "no error"). Each query is
/// answered from its own thread, so queries do not wait for each other.
fn slow_dns(addr: &str, delay: Duration) -> ! {
    let sock = Arc::new(UdpSocket::bind(addr).unwrap_or_else(|e| {
        eprintln!("stall dns: bind {addr}: {e}");
        std::process::exit(1)
    }));
    let mut buf = [0u8; 512];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let Some(reply) = dns_reply(&buf[..n]) else {
            continue;
        };
        let sock = sock.clone();
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let _ = sock.send_to(&reply, from);
        });
    }
}

/// The reply to a one-question DNS query (RFC 1035, section 4.1).
fn dns_reply(q: &[u8]) -> Option<Vec<u8>> {
    if q.len() < 12 || q[2] & 0x80 != 0 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    // The question: labels up to the root label, then type and class.
    let mut i = 12;
    while *q.get(i)? != 0 {
        i += 1 + q[i] as usize;
    }
    let end = i + 5;
    let qtype = u16::from_be_bytes([*q.get(i + 1)?, *q.get(i + 2)?]);
    q.get(end - 1)?;
    let a = qtype == 1;
    let mut r = Vec::with_capacity(end + 16);
    r.extend_from_slice(&q[..2]); // id
    r.extend_from_slice(&[0x81, 0x80]); // response, recursion desired and available
    r.extend_from_slice(&[0, 1, 0, u8::from(a), 0, 0, 0, 0]);
    r.extend_from_slice(&q[12..end]);
    if a {
        // Name (pointer to the question's), type A, class IN, TTL 0, 4 bytes.
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 127, 0, 0, 1]);
    }
    Some(r)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(row) = args.first() else { usage() };
    if row == "dns" {
        let (Some(addr), Some(ms)) = (args.get(1), args.get(2).and_then(|m| m.parse().ok())) else {
            usage()
        };
        slow_dns(addr, Duration::from_millis(ms));
    }
    let mut workers = 1;
    let mut file = "/tmp/gopark-stall-1g".to_owned();
    let mut rest = args[1..].iter();
    while let Some(a) = rest.next() {
        let v = rest.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--workers" => workers = v.parse().unwrap_or_else(|_| usage()),
            "--file" => file = v.clone(),
            _ => usage(),
        }
    }
    measure(row, workers, &file);
}
