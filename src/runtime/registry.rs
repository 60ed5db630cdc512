//! A worker's registry of live coroutines (Go's `allgs`, per worker).
//!
//! It holds an `Arc` of every started, unfinished coroutine of the worker:
//! it keeps them alive while parked, lets shutdown unwind them on their
//! worker, and lets a dump or the monitor list them from another thread.
//!
//! The registry sits behind a per-worker mutex, taken by the owner only when
//! a coroutine first runs there (insert) and when it ends or is leaked
//! (remove), and by readers: the dump (which clones the `Arc`s and lets go
//! at once), the stall monitor (which reads the running task's name under
//! it), the deadlock check, and the worker's shutdown. Parks, wake-ups and
//! resumes never touch it. Rejected: an owner-only registry with a
//! lock-free published copy, which would need deferred reclamation of the
//! task records for a reader racing with a finish; the uncontended lock on
//! spawn and finish is cheaper than that machinery (one lock on spawn is
//! new: the finish path took the monitor slot's lock already, and that lock
//! is this one now).

use std::sync::{Arc, Mutex, MutexGuard};

use crate::coroutine::Task;

/// The live coroutines of one worker (see the module docs).
#[derive(Default)]
pub(crate) struct Registry {
    slots: Vec<Option<Arc<Task>>>,
    free: Vec<usize>,
}

impl Registry {
    /// Adds a task; returns its slot (kept in `TaskLocal::slot`).
    #[inline]
    pub(crate) fn insert(&mut self, task: Arc<Task>) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(task);
                i
            }
            None => {
                self.slots.push(Some(task));
                self.slots.len() - 1
            }
        }
    }

    /// The live coroutines.
    pub(crate) fn tasks(&self) -> Vec<Arc<Task>> {
        self.iter().cloned().collect()
    }

    /// Iterates over the live coroutines.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Task>> {
        self.slots.iter().flatten()
    }

    /// Number of live coroutines.
    pub(crate) fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Removes the task in slot `i`, if any.
    #[inline]
    pub(crate) fn remove(&mut self, i: usize) -> Option<Arc<Task>> {
        let t = self.slots.get_mut(i)?.take();
        if t.is_some() {
            self.free.push(i);
        }
        t
    }
}

/// Locks a worker's registry, ignoring poisoning (no user code runs under
/// it; its invariants hold between statements).
#[inline]
pub(crate) fn lock(m: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
