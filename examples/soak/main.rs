//! A soak and fault test: one process runs an echo server and its clients
//! (coroutines and plain threads) with faulty peers, EMFILE windows,
//! channel/`select!`/`Mutex` churn and runtimes built and dropped, all at
//! once; then checks that nothing was lost or leaked.
//!
//! Run with: `cargo run --release --example soak -- --secs 600`
//!
//! Exits 0 when every byte was verified and no descriptor, coroutine or
//! memory leaked, 1 otherwise (the summary names the failed checks).
//! docs/RELIABILITY.md describes what runs and what is checked.

mod suite;

fn usage() -> ! {
    eprintln!(
        "usage: soak [--secs N] [--conns N] [--workers N] [--max-msg BYTES] [--seed N] [--quiet] [--ci]\n\
         \x20           [--skip faults,emfile,channels,runtimes]\n\
         --ci: the test suite's smaller run (about 15 s; --secs is then ignored)\n\
         --skip: leave parts out, to narrow down a failure"
    );
    std::process::exit(2);
}

fn main() {
    let mut secs = 30;
    let mut conns = None;
    let mut workers = None;
    let mut max_msg = None;
    let mut seed = None;
    let mut quiet = false;
    let mut ci = false;
    let mut skip = suite::Skip::default();
    let mut args = std::env::args().skip(1);
    let num = |args: &mut dyn Iterator<Item = String>| -> u64 {
        args.next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage())
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = num(&mut args),
            "--conns" => conns = Some(num(&mut args) as usize),
            "--workers" => workers = Some(num(&mut args) as usize),
            "--max-msg" => max_msg = Some(num(&mut args) as usize),
            "--seed" => seed = Some(num(&mut args)),
            "--quiet" => quiet = true,
            "--ci" => ci = true,
            "--skip" => {
                let list = args.next().unwrap_or_else(|| usage());
                for part in list.split(',') {
                    match part {
                        "faults" => skip.faults = true,
                        "emfile" => skip.emfile = true,
                        "channels" => skip.channels = true,
                        "runtimes" => skip.runtimes = true,
                        _ => usage(),
                    }
                }
            }
            _ => usage(),
        }
    }
    let mut cfg = if ci {
        suite::Config::ci()
    } else {
        suite::Config::full(secs)
    };
    cfg.conns = conns.unwrap_or(cfg.conns);
    cfg.workers = workers.or(cfg.workers);
    cfg.max_msg = max_msg.unwrap_or(cfg.max_msg).max(1);
    cfg.seed = seed.unwrap_or(cfg.seed);
    cfg.progress = !quiet;
    cfg.skip = skip;
    let report = suite::run(&cfg);
    print!("{}", report.table);
    std::process::exit(if report.failures.is_empty() { 0 } else { 1 });
}
