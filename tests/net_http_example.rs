//! The `http` example's server, driven by plain blocking std sockets:
//! keep-alive, pipelining, malformed and oversized requests, `Connection:
//! close`, bodies, HTTP/1.0, and the `Date` header. Every response is parsed
//! from the bytes received and compared whole.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[allow(dead_code)] // `main` and its flag parsing are the example's own
#[path = "../examples/http.rs"]
mod http;

/// Starts the example's server on its own runtime; the runtime (and the
/// server) stop when the returned value is dropped.
fn server() -> (gopark::Runtime, SocketAddr) {
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let l = rt
        .run(|| gopark::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = l.local_addr().unwrap();
    drop(rt.spawn(move || http::serve(l)));
    (rt, addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads exactly `n` responses (framed by `Content-Length`; `head` says
/// which ones answer a HEAD and so carry no body). Fails on EOF before.
fn read_responses(s: &mut TcpStream, head: &[bool]) -> Vec<Response> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while out.len() < head.len() {
        // Parse what we have; read more when it is not enough.
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut r = httparse::Response::new(&mut headers);
        let parsed = r.parse(&buf).expect("a well-formed response");
        if let httparse::Status::Complete(head_len) = parsed {
            let headers: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| {
                    let v = String::from_utf8(h.value.to_vec()).unwrap();
                    (h.name.to_owned(), v)
                })
                .collect();
            let len: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .expect("Content-Length")
                .1
                .parse()
                .unwrap();
            let body_len = if head[out.len()] { 0 } else { len };
            if buf.len() >= head_len + body_len {
                let status = r.code.unwrap();
                let body = buf[head_len..head_len + body_len].to_vec();
                buf.drain(..head_len + body_len);
                out.push(Response {
                    status,
                    headers,
                    body,
                });
                continue;
            }
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "EOF after {} of {} responses", out.len(), head.len());
        buf.extend_from_slice(&chunk[..n]);
    }
    assert!(buf.is_empty(), "bytes after the last response: {buf:?}");
    out
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// Asserts the server closed the connection: EOF, nothing more.
fn assert_closed(s: &mut TcpStream) {
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "bytes after close: {rest:?}");
}

fn assert_hello(r: &Response) {
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"Hello, World!");
    assert_eq!(r.header("content-length"), Some("13"));
    assert_eq!(r.header("server"), Some("gopark"));
    assert_eq!(r.header("connection"), None);
    assert_eq!(r.header("date").unwrap().len(), 29);
}

#[test]
fn keep_alive_three_requests_on_one_connection() {
    let (_rt, addr) = server();
    let mut s = connect(addr);
    for _ in 0..3 {
        // One request, then its response, before the next is sent.
        s.write_all(get("/").as_bytes()).unwrap();
        let r = read_responses(&mut s, &[false]);
        assert_hello(&r[0]);
    }
    // Still open: a fourth request on the same connection is answered.
    s.write_all(get("/nope").as_bytes()).unwrap();
    let r = read_responses(&mut s, &[false]);
    assert_eq!(r[0].status, 404);
    assert_eq!(r[0].body, b"Not Found\n");
}

#[test]
fn sixteen_pipelined_requests_in_one_write_answered_in_order() {
    let (_rt, addr) = server();
    let mut s = connect(addr);
    // Every third request asks for a missing path, so a reordered or
    // dropped response shows up in the status sequence.
    let paths: Vec<&str> = (0..16)
        .map(|i| if i % 3 == 2 { "/missing" } else { "/" })
        .collect();
    let batch: String = paths.iter().map(|p| get(p)).collect();
    s.write_all(batch.as_bytes()).unwrap();
    let rs = read_responses(&mut s, &[false; 16]);
    for (r, p) in rs.iter().zip(&paths) {
        if *p == "/" {
            assert_hello(r);
        } else {
            assert_eq!(r.status, 404);
        }
    }
    // Twice more, to cover a batch that arrives after a previous one.
    for _ in 0..2 {
        s.write_all(get("/").repeat(16).as_bytes()).unwrap();
        for r in read_responses(&mut s, &[false; 16]) {
            assert_hello(&r);
        }
    }
}

#[test]
fn a_request_split_across_writes_is_answered_once_complete() {
    let (_rt, addr) = server();
    let mut s = connect(addr);
    s.set_nodelay(true).unwrap();
    let req = get("/");
    let (a, b) = req.as_bytes().split_at(7);
    s.write_all(a).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    // Half a request, then the rest followed by half of the next.
    let mut rest = b.to_vec();
    rest.extend_from_slice(&req.as_bytes()[..5]);
    s.write_all(&rest).unwrap();
    assert_hello(&read_responses(&mut s, &[false])[0]);
    s.write_all(&req.as_bytes()[5..]).unwrap();
    assert_hello(&read_responses(&mut s, &[false])[0]);
}

#[test]
fn malformed_request_gets_400_and_close() {
    let (_rt, addr) = server();
    for bad in [
        "GARBAGE\r\n\r\n".to_owned(),
        "GET / HTTP/1.1\r\nHost test\r\n\r\n".to_owned(),
        "GET / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n".to_owned(),
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_owned(),
    ] {
        let mut s = connect(addr);
        // A good request first: its answer comes before the 400.
        s.write_all(format!("{}{bad}", get("/")).as_bytes())
            .unwrap();
        let rs = read_responses(&mut s, &[false, false]);
        assert_hello(&rs[0]);
        assert_eq!(rs[1].status, 400, "for {bad:?}");
        assert_eq!(rs[1].body, b"Bad Request\n");
        assert_eq!(rs[1].header("connection"), Some("close"));
        assert_closed(&mut s);
    }
}

#[test]
fn connection_close_is_honoured() {
    let (_rt, addr) = server();
    let mut s = connect(addr);
    // The request after the one that says close is never answered.
    let req = "GET / HTTP/1.1\r\nHost: t\r\nConnection: Keep-Alive, Close\r\n\r\n";
    s.write_all(format!("{}{req}{}", get("/"), get("/")).as_bytes())
        .unwrap();
    let rs = read_responses(&mut s, &[false, false]);
    assert_hello(&rs[0]);
    assert_eq!(rs[1].status, 200);
    assert_eq!(rs[1].body, b"Hello, World!");
    assert_eq!(rs[1].header("connection"), Some("close"));
    assert_closed(&mut s);
}

#[test]
fn http10_closes_by_default_and_keeps_alive_on_request() {
    let (_rt, addr) = server();
    let mut s = connect(addr);
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let r = read_responses(&mut s, &[false]);
    assert_eq!(r[0].body, b"Hello, World!");
    assert_eq!(r[0].header("connection"), Some("close"));
    assert_closed(&mut s);

    let mut s = connect(addr);
    let req = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    for _ in 0..2 {
        s.write_all(req).unwrap();
        let r = read_responses(&mut s, &[false]);
        assert_eq!(r[0].body, b"Hello, World!");
        assert_eq!(r[0].header("connection"), Some("keep-alive"));
    }
}

#[test]
fn head_has_no_body_and_other_methods_get_405_with_body_skipped() {
    let (_rt, addr) = server();
    let mut s = connect(addr);
    let post = "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\nGET /not-a-request\r\n";
    let batch = format!("HEAD / HTTP/1.1\r\nHost: t\r\n\r\n{post}{}", get("/"));
    s.write_all(batch.as_bytes()).unwrap();
    let rs = read_responses(&mut s, &[true, false, false]);
    assert_eq!(rs[0].status, 200);
    assert!(rs[0].body.is_empty());
    assert_eq!(rs[0].header("content-length"), Some("13"));
    assert_eq!(rs[1].status, 405);
    assert_eq!(rs[1].header("allow"), Some("GET, HEAD"));
    assert_hello(&rs[2]);
}

#[test]
fn oversized_requests_are_refused_and_closed() {
    let (_rt, addr) = server();
    // A head that never ends within the limit: 431.
    let mut s = connect(addr);
    let big = format!(
        "GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(http::MAX_REQUEST)
    );
    // The server may close before reading all of it; a failed write is fine.
    let _ = s.write_all(big.as_bytes());
    let r = read_responses(&mut s, &[false]);
    assert_eq!(r[0].status, 431);
    assert_eq!(r[0].header("connection"), Some("close"));
    assert_closed(&mut s);

    // A body announced larger than the limit: 413 at once.
    let mut s = connect(addr);
    s.write_all(b"POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n")
        .unwrap();
    let r = read_responses(&mut s, &[false]);
    assert_eq!(r[0].status, 413);
    assert_closed(&mut s);

    // Chunked bodies are not supported: 501.
    let mut s = connect(addr);
    s.write_all(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        .unwrap();
    let r = read_responses(&mut s, &[false]);
    assert_eq!(r[0].status, 501);
    assert_closed(&mut s);
}

#[test]
fn client_half_close_after_a_request_still_gets_the_answer() {
    let (_rt, addr) = server();
    let mut s = connect(addr);
    s.write_all(get("/").repeat(3).as_bytes()).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    for r in read_responses(&mut s, &[false; 3]) {
        assert_hello(&r);
    }
    assert_closed(&mut s);
}

#[test]
fn date_header_is_formatted_and_current() {
    assert_eq!(
        http::date::format(784_111_777),
        *b"Sun, 06 Nov 1994 08:49:37 GMT"
    );
    assert_eq!(http::date::format(0), *b"Thu, 01 Jan 1970 00:00:00 GMT");
    // 2000-02-29 (a leap day in a century year) and the last second of 2099.
    assert_eq!(
        http::date::format(951_782_400),
        *b"Tue, 29 Feb 2000 00:00:00 GMT"
    );
    assert_eq!(
        http::date::format(4_102_444_799),
        *b"Thu, 31 Dec 2099 23:59:59 GMT"
    );

    let (_rt, addr) = server();
    let mut s = connect(addr);
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    // The header follows the clock: after 2 s, it shows a later second.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let before = now();
        s.write_all(get("/").as_bytes()).unwrap();
        let r = read_responses(&mut s, &[false]);
        let after = now();
        let date = r[0].header("date").unwrap().to_owned();
        let ok =
            (before.saturating_sub(1)..=after).any(|t| http::date::format(t) == date.as_bytes());
        assert!(ok, "Date {date:?} is not within [{before}, {after}]");
        seen.push(date);
        std::thread::sleep(Duration::from_millis(2100));
    }
    assert_ne!(seen[0], seen[1]);
}

#[test]
fn the_cached_ok_response_is_the_general_one() {
    for secs in [0, 784_111_777, 1_700_000_000, 4_102_444_799] {
        let date = http::date::format(secs);
        let mut general = Vec::new();
        http::respond_ok_general(&mut general, &date);
        assert_eq!(
            http::ok_response(&date).as_slice(),
            general.as_slice(),
            "{}",
            String::from_utf8_lossy(&general)
        );
    }
}
