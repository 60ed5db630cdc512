//! Go's `fdMutex` (internal/poll/fd_mutex.go): serialises the readers and
//! the writers of one descriptor and counts the ops in flight, so that the
//! descriptor is closed only when the last op has finished.
//!
//! ```text
//!  63          43 42          23 22                3  2   1   0
//! +--------------+--------------+-------------------+---+---+---+
//! | write waiters| read waiters |  references       | W | R | C |
//! +--------------+--------------+-------------------+---+---+---+
//! ```
//! `C` closed, `R`/`W` the read/write lock, references = ops in flight
//! (lock holders included) plus one for the close in progress.
//!
//! Fast path: one CAS to lock (set the bit, add a reference) and one to
//! unlock; no lock, no allocation. A second reader (or writer) that finds
//! the bit set queues: under the `queues` mutex it adds itself to the
//! waiter count with a CAS and pushes its [`Waiter`]; the unlocker that
//! takes a waiter count off (in its unlocking CAS) pops one waiter and wakes
//! it, and the woken op competes for the lock again. Close sets `C`, clears
//! the waiter counts and wakes every queued op; they see `C` and fail. The
//! op whose unlock (or the close whose decref) drops the references to zero
//! with `C` set must destroy the descriptor.
//!
//! One op per direction holds the lock while it is blocked in the poller,
//! which is what makes Go's "double wait" impossible here.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::coroutine::{block_on, Waiter};
use crate::netpoll::err_closed;
use crate::sm::poll_desc::Mode;

const CLOSED: u64 = 1;
const RLOCK: u64 = 1 << 1;
const WLOCK: u64 = 1 << 2;
const REF: u64 = 1 << 3;
const REF_MASK: u64 = ((1 << 20) - 1) << 3;
const RWAIT: u64 = 1 << 23;
const RWAIT_MASK: u64 = ((1 << 20) - 1) << 23;
const WWAIT: u64 = 1 << 43;
const WWAIT_MASK: u64 = ((1 << 20) - 1) << 43;

fn bits(mode: Mode) -> (u64, u64, u64) {
    match mode {
        Mode::Read => (RLOCK, RWAIT, RWAIT_MASK),
        Mode::Write => (WLOCK, WWAIT, WWAIT_MASK),
    }
}

fn too_many() -> ! {
    panic!("gopark: too many concurrent operations on one descriptor")
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct FdMutex {
    state: AtomicU64,
    /// Queued readers and writers.
    queues: Mutex<[VecDeque<Waiter>; 2]>,
}

impl std::fmt::Debug for FdMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FdMutex")
            .field(
                "state",
                &format_args!("{:#x}", self.state.load(Ordering::Relaxed)),
            )
            .finish()
    }
}

impl FdMutex {
    /// Adds a reference for an op that needs no lock (options, addresses,
    /// shutdown). Fails once closed.
    pub(crate) fn incref(&self) -> io::Result<()> {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & CLOSED != 0 {
                return Err(err_closed());
            }
            if s & REF_MASK == REF_MASK {
                too_many();
            }
            match self
                .state
                .compare_exchange_weak(s, s + REF, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(v) => s = v,
            }
        }
    }

    /// Drops a reference; true if the caller must now destroy the descriptor.
    pub(crate) fn decref(&self) -> bool {
        let new = self.state.fetch_sub(REF, Ordering::AcqRel) - REF;
        new & (CLOSED | REF_MASK) == CLOSED
    }

    /// Takes the read or write lock (and a reference), queuing behind the
    /// current holder. Fails once closed.
    #[inline]
    pub(crate) fn rwlock(&self, mode: Mode) -> io::Result<()> {
        // Fast path, uncontended: one load and one CAS, inlined into the op.
        let (lock, _, _) = bits(mode);
        let s = self.state.load(Ordering::Relaxed);
        if s & (CLOSED | lock) == 0
            && s & REF_MASK != REF_MASK
            // Acquire: pairs with the previous holder's Release unlock.
            && self
                .state
                .compare_exchange_weak(s, (s | lock) + REF, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return Ok(());
        }
        self.rwlock_slow(mode)
    }

    #[cold]
    #[inline(never)]
    fn rwlock_slow(&self, mode: Mode) -> io::Result<()> {
        let (lock, wait, wait_mask) = bits(mode);
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & CLOSED != 0 {
                return Err(err_closed());
            }
            if s & lock == 0 {
                if s & REF_MASK == REF_MASK {
                    too_many();
                }
                // Acquire: pairs with the previous holder's Release unlock.
                if self
                    .state
                    .compare_exchange_weak(
                        s,
                        (s | lock) + REF,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    return Ok(());
                }
                continue;
            }
            // Contended: queue, then compete again once woken.
            block_on(|w| {
                let mut q = self.queues.lock().unwrap_or_else(|e| e.into_inner());
                let mut s = self.state.load(Ordering::Relaxed);
                loop {
                    if s & CLOSED != 0 || s & lock == 0 {
                        return false; // retry at once
                    }
                    if s & wait_mask == wait_mask {
                        too_many();
                    }
                    match self.state.compare_exchange_weak(
                        s,
                        s + wait,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break,
                        Err(v) => s = v,
                    }
                }
                q[mode as usize].push_back(w);
                true
            });
        }
    }

    /// Releases the lock taken by [`rwlock`](Self::rwlock); true if the
    /// caller must now destroy the descriptor.
    #[inline]
    pub(crate) fn rwunlock(&self, mode: Mode) -> bool {
        // Fast path, nobody queued: one load and one CAS, inlined.
        let (lock, _, wait_mask) = bits(mode);
        let s = self.state.load(Ordering::Relaxed);
        if s & wait_mask == 0 {
            debug_assert!(
                s & lock != 0 && s & REF_MASK != 0,
                "gopark: inconsistent fdMutex"
            );
            let new = (s & !lock) - REF;
            // Release: publishes the holder's writes to the next holder.
            if self
                .state
                .compare_exchange_weak(s, new, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return new & (CLOSED | REF_MASK) == CLOSED;
            }
        }
        self.rwunlock_slow(mode)
    }

    #[cold]
    #[inline(never)]
    fn rwunlock_slow(&self, mode: Mode) -> bool {
        let (lock, wait, wait_mask) = bits(mode);
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            debug_assert!(
                s & lock != 0 && s & REF_MASK != 0,
                "gopark: inconsistent fdMutex"
            );
            let mut new = (s & !lock) - REF;
            let wake = s & wait_mask != 0;
            if wake {
                new -= wait;
            }
            // Release: publishes the holder's writes to the next holder.
            match self
                .state
                .compare_exchange_weak(s, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    if wake {
                        let w = {
                            let mut q = self.queues.lock().unwrap_or_else(|e| e.into_inner());
                            q[mode as usize].pop_front()
                        };
                        // None: a close woke every waiter in between.
                        if let Some(w) = w {
                            w.wake();
                        }
                    }
                    return new & (CLOSED | REF_MASK) == CLOSED;
                }
                Err(v) => s = v,
            }
        }
    }

    /// Go's `increfAndClose`: marks closed (later ops fail), wakes every
    /// queued op, and takes a reference the caller drops with
    /// [`decref`](Self::decref). False if it was already closed.
    pub(crate) fn incref_and_close(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & CLOSED != 0 {
                return false;
            }
            let new = ((s | CLOSED) + REF) & !(RWAIT_MASK | WWAIT_MASK);
            match self
                .state
                .compare_exchange_weak(s, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(v) => s = v,
            }
        }
        let woken: Vec<Waiter> = {
            let mut q = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            q.iter_mut().flat_map(|q| q.drain(..)).collect()
        };
        for w in woken {
            w.wake();
        }
        true
    }

    /// True once closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_unlock_close() {
        let m = FdMutex::default();
        m.rwlock(Mode::Read).unwrap();
        m.rwlock(Mode::Write).unwrap();
        assert!(!m.rwunlock(Mode::Write));
        assert!(m.incref_and_close());
        assert!(!m.incref_and_close());
        assert!(m.rwlock(Mode::Write).is_err());
        assert!(!m.decref(), "the reader still holds a reference");
        assert!(m.rwunlock(Mode::Read), "last reference of a closed fd");
    }

    #[test]
    fn second_reader_queues_on_a_thread() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let m = Arc::new(FdMutex::default());
        let got = Arc::new(AtomicBool::new(false));
        m.rwlock(Mode::Read).unwrap();
        let t = {
            let (m, got) = (m.clone(), got.clone());
            std::thread::spawn(move || {
                m.rwlock(Mode::Read).unwrap();
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
