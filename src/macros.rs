//! The `go!` macro.

/// Spawns a coroutine, like Go's `go` statement, and returns its
/// [`JoinHandle`](crate::JoinHandle). Three forms:
///
/// - **a function call**, `go!(f(a, b))` or `go!(path::to::f(a, b))`: as in
///   Go, the arguments are evaluated *in the caller*, before the spawn, and
///   moved into the coroutine, which then calls `f`. So `go!(f(x.clone()))`
///   leaves `x` usable;
/// - **a method call**, `go!(srv.serve(conn))` (the receiver is a variable
///   or a field path such as `self.srv`): the receiver and the evaluated
///   arguments are moved into the coroutine;
/// - **a closure without parameters**, `go!(move || { ... })` or
///   `go!(|| ...)`.
///
/// ```
/// fn square(x: u64) -> u64 { x * x }
/// let a = gopark::go!(square(7));
/// let b = gopark::go!(move || 1 + 1);
/// assert_eq!(a.join().unwrap() + b.join().unwrap(), 51);
///
/// // Arguments are evaluated before the spawn, as in Go.
/// fn total(v: Vec<u32>) -> u32 { v.iter().sum() }
/// let v = vec![1, 2, 3];
/// let h = gopark::go!(total(v.clone()));
/// assert_eq!(v.len(), 3); // still ours
/// assert_eq!(h.join().unwrap(), 6);
///
/// // The method form moves the receiver in.
/// struct Server { greeting: String }
/// impl Server {
///     fn serve(&self, name: &str) -> String { format!("{} {name}", self.greeting) }
/// }
/// let srv = Server { greeting: "hello".into() };
/// assert_eq!(gopark::go!(srv.serve("gopher")).join().unwrap(), "hello gopher");
/// ```
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
/// Anything else is refused with a message saying what `go!` accepts, for
/// example a closure value, which Go would not accept either (`go f` needs
/// a call):
///
/// ```compile_fail
/// let f = || 1;
/// gopark::go!(f); // error: go! expects a call ... or a closure
/// ```
///
/// ```compile_fail
/// gopark::go!(1 + 1); // error: not a call
/// ```
///
/// ```compile_fail
/// // The receiver of the method form must be a variable or a field path.
/// gopark::go!(String::from("x").len());
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
        $crate::__go!(@args [] ($f) $($arg,)*)
    };
    ($($path:ident)::+ ( $($arg:expr),* $(,)? )) => {
        $crate::__go!(@args [] ($($path)::+) $($arg,)*)
    };
    ($recv:ident . $($rest:tt)+) => {
        $crate::__go!(@method [$recv] . $($rest)+)
    };
    ($($other:tt)*) => {
        $crate::__go!(@error)
    };
}

/// Implementation detail of [`go!`]: the rules that bind the arguments,
/// kept out of its documentation. Not a public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __go {
    // Function call: bind each argument in the caller, then spawn.
    (@args [$($done:ident)*] ($($f:tt)+) $head:expr, $($rest:tt)*) => {{
        let __gopark_arg = $head;
        $crate::__go!(@args [$($done)* __gopark_arg] ($($f)+) $($rest)*)
    }};
    (@args [$($done:ident)*] ($($f:tt)+)) => {
        $crate::__go_spawn(move || $($f)+($($done),*))
    };
    // Method call: collect the receiver path, then bind receiver and args.
    (@method [$($recv:tt)+] . $m:ident ( $($arg:expr),* $(,)? )) => {{
        let __gopark_recv = $($recv)+;
        $crate::__go!(@margs [] __gopark_recv $m $($arg,)*)
    }};
    (@method [$($recv:tt)+] . $field:ident $($rest:tt)+) => {
        $crate::__go!(@method [$($recv)+ . $field] $($rest)+)
    };
    (@method $($rest:tt)*) => {
        $crate::__go!(@error)
    };
    (@margs [$($done:ident)*] $r:ident $m:ident $head:expr, $($rest:tt)*) => {{
        let __gopark_arg = $head;
        $crate::__go!(@margs [$($done)* __gopark_arg] $r $m $($rest)*)
    }};
    (@margs [$($done:ident)*] $r:ident $m:ident) => {
        $crate::__go_spawn(move || $r.$m($($done),*))
    };
    (@error) => {
        ::core::compile_error!(
            "go! expects a call `f(args)`, `path::f(args)`, `receiver.method(args)` \
             (receiver: a variable or field path) or a closure `move || body`"
        )
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
