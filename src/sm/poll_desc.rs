//! The wait slots of a PollDesc: Go's `rg`/`wg` binary semaphores
//! (runtime/netpoll.go), one per direction, plus the descriptor's info bits.
//!
//! ## States of a slot
//!
//! | value        | meaning                                                          |
//! |--------------|------------------------------------------------------------------|
//! | `PD_NIL`     | nothing pending, nobody waiting                                  |
//! | `PD_READY`   | an I/O readiness notification is pending                         |
//! | `PD_WAIT`    | a coroutine published that it is about to park (not parked yet)  |
//! | other        | a parked coroutine (`Arc::into_raw` of its task, never 0/1/2)    |
//!
//! ## Transitions (each a CAS or swap on the slot)
//!
//! | from       | by                                         | to        | then                          |
//! |------------|--------------------------------------------|-----------|-------------------------------|
//! | READY      | [`consume_ready`] / [`prepare_block`]      | NIL       | the op tries its syscall      |
//! | NIL        | [`prepare_block`] (the op's coroutine)     | WAIT      | re-check errors, then park    |
//! | WAIT       | [`commit`] (worker, after the switch)      | task      | coroutine is parked           |
//! | WAIT       | [`unblock`]`(io)` / `(!io)`                | READY/NIL | commit fails: resume at once  |
//! | task       | [`unblock`]`(io)` / `(!io)`                | READY/NIL | caller readies the task       |
//! | NIL        | [`unblock`]`(io)` (netpollready)           | READY     | the next op consumes it       |
//! | NIL, READY | [`unblock`]`(!io)` (deadline, close)       | unchanged | the op re-checks errors       |
//! | any ≤ WAIT | [`finish_block`] (the op, after the park)  | NIL       | returns whether it was READY  |
//! | own task   | [`cancel_block`] (the op, unwound parked)  | NIL       | the op takes its reference back |
//!
//! A slot is owned, for blocking, by the one op holding the direction's
//! fdMutex lock (`net::fd_mutex`); a second `prepare_block` on a slot that is
//! WAIT or holds a task is Go's "double wait" and panics.
//!
//! ## The four races and the CAS that settles each
//! 1. *Readiness before the park*: netpollready stored READY; the op's
//!    `consume_ready`/`prepare_block` CAS READY->NIL takes it and the op
//!    retries its syscall instead of parking.
//! 2. *Readiness between WAIT and the commit*: `unblock(io)` swaps WAIT for
//!    READY and returns no task; the worker's commit CAS WAIT->task fails, the
//!    coroutine resumes at once and `finish_block` sees READY.
//! 3. *Timeout or close between WAIT and the commit*: `unblock(!io)` CAS
//!    WAIT->NIL; the commit fails, the coroutine resumes and re-checks errors.
//!    A deadline or close that lands *before* WAIT is published is caught by
//!    the error re-check the op does after publishing WAIT: both sides store
//!    first and load second, SeqCst (Dekker), so one of them sees the other.
//! 4. *Readiness or timeout after the commit*: `unblock` takes the task out
//!    with a read-modify-write (a swap to READY for readiness, a CAS to NIL
//!    otherwise), so exactly one waker gets it and readies it once.
//!
//! ## Cancellation
//! A parked coroutine can be unwound without ever running again (its runtime
//! is dropped while it waits on a socket that outlives it). Its unwind guard
//! calls [`cancel_block`], a CAS from its own task back to NIL, racing the
//! wakers' `unblock` read-modify-write on the same word: exactly one of them takes the task
//! out and owns its reference. If the guard wins, nothing stale is left for
//! the next op ("double wait") or for a recycled PollDesc; if a waker wins,
//! it readies a coroutine that is being dropped, which its runtime discards.
//!
//! ## Info bits
//! `closing` (Go's `pd.closing`, set once by close), `hup` (a hang-up,
//! read-shutdown or error event was seen: the descriptor stays readable, so
//! the read path's "short read means drained" shortcut must not be used) and
//! `dead` (the runtime whose poller owns the descriptor has shut down: no
//! readiness will ever be reported, so a coroutine must not park; it also
//! sets `hup`, turning the shortcut off). A `dead` store followed by
//! `unblock` pairs with the parking op's WAIT store and re-check exactly as
//! `closing` does (race 3). All are sticky until the PollDesc is recycled
//! ([`reset`]).
//!
//! Two more bits, `expired_r` and `expired_w`, are a hint for the error
//! checks: one is set ([`set_expired`]) before any deadline word of its
//! direction (kept by the PollDesc, `netpoll::poll_desc`) is stored as
//! expired, and it stays set. A check that finds neither its direction's
//! bit nor `closing` therefore knows, from that one load, that no deadline
//! of the direction had expired when the bit was read; one that finds the
//! bit reads the deadline words. For race 3 a deadline expiry is a store of
//! the bit followed by `unblock`, exactly as `closing`.
//!
//! Three settings ride along, so that a stream op reads everything it
//! decides on at its start in the one load it makes anyway
//! (`PdState::info`): `timeout_r`/`timeout_w` (a std timeout is set for the
//! direction: the op's waits need a per-op deadline) and `nonblocking` (the
//! user's `set_nonblocking(true)`: an op that would wait fails instead).
//! Their setters (`PdState::set_timeout_bit`, `PdState::set_nonblocking`)
//! store them with a read-modify-write (the other bits change
//! concurrently); they may be set and cleared any number of times and take
//! no part in the races above: an op that runs concurrently with a setter
//! sees the setting from before or after it, as it would a plain flag.

use crate::loom::{AtomicU32, AtomicUsize, Ordering};

/// Nothing pending.
pub(crate) const PD_NIL: usize = 0;
/// A readiness notification is pending.
pub(crate) const PD_READY: usize = 1;
/// A coroutine is about to park.
pub(crate) const PD_WAIT: usize = 2;

/// Info bit: the descriptor is being closed.
const CLOSING: u32 = 1;
/// Info bit: a hang-up / error event was seen.
const HUP: u32 = 2;
/// Info bit: the owning runtime's poller has shut down.
const DEAD: u32 = 4;
/// Info bit: a read deadline has expired at some point (a hint).
const EXPIRED_R: u32 = 8;
/// Info bit: a write deadline has expired at some point (a hint).
const EXPIRED_W: u32 = 16;
/// Setting: a std timeout is set for reads.
const TIMEOUT_R: u32 = 32;
/// Setting: a std timeout is set for writes.
const TIMEOUT_W: u32 = 64;
/// Setting: the user's non-blocking mode.
const NONBLOCKING: u32 = 128;

#[inline]
fn timeout_bit(mode: Mode) -> u32 {
    match mode {
        Mode::Read => TIMEOUT_R,
        Mode::Write => TIMEOUT_W,
    }
}

#[inline]
fn expired_bit(mode: Mode) -> u32 {
    match mode {
        Mode::Read => EXPIRED_R,
        Mode::Write => EXPIRED_W,
    }
}

/// The info bits as one load found them ([`PdState::info`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Info(u32);

impl Info {
    /// As [`PdState::closing_or_expired`] at the time of the load.
    #[inline]
    pub(crate) fn closing_or_expired(self, mode: Mode) -> bool {
        self.0 & (CLOSING | expired_bit(mode)) != 0
    }

    /// Closing, a deadline of `mode` expired (the hint) or a std timeout
    /// set for `mode`: all a stream op must look at before it can go its
    /// common way, in one test.
    #[inline]
    pub(crate) fn closing_expired_or_timeout(self, mode: Mode) -> bool {
        self.0 & (CLOSING | expired_bit(mode) | timeout_bit(mode)) != 0
    }

    /// A hang-up seen or non-blocking mode: the stream shortcut is off.
    #[inline]
    pub(crate) fn hup_or_nonblocking(self) -> bool {
        self.0 & (HUP | NONBLOCKING) != 0
    }

    /// None of [`closing_expired_or_timeout`](Self::closing_expired_or_timeout)
    /// and [`hup_or_nonblocking`](Self::hup_or_nonblocking): a stream op's
    /// common way, with the shortcut allowed, from one test.
    #[inline]
    pub(crate) fn plain(self, mode: Mode) -> bool {
        self.0 & (CLOSING | expired_bit(mode) | timeout_bit(mode) | HUP | NONBLOCKING) == 0
    }
}

/// Direction of an operation: reads use `rg`, writes use `wg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Reads, accepts, receives.
    Read,
    /// Writes, connects, sends.
    Write,
}

/// One direction's slot of a [`PdState`] ([`PdState::slot_of`]): the
/// transitions of a park that the worker's commit and the parked op's
/// unwind guard make.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot<'a>(&'a AtomicUsize);

impl Slot<'_> {
    /// The park's commit step (Go's `netpollblockcommit`), run by the worker
    /// after the coroutine switched off its stack: WAIT->`task`. False if a
    /// waker got there first (the coroutine must run again at once).
    #[inline]
    pub(crate) fn commit(self, task: usize) -> bool {
        debug_assert!(task > PD_WAIT);
        // AcqRel: Release publishes the parked coroutine's writes to whoever
        // takes the task out in `unblock` (Acquire there).
        self.0
            .compare_exchange(PD_WAIT, task, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// The unwind clean-up of an op parked as `task` whose coroutine is
    /// being dropped (see Cancellation in the module docs): task->NIL. True
    /// if the task was still there: the caller owns that reference again.
    /// False if a waker took it (and readies it).
    pub(crate) fn cancel_block(self, task: usize) -> bool {
        debug_assert!(task > PD_WAIT);
        // Acquire pairs with `commit`'s Release; SeqCst like every other
        // transition of the slot.
        self.0
            .compare_exchange(task, PD_NIL, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

/// Result of [`PdState::prepare_block`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prepare {
    /// A notification was pending and is now consumed: try the syscall.
    Ready,
    /// WAIT is published: re-check errors, then park with [`PdState::commit`].
    Wait,
}

#[cold]
#[inline(never)]
fn corrupted(mode: Mode) -> ! {
    panic!("gopark: corrupted PollDesc ({mode:?})")
}

#[cold]
#[inline(never)]
fn double_wait(mode: Mode) -> ! {
    panic!("gopark: double wait on a PollDesc ({mode:?})")
}

/// The lock-free part of a PollDesc (see the module docs).
#[derive(Debug)]
pub(crate) struct PdState {
    /// Read slot (Go's `rg`).
    rg: AtomicUsize,
    /// Write slot (Go's `wg`).
    wg: AtomicUsize,
    /// `CLOSING | HUP | DEAD | EXPIRED_R | EXPIRED_W`, and the settings
    /// `TIMEOUT_R | TIMEOUT_W | NONBLOCKING`.
    info: AtomicU32,
}

impl PdState {
    pub(crate) fn new() -> PdState {
        PdState {
            rg: AtomicUsize::new(PD_NIL),
            wg: AtomicUsize::new(PD_NIL),
            info: AtomicU32::new(0),
        }
    }

    #[inline]
    fn slot(&self, mode: Mode) -> &AtomicUsize {
        match mode {
            Mode::Read => &self.rg,
            Mode::Write => &self.wg,
        }
    }

    /// Recycles the state for a new descriptor (Go's `pollOpen` reset).
    ///
    /// # Panics
    /// If a coroutine still waits on a slot ("blocked read on free polldesc").
    pub(crate) fn reset(&self) {
        for mode in [Mode::Read, Mode::Write] {
            let old = self.slot(mode).swap(PD_NIL, Ordering::SeqCst);
            assert!(
                old <= PD_READY,
                "gopark: blocked {mode:?} on a free PollDesc"
            );
        }
        self.info.store(0, Ordering::SeqCst);
    }

    /// Consumes a pending READY before a syscall; true if there was one.
    /// After it, every readiness edge that follows leaves READY behind.
    #[inline]
    pub(crate) fn consume_ready(&self, mode: Mode) -> bool {
        let s = self.slot(mode);
        // SeqCst: pairs with netpollready's store of `hup` before its load of
        // the slot (see `hup`).
        s.load(Ordering::SeqCst) == PD_READY
            && s.compare_exchange(PD_READY, PD_NIL, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
    }

    /// True if a READY is pending (does not consume it).
    #[cfg(test)]
    pub(crate) fn is_ready(&self, mode: Mode) -> bool {
        self.slot(mode).load(Ordering::SeqCst) == PD_READY
    }

    /// First half of Go's `netpollblock`: READY->NIL, or NIL->WAIT.
    ///
    /// # Panics
    /// On a double wait (the slot is WAIT or holds a task): two ops blocked in
    /// one direction, which the fdMutex makes impossible.
    #[inline]
    pub(crate) fn prepare_block(&self, mode: Mode) -> Prepare {
        let s = self.slot(mode);
        // The park's case first, NIL->WAIT, with no load before it; a
        // failed CAS reads the current value like a load (SeqCst: race 3).
        // Then one CAS, the one the current value calls for (a waker may
        // change it in between: then try again with what the CAS found).
        let mut v = match s.compare_exchange(PD_NIL, PD_WAIT, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return Prepare::Wait,
            Err(found) => found,
        };
        loop {
            let (new, got) = match v {
                PD_READY => (PD_NIL, Prepare::Ready),
                PD_NIL => (PD_WAIT, Prepare::Wait),
                _ => double_wait(mode),
            };
            // SeqCst: the WAIT store must precede the caller's error re-check
            // in the single total order (race 3 in the module docs).
            match s.compare_exchange(v, new, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return got,
                Err(found) => v = found,
            }
        }
    }

    /// `mode`'s slot, for the park of the op that owns it: its commit and
    /// its unwind guard then carry one pointer, not the PdState and the
    /// direction.
    #[inline]
    pub(crate) fn slot_of(&self, mode: Mode) -> Slot<'_> {
        Slot(self.slot(mode))
    }

    /// [`Slot::commit`] of `mode`'s slot.
    #[cfg(test)]
    pub(crate) fn commit(&self, mode: Mode, task: usize) -> bool {
        self.slot_of(mode).commit(task)
    }

    /// Second half of `netpollblock`, after the park (or after deciding not
    /// to park): the slot goes back to NIL; true if it was READY.
    ///
    /// # Panics
    /// If the slot still holds a task: the coroutine ran while parked.
    pub(crate) fn finish_block(&self, mode: Mode) -> bool {
        let old = self.slot(mode).swap(PD_NIL, Ordering::SeqCst);
        assert!(old <= PD_WAIT, "gopark: corrupted PollDesc ({mode:?})");
        old == PD_READY
    }

    /// [`finish_block`](Self::finish_block) for an op that parked as `task`
    /// and may have been resumed without a waker (a coroutine resumed by its
    /// worker at runtime shutdown): if the slot still holds `task`, the
    /// resume was spurious; the slot becomes NIL, `Err(())` tells the caller
    /// it owns the slot's reference again, and no waker will ready the task
    /// for this park. Otherwise as `finish_block`.
    #[inline]
    pub(crate) fn finish_block_as(&self, mode: Mode, task: usize) -> Result<bool, ()> {
        let old = self.slot(mode).swap(PD_NIL, Ordering::SeqCst);
        // The common case first: woken by readiness.
        if old == PD_READY {
            return Ok(true);
        }
        if old == task {
            return Err(());
        }
        if old > PD_WAIT {
            corrupted(mode);
        }
        Ok(false)
    }

    /// [`Slot::cancel_block`] of `mode`'s slot.
    #[cfg(all(test, loom))]
    pub(crate) fn cancel_block(&self, mode: Mode, task: usize) -> bool {
        self.slot_of(mode).cancel_block(task)
    }

    /// [`unblock`](Self::unblock)`(mode, true)` without its first load:
    /// one swap to READY, whatever the slot holds (READY over READY
    /// included), for a direction that likely has an op parked, which the
    /// load would only find out to go on to the swap anyway.
    #[inline]
    pub(crate) fn unblock_io(&self, mode: Mode) -> Option<usize> {
        // SeqCst: as `unblock`.
        let old = self.slot(mode).swap(PD_READY, Ordering::SeqCst);
        (old > PD_WAIT).then_some(old)
    }

    /// Go's `netpollunblock`: READY stays; NIL stays unless `ioready`;
    /// otherwise the slot becomes READY (`ioready`) or NIL and the parked
    /// task, if one was there, is returned for the caller to ready.
    pub(crate) fn unblock(&self, mode: Mode, ioready: bool) -> Option<usize> {
        let s = self.slot(mode);
        let mut old = s.load(Ordering::SeqCst);
        if ioready {
            if old == PD_READY {
                return None;
            }
            // Whatever the slot holds now (a waker or the op may have
            // changed it since the load), it ends READY, as a CAS loop
            // would leave it: one swap, no retry. If it has turned READY
            // meanwhile, the swap stores READY over READY.
            return self.unblock_io(mode);
        }
        loop {
            if old == PD_READY {
                return None;
            }
            if old == PD_NIL {
                // Nothing to wake, but make the check a read-modify-write:
                // a `prepare_block` CAS ordered after it reads from it and so
                // sees the caller's closing/deadline store (race 3) even
                // without relying on SeqCst loads and stores alone.
                match s.compare_exchange(PD_NIL, PD_NIL, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => return None,
                    Err(v) => {
                        old = v;
                        continue;
                    }
                }
            }
            // SeqCst: pairs with `prepare_block` (see race 3); Acquire also
            // pairs with `commit`'s Release.
            match s.compare_exchange(old, PD_NIL, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return (old > PD_WAIT).then_some(old),
                Err(v) => old = v,
            }
        }
    }

    /// Marks the descriptor as closing (before unblocking both slots).
    pub(crate) fn set_closing(&self) {
        // SeqCst: the store precedes the `unblock` loads (Dekker with the
        // waiter's WAIT store and error re-check).
        self.info.fetch_or(CLOSING, Ordering::SeqCst);
    }

    /// True once closing.
    #[inline]
    pub(crate) fn closing(&self) -> bool {
        self.info.load(Ordering::SeqCst) & CLOSING != 0
    }

    /// False only if the descriptor is not closing and no deadline of
    /// `mode` has ever expired (module docs, the `expired` hint): the op's
    /// error check in one load; if true, it checks the deadlines.
    #[inline]
    pub(crate) fn closing_or_expired(&self, mode: Mode) -> bool {
        // SeqCst: race 3 (the waiting op's re-check after WAIT).
        self.info.load(Ordering::SeqCst) & (CLOSING | expired_bit(mode)) != 0
    }

    /// The info bits in one load, for an op's start: its error check and
    /// what decides its way ([`Info`]) from the same word.
    #[inline]
    pub(crate) fn info(&self) -> Info {
        // SeqCst: as `closing_or_expired` and `hup`.
        Info(self.info.load(Ordering::SeqCst))
    }

    /// [`closing_or_expired`](Self::closing_or_expired), or dead: the
    /// check of an op that would park.
    #[inline]
    pub(crate) fn closing_dead_or_expired(&self, mode: Mode) -> bool {
        // SeqCst: race 3, as above.
        self.info.load(Ordering::SeqCst) & (CLOSING | DEAD | expired_bit(mode)) != 0
    }

    /// Sets `mode`'s expired hint; called before any deadline word of
    /// `mode` is stored as expired (module docs).
    pub(crate) fn set_expired(&self, mode: Mode) {
        // SeqCst, and a read-modify-write even when the bit is already set:
        // this expiry's own place in the single total order precedes the
        // deadline store and the `unblock` that follow it, as
        // `set_closing`'s does (race 3). Expiries are rare; a store per one
        // costs nothing on the op path.
        self.info.fetch_or(expired_bit(mode), Ordering::SeqCst);
    }

    /// Marks the descriptor's poller as gone (before unblocking both slots).
    pub(crate) fn set_dead(&self) {
        // SeqCst: as `set_closing`.
        self.info.fetch_or(DEAD | HUP, Ordering::SeqCst);
    }

    /// True once the owning poller has shut down.
    #[inline]
    pub(crate) fn dead(&self) -> bool {
        self.info.load(Ordering::SeqCst) & DEAD != 0
    }

    /// Records a hang-up / error event (netpoll, before unblocking `rg`).
    pub(crate) fn set_hup(&self) {
        if self.info.load(Ordering::Relaxed) & HUP == 0 {
            self.info.fetch_or(HUP, Ordering::SeqCst);
        }
        // A READY already pending in `rg` may be consumed by a reader that
        // never synchronised with the store above. Re-publish it with a
        // read-modify-write: a consume ordered after this CAS reads from it
        // (Release/Acquire) and sees HUP; one ordered before it leaves NIL,
        // and the `unblock(io)` that follows stores a fresh READY.
        let _ = self
            .rg
            .compare_exchange(PD_READY, PD_READY, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Records whether a std timeout is set for `mode` (module docs); the
    /// caller stores the timeout itself first.
    pub(crate) fn set_timeout_bit(&self, mode: Mode, on: bool) {
        // SeqCst (Release would do): an op whose load finds the bit set
        // sees the timeout stored before it.
        if on {
            self.info.fetch_or(timeout_bit(mode), Ordering::SeqCst);
        } else {
            self.info.fetch_and(!timeout_bit(mode), Ordering::SeqCst);
        }
    }

    /// Sets or clears non-blocking mode (module docs).
    pub(crate) fn set_nonblocking(&self, on: bool) {
        if on {
            self.info.fetch_or(NONBLOCKING, Ordering::SeqCst);
        } else {
            self.info.fetch_and(!NONBLOCKING, Ordering::SeqCst);
        }
    }

    /// True in non-blocking mode.
    #[inline]
    pub(crate) fn nonblocking(&self) -> bool {
        self.info.load(Ordering::Relaxed) & NONBLOCKING != 0
    }

    /// True once a hang-up / error event was seen.
    #[inline]
    pub(crate) fn hup(&self) -> bool {
        self.info.load(Ordering::SeqCst) & HUP != 0
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    const TASK: usize = 0x1000;

    /// Runs `wake` on a second thread; it returns how many parked ops it
    /// took out (and so readied).
    fn spawn_waker(
        pd: &Arc<PdState>,
        wake: impl FnOnce(&PdState) -> usize + Send + 'static,
    ) -> loom::thread::JoinHandle<usize> {
        let pd = pd.clone();
        loom::thread::spawn(move || wake(&pd))
    }

    /// `unblock` of each of `modes` (`io`: as readiness), counting the
    /// tasks taken out; the only task any model parks is `TASK`.
    fn unblock_all(pd: &PdState, modes: &[Mode], io: bool) -> usize {
        let mut n = 0;
        for &mode in modes {
            if let Some(task) = pd.unblock(mode, io) {
                assert_eq!(task, TASK);
                n += 1;
            }
        }
        n
    }

    /// One blocking op (the coroutine side, commit included) against one
    /// waker: returns (readied by waker, op ran again at once, saw READY).
    fn block_once(pd: &PdState, mode: Mode, errcheck: impl Fn() -> bool) -> (bool, bool) {
        match pd.prepare_block(mode) {
            Prepare::Ready => (false, true),
            Prepare::Wait => {
                let parked = errcheck() && pd.commit(mode, TASK);
                (parked, false)
            }
        }
    }

    /// Races 1, 2 and 4: readiness against a park. The op is readied exactly
    /// once if it parked, and it never stays parked after the readiness.
    #[test]
    fn readiness_races_park() {
        loom::model(|| {
            let pd = Arc::new(PdState::new());
            let t = spawn_waker(&pd, |pd| unblock_all(pd, &[Mode::Read], true));
            let (parked, _) = block_once(&pd, Mode::Read, || true);
            let r = t.join().unwrap();
            assert_eq!(r, usize::from(parked));
            // However it went, the op got the notification exactly once:
            // either through prepare (Ready) or through finish_block.
            let _ = pd.finish_block(Mode::Read);
            assert_eq!(pd.unblock(Mode::Read, false), None);
        });
    }

    /// Race 3 for a deadline: the expirer sets the direction's expired hint
    /// (before its deadline store, which the hint stands for) and
    /// unblocks; the op's re-check after WAIT reads only the hint. The op
    /// never stays parked; a write deadline's hint does not fail a read.
    #[test]
    fn expiry_races_park() {
        loom::model(|| {
            let pd = Arc::new(PdState::new());
            let t = spawn_waker(&pd, |pd| {
                pd.set_expired(Mode::Read);
                unblock_all(pd, &[Mode::Read], false)
            });
            let pd2 = pd.clone();
            let (parked, _) =
                block_once(&pd, Mode::Read, move || !pd2.closing_or_expired(Mode::Read));
            assert_eq!(t.join().unwrap(), usize::from(parked));
            assert!(!pd.finish_block(Mode::Read));
            assert!(pd.closing_or_expired(Mode::Read));
            assert!(!pd.closing_or_expired(Mode::Write));
        });
    }

    /// Race 3: close against a park. Whatever the interleaving the op does
    /// not stay parked: it sees `closing` in its re-check, or its commit
    /// fails, or the closer takes the task out and readies it.
    #[test]
    fn close_races_park() {
        loom::model(|| {
            let pd = Arc::new(PdState::new());
            let t = spawn_waker(&pd, |pd| {
                pd.set_closing();
                unblock_all(pd, &[Mode::Read, Mode::Write], false)
            });
            let pd2 = pd.clone();
            let (parked, _) = block_once(&pd, Mode::Read, move || !pd2.closing());
            assert_eq!(t.join().unwrap(), usize::from(parked));
            assert!(!pd.finish_block(Mode::Read));
            assert!(pd.closing());
        });
    }

    /// Cancellation: the parked op's coroutine is unwound while a waker
    /// (readiness, or a deadline/close) races to take it out. Exactly one
    /// side gets the reference, and the slot is left free for the next op.
    #[test]
    fn unwind_races_wakers() {
        for io in [true, false] {
            loom::model(move || {
                let pd = Arc::new(PdState::new());
                assert_eq!(pd.prepare_block(Mode::Read), Prepare::Wait);
                assert!(pd.commit(Mode::Read, TASK));
                let t = spawn_waker(&pd, move |pd| {
                    if !io {
                        pd.set_closing();
                    }
                    unblock_all(pd, &[Mode::Read], io)
                });
                let taken_back = pd.cancel_block(Mode::Read, TASK);
                let readied = t.join().unwrap();
                assert_eq!(
                    usize::from(taken_back) + readied,
                    1,
                    "the reference must be taken out exactly once"
                );
                // No stale task: the next op may block (no "double wait"),
                // and a recycle finds no waiter.
                let expect = if io { Prepare::Ready } else { Prepare::Wait };
                assert_eq!(pd.prepare_block(Mode::Read), expect);
                let _ = pd.finish_block(Mode::Read);
                pd.reset();
            });
        }
    }

    /// The runtime's shutdown (dead + unblock) against an op about to park:
    /// the op never stays parked on a poller nobody polls.
    #[test]
    fn dead_races_park() {
        loom::model(|| {
            let pd = Arc::new(PdState::new());
            let t = spawn_waker(&pd, |pd| {
                pd.set_dead();
                unblock_all(pd, &[Mode::Read, Mode::Write], false)
            });
            let pd2 = pd.clone();
            let (parked, _) = block_once(&pd, Mode::Read, move || !pd2.dead());
            assert_eq!(t.join().unwrap(), usize::from(parked));
            assert!(pd.dead() && pd.hup());
        });
    }

    /// Two wakers (readiness and a deadline) race for one parked task: it is
    /// readied once.
    #[test]
    fn two_wakers_one_ready() {
        loom::model(|| {
            let pd = Arc::new(PdState::new());
            assert_eq!(pd.prepare_block(Mode::Write), Prepare::Wait);
            assert!(pd.commit(Mode::Write, TASK));
            let hs: Vec<_> = [true, false]
                .into_iter()
                .map(|io| spawn_waker(&pd, move |pd| unblock_all(pd, &[Mode::Write], io)))
                .collect();
            let readied: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(readied, 1);
        });
    }

    /// The read shortcut's premise: a hang-up recorded by an event whose
    /// READY the reader consumed (or found already pending) is visible to the
    /// reader after its consume.
    #[test]
    fn hup_visible_after_consume() {
        loom::model(|| {
            let pd = Arc::new(PdState::new());
            // An earlier event left READY pending.
            assert_eq!(pd.unblock(Mode::Read, true), None);
            let t = {
                let pd = pd.clone();
                loom::thread::spawn(move || {
                    pd.set_hup();
                    let _ = pd.unblock(Mode::Read, true);
                })
            };
            let consumed = pd.consume_ready(Mode::Read);
            assert!(consumed);
            // Either the reader sees HUP now, or the hang-up's event left a
            // READY behind for its next op.
            let hup = pd.hup();
            t.join().unwrap();
            assert!(hup || pd.is_ready(Mode::Read));
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn ready_then_block_does_not_park() {
        let pd = PdState::new();
        assert_eq!(pd.unblock(Mode::Read, true), None);
        assert!(pd.is_ready(Mode::Read));
        assert_eq!(pd.prepare_block(Mode::Read), Prepare::Ready);
        assert_eq!(pd.prepare_block(Mode::Read), Prepare::Wait);
        assert!(pd.commit(Mode::Read, 0x1000));
        assert_eq!(pd.unblock(Mode::Read, false), Some(0x1000));
        assert!(!pd.finish_block(Mode::Read));
    }

    #[test]
    fn unblock_between_wait_and_commit() {
        let pd = PdState::new();
        assert_eq!(pd.prepare_block(Mode::Write), Prepare::Wait);
        assert_eq!(pd.unblock(Mode::Write, true), None);
        assert!(!pd.commit(Mode::Write, 0x1000));
        assert!(pd.finish_block(Mode::Write));
    }

    #[test]
    #[should_panic(expected = "double wait")]
    fn double_wait_panics() {
        let pd = PdState::new();
        assert_eq!(pd.prepare_block(Mode::Read), Prepare::Wait);
        let _ = pd.prepare_block(Mode::Read);
    }

    #[test]
    fn consume_and_flags() {
        let pd = PdState::new();
        assert!(!pd.consume_ready(Mode::Read));
        pd.unblock(Mode::Read, true);
        assert!(pd.consume_ready(Mode::Read));
        assert!(!pd.hup() && !pd.closing());
        pd.set_hup();
        pd.set_closing();
        assert!(pd.hup() && pd.closing());
        pd.reset();
        assert!(!pd.hup() && !pd.closing());
    }

    /// The settings (timeouts, non-blocking) ride in the info word: they
    /// decide a stream op's way and leave the other bits alone.
    #[test]
    fn settings_bits() {
        let pd = PdState::new();
        assert!(!pd.info().closing_expired_or_timeout(Mode::Read));
        pd.set_timeout_bit(Mode::Read, true);
        assert!(pd.info().closing_expired_or_timeout(Mode::Read));
        assert!(!pd.info().closing_expired_or_timeout(Mode::Write));
        pd.set_nonblocking(true);
        assert!(pd.nonblocking() && pd.info().hup_or_nonblocking());
        assert!(!pd.hup() && !pd.closing());
        pd.set_timeout_bit(Mode::Read, false);
        pd.set_nonblocking(false);
        assert!(!pd.info().closing_expired_or_timeout(Mode::Read));
        assert!(!pd.info().hup_or_nonblocking());
        pd.set_hup();
        assert!(pd.info().hup_or_nonblocking());
        pd.set_expired(Mode::Write);
        assert!(pd.info().closing_expired_or_timeout(Mode::Write));
        pd.reset();
        assert!(!pd.info().closing_expired_or_timeout(Mode::Write));
        assert!(!pd.info().hup_or_nonblocking());
    }
}
