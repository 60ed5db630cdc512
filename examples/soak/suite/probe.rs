//! What the soak measures about the process: open descriptors, resident
//! memory, and whether every worker still runs coroutines.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopark::Runtime;

use super::stats::{self, Live, Role, C};
use super::Phase;

/// Open descriptors of this process (entries of /proc/self/fd, less the
/// one that lists them).
pub fn fds() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?
        .count()
        .saturating_sub(1))
}

/// Resident memory in bytes, from /proc/self/statm, after handing the
/// allocator's free pages back to the system (glibc keeps them otherwise,
/// and the figure would say more about fragmentation than about leaks).
pub fn settled_rss() -> io::Result<u64> {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory; always safe to call.
    unsafe {
        libc::malloc_trim(0);
    }
    rss()
}

/// Resident memory in bytes, from /proc/self/statm.
pub fn rss() -> io::Result<u64> {
    let s = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable statm"))?;
    // SAFETY: plain libc call.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Ok(pages * page.max(1) as u64)
}

/// Runs a coroutine pinned to each worker of `rt` in turn; each must run
/// within `bound`. Returns the slowest.
pub fn workers(rt: &Runtime, bound: Duration) -> Result<Duration, String> {
    let mut worst = Duration::ZERO;
    for i in 0..rt.workers() {
        let (tx, rx) = gopark::chan::bounded(1);
        let live = Live::enter(Role::Probe);
        let t = Instant::now();
        gopark::Builder::new()
            .name(format!("probe-{i}"))
            .worker(i)
            .spawn_on(rt, move || {
                let _live = live;
                let _ = tx.send(gopark::worker_index());
            })
            .map_err(|e| format!("worker {i}: probe not spawned: {e}"))?;
        match rx.recv_timeout(bound) {
            Ok(Some(w)) if w == i => worst = worst.max(t.elapsed()),
            Ok(w) => return Err(format!("the probe for worker {i} ran on {w:?}")),
            Err(_) => {
                return Err(format!(
                    "worker {i} did not run a coroutine within {bound:?}"
                ))
            }
        }
    }
    Ok(worst)
}

/// Every second until the phase stops: probes the workers, samples the
/// resident memory into `peak`, and (with `progress`) prints a line every
/// ten seconds.
pub fn monitor(ph: Arc<Phase>, rt: Arc<Runtime>, peak: Arc<AtomicU64>, label: &'static str) {
    let t0 = Instant::now();
    let mut tick = 0u64;
    while ph.nap(Duration::from_secs(1)) {
        tick += 1;
        match workers(&rt, ph.cfg.client_bound) {
            Ok(d) => {
                ph.stats.inc(C::Probes);
                ph.stats.max(C::ProbeMaxMicros, d.as_micros() as u64);
            }
            Err(e) => ph.stats.fail(format!("{label}: {e}")),
        }
        // Unreadable during an EMFILE window: skip the sample.
        if let Ok(r) = rss() {
            peak.fetch_max(r, Relaxed);
        }
        if ph.cfg.progress && tick % 10 == 0 {
            let s = &ph.stats;
            eprintln!(
                "soak: {label} {:>5} s: {} connections, {} verified, {} faults, rss {}, {} live",
                t0.elapsed().as_secs(),
                s.get(C::ConnsAccepted),
                stats::bytes(s.get(C::BytesClientVerified)),
                s.get(C::ConnsFault),
                rss().map_or("?".into(), stats::bytes),
                stats::live_total(),
            );
        }
    }
}
