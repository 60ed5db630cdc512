//! `Mutex::lock_timeout` and `Semaphore::acquire_many`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopark::sync::{Mutex, Semaphore};

#[test]
fn lock_timeout_gives_up_and_leaves_the_lock_usable() {
    for in_coroutine in [false, true] {
        let f = || {
            let m = Arc::new(Mutex::new(0));
            let g = m.lock();
            let m2 = m.clone();
            let h = gopark::spawn(move || {
                let t = Instant::now();
                let r = m2.lock_timeout(Duration::from_millis(100)).is_none();
                (r, t.elapsed())
            });
            let (timed_out, took) = h.join().unwrap();
            assert!(timed_out);
            assert!(took >= Duration::from_millis(100));
            drop(g);
            // The timed-out waiter left the queue: the lock works normally.
            *m.lock_timeout(Duration::from_secs(10)).unwrap() += 1;
            assert_eq!(*m.lock(), 1);
        };
        if in_coroutine {
            gopark::run(f);
        } else {
            f();
        }
    }
}

#[test]
fn lock_timeout_gets_a_lock_released_in_time() {
    let m = Arc::new(Mutex::new(()));
    let g = m.lock();
    let m2 = m.clone();
    let h = gopark::spawn(move || m2.lock_timeout(Duration::from_secs(30)).is_some());
    gopark::time::sleep(Duration::from_millis(20));
    drop(g);
    assert!(h.join().unwrap());
}

/// Many timed lockers racing with unlocks: never two holders, and nothing
/// is lost (every successful lock is counted once).
#[test]
fn lock_timeout_races_with_unlocks() {
    gopark::run(|| {
        let m = Arc::new(Mutex::new(0u64));
        let got = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..50)
            .map(|i| {
                let (m, got) = (m.clone(), got.clone());
                gopark::spawn(move || {
                    for _ in 0..50 {
                        if let Some(mut g) = m.lock_timeout(Duration::from_micros(50 * (i % 4))) {
                            *g += 1;
                            got.fetch_add(1, Ordering::SeqCst);
                            gopark::yield_now();
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock() as usize, got.load(Ordering::SeqCst));
        assert!(m.try_lock().is_some());
    });
}

#[test]
fn acquire_many_takes_and_returns_all() {
    let s = Arc::new(Semaphore::new(4));
    let p = s.acquire_many(3);
    assert_eq!(s.available_permits(), 1);
    let s2 = s.clone();
    let h = gopark::spawn(move || {
        let p = s2.acquire_many(2); // waits for the 3 to come back
                                    // (Not `available_permits()` here: the 3 are returned one at a time,
                                    // so the count seen now depends on how far that has got.)
        drop(p);
    });
    gopark::time::sleep(Duration::from_millis(20));
    assert!(!h.is_finished());
    drop(p);
    h.join().unwrap();
    assert_eq!(s.available_permits(), 4);
}

/// Two many-acquirers that together need more than there is never
/// deadlock by each holding part.
#[test]
fn acquire_many_callers_do_not_deadlock() {
    gopark::run(|| {
        let s = Arc::new(Semaphore::new(5));
        let hs: Vec<_> = (0..20)
            .map(|i| {
                let s = s.clone();
                gopark::spawn(move || {
                    for _ in 0..20 {
                        let _p = s.acquire_many(3 + i % 3);
                        gopark::yield_now();
                        let _one = s.try_acquire();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(s.available_permits(), 5);
    });
}
