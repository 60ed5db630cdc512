//! `GOPARK_WORKERS` that is not a positive integer: ignored with one warning.

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
