//! Counters: the worker's own (application), the socket's (kernel,
//! `XDP_STATISTICS`) and the XDP program's (BPF), kept apart and named by
//! where they come from. Snapshots are cheap; rates come from deltas.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::loader::BpfCounters;
use crate::xsk::{BindMode, SocketStats};

/// A worker's counters. Each has one writer (the worker, once per batch) and
/// any number of readers; the worker keeps them on its own cache line.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Frames taken from the RX ring.
    pub received: AtomicU64,
    /// Original bytes of those frames.
    pub received_bytes: AtomicU64,
    /// Frames handed to the sink (or counted, without a sink).
    pub written: AtomicU64,
    /// Original bytes of the frames handed to the sink.
    pub written_bytes: AtomicU64,
    /// Frames received after `-c COUNT` was reached, deliberately not written.
    pub over_count: AtomicU64,
    /// Frames the sink refused because its output had closed.
    pub sink_closed_drops: AtomicU64,
}

impl WorkerCounters {
    /// Adds `n` to `counter` (a single-writer counter: a relaxed add suffices).
    #[inline(always)]
    pub fn add(counter: &AtomicU64, n: u64) {
        if n != 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Everything known about one queue at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueSnapshot {
    /// RX queue index.
    pub queue: u32,
    /// CPU the worker is pinned to.
    pub core: usize,
    /// Whether the socket is in copy or zero-copy mode.
    pub bind_mode: Option<BindMode>,
    /// Frames the worker took from the RX ring.
    pub received: u64,
    /// Original bytes of those frames.
    pub received_bytes: u64,
    /// Frames handed to the sink.
    pub written: u64,
    /// Original bytes of the frames handed to the sink.
    pub written_bytes: u64,
    /// Frames received after the count was reached.
    pub over_count: u64,
    /// Frames not written because the output closed.
    pub sink_closed_drops: u64,
    /// Kernel counters of the socket.
    pub socket: SocketStats,
    /// The XDP program's counters for this queue.
    pub bpf: BpfCounters,
}

impl QueueSnapshot {
    /// Frames lost on this queue, wherever they were lost: socket drops, a
    /// full RX ring, redirects that found no socket, and frames the output
    /// refused.
    pub fn lost(&self) -> u64 {
        self.socket.rx_dropped
            + self.socket.rx_ring_full
            + self.bpf.redirect_failed
            + self.sink_closed_drops
    }
}

/// All queues at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When it was taken.
    pub at: Instant,
    /// One entry per captured queue.
    pub queues: Vec<QueueSnapshot>,
}

impl Snapshot {
    fn sum(&self, f: impl Fn(&QueueSnapshot) -> u64) -> u64 {
        self.queues.iter().map(f).sum()
    }

    /// Frames received over all queues.
    pub fn received(&self) -> u64 {
        self.sum(|q| q.received)
    }

    /// Bytes received over all queues.
    pub fn received_bytes(&self) -> u64 {
        self.sum(|q| q.received_bytes)
    }

    /// Frames written over all queues.
    pub fn written(&self) -> u64 {
        self.sum(|q| q.written)
    }

    /// Original bytes of the frames written over all queues.
    pub fn written_bytes(&self) -> u64 {
        self.sum(|q| q.written_bytes)
    }

    /// Frames lost over all queues (see [`QueueSnapshot::lost`]).
    pub fn lost(&self) -> u64 {
        self.sum(QueueSnapshot::lost)
    }

    /// Rates between an earlier snapshot and this one.
    pub fn rates_since(&self, earlier: &Snapshot) -> Rates {
        let secs = self.at.duration_since(earlier.at).as_secs_f64();
        let per_sec = |now: u64, then: u64| {
            if secs > 0.0 {
                now.saturating_sub(then) as f64 / secs
            } else {
                0.0
            }
        };
        Rates {
            packets_per_sec: per_sec(self.received(), earlier.received()),
            bits_per_sec: per_sec(self.received_bytes(), earlier.received_bytes()) * 8.0,
            lost_per_sec: per_sec(self.lost(), earlier.lost()),
        }
    }
}

/// Rates computed from two snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Frames received per second.
    pub packets_per_sec: f64,
    /// Bits received per second (original frame lengths).
    pub bits_per_sec: f64,
    /// Frames lost per second.
    pub lost_per_sec: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates_come_from_deltas() {
        let t0 = Instant::now();
        let q = |received, bytes, drop| QueueSnapshot {
            received,
            received_bytes: bytes,
            socket: SocketStats {
                rx_ring_full: drop,
                ..Default::default()
            },
            ..Default::default()
        };
        let a = Snapshot {
            at: t0,
            queues: vec![q(100, 1000, 1), q(50, 500, 0)],
        };
        let b = Snapshot {
            at: t0 + Duration::from_secs(2),
            queues: vec![q(300, 3000, 5), q(250, 2500, 0)],
        };
        let r = b.rates_since(&a);
        assert_eq!(r.packets_per_sec, 200.0);
        assert_eq!(r.bits_per_sec, 16000.0);
        assert_eq!(r.lost_per_sec, 2.0);
        assert_eq!(b.lost(), 5);
    }
}
