//! Echo under load: 1,000 concurrent connections with random message sizes
//! up to 1 MiB, every echoed byte verified.

use std::io::{Read, Write};
use std::sync::Arc;

use gopark::net::{TcpListener, TcpStream};

mod common;

/// xorshift64: deterministic sizes and payloads.
fn rng(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn serve(l: TcpListener) {
    loop {
        let Ok((conn, _)) = l.accept() else { return };
        gopark::go!(move || {
            let mut buf = [0u8; 16 * 1024];
            let mut c = &conn;
            loop {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => c.write_all(&buf[..n]).unwrap(),
                }
            }
        });
    }
}

#[test]
fn thousand_connections_random_sizes_every_byte_verified() {
    const CONNS: u64 = 1000;
    common::raise_fd_limit(2 * CONNS + 100);
    // Sizes are log-uniform (1 B ..= 1 MiB); the total is capped so that a
    // debug build stays fast (about 40 MiB are expected).
    const TOTAL_CAP: usize = 96 << 20;
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let total = rt.run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        gopark::go!(serve(l));
        let mut next = rng(0x9E37_79B9_7F4A_7C15);
        let mut budget = TOTAL_CAP;
        let mut plans = Vec::new();
        for i in 0..CONNS {
            let mut sizes = Vec::new();
            for _ in 0..2 {
                // One message in ten may reach 1 MiB, the rest 64 KiB.
                let bits = if next() % 10 == 0 {
                    next() % 21
                } else {
                    next() % 17
                };
                let size = (((1u64 << bits) + next() % (1 << bits)) as usize).min(1 << 20);
                let size = size.min(budget.max(1));
                budget = budget.saturating_sub(size);
                sizes.push(size.max(1));
            }
            plans.push((i, sizes));
        }
        let hs: Vec<_> = plans
            .into_iter()
            .map(|(i, sizes)| {
                gopark::go!(move || {
                    let s = Arc::new(TcpStream::connect(addr).unwrap());
                    let mut total = 0usize;
                    for (k, &size) in sizes.iter().enumerate() {
                        let mut fill = rng(i * 7919 + k as u64 + 1);
                        let msg: Vec<u8> = (0..size).map(|_| fill() as u8).collect();
                        let msg = Arc::new(msg);
                        // Write from another coroutine while this one reads:
                        // a large message cannot fit in the socket buffers.
                        let w = {
                            let (s, msg) = (s.clone(), msg.clone());
                            gopark::go!(move || (&*s).write_all(&msg).unwrap())
                        };
                        let mut back = vec![0u8; size];
                        (&*s).read_exact(&mut back).unwrap();
                        w.join().unwrap();
                        assert!(back == *msg, "conn {i} message {k}: echo differs");
                        total += size;
                    }
                    s.shutdown(gopark::net::Shutdown::Write).unwrap();
                    assert_eq!(
                        (&*s).read(&mut [0u8; 1]).unwrap(),
                        0,
                        "EOF after half-close"
                    );
                    total
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
    });
    eprintln!("echoed {total} bytes");
    assert!(total > CONNS as usize);
}
