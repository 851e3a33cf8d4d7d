//! A bounded per-worker flow table (5-tuple → packets, bytes) and the top-N
//! views built from it, and the flow records it exports.
//!
//! Open addressing with a short linear probe: a full probe window evicts its
//! smallest flow (by packets) and counts the eviction, so memory never grows.
//! The worker owns the table; once a second it copies the used slots into a
//! buffer the reporter swaps out without ever making the worker wait.
//!
//! With export on ([`FlowTable::with_export`]), every packet a flow counts
//! leaves the table in exactly one [`FlowRecord`]: when the flow has been
//! active for the active timeout (the record holds what came since the last
//! one), when it has been idle for the idle timeout (the flow is removed),
//! when it is evicted, and at the end ([`FlowTable::drain`]). Summed over a
//! capture, the records' packets are the packets the table counted, and
//! records the worker could not hand on are counted, never silently lost.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::parse::Packet;

/// Slots probed before evicting.
const PROBE: usize = 8;
/// Expired records a table holds before it counts more as dropped (the
/// worker hands them on twice a second).
pub const EXPIRED_MAX: usize = 1 << 17;
/// Times the expiry scan runs per pass over the table (one pass a second).
pub const EXPIRY_STEPS: u64 = 64;

/// A flow: addresses, ports (0 when absent) and protocol number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port, 0 without ports.
    pub sport: u16,
    /// Destination port, 0 without ports.
    pub dport: u16,
    /// IP protocol number.
    pub proto: u8,
}

impl FlowKey {
    /// The flow of an IP packet; `None` for frames without an IP header.
    pub fn of(p: &Packet) -> Option<FlowKey> {
        Some(FlowKey {
            src: p.src?,
            dst: p.dst?,
            sport: p.sport.unwrap_or(0),
            dport: p.dport.unwrap_or(0),
            proto: p.ip_proto.unwrap_or(0),
        })
    }

    /// A fast, well-mixed hash (multiply-xorshift over the key's words).
    /// std's SipHash would cost more than the rest of the per-packet work.
    fn hash(&self) -> u64 {
        fn words(a: IpAddr) -> (u64, u64) {
            match a {
                IpAddr::V4(v) => (u64::from(u32::from(v)), 4),
                IpAddr::V6(v) => {
                    let x = u128::from(v);
                    ((x >> 64) as u64, x as u64)
                }
            }
        }
        let (a, b) = words(self.src);
        let (c, d) = words(self.dst);
        let e = u64::from(self.sport) << 24 | u64::from(self.dport) << 8 | u64::from(self.proto);
        let mut h = 0x9e37_79b9_7f4a_7c15u64;
        for w in [a, b, c, d, e] {
            h = (h ^ w).wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 32;
        }
        h
    }
}

/// One flow's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowStats {
    /// The flow.
    pub key: FlowKey,
    /// Packets seen.
    pub packets: u64,
    /// Bytes seen (frame lengths).
    pub bytes: u64,
    /// TCP packets with SYN and without ACK (connection attempts).
    pub syns: u32,
    /// TCP packets with ACK.
    pub acks: u32,
}

impl FlowStats {
    /// A flow's entry after its first packet: `len` bytes with TCP flags
    /// `tcp_flags`.
    fn new(key: FlowKey, len: u64, tcp_flags: Option<u8>) -> FlowStats {
        let (syns, acks) = handshake(tcp_flags);
        FlowStats {
            key,
            packets: 1,
            bytes: len,
            syns,
            acks,
        }
    }
}

/// What an exporting table keeps per slot beside the counters (in an array
/// of its own, so that a table that does not export keeps its 64-byte
/// slots: one cache line a flow).
#[derive(Debug, Clone, Copy, Default)]
struct Since {
    /// Wall-clock time (ns) of the first packet since the last record; 0
    /// when none came since.
    first_ns: u64,
    /// Wall-clock time (ns) of the last packet.
    last_ns: u64,
    /// Packets and bytes already exported in records.
    exported_packets: u64,
    exported_bytes: u64,
    /// Outermost VLAN id of the flow's first packet (0: untagged).
    vlan: u16,
    /// TCP flags of the packets since the last record, ORed.
    tcp_flags: u8,
}

impl Since {
    fn new(vlan: u16, tcp_flags: Option<u8>, now_ns: u64) -> Since {
        Since {
            first_ns: now_ns,
            last_ns: now_ns,
            exported_packets: 0,
            exported_bytes: 0,
            vlan,
            tcp_flags: tcp_flags.unwrap_or(0),
        }
    }

    #[inline(always)]
    fn touch(&mut self, tcp_flags: Option<u8>, now_ns: u64) {
        self.tcp_flags |= tcp_flags.unwrap_or(0);
        if self.first_ns == 0 {
            self.first_ns = now_ns;
        }
        self.last_ns = now_ns;
    }

    /// What flow `f` counted since the last record, as a record (`None`
    /// when nothing came), marked exported.
    fn take_record(&mut self, f: &FlowStats) -> Option<FlowRecord> {
        let packets = f.packets - self.exported_packets;
        if packets == 0 {
            return None;
        }
        let record = FlowRecord {
            src: f.key.src,
            dst: f.key.dst,
            sport: f.key.sport,
            dport: f.key.dport,
            proto: f.key.proto,
            tcp_flags: u16::from(self.tcp_flags),
            vlan: self.vlan,
            packets,
            bytes: f.bytes - self.exported_bytes,
            start_ms: self.first_ns / 1_000_000,
            end_ms: self.last_ns / 1_000_000,
        };
        self.exported_packets = f.packets;
        self.exported_bytes = f.bytes;
        self.first_ns = 0;
        self.tcp_flags = 0;
        Some(record)
    }
}

/// One flow's counts over an interval, as exported (ClickHouse rows, IPFIX
/// data records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowRecord {
    /// Source address.
    pub src: IpAddr,
    /// Destination address (the same family as `src`; a record whose
    /// families differ is written with IPv6 addresses, IPv4 ones mapped).
    pub dst: IpAddr,
    /// Source port (0 without ports).
    pub sport: u16,
    /// Destination port (0 without ports).
    pub dport: u16,
    /// IP protocol.
    pub proto: u8,
    /// TCP flags seen in the interval, ORed (0 for other protocols).
    pub tcp_flags: u16,
    /// Outermost VLAN id (0: untagged).
    pub vlan: u16,
    /// Packets in the interval.
    pub packets: u64,
    /// Bytes in the interval.
    pub bytes: u64,
    /// First packet of the interval, ms since the Unix epoch.
    pub start_ms: u64,
    /// Last packet of the interval, ms since the Unix epoch.
    pub end_ms: u64,
}

/// When flows are exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportTimeouts {
    /// A flow still active is exported this long after its last record's
    /// first packet (what came since).
    pub active: Duration,
    /// A flow silent this long is exported and removed.
    pub idle: Duration,
}

/// Default active timeout, seconds (`--export-active-timeout`).
pub const DEFAULT_ACTIVE_SECS: u32 = 10;
/// Default idle timeout, seconds (`--export-idle-timeout`).
pub const DEFAULT_IDLE_SECS: u32 = 15;

impl Default for ExportTimeouts {
    fn default() -> Self {
        ExportTimeouts {
            active: Duration::from_secs(u64::from(DEFAULT_ACTIVE_SECS)),
            idle: Duration::from_secs(u64::from(DEFAULT_IDLE_SECS)),
        }
    }
}

/// The table's export state: timeouts, the expiry scan's place, and the
/// records waiting for the worker to hand them on.
#[derive(Debug)]
struct Export {
    active_ns: u64,
    idle_ns: u64,
    cursor: usize,
    /// Per slot, beside the table's slots.
    since: Box<[Since]>,
    expired: Vec<FlowRecord>,
    dropped: Dropped,
}

/// Records, and the packets in them, that could not be exported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Flow records.
    pub records: u64,
    /// Packets they held.
    pub packets: u64,
}

impl Dropped {
    /// Counts `records` as dropped.
    pub fn add(&mut self, records: &[FlowRecord]) {
        self.records += records.len() as u64;
        self.packets += records.iter().map(|r| r.packets).sum::<u64>();
    }
}

impl Export {
    fn push(&mut self, record: Option<FlowRecord>) {
        hand_on(&mut self.expired, &mut self.dropped, record);
    }
}

/// Keeps `record` for the worker to hand on, or counts it when
/// [`EXPIRED_MAX`] already wait.
fn hand_on(expired: &mut Vec<FlowRecord>, dropped: &mut Dropped, record: Option<FlowRecord>) {
    let Some(r) = record else { return };
    if expired.len() < EXPIRED_MAX {
        expired.push(r);
    } else {
        dropped.add(&[r]);
    }
}

/// (SYN without ACK, ACK) of a packet with TCP flags `flags`.
#[inline(always)]
fn handshake(flags: Option<u8>) -> (u32, u32) {
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    match flags {
        Some(f) => (u32::from(f & (SYN | ACK) == SYN), u32::from(f & ACK != 0)),
        None => (0, 0),
    }
}

/// One slot of the table, on a cache line of its own: a lookup that finds
/// its flow at home reads one line (with the allocator's 16-byte alignment,
/// every 64-byte slot straddled two).
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct Slot(Option<FlowStats>);

/// The worker's table.
#[derive(Debug)]
pub struct FlowTable {
    slots: Box<[Slot]>,
    mask: usize,
    evictions: u64,
    export: Option<Box<Export>>,
}

impl FlowTable {
    /// A table of `capacity` slots (rounded up to a power of two, at least 16).
    pub fn new(capacity: usize) -> Self {
        let size = capacity.max(16).next_power_of_two();
        FlowTable {
            slots: vec![Slot::default(); size].into_boxed_slice(),
            mask: size - 1,
            evictions: 0,
            export: None,
        }
    }

    /// A table that exports its flows (see the module's documentation).
    pub fn with_export(capacity: usize, timeouts: ExportTimeouts) -> Self {
        let mut table = FlowTable::new(capacity);
        table.export = Some(Box::new(Export {
            active_ns: timeouts.active.as_nanos() as u64,
            idle_ns: timeouts.idle.as_nanos() as u64,
            cursor: 0,
            since: vec![Since::default(); table.slots.len()].into_boxed_slice(),
            expired: Vec::new(),
            dropped: Dropped::default(),
        }));
        table
    }

    /// Adds one packet of `len` bytes with TCP flags `tcp_flags`, outermost
    /// VLAN `vlan` (0: none), seen at `now_ns` (wall clock), to its flow.
    #[inline]
    pub fn record(
        &mut self,
        key: FlowKey,
        len: u64,
        tcp_flags: Option<u8>,
        vlan: u16,
        now_ns: u64,
    ) {
        let start = key.hash() as usize;
        let mut victim = start & self.mask;
        let mut victim_packets = u64::MAX;
        for i in 0..PROBE {
            let at = (start + i) & self.mask;
            match &mut self.slots[at].0 {
                Some(f) if f.key == key => {
                    let (syns, acks) = handshake(tcp_flags);
                    f.packets += 1;
                    f.bytes += len;
                    f.syns = f.syns.saturating_add(syns);
                    f.acks = f.acks.saturating_add(acks);
                    if let Some(e) = &mut self.export {
                        e.since[at].touch(tcp_flags, now_ns);
                    }
                    return;
                }
                Some(f) => {
                    if f.packets < victim_packets {
                        victim_packets = f.packets;
                        victim = at;
                    }
                }
                None => {
                    self.slots[at].0 = Some(FlowStats::new(key, len, tcp_flags));
                    if let Some(e) = &mut self.export {
                        e.since[at] = Since::new(vlan, tcp_flags, now_ns);
                    }
                    return;
                }
            }
        }
        self.evictions += 1;
        let old = self.slots[victim]
            .0
            .replace(FlowStats::new(key, len, tcp_flags));
        if let Some(e) = &mut self.export {
            if let Some(old) = old {
                let record = e.since[victim].take_record(&old);
                e.push(record);
            }
            e.since[victim] = Since::new(vlan, tcp_flags, now_ns);
        }
    }

    /// Flows evicted to make room so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Copies the used slots into `out` (cleared first; no allocation once
    /// `out` has grown to the table's size).
    pub fn copy_into(&self, out: &mut Vec<FlowStats>) {
        out.clear();
        out.extend(self.slots.iter().filter_map(|s| s.0));
    }

    /// Appends the used slots of the next of `slices` slices of the table
    /// to `out`, from `*at` (cleared first at slot 0); returns `true` when
    /// the pass is complete (`out` holds the whole table, each slice as it
    /// was when copied) and starts the next pass.
    pub fn copy_slice(&self, out: &mut Vec<FlowStats>, at: &mut usize, slices: usize) -> bool {
        let size = self.slots.len();
        if *at == 0 {
            out.clear();
        }
        let end = (*at + size.div_ceil(slices.max(1))).min(size);
        out.extend(self.slots[*at..end].iter().filter_map(|s| s.0));
        if end == size {
            *at = 0;
            return true;
        }
        *at = end;
        false
    }

    /// One step of the expiry scan at `now_ns` (wall clock): looks at the
    /// next 1/[`EXPIRY_STEPS`] of the slots, exporting the flows active past
    /// the active timeout and removing those idle past the idle timeout.
    /// Called [`EXPIRY_STEPS`] times a second, it passes over the whole table
    /// each second without ever stalling the worker on a large one.
    pub fn expire_step(&mut self, now_ns: u64) {
        let Some(mut export) = self.export.take() else {
            return;
        };
        let size = self.slots.len();
        let step = size.div_ceil(EXPIRY_STEPS as usize);
        let mut at = export.cursor;
        let end = at + step;
        while at < end.min(size) {
            let Some(f) = &self.slots[at].0 else {
                at += 1;
                continue;
            };
            let since = &mut export.since[at];
            if now_ns.saturating_sub(since.last_ns) >= export.idle_ns {
                let record = since.take_record(f);
                export.push(record);
                remove(&mut self.slots, &mut export.since, self.mask, at);
                // The slot now holds a flow shifted back into it (or none): look again.
                continue;
            }
            if since.first_ns != 0 && now_ns.saturating_sub(since.first_ns) >= export.active_ns {
                let record = since.take_record(f);
                export.push(record);
            }
            at += 1;
        }
        export.cursor = if at >= size { 0 } else { at };
        self.export = Some(export);
    }

    /// At the end: exports what every flow holds since its last record.
    pub fn drain(&mut self) {
        let Some(export) = self.export.as_mut() else {
            return;
        };
        let Export {
            since,
            expired,
            dropped,
            ..
        } = &mut **export;
        for (slot, since) in self.slots.iter().zip(since.iter_mut()) {
            if let Some(f) = &slot.0 {
                hand_on(expired, dropped, since.take_record(f));
            }
        }
    }

    /// Hands the records waiting for export to `out` (swapped: `out`'s
    /// old buffer, cleared, becomes the table's).
    pub fn take_expired(&mut self, out: &mut Vec<FlowRecord>) {
        if let Some(export) = self.export.as_mut() {
            out.clear();
            std::mem::swap(&mut export.expired, out);
        }
    }

    /// Records the table could not hold for export (more than
    /// [`EXPIRED_MAX`] waiting).
    pub fn export_dropped(&self) -> Dropped {
        self.export.as_ref().map(|e| e.dropped).unwrap_or_default()
    }
}

/// Empties slot `at` and shifts back the flows after it (with their export
/// state) that probing would otherwise no longer find (linear probing's
/// backward-shift deletion: a lookup stops at the first empty slot).
fn remove(slots: &mut [Slot], since: &mut [Since], mask: usize, mut at: usize) {
    slots[at].0 = None;
    let mut next = (at + 1) & mask;
    while let Some(f) = &slots[next].0 {
        let home = f.key.hash() as usize & mask;
        // Move `f` back when its home is not in (at, next].
        let dist_home = next.wrapping_sub(home) & mask;
        let dist_hole = next.wrapping_sub(at) & mask;
        if dist_hole >= PROBE {
            // Every flow lies within PROBE slots of its home: none
            // further on can belong in the hole.
            break;
        }
        if dist_home >= dist_hole {
            slots[at].0 = slots[next].0.take();
            since[at] = since[next];
            at = next;
        }
        next = (next + 1) & mask;
    }
}

/// Flow records of one queue, on their way to the exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowBatch {
    /// The RX queue whose worker exported them.
    pub queue: u32,
    /// The records.
    pub records: Vec<FlowRecord>,
}

/// Where workers hand their flow records: the exporter's bounded queue.
/// Handing on never waits while capturing; a full queue drops the batch
/// and counts it.
#[derive(Debug, Clone)]
pub struct FlowOut {
    tx: crossbeam_channel::Sender<FlowBatch>,
    dropped: Arc<Mutex<Dropped>>,
}

impl FlowOut {
    /// A queue of `batches` batches and its receiving end.
    pub fn bounded(batches: usize) -> (FlowOut, crossbeam_channel::Receiver<FlowBatch>) {
        let (tx, rx) = crossbeam_channel::bounded(batches);
        let out = FlowOut {
            tx,
            dropped: Arc::default(),
        };
        (out, rx)
    }

    /// Worker side, while capturing: hands `records` on without waiting,
    /// counting them as dropped when the queue is full (or the exporter is
    /// gone). `records` comes back empty.
    pub fn offer(&self, queue: u32, records: &mut Vec<FlowRecord>) {
        if records.is_empty() {
            return;
        }
        let records = std::mem::take(records);
        if let Err(e) = self.tx.try_send(FlowBatch { queue, records }) {
            self.count_dropped(&e.into_inner().records);
        }
    }

    /// Worker side, at the end: hands `records` on, waiting for room.
    pub fn finish(&self, queue: u32, records: Vec<FlowRecord>) {
        if records.is_empty() {
            return;
        }
        if let Err(e) = self.tx.send(FlowBatch { queue, records }) {
            self.count_dropped(&e.into_inner().records);
        }
    }

    /// Adds records dropped before reaching the queue (a table's overflow).
    pub fn add_dropped(&self, d: Dropped) {
        if let Ok(mut total) = self.dropped.lock() {
            total.records += d.records;
            total.packets += d.packets;
        }
    }

    fn count_dropped(&self, records: &[FlowRecord]) {
        let mut d = Dropped::default();
        d.add(records);
        self.add_dropped(d);
    }

    /// Records dropped so far, with their packets.
    pub fn dropped(&self) -> Dropped {
        self.dropped.lock().map(|d| *d).unwrap_or_default()
    }
}

/// What a capture's workers need to export flows: where the records go,
/// and when flows are exported.
#[derive(Debug, Clone)]
pub struct FlowExport {
    /// The exporter's queue.
    pub out: FlowOut,
    /// The active and idle timeouts.
    pub timeouts: ExportTimeouts,
}

/// Where a worker publishes copies of its table for the reporter.
#[derive(Debug, Default)]
pub struct FlowExchange {
    published: Mutex<Vec<FlowStats>>,
    /// Evictions in the worker's table.
    pub evictions: AtomicU64,
}

impl FlowExchange {
    /// Worker side: swaps `fresh` in if the reporter is not reading right now
    /// (never waits); `fresh` comes back holding the older buffer.
    pub fn offer(&self, fresh: &mut Vec<FlowStats>, evictions: u64) -> bool {
        self.evictions.store(evictions, Ordering::Relaxed);
        match self.published.try_lock() {
            Ok(mut slot) => {
                std::mem::swap(&mut *slot, fresh);
                true
            }
            Err(_) => false,
        }
    }

    /// Worker side, at exit: publishes `last`, waiting for the reporter if needed.
    pub fn publish_final(&self, last: &mut Vec<FlowStats>, evictions: u64) {
        self.evictions.store(evictions, Ordering::Relaxed);
        if let Ok(mut slot) = self.published.lock() {
            std::mem::swap(&mut *slot, last);
        }
    }

    /// Reporter side: a copy of the latest published flows.
    pub fn latest(&self) -> Vec<FlowStats> {
        self.published.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// Bytes an address sent (up) and received (down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Talker {
    /// The address.
    pub addr: IpAddr,
    /// Bytes sent, as a source.
    pub up_bytes: u64,
    /// Bytes received, as a destination.
    pub down_bytes: u64,
    /// Packets sent and received.
    pub packets: u64,
}

/// The top-N views over flows from any number of workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Top {
    /// Flows with the most bytes, largest first.
    pub flows_by_bytes: Vec<FlowStats>,
    /// Flows with the most packets, largest first.
    pub flows_by_packets: Vec<FlowStats>,
    /// Addresses with the most bytes (up + down), largest first.
    pub talkers: Vec<Talker>,
    /// Distinct flows in the tables.
    pub flows: usize,
}

impl Top {
    /// Builds the top `n` of every view from `flows` (a flow seen by several
    /// workers is summed). Ties are broken by key, so the order is stable.
    pub fn build(flows: impl IntoIterator<Item = FlowStats>, n: usize) -> Top {
        let mut merged: HashMap<FlowKey, FlowStats> = HashMap::new();
        for f in flows {
            merged
                .entry(f.key)
                .and_modify(|m| {
                    m.packets += f.packets;
                    m.bytes += f.bytes;
                    m.syns = m.syns.saturating_add(f.syns);
                    m.acks = m.acks.saturating_add(f.acks);
                })
                .or_insert(f);
        }
        let all: Vec<FlowStats> = merged.into_values().collect();
        let mut by_bytes = all.clone();
        by_bytes.sort_by_key(|f| (Reverse(f.bytes), Reverse(f.packets), f.key));
        by_bytes.truncate(n);
        let mut by_packets = all.clone();
        by_packets.sort_by_key(|f| (Reverse(f.packets), Reverse(f.bytes), f.key));
        by_packets.truncate(n);
        let mut talkers: HashMap<IpAddr, Talker> = HashMap::new();
        for f in &all {
            let mut add = |addr: IpAddr, up: u64, down: u64| {
                let t = talkers.entry(addr).or_insert(Talker {
                    addr,
                    up_bytes: 0,
                    down_bytes: 0,
                    packets: 0,
                });
                t.up_bytes += up;
                t.down_bytes += down;
                t.packets += f.packets;
            };
            add(f.key.src, f.bytes, 0);
            add(f.key.dst, 0, f.bytes);
        }
        let mut talkers: Vec<Talker> = talkers.into_values().collect();
        talkers.sort_by_key(|t| (Reverse(t.up_bytes + t.down_bytes), t.addr));
        talkers.truncate(n);
        Top {
            flows_by_bytes: by_bytes,
            flows_by_packets: by_packets,
            talkers,
            flows: all.len(),
        }
    }
}

#[cfg(test)]
mod handshake_tests {
    use super::*;

    #[test]
    fn syns_count_only_connection_attempts_and_acks_every_ack() {
        assert_eq!(handshake(Some(0x02)), (1, 0)); // SYN
        assert_eq!(handshake(Some(0x12)), (0, 1)); // SYN-ACK
        assert_eq!(handshake(Some(0x10)), (0, 1)); // ACK
        assert_eq!(handshake(Some(0x18)), (0, 1)); // PSH-ACK
        assert_eq!(handshake(Some(0x04)), (0, 0)); // RST
        assert_eq!(handshake(None), (0, 0));
        let mut t = FlowTable::new(16);
        let k = FlowKey {
            src: "198.18.0.1".parse().unwrap(),
            dst: "198.18.0.2".parse().unwrap(),
            sport: 40000,
            dport: 80,
            proto: 6,
        };
        for flags in [0x02, 0x10, 0x18, 0x11] {
            t.record(k, 60, Some(flags), 0, 1);
        }
        let mut out = Vec::new();
        t.copy_into(&mut out);
        assert_eq!((out[0].syns, out[0].acks, out[0].packets), (1, 3, 4));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(key: FlowKey, packets: u64, bytes: u64) -> FlowStats {
        FlowStats {
            key,
            packets,
            bytes,
            syns: 0,
            acks: 0,
        }
    }

    fn key(i: u32, port: u16) -> FlowKey {
        FlowKey {
            src: IpAddr::V4((0xc613_0000 + i).into()),
            dst: "198.18.0.2".parse().unwrap(),
            sport: port,
            dport: 53,
            proto: 17,
        }
    }

    #[test]
    fn counts_per_flow() {
        let mut t = FlowTable::new(64);
        for _ in 0..5 {
            t.record(key(1, 1000), 100, None, 0, 1);
        }
        t.record(key(2, 1000), 1500, None, 0, 1);
        let mut out = Vec::new();
        t.copy_into(&mut out);
        out.sort_by_key(|f| f.key);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].packets, out[0].bytes), (5, 500));
        assert_eq!((out[1].packets, out[1].bytes), (1, 1500));
        assert_eq!(t.evictions(), 0);
    }

    #[test]
    fn a_full_table_evicts_and_counts_without_growing() {
        let mut t = FlowTable::new(16);
        // One big flow first, then many one-packet flows.
        for _ in 0..1000 {
            t.record(key(0, 1), 64, None, 0, 1);
        }
        for i in 1..=200 {
            t.record(key(i, 2), 64, None, 0, 1);
        }
        let mut out = Vec::new();
        t.copy_into(&mut out);
        assert!(out.len() <= 16, "bounded: {}", out.len());
        assert!(
            t.evictions() >= 200 - 16,
            "evictions counted: {}",
            t.evictions()
        );
        assert!(
            out.iter().any(|f| f.key == key(0, 1) && f.packets == 1000),
            "the smallest flow is evicted, never the big one"
        );
    }

    const S: u64 = 1_000_000_000;

    fn exporting(capacity: usize) -> FlowTable {
        FlowTable::with_export(
            capacity,
            ExportTimeouts {
                active: Duration::from_secs(10),
                idle: Duration::from_secs(3),
            },
        )
    }

    /// Runs the expiry scan over the whole table at `now_ns`.
    fn expire_all(t: &mut FlowTable, now_ns: u64) {
        for _ in 0..EXPIRY_STEPS {
            t.expire_step(now_ns);
        }
    }

    fn taken(t: &mut FlowTable) -> Vec<FlowRecord> {
        let mut out = Vec::new();
        t.take_expired(&mut out);
        out
    }

    #[test]
    fn an_active_flow_is_exported_per_active_timeout_and_the_rest_at_the_end() {
        let mut t = exporting(64);
        // 25 s of one packet a second, flags ORed per record.
        for s in 0..25u64 {
            let flags = if s == 0 { 0x02 } else { 0x10 };
            t.record(key(1, 1), 100, Some(flags), 7, 1000 * S + s * S);
            expire_all(&mut t, 1000 * S + s * S);
        }
        let first = taken(&mut t);
        assert_eq!(first.len(), 2, "exported at 10 s and 21 s: {first:?}");
        assert_eq!((first[0].packets, first[0].bytes), (11, 1100));
        assert_eq!(first[0].start_ms, 1_000_000);
        assert_eq!(first[0].end_ms, 1_010_000);
        assert_eq!((first[0].tcp_flags, first[0].vlan), (0x12, 7));
        assert_eq!((first[1].packets, first[1].tcp_flags), (11, 0x10));
        assert_eq!(first[1].start_ms, 1_011_000);
        t.drain();
        let last = taken(&mut t);
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].packets, 3);
        let sum: u64 = first.iter().chain(&last).map(|r| r.packets).sum();
        assert_eq!(sum, 25, "every packet in exactly one record");
        t.drain();
        assert!(taken(&mut t).is_empty(), "nothing is exported twice");
    }

    #[test]
    fn an_idle_flow_is_exported_and_removed_and_the_others_stay_found() {
        let mut t = exporting(16);
        // Flows sharing probe windows: removing one must not hide the rest.
        for i in 0..12 {
            t.record(key(i, 1), 60, None, 0, S);
        }
        for i in 6..12 {
            t.record(key(i, 1), 60, None, 0, 3 * S);
        }
        expire_all(&mut t, 4 * S + 1);
        let idle = taken(&mut t);
        assert_eq!(idle.len(), 6, "the six silent since 1 s: {idle:?}");
        let mut out = Vec::new();
        t.copy_into(&mut out);
        assert_eq!(out.len(), 6, "removed from the table");
        // The others are still found (not inserted a second time).
        for i in 6..12 {
            t.record(key(i, 1), 60, None, 0, 5 * S);
        }
        t.copy_into(&mut out);
        assert_eq!(out.len(), 6);
        assert!(out.iter().all(|f| f.packets == 3));
    }

    #[test]
    fn records_sum_to_the_packets_counted_through_churn_and_evictions() {
        let mut t = exporting(16);
        let mut counted = 0u64;
        let mut exported = 0u64;
        let mut state = 0x1234_5678u64;
        for n in 0..200_000u64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let flow = (state >> 33) % 40;
            let now = S + n * 100_000; // 10,000 packets a second, 20 s
            t.record(key(flow as u32, 9), 64, None, 0, now);
            counted += 1;
            if n % 200 == 0 {
                t.expire_step(now);
                exported += taken(&mut t).iter().map(|r| r.packets).sum::<u64>();
            }
        }
        assert!(t.evictions() > 0, "the churn evicted flows");
        t.drain();
        exported += taken(&mut t).iter().map(|r| r.packets).sum::<u64>();
        assert_eq!(t.export_dropped(), Dropped::default());
        assert_eq!(exported, counted);
    }

    #[test]
    fn a_full_export_buffer_counts_what_it_drops() {
        let mut t = exporting(16);
        let total = EXPIRED_MAX as u64 + 100;
        for i in 0..total {
            // Each new flow evicts one: one record per eviction, none taken.
            t.record(key(i as u32, 3), 64, None, 0, S);
        }
        t.drain();
        let kept: u64 = taken(&mut t).iter().map(|r| r.packets).sum();
        let dropped = t.export_dropped();
        assert!(dropped.records > 0);
        assert_eq!(kept + dropped.packets, total);
    }

    #[test]
    fn the_queue_to_the_exporter_never_waits_and_counts_what_it_drops() {
        let (out, rx) = FlowOut::bounded(1);
        let mut t = exporting(16);
        t.record(key(1, 1), 64, None, 0, S);
        t.record(key(1, 1), 64, None, 0, S);
        t.drain();
        let mut a = Vec::new();
        t.take_expired(&mut a);
        let mut b = a.clone();
        out.offer(0, &mut a);
        out.offer(1, &mut b);
        assert!(a.is_empty() && b.is_empty());
        assert_eq!(
            out.dropped(),
            Dropped {
                records: 1,
                packets: 2
            }
        );
        assert_eq!(rx.try_recv().unwrap().queue, 0);
    }

    #[test]
    fn top_n_orders_a_known_mix() {
        let mut flows = Vec::new();
        // Flow i: i packets of 1000 - i*10 bytes: more packets, fewer bytes each.
        for i in 1..=20u32 {
            flows.push(stats(
                key(i, i as u16),
                u64::from(i),
                u64::from(i) * (1000 - u64::from(i) * 10),
            ));
        }
        // The same flow seen by a second worker is summed.
        flows.push(stats(key(3, 3), 100, 100));
        let top = Top::build(flows, 5);
        assert_eq!(top.flows, 20);
        let pk: Vec<u64> = top.flows_by_packets.iter().map(|f| f.packets).collect();
        assert_eq!(pk, vec![103, 20, 19, 18, 17]);
        let by: Vec<u64> = top.flows_by_bytes.iter().map(|f| f.bytes).collect();
        let mut want: Vec<u64> = (1..=20u64).map(|i| i * (1000 - i * 10)).collect();
        want[2] += 100;
        want.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(by, want[..5].to_vec());
        // Every flow goes to 198.18.0.2: the top talker, all bytes down.
        let t0 = top.talkers[0];
        assert_eq!(t0.addr, "198.18.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(t0.up_bytes, 0);
        assert_eq!(t0.down_bytes, want.iter().sum::<u64>());
        assert!(top.talkers[1].up_bytes >= top.talkers[2].up_bytes);
    }

    #[test]
    fn a_slot_is_one_cache_line() {
        // The export's per-flow state lives beside the slots, not in them.
        assert_eq!(std::mem::size_of::<Option<FlowStats>>(), 64);
        assert_eq!(std::mem::size_of::<Slot>(), 64);
        let t = FlowTable::new(16);
        assert!(t
            .slots
            .iter()
            .all(|s| (s as *const Slot as usize).is_multiple_of(64)));
    }

    #[test]
    fn a_copy_in_slices_is_the_whole_table() {
        let mut t = FlowTable::new(256);
        for i in 0..100 {
            t.record(key(i, 7), 64, None, 0, 1);
        }
        let mut whole = Vec::new();
        t.copy_into(&mut whole);
        let (mut out, mut at) = (vec![stats(key(999, 1), 1, 1)], 0);
        let mut steps = 0;
        while !t.copy_slice(&mut out, &mut at, 16) {
            steps += 1;
        }
        assert_eq!(steps, 15);
        assert_eq!(out, whole);
        assert_eq!(at, 0, "the next pass starts over");
    }

    #[test]
    fn exchange_never_blocks_the_worker() {
        let ex = FlowExchange::default();
        let mut fresh = vec![stats(key(1, 1), 1, 1)];
        let guard = ex.published.lock().unwrap();
        assert!(
            !ex.offer(&mut fresh, 3),
            "busy reporter: skipped, not waited for"
        );
        drop(guard);
        assert!(ex.offer(&mut fresh, 3));
        assert!(fresh.is_empty(), "the older buffer comes back");
        assert_eq!(ex.latest().len(), 1);
        assert_eq!(ex.evictions.load(Ordering::Relaxed), 3);
    }
}
