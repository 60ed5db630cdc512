//! UDP and Unix-domain round trips inside coroutines, and the conversions
//! to and from std and raw descriptors.

use std::io::{ErrorKind, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::Duration;

use gopark::net::unix::{UnixDatagram, UnixListener, UnixStream};
use gopark::net::{TcpListener, TcpStream, UdpSocket};

fn rt() -> gopark::Runtime {
    gopark::Runtime::builder().workers(2).build().unwrap()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("gopark-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn udp_round_trip_parks_until_a_datagram_arrives() {
    rt().run(|| {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let saddr = server.local_addr().unwrap();
        let srv = gopark::go!(move || {
            let mut buf = [0u8; 1500];
            for _ in 0..100 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                server.send_to(&buf[..n], from).unwrap();
            }
        });
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(saddr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        for i in 0..100u32 {
            let msg = format!("datagram {i}");
            client.send(msg.as_bytes()).unwrap();
            let mut buf = [0u8; 64];
            let n = client.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], msg.as_bytes());
        }
        srv.join().unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        assert_eq!(
            client.recv(&mut [0u8; 4]).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
    });
}

#[test]
fn unix_stream_listener_round_trip_with_vectored_io() {
    let path = tmp("stream");
    let p = path.clone();
    rt().run(move || {
        let l = UnixListener::bind(&p).unwrap();
        let srv = gopark::go!(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            s.write_all(&got).unwrap();
        });
        let mut c = UnixStream::connect(&p).unwrap();
        let n = c
            .write_vectored(&[IoSlice::new(b"hello "), IoSlice::new(b"unix")])
            .unwrap();
        assert_eq!(n, 10);
        c.shutdown(gopark::net::Shutdown::Write).unwrap();
        let (mut x, mut y) = ([0u8; 6], [0u8; 4]);
        let mut bufs = [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)];
        let mut got = 0;
        while got < 10 {
            let n = c.read_vectored(&mut bufs).unwrap();
            assert!(n > 0);
            got += n;
            IoSliceMut::advance_slices(&mut &mut bufs[..], n);
        }
        assert_eq!((&x, &y), (b"hello ", b"unix"));
        srv.join().unwrap();
    });
    std::fs::remove_file(path).unwrap();
}

#[test]
fn unix_datagram_round_trip() {
    let path = tmp("dgram");
    let p = path.clone();
    rt().run(move || {
        let rx = UnixDatagram::bind(&p).unwrap();
        let tx = UnixDatagram::unbound().unwrap();
        let r = gopark::go!(move || {
            let mut buf = [0u8; 32];
            let (n, _) = rx.recv_from(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        gopark::time::sleep(Duration::from_millis(20));
        tx.send_to(b"unix datagram", &p).unwrap();
        assert_eq!(r.join().unwrap(), b"unix datagram");
        let (a, b) = UnixDatagram::pair().unwrap();
        a.send(b"pair").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(b.recv(&mut buf).unwrap(), 4);
    });
    std::fs::remove_file(path).unwrap();
}

#[test]
fn conversions_from_std_and_raw_descriptors() {
    rt().run(|| {
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_l.local_addr().unwrap();
        let l = TcpListener::from(std_l);
        let std_c = std::net::TcpStream::connect(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        let mut c = TcpStream::from(std_c);
        (&s).write_all(b"from std").unwrap();
        let mut buf = [0u8; 8];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"from std");
        // Round trip through a raw descriptor.
        let fd = c.into_raw_fd();
        // SAFETY: `fd` was just released by `into_raw_fd`.
        let mut c = unsafe { TcpStream::from_raw_fd(fd) };
        (&s).write_all(b"raw").unwrap();
        let mut buf = [0u8; 3];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"raw");
        // try_clone: independent handles on one connection.
        let c2 = c.try_clone().unwrap();
        c.close().unwrap();
        (&c2).write_all(b"!").unwrap();
        let mut one = [0u8; 1];
        (&s).read_exact(&mut one).unwrap();
        assert_eq!(&one, b"!");
    });
}

/// After `shutdown(Read)`, a datagram receive returns 0 at once (as std's),
/// in a coroutine and on a plain thread, instead of waiting forever.
#[test]
fn unix_datagram_recv_after_read_shutdown_returns_zero() {
    use gopark::net::unix::UnixDatagram;
    use gopark::net::Shutdown;
    let (a, _b) = UnixDatagram::pair().unwrap();
    a.shutdown(Shutdown::Read).unwrap();
    assert_eq!(a.recv(&mut [0u8; 16]).unwrap(), 0);
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let n = rt.run(move || {
        let (c, _d) = UnixDatagram::pair().unwrap();
        c.shutdown(Shutdown::Both).unwrap();
        c.recv(&mut [0u8; 16]).unwrap()
    });
    assert_eq!(n, 0);
}
