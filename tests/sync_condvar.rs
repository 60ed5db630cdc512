//! Condvar: a bounded producer/consumer queue (two condition variables, as
//! in Go's sync.Cond examples), and wait_timeout.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopark::sync::{Condvar, Mutex};

struct Queue {
    items: Mutex<VecDeque<u64>>,
    not_empty: Condvar,
    not_full: Condvar,
    cap: usize,
}

#[test]
fn producer_consumer() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let q = Arc::new(Queue {
        items: Mutex::new(VecDeque::new()),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
        cap: 4,
    });
    const PER: u64 = 2000;
    let producers: Vec<_> = (0..3u64)
        .map(|p| {
            let q = q.clone();
            rt.spawn(move || {
                for i in 0..PER {
                    let mut g = q.items.lock();
                    while g.len() == q.cap {
                        g = q.not_full.wait(g);
                    }
                    g.push_back(p * PER + i);
                    drop(g);
                    q.not_empty.notify_one();
                }
            })
        })
        .collect();
    let consume = |q: Arc<Queue>, n: u64| {
        let mut sum = 0;
        for _ in 0..n {
            let mut g = q.items.lock();
            while g.is_empty() {
                g = q.not_empty.wait(g);
            }
            sum += g.pop_front().unwrap();
            drop(g);
            q.not_full.notify_one();
        }
        sum
    };
    let c1 = {
        let q = q.clone();
        rt.spawn(move || consume(q, 2 * PER))
    };
    let c2 = {
        let q = q.clone();
        std::thread::spawn(move || consume(q, PER))
    };
    producers.into_iter().for_each(|h| h.join().unwrap());
    let total = c1.join().unwrap() + c2.join().unwrap();
    assert_eq!(total, (0..3 * PER).sum::<u64>());
}

#[test]
fn wait_timeout_and_notify_all() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let m = Mutex::new(());
        let cv = Condvar::new();
        let t = Instant::now();
        let (_g, r) = cv.wait_timeout(m.lock(), Duration::from_millis(5));
        assert!(r.timed_out());
        assert!(t.elapsed() >= Duration::from_millis(5));

        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let hs: Vec<_> = (0..10)
            .map(|_| {
                let p = pair.clone();
                gopark::go!(move || {
                    let mut g = p.0.lock();
                    while !*g {
                        let (g2, r) = p.1.wait_timeout(g, Duration::from_secs(30));
                        assert!(!r.timed_out());
                        g = g2;
                    }
                })
            })
            .collect();
        gopark::time::sleep(Duration::from_millis(2));
        *pair.0.lock() = true;
        pair.1.notify_all();
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
}
