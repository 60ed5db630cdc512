//! Coroutine stacks.
//!
//! This first version hands out corosensei's `DefaultStack` (one mmap and one
//! guard page per stack) through a small per-thread pool, so that spawn and
//! exit cost no syscall in the steady state. The guarded slab allocator
//! (design brief, decision 5) replaces the internals behind the same API:
//!
//! - [`alloc`] takes a stack of at least `size` usable bytes from the calling
//!   thread's pool, or maps a new one; failure is an `io::Error` that says what
//!   ran out;
//! - [`free`] gives a stack back to the calling thread's pool;
//! - [`worker_init`] runs once on each worker thread before it resumes any
//!   coroutine; [`set_running`] is called by the worker before every resume
//!   (and with `None` after it) so that a fault handler can name the coroutine.

use std::cell::RefCell;
use std::io;

use corosensei::stack::{DefaultStack, StackPointer};

/// How many free stacks one thread keeps for reuse.
const POOL_MAX: usize = 1024;

/// A coroutine stack with a guard page below it.
pub(crate) struct Stack {
    inner: DefaultStack,
    size: usize,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack").field("size", &self.size).finish()
    }
}

impl Stack {
    /// Usable size in bytes (excluding the guard).
    pub(crate) fn size(&self) -> usize {
        self.size
    }
}

// SAFETY: delegates to DefaultStack, which upholds the trait's contract (a
// guard page below `limit`, at least MIN_STACK_SIZE usable bytes, aligned ends).
unsafe impl corosensei::stack::Stack for Stack {
    #[inline]
    fn base(&self) -> StackPointer {
        self.inner.base()
    }
    #[inline]
    fn limit(&self) -> StackPointer {
        self.inner.limit()
    }
}

thread_local! {
    static POOL: RefCell<Vec<Stack>> = const { RefCell::new(Vec::new()) };
}

/// Rounds a requested size up to whole pages, with a sane minimum.
pub(crate) fn round_size(size: usize) -> usize {
    let page = 4096;
    size.max(16 * 1024).div_ceil(page) * page
}

/// Takes a stack with `size` usable bytes from this thread's pool or maps one.
pub(crate) fn alloc(size: usize) -> io::Result<Stack> {
    let size = round_size(size);
    let pooled = POOL
        .try_with(|p| {
            let mut p = p.borrow_mut();
            let i = p.iter().rposition(|s| s.size == size)?;
            Some(p.swap_remove(i))
        })
        .ok()
        .flatten();
    if let Some(s) = pooled {
        return Ok(s);
    }
    match DefaultStack::new(size) {
        Ok(inner) => Ok(Stack { inner, size }),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!(
                "gopark: cannot allocate a {} KiB coroutine stack: {e} \
                 (raise vm.max_map_count or the address-space limit, or use smaller stacks)",
                size / 1024
            ),
        )),
    }
}

/// Returns a stack to this thread's pool (or unmaps it when the pool is full).
pub(crate) fn free(stack: Stack) {
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push(stack);
        }
    });
}

/// Per-worker-thread set-up before the first resume (a no-op in this version).
pub(crate) fn worker_init() {}

/// What a fault handler needs to know about the coroutine a worker runs.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)] // read by the overflow handler of the slab allocator
pub(crate) struct RunningInfo {
    /// Coroutine id.
    pub id: u64,
    /// Usable stack size in bytes.
    pub stack_size: usize,
    /// Lowest address of the stack mapping including its guard.
    pub limit: usize,
    /// Pointer and length of the coroutine's name (valid while it runs).
    pub name: Option<(*const u8, usize)>,
}

/// Records which coroutine this worker is about to run (a no-op in this version).
#[inline]
pub(crate) fn set_running(_info: Option<RunningInfo>) {}
