//! Sleeping: Go's `time.Sleep` for coroutines.
//!
//! In a coroutine these park the coroutine (its worker runs others) on the
//! worker's timer heap; on a plain thread they are `std::thread::sleep`.
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

use crate::coroutine::park_commit;
use crate::runtime::timer::Action;
use crate::runtime::worker;

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
    park_commit(ctx, move |task, ctx| {
        ctx.add_timer(deadline, Action::Ready(task.clone()));
        true
    });
}
