//! I/O on other descriptors: [`Pollable`] makes any pollable descriptor
//! (a pipe, a child's stdio, a tty, an eventfd, a character device, a
//! socket gopark does not wrap) park the coroutine instead of blocking its
//! worker, and [`stdin`], [`stdout`] and [`stderr`] are the process's
//! standard streams with calls that do not hold the worker.
//!
//! ```
//! use std::io::Read;
//! use std::process::{Command, Stdio};
//!
//! gopark::run(|| {
//!     let mut child = Command::new("sh")
//!         .args(["-c", "sleep 0.05; echo from the child"])
//!         .stdout(Stdio::piped())
//!         .spawn()
//!         .unwrap();
//!     // Reading parks this coroutine; the worker runs others meanwhile.
//!     let mut out = gopark::io::Pollable::new(child.stdout.take().unwrap()).unwrap();
//!     let mut s = String::new();
//!     out.read_to_string(&mut s).unwrap();
//!     assert_eq!(s, "from the child\n");
//!     // `wait` blocks: hand it to the pool.
//!     let status = gopark::blocking(move || child.wait()).unwrap();
//!     assert!(status.success());
//! });
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::netpoll::PollDesc;
use crate::runtime::worker::current_ctx;
use crate::runtime::{current_shared, Shared};
use crate::sm::poll_desc::Mode;
use crate::sync::Mutex;

/// A pollable descriptor whose reads and writes park the calling coroutine
/// until the descriptor is ready, instead of blocking the worker (what
/// async-io calls `Async` and may calls `CoIo`). Any type that owns a
/// descriptor (`AsFd`) can be wrapped: a pipe end, `ChildStdout`/
/// `ChildStdin`, an `OwnedFd` for an eventfd, a tty or a character device.
///
/// [`new`](Pollable::new) switches the descriptor to non-blocking mode and
/// registers it with the current runtime's poller (the default runtime on a
/// plain thread); dropping the wrapper or [`into_inner`](Pollable::into_inner)
/// deregisters it and restores blocking mode if it was blocking. Non-blocking
/// mode belongs to the open file, so it is shared by every duplicate of the
/// descriptor, in this process and in others: wrapping a terminal that the
/// parent shell also uses switches the shell's side too while the wrapper
/// lives (use [`stdin`]/[`stdout`] for the standard streams instead).
/// Regular files and directories cannot be polled; use
/// [`gopark::fs`](crate::fs) for them.
///
/// `Read` and `Write` are implemented for `Pollable<T>` and `&Pollable<T>`
/// with `read(2)` and `write(2)` on the descriptor; one read and one write
/// may wait at a time, others queue (a coroutine-aware lock per direction).
/// [`read_with`](Pollable::read_with) and [`write_with`](Pollable::write_with)
/// run any non-blocking operation of `T` with the same waiting. On a plain
/// thread, an operation that would block waits in `poll(2)`.
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::fd::{FromRawFd, OwnedFd};
///
/// let mut fds = [0; 2];
/// // SAFETY: (of the example) `fds` has room for the two descriptors.
/// assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
/// // SAFETY: pipe2 just opened both; each is owned once.
/// let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
/// gopark::run(move || {
///     let r = gopark::io::Pollable::new(r).unwrap();
///     let w = gopark::io::Pollable::new(w).unwrap();
///     let reader = gopark::spawn(move || {
///         let mut buf = [0u8; 5];
///         (&r).read_exact(&mut buf).unwrap(); // parks until the write
///         buf
///     });
///     gopark::time::sleep(std::time::Duration::from_millis(10));
///     (&w).write_all(b"hello").unwrap();
///     assert_eq!(&reader.join().unwrap(), b"hello");
/// });
/// ```
pub struct Pollable<T: AsFd> {
    /// Always `Some` until `into_inner` takes it.
    inner: Option<T>,
    fd: RawFd,
    shared: Arc<Shared>,
    pd: NonNull<PollDesc>,
    /// The descriptor was non-blocking before `new`: leave it so.
    was_nonblocking: bool,
    read_lock: Mutex<()>,
    write_lock: Mutex<()>,
}

// SAFETY: the PollDesc pointer refers to type-stable memory owned by
// `shared`'s poller (kept alive by the Arc); PollDesc is Sync. Everything
// else is Send/Sync when T is.
unsafe impl<T: AsFd + Send> Send for Pollable<T> {}
// SAFETY: as above; the PollDesc's wait slots are used by one op per
// direction at a time (the direction locks).
unsafe impl<T: AsFd + Sync> Sync for Pollable<T> {}

impl<T: AsFd> fmt::Debug for Pollable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pollable").field("fd", &self.fd).finish()
    }
}

fn get_flags(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: F_GETFL on a descriptor the caller keeps open.
    let r = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn set_flags(fd: RawFd, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: F_SETFL on a descriptor the caller keeps open.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

impl<T: AsFd> Pollable<T> {
    /// Switches `inner`'s descriptor to non-blocking mode and registers it
    /// with the current runtime (see the type docs).
    ///
    /// # Errors
    /// If the descriptor cannot be polled (a regular file or directory:
    /// `EPERM`) or its flags cannot be changed; the descriptor is then left
    /// as it was.
    ///
    /// ```
    /// let f = std::fs::File::open("/").unwrap();
    /// let err = gopark::io::Pollable::new(f).unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    /// ```
    pub fn new(inner: T) -> io::Result<Pollable<T>> {
        let fd = inner.as_fd().as_raw_fd();
        // epoll refuses regular files and directories (EPERM) — they are
        // always "ready" — but the poller registers a descriptor only when a
        // coroutine first waits on it: refuse them here, up front.
        // SAFETY: `stat` is plain data, fully written by a successful fstat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is open (borrowed from `inner`), `st` is writable.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if matches!(st.st_mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFDIR) {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        let flags = get_flags(fd)?;
        let was_nonblocking = flags & libc::O_NONBLOCK != 0;
        if !was_nonblocking {
            set_flags(fd, flags | libc::O_NONBLOCK)?;
        }
        let shared = current_shared();
        let pd = match shared.poller.open(fd, &shared.epoch) {
            Ok(pd) => pd,
            Err(e) => {
                if !was_nonblocking {
                    let _ = set_flags(fd, flags);
                }
                return Err(e);
            }
        };
        Ok(Pollable {
            inner: Some(inner),
            fd,
            shared,
            pd,
            was_nonblocking,
            read_lock: Mutex::new(()),
            write_lock: Mutex::new(()),
        })
    }

    /// The wrapped value.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let (r, _w) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let fd = r.as_raw_fd();
    /// let p = gopark::io::Pollable::new(r).unwrap();
    /// assert_eq!(p.get_ref().as_raw_fd(), fd);
    /// ```
    pub fn get_ref(&self) -> &T {
        self.inner
            .as_ref()
            .expect("gopark: Pollable used after into_inner")
    }

    /// Deregisters the descriptor, restores blocking mode if it was
    /// blocking, and returns the wrapped value.
    ///
    /// ```
    /// let (r, _w) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let p = gopark::io::Pollable::new(r).unwrap();
    /// let r = p.into_inner();
    /// r.set_read_timeout(Some(std::time::Duration::from_millis(1))).unwrap();
    /// let mut buf = [0u8; 1];
    /// // Blocking again: the read times out rather than failing at once.
    /// use std::io::Read;
    /// assert!((&r).read(&mut buf).is_err());
    /// ```
    pub fn into_inner(mut self) -> T {
        self.release();
        self.inner
            .take()
            .expect("gopark: Pollable used after into_inner")
    }

    fn release(&mut self) {
        self.shared.poller.close(self.fd, self.pd);
        if !self.was_nonblocking {
            if let Ok(flags) = get_flags(self.fd) {
                let _ = set_flags(self.fd, flags & !libc::O_NONBLOCK);
            }
        }
    }

    fn pd(&self) -> &PollDesc {
        // SAFETY: type-stable memory owned by `self.shared`'s poller, which
        // the Arc keeps alive.
        unsafe { self.pd.as_ref() }
    }

    /// Runs `op` (a non-blocking read-side operation on `T`) until it does
    /// not fail with [`WouldBlock`](io::ErrorKind::WouldBlock), parking the
    /// coroutine (blocking the thread) until the descriptor is readable
    /// between attempts. `Interrupted` is retried too.
    ///
    /// # Errors
    /// What `op` returns, or an error if the runtime the descriptor is
    /// registered with has shut down while a coroutine needed to wait.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let (r, mut w) = std::os::unix::net::UnixStream::pair().unwrap();
    /// gopark::run(move || {
    ///     let r = gopark::io::Pollable::new(r).unwrap();
    ///     w.write_all(b"x").unwrap();
    ///     let mut buf = [0u8; 1];
    ///     let n = r.read_with(|s| (&*s).read(&mut buf)).unwrap();
    ///     assert_eq!(n, 1);
    /// });
    /// ```
    pub fn read_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.op(Mode::Read, op)
    }

    /// Like [`read_with`](Pollable::read_with) for the write side: waits for
    /// writability between attempts.
    ///
    /// ```
    /// use std::io::Write;
    /// let (_r, w) = std::os::unix::net::UnixStream::pair().unwrap();
    /// gopark::run(move || {
    ///     let w = gopark::io::Pollable::new(w).unwrap();
    ///     assert_eq!(w.write_with(|s| (&*s).write(b"ab")).unwrap(), 2);
    /// });
    /// ```
    pub fn write_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.op(Mode::Write, op)
    }

    fn op<R>(&self, mode: Mode, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        let lock = match mode {
            Mode::Read => &self.read_lock,
            Mode::Write => &self.write_lock,
        };
        let _turn = lock.lock();
        let inner = self.get_ref();
        let pd = self.pd();
        let ctx = current_ctx();
        if ctx.is_some() {
            // From here on every readiness edge leaves READY behind, so a
            // WouldBlock below cannot miss the edge that ends it.
            pd.state.consume_ready(mode);
        }
        loop {
            match op(inner) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => match ctx {
                    Some(ctx) => pd.wait(&self.shared, ctx, mode)?,
                    None => self.thread_wait(mode)?,
                },
                r => return r,
            }
        }
    }

    /// A plain thread's wait: poll(2) until the descriptor is ready.
    fn thread_wait(&self, mode: Mode) -> io::Result<()> {
        let events = match mode {
            Mode::Read => libc::POLLIN,
            Mode::Write => libc::POLLOUT,
        };
        loop {
            let mut pfd = libc::pollfd {
                fd: self.fd,
                events,
                revents: 0,
            };
            // SAFETY: one valid pollfd that outlives the call.
            let r = unsafe { libc::poll(&mut pfd, 1, -1) };
            if r >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn read_fd(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(|_| {
            // SAFETY: `buf` is writable for its length; the descriptor stays
            // open while `self` (which owns it) is borrowed.
            cvt_size(unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) })
        })
    }

    fn write_fd(&self, buf: &[u8]) -> io::Result<usize> {
        self.write_with(|_| {
            // SAFETY: `buf` is readable for its length; the descriptor stays
            // open while `self` (which owns it) is borrowed.
            cvt_size(unsafe { libc::write(self.fd, buf.as_ptr().cast(), buf.len()) })
        })
    }
}

impl<T: AsFd> Drop for Pollable<T> {
    fn drop(&mut self) {
        if self.inner.is_some() {
            // `&mut self`: no op is in flight, nobody waits on the PollDesc.
            self.release();
        }
    }
}

impl<T: AsFd> Read for &Pollable<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_fd(buf)
    }
}

impl<T: AsFd> Read for Pollable<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_fd(buf)
    }
}

impl<T: AsFd> Write for &Pollable<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_fd(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: AsFd> Write for Pollable<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_fd(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: AsFd> AsFd for Pollable<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.get_ref().as_fd()
    }
}

impl<T: AsFd> AsRawFd for Pollable<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

// ---- the standard streams ---------------------------------------------------

/// Most bytes one standard-stream call moves through the pool.
const STDIO_BUF: usize = 64 * 1024;

fn in_coroutine() -> bool {
    current_ctx().is_some()
}

/// The process's standard input, whose reads run on the blocking pool so
/// that a coroutine waiting for input parks instead of holding its worker.
/// It reads through std's `Stdin` (and its buffer), so it can be mixed with
/// `std::io::stdin()`.
///
/// The standard streams go through the pool rather than the poller because
/// they are often a terminal shared with the parent shell, whose
/// non-blocking mode gopark must not change. A read in flight when its
/// coroutine is cancelled (runtime shutdown) completes on the pool, and what
/// it read is lost.
///
/// ```no_run
/// use std::io::Read;
/// gopark::run(|| {
///     let mut line = String::new();
///     gopark::io::stdin().read_line(&mut line).unwrap();
///     let mut rest = Vec::new();
///     gopark::io::stdin().read_to_end(&mut rest).unwrap();
/// });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Stdin {
    _private: (),
}

/// The process's standard input (see [`Stdin`]).
///
/// ```
/// let _stdin = gopark::io::stdin();
/// ```
pub fn stdin() -> Stdin {
    Stdin { _private: () }
}

impl Stdin {
    /// Reads a line (through the newline) and appends it to `buf`, as
    /// `std::io::Stdin::read_line`; returns the bytes read, 0 at the end.
    ///
    /// # Errors
    /// A read error, or invalid UTF-8 (`buf` is then unchanged).
    pub fn read_line(&self, buf: &mut String) -> io::Result<usize> {
        if !in_coroutine() {
            return io::stdin().read_line(buf);
        }
        let (r, line) = crate::blocking(|| {
            let mut line = String::new();
            let r = io::stdin().read_line(&mut line);
            (r, line)
        });
        buf.push_str(&line);
        r
    }

    /// The lines of standard input, without their line endings, as
    /// `std::io::Stdin::lines`.
    pub fn lines(self) -> impl Iterator<Item = io::Result<String>> {
        std::iter::from_fn(move || {
            let mut line = String::new();
            match self.read_line(&mut line) {
                Ok(0) => None,
                Ok(_) => {
                    if line.ends_with('\n') {
                        line.pop();
                        if line.ends_with('\r') {
                            line.pop();
                        }
                    }
                    Some(Ok(line))
                }
                Err(e) => Some(Err(e)),
            }
        })
    }

    fn read_inner(&self, buf: &mut [u8]) -> io::Result<usize> {
        if !in_coroutine() {
            return io::stdin().read(buf);
        }
        crate::blocking::read_on_pool(buf, STDIO_BUF, |d| io::stdin().read(d))
    }

    fn read_to_end_inner(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        if !in_coroutine() {
            return io::stdin().read_to_end(buf);
        }
        crate::blocking::read_to_end_on_pool(buf, |d| io::stdin().read_to_end(d))
    }
}

impl Read for Stdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.read_to_end_inner(buf)
    }
}

impl Read for &Stdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.read_to_end_inner(buf)
    }
}

macro_rules! out_stream {
    ($ty:ident, $fun:ident, $std:ident, $what:literal) => {
        #[doc = concat!("The process's standard ", $what, ", whose writes and flushes run on")]
        /// the blocking pool (so a full pipe or a slow terminal parks the
        /// coroutine instead of holding its worker). It writes through std's
        #[doc = concat!("`", stringify!($ty), "`, so its output interleaves correctly with")]
        /// `println!`/`eprintln!` at the granularity of whole calls. See
        /// [`Stdin`] for why the standard streams use the pool.
        ///
        /// ```
        /// use std::io::Write;
        /// gopark::run(|| {
        #[doc = concat!("    writeln!(gopark::io::", stringify!($fun), "(), \"hello\").unwrap();")]
        #[doc = concat!("    gopark::io::", stringify!($fun), "().flush().unwrap();")]
        /// });
        /// ```
        #[derive(Debug, Clone, Copy)]
        pub struct $ty {
            _private: (),
        }

        #[doc = concat!("The process's standard ", $what, " (see [`", stringify!($ty), "`]).")]
        ///
        /// ```
        #[doc = concat!("let _s = gopark::io::", stringify!($fun), "();")]
        /// ```
        pub fn $fun() -> $ty {
            $ty { _private: () }
        }

        impl $ty {
            fn write_inner(&self, buf: &[u8]) -> io::Result<usize> {
                if !in_coroutine() {
                    return io::$std().write(buf);
                }
                let data = buf[..buf.len().min(STDIO_BUF)].to_vec();
                crate::blocking(move || io::$std().write(&data))
            }

            fn write_all_inner(&self, buf: &[u8]) -> io::Result<()> {
                if !in_coroutine() {
                    return io::$std().write_all(buf);
                }
                let data = buf.to_vec();
                crate::blocking(move || io::$std().write_all(&data))
            }

            fn flush_inner(&self) -> io::Result<()> {
                if !in_coroutine() {
                    return io::$std().flush();
                }
                crate::blocking(|| io::$std().flush())
            }
        }

        impl Write for $ty {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.write_inner(buf)
            }

            fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
                self.write_all_inner(buf)
            }

            fn flush(&mut self) -> io::Result<()> {
                self.flush_inner()
            }
        }

        impl Write for &$ty {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.write_inner(buf)
            }

            fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
                self.write_all_inner(buf)
            }

            fn flush(&mut self) -> io::Result<()> {
                self.flush_inner()
            }
        }
    };
}

out_stream!(Stdout, stdout, stdout, "output");
out_stream!(Stderr, stderr, stderr, "error");
