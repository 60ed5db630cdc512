//! gopark's Mutex protocol under contention: mutual exclusion with barging
//! across two workers, no wake-up lost to a `lock_timeout` that gives up,
//! starvation mode for a waiter that keeps losing to a barger, and waiters
//! parked at runtime shutdown leaving nothing behind.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gopark::sync::Mutex;

mod common;

fn rt(workers: usize) -> gopark::Runtime {
    gopark::Runtime::builder().workers(workers).build().unwrap()
}

/// Eight coroutines on two workers and two threads hammer one lock, some
/// parking while they hold it: the plain (non-atomic) counter is exact and
/// nobody is ever inside with another.
#[test]
fn contended_counter_is_exact_across_two_workers() {
    const PER: u64 = 20_000;
    let rt = rt(2);
    let m = Arc::new(Mutex::new(0u64));
    let inside = Arc::new(AtomicUsize::new(0));
    let body = {
        let (m, inside) = (m.clone(), inside.clone());
        move |i: u64, coroutine: bool| {
            let mut g = m.lock();
            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
            let v = *g;
            if coroutine && i % 16 == 0 {
                gopark::yield_now();
            }
            *g = v + 1;
            inside.fetch_sub(1, Ordering::SeqCst);
        }
    };
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let body = body.clone();
            rt.spawn(move || (0..PER).for_each(|i| body(i, true)))
        })
        .collect();
    let ths: Vec<_> = (0..2)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || (0..PER / 4).for_each(|i| body(i, false)))
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    ths.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(*m.lock(), 8 * PER + 2 * (PER / 4));
}

/// A waiter with a short timeout races a holder that unlocks and relocks:
/// it is often woken and then beaten past its deadline, or times out while
/// an unlock is waking it. Either way the wake-up must reach the plain
/// waiter behind it, which must get the lock (a lost wake-up leaves it
/// parked: its generous 10 s bound fails the test instead of hanging).
#[test]
fn timed_out_waiter_passes_its_wake_up_on() {
    let rt = rt(2);
    for round in 0..2_000u32 {
        let m = Arc::new(Mutex::new(0u32));
        let held = Arc::new(AtomicBool::new(false));
        let holder = {
            let (m, held) = (m.clone(), held.clone());
            rt.spawn(move || {
                let g = m.lock();
                held.store(true, Ordering::SeqCst);
                for _ in 0..(round % 3) {
                    gopark::yield_now();
                }
                drop(g);
                // Relock at once, a few times, holding it a little: a
                // waiter woken on the other worker often finds it held.
                for _ in 0..(round % 5) {
                    let g = m.lock();
                    for _ in 0..2_000 {
                        std::hint::spin_loop();
                    }
                    std::hint::black_box(&g);
                }
            })
        };
        while !held.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
        let timed = {
            let m = m.clone();
            rt.spawn(move || {
                let t = Duration::from_micros(u64::from(round % 7) * 10);
                if let Some(mut g) = m.lock_timeout(t) {
                    *g += 1;
                }
            })
        };
        let plain = {
            let m = m.clone();
            rt.spawn(move || {
                let mut g = m
                    .lock_timeout(Duration::from_secs(10))
                    .expect("lost wake-up: the lock was free but nobody woke this waiter");
                *g += 1;
            })
        };
        holder.join().unwrap();
        timed.join().unwrap();
        plain.join().unwrap();
        let n = *m.lock();
        assert!(n == 1 || n == 2, "round {round}: {n}");
    }
}

/// A threaded variant: the timed waiter is a thread (it times itself out),
/// the plain one a coroutine.
#[test]
fn timed_out_thread_passes_its_wake_up_on() {
    let rt = rt(2);
    for round in 0..300u32 {
        let m = Arc::new(Mutex::new(()));
        let g = m.lock();
        let timed = {
            let m = m.clone();
            std::thread::spawn(move || {
                let _ = m.lock_timeout(Duration::from_micros(u64::from(round % 5) * 20));
            })
        };
        let plain = {
            let m = m.clone();
            rt.spawn(move || {
                let _g = m
                    .lock_timeout(Duration::from_secs(10))
                    .expect("lost wake-up: the lock was free but nobody woke this waiter");
            })
        };
        std::thread::sleep(Duration::from_micros(u64::from(round % 3) * 20));
        drop(g);
        for _ in 0..(round % 4) {
            drop(m.lock());
        }
        timed.join().unwrap();
        plain.join().unwrap();
    }
}

/// One worker; a barger parks (yields) while it holds the lock and relocks
/// at once after each unlock, so a woken waiter always finds it held again
/// and would never get it in normal mode. After waiting past the starvation
/// threshold the waiter switches the mutex to starvation mode and is handed
/// the lock: it must get it within a bounded number of the barger's rounds
/// (a few thousand at the threshold's 1 ms; the bound is 200,000).
#[test]
fn starved_waiter_is_handed_the_lock() {
    const CAP: u64 = 200_000;
    let rt = rt(1);
    let (started, got) = rt.run(|| {
        let m = Arc::new(Mutex::new(()));
        let rounds = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let barger = {
            let (m, rounds, done) = (m.clone(), rounds.clone(), done.clone());
            gopark::go!(move || {
                let mut g = m.lock();
                while !done.load(Ordering::SeqCst) && rounds.load(Ordering::SeqCst) < CAP {
                    rounds.fetch_add(1, Ordering::SeqCst);
                    gopark::yield_now(); // the waiter runs while we hold it
                    drop(g);
                    g = m.lock();
                }
            })
        };
        // Let the barger get going, then wait behind it.
        while rounds.load(Ordering::SeqCst) < 10 {
            gopark::yield_now();
        }
        let started = rounds.load(Ordering::SeqCst);
        let g = m.lock();
        let got = rounds.load(Ordering::SeqCst);
        done.store(true, Ordering::SeqCst);
        drop(g);
        barger.join().unwrap();
        (started, got)
    });
    assert!(
        got - started < CAP / 2,
        "waiter got the lock only after {} of the barger's rounds",
        got - started
    );
}

/// Coroutines parked in `lock` and `lock_timeout` behind a lock a thread
/// holds are unwound when the runtime shuts down: each leaves the queue, so
/// the thread's unlock finds no waiter and the lock is free and usable.
/// Runs in a child process: a node left behind is a dangling pointer the
/// unlock would follow.
#[test]
fn shutdown_with_parked_waiters_leaves_nothing_behind() {
    const NAME: &str = "shutdown_with_parked_waiters_leaves_nothing_behind";
    if !common::in_child(NAME) {
        let out = common::child_within(NAME, Duration::from_secs(60));
        assert!(
            out.status.success() && common::stdout(&out).contains("child ok"),
            "child failed ({:?}): {}",
            out.status,
            common::stderr(&out)
        );
        return;
    }
    let m = Arc::new(Mutex::new(0u32));
    let g = m.lock();
    let rt = rt(2);
    let parked = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..8)
        .map(|i| {
            let (m, parked) = (m.clone(), parked.clone());
            rt.spawn(move || {
                parked.fetch_add(1, Ordering::SeqCst);
                let mut g = if i % 2 == 0 {
                    m.lock()
                } else {
                    m.lock_timeout(Duration::from_secs(3600))
                        .expect("the lock is never released while the runtime runs")
                };
                *g += 1;
            })
        })
        .collect();
    while parked.load(Ordering::SeqCst) < 8 {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Let the last of them get from the counter into the queue.
    std::thread::sleep(Duration::from_millis(50));
    drop(rt);
    for h in hs {
        assert!(h.join().is_err(), "a waiter ran to completion");
    }
    drop(g);
    let g = m.try_lock().expect("free after the unlock: no waiter left");
    assert_eq!(*g, 0);
    drop(g);
    // And a thread can still take it, repeatedly, while others contend.
    let ths: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || (0..1000).for_each(|_| *m.lock() += 1))
        })
        .collect();
    ths.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(*m.lock(), 4000);
    println!("child ok");
}
