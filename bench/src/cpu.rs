//! What a receiver costs the machine: the one definition of "CPU per packet"
//! that the harness table and the A/B command both report.
//!
//! A receiver's CPU time over a trial is the busy time of every CPU of the
//! machine (user, nice, system, irq and softirq from `/proc/stat`; idle,
//! iowait and steal left out, guest time already inside user) minus the CPU
//! time of the generator process. It therefore includes the receive softirq
//! that the kernel runs on the generator's CPU on the receiver's behalf, and
//! whatever else the receiver causes anywhere. The machine must otherwise be
//! quiet; the generator must be a child of this process, waited for before
//! [`CpuMeter::stop`].

/// A running measurement of the machine's busy time.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    busy: f64,
    children: f64,
}

impl CpuMeter {
    /// Starts measuring now.
    pub fn start() -> CpuMeter {
        CpuMeter {
            busy: machine_busy_secs(),
            children: children_cpu_secs(),
        }
    }

    /// CPU seconds the receiver cost the machine since [`CpuMeter::start`]:
    /// the machine's busy time minus the CPU time of the children this
    /// process waited for meanwhile (the generator).
    pub fn stop(&self) -> f64 {
        (machine_busy_secs() - self.busy) - (children_cpu_secs() - self.children)
    }
}

/// CPU nanoseconds per packet recorded, `None` when nothing was recorded.
pub fn ns_per_packet(cpu_secs: f64, packets: u64) -> Option<f64> {
    (packets > 0).then(|| cpu_secs * 1e9 / packets as f64)
}

/// Busy clock ticks in `/proc/stat`'s first (`cpu `) line, all CPUs.
fn busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal guest guest_nice
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    (fields.len() >= 7).then(|| at(0) + at(1) + at(2) + at(5) + at(6))
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64).max(1.0)
}

/// Busy seconds of the whole machine so far.
fn machine_busy_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    busy_ticks(&stat).unwrap_or(0) as f64 / clock_ticks_per_sec()
}

/// CPU seconds used by this process's children that have been waited for.
fn children_cpu_secs() -> f64 {
    // SAFETY: rusage is plain data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid rusage for getrusage to fill.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Pins the calling thread to `cpu`; `who` names it in the error.
pub fn pin_to(cpu: usize, who: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        core_affinity::set_for_current(core_affinity::CoreId { id: cpu }),
        "cannot pin {who} to CPU {cpu}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_counts_user_nice_system_irq_softirq_only() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        let stat = "cpu  100 20 30 5000 70 4 6 900 50 5\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(busy_ticks(stat), Some(100 + 20 + 30 + 4 + 6));
    }

    #[test]
    fn busy_refuses_what_is_not_the_total_line() {
        assert_eq!(busy_ticks("cpu0 1 2 3 4 5 6 7\n"), None);
        assert_eq!(busy_ticks("cpu  1 2 x 4 5 6 7\n"), None);
        assert_eq!(busy_ticks("cpu  1 2 3\n"), None);
        assert_eq!(busy_ticks(""), None);
    }

    #[test]
    fn per_packet_is_unknown_without_packets() {
        assert_eq!(ns_per_packet(1.0, 0), None);
        assert_eq!(ns_per_packet(0.5, 1_000_000), Some(500.0));
    }
}
