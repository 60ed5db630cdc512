//! A worker's registry of live coroutines (Go's `allgs`, per worker).
//!
//! It holds an `Arc` of every started, unfinished coroutine of the worker:
//! it keeps them alive while parked, lets shutdown unwind them on their
//! worker, and lets a dump or the monitor list them from another thread.
//! The runtime uses it as `runtime::registry::Registry` (`T` = its task
//! record); it is generic here so that loom can model it.
//!
//! ## Owner and readers
//! Only the worker (the owner) changes it: [`Registry::insert`] when a
//! coroutine first runs there, [`Registry::remove`] when it ends or is
//! leaked. Readers on other threads (the dump, the stall monitor naming the
//! running coroutine, the deadlock check) look at it inside a [`read`]
//! section. No lock: the owner's insert is a few plain stores, its remove a
//! store and one `SeqCst` fence (the uncontended mutex this replaces cost
//! two atomic read-modify-writes on each of them).
//!
//! The slots are atomic task pointers in chunks that never move (chunk `k`
//! holds `64 << k` slots, allocated by the owner when the slots in use first
//! reach it, published with Release, freed with the registry). A slot holds
//! the raw form of the registry's `Arc` (`Arc::into_raw`).
//!
//! Reclamation: a reader announces itself (`readers += 1`, then a `SeqCst`
//! fence) before it loads any slot; the owner's remove nulls the slot, then
//! fences (`SeqCst`) and loads `readers`. By the fences' order, if a reader
//! loaded the old pointer, its announcement is visible to the owner's load
//! (and the other way round: if the owner saw no reader, a reader that
//! comes later loads the null). So the owner drops the registry's `Arc` at
//! once only when no reader is inside; otherwise it keeps the `Arc` on a
//! deferred list, dropped at a later remove that sees no reader (or with
//! the registry). A later remove that loads `readers == 0` reads the value
//! the last reader's decrement (Release) left, or a later one: every write
//! of `readers` is a read-modify-write, so it continues that release
//! sequence, and the reader's uses of its tasks happen before the drop. The
//! same holds for the monitor's pointer to the running task
//! (`runtime::monitor`), which the owner clears before it removes the task:
//! a reader that loaded it inside a section may use it until the section
//! ends (the clearing store is sequenced before the remove's fence, just as
//! the slot's is).
//!
//! ## Model
//! `loom_tests` (run with `RUSTFLAGS="--cfg loom"`) puts a reader's section
//! against the owner's inserts (one of them growing a chunk, so the chunk
//! publication is checked too), removes, the monitor's running pointer and
//! the final flush, and checks that no reader touches a freed task, that
//! each task is freed exactly once, and that a reader that finds a chunk
//! sees it initialised. Loom models `fence(SeqCst)` (as a total order that
//! also passes happens-before, stronger than C++ only for non-atomic
//! accesses, which here come after the fences; see the model's comments)
//! but treats `SeqCst` loads, stores and read-modify-writes as `AcqRel`,
//! so the protocol must not (and does not) rely on a `SeqCst` access, only
//! on the fences.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ptr;

use crate::loom::{fence, Arc, AtomicPtr, AtomicUsize, Ordering};

/// Slots in chunk 0; chunk `k` has `FIRST << k`.
#[cfg(not(loom))]
const FIRST: usize = 64;
/// Chunks: room for `FIRST * (2^CHUNKS - 1)` slots, more than memory holds.
#[cfg(not(loom))]
const CHUNKS: usize = 40;
/// Under loom, tiny chunks (every slot a reader scans is a branch), so that
/// the third task grows the registry.
#[cfg(loom)]
const FIRST: usize = 2;
#[cfg(loom)]
const CHUNKS: usize = 3;

/// The live tasks of one worker (see the module docs).
pub(crate) struct Registry<T> {
    chunks: [AtomicPtr<AtomicPtr<T>>; CHUNKS],
    /// Readers inside a [`read`] section.
    readers: AtomicUsize,
    /// Live tasks; written by the owner only.
    live: AtomicUsize,
    owner: UnsafeCell<Owner<T>>,
    /// Under loom: written by the owner when it fills chunk `k`, read by a
    /// reader that found the chunk, so that loom checks the chunk's
    /// publication (it does not check that an atomic's creation happens
    /// before its uses).
    #[cfg(loom)]
    made: [loom::cell::UnsafeCell<bool>; CHUNKS],
}

/// The owner's bookkeeping.
struct Owner<T> {
    /// Slots handed out so far (free or not).
    len: usize,
    /// Free slots below `len`.
    free: Vec<usize>,
    /// The registry's `Arc`s of removed tasks that a reader may still see.
    deferred: Vec<*const T>,
}

// SAFETY: `owner` is touched only by the owning worker (the contract of the
// `unsafe` methods); the chunks and slots are atomics, and the task
// pointers in them are `Arc`s of `Send + Sync` tasks, freed only as the
// module docs say.
unsafe impl<T: Send + Sync> Send for Registry<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Registry<T> {}

impl<T> Default for Registry<T> {
    fn default() -> Registry<T> {
        Registry {
            chunks: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            readers: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            owner: UnsafeCell::new(Owner {
                len: 0,
                free: Vec::new(),
                deferred: Vec::new(),
            }),
            #[cfg(loom)]
            made: std::array::from_fn(|_| loom::cell::UnsafeCell::new(false)),
        }
    }
}

/// Chunk and offset of slot `i`.
#[inline]
fn locate(i: usize) -> (usize, usize) {
    let j = i + FIRST;
    let k = (usize::BITS - 1 - j.leading_zeros()) as usize - FIRST.trailing_zeros() as usize;
    (k, j - (FIRST << k))
}

impl<T> Registry<T> {
    /// The slot `i`, if its chunk exists.
    #[inline]
    fn slot(&self, i: usize) -> Option<&AtomicPtr<T>> {
        let (k, off) = locate(i);
        let c = self.chunks.get(k)?.load(Ordering::Acquire);
        if c.is_null() {
            return None;
        }
        // SAFETY: chunk `k` was allocated with `FIRST << k` slots and
        // published with Release (`new_slot`); it lives as long as `self`.
        Some(unsafe { &*c.add(off) })
    }

    /// Adds a task; returns its slot (kept in `TaskLocal::slot`).
    ///
    /// # Safety
    /// Called by the owning worker only.
    #[inline]
    pub(crate) unsafe fn insert(&self, task: Arc<T>) -> usize {
        // SAFETY: owner only (the caller's contract).
        let owner = unsafe { &mut *self.owner.get() };
        let i = match owner.free.pop() {
            Some(i) => i,
            None => self.new_slot(owner),
        };
        let slot = self.slot(i).expect("gopark: registry slot without a chunk");
        // Release: a reader that loads the pointer sees the task.
        slot.store(Arc::into_raw(task).cast_mut(), Ordering::Release);
        self.live
            .store(self.live.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        i
    }

    #[cold]
    fn new_slot(&self, owner: &mut Owner<T>) -> usize {
        let i = owner.len;
        let (k, off) = locate(i);
        if off == 0 {
            let chunk: Box<[AtomicPtr<T>]> = (0..FIRST << k)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect();
            let c = Box::into_raw(chunk).cast::<AtomicPtr<T>>();
            // SAFETY: (loom only) the owner is the only writer, once.
            #[cfg(loom)]
            self.made[k].with_mut(|m| unsafe { *m = true });
            // Release: a reader that loads the chunk sees its null slots.
            self.chunks[k].store(c, Ordering::Release);
        }
        owner.len = i + 1;
        i
    }

    /// Removes the task in slot `i`, if any; true if there was one. The
    /// registry's `Arc` is dropped here, or later if a reader may hold the
    /// task (module docs); the caller holds its own.
    ///
    /// # Safety
    /// Called by the owning worker only.
    #[inline]
    pub(crate) unsafe fn remove(&self, i: usize) -> bool {
        // SAFETY: owner only (the caller's contract).
        let owner = unsafe { &mut *self.owner.get() };
        if i >= owner.len {
            return false;
        }
        let Some(slot) = self.slot(i) else {
            return false;
        };
        // Only the owner writes slots: a plain load and store.
        let p = slot.load(Ordering::Relaxed);
        if p.is_null() {
            return false;
        }
        slot.store(ptr::null_mut(), Ordering::Relaxed);
        owner.free.push(i);
        self.live
            .store(self.live.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
        // Pairs with the fence in `read` (module docs). Acquire: a reader
        // that left is done with the tasks it saw.
        fence(Ordering::SeqCst);
        if self.readers.load(Ordering::Acquire) == 0 {
            // SAFETY: `p` is the registry's `Arc` (stored by `insert`), and
            // no reader can reach it any more (module docs).
            drop(unsafe { Arc::from_raw(p) });
            if !owner.deferred.is_empty() {
                Self::drop_deferred(owner);
            }
        } else {
            owner.deferred.push(p);
        }
        true
    }

    /// Drops the deferred `Arc`s once no reader is inside, waiting a little
    /// for the readers there are (a read section is short). The owner calls
    /// it when it will remove no more tasks (at the end of its shutdown): a
    /// removed task left on the list would keep its runtime alive. If
    /// readers keep coming for that long, the list stays (leaked).
    ///
    /// # Safety
    /// Called by the owning worker only.
    pub(crate) unsafe fn flush(&self) {
        // SAFETY: owner only (the caller's contract).
        let owner = unsafe { &mut *self.owner.get() };
        if owner.deferred.is_empty() {
            return;
        }
        for _ in 0..100_000 {
            // Acquire: the readers that left are done with the tasks. A
            // reader that comes later cannot see them (module docs).
            if self.readers.load(Ordering::Acquire) == 0 {
                Self::drop_deferred(owner);
                return;
            }
            crate::loom::yield_now();
        }
    }

    /// Drops the deferred `Arc`s, once no reader is inside.
    #[cold]
    fn drop_deferred(owner: &mut Owner<T>) {
        for d in owner.deferred.drain(..) {
            // SAFETY: registry `Arc`s of removed tasks, nulled before the
            // caller's fence, which saw no reader (see `remove`).
            drop(unsafe { Arc::from_raw(d) });
        }
    }
}

impl<T> Drop for Registry<T> {
    fn drop(&mut self) {
        let owner = self.owner.get_mut();
        for d in owner.deferred.drain(..) {
            // SAFETY: a registry's `Arc` (see `remove`); no reader is left
            // (`&mut self`).
            drop(unsafe { Arc::from_raw(d) });
        }
        for (k, c) in self.chunks.iter_mut().enumerate() {
            // Exclusive access (`&mut self`); loom's atomics have no
            // `get_mut`, so a Relaxed load.
            let c = c.load(Ordering::Relaxed);
            if c.is_null() {
                break;
            }
            // SAFETY: allocated by `new_slot` as a boxed slice of `FIRST <<
            // k` slots and never freed before.
            let chunk = unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(c, FIRST << k)) };
            for s in chunk.iter() {
                let p = s.load(Ordering::Relaxed);
                if !p.is_null() {
                    // SAFETY: the registry's `Arc` of a task still in it.
                    drop(unsafe { Arc::from_raw(p) });
                }
            }
        }
    }
}

/// A reader's view of a registry (see [`read`]).
pub(crate) struct Read<'a, T> {
    reg: &'a Registry<T>,
    _not_send: PhantomData<*const ()>,
}

/// Starts a read section: the tasks the registry holds now (and the task
/// the worker's monitor slot points to) stay alive until it ends.
pub(crate) fn read<T>(reg: &Registry<T>) -> Read<'_, T> {
    reg.readers.fetch_add(1, Ordering::SeqCst);
    // Pairs with the fence in `remove` (module docs).
    fence(Ordering::SeqCst);
    Read {
        reg,
        _not_send: PhantomData,
    }
}

impl<T> Drop for Read<'_, T> {
    fn drop(&mut self) {
        // Release: our uses of the tasks happen before the owner drops them.
        self.reg.readers.fetch_sub(1, Ordering::Release);
    }
}

impl<T> Read<'_, T> {
    /// The live tasks.
    pub(crate) fn tasks(&self) -> Vec<Arc<T>> {
        self.raw()
            .map(|p| {
                // SAFETY: `p` is the registry's `Arc` (the pointer
                // `Arc::into_raw` gave, whose provenance covers the counts;
                // a pointer taken from a `&T` would not), alive for this
                // section: taking one more reference is sound.
                unsafe {
                    Arc::increment_strong_count(p);
                    Arc::from_raw(p)
                }
            })
            .collect()
    }

    /// Iterates over the live tasks.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        // SAFETY: a task the registry held after this section began: alive
        // until the section ends (module docs).
        self.raw().map(|p| unsafe { &*p })
    }

    /// The registry's task pointers (non-null), as `Arc::into_raw` gave
    /// them.
    fn raw(&self) -> impl Iterator<Item = *const T> + '_ {
        let reg = self.reg;
        (0..CHUNKS)
            .map_while(move |k| {
                let c = reg.chunks[k].load(Ordering::Acquire);
                if c.is_null() {
                    return None;
                }
                // SAFETY: (loom only) a read of the owner's one write.
                #[cfg(loom)]
                reg.made[k].with(|m| assert!(unsafe { *m }));
                // SAFETY: a published chunk of `FIRST << k` slots, which
                // lives as long as the registry (see `Registry::slot`).
                Some(unsafe { std::slice::from_raw_parts(c, FIRST << k) })
            })
            .flatten()
            .map(|s| s.load(Ordering::Acquire).cast_const())
            .filter(|p| !p.is_null())
    }

    /// Number of live tasks.
    pub(crate) fn live(&self) -> usize {
        self.reg.live.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A task that counts its drops.
    struct Counted(std::sync::Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A task removed while a reader is inside stays alive until the
    /// section ends, then goes at the next remove or flush.
    #[test]
    fn a_removed_task_outlives_the_open_read_section() {
        let reg = Registry::default();
        let (a, b, c) = (Arc::new(1), Arc::new(2), Arc::new(3));
        // SAFETY: this thread is the registry's owner.
        let (ia, ib, ic) = unsafe {
            (
                reg.insert(a.clone()),
                reg.insert(b.clone()),
                reg.insert(c.clone()),
            )
        };
        let r = read(&reg);
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), [1, 2, 3]);
        // SAFETY: this thread is the registry's owner.
        assert!(unsafe { reg.remove(ia) });
        assert_eq!(Arc::strong_count(&a), 2, "dropped while a reader is inside");
        assert_eq!(r.live(), 2);
        drop(r);
        // SAFETY: this thread is the registry's owner.
        assert!(unsafe { reg.remove(ib) });
        assert_eq!(
            Arc::strong_count(&a),
            1,
            "the deferred one goes at the next remove"
        );
        assert_eq!(Arc::strong_count(&b), 1);
        let r = read(&reg);
        // SAFETY: this thread is the registry's owner.
        assert!(unsafe { reg.remove(ic) });
        assert_eq!(Arc::strong_count(&c), 2);
        drop(r);
        // SAFETY: this thread is the registry's owner.
        unsafe { reg.flush() };
        assert_eq!(
            Arc::strong_count(&c),
            1,
            "flush drops it once no reader is inside"
        );
        assert_eq!(read(&reg).iter().count(), 0);
    }

    /// Growth past the first chunk, slot reuse, and the registry's drop:
    /// every task is dropped exactly once, the ones still inside and the
    /// deferred ones with the registry. Under Miri (Stacked Borrows) it
    /// also checks that `tasks` clones from the registry's own pointer: one
    /// taken from the `&T` that `iter` gives covers the task but not the
    /// `Arc`'s counts before it, which failed here before.
    #[test]
    fn every_task_is_dropped_once() {
        let drops = std::sync::Arc::new(AtomicUsize::new(0));
        let n = FIRST * 3 + 5;
        let reg = Registry::default();
        let mut slots = Vec::new();
        for _ in 0..n {
            let t = Arc::new(Counted(drops.clone()));
            // SAFETY: this thread is the registry's owner.
            slots.push(unsafe { reg.insert(t) });
        }
        assert_eq!(read(&reg).iter().count(), n);
        // SAFETY: this thread is the registry's owner.
        assert!(unsafe { reg.remove(slots[3]) });
        // SAFETY: as above.
        assert!(!unsafe { reg.remove(slots[3]) });
        // SAFETY: as above.
        assert!(!unsafe { reg.remove(n + 1_000) });
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        // SAFETY: as above.
        let again = unsafe { reg.insert(Arc::new(Counted(drops.clone()))) };
        assert_eq!(again, slots[3], "a freed slot is reused");
        let r = read(&reg);
        assert_eq!(r.tasks().len(), n);
        // SAFETY: as above.
        assert!(unsafe { reg.remove(slots[0]) });
        drop(r);
        assert_eq!(drops.load(Ordering::Relaxed), 1, "deferred");
        drop(reg);
        assert_eq!(drops.load(Ordering::Relaxed), n + 1);
    }

    #[test]
    fn locate_covers_every_slot_once() {
        let mut expect = (0, 0);
        for i in 0..FIRST * 15 {
            assert_eq!(locate(i), expect, "slot {i}");
            expect.1 += 1;
            if expect.1 == FIRST << expect.0 {
                expect = (expect.0 + 1, 0);
            }
        }
        assert_eq!(locate(FIRST * ((1 << CHUNKS) - 1) - 1).0, CHUNKS - 1);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! The owner inserts and removes tasks (reusing a slot, growing a
    //! chunk), points the monitor's running pointer at them, and flushes,
    //! while a reader walks the registry in a section, follows the running
    //! pointer and keeps clones past its section.
    //!
    //! What fails the model:
    //! - a reader about to touch a task that was already dropped in this
    //!   interleaving (the book below, checked before the task's memory is
    //!   read);
    //! - a reader's read of a task that does not happen before the task's
    //!   drop, or does not happen after the owner's last writes before the
    //!   insert (each task has a loom cell, written by the owner before the
    //!   insert and by the task's `Drop`, read by the readers: loom reports a
    //!   read and a write that no happens-before orders, which is what a
    //!   free racing with a use, or a task published too early, is);
    //! - a task never dropped: the book counts drops (loom would also
    //!   report the leaked `Arc` at the end of the execution);
    //! - a task dropped twice, or a freed task reached by `Read::tasks`
    //!   before the book could check it: loom's `Arc::from_raw` of a
    //!   released pointer panics after it rebuilt std's `Arc`, whose drop
    //!   while unwinding writes freed memory, so the test process dies
    //!   (SIGABRT or SIGSEGV) instead of failing with a message; the reader
    //!   in `reader_against_growth` walks the registry with the book before
    //!   it calls `tasks`, so a use-after-free shows as a message there;
    //! - a reader that finds a chunk but not the owner's writes before its
    //!   publication (`Registry::made`).
    //!
    //! Each of these faults, made on purpose, fails a model with this
    //! file's preemption bound (the double drop by a crash, the others with
    //! a message): the owner not deferring, no fence in `read`, the owner's
    //! fence `AcqRel`, the owner's or `flush`'s `readers` load Relaxed, the
    //! reader's decrement Relaxed, `flush` not waiting or forgetting the
    //! list, the registry's drop leaking, the insert's store or the
    //! reader's slot load Relaxed, the chunk's store or load Relaxed, the
    //! running pointer cleared after the remove or stored Relaxed, the
    //! deferred list dropped without being emptied (a double drop).
    //!
    //! Fences: loom 0.7 implements `fence(SeqCst)` as a join of the
    //! thread's clock with one global clock, in the order loom runs the
    //! fences (loom PR #220; `SeqCst` *accesses* it treats as `AcqRel`, its
    //! README and issue #180). That gives the C++ rule the protocol uses
    //! (if the owner's fence comes first, the reader's later slot load sees
    //! the null or a later store; if the reader's comes first, the owner's
    //! later `readers` load sees the increment or a later value), plus a
    //! happens-before edge C++ does not give, from what precedes the first
    //! fence to what follows the second. The edge cannot hide a
    //! use-after-free: the reader's uses follow its fence and the drop
    //! follows the owner's, so nothing orders them but the decrement
    //! (Release) and the owner's load (Acquire). It could hide a missing
    //! Release on an owner's write before a remove's fence, in the
    //! interleavings where that fence runs before the reader's; the models
    //! also run the reader's section before any remove, which is where
    //! such a fault shows (the insert's Relaxed store above failed so). The
    //! increment in `read` is a `SeqCst` access that loom weakens to
    //! `AcqRel`; the protocol needs only the fence after it.
    use super::*;
    use loom::cell::UnsafeCell as Cell;
    use std::sync::atomic::AtomicUsize as StdCounter;

    /// A task: its number, a cell the readers read and its drop writes,
    /// and its drop count (outside loom's view: the book of the model).
    struct Probe {
        id: usize,
        value: Cell<usize>,
        drops: std::sync::Arc<StdCounter>,
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            // Not while the model unwinds from a failure (a second panic
            // would abort the test binary).
            if !std::thread::panicking() {
                // SAFETY: loom checks this write against the readers' reads.
                self.value.with_mut(|v| unsafe { *v = usize::MAX });
            }
            self.drops
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    impl Probe {
        /// The owner's last writes to the task before it inserts it (a
        /// task's construction, its first stamps): a reader that finds the
        /// task must see them.
        fn init(&self) {
            // SAFETY: loom checks this write against the readers' reads.
            self.value.with_mut(|v| unsafe { *v = self.id });
        }
    }

    /// The model's tasks by address, with their drop counts. Every task is
    /// made before any thread starts, so no address is reused.
    struct Book(Vec<(usize, std::sync::Arc<StdCounter>)>);

    impl Book {
        fn make(n: usize) -> (Book, Vec<Arc<Probe>>) {
            let tasks: Vec<_> = (0..n)
                .map(|id| {
                    Arc::new(Probe {
                        id,
                        value: Cell::new(id),
                        drops: std::sync::Arc::new(StdCounter::new(0)),
                    })
                })
                .collect();
            let book = tasks
                .iter()
                .map(|t| (Arc::as_ptr(t) as usize, t.drops.clone()))
                .collect();
            (Book(book), tasks)
        }

        fn drops(&self, id: usize) -> usize {
            self.0[id].1.load(std::sync::atomic::Ordering::Relaxed)
        }

        /// A reader's use of the task at `t`.
        fn touch(&self, t: *const Probe) {
            let id = self
                .0
                .iter()
                .position(|&(a, _)| a == t as usize)
                .expect("a reader loaded a pointer to no task");
            assert_eq!(
                self.drops(id),
                0,
                "a reader reached task {id} after it was dropped"
            );
            // SAFETY: not dropped (just checked; loom switches threads only
            // at its own atomic operations, and reading a cell is none).
            let p = unsafe { &*t };
            assert_eq!(p.id, id);
            // SAFETY: loom checks this read against the drop's write.
            p.value.with(|v| assert_eq!(unsafe { *v }, id));
        }

        fn all_dropped_once(&self) {
            for id in 0..self.0.len() {
                assert_eq!(
                    self.drops(id),
                    1,
                    "task {id} dropped {} times",
                    self.drops(id)
                );
            }
        }
    }

    /// The registry and the monitor's running pointer (`monitor::Slot`).
    struct World {
        reg: Registry<Probe>,
        running: AtomicPtr<Probe>,
    }

    impl World {
        /// The owner's insert of a task it holds.
        ///
        /// # Safety
        /// Called by the model's main thread (the owner) only.
        unsafe fn insert(&self, t: &Arc<Probe>) -> usize {
            t.init();
            // SAFETY: the caller's contract.
            unsafe { self.reg.insert(t.clone()) }
        }

        /// `Slot::enter`: Release, after the task is in the registry.
        fn enter(&self, t: &Arc<Probe>) {
            self.running
                .store(Arc::as_ptr(t).cast_mut(), Ordering::Release);
        }

        /// `Slot::leave`: Relaxed, before the remove (and its fence).
        fn leave(&self) {
            self.running.store(ptr::null_mut(), Ordering::Relaxed);
        }

        /// The owner's run of task `t` to its end (`execute`, `finish`),
        /// which drops its own reference after the remove.
        fn run_and_remove(&self, t: Arc<Probe>, slot: usize) {
            self.enter(&t);
            self.leave();
            // SAFETY: the model's main thread is the owner.
            assert!(unsafe { self.reg.remove(slot) });
            drop(t);
        }
    }

    /// The monitor's `running_task`: the pointer, in a section.
    fn follow_running(w: &World, book: &Book, _in_section: &Read<'_, Probe>) {
        let p = w.running.load(Ordering::Acquire);
        if !p.is_null() {
            book.touch(p);
        }
    }

    fn check(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        // At most 4 preemptions: 100,000 executions, about 6 s of CPU
        // (without a bound they had not finished after half an hour). A
        // bug here needs a stale load, which loom explores apart from
        // preemptions; every fault listed in the module docs fails the
        // models with this bound. `LOOM_MAX_PREEMPTIONS` overrides it.
        if b.preemption_bound.is_none() {
            b.preemption_bound = Some(4);
        }
        static N: StdCounter = StdCounter::new(0);
        N.store(0, std::sync::atomic::Ordering::Relaxed);
        let t0 = std::time::Instant::now();
        b.check(move || {
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            f()
        });
        eprintln!(
            "ITER {} in {:?}",
            N.load(std::sync::atomic::Ordering::Relaxed),
            t0.elapsed()
        );
    }

    /// One chunk: two tasks in turn in the same slot, each run (the running
    /// pointer) and removed while a reader, twice, walks the registry and
    /// follows the running pointer in a section; then the flush.
    #[test]
    fn reader_against_remove() {
        check(|| {
            let (book, mut tasks) = Book::make(2);
            let book = std::sync::Arc::new(book);
            let w = Arc::new(World {
                reg: Registry::default(),
                running: AtomicPtr::new(ptr::null_mut()),
            });
            let reader = {
                let (w, book) = (w.clone(), book.clone());
                loom::thread::spawn(move || {
                    // Two sections: the second may start while the owner
                    // still holds a task the first could have seen.
                    for _ in 0..2 {
                        let r = read(&w.reg);
                        for t in r.iter() {
                            book.touch(t);
                        }
                        follow_running(&w, &book, &r);
                    }
                })
            };
            let b = tasks.pop().unwrap();
            let a = tasks.pop().unwrap();
            // SAFETY: the model's main thread is the owner.
            let ia = unsafe { w.insert(&a) };
            w.run_and_remove(a, ia);
            // SAFETY: as above.
            let ib = unsafe { w.insert(&b) };
            assert_eq!(ib, ia, "a freed slot is reused");
            w.run_and_remove(b, ib);
            // SAFETY: as above.
            unsafe { w.reg.flush() };
            reader.join().unwrap();
            book.all_dropped_once();
            drop(w);
            book.all_dropped_once();
        });
    }

    /// Growth: chunk 0 is full, the owner inserts a third task (a new
    /// chunk), runs and removes it and one of the first, while a reader
    /// walks the registry, follows the running pointer, takes clones of
    /// every task and uses them after its section. No flush: the task still
    /// inside and the deferred ones go with the registry.
    #[test]
    fn reader_against_growth() {
        check(|| {
            let (book, mut tasks) = Book::make(3);
            let book = std::sync::Arc::new(book);
            let w = Arc::new(World {
                reg: Registry::default(),
                running: AtomicPtr::new(ptr::null_mut()),
            });
            let c = tasks.pop().unwrap();
            let b = tasks.pop().unwrap();
            let a = tasks.pop().unwrap();
            // SAFETY: the model's main thread is the owner.
            let (ia, _) = unsafe { (w.insert(&a), w.insert(&b)) };
            drop(b);
            let reader = {
                let (w, book) = (w.clone(), book.clone());
                loom::thread::spawn(move || {
                    let r = read(&w.reg);
                    for t in r.iter() {
                        book.touch(t);
                    }
                    follow_running(&w, &book, &r);
                    let kept = r.tasks();
                    drop(r);
                    for t in &kept {
                        book.touch(Arc::as_ptr(t));
                    }
                })
            };
            // SAFETY: as above.
            let ic = unsafe { w.insert(&c) };
            assert_eq!(ic, FIRST, "the third task opens chunk 1");
            w.run_and_remove(c, ic);
            // SAFETY: as above.
            assert!(unsafe { w.reg.remove(ia) });
            drop(a);
            reader.join().unwrap();
            assert_eq!(book.drops(1), 0, "still in the registry");
            drop(w);
            book.all_dropped_once();
        });
    }
}
