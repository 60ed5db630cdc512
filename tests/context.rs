//! `gopark::context`: cancellation trees, deadlines, `done()` in select.

use std::time::{Duration, Instant};

use gopark::context::{self, background, with_cancel, with_deadline, with_timeout, ContextError};
use gopark::select;

fn assert_send_sync<T: Send + Sync + Clone>() {}

#[test]
fn context_is_send_sync_clone() {
    assert_send_sync::<context::Context>();
}

#[test]
fn cancel_closes_done_and_sets_err() {
    let (ctx, cancel) = with_cancel(&background());
    assert!(ctx.err().is_none());
    assert!(ctx.done().try_recv().unwrap_err().is_empty());
    let c = ctx.clone();
    let waiter = gopark::spawn(move || {
        let _ = c.done().recv(); // parks until closed
        c.err()
    });
    gopark::time::sleep(Duration::from_millis(10));
    cancel.cancel();
    assert_eq!(waiter.join().unwrap(), Some(ContextError::Canceled));
    assert!(ctx.done().try_recv().unwrap_err().is_disconnected());
}

#[test]
fn cancelling_a_parent_cancels_every_descendant() {
    let (root, cancel_root) = with_cancel(&background());
    let (a, _ca) = with_cancel(&root);
    let (b, _cb) = with_timeout(&a, Duration::from_secs(3600));
    let (c, _cc) = with_cancel(&b);
    let (sibling, cancel_sibling) = with_cancel(&root);
    // Cancelling a child leaves the parent and the siblings alone.
    let (leaf, cancel_leaf) = with_cancel(&a);
    cancel_leaf.cancel();
    assert!(leaf.is_done());
    assert!(!a.is_done() && !root.is_done());
    drop(cancel_sibling);
    assert_eq!(sibling.err(), Some(ContextError::Canceled));
    assert!(!root.is_done());

    cancel_root.cancel();
    for ctx in [&root, &a, &b, &c] {
        assert_eq!(ctx.err(), Some(ContextError::Canceled));
        assert!(ctx.done().recv().is_err());
    }
}

#[test]
fn child_of_a_cancelled_parent_is_born_cancelled() {
    let (p, cancel) = with_cancel(&background());
    cancel.cancel();
    let (c, _cc) = with_cancel(&p);
    assert_eq!(c.err(), Some(ContextError::Canceled));
    let (t, _ct) = with_timeout(&p, Duration::from_secs(60));
    assert_eq!(t.err(), Some(ContextError::Canceled));
}

#[test]
fn deadline_expires_in_select_from_threads_and_coroutines() {
    for in_coroutine in [false, true] {
        let f = || {
            let start = Instant::now();
            let (ctx, _cancel) = with_timeout(&background(), Duration::from_millis(100));
            let (_tx, rx) = gopark::chan::bounded::<()>(0);
            let r = select! {
                recv(rx) -> _ => None,
                recv(ctx.done()) -> _ => ctx.err(),
            };
            assert_eq!(r, Some(ContextError::DeadlineExceeded));
            assert!(start.elapsed() >= Duration::from_millis(100));
        };
        if in_coroutine {
            gopark::run(f);
        } else {
            f();
        }
    }
}

#[test]
fn deadlines_inherit_the_earliest_and_past_deadlines_are_born_done() {
    let soon = Instant::now() + Duration::from_millis(100);
    let (p, _cp) = with_deadline(&background(), soon);
    let (c, _cc) = with_timeout(&p, Duration::from_secs(3600));
    assert_eq!(c.deadline(), Some(soon));
    let (c2, _c2) = with_deadline(&p, soon - Duration::from_millis(50));
    assert_eq!(c2.deadline(), Some(soon - Duration::from_millis(50)));
    // The child is done when the parent's deadline passes, with its reason.
    let _ = c.done().recv();
    assert!(Instant::now() >= soon);
    assert_eq!(c.err(), Some(ContextError::DeadlineExceeded));

    let (past, _c) = with_deadline(&background(), Instant::now() - Duration::from_millis(1));
    assert_eq!(past.err(), Some(ContextError::DeadlineExceeded));
}

#[test]
fn cancel_before_deadline_reports_canceled() {
    let (ctx, cancel) = with_timeout(&background(), Duration::from_millis(50));
    drop(cancel);
    gopark::time::sleep(Duration::from_millis(100));
    assert_eq!(ctx.err(), Some(ContextError::Canceled));
}

#[test]
fn many_children_of_a_long_lived_parent_do_not_accumulate() {
    let (root, _c) = with_cancel(&background());
    for _ in 0..10_000 {
        let (child, cancel) = with_timeout(&root, Duration::from_secs(3600));
        drop(cancel);
        assert!(child.is_done());
    }
    // Still works.
    let (child, _cc) = with_cancel(&root);
    assert!(!child.is_done());
}

#[test]
fn socket_deadline_from_context() {
    gopark::run(|| {
        use std::io::Read;
        let l = gopark::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut s = gopark::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (ctx, _cancel) = with_timeout(&background(), Duration::from_millis(100));
        s.set_read_deadline(ctx.deadline()).unwrap();
        let t = Instant::now();
        let e = s.read(&mut [0; 4]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(90));
    });
}
