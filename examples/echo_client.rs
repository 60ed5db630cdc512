//! A load client for echo servers, written with gopark: N connections send
//! a message, wait for the echo and check every byte, for a fixed time.
//!
//! Run with: `cargo run --release --example echo_client -- --addr 127.0.0.1:7000 --conns 50 --size 64 --secs 5`
//!
//! Prints requests per second and the latency percentiles p50, p99, p99.9
//! of the requests that completed (those of connections that failed later
//! included), then the failed connections, counted by kind of error. Exits
//! with an error if any connection failed.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use gopark::net::TcpStream;

struct Opts {
    addr: String,
    conns: usize,
    size: usize,
    secs: f64,
    workers: Option<usize>,
}

fn usage() -> ! {
    eprintln!(
        "usage: echo_client [--addr HOST:PORT] [--conns N] [--size BYTES] [--secs S] [--workers N]"
    );
    std::process::exit(2);
}

fn parse() -> Opts {
    let mut o = Opts {
        addr: "127.0.0.1:7000".to_owned(),
        conns: 50,
        size: 64,
        secs: 5.0,
        workers: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--addr" => o.addr = v,
            "--conns" => o.conns = v.parse().unwrap_or_else(|_| usage()),
            "--size" => o.size = v.parse().unwrap_or_else(|_| usage()),
            "--secs" => o.secs = v.parse().unwrap_or_else(|_| usage()),
            "--workers" => o.workers = Some(v.parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
    }
    if o.conns == 0 || o.size == 0 {
        usage();
    }
    o
}

/// One connection's run: request/response until `end`, pushing the
/// latency of each completed request (in ns) to `lat`.
fn client(
    addr: &str,
    size: usize,
    seed: usize,
    end: Instant,
    lat: &mut Vec<u32>,
) -> io::Result<()> {
    let mut s = TcpStream::connect(addr)?;
    let mut msg: Vec<u8> = (0..size).map(|i| (i * 31 + seed) as u8).collect();
    let mut back = vec![0u8; size];
    let mut round = 0u8;
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            return Ok(());
        }
        // Vary the payload so a stale or misrouted echo cannot pass.
        msg[0] = round;
        s.write_all(&msg)?;
        s.read_exact(&mut back)?;
        let dt = t0.elapsed();
        if back != msg {
            let at = back.iter().zip(&msg).position(|(a, b)| a != b).unwrap_or(0);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("echo mismatch at byte {at} of {size}"),
            ));
        }
        lat.push(u32::try_from(dt.as_nanos()).unwrap_or(u32::MAX));
        round = round.wrapping_add(1);
    }
}

fn pct(sorted: &[u32], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    Duration::from_nanos(u64::from(sorted[i]))
}

fn main() -> io::Result<()> {
    let o = parse();
    let mut b = gopark::Runtime::builder();
    if let Some(n) = o.workers {
        b = b.workers(n);
    }
    let rt = b.build()?;
    let (conns, size, secs, addr) = (o.conns, o.size, o.secs, o.addr.clone());
    let start = Instant::now();
    let results = rt.run(move || {
        let end = Instant::now() + Duration::from_secs_f64(secs);
        let hs: Vec<_> = (0..conns)
            .map(|i| {
                let addr = addr.clone();
                gopark::go!(move || {
                    let mut lat = Vec::with_capacity(1 << 16);
                    let r = client(&addr, size, i, end, &mut lat);
                    (lat, r)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("client coroutine panicked"))
            .collect::<Vec<_>>()
    });
    let wall = start.elapsed().as_secs_f64();
    let mut all = Vec::new();
    let mut failed = 0;
    // Failed connections by kind of error, with the first message seen.
    let mut errors: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for (lat, r) in results {
        all.extend(lat);
        if let Err(e) = r {
            failed += 1;
            let entry = errors
                .entry(format!("{:?}", e.kind()))
                .or_insert_with(|| (0, e.to_string()));
            entry.0 += 1;
        }
    }
    all.sort_unstable();
    let n = all.len();
    println!(
        "{} conns x {} B for {:.1} s: {} requests, {:.0} req/s, {} bytes verified",
        o.conns,
        o.size,
        wall,
        n,
        n as f64 / wall,
        n as u64 * o.size as u64
    );
    if n == 0 {
        println!("latency: no request completed");
    } else {
        println!(
            "latency p50 {:?}  p99 {:?}  p99.9 {:?}",
            pct(&all, 0.50),
            pct(&all, 0.99),
            pct(&all, 0.999)
        );
    }
    if failed > 0 {
        for (kind, (n, example)) in &errors {
            eprintln!("echo_client: {n} connections failed with {kind} (e.g. {example})");
        }
        eprintln!("echo_client: {failed} of {} connections failed", o.conns);
        std::process::exit(1);
    }
    Ok(())
}
