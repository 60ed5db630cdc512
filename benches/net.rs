//! TCP loopback ping-pong through one connection, both ends coroutines: on
//! one worker, on two workers wherever the scheduler puts them, and on two
//! workers with the ends on different workers (`_cross`: every message
//! wakes the other worker).
//!
//! Run with: `cargo bench --bench net`

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use gopark::net::{TcpListener, TcpStream};

/// Spawns `f` on another worker than the calling coroutine's.
fn spawn_elsewhere(f: impl FnOnce() + Send + 'static) -> gopark::JoinHandle<()> {
    let here = gopark::worker_index().expect("called from a coroutine");
    gopark::Builder::new().worker(here + 1).spawn(f).unwrap()
}

fn tcp_ping_pong(c: &mut Criterion) {
    for (workers, cross) in [(1usize, false), (2, false), (2, true)] {
        let rt = gopark::Runtime::builder().workers(workers).build().unwrap();
        let name = format!(
            "tcp_pingpong_64B_{workers}w{}",
            if cross { "_cross" } else { "" }
        );
        c.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                rt.run(move || {
                    let l = TcpListener::bind("127.0.0.1:0").unwrap();
                    let addr = l.local_addr().unwrap();
                    let serve = move || {
                        let (mut s, _) = l.accept().unwrap();
                        let mut buf = [0u8; 64];
                        loop {
                            match s.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => s.write_all(&buf[..n]).unwrap(),
                            }
                        }
                    };
                    let server = if cross {
                        spawn_elsewhere(serve)
                    } else {
                        gopark::spawn(serve)
                    };
                    let mut s = TcpStream::connect(addr).unwrap();
                    let msg = [7u8; 64];
                    let mut back = [0u8; 64];
                    let t = Instant::now();
                    for _ in 0..iters {
                        s.write_all(&msg).unwrap();
                        s.read_exact(&mut back).unwrap();
                    }
                    let e = t.elapsed();
                    drop(s);
                    server.join().unwrap();
                    e
                })
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = tcp_ping_pong
}
criterion_main!(benches);
