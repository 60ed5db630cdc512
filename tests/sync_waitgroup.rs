//! WaitGroup (Go's sync.WaitGroup): 10,000 coroutines, waiting from threads
//! and coroutines, reuse, and the negative-counter panic.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gopark::sync::WaitGroup;

#[test]
fn ten_thousand_coroutines() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let wg = WaitGroup::new();
    let n = Arc::new(AtomicUsize::new(0));
    for i in 0..10_000 {
        wg.add(1);
        let (wg, n) = (wg.clone(), n.clone());
        rt.spawn(move || {
            if i % 100 == 0 {
                gopark::time::sleep(Duration::from_micros(100));
            }
            n.fetch_add(1, Ordering::Relaxed);
            wg.done();
        });
    }
    // Waiters in coroutines and on this thread.
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let (wg, n) = (wg.clone(), n.clone());
            rt.spawn(move || {
                wg.wait();
                assert_eq!(n.load(Ordering::Relaxed), 10_000);
            })
        })
        .collect();
    wg.wait();
    assert_eq!(n.load(Ordering::Relaxed), 10_000);
    waiters.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(wg.count(), 0);

    // Reuse.
    wg.add(2);
    for _ in 0..2 {
        let wg = wg.clone();
        rt.spawn(move || wg.done());
    }
    wg.wait();
}

#[test]
fn negative_counter_panics() {
    let wg = WaitGroup::new();
    let r = std::panic::catch_unwind(|| wg.done());
    assert!(r.is_err());
    assert_eq!(wg.count(), 0);
}
