//! CPU affinity for [`RuntimeBuilder::pin_workers`](super::RuntimeBuilder::pin_workers):
//! the set of CPUs a thread may run on, read and set with
//! `sched_getaffinity` / `sched_setaffinity`.

use std::io;
use std::mem;

/// A thread's CPU affinity mask.
#[derive(Clone, Copy)]
pub(crate) struct CpuSet(libc::cpu_set_t);

impl CpuSet {
    /// The calling thread's mask.
    pub(crate) fn of_current_thread() -> io::Result<CpuSet> {
        // SAFETY: cpu_set_t is a plain bit array, valid when zeroed.
        let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
        // SAFETY: `set` is a live cpu_set_t and the size passed is its own,
        // so the kernel writes only inside it.
        let r = unsafe { libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if r != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot read the CPU affinity of this thread: {e}"),
            ));
        }
        Ok(CpuSet(set))
    }

    /// The mask of exactly `cpu`.
    pub(crate) fn only(cpu: usize) -> CpuSet {
        // SAFETY: as above, a zeroed cpu_set_t is the empty set.
        let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
        assert!(cpu < libc::CPU_SETSIZE as usize, "CPU {cpu} out of range");
        // SAFETY: `cpu` is below CPU_SETSIZE (checked), so the bit is inside
        // `set`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        CpuSet(set)
    }

    /// The CPUs in the set, in ascending order.
    pub(crate) fn cpus(&self) -> Vec<usize> {
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: every `c` is below CPU_SETSIZE, inside the set.
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &self.0) })
            .collect()
    }

    /// Makes this the calling thread's mask.
    pub(crate) fn apply_to_current_thread(&self) -> io::Result<()> {
        // SAFETY: the pointer and size describe `self.0`, which the kernel
        // only reads.
        let r = unsafe { libc::sched_setaffinity(0, mem::size_of::<libc::cpu_set_t>(), &self.0) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The CPU each of `n` workers is pinned to: the `n` first CPUs of the
/// building thread's mask, or an error naming both counts when it holds
/// fewer than `n`.
pub(crate) fn worker_cpus(n: usize) -> io::Result<(CpuSet, Vec<usize>)> {
    let allowed = CpuSet::of_current_thread()?;
    let cpus = allowed.cpus();
    if cpus.len() < n {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cannot pin {n} workers one to a CPU: this thread may run on {} CPU{} ({:?})",
                cpus.len(),
                if cpus.len() == 1 { "" } else { "s" },
                cpus
            ),
        ));
    }
    Ok((allowed, cpus[..n].to_vec()))
}
