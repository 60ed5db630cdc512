//! Scheduling behaviour: work spreads, coroutines stay on their thread,
//! yield interleaves, panics propagate, dropping a runtime frees coroutines.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

fn rt(workers: usize) -> gopark::Runtime {
    gopark::Runtime::builder().workers(workers).build().unwrap()
}

#[test]
fn cpu_bound_coroutines_run_on_two_threads() {
    let rt = rt(2);
    // Two coroutines that each wait (spinning, never parking) until both
    // have started: only possible if they run on distinct worker threads.
    let started = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let started = started.clone();
            rt.spawn(move || {
                started.fetch_add(1, Ordering::SeqCst);
                let t0 = std::time::Instant::now();
                while started.load(Ordering::SeqCst) < 2 {
                    assert!(t0.elapsed() < Duration::from_secs(30), "work never spread");
                    std::hint::spin_loop();
                }
                std::thread::current().id()
            })
        })
        .collect();
    let ids: HashSet<ThreadId> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(ids.len(), 2);
}

#[test]
fn started_coroutine_never_changes_thread() {
    let rt = rt(2);
    let hs: Vec<_> = (0..64)
        .map(|i| {
            rt.spawn(move || {
                let home = std::thread::current().id();
                for k in 0..200 {
                    match (i + k) % 3 {
                        0 => gopark::yield_now(),
                        1 => gopark::time::sleep(Duration::from_micros(50)),
                        _ => {
                            // Park, and get woken from a plain thread.
                            let me = gopark::current().unwrap();
                            std::thread::spawn(move || me.unpark());
                            gopark::park();
                        }
                    }
                    assert_eq!(std::thread::current().id(), home, "coroutine migrated");
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn yield_interleaves_two_coroutines() {
    let rt = rt(1);
    let log = Arc::new(Mutex::new(String::new()));
    let l = log.clone();
    rt.run(move || {
        let mk = |c: char, log: Arc<Mutex<String>>| {
            gopark::spawn(move || {
                for _ in 0..5 {
                    log.lock().unwrap().push(c);
                    gopark::yield_now();
                }
            })
        };
        let a = mk('a', l.clone());
        let b = mk('b', l.clone());
        a.join().unwrap();
        b.join().unwrap();
    });
    assert_eq!(*log.lock().unwrap(), "ababababab");
}

#[test]
fn yield_loop_does_not_starve_new_coroutines() {
    let rt = rt(1);
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    rt.run(move || {
        let spinner = {
            let s = s.clone();
            gopark::spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    gopark::yield_now();
                }
            })
        };
        gopark::yield_now();
        // A coroutine spawned while another yield-loops still gets to run.
        let late = gopark::spawn(move || s.store(true, Ordering::SeqCst));
        late.join().unwrap();
        spinner.join().unwrap();
    });
    assert!(stop.load(Ordering::SeqCst));
}

#[test]
fn ping_pong_does_not_starve_new_coroutines() {
    // Two coroutines hand a value back and forth over rendezvous channels:
    // each send readies the other to run next, so the worker always has a
    // coroutine to run. One spawned meanwhile must still start.
    let rt = rt(1);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx1, rx1) = gopark::chan::bounded::<u64>(0);
    let (tx2, rx2) = gopark::chan::bounded::<u64>(0);
    let s = stop.clone();
    let ping = rt.spawn(move || {
        let mut v = 0;
        while !s.load(Ordering::SeqCst) {
            tx1.send(v).unwrap();
            v = rx2.recv().unwrap();
        }
        drop(tx1); // ends pong
    });
    let pong = rt.spawn(move || {
        while let Ok(v) = rx1.recv() {
            if tx2.send(v + 1).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(20)); // the exchange is going
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let late = rt.spawn(move || started_tx.send(()).unwrap());
    let started = started_rx.recv_timeout(Duration::from_secs(5));
    stop.store(true, Ordering::SeqCst);
    ping.join().unwrap();
    pong.join().unwrap();
    late.join().unwrap();
    assert!(
        started.is_ok(),
        "a coroutine spawned during a ping-pong did not start within 5 s"
    );
}

#[test]
fn panic_propagates_through_join_and_spares_others() {
    let rt = rt(2);
    let ok: Vec<_> = (0..50).map(|i| rt.spawn(move || i)).collect();
    let bad = gopark::Builder::new()
        .name("doomed")
        .spawn_on(&rt, || -> u32 {
            panic!("kaboom {}", std::hint::black_box(7))
        })
        .unwrap();
    let err = bad.join().unwrap_err();
    assert_eq!(
        err.downcast_ref::<String>().map(String::as_str),
        Some("kaboom 7")
    );
    for (i, h) in ok.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), i);
    }
    // The runtime still works after the panic.
    assert_eq!(rt.run(|| 5), 5);
}

#[test]
fn run_resumes_panic_in_caller() {
    let rt = rt(1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.run(|| panic!("inner"))));
    assert_eq!(r.unwrap_err().downcast_ref::<&str>(), Some(&"inner"));
}

struct SetOnDrop(Arc<AtomicUsize>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_runtime_unwinds_parked_coroutines() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let parked = Arc::new(Barrier::new(2));
    let rt = rt(2);
    let mut handles = Vec::new();
    for i in 0..100 {
        let guard = SetOnDrop(dropped.clone());
        handles.push(rt.spawn(move || {
            let _g = guard;
            if i % 2 == 0 {
                gopark::time::sleep(Duration::from_secs(3600));
            } else {
                loop {
                    gopark::park();
                }
            }
        }));
    }
    // Make sure they have started and parked.
    let p = parked.clone();
    rt.spawn(move || {
        gopark::time::sleep(Duration::from_millis(50));
        p.wait();
    });
    parked.wait();
    drop(rt);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        100,
        "every parked coroutine's destructors ran"
    );
    for h in handles {
        assert!(
            h.join().is_err(),
            "join of a cancelled coroutine reports it"
        );
    }
}

#[test]
fn park_unpark_token_semantics() {
    let rt = rt(1);
    rt.run(|| {
        let me = gopark::current().unwrap();
        // A token made available before park makes park return at once.
        me.unpark();
        me.unpark();
        gopark::park();
        // park_timeout returns after the timeout with no token.
        let t = std::time::Instant::now();
        gopark::park_timeout(Duration::from_millis(20));
        assert!(t.elapsed() >= Duration::from_millis(20));
    });
}
