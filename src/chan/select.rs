//! `select!`: wait on several channel operations, complete exactly one.
//!
//! Go's `selectgo`, with crossbeam-channel's registration instead of Go's
//! lock-every-channel step:
//!
//! 1. **Poll.** Visit the arms in a fresh uniformly random order; the first
//!    that can complete without waiting does so (one channel lock at a
//!    time). If several are ready, each is equally likely to be first.
//! 2. **Default.** With `default`, return it now; with `default(timeout)`,
//!    return it if the deadline has passed.
//! 3. **Register.** Park with a commit (after the switch, docs/SAFETY.md
//!    section 2) that links one node per arm into its channel's queue, one
//!    channel lock at a time. If an arm turns out to be ready while
//!    registering (something arrived after step 1), the selector claims its
//!    own waiter with `ABORTED` and resumes at once, unregisters, and starts
//!    over at step 1.
//! 4. **Wake.** The first waker (or the deadline) to claim the waiter wins;
//!    the value moved into or out of that arm's node by the waker. Every
//!    other node is stale: wakers that find one lose the claim and skip it,
//!    so nothing is consumed by a losing arm. The selector unlinks them.
//!
//! Go locks all channels of a select at once (sorted by address), which
//! makes the registration atomic but needs raw lock/unlock and de-duplicated
//! locks; the abort-and-retry of step 3 gives the same guarantees with one
//! lock at a time, and a select over the same channel twice needs no special
//! case. A select that sends and receives on one channel never pairs with
//! itself: the readiness check skips its own nodes, and step 1 runs while
//! none of its nodes are linked.

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use super::channel::{Receiver, Sender};
use super::error::{RecvError, SendError, TryRecvError, TrySendError};
use crate::sm::waitq::{ABORTED, TIMED_OUT};
use crate::sync::waiter::{lock, Node, OnDrop, Parker, Waiter};
use crate::wait::Wait;

/// A select arm: the [`select!`](crate::select) macro turns `&RecvArm` and
/// `&SendArm` into `&dyn Arm`. Implementation detail of the macro.
///
/// The trait is sealed: its supertrait lives in a private module, so no
/// type outside this crate can implement it, and the methods a select drives
/// (`try_now`, `register`, `unregister`, `complete`) take a [`SelectCtx`]
/// that only [`select`] creates and whose type cannot be named outside the
/// crate. Safe code elsewhere can only build arms and hand them to
/// [`select`], which keeps the registration protocol to itself.
#[doc(hidden)]
pub trait Arm: sealed::ArmImpl {}

impl<T> Arm for RecvArm<'_, T> {}
impl<T> Arm for SendArm<'_, T> {}

mod sealed {
    use super::SelectCtx;

    /// What the select needs from an arm. Not nameable outside the crate:
    /// the seal of [`Arm`](super::Arm).
    ///
    /// Every method gets the select's [`SelectCtx`]; only
    /// [`select`](super::select) creates one, and it lives on that call's
    /// stack, so a node is registered only while the `select` that will
    /// unregister it is running.
    pub trait ArmImpl {
        /// Step 1: completes the operation if it can without waiting.
        fn try_now(&self, cx: &SelectCtx<'_>) -> bool;
        /// Step 3: links the arm's node; false (nothing linked) if the arm
        /// is ready. An arm that is already linked (the same arm passed to
        /// `select` twice) stays linked once and reports true.
        fn register(&self, cx: &SelectCtx<'_>, token: usize) -> bool;
        /// Unlinks the node if it is linked.
        fn unregister(&self, cx: &SelectCtx<'_>);
        /// Step 4: a waker claimed this arm; take the outcome out of the
        /// node.
        fn complete(&self, cx: &SelectCtx<'_>);
    }
}

/// The selecting party, handed to arms. Only [`select`] creates one; its
/// type is not exported, so code outside this crate can neither build nor
/// name it.
pub struct SelectCtx<'a> {
    waiter: Option<&'a Waiter>,
}

impl fmt::Debug for SelectCtx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SelectCtx")
    }
}

impl SelectCtx<'_> {
    fn waiter(&self) -> &Waiter {
        self.waiter
            .expect("gopark: select arm registered outside a blocking select")
    }
}

/// When a select gives up. Implementation detail of [`select!`](crate::select).
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Timeout {
    /// No `default` arm: wait for ever.
    Never,
    /// `default`: do not wait.
    Now,
    /// `default(timeout)`: wait until this instant (`None`: overflowed).
    At(Option<Instant>),
}

impl Timeout {
    /// `default(d)`.
    pub fn after(d: Duration) -> Timeout {
        Timeout::At(Instant::now().checked_add(d))
    }
}

/// A `recv(rx) -> res` arm. Implementation detail of [`select!`](crate::select).
#[doc(hidden)]
pub struct RecvArm<'a, T> {
    rx: &'a Receiver<T>,
    node: Node<T>,
    registered: Cell<bool>,
    result: Cell<Option<Result<T, RecvError>>>,
}

impl<'a, T> RecvArm<'a, T> {
    /// An arm receiving from `rx`.
    pub fn new(rx: &'a Receiver<T>) -> Self {
        RecvArm {
            rx,
            node: Node::new(None),
            registered: Cell::new(false),
            result: Cell::new(None),
        }
    }

    /// The outcome, once this arm was selected.
    pub fn into_result(self) -> Result<T, RecvError> {
        self.result
            .take()
            .expect("gopark: select arm taken without being selected")
    }
}

impl<T> sealed::ArmImpl for RecvArm<'_, T> {
    fn try_now(&self, _: &SelectCtx<'_>) -> bool {
        let chan = self.rx.chan();
        let mut st = lock(&chan.state);
        match chan.try_recv_locked(&mut st) {
            Ok((v, wake)) => {
                drop(st);
                if let Some(w) = wake {
                    w.wake();
                }
                self.result.set(Some(Ok(v)));
                true
            }
            Err(TryRecvError::Disconnected) => {
                self.result.set(Some(Err(RecvError)));
                true
            }
            Err(TryRecvError::Empty) => false,
        }
    }

    fn register(&self, cx: &SelectCtx<'_>, token: usize) -> bool {
        if self.registered.get() {
            // Passed to `select` twice: the node is linked already, and
            // linking it again would corrupt the queue.
            return true;
        }
        let chan = self.rx.chan();
        let me = cx.waiter();
        let mut st = lock(&chan.state);
        if chan.recv_ready(&st, me) {
            return false;
        }
        self.node.prepare(me, token);
        // SAFETY: the arm outlives the select call (it is borrowed by it)
        // and is not moved meanwhile; `select` unregisters every arm before
        // it returns or unwinds (its `OnDrop`).
        unsafe { st.recvq.push_back(&self.node) };
        self.registered.set(true);
        true
    }

    fn unregister(&self, _: &SelectCtx<'_>) {
        if self.registered.replace(false) {
            // SAFETY: the node was only ever linked in this channel's recvq.
            unsafe { lock(&self.rx.chan().state).recvq.remove(&self.node) };
        }
    }

    fn complete(&self, _: &SelectCtx<'_>) {
        // The claiming waker unlinked the node.
        self.registered.set(false);
        // SAFETY: we were woken for this node: its slot is ours.
        let r = match unsafe { self.node.take_value() } {
            Some(v) => Ok(v),
            None => Err(RecvError),
        };
        self.result.set(Some(r));
    }
}

/// A `send(tx, value) -> res` arm. Implementation detail of
/// [`select!`](crate::select).
#[doc(hidden)]
pub struct SendArm<'a, T> {
    tx: &'a Sender<T>,
    value: Cell<Option<T>>,
    node: Node<T>,
    registered: Cell<bool>,
    result: Cell<Option<Result<(), SendError<T>>>>,
}

impl<'a, T> SendArm<'a, T> {
    /// An arm sending `value` on `tx`.
    pub fn new(tx: &'a Sender<T>, value: T) -> Self {
        SendArm {
            tx,
            value: Cell::new(Some(value)),
            node: Node::new(None),
            registered: Cell::new(false),
            result: Cell::new(None),
        }
    }

    /// The outcome, once this arm was selected.
    pub fn into_result(self) -> Result<(), SendError<T>> {
        self.result
            .take()
            .expect("gopark: select arm taken without being selected")
    }
}

impl<T> sealed::ArmImpl for SendArm<'_, T> {
    fn try_now(&self, _: &SelectCtx<'_>) -> bool {
        let chan = self.tx.chan();
        let v = self.value.take().expect("send arm without its value");
        let mut st = lock(&chan.state);
        match chan.try_send_locked(&mut st, v) {
            Ok(wake) => {
                drop(st);
                if let Some(w) = wake {
                    w.wake();
                }
                self.result.set(Some(Ok(())));
                true
            }
            Err(TrySendError::Disconnected(v)) => {
                self.result.set(Some(Err(SendError(v))));
                true
            }
            Err(TrySendError::Full(v)) => {
                self.value.set(Some(v));
                false
            }
        }
    }

    fn register(&self, cx: &SelectCtx<'_>, token: usize) -> bool {
        if self.registered.get() {
            // As in `RecvArm::register`.
            return true;
        }
        let chan = self.tx.chan();
        let me = cx.waiter();
        let mut st = lock(&chan.state);
        if chan.send_ready(&st, me) {
            return false;
        }
        self.node.prepare(me, token);
        let v = self.value.take().expect("send arm without its value");
        // SAFETY: the node is not linked: its slot is ours.
        unsafe { self.node.put_value(v) };
        // SAFETY: as in `RecvArm::register`.
        unsafe { st.sendq.push_back(&self.node) };
        self.registered.set(true);
        true
    }

    fn unregister(&self, _: &SelectCtx<'_>) {
        if self.registered.replace(false) {
            let mut st = lock(&self.tx.chan().state);
            // SAFETY: the node was only ever linked in this channel's sendq.
            unsafe { st.sendq.remove(&self.node) };
            // This arm did not win, so no waker claimed the node: its value
            // is still there and, now unlinked, ours again.
            // SAFETY: unlinked and unclaimed.
            self.value.set(unsafe { self.node.take_value() });
        }
    }

    fn complete(&self, _: &SelectCtx<'_>) {
        self.registered.set(false);
        let r = if self.node.was_closed() {
            // SAFETY: woken for this node: its slot is ours.
            let v = unsafe { self.node.take_value() }.expect("closed send lost its value");
            Err(SendError(v))
        } else {
            Ok(())
        };
        self.result.set(Some(r));
    }
}

impl<T> fmt::Debug for RecvArm<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvArm").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for SendArm<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendArm").finish_non_exhaustive()
    }
}

/// A small per-thread xorshift generator for the poll order.
fn rand_below(n: usize) -> usize {
    use std::cell::Cell;
    thread_local! {
        static RNG: Cell<u64> = Cell::new({
            let a = &RNG as *const _ as u64;
            let t = Instant::now().elapsed().as_nanos() as u64;
            (a ^ t.rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15) | 1
        });
    }
    let x = RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    });
    // Lemire's multiply-shift: uniform enough for n this small.
    (((x >> 32) * n as u64) >> 32) as usize
}

/// Runs a select over `arms`; returns the index of the completed arm, or
/// `arms.len()` for the default (or timeout) branch. Implementation detail
/// of [`select!`](crate::select).
#[doc(hidden)]
pub fn select(arms: &[&dyn Arm], timeout: Timeout) -> usize {
    if !matches!(timeout, Timeout::Now) {
        crate::runtime::worker::coop_tick();
    }
    let n = arms.len();
    let mut small = [0u32; 16];
    let mut big = Vec::new();
    let order: &mut [u32] = if n <= small.len() {
        &mut small[..n]
    } else {
        big.extend(0..n as u32);
        &mut big
    };
    let deadline = match timeout {
        Timeout::At(d) => d,
        _ => None,
    };
    let poll_cx = SelectCtx { waiter: None };
    loop {
        // Step 1: a uniformly random poll order (Fisher-Yates).
        for (i, o) in order.iter_mut().enumerate() {
            *o = i as u32;
        }
        for i in (1..n).rev() {
            order.swap(i, rand_below(i + 1));
        }
        for &i in order.iter() {
            if arms[i as usize].try_now(&poll_cx) {
                return i as usize;
            }
        }
        // Step 2.
        match timeout {
            Timeout::Now => return n,
            Timeout::At(Some(d)) if d <= Instant::now() => return n,
            _ => {}
        }
        // Step 3.
        let parker = Parker::new(deadline);
        let cx = SelectCtx {
            waiter: Some(parker.waiter()),
        };
        let cleanup = OnDrop::new(|| {
            for a in arms {
                a.unregister(&cx);
            }
        });
        let state = parker.park_registering(
            || {
                for &i in order.iter() {
                    if !arms[i as usize].register(&cx, i as usize + 1) {
                        // Ready after all: abort, unless a waker already won.
                        return !parker.claim_self(ABORTED);
                    }
                }
                true
            },
            Wait::select(n).until(deadline),
        );
        // Step 4.
        match state {
            TIMED_OUT => {
                drop(cleanup);
                return n;
            }
            ABORTED => drop(cleanup),
            token => {
                let i = token - 1;
                arms[i].complete(&cx);
                drop(cleanup);
                return i;
            }
        }
    }
}

/// Waits on several channel operations and runs the branch of the one that
/// completes (Go's `select`), with crossbeam-channel's syntax:
///
/// ```text
/// select! {
///     recv(rx) -> msg => body,           // msg: Result<T, RecvError>
///     send(tx, value) -> res => body,    // res: Result<(), SendError<T>>
///     default => body,                   // optional: do not wait, or
///     default(timeout) => body,          // wait at most `timeout`
/// }
/// ```
///
/// If several operations are ready, one is chosen uniformly at random.
/// Otherwise the caller parks (a coroutine) or blocks (a thread) on all of
/// them; the first to become ready completes and the others are cancelled
/// without consuming or losing anything. Channel and value expressions are
/// evaluated once, in order, before anything else; a `send` arm that is not
/// chosen drops its value. A closed channel makes its arm ready (with an
/// error). `select! {}` waits for ever.
///
/// ```
/// use std::time::Duration;
/// use gopark::select;
///
/// let (tx1, rx1) = gopark::chan::bounded::<i32>(0);
/// let (tx2, rx2) = gopark::chan::bounded::<&str>(0);
/// gopark::go!(move || tx2.send("two").unwrap());
/// let got = select! {
///     recv(rx1) -> v => format!("rx1 {:?}", v),
///     recv(rx2) -> v => format!("rx2 {}", v.unwrap()),
///     default(Duration::from_secs(5)) => "timeout".to_string(),
/// };
/// assert_eq!(got, "rx2 two");
/// # drop(tx1);
///
/// let (tx, rx) = gopark::chan::bounded(1);
/// select! {
///     send(tx, 7) -> res => res.unwrap(),
///     default => unreachable!("there is room"),
/// }
/// assert_eq!(rx.recv(), Ok(7));
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select!(@parse [] [] $($tokens)*)
    };
}

/// Implementation detail of [`select!`]: its parsing and code generation
/// rules, kept out of its documentation. Not a public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __select {
    // ---- parsing: collect arms as (kind (args) (pat) {body}) ----
    (@parse [$($arms:tt)*] [$($def:tt)*]) => {
        $crate::__select!(@gen [] [$($arms)*] [$($def)*])
    };
    (@parse $arms:tt $def:tt recv($r:expr) -> $res:pat => $($rest:tt)*) => {
        $crate::__select!(@body $arms $def (recv ($r) ($res)) $($rest)*)
    };
    (@parse $arms:tt $def:tt send($s:expr, $v:expr) -> $res:pat => $($rest:tt)*) => {
        $crate::__select!(@body $arms $def (send ($s, $v) ($res)) $($rest)*)
    };
    (@parse $arms:tt [] default => $($rest:tt)*) => {
        $crate::__select!(@body $arms [] (default ($crate::chan::__private::Timeout::Now)) $($rest)*)
    };
    (@parse $arms:tt [] default($t:expr) => $($rest:tt)*) => {
        $crate::__select!(@body $arms []
            (default ($crate::chan::__private::Timeout::after($t))) $($rest)*)
    };
    (@parse $arms:tt [$($def:tt)+] default $($rest:tt)*) => {
        ::core::compile_error!("select! accepts at most one `default` arm")
    };
    (@parse $arms:tt $def:tt $($rest:tt)+) => {
        ::core::compile_error!(
            "select! expects `recv(rx) -> pat => body`, `send(tx, value) -> pat => body`, \
             `default => body` or `default(timeout) => body`"
        )
    };
    // A body: a block (comma optional) or an expression (comma unless last).
    (@body $arms:tt $def:tt $head:tt $body:block, $($rest:tt)*) => {
        $crate::__select!(@push $arms $def $head $body $($rest)*)
    };
    (@body $arms:tt $def:tt $head:tt $body:block $($rest:tt)*) => {
        $crate::__select!(@push $arms $def $head $body $($rest)*)
    };
    (@body $arms:tt $def:tt $head:tt $body:expr, $($rest:tt)*) => {
        $crate::__select!(@push $arms $def $head { $body } $($rest)*)
    };
    (@body $arms:tt $def:tt $head:tt $body:expr) => {
        $crate::__select!(@push $arms $def $head { $body })
    };
    (@push $arms:tt [] (default ($mode:expr)) $body:block $($rest:tt)*) => {
        $crate::__select!(@parse $arms [($mode) $body] $($rest)*)
    };
    (@push [$($arms:tt)*] $def:tt ($kind:ident $args:tt $res:tt) $body:block $($rest:tt)*) => {
        $crate::__select!(@parse [$($arms)* ($kind $args $res $body)] $def $($rest)*)
    };

    // ---- code generation: one `let` per arm, each in its own hygiene ----
    (@gen [$($done:tt)*] [(recv ($r:expr) ($res:pat) $body:block) $($todo:tt)*] $def:tt) => {
        // `match` keeps temporaries in `$r` alive for the whole select.
        match &$r {
            __r => {
                let __arm = $crate::chan::__private::RecvArm::new(__r);
                $crate::__select!(@gen [$($done)* (__arm ($res) $body)] [$($todo)*] $def)
            }
        }
    };
    (@gen [$($done:tt)*] [(send ($s:expr, $v:expr) ($res:pat) $body:block) $($todo:tt)*] $def:tt) => {
        match (&$s, $v) {
            (__s, __v) => {
                let __arm = $crate::chan::__private::SendArm::new(__s, __v);
                $crate::__select!(@gen [$($done)* (__arm ($res) $body)] [$($todo)*] $def)
            }
        }
    };
    (@gen [$(($arm:ident ($res:pat) $body:block))*] [] [$(($mode:expr) $dbody:block)?]) => {{
        let __mode = $crate::__select!(@mode $($mode)?);
        let __index = $crate::chan::__private::select(
            &[$(&$arm as &dyn $crate::chan::__private::Arm),*],
            __mode,
        );
        $crate::__select!(@dispatch __index (0) [$(($arm ($res) $body))*] [$($dbody)?])
    }};
    (@mode) => { $crate::chan::__private::Timeout::Never };
    (@mode $mode:expr) => { $mode };

    (@dispatch $i:ident ($n:expr) [($arm:ident ($res:pat) $body:block) $($rest:tt)*] $def:tt) => {
        if $i == $n {
            let $res = $arm.into_result();
            $body
        } else {
            $crate::__select!(@dispatch $i ($n + 1) [$($rest)*] $def)
        }
    };
    (@dispatch $i:ident ($n:expr) [] [$dbody:block]) => { $dbody };
    (@dispatch $i:ident ($n:expr) [] []) => {
        ::core::unreachable!("gopark: select without default returned no arm")
    };
}
