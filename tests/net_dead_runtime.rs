//! A socket whose runtime has been dropped: ops from a plain thread or from
//! a coroutine of another runtime return (an error naming the cause, or a
//! result) instead of hanging.

mod common;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use gopark::net::{TcpListener, TcpStream};

/// Runs `f` on a thread and fails if it has not returned after 5 s.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{what} hung after its runtime was dropped: {e}"))
}

/// A listener whose runtime was dropped while a coroutine waited in accept.
fn dead_listener(parked: bool) -> TcpListener {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let l = std::sync::Arc::new(rt.run(|| TcpListener::bind("127.0.0.1:0").unwrap()));
    if parked {
        let l2 = l.clone();
        rt.spawn(move || {
            let _ = l2.accept();
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(rt);
    std::sync::Arc::try_unwrap(l).unwrap_or_else(|_| panic!("still shared"))
}

/// A stream whose runtime was dropped after a short read (and, if
/// `parked`, while a coroutine waited in read).
fn dead_stream(parked: bool) -> (TcpStream, std::net::TcpStream) {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let s = std::sync::Arc::new(rt.run(move || TcpStream::connect(addr).unwrap()));
    let (mut peer, _) = l.accept().unwrap();
    peer.write_all(b"x").unwrap();
    let s2 = s.clone();
    rt.run(move || assert_eq!((&*s2).read(&mut [0u8; 4]).unwrap(), 1));
    if parked {
        let s2 = s.clone();
        rt.spawn(move || {
            let _ = (&*s2).read(&mut [0u8; 4]);
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(rt);
    let s = std::sync::Arc::try_unwrap(s).unwrap_or_else(|_| panic!("still shared"));
    (s, peer)
}

fn is_gone<T: std::fmt::Debug>(r: std::io::Result<T>) {
    let e = r.expect_err("an op that must wait on a dropped runtime succeeded");
    assert_eq!(e.kind(), std::io::ErrorKind::Other, "{e}");
    assert!(e.to_string().contains("has shut down"), "{e}");
}

/// A plain thread does not need the runtime: its ops keep working.
#[test]
fn thread_ops_keep_working() {
    for parked in [false, true] {
        let l = dead_listener(parked);
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        bounded("accept on a plain thread", move || l.accept().unwrap());
        let (mut s, mut peer) = dead_stream(parked);
        peer.write_all(b"y").unwrap();
        let n = bounded("read on a plain thread", move || s.read(&mut [0u8; 4]));
        assert_eq!(n.unwrap(), 1);
        // Nothing pending: the thread waits in poll(2) until data comes.
        let (s, mut peer) = dead_stream(parked);
        let r = std::thread::spawn(move || (&s).read(&mut [0u8; 4]).unwrap());
        std::thread::sleep(Duration::from_millis(100));
        peer.write_all(b"z").unwrap();
        assert_eq!(
            bounded("waiting read on a plain thread", move || r.join().unwrap()),
            1
        );
    }
}

/// A coroutine of another runtime gets what is pending, and an error
/// naming the cause where it would have to wait.
#[test]
fn other_runtime_ops_return() {
    for parked in [false, true] {
        let l = dead_listener(parked);
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, mut peer) = dead_stream(parked);
        peer.write_all(b"y").unwrap();
        bounded("ops in another runtime", move || {
            let rt2 = gopark::Runtime::builder().workers(1).build().unwrap();
            rt2.run(move || {
                assert!(l.accept().is_ok());
                is_gone(l.accept());
                assert_eq!(s.read(&mut [0u8; 4]).unwrap(), 1);
                is_gone(s.read(&mut [0u8; 4]));
            })
        });
    }
}

/// A coroutine of another runtime parked on the socket when the socket's
/// runtime is dropped wakes with the error.
#[test]
fn parked_coroutine_of_another_runtime_wakes() {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let (s, _peer) = rt.run(common::tcp_pair);
    let l = rt.run(|| TcpListener::bind("127.0.0.1:0").unwrap());
    let rt2 = gopark::Runtime::builder().workers(1).build().unwrap();
    let r = rt2.spawn(move || (&s).read(&mut [0u8; 4]));
    let a = rt2.spawn(move || l.accept().map(|_| ()));
    std::thread::sleep(Duration::from_millis(100));
    drop(rt);
    is_gone(bounded("parked read", move || r.join().unwrap()));
    is_gone(bounded("parked accept", move || a.join().unwrap()));
}
