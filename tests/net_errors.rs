//! Go's error behaviour: peer close, peer reset without SIGPIPE, half-close,
//! connection refused, and EMFILE from accept (in a child process).

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
mod common;
use common::tcp_pair;
use std::time::Duration;

use gopark::net::{Shutdown, TcpListener, TcpStream};

fn rt() -> gopark::Runtime {
    gopark::Runtime::builder().workers(2).build().unwrap()
}

#[test]
fn read_after_peer_close_is_eof() {
    rt().run(|| {
        let (mut c, s) = tcp_pair();
        (&s).write_all(b"bye").unwrap();
        drop(s);
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"bye");
        assert_eq!(c.read(&mut [0u8; 4]).unwrap(), 0, "EOF stays EOF");
    });
}

#[test]
fn parked_read_sees_eof_when_the_peer_closes() {
    rt().run(|| {
        let (mut c, s) = tcp_pair();
        let closer = gopark::go!(move || {
            gopark::time::sleep(Duration::from_millis(30));
            drop(s);
        });
        assert_eq!(c.read(&mut [0u8; 4]).unwrap(), 0);
        closer.join().unwrap();
    });
}

fn set_linger_zero(s: &TcpStream) {
    let lg = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `lg` outlives the call and the length matches.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lg as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as _,
        )
    };
    assert_eq!(r, 0);
}

/// The reset scenario; run in a child with SIGPIPE's default action
/// (terminate) restored, so a missing MSG_NOSIGNAL would kill it.
fn reset_scenario() {
    // SAFETY: restoring a default signal disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    rt().run(|| {
        let (mut c, s) = tcp_pair();
        set_linger_zero(&s);
        drop(s); // RST
        gopark::time::sleep(Duration::from_millis(50));
        let e = c.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
        let e = c.write(b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe, "{e}");
        let e = c.write_all(&[1u8; 100_000]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe, "{e}");

        // Write first: ECONNRESET, then EPIPE.
        let (mut c, s) = tcp_pair();
        set_linger_zero(&s);
        drop(s);
        gopark::time::sleep(Duration::from_millis(50));
        let e = c.write(b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
        let e = c.write(b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe, "{e}");
    });
    println!("reset-scenario-ok");
}

/// Runs test `name` in a child process and checks that it succeeded.
fn run_child(name: &str) -> std::process::Output {
    let out = common::child(name);
    assert!(out.status.success(), "child failed: {:?}", out.status);
    out
}

#[test]
fn peer_reset_errors_then_epipe_and_no_sigpipe_death() {
    const NAME: &str = "peer_reset_errors_then_epipe_and_no_sigpipe_death";
    if common::in_child(NAME) {
        return reset_scenario();
    }
    let out = run_child(NAME);
    assert!(String::from_utf8_lossy(&out.stdout).contains("reset-scenario-ok"));
}

#[test]
fn half_close() {
    rt().run(|| {
        let (c, s) = tcp_pair();
        (&c).write_all(b"request").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut req = Vec::new();
        (&s).read_to_end(&mut req).unwrap();
        assert_eq!(req, b"request");
        (&s).write_all(b"response").unwrap();
        drop(s);
        let mut resp = Vec::new();
        (&c).read_to_end(&mut resp).unwrap();
        assert_eq!(resp, b"response");
    });
}

#[test]
fn connect_refused() {
    rt().run(|| {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let e = TcpStream::connect(addr).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
        let msg = e.to_string();
        assert!(msg.contains("connect"), "{msg}");
        assert!(msg.contains(&format!("127.0.0.1:{}", addr.port())), "{msg}");
        let op = gopark::net::OpError::from_io(&e).expect("an OpError");
        assert_eq!((op.op(), op.net()), ("connect", "tcp"));
        assert_eq!(op.io_error().raw_os_error(), Some(libc::ECONNREFUSED));
        assert_eq!(gopark::net::raw_os_error(&e), Some(libc::ECONNREFUSED));
        // The message once, and the original as the source.
        let src = std::error::Error::source(&e).expect("a source");
        assert_eq!(src.to_string(), op.io_error().to_string());

        let e = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
        assert!(
            e.to_string().starts_with(&format!("connect tcp {addr}: ")),
            "{e}"
        );
    });
}

#[test]
fn bind_in_use_names_the_address() {
    rt().run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let e = TcpListener::bind(addr).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("bind") && msg.contains(&addr.to_string()),
            "{msg}"
        );
        assert_eq!(gopark::net::raw_os_error(&e), Some(libc::EADDRINUSE));

        let u = gopark::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let ua = u.local_addr().unwrap();
        let e = gopark::net::UdpSocket::bind(ua).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");
        assert!(
            e.to_string().starts_with(&format!("bind udp {ua}: ")),
            "{e}"
        );
    });
}

#[test]
fn unix_errors_name_the_path() {
    use gopark::net::unix::{UnixDatagram, UnixListener, UnixStream};
    rt().run(|| {
        let p = std::env::temp_dir().join(format!("gopark-err-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let e = UnixStream::connect(&p).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("connect unix {}: ", p.display())),
            "{e}"
        );
        let _l = UnixListener::bind(&p).unwrap();
        let e = UnixListener::bind(&p).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("bind unix {}: ", p.display())),
            "{e}"
        );
        let e = UnixDatagram::bind(&p).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");
        assert!(e.to_string().contains("bind unixgram"), "{e}");
        std::fs::remove_file(&p).unwrap();
    });
}

#[test]
fn closed_and_would_block_errors_are_not_wrapped() {
    rt().run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let e = l.accept().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
        assert!(gopark::net::OpError::from_io(&e).is_none(), "{e}");
        l.close().unwrap();
        let e = l.accept().unwrap_err();
        assert!(gopark::net::is_closed(&e), "{e}");
        assert_eq!(e.to_string(), "use of closed network connection");
    });
}

#[test]
fn debug_shows_the_addresses() {
    rt().run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let la = l.local_addr().unwrap();
        let d = format!("{l:?}");
        assert!(
            d.starts_with("TcpListener {") && d.contains(&format!("addr: {la}")),
            "{d}"
        );
        assert!(d.contains("fd: "), "{d}");
        let c = TcpStream::connect(la).unwrap();
        let ca = c.local_addr().unwrap();
        let d = format!("{c:?}");
        assert!(d.contains(&format!("addr: {ca}")), "{d}");
        assert!(d.contains(&format!("peer: {la}")), "{d}");
        c.close().unwrap();
        let d = format!("{c:?}");
        assert!(d.starts_with("TcpStream {") && d.contains("fd: "), "{d}");

        let u = gopark::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let ua = u.local_addr().unwrap();
        assert!(format!("{u:?}").contains(&format!("addr: {ua}")), "{u:?}");
        assert!(!format!("{u:?}").contains("peer"), "{u:?}");
        u.connect(la).unwrap();
        assert!(format!("{u:?}").contains(&format!("peer: {la}")), "{u:?}");

        let (a, _b) = gopark::net::unix::UnixStream::pair().unwrap();
        let d = format!("{a:?}");
        assert!(d.contains("addr: ") && d.contains("peer: "), "{d}");
    });
}

/// Lowers RLIMIT_NOFILE so accept hits EMFILE, checks the error reaches
/// the caller, frees descriptors and checks the server accepts again.
fn emfile_scenario() {
    let rt = rt();
    let l = rt.run(|| TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = l.local_addr().unwrap();
    let l = std::sync::Arc::new(l);
    // Clients from a plain thread so their descriptors are counted too.
    // RLIMIT_NOFILE bounds descriptor *numbers*, not their count (inherited
    // descriptors can leave holes or sit far above the rest), so the limit
    // is set from the lowest free number: at least one and at most three
    // accepts fit under it.
    let clients: Vec<std::net::TcpStream> = (0..8)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    // SAFETY: F_DUPFD on stdin returns a new descriptor (the lowest free
    // number) or -1; the probe descriptor is closed right away.
    let lowest_free = unsafe { libc::fcntl(0, libc::F_DUPFD, 0) };
    assert!(lowest_free >= 0);
    // SAFETY: `lowest_free` was just opened above and is owned here.
    unsafe { libc::close(lowest_free) };
    let lim = libc::rlimit {
        rlim_cur: lowest_free as u64 + 3,
        rlim_max: 20_000,
    };
    // SAFETY: `lim` is a valid rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let lp = l.clone();
    let (accepted, err) = rt.run(move || {
        let mut got = Vec::new();
        loop {
            match lp.accept() {
                Ok((s, _)) => got.push(s),
                Err(e) => return (got, e),
            }
        }
    });
    let std_kind = std::io::Error::from_raw_os_error(libc::EMFILE).kind();
    assert_eq!(err.kind(), std_kind, "{err}");
    assert_eq!(gopark::net::raw_os_error(&err), Some(libc::EMFILE), "{err}");
    assert!(
        err.to_string().starts_with(&format!("accept tcp {addr}: ")),
        "{err}"
    );
    assert!(!accepted.is_empty(), "some connections fit under the limit");
    let n = accepted.len();
    drop(accepted); // free descriptors: the server keeps going
    let lp = l.clone();
    // The rest one at a time (each needs only one free descriptor); every
    // accepted stream is usable, then closed again.
    let more = rt.run(move || {
        for _ in 0..8 - n {
            let (s, _) = lp.accept().unwrap();
            (&s).write_all(b"k").unwrap();
        }
        8 - n
    });
    assert_eq!(more + n, 8);
    drop(clients);
    println!("emfile-scenario-ok");
}

#[test]
fn accept_returns_emfile_and_the_server_recovers() {
    const NAME: &str = "accept_returns_emfile_and_the_server_recovers";
    if common::in_child(NAME) {
        return emfile_scenario();
    }
    let out = run_child(NAME);
    assert!(String::from_utf8_lossy(&out.stdout).contains("emfile-scenario-ok"));
}

/// A name that cannot be resolved fails with an error naming the host
/// (Go's "lookup nosuch.invalid: no such host"), with the resolver's kind.
/// `.invalid` never resolves (RFC 6761), with or without a network; if
/// the resolver itself is unavailable the error still names the host.
#[test]
fn unresolvable_name_is_named() {
    // std's own error for the same lookup, for its kind and errno.
    let std_err = std::net::ToSocketAddrs::to_socket_addrs("nosuch.invalid:80").unwrap_err();
    rt().run(move || {
        let lookups = [
            gopark::net::lookup_host("nosuch.invalid:80").map(drop),
            gopark::net::lookup_host("nosuch.invalid").map(drop),
            gopark::net::lookup_host(("nosuch.invalid", 80)).map(drop),
            TcpStream::connect("nosuch.invalid:80").map(drop),
            TcpListener::bind("nosuch.invalid:0").map(drop),
            gopark::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .send_to(b"x", "nosuch.invalid:9")
                .map(drop),
        ];
        for r in lookups {
            let e = r.unwrap_err();
            assert!(e.to_string().starts_with("lookup nosuch.invalid: "), "{e}");
            assert_eq!(e.kind(), std_err.kind(), "{e}");
            assert_eq!(gopark::net::raw_os_error(&e), std_err.raw_os_error());
            let op = gopark::net::OpError::from_io(&e).expect("an OpError");
            assert_eq!(
                (op.op(), op.net(), op.addr()),
                ("lookup", "", Some("nosuch.invalid"))
            );
            assert_eq!(op.io_error().to_string(), std_err.to_string());
        }
    });
}

/// A non-blocking stream in a coroutine: after a short read (which arms
/// the "receive queue drained" shortcut), data that arrives later is read,
/// not reported as WouldBlock for ever. The socket never parked, so it is
/// registered with no poller and no readiness is ever recorded for it.
#[test]
fn nonblocking_read_after_a_short_read_sees_new_data() {
    rt().run(|| {
        let (c, s) = tcp_pair();
        c.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            (&c).read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        (&s).write_all(b"ab").unwrap();
        let read_some = |buf: &mut [u8]| {
            for _ in 0..200 {
                match (&c).read(buf) {
                    Ok(n) => return n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        gopark::time::sleep(Duration::from_millis(10))
                    }
                    Err(e) => panic!("read: {e}"),
                }
            }
            panic!("no data after 2 s of WouldBlock");
        };
        assert_eq!(read_some(&mut buf), 2, "a short read");
        (&s).write_all(b"cd").unwrap();
        assert_eq!(read_some(&mut buf), 2);
        assert_eq!(&buf[..2], b"cd");
    });
}
