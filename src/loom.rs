//! Synchronisation shim: std's atomics normally, loom's under `--cfg loom`.
//!
//! The lock-free protocols in [`crate::sm`] import their atomics from here so
//! that `RUSTFLAGS="--cfg loom" cargo test --release --lib sm::` model-checks
//! them with loom; the rest of the crate uses std directly.

#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicU32, AtomicU8, AtomicUsize, Ordering,
};

#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU8, AtomicUsize, Ordering};
