//! An idle runtime burns ~no CPU: no periodic wake-ups, no spinning.

use std::time::Duration;

mod common;
use common::assert_idle_for_a_second;

#[test]
fn idle_runtime_uses_no_cpu() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    // Some parked coroutines and a far timer, so the workers have state.
    let hs: Vec<_> = (0..1000)
        .map(|_| rt.spawn(|| gopark::time::sleep(Duration::from_secs(3))))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_idle_for_a_second();
    drop(hs);
}
