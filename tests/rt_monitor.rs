//! The stall monitor: a coroutine that runs too long without parking or
//! yielding is reported on stderr, once; a threshold of zero turns it off;
//! `GOPARK_STALL_MS` sets the default threshold; an idle runtime's monitor
//! uses no CPU; a stalled worker's unstarted coroutines start elsewhere.

use std::time::{Duration, Instant};

mod common;
use common::{assert_idle_for_a_second, child_within, child_within_env, in_child, spin, stderr};

const LIMIT: Duration = Duration::from_secs(30);

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
    // No upper bound tighter than the loop: a loaded machine may deschedule
    // the spinning thread near its end, so it may run past 300 ms.
    assert!((50..2000).contains(&ms), "{ms} ms: {err}");
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

/// The stall reports in a child's stderr.
fn reports(err: &str) -> Vec<&str> {
    err.lines()
        .filter(|l| l.contains("has run on worker"))
        .collect()
}

/// The milliseconds a report says the coroutine ran.
fn reported_ms(line: &str) -> u64 {
    line.split(" for ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {line:?}"))
}

#[test]
fn gopark_stall_ms_sets_the_default_threshold() {
    const NAME: &str = "gopark_stall_ms_sets_the_default_threshold";
    if in_child(NAME) {
        // Two runtimes with the builder's default: the variable is read
        // for each, and a bad value warns once per process.
        for _ in 0..2 {
            let rt = gopark::Runtime::builder().workers(1).build().unwrap();
            gopark::Builder::new()
                .name("crunch")
                .spawn_on(&rt, || spin(Duration::from_millis(300)))
                .unwrap()
                .join()
                .unwrap();
            // By now a monitor thread has had 300 ms to name itself.
            let monitor = std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
                .any(|comm| comm.trim() == "gopark-monitor");
            println!("MONITOR={monitor}.");
        }
        return;
    }
    let run = |v: &str| {
        let out = child_within_env(NAME, LIMIT, &[("GOPARK_STALL_MS", v)]);
        assert!(out.status.success(), "GOPARK_STALL_MS={v}");
        let so = common::stdout(&out);
        let monitors: Vec<&str> = so.matches("MONITOR=").collect();
        assert_eq!(monitors.len(), 2, "{so}");
        let on = so.matches("MONITOR=true.").count();
        assert!(on == 0 || on == 2, "{so}");
        (on == 2, stderr(&out))
    };
    let warning = "gopark: ignoring GOPARK_STALL_MS=";

    // 50 ms: each 300 ms loop is reported, once, after at least 50 ms.
    let (monitor, err) = run("50");
    assert!(monitor, "no monitor thread with GOPARK_STALL_MS=50");
    let lines = reports(&err);
    assert_eq!(lines.len(), 2, "one report per runtime's stall: {err}");
    for l in &lines {
        assert!(l.starts_with("gopark: coroutine 'crunch' (id "), "{err}");
        assert!((50..2000).contains(&reported_ms(l)), "{err}");
    }
    assert!(!err.contains(warning), "{err}");

    // 0: no stall report (the monitor thread still runs: it also writes
    // the deadlock report, which is on by default).
    let (_, err) = run("0");
    assert!(reports(&err).is_empty(), "{err}");
    assert!(!err.contains(warning), "{err}");

    // Not a number: one warning, and the default (100 ms) applies, so the
    // 300 ms loops are still reported, after at least 100 ms.
    for bad in ["abc", "-5", "1.5"] {
        let (monitor, err) = run(bad);
        assert!(monitor, "no monitor thread with GOPARK_STALL_MS={bad}");
        let want = format!(
            "gopark: ignoring GOPARK_STALL_MS={bad}: not a number of milliseconds; using 100 ms"
        );
        assert_eq!(err.matches(warning).count(), 1, "{err}");
        assert!(err.lines().any(|l| l == want), "{err}");
        let lines = reports(&err);
        assert_eq!(lines.len(), 2, "{err}");
        for l in &lines {
            assert!((100..2000).contains(&reported_ms(l)), "{err}");
        }
    }
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

/// While a worker is stalled (a coroutine in a 300 ms CPU loop that never
/// parks), the coroutines it spawned and that have not started yet start
/// on the other worker: all of them finish before the loop ends. Placement
/// puts some of them in the stalled worker's own queue (its load is only
/// one coroutine), so this needs the other worker to take them from there.
/// (Here rather than with the placement tests, which it would disturb: they
/// run in parallel and count where CPU-bound coroutines ran.)
#[test]
fn a_stalled_workers_unstarted_coroutines_start_elsewhere() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    const N: usize = 16;
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let (done_in_loop, elsewhere) = gopark::Builder::new()
        .worker(0)
        .spawn_on(&rt, || {
            let done = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..N)
                .map(|_| {
                    let done = done.clone();
                    gopark::spawn(move || {
                        gopark::time::sleep(Duration::from_millis(1));
                        done.fetch_add(1, Ordering::SeqCst);
                        gopark::worker_index()
                    })
                })
                .collect();
            // The stall: no park, no yield, no gopark operation.
            let end = Instant::now() + Duration::from_millis(300);
            let mut x = 1u64;
            while Instant::now() < end {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            let done_in_loop = done.load(Ordering::SeqCst);
            let elsewhere = hs
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|&w| w == Some(1))
                .count();
            (done_in_loop, elsewhere)
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(
        done_in_loop, N,
        "only {done_in_loop} of {N} coroutines finished during the 300 ms stall"
    );
    assert_eq!(elsewhere, N, "a coroutine ran on the stalled worker");
}

/// On worker 0, spawns one child (onto that same worker: it wakes nobody),
/// then computes for up to 300 ms without parking or yielding until the
/// child has started. Returns whether it started within that loop, and
/// where it ran.
fn child_of_a_computing_coroutine(rt: &gopark::Runtime) -> (bool, Option<usize>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    gopark::Builder::new()
        .worker(0)
        .spawn_on(rt, || {
            let started = Arc::new(AtomicBool::new(false));
            let s = started.clone();
            let h = gopark::spawn(move || {
                s.store(true, Ordering::SeqCst);
                gopark::worker_index()
            });
            let end = Instant::now() + Duration::from_millis(300);
            while Instant::now() < end && !started.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            (started.load(Ordering::SeqCst), h.join().unwrap())
        })
        .unwrap()
        .join()
        .unwrap()
}

/// One child spawned onto the spawner's own worker wakes nobody (the
/// spawner usually joins it at once); if the spawner then computes without
/// parking, the monitor sees the worker inside one resume with a coroutine
/// queued to start and moves it to the other worker.
#[test]
fn a_single_child_of_a_computing_coroutine_starts_elsewhere() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    // Both workers asleep before the spawn.
    std::thread::sleep(Duration::from_millis(50));
    let (started_in_loop, child_worker) = child_of_a_computing_coroutine(&rt);
    assert!(
        started_in_loop,
        "the child did not start during the 300 ms loop"
    );
    assert_eq!(child_worker, Some(1));
}

/// As above, when the other worker carries more coroutines (parked ones):
/// load decides where new coroutines go, not whether a stuck worker's
/// queue may be emptied.
#[test]
fn a_stuck_workers_child_starts_on_a_more_loaded_idle_worker() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let sleepers: Vec<_> = (0..8)
        .map(|_| {
            gopark::Builder::new()
                .worker(1)
                .spawn_on(&rt, || gopark::time::sleep(Duration::from_millis(600)))
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let (started_in_loop, child_worker) = child_of_a_computing_coroutine(&rt);
    for h in sleepers {
        h.join().unwrap();
    }
    assert!(
        started_in_loop,
        "the child did not start during the 300 ms loop"
    );
    assert_eq!(child_worker, Some(1));
}

/// The monitor moves a stuck worker's queued coroutines while the runtime
/// shuts down: each join still ends (the child ran, or was cancelled), and
/// nothing hangs or crashes. 40 rounds, the drop landing at different
/// points of the 30 ms loop.
#[test]
fn rescue_races_shutdown() {
    for round in 0..40u64 {
        let rt = gopark::Runtime::builder().workers(2).build().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let spinner = gopark::Builder::new()
            .worker(0)
            .spawn_on(&rt, move || {
                let hs: Vec<_> = (0..50).map(|i| gopark::spawn(move || i)).collect();
                tx.send(hs).unwrap();
                let end = Instant::now() + Duration::from_millis(30);
                while Instant::now() < end {
                    std::hint::spin_loop();
                }
            })
            .unwrap();
        let hs = rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(5 + round % 25));
        drop(rt);
        let _ = spinner.join();
        for (i, h) in hs.into_iter().enumerate() {
            if let Ok(v) = h.join() {
                assert_eq!(v, i);
            }
        }
    }
}
