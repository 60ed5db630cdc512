//! The cooperative budget: a coroutine reading a TCP socket that a plain
//! thread keeps full, alone and beside a 1 ms sleeper on the same (single)
//! worker. Prints the reader's throughput and the sleeper's wake-ups and
//! worst gap between them, one line per round. The throughput is given per
//! second of wall time and per second of the worker thread's CPU time; the
//! second is the steadier figure on a loaded machine, where the process is
//! descheduled now and then.
//!
//! Run with: `cargo bench --bench coop [-- ROUNDS]`

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUN: Duration = Duration::from_secs(1);
const READ: usize = 1024;

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that outlives the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// ((MB/s read, MB per CPU-second of the worker), sleeper wake-ups,
/// sleeper's worst gap).
fn round(sleeper: bool) -> ((f64, f64), u64, Duration) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let buf = [7u8; 64 * 1024];
            while !done.load(Ordering::Relaxed) && s.write_all(&buf).is_ok() {}
        })
    };
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let r = rt.run(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let worst = Arc::new(AtomicU64::new(0));
        let wakes = Arc::new(AtomicU64::new(0));
        let sl = sleeper.then(|| {
            let (stop, worst, wakes) = (stop.clone(), worst.clone(), wakes.clone());
            gopark::spawn(move || {
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    gopark::time::sleep(Duration::from_millis(1));
                    let now = Instant::now();
                    worst.fetch_max(
                        now.duration_since(last).as_nanos() as u64,
                        Ordering::Relaxed,
                    );
                    wakes.fetch_add(1, Ordering::Relaxed);
                    last = now;
                }
            })
        });
        let bytes = gopark::spawn(move || {
            let mut s = gopark::net::TcpStream::connect(addr).unwrap();
            gopark::time::sleep(Duration::from_millis(50));
            let mut buf = [0u8; READ];
            let mut n = 0u64;
            let (t0, c0) = (Instant::now(), thread_cpu());
            while t0.elapsed() < RUN {
                n += s.read(&mut buf).unwrap() as u64;
            }
            // The worker's CPU time: the reader's, and the sleeper's if any.
            let (wall, cpu) = (t0.elapsed(), thread_cpu() - c0);
            (
                n as f64 / wall.as_secs_f64() / 1e6,
                n as f64 / cpu.as_secs_f64() / 1e6,
            )
        })
        .join()
        .unwrap();
        stop.store(true, Ordering::Relaxed);
        if let Some(h) = sl {
            h.join().unwrap();
        }
        (
            bytes,
            wakes.load(Ordering::Relaxed),
            Duration::from_nanos(worst.load(Ordering::Relaxed)),
        )
    });
    done.store(true, Ordering::Relaxed);
    drop(rt);
    writer.join().unwrap();
    r
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    for _ in 0..rounds {
        let (alone, _, _) = round(false);
        let (beside, wakes, worst) = round(true);
        println!(
            "reader alone {:.0} MB/s ({:.0} MB/cpu-s); beside sleeper {:.0} MB/s ({:.0} MB/cpu-s), \
             sleeper {wakes} wake-ups, worst gap {:.2} ms",
            alone.0,
            alone.1,
            beside.0,
            beside.1,
            worst.as_secs_f64() * 1e3
        );
    }
}
