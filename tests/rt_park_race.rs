//! Park/ready race: many threads unpark coroutines that park in a tight
//! loop. Every wake-up must be delivered (no coroutine hangs) and no
//! coroutine may run twice at once (checked with an in-flight flag; the
//! runtime itself panics on a double ready).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const COROUTINES: usize = 16;
const ROUNDS: usize = 2_000;

#[test]
fn many_threads_ready_while_coroutines_park() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let progress: Arc<Vec<AtomicUsize>> =
        Arc::new((0..COROUTINES).map(|_| AtomicUsize::new(0)).collect());
    let running: Arc<Vec<AtomicBool>> =
        Arc::new((0..COROUTINES).map(|_| AtomicBool::new(false)).collect());
    let hs: Vec<_> = (0..COROUTINES)
        .map(|i| {
            let (progress, running) = (progress.clone(), running.clone());
            rt.spawn(move || {
                for _ in 0..ROUNDS {
                    assert!(
                        !running[i].swap(true, Ordering::SeqCst),
                        "coroutine runs twice"
                    );
                    progress[i].fetch_add(1, Ordering::SeqCst);
                    running[i].store(false, Ordering::SeqCst);
                    gopark::park();
                }
            })
        })
        .collect();
    let cos: Arc<Vec<gopark::Coroutine>> = Arc::new(hs.iter().map(|h| h.coroutine()).collect());
    // Unparkers: 3 threads plus coroutines on the runtime itself.
    let mut threads = Vec::new();
    for t in 0..3 {
        let (cos, done) = (cos.clone(), done.clone());
        threads.push(std::thread::spawn(move || {
            let mut k = t;
            while !done.load(Ordering::SeqCst) {
                cos[k % COROUTINES].unpark();
                k = k.wrapping_add(7);
            }
        }));
    }
    let waker = {
        let (cos, done) = (cos.clone(), done.clone());
        rt.spawn(move || {
            let mut k = 0usize;
            while !done.load(Ordering::SeqCst) {
                cos[k % COROUTINES].unpark();
                k = k.wrapping_add(3);
                gopark::yield_now();
            }
        })
    };
    for h in hs {
        h.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    waker.join().unwrap();
    for p in progress.iter() {
        assert_eq!(p.load(Ordering::SeqCst), ROUNDS);
    }
}
