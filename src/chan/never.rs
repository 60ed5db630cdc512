//! `never()`: a receiver that is never ready (Go's nil channel).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Mutex;

use super::channel::{bounded, Receiver, Sender};

/// A receiver on which nothing ever arrives and which is never closed, like
/// receiving from a nil channel in Go. As a [`select!`](crate::select) arm
/// it disables that arm; `recv` on it waits for ever.
///
/// All receivers returned for one type `T` share a single channel whose
/// sender is never used, so calling `never` costs no new allocation after
/// the first call for each `T`.
///
/// ```
/// use std::time::Duration;
/// use gopark::{chan, select};
///
/// // An optional timeout: `never()` when there is none.
/// fn wait(rx: &chan::Receiver<u32>, timeout: Option<Duration>) -> Option<u32> {
///     let timer = match timeout {
///         Some(d) => gopark::time::after(d),
///         None => chan::never(),
///     };
///     select! {
///         recv(rx) -> v => v.ok(),
///         recv(timer) -> _ => None,
///     }
/// }
/// let (tx, rx) = chan::bounded(1);
/// assert_eq!(wait(&rx, Some(Duration::from_millis(10))), None);
/// tx.send(7).unwrap();
/// assert_eq!(wait(&rx, None), Some(7));
/// ```
pub fn never<T: Send + 'static>() -> Receiver<T> {
    type Pairs = HashMap<TypeId, Box<dyn Any + Send>>;
    static NEVER: Mutex<Option<Pairs>> = Mutex::new(None);
    let mut map = NEVER.lock().unwrap_or_else(|e| e.into_inner());
    let pair = map
        .get_or_insert_with(HashMap::new)
        .entry(TypeId::of::<T>())
        .or_insert_with(|| Box::new(bounded::<T>(0)));
    let (_tx, rx) = pair
        .downcast_ref::<(Sender<T>, Receiver<T>)>()
        .expect("gopark: never(): wrong channel type in the table");
    rx.clone()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn never_is_never_ready() {
        let rx = super::never::<u8>();
        assert!(rx.try_recv().unwrap_err().is_empty());
        assert!(rx
            .recv_timeout(Duration::from_millis(20))
            .unwrap_err()
            .is_timeout());
        drop(super::never::<u8>());
        // Dropping receivers never closes it.
        assert!(rx.try_recv().unwrap_err().is_empty());
    }
}
