//! Stack-overflow diagnostics, end to end. Each test re-runs this binary as a
//! child process (selected by `GOPARK_TEST_CHILD`) that is expected to die.

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;

mod common;
use common::{child, in_child, stderr};

/// Recurses without bound, 1 KiB per frame.
#[allow(unconditional_recursion)]
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let buf = black_box([depth as u8; 1024]);
    black_box(recurse(depth + 1)) + u64::from(buf[7])
}

fn rt(workers: usize) -> gopark::Runtime {
    gopark::Runtime::builder().workers(workers).build().unwrap()
}

#[test]
fn named_coroutine_overflow_names_it_and_its_stack_size() {
    const NAME: &str = "named_coroutine_overflow_names_it_and_its_stack_size";
    if in_child(NAME) {
        let rt = rt(2);
        let h = gopark::Builder::new()
            .name("deep-1")
            .stack_size(64 * 1024)
            .spawn_on(&rt, || recurse(0))
            .unwrap();
        println!("spawned {:?}", h.coroutine().id());
        let _ = h.join();
        println!("NOT REACHED");
        return;
    }
    let out = child(NAME);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
    let err = stderr(&out);
    assert!(err.contains("coroutine 'deep-1' (id "), "{err}");
    assert!(err.contains(") has overflowed its 64 KiB stack"), "{err}");
    assert!(!err.contains("NOT REACHED"));
}

#[test]
fn unnamed_coroutine_overflow_reports_default_size() {
    const NAME: &str = "unnamed_coroutine_overflow_reports_default_size";
    if in_child(NAME) {
        let rt = rt(1);
        // Let some other coroutines run and park first on the same worker.
        let sleepers: Vec<_> = (0..100)
            .map(|_| rt.spawn(|| gopark::time::sleep(std::time::Duration::from_secs(60))))
            .collect();
        // The coroutine waits until its id is printed: otherwise it could
        // overflow (and abort the process) before the parent learns the id.
        let printed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let p = printed.clone();
        let h = rt.spawn(move || {
            while !p.load(std::sync::atomic::Ordering::SeqCst) {
                gopark::time::sleep(std::time::Duration::from_millis(1));
            }
            recurse(0)
        });
        let id = h.coroutine().id().as_u64();
        println!("id {id}");
        std::io::Write::flush(&mut std::io::stdout()).unwrap();
        printed.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = h.join();
        drop(sleepers);
        return;
    }
    let out = child(NAME);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
    let err = stderr(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout
        .split("id ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("child printed the id");
    assert!(
        err.contains(&format!(
            "coroutine <unnamed> (id {id}) has overflowed its 256 KiB stack"
        )),
        "{err}"
    );
}

#[test]
fn null_write_in_coroutine_is_a_plain_segfault() {
    const NAME: &str = "null_write_in_coroutine_is_a_plain_segfault";
    if in_child(NAME) {
        let rt = rt(1);
        let h = gopark::Builder::new()
            .name("nullw")
            .spawn_on(&rt, || {
                let p: *mut u64 = black_box(std::ptr::null_mut());
                // SAFETY: none; this deliberately faults.
                unsafe { p.write_volatile(7) };
            })
            .unwrap();
        let _ = h.join();
        println!("NOT REACHED");
        return;
    }
    let out = child(NAME);
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV));
    assert!(!stderr(&out).contains("overflowed"));
}

#[test]
fn plain_thread_overflow_keeps_std_message() {
    const NAME: &str = "plain_thread_overflow_keeps_std_message";
    if in_child(NAME) {
        // A runtime exists, so gopark's handler is installed and chained.
        let rt = rt(1);
        rt.run(|| ());
        let _ = std::thread::Builder::new()
            .name("plain".into())
            .stack_size(128 * 1024)
            .spawn(|| recurse(0))
            .unwrap()
            .join();
        println!("NOT REACHED");
        return;
    }
    let out = child(NAME);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
    let err = stderr(&out);
    // std: "thread 'plain' (TID) has overflowed its stack"
    assert!(err.contains("thread 'plain'"), "{err}");
    assert!(err.contains("has overflowed its stack"), "{err}");
    assert!(!err.contains("coroutine"), "{err}");
}

#[test]
fn deep_but_bounded_recursion_is_fine() {
    // 200 frames of over 1 KiB each (more in debug builds) on a 1 MiB stack.
    #[inline(never)]
    fn down(n: u32) -> u64 {
        let buf = black_box([n as u8; 1024]);
        if n == 0 {
            return u64::from(buf[0]);
        }
        black_box(down(n - 1)) + u64::from(buf[9])
    }
    let rt = rt(1);
    let v = rt.run(|| {
        gopark::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(|| down(200))
            .unwrap()
            .join()
            .unwrap()
    });
    assert_eq!(v, (0..200u64).map(|n| (n + 1) % 256).sum::<u64>());
}

/// An overflow in a destructor that runs while runtime shutdown unwinds its
/// coroutine is reported like any other (the cancelled coroutine runs
/// through the worker's normal resume path).
#[test]
fn overflow_during_shutdown_unwinding_names_the_coroutine() {
    const NAME: &str = "overflow_during_shutdown_unwinding_names_the_coroutine";
    if in_child(NAME) {
        struct RecurseOnDrop;
        impl Drop for RecurseOnDrop {
            fn drop(&mut self) {
                black_box(recurse(0));
            }
        }
        let rt = rt(1);
        let (tx, rx) = gopark::chan::bounded::<()>(0);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let _h = gopark::Builder::new()
            .name("deep-at-exit")
            .stack_size(64 * 1024)
            .spawn_on(&rt, move || {
                let _g = RecurseOnDrop;
                ready_tx.send(()).unwrap();
                let _ = rx.recv();
            })
            .unwrap();
        ready_rx.recv().unwrap();
        drop(rt);
        drop(tx);
        println!("NOT REACHED");
        return;
    }
    let out = child(NAME);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
    let err = stderr(&out);
    assert!(err.contains("coroutine 'deep-at-exit' (id "), "{err}");
    assert!(err.contains("has overflowed its 64 KiB stack"), "{err}");
}
