//! EMFILE windows: the process's soft `RLIMIT_NOFILE` drops below every
//! descriptor in use, so every new descriptor fails with EMFILE; a few
//! connections made during the window (their sockets created before it:
//! connect(2) needs no new descriptor) wait in the listen queue while the
//! server's accept fails. After the limit is restored the server must
//! accept and serve them, as Go's accept loop does after backing off.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::echo::{self, Bufs, Peer};
use super::rng::Rng;
use super::stats::C;
use super::Phase;

/// Connections made during each window.
const PROBES: usize = 4;
/// The largest message each sends (one, once the window has closed).
const PROBE_MAX: usize = 64 << 10;
/// The soft limit during a window: below every descriptor (0, 1 and 2 are
/// the standard streams), so no new one can be allocated.
const WINDOW_LIMIT: u64 = 3;

/// The soft and hard `RLIMIT_NOFILE`.
pub fn nofile() -> io::Result<(u64, u64)> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `l` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((l.rlim_cur, l.rlim_max))
}

/// Sets the soft `RLIMIT_NOFILE` (at most the hard one).
pub fn set_nofile(soft: u64) -> io::Result<()> {
    let (_, hard) = nofile()?;
    let l = libc::rlimit {
        rlim_cur: soft.min(hard),
        rlim_max: hard,
    };
    // SAFETY: `l` is a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Restores the soft limit when dropped, so a window always ends.
struct Window<'a> {
    ph: &'a Phase,
    soft: u64,
}

impl Drop for Window<'_> {
    fn drop(&mut self) {
        if let Err(e) = set_nofile(self.soft) {
            self.ph
                .stats
                .error("EMFILE window: restore the limit", &e, false);
        }
        self.ph.end_fd_window();
    }
}

/// Opens an EMFILE window every 0.5 to 2 s until the phase stops.
pub fn injector(ph: Arc<Phase>, mut rng: Rng) {
    while ph.nap(Duration::from_millis(rng.range(500, 2000))) {
        window(&ph, &mut rng);
    }
}

fn window(ph: &Phase, rng: &mut Rng) {
    let socks: Vec<OwnedFd> = (0..PROBES)
        .filter_map(|_| match socket() {
            Ok(s) => Some(s),
            Err(e) => {
                ph.stats.error("EMFILE window: socket", &e, false);
                None
            }
        })
        .collect();
    let soft = match nofile() {
        Ok((soft, _)) => soft,
        Err(e) => return ph.stats.error("EMFILE window: getrlimit", &e, false),
    };
    let before = ph.stats.get(C::AcceptEmfile);
    ph.begin_fd_window();
    let guard = Window { ph, soft };
    if let Err(e) = set_nofile(WINDOW_LIMIT) {
        return ph.stats.error("EMFILE window: setrlimit", &e, false);
    }
    ph.stats.inc(C::EmfileWindows);
    let mut connected = Vec::new();
    for s in socks {
        match connect(&s, ph.addr) {
            Ok(()) => connected.push(s),
            Err(e) => ph.stats.error("EMFILE window: connect", &e, false),
        }
    }
    // Hold the window until the server's accept has failed, then a little.
    let t = Instant::now();
    while ph.stats.get(C::AcceptEmfile) == before && t.elapsed() < ph.cfg.client_bound {
        std::thread::sleep(Duration::from_millis(1));
    }
    let seen = ph.stats.get(C::AcceptEmfile) > before;
    ph.stats
        .max(C::EmfileWaitMaxMillis, t.elapsed().as_millis() as u64);
    std::thread::sleep(Duration::from_millis(rng.range(1, 30)));
    drop(guard);
    if !seen && !connected.is_empty() {
        ph.stats.fail(format!(
            "EMFILE window: the server's accept did not fail within {:?}",
            ph.cfg.client_bound
        ));
    }
    // The limit is back: the server must now accept and serve every one,
    // at once (one waiting for another could outlast the server's read
    // deadline). Gopark streams on plain threads (they block in poll(2)).
    std::thread::scope(|scope| {
        for s in connected {
            let mut r = rng.fork();
            scope.spawn(move || {
                ph.stats.inc(C::EmfileProbes);
                let conn = gopark::net::TcpStream::from(std::net::TcpStream::from(s));
                let bound = Some(ph.cfg.client_bound);
                let mut bufs = Bufs::new(PROBE_MAX);
                let result = conn
                    .set_read_timeout(bound)
                    .and_then(|()| conn.set_write_timeout(bound))
                    .map_err(|e| ("EMFILE probe: set timeouts".to_owned(), e))
                    .and_then(|()| {
                        echo::lockstep(
                            ph,
                            &conn,
                            Peer::EmfileProbe,
                            &mut r,
                            1,
                            PROBE_MAX,
                            &mut bufs,
                        )
                    });
                if let Err((place, e)) = result {
                    ph.stats.error(&place, &e, false);
                }
            });
        }
    });
}

/// A blocking TCP socket, not yet connected.
fn socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// connect(2) on a blocking socket; allocates no descriptor.
fn connect(s: &OwnedFd, addr: SocketAddr) -> io::Result<()> {
    let SocketAddr::V4(a) = addr else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "IPv4 only"));
    };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    loop {
        // SAFETY: `sin` is a valid sockaddr_in of the size passed; the
        // descriptor is open (borrowed from `s`).
        let r = unsafe {
            libc::connect(
                s.as_raw_fd(),
                (&sin as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
