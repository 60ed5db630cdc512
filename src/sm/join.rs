//! Completion of a coroutine and the one joiner waiting for it.
//!
//! States of `state`: `RUNNING` (no joiner registered), `WAITING` (the
//! joiner's waiter is in `waiter`), `DETACHED` (the join handle was dropped
//! before completion), `DONE` (the outcome is in `panic`, and the result slot
//! of the join handle is written).
//!
//! | from     | by                       | to       | who owns the cells afterwards          |
//! |----------|--------------------------|----------|----------------------------------------|
//! | RUNNING  | `register` (joiner)      | WAITING  | `waiter`: the completer                |
//! | RUNNING  | `detach` (handle dropped)| DETACHED | nobody will take `panic`               |
//! | RUNNING  | `complete` (coroutine)   | DONE     | `panic`: the joiner                    |
//! | WAITING  | `complete` (coroutine)   | DONE     | completer takes `waiter`, wakes it     |
//! | DETACHED | `complete` (coroutine)   | DONE     | completer takes `panic` back, drops it |
//! | DONE     | `detach` (handle dropped)| DONE     | the detacher takes `panic`, drops it   |
//!
//! There is exactly one joiner (a `JoinHandle` is not `Clone` and `join`
//! consumes it) and exactly one completion, so each cell has one writer; the
//! AcqRel transitions hand the cells over. A panic payload is user data whose
//! `Drop` may panic: `DETACHED` lets the completer (the home worker) drop it
//! where it can contain such a panic, instead of in whatever happens to drop
//! the last reference to the task.

use crate::loom::{AtomicU8, Ordering, UnsafeCell};

const RUNNING: u8 = 0;
const WAITING: u8 = 1;
const DONE: u8 = 2;
const DETACHED: u8 = 3;

/// See the module docs. `W` is the waiter, `P` the panic payload.
#[derive(Debug)]
pub(crate) struct JoinCell<W, P> {
    state: AtomicU8,
    waiter: UnsafeCell<Option<W>>,
    panic: UnsafeCell<Option<P>>,
}

// SAFETY: the cells are handed between threads only through the AcqRel
// transitions of `state` (module docs); W and P are Send.
unsafe impl<W: Send, P: Send> Sync for JoinCell<W, P> {}

impl<W, P> JoinCell<W, P> {
    pub(crate) fn new() -> Self {
        JoinCell {
            state: AtomicU8::new(RUNNING),
            waiter: UnsafeCell::new(None),
            panic: UnsafeCell::new(None),
        }
    }

    /// True once completed.
    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }

    /// True once the join handle was dropped before completion (a hint for
    /// the completer: it stays true until `complete`).
    #[inline]
    pub(crate) fn is_detached(&self) -> bool {
        self.state.load(Ordering::Relaxed) == DETACHED
    }

    /// Joiner: registers `w`; false (and `w` dropped) if already completed.
    /// Called at most once.
    pub(crate) fn register(&self, w: W) -> bool {
        if self.is_done() {
            return false;
        }
        // SAFETY: in RUNNING only the (single) joiner touches `waiter`.
        self.waiter.with_mut(|p| unsafe { *p = Some(w) });
        // Release: publishes the waiter to the completer; Acquire on failure:
        // sees the completer's `panic` write.
        match self
            .state
            .compare_exchange(RUNNING, WAITING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(_) => {
                // SAFETY: DONE without a waiter registered: the completer
                // never touches `waiter`, it is still ours.
                drop(self.waiter.with_mut(|p| unsafe { (*p).take() }));
                false
            }
        }
    }

    /// Completer: records the outcome; returns the waiter to wake, if any,
    /// and the payload back if nobody will ever join. Called exactly once.
    pub(crate) fn complete(&self, panic: Option<P>) -> (Option<W>, Option<P>) {
        // SAFETY: before DONE only the completer touches `panic`.
        self.panic.with_mut(|p| unsafe { *p = panic });
        // AcqRel: Release publishes `panic` (and the result slot) to the
        // joiner; Acquire sees the joiner's `waiter` write.
        match self.state.swap(DONE, Ordering::AcqRel) {
            // SAFETY: WAITING: the joiner handed `waiter` over.
            WAITING => (self.waiter.with_mut(|p| unsafe { (*p).take() }), None),
            RUNNING => (None, None),
            // SAFETY: DETACHED: the handle is gone and never reads `panic`;
            // the completer wrote it just above and still owns it.
            DETACHED => (None, self.panic.with_mut(|p| unsafe { (*p).take() })),
            _ => panic!("gopark: coroutine completed twice"),
        }
    }

    /// The join handle is dropped without joining. Returns the panic payload
    /// if the coroutine had completed already (the caller drops it).
    pub(crate) fn detach(&self) -> Option<P> {
        // Acquire on failure: DONE, see the completer's `panic` write.
        match self
            .state
            .compare_exchange(RUNNING, DETACHED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => None,
            // SAFETY: DONE: the completer no longer touches `panic`, and the
            // handle (the only joiner) is being dropped.
            Err(DONE) => self.panic.with_mut(|p| unsafe { (*p).take() }),
            Err(_) => None, // WAITING cannot be seen: `join` consumes the handle
        }
    }

    /// Joiner, after `is_done`: takes the panic payload.
    pub(crate) fn take_panic(&self) -> Option<P> {
        assert!(self.is_done(), "gopark: join before completion");
        // SAFETY: DONE: the completer no longer touches `panic`; there is one
        // joiner.
        self.panic.with_mut(|p| unsafe { (*p).take() })
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;

    /// The joiner registers while the coroutine completes: the joiner is
    /// woken exactly when it registered, and it sees the outcome.
    #[test]
    fn register_races_complete() {
        loom::model(|| {
            let cell = Arc::new(JoinCell::<usize, u32>::new());
            let woken = Arc::new(AtomicUsize::new(0));
            let c = {
                let (cell, woken) = (cell.clone(), woken.clone());
                loom::thread::spawn(move || {
                    if let Some(w) = cell.complete(Some(7)).0 {
                        assert_eq!(w, 1);
                        woken.fetch_add(1, Ordering::SeqCst);
                    }
                })
            };
            let registered = cell.register(1);
            c.join().unwrap();
            assert_eq!(woken.load(Ordering::SeqCst), usize::from(registered));
            assert_eq!(cell.take_panic(), Some(7));
        });
    }

    /// The handle is dropped while the coroutine completes: exactly one side
    /// gets the payload back to drop.
    #[test]
    fn detach_races_complete() {
        loom::model(|| {
            let cell = Arc::new(JoinCell::<usize, u32>::new());
            let c = {
                let cell = cell.clone();
                loom::thread::spawn(move || cell.complete(Some(7)).1)
            };
            let detached = cell.detach();
            let completed = c.join().unwrap();
            assert_eq!(
                usize::from(detached.is_some()) + usize::from(completed.is_some()),
                1
            );
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn complete_before_register() {
        let c = JoinCell::<u8, &str>::new();
        assert_eq!(c.complete(None), (None, None));
        assert!(!c.register(1));
        assert_eq!(c.take_panic(), None);
    }

    #[test]
    fn register_then_complete_hands_back_waiter() {
        let c = JoinCell::<u8, &str>::new();
        assert!(c.register(5));
        assert_eq!(c.complete(Some("boom")), (Some(5), None));
        assert_eq!(c.take_panic(), Some("boom"));
    }

    #[test]
    fn detached_before_completion_hands_the_payload_to_the_completer() {
        let c = JoinCell::<u8, &str>::new();
        assert_eq!(c.detach(), None);
        assert_eq!(c.complete(Some("boom")), (None, Some("boom")));
    }

    #[test]
    fn detached_after_completion_hands_the_payload_to_the_detacher() {
        let c = JoinCell::<u8, &str>::new();
        assert_eq!(c.complete(Some("boom")), (None, None));
        assert_eq!(c.detach(), Some("boom"));
    }
}
