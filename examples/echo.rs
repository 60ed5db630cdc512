//! A TCP echo server written Go style: an accept loop that runs each
//! connection in its own coroutine with `go!(move || ...)`.
//!
//! Run with: `cargo run --release --example echo -- --addr 127.0.0.1:7000 --workers 2`
//!
//! Ctrl-C (or SIGTERM) shuts it down cleanly: the accept loop stops, open
//! connections are closed (their parked reads wake up), every handler is
//! joined, and the server prints what it served: connections, bytes echoed
//! (those of connections that ended with an error included) and the errors
//! by kind.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use gopark::net::{TcpListener, TcpStream};

/// Open connections, so that shutdown can close them.
type Conns = Arc<Mutex<HashMap<u64, Arc<TcpStream>>>>;

/// Echoes until the peer closes, adding to `echoed` the bytes echoed as it
/// goes, so that they count even when the connection ends with an error.
fn handle(conn: Arc<TcpStream>, echoed: &mut u64) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    let mut c = &*conn;
    loop {
        let n = c.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        c.write_all(&buf[..n])?;
        *echoed += n as u64;
    }
}

/// What the handlers did, summed at the end.
#[derive(Default)]
struct Stats {
    bytes: u64,
    /// Connections that ended with an error, by kind, with one example.
    errors: BTreeMap<String, (u64, String)>,
    /// Connections cut by the shutdown's close.
    closed: u64,
}

fn usage() -> ! {
    eprintln!("usage: echo [--addr HOST:PORT] [--workers N]");
    std::process::exit(2);
}

fn main() -> io::Result<()> {
    let mut addr = "127.0.0.1:7000".to_owned();
    let mut workers = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().unwrap_or_else(|| usage()),
            "--workers" => {
                workers = Some(
                    args.next()
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or_else(|| usage()),
                )
            }
            _ => usage(),
        }
    }

    // Ctrl-C and SIGTERM arrive on a channel (Go's signal.Notify).
    let signals = gopark::signal::notify(&[libc::SIGINT, libc::SIGTERM])?;

    let mut builder = gopark::Runtime::builder();
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    let rt = builder.build()?;
    let listener = Arc::new(rt.run(move || TcpListener::bind(&addr))?);
    println!(
        "echo: listening on {} ({} workers); Ctrl-C to stop",
        listener.local_addr()?,
        rt.workers()
    );

    let conns: Conns = Arc::default();
    {
        let (l, conns) = (listener.clone(), conns.clone());
        std::thread::spawn(move || {
            let _ = signals.recv();
            eprintln!("\necho: shutting down");
            let _ = l.close(); // wakes the parked accept
            for c in conns.lock().unwrap().values() {
                let _ = c.close(); // wakes parked reads and writes
            }
        });
    }

    let stats: Arc<Mutex<Stats>> = Arc::default();
    let totals = stats.clone();
    let served = rt.run(move || {
        let mut handlers = Vec::new();
        let mut next_id = 0u64;
        loop {
            let conn = match listener.accept() {
                Ok((c, _)) => Arc::new(c),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => break, // closed
                Err(e) => {
                    // EMFILE and friends: report, back off, keep serving.
                    eprintln!("echo: accept: {e}");
                    gopark::time::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
            };
            let id = next_id;
            next_id += 1;
            conns.lock().unwrap().insert(id, conn.clone());
            let (conns, stats) = (conns.clone(), stats.clone());
            handlers.push(gopark::go!(move || {
                let mut echoed = 0;
                let r = handle(conn, &mut echoed);
                conns.lock().unwrap().remove(&id);
                // One lock per connection, when it ends.
                let mut s = stats.lock().unwrap();
                s.bytes += echoed;
                match r {
                    Ok(()) => {}
                    Err(e) if gopark::net::is_closed(&e) => s.closed += 1,
                    Err(e) => {
                        let kind = format!("{:?}", e.kind());
                        let entry = s.errors.entry(kind).or_insert_with(|| (0, e.to_string()));
                        entry.0 += 1;
                    }
                }
            }));
            handlers.retain(|h| !h.is_finished());
        }
        // The listener is closed; close what is still open and wait.
        for c in conns.lock().unwrap().values() {
            let _ = c.close();
        }
        for h in handlers {
            let _ = h.join();
        }
        next_id
    });
    let s = totals.lock().unwrap();
    println!(
        "echo: served {served} connections, echoed {} bytes; {} closed by the shutdown",
        s.bytes, s.closed
    );
    for (kind, (n, example)) in &s.errors {
        println!("echo: {n} connections ended with {kind} (e.g. {example})");
    }
    Ok(())
}
