//! Multi-core echo benchmarks (not tests): servers in child processes, a
//! client of plain threads in this one, servers interleaved round by round.
//!
//! - **CPU-heavy echo**: 8 connections, each sends 64 bytes and waits for
//!   them back; the server computes `ITERS` iterations of a fixed
//!   arithmetic loop (about 25 us here at the default) per message before
//!   answering. gopark with 1 and 2 workers, and, when `GO_CPU_ECHO` names
//!   the binary of `benches/go/cpu_echo.go`, Go with GOMAXPROCS=1 and 2.
//!   Reports requests/s, server CPU per request (`/proc/PID/stat`), and the
//!   2-worker / 1-worker throughput ratio for each, and the client's own CPU
//!   per request (it shares the machine: see `load`).
//! - **A hog on one worker**: a 2-worker gopark server whose worker 0 also
//!   runs a coroutine that computes for 100 ms every 500 ms without
//!   yielding (placed there with `Builder::worker`). 50 connections do
//!   plain (no computation) echo round trips; each learns from the server
//!   which worker its handler lives on. Reports the worst round trip of
//!   the connections on worker 1 (the hog's worker does not stall them)
//!   and on worker 0 (it does: about 100 ms), and the worst round trip of
//!   the same load on the same server without the hog (what the client
//!   threads and the machine add on their own).
//!
//! Run with: `cargo bench --bench cpu_echo [-- ROUNDS [SECS [ITERS]]]`
//! (defaults 5 rounds of 4 s, 15000 iterations; the Go server:
//! `go build -o /tmp/cpu-echo-go benches/go/cpu_echo.go` then
//! `GO_CPU_ECHO=/tmp/cpu-echo-go cargo bench --bench cpu_echo`).
//! Server and client share the machine's CPUs, as in the other harnesses.
//! Without `--bench` (`cargo test --benches`) one short round runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONNS: usize = 8;
const MSG: usize = 64;
const HOG_CONNS: usize = 50;

fn work(iters: u64) -> u64 {
    let mut x = 1u64;
    for _ in 0..iters {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x ^= x >> 29;
    }
    x
}

// ---- the server (child process) -------------------------------------------

/// `cpu_echo --serve WORKERS ITERS HOG`: prints `ADDR` on stdout, then
/// serves until killed. Each connection first gets one byte, the index of
/// the worker its handler runs on, then its messages echoed after `ITERS`
/// iterations of work each.
fn serve(workers: usize, iters: u64, hog: bool) -> ! {
    let rt = gopark::Runtime::builder().workers(workers).build().unwrap();
    let l = rt
        .run(|| gopark::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    println!("{}", l.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    if hog {
        gopark::Builder::new()
            .worker(0)
            .spawn_on(&rt, || loop {
                let t = Instant::now();
                while t.elapsed() < Duration::from_millis(100) {
                    std::hint::black_box(work(1000));
                }
                gopark::time::sleep(Duration::from_millis(400));
            })
            .unwrap();
    }
    rt.run(move || loop {
        let (c, _) = l.accept().unwrap();
        c.set_nodelay(true).unwrap();
        gopark::go!(move || {
            let mut c = &c;
            let w = gopark::worker_index().unwrap() as u8;
            if c.write_all(&[w]).is_err() {
                return;
            }
            let mut buf = [0u8; 4096];
            loop {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if iters > 0 {
                            std::hint::black_box(work(std::hint::black_box(iters)));
                        }
                        if c.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    })
}

// ---- the client (this process) --------------------------------------------

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(mut cmd: Command) -> Server {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("start server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Server {
            child,
            addr: line.trim().to_owned(),
        }
    }

    /// utime + stime of the server process, in seconds.
    fn cpu(&self) -> f64 {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let rest = &s[s.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        ticks / 100.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(addr: &str) -> (TcpStream, u8) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    let mut w = [0u8; 1];
    c.read_exact(&mut w).unwrap();
    (c, w[0])
}

/// utime + stime of this process (the client), in seconds.
fn client_cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

/// Round trips on `conns` connections for `secs`: (requests/s, server CPU
/// per request in us, client CPU per request in us, connections per
/// worker). The client's CPU per request matters on a shared machine: the
/// kernel charges a sender for the receiver's TCP input and its wake-up, so
/// what the client spends depends on where the server's threads run and
/// where the kernel wakes the client's threads (on the same CPU or with an
/// interrupt to the other), and every microsecond it spends is one the
/// server does not get.
fn load(server: &Server, conns: usize, secs: f64) -> (f64, f64, f64, [usize; 2]) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut split = [0; 2];
    let socks: Vec<_> = (0..conns)
        .map(|_| {
            let (c, w) = connect(&server.addr);
            split[usize::from(w).min(1)] += 1;
            c
        })
        .collect();
    let cpu0 = server.cpu();
    let client0 = client_cpu();
    let t = Instant::now();
    let threads: Vec<_> = socks
        .into_iter()
        .map(|mut c| {
            let (stop, count) = (stop.clone(), count.clone());
            std::thread::spawn(move || {
                let msg = [7u8; MSG];
                let mut back = [0u8; MSG];
                while !stop.load(Ordering::Relaxed) {
                    c.write_all(&msg).unwrap();
                    c.read_exact(&mut back).unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        th.join().unwrap();
    }
    let wall = t.elapsed().as_secs_f64();
    let n = count.load(Ordering::Relaxed) as f64;
    (
        n / wall,
        (server.cpu() - cpu0) * 1e6 / n,
        (client_cpu() - client0) * 1e6 / n,
        split,
    )
}

/// The hog shape: worst round trip (ms) of the connections on worker 0 and
/// on worker 1, and how many connections each worker got.
fn hog_load(server: &Server, secs: f64) -> ([f64; 2], [usize; 2]) {
    let stop = Arc::new(AtomicBool::new(false));
    let socks: Vec<_> = (0..HOG_CONNS).map(|_| connect(&server.addr)).collect();
    let mut split = [0; 2];
    for (_, w) in &socks {
        split[usize::from(*w).min(1)] += 1;
    }
    let threads: Vec<_> = socks
        .into_iter()
        .map(|(mut c, w)| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let msg = [7u8; MSG];
                let mut back = [0u8; MSG];
                let mut worst = Duration::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    c.write_all(&msg).unwrap();
                    c.read_exact(&mut back).unwrap();
                    worst = worst.max(t.elapsed());
                    // About 1,000 requests/s per connection.
                    std::thread::sleep(Duration::from_millis(1));
                }
                (w, worst)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let mut worst = [0.0f64; 2];
    for th in threads {
        let (w, d) = th.join().unwrap();
        let i = usize::from(w).min(1);
        worst[i] = worst[i].max(d.as_secs_f64() * 1e3);
    }
    (worst, split)
}

fn median(v: &[f64]) -> (f64, f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        let workers = args[1].parse().unwrap();
        let iters = args[2].parse().unwrap();
        serve(workers, iters, args[3] == "hog");
    }
    let bench = args.iter().any(|a| a == "--bench");
    let nums: Vec<f64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let rounds = nums
        .first()
        .copied()
        .unwrap_or(if bench { 5.0 } else { 1.0 }) as usize;
    let secs = nums
        .get(1)
        .copied()
        .unwrap_or(if bench { 4.0 } else { 0.3 });
    let iters = nums.get(2).copied().unwrap_or(15_000.0) as u64;
    let go = std::env::var("GO_CPU_ECHO").ok().filter(|s| !s.is_empty());
    if go.is_none() {
        println!("note: GO_CPU_ECHO not set: the Go server is skipped");
    }
    let me = std::env::current_exe().unwrap();
    let gopark = |workers: usize, iters: u64, hog: bool| {
        let mut c = Command::new(&me);
        c.args(["--serve", &workers.to_string(), &iters.to_string()]);
        c.arg(if hog { "hog" } else { "-" });
        c
    };
    let go_server = |procs: usize| {
        let mut c = Command::new(go.as_deref().unwrap());
        c.args(["-iters", &iters.to_string()]);
        c.env("GOMAXPROCS", procs.to_string());
        c
    };
    let mut names = vec!["gopark-1w", "gopark-2w"];
    if go.is_some() {
        names.extend(["go-1p", "go-2p"]);
    }
    let command = |name: &str| match name {
        "gopark-1w" => gopark(1, iters, false),
        "gopark-2w" => gopark(2, iters, false),
        "go-1p" => go_server(1),
        _ => go_server(2),
    };
    println!("cpu-heavy echo: {CONNS} connections x {MSG} B, {iters} iterations per message, {secs} s per run, {rounds} rounds");
    let mut res: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); names.len()];
    for r in 0..rounds {
        for (i, name) in names.iter().enumerate() {
            let s = Server::start(command(name));
            let (rps, cpu, client, split) = load(&s, CONNS, secs);
            let split = if name.starts_with("gopark") {
                format!("  connections per worker {split:?}")
            } else {
                String::new()
            };
            println!(
                "round {r}: {name:10} {rps:9.0} req/s  {cpu:6.2} us CPU/req  client {client:5.2} us/req{split}"
            );
            res[i].push((rps, cpu, client));
        }
    }
    let mut med = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let rps: Vec<f64> = res[i].iter().map(|x| x.0).collect();
        let cpu: Vec<f64> = res[i].iter().map(|x| x.1).collect();
        let (m, lo, hi) = median(&rps);
        let client: Vec<f64> = res[i].iter().map(|x| x.2).collect();
        let (c, clo, chi) = median(&cpu);
        let (k, klo, khi) = median(&client);
        println!("cpu_echo/{name}: median {m:.0} req/s ({lo:.0}..{hi:.0}), {c:.2} us CPU/req ({clo:.2}..{chi:.2}), client {k:.2} us/req ({klo:.2}..{khi:.2})");
        med.push(m);
    }
    println!("cpu_echo: gopark 2w/1w {:.2}x", med[1] / med[0]);
    if med.len() == 4 {
        println!("cpu_echo: go 2p/1p {:.2}x", med[3] / med[2]);
    }

    println!("hog: 2 workers, worker 0 computes 100 ms every 500 ms; {HOG_CONNS} connections, plain echo, {secs} s per run");
    let (mut w0, mut w1, mut base) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        let s = Server::start(gopark(2, 0, true));
        let (worst, split) = hog_load(&s, secs);
        drop(s);
        // The same load without the hog: what the client and the machine
        // add on their own.
        let s = Server::start(gopark(2, 0, false));
        let (alone, _) = hog_load(&s, secs);
        let alone = alone[0].max(alone[1]);
        println!(
            "round {r}: worst round trip on worker 1 {:.2} ms ({} connections), on worker 0 {:.1} ms ({}); without the hog {alone:.2} ms",
            worst[1], split[1], worst[0], split[0]
        );
        w0.push(worst[0]);
        w1.push(worst[1]);
        base.push(alone);
    }
    let (m1, lo1, hi1) = median(&w1);
    let (m0, lo0, hi0) = median(&w0);
    let (mb, lob, hib) = median(&base);
    println!("hog/worst_on_other_worker: median {m1:.2} ms ({lo1:.2}..{hi1:.2})");
    println!("hog/worst_on_hog_worker: median {m0:.1} ms ({lo0:.1}..{hi0:.1})");
    println!("hog/worst_without_hog: median {mb:.2} ms ({lob:.2}..{hib:.2})");
}
