//! The netpoller: one epoll instance per runtime, polled by the workers
//! themselves (design brief, decision 4), and one eventfd to break a blocked
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

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::coroutine::Task;

/// epoll data value of the eventfd.
const WAKE_TOKEN: u64 = 0;
/// Events fetched per `epoll_wait`.
const EVENTS: usize = 128;

/// One runtime's poller.
#[derive(Debug)]
pub(crate) struct Poller {
    epfd: OwnedFd,
    evfd: OwnedFd,
    /// A wake is pending (the eventfd was written and not yet drained).
    wake_sig: AtomicBool,
    /// Coroutines parked on descriptors of this poller.
    waiters: AtomicUsize,
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
        })
    }

    /// True if some coroutine waits on a descriptor of this poller.
    #[inline]
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::Relaxed) != 0
    }

    /// Waits for events (see the module docs).
    pub(crate) fn poll(&self, timeout: Option<Duration>, out: &mut Vec<Arc<Task>>) {
        let ms: libc::c_int = match timeout {
            None => -1,
            Some(d) if d.is_zero() => 0,
            // Round up so a timer is never woken early; clamp to ~24 days.
            Some(d) => d
                .as_nanos()
                .div_ceil(1_000_000)
                .min(i32::MAX as u128 / 1000) as libc::c_int,
        };
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        // SAFETY: `events` is a valid, writable array of EVENTS entries.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                events.as_mut_ptr(),
                EVENTS as libc::c_int,
                ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            assert_eq!(
                e.kind(),
                io::ErrorKind::Interrupted,
                "gopark: epoll_wait failed: {e}"
            );
            return;
        }
        for ev in &events[..n as usize] {
            let data = ev.u64;
            if data == WAKE_TOKEN {
                // As Go's netpoll: only a blocking poll consumes the wake-up.
                // A non-blocking poll by another worker that drained it would
                // leave the worker blocked in epoll_wait asleep with work in
                // its inbox (a lost wake-up).
                if ms != 0 {
                    self.drain_wake();
                }
                continue;
            }
            let _ = out;
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
