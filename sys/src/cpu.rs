//! CPU placement: which CPUs this process may use, and pinning threads.

/// CPUs this process may run on, in order.
pub fn allowed_cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|c| c.id).collect())
        .unwrap_or_default()
}

/// Pins the calling thread to one CPU (a worker).
///
/// # Errors
/// The failure of sched_setaffinity, named.
pub fn pin_to(cpu: usize) -> std::io::Result<()> {
    if core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "cannot pin the thread to CPU {cpu} (sched_setaffinity failed)"
        )))
    }
}

/// Restricts the calling thread to `cpus` (sched_setaffinity on thread 0 = self).
/// core_affinity only pins to one CPU; housekeeping threads get a set.
///
/// # Errors
/// EINVAL for a CPU beyond CPU_SETSIZE, or sched_setaffinity's error.
pub fn pin_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: `cpu` is below CPU_SETSIZE, checked above.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: a valid, initialised cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
