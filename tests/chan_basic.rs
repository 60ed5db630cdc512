//! Channel basics: the per-capacity behaviours of Go's `TestChan`
//! (runtime/chan_test.go; our own code), rendezvous, close, disconnection,
//! timeouts, iterators and errors.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopark::chan::{
    self, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

fn rt(workers: usize) -> gopark::Runtime {
    gopark::Runtime::builder().workers(workers).build().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Go's TestChan, per capacity: a receive from an empty channel parks, a
/// send to a full one parks, non-blocking variants do not, values come out
/// FIFO, and a closed channel drains then reports closed.
#[test]
fn per_capacity_semantics() {
    let rt = rt(2);
    rt.run(|| {
        for cap in [0usize, 1, 2, 7] {
            // Receive from an empty channel parks.
            let (tx, rx) = chan::bounded::<usize>(cap);
            let got = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let (rx, got) = (rx.clone(), got.clone());
                    gopark::go!(move || {
                        rx.recv().unwrap();
                        got.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            gopark::time::sleep(ms(2));
            assert_eq!(
                got.load(Ordering::SeqCst),
                0,
                "cap {cap}: recv did not park"
            );
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            tx.send(0).unwrap();
            tx.send(0).unwrap();
            hs.into_iter().for_each(|h| h.join().unwrap());
            assert_eq!(got.load(Ordering::SeqCst), 2);

            // Send to a full channel parks.
            let (tx, rx) = chan::bounded::<usize>(cap);
            for i in 0..cap {
                tx.send(i).unwrap();
            }
            assert_eq!(tx.len(), cap);
            assert_eq!(tx.try_send(99), Err(TrySendError::Full(99)));
            let sent = Arc::new(AtomicBool::new(false));
            let h = {
                let (tx, sent) = (tx.clone(), sent.clone());
                gopark::go!(move || {
                    tx.send(cap).unwrap();
                    sent.store(true, Ordering::SeqCst);
                })
            };
            gopark::time::sleep(ms(2));
            assert!(!sent.load(Ordering::SeqCst), "cap {cap}: send did not park");
            // FIFO across the buffer and the parked sender.
            for i in 0..=cap {
                assert_eq!(rx.recv(), Ok(i));
            }
            h.join().unwrap();

            // Closed: drain in order, then RecvError.
            let (tx, rx) = chan::bounded::<usize>(cap);
            for i in 0..cap {
                tx.send(i).unwrap();
            }
            assert!(tx.close());
            assert!(!tx.close(), "second close reports false");
            assert_eq!(tx.send(5), Err(SendError(5)));
            for i in 0..cap {
                assert_eq!(rx.recv(), Ok(i));
            }
            assert_eq!(rx.recv(), Err(RecvError));
            assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
            assert_eq!(rx.capacity(), Some(cap));
        }
    });
}

/// Rendezvous: a send on an unbuffered channel completes only once a
/// receiver has taken the value.
#[test]
fn rendezvous_send_waits_for_receiver() {
    let rt = rt(2);
    rt.run(|| {
        let (tx, rx) = chan::bounded(0);
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let h = gopark::go!(move || {
            tx.send("v").unwrap();
            d.store(true, Ordering::SeqCst);
        });
        gopark::time::sleep(ms(5));
        assert!(!done.load(Ordering::SeqCst));
        assert_eq!(rx.recv(), Ok("v"));
        h.join().unwrap();
        assert!(done.load(Ordering::SeqCst));
    });
}

/// Ping-pong over two rendezvous channels (the benchmark's shape), on one
/// worker and on two.
#[test]
fn ping_pong() {
    for workers in [1, 2] {
        let rt = rt(workers);
        let n = 20_000u32;
        rt.run(move || {
            let (ping_tx, ping_rx) = chan::bounded::<u32>(0);
            let (pong_tx, pong_rx) = chan::bounded::<u32>(0);
            let echo = gopark::go!(move || {
                for v in ping_rx {
                    pong_tx.send(v + 1).unwrap();
                }
            });
            for i in 0..n {
                ping_tx.send(i).unwrap();
                assert_eq!(pong_rx.recv(), Ok(i + 1));
            }
            drop(ping_tx);
            echo.join().unwrap();
        });
    }
}

/// Closing wakes every parked receiver (RecvError) and every parked sender
/// (SendError with its own value).
#[test]
fn close_wakes_parked_senders_and_receivers() {
    let rt = rt(2);
    rt.run(|| {
        let (tx, rx) = chan::bounded::<u32>(0);
        let receivers: Vec<_> = (0..3)
            .map(|_| {
                let rx = rx.clone();
                gopark::go!(move || rx.recv())
            })
            .collect();
        gopark::time::sleep(ms(2));
        tx.close();
        for h in receivers {
            assert_eq!(h.join().unwrap(), Err(RecvError));
        }

        let (tx, rx) = chan::bounded::<u32>(1);
        tx.send(100).unwrap();
        let senders: Vec<_> = (0..3)
            .map(|i| {
                let tx = tx.clone();
                gopark::go!(move || tx.send(i))
            })
            .collect();
        gopark::time::sleep(ms(2));
        tx.close();
        for (i, h) in senders.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), Err(SendError(i as u32)));
        }
        assert_eq!(rx.recv(), Ok(100), "the buffered value survives a close");
        assert_eq!(rx.recv(), Err(RecvError));
    });
}

/// Dropping every sender closes for receivers after the buffer drains;
/// dropping every receiver fails sends and drops the buffered values.
#[test]
fn disconnection() {
    let (tx, rx) = chan::bounded(4);
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    drop(tx);
    tx2.send(2).unwrap();
    drop(tx2);
    assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2]);

    let token = Arc::new(());
    let (tx, rx) = chan::unbounded();
    tx.send(token.clone()).unwrap();
    tx.send(token.clone()).unwrap();
    assert_eq!(Arc::strong_count(&token), 3);
    let rx2 = rx.clone();
    drop(rx);
    assert!(!tx.is_closed());
    drop(rx2);
    assert!(tx.is_closed());
    assert_eq!(Arc::strong_count(&token), 1, "buffered values dropped");
    let err = tx.send(token.clone()).unwrap_err();
    assert!(Arc::ptr_eq(&err.into_inner(), &token));
}

/// Timeouts and deadlines, from a coroutine and from a thread.
#[test]
fn timeouts() {
    let check = || {
        let (tx, rx) = chan::bounded::<u8>(0);
        let t = Instant::now();
        assert_eq!(rx.recv_timeout(ms(5)), Err(RecvTimeoutError::Timeout));
        assert!(t.elapsed() >= ms(5));
        assert_eq!(tx.send_timeout(1, ms(2)), Err(SendTimeoutError::Timeout(1)));
        assert_eq!(
            rx.recv_deadline(Instant::now() - ms(1)),
            Err(RecvTimeoutError::Timeout),
            "a past deadline does not wait"
        );
        drop(tx);
        assert_eq!(rx.recv_timeout(ms(50)), Err(RecvTimeoutError::Disconnected));
    };
    check();
    rt(1).run(check);

    // A timed receive that gets its value in time.
    let rt = rt(2);
    rt.run(|| {
        let (tx, rx) = chan::bounded(0);
        gopark::go!(move || {
            gopark::time::sleep(ms(2));
            tx.send(7).unwrap();
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(7));
    });
}

/// A plain thread and coroutines on the same channels, both directions.
#[test]
fn threads_and_coroutines_share_channels() {
    let rt = rt(2);
    let (to_co, from_thread) = chan::bounded::<u64>(0);
    let (to_thread, from_co) = chan::bounded::<u64>(0);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (rx, tx) = (from_thread.clone(), to_thread.clone());
            rt.spawn(move || {
                for v in rx.iter() {
                    tx.send(v * 2).unwrap();
                }
            })
        })
        .collect();
    drop((from_thread, to_thread));
    let producer = std::thread::spawn(move || {
        for v in 0..2000 {
            to_co.send(v).unwrap();
        }
    });
    let sum: u64 = from_co.iter().sum();
    producer.join().unwrap();
    workers.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(sum, 2 * (0..2000).sum::<u64>());
}

#[test]
fn iterators_len_and_capacity() {
    let (tx, rx) = chan::unbounded();
    assert_eq!(tx.capacity(), None);
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.len(), 5);
    assert_eq!(rx.try_iter().take(2).collect::<Vec<_>>(), [0, 1]);
    assert!(!rx.is_empty());
    drop(tx);
    assert_eq!((&rx).into_iter().collect::<Vec<_>>(), [2, 3, 4]);
    assert!(rx.is_empty());
}

#[test]
fn errors_are_std_errors_with_clear_messages() {
    fn msg(e: &dyn std::error::Error) -> String {
        e.to_string()
    }
    assert_eq!(msg(&SendError(1)), "sending on a closed channel");
    assert_eq!(msg(&RecvError), "receiving on an empty and closed channel");
    assert_eq!(msg(&TrySendError::Full(1)), "sending on a full channel");
    assert_eq!(msg(&TryRecvError::Empty), "receiving on an empty channel");
    assert_eq!(
        msg(&SendTimeoutError::Timeout(1)),
        "timed out waiting on a send operation"
    );
    assert_eq!(
        msg(&RecvTimeoutError::Timeout),
        "timed out waiting on a receive operation"
    );
    // Debug does not need T: Debug.
    struct Opaque;
    assert_eq!(format!("{:?}", SendError(Opaque)), "SendError { .. }");
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(SendError(5u8));
    assert!(boxed.source().is_none());
}
