//! Placement benchmarks (not tests), each on a 1-worker and a 2-worker
//! runtime, run interleaved (1w, 2w, 1w, 2w, ...) so that both see the same
//! machine load. Each prints every round, then the medians, min-max spreads,
//! the 1w/2w ratio, and how the last 2-worker round split the coroutines
//! between the workers.
//!
//! - `64_cpu_bound_from_thread`: 64 CPU-bound coroutines spawned from a
//!   plain thread, wall time from the first spawn to the last join.
//! - `accept_50_cpu_bound`: 50 connections opened at once against one
//!   accept loop; each handler computes as much as one coroutine above, then
//!   answers; wall time from the first connect to the last answer.
//!
//! Each coroutine runs the same fixed arithmetic loop (ITERS iterations,
//! about 3 ms here at the default), so the ideal 2-worker wall time is half
//! the 1-worker one. Before each round the workers have been idle for
//! 50 ms (asleep), the start a real burst of spawns finds.
//!
//! Run with: `cargo bench --bench place [-- ROUNDS [ITERS]]`

use std::time::{Duration, Instant};

const COROUTINES: usize = 64;

fn work(iters: u64) -> u64 {
    let mut x = 1u64;
    for _ in 0..iters {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x ^= x >> 29;
    }
    x
}

/// The index of the worker thread this runs on, from its name
/// (`gopark-worker-N`).
fn worker_of_thread() -> usize {
    let t = std::thread::current();
    let name = t.name().unwrap_or_default();
    name.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// One round: wall time and the number of coroutines each worker ran.
fn round(rt: &gopark::Runtime, iters: u64) -> (Duration, Vec<usize>) {
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    let hs: Vec<_> = (0..COROUTINES)
        .map(|_| {
            rt.spawn(move || {
                std::hint::black_box(work(std::hint::black_box(iters)));
                worker_of_thread()
            })
        })
        .collect();
    let mut split = vec![0; rt.workers()];
    for h in hs {
        split[h.join().unwrap()] += 1;
    }
    (t.elapsed(), split)
}

/// One round of the accept-loop shape.
fn accept_round(rt: &gopark::Runtime, iters: u64) -> (Duration, Vec<usize>) {
    use std::io::{Read, Write};
    const CONNS: usize = 50;
    std::thread::sleep(Duration::from_millis(50));
    let l = gopark::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let acceptor = rt.spawn(move || {
        let hs: Vec<_> = (0..CONNS)
            .map(|_| {
                let (conn, _) = l.accept().unwrap();
                gopark::spawn(move || {
                    let mut c = &conn;
                    let mut b = [0u8; 1];
                    c.read_exact(&mut b).unwrap();
                    std::hint::black_box(work(std::hint::black_box(iters)));
                    c.write_all(&b).unwrap();
                    worker_of_thread()
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let t = Instant::now();
    let mut clients: Vec<_> = (0..CONNS)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    for c in &mut clients {
        c.write_all(b"x").unwrap();
    }
    for c in &mut clients {
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
    }
    let wall = t.elapsed();
    let mut split = vec![0; rt.workers()];
    for w in acceptor.join().unwrap() {
        split[w] += 1;
    }
    (wall, split)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`)
    // run a single quick round as a smoke test.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench = args.iter().any(|a| a == "--bench");
    let nums: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let rounds = nums.first().copied().unwrap_or(if bench { 21 } else { 1 }) as usize;
    let iters = nums
        .get(1)
        .copied()
        .unwrap_or(if bench { 400_000 } else { 1000 });

    let rt1 = gopark::Runtime::builder().workers(1).build().unwrap();
    let rt2 = gopark::Runtime::builder().workers(2).build().unwrap();
    type Round = fn(&gopark::Runtime, u64) -> (Duration, Vec<usize>);
    let shapes: [(&str, Round); 2] = [
        ("64_cpu_bound_from_thread", round),
        ("accept_50_cpu_bound", accept_round),
    ];
    for (name, f) in shapes {
        let (mut w1, mut w2) = (Vec::new(), Vec::new());
        let mut last_split = Vec::new();
        for r in 0..rounds {
            let (a, _) = f(&rt1, iters);
            let (b, split) = f(&rt2, iters);
            let (a, b) = (a.as_secs_f64() * 1e3, b.as_secs_f64() * 1e3);
            println!("{name} round {r:2}: 1w {a:7.1} ms   2w {b:7.1} ms   2w split {split:?}");
            w1.push(a);
            w2.push(b);
            last_split = split;
        }
        let (m1, m2) = (median(&mut w1), median(&mut w2));
        println!(
            "place/{name}: 1w median {m1:.1} ms (min {:.1}, max {:.1}); \
             2w median {m2:.1} ms (min {:.1}, max {:.1}); 1w/2w {:.2}; last 2w split {last_split:?}",
            w1[0],
            w1[w1.len() - 1],
            w2[0],
            w2[w2.len() - 1],
            m1 / m2
        );
    }
}
