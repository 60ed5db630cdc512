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

/// A file read in 16 KiB chunks through `gopark::fs::File` (each read is a
/// round trip to the blocking pool), 1 worker; time per chunk. The file
/// (4 MiB) is in the page cache after the first pass.
fn fs_read_chunks(c: &mut Criterion) {
    use std::io::{Read, Seek, SeekFrom};
    let path = std::env::temp_dir().join(format!("gopark-bench-fs-{}", std::process::id()));
    std::fs::write(&path, vec![7u8; 4 << 20]).unwrap();
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let p = path.clone();
    let f = std::sync::Arc::new(rt.run(move || gopark::fs::File::open(&p)).unwrap());
    c.bench_function("fs_read_16KiB_chunks_1w", |b| {
        b.iter_custom(|iters| {
            let f = f.clone();
            rt.run(move || {
                let mut buf = vec![0u8; 16 << 10];
                let t = Instant::now();
                for _ in 0..iters {
                    if (&*f).read(&mut buf).unwrap() == 0 {
                        (&*f).seek(SeekFrom::Start(0)).unwrap();
                    }
                }
                t.elapsed()
            })
        })
    });
    drop(f);
    let _ = std::fs::remove_file(&path);
}

criterion_group!(
    benches,
    blocking_round_trip,
    spawn_blocking_join,
    fs_read_chunks
);
criterion_main!(benches);
