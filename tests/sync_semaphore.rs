//! Semaphore bounds concurrency (we count the peak), and Barrier lines up
//! coroutines and threads generation after generation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gopark::sync::{Barrier, Semaphore};

#[test]
fn semaphore_bounds_concurrency() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let sem = Arc::new(Semaphore::new(3));
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let task = {
        let (sem, now, peak) = (sem.clone(), now.clone(), peak.clone());
        move |park: bool| {
            let _p = sem.acquire();
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            if park {
                gopark::time::sleep(Duration::from_micros(200));
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
            now.fetch_sub(1, Ordering::SeqCst);
        }
    };
    let hs: Vec<_> = (0..300)
        .map(|_| {
            let t = task.clone();
            rt.spawn(move || t(true))
        })
        .collect();
    let ths: Vec<_> = (0..2)
        .map(|_| {
            let t = task.clone();
            std::thread::spawn(move || (0..10).for_each(|_| t(false)))
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    ths.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(
        peak.load(Ordering::SeqCst),
        3,
        "peak must reach, not pass, 3"
    );
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn barrier_generations() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    const N: usize = 5;
    let b = Arc::new(Barrier::new(N));
    let phase = Arc::new(AtomicUsize::new(0));
    let leaders = Arc::new(AtomicUsize::new(0));
    let body = {
        let (b, phase, leaders) = (b.clone(), phase.clone(), leaders.clone());
        move || {
            for round in 0..20 {
                assert!(phase.load(Ordering::SeqCst) >= round * N);
                phase.fetch_add(1, Ordering::SeqCst);
                if b.wait().is_leader() {
                    leaders.fetch_add(1, Ordering::SeqCst);
                }
                assert!(phase.load(Ordering::SeqCst) >= (round + 1) * N);
                b.wait();
            }
        }
    };
    let hs: Vec<_> = (0..N - 1).map(|_| rt.spawn(body.clone())).collect();
    let t = std::thread::spawn(body);
    hs.into_iter().for_each(|h| h.join().unwrap());
    t.join().unwrap();
    assert_eq!(leaders.load(Ordering::SeqCst), 20);
}
