//! Runtime shutdown on a worker: every coroutine that lives here is
//! cancelled, on this thread, and the worker keeps scheduling until each has
//! ended.
//!
//! ## The protocol
//! 1. `Runtime::drop` stops every worker's timers (`Timers::stop`: the
//!    loop's check for due timers is also its check for the shutdown), sets
//!    `Shared::shutdown` and wakes every worker; each leaves its scheduling
//!    loop at the next round and calls [`WorkerCtx::shutdown`], which
//!    starts by restoring its timers' `next`.
//! 2. The worker marks each of its live coroutines `CANCEL_REQUESTED` and
//!    claims the parked ones as a waker would (`Task::claim_parked`, a CAS
//!    of the status out of WAITING: a real waker racing with it either wins,
//!    and the coroutine is in a run queue, or loses and drops its stale
//!    wake-up, see `coroutine::ready`).
//! 3. It then runs a reduced scheduler: its run queues and inbox, the
//!    unstarted coroutines of every queue, and its timers, all of which are
//!    due at once (time runs out at shutdown: a sleep returns, a timed wait
//!    times out). A coroutine resumed with `CANCEL_REQUESTED` unwinds from
//!    its park point (`Resume::Cancel`, the [`Cancelled`] payload, which
//!    does not run the panic hook); an unstarted one drops its closure
//!    inside the coroutine and ends the same way. Destructors that run
//!    during that unwind may park like any code (a contended lock held by
//!    another cancelled coroutine, a join): the wait ends when its waker,
//!    usually another unwinding coroutine, wakes it. Socket operations fail
//!    at once instead of waiting for the network.
//! 4. A worker whose coroutines are all parked with nothing to run waits for
//!    other workers to hand it work. When every worker still shutting down
//!    is in that state and no inbox, queue or timer holds anything, no
//!    coroutine can make progress any more: each worker *leaks* what is left
//!    (`WorkerCtx::leak`: the stack stays allocated, remaining destructors
//!    do not run, the join handle gets an error) and says so on stderr.
//!    A coroutine that catches its [`Cancelled`] unwind and goes on to park
//!    or yield again is leaked the same way instead of being unwound forever.
//! 5. The last worker out (or `Runtime::drop`, after joining the threads)
//!    drops whatever is still queued ([`cancel_queued`]), which also breaks
//!    the reference cycle between the tasks and the runtime they point to,
//!    and the last worker out shuts the poller down (sockets still used from
//!    other runtimes get an error instead of waiting on it).
//!
//! Nothing in this protocol moves a started coroutine to another thread or
//! unwinds its stack anywhere but on its home worker.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::{drop_payload, QuickPop, WorkerCtx, CANCELLED_MSG};
use crate::coroutine::{Body, Task, CANCEL_NONE, CANCEL_REQUESTED, NO_HOME};
use crate::runtime::{registry, Shared};

/// How often a worker with nothing to run re-checks, during shutdown, for
/// work handed over by other workers (shutdown only: no cost otherwise).
const SHUTDOWN_POLL: Duration = Duration::from_millis(1);

/// What `leak` says of a coroutine that no waker is left to wake.
const LEAK_STUCK: &str =
    "was still blocked in a destructor when its runtime shut down, with nothing left to wake it";

impl WorkerCtx {
    /// Runtime shutdown on this worker (see the module docs).
    pub(super) fn shutdown(&self) {
        self.shutting_down.set(true);
        self.set_careful();
        // From here on `next` means armed timers again (`Timers::stop`).
        self.shared_part().timers.unstop();
        let live = registry::read(&self.shared_part().registry).tasks();
        for t in live {
            let _ = t.cancel.compare_exchange(
                CANCEL_NONE,
                CANCEL_REQUESTED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            if t.claim_parked() {
                self.runq.push_back(t);
            }
        }
        loop {
            if let Some(t) = self.next_in_shutdown() {
                self.execute(t);
                continue;
            }
            if self.fire_all_timers() {
                continue;
            }
            if registry::read(&self.shared_part().registry).live() == 0 {
                break;
            }
            if !self.wait_in_shutdown() {
                let stuck = registry::read(&self.shared_part().registry).tasks();
                for t in stuck {
                    self.leak(t, LEAK_STUCK);
                }
                break;
            }
        }
        // SAFETY: this worker owns its registry.
        unsafe { self.shared_part().registry.flush() };
        if self.shared.shutdown_active.fetch_sub(1, Ordering::SeqCst) == 1 {
            // The last worker out.
            cancel_queued(&self.shared, true);
            self.shared.poller.last_worker_stopped(&self.shared);
        }
    }

    /// The next coroutine to run during shutdown: this worker's own, then
    /// any unstarted one.
    fn next_in_shutdown(&self) -> Option<Arc<Task>> {
        if let Some(t) = self.runnext.take() {
            return Some(t);
        }
        if let Some(t) = self.runq.pop_front() {
            return Some(t);
        }
        let sh = &*self.shared;
        self.shared_part()
            .inbox
            .quick_pop()
            .or_else(|| sh.global.quick_pop())
            .or_else(|| sh.workers.iter().find_map(|w| w.spawnq.quick_pop()))
    }

    /// Fires every timer of this worker, due or not; true if there were any.
    fn fire_all_timers(&self) -> bool {
        let mut due = Vec::new();
        self.shared_part().timers.take_due(u64::MAX, &mut due);
        let any = !due.is_empty();
        for a in due {
            a.fire();
        }
        any
    }

    /// Waits until another worker hands this one work (true), or until no
    /// worker can make progress any more (false).
    fn wait_in_shutdown(&self) -> bool {
        let sh = &*self.shared;
        let me = self.shared_part();
        sh.shutdown_idle.fetch_add(1, Ordering::SeqCst);
        let progress = loop {
            // Pairs with the SeqCst counter updates: a worker that handed
            // work to another did so before it counted itself idle, so
            // whoever sees every worker idle also sees that work.
            fence(Ordering::SeqCst);
            if !me.inbox.is_empty() || sh.has_visible_work() || me.timers.next() != u64::MAX {
                break true;
            }
            if sh.shutdown_stuck.load(Ordering::SeqCst) {
                break false;
            }
            if sh.shutdown_idle.load(Ordering::SeqCst) == sh.shutdown_active.load(Ordering::SeqCst)
                && sh
                    .workers
                    .iter()
                    .all(|w| w.inbox.is_empty() && w.timers.next() == u64::MAX)
                && !sh.has_visible_work()
            {
                sh.shutdown_stuck.store(true, Ordering::SeqCst);
                break false;
            }
            thread::park_timeout(SHUTDOWN_POLL);
        };
        sh.shutdown_idle.fetch_sub(1, Ordering::SeqCst);
        progress
    }
}

/// Drops every coroutine still queued on a runtime that has shut down (or
/// is shutting down): unstarted ones lose their closure, dropped here as on
/// a plain thread, and their join handles get an error. With `all`, also
/// what is left in inboxes and timers (after the last worker stopped), so
/// no task keeps the runtime's shared state alive.
pub(crate) fn cancel_queued(shared: &Arc<Shared>, all: bool) {
    // Pairs with the fence of a spawner that pushed, then saw the shutdown
    // flag and every worker stopped (`Shared::submit`): one of us sees the
    // other's write, so a task pushed to an inbox after the last worker
    // left is still dropped.
    fence(Ordering::SeqCst);
    while let Some(t) = shared.global.pop() {
        drop_unstarted(shared, t);
    }
    for w in shared.workers.iter() {
        while let Some(t) = w.spawnq.pop() {
            drop_unstarted(shared, t);
        }
        if all {
            // Started coroutines readied after their worker left: they were
            // leaked, and `Task`'s drop never unwinds a stack. Unstarted
            // ones were placed on that worker explicitly (`Builder::worker`).
            while let Some(t) = w.inbox.pop() {
                if t.home.load(Ordering::Relaxed) == NO_HOME {
                    drop_unstarted(shared, t);
                }
            }
            let mut due = Vec::new();
            w.timers.take_all(&mut due);
            drop(due);
        }
    }
}

/// Drops an unstarted coroutine popped from a queue and fails its join.
fn drop_unstarted(shared: &Shared, task: Arc<Task>) {
    // SAFETY: the task was popped from a run queue, so its popper is its
    // owner; it never ran, so no worker owns it (coroutine module docs).
    let local = unsafe { task.local() };
    if let Some(w) = shared
        .workers
        .get(std::mem::replace(&mut local.charge, NO_HOME))
    {
        w.load.sub(1);
    }
    let body = local.body.take();
    if let Body::Built(co) = &body {
        debug_assert!(
            !co.started(),
            "gopark: a started coroutine in a spawn queue"
        );
    }
    if !matches!(body, Body::Gone) {
        // The closure's destructors run on this thread, outside any
        // coroutine of this runtime: as they would on a plain thread.
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(move || drop(body))) {
            drop_payload(Some(p));
        }
    }
    drop_payload(task.complete(Err(Box::new(CANCELLED_MSG))));
}
