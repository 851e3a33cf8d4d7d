//! IPFIX messages from `xsktap_core::ipfix` read back by an independent
//! collector: Debian's `nfcapd` listening on the loopback of a test bed's
//! namespace, its file read by `nfdump`. Needs root (the namespace).

use std::net::UdpSocket;
use std::time::Duration;

use xsktap_bench::netns;
use xsktap_bench::nfcapd::{Collector, PORT};
use xsktap_bench::testbed::{require_root, Testbed};
use xsktap_core::ipfix::{Exporter, FlowRecord, DEFAULT_MAX_MESSAGE};

fn flows() -> Vec<FlowRecord> {
    let base = 1_764_900_000_000u64;
    let mut v: Vec<FlowRecord> = (0..300u64)
        .map(|i| FlowRecord {
            src: format!("198.18.{}.{}", i / 200, i % 200 + 1)
                .parse()
                .unwrap(),
            dst: "198.18.0.2".parse().unwrap(),
            sport: 40_000 + i as u16,
            dport: if i % 2 == 0 { 443 } else { 53 },
            proto: if i % 2 == 0 { 6 } else { 17 },
            tcp_flags: if i % 2 == 0 { 0x1b } else { 0 },
            vlan: 0,
            packets: i + 1,
            bytes: 100 * (i + 1),
            start_ms: base + i,
            end_ms: base + i + 1500,
        })
        .collect();
    v.push(FlowRecord {
        src: "2001:2::1".parse().unwrap(),
        dst: "2001:2::2".parse().unwrap(),
        sport: 5353,
        dport: 53,
        proto: 17,
        tcp_flags: 0,
        vlan: 0,
        packets: 9,
        bytes: 900,
        start_ms: base,
        end_ms: base + 10,
    });
    v
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn nfdump_reads_back_every_flow_with_its_packets_and_bytes() {
    require_root();
    let bed = Testbed::named("xf", 1);
    let ns = bed.ns_b();
    let mut collector = Collector::start(&ns);
    let records = flows();
    std::thread::scope(|s| {
        s.spawn(|| {
            netns::enter(&ns).expect("entering namespace b");
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.connect(("127.0.0.1", PORT)).unwrap();
            let mut e = Exporter::new(1, DEFAULT_MAX_MESSAGE);
            let messages = e.messages(&records, 1_764_900_010, true);
            assert!(messages.len() > 10);
            for m in messages {
                socket.send(&m).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        })
        .join()
        .expect("exporter thread");
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut got = collector.stop_and_read();
    let mut expected: Vec<String> = records
        .iter()
        .map(|r| {
            // Duration from flowStart/EndMilliseconds; flags as nfdump spells them.
            let secs = (r.end_ms - r.start_ms) as f64 / 1000.0;
            let flags = if r.tcp_flags == 0x1b {
                "...AP.SF"
            } else {
                "........"
            };
            format!(
                "{},{},{},{},{},{},{},{secs:.3},{flags}",
                r.src, r.dst, r.sport, r.dport, r.proto, r.packets, r.bytes
            )
        })
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}
