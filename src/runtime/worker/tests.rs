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
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let out = common::child_at_within(&format!("{module}::{name}"), name, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "child failed: {}",
        common::stderr(&out)
    );
    assert!(common::stdout(&out).contains("child ok"));
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
                park_commit(ctx, |_, _| panic!("the commit fails"));
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
