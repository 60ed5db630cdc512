//! Spawning and joining: many coroutines, nesting, threads and coroutines.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

mod common;

fn rt(workers: usize) -> gopark::Runtime {
    gopark::Runtime::builder().workers(workers).build().unwrap()
}

#[test]
fn hundred_thousand_spawned_and_joined() {
    let rt = rt(2);
    let sum = rt.run(|| {
        let hs: Vec<_> = (0..100_000u64)
            .map(|i| gopark::spawn(move || i * 2))
            .collect();
        hs.into_iter()
            .enumerate()
            .map(|(i, h)| {
                let v = h.join().unwrap();
                assert_eq!(v, i as u64 * 2);
                v
            })
            .sum::<u64>()
    });
    assert_eq!(sum, 2 * (100_000 * 99_999 / 2));
}

#[test]
fn spawn_from_plain_thread_join_from_thread() {
    let rt = rt(2);
    let hs: Vec<_> = (0..1000).map(|i| rt.spawn(move || i + 1)).collect();
    let total: i32 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, (1..=1000).sum());
}

#[test]
fn nested_spawns() {
    fn tree(depth: u32) -> u64 {
        if depth == 0 {
            return 1;
        }
        let l = gopark::spawn(move || tree(depth - 1));
        let r = gopark::spawn(move || tree(depth - 1));
        l.join().unwrap() + r.join().unwrap()
    }
    let rt = rt(2);
    assert_eq!(rt.run(|| tree(12)), 4096);
}

#[test]
fn join_coroutine_from_other_thread_while_it_parks() {
    let rt = rt(2);
    let h = rt.spawn(|| {
        for _ in 0..100 {
            gopark::time::sleep(std::time::Duration::from_micros(100));
        }
        "done"
    });
    let t = std::thread::spawn(move || h.join().unwrap());
    assert_eq!(t.join().unwrap(), "done");
}

#[test]
fn go_macro_forms() {
    fn add(a: u32, b: u32) -> u32 {
        a + b
    }
    let rt = rt(1);
    let v = rt.run(|| {
        let x = 40;
        let a = gopark::go!(add(x, 2));
        let b = gopark::go!(move || x + 1);
        let c = gopark::go!(|| 7);
        a.join().unwrap() + b.join().unwrap() + c.join().unwrap()
    });
    assert_eq!(v, 42 + 41 + 7);
}

#[test]
fn builder_names_and_current() {
    let rt = rt(1);
    let h = gopark::Builder::new()
        .name("named")
        .spawn_on(&rt, || {
            let me = gopark::current().unwrap();
            (me.name().map(str::to_owned), me.id())
        })
        .unwrap();
    let id = h.coroutine().id();
    let (name, seen) = h.join().unwrap();
    assert_eq!(name.as_deref(), Some("named"));
    assert_eq!(seen, id);
    assert!(gopark::current().is_none());
}

#[test]
fn default_runtime_spawn_and_run() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    gopark::run(move || {
        let hs: Vec<_> = (0..100)
            .map(|_| {
                let n = n2.clone();
                gopark::spawn(move || n.fetch_add(1, Ordering::Relaxed))
            })
            .collect();
        hs.into_iter().for_each(|h| {
            h.join().unwrap();
        });
    });
    assert_eq!(n.load(Ordering::Relaxed), 100);
}

#[test]
fn is_finished_and_detach() {
    let rt = rt(1);
    let h = rt.spawn(|| gopark::time::sleep(std::time::Duration::from_millis(20)));
    assert!(!h.is_finished());
    while !h.is_finished() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    h.join().unwrap();
    // Detached coroutines still run to completion.
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    drop(rt.spawn(move || d.store(1, Ordering::SeqCst)));
    while done.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
}

/// A result value counted as it is dropped.
struct Counted(Arc<AtomicUsize>, [u64; 4]);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[repr(align(64))]
#[derive(Debug, PartialEq)]
struct Aligned(u8);

#[test]
fn join_returns_values_of_every_size_and_alignment() {
    let rt = rt(2);
    rt.run(|| {
        assert_eq!(gopark::spawn(|| ()).join().unwrap(), ());
        assert_eq!(gopark::spawn(|| 7u8).join().unwrap(), 7);
        assert_eq!(
            gopark::spawn(|| u128::MAX - 3).join().unwrap(),
            u128::MAX - 3
        );
        assert_eq!(gopark::spawn(|| Aligned(9)).join().unwrap(), Aligned(9));
        let big = gopark::spawn(|| [0xabu8; 4096]).join().unwrap();
        assert!(big.iter().all(|&b| b == 0xab));
        let s = gopark::spawn(|| "x".repeat(1000)).join().unwrap();
        assert_eq!(s.len(), 1000);
        let v: Vec<Box<dyn Fn() -> u32 + Send>> = gopark::spawn(|| {
            let v: Vec<Box<dyn Fn() -> u32 + Send>> = vec![Box::new(|| 5)];
            v
        })
        .join()
        .unwrap();
        assert_eq!(v[0](), 5);
    });
    // From a plain thread too.
    let h = gopark::Builder::new().spawn_on(&rt, || Aligned(3)).unwrap();
    assert_eq!(h.join().unwrap(), Aligned(3));
}

#[test]
fn a_result_is_dropped_once_whether_joined_or_detached() {
    let rt = rt(2);
    let drops = Arc::new(AtomicUsize::new(0));
    // Joined: dropped by the caller, once.
    let d = drops.clone();
    let h = gopark::Builder::new()
        .spawn_on(&rt, move || Counted(d, [1; 4]))
        .unwrap();
    let c = h.join().unwrap();
    assert_eq!(c.1, [1; 4]);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(c);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    // Handle dropped after the coroutine ended: dropped with the handle.
    let d = drops.clone();
    let h = gopark::Builder::new()
        .spawn_on(&rt, move || Counted(d, [2; 4]))
        .unwrap();
    while !h.is_finished() {
        std::thread::yield_now();
    }
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(h);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    // Handle dropped before the coroutine ended: dropped when it ends.
    let d = drops.clone();
    let (tx, rx) = gopark::chan::bounded::<()>(0);
    let h = gopark::Builder::new()
        .spawn_on(&rt, move || {
            rx.recv().unwrap();
            Counted(d, [3; 4])
        })
        .unwrap();
    drop(h);
    tx.send(()).unwrap();
    let t = std::time::Instant::now();
    while drops.load(Ordering::SeqCst) != 3 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "result never dropped"
        );
        std::thread::yield_now();
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

/// A result whose drop panics, with nobody to take it: the worker contains
/// the panic and goes on running coroutines.
#[test]
fn a_detached_result_that_panics_when_dropped_does_not_stop_the_worker() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("result drop");
        }
    }
    let rt = rt(1);
    let (tx, rx) = gopark::chan::bounded::<()>(0);
    let h = gopark::Builder::new()
        .spawn_on(&rt, move || {
            rx.recv().unwrap();
            Bomb
        })
        .unwrap();
    drop(h);
    tx.send(()).unwrap();
    assert_eq!(rt.run(|| gopark::spawn(|| 11).join().unwrap()), 11);
}

/// A detached coroutine's result whose destructor parks (a send on a full
/// channel, received by another coroutine of the same worker) is dropped by
/// the coroutine itself, where it can park: dropped on the worker outside
/// any coroutine, the send would block the worker's thread, and the
/// receiver on that worker would never run. Runs in a child process (a
/// hang is the failure).
#[test]
fn a_detached_result_whose_drop_parks_is_dropped_in_its_coroutine() {
    const NAME: &str = "a_detached_result_whose_drop_parks_is_dropped_in_its_coroutine";
    if common::in_child(NAME) {
        struct SendOnDrop(gopark::chan::Sender<u32>);
        impl Drop for SendOnDrop {
            fn drop(&mut self) {
                self.0.send(7).unwrap();
            }
        }
        let rt = rt(1);
        let got = rt.run(|| {
            let (tx, rx) = gopark::chan::bounded::<u32>(0);
            let (gate_tx, gate_rx) = gopark::chan::bounded::<()>(0);
            let h = gopark::spawn(move || {
                gate_rx.recv().unwrap();
                SendOnDrop(tx)
            });
            drop(h);
            gate_tx.send(()).unwrap();
            rx.recv().unwrap()
        });
        assert_eq!(got, 7);
        println!("child ok");
        return;
    }
    let out = common::child_within(NAME, std::time::Duration::from_secs(30));
    assert!(
        out.status.success(),
        "child failed: {}",
        common::stderr(&out)
    );
    assert!(common::stdout(&out).contains("child ok"));
}

/// Finished coroutines' records are reused for new ones: under churn on two
/// workers (detached children, children joined by coroutines and by plain
/// threads, while another thread dumps), every coroutine sees its own name
/// and id before and after it parks, no id is given twice, and a dump never
/// shows one id under two names.
#[test]
fn reused_task_records_never_mix_two_coroutines() {
    use std::collections::{HashMap, HashSet};
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    let rt = rt(2);
    let ids = Arc::new(Mutex::new(HashSet::new()));
    let stop = AtomicBool::new(false);
    let child = move |serial: usize, ids: Arc<Mutex<HashSet<u64>>>| {
        move || {
            let name = format!("c-{serial}");
            let me = gopark::current().unwrap();
            assert_eq!(me.name(), Some(name.as_str()));
            gopark::yield_now();
            gopark::time::sleep(std::time::Duration::from_micros(50));
            let again = gopark::current().unwrap();
            assert_eq!(again.id(), me.id());
            assert_eq!(again.name(), Some(name.as_str()));
            assert!(
                ids.lock().unwrap().insert(me.id().as_u64()),
                "an id given twice"
            );
            serial
        }
    };
    std::thread::scope(|scope| {
        let dumper = scope.spawn(|| {
            let mut names: HashMap<u64, String> = HashMap::new();
            while !stop.load(Ordering::Relaxed) {
                for c in rt.coroutines() {
                    if let Some(n) = c.name().filter(|n| n.starts_with("c-")) {
                        let known = names.entry(c.id().as_u64()).or_insert_with(|| n.into());
                        assert_eq!(known, n, "one id under two names");
                    }
                }
            }
            names.len()
        });
        for round in 0..20 {
            let ids = ids.clone();
            let handles: Vec<_> = rt.run(move || {
                let mut hs = Vec::new();
                for i in 0..300 {
                    let serial = round * 300 + i;
                    let h = gopark::Builder::new()
                        .name(format!("c-{serial}"))
                        .spawn(child(serial, ids.clone()))
                        .unwrap();
                    if i % 3 != 0 {
                        hs.push((serial, h));
                    } // else detached
                }
                hs
            });
            let (by_thread, by_co): (Vec<_>, Vec<_>) =
                handles.into_iter().partition(|(serial, _)| serial % 2 == 0);
            let thread = std::thread::spawn(move || {
                for (serial, h) in by_thread {
                    assert_eq!(h.join().unwrap(), serial);
                }
            });
            rt.run(move || {
                for (serial, h) in by_co {
                    assert_eq!(h.join().unwrap(), serial);
                }
            });
            thread.join().unwrap();
        }
        // The detached ones of the last round may still run.
        while ids.lock().unwrap().len() < 20 * 300 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        stop.store(true, Ordering::Relaxed);
        assert!(dumper.join().unwrap() > 0, "the dumps saw the coroutines");
    });
}
