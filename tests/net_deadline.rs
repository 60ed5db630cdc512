//! Deadlines and timeouts: Go's absolute deadlines and std's per-op
//! timeouts, set from the op's coroutine, another coroutine or a thread.
//! Tolerances are generous: the test machine is a loaded 2-core box.

use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopark::net::{TcpListener, TcpStream};

mod common;
use common::tcp_pair;

fn rt() -> gopark::Runtime {
    gopark::Runtime::builder().workers(2).build().unwrap()
}

const SLACK: Duration = Duration::from_millis(1500);

#[test]
fn read_deadline_fires_within_tolerance() {
    rt().run(|| {
        let (mut c, _s) = tcp_pair();
        let d = Duration::from_millis(100);
        let t = Instant::now();
        c.set_read_deadline(Some(t + d)).unwrap();
        let e = c.read(&mut [0u8; 8]).unwrap_err();
        let took = t.elapsed();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert_eq!(e.to_string(), "i/o timeout");
        assert!(took >= d && took < d + SLACK, "took {took:?}");
        // Expired stays expired, even with data available, until reset.
        _s.set_nodelay(true).unwrap();
        (&_s).write_all(b"late").unwrap();
        gopark::time::sleep(Duration::from_millis(20));
        assert_eq!(
            c.read(&mut [0u8; 8]).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        c.set_read_deadline(None).unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
    });
}

#[test]
fn deadline_moved_into_the_past_by_another_coroutine_wakes_at_once() {
    rt().run(|| {
        let (c, _s) = tcp_pair();
        let c = Arc::new(c);
        c.set_read_deadline(Some(Instant::now() + Duration::from_secs(60)))
            .unwrap();
        let reader = {
            let c = c.clone();
            gopark::go!(move || {
                let t = Instant::now();
                let e = (&*c).read(&mut [0u8; 8]).unwrap_err();
                (e.kind(), t.elapsed())
            })
        };
        gopark::time::sleep(Duration::from_millis(50));
        let t = Instant::now();
        c.set_read_deadline(Some(Instant::now() - Duration::from_millis(1)))
            .unwrap();
        let (kind, _) = reader.join().unwrap();
        assert_eq!(kind, ErrorKind::TimedOut);
        assert!(t.elapsed() < SLACK, "woke after {:?}", t.elapsed());
    });
}

#[test]
fn deadline_moved_earlier_from_a_plain_thread() {
    let rt = rt();
    let (c, _s) = rt.run(tcp_pair);
    let c = Arc::new(c);
    c.set_read_deadline(Some(Instant::now() + Duration::from_secs(60)))
        .unwrap();
    let reader = {
        let c = c.clone();
        rt.spawn(move || (&*c).read(&mut [0u8; 8]).unwrap_err().kind())
    };
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    // Earlier but still in the future: a new timer must be armed.
    c.set_read_deadline(Some(Instant::now() + Duration::from_millis(100)))
        .unwrap();
    assert_eq!(reader.join().unwrap(), ErrorKind::TimedOut);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(90) && took < SLACK,
        "{took:?}"
    );
}

#[test]
fn deadline_moved_later_while_parked_and_cleared_lets_the_read_succeed() {
    rt().run(|| {
        let (c, s) = tcp_pair();
        let c = Arc::new(c);
        c.set_read_deadline(Some(Instant::now() + Duration::from_millis(100)))
            .unwrap();
        let reader = {
            let c = c.clone();
            gopark::go!(move || {
                let mut buf = [0u8; 5];
                (&*c).read_exact(&mut buf).map(|_| buf)
            })
        };
        gopark::time::sleep(Duration::from_millis(20));
        // Later: the armed timer fires early, sees the move and re-arms.
        c.set_read_deadline(Some(Instant::now() + Duration::from_millis(300)))
            .unwrap();
        gopark::time::sleep(Duration::from_millis(20));
        c.set_read_deadline(None).unwrap();
        gopark::time::sleep(Duration::from_millis(500));
        (&s).write_all(b"hello").unwrap();
        assert_eq!(&reader.join().unwrap().unwrap(), b"hello");
    });
}

#[test]
fn write_deadline_stops_a_blocked_writer() {
    rt().run(|| {
        let (c, _s) = tcp_pair();
        c.set_write_deadline(Some(Instant::now() + Duration::from_millis(200)))
            .unwrap();
        let chunk = vec![7u8; 1 << 20];
        let t = Instant::now();
        let mut w = &c;
        let e = loop {
            if let Err(e) = w.write_all(&chunk) {
                break e;
            }
        };
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert!(t.elapsed() < Duration::from_millis(200) + SLACK);
    });
}

#[test]
fn std_read_timeout_bounds_each_read() {
    rt().run(|| {
        let (mut c, s) = tcp_pair();
        c.set_read_timeout(Some(Duration::from_millis(80))).unwrap();
        for _ in 0..3 {
            let t = Instant::now();
            let e = c.read(&mut [0u8; 4]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TimedOut);
            let took = t.elapsed();
            assert!(
                took >= Duration::from_millis(80) && took < SLACK,
                "{took:?}"
            );
        }
        // A timeout is per op, not sticky: data that comes in time is read.
        let w = gopark::go!(move || {
            gopark::time::sleep(Duration::from_millis(10));
            (&s).write_all(b"ok").unwrap();
            s
        });
        let mut buf = [0u8; 2];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok");
        drop(w.join().unwrap());
        assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(80)));
        assert!(c.set_read_timeout(Some(Duration::ZERO)).is_err());
    });
}

#[test]
fn accept_loop_stopped_by_deadline() {
    rt().run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let l = Arc::new(l);
        let lp = l.clone();
        let acceptor = gopark::go!(move || {
            let mut n = 0;
            loop {
                match lp.accept() {
                    Ok(_) => n += 1,
                    Err(e) => return (n, e.kind()),
                }
            }
        });
        for _ in 0..3 {
            drop(TcpStream::connect(addr).unwrap());
        }
        gopark::time::sleep(Duration::from_millis(50));
        l.set_deadline(Some(Instant::now())).unwrap();
        assert_eq!(acceptor.join().unwrap(), (3, ErrorKind::TimedOut));
    });
}

#[test]
fn accept_loop_stopped_by_close_from_another_coroutine() {
    rt().run(|| {
        let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let lp = l.clone();
        let acceptor = gopark::go!(move || lp.accept().map(|_| ()).unwrap_err());
        gopark::time::sleep(Duration::from_millis(50));
        l.close().unwrap();
        let e = acceptor.join().unwrap();
        assert_eq!(e.kind(), ErrorKind::NotConnected);
        assert_eq!(e.to_string(), "use of closed network connection");
        assert!(l.accept().is_err());
    });
}

#[test]
fn parked_read_woken_by_close() {
    rt().run(|| {
        let (c, _s) = tcp_pair();
        let c = Arc::new(c);
        let r = {
            let c = c.clone();
            gopark::go!(move || (&*c).read(&mut [0u8; 1]).unwrap_err())
        };
        gopark::time::sleep(Duration::from_millis(30));
        c.close().unwrap();
        let e = r.join().unwrap();
        assert_eq!(e.to_string(), "use of closed network connection");
    });
}

#[test]
fn connect_timeout_against_a_full_backlog() {
    use std::os::fd::FromRawFd;
    rt().run(|| {
        // A loopback listener with backlog 0 that never accepts: once its
        // queue is full the kernel drops further SYNs.
        // SAFETY: plain socket syscalls on a descriptor we own.
        let l = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0);
            let l = std::net::TcpListener::from_raw_fd(fd);
            let mut sin: libc::sockaddr_in = std::mem::zeroed();
            sin.sin_family = libc::AF_INET as _;
            sin.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
            let r = libc::bind(
                fd,
                (&sin as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as _,
            );
            assert_eq!(r, 0);
            assert_eq!(libc::listen(fd, 0), 0);
            l
        };
        let addr = l.local_addr().unwrap();
        let mut held = Vec::new();
        let mut timed_out = false;
        for _ in 0..16 {
            let t = Instant::now();
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(s) => held.push(s),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                    assert!(t.elapsed() < Duration::from_millis(200) + SLACK);
                    timed_out = true;
                    break;
                }
            }
        }
        assert!(timed_out, "backlog never filled ({} connected)", held.len());
    });
}

/// std's write timeout bounds each write call, and `write_all` (one call
/// here, under one lock) keeps that: a peer that drains the data steadily,
/// slower in total than the timeout but never pausing that long, gets all
/// of it. A peer that stops draining still times the writer out. Both from
/// a coroutine and from a plain thread. (A Unix stream pair: its socket
/// buffers hold a few hundred KiB, so the writer waits many times.)
#[test]
fn write_timeout_bounds_each_chunk_of_a_write_all() {
    use gopark::net::unix::UnixStream;
    const TOTAL: usize = 2 << 20;
    const CHUNK: usize = 16 << 10;
    let timeout = Duration::from_millis(1000);
    let drain = |s: UnixStream| {
        gopark::go!(move || {
            let mut buf = vec![0u8; CHUNK];
            let mut got = 0;
            while got < TOTAL {
                gopark::time::sleep(Duration::from_millis(10));
                match (&s).read(&mut buf).unwrap() {
                    0 => break, // the writer failed and closed
                    n => got += n,
                }
            }
            s
        })
    };
    rt().run(move || {
        // A coroutine writer.
        let (c, s) = UnixStream::pair().unwrap();
        c.set_write_timeout(Some(timeout)).unwrap();
        let reader = drain(s);
        let t = Instant::now();
        (&c).write_all(&vec![7u8; TOTAL]).unwrap();
        let s = reader.join().unwrap();
        assert!(t.elapsed() > timeout, "the drain was meant to be slow");
        // The peer stops reading: the writer times out.
        let e = (&c).write_all(&vec![7u8; TOTAL]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        drop(s);

        // A plain-thread writer.
        let (c, s) = UnixStream::pair().unwrap();
        c.set_write_timeout(Some(timeout)).unwrap();
        let reader = drain(s);
        let w = std::thread::spawn(move || (&c).write_all(&vec![7u8; TOTAL]));
        reader.join().unwrap();
        w.join().unwrap().unwrap();
    });
}
