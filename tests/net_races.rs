//! The four pollDesc races (see `sm::poll_desc`), each provoked for many
//! rounds, plus fdMutex queuing of concurrent readers and writers.
//!
//! The races: (1) readiness before the park; (2) readiness between WAIT and
//! the commit; (3) timeout or close between WAIT and the commit; (4)
//! readiness and a deadline racing for one parked coroutine.
//!
//! A lost wake-up fails the test through the read timeout that backs up
//! every read; a double wake-up panics in the runtime.

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopark::net::unix::UnixStream;
use gopark::net::{TcpListener, TcpStream};

fn rt() -> gopark::Runtime {
    gopark::Runtime::builder().workers(2).build().unwrap()
}

/// Backstop: a read that waits this long lost its wake-up.
const LOST: Duration = Duration::from_secs(20);

#[test]
fn race1_readiness_before_park() {
    rt().run(|| {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(LOST)).unwrap();
        for i in 0..2000u32 {
            // The data is there before the reader even tries: its READY
            // must be consumed, not slept through.
            (&b).write_all(&i.to_le_bytes()).unwrap();
            let mut buf = [0u8; 4];
            (&a).read_exact(&mut buf).unwrap();
            assert_eq!(u32::from_le_bytes(buf), i);
        }
    });
}

#[test]
fn race2_readiness_racing_the_park_ping_pong_across_workers() {
    // Two coroutines on different workers bounce a counter: each reply
    // arrives while the other side is between "EAGAIN" and "parked".
    let rt = rt();
    let (a, b) = rt.run(|| UnixStream::pair().unwrap());
    let (a, b) = (Arc::new(a), Arc::new(b));
    let rounds = 20_000u32;
    let hs: Vec<_> = [(a, true), (b, false)]
        .into_iter()
        .map(|(s, first)| {
            rt.spawn(move || {
                s.set_read_timeout(Some(LOST)).unwrap();
                let mut buf = [0u8; 4];
                if first {
                    (&*s).write_all(&0u32.to_le_bytes()).unwrap();
                }
                loop {
                    (&*s).read_exact(&mut buf).unwrap();
                    let v = u32::from_le_bytes(buf);
                    if v >= rounds {
                        return v;
                    }
                    (&*s).write_all(&(v + 1).to_le_bytes()).unwrap();
                    if v + 1 >= rounds {
                        return v + 1;
                    }
                }
            })
        })
        .collect();
    for h in hs {
        assert!(h.join().unwrap() >= rounds);
    }
}

#[test]
fn race2_plain_thread_writer_races_parking_reader() {
    let rt = rt();
    let (a, b) = rt.run(|| UnixStream::pair().unwrap());
    let n = 20_000u32;
    let reader = rt.spawn(move || {
        a.set_read_timeout(Some(LOST)).unwrap();
        let mut buf = [0u8; 4];
        for i in 0..n {
            (&a).read_exact(&mut buf).unwrap();
            assert_eq!(u32::from_le_bytes(buf), i);
        }
    });
    for i in 0..n {
        (&b).write_all(&i.to_le_bytes()).unwrap();
        if i % 64 == 0 {
            std::thread::yield_now();
        }
    }
    reader.join().unwrap();
}

#[test]
fn race3_deadline_and_close_racing_the_park() {
    let rt = rt();
    rt.run(|| {
        for round in 0..500u32 {
            let (a, _b) = UnixStream::pair().unwrap();
            let a = Arc::new(a);
            let r = {
                let a = a.clone();
                gopark::go!(move || (&*a).read(&mut [0u8; 1]).unwrap_err())
            };
            // Hit the reader somewhere between its start and its park:
            // spin a little, varying the delay from round to round.
            for _ in 0..(round % 7) * 50 {
                std::hint::spin_loop();
            }
            if round % 2 == 0 {
                a.set_read_deadline(Some(Instant::now())).unwrap();
                assert_eq!(r.join().unwrap().kind(), ErrorKind::TimedOut);
            } else {
                a.close().unwrap();
                assert_eq!(r.join().unwrap().kind(), ErrorKind::NotConnected);
            }
        }
    });
}

#[test]
fn race3_from_another_worker_thread() {
    let rt = rt();
    let done = Arc::new(AtomicUsize::new(0));
    for round in 0..300u32 {
        let (a, _b) = rt.run(|| UnixStream::pair().unwrap());
        let a = Arc::new(a);
        let r = {
            let a = a.clone();
            rt.spawn(move || (&*a).read(&mut [0u8; 1]).unwrap_err().kind())
        };
        if round % 3 == 0 {
            std::thread::yield_now();
        }
        a.set_read_deadline(Some(Instant::now())).unwrap();
        assert_eq!(r.join().unwrap(), ErrorKind::TimedOut);
        done.fetch_add(1, Ordering::Relaxed);
    }
    assert_eq!(done.load(Ordering::Relaxed), 300);
}

#[test]
fn race4_readiness_and_deadline_race_for_one_parked_reader() {
    rt().run(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let (a, b) = (Arc::new(a), Arc::new(b));
        let (mut data, mut timeouts) = (0, 0);
        for round in 0..300u32 {
            // The deadline and the data land at about the same time.
            a.set_read_deadline(Some(Instant::now() + Duration::from_micros(300)))
                .unwrap();
            let w = {
                let b = b.clone();
                gopark::go!(move || {
                    gopark::time::sleep(Duration::from_micros(u64::from(round % 5) * 100));
                    (&*b).write_all(&[1]).unwrap();
                })
            };
            match (&*a).read(&mut [0u8; 1]) {
                Ok(1) => data += 1,
                Err(e) if e.kind() == ErrorKind::TimedOut => {
                    timeouts += 1;
                    a.set_read_deadline(None).unwrap();
                    // The byte still comes: the lost race lost no data.
                    let mut one = [0u8; 1];
                    (&*a).read_exact(&mut one).unwrap();
                }
                r => panic!("unexpected {r:?}"),
            }
            w.join().unwrap();
        }
        assert_eq!(data + timeouts, 300);
    });
}

#[test]
fn concurrent_readers_and_writers_queue_never_double_wait() {
    rt().run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = Arc::new(TcpStream::connect(l.local_addr().unwrap()).unwrap());
        let s = Arc::new(l.accept().unwrap().0);
        const WRITERS: usize = 8;
        const PER: usize = 500;
        const MSG: usize = 64;
        // Eight writers share one stream, eight readers share the other:
        // all but one of each queue on the fdMutex.
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let c = c.clone();
                gopark::go!(move || {
                    for _ in 0..PER {
                        (&*c).write_all(&[w as u8; MSG]).unwrap();
                    }
                })
            })
            .collect();
        let total = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let (s, total) = (s.clone(), total.clone());
                gopark::go!(move || {
                    let mut buf = [0u8; 1000];
                    let mut mine = 0;
                    loop {
                        match (&*s).read(&mut buf) {
                            Ok(0) => return mine,
                            Ok(n) => {
                                mine += n;
                                total.fetch_add(n, Ordering::Relaxed);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        c.shutdown(gopark::net::Shutdown::Write).unwrap();
        let sum: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert_eq!(sum, WRITERS * PER * MSG);
        assert_eq!(total.load(Ordering::Relaxed), sum);
    });
}

/// Go's `Write`: concurrent `write_all`s on one stream never interleave,
/// whichever worker each writer runs on, even when the send buffer fills
/// and each writer parks many times within its call. Every writer sends one
/// 4 MiB block of its own byte; the reader sees whole blocks.
#[test]
fn concurrent_write_alls_do_not_interleave() {
    const BLOCK: usize = 4 << 20;
    const WRITERS: u8 = 4;
    rt().run(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let a = Arc::new(a);
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let a = a.clone();
                gopark::go!(move || (&*a).write_all(&vec![b'a' + w; BLOCK]).unwrap())
            })
            .collect();
        let mut buf = vec![0u8; BLOCK];
        let mut seen = Vec::new();
        for _ in 0..WRITERS {
            (&b).read_exact(&mut buf).unwrap();
            let first = buf[0];
            let at = buf.iter().position(|&x| x != first);
            assert_eq!(
                at, None,
                "block of {:?} interleaved at {at:?}",
                first as char
            );
            seen.push(first);
        }
        for w in writers {
            w.join().unwrap();
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..WRITERS).map(|w| b'a' + w).collect::<Vec<_>>());
    });
}
