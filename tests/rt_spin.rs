//! The spin before a sleep: a worker spins (up to 20 us) instead of
//! sleeping at once only while coroutines handed to it by other threads
//! arrive quickly, a blocking-pool thread while jobs do, and the spin ends
//! with them. One test per binary: it
//! measures the process's CPU.

use std::time::Duration;

mod common;
use common::assert_idle_for_a_second;

/// Two coroutines on different workers pass a value back and forth: every
/// message readies a coroutine of the other worker, so the workers start to
/// spin before they sleep (`spins()`); when the exchange ends, the spins
/// end too (each lasts at most 20 us and stops the streak when it finds
/// nothing): both workers go to sleep and the idle runtime uses no CPU.
#[test]
fn cross_worker_hand_offs_spin_and_the_spin_ends_with_them() {
    a_runtime_dropped_while_its_workers_spin_shuts_down();
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let rounds = cross_ping_pong(&rt, 20_000);
    assert_eq!(rounds, 20_000);
    let m = rt.metrics();
    let spins: u64 = m.per_worker().iter().map(|w| w.spins()).sum();
    assert!(
        spins > 0,
        "no spin in 20,000 cross-worker round trips: {m:#?}"
    );
    let t = std::time::Instant::now();
    while !rt.metrics().per_worker().iter().all(|w| w.sleeping()) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "workers still awake 10 s after the hand-offs ended: {:#?}",
            rt.metrics()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let m = rt.metrics();
    let empty: u64 = m.per_worker().iter().map(|w| w.spins_empty()).sum();
    assert!(empty > 0, "the last spins found nothing: {m:#?}");
    assert_idle_for_a_second();

    // The blocking pool's threads spin the same way while jobs come in
    // quickly (a coroutine calling `blocking` in a loop), and stop too.
    let n = rt.spawn(|| {
        (0..20_000u32)
            .map(|i| gopark::blocking(move || i & 1))
            .sum::<u32>()
    });
    assert_eq!(n.join().unwrap(), 10_000);
    std::thread::sleep(Duration::from_millis(100));
    assert_idle_for_a_second();
}

/// A runtime dropped the moment its workers may be spinning shuts down.
/// (Part of the test above: the two measure the process's CPU and must not
/// run side by side.)
fn a_runtime_dropped_while_its_workers_spin_shuts_down() {
    for _ in 0..20 {
        let rt = gopark::Runtime::builder().workers(2).build().unwrap();
        assert_eq!(cross_ping_pong(&rt, 2_000), 2_000);
        drop(rt);
    }
}

/// `n` round trips between a coroutine on worker 0 and one on worker 1 over
/// two rendezvous channels; returns the last value (`n`).
fn cross_ping_pong(rt: &gopark::Runtime, n: u64) -> u64 {
    gopark::Builder::new()
        .worker(0)
        .spawn_on(rt, move || {
            let (ping_tx, ping_rx) = gopark::chan::bounded::<u64>(0);
            let (pong_tx, pong_rx) = gopark::chan::bounded::<u64>(0);
            let echo = gopark::Builder::new()
                .worker(1)
                .spawn(move || {
                    assert_eq!(gopark::worker_index(), Some(1));
                    for v in ping_rx.iter() {
                        pong_tx.send(v + 1).unwrap();
                    }
                })
                .unwrap();
            let mut v = 0;
            for _ in 0..n {
                ping_tx.send(v).unwrap();
                v = pong_rx.recv().unwrap();
            }
            drop(ping_tx);
            echo.join().unwrap();
            v
        })
        .unwrap()
        .join()
        .unwrap()
}
