//! The netpoller: one epoll instance per runtime, polled by the workers
//! themselves (as Go's are), and one eventfd to break a blocked
//! `epoll_wait` (Go's `netpollBreak`).
//!
//! Contract with the scheduler (Go's netpoll.go backend contract):
//! - [`Poller::poll`] waits up to `timeout` (`None`: forever, zero: just
//!   look) and appends the coroutines that became runnable to `out`; the
//!   scheduler decides where they run.
//! - [`Poller::wake`] makes a blocked `poll` return soon; duplicate wakes
//!   before the poller runs collapse into one write.
//! - [`Poller::has_waiters`] is cheap and tells busy workers whether a
//!   non-blocking poll could find anything.
//!
//! Descriptors: [`Poller::open`] takes a [`PollDesc`] off the free list and
//! registers the fd once, edge-triggered, for
//! `EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET`, with the PollDesc's address and
//! the low 16 bits of its incarnation number as the epoll data (Go's tagged
//! pointer); [`Poller::close`] deregisters it and returns it to the free
//! list. An event whose tag does not match the PollDesc's current
//! incarnation is for a closed descriptor and is dropped.

mod poll_desc;

pub(crate) use poll_desc::{err_closed, err_timeout, PollDesc};

use crate::runtime::Shared;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::coroutine::Task;
use crate::sm::poll_desc::Mode;

/// epoll data value of the eventfd.
const WAKE_TOKEN: u64 = 0;
/// Events fetched per `epoll_wait`.
const EVENTS: usize = 128;
/// epoll data: PollDesc address in the low 48 bits, tag in the high 16.
const TAG_SHIFT: u32 = 48;
const PTR_MASK: u64 = (1 << TAG_SHIFT) - 1;

/// PollDesc storage: every PollDesc ever allocated (freed with the poller)
/// and the free ones (Go's `pollCache`).
#[derive(Debug, Default)]
struct PollCache {
    all: Vec<NonNull<PollDesc>>,
    free: Vec<NonNull<PollDesc>>,
}

// SAFETY: the pointers are owned boxes (see `Poller::open`); PollDesc is Sync.
unsafe impl Send for PollCache {}

/// One runtime's poller.
#[derive(Debug)]
pub(crate) struct Poller {
    epfd: OwnedFd,
    evfd: OwnedFd,
    /// A wake is pending (the eventfd was written and not yet drained).
    wake_sig: AtomicBool,
    /// Coroutines parked on descriptors of this poller (Go's netpollWaiters).
    waiters: AtomicUsize,
    /// The kernel has `epoll_pwait2` (Linux 5.11+): timed waits have
    /// nanosecond, not millisecond, resolution.
    pwait2: bool,
    cache: Mutex<PollCache>,
    /// The runtime's workers have all stopped: nobody polls any more.
    dead: AtomicBool,
    /// Workers of the runtime that have stopped.
    stopped: AtomicUsize,
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

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: plain syscall; the result is checked.
        let epfd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
            .map_err(|e| io::Error::new(e.kind(), format!("gopark: epoll_create1 failed: {e}")))?;
        // SAFETY: a fresh descriptor we own.
        let epfd = unsafe { OwnedFd::from_raw_fd(epfd) };
        // SAFETY: plain syscall; the result is checked.
        let evfd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })
            .map_err(|e| io::Error::new(e.kind(), format!("gopark: eventfd failed: {e}")))?;
        // SAFETY: a fresh descriptor we own.
        let evfd = unsafe { OwnedFd::from_raw_fd(evfd) };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: WAKE_TOKEN,
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
        Ok(Poller {
            epfd,
            evfd,
            wake_sig: AtomicBool::new(false),
            waiters: AtomicUsize::new(0),
            pwait2: false,
            cache: Mutex::new(PollCache::default()),
            dead: AtomicBool::new(false),
            stopped: AtomicUsize::new(0),
        })
        .map(|mut p| {
            // Probe once with a zero timeout: older kernels say ENOSYS, some
            // seccomp filters EPERM; either way fall back to epoll_pwait.
            let mut ev = [std::mem::MaybeUninit::uninit()];
            p.pwait2 = p.epoll_wait(Some(Duration::ZERO), true, &mut ev).is_ok();
            p
        })
    }

    /// Go's `poll_runtime_pollOpen`: a fresh PollDesc for `fd`, registered
    /// with epoll. The pointer stays valid as long as this poller.
    pub(crate) fn open(&self, fd: RawFd) -> io::Result<NonNull<PollDesc>> {
        let p = {
            let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match c.free.pop() {
                Some(p) => p,
                None => {
                    let p = NonNull::from(Box::leak(Box::new(PollDesc::new())));
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
        let seq = pd.open();
        // SeqCst, after `open`'s SeqCst reset of the info bits: either this
        // load sees `dead`, or `shutdown`'s `set_dead` on this PollDesc comes
        // after the reset (Dekker with the store of `dead` in `shutdown`).
        if self.dead.load(Ordering::SeqCst) {
            pd.state.set_dead();
        }
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: p.as_ptr() as u64 | (u64::from(seq & 0xffff) << TAG_SHIFT),
        };
        // SAFETY: `ev` outlives the call; a bad fd is reported as an error.
        let r = unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if let Err(e) = cvt(r) {
            self.release(p);
            return Err(e);
        }
        Ok(p)
    }

    /// Go's `poll_runtime_pollClose`: deregisters `fd` (still open) and
    /// recycles its PollDesc. The caller evicted it first and no op uses it.
    pub(crate) fn close(&self, fd: RawFd, pd: NonNull<PollDesc>) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: plain syscall; failure (fd not registered) is harmless.
        unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) };
        self.release(pd);
    }

    fn release(&self, pd: NonNull<PollDesc>) {
        // Bump the incarnation so stale events and timers are dropped even
        // before the PollDesc is reused.
        // SAFETY: type-stable memory owned by this poller.
        unsafe { pd.as_ref() }.open();
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        c.free.push(pd);
    }

    /// Called by each worker of the runtime `own` (whose poller this is) once
    /// it has stopped; the last one shuts the poller down: every descriptor is
    /// marked dead, so that coroutines (of other runtimes) waiting on one wake
    /// with an error and later ones do not park (nobody would poll for them).
    /// Every coroutine of `own` has been unwound by then.
    pub(crate) fn worker_stopped(&self, own: &Shared) {
        if self.stopped.fetch_add(1, Ordering::AcqRel) + 1 < own.workers.len() {
            return;
        }
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
                    self.remove_waiter();
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

    /// A coroutine parked on a descriptor (Go's `netpollAdjustWaiters(1)`).
    #[inline]
    pub(crate) fn add_waiter(&self) {
        self.waiters.fetch_add(1, Ordering::Relaxed);
    }

    /// A parked coroutine was taken out of its slot.
    #[inline]
    pub(crate) fn remove_waiter(&self) {
        self.waiters.fetch_sub(1, Ordering::Relaxed);
    }

    /// True if some coroutine waits on a descriptor of this poller.
    #[inline]
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::Relaxed) != 0
    }

    /// One `epoll_wait` into `events`: with a timeout and `pwait2`,
    /// `epoll_pwait2` with a nanosecond timeout; else `epoll_pwait` with the
    /// timeout rounded up to whole milliseconds (so a timer is never woken
    /// early; a 100 us sleep then lasts 1 ms, as Go's does on Linux).
    fn epoll_wait(
        &self,
        timeout: Option<Duration>,
        pwait2: bool,
        events: &mut [std::mem::MaybeUninit<libc::epoll_event>],
    ) -> io::Result<usize> {
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
                    libc::syscall(
                        libc::SYS_epoll_pwait2,
                        self.epfd.as_raw_fd(),
                        events.as_mut_ptr(),
                        events.len() as libc::c_int,
                        &ts as *const libc::timespec,
                        std::ptr::null::<libc::sigset_t>(),
                        8usize,
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
                // has too) skips glibc's cancellation-point bookkeeping;
                // gopark never cancels threads.
                unsafe {
                    libc::syscall(
                        libc::SYS_epoll_pwait,
                        self.epfd.as_raw_fd(),
                        events.as_mut_ptr(),
                        events.len() as libc::c_int,
                        ms,
                        std::ptr::null::<libc::sigset_t>(),
                        8usize,
                    )
                }
            }
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Waits for events (see the module docs).
    pub(crate) fn poll(&self, timeout: Option<Duration>, out: &mut Vec<Arc<Task>>) {
        // Uninitialised: the kernel writes the first `n` entries, and only
        // those are read (no 1.5 KiB memset per poll).
        let mut events = [const { std::mem::MaybeUninit::<libc::epoll_event>::uninit() }; EVENTS];
        let blocking = timeout != Some(Duration::ZERO);
        // Only timed waits gain from nanoseconds; `epoll_pwait` otherwise.
        let pwait2 = self.pwait2 && blocking && timeout.is_some();
        let n = match self.epoll_wait(timeout, pwait2, &mut events) {
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
        for ev in &events[..n] {
            // SAFETY: the kernel initialised the first `n` entries.
            let ev = unsafe { ev.assume_init_read() };
            let data = ev.u64;
            if data == WAKE_TOKEN {
                // Go's netpoll: only a blocking poll consumes a wake. A
                // non-blocking poll by a busy worker that raced with another
                // worker starting to block would otherwise swallow the wake
                // meant for it (the eventfd stays readable until drained).
                if blocking {
                    self.drain_wake();
                }
                continue;
            }
            let p = (data & PTR_MASK) as *const PollDesc;
            // SAFETY: the data was built by `open` from a PollDesc of this
            // poller; PollDesc memory is type-stable for the poller's life.
            let pd = unsafe { &*p };
            if pd.seq() & 0xffff != (data >> TAG_SHIFT) as u32 {
                continue; // an event for a closed descriptor
            }
            pd.netpollready(self, ev.events, out);
        }
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

    /// Breaks a blocked `poll` (Go's `netpollBreak`).
    pub(crate) fn wake(&self) {
        if self.wake_sig.swap(true, Ordering::SeqCst) {
            return;
        }
        let one = 1u64;
        // SAFETY: writes 8 bytes from `one` to our eventfd.
        unsafe {
            libc::write(
                self.evfd.as_raw_fd(),
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
    use std::time::Instant;

    /// Both wait paths (nanosecond `epoll_pwait2`, millisecond
    /// `epoll_pwait` fallback) wait at least the timeout — a timer is never
    /// woken early — and report no events on an idle poller.
    #[test]
    fn timed_waits_never_return_early_on_either_path() {
        let p = Poller::new().unwrap();
        for pwait2 in [false, p.pwait2] {
            for timeout in [Duration::from_micros(300), Duration::from_millis(3)] {
                let mut ev = [MaybeUninit::uninit(); 4];
                let t = Instant::now();
                let n = p.epoll_wait(Some(timeout), pwait2, &mut ev).unwrap();
                assert_eq!(n, 0, "pwait2={pwait2}");
                assert!(t.elapsed() >= timeout, "pwait2={pwait2} woke early");
            }
        }
    }

    /// A zero timeout only looks; a pending wake is reported to a blocking
    /// wait, which drains it.
    #[test]
    fn wake_breaks_a_blocking_poll_and_is_drained() {
        let p = Poller::new().unwrap();
        p.wake();
        let mut out = Vec::new();
        p.poll(Some(Duration::ZERO), &mut out); // looks, does not drain
        assert!(p.wake_sig.load(Ordering::SeqCst));
        p.poll(None, &mut out); // returns at once: the wake is pending
        assert!(out.is_empty());
        assert!(!p.wake_sig.load(Ordering::SeqCst), "drained");
    }
}
