//! Frames of every kind the parser classifies, built byte by byte or with
//! etherparse, for the monitor and filter end-to-end tests.

use etherparse::PacketBuilder;
use xsktap_bench::frames::{IP_A, IP_B, MAC_A, MAC_B};

fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0, 2]);
    a[15] = last;
    a
}

fn eth(ethertype: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn ipv4_checksum(h: &mut [u8]) {
    h[10] = 0;
    h[11] = 0;
    let c = xsktap_bench::frames::checksum(&h[..20]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
}

/// IPv6 + extension headers (types; 44 = fragment at `frag_offset`) + UDP.
fn ipv6_ext(exts: &[u8], frag_offset: u16, more: bool) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, kind) in exts.iter().enumerate() {
        let next = exts.get(i + 1).copied().unwrap_or(17);
        if *kind == 44 {
            let off = frag_offset << 3 | u16::from(more);
            body.extend_from_slice(&[next, 0, (off >> 8) as u8, off as u8, 0, 0, 0x12, 0x34]);
        } else {
            // PadN option filling the 8 bytes.
            body.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
    }
    if frag_offset == 0 {
        body.extend_from_slice(&4000u16.to_be_bytes());
        body.extend_from_slice(&53u16.to_be_bytes());
        body.extend_from_slice(&[0, 16, 0, 0]);
    }
    body.extend_from_slice(&[0x42; 8]);
    let mut f = eth(0x86dd);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(body.len() as u16).to_be_bytes());
    f.extend_from_slice(&[exts.first().copied().unwrap_or(17), 64]);
    f.extend_from_slice(&v6(1));
    f.extend_from_slice(&v6(2));
    f.extend_from_slice(&body);
    f
}

pub fn tcp4(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(IP_A, IP_B, 64)
        .tcp(sport, dport, 1000, 64240)
        .write(&mut f, &[])
        .unwrap();
    f[14 + 20 + 13] = flags;
    f
}

fn udp4_fragment(first: bool) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(IP_A, IP_B, 64)
        .udp(5353, 53)
        .write(&mut f, &[7u8; 32])
        .unwrap();
    let ip = &mut f[14..34];
    if first {
        ip[6] = 0x20; // more fragments, offset 0
    } else {
        ip[6] = 0x00;
        ip[7] = 0x05; // offset 40 bytes, last fragment
    }
    ipv4_checksum(ip);
    f
}

/// Untagged, well-formed traffic without IPv6 extension headers: where
/// xsktap's filter must select exactly what tcpdump's does.
pub fn plain_frames() -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for (sport, dport, flags) in [
        (40000, 80, 0x02),
        (80, 40000, 0x12),
        (40000, 80, 0x18),
        (40000, 22, 0x11),
        (22, 40001, 0x04),
    ] {
        frames.push(tcp4(sport, dport, flags));
    }
    for (src, dst, sport, dport) in [
        (IP_A, IP_B, 5353u16, 53u16),
        (IP_B, IP_A, 53, 5353),
        ([198, 19, 1, 1], IP_B, 1234, 9000),
        (IP_A, [198, 19, 200, 2], 9000, 1234),
    ] {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(src, dst, 64)
            .udp(sport, dport)
            .write(&mut f, &[1u8; 20])
            .unwrap();
        frames.push(f);
    }
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(IP_A, IP_B, 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut f, &[0u8; 16])
        .unwrap();
    frames.push(f);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(v6(1), v6(2), 64)
        .udp(4000, 53)
        .write(&mut f, &[2u8; 10])
        .unwrap();
    frames.push(f);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(v6(2), v6(1), 64)
        .tcp(443, 50000, 1, 100)
        .syn()
        .ack(1)
        .write(&mut f, &[])
        .unwrap();
    frames.push(f);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(v6(1), v6(3), 64)
        .icmpv6_echo_request(1, 2)
        .write(&mut f, &[0u8; 8])
        .unwrap();
    frames.push(f);
    frames.push(udp4_fragment(true));
    frames.push(udp4_fragment(false));
    frames.push(arp());
    frames
}

fn arp() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&IP_A);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&IP_B);
    f.resize(60, 0);
    f
}

/// Every kind the parser classifies: the plain frames, then VLAN and QinQ,
/// IPv6 extension headers and fragments, truncated frames and an unknown ethertype.
pub fn varied_frames() -> Vec<Vec<u8>> {
    let mut frames = plain_frames();
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .single_vlan(10.try_into().unwrap())
        .ipv4(IP_A, IP_B, 64)
        .udp(1111, 2222)
        .write(&mut f, &[3u8; 12])
        .unwrap();
    frames.push(f);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .double_vlan(100.try_into().unwrap(), 200.try_into().unwrap())
        .ipv4(IP_A, IP_B, 64)
        .tcp(3333, 4444, 5, 100)
        .syn()
        .write(&mut f, &[])
        .unwrap();
    frames.push(f);
    frames.push(ipv6_ext(&[0, 60], 0, false));
    frames.push(ipv6_ext(&[44], 0, true));
    frames.push(ipv6_ext(&[44], 10, false));
    // Truncated: an IPv4/UDP frame cut inside the UDP header, an IPv6 header cut short.
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(IP_A, IP_B, 64)
        .udp(1, 2)
        .write(&mut f, &[0u8; 30])
        .unwrap();
    f.truncate(14 + 20 + 4);
    frames.push(f);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(v6(1), v6(2), 64)
        .udp(1, 2)
        .write(&mut f, &[0u8; 30])
        .unwrap();
    f.truncate(14 + 30);
    frames.push(f);
    let mut f = eth(0x88b5);
    f.resize(64, 0x5a);
    frames.push(f);
    frames
}
