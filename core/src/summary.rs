//! The summary schema: what `--summary-json`, `/api/summary`, the dashboard's
//! snapshots and `top --json` carry, as typed structures. The CLI writes
//! them, the benchmark harness and the tests read them back with the same
//! types, so a renamed field breaks the build instead of a reader.
//!
//! Versioned: [`VERSION`] changes when a field changes meaning or goes away;
//! fields are only ever added within a version.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::flows::{FlowStats, Top};
use crate::latency::LatencyStats;
use crate::parse::Proto;
use crate::stats::{QueueSnapshot, Snapshot, TrafficSnapshot, SIZE_LABELS};
use crate::timestamps::StampSource;
use crate::types::AttachedMode;

/// The schema's version.
pub const VERSION: u32 = 1;

/// Packets and bytes of one class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Packets.
    pub packets: u64,
    /// Bytes (frame lengths).
    pub bytes: u64,
}

/// Packets and bytes of one VLAN (the outermost tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlanJson {
    /// VLAN id.
    pub vlan: u16,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// What the workers saw, by protocol class, VLAN and size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficJson {
    /// Per protocol class (`tcp`, `udp`, `icmp`, `icmpv6`, `arp`, `other`, `malformed`).
    pub protocols: BTreeMap<String, Counts>,
    /// Malformed frames (the `malformed` class's packets).
    pub malformed: u64,
    /// Per VLAN id, by id.
    pub vlans: Vec<VlanJson>,
    /// Packets per RMON size bucket, by label (`<64`, `64`, `65-127`, …).
    pub sizes: BTreeMap<String, u64>,
}

impl TrafficJson {
    /// From the summed traffic counters.
    pub fn new(t: &TrafficSnapshot) -> TrafficJson {
        TrafficJson {
            protocols: Proto::ALL
                .iter()
                .map(|&p| {
                    let counts = Counts {
                        packets: t.packets(p),
                        bytes: t.bytes(p),
                    };
                    (p.as_str().to_string(), counts)
                })
                .collect(),
            malformed: t.packets(Proto::Malformed),
            vlans: t
                .vlans
                .iter()
                .map(|&(vlan, packets, bytes)| VlanJson {
                    vlan,
                    packets,
                    bytes,
                })
                .collect(),
            sizes: SIZE_LABELS
                .iter()
                .zip(t.sizes)
                .map(|(l, n)| (l.to_string(), n))
                .collect(),
        }
    }

    /// Packets of the class named `proto` (0 when absent).
    pub fn packets(&self, proto: &str) -> u64 {
        self.protocols.get(proto).map_or(0, |c| c.packets)
    }
}

/// One flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowJson {
    /// Source address.
    pub src: String,
    /// Destination address.
    pub dst: String,
    /// Source port (0 without ports).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// IP protocol number.
    pub proto: u8,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

impl FlowJson {
    fn new(f: &FlowStats) -> FlowJson {
        FlowJson {
            src: f.key.src.to_string(),
            dst: f.key.dst.to_string(),
            sport: f.key.sport,
            dport: f.key.dport,
            proto: f.key.proto,
            packets: f.packets,
            bytes: f.bytes,
        }
    }
}

/// One address's bytes sent and received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TalkerJson {
    /// The address.
    pub addr: String,
    /// Bytes sent.
    pub up_bytes: u64,
    /// Bytes received.
    pub down_bytes: u64,
    /// Packets sent and received.
    pub packets: u64,
}

/// The top-N views.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopJson {
    /// Distinct flows in the tables.
    pub flows: usize,
    /// Flows with the most bytes.
    pub flows_by_bytes: Vec<FlowJson>,
    /// Flows with the most packets.
    pub flows_by_packets: Vec<FlowJson>,
    /// Addresses with the most bytes.
    pub talkers: Vec<TalkerJson>,
}

impl TopJson {
    /// From the merged top-N.
    pub fn new(top: &Top) -> TopJson {
        TopJson {
            flows: top.flows,
            flows_by_bytes: top.flows_by_bytes.iter().map(FlowJson::new).collect(),
            flows_by_packets: top.flows_by_packets.iter().map(FlowJson::new).collect(),
            talkers: top
                .talkers
                .iter()
                .map(|t| TalkerJson {
                    addr: t.addr.to_string(),
                    up_bytes: t.up_bytes,
                    down_bytes: t.down_bytes,
                    packets: t.packets,
                })
                .collect(),
        }
    }
}

/// One-way latency and sequence accounting of generator frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyJson {
    /// Stamped frames seen.
    pub stamped: u64,
    /// Sequence numbers never seen.
    pub missing: u64,
    /// Sequence numbers seen twice.
    pub duplicates: u64,
    /// Sequence numbers that arrived late.
    pub reordered: u64,
    /// Smallest latency.
    pub min_ns: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p99_9_ns: u64,
    /// Largest latency.
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: f64,
}

impl LatencyJson {
    /// From the merged latency accounting.
    pub fn new(l: &LatencyStats) -> LatencyJson {
        LatencyJson {
            stamped: l.stamped,
            missing: l.missing,
            duplicates: l.duplicates,
            reordered: l.reordered,
            min_ns: l.histogram.min(),
            p50_ns: l.quantile_ns(0.5),
            p90_ns: l.quantile_ns(0.9),
            p99_ns: l.quantile_ns(0.99),
            p99_9_ns: l.quantile_ns(0.999),
            max_ns: l.histogram.max(),
            mean_ns: l.histogram.mean(),
        }
    }
}

/// One queue's counters, by where they come from. Kernel and XDP program
/// counters are `null` when they could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueJson {
    /// RX queue.
    pub queue: u32,
    /// The worker's CPU.
    pub core: usize,
    /// `copy` or `zerocopy`.
    pub bind_mode: Option<String>,
    /// `software` or `hardware`: the clock that stamps its frames (`null`
    /// when read from a file).
    #[serde(default)]
    pub timestamps: Option<String>,
    /// Frames written (handed to the output).
    pub packets: u64,
    /// Original bytes of the frames written.
    pub bytes: u64,
    /// Frames taken from the RX ring.
    pub received: u64,
    /// Their bytes.
    pub received_bytes: u64,
    /// Kernel: `XDP_STATISTICS` rx_dropped.
    pub rx_dropped: Option<u64>,
    /// Kernel: RX ring full.
    pub rx_ring_full: Option<u64>,
    /// Kernel: fill ring found empty.
    pub rx_fill_ring_empty_descs: Option<u64>,
    /// Kernel: invalid RX descriptors.
    pub rx_invalid_descs: Option<u64>,
    /// XDP program: frames seen.
    pub xdp_seen: Option<u64>,
    /// XDP program: frames redirected to the socket.
    pub xdp_redirected: Option<u64>,
    /// XDP program: frames of uncaptured queues passed on.
    pub xdp_passed: Option<u64>,
    /// XDP program: redirects that found no socket.
    pub xdp_redirect_failed: Option<u64>,
    /// XDP program: frames the filter did not select.
    pub xdp_filtered_out: Option<u64>,
    /// XDP program: frames stamped by the host because the NIC gave no stamp
    /// (hardware timestamps only).
    #[serde(default)]
    pub hw_stamp_missing: Option<u64>,
    /// XDP program: frames dropped by the rate limit (`--limit-pps`).
    #[serde(default)]
    pub xdp_limited: Option<u64>,
    /// Worker: frames received after `-c` was reached.
    pub over_count: u64,
    /// Worker: frames the closed output refused.
    pub output_closed_drops: u64,
    /// Writer: of those, frames whose write failed (disk full, I/O error).
    #[serde(default)]
    pub output_failed: u64,
    /// Worker: flows evicted from the flow table.
    pub flow_evictions: u64,
    /// Worker: times the RX ring was found empty.
    pub empty_polls: u64,
    /// Worker: coalescing naps.
    pub naps: u64,
    /// Worker: waits in poll(2).
    pub waits: u64,
    /// Worker: fill-ring wake-ups of the kernel.
    pub kicks: u64,
    /// Failed reads of the kernel's or the XDP program's counters.
    pub counter_read_errors: u64,
}

impl QueueJson {
    /// From one queue's snapshot.
    pub fn new(q: &QueueSnapshot) -> QueueJson {
        let s = q.socket;
        let b = q.bpf;
        QueueJson {
            queue: q.queue,
            core: q.core,
            bind_mode: q.bind_mode.map(|m| m.as_str().to_string()),
            timestamps: q.timestamps.map(|t| t.as_str().to_string()),
            packets: q.written,
            bytes: q.written_bytes,
            received: q.received,
            received_bytes: q.received_bytes,
            rx_dropped: s.map(|s| s.rx_dropped),
            rx_ring_full: s.map(|s| s.rx_ring_full),
            rx_fill_ring_empty_descs: s.map(|s| s.rx_fill_ring_empty_descs),
            rx_invalid_descs: s.map(|s| s.rx_invalid_descs),
            xdp_seen: b.map(|b| b.seen),
            xdp_redirected: b.map(|b| b.redirected),
            xdp_passed: b.map(|b| b.passed),
            xdp_redirect_failed: b.map(|b| b.redirect_failed),
            xdp_filtered_out: b.map(|b| b.filtered_out),
            hw_stamp_missing: b
                .filter(|_| q.timestamps == Some(StampSource::Hardware))
                .map(|b| b.hw_stamp_missing),
            xdp_limited: b.map(|b| b.limited),
            over_count: q.over_count,
            output_closed_drops: q.sink_closed_drops,
            output_failed: q.output_failed,
            flow_evictions: q.flow_evictions,
            empty_polls: q.empty_polls,
            naps: q.naps,
            waits: q.waits,
            kicks: q.kicks,
            counter_read_errors: q.counter_read_errors,
        }
    }
}

/// What a capture names itself by in its summary.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    /// The interface.
    pub iface: &'a str,
    /// Where frames went, as shown to the user.
    pub output: &'a str,
    /// The filter expression as given (empty for none).
    pub filter: &'a str,
}

/// A capture's summary: `--summary-json`, `/api/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryJson {
    /// [`VERSION`].
    pub version: u32,
    /// The interface.
    pub interface: String,
    /// Where frames went.
    pub output: String,
    /// The filter expression (empty for none).
    pub filter: String,
    /// Frames written.
    pub packets: u64,
    /// Original bytes of the frames written.
    pub bytes: u64,
    /// Frames received from the RX rings.
    pub received: u64,
    /// Their bytes.
    pub received_bytes: u64,
    /// Frames lost, wherever they were lost (a lower bound when
    /// `lost_known` is false).
    pub lost: u64,
    /// Whether every loss counter could be read.
    pub lost_known: bool,
    /// Failed reads of kernel or XDP program counters.
    pub counter_read_errors: u64,
    /// Seconds from attach to stop (or to now, while running).
    pub duration_s: f64,
    /// `native` or `generic`.
    pub xdp_mode: String,
    /// Whether `-c` was reached.
    pub count_reached: bool,
    /// Protocol, VLAN and size counters.
    #[serde(flatten)]
    pub traffic: TrafficJson,
    /// Top flows and talkers.
    pub top: TopJson,
    /// Latency, when generator frames arrived.
    pub latency: Option<LatencyJson>,
    /// Per-queue counters.
    pub queues: Vec<QueueJson>,
    /// The files written, when the output rotates (`-C`, `-G`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<FilesJson>,
    /// With `--sort-window`: records written out of time order (they
    /// arrived later than the window).
    #[serde(default)]
    pub out_of_order: u64,
    /// `xsktap feed`: every feed and session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feeds: Vec<crate::feed::report::FeedJson>,
    /// The rate limit, when one ran (`--limit-pps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitJson>,
    /// The fleet export, when one ran (`--export-clickhouse`, `--export-ipfix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<crate::fleet::ExportReport>,
    /// How the frames were stamped, and why (a live capture's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamping: Option<StampingJson>,
}

/// How a capture stamped its frames: the clock, whether per frame, where
/// the XDP program carried the stamps, and why it chose so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampingJson {
    /// `software`, `hardware` or `batch` (`-j host_lowprec`).
    pub source: String,
    /// One stamp per frame, taken in the XDP program.
    pub per_frame: bool,
    /// `metadata` (XDP metadata) or `headroom` (prepended to the frame and
    /// stripped: kernels that refuse XDP metadata); `null` for batch stamps.
    pub carried_in: Option<String>,
    /// Why: no hardware clock, metadata refused by the kernel, ...
    pub note: Option<String>,
}

/// The rate limit in a summary: what it was and what it dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitJson {
    /// Packets per second admitted per key.
    pub pps: u64,
    /// `src`, `dst` or `flow`.
    pub by: String,
    /// Whether frames xsktap does not capture were limited too.
    pub all: bool,
    /// Frames dropped, over all queues: exact.
    pub limited: u64,
    /// The keys that lost the most, most first (their counts start when
    /// the key entered the program's map).
    pub top: Vec<LimitedJson>,
    /// False when the program's map could not be read: `top` is then
    /// empty for want of the counts, not for want of drops.
    #[serde(default = "known")]
    pub top_known: bool,
}

fn known() -> bool {
    true
}

/// One key of the rate limit and the frames it lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitedJson {
    /// `src 198.18.0.1`, `dst 2001:2::1`, `flow udp 198.18.0.1:1000 > 198.18.0.2:9`.
    pub key: String,
    /// Frames dropped.
    pub dropped: u64,
}

impl LimitJson {
    /// The limit, the frames it dropped and its top keys (`None`: unreadable).
    pub fn new(
        limit: &crate::limit::RateLimit,
        limited: u64,
        top: Option<&[(crate::limit::LimitKey, u64)]>,
    ) -> LimitJson {
        LimitJson {
            pps: limit.pps,
            by: limit.by.as_str().to_string(),
            all: limit.all,
            limited,
            top_known: top.is_some(),
            top: top
                .unwrap_or_default()
                .iter()
                .map(|(key, dropped)| LimitedJson {
                    key: key.to_string(),
                    dropped: *dropped,
                })
                .collect(),
        }
    }
}

/// One file of a rotating capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileJson {
    /// Its path.
    pub path: String,
    /// Packets in it.
    pub packets: u64,
    /// Its size in bytes, file header included.
    pub bytes: u64,
}

/// The files of a rotating capture: those on disk, what it deleted, and
/// what the `-z` commands took away. `packets` of `files` plus
/// `removed_packets` plus `hooked_packets` equals the summary's `packets`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesJson {
    /// The files still on disk, oldest first.
    pub files: Vec<FileJson>,
    /// Files this capture deleted (a ring's overwritten ones, `--max-disk`).
    pub removed_files: u64,
    /// Packets in them.
    pub removed_packets: u64,
    /// `-z` commands run.
    pub hooks_run: u64,
    /// `-z` commands that failed.
    pub hooks_failed: u64,
    /// Files a `-z` command removed or renamed (not under their name when
    /// the summary was written).
    #[serde(default)]
    pub hooked_files: u64,
    /// Packets in them.
    #[serde(default)]
    pub hooked_packets: u64,
}

/// What a summary is built from.
#[derive(Debug, Clone, Copy)]
pub struct SummaryParts<'a> {
    /// Final (or current) counters.
    pub snapshot: &'a Snapshot,
    /// Top flows and talkers.
    pub top: &'a Top,
    /// Latency accounting, if any stamped frame arrived.
    pub latency: Option<&'a LatencyStats>,
    /// Wall time of the capture.
    pub duration: Duration,
    /// The mode the XDP program ran in.
    pub xdp_mode: AttachedMode,
    /// Whether `-c` was reached.
    pub count_reached: bool,
}

impl SummaryJson {
    /// Builds the summary.
    pub fn new(parts: SummaryParts<'_>, names: Names<'_>) -> SummaryJson {
        let snap = parts.snapshot;
        SummaryJson {
            version: VERSION,
            interface: names.iface.to_string(),
            output: names.output.to_string(),
            filter: names.filter.to_string(),
            packets: snap.written(),
            bytes: snap.written_bytes(),
            received: snap.received(),
            received_bytes: snap.received_bytes(),
            lost: snap.lost(),
            lost_known: snap.lost_known(),
            counter_read_errors: snap.counter_read_errors(),
            duration_s: parts.duration.as_secs_f64(),
            xdp_mode: parts.xdp_mode.as_str().to_string(),
            count_reached: parts.count_reached,
            traffic: TrafficJson::new(&snap.traffic),
            top: TopJson::new(parts.top),
            latency: parts.latency.map(LatencyJson::new),
            queues: snap.queues.iter().map(QueueJson::new).collect(),
            files: None,
            out_of_order: 0,
            feeds: Vec::new(),
            limit: None,
            export: None,
            stamping: None,
        }
    }
}

/// One `top --json` snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopSnapshotJson {
    /// Seconds since the capture started.
    pub elapsed_s: f64,
    /// Frames received so far.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Frames lost so far (a lower bound when `lost_known` is false).
    pub lost: u64,
    /// Whether every loss counter could be read.
    pub lost_known: bool,
    /// Frames per second over the last interval.
    pub packets_per_sec: f64,
    /// Bits per second over the last interval.
    pub bits_per_sec: f64,
    /// Frames lost per second over the last interval.
    pub lost_per_sec: f64,
    /// Protocol, VLAN and size counters.
    #[serde(flatten)]
    pub traffic: TrafficJson,
    /// Top flows and talkers.
    pub top: TopJson,
    /// The rate limit, when one runs (`--limit-pps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitJson>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{QueueSnapshot, Snapshot};
    use crate::types::SocketStats;

    #[test]
    fn a_limit_whose_keys_could_not_be_read_says_so_rather_than_none() {
        use crate::limit::{LimitBy, RateLimit};
        let limit = RateLimit::new(1000, LimitBy::Source, false).unwrap();
        let unknown = LimitJson::new(&limit, 42, None);
        assert_eq!((unknown.limited, unknown.top_known), (42, false));
        assert!(unknown.top.is_empty());
        let none = LimitJson::new(&limit, 0, Some(&[]));
        assert!(none.top_known && none.top.is_empty());
    }

    #[test]
    fn summary_round_trips_and_shows_unknown_counters_as_null() {
        let snapshot = Snapshot {
            at: std::time::Instant::now(),
            queues: vec![
                QueueSnapshot {
                    queue: 0,
                    written: 5,
                    received: 6,
                    socket: Some(SocketStats {
                        rx_ring_full: 1,
                        ..SocketStats::default()
                    }),
                    bpf: Some(Default::default()),
                    ..QueueSnapshot::default()
                },
                QueueSnapshot {
                    queue: 1,
                    counter_read_errors: 3,
                    ..QueueSnapshot::default()
                },
            ],
            traffic: TrafficSnapshot::default(),
        };
        let s = SummaryJson::new(
            SummaryParts {
                snapshot: &snapshot,
                top: &Top::default(),
                latency: None,
                duration: Duration::from_millis(1500),
                xdp_mode: AttachedMode::Native,
                count_reached: false,
            },
            Names {
                iface: "eth1",
                output: "x.pcap",
                filter: "",
            },
        );
        assert_eq!(s.version, VERSION);
        assert_eq!((s.packets, s.received, s.lost), (5, 6, 1));
        assert!(!s.lost_known, "queue 1's counters were never read");
        assert_eq!(s.counter_read_errors, 3);
        let text = serde_json::to_string(&s).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(
            v["queues"][1]["rx_dropped"].is_null(),
            "unknown is null, never 0"
        );
        assert_eq!(v["queues"][0]["rx_ring_full"], 1);
        assert!(v["sizes"].is_object() && v["protocols"]["udp"].is_object());
        let back: SummaryJson = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
