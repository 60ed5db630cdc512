//! A worker's sleep state: the handshake that makes a wake-up impossible to
//! lose between "I found no work" and "I am asleep".
//!
//! States: `AWAKE`, `PARKED` (asleep on its thread parker), `POLLING` (blocked
//! in `epoll_wait` on its own poller shard; every worker of a runtime sleeps
//! this way, see `netpoll`).
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
//!    the eventfd of the worker's poller shard).
//!
//! The fences matter: the queues' own operations are only Release/Acquire,
//! and store-then-load on different locations needs a full fence on both
//! sides (loom finds the lost wake-up without them).
//!
//! Either the worker's re-check sees the work, or the producer's swap sees the
//! sleeping state. Both wake mechanisms remember a wake that arrives before the
//! worker blocks (a thread's park token; an eventfd counter), so the worker
//! cannot sleep through it. Each worker has its own state and its own
//! eventfd, so a wake reaches exactly the worker it is meant for; a wake whose
//! swap raced with the worker waking up for another reason leaves a stale
//! eventfd count behind, which only makes the next sleep return at once (the
//! worker then re-checks and sleeps again).

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

    /// Back to awake after a sleep; true if a producer's [`wake`] ended it
    /// (it had already swapped the state to `AWAKE`), false if the sleep
    /// ended by itself (readiness, a timer, the timeout). The same cost as
    /// [`finish`]: a SeqCst store is an exchange on x86 as well.
    ///
    /// [`wake`]: SleepState::wake
    /// [`finish`]: SleepState::finish
    pub(crate) fn finish_woken(&self) -> bool {
        self.0.swap(AWAKE, Ordering::SeqCst) == AWAKE
    }

    /// True while the worker announced or is in a sleep (read by the stall
    /// monitor).
    pub(crate) fn is_asleep(&self) -> bool {
        self.0.load(Ordering::SeqCst) != AWAKE
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

    /// An eventfd as the model sees it: the thread's park token stands for
    /// the counter (it remembers a wake that comes before the block), and a
    /// pending flag collapses duplicate wakes as `netpoll::Poller::wake`
    /// does; a blocking poll consumes the token, then clears the flag.
    struct EventFd {
        sig: crate::loom::AtomicBool,
    }

    impl EventFd {
        fn new() -> EventFd {
            EventFd {
                sig: crate::loom::AtomicBool::new(false),
            }
        }

        fn wake(&self, worker: &loom::thread::Thread) {
            if !self.sig.swap(true, Ordering::SeqCst) {
                worker.unpark();
            }
        }

        /// A blocking poll: returns once a wake is pending, and drains it.
        fn poll(&self) {
            loom::thread::park();
            self.sig.store(false, Ordering::SeqCst);
        }
    }

    /// A worker sleeping in its poller shard (POLLING, woken through its
    /// eventfd) over `rounds` sleeps, fed one item per round by a producer.
    fn shard_worker(state: &SleepState, inbox: &AtomicUsize, efd: &EventFd, rounds: usize) {
        let mut got = 0;
        while got < rounds {
            if inbox.load(Ordering::SeqCst) > got {
                got += 1;
                continue;
            }
            state.prepare(true);
            if inbox.load(Ordering::SeqCst) > got {
                state.finish();
                continue;
            }
            efd.poll();
            state.finish();
        }
    }

    fn produce(
        state: &SleepState,
        inbox: &AtomicUsize,
        efd: &EventFd,
        worker: &loom::thread::Thread,
    ) {
        inbox.fetch_add(1, Ordering::SeqCst);
        match state.wake() {
            Wake::Poller => efd.wake(worker),
            Wake::None => {}
            Wake::Thread => unreachable!("workers sleep in their shard"),
        }
    }

    /// A wake whose swap raced with the worker waking up for another reason
    /// left a stale eventfd count (and the pending flag) behind: the next
    /// sleep returns at once, clears it, re-checks and sleeps again, and a
    /// new wake still reaches it.
    ///
    /// (The stale wake is set up before the model runs rather than produced
    /// by an earlier round: loom orders the stores of concurrent threads
    /// only partially, so a `swap` racing with the worker's stores may read
    /// a value that is not the latest, which the C++ model forbids (an RMW
    /// reads the last value in modification order); that reports lost
    /// wake-ups that cannot happen.)
    #[test]
    fn no_lost_wakeup_in_a_shard_after_a_stale_wake() {
        loom::model(|| {
            let state = Arc::new(SleepState::new());
            let inbox = Arc::new(AtomicUsize::new(0));
            let efd = Arc::new(EventFd::new());
            efd.sig.store(true, Ordering::SeqCst);
            let worker = {
                let (state, inbox, efd) = (state.clone(), inbox.clone(), efd.clone());
                loom::thread::spawn(move || shard_worker(&state, &inbox, &efd, 1))
            };
            worker.thread().unpark(); // the stale eventfd count
            produce(&state, &inbox, &efd, worker.thread());
            worker.join().unwrap();
        });
    }

    /// Two workers, each sleeping in its own shard; the producer hands one
    /// item to each and wakes each through its own eventfd.
    #[test]
    fn no_lost_wakeup_with_two_shards() {
        loom::model(|| {
            let states = Arc::new([SleepState::new(), SleepState::new()]);
            let inboxes = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
            let efds = Arc::new([EventFd::new(), EventFd::new()]);
            let workers: Vec<_> = (0..2)
                .map(|w| {
                    let (states, inboxes, efds) = (states.clone(), inboxes.clone(), efds.clone());
                    loom::thread::spawn(move || shard_worker(&states[w], &inboxes[w], &efds[w], 1))
                })
                .collect();
            for w in 0..2 {
                produce(&states[w], &inboxes[w], &efds[w], workers[w].thread());
            }
            for t in workers {
                t.join().unwrap();
            }
        });
    }
}
