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
