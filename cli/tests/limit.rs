//! Rate limiting in the XDP program (`--limit-pps`), as root on a test bed:
//! a source at ten times the limit gets the limit, one below it loses
//! nothing, every frame sent is captured or counted as limited, and traffic
//! xsktap does not capture is left alone.

mod common;

use std::time::Duration;

use common::*;
use etherparse::PacketBuilder;
use xsktap_bench::frames::{IP_B, MAC_A, MAC_B};

const LIMIT: u64 = 1000;

fn udp_from(src: [u8; 4], seq: u32) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(src, IP_B, 64)
        .udp(40000, 9)
        .write(&mut f, &seq.to_be_bytes())
        .unwrap();
    f
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_source_at_ten_times_the_limit_gets_the_limit_and_the_other_loses_nothing() {
    let bed = Testbed::new(1);
    let pcap = temp_path("limit.pcap");
    let json = temp_path("limit.json");
    let limit = LIMIT.to_string();
    // UDP only: the ping below (ICMP) is not captured, so not limited.
    let mut cap = bed.start_capture(&[
        "-w",
        pcap.to_str().unwrap(),
        "--limit-pps",
        &limit,
        "--duration",
        "30",
        "--summary-json",
        json.to_str().unwrap(),
        "-q",
        "udp",
    ]);
    // Printed after the capture's line: waited for, not raced.
    cap.wait_for_stderr(
        &format!(
            "xsktap: dropping traffic from sources above {LIMIT} pps on {}",
            bed.ns_b()
        ),
        Duration::from_secs(5),
    );
    // 198.18.0.1 at 10,000 frames/s and 198.18.0.3 at 200/s, interleaved,
    // for 5 s (bounded: 51,000 frames).
    let flooder = [198, 18, 0, 1];
    let quiet = [198, 18, 0, 3];
    let mut frames = Vec::new();
    for i in 0..51_000u32 {
        let src = if i % 51 == 50 { quiet } else { flooder };
        frames.push(udp_from(src, i));
    }
    // The host stack answers a ping from the flooding source meanwhile.
    let took = std::thread::scope(|s| {
        let sending = s.spawn(|| bed.send_paced(&frames, 10_200.0));
        let ping = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(500));
            bed.command_a("ping", &["-c", "3", "-i", "0.5", "-W", "2", "198.18.0.2"])
                .output()
                .expect("running ping")
        });
        let ping = ping.join().expect("ping thread");
        assert!(
            ping.status.success(),
            "ping through the limit: {}",
            String::from_utf8_lossy(&ping.stdout)
        );
        sending.join().expect("sender thread")
    });
    std::thread::sleep(Duration::from_millis(300));
    cap.signal(libc::SIGINT);
    let (s, stderr) = finished(&mut cap, &json);

    let (_, records) = read_pcap(&pcap);
    let from = |src: [u8; 4]| records.iter().filter(|r| r.data[26..30] == src).count() as u64;
    let (flooded, calm) = (from(flooder), from(quiet));
    let sent_flooder = 51_000 - 1000;
    // Within 10 % of the limit over the time the flood lasted.
    let expected = LIMIT as f64 * took.as_secs_f64();
    assert!(
        (flooded as f64 - expected).abs() <= 0.1 * expected,
        "{flooded} frames of the flooder captured in {took:?}, expected {expected:.0} ± 10 %\n{stderr}"
    );
    assert_eq!(
        calm, 1000,
        "the source below the limit lost frames\n{stderr}"
    );
    // Every frame is captured or counted, exactly; all limited ones were the flooder's.
    let limit = s.limit.expect("the summary describes the limit");
    assert_eq!(s.packets + limit.limited, 51_000, "{stderr}");
    assert_eq!(limit.limited, sent_flooder - flooded);
    assert_eq!(
        (limit.pps, limit.by.as_str(), limit.all),
        (LIMIT, "src", false)
    );
    assert_eq!(limit.top.len(), 1, "{:?}", limit.top);
    assert_eq!(limit.top[0].key, "src 198.18.0.1");
    assert_eq!(limit.top[0].dropped, limit.limited);
    assert_eq!(
        s.queues.iter().map(|q| q.xdp_limited.unwrap()).sum::<u64>(),
        limit.limited
    );
    assert!(
        stderr.contains(&format!(
            "{} packets dropped by the rate limit (above {LIMIT} pps per src): src 198.18.0.1 {}",
            limit.limited, limit.limited
        )),
        "{stderr}"
    );
    assert_eq!(s.lost, 0);
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn bad_limit_flags_are_one_line_exit_2_and_nothing_attached() {
    let bed = Testbed::new(1);
    let pcap = temp_path("limit-read.pcap");
    write_pcap(&pcap, &[udp_from([198, 18, 0, 1], 0)]);
    for (flags, expected) in [
        (&["--limit-pps", "0"][..], "--limit-pps"),
        (&["--limit-pps", "lots"][..], "--limit-pps"),
        (&["--limit-pps", "2000000000"][..], "--limit-pps"),
        (
            &["--limit-pps", "100", "--limit-by", "host"][..],
            "--limit-by",
        ),
        (&["--limit-all"][..], "--limit-pps"),
        (&["--limit-by", "dst"][..], "--limit-pps"),
    ] {
        assert_refused(&bed, flags, expected);
    }
    // A file read back has no traffic to limit.
    let out = run(bed.xsktap(&[
        "capture",
        "-r",
        pcap.to_str().unwrap(),
        "--limit-pps",
        "100",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--limit-pps"), "{stderr}");
}

/// Runs a capture of UDP only with a limit of 100 pps and `extra` flags
/// while 2,000 TCP frames from one source arrive in a burst; its summary.
fn tcp_burst_past_a_udp_capture(extra: &[&str]) -> xsktap_core::summary::SummaryJson {
    let bed = Testbed::new(1);
    let json = temp_path("limit-all.json");
    let mut args = vec![
        "--limit-pps",
        "100",
        "--duration",
        "30",
        "-c",
        "1",
        "--summary-json",
        json.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    args.push("udp");
    let mut cap = bed.start_capture(&args);
    let frames: Vec<Vec<u8>> = (0..2000u16)
        .map(|i| common::protocols::tcp4(10_000 + i, 80, 0x10))
        .collect();
    bed.send(&frames);
    // One UDP frame ends the capture (-c 1) after the burst.
    bed.send(&[udp_from([198, 18, 0, 9], 0)]);
    finished(&mut cap, &json).0
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn frames_xsktap_does_not_capture_are_limited_only_with_limit_all() {
    // Without --limit-all the TCP frames go to the host stack untouched.
    let s = tcp_burst_past_a_udp_capture(&[]);
    let filtered: u64 = s.queues.iter().map(|q| q.xdp_filtered_out.unwrap()).sum();
    assert_eq!((filtered, s.limit.as_ref().unwrap().limited), (2000, 0));
    // With it they are limited too: the source's burst allowance passes
    // (50 ms at 100 pps: 5 frames, plus the first), the rest is dropped.
    let s = tcp_burst_past_a_udp_capture(&["--limit-all"]);
    let filtered: u64 = s.queues.iter().map(|q| q.xdp_filtered_out.unwrap()).sum();
    let limit = s.limit.expect("the summary has the limit");
    assert!(limit.all);
    assert_eq!(
        filtered + limit.limited,
        2000,
        "{filtered} + {}",
        limit.limited
    );
    assert!((1990..=1995).contains(&limit.limited), "{}", limit.limited);
    assert_eq!(limit.top[0].key, "src 198.18.0.1");
    assert_eq!(s.packets, 1);
}
