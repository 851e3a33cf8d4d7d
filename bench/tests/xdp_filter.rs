//! The filter the XDP program runs and the userspace evaluator of the same
//! compiled program select the same frames. Needs root: the real program is
//! loaded and each frame is run through it with BPF_PROG_TEST_RUN (nothing
//! is attached and nothing is sent).

use etherparse::PacketBuilder;
use xsktap_bench::testbed::require_root;
use xsktap_core::filter::{parse_expr, Program};
use xsktap_core::parse::parse;
use xsktap_sys::loader::{Stamps, XdpProgram};

const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// A small deterministic generator (no dependency needed for test data).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.next() as usize % items.len()]
    }
}

fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0, 2]);
    a[15] = last;
    a
}

/// IPv6 with extension headers (each given as its type), then UDP.
fn ipv6_ext(exts: &[u8], sport: u16, dport: u16, fragment_offset: u16) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, kind) in exts.iter().enumerate() {
        let next = exts.get(i + 1).copied().unwrap_or(17);
        if *kind == 44 {
            let off = fragment_offset << 3 | 1;
            body.extend_from_slice(&[next, 0, (off >> 8) as u8, off as u8, 0, 0, 0, 9]);
        } else {
            body.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
    }
    body.extend_from_slice(&sport.to_be_bytes());
    body.extend_from_slice(&dport.to_be_bytes());
    body.extend_from_slice(&[0, 12, 0, 0, 1, 2, 3, 4]);
    let mut f = Vec::new();
    f.extend_from_slice(&B);
    f.extend_from_slice(&A);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(body.len() as u16).to_be_bytes());
    f.extend_from_slice(&[exts.first().copied().unwrap_or(17), 64]);
    f.extend_from_slice(&v6(1));
    f.extend_from_slice(&v6(2));
    f.extend_from_slice(&body);
    f
}

fn arp(spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&A);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&A);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&tpa);
    f
}

fn corpus() -> Vec<Vec<u8>> {
    let mut rng = Lcg(7);
    let mut frames = Vec::new();
    let hosts4 = [
        [198, 18, 0, 1],
        [198, 18, 0, 2],
        [198, 19, 7, 7],
        [10, 0, 0, 1],
    ];
    let ports = [22u16, 53, 80, 443, 1000, 1500, 2000, 5353, 40000];
    for i in 0..300 {
        let src = rng.pick(&hosts4);
        let dst = rng.pick(&hosts4);
        let (sport, dport) = (rng.pick(&ports), rng.pick(&ports));
        let vlans = rng.next() % 3;
        let kind = rng.next() % 4;
        let vlan_a = (rng.next() % 4 + 5) as u16;
        let vlan_b = (rng.next() % 4 + 5) as u16;
        let payload = vec![0u8; (rng.next() % 40) as usize];
        let b = PacketBuilder::ethernet2(A, B);
        let mut f = Vec::new();
        macro_rules! l4 {
            ($ip:expr, $v6:expr) => {{
                let ip = $ip;
                match kind {
                    0 => ip
                        .tcp(sport, dport, 1, 10)
                        .syn()
                        .write(&mut f, &payload)
                        .unwrap(),
                    1 => ip.udp(sport, dport).write(&mut f, &payload).unwrap(),
                    _ if $v6 => ip
                        .icmpv6_echo_request(1, 1)
                        .write(&mut f, &payload)
                        .unwrap(),
                    _ => ip
                        .icmpv4_echo_request(1, 1)
                        .write(&mut f, &payload)
                        .unwrap(),
                }
            }};
        }
        let va = vlan_a.try_into().unwrap();
        let vb = vlan_b.try_into().unwrap();
        let (s6, d6) = (v6(src[3]), v6(dst[3]));
        match (vlans, i % 2 == 0) {
            (0, true) => l4!(b.ipv4(src, dst, 64), false),
            (0, false) => l4!(b.ipv6(s6, d6, 64), true),
            (1, true) => l4!(b.single_vlan(va).ipv4(src, dst, 64), false),
            (1, false) => l4!(b.single_vlan(va).ipv6(s6, d6, 64), true),
            (_, true) => l4!(b.double_vlan(va, vb).ipv4(src, dst, 64), false),
            (_, false) => l4!(b.double_vlan(va, vb).ipv6(s6, d6, 64), true),
        }
        // Some IPv4 fragments: first (MF set) or later (offset), protocol kept.
        if i % 2 == 0 && vlans == 0 && i % 5 == 0 {
            f[20] = if i % 10 == 0 { 0x20 } else { 0x00 };
            f[21] = if i % 10 == 0 { 0 } else { 50 };
        }
        frames.push(f);
    }
    for exts in [
        &[0u8][..],
        &[0, 43, 60],
        &[44],
        &[60, 44],
        &[0, 0, 0, 0, 0, 0, 0, 0],
        &[0, 0, 0, 0, 0, 0, 0, 0, 0],
    ] {
        for (sp, dp) in [(53u16, 40000u16), (443, 22)] {
            frames.push(ipv6_ext(exts, sp, dp, 0));
            frames.push(ipv6_ext(exts, sp, dp, 3));
        }
    }
    frames.push(arp([198, 18, 0, 1], [198, 18, 0, 2]));
    frames.push(arp([10, 0, 0, 1], [198, 19, 7, 7]));
    // Damaged copies: cut short, a byte changed, Ethernet padding added.
    let n = frames.len();
    for i in 0..n {
        let mut f = frames[i].clone();
        match rng.next() % 3 {
            0 => f.truncate((rng.next() as usize) % f.len().max(1)),
            1 => {
                let at = rng.next() as usize % f.len();
                f[at] = rng.next() as u8;
            }
            _ => f.resize(f.len().max(60) + 4, 0xee),
        }
        // BPF_PROG_TEST_RUN needs at least an Ethernet header.
        if f.len() >= 14 {
            frames.push(f);
        }
    }
    frames
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn kernel_and_userspace_filters_agree() {
    require_root();
    let program = XdpProgram::load(Stamps::Software, None).expect("loading the XDP program");
    program.capture_queue_without_socket(0).unwrap();
    let frames = corpus();
    let exprs = [
        "",
        "tcp",
        "udp",
        "icmp",
        "icmp6",
        "ip",
        "ip6",
        "arp",
        "vlan",
        "vlan 6",
        "vlan 7 and udp",
        "port 53",
        "src port 53",
        "dst port 40000",
        "portrange 1000-2000",
        "tcp dst port 22",
        "udp src portrange 50-60",
        "host 198.18.0.1",
        "src host 198.18.0.2",
        "dst host 10.0.0.1",
        "net 198.18.0.0/15",
        "src net 198.19.0.0/16",
        "host 2001:2::1",
        "net 2001:2::/48",
        "dst net 2001:2::2/127",
        "not ip",
        "tcp or icmp",
        "(udp and port 53) or (tcp and not port 22)",
        "ip6 and not (icmp6 or port 443)",
        "not vlan and (host 198.18.0.1 or host 2001:2::2) and not arp",
    ];
    let mut selecting = 0;
    for expr in exprs {
        let parsed = parse_expr(expr).unwrap();
        let compiled = Program::compile(parsed.as_ref(), program.max_filter_tests()).unwrap();
        program.set_filter(&compiled).unwrap();
        let mut selected = 0;
        for f in &frames {
            let kernel = program.dry_run(f).expect("test run");
            let user = compiled.matches(&parse(f));
            assert_eq!(
                kernel,
                user,
                "filter {expr:?} disagrees on frame {f:02x?} (parsed {:?})",
                parse(f)
            );
            selected += usize::from(kernel);
        }
        assert!(
            expr.is_empty() || selected < frames.len(),
            "{expr:?} selected everything"
        );
        if selected > 0 {
            selecting += 1;
        }
    }
    assert_eq!(selecting, exprs.len(), "every filter selects some frame");
}
