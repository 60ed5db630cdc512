//! The sharded poller: a socket whose two directions are used by coroutines
//! of two different workers, and a worker busy with one coroutine does not
//! stall the connections of the other worker.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use gopark::net::{TcpListener, TcpStream};

/// Spawns `f` on a worker other than the calling coroutine's (2 workers),
/// with explicit placement, and checks that it runs there.
fn spawn_elsewhere<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> gopark::JoinHandle<T> {
    let here = thread::current().id();
    let other = 1 - gopark::worker_index().expect("called from a coroutine");
    gopark::Builder::new()
        .worker(other)
        .spawn(move || {
            assert_ne!(
                thread::current().id(),
                here,
                "placed on the spawner's worker"
            );
            assert_eq!(gopark::worker_index(), Some(other));
            f()
        })
        .unwrap()
}

const LEN: usize = 4 << 20;

fn pattern(seed: u8, i: usize) -> u8 {
    (i as u32)
        .wrapping_mul(2_654_435_761)
        .wrapping_add(seed as u32) as u8
        ^ (i >> 13) as u8
}

fn send(mut s: &TcpStream, seed: u8) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0;
    while off < LEN {
        let n = buf.len().min(LEN - off);
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern(seed, off + k);
        }
        s.write_all(&buf[..n]).unwrap();
        off += n;
    }
}

fn receive(mut s: &TcpStream, seed: u8) {
    let mut buf = vec![0u8; 48 * 1024];
    let mut off = 0;
    while off < LEN {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "EOF after {off} bytes");
        for (k, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b, pattern(seed, off + k), "byte {}", off + k);
        }
        off += n;
    }
}

/// Each end of a TCP connection is read by a coroutine of one worker and
/// written by a coroutine of the other (so each descriptor is waited on
/// from both workers' poller shards); 4 MiB go each way, verified.
#[test]
fn socket_read_on_one_worker_and_written_on_the_other() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    for _ in 0..3 {
        rt.run(|| {
            let x = thread::current().id();
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, _) = l.accept().unwrap();
            let (c, s) = (Arc::new(c), Arc::new(s));
            // c: read here (worker X), written on worker Y.
            // s: read on worker Y, written here (worker X) by a coroutine
            //    that Y places back on X.
            let on_y = {
                let (c, s) = (c.clone(), s.clone());
                spawn_elsewhere(move || {
                    let y = thread::current().id();
                    let writer_s = {
                        let s = s.clone();
                        spawn_elsewhere(move || -> ThreadId {
                            send(&s, 2);
                            thread::current().id()
                        })
                    };
                    let reader_s = gopark::spawn(move || receive(&s, 1));
                    send(&c, 1);
                    reader_s.join().unwrap();
                    (y, writer_s.join().unwrap())
                })
            };
            receive(&c, 2);
            let (y, writer_s) = on_y.join().unwrap();
            assert_ne!(x, y);
            assert_eq!(writer_s, x, "with two workers, elsewhere of Y is X");
        });
    }
}

/// One coroutine keeps worker A busy in 300 ms CPU loops (with short
/// sleeps between them, so A also wakes from timers, and may have been the
/// one blocked in the poller) while a plain-thread
/// client talks to a handler living on worker B: every request is answered
/// well within a loop's length.
#[test]
fn a_busy_worker_does_not_stall_the_other_workers_connections() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let l = rt.run(|| TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = l.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            let mut worst = Duration::ZERO;
            let mut n = 0u64;
            let mut buf = [0u8; 32];
            while !stop.load(Ordering::SeqCst) {
                let t = Instant::now();
                s.write_all(&[n as u8; 32]).unwrap();
                s.read_exact(&mut buf).unwrap();
                assert_eq!(buf, [n as u8; 32]);
                worst = worst.max(t.elapsed());
                n += 1;
                thread::sleep(Duration::from_millis(1));
            }
            (worst, n)
        })
    };
    let hog = rt.spawn(move || {
        // The handler lives on the other worker; this one hogs.
        let handler = spawn_elsewhere(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 32];
            while s.read_exact(&mut buf).is_ok() {
                if s.write_all(&buf).is_err() {
                    break;
                }
            }
        });
        for _ in 0..5 {
            gopark::time::sleep(Duration::from_millis(30));
            let t = Instant::now();
            let mut x = 0u64;
            while t.elapsed() < Duration::from_millis(300) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        handler
    });
    let handler = hog.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    let (worst, n) = client.join().unwrap();
    eprintln!("{n} requests, worst {worst:?}");
    assert!(n > 10, "only {n} requests");
    assert!(
        worst < Duration::from_millis(100),
        "a request took {worst:?} while another worker was busy"
    );
    handler.join().unwrap();
}
