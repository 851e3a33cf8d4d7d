//! What a receiver costs the machine: the one definition of "CPU per packet"
//! that the harness table and the A/B command both report.
//!
//! It has two parts, each measured where it can be measured exactly:
//! - **The generator's CPU.** The generator paces frame by frame inside its
//!   BPF_PROG_RUN call, so that CPU is busy all the time whatever a receiver
//!   costs there, and its busy time says nothing. But on veth the receive
//!   work a receiver causes (the XDP program, the redirect and the copy
//!   into the UMEM, tcpdump's skb) runs on that CPU, inline or in
//!   ksoftirqd, and so sets the generator's maximum rate: that CPU spends
//!   `1e9 / max_rate` ns on each frame at the maximum. The receiver's share
//!   is that minus the same for the count-and-drop receiver (an XDP program
//!   that counts and drops): the generator, the veth and the XDP hook cost
//!   every receiver alike and are taken out.
//! - **Every other CPU.** Their busy time (user, nice, system, irq and
//!   softirq from `/proc/stat`; idle, iowait and steal left out, guest time
//!   already inside user) during a trial at a fixed rate, per frame
//!   offered, minus the same for the count-and-drop receiver at that rate:
//!   the receiver's threads, its wake-ups and its writes, wherever they run.
//!
//! The machine must otherwise be quiet.

/// A running measurement of the busy time of every CPU but the generator's.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    busy: f64,
}

impl CpuMeter {
    /// Starts measuring now.
    pub fn start() -> CpuMeter {
        CpuMeter {
            busy: busy_secs_off_generator(),
        }
    }

    /// Busy seconds of every CPU but the generator's since [`CpuMeter::start`].
    pub fn stop(&self) -> f64 {
        busy_secs_off_generator() - self.busy
    }
}

/// Nanoseconds per frame offered of `busy_secs` (`None` without frames).
pub fn ns_per_frame(busy_secs: f64, offered: u64) -> Option<f64> {
    (offered > 0).then(|| busy_secs * 1e9 / offered as f64)
}

/// What one frame costs the generator's CPU when it offers `max_rate`
/// frames/s, its most (`None` for no rate).
pub fn generator_cpu_ns(max_rate: f64) -> Option<f64> {
    (max_rate > 0.0).then(|| 1e9 / max_rate)
}

/// CPU nanoseconds per packet (see the module): `fixed` and `baseline_fixed`
/// are the busy time off the generator's CPU per frame of the receiver's and
/// the count-and-drop receiver's trials at one fixed rate; `max_rate` and
/// `baseline_max_rate` the generator's maximum rates with each.
pub fn ns_per_packet(
    fixed: f64,
    baseline_fixed: f64,
    max_rate: f64,
    baseline_max_rate: f64,
) -> Option<f64> {
    let on_generator = generator_cpu_ns(max_rate)? - generator_cpu_ns(baseline_max_rate)?;
    Some(fixed - baseline_fixed + on_generator)
}

/// Busy clock ticks (user, nice, system, irq, softirq) of every CPU in
/// `/proc/stat`'s text but `skip` (the generator's).
fn busy_ticks(stat: &str, skip: usize) -> Option<u64> {
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
        if id != skip {
            total += fields[0] + fields[1] + fields[2] + fields[5] + fields[6];
        }
        cpus += 1;
    }
    (cpus > 0).then_some(total)
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64).max(1.0)
}

/// Busy seconds so far of every CPU but the generator's.
fn busy_secs_off_generator() -> f64 {
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
    fn busy_counts_user_nice_system_irq_softirq_of_every_cpu_but_the_generators() {
        let stat = "cpu  100 20 30 5000 70 4 6 900 50 5\n\
                    cpu0 90 0 25 10 0 3 5 0 0 0\n\
                    cpu1 10 20 5 4990 70 1 1 900 50 5\n\
                    intr 1 2 3\n";
        assert_eq!(busy_ticks(stat, 0), Some(10 + 20 + 5 + 1 + 1));
        assert_eq!(busy_ticks(stat, 1), Some(90 + 25 + 3 + 5));
    }

    #[test]
    fn busy_refuses_what_is_not_per_cpu_lines() {
        assert_eq!(busy_ticks("cpu  1 2 3 4 5 6 7\n", 0), None);
        assert_eq!(busy_ticks("cpu0 1 2 x 4 5 6 7\n", 0), None);
        assert_eq!(busy_ticks("cpu0 1 2 3\n", 0), None);
        assert_eq!(busy_ticks("", 0), None);
    }

    #[test]
    fn per_packet_adds_the_generators_cpu_from_the_maximum_rates() {
        assert_eq!(ns_per_frame(0.5, 0), None);
        assert_eq!(ns_per_frame(0.5, 1_000_000), Some(500.0));
        assert_eq!(generator_cpu_ns(0.0), None);
        // 4 Mpps with count-and-drop (250 ns a frame), 2 Mpps with the
        // receiver (500): 250 ns of receive work on the generator's CPU.
        assert_eq!(ns_per_packet(300.0, 100.0, 2e6, 4e6), Some(450.0));
        assert_eq!(ns_per_packet(300.0, 100.0, 0.0, 4e6), None);
    }
}
