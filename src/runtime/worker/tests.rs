//! Unit tests of the worker's containment of panics raised on the worker
//! itself, outside the coroutine body. Each runs in a child process with a
//! time limit: a dead worker shows as a hang.

use std::time::Duration;

use super::current_ctx;
use crate::coroutine::park_commit;

use crate::test_common as common;

/// Re-runs test `name` (in this module) alone in a child process; it must
/// succeed and print "child ok".
fn in_child_ok(name: &str) {
    common::unit_child_ok(module_path!(), name, Duration::from_secs(30));
}

/// A commit function that panics (after the switch, on the worker) does not
/// kill the worker: the panic is raised in the coroutine at its park, where
/// it can be caught, and the coroutine stays on its thread.
#[test]
fn panicking_commit_is_raised_in_the_coroutine() {
    const NAME: &str = "panicking_commit_is_raised_in_the_coroutine";
    if common::in_child(NAME) {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let (caught, same_thread) = rt.run(|| {
            let before = std::thread::current().id();
            let ctx = current_ctx().unwrap();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let wait = crate::wait::Wait::plain(crate::CoroutineState::Park, None);
                park_commit(ctx, &wait, |_, _| panic!("the commit fails"));
            }));
            let msg = r.unwrap_err().downcast_ref::<&str>().copied();
            (msg, before == std::thread::current().id())
        });
        assert_eq!(caught, Some("the commit fails"));
        assert!(same_thread);
        assert_eq!(rt.run(|| 5), 5, "the worker is alive");
        println!("child ok");
        return;
    }
    in_child_ok(NAME);
}

/// The per-worker load counters (live coroutines plus queued unstarted
/// ones) return to zero once every coroutine has ended, whichever way it
/// ended: returned, panicked, cancelled before it started, unwound at
/// shutdown, or leaked there.
#[test]
fn load_counters_return_to_zero() {
    use std::sync::atomic::Ordering;
    let rt = crate::Runtime::builder().workers(2).build().unwrap();
    let shared = rt.shared().clone();
    let loads =
        |s: &crate::runtime::Shared| s.workers.iter().map(|w| w.load.get()).collect::<Vec<_>>();

    // Spawns from a plain thread, explicit placement, panics, yields, and a
    // fan-out from a coroutine whose children spawn more.
    let mut hs = Vec::new();
    for i in 0..64 {
        let b = crate::Builder::new();
        let b = if i % 4 == 0 { b.worker(i) } else { b };
        hs.push(
            b.spawn_on(&rt, move || {
                if i % 7 == 0 {
                    panic!("expected");
                }
                for _ in 0..3 {
                    crate::yield_now();
                }
                let kids: Vec<_> = (0..4).map(|_| crate::spawn(crate::yield_now)).collect();
                for k in kids {
                    k.join().unwrap();
                }
            })
            .unwrap(),
        );
    }
    for h in hs {
        let _ = h.join();
    }
    assert_eq!(loads(&shared), [0, 0]);

    // Shutdown: parked coroutines, queued unstarted ones (spawned by a
    // coroutine that holds its worker), and one that swallows its
    // cancellation and is leaked.
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..10 {
        rt.spawn(crate::park);
    }
    rt.spawn(|| {
        let _ = std::panic::catch_unwind(crate::park);
        crate::park();
    });
    rt.spawn(move || {
        let queued: Vec<_> = (0..20).map(|_| crate::spawn(|| ())).collect();
        tx.send(queued).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    });
    let queued = rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(10));
    assert!(shared.workers.iter().map(|w| w.load.get()).sum::<usize>() > 0);
    drop(rt);
    for h in queued {
        let _ = h.join();
    }
    assert!(shared.shutdown.load(Ordering::SeqCst));
    assert_eq!(loads(&shared), [0, 0]);
}
