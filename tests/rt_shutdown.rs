//! Runtime shutdown and panics inside the runtime: dropping a runtime never
//! crashes, aborts or hangs, whatever the coroutines' destructors do, and a
//! worker survives every panic raised by user code. Each scenario runs in a
//! child process with a time limit: a crash or a hang is the failure.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use gopark::chan;
use gopark::sync::Mutex;
use gopark::Runtime;

mod common;

/// Runs test `name` in a child; it must exit cleanly and print "child ok".
/// Returns its stderr.
fn in_child_ok(name: &str) -> String {
    let out = common::child_within(name, Duration::from_secs(30));
    let (so, se) = (common::stdout(&out), common::stderr(&out));
    assert!(
        out.status.success(),
        "child {name} failed ({:?}): {se}",
        out.status
    );
    assert!(so.contains("child ok"), "child {name} did not finish: {so}");
    se
}

fn join_error<T: std::fmt::Debug>(h: gopark::JoinHandle<T>) -> String {
    let e = h
        .join()
        .expect_err("the coroutine should not have finished");
    e.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Counts its drop after doing every kind of park in its destructor.
struct ParksOnDrop(Arc<AtomicUsize>);

impl Drop for ParksOnDrop {
    fn drop(&mut self) {
        gopark::yield_now();
        gopark::park_timeout(Duration::from_millis(1));
        gopark::time::sleep(Duration::from_millis(1));
        let (tx, rx) = chan::bounded::<u8>(1);
        tx.send(1).unwrap();
        assert_eq!(rx.recv().unwrap(), 1);
        *Mutex::new(0).lock() += 1;
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A coroutine cancelled before it started drops its closure; a destructor
/// in that closure that parks behaves as in any coroutine (it used to crash
/// on a null yielder).
#[test]
fn unstarted_closure_whose_drop_parks() {
    const NAME: &str = "unstarted_closure_whose_drop_parks";
    if common::in_child(NAME) {
        let rt = Runtime::builder().workers(1).build().unwrap();
        let dropped = Arc::new(AtomicUsize::new(0));
        let (hs_tx, hs_rx) = mpsc::channel();
        let d = dropped.clone();
        // Queues the victims on its worker's own run queue, then holds the
        // only worker while the runtime is dropped.
        let blocker = rt.spawn(move || {
            let hs: Vec<_> = (0..3)
                .map(|_| {
                    let p = ParksOnDrop(d.clone());
                    gopark::spawn(move || drop(p))
                })
                .collect();
            hs_tx.send(hs).unwrap();
            thread::sleep(Duration::from_millis(150));
        });
        let victims = hs_rx.recv().unwrap();
        drop(rt);
        blocker.join().unwrap();
        assert_eq!(dropped.load(Ordering::SeqCst), 3);
        for v in victims {
            assert!(join_error(v).contains("runtime was dropped"));
        }
        println!("child ok");
        return;
    }
    in_child_ok(NAME);
}

/// A panic payload whose own `Drop` panics.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("the payload's destructor panics");
    }
}

/// A detached coroutine that panics with a payload that panics when
/// dropped does not kill its worker: other coroutines on it keep running,
/// and a parked one wakes up on the same thread.
#[test]
fn payload_that_panics_on_drop_does_not_kill_the_worker() {
    const NAME: &str = "payload_that_panics_on_drop_does_not_kill_the_worker";
    if common::in_child(NAME) {
        let rt = Runtime::builder().workers(1).build().unwrap();
        let (wake_tx, wake_rx) = chan::bounded::<()>(0);
        let parked = rt.spawn(move || {
            let before = thread::current().id();
            wake_rx.recv().unwrap();
            (before, thread::current().id())
        });
        let (go_tx, go_rx) = chan::bounded::<()>(0);
        // Detached before it panics: its worker drops the payload.
        drop(rt.spawn(move || {
            go_rx.recv().unwrap();
            std::panic::panic_any(PanicsOnDrop)
        }));
        go_tx.send(()).unwrap();
        thread::sleep(Duration::from_millis(100));
        assert_eq!(rt.spawn(|| 7).join().unwrap(), 7);
        wake_tx.send(()).unwrap();
        let (before, after) = parked.join().unwrap();
        assert_eq!(before, after);
        println!("child ok");
        return;
    }
    let se = in_child_ok(NAME);
    assert!(se.contains("the payload's destructor panics"), "{se}");
}

/// Destructors that park while runtime shutdown unwinds their coroutines:
/// a contended lock, a long sleep, a rendezvous with another unwinding
/// coroutine all complete; a rendezvous nobody will ever answer leaks its
/// coroutine with a message. Nothing aborts (a park used to re-raise the
/// forced unwind inside a destructor) and the sleep does not hold shutdown.
#[test]
fn destructors_that_park_during_shutdown() {
    const NAME: &str = "destructors_that_park_during_shutdown";
    if common::in_child(NAME) {
        let rt = Runtime::builder().workers(2).build().unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let m = Arc::new(Mutex::new(0u32));
        let (never_tx, never_rx) = chan::bounded::<()>(0);
        let (rv_tx, rv_rx) = chan::bounded::<u32>(0);
        let (lost_tx, _lost_rx) = chan::bounded::<u32>(0);

        struct OnDrop<F: FnMut()>(F);
        impl<F: FnMut()> Drop for OnDrop<F> {
            fn drop(&mut self) {
                (self.0)()
            }
        }

        let (locked_tx, locked_rx) = mpsc::channel();
        let mut hs = Vec::new();
        // A: holds the lock while parked.
        let (m1, r1) = (m.clone(), never_rx.clone());
        hs.push(rt.spawn(move || {
            let _g = m1.lock();
            locked_tx.send(()).unwrap();
            let _ = r1.recv();
        }));
        locked_rx.recv().unwrap();
        // B: its destructor takes the lock A holds, then sleeps a minute.
        let (m2, r2, d2) = (m.clone(), never_rx.clone(), done.clone());
        hs.push(rt.spawn(move || {
            let _d = OnDrop(move || {
                *m2.lock() += 1;
                gopark::time::sleep(Duration::from_secs(60));
                d2.fetch_add(1, Ordering::SeqCst);
            });
            let _ = r2.recv();
        }));
        // D and E: a rendezvous between two unwinding coroutines.
        let (r3, d3) = (never_rx.clone(), done.clone());
        hs.push(rt.spawn(move || {
            let _d = OnDrop(move || {
                rv_tx.send(5).unwrap();
                d3.fetch_add(1, Ordering::SeqCst);
            });
            let _ = r3.recv();
        }));
        let (r4, d4) = (never_rx.clone(), done.clone());
        hs.push(rt.spawn(move || {
            let _d = OnDrop(move || {
                assert_eq!(rv_rx.recv().unwrap(), 5);
                d4.fetch_add(1, Ordering::SeqCst);
            });
            let _ = r4.recv();
        }));
        // C: a rendezvous that nobody answers.
        let (r5, d5) = (never_rx.clone(), done.clone());
        let lost = gopark::Builder::new()
            .name("lost-send")
            .spawn_on(&rt, move || {
                let _d = OnDrop(move || {
                    let _ = lost_tx.send(1);
                    d5.fetch_add(100, Ordering::SeqCst);
                });
                let _ = r5.recv();
            })
            .unwrap();
        thread::sleep(Duration::from_millis(50));
        drop(rt);
        drop(never_tx);
        assert_eq!(done.load(Ordering::SeqCst), 3);
        assert_eq!(*m.lock(), 1);
        for h in hs {
            assert!(join_error(h).contains("runtime was dropped"));
        }
        assert!(join_error(lost).contains("leaked"));
        println!("child ok");
        return;
    }
    let se = in_child_ok(NAME);
    assert!(se.contains("'lost-send'") && se.contains("leaked"), "{se}");
}

/// A coroutine that catches its shutdown unwind and parks again is leaked
/// (with a message) instead of keeping `Runtime::drop` spinning forever.
#[test]
fn coroutine_that_swallows_its_cancellation() {
    const NAME: &str = "coroutine_that_swallows_its_cancellation";
    if common::in_child(NAME) {
        let rt = Runtime::builder().workers(1).build().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        let h = gopark::Builder::new()
            .name("stubborn")
            .spawn_on(&rt, move || {
                ready_tx.send(()).unwrap();
                loop {
                    let _ = std::panic::catch_unwind(gopark::park);
                }
            })
            .unwrap();
        ready_rx.recv().unwrap();
        thread::sleep(Duration::from_millis(20));
        drop(rt);
        assert!(join_error(h).contains("leaked"));
        println!("child ok");
        return;
    }
    let se = in_child_ok(NAME);
    assert!(
        se.contains("'stubborn'") && se.contains("caught the unwind"),
        "{se}"
    );
}

/// Names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|s| s.trim().to_owned())
        .collect()
}

/// A runtime dropped from one of its own coroutines: coroutines queued from
/// a plain thread are cancelled (their closures dropped, their joins fail)
/// and the worker threads exit.
#[test]
fn runtime_dropped_from_its_own_coroutine() {
    const NAME: &str = "runtime_dropped_from_its_own_coroutine";
    if common::in_child(NAME) {
        let rt = Runtime::builder()
            .workers(1)
            .name("selfdrop")
            .build()
            .unwrap();
        let (rt_tx, rt_rx) = mpsc::channel::<Runtime>();
        // Holds the only worker (a plain blocking receive) until it gets its
        // own runtime, then drops it.
        let dropper = rt.spawn(move || {
            let rt = rt_rx.recv().unwrap();
            drop(rt);
            "dropped"
        });
        let token = Arc::new(());
        let queued: Vec<_> = (0..4)
            .map(|_| {
                let t = token.clone();
                rt.spawn(move || drop(t))
            })
            .collect();
        rt_tx.send(rt).unwrap();
        assert_eq!(dropper.join().unwrap(), "dropped");
        for q in queued {
            assert!(join_error(q).contains("runtime was dropped"));
        }
        assert_eq!(
            Arc::strong_count(&token),
            1,
            "queued closures were not dropped"
        );
        let t0 = std::time::Instant::now();
        while thread_names().iter().any(|n| n.starts_with("selfdrop")) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "worker threads did not exit"
            );
            thread::sleep(Duration::from_millis(5));
        }
        println!("child ok");
        return;
    }
    in_child_ok(NAME);
}

/// Spawning on a runtime that is shutting down (from a destructor that
/// runs during the shutdown) fails the new coroutine's join instead of
/// leaving it queued forever.
#[test]
fn spawn_during_shutdown_is_cancelled() {
    const NAME: &str = "spawn_during_shutdown_is_cancelled";
    if common::in_child(NAME) {
        let rt = Runtime::builder().workers(1).build().unwrap();
        let (h_tx, h_rx) = mpsc::channel();
        let (never_tx, never_rx) = chan::bounded::<()>(0);
        struct SpawnOnDrop(mpsc::Sender<gopark::JoinHandle<u8>>);
        impl Drop for SpawnOnDrop {
            fn drop(&mut self) {
                self.0.send(gopark::spawn(|| 1)).unwrap();
            }
        }
        rt.spawn(move || {
            let _s = SpawnOnDrop(h_tx);
            let _ = never_rx.recv();
        });
        thread::sleep(Duration::from_millis(20));
        drop(rt);
        drop(never_tx);
        let h = h_rx.recv().unwrap();
        assert!(join_error(h).contains("runtime was dropped"));
        println!("child ok");
        return;
    }
    in_child_ok(NAME);
}

/// A destructor that reads a socket while shutdown unwinds its coroutine
/// gets an error at once (nobody polls the network any more) instead of
/// blocking the shutdown.
#[test]
fn socket_op_in_a_destructor_during_shutdown_fails_fast() {
    const NAME: &str = "socket_op_in_a_destructor_during_shutdown_fails_fast";
    if common::in_child(NAME) {
        use std::io::Read;
        let rt = Runtime::builder().workers(1).build().unwrap();
        let (err_tx, err_rx) = mpsc::channel();
        let (never_tx, never_rx) = chan::bounded::<()>(0);
        struct ReadOnDrop(gopark::net::TcpStream, mpsc::Sender<String>);
        impl Drop for ReadOnDrop {
            fn drop(&mut self) {
                let mut buf = [0u8; 8];
                let r = self.0.read(&mut buf);
                self.1.send(format!("{r:?}")).unwrap();
            }
        }
        let (ready_tx, ready_rx) = mpsc::channel();
        let h = rt.spawn(move || {
            let l = gopark::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let c = gopark::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (_s, _) = l.accept().unwrap();
            let _r = ReadOnDrop(c, err_tx);
            ready_tx.send(()).unwrap();
            let _ = never_rx.recv();
        });
        ready_rx.recv().unwrap();
        drop(rt);
        drop(never_tx);
        let r = err_rx.recv().unwrap();
        assert!(r.contains("shutting down"), "{r}");
        assert!(join_error(h).contains("runtime was dropped"));
        println!("child ok");
        return;
    }
    in_child_ok(NAME);
}
