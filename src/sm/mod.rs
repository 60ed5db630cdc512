//! The small lock-free state machines of the runtime, kept free of every
//! other dependency so that loom can model them exhaustively.
//!
//! Each file opens with its states and transitions. Under `--cfg loom` only
//! this module is compiled, together with its loom models.

// Under loom only the models use these; the runtime that uses them is not compiled.
#![cfg_attr(loom, allow(dead_code))]

pub(crate) mod fd_mutex;
pub(crate) mod join;
pub(crate) mod mutex;
pub(crate) mod park_token;
pub(crate) mod poll_desc;
pub(crate) mod registry;
pub(crate) mod rwlock;
pub(crate) mod sema;
pub(crate) mod sleep;
pub(crate) mod waitq;
