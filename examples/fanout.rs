//! A Go-style fan-out client: query many servers at once under one global deadline, and cancel everything on the first failure, the deadline or Ctrl-C.
//!
//! Run with: `cargo run --release --example fanout -- --servers 10 --deadline-ms 400`
//!
//! It starts `--servers` local TCP servers itself; server `i` answers after
//! `i * --step-ms` milliseconds. The client fetches from all of them in an
//! [`ErrGroup`] whose context carries the deadline: sockets get the
//! context's deadline, a watcher closes a connection when the context is
//! cancelled, a [`Ticker`] prints progress, and SIGINT/SIGTERM (through
//! `gopark::signal::notify`) cancel the whole fan-out.

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gopark::context::{self, Context, ContextError};
use gopark::net::{TcpListener, TcpStream};
use gopark::select;
use gopark::sync::ErrGroup;
use gopark::time::Ticker;

/// Starts a server that answers each request line after `delay`.
fn start_server(id: usize, delay: Duration) -> io::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    gopark::go!(move || {
        while let Ok((conn, _)) = l.accept() {
            gopark::go!(move || {
                let mut r = BufReader::new(&conn);
                let mut line = String::new();
                if r.read_line(&mut line).is_ok() {
                    gopark::time::sleep(delay);
                    let _ = writeln!(&conn, "server {id} says hello to {}", line.trim());
                }
            });
        }
    });
    Ok(addr)
}

/// Fetches one answer; fails with the context's error once it is done.
fn fetch(ctx: &Context, addr: SocketAddr) -> io::Result<String> {
    let conn = Arc::new(TcpStream::connect(addr)?);
    // The deadline covers the whole exchange.
    conn.set_deadline(ctx.deadline())?;
    // Cancellation (another fetch failed, or Ctrl-C) closes the socket,
    // which wakes a parked read at once.
    let (stop_tx, stop_rx) = gopark::chan::bounded::<()>(0);
    let watcher = {
        let (conn, ctx) = (conn.clone(), ctx.clone());
        gopark::go!(move || select! {
            recv(ctx.done()) -> _ => { let _ = conn.close(); },
            recv(stop_rx) -> _ => {},
        })
    };
    let result = (|| {
        writeln!(&*conn, "client")?;
        let mut line = String::new();
        BufReader::new(&*conn).read_line(&mut line)?;
        Ok(line.trim().to_owned())
    })();
    drop(stop_tx);
    let _ = watcher.join();
    // Report why, if the context ended the exchange.
    result.map_err(|e| match ctx.err() {
        Some(c) => io::Error::from(c),
        None => e,
    })
}

struct Args {
    servers: usize,
    step: Duration,
    deadline: Duration,
}

fn parse_args() -> Args {
    let mut a = Args {
        servers: 10,
        step: Duration::from_millis(50),
        deadline: Duration::from_millis(400),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v: Option<u64> = it.next().and_then(|v| v.parse().ok());
        match (flag.as_str(), v) {
            ("--servers", Some(n)) if n > 0 => a.servers = n as usize,
            ("--step-ms", Some(n)) => a.step = Duration::from_millis(n),
            ("--deadline-ms", Some(n)) => a.deadline = Duration::from_millis(n),
            _ => {
                eprintln!("usage: fanout [--servers N] [--step-ms MS] [--deadline-ms MS]");
                std::process::exit(2);
            }
        }
    }
    a
}

fn main() -> io::Result<()> {
    let args = parse_args();
    let sigs = gopark::signal::notify(&[libc::SIGINT, libc::SIGTERM])?;
    let ok = gopark::run(move || -> io::Result<bool> {
        let addrs = (0..args.servers)
            .map(|i| start_server(i, args.step * i as u32))
            .collect::<io::Result<Vec<_>>>()?;
        println!(
            "fan-out to {} servers (server i answers after i*{:?}), deadline {:?}; Ctrl-C to cancel",
            addrs.len(),
            args.step,
            args.deadline
        );
        let start = Instant::now();
        let (ctx, cancel) = context::with_timeout(&context::background(), args.deadline);
        // Ctrl-C cancels the fan-out.
        {
            let ctx = ctx.clone();
            gopark::go!(move || select! {
                recv(sigs) -> s => {
                    eprintln!("\nfanout: signal {}, cancelling", s.unwrap_or(0));
                    cancel.cancel();
                },
                recv(ctx.done()) -> _ => {},
            });
        }
        let (group, gctx) = ErrGroup::with_context(&ctx);
        let answers = Arc::new(Mutex::new(Vec::new()));
        for (i, addr) in addrs.into_iter().enumerate() {
            let (gctx, answers) = (gctx.clone(), answers.clone());
            group.go(move || {
                let reply = fetch(&gctx, addr)?;
                answers.lock().unwrap().push((i, start.elapsed(), reply));
                Ok::<(), io::Error>(())
            });
        }
        // Wait for the group in a coroutine; meanwhile report progress.
        let (done_tx, done_rx) = gopark::chan::bounded(1);
        gopark::go!(move || done_tx.send(group.wait()));
        let progress = Ticker::new(Duration::from_millis(100));
        let result = loop {
            select! {
                recv(done_rx) -> r => break r.expect("the waiter always sends"),
                recv(progress.receiver()) -> _ => println!(
                    "  {:>5} ms: {} answers so far",
                    start.elapsed().as_millis(),
                    answers.lock().unwrap().len()
                ),
            }
        };
        let mut answers = answers.lock().unwrap().clone();
        answers.sort();
        for (i, at, reply) in &answers {
            println!("  server {i:>2} after {:>4} ms: {reply}", at.as_millis());
        }
        match result {
            Ok(()) => {
                println!("all {} servers answered", answers.len());
                Ok(true)
            }
            Err(e) => {
                let why = match ctx.err() {
                    Some(ContextError::DeadlineExceeded) => "the deadline passed",
                    Some(ContextError::Canceled) => "cancelled",
                    None => "a fetch failed",
                };
                println!("stopped after {} answers: {why} ({e})", answers.len());
                Ok(false)
            }
        }
    })?;
    std::process::exit(if ok { 0 } else { 1 });
}
