//! Core micro-benchmarks: spawn+join, yield round trip, sleep storm, the
//! dump of 100,000 parked coroutines.
//!
//! Run with: `cargo bench --bench core`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

fn spawn_join(c: &mut Criterion) {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    c.bench_function("spawn_join_empty_warm", |b| {
        b.iter_custom(|iters| {
            rt.run(move || {
                let t = Instant::now();
                for _ in 0..iters {
                    gopark::spawn(|| ()).join().unwrap();
                }
                t.elapsed()
            })
        })
    });
}

/// The same on 2 workers: whether a child joined at once by its parent
/// starts on the parent's worker (no wake-up, no hand-off) or elsewhere.
fn spawn_join_2w(c: &mut Criterion) {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    c.bench_function("spawn_join_empty_warm_2w", |b| {
        b.iter_custom(|iters| {
            rt.run(move || {
                let t = Instant::now();
                for _ in 0..iters {
                    gopark::spawn(|| ()).join().unwrap();
                }
                t.elapsed()
            })
        })
    });
}

/// Go's `gobench spawn` shape: spawn N empty coroutines from one coroutine,
/// then wait for all of them; time per coroutine.
fn spawn_wait_all(c: &mut Criterion) {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    c.bench_function("spawn_then_wait_all_2w", |b| {
        b.iter_custom(|iters| {
            rt.run(move || {
                let t = Instant::now();
                let hs: Vec<_> = (0..iters).map(|_| gopark::spawn(|| ())).collect();
                for h in hs {
                    h.join().unwrap();
                }
                t.elapsed()
            })
        })
    });
}

fn yield_round_trip(c: &mut Criterion) {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    c.bench_function("yield_two_coroutines", |b| {
        b.iter_custom(|iters| {
            rt.run(move || {
                let other = gopark::spawn(move || {
                    for _ in 0..iters {
                        gopark::yield_now();
                    }
                });
                let t = Instant::now();
                for _ in 0..iters {
                    gopark::yield_now();
                }
                let e = t.elapsed();
                other.join().unwrap();
                // Each iteration is one yield by each coroutine: report per yield.
                e / 2
            })
        })
    });
}

fn sleep_storm(c: &mut Criterion) {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let mut g = c.benchmark_group("sleep");
    g.sample_size(10);
    g.bench_function("100k_x_1ms_wall", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += rt.run(|| {
                    let t = Instant::now();
                    let hs: Vec<_> = (0..100_000)
                        .map(|_| gopark::spawn(|| gopark::time::sleep(Duration::from_millis(1))))
                        .collect();
                    for h in hs {
                        h.join().unwrap();
                    }
                    t.elapsed()
                });
            }
            total
        })
    });
    g.finish();
}

/// One 100 us sleep on a single worker, which waits for its timer in
/// `epoll_wait`: measures the poller's timeout resolution (whole
/// milliseconds with `epoll_pwait`, nanoseconds with `epoll_pwait2`).
fn short_sleep(c: &mut Criterion) {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let mut g = c.benchmark_group("sleep");
    g.bench_function("100us_1w", |b| {
        b.iter_custom(|iters| {
            rt.run(move || {
                let t = Instant::now();
                for _ in 0..iters {
                    gopark::time::sleep(Duration::from_micros(100));
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

/// `Runtime::dump` (text) and `Runtime::coroutines` (records) of 100,000
/// named coroutines parked on a channel receive, on 2 workers.
fn dump_100k(c: &mut Criterion) {
    const N: usize = 100_000;
    // The sender is this plain thread: the coroutines wait on purpose, and
    // the deadlock report would print all 100,000 after a second.
    let rt = gopark::Runtime::builder()
        .workers(2)
        .deadlock_report(false)
        .build()
        .unwrap();
    let (tx, rx) = gopark::chan::bounded::<()>(0);
    let hs: Vec<_> = (0..N)
        .map(|i| {
            let rx = rx.clone();
            gopark::Builder::new()
                .name(format!("conn-{i}"))
                .spawn_on(&rt, move || {
                    let _ = rx.recv();
                })
                .unwrap()
        })
        .collect();
    let parked = || {
        rt.coroutines()
            .iter()
            .filter(|c| c.state() == gopark::CoroutineState::ChanReceive)
            .count()
    };
    while parked() < N {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut g = c.benchmark_group("dump");
    g.sample_size(10);
    g.bench_function("100k_parked_text", |b| b.iter(|| rt.dump().len()));
    g.bench_function("100k_parked_records", |b| b.iter(|| rt.coroutines().len()));
    g.finish();
    drop(tx);
    for h in hs {
        h.join().unwrap();
    }
}

criterion_group!(
    benches,
    spawn_join,
    spawn_join_2w,
    spawn_wait_all,
    yield_round_trip,
    sleep_storm,
    short_sleep,
    dump_100k
);
criterion_main!(benches);
