//! The closure of a coroutine spawned onto a cold stack, kept in its task
//! record until its first run builds the coroutine (see [`Unstarted`]).
//!
//! Kept in the record rather than in a box of its own: the spawning worker
//! would allocate the box and the worker that starts the coroutine (on two
//! workers, usually the other one) would free it, and glibc returns a block
//! freed by another thread to the allocating thread's arena under that
//! arena's lock, which the spawning thread takes to allocate the next one.
//! Task records are reused (`spare`), so the room costs no allocation.

use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop, MaybeUninit};
use std::ptr;

use super::Co;

/// Bytes of room for the pending start in the task record; larger (or more
/// aligned) ones are boxed, and the box is kept there instead.
pub(crate) const ROOM: usize = 64;

/// Alignment of the room (the largest a pending start may have to be kept
/// in it).
const ROOM_ALIGN: usize = 16;

#[repr(C, align(16))]
struct Room(MaybeUninit<[u8; ROOM]>);

/// What building a coroutine at its first run takes: the spawned closure,
/// the reserved stack and the task pointer, each kept by the implementor.
pub(crate) trait Start {
    /// Binds a stack and builds the coroutine on it, returning it with the
    /// stack's limit, or the error of binding the stack.
    fn start(self) -> std::io::Result<(Co, usize)>;
}

impl<S: Start> Start for Box<S> {
    fn start(self) -> std::io::Result<(Co, usize)> {
        (*self).start()
    }
}

/// A coroutine spawned on a cold stack (`stack::reserve`), not built yet:
/// writing its first frame would touch the stack. [`Unstarted::start`] runs
/// at its first run, on its home worker; a coroutine that never starts
/// (a runtime shut down first) drops it, and with it the closure and the
/// reserved stack. Not `Send` as a type (what it holds need not be), but it
/// moves between threads only as an unstarted task does (see the `Send`
/// impl of `Task`).
pub(crate) struct Unstarted {
    /// Moves the value out of `room` and starts it.
    // SAFETY (of every call): only `Unstarted::start` calls it, once, on the
    // room `new` filled with a value of the type it was made for.
    start: unsafe fn(*mut u8) -> std::io::Result<(Co, usize)>,
    /// Drops the value in `room` in place.
    // SAFETY (of every call): only `Drop::drop` calls it, once, and only
    // while the room still holds the value (`start` forgets the `Unstarted`).
    discard: unsafe fn(*mut u8),
    /// A value of the type `start` and `discard` were made for: the pending
    /// start itself, or a box of it when it does not fit.
    room: Room,
    _not_send: PhantomData<*mut ()>,
}

/// Moves the `S` out of `p` and starts it.
///
/// # Safety
/// `p` points to a valid, suitably aligned `S` that nobody uses afterwards.
// SAFETY (contract): upheld by its only caller, `Unstarted::start`.
unsafe fn start_in_place<S: Start>(p: *mut u8) -> std::io::Result<(Co, usize)> {
    // SAFETY: the caller's contract: a valid `S` at `p`, read once.
    unsafe { ptr::read(p.cast::<S>()) }.start()
}

/// Drops the `S` at `p` in place.
///
/// # Safety
/// As for [`start_in_place`].
// SAFETY (contract): upheld by its only caller, `Unstarted`'s drop.
unsafe fn discard_in_place<S>(p: *mut u8) {
    // SAFETY: the caller's contract: a valid `S` at `p`, dropped once.
    unsafe { ptr::drop_in_place(p.cast::<S>()) }
}

impl Unstarted {
    /// Keeps `s` in the room when it fits (size and alignment), else a box
    /// of it.
    pub(crate) fn new<S: Start>(s: S) -> Unstarted {
        if fits::<S>() {
            Unstarted::in_room(s)
        } else {
            Unstarted::in_room(Box::new(s))
        }
    }

    fn in_room<S: Start>(s: S) -> Unstarted {
        assert!(fits::<S>());
        let mut room = Room(MaybeUninit::uninit());
        // SAFETY: the room is `ROOM` bytes aligned to `ROOM_ALIGN`, and `S`
        // is no larger and no more aligned (asserted above, a constant per
        // `S`); the room is uninitialised, so nothing is overwritten. From
        // here the room owns the `S`: exactly one of `start` (which moves it
        // out) and `drop` (which drops it) uses it, once.
        unsafe { ptr::write(room.0.as_mut_ptr().cast::<S>(), s) };
        Unstarted {
            start: start_in_place::<S>,
            discard: discard_in_place::<S>,
            room,
            _not_send: PhantomData,
        }
    }

    /// Whether a pending start of type `S` is kept in the room itself.
    #[cfg(test)]
    pub(crate) fn kept_inline<S>() -> bool {
        fits::<S>()
    }

    /// Builds the coroutine (see [`Start::start`]).
    pub(crate) fn start(self) -> std::io::Result<(Co, usize)> {
        // The value moves out in `start`: no `drop` of it afterwards, even
        // if starting it panics (it is then dropped where it was moved to).
        let mut this = ManuallyDrop::new(self);
        let p = this.room.0.as_mut_ptr().cast::<u8>();
        // SAFETY: `new` wrote a value of the type `start` was made for at
        // `p`, and this is its only use (`this` is never dropped).
        unsafe { (this.start)(p) }
    }
}

impl Drop for Unstarted {
    fn drop(&mut self) {
        let p = self.room.0.as_mut_ptr().cast::<u8>();
        // SAFETY: `new` wrote a value of the type `discard` was made for at
        // `p`; `start` consumes the `Unstarted` without this drop, so the
        // value is still there and is dropped once.
        unsafe { (self.discard)(p) }
    }
}

/// Whether a value of type `S` fits the room.
const fn fits<S>() -> bool {
    mem::size_of::<S>() <= ROOM && mem::align_of::<S>() <= ROOM_ALIGN
}

const _: () = assert!(mem::align_of::<Room>() == ROOM_ALIGN);
const _: () = assert!(fits::<Box<[u8; 1024]>>());

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    use crate::test_common as common;

    /// Runs test `name` (in this module) alone in a child process, where a
    /// double drop (a double free of the probe's box: glibc aborts) or a
    /// read of freed memory crashes the child, not the test binary.
    fn in_child_ok(name: &str) {
        common::unit_child_ok(module_path!(), name, std::time::Duration::from_secs(30));
    }

    /// A pending start that records what happened to it, and holds a heap
    /// value so that a double drop would be a double free.
    struct Probe<const N: usize> {
        started: Rc<Cell<u32>>,
        dropped: Rc<Cell<u32>>,
        heap: Box<u64>,
        pad: [u8; N],
    }

    impl<const N: usize> Drop for Probe<N> {
        fn drop(&mut self) {
            self.dropped.set(self.dropped.get() + 1);
        }
    }

    impl<const N: usize> Start for Probe<N> {
        fn start(self) -> std::io::Result<(Co, usize)> {
            assert_eq!(*self.heap, 7);
            assert!(self.pad.iter().all(|&b| b == 0xa5));
            self.started.set(self.started.get() + 1);
            Err(std::io::Error::other("started"))
        }
    }

    /// An over-aligned pending start: boxed, and still found intact.
    #[repr(align(64))]
    struct Aligned(Probe<0>);

    impl Start for Aligned {
        fn start(self) -> std::io::Result<(Co, usize)> {
            assert_eq!(&self as *const Aligned as usize % 64, 0);
            self.0.start()
        }
    }

    fn probe<const N: usize>() -> (Probe<N>, Rc<Cell<u32>>, Rc<Cell<u32>>) {
        let started = Rc::new(Cell::new(0));
        let dropped = Rc::new(Cell::new(0));
        let p = Probe {
            started: started.clone(),
            dropped: dropped.clone(),
            heap: Box::new(7),
            pad: [0xa5; N],
        };
        (p, started, dropped)
    }

    /// Started: the value moves out intact and is dropped once, by its
    /// start; dropped unstarted: dropped once, never started. In the room
    /// (small), boxed (large), boxed (over-aligned).
    #[test]
    fn a_pending_start_is_started_or_dropped_exactly_once() {
        const NAME: &str = "a_pending_start_is_started_or_dropped_exactly_once";
        if !common::in_child(NAME) {
            return in_child_ok(NAME);
        }
        assert!(Unstarted::kept_inline::<Probe<8>>());
        assert!(!Unstarted::kept_inline::<Probe<200>>());
        assert!(!Unstarted::kept_inline::<Aligned>());
        fn check<S: Start>(s: S, started: &Rc<Cell<u32>>, dropped: &Rc<Cell<u32>>, run: bool) {
            let u = Unstarted::new(s);
            assert_eq!((started.get(), dropped.get()), (0, 0));
            if run {
                let e = u.start().err().expect("the probe's start fails");
                assert_eq!(e.to_string(), "started");
                assert_eq!((started.get(), dropped.get()), (1, 1));
            } else {
                drop(u);
                assert_eq!((started.get(), dropped.get()), (0, 1));
            }
        }
        for run in [true, false] {
            let (p, s, d) = probe::<8>();
            check(p, &s, &d, run);
            let (p, s, d) = probe::<200>();
            check(p, &s, &d, run);
            let (p, s, d) = probe::<0>();
            check(Aligned(p), &s, &d, run);
        }
        println!("child ok");
    }

    /// A start that panics has moved the value out: it is dropped once, by
    /// the unwinding start, and not again by the `Unstarted`.
    #[test]
    fn a_panicking_start_drops_the_value_once() {
        const NAME: &str = "a_panicking_start_drops_the_value_once";
        if !common::in_child(NAME) {
            return in_child_ok(NAME);
        }
        struct Panics(Probe<8>);
        impl Start for Panics {
            fn start(self) -> std::io::Result<(Co, usize)> {
                // Held while the panic unwinds, and dropped by it.
                let _held = self.0;
                panic!("start fails");
            }
        }
        let (p, s, d) = probe::<8>();
        let u = Unstarted::new(Panics(p));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| u.start()));
        assert!(r.is_err());
        assert_eq!((s.get(), d.get()), (0, 1));
        println!("child ok");
    }
}
