//! The echo server, its well-behaved clients and the faulty peers.
//!
//! A message is a 24-byte header (magic, peer kind, length, seed) and a
//! payload of `length` bytes of the seed's pattern ([`rng::fill`]). The
//! server checks every payload byte and echoes it; the client checks every
//! echoed byte. The header names the kind of peer, so the server knows
//! which errors a connection may end with: a well-behaved peer none, a
//! faulty peer only those its fault causes.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopark::net::{Shutdown, TcpListener, TcpStream};

use super::diag;
use super::rng::{self, Rng};
use super::stats::{is_fd_limit, kind, Live, Role, C};
use super::Phase;

const MAGIC: u32 = 0x534f_414b; // "SOAK"
const HEADER: usize = 24;
/// Most a faulty peer sends before its fault, so that what it sent fits
/// in the socket buffers and the fault, not back-pressure, ends it.
const FAULT_PREFIX: u64 = 64 << 10;

/// Who is on the other end, as announced in each header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A client coroutine: whole messages only.
    Client,
    /// A client on a plain thread: whole messages only.
    Thread,
    /// Sends part of a message, then resets (SO_LINGER 0, close).
    Reset,
    /// Sends whole messages, shuts its write side, reads every echo.
    HalfClose,
    /// Sends and never reads: the server's write deadline must end it.
    Slowloris,
    /// Sends part of a message, then closes.
    VanishClose,
    /// Sends part of a message, then goes silent with the connection open:
    /// the server's read deadline must end it.
    VanishSilent,
    /// A connection made while the process was out of descriptors.
    EmfileProbe,
    /// Sends part of a message; a reader coroutine waits for the echo and
    /// more, and is woken by a `close()` or a past read deadline from
    /// another coroutine (Go's ways to cancel a blocked read).
    Cancel,
}

const PEERS: [Peer; 9] = [
    Peer::Client,
    Peer::Thread,
    Peer::Reset,
    Peer::HalfClose,
    Peer::Slowloris,
    Peer::VanishClose,
    Peer::VanishSilent,
    Peer::EmfileProbe,
    Peer::Cancel,
];

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Client => "client",
            Peer::Thread => "thread client",
            Peer::Reset => "reset peer",
            Peer::HalfClose => "half-close peer",
            Peer::Slowloris => "slowloris",
            Peer::VanishClose => "vanish-close peer",
            Peer::VanishSilent => "vanish-silent peer",
            Peer::EmfileProbe => "EMFILE probe",
            Peer::Cancel => "cancelling peer",
        }
    }

    /// Every byte sent is echoed and checked: nothing may be lost.
    fn whole(self) -> bool {
        matches!(
            self,
            Peer::Client | Peer::Thread | Peer::HalfClose | Peer::EmfileProbe
        )
    }

    /// Whether the server may see an error of `kind` on a `write` (else a
    /// read) from this peer: what its fault causes, nothing else.
    fn server_expects(self, write: bool, kind: &str) -> bool {
        match self {
            Peer::Reset => matches!(kind, "reset" | "broken pipe"),
            Peer::Slowloris => write && kind == "timeout",
            Peer::VanishClose | Peer::Cancel => {
                matches!(kind, "eof mid-message" | "reset" | "broken pipe")
            }
            Peer::VanishSilent => !write && kind == "timeout",
            _ => false,
        }
    }
}

fn header(peer: Peer, len: u64, seed: u64) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&(peer as u32).to_le_bytes());
    h[8..16].copy_from_slice(&len.to_le_bytes());
    h[16..24].copy_from_slice(&seed.to_le_bytes());
    h
}

fn parse(h: &[u8; HEADER]) -> Option<(Peer, u64, u64)> {
    let word = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().unwrap());
    if u32::from_le_bytes(h[0..4].try_into().unwrap()) != MAGIC {
        return None;
    }
    let peer = *PEERS.get(u32::from_le_bytes(h[4..8].try_into().unwrap()) as usize)?;
    Some((peer, word(8), word(16)))
}

fn mismatch(what: &str, at: u64, len: u64, seed: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{what}: byte {at} of a {len}-byte message (seed {seed:#x}) is wrong"),
    )
}

// ---- the server ------------------------------------------------------------

/// Go's accept loop: each connection in its own coroutine; EMFILE (out of
/// descriptors) is counted, and the loop sleeps a little and tries again.
pub fn accept_loop(ph: Arc<Phase>, listener: Arc<TcpListener>) {
    let mut n = 0u64;
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                ph.stats.inc(C::ConnsAccepted);
                n += 1;
                let (ph2, live) = (ph.clone(), Live::enter(Role::ServerConn));
                let spawned = gopark::Builder::new().name("server").spawn(move || {
                    let _live = live;
                    serve(&ph2, conn, n);
                });
                if let Err(e) = spawned {
                    ph.stats.error("server: spawn", &e, false);
                }
            }
            Err(e) if gopark::net::is_closed(&e) => return,
            Err(e) if is_fd_limit(&e) => {
                ph.stats.inc(C::AcceptEmfile);
                ph.stats
                    .error("server: accept", &e, ph.fd_limit_expected(&e));
                gopark::time::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                ph.stats.error("server: accept", &e, false);
                gopark::time::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// How the server bounds a connection's reads and writes.
#[derive(Clone, Copy)]
enum Bounds {
    /// std's per-op timeouts, set once.
    Timeouts,
    /// Go's deadlines, pushed forward before each op.
    Deadlines,
}

/// Serves one connection: checks and echoes messages until the peer ends.
fn serve(ph: &Phase, conn: TcpStream, n: u64) {
    let cfg = &ph.cfg;
    let mut rng = Rng::new(cfg.seed ^ n.wrapping_mul(0x1000_0000_01b3));
    let bounds = if n % 2 == 0 {
        Bounds::Timeouts
    } else {
        Bounds::Deadlines
    };
    if let Bounds::Timeouts = bounds {
        let set = conn
            .set_read_timeout(Some(cfg.read_timeout))
            .and_then(|()| conn.set_write_timeout(Some(cfg.write_timeout)));
        if let Err(e) = set {
            ph.stats.error("server: set timeouts", &e, false);
            return;
        }
    }
    let end = diag::End::new(&conn, true);
    // Read sizes from 512 B to the chunk size, so reads split messages
    // every which way.
    let mut buf = vec![0u8; rng.range(512, cfg.chunk as u64) as usize];
    let mut peer = None;
    match serve_messages(ph, &conn, bounds, &mut buf, &mut peer) {
        Ok(()) => {
            if let Some(p) = peer.filter(|p| !p.whole()) {
                ph.stats.fail(format!(
                    "server: a {} connection ended cleanly; its fault should have ended it",
                    p.name()
                ));
            }
        }
        Err((write, e)) => {
            let k = kind(&e);
            let expected = peer.is_some_and(|p| p.server_expects(write, k));
            let bound = match (k, bounds) {
                ("timeout", Bounds::Deadlines) => ", deadline",
                ("timeout", Bounds::Timeouts) => ", timeout",
                _ => "",
            };
            let place = format!(
                "server: {} ({}{bound})",
                if write { "write" } else { "read" },
                peer.map_or("no header yet", Peer::name)
            );
            ph.stats.error(&place, &e, expected);
            if k == "timeout" {
                // A read that timed out with bytes or the peer's FIN
                // waiting missed a wake-up.
                let lost = !write && !matches!(waiting(&conn), Ok(None));
                if lost || !expected {
                    ph.stats.fail(format!(
                        "{place}: timed out{}; {}",
                        if lost {
                            " with data or a FIN waiting (a lost wake-up)"
                        } else {
                            ""
                        },
                        diag::describe(end.port())
                    ));
                }
            }
        }
    }
    drop(end);
    // Half the connections end with an explicit close, half with a drop.
    if rng.chance(1, 2) {
        if let Err(e) = conn.close() {
            ph.stats.error("server: close", &e, false);
        }
    }
}

/// The message loop of [`serve`]; an error says whether a write failed.
fn serve_messages(
    ph: &Phase,
    conn: &TcpStream,
    bounds: Bounds,
    buf: &mut [u8],
    peer: &mut Option<Peer>,
) -> Result<(), (bool, io::Error)> {
    let cfg = &ph.cfg;
    let read_bound = || match bounds {
        Bounds::Deadlines => conn.set_read_deadline(Some(Instant::now() + cfg.read_timeout)),
        Bounds::Timeouts => Ok(()),
    };
    let write_bound = || match bounds {
        Bounds::Deadlines => conn.set_write_deadline(Some(Instant::now() + cfg.write_timeout)),
        Bounds::Timeouts => Ok(()),
    };
    let mut r = conn;
    let mut w = conn;
    loop {
        let mut h = [0u8; HEADER];
        let mut got = 0;
        while got < HEADER {
            read_bound().map_err(|e| (false, e))?;
            let n = r.read(&mut h[got..]).map_err(|e| (false, e))?;
            if n == 0 {
                if got == 0 {
                    return Ok(()); // the peer is done, at a message boundary
                }
                let e = io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed inside a header");
                return Err((false, e));
            }
            got += n;
        }
        let Some((p, len, seed)) = parse(&h) else {
            let e = io::Error::new(io::ErrorKind::InvalidData, format!("bad header {h:02x?}"));
            return Err((false, e));
        };
        *peer = Some(p);
        let verified = if p.whole() {
            C::BytesServerVerified
        } else {
            C::BytesServerFault
        };
        let mut off = 0u64;
        while off < len {
            let want = buf.len().min((len - off) as usize);
            read_bound().map_err(|e| (false, e))?;
            let n = r.read(&mut buf[..want]).map_err(|e| (false, e))?;
            if n == 0 {
                let e = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("peer closed at byte {off} of a {len}-byte message"),
                );
                return Err((false, e));
            }
            if let Err(i) = rng::check(seed, off, &buf[..n]) {
                let at = off + i as u64;
                return Err((false, mismatch("server", at, len, seed)));
            }
            ph.stats.add(verified, n as u64);
            write_bound().map_err(|e| (true, e))?;
            w.write_all(&buf[..n]).map_err(|e| (true, e))?;
            off += n as u64;
        }
    }
}

// ---- well-behaved clients --------------------------------------------------

/// A client slot: connection after connection of 1 to 16 whole messages,
/// until the phase stops. A coroutine (`peer` Client) or a plain thread
/// (`peer` Thread, lock-step only).
pub fn client(ph: Arc<Phase>, mut rng: Rng, peer: Peer) {
    let cfg = &ph.cfg;
    let mut bufs = Bufs::new(cfg.chunk);
    while !ph.stopped() {
        let Some(conn) = connect(&ph, "client") else {
            continue;
        };
        ph.stats.inc(if peer == Peer::Thread {
            C::ConnsThread
        } else {
            C::ConnsClient
        });
        let n = rng.range(1, 16) as usize;
        let result = if peer == Peer::Client && rng.chance(1, 2) {
            duplex(&ph, conn, &mut rng, n, &mut bufs.out)
        } else {
            lockstep(&ph, &conn, peer, &mut rng, n, cfg.max_msg, &mut bufs)
        };
        if let Err((place, e)) = result {
            ph.stats.error(&place, &e, false);
        }
    }
}

type Failed = (String, io::Error);

/// A client's send and receive buffers, one chunk each.
pub struct Bufs {
    out: Vec<u8>,
    inb: Vec<u8>,
}

impl Bufs {
    pub fn new(chunk: usize) -> Bufs {
        Bufs {
            out: vec![0u8; chunk],
            inb: vec![0u8; chunk],
        }
    }
}

fn at(place: &str) -> impl Fn(io::Error) -> Failed + '_ {
    move |e| (place.to_owned(), e)
}

/// Connects with the clients' bound on every later op; EMFILE (an EMFILE
/// window) is expected, counted, and retried after a pause.
fn connect(ph: &Phase, who: &str) -> Option<TcpStream> {
    let bound = Some(ph.cfg.client_bound);
    let conn = TcpStream::connect(ph.addr).and_then(|c| {
        c.set_read_timeout(bound)?;
        c.set_write_timeout(bound)?;
        Ok(c)
    });
    match conn {
        Ok(c) => Some(c),
        Err(e) => {
            let expected = ph.fd_limit_expected(&e);
            ph.stats.error(&format!("{who}: connect"), &e, expected);
            gopark::time::sleep(Duration::from_millis(10));
            None
        }
    }
}

/// The write size for a message of `len` bytes: `pick`, but at least a
/// 256th of the message (so no message takes more than ~256 writes) and at
/// most `max`.
fn chunk_for(pick: u64, len: u64, max: usize) -> u64 {
    pick.max(len / 256).clamp(1, max as u64)
}

/// `n` messages of up to `max_msg` bytes, each sent a chunk at a time with
/// the chunk's echo read back before the next: at most one chunk in flight.
pub fn lockstep(
    ph: &Phase,
    conn: &TcpStream,
    peer: Peer,
    rng: &mut Rng,
    n: usize,
    max_msg: usize,
    bufs: &mut Bufs,
) -> Result<(), Failed> {
    let place = format!("{}: lock-step", peer.name());
    let (out, inb) = (&mut bufs.out[..], &mut bufs.inb[..]);
    let end = diag::End::new(conn, false);
    let (port, reads) = (end.port(), end.reads());
    let (mut r, mut w) = (conn, conn);
    for i in 0..n {
        if i > 0 && ph.stopped() {
            break;
        }
        let len = rng.size(max_msg) as u64;
        let seed = rng.next_u64();
        let chunk = rng.size(out.len()) as u64;
        w.write_all(&header(peer, len, seed)).map_err(at(&place))?;
        let chunk = chunk_for(chunk, len, out.len());
        let mut off = 0u64;
        while off < len {
            let k = chunk.min(len - off) as usize;
            rng::fill(seed, off, &mut out[..k]);
            w.write_all(&out[..k]).map_err(at(&place))?;
            ph.stats.add(C::BytesSent, k as u64);
            reads
                .read(|| r.read_exact(&mut inb[..k]))
                .map_err(|e| check_timeout(ph, &place, conn, port, e))
                .map_err(at(&place))?;
            if let Err(j) = rng::check(seed, off, &inb[..k]) {
                let e = mismatch(&place, off + j as u64, len, seed);
                return Err((place, e));
            }
            ph.stats.add(C::BytesClientVerified, k as u64);
            off += k as u64;
        }
        ph.stats.inc(C::Messages);
    }
    Ok(())
}

/// `msgs` sent by this coroutine while a second coroutine reads and checks
/// the echoes: as much in flight as the socket buffers hold.
fn duplex(
    ph: &Arc<Phase>,
    conn: TcpStream,
    rng: &mut Rng,
    n: usize,
    out: &mut [u8],
) -> Result<(), Failed> {
    let msgs: Vec<(u64, u64)> = (0..n)
        .map(|_| (rng.size(ph.cfg.max_msg) as u64, rng.next_u64()))
        .collect();
    let chunk = rng.size(out.len()) as u64;
    let conn = Arc::new(conn);
    let end = diag::End::new(&conn, false);
    let reader = spawn_reader(ph, &conn, &end, msgs.clone(), false, "client: duplex read")?;
    let sent = send_all(ph, &conn, Peer::Client, &msgs, chunk, out);
    if sent.is_err() {
        let _ = conn.close(); // wakes the reader
    }
    let read = reader.join().unwrap_or_else(|_| {
        Err((
            "client: duplex read".into(),
            io::Error::other("reader panicked"),
        ))
    });
    sent?;
    read?;
    ph.stats.add(C::Messages, n as u64);
    Ok(())
}

/// Writes `msgs` (header and payload, `chunk` bytes a write).
fn send_all(
    ph: &Phase,
    conn: &TcpStream,
    peer: Peer,
    msgs: &[(u64, u64)],
    chunk: u64,
    out: &mut [u8],
) -> Result<(), Failed> {
    let place = format!("{}: write", peer.name());
    let mut w = conn;
    for &(len, seed) in msgs {
        w.write_all(&header(peer, len, seed)).map_err(at(&place))?;
        let chunk = chunk_for(chunk, len, out.len());
        let mut off = 0u64;
        while off < len {
            let k = chunk.min(len - off) as usize;
            rng::fill(seed, off, &mut out[..k]);
            w.write_all(&out[..k]).map_err(at(&place))?;
            if peer.whole() {
                ph.stats.add(C::BytesSent, k as u64);
            }
            off += k as u64;
        }
    }
    Ok(())
}

/// Spawns a coroutine that reads and checks the echo of `msgs`, then, with
/// `eof`, expects the server to close (a read of 0 bytes).
fn spawn_reader(
    ph: &Arc<Phase>,
    conn: &Arc<TcpStream>,
    end: &diag::End,
    msgs: Vec<(u64, u64)>,
    eof: bool,
    place: &'static str,
) -> Result<gopark::JoinHandle<Result<(), Failed>>, Failed> {
    let watch = (end.port(), end.reads());
    let (ph, conn) = (ph.clone(), conn.clone());
    let live = Live::enter(if eof {
        Role::FaultReader
    } else {
        Role::ClientReader
    });
    gopark::Builder::new()
        .name(place)
        .spawn(move || {
            let _live = live;
            let r = read_echoes(&ph, &conn, watch, &msgs, eof).map_err(at(place));
            if r.is_err() {
                let _ = conn.close(); // wakes the writer
            }
            r
        })
        .map_err(at(place))
}

fn read_echoes(
    ph: &Phase,
    conn: &TcpStream,
    (port, reads): (Option<u16>, Arc<diag::Reads>),
    msgs: &[(u64, u64)],
    eof: bool,
) -> io::Result<()> {
    let mut buf = vec![0u8; ph.cfg.chunk];
    let mut r = conn;
    for &(len, seed) in msgs {
        let mut off = 0u64;
        while off < len {
            let want = buf.len().min((len - off) as usize);
            let n = reads
                .read(|| r.read(&mut buf[..want]))
                .map_err(|e| check_timeout(ph, "client: duplex read", conn, port, e))?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("server closed at byte {off} of a {len}-byte echo"),
                ));
            }
            if let Err(j) = rng::check(seed, off, &buf[..n]) {
                return Err(mismatch("echo", off + j as u64, len, seed));
            }
            ph.stats.add(C::BytesClientVerified, n as u64);
            off += n as u64;
        }
    }
    if eof {
        let n = reads
            .read(|| r.read(&mut buf))
            .map_err(|e| check_timeout(ph, "half-close peer: wait for EOF", conn, port, e))?;
        if n != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{n} bytes after the last echo, where the server's close was due"),
            ));
        }
    }
    Ok(())
}

// ---- faulty peers ----------------------------------------------------------

/// A faulty-peer slot: one fault after another, until the phase stops.
pub fn fault_peer(ph: Arc<Phase>, mut rng: Rng) {
    let mut out = vec![0u8; ph.cfg.chunk];
    while !ph.stopped() {
        let Some(conn) = connect(&ph, "faulty peer") else {
            continue;
        };
        ph.stats.inc(C::ConnsFault);
        match rng.below(6) {
            0 => reset(&ph, conn, &mut rng, &mut out),
            1 => half_close(&ph, conn, &mut rng, &mut out),
            2 => slowloris(&ph, conn, &mut rng, &mut out),
            3 => vanish_close(&ph, conn, &mut rng, &mut out),
            4 => vanish_silent(&ph, conn, &mut rng, &mut out),
            _ => cancel(&ph, conn, &mut rng, &mut out),
        }
        gopark::time::sleep(Duration::from_millis(rng.below(20)));
    }
}

/// Sends a header and up to [`FAULT_PREFIX`] bytes of the payload.
fn send_prefix(
    conn: &TcpStream,
    peer: Peer,
    rng: &mut Rng,
    out: &mut [u8],
    max: usize,
    whole_ok: bool,
) -> io::Result<(u64, u64)> {
    let len = (rng.size(max) as u64).max(2);
    let seed = rng.next_u64();
    let most = if whole_ok { len } else { len - 1 }.min(FAULT_PREFIX);
    let sent = rng.below(most + 1);
    let mut w = conn;
    w.write_all(&header(peer, len, seed))?;
    let mut off = 0u64;
    while off < sent {
        let k = (out.len() as u64).min(sent - off) as usize;
        rng::fill(seed, off, &mut out[..k]);
        w.write_all(&out[..k])?;
        off += k as u64;
    }
    Ok((sent, seed))
}

/// Reads the echo of the first `n` bytes of message `seed` and checks it.
fn read_prefix_echo(conn: &TcpStream, seed: u64, n: u64, out: &mut [u8]) -> io::Result<()> {
    let mut r = conn;
    let mut off = 0u64;
    while off < n {
        let k = (out.len() as u64).min(n - off) as usize;
        r.read_exact(&mut out[..k])?;
        if let Err(j) = rng::check(seed, off, &out[..k]) {
            return Err(mismatch("fault echo", off + j as u64, n, seed));
        }
        off += k as u64;
    }
    Ok(())
}

/// After a read of a well-behaved exchange that failed with `e`: a timeout
/// is a failure, reported with the state of both ends (a read that timed
/// out with data or a FIN waiting missed a wake-up). Returns `e`.
fn check_timeout(
    ph: &Phase,
    place: &str,
    conn: &TcpStream,
    port: Option<u16>,
    e: io::Error,
) -> io::Error {
    if e.kind() == io::ErrorKind::TimedOut {
        let lost = match waiting(conn) {
            Ok(Some(true)) => "with data waiting: a lost wake-up",
            Ok(Some(false)) => "with the peer's FIN waiting: a lost wake-up",
            Ok(None) => "with nothing waiting",
            Err(_) => "(peek failed)",
        };
        ph.stats.fail(format!(
            "{place}: timed out {lost}; {}",
            diag::describe(port)
        ));
    }
    e
}

/// What a read would find now, without waiting: data (`Some(true)`), the
/// peer's FIN (`Some(false)`), or nothing (`None`).
fn waiting(conn: &TcpStream) -> io::Result<Option<bool>> {
    let mut b = 0u8;
    // SAFETY: `b` is valid for a write of one byte; the descriptor stays
    // open for the call (borrowed from `conn`).
    let n = unsafe {
        libc::recv(
            conn.as_raw_fd(),
            (&mut b as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n >= 0 {
        return Ok(Some(n > 0));
    }
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::WouldBlock => Ok(None),
        _ => Err(e),
    }
}

/// SO_LINGER {on, 0}: closing then sends a reset instead of a FIN.
fn set_linger_zero(conn: &TcpStream) -> io::Result<()> {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `l` is a valid linger of the size passed, and the descriptor
    // stays open for the call (borrowed from `conn`).
    let r = unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Part of a message, maybe part of its echo, then a reset.
fn reset(ph: &Phase, conn: TcpStream, rng: &mut Rng, out: &mut [u8]) {
    ph.stats.inc(C::FaultReset);
    let mut run = || -> io::Result<()> {
        let (sent, seed) = send_prefix(&conn, Peer::Reset, rng, out, ph.cfg.max_msg, true)?;
        if sent > 0 && rng.chance(1, 3) {
            read_prefix_echo(&conn, seed, rng.range(1, sent), out)?;
        }
        set_linger_zero(&conn)
    };
    if let Err(e) = run() {
        ph.stats.error("reset peer", &e, false);
    }
    if rng.chance(1, 2) {
        let _ = conn.close();
    }
}

/// Whole messages, then `shutdown(Write)`; every echo must still arrive,
/// followed by the server's close.
fn half_close(ph: &Arc<Phase>, conn: TcpStream, rng: &mut Rng, out: &mut [u8]) {
    ph.stats.inc(C::FaultHalfClose);
    let k = rng.range(1, 4);
    let msgs: Vec<(u64, u64)> = (0..k)
        .map(|_| (rng.size(ph.cfg.max_msg) as u64, rng.next_u64()))
        .collect();
    let chunk = rng.size(out.len()) as u64;
    let conn = Arc::new(conn);
    let end = diag::End::new(&conn, false);
    let reader = match spawn_reader(ph, &conn, &end, msgs.clone(), true, "half-close peer: read") {
        Ok(h) => h,
        Err((place, e)) => return ph.stats.error(&place, &e, false),
    };
    let mut sent = send_all(ph, &conn, Peer::HalfClose, &msgs, chunk, out);
    if sent.is_ok() {
        sent = conn
            .shutdown(Shutdown::Write)
            .map_err(at("half-close peer: shutdown"));
    }
    if sent.is_err() {
        let _ = conn.close();
    }
    let read = reader.join().unwrap_or_else(|_| {
        Err((
            "half-close peer: read".into(),
            io::Error::other("reader panicked"),
        ))
    });
    for r in [sent, read] {
        if let Err((place, e)) = r {
            ph.stats.error(&place, &e, false);
        }
    }
    ph.stats.add(C::Messages, k);
}

/// Sends whole messages and never reads. The server's write deadline must
/// end it: the connection is then reset (the server closed with unread
/// data), so a write fails with a reset or a broken pipe. The peer's own
/// write timeout (the clients' bound) failing first means the server did
/// not bound it.
///
/// The receive buffer keeps its default size: shrunk (SO_RCVBUF 4 KiB),
/// both ends could stall inside TCP with nothing readable on either side
/// (the peer's send queue full, its window probes backed off, the server's
/// receive queue empty), with plain std sockets and threads too: about
/// once in 4,000 such connections on Linux 6.18.
fn slowloris(ph: &Phase, conn: TcpStream, rng: &mut Rng, out: &mut [u8]) {
    ph.stats.inc(C::FaultSlowloris);
    let chunk = out.len() as u64;
    let mut total = 0u64;
    let err = loop {
        let msg = [(ph.cfg.max_msg as u64, rng.next_u64())];
        match send_all(ph, &conn, Peer::Slowloris, &msg, chunk, out) {
            Ok(()) => total += msg[0].0,
            Err((_, e)) => break e,
        }
        if total > 1 << 30 {
            ph.stats.fail(format!(
                "slowloris: the server accepted {total} bytes without a write timeout"
            ));
            return;
        }
    };
    let expected = matches!(kind(&err), "reset" | "broken pipe");
    ph.stats.error("slowloris: write", &err, expected);
}

/// Part of a message, maybe its echo, then a close mid-message.
fn vanish_close(ph: &Phase, conn: TcpStream, rng: &mut Rng, out: &mut [u8]) {
    ph.stats.inc(C::FaultVanishClose);
    let mut run = || -> io::Result<()> {
        let (sent, seed) = send_prefix(&conn, Peer::VanishClose, rng, out, ph.cfg.max_msg, false)?;
        if sent > 0 && rng.chance(1, 2) {
            read_prefix_echo(&conn, seed, sent, out)?;
        }
        Ok(())
    };
    if let Err(e) = run() {
        ph.stats.error("vanish-close peer", &e, false);
    }
    drop(conn);
}

/// Part of a message and its echo, then silence with the connection open:
/// the server's read deadline must close it (the peer then reads EOF).
fn vanish_silent(ph: &Phase, conn: TcpStream, rng: &mut Rng, out: &mut [u8]) {
    ph.stats.inc(C::FaultVanishSilent);
    let mut run = || -> io::Result<()> {
        // Zero or more payload bytes: the server is mid-message either way.
        let (sent, seed) = send_prefix(&conn, Peer::VanishSilent, rng, out, ph.cfg.max_msg, false)?;
        read_prefix_echo(&conn, seed, sent, out)?;
        let n = (&conn).read(&mut out[..1])?;
        if n != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "data from the server after the echo",
            ));
        }
        Ok(())
    };
    if let Err(e) = run() {
        ph.stats
            .error("vanish-silent peer: wait for the server's close", &e, false);
    }
}

/// Part of a message; a reader coroutine reads its echo, then waits for
/// more that never comes, until this coroutine cancels the wait: with
/// `close()` (the reader must fail with the closed-socket error) or a read
/// deadline in the past (it must fail with a timeout). The server then sees
/// the peer leave mid-message.
fn cancel(ph: &Arc<Phase>, conn: TcpStream, rng: &mut Rng, out: &mut [u8]) {
    ph.stats.inc(C::FaultCancel);
    let (sent, seed) = match send_prefix(&conn, Peer::Cancel, rng, out, ph.cfg.max_msg, false) {
        Ok(v) => v,
        Err(e) => return ph.stats.error("cancelling peer: write", &e, false),
    };
    let by_close = rng.chance(1, 2);
    let conn = Arc::new(conn);
    let (c, live) = (conn.clone(), Live::enter(Role::FaultReader));
    let reader = gopark::Builder::new()
        .name("cancelled reader")
        .spawn(move || -> io::Error {
            let _live = live;
            let mut buf = vec![0u8; sent.clamp(1, 64 << 10) as usize];
            if let Err(e) = read_prefix_echo(&c, seed, sent, &mut buf) {
                return e;
            }
            match (&*c).read(&mut buf[..1]) {
                Err(e) => e,
                Ok(0) => io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed"),
                Ok(_) => io::Error::new(io::ErrorKind::InvalidData, "more echo than was sent"),
            }
        });
    let reader = match reader {
        Ok(h) => h,
        Err(e) => return ph.stats.error("cancelling peer: spawn", &e, false),
    };
    // Now and then before the reader has even started.
    gopark::time::sleep(Duration::from_millis(rng.below(20)));
    let cancelled = if by_close {
        conn.close()
    } else {
        conn.set_read_deadline(Some(Instant::now()))
    };
    if let Err(e) = cancelled {
        let _ = conn.close();
        ph.stats.error("cancelling peer: cancel", &e, false);
    }
    let how = if by_close { "close" } else { "past deadline" };
    let place = format!("cancelling peer: read woken by {how}");
    match reader.join() {
        Ok(e) => {
            let expected = if by_close {
                gopark::net::is_closed(&e)
            } else {
                e.kind() == io::ErrorKind::TimedOut
            };
            ph.stats.error(&place, &e, expected);
        }
        Err(_) => ph.stats.fail(format!("{place}: the reader panicked")),
    }
}
