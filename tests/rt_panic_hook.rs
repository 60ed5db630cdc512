//! A detached coroutine's panic is printed with the coroutine's name, like a
//! thread's. Runs the panic in a child process and reads its stderr.

use std::time::Duration;

mod common;

const NAME: &str = "detached_panic_names_the_coroutine";

#[test]
fn detached_panic_names_the_coroutine() {
    if common::in_child(NAME) {
        let rt = gopark::Runtime::builder().workers(1).build().unwrap();
        let h = gopark::Builder::new()
            .name("doomed-detached")
            .spawn_on(&rt, || {
                panic!("detached failure {}", std::hint::black_box(42))
            })
            .unwrap();
        drop(h);
        std::thread::sleep(Duration::from_millis(200));
        // The worker survived the panic.
        assert_eq!(rt.run(|| 1), 1);
        println!("child ok");
        return;
    }
    let out = common::child(NAME);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stderr}");
    assert!(stdout.contains("child ok"), "{stdout}");
    assert!(
        stderr.contains("coroutine 'doomed-detached' (id ") && stderr.contains("panicked at"),
        "stderr: {stderr}"
    );
    // The announced line names the spawn site.
    let line = stderr
        .lines()
        .find(|l| l.starts_with("gopark: panic in coroutine 'doomed-detached' (id "))
        .unwrap_or_else(|| panic!("stderr: {stderr}"));
    assert!(
        line.contains(", spawned at tests/rt_panic_hook.rs:") && line.ends_with("):"),
        "{line}"
    );
    assert!(stderr.contains("detached failure 42"), "stderr: {stderr}");
}

/// A panic hook the program installed before gopark started still sees the
/// panics of coroutines (gopark announces the coroutine and delegates).
#[test]
fn earlier_user_hook_sees_coroutine_panics() {
    const NAME: &str = "earlier_user_hook_sees_coroutine_panics";
    if common::in_child(NAME) {
        std::panic::set_hook(Box::new(|info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .unwrap_or("?");
            eprintln!("USER HOOK saw: {msg}");
        }));
        let rt = gopark::Runtime::builder().workers(1).build().unwrap();
        let h = gopark::Builder::new()
            .name("reported")
            .spawn_on(&rt, || panic!("coroutine failure"))
            .unwrap();
        assert!(h.join().is_err());
        println!("child ok");
        return;
    }
    let out = common::child(NAME);
    let stderr = common::stderr(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("USER HOOK saw: coroutine failure"),
        "{stderr}"
    );
    assert!(stderr.contains("coroutine 'reported' (id "), "{stderr}");
}

/// The frames of each backtrace printed in `stderr` (the lines
/// `  N: symbol`), without their `at file:line` lines.
fn backtraces(stderr: &str) -> Vec<Vec<&str>> {
    stderr
        .split("stack backtrace:\n")
        .skip(1)
        .map(|bt| {
            bt.lines()
                .take_while(|l| l.starts_with(' '))
                .map(str::trim)
                .filter(|l| !l.starts_with("at "))
                .collect()
        })
        .collect()
}

#[inline(never)]
fn user_fails_here(x: u32) -> u32 {
    if std::hint::black_box(x) > 0 {
        panic!("user failure");
    }
    x
}

/// With `RUST_BACKTRACE=1`, a coroutine's panic prints a short backtrace
/// like a thread's: the user's frames, not the runtime's or corosensei's
/// (it printed 22 of those after the user's frames). So does a panic in a
/// job on the blocking pool (17 of the pool's frames).
#[test]
fn short_backtrace_shows_only_user_frames() {
    const NAME: &str = "short_backtrace_shows_only_user_frames";
    if common::in_child(NAME) {
        let rt = gopark::Runtime::builder().workers(1).build().unwrap();
        let h = gopark::Builder::new()
            .name("bt")
            .spawn_on(&rt, || user_fails_here(1))
            .unwrap();
        assert!(h.join().is_err());
        let blocking = rt.run(|| gopark::spawn_blocking(|| user_fails_here(2)).join());
        assert!(blocking.is_err());
        println!("child ok");
        return;
    }
    let out = common::child_env(NAME, &[("RUST_BACKTRACE", "1")]);
    let stderr = common::stderr(&out);
    assert!(out.status.success(), "{stderr}");
    let bts = backtraces(&stderr);
    assert_eq!(bts.len(), 2, "{stderr}");
    for frames in bts {
        assert!(
            frames.iter().any(|f| f.contains("user_fails_here")),
            "{frames:#?}"
        );
        assert!(
            !frames.iter().any(|f| f.contains("corosensei")
                || f.contains("gopark::runtime")
                || f.contains("gopark::blocking")),
            "{frames:#?}"
        );
        // std's panic machinery (2 frames), the user's function, the closure.
        assert!(frames.len() <= 6, "{frames:#?}");
    }
    assert!(stderr.contains("RUST_BACKTRACE=full"), "{stderr}");
}

/// Without `RUST_BACKTRACE`, the panic keeps std's hint to set it.
#[test]
fn backtrace_hint_when_unset() {
    const NAME: &str = "backtrace_hint_when_unset";
    if common::in_child(NAME) {
        let rt = gopark::Runtime::builder().workers(1).build().unwrap();
        let h = gopark::Builder::new()
            .spawn_on(&rt, || user_fails_here(1))
            .unwrap();
        assert!(h.join().is_err());
        return;
    }
    let out = common::child(NAME);
    let stderr = common::stderr(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("RUST_BACKTRACE=1"), "{stderr}");
    assert!(!stderr.contains("stack backtrace:"), "{stderr}");
}

/// A slow panic hook (printing a backtrace, a reporting hook) is not
/// reported as a stall of the coroutine in the middle of its panic message.
#[test]
fn slow_panic_hook_is_not_a_stall() {
    const NAME: &str = "slow_panic_hook_is_not_a_stall";
    if common::in_child(NAME) {
        std::panic::set_hook(Box::new(|_| {
            std::thread::sleep(Duration::from_millis(300));
            eprintln!("slow hook done");
        }));
        let rt = gopark::Runtime::builder()
            .workers(1)
            .stall_threshold(Duration::from_millis(30))
            .build()
            .unwrap();
        let h = gopark::Builder::new()
            .name("slow-hook")
            .spawn_on(&rt, || user_fails_here(1))
            .unwrap();
        assert!(h.join().is_err());
        // The monitor still works afterwards: a real stall is reported.
        rt.run(|| std::thread::sleep(Duration::from_millis(300)));
        return;
    }
    let out = common::child(NAME);
    let stderr = common::stderr(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("slow hook done"), "{stderr}");
    let stalls: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("without parking or yielding"))
        .collect();
    assert_eq!(stalls.len(), 1, "{stderr}");
    assert!(!stalls[0].contains("slow-hook"), "{stderr}");
}

/// Prints on stderr when dropped (shows that a coroutine's stack unwound).
struct Guard(&'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        eprintln!("{} dropped", self.0);
    }
}

fn aborted(out: &std::process::Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    out.status.signal() == Some(libc::SIGABRT)
}

/// With `UnjoinedPanic::Abort`, a detached coroutine's panic aborts the
/// process once the coroutine has unwound.
#[test]
fn unjoined_panic_abort_detached() {
    const NAME: &str = "unjoined_panic_abort_detached";
    if common::in_child(NAME) {
        let rt = gopark::Runtime::builder()
            .workers(1)
            .unjoined_panic(gopark::UnjoinedPanic::Abort)
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let h = gopark::Builder::new()
            .name("fatal")
            .spawn_on(&rt, move || {
                let _g = Guard("fatal's guard");
                // Wait for the handle to be dropped first.
                while rx.try_recv().is_err() {
                    gopark::time::sleep(Duration::from_millis(1));
                }
                panic!("detached failure");
            })
            .unwrap();
        drop(h);
        tx.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(5));
        println!("survived");
        return;
    }
    let out = common::child(NAME);
    let stderr = common::stderr(&out);
    assert!(aborted(&out), "{:?} {stderr}", out.status);
    assert!(!common::stdout(&out).contains("survived"));
    let panic = stderr.find("detached failure").expect(&stderr);
    let guard = stderr.find("fatal's guard dropped").expect(&stderr);
    let abort = stderr
        .find("gopark: coroutine 'fatal' (id ")
        .expect(&stderr);
    assert!(panic < guard && guard < abort, "{stderr}");
    assert!(
        stderr.contains("panicked and nothing joined it; aborting, as UnjoinedPanic::Abort asks"),
        "{stderr}"
    );
}

/// With `UnjoinedPanic::Abort`, dropping the handle of a coroutine that
/// ended with a panic, without joining it, aborts.
#[test]
fn unjoined_panic_abort_on_handle_drop() {
    const NAME: &str = "unjoined_panic_abort_on_handle_drop";
    if common::in_child(NAME) {
        let rt = gopark::Runtime::builder()
            .workers(1)
            .unjoined_panic(gopark::UnjoinedPanic::Abort)
            .build()
            .unwrap();
        let h = rt.spawn(|| panic!("ended, not joined"));
        while !h.is_finished() {
            std::thread::sleep(Duration::from_millis(1));
        }
        println!("finished, still alive");
        drop(h);
        println!("survived");
        return;
    }
    let out = common::child(NAME);
    let stdout = common::stdout(&out);
    assert!(aborted(&out), "{:?}", out.status);
    assert!(stdout.contains("finished, still alive"), "{stdout}");
    assert!(!stdout.contains("survived"), "{stdout}");
}

/// With `UnjoinedPanic::Abort`, a joined panic, a panic caught inside the
/// coroutine, a scoped child's panic (re-raised by the scope) and a
/// coroutine cancelled by shutdown do not abort.
#[test]
fn unjoined_panic_abort_spares_observed_panics() {
    const NAME: &str = "unjoined_panic_abort_spares_observed_panics";
    if common::in_child(NAME) {
        let rt = gopark::Runtime::builder()
            .workers(1)
            .unjoined_panic(gopark::UnjoinedPanic::Abort)
            .build()
            .unwrap();
        assert!(rt.spawn(|| panic!("joined")).join().is_err());
        let caught = rt.spawn(|| std::panic::catch_unwind(|| panic!("caught")).is_err());
        drop(caught);
        let scoped = rt.run(|| {
            std::panic::catch_unwind(|| {
                gopark::scope(|s| {
                    s.spawn(|| panic!("scoped"));
                })
            })
            .is_err()
        });
        assert!(scoped);
        // Parked forever, detached: cancelled when the runtime is dropped.
        drop(rt.spawn(|| {
            let _g = Guard("parked");
            gopark::park();
        }));
        std::thread::sleep(Duration::from_millis(50));
        drop(rt);
        println!("child ok");
        return;
    }
    let out = common::child(NAME);
    let stderr = common::stderr(&out);
    assert!(out.status.success(), "{:?} {stderr}", out.status);
    assert!(common::stdout(&out).contains("child ok"));
    assert!(stderr.contains("parked dropped"), "{stderr}");
}

/// `GOPARK_UNJOINED_PANIC=abort` sets it for the default runtime; a bad
/// value is ignored with a warning.
#[test]
fn unjoined_panic_from_env() {
    const NAME: &str = "unjoined_panic_from_env";
    if common::in_child(NAME) {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        drop(gopark::spawn(move || {
            let _tx = tx;
            panic!("default runtime")
        }));
        // The coroutine has unwound; it ends (or aborts) right after.
        assert!(rx.recv().is_err());
        let abort = std::env::var("GOPARK_UNJOINED_PANIC").as_deref() == Ok("abort");
        std::thread::sleep(Duration::from_millis(if abort { 5000 } else { 200 }));
        println!("survived");
        return;
    }
    let out = common::child_env(NAME, &[("GOPARK_UNJOINED_PANIC", "abort")]);
    assert!(aborted(&out), "{:?}", out.status);
    let out = common::child_env(NAME, &[("GOPARK_UNJOINED_PANIC", "crash")]);
    let stderr = common::stderr(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("ignoring GOPARK_UNJOINED_PANIC=crash"),
        "{stderr}"
    );
    assert!(common::stdout(&out).contains("survived"));
}
