//! A bounded per-worker flow table (5-tuple → packets, bytes) and the top-N
//! views built from it.
//!
//! Open addressing with a short linear probe: a full probe window evicts its
//! smallest flow (by packets) and counts the eviction, so memory never grows.
//! The worker owns the table; once a second it copies the used slots into a
//! buffer the reporter swaps out without ever making the worker wait.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::parse::Packet;

/// Slots probed before evicting.
const PROBE: usize = 8;

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

/// The worker's table.
#[derive(Debug)]
pub struct FlowTable {
    slots: Box<[Option<FlowStats>]>,
    mask: usize,
    evictions: u64,
}

impl FlowTable {
    /// A table of `capacity` slots (rounded up to a power of two, at least 16).
    pub fn new(capacity: usize) -> Self {
        let size = capacity.max(16).next_power_of_two();
        FlowTable {
            slots: vec![None; size].into_boxed_slice(),
            mask: size - 1,
            evictions: 0,
        }
    }

    /// Adds one packet of `len` bytes with TCP flags `tcp_flags` to its flow.
    #[inline]
    pub fn record(&mut self, key: FlowKey, len: u64, tcp_flags: Option<u8>) {
        let (syns, acks) = handshake(tcp_flags);
        let start = key.hash() as usize;
        let mut victim = start & self.mask;
        let mut victim_packets = u64::MAX;
        for i in 0..PROBE {
            let at = (start + i) & self.mask;
            match &mut self.slots[at] {
                Some(f) if f.key == key => {
                    f.packets += 1;
                    f.bytes += len;
                    f.syns = f.syns.saturating_add(syns);
                    f.acks = f.acks.saturating_add(acks);
                    return;
                }
                Some(f) => {
                    if f.packets < victim_packets {
                        victim_packets = f.packets;
                        victim = at;
                    }
                }
                None => {
                    self.slots[at] = Some(FlowStats {
                        key,
                        packets: 1,
                        bytes: len,
                        syns,
                        acks,
                    });
                    return;
                }
            }
        }
        self.evictions += 1;
        self.slots[victim] = Some(FlowStats {
            key,
            packets: 1,
            bytes: len,
            syns,
            acks,
        });
    }

    /// Flows evicted to make room so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Copies the used slots into `out` (cleared first; no allocation once
    /// `out` has grown to the table's size).
    pub fn copy_into(&self, out: &mut Vec<FlowStats>) {
        out.clear();
        out.extend(self.slots.iter().flatten().copied());
    }
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
            t.record(k, 60, Some(flags));
        }
        let mut out = Vec::new();
        t.copy_into(&mut out);
        assert_eq!((out[0].syns, out[0].acks, out[0].packets), (1, 3, 4));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            t.record(key(1, 1000), 100, None);
        }
        t.record(key(2, 1000), 1500, None);
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
            t.record(key(0, 1), 64, None);
        }
        for i in 1..=200 {
            t.record(key(i, 2), 64, None);
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

    #[test]
    fn top_n_orders_a_known_mix() {
        let mut flows = Vec::new();
        // Flow i: i packets of 1000 - i*10 bytes: more packets, fewer bytes each.
        for i in 1..=20u32 {
            flows.push(FlowStats {
                key: key(i, i as u16),
                packets: u64::from(i),
                bytes: u64::from(i) * (1000 - u64::from(i) * 10),
                syns: 0,
                acks: 0,
            });
        }
        // The same flow seen by a second worker is summed.
        flows.push(FlowStats {
            key: key(3, 3),
            packets: 100,
            bytes: 100,
            syns: 0,
            acks: 0,
        });
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
    fn exchange_never_blocks_the_worker() {
        let ex = FlowExchange::default();
        let mut fresh = vec![FlowStats {
            key: key(1, 1),
            packets: 1,
            bytes: 1,
            syns: 0,
            acks: 0,
        }];
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
