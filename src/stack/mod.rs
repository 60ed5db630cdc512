//! Coroutine stacks: a guarded slab allocator, per-thread pools, and
//! stack-overflow diagnostics (docs/SAFETY.md, section 4).
//!
//! # Layout
//!
//! Stacks of one size class are carved out of large anonymous mappings
//! ("slabs", see [`slab`]). Each slot is a 64 KiB guard region followed by
//! the usable stack:
//!
//! ```text
//! slab: | guard | stack 0 | guard | stack 1 | guard | stack 2 | ...
//!       ^limit0 ^         ^base0 = limit1
//! ```
//!
//! The guard is installed with `madvise(MADV_GUARD_INSTALL)` (Linux 6.13+):
//! guard markers live in the page tables, so a slab of thousands of stacks is
//! one memory mapping and costs no entry of `vm.max_map_count` per stack. On
//! older kernels (the first install fails with `EINVAL`) the guards are
//! `mprotect(PROT_NONE)` pages instead, which split the mapping (two VMAs per
//! stack) but are otherwise equivalent. Memory is committed lazily: a stack
//! that a coroutine touches lightly costs one or two resident pages.
//!
//! With guard markers, a new stack's guard waits for the stack's first use
//! ([`bind`], at the coroutine's first run; see `slab::take` for why): until
//! then the stack is cold and no code runs on it, and
//! [`Stack::mark_used`] asserts the guard before any does. In the mprotect
//! mode (and for the first stack of the process, whose install detects the
//! mode) the guard is installed when the stack is carved.
//!
//! # Pools
//!
//! - Each thread keeps up to [`LOCAL_MAX`] warm and [`LOCAL_MAX`] cold free
//!   stacks. [`alloc`] and [`free`] hit that pool in the steady state: no
//!   lock, no syscall. A stack is *cold* while no code has run on it since
//!   it was carved or its memory was given back (none of its pages is
//!   resident), *warm* once it may hold resident pages.
//! - When a thread's pool is full, the oldest [`LOCAL_BATCH`] stacks move to a
//!   global pool; when it is empty, [`alloc`] takes up to [`LOCAL_BATCH`] from
//!   the global pool at once, and carves a new stack only if that is empty.
//! - The global pool keeps at most [`slab::DIRTY_MAX`] stacks per size class as
//!   they are ("dirty", possibly resident down to their deepest use). Beyond
//!   that the older half is given back to the kernel with `MADV_DONTNEED`
//!   (adjacent slots coalesced into one range, up to 1,024 ranges per
//!   `process_madvise` call: see `slab::discard`) and kept as clean address
//!   space;
//!   so are stacks that stayed unused in the global pool for
//!   [`slab::SCAVENGE_AFTER`] (checked whenever stacks enter the pool, and by
//!   [`scavenge`], which an idle worker may call). We cannot cheaply tell how
//!   deep a stack was used (that would need a `mincore` syscall, as dear as
//!   the `madvise` itself), so the bound is on the number of possibly dirty
//!   stacks: at most `LOCAL_MAX` per thread plus `DIRTY_MAX` per size class,
//!   whatever their depth. A clean stack costs a page fault or two when
//!   reused, which is why a burst of spawns that fits in the pools is much
//!   cheaper than one that does not (see `benches/stack.rs`).
//! - A thread's pool moves to the global pool when the thread exits. While
//!   the thread lives, its pooled stacks are out of reach of other threads:
//!   near an address-space limit, a spawn on one worker can fail although
//!   another worker holds up to `LOCAL_MAX` free stacks.
//!
//! Slabs are never unmapped; a stack's address range stays reserved for the
//! life of the process, which also makes its guard permanent.
//!
//! # Reserving at spawn, binding at the first run
//!
//! A new coroutine gets its stack when it is spawned ([`reserve`]), so that
//! running out of stack memory is an error of the spawn, but it may wait in
//! a queue for a long time before it runs. [`reserve`] prefers a cold stack;
//! the spawn then leaves it untouched (the coroutine's first frame is written
//! only when it first runs), and [`bind`] swaps it, at the first run, for a
//! warm stack of the same size from the worker's pool if there is one (the
//! cold one goes back to the pool, still untouched). So only coroutines that
//! have started hold touched stacks: in a spawn tree of 1.1M coroutines
//! (skynet), about 20k of the ~155k alive at the peak had started, and the
//! others, queued, cost address space only, not a page each (a page fault
//! to take, and 4 KiB of memory).
//!
//! # Overflow diagnostics
//!
//! See [`signal`]: [`worker_init`] gives each worker a signal stack, installs
//! one process-wide SIGSEGV/SIGBUS handler, and records the worker's
//! [`RunningFn`](signal::RunningFn), which the handler asks for what it
//! needs to name the coroutine whose guard was hit.

use std::cell::RefCell;
use std::fmt;
use std::io;

use corosensei::stack::StackPointer;

mod signal;
mod slab;

/// Names an anonymous mapping (`PR_SET_VMA_ANON_NAME`, Linux 5.17+ built
/// with `CONFIG_ANON_VMA_NAME`), so `/proc/PID/maps` shows
/// `[anon:gopark stack]` and memory profilers can tell coroutine stacks
/// apart. Best effort: an older kernel answers EINVAL, and nothing depends
/// on the name.
fn name_mapping(addr: usize, len: usize, name: &'static std::ffi::CStr) {
    // SAFETY: prctl only reads the name (copied into the kernel) and
    // changes no memory; `addr..addr + len` is a mapping the caller owns.
    unsafe {
        libc::prctl(
            libc::PR_SET_VMA,
            libc::PR_SET_VMA_ANON_NAME as libc::c_ulong,
            addr as libc::c_ulong,
            len as libc::c_ulong,
            name.as_ptr() as libc::c_ulong,
        )
    };
}
#[cfg(test)]
mod tests;

pub(crate) use signal::{worker_init, RunningInfo};
pub(crate) use slab::GUARD_SIZE;

/// Smallest usable stack size handed out.
const MIN_SIZE: usize = 16 * 1024;

/// Largest usable stack size accepted (larger requests are an error).
const MAX_SIZE: usize = 1 << 40;

/// How many free stacks of each kind (warm, cold) one thread keeps.
const LOCAL_MAX: usize = 64;

/// How many stacks move between a thread's pool and the global pool at once.
const LOCAL_BATCH: usize = 32;

/// A coroutine stack carved from a slab, with a [`GUARD_SIZE`] guard below it.
///
/// Dropping a `Stack` (on any thread) is the same as [`free`]: it goes back to
/// the dropping thread's pool.
pub(crate) struct Stack {
    /// Highest address (exclusive): where the stack starts growing down.
    top: usize,
    /// Usable bytes below `top`; the guard lies below `top - size`.
    size: usize,
    /// No code has run on it since it was carved or trimmed (see the module
    /// docs); only [`reserve`] hands out cold stacks, and whoever touches
    /// one calls [`Stack::mark_used`] first.
    cold: bool,
    /// Its guard is installed. Only a cold stack can lack it (the guard of
    /// a new stack may be left to its first use: [`bind`]);
    /// [`Stack::mark_used`] refuses a stack without it.
    guarded: bool,
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("base", &format_args!("{:#x}", self.top))
            .field("size", &self.size)
            .finish()
    }
}

impl Stack {
    /// Usable size in bytes (excluding the guard).
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// True if no code has run on this stack yet (see [`reserve`]).
    pub(crate) fn is_cold(&self) -> bool {
        self.cold
    }

    /// True if its guard is installed (see [`bind`]).
    #[cfg(test)]
    pub(crate) fn is_guarded(&self) -> bool {
        self.guarded
    }

    /// Records that code is about to run on this stack: when freed, it goes
    /// back with the warm stacks.
    ///
    /// # Panics
    /// If its guard is not installed: a stack reaches code only through
    /// [`bind`] (or as a warm stack, which had its guard for its first
    /// use), so this is a bug, and running on it could overflow into the
    /// stack below unnoticed.
    #[inline]
    pub(crate) fn mark_used(&mut self) {
        assert!(self.guarded, "gopark: a coroutine stack without its guard");
        self.cold = false;
    }

    /// Installs its guard if it has none yet. No code has run on such a
    /// stack (only cold stacks lack a guard); on error it stays without.
    #[inline]
    fn guard(&mut self) -> io::Result<()> {
        if !self.guarded {
            slab::install_guard(self.top - self.size - GUARD_SIZE, self.size)?;
            self.guarded = true;
        }
        Ok(())
    }

    /// A free stack from a pool entry's `top` (see [`slab::UNGUARDED`]).
    #[inline]
    fn from_pool(size: usize, top: usize, cold: bool) -> Stack {
        Stack {
            top: top & !slab::UNGUARDED,
            size,
            cold,
            guarded: top & slab::UNGUARDED == 0,
        }
    }

    /// This stack's `top` as a pool keeps it.
    #[inline]
    fn pool_top(&self) -> usize {
        if self.guarded {
            self.top
        } else {
            self.top | slab::UNGUARDED
        }
    }
}

// SAFETY: `top` is page aligned (so 16-byte aligned) and `top - size` is the
// upper end of a GUARD_SIZE region (guard markers or PROT_NONE pages) that
// stays in place for the life of the process once installed (slabs are never
// unmapped and MADV_DONTNEED keeps guard markers). It is installed before
// any code runs on the stack: corosensei gets a `Stack` only through
// `spawn::make_co` (and tests), which calls `mark_used`, which asserts
// `guarded`; `bind` installs a missing guard first. `limit()` includes the
// guard, and `size >= MIN_SIZE >= MIN_STACK_SIZE`. The memory belongs to
// this `Stack` alone until it is dropped.
unsafe impl corosensei::stack::Stack for Stack {
    #[inline]
    fn base(&self) -> StackPointer {
        // `top` is the end of a mapping, never zero.
        StackPointer::new(self.top).expect("stack top is non-null")
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.top - self.size - GUARD_SIZE).expect("stack limit is non-null")
    }
}

// The scheduler moves unstarted coroutines (with their stacks) between threads.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Stack>();
};

impl Drop for Stack {
    #[inline]
    fn drop(&mut self) {
        // The common case, inline: a warm stack into this thread's pool,
        // which has room (what `release` would do too).
        if !self.cold {
            let kept = POOL.try_with(|p| {
                let Ok(mut p) = p.try_borrow_mut() else {
                    return false;
                };
                let n = p.warm.len();
                if n >= LOCAL_MAX || n == p.warm.capacity() {
                    return false;
                }
                p.warm.push((self.size, self.top));
                true
            });
            if kept == Ok(true) {
                return;
            }
        }
        release(self.size, self.pool_top(), self.cold);
    }
}

/// A thread's free stacks as `(size, top)` pairs, hottest last: `warm` ones
/// (possibly resident) and `cold` ones (untouched since carved or trimmed).
struct LocalPool {
    warm: Vec<(usize, usize)>,
    cold: Vec<(usize, usize)>,
}

impl Drop for LocalPool {
    fn drop(&mut self) {
        slab::give(self.warm.drain(..), false);
        slab::give(self.cold.drain(..), true);
    }
}

thread_local! {
    static POOL: RefCell<LocalPool> = const {
        RefCell::new(LocalPool { warm: Vec::new(), cold: Vec::new() })
    };
}

/// The system page size, asked once.
pub(crate) fn page_size() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let p = if p > 0 { p as usize } else { 4096 };
    assert!(
        p.is_power_of_two() && p <= GUARD_SIZE,
        "unsupported page size {p}"
    );
    PAGE.store(p, Ordering::Relaxed);
    p
}

/// Rounds a requested size up to whole pages, with a minimum of 16 KiB.
#[inline]
pub(crate) fn round_size(size: usize) -> usize {
    let page = page_size();
    match size.max(MIN_SIZE).checked_add(page - 1) {
        Some(s) => s & !(page - 1),
        None => usize::MAX & !(page - 1),
    }
}

/// Takes a stack with at least `size` usable bytes: from this thread's pool,
/// else from the global pool, else carved from a (possibly new) slab. The
/// caller may touch it at once: it counts as warm when freed.
///
/// Fails with an `io::Error` that names what ran out (address space,
/// `RLIMIT_AS`, `vm.max_map_count`, the commit limit) and what to raise.
#[cfg(test)]
pub(crate) fn alloc(size: usize) -> io::Result<Stack> {
    let mut s = reserve(size)?;
    s.guard()?;
    s.mark_used();
    Ok(s)
}

/// Like [`alloc`], for a coroutine that is spawned now but may run later: a
/// cold stack if this thread's pool has one, else a warm one, else one from
/// the global pool (a new one is cold). A cold stack stays cold until
/// [`Stack::mark_used`]; [`bind`] trades it for a warm one at the first run.
#[inline]
pub(crate) fn reserve(size: usize) -> io::Result<Stack> {
    let size = round_size(size);
    // The common case, inline: the warm stack of this size that this thread
    // freed last (what `reserve_slow` would take first too).
    let last = POOL.try_with(|p| {
        let mut p = p.try_borrow_mut().ok()?;
        match p.warm.last() {
            Some(&(s, top)) if s == size => {
                p.warm.pop();
                Some(top)
            }
            _ => None,
        }
    });
    if let Ok(Some(top)) = last {
        return Ok(Stack {
            top,
            size,
            cold: false,
            guarded: true,
        });
    }
    reserve_slow(size)
}

/// [`reserve`] past its inline case; `size` is rounded already.
#[inline(never)]
fn reserve_slow(size: usize) -> io::Result<Stack> {
    if size > MAX_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("coroutine stack size {size} bytes is too large (at most 1 TiB)"),
        ));
    }
    let from_pool = POOL.try_with(|p| {
        let mut p = p.try_borrow_mut().ok()?;
        let LocalPool { warm, cold } = &mut *p;
        if let Some(top) = take_local(warm, size) {
            return Some(Ok((top, false)));
        }
        if let Some(top) = take_local(cold, size) {
            return Some(Ok((top, true)));
        }
        if warm.capacity() == 0 {
            warm.reserve_exact(LOCAL_MAX);
            cold.reserve_exact(LOCAL_MAX);
        }
        if let Err(e) = slab::take(size, LOCAL_BATCH, warm, cold) {
            return Some(Err(e));
        }
        take_local(cold, size)
            .map(|top| (top, true))
            .or_else(|| take_local(warm, size).map(|top| (top, false)))
            .map(Ok)
    });
    let (top, cold) = match from_pool {
        Ok(Some(r)) => r?,
        // No usable thread-local pool (thread exiting, or re-entered):
        // go straight to the global pool.
        _ => {
            let (mut warm, mut cold) = (Vec::with_capacity(1), Vec::with_capacity(1));
            slab::take(size, 1, &mut warm, &mut cold)?;
            match (warm.pop(), cold.pop()) {
                (Some((_, top)), _) => (top, false),
                (None, Some((_, top))) => (top, true),
                (None, None) => unreachable!("slab::take returns a stack or an error"),
            }
        }
    };
    Ok(Stack::from_pool(size, top, cold))
}

/// The stack a coroutine reserved with [`reserve`] is about to be used: if
/// it is cold and this thread's pool holds a warm stack of the same size,
/// returns that one and puts the cold one back into the pool (untouched, it
/// costs no memory there); if the thread's pool has none, it first takes up
/// to [`LOCAL_BATCH`] warm ones from the global pool (never a clean or new
/// one). Else returns `stack`, with its guard installed if it had none yet
/// (`slab::take`). Either way the result is marked used. Costs nothing when
/// `stack` is warm, a look at the top of the pool (and the global lock once
/// per batch when the pool is short) when it is cold.
///
/// # Errors
/// If the guard cannot be installed (the kernel is out of memory for page
/// tables): `stack` goes back to the pool, still without its guard.
pub(crate) fn bind(mut stack: Stack) -> io::Result<Stack> {
    if stack.cold {
        let size = stack.size;
        let warm = POOL
            .try_with(|p| {
                let mut p = p.try_borrow_mut().ok()?;
                if let Some(top) = take_local(&mut p.warm, size) {
                    return Some(top);
                }
                slab::take_warm(size, LOCAL_BATCH, &mut p.warm);
                take_local(&mut p.warm, size)
            })
            .ok()
            .flatten();
        if let Some(top) = warm {
            // Back into the pool (`release`), after the borrow above ended.
            drop(stack);
            stack = Stack {
                top,
                size,
                cold: false,
                guarded: true,
            };
        }
    }
    stack.guard()?;
    stack.mark_used();
    Ok(stack)
}

/// Pops the most recently freed stack of `size` from a local pool.
#[inline]
fn take_local(slots: &mut Vec<(usize, usize)>, size: usize) -> Option<usize> {
    match slots.last() {
        Some(&(s, top)) if s == size => {
            slots.pop();
            Some(top)
        }
        Some(_) => {
            let i = slots.iter().rposition(|&(s, _)| s == size)?;
            Some(slots.remove(i).1)
        }
        None => None,
    }
}

/// Gives a stack back to the calling thread's pool (the same as dropping it).
pub(crate) fn free(stack: Stack) {
    drop(stack);
}

/// Puts a free stack into this thread's pool, spilling to the global pool.
#[inline(never)]
fn release(size: usize, top: usize, cold: bool) {
    let kept = POOL.try_with(|p| {
        let Ok(mut p) = p.try_borrow_mut() else {
            return false;
        };
        let slots = if cold { &mut p.cold } else { &mut p.warm };
        if slots.len() >= LOCAL_MAX {
            slab::give(slots.drain(..LOCAL_BATCH), cold);
        }
        if slots.capacity() == 0 {
            slots.reserve_exact(LOCAL_MAX);
        }
        slots.push((size, top));
        true
    });
    if kept != Ok(true) {
        slab::give(std::iter::once((size, top)), cold);
    }
}

/// Gives back the memory of free stacks that stayed unused in the global pool
/// for a while (one second). Cheap when there is nothing to do: an idle
/// worker calls it before it blocks, and bounds its sleep by the returned
/// delay (time until the next free stack is old enough; `None`: nothing
/// left to give back), so memory returns after a burst without periodic
/// wake-ups once everything is given back.
#[inline]
pub(crate) fn scavenge() -> Option<std::time::Duration> {
    slab::scavenge()
}

/// Keeps `stack` out of every pool: its memory is never reused. Test helper.
#[cfg(test)]
fn leak(stack: Stack) {
    let _ = std::mem::ManuallyDrop::new(stack);
}

/// Flushes this thread's pool into the global pool. Test helper.
#[cfg(test)]
fn flush_local() {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        slab::give(p.warm.drain(..), false);
        slab::give(p.cold.drain(..), true);
    });
}
