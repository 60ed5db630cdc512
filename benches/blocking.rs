//! The blocking pool's round trip: `gopark::blocking(|| ())` from a
//! coroutine (hand the job to a pool thread, park, be readied back).
//!
//! Run with: `cargo bench --bench blocking`

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};

fn blocking_round_trip(c: &mut Criterion) {
    for workers in [1, 2] {
        let rt = gopark::Runtime::builder().workers(workers).build().unwrap();
        c.bench_function(&format!("blocking_unit_round_trip_{workers}w"), |b| {
            b.iter_custom(|iters| {
                rt.run(move || {
                    let t = Instant::now();
                    for _ in 0..iters {
                        gopark::blocking(|| ());
                    }
                    t.elapsed()
                })
            })
        });
    }
}

fn spawn_blocking_join(c: &mut Criterion) {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    c.bench_function("spawn_blocking_join_unit_1w", |b| {
        b.iter_custom(|iters| {
            rt.run(move || {
                let t = Instant::now();
                for _ in 0..iters {
                    gopark::spawn_blocking(|| ()).join().unwrap();
                }
                t.elapsed()
            })
        })
    });
}

criterion_group!(benches, blocking_round_trip, spawn_blocking_join);
criterion_main!(benches);
