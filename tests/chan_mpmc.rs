//! Many producers and consumers: every value delivered exactly once (the
//! behaviour of Go's `TestMultiConsumer`, runtime/chan_test.go; our own
//! code), also when timed waits give up at the moment a value is handed to
//! them.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gopark::chan::{self, RecvTimeoutError, SendTimeoutError};

fn rt(workers: usize) -> gopark::Runtime {
    gopark::Runtime::builder().workers(workers).build().unwrap()
}

/// Per-value delivery counters; `check` asserts each was delivered once.
struct Ledger(Vec<AtomicU8>);

impl Ledger {
    fn new(n: usize) -> Arc<Ledger> {
        Arc::new(Ledger((0..n).map(|_| AtomicU8::new(0)).collect()))
    }
    fn mark(&self, v: usize) {
        self.0[v].fetch_add(1, Ordering::Relaxed);
    }
    fn check(&self) {
        for (v, c) in self.0.iter().enumerate() {
            assert_eq!(c.load(Ordering::Relaxed), 1, "value {v} delivered wrongly");
        }
    }
}

/// Producers and consumers, half coroutines and half plain threads, over
/// every kind of channel.
#[test]
fn many_producers_consumers_exactly_once() {
    let rt = rt(2);
    const PRODUCERS: usize = 6;
    const PER: usize = 3000;
    for cap in [Some(0), Some(1), Some(16), None] {
        let (tx, rx) = match cap {
            Some(c) => chan::bounded::<usize>(c),
            None => chan::unbounded(),
        };
        let ledger = Ledger::new(PRODUCERS * PER);
        let mut co = Vec::new();
        let mut th = Vec::new();
        for p in 0..PRODUCERS {
            let tx = tx.clone();
            let work = move || {
                for i in 0..PER {
                    tx.send(p * PER + i).unwrap();
                }
            };
            if p % 2 == 0 {
                co.push(rt.spawn(work));
            } else {
                th.push(std::thread::spawn(work));
            }
        }
        drop(tx);
        for c in 0..6 {
            let (rx, ledger) = (rx.clone(), ledger.clone());
            let work = move || {
                for v in rx.iter() {
                    ledger.mark(v);
                }
            };
            if c % 3 == 0 {
                th.push(std::thread::spawn(work));
            } else {
                co.push(rt.spawn(work));
            }
        }
        drop(rx);
        co.into_iter().for_each(|h| h.join().unwrap());
        th.into_iter().for_each(|h| h.join().unwrap());
        ledger.check();
    }
}

/// Receivers with short timeouts race senders: a value is either received
/// (the handoff won the claim) or stays in the channel (the timeout won);
/// never both, never neither.
#[test]
fn recv_timeout_races_handoff() {
    let rt = rt(2);
    const N: usize = 20_000;
    let (tx, rx) = chan::bounded::<usize>(N);
    let ledger = Ledger::new(N);
    let timeouts = Arc::new(AtomicUsize::new(0));
    let receivers: Vec<_> = (0..4)
        .map(|k| {
            let (rx, ledger, timeouts) = (rx.clone(), ledger.clone(), timeouts.clone());
            rt.spawn(move || loop {
                match rx.recv_timeout(Duration::from_micros(20 + 10 * k)) {
                    Ok(v) => ledger.mark(v),
                    Err(RecvTimeoutError::Timeout) => {
                        timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            })
        })
        .collect();
    let thread_rx = {
        let (rx, ledger) = (rx.clone(), ledger.clone());
        std::thread::spawn(move || loop {
            match rx.recv_timeout(Duration::from_micros(30)) {
                Ok(v) => ledger.mark(v),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        })
    };
    let producer = rt.spawn(move || {
        for v in 0..N {
            tx.send(v).unwrap();
            if v % 64 == 0 {
                gopark::time::sleep(Duration::from_micros(50));
            }
        }
    });
    producer.join().unwrap();
    receivers.into_iter().for_each(|h| h.join().unwrap());
    thread_rx.join().unwrap();
    drop(rx);
    ledger.check();
    assert!(timeouts.load(Ordering::Relaxed) > 0, "no timeout raced");
}

/// Senders with short timeouts on a rendezvous channel: a value is either
/// received, or returned to its sender in the Timeout error.
#[test]
fn send_timeout_races_handoff() {
    let rt = rt(2);
    const PER: usize = 5000;
    let (tx, rx) = chan::bounded::<usize>(0);
    let ledger = Ledger::new(3 * PER);
    let senders: Vec<_> = (0..3)
        .map(|p| {
            let (tx, ledger) = (tx.clone(), ledger.clone());
            rt.spawn(move || {
                let mut returned = 0;
                for i in 0..PER {
                    let v = p * PER + i;
                    match tx.send_timeout(v, Duration::from_micros(15)) {
                        Ok(()) => {}
                        Err(SendTimeoutError::Timeout(back)) => {
                            assert_eq!(back, v);
                            ledger.mark(v);
                            returned += 1;
                        }
                        Err(SendTimeoutError::Disconnected(_)) => unreachable!(),
                    }
                }
                returned
            })
        })
        .collect();
    drop(tx);
    let receiver = {
        let ledger = ledger.clone();
        rt.spawn(move || {
            let mut n = 0u64;
            for v in rx.iter() {
                ledger.mark(v);
                n += 1;
                if n % 16 == 0 {
                    gopark::time::sleep(Duration::from_micros(20));
                }
            }
        })
    };
    let returned: usize = senders.into_iter().map(|h| h.join().unwrap()).sum();
    receiver.join().unwrap();
    ledger.check();
    assert!(returned > 0, "no timeout raced");
}
