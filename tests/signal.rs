//! `gopark::signal::notify`, each case in a child process that signals
//! itself.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use gopark::select;

const LIMIT: Duration = Duration::from_secs(60);

fn raise(sig: i32) {
    // SAFETY: raising a signal in our own process.
    assert_eq!(unsafe { libc::raise(sig) }, 0);
}

#[test]
fn sigusr1_is_delivered_to_every_receiver_and_in_select() {
    const NAME: &str = "sigusr1_is_delivered_to_every_receiver_and_in_select";
    if !common::in_child(NAME) {
        let out = common::child_within(NAME, LIMIT);
        assert!(out.status.success(), "{}", common::stderr(&out));
        assert!(common::stdout(&out).contains("delivered"));
        return;
    }
    let a = gopark::signal::notify(&[libc::SIGUSR1]).unwrap();
    let b = gopark::signal::notify(&[libc::SIGUSR1, libc::SIGUSR2]).unwrap();
    raise(libc::SIGUSR1);
    assert_eq!(a.recv_timeout(Duration::from_secs(10)), Ok(libc::SIGUSR1));
    assert_eq!(b.recv_timeout(Duration::from_secs(10)), Ok(libc::SIGUSR1));
    // From a coroutine, in a select.
    let got = gopark::run(move || {
        let (_tx, never) = gopark::chan::bounded::<()>(0);
        raise(libc::SIGUSR2);
        select! {
            recv(never) -> _ => 0,
            recv(b) -> s => s.unwrap(),
        }
    });
    assert_eq!(got, libc::SIGUSR2);
    // `a` did not ask for SIGUSR2.
    assert!(a.recv_timeout(Duration::from_millis(100)).is_err());
    println!("delivered");
}

#[test]
fn dropping_the_receiver_restores_the_default_action() {
    const NAME: &str = "dropping_the_receiver_restores_the_default_action";
    if !common::in_child(NAME) {
        let out = common::child_within(NAME, LIMIT);
        assert_eq!(out.status.signal(), Some(libc::SIGUSR1), "{:?}", out.status);
        assert!(common::stdout(&out).contains("first received"));
        assert!(!common::stdout(&out).contains("survived"));
        return;
    }
    let rx = gopark::signal::notify(&[libc::SIGUSR1]).unwrap();
    raise(libc::SIGUSR1);
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(libc::SIGUSR1));
    println!("first received");
    drop(rx);
    raise(libc::SIGUSR1); // SIGUSR1's default action ends the process
    std::thread::sleep(Duration::from_secs(20));
    println!("survived");
}

#[test]
fn uncatchable_and_fault_signals_are_refused() {
    for sig in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, 0, 1000] {
        let e = gopark::signal::notify(&[sig]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    }
    assert!(gopark::signal::notify(&[]).is_err());
}
