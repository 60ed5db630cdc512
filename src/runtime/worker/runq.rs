//! A worker's local run queue (Go's `runq`, unbounded here): a ring of
//! tasks touched only by its worker thread.
//!
//! It replaces a `RefCell<VecDeque<_>>`, measured with callgrind on the
//! worker loop's pop and the poll's push: the capacity is a power of two, so
//! a position is a free-running counter masked when used (a `VecDeque`
//! wraps its head with a compare and a conditional move on every pop), and
//! no borrow flag is set and cleared around each operation. Every method
//! takes `&self` and completes without calling out (it moves tasks in and
//! out, never drops one), so no call can observe another half done.

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::Arc;

use crate::coroutine::Task;

/// The ring. Slots `head .. tail` (counters, masked by `len - 1` of the
/// buffer when used) hold tasks; the others are uninitialized.
pub(super) struct RunQueue {
    buf: UnsafeCell<Box<[MaybeUninit<Arc<Task>>]>>,
    /// The buffer's length less one (a power of two less one), kept with
    /// the buffer (set where it is made or replaced): a pop or push masks
    /// with it instead of computing it from the length each time.
    mask: Cell<usize>,
    head: Cell<usize>,
    tail: Cell<usize>,
}

impl RunQueue {
    /// An empty queue with room for `cap` tasks (rounded up to a power of
    /// two) before it grows.
    pub(super) fn with_capacity(cap: usize) -> RunQueue {
        let cap = cap.max(2).next_power_of_two();
        RunQueue {
            buf: UnsafeCell::new(new_buf(cap)),
            mask: Cell::new(cap - 1),
            head: Cell::new(0),
            tail: Cell::new(0),
        }
    }

    /// The number of queued tasks.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.tail.get().wrapping_sub(self.head.get())
    }

    /// Takes the task at the front.
    #[inline]
    pub(super) fn pop_front(&self) -> Option<Arc<Task>> {
        let head = self.head.get();
        if head == self.tail.get() {
            return None;
        }
        // SAFETY: no reference into `buf` outlives a method of this type,
        // and none of them calls out while it holds one (module docs), so
        // this shared one is the only reference.
        let buf = unsafe { &*self.buf.get() };
        let mask = self.mask.get();
        // SAFETY: `head != tail`: the slot at `head` holds a task (type
        // docs); it is moved out and, `head` moving past it, never read again
        // before it is written; `mask` (the buffer's length less one, see
        // the field) keeps it in bounds.
        let task = unsafe { buf.get_unchecked(head & mask).assume_init_read() };
        self.head.set(head.wrapping_add(1));
        Some(task)
    }

    /// Queues `task` at the back.
    #[inline]
    pub(super) fn push_back(&self, task: Arc<Task>) {
        let tail = self.tail.get();
        if self.is_full() {
            self.grow();
        }
        // SAFETY: as in `pop_front`, this is the only reference into `buf`.
        let buf = unsafe { &mut *self.buf.get() };
        let mask = self.mask.get();
        // SAFETY: not full: the slot at `tail` is outside `head .. tail`,
        // uninitialized (nothing to drop), and `mask` keeps it in bounds.
        unsafe { buf.get_unchecked_mut(tail & mask).write(task) };
        self.tail.set(tail.wrapping_add(1));
    }

    /// Queues `task` at the front.
    pub(super) fn push_front(&self, task: Arc<Task>) {
        if self.is_full() {
            self.grow();
        }
        let head = self.head.get().wrapping_sub(1);
        // SAFETY: as in `pop_front`, this is the only reference into `buf`.
        let buf = unsafe { &mut *self.buf.get() };
        let mask = self.mask.get();
        // SAFETY: not full: the slot before `head` is outside `head .. tail`,
        // uninitialized, and `mask` keeps it in bounds.
        unsafe { buf.get_unchecked_mut(head & mask).write(task) };
        self.head.set(head);
    }

    /// A writer that queues tasks at the back in a batch (see [`Filler`]).
    ///
    /// # Safety
    /// Until the filler is dropped, no other method of this queue is called:
    /// the filler keeps the back counter and the buffer's address in its own
    /// fields, so a push or pop meanwhile would be lost or overwritten, and a
    /// growth would free the buffer it writes to.
    #[inline]
    pub(super) unsafe fn filler(&self) -> Filler<'_> {
        Filler {
            q: self,
            buf: ptr::null_mut(),
            mask: 0,
            tail: self.tail.get(),
            start: self.tail.get(),
            #[cfg(debug_assertions)]
            room: 0,
        }
    }

    #[inline]
    fn is_full(&self) -> bool {
        self.len() > self.mask.get()
    }

    /// Doubles the buffer, keeping every task at its counter.
    #[cold]
    #[inline(never)]
    fn grow(&self) {
        // SAFETY: as in `pop_front`, this is the only reference into `buf`.
        let buf = unsafe { &mut *self.buf.get() };
        let mut bigger = new_buf(buf.len() * 2);
        let (old_mask, new_mask) = (buf.len() - 1, bigger.len() - 1);
        let mut i = self.head.get();
        while i != self.tail.get() {
            // SAFETY: `i` is in `head .. tail`: its old slot holds a task,
            // moved (not copied: the old buffer is dropped as
            // `MaybeUninit`, which drops nothing) to its slot in the new one.
            unsafe {
                let t = buf.get_unchecked(i & old_mask).assume_init_read();
                bigger.get_unchecked_mut(i & new_mask).write(t);
            }
            i = i.wrapping_add(1);
        }
        self.mask.set(new_mask);
        *buf = bigger;
    }
}

/// Queues tasks at the back of a [`RunQueue`] in a batch: [`reserve`] makes
/// room for a number of them, each [`push`] is then one store and a counter
/// in the filler's own fields (no reload of the queue's counters and buffer,
/// no test for a full ring), and dropping the filler queues them all (an
/// unwind included: a pushed task is never lost or dropped twice).
///
/// [`reserve`]: Filler::reserve
/// [`push`]: Filler::push
pub(super) struct Filler<'a> {
    q: &'a RunQueue,
    /// The queue's buffer as of the last `reserve` (null before).
    buf: *mut MaybeUninit<Arc<Task>>,
    mask: usize,
    /// The back counter: the queue's, plus the tasks pushed since.
    tail: usize,
    /// The back counter when the filler was made.
    start: usize,
    /// Pushes left before the next `reserve`.
    #[cfg(debug_assertions)]
    room: usize,
}

impl Filler<'_> {
    /// Tasks pushed so far.
    #[inline]
    pub(super) fn pushed(&self) -> usize {
        self.tail.wrapping_sub(self.start)
    }

    /// Makes room for `n` more pushes (the ones left from an earlier
    /// `reserve` are not counted), growing the queue if needed.
    #[inline]
    pub(super) fn reserve(&mut self, n: usize) {
        // The tasks pushed so far join the queue first: a growth moves
        // only the queued ones.
        self.q.tail.set(self.tail);
        // SAFETY: as in `RunQueue::pop_front` (the filler's contract: no
        // other method runs meanwhile); only the length is read.
        while self.q.len() + n > unsafe { (&*self.q.buf.get()).len() } {
            self.q.grow();
        }
        // SAFETY: as above; the pointer is used by `push` until the filler
        // goes or the next `reserve`, and nothing grows the queue meanwhile.
        let buf = unsafe { &mut *self.q.buf.get() };
        self.buf = buf.as_mut_ptr();
        self.mask = buf.len() - 1;
        #[cfg(debug_assertions)]
        {
            self.room = n;
        }
    }

    /// Queues `task` (visible to the queue when the filler is dropped).
    ///
    /// # Safety
    /// Called at most `n` times after a `reserve(n)`.
    #[inline]
    pub(super) unsafe fn push(&mut self, task: Arc<Task>) {
        #[cfg(debug_assertions)]
        {
            assert!(self.room > 0, "Filler::push without room");
            self.room -= 1;
        }
        // SAFETY: `reserve` left room for this push (the caller's
        // contract): the slot at `tail` is outside the queued `head .. tail`
        // and not yet written by this filler, so uninitialized, and `mask`
        // keeps it inside the buffer, which `buf` still points to (no growth
        // since: the filler's contract).
        unsafe { (*self.buf.add(self.tail & self.mask)).write(task) };
        self.tail = self.tail.wrapping_add(1);
    }
}

impl Drop for Filler<'_> {
    #[inline]
    fn drop(&mut self) {
        self.q.tail.set(self.tail);
    }
}

impl Drop for RunQueue {
    fn drop(&mut self) {
        while let Some(t) = self.pop_front() {
            drop(t);
        }
    }
}

/// `cap` (a power of two) uninitialized slots.
fn new_buf(cap: usize) -> Box<[MaybeUninit<Arc<Task>>]> {
    debug_assert!(cap.is_power_of_two());
    (0..cap).map(|_| MaybeUninit::uninit()).collect()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::panic::Location;

    /// Pushes at both ends and pops against a `VecDeque`, through several
    /// growths and with the counters wrapping around `usize::MAX`; every
    /// task is dropped exactly once, queued ones with the queue.
    /// Runs `check` on a small new queue whose counters start at 0 and
    /// again near `usize::MAX` (so that they wrap), with a maker of tasks
    /// and a model of the queue; then checks that every task was dropped.
    fn on_queues(
        mut check: impl FnMut(&RunQueue, &dyn Fn() -> Arc<Task>, &mut VecDeque<*const Task>),
    ) {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let stack = crate::stack::reserve(64 * 1024).unwrap();
        let shared = rt.shared().clone();
        let base = Arc::strong_count(&shared);
        let mk = || Task::new_arc(None, &stack, shared.clone(), Location::caller(), None);
        for start in [0, usize::MAX - 5] {
            let q = RunQueue::with_capacity(2);
            q.head.set(start);
            q.tail.set(start);
            let mut model = VecDeque::new();
            check(&q, &mk, &mut model);
            drop(q);
        }
        assert_eq!(Arc::strong_count(&shared), base);
    }

    #[test]
    fn behaves_like_a_deque() {
        on_queues(|q, mk, model| {
            let mut rng = 12345u32;
            for n in 0..2000 {
                rng ^= rng << 13;
                rng ^= rng >> 17;
                rng ^= rng << 5;
                match rng % 5 {
                    0 | 1 => {
                        let t = mk();
                        model.push_back(Arc::as_ptr(&t));
                        q.push_back(t);
                    }
                    2 => {
                        let t = mk();
                        model.push_front(Arc::as_ptr(&t));
                        q.push_front(t);
                    }
                    _ => {
                        let got = q.pop_front().map(|t| Arc::as_ptr(&t));
                        assert_eq!(got, model.pop_front(), "step {n}");
                    }
                }
                assert_eq!(q.len(), model.len());
            }
            assert!(q.len() > 8, "the test grows the queue");
        });
    }

    /// A filler queues its tasks at the back in order, through growths in
    /// `reserve` (with tasks already pushed by it) and with the counters
    /// wrapping; what it pushed is queued when it is dropped, an unwind
    /// included.
    #[test]
    fn filler_queues_in_order_through_growth() {
        on_queues(|q, mk, model| {
            for round in 0..20 {
                let t = mk();
                model.push_back(Arc::as_ptr(&t));
                q.push_back(t);
                {
                    // SAFETY: nothing else touches `q` until `fill` goes.
                    let mut fill = unsafe { q.filler() };
                    let before = model.len();
                    for n in [1, round % 5, 3] {
                        fill.reserve(n);
                        for _ in 0..n {
                            assert_eq!(fill.pushed(), model.len() - before);
                            let t = mk();
                            model.push_back(Arc::as_ptr(&t));
                            // SAFETY: `n` pushes after `reserve(n)`.
                            unsafe { fill.push(t) };
                        }
                    }
                }
                assert_eq!(q.len(), model.len());
                for _ in 0..round % 4 {
                    let got = q.pop_front().map(|t| Arc::as_ptr(&t));
                    assert_eq!(got, model.pop_front(), "round {round}");
                }
            }
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // SAFETY: as above.
                let mut fill = unsafe { q.filler() };
                fill.reserve(1);
                let t = mk();
                model.push_back(Arc::as_ptr(&t));
                // SAFETY: one push after `reserve(1)`.
                unsafe { fill.push(t) };
                panic!("unwinding with a filler");
            }));
            assert!(r.is_err());
            while let Some(t) = q.pop_front() {
                assert_eq!(Some(Arc::as_ptr(&t)), model.pop_front());
            }
            assert!(model.is_empty());
        });
    }
}
