//! Timed waits that end early give their timer back: memory stays bounded by
//! the timers still armed, and a timer whose wait is over never acts on a
//! later wait.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopark::chan;
use gopark::sync::{Condvar, Mutex};

const N: usize = 200_000;
const HOUR: Duration = Duration::from_secs(3600);
/// Allowed VmRSS growth over `N` early-ending timed waits. A timer kept until
/// its deadline costs about 70 bytes (heap entry, boxed action, the waiter it
/// holds): some 13 MiB for `N`.
const MAX_GROWTH_KIB: usize = 8 * 1024;

/// `n` round trips in which `waiter` parks in a timed wait (with a deadline an
/// hour away) and `waker` ends it at once.
fn ping_pong<W, K>(rt: &gopark::Runtime, n: usize, waiter: W, waker: K)
where
    W: FnMut() + Send + 'static,
    K: FnMut() + Send + 'static,
{
    let (mut waiter, mut waker) = (waiter, waker);
    rt.run(move || {
        let (go_tx, go_rx) = chan::bounded::<()>(0);
        let (done_tx, done_rx) = chan::bounded::<()>(0);
        let w = gopark::spawn(move || {
            for _ in 0..n {
                go_rx.recv().unwrap();
                waiter();
                done_tx.send(()).unwrap();
            }
        });
        for _ in 0..n {
            go_tx.send(()).unwrap();
            // One worker: the waiter runs until it parks in its timed wait.
            gopark::yield_now();
            waker();
            done_rx.recv().unwrap();
        }
        w.join().unwrap();
    });
}

/// Runs `n` early-ending timed waits of one kind and returns the VmRSS growth
/// in KiB (after a warm-up of the same loop).
fn growth<W, K>(rt: &gopark::Runtime, n: usize, waiter: W, waker: K) -> usize
where
    W: FnMut() + Send + Clone + 'static,
    K: FnMut() + Send + Clone + 'static,
{
    ping_pong(rt, 2_000, waiter.clone(), waker.clone());
    let before = common::status_kib("VmRSS");
    ping_pong(rt, n, waiter, waker);
    let after = common::status_kib("VmRSS");
    after.saturating_sub(before)
}

#[test]
fn early_ending_timed_waits_do_not_accumulate() {
    const NAME: &str = "early_ending_timed_waits_do_not_accumulate";
    if !common::in_child(NAME) {
        let out = common::child(NAME);
        assert!(out.status.success(), "child failed: {:?}", out.status);
        assert!(common::stdout(&out).contains("timed-waits-ok"));
        return;
    }
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();

    // recv_timeout: the receiver parks first, the sender hands it a value.
    let (tx, rx) = chan::bounded::<u32>(0);
    let g = growth(
        &rt,
        N,
        move || assert_eq!(rx.recv_timeout(HOUR), Ok(7)),
        move || tx.send(7).unwrap(),
    );
    println!("recv_timeout: VmRSS +{g} KiB over {N}");
    assert!(g < MAX_GROWTH_KIB, "recv_timeout: VmRSS grew {g} KiB");

    // send_timeout: the sender parks first, the receiver takes the value.
    let (tx, rx) = chan::bounded::<u32>(0);
    let g = growth(
        &rt,
        N,
        move || tx.send_timeout(7, HOUR).unwrap(),
        move || assert_eq!(rx.recv(), Ok(7)),
    );
    println!("send_timeout: VmRSS +{g} KiB over {N}");
    assert!(g < MAX_GROWTH_KIB, "send_timeout: VmRSS grew {g} KiB");

    // select! with default(timeout).
    let (tx, rx) = chan::bounded::<u32>(0);
    let g = growth(
        &rt,
        N,
        move || {
            let got = gopark::select! {
                recv(rx) -> v => v.unwrap(),
                default(HOUR) => panic!("timed out"),
            };
            assert_eq!(got, 7);
        },
        move || tx.send(7).unwrap(),
    );
    println!("select default(t): VmRSS +{g} KiB over {N}");
    assert!(g < MAX_GROWTH_KIB, "select: VmRSS grew {g} KiB");

    // Condvar::wait_timeout, notified at once.
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p2 = pair.clone();
    let g = growth(
        &rt,
        N,
        move || {
            let (m, cv) = &*pair;
            let mut ready = m.lock();
            while !*ready {
                let (g, res) = cv.wait_timeout(ready, HOUR);
                assert!(!res.timed_out());
                ready = g;
            }
            *ready = false;
        },
        move || {
            let (m, cv) = &*p2;
            *m.lock() = true;
            cv.notify_one();
        },
    );
    println!("wait_timeout: VmRSS +{g} KiB over {N}");
    assert!(g < MAX_GROWTH_KIB, "wait_timeout: VmRSS grew {g} KiB");

    // park_timeout, unparked at once.
    let g = park_timeout_growth(&rt, N);
    println!("park_timeout: VmRSS +{g} KiB over {N}");
    assert!(g < MAX_GROWTH_KIB, "park_timeout: VmRSS grew {g} KiB");
    println!("timed-waits-ok");
}

/// `n` park_timeouts, each ended by an unpark from another coroutine on the
/// same worker; returns the VmRSS growth in KiB after a warm-up.
fn park_timeout_growth(rt: &gopark::Runtime, n: usize) -> usize {
    let round = |n: usize| {
        rt.run(move || {
            let done = Arc::new(AtomicBool::new(false));
            let d = done.clone();
            let parker = gopark::spawn(move || {
                for _ in 0..n {
                    gopark::park_timeout(HOUR);
                }
                d.store(true, Ordering::Release);
            });
            let co = parker.coroutine().clone();
            while !done.load(Ordering::Acquire) {
                co.unpark();
                // One worker: the parker runs, returns and parks again.
                gopark::yield_now();
            }
            parker.join().unwrap();
        })
    };
    round(2_000);
    let before = common::status_kib("VmRSS");
    round(n);
    common::status_kib("VmRSS").saturating_sub(before)
}

/// A wait that was ended early is not disturbed later by its own timer: the
/// next park_timeout of the same coroutine lasts its full time.
#[test]
fn an_ended_wait_timer_does_not_cut_a_later_park_short() {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    rt.run(|| {
        let (tx, rx) = chan::bounded::<u32>(0);
        let parked = gopark::spawn(move || {
            // Ended at once by the send below; its timer was due in 20 ms.
            assert_eq!(rx.recv_timeout(Duration::from_millis(20)), Ok(1));
            // Ended at once by the unpark below; its timer was due in 20 ms.
            gopark::park_timeout(Duration::from_millis(20));
            // Neither timer may end this one.
            let t = Instant::now();
            gopark::park_timeout(Duration::from_millis(300));
            t.elapsed()
        });
        tx.send(1).unwrap();
        gopark::yield_now();
        parked.coroutine().unpark();
        let took = parked.join().unwrap();
        assert!(
            took >= Duration::from_millis(250),
            "the 300 ms park returned after {took:?}"
        );
    });
}

/// Condvar waits notified before their deadline report no timeout, and a
/// waiter that really times out still does.
#[test]
fn condvar_wait_timeout_notified_early_and_timing_out() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
        for round in 1..=100u32 {
            let p = pair.clone();
            let h = gopark::spawn(move || {
                let (m, cv) = &*p;
                let mut g = m.lock();
                while *g < round {
                    let (g2, res) = cv.wait_timeout(g, Duration::from_millis(200));
                    assert!(!res.timed_out(), "round {round} timed out");
                    g = g2;
                }
            });
            gopark::yield_now();
            *pair.0.lock() = round;
            pair.1.notify_all();
            h.join().unwrap();
        }
        let (m, cv) = &*pair;
        let t = Instant::now();
        let (_g, res) = cv.wait_timeout(m.lock(), Duration::from_millis(30));
        assert!(res.timed_out());
        assert!(t.elapsed() >= Duration::from_millis(30));
    });
}

/// Timers armed from a plain thread (socket deadlines) still fire, also
/// after an earlier deadline replaced a later one.
#[test]
fn deadline_set_from_a_plain_thread_fires() {
    use std::io::Read;
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let (a, _b) = rt.run(|| gopark::net::unix::UnixStream::pair().unwrap());
    let a = Arc::new(a);
    let a2 = a.clone();
    let reader = rt.spawn(move || {
        let t = Instant::now();
        let mut buf = [0u8; 8];
        let e = (&*a2).read(&mut buf).unwrap_err();
        (e.kind(), t.elapsed())
    });
    // From this plain thread: first an hour, then 50 ms.
    a.set_read_deadline(Some(Instant::now() + HOUR)).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    a.set_read_deadline(Some(Instant::now() + Duration::from_millis(50)))
        .unwrap();
    let (kind, took) = reader.join().unwrap();
    assert_eq!(kind, std::io::ErrorKind::TimedOut);
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

/// A thread's timed waits (no timer: the thread times out by itself) still
/// time out and still complete early.
#[test]
fn plain_thread_timed_waits() {
    let (tx, rx) = chan::bounded::<u32>(0);
    let t = Instant::now();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(20)),
        Err(chan::RecvTimeoutError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(20));
    let h = std::thread::spawn(move || tx.send(5).unwrap());
    assert_eq!(rx.recv_timeout(HOUR), Ok(5));
    h.join().unwrap();
}

/// A descriptor closed with a deadline timer armed is recycled for a new
/// socket; that timer fires for the new incarnation and must leave it able to
/// arm its own deadlines (a read deadline after the old timer's time still
/// expires).
#[test]
fn a_recycled_descriptor_keeps_its_deadlines() {
    use std::io::Read;
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    rt.run(|| {
        for round in 0..3 {
            let (a, b) = gopark::net::unix::UnixStream::pair().unwrap();
            a.set_read_deadline(Some(Instant::now() + Duration::from_millis(20)))
                .unwrap();
            b.set_read_deadline(Some(Instant::now() + Duration::from_millis(20)))
                .unwrap();
            drop((a, b));
            // The closed pair's timers fire while their descriptors are free.
            gopark::time::sleep(Duration::from_millis(40));
            let (c, _d) = gopark::net::unix::UnixStream::pair().unwrap();
            c.set_read_deadline(Some(Instant::now() + Duration::from_millis(30)))
                .unwrap();
            let (tx, rx) = chan::bounded(1);
            gopark::spawn(move || {
                let mut buf = [0u8; 4];
                let r = (&c).read(&mut buf).map_err(|e| e.kind());
                tx.send(r).unwrap();
            });
            let r = rx.recv_timeout(Duration::from_secs(10));
            assert!(
                matches!(r, Ok(Err(std::io::ErrorKind::TimedOut))),
                "round {round}: {r:?}"
            );
        }
    });
}
