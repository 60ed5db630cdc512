//! A worker's sleep state: the handshake that makes a wake-up impossible to
//! lose between "I found no work" and "I am asleep".
//!
//! States: `AWAKE`, `PARKED` (asleep on its thread parker), `POLLING` (the one
//! worker blocked in `epoll_wait`).
//!
//! Protocol (Dekker style, a SeqCst fence on each side):
//!
//! 1. The worker stores `PARKED` or `POLLING` ([`SleepState::prepare`], which
//!    ends with a SeqCst fence), then re-checks every queue it could be given
//!    work through; if it finds work it stores `AWAKE` and runs it, otherwise
//!    it blocks.
//! 2. A producer first pushes its work, then ([`SleepState::wake`]) issues a
//!    SeqCst fence, loads the state and, if the worker sleeps, swaps it to
//!    `AWAKE` and unblocks it the way the old state says (thread unpark, or
//!    the poller's eventfd).
//!
//! The fences matter: the queues' own operations are only Release/Acquire,
//! and store-then-load on different locations needs a full fence on both
//! sides (loom finds the lost wake-up without them).
//!
//! Either the worker's re-check sees the work, or the producer's swap sees the
//! sleeping state. Both wake mechanisms remember a wake that arrives before the
//! worker blocks (a thread's park token; an eventfd counter), so the worker
//! cannot sleep through it.

use crate::loom::{fence, AtomicU8, Ordering};

/// Not sleeping.
const AWAKE: u8 = 0;
/// Asleep on the thread parker.
const PARKED: u8 = 1;
/// Blocked in the poller.
const POLLING: u8 = 2;

/// How a sleeping worker must be woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// It was awake: nothing to do.
    None,
    /// Unpark its thread.
    Thread,
    /// Break its `epoll_wait`.
    Poller,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct SleepState(AtomicU8);

impl SleepState {
    pub(crate) fn new() -> SleepState {
        SleepState(AtomicU8::new(AWAKE))
    }

    /// Step 1: announce the coming sleep (then re-check the queues).
    pub(crate) fn prepare(&self, polling: bool) {
        self.0
            .store(if polling { POLLING } else { PARKED }, Ordering::SeqCst);
        // Pairs with the fence in `wake`: orders this store before the
        // caller's re-check of the queues.
        fence(Ordering::SeqCst);
    }

    /// Back to awake (after waking, or when the re-check found work).
    pub(crate) fn finish(&self) {
        self.0.store(AWAKE, Ordering::SeqCst);
    }

    /// Step 2, producer side, after the push.
    pub(crate) fn wake(&self) -> Wake {
        // Pairs with the fence in `prepare`: orders the caller's push before
        // this load.
        fence(Ordering::SeqCst);
        // Cheap check first: an awake worker needs no RMW (the common case
        // when the runtime is busy).
        if self.0.load(Ordering::SeqCst) == AWAKE {
            return Wake::None;
        }
        match self.0.swap(AWAKE, Ordering::SeqCst) {
            PARKED => Wake::Thread,
            POLLING => Wake::Poller,
            _ => Wake::None,
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;

    /// A producer pushes one item and wakes; the worker prepares, re-checks
    /// and parks. The worker always ends up with the item.
    #[test]
    fn no_lost_wakeup() {
        loom::model(|| {
            let state = Arc::new(SleepState::new());
            let queue = Arc::new(AtomicUsize::new(0));
            let worker = {
                let (state, queue) = (state.clone(), queue.clone());
                loom::thread::spawn(move || loop {
                    if queue.load(Ordering::SeqCst) == 1 {
                        return;
                    }
                    state.prepare(false);
                    if queue.load(Ordering::SeqCst) == 1 {
                        state.finish();
                        return;
                    }
                    loom::thread::park();
                    state.finish();
                })
            };
            queue.store(1, Ordering::SeqCst);
            if state.wake() == Wake::Thread {
                worker.thread().unpark();
            }
            worker.join().unwrap();
        });
    }
}
