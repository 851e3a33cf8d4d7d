//! The rate limit in the real XDP program (`--limit-pps`), as root: every
//! variant of the program loads with every kind of limit (the verifier's
//! complexity bound; the device-bound hardware variant on a test bed's
//! veth), and through BPF_PROG_TEST_RUN (nothing attached or sent) a source
//! repeating itself gets its burst and is then dropped and counted while
//! another source is not.

use xsktap_bench::frames::udp_frame;
use xsktap_bench::testbed::require_root;
use xsktap_core::limit::{LimitBy, RateLimit};
use xsktap_sys::loader::{Stamps, XdpProgram};

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn every_variant_loads_with_every_kind_of_limit() {
    require_root();
    for stamps in [Stamps::Software, Stamps::None] {
        for by in [LimitBy::Source, LimitBy::Destination, LimitBy::Flow] {
            for all in [false, true] {
                let limit = RateLimit::new(1000, by, all);
                let program = XdpProgram::load(stamps, limit)
                    .unwrap_or_else(|e| panic!("{stamps:?} {by:?} all={all}: {e}"));
                assert_eq!(program.limit(), limit);
                assert!(program.limited_keys().unwrap().is_some());
            }
        }
    }
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_source_repeating_itself_is_dropped_after_its_burst_and_another_is_not() {
    require_root();
    // One frame a second: the first frame and one interval of tolerance pass.
    let limit = RateLimit::new(1, LimitBy::Source, false);
    let program = XdpProgram::load(Stamps::Software, limit).unwrap();
    program.capture_queue_without_socket(0).unwrap();
    let frame = udp_frame(60, 1, 0);
    program.time_run(&frame, 1000).unwrap();
    let c = program.counters(0).unwrap();
    assert_eq!((c.seen, c.limited), (1000, 998), "{c:?}");
    assert_eq!(
        c.redirect_failed, 2,
        "the two that passed went on (no socket)"
    );
    let mut other = frame.clone();
    other[26..30].copy_from_slice(&[198, 18, 0, 77]);
    program.time_run(&other, 1).unwrap();
    let c = program.counters(0).unwrap();
    assert_eq!((c.seen, c.limited), (1001, 998), "{c:?}");
    let keys = program.limited_keys().unwrap().unwrap();
    let dropped: Vec<(String, u64)> = keys
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_string(), *n))
        .collect();
    let src = std::net::Ipv4Addr::from(<[u8; 4]>::try_from(&frame[26..30]).unwrap());
    assert_eq!(dropped, vec![(format!("src {src}"), 998)]);
    assert_eq!(keys.len(), 2, "both sources have a bucket");
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn the_hardware_variant_loads_with_every_kind_of_limit() {
    use xsktap_bench::{netns, testbed::Testbed};
    let bed = Testbed::named("xl", 1);
    let ns = bed.ns_b();
    std::thread::scope(|s| {
        s.spawn(|| {
            netns::enter(&ns).expect("entering namespace b");
            let ifindex = xsktap_sys::netdev::ifindex(&ns).expect("the test bed's interface");
            for by in [LimitBy::Source, LimitBy::Destination, LimitBy::Flow] {
                for all in [false, true] {
                    let limit = RateLimit::new(1000, by, all);
                    XdpProgram::load(Stamps::Hardware { ifindex }, limit)
                        .unwrap_or_else(|e| panic!("hardware {by:?} all={all}: {e}"));
                }
            }
        })
        .join()
        .expect("test thread");
    });
}
