//! Fleet export (issue 16) as root on a test bed, against real servers
//! started inside the bed's namespace b on its 127.0.0.1: Debian's
//! `clickhouse-server` (bench/src/clickhouse.rs) and `nfcapd`, read back by
//! their own clients (`clickhouse-client`, `nfdump`).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use etherparse::PacketBuilder;
use xsktap_bench::clickhouse::ClickHouse;
use xsktap_bench::frames::{IP_B, MAC_A, MAC_B};

/// UDP from `src`:`sport` to 198.18.0.2:`dport` with a `len`-byte payload.
fn udp(src: [u8; 4], sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(src, IP_B, 64)
        .udp(sport, dport)
        .write(&mut f, &vec![0x5a; len])
        .unwrap();
    f
}

/// `flows` flows from 198.18.0.1 (source ports 40000…), `per_flow` frames
/// each, interleaved; payload length varies per flow (bytes are checked).
fn known_traffic(flows: u16, per_flow: u16) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for _ in 0..per_flow {
        for f in 0..flows {
            frames.push(udp([198, 18, 0, 1], 40_000 + f, 9, 18 + usize::from(f % 7)));
        }
    }
    frames
}

fn frame_bytes(frames: &[Vec<u8>]) -> u64 {
    // The capture counts a frame's length on the wire without the FCS.
    frames.iter().map(|f| f.len() as u64).sum()
}

/// A port scan: 198.18.0.5 to 150 destination ports within a second.
fn scan() -> Vec<Vec<u8>> {
    (0..150u16)
        .map(|p| udp([198, 18, 0, 5], 50_000, 1000 + p, 18))
        .collect()
}

/// Stops a capture with SIGINT, checks it ended well within `secs` and
/// returns its stderr.
fn stopped(cap: &mut Running, secs: u64) -> String {
    cap.signal(libc::SIGINT);
    let status = cap.wait(Duration::from_secs(secs));
    let stderr = cap.stderr();
    assert!(status.success(), "{stderr}");
    stderr
}

fn export_flags<'a>(ch: &'a str, name: &'a str) -> Vec<&'a str> {
    vec![
        "--export-clickhouse",
        ch,
        "--export-create",
        "--export-name",
        name,
    ]
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn flows_stats_and_events_reach_clickhouse_and_sum_to_the_capture() {
    let bed = Testbed::named("xe", 1);
    let ch = ClickHouse::start(&bed.ns_b());
    let url = ch.url(Some("fleet"));
    let json = temp_path("export.json");
    let mut args = export_flags(&url, "tap-a");
    args.extend([
        "--summary-json",
        json.to_str().unwrap(),
        "--alert-scan-secs",
        "2",
        "--duration",
        "60",
        "-q",
    ]);
    let mut cap = bed.start_capture(&args);
    // The export's line follows the capture's: waited for, not raced.
    cap.wait_for_stderr(
        "xsktap: exporting flows, statistics each second and events to ClickHouse at http://127.0.0.1:18123",
        Duration::from_secs(5),
    );
    let traffic = known_traffic(40, 100);
    let scan = scan();
    bed.send_paced(&traffic[..2000], 2000.0);
    bed.send(&scan);
    bed.send_paced(&traffic[2000..], 2000.0);
    // The scan ends once a quiet window passes.
    std::thread::sleep(Duration::from_secs(5));
    let stderr = stopped(&mut cap, 60);
    let s = typed_summary(&json);
    let n = (traffic.len() + scan.len()) as u64;
    assert_eq!(s.packets, n, "{stderr}");

    let q = |sql: &str| ch.number(sql);
    // Every packet in exactly one flow row; 40 + 150 flows.
    assert_eq!(
        q("SELECT sum(packets) FROM fleet.flows WHERE host = 'tap-a'"),
        n,
        "{stderr}"
    );
    assert_eq!(
        q("SELECT sum(bytes) FROM fleet.flows WHERE host = 'tap-a'"),
        frame_bytes(&traffic) + frame_bytes(&scan)
    );
    assert_eq!(
        q("SELECT count(DISTINCT src, dst, src_port, dst_port, proto) FROM fleet.flows WHERE host = 'tap-a'"),
        190
    );
    assert_eq!(
        q(&format!(
            "SELECT count() FROM fleet.flows WHERE host = 'tap-a' AND interface = '{}' AND proto = 17 AND src = '198.18.0.1' AND dst = '198.18.0.2' AND dst_port = 9",
            bed.ns_b()
        )),
        q("SELECT count() FROM fleet.flows WHERE host = 'tap-a' AND src = '198.18.0.1'"),
        "columns hold the flow's fields"
    );
    assert_eq!(
        q("SELECT count() FROM fleet.flows WHERE host = 'tap-a' AND (end_ms < start_ms OR start != intDiv(start_ms, 1000))"),
        0
    );
    // The per-second statistics sum to the summary.
    assert_eq!(
        q("SELECT sum(packets) FROM fleet.stats WHERE host = 'tap-a'"),
        s.packets
    );
    assert_eq!(
        q("SELECT sum(received) FROM fleet.stats WHERE host = 'tap-a'"),
        s.queues.iter().map(|q| q.received).sum::<u64>()
    );
    assert!(q("SELECT count() FROM fleet.stats WHERE host = 'tap-a'") >= 3);
    // The kernel's and the XDP program's counters were read: none is NULL.
    assert_eq!(
        q("SELECT countIf(rx_ring_full IS NULL OR xdp_redirect_failed IS NULL) FROM fleet.stats WHERE host = 'tap-a'"),
        0
    );
    assert_eq!(
        q("SELECT sum(rx_ring_full) + sum(rx_dropped) FROM fleet.stats WHERE host = 'tap-a'"),
        0
    );
    // Events: the start, the scan's start and end, the stop with its JSON.
    let events = ch.query(
        "SELECT kind, subject, state FROM fleet.events WHERE host = 'tap-a' ORDER BY time_ms, kind FORMAT TSV",
    );
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(format!("start\t{}\t", bed.ns_b()).as_str()),
        "{events}"
    );
    assert!(lines.contains(&"scan\tsrc 198.18.0.5\tstart"), "{events}");
    assert!(lines.contains(&"scan\tsrc 198.18.0.5\tend"), "{events}");
    assert_eq!(
        lines.last().map(|l| l.trim_end()),
        Some(format!("stop\t{}", bed.ns_b()).as_str()),
        "{events}"
    );
    let stop = ch.query("SELECT json FROM fleet.events WHERE host = 'tap-a' AND kind = 'stop'");
    let stop: serde_json::Value = serde_json::from_str(&stop).expect("the stop event's JSON");
    assert_eq!(stop["packets"], n);
    // The summary says what was sent.
    let e = s.export.expect("the summary has the export");
    assert_eq!(e.flow_packets_sent, n);
    assert_eq!((e.dropped_rows, e.dropped_flow_packets), (0, 0));
    assert!(
        stderr.contains(&format!(
            "export to ClickHouse at http://127.0.0.1:18123: {} flow rows ({n} packets)",
            e.rows_sent[0]
        )),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_30_second_outage_of_clickhouse_loses_and_duplicates_nothing() {
    let bed = Testbed::named("xo", 1);
    let mut ch = ClickHouse::start(&bed.ns_b());
    let url = ch.url(Some("fleet"));
    let json = temp_path("export-outage.json");
    let spool = temp_path("export-spool");
    let mut args = export_flags(&url, "tap-o");
    args.extend([
        "--export-spool",
        spool.to_str().unwrap(),
        "--export-active-timeout",
        "2",
        "--summary-json",
        json.to_str().unwrap(),
        "--no-alerts",
        "--serve",
        "19612",
        "--duration",
        "120",
        "-q",
    ]);
    let mut cap = bed.start_capture(&args);
    let traffic = known_traffic(50, 200);
    let (before, rest) = traffic.split_at(3000);
    let (during, after) = rest.split_at(4000);
    bed.send_paced(before, 1000.0);
    ch.stop();
    let down = Instant::now();
    bed.send_paced(during, 200.0);
    while down.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let spooled = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
    assert!(spooled > 0, "batches waited on disk during the outage");
    // /metrics shows the outage and what waits.
    let metrics = metrics_until(&bed, 19612, "xsktap_export_connected{} 0");
    assert!(metrics.contains("xsktap_export_connected{} 0"), "{metrics}");
    let waiting: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("xsktap_export_spooled_rows{} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(waiting > 0, "{metrics}");
    ch.restart();
    bed.send_paced(after, 1000.0);
    std::thread::sleep(Duration::from_secs(3));
    let stderr = stopped(&mut cap, 90);
    let s = typed_summary(&json);
    let n = traffic.len() as u64;
    assert_eq!(s.packets, n, "{stderr}");
    assert_eq!(
        ch.number("SELECT sum(packets) FROM fleet.flows WHERE host = 'tap-o'"),
        n,
        "{stderr}"
    );
    assert_eq!(
        ch.number("SELECT sum(packets) FROM fleet.stats WHERE host = 'tap-o'"),
        n
    );
    assert_eq!(
        ch.number(
            "SELECT count() FROM fleet.events WHERE host = 'tap-o' AND kind IN ('start', 'stop')"
        ),
        2
    );
    // No batch twice.
    assert_eq!(
        ch.number("SELECT count() FROM (SELECT batch, count() AS c FROM fleet.flows WHERE host = 'tap-o' GROUP BY batch, queue, start_ms, src_port HAVING c > 1)"),
        0
    );
    let e = s.export.expect("the summary has the export");
    assert!(e.retries > 0, "{e:?}");
    assert_eq!((e.dropped_rows, e.dropped_flow_packets), (0, 0), "{e:?}");
    assert_eq!(e.left_in, None);
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "the spool emptied"
    );
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn bad_urls_unreachable_servers_and_wrong_credentials_are_one_line() {
    let bed = Testbed::named("xb", 1);
    // Checked before anything else: exit 2 and nothing attached.
    for (url, says) in [
        ("127.0.0.1:18123", "not an http URL"),
        ("http://127.0.0.1", "HOST:PORT is needed"),
        (
            "http://127.0.0.1:18123/?password=x",
            "XSKTAP_CLICKHOUSE_PASSWORD",
        ),
    ] {
        assert_refused(&bed, &["--export-clickhouse", url], says);
    }
    // Nothing listens yet: refused at start with the fix, or captured anyway.
    let iface = bed.ns_b();
    let out = run(bed.xsktap(&[
        "capture",
        "-i",
        &iface,
        "--export-clickhouse",
        "http://127.0.0.1:18123",
        "--duration",
        "1",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("xsktap: ClickHouse at http://127.0.0.1:18123: "),
        "{stderr}"
    );
    assert!(lines[0].contains("--export-optional"), "{stderr}");
    assert!(!bed.xdp_attached());
    let json = temp_path("export-optional.json");
    let out = run(bed.xsktap(&[
        "capture",
        "-i",
        &iface,
        "--export-clickhouse",
        "http://127.0.0.1:18123",
        "--export-optional",
        "--summary-json",
        json.to_str().unwrap(),
        "--duration",
        "1",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("capturing anyway (--export-optional)"),
        "{stderr}"
    );
    // Its rows could not be sent and there is no spool directory: counted.
    let e = typed_summary(&json).export.expect("export in the summary");
    assert!(e.dropped_rows > 0, "{e:?}");
    assert!(stderr.contains("rows dropped"), "{stderr}");
    // A real server, a user it does not know.
    let _ch = ClickHouse::start(&bed.ns_b());
    let mut cmd = bed.xsktap(&[
        "capture",
        "-i",
        &iface,
        "--export-clickhouse",
        "http://127.0.0.1:18123/?user=nobody",
        "--duration",
        "1",
    ]);
    cmd.env("XSKTAP_CLICKHOUSE_PASSWORD", "wrong");
    let out = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("nobody"), "{stderr}");
    assert!(
        !stderr.contains("wrong"),
        "the password is never shown: {stderr}"
    );
    // Without --export-create, missing tables are named with the fix.
    let out = run(bed.xsktap(&[
        "capture",
        "-i",
        &iface,
        "--export-clickhouse",
        "http://127.0.0.1:18123/?database=default",
        "--duration",
        "1",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("does not exist: add --export-create"),
        "{stderr}"
    );
    assert!(!bed.xdp_attached());
    let _ = Stdio::null();
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn ipfix_reaches_nfcapd_with_the_same_flows_packets_bytes_and_flags() {
    use std::collections::BTreeMap;
    let bed = Testbed::named("xi", 1);
    let mut collector = xsktap_bench::nfcapd::Collector::start(&bed.ns_b());
    let json = temp_path("export-ipfix.json");
    let mut cap = bed.start_capture(&[
        "--export-ipfix",
        "127.0.0.1:4739",
        "--summary-json",
        json.to_str().unwrap(),
        "--no-alerts",
        "--duration",
        "30",
        "-q",
    ]);
    cap.wait_for_stderr(
        "exporting flows as IPFIX to 127.0.0.1:4739",
        Duration::from_secs(5),
    );
    // 20 TCP connections (SYN, 3 ACKs, FIN-ACK) and 30 UDP flows of 10 frames.
    let mut frames = Vec::new();
    let mut expected: BTreeMap<String, (u64, u64, &str)> = BTreeMap::new();
    for i in 0..20u16 {
        for flags in [0x02, 0x10, 0x10, 0x10, 0x11] {
            let f = common::protocols::tcp4(30_000 + i, 443, flags);
            let e = expected
                .entry(format!("198.18.0.1,198.18.0.2,{},443,6", 30_000 + i))
                .or_insert((0, 0, "...A..SF"));
            e.0 += 1;
            e.1 += f.len() as u64;
            frames.push(f);
        }
    }
    for i in 0..30u16 {
        for _ in 0..10 {
            let f = udp([198, 18, 0, 1], 41_000 + i, 53, 30 + usize::from(i));
            let e = expected
                .entry(format!("198.18.0.1,198.18.0.2,{},53,17", 41_000 + i))
                .or_insert((0, 0, "........"));
            e.0 += 1;
            e.1 += f.len() as u64;
            frames.push(f);
        }
    }
    bed.send_paced(&frames, 2000.0);
    std::thread::sleep(Duration::from_millis(300));
    let stderr = stopped(&mut cap, 60);
    std::thread::sleep(Duration::from_millis(300));
    // Records of one flow (an active timeout splits them) are summed by key.
    let mut got: BTreeMap<String, (u64, u64, String)> = BTreeMap::new();
    for line in collector.stop_and_read() {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 9, "{line}");
        let e = got
            .entry(f[..5].join(","))
            .or_insert((0, 0, f[8].to_string()));
        e.0 += f[5].parse::<u64>().unwrap();
        e.1 += f[6].parse::<u64>().unwrap();
    }
    let expected: BTreeMap<String, (u64, u64, String)> = expected
        .into_iter()
        .map(|(k, (p, b, fl))| (k, (p, b, fl.to_string())))
        .collect();
    assert_eq!(got, expected, "{stderr}");
    let e = typed_summary(&json)
        .export
        .expect("the export in the summary");
    assert_eq!((e.ipfix_records, e.ipfix_errors), (50, 0), "{e:?}");
    assert!(
        stderr.contains("export IPFIX to 127.0.0.1:4739: 50 flow records in"),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_file_read_back_exports_its_flows_on_its_own_clock() {
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    let bed = Testbed::named("xr", 1);
    let ch = ClickHouse::start(&bed.ns_b());
    // 40 flows over 40 s of the file's time (a frame every 10 ms), and one
    // more that stops after its first 10 frames (idle for the rest).
    let t0_ms = 1_700_000_000_000u64;
    let mut frames = known_traffic(40, 100);
    for i in 0..10 {
        frames.insert(i * 2, udp([198, 18, 0, 7], 7, 9, 20));
    }
    let pcap = temp_path("export-read.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&pcap).unwrap()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let ts = Duration::from_millis(t0_ms + 10 * i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .unwrap();
    }
    drop(w);
    let last_ms = t0_ms + 10 * (frames.len() as u64 - 1);
    let json = temp_path("export-read.json");
    let out = run(bed.xsktap(&[
        "capture",
        "-r",
        pcap.to_str().unwrap(),
        "--export-clickhouse",
        &ch.url(Some("fleet")),
        "--export-create",
        "--export-name",
        "tap-r",
        "--summary-json",
        json.to_str().unwrap(),
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let n = frames.len() as u64;
    assert!(
        stderr.contains(&format!("flow rows ({n} packets)")),
        "{stderr}"
    );
    let e = typed_summary(&json)
        .export
        .expect("the export in the summary");
    assert_eq!((e.flow_packets_sent, e.dropped_rows), (n, 0), "{e:?}");
    // Every frame in exactly one row, under the file's name and times.
    assert_eq!(
        ch.query(
            "SELECT sum(packets), sum(bytes), uniqExact(src, src_port), min(start_ms), max(end_ms), any(interface) FROM fleet.flows WHERE host = 'tap-r' FORMAT TSV"
        ),
        format!(
            "{n}\t{}\t41\t{t0_ms}\t{last_ms}\texport-read.pcap",
            frame_bytes(&frames)
        )
    );
    // The active timeout (10 s) split the long flows on the file's clock;
    // the short one left in one row.
    let long =
        ch.number("SELECT count() FROM fleet.flows WHERE host = 'tap-r' AND src_port = 40000");
    assert!((3..=5).contains(&long), "{long} rows for a flow of 40 s");
    assert_eq!(
        ch.query("SELECT count(), sum(packets) FROM fleet.flows WHERE host = 'tap-r' AND src = '198.18.0.7' FORMAT TSV"),
        "1\t10"
    );
    // One statistics row with the file's counts, and the start and stop.
    assert_eq!(
        ch.query("SELECT count(), sum(packets) FROM fleet.stats WHERE host = 'tap-r' FORMAT TSV"),
        format!("1\t{n}")
    );
    assert_eq!(
        ch.query("SELECT groupArray(kind) FROM (SELECT kind FROM fleet.events WHERE host = 'tap-r' ORDER BY time_ms) FORMAT TSV"),
        "['start','stop']"
    );
    let _ = std::fs::remove_file(&pcap);
}

/// `xsktap feed` of the MoldUDP64 feed at 198.18.0.2:26400, exporting to
/// `url` as `name`, started.
fn start_feed(bed: &Testbed, url: &str, name: &str) -> Running {
    let iface = bed.ns_b();
    let mut cmd = bed.xsktap(&[
        "feed",
        "-i",
        &iface,
        "--moldudp64",
        "198.18.0.2:26400",
        "--export-clickhouse",
        url,
        "--export-create",
        "--export-name",
        name,
    ]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let feed = Running::spawn(cmd);
    feed.wait_for_stderr("xsktap: capturing", Duration::from_secs(20));
    feed
}

/// `xsktap feed` exporting to `url` as `name` while a MoldUDP64 session
/// from 198.18.0.1 loses messages 7 to 10 (8 packets arrive).
fn feed_with_a_gap(bed: &Testbed, url: &str, name: &str) -> String {
    let mut feed = start_feed(bed, url, name);
    // Packets 0..10 (two messages each) without 3 and 4: messages 7 to 10 missing.
    bed.send(&mold_packets([0, 1, 2, 5, 6, 7, 8, 9]));
    std::thread::sleep(Duration::from_millis(1500));
    stopped(&mut feed, 60)
}

/// MoldUDP64 packets number `packets` (from 0, two messages each) of one
/// session, from 198.18.0.1 to the feed at 198.18.0.2:26400.
fn mold_packets(packets: impl IntoIterator<Item = u64>) -> Vec<Vec<u8>> {
    use xsktap_core::feed::{mold, Session};
    let session = Session::new(b"SESSION001").unwrap();
    packets
        .into_iter()
        .map(|p| {
            let payload = mold::encode(&session, 1 + 2 * p, &[&[b'A'; 20], &[b'a'; 31]]);
            let mut f = Vec::new();
            PacketBuilder::ethernet2(MAC_A, MAC_B)
                .ipv4([198, 18, 0, 1], IP_B, 64)
                .udp(40_000, 26_400)
                .write(&mut f, &payload)
                .unwrap();
            f
        })
        .collect()
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn feed_latency_buckets_are_exported_every_10_s_and_at_the_end() {
    let bed = Testbed::named("xl", 1);
    let ch = ClickHouse::start(&bed.ns_b());
    let mut feed = start_feed(&bed, &ch.url(Some("fleet")), "tap-lat");
    // 5 packets in the first 10 s, 7 more at 15 s (the interval's rows are
    // made within a second of its end: 4 s apart from either side).
    bed.send(&mold_packets(0..5));
    std::thread::sleep(Duration::from_secs(15));
    bed.send(&mold_packets(5..12));
    std::thread::sleep(Duration::from_millis(300));
    let stderr = stopped(&mut feed, 60);
    let per_interval = ch.query(
        "SELECT sum(count) FROM fleet.latency WHERE host = 'tap-lat' AND measure = 'receive_to_decode' GROUP BY time_ms ORDER BY time_ms FORMAT TSV",
    );
    assert_eq!(per_interval, "5\n7", "{stderr}");
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_feed_gap_is_an_event_in_clickhouse() {
    let bed = Testbed::named("xg", 1);
    let ch = ClickHouse::start(&bed.ns_b());
    let stderr = feed_with_a_gap(&bed, &ch.url(Some("fleet")), "tap-feed");
    let gaps = ch.query(
        "SELECT subject, visitParamExtractUInt(json, 'from'), visitParamExtractUInt(json, 'to') FROM fleet.events WHERE host = 'tap-feed' AND kind = 'gap' FORMAT TSV",
    );
    assert_eq!(gaps, "198.18.0.2:26400\t7\t10", "{stderr}");
    assert_eq!(
        ch.number("SELECT sum(packets) FROM fleet.flows WHERE host = 'tap-feed'"),
        8
    );
    // The feed's latency buckets: every packet's receive-to-decode once.
    assert_eq!(
        ch.number("SELECT sum(count) FROM fleet.latency WHERE host = 'tap-feed' AND feed = '198.18.0.2:26400' AND measure = 'receive_to_decode'"),
        8
    );
    let rows = ch.number("SELECT count() FROM fleet.latency WHERE host = 'tap-feed'");
    assert!(
        stderr.contains(&format!(", {rows} latency rows in ")),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_full_spool_drops_rows_counts_them_and_keeps_the_rest_for_the_next_run() {
    let bed = Testbed::named("xs", 1);
    let spool = temp_path("export-small-spool");
    let json = temp_path("export-small.json");
    // Nothing listens: every batch waits in a 16 kB spool.
    let mut cap = bed.start_capture(&[
        "--export-clickhouse",
        "http://127.0.0.1:18123/?database=fleet",
        "--export-optional",
        "--export-spool",
        spool.to_str().unwrap(),
        "--export-spool-size",
        "16k",
        "--export-active-timeout",
        "1",
        "--export-name",
        "tap-s",
        "--serve",
        "19613",
        "--summary-json",
        json.to_str().unwrap(),
        "--no-alerts",
        "--duration",
        "60",
        "-q",
    ]);
    let frames = known_traffic(500, 6);
    bed.send_paced(&frames, 1000.0);
    // /metrics counts the drops while capturing (refreshed once a second).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = metrics_until(&bed, 19613, "xsktap_export_dropped_rows_total{} ");
        let dropped: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("xsktap_export_dropped_rows_total{} "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if dropped > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let stderr = stopped(&mut cap, 60);
    let e = typed_summary(&json)
        .export
        .expect("the export in the summary");
    assert!(e.dropped_flow_packets > 0, "{e:?}");
    assert_eq!(e.left_in.as_deref(), spool.to_str(), "{e:?}");
    let kept: u64 = std::fs::read_dir(&spool)
        .unwrap()
        .map(|f| f.unwrap().metadata().unwrap().len())
        .sum();
    assert!(kept > 0 && kept <= 16 * 1024, "{kept} bytes kept");
    assert!(stderr.contains("rows dropped"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "they wait in {} for the next run",
            spool.display()
        )),
        "{stderr}"
    );
    // The next run, with the server up, sends what was kept, then empties the spool.
    let ch = ClickHouse::start(&bed.ns_b());
    // One kept batch already landed (the answer to its insert was lost):
    // the next run, under another name, must find it under the name its
    // rows carry, and not insert it twice.
    let landed = std::fs::read_dir(&spool)
        .unwrap()
        .map(|f| f.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-flows.rowbinary"))
        .expect("a flows batch kept");
    ch.query("CREATE DATABASE fleet");
    ch.query(&xsktap_core::fleet::Table::Flows.ddl(Some("fleet")));
    ch.insert_file("INSERT INTO fleet.flows FORMAT RowBinary", &landed);
    let id = landed.file_name().unwrap().to_string_lossy()[..16].to_string();
    let landed_rows = format!(
        "SELECT count() FROM fleet.flows WHERE host = 'tap-s' AND batch = {}",
        u64::from_str_radix(&id, 16).unwrap()
    );
    let landed_before = ch.number(&landed_rows);
    assert!(landed_before > 0);
    let out = run(bed.xsktap(&[
        "capture",
        "-i",
        &bed.ns_b(),
        "--export-clickhouse",
        &ch.url(Some("fleet")),
        "--export-create",
        "--export-spool",
        spool.to_str().unwrap(),
        "--export-name",
        "tap-t",
        "--duration",
        "2",
        "-q",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
    let sent = ch.number("SELECT sum(packets) FROM fleet.flows WHERE host = 'tap-s'");
    assert_eq!(sent + e.dropped_flow_packets, frames.len() as u64);
    // The batch inserted by hand is there once, under the name it was made under.
    assert_eq!(ch.number(&landed_rows), landed_before);
    let _ = std::fs::remove_dir_all(&spool);
}

/// The ```sql blocks of a Markdown text, split into statements.
fn sql_statements(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in doc.lines() {
        match (&mut block, line.trim_end()) {
            (None, "```sql") => block = Some(String::new()),
            (Some(b), "```") => {
                out.extend(
                    b.split(';')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from),
                );
                block = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn the_fleet_queries_of_docs_fleet_md_run_and_answer() {
    let bed = Testbed::named("xq", 1);
    let ch = ClickHouse::start(&bed.ns_b());
    let url = ch.url(Some("xsktap"));
    // Two hosts: a feed tap in ny4 that sees a gap, a plain tap in ld4.
    feed_with_a_gap(&bed, &url, "tap-ny4-01");
    let mut cap = bed.start_capture(&[
        "--export-clickhouse",
        &url,
        "--export-name",
        "tap-ld4-02",
        "--no-alerts",
        "-q",
    ]);
    bed.send_paced(&known_traffic(10, 20), 1000.0);
    std::thread::sleep(Duration::from_millis(300));
    stopped(&mut cap, 60);
    let gap_at = ch.query(
        "SELECT toString(toDateTime(intDiv(time_ms, 1000))) FROM xsktap.events WHERE kind = 'gap'",
    );
    let doc = std::fs::read_to_string(xsktap_bench::testbed::repo_root().join("docs/fleet.md"))
        .expect("docs/fleet.md");
    let mut answers = Vec::new();
    for sql in sql_statements(&doc) {
        if sql.starts_with("-- current ClickHouse only") {
            continue;
        }
        let sql = sql.replace("2026-12-05 09:30:01", &gap_at);
        answers.push((sql.clone(), ch.query(&format!("{sql} FORMAT TSV"))));
    }
    let answer = |needle: &str| {
        answers
            .iter()
            .find(|(sql, _)| sql.contains(needle))
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("no query with {needle} in docs/fleet.md"))
    };
    // The Distributed tables were made by the document's own statements.
    assert_eq!(ch.number("EXISTS TABLE xsktap.flows_all"), 1);
    let gap = answer("kind = 'gap'");
    let fields: Vec<&str> = gap.split('\t').collect();
    assert_eq!(
        fields[..5],
        [
            "tap-ny4-01",
            bed.ns_b().as_str(),
            "198.18.0.2:26400",
            "7",
            "10"
        ],
        "{gap}"
    );
    let talkers = answer("uniqExact(host)");
    let first: Vec<&str> = talkers
        .lines()
        .next()
        .unwrap_or_default()
        .split('\t')
        .collect();
    assert_eq!(first[0], "198.18.0.1", "{talkers}");
    assert_eq!(first[2], "208", "8 feed packets and 200 others: {talkers}");
    assert_eq!(first[3], "2", "seen by both hosts: {talkers}");
    // The site's p99 from the latency buckets is the capture's own (one
    // host here), over every packet it measured.
    let latency = answer("quantileExactWeighted(0.99)");
    let own = ch.query(
        "SELECT visitParamExtractUInt(json, 'receive_to_decode_p99_ns'), visitParamExtractUInt(json, 'receive_to_decode_count') FROM xsktap.events WHERE kind = 'feed' FORMAT TSV",
    );
    assert_eq!(
        latency,
        format!("ny4\t198.18.0.2:26400\treceive_to_decode\t{own}"),
        "the buckets give the capture's p99 and count"
    );
    assert!(own.ends_with("\t8"), "8 packets measured: {own}");
    let loss = answer("sum(rx_ring_full)");
    assert_eq!(loss.lines().count(), 2, "both hosts: {loss}");
    assert!(loss.contains("tap-ld4-02"), "{loss}");
    // No alert ran: none is on.
    assert_eq!(answer("argMax(state, time_ms)"), "");
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_server_that_answers_only_after_the_start_gets_its_tables_and_every_row() {
    let bed = Testbed::named("xl", 1);
    let json = temp_path("export-late.json");
    let mut cap = bed.start_capture(&[
        "--export-clickhouse",
        "http://127.0.0.1:18123/?database=late",
        "--export-create",
        "--export-optional",
        "--export-name",
        "tap-l",
        "--summary-json",
        json.to_str().unwrap(),
        "--no-alerts",
        "--duration",
        "60",
        "-q",
    ]);
    cap.wait_for_stderr(
        "capturing anyway (--export-optional)",
        Duration::from_secs(5),
    );
    let traffic = known_traffic(20, 50);
    bed.send_paced(&traffic[..500], 500.0);
    // The server comes up during the capture: the tables are made then.
    let ch = ClickHouse::start(&bed.ns_b());
    bed.send_paced(&traffic[500..], 500.0);
    std::thread::sleep(Duration::from_secs(2));
    let stderr = stopped(&mut cap, 60);
    assert_eq!(
        ch.number("SELECT sum(packets) FROM late.flows WHERE host = 'tap-l'"),
        traffic.len() as u64,
        "{stderr}"
    );
    let e = typed_summary(&json)
        .export
        .expect("the export in the summary");
    assert_eq!((e.dropped_rows, e.left_in.as_deref()), (0, None), "{e:?}");
}
