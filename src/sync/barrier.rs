//! A barrier for coroutines and threads.

use std::fmt;
use std::sync::Mutex as StdMutex;

use super::waiter::{self, lock, Node, OnDrop, Parker, WaitList};
use crate::wait::Wait;
use crate::CoroutineState;

/// Lets `n` parties wait for each other: each [`wait`](Self::wait) parks
/// until `n` parties are waiting, then all continue. Reusable.
///
/// ```
/// use std::sync::Arc;
/// let b = Arc::new(gopark::sync::Barrier::new(3));
/// let hs: Vec<_> = (0..3).map(|_| {
///     let b = b.clone();
///     gopark::go!(move || b.wait().is_leader())
/// }).collect();
/// let leaders = hs.into_iter().map(|h| h.join().unwrap()).filter(|&l| l).count();
/// assert_eq!(leaders, 1);
/// ```
pub struct Barrier {
    n: usize,
    state: StdMutex<State>,
}

struct State {
    /// Parties waiting in the current generation.
    count: usize,
    waiters: WaitList<()>,
}

/// What [`Barrier::wait`] returns: one party per generation is the leader.
///
/// ```
/// let b = gopark::sync::Barrier::new(1);
/// assert!(b.wait().is_leader());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// True for exactly one party of each generation (the last to arrive).
    ///
    /// ```
    /// assert!(gopark::sync::Barrier::new(1).wait().is_leader());
    /// ```
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` parties (`n == 0` behaves like 1).
    ///
    /// ```
    /// // A lone party is its own leader; `new(0)` is the same as `new(1)`.
    /// assert!(gopark::sync::Barrier::new(1).wait().is_leader());
    /// assert!(gopark::sync::Barrier::new(0).wait().is_leader());
    /// ```
    pub fn new(n: usize) -> Barrier {
        Barrier {
            n: n.max(1),
            state: StdMutex::new(State {
                count: 0,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Parks until `n` parties have called `wait`.
    ///
    /// ```
    /// let b = std::sync::Arc::new(gopark::sync::Barrier::new(2));
    /// let b2 = b.clone();
    /// let h = gopark::go!(move || { b2.wait(); });
    /// b.wait();
    /// h.join().unwrap();
    /// ```
    pub fn wait(&self) -> BarrierWaitResult {
        let mut st = lock(&self.state);
        st.count += 1;
        if st.count == self.n {
            st.count = 0;
            let mut wakes = Vec::with_capacity(self.n - 1);
            waiter::drain_all(&mut st.waiters, false, &mut wakes);
            drop(st);
            for w in wakes {
                w.wake();
            }
            return BarrierWaitResult(true);
        }
        let parker = Parker::new(None);
        let node = Node::new(None);
        node.prepare(parker.waiter(), 1);
        // SAFETY: `node` stays in this frame until popped by the leader or
        // unlinked by `cleanup` (declared after it, dropped first, also on
        // unwind).
        unsafe { st.waiters.push_back(&node) };
        let cleanup = OnDrop::new(|| {
            let mut st = lock(&self.state);
            // SAFETY: the node was only ever linked in this list.
            if unsafe { st.waiters.remove(&node) } {
                st.count -= 1;
            }
        });
        parker.park(st, Wait::on(CoroutineState::Barrier, self));
        cleanup.disarm();
        BarrierWaitResult(false)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").field("n", &self.n).finish()
    }
}
