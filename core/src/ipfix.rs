//! IPFIX (RFC 7011) messages of flow records, for the NetFlow/IPFIX
//! collectors users already run (`--export-ipfix`, issue 16).
//!
//! Written by hand: the format is a few fixed layouts (a 16-byte message
//! header, sets of 4-byte headers, two templates of standard information
//! elements), and the crates that implement it either only parse or pull in
//! a whole collector; the bytes are checked here against RFC 7011's layout
//! and, in the privileged tests, read back by nfdump.
//!
//! Two templates, one per address family, with the same fields but the
//! addresses: IPv4 flows in template [`TEMPLATE_V4`], IPv6 flows in
//! [`TEMPLATE_V6`]. Each message carries the templates first when asked
//! (over UDP they are sent again periodically, RFC 7011 section 8.4).

pub use crate::flows::FlowRecord;
use std::net::IpAddr;

/// IPFIX's version number in the message header.
pub const VERSION: u16 = 10;
/// Set id of a template set.
const TEMPLATE_SET: u16 = 2;
/// Template id of IPv4 flows (data set id).
pub const TEMPLATE_V4: u16 = 256;
/// Template id of IPv6 flows (data set id).
pub const TEMPLATE_V6: u16 = 257;
/// Message length that fits an Ethernet MTU over UDP (1500 - IPv6 40 - UDP 8, rounded down).
pub const DEFAULT_MAX_MESSAGE: usize = 1400;

const MESSAGE_HEADER: usize = 16;
const SET_HEADER: usize = 4;

/// Information elements (IANA numbers) and their lengths, in template order,
/// with the address pair that differs between the families first.
const V4_ADDRESSES: [(u16, u16); 2] = [(8, 4), (12, 4)]; // source/destinationIPv4Address
const V6_ADDRESSES: [(u16, u16); 2] = [(27, 16), (28, 16)]; // source/destinationIPv6Address
const COMMON: [(u16, u16); 9] = [
    (7, 2),   // sourceTransportPort
    (11, 2),  // destinationTransportPort
    (4, 1),   // protocolIdentifier
    (6, 2),   // tcpControlBits
    (58, 2),  // vlanId
    (2, 8),   // packetDeltaCount
    (1, 8),   // octetDeltaCount
    (152, 8), // flowStartMilliseconds
    (153, 8), // flowEndMilliseconds
];

impl FlowRecord {
    fn v4(&self) -> bool {
        matches!((self.src, self.dst), (IpAddr::V4(_), IpAddr::V4(_)))
    }

    fn len(&self) -> usize {
        record_len(self.v4())
    }

    fn write(&self, out: &mut Vec<u8>) {
        if self.v4() {
            for a in [self.src, self.dst] {
                if let IpAddr::V4(a) = a {
                    out.extend_from_slice(&a.octets());
                }
            }
        } else {
            for a in [self.src, self.dst] {
                let v6 = match a {
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                    IpAddr::V6(a) => a,
                };
                out.extend_from_slice(&v6.octets());
            }
        }
        out.extend_from_slice(&self.sport.to_be_bytes());
        out.extend_from_slice(&self.dport.to_be_bytes());
        out.push(self.proto);
        out.extend_from_slice(&self.tcp_flags.to_be_bytes());
        out.extend_from_slice(&self.vlan.to_be_bytes());
        out.extend_from_slice(&self.packets.to_be_bytes());
        out.extend_from_slice(&self.bytes.to_be_bytes());
        out.extend_from_slice(&self.start_ms.to_be_bytes());
        out.extend_from_slice(&self.end_ms.to_be_bytes());
    }
}

/// Bytes of one data record.
fn record_len(v4: bool) -> usize {
    let addresses = if v4 { V4_ADDRESSES } else { V6_ADDRESSES };
    addresses
        .iter()
        .chain(COMMON.iter())
        .map(|&(_, len)| usize::from(len))
        .sum()
}

/// The template set describing both record layouts.
fn template_set() -> Vec<u8> {
    let mut set = Vec::new();
    set.extend_from_slice(&TEMPLATE_SET.to_be_bytes());
    set.extend_from_slice(&[0, 0]); // length, below
    for (id, addresses) in [(TEMPLATE_V4, V4_ADDRESSES), (TEMPLATE_V6, V6_ADDRESSES)] {
        let fields: Vec<(u16, u16)> = addresses.iter().chain(COMMON.iter()).copied().collect();
        set.extend_from_slice(&id.to_be_bytes());
        set.extend_from_slice(&(fields.len() as u16).to_be_bytes());
        for (element, len) in fields {
            set.extend_from_slice(&element.to_be_bytes());
            set.extend_from_slice(&len.to_be_bytes());
        }
    }
    let len = set.len() as u16;
    set[2..4].copy_from_slice(&len.to_be_bytes());
    set
}

/// Builds the messages of one exporting process and observation domain,
/// numbering them as RFC 7011 asks (each message's sequence number is the
/// count of data records sent before it, modulo 2^32).
#[derive(Debug, Clone)]
pub struct Exporter {
    domain: u32,
    sequence: u32,
    max_message: usize,
}

impl Exporter {
    /// For observation domain `domain`, messages of at most `max_message`
    /// bytes (at least one IPv6 record and the templates fit: 256 and up).
    pub fn new(domain: u32, max_message: usize) -> Exporter {
        Exporter {
            domain,
            sequence: 0,
            max_message: max_message.max(256),
        }
    }

    /// Data records sent so far (modulo 2^32): the next message's sequence number.
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    /// The messages carrying `records`, exported at `export_secs` (Unix
    /// seconds), each at most the maximum length; the first carries the
    /// templates when `templates` is set (a message with only templates when
    /// there are no records).
    pub fn messages(
        &mut self,
        records: &[FlowRecord],
        export_secs: u32,
        templates: bool,
    ) -> Vec<Vec<u8>> {
        let mut messages = Vec::new();
        let mut rest = records;
        let mut with_templates = templates;
        loop {
            let mut msg = Vec::with_capacity(self.max_message);
            msg.extend_from_slice(&VERSION.to_be_bytes());
            msg.extend_from_slice(&[0, 0]); // length, below
            msg.extend_from_slice(&export_secs.to_be_bytes());
            msg.extend_from_slice(&self.sequence.to_be_bytes());
            msg.extend_from_slice(&self.domain.to_be_bytes());
            if with_templates {
                msg.extend_from_slice(&template_set());
                with_templates = false;
            }
            let mut sent = 0u32;
            // One data set per run of records of the same family.
            while let Some(first) = rest.first() {
                let v4 = first.v4();
                let room = self.max_message.saturating_sub(msg.len() + SET_HEADER);
                let fit = room / record_len(v4);
                let run = rest.iter().take_while(|r| r.v4() == v4).count().min(fit);
                if run == 0 {
                    break;
                }
                let id = if v4 { TEMPLATE_V4 } else { TEMPLATE_V6 };
                let len = SET_HEADER + run * first.len();
                msg.extend_from_slice(&id.to_be_bytes());
                msg.extend_from_slice(&(len as u16).to_be_bytes());
                for r in &rest[..run] {
                    r.write(&mut msg);
                }
                rest = &rest[run..];
                sent += run as u32;
            }
            let len = msg.len() as u16;
            msg[2..4].copy_from_slice(&len.to_be_bytes());
            let empty = msg.len() == MESSAGE_HEADER;
            if !empty {
                self.sequence = self.sequence.wrapping_add(sent);
                messages.push(msg);
            }
            if rest.is_empty() || empty {
                return messages;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn record(src: &str, dst: &str, packets: u64) -> FlowRecord {
        FlowRecord {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            sport: 40000,
            dport: 443,
            proto: 6,
            tcp_flags: 0x1b,
            vlan: 10,
            packets,
            bytes: 60 * packets,
            start_ms: 1_700_000_000_000,
            end_ms: 1_700_000_001_500,
        }
    }

    /// The sets of a message: (set id, body).
    fn sets(msg: &[u8]) -> Vec<(u16, &[u8])> {
        let mut at = MESSAGE_HEADER;
        let mut out = Vec::new();
        while at < msg.len() {
            let (id, len) = (u16_at(msg, at), usize::from(u16_at(msg, at + 2)));
            assert!(len >= SET_HEADER && at + len <= msg.len(), "set bounds");
            out.push((id, &msg[at + SET_HEADER..at + len]));
            at += len;
        }
        assert_eq!(at, msg.len(), "sets fill the message exactly");
        out
    }

    #[test]
    fn the_header_and_templates_follow_rfc_7011() {
        let mut e = Exporter::new(7, DEFAULT_MAX_MESSAGE);
        let msgs = e.messages(&[], 1_700_000_002, true);
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        assert_eq!(u16_at(m, 0), 10);
        assert_eq!(usize::from(u16_at(m, 2)), m.len());
        assert_eq!(u32_at(m, 4), 1_700_000_002);
        assert_eq!(u32_at(m, 8), 0);
        assert_eq!(u32_at(m, 12), 7);
        let s = sets(m);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, 2);
        let t = s[0].1;
        // Template 256: 11 fields, the IPv4 addresses first.
        assert_eq!((u16_at(t, 0), u16_at(t, 2)), (256, 11));
        assert_eq!((u16_at(t, 4), u16_at(t, 6)), (8, 4));
        assert_eq!((u16_at(t, 8), u16_at(t, 10)), (12, 4));
        let v6 = 4 + 11 * 4;
        assert_eq!((u16_at(t, v6), u16_at(t, v6 + 2)), (257, 11));
        assert_eq!((u16_at(t, v6 + 4), u16_at(t, v6 + 6)), (27, 16));
        assert_eq!(t.len(), 2 * (4 + 11 * 4));
        assert_eq!(record_len(true), 49);
        assert_eq!(record_len(false), 73);
        // Nothing to say without templates or records.
        assert!(e.messages(&[], 0, false).is_empty());
    }

    #[test]
    fn records_are_written_field_by_field_in_sets_by_family() {
        let mut e = Exporter::new(1, DEFAULT_MAX_MESSAGE);
        let records = [
            record("198.18.0.1", "198.18.0.2", 5),
            record("198.18.0.3", "198.18.0.2", 6),
            record("2001:2::1", "2001:2::2", 7),
        ];
        let msgs = e.messages(&records, 0, false);
        assert_eq!(msgs.len(), 1);
        let s = sets(&msgs[0]);
        assert_eq!(s.iter().map(|x| x.0).collect::<Vec<_>>(), [256, 257]);
        let r = &s[0].1[..49];
        assert_eq!(&r[0..4], &[198, 18, 0, 1]);
        assert_eq!(&r[4..8], &[198, 18, 0, 2]);
        assert_eq!((u16_at(r, 8), u16_at(r, 10), r[12]), (40000, 443, 6));
        assert_eq!((u16_at(r, 13), u16_at(r, 15)), (0x1b, 10));
        assert_eq!(u64::from_be_bytes(r[17..25].try_into().unwrap()), 5);
        assert_eq!(u64::from_be_bytes(r[25..33].try_into().unwrap()), 300);
        assert_eq!(
            u64::from_be_bytes(r[41..49].try_into().unwrap()),
            1_700_000_001_500
        );
        assert_eq!(s[0].1.len(), 2 * 49);
        assert_eq!(s[1].1.len(), 73);
        assert_eq!(e.sequence(), 3);
    }

    #[test]
    fn many_records_split_into_messages_numbered_by_records_sent() {
        let mut e = Exporter::new(1, DEFAULT_MAX_MESSAGE);
        let records: Vec<FlowRecord> = (0..100u64)
            .map(|i| record(&format!("198.18.1.{i}"), "198.18.0.2", i + 1))
            .collect();
        let msgs = e.messages(&records, 0, true);
        assert!(msgs.len() > 1);
        let mut seen = 0u32;
        let mut packets = 0u64;
        for m in &msgs {
            assert!(m.len() <= DEFAULT_MAX_MESSAGE);
            assert_eq!(u32_at(m, 8), seen, "sequence = records sent before");
            for (id, body) in sets(m) {
                if id == TEMPLATE_V4 {
                    assert_eq!(body.len() % 49, 0);
                    for r in body.chunks(49) {
                        packets += u64::from_be_bytes(r[17..25].try_into().unwrap());
                        seen += 1;
                    }
                }
            }
        }
        assert_eq!(seen, 100);
        assert_eq!(packets, (1..=100).sum::<u64>());
        assert_eq!(e.sequence(), 100);
        // The next batch continues the numbering.
        let next = e.messages(&records[..1], 0, false);
        assert_eq!(u32_at(&next[0], 8), 100);
    }
}
