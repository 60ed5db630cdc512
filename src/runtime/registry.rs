//! A worker's registry of live coroutines (Go's `allgs`, per worker): the
//! lock-free registry of `sm::registry` (which has the protocol, its
//! argument and its loom model) holding this runtime's tasks.

use crate::coroutine::Task;

/// The live coroutines of one worker (see `sm::registry`).
pub(crate) type Registry = crate::sm::registry::Registry<Task>;

pub(crate) use crate::sm::registry::read;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::panic::Location;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// An owner inserting and removing tasks as fast as it can while readers
    /// walk the registry, read the tasks' names and keep clones past their
    /// section: a task freed while a reader could still see it shows as a
    /// name that does not match the
    /// task's `since` (or a crash); every task is dropped exactly once at the
    /// end (each holds a reference to the runtime, counted).
    #[test]
    fn readers_never_see_a_freed_task() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let shared = rt.shared().clone();
        let base = Arc::strong_count(&shared);
        let stack = crate::stack::reserve(64 * 1024).unwrap();
        let reg = Arc::new(Registry::default());
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (reg, stop) = (reg.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut seen = 0usize;
                    let mut kept = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let r = read(&reg);
                        for t in r.iter() {
                            let want = format!("t{}", t.since.load(Ordering::Relaxed));
                            assert_eq!(t.name.as_deref(), Some(want.as_str()));
                            seen += 1;
                        }
                        kept.extend(r.tasks().into_iter().take(2));
                        assert!(r.live() <= 64);
                        drop(r);
                        if kept.len() > 32 {
                            kept.clear();
                        }
                    }
                    seen
                })
            })
            .collect();
        let mut live = std::collections::VecDeque::new();
        for n in 0..200_000usize {
            let name = format!("t{n}");
            let t = Task::new_arc(Some(name), &stack, shared.clone(), Location::caller(), None);
            t.since.store(n as u64, Ordering::Relaxed);
            // SAFETY: this thread is the registry's only owner.
            live.push_back(unsafe { reg.insert(t) });
            if live.len() > 40 || n % 7 == 0 {
                let i = live.pop_front().unwrap();
                // SAFETY: as above.
                assert!(unsafe { reg.remove(i) });
                // SAFETY: as above.
                assert!(!unsafe { reg.remove(i) });
            }
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        assert_eq!(read(&reg).live(), live.len());
        for i in live {
            // SAFETY: as above.
            assert!(unsafe { reg.remove(i) });
        }
        assert_eq!(read(&reg).live(), 0);
        assert_eq!(read(&reg).iter().count(), 0);
        drop(reg);
        assert_eq!(Arc::strong_count(&shared), base);
    }
}
