//! Selecting over a list of channels known only at run time (Go's
//! `reflect.Select` for receives; crossbeam's `Select`): the same machinery
//! as [`select!`](crate::select), over a slice instead of written-out arms.

use std::time::Duration;

use super::select::{select, Arm, RecvArm, Timeout};
use super::{Receiver, RecvError};

/// Waits until one of `receivers` can complete a receive and performs it,
/// like a `select!` with one `recv` arm per receiver: returns the index of the
/// receiver that was chosen and what it received (`Err` if that channel is
/// closed and empty). When several are ready, one is chosen at random, as in
/// Go. Parks a coroutine, blocks a plain thread. With no receivers it waits
/// for ever (Go's `select {}`); a case can be disabled by putting
/// [`never()`](super::never) in its place.
///
/// ```
/// use gopark::chan;
/// let chans: Vec<_> = (0..4).map(|_| chan::bounded::<u32>(1)).collect();
/// chans[2].0.send(42).unwrap();
/// let receivers: Vec<_> = chans.iter().map(|(_, r)| r).collect();
/// assert_eq!(chan::select_recv(&receivers), (2, Ok(42)));
/// ```
pub fn select_recv<T>(receivers: &[&Receiver<T>]) -> (usize, Result<T, RecvError>) {
    select_recv_inner(receivers, Timeout::Never)
        .expect("gopark: a select without default timed out")
}

/// [`select_recv`] that gives up after `timeout`: `None` if no receiver was
/// ready by then (Go's `select` with a `time.After` case).
///
/// ```
/// use std::time::Duration;
/// let (_tx, rx) = gopark::chan::bounded::<u8>(0);
/// assert_eq!(gopark::chan::select_recv_timeout(&[&rx], Duration::from_millis(10)), None);
/// ```
pub fn select_recv_timeout<T>(
    receivers: &[&Receiver<T>],
    timeout: Duration,
) -> Option<(usize, Result<T, RecvError>)> {
    select_recv_inner(receivers, Timeout::after(timeout))
}

/// [`select_recv`] that does not wait: `None` if no receiver is ready now
/// (Go's `select` with a `default` case).
///
/// ```
/// let (tx, rx) = gopark::chan::bounded::<u8>(1);
/// let (_tx2, rx2) = gopark::chan::bounded::<u8>(1);
/// assert_eq!(gopark::chan::try_select_recv(&[&rx, &rx2]), None);
/// tx.send(1).unwrap();
/// assert_eq!(gopark::chan::try_select_recv(&[&rx, &rx2]), Some((0, Ok(1))));
/// ```
pub fn try_select_recv<T>(receivers: &[&Receiver<T>]) -> Option<(usize, Result<T, RecvError>)> {
    select_recv_inner(receivers, Timeout::Now)
}

fn select_recv_inner<T>(
    receivers: &[&Receiver<T>],
    timeout: Timeout,
) -> Option<(usize, Result<T, RecvError>)> {
    let arms: Vec<RecvArm<'_, T>> = receivers.iter().map(|r| RecvArm::new(r)).collect();
    let dyn_arms: Vec<&dyn Arm> = arms.iter().map(|a| a as &dyn Arm).collect();
    let i = select(&dyn_arms, timeout);
    drop(dyn_arms);
    let arm = arms.into_iter().nth(i)?;
    Some((i, arm.into_result()))
}
