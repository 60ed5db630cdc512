//! A minimal HTTP/1.1 plaintext server: one coroutine per connection, keep-alive, pipelining, "Hello, World!".
//!
//! Run with: `cargo run --release --example http -- --addr 127.0.0.1:8080 --workers 2`
//!
//! Then `curl -v http://127.0.0.1:8080/` or `wrk -t2 -c100 -d5s http://127.0.0.1:8080/`
//! (`benches/http.sh` runs the load and reports requests/s and server CPU).
//!
//! What it does:
//! - `GET /` and `HEAD /` answer "Hello, World!" (200), other paths 404, other methods 405.
//! - Keep-alive by default (HTTP/1.1), `Connection: close` honoured (and HTTP/1.0's default
//!   close / `Connection: keep-alive`).
//! - Pipelining: every complete request in the read buffer is parsed (with `httparse`) and
//!   answered into one output buffer, written with one `write_all` per read.
//! - A malformed request gets 400, a request whose head and body exceed [`MAX_REQUEST`] bytes
//!   gets 431 or 413, `Transfer-Encoding` gets 501; each then closes the connection.
//!   A `Content-Length` body is read and ignored.
//! - The `Date` header is formatted at most once a second per worker: a ticker coroutine
//!   publishes the current second in an atomic, and each worker keeps the formatted header in
//!   a thread-local that it reformats only when that second changes (coroutines never change
//!   threads, so the thread-local is the worker's).
//! - Responses carry `Server`, `Content-Length` and `Date`, the header set of may_minihttp's
//!   `hello-world` example, so that a benchmark against it compares the same bytes: a client
//!   such as `wrk` parses every response, and on a machine it shares with the server a 30-byte
//!   `Content-Type: text/plain` header cost 13% of requests/s at 100 pipelined connections.
//!   A real server adds `Content-Type` (the body is plain text).
//!
//! Left out, as a real server would add them: idle and slow-client timeouts (Go-style
//! `set_read_deadline`), chunked request bodies, routing, graceful shutdown (see the `echo`
//! example for one).

use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use gopark::net::{TcpListener, TcpStream};

/// The largest request (head plus body) a connection buffers.
pub const MAX_REQUEST: usize = 8 * 1024;

/// Headers parsed per request; more is answered with 431.
const MAX_HEADERS: usize = 32;

/// How long a closing connection keeps reading (and discarding) what the
/// client still sends, so that the kernel does not reset the connection
/// under the last response.
const LINGER: Duration = Duration::from_secs(1);

fn usage() -> ! {
    eprintln!("usage: http [--addr HOST:PORT] [--workers N] [--pin]");
    std::process::exit(2);
}

fn main() -> io::Result<()> {
    let mut addr = "127.0.0.1:8080".to_owned();
    let mut workers = None;
    let mut pin = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().unwrap_or_else(|| usage()),
            "--workers" => {
                workers = Some(
                    args.next()
                        .and_then(|v| v.parse::<usize>().ok())
                        .filter(|&n| n > 0)
                        .unwrap_or_else(|| usage()),
                )
            }
            "--pin" => pin = true,
            _ => usage(),
        }
    }
    let mut builder = gopark::Runtime::builder().pin_workers(pin);
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    let rt = builder.build()?;
    let listener = rt.run(move || TcpListener::bind(&addr))?;
    println!(
        "http: listening on http://{} ({} workers{})",
        listener.local_addr()?,
        rt.workers(),
        if pin { ", pinned one to a CPU" } else { "" }
    );
    rt.run(move || serve(listener))
}

/// The accept loop: starts the `Date` ticker, then runs each connection in
/// its own coroutine. Returns when the listener is closed.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    date::start_ticker();
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                gopark::go!(move || {
                    // A connection's errors (reset, broken pipe) end only it.
                    let _ = handle(conn);
                });
            }
            Err(e) if gopark::net::is_closed(&e) => return Ok(()),
            Err(e) => {
                // EMFILE and friends: report, back off, keep serving.
                eprintln!("http: accept: {e}");
                gopark::time::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Serves one connection until the client closes it, asks to close it, or
/// sends something we refuse.
fn handle(conn: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut filled = 0;
    let mut out = Vec::with_capacity(4096);
    loop {
        let n = (&conn).read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(()); // the client closed (or half-closed) its side
        }
        filled += n;
        let Answered { consumed, close } = answer(&buf[..filled], filled == buf.len(), &mut out);
        if !out.is_empty() {
            (&conn).write_all(&out)?;
            out.clear();
        }
        if close {
            return linger_close(&conn);
        }
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
    }
}

/// What answering one read's requests leaves to the connection.
#[derive(Debug)]
pub struct Answered {
    /// Bytes of the buffer taken by the requests answered.
    pub consumed: usize,
    /// The last answer closes the connection.
    pub close: bool,
}

/// Answers every complete request at the start of `buf` (`full`: the
/// buffer is full, so a head that is still incomplete will never fit),
/// appending the responses to `out`. The whole protocol step of a read,
/// without I/O: a server on another runtime can run the same handler.
#[inline]
pub fn answer(buf: &[u8], full: bool, out: &mut Vec<u8>) -> Answered {
    let mut start = 0;
    let mut close = false;
    let date = date::header();
    // The usual answer, whole, once per read: a pipelined batch then
    // costs one copy per request.
    let ok = ok_response(&date);
    while start < buf.len() {
        match parse(&buf[start..]) {
            Parsed::Partial if start == 0 && full => {
                // The buffer is full and still holds no complete head (a
                // head and body that fit would be complete: `parse`
                // refuses bodies that cannot fit).
                respond(out, Status::HeadersTooLarge, false, Conn::Close, &date);
                close = true;
                break;
            }
            Parsed::Partial => break,
            Parsed::Error(status) => {
                respond(out, status, false, Conn::Close, &date);
                close = true;
                break;
            }
            Parsed::Request(req) => {
                start += req.len;
                if req.status == Status::Ok && !req.head_only && req.conn == Conn::KeepAlive {
                    out.extend_from_slice(&ok);
                    continue;
                }
                respond(out, req.status, req.head_only, req.conn, &date);
                if req.conn == Conn::Close {
                    close = true;
                    break;
                }
            }
        }
    }
    Answered {
        consumed: start,
        close,
    }
}

/// Closes our side, then discards what the client still sends for up to
/// [`LINGER`]: closing a socket with unread input makes the kernel send a
/// reset, which can destroy the response the client has not read yet.
fn linger_close(conn: &TcpStream) -> io::Result<()> {
    conn.shutdown(Shutdown::Write)?;
    conn.set_read_deadline(Some(Instant::now() + LINGER))?;
    let mut sink = [0u8; 1024];
    let mut left: usize = 64 * 1024;
    while left > 0 {
        match (&*conn).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
    Ok(())
}

/// Whether the connection stays open after a response.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Conn {
    /// HTTP/1.1's default: nothing to say.
    KeepAlive,
    /// HTTP/1.0 that asked for keep-alive: say `Connection: keep-alive`.
    KeepAlive10,
    /// Say `Connection: close`, then close.
    Close,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    HeadersTooLarge,
    NotImplemented,
}

impl Status {
    fn line_and_body(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Status::Ok => (b"HTTP/1.1 200 OK\r\n", b"Hello, World!"),
            Status::BadRequest => (b"HTTP/1.1 400 Bad Request\r\n", b"Bad Request\n"),
            Status::NotFound => (b"HTTP/1.1 404 Not Found\r\n", b"Not Found\n"),
            Status::MethodNotAllowed => (
                b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n",
                b"Method Not Allowed\n",
            ),
            Status::PayloadTooLarge => (
                b"HTTP/1.1 413 Content Too Large\r\n",
                b"Content Too Large\n",
            ),
            Status::HeadersTooLarge => (
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
                b"Request Header Fields Too Large\n",
            ),
            Status::NotImplemented => (b"HTTP/1.1 501 Not Implemented\r\n", b"Not Implemented\n"),
        }
    }
}

/// One parsed request: what to answer and how many bytes it took.
struct Request {
    len: usize,
    status: Status,
    head_only: bool,
    conn: Conn,
}

enum Parsed {
    Request(Request),
    Partial,
    Error(Status),
}

/// Parses the request at the start of `buf` (head and `Content-Length`
/// body) and decides the answer.
fn parse(buf: &[u8]) -> Parsed {
    // Left uninitialised: httparse fills what it parses (a 32-header array
    // of empty headers would be 1 KiB of stores per request).
    let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Error(Status::HeadersTooLarge),
        Err(_) => return Parsed::Error(Status::BadRequest),
    };
    let http11 = req.version == Some(1);
    let mut conn = if http11 { Conn::KeepAlive } else { Conn::Close };
    let mut body_len: Option<usize> = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    conn = Conn::Close;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                    conn = Conn::KeepAlive10;
                }
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let Some(n) = parse_decimal(h.value) else {
                return Parsed::Error(Status::BadRequest);
            };
            // Several Content-Length headers must agree (RFC 9112, 6.3).
            if body_len.is_some_and(|m| m != n) {
                return Parsed::Error(Status::BadRequest);
            }
            body_len = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked bodies are not supported; refuse rather than misframe.
            return Parsed::Error(Status::NotImplemented);
        }
    }
    let len = match body_len {
        Some(n) if n > MAX_REQUEST - head_len => return Parsed::Error(Status::PayloadTooLarge),
        Some(n) if buf.len() < head_len + n => return Parsed::Partial,
        Some(n) => head_len + n,
        None => head_len,
    };
    let (status, head_only) = match req.method {
        Some("GET") | Some("HEAD") => {
            let status = if req.path == Some("/") {
                Status::Ok
            } else {
                Status::NotFound
            };
            (status, req.method == Some("HEAD"))
        }
        _ => (Status::MethodNotAllowed, false),
    };
    Parsed::Request(Request {
        len,
        status,
        head_only,
        conn,
    })
}

/// `Content-Length`'s value: ASCII digits only, no sign, no overflow.
fn parse_decimal(v: &[u8]) -> Option<usize> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter().try_fold(0usize, |n, &b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(usize::from(b - b'0')))?
    })
}

/// `200 OK` on a kept-alive connection, as [`respond`] writes it, up to the
/// `Date` value.
const OK_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nServer: gopark\r\nContent-Length: 13\r\nDate: ";
/// And after it.
const OK_TAIL: &[u8] = b"\r\n\r\nHello, World!";
const OK_LEN: usize = OK_HEAD.len() + 29 + OK_TAIL.len();

/// The whole `200 OK` response of a kept-alive connection for `date`
/// (the bytes [`respond`] appends for it; the example's tests compare both).
pub fn ok_response(date: &[u8; 29]) -> [u8; OK_LEN] {
    let mut r = [0u8; OK_LEN];
    r[..OK_HEAD.len()].copy_from_slice(OK_HEAD);
    r[OK_HEAD.len()..OK_HEAD.len() + 29].copy_from_slice(date);
    r[OK_HEAD.len() + 29..].copy_from_slice(OK_TAIL);
    r
}

/// Appends `200 OK` for a kept-alive connection the general way (the
/// example's tests check that [`ok_response`] gives the same bytes).
pub fn respond_ok_general(out: &mut Vec<u8>, date: &[u8; 29]) {
    respond(out, Status::Ok, false, Conn::KeepAlive, date);
}

/// Appends one response to `out`.
fn respond(out: &mut Vec<u8>, status: Status, head_only: bool, conn: Conn, date: &[u8; 29]) {
    let (line, body) = status.line_and_body();
    out.extend_from_slice(line);
    out.extend_from_slice(b"Server: gopark\r\nContent-Length: ");
    push_decimal(out, body.len());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(match conn {
        Conn::KeepAlive => b"\r\n\r\n".as_slice(),
        Conn::KeepAlive10 => b"\r\nConnection: keep-alive\r\n\r\n",
        Conn::Close => b"\r\nConnection: close\r\n\r\n",
    });
    if !head_only {
        out.extend_from_slice(body);
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The cached `Date` header.
pub mod date {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// The current Unix second, published by the ticker; 0 before it runs.
    static NOW: AtomicU64 = AtomicU64::new(0);

    thread_local! {
        /// This worker's formatted header and the second it shows.
        static CACHE: Cell<(u64, [u8; 29])> = const { Cell::new((0, [0; 29])) };
    }

    fn unix_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// Starts a coroutine that publishes the current second, waking just
    /// after each second boundary. Every server starts one; they store the
    /// same value, and each ends with its runtime.
    pub fn start_ticker() {
        NOW.store(unix_now(), Ordering::Relaxed);
        gopark::go!(|| loop {
            gopark::time::sleep(tick());
        });
    }

    /// Publishes the current second; returns how long until the next one
    /// (a ticker on any runtime sleeps that long, then ticks again).
    pub fn tick() -> Duration {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        NOW.store(now.as_secs(), Ordering::Relaxed);
        Duration::from_nanos(1_000_000_000 - u64::from(now.subsec_nanos()))
    }

    /// The header value for the current second: one relaxed load, and a
    /// reformat only when the second changed since this worker last looked.
    pub fn header() -> [u8; 29] {
        let mut now = NOW.load(Ordering::Relaxed);
        if now == 0 {
            now = unix_now(); // no ticker (not started through `serve`)
        }
        CACHE.with(|c| {
            let (secs, text) = c.get();
            if secs == now {
                return text;
            }
            let text = format(now);
            c.set((now, text));
            text
        })
    }

    /// IMF-fixdate (RFC 9110, 5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
    pub fn format(unix_secs: u64) -> [u8; 29] {
        const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
        const MONTHS: [&[u8; 3]; 12] = [
            b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
            b"Dec",
        ];
        let days = unix_secs / 86_400;
        let secs_of_day = unix_secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
        out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
        two(&mut out[5..7], day);
        out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
        two(&mut out[12..14], year / 100);
        two(&mut out[14..16], year % 100);
        two(&mut out[17..19], secs_of_day / 3600);
        two(&mut out[20..22], secs_of_day / 60 % 60);
        two(&mut out[23..25], secs_of_day % 60);
        out
    }

    fn two(out: &mut [u8], n: u64) {
        out[0] = b'0' + (n / 10 % 10) as u8;
        out[1] = b'0' + (n % 10) as u8;
    }

    /// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01
    /// (Howard Hinnant's `civil_from_days`, for non-negative days).
    fn civil_from_days(days: u64) -> (u64, u64, u64) {
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        (year, month, day)
    }
}
