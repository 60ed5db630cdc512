//! An idle runtime burns no CPU: 10,000 coroutines parked in reads on the
//! netpoller cost (almost) nothing over a second of wall time.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopark::net::unix::UnixStream;

mod common;
use common::process_cpu;

#[test]
fn ten_thousand_parked_readers_use_no_cpu() {
    const PAIRS: usize = 5_000; // both ends read: 10,000 parked readers
    common::raise_fd_limit(2 * PAIRS as u64 + 100);
    let rt = gopark::Runtime::builder()
        .workers(2)
        .stack_size(32 * 1024)
        .build()
        .unwrap();
    let parked = Arc::new(AtomicUsize::new(0));
    let mut socks = Vec::new();
    for _ in 0..PAIRS {
        let (a, b) = UnixStream::pair().unwrap();
        socks.push(Arc::new(a));
        socks.push(Arc::new(b));
    }
    let handles: Vec<_> = socks
        .iter()
        .map(|s| {
            let (s, parked) = (s.clone(), parked.clone());
            rt.spawn(move || {
                parked.fetch_add(1, Ordering::SeqCst);
                // Woken by its own close (error) or its peer's (EOF).
                let r = (&*s).read(&mut [0u8; 16]);
                assert!(matches!(r, Err(_) | Ok(0)), "{r:?}");
            })
        })
        .collect();
    let t = Instant::now();
    while parked.load(Ordering::SeqCst) < 2 * PAIRS {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "coroutines did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300)); // let them all park
    let (c0, w0) = (process_cpu(), Instant::now());
    std::thread::sleep(Duration::from_secs(1));
    let (cpu, wall) = (process_cpu() - c0, w0.elapsed());
    eprintln!(
        "idle: {cpu:?} CPU over {wall:?} with {} parked readers",
        2 * PAIRS
    );
    assert!(
        cpu < Duration::from_millis(50),
        "idle runtime used {cpu:?} of CPU"
    );
    for s in &socks {
        s.close().unwrap();
    }
    for h in handles {
        h.join().unwrap();
    }
}
