//! An idle runtime burns ~no CPU: no periodic wake-ups, no spinning.

use std::time::Duration;

fn process_cpu() -> Duration {
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we pass.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[test]
fn idle_runtime_uses_no_cpu() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    // Some parked coroutines and a far timer, so the workers have state.
    let hs: Vec<_> = (0..1000)
        .map(|_| rt.spawn(|| gopark::time::sleep(Duration::from_secs(3))))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let before = process_cpu();
    std::thread::sleep(Duration::from_secs(1));
    let used = process_cpu() - before;
    assert!(
        used < Duration::from_millis(50),
        "idle runtime used {used:?} of CPU in 1 s"
    );
    drop(hs);
}
