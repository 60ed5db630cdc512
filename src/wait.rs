//! What a parked coroutine waits for (Go's `waitReason`, plus the object of
//! the wait), recorded for the coroutine dump (`runtime::dump`).
//!
//! Every park goes through [`park_commit`](crate::coroutine::park_commit)
//! (or repeats one with `park_while`), which takes a `&Wait` built in the
//! caller's frame and stores a pointer to it in the task before the
//! coroutine switches away: building the `Wait` (a few stores into the
//! frame) and one pointer store per park. Nothing reads it on the hot path.
//! (A socket op parked for readiness passes a record its PollDesc keeps,
//! built once per descriptor: one pointer store per park.)
//!
//! ## Who reads the record, and why that is sound
//! The pointer is written only by the running coroutine, while its status is
//! RUNNING. A dumper on another thread follows it only after moving the
//! status from WAITING to SCANNING with a CAS (`Task::inspect_wait`, Go's
//! `_Gscan` bit): a waker's `ready` and the worker's own take-back wait while
//! the status is SCANNING, so the coroutine cannot resume, and its frame —
//! the `Wait` and the objects it borrows — stays as it is until the dumper
//! stores WAITING back. Pointers in a [`Detail`] come from borrows
//! (`Wait<'a>`'s constructors take `&'a T`) that outlive the park. The
//! dumper reads through them only atomics, and takes no lock meanwhile, so a
//! waker spinning on SCANNING can never wait for the dumper in turn.
//! docs/SAFETY.md, section 14, gives the whole argument.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::coroutine::CoroutineId;
use crate::sm::rwlock::RwWord;
use crate::sm::sema::SemaWord;

/// What a coroutine is doing, as the dump shows it (Go's wait reasons, plus
/// `running` and `runnable`).
///
/// ```
/// use gopark::CoroutineState;
/// assert_eq!(CoroutineState::ChanReceive.to_string(), "chan receive");
/// assert_eq!(CoroutineState::IoWait.as_str(), "IO wait");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoroutineState {
    /// Running on its worker now.
    Running,
    /// Ready to run, waiting for its worker (or not started yet).
    Runnable,
    /// In [`time::sleep`](crate::time::sleep).
    Sleep,
    /// Receiving on a channel.
    ChanReceive,
    /// Sending on a channel.
    ChanSend,
    /// In [`select!`](crate::select) with no arm ready.
    Select,
    /// Waiting for a descriptor to become readable or writable, or for
    /// another operation on it in the same direction to finish.
    IoWait,
    /// Locking a [`sync::Mutex`](crate::sync::Mutex).
    Mutex,
    /// Locking a [`sync::RwLock`](crate::sync::RwLock).
    RwLock,
    /// In [`sync::Condvar::wait`](crate::sync::Condvar::wait).
    Condvar,
    /// In [`sync::WaitGroup::wait`](crate::sync::WaitGroup::wait).
    WaitGroup,
    /// Acquiring a [`sync::Semaphore`](crate::sync::Semaphore) permit.
    Semaphore,
    /// In [`sync::Barrier::wait`](crate::sync::Barrier::wait).
    Barrier,
    /// Waiting for another caller's [`sync::Once`](crate::sync::Once) (or
    /// `OnceLock`) initialiser.
    Once,
    /// Joining another coroutine.
    Join,
    /// In [`park`](crate::park) or [`park_timeout`](crate::park_timeout).
    Park,
    /// Waiting for a job on the blocking pool ([`blocking`](crate::blocking),
    /// `gopark::fs`, a joined [`spawn_blocking`](crate::spawn_blocking)).
    Blocking,
}

impl CoroutineState {
    /// The name the dump shows: `running`, `runnable`, `sleep`,
    /// `chan receive`, `chan send`, `select`, `IO wait`, `mutex`, `rwlock`,
    /// `condvar`, `waitgroup`, `semaphore`, `barrier`, `once`, `join`,
    /// `park`, `blocking`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CoroutineState::Running => "running",
            CoroutineState::Runnable => "runnable",
            CoroutineState::Sleep => "sleep",
            CoroutineState::ChanReceive => "chan receive",
            CoroutineState::ChanSend => "chan send",
            CoroutineState::Select => "select",
            CoroutineState::IoWait => "IO wait",
            CoroutineState::Mutex => "mutex",
            CoroutineState::RwLock => "rwlock",
            CoroutineState::Condvar => "condvar",
            CoroutineState::WaitGroup => "waitgroup",
            CoroutineState::Semaphore => "semaphore",
            CoroutineState::Barrier => "barrier",
            CoroutineState::Once => "once",
            CoroutineState::Join => "join",
            CoroutineState::Park => "park",
            CoroutineState::Blocking => "blocking",
        }
    }
}

impl fmt::Display for CoroutineState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The object-specific part of a wait. Raw pointers are read only under
/// SCANNING (module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Detail {
    None,
    /// A channel operation: capacity (`usize::MAX`: unbounded) and buffered
    /// values when the coroutine parked. A parked receiver finds the buffer empty
    /// and a parked sender finds it full for as long as they stay parked,
    /// so the snapshot stays true.
    Chan {
        cap: usize,
        len: usize,
    },
    /// A lock and the id of its last (exclusive) taker, 0 for a thread.
    Holder(*const AtomicU64),
    /// A read-write lock: its state word, the id of its last writer, and
    /// whether this waiter wants to write.
    RwLock {
        word: *const RwWord,
        writer: *const AtomicU64,
        write: bool,
    },
    /// The coroutine being joined.
    Join(CoroutineId),
    /// A descriptor, the direction, and its two deadline words (nanoseconds
    /// since `epoch`; 0 none, negative expired).
    Io {
        fd: i32,
        write: bool,
        /// False while queued behind another op in the same direction.
        polling: bool,
        deadlines: [*const AtomicI64; 2],
        epoch: *const Instant,
    },
    /// A counter to show (a waitgroup's count).
    Count(*const AtomicUsize),
    /// A semaphore word: its permits available.
    Permits(*const SemaWord),
    /// Number of arms of a select.
    Arms(usize),
}

/// A wait, as [`park_commit`](crate::coroutine::park_commit) records it: the
/// task points at it (it stays in the parked frame; one pointer store per
/// park). The lifetime is that of the borrows behind the detail's
/// pointers: they must outlive the park, which `park_commit` taking a
/// `&Wait<'_>` guarantees.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wait<'a> {
    pub(crate) state: CoroutineState,
    /// Address of the object waited on (its identity in the dump), 0 none.
    pub(crate) object: usize,
    /// When the wait gives up on its own, if it does.
    pub(crate) until: Option<Instant>,
    pub(crate) detail: Detail,
    borrow: PhantomData<&'a ()>,
}

/// A wait with its borrow erased, as the task's pointer sees it: followed
/// only under SCANNING.
pub(crate) type WaitRecord = Wait<'static>;

fn addr<T: ?Sized>(r: &T) -> usize {
    (r as *const T).cast::<()>() as usize
}

impl<'a> Wait<'a> {
    const fn new(state: CoroutineState) -> Wait<'a> {
        Wait {
            state,
            object: 0,
            until: None,
            detail: Detail::None,
            borrow: PhantomData,
        }
    }

    /// A wait with no object (`blocking`, `park`, a sleep).
    pub(crate) fn plain(state: CoroutineState, until: Option<Instant>) -> Wait<'a> {
        Wait {
            until,
            ..Wait::new(state)
        }
    }

    /// A wait on `object`, identified by its address.
    pub(crate) fn on<T: ?Sized>(state: CoroutineState, object: &'a T) -> Wait<'a> {
        Wait {
            object: addr(object),
            ..Wait::new(state)
        }
    }

    /// A wait on a lock whose exclusive holder is recorded in `holder`.
    pub(crate) fn lock<T: ?Sized>(
        state: CoroutineState,
        object: &'a T,
        holder: &'a AtomicU64,
    ) -> Wait<'a> {
        Wait {
            detail: Detail::Holder(holder),
            ..Wait::on(state, object)
        }
    }

    /// A read-write lock wait.
    pub(crate) fn rwlock<T: ?Sized>(
        object: &'a T,
        word: &'a RwWord,
        writer: &'a AtomicU64,
        write: bool,
    ) -> Wait<'a> {
        Wait {
            detail: Detail::RwLock {
                word,
                writer,
                write,
            },
            ..Wait::on(CoroutineState::RwLock, object)
        }
    }

    /// A channel send or receive, giving up at `until`.
    pub(crate) fn chan<T: ?Sized>(
        state: CoroutineState,
        object: &'a T,
        cap: usize,
        len: usize,
        until: Option<Instant>,
    ) -> Wait<'a> {
        Wait {
            state,
            object: addr(object),
            until,
            detail: Detail::Chan { cap, len },
            borrow: PhantomData,
        }
    }

    /// A join of coroutine `id`.
    pub(crate) fn join(id: CoroutineId) -> Wait<'a> {
        Wait {
            detail: Detail::Join(id),
            ..Wait::new(CoroutineState::Join)
        }
    }

    /// A wait for readiness (`polling`) or for the direction's op lock on
    /// descriptor `fd`, with the direction's deadline words.
    pub(crate) fn io<T: ?Sized>(
        object: &'a T,
        fd: i32,
        write: bool,
        polling: bool,
        deadlines: [&'a AtomicI64; 2],
        epoch: &'a Instant,
    ) -> Wait<'a> {
        Wait {
            detail: Detail::Io {
                fd,
                write,
                polling,
                deadlines: [deadlines[0], deadlines[1]],
                epoch,
            },
            ..Wait::on(CoroutineState::IoWait, object)
        }
    }

    /// A wait on `object` showing the counter `count`.
    pub(crate) fn counted<T: ?Sized>(
        state: CoroutineState,
        object: &'a T,
        count: &'a AtomicUsize,
    ) -> Wait<'a> {
        Wait {
            detail: Detail::Count(count),
            ..Wait::on(state, object)
        }
    }

    /// A semaphore wait on `object`, whose permits are counted in `word`.
    pub(crate) fn permits<T: ?Sized>(object: &'a T, word: &'a SemaWord) -> Wait<'a> {
        Wait {
            detail: Detail::Permits(word),
            ..Wait::on(CoroutineState::Semaphore, object)
        }
    }

    /// The same wait, giving up at `until`.
    pub(crate) fn until(self, until: Option<Instant>) -> Wait<'a> {
        Wait { until, ..self }
    }

    /// A select over `arms` arms.
    pub(crate) fn select(arms: usize) -> Wait<'a> {
        Wait {
            detail: Detail::Arms(arms),
            ..Wait::new(CoroutineState::Select)
        }
    }
}

/// What the dump shows of a wait's object: plain values copied under
/// SCANNING.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Snapshot {
    pub(crate) object: usize,
    pub(crate) until: Option<Instant>,
    pub(crate) chan: Option<(Option<usize>, usize)>,
    /// The holder of the lock waited for: `Some(0)` a thread (or unknown).
    pub(crate) holder: Option<u64>,
    pub(crate) rw: Option<RwSnapshot>,
    pub(crate) joining: Option<CoroutineId>,
    pub(crate) io: Option<IoSnapshot>,
    pub(crate) count: Option<usize>,
    pub(crate) arms: Option<usize>,
}

/// A read-write lock wait: the direction wanted, and who holds the lock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RwSnapshot {
    pub(crate) write: bool,
    /// Write-locked: by this coroutine id (0: a thread).
    pub(crate) writer: Option<u64>,
    pub(crate) readers: usize,
}

/// An IO wait's descriptor, direction and deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IoSnapshot {
    pub(crate) fd: i32,
    pub(crate) write: bool,
    pub(crate) polling: bool,
    /// The earliest pending deadline; `Some(None)`: expired.
    pub(crate) deadline: Option<Option<Instant>>,
}

impl WaitRecord {
    /// Copies what the dump shows.
    ///
    /// # Safety
    /// The caller holds the task SCANNING (module docs): every pointer in
    /// the detail is valid.
    pub(crate) unsafe fn snapshot(&self) -> Snapshot {
        /// Reads through a record pointer.
        ///
        /// # Safety
        /// As for `snapshot`: the pointer came from a borrow that the parked
        /// coroutine holds for the whole park, and it is held parked.
        unsafe fn get<'x, T>(p: *const T) -> &'x T {
            // SAFETY: the function's contract.
            unsafe { &*p }
        }
        let mut s = Snapshot {
            object: self.object,
            until: self.until,
            ..Snapshot::default()
        };
        match self.detail {
            Detail::None => {}
            Detail::Chan { cap, len } => {
                s.chan = Some(((cap != usize::MAX).then_some(cap), len));
            }
            Detail::Holder(h) => {
                // SAFETY: the caller holds the task SCANNING (our contract).
                let h = unsafe { get(h) };
                s.holder = Some(h.load(Ordering::Relaxed));
            }
            Detail::RwLock {
                word,
                writer,
                write,
            } => {
                // SAFETY: as above.
                let (word, writer) = unsafe { (get(word), get(writer)) };
                s.rw = Some(RwSnapshot {
                    write,
                    writer: word
                        .is_write_locked()
                        .then(|| writer.load(Ordering::Relaxed)),
                    readers: word.readers(),
                });
            }
            Detail::Join(id) => s.joining = Some(id),
            Detail::Io {
                fd,
                write,
                polling,
                deadlines,
                epoch,
            } => {
                let mut next: Option<i64> = None;
                let mut expired = false;
                for d in deadlines {
                    // SAFETY: as above.
                    let v = unsafe { get(d) }.load(Ordering::Relaxed);
                    if v < 0 {
                        expired = true;
                    } else if v > 0 {
                        next = Some(next.map_or(v, |n| n.min(v)));
                    }
                }
                // SAFETY: as above.
                let epoch = *unsafe { get(epoch) };
                // An expired deadline is waking the op with a timeout.
                let deadline = match (expired, next) {
                    (true, _) => Some(None),
                    (false, Some(n)) => Some(epoch.checked_add(Duration::from_nanos(n as u64))),
                    (false, None) => None,
                };
                s.io = Some(IoSnapshot {
                    fd,
                    write,
                    polling,
                    deadline,
                });
            }
            Detail::Count(c) => {
                // SAFETY: as above.
                s.count = Some(unsafe { get(c) }.load(Ordering::Relaxed));
            }
            Detail::Permits(w) => {
                // SAFETY: as above.
                s.count = Some(unsafe { get(w) }.permits());
            }
            Detail::Arms(n) => s.arms = Some(n),
        }
        s
    }
}
