//! Once and OnceLock: an initialiser that parks makes concurrent callers
//! park (not block their worker), runs once, and a panicking initialiser
//! lets the next caller try again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gopark::sync::{Once, OnceLock};

#[test]
fn parking_initialiser_runs_once() {
    // One worker: if a waiter blocked the thread instead of parking, the
    // sleeping initialiser could never finish.
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let cell = Arc::new(OnceLock::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..50)
        .map(|i| {
            let (cell, runs) = (cell.clone(), runs.clone());
            rt.spawn(move || {
                *cell.get_or_init(|| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    gopark::time::sleep(Duration::from_millis(2));
                    i
                })
            })
        })
        .collect();
    let vals: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(vals.iter().all(|&v| v == vals[0]));
    assert_eq!(cell.get(), Some(&vals[0]));
}

#[test]
fn panicking_initialiser_lets_the_next_try() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let once = Arc::new(Once::new());
    let o = once.clone();
    // The second caller arrives while the first initialiser runs (told by
    // `inside`, not by timing: the two may start in either order).
    let (inside_tx, inside_rx) = gopark::chan::bounded::<()>(1);
    let first = rt.spawn(move || {
        o.call_once(|| {
            inside_tx.send(()).unwrap();
            gopark::time::sleep(Duration::from_millis(2));
            panic!("init failed");
        })
    });
    let o = once.clone();
    let second = rt.spawn(move || {
        inside_rx.recv().unwrap();
        let mut ran = false;
        o.call_once(|| ran = true);
        ran
    });
    assert!(first.join().is_err());
    assert!(second.join().unwrap(), "the waiter retried after the panic");
    assert!(once.is_completed());

    let cell: OnceLock<String> = OnceLock::new();
    assert_eq!(cell.set("a".into()), Ok(()));
    assert_eq!(cell.set("b".into()), Err("b".into()));
    assert_eq!(cell.into_inner().as_deref(), Some("a"));
}
