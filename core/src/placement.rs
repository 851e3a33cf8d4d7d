//! Where a capture runs: which RX queues, which CPU pins each queue's
//! worker, and which CPUs are left for housekeeping (writers, reporter,
//! server). Pure: the runtime passes in what the kernel reported.
//!
//! A queue's receive work (its interrupt, the softirq that runs the XDP
//! program and copies each frame into the UMEM) runs on some CPU; a worker
//! on that CPU takes turns with it, and each waits for the other. So
//! without `--cores` the workers go where no queue's receive work runs,
//! as far as that is known:
//! - before frames arrive, from the queues' interrupt affinity
//!   ([`queue_interrupts`], on a NIC with one interrupt per queue);
//! - once they arrive, from where the XDP program ran for them (its
//!   per-CPU counters): [`Rebalancer`] moves a worker whose CPU turns out to
//!   run its queue's receive work, and the housekeeping threads with it.
//!   On veth, which has no interrupt, this is the only way: the receive
//!   work runs on whichever CPU sends.
//!
//! With no CPU known to be busy, workers take the highest-numbered CPUs
//! first: a convention (CPU 0 often carries the host's own interrupts and
//! unpinned work), not something measured here; the rebalancer corrects it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::config::ConfigError;

/// The queues, their workers' CPUs and the CPUs no worker uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// RX queues to capture, in the order given.
    pub queues: Vec<u32>,
    /// The CPU of each queue's worker (same order as `queues`).
    pub cores: Vec<usize>,
    /// CPUs for writers, reporting and serving: those that run no worker
    /// and no known receive work, else (on a small machine) those that run
    /// no receive work, else those that run no worker.
    pub housekeeping: Vec<usize>,
    /// Why the workers are where they are, for the start line (`None` when
    /// the user chose them with `--cores`).
    pub reason: Option<String>,
}

/// The CPUs a queue's interrupt may run on, as the kernel reported them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueIrq {
    /// The RX queue.
    pub queue: u32,
    /// The interrupt's number.
    pub irq: u32,
    /// The CPUs it is delivered to (its effective affinity).
    pub cpus: Vec<usize>,
}

impl Placement {
    /// Plans a capture of `queues` (every one of the `available` RX queues
    /// when `None`) on `cores`, or, when `None`, on the CPUs of `allowed`
    /// that `irqs` (the queues' interrupts, where known) leave free.
    ///
    /// # Errors
    /// A [`ConfigError`] naming a queue the interface lacks or a CPU the
    /// process may not use.
    pub fn plan(
        iface: &str,
        queues: Option<&[u32]>,
        available: u32,
        cores: Option<&[usize]>,
        allowed: &[usize],
        irqs: &[QueueIrq],
    ) -> Result<Placement, ConfigError> {
        let queues: Vec<u32> = queues.map_or_else(|| (0..available).collect(), <[u32]>::to_vec);
        if let Some(&queue) = queues.iter().find(|&&q| q >= available) {
            return Err(ConfigError(format!(
                "interface {iface} has {available} RX queue(s) (0..{available}); queue {queue} does not exist"
            )));
        }
        let irqs: Vec<&QueueIrq> = irqs.iter().filter(|i| queues.contains(&i.queue)).collect();
        let busy: BTreeSet<usize> = irqs.iter().flat_map(|i| i.cpus.iter().copied()).collect();
        let (cores, reason) = match cores {
            Some(cores) => {
                if let Some(c) = cores.iter().find(|c| !allowed.contains(c)) {
                    return Err(ConfigError(format!(
                        "CPU {c} is not available to this process (available: {allowed:?})"
                    )));
                }
                (cores.to_vec(), None)
            }
            None if allowed.is_empty() => (vec![0; queues.len()], None),
            None => {
                let cores = spread(queues.len(), allowed, &busy);
                let reason = if irqs.is_empty() {
                    format!(
                        "no interrupt of {iface} names its queues (veth and the like: the receive work runs on the sending CPU), so workers start on the highest CPUs and move if frames arrive on theirs"
                    )
                } else {
                    let mut r = String::new();
                    for i in &irqs {
                        let _ = write!(
                            r,
                            "queue {}'s interrupt {} runs on CPU {}; ",
                            i.queue,
                            i.irq,
                            list(&i.cpus)
                        );
                    }
                    r.push_str("workers placed away from them where a CPU was free");
                    r
                };
                (cores, Some(reason))
            }
        };
        let housekeeping = housekeeping(allowed, &cores, &busy);
        Ok(Placement {
            queues,
            cores,
            housekeeping,
            reason,
        })
    }
}

/// `n` workers' CPUs from `allowed`: those not in `busy` first, highest
/// first, each used once before any is used twice.
fn spread(n: usize, allowed: &[usize], busy: &BTreeSet<usize>) -> Vec<usize> {
    let mut order: Vec<usize> = allowed.to_vec();
    order.sort_unstable_by(|a, b| b.cmp(a));
    order.dedup();
    order.sort_by_key(|c| busy.contains(c));
    (0..n).map(|i| order[i % order.len()]).collect()
}

/// The housekeeping CPUs of `allowed` given the workers' and the receive
/// work's CPUs (see [`Placement::housekeeping`]).
fn housekeeping(allowed: &[usize], workers: &[usize], busy: &BTreeSet<usize>) -> Vec<usize> {
    let tiers: [&dyn Fn(usize) -> bool; 3] = [
        &|c| !workers.contains(&c) && !busy.contains(&c),
        &|c| !busy.contains(&c),
        &|c| !workers.contains(&c),
    ];
    for keep in tiers {
        let set: Vec<usize> = allowed.iter().copied().filter(|&c| keep(c)).collect();
        if !set.is_empty() {
            return set;
        }
    }
    allowed.to_vec()
}

/// A CPU list as the kernel writes one (`0-3,8,10-11`); `None` if malformed.
pub fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 4096 {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

fn list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The RX queue of each interrupt in the text of `/proc/interrupts`, for
/// the interface `iface` whose device is `device` (the basename of
/// `/sys/class/net/IFACE/device`: `virtio0`, a PCI address). Names the
/// drivers give: `eth1-TxRx-3`, `i40e-eth1-TxRx-3`, `eth1-rx-3`
/// (queue 3), `virtio0-input.3`, `mlx5_comp3@pci:0000:03:00.0`;
/// transmit-only interrupts are left out. Returns (irq, queue) pairs.
pub fn queue_interrupts(
    proc_interrupts: &str,
    iface: &str,
    device: Option<&str>,
) -> Vec<(u32, u32)> {
    let mut found = Vec::new();
    for line in proc_interrupts.lines() {
        let Some((irq, rest)) = line.trim_start().split_once(':') else {
            continue;
        };
        let Ok(irq) = irq.parse::<u32>() else {
            continue;
        };
        let Some(name) = rest.split_whitespace().last() else {
            continue;
        };
        if let Some(queue) = queue_of(name, iface, device) {
            found.push((irq, queue));
        }
    }
    found
}

fn queue_of(name: &str, iface: &str, device: Option<&str>) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    let trailing = |s: &str| -> Option<u32> {
        let digits: String = s
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        digits.parse().ok()
    };
    if let Some(device) = device {
        if let Some(rest) = name.strip_prefix(device) {
            // virtio_net: virtio0-input.N (and virtio0-output.N, config).
            return rest.strip_prefix("-input.").and_then(|n| n.parse().ok());
        }
        if let Some((head, at)) = name.split_once('@') {
            // mlx5: mlx5_compN@pci:ADDRESS.
            if at.ends_with(device) && head.contains("comp") {
                return trailing(head);
            }
        }
    }
    let pos = name.find(iface)?;
    let rest = &name[pos + iface.len()..];
    // The interface's own name must end there (eth1 is not eth10).
    if !(rest.is_empty() || rest.starts_with('-') || rest.starts_with('_')) {
        return None;
    }
    if lower.contains("tx") && !lower.contains("rx") {
        return None;
    }
    if rest.is_empty() {
        // One interrupt for the whole device: queue 0.
        return Some(0);
    }
    trailing(rest)
}

/// Moves workers off the CPUs where their queues' frames turn out to be
/// received, as the XDP program's per-CPU counters show: fed about once a
/// second, it answers with a new plan when one is better.
#[derive(Debug, Clone)]
pub struct Rebalancer {
    allowed: Vec<usize>,
    cores: Vec<usize>,
    housekeeping: Vec<usize>,
    last: Vec<Vec<u64>>,
    last_move_ns: Option<u64>,
}

/// A new plan from [`Rebalancer::observe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replan {
    /// Each queue's worker CPU (same order as [`Placement::queues`]).
    pub cores: Vec<usize>,
    /// The housekeeping CPUs.
    pub housekeeping: Vec<usize>,
    /// What was seen and what moved, for the user.
    pub reason: String,
}

impl Rebalancer {
    /// Frames a queue must receive between two looks before its CPUs count
    /// (looks are 200 ms apart in the engine: 5,000 frames/s).
    pub const MIN_FRAMES: u64 = 1000;
    /// A CPU runs a queue's receive work when it took this share of its frames.
    pub const SHARE: f64 = 0.1;
    /// Time between two moves, so that threads never chase a sender around.
    pub const HOLD_NS: u64 = 5_000_000_000;

    /// Starts from `placement`, within `allowed`.
    pub fn new(placement: &Placement, allowed: &[usize]) -> Rebalancer {
        Rebalancer {
            allowed: allowed.to_vec(),
            cores: placement.cores.clone(),
            housekeeping: placement.housekeeping.clone(),
            last: Vec::new(),
            last_move_ns: None,
        }
    }

    /// Takes `seen[q][cpu]`, the frames the XDP program has redirected
    /// since it was attached into queue `q`'s socket on each CPU (`q` in the order of
    /// [`Placement::queues`]), at `now_ns`; a new plan when a worker or the
    /// housekeeping threads share a CPU with receive work and another CPU
    /// would not.
    pub fn observe(&mut self, now_ns: u64, seen: &[Vec<u64>], queues: &[u32]) -> Option<Replan> {
        // The counters start at zero when the program is attached.
        let mut last = std::mem::replace(&mut self.last, seen.to_vec());
        last.resize(seen.len(), Vec::new());
        let mut busy = BTreeSet::new();
        let mut by_queue: Vec<BTreeSet<usize>> = Vec::with_capacity(seen.len());
        for (now, before) in seen.iter().zip(&last) {
            let delta: Vec<u64> = now
                .iter()
                .enumerate()
                .map(|(i, &n)| n.saturating_sub(before.get(i).copied().unwrap_or(0)))
                .collect();
            let total: u64 = delta.iter().sum();
            let mut mine = BTreeSet::new();
            if total >= Self::MIN_FRAMES {
                for (cpu, &d) in delta.iter().enumerate() {
                    if d as f64 >= total as f64 * Self::SHARE {
                        mine.insert(cpu);
                    }
                }
            }
            busy.extend(mine.iter().copied());
            by_queue.push(mine);
        }
        if busy.is_empty() {
            return None;
        }
        if self
            .last_move_ns
            .is_some_and(|t| now_ns.saturating_sub(t) < Self::HOLD_NS)
        {
            return None;
        }
        let mut cores = self.cores.clone();
        let mut reason = String::new();
        for q in 0..cores.len() {
            if !busy.contains(&cores[q]) {
                continue;
            }
            let mut free: Vec<usize> = self
                .allowed
                .iter()
                .copied()
                .filter(|c| !busy.contains(c) && !cores.contains(c))
                .collect();
            free.sort_unstable_by(|a, b| b.cmp(a));
            if let Some(&to) = free.first() {
                let queue = queues.get(q).copied().unwrap_or(q as u32);
                let _ = write!(
                    reason,
                    "queue {queue}'s frames are received on CPU {}, where its worker ran: worker moved from CPU {} to CPU {to}; ",
                    list(&by_queue[q].iter().copied().collect::<Vec<_>>()),
                    cores[q]
                );
                cores[q] = to;
            }
        }
        let housekeeping = housekeeping(&self.allowed, &cores, &busy);
        if cores == self.cores && housekeeping == self.housekeeping {
            return None;
        }
        if housekeeping != self.housekeeping {
            let _ = write!(
                reason,
                "receive work on CPU {}: writers and reporter moved to CPU {}",
                list(&busy.iter().copied().collect::<Vec<_>>()),
                list(&housekeeping)
            );
        }
        self.cores = cores.clone();
        self.housekeeping = housekeeping.clone();
        self.last_move_ns = Some(now_ns);
        Some(Replan {
            cores,
            housekeeping,
            reason: reason.trim_end_matches("; ").to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queue_spread_over_the_allowed_cpus_highest_first() {
        let p = Placement::plan("eth1", None, 3, None, &[0, 1], &[]).unwrap();
        assert_eq!(p.queues, vec![0, 1, 2]);
        assert_eq!(p.cores, vec![1, 0, 1]);
        // Every CPU runs a worker and none is known to take receive work:
        // housekeeping shares them all.
        assert_eq!(p.housekeeping, vec![0, 1]);
        assert!(p.reason.unwrap().contains("no interrupt of eth1"));
    }

    #[test]
    fn one_worker_on_two_cpus_leaves_cpu_0_for_housekeeping() {
        let p = Placement::plan("veth0", None, 1, None, &[0, 1], &[]).unwrap();
        assert_eq!((p.cores, p.housekeeping), (vec![1], vec![0]));
    }

    #[test]
    fn chosen_cores_leave_the_others_for_housekeeping() {
        let p = Placement::plan("eth1", Some(&[1]), 2, Some(&[3]), &[0, 1, 2, 3], &[]).unwrap();
        assert_eq!((p.queues, p.cores), (vec![1], vec![3]));
        assert_eq!(p.housekeeping, vec![0, 1, 2]);
        assert_eq!(p.reason, None);
    }

    #[test]
    fn workers_and_housekeeping_avoid_the_queues_interrupts() {
        let irqs = [
            QueueIrq {
                queue: 0,
                irq: 40,
                cpus: vec![3],
            },
            QueueIrq {
                queue: 1,
                irq: 41,
                cpus: vec![2],
            },
            QueueIrq {
                queue: 5,
                irq: 45,
                cpus: vec![1],
            },
        ];
        // Queue 5 is not captured: its interrupt's CPU is free to use.
        let p = Placement::plan("eth1", Some(&[0, 1]), 8, None, &[0, 1, 2, 3, 4], &irqs).unwrap();
        assert_eq!(p.cores, vec![4, 1]);
        assert_eq!(p.housekeeping, vec![0]);
        let why = p.reason.unwrap();
        assert!(
            why.contains("queue 0's interrupt 40 runs on CPU 3"),
            "{why}"
        );
        // Two CPUs, one taking the interrupt: the worker and the housekeeping
        // share the other.
        let p = Placement::plan("eth1", Some(&[0]), 1, None, &[0, 1], &irqs[..1]).unwrap();
        let p2 = Placement::plan(
            "eth1",
            Some(&[0]),
            1,
            None,
            &[0, 1],
            &[QueueIrq {
                cpus: vec![1],
                ..irqs[0].clone()
            }],
        )
        .unwrap();
        assert_eq!((p.cores, p.housekeeping), (vec![1], vec![0]));
        assert_eq!((p2.cores, p2.housekeeping), (vec![0], vec![0]));
    }

    #[test]
    fn missing_queue_and_cpu_are_named() {
        let e = Placement::plan("eth1", Some(&[0, 4]), 2, None, &[0], &[]).unwrap_err();
        assert!(e.0.contains("queue 4 does not exist"), "{e}");
        let e = Placement::plan("eth1", None, 1, Some(&[7]), &[0, 1], &[]).unwrap_err();
        assert!(e.0.contains("CPU 7 is not available"), "{e}");
    }

    #[test]
    fn interrupts_are_matched_to_queues_by_the_names_drivers_give() {
        let text = "           CPU0       CPU1
  0:         10          0   IO-APIC   2-edge      timer
 24:          0          0   PCI-MSI 1-edge      virtio0-config
 25:        500          0   PCI-MSI 2-edge      virtio0-input.0
 26:          1          0   PCI-MSI 3-edge      virtio0-output.0
 27:        500          0   PCI-MSI 4-edge      virtio0-input.1
 40:          5          5   PCI-MSI 5-edge      i40e-eth10-TxRx-0
 41:          5          5   PCI-MSI 6-edge      i40e-eth1-TxRx-0
 42:          5          5   PCI-MSI 7-edge      i40e-eth1-TxRx-1
 43:          5          5   PCI-MSI 8-edge      eth1-tx-2
 44:          5          5   PCI-MSI 9-edge      eth1-rx-2
 50:          5          5   PCI-MSI 9-edge      mlx5_comp3@pci:0000:03:00.0
 51:          5          5   PCI-MSI 9-edge      mlx5_async@pci:0000:03:00.0
NMI:          0          0   Non-maskable interrupts
";
        assert_eq!(
            queue_interrupts(text, "ens3", Some("virtio0")),
            vec![(25, 0), (27, 1)]
        );
        assert_eq!(
            queue_interrupts(text, "eth1", None),
            vec![(41, 0), (42, 1), (44, 2)]
        );
        assert_eq!(
            queue_interrupts(text, "enp3s0", Some("0000:03:00.0")),
            vec![(50, 3)]
        );
        assert_eq!(queue_interrupts(text, "veth0", None), vec![]);
        assert_eq!(
            queue_interrupts("  30: 1 2 PCI-MSI eno1\n", "eno1", None),
            vec![(30, 0)]
        );
    }

    #[test]
    fn cpu_lists_parse_as_the_kernel_writes_them() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list("5"), Some(vec![5]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    fn seen(cpu0: u64, cpu1: u64) -> Vec<Vec<u64>> {
        vec![vec![cpu0, cpu1]]
    }

    #[test]
    fn a_worker_on_its_queues_receive_cpu_is_moved_once() {
        // Worker started on CPU 0 (say the user allowed only that order);
        // frames arrive on CPU 0.
        let p = Placement {
            queues: vec![0],
            cores: vec![0],
            housekeeping: vec![1],
            reason: Some(String::new()),
        };
        let mut r = Rebalancer::new(&p, &[0, 1]);
        assert_eq!(r.observe(0, &seen(0, 0), &[0]), None, "no frames yet");
        let plan = r.observe(1_000_000_000, &seen(50_000, 10), &[0]).unwrap();
        assert_eq!(plan.cores, vec![1]);
        assert_eq!(
            plan.housekeeping,
            vec![1],
            "no CPU is free of both: share the worker's"
        );
        assert!(plan.reason.contains("received on CPU 0"), "{}", plan.reason);
        assert!(
            plan.reason.contains("moved from CPU 0 to CPU 1"),
            "{}",
            plan.reason
        );
        // Settled: the same picture again changes nothing.
        assert_eq!(r.observe(7_000_000_000, &seen(100_000, 20), &[0]), None);
    }

    #[test]
    fn housekeeping_leaves_the_receive_cpu_and_quiet_links_change_nothing() {
        let p = Placement::plan("veth0", None, 1, None, &[0, 1], &[]).unwrap();
        let mut r = Rebalancer::new(&p, &[0, 1]);
        // Fewer frames than MIN_FRAMES since the program was attached: no evidence.
        assert_eq!(r.observe(1_000_000_000, &seen(500, 0), &[0]), None);
        let plan = r.observe(2_000_000_000, &seen(90_000, 0), &[0]).unwrap();
        assert_eq!((plan.cores, plan.housekeeping), (vec![1], vec![1]));
        assert!(
            plan.reason.contains("writers and reporter moved to CPU 1"),
            "{}",
            plan.reason
        );
    }

    #[test]
    fn moves_are_held_apart_and_need_a_free_cpu() {
        let p = Placement {
            queues: vec![0],
            cores: vec![1],
            housekeeping: vec![0],
            reason: Some(String::new()),
        };
        let mut r = Rebalancer::new(&p, &[0, 1]);
        r.observe(0, &seen(0, 0), &[0]);
        // The sender is on CPU 1, where the worker is: it moves to CPU 0.
        let plan = r.observe(1_000_000_000, &seen(0, 40_000), &[0]).unwrap();
        assert_eq!(plan.cores, vec![0]);
        // The sender follows to CPU 0 a second later: held.
        assert_eq!(r.observe(2_000_000_000, &seen(40_000, 40_000), &[0]), None);
        // Frames on both CPUs: no CPU is free of receive work, so the worker
        // stays; housekeeping leaves the worker's CPU.
        let plan = r
            .observe(9_000_000_000, &seen(80_000, 80_000), &[0])
            .unwrap();
        assert_eq!((plan.cores, plan.housekeeping), (vec![0], vec![1]));
        assert_eq!(
            r.observe(20_000_000_000, &seen(120_000, 120_000), &[0]),
            None
        );
    }
}
