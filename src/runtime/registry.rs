//! A worker's registry of live coroutines (Go's `allgs`, per worker).
//!
//! It holds an `Arc` of every started, unfinished coroutine of the worker:
//! it keeps them alive while parked, lets shutdown unwind them on their
//! worker, and lets a dump or the monitor list them from another thread.
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
//! the registry). The same holds for the monitor's pointer to the running
//! task ([`monitor`](super::monitor)), which the owner clears before it
//! removes the task: a reader that loaded it inside a section may use it
//! until the section ends.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{fence, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::coroutine::Task;

/// Slots in chunk 0; chunk `k` has `FIRST << k`.
const FIRST: usize = 64;
/// Chunks: room for `FIRST * (2^CHUNKS - 1)` slots, more than memory holds.
const CHUNKS: usize = 40;

/// The live coroutines of one worker (see the module docs).
pub(crate) struct Registry {
    chunks: [AtomicPtr<AtomicPtr<Task>>; CHUNKS],
    /// Readers inside a [`read`] section.
    readers: AtomicUsize,
    /// Live coroutines; written by the owner only.
    live: AtomicUsize,
    owner: UnsafeCell<Owner>,
}

/// The owner's bookkeeping.
#[derive(Default)]
struct Owner {
    /// Slots handed out so far (free or not).
    len: usize,
    /// Free slots below `len`.
    free: Vec<usize>,
    /// The registry's `Arc`s of removed tasks that a reader may still see.
    deferred: Vec<*const Task>,
}

// SAFETY: `owner` is touched only by the owning worker (the contract of the
// `unsafe` methods); the chunks and slots are atomics, and the task
// pointers in them are `Arc`s of `Send + Sync` tasks, freed only as the
// module docs say.
unsafe impl Send for Registry {}
// SAFETY: as above.
unsafe impl Sync for Registry {}

impl Default for Registry {
    fn default() -> Registry {
        Registry {
            chunks: [const { AtomicPtr::new(ptr::null_mut()) }; CHUNKS],
            readers: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            owner: UnsafeCell::new(Owner::default()),
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

impl Registry {
    /// The slot `i`, if its chunk exists.
    #[inline]
    fn slot(&self, i: usize) -> Option<&AtomicPtr<Task>> {
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
    pub(crate) unsafe fn insert(&self, task: Arc<Task>) -> usize {
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
    fn new_slot(&self, owner: &mut Owner) -> usize {
        let i = owner.len;
        let (k, off) = locate(i);
        if off == 0 {
            let chunk: Box<[AtomicPtr<Task>]> = (0..FIRST << k)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect();
            let c = Box::into_raw(chunk).cast::<AtomicPtr<Task>>();
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
            std::thread::yield_now();
        }
    }

    /// Drops the deferred `Arc`s, once no reader is inside.
    #[cold]
    fn drop_deferred(owner: &mut Owner) {
        for d in owner.deferred.drain(..) {
            // SAFETY: registry `Arc`s of removed tasks, nulled before the
            // caller's fence, which saw no reader (see `remove`).
            drop(unsafe { Arc::from_raw(d) });
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let owner = self.owner.get_mut();
        for d in owner.deferred.drain(..) {
            // SAFETY: a registry's `Arc` (see `remove`); no reader is left
            // (`&mut self`).
            drop(unsafe { Arc::from_raw(d) });
        }
        for (k, c) in self.chunks.iter_mut().enumerate() {
            let c = *c.get_mut();
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
pub(crate) struct Read<'a> {
    reg: &'a Registry,
    _not_send: PhantomData<*const ()>,
}

/// Starts a read section: the tasks the registry holds now (and the task
/// the worker's monitor slot points to) stay alive until it ends.
pub(crate) fn read(reg: &Registry) -> Read<'_> {
    reg.readers.fetch_add(1, Ordering::SeqCst);
    // Pairs with the fence in `remove` (module docs).
    fence(Ordering::SeqCst);
    Read {
        reg,
        _not_send: PhantomData,
    }
}

impl Drop for Read<'_> {
    fn drop(&mut self) {
        // Release: our uses of the tasks happen before the owner drops them.
        self.reg.readers.fetch_sub(1, Ordering::Release);
    }
}

impl Read<'_> {
    /// The live coroutines.
    pub(crate) fn tasks(&self) -> Vec<Arc<Task>> {
        self.iter()
            .map(|t| {
                // SAFETY: `t` is the pointee of the registry's `Arc`, alive
                // for this section: taking one more reference is sound.
                unsafe {
                    Arc::increment_strong_count(t);
                    Arc::from_raw(t)
                }
            })
            .collect()
    }

    /// Iterates over the live coroutines.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Task> {
        let reg = self.reg;
        (0..CHUNKS)
            .map_while(move |k| {
                let c = reg.chunks[k].load(Ordering::Acquire);
                // SAFETY: a published chunk of `FIRST << k` slots, which
                // lives as long as the registry (see `Registry::slot`).
                (!c.is_null()).then(|| unsafe { std::slice::from_raw_parts(c, FIRST << k) })
            })
            .flatten()
            .filter_map(|s| {
                let p = s.load(Ordering::Acquire);
                // SAFETY: a task the registry held after this section
                // began: alive until the section ends (module docs).
                unsafe { p.as_ref() }
            })
    }

    /// Number of live coroutines.
    pub(crate) fn live(&self) -> usize {
        self.reg.live.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::panic::Location;
    use std::sync::atomic::AtomicBool;

    /// An owner inserting and removing tasks as fast as it can while readers
    /// walk the registry, read the tasks' names and keep clones past their
    /// section: a task freed while a reader could still see it shows as a
    /// name that does not match the
    /// task's `since` (or a crash); every task is dropped exactly once at the
    /// end (each holds a reference to the runtime, counted).
    #[test]
    fn readers_never_see_a_freed_task() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let shared = rt.shared().clone();
        let base = Arc::strong_count(&shared);
        let stack = crate::stack::reserve(64 * 1024).unwrap();
        let reg = Arc::new(Registry::default());
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (reg, stop) = (reg.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut seen = 0usize;
                    let mut kept = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let r = read(&reg);
                        for t in r.iter() {
                            let want = format!("t{}", t.since.load(Ordering::Relaxed));
                            assert_eq!(t.name.as_deref(), Some(want.as_str()));
                            seen += 1;
                        }
                        kept.extend(r.tasks().into_iter().take(2));
                        assert!(r.live() <= 64);
                        drop(r);
                        if kept.len() > 32 {
                            kept.clear();
                        }
                    }
                    seen
                })
            })
            .collect();
        let mut live = std::collections::VecDeque::new();
        for n in 0..200_000usize {
            let name = format!("t{n}");
            let t = Task::new_arc(Some(name), &stack, shared.clone(), Location::caller(), None);
            t.since.store(n as u64, Ordering::Relaxed);
            // SAFETY: this thread is the registry's only owner.
            live.push_back(unsafe { reg.insert(t) });
            if live.len() > 40 || n % 7 == 0 {
                let i = live.pop_front().unwrap();
                // SAFETY: as above.
                assert!(unsafe { reg.remove(i) });
                // SAFETY: as above.
                assert!(!unsafe { reg.remove(i) });
            }
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        assert_eq!(read(&reg).live(), live.len());
        for i in live {
            // SAFETY: as above.
            assert!(unsafe { reg.remove(i) });
        }
        assert_eq!(read(&reg).live(), 0);
        assert_eq!(read(&reg).iter().count(), 0);
        drop(reg);
        assert_eq!(Arc::strong_count(&shared), base);
    }

    /// A task removed while a reader is inside stays alive until the
    /// section ends, then goes at the next remove or flush.
    #[test]
    fn a_removed_task_outlives_the_open_read_section() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let shared = rt.shared().clone();
        let stack = crate::stack::reserve(64 * 1024).unwrap();
        let new = || Task::new_arc(None, &stack, shared.clone(), Location::caller(), None);
        let reg = Registry::default();
        let (a, b, c) = (new(), new(), new());
        // SAFETY: this thread is the registry's owner.
        let (ia, ib, ic) = unsafe {
            (
                reg.insert(a.clone()),
                reg.insert(b.clone()),
                reg.insert(c.clone()),
            )
        };
        let r = read(&reg);
        assert_eq!(r.iter().count(), 3);
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
