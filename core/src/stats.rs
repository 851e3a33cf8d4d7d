//! Counters: the worker's own (application), the socket's (kernel,
//! `XDP_STATISTICS`) and the XDP program's (BPF), kept apart and named by
//! where they come from. Snapshots are cheap; rates come from deltas.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::parse::{Packet, Proto};
use crate::timestamps::StampSource;
use crate::types::{BindMode, BpfCounters, SocketStats};

/// A worker's counters. Each has one writer (the worker, once per batch) and
/// any number of readers; the worker keeps them on its own cache line.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Frames taken from the RX ring.
    pub received: AtomicU64,
    /// Original bytes of those frames.
    pub received_bytes: AtomicU64,
    /// Frames handed to the output, which counts them written once it has
    /// written them ([`OutputCounters`]); without an output, frames counted.
    pub written: AtomicU64,
    /// Original bytes of the frames handed to the output.
    pub written_bytes: AtomicU64,
    /// Frames received after `-c COUNT` was reached, deliberately not written.
    pub over_count: AtomicU64,
    /// Frames the output refused because it had closed or failed, and frames
    /// left in the RX ring when the worker stopped on such an output or on
    /// an error of its queue.
    pub sink_closed_drops: AtomicU64,
    /// Times the worker looked at its RX ring and found it empty.
    pub empty_polls: AtomicU64,
    /// Coalescing naps taken instead of waiting in poll(2).
    pub naps: AtomicU64,
    /// Waits in poll(2) for frames.
    pub waits: AtomicU64,
    /// Wake-ups of the kernel for the fill ring (`XDP_RING_NEED_WAKEUP`).
    pub kicks: AtomicU64,
}

impl WorkerCounters {
    /// Adds `n` to `counter`; only the owning worker writes it (see [`bump`]).
    #[inline(always)]
    pub fn add(counter: &AtomicU64, n: u64) {
        if n != 0 {
            bump(counter, n);
        }
    }
}

/// What an output's writer thread did with one queue's records: a frame is
/// written only once its record is. Written by the writer thread, read by
/// anyone.
#[derive(Debug, Default)]
pub struct OutputCounters {
    /// Records written whole.
    pub written: AtomicU64,
    /// Original bytes of the frames written.
    pub written_bytes: AtomicU64,
    /// Records handed to the writer but not written (the output failed).
    pub failed: AtomicU64,
}

/// Upper bounds (inclusive) of the frame-size buckets, as RMON's etherStats
/// (RFC 2819) with undersize and oversize frames in the first and last.
pub const SIZE_BUCKETS: [u32; 8] = [63, 64, 127, 255, 511, 1023, 1518, u32::MAX];

/// Labels of [`SIZE_BUCKETS`].
pub const SIZE_LABELS: [&str; 8] = [
    "<64",
    "64",
    "65-127",
    "128-255",
    "256-511",
    "512-1023",
    "1024-1518",
    ">1518",
];

/// Bytes of the Ethernet FCS: NICs strip it before XDP sees the frame, but
/// RMON's size buckets count it.
pub const FCS_LEN: u32 = 4;

/// The bucket of a frame of `len` bytes as captured (without its FCS): RMON
/// counts the octets on the wire, so a minimum-size 60-byte frame is `64`.
#[inline(always)]
pub fn size_bucket(len: u32) -> usize {
    let octets = len.saturating_add(FCS_LEN);
    SIZE_BUCKETS
        .iter()
        .position(|&max| octets <= max)
        .unwrap_or(7)
}

/// Number of VLAN ids.
pub const VLAN_IDS: usize = 4096;

/// Adds `n` to a counter that only the calling thread writes: a relaxed
/// load and store, which (unlike `fetch_add`) takes no locked instruction.
#[inline(always)]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// What a worker saw, by protocol class, VLAN and size. One writer (the
/// worker, per packet), any number of readers.
#[derive(Debug)]
pub struct TrafficCounters {
    /// Packets per [`Proto`] (indexed by [`Proto::index`]).
    pub proto_packets: [AtomicU64; 7],
    /// Bytes per [`Proto`].
    pub proto_bytes: [AtomicU64; 7],
    /// Packets per VLAN id (the outermost tag); untagged frames are not counted here.
    pub vlan_packets: Box<[AtomicU64]>,
    /// Bytes per VLAN id.
    pub vlan_bytes: Box<[AtomicU64]>,
    /// Packets per size bucket ([`SIZE_BUCKETS`]).
    pub sizes: [AtomicU64; 8],
}

impl Default for TrafficCounters {
    fn default() -> Self {
        TrafficCounters {
            proto_packets: Default::default(),
            proto_bytes: Default::default(),
            vlan_packets: (0..VLAN_IDS).map(|_| AtomicU64::new(0)).collect(),
            vlan_bytes: (0..VLAN_IDS).map(|_| AtomicU64::new(0)).collect(),
            sizes: Default::default(),
        }
    }
}

impl TrafficCounters {
    /// Counts one parsed frame. Call only from the owning worker.
    #[inline(always)]
    pub fn record(&self, p: &Packet) {
        let len = u64::from(p.len);
        let class = p.proto.index();
        bump(&self.proto_packets[class], 1);
        bump(&self.proto_bytes[class], len);
        if p.vlan_count > 0 {
            let id = usize::from(p.vlans[0]) & (VLAN_IDS - 1);
            bump(&self.vlan_packets[id], 1);
            bump(&self.vlan_bytes[id], len);
        }
        bump(&self.sizes[size_bucket(p.len)], 1);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> TrafficSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut vlans = Vec::new();
        for (id, c) in self.vlan_packets.iter().enumerate() {
            let packets = load(c);
            if packets > 0 {
                vlans.push((id as u16, packets, load(&self.vlan_bytes[id])));
            }
        }
        TrafficSnapshot {
            proto_packets: std::array::from_fn(|i| load(&self.proto_packets[i])),
            proto_bytes: std::array::from_fn(|i| load(&self.proto_bytes[i])),
            vlans,
            sizes: std::array::from_fn(|i| load(&self.sizes[i])),
        }
    }
}

/// A copy of [`TrafficCounters`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficSnapshot {
    /// Packets per protocol class.
    pub proto_packets: [u64; 7],
    /// Bytes per protocol class.
    pub proto_bytes: [u64; 7],
    /// (VLAN id, packets, bytes) for every VLAN seen, by id.
    pub vlans: Vec<(u16, u64, u64)>,
    /// Packets per size bucket.
    pub sizes: [u64; 8],
}

impl TrafficSnapshot {
    /// Adds another worker's counters to these.
    pub fn merge(&mut self, other: &TrafficSnapshot) {
        for i in 0..7 {
            self.proto_packets[i] += other.proto_packets[i];
            self.proto_bytes[i] += other.proto_bytes[i];
        }
        for i in 0..8 {
            self.sizes[i] += other.sizes[i];
        }
        for &(id, p, b) in &other.vlans {
            match self.vlans.binary_search_by_key(&id, |v| v.0) {
                Ok(at) => {
                    self.vlans[at].1 += p;
                    self.vlans[at].2 += b;
                }
                Err(at) => self.vlans.insert(at, (id, p, b)),
            }
        }
    }

    /// Packets of one class.
    pub fn packets(&self, proto: Proto) -> u64 {
        self.proto_packets[proto.index()]
    }

    /// Bytes of one class.
    pub fn bytes(&self, proto: Proto) -> u64 {
        self.proto_bytes[proto.index()]
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
    /// Which clock stamps its frames (`None`: read from a file).
    pub timestamps: Option<StampSource>,
    /// Frames the worker took from the RX ring.
    pub received: u64,
    /// Original bytes of those frames.
    pub received_bytes: u64,
    /// Frames written (by the output's writer; counted, without an output).
    pub written: u64,
    /// Original bytes of the frames written.
    pub written_bytes: u64,
    /// Frames received after the count was reached.
    pub over_count: u64,
    /// Frames not written because the output closed, failed or stalled.
    pub sink_closed_drops: u64,
    /// Of those, frames whose write failed (disk full, I/O error).
    pub output_failed: u64,
    /// Times the worker found its RX ring empty.
    pub empty_polls: u64,
    /// Coalescing naps the worker took.
    pub naps: u64,
    /// Waits in poll(2).
    pub waits: u64,
    /// Wake-ups of the kernel for the fill ring.
    pub kicks: u64,
    /// Kernel counters of the socket; `None` when they could not be read
    /// (unknown is never shown as zero).
    pub socket: Option<SocketStats>,
    /// The XDP program's counters for this queue; `None` when unreadable.
    pub bpf: Option<BpfCounters>,
    /// Failed reads of the kernel's and the XDP program's counters so far.
    pub counter_read_errors: u64,
    /// Flows evicted from the worker's flow table.
    pub flow_evictions: u64,
}

impl QueueSnapshot {
    /// Frames lost on this queue, wherever they were lost: socket drops, a
    /// full RX ring, redirects that found no socket, and frames the output
    /// refused. A lower bound when a kernel counter was unreadable (see
    /// [`QueueSnapshot::lost_known`]).
    pub fn lost(&self) -> u64 {
        let socket = self.socket.unwrap_or_default();
        socket.rx_dropped
            + socket.rx_ring_full
            + self.bpf.unwrap_or_default().redirect_failed
            + self.sink_closed_drops
    }

    /// Whether every counter [`QueueSnapshot::lost`] adds was read.
    pub fn lost_known(&self) -> bool {
        self.socket.is_some() && self.bpf.is_some()
    }
}

/// All queues at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When it was taken.
    pub at: Instant,
    /// One entry per captured queue.
    pub queues: Vec<QueueSnapshot>,
    /// Traffic counters summed over the workers.
    pub traffic: TrafficSnapshot,
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

    /// Whether every queue's loss counters were read (else [`Snapshot::lost`]
    /// is a lower bound and is shown as such).
    pub fn lost_known(&self) -> bool {
        self.queues.iter().all(QueueSnapshot::lost_known)
    }

    /// Frames the XDP program dropped for the rate limit, over all queues
    /// (a lower bound when a queue's counters were unreadable).
    pub fn limited(&self) -> u64 {
        self.sum(|q| q.bpf.map_or(0, |b| b.limited))
    }

    /// Failed counter reads over all queues.
    pub fn counter_read_errors(&self) -> u64 {
        self.sum(|q| q.counter_read_errors)
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

/// `v` scaled to a metric prefix (`k`, `M`, `G`, or none below 1,000):
/// `(48.1, "k")` for 48,100. Every rate and count the CLI and the alerts
/// print goes through this one scale.
pub fn metric_prefix(v: f64) -> (f64, &'static str) {
    if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    }
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
            socket: Some(SocketStats {
                rx_ring_full: drop,
                ..Default::default()
            }),
            bpf: Some(BpfCounters::default()),
            ..Default::default()
        };
        let a = Snapshot {
            at: t0,
            queues: vec![q(100, 1000, 1), q(50, 500, 0)],
            traffic: TrafficSnapshot::default(),
        };
        let b = Snapshot {
            at: t0 + Duration::from_secs(2),
            queues: vec![q(300, 3000, 5), q(250, 2500, 0)],
            traffic: TrafficSnapshot::default(),
        };
        let r = b.rates_since(&a);
        assert_eq!(r.packets_per_sec, 200.0);
        assert_eq!(r.bits_per_sec, 16000.0);
        assert_eq!(r.lost_per_sec, 2.0);
        assert_eq!(b.lost(), 5);
    }

    #[test]
    fn size_buckets_follow_rmon_counting_the_fcs() {
        // Captured lengths, without the 4-byte FCS the wire carries.
        assert_eq!(SIZE_LABELS[size_bucket(59)], "<64", "a runt");
        assert_eq!(SIZE_LABELS[size_bucket(60)], "64", "the minimum frame");
        assert_eq!(SIZE_LABELS[size_bucket(61)], "65-127");
        assert_eq!(SIZE_LABELS[size_bucket(123)], "65-127");
        assert_eq!(SIZE_LABELS[size_bucket(124)], "128-255");
        assert_eq!(
            SIZE_LABELS[size_bucket(1514)],
            "1024-1518",
            "the largest untagged frame"
        );
        assert_eq!(
            SIZE_LABELS[size_bucket(1518)],
            ">1518",
            "VLAN-tagged: oversize to RMON"
        );
        assert_eq!(SIZE_LABELS[size_bucket(9000)], ">1518");
        assert_eq!(size_bucket(u32::MAX), 7);
    }

    #[test]
    fn traffic_counts_merge() {
        let frame = |vlan: Option<u16>, len: usize| {
            let mut f = vec![0u8; len];
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            if let Some(id) = vlan {
                f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
                f[14..16].copy_from_slice(&id.to_be_bytes());
                f[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
            }
            crate::parse::parse(&f)
        };
        let a = TrafficCounters::default();
        let b = TrafficCounters::default();
        a.record(&frame(Some(10), 100));
        a.record(&frame(None, 60));
        b.record(&frame(Some(10), 200));
        b.record(&frame(Some(5), 1600));
        let mut s = a.snapshot();
        s.merge(&b.snapshot());
        assert_eq!(s.vlans, vec![(5, 1, 1600), (10, 2, 300)]);
        // All malformed (zeroed IPv4 headers): counted in that class.
        assert_eq!(s.packets(Proto::Malformed), 4);
        assert_eq!(s.bytes(Proto::Malformed), 100 + 60 + 200 + 1600);
        // 60 bytes captured are 64 on the wire.
        assert_eq!(s.sizes, [0, 1, 1, 1, 0, 0, 0, 1]);
    }
}
