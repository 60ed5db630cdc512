//! Channels, `select!` and the `sync` primitives driven from plain threads
//! only: no runtime, no coroutine. This is the workout `.ci/run` runs under
//! Miri (which cannot interpret corosensei's stack switching), so it checks
//! the wait queues, the claim word, the parkers and the lock-free state
//! words for undefined behaviour and data races. It runs natively too.
//!
//! Iteration counts are small under Miri (`cfg!(miri)`) to keep it to
//! minutes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gopark::chan::{self, RecvError, RecvTimeoutError, SendError, SendTimeoutError};
use gopark::select;
use gopark::sync::{Barrier, Condvar, Mutex, Once, OnceLock, RwLock, Semaphore, WaitGroup};

/// Scales an iteration count down under Miri.
const fn n(native: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        native
    }
}

/// Two producers and two consumers over a channel of each kind: every value
/// arrives exactly once.
#[test]
fn channels_of_every_kind_deliver_each_value_once() {
    const PER: usize = n(2000, 15);
    type Make = fn() -> (chan::Sender<usize>, chan::Receiver<usize>);
    let kinds: [Make; 4] = [
        || chan::bounded(0),
        || chan::bounded(1),
        || chan::bounded(4),
        chan::unbounded,
    ];
    for mk in kinds {
        let (tx, rx) = mk();
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for i in 0..PER {
                        tx.send(p * PER + i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let rx = rx.clone();
                thread::spawn(move || rx.iter().collect::<Vec<_>>())
            })
            .collect();
        drop(rx);
        for p in producers {
            p.join().unwrap();
        }
        let mut seen = HashSet::new();
        for c in consumers {
            for v in c.join().unwrap() {
                assert!(seen.insert(v), "{v} delivered twice");
            }
        }
        assert_eq!(seen.len(), 2 * PER);
    }
}

/// Timed waits time out, a close wakes blocked parties, and values sent to a
/// closed channel come back.
#[test]
fn timeouts_and_close_wake_blocked_threads() {
    let (tx, rx) = chan::bounded::<u32>(1);
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(2)),
        Err(RecvTimeoutError::Timeout)
    );
    tx.send(1).unwrap();
    assert_eq!(
        tx.send_timeout(2, Duration::from_millis(2)),
        Err(SendTimeoutError::Timeout(2))
    );
    assert_eq!(rx.recv(), Ok(1));

    // A receiver blocked on a rendezvous channel is woken by the close.
    let (tx, rx) = chan::bounded::<u32>(0);
    let waiter = thread::spawn(move || rx.recv());
    thread::sleep(Duration::from_millis(5));
    drop(tx);
    assert_eq!(waiter.join().unwrap(), Err(RecvError));

    // A sender blocked on a full channel gets its value back on close.
    let (tx, rx) = chan::bounded::<String>(0);
    let sender = thread::spawn(move || tx.send("kept".to_string()));
    thread::sleep(Duration::from_millis(5));
    drop(rx);
    assert_eq!(sender.join().unwrap(), Err(SendError("kept".to_string())));

    // A timed receive races a send: the value is received or stays queued.
    for _ in 0..n(200, 4) {
        let (tx, rx) = chan::bounded::<u32>(1);
        let s = thread::spawn(move || {
            tx.send(7).unwrap();
            tx
        });
        let got = rx.recv_timeout(Duration::from_micros(50)).ok();
        let _tx = s.join().unwrap();
        let left = rx.try_recv().ok();
        assert_eq!(got.into_iter().chain(left).collect::<Vec<_>>(), [7]);
    }
}

/// `select!` from threads: default, default(timeout), blocking receive and
/// send arms completed by other threads, and one channel sent and received
/// on by the same select.
#[test]
fn select_default_timeout_and_blocking() {
    let (tx1, rx1) = chan::bounded::<u32>(0);
    let (tx2, rx2) = chan::unbounded::<u32>();
    assert_eq!(select! { recv(rx1) -> _v => 0, default => 1 }, 1);
    let t = Instant::now();
    let r = select! {
        recv(rx1) -> _v => 0,
        recv(rx2) -> _v => 0,
        default(Duration::from_millis(3)) => 1,
    };
    assert_eq!(r, 1);
    assert!(t.elapsed() >= Duration::from_millis(3));

    // Blocking receive: each value is taken by exactly one arm.
    let rounds = n(300, 6);
    let s = thread::spawn(move || {
        for i in 0..rounds as u32 {
            if i % 2 == 0 {
                tx1.send(i).unwrap();
            } else {
                tx2.send(i).unwrap();
            }
        }
        // Keep both open until the receiver is done: a closed channel
        // would make its arm ready with an error.
        (tx1, tx2)
    });
    let mut got = Vec::new();
    for _ in 0..rounds {
        got.push(select! {
            recv(rx1) -> v => v.unwrap(),
            recv(rx2) -> v => v.unwrap(),
        });
    }
    drop(s.join().unwrap());
    got.sort_unstable();
    assert_eq!(got, (0..rounds as u32).collect::<Vec<_>>());

    // Blocking send arms, completed by a receiving thread.
    let (tx, rx) = chan::bounded::<u32>(0);
    let r = thread::spawn(move || (0..rounds).map(|_| rx.recv().unwrap()).sum::<u32>());
    let mut sent = 0;
    for i in 0..rounds as u32 {
        select! {
            send(tx, i) -> res => res.unwrap(),
            default(Duration::from_secs(60)) => panic!("receiver gone"),
        }
        sent += i;
    }
    assert_eq!(r.join().unwrap(), sent);

    // Two threads each select send-or-receive on one rendezvous channel:
    // they pair with each other, never with themselves.
    let (tx, rx) = chan::bounded::<u32>(0);
    let sends = Arc::new(AtomicUsize::new(0));
    let peers: Vec<_> = (0..2)
        .map(|me| {
            let (tx, rx, sends) = (tx.clone(), rx.clone(), sends.clone());
            thread::spawn(move || {
                let mut received = 0;
                for _ in 0..n(100, 4) {
                    select! {
                        send(tx, me) -> res => {
                            res.unwrap();
                            sends.fetch_add(1, Ordering::Relaxed);
                        }
                        recv(rx) -> v => {
                            assert_eq!(v.unwrap(), 1 - me, "paired with itself");
                            received += 1;
                        }
                    }
                }
                received
            })
        })
        .collect();
    let received: usize = peers.into_iter().map(|p| p.join().unwrap()).sum();
    assert_eq!(received, sends.load(Ordering::Relaxed));
    assert_eq!(received, n(100, 4));
}

/// Mutex, RwLock and Condvar shared by threads.
#[test]
fn locks_and_condvar_from_threads() {
    const THREADS: usize = 3;
    let per = n(2000, 10);
    let m = Arc::new(Mutex::new(0usize));
    let rw = Arc::new(RwLock::new(Vec::<usize>::new()));
    let hs: Vec<_> = (0..THREADS)
        .map(|t| {
            let (m, rw) = (m.clone(), rw.clone());
            thread::spawn(move || {
                for i in 0..per {
                    *m.lock() += 1;
                    if i % 4 == 0 {
                        rw.write().push(t);
                    } else {
                        let r = rw.read();
                        assert!(r.iter().all(|&x| x < THREADS));
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(*m.lock(), THREADS * per);
    assert_eq!(rw.read().len(), THREADS * per.div_ceil(4));
    assert!(m.try_lock().is_some());

    // Condvar: a queue of work items with a consumer thread.
    let pair = Arc::new((Mutex::new((0usize, false)), Condvar::new()));
    let consumer = {
        let pair = pair.clone();
        thread::spawn(move || {
            let (m, cv) = &*pair;
            let mut taken = 0;
            let mut g = m.lock();
            loop {
                while g.0 == 0 && !g.1 {
                    g = cv.wait(g);
                }
                if g.0 == 0 && g.1 {
                    return taken;
                }
                g.0 -= 1;
                taken += 1;
            }
        })
    };
    let items = n(500, 8);
    for _ in 0..items {
        pair.0.lock().0 += 1;
        pair.1.notify_one();
    }
    pair.0.lock().1 = true;
    pair.1.notify_all();
    assert_eq!(consumer.join().unwrap(), items);
    let (g, r) = pair.1.wait_timeout(pair.0.lock(), Duration::from_millis(2));
    assert!(r.timed_out());
    drop(g);
}

/// Two readers hold an RwLock while a writer queues; the last reader to
/// leave hands the lock to the writer. Both read sections must happen before
/// the write: the writer synchronises with the last reader only, which must
/// itself acquire the other reader's release. (With a `Release`-only
/// `fetch_sub` in `RwWord::read_unlock`, Miri reported this data race in
/// `locks_and_condvar_from_threads`, and ThreadSanitizer reports it here.)
#[test]
fn rwlock_handoff_orders_every_reader_before_the_writer() {
    for _ in 0..n(50, 4) {
        let l = Arc::new(RwLock::new(vec![1u64, 2, 3]));
        let entered = Arc::new(std::sync::Barrier::new(3));
        let readers: Vec<_> = (0..2u64)
            .map(|k| {
                let (l, entered) = (l.clone(), entered.clone());
                thread::spawn(move || {
                    let g = l.read();
                    entered.wait();
                    // Wait for the writer to queue behind us: new readers
                    // are then refused.
                    while let Some(again) = l.try_read() {
                        drop(again);
                        thread::sleep(Duration::from_micros(50 + k));
                    }
                    g.iter().sum::<u64>()
                })
            })
            .collect();
        entered.wait();
        let writer = {
            let l = l.clone();
            thread::spawn(move || {
                let mut g = l.write();
                g.push(4);
                g[0] = 10;
            })
        };
        for r in readers {
            assert_eq!(r.join().unwrap(), 6);
        }
        writer.join().unwrap();
        assert_eq!(*l.read(), [10, 2, 3, 4]);
    }
}

/// WaitGroup, Once, OnceLock, Semaphore and Barrier shared by threads.
#[test]
fn waitgroup_once_semaphore_barrier_from_threads() {
    const THREADS: usize = 3;
    let wg = WaitGroup::new();
    let once = Arc::new(Once::new());
    let cell = Arc::new(OnceLock::new());
    let inits = Arc::new(AtomicUsize::new(0));
    let sem = Arc::new(Semaphore::new(1));
    let inside = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(THREADS));
    let leaders = Arc::new(AtomicUsize::new(0));
    for t in 0..THREADS {
        wg.add(1);
        let wg = wg.clone();
        let (once, cell, inits) = (once.clone(), cell.clone(), inits.clone());
        let (sem, inside) = (sem.clone(), inside.clone());
        let (barrier, leaders) = (barrier.clone(), leaders.clone());
        thread::spawn(move || {
            once.call_once(|| {
                inits.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(*cell.get_or_init(|| t), *cell.get().unwrap());
            for _ in 0..n(300, 4) {
                let p = sem.acquire();
                assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0, "two holders");
                inside.fetch_sub(1, Ordering::Relaxed);
                drop(p);
            }
            if barrier.wait().is_leader() {
                leaders.fetch_add(1, Ordering::Relaxed);
            }
            wg.done();
        });
    }
    wg.wait();
    assert_eq!(wg.count(), 0);
    assert!(once.is_completed());
    assert_eq!(inits.load(Ordering::Relaxed), 1);
    assert!(cell.get().is_some_and(|&v| v < THREADS));
    assert_eq!(sem.available_permits(), 1);
    assert_eq!(leaders.load(Ordering::Relaxed), 1);
}
