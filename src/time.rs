//! Go's `time` package for coroutines: [`sleep`] and [`sleep_until`], and
//! the timer channels [`after`], [`tick`], [`Timer`], [`Ticker`] and
//! [`after_func`].
//!
//! In a coroutine the sleeps park the coroutine (its worker runs others) on
//! the worker's timer heap; on a plain thread they are `std::thread::sleep`.
//! Timer channels are ordinary [`chan::Receiver`]s, usable in
//! [`select!`](crate::select) and from plain threads, with Go 1.23's
//! guarantees: no stale value after `stop` or `reset`, and a dropped
//! `Timer` or `Ticker` costs nothing.
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! // Ten coroutines sleep 100 ms each on a single worker: they sleep
//! // concurrently (the worker runs others meanwhile), not one after another.
//! let rt = gopark::Runtime::builder().workers(1).build().unwrap();
//! let t = Instant::now();
//! rt.run(|| {
//!     let hs: Vec<_> = (0..10)
//!         .map(|_| gopark::go!(|| gopark::time::sleep(Duration::from_millis(100))))
//!         .collect();
//!     for h in hs {
//!         h.join().unwrap();
//!     }
//! });
//! let took = t.elapsed();
//! assert!(took >= Duration::from_millis(100));
//! // One after another would take at least a second.
//! assert!(took < Duration::from_millis(900), "slept one after another: {took:?}");
//! ```

use std::time::{Duration, Instant};

use crate::coroutine::park_commit_owned;
use crate::runtime::timer::Action;
use crate::runtime::worker;
use crate::wait::Wait;

/// Puts the current coroutine to sleep for at least `dur`.
///
/// ```
/// use std::time::{Duration, Instant};
/// gopark::run(|| {
///     let t = Instant::now();
///     gopark::time::sleep(Duration::from_millis(10));
///     assert!(t.elapsed() >= Duration::from_millis(10));
/// });
/// ```
pub fn sleep(dur: Duration) {
    if dur.is_zero() {
        return;
    }
    sleep_until(Instant::now() + dur);
}

/// Puts the current coroutine to sleep until `deadline` (returns at once if
/// it has passed).
///
/// ```
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_millis(5);
/// gopark::run(move || gopark::time::sleep_until(deadline));
/// assert!(Instant::now() >= deadline);
/// ```
pub fn sleep_until(deadline: Instant) {
    let Some(ctx) = worker::current_ctx() else {
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        return;
    };
    if deadline <= Instant::now() {
        return;
    }
    // Go's resetForSleep: the timer is armed by the commit, after the switch,
    // so it cannot fire before the coroutine has parked.
    // The timer is the only waker. A resume without it (spurious, see
    // `Task::stale_wakes`) happens only during runtime shutdown, when every
    // timer is due anyway: the sleep then ends early.
    let wait = Wait::plain(crate::CoroutineState::Sleep, Some(deadline));
    park_commit_owned(ctx, &wait, move |task, ctx| {
        // The worker's reference moves into the timer.
        ctx.add_timer(deadline, Action::Ready(task));
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// Timer channels: Go's time.After, time.Tick, Timer, Ticker, AfterFunc.
// ---------------------------------------------------------------------------

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex as StdMutex, Weak};

use crate::chan::{self, Receiver, Sender, TrySendError};
use crate::runtime::timer::Handle;
use crate::runtime::{self, Shared};

/// What a timer does when it fires.
enum Kind {
    /// Sends the time on a channel of capacity 1 (Timer, Ticker).
    Chan {
        tx: Sender<Instant>,
        rx: Receiver<Instant>,
    },
    /// Runs a function in a new coroutine (`after_func`), which the dump
    /// shows as spawned where `after_func` was called.
    Func(
        Arc<dyn Fn() + Send + Sync>,
        &'static std::panic::Location<'static>,
    ),
}

/// The mutable part of a timer, behind its lock.
struct TimerState {
    /// Bumped by every `stop` and `reset`: an action armed for an older
    /// generation does nothing when it fires.
    gen: u64,
    /// The armed heap entry, and the runtime whose heap holds it.
    armed: Option<(Arc<Shared>, Handle)>,
    /// A ticker's period.
    period: Option<Duration>,
}

/// A timer shared by its handle and (weakly) by its heap entry.
struct Core {
    state: StdMutex<TimerState>,
    kind: Kind,
}

fn lock_state(core: &Core) -> std::sync::MutexGuard<'_, TimerState> {
    core.state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Core {
    /// A timer core armed to fire after `d` on the caller's runtime.
    fn started(kind: Kind, period: Option<Duration>, d: Duration) -> Arc<Core> {
        let core = Arc::new(Core {
            state: StdMutex::new(TimerState {
                gen: 0,
                armed: None,
                period,
            }),
            kind,
        });
        {
            let mut st = lock_state(&core);
            core.arm(&mut st, deadline_after(d), runtime::current_shared());
        }
        core
    }

    /// A core that sends on a channel of one (a `Timer` or a `Ticker`).
    fn started_chan(period: Option<Duration>, d: Duration) -> Arc<Core> {
        let (tx, rx) = chan::bounded(1);
        Core::started(Kind::Chan { tx, rx }, period, d)
    }

    /// The channel values are sent on; never ready for a function timer.
    fn receiver(&self) -> &Receiver<Instant> {
        match &self.kind {
            Kind::Chan { rx, .. } => rx,
            Kind::Func(..) => never_instant(),
        }
    }

    /// [`stop_locked`](Self::stop_locked) under the state lock.
    fn stop(&self) -> bool {
        let mut st = lock_state(self);
        self.stop_locked(&mut st)
    }

    /// Arms the heap entry of generation `st.gen` for `when`, on the
    /// caller's runtime (the default one on a plain thread).
    fn arm(self: &Arc<Core>, st: &mut TimerState, when: Instant, shared: Arc<Shared>) {
        let weak = Arc::downgrade(self);
        let gen = st.gen;
        let action = Action::Call(Box::new(move || fire(weak, gen, when)));
        let h = shared.add_timer(when, action);
        st.armed = Some((shared, h));
    }

    /// Go 1.23's stop: disarms the heap entry and drains the channel, so no
    /// value prepared before the call is received after it. True if the
    /// timer was pending: armed, or fired into a channel nobody had received
    /// from yet.
    fn stop_locked(&self, st: &mut TimerState) -> bool {
        st.gen = st.gen.wrapping_add(1);
        let mut pending = match st.armed.take() {
            Some((shared, h)) => shared.cancel_timer(h),
            None => false,
        };
        if let Kind::Chan { rx, .. } = &self.kind {
            while rx.try_recv().is_ok() {
                pending = true;
            }
        }
        pending
    }

    fn reset(self: &Arc<Core>, d: Duration) -> bool {
        let mut st = lock_state(self);
        let pending = self.stop_locked(&mut st);
        let when = deadline_after(d);
        self.arm(&mut st, when, runtime::current_shared());
        pending
    }
}

/// `Instant::now() + d`, saturating at a time far in the future.
fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// The heap entry's action: delivers generation `gen` of the timer, unless
/// it was stopped or reset meanwhile. Runs on a worker; never runs user
/// code except the drop of an `after_func` closure, which is contained.
fn fire(weak: Weak<Core>, gen: u64, when: Instant) {
    let Some(core) = weak.upgrade() else {
        return; // the Timer was dropped
    };
    let here = worker::worker_here().map(|ctx| ctx.shared.clone());
    let mut run = None;
    {
        let mut st = lock_state(&core);
        if st.gen == gen {
            st.armed = None;
            match &core.kind {
                Kind::Chan { tx, .. } => {
                    // Full: a ticker's receiver is behind; drop the tick, as Go does.
                    let _ = tx.try_send(Instant::now());
                }
                Kind::Func(f, at) => run = Some((f.clone(), *at)),
            }
            if let (Some(p), Some(shared)) = (st.period, here.clone()) {
                // Time runs out at shutdown (every timer fires): a ticker
                // does not re-arm then, or the shutdown would never end.
                if !shared.shutdown.load(std::sync::atomic::Ordering::SeqCst) {
                    let now = Instant::now();
                    let mut next = when + p;
                    if next <= now {
                        // Skip the ticks that were missed.
                        let behind = (now - when).as_nanos() / p.as_nanos().max(1);
                        next = when + p * (behind as u32).saturating_add(1);
                        if next <= now {
                            next = now + p;
                        }
                    }
                    core.arm(&mut st, next, shared);
                }
            }
        }
    }
    if let (Some((f, at)), Some(shared)) = (run, here) {
        if let Err(e) = crate::spawn::spawn_in(&shared, None, None, None, at, move || f()) {
            eprintln!("gopark: after_func: cannot start the coroutine: {e}");
        }
    }
    // The handle may have been dropped meanwhile: then this is the last
    // reference and the drop runs user code (an `after_func` closure).
    if let Err(p) = panic::catch_unwind(AssertUnwindSafe(move || drop(core))) {
        worker::drop_payload(Some(p));
    }
}

/// A channel that receives the current time once, after `d` (Go's
/// `time.After`). Usable as a [`select!`](crate::select) arm and from plain
/// threads.
///
/// Nothing needs to be stopped: when the receiver is dropped before the
/// time comes, the only thing left is the timer's heap entry, which goes
/// away at the deadline. Use a [`Timer`] to cancel it earlier.
///
/// ```
/// use std::time::Duration;
/// use gopark::{chan, select};
///
/// let (_tx, rx) = chan::bounded::<u32>(0);
/// let timed_out = select! {
///     recv(rx) -> _ => false,
///     recv(gopark::time::after(Duration::from_millis(10))) -> _ => true,
/// };
/// assert!(timed_out);
/// ```
pub fn after(d: Duration) -> Receiver<Instant> {
    let (tx, rx) = chan::bounded(1);
    if d.is_zero() {
        let _ = tx.try_send(Instant::now());
        return rx;
    }
    let when = deadline_after(d);
    runtime::current_shared().add_timer(
        when,
        Action::Call(Box::new(move || {
            // Disconnected: the receiver is gone, nothing to do.
            let _ = tx.try_send(Instant::now());
        })),
    );
    rx
}

/// A channel that receives the time every `d` (Go's `time.Tick`); ticks a
/// slow receiver misses are dropped. The ticks stop once every receiver
/// has been dropped (at the next tick). Use a [`Ticker`] to stop it
/// explicitly.
///
/// # Panics
/// If `d` is zero (Go: a non-positive interval).
///
/// ```
/// use std::time::Duration;
/// let tick = gopark::time::tick(Duration::from_millis(5));
/// for _ in 0..3 {
///     tick.recv().unwrap();
/// }
/// ```
pub fn tick(d: Duration) -> Receiver<Instant> {
    assert!(!d.is_zero(), "gopark: tick: zero interval");
    let (tx, rx) = chan::bounded(1);
    arm_tick(tx, deadline_after(d), d, runtime::current_shared());
    rx
}

/// One tick of [`tick`]: sends, then re-arms unless the receivers are gone
/// or the runtime is shutting down.
fn arm_tick(tx: Sender<Instant>, when: Instant, d: Duration, shared: Arc<Shared>) {
    shared.clone().add_timer(
        when,
        Action::Call(Box::new(move || {
            if let Err(TrySendError::Disconnected(_)) = tx.try_send(Instant::now()) {
                return;
            }
            let Some(ctx) = worker::worker_here() else {
                return;
            };
            if ctx
                .shared
                .shutdown
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                return;
            }
            let now = Instant::now();
            let next = if when + d > now { when + d } else { now + d };
            arm_tick(tx, next, d, ctx.shared.clone());
        })),
    );
}

/// A single event: after its duration, the current time is sent on its
/// channel ([`Timer::new`]) or a function runs in a new coroutine
/// ([`after_func`]). Go's `time.Timer`, with Go 1.23's guarantees:
///
/// - after [`stop`](Self::stop) or [`reset`](Self::reset) returns, no value
///   prepared before the call is received (the channel is drained and a
///   firing that raced with the call is discarded);
/// - a timer that nobody references costs nothing: dropping the `Timer`
///   stops it and frees its heap entry at once.
///
/// The channel is usable in [`select!`](crate::select) and from plain
/// threads. Timers live on the heap of the runtime they were armed from
/// (the default runtime on a plain thread); when that runtime shuts down,
/// time runs out and they fire at once.
///
/// ```
/// use std::time::Duration;
/// use gopark::time::Timer;
///
/// let t = Timer::new(Duration::from_secs(3600));
/// assert!(t.stop()); // stopped before it fired
/// assert!(!t.stop()); // already stopped
/// t.reset(Duration::from_millis(1));
/// t.receiver().recv().unwrap();
/// ```
pub struct Timer {
    core: Arc<Core>,
}

impl Timer {
    /// A timer that sends the current time on its channel after `d` (Go's
    /// `time.NewTimer`).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let start = Instant::now();
    /// let t = gopark::time::Timer::new(Duration::from_millis(10));
    /// let fired_at = t.receiver().recv().unwrap();
    /// assert!(fired_at >= start + Duration::from_millis(10));
    /// ```
    pub fn new(d: Duration) -> Timer {
        Timer {
            core: Core::started_chan(None, d),
        }
    }

    /// The channel the time is sent on (Go's `t.C`). For a timer made by
    /// [`after_func`] it is a channel that never receives anything.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gopark::select;
    /// let t = gopark::time::Timer::new(Duration::from_millis(1));
    /// select! {
    ///     recv(t.receiver()) -> at => assert!(at.is_ok()),
    /// }
    /// ```
    pub fn receiver(&self) -> &Receiver<Instant> {
        self.core.receiver()
    }

    /// Stops the timer (Go's `t.Stop`). Returns true if the call stopped it:
    /// it had not fired yet, or it had fired but its value had not been
    /// received (the value is discarded). Returns false if the value was
    /// received already, or the timer was stopped before. For an
    /// [`after_func`] timer, true means the function will not be started.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gopark::time::Timer::new(Duration::from_millis(1));
    /// std::thread::sleep(Duration::from_millis(20)); // fired, not received
    /// assert!(t.stop());
    /// assert!(t.receiver().try_recv().is_err()); // nothing stale
    /// ```
    pub fn stop(&self) -> bool {
        self.core.stop()
    }

    /// Re-arms the timer to fire after `d` (Go's `t.Reset`), whether or not
    /// it was pending; no value from before the call is received after it.
    /// Returns true if the timer was pending (as [`stop`](Self::stop)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gopark::time::Timer::new(Duration::from_secs(3600));
    /// assert!(t.reset(Duration::from_millis(1)));
    /// t.receiver().recv().unwrap();
    /// assert!(!t.reset(Duration::from_millis(1)));
    /// t.receiver().recv().unwrap();
    /// ```
    pub fn reset(&self, d: Duration) -> bool {
        self.core.reset(d)
    }
}

/// A shared receiver of the never-ready channel, for `after_func` timers.
fn never_instant() -> &'static Receiver<Instant> {
    static NEVER: std::sync::OnceLock<Receiver<Instant>> = std::sync::OnceLock::new();
    NEVER.get_or_init(chan::never)
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock_state(&self.core);
        f.debug_struct("Timer")
            .field("armed", &st.armed.is_some())
            .field("func", &matches!(self.core.kind, Kind::Func(..)))
            .finish()
    }
}

/// Runs `f` in a new coroutine after `d` (Go's `time.AfterFunc`), on the
/// runtime the timer was armed from. The returned [`Timer`] can
/// [`stop`](Timer::stop) it, or [`reset`](Timer::reset) it to run `f`
/// again; dropping the `Timer` stops it too, so keep it for as long as `f`
/// should still run.
///
/// ```
/// use std::time::Duration;
/// let (tx, rx) = gopark::chan::bounded(1);
/// let t = gopark::time::after_func(Duration::from_millis(5), move || {
///     let _ = tx.try_send(gopark::current().is_some());
/// });
/// assert_eq!(rx.recv(), Ok(true)); // it ran in a coroutine
/// assert!(!t.stop()); // it had fired
/// ```
#[track_caller]
pub fn after_func<F>(d: Duration, f: F) -> Timer
where
    F: Fn() + Send + Sync + 'static,
{
    let at = std::panic::Location::caller();
    Timer {
        core: Core::started(Kind::Func(Arc::new(f), at), None, d),
    }
}

/// Sends the time on its channel every period (Go's `time.Ticker`). The
/// channel holds one tick: ticks a slow receiver misses are dropped. As for
/// [`Timer`], no stale tick is received after [`stop`](Self::stop) or
/// [`reset`](Self::reset), and dropping the ticker stops it.
///
/// ```
/// use std::time::Duration;
/// use gopark::time::Ticker;
///
/// let t = Ticker::new(Duration::from_millis(2));
/// for _ in 0..3 {
///     t.receiver().recv().unwrap();
/// }
/// t.stop();
/// assert!(t.receiver().recv_timeout(Duration::from_millis(20)).is_err());
/// ```
pub struct Ticker {
    core: Arc<Core>,
}

impl Ticker {
    /// A ticker with period `d` (Go's `time.NewTicker`); the first tick comes
    /// after `d`.
    ///
    /// # Panics
    /// If `d` is zero.
    ///
    /// ```
    /// let t = gopark::time::Ticker::new(std::time::Duration::from_millis(1));
    /// t.receiver().recv().unwrap();
    /// ```
    pub fn new(d: Duration) -> Ticker {
        assert!(!d.is_zero(), "gopark: Ticker::new: zero period");
        Ticker {
            core: Core::started_chan(Some(d), d),
        }
    }

    /// The channel the ticks are sent on (Go's `t.C`).
    ///
    /// ```
    /// use gopark::select;
    /// let t = gopark::time::Ticker::new(std::time::Duration::from_millis(1));
    /// select! { recv(t.receiver()) -> at => assert!(at.is_ok()) }
    /// ```
    pub fn receiver(&self) -> &Receiver<Instant> {
        self.core.receiver()
    }

    /// Stops the ticks (Go's `t.Stop`) and discards a tick not received yet.
    /// Returns true if the ticker was running.
    ///
    /// ```
    /// let t = gopark::time::Ticker::new(std::time::Duration::from_secs(1));
    /// assert!(t.stop());
    /// assert!(!t.stop());
    /// ```
    pub fn stop(&self) -> bool {
        self.core.stop()
    }

    /// Changes the period to `d` and restarts the ticks from now (the next
    /// one comes after `d`); a stopped ticker runs again (Go's `t.Reset`).
    ///
    /// # Panics
    /// If `d` is zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gopark::time::Ticker::new(Duration::from_secs(3600));
    /// t.reset(Duration::from_millis(1));
    /// t.receiver().recv().unwrap();
    /// ```
    pub fn reset(&self, d: Duration) {
        assert!(!d.is_zero(), "gopark: Ticker::reset: zero period");
        lock_state(&self.core).period = Some(d);
        self.core.reset(d);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock_state(&self.core);
        f.debug_struct("Ticker")
            .field("period", &st.period)
            .field("running", &st.armed.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    const HOUR: Duration = Duration::from_secs(3600);

    fn pending(rt: &crate::Runtime) -> usize {
        rt.shared().workers.iter().map(|w| w.timers.len()).sum()
    }

    /// Stopped, reset and dropped timers leave nothing on the heap: a timer
    /// nobody references costs nothing.
    #[test]
    fn dropped_and_stopped_timers_free_their_heap_entry() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        rt.run(|| {
            let ts: Vec<_> = (0..100).map(|_| super::Timer::new(HOUR)).collect();
            for t in &ts[..50] {
                assert!(t.reset(HOUR));
                assert!(t.stop());
            }
            drop(ts);
            let ticker = super::Ticker::new(HOUR);
            ticker.reset(HOUR);
            drop(ticker);
            let f = super::after_func(HOUR, || ());
            drop(f);
        });
        assert_eq!(pending(&rt), 0);
    }

    /// A ticker that fired many times holds one heap entry; `tick` stops
    /// re-arming once its receiver is gone.
    #[test]
    fn tickers_hold_one_entry() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let rx = rt.run(|| {
            let t = super::Ticker::new(Duration::from_millis(1));
            for _ in 0..5 {
                t.receiver().recv().unwrap();
            }
            assert_eq!(crate::runtime::current_shared().workers[0].timers.len(), 1);
            let rx = super::tick(Duration::from_millis(1));
            rx.recv().unwrap();
            rx
        });
        drop(rx);
        // At most one more tick finds the receiver gone and stops.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(pending(&rt), 0);
    }
}
