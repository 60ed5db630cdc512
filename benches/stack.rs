//! Stack allocator benchmarks through the public API: spawn + join of an
//! empty coroutine, with the stack coming from a warm pool.
//!
//! Run with: `cargo bench --bench stack`
//!
//! - `spawn_join_warm`: spawn then join, one at a time, from a coroutine on a
//!   one-worker runtime: the stack freed by each coroutine is the next one
//!   allocated (thread-local pool hit, no lock, no syscall).
//! - `spawn_join_batch_1000`: 1000 spawned, then 1000 joined (per coroutine):
//!   more stacks than a thread's pool keeps, so stacks spill to and refill
//!   from the global pool.
//! - `spawn_join_from_thread`: spawned from a plain thread, joined there: the
//!   stack is allocated on the thread and freed on the worker, so stacks
//!   travel between pools through the global pool.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};

fn spawn_join(c: &mut Criterion) {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let mut g = c.benchmark_group("stack");
    g.bench_function("spawn_join_warm", |b| {
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
    g.bench_function("spawn_join_batch_1000", |b| {
        b.iter_custom(|iters| {
            rt.run(move || {
                // Whole rounds of 1000; the time is scaled back to `iters`.
                let rounds = iters.div_ceil(1000);
                let mut hs = Vec::with_capacity(1000);
                let t = Instant::now();
                for _ in 0..rounds {
                    hs.extend((0..1000).map(|_| gopark::spawn(|| ())));
                    hs.drain(..).for_each(|h| h.join().unwrap());
                }
                t.elapsed().mul_f64(iters as f64 / (rounds * 1000) as f64)
            })
        })
    });
    let rt2 = gopark::Runtime::builder().workers(2).build().unwrap();
    g.bench_function("spawn_join_from_thread", |b| {
        b.iter(|| rt2.spawn(|| ()).join().unwrap())
    });
    g.finish();
}

criterion_group!(benches, spawn_join);
criterion_main!(benches);
