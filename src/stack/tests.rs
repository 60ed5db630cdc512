//! Unit tests of the stack allocator and the overflow handler. Tests that
//! fault, measure the whole process or lower its limits re-run this test
//! binary as a child process (`child()`, from tests/common).

use std::collections::HashSet;
use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;

use corosensei::stack::Stack as _;
use corosensei::{Coroutine, CoroutineResult};

use super::*;

use crate::test_common as common;
use common::{in_child, map_count, status_kib, stderr};

/// Re-runs test `name` (in this module) alone in a child process.
fn child(name: &str) -> std::process::Output {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    common::child_at(&format!("{module}::{name}"), name)
}

/// Recurses until the stack runs out; each frame holds 1 KiB.
#[allow(unconditional_recursion)]
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let buf = black_box([depth as u8; 1024]);
    black_box(recurse(depth + 1)) + u64::from(buf[7])
}

/// Uses roughly `bytes` of stack, then returns.
#[inline(never)]
fn use_stack(bytes: usize) -> u8 {
    let buf = black_box([1u8; 1024]);
    if bytes <= 1024 {
        return buf[3];
    }
    black_box(use_stack(bytes - 1024)).wrapping_add(buf[5])
}

#[test]
fn round_size_rounds_to_pages() {
    let page = page_size();
    assert_eq!(round_size(0), MIN_SIZE);
    assert_eq!(round_size(1), MIN_SIZE);
    assert_eq!(round_size(MIN_SIZE + 1), MIN_SIZE + page);
    assert_eq!(round_size(256 * 1024), 256 * 1024);
    assert_eq!(round_size(usize::MAX) % page, 0);
    assert!(alloc(usize::MAX).is_err());
}

#[test]
fn layout_and_alignment() {
    let s = alloc(100 * 1000).unwrap();
    assert_eq!(s.size(), round_size(100 * 1000));
    let (base, limit) = (s.base().get(), s.limit().get());
    assert_eq!(base % 16, 0);
    assert_eq!(limit % page_size(), 0);
    assert_eq!(base - limit, s.size() + GUARD_SIZE);
    // The usable part is writable, top to bottom.
    // SAFETY: [limit + GUARD_SIZE, base) is this stack's usable memory.
    unsafe {
        let lo = (limit + GUARD_SIZE) as *mut u8;
        lo.write_volatile(1);
        ((base - 1) as *mut u8).write_volatile(2);
        assert_eq!(lo.read_volatile(), 1);
    }
    println!("{s:?}");
}

#[test]
fn free_then_alloc_reuses_the_stack() {
    let a = alloc(32 * 1024).unwrap();
    let top = a.base().get();
    free(a);
    let b = alloc(32 * 1024).unwrap();
    assert_eq!(b.base().get(), top, "LIFO pool hit");
    // A different size never gets that stack.
    let c = alloc(48 * 1024).unwrap();
    assert_ne!(c.base().get(), top);
    assert_eq!(c.size(), 48 * 1024);
}

#[test]
fn reserve_prefers_cold_and_bind_trades_it_for_a_warm_one() {
    let size = 92 * 1024; // a size class no other test uses
                          // A new stack is cold, and stays so until marked used.
    let r1 = reserve(size).unwrap();
    assert!(r1.is_cold());
    let cold_top = r1.base().get();
    // A stack something ran on (alloc marks it used) is warm when freed.
    let w = alloc(size).unwrap();
    assert!(!w.is_cold());
    let warm_top = w.base().get();
    // SAFETY: the top byte of a live stack.
    unsafe { ((warm_top - 1) as *mut u8).write_volatile(0xCD) };
    free(w);
    // The first run of r1's coroutine gets the warm stack; r1's goes back,
    // still cold.
    let b = bind(r1).unwrap();
    assert_eq!(b.base().get(), warm_top, "traded for the warm stack");
    assert!(!b.is_cold());
    // The next reservation takes the cold one first.
    let r2 = reserve(size).unwrap();
    assert!(r2.is_cold());
    assert_eq!(r2.base().get(), cold_top);
    // With no warm stack in the pool, bind keeps what it was given.
    let b2 = bind(r2).unwrap();
    assert_eq!(b2.base().get(), cold_top);
    assert!(!b2.is_cold(), "bound means used");
    // A warm reservation is returned as it is.
    free(b);
    let r3 = reserve(size).unwrap();
    assert_eq!(r3.base().get(), warm_top, "no cold one left: the warm one");
    assert!(!r3.is_cold());
    assert_eq!(bind(r3).unwrap().base().get(), warm_top);
    drop(b2);
}

#[test]
fn many_alive_are_distinct_and_disjoint() {
    let stacks: Vec<Stack> = (0..500).map(|_| alloc(20 * 1024).unwrap()).collect();
    let mut ranges: Vec<(usize, usize)> = stacks
        .iter()
        .map(|s| (s.limit().get(), s.base().get()))
        .collect();
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        assert!(w[0].1 <= w[1].0, "overlap: {w:?}");
    }
    drop(stacks);
    // All back in pools: the same addresses come back out.
    let again: HashSet<usize> = (0..500)
        .map(|_| {
            let s = alloc(20 * 1024).unwrap();
            let top = s.base().get();
            leak(s);
            top
        })
        .collect();
    let before: HashSet<usize> = ranges.iter().map(|r| r.1).collect();
    assert_eq!(again, before);
}

#[test]
fn runs_corosensei_coroutines_and_reuses_stacks() {
    let mut stack = alloc(64 * 1024).unwrap();
    let top = stack.base().get();
    for round in 0..3u8 {
        let mut co = Coroutine::with_stack(stack, move |y, x: u32| {
            // Leave a pattern behind; the next coroutine must not care.
            let used = use_stack(24 * 1024);
            let x = y.suspend(x + u32::from(used) + u32::from(round));
            x * 2
        });
        match co.resume(1) {
            CoroutineResult::Yield(v) => {
                assert_eq!(v, 1 + u32::from(use_stack(24 * 1024)) + u32::from(round))
            }
            CoroutineResult::Return(_) => panic!("returned early"),
        }
        match co.resume(21) {
            CoroutineResult::Return(v) => assert_eq!(v, 42),
            CoroutineResult::Yield(_) => panic!("yielded twice"),
        }
        stack = co.into_stack();
        assert_eq!(stack.base().get(), top);
        free(stack);
        stack = alloc(64 * 1024).unwrap();
        assert_eq!(stack.base().get(), top, "pool hit");
    }
}

#[test]
fn stacks_are_send_and_drop_anywhere() {
    let size = 88 * 1024; // a size class no other test uses
    let tops: HashSet<usize> = std::thread::spawn(move || {
        let v: Vec<Stack> = (0..10).map(|_| alloc(size).unwrap()).collect();
        let tops = v.iter().map(|s| s.base().get()).collect();
        // Dropped on yet another thread, whose pool goes global at exit.
        std::thread::spawn(move || drop(v)).join().unwrap();
        tops
    })
    .join()
    .unwrap();
    let s = alloc(size).unwrap();
    assert!(
        tops.contains(&s.base().get()),
        "reused from the global pool"
    );
}

#[test]
fn spill_and_trim_give_memory_back_and_keep_guards() {
    let size = 72 * 1024; // a size class no other test uses
    let n = LOCAL_MAX + slab::DIRTY_MAX + 2 * LOCAL_BATCH;
    let stacks: Vec<Stack> = (0..n).map(|_| alloc(size).unwrap()).collect();
    for s in &stacks {
        // SAFETY: the lowest usable byte and the top byte of a live stack.
        unsafe {
            ((s.limit().get() + GUARD_SIZE) as *mut u8).write_volatile(0xAB);
            ((s.base().get() - 1) as *mut u8).write_volatile(0xCD);
        }
    }
    let tops: Vec<usize> = stacks.iter().map(|s| s.base().get()).collect();
    drop(stacks); // local pool fills, spills; the global class overflows and trims
    flush_local();
    let mut zeroed = 0;
    for &top in &tops {
        // SAFETY: the memory stays mapped for the life of the process; these
        // stacks are free, and nothing else in this test binary uses this size.
        let (lo, hi) = unsafe {
            (
                ((top - size) as *const u8).read_volatile(),
                ((top - 1) as *const u8).read_volatile(),
            )
        };
        match (lo, hi) {
            (0, 0) => zeroed += 1,
            (0xAB, 0xCD) => {}
            other => panic!("unexpected contents {other:?}"),
        }
    }
    assert!(zeroed >= n - slab::DIRTY_MAX, "zeroed {zeroed} of {n}");
}

/// Trims `size` stacks, every third one kept (so runs of two adjacent
/// slots, more runs than one batch of the kernel call takes), and checks
/// that exactly the trimmed ones lost their contents.
fn trim_discards_exactly_the_trimmed(size: usize) {
    let stacks: Vec<Stack> = (0..3 * 1200).map(|_| alloc(size).unwrap()).collect();
    for s in &stacks {
        // SAFETY: the lowest usable byte and the top byte of a live stack.
        unsafe {
            ((s.limit().get() + GUARD_SIZE) as *mut u8).write_volatile(0xAB);
            ((s.base().get() - 1) as *mut u8).write_volatile(0xCD);
        }
    }
    let mut tops: Vec<usize> = stacks.iter().map(|s| s.base().get()).collect();
    tops.sort_unstable();
    let (gone, kept): (Vec<_>, Vec<_>) = tops
        .iter()
        .copied()
        .enumerate()
        .partition(|(i, _)| i % 3 != 2);
    let mut trimmed: Vec<usize> = gone.iter().map(|g| g.1).collect();
    // Owned by this test and running nothing: what `trim` asks of them.
    slab::trim(size, &mut trimmed);
    let bytes = |top: usize| {
        // SAFETY: the stacks are alive, owned by this test.
        unsafe {
            (
                ((top - size) as *const u8).read_volatile(),
                ((top - 1) as *const u8).read_volatile(),
            )
        }
    };
    assert!(gone.iter().all(|&(_, t)| bytes(t) == (0, 0)), "trimmed");
    assert!(
        kept.iter().all(|&(_, t)| bytes(t) == (0xAB, 0xCD)),
        "neighbours untouched"
    );
}

/// On a kernel whose `process_madvise` takes `MADV_DONTNEED` for the
/// calling process by `PIDFD_SELF` (6.15+), trims are batched.
#[test]
fn trim_discards_exactly_the_trimmed_stacks() {
    trim_discards_exactly_the_trimmed(96 * 1024); // a size class no other test uses
                                                  // SAFETY: `utsname` is arrays of bytes, for which zero is valid.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname writes into the valid `u`.
    assert_eq!(unsafe { libc::uname(&mut u) }, 0);
    // SAFETY: uname NUL-terminates `release`.
    let release = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) };
    let mut v = release.to_str().unwrap().split(['.', '-']);
    let (major, minor): (u32, u32) = (
        v.next().unwrap().parse().unwrap(),
        v.next().unwrap().parse().unwrap(),
    );
    if (major, minor) >= (6, 15) {
        assert_eq!(slab::discard_mode(), "process_madvise");
    }
}

/// The same with one `madvise` per run, as on an older kernel (a child
/// process: the mode is process-wide).
#[test]
fn trim_discards_exactly_the_trimmed_stacks_one_call_per_run() {
    if in_child("trim_discards_exactly_the_trimmed_stacks_one_call_per_run") {
        slab::force_single_discards();
        trim_discards_exactly_the_trimmed(96 * 1024);
        assert_eq!(slab::discard_mode(), "madvise");
        println!("child ok");
        return;
    }
    let out = child("trim_discards_exactly_the_trimmed_stacks_one_call_per_run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(common::stdout(&out).contains("child ok"));
}

#[test]
fn idle_free_stacks_are_scavenged() {
    let size = 76 * 1024; // a size class no other test uses
    let stacks: Vec<Stack> = (0..LOCAL_MAX + 2 * LOCAL_BATCH)
        .map(|_| alloc(size).unwrap())
        .collect();
    for s in &stacks {
        // SAFETY: the top byte of a live stack.
        unsafe { ((s.base().get() - 1) as *mut u8).write_volatile(0xCD) };
    }
    let tops: Vec<usize> = stacks.iter().map(|s| s.base().get()).collect();
    drop(stacks);
    flush_local();
    let top_byte = |top: usize| {
        // SAFETY: slabs stay mapped; these free stacks are used by no one
        // (nothing else in this test binary uses this size).
        unsafe { ((top - 1) as *const u8).read_volatile() }
    };
    assert!(
        tops.iter().all(|&t| top_byte(t) == 0xCD),
        "fewer than DIRTY_MAX: kept"
    );
    std::thread::sleep(slab::SCAVENGE_AFTER + std::time::Duration::from_millis(100));
    scavenge();
    assert!(
        tops.iter().all(|&t| top_byte(t) == 0),
        "idle stacks were given back"
    );
}

#[test]
fn guard_faults_after_trim() {
    if in_child("guard_faults_after_trim") {
        let size = 16 * 1024;
        let s = alloc(size).unwrap();
        let limit = s.limit().get();
        flush_local();
        drop(s);
        flush_local();
        // Force a trim of this class, with our slot among the trimmed.
        let more: Vec<Stack> = (0..2 * slab::DIRTY_MAX)
            .map(|_| alloc(size).unwrap())
            .collect();
        drop(more);
        flush_local();
        println!("writing into the guard");
        // SAFETY: deliberately faults: this is the guard of a stack.
        unsafe { ((limit + GUARD_SIZE - 8) as *mut u64).write_volatile(1) };
        println!("NOT REACHED");
        return;
    }
    let out = child("guard_faults_after_trim");
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV));
    assert!(!stderr(&out).contains("overflowed"));
}

thread_local! {
    /// What `test_running` tells the handler: the tests' stand-in for the
    /// worker's running task.
    static TEST_RUNNING: std::cell::Cell<Option<RunningInfo>> =
        const { std::cell::Cell::new(None) };
}

/// The tests' `RunningFn`.
fn test_running() -> Option<RunningInfo> {
    TEST_RUNNING.with(std::cell::Cell::get)
}

fn set_running(info: Option<RunningInfo>) {
    TEST_RUNNING.with(|c| c.set(info));
}

/// Runs `recurse` in a coroutine named `name` on a `size` stack, with the
/// worker-side bookkeeping the runtime does around `resume`.
fn overflow_in_coroutine(name: &'static str, size: usize) {
    worker_init(test_running);
    let stack = alloc(size).unwrap();
    let info = RunningInfo {
        id: 4242,
        stack_size: stack.size(),
        limit: stack.limit().get(),
        name: Some((name.as_ptr(), name.len())),
    };
    let mut co = Coroutine::with_stack(stack, |_: &corosensei::Yielder<(), ()>, ()| recurse(0));
    set_running(Some(info));
    let _ = co.resume(());
    set_running(None);
    println!("NOT REACHED");
}

#[test]
fn overflow_is_reported_and_aborts() {
    if in_child("overflow_is_reported_and_aborts") {
        overflow_in_coroutine("conn-42", 256 * 1024);
        return;
    }
    let out = child("overflow_is_reported_and_aborts");
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
    assert!(
        stderr(&out).contains("coroutine 'conn-42' (id 4242) has overflowed its 256 KiB stack"),
        "{}",
        stderr(&out)
    );
}

/// With guard markers, a new stack's guard waits for its first use: a
/// reserved stack has none, `bind` installs it, and an overflow on the
/// bound stack hits it (reported, aborts) instead of running into the
/// stack below.
#[test]
fn guard_left_to_the_first_use_is_in_place_when_code_runs() {
    if in_child("guard_left_to_the_first_use_is_in_place_when_code_runs") {
        // The first install decides the mode.
        let first = alloc(16 * 1024).unwrap();
        assert_eq!(slab::guard_mode(), "madvise");
        drop(first);
        let size = 104 * 1024; // a size class no other test uses
        let below = reserve(size).unwrap();
        let r = reserve(size).unwrap();
        assert!(r.is_cold() && !r.is_guarded(), "a new stack's guard waits");
        assert!(!below.is_guarded());
        let b = bind(r).unwrap();
        assert!(b.is_guarded() && !b.is_cold());
        // The stack below keeps no guard of its own yet; the bound stack's
        // guard lies between them.
        println!("bound; overflowing");
        worker_init(test_running);
        let info = RunningInfo {
            id: 77,
            stack_size: b.size(),
            limit: b.limit().get(),
            name: None,
        };
        let mut co = Coroutine::with_stack(b, |_: &corosensei::Yielder<(), ()>, ()| recurse(0));
        set_running(Some(info));
        let _ = co.resume(());
        println!("NOT REACHED");
        drop(below);
        return;
    }
    let out = child("guard_left_to_the_first_use_is_in_place_when_code_runs");
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("(id 77) has overflowed its 104 KiB stack"),
        "{}",
        stderr(&out)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("NOT REACHED"));
}

/// A guard that cannot be installed at the first use is an error of
/// `bind`; the stack goes back to the pool without it, and a later `bind`
/// installs it.
#[test]
fn bind_reports_a_guard_it_cannot_install() {
    let size = 108 * 1024; // a size class no other test uses
    drop(alloc(16 * 1024).unwrap()); // decides the mode
    if slab::guard_mode() != "madvise" {
        return; // guards are installed when carved: nothing is left to bind
    }
    let r = reserve(size).unwrap();
    assert!(!r.is_guarded());
    let top = r.base().get();
    slab::fail_guards_of(size, true);
    let e = bind(r).unwrap_err();
    slab::fail_guards_of(size, false);
    assert!(
        e.to_string()
            .contains("cannot install a coroutine stack guard"),
        "{e}"
    );
    let again = reserve(size).unwrap();
    assert_eq!(again.base().get(), top, "back in the pool");
    assert!(!again.is_guarded(), "still without its guard");
    let b = bind(again).unwrap();
    assert!(b.is_guarded());
    assert_eq!(b.base().get(), top);
}

/// A coroutine whose stack's guard cannot be installed at its first run
/// ends unstarted, and its joiner gets an error that says why; the worker
/// goes on running others.
#[test]
fn a_coroutine_that_cannot_get_its_guard_fails_its_join() {
    let size = 112 * 1024; // a size class no other test uses
    drop(alloc(16 * 1024).unwrap()); // decides the mode
    if slab::guard_mode() != "madvise" {
        return;
    }
    let rt = crate::Runtime::builder().workers(1).build().unwrap();
    slab::fail_guards_of(size, true);
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r2 = ran.clone();
    let h = crate::Builder::new()
        .stack_size(size)
        .spawn_on(&rt, move || {
            r2.store(true, std::sync::atomic::Ordering::Relaxed)
        })
        .unwrap();
    let err = h.join().unwrap_err();
    slab::fail_guards_of(size, false);
    let msg = err
        .downcast_ref::<String>()
        .expect("a String payload")
        .clone();
    assert!(
        msg.contains("could not start") && msg.contains("guard"),
        "{msg}"
    );
    assert!(!ran.load(std::sync::atomic::Ordering::Relaxed));
    // The same size works once the guard can go in; the worker is fine.
    let h = crate::Builder::new()
        .stack_size(size)
        .spawn_on(&rt, || 5)
        .unwrap();
    assert_eq!(h.join().unwrap(), 5);
}

#[test]
fn overflow_reported_with_mprotect_guards() {
    if in_child("overflow_reported_with_mprotect_guards") {
        slab::force_mprotect();
        let before = map_count();
        let v: Vec<Stack> = (0..100).map(|_| alloc(24 * 1024).unwrap()).collect();
        let after = map_count();
        println!("mode {} maps +{}", slab::guard_mode(), after - before);
        assert_eq!(slab::guard_mode(), "mprotect");
        assert!(after - before >= 150, "one split per guard");
        drop(v);
        // Trimming (MADV_DONTNEED over runs of slots) also works across the
        // PROT_NONE guard mappings (debug builds assert that madvise succeeds).
        let many: Vec<Stack> = (0..LOCAL_MAX + 2 * slab::DIRTY_MAX)
            .map(|_| alloc(20 * 1024).unwrap())
            .collect();
        for s in &many {
            // SAFETY: the top word of a live stack.
            unsafe { ((s.base().get() - 8) as *mut u64).write_volatile(1) };
        }
        drop(many);
        flush_local();
        overflow_in_coroutine("mp", 24 * 1024);
        return;
    }
    let out = child("overflow_reported_with_mprotect_guards");
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
    assert!(stderr(&out).contains("coroutine 'mp' (id 4242) has overflowed its 24 KiB stack"));
}

#[test]
fn null_write_in_coroutine_is_a_plain_segfault() {
    if in_child("null_write_in_coroutine_is_a_plain_segfault") {
        worker_init(test_running);
        let stack = alloc(64 * 1024).unwrap();
        let info = RunningInfo {
            id: 1,
            stack_size: stack.size(),
            limit: stack.limit().get(),
            name: None,
        };
        let mut co = Coroutine::with_stack(stack, |_: &corosensei::Yielder<(), ()>, ()| {
            let p: *mut u64 = black_box(std::ptr::null_mut());
            // SAFETY: deliberately faults (null pointer write).
            unsafe { p.write_volatile(7) };
        });
        set_running(Some(info));
        co.resume(());
        println!("NOT REACHED");
        return;
    }
    let out = child("null_write_in_coroutine_is_a_plain_segfault");
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV));
    assert!(!stderr(&out).contains("overflowed"));
}

#[test]
fn plain_thread_overflow_keeps_std_message() {
    if in_child("plain_thread_overflow_keeps_std_message") {
        worker_init(test_running);
        let _ = std::thread::Builder::new()
            .name("plain".into())
            .stack_size(128 * 1024)
            .spawn(|| recurse(0))
            .unwrap()
            .join();
        println!("NOT REACHED");
        return;
    }
    let out = child("plain_thread_overflow_keeps_std_message");
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
    // std prints "thread 'plain' (TID) has overflowed its stack".
    let err = stderr(&out);
    assert!(err.contains("thread 'plain'") && err.contains("has overflowed its stack"));
    assert!(!err.contains("coroutine"));
}

#[test]
fn overflow_on_worker_thread_with_std_altstack() {
    // A worker spawned by std already has std's small signal stack; ours
    // replaces it and the report still works.
    if in_child("overflow_on_worker_thread_with_std_altstack") {
        std::thread::spawn(|| overflow_in_coroutine("w", 32 * 1024))
            .join()
            .unwrap();
        return;
    }
    let out = child("overflow_on_worker_thread_with_std_altstack");
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
    assert!(stderr(&out).contains("coroutine 'w' (id 4242) has overflowed its 32 KiB stack"));
}

#[test]
fn two_hundred_thousand_stacks_in_few_mappings() {
    if in_child("two_hundred_thousand_stacks_in_few_mappings") {
        const N: usize = 200_000;
        let size = round_size(256 * 1024);
        let maps0 = map_count();
        let rss0 = status_kib("VmRSS");
        let pte0 = status_kib("VmPTE");
        let t = std::time::Instant::now();
        let mut v = Vec::with_capacity(N);
        for _ in 0..N {
            let s = alloc(size).unwrap();
            // Touch the top page lightly, as a parked coroutine does.
            // SAFETY: the top word of a live stack.
            unsafe { ((s.base().get() - 64) as *mut u64).write_volatile(1) };
            v.push(s);
        }
        let dt = t.elapsed();
        let maps1 = map_count();
        let rss1 = status_kib("VmRSS");
        let pte1 = status_kib("VmPTE");
        println!(
            "{N} stacks of {} KiB: guard mode {}, +{} maps ({} slabs), {:.0} ns/alloc, \
             RSS +{:.2} KiB/stack, page tables +{:.2} KiB/stack",
            size / 1024,
            slab::guard_mode(),
            maps1 - maps0,
            slab::SLABS.load(std::sync::atomic::Ordering::Relaxed),
            dt.as_nanos() as f64 / N as f64,
            (rss1 - rss0) as f64 / N as f64,
            (pte1 - pte0) as f64 / N as f64,
        );
        assert_eq!(slab::guard_mode(), "madvise");
        assert!(maps1 - maps0 < 1000, "+{} maps", maps1 - maps0);
        drop(v);
        flush_local();
        let rss2 = status_kib("VmRSS");
        println!(
            "after free: RSS {} KiB over the start",
            rss2 as isize - rss0 as isize
        );
        assert!(rss2 < rss0 + 64 * 1024, "pooled stacks were trimmed");
        return;
    }
    let out = child("two_hundred_thousand_stacks_in_few_mappings");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn exhaustion_is_an_io_error() {
    if in_child("exhaustion_is_an_io_error") {
        let vm = status_kib("VmSize") * 1024;
        let lim = libc::rlimit {
            rlim_cur: (vm + 64 * 1024 * 1024) as libc::rlim_t,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: sets this process's address-space limit from a valid struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
        let mut v = Vec::with_capacity(10_000);
        let err = loop {
            match alloc(1024 * 1024) {
                Ok(s) => v.push(s),
                Err(e) => break e,
            }
            assert!(v.len() < 10_000, "limit not hit");
        };
        println!("after {} stacks: {err}", v.len());
        assert!(v.len() >= 40, "got only {}", v.len());
        assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
        let msg = err.to_string();
        assert!(msg.contains("RLIMIT_AS"), "{msg}");
        assert!(msg.contains("raise"), "{msg}");
        // Freed stacks are usable again under the same limit.
        drop(v);
        alloc(1024 * 1024).unwrap();
        return;
    }
    let out = child("exhaustion_is_an_io_error");
    assert!(out.status.success());
}
