//! TCP: [`TcpListener`] and [`TcpStream`].

use std::io;
use std::net::{self, Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

use super::error::wrap;
use super::fd::NetFd;
use super::{closable, each_addr, fd_traits, stream_io, sys, timeouts, ToSocketAddrs};
use crate::sm::poll_desc::Mode;

/// Backlog passed to listen(2); the kernel caps it at `net.core.somaxconn`.
const BACKLOG: libc::c_int = 4096;

/// A TCP listening socket, like `std::net::TcpListener`: `accept` parks the
/// calling coroutine until a connection arrives. `SO_REUSEADDR` is set.
///
/// ```
/// use gopark::net::{TcpListener, TcpStream};
/// gopark::run(|| {
///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = l.local_addr().unwrap();
///     let c = gopark::go!(move || TcpStream::connect(addr).unwrap());
///     let (conn, peer) = l.accept().unwrap();
///     assert_eq!(conn.peer_addr().unwrap(), peer);
///     c.join().unwrap();
/// });
/// ```
pub struct TcpListener {
    inner: NetFd<net::TcpListener>,
}

/// A TCP connection, like `std::net::TcpStream`: reads and writes park the
/// calling coroutine instead of blocking its worker. `TCP_NODELAY` is on
/// for connected and accepted streams (as in Go); turn it off with
/// [`set_nodelay(false)`](TcpStream::set_nodelay).
///
/// `Read` and `Write` are implemented for `&TcpStream` too, so one
/// coroutine can read while another writes; two concurrent readers (or
/// writers) take turns.
///
/// ```
/// use std::io::{Read, Write};
/// use gopark::net::{TcpListener, TcpStream};
/// gopark::run(|| {
///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = l.local_addr().unwrap();
///     gopark::go!(move || {
///         let (mut s, _) = l.accept().unwrap();
///         s.write_all(b"hi").unwrap();
///     });
///     let mut s = TcpStream::connect(addr).unwrap();
///     assert!(s.nodelay().unwrap());
///     let mut got = String::new();
///     s.read_to_string(&mut got).unwrap();
///     assert_eq!(got, "hi");
/// });
/// ```
pub struct TcpStream {
    inner: NetFd<net::TcpStream>,
}

/// An iterator over the connections of a [`TcpListener`], from
/// [`TcpListener::incoming`]: each item is one `accept`. It ends (returns
/// `None`) once the listener is closed, so a loop that skips errors does not
/// spin on "use of closed network connection"; other errors are yielded.
///
/// ```
/// use gopark::net::{TcpListener, TcpStream};
/// gopark::run(|| {
///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = l.local_addr().unwrap();
///     gopark::go!(move || TcpStream::connect(addr).unwrap());
///     let first = l.incoming().next().unwrap().unwrap();
///     assert!(first.peer_addr().is_ok());
/// });
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        match self.listener.accept() {
            Err(e) if super::is_closed(&e) => None,
            r => Some(r.map(|(s, _)| s)),
        }
    }
}

impl TcpListener {
    /// Creates a listener bound to `addr` (each resolved address is tried
    /// in turn), with `SO_REUSEADDR` set.
    ///
    /// ```
    /// let l = gopark::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(l.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            TcpListener::bind_addr(a).map_err(|e| wrap("bind", "tcp", || Some(a.to_string()), e))
        })
    }

    fn bind_addr(a: &SocketAddr) -> io::Result<TcpListener> {
        let fd = sys::socket(sys::family(a), libc::SOCK_STREAM)?;
        // SAFETY: a fresh socket we own; the std type closes it on error.
        let l = unsafe { net::TcpListener::from_raw_fd(fd) };
        sys::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        let raw = sys::raw_addr(a);
        // SAFETY: `raw` holds a valid sockaddr of `raw.len` bytes.
        sys::cvt(unsafe { libc::bind(fd, raw.as_ptr(), raw.len) })?;
        // SAFETY: plain syscall on our socket.
        sys::cvt(unsafe { libc::listen(fd, BACKLOG) })?;
        Ok(TcpListener {
            inner: NetFd::new(l)?,
        })
    }

    /// Waits for a connection (parking the coroutine) and returns it with
    /// the peer's address. ECONNABORTED and EINTR are retried; EMFILE and
    /// ENFILE are returned to the caller, who may retry later.
    ///
    /// ```
    /// use gopark::net::{TcpListener, TcpStream};
    /// gopark::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = l.local_addr().unwrap();
    ///     gopark::go!(move || TcpStream::connect(addr).unwrap());
    ///     let (s, peer) = l.accept().unwrap();
    ///     assert_eq!(s.peer_addr().unwrap(), peer);
    /// });
    /// ```
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_inner().map_err(|e| {
            let addr = || self.local_addr().ok().map(|a| a.to_string());
            wrap("accept", "tcp", addr, e)
        })
    }

    fn accept_inner(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, st) = self.inner.io(Mode::Read, |l| sys::accept(l.as_raw_fd()))?;
        // SAFETY: accept4 returned a fresh descriptor we own.
        let s = unsafe { net::TcpStream::from_raw_fd(fd) };
        let peer = sys::std_addr(&st)?;
        let _ = sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
        crate::runtime::worker::note_accept();
        Ok((
            TcpStream {
                inner: NetFd::new(s)?,
            },
            peer,
        ))
    }

    /// An iterator over accepted connections; it ends once the listener is
    /// [closed](Self::close) (from any coroutine or thread, also while it
    /// waits).
    ///
    /// ```
    /// use gopark::net::{TcpListener, TcpStream};
    /// gopark::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = l.local_addr().unwrap();
    ///     gopark::go!(move || for _ in 0..2 { TcpStream::connect(addr).unwrap(); });
    ///     assert_eq!(l.incoming().take(2).filter(|c| c.is_ok()).count(), 2);
    ///     l.close().unwrap();
    ///     assert!(l.incoming().next().is_none());
    /// });
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address.
    ///
    /// ```
    /// let l = gopark::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get()?.local_addr()
    }

    /// A new listener on a duplicate of the descriptor, with its own
    /// deadlines (closing one does not close the other).
    ///
    /// ```
    /// let l = gopark::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let l2 = l.try_clone().unwrap();
    /// assert_eq!(l.local_addr().unwrap(), l2.local_addr().unwrap());
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        let dup = self.inner.get()?.try_clone()?;
        Ok(TcpListener {
            inner: NetFd::new(dup)?,
        })
    }

    /// Sets `IP_TTL`.
    ///
    /// ```
    /// let l = gopark::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// l.set_ttl(42).unwrap();
    /// assert_eq!(l.ttl().unwrap(), 42);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get()?.set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    ///
    /// ```
    /// let l = gopark::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.ttl().unwrap() > 0);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get()?.ttl()
    }
}

closable!(
    TcpListener,
    "let s = gopark::net::TcpListener::bind(\"127.0.0.1:0\").unwrap();"
);
fd_traits!(TcpListener, net::TcpListener);

/// Doc-example prelude: a connected stream `s` (and its listener `_l`).
macro_rules! stream_doc {
    () => {
        "let _l = gopark::net::TcpListener::bind(\"127.0.0.1:0\").unwrap();\n\
         let s = gopark::net::TcpStream::connect(_l.local_addr().unwrap()).unwrap();"
    };
}

impl TcpStream {
    fn connect_addr(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        TcpStream::connect_raw(addr, deadline)
            .map_err(|e| wrap("connect", "tcp", || Some(addr.to_string()), e))
    }

    fn connect_raw(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let fd = sys::socket(sys::family(addr), libc::SOCK_STREAM)?;
        // SAFETY: a fresh socket we own; the std type closes it on error.
        let s = unsafe { net::TcpStream::from_raw_fd(fd) };
        sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
        let pending = sys::start_connect(fd, &sys::raw_addr(addr))?;
        // Registered after connect(2): see NetFd::finish_connect.
        let inner = NetFd::new(s)?;
        if pending {
            inner.finish_connect(deadline)?;
        }
        Ok(TcpStream { inner })
    }

    /// Connects to `addr` (each resolved address in turn), parking the
    /// coroutine until the handshake completes. A host name is resolved on
    /// the blocking pool (see [`ToSocketAddrs`]).
    ///
    /// ```
    /// use gopark::net::{TcpListener, TcpStream};
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_addr(a, None))
    }

    /// Connects with a timeout; fails with
    /// [`TimedOut`](io::ErrorKind::TimedOut) when it passes.
    ///
    /// # Errors
    /// A zero timeout is rejected, as in std.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gopark::net::{TcpListener, TcpStream};
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect_timeout(&l.local_addr().unwrap(), Duration::from_secs(5));
    /// assert!(s.is_ok());
    /// ```
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_addr(addr, Some(Instant::now() + timeout))
    }

    /// The peer's address.
    ///
    /// ```
    #[doc = stream_doc!()]
    /// assert_eq!(s.peer_addr().unwrap(), _l.local_addr().unwrap());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get()?.peer_addr()
    }

    /// The local address.
    ///
    /// ```
    #[doc = stream_doc!()]
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get()?.local_addr()
    }

    /// Shuts down the read half, the write half, or both (`shutdown(2)`):
    /// after `Shutdown::Write` the peer reads end-of-file.
    ///
    /// ```
    /// use std::io::Read;
    /// use gopark::net::Shutdown;
    #[doc = stream_doc!()]
    /// let (mut peer, _) = _l.accept().unwrap();
    /// s.shutdown(Shutdown::Write).unwrap();
    /// assert_eq!(peer.read(&mut [0u8; 8]).unwrap(), 0); // end-of-file
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get()?.shutdown(how)
    }

    /// A new stream on a duplicate of the descriptor, with its own
    /// deadlines and timeouts (closing one does not close the other).
    ///
    /// ```
    #[doc = stream_doc!()]
    /// let s2 = s.try_clone().unwrap();
    /// assert_eq!(s.local_addr().unwrap(), s2.local_addr().unwrap());
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let dup = self.inner.get()?.try_clone()?;
        Ok(TcpStream {
            inner: NetFd::new(dup)?,
        })
    }

    /// Reads without consuming: the bytes stay for the next read. Parks
    /// until some data (or end-of-file) is there.
    ///
    /// ```
    /// use std::io::Write;
    /// use gopark::net::{TcpListener, TcpStream};
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (b, _) = l.accept().unwrap();
    /// a.write_all(b"xy").unwrap();
    /// let mut buf = [0u8; 2];
    /// let n = b.peek(&mut buf).unwrap();
    /// assert_eq!(&buf[..n], &b"xy"[..n]);
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.io(Mode::Read, |s| s.peek(buf))
    }

    /// Sets `TCP_NODELAY` (on by default for gopark streams).
    ///
    /// ```
    #[doc = stream_doc!()]
    /// s.set_nodelay(false).unwrap();
    /// assert!(!s.nodelay().unwrap());
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.get()?.set_nodelay(nodelay)
    }

    /// Reads `TCP_NODELAY`.
    ///
    /// ```
    #[doc = stream_doc!()]
    /// assert!(s.nodelay().unwrap());
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.get()?.nodelay()
    }

    /// Sets `IP_TTL`.
    ///
    /// ```
    #[doc = stream_doc!()]
    /// s.set_ttl(17).unwrap();
    /// assert_eq!(s.ttl().unwrap(), 17);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get()?.set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    ///
    /// ```
    #[doc = stream_doc!()]
    /// assert!(s.ttl().unwrap() > 0);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get()?.ttl()
    }
}

closable!(
    TcpStream,
    "let _l = gopark::net::TcpListener::bind(\"127.0.0.1:0\").unwrap();\n\
     let s = gopark::net::TcpStream::connect(_l.local_addr().unwrap()).unwrap();"
);
timeouts!(
    TcpStream,
    "let _l = gopark::net::TcpListener::bind(\"127.0.0.1:0\").unwrap();\n\
     let s = gopark::net::TcpStream::connect(_l.local_addr().unwrap()).unwrap();"
);
fd_traits!(TcpStream, net::TcpStream, peer);

stream_io!(TcpStream);
