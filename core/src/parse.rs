//! Header parsing on `&[u8]`: pure, bounds-checked, no allocation, no unsafe.
//!
//! Every read goes through [`Cursor`], which checks the length first. A frame
//! is classified [`Proto::Malformed`], with the reason for the first fault,
//! when a header it announces is cut short, or a length or offset field of a
//! header it parses contradicts the frame (Wireshark's protocol errors for the
//! same headers). A header cut short gives no field; a whole header whose
//! length field is wrong still gives its fields (addresses, ports), so that a
//! broken sender can be named and matched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Ethertypes this parser follows.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// Reverse ARP (the ARP header, classed as ARP).
    pub const RARP: u16 = 0x8035;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag (QinQ outer).
    pub const QINQ: u16 = 0x88a8;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
}

/// IP protocol numbers this parser follows.
pub mod ipproto {
    /// IPv6 hop-by-hop options.
    pub const HOPOPTS: u8 = 0;
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// IPsec authentication header.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 no next header.
    pub const NONE: u8 = 59;
    /// IPv6 destination options.
    pub const DSTOPTS: u8 = 60;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// The largest value of the Ethernet length/type field that is an IEEE 802.3
/// length (of what follows the field) rather than an ethertype.
const ETHER_MAX_LENGTH: u16 = 1500;
/// The smallest value of the field that is an ethertype.
const ETHER_MIN_TYPE: u16 = 0x0600;

/// Most IPv6 extension headers followed; a frame with more is classified
/// malformed ("too many IPv6 extension headers").
pub const MAX_EXT_HEADERS: usize = 8;
/// Most VLAN tags followed.
pub const MAX_VLANS: usize = 2;

/// What a frame carries, as one class for counters and views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP over IPv4 or IPv6.
    Tcp,
    /// UDP over IPv4 or IPv6.
    Udp,
    /// ICMP (IPv4).
    Icmp,
    /// ICMPv6.
    Icmpv6,
    /// ARP and reverse ARP.
    Arp,
    /// Anything else that parsed cleanly.
    Other,
    /// A header was cut short or inconsistent.
    Malformed,
}

impl Proto {
    /// Every class, in counter order.
    pub const ALL: [Proto; 7] = [
        Proto::Tcp,
        Proto::Udp,
        Proto::Icmp,
        Proto::Icmpv6,
        Proto::Arp,
        Proto::Other,
        Proto::Malformed,
    ];

    /// Lower-case name, as in `monitor --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Icmpv6 => "icmpv6",
            Proto::Arp => "arp",
            Proto::Other => "other",
            Proto::Malformed => "malformed",
        }
    }

    /// Index into per-class counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Where an IP packet sits in its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// Not fragmented.
    None,
    /// First fragment (offset 0, more fragments): carries the L4 header.
    First,
    /// A later fragment: no L4 header, so no ports.
    Later,
}

/// The parsed headers of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Frame length in bytes.
    pub len: u32,
    /// VLAN ids, outermost first; `vlan_count` of them are valid.
    pub vlans: [u16; MAX_VLANS],
    /// Number of VLAN tags.
    pub vlan_count: u8,
    /// Ethertype after the VLAN tags (0 if the frame is too short to have one).
    pub ethertype: u16,
    /// Source address of the IP header.
    pub src: Option<IpAddr>,
    /// Destination address of the IP header.
    pub dst: Option<IpAddr>,
    /// ARP (or RARP) sender and target protocol addresses, where the header
    /// declares IPv4 ones (protocol type 0x0800, size 4), read at the offsets
    /// its hardware address size gives.
    pub arp: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Upper-layer protocol number (IPv4 protocol, or the IPv6 header after extensions).
    pub ip_proto: Option<u8>,
    /// Fragment position.
    pub fragment: Fragment,
    /// Source port (TCP, UDP, SCTP; first fragment only).
    pub sport: Option<u16>,
    /// Destination port.
    pub dport: Option<u16>,
    /// TCP flags byte (FIN 0x01 … CWR 0x80).
    pub tcp_flags: Option<u8>,
    /// The class.
    pub proto: Proto,
    /// Why the frame is malformed, when it is: the header cut short, or else
    /// the outermost length field that disagrees with the frame.
    pub malformed: Option<&'static str>,
    /// A note on a frame decoded as usual, as tshark's expert warnings: a
    /// group (multicast) Ethernet source address, which IEEE 802.3 forbids
    /// and some devices send.
    pub warning: Option<&'static str>,
    /// Offset of the UDP payload in the frame (0: not a UDP frame with a whole header).
    pub udp_payload: u16,
}

impl Packet {
    /// The VLAN ids, outermost first.
    pub fn vlan_ids(&self) -> &[u16] {
        &self.vlans[..usize::from(self.vlan_count)]
    }

    fn empty(len: usize) -> Packet {
        Packet {
            len: len as u32,
            vlans: [0; MAX_VLANS],
            vlan_count: 0,
            ethertype: 0,
            src: None,
            dst: None,
            arp: None,
            ip_proto: None,
            fragment: Fragment::None,
            sport: None,
            dport: None,
            tcp_flags: None,
            proto: Proto::Other,
            malformed: None,
            warning: None,
            udp_payload: 0,
        }
    }

    /// Marks the frame malformed because a header is cut short (where
    /// parsing stops): this is the reason named, the most precise one (a cut
    /// frame's IP length field disagrees with it too).
    #[cold]
    fn malformed(mut self, why: &'static str) -> Packet {
        self.proto = Proto::Malformed;
        self.malformed = Some(why);
        self
    }

    /// Marks the frame malformed because a length field disagrees with the
    /// frame, and parsing goes on; the first such fault is the one named.
    /// Sets the class, unless a fault already made it `Malformed` (the
    /// transport of a datagram whose length is wrong does not hide it).
    #[inline(always)]
    fn class(&mut self, proto: Proto) {
        if self.malformed.is_none() {
            self.proto = proto;
        }
    }

    #[cold]
    fn flag(&mut self, why: &'static str) {
        self.proto = Proto::Malformed;
        self.malformed.get_or_insert(why);
    }
}

/// A bounds-checked reader over a byte slice.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    /// The next `n` bytes, advancing past them; `None` if fewer remain.
    #[inline(always)]
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    /// The next `n` bytes without advancing.
    #[inline(always)]
    fn peek(&self, n: usize) -> Option<&'a [u8]> {
        self.bytes.get(self.pos..self.pos.checked_add(n)?)
    }

    /// The rest, limited to `n` bytes (an IP total length shorter than the
    /// frame leaves Ethernet padding behind).
    fn limit(self, n: usize) -> Cursor<'a> {
        let end = self.pos.saturating_add(n).min(self.bytes.len());
        Cursor {
            bytes: &self.bytes[..end],
            pos: self.pos,
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
}

#[inline(always)]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn v4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn v6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

/// Parses one Ethernet frame.
pub fn parse(frame: &[u8]) -> Packet {
    let mut p = Packet::empty(frame.len());
    let mut c = Cursor::new(frame);
    let Some(eth) = c.take(14) else {
        return p.malformed("truncated Ethernet header");
    };
    if eth[6] & 1 != 0 {
        // IEEE 802.3 3.2.3: a source address is an individual address. The
        // frame is still decoded by what it carries (as tshark does).
        p.warning = Some("Ethernet source address is a group address");
    }
    let mut ethertype = be16(&eth[12..14]);
    if (ETHER_MAX_LENGTH + 1..ETHER_MIN_TYPE).contains(&ethertype) {
        p.flag("Ethernet length/type field neither a length nor a type");
    }
    while ethertype == ethertype::VLAN || ethertype == ethertype::QINQ {
        if usize::from(p.vlan_count) == MAX_VLANS {
            // A third tag: classified, not followed.
            p.ethertype = ethertype;
            return p;
        }
        let Some(tag) = c.take(4) else {
            return p.malformed("truncated VLAN tag");
        };
        p.vlans[usize::from(p.vlan_count)] = be16(&tag[0..2]) & 0x0fff;
        p.vlan_count += 1;
        ethertype = be16(&tag[2..4]);
    }
    p.ethertype = ethertype;
    if (1..=ETHER_MAX_LENGTH).contains(&ethertype) && usize::from(ethertype) > c.remaining() {
        // An IEEE 802.3 frame: the field is the length of what follows.
        p.flag("802.3 length past the end of the frame");
    }
    match ethertype {
        ethertype::IPV4 => ipv4(p, c),
        ethertype::IPV6 => ipv6(p, c),
        ethertype::ARP | ethertype::RARP => arp(p, c),
        _ => p,
    }
}

/// ARP and RARP: the sizes the header declares are followed (any hardware
/// type), and the four addresses must fit in the frame.
fn arp(mut p: Packet, mut c: Cursor<'_>) -> Packet {
    p.class(Proto::Arp);
    let Some(h) = c.take(8) else {
        return p.malformed("truncated ARP header");
    };
    let (hw, proto) = (usize::from(h[4]), usize::from(h[5]));
    let Some(a) = c.take(2 * (hw + proto)) else {
        return p.malformed("ARP addresses past the end of the frame");
    };
    if be16(&h[2..4]) == ethertype::IPV4 && proto == 4 {
        p.arp = Some((v4(&a[hw..]), v4(&a[2 * hw + 4..])));
    }
    p
}

#[inline(always)]
fn ipv4(mut p: Packet, mut c: Cursor<'_>) -> Packet {
    let Some(h) = c.peek(20) else {
        return p.malformed("truncated IPv4 header");
    };
    if h[0] >> 4 != 4 {
        return p.malformed("IPv4 ethertype without version 4");
    }
    let header_len = usize::from(h[0] & 0x0f) * 4;
    // A total length of 0 is a segmentation offload's (TSO, BIG TCP): the
    // datagram runs to the frame's end, as Wireshark takes it.
    let total_len = match usize::from(be16(&h[2..4])) {
        0 => c.remaining().max(header_len),
        n => n,
    };
    if header_len < 20 {
        return p.malformed("IPv4 header length below 20");
    }
    if total_len < header_len {
        return p.malformed("IPv4 total length below its header length");
    }
    let Some(h) = c.take(header_len) else {
        return p.malformed("truncated IPv4 options");
    };
    p.src = Some(IpAddr::V4(v4(&h[12..16])));
    p.dst = Some(IpAddr::V4(v4(&h[16..20])));
    let proto = h[9];
    p.ip_proto = Some(proto);
    let frag = be16(&h[6..8]);
    let offset = frag & 0x1fff;
    let more = frag & 0x2000 != 0;
    p.fragment = match (offset, more) {
        (0, false) => Fragment::None,
        (0, true) => Fragment::First,
        _ => Fragment::Later,
    };
    // The payload ends at the total length, not at the frame's end (padding);
    // a frame shorter than its total length is malformed, and parsed as far
    // as it goes.
    if c.remaining() < total_len - header_len {
        p.flag("IPv4 total length past the end of the frame");
    }
    let payload = c.limit(total_len - header_len);
    l4(p, payload, proto)
}

fn ipv6(mut p: Packet, mut c: Cursor<'_>) -> Packet {
    let Some(h) = c.take(40) else {
        return p.malformed("truncated IPv6 header");
    };
    if h[0] >> 4 != 6 {
        return p.malformed("IPv6 ethertype without version 6");
    }
    p.src = Some(IpAddr::V6(v6(&h[8..24])));
    p.dst = Some(IpAddr::V6(v6(&h[24..40])));
    let payload_len = usize::from(be16(&h[4..6]));
    if c.remaining() < payload_len {
        p.flag("IPv6 payload length past the end of the frame");
    }
    let mut c = c.limit(payload_len);
    let mut next = h[6];
    for seen in 0..=MAX_EXT_HEADERS {
        match next {
            // Up to eight are followed; a ninth is not.
            ipproto::HOPOPTS
            | ipproto::ROUTING
            | ipproto::DSTOPTS
            | ipproto::AH
            | ipproto::FRAGMENT
                if seen == MAX_EXT_HEADERS =>
            {
                break
            }
            ipproto::HOPOPTS | ipproto::ROUTING | ipproto::DSTOPTS => {
                let Some(e) = c.peek(2) else {
                    return p.malformed("truncated IPv6 extension header");
                };
                let len = (usize::from(e[1]) + 1) * 8;
                next = e[0];
                if c.take(len).is_none() {
                    return p.malformed("truncated IPv6 extension header");
                }
            }
            ipproto::AH => {
                let Some(e) = c.peek(2) else {
                    return p.malformed("truncated IPv6 authentication header");
                };
                let len = (usize::from(e[1]) + 2) * 4;
                next = e[0];
                if c.take(len).is_none() {
                    return p.malformed("truncated IPv6 authentication header");
                }
            }
            ipproto::FRAGMENT => {
                let Some(e) = c.take(8) else {
                    return p.malformed("truncated IPv6 fragment header");
                };
                next = e[0];
                let frag = be16(&e[2..4]);
                let offset = frag >> 3;
                let more = frag & 1 != 0;
                p.fragment = match (offset, more) {
                    (0, false) => Fragment::None,
                    (0, true) => Fragment::First,
                    _ => Fragment::Later,
                };
            }
            _ => {
                p.ip_proto = Some(next);
                return l4(p, c, next);
            }
        }
    }
    // The upper-layer protocol was never reached: leave `ip_proto` unknown.
    p.malformed("too many IPv6 extension headers")
}

#[inline(always)]
fn l4(mut p: Packet, mut c: Cursor<'_>, proto: u8) -> Packet {
    p.class(match proto {
        ipproto::TCP => Proto::Tcp,
        ipproto::UDP => Proto::Udp,
        ipproto::ICMP => Proto::Icmp,
        ipproto::ICMPV6 => Proto::Icmpv6,
        _ => Proto::Other,
    });
    if p.fragment == Fragment::Later {
        return p;
    }
    match proto {
        ipproto::TCP => {
            let segment = c.remaining();
            let Some(t) = c.take(20) else {
                return p.malformed("truncated TCP header");
            };
            p.sport = Some(be16(&t[0..2]));
            p.dport = Some(be16(&t[2..4]));
            let data_offset = usize::from(t[12] >> 4) * 4;
            if data_offset < 20 {
                // Not a TCP header past its ports: no flags (as Wireshark).
                p.flag("TCP data offset below 5");
                return p;
            }
            p.tcp_flags = Some(t[13]);
            if data_offset > segment {
                p.flag("TCP header past the end of the IP payload");
            }
        }
        ipproto::UDP => {
            let datagram = c.remaining();
            let Some(u) = c.take(8) else {
                return p.malformed("truncated UDP header");
            };
            p.sport = Some(be16(&u[0..2]));
            p.dport = Some(be16(&u[2..4]));
            p.udp_payload = c.pos as u16;
            let len = usize::from(be16(&u[4..6]));
            if len < 8 {
                p.flag("UDP length below 8");
            } else if len > datagram && p.fragment == Fragment::None {
                // A first fragment holds part of its datagram: its length
                // is checked once reassembled, which xsktap does not do.
                p.flag("UDP length past the end of the IP payload");
            }
        }
        ipproto::SCTP => {
            let Some(u) = c.take(12) else {
                return p.malformed("truncated SCTP header");
            };
            p.sport = Some(be16(&u[0..2]));
            p.dport = Some(be16(&u[2..4]));
        }
        ipproto::ICMP | ipproto::ICMPV6 if c.remaining() < 4 => {
            return p.malformed("truncated ICMP header");
        }
        _ => {}
    }
    p
}

/// TCP flags, displayed as tcpdump prints them (`S`, `S.`, `P.`, `F.`,
/// `R`, `.`; `none` when no flag is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl std::fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tcpdump's order (print-tcp.c, tcp_flag_values).
        const NAMES: [(u8, char); 8] = [
            (0x01, 'F'),
            (0x02, 'S'),
            (0x04, 'R'),
            (0x08, 'P'),
            (0x10, '.'),
            (0x20, 'U'),
            (0x40, 'E'),
            (0x80, 'W'),
        ];
        if self.0 == 0 {
            return f.write_str("none");
        }
        for (bit, name) in NAMES {
            if self.0 & bit != 0 {
                std::fmt::Write::write_char(f, name)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
