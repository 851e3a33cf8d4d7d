//! Issue 3 end to end, as root, in namespaces made by each test: monitor
//! lines checked against tshark, filters checked against tcpdump, the host
//! stack left working for what the filter does not select, top and summary.

mod common;

use std::process::Command;
use std::time::Duration;

use common::damaged::damaged_frames;
use common::protocols::{plain_frames, varied_frames};
use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// tcpdump's rendering of TCP flags (print-tcp.c order), written here
/// independently of xsktap's.
fn tcpdump_flags(bits: u8) -> String {
    let names = [
        (0x01, 'F'),
        (0x02, 'S'),
        (0x04, 'R'),
        (0x08, 'P'),
        (0x10, '.'),
        (0x20, 'U'),
        (0x40, 'E'),
        (0x80, 'W'),
    ];
    let s: String = names
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, c)| *c)
        .collect();
    if s.is_empty() {
        "none".into()
    } else {
        s
    }
}

/// The layers of tshark's `frame.protocols` whose errors are xsktap's to
/// find: Ethernet and its tags, the first IP header with its extension
/// headers, and one transport or ARP. What follows (tunnelled headers, the
/// IP packet inside an ICMP error, applications) xsktap does not parse.
fn scope(protocols: &str) -> Vec<&str> {
    let mut scope = Vec::new();
    let mut ip = None;
    for p in protocols.split(':') {
        match p {
            "eth" | "ethertype" | "vlan" | "ieee8021ad" if ip.is_none() => scope.push(p),
            "ip" | "ipv6" if ip.is_none() => {
                ip = Some(p);
                scope.push(p);
            }
            x if ip == Some("ipv6") && x.starts_with("ipv6.") => scope.push(p),
            "tcp" | "udp" | "sctp" | "icmp" | "icmpv6" if ip.is_some() => {
                scope.push(p);
                break;
            }
            "arp" if ip.is_none() => {
                scope.push(p);
                break;
            }
            _ => break,
        }
    }
    scope
}

/// The first value of `key` in a tshark JSON layer, searched depth first.
fn field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    match v {
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k == key {
                match v {
                    Value::Array(all) => all.first().and_then(Value::as_str),
                    one => one.as_str(),
                }
            } else {
                field(v, key)
            }
        }),
        Value::Array(items) => items.iter().find_map(|v| field(v, key)),
        _ => None,
    }
}

/// tshark's protocol errors in one layer: expert items of severity warning
/// or error in the malformed or protocol group, outside the contents of
/// IPv4, IPv6 and TCP options (out of xsktap's scope, as checksums are).
fn experts(v: &Value, found: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                // IPv4's options sit under a label ("Options: (4 bytes)").
                if ["tcp.options", "ip.opt", "Options:", "ipv6.opt"]
                    .iter()
                    .any(|o| k.starts_with(o))
                {
                    continue;
                }
                if k != "_ws.expert" {
                    experts(v, found);
                    continue;
                }
                let items = v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
                for e in items {
                    let num = |f: &str| e[f].as_str().map_or(0, |s| s.parse::<u32>().unwrap());
                    let (severity, group) = (num("_ws.expert.severity"), num("_ws.expert.group"));
                    // PI_WARN and above; PI_MALFORMED, PI_PROTOCOL.
                    if severity >= 0x0060_0000 && (group == 0x0700_0000 || group == 0x0900_0000) {
                        found.push(e["_ws.expert.message"].as_str().unwrap_or("").to_string());
                    }
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| experts(v, found)),
        _ => {}
    }
}

/// What tshark decodes from each frame of `pcap`, as the JSON fields xsktap's
/// monitor prints, read from the layers xsktap parses (see [`scope`]) and
/// nothing inside them, with `tshark_error`: tshark's first protocol error
/// in those layers ([`experts`]), or a dissection that ran past the data
/// ("Malformed Packet") in one of them. ICMP, ICMPv6 and SCTP count only
/// while their first 4 or 12 bytes (which carry the checksum) are
/// incomplete: their bodies and chunks are not parsed.
fn tshark_view(pcap: &std::path::Path) -> Vec<Value> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args([
            "-o",
            "ip.defragment:FALSE",
            "-o",
            "ipv6.defragment:FALSE",
            "-T",
            "json",
            "--no-duplicate-keys",
        ])
        .output()
        .expect("running tshark");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let packets: Vec<Value> = serde_json::from_slice(&out.stdout).expect("tshark's JSON");
    packets.iter().map(view_of).collect()
}

/// One packet of tshark's JSON as a monitor line (see [`tshark_view`]).
fn view_of(packet: &Value) -> Value {
    let layers = &packet["_source"]["layers"];
    let protocols = layers["frame"]["frame.protocols"].as_str().unwrap();
    let all: Vec<&str> = protocols.split(':').collect();
    let mut scope = scope(protocols);
    // An IP dissector that refused the header (a wrong version) leaves its
    // layer, with its expert items, but not its name in `frame.protocols`:
    // the ethertype's payload is shown as data.
    if scope.last() == Some(&"ethertype") && all.get(scope.len()).is_none_or(|p| *p == "data") {
        scope.extend(
            ["ip", "ipv6"]
                .into_iter()
                .find(|p| layers.get(*p).is_some()),
        );
    }
    // Each layer of the scope: a repeated name (two VLAN tags) is an array.
    let mut seen = std::collections::HashMap::new();
    let scoped: Vec<(&str, Value)> = scope
        .iter()
        .map(|name| {
            let n = seen.entry(*name).or_insert(0usize);
            let layer = match &layers[*name] {
                Value::Array(all) => all.get(*n).cloned().unwrap_or(Value::Null),
                one if *n == 0 => one.clone(),
                _ => Value::Null,
            };
            *n += 1;
            (*name, layer)
        })
        .collect();
    let layer = |name: &str| scoped.iter().find(|(n, _)| *n == name).map(|(_, l)| l);
    let get = |name: &str, key: &str| layer(name).and_then(|l| field(l, key));

    let mut found = Vec::new();
    for (name, l) in &scoped {
        let mut here = Vec::new();
        experts(l, &mut here);
        // ICMP, ICMPv6, SCTP: an error in a body xsktap does not parse.
        let body = ["icmp", "icmpv6", "sctp"].contains(name)
            && field(l, &format!("{name}.checksum")).is_some();
        if !body {
            found.extend(here);
        }
    }
    if layers.get("_ws.malformed").is_some() && scope[..] == all[..] {
        let last = *all.last().unwrap();
        let body = ["icmp", "icmpv6", "sctp"].contains(&last)
            && get(last, &format!("{last}.checksum")).is_some();
        if !body {
            found.push(format!("Malformed Packet: {last}"));
        }
    }

    // A group source address is tshark's expert warning on a frame it
    // decodes as usual: xsktap's `warning`, not a verdict.
    let group_source = found
        .iter()
        .position(|m| m.contains("must not be a group address"));
    let warning = group_source.map(|i| found.remove(i));
    let num = |name: &str, key: &str| get(name, key).map(|s| s.parse::<u64>().unwrap());
    let transport = ["tcp", "udp", "sctp", "icmp", "icmpv6"]
        .into_iter()
        .find(|t| layer(t).is_some());
    let ip_proto = num("ip", "ip.proto").or_else(|| num("ipv6", "ipv6.fraghdr.nxt"));
    let proto = if !found.is_empty() {
        "malformed"
    } else if layer("arp").is_some() {
        "arp"
    } else {
        match (transport, ip_proto) {
            (Some("tcp"), _) | (None, Some(6)) => "tcp",
            (Some("udp"), _) | (None, Some(17)) => "udp",
            (Some("icmp"), _) | (None, Some(1)) => "icmp",
            (Some("icmpv6"), _) | (None, Some(58)) => "icmpv6",
            _ => "other",
        }
    };
    let len = layers["frame"]["frame.len"]
        .as_str()
        .unwrap()
        .parse::<u64>();
    let mut v = serde_json::json!({ "len": len.unwrap(), "proto": proto });
    let ip = if layer("ip").is_some() { "ip" } else { "ipv6" };
    if let (Some(s), Some(d)) = (get(ip, &format!("{ip}.src")), get(ip, &format!("{ip}.dst"))) {
        v["src"] = s.into();
        v["dst"] = d.into();
    }
    if let Some(t) = transport.filter(|t| ["tcp", "udp", "sctp"].contains(t)) {
        if let Some(p) = num(t, &format!("{t}.srcport")) {
            v["sport"] = p.into();
        }
        if let Some(p) = num(t, &format!("{t}.dstport")) {
            v["dport"] = p.into();
        }
    }
    // The tags' ids, outermost first (802.1ad's layer comes before 802.1Q's).
    let vlans: Vec<u64> = scoped
        .iter()
        .filter_map(|(name, l)| match *name {
            "ieee8021ad" => field(l, "ieee8021ad.id"),
            "vlan" => field(l, "vlan.id"),
            _ => None,
        })
        .map(|s| s.parse().unwrap())
        .collect();
    v["vlan"] = vlans.into();
    if let Some(flags) = get("tcp", "tcp.flags") {
        let bits = u16::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap();
        v["tcp_flags"] = tcpdump_flags(bits as u8).into();
    }
    if warning.is_some() {
        v["warning"] = "Ethernet source address is a group address".into();
    }
    if let Some(why) = found.into_iter().next() {
        v["tshark_error"] = why.into();
    }
    v
}

/// Compares xsktap's monitor line with tshark's view of one frame: every
/// field equal on a clean frame; on a malformed one the class and length
/// equal, and each field xsktap still reports (those of whole headers)
/// equal to tshark's. Returns what differs.
fn same_view(ours: &Value, theirs: &Value) -> Result<(), String> {
    let mut ours = ours.clone();
    let obj = ours.as_object_mut().unwrap();
    for extra in ["ts_ns", "queue", "fragment"] {
        obj.remove(extra);
    }
    let reason = obj.remove("reason");
    let mut theirs = theirs.clone();
    let error = theirs.as_object_mut().unwrap().remove("tshark_error");
    let differ = |what: &str| {
        Err(format!(
            "{what}: xsktap {ours} ({reason:?}), tshark {theirs} ({error:?})"
        ))
    };
    if reason.is_some() != error.is_some() {
        return differ("the verdict");
    }
    if reason.is_none() {
        return if ours == theirs {
            Ok(())
        } else {
            differ("fields")
        };
    }
    if ours["len"] != theirs["len"] {
        return differ("len");
    }
    for (k, v) in ours.as_object().unwrap() {
        let same = match k.as_str() {
            "proto" => true,
            "vlan" => theirs[k]
                .as_array()
                .unwrap()
                .starts_with(v.as_array().unwrap()),
            _ => Some(v) == theirs.get(k),
        };
        if !same {
            return differ(k);
        }
    }
    Ok(())
}

/// Sends `frames` on a one-queue bed to `monitor --json -w`, checks the
/// capture holds them, and compares each line with tshark's reading of the
/// capture; returns the monitor's lines.
fn monitor_against_tshark(frames: &[Vec<u8>], name: &str) -> Vec<Value> {
    // One queue, so the monitor's lines and the pcap's records share one order.
    let bed = Testbed::new(1);
    let pcap = temp_path(&format!("{name}.pcap"));
    let iface = bed.ns_b();
    let count = frames.len().to_string();
    let args = [
        "monitor",
        "-i",
        iface.as_str(),
        "--json",
        "-w",
        pcap.to_str().unwrap(),
        "-c",
        count.as_str(),
        "--duration",
        "60",
    ];
    let mut cmd = bed.xsktap(&args);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    wait_attached(&bed);
    bed.send(frames);
    let out = wait_output(child, WAIT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The capture holds exactly the frames sent.
    let (_, records) = read_pcap(&pcap);
    let captured: Vec<Vec<u8>> = records.into_iter().map(|r| r.data).collect();
    assert_eq!(sorted(captured.clone()), sorted(frames.to_vec()));

    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert_eq!(lines.len(), frames.len());
    for line in &lines {
        assert!(
            line["ts_ns"].as_u64().unwrap() > 1_600_000_000_000_000_000,
            "wall-clock ns"
        );
        assert_eq!(line["queue"], 0);
    }
    assert_same_as_tshark(&lines, &pcap, &captured);
    lines
}

/// Each monitor line against tshark's reading of the same frame in `pcap`.
fn assert_same_as_tshark(lines: &[Value], pcap: &std::path::Path, frames: &[Vec<u8>]) {
    let tshark = tshark_view(pcap);
    assert_eq!(tshark.len(), lines.len());
    let mut differ = Vec::new();
    for (i, (ours, theirs)) in lines.iter().zip(&tshark).enumerate() {
        if let Err(e) = same_view(ours, theirs) {
            differ.push(format!("frame {i} {:02x?}: {e}", frames[i]));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} frames differ:\n{}",
        differ.len(),
        lines.len(),
        differ.join("\n")
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn monitor_json_matches_what_tshark_decodes() {
    require_root();
    let lines = monitor_against_tshark(&varied_frames(), "monitor");
    let kinds: std::collections::BTreeSet<String> = lines
        .iter()
        .map(|l| l["proto"].as_str().unwrap().to_string())
        .collect();
    for kind in ["tcp", "udp", "icmp", "icmpv6", "arp", "other", "malformed"] {
        assert!(kinds.contains(kind), "the corpus has a {kind} frame");
    }
}

/// Issue 13: damaged frames (every header cut at and around each boundary,
/// every length field off by one and at its extremes, the hand-made cases of
/// each rule): xsktap calls malformed exactly what tshark reports a protocol
/// error in, with the same fields.
#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn malformed_agrees_with_tshark_on_damaged_frames() {
    require_root();
    let frames = damaged_frames();
    let lines = monitor_against_tshark(&frames, "damaged");
    let malformed = lines.iter().filter(|l| l["proto"] == "malformed").count();
    // A corpus that tests both answers.
    assert!(
        malformed > 100 && lines.len() - malformed > 50,
        "{malformed} malformed of {}",
        lines.len()
    );
    let reasons: std::collections::BTreeSet<&str> =
        lines.iter().filter_map(|l| l["reason"].as_str()).collect();
    for reason in [
        "TCP data offset below 5",
        "TCP header past the end of the IP payload",
        "IPv4 total length past the end of the frame",
        "IPv6 payload length past the end of the frame",
        "UDP length below 8",
        "UDP length past the end of the IP payload",
        "ARP addresses past the end of the frame",
        "truncated VLAN tag",
        "truncated IPv6 extension header",
        "truncated ICMP header",
        "truncated SCTP header",
    ] {
        assert!(
            reasons.contains(reason),
            "no frame was {reason:?}: {reasons:?}"
        );
    }
}

/// Sends `frames` to a capture on `bed` with the filter `expr`; returns what
/// it wrote (sorted) and its summary, every frame accounted for.
fn captured_with_filter(
    bed: &Testbed,
    frames: &[Vec<u8>],
    expr: &str,
) -> (Vec<Vec<u8>>, xsktap_core::summary::SummaryJson) {
    // Tests run in parallel: each capture has files of its own.
    static CAPTURES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CAPTURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pcap = temp_path(&format!("filter-{n}.pcap"));
    let json = temp_path(&format!("filter-{n}.json"));
    let mut args = vec![
        "-w",
        pcap.to_str().unwrap(),
        "-q",
        "--duration",
        "60",
        "--summary-json",
        json.to_str().unwrap(),
    ];
    args.extend(expr.split(' '));
    let mut cap = bed.start_capture(&args);
    assert!(
        cap.stderr().contains(&format!("matching {expr:?}")),
        "{}",
        cap.stderr()
    );
    bed.send(frames);
    // Not -c: a capture that stops at its count detaches while later frames are still
    // on their way, and those would be seen by no one. Every frame has passed the XDP
    // program once the sender is done; SIGINT then drains the rings.
    std::thread::sleep(Duration::from_millis(200));
    cap.signal(libc::SIGINT);
    assert!(cap.wait(WAIT).success(), "{expr}: {}", cap.stderr());
    let (_, records) = read_pcap(&pcap);
    let s = typed_summary(&json);
    assert_accounted(&s);
    assert_eq!(s.filter, expr);
    (sorted(records.into_iter().map(|r| r.data).collect()), s)
}

/// Real-world frames: the Ethernet captures of tcpdump's own test suite
/// (fuzzed, truncated, tunnelled, tagged, every protocol it prints), read
/// with `monitor -r`: the same verdicts and fields as tshark, frame by frame.
#[test]
fn malformed_agrees_with_tshark_on_tcpdumps_test_captures() {
    let pcap = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tcpdump-tests-ethernet.pcap");
    let pcap = std::env::var_os("XSKTAP_DECODE_CORPUS").map_or(pcap, Into::into);
    let out = Command::new(XSKTAP)
        .args(["monitor", "--json", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let records = read_pcap_micro(&pcap);
    assert!(lines.len() > 5000, "{} frames", lines.len());
    assert_same_as_tshark(&lines, &pcap, &records);
}

/// The XDP program's filter and the userspace evaluator (`-r`) select the
/// same damaged frames, for every kind of test.
#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn kernel_and_userspace_filters_agree_on_damaged_frames() {
    let bed = Testbed::new(1);
    let frames = damaged_frames();
    let sent = temp_path("damaged-sent.pcap");
    write_pcap(&sent, &frames);
    for expr in [
        "src host 198.18.0.1",
        "dst host 198.18.0.2",
        "net 2001:2::/64",
        "port 80",
        "dst port 6000",
        "portrange 5000-5999",
        "tcp",
        "udp and vlan",
        "arp or rarp",
        "vlan 5",
        "icmp or icmp6",
        "ip6 and not udp",
    ] {
        let (kernel, _) = captured_with_filter(&bed, &frames, expr);

        let user = temp_path("user.pcap");
        let mut args = vec![
            "capture",
            "-r",
            sent.to_str().unwrap(),
            "-w",
            user.to_str().unwrap(),
            "-q",
        ];
        args.extend(expr.split(' '));
        let out = Command::new(XSKTAP).args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (_, records) = read_pcap(&user);
        let userspace = sorted(records.into_iter().map(|r| r.data).collect());
        assert!(
            !userspace.is_empty() && userspace.len() < frames.len(),
            "{expr}: a discriminating filter"
        );
        let only_kernel: Vec<_> = kernel.iter().filter(|f| !userspace.contains(f)).collect();
        let only_user: Vec<_> = userspace.iter().filter(|f| !kernel.contains(f)).collect();
        assert!(
            only_kernel.is_empty() && only_user.is_empty(),
            "{expr}: only the XDP program selected {only_kernel:02x?}; only userspace {only_user:02x?}"
        );
    }
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn filters_select_what_tcpdump_selects_and_pass_the_rest() {
    let bed = Testbed::new(2);
    let frames = plain_frames();
    let sent = temp_path("filter-sent.pcap");
    write_pcap(&sent, &frames);
    for expr in [
        "udp",
        "tcp and port 80",
        "icmp or icmp6",
        "ip6",
        "arp",
        "src host 198.18.0.1",
        "net 198.19.0.0/16",
        "not (tcp or udp)",
        "port 53",
        "portrange 9000-9999 or tcp dst port 22",
        "dst net 2001:2::/126 and not udp",
    ] {
        let expected = tcpdump_frames_with_filter(&sent, expr);
        assert!(
            !expected.is_empty() && expected.len() < frames.len(),
            "{expr}: a discriminating filter"
        );
        let (got, s) = captured_with_filter(&bed, &frames, expr);
        assert_eq!(got, sorted(expected.clone()), "filter {expr:?}");
        // Everything else was counted as passed to the host stack by the XDP program.
        let not_selected: u64 = s
            .queues
            .iter()
            .map(|q| q.xdp_filtered_out.expect("the XDP counters were read"))
            .sum();
        assert_eq!(
            not_selected as usize,
            frames.len() - expected.len(),
            "{expr}: {s:?}"
        );
    }
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn the_host_stack_keeps_working_for_what_the_filter_leaves() {
    let bed = Testbed::new(2);
    let json = temp_path("ping.json");
    let mut cap = bed.start_capture(&[
        "--duration",
        "30",
        "-q",
        "--summary-json",
        json.to_str().unwrap(),
        "udp",
    ]);
    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &bed.ns_a(),
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "198.18.0.2",
        ])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "ping through a UDP-only capture: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    // UDP is captured meanwhile.
    bed.send(&xsktap_bench::frames::varied_frames(20, 4));
    std::thread::sleep(Duration::from_millis(500));
    cap.signal(libc::SIGINT);
    assert!(cap.wait(WAIT).success());
    let s = typed_summary(&json);
    assert_accounted(&s);
    let protocol = |p: &str| s.traffic.protocols[p].packets;
    assert_eq!(s.packets, 20, "{s:?}");
    assert_eq!(protocol("udp"), 20);
    assert_eq!(protocol("icmp"), 0, "pings were not taken");
    let filtered: u64 = s
        .queues
        .iter()
        .map(|q| q.xdp_filtered_out.expect("the XDP counters were read"))
        .sum();
    assert!(filtered >= 3, "the echo requests were passed on: {s:?}");

    // The opposite filter takes the echo requests, and ping fails: the
    // redirect really keeps selected frames from the stack.
    let mut cap = bed.start_capture(&["--duration", "30", "-q", "icmp"]);
    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &bed.ns_a(),
            "ping",
            "-c",
            "2",
            "-i",
            "0.2",
            "-W",
            "1",
            "198.18.0.2",
        ])
        .output()
        .unwrap();
    assert!(
        !ping.status.success(),
        "echo requests were captured, not answered"
    );
    cap.signal(libc::SIGINT);
    assert!(cap.wait(WAIT).success());
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn summary_and_top_report_protocols_and_talkers() {
    let bed = Testbed::new(2);
    let frames = varied_frames();
    let json = temp_path("views-summary.json");
    let count = frames.len().to_string();
    let mut cap = bed.start_capture(&[
        "-c",
        count.as_str(),
        "--duration",
        "30",
        "-q",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    bed.send(&frames);
    assert!(cap.wait(WAIT).success(), "{}", cap.stderr());
    assert!(cap.stderr().contains("protocols: tcp"), "{}", cap.stderr());
    let s = typed_summary(&json);
    assert_accounted(&s);
    let t = &s.traffic;
    let total: u64 = ["tcp", "udp", "icmp", "icmpv6", "arp", "other", "malformed"]
        .iter()
        .map(|p| t.protocols[*p].packets)
        .sum();
    assert_eq!(total as usize, frames.len());
    assert_eq!(t.malformed, 2);
    assert_eq!(t.protocols["arp"].packets, 1);
    let vlans: Vec<u16> = t.vlans.iter().map(|v| v.vlan).collect();
    assert_eq!(vlans, vec![10, 100], "outermost tags");
    let sizes: u64 = t.sizes.values().sum();
    assert_eq!(sizes as usize, frames.len());
    // 198.18.0.1 and .2 are in most flows, one way or the other: 820 bytes each.
    let talkers = &s.top.talkers;
    let first_two: std::collections::BTreeSet<&str> =
        talkers[..2].iter().map(|t| t.addr.as_str()).collect();
    assert_eq!(
        first_two,
        ["198.18.0.1", "198.18.0.2"].into_iter().collect(),
        "{talkers:?}"
    );
    for t in &talkers[..2] {
        assert_eq!(t.up_bytes + t.down_bytes, 820);
    }
    assert!(talkers
        .windows(2)
        .all(|w| w[0].up_bytes + w[0].down_bytes >= w[1].up_bytes + w[1].down_bytes));

    // top --json: periodic snapshots whose counters grow with the traffic.
    let iface = bed.ns_b();
    let mut cmd = bed.xsktap(&[
        "top",
        "-i",
        iface.as_str(),
        "--json",
        "--interval",
        "0.5",
        "--duration",
        "2.2",
        "--top",
        "3",
    ]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    wait_attached(&bed);
    let burst = xsktap_bench::frames::varied_frames(300, 6);
    bed.send(&burst);
    let out = wait_output(child, WAIT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snaps: Vec<xsktap_core::summary::TopSnapshotJson> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a top snapshot of the current schema"))
        .collect();
    assert!(
        snaps.len() >= 3,
        "one snapshot per interval: {}",
        snaps.len()
    );
    let last = snaps.last().unwrap();
    assert_eq!(last.packets, 300);
    assert_eq!(last.traffic.protocols["udp"].packets, 300);
    let talkers = &last.top.talkers;
    assert_eq!(talkers.len(), 3);
    assert_eq!(talkers[0].addr, "198.18.0.2");
    assert_eq!(
        talkers[0].down_bytes as usize,
        burst.iter().map(Vec::len).sum::<usize>()
    );
    assert_eq!(last.top.flows, 6);
    assert_eq!(
        last.top.flows_by_packets[0].packets, 50,
        "300 frames over 6 flows"
    );
}

fn tcpdump_frames_with_filter(pcap: &std::path::Path, expr: &str) -> Vec<Vec<u8>> {
    let out = temp_path("tcpdump-selected.pcap");
    let status = Command::new("tcpdump")
        .arg("-r")
        .arg(pcap)
        .arg("-w")
        .arg(&out)
        .args(expr.split(' '))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "tcpdump -r with {expr:?}");
    read_pcap_micro(&out)
}

/// Reads a microsecond pcap (tcpdump's output), frames only.
fn read_pcap_micro(path: &std::path::Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
    let mut frames = Vec::new();
    while let Some(p) = reader.next_raw_packet() {
        frames.push(p.unwrap().data.into_owned());
    }
    frames
}
