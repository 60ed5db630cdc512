//! Per-worker timers (Go's per-P timer heap).
//!
//! A worker's heap is behind a mutex because deadlines may be set from any
//! thread; the owner's lock is uncontended in the common case. `next` mirrors
//! the earliest deadline (in nanoseconds since the runtime's epoch, `u64::MAX`
//! for none) so the scheduler can check for due timers with one atomic load
//! and no lock. Timers are never cancelled: a stale one (a sleep that already
//! returned, a deadline since moved) fires and does nothing, because every
//! action checks a sequence number or generation before it wakes anyone.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::coroutine::{self, Task};

/// What a timer does when it fires.
pub(crate) enum Action {
    /// Ready a coroutine parked in `sleep` (its only waker is this timer).
    Ready(Arc<Task>),
    /// Unpark a coroutine parked in `park_timeout`, if it is still in the
    /// park of this generation.
    Unpark(Arc<Task>, u32),
    /// Anything else (netpoll deadlines); the closure does its own checks.
    Call(Box<dyn FnOnce() + Send>),
}

impl Action {
    /// Carries the action out (on the worker that owns the heap).
    pub(crate) fn fire(self) {
        match self {
            Action::Ready(task) => coroutine::ready(task),
            Action::Unpark(task, gen) => {
                if task.token.unpark_gen(gen) {
                    coroutine::ready(task);
                }
            }
            Action::Call(f) => f(),
        }
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Ready(t) => f.debug_tuple("Ready").field(&t.id).finish(),
            Action::Unpark(t, g) => f.debug_tuple("Unpark").field(&t.id).field(g).finish(),
            Action::Call(_) => f.write_str("Call(..)"),
        }
    }
}

struct Entry {
    when: u64,
    seq: u64,
    action: Action,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.when, self.seq) == (other.when, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap, we want the earliest on top.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.when, other.seq).cmp(&(self.when, self.seq))
    }
}

#[derive(Default)]
struct Heap {
    entries: BinaryHeap<Entry>,
    seq: u64,
}

/// One worker's timers.
pub(crate) struct Timers {
    heap: Mutex<Heap>,
    /// Earliest `when` in the heap, `u64::MAX` if empty.
    next: AtomicU64,
}

impl fmt::Debug for Timers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timers")
            .field("next", &self.next.load(Ordering::Relaxed))
            .finish()
    }
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            heap: Mutex::new(Heap::default()),
            next: AtomicU64::new(u64::MAX),
        }
    }

    /// Adds a timer; returns true if it is now the earliest one (a sleeping
    /// owner must then be woken to shorten its sleep).
    pub(crate) fn add(&self, when: u64, action: Action) -> bool {
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        h.seq += 1;
        let seq = h.seq;
        h.entries.push(Entry { when, seq, action });
        let earliest = self.next.load(Ordering::Relaxed) > when;
        if earliest {
            self.next.store(when, Ordering::Release);
        }
        earliest
    }

    /// Earliest deadline, `u64::MAX` if none.
    #[inline]
    pub(crate) fn next(&self) -> u64 {
        self.next.load(Ordering::Acquire)
    }

    /// Removes every timer due at `now` into `out`.
    pub(crate) fn take_due(&self, now: u64, out: &mut Vec<Action>) {
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        while h.entries.peek().is_some_and(|e| e.when <= now) {
            if let Some(e) = h.entries.pop() {
                out.push(e.action);
            }
        }
        let next = h.entries.peek().map_or(u64::MAX, |e| e.when);
        self.next.store(next, Ordering::Release);
    }

    /// Removes every timer (runtime shutdown).
    pub(crate) fn take_all(&self, out: &mut Vec<Action>) {
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        out.extend(h.entries.drain().map(|e| e.action));
        self.next.store(u64::MAX, Ordering::Release);
    }

    /// Number of pending timers.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.lock().unwrap().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn fires_in_order_and_tracks_next() {
        let t = Timers::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        for when in [30u64, 10, 20, 10] {
            let log = log.clone();
            t.add(
                when,
                Action::Call(Box::new(move || log.lock().unwrap().push(when))),
            );
        }
        assert_eq!(t.next(), 10);
        let mut due = Vec::new();
        t.take_due(20, &mut due);
        due.into_iter().for_each(Action::fire);
        assert_eq!(*log.lock().unwrap(), vec![10, 10, 20]);
        assert_eq!(t.next(), 30);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn add_reports_new_earliest() {
        let t = Timers::new();
        let n = Arc::new(AtomicUsize::new(0));
        let mk = || {
            let n = n.clone();
            Action::Call(Box::new(move || {
                n.fetch_add(1, Ordering::Relaxed);
            }))
        };
        assert!(t.add(100, mk()));
        assert!(!t.add(200, mk()));
        assert!(t.add(50, mk()));
        let mut all = Vec::new();
        t.take_all(&mut all);
        assert_eq!(all.len(), 3);
        assert_eq!(t.next(), u64::MAX);
    }
}
