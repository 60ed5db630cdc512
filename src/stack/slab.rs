//! Slabs: large anonymous mappings carved into guarded stack slots, and the
//! global pool of free stacks shared by all threads.
//!
//! A slab is one `mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|
//! MAP_NORESERVE|MAP_STACK)`: address space only, committed page by page when
//! a coroutine touches it. Slabs of a size class grow geometrically (16 slots,
//! then twice the previous slab, up to 1 GiB); when the kernel refuses a slab
//! (`RLIMIT_AS`, `RLIMIT_DATA`, commit limit) a smaller one is tried before
//! giving up. Slabs are never unmapped.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Size of the guard region below every stack. It costs no memory (guard
/// markers or PROT_NONE pages), and is large enough that a big frame cannot
/// jump over it into the stack below.
pub(crate) const GUARD_SIZE: usize = 64 * 1024;

/// Free stacks per size class the global pool keeps without giving their
/// memory back; beyond this the older half is `MADV_DONTNEED`ed. A freed
/// stack typically has one or two touched pages, so this bounds the memory
/// kept for reuse at roughly 32-64 MiB per size class right after a burst
/// of coroutines ends; idle workers give it back after [`SCAVENGE_AFTER`].
/// A trimmed stack costs a page fault when it is used again (about 1-2 us
/// here), but with trims batched ([`discard`]) the smaller pool measured no
/// slower than one of 32k: skynet on two workers 441 ms a warm tree either
/// way at 200 instead of 274 MiB peak RSS, and bursts of 12-30k coroutines
/// alive at once as fast or faster (3 interleaved rounds each).
#[cfg(not(test))]
pub(super) const DIRTY_MAX: usize = 8 * 1024;
/// Smaller in unit tests, so that trimming is exercised without tens of
/// thousands of stacks (and, with mprotect guards, mappings).
#[cfg(test)]
pub(super) const DIRTY_MAX: usize = 1024;

/// A free stack that stayed unused in the global pool this long has its
/// memory given back (checked when stacks enter the pool, and by
/// [`scavenge`]).
pub(super) const SCAVENGE_AFTER: Duration = Duration::from_secs(1);

/// Slots in the first slab of a size class.
const FIRST_SLAB_SLOTS: usize = 16;

/// Largest slab mapping (slabs double up to this).
const SLAB_MAX_BYTES: usize = 1 << 30;

/// `madvise` advice installing guard markers (Linux 6.13+; not yet in libc).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Guard mode not detected yet.
const GUARD_UNKNOWN: u8 = 0;
/// Guards are installed with `MADV_GUARD_INSTALL`.
const GUARD_MADVISE: u8 = 1;
/// The kernel refused `MADV_GUARD_INSTALL`: guards are PROT_NONE pages.
const GUARD_MPROTECT: u8 = 2;

static GUARD_MODE: AtomicU8 = AtomicU8::new(GUARD_UNKNOWN);

/// Slabs mapped so far (statistics).
pub(super) static SLABS: AtomicUsize = AtomicUsize::new(0);
/// In a free stack's `top` as the pools keep it: its guard is not installed
/// yet (bit 0; a top is page aligned). Only cold stacks carry it: the first
/// use of a stack installs its guard ([`install_guard`], called by
/// `super::bind`), and a stack whose guard is in place never loses it.
pub(super) const UNGUARDED: usize = 1;

/// Stacks carved so far (statistics).
pub(super) static CARVED: AtomicUsize = AtomicUsize::new(0);

/// The slabs and free stacks of one stack size.
struct Class {
    /// Usable bytes per stack.
    size: usize,
    /// Free stacks that may still have resident pages, as (top, when freed
    /// in ms since `epoch()`), oldest first: pushes append and `take` pops
    /// the newest, so the order by time holds.
    dirty: Vec<(usize, u64)>,
    /// Free stacks with no resident page: given back to the kernel, or
    /// never touched (those may carry [`UNGUARDED`]).
    clean: Vec<usize>,
    /// Carved slots (their start, guard included) whose guard is not
    /// installed: a failed install gives them back here, and the next carve
    /// takes them first.
    unguarded: Vec<usize>,
    /// Start of the next uncarved slot in the current slab.
    next: usize,
    /// End of the current slab.
    end: usize,
    /// Slots to ask for in the next slab.
    slab_slots: usize,
}

impl Class {
    fn slot_bytes(&self) -> usize {
        self.size + GUARD_SIZE
    }

    /// Carves a slot, mapping a slab if needed; returns its start (where
    /// its guard goes). The guard is not installed: the caller does that
    /// after releasing the lock ([`take`]).
    fn carve(&mut self) -> io::Result<usize> {
        if let Some(start) = self.unguarded.pop() {
            return Ok(start);
        }
        if self.next == self.end {
            self.map_slab()?;
        }
        let start = self.next;
        self.next += self.slot_bytes();
        Ok(start)
    }

    fn map_slab(&mut self) -> io::Result<()> {
        let slot = self.slot_bytes();
        let max_slots = (SLAB_MAX_BYTES / slot).max(1);
        let mut slots = self.slab_slots.clamp(1, max_slots);
        loop {
            let len = slots * slot;
            match map(len) {
                Ok(start) => {
                    SLABS.fetch_add(1, Ordering::Relaxed);
                    self.next = start;
                    self.end = start + len;
                    self.slab_slots = (slots * 2).min(max_slots);
                    return Ok(());
                }
                Err(e) if slots > 1 && e.raw_os_error() == Some(libc::ENOMEM) => slots /= 2,
                Err(e) => {
                    return Err(explain(
                        e,
                        &format!(
                            "map {} KiB of address space for {} KiB coroutine stacks",
                            len / 1024,
                            self.size / 1024
                        ),
                    ))
                }
            }
        }
    }
}

static CLASSES: Mutex<Vec<Class>> = Mutex::new(Vec::new());

/// Whether any class holds a dirty stack: lets [`scavenge`], called at every
/// idle entry of every worker, return at once without the lock or a clock
/// read when there is nothing to age. Written under the [`CLASSES`] lock
/// after every change of a dirty list (`note_dirty`). A reader on another
/// thread may see a stale `false` right after a `give`; it then sleeps
/// without a scavenge timeout, and the stacks are aged at the next idle
/// entry of the thread that gave them (which reads its own store).
static ANY_DIRTY: AtomicBool = AtomicBool::new(false);

/// Re-derives [`ANY_DIRTY`]; call with the lock held, after changing a
/// dirty list.
fn note_dirty(classes: &[Class]) {
    ANY_DIRTY.store(
        classes.iter().any(|c| !c.dirty.is_empty()),
        Ordering::Relaxed,
    );
}

fn lock() -> MutexGuard<'static, Vec<Class>> {
    CLASSES.lock().unwrap_or_else(PoisonError::into_inner)
}

fn class(classes: &mut Vec<Class>, size: usize) -> &mut Class {
    let i = match classes.iter().position(|c| c.size == size) {
        Some(i) => i,
        None => {
            classes.push(Class {
                size,
                dirty: Vec::new(),
                clean: Vec::new(),
                unguarded: Vec::new(),
                next: 0,
                end: 0,
                slab_slots: FIRST_SLAB_SLOTS,
            });
            classes.len() - 1
        }
    };
    &mut classes[i]
}

/// Moves up to `want` free stacks of `size` from the global pool, as
/// `(size, top)`: dirty ones into `warm`, clean ones into `cold`; or carves
/// one new stack into `cold` if the pool has none.
///
/// A new stack's guard is installed here only until the kernel is known to
/// take guard markers (the first install decides), and always in the
/// mprotect mode (whose failure, a full `vm.max_map_count`, is best reported
/// by the spawn). With guard markers it is left to the stack's first use
/// (`super::bind`): its entry carries [`UNGUARDED`]. A burst of spawns
/// reserves far more stacks than start before the burst is over (a skynet
/// tree: ~150k reserved at the peak, ~25k started), and a stack that starts
/// late is usually traded for a warm one, so most reserved stacks never
/// need a guard; each install costs a system call and page-table work (about
/// 1.5 us here), which was a fifth of the first skynet tree's time.
pub(super) fn take(
    size: usize,
    want: usize,
    warm: &mut Vec<(usize, usize)>,
    cold: &mut Vec<(usize, usize)>,
) -> io::Result<()> {
    let fresh = {
        let mut classes = lock();
        let c = class(&mut classes, size);
        let mut n = 0;
        while n < want.max(1) {
            if let Some((top, _)) = c.dirty.pop() {
                warm.push((size, top));
            } else if let Some(top) = c.clean.pop() {
                cold.push((size, top));
            } else {
                break;
            }
            n += 1;
        }
        let fresh = if n == 0 { Some(c.carve()?) } else { None };
        note_dirty(&classes);
        fresh
    };
    if let Some(start) = fresh {
        CARVED.fetch_add(1, Ordering::Relaxed);
        let top = start + size + GUARD_SIZE;
        if GUARD_MODE.load(Ordering::Relaxed) == GUARD_MADVISE {
            cold.push((size, top | UNGUARDED));
            return Ok(());
        }
        // Outside the lock: a syscall, which under the lock made two
        // workers spawning onto fresh stacks queue behind each other (the
        // first tree of skynet on 2 workers: half of its futex calls were
        // this lock).
        if let Err(e) = install_guard(start, size) {
            class(&mut lock(), size).unguarded.push(start);
            return Err(e);
        }
        cold.push((size, top));
    }
    Ok(())
}

/// Moves up to `want` dirty free stacks of `size` (no clean ones, no new
/// ones) from the global pool into `warm`, as `(size, top)`.
pub(super) fn take_warm(size: usize, want: usize, warm: &mut Vec<(usize, usize)>) {
    let mut classes = lock();
    let c = class(&mut classes, size);
    let n = c.dirty.len().min(want);
    let at = c.dirty.len() - n;
    warm.extend(c.dirty.drain(at..).map(|(top, _)| (size, top)));
}

/// Puts free stacks `(size, top)` into the global pool: `cold` ones (no
/// page touched since they were carved or trimmed) with the clean stacks,
/// the others with the dirty ones. When a class holds more than
/// [`DIRTY_MAX`] dirty stacks, the older half has its memory given back; so
/// have stacks that stayed unused for [`SCAVENGE_AFTER`].
pub(super) fn give(stacks: impl Iterator<Item = (usize, usize)>, cold: bool) {
    let now = now_ms();
    let mut trims: Vec<(usize, Vec<usize>)> = Vec::new();
    {
        let mut classes = lock();
        for (size, top) in stacks {
            let c = class(&mut classes, size);
            if cold {
                c.clean.push(top);
                continue;
            }
            c.dirty.push((top, now));
            if c.dirty.len() > DIRTY_MAX {
                let old = c.dirty.drain(..DIRTY_MAX / 2).map(|d| d.0).collect();
                trims.push((size, old));
            }
        }
        for c in classes.iter_mut() {
            collect_idle(c, now, &mut trims);
        }
        note_dirty(&classes);
    }
    trim_and_keep(trims);
}

/// Gives back the memory of free stacks that stayed unused in the global pool
/// for [`SCAVENGE_AFTER`] (all size classes). Cheap when there is nothing to
/// do; meant for a worker that is about to go idle. Returns how long until
/// the next dirty stack becomes old enough, `None` if none is left.
#[inline]
pub(super) fn scavenge() -> Option<Duration> {
    // The common case inline (a worker calls this before every sleep): one
    // load, no call.
    if !ANY_DIRTY.load(Ordering::Relaxed) {
        return None;
    }
    scavenge_dirty()
}

/// [`scavenge`] when some free stack is dirty.
#[inline(never)]
fn scavenge_dirty() -> Option<Duration> {
    let now = now_ms();
    let mut trims = Vec::new();
    let oldest_left = {
        let mut classes = lock();
        for c in classes.iter_mut() {
            collect_idle(c, now, &mut trims);
        }
        note_dirty(&classes);
        classes
            .iter()
            .filter_map(|c| c.dirty.first().map(|d| d.1))
            .min()
    };
    trim_and_keep(trims);
    oldest_left.map(|t| {
        Duration::from_millis((t + SCAVENGE_AFTER.as_millis() as u64 + 1).saturating_sub(now))
    })
}

/// Moves the stacks of `c` freed before `now - SCAVENGE_AFTER` into `trims`.
fn collect_idle(c: &mut Class, now: u64, trims: &mut Vec<(usize, Vec<usize>)>) {
    let cutoff = now.saturating_sub(SCAVENGE_AFTER.as_millis() as u64);
    if c.dirty.first().is_some_and(|d| d.1 < cutoff) {
        let n = c.dirty.partition_point(|d| d.1 < cutoff);
        trims.push((c.size, c.dirty.drain(..n).map(|d| d.0).collect()));
    }
}

/// Trims the collected stacks (without the lock; meanwhile they are in no
/// pool, which at worst makes a concurrent `take` carve a new one) and files
/// them as clean.
fn trim_and_keep(mut trims: Vec<(usize, Vec<usize>)>) {
    if trims.is_empty() {
        return;
    }
    for (size, tops) in &mut trims {
        trim(*size, tops);
    }
    let mut classes = lock();
    for (size, tops) in trims {
        class(&mut classes, size).clean.extend(tops);
    }
}

/// Milliseconds since the first call (a coarse clock for pool ageing).
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Gives the memory of free stacks back to the kernel (`MADV_DONTNEED`),
/// one range per run of adjacent slots. Guards stay installed: guard markers
/// survive `MADV_DONTNEED`, and PROT_NONE pages are never populated.
pub(super) fn trim(size: usize, tops: &mut [usize]) {
    tops.sort_unstable();
    let slot = size + GUARD_SIZE;
    let mut runs: Vec<libc::iovec> = Vec::new();
    for &top in tops.iter() {
        let start = top - slot;
        match runs.last_mut() {
            Some(r) if r.iov_base as usize + r.iov_len == start => r.iov_len += slot,
            _ => runs.push(libc::iovec {
                iov_base: start as *mut libc::c_void,
                iov_len: slot,
            }),
        }
    }
    discard(&runs);
}

/// How [`discard`] reaches the kernel: not tried yet, one `process_madvise`
/// per batch of ranges, or one `madvise` per range.
static DISCARD_MODE: AtomicU8 = AtomicU8::new(DISCARD_UNKNOWN);
const DISCARD_UNKNOWN: u8 = 0;
const DISCARD_BATCHED: u8 = 1;
const DISCARD_SINGLE: u8 = 2;

/// `PIDFD_SELF_THREAD` (Linux 6.15+; not yet in libc): a pidfd that names
/// the calling thread, so its process's memory, without opening one (an
/// opened pidfd would name the parent in a forked child).
const PIDFD_SELF_THREAD: libc::c_int = -10000;

/// Ranges per `process_madvise` call (the kernel's `UIO_MAXIOV`).
const DISCARD_BATCH: usize = 1024;

/// `MADV_DONTNEED`s the ranges `runs`. Each `madvise` that unmaps
/// resident pages flushes them from the TLBs of every CPU this process runs
/// on, with an interrupt to each of them: on this class of VM about 14 us
/// per call while another worker runs, so a trim of 16k scattered stacks
/// took 240 ms. One `process_madvise` (Linux 6.13+ for any advice on the
/// calling process) takes up to 1,024 ranges and flushes once per batch:
/// 3.8 ms for the same trim. Kernels that refuse it get one `madvise` per
/// range.
fn discard(runs: &[libc::iovec]) {
    for batch in runs.chunks(DISCARD_BATCH) {
        if DISCARD_MODE.load(Ordering::Relaxed) == DISCARD_SINGLE || !discard_batch(batch) {
            for r in batch {
                dontneed(r);
            }
        }
    }
}

/// One `process_madvise(MADV_DONTNEED)` over `batch`; false if the kernel
/// refused it (then it is not tried again) or did only part of it.
fn discard_batch(batch: &[libc::iovec]) -> bool {
    let total: usize = batch.iter().map(|v| v.iov_len).sum();
    // SAFETY: every range covers whole slots of free stacks owned by the
    // caller (in no pool, used by no coroutine), as for `dontneed`; the
    // pidfd names this process, and `batch` is a valid array of
    // `batch.len()` entries that the kernel only reads.
    let r = unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            PIDFD_SELF_THREAD,
            batch.as_ptr(),
            batch.len(),
            libc::MADV_DONTNEED,
            0,
        )
    };
    if r >= 0 && r as usize == total {
        DISCARD_MODE.store(DISCARD_BATCHED, Ordering::Relaxed);
        return true;
    }
    if r < 0 && DISCARD_MODE.load(Ordering::Relaxed) == DISCARD_UNKNOWN {
        // ENOSYS, EBADF (no PIDFD_SELF), EINVAL or EPERM (advice not
        // allowed): an older kernel. A partial result falls back for this
        // batch only (`MADV_DONTNEED` twice is harmless).
        DISCARD_MODE.store(DISCARD_SINGLE, Ordering::Relaxed);
    }
    false
}

/// Which way trims reach the kernel: "process_madvise", "madvise" or
/// "unknown" (no trim yet).
#[cfg(test)]
pub(super) fn discard_mode() -> &'static str {
    match DISCARD_MODE.load(Ordering::Relaxed) {
        DISCARD_BATCHED => "process_madvise",
        DISCARD_SINGLE => "madvise",
        _ => "unknown",
    }
}

/// Forces one `madvise` per range, as on a kernel without `process_madvise`.
#[cfg(test)]
pub(super) fn force_single_discards() {
    DISCARD_MODE.store(DISCARD_SINGLE, Ordering::Relaxed);
}

fn dontneed(range: &libc::iovec) {
    // SAFETY: the range covers whole slots of free stacks owned by the
    // caller (in no pool, used by no coroutine); discarding their contents
    // affects nothing live.
    let r = unsafe { libc::madvise(range.iov_base, range.iov_len, libc::MADV_DONTNEED) };
    debug_assert_eq!(
        r,
        0,
        "madvise(MADV_DONTNEED): {}",
        io::Error::last_os_error()
    );
}

/// Maps a slab of `len` bytes; returns its start.
fn map(len: usize) -> io::Result<usize> {
    // SAFETY: an anonymous mapping at an address of the kernel's choosing
    // cannot alias any existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // Transparent huge pages would commit 2 MiB where a stack touches 4 KiB.
    // (MAP_STACK already implies this on Linux 6.7+.) Failure is harmless.
    // SAFETY: the range is the mapping just created, owned by no one else.
    unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) };
    super::name_mapping(p as usize, len, c"gopark stack");
    Ok(p as usize)
}

/// Installs the guard region `[start, start + GUARD_SIZE)` of a slot of a
/// `size` class that no code has run on yet (a new one, or one whose guard
/// install was left to its first use).
pub(super) fn install_guard(start: usize, size: usize) -> io::Result<()> {
    #[cfg(test)]
    if lock_failing().contains(&size) {
        return Err(explain(
            io::Error::from_raw_os_error(libc::ENOMEM),
            "install a coroutine stack guard",
        ));
    }
    #[cfg(not(test))]
    let _ = size;
    let addr = start as *mut libc::c_void;
    if GUARD_MODE.load(Ordering::Relaxed) != GUARD_MPROTECT {
        // SAFETY: the range lies in a slab we mapped and is the guard of a
        // slot that its owner (the pool, or a cold `Stack`) has run no code
        // on; nothing reads or writes it.
        let r = unsafe { libc::madvise(addr, GUARD_SIZE, MADV_GUARD_INSTALL) };
        if r == 0 {
            GUARD_MODE.store(GUARD_MADVISE, Ordering::Relaxed);
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(explain(e, "install a coroutine stack guard"));
        }
        // Kernel older than 6.13 (or a locked mapping): PROT_NONE from now on.
        GUARD_MODE.store(GUARD_MPROTECT, Ordering::Relaxed);
    }
    // SAFETY: as above; the range is a whole number of pages of our slab.
    let r = unsafe { libc::mprotect(addr, GUARD_SIZE, libc::PROT_NONE) };
    if r != 0 {
        return Err(explain(
            io::Error::last_os_error(),
            "install a coroutine stack guard page",
        ));
    }
    Ok(())
}

/// Tests: guard installs of slots of these size classes fail (ENOMEM), so
/// that the error path of a stack's first use can be driven.
#[cfg(test)]
static FAIL_GUARD_OF: Mutex<Vec<usize>> = Mutex::new(Vec::new());

#[cfg(test)]
fn lock_failing() -> MutexGuard<'static, Vec<usize>> {
    FAIL_GUARD_OF.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Tests: makes guard installs for `size` fail (`on`) or work again.
#[cfg(test)]
pub(crate) fn fail_guards_of(size: usize, on: bool) {
    let mut v = lock_failing();
    v.retain(|&s| s != size);
    if on {
        v.push(size);
    }
}

/// Which guard mechanism is in use: "madvise", "mprotect" or "unknown".
#[cfg(test)]
pub(super) fn guard_mode() -> &'static str {
    match GUARD_MODE.load(Ordering::Relaxed) {
        GUARD_MADVISE => "madvise",
        GUARD_MPROTECT => "mprotect",
        _ => "unknown",
    }
}

/// Forces the mprotect fallback, as on a kernel without guard markers.
#[cfg(test)]
pub(super) fn force_mprotect() {
    GUARD_MODE.store(GUARD_MPROTECT, Ordering::Relaxed);
}

/// Wraps an OS error with what gopark tried, what ran out and what to raise.
fn explain(err: io::Error, what: &str) -> io::Error {
    let hint = if err.raw_os_error() == Some(libc::ENOMEM) {
        what_ran_out()
    } else {
        String::new()
    };
    io::Error::new(err.kind(), format!("cannot {what}: {err}{hint}"))
}

/// Diagnoses an ENOMEM from mmap/madvise/mprotect.
fn what_ran_out() -> String {
    let mut limits = Vec::new();
    for (res, name, flag) in [
        (libc::RLIMIT_AS, "RLIMIT_AS", "ulimit -v"),
        (libc::RLIMIT_DATA, "RLIMIT_DATA", "ulimit -d"),
    ] {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit into the valid `rl`.
        let ok = unsafe { libc::getrlimit(res, &mut rl) } == 0;
        if ok && rl.rlim_cur != libc::RLIM_INFINITY {
            limits.push(format!("{name} (`{flag}`) = {} MiB", rl.rlim_cur >> 20));
        }
    }
    if !limits.is_empty() {
        return format!(
            "; the address-space limit ran out ({}): raise it, or use fewer or smaller coroutine stacks",
            limits.join(", ")
        );
    }
    let maps = std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .unwrap_or(0);
    let max_maps = read_sysctl("/proc/sys/vm/max_map_count");
    if let Some(max) = max_maps {
        if maps + 64 >= max {
            return format!(
                "; the process ran out of memory mappings ({maps} of vm.max_map_count = {max}): \
                 raise vm.max_map_count (sysctl -w vm.max_map_count=...)"
            );
        }
    }
    if read_sysctl("/proc/sys/vm/overcommit_memory") == Some(2) {
        return "; the kernel's commit limit ran out (vm.overcommit_memory = 2): raise \
                vm.overcommit_ratio or vm.overcommit_kbytes, add swap, or use fewer or smaller \
                coroutine stacks"
            .to_string();
    }
    "; virtual memory ran out: use fewer or smaller coroutine stacks".to_string()
}

fn read_sysctl(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
