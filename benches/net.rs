//! TCP loopback ping-pong through one connection, both ends coroutines.
//!
//! Run with: `cargo bench --bench net`

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use gopark::net::{TcpListener, TcpStream};

fn tcp_ping_pong(c: &mut Criterion) {
    for workers in [1usize, 2] {
        let rt = gopark::Runtime::builder().workers(workers).build().unwrap();
        c.bench_function(&format!("tcp_pingpong_64B_{workers}w"), |b| {
            b.iter_custom(|iters| {
                rt.run(move || {
                    let l = TcpListener::bind("127.0.0.1:0").unwrap();
                    let addr = l.local_addr().unwrap();
                    let server = gopark::spawn(move || {
                        let (mut s, _) = l.accept().unwrap();
                        let mut buf = [0u8; 64];
                        loop {
                            match s.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => s.write_all(&buf[..n]).unwrap(),
                            }
                        }
                    });
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
