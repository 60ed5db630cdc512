//! The stall monitor: a coroutine that runs too long without parking or
//! yielding is reported on stderr, once; a threshold of zero turns it off;
//! an idle runtime's monitor uses no CPU.

use std::time::{Duration, Instant};

mod common;
use common::{assert_idle_for_a_second, child_within, in_child, stderr};

const LIMIT: Duration = Duration::from_secs(30);

/// Spins for `d` without parking or yielding.
fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

#[test]
fn a_cpu_loop_is_reported_once_with_its_name() {
    const NAME: &str = "a_cpu_loop_is_reported_once_with_its_name";
    if in_child(NAME) {
        let rt = gopark::Runtime::builder()
            .workers(1)
            .stall_threshold(Duration::from_millis(50))
            .build()
            .unwrap();
        let h = gopark::Builder::new()
            .name("crunch")
            .spawn_on(&rt, || {
                spin(Duration::from_millis(300));
                gopark::current().unwrap().id().as_u64()
            })
            .unwrap();
        let id = h.join().unwrap();
        println!("ID={id}");
        // A coroutine that yields often is never reported.
        rt.run(|| {
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(200) {
                spin(Duration::from_millis(5));
                gopark::yield_now();
            }
        });
        return;
    }
    let out = child_within(NAME, LIMIT);
    assert!(out.status.success());
    let so = common::stdout(&out);
    let id: u64 = so
        .lines()
        .find_map(|l| l.split("ID=").nth(1))
        .expect("child printed its id")
        .trim()
        .parse()
        .unwrap();
    let err = stderr(&out);
    let want = format!("gopark: coroutine 'crunch' (id {id}) has run on worker 0 for ");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("has run on worker"))
        .collect();
    assert_eq!(lines.len(), 1, "one report per stall: {err}");
    assert!(lines[0].starts_with(&want), "{err}");
    assert!(
        lines[0].ends_with(
            " ms without parking or yielding; every coroutine on that worker waits \
             (a CPU loop or a blocking call? see gopark::blocking / yield_now)"
        ),
        "{err}"
    );
    let ms: u64 = lines[0][want.len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((50..300).contains(&ms), "{ms} ms: {err}");
}

#[test]
fn a_zero_threshold_reports_nothing() {
    const NAME: &str = "a_zero_threshold_reports_nothing";
    if in_child(NAME) {
        let rt = gopark::Runtime::builder()
            .workers(1)
            .stall_threshold(Duration::ZERO)
            .build()
            .unwrap();
        let h = gopark::Builder::new()
            .name("crunch")
            .spawn_on(&rt, || spin(Duration::from_millis(300)))
            .unwrap();
        h.join().unwrap();
        return;
    }
    let out = child_within(NAME, LIMIT);
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(!err.contains("has run on worker"), "{err}");
}

#[test]
fn an_idle_runtime_monitor_uses_no_cpu() {
    const NAME: &str = "an_idle_runtime_monitor_uses_no_cpu";
    if in_child(NAME) {
        let rt = gopark::Runtime::builder()
            .workers(2)
            .stall_threshold(Duration::from_millis(50))
            .build()
            .unwrap();
        // Some activity first, so the monitor has woken and must go back to
        // sleep; then parked coroutines and a far timer.
        rt.run(|| spin(Duration::from_millis(20)));
        let hs: Vec<_> = (0..100)
            .map(|_| rt.spawn(|| gopark::time::sleep(Duration::from_secs(3))))
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        assert_idle_for_a_second();
        drop(hs);
        return;
    }
    let out = child_within(NAME, LIMIT);
    assert!(out.status.success(), "{}", stderr(&out));
}
