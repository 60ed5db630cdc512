//! UDP: [`UdpSocket`].

use std::io;
use std::net::{self, SocketAddr};

use super::error::wrap;
use super::fd::NetFd;
use super::{addr, closable, each_addr, fd_traits, no_addr, timeouts, ToSocketAddrs};
use crate::sm::poll_desc::Mode;

/// A UDP socket, like `std::net::UdpSocket`: receives park the calling
/// coroutine until a datagram arrives.
///
/// ```
/// use gopark::net::UdpSocket;
/// gopark::run(|| {
///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
///     a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
///     let mut buf = [0u8; 16];
///     let (n, from) = b.recv_from(&mut buf).unwrap();
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
/// });
/// ```
pub struct UdpSocket {
    inner: NetFd<net::UdpSocket>,
}

/// Doc-example prelude: a bound socket `s`.
macro_rules! udp_doc {
    () => {
        "let s = gopark::net::UdpSocket::bind(\"127.0.0.1:0\").unwrap();"
    };
}

impl UdpSocket {
    /// Creates a socket bound to `addr` (each resolved address in turn).
    ///
    /// ```
    /// let s = gopark::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(s.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |a| {
            let bind = || {
                Ok(UdpSocket {
                    inner: NetFd::from_blocking(net::UdpSocket::bind(a)?)?,
                })
            };
            bind().map_err(|e| wrap("bind", "udp", || Some(a.to_string()), e))
        })
    }

    /// Receives one datagram and its sender's address, parking until one
    /// arrives. Bytes beyond `buf`'s length are discarded.
    ///
    /// ```
    #[doc = udp_doc!()]
    /// s.send_to(b"x", s.local_addr().unwrap()).unwrap();
    /// let mut buf = [0u8; 4];
    /// assert_eq!(s.recv_from(&mut buf).unwrap().0, 1);
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.io(Mode::Read, |s| s.recv_from(buf))
    }

    /// Like [`recv_from`](Self::recv_from) but leaves the datagram queued.
    ///
    /// ```
    #[doc = udp_doc!()]
    /// s.send_to(b"x", s.local_addr().unwrap()).unwrap();
    /// let mut buf = [0u8; 4];
    /// assert_eq!(s.peek_from(&mut buf).unwrap().0, 1);
    /// assert_eq!(s.recv_from(&mut buf).unwrap().0, 1);
    /// ```
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.io(Mode::Read, |s| s.peek_from(buf))
    }

    /// Sends one datagram to `addr` (the first resolved address).
    ///
    /// ```
    #[doc = udp_doc!()]
    /// assert_eq!(s.send_to(b"abc", s.local_addr().unwrap()).unwrap(), 3);
    /// ```
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let to = addr::resolve(&addr)?.next().ok_or_else(no_addr)?;
        self.inner
            .io(Mode::Write, |s| s.send_to(buf, to))
            .map_err(|e| wrap("send_to", "udp", || Some(to.to_string()), e))
    }

    /// Sets the default peer: `send`/`recv` use it and datagrams from other
    /// addresses are dropped.
    ///
    /// ```
    /// use gopark::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    /// ```
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        let s = self.inner.get()?;
        each_addr(addr, |a| {
            s.connect(a)
                .map_err(|e| wrap("connect", "udp", || Some(a.to_string()), e))
        })
    }

    /// Sends one datagram to the connected peer.
    ///
    /// ```
    #[doc = udp_doc!()]
    /// s.connect(s.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.send(b"hey").unwrap(), 3);
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.io(Mode::Write, |s| s.send(buf))
    }

    /// Receives one datagram from the connected peer, parking until one
    /// arrives.
    ///
    /// ```
    #[doc = udp_doc!()]
    /// s.connect(s.local_addr().unwrap()).unwrap();
    /// s.send(b"hey").unwrap();
    /// let mut buf = [0u8; 8];
    /// assert_eq!(s.recv(&mut buf).unwrap(), 3);
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.io(Mode::Read, |s| s.recv(buf))
    }

    /// Like [`recv`](Self::recv) but leaves the datagram queued.
    ///
    /// ```
    #[doc = udp_doc!()]
    /// s.connect(s.local_addr().unwrap()).unwrap();
    /// s.send(b"hey").unwrap();
    /// let mut buf = [0u8; 8];
    /// assert_eq!(s.peek(&mut buf).unwrap(), 3);
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.io(Mode::Read, |s| s.peek(buf))
    }

    /// The local address.
    ///
    /// ```
    #[doc = udp_doc!()]
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get()?.local_addr()
    }

    /// The connected peer's address.
    ///
    /// ```
    #[doc = udp_doc!()]
    /// assert!(s.peer_addr().is_err());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get()?.peer_addr()
    }

    /// A new socket on a duplicate of the descriptor.
    ///
    /// ```
    #[doc = udp_doc!()]
    /// let s2 = s.try_clone().unwrap();
    /// assert_eq!(s.local_addr().unwrap(), s2.local_addr().unwrap());
    /// ```
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        let dup = self.inner.get()?.try_clone()?;
        Ok(UdpSocket {
            inner: NetFd::new(dup)?,
        })
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// ```
    #[doc = udp_doc!()]
    /// s.set_broadcast(true).unwrap();
    /// assert!(s.broadcast().unwrap());
    /// ```
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.inner.get()?.set_broadcast(on)
    }

    /// Reads `SO_BROADCAST`.
    ///
    /// ```
    #[doc = udp_doc!()]
    /// assert!(!s.broadcast().unwrap());
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.inner.get()?.broadcast()
    }

    /// Sets `IP_TTL`.
    ///
    /// ```
    #[doc = udp_doc!()]
    /// s.set_ttl(9).unwrap();
    /// assert_eq!(s.ttl().unwrap(), 9);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get()?.set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    ///
    /// ```
    #[doc = udp_doc!()]
    /// assert!(s.ttl().unwrap() > 0);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get()?.ttl()
    }
}

closable!(
    UdpSocket,
    "let s = gopark::net::UdpSocket::bind(\"127.0.0.1:0\").unwrap();"
);
timeouts!(
    UdpSocket,
    "let s = gopark::net::UdpSocket::bind(\"127.0.0.1:0\").unwrap();"
);
fd_traits!(UdpSocket, net::UdpSocket, peer);
