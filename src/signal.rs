//! Go's `os/signal.Notify`: Unix signals delivered on a channel.
//!
//! ```no_run
//! use gopark::select;
//!
//! let sigs = gopark::signal::notify(&[libc::SIGINT, libc::SIGTERM])?;
//! let (_tx, work) = gopark::chan::bounded::<()>(0);
//! select! {
//!     recv(work) -> _ => {}
//!     recv(sigs) -> sig => println!("got signal {}", sig.unwrap()),
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## How it works
//! The first [`notify`] for a signal installs a handler with `sigaction`.
//! The handler does one async-signal-safe thing: it writes the signal
//! number to a pipe. One dispatcher thread per process reads the pipe and
//! sends the number, without blocking, on the channel of every receiver
//! registered for it (a receiver that is behind misses signals, as in Go).
//! Signal masks are left alone, so it does not matter which thread a
//! signal is delivered to.
//!
//! Dropping every clone of a returned receiver unregisters it. When a
//! signal arrives that no live receiver wants any more, the dispatcher
//! puts back the disposition that was there before the first `notify` and
//! raises the signal again, so it has its usual effect (for `SIGINT`,
//! ending the process).

use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use crate::chan::{self, Receiver, Sender};

/// How many signals a receiver may have pending before later ones are
/// dropped.
const BUFFER: usize = 8;

/// Write end of the pipe (-1 before the first `notify`).
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

struct Sub {
    signals: Vec<i32>,
    tx: Sender<i32>,
}

#[derive(Default)]
struct Registry {
    subs: Vec<Sub>,
    /// Signals with our handler installed, and the action it replaced.
    installed: HashMap<i32, libc::sigaction>,
    started: bool,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn registry() -> std::sync::MutexGuard<'static, Option<Registry>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The signal handler: async-signal-safe (`write` only; errno preserved).
extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno slot.
    let saved = unsafe { *libc::__errno_location() };
    let fd = WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: `b` is a valid one-byte buffer; a failed write (a full
        // pipe) just drops the signal.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

/// Signals that cannot be caught, or that report faults of the thread that
/// raised them (gopark handles `SIGSEGV` itself, for stack overflows).
fn forbidden(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGKILL | libc::SIGSTOP | libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE
    ) || !(1..=libc::SIGRTMAX()).contains(&sig)
}

/// Starts delivering `signals` to the returned channel (Go's
/// `signal.Notify`). Each call returns a new receiver; every receiver
/// registered for a signal gets it. The channel holds a few pending
/// signals; further ones are dropped while nobody receives. Works with
/// [`select!`](crate::select) and from plain threads.
///
/// Drop the receiver (every clone) to stop; see the [module docs](self)
/// for what happens to the signal afterwards.
///
/// # Errors
/// [`InvalidInput`](io::ErrorKind::InvalidInput) for an empty list, a
/// signal that cannot be caught (`SIGKILL`, `SIGSTOP`), a fault signal
/// (`SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`) or an out-of-range number;
/// the OS error if the pipe, the thread or `sigaction` fails.
///
/// ```
/// use std::time::Duration;
/// let rx = gopark::signal::notify(&[libc::SIGUSR2]).unwrap();
/// // SAFETY: raising a signal that has a handler installed.
/// unsafe { libc::raise(libc::SIGUSR2) };
/// assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(libc::SIGUSR2));
/// assert!(gopark::signal::notify(&[libc::SIGKILL]).is_err());
/// ```
pub fn notify(signals: &[i32]) -> io::Result<Receiver<i32>> {
    if signals.is_empty() || signals.iter().any(|&s| forbidden(s)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "signal::notify: no signals, or one that cannot be caught",
        ));
    }
    let mut guard = registry();
    let reg = guard.get_or_insert_with(Registry::default);
    if !reg.started {
        start_dispatcher()?;
        reg.started = true;
    }
    for &sig in signals {
        if let std::collections::hash_map::Entry::Vacant(e) = reg.installed.entry(sig) {
            e.insert(install(sig)?);
        }
    }
    let (tx, rx) = chan::bounded(BUFFER);
    reg.subs.push(Sub {
        signals: signals.to_vec(),
        tx,
    });
    Ok(rx)
}

/// Installs the handler for `sig`; returns the action it replaces.
fn install(sig: i32) -> io::Result<libc::sigaction> {
    // SAFETY: all-zero is a valid sigaction; we fill in what matters.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    sa.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: `sa.sa_mask` is a valid sigset to initialise.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: valid pointers to a sigaction to read and one to fill.
    if unsafe { libc::sigaction(sig, &sa, old.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sigaction succeeded and wrote the old action.
    Ok(unsafe { old.assume_init() })
}

/// Creates the pipe and the dispatcher thread.
fn start_dispatcher() -> io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (r, w) = (fds[0], fds[1]);
    // The handler must never block: a full pipe drops the signal.
    // SAFETY: `w` is a descriptor we own.
    unsafe {
        let fl = libc::fcntl(w, libc::F_GETFL);
        libc::fcntl(w, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    if let Err(e) = std::thread::Builder::new()
        .name("gopark-signal".into())
        .spawn(move || dispatch(r))
    {
        // SAFETY: both descriptors are ours and unused.
        unsafe {
            libc::close(r);
            libc::close(w);
        }
        return Err(e);
    }
    WRITE_FD.store(w, Ordering::Relaxed);
    Ok(())
}

/// The dispatcher thread: reads signal numbers, delivers them.
fn dispatch(r: i32) {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes; `r` is ours.
        let n = unsafe { libc::read(r, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            eprintln!(
                "gopark: signal dispatcher: read failed: {}",
                io::Error::last_os_error()
            );
            return;
        }
        for &b in &buf[..n as usize] {
            deliver(i32::from(b));
        }
    }
}

/// Sends `sig` to every live receiver that wants it; unregisters dead
/// receivers, and re-raises `sig` with its old disposition if nobody wants
/// it any more.
fn deliver(sig: i32) {
    let mut reraise = false;
    {
        let mut guard = registry();
        let Some(reg) = guard.as_mut() else { return };
        reg.subs.retain(|s| !s.tx.is_closed());
        let mut wanted = false;
        for s in reg.subs.iter().filter(|s| s.signals.contains(&sig)) {
            wanted = true;
            let _ = s.tx.try_send(sig); // full: the receiver is behind
        }
        // Give back every signal nobody listens to any more.
        let subs = &reg.subs;
        reg.installed.retain(|&s, old| {
            let used = subs.iter().any(|sub| sub.signals.contains(&s));
            if !used {
                // SAFETY: `old` is the action sigaction gave us for `s`.
                unsafe { libc::sigaction(s, old, std::ptr::null_mut()) };
            }
            used
        });
        if !wanted {
            reraise = true;
        }
    }
    if reraise {
        // The signal came after its last receiver was dropped: let it have
        // the effect it would have had without us.
        // SAFETY: sending a signal to our own process.
        unsafe { libc::kill(libc::getpid(), sig) };
    }
}

impl std::fmt::Debug for Sub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sub")
            .field("signals", &self.signals)
            .finish()
    }
}
