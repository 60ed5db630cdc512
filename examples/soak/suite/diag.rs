//! Both ends of a connection, described at the moment one of them timed out
//! where it should not have: the queues and TCP's view (`TCP_INFO`), so a
//! report can tell a lost wake-up (bytes waiting at a parked reader) from a
//! stall inside TCP (bytes held in a sender's queue).
//!
//! Both ends live in this process: each registers its descriptor under its
//! connection's client port while it is open.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use gopark::net::TcpStream;

/// Open descriptors, and what their readers do, by (client port, is the
/// server's end).
type Ends = HashMap<(u16, bool), (RawFd, Arc<Reads>)>;
static ENDS: Mutex<Option<Ends>> = Mutex::new(None);

/// Milliseconds since the first call (never 0).
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// What an end's reader is doing: in a read since when, or when its last
/// read returned.
#[derive(Debug, Default)]
pub struct Reads {
    since: AtomicU64,
    done: AtomicU64,
}

impl Reads {
    /// Runs `read`, recording that it is in progress.
    pub fn read<T>(&self, read: impl FnOnce() -> T) -> T {
        self.since.store(now_ms(), Relaxed);
        let r = read();
        self.since.store(0, Relaxed);
        self.done.store(now_ms(), Relaxed);
        r
    }

    fn describe(&self) -> String {
        let (since, done) = (self.since.load(Relaxed), self.done.load(Relaxed));
        match (since, done) {
            (0, 0) => "its reader has not read yet".into(),
            (0, d) => format!(
                "its reader is not in a read (the last returned {} ms ago)",
                now_ms() - d
            ),
            (s, _) => format!(
                "its reader has been in a read for {} ms",
                now_ms().saturating_sub(s)
            ),
        }
    }
}

/// Registers `conn` until the guard is dropped (drop it before `conn`).
pub struct End {
    key: Option<(u16, bool)>,
    reads: Arc<Reads>,
}

impl End {
    pub fn new(conn: &TcpStream, server: bool) -> End {
        let addr = if server {
            conn.peer_addr()
        } else {
            conn.local_addr()
        };
        let key = addr.ok().map(|a| (a.port(), server));
        let reads = Arc::new(Reads::default());
        if let Some(k) = key {
            ENDS.lock()
                .unwrap()
                .get_or_insert_with(HashMap::new)
                .insert(k, (conn.as_raw_fd(), reads.clone()));
        }
        End { key, reads }
    }

    /// Where this end's reads are recorded.
    pub fn reads(&self) -> Arc<Reads> {
        self.reads.clone()
    }

    /// The connection's client port, to describe it by.
    pub fn port(&self) -> Option<u16> {
        self.key.map(|(p, _)| p)
    }
}

/// Both ends of the connection with client port `port`, described.
pub fn describe(port: Option<u16>) -> String {
    let Some(port) = port else {
        return "no address".into();
    };
    // The lock keeps both descriptors registered, so open, meanwhile.
    let ends = ENDS.lock().unwrap();
    let map = ends.as_ref();
    let mut s = String::new();
    for (server, name) in [(false, "client"), (true, "server")] {
        match map.and_then(|m| m.get(&(port, server))) {
            Some((fd, reads)) => {
                let _ = write!(s, "{name} end: {}, {}; ", tcp_state(*fd), reads.describe());
            }
            None => {
                let _ = write!(s, "{name} end: gone; ");
            }
        }
    }
    s.truncate(s.trim_end_matches("; ").len());
    s
}

impl Drop for End {
    fn drop(&mut self) {
        if let Some(k) = self.key {
            if let Some(m) = ENDS.lock().unwrap().as_mut() {
                m.remove(&k);
            }
        }
    }
}

/// The queues and TCP's state of socket `fd`.
fn tcp_state(fd: RawFd) -> String {
    let mut inq: libc::c_int = 0;
    let mut outq: libc::c_int = 0;
    // SAFETY: FIONREAD and TIOCOUTQ each write one c_int; `fd` is open (the
    // caller holds the registry lock, and ends unregister before closing).
    unsafe {
        libc::ioctl(fd, libc::FIONREAD, &mut inq);
        libc::ioctl(fd, libc::TIOCOUTQ, &mut outq);
    }
    // SAFETY: all-zero bytes are a valid tcp_info.
    let mut ti: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `ti` is writable for `len` bytes; `fd` is open (as above).
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut ti as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return format!("receive queue {inq} B, send queue {outq} B");
    }
    format!(
        "receive queue {inq} B, send queue {outq} B (unacked {} segments), \
         state {}, retransmits {}, probes {}, backoff {}, rto {} ms, \
         last data sent {} ms ago, received {} ms ago, last ack {} ms ago",
        ti.tcpi_unacked,
        ti.tcpi_state,
        ti.tcpi_total_retrans,
        ti.tcpi_probes,
        ti.tcpi_backoff,
        ti.tcpi_rto / 1000,
        ti.tcpi_last_data_sent,
        ti.tcpi_last_data_recv,
        ti.tcpi_last_ack_recv,
    )
}
