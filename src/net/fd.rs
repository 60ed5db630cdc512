//! `NetFd`: a socket registered with a runtime's poller (Go's `netFD` and
//! `poll.FD`, internal/poll/fd_unix.go). Every public socket type wraps one.
//!
//! An op (Go's `fd.Read`): take the direction's fdMutex lock, check for
//! close and expired deadlines (`prepareRead`), try the syscall, and on
//! EAGAIN wait for readiness — a coroutine parks on the PollDesc, a plain
//! thread blocks in poll(2) — then try again.
//!
//! ## Fewer syscalls per request on streams
//! Before its syscall a coroutine consumes the pending READY of its
//! direction ([`PdState::consume_ready`](crate::sm::poll_desc::PdState)).
//! From then on every new arrival leaves a READY behind (epoll is
//! edge-triggered and reports each new arrival). So after a *short* stream
//! read — fewer bytes than asked for, which on TCP and Unix stream sockets
//! means the receive queue was empty when the kernel stopped copying — the
//! next read can skip the `read()` that would only return EAGAIN: if no
//! READY arrived since, it parks at once (`read_drained`). The shortcut is
//! off once a hang-up/error event was seen (`hup`): a FIN that arrived with
//! the data raises no further edge, and the read that returns 0 must happen.
//! Writes do the same after a short write (the send buffer was full, and the
//! kernel reports EPOLLOUT when space frees up), with one difference: a
//! write does not consume a pending READY before its syscall. A READY left
//! from before a short write then costs at most one extra syscall (the next
//! write tries, gets EAGAIN and parks), while a READY that stays pending lets
//! the poller treat each writability edge with one load instead of a CAS.
//! The shortcut is for ops that may wait: a non-blocking op always tries
//! its syscall.
//!
//! ## One load decides a stream op's way
//! A coroutine's stream op loads the PollDesc's info bits once, under its
//! lock: closing, a deadline of its direction expired (the hint), a std
//! timeout set for its direction, a hang-up seen, non-blocking mode (all
//! in `sm::poll_desc`). With the first three clear (the common case) it
//! needs no error check and no per-op deadline, and the last two decide
//! the shortcut; otherwise it goes the general way, out of line. (So a std
//! timeout set while an op is under way bounds the ops that start after
//! it, not that one; an absolute deadline, Go's, is checked by every wait.)
//!
//! ## Closing keeps the number
//! [`NetFd::close`] is Go's `Close`: later ops fail with [`ErrClosed`](super::ErrClosed),
//! parked ops wake with it, and once the last op in flight has returned the
//! socket is released: deregistered from the poller, and the descriptor
//! number re-pointed (`dup3`) at a placeholder socket that is not connected,
//! which closes the connection (the peer sees it, as after `close(2)`) but
//! keeps the *number* allocated and owned by the `NetFd` until it is dropped.
//! So a `BorrowedFd` from `as_fd`, which lives as long as a `&self` and
//! therefore may outlive `close(&self)`, always refers to an open descriptor
//! that no file opened later can share; and `into_raw_fd` after a close
//! hands out a descriptor the caller really owns. Drop closes the number.
//!
//! ## Plain threads
//! Outside a coroutine the same ops block the thread in poll(2), bounded by
//! the deadlines, in slices of at most [`THREAD_SLICE`] so that a close or a
//! deadline change made by another thread is noticed within that time.

use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, RawFd};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fd_mutex::FdMutex;
use super::sys;
use crate::netpoll::{err_timeout, PollDesc};
use crate::runtime::worker::{current_ctx, WorkerCtx};
use crate::runtime::{current_shared, Shared};
use crate::sm::poll_desc::{Info, Mode};

/// Longest a plain thread blocks in poll(2) before re-checking for a close
/// or a deadline set by another thread.
pub(crate) const THREAD_SLICE: Duration = Duration::from_millis(50);

/// A registered socket (see the module docs). `S` is the std type that
/// owns the descriptor and provides the non-I/O methods.
pub(crate) struct NetFd<S: AsRawFd> {
    /// Never dropped: the socket is released by [`NetFd::destroy`] once the
    /// last op has finished, and the number closed by Drop.
    sock: ManuallyDrop<S>,
    fd: RawFd,
    /// False once `into_raw` handed the descriptor out: Drop leaves it.
    owns: bool,
    shared: Arc<Shared>,
    pd: NonNull<PollDesc>,
    mu: FdMutex,
}

// SAFETY: the PollDesc pointer refers to type-stable memory owned by
// `shared` (kept alive by the Arc); PollDesc is Sync, and everything else is
// Send/Sync when S is.
unsafe impl<S: AsRawFd + Send> Send for NetFd<S> {}
// SAFETY: as above.
unsafe impl<S: AsRawFd + Sync> Sync for NetFd<S> {}

impl<S: AsRawFd> fmt::Debug for NetFd<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetFd")
            .field("fd", &self.fd)
            .field("closed", &self.mu.is_closed())
            .finish()
    }
}

/// A held direction lock; unlocking may destroy a closed descriptor.
struct Locked<'a, S: AsRawFd> {
    fd: &'a NetFd<S>,
    mode: Mode,
}

impl<S: AsRawFd> Drop for Locked<'_, S> {
    fn drop(&mut self) {
        if self.fd.mu.rwunlock(self.mode) {
            self.fd.destroy();
        }
    }
}

/// [`Locked`] of a direction known at compile time (`WRITE`): the guard
/// is one pointer, so that an op that keeps it in memory across a park
/// (for the unwind of a coroutine dropped while parked) stores one word.
struct LockedDir<'a, S: AsRawFd, const WRITE: bool> {
    fd: &'a NetFd<S>,
}

impl<S: AsRawFd, const WRITE: bool> Drop for LockedDir<'_, S, WRITE> {
    fn drop(&mut self) {
        if self.fd.mu.rwunlock(dir(WRITE)) {
            self.fd.destroy();
        }
    }
}

/// The direction `WRITE` names.
#[inline(always)]
const fn dir(write: bool) -> Mode {
    if write {
        Mode::Write
    } else {
        Mode::Read
    }
}

/// A reference for a lock-free op.
pub(crate) struct Ref<'a, S: AsRawFd> {
    fd: &'a NetFd<S>,
}

impl<S: AsRawFd> Drop for Ref<'_, S> {
    fn drop(&mut self) {
        if self.fd.mu.decref() {
            self.fd.destroy();
        }
    }
}

impl<S: AsRawFd> std::ops::Deref for Ref<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.fd.sock
    }
}

/// Per-op wait bookkeeping: the op's deadline from std's timeouts (or
/// connect_timeout) starts at its first wait and ends with the op.
struct Op<'a> {
    pd: &'a PollDesc,
    mode: Mode,
    explicit: Option<Instant>,
    /// Coroutine path: a per-op deadline is armed in the PollDesc.
    armed: bool,
    /// Plain-thread path: the op's deadline, computed at the first wait.
    thread: Option<Option<Instant>>,
    first: bool,
}

impl Drop for Op<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.pd.end_op_deadline(self.mode);
        }
    }
}

/// [`Op`] of a coroutine's stream op: no explicit deadline, no thread
/// state, so that the common op (which never waits, or waits with no
/// timeout set) builds and drops it for a few stores.
struct CoOp<'a> {
    pd: &'a PollDesc,
    mode: Mode,
    /// Where the op's per-op deadline stands (one byte, one test per wait).
    dl: OpDeadline,
}

/// [`CoOp`]'s per-op deadline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OpDeadline {
    /// The op has not waited yet.
    Unstarted,
    /// The op has waited; no per-op deadline (no timeout set then).
    None,
    /// A per-op deadline is armed in the PollDesc.
    Armed,
}

impl CoOp<'_> {
    fn new(pd: &PollDesc, mode: Mode) -> CoOp<'_> {
        CoOp {
            pd,
            mode,
            dl: OpDeadline::Unstarted,
        }
    }

    /// Ends the per-op deadline, if one is armed: the next wait starts a
    /// new one (a write_all that made progress).
    #[inline]
    fn restart(&mut self) {
        if self.dl == OpDeadline::Armed {
            self.pd.end_op_deadline(self.mode);
        }
        self.dl = OpDeadline::Unstarted;
    }
}

impl Drop for CoOp<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.dl == OpDeadline::Armed {
            self.pd.end_op_deadline(self.mode);
        }
    }
}

impl<S: AsRawFd> NetFd<S> {
    /// Registers `sock` (already non-blocking) with the caller's runtime.
    pub(crate) fn new(sock: S) -> io::Result<NetFd<S>> {
        let fd = sock.as_raw_fd();
        let shared = current_shared();
        let pd = shared.poller.open(fd, &shared.epoch)?;
        Ok(NetFd {
            sock: ManuallyDrop::new(sock),
            fd,
            owns: true,
            shared,
            pd,
            mu: FdMutex::default(),
        })
    }

    /// Switches `sock` to non-blocking mode, then registers it.
    pub(crate) fn from_blocking(sock: S) -> io::Result<NetFd<S>> {
        sys::set_nonblocking(sock.as_raw_fd(), true)?;
        NetFd::new(sock)
    }

    #[inline]
    pub(crate) fn pd(&self) -> &PollDesc {
        // SAFETY: type-stable memory owned by `self.shared`'s poller, which
        // the Arc keeps alive.
        unsafe { self.pd.as_ref() }
    }

    #[inline]
    pub(crate) fn raw(&self) -> RawFd {
        self.fd
    }

    /// The std socket, for an op that needs no lock (a reference is held).
    pub(crate) fn get(&self) -> io::Result<Ref<'_, S>> {
        self.mu.incref()?;
        Ok(Ref { fd: self })
    }

    #[inline]
    fn lock(&self, mode: Mode) -> io::Result<Locked<'_, S>> {
        match self.mu.rwlock(mode, || (self.pd(), &self.shared.epoch)) {
            Ok(()) => Ok(Locked { fd: self, mode }),
            Err(destroy) => Err(self.lock_failed(destroy)),
        }
    }

    /// [`lock`](Self::lock) of a direction known at compile time.
    #[inline]
    fn lock_dir<const WRITE: bool>(&self) -> io::Result<LockedDir<'_, S, WRITE>> {
        match self
            .mu
            .rwlock(dir(WRITE), || (self.pd(), &self.shared.epoch))
        {
            Ok(()) => Ok(LockedDir { fd: self }),
            Err(destroy) => Err(self.lock_failed(destroy)),
        }
    }

    /// A lock that failed on a closed descriptor: release it if the
    /// failed attempt was its last op.
    #[cold]
    #[inline(never)]
    fn lock_failed(&self, destroy: bool) -> io::Error {
        if destroy {
            self.destroy();
        }
        crate::netpoll::err_closed()
    }

    /// Last reference gone after a close: deregister, recycle, and release
    /// the socket but keep the number (module docs). Without a placeholder
    /// (out of descriptors) the socket itself stays open until Drop.
    fn destroy(&self) {
        self.shared.poller.close(self.fd, self.pd);
        sys::release_keep_number(self.fd);
    }

    /// Go's `Close`: later ops fail, parked ops wake with "use of closed
    /// network connection"; the socket is released when the last op in
    /// flight returns, the number when the `NetFd` is dropped (module
    /// docs). Errors if already closed.
    pub(crate) fn close(&self) -> io::Result<()> {
        if !self.mu.incref_and_close() {
            return Err(crate::netpoll::err_closed());
        }
        self.pd().evict();
        if self.mu.decref() {
            self.destroy();
        }
        Ok(())
    }

    /// Gives up the descriptor (restored to blocking mode) without closing
    /// it. After a close it is the placeholder the socket was swapped for
    /// (module docs): still a descriptor the caller owns, no longer the
    /// connection.
    pub(crate) fn into_raw(mut self) -> RawFd {
        let fd = self.fd;
        if self.mu.incref_and_close() {
            // Exclusive owner: no op is in flight.
            self.shared.poller.close(fd, self.pd);
            let _ = sys::set_nonblocking(fd, false);
        }
        self.owns = false;
        fd
    }

    pub(crate) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        let _r = self.get()?;
        // Kept in the PollDesc's info bits, which a stream op loads anyway.
        self.pd().state.set_nonblocking(on);
        Ok(())
    }

    // ---- deadlines -------------------------------------------------------

    pub(crate) fn set_deadline(&self, mode: Option<Mode>, when: Option<Instant>) -> io::Result<()> {
        let _r = self.get()?;
        let pd = self.pd();
        match mode {
            Some(m) => pd.set_deadline(&self.shared, m, when),
            None => {
                pd.set_deadline(&self.shared, Mode::Read, when);
                pd.set_deadline(&self.shared, Mode::Write, when);
            }
        }
        Ok(())
    }

    pub(crate) fn set_timeout(&self, mode: Mode, dur: Option<Duration>) -> io::Result<()> {
        if dur == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        let _r = self.get()?;
        self.pd().set_timeout(mode, dur);
        Ok(())
    }

    pub(crate) fn timeout(&self, mode: Mode) -> io::Result<Option<Duration>> {
        let _r = self.get()?;
        Ok(self.pd().timeout(mode))
    }

    // ---- waiting ---------------------------------------------------------

    fn op(&self, mode: Mode, explicit: Option<Instant>) -> Op<'_> {
        Op {
            pd: self.pd(),
            mode,
            explicit,
            armed: false,
            thread: None,
            first: true,
        }
    }

    /// `WouldBlock` if the descriptor is in non-blocking mode: an op that
    /// would wait fails instead.
    #[inline(always)]
    fn fail_if_nonblocking(&self) -> io::Result<()> {
        if self.pd().state.nonblocking() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(())
    }

    /// Waits until `mode` may be ready again (after EAGAIN).
    fn wait(&self, ctx: Option<&WorkerCtx>, op: &mut Op<'_>) -> io::Result<()> {
        self.fail_if_nonblocking()?;
        let pd = self.pd();
        match ctx {
            Some(ctx) => {
                if op.first {
                    op.first = false;
                    op.armed = pd.begin_op_deadline(&self.shared, op.mode, op.explicit);
                }
                pd.wait(&self.shared, ctx, op.mode)
            }
            None => self.thread_wait(op),
        }
    }

    /// The plain-thread wait: poll(2) bounded by the deadlines.
    fn thread_wait(&self, op: &mut Op<'_>) -> io::Result<()> {
        let pd = self.pd();
        let mode = op.mode;
        let op_deadline = *op
            .thread
            .get_or_insert_with(|| pd.op_deadline(mode, op.explicit));
        let events = match mode {
            Mode::Read => libc::POLLIN,
            Mode::Write => libc::POLLOUT,
        };
        loop {
            pd.check_err(mode)?;
            let now = Instant::now();
            let mut limit = now + THREAD_SLICE;
            if let Some(d) = pd.thread_deadline(&self.shared, mode)? {
                limit = limit.min(d);
            }
            if let Some(d) = op_deadline {
                if d <= now {
                    return Err(err_timeout());
                }
                limit = limit.min(d);
            }
            let ms = (limit - now).as_nanos().div_ceil(1_000_000) as libc::c_int;
            let mut pfd = libc::pollfd {
                fd: self.fd,
                events,
                revents: 0,
            };
            // SAFETY: one valid pollfd that outlives the call.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r > 0 {
                return Ok(());
            }
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }

    // ---- ops -------------------------------------------------------------

    /// A generic op (accept, datagrams, peek): `f` does one non-blocking
    /// attempt; WouldBlock waits for `mode` and tries again.
    pub(crate) fn io<T>(
        &self,
        mode: Mode,
        mut f: impl FnMut(&S) -> io::Result<T>,
    ) -> io::Result<T> {
        self.io_until(mode, None, &mut f)
    }

    fn io_until<T>(
        &self,
        mode: Mode,
        explicit: Option<Instant>,
        f: &mut dyn FnMut(&S) -> io::Result<T>,
    ) -> io::Result<T> {
        crate::runtime::worker::coop_tick();
        let _g = self.lock(mode)?;
        let pd = self.pd();
        pd.check_err(mode)?;
        let ctx = current_ctx();
        if ctx.is_some() {
            pd.state.consume_ready(mode);
            pd.set_drained(mode, false);
        }
        let mut op = self.op(mode, explicit);
        loop {
            match f(&self.sock) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(ctx, &mut op)?,
                r => return r,
            }
        }
    }

    /// A stream read or write: `sys` does one syscall on the descriptor and
    /// returns its result; `len` is the number of bytes asked for. See the
    /// module docs for the shortcut.
    ///
    /// Inlined into each `Read`/`Write` method, so that `mode` is a
    /// constant there; the coroutine path is the hot one, the plain-thread
    /// path is out of line.
    #[inline(always)]
    pub(crate) fn stream_io(
        &self,
        mode: Mode,
        len: usize,
        mut sys: impl FnMut(RawFd) -> libc::ssize_t,
    ) -> io::Result<usize> {
        match current_ctx() {
            Some(ctx) => match mode {
                Mode::Read => self.stream_io_co::<false>(ctx, len, &mut sys),
                Mode::Write => self.stream_io_co::<true>(ctx, len, &mut sys),
            },
            None => self.stream_io_thread(mode, &mut sys),
        }
    }

    /// [`stream_io`](Self::stream_io) in a coroutine. Inline, the common
    /// op in straight-line code: the shortcut's wait (if taken), one
    /// syscall, done. One load of the PollDesc's info bits decides it: an
    /// op on a descriptor that is closing, has seen a deadline expire or
    /// has a std timeout set goes the general way
    /// ([`stream_io_co_timed`](Self::stream_io_co_timed)); a syscall that
    /// fails (EAGAIN, EINTR, an error) goes on out of line
    /// ([`stream_io_co_rest`](Self::stream_io_co_rest)).
    #[inline(always)]
    fn stream_io_co<const WRITE: bool>(
        &self,
        ctx: &WorkerCtx,
        len: usize,
        sys: &mut impl FnMut(RawFd) -> libc::ssize_t,
    ) -> io::Result<usize> {
        let mode = dir(WRITE);
        let _g = self.lock_dir::<WRITE>()?;
        let pd = self.pd();
        let info = pd.state.info();
        // One test for the common way (with the shortcut allowed); the
        // rest is sorted out after it.
        let shortcut = if info.plain(mode) {
            (len != 0) & pd.drained(mode)
        } else if info.closing_expired_or_timeout(mode) {
            return self.stream_io_co_timed(ctx, mode, len, sys, info);
        } else {
            // A hang-up seen or non-blocking mode: no shortcut.
            false
        };
        // No timeout was set when the op started: its first wait needs no
        // per-op deadline.
        if shortcut {
            pd.wait_stream(&self.shared, ctx, mode)?;
            let r = sys(self.fd);
            // The shortcut found `drained` set, and only the lock's holder
            // changes it: store only if the op was not short (a sign test
            // for the failure and the end of stream together, then one
            // compare).
            if r > 0 {
                let n = r as usize;
                if n >= len {
                    pd.set_drained(mode, false);
                }
                return Ok(n);
            }
            if r == 0 {
                pd.set_drained(mode, false);
                return Ok(0);
            }
        } else {
            self.before_syscall(ctx, mode);
            let r = sys(self.fd);
            if r >= 0 {
                let n = r as usize;
                // No look at `hup` here: the shortcut checks it when it is
                // used (it is sticky), which covers one seen by now.
                pd.set_drained(mode, Self::short(n, len));
                return Ok(n);
            }
        }
        self.stream_io_co_rest(ctx, CoOp::new(pd, mode), len, sys)
    }

    /// A stream op of `len` bytes that moved `n` was short.
    #[inline(always)]
    fn short(n: usize, len: usize) -> bool {
        n > 0 && n < len
    }

    /// Whether a stream op may take the shortcut (module docs): the last
    /// op was short, so nothing new came unless a READY did. Only for an
    /// op that may wait: a non-blocking op always tries its syscall (its
    /// descriptor may be registered with no poller, so no readiness would
    /// ever be recorded for it).
    #[inline(always)]
    fn shortcut(pd: &PollDesc, mode: Mode, len: usize, info: Info) -> bool {
        // `&`, not `&&`: fewer branches, and the wait that follows is then
        // not taken for a rarely run path (which the compiler would call
        // out of line, switch and all).
        (len != 0) & pd.drained(mode) & !info.hup_or_nonblocking()
    }

    /// A stream op that does not take the shortcut, before its syscall.
    #[inline(always)]
    fn before_syscall(&self, ctx: &WorkerCtx, mode: Mode) {
        // The cooperative tick, for an op that may complete without
        // parking. The shortcut ticks only if it finds a READY pending
        // (`PollDesc::wait_stream`); when it parks, the worker refills the
        // budget on resuming it, so a tick before it would be lost. (Under
        // the lock: if the tick yields, the op keeps its turn.)
        crate::runtime::worker::coop_tick_in(ctx);
        if mode == Mode::Read {
            // Writes leave a pending READY in place: consuming it only
            // sharpens the write shortcut, which then at worst makes one
            // extra syscall, and a READY left pending spares the poller a
            // CAS on every writability edge.
            self.pd().state.consume_ready(mode);
        }
    }

    /// [`stream_io_co`](Self::stream_io_co) on a descriptor that is
    /// closing, has seen a deadline of `mode` expire or has a timeout set
    /// (`info`, as the op found it): the error check, and a per-op deadline
    /// from the op's first wait.
    #[inline(never)]
    fn stream_io_co_timed(
        &self,
        ctx: &WorkerCtx,
        mode: Mode,
        len: usize,
        sys: &mut impl FnMut(RawFd) -> libc::ssize_t,
        info: Info,
    ) -> io::Result<usize> {
        let pd = self.pd();
        pd.check_err_in(info, mode)?;
        let mut op = CoOp::new(pd, mode);
        if Self::shortcut(pd, mode, len, info) {
            self.co_wait(ctx, &mut op)?;
        } else {
            self.before_syscall(ctx, mode);
        }
        let r = sys(self.fd);
        if r >= 0 {
            let n = r as usize;
            pd.set_drained(mode, Self::short(n, len));
            return Ok(n);
        }
        self.stream_io_co_rest(ctx, op, len, sys)
    }

    /// The rest of a stream op in a coroutine, with the lock held, after a
    /// syscall that failed: EINTR tries again, EAGAIN waits (or fails with
    /// WouldBlock in non-blocking mode) and tries again.
    #[inline(never)]
    fn stream_io_co_rest(
        &self,
        ctx: &WorkerCtx,
        mut op: CoOp<'_>,
        len: usize,
        sys: &mut impl FnMut(RawFd) -> libc::ssize_t,
    ) -> io::Result<usize> {
        let pd = op.pd;
        let mode = op.mode;
        loop {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) => {
                    pd.set_drained(mode, false);
                    self.fail_if_nonblocking()?;
                    self.co_wait(ctx, &mut op)?;
                }
                _ => {
                    pd.set_drained(mode, false);
                    return Err(e);
                }
            }
            let r = sys(self.fd);
            if r >= 0 {
                let n = r as usize;
                pd.set_drained(mode, Self::short(n, len));
                return Ok(n);
            }
        }
    }

    /// `write_all` on a stream, Go's `fd.Write`: the whole buffer goes out
    /// under one hold of the write lock, so concurrent `write_all`s on one
    /// stream never interleave, and the lock, the error checks and the
    /// coop tick are paid once per call, not once per chunk. Empty: `Ok`
    /// at once, as std's.
    #[inline(always)]
    pub(crate) fn stream_write_all(&self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        match current_ctx() {
            Some(ctx) => self.write_all_co(ctx, buf),
            None => self.write_all_thread(buf),
        }
    }

    /// [`stream_write_all`](Self::stream_write_all) in a coroutine: the
    /// write path of [`stream_io_co`](Self::stream_io_co), looping over
    /// the buffer; after a short write it waits for space at once (the
    /// shortcut) instead of making the syscall that would get EAGAIN.
    #[inline(always)]
    fn write_all_co(&self, ctx: &WorkerCtx, buf: &[u8]) -> io::Result<()> {
        const MODE: Mode = Mode::Write;
        crate::runtime::worker::coop_tick_in(ctx);
        let g = self.lock_dir::<true>()?;
        let pd = self.pd();
        // The common case inline: no error bit, no shortcut (the last write
        // was not short), and the whole buffer goes out in one send. The
        // rest, which may wait, is out of line and takes the lock over, so
        // that this path saves and spills fewer registers and calls nothing
        // that could unwind while it holds the lock (no landing pad keeps
        // the guard in memory).
        if !pd.state.closing_or_expired(MODE) & !pd.drained(MODE) {
            let r = sys::sys_send_raw(self.fd, buf);
            // -errno (a failure) is never a length.
            if r as usize == buf.len() {
                drop(g);
                return Ok(());
            }
            return self.write_all_co_rest(g, buf, Some(sys::libc_result(r)));
        }
        self.write_all_co_rest(g, buf, None)
    }

    /// The rest of [`write_all_co`](Self::write_all_co), with the lock
    /// `_g` held: `first` is the result of the send it made (which did not
    /// write the whole buffer), `None` if it made none (an error bit was
    /// set, or the shortcut: the last write was short). It looks the worker
    /// context up again, so that the inline path need not keep it.
    #[inline(never)]
    fn write_all_co_rest(
        &self,
        _g: LockedDir<'_, S, true>,
        mut buf: &[u8],
        mut first: Option<libc::ssize_t>,
    ) -> io::Result<()> {
        const MODE: Mode = Mode::Write;
        // The same coroutine on the same worker as in `write_all_co`
        // (a coroutine never changes workers).
        let ctx = current_ctx().expect("gopark: a coroutine's write lost its worker");
        let pd = self.pd();
        if first.is_none() {
            pd.check_err(MODE)?;
        }
        let mut op = CoOp::new(pd, MODE);
        let mut full =
            first.is_none() && pd.drained(MODE) && !pd.state.nonblocking() && !pd.state.hup();
        loop {
            let r = match first.take() {
                Some(r) => r,
                None => {
                    if full {
                        self.co_wait(ctx, &mut op)?;
                    }
                    sys::sys_send(self.fd, buf)
                }
            };
            if r >= 0 {
                let n = r as usize;
                if n >= buf.len() {
                    pd.set_drained(MODE, false);
                    return Ok(());
                }
                if n == 0 {
                    pd.set_drained(MODE, false);
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "failed to write whole buffer",
                    ));
                }
                buf = &buf[n..];
                // Short: the send buffer is full. The rest is a new write
                // as far as a timeout goes (std's write_all makes one call
                // per chunk, each with the whole timeout).
                full = !pd.state.hup();
                pd.set_drained(MODE, full);
                op.restart();
                if full {
                    self.fail_if_nonblocking()?;
                }
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => full = false,
                Some(libc::EAGAIN) => {
                    pd.set_drained(MODE, false);
                    self.fail_if_nonblocking()?;
                    full = true;
                }
                _ => {
                    pd.set_drained(MODE, false);
                    return Err(e);
                }
            }
        }
    }

    /// [`stream_write_all`](Self::stream_write_all) on a plain thread
    /// (one hold of the write lock too; no shortcut).
    #[cold]
    #[inline(never)]
    fn write_all_thread(&self, mut buf: &[u8]) -> io::Result<()> {
        let _g = self.lock(Mode::Write)?;
        let pd = self.pd();
        pd.check_err(Mode::Write)?;
        let mut op = self.op(Mode::Write, None);
        pd.set_drained(Mode::Write, false);
        while !buf.is_empty() {
            let r = sys::sys_send(self.fd, buf);
            if r > 0 {
                buf = &buf[r as usize..];
                // A new write as far as a timeout goes (as in write_all_co).
                op = self.op(Mode::Write, None);
                continue;
            }
            if r == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "failed to write whole buffer",
                ));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => self.wait(None, &mut op)?,
                _ => return Err(e),
            }
        }
        Ok(())
    }

    /// [`wait`](Self::wait) for a coroutine's stream op, which has checked
    /// for errors since its last wait (`PollDesc::wait_stream`) and that
    /// the descriptor is not in non-blocking mode (the shortcut's test, or
    /// the one after EAGAIN: a non-blocking op fails with WouldBlock
    /// instead of waiting).
    #[inline(always)]
    fn co_wait(&self, ctx: &WorkerCtx, op: &mut CoOp<'_>) -> io::Result<()> {
        if op.dl == OpDeadline::Unstarted {
            op.dl = if op.pd.begin_op_deadline(&self.shared, op.mode, None) {
                OpDeadline::Armed
            } else {
                OpDeadline::None
            };
        }
        op.pd.wait_stream(&self.shared, ctx, op.mode)
    }

    /// [`stream_io`](Self::stream_io) on a plain thread (no shortcut).
    #[cold]
    #[inline(never)]
    fn stream_io_thread(
        &self,
        mode: Mode,
        sys: &mut dyn FnMut(RawFd) -> libc::ssize_t,
    ) -> io::Result<usize> {
        let _g = self.lock(mode)?;
        let pd = self.pd();
        pd.check_err(mode)?;
        let mut op = self.op(mode, None);
        loop {
            let r = sys(self.fd);
            if r >= 0 {
                pd.set_drained(mode, false);
                return Ok(r as usize);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    pd.set_drained(mode, false);
                    self.wait(None, &mut op)?;
                }
                _ => {
                    pd.set_drained(mode, false);
                    return Err(e);
                }
            }
        }
    }

    /// The rest of Go's `netFD.connect` once `connect(2)` returned
    /// EINPROGRESS (the descriptor is registered only after that call, so a
    /// socket that is not connecting yet never reports a spurious
    /// EPOLLOUT|EPOLLHUP): wait for writability until `deadline`, then read
    /// SO_ERROR; a spurious wake-up is caught by getpeername.
    pub(crate) fn finish_connect(&self, deadline: Option<Instant>) -> io::Result<()> {
        let _g = self.lock(Mode::Write)?;
        let pd = self.pd();
        let ctx = current_ctx();
        let mut op = self.op(Mode::Write, deadline);
        loop {
            match self.wait(ctx, &mut op) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection timed out",
                    ))
                }
                Err(e) => return Err(e),
            }
            pd.check_err(Mode::Write)?;
            match sys::getsockopt_int(self.fd, libc::SOL_SOCKET, libc::SO_ERROR)? {
                0 | libc::EISCONN => {
                    if sys::is_connected(self.fd) {
                        return Ok(());
                    }
                }
                libc::EINPROGRESS | libc::EALREADY | libc::EINTR => {}
                err => return Err(io::Error::from_raw_os_error(err)),
            }
        }
    }
}

impl<S: AsRawFd> Drop for NetFd<S> {
    fn drop(&mut self) {
        if !self.owns {
            return;
        }
        // `&mut self`: no op is in flight and no `BorrowedFd` is alive.
        if self.mu.incref_and_close() {
            // Never closed: nobody can be parked on it either.
            self.mu.decref();
            self.shared.poller.close(self.fd, self.pd);
        }
        // Else closed earlier and released when its last op returned.
        sys::close(self.fd);
    }
}
