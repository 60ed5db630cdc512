//! Unix domain sockets, like `std::os::unix::net`: [`UnixListener`],
//! [`UnixStream`] and [`UnixDatagram`].
//!
//! ```
//! use std::io::{Read, Write};
//! use gopark::net::unix::UnixStream;
//! gopark::run(|| {
//!     let (mut a, mut b) = UnixStream::pair().unwrap();
//!     gopark::go!(move || a.write_all(b"over unix").unwrap());
//!     let mut got = [0u8; 9];
//!     b.read_exact(&mut got).unwrap();
//!     assert_eq!(&got, b"over unix");
//! });
//! ```
//!
//! `UnixStream::connect` issues a plain `connect(2)`, which on Linux blocks
//! the worker only while the listener's backlog is full.

use std::io;
use std::net::Shutdown;
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;

use super::error::wrap;
use super::fd::NetFd;
use super::{closable, fd_traits, stream_io, timeouts};
use crate::sm::poll_desc::Mode;

/// A Unix stream listener, like `std::os::unix::net::UnixListener`.
///
/// ```
/// use gopark::net::unix::{UnixListener, UnixStream};
/// let dir = std::env::temp_dir().join(format!("gopark-doc-l-{}", std::process::id()));
/// let _ = std::fs::remove_file(&dir);
/// gopark::run(move || {
///     let l = UnixListener::bind(&dir).unwrap();
///     let p = dir.clone();
///     gopark::go!(move || UnixStream::connect(&p).unwrap());
///     let (s, _) = l.accept().unwrap();
///     assert!(s.peer_addr().is_ok());
///     std::fs::remove_file(&dir).unwrap();
/// });
/// ```
pub struct UnixListener {
    inner: NetFd<net::UnixListener>,
}

/// A Unix stream connection, like `std::os::unix::net::UnixStream`.
///
/// ```
/// use std::io::{Read, Write};
/// let (mut a, mut b) = gopark::net::unix::UnixStream::pair().unwrap();
/// a.write_all(b"x").unwrap();
/// let mut c = [0u8; 1];
/// b.read_exact(&mut c).unwrap();
/// assert_eq!(&c, b"x");
/// ```
pub struct UnixStream {
    inner: NetFd<net::UnixStream>,
}

/// A Unix datagram socket, like `std::os::unix::net::UnixDatagram`.
///
/// ```
/// let (a, b) = gopark::net::unix::UnixDatagram::pair().unwrap();
/// a.send(b"dgram").unwrap();
/// let mut buf = [0u8; 8];
/// assert_eq!(b.recv(&mut buf).unwrap(), 5);
/// ```
pub struct UnixDatagram {
    inner: NetFd<net::UnixDatagram>,
}

/// An iterator over the connections of a [`UnixListener`], from
/// [`UnixListener::incoming`]: each item is one `accept`; it ends (returns
/// `None`) once the listener is closed.
///
/// ```
/// use gopark::net::unix::{UnixListener, UnixStream};
/// let p = std::env::temp_dir().join(format!("gopark-doc-i-{}", std::process::id()));
/// let _ = std::fs::remove_file(&p);
/// let l = UnixListener::bind(&p).unwrap();
/// let _c = UnixStream::connect(&p).unwrap();
/// assert!(l.incoming().next().unwrap().is_ok());
/// std::fs::remove_file(&p).unwrap();
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        match self.listener.accept() {
            Err(e) if super::is_closed(&e) => None,
            r => Some(r.map(|(s, _)| s)),
        }
    }
}

macro_rules! listener_doc {
    () => {
        "let p = std::env::temp_dir().join(format!(\"gopark-doc-{}-{}\", std::process::id(), line!()));\n\
         let _ = std::fs::remove_file(&p);\n\
         let s = gopark::net::unix::UnixListener::bind(&p).unwrap();\n\
         std::fs::remove_file(&p).unwrap();"
    };
}

impl UnixListener {
    /// Creates a listener bound to the path `path`.
    ///
    /// ```
    #[doc = listener_doc!()]
    /// assert!(s.local_addr().unwrap().as_pathname().is_some());
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let bind = || {
            Ok(UnixListener {
                inner: NetFd::from_blocking(net::UnixListener::bind(path)?)?,
            })
        };
        bind().map_err(|e| wrap("bind", "unix", || Some(path_str(path)), e))
    }

    /// Waits for a connection (parking the coroutine) and returns it with
    /// the peer's address.
    ///
    /// ```
    /// use gopark::net::unix::{UnixListener, UnixStream};
    /// let p = std::env::temp_dir().join(format!("gopark-doc-a-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let l = UnixListener::bind(&p).unwrap();
    /// let _c = UnixStream::connect(&p).unwrap();
    /// let (s, _) = l.accept().unwrap();
    /// assert!(s.local_addr().is_ok());
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        self.accept_inner().map_err(|e| {
            let addr = || {
                self.local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(path_str))
            };
            wrap("accept", "unix", addr, e)
        })
    }

    fn accept_inner(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = self.inner.io(Mode::Read, |l| match l.accept() {
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {
                Err(io::ErrorKind::Interrupted.into())
            }
            r => r,
        })?;
        crate::runtime::worker::note_accept();
        Ok((
            UnixStream {
                inner: NetFd::from_blocking(s)?,
            },
            a,
        ))
    }

    /// An iterator over accepted connections; it ends once the listener is
    /// [closed](Self::close).
    ///
    /// ```
    #[doc = listener_doc!()]
    /// // Each item is one `accept`. Non-blocking, with nobody connecting,
    /// // the next item is an error instead.
    /// s.set_nonblocking(true).unwrap();
    /// let next = s.incoming().next().expect("an item while open");
    /// assert_eq!(next.unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// s.close().unwrap();
    /// assert!(s.incoming().next().is_none());
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address.
    ///
    /// ```
    #[doc = listener_doc!()]
    /// assert!(s.local_addr().is_ok());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get()?.local_addr()
    }

    /// A new listener on a duplicate of the descriptor.
    ///
    /// ```
    #[doc = listener_doc!()]
    /// let s2 = s.try_clone().unwrap();
    /// assert!(s2.local_addr().is_ok());
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        let dup = self.inner.get()?.try_clone()?;
        Ok(UnixListener {
            inner: NetFd::new(dup)?,
        })
    }
}

closable!(
    UnixListener,
    "let p = std::env::temp_dir().join(format!(\"gopark-doc-{}-{}\", std::process::id(), line!()));\n\
     let _ = std::fs::remove_file(&p);\n\
     let s = gopark::net::unix::UnixListener::bind(&p).unwrap();\n\
     std::fs::remove_file(&p).unwrap();"
);
fd_traits!(UnixListener, net::UnixListener);

impl UnixStream {
    /// Connects to the listener bound to `path`.
    ///
    /// ```
    /// use gopark::net::unix::{UnixListener, UnixStream};
    /// let p = std::env::temp_dir().join(format!("gopark-doc-c-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let _l = UnixListener::bind(&p).unwrap();
    /// assert!(UnixStream::connect(&p).is_ok());
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let path = path.as_ref();
        let connect = || {
            Ok(UnixStream {
                inner: NetFd::from_blocking(net::UnixStream::connect(path)?)?,
            })
        };
        connect().map_err(|e| wrap("connect", "unix", || Some(path_str(path)), e))
    }

    /// A connected pair of streams (`socketpair(2)`).
    ///
    /// ```
    /// let (a, b) = gopark::net::unix::UnixStream::pair().unwrap();
    /// assert!(a.peer_addr().is_ok() && b.local_addr().is_ok());
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = net::UnixStream::pair()?;
        Ok((
            UnixStream {
                inner: NetFd::from_blocking(a)?,
            },
            UnixStream {
                inner: NetFd::from_blocking(b)?,
            },
        ))
    }

    /// The local address.
    ///
    /// ```
    /// let (a, _b) = gopark::net::unix::UnixStream::pair().unwrap();
    /// assert!(a.local_addr().unwrap().is_unnamed());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get()?.local_addr()
    }

    /// The peer's address.
    ///
    /// ```
    /// let (a, _b) = gopark::net::unix::UnixStream::pair().unwrap();
    /// assert!(a.peer_addr().unwrap().is_unnamed());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get()?.peer_addr()
    }

    /// Shuts down the read half, the write half, or both.
    ///
    /// ```
    /// use std::io::Read;
    /// use gopark::net::Shutdown;
    /// let (a, mut b) = gopark::net::unix::UnixStream::pair().unwrap();
    /// a.shutdown(Shutdown::Write).unwrap();
    /// assert_eq!(b.read(&mut [0u8; 4]).unwrap(), 0);
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get()?.shutdown(how)
    }

    /// A new stream on a duplicate of the descriptor.
    ///
    /// ```
    /// let (a, _b) = gopark::net::unix::UnixStream::pair().unwrap();
    /// let a2 = a.try_clone().unwrap();
    /// assert!(a2.peer_addr().is_ok());
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        let dup = self.inner.get()?.try_clone()?;
        Ok(UnixStream {
            inner: NetFd::new(dup)?,
        })
    }
}

closable!(
    UnixStream,
    "let (s, _peer) = gopark::net::unix::UnixStream::pair().unwrap();"
);
timeouts!(
    UnixStream,
    "let (s, _peer) = gopark::net::unix::UnixStream::pair().unwrap();"
);
fd_traits!(UnixStream, net::UnixStream, peer);

stream_io!(UnixStream);

macro_rules! dgram_doc {
    () => {
        "let (s, peer) = gopark::net::unix::UnixDatagram::pair().unwrap();"
    };
}

impl UnixDatagram {
    /// Creates a datagram socket bound to `path`.
    ///
    /// ```
    /// use gopark::net::unix::UnixDatagram;
    /// let p = std::env::temp_dir().join(format!("gopark-doc-d-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let rx = UnixDatagram::bind(&p).unwrap();
    /// let tx = UnixDatagram::unbound().unwrap();
    /// tx.send_to(b"hi", &p).unwrap();
    /// let mut buf = [0u8; 4];
    /// assert_eq!(rx.recv_from(&mut buf).unwrap().0, 2);
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        let path = path.as_ref();
        let bind = || {
            Ok(UnixDatagram {
                inner: NetFd::from_blocking(net::UnixDatagram::bind(path)?)?,
            })
        };
        bind().map_err(|e| wrap("bind", "unixgram", || Some(path_str(path)), e))
    }

    /// A socket bound to no address.
    ///
    /// ```
    /// let s = gopark::net::unix::UnixDatagram::unbound().unwrap();
    /// assert!(s.peer_addr().is_err());
    /// ```
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            inner: NetFd::from_blocking(net::UnixDatagram::unbound()?)?,
        })
    }

    /// A connected pair of datagram sockets.
    ///
    /// ```
    #[doc = dgram_doc!()]
    /// s.send(b"1").unwrap();
    /// assert_eq!(peer.recv(&mut [0u8; 2]).unwrap(), 1);
    /// ```
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = net::UnixDatagram::pair()?;
        Ok((
            UnixDatagram {
                inner: NetFd::from_blocking(a)?,
            },
            UnixDatagram {
                inner: NetFd::from_blocking(b)?,
            },
        ))
    }

    /// Sets the default peer to the socket bound to `path`.
    ///
    /// ```
    /// use gopark::net::unix::UnixDatagram;
    /// let p = std::env::temp_dir().join(format!("gopark-doc-dc-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let rx = UnixDatagram::bind(&p).unwrap();
    /// let tx = UnixDatagram::unbound().unwrap();
    /// tx.connect(&p).unwrap();
    /// tx.send(b"hi").unwrap(); // no address needed now
    /// let mut buf = [0u8; 4];
    /// assert_eq!(rx.recv(&mut buf).unwrap(), 2);
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        let path = path.as_ref();
        let connect = || self.inner.get()?.connect(path);
        connect().map_err(|e| wrap("connect", "unixgram", || Some(path_str(path)), e))
    }

    /// Sends one datagram to the socket bound to `path`.
    ///
    /// ```
    /// use gopark::net::unix::UnixDatagram;
    /// let p = std::env::temp_dir().join(format!("gopark-doc-ds-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let _rx = UnixDatagram::bind(&p).unwrap();
    /// assert_eq!(UnixDatagram::unbound().unwrap().send_to(b"abc", &p).unwrap(), 3);
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.inner
            .io(Mode::Write, |s| s.send_to(buf, path))
            .map_err(|e| wrap("send_to", "unixgram", || Some(path_str(path)), e))
    }

    /// Receives one datagram and its sender's address, parking until one
    /// arrives.
    ///
    /// ```
    #[doc = dgram_doc!()]
    /// peer.send(b"yo").unwrap();
    /// assert_eq!(s.recv_from(&mut [0u8; 4]).unwrap().0, 2);
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.io(Mode::Read, |s| match s.recv_from(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && read_shut_down(s) => {
                Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "socket is shut down for reading",
                ))
            }
            r => r,
        })
    }

    /// Sends one datagram to the connected peer.
    ///
    /// ```
    #[doc = dgram_doc!()]
    /// assert_eq!(s.send(b"abc").unwrap(), 3);
    /// # drop(peer);
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.io(Mode::Write, |s| s.send(buf))
    }

    /// Receives one datagram from the connected peer, parking until one
    /// arrives.
    ///
    /// ```
    #[doc = dgram_doc!()]
    /// peer.send(b"abc").unwrap();
    /// assert_eq!(s.recv(&mut [0u8; 8]).unwrap(), 3);
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.io(Mode::Read, |s| match s.recv(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && read_shut_down(s) => Ok(0),
            r => r,
        })
    }

    /// The local address.
    ///
    /// ```
    #[doc = dgram_doc!()]
    /// assert!(s.local_addr().is_ok());
    /// # drop(peer);
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get()?.local_addr()
    }

    /// The connected peer's address.
    ///
    /// ```
    #[doc = dgram_doc!()]
    /// assert!(s.peer_addr().is_ok());
    /// # drop(peer);
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get()?.peer_addr()
    }

    /// Shuts down the read half, the write half, or both.
    ///
    /// ```
    /// use gopark::net::Shutdown;
    #[doc = dgram_doc!()]
    /// s.shutdown(Shutdown::Both).unwrap();
    /// assert!(s.send(b"x").is_err()); // EPIPE
    /// assert_eq!(s.recv(&mut [0u8; 8]).unwrap(), 0); // as std: no more data
    /// # drop(peer);
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get()?.shutdown(how)
    }

    /// A new socket on a duplicate of the descriptor.
    ///
    /// ```
    #[doc = dgram_doc!()]
    /// assert!(s.try_clone().is_ok());
    /// # drop(peer);
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        let dup = self.inner.get()?.try_clone()?;
        Ok(UnixDatagram {
            inner: NetFd::new(dup)?,
        })
    }
}

closable!(
    UnixDatagram,
    "let s = gopark::net::unix::UnixDatagram::unbound().unwrap();"
);
timeouts!(
    UnixDatagram,
    "let s = gopark::net::unix::UnixDatagram::unbound().unwrap();"
);
fd_traits!(UnixDatagram, net::UnixDatagram, peer);

/// True if the datagram socket's read side was shut down. After
/// `shutdown(Read)` Linux answers a non-blocking receive with EAGAIN while
/// poll(2) reports the socket readable (POLLRDHUP), where a blocking receive
/// (std) returns 0 at once; without this check a receive would wait forever
/// (spin, on a plain thread). Only asked when a receive would block.
fn read_shut_down(s: &net::UnixDatagram) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd that outlives the call; zero timeout.
    let r = unsafe { libc::poll(&mut pfd, 1, 0) };
    r > 0 && pfd.revents & libc::POLLRDHUP != 0
}

/// A socket path for an error message.
fn path_str(path: &Path) -> String {
    path.display().to_string()
}
