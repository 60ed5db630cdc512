//! The soak and fault suite of `examples/soak`, in its short form: about
//! 15 s of an echo server with 200 client coroutines, client threads and
//! faulty peers (reset, half-close, slowloris, vanishing mid-message),
//! EMFILE windows, channel/`select!`/`Mutex` churn and runtimes built and
//! dropped, all at once; then every byte must have been verified, and no
//! descriptor, coroutine or memory leaked.
//!
//! It runs in a child process: it lowers the process's descriptor limit,
//! and a hang must fail the test rather than stall the suite.

mod common;

#[path = "../examples/soak/suite/mod.rs"]
mod suite;

use std::time::Duration;

#[test]
fn soak_loses_and_leaks_nothing() {
    const NAME: &str = "soak_loses_and_leaks_nothing";
    if common::in_child(NAME) {
        let report = suite::run(&suite::Config::ci());
        print!("{}", report.table);
        assert!(
            report.failures.is_empty(),
            "the soak failed: {:#?}",
            report.failures
        );
        return;
    }
    let out = common::child_within(NAME, Duration::from_secs(120));
    let summary = common::stdout(&out);
    assert!(
        out.status.success() && summary.contains("result: PASS"),
        "the soak failed or hung ({:?}); its summary is above",
        out.status
    );
}
