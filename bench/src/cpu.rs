//! What a receiver costs the machine: the one definition of "CPU per packet"
//! that the harness table and the A/B command both report.
//!
//! A trial's machine time is the busy time of every CPU (user, nice, system,
//! irq and softirq from `/proc/stat`; idle, iowait and steal left out, guest
//! time already inside user) while the generator offers a fixed rate. What a
//! receiver costs per packet is its trial's machine time per frame offered
//! minus the same for the count-and-drop receiver (an XDP program that counts
//! and drops) at the same rate: the generator, the veth and the XDP hook cost
//! every receiver alike and are taken out; the receive softirq a receiver
//! causes on the generator's CPU, its threads, its wake-ups and its writes
//! stay in, wherever they run. The machine must otherwise be quiet.
//!
//! The generator paces frame by frame inside its BPF_PROG_RUN call, so its
//! CPU is busy all the time whatever a receiver costs there: on that CPU
//! only irq and softirq time counts (the veth's receive work, where the XDP
//! program, the copy into the UMEM or tcpdump's skb run, is softirq), its
//! system time being the generator's spinning.

/// A running measurement of the machine's busy time.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    busy: f64,
}

impl CpuMeter {
    /// Starts measuring now.
    pub fn start() -> CpuMeter {
        CpuMeter {
            busy: machine_busy_secs(),
        }
    }

    /// Busy seconds of all the machine's CPUs since [`CpuMeter::start`].
    pub fn stop(&self) -> f64 {
        machine_busy_secs() - self.busy
    }
}

/// Machine nanoseconds per frame offered in a trial (`None` without frames).
pub fn machine_ns_per_frame(busy_secs: f64, offered: u64) -> Option<f64> {
    (offered > 0).then(|| busy_secs * 1e9 / offered as f64)
}

/// CPU nanoseconds per packet a receiver costs the machine: its trial's
/// machine time per frame offered minus the count-and-drop receiver's at the
/// same rate (`baseline_ns`, from [`machine_ns_per_frame`]).
pub fn ns_per_packet(busy_secs: f64, offered: u64, baseline_ns: f64) -> Option<f64> {
    machine_ns_per_frame(busy_secs, offered).map(|ns| ns - baseline_ns)
}

/// Busy clock ticks of every CPU in `/proc/stat`'s text (user, nice,
/// system, irq, softirq); on `spinning`, the generator's CPU, only irq and
/// softirq.
fn busy_ticks(stat: &str, spinning: usize) -> Option<u64> {
    let mut total = 0;
    let mut cpus = 0;
    for line in stat.lines() {
        let Some((id, values)) = line.strip_prefix("cpu").and_then(|r| r.split_once(' ')) else {
            continue;
        };
        let Ok(id) = id.parse::<usize>() else {
            continue; // the all-CPU "cpu " line
        };
        // user nice system idle iowait irq softirq steal guest guest_nice
        let fields: Vec<u64> = values
            .split_whitespace()
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        if fields.len() < 7 {
            return None;
        }
        let irqs = fields[5] + fields[6];
        total += if id == spinning {
            irqs
        } else {
            fields[0] + fields[1] + fields[2] + irqs
        };
        cpus += 1;
    }
    (cpus > 0).then_some(total)
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64).max(1.0)
}

/// Busy seconds of the whole machine so far.
fn machine_busy_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    busy_ticks(&stat, crate::harness::GENERATOR_CPU).unwrap_or(0) as f64 / clock_ticks_per_sec()
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
    fn busy_counts_user_nice_system_irq_softirq_and_on_the_generator_only_irqs() {
        let stat = "cpu  100 20 30 5000 70 4 6 900 50 5\n\
                    cpu0 90 0 25 10 0 3 5 0 0 0\n\
                    cpu1 10 20 5 4990 70 1 1 900 50 5\n\
                    intr 1 2 3\n";
        assert_eq!(busy_ticks(stat, 0), Some(3 + 5 + 10 + 20 + 5 + 1 + 1));
        assert_eq!(busy_ticks(stat, 1), Some(90 + 25 + 3 + 5 + 1 + 1));
    }

    #[test]
    fn busy_refuses_what_is_not_per_cpu_lines() {
        assert_eq!(busy_ticks("cpu  1 2 3 4 5 6 7\n", 0), None);
        assert_eq!(busy_ticks("cpu0 1 2 x 4 5 6 7\n", 0), None);
        assert_eq!(busy_ticks("cpu0 1 2 3\n", 0), None);
        assert_eq!(busy_ticks("", 0), None);
    }

    #[test]
    fn per_packet_is_over_the_count_and_drop_baseline() {
        assert_eq!(ns_per_packet(1.0, 0, 100.0), None);
        assert_eq!(machine_ns_per_frame(0.5, 1_000_000), Some(500.0));
        assert_eq!(ns_per_packet(0.5, 1_000_000, 300.0), Some(200.0));
    }
}
