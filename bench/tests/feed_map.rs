//! The XDP program's feed set (`xsktap feed`): with feed lines installed it
//! selects exactly the UDP frames to one of them (address and port, IPv4
//! and IPv6), and the capture's filter still applies on top. Needs root:
//! the real program runs each frame through BPF_PROG_TEST_RUN (nothing is
//! attached or sent).

use std::net::IpAddr;

use xsktap_bench::frames::udp_frame;
use xsktap_bench::testbed::require_root;
use xsktap_core::filter::{parse_expr, Program};
use xsktap_sys::loader::{Stamps, XdpProgram};

/// `udp_frame`'s frame with its destination address and port replaced (IPv4
/// checksum not recomputed: the program does not check it).
fn to(dst: [u8; 4], port: u16) -> Vec<u8> {
    let mut f = udp_frame(60, 1, 0);
    f[30..34].copy_from_slice(&dst);
    f[36..38].copy_from_slice(&port.to_be_bytes());
    f
}

fn lines(n: u16) -> Vec<(IpAddr, u16)> {
    (0..n)
        .map(|i| {
            let ip: IpAddr = [198, 19, (i >> 8) as u8, i as u8].into();
            (ip, 26_400 + i % 7)
        })
        .collect()
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn only_frames_to_a_feed_line_are_selected() {
    require_root();
    let program = XdpProgram::load(Stamps::Software, None).unwrap();
    let mut all = lines(1000);
    let v6: IpAddr = "2001:2::99".parse().unwrap();
    all.push((v6, 30_000));
    program.set_feeds(&all).unwrap();
    program.capture_queue_without_socket(0).unwrap();
    let feed = to([198, 19, 1, 2], 26_400 + 258 % 7);
    assert!(program.dry_run(&feed).unwrap(), "a feed line");
    assert!(
        !program.dry_run(&to([198, 19, 1, 2], 26_399)).unwrap(),
        "another port"
    );
    assert!(
        !program.dry_run(&to([198, 19, 9, 9], 26_400)).unwrap(),
        "another address"
    );
    let mut tcp = feed.clone();
    tcp[23] = 6;
    assert!(!program.dry_run(&tcp).unwrap(), "TCP to a feed's port");
    let (mut six, _, _) = xsktap_bench::frames::udp6_frame(80);
    six[38..54].copy_from_slice(&match v6 {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(_) => unreachable!(),
    });
    six[56..58].copy_from_slice(&30_000u16.to_be_bytes());
    assert!(program.dry_run(&six).unwrap(), "an IPv6 feed line");
    // The filter still applies on top of the feed set.
    let no = Program::compile(parse_expr("not udp").unwrap().as_ref(), 64).unwrap();
    program.set_filter(&no).unwrap();
    assert!(!program.dry_run(&feed).unwrap());
    let yes = Program::compile(parse_expr("dst net 198.19.0.0/16").unwrap().as_ref(), 64).unwrap();
    program.set_filter(&yes).unwrap();
    assert!(program.dry_run(&feed).unwrap());
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn too_many_feed_lines_are_refused() {
    require_root();
    let program = XdpProgram::load(Stamps::Software, None).unwrap();
    let many: Vec<(IpAddr, u16)> = (0..5000u32)
        .map(|i| (IpAddr::from([198, 18, (i >> 8) as u8, i as u8]), 1))
        .collect();
    let err = program.set_feeds(&many).unwrap_err().to_string();
    assert!(err.contains("at most 4096"), "{err}");
}
