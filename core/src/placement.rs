//! Where a capture runs: which RX queues, which CPU pins each queue's
//! worker, and which CPUs are left for housekeeping (writers, reporter,
//! server). Pure: the runtime passes in what the kernel reported.

use crate::config::ConfigError;

/// The queues, their workers' CPUs and the CPUs no worker uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// RX queues to capture, in the order given.
    pub queues: Vec<u32>,
    /// The CPU of each queue's worker (same order as `queues`).
    pub cores: Vec<usize>,
    /// CPUs this process may use that run no worker: where writers,
    /// reporting and serving belong. Empty when every CPU runs a worker.
    pub housekeeping: Vec<usize>,
}

impl Placement {
    /// Plans a capture of `queues` (every one of the `available` RX queues
    /// when `None`) on `cores` (spread over `allowed` when `None`).
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
    ) -> Result<Placement, ConfigError> {
        let queues: Vec<u32> = queues.map_or_else(|| (0..available).collect(), <[u32]>::to_vec);
        if let Some(&queue) = queues.iter().find(|&&q| q >= available) {
            return Err(ConfigError(format!(
                "interface {iface} has {available} RX queue(s) (0..{available}); queue {queue} does not exist"
            )));
        }
        let cores = match cores {
            Some(cores) => {
                if let Some(c) = cores.iter().find(|c| !allowed.contains(c)) {
                    return Err(ConfigError(format!(
                        "CPU {c} is not available to this process (available: {allowed:?})"
                    )));
                }
                cores.to_vec()
            }
            None if allowed.is_empty() => vec![0; queues.len()],
            None => (0..queues.len())
                .map(|i| allowed[i % allowed.len()])
                .collect(),
        };
        let housekeeping = allowed
            .iter()
            .copied()
            .filter(|c| !cores.contains(c))
            .collect();
        Ok(Placement {
            queues,
            cores,
            housekeeping,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queue_spread_over_the_allowed_cpus() {
        let p = Placement::plan("eth1", None, 3, None, &[0, 1]).unwrap();
        assert_eq!(p.queues, vec![0, 1, 2]);
        assert_eq!(p.cores, vec![0, 1, 0]);
        assert!(p.housekeeping.is_empty());
    }

    #[test]
    fn chosen_cores_leave_the_others_for_housekeeping() {
        let p = Placement::plan("eth1", Some(&[1]), 2, Some(&[3]), &[0, 1, 2, 3]).unwrap();
        assert_eq!((p.queues, p.cores), (vec![1], vec![3]));
        assert_eq!(p.housekeeping, vec![0, 1, 2]);
    }

    #[test]
    fn missing_queue_and_cpu_are_named() {
        let e = Placement::plan("eth1", Some(&[0, 4]), 2, None, &[0]).unwrap_err();
        assert!(e.0.contains("queue 4 does not exist"), "{e}");
        let e = Placement::plan("eth1", None, 1, Some(&[7]), &[0, 1]).unwrap_err();
        assert!(e.0.contains("CPU 7 is not available"), "{e}");
    }
}
