//! The cooperative budget: a coroutine whose gopark operations never park
//! (a socket that always has data, a channel that always has a value, a
//! `select!` with a ready arm, a UDP socket, an uncontended lock or
//! semaphore) still yields regularly, so a sleeper on the same worker keeps
//! waking close to on time.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Worst gap allowed between two wake-ups of a 1 ms sleeper. Without the
/// budget the busy coroutine holds the worker for hundreds of ms at a time.
const MAX_GAP: Duration = Duration::from_millis(100);

/// On a 1-worker runtime, runs `busy` (which loops until the given instant:
/// it must not depend on another coroutine to stop) beside a 1 ms sleeper
/// for `dur`; returns the sleeper's worst gap and the number of operations
/// `busy` reported.
fn worst_gap_beside(
    dur: Duration,
    busy: impl FnOnce(Instant) -> u64 + Send + 'static,
) -> (Duration, u64) {
    // One busy coroutine at a time: the tests of this file run in parallel,
    // and several CPU-bound loops on a 2-CPU machine would measure the
    // kernel's time slicing rather than the budget.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    rt.run(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let worst = Arc::new(AtomicU64::new(0));
        let sleeper = {
            let (stop, worst) = (stop.clone(), worst.clone());
            gopark::spawn(move || {
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    gopark::time::sleep(Duration::from_millis(1));
                    let now = Instant::now();
                    let gap = now.duration_since(last).as_nanos() as u64;
                    worst.fetch_max(gap, Ordering::Relaxed);
                    last = now;
                }
            })
        };
        let until = Instant::now() + dur;
        let ops = gopark::spawn(move || busy(until)).join().unwrap();
        stop.store(true, Ordering::Relaxed);
        sleeper.join().unwrap();
        (Duration::from_nanos(worst.load(Ordering::Relaxed)), ops)
    })
}

#[test]
fn always_ready_socket_reader_lets_a_sleeper_run() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // A plain thread keeps the socket full.
    let writer = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let buf = [7u8; 64 * 1024];
            while !done.load(Ordering::Relaxed) {
                if s.write_all(&buf).is_err() {
                    break;
                }
            }
        })
    };
    let (gap, reads) = worst_gap_beside(Duration::from_secs(1), move |until| {
        let mut s = gopark::net::TcpStream::connect(addr).unwrap();
        // Let the writer fill the socket buffers first.
        gopark::time::sleep(Duration::from_millis(50));
        let mut buf = [0u8; 16];
        let mut n = 0;
        while Instant::now() < until {
            s.read_exact(&mut buf).unwrap();
            n += 1;
        }
        done.store(true, Ordering::Relaxed);
        n
    });
    writer.join().unwrap();
    assert!(reads > 0);
    assert!(
        gap < MAX_GAP,
        "sleeper's worst gap {gap:?} beside the reader"
    );
}

#[test]
fn always_ready_channel_lets_a_sleeper_run() {
    let (gap, ops) = worst_gap_beside(Duration::from_millis(500), |until| {
        let (tx, rx) = gopark::chan::unbounded();
        tx.send(0u64).unwrap();
        let mut n = 0;
        while Instant::now() < until {
            let v = rx.recv().unwrap();
            tx.send(v + 1).unwrap();
            n += 1;
        }
        n
    });
    assert!(ops > 0);
    assert!(
        gap < MAX_GAP,
        "sleeper's worst gap {gap:?} beside the channel"
    );
}

#[test]
fn uncontended_mutex_lets_a_sleeper_run() {
    let (gap, ops) = worst_gap_beside(Duration::from_millis(500), |until| {
        let m = gopark::sync::Mutex::new(0u64);
        let mut n = 0;
        while Instant::now() < until {
            *m.lock() += 1;
            n += 1;
        }
        assert_eq!(*m.lock(), n);
        n
    });
    assert!(ops > 0);
    assert!(
        gap < MAX_GAP,
        "sleeper's worst gap {gap:?} beside the mutex"
    );
}

#[test]
fn always_ready_select_lets_a_sleeper_run() {
    // Only select! touches the channel: the plain send/recv tick on their
    // own, so they must not be in the loop.
    let (gap, ops) = worst_gap_beside(Duration::from_millis(500), |until| {
        let (tx, rx) = gopark::chan::bounded(1);
        let mut n = 0u64;
        while Instant::now() < until {
            gopark::select! {
                send(tx, n) -> res => res.unwrap(),
            }
            gopark::select! {
                recv(rx) -> v => assert_eq!(v, Ok(n)),
                default(Duration::from_secs(5)) => unreachable!("a value is buffered"),
            }
            n += 1;
        }
        n
    });
    assert!(ops > 0);
    assert!(
        gap < MAX_GAP,
        "sleeper's worst gap {gap:?} beside the select! loop"
    );
}

#[test]
fn always_ready_udp_socket_lets_a_sleeper_run() {
    let (gap, ops) = worst_gap_beside(Duration::from_millis(500), |until| {
        let a = gopark::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = gopark::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        let to = a.local_addr().unwrap();
        let mut buf = [0u8; 8];
        let mut n = 0u64;
        // A datagram sent is already queued at the receiver when the send
        // returns (loopback), so neither call ever waits.
        while Instant::now() < until {
            a.send(&n.to_le_bytes()).unwrap();
            let (len, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!((len, from, u64::from_le_bytes(buf)), (8, to, n));
            n += 1;
        }
        n
    });
    assert!(ops > 0);
    assert!(
        gap < MAX_GAP,
        "sleeper's worst gap {gap:?} beside the UDP socket"
    );
}

#[test]
fn uncontended_rwlock_and_semaphore_let_a_sleeper_run() {
    let (gap, ops) = worst_gap_beside(Duration::from_millis(500), |until| {
        let l = gopark::sync::RwLock::new(0u64);
        let s = gopark::sync::Semaphore::new(4);
        let mut n = 0;
        while Instant::now() < until {
            *l.write() += 1;
            assert_eq!(*l.read(), n + 1);
            drop(s.acquire());
            drop(s.acquire_many(2));
            n += 1;
        }
        n
    });
    assert!(ops > 0);
    assert!(
        gap < MAX_GAP,
        "sleeper's worst gap {gap:?} beside the rwlock and semaphore"
    );
}

#[test]
fn uncontended_lock_timeout_lets_a_sleeper_run() {
    let (gap, ops) = worst_gap_beside(Duration::from_millis(500), |until| {
        let m = gopark::sync::Mutex::new(0u64);
        let mut n = 0;
        while Instant::now() < until {
            *m.lock_timeout(Duration::from_secs(5)).unwrap() += 1;
            n += 1;
        }
        n
    });
    assert!(ops > 0);
    assert!(
        gap < MAX_GAP,
        "sleeper's worst gap {gap:?} beside lock_timeout"
    );
}

#[test]
fn budget_is_inert_on_plain_threads() {
    // Outside a runtime the operations never yield (nothing to yield to).
    let (tx, rx) = gopark::chan::unbounded();
    let m = gopark::sync::Mutex::new(0);
    for i in 0..1000 {
        tx.send(i).unwrap();
        assert_eq!(rx.recv().unwrap(), i);
        *m.lock() += 1;
    }
    assert_eq!(*m.lock(), 1000);
}
