//! Skynet: a million coroutines in a ten-ary tree, each leaf sending its number up, each parent summing its children's over a channel.
//!
//! Run with: `cargo run --release --example skynet -- --workers 2 --runs 5`
//!
//! The classic spawn benchmark: node `(num, size)` is a leaf when `size` is 1
//! and sends `num`; otherwise it makes one rendezvous channel, spawns `div`
//! children `(num + i * size / div, size / div)` that all send on it,
//! receives their `div` sums and sends the total to its own parent. With the
//! defaults (`--size 1000000 --div 10`) that is 1,111,111 coroutines, and the
//! root's sum is 0 + 1 + ... + 999,999 = 499,999,500,000 (asserted).
//!
//! Each run prints its wall time; `benches/go/skynet.go` is the same program
//! in Go, with the same output, for a side-by-side run (docs/PERFORMANCE.md).
//! Peak memory is the process's (`/usr/bin/time -v`, "Maximum resident set
//! size").

use std::time::Instant;

use gopark::chan::{self, Sender};

fn usage() -> ! {
    eprintln!("usage: skynet [--workers N] [--runs N] [--size N] [--div N]");
    std::process::exit(2);
}

/// One node of the tree: sends the sum of `num .. num + size` to `out`.
fn skynet(out: Sender<u64>, num: u64, size: u64, div: u64) {
    if size == 1 {
        out.send(num)
            .expect("the parent receives every child's sum");
        return;
    }
    let (tx, rx) = chan::bounded::<u64>(0);
    let sub = size / div;
    for i in 0..div {
        let tx = tx.clone();
        // Detached (the handle is dropped), as Go's `go` statement.
        gopark::go!(skynet(tx, num + i * sub, sub, div));
    }
    drop(tx);
    let sum = (0..div)
        .map(|_| rx.recv().expect("every child sends once"))
        .sum();
    out.send(sum)
        .expect("the parent receives every child's sum");
}

fn main() -> std::io::Result<()> {
    let (mut workers, mut runs, mut size, mut div) = (None, 5usize, 1_000_000u64, 10u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = || -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| usage())
        };
        match a.as_str() {
            "--workers" => workers = Some(num() as usize),
            "--runs" => runs = num() as usize,
            "--size" => size = num(),
            "--div" => div = num(),
            _ => usage(),
        }
    }
    // The tree must divide evenly down to single leaves.
    let mut s = size;
    while s > 1 {
        if div < 2 || s % div != 0 {
            eprintln!("skynet: --size must be a power of --div (>= 2)");
            std::process::exit(2);
        }
        s /= div;
    }
    let mut builder = gopark::Runtime::builder();
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    let rt = builder.build()?;
    let expected = size * (size - 1) / 2;
    for run in 1..=runs {
        let t = Instant::now();
        let sum = rt.run(move || {
            let (tx, rx) = chan::bounded::<u64>(0);
            gopark::go!(skynet(tx, 0, size, div));
            rx.recv().expect("the root sends its sum")
        });
        let ms = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(sum, expected, "skynet: wrong sum");
        println!(
            "skynet run={run} workers={} size={size} div={div} sum={sum} ms={ms:.1}",
            rt.workers()
        );
    }
    Ok(())
}
