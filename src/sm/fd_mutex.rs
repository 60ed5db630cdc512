//! Go's `fdMutex` (internal/poll/fd_mutex.go): serialises the readers and
//! the writers of one descriptor and counts the ops in flight, so that the
//! descriptor is released only when the last op has finished. Generic over
//! the waiter type `W` so that loom can model it; `net::fd_mutex` blocks
//! and wakes real coroutines and threads with it.
//!
//! ```text
//!  63        44  43  42        23  22  21  20        1   0
//! +------------+---+------------+---+---+------------+---+
//! | write lock | C | references | WQ| RQ| read lock  | C |
//! +------------+---+------------+---+---+------------+---+
//! ```
//! `C` closed (two copies, set together and never cleared: each lock
//! tests its own with its field), the read and write lock fields (the
//! holder, plus the attempts under way, see below), references = ops in
//! flight that hold no lock plus one for the close in progress (a lock
//! counts as a reference by its field), `RQ`/`WQ` readers/writers queued.
//!
//! ## Transitions
//! - *lock* (fast path, [`FdMutex::try_lock_fast`], one `fetch_add`): add
//!   one to the direction's field, whatever the word holds. If the old
//!   word had the field at zero and `C` clear, the op holds the lock (and
//!   its reference). Otherwise the add was only an attempt: the op takes
//!   it back with an *unlock* (it may hand off or release the descriptor
//!   like any unlock) and goes the slow way. No mutex, no allocation.
//! - *slow lock* ([`FdMutex::try_lock`], a CAS loop): the field is zero and
//!   not closed: add one.
//! - *queue* ([`FdMutex::enqueue`], under the `queues` mutex): the field is
//!   not zero: set the direction's queued bit and push the waiter. If the
//!   field is zero or `C` set by then, the op retries at once instead.
//! - *unlock* ([`FdMutex::rwunlock_fast`], one `fetch_sub`): take one off
//!   the field, whatever else the word holds. If the old word had the
//!   direction's queued bit, the unlocker then *hands off*
//!   ([`FdMutex::handoff`], under the mutex): if the field is zero by then,
//!   not closed, and someone is queued, it pops the first waiter (clearing
//!   the bit with the last one) to be woken; it competes for the lock
//!   again. If the field is not zero (another op took the lock in between,
//!   or attempts are under way), whoever takes it to zero hands off
//!   instead.
//! - *close* ([`FdMutex::incref_and_close`], under the mutex): set both
//!   `C`, clear both queued bits, drain both queues; every queued op wakes,
//!   sees `C` and fails.
//! - *cancel* ([`FdMutex::cancel`], under the mutex): a queued op that is
//!   unwound instead of woken (its coroutine is dropped while it waits)
//!   removes its waiter (clearing the bit with the last one). If it is not
//!   queued any more, an unlock popped it and owed it a turn: if the lock
//!   is free and others wait, it pops the next one to be woken in its
//!   place.
//!
//! ## Invariant
//! Every change of a queued bit happens under the `queues` mutex, together
//! with the matching push, pop or removal: whenever the mutex is free, each
//! bit is set exactly when its queue is not empty. That is what makes
//! *cancel* exact, and why no waiter can sleep on a free lock: a waiter is
//! queued only by a CAS that finds the field not zero, and so sets the bit
//! before the `fetch_sub` that takes the field to zero, which sees it and
//! hands off (its hand-off, or that of a later unlock if the field rose
//! again first, pops one). The lock-only transitions (lock, unlock, the
//! attempts) leave the bits alone.
//!
//! ## No count can overflow
//! References of lock-free ops ([`FdMutex::incref`]) stop [`RESERVED`]
//! short of their field's maximum (Go's limit, 2^20 - 1), which leaves
//! room for the close's. A lock field holds the holder and the attempts
//! under way: a thread has at most one attempt under way at a time (it
//! takes it back before it does anything else), so the field never holds
//! more than one plus the number of threads in the process, far fewer than
//! its 2^20 - 1.
//!
//! The op whose unlock (or the close whose decref) drops the references and
//! the lock fields to zero with `C` set must release the descriptor. A fast
//! attempt made after that finds `C`, but its add and take-back cross zero
//! again: so the release is claimed with a flag of its own (`released`),
//! and only the first zero crossing after the close gets it. (The first is
//! the right one: no op that holds a lock or a reference is in flight at
//! any crossing, and none can start once `C` is set.)

use std::collections::VecDeque;

use crate::loom::{AtomicBool, AtomicU64, Mutex, Ordering};
use crate::sm::poll_desc::Mode;

/// Closed: the read lock's copy (tested with the read field).
const CLOSED: u64 = 1;
const RLOCK: u64 = 1 << 1;
const RLOCK_MASK: u64 = ((1 << 20) - 1) << 1;
/// Readers queued.
const RQUEUED: u64 = 1 << 21;
/// Writers queued.
const WQUEUED: u64 = 1 << 22;
const REF: u64 = 1 << 23;
const REF_MASK: u64 = ((1 << 20) - 1) << 23;
/// Closed: the write lock's copy (tested with the write field).
const CLOSED_W: u64 = 1 << 43;
const WLOCK: u64 = 1 << 44;
const WLOCK_MASK: u64 = ((1 << 20) - 1) << 44;
/// Everything that counts an op in flight.
const COUNTS: u64 = RLOCK_MASK | REF_MASK | WLOCK_MASK;
/// References kept free for the close (module docs).
const RESERVED: u64 = 1;

/// `mode`'s lock unit, its field, its queued bit and its copy of `C`.
#[inline(always)]
fn bits(mode: Mode) -> (u64, u64, u64, u64) {
    match mode {
        Mode::Read => (RLOCK, RLOCK_MASK, RQUEUED, CLOSED),
        Mode::Write => (WLOCK, WLOCK_MASK, WQUEUED, CLOSED_W),
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
    /// The release of the descriptor was claimed (module docs).
    released: AtomicBool,
}

impl<W> Default for FdMutex<W> {
    fn default() -> Self {
        FdMutex {
            state: AtomicU64::new(0),
            queues: Mutex::new([VecDeque::new(), VecDeque::new()]),
            released: AtomicBool::new(false),
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
        self.release_due(new)
    }

    /// Whether a count change that left `new` must release the descriptor:
    /// the counts crossed zero with `C` set, and no earlier crossing
    /// claimed the release (module docs).
    #[inline]
    fn release_due(&self, new: u64) -> bool {
        // AcqRel: as the count change, the release follows every op's
        // writes.
        new & (CLOSED | COUNTS) == CLOSED && !self.released.swap(true, Ordering::AcqRel)
    }

    /// Fast path of taking the lock: one `fetch_add` (module docs, *lock*).
    /// True: taken. False: the add was an attempt that found the lock held
    /// or the descriptor closed; the caller must take it back at once with
    /// [`rwunlock_fast`](Self::rwunlock_fast) (and what that calls for, as
    /// after any unlock) before it competes again or fails.
    #[inline]
    pub(crate) fn try_lock_fast(&self, mode: Mode) -> bool {
        let (lock, lock_mask, _, closed) = bits(mode);
        // Acquire: pairs with the previous holder's Release unlock.
        let old = self.state.fetch_add(lock, Ordering::Acquire);
        debug_assert!(
            old & lock_mask != lock_mask,
            "gopark: fdMutex lock field overflow"
        );
        // For writes the two are the word's top bits: one shift.
        old & (closed | lock_mask) == 0
    }

    /// Takes the lock if it is free; fails once closed.
    pub(crate) fn try_lock(&self, mode: Mode) -> Result<Lock, Closed> {
        let (lock, lock_mask, _, _) = bits(mode);
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & CLOSED != 0 {
                return Err(Closed);
            }
            if s & lock_mask != 0 {
                return Ok(Lock::Busy);
            }
            // Acquire: pairs with the previous holder's Release unlock.
            match self.state.compare_exchange_weak(
                s,
                s + lock,
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
        let (_, lock_mask, queued, _) = bits(mode);
        let mut q = self.queues();
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & CLOSED != 0 || s & lock_mask == 0 {
                return false;
            }
            // A CAS even when the bit is set already: it is the check that
            // the field is not zero, ordered with the unlocks' `fetch_sub`.
            match self.state.compare_exchange_weak(
                s,
                s | queued,
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
    /// [`try_lock_fast`](Self::try_lock_fast), or takes back a fast
    /// attempt that failed: one `fetch_sub` takes one off the field.
    /// `None` in the common case, found with one test of the old word:
    /// not closed and no waiter of `mode` queued, so nothing is left to do.
    /// Otherwise the old word, for [`unlocked`](Self::unlocked).
    #[inline]
    pub(crate) fn rwunlock_fast(&self, mode: Mode) -> Option<u64> {
        let (lock, lock_mask, queued, _) = bits(mode);
        // Release: publishes the holder's writes to the next holder, as the
        // slow lock path's CAS and the fast lock's `fetch_add` read from
        // this (or a later) value of the word (Acquire); Acquire: the
        // unlock that drops the last count of a closed descriptor releases
        // it after every other op's writes (as `decref`).
        let old = self.state.fetch_sub(lock, Ordering::AcqRel);
        debug_assert!(old & lock_mask != 0, "gopark: inconsistent fdMutex");
        // `C` is never cleared, so the new word has it only if the old one
        // did: without it there is nothing to release.
        if old & (CLOSED | queued) == 0 {
            return None;
        }
        Some(old)
    }

    /// What is left to do after an unlock of `mode` whose old word
    /// [`rwunlock_fast`](Self::rwunlock_fast) returned: whether the caller
    /// must release the descriptor, and whether waiters were queued: then
    /// the caller calls [`handoff`](Self::handoff) (module docs, *unlock*).
    pub(crate) fn unlocked(&self, mode: Mode, old: u64) -> (bool, bool) {
        let (lock, _, queued, _) = bits(mode);
        (self.release_due(old - lock), old & queued != 0)
    }

    /// The unlock's hand-off when waiters were queued (module docs): the
    /// waiter to wake (after this returns; the mutex is no longer held), if
    /// the lock is still free, not closed, and someone still waits.
    #[cold]
    pub(crate) fn handoff(&self, mode: Mode) -> Option<W> {
        let mut q = self.queues();
        self.pop_next(mode, &mut q[mode as usize])
    }

    /// Takes the first waiter of `q` (`mode`'s queue, mutex held), clearing
    /// the queued bit with the last one, if the lock is free, not closed,
    /// and a waiter is queued.
    fn pop_next(&self, mode: Mode, q: &mut VecDeque<W>) -> Option<W> {
        let (_, lock_mask, queued, _) = bits(mode);
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & (CLOSED | lock_mask) != 0 || s & queued == 0 {
                // Closed (the close woke everyone), taken again or an
                // attempt under way (whoever takes the field to zero hands
                // off), or nobody waits any more.
                return None;
            }
            debug_assert!(!q.is_empty(), "gopark: fdMutex queued bit without waiter");
            let new = if q.len() == 1 { s & !queued } else { s };
            match self
                .state
                .compare_exchange_weak(s, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return q.pop_front(),
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
                let (destroy, waiters) = self.unlocked(mode, old);
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
            let new = ((s | CLOSED | CLOSED_W) + REF) & !(RQUEUED | WQUEUED);
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

    /// Removes the waiter at `i` of `mode`'s queue `q` (mutex held),
    /// clearing the queued bit if it was the last.
    fn remove(&self, mode: Mode, q: &mut VecDeque<W>, i: usize) -> Option<W> {
        let (_, _, queued, _) = bits(mode);
        let w = q.remove(i);
        if q.is_empty() {
            self.state.fetch_and(!queued, Ordering::Relaxed);
        }
        w
    }

    /// Takes a waiter that is still queued out of the queue (a waiter
    /// resumed without being popped: a spurious wake-up). True if it was
    /// there.
    pub(crate) fn dequeue_if_queued(&self, mode: Mode, is_mine: impl Fn(&W) -> bool) -> bool {
        let mut q = self.queues();
        let q = &mut q[mode as usize];
        match q.iter().position(is_mine) {
            Some(i) => {
                drop(self.remove(mode, q, i));
                true
            }
            None => false,
        }
    }

    /// The unwind clean-up of a queued op (module docs, *cancel*): removes
    /// the waiter `is_mine` recognises, or, if an unlock already popped it,
    /// returns the next waiter to wake in its place (if the lock is free).
    pub(crate) fn cancel(&self, mode: Mode, is_mine: impl Fn(&W) -> bool) -> Option<W> {
        let mut q = self.queues();
        let q = &mut q[mode as usize];
        if let Some(i) = q.iter().position(is_mine) {
            drop(self.remove(mode, q, i));
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

    /// The read side ends with no lock, reference or queued bit left, and
    /// nobody queued.
    fn assert_read_side_free(m: &M) {
        let s = m.state.load(Ordering::SeqCst);
        assert_eq!(s & (RQUEUED | REF_MASK | RLOCK_MASK), 0, "{s:#x}");
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

    /// An unlock whose hand-off a fast lock races: the lock is taken
    /// again between the unlock's `fetch_sub` and its hand-off, or not (a
    /// failed attempt whose take-back comes last: the holder's unlock found
    /// the field not zero and left the hand-off to it). Either way the
    /// queued reader is woken exactly once, by whichever unlock or
    /// take-back finds the lock free, and the writes of each holder are
    /// seen by the next (a plain counter under the lock).
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
            }
            // The unlock, or the take-back of a failed attempt: either may
            // be the one that finds the field at zero and hands off.
            woken.extend(m.rwunlock(Mode::Read).1);
            woken.extend(t.join().unwrap());
            assert_eq!(woken, [2]);
            assert_read_side_free(&m);
        });
    }

    /// A fast attempt on a free lock racing a close (and the close's
    /// decref): the attempt takes the lock or fails on `C`; either way its
    /// unlock or take-back and the decref release the descriptor exactly
    /// once between them, and nothing is left counted.
    #[test]
    fn fast_attempt_races_close() {
        loom::model(|| {
            let m = Arc::new(M::default());
            let t = {
                let m = m.clone();
                loom::thread::spawn(move || {
                    assert_eq!(m.incref_and_close(), Some(vec![]));
                    m.decref()
                })
            };
            let _taken = m.try_lock_fast(Mode::Write);
            let (unlock_destroys, woken) = m.rwunlock(Mode::Write);
            assert_eq!(woken, None);
            let closer_destroys = t.join().unwrap();
            assert!(closer_destroys != unlock_destroys);
            let s = m.state.load(Ordering::SeqCst);
            assert_eq!(s & COUNTS, 0, "{s:#x}");
            // An attempt after the release crosses zero again: no second
            // release.
            assert!(!m.try_lock_fast(Mode::Read));
            assert_eq!(m.rwunlock(Mode::Read), (false, None));
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
            assert_eq!(s & WQUEUED, 0, "{s:#x}");
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
        assert!(m.try_lock_fast(Mode::Write));
        assert_eq!(m.rwunlock(Mode::Write), (false, None));
        assert_eq!(m.incref_and_close(), Some(vec![]));
        assert_eq!(m.incref_and_close(), None);
        assert_eq!(m.try_lock(Mode::Write), Err(Closed));
        assert!(!m.decref(), "the reader still holds a reference");
        assert_eq!(m.rwunlock(Mode::Read), (true, None));
    }

    /// A fast attempt on a held lock fails and its take-back leaves the
    /// word as it was; one on a closed descriptor fails too, and its
    /// take-back is the last count: it releases the descriptor.
    #[test]
    fn failed_fast_attempts() {
        let m = FdMutex::<u32>::default();
        assert!(m.try_lock_fast(Mode::Read));
        let before = m.state.load(Ordering::SeqCst);
        assert!(!m.try_lock_fast(Mode::Read));
        assert_eq!(m.rwunlock(Mode::Read), (false, None));
        assert_eq!(m.state.load(Ordering::SeqCst), before);
        assert_eq!(m.rwunlock(Mode::Read), (false, None));
        assert_eq!(m.state.load(Ordering::SeqCst), 0);
        assert_eq!(m.incref_and_close(), Some(vec![]));
        assert!(!m.try_lock_fast(Mode::Write));
        assert!(!m.try_lock_fast(Mode::Read));
        assert!(!m.decref(), "two attempts still count");
        assert_eq!(m.rwunlock(Mode::Write), (false, None));
        assert_eq!(m.rwunlock(Mode::Read), (true, None));
    }

    /// The queued bit follows the queue: set by the first waiter, cleared
    /// by the hand-off or removal of the last.
    #[test]
    fn queued_bit_follows_the_queue() {
        let m = FdMutex::<u32>::default();
        assert_eq!(m.try_lock(Mode::Write), Ok(Lock::Taken));
        assert!(m.enqueue(Mode::Write, 2));
        assert!(m.enqueue(Mode::Write, 3));
        assert_ne!(m.state.load(Ordering::SeqCst) & WQUEUED, 0);
        assert_eq!(m.rwunlock(Mode::Write), (false, Some(2)));
        assert_ne!(m.state.load(Ordering::SeqCst) & WQUEUED, 0);
        assert!(m.dequeue_if_queued(Mode::Write, |w| *w == 3));
        assert_eq!(m.state.load(Ordering::SeqCst), 0);
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
        assert_eq!(
            m.state.load(Ordering::SeqCst) & (RQUEUED | REF_MASK | RLOCK_MASK),
            0
        );
    }
}
