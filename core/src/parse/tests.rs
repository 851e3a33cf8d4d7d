use super::*;
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use proptest::prelude::*;

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn eth(ethertype: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// An IPv6 frame with the given extension headers (each: next-header value
/// written by the chain, raw bytes) before a UDP header.
fn ipv6_with_ext(exts: &[(u8, Vec<u8>)], last: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = eth(ethertype::IPV6);
    let payload_len: usize = exts.iter().map(|(_, b)| b.len()).sum::<usize>() + l4.len();
    let first = exts.first().map_or(last, |(kind, _)| *kind);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(payload_len as u16).to_be_bytes());
    f.extend_from_slice(&[first, 64]);
    f.extend_from_slice(&[0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&[0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    for (i, (_, bytes)) in exts.iter().enumerate() {
        let mut b = bytes.clone();
        b[0] = exts.get(i + 1).map_or(last, |(kind, _)| *kind);
        f.extend_from_slice(&b);
    }
    f.extend_from_slice(l4);
    f
}

fn udp_header(sport: u16, dport: u16) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&[0, 8, 0, 0]);
    u
}

#[test]
fn udp_over_qinq() {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .double_vlan(100.try_into().unwrap(), 200.try_into().unwrap())
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(1234, 53)
        .write(&mut f, &[0u8; 10])
        .unwrap();
    let p = parse(&f);
    assert_eq!(p.vlan_ids(), &[100, 200]);
    assert_eq!(p.proto, Proto::Udp);
    assert_eq!(p.src, Some("198.18.0.1".parse().unwrap()));
    assert_eq!((p.sport, p.dport), (Some(1234), Some(53)));
    assert_eq!(p.malformed, None);
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let hop = (ipproto::HOPOPTS, vec![0, 0, 1, 4, 0, 0, 0, 0]);
    let dst = (
        ipproto::DSTOPTS,
        vec![0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    let routing = (ipproto::ROUTING, vec![0, 0, 0, 0, 0, 0, 0, 0]);
    let f = ipv6_with_ext(&[hop, dst, routing], ipproto::UDP, &udp_header(5000, 443));
    let p = parse(&f);
    assert_eq!(p.proto, Proto::Udp, "{p:?}");
    assert_eq!((p.sport, p.dport), (Some(5000), Some(443)));
    assert_eq!(p.ip_proto, Some(ipproto::UDP));
    assert_eq!(p.dst, Some("2001:2::2".parse().unwrap()));
}

#[test]
fn ipv6_fragments_have_ports_only_in_the_first() {
    let first = (ipproto::FRAGMENT, vec![0, 0, 0, 1, 0, 0, 0, 7]);
    let p = parse(&ipv6_with_ext(&[first], ipproto::UDP, &udp_header(1, 2)));
    assert_eq!(
        (p.proto, p.fragment, p.sport),
        (Proto::Udp, Fragment::First, Some(1))
    );
    let later = (ipproto::FRAGMENT, vec![0, 0, 0x05, 0x00, 0, 0, 0, 7]);
    let p = parse(&ipv6_with_ext(&[later], ipproto::UDP, &[0xaa; 16]));
    assert_eq!(
        (p.proto, p.fragment, p.sport),
        (Proto::Udp, Fragment::Later, None)
    );
}

#[test]
fn eight_extension_headers_are_followed_to_the_upper_layer() {
    let exts: Vec<_> = (0..MAX_EXT_HEADERS)
        .map(|_| (ipproto::DSTOPTS, vec![0u8; 8]))
        .collect();
    let p = parse(&ipv6_with_ext(&exts, ipproto::UDP, &udp_header(1, 2)));
    assert_eq!(p.malformed, None);
    assert_eq!((p.proto, p.sport, p.dport), (Proto::Udp, Some(1), Some(2)));
}

#[test]
fn too_many_extension_headers_are_malformed_not_followed() {
    let exts: Vec<_> = (0..MAX_EXT_HEADERS + 1)
        .map(|_| (ipproto::DSTOPTS, vec![0u8; 8]))
        .collect();
    let p = parse(&ipv6_with_ext(&exts, ipproto::UDP, &udp_header(1, 2)));
    assert_eq!(p.proto, Proto::Malformed);
    assert_eq!(p.malformed, Some("too many IPv6 extension headers"));
}

#[test]
fn ipv4_fragments_and_options() {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .tcp(80, 8080, 1, 1000)
        .syn()
        .ack(5)
        .write(&mut f, &[])
        .unwrap();
    let p = parse(&f);
    assert_eq!((p.proto, p.tcp_flags), (Proto::Tcp, Some(0x12)));
    assert_eq!(TcpFlags(0x12).to_string(), "S.");
    assert_eq!(TcpFlags(0x18).to_string(), "P.");
    assert_eq!(TcpFlags(0x11).to_string(), "F.");
    assert_eq!(TcpFlags(0x10).to_string(), ".");
    assert_eq!(TcpFlags(0x04).to_string(), "R");
    assert_eq!(TcpFlags(0).to_string(), "none");

    // Later fragment: offset 185 (x8 bytes), protocol kept, no ports.
    let mut later = f.clone();
    later[14 + 6..14 + 8].copy_from_slice(&185u16.to_be_bytes());
    let p = parse(&later);
    assert_eq!(
        (p.proto, p.fragment, p.sport, p.tcp_flags),
        (Proto::Tcp, Fragment::Later, None, None)
    );
    // First fragment: MF set, offset 0, ports read.
    let mut first = f.clone();
    first[14 + 6] = 0x20;
    let p = parse(&first);
    assert_eq!((p.fragment, p.sport), (Fragment::First, Some(80)));

    // IPv4 options (IHL 6): the TCP header moves 4 bytes on.
    let mut opts = f[..34].to_vec();
    opts[14] = 0x46;
    let total = u16::from_be_bytes([opts[16], opts[17]]) + 4;
    opts[16..18].copy_from_slice(&total.to_be_bytes());
    opts.extend_from_slice(&[1, 1, 1, 0]);
    opts.extend_from_slice(&f[34..]);
    let p = parse(&opts);
    assert_eq!(
        (p.proto, p.sport, p.dport),
        (Proto::Tcp, Some(80), Some(8080))
    );
}

#[test]
fn truncated_frames_are_malformed_with_a_reason() {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .single_vlan(7.try_into().unwrap())
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .tcp(1, 2, 3, 4)
        .write(&mut f, &[])
        .unwrap();
    let cases = [
        (10, "truncated Ethernet header"),
        (16, "truncated VLAN tag"),
        (30, "truncated IPv4 header"),
        (18 + 20 + 10, "truncated TCP header"),
    ];
    for (len, why) in cases {
        let p = parse(&f[..len]);
        assert_eq!(p.proto, Proto::Malformed, "cut at {len}");
        assert_eq!(p.malformed, Some(why), "cut at {len}");
        assert_eq!(p.len, len as u32);
    }
    let mut bad = f.clone();
    bad[18] = 0x42; // IHL 2
    assert_eq!(parse(&bad).malformed, Some("IPv4 header length below 20"));
}

/// An IPv4/TCP or UDP frame from etherparse, without Ethernet padding.
fn ipv4_frame(tcp: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    let ip = PacketBuilder::ethernet2(MAC_A, MAC_B).ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64);
    if tcp {
        ip.tcp(40000, 80, 1, 1000).write(&mut f, payload).unwrap();
    } else {
        ip.udp(5000, 6000).write(&mut f, payload).unwrap();
    }
    f
}

/// Each length or offset field that contradicts the frame, with the reason
/// and with the fields of the (whole) headers still read.
#[test]
fn length_fields_that_contradict_the_frame_are_malformed() {
    let set = |f: &[u8], at: usize, v: u16| {
        let mut f = f.to_vec();
        f[at..at + 2].copy_from_slice(&v.to_be_bytes());
        f
    };
    let tcp = ipv4_frame(true, &[0; 8]);
    let udp = ipv4_frame(false, &[0; 10]);
    let offset = |f: &[u8], words: u8| {
        let mut f = f.to_vec();
        f[14 + 20 + 12] = words << 4;
        f
    };
    let cases = [
        (offset(&tcp, 4), "TCP data offset below 5"),
        (offset(&tcp, 0), "TCP data offset below 5"),
        // 28 bytes of segment: a 32-byte header does not fit.
        (offset(&tcp, 8), "TCP header past the end of the IP payload"),
        (set(&udp, 14 + 24, 7), "UDP length below 8"),
        (set(&udp, 14 + 24, 0), "UDP length below 8"),
        (
            set(&udp, 14 + 24, 19),
            "UDP length past the end of the IP payload",
        ),
        (
            set(&udp, 14 + 2, 20 + 18 + 1),
            "IPv4 total length past the end of the frame",
        ),
        (
            set(&udp, 14 + 2, 19),
            "IPv4 total length below its header length",
        ),
    ];
    for (frame, why) in cases {
        let p = parse(&frame);
        assert_eq!(p.malformed, Some(why), "{frame:02x?}");
        assert_eq!(p.proto, Proto::Malformed);
        if why.starts_with("IPv4 total length below") {
            assert_eq!(p.src, None, "the header's own lengths disagree");
        } else {
            // The headers are whole: the sender and its ports are named.
            assert_eq!(p.src, Some("198.18.0.1".parse().unwrap()), "{why}");
            assert!(p.sport.is_some() && p.dport.is_some(), "{why}");
        }
    }
    // Shorter than the frame is padding, not an error; a TCP header that
    // fits with its options is whole.
    let mut padded = set(&udp, 14 + 2, 20 + 8);
    padded[14 + 24..14 + 26].copy_from_slice(&8u16.to_be_bytes());
    assert_eq!(parse(&padded).proto, Proto::Udp);
    assert_eq!(parse(&offset(&tcp, 7)).proto, Proto::Tcp);
    // A total length of 0 is an offload's: the datagram runs to the frame's end.
    let tso = set(&tcp, 14 + 2, 0);
    assert_eq!(
        (parse(&tso).proto, parse(&tso).dport),
        (Proto::Tcp, Some(80))
    );
    // A cut frame names the cut header, not the IP length it contradicts.
    assert_eq!(parse(&tcp[..40]).malformed, Some("truncated TCP header"));
    // A first fragment holds part of its datagram: its UDP length may pass
    // the fragment's end.
    let mut first = set(&udp, 14 + 24, 500);
    first[14 + 6] = 0x20;
    assert_eq!(parse(&first).proto, Proto::Udp);

    // IPv6: the payload length past the frame.
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6([0x20; 16], [0x21; 16], 64)
        .udp(1, 2)
        .write(&mut f, &[0; 4])
        .unwrap();
    let long = set(&f, 14 + 4, 13);
    let p = parse(&long);
    assert_eq!(
        p.malformed,
        Some("IPv6 payload length past the end of the frame")
    );
    assert_eq!((p.sport, p.dport), (Some(1), Some(2)));
    assert_eq!(parse(&set(&f, 14 + 4, 12)).proto, Proto::Udp);
    assert_eq!(
        parse(&set(&f, 14 + 40 + 4, 0)).malformed,
        Some("UDP length below 8")
    );
}

#[test]
fn ethernet_addresses_and_lengths_are_checked() {
    let mut f = eth(0x88b5);
    f.resize(60, 0);
    assert_eq!(parse(&f).proto, Proto::Other);
    let mut group = f.clone();
    group[6] |= 1;
    let parsed = parse(&group);
    assert_eq!(parsed.malformed, None, "decoded by what it carries");
    assert_eq!(parsed.proto, Proto::Other);
    assert_eq!(
        parsed.warning,
        Some("Ethernet source address is a group address")
    );
    assert_eq!(parse(&f).warning, None);
    // An 802.3 length: what follows may be longer (padding), not shorter.
    let with_type = |t: u16| {
        let mut f = f.clone();
        f[12..14].copy_from_slice(&t.to_be_bytes());
        parse(&f)
    };
    assert_eq!(with_type(46).proto, Proto::Other);
    assert_eq!(with_type(10).proto, Proto::Other);
    assert_eq!(
        with_type(47).malformed,
        Some("802.3 length past the end of the frame")
    );
    assert_eq!(
        with_type(1501).malformed,
        Some("Ethernet length/type field neither a length nor a type")
    );
    assert_eq!(with_type(0).proto, Proto::Other);
}

/// An ARP header with the sizes given, its addresses filled in.
fn arp_frame(ethertype: u16, hw: u8, proto_type: u16, proto: u8) -> Vec<u8> {
    let mut f = eth(ethertype);
    f.extend_from_slice(&[0, 1]);
    f.extend_from_slice(&proto_type.to_be_bytes());
    f.extend_from_slice(&[hw, proto, 0, 1]);
    for ip in [[198, 18, 0, 1], [198, 18, 0, 2]] {
        f.extend(std::iter::repeat_n(0xaa, usize::from(hw)));
        f.extend_from_slice(&ip);
        f.extend(std::iter::repeat_n(0, usize::from(proto).saturating_sub(4)));
    }
    f
}

#[test]
fn arp_sizes_are_followed_and_must_fit() {
    let sender_target = Some(("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap()));
    for ethertype in [ethertype::ARP, ethertype::RARP] {
        // The usual sizes, and an 8-byte hardware address: addresses where declared.
        for hw in [6, 8, 0] {
            let p = parse(&arp_frame(ethertype, hw, ethertype::IPV4, 4));
            assert_eq!((p.proto, p.malformed), (Proto::Arp, None));
            assert_eq!(p.arp, sender_target, "hardware size {hw}");
        }
        // Not IPv4 addresses: ARP, no addresses, not malformed.
        let p = parse(&arp_frame(ethertype, 6, ethertype::IPV4, 16));
        assert_eq!((p.proto, p.arp, p.malformed), (Proto::Arp, None, None));
        let p = parse(&arp_frame(ethertype, 6, ethertype::IPV6, 4));
        assert_eq!((p.proto, p.arp), (Proto::Arp, None));
        // Cut anywhere in the addresses: malformed, no addresses.
        let f = arp_frame(ethertype, 6, ethertype::IPV4, 4);
        for len in 14 + 8..f.len() {
            let p = parse(&f[..len]);
            assert_eq!(
                p.malformed,
                Some("ARP addresses past the end of the frame"),
                "cut at {len}"
            );
            assert_eq!(p.arp, None);
        }
        assert_eq!(parse(&f[..14 + 7]).malformed, Some("truncated ARP header"));
        // Sizes larger than the frame holds.
        let mut big = f.clone();
        big[14 + 4] = 0xff;
        assert_eq!(parse(&big).proto, Proto::Malformed);
    }
}

#[test]
fn arp_is_recognised_with_its_addresses() {
    let mut f = eth(ethertype::ARP);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[198, 18, 0, 1]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[198, 18, 0, 2]);
    let p = parse(&f);
    assert_eq!(p.proto, Proto::Arp);
    assert_eq!(p.src, None, "ARP has no IP header");
    assert_eq!(
        p.arp,
        Some(("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap()))
    );
}

#[test]
fn padding_after_the_ip_datagram_is_ignored() {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(7, 9)
        .write(&mut f, &[])
        .unwrap();
    f.resize(60, 0xee);
    let p = parse(&f);
    assert_eq!((p.proto, p.len, p.dport), (Proto::Udp, 60, Some(9)));
}

#[derive(Debug, Clone)]
struct Spec {
    vlans: Vec<u16>,
    v6: bool,
    l4: u8,
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    flags: u8,
    payload: usize,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        proptest::collection::vec(1u16..4095, 0..=2),
        any::<bool>(),
        0u8..4,
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<u16>(),
        any::<u16>(),
        any::<u8>(),
        0usize..300,
    )
        .prop_map(
            |(vlans, v6, l4, src, dst, sport, dport, flags, payload)| Spec {
                vlans,
                v6,
                l4,
                src,
                dst,
                sport,
                dport,
                flags,
                payload,
            },
        )
}

fn build(s: &Spec) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B);
    let payload = vec![0x5a; s.payload];
    let mut out = Vec::new();
    macro_rules! finish {
        ($ip:expr) => {{
            let ip = $ip;
            match (s.l4, s.v6) {
                (0, _) => {
                    let mut t = ip.tcp(s.sport, s.dport, 1, 100);
                    if s.flags & 0x01 != 0 {
                        t = t.fin();
                    }
                    if s.flags & 0x02 != 0 {
                        t = t.syn();
                    }
                    if s.flags & 0x04 != 0 {
                        t = t.rst();
                    }
                    if s.flags & 0x08 != 0 {
                        t = t.psh();
                    }
                    if s.flags & 0x10 != 0 {
                        t = t.ack(9);
                    }
                    if s.flags & 0x20 != 0 {
                        t = t.urg(1);
                    }
                    t.write(&mut out, &payload).unwrap()
                }
                (1, _) => ip.udp(s.sport, s.dport).write(&mut out, &payload).unwrap(),
                (_, false) => ip
                    .icmpv4_echo_request(s.sport, s.dport)
                    .write(&mut out, &payload)
                    .unwrap(),
                (_, true) => ip
                    .icmpv6_echo_request(s.sport, s.dport)
                    .write(&mut out, &payload)
                    .unwrap(),
            }
        }};
    }
    let src4: [u8; 4] = s.src[..4].try_into().unwrap();
    let dst4: [u8; 4] = s.dst[..4].try_into().unwrap();
    match s.vlans.as_slice() {
        [] if s.v6 => finish!(b.ipv6(s.src, s.dst, 64)),
        [] => finish!(b.ipv4(src4, dst4, 64)),
        [a] if s.v6 => finish!(b
            .single_vlan((*a).try_into().unwrap())
            .ipv6(s.src, s.dst, 64)),
        [a] => finish!(b.single_vlan((*a).try_into().unwrap()).ipv4(src4, dst4, 64)),
        [a, c, ..] if s.v6 => finish!(b
            .double_vlan((*a).try_into().unwrap(), (*c).try_into().unwrap())
            .ipv6(s.src, s.dst, 64)),
        [a, c, ..] => finish!(b
            .double_vlan((*a).try_into().unwrap(), (*c).try_into().unwrap())
            .ipv4(src4, dst4, 64)),
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Our parser agrees with etherparse on every generated packet.
    #[test]
    fn agrees_with_etherparse(s in spec()) {
        let frame = build(&s);
        let ours = parse(&frame);
        let theirs = SlicedPacket::from_ethernet(&frame).expect("etherparse parses what it built");

        let vlans: Vec<u16> = theirs
            .link_exts
            .iter()
            .filter_map(|e| match e {
                etherparse::LinkExtSlice::Vlan(v) => Some(v.vlan_identifier().value()),
                _ => None,
            })
            .collect();
        prop_assert_eq!(ours.vlan_ids(), vlans.as_slice());
        prop_assert_eq!(ours.malformed, None);

        let (src, dst, ip_proto): (IpAddr, IpAddr, u8) = match theirs.net.as_ref().unwrap() {
            NetSlice::Ipv4(v) => (v.header().source_addr().into(), v.header().destination_addr().into(), v.payload().ip_number.0),
            NetSlice::Ipv6(v) => (v.header().source_addr().into(), v.header().destination_addr().into(), v.payload().ip_number.0),
            NetSlice::Arp(_) => unreachable!("no ARP generated"),
        };
        prop_assert_eq!(ours.src, Some(src));
        prop_assert_eq!(ours.dst, Some(dst));
        prop_assert_eq!(ours.ip_proto, Some(ip_proto));

        match theirs.transport.as_ref().unwrap() {
            TransportSlice::Tcp(t) => {
                prop_assert_eq!(ours.proto, Proto::Tcp);
                prop_assert_eq!(ours.sport, Some(t.source_port()));
                prop_assert_eq!(ours.dport, Some(t.destination_port()));
                prop_assert_eq!(ours.tcp_flags, Some(t.header_slice()[13]));
            }
            TransportSlice::Udp(u) => {
                prop_assert_eq!(ours.proto, Proto::Udp);
                prop_assert_eq!(ours.sport, Some(u.source_port()));
                prop_assert_eq!(ours.dport, Some(u.destination_port()));
            }
            TransportSlice::Icmpv4(_) => prop_assert_eq!(ours.proto, Proto::Icmp),
            TransportSlice::Icmpv6(_) => prop_assert_eq!(ours.proto, Proto::Icmpv6),
            other => prop_assert!(false, "unexpected transport {:?}", other),
        }
    }

    /// Random bytes never panic, and a frame is malformed or fully classified.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let p = parse(&bytes);
        prop_assert_eq!(p.len as usize, bytes.len());
        prop_assert_eq!(p.proto == Proto::Malformed, p.malformed.is_some());
    }

    /// Valid frames cut at any length, or with any byte changed, never panic.
    #[test]
    fn damaged_frames_never_panic(s in spec(), cut in 0usize..400, at in 0usize..400, byte in any::<u8>()) {
        let mut frame = build(&s);
        if !frame.is_empty() {
            let i = at % frame.len();
            frame[i] = byte;
        }
        frame.truncate(cut);
        let p = parse(&frame);
        prop_assert!(p.vlan_count as usize <= MAX_VLANS);
        prop_assert_eq!(p.proto == Proto::Malformed, p.malformed.is_some());
        prop_assert!(usize::from(p.udp_payload) <= frame.len());
        if p.fragment == Fragment::Later {
            prop_assert_eq!(p.sport, None);
        }
    }

    /// Nothing is read past the frame: every field a cut frame reports is
    /// the whole frame's (it came from bytes both hold), and a frame cut
    /// inside its headers is malformed.
    #[test]
    fn a_cut_frame_reports_only_what_its_bytes_hold(s in spec(), cut in 0usize..400, at in 0usize..400, byte in any::<u8>()) {
        let mut frame = build(&s);
        let i = at % frame.len();
        frame[i] = byte;
        let whole = parse(&frame);
        let cut = cut.min(frame.len());
        let part = parse(&frame[..cut]);
        prop_assert_eq!(part.len as usize, cut);
        prop_assert!(whole.vlan_ids().starts_with(part.vlan_ids()));
        fn same<T: PartialEq + std::fmt::Debug>(part: Option<T>, whole: Option<T>) -> Result<(), TestCaseError> {
            if part.is_some() {
                prop_assert_eq!(part, whole);
            }
            Ok(())
        }
        same(part.src, whole.src)?;
        same(part.dst, whole.dst)?;
        same(part.arp, whole.arp)?;
        same(part.ip_proto, whole.ip_proto)?;
        same(part.sport, whole.sport)?;
        same(part.dport, whole.dport)?;
        same(part.tcp_flags, whole.tcp_flags)?;
        if cut < 14 {
            prop_assert_eq!(part.malformed, Some("truncated Ethernet header"));
        }
        // A cut that removes a field whole frames report is never clean.
        if whole.malformed.is_none() && (part.sport.is_none() && whole.sport.is_some()) {
            prop_assert_eq!(part.proto, Proto::Malformed);
        }
    }
}
