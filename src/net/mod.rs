//! Sockets for coroutines, with the names and signatures of `std::net`, so
//! that code written for std ports by changing the import.
//!
//! Inside a coroutine an op that would block parks the coroutine on the
//! runtime's netpoller (an epoll instance per worker, as Go's netpoller;
//! docs/ARCHITECTURE.md in the repository describes it) and the worker runs
//! other coroutines; on a plain thread the same op blocks the thread.
//!
//! ```
//! use std::io::{Read, Write};
//! use gopark::net::{TcpListener, TcpStream};
//!
//! gopark::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     gopark::go!(move || {
//!         let (mut conn, _) = listener.accept().unwrap();
//!         let mut buf = [0u8; 5];
//!         conn.read_exact(&mut buf).unwrap();
//!         conn.write_all(&buf).unwrap();
//!     });
//!     let mut c = TcpStream::connect(addr).unwrap();
//!     c.write_all(b"hello").unwrap();
//!     let mut back = [0u8; 5];
//!     c.read_exact(&mut back).unwrap();
//!     assert_eq!(&back, b"hello");
//! });
//! ```
//!
//! ## Go's behaviour, kept
//! - A read after the peer closed returns `Ok(0)`; writing to a reset peer
//!   returns an error (ECONNRESET, then EPIPE) and never raises SIGPIPE.
//! - Deadlines: `set_deadline`/`set_read_deadline`/`set_write_deadline`
//!   take an absolute `Instant`, may be set from any coroutine or thread
//!   while an op is parked (a deadline in the past wakes it at once), and an
//!   expired deadline fails ops with [`io::ErrorKind::TimedOut`] ("i/o
//!   timeout") until it is set again. std's `set_read_timeout` and
//!   `set_write_timeout` bound each op instead, with the same error.
//! - `close()` wakes the ops parked on the socket with "use of closed
//!   network connection" ([`io::ErrorKind::NotConnected`]), and later ops
//!   fail the same way; the connection is released (the peer sees it) when
//!   the last of them returns. The descriptor *number* stays allocated until
//!   the socket is dropped, so a `BorrowedFd` from `as_fd` stays valid across
//!   a `close` (it then refers to a placeholder socket that is not
//!   connected). Dropping closes too. `incoming()` ends after a close.
//! - Recognise the closed-socket error (Go's `errors.Is(err, net.ErrClosed)`)
//!   with [`is_closed`]; it carries [`ErrClosed`]:
//!
//! ```
//! use std::io::Read;
//! use gopark::net::TcpListener;
//!
//! gopark::run(|| {
//!     let listener = std::sync::Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
//!     let l = listener.clone();
//!     let server = gopark::go!(move || match l.accept() {
//!         Err(e) if gopark::net::is_closed(&e) => "closed while accepting",
//!         Err(_) => "another error",
//!         Ok(_) => "a connection",
//!     });
//!     gopark::time::sleep(std::time::Duration::from_millis(10));
//!     listener.close().unwrap();
//!     assert_eq!(server.join().unwrap(), "closed while accepting");
//!
//!     // A closed stream: same error, recognisable the same way.
//!     let (a, _b) = gopark::net::unix::UnixStream::pair().unwrap();
//!     a.close().unwrap();
//!     let err = (&a).read(&mut [0u8; 4]).unwrap_err();
//!     assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
//!     assert!(gopark::net::is_closed(&err));
//! });
//! ```
//! - A failed `connect`, `bind`, `accept` or `send_to` names the operation
//!   and the address, as Go's errors do: "connect tcp 127.0.0.1:1:
//!   Connection refused (os error 111)". The [`io::ErrorKind`] is the
//!   underlying error's; see [`OpError`] for its parts and the errno. A
//!   host name that does not resolve names the host: "lookup
//!   nosuch.invalid: failed to lookup address information: Name or service
//!   not known".
//! - Accepted and connected TCP streams have `TCP_NODELAY` on (as in Go);
//!   listeners set `SO_REUSEADDR`; accept retries ECONNABORTED and EINTR
//!   and returns EMFILE to the caller.
//! - Plain threads: ops block in poll(2); a close or a deadline set by
//!   another thread is noticed within 50 ms.
//!
//! ## Not kept: the descriptor limit
//! Go raises the soft `RLIMIT_NOFILE` to the hard limit when a program
//! starts; gopark, a library, leaves process-wide limits alone (as std and
//! tokio do). Many shells start programs with a soft limit of 1024, so a
//! server expecting more connections raises it itself, e.g. with
//! `libc::setrlimit(libc::RLIMIT_NOFILE, ..)` at start-up or `ulimit -n`;
//! past the limit, `accept` returns EMFILE ("Too many open files").
//!
//! Every socket is registered with the runtime it was created in (the
//! default runtime on a plain thread): its poller reports the readiness that
//! parked coroutines (of any runtime) wait for. Once that runtime has been
//! dropped, plain threads can keep using the socket (they wait in poll(2)),
//! and an op of a coroutine succeeds if it need not wait; one that would have
//! to wait fails instead with [`io::ErrorKind::Other`], "the runtime
//! this socket was registered with has shut down" — also a coroutine of
//! another runtime that was parked on it when the runtime was dropped. Conversions from std types and `FromRawFd` switch the
//! descriptor to non-blocking mode, which is shared with its duplicates;
//! `into_raw_fd` hands it back still non-blocking.

use std::io;

mod addr;
mod error;
mod fd;
mod fd_mutex;
pub(crate) mod sys;
mod tcp;
mod udp;
pub mod unix;

pub use addr::{lookup_host, ToSocketAddrs};
pub use error::{raw_os_error, OpError};
pub use std::net::Shutdown;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;

/// The error inside the [`io::Error`] of an op on a socket that was closed
/// (Go's `net.ErrClosed`): its kind is [`NotConnected`](io::ErrorKind::NotConnected)
/// and it reads "use of closed network connection". Test for it with
/// [`is_closed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrClosed;

impl std::fmt::Display for ErrClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("use of closed network connection")
    }
}

impl std::error::Error for ErrClosed {}

/// True if `err` is the error of an op on a socket that was closed (Go's
/// `errors.Is(err, net.ErrClosed)`): it carries [`ErrClosed`]. Other errors
/// of the same kind, [`NotConnected`](io::ErrorKind::NotConnected) (a send
/// on a socket that was never connected, say), are not.
///
/// ```
/// use std::io::{ErrorKind, Read};
/// let (a, _b) = gopark::net::unix::UnixStream::pair().unwrap();
/// a.close().unwrap();
/// let err = (&a).read(&mut [0u8; 8]).unwrap_err();
/// assert!(gopark::net::is_closed(&err));
/// assert!(!gopark::net::is_closed(&ErrorKind::NotConnected.into()));
/// ```
pub fn is_closed(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotConnected && err.get_ref().is_some_and(|e| e.is::<ErrClosed>())
}

/// Maps "no address resolved" the way std does.
fn no_addr() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "could not resolve to any addresses",
    )
}

/// Runs `f` on each address until one succeeds (std's `each_addr`); a
/// host name is resolved off the worker ([`ToSocketAddrs`]).
fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(&std::net::SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr::resolve(&addr)? {
        match f(&a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(no_addr))
}

/// `close`, `set_deadline`, `take_error`, `set_nonblocking` for a type with
/// an `inner: NetFd<_>` field. `$make` is doc-example code that binds `s`.
macro_rules! closable {
    ($ty:ident, $make:literal) => {
        impl $ty {
            /// Closes the socket, Go style: ops parked on it (in any coroutine)
            /// wake with a "use of closed network connection" error
            /// ([`NotConnected`](std::io::ErrorKind::NotConnected), see
            /// [`is_closed`](crate::net::is_closed)), later ops fail the same
            /// way, and the connection is released once the last op in flight
            /// has returned. The descriptor number stays reserved (pointing at
            /// a placeholder socket that is not connected) until the socket is
            /// dropped, so descriptors borrowed with `as_fd` stay valid.
            /// Dropping the socket closes it too.
            ///
            /// # Errors
            /// If it was already closed.
            ///
            /// ```
            #[doc = $make]
            /// s.close().unwrap();
            /// assert!(s.close().is_err());
            /// ```
            pub fn close(&self) -> std::io::Result<()> {
                self.inner.close()
            }

            /// Go's `SetDeadline`: every read and write (accept, receive,
            /// send) fails with [`TimedOut`](std::io::ErrorKind::TimedOut)
            /// ("i/o timeout") once `deadline` has passed, until a new one is
            /// set; `None` clears it. May be called from any coroutine or
            /// thread while an op is parked: a deadline in the past wakes it
            /// at once.
            ///
            /// ```
            /// use std::time::Instant;
            #[doc = $make]
            /// s.set_deadline(Some(Instant::now())).unwrap();
            /// s.set_deadline(None).unwrap();
            /// ```
            pub fn set_deadline(
                &self,
                deadline: Option<std::time::Instant>,
            ) -> std::io::Result<()> {
                self.inner.set_deadline(None, deadline)
            }

            /// Takes the pending socket error (`SO_ERROR`), like std's.
            ///
            /// ```
            #[doc = $make]
            /// assert!(s.take_error().unwrap().is_none());
            /// ```
            pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
                self.inner.get()?.take_error()
            }

            /// With `true`, ops that would wait fail with
            /// [`WouldBlock`](std::io::ErrorKind::WouldBlock) instead (the
            /// descriptor itself is always non-blocking).
            ///
            /// ```
            #[doc = $make]
            /// s.set_nonblocking(true).unwrap();
            /// ```
            pub fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
                self.inner.set_nonblocking(nonblocking)
            }
        }
    };
}

/// Read/write deadlines and std timeouts for a connection type.
macro_rules! timeouts {
    ($ty:ident, $make:literal) => {
        impl $ty {
            /// Go's `SetReadDeadline`: like [`set_deadline`](Self::set_deadline)
            /// for reads only.
            ///
            /// ```
            /// use std::time::{Duration, Instant};
            #[doc = $make]
            /// s.set_read_deadline(Some(Instant::now() + Duration::from_secs(30))).unwrap();
            /// ```
            pub fn set_read_deadline(
                &self,
                deadline: Option<std::time::Instant>,
            ) -> std::io::Result<()> {
                self.inner
                    .set_deadline(Some($crate::sm::poll_desc::Mode::Read), deadline)
            }

            /// Go's `SetWriteDeadline`: like [`set_deadline`](Self::set_deadline)
            /// for writes only.
            ///
            /// ```
            /// use std::time::{Duration, Instant};
            #[doc = $make]
            /// s.set_write_deadline(Some(Instant::now() + Duration::from_secs(30))).unwrap();
            /// ```
            pub fn set_write_deadline(
                &self,
                deadline: Option<std::time::Instant>,
            ) -> std::io::Result<()> {
                self.inner
                    .set_deadline(Some($crate::sm::poll_desc::Mode::Write), deadline)
            }

            /// std's read timeout: each later read waits at most `dur`, then
            /// fails with [`TimedOut`](std::io::ErrorKind::TimedOut). `None`
            /// waits forever.
            ///
            /// # Errors
            /// `Some(Duration::ZERO)` is rejected, as in std.
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = $make]
            /// s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            /// assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_secs(5)));
            /// ```
            pub fn set_read_timeout(
                &self,
                dur: Option<std::time::Duration>,
            ) -> std::io::Result<()> {
                self.inner
                    .set_timeout($crate::sm::poll_desc::Mode::Read, dur)
            }

            /// std's write timeout: each later write waits at most `dur`.
            ///
            /// # Errors
            /// `Some(Duration::ZERO)` is rejected, as in std.
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = $make]
            /// s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            /// assert_eq!(s.write_timeout().unwrap(), Some(Duration::from_secs(5)));
            /// ```
            pub fn set_write_timeout(
                &self,
                dur: Option<std::time::Duration>,
            ) -> std::io::Result<()> {
                self.inner
                    .set_timeout($crate::sm::poll_desc::Mode::Write, dur)
            }

            /// The read timeout set with [`set_read_timeout`](Self::set_read_timeout).
            ///
            /// ```
            #[doc = $make]
            /// assert_eq!(s.read_timeout().unwrap(), None);
            /// ```
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                self.inner.timeout($crate::sm::poll_desc::Mode::Read)
            }

            /// The write timeout set with [`set_write_timeout`](Self::set_write_timeout).
            ///
            /// ```
            #[doc = $make]
            /// assert_eq!(s.write_timeout().unwrap(), None);
            /// ```
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                self.inner.timeout($crate::sm::poll_desc::Mode::Write)
            }
        }
    };
}

/// `Read` and `Write` for a stream type and for a shared reference to it
/// (one coroutine may read while another writes), through `NetFd::stream_io`.
macro_rules! stream_io {
    ($ty:ident) => {
        impl std::io::Read for &$ty {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let len = buf.len();
                self.inner
                    .stream_io($crate::sm::poll_desc::Mode::Read, len, |fd| {
                        $crate::net::sys::sys_recv(fd, buf)
                    })
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                let len = $crate::net::sys::total(bufs);
                self.inner
                    .stream_io($crate::sm::poll_desc::Mode::Read, len, |fd| {
                        $crate::net::sys::sys_readv(fd, bufs)
                    })
            }
        }

        impl std::io::Write for &$ty {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.inner
                    .stream_io($crate::sm::poll_desc::Mode::Write, buf.len(), |fd| {
                        $crate::net::sys::sys_send(fd, buf)
                    })
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                let len = $crate::net::sys::total(bufs);
                self.inner
                    .stream_io($crate::sm::poll_desc::Mode::Write, len, |fd| {
                        $crate::net::sys::sys_sendv(fd, bufs)
                    })
            }

            /// Go's `Write`: the whole buffer under one hold of the write
            /// lock, so concurrent `write_all`s never interleave.
            fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
                self.inner.stream_write_all(buf)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Read for $ty {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                (&*self).read(buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                (&*self).read_vectored(bufs)
            }
        }

        impl std::io::Write for $ty {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (&*self).write(buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                (&*self).write_vectored(bufs)
            }

            fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
                (&*self).write_all(buf)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

/// Raw descriptor traits and the conversion from the std type.
macro_rules! fd_traits {
    ($ty:ident, $std:ty $(, $peer:ident)?) => {
        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.inner.raw()
            }
        }

        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                // SAFETY: the number stays open and owned by `self` until
                // `self` is dropped, which the borrow outlives: `close` only
                // re-points it at a placeholder (net::fd, "Closing keeps the
                // number"), and only Drop closes it.
                unsafe { std::os::fd::BorrowedFd::borrow_raw(self.inner.raw()) }
            }
        }

        impl std::os::fd::IntoRawFd for $ty {
            /// Hands the descriptor to the caller, restored to blocking mode
            /// and deregistered from the runtime. After
            /// [`close`](Self::close) the connection is gone: the descriptor
            /// handed out is then a placeholder socket that is not connected,
            /// still the caller's to close.
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                self.inner.into_raw()
            }
        }

        impl std::os::fd::FromRawFd for $ty {
            /// Takes ownership of `fd`, switches it to non-blocking mode and
            /// registers it with the current runtime.
            ///
            /// # Panics
            /// If the descriptor cannot be registered with epoll.
            ///
            /// # Safety
            /// `fd` must be an open socket of the right type that the caller
            /// owns and hands over (std's `FromRawFd` contract).
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> Self {
                // SAFETY: the caller hands over ownership of an open socket.
                let s = unsafe { <$std as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                Self::from(s)
            }
        }

        impl From<$std> for $ty {
            /// Wraps a std socket: switches it to non-blocking mode and
            /// registers it with the current runtime.
            ///
            /// # Panics
            /// If the descriptor cannot be registered with epoll.
            fn from(s: $std) -> Self {
                $ty {
                    inner: $crate::net::fd::NetFd::from_blocking(s).unwrap_or_else(|e| {
                        panic!("gopark: cannot register a socket with the poller: {e}")
                    }),
                }
            }
        }

        /// Like std's: the local address, the peer's (for a connected
        /// socket) and the descriptor; an address that cannot be read (the
        /// socket is closed, say) is left out.
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut d = f.debug_struct(stringify!($ty));
                if let Ok(a) = self.local_addr() {
                    d.field("addr", &a);
                }
                $(
                    let _ = stringify!($peer);
                    if let Ok(p) = self.peer_addr() {
                        d.field("peer", &p);
                    }
                )?
                d.field("fd", &self.inner.raw()).finish()
            }
        }
    };
}

use closable;
use fd_traits;
use stream_io;
use timeouts;
