//! tokio's blocking pool round trip: `spawn_blocking(|| ()).await` from a
//! task on a worker of a multi-thread runtime with 1 and 2 workers, the
//! counterpart of gopark's `blocking_unit_round_trip_{1,2}w`.
//!
//! Run with: `cargo bench --manifest-path benches/tokio-blocking/Cargo.toml`

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};

fn spawn_blocking_round_trip(c: &mut Criterion) {
    for workers in [1, 2] {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .build()
            .unwrap();
        c.bench_function(
            &format!("tokio_spawn_blocking_unit_round_trip_{workers}w"),
            |b| {
                b.iter_custom(|iters| {
                    // On a worker, as gopark's caller is a coroutine.
                    rt.block_on(rt.spawn(async move {
                        let t = Instant::now();
                        for _ in 0..iters {
                            tokio::task::spawn_blocking(|| ()).await.unwrap();
                        }
                        t.elapsed()
                    }))
                    .unwrap()
                })
            },
        );
    }
}

criterion_group!(benches, spawn_blocking_round_trip);
criterion_main!(benches);
