//! A coroutine unwound while it waits on a socket it does not own (the
//! socket is shared with another runtime, whose coroutine is unwound when
//! that runtime is dropped) leaves nothing behind: the socket keeps working
//! for everyone else.

mod common;

use std::io::{Read, Write};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Runs `f` on a thread and fails if it has not returned after 5 s.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{what}: no result after 5 s ({e})"))
}

fn rt() -> gopark::Runtime {
    gopark::Runtime::builder().workers(1).build().unwrap()
}

/// A coroutine of runtime B parks in a read on a stream of runtime A; B is
/// dropped, unwinding it. The next read (in A) must work instead of
/// panicking with "double wait", and closing the stream must not trip over
/// a stale waiter either.
#[test]
fn unwound_reader_leaves_no_stale_waiter() {
    let a = rt();
    let (s, mut peer) = a.run(common::tcp_pair);
    let s = Arc::new(s);
    let b = rt();
    {
        let s = s.clone();
        b.spawn(move || {
            let _ = (&*s).read(&mut [0u8; 4]);
        });
    }
    std::thread::sleep(Duration::from_millis(100));
    drop(b);
    let reader = {
        let s = s.clone();
        a.spawn(move || {
            let mut buf = [0u8; 4];
            let n = (&*s).read(&mut buf).unwrap();
            buf[..n].to_vec()
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    (&peer).write_all(b"ok").unwrap();
    let got = bounded("read after an unwound reader", move || reader.join());
    assert_eq!(got.unwrap(), b"ok");
    drop(s);
    // The PollDesc is recycled: a fresh socket must not find a waiter in it.
    a.run(|| {
        let (x, _y) = common::tcp_pair();
        x.close().unwrap();
    });
    peer.flush().unwrap();
}

/// The second reader of a stream (queued on the fdMutex behind the first)
/// is unwound; a third reader queued later must still get the lock.
#[test]
fn unwound_queued_reader_does_not_strand_the_next() {
    let (s, mut peer) = common::tcp_pair();
    let s = Arc::new(s);
    // First reader: a plain thread, holding the read lock while it waits.
    let first = {
        let s = s.clone();
        std::thread::spawn(move || (&*s).read(&mut [0u8; 1]).unwrap())
    };
    std::thread::sleep(Duration::from_millis(50));
    // Second reader: a coroutine of a runtime that is then dropped.
    let b = rt();
    {
        let s = s.clone();
        b.spawn(move || {
            let _ = (&*s).read(&mut [0u8; 1]);
        });
    }
    std::thread::sleep(Duration::from_millis(100));
    drop(b);
    // Third reader: queues behind the first.
    let third = {
        let s = s.clone();
        std::thread::spawn(move || (&*s).read(&mut [0u8; 1]).unwrap())
    };
    std::thread::sleep(Duration::from_millis(50));
    peer.write_all(b"1").unwrap();
    assert_eq!(first.join().unwrap(), 1);
    peer.write_all(b"2").unwrap();
    let n = bounded("third reader", move || third.join().unwrap());
    assert_eq!(n, 1);
}
