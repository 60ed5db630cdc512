//! Runtime metrics (`Runtime::metrics`, `gopark::metrics`): live and
//! spawned coroutines, parks, polls, steals, hand-offs, stalls, busy and
//! idle time, and the blocking pool, each checked against a workload whose
//! count is known.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gopark::{Runtime, RuntimeMetrics};

mod common;
use common::spin;

/// Polls `rt.metrics()` until `ok` holds (panics after 10 s with the last
/// snapshot).
fn wait_for(rt: &Runtime, what: &str, ok: impl Fn(&RuntimeMetrics) -> bool) -> RuntimeMetrics {
    let t = Instant::now();
    loop {
        let m = rt.metrics();
        if ok(&m) {
            return m;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{what}: {m:#?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn total(m: &RuntimeMetrics, f: impl Fn(&gopark::WorkerMetrics) -> u64) -> u64 {
    m.per_worker().iter().map(f).sum()
}

#[test]
fn counts_100_parked_coroutines_and_their_end() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let m0 = rt.metrics();
    assert_eq!(m0.live_coroutines(), 0, "{m0:#?}");
    let parks0 = total(&m0, |w| w.parks());

    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = gopark::chan::bounded::<()>(0);
    let hs: Vec<_> = (0..100)
        .map(|_| {
            let (ready_tx, go_rx) = (ready_tx.clone(), go_rx.clone());
            rt.spawn(move || {
                ready_tx.send(()).unwrap();
                // Parks until the channel is closed.
                assert!(go_rx.recv().is_err());
            })
        })
        .collect();
    drop(go_rx);
    for _ in 0..100 {
        ready_rx.recv().unwrap();
    }
    // All 100 have started (and not ended); spawns are counted as they
    // happen, from this plain thread.
    let m = rt.metrics();
    assert_eq!(m.live_coroutines(), 100, "{m:#?}");
    assert_eq!(m.spawned_total() - m0.spawned_total(), 100, "{m:#?}");
    assert_eq!(m.spawned_outside() - m0.spawned_outside(), 100, "{m:#?}");
    // Per worker figures add up to the totals.
    let live: usize = m.per_worker().iter().map(|w| w.live_coroutines()).sum();
    assert_eq!(live, m.live_coroutines());
    assert_eq!(
        total(&m, |w| w.spawned()) + m.spawned_outside(),
        m.spawned_total()
    );
    assert_eq!(total(&m, |w| w.started()), 100, "{m:#?}");
    // Each parks in its receive.
    wait_for(&rt, "100 parks", |m| {
        total(m, |w| w.parks()) - parks0 >= 100
    });

    go_tx.close();
    for h in hs {
        h.join().unwrap();
    }
    // A coroutine stops counting as live before its join handle sees it end.
    let m2 = rt.metrics();
    assert_eq!(m2.live_coroutines(), 0, "{m2:#?}");
    assert_eq!(m2.spawned_total(), m.spawned_total(), "{m2:#?}");
    assert_eq!(total(&m2, |w| w.started()), 100, "{m2:#?}");
    assert!(
        m2.per_worker().iter().all(|w| w.live_coroutines() == 0),
        "{m2:#?}"
    );
}

#[test]
fn spawns_from_coroutines_count_on_their_worker() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let m0 = rt.metrics();
    let w = rt.run(|| {
        let hs: Vec<_> = (0..10).map(|i| gopark::spawn(move || i)).collect();
        for h in hs {
            h.join().unwrap();
        }
        gopark::worker_index().unwrap()
    });
    let m = rt.metrics();
    assert_eq!(m.spawned_total() - m0.spawned_total(), 11, "{m:#?}");
    assert_eq!(m.spawned_outside() - m0.spawned_outside(), 1, "{m:#?}");
    assert_eq!(m.worker(w).spawned() - m0.worker(w).spawned(), 10, "{m:#?}");
    assert_eq!(m.live_coroutines(), 0, "{m:#?}");
}

#[test]
fn a_ping_pong_parks_at_least_once_per_round_trip() {
    const N: u64 = 1000;
    let rt = Runtime::builder().workers(1).build().unwrap();
    let m0 = rt.metrics();
    rt.run(|| {
        let (ping_tx, ping_rx) = gopark::chan::bounded::<u64>(0);
        let (pong_tx, pong_rx) = gopark::chan::bounded::<u64>(0);
        let h = gopark::spawn(move || {
            for _ in 0..N {
                pong_tx.send(ping_rx.recv().unwrap()).unwrap();
            }
        });
        for i in 0..N {
            ping_tx.send(i).unwrap();
            assert_eq!(pong_rx.recv().unwrap(), i);
        }
        h.join().unwrap();
    });
    let m = rt.metrics();
    let (w, w0) = (m.worker(0), m0.worker(0));
    // One worker: in every round trip one side reaches its rendezvous
    // first and must park until the other runs.
    let parks = w.parks() - w0.parks();
    assert!(parks >= N, "{parks} parks for {N} round trips: {m:#?}");
    // Every park but the last of each coroutine is followed by a resume,
    // and each coroutine's first run is a resume too.
    let resumes = w.resumes() - w0.resumes();
    assert!(resumes >= parks, "{resumes} resumes, {parks} parks: {m:#?}");
    assert_eq!(w.started() - w0.started(), 2, "{m:#?}");
}

#[test]
fn a_socket_read_that_parked_is_a_netpoll_event() {
    let rt = Runtime::builder()
        .workers(1)
        .stall_threshold(Duration::ZERO)
        .build()
        .unwrap();
    let l = rt
        .run(|| gopark::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = l.local_addr().unwrap();
    let (accepted_tx, accepted_rx) = mpsc::channel::<()>();
    let h = rt.spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        accepted_tx.send(()).unwrap();
        let mut buf = [0u8; 16];
        s.read(&mut buf).unwrap()
    });
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    accepted_rx.recv().unwrap();
    // The worker's only coroutine is past the accept: once the worker
    // sleeps, that coroutine is parked in its read.
    let m0 = wait_for(&rt, "the worker sleeps", |m| {
        m.worker(0).sleeping() && m.worker(0).runnable() == 0
    });
    client.write_all(b"hello").unwrap();
    assert_eq!(h.join().unwrap(), 5);
    let m = rt.metrics();
    let (w, w0) = (m.worker(0), m0.worker(0));
    assert!(w.netpoll_events() > w0.netpoll_events(), "{m0:#?} {m:#?}");
    assert!(w.netpoll_calls() > w0.netpoll_calls(), "{m0:#?} {m:#?}");
    // A poll readies at most the coroutines waiting; here, one.
    assert!(w.netpoll_events() - w0.netpoll_events() <= w.netpoll_calls() - w0.netpoll_calls());
}

#[test]
fn the_blocking_pool_shows_its_threads_and_queue() {
    let rt = Runtime::builder()
        .workers(1)
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let m0 = rt.metrics();
    assert_eq!(
        (m0.blocking_threads(), m0.blocking_queue_depth()),
        (0, 0),
        "{m0:#?}"
    );
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let first = rt.spawn(move || {
        gopark::blocking(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        })
    });
    started_rx.recv().unwrap();
    // The only pool thread is busy: the next job waits in the queue.
    let second = rt.spawn(|| gopark::blocking(|| 7));
    let m = wait_for(&rt, "a queued blocking job", |m| {
        m.blocking_queue_depth() == 1
    });
    assert_eq!(m.blocking_threads(), 1, "{m:#?}");
    assert_eq!(m.blocking_idle_threads(), 0, "{m:#?}");
    // Both coroutines wait, parked, for their jobs.
    assert_eq!(m.live_coroutines(), 2, "{m:#?}");
    release_tx.send(()).unwrap();
    first.join().unwrap();
    assert_eq!(second.join().unwrap(), 7);
    let m = wait_for(&rt, "the pool thread idle", |m| {
        m.blocking_idle_threads() == 1
    });
    assert_eq!(
        (m.blocking_threads(), m.blocking_queue_depth()),
        (1, 0),
        "{m:#?}"
    );
}

#[test]
fn busy_and_idle_time_add_up_to_the_uptime() {
    let rt = Runtime::builder()
        .workers(1)
        .stall_threshold(Duration::ZERO)
        .build()
        .unwrap();
    let m0 = rt.metrics();
    // A coroutine that holds the worker for 200 ms: all of it busy.
    rt.run(|| spin(Duration::from_millis(200)));
    let m1 = rt.metrics();
    let busy = m1.worker(0).busy() - m0.worker(0).busy();
    assert!(busy >= Duration::from_millis(200), "{m0:#?} {m1:#?}");
    // Nothing to run for 300 ms: the worker sleeps through most of it.
    std::thread::sleep(Duration::from_millis(300));
    let m2 = rt.metrics();
    let idle = m2.worker(0).idle() - m1.worker(0).idle();
    assert!(idle >= Duration::from_millis(100), "{m1:#?} {m2:#?}");
    for m in [&m0, &m1, &m2] {
        let w = m.worker(0);
        assert_eq!(w.busy() + w.idle(), m.uptime(), "{m:#?}");
    }
    assert!(m2.uptime() > m1.uptime() && m1.uptime() > m0.uptime());
}

#[test]
fn handoffs_count_coroutines_placed_on_another_worker() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let m0 = rt.metrics();
    // From a coroutine on worker 0, start one on worker 1, then meet it
    // on a rendezvous channel.
    let h = gopark::Builder::new()
        .worker(0)
        .spawn_on(&rt, || {
            let (tx, rx) = gopark::chan::bounded::<usize>(0);
            let child = gopark::Builder::new()
                .worker(1)
                .spawn(move || tx.send(gopark::worker_index().unwrap()).unwrap())
                .unwrap();
            let w = rx.recv().unwrap();
            child.join().unwrap();
            w
        })
        .unwrap();
    assert_eq!(h.join().unwrap(), 1);
    let m = rt.metrics();
    // The spawn placed on worker 1.
    assert!(
        m.worker(0).handoffs() > m0.worker(0).handoffs(),
        "{m0:#?} {m:#?}"
    );
    // And the rendezvous: whichever side came second readied the other,
    // which lives on the other worker.
    let handoffs = total(&m, |w| w.handoffs()) - total(&m0, |w| w.handoffs());
    assert!(handoffs >= 2, "{m0:#?} {m:#?}");
}

#[test]
fn an_idle_worker_steals_from_a_busy_one() {
    let rt = Runtime::builder()
        .workers(2)
        .stall_threshold(Duration::ZERO)
        .build()
        .unwrap();
    let steals = rt.run(|| {
        let me = gopark::worker_index().unwrap();
        let other = 1 - me;
        let hs: Vec<_> = (0..8).map(|i| gopark::spawn(move || i)).collect();
        // Hold this worker until the other took some of the children
        // queued here (it steals only unstarted ones, from a more loaded
        // worker).
        let t = Instant::now();
        while gopark::metrics().worker(other).steals() == 0 {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{:#?}",
                gopark::metrics()
            );
            std::hint::spin_loop();
        }
        for h in hs {
            h.join().unwrap();
        }
        gopark::metrics().worker(other).steals()
    });
    assert!(steals >= 1);
}

#[test]
fn stalls_seen_by_the_monitor_are_counted() {
    let rt = Runtime::builder()
        .workers(1)
        .stall_threshold(Duration::from_millis(20))
        .build()
        .unwrap();
    let stalls = rt.run(|| {
        // Runs without parking until the monitor has reported it.
        let t = Instant::now();
        while gopark::metrics().worker(0).stalls() == 0 {
            assert!(t.elapsed() < Duration::from_secs(10), "no stall counted");
            std::hint::spin_loop();
        }
        gopark::metrics().worker(0).stalls()
    });
    // Once per stall.
    assert_eq!(stalls, 1);
    assert_eq!(rt.metrics().worker(0).stalls(), 1);
}

#[test]
fn debug_output_names_every_figure() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = gopark::chan::bounded::<()>(0);
    let h = rt.spawn(move || rx.recv().unwrap());
    let m = wait_for(&rt, "one live coroutine", |m| m.live_coroutines() == 1);
    let d = format!("{m:?}");
    for field in [
        "live_coroutines: 1",
        "spawned_total: 1",
        "blocking_threads: 0",
        "blocking_queue_depth: 0",
        "WorkerMetrics { index: 0",
        "WorkerMetrics { index: 1",
        "runnable",
        "busy",
        "parks",
        "steals",
        "netpoll_events",
        "handoffs",
        "stalls",
    ] {
        assert!(d.contains(field), "{field:?} missing from {d}");
    }
    let line = m.worker(0).to_string();
    assert!(line.starts_with("worker 0: "), "{line}");
    // The runtime's own Debug shows the workers and the live coroutines.
    let r = format!("{rt:?}");
    assert!(r.contains("workers: 2") && r.contains("live: 1"), "{r}");
    tx.send(()).unwrap();
    h.join().unwrap();
    assert!(format!("{rt:?}").contains("live: 0"), "{rt:?}");
}

#[test]
fn metrics_of_the_current_runtime() {
    let rt = Runtime::builder().workers(3).build().unwrap();
    let m = rt.run(gopark::metrics);
    assert_eq!(m.workers(), 3);
    // The caller itself is live.
    assert_eq!(m.live_coroutines(), 1, "{m:#?}");
    assert_eq!(m.per_worker().len(), 3);
    for (i, w) in m.per_worker().iter().enumerate() {
        assert_eq!(w.index(), i);
    }
}
