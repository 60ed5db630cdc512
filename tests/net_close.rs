//! Close semantics: the descriptor number stays owned until the socket is
//! dropped (so every `BorrowedFd` stays valid), `incoming()` ends after a
//! close, and a closed-socket error is recognisable.

mod common;

use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use common::tcp_pair;
use gopark::net::unix::{UnixListener, UnixStream};
use gopark::net::{TcpListener, TcpStream};

fn is_socket(fd: RawFd) -> bool {
    // SAFETY: all-zero bytes are a valid stat; fstat fills it or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` outlives the call; a bad fd is reported as an error.
    let r = unsafe { libc::fstat(fd, &mut st) };
    r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
}

/// A descriptor borrowed with `as_fd` stays valid after `close`: the number
/// is not handed to a file opened next, and a write through the borrow does
/// not reach that file.
#[test]
fn borrowed_fd_stays_valid_after_close() {
    let (a, _b) = tcp_pair();
    let borrowed = a.as_fd();
    let n = borrowed.as_raw_fd();
    a.close().unwrap();
    assert!(
        is_socket(n),
        "the borrowed number no longer refers to a socket"
    );
    let path = std::env::temp_dir().join(format!("gopark-close-{}", std::process::id()));
    let files: Vec<std::fs::File> = (0..8)
        .map(|_| std::fs::File::create(&path).unwrap())
        .collect();
    assert!(
        files.iter().all(|f| f.as_raw_fd() != n),
        "a file got the number of a closed socket that is still borrowed"
    );
    // SAFETY: writes 4 bytes from a live buffer to the borrowed descriptor.
    let _ = unsafe { libc::write(borrowed.as_raw_fd(), b"leak".as_ptr().cast(), 4) };
    drop(files);
    assert_eq!(std::fs::read(&path).unwrap(), b"");
    std::fs::remove_file(&path).unwrap();
    drop(a);
}

/// The close really releases the connection (the peer reads end-of-file)
/// even though the number stays reserved until the drop.
#[test]
fn close_is_seen_by_the_peer_before_the_drop() {
    gopark::run(|| {
        let (a, mut b) = tcp_pair();
        a.close().unwrap();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(b.read(&mut [0u8; 4]).unwrap(), 0);
        drop(a);
    });
}

/// `into_raw_fd` after `close` hands out a descriptor the caller owns (a
/// valid one, no longer the connection), never a number that was closed.
#[test]
fn into_raw_fd_after_close_is_owned() {
    let (a, _b) = tcp_pair();
    a.close().unwrap();
    let fd = a.into_raw_fd();
    assert!(is_socket(fd), "into_raw_fd returned a closed number");
    // SAFETY: `into_raw_fd` handed ownership of `fd` to us.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
}

/// `incoming()` ends once the listener is closed, whether the close comes
/// before the call or while a coroutine is parked in it.
#[test]
fn incoming_ends_after_close() {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.close().unwrap();
        assert!(l.incoming().next().is_none());

        let l = std::sync::Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = l.local_addr().unwrap();
        let server = {
            let l = l.clone();
            gopark::go!(move || {
                let mut n = 0;
                for s in l.incoming() {
                    let Ok(_s) = s else { continue };
                    n += 1;
                }
                n
            })
        };
        let _c = TcpStream::connect(addr).unwrap();
        gopark::time::sleep(Duration::from_millis(50));
        l.close().unwrap();
        assert_eq!(server.join().unwrap(), 1);
    });
}

#[test]
fn unix_incoming_ends_after_close() {
    let p = std::env::temp_dir().join(format!("gopark-inc-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    let l = UnixListener::bind(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    l.close().unwrap();
    assert!(l.incoming().next().is_none());
}

/// A closed-socket error is recognisable with `gopark::net::is_closed` and
/// keeps its kind; other errors are not mistaken for it.
#[test]
fn closed_errors_are_recognisable() {
    let (a, b) = UnixStream::pair().unwrap();
    a.close().unwrap();
    let e = (&a).read(&mut [0u8; 1]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotConnected);
    assert!(gopark::net::is_closed(&e), "{e}");
    assert!(e
        .get_ref()
        .is_some_and(|i| i.is::<gopark::net::ErrClosed>()));
    let e = a.close().unwrap_err();
    assert!(gopark::net::is_closed(&e));
    drop(b);
    let (c, _d) = UnixStream::pair().unwrap();
    c.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    let e = (&c).read(&mut [0u8; 1]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(!gopark::net::is_closed(&e), "{e}");
    assert!(!gopark::net::is_closed(&std::io::Error::from(
        ErrorKind::NotConnected
    )));
}
