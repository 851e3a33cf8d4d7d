//! `xsktap feed` on a test bed: MoldUDP64 packets sent from namespace a
//! with known losses, repeats and damage; the events and the summary must
//! name exactly what was done to them. Needs root.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use etherparse::PacketBuilder;
use xsktap_core::feed::{mold, Session};

const PORT_A: u16 = 26_400;
const PORT_B: u16 = 26_401;

fn session() -> Session {
    Session::new(b"SESSION001").unwrap()
}

/// UDP from 198.18.0.1 to 198.18.0.2:`port` carrying `payload`.
fn udp(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0xc6, 0x12, 0, 1], [2, 0, 0xc6, 0x12, 0, 2])
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(40_000, port)
        .write(&mut f, payload)
        .unwrap();
    f
}

/// Packet `p` of the session (0-based): two messages, sequence 1 + 2p.
fn packet(p: u64) -> Vec<u8> {
    let a = vec![b'A' + (p % 26) as u8; 20];
    let b = vec![b'a' + (p % 26) as u8; 31];
    mold::encode(&session(), 1 + 2 * p, &[&a, &b])
}

/// Starts `xsktap feed` with `args`, its events (JSON lines) written to a file.
fn start_feed(bed: &Testbed, args: &[&str], events: &std::path::Path) -> Running {
    let iface = bed.ns_b();
    let mut all = vec!["feed", "-i", iface.as_str(), "--json"];
    all.extend_from_slice(args);
    let mut cmd = bed.xsktap(&all);
    cmd.stdout(std::fs::File::create(events).unwrap())
        .stderr(Stdio::piped());
    let running = Running::spawn(cmd);
    running.wait_for_stderr("xsktap: capturing", Duration::from_secs(20));
    running
}

fn stop(mut feed: Running, json: &std::path::Path) -> (xsktap_core::summary::SummaryJson, String) {
    std::thread::sleep(Duration::from_millis(300));
    feed.signal(libc::SIGINT);
    finished(&mut feed, json)
}

fn events(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn of_kind<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_feed_reports_each_gap_recovery_heartbeat_and_end_exactly() {
    let bed = Testbed::new(1);
    let (json, out) = (temp_path("feed.json"), temp_path("feed-events.jsonl"));
    let messages = temp_path("feed-messages.bin");
    let line = format!("198.18.0.2:{PORT_A}");
    let feed = start_feed(
        &bed,
        &[
            "--moldudp64",
            &line,
            "--summary-json",
            json.to_str().unwrap(),
            "--serve",
            "19611",
            "--messages",
            messages.to_str().unwrap(),
        ],
        &out,
    );
    let mut frames = Vec::new();
    // Packets 0..10 without 3 and 4 (messages 7 to 10).
    for p in (0..10).filter(|p| ![3, 4].contains(p)) {
        frames.push(udp(PORT_A, &packet(p)));
    }
    // A retransmission of packet 3 (messages 7 and 8), a duplicate of packet 9.
    frames.push(udp(PORT_A, &packet(3)));
    frames.push(udp(PORT_A, &packet(9)));
    // A heartbeat naming 21 (nothing missing), one naming 23 (21 and 22 missing),
    // the end of the session at 23.
    frames.push(udp(PORT_A, &mold::encode_marker(&session(), 21, 0)));
    frames.push(udp(PORT_A, &mold::encode_marker(&session(), 23, 0)));
    frames.push(udp(
        PORT_A,
        &mold::encode_marker(&session(), 23, mold::END_OF_SESSION),
    ));
    // Damaged: the count names three messages, two follow.
    let mut damaged = packet(10);
    damaged[19] = 3;
    frames.push(udp(PORT_A, &damaged));
    // Not the feed: another port. It reaches the host stack, uncounted by the feed.
    frames.push(udp(PORT_B, &packet(0)));
    bed.send(&frames);
    // /metrics carries the feed's counters (refreshed once a second).
    let want = format!(
        "xsktap_feed_messages_total{{feed=\"{line}\",session=\"SESSION001\",line=\"line\"}} 18"
    );
    let metrics = metrics_until(&bed, 19611, &want);
    assert!(metrics.contains(&want), "{metrics}\n{}", feed.stderr());
    assert!(
        metrics
            .contains("xsktap_feed_gaps_total{feed=\"198.18.0.2:26400\",session=\"SESSION001\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("xsktap_feed_missing_messages{"),
        "{metrics}"
    );
    let (s, stderr) = stop(feed, &json);

    let ev = events(&out);
    let gaps: Vec<(u64, u64, u64)> = of_kind(&ev, "gap")
        .iter()
        .map(|g| {
            (
                g["from"].as_u64().unwrap(),
                g["to"].as_u64().unwrap(),
                g["missing"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(gaps, [(7, 10, 4), (21, 22, 2)], "{ev:?}");
    let rec = of_kind(&ev, "recovered");
    assert_eq!(rec.len(), 1, "{ev:?}");
    assert_eq!(
        (rec[0]["from"].as_u64(), rec[0]["to"].as_u64()),
        (Some(7), Some(8))
    );
    assert_eq!(rec[0]["by"], "line");
    assert_eq!(of_kind(&ev, "session_start").len(), 1);
    assert_eq!(of_kind(&ev, "session_end")[0]["next"], 23);
    assert!(ev
        .iter()
        .all(|e| e["feed"] == line.as_str() && e["ts_ns"].as_u64() > Some(0)));

    assert_eq!(s.feeds.len(), 1, "{stderr}");
    let f = &s.feeds[0];
    assert_eq!(f.feed, line);
    assert_eq!(f.session, "SESSION001");
    assert_eq!(f.messages, 16 + 2, "8 packets, then 2 recovered");
    assert_eq!(f.bytes, 9 * 51);
    assert_eq!((f.gaps, f.missing, f.recovered), (2, 4, 2));
    assert_eq!((f.duplicates, f.heartbeats), (2, 2));
    assert_eq!(
        (f.first_seq, f.last_seq, f.next_expected),
        (1, Some(20), 23)
    );
    assert!(f.end_of_session);
    assert_eq!(f.malformed, 1);
    assert_eq!(f.malformed_reasons.get("count_beyond_payload"), Some(&1));
    // Only the feed's 14 frames were taken from the wire; the other one passed.
    assert_eq!(s.received, 14);
    assert_eq!(s.queues[0].xdp_filtered_out, Some(1));
    assert!(
        stderr.contains("feed 198.18.0.2:26400 session SESSION001: 18 messages"),
        "{stderr}"
    );
    // --messages: every message once, as taken (the recovered ones last), BinaryFILE.
    let mut want = Vec::new();
    for p in [0, 1, 2, 5, 6, 7, 8, 9, 3] {
        let bytes = packet(p);
        let d = mold::decode(&bytes).unwrap();
        for m in d.blocks.iter() {
            want.extend_from_slice(&(m.len() as u16).to_be_bytes());
            want.extend_from_slice(m);
        }
    }
    let written = std::fs::read(&messages).unwrap();
    assert!(
        written == want,
        "{} bytes written, {} expected",
        written.len(),
        want.len()
    );
    assert_eq!(f.messages_not_written, 0);
    // Every feed frame timed from its receive stamp to its decoding.
    let r = &f.receive_to_decode;
    assert_eq!(r.count, 14);
    assert!(r.p50_ns > 0 && r.max_ns < 1_000_000_000, "{r:?}");
    // 14 frames sent back to back: the busiest 1 ms window holds several.
    assert!(f.bursts.max_pps_1ms >= 2_000.0, "{:?}", f.bursts);
}

/// Packets 0 to 19 on lines A and B, A losing packets 3, 7 and 12, B
/// losing 5, 7 and 15: the feed misses only packet 7 (messages 15 and 16).
fn ab_frames() -> Vec<Vec<u8>> {
    let (lost_a, lost_b) = ([3u64, 7, 12], [5u64, 7, 15]);
    let mut frames = Vec::new();
    for p in 0..20 {
        if !lost_a.contains(&p) {
            frames.push(udp(PORT_A, &packet(p)));
        }
        if !lost_b.contains(&p) {
            frames.push(udp(PORT_B, &packet(p)));
        }
    }
    frames
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn ab_lines_merge_and_only_a_loss_on_both_is_a_gap() {
    let bed = Testbed::new(2);
    let (json, out) = (temp_path("ab.json"), temp_path("ab-events.jsonl"));
    let ab = format!("itch=198.18.0.2:{PORT_A},198.18.0.2:{PORT_B}");
    let feed = start_feed(
        &bed,
        &[
            "--ab",
            &ab,
            "--ab-window-us",
            "200000",
            "--summary-json",
            json.to_str().unwrap(),
        ],
        &out,
    );
    bed.send(&ab_frames());
    let (s, stderr) = stop(feed, &json);
    let ev = events(&out);
    let gaps: Vec<(u64, u64)> = of_kind(&ev, "gap")
        .iter()
        .map(|g| (g["from"].as_u64().unwrap(), g["to"].as_u64().unwrap()))
        .collect();
    assert_eq!(gaps, [(15, 16)], "only packet 7, lost on both: {ev:?}");
    let f = &s.feeds[0];
    assert_eq!((f.feed.as_str(), f.messages), ("itch", 2 * 19), "{stderr}");
    assert_eq!((f.gaps, f.missing), (1, 2));
    assert_eq!(f.lines.len(), 2);
    let (a, b) = (&f.lines[0], &f.lines[1]);
    assert_eq!((a.line.as_str(), b.line.as_str()), ("A", "B"));
    assert_eq!((a.messages, b.messages), (2 * 17, 2 * 17));
    assert_eq!((a.gaps, b.gaps), (3, 3), "each line's own losses");
    // Lines on different queues race: the sum is what counts, each message once.
    assert_eq!(a.won + b.won, 2 * 19);
    assert!(
        a.won >= 4 && b.won >= 4,
        "each won at least what only it had"
    );
    assert_eq!(
        f.duplicates, 0,
        "a copy on the other line is not a duplicate"
    );
}

/// The multicast addresses `ip maddr` lists on the bed's capturing device.
fn maddrs(bed: &Testbed) -> String {
    let out = std::process::Command::new("ip")
        .args(["-n", &bed.ns_b(), "maddr", "show", "dev", &bed.ns_b()])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn join_holds_the_groups_while_capturing_and_leaves_them_after() {
    let bed = Testbed::new(1);
    let (json, out) = (temp_path("join.json"), temp_path("join-events.jsonl"));
    // Groups that exist only on this bed's veth, inside its namespaces.
    let feed = start_feed(
        &bed,
        &[
            "--join",
            "--moldudp64",
            "239.195.0.1:26400",
            "--moldudp64",
            "[ff15::2001:2]:26400",
            "--summary-json",
            json.to_str().unwrap(),
        ],
        &out,
    );
    let during = maddrs(&bed);
    assert!(during.contains("239.195.0.1"), "{during}");
    assert!(during.contains("ff15::2001:2"), "{during}");
    feed.wait_for_stderr(
        "xsktap: joined 239.195.0.1, ff15::2001:2",
        Duration::from_secs(5),
    );
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0xc6, 0x12, 0, 1], [1, 0, 0x5e, 0x43, 0, 1])
        .ipv4([198, 18, 0, 1], [239, 195, 0, 1], 16)
        .udp(40_000, 26_400)
        .write(&mut f, &packet(0))
        .unwrap();
    bed.send(&[f]);
    let (s, stderr) = stop(feed, &json);
    assert_eq!(s.feeds[0].messages, 2, "{stderr}");
    let after = maddrs(&bed);
    assert!(
        !after.contains("239.195.0.1") && !after.contains("ff15::2001:2"),
        "{after}"
    );
}

/// A MoldUDP64 retransmission server in namespace a on 198.18.0.1:`port`,
/// answering every request from the session's packets 0..20 until `stop`.
fn retransmission_server(
    bed: &Testbed,
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    let ns = bed.ns_a();
    std::thread::spawn(move || {
        xsktap_bench::netns::enter(&ns).unwrap();
        let socket = std::net::UdpSocket::bind(("198.18.0.1", port)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut answered = 0;
        let mut buf = [0u8; 2048];
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !stop.load(std::sync::atomic::Ordering::Relaxed)
            && std::time::Instant::now() < deadline
        {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let (session, seq, count) = mold::decode_request(&buf[..n]).unwrap();
            // The messages of packet p are 1 + 2p and 2 + 2p (see `packet`).
            let msgs: Vec<Vec<u8>> = (seq..seq + u64::from(count))
                .map(|m| {
                    let p = (m - 1) / 2;
                    if m % 2 == 1 {
                        vec![b'A' + (p % 26) as u8; 20]
                    } else {
                        vec![b'a' + (p % 26) as u8; 31]
                    }
                })
                .collect();
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            socket
                .send_to(&mold::encode(&session, seq, &refs), from)
                .unwrap();
            answered += 1;
        }
        answered
    })
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn rerequest_fills_the_gaps_from_the_retransmission_server() {
    let bed = Testbed::new(1);
    let (json, out) = (temp_path("rereq.json"), temp_path("rereq-events.jsonl"));
    let stop_server = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = retransmission_server(&bed, 26_500, stop_server.clone());
    let line = format!("198.18.0.2:{PORT_A}");
    let feed = start_feed(
        &bed,
        &[
            "--moldudp64",
            &line,
            "--rerequest",
            "198.18.0.1:26500",
            "--summary-json",
            json.to_str().unwrap(),
        ],
        &out,
    );
    let frames: Vec<Vec<u8>> = (0..10)
        .filter(|p| ![3, 4, 8].contains(p))
        .map(|p| udp(PORT_A, &packet(p)))
        .collect();
    bed.send(&frames);
    std::thread::sleep(Duration::from_millis(500));
    let (s, stderr) = stop(feed, &json);
    stop_server.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered = server.join().unwrap();
    let f = &s.feeds[0];
    assert_eq!((f.gaps, f.missing, f.recovered), (2, 0, 6), "{stderr}");
    assert_eq!(f.messages, 20);
    let req = f.requests.as_ref().expect("requests counted");
    assert_eq!(
        (req.sent, req.answered, req.unanswered),
        (2, 2, 0),
        "{req:?}"
    );
    assert_eq!(answered, 2);
    let ev = events(&out);
    let rec: Vec<_> = of_kind(&ev, "recovered")
        .iter()
        .map(|r| {
            (
                r["from"].as_u64().unwrap(),
                r["to"].as_u64().unwrap(),
                r["by"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rec,
        [
            (7, 10, "retransmission".to_string()),
            (17, 18, "retransmission".to_string())
        ]
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn an_unreachable_retransmission_server_is_one_line() {
    let bed = Testbed::new(1);
    let (json, out) = (temp_path("rereq-down.json"), temp_path("rereq-down.jsonl"));
    let line = format!("198.18.0.2:{PORT_A}");
    let feed = start_feed(
        &bed,
        &[
            "--moldudp64",
            &line,
            "--rerequest",
            "198.18.0.1:26599",
            "--summary-json",
            json.to_str().unwrap(),
        ],
        &out,
    );
    let frames: Vec<Vec<u8>> = [0, 2].iter().map(|&p| udp(PORT_A, &packet(p))).collect();
    bed.send(&frames);
    std::thread::sleep(Duration::from_millis(800));
    let (s, stderr) = stop(feed, &json);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("--rerequest"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("198.18.0.1:26599") && lines[0].contains("refused"),
        "{stderr}"
    );
    let f = &s.feeds[0];
    assert_eq!((f.gaps, f.missing), (1, 2));
    assert!(f.requests.as_ref().unwrap().sent >= 1);
}

/// `xsktap feed -r PCAP --moldudp64 198.18.0.2:26400 --summary-json JSON ARGS`.
fn read_feed(
    pcap: &std::path::Path,
    json: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = std::process::Command::new(XSKTAP);
    cmd.args(["feed", "-r"])
        .arg(pcap)
        .args(["--moldudp64", "198.18.0.2:26400", "--summary-json"])
        .arg(json)
        .args(args);
    run(cmd)
}

#[test]
fn a_recorded_feed_is_analysed_from_a_file_without_privileges() {
    // The single-line scenario written to a pcap, 1 ms apart, read back with -r.
    let pcap = temp_path("feed-read.pcap");
    let mut frames = Vec::new();
    for p in (0..10).filter(|p| ![3, 4].contains(p)) {
        frames.push(udp(PORT_A, &packet(p)));
    }
    frames.push(udp(PORT_B, &packet(0)));
    write_pcap(&pcap, &frames);
    let json = temp_path("feed-read.json");
    let out = read_feed(&pcap, &json, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let gaps: Vec<_> = of_kind(&ev, "gap")
        .iter()
        .map(|g| (g["from"].as_u64().unwrap(), g["to"].as_u64().unwrap()))
        .collect();
    assert_eq!(gaps, [(7, 10)]);
    let s = typed_summary(&json);
    let f = &s.feeds[0];
    assert_eq!((f.messages, f.gaps, f.missing), (16, 1, 4));
    assert_eq!(s.received, 8, "the other port's frame is not the feed's");
    assert_eq!(
        f.receive_to_decode.count, 0,
        "no receive-to-decode time in a file"
    );
}

#[test]
fn itch_exchange_to_tap_latency_is_measured_in_the_exchanges_day() {
    // write_pcap stamps frame i at 1_700_000_000_000 + i ms (UTC). Each
    // message says it was stamped 50 us (first) and 80 us (second) before,
    // in a New York winter day (UTC-5); the last one claims to come from
    // the future (clocks disagreeing).
    const DAY: u64 = 86_400_000_000_000;
    let h5 = 5 * 3_600_000_000_000u64;
    let itch = |ts: u64| {
        let mut m = vec![b'A', 0, 1, 0, 0];
        m.extend_from_slice(&ts.to_be_bytes()[2..]);
        m.extend_from_slice(&[0; 25]);
        m
    };
    let frames: Vec<Vec<u8>> = (0..5u64)
        .map(|i| {
            let rx = (1_700_000_000_000 + i) * 1_000_000;
            let local = (rx + DAY - h5) % DAY;
            let later = if i == 4 {
                local + 1_000
            } else {
                local - 80_000
            };
            let (a, b) = (itch(local - 50_000), itch(later));
            udp(PORT_A, &mold::encode(&session(), 1 + 2 * i, &[&a, &b]))
        })
        .collect();
    let pcap = temp_path("feed-itch.pcap");
    write_pcap(&pcap, &frames);
    let json = temp_path("feed-itch.json");
    let out = read_feed(&pcap, &json, &["--itch-utc-offset", "-5"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let f = &typed_summary(&json).feeds[0];
    let x = f.exchange_to_tap.as_ref().expect("measured");
    assert_eq!((x.count, f.exchange_to_tap_negative), (9, 1));
    assert!(x.p50_ns.abs_diff(50_000) < 100, "{x:?}");
    assert!(x.max_ns.abs_diff(80_000) < 100, "{x:?}");
    assert!(
        stderr.contains("exchange to tap (ITCH stamps) p50"),
        "{stderr}"
    );
}

/// The Rust example consumer (built by `cargo test`, or built now).
fn rust_consumer() -> std::path::PathBuf {
    let release = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf();
    let bin = release.join("examples/feed_consumer");
    if !bin.exists() {
        let ok = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "-p",
                "xsktap-consumer",
                "--example",
                "feed_consumer",
            ])
            .status()
            .unwrap();
        assert!(ok.success(), "building examples/feed_consumer.rs");
    }
    bin
}

/// Starts a consumer (`program` and its arguments), its summary line to a
/// file, and waits until it has subscribed.
fn start_consumer(program: &[&str], out: &std::path::Path) -> Running {
    let mut cmd = std::process::Command::new(program[0]);
    cmd.args(&program[1..])
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(Stdio::piped());
    let running = Running::spawn(cmd);
    running.wait_for_stderr("feed_consumer: subscribed", Duration::from_secs(20));
    running
}

fn consumer_summary(mut consumer: Running, out: &std::path::Path) -> serde_json::Value {
    let status = consumer.wait(Duration::from_secs(30));
    let stderr = consumer.stderr();
    eprintln!("{stderr}");
    assert!(status.success(), "{stderr}");
    let text = std::fs::read_to_string(out).unwrap();
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text} {stderr}"))
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn published_feeds_reach_rust_and_python_consumers_in_order_with_gap_notices() {
    let bed = Testbed::new(2);
    let (json, out) = (temp_path("pub.json"), temp_path("pub-events.jsonl"));
    // Service names are machine-wide: one of its own per run.
    let name = format!("pub{}", std::process::id());
    let ab = format!("{name}=198.18.0.2:{PORT_A},198.18.0.2:{PORT_B}");
    let feed = start_feed(
        &bed,
        &[
            "--ab",
            &ab,
            "--ab-window-us",
            "200000",
            "--publish",
            "--serve",
            "19612",
            "--summary-json",
            json.to_str().unwrap(),
        ],
        &out,
    );
    feed.wait_for_stderr(
        &format!("publishing over iceoryx2 as xsktap/feed/{name}"),
        Duration::from_secs(5),
    );
    let rust_bin = rust_consumer();
    let (rust_out, py_out) = (temp_path("pub-rust.json"), temp_path("pub-py.json"));
    let rust = start_consumer(
        &[rust_bin.to_str().unwrap(), &name, "--reliable", "--trace"],
        &rust_out,
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/feed_consumer.py");
    let python = start_consumer(&["python3", script, &name, "--reliable"], &py_out);

    bed.send(&ab_frames());
    // The A/B window passes, then the end of session on both lines.
    std::thread::sleep(Duration::from_millis(400));
    let end = mold::encode_marker(&session(), 41, 0xFFFF);
    bed.send(&[udp(PORT_A, &end), udp(PORT_B, &end)]);

    let rust = consumer_summary(rust, &rust_out);
    let python = consumer_summary(python, &py_out);
    let published_metric = format!(
        "xsktap_feed_published_samples_total{{feed=\"{name}\",session=\"SESSION001\",service=\"xsktap/feed/{name}\"}} 22"
    );
    let metrics = metrics_until(&bed, 19612, &published_metric);
    let (s, stderr) = stop(feed, &json);
    assert!(metrics.contains(&published_metric), "{metrics}");
    assert!(
        metrics.contains("xsktap_feed_receive_to_publish_ns{"),
        "{metrics}"
    );
    let f = &s.feeds[0];
    assert_eq!((f.messages, f.gaps), (2 * 19, 1), "{stderr}");
    let published = &f.consumers[0];
    eprintln!("published: {published:?}\n{stderr}");
    assert_eq!(published.name, format!("xsktap/feed/{name}"));
    assert!(published.failed.is_empty(), "{published:?}");
    assert_eq!(
        published.receive_to_delivery.as_ref().unwrap().count,
        2 * 19
    );
    for (who, c) in [("rust", &rust), ("python", &python)] {
        assert_eq!(c["messages"], 2 * 19, "{who}: {c}");
        // Packet p's messages start with 'A' + p and 'a' + p: 19 packets.
        assert_eq!(c["by_type"]["A"], 1, "{who}: {c}");
        assert!(
            c["by_type"].get("H").is_none(),
            "{who}: packet 7 never came: {c}"
        );
        assert_eq!(c["gaps"], serde_json::json!([[15, 16]]), "{who}: {c}");
        assert_eq!(c["unannounced_jumps"], 0, "{who}: in order: {c}");
        assert_eq!(c["late"], 0, "{who}: {c}");
        assert_eq!(c["missed_samples"], 0, "{who}: {c}");
        assert_eq!(c["session_end"], true, "{who}: {c}");
        // Session start, a sample per packet (its two messages), the gap,
        // the end: every sample published.
        assert_eq!(c["samples"], published.delivered, "{who}: {c}");
        assert_eq!(c["samples"], 19 + 3, "{who}: {c}");
    }
}

/// Seconds the stalled subscriber of the four sleeps (`XSKTAP_STALL_SECS`,
/// default 3; the committed run used 10, and 0 for the baseline).
fn stall_secs() -> u64 {
    std::env::var("XSKTAP_STALL_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_stalled_subscriber_loses_only_its_own_samples_and_counts_them_exactly() {
    let bed = Testbed::new(1);
    let (json, out) = (temp_path("stall.json"), temp_path("stall-events.jsonl"));
    let line = format!("198.18.0.2:{PORT_A}");
    let feed = start_feed(
        &bed,
        &[
            "--moldudp64",
            &line,
            "--publish",
            "--summary-json",
            json.to_str().unwrap(),
        ],
        &out,
    );
    // The feed is named GROUP:PORT: its service too.
    let rust_bin = rust_consumer();
    let stall = stall_secs();
    let mut consumers = Vec::new();
    for i in 0..4 {
        let out = temp_path(&format!("stall-consumer-{i}.json"));
        let mut args = vec![
            rust_bin.to_str().unwrap().to_string(),
            line.clone(),
            "--quiet".into(),
        ];
        if i == 0 && stall > 0 {
            // Stalls after 1,000 samples, its buffer the lossy 4,096.
            args.extend([
                "--stall-after".into(),
                "1000".into(),
                "--stall-ms".into(),
                (stall * 1000).to_string(),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        consumers.push((start_consumer(&args, &out), out));
    }
    // 20 kpps of three-message packets for the stall and 3 s more (or
    // XSKTAP_STALL_RUN_SECS, to compare runs of one length).
    let seconds = std::env::var("XSKTAP_STALL_RUN_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(stall + 3);
    let started = std::time::Instant::now();
    let mut p = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let frames: Vec<Vec<u8>> = (p..p + 200)
            .map(|p| {
                let m = [b'A' + (p % 26) as u8; 24];
                udp(PORT_A, &mold::encode(&session(), 1 + 3 * p, &[&m, &m, &m]))
            })
            .collect();
        bed.send(&frames);
        p += 200;
        std::thread::sleep(Duration::from_millis(10));
    }
    let end = mold::encode_marker(&session(), 1 + 3 * p, 0xFFFF);
    bed.send(&[udp(PORT_A, &end)]);
    let results: Vec<serde_json::Value> = consumers
        .into_iter()
        .map(|(c, out)| consumer_summary(c, &out))
        .collect();
    let (s, stderr) = stop(feed, &json);
    eprintln!("{stderr}");
    for r in &results {
        eprintln!("{r}");
    }
    let f = &s.feeds[0];
    assert_eq!(
        (f.messages, f.gaps),
        (3 * p, 0),
        "no capture loss: {stderr}"
    );
    assert_eq!(s.lost, 0, "{stderr}");
    let published = f.consumers[0].delivered;
    assert!(f.consumers[0].failed.is_empty(), "{:?}", f.consumers[0]);
    for (i, r) in results.iter().enumerate() {
        let samples = r["samples"].as_u64().unwrap();
        let missed = r["missed_samples"].as_u64().unwrap();
        assert_eq!(samples + missed, published, "consumer {i}: exact: {r}");
        assert_eq!(r["session_end"], true, "{r}");
        assert_eq!(r["unannounced_jumps"], 0, "{r}");
        if i > 0 || stall == 0 {
            assert_eq!(missed, 0, "consumer {i} did not stall: {r}");
        } else {
            assert!(missed > 0, "the stalled one fell behind: {r}");
            assert!(r["missed_markers"].as_u64().unwrap() >= 1, "{r}");
        }
    }
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_generated_ab_feed_with_faults_matches_its_ground_truth() {
    use xsktap_bench::feedgen::{send_session_in, truth, FeedGenConfig};
    let bed = Testbed::new(2);
    let (json, out) = (temp_path("gen.json"), temp_path("gen-events.jsonl"));
    let name = format!("gen{}", std::process::id());
    let ab = format!("{name}=198.18.0.2:{PORT_A},198.18.0.2:{PORT_B}");
    let feed = start_feed(
        &bed,
        &[
            "--ab",
            &ab,
            "--publish",
            "--summary-json",
            json.to_str().unwrap(),
        ],
        &out,
    );
    let rust_bin = rust_consumer();
    let consumer_out = temp_path("gen-consumer.json");
    let consumer = start_consumer(
        &[rust_bin.to_str().unwrap(), &name, "--reliable", "--quiet"],
        &consumer_out,
    );
    let cfg = FeedGenConfig {
        iface: bed.ns_a(),
        packets: 40_000,
        messages: 4,
        ab: true,
        port_a: PORT_A,
        port_b: PORT_B,
        loss: 0.01,
        dup: 0.01,
        reorder: 0.01,
        seed: u64::from(std::process::id()),
        rate: Some(200_000.0),
        max_duration: Duration::from_secs(30),
        via: Default::default(),
    };
    let t = truth(&cfg);
    let ns = bed.ns_a();
    let generator_cfg = cfg.clone();
    std::thread::spawn(move || send_session_in(&ns, &generator_cfg))
        .join()
        .unwrap()
        .unwrap();
    let c = consumer_summary(consumer, &consumer_out);
    let (s, stderr) = stop(feed, &json);
    assert_eq!(s.lost, 0, "{stderr}");
    let f = &s.feeds[0];
    let ev = events(&out);
    let gaps: Vec<(u64, u64)> = of_kind(&ev, "gap")
        .iter()
        .map(|g| (g["from"].as_u64().unwrap(), g["to"].as_u64().unwrap()))
        .collect();
    assert!(!t.gaps.is_empty(), "the seed gives losses on both lines");
    assert_eq!(gaps, t.gaps, "every gap exactly, none invented");
    assert_eq!(f.messages, t.delivered_messages, "{stderr}");
    assert_eq!(f.gaps, t.gaps.len() as u64);
    assert_eq!(
        f.duplicates,
        (t.duplicated[0] + t.duplicated[1]) * 4,
        "duplicates classified: {stderr}"
    );
    assert!(f.end_of_session && f.next_expected == t.next, "{stderr}");
    let (a, b) = (&f.lines[0], &f.lines[1]);
    assert_eq!(
        (a.messages, b.messages),
        (
            (40_000 - t.lost[0].len() as u64) * 4,
            (40_000 - t.lost[1].len() as u64) * 4
        ),
        "each line's own messages"
    );
    assert_eq!(c["messages"].as_u64(), Some(t.delivered_messages), "{c}");
    let consumer_gaps: Vec<(u64, u64)> = serde_json::from_value(c["gaps"].clone()).unwrap();
    assert_eq!(consumer_gaps, t.gaps, "{c}");
    assert_eq!(
        (c["unannounced_jumps"].as_u64(), c["late"].as_u64()),
        (Some(0), Some(0)),
        "in sequence: {c}"
    );
    assert_eq!(c["missed_samples"], 0, "{c}");
    assert_eq!(
        c["by_type"]["A"].as_u64(),
        Some(t.delivered_messages / 2),
        "{c}"
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn with_recovery_consumers_get_the_whole_session_in_sequence() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use xsktap_bench::feedgen::{send_session_in, serve_retransmissions, truth, FeedGenConfig};
    let bed = Testbed::new(1);
    let (json, out) = (temp_path("rec.json"), temp_path("rec-events.jsonl"));
    let line = format!("198.18.0.2:{PORT_A}");
    let feed = start_feed(
        &bed,
        &[
            "--moldudp64",
            &line,
            "--rerequest",
            "198.18.0.1:26500",
            "--publish",
            "--summary-json",
            json.to_str().unwrap(),
        ],
        &out,
    );
    let rust_bin = rust_consumer();
    let consumer_out = temp_path("rec-consumer.json");
    let consumer = start_consumer(
        &[rust_bin.to_str().unwrap(), &line, "--reliable", "--quiet"],
        &consumer_out,
    );
    let cfg = FeedGenConfig {
        iface: bed.ns_a(),
        packets: 10_000,
        messages: 3,
        ab: false,
        port_a: PORT_A,
        port_b: PORT_B,
        loss: 0.002,
        dup: 0.0,
        reorder: 0.0,
        seed: 11,
        rate: Some(20_000.0),
        max_duration: Duration::from_secs(30),
        via: Default::default(),
    };
    let t = truth(&cfg);
    assert!(!t.gaps.is_empty(), "the seed loses packets");
    let ns = bed.ns_a();
    let done = AtomicBool::new(false);
    let answered = std::thread::scope(|s| {
        let server = s.spawn(|| {
            xsktap_bench::netns::enter(&ns).unwrap();
            let socket = std::net::UdpSocket::bind("198.18.0.1:26500").unwrap();
            serve_retransmissions(&socket, 3, &done)
        });
        s.spawn(|| send_session_in(&ns, &cfg))
            .join()
            .unwrap()
            .unwrap();
        // The consumer ends at the end of session, which comes after every
        // recovered message.
        let c = consumer_summary(consumer, &consumer_out);
        done.store(true, Ordering::Relaxed);
        (server.join().unwrap(), c)
    });
    let (answered, c) = answered;
    let (s, stderr) = stop(feed, &json);
    let f = &s.feeds[0];
    let missing: u64 = t.gaps.iter().map(|g| g.1 - g.0 + 1).sum();
    assert!(answered > 0, "{stderr}");
    assert_eq!(
        (f.gaps, f.recovered, f.missing),
        (t.gaps.len() as u64, missing, 0),
        "{stderr}"
    );
    assert_eq!(f.messages, cfg.packets * 3, "{stderr}");
    assert_eq!(c["messages"].as_u64(), Some(cfg.packets * 3), "{c}");
    assert_eq!(
        c["gaps"],
        serde_json::json!([]),
        "every gap filled before it was passed: {c}"
    );
    assert_eq!(
        (c["unannounced_jumps"].as_u64(), c["late"].as_u64()),
        (Some(0), Some(0)),
        "in sequence: {c}"
    );
    assert_eq!(c["missed_samples"], 0, "{c}");
}
