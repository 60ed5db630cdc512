//! Address resolution off the worker: [`ToSocketAddrs`] and [`lookup_host`].
//!
//! std's `ToSocketAddrs` resolves a host name with a blocking
//! `getaddrinfo`, which would stall every coroutine of the worker. gopark's
//! trait is implemented for the same types as std's; a numeric address is
//! parsed on the spot, and only a host name is resolved, on the runtime's
//! blocking pool ([`blocking`](crate::blocking)).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// The addresses an argument resolved to.
#[derive(Debug)]
pub struct Addrs(AddrsInner);

#[derive(Debug)]
enum AddrsInner {
    One(std::option::IntoIter<SocketAddr>),
    Many(std::vec::IntoIter<SocketAddr>),
}

impl Iterator for Addrs {
    type Item = SocketAddr;

    fn next(&mut self) -> Option<SocketAddr> {
        match &mut self.0 {
            AddrsInner::One(i) => i.next(),
            AddrsInner::Many(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            AddrsInner::One(i) => i.size_hint(),
            AddrsInner::Many(i) => i.size_hint(),
        }
    }
}

fn one(a: SocketAddr) -> io::Result<Addrs> {
    Ok(Addrs(AddrsInner::One(Some(a).into_iter())))
}

fn many(v: Vec<SocketAddr>) -> Addrs {
    Addrs(AddrsInner::Many(v.into_iter()))
}

/// `getaddrinfo` on the blocking pool (inline on a plain thread). A failure
/// is a `lookup` [`OpError`](super::OpError) naming the host, with the
/// resolver's error (and its kind) inside.
fn lookup(host: String, port: u16) -> io::Result<Addrs> {
    crate::blocking(move || {
        match std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port)) {
            Ok(it) => Ok(many(it.collect())),
            Err(e) => Err(super::error::wrap("lookup", "", || Some(host), e)),
        }
    })
}

/// A malformed address string, named in the error (std's says only
/// "invalid socket address").
fn malformed(addr: &str, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("address {addr}: {what}"),
    )
}

mod sealed {
    use super::Addrs;

    /// What the sealed trait does: resolve (parse, or look up off the
    /// worker). `bare_host`: a string without a port is a host name (port 0).
    pub trait Resolve {
        fn resolve(&self, bare_host: bool) -> std::io::Result<Addrs>;
    }
}

use sealed::Resolve;

/// A value that names one or more socket addresses: gopark's version of
/// `std::net::ToSocketAddrs`, implemented for the same types (`SocketAddr`,
/// `SocketAddrV4`, `SocketAddrV6`, `(IpAddr, u16)`, `(Ipv4Addr, u16)`,
/// `(Ipv6Addr, u16)`, `(&str, u16)`, `(String, u16)`, `&str`, `String`,
/// `&[SocketAddr]`, and references to them), so that code written for std
/// compiles unchanged. The difference: a host name is resolved on the
/// runtime's blocking pool, so the coroutine parks instead of blocking its
/// worker in `getaddrinfo`. Addresses, and strings that parse as one
/// (`"127.0.0.1:80"`, `"[::1]:80"`), are used as they are, with no detour.
///
/// The trait is sealed. A type that implements only std's trait can be
/// resolved with [`blocking`](crate::blocking) and passed as a slice:
///
/// ```
/// use std::net::{SocketAddr, ToSocketAddrs};
/// gopark::run(|| {
///     let addrs: Vec<SocketAddr> =
///         gopark::blocking(|| ("127.0.0.1", 0).to_socket_addrs().unwrap().collect());
///     let l = gopark::net::TcpListener::bind(&addrs[..]).unwrap();
///     assert!(l.local_addr().unwrap().ip().is_loopback());
/// });
/// ```
pub trait ToSocketAddrs: Resolve {}

impl<T: Resolve + ?Sized> ToSocketAddrs for T {}

macro_rules! resolve_addr {
    ($($t:ty),*) => {$(
        impl Resolve for $t {
            fn resolve(&self, _: bool) -> io::Result<Addrs> {
                one(SocketAddr::from(*self))
            }
        }
    )*};
}

resolve_addr!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl Resolve for (&str, u16) {
    fn resolve(&self, _: bool) -> io::Result<Addrs> {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => one(SocketAddr::new(ip, port)),
            Err(_) => lookup(host.to_owned(), port),
        }
    }
}

impl Resolve for (String, u16) {
    fn resolve(&self, b: bool) -> io::Result<Addrs> {
        (self.0.as_str(), self.1).resolve(b)
    }
}

impl Resolve for str {
    fn resolve(&self, bare_host: bool) -> io::Result<Addrs> {
        if let Ok(a) = self.parse::<SocketAddr>() {
            return one(a);
        }
        if bare_host {
            // A host alone ("localhost", "::1", "example.com"): port 0.
            if let Ok(ip) = self.parse::<IpAddr>() {
                return one(SocketAddr::new(ip, 0));
            }
            if !self.contains(':') {
                return lookup(self.to_owned(), 0);
            }
        }
        // "host:port", split at the last colon as std does.
        let Some((host, port)) = self.rsplit_once(':') else {
            return Err(malformed(self, "missing port"));
        };
        let Ok(port) = port.parse::<u16>() else {
            return Err(malformed(self, "invalid port"));
        };
        (host, port).resolve(bare_host)
    }
}

impl Resolve for String {
    fn resolve(&self, b: bool) -> io::Result<Addrs> {
        self.as_str().resolve(b)
    }
}

impl Resolve for [SocketAddr] {
    fn resolve(&self, _: bool) -> io::Result<Addrs> {
        Ok(many(self.to_vec()))
    }
}

impl<T: Resolve + ?Sized> Resolve for &T {
    fn resolve(&self, b: bool) -> io::Result<Addrs> {
        (**self).resolve(b)
    }
}

/// Resolves a host name to socket addresses without blocking the worker:
/// in a coroutine the lookup (`getaddrinfo`) runs on the runtime's blocking
/// pool while the coroutine parks; on a plain thread it runs inline.
///
/// Takes everything [`TcpStream::connect`](crate::net::TcpStream::connect)
/// takes (`"example.com:443"`, `("example.com", 443)`, an address), and also
/// a host without a port (`"localhost"`, as Go's `net.LookupHost`), whose
/// addresses then carry port 0. Numeric addresses are parsed, not looked up.
///
/// # Errors
/// The resolver's error (unknown host, no network) with its kind, inside an
/// [`OpError`](crate::net::OpError) that names the host ("lookup
/// nosuch.invalid: ..."), or [`InvalidInput`](io::ErrorKind::InvalidInput)
/// for a malformed string. Socket functions given a host name fail with the
/// same lookup error.
///
/// ```
/// gopark::run(|| {
///     let addrs: Vec<_> = gopark::net::lookup_host("localhost").unwrap().collect();
///     assert!(addrs.iter().all(|a| a.ip().is_loopback()));
///     let a = gopark::net::lookup_host("127.0.0.1:8080").unwrap().next().unwrap();
///     assert_eq!(a.port(), 8080);
/// });
/// ```
pub fn lookup_host<A: ToSocketAddrs>(host: A) -> io::Result<impl Iterator<Item = SocketAddr>> {
    host.resolve(true)
}

/// The addresses of a socket function's argument (as std's
/// `to_socket_addrs`, with names resolved off the worker).
pub(super) fn resolve<A: ToSocketAddrs>(addr: &A) -> io::Result<Addrs> {
    addr.resolve(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_forms_parse_like_std() {
        fn check(got: io::Result<Addrs>, want: &str) {
            let got: Vec<_> = got.unwrap().collect();
            assert_eq!(got, vec![want.parse::<SocketAddr>().unwrap()]);
        }
        check(resolve(&"127.0.0.1:80"), "127.0.0.1:80");
        check(resolve(&"[::1]:80"), "[::1]:80");
        check(resolve(&("10.0.0.1", 9u16)), "10.0.0.1:9");
        check(resolve(&(String::from("::1"), 7u16)), "[::1]:7");
        check(resolve(&(IpAddr::from([1, 2, 3, 4]), 5u16)), "1.2.3.4:5");
        let s = ["1.1.1.1:1".parse().unwrap(), "2.2.2.2:2".parse().unwrap()];
        assert_eq!(resolve(&&s[..]).unwrap().count(), 2);
        // Malformed: std's kind, and the input named.
        for (bad, why) in [
            ("localhost", "missing port"),
            ("localhost:http", "invalid port"),
        ] {
            let e = resolve(&bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert_eq!(e.to_string(), format!("address {bad}: {why}"));
        }
        // An unparsable IPv6 form is a host name for std too.
        assert_eq!(
            resolve(&"::1:80").unwrap().collect::<Vec<_>>(),
            vec!["[::1]:80".parse::<SocketAddr>().unwrap()]
        );
    }
}
