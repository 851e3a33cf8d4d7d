//! Damaged frames for the decode-fidelity tests: valid frames of every header
//! xsktap parses, built here with their layout known (where each header ends,
//! where each length or offset field sits), then mutated: cut at every header
//! boundary and one byte either side, and every length field set one below
//! and above its value and to its extremes. Plus the hand-made cases of each
//! rule (padding, offloads, ARP sizes, first fragments).

use xsktap_bench::frames::{IP_A, IP_B, MAC_A, MAC_B};

/// A length or offset field of a frame.
#[derive(Debug, Clone, Copy)]
enum Field {
    /// A 16-bit big-endian length at this offset.
    U16(usize),
    /// An 8-bit size at this offset.
    U8(usize),
    /// A 4-bit count of 32-bit words in the low nibble (IPv4 IHL).
    Low4(usize),
    /// A 4-bit count of 32-bit words in the high nibble (TCP data offset).
    High4(usize),
}

/// A frame under construction, with its layout.
#[derive(Default, Clone)]
struct Built {
    frame: Vec<u8>,
    /// Offsets where a header ends.
    bounds: Vec<usize>,
    fields: Vec<Field>,
}

impl Built {
    fn eth(ethertype: u16, vlans: &[u16]) -> Built {
        let mut b = Built::default();
        b.frame.extend_from_slice(&MAC_B);
        b.frame.extend_from_slice(&MAC_A);
        let mut types: Vec<u16> = match vlans.len() {
            0 => vec![],
            1 => vec![0x8100],
            _ => vec![0x88a8, 0x8100],
        };
        types.push(ethertype);
        b.frame.extend_from_slice(&types[0].to_be_bytes());
        b.bounds.push(b.frame.len());
        for (id, next) in vlans.iter().zip(&types[1..]) {
            b.frame.extend_from_slice(&id.to_be_bytes());
            b.frame.extend_from_slice(&next.to_be_bytes());
            b.bounds.push(b.frame.len());
        }
        b
    }

    /// An IPv4 header (options of `opt_words` 32-bit words of NOPs) for a
    /// payload of `payload` bytes.
    fn ipv4(mut self, proto: u8, opt_words: u8, payload: usize, frag: u16) -> Built {
        let at = self.frame.len();
        let header = 20 + 4 * usize::from(opt_words);
        let total = (header + payload) as u16;
        self.frame.push(0x40 | (5 + opt_words));
        self.frame.push(0);
        self.frame.extend_from_slice(&total.to_be_bytes());
        self.frame.extend_from_slice(&[0x12, 0x34]);
        self.frame.extend_from_slice(&frag.to_be_bytes());
        self.frame.extend_from_slice(&[64, proto, 0, 0]);
        self.frame.extend_from_slice(&IP_A);
        self.frame.extend_from_slice(&IP_B);
        for _ in 0..opt_words {
            self.frame.extend_from_slice(&[1, 1, 1, 1]);
        }
        let sum = xsktap_bench::frames::checksum(&self.frame[at..at + header]);
        self.frame[at + 10..at + 12].copy_from_slice(&sum.to_be_bytes());
        self.fields.push(Field::Low4(at));
        self.fields.push(Field::U16(at + 2));
        self.bounds.push(at + 20);
        self.bounds.push(at + header);
        self
    }

    /// An IPv6 header, then extension headers (hop-by-hop 0, destination
    /// options 60 with PadN; fragment 44 at offset 0 with more to come).
    fn ipv6(mut self, exts: &[u8], proto: u8, payload: usize) -> Built {
        let at = self.frame.len();
        let plen = (exts.len() * 8 + payload) as u16;
        self.frame.extend_from_slice(&[0x60, 0, 0, 0]);
        self.frame.extend_from_slice(&plen.to_be_bytes());
        self.frame.push(exts.first().copied().unwrap_or(proto));
        self.frame.push(64);
        for last in [1, 2] {
            self.frame.extend_from_slice(&[0x20, 0x01, 0, 2]);
            self.frame.extend_from_slice(&[0; 11]);
            self.frame.push(last);
        }
        self.fields.push(Field::U16(at + 4));
        self.bounds.push(self.frame.len());
        for (i, kind) in exts.iter().enumerate() {
            let next = exts.get(i + 1).copied().unwrap_or(proto);
            let e = self.frame.len();
            if *kind == 44 {
                self.frame
                    .extend_from_slice(&[next, 0, 0, 1, 0, 0, 0x56, 0x78]);
            } else {
                self.frame.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
                self.fields.push(Field::U8(e + 1));
            }
            self.bounds.push(self.frame.len());
        }
        self
    }

    fn tcp(mut self, opt_words: u8, payload: usize) -> Built {
        let at = self.frame.len();
        self.frame.extend_from_slice(&40000u16.to_be_bytes());
        self.frame.extend_from_slice(&80u16.to_be_bytes());
        self.frame.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
        self.frame.push((5 + opt_words) << 4);
        self.frame
            .extend_from_slice(&[0x02, 0xfa, 0xf0, 0, 0, 0, 0]);
        for _ in 0..opt_words {
            self.frame.extend_from_slice(&[1, 1, 1, 1]);
        }
        self.fields.push(Field::High4(at + 12));
        self.bounds.push(at + 20);
        self.bounds.push(self.frame.len());
        self.frame.extend(std::iter::repeat_n(0, payload));
        self
    }

    fn udp(mut self, payload: usize) -> Built {
        let at = self.frame.len();
        self.frame.extend_from_slice(&5000u16.to_be_bytes());
        self.frame.extend_from_slice(&6000u16.to_be_bytes());
        self.frame
            .extend_from_slice(&((8 + payload) as u16).to_be_bytes());
        self.frame.extend_from_slice(&[0x12, 0x34]);
        self.fields.push(Field::U16(at + 4));
        self.bounds.push(self.frame.len());
        self.frame.extend(std::iter::repeat_n(0x42, payload));
        self
    }

    /// An ICMP or ICMPv6 echo request (type 8 or 128) with `payload` bytes.
    fn echo(mut self, kind: u8, payload: usize) -> Built {
        self.frame.extend_from_slice(&[kind, 0, 0x12, 0x34]);
        self.bounds.push(self.frame.len());
        self.frame.extend_from_slice(&[0, 7, 0, 1]);
        self.bounds.push(self.frame.len());
        self.frame.extend(std::iter::repeat_n(0, payload));
        self
    }

    fn sctp(mut self) -> Built {
        self.frame.extend_from_slice(&[0x0b, 0xb8, 0x0b, 0xb9]);
        self.frame.extend_from_slice(&[0; 8]);
        self.bounds.push(self.frame.len());
        self
    }

    /// An ARP header with `hw`-byte hardware addresses (IPv4 protocol
    /// addresses) and operation `op`.
    fn arp(mut self, hw: u8, op: u16) -> Built {
        let at = self.frame.len();
        self.frame
            .extend_from_slice(&[0, 1, 8, 0, hw, 4, (op >> 8) as u8, op as u8]);
        self.fields.push(Field::U8(at + 4));
        self.fields.push(Field::U8(at + 5));
        self.bounds.push(self.frame.len());
        for ip in [IP_A, IP_B] {
            self.frame
                .extend(std::iter::repeat_n(0xaa, usize::from(hw)));
            self.frame.extend_from_slice(&ip);
            self.bounds.push(self.frame.len());
        }
        self
    }

    /// Ethernet padding up to the 60-byte minimum.
    fn padded(mut self) -> Built {
        if self.frame.len() < 60 {
            self.frame.resize(60, 0);
        }
        self
    }
}

/// The valid frames the mutations start from: one of each header xsktap
/// parses, with and without options, tags and extension headers.
fn bases() -> Vec<Built> {
    vec![
        Built::eth(0x0800, &[]).ipv4(6, 0, 30, 0).tcp(0, 10),
        Built::eth(0x0800, &[]).ipv4(6, 0, 28, 0).tcp(2, 0).padded(),
        Built::eth(0x0800, &[]).ipv4(17, 0, 20, 0).udp(12),
        Built::eth(0x0800, &[]).ipv4(17, 1, 12, 0).udp(4).padded(),
        Built::eth(0x0800, &[10]).ipv4(17, 0, 18, 0).udp(10),
        Built::eth(0x0800, &[100, 200]).ipv4(6, 0, 20, 0).tcp(0, 0),
        Built::eth(0x86dd, &[]).ipv6(&[], 17, 16).udp(8),
        Built::eth(0x86dd, &[]).ipv6(&[], 6, 24).tcp(1, 0),
        Built::eth(0x86dd, &[]).ipv6(&[0, 60], 17, 12).udp(4),
        Built::eth(0x86dd, &[7]).ipv6(&[44], 17, 16).udp(8),
        Built::eth(0x0800, &[]).ipv4(1, 0, 16, 0).echo(8, 8),
        Built::eth(0x86dd, &[]).ipv6(&[], 58, 16).echo(128, 8),
        Built::eth(0x0800, &[]).ipv4(132, 0, 12, 0).sctp().padded(),
        Built::eth(0x0806, &[]).arp(6, 1).padded(),
        Built::eth(0x8035, &[]).arp(6, 3).padded(),
        Built::eth(0x0806, &[5]).arp(6, 2),
    ]
}

fn mutations(b: &Built) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let len = b.frame.len();
    for &bound in &b.bounds {
        for cut in [bound.saturating_sub(1), bound, bound + 1] {
            if cut < len {
                out.push(b.frame[..cut].to_vec());
            }
        }
    }
    for &field in &b.fields {
        let values: Vec<u16> = match field {
            Field::U16(at) => {
                let v = u16::from_be_bytes([b.frame[at], b.frame[at + 1]]);
                vec![v.wrapping_sub(1), v + 1, 0, 1, 7, 0xffff]
            }
            Field::U8(at) => {
                let v = u16::from(b.frame[at]);
                vec![v.saturating_sub(1), v + 1, 0, 0xff]
            }
            Field::Low4(at) => {
                let v = u16::from(b.frame[at] & 0x0f);
                vec![v - 1, v + 1, 0, 4, 0xf]
            }
            Field::High4(at) => {
                let v = u16::from(b.frame[at] >> 4);
                vec![v - 1, v + 1, 0, 4, 0xf]
            }
        };
        for v in values {
            let mut f = b.frame.clone();
            match field {
                Field::U16(at) => f[at..at + 2].copy_from_slice(&v.to_be_bytes()),
                Field::U8(at) => f[at] = v as u8,
                Field::Low4(at) => f[at] = (f[at] & 0xf0) | (v as u8 & 0x0f),
                Field::High4(at) => f[at] = (f[at] & 0x0f) | ((v as u8 & 0x0f) << 4),
            }
            if f != b.frame {
                out.push(f);
            }
        }
    }
    out
}

/// The hand-made cases of each rule the decoder follows.
fn cases() -> Vec<Vec<u8>> {
    let set16 = |b: Built, at: usize, v: u16| {
        let mut f = b.frame;
        f[at..at + 2].copy_from_slice(&v.to_be_bytes());
        f
    };
    let ip = 14;
    vec![
        // IPv4 total length 0: an offload's datagram, to the frame's end.
        set16(
            Built::eth(0x0800, &[]).ipv4(6, 0, 20, 0).tcp(0, 0),
            ip + 2,
            0,
        ),
        // A short datagram in a padded frame, and one whose length passes the padding.
        Built::eth(0x0800, &[])
            .ipv4(17, 0, 8, 0)
            .udp(0)
            .padded()
            .frame,
        set16(
            Built::eth(0x0800, &[]).ipv4(17, 0, 8, 0).udp(0).padded(),
            ip + 2,
            47,
        ),
        // A first fragment whose UDP length covers the whole datagram.
        set16(
            Built::eth(0x0800, &[]).ipv4(17, 0, 16, 0x2000).udp(8),
            ip + 20 + 4,
            1400,
        ),
        // TCP: data offset below 5, past the segment, and reaching into padding.
        {
            let mut f = Built::eth(0x0800, &[]).ipv4(6, 0, 20, 0).tcp(0, 0).frame;
            f[ip + 20 + 12] = 0x30;
            f
        },
        {
            let mut f = Built::eth(0x0800, &[])
                .ipv4(6, 0, 20, 0)
                .tcp(0, 0)
                .padded()
                .frame;
            f.resize(80, 0);
            f[ip + 20 + 12] = 0x90;
            f
        },
        // ARP with 8-byte hardware addresses, and with 16-byte protocol ones.
        Built::eth(0x0806, &[]).arp(8, 1).padded().frame,
        {
            let mut f = Built::eth(0x0806, &[]).arp(6, 1).frame;
            f[14 + 5] = 16;
            f.resize(14 + 8 + 44, 0);
            f
        },
        // An IPv6 header with no next header, padded.
        Built::eth(0x86dd, &[]).ipv6(&[], 59, 0).padded().frame,
    ]
}

/// Every damaged frame, then the hand-made cases and the valid bases: frames
/// of at least 14 bytes (an AF_PACKET socket sends no shorter frame).
pub fn damaged_frames() -> Vec<Vec<u8>> {
    let bases = bases();
    let mut frames: Vec<Vec<u8>> = bases.iter().flat_map(mutations).collect();
    frames.extend(cases());
    frames.extend(bases.into_iter().map(|b| b.frame));
    frames.retain(|f| f.len() >= 14);
    frames.sort();
    frames.dedup();
    frames
}
