//! `RuntimeBuilder::pin_workers`: each worker thread on its own CPU, read
//! back from the kernel (`sched_getaffinity`, `sched_getcpu`); the blocking
//! pool keeps the builder's whole mask; a mask too small is an error.

use std::io;
use std::mem;

/// The CPUs the calling thread may run on.
fn my_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is the empty set; the kernel writes inside
    // it (the size passed is its own).
    unsafe {
        let mut set: libc::cpu_set_t = mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set),
            0,
            "sched_getaffinity: {}",
            io::Error::last_os_error()
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

fn current_cpu() -> usize {
    // SAFETY: no arguments, no memory.
    let c = unsafe { libc::sched_getcpu() };
    assert!(c >= 0, "sched_getcpu: {}", io::Error::last_os_error());
    c as usize
}

#[test]
fn pinned_workers_each_run_on_their_own_cpu() {
    let all = my_cpus();
    if all.len() < 2 {
        eprintln!("skipped: this test needs 2 CPUs in the affinity mask, has {all:?}");
        return;
    }
    let rt = gopark::Runtime::builder()
        .workers(2)
        .pin_workers(true)
        .build()
        .unwrap();
    for (w, &cpu) in all.iter().enumerate().take(2) {
        let (mask, cpus_seen) = gopark::Builder::new()
            .worker(w)
            .spawn_on(&rt, || {
                // Run a while, across yields and a sleep: every look at the
                // CPU finds the same one.
                let mut seen = Vec::new();
                for _ in 0..20 {
                    seen.push(current_cpu());
                    gopark::yield_now();
                }
                gopark::time::sleep(std::time::Duration::from_millis(2));
                seen.push(current_cpu());
                (my_cpus(), seen)
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(mask, vec![cpu], "worker {w}'s mask");
        assert!(
            cpus_seen.iter().all(|&c| c == cpu),
            "worker {w} ran on {cpus_seen:?}"
        );
    }
    // A blocking job started from a pinned worker runs on the whole mask.
    let pool_mask = gopark::Builder::new()
        .worker(1)
        .spawn_on(&rt, || gopark::spawn_blocking(my_cpus).join().unwrap())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(pool_mask, all);
}

#[test]
fn unpinned_workers_keep_the_whole_mask() {
    let all = my_cpus();
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    for w in 0..2 {
        let mask = gopark::Builder::new()
            .worker(w)
            .spawn_on(&rt, my_cpus)
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(mask, all, "worker {w}");
    }
}

#[test]
fn more_workers_than_cpus_cannot_be_pinned() {
    let n = my_cpus().len() + 1;
    let err = gopark::Runtime::builder()
        .workers(n)
        .pin_workers(true)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let msg = err.to_string();
    assert!(msg.contains(&format!("cannot pin {n} workers")), "{msg}");
    // Nothing was started: the same builder without pinning works.
    let rt = gopark::Runtime::builder().workers(n).build().unwrap();
    assert_eq!(rt.run(|| 6 * 7), 42);
}
