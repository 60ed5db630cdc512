//! Go's `fdMutex` (internal/poll/fd_mutex.go): serialises the readers and
//! the writers of one descriptor and counts the ops in flight, so that the
//! descriptor is released only when the last op has finished. Generic over
//! the waiter type `W` so that loom can model it; `net::fd_mutex` blocks
//! and wakes real coroutines and threads with it.
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
//! ## Transitions
//! - *lock* (fast path, one CAS): `R`/`W` clear and not closed: set it and
//!   add a reference. No mutex, no allocation.
//! - *queue* ([`FdMutex::enqueue`], under the `queues` mutex): the bit is
//!   set: add one to the direction's waiter count and push the waiter. If the
//!   bit is clear or `C` set by then, the op retries at once instead.
//! - *unlock* ([`FdMutex::rwunlock_fast`], one `fetch_sub`): clear the bit
//!   and drop the reference, whatever else the word holds. If the old value
//!   counted waiters of that direction, the unlocker then *hands off*
//!   ([`FdMutex::handoff`], under the mutex): if the lock is still free and
//!   not closed and a waiter is still counted, it takes one off the count
//!   and pops the first waiter to be woken; it competes for the lock again.
//!   If another op took the lock in between, that op's unlock hands off
//!   instead.
//! - *close* ([`FdMutex::incref_and_close`], under the mutex): set `C`,
//!   clear both waiter counts, drain both queues; every queued op wakes,
//!   sees `C` and fails.
//! - *cancel* ([`FdMutex::cancel`], under the mutex): a queued op that is
//!   unwound instead of woken (its coroutine is dropped while it waits)
//!   removes its waiter and takes one off the count. If it is not queued any
//!   more, an unlock popped it and owed it a turn: if the lock is free and
//!   others wait, it pops the next one to be woken in its place.
//!
//! ## Invariant
//! Every change of a waiter count happens under the `queues` mutex, together
//! with the matching push, pop or removal: whenever the mutex is free, each
//! count equals its queue's length. That is what makes *cancel* exact (its
//! waiter is either in the queue and counted, or neither), and why no waiter
//! can sleep on a free lock: a count is non-zero exactly when someone is
//! queued, so the unlock that clears the bit sees it, and its hand-off (or
//! that of a later holder's unlock, if the lock was taken again first) pops
//! one. A waiter queues only with a CAS that finds the bit set, so it is
//! counted before the unlock's `fetch_sub` or retries at once. The lock-only
//! transitions (lock and unlock) leave the counts alone.
//!
//! ## The reference count cannot overflow on the lock paths
//! A lock adds a reference only while its direction's bit is clear, so the
//! two locks hold at most two references and the close one more: the
//! references of lock-free ops ([`FdMutex::incref`]) stop
//! [`RESERVED`] short of the field's maximum, and the locks need no check.
//!
//! The op whose unlock (or the close whose decref) drops the references to
//! zero with `C` set must release the descriptor.

use std::collections::VecDeque;

use crate::loom::{AtomicU64, Mutex, Ordering};
use crate::sm::poll_desc::Mode;

const CLOSED: u64 = 1;
const RLOCK: u64 = 1 << 1;
const WLOCK: u64 = 1 << 2;
const REF: u64 = 1 << 3;
const REF_MASK: u64 = ((1 << 20) - 1) << 3;
/// References kept free for the two locks and the close (module docs).
const RESERVED: u64 = 3;
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

/// The descriptor is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// Result of one attempt to take the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// Taken (with a reference).
    Taken,
    /// Held by another op: queue with [`FdMutex::enqueue`].
    Busy,
}

/// See the module docs.
pub(crate) struct FdMutex<W> {
    state: AtomicU64,
    /// Queued readers and writers.
    queues: Mutex<[VecDeque<W>; 2]>,
}

impl<W> Default for FdMutex<W> {
    fn default() -> Self {
        FdMutex {
            state: AtomicU64::new(0),
            queues: Mutex::new([VecDeque::new(), VecDeque::new()]),
        }
    }
}

impl<W> std::fmt::Debug for FdMutex<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FdMutex")
            .field(
                "state",
                &format_args!("{:#x}", self.state.load(Ordering::Relaxed)),
            )
            .finish()
    }
}

impl<W> FdMutex<W> {
    fn queues(&self) -> impl std::ops::DerefMut<Target = [VecDeque<W>; 2]> + '_ {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a reference for an op that needs no lock (options, addresses,
    /// shutdown). Fails once closed.
    pub(crate) fn incref(&self) -> Result<(), Closed> {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & CLOSED != 0 {
                return Err(Closed);
            }
            if s & REF_MASK >= REF_MASK - RESERVED * REF {
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

    /// Drops a reference; true if the caller must now release the descriptor.
    pub(crate) fn decref(&self) -> bool {
        let new = self.state.fetch_sub(REF, Ordering::AcqRel) - REF;
        new & (CLOSED | REF_MASK) == CLOSED
    }

    /// Fast path of taking the lock, uncontended: one load and one CAS
    /// (no overflow check: module docs).
    #[inline]
    pub(crate) fn try_lock_fast(&self, mode: Mode) -> bool {
        let (lock, _, _) = bits(mode);
        let s = self.state.load(Ordering::Relaxed);
        debug_assert!(s & REF_MASK < REF_MASK, "gopark: fdMutex references");
        s & (CLOSED | lock) == 0
            // Acquire: pairs with the previous holder's Release unlock.
            && self
                .state
                .compare_exchange_weak(s, (s | lock) + REF, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Takes the lock if it is free; fails once closed.
    pub(crate) fn try_lock(&self, mode: Mode) -> Result<Lock, Closed> {
        let (lock, _, _) = bits(mode);
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & CLOSED != 0 {
                return Err(Closed);
            }
            if s & lock != 0 {
                return Ok(Lock::Busy);
            }
            debug_assert!(s & REF_MASK < REF_MASK, "gopark: fdMutex references");
            // Acquire: pairs with the previous holder's Release unlock.
            match self.state.compare_exchange_weak(
                s,
                (s | lock) + REF,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(Lock::Taken),
                Err(v) => s = v,
            }
        }
    }

    /// Queues `w` behind the lock's holder; false (and `w` is dropped) if
    /// the lock is free or the descriptor closed by now: retry at once.
    pub(crate) fn enqueue(&self, mode: Mode, w: W) -> bool {
        let (lock, wait, wait_mask) = bits(mode);
        let mut q = self.queues();
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & CLOSED != 0 || s & lock == 0 {
                return false;
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
    }

    /// Releases the lock taken by [`try_lock`](Self::try_lock) or
    /// [`try_lock_fast`](Self::try_lock_fast): one `fetch_sub` clears the
    /// bit and drops the reference. `None` in the common case, found with
    /// one test of the old word: not closed and no waiter of `mode`
    /// counted, so nothing is left to do. Otherwise the old word, for
    /// [`unlocked`](Self::unlocked).
    #[inline]
    pub(crate) fn rwunlock_fast(&self, mode: Mode) -> Option<u64> {
        let (lock, _, wait_mask) = bits(mode);
        // Release: publishes the holder's writes to the next holder, as the
        // slow lock path's and the fast lock's Acquire CAS read from this
        // (or a later) value of the word; Acquire: the unlock that drops
        // the last reference of a closed descriptor releases it after every
        // other op's writes (as `decref`).
        let old = self.state.fetch_sub(lock + REF, Ordering::AcqRel);
        debug_assert!(
            old & lock != 0 && old & REF_MASK != 0,
            "gopark: inconsistent fdMutex"
        );
        // `C` is never cleared, so the new word has it only if the old one
        // did: without it there is nothing to release.
        if old & (CLOSED | wait_mask) == 0 {
            return None;
        }
        Some(old)
    }

    /// What is left to do after an unlock of `mode` whose old word
    /// [`rwunlock_fast`](Self::rwunlock_fast) returned: whether the caller
    /// must release the descriptor, and whether waiters were counted: then
    /// the caller calls [`handoff`](Self::handoff) (module docs, *unlock*).
    pub(crate) fn unlocked(mode: Mode, old: u64) -> (bool, bool) {
        let (lock, _, wait_mask) = bits(mode);
        let new = old - lock - REF;
        (new & (CLOSED | REF_MASK) == CLOSED, old & wait_mask != 0)
    }

    /// The unlock's hand-off when waiters were counted (module docs): the
    /// waiter to wake (after this returns; the mutex is no longer held), if
    /// the lock is still free, not closed, and someone still waits.
    #[cold]
    pub(crate) fn handoff(&self, mode: Mode) -> Option<W> {
        let mut q = self.queues();
        self.pop_next(mode, &mut q[mode as usize])
    }

    /// Takes the first waiter of `q` (`mode`'s queue, mutex held) with its
    /// count, if the lock is free, not closed, and a waiter is counted.
    fn pop_next(&self, mode: Mode, q: &mut VecDeque<W>) -> Option<W> {
        let (lock, wait, wait_mask) = bits(mode);
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & (CLOSED | lock) != 0 || s & wait_mask == 0 {
                // Closed (the close woke everyone), taken again (its unlock
                // hands off), or nobody waits any more.
                return None;
            }
            match self.state.compare_exchange_weak(
                s,
                s - wait,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let w = q.pop_front();
                    debug_assert!(w.is_some(), "gopark: fdMutex count without waiter");
                    return w;
                }
                Err(v) => s = v,
            }
        }
    }

    /// [`rwunlock_fast`](Self::rwunlock_fast), then the hand-off if
    /// needed: whether the caller must release the descriptor, and the
    /// waiter to wake.
    #[cfg(test)]
    pub(crate) fn rwunlock(&self, mode: Mode) -> (bool, Option<W>) {
        match self.rwunlock_fast(mode) {
            None => (false, None),
            Some(old) => {
                let (destroy, waiters) = Self::unlocked(mode, old);
                (destroy, if waiters { self.handoff(mode) } else { None })
            }
        }
    }

    /// Go's `increfAndClose`: marks closed (later ops fail), takes a
    /// reference the caller drops with [`decref`](Self::decref), and returns
    /// every queued op to wake. `None` if it was already closed.
    pub(crate) fn incref_and_close(&self) -> Option<Vec<W>> {
        let mut q = self.queues();
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & CLOSED != 0 {
                return None;
            }
            if s & REF_MASK == REF_MASK {
                too_many();
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
        Some(q.iter_mut().flat_map(|q| q.drain(..)).collect())
    }

    /// Takes a waiter that is still queued out of the queue, with its
    /// count (a waiter resumed without being popped: a spurious wake-up).
    /// True if it was there.
    pub(crate) fn dequeue_if_queued(&self, mode: Mode, is_mine: impl Fn(&W) -> bool) -> bool {
        let (_, wait, _) = bits(mode);
        let mut q = self.queues();
        let q = &mut q[mode as usize];
        match q.iter().position(is_mine) {
            Some(i) => {
                drop(q.remove(i));
                // Counted, since queued (invariant): take it off.
                self.state.fetch_sub(wait, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// The unwind clean-up of a queued op (module docs, *cancel*): removes
    /// the waiter `is_mine` recognises, or, if an unlock already popped it,
    /// returns the next waiter to wake in its place (if the lock is free).
    pub(crate) fn cancel(&self, mode: Mode, is_mine: impl Fn(&W) -> bool) -> Option<W> {
        let (_, wait, _) = bits(mode);
        let mut q = self.queues();
        let q = &mut q[mode as usize];
        if let Some(i) = q.iter().position(is_mine) {
            let mine = q.remove(i);
            // Counted, since queued (invariant): take it off.
            self.state.fetch_sub(wait, Ordering::Relaxed);
            drop(mine);
            return None;
        }
        // Closed, or the holder's unlock hands off, or the next one's.
        self.pop_next(mode, q)
    }

    /// True once closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// A new fdMutex with `mode`'s lock taken.
    fn held(mode: Mode) -> Arc<M> {
        let m = Arc::new(M::default());
        assert_eq!(m.try_lock(mode), Ok(Lock::Taken));
        m
    }

    /// The read side ends with no lock, reference or waiter count left, and
    /// nobody queued.
    fn assert_read_side_free(m: &M) {
        let s = m.state.load(Ordering::SeqCst);
        assert_eq!(s & (RWAIT_MASK | REF_MASK | RLOCK), 0, "{s:#x}");
        assert!(m.queues()[0].is_empty());
    }

    /// Waiters are ids; "waking" one records it.
    type M = FdMutex<u32>;

    /// Reader 2 and reader 3 are queued behind the holder; reader 2 is
    /// unwound (cancel) while the holder unlocks. Whatever the order, reader
    /// 3 is woken exactly once (it never sleeps on a free lock), nothing is
    /// left counted or queued, and the lock is free.
    #[test]
    fn cancel_races_unlock() {
        loom::model(|| {
            let m = held(Mode::Read);
            assert!(m.enqueue(Mode::Read, 2));
            assert!(m.enqueue(Mode::Read, 3));
            let t = {
                let m = m.clone();
                loom::thread::spawn(move || m.rwunlock(Mode::Read).1)
            };
            let by_cancel = m.cancel(Mode::Read, |w| *w == 2);
            let by_unlock = t.join().unwrap();
            let woken: Vec<u32> = by_cancel.into_iter().chain(by_unlock).collect();
            assert_eq!(woken.iter().filter(|&&w| w == 3).count(), 1, "{woken:?}");
            assert_read_side_free(&m);
        });
    }

    /// An unlock (one `fetch_sub`, then the hand-off) racing a reader that
    /// queues: if the reader got queued, the unlock wakes it exactly once
    /// (nobody sleeps on a free lock); if not, it saw the lock free. The
    /// word ends with no lock, reference or count left.
    #[test]
    fn unlock_races_enqueue() {
        loom::model(|| {
            let m = held(Mode::Read);
            let t = {
                let m = m.clone();
                loom::thread::spawn(move || m.rwunlock(Mode::Read))
            };
            let queued = m.enqueue(Mode::Read, 2);
            let (destroy, woken) = t.join().unwrap();
            assert!(!destroy);
            assert_eq!(woken, queued.then_some(2));
            assert_read_side_free(&m);
        });
    }

    /// An unlock whose waiter count a fast lock races: the lock is taken
    /// again between the unlock's `fetch_sub` and its hand-off, or not.
    /// Either way the queued reader is woken exactly once, by whichever
    /// unlock finds the lock free, and the writes of each holder are seen by
    /// the next (a plain counter under the lock).
    #[test]
    fn unlock_handoff_races_fast_lock() {
        loom::model(|| {
            let m = held(Mode::Read);
            let data = Arc::new(loom::cell::UnsafeCell::new(0u32));
            assert!(m.enqueue(Mode::Read, 2));
            let t = {
                let (m, data) = (m.clone(), data.clone());
                loom::thread::spawn(move || {
                    // SAFETY: the lock is held, so no other access overlaps (loom checks it).
                    data.with_mut(|p| unsafe { *p += 1 });
                    m.rwunlock(Mode::Read).1
                })
            };
            let mut woken: Vec<u32> = Vec::new();
            if m.try_lock_fast(Mode::Read) {
                // SAFETY: the lock is held, so no other access overlaps (loom checks it).
                data.with_mut(|p| unsafe { *p += 1 });
                woken.extend(m.rwunlock(Mode::Read).1);
            }
            woken.extend(t.join().unwrap());
            assert_eq!(woken, [2]);
            assert_read_side_free(&m);
        });
    }

    /// A close racing an unlock that owes a hand-off: the queued writer is
    /// woken once (by the close, or by the unlock if it came first), and
    /// whichever of the unlock and the close's decref comes last releases
    /// the descriptor.
    #[test]
    fn unlock_races_close() {
        loom::model(|| {
            let m = held(Mode::Write);
            assert!(m.enqueue(Mode::Write, 2));
            let t = {
                let m = m.clone();
                loom::thread::spawn(move || m.rwunlock(Mode::Write))
            };
            let drained = m.incref_and_close().unwrap();
            let closer_destroys = m.decref();
            let (unlock_destroys, woken) = t.join().unwrap();
            assert_eq!(drained.len() + woken.iter().count(), 1);
            assert!(closer_destroys != unlock_destroys);
        });
    }

    /// A cancel racing a close and a new reader queuing: the count and the
    /// queue stay equal, so a later lock and unlock work.
    #[test]
    fn cancel_races_close() {
        loom::model(|| {
            let m = held(Mode::Write);
            assert!(m.enqueue(Mode::Write, 2));
            let t = {
                let m = m.clone();
                loom::thread::spawn(move || m.incref_and_close().map(|v| v.len()))
            };
            let forwarded = m.cancel(Mode::Write, |w| *w == 2);
            assert_eq!(forwarded, None);
            let drained = t.join().unwrap().unwrap();
            assert!(drained <= 1);
            let s = m.state.load(Ordering::SeqCst);
            assert_eq!(s & WWAIT_MASK, 0, "{s:#x}");
            assert!(m.queues()[1].is_empty());
            assert!(!m.decref(), "the writer still holds its reference");
            assert_eq!(m.rwunlock(Mode::Write), (true, None));
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn lock_unlock_close() {
        let m = FdMutex::<u32>::default();
        assert_eq!(m.try_lock(Mode::Read), Ok(Lock::Taken));
        // A weak CAS may fail spuriously (Miri makes it so): the fast path
        // must succeed within a few tries on a free lock.
        assert!((0..64).any(|_| m.try_lock_fast(Mode::Write)));
        assert_eq!(m.rwunlock(Mode::Write), (false, None));
        assert_eq!(m.incref_and_close(), Some(vec![]));
        assert_eq!(m.incref_and_close(), None);
        assert_eq!(m.try_lock(Mode::Write), Err(Closed));
        assert!(!m.decref(), "the reader still holds a reference");
        assert_eq!(m.rwunlock(Mode::Read), (true, None));
    }

    /// Cancel of a queued waiter takes it and its count out; cancel of one
    /// an unlock already popped passes the turn on to the next waiter.
    #[test]
    fn cancel_removes_or_forwards() {
        let m = FdMutex::<u32>::default();
        assert_eq!(m.try_lock(Mode::Read), Ok(Lock::Taken));
        assert_eq!(m.try_lock(Mode::Read), Ok(Lock::Busy));
        assert!(m.enqueue(Mode::Read, 2));
        assert!(m.enqueue(Mode::Read, 3));
        assert!(m.enqueue(Mode::Read, 4));
        assert_eq!(m.cancel(Mode::Read, |w| *w == 3), None);
        assert_eq!(m.rwunlock(Mode::Read), (false, Some(2)));
        // 2 was popped (its turn is owed) but is unwound instead of running.
        assert_eq!(m.cancel(Mode::Read, |w| *w == 2), Some(4));
        assert_eq!(m.state.load(Ordering::SeqCst) & (RWAIT_MASK | REF_MASK), 0);
    }
}
