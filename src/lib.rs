//! gopark: stackful coroutines that behave like Go's goroutines.
mod stack;
