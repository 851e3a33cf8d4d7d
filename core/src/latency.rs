//! One-way latency and sequence accounting for frames stamped by
//! xsktap-bench's generator (`struct xsktap_gen_stamp` in `bpf/xsktap.h`).
//!
//! The generator's XDP program writes the stamp at the start of the UDP
//! payload with `bpf_ktime_get_ns()`; the worker compares it with
//! CLOCK_MONOTONIC when it takes the batch from the RX ring. Each generating
//! CPU is one stream with a dense sequence, so gaps, duplicates and
//! reordering are exact per stream.

use hdrhistogram::Histogram;

use crate::parse::{Packet, Proto};

/// The stamp's magic (`XSKTAP_GEN_MAGIC`, "XT" as a little-endian u16).
pub const MAGIC: u16 = u16::from_le_bytes(*b"XT");
/// Bytes of a stamp (`XSKTAP_GEN_STAMP_LEN`): fits the 18-byte payload of a
/// minimum (60-byte) IPv4/UDP frame.
pub const STAMP_LEN: usize = 16;
/// Offset of the stream number in a stamp (host byte order u16).
pub const STREAM_OFFSET: usize = 2;
/// Offset of the sequence number (host byte order u32).
pub const SEQ_OFFSET: usize = 4;
/// Offset of the transmit time (host byte order u64, CLOCK_MONOTONIC ns).
pub const TS_OFFSET: usize = 8;
// The sys crate checks these against `struct xsktap_gen_stamp` in bpf/xsktap.h.
/// Streams tracked (generating CPUs); stamps from higher CPUs count latency only.
pub const MAX_STREAMS: usize = 64;
/// Sequence numbers remembered behind the newest, to tell duplicates from reordering.
const WINDOW: u32 = 1024;

/// A generator stamp read from a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The generating CPU.
    pub stream: u16,
    /// Sequence number in the stream.
    pub seq: u32,
    /// Transmit time, CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
}

/// Reads the stamp of a generator frame, if `frame` is one. `now_ns` guards
/// against payloads that happen to start with the magic: a stamp from the
/// future or more than ten seconds old is not a stamp.
pub fn read_stamp(frame: &[u8], p: &Packet, now_ns: u64) -> Option<Stamp> {
    if p.proto != Proto::Udp || p.udp_payload == 0 {
        return None;
    }
    stamp_in_payload(frame.get(usize::from(p.udp_payload)..)?, now_ns)
}

/// Reads a generator stamp at the start of a UDP payload (for receivers
/// that get payloads, such as a UDP socket), with the same checks as [`read_stamp`].
pub fn stamp_in_payload(payload: &[u8], now_ns: u64) -> Option<Stamp> {
    let b = payload.get(..STAMP_LEN)?;
    if u16::from_le_bytes([b[0], b[1]]) != MAGIC {
        return None;
    }
    let field = |off: usize, len: usize| &b[off..off + len];
    let stamp = Stamp {
        stream: u16::from_ne_bytes(field(STREAM_OFFSET, 2).try_into().ok()?),
        seq: u32::from_ne_bytes(field(SEQ_OFFSET, 4).try_into().ok()?),
        ts_ns: u64::from_ne_bytes(field(TS_OFFSET, 8).try_into().ok()?),
    };
    (stamp.ts_ns <= now_ns && now_ns - stamp.ts_ns < 10_000_000_000).then_some(stamp)
}

/// What a sequence number was, relative to those before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqEvent {
    /// The next one expected, or the first.
    InOrder,
    /// Ahead of the next expected: this many are missing (so far).
    Gap(u32),
    /// Seen before.
    Duplicate,
    /// Behind the newest but not seen before: it arrived late.
    Reordered,
}

/// Sequence state of one stream.
#[derive(Debug, Clone)]
pub struct SeqTracker {
    next: u32,
    started: bool,
    seen: Box<[u64; (WINDOW / 64) as usize]>,
}

impl Default for SeqTracker {
    fn default() -> Self {
        SeqTracker {
            next: 0,
            started: false,
            seen: Box::new([0; (WINDOW / 64) as usize]),
        }
    }
}

impl SeqTracker {
    fn bit(&mut self, seq: u32) -> (&mut u64, u64) {
        let i = seq % WINDOW;
        (&mut self.seen[(i / 64) as usize], 1u64 << (i % 64))
    }

    /// Takes one sequence number (wrapping arithmetic throughout).
    pub fn record(&mut self, seq: u32) -> SeqEvent {
        if !self.started {
            self.started = true;
            self.next = seq.wrapping_add(1);
            let (w, b) = self.bit(seq);
            *w |= b;
            return SeqEvent::InOrder;
        }
        let ahead = seq.wrapping_sub(self.next) as i32;
        if ahead >= 0 {
            // Forget the slots the window moves over, then mark this one.
            let steps = (ahead as u32).saturating_add(1).min(WINDOW);
            for k in 0..steps {
                let (w, b) = self.bit(seq.wrapping_sub(k));
                *w &= !b;
            }
            let (w, b) = self.bit(seq);
            *w |= b;
            self.next = seq.wrapping_add(1);
            return if ahead == 0 {
                SeqEvent::InOrder
            } else {
                SeqEvent::Gap(ahead as u32)
            };
        }
        let behind = self.next.wrapping_sub(1).wrapping_sub(seq);
        if behind >= WINDOW {
            return SeqEvent::Reordered;
        }
        let (w, b) = self.bit(seq);
        if *w & b != 0 {
            SeqEvent::Duplicate
        } else {
            *w |= b;
            SeqEvent::Reordered
        }
    }
}

/// Latency histogram and sequence counters of one worker (or merged).
#[derive(Debug, Clone)]
pub struct LatencyStats {
    /// One-way latency in nanoseconds.
    pub histogram: Histogram<u64>,
    /// Stamped frames received.
    pub stamped: u64,
    /// Sequence numbers missing (lost between generator and worker); late
    /// arrivals are taken back out.
    pub missing: u64,
    /// Frames received twice.
    pub duplicates: u64,
    /// Frames that arrived after a later one.
    pub reordered: u64,
    streams: Vec<SeqTracker>,
}

impl Default for LatencyStats {
    fn default() -> Self {
        LatencyStats {
            histogram: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .expect("valid histogram bounds"),
            stamped: 0,
            missing: 0,
            duplicates: 0,
            reordered: 0,
            streams: (0..MAX_STREAMS).map(|_| SeqTracker::default()).collect(),
        }
    }
}

impl LatencyStats {
    /// Records one stamped frame received at `now_ns`. Allocates nothing.
    #[inline]
    pub fn record(&mut self, stamp: Stamp, now_ns: u64) {
        self.stamped += 1;
        self.histogram
            .saturating_record(now_ns.saturating_sub(stamp.ts_ns).max(1));
        if let Some(t) = self.streams.get_mut(usize::from(stamp.stream)) {
            match t.record(stamp.seq) {
                SeqEvent::InOrder => {}
                SeqEvent::Gap(n) => self.missing += u64::from(n),
                SeqEvent::Duplicate => self.duplicates += 1,
                SeqEvent::Reordered => {
                    self.reordered += 1;
                    self.missing = self.missing.saturating_sub(1);
                }
            }
        }
    }

    /// Adds another worker's numbers (histograms and counters; each stream
    /// is seen by one worker).
    pub fn merge(&mut self, other: &LatencyStats) {
        let _ = self.histogram.add(&other.histogram);
        self.stamped += other.stamped;
        self.missing += other.missing;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
    }

    /// Overwrites `out`'s histogram and counters with these (not the
    /// per-stream state, which only the owning worker needs). Allocates
    /// nothing: both histograms have the same bounds.
    pub fn copy_totals_into(&self, out: &mut LatencyStats) {
        out.histogram.reset();
        let _ = out.histogram.add(&self.histogram);
        out.stamped = self.stamped;
        out.missing = self.missing;
        out.duplicates = self.duplicates;
        out.reordered = self.reordered;
    }

    /// The latency at quantile `q` (0.0..=1.0), in nanoseconds.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        self.histogram.value_at_quantile(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_in_order_gaps_late_and_duplicates() {
        let mut t = SeqTracker::default();
        assert_eq!(t.record(10), SeqEvent::InOrder);
        assert_eq!(t.record(11), SeqEvent::InOrder);
        assert_eq!(t.record(14), SeqEvent::Gap(2));
        assert_eq!(t.record(12), SeqEvent::Reordered);
        assert_eq!(t.record(12), SeqEvent::Duplicate);
        assert_eq!(t.record(14), SeqEvent::Duplicate);
        assert_eq!(t.record(15), SeqEvent::InOrder);
        assert_eq!(t.record(13), SeqEvent::Reordered);
        // Far behind the window: late, cannot be a known duplicate.
        assert_eq!(t.record(3000), SeqEvent::Gap(3000 - 16));
        assert_eq!(t.record(100), SeqEvent::Reordered);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut t = SeqTracker::default();
        assert_eq!(t.record(u32::MAX - 1), SeqEvent::InOrder);
        assert_eq!(t.record(u32::MAX), SeqEvent::InOrder);
        assert_eq!(t.record(0), SeqEvent::InOrder);
        assert_eq!(t.record(2), SeqEvent::Gap(1));
        assert_eq!(t.record(1), SeqEvent::Reordered);
        assert_eq!(t.record(u32::MAX), SeqEvent::Duplicate);
    }

    #[test]
    fn stats_count_missing_net_of_late_frames() {
        let mut s = LatencyStats::default();
        let st = |stream, seq, ts| Stamp {
            stream,
            seq,
            ts_ns: ts,
        };
        for (stream, seq) in [(0, 0), (0, 1), (0, 4), (0, 2), (1, 0), (1, 1), (1, 1)] {
            s.record(st(stream, seq, 1_000), 1_000 + 5_000);
        }
        assert_eq!(s.stamped, 7);
        assert_eq!(s.missing, 1, "seq 3 of stream 0");
        assert_eq!(s.reordered, 1);
        assert_eq!(s.duplicates, 1);
        assert!((4_950..=5_050).contains(&s.quantile_ns(0.5)));
        let mut other = LatencyStats::default();
        other.record(st(2, 0, 0), 1_000_000);
        s.merge(&other);
        assert_eq!(s.stamped, 8);
        assert!(s.quantile_ns(1.0) >= 990_000);
    }

    #[test]
    fn stamps_are_recognised_only_in_udp_payloads() {
        let mut f = vec![0u8; 60];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&46u16.to_be_bytes());
        f[23] = 17;
        f[38..40].copy_from_slice(&26u16.to_be_bytes());
        f[42..44].copy_from_slice(b"XT");
        f[44..46].copy_from_slice(&3u16.to_ne_bytes());
        f[46..50].copy_from_slice(&77u32.to_ne_bytes());
        f[50..58].copy_from_slice(&5_000u64.to_ne_bytes());
        let p = crate::parse::parse(&f);
        assert_eq!(p.udp_payload, 42);
        assert_eq!(
            read_stamp(&f, &p, 9_000),
            Some(Stamp {
                stream: 3,
                seq: 77,
                ts_ns: 5_000
            })
        );
        assert_eq!(read_stamp(&f, &p, 4_000), None, "from the future");
        f[42] = b'Y';
        assert_eq!(read_stamp(&f, &p, 9_000), None);
    }
}
