//! Every socket type used from plain threads (no coroutine anywhere): ops
//! block the thread in poll(2), with deadlines and close still honoured.

use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gopark::net::unix::{UnixDatagram, UnixListener, UnixStream};
use gopark::net::{TcpListener, TcpStream, UdpSocket};

#[test]
fn tcp_from_plain_threads() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let srv = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
    });
    let mut c = TcpStream::connect(addr).unwrap();
    let msg: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let w = {
        let mut c2 = c.try_clone().unwrap();
        let msg = msg.clone();
        thread::spawn(move || c2.write_all(&msg).unwrap())
    };
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back).unwrap();
    assert!(back == msg);
    w.join().unwrap();
    srv.join().unwrap();
}

#[test]
fn thread_read_deadline_and_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_s, _) = l.accept().unwrap();
    let t = Instant::now();
    c.set_read_deadline(Some(t + Duration::from_millis(100)))
        .unwrap();
    assert_eq!(
        c.read(&mut [0u8; 1]).unwrap_err().kind(),
        ErrorKind::TimedOut
    );
    assert!(t.elapsed() >= Duration::from_millis(100));
    c.set_read_deadline(None).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(60))).unwrap();
    let t = Instant::now();
    assert_eq!(
        c.read(&mut [0u8; 1]).unwrap_err().kind(),
        ErrorKind::TimedOut
    );
    assert!(t.elapsed() >= Duration::from_millis(60));
    // The accept of a listener with an expired deadline fails too.
    l.set_deadline(Some(Instant::now())).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::TimedOut);
}

#[test]
fn thread_blocked_read_woken_by_close_from_another_thread() {
    let (a, _b) = UnixStream::pair().unwrap();
    let a = Arc::new(a);
    let r = {
        let a = a.clone();
        thread::spawn(move || (&*a).read(&mut [0u8; 1]).unwrap_err())
    };
    thread::sleep(Duration::from_millis(30));
    let t = Instant::now();
    a.close().unwrap();
    let e = r.join().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotConnected);
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn udp_and_unix_from_plain_threads() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let baddr = b.local_addr().unwrap();
    let r = thread::spawn(move || {
        let mut buf = [0u8; 16];
        let (n, _) = b.recv_from(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    thread::sleep(Duration::from_millis(20));
    a.send_to(b"udp", baddr).unwrap();
    assert_eq!(r.join().unwrap(), b"udp");

    let path = std::env::temp_dir().join(format!("gopark-thread-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    let p = path.clone();
    let c = thread::spawn(move || {
        let mut s = UnixStream::connect(&p).unwrap();
        s.write_all(b"unix").unwrap();
    });
    let (mut s, _) = l.accept().unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got, "unix");
    c.join().unwrap();
    std::fs::remove_file(&path).unwrap();

    let (x, y) = UnixDatagram::pair().unwrap();
    let r = thread::spawn(move || {
        let mut buf = [0u8; 8];
        y.recv(&mut buf).unwrap()
    });
    thread::sleep(Duration::from_millis(20));
    x.send(b"dgram").unwrap();
    assert_eq!(r.join().unwrap(), 5);
}

#[test]
fn coroutine_and_thread_share_a_connection() {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let echo = rt.spawn(move || {
        let mut buf = [0u8; 256];
        loop {
            let n = (&a).read(&mut buf).unwrap();
            if n == 0 {
                return;
            }
            (&a).write_all(&buf[..n]).unwrap();
        }
    });
    for i in 0..200u32 {
        (&b).write_all(&i.to_le_bytes()).unwrap();
        let mut buf = [0u8; 4];
        (&b).read_exact(&mut buf).unwrap();
        assert_eq!(u32::from_le_bytes(buf), i);
    }
    b.shutdown(gopark::net::Shutdown::Write).unwrap();
    echo.join().unwrap();
}

/// `write_all` from plain threads holds the write lock for the whole
/// buffer too: two threads' blocks do not interleave, though each fills
/// the socket buffer and waits many times.
#[test]
fn plain_thread_write_alls_do_not_interleave() {
    const BLOCK: usize = 4 << 20;
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let (a, b) = rt.run(|| gopark::net::unix::UnixStream::pair().unwrap());
    let a = std::sync::Arc::new(a);
    let writers: Vec<_> = [b'x', b'y']
        .into_iter()
        .map(|byte| {
            let a = a.clone();
            std::thread::spawn(move || (&*a).write_all(&vec![byte; BLOCK]).unwrap())
        })
        .collect();
    let mut buf = vec![0u8; BLOCK];
    for _ in 0..2 {
        (&b).read_exact(&mut buf).unwrap();
        let first = buf[0];
        assert_eq!(buf.iter().position(|&x| x != first), None, "interleaved");
    }
    for w in writers {
        w.join().unwrap();
    }
}
