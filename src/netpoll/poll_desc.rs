//! PollDesc: the per-descriptor poller state (Go's `pollDesc`), its
//! deadlines, and the blocking side of the protocol (Go's
//! `poll_runtime_pollWait`, `netpollblock`, `netpollcheckerr`,
//! `poll_runtime_pollSetDeadline`, `netpolldeadlineimpl`,
//! `poll_runtime_pollUnblock`).
//!
//! ## Fields and who owns them
//! - `state` (`rg`, `wg`, `closing`, `hup`): lock-free, see
//!   [`crate::sm::poll_desc`] for the states and the four races.
//! - `seq`: the incarnation, bumped by [`PollDesc::open`] while nobody else
//!   can hold the descriptor (it comes off the free list). Its low 16 bits tag
//!   the epoll data, so an event for an earlier incarnation is dropped.
//!   `token`, stored by `open` with it, is that epoll data (address and tag),
//!   so that the poller checks an event with one compare.
//! - `rd`/`wd` ([`Deadline`]): the deadline words are atomics any thread may
//!   store (setters) or CAS (timers); `timer_at` and the timer sequence
//!   numbers are written only under `timer_lock`. Whoever stores a
//!   deadline word as expired (-1) sets the direction's expired hint in
//!   `state` first, so an error check that finds the hint clear needs no
//!   look at the words (`sm::poll_desc`, info bits).
//! - `read_drained`, `write_full`: owned by the op holding the direction's
//!   fdMutex lock (Relaxed atomics only so that the type is `Sync`).
//! - `fd`: the descriptor number, set by [`PollDesc::open`].
//! - `waits`: what an op parked for readiness shows in a coroutine dump,
//!   one record per direction, written only by [`PollDesc::open`] (see
//!   [`WaitSlot`]).
//! - `shards`: one bit per poller shard the descriptor is registered with;
//!   bit `i` is set only by worker `i` (in [`PollDesc::wait`]) and all are
//!   cleared by `Poller::close`, after the last op on the descriptor.
//! - `reg_key`: the address of the worker context (`WorkerCtx`) of the last
//!   waiter that registered the descriptor with its shard, or found it
//!   registered; 0 after [`PollDesc::open`]. A waiter on that same worker
//!   skips the shard lookup: the descriptor stays registered with a shard
//!   until `Poller::close`, after which `open` clears the key. Written by
//!   waiters (Relaxed: a waiter only ever finds its own address there if it
//!   stored it itself, or if a worker context of another runtime that had
//!   the same address stored it; then the descriptor is still registered
//!   with a shard of its own poller, which reports its readiness, and the
//!   wake-up is routed to the waiter's runtime like any cross-thread one).
//!
//! ## Deadlines without a timer per op
//! A direction has at most one *current* timer in a worker's heap. Each
//! carries the sequence number it was armed with and does nothing if a newer
//! timer replaced it. When the current timer fires and finds the deadline
//! moved later, it re-arms itself at the new deadline; a setter that moves a
//! deadline later while an earlier timer is armed only stores the new value
//! (one store and one load, no lock). A setter moving it earlier than the
//! armed timer takes the lock, cancels the armed timer and arms a new one, so
//! a direction never has more than one timer in a heap. An op whose per-op
//! deadline ends early leaves the timer armed: the next op's deadline is
//! later, so it reuses the timer instead of pushing a new one. The current
//! timer belongs to the direction, not to one incarnation of the descriptor:
//! when it fires after the descriptor was recycled, it serves the new
//! incarnation's deadlines (it only expires those that are due). The Dekker pair that makes the lock-free store safe: the timer
//! stores `timer_at = 0` and then loads the deadline; the setter stores the
//! deadline and then loads `timer_at` (all SeqCst). Either the timer sees the
//! new deadline or the setter sees that no timer covers it.
//!
//! Two deadlines share that timer: Go's absolute deadline `at` (sticky: once
//! expired it stays -1 until set again) and the per-op deadline `op_at` that
//! std's `set_read_timeout`/`set_write_timeout` turn into "now + timeout"
//! when an op first has to wait.
//!
//! ## Memory
//! PollDescs are type-stable: allocated by the runtime's poller, recycled
//! through its free list, freed only when the runtime's shared state is
//! dropped. A stale epoll event or timer can therefore always dereference
//! one, and then checks `seq`.

use std::cell::UnsafeCell;
use std::io;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::coroutine::{self, park_commit_running, Task, CANCEL_NONE};
use crate::runtime::timer::{Action, Handle};
use crate::runtime::worker::WorkerCtx;
use crate::runtime::Shared;
use crate::sm::poll_desc::{Info, Mode, PdState, Prepare, Slot};
use crate::wait::{CoroutineState, Wait, WaitRecord};

use super::TAG_SHIFT;

/// The error of an op on a closed descriptor (Go's `ErrNetClosing`): kind
/// `NotConnected`, carrying [`ErrClosed`](crate::net::ErrClosed).
#[cold]
pub(crate) fn err_closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, crate::net::ErrClosed)
}

/// The error of a coroutine's op that would have to wait for readiness on
/// a descriptor whose runtime has shut down (nobody polls it any more).
#[cold]
pub(crate) fn err_runtime_gone() -> io::Error {
    io::Error::other("the runtime this socket was registered with has shut down")
}

/// The error of an op that would wait while its runtime is shutting down.
#[cold]
pub(crate) fn err_shutting_down() -> io::Error {
    io::Error::other("the runtime is shutting down; socket operations no longer wait")
}

/// The error of an op whose deadline expired (Go's `ErrDeadlineExceeded`).
#[cold]
pub(crate) fn err_timeout() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")
}

/// One direction's deadlines (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Deadline {
    /// Go's `rd`/`wd`: 0 none, >0 nanoseconds since the runtime's epoch,
    /// -1 expired.
    at: AtomicI64,
    /// Deadline of the current op from `timeout`: 0 none, >0, -1 fired.
    op_at: AtomicI64,
    /// std-style timeout for each op, nanoseconds, 0 none.
    timeout: AtomicU64,
    /// Fire time of the current timer, 0 if none (written under the lock).
    timer_at: AtomicU64,
}

impl Deadline {
    /// True if Go's deadline or the per-op deadline has expired.
    #[inline(always)]
    fn expired(&self) -> bool {
        self.at.load(Ordering::SeqCst) < 0 || self.op_at.load(Ordering::SeqCst) < 0
    }

    fn reset(&self) {
        self.at.store(0, Ordering::SeqCst);
        self.op_at.store(0, Ordering::SeqCst);
        self.timeout.store(0, Ordering::Relaxed);
    }

    /// Earliest pending (positive) deadline, 0 if none.
    fn next(&self) -> i64 {
        let a = self.at.load(Ordering::SeqCst);
        let b = self.op_at.load(Ordering::SeqCst);
        match (a > 0, b > 0) {
            (true, true) => a.min(b),
            (true, false) => a,
            (false, true) => b,
            (false, false) => 0,
        }
    }

    /// Expires whichever deadline is due at `now`; true if one did.
    /// `hint` (the PollDesc's `set_expired`) runs before each expiring CAS.
    fn expire_due(&self, now: i64, hint: impl Fn()) -> bool {
        let mut fired = false;
        for word in [&self.at, &self.op_at] {
            let mut d = word.load(Ordering::SeqCst);
            while d > 0 && d <= now {
                hint();
                match word.compare_exchange(d, -1, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => {
                        fired = true;
                        break;
                    }
                    Err(v) => d = v,
                }
            }
        }
        fired
    }
}

/// Sequence numbers and handles of the current timers (under `timer_lock`).
#[derive(Debug, Default)]
struct TimerSeqs {
    read: u64,
    write: u64,
    read_timer: Option<Handle>,
    write_timer: Option<Handle>,
}

/// A descriptor's poller state (see the module docs).
#[derive(Debug)]
pub(crate) struct PollDesc {
    pub(crate) state: PdState,
    seq: AtomicU32,
    /// The epoll data of the current incarnation (module docs).
    token: AtomicU64,
    rd: Deadline,
    wd: Deadline,
    timer_lock: Mutex<TimerSeqs>,
    /// The last read was short: the receive queue was empty then.
    read_drained: AtomicBool,
    /// The last write was short: the send buffer was full then.
    write_full: AtomicBool,
    /// The descriptor (-1 while the PollDesc is free).
    fd: AtomicI32,
    /// The wait records of a park for readiness, read and write.
    waits: [WaitSlot; 2],
    /// Shards the descriptor is registered with, a bit per shard.
    shards: Box<[AtomicU64]>,
    /// The worker context that last registered (module docs), 0 if none.
    reg_key: AtomicUsize,
}

/// The wait record a coroutine parked for readiness on a PollDesc points
/// its task at (`coroutine::park_commit`): built once per incarnation by
/// [`PollDesc::open`] instead of in the parking frame on every park, so a
/// park stores one pointer. It points at the PollDesc itself, at its
/// deadline words and at the runtime's epoch, all alive as long as the
/// runtime's `Shared` (PollDesc memory is type-stable, module docs).
///
/// Written only by `open`, while the PollDesc is off the free list and not
/// yet handed out: no op is in flight on it, so no park of one is in
/// progress and no dumper follows a task's pointer to it (a dumper follows
/// it only during the park that stored it, and a parked op keeps the
/// PollDesc from being recycled: a socket op holds its fdMutex lock and
/// reference, a `Pollable` op borrows the `Pollable`). Otherwise only
/// shared references are taken: the parking op
/// passes one to `park_commit`, a dumper reads through it (docs/SAFETY.md,
/// section 14).
#[derive(Debug)]
struct WaitSlot(UnsafeCell<WaitRecord>);

// SAFETY: the record is plain data (pointers to atomics and to an `Instant`
// that live as long as the runtime, see `WaitSlot`); it is written only by
// `PollDesc::open` while no other thread can reach the PollDesc's ops, and
// read otherwise, so sharing it across threads is sound.
unsafe impl Sync for WaitSlot {}
// SAFETY: as above; the pointers are not tied to a thread.
unsafe impl Send for WaitSlot {}

impl WaitSlot {
    fn new() -> WaitSlot {
        WaitSlot(UnsafeCell::new(Wait::plain(CoroutineState::IoWait, None)))
    }
}

/// A PollDesc pointer that may be sent to a timer on another thread.
struct PdPtr(*const PollDesc, *const Shared);
// SAFETY: PollDesc memory is type-stable and lives as long as the runtime's
// `Shared`, which owns the timer heaps the pointer is stored in; both types
// are Sync.
unsafe impl Send for PdPtr {}

/// Nanoseconds since the runtime's epoch as a positive deadline word.
fn nanos(shared: &Shared, t: Instant) -> i64 {
    i64::try_from(shared.nanos(t)).unwrap_or(i64::MAX).max(1)
}

impl PollDesc {
    /// A PollDesc for a poller of `nshards` shards.
    pub(crate) fn new(nshards: usize) -> PollDesc {
        PollDesc {
            state: PdState::new(),
            seq: AtomicU32::new(0),
            token: AtomicU64::new(0),
            rd: Deadline::default(),
            wd: Deadline::default(),
            timer_lock: Mutex::new(TimerSeqs::default()),
            read_drained: AtomicBool::new(false),
            write_full: AtomicBool::new(false),
            fd: AtomicI32::new(-1),
            waits: [WaitSlot::new(), WaitSlot::new()],
            shards: (0..nshards.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            reg_key: AtomicUsize::new(0),
        }
    }

    /// Resets a descriptor taken off the free list for `fd` (Go's
    /// `pollOpen`; -1 when it goes back to the free list) and starts a new
    /// incarnation (a new [`token`](Self::token)).
    pub(crate) fn open(&self, fd: i32) {
        debug_assert!(self.shards.iter().all(|w| w.load(Ordering::Relaxed) == 0));
        self.fd.store(fd, Ordering::Relaxed);
        self.reg_key.store(0, Ordering::Relaxed);
        // The deadline words before the info bits: no word is ever -1
        // while its direction's expired hint is clear.
        self.rd.reset();
        self.wd.reset();
        self.state.reset();
        self.read_drained.store(false, Ordering::Relaxed);
        self.write_full.store(false, Ordering::Relaxed);
        let seq = self.seq.fetch_add(1, Ordering::SeqCst).wrapping_add(1);
        let token = self as *const PollDesc as u64 | (u64::from(seq & 0xffff) << TAG_SHIFT);
        self.token.store(token, Ordering::SeqCst);
    }

    /// Builds the wait records of a park for readiness (see [`WaitSlot`])
    /// for the descriptor [`open`](Self::open) just set; `epoch`: the
    /// epoch of the runtime whose poller owns this PollDesc. Called while
    /// the PollDesc is off the free list and not yet handed out.
    pub(crate) fn init_waits(&self, epoch: &Instant) {
        for mode in [Mode::Read, Mode::Write] {
            let w = self.wait_record(epoch, mode, true);
            // SAFETY: see `WaitSlot`: the PollDesc is off the free list and
            // not handed out, so nothing else reads or writes the slot now.
            // The record's borrows (this PollDesc, the runtime's epoch) are
            // alive as long as the runtime's `Shared`, which outlives every
            // park that points at the record; the cast to `'static` only
            // drops that lifetime, as `park_commit` does for its record.
            unsafe {
                *self.waits[mode as usize].0.get() =
                    (&w as *const Wait<'_>).cast::<WaitRecord>().read()
            };
        }
    }

    /// The epoll data of the current incarnation: the PollDesc's address
    /// (below [`TAG_SHIFT`]) and the low 16 bits of the incarnation number
    /// above it. An event carrying other data is for an earlier one.
    #[inline]
    pub(crate) fn token(&self) -> u64 {
        self.token.load(Ordering::Acquire)
    }

    /// The descriptor number.
    #[inline]
    pub(crate) fn fd(&self) -> i32 {
        self.fd.load(Ordering::Relaxed)
    }

    /// True if the descriptor is registered with shard `shard`.
    #[inline]
    pub(crate) fn in_shard(&self, shard: usize) -> bool {
        self.shards[shard / 64].load(Ordering::Acquire) & (1 << (shard % 64)) != 0
    }

    /// Records the registration with shard `shard`.
    pub(crate) fn set_in_shard(&self, shard: usize) {
        self.shards[shard / 64].fetch_or(1 << (shard % 64), Ordering::Release);
    }

    /// Clears every shard bit, calling `f` with each shard that was set.
    pub(crate) fn take_shards(&self, mut f: impl FnMut(usize)) {
        for (i, w) in self.shards.iter().enumerate() {
            let mut bits = w.swap(0, Ordering::AcqRel);
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                f(i * 64 + b);
            }
        }
    }

    /// What a coroutine waiting on this descriptor in `mode` shows in a
    /// dump: the descriptor, the direction, and the direction's deadlines
    /// (nanoseconds since `epoch`, the epoch of the runtime whose poller
    /// owns this PollDesc). `polling`: waiting for readiness, not for the
    /// direction's op lock.
    pub(crate) fn wait_record<'a>(
        &'a self,
        epoch: &'a Instant,
        mode: Mode,
        polling: bool,
    ) -> Wait<'a> {
        let dl = self.dl(mode);
        Wait::io(
            self,
            self.fd(),
            mode == Mode::Write,
            polling,
            [&dl.at, &dl.op_at],
            epoch,
        )
    }

    /// The record of a park for readiness in `mode` (see [`WaitSlot`]).
    #[inline]
    fn polling_wait(&self, mode: Mode) -> &Wait<'_> {
        // SAFETY: see `WaitSlot`: written only by `open`, before any op
        // that reaches this; a shared reference meanwhile.
        unsafe { &*self.waits[mode as usize].0.get() }
    }

    #[inline]
    fn dl(&self, mode: Mode) -> &Deadline {
        match mode {
            Mode::Read => &self.rd,
            Mode::Write => &self.wd,
        }
    }

    /// [`check_err`](Self::check_err) for a coroutine about to park: also
    /// fails if the runtime owning this descriptor's poller has shut down.
    /// Inlined: no error, on a descriptor none of whose deadlines of `mode`
    /// ever expired, is one load of the info bits (SeqCst, as race 3 in
    /// `sm::poll_desc` needs; the expired hint there).
    #[inline(always)]
    fn check_wait(&self, mode: Mode) -> io::Result<()> {
        if !self.state.closing_dead_or_expired(mode) {
            return Ok(());
        }
        self.wait_err(mode)
    }

    /// The error [`check_wait`](Self::check_wait) found.
    #[cold]
    #[inline(never)]
    fn wait_err(&self, mode: Mode) -> io::Result<()> {
        self.check_err(mode)?;
        if self.state.dead() {
            return Err(err_runtime_gone());
        }
        Ok(())
    }

    /// Go's `netpollcheckerr`: closed, or a deadline expired. Inlined: one
    /// load of the info bits unless a deadline of `mode` ever expired (the
    /// expired hint in `sm::poll_desc`); then the deadline words.
    #[inline(always)]
    pub(crate) fn check_err(&self, mode: Mode) -> io::Result<()> {
        if !self.state.closing_or_expired(mode) {
            return Ok(());
        }
        self.err(mode)
    }

    /// [`check_err`](Self::check_err) on info bits the caller loaded
    /// ([`PdState::info`](crate::sm::poll_desc::PdState::info)), so that it
    /// can test them for more (the shortcut's `hup`) without a second load.
    #[inline(always)]
    pub(crate) fn check_err_in(&self, info: Info, mode: Mode) -> io::Result<()> {
        if !info.closing_or_expired(mode) {
            return Ok(());
        }
        self.err(mode)
    }

    /// The error [`check_err`](Self::check_err) found (closing first).
    #[cold]
    #[inline(never)]
    fn err(&self, mode: Mode) -> io::Result<()> {
        if self.state.closing() {
            return Err(err_closed());
        }
        if self.dl(mode).expired() {
            return Err(err_timeout());
        }
        Ok(())
    }

    // ---- the read/write shortcuts (owned by the lock holder) ------------

    #[inline]
    pub(crate) fn drained(&self, mode: Mode) -> bool {
        match mode {
            Mode::Read => self.read_drained.load(Ordering::Relaxed),
            Mode::Write => self.write_full.load(Ordering::Relaxed),
        }
    }

    #[inline]
    pub(crate) fn set_drained(&self, mode: Mode, v: bool) {
        match mode {
            Mode::Read => self.read_drained.store(v, Ordering::Relaxed),
            Mode::Write => self.write_full.store(v, Ordering::Relaxed),
        }
    }

    // ---- deadlines -------------------------------------------------------

    /// Go's `SetReadDeadline`/`SetWriteDeadline` for one direction: `None`
    /// clears, a time in the past expires it at once (waking a parked op).
    pub(crate) fn set_deadline(&self, shared: &Shared, mode: Mode, when: Option<Instant>) {
        let dl = self.dl(mode);
        match when {
            None => dl.at.store(0, Ordering::SeqCst),
            Some(t) if t <= Instant::now() => {
                self.state.set_expired(mode);
                dl.at.store(-1, Ordering::SeqCst);
                self.unblock_and_ready(mode, false);
            }
            Some(t) => {
                let d = nanos(shared, t);
                dl.at.store(d, Ordering::SeqCst);
                self.cover(shared, mode, d);
            }
        }
    }

    /// std's `set_read_timeout`/`set_write_timeout`: each later op waits at
    /// most `dur`.
    pub(crate) fn set_timeout(&self, mode: Mode, dur: Option<Duration>) {
        let ns = dur.map_or(0, |d| {
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
        });
        // Under the lock: the word and its bit in `state` change together
        // (concurrent setters leave the last one's value and bit).
        let _l = self.timer_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.dl(mode).timeout.store(ns, Ordering::Relaxed);
        // After the store: an op that finds the bit set sees the timeout.
        self.state.set_timeout_bit(mode, ns != 0);
    }

    /// The timeout set with [`set_timeout`](Self::set_timeout).
    pub(crate) fn timeout(&self, mode: Mode) -> Option<Duration> {
        match self.dl(mode).timeout.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// The deadline of an op that starts waiting now: `explicit` if given
    /// (connect_timeout), else now + the timeout, if one is set.
    pub(crate) fn op_deadline(&self, mode: Mode, explicit: Option<Instant>) -> Option<Instant> {
        explicit.or_else(|| self.timeout(mode).map(|d| Instant::now() + d))
    }

    /// Starts the per-op deadline before an op's first park (coroutines);
    /// true if one was started (end it with `end_op_deadline`). Inlined:
    /// with no timeout set (the common case) it is one load.
    #[inline]
    pub(crate) fn begin_op_deadline(
        &self,
        shared: &Arc<Shared>,
        mode: Mode,
        explicit: Option<Instant>,
    ) -> bool {
        if explicit.is_none() && self.dl(mode).timeout.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.begin_op_deadline_slow(shared, mode, explicit)
    }

    #[cold]
    #[inline(never)]
    fn begin_op_deadline_slow(
        &self,
        shared: &Shared,
        mode: Mode,
        explicit: Option<Instant>,
    ) -> bool {
        let Some(t) = self.op_deadline(mode, explicit) else {
            return false;
        };
        let dl = self.dl(mode);
        if t <= Instant::now() {
            self.state.set_expired(mode);
            dl.op_at.store(-1, Ordering::SeqCst);
            return true;
        }
        let d = nanos(shared, t);
        dl.op_at.store(d, Ordering::SeqCst);
        self.cover(shared, mode, d);
        true
    }

    /// Go's absolute deadline of `mode` as an Instant (`Err` if expired),
    /// for the plain-thread path; expires it if it is due.
    pub(crate) fn thread_deadline(
        &self,
        shared: &Shared,
        mode: Mode,
    ) -> io::Result<Option<Instant>> {
        let dl = self.dl(mode);
        let d = dl.at.load(Ordering::SeqCst);
        if d < 0 {
            return Err(err_timeout());
        }
        if d == 0 {
            return Ok(None);
        }
        if d <= nanos(shared, Instant::now()) {
            self.state.set_expired(mode);
            let _ = dl
                .at
                .compare_exchange(d, -1, Ordering::SeqCst, Ordering::SeqCst);
            return Err(err_timeout());
        }
        Ok(Some(shared.epoch + Duration::from_nanos(d as u64)))
    }

    /// Ends the per-op deadline (after an op that waited).
    pub(crate) fn end_op_deadline(&self, mode: Mode) {
        let w = &self.dl(mode).op_at;
        if w.load(Ordering::Relaxed) != 0 {
            w.store(0, Ordering::SeqCst);
        }
    }

    /// Makes sure a timer fires no later than `d` (see the module docs).
    fn cover(&self, shared: &Shared, mode: Mode, d: i64) {
        let dl = self.dl(mode);
        // SeqCst: the setter's half of the Dekker pair (deadline stored by
        // the caller, then this load).
        let t = dl.timer_at.load(Ordering::SeqCst);
        if t != 0 && t as i64 <= d {
            return;
        }
        let mut seqs = self.timer_lock.lock().unwrap_or_else(|e| e.into_inner());
        let next = dl.next();
        let t = dl.timer_at.load(Ordering::SeqCst);
        if next > 0 && (t == 0 || t as i64 > next) {
            self.arm(shared, mode, next, &mut seqs);
        }
    }

    /// Arms a new current timer at `at`, cancelling the one it replaces
    /// (caller holds the lock).
    fn arm(&self, shared: &Shared, mode: Mode, at: i64, seqs: &mut TimerSeqs) {
        let (tseq, handle) = match mode {
            Mode::Read => (&mut seqs.read, &mut seqs.read_timer),
            Mode::Write => (&mut seqs.write, &mut seqs.write_timer),
        };
        *tseq += 1;
        let tseq = *tseq;
        let dl = self.dl(mode);
        if let Some(old) = handle.take() {
            // Still armed (not fired: a firing timer zeroes `timer_at` under
            // this lock before it re-arms): free it now.
            if dl.timer_at.load(Ordering::SeqCst) != 0 {
                shared.cancel_timer(old);
            }
        }
        dl.timer_at.store(at as u64, Ordering::SeqCst);
        let p = PdPtr(self, shared);
        let when = shared.epoch + Duration::from_nanos(at as u64);
        *handle = Some(shared.add_timer(
            when,
            Action::Call(Box::new(move || {
                let p = p;
                // SAFETY: see `PdPtr`: the timer runs on a worker of the
                // runtime whose `Shared` owns both the heap and the PollDesc.
                let (pd, shared) = unsafe { (&*p.0, &*p.1) };
                pd.deadline_fired(shared, mode, tseq);
            })),
        ));
    }

    /// Go's `netpolldeadlineimpl`: a timer fired.
    fn deadline_fired(&self, shared: &Shared, mode: Mode, tseq: u64) {
        let fired = {
            let mut seqs = self.timer_lock.lock().unwrap_or_else(|e| e.into_inner());
            let cur = match mode {
                Mode::Read => seqs.read,
                Mode::Write => seqs.write,
            };
            if tseq != cur {
                return; // stale: a newer timer replaced it
            }
            // The direction's current timer, also if the descriptor was
            // recycled since it was armed (see the module docs): it must
            // clear `timer_at`, or no deadline of the new incarnation at or
            // after it would ever be covered.
            let dl = self.dl(mode);
            // SeqCst: the timer's half of the Dekker pair in the module docs.
            dl.timer_at.store(0, Ordering::SeqCst);
            let now = nanos(shared, Instant::now());
            let fired = dl.expire_due(now, || self.state.set_expired(mode));
            let next = dl.next();
            if next > 0 {
                self.arm(shared, mode, next, &mut seqs);
            }
            fired
        };
        if fired {
            self.unblock_and_ready(mode, false);
        }
    }

    // ---- waking ----------------------------------------------------------

    /// Unblocks `mode` and readies the parked coroutine, if any.
    fn unblock_and_ready(&self, mode: Mode, ioready: bool) {
        if let Some(p) = self.state.unblock(mode, ioready) {
            // SAFETY: a slot holding a task owns one strong count, put there
            // by `Arc::into_raw` in `wait`; `unblock` took it out exactly once.
            coroutine::ready(unsafe { Arc::from_raw(p as *const Task) });
        }
    }

    /// Go's `netpollready` for one event: unblocks the directions and
    /// passes the parked coroutines (at most two) to `out`. Inlined into
    /// the poller's event loop, its one caller.
    ///
    /// The common event of a connection, readable and writable with no
    /// hang-up or error (an edge of either direction reports the other's
    /// level too), takes one compare for all of its bit tests.
    #[inline(always)]
    pub(crate) fn netpollready(&self, events: u32, mut out: impl FnMut(Arc<Task>)) {
        const R: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        const W: u32 = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        const H: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        const IO: u32 = (libc::EPOLLIN | libc::EPOLLOUT) as u32;
        if events == IO {
            // The read direction's edge usually finds its op parked: the
            // swap with no load first. The write direction is mostly READY
            // already (writes leave it pending): the load first.
            if let Some(p) = self.state.unblock_io(Mode::Read) {
                // SAFETY: as in `unblock_and_ready`.
                out(unsafe { Arc::from_raw(p as *const Task) });
            }
            if let Some(p) = self.state.unblock(Mode::Write, true) {
                // SAFETY: as in `unblock_and_ready`.
                out(unsafe { Arc::from_raw(p as *const Task) });
            }
            return;
        }
        if events & H != 0 {
            self.state.set_hup();
        }
        for (mode, mask) in [(Mode::Read, R), (Mode::Write, W)] {
            if events & mask != 0 {
                if let Some(p) = self.state.unblock(mode, true) {
                    // SAFETY: as in `unblock_and_ready`.
                    out(unsafe { Arc::from_raw(p as *const Task) });
                }
            }
        }
    }

    /// Go's `poll_runtime_pollUnblock`: marks the descriptor closing and
    /// wakes both directions; their ops fail with "use of closed network
    /// connection".
    pub(crate) fn evict(&self) {
        self.state.set_closing();
        self.unblock_and_ready(Mode::Read, false);
        self.unblock_and_ready(Mode::Write, false);
    }

    // ---- waiting ---------------------------------------------------------

    /// Go's `poll_runtime_pollWait` for a coroutine: returns when `mode` is
    /// ready (the notification is consumed), or fails with a closed or
    /// timeout error.
    ///
    /// Before the first park, the descriptor is registered with the poller
    /// shard of the calling coroutine's worker (`netpoll` module docs), so
    /// that its readiness is reported where the coroutine lives.
    pub(crate) fn wait(&self, shared: &Arc<Shared>, ctx: &WorkerCtx, mode: Mode) -> io::Result<()> {
        self.check_wait(mode)?;
        self.wait_checked(shared, ctx, mode, false)
    }

    /// [`wait`](Self::wait) for a stream op that has just checked for
    /// errors itself (`check_err` at its start, or a syscall that got
    /// EAGAIN since), inlined into the op: no call, and no error check
    /// before publishing WAIT. The check after publishing WAIT is the one
    /// race 3 (`sm::poll_desc`) needs; the one before it (Go's, at the top
    /// of `poll_runtime_pollWait`) only decides which of two concurrent
    /// events the op reports when a close or an expiry lands while a
    /// READY is pending: here the op consumes the READY and tries its
    /// syscall once more, as if the close or the expiry had come just
    /// after; its next wait (or next op) fails.
    ///
    /// A READY found pending (no park) spends a unit of the coroutine's
    /// cooperative budget (`coop_tick`): a stream op that takes the
    /// shortcut does not tick before it starts, since a park refills the
    /// budget anyway (`net::fd`, `stream_io_co`).
    #[inline(always)]
    pub(crate) fn wait_stream(
        &self,
        shared: &Arc<Shared>,
        ctx: &WorkerCtx,
        mode: Mode,
    ) -> io::Result<()> {
        self.wait_checked(shared, ctx, mode, true)
    }

    /// The body of [`wait`](Self::wait) after its first error check
    /// (`shared` as the caller's `Arc`: dereferenced only on the rare
    /// paths, registration and a per-op deadline);
    /// `tick_ready`: see [`wait_stream`](Self::wait_stream).
    #[inline(always)]
    fn wait_checked(
        &self,
        shared: &Arc<Shared>,
        ctx: &WorkerCtx,
        mode: Mode,
        tick_ready: bool,
    ) -> io::Result<()> {
        // Registered by this worker before (module docs, `reg_key`): one
        // load and compare.
        if self.reg_key.load(Ordering::Relaxed) != ctx as *const WorkerCtx as usize {
            self.register_for(shared, ctx)?;
        }
        // The running task, looked up once for the cancel check and the park.
        let task: &Task = ctx.current_task();
        // Runtime shutdown cancelled this coroutine, and its destructors are
        // running: nobody polls the network any more, fail at once.
        if task.cancel.load(Ordering::Relaxed) != CANCEL_NONE {
            return Err(err_shutting_down());
        }
        // The first wait, straight-line: in a loop, the compiler would
        // compute the park's addresses before it and keep them in the frame
        // across the switch (stores before it, loads after).
        // SAFETY: `task` is the running task, looked up above.
        if unsafe { self.netpollblock(ctx, task, mode, tick_ready) } {
            return Ok(());
        }
        self.wait_again(ctx, mode, tick_ready)
    }

    /// The rest of [`wait_checked`](Self::wait_checked) after a wait that
    /// consumed no notification (an error, or a deadline that expired and
    /// was moved again): out of line.
    #[cold]
    #[inline(never)]
    fn wait_again(&self, ctx: &WorkerCtx, mode: Mode, tick_ready: bool) -> io::Result<()> {
        let task: &Task = ctx.current_task();
        loop {
            self.check_wait(mode)?;
            // Woken with no notification and no error: a deadline that
            // expired was moved again. Wait on (as `wait_checked`).
            if task.cancel.load(Ordering::Relaxed) != CANCEL_NONE {
                return Err(err_shutting_down());
            }
            // SAFETY: `task` is the running task, looked up above.
            if unsafe { self.netpollblock(ctx, task, mode, tick_ready) } {
                return Ok(());
            }
        }
    }

    /// Registers the descriptor with the shard of `ctx`'s worker unless it
    /// is already, and records `ctx` as the last to do so (`reg_key`).
    #[cold]
    #[inline(never)]
    fn register_for(&self, shared: &Shared, ctx: &WorkerCtx) -> io::Result<()> {
        // A coroutine of another runtime waits here: its worker index names
        // no shard of this poller; any shard works (the wake-up is routed
        // to the coroutine's own runtime like any cross-thread one).
        let shard = if std::ptr::eq(Arc::as_ptr(&ctx.shared), shared) {
            ctx.index
        } else {
            ctx.index % shared.poller.shards()
        };
        shared.poller.register(self, shard)?;
        self.reg_key
            .store(ctx as *const WorkerCtx as usize, Ordering::Relaxed);
        Ok(())
    }

    /// Go's `netpollblock`: true if a readiness notification was consumed.
    /// `tick_ready`: one pending was consumed without a park spends a unit
    /// of the cooperative budget.
    ///
    /// # Safety
    /// `task` must be the running task, `ctx.current_task()` (the park
    /// suspends the coroutine through it).
    #[inline(always)]
    unsafe fn netpollblock(
        &self,
        ctx: &WorkerCtx,
        task: &Task,
        mode: Mode,
        tick_ready: bool,
    ) -> bool {
        if self.state.prepare_block(mode) == Prepare::Ready {
            if tick_ready {
                crate::runtime::worker::coop_tick_in(ctx);
            }
            return true;
        }
        // Re-check errors after publishing WAIT (race 3, sm::poll_desc).
        if self.check_wait(mode).is_ok() {
            let slot = self.state.slot_of(mode);
            // Armed across the park: if the coroutine is unwound while parked
            // (it is dropped with its runtime), take the task back out of the
            // slot (Cancellation in sm::poll_desc).
            // As `Arc::as_ptr`, and as the commit's `Arc::into_raw`.
            let me = task as *const Task as usize;
            let guard = Unpark { slot, task: me };
            let commit = move |task: Arc<Task>, _: &WorkerCtx| {
                // The worker's reference becomes the slot's.
                let raw = Arc::into_raw(task) as usize;
                if slot.commit(raw) {
                    Ok(())
                } else {
                    // SAFETY: the commit failed, so the reference `into_raw`
                    // took was never published: it goes back to the worker.
                    Err(unsafe { Arc::from_raw(raw as *const Task) })
                }
            };
            // SAFETY: `task` is the running task (this function's
            // contract).
            unsafe { park_commit_running(ctx, task, self.polling_wait(mode), commit) };
            std::mem::forget(guard);
            return match self.state.finish_block_as(mode, me) {
                Ok(ready) => ready,
                Err(()) => {
                    // A spurious resume (`Task::stale_wakes`): we took our
                    // task back out of the slot, as the unwind guard would.
                    // SAFETY: the slot held the count the commit made with
                    // `Arc::into_raw`; the swap took it out, so it is ours.
                    drop(unsafe { Arc::from_raw(me as *const Task) });
                    false
                }
            };
        }
        self.state.finish_block(mode)
    }
}

/// The unwind guard of a parked op (see `netpollblock`); disarmed with
/// `mem::forget` when the park returns normally.
struct Unpark<'a> {
    slot: Slot<'a>,
    /// The parked task as the commit publishes it (`Arc::into_raw`).
    task: usize,
}

impl Drop for Unpark<'_> {
    fn drop(&mut self) {
        if self.slot.cancel_block(self.task) {
            // SAFETY: the slot held the count the commit made with
            // `Arc::into_raw` (same pointer as `Arc::as_ptr` of the task);
            // the successful CAS took it out, so it is ours to drop.
            drop(unsafe { Arc::from_raw(self.task as *const Task) });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::net::unix::UnixStream;

    fn pending_timers(rt: &crate::Runtime) -> usize {
        rt.shared().workers.iter().map(|w| w.timers.len()).sum()
    }

    /// A deadline pushed later on every request costs no new timer: the one
    /// armed timer re-arms itself when it fires early.
    #[test]
    fn moving_a_deadline_later_arms_no_new_timer() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let (a, _b) = rt.run(|| UnixStream::pair().unwrap());
        let t0 = Instant::now();
        for i in 0..10_000u64 {
            a.set_read_deadline(Some(
                t0 + Duration::from_secs(60) + Duration::from_micros(i),
            ))
            .unwrap();
        }
        assert_eq!(pending_timers(&rt), 1);
        // Earlier than the armed one: a new timer replaces (cancels) it.
        a.set_read_deadline(Some(t0 + Duration::from_secs(30)))
            .unwrap();
        assert_eq!(pending_timers(&rt), 1);
        // A per-op timeout renewed by every read: still no new timers.
        a.set_read_deadline(None).unwrap();
        a.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let (x, y) = rt.run(|| UnixStream::pair().unwrap());
        x.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let before = pending_timers(&rt);
        rt.run(move || {
            use std::io::{Read, Write};
            let w = crate::spawn(move || {
                for i in 0..200u32 {
                    (&y).write_all(&i.to_le_bytes()).unwrap();
                    crate::time::sleep(Duration::from_micros(50));
                }
            });
            let mut buf = [0u8; 4];
            for _ in 0..200 {
                (&x).read_exact(&mut buf).unwrap();
            }
            w.join().unwrap();
        });
        // The sleeps have fired; what is left is the one op timer.
        assert!(pending_timers(&rt) <= before + 1);
    }
}
