//! A worker pool: jobs go out on one channel, results come back on another,
//! and a WaitGroup tells when every worker has finished.
//!
//! Run with: `cargo run --release --example worker_pool`

use std::time::{Duration, Instant};

use gopark::chan;
use gopark::sync::WaitGroup;

const WORKERS: usize = 8;
const JOBS: u64 = 100;

/// A job that waits like a network call would, then computes something.
fn work(id: usize, job: u64) -> (usize, u64, u64) {
    gopark::time::sleep(Duration::from_millis(10));
    (id, job, job * job)
}

fn main() {
    let start = Instant::now();
    gopark::run(|| {
        let (jobs_tx, jobs_rx) = chan::bounded::<u64>(WORKERS);
        let (results_tx, results_rx) = chan::unbounded();
        let wg = WaitGroup::new();
        for id in 0..WORKERS {
            wg.add(1);
            let (jobs, results, wg) = (jobs_rx.clone(), results_tx.clone(), wg.clone());
            gopark::go!(move || {
                for job in jobs {
                    results.send(work(id, job)).unwrap();
                }
                wg.done();
            });
        }
        drop((jobs_rx, results_tx));

        gopark::go!(move || {
            for job in 1..=JOBS {
                jobs_tx.send(job).unwrap();
            }
            // Dropping the sender closes the jobs channel: workers finish.
        });

        wg.wait();
        let mut per_worker = [0usize; WORKERS];
        let mut sum = 0;
        for (id, _job, square) in results_rx.try_iter() {
            per_worker[id] += 1;
            sum += square;
        }
        assert_eq!(sum, (1..=JOBS).map(|j| j * j).sum::<u64>());
        println!("sum of squares 1..={JOBS}: {sum}");
        println!("jobs per worker: {per_worker:?}");
    });
    // 100 jobs of 10 ms on 8 workers: about 130 ms, not 1 s.
    println!("took {:?}", start.elapsed());
}
