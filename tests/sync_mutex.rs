//! gopark's Mutex and RwLock: mutual exclusion across parks with many
//! coroutines and threads, barging in normal mode, and writers not starved
//! by readers. (The Mutex's starvation mode, timeouts and shutdown:
//! tests/sync_mutex_modes.rs.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gopark::sync::{Mutex, RwLock};

fn rt(workers: usize) -> gopark::Runtime {
    gopark::Runtime::builder().workers(workers).build().unwrap()
}

/// 1,000 coroutines (and a few threads) increment a counter, parking while
/// they hold the lock; none is lost and no two are inside at once.
#[test]
fn thousand_coroutines_increment_across_parks() {
    let rt = rt(2);
    let m = Arc::new(Mutex::new(0u64));
    let inside = Arc::new(AtomicUsize::new(0));
    let body = {
        let (m, inside) = (m.clone(), inside.clone());
        move |park: bool| {
            let mut g = m.lock();
            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
            let v = *g;
            if park {
                gopark::yield_now();
            }
            *g = v + 1;
            inside.fetch_sub(1, Ordering::SeqCst);
        }
    };
    let hs: Vec<_> = (0..1000)
        .map(|i| {
            let body = body.clone();
            rt.spawn(move || {
                body(true);
                if i % 10 == 0 {
                    gopark::time::sleep(Duration::from_micros(10));
                    body(true);
                }
            })
        })
        .collect();
    let ths: Vec<_> = (0..3)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || (0..100).for_each(|_| body(false)))
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    ths.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(*m.lock(), 1000 + 100 + 300);
}

/// An unlock with queued waiters wakes the first one but does not hand it
/// the lock: a running locker takes it first (barging), and the waiters
/// still get it in the order they queued.
#[test]
fn unlock_wakes_a_waiter_but_a_running_locker_may_barge() {
    let rt = rt(1);
    let (order, queued) = rt.run(|| {
        let m = Arc::new(Mutex::new(Vec::new()));
        let queued = Arc::new(Mutex::new(Vec::new()));
        let g = m.lock();
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let (m, queued) = (m.clone(), queued.clone());
                gopark::go!(move || {
                    // No park between these two lines: the coroutine is
                    // queued on `m` in the order it logs itself.
                    queued.lock().push(i);
                    m.lock().push(i);
                })
            })
            .collect();
        while queued.lock().len() < 3 {
            gopark::yield_now();
        }
        drop(g);
        // The first waiter was woken but has not run (one worker): the lock
        // is free and this coroutine takes it back.
        m.try_lock()
            .expect("a released lock must not be handed to a woken waiter")
            .push(99);
        hs.into_iter().for_each(|h| h.join().unwrap());
        let v = m.lock().clone();
        let q = queued.lock().clone();
        (v, q)
    });
    assert_eq!(order[0], 99);
    assert_eq!(order[1..], queued[..]);
}

/// The guard may be held while waiting on a channel.
#[test]
fn guard_held_across_channel_wait() {
    let rt = rt(1);
    rt.run(|| {
        let m = Arc::new(Mutex::new(0));
        let (tx, rx) = gopark::chan::bounded(0);
        let m2 = m.clone();
        let h = gopark::go!(move || {
            let mut g = m2.lock();
            *g = rx.recv().unwrap();
        });
        gopark::yield_now();
        assert!(m.try_lock().is_none());
        tx.send(5).unwrap();
        h.join().unwrap();
        assert_eq!(*m.lock(), 5);
    });
}

/// Readers share, a writer excludes, and a writer queued behind readers is
/// not starved by a continuous stream of new readers.
#[test]
fn rwlock_readers_share_writer_not_starved() {
    let rt = rt(2);
    let l = Arc::new(RwLock::new(0u64));
    let readers_in = Arc::new(AtomicUsize::new(0));
    let max_readers = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (l, rin, max, stop) = (
                l.clone(),
                readers_in.clone(),
                max_readers.clone(),
                stop.clone(),
            );
            rt.spawn(move || {
                while stop.load(Ordering::SeqCst) == 0 {
                    let g = l.read();
                    let n = rin.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(n, Ordering::SeqCst);
                    let _ = *g;
                    gopark::time::sleep(Duration::from_micros(50));
                    rin.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let writer = {
        let (l, rin) = (l.clone(), readers_in.clone());
        rt.spawn(move || {
            for _ in 0..50 {
                let mut g = l.write();
                assert_eq!(rin.load(Ordering::SeqCst), 0, "reader inside a write");
                *g += 1;
                gopark::yield_now();
            }
        })
    };
    let thread_writer = {
        let l = l.clone();
        std::thread::spawn(move || {
            for _ in 0..50 {
                *l.write() += 1;
            }
        })
    };
    // Both writers finish although readers never stop arriving.
    writer.join().unwrap();
    thread_writer.join().unwrap();
    stop.store(1, Ordering::SeqCst);
    readers.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(*l.read(), 100);
    assert!(
        max_readers.load(Ordering::SeqCst) > 1,
        "readers never shared"
    );
}

/// A failed try_lock / try_read / try_write / try_acquire must not release
/// what someone else holds (regression: the guard was built eagerly).
#[test]
fn failed_try_does_not_release() {
    let m = Mutex::new(());
    let _g = m.lock();
    assert!(m.try_lock().is_none());
    assert!(m.try_lock().is_none());
    let l = RwLock::new(());
    let _w = l.write();
    assert!(l.try_read().is_none());
    assert!(l.try_write().is_none());
    assert!(l.try_read().is_none());
    let s = gopark::sync::Semaphore::new(1);
    let _p = s.acquire();
    assert!(s.try_acquire().is_none());
    assert_eq!(s.available_permits(), 0);
}
