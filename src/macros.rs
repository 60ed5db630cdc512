//! The `go!` macro.

/// Spawns a coroutine, Go style: `go!(handle(conn, peer))` runs
/// `move || handle(conn, peer)` as a coroutine, and `go!(move || { ... })`
/// spawns a closure. Returns the [`JoinHandle`](crate::JoinHandle).
///
/// The `Send + 'static` requirement is checked where you wrote `go!`, so the
/// compiler points at your code. A coroutine may start on any worker, so
/// what it captures must be `Send`:
///
/// ```compile_fail
/// let rc = std::rc::Rc::new(1);
/// gopark::go!(move || *rc + 1); // error: `Rc<i32>` cannot be sent between threads
/// ```
///
/// ```
/// fn square(x: u64) -> u64 { x * x }
/// let a = gopark::go!(square(7));
/// let b = gopark::go!(move || 1 + 1);
/// assert_eq!(a.join().unwrap() + b.join().unwrap(), 51);
/// ```
#[macro_export]
macro_rules! go {
    (move || $body:expr) => {
        $crate::__go_spawn(move || $body)
    };
    (|| $body:expr) => {
        $crate::__go_spawn(|| $body)
    };
    ($f:ident ( $($arg:expr),* $(,)? )) => {
        $crate::__go_spawn(move || $f($($arg),*))
    };
    ($($path:ident)::+ ( $($arg:expr),* $(,)? )) => {
        $crate::__go_spawn(move || $($path)::+($($arg),*))
    };
    ($closure:expr) => {
        $crate::__go_spawn($closure)
    };
}

/// Implementation detail of [`go!`]: a spawn whose bounds are checked at the
/// macro's call site.
#[doc(hidden)]
#[track_caller]
pub fn __go_spawn<F, T>(f: F) -> crate::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    crate::spawn(f)
}
