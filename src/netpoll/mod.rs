//! The netpoller, sharded per worker: each worker of a runtime owns an
//! epoll instance and an eventfd to break its blocked `epoll_wait` (Go's
//! `netpollBreak`), and polls only its own shard. The pollDesc protocol
//! (`PollDesc`, `sm::poll_desc`) is Go's, unchanged.
//!
//! Contract with the scheduler (Go's netpoll.go backend contract, per shard):
//! - [`Poller::poll`] waits on shard `w` up to `timeout` (`None`: forever,
//!   zero: just look) and hands the coroutines it unblocked to a
//!   [`PollSink`] (on a worker, its run queue as the poll finds them); the
//!   scheduler decides where they run (almost always on `w`).
//! - [`Poller::wake`] makes a blocked `poll` of shard `w` return soon;
//!   duplicate wakes before the poller runs collapse into one write.
//! - [`Poller::has_fds`] is cheap and tells a busy worker whether a
//!   non-blocking poll of its shard could find anything.
//!
//! Descriptors: [`Poller::open`] takes a [`PollDesc`] off the free list; it
//! is registered with no epoll yet. A coroutine about to park on it
//! ([`PollDesc::wait`]) first registers it with the shard of its own worker
//! ([`Poller::register`], once per shard), edge-triggered, for
//! `EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET`, with the PollDesc's address and the
//! low 16 bits of its incarnation number as the epoll data (Go's tagged
//! pointer). So readiness is reported by the epoll of the worker whose
//! coroutine waits, which readies it locally. A descriptor waited on from
//! two workers (a reader on one, a writer on the other) is registered with
//! both shards: epoll lets one file be in several epoll instances and
//! reports each edge to every one of them, the wait slots settle who takes
//! each parked coroutine (exactly one CAS), and a readiness seen by the
//! "wrong" shard is routed home like any cross-thread wake-up. A plain
//! thread never registers: it waits in poll(2). Registering with epoll
//! reports the current readiness at once (`epoll_ctl` polls the file), so
//! readiness that arrived before the registration is not lost.
//! [`Poller::close`] deregisters the descriptor from every shard it joined
//! and returns it to the free list. An event whose tag does not match the
//! PollDesc's current incarnation is for a closed descriptor and is dropped.

mod poll_desc;

pub(crate) use poll_desc::{err_closed, err_timeout, PollDesc};

use crate::runtime::Shared;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::coroutine::Task;
use crate::net::sys::syscall6;
use crate::sm::poll_desc::Mode;

/// Events fetched per `epoll_wait`.
const EVENTS: usize = 128;
/// epoll data: PollDesc address in the low 48 bits, tag in the high 16.
pub(crate) const TAG_SHIFT: u32 = 48;
const PTR_MASK: u64 = (1 << TAG_SHIFT) - 1;

/// Where [`Poller::poll`] delivers the coroutines a poll made runnable
/// (the worker's run queue, through `runtime::worker`; a `Vec` in tests).
pub(crate) trait PollSink {
    /// Called once per poll that returned events, before its pushes: at
    /// most `n` pushes follow.
    fn reserve(&mut self, n: usize);

    /// Takes one coroutine the poll unblocked (the wait slot's reference).
    ///
    /// # Safety
    /// Called at most `n` times after a `reserve(n)`.
    unsafe fn push(&mut self, task: Arc<Task>);
}

/// The tests' sink: the poll's coroutines in a `Vec`, in order.
#[cfg(test)]
impl PollSink for Vec<Arc<Task>> {
    fn reserve(&mut self, n: usize) {
        Vec::reserve(self, n);
    }

    /// # Safety
    /// None beyond the trait's: a `Vec` grows as needed, so any number of
    /// pushes is sound.
    unsafe fn push(&mut self, task: Arc<Task>) {
        Vec::push(self, task);
    }
}

/// PollDesc storage: every PollDesc ever allocated (freed with the poller)
/// and the free ones (Go's `pollCache`).
#[derive(Debug, Default)]
struct PollCache {
    all: Vec<NonNull<PollDesc>>,
    free: Vec<NonNull<PollDesc>>,
}

// SAFETY: the pointers are owned boxes (see `Poller::open`); PollDesc is Sync.
unsafe impl Send for PollCache {}

/// One worker's part of the poller: its epoll instance and wake-up.
#[derive(Debug)]
struct Shard {
    epfd: OwnedFd,
    evfd: OwnedFd,
    /// A wake is pending (the eventfd was written and not yet drained).
    wake_sig: AtomicBool,
    /// Descriptors registered with this shard.
    fds: AtomicUsize,
}

/// One runtime's poller: a shard per worker.
#[derive(Debug)]
pub(crate) struct Poller {
    shards: Box<[Shard]>,
    /// The epoll data of every shard's eventfd is this PollDesc's address:
    /// it is never opened, so its token stays 0 and matches no event, and
    /// `poll` tells the wake-up apart only among the events that do not
    /// match (no test per event for it).
    wake_pd: Box<PollDesc>,
    /// The kernel has `epoll_pwait2` (Linux 5.11+): timed waits have
    /// nanosecond, not millisecond, resolution.
    pwait2: bool,
    cache: Mutex<PollCache>,
    /// The runtime's workers have all stopped: nobody polls any more.
    dead: AtomicBool,
}

impl Drop for Poller {
    fn drop(&mut self) {
        let cache = self.cache.get_mut().unwrap_or_else(|e| e.into_inner());
        cache.free.clear();
        for p in cache.all.drain(..) {
            // SAFETY: every pointer in `all` came from `Box::into_raw` in
            // `open` and is freed only here; the runtime is gone, so no
            // descriptor, event or timer can refer to it any more.
            drop(unsafe { Box::from_raw(p.as_ptr()) });
        }
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Shard {
    fn new(wake_token: u64) -> io::Result<Shard> {
        // SAFETY: plain syscall; the result is checked.
        let epfd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
            .map_err(|e| io::Error::new(e.kind(), format!("epoll_create1 failed: {e}")))?;
        // SAFETY: a fresh descriptor we own.
        let epfd = unsafe { OwnedFd::from_raw_fd(epfd) };
        // SAFETY: plain syscall; the result is checked.
        let evfd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })
            .map_err(|e| io::Error::new(e.kind(), format!("eventfd failed: {e}")))?;
        // SAFETY: a fresh descriptor we own.
        let evfd = unsafe { OwnedFd::from_raw_fd(evfd) };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: wake_token,
        };
        // SAFETY: both descriptors are valid; `ev` outlives the call.
        cvt(unsafe {
            libc::epoll_ctl(
                epfd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                evfd.as_raw_fd(),
                &mut ev,
            )
        })?;
        Ok(Shard {
            epfd,
            evfd,
            wake_sig: AtomicBool::new(false),
            fds: AtomicUsize::new(0),
        })
    }

    fn drain_wake(&self) {
        let mut buf = 0u64;
        // SAFETY: reads 8 bytes into `buf`; the eventfd is non-blocking.
        unsafe {
            libc::read(
                self.evfd.as_raw_fd(),
                (&mut buf as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        self.wake_sig.store(false, Ordering::SeqCst);
    }
}

impl Poller {
    /// A poller with one shard per worker (`workers` >= 1).
    pub(crate) fn new(workers: usize) -> io::Result<Poller> {
        let wake_pd = Box::new(PollDesc::new(0));
        let wake_token = &*wake_pd as *const PollDesc as u64;
        assert!(
            wake_token & !PTR_MASK == 0 && wake_pd.token() != wake_token,
            "gopark: PollDesc address does not fit the epoll tag layout"
        );
        let shards = (0..workers.max(1))
            .map(|_| Shard::new(wake_token))
            .collect::<io::Result<Box<[Shard]>>>()?;
        let mut p = Poller {
            shards,
            wake_pd,
            pwait2: false,
            cache: Mutex::new(PollCache::default()),
            dead: AtomicBool::new(false),
        };
        // Probe once with a zero timeout: older kernels say ENOSYS, some
        // seccomp filters EPERM; either way fall back to epoll_pwait.
        let mut ev = [std::mem::MaybeUninit::uninit()];
        p.pwait2 = p.epoll_wait(0, Some(Duration::ZERO), true, &mut ev).is_ok();
        Ok(p)
    }

    /// Number of shards (the runtime's worker count).
    #[inline]
    pub(crate) fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Go's `poll_runtime_pollOpen`: a fresh PollDesc for `fd`, registered
    /// with no shard yet (see [`register`](Self::register)). The pointer
    /// stays valid as long as this poller.
    /// `epoch`: the epoch of the runtime that owns this poller.
    pub(crate) fn open(&self, fd: RawFd, epoch: &Instant) -> io::Result<NonNull<PollDesc>> {
        let p = {
            let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match c.free.pop() {
                Some(p) => p,
                None => {
                    let p = NonNull::from(Box::leak(Box::new(PollDesc::new(self.shards.len()))));
                    assert!(
                        p.as_ptr() as u64 & !PTR_MASK == 0,
                        "gopark: PollDesc address does not fit the epoll tag layout"
                    );
                    c.all.push(p);
                    p
                }
            }
        };
        // SAFETY: type-stable memory owned by this poller (see PollCache).
        let pd = unsafe { p.as_ref() };
        pd.open(fd);
        pd.init_waits(epoch);
        // SeqCst, after `open`'s SeqCst reset of the info bits: either this
        // load sees `dead`, or `shutdown`'s `set_dead` on this PollDesc comes
        // after the reset (Dekker with the store of `dead` in `shutdown`).
        if self.dead.load(Ordering::SeqCst) {
            pd.state.set_dead();
        }
        Ok(p)
    }

    /// Registers `pd`'s descriptor with shard `shard` unless it already is
    /// (edge-triggered, tagged data: see the module docs). Called by a
    /// coroutine of that shard's worker before it parks on `pd`, holding a
    /// reference to the descriptor (so no `close` runs meanwhile); only that
    /// worker registers with its shard, so the check-then-add cannot race.
    #[inline(always)]
    pub(crate) fn register(&self, pd: &PollDesc, shard: usize) -> io::Result<()> {
        if pd.in_shard(shard) {
            return Ok(());
        }
        self.register_slow(pd, shard)
    }

    /// [`register`](Self::register) for a descriptor not yet in `shard`.
    #[cold]
    #[inline(never)]
    fn register_slow(&self, pd: &PollDesc, shard: usize) -> io::Result<()> {
        let sh = &self.shards[shard];
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: pd.token(),
        };
        // SAFETY: `ev` outlives the call; a bad fd is reported as an error.
        let r =
            unsafe { libc::epoll_ctl(sh.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, pd.fd(), &mut ev) };
        match cvt(r) {
            Ok(_) => {}
            // Registered through a duplicate of the descriptor (the same
            // open file): already reported here.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e),
        }
        pd.set_in_shard(shard);
        sh.fds.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Go's `poll_runtime_pollClose`: deregisters `fd` (still open) from
    /// every shard it joined and recycles its PollDesc. The caller evicted it
    /// first and no op uses it.
    pub(crate) fn close(&self, fd: RawFd, pd: NonNull<PollDesc>) {
        // SAFETY: type-stable memory owned by this poller.
        let d = unsafe { pd.as_ref() };
        d.take_shards(|shard| {
            let sh = &self.shards[shard];
            let mut ev = libc::epoll_event { events: 0, u64: 0 };
            // SAFETY: plain syscall; failure (fd not registered) is harmless.
            unsafe { libc::epoll_ctl(sh.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) };
            sh.fds.fetch_sub(1, Ordering::Relaxed);
        });
        self.release(pd);
    }

    fn release(&self, pd: NonNull<PollDesc>) {
        // Bump the incarnation so stale events and timers are dropped even
        // before the PollDesc is reused.
        // SAFETY: type-stable memory owned by this poller.
        unsafe { pd.as_ref() }.open(-1);
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        c.free.push(pd);
    }

    /// Called by the last worker of the runtime `own` (whose poller this is)
    /// to stop: shuts the poller down. Every descriptor is marked dead, so
    /// that coroutines (of other runtimes) waiting on one wake with an error
    /// and later ones do not park (nobody would poll for them). Every
    /// coroutine of `own` has been unwound by then.
    pub(crate) fn last_worker_stopped(&self, own: &Shared) {
        // SeqCst: see `open`.
        self.dead.store(true, Ordering::SeqCst);
        let all = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .all
            .clone();
        let mut parked = Vec::new();
        for p in all {
            // SAFETY: type-stable memory owned by this poller (PollCache).
            let pd = unsafe { p.as_ref() };
            pd.state.set_dead();
            for mode in [Mode::Read, Mode::Write] {
                if let Some(t) = pd.state.unblock(mode, false) {
                    // SAFETY: as in `PollDesc::unblock_and_ready`: the slot's
                    // reference, taken out exactly once by `unblock`.
                    parked.push(unsafe { Arc::from_raw(t as *const Task) });
                }
            }
        }
        for t in parked {
            if std::ptr::eq(Arc::as_ptr(&t.shared), own) {
                // One of this runtime's own coroutines: not expected (each
                // was unwound, and its unwind guard emptied its slot), and
                // there is nobody to run it: drop the reference.
                drop(t);
            } else {
                crate::coroutine::ready(t);
            }
        }
    }

    /// True if descriptors are registered with shard `shard` (so a
    /// non-blocking poll of it could find something).
    #[inline]
    pub(crate) fn has_fds(&self, shard: usize) -> bool {
        self.shards[shard].fds.load(Ordering::Relaxed) != 0
    }

    /// One `epoll_wait` on shard `shard` into `events`: with a timeout and
    /// `pwait2`, `epoll_pwait2` with a nanosecond timeout; else `epoll_pwait`
    /// with the timeout rounded up to whole milliseconds (so a timer is never
    /// woken early; a 100 us sleep then lasts 1 ms, as Go's does on Linux).
    fn epoll_wait(
        &self,
        shard: usize,
        timeout: Option<Duration>,
        pwait2: bool,
        events: &mut [std::mem::MaybeUninit<libc::epoll_event>],
    ) -> io::Result<usize> {
        let epfd = self.shards[shard].epfd.as_raw_fd();
        let n = match timeout {
            Some(d) if pwait2 => {
                // Clamp to ~68 years: tv_sec must stay representable.
                let ts = libc::timespec {
                    tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
                    tv_nsec: d.subsec_nanos() as libc::c_long,
                };
                // SAFETY: `events` is writable for its length, `ts` outlives
                // the call; no signal mask. Raw syscall: see below.
                unsafe {
                    syscall6(
                        libc::SYS_epoll_pwait2,
                        epfd as usize,
                        events.as_mut_ptr() as usize,
                        events.len(),
                        &ts as *const libc::timespec as usize,
                        0,
                        8,
                    )
                }
            }
            _ => {
                let ms: libc::c_int = match timeout {
                    None => -1,
                    Some(d) if d.is_zero() => 0,
                    // Round up; clamp to ~24 days.
                    Some(d) => d
                        .as_nanos()
                        .div_ceil(1_000_000)
                        .min(i32::MAX as u128 / 1000) as libc::c_int,
                };
                // SAFETY: `events` is writable for its length. The raw
                // syscall (epoll_pwait with no signal mask, which aarch64
                // has too) skips glibc's cancellation-point bookkeeping
                // (gopark never cancels threads), made inline
                // (`net::sys::syscall6`) rather than through glibc's
                // `syscall(2)`, which shuffles all its argument registers.
                unsafe {
                    syscall6(
                        libc::SYS_epoll_pwait,
                        epfd as usize,
                        events.as_mut_ptr() as usize,
                        events.len(),
                        ms as isize as usize,
                        0,
                        8,
                    )
                }
            }
        };
        // The kernel's return value: -errno on failure.
        if n < 0 {
            Err(io::Error::from_raw_os_error(-n as i32))
        } else {
            Ok(n as usize)
        }
    }

    /// Waits for events on shard `shard` (see the module docs) and hands
    /// the coroutines they unblock to `out`. Only the shard's own worker
    /// calls it.
    #[inline]
    pub(crate) fn poll(&self, shard: usize, timeout: Option<Duration>, out: &mut impl PollSink) {
        // Uninitialised: the kernel writes the first `n` entries, and only
        // those are read (no 1.5 KiB memset per poll).
        let mut events = [const { std::mem::MaybeUninit::<libc::epoll_event>::uninit() }; EVENTS];
        let blocking = timeout != Some(Duration::ZERO);
        // Only timed waits gain from nanoseconds; `epoll_pwait` otherwise.
        let pwait2 = self.pwait2 && blocking && timeout.is_some();
        let n = match self.epoll_wait(shard, timeout, pwait2, &mut events) {
            Ok(n) => n,
            Err(e) => {
                assert_eq!(
                    e.kind(),
                    io::ErrorKind::Interrupted,
                    "gopark: epoll_wait failed: {e}"
                );
                return;
            }
        };
        if n == 0 {
            return;
        }
        // Room for the two directions of every event, so that each task is
        // one store into the sink (see `PollSink::push`).
        out.reserve(2 * n);
        // A pointer walk with the test at the bottom (`n` is not 0): an add,
        // a compare and a branch per event, where the slice iterator took
        // five.
        let mut at = events.as_ptr();
        // SAFETY: `n <= EVENTS` (the kernel writes at most the length it was
        // given): one past the last written entry, inside or just past
        // `events`.
        let end = unsafe { at.add(n) };
        loop {
            // SAFETY: `at` points to one of the first `n` entries, which the
            // kernel initialised.
            let ev = unsafe { (*at).assume_init_read() };
            // SAFETY: at most one past the last entry (see `end`).
            at = unsafe { at.add(1) };
            let data = ev.u64;
            let p = (data & PTR_MASK) as *const PollDesc;
            // SAFETY: the data was built by `register` from a PollDesc of
            // this poller, or is the eventfd's, `wake_pd`'s address;
            // PollDesc memory is type-stable for the poller's life.
            let pd = unsafe { &*p };
            if pd.token() == data {
                pd.netpollready(ev.events, |t| {
                    // SAFETY: at most two tasks per event (one per
                    // direction), and `2 * n` reserved above.
                    unsafe { out.push(t) };
                });
            } else {
                self.unmatched_event(shard, p, blocking);
            }
            if at == end {
                break;
            }
        }
    }

    /// An event whose data matches no PollDesc's token: for a closed
    /// descriptor (ignored), or the eventfd's (`wake_pd` never matches),
    /// which a blocking poll consumes. Out of line, so that the poll's loop
    /// keeps no state for it.
    ///
    /// Only a blocking poll consumes a wake (as Go's netpoll): a wake is
    /// meant for the sleep that follows the worker's
    /// `SleepState::prepare`, and a non-blocking poll (the fairness look of
    /// a busy worker) must not swallow one that came early; at worst a
    /// stale wake makes the next blocking poll return at once.
    #[cold]
    #[inline(never)]
    fn unmatched_event(&self, shard: usize, p: *const PollDesc, blocking: bool) {
        if blocking && ptr::eq(p, &*self.wake_pd) {
            self.shards[shard].drain_wake();
        }
    }

    /// Breaks a blocked `poll` of shard `shard` (Go's `netpollBreak`).
    pub(crate) fn wake(&self, shard: usize) {
        let sh = &self.shards[shard];
        if sh.wake_sig.swap(true, Ordering::SeqCst) {
            return;
        }
        let one = 1u64;
        // SAFETY: writes 8 bytes from `one` to our eventfd.
        unsafe {
            libc::write(
                sh.evfd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::MaybeUninit;

    /// Both wait paths (nanosecond `epoll_pwait2`, millisecond
    /// `epoll_pwait` fallback) wait at least the timeout — a timer is never
    /// woken early — and report no events on an idle poller.
    #[test]
    fn timed_waits_never_return_early_on_either_path() {
        let p = Poller::new(1).unwrap();
        for pwait2 in [false, p.pwait2] {
            for timeout in [Duration::from_micros(300), Duration::from_millis(3)] {
                let mut ev = [MaybeUninit::uninit(); 4];
                let t = Instant::now();
                let n = p.epoll_wait(0, Some(timeout), pwait2, &mut ev).unwrap();
                assert_eq!(n, 0, "pwait2={pwait2}");
                assert!(t.elapsed() >= timeout, "pwait2={pwait2} woke early");
            }
        }
    }

    /// A zero timeout only looks; a pending wake is reported to a blocking
    /// wait, which drains it. A wake reaches only its own shard.
    #[test]
    fn wake_breaks_a_blocking_poll_and_is_drained() {
        let p = Poller::new(2).unwrap();
        p.wake(1);
        let mut out = Vec::new();
        p.poll(1, Some(Duration::ZERO), &mut out); // looks, does not drain
        assert!(p.shards[1].wake_sig.load(Ordering::SeqCst));
        assert!(!p.shards[0].wake_sig.load(Ordering::SeqCst));
        p.poll(0, Some(Duration::from_millis(1)), &mut out); // nothing for 0
        assert!(p.shards[1].wake_sig.load(Ordering::SeqCst));
        p.poll(1, None, &mut out); // returns at once: the wake is pending
        assert!(out.is_empty());
        assert!(!p.shards[1].wake_sig.load(Ordering::SeqCst), "drained");
    }

    /// A descriptor registered with two shards reports each edge to both;
    /// closing it deregisters it from both, and a recycled PollDesc starts
    /// with no shard.
    #[test]
    fn a_descriptor_in_two_shards_reports_to_both() {
        use std::io::Write;
        use std::os::unix::net::UnixStream;
        let p = Poller::new(2).unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let pd = p.open(a.as_raw_fd(), &Instant::now()).unwrap();
        // SAFETY: type-stable memory owned by `p`.
        let d = unsafe { pd.as_ref() };
        p.register(d, 0).unwrap();
        p.register(d, 1).unwrap();
        p.register(d, 1).unwrap(); // idempotent
        assert!(p.has_fds(0) && p.has_fds(1));
        let mut out = Vec::new();
        // Drain the writability reported at registration.
        p.poll(0, Some(Duration::ZERO), &mut out);
        p.poll(1, Some(Duration::ZERO), &mut out);
        d.state.consume_ready(Mode::Read);
        b.write_all(b"x").unwrap();
        let mut ev = [MaybeUninit::uninit(); 4];
        for shard in [0, 1] {
            let n = p
                .epoll_wait(shard, Some(Duration::from_secs(5)), false, &mut ev)
                .unwrap();
            assert_eq!(n, 1, "shard {shard} saw the edge");
        }
        p.close(a.as_raw_fd(), pd);
        assert!(!p.has_fds(0) && !p.has_fds(1));
        b.write_all(b"y").unwrap();
        for shard in [0, 1] {
            let n = p
                .epoll_wait(shard, Some(Duration::ZERO), false, &mut ev)
                .unwrap();
            assert_eq!(n, 0, "shard {shard} deregistered");
        }
        let pd2 = p.open(a.as_raw_fd(), &Instant::now()).unwrap();
        assert_eq!(pd2, pd, "recycled");
        // SAFETY: as above.
        let d2 = unsafe { pd2.as_ref() };
        assert!(!d2.in_shard(0) && !d2.in_shard(1));
    }
}
