//! Channel and lock micro-benchmarks.
//!
//! Run with: `cargo bench --bench chan_sync`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gopark::chan;

/// Round trips over two rendezvous channels between two coroutines on one
/// worker (Go's pingpong with GOMAXPROCS=1 shape; the cost per round trip).
fn ping_pong(c: &mut Criterion) {
    for workers in [1usize, 2] {
        let rt = gopark::Runtime::builder().workers(workers).build().unwrap();
        c.bench_function(&format!("pingpong_rendezvous_{workers}w"), |b| {
            b.iter_custom(|iters| rt.run(move || round_trips(iters, false)))
        });
    }
}

/// The ping-pong above with its two ends on different workers: every
/// message readies a coroutine of the other worker (a hand-off through its
/// inbox, and a wake-up when that worker sleeps).
fn ping_pong_cross(c: &mut Criterion) {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    c.bench_function("pingpong_rendezvous_2w_cross", |b| {
        b.iter_custom(|iters| rt.run(move || round_trips(iters, true)))
    });
}

/// `iters` round trips with an echoing coroutine, spawned where the
/// scheduler puts it or (`elsewhere`) on the next worker; their time.
fn round_trips(iters: u64, elsewhere: bool) -> Duration {
    let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
    let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
    let mut builder = gopark::Builder::new();
    if elsewhere {
        builder = builder.worker(gopark::worker_index().expect("in a coroutine") + 1);
    }
    let echo = builder
        .spawn(move || {
            for v in ping_rx.iter() {
                pong_tx.send(v + 1).unwrap();
            }
        })
        .unwrap();
    let t = Instant::now();
    let mut v = 0;
    for _ in 0..iters {
        ping_tx.send(v).unwrap();
        v = pong_rx.recv().unwrap();
    }
    let e = t.elapsed();
    assert_eq!(v, iters);
    drop(ping_tx);
    echo.join().unwrap();
    e
}

/// The ping-pong above on one worker, with the reply awaited by
/// `recv_timeout(1 h)`: every round trip is a timed wait that a sender ends
/// long before its deadline (its timer is armed, then cancelled).
fn ping_pong_recv_timeout(c: &mut Criterion) {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    c.bench_function("pingpong_recv_timeout_1w", |b| {
        b.iter_custom(|iters| {
            rt.run(move || {
                let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
                let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
                let echo = gopark::spawn(move || {
                    for v in ping_rx.iter() {
                        pong_tx.send(v + 1).unwrap();
                    }
                });
                let t = Instant::now();
                let mut v = 0;
                for _ in 0..iters {
                    ping_tx.send(v).unwrap();
                    v = pong_rx.recv_timeout(Duration::from_secs(3600)).unwrap();
                }
                let e = t.elapsed();
                assert_eq!(v, iters);
                drop(ping_tx);
                echo.join().unwrap();
                e
            })
        })
    });
}

/// Messages through a buffered channel (capacity 128), P producers and
/// P consumers on a 2-worker runtime; time per message.
fn buffered(c: &mut Criterion) {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let mut g = c.benchmark_group("buffered_chan");
    g.throughput(Throughput::Elements(1));
    for p in [1usize, 4] {
        g.bench_function(format!("{p}p{p}c"), |b| {
            b.iter_custom(|iters| {
                rt.run(move || {
                    let (tx, rx) = chan::bounded::<u64>(128);
                    let per = iters.div_ceil(p as u64);
                    let t = Instant::now();
                    let prods: Vec<_> = (0..p)
                        .map(|_| {
                            let tx = tx.clone();
                            gopark::spawn(move || {
                                for i in 0..per {
                                    tx.send(i).unwrap();
                                }
                            })
                        })
                        .collect();
                    drop(tx);
                    let cons: Vec<_> = (0..p)
                        .map(|_| {
                            let rx = rx.clone();
                            gopark::spawn(move || rx.iter().count() as u64)
                        })
                        .collect();
                    for h in prods {
                        h.join().unwrap();
                    }
                    let got: u64 = cons.into_iter().map(|h| h.join().unwrap()).sum();
                    assert_eq!(got, per * p as u64);
                    t.elapsed().mul_f64(iters as f64 / (per * p as u64) as f64)
                })
            })
        });
    }
    g.finish();
}

/// 8 coroutines on 2 workers increment a counter under one gopark Mutex,
/// yielding while holding it every 16th time; time per lock/unlock.
fn mutex_contention(c: &mut Criterion) {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    c.bench_function("mutex_8_coroutines_2w", |b| {
        b.iter_custom(|iters| {
            rt.run(move || {
                let m = std::sync::Arc::new(gopark::sync::Mutex::new(0u64));
                let per = iters.div_ceil(8);
                let t = Instant::now();
                let hs: Vec<_> = (0..8)
                    .map(|_| {
                        let m = m.clone();
                        gopark::spawn(move || {
                            for i in 0..per {
                                let mut g = m.lock();
                                *g += 1;
                                if i % 16 == 0 {
                                    gopark::yield_now();
                                }
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
                assert_eq!(*m.lock(), per * 8);
                t.elapsed().mul_f64(iters as f64 / (per * 8) as f64)
            })
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = ping_pong, ping_pong_cross, ping_pong_recv_timeout, buffered, mutex_contention
}
criterion_main!(benches);
