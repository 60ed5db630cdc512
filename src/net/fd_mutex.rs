//! The fdMutex of a socket: the state machine in [`crate::sm::fd_mutex`]
//! (Go's `fdMutex`), with real waiters: a queued op blocks its coroutine or
//! thread with `block_on` and is woken with `Waiter::wake`.
//!
//! One op per direction holds the lock while it is blocked in the poller,
//! which is what makes Go's "double wait" impossible here.
//!
//! A coroutine queued for the lock can be unwound instead of woken (it is
//! dropped with its runtime while it waits on a socket that outlives it); an
//! unwind guard then takes its waiter and its count out of the state machine
//! (`sm::fd_mutex`, *cancel*), or passes the turn an unlock gave it on to
//! the next waiter, so no live op is left asleep on a free lock.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::coroutine::{block_on, Task, Waiter};
use crate::netpoll::{err_closed, PollDesc};
use crate::runtime::worker::current_ctx;
use crate::sm::fd_mutex::{self, Closed, Lock};
use crate::sm::poll_desc::Mode;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct FdMutex {
    sm: fd_mutex::FdMutex<Waiter>,
}

fn closed(_: Closed) -> io::Error {
    err_closed()
}

/// Armed while a coroutine is queued: see the module docs. Disarmed with
/// `mem::forget` once the wait returns normally.
struct Dequeue<'a> {
    mu: &'a FdMutex,
    mode: Mode,
    task: *const Task,
}

impl Drop for Dequeue<'_> {
    fn drop(&mut self) {
        let task = self.task;
        let mine = |w: &Waiter| matches!(w, Waiter::Co(t) if Arc::as_ptr(t) == task);
        if let Some(next) = self.mu.sm.cancel(self.mode, mine) {
            next.wake();
        }
    }
}

impl FdMutex {
    /// Adds a reference for an op that needs no lock (options, addresses,
    /// shutdown). Fails once closed.
    pub(crate) fn incref(&self) -> io::Result<()> {
        self.sm.incref().map_err(closed)
    }

    /// Drops a reference; true if the caller must now release the descriptor.
    pub(crate) fn decref(&self) -> bool {
        self.sm.decref()
    }

    /// Takes the read or write lock (and a reference), queuing behind the
    /// current holder. Fails once closed: `Err(true)` if the caller must
    /// then release the descriptor (the take-back of its fast attempt was
    /// the last op of a closed descriptor, see `sm::fd_mutex`).
    /// A queued coroutine shows in dumps as an IO wait on the descriptor
    /// of the PollDesc `wait_on` returns (with the epoch of its runtime);
    /// it is called only if the op has to queue, so that the fast path
    /// loads nothing for it.
    #[inline]
    pub(crate) fn rwlock<'a>(
        &self,
        mode: Mode,
        wait_on: impl FnOnce() -> (&'a PollDesc, &'a Instant),
    ) -> Result<(), bool> {
        // Fast path, uncontended: one `fetch_add`, inlined into the op.
        if self.sm.try_lock_fast(mode) {
            return Ok(());
        }
        let (pd, epoch) = wait_on();
        self.rwlock_slow(mode, pd, epoch)
    }

    #[cold]
    #[inline(never)]
    fn rwlock_slow(&self, mode: Mode, pd: &PollDesc, epoch: &Instant) -> Result<(), bool> {
        // Take the failed fast attempt back, as an unlock (it may owe a
        // hand-off, or be the last op of a closed descriptor).
        if self.rwunlock(mode) {
            return Err(true);
        }
        loop {
            match self.sm.try_lock(mode) {
                Ok(Lock::Taken) => return Ok(()),
                Ok(Lock::Busy) => {}
                Err(Closed) => return Err(false),
            }
            // Contended: queue, then compete again once woken.
            let guard = current_ctx().map(|ctx| Dequeue {
                mu: self,
                mode,
                task: Arc::as_ptr(ctx.current_task()),
            });
            block_on(&pd.wait_record(epoch, mode, false), |w| {
                self.sm.enqueue(mode, w)
            });
            if let Some(g) = guard {
                // A coroutine its worker resumed without a waker (only at
                // runtime shutdown, see `Task::stale_wakes`) may still be
                // queued: leave the queue before competing again.
                let stale = current_ctx()
                    .is_some_and(|c| c.current_task().stale_wakes.load(Ordering::Relaxed));
                if stale {
                    let task = g.task;
                    self.sm.dequeue_if_queued(
                        mode,
                        |w| matches!(w, Waiter::Co(t) if Arc::as_ptr(t) == task),
                    );
                }
                std::mem::forget(g);
            }
        }
    }

    /// Releases the lock taken by [`rwlock`](Self::rwlock); true if the
    /// caller must now release the descriptor.
    #[inline]
    pub(crate) fn rwunlock(&self, mode: Mode) -> bool {
        // One fetch_sub and one test, inlined; the rest (closed, or a
        // hand-off to a queued op) is out of line. Also the take-back of a
        // failed fast attempt (`rwlock_slow`).
        match self.sm.rwunlock_fast(mode) {
            None => false,
            Some(old) => self.unlock_slow(mode, old),
        }
    }

    #[cold]
    #[inline(never)]
    fn unlock_slow(&self, mode: Mode, old: u64) -> bool {
        let (destroy, waiters) = self.sm.unlocked(mode, old);
        if waiters {
            if let Some(w) = self.sm.handoff(mode) {
                w.wake();
            }
        }
        destroy
    }

    /// Go's `increfAndClose`: marks closed (later ops fail), wakes every
    /// queued op, and takes a reference the caller drops with
    /// [`decref`](Self::decref). False if it was already closed.
    pub(crate) fn incref_and_close(&self) -> bool {
        match self.sm.incref_and_close() {
            None => false,
            Some(woken) => {
                for w in woken {
                    w.wake();
                }
                true
            }
        }
    }

    /// True once closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.sm.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn second_reader_queues_on_a_thread() {
        let m = Arc::new(FdMutex::default());
        let got = Arc::new(AtomicBool::new(false));
        let pd = Arc::new(PollDesc::new(1));
        let epoch = Instant::now();
        m.rwlock(Mode::Read, || (&pd, &epoch)).unwrap();
        let t = {
            let (m, got, pd) = (m.clone(), got.clone(), pd.clone());
            std::thread::spawn(move || {
                m.rwlock(Mode::Read, || (&pd, &epoch)).unwrap();
                got.store(true, Ordering::SeqCst);
                m.rwunlock(Mode::Read);
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!got.load(Ordering::SeqCst));
        m.rwunlock(Mode::Read);
        t.join().unwrap();
        assert!(got.load(Ordering::SeqCst));
    }
}
