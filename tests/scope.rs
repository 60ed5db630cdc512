//! Scoped coroutines, `WaitGroup::go` and `ErrGroup`, including what
//! happens to a scope when its runtime shuts down (in child processes).

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use gopark::sync::{ErrGroup, WaitGroup};

#[test]
fn children_borrow_and_are_joined_before_return() {
    for in_coroutine in [false, true] {
        let body = || {
            let mut v = vec![0u32; 64];
            let counter = AtomicUsize::new(0);
            gopark::scope(|s| {
                for chunk in v.chunks_mut(8) {
                    let counter = &counter;
                    s.spawn(move || {
                        gopark::time::sleep(Duration::from_millis(5));
                        for x in chunk.iter_mut() {
                            *x += 1;
                        }
                        counter.fetch_add(1, Ordering::SeqCst);
                    });
                }
            });
            assert_eq!(counter.load(Ordering::SeqCst), 8);
            assert!(v.iter().all(|&x| x == 1));
        };
        if in_coroutine {
            gopark::run(body);
        } else {
            body();
        }
    }
}

#[test]
fn join_handles_return_values_and_nested_spawns_are_waited_for() {
    let n = AtomicUsize::new(0);
    let r = gopark::scope(|s| {
        let h = s.spawn(|| {
            s.spawn(|| {
                gopark::time::sleep(Duration::from_millis(20));
                n.fetch_add(1, Ordering::SeqCst);
            });
            7
        });
        h.join().unwrap()
    });
    assert_eq!(r, 7);
    assert_eq!(
        n.load(Ordering::SeqCst),
        1,
        "the nested child was not waited for"
    );
}

#[test]
fn an_unjoined_panicking_child_makes_the_scope_panic_after_all_ended() {
    let finished = AtomicBool::new(false);
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        gopark::scope(|s| {
            s.spawn(|| panic!("child failed"));
            s.spawn(|| {
                gopark::time::sleep(Duration::from_millis(50));
                finished.store(true, Ordering::SeqCst);
            });
        })
    }));
    assert!(r.is_err());
    assert!(
        finished.load(Ordering::SeqCst),
        "scope panicked before a child ended"
    );
}

#[test]
fn a_joined_panic_does_not_make_the_scope_panic() {
    let ok = gopark::scope(|s| s.spawn(|| panic!("joined")).join().is_err());
    assert!(ok);
}

#[test]
fn the_closures_panic_propagates_after_joining() {
    let finished = AtomicBool::new(false);
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        gopark::scope(|s| {
            s.spawn(|| {
                gopark::time::sleep(Duration::from_millis(50));
                finished.store(true, Ordering::SeqCst);
            });
            panic!("closure failed");
        })
    }));
    let p = r.unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"closure failed"));
    assert!(finished.load(Ordering::SeqCst));
}

#[test]
fn a_long_lived_scope_forgets_finished_children() {
    gopark::scope(|s| {
        for _ in 0..1000 {
            s.spawn(|| ());
            gopark::yield_now();
        }
        // Debug shows how many are remembered: far fewer than spawned.
        let shown = format!("{s:?}");
        let n: usize = shown
            .split("children: ")
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|d| d.parse().ok())
            .unwrap();
        assert!(n < 1000, "{shown}");
    });
}

/// Runtime shutdown cancels the children of a scope whose caller is a plain
/// thread: they finish unwinding (their destructors, which use the
/// borrowed data, run), and only then does the scope panic.
#[test]
fn shutdown_cancels_children_and_the_scope_waits_for_their_unwind() {
    if !common::in_child("shutdown_cancels_children_and_the_scope_waits_for_their_unwind") {
        let out = common::child_within(
            "shutdown_cancels_children_and_the_scope_waits_for_their_unwind",
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "{}", common::stderr(&out));
        assert!(common::stdout(&out).contains("scope panicked after the unwind"));
        return;
    }
    let rt = Arc::new(StdMutex::new(Some(
        gopark::Runtime::builder().workers(1).build().unwrap(),
    )));
    let (started_tx, started_rx) = gopark::chan::bounded::<()>(1);
    let r2 = rt.clone();
    let dropper = std::thread::spawn(move || {
        started_rx.recv().unwrap();
        drop(r2.lock().unwrap().take()); // cancels every coroutine
    });
    let unwound = AtomicBool::new(false);
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        gopark::scope(|s| {
            struct SetOnDrop<'a>(&'a AtomicBool);
            impl Drop for SetOnDrop<'_> {
                fn drop(&mut self) {
                    gopark::time::sleep(Duration::from_millis(20)); // may park
                    self.0.store(true, Ordering::SeqCst);
                }
            }
            let guard = rt.lock().unwrap();
            let rt_ref = guard.as_ref().unwrap();
            let unwound = &unwound;
            s.spawn_on(rt_ref, move || {
                let _g = SetOnDrop(unwound);
                started_tx.send(()).unwrap();
                loop {
                    gopark::park();
                }
            });
            drop(guard);
        })
    }));
    dropper.join().unwrap();
    assert!(r.is_err());
    assert!(unwound.load(Ordering::SeqCst));
    println!("scope panicked after the unwind");
}

/// A child that runtime shutdown has to leak (its destructor waits for
/// ever) could still refer to the scope's borrowed data: the scope aborts
/// the process rather than return.
#[test]
fn a_leaked_child_aborts_the_process() {
    if !common::in_child("a_leaked_child_aborts_the_process") {
        let out =
            common::child_within("a_leaked_child_aborts_the_process", Duration::from_secs(60));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{:?}", out.status);
        let err = common::stderr(&out);
        assert!(err.contains("scoped coroutine was leaked"), "{err}");
        assert!(!common::stdout(&out).contains("scope returned"));
        return;
    }
    let rt = Arc::new(StdMutex::new(Some(
        gopark::Runtime::builder().workers(1).build().unwrap(),
    )));
    let (started_tx, started_rx) = gopark::chan::bounded::<()>(1);
    // Nothing is ever sent on this channel, and its sender stays alive.
    let (never_tx, never_rx) = gopark::chan::bounded::<()>(0);
    std::mem::forget(never_tx);
    let r2 = rt.clone();
    std::thread::spawn(move || {
        started_rx.recv().unwrap();
        drop(r2.lock().unwrap().take());
    });
    let local = 5;
    gopark::scope(|s| {
        struct Stuck<'a>(gopark::chan::Receiver<()>, &'a i32);
        impl Drop for Stuck<'_> {
            fn drop(&mut self) {
                let _ = self.0.recv(); // never returns
                println!("{}", self.1);
            }
        }
        let guard = rt.lock().unwrap();
        s.spawn_on(guard.as_ref().unwrap(), move || {
            let _g = Stuck(never_rx, &local);
            started_tx.send(()).unwrap();
            loop {
                gopark::park();
            }
        });
        drop(guard);
    });
    println!("scope returned");
}

/// A coroutine caller cancelled by shutdown while it waits for its
/// children keeps waiting until they have unwound, then unwinds itself.
#[test]
fn a_cancelled_caller_waits_for_its_children() {
    if !common::in_child("a_cancelled_caller_waits_for_its_children") {
        let out = common::child_within(
            "a_cancelled_caller_waits_for_its_children",
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "{}", common::stderr(&out));
        assert!(common::stdout(&out).contains("order ok"));
        return;
    }
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let log = Arc::new(StdMutex::new(Vec::new()));
    let (started_tx, started_rx) = gopark::chan::bounded::<()>(1);
    let l = log.clone();
    let h = rt.spawn(move || {
        struct Log(Arc<StdMutex<Vec<&'static str>>>, &'static str);
        impl Drop for Log {
            fn drop(&mut self) {
                gopark::time::sleep(Duration::from_millis(20));
                self.0.lock().unwrap().push(self.1);
            }
        }
        let _caller = Log(l.clone(), "caller");
        gopark::scope(|s| {
            s.spawn(|| {
                let _child = Log(l.clone(), "child");
                started_tx.send(()).unwrap();
                loop {
                    gopark::park();
                }
            });
        });
    });
    started_rx.recv().unwrap();
    drop(rt);
    assert!(h.join().is_err());
    let log = log.lock().unwrap().clone();
    assert_eq!(log, ["child", "caller"]);
    println!("order ok");
}

#[test]
fn waitgroup_go_counts_and_survives_panics() {
    let wg = WaitGroup::new();
    let n = Arc::new(AtomicUsize::new(0));
    for i in 0..20 {
        let n = n.clone();
        wg.go(move || {
            n.fetch_add(1, Ordering::SeqCst);
            if i == 7 {
                panic!("one fails");
            }
        });
    }
    wg.wait();
    assert_eq!(n.load(Ordering::SeqCst), 20);
    assert_eq!(wg.count(), 0);
}

#[test]
fn errgroup_returns_the_first_error_and_cancels_its_context() {
    let (g, ctx) = ErrGroup::with_context(&gopark::context::background());
    let stopped = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        let (ctx, stopped) = (ctx.clone(), stopped.clone());
        g.go(move || {
            let _ = ctx.done().recv(); // until the group fails
            stopped.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
    }
    g.go(|| {
        gopark::time::sleep(Duration::from_millis(10));
        Err("first")
    });
    assert_eq!(g.wait(), Err("first"));
    assert_eq!(stopped.load(Ordering::SeqCst), 5);
    assert_eq!(ctx.err(), Some(gopark::context::ContextError::Canceled));
}

#[test]
fn errgroup_keeps_only_the_first_error() {
    let g = ErrGroup::new();
    g.go(|| Err(1));
    g.go(|| {
        gopark::time::sleep(Duration::from_millis(100));
        Err(2)
    });
    assert_eq!(g.wait(), Err(1));
}

#[test]
fn errgroup_limit_bounds_concurrency() {
    let g = ErrGroup::<()>::new();
    g.set_limit(3);
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    for _ in 0..30 {
        let (now, peak) = (now.clone(), peak.clone());
        g.go(move || {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            gopark::time::sleep(Duration::from_millis(1));
            now.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        });
    }
    g.wait().unwrap();
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}

#[test]
fn errgroup_resumes_a_subtask_panic_in_wait() {
    let g = ErrGroup::<()>::new();
    g.go(|| panic!("subtask panicked"));
    let p = panic::catch_unwind(AssertUnwindSafe(|| g.wait())).unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"subtask panicked"));
}
