//! The state word behind `sync::Mutex` (the protocol of Go's `sync.Mutex`):
//! normal mode lets a running locker take a just-released lock ahead of the
//! waiters ("barging"), and an unlock only wakes one waiter, which then
//! competes for the lock; starvation mode, entered when a waiter has waited
//! too long, hands the lock directly to the first waiter instead.
//!
//! ```text
//!  usize::BITS-1      4   3   2   1   0
//! +--------------------+---+---+---+---+
//! |      (unused)      | W | S | K | L |
//! +--------------------+---+---+---+---+
//!  L  LOCKED    somebody holds the lock (in starvation mode: also while it
//!               is being handed to the first waiter)
//!  K  WOKEN     one party is on its way to take the lock: a waiter that was
//!               woken, a locker spinning for it, or an unlocker between
//!               deciding to wake a waiter and waking it; unlocks wake
//!               nobody else meanwhile
//!  S  STARVING  starvation mode: unlocks hand the lock to the first waiter
//!  W  WAITERS   the wait queue is (or is about to be) non-empty
//! ```
//!
//! The queue is a [`WaitList`](super::waitq::WaitList) behind a lock owned
//! by the user of this word; a queued waiter is woken with the claim token
//! [`WAKE`] (compete for the lock) or [`HANDOFF`] (it now holds the lock).
//!
//! Invariants:
//! - `W` is set and cleared only with the queue lock held; the waiter that
//!   sets it links its node before it releases that lock, so an unlocker
//!   that saw `W` and then takes the queue lock finds a node (or finds that
//!   every node left, and clears `W`).
//! - `S` implies `L`: `S` is set only by a waiter queueing while `L` is set
//!   (the same CAS keeps `L`), `L` is never cleared while `S` stays set, and
//!   a handoff keeps `L` set: the lock passes through the claim word.
//! - `K` has exactly one owner while set (the party that set it, or the
//!   waiter an unlocker woke with it); only the owner clears it, by taking
//!   the lock, by queueing again, or by giving up (`pass_wake`).
//! - A waiter that was woken and loses the race queues again at the front;
//!   a waiter that waited longer than the starvation threshold sets `S` as
//!   it queues again. A waiter handed the lock clears `S` if it waited less
//!   than the threshold or if the queue is empty.
//!
//! | operation      | queue lock | transition                                     |
//! |----------------|------------|------------------------------------------------|
//! | `lock_fast`    | no         | 0 -> L                                         |
//! | `unlock_fast`  | no         | L -> 0                                         |
//! | `try_lock`     | no         | L=0, S=0: set L                                |
//! | `take(awoke)`  | no         | L=0, S=0: set L (clear K if `awoke`)           |
//! | `spin_woken`   | no         | L=1, S=0, K=0, W=1: set K                      |
//! | `register`     | held       | as `take`, else set W (clear K if `awoke`, set S if `starving`) |
//! | `unlock_slow`  | no         | S=0: clear L, then set K if W=1, L=0, K=0 (wake one); S=1: none (hand off) |
//! | `woke_none`    | held       | clear K and W (the queue was empty)            |
//! | `queue_emptied`| held       | clear W                                        |
//! | `handoff_none` | held       | clear L, S and W (starving, queue empty)       |
//! | `handed_off`   | no (holder)| clear S unless still starving and W=1          |
//! | `pass_wake`    | no (K owner)| clear K, then as the second step of `unlock_slow` |

use crate::loom::{AtomicUsize, Ordering};

const LOCKED: usize = 1;
const WOKEN: usize = 2;
const STARVING: usize = 4;
const WAITERS: usize = 8;

/// The claim token of a waiter woken to compete for the lock.
pub(crate) const WAKE: usize = 1;
/// The claim token of a waiter handed the lock (starvation mode).
pub(crate) const HANDOFF: usize = 2;

/// What an unlock that found more than `L` in the word must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unlocked {
    /// Nothing: the lock is free and nobody needs waking.
    Done,
    /// The lock is free and the caller owns `K`: wake the first waiter
    /// (token [`WAKE`]), or call `woke_none` if the queue is empty.
    Wake,
    /// Starvation mode: the lock is still held; hand it to the first waiter
    /// (token [`HANDOFF`]), or call `handoff_none` if the queue is empty.
    HandOff,
}

/// The Mutex state word (see the module docs).
#[derive(Debug)]
pub(crate) struct MutexWord {
    word: AtomicUsize,
}

impl MutexWord {
    pub(crate) fn new() -> MutexWord {
        MutexWord {
            word: AtomicUsize::new(0),
        }
    }

    /// Uncontended lock: one CAS.
    #[inline]
    pub(crate) fn lock_fast(&self) -> bool {
        // Acquire: pairs with the Release of the previous unlock.
        self.word
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Uncontended unlock: one CAS; false if waiters or flags need the slow
    /// path (`unlock_slow`).
    #[inline]
    pub(crate) fn unlock_fast(&self) -> bool {
        // Release: publishes the critical section to the next locker.
        self.word
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the lock if it is free and the mutex is in normal mode (it may
    /// overtake queued waiters).
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        self.lock_fast() || self.take(false)
    }

    /// Takes the lock if it is free and not being handed off; `awoke`: the
    /// caller owns `K` and gives it up with the lock.
    pub(crate) fn take(&self, awoke: bool) -> bool {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            if cur & (LOCKED | STARVING) != 0 {
                return false;
            }
            debug_assert!(!awoke || cur & WOKEN != 0, "K lost by its owner");
            let next = (cur | LOCKED) & if awoke { !WOKEN } else { !0 };
            // Acquire: as in `lock_fast`.
            match self
                .word
                .compare_exchange_weak(cur, next, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// A locker about to spin while the lock is held in normal mode: sets
    /// `K` if waiters queue and nobody owns it, so that the unlock does not
    /// wake a waiter the spinner would beat anyway. True if the caller now
    /// owns `K`.
    pub(crate) fn spin_woken(&self) -> bool {
        let cur = self.word.load(Ordering::Relaxed);
        cur & (LOCKED | STARVING | WOKEN | WAITERS) == LOCKED | WAITERS
            && self
                .word
                .compare_exchange(cur, cur | WOKEN, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// True if the lock is held in normal mode (a locker may spin for it).
    pub(crate) fn spinnable(&self) -> bool {
        self.word.load(Ordering::Relaxed) & (LOCKED | STARVING) == LOCKED
    }

    /// With the queue lock held: takes the lock (true) as `take` does, or
    /// marks the queue non-empty so that the caller must link its node
    /// before it releases the queue lock (false). `awoke`: the caller owns
    /// `K` and gives it up either way; `starving`: the caller has waited
    /// past the threshold and switches the mutex to starvation mode.
    pub(crate) fn register(&self, awoke: bool, starving: bool) -> bool {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            debug_assert!(!awoke || cur & WOKEN != 0, "K lost by its owner");
            let keep = if awoke { !WOKEN } else { !0 };
            let (next, took) = if cur & (LOCKED | STARVING) == 0 {
                ((cur | LOCKED) & keep, true)
            } else {
                debug_assert!(cur & LOCKED != 0, "S without L");
                let s = if starving { STARVING } else { 0 };
                ((cur | WAITERS | s) & keep, false)
            };
            // Acquire: as in `lock_fast`, when it takes the lock.
            match self
                .word
                .compare_exchange_weak(cur, next, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return took,
                Err(actual) => cur = actual,
            }
        }
    }

    /// After `unlock_fast` failed: releases the lock in normal mode and says
    /// whether the caller must wake a waiter; in starvation mode leaves the
    /// lock held for a handoff.
    pub(crate) fn unlock_slow(&self) -> Unlocked {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            debug_assert!(cur & LOCKED != 0, "unlock of an unlocked mutex");
            if cur & STARVING != 0 {
                return Unlocked::HandOff;
            }
            // Release: publishes the critical section to the next locker.
            match self.word.compare_exchange_weak(
                cur,
                cur & !LOCKED,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        if self.claim_wake(cur & !LOCKED) {
            Unlocked::Wake
        } else {
            Unlocked::Done
        }
    }

    /// Sets `K` if a waiter must be woken: waiters queue, the lock is free
    /// and nobody owns `K` yet. True if the caller must wake one.
    fn claim_wake(&self, mut cur: usize) -> bool {
        loop {
            if cur & WAITERS == 0 || cur & (LOCKED | WOKEN | STARVING) != 0 {
                // Nobody waits, or a locker took the lock (its unlock wakes),
                // or somebody is already on the way.
                return false;
            }
            match self.word.compare_exchange_weak(
                cur,
                cur | WOKEN,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The owner of `K` gives up without taking the lock (a timeout, or an
    /// unwind of a woken waiter): clears `K`; true if the caller must now
    /// wake a waiter in its place (it owns `K` again), as an unlock would.
    pub(crate) fn pass_wake(&self) -> bool {
        let prev = self.word.fetch_and(!WOKEN, Ordering::Relaxed);
        debug_assert!(prev & WOKEN != 0, "K lost by its owner");
        self.claim_wake(prev & !WOKEN)
    }

    /// With the queue lock held, after `Unlocked::Wake` found no waiter to
    /// wake (they had all left): clears `K` and `W`.
    pub(crate) fn woke_none(&self) {
        self.word.fetch_and(!(WOKEN | WAITERS), Ordering::Relaxed);
    }

    /// With the queue lock held, after a node left the queue (popped or
    /// removed) and the queue is now empty: clears `W`.
    pub(crate) fn queue_emptied(&self) {
        self.word.fetch_and(!WAITERS, Ordering::Relaxed);
    }

    /// With the queue lock held, after `Unlocked::HandOff` found no waiter
    /// to hand the lock to: leaves starvation mode and frees the lock.
    pub(crate) fn handoff_none(&self) {
        // Release: publishes the critical section to the next locker.
        self.word
            .fetch_and(!(LOCKED | STARVING | WAITERS), Ordering::Release);
    }

    /// The waiter that was handed the lock (it holds it): leaves starvation
    /// mode unless it is itself still starving and others wait behind it.
    pub(crate) fn handed_off(&self, starving: bool) {
        let cur = self.word.load(Ordering::Relaxed);
        debug_assert!(cur & (LOCKED | STARVING) == LOCKED | STARVING);
        if !starving || cur & WAITERS == 0 {
            self.word.fetch_and(!STARVING, Ordering::Relaxed);
        }
    }

    /// True in starvation mode (a snapshot, for tests).
    #[cfg(test)]
    pub(crate) fn is_starving(&self) -> bool {
        self.word.load(Ordering::Relaxed) & STARVING != 0
    }

    /// True while held (a snapshot, for tests).
    #[cfg(test)]
    pub(crate) fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// The raw word (a snapshot, for tests).
    #[cfg(test)]
    pub(crate) fn raw(&self) -> usize {
        self.word.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fast_paths() {
        let m = MutexWord::new();
        assert!(m.lock_fast());
        assert!(!m.lock_fast());
        assert!(!m.try_lock());
        assert!(m.unlock_fast());
        assert!(!m.unlock_fast(), "double unlock is refused");
        assert!(m.try_lock());
        assert_eq!(m.raw(), LOCKED);
    }

    #[test]
    fn barging_and_wake() {
        let m = MutexWord::new();
        assert!(m.lock_fast());
        assert!(!m.register(false, false), "held: queue");
        assert_eq!(m.raw(), LOCKED | WAITERS);
        assert!(!m.unlock_fast(), "waiters: slow path");
        assert_eq!(m.unlock_slow(), Unlocked::Wake);
        assert_eq!(m.raw(), WOKEN | WAITERS);
        // A running locker barges past the woken waiter.
        assert!(m.try_lock());
        assert!(!m.take(true), "the woken waiter loses");
        assert!(!m.register(true, false), "and queues again, giving up K");
        assert_eq!(m.raw(), LOCKED | WAITERS);
        // The barger's unlock wakes again; the woken waiter wins this time.
        assert_eq!(m.unlock_slow(), Unlocked::Wake);
        assert!(m.take(true));
        m.queue_emptied();
        assert_eq!(m.raw(), LOCKED);
    }

    #[test]
    fn starvation_round_trip() {
        let m = MutexWord::new();
        assert!(m.lock_fast());
        assert!(!m.register(false, true), "a starving waiter queues");
        assert!(m.is_starving() && m.is_locked());
        assert!(!m.try_lock(), "no barging in starvation mode");
        assert_eq!(m.unlock_slow(), Unlocked::HandOff);
        assert!(m.is_locked(), "a handoff keeps the lock held");
        m.queue_emptied();
        m.handed_off(true);
        assert!(!m.is_starving(), "the last waiter leaves starvation mode");
        assert!(m.unlock_fast());
        // Starving, but every waiter left: the unlock frees the lock.
        assert!(m.lock_fast());
        assert!(!m.register(false, true));
        assert_eq!(m.unlock_slow(), Unlocked::HandOff);
        m.handoff_none();
        assert_eq!(m.raw(), 0);
    }

    #[test]
    fn woken_waiter_gives_up() {
        let m = MutexWord::new();
        assert!(m.lock_fast());
        assert!(!m.register(false, false));
        assert!(!m.register(false, false));
        assert_eq!(m.unlock_slow(), Unlocked::Wake);
        // Free, waiters, K given up: the wake passes on.
        assert!(m.pass_wake());
        assert_eq!(m.raw(), WOKEN | WAITERS);
        // Held: the holder's unlock will wake; nothing to pass on.
        assert!(m.try_lock());
        assert!(!m.pass_wake());
        assert_eq!(m.raw(), LOCKED | WAITERS);
        assert!(m.spin_woken(), "a spinner may own K");
        assert!(!m.spin_woken());
        assert_eq!(m.unlock_slow(), Unlocked::Done, "the spinner is on the way");
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! The protocol: the real [`MutexWord`] and [`WaitList`] with the
    //! lock/unlock steps of `sync::Mutex`. Waiters "park" by spinning on
    //! their woken flag; the clock is replaced by counts: a waiter counts as
    //! starving once it has been woken `starve_after` times, and a timed
    //! waiter's deadline is "now" at every point where the real code looks
    //! at it (it claims its own waiter as a thread's deadline does, and gives
    //! up if woken and beaten).
    use super::*;
    use crate::sm::waitq::{Node, TestBlocker, WaitList, TIMED_OUT};
    use loom::sync::atomic::AtomicUsize as Count;
    use loom::sync::{Arc, Mutex};

    std::thread_local! {
        /// How often each path of interest ran, over all the executions of
        /// the test running on this thread (loom runs a model's threads on
        /// the test's own thread): the models assert that they reach them.
        static SEEN: std::cell::RefCell<std::collections::HashMap<&'static str, usize>> =
            Default::default();
    }

    fn seen(what: &'static str) {
        SEEN.with(|s| *s.borrow_mut().entry(what).or_default() += 1);
    }

    fn assert_seen(whats: &[&'static str]) {
        SEEN.with(|s| {
            let s = s.borrow();
            for w in whats {
                assert!(
                    s.get(w).copied().unwrap_or(0) > 0,
                    "model never reached: {w}"
                );
            }
        });
    }

    struct M {
        word: MutexWord,
        queue: Mutex<Q>,
        inside: Count,
    }
    struct Q(WaitList<(), TestBlocker>);
    // SAFETY: (test) nodes are only touched under the loom mutex.
    unsafe impl Send for Q {}

    /// A mutex the model's main thread holds.
    fn held_mutex() -> Arc<M> {
        let m = Arc::new(M {
            word: MutexWord::new(),
            queue: Mutex::new(Q(WaitList::new())),
            inside: Count::new(0),
        });
        assert!(m.word.lock_fast());
        m
    }

    /// A thread that runs [`critical`] with `o`; its join says whether it
    /// got the lock.
    fn spawn_critical(m: &Arc<M>, o: Opts) -> loom::thread::JoinHandle<bool> {
        let m = m.clone();
        loom::thread::spawn(move || critical(&m, o))
    }

    #[derive(Clone, Copy, Default)]
    struct Opts {
        /// Spin once (setting K if it can) before queueing.
        spin: bool,
        /// A timed wait whose deadline has passed.
        timeout: bool,
        /// Starving after this many wake-ups.
        starve_after: Option<usize>,
    }

    fn lock(m: &M, o: Opts) -> bool {
        if m.word.lock_fast() {
            return true;
        }
        let (mut awoke, mut spun, mut queued) = (false, false, false);
        let mut wakes = 0;
        let starving = |wakes: usize| o.starve_after.is_some_and(|k| wakes >= k);
        loop {
            if m.word.take(awoke) {
                if awoke {
                    seen("woken waiter took it");
                }
                return true;
            }
            if awoke {
                seen("woken waiter beaten");
            }
            if o.spin && !spun && m.word.spinnable() {
                spun = true;
                if !awoke {
                    awoke = m.word.spin_woken();
                    if awoke {
                        seen("spinner owns K");
                    }
                }
                loom::thread::yield_now();
                continue;
            }
            if o.timeout && (wakes > 0 || spun) {
                if awoke {
                    seen("woken, then timed out");
                    if m.word.pass_wake() {
                        seen("wake-up passed on");
                        wake(m, WAKE);
                    }
                }
                return false;
            }
            let mut q = m.queue.lock().unwrap();
            if m.word.register(awoke, starving(wakes)) {
                return true;
            }
            // K given up by `register` (`awoke` is set again on a wake).
            let b = TestBlocker::new();
            let node: Node<(), TestBlocker> = Node::new(None);
            node.prepare(&b, WAKE);
            // SAFETY: the node stays on this frame until a waker popped it
            // or it was removed below.
            if starving(wakes) {
                seen("starvation mode");
            }
            unsafe {
                if queued {
                    seen("queued again at the front");
                    q.0.push_front(&node);
                } else {
                    q.0.push_back(&node);
                }
            }
            queued = true;
            drop(q);
            if o.timeout && b.claim.claim(TIMED_OUT) {
                seen("timed out while queued");
                let mut q = m.queue.lock().unwrap();
                // SAFETY: the node was only ever linked in this queue.
                if unsafe { q.0.remove(&node) } && q.0.is_empty() {
                    m.word.queue_emptied();
                }
                return false;
            }
            while !b.woken.load(Ordering::Acquire) {
                loom::thread::yield_now();
            }
            wakes += 1;
            match b.claim.get() {
                HANDOFF => {
                    seen("handed the lock");
                    m.word.handed_off(starving(wakes));
                    return true;
                }
                t => assert_eq!(t, WAKE),
            }
            awoke = true;
            spun = false;
        }
    }

    /// Wakes the first waiter with `token` (the caller owns K, or is handing
    /// off the lock).
    fn wake(m: &M, token: usize) {
        let mut q = m.queue.lock().unwrap();
        match q.0.pop_claim_as(token) {
            Some(n) => {
                seen(if token == WAKE {
                    "woke a waiter"
                } else {
                    "handed off"
                });
                if q.0.is_empty() {
                    m.word.queue_emptied();
                }
                // SAFETY: claimed under the lock, woken last.
                let b = unsafe { (*n).blocker_ptr() };
                // SAFETY: the blocker is alive until woken.
                unsafe { (*b).woken.store(true, Ordering::Release) };
            }
            None if token == WAKE => {
                seen("woke nobody");
                m.word.woke_none();
            }
            None => {
                seen("handed off to nobody");
                m.word.handoff_none();
            }
        }
    }

    fn unlock(m: &M) {
        if m.word.unlock_fast() {
            return;
        }
        match m.word.unlock_slow() {
            Unlocked::Done => {}
            Unlocked::Wake => wake(m, WAKE),
            Unlocked::HandOff => wake(m, HANDOFF),
        }
    }

    fn critical(m: &M, o: Opts) -> bool {
        if !lock(m, o) {
            return false;
        }
        assert_eq!(m.inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
        m.inside.fetch_sub(1, Ordering::SeqCst);
        unlock(m);
        true
    }

    fn assert_idle(m: &M) {
        assert_eq!(m.word.raw(), 0, "free, normal mode, no waiters");
        assert!(m.queue.lock().unwrap().0.is_empty());
    }

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(2);
        b.check(f);
    }

    /// A holder releases while two lockers (one spinning) contend: mutual
    /// exclusion, every locker gets the lock, nothing is left behind.
    #[test]
    fn contend_wake_and_barge() {
        model(|| {
            let m = held_mutex();
            let hs: Vec<_> = [
                Opts::default(),
                Opts {
                    spin: true,
                    ..Opts::default()
                },
            ]
            .into_iter()
            .map(|o| spawn_critical(&m, o))
            .collect();
            unlock(&m);
            for h in hs {
                assert!(h.join().unwrap());
            }
            assert_idle(&m);
        });
        assert_seen(&[
            "woke a waiter",
            "woken waiter took it",
            "woken waiter beaten",
            "queued again at the front",
            "spinner owns K",
        ]);
    }

    /// A barger locks twice while a waiter that starves after its first
    /// wake-up competes: the waiter loses, queues again at the front in
    /// starvation mode, is handed the lock, and the mutex returns to
    /// normal mode.
    #[test]
    fn requeue_and_starvation() {
        model(|| {
            let m = held_mutex();
            let o = Opts {
                starve_after: Some(1),
                ..Opts::default()
            };
            let w = spawn_critical(&m, o);
            unlock(&m);
            assert!(critical(&m, Opts::default()));
            assert!(critical(&m, Opts::default()));
            assert!(w.join().unwrap());
            assert_idle(&m);
        });
        assert_seen(&[
            "woken waiter beaten",
            "queued again at the front",
            "starvation mode",
            "handed off",
            "handed the lock",
        ]);
    }

    /// A timed waiter gives up while the holder unlocks, racing the wake-up
    /// meant for it; an untimed waiter must still get the lock.
    #[test]
    fn timeout_races_unlock() {
        model(|| {
            let m = held_mutex();
            let o = Opts {
                timeout: true,
                ..Opts::default()
            };
            let timed = spawn_critical(&m, o);
            let plain = spawn_critical(&m, Opts::default());
            unlock(&m);
            timed.join().unwrap();
            assert!(plain.join().unwrap());
            assert_idle(&m);
        });
        assert_seen(&[
            "timed out while queued",
            "woken, then timed out",
            "woke nobody",
        ]);
    }

    /// The timed waiter queues first and is woken; the holder relocks at
    /// once (barging), unlocks while the woken waiter still owns K, and the
    /// woken waiter gives up: it must pass the wake-up on to the plain
    /// waiter queued behind it.
    #[test]
    fn woken_waiter_times_out_and_passes_the_wake_up_on() {
        model(|| {
            let m = held_mutex();
            let done = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            let timed = {
                let (m, done) = (m.clone(), done.clone());
                loom::thread::spawn(move || {
                    let o = Opts {
                        timeout: true,
                        ..Opts::default()
                    };
                    critical(&m, o);
                    done.store(true, Ordering::SeqCst);
                })
            };
            // Until it has queued (or already gave up).
            while m.word.raw() & WAITERS == 0 && !done.load(Ordering::SeqCst) {
                loom::thread::yield_now();
            }
            let plain = spawn_critical(&m, Opts::default());
            unlock(&m);
            assert!(critical(&m, Opts::default()));
            timed.join().unwrap();
            assert!(plain.join().unwrap());
            assert_idle(&m);
        });
        assert_seen(&["woken, then timed out", "wake-up passed on"]);
    }

    /// A starving waiter is handed the lock while a timed waiter behind it
    /// gives up: the handoff either reaches a waiter or frees the lock.
    #[test]
    fn handoff_races_timeout() {
        model(|| {
            let m = held_mutex();
            let o = Opts {
                timeout: true,
                starve_after: Some(0),
                ..Opts::default()
            };
            let timed = spawn_critical(&m, o);
            unlock(&m);
            let _ = timed.join().unwrap();
            assert!(critical(&m, Opts::default()));
            assert_idle(&m);
        });
        assert_seen(&[
            "starvation mode",
            "timed out while queued",
            "handed off to nobody",
        ]);
    }
}
