//! The park token: `std::thread::park`/`unpark` semantics for coroutines.
//!
//! One word per coroutine:
//!
//! ```text
//!  31                               2 1 0
//! +----------------------------------+---+
//! |            generation            |st |   st: EMPTY=0, NOTIFIED=1, PARKED=2
//! +----------------------------------+---+
//! ```
//!
//! Transitions (every one a CAS on the whole word):
//!
//! | from            | by                       | to              | effect                      |
//! |-----------------|--------------------------|-----------------|-----------------------------|
//! | (g, NOTIFIED)   | `try_consume` / commit   | (g, EMPTY)      | park returns at once        |
//! | (g, EMPTY)      | `commit_park` (worker)   | (g+1, PARKED)   | coroutine is parked         |
//! | (g, PARKED)     | `unpark`                 | (g, EMPTY)      | caller must ready it        |
//! | (g, EMPTY)      | `unpark`                 | (g, NOTIFIED)   | next park returns at once   |
//! | (g, PARKED)     | `unpark_gen(g)` (timer)  | (g, EMPTY)      | caller must ready it        |
//! | (g, PARKED)     | `abandon` (coroutine)    | (g, EMPTY)      | park ended without a wake   |
//!
//! `commit_park` runs on the worker after the coroutine has switched off its
//! stack (docs/SAFETY.md, section 2), so whoever observes PARKED may ready the
//! coroutine at once. Exactly one transition out of PARKED succeeds, so a
//! coroutine is readied once per park however many threads call `unpark`.
//! The generation lets a timer armed for one park be ignored by a later park.

use crate::loom::{AtomicU32, Ordering};

const EMPTY: u32 = 0;
const NOTIFIED: u32 = 1;
const PARKED: u32 = 2;
const STATE: u32 = 3;
const GEN_ONE: u32 = 4;

/// A coroutine's park token (see the module docs).
#[derive(Debug)]
pub(crate) struct ParkToken {
    word: AtomicU32,
}

impl ParkToken {
    pub(crate) fn new() -> ParkToken {
        ParkToken {
            word: AtomicU32::new(EMPTY),
        }
    }

    /// Consumes a pending notification; true if there was one.
    #[inline]
    pub(crate) fn try_consume(&self) -> bool {
        let cur = self.word.load(Ordering::Acquire);
        cur & STATE == NOTIFIED
            && self
                .word
                .compare_exchange(cur, cur & !STATE, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// The commit step of a park, run by the worker after the switch.
    /// Returns the generation now parked, or `None` if a notification had
    /// arrived (it is consumed and the coroutine must run again).
    pub(crate) fn commit_park(&self) -> Option<u32> {
        let mut cur = self.word.load(Ordering::Acquire);
        loop {
            let (next, parked) = match cur & STATE {
                NOTIFIED => (cur & !STATE, false),
                EMPTY => (((cur & !STATE).wrapping_add(GEN_ONE)) | PARKED, true),
                _ => panic!("gopark: park token committed twice (double park)"),
            };
            // AcqRel: Release publishes the coroutine's writes before anyone
            // can see PARKED and ready it; Acquire pairs with `unpark`'s
            // Release when we consume a notification.
            match self
                .word
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return parked.then_some(next & !STATE),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Makes a token available; true if the caller must ready the coroutine.
    pub(crate) fn unpark(&self) -> bool {
        let mut cur = self.word.load(Ordering::Acquire);
        loop {
            let next = match cur & STATE {
                NOTIFIED => return false,
                EMPTY => cur | NOTIFIED,
                _ => cur & !STATE,
            };
            // AcqRel: pairs with `commit_park` (Acquire side sees the parked
            // coroutine's writes; Release side publishes ours to it).
            match self
                .word
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return cur & STATE == PARKED,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The park ended without an unpark (its coroutine was resumed by its
    /// worker without a waker, or is unwinding out of the park): leave
    /// PARKED so that the next `commit_park` is not mistaken for a double
    /// park. An `unpark` racing with this either took PARKED first (and
    /// readies a coroutine that is no longer parked there: a stale wake-up
    /// the scheduler drops) or finds EMPTY and leaves a notification.
    pub(crate) fn abandon(&self) {
        let cur = self.word.load(Ordering::Relaxed);
        if cur & STATE == PARKED {
            let _ =
                self.word
                    .compare_exchange(cur, cur & !STATE, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// A timer's wake for the park of generation `gen`; true if the caller
    /// must ready the coroutine. Stale generations do nothing.
    pub(crate) fn unpark_gen(&self, gen: u32) -> bool {
        self.word
            .compare_exchange(gen | PARKED, gen, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;

    /// A coroutine parks once; two threads unpark. It is readied exactly once
    /// if it parked, and a notification is never lost.
    #[test]
    fn park_races_two_unparks() {
        loom::model(|| {
            let tok = Arc::new(ParkToken::new());
            let readied = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let (tok, readied) = (tok.clone(), readied.clone());
                    loom::thread::spawn(move || {
                        if tok.unpark() {
                            readied.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            let parked = if tok.try_consume() {
                false
            } else {
                tok.commit_park().is_some()
            };
            for h in hs {
                h.join().unwrap();
            }
            let r = readied.load(Ordering::SeqCst);
            assert_eq!(r, usize::from(parked), "parked={parked} readied={r}");
        });
    }

    /// A timer for generation g races an unpark: one of them readies, never
    /// both; a stale timer from an earlier park never readies a later one.
    #[test]
    fn timer_races_unpark() {
        loom::model(|| {
            let tok = Arc::new(ParkToken::new());
            let readied = Arc::new(AtomicUsize::new(0));
            let gen = tok.commit_park().expect("nothing pending");
            let t = {
                let (tok, readied) = (tok.clone(), readied.clone());
                loom::thread::spawn(move || {
                    if tok.unpark_gen(gen) {
                        readied.fetch_add(1, Ordering::SeqCst);
                    }
                })
            };
            if tok.unpark() {
                readied.fetch_add(1, Ordering::SeqCst);
            }
            t.join().unwrap();
            assert_eq!(readied.load(Ordering::SeqCst), 1);
            // Parked again in a new generation: the old timer is stale.
            let _ = tok.try_consume();
            let gen2 = tok.commit_park().expect("token consumed");
            assert_ne!(gen, gen2);
            assert!(!tok.unpark_gen(gen));
            assert!(tok.unpark_gen(gen2));
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn notification_before_park_is_consumed() {
        let t = ParkToken::new();
        assert!(!t.unpark());
        assert!(!t.unpark(), "a second notification is absorbed");
        assert!(t.try_consume());
        assert!(!t.try_consume());
        let g = t.commit_park().unwrap();
        assert!(t.unpark());
        assert!(!t.unpark_gen(g), "already readied");
    }

    #[test]
    fn abandoned_park_can_park_again() {
        let t = ParkToken::new();
        let g = t.commit_park().unwrap();
        t.abandon();
        assert!(!t.unpark_gen(g), "the abandoned park's timer is stale");
        let g2 = t.commit_park().expect("parks again, no double-park panic");
        assert_ne!(g, g2);
        assert!(t.unpark());
        t.abandon();
        assert!(
            !t.unpark(),
            "leaves a notification after an abandon on EMPTY"
        );
        assert!(t.try_consume());
    }
}
