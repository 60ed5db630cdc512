//! Runtime configuration: a bad `GOPARK_WORKERS` (ignored with one warning),
//! tiny stack sizes, and the `Debug` of a runtime.

use std::process::Command;

const CHILD: &str = "GOPARK_TEST_ENV_CHILD";

#[test]
fn bad_gopark_workers_warns_once() {
    if std::env::var_os(CHILD).is_some() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        for _ in 0..2 {
            assert_eq!(gopark::Runtime::new().unwrap().workers(), cpus);
        }
        println!("child ok {cpus}");
        return;
    }
    for bad in ["abc", "0"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "bad_gopark_workers_warns_once", "--nocapture"])
            .env(CHILD, "1")
            .env("GOPARK_WORKERS", bad)
            .output()
            .unwrap();
        let so = String::from_utf8_lossy(&out.stdout);
        let se = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{so}\n{se}");
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(so.contains(&format!("child ok {cpus}")), "{so}");
        let warning = format!(
            "gopark: ignoring GOPARK_WORKERS={bad}: not a positive integer; using {cpus} workers"
        );
        assert_eq!(se.matches(&warning).count(), 1, "{se}");
    }
}

#[test]
fn stack_size_below_the_minimum_still_runs() {
    for size in [0, 1] {
        let h = gopark::Builder::new()
            .stack_size(size)
            .spawn(|| {
                let buf = [1u8; 4 * 1024];
                std::hint::black_box(&buf).len()
            })
            .unwrap();
        assert_eq!(h.join().unwrap(), 4 * 1024);
    }
}

#[test]
fn runtime_debug_shows_workers_and_coroutines() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let h = rt.spawn(move || {
        let _ = rx.recv();
    });
    let d = format!("{rt:?}");
    assert!(
        d.contains("workers: 2") && d.contains("coroutines: 1"),
        "{d}"
    );
    tx.send(()).unwrap();
    h.join().unwrap();
    // The charge is released when the coroutine ends, just after its join.
    let t = std::time::Instant::now();
    while !format!("{rt:?}").contains("coroutines: 0") {
        assert!(t.elapsed().as_secs() < 5, "{rt:?}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
