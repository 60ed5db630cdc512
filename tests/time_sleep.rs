//! Sleeping coroutines.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn sleep_wakes_no_earlier_than_asked() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let hs: Vec<_> = [1u64, 3, 7, 15, 30]
        .into_iter()
        .map(|ms| {
            rt.spawn(move || {
                let t = Instant::now();
                gopark::time::sleep(Duration::from_millis(ms));
                (ms, t.elapsed())
            })
        })
        .collect();
    for h in hs {
        let (ms, took) = h.join().unwrap();
        assert!(
            took >= Duration::from_millis(ms),
            "slept {took:?} < {ms} ms"
        );
    }
}

#[test]
fn ten_thousand_concurrent_sleeps_all_wake() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let woke = Arc::new(AtomicUsize::new(0));
    let w = woke.clone();
    rt.run(move || {
        let hs: Vec<_> = (0..10_000u64)
            .map(|i| {
                let w = w.clone();
                gopark::spawn(move || {
                    gopark::time::sleep(Duration::from_millis(1 + i % 20));
                    w.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    assert_eq!(woke.load(Ordering::Relaxed), 10_000);
}

#[test]
fn sleep_until_past_returns_and_plain_thread_sleeps() {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    rt.run(|| gopark::time::sleep_until(Instant::now() - Duration::from_secs(1)));
    let t = Instant::now();
    gopark::time::sleep(Duration::from_millis(5));
    assert!(t.elapsed() >= Duration::from_millis(5));
}

#[test]
fn sleeping_coroutine_lets_others_run() {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let v = rt.run(|| {
        let sleeper = gopark::spawn(|| gopark::time::sleep(Duration::from_millis(50)));
        // With one worker, this only completes while the sleeper is parked.
        let quick = gopark::spawn(|| 99);
        let r = quick.join().unwrap();
        assert!(!sleeper.is_finished());
        sleeper.join().unwrap();
        r
    });
    assert_eq!(v, 99);
}
