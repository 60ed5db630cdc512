//! Stack-overflow diagnostics: a SIGSEGV/SIGBUS handler that recognises a hit
//! on the guard of the coroutine the faulting thread is running.
//!
//! - [`worker_init`] installs the process-wide handler once (chained to the
//!   action that was in place before, usually std's, so that a plain thread's
//!   overflow message and an ordinary segfault keep working) and gives the
//!   calling thread an alternate signal stack: the handler must run somewhere
//!   other than the overflowed stack.
//! - [`worker_init`] also records, in a plain thread-local `Cell`, the
//!   worker's [`RunningFn`]: the handler calls it to learn which coroutine
//!   the thread runs (the worker answers from the pointer it keeps to the
//!   running task anyway, so a resume pays nothing for the handler). A
//!   `thread_local!` with a `const` initialiser and no destructor is a bare
//!   `#[thread_local]` static, so reading it takes no lock and allocates
//!   nothing; the function itself must be as plain (see [`RunningFn`]).
//! - On a fault inside `[limit, limit + GUARD_SIZE)` of that coroutine, the
//!   handler writes `coroutine 'NAME' (id N) has overflowed its 256 KiB stack`
//!   with `write(2)` from a stack buffer and aborts: no recovery is possible,
//!   since unwinding would run destructors on a stack that has no room left.

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use super::{page_size, GUARD_SIZE};

/// What the fault handler needs to know about the coroutine a worker runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunningInfo {
    /// Coroutine id.
    pub id: u64,
    /// Usable stack size in bytes.
    pub stack_size: usize,
    /// Lowest address of the stack including its guard (`Stack::limit()`):
    /// the guard is `[limit, limit + GUARD_SIZE)`.
    pub limit: usize,
    /// Pointer and length of the coroutine's name (valid while it runs).
    pub name: Option<(*const u8, usize)>,
}

/// Tells the fault handler which coroutine the calling thread is running,
/// if any. It is called inside the SIGSEGV/SIGBUS handler, on the faulting
/// thread, so it must be async-signal-safe: plain loads of memory that
/// stays valid while the coroutine runs, no lock, no allocation, no
/// thread-local with lazy initialisation or a destructor.
pub(crate) type RunningFn = fn() -> Option<RunningInfo>;

// The handler relies on RUNNING having no destructor (see the module docs).
const _: () = assert!(!std::mem::needs_drop::<Option<RunningFn>>());

thread_local! {
    /// The worker's [`RunningFn`], set by `worker_init` (`None` on threads
    /// that never ran it). A `Cell` of a function pointer: no destructor.
    static RUNNING: Cell<Option<RunningFn>> = const { Cell::new(None) };
    static ALT: AltStack = const { AltStack { map: Cell::new(0), len: Cell::new(0), done: Cell::new(false) } };
}

/// Usable size of the alternate signal stack we give each worker.
const ALT_SIZE: usize = 64 * 1024;

/// This thread's alternate signal stack, if we mapped one.
struct AltStack {
    /// Start of the mapping (a guard page, then the stack); 0 if none.
    map: Cell<usize>,
    /// Length of the mapping.
    len: Cell<usize>,
    /// `worker_init` already ran on this thread.
    done: Cell<bool>,
}

impl AltStack {
    fn install(&self) {
        self.done.set(true);
        // SAFETY: stack_t is plain data; all-zero is a valid value.
        let mut old: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: a null new stack only queries the current one into `old`.
        if unsafe { libc::sigaltstack(std::ptr::null(), &mut old) } == 0
            && old.ss_flags & libc::SS_DISABLE == 0
            && old.ss_size >= ALT_SIZE
        {
            return; // a big enough signal stack is already in place
        }
        let page = page_size();
        let len = ALT_SIZE + page;
        // SAFETY: a fresh anonymous mapping aliases nothing.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return; // no diagnostics on this thread; overflow is a plain SIGSEGV
        }
        // SAFETY: the first page of our own fresh mapping becomes a guard.
        unsafe { libc::mprotect(p, page, libc::PROT_NONE) };
        super::name_mapping(p as usize, len, c"gopark signal stack");
        // SAFETY: stack_t is plain data; all-zero is a valid value.
        let mut st: libc::stack_t = unsafe { std::mem::zeroed() };
        st.ss_sp = (p as usize + page) as *mut libc::c_void;
        st.ss_size = ALT_SIZE;
        st.ss_flags = 0;
        // SAFETY: `st` describes ALT_SIZE writable bytes that stay mapped
        // until this thread's AltStack is dropped, which disables it first.
        if unsafe { libc::sigaltstack(&st, std::ptr::null_mut()) } != 0 {
            // SAFETY: the mapping was never published; unmap it.
            unsafe { libc::munmap(p, len) };
            return;
        }
        self.map.set(p as usize);
        self.len.set(len);
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let map = self.map.get();
        if map == 0 {
            return;
        }
        // SAFETY: stack_t is plain data; all-zero is a valid value.
        let mut cur: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: queries the current signal stack into `cur`.
        unsafe { libc::sigaltstack(std::ptr::null(), &mut cur) };
        if cur.ss_flags & libc::SS_DISABLE == 0 && cur.ss_sp as usize == map + page_size() {
            // SAFETY: stack_t is plain data; all-zero is a valid value.
            let mut off: libc::stack_t = unsafe { std::mem::zeroed() };
            off.ss_flags = libc::SS_DISABLE;
            // SAFETY: disabling the signal stack has no preconditions (we are
            // not running on it: this is a thread-local destructor).
            unsafe { libc::sigaltstack(&off, std::ptr::null_mut()) };
        }
        // SAFETY: our signal stack is no longer installed on this thread (or
        // was replaced by someone else's), so nothing uses the mapping.
        unsafe { libc::munmap(map as *mut libc::c_void, self.len.get()) };
    }
}

/// Once per worker thread before its first resume: installs the process-wide
/// handler (once) and this thread's alternate signal stack, and records
/// `running`, which the handler asks which coroutine the thread runs.
pub(crate) fn worker_init(running: RunningFn) {
    RUNNING.with(|c| c.set(Some(running)));
    install_handler();
    ALT.with(|a| {
        if !a.done.get() {
            a.install();
        }
    });
}

/// The action that was in place before ours, per signal, written once
/// before our handler is installed and only read afterwards.
struct PrevAction(UnsafeCell<MaybeUninit<libc::sigaction>>);

// SAFETY: written only inside INSTALL (before the handler that reads it
// exists, published by HANDLER_READY), read-only afterwards.
unsafe impl Sync for PrevAction {}

static PREV_SEGV: PrevAction = PrevAction(UnsafeCell::new(MaybeUninit::uninit()));
static PREV_BUS: PrevAction = PrevAction(UnsafeCell::new(MaybeUninit::uninit()));
static HANDLER_READY: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

fn install_handler() {
    INSTALL.call_once(|| {
        for (sig, prev) in [(libc::SIGSEGV, &PREV_SEGV), (libc::SIGBUS, &PREV_BUS)] {
            // SAFETY: queries the current action into PREV, which nobody
            // reads yet (our handler is not installed) and Once serialises.
            unsafe { libc::sigaction(sig, std::ptr::null(), (*prev.0.get()).as_mut_ptr()) };
        }
        HANDLER_READY.store(true, Ordering::Release);
        for sig in [libc::SIGSEGV, libc::SIGBUS] {
            // SAFETY: sigaction is plain data; all-zero is a valid value.
            let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
            act.sa_sigaction = on_fault as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: `act` is a valid action whose handler is async-signal-
            // safe; sa_mask is a valid sigset_t to clear.
            unsafe {
                libc::sigemptyset(&mut act.sa_mask);
                libc::sigaction(sig, &act, std::ptr::null_mut());
            }
        }
    });
}

/// The SIGSEGV/SIGBUS handler. Async-signal-safe: no allocation, no locks.
extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t; si_addr is
    // meaningful for SIGSEGV/SIGBUS (and merely unused otherwise).
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // si_code > 0: raised by the kernel for a memory access, not sent by kill.
    if code > 0 {
        if let Some(r) = RUNNING.with(Cell::get).and_then(|running| running()) {
            if addr.wrapping_sub(r.limit) < GUARD_SIZE {
                report_overflow(&r);
                // SAFETY: abort is async-signal-safe and never returns.
                unsafe { libc::abort() };
            }
        }
    }
    // SAFETY: called from the handler of `sig` with the kernel's arguments.
    unsafe { chain(sig, info, ctx, code) };
}

/// Hands a fault that is not a coroutine overflow to the previous action.
///
/// # Safety
///
/// Must be called from our handler for `sig`, with the arguments it got.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void, code: i32) {
    if !HANDLER_READY.load(Ordering::Acquire) {
        return;
    }
    let prev = if sig == libc::SIGBUS {
        &PREV_BUS
    } else {
        &PREV_SEGV
    };
    // SAFETY: HANDLER_READY (acquire) shows PREV was written; it is never
    // written again.
    let prev: &libc::sigaction = unsafe { (*prev.0.get()).assume_init_ref() };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        if h == libc::SIG_IGN && code <= 0 {
            return; // a sent signal that was ignored before us stays ignored
        }
        // Restore the default action: a fault re-executes and kills the
        // process with `sig` as if we had never been installed.
        // SAFETY: sigaction is plain data; all-zero is a valid value.
        let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
        dfl.sa_sigaction = libc::SIG_DFL;
        // SAFETY: installs the default action; sigaction and raise are
        // async-signal-safe.
        unsafe {
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
            if code <= 0 {
                // Sent with kill(): re-raise; it is delivered (and kills)
                // as soon as this handler returns and unblocks it.
                libc::raise(sig);
            }
        }
        return;
    }
    // Emulate what the kernel would have done had the previous action been
    // delivered directly. SA_RESETHAND: the default action is back in place
    // before the handler runs (so a fault that the handler does not repair
    // re-executes and kills the process, instead of looping through us).
    if prev.sa_flags & libc::SA_RESETHAND != 0 {
        // SAFETY: sigaction is plain data; all-zero is a valid value.
        let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
        dfl.sa_sigaction = libc::SIG_DFL;
        // SAFETY: installs the default action; sigaction is
        // async-signal-safe.
        unsafe { libc::sigaction(sig, &dfl, std::ptr::null_mut()) };
    }
    // The previous action's sa_mask is blocked during its handler, and `sig`
    // is too unless it asked for SA_NODEFER (our own action blocks `sig`).
    // SAFETY: sigset_t is plain data; sigprocmask fills it.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: blocks a valid signal set and saves the old mask in `old`;
    // pthread_sigmask is a plain rt_sigprocmask system call on Linux.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &prev.sa_mask, &mut old) };
    if prev.sa_flags & libc::SA_NODEFER != 0 {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it.
        let mut only: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: a valid set holding just `sig` is unblocked.
        unsafe {
            libc::sigemptyset(&mut only);
            libc::sigaddset(&mut only, sig);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &only, std::ptr::null_mut());
        }
    }
    if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous action was installed with SA_SIGINFO, so its
        // handler has the three-argument signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: without SA_SIGINFO the handler takes the signal number.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
    // SAFETY: restores the mask saved above (the kernel restores the
    // interrupted context's own mask when our handler returns).
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
}

/// A fixed buffer for building a message without allocating.
struct Buf {
    bytes: [u8; 512],
    len: usize,
}

impl Buf {
    fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    fn push_num(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

/// Builds the overflow message for `r` (async-signal-safe).
fn overflow_message(r: &RunningInfo, buf: &mut Buf) {
    buf.push(b"\ncoroutine ");
    match r.name {
        Some((p, len)) if !p.is_null() => {
            // SAFETY: the worker keeps the name alive while the coroutine
            // runs (RunningInfo contract); we read at most 200 bytes of it.
            let name = unsafe { std::slice::from_raw_parts(p, len.min(200)) };
            buf.push(b"'");
            buf.push(name);
            buf.push(b"'");
        }
        _ => buf.push(b"<unnamed>"),
    }
    buf.push(b" (id ");
    buf.push_num(r.id);
    buf.push(b") has overflowed its ");
    const MIB: usize = 1024 * 1024;
    let size = r.stack_size;
    if size >= MIB && size % MIB == 0 {
        buf.push_num((size / MIB) as u64);
        buf.push(b" MiB");
    } else if size % 1024 == 0 {
        buf.push_num((size / 1024) as u64);
        buf.push(b" KiB");
    } else {
        buf.push_num(size as u64);
        buf.push(b" bytes");
    }
    buf.push(b" stack\nfatal runtime error: stack overflow, aborting\n");
}

/// The calling thread's errno (async-signal-safe).
fn errno() -> libc::c_int {
    // SAFETY: __errno_location returns this thread's valid errno slot.
    unsafe { *libc::__errno_location() }
}

fn report_overflow(r: &RunningInfo) {
    let mut buf = Buf {
        bytes: [0; 512],
        len: 0,
    };
    overflow_message(r, &mut buf);
    let mut out = &buf.bytes[..buf.len];
    while !out.is_empty() {
        // SAFETY: writes initialised bytes from our buffer; write(2) is
        // async-signal-safe.
        let n = unsafe { libc::write(2, out.as_ptr().cast(), out.len()) };
        if n > 0 {
            out = &out[n as usize..];
        } else if n < 0 && errno() == libc::EINTR {
            continue;
        } else {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(r: &RunningInfo) -> String {
        let mut buf = Buf {
            bytes: [0; 512],
            len: 0,
        };
        overflow_message(r, &mut buf);
        String::from_utf8(buf.bytes[..buf.len].to_vec()).unwrap()
    }

    #[test]
    fn message_format() {
        let name = "conn-42";
        let r = RunningInfo {
            id: 1234,
            stack_size: 256 * 1024,
            limit: 0,
            name: Some((name.as_ptr(), name.len())),
        };
        assert!(
            msg(&r).contains("coroutine 'conn-42' (id 1234) has overflowed its 256 KiB stack\n")
        );
        let r = RunningInfo {
            id: 0,
            stack_size: 2 * 1024 * 1024,
            limit: 0,
            name: None,
        };
        assert!(msg(&r).contains("coroutine <unnamed> (id 0) has overflowed its 2 MiB stack\n"));
        let r = RunningInfo {
            id: u64::MAX,
            stack_size: 1000,
            limit: 0,
            name: None,
        };
        assert!(msg(&r).contains("(id 18446744073709551615) has overflowed its 1000 bytes stack"));
        let long = "x".repeat(1000);
        let r = RunningInfo {
            id: 1,
            stack_size: 4096,
            limit: 0,
            name: Some((long.as_ptr(), long.len())),
        };
        assert!(msg(&r).len() < 512);
    }
}
