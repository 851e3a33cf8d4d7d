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
    pin_thread(0, cpus)
}

/// Restricts thread `tid` of this process (0: the calling thread) to `cpus`.
///
/// # Errors
/// EINVAL for a CPU beyond CPU_SETSIZE, or sched_setaffinity's error (ESRCH
/// for a thread that has ended).
pub fn pin_thread(tid: i32, cpus: &[usize]) -> std::io::Result<()> {
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
    let rc = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Gives the calling thread the lowest CPU weight (nice 19): background
/// work (the export) then yields to a worker sharing its CPU instead of
/// holding it for a scheduler slice, and threads it starts inherit that.
///
/// # Errors
/// setpriority's error.
pub fn lower_current_thread_priority() -> std::io::Result<()> {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // On Linux, PRIO_PROCESS with a thread id sets that thread's nice value.
    // SAFETY: plain integers; no memory is passed.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// This process's threads whose name starts with `prefix`: (thread id, name).
/// Threads that end while the list is read are left out.
pub fn threads_named(prefix: &str) -> Vec<(i32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid: i32 = e.file_name().to_str()?.parse().ok()?;
        let name = std::fs::read_to_string(e.path().join("comm")).ok()?;
        let name = name.trim_end().to_string();
        name.starts_with(prefix).then_some((tid, name))
    })
    .collect()
}

/// The interrupts of `iface`'s RX queues and the CPUs each is delivered
/// to, from `/proc/interrupts` and `/proc/irq/N/effective_affinity_list`
/// (empty where the interface has none, as veth).
pub fn queue_irqs(iface: &str) -> Vec<xsktap_core::placement::QueueIrq> {
    let Ok(text) = std::fs::read_to_string("/proc/interrupts") else {
        return Vec::new();
    };
    let device = std::fs::read_link(format!("/sys/class/net/{iface}/device"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    xsktap_core::placement::queue_interrupts(&text, iface, device.as_deref())
        .into_iter()
        .filter_map(|(irq, queue)| {
            let read = |f: &str| std::fs::read_to_string(format!("/proc/irq/{irq}/{f}")).ok();
            let list = read("effective_affinity_list").or_else(|| read("smp_affinity_list"))?;
            let cpus = xsktap_core::placement::parse_cpu_list(list.trim())?;
            Some(xsktap_core::placement::QueueIrq { queue, irq, cpus })
        })
        .collect()
}
