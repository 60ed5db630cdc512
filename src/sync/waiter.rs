//! Blocking on a wait queue: the glue between [`sm::waitq`](crate::sm::waitq)
//! and the runtime, shared by the channels and every primitive in `sync`.
//!
//! A blocked party is a [`Waiter`]: the claim word plus how to wake it (a
//! coroutine to ready, or a thread to unpark). A [`Parker`] creates one for
//! the caller and blocks on it:
//!
//! 1. Under the queue lock, the caller links its node(s) (`WaitList::push_back`).
//! 2. [`Parker::park`] releases the queue lock *after* the coroutine has
//!    switched off its stack (docs/SAFETY.md, section 2: Go's
//!    `gopark(chanparkcommit)`), so no waker can ready a coroutine that is
//!    still running. A thread releases the lock and blocks on its parker.
//! 3. A waker pops the node under the lock and claims it
//!    (`WaitList::pop_claim`), moves the value, calls [`finish`] while still
//!    holding the lock, releases the lock, and only then calls
//!    [`Wake::wake`].
//!
//! Timed waits: a coroutine's waiter is then allocated in an `Arc` that a
//! timer on its worker holds; the timer claims `TIMED_OUT` and readies the
//! coroutine if it wins. A wait that a waker (or select's abort) ended
//! cancels its timer as soon as the coroutine resumes, which frees the heap
//! entry and the timer's `Arc` at once instead of at the deadline; a timer
//! that fires before the cancel loses the claim and does nothing. A thread times out by itself: after
//! `park_timeout` it claims `TIMED_OUT`; if it loses, a waker has claimed it
//! and the thread waits for that waker's wake-up.

use std::cell::UnsafeCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, TryLockError};
use std::thread::{self, Thread};
use std::time::Instant;

use crate::coroutine::{self, Task};
use crate::runtime::timer::{Action, Handle};
use crate::runtime::worker::{self, WorkerCtx};
use crate::sm::waitq::{self, Claim, TIMED_OUT, WAITING};
use crate::wait::Wait;

/// A waiting operation of a gopark waiter.
pub(crate) type Node<T> = waitq::Node<T, Waiter>;
/// A wait queue of gopark waiters.
pub(crate) type WaitList<T> = waitq::WaitList<T, Waiter>;

/// One blocked coroutine or thread.
pub(crate) struct Waiter {
    claim: Claim,
    /// Threads only: set by the claiming waker, under the queue lock, when
    /// it is done with the waiter's nodes; the thread waits for it.
    woken: AtomicBool,
    who: Who,
}

enum Who {
    /// The parked coroutine. Taken (not cloned) by the party that wins the
    /// claim: it alone may wake the waiter, once.
    Co(UnsafeCell<Option<Arc<Task>>>),
    Thread(Thread),
}

// SAFETY: `Who::Co`'s cell is written at creation and then only by the one
// party that won the claim (sm::waitq: exactly one CAS out of WAITING
// succeeds), which takes the task out; the owner drops what is left only
// after it was woken or has won the claim itself. Everything else is atomic
// or immutable.
unsafe impl Sync for Waiter {}

impl waitq::Blocker for Waiter {
    fn claim_word(&self) -> &Claim {
        &self.claim
    }
}

impl fmt::Debug for Waiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter")
            .field("claim", &self.claim)
            .finish_non_exhaustive()
    }
}

impl Waiter {
    /// A timed wait's deadline: claims `TIMED_OUT` and wakes the waiter if
    /// it is still waiting (the timer's action).
    pub(crate) fn time_out(&self) {
        if self.claim.claim(TIMED_OUT) {
            self.wake_handle().wake();
        }
    }

    /// The wake handle; called once, by the claim's winner.
    fn wake_handle(&self) -> Wake {
        match &self.who {
            Who::Co(t) => {
                // SAFETY: only the claim's winner gets here, once (see the
                // Sync impl); nobody else touches the cell meanwhile.
                let t = unsafe { (*t.get()).take() };
                Wake::Co(t.expect("gopark: waiter woken twice"))
            }
            Who::Thread(t) => {
                let t = t.clone();
                // Release: publishes the value moved into the node. This is
                // the waker's last access to the waiter.
                self.woken.store(true, Ordering::Release);
                Wake::Thread(t)
            }
        }
    }
}

/// What a waker needs once it has released the queue lock.
#[must_use = "a claimed waiter must be woken"]
#[derive(Debug)]
pub(crate) enum Wake {
    Co(Arc<Task>),
    Thread(Thread),
}

impl Wake {
    /// Readies the coroutine or unparks the thread.
    pub(crate) fn wake(self) {
        match self {
            Wake::Co(t) => coroutine::ready(t),
            Wake::Thread(t) => t.unpark(),
        }
    }
}

/// Ends a waker's use of a node it claimed: returns the wake handle to use
/// after unlocking.
///
/// # Safety
/// `node` was returned by `pop_claim` on a list whose lock the caller still
/// holds, and the caller does not touch the node afterwards.
pub(crate) unsafe fn finish<T>(node: *const Node<T>) -> Wake {
    // SAFETY: a claimed node and its waiter stay alive until the waiter is
    // woken, which happens only through the handle returned here.
    let w = unsafe { &*(*node).blocker_ptr() };
    w.wake_handle()
}

/// Claims and wakes every node of `list` (a close, a broadcast), marking
/// each as closed if `closed`. The wake handles are collected into `out`, to
/// be woken after the caller unlocks.
pub(crate) fn drain_all<T>(list: &mut WaitList<T>, closed: bool, out: &mut Vec<Wake>) {
    while let Some(n) = list.pop_claim(std::ptr::null()) {
        if closed {
            // SAFETY: claimed by us under the lock (`&mut list`).
            unsafe { (*n).set_closed() };
        }
        // SAFETY: as above; we are done with the node.
        out.push(unsafe { finish(n) });
    }
}

enum Store {
    Local(Waiter),
    Shared(Arc<Waiter>),
}

/// The caller's waiter and how to block on it (see the module docs).
pub(crate) struct Parker {
    ctx: Option<&'static WorkerCtx>,
    deadline: Option<Instant>,
    store: Store,
}

impl fmt::Debug for Parker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parker")
            .field("coroutine", &self.ctx.is_some())
            .field("deadline", &self.deadline)
            .field("waiter", self.waiter())
            .finish()
    }
}

impl Parker {
    /// A waiter for the calling coroutine or thread, which gives up at
    /// `deadline` (if any).
    pub(crate) fn new(deadline: Option<Instant>) -> Parker {
        let ctx = worker::current_ctx();
        let who = match ctx {
            Some(c) => Who::Co(UnsafeCell::new(Some(c.current_task().clone()))),
            None => Who::Thread(thread::current()),
        };
        let w = Waiter {
            claim: Claim::new(),
            woken: AtomicBool::new(false),
            who,
        };
        let store = if ctx.is_some() && deadline.is_some() {
            Store::Shared(Arc::new(w))
        } else {
            Store::Local(w)
        };
        Parker {
            ctx,
            deadline,
            store,
        }
    }

    /// The waiter to prepare nodes with.
    pub(crate) fn waiter(&self) -> &Waiter {
        match &self.store {
            Store::Local(w) => w,
            Store::Shared(w) => w,
        }
    }

    /// The claim state: `WAITING`, a token, `TIMED_OUT` or `ABORTED`.
    pub(crate) fn state(&self) -> usize {
        self.waiter().claim.get()
    }

    /// The caller claims its own waiter (select's abort); true if it won.
    pub(crate) fn claim_self(&self, token: usize) -> bool {
        self.waiter().claim.claim(token)
    }

    /// Blocks until a waker, or the deadline, claims the waiter; returns
    /// the claim state. `guard` holds the lock of the queue the caller's node
    /// was linked into; it is released after the switch (coroutine) or
    /// before blocking (thread). `wait` is what a dump shows; it carries
    /// this parker's deadline, if any.
    pub(crate) fn park<G>(&self, guard: G, wait: Wait<'_>) -> usize {
        match self.ctx {
            Some(ctx) => {
                let mut timer = None;
                let t = &mut timer;
                coroutine::park_commit(ctx, &wait, move |_, ctx| {
                    drop(guard);
                    *t = self.arm_timer(ctx);
                    true
                });
                // Still unclaimed: a spurious resume (`Task::stale_wakes`).
                coroutine::park_while(ctx, &wait, || self.state() == WAITING);
                let s = self.state();
                self.disarm(ctx, timer, s);
                s
            }
            None => {
                drop(guard);
                self.block_thread()
            }
        }
    }

    /// Select's park: `register` links the nodes, one queue lock at a time,
    /// after the switch; it returns false if the caller must not block (it
    /// claimed itself). Returns the claim state.
    pub(crate) fn park_registering<F: FnOnce() -> bool>(
        &self,
        register: F,
        wait: Wait<'_>,
    ) -> usize {
        match self.ctx {
            Some(ctx) => {
                let mut timer = None;
                let t = &mut timer;
                coroutine::park_commit(ctx, &wait, move |_, ctx| {
                    let park = register();
                    if park {
                        *t = self.arm_timer(ctx);
                    }
                    park
                });
                coroutine::park_while(ctx, &wait, || self.state() == WAITING);
                let s = self.state();
                self.disarm(ctx, timer, s);
                s
            }
            None => {
                if register() {
                    self.block_thread()
                } else {
                    self.state()
                }
            }
        }
    }

    /// Arms the deadline timer of a coroutine's timed wait (on its worker,
    /// after the switch, so it cannot fire before the coroutine parked).
    fn arm_timer(&self, ctx: &WorkerCtx) -> Option<Handle> {
        let (Some(d), Store::Shared(w)) = (self.deadline, &self.store) else {
            return None;
        };
        Some(ctx.add_timer(d, Action::TimeOut(w.clone())))
    }

    /// After the wait: cancels the deadline timer unless it is what ended
    /// the wait (`state` is `TIMED_OUT`: it fired), so its heap entry and its
    /// `Arc<Waiter>` are freed now rather than at the deadline. A wait whose
    /// frame is unwound while parked (runtime shutdown) skips this; the
    /// shutdown drops every timer.
    #[inline]
    fn disarm(&self, ctx: &WorkerCtx, timer: Option<Handle>, state: usize) {
        if let Some(h) = timer {
            if state != TIMED_OUT {
                ctx.shared.cancel_timer(h);
            }
        }
    }

    fn block_thread(&self) -> usize {
        let w = self.waiter();
        let mut deadline = self.deadline;
        loop {
            // Acquire: pairs with the Release in `wake_handle`.
            if w.woken.load(Ordering::Acquire) {
                return w.claim.get();
            }
            match deadline {
                None => thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        if w.claim.claim(TIMED_OUT) {
                            return TIMED_OUT;
                        }
                        // A waker claimed us first: wait for it to finish.
                        deadline = None;
                        continue;
                    }
                    thread::park_timeout(d - now);
                }
            }
        }
    }
}

/// Runs a closure when dropped unless disarmed: the cleanup that unlinks a
/// node when a wait ends without a waker (timeout), or when a parked
/// coroutine's stack is unwound at runtime shutdown.
pub(crate) struct OnDrop<F: FnMut()> {
    f: Option<F>,
}

impl<F: FnMut()> OnDrop<F> {
    pub(crate) fn new(f: F) -> Self {
        OnDrop { f: Some(f) }
    }

    /// Do not run the closure.
    pub(crate) fn disarm(mut self) {
        self.f = None;
    }
}

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.f.as_mut() {
            f();
        }
    }
}

impl<F: FnMut()> fmt::Debug for OnDrop<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnDrop")
    }
}

/// Locks a std mutex, ignoring poisoning: the internal queue locks guard
/// plain data structures whose invariants hold between statements, and no
/// user code runs while they are held.
#[inline]
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.try_lock() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        Err(TryLockError::WouldBlock) => lock_contended(m),
    }
}

/// [`lock`] when the mutex is held: first a few attempts spaced by 30
/// spin-loop hints each (Go's runtime lock spins the same way), then std's
/// own wait. std's contended path re-reads the lock word after every single
/// hint; between two workers hammering one channel those reads pull the
/// cache line away from the holder, whose unlock then waits for it again.
/// Spaced attempts leave the line with the holder: 4 producers and 4
/// consumers on one channel across 2 workers went from 71-85 to 22-25 ns
/// per message (`cargo bench --bench chan_sync -- 4p4c`, interleaved).
#[cold]
#[inline(never)]
fn lock_contended<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    for _ in 0..4 {
        for _ in 0..30 {
            std::hint::spin_loop();
        }
        match m.try_lock() {
            Ok(g) => return g,
            Err(TryLockError::Poisoned(e)) => return e.into_inner(),
            Err(TryLockError::WouldBlock) => {}
        }
    }
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The plain untimed wait of `Once` and `WaitGroup`: links a value-less
/// node into `queue`, whose lock the caller holds as `q` (having just seen
/// under it that it must wait), and parks until a waker pops it. If the
/// frame is unwound while parked (runtime shutdown), the node leaves the
/// queue.
pub(crate) fn wait_in(
    queue: &std::sync::Mutex<WaitList<()>>,
    mut q: std::sync::MutexGuard<'_, WaitList<()>>,
    wait: Wait<'_>,
) {
    let parker = Parker::new(None);
    let node = Node::new(None);
    node.prepare(parker.waiter(), 1);
    // SAFETY: `node` stays in this frame until popped by a waker or
    // unlinked by `cleanup` (declared after it, dropped first, also on
    // unwind).
    unsafe { q.push_back(&node) };
    let cleanup = OnDrop::new(|| {
        // SAFETY: the node was only ever linked in this queue.
        unsafe { lock(queue).remove(&node) };
    });
    parker.park(q, wait);
    cleanup.disarm();
}
