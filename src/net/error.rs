//! [`OpError`]: socket errors that name the operation and the address.

use std::error::Error;
use std::fmt;
use std::io;

/// The error inside the [`io::Error`] of a failed `connect`, `bind`,
/// `accept` or `send_to` of [`gopark::net`](crate::net): it names the
/// operation, the network and the address, as Go's `*net.OpError` does
/// ("connect tcp 127.0.0.1:1: Connection refused (os error 111)"; Go says
/// "dial" and "listen" where gopark uses the std method names `connect` and
/// `bind`). A host name that cannot be resolved gives a `lookup` error
/// naming the host, with no network, as Go's `*net.DNSError` does
/// ("lookup nosuch.invalid: failed to lookup address information: ...").
///
/// The `io::Error` keeps the [`kind`](io::Error::kind) of the underlying
/// error, so `match err.kind()` works as with std. Its
/// [`raw_os_error`](io::Error::raw_os_error) is `None`, though: an
/// `io::Error` holds either an OS error code or a custom error, not both.
/// Get the code with [`net::raw_os_error`](crate::net::raw_os_error), or the
/// original error with [`OpError::from_io`] and [`io_error`](Self::io_error),
/// which is also the [`source`](Error::source).
///
/// Errors that already say what happened are not wrapped: the closed-socket
/// error ([`is_closed`](crate::net::is_closed)), and
/// [`WouldBlock`](io::ErrorKind::WouldBlock) of a non-blocking socket.
///
/// ```
/// use std::io::ErrorKind;
/// use gopark::net::{OpError, TcpListener, TcpStream};
///
/// let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // closed again
/// let err = TcpStream::connect(addr).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
/// assert!(err.to_string().starts_with(&format!("connect tcp {addr}: ")));
/// let op = OpError::from_io(&err).unwrap();
/// assert_eq!((op.op(), op.net(), op.addr()), ("connect", "tcp", Some(&*addr.to_string())));
/// assert_eq!(gopark::net::raw_os_error(&err), Some(libc::ECONNREFUSED));
/// ```
#[derive(Debug)]
pub struct OpError {
    op: &'static str,
    net: &'static str,
    addr: Option<String>,
    err: io::Error,
}

impl OpError {
    /// The operation: `"connect"`, `"bind"`, `"accept"`, `"send_to"` or
    /// `"lookup"` (name resolution).
    pub fn op(&self) -> &str {
        self.op
    }

    /// The network: `"tcp"`, `"udp"`, `"unix"` or `"unixgram"`; empty for a
    /// `lookup`.
    pub fn net(&self) -> &str {
        self.net
    }

    /// The address operated on (for `accept`, the listener's; for a
    /// `lookup`, the host name), if known.
    pub fn addr(&self) -> Option<&str> {
        self.addr.as_deref()
    }

    /// The underlying error, with its [`raw_os_error`](io::Error::raw_os_error).
    pub fn io_error(&self) -> &io::Error {
        &self.err
    }

    /// The `OpError` inside `err`, if there is one.
    pub fn from_io(err: &io::Error) -> Option<&OpError> {
        err.get_ref()?.downcast_ref::<OpError>()
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        if !self.net.is_empty() {
            write!(f, " {}", self.net)?;
        }
        if let Some(a) = &self.addr {
            write!(f, " {a}")?;
        }
        write!(f, ": {}", self.err)
    }
}

impl Error for OpError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.err)
    }
}

/// `err.raw_os_error()`, or that of the error inside an [`OpError`]: the
/// errno of a failed socket op whether or not it was wrapped.
///
/// ```
/// let err = gopark::net::TcpListener::bind("256.0.0.1:0").map(|_| ()).unwrap_err();
/// assert_eq!(gopark::net::raw_os_error(&err), err.raw_os_error()); // not an OS error
/// let e = std::io::Error::from_raw_os_error(libc::EMFILE);
/// assert_eq!(gopark::net::raw_os_error(&e), Some(libc::EMFILE));
/// ```
pub fn raw_os_error(err: &io::Error) -> Option<i32> {
    err.raw_os_error()
        .or_else(|| OpError::from_io(err).and_then(|op| op.err.raw_os_error()))
}

/// Wraps `err` in an [`OpError`] (keeping its kind) unless it already says
/// enough: closed socket, WouldBlock, or already an `OpError`.
pub(crate) fn wrap(
    op: &'static str,
    net: &'static str,
    addr: impl FnOnce() -> Option<String>,
    err: io::Error,
) -> io::Error {
    if err.kind() == io::ErrorKind::WouldBlock
        || super::is_closed(&err)
        || OpError::from_io(&err).is_some()
    {
        return err;
    }
    io::Error::new(
        err.kind(),
        OpError {
            op,
            net,
            addr: addr(),
            err,
        },
    )
}
