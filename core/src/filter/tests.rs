use super::*;
use crate::parse::parse;
use etherparse::PacketBuilder;

const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut f, &[1, 2, 3])
        .unwrap();
    f
}

fn tcp6(sport: u16, dport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&[0x20, 0x01, 0, 2]);
    src[15] = 1;
    let mut dst = src;
    dst[15] = 2;
    PacketBuilder::ethernet2(A, B)
        .ipv6(src, dst, 64)
        .tcp(sport, dport, 1, 100)
        .syn()
        .write(&mut f, &[])
        .unwrap();
    f
}

fn icmp4() -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut f, &[0; 8])
        .unwrap();
    f
}

fn matches(expr: &str, frame: &[u8]) -> bool {
    let e = parse_expr(expr).unwrap();
    let prog = Program::compile(e.as_ref(), 64).unwrap();
    prog.matches(&parse(frame))
}

#[test]
fn primitives_select_what_tcpdump_selects() {
    let u = udp4([198, 18, 0, 1], [198, 18, 0, 2], 5353, 53);
    let t = tcp6(40000, 443);
    let i = icmp4();
    for (expr, want_u, want_t, want_i) in [
        ("udp", true, false, false),
        ("tcp", false, true, false),
        ("icmp", false, false, true),
        ("icmp6", false, false, false),
        ("ip", true, false, true),
        ("ip6", false, true, false),
        ("port 53", true, false, false),
        ("src port 53", false, false, false),
        ("dst port 53", true, false, false),
        ("portrange 400-500", false, true, false),
        ("tcp port 443", false, true, false),
        ("udp port 443", false, false, false),
        ("host 198.18.0.2", true, false, true),
        ("src host 198.18.0.2", false, false, false),
        ("net 198.18.0.0/15", true, false, true),
        ("net 2001:2::/48", false, true, false),
        ("dst net 2001:2::2/128", false, true, false),
        ("not udp", false, true, true),
        ("udp or tcp", true, true, false),
        ("ip and not (udp or tcp)", false, false, true),
        ("!udp && !icmp", false, true, false),
        ("vlan", false, false, false),
    ] {
        assert_eq!(matches(expr, &u), want_u, "{expr} on UDP");
        assert_eq!(matches(expr, &t), want_t, "{expr} on TCP/IPv6");
        assert_eq!(matches(expr, &i), want_i, "{expr} on ICMP");
    }
}

#[test]
fn ports_match_only_the_first_fragment_protocols_every_fragment() {
    let mut later = udp4([198, 18, 0, 1], [198, 18, 0, 2], 5353, 53);
    later[14 + 6..14 + 8].copy_from_slice(&100u16.to_be_bytes());
    assert!(matches("udp", &later));
    assert!(!matches("port 53", &later));
    assert!(matches("host 198.18.0.1", &later));
}

#[test]
fn vlan_matches_any_tag() {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .double_vlan(10.try_into().unwrap(), 20.try_into().unwrap())
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(1, 2)
        .write(&mut f, &[])
        .unwrap();
    assert!(matches("vlan", &f));
    assert!(matches("vlan 10", &f));
    assert!(matches("vlan 20 and udp", &f));
    assert!(!matches("vlan 30", &f));
}

#[test]
fn compiled_programs_jump_forward_only_and_fit() {
    let e = parse_expr("(tcp or udp) and not (host 198.18.0.1 or port 22) and vlan 5").unwrap();
    let p = Program::compile(e.as_ref(), 64).unwrap();
    for (i, (_, t, f)) in p.tests.iter().enumerate() {
        for target in [t, f] {
            if let Target::Test(n) = target {
                assert!(usize::from(*n) > i, "test {i} jumps back to {n}");
            }
        }
    }
    let big = vec!["port 1"; 40].join(" or ");
    let err = Program::compile(parse_expr(&big).unwrap().as_ref(), 64).unwrap_err();
    assert!(err.0.contains("80 tests"), "{err}");
    assert_eq!(Program::compile(None, 64).unwrap().tests.len(), 0);
    assert_eq!(parse_expr("   ").unwrap(), None);
}

#[test]
fn errors_point_at_the_word() {
    for (expr, word, at) in [
        ("tcp and ether host 1", "\"ether\"", "character 9"),
        ("udp port", "at the end", ""),
        ("port 70000", "\"70000\"", "character 6"),
        ("host 198.18.0.300", "\"198.18.0.300\"", "character 6"),
        ("net 198.18.0.1/15", "non-network bits", ""),
        ("(tcp or udp", "expected \")\"", ""),
        ("tcp udp", "\"udp\"", "character 5"),
        ("src foo", "\"foo\"", ""),
        ("vlan 5000", "\"5000\"", ""),
        ("portrange 9-1", "\"9-1\"", ""),
    ] {
        let err = parse_expr(expr).unwrap_err().0;
        assert!(err.contains(word), "{expr}: {err}");
        assert!(err.contains(at), "{expr}: {err}");
        assert!(err.contains("xsktap supports"), "lists the subset: {err}");
        assert_eq!(err.lines().count(), 1);
    }
}

#[test]
fn encoding_marks_accept_and_reject_past_the_end() {
    let e = parse_expr("udp and port 53").unwrap();
    let p = Program::compile(e.as_ref(), 64).unwrap();
    let enc = p.encode();
    assert_eq!(enc.len(), p.tests.len());
    assert_eq!(enc[0].op, FilterOp::IpProto);
    assert_eq!(enc[0].jf, TARGET_REJECT, "false on the first test rejects");
    assert!(
        enc.iter().any(|i| i.jt == TARGET_ACCEPT),
        "some test accepts"
    );
    let net = parse_expr("src net 198.18.0.0/15").unwrap();
    let enc = Program::compile(net.as_ref(), 64).unwrap().encode();
    let addr: Vec<u8> = enc[0].addr[0].to_ne_bytes().to_vec();
    let mask: Vec<u8> = enc[0].mask[0].to_ne_bytes().to_vec();
    assert_eq!(&addr[..4], &[198, 18, 0, 0]);
    assert_eq!(&mask[..4], &[255, 254, 0, 0]);
    assert_eq!(enc[0].family, 4);
}

#[test]
fn deep_nesting_is_refused_in_one_line_not_a_stack_overflow() {
    for input in [
        format!("{}udp{}", "(".repeat(20_000), ")".repeat(20_000)),
        format!("{}udp", "! ".repeat(20_000)),
        format!("{}udp", "not ".repeat(20_000)),
    ] {
        let err = parse_expr(&input).unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
        assert!(err.contains("simplify it"), "{err}");
    }
    let ok = format!("{}udp{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(parse_expr(&ok).is_ok());
    let deep = format!(
        "{}udp{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(parse_expr(&deep)
        .unwrap_err()
        .to_string()
        .contains("deeper than 64"));
    let long = vec!["udp"; 5000].join(" and ");
    assert!(parse_expr(&long).unwrap_err().to_string().contains("words"));
}

/// An ARP (or RARP) request with `hw`-byte hardware addresses, from
/// 198.18.0.1 for 198.18.0.2, cut to `len` bytes when given.
fn arp(ethertype: u16, hw: u8, len: Option<usize>) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, hw, 4, 0, 1]);
    for ip in [[198, 18, 0, 1], [198, 18, 0, 2]] {
        f.extend(std::iter::repeat_n(0xaa, usize::from(hw)));
        f.extend_from_slice(&ip);
    }
    f.truncate(len.unwrap_or(f.len()));
    f
}

#[test]
fn arp_and_rarp_addresses_match_where_the_header_puts_them() {
    for ethertype in [ethertype::ARP, ethertype::RARP] {
        for hw in [6, 8] {
            let f = arp(ethertype, hw, None);
            assert!(matches("src host 198.18.0.1", &f), "hw {hw}");
            assert!(matches("dst host 198.18.0.2", &f), "hw {hw}");
            assert!(!matches("dst host 198.18.0.1", &f), "hw {hw}");
            assert!(matches("net 198.18.0.0/16", &f), "hw {hw}");
        }
        assert_eq!(
            matches("arp", &arp(ethertype, 6, None)),
            ethertype == ethertype::ARP
        );
        assert_eq!(
            matches("rarp", &arp(ethertype, 6, None)),
            ethertype == ethertype::RARP
        );
        // Addresses cut short are not matched (the frame is malformed).
        let cut = arp(ethertype, 6, Some(14 + 8 + 16));
        assert!(!matches("host 198.18.0.1", &cut));
        assert!(matches("not host 198.18.0.1", &cut));
    }
}
