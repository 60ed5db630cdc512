//! Thin wrappers over the socket syscalls the std types do not expose in
//! non-blocking form: socket creation, address conversion, options, and the
//! raw read/send calls of the stream hot path.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem;
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// `Err(last OS error)` for a negative return.
pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A socket address in the kernel's layout.
pub(crate) struct RawAddr {
    pub(crate) storage: libc::sockaddr_storage,
    pub(crate) len: libc::socklen_t,
}

impl RawAddr {
    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }
}

/// Converts a std address to the kernel's layout.
pub(crate) fn raw_addr(addr: &SocketAddr) -> RawAddr {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    RawAddr {
        storage,
        len: len as libc::socklen_t,
    }
}

/// A new non-blocking, close-on-exec socket.
pub(crate) fn socket(family: libc::c_int, ty: libc::c_int) -> io::Result<RawFd> {
    // SAFETY: plain syscall; the result is checked.
    cvt(unsafe { libc::socket(family, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })
}

/// The address family of `addr`.
pub(crate) fn family(addr: &SocketAddr) -> libc::c_int {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

/// Sets an integer socket option.
pub(crate) fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    val: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `val` outlives the call and the length matches.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&val as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Reads an integer socket option.
pub(crate) fn getsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut val: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `val` and `len` outlive the call and describe a c_int.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut val as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(val)
}

/// Switches `fd` between blocking and non-blocking mode.
pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    let mut v: libc::c_int = on.into();
    // SAFETY: FIONBIO takes a pointer to an int that outlives the call.
    cvt(unsafe { libc::ioctl(fd, libc::FIONBIO, &mut v) }).map(drop)
}

/// Replaces the open file `fd` refers to with a placeholder: a Unix stream
/// socket that is not connected (reads and writes on it fail with
/// ENOTCONN/EINVAL, without SIGPIPE). The socket `fd` referred to is
/// released (closed, unless duplicates of it remain) while the number stays
/// allocated and owned by the caller, so a `BorrowedFd` of it never sees
/// another file. False if no placeholder could be created (out of
/// descriptors): `fd` is left as it is.
pub(crate) fn release_keep_number(fd: RawFd) -> bool {
    use std::sync::atomic::{AtomicI32, Ordering};
    // One placeholder for the process, created on first use, never closed.
    static PLACEHOLDER: AtomicI32 = AtomicI32::new(-1);
    let mut p = PLACEHOLDER.load(Ordering::Acquire);
    if p < 0 {
        let Ok(new) = socket(libc::AF_UNIX, libc::SOCK_STREAM) else {
            return false;
        };
        p = match PLACEHOLDER.compare_exchange(-1, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => new,
            Err(theirs) => {
                close(new);
                theirs
            }
        };
    }
    loop {
        // SAFETY: `p` is the placeholder, open for the life of the process;
        // the caller owns `fd`, which dup3 atomically re-points at it.
        let r = unsafe { libc::dup3(p, fd, libc::O_CLOEXEC) };
        if r >= 0 {
            return true;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
}

/// Closes `fd`, ignoring errors (the descriptor is gone either way on Linux).
pub(crate) fn close(fd: RawFd) {
    // SAFETY: the caller owns `fd` and never uses it again.
    unsafe { libc::close(fd) };
}

/// True if the socket has a peer (getpeername succeeds).
pub(crate) fn is_connected(fd: RawFd) -> bool {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut st: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `st` and `len` outlive the call and describe the buffer.
    unsafe {
        libc::getpeername(
            fd,
            (&mut st as *mut libc::sockaddr_storage).cast(),
            &mut len,
        ) == 0
    }
}

/// Starts a non-blocking connect; true if it is still in progress.
pub(crate) fn start_connect(fd: RawFd, addr: &RawAddr) -> io::Result<bool> {
    loop {
        // SAFETY: `addr` holds a valid sockaddr of `addr.len` bytes.
        let r = unsafe { libc::connect(fd, addr.as_ptr(), addr.len) };
        if r == 0 {
            return Ok(false);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINPROGRESS) | Some(libc::EALREADY) => return Ok(true),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}

/// Converts a kernel socket address to a std one.
pub(crate) fn std_addr(st: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    match libc::c_int::from(st.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(st as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(st as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        f => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unexpected address family {f}"),
        )),
    }
}

/// One `accept4` attempt: a non-blocking, close-on-exec connection and the
/// peer's raw address.
pub(crate) fn accept(fd: RawFd) -> io::Result<(RawFd, libc::sockaddr_storage)> {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut st: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `st` and `len` outlive the call and describe the buffer.
    let r = unsafe {
        libc::accept4(
            fd,
            (&mut st as *mut libc::sockaddr_storage).cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        // Go: a connection aborted before it was accepted is retried.
        if e.raw_os_error() == Some(libc::ECONNABORTED) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        return Err(e);
    }
    Ok((r, st))
}

/// Most buffers one vectored call passes to the kernel.
pub(crate) const IOV_MAX: usize = 1024;

// The hot-path calls below make the system call themselves, with an inline
// `syscall` (x86_64) or `svc 0` (aarch64) instruction, rather than through
// glibc: its `recv`/`send` wrappers are pthread cancellation points that
// toggle async cancellation around the call in a multi-threaded process
// (about 60 user-space instructions per request, measured with callgrind on
// the echo example; gopark never cancels threads), and its generic
// `syscall(2)` shuffles all six argument registers (about 12 instructions
// per call). On failure they store errno as the wrappers do, so callers
// read the error with `io::Error::last_os_error`.

/// A Linux system call with up to six arguments (unused ones 0): the
/// kernel's return value, `-errno` on failure.
///
/// # Safety
/// `nr` and the arguments must form a valid system call whose memory
/// arguments are valid for what the kernel does with them (as for
/// `libc::syscall`).
#[inline(always)]
pub(crate) unsafe fn syscall6(
    nr: libc::c_long,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> isize {
    let ret: isize;
    // SAFETY: the caller's contract. The instruction clobbers only the
    // registers named here (x86_64: the kernel uses rcx and r11 for the
    // return address and flags); it may read and write memory (no `nomem`
    // or `readonly`), which is what the kernel does with the buffers, and
    // it does not touch the stack.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            in("r8") a5,
            in("r9") a6,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    // SAFETY: as above (aarch64: the number in x8, the result in x0).
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a1 as isize => ret,
            in("x1") a2,
            in("x2") a3,
            in("x3") a4,
            in("x4") a5,
            in("x5") a6,
            options(nostack),
        );
    }
    ret
}

/// A raw `recvfrom`/`sendto` result as the libc wrappers return it: -1
/// with errno set on failure.
#[inline(always)]
pub(crate) fn libc_result(r: isize) -> libc::ssize_t {
    // The kernel returns -4095..=-1 for errors; these calls return a byte
    // count (at most the buffer's length, so never negative) otherwise:
    // any negative value is an error, which is one sign test where the
    // range would be two compares.
    if r < 0 {
        set_errno(-r as libc::c_int);
        return -1;
    }
    r as libc::ssize_t
}

#[cold]
#[inline(never)]
fn set_errno(e: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno, always valid.
    unsafe { *libc::__errno_location() = e };
}

/// One `recv(2)` into `buf` (a socket's read: `read(2)` on a socket goes
/// through the VFS layer first, `fdget_pos` and `vfs_read`, about 100 ns
/// more per call on this machine's kernel).
#[inline]
pub(crate) fn sys_recv(fd: std::os::fd::RawFd, buf: &mut [u8]) -> libc::ssize_t {
    // SAFETY: `buf` is valid for writes of its length; recvfrom(2) with no
    // address (null, null length) is recv(2).
    libc_result(unsafe {
        syscall6(
            libc::SYS_recvfrom,
            fd as usize,
            buf.as_mut_ptr() as usize,
            buf.len(),
            0,
            0,
            0,
        )
    })
}

/// One `readv(2)` into `bufs`.
#[inline]
pub(crate) fn sys_readv(fd: std::os::fd::RawFd, bufs: &mut [IoSliceMut<'_>]) -> libc::ssize_t {
    let n = bufs.len().min(IOV_MAX);
    // SAFETY: IoSliceMut is ABI-compatible with iovec on Unix and each one
    // is valid for writes of its length.
    unsafe { libc::readv(fd, bufs.as_mut_ptr().cast(), n as libc::c_int) }
}

/// One `send(2)` of `buf`, without SIGPIPE.
#[inline]
pub(crate) fn sys_send(fd: std::os::fd::RawFd, buf: &[u8]) -> libc::ssize_t {
    libc_result(sys_send_raw(fd, buf))
}

/// [`sys_send`] returning the kernel's value (-errno on failure, errno
/// untouched): a caller that only compares it with the length asked for
/// (never a negative number) skips the error mapping on that path
/// (`libc_result` maps it otherwise).
#[inline]
pub(crate) fn sys_send_raw(fd: std::os::fd::RawFd, buf: &[u8]) -> isize {
    // SAFETY: `buf` is valid for reads of its length; sendto(2) with no
    // address (null, length 0) is send(2).
    unsafe {
        syscall6(
            libc::SYS_sendto,
            fd as usize,
            buf.as_ptr() as usize,
            buf.len(),
            libc::MSG_NOSIGNAL as usize,
            0,
            0,
        )
    }
}

/// One `sendmsg(2)` of `bufs`, without SIGPIPE.
#[inline]
pub(crate) fn sys_sendv(fd: std::os::fd::RawFd, bufs: &[IoSlice<'_>]) -> libc::ssize_t {
    // SAFETY: all-zero bytes are a valid msghdr (no name, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = bufs.as_ptr().cast_mut().cast();
    msg.msg_iovlen = bufs.len().min(IOV_MAX) as _;
    // SAFETY: IoSlice is ABI-compatible with iovec; the kernel only reads
    // the buffers, each valid for reads of its length.
    unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) }
}

/// Bytes the vectored call would transfer at most (the first
/// [`IOV_MAX`] buffers).
#[inline]
pub(crate) fn total<T: std::ops::Deref<Target = [u8]>>(bufs: &[T]) -> usize {
    bufs.iter().take(IOV_MAX).map(|b| b.len()).sum()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    fn errno() -> Option<i32> {
        io::Error::last_os_error().raw_os_error()
    }

    /// The inline system calls move the bytes asked for, across lengths
    /// that straddle the socket buffer, and keep a value the caller holds
    /// in registers across the call intact (the clobbers are complete).
    #[test]
    fn read_and_send_round_trip() {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let mut check: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in [0usize, 1, 7, 64, 4096, 65_536, 1 << 20] {
            let out: Vec<u8> = (0..len).map(|i| (i * 131 + len) as u8).collect();
            let mut back = vec![0u8; len];
            let (mut sent, mut got) = (0, 0);
            while got < len || (len == 0 && sent == 0) {
                let before = check;
                if sent < len || len == 0 {
                    let r = sys_send(a.as_raw_fd(), &out[sent..]);
                    if r >= 0 {
                        sent += r as usize;
                    } else {
                        assert_eq!(errno(), Some(libc::EAGAIN));
                    }
                    if len == 0 {
                        assert_eq!(r, 0);
                        break;
                    }
                }
                let r = sys_recv(b.as_raw_fd(), &mut back[got..]);
                if r >= 0 {
                    got += r as usize;
                } else {
                    assert_eq!(errno(), Some(libc::EAGAIN));
                }
                check = check.rotate_left(7) ^ (got as u64);
                assert_eq!(before.rotate_left(7) ^ (got as u64), check);
            }
            assert_eq!(back, out, "len {len}");
        }
    }

    /// Failures come back as -1 with errno set, as from the libc wrappers:
    /// a bad descriptor, an empty non-blocking socket, a send to a closed
    /// peer (EPIPE, and no SIGPIPE kills the test process).
    #[test]
    fn errors_set_errno() {
        let mut buf = [0u8; 8];
        assert_eq!(sys_recv(-1, &mut buf), -1);
        assert_eq!(errno(), Some(libc::EBADF));
        assert_eq!(sys_send(-1, b"x"), -1);
        assert_eq!(errno(), Some(libc::EBADF));
        let (a, b) = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| {
                let c = std::net::TcpStream::connect(l.local_addr()?)?;
                Ok((c, l.accept()?.0))
            })
            .unwrap();
        a.set_nonblocking(true).unwrap();
        assert_eq!(sys_recv(a.as_raw_fd(), &mut buf), -1);
        assert_eq!(errno(), Some(libc::EAGAIN));
        drop(b);
        // The first send after the peer closed may succeed (and draw a
        // reset); within a few, the kernel reports the broken pipe.
        let mut saw = None;
        for _ in 0..100 {
            if sys_send(a.as_raw_fd(), b"ping") < 0 {
                saw = errno();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            matches!(saw, Some(libc::EPIPE) | Some(libc::ECONNRESET)),
            "{saw:?}"
        );
        // errno is left alone on success.
        let (c, mut d) = UnixStream::pair().unwrap();
        d.write_all(b"ok").unwrap();
        set_errno(libc::EINTR);
        assert_eq!(sys_recv(c.as_raw_fd(), &mut buf), 2);
        assert_eq!(errno(), Some(libc::EINTR));
    }
}
