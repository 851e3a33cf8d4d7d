//! pcapng output (issue 11): one interface per queue that tshark names for
//! every packet, the section's OS and application, and statistics blocks
//! whose counts, summed over the files of a capture, equal the summary's.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::blocks::interface_statistics::InterfaceStatisticsOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use xsktap_core::summary::SummaryJson;

/// What a pcapng file holds, read with pcap-file.
#[derive(Debug, Default)]
struct NgFile {
    if_names: Vec<String>,
    /// Packets per interface id.
    packets: Vec<u64>,
    /// (if_recv, if_drop, filter_accept, os_drop, usr_deliv) per interface id.
    stats: Vec<[u64; 5]>,
    stat_blocks: usize,
    /// Sum of the packets' epb_dropcount.
    dropcounts: u64,
}

fn read_ng(path: &Path) -> NgFile {
    let bytes = std::fs::read(path).unwrap();
    let mut reader = PcapNgReader::new(&bytes[..]).expect("a section header");
    let mut f = NgFile::default();
    while let Some(block) = reader.next_block() {
        match block.expect("a whole block") {
            Block::InterfaceDescription(i) => {
                let name = i.options.iter().find_map(|o| match o {
                    InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                    _ => None,
                });
                f.if_names.push(name.expect("if_name"));
                f.packets.push(0);
                f.stats.push([0; 5]);
            }
            Block::EnhancedPacket(p) => {
                f.packets[p.interface_id as usize] += 1;
                for o in &p.options {
                    if let EnhancedPacketOption::DropCount(n) = o {
                        f.dropcounts += n;
                    }
                }
            }
            Block::InterfaceStatistics(s) => {
                f.stat_blocks += 1;
                let st = &mut f.stats[s.interface_id as usize];
                for o in &s.options {
                    match o {
                        InterfaceStatisticsOption::IsbIfRecv(v) => st[0] += v,
                        InterfaceStatisticsOption::IsbIfDrop(v) => st[1] += v,
                        InterfaceStatisticsOption::IsbFilterAccept(v) => st[2] += v,
                        InterfaceStatisticsOption::IsbOsDrop(v) => st[3] += v,
                        InterfaceStatisticsOption::IsbUsrDeliv(v) => st[4] += v,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    f
}

/// The statistics blocks of all `files`, summed per queue, equal the
/// summary's counters, and the packets in them its written packets.
fn assert_statistics_match(s: &SummaryJson, files: &[PathBuf], iface: &str) {
    let mut packets = vec![0u64; s.queues.len()];
    let mut stats = vec![[0u64; 5]; s.queues.len()];
    for path in files {
        let f = read_ng(path);
        let names: Vec<String> = s
            .queues
            .iter()
            .map(|q| format!("{iface}/q{}", q.queue))
            .collect();
        assert_eq!(
            f.if_names,
            names,
            "one interface per queue in {}",
            path.display()
        );
        assert_eq!(f.stat_blocks, s.queues.len(), "every queue's statistics");
        for i in 0..s.queues.len() {
            packets[i] += f.packets[i];
            for (sum, v) in stats[i].iter_mut().zip(f.stats[i]) {
                *sum += v;
            }
        }
    }
    for (i, q) in s.queues.iter().enumerate() {
        let [recv, if_drop, accept, os_drop, delivered] = stats[i];
        assert_eq!(packets[i], q.packets, "queue {}: packets", q.queue);
        assert_eq!(delivered, q.packets, "queue {}: isb_usrdeliv", q.queue);
        assert_eq!(Some(recv), q.xdp_seen, "queue {}: isb_ifrecv", q.queue);
        assert_eq!(
            Some(accept),
            q.xdp_redirected,
            "queue {}: isb_filteraccept",
            q.queue
        );
        let socket = q.rx_dropped.unwrap() + q.rx_ring_full.unwrap();
        assert_eq!(
            if_drop,
            socket + q.xdp_redirect_failed.unwrap(),
            "queue {}: isb_ifdrop",
            q.queue
        );
        assert_eq!(
            os_drop, q.output_closed_drops,
            "queue {}: isb_osdrop",
            q.queue
        );
    }
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn pcapng_names_each_packets_queue_and_says_what_each_queue_lost() {
    let bed = Testbed::new(2);
    let iface = bed.ns_b();
    let out = temp_path("two-queues.pcapng");
    let json = temp_path("two-queues.json");
    // A small ring and a burst larger than it: some frames are lost, and
    // the file must say so.
    let mut cap = bed.start_capture(&[
        "-w",
        out.to_str().unwrap(),
        "--ring-size",
        "64",
        "--duration",
        "5",
        "-q",
        "--summary-json",
        json.to_str().unwrap(),
        "udp",
    ]);
    generate(&bed, 20_000, 64, None);
    let (s, _) = finished(&mut cap, &json);
    assert_accounted(&s);
    assert!(s.packets > 0);
    assert_statistics_match(&s, std::slice::from_ref(&out), &iface);
    // The packets say where losses fell: their drop counts add up to the
    // socket's drops seen before the last packet of each queue.
    let socket: u64 = s
        .queues
        .iter()
        .map(|q| q.rx_dropped.unwrap() + q.rx_ring_full.unwrap())
        .sum();
    let marked = read_ng(&out).dropcounts;
    assert!(socket > 0, "the burst overran a 64-frame ring: {s:?}");
    assert!(marked > 0 && marked <= socket, "{marked} of {socket}");

    // tshark names the queue of every packet.
    let tshark = Command::new("tshark")
        .arg("-r")
        .arg(&out)
        .args(["-T", "fields", "-e", "frame.interface_name"])
        .output()
        .unwrap();
    assert!(
        tshark.status.success(),
        "{}",
        String::from_utf8_lossy(&tshark.stderr)
    );
    let names = String::from_utf8_lossy(&tshark.stdout);
    for q in &s.queues {
        let name = format!("{iface}/q{}", q.queue);
        let n = names.lines().filter(|l| *l == name).count() as u64;
        assert_eq!(n, q.packets, "tshark's packets on {name}");
    }
    // capinfos reads the section and interfaces.
    let info = Command::new("capinfos").arg(&out).output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success(), "{text}");
    assert!(text.contains("Capture application: xsktap"), "{text}");
    assert!(text.contains("Capture oper-sys:    Linux"), "{text}");
    assert!(text.contains("Number of interfaces in file: 2"), "{text}");
    assert!(text.contains("Filter string = udp"), "{text}");
    assert!(text.contains("Time precision = nanoseconds"), "{text}");
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn rotated_pcapng_files_each_carry_their_statistics() {
    let bed = Testbed::new(1);
    let iface = bed.ns_b();
    let dir = temp_path("ng-rotate");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let json = temp_path("ng-rotate.json");
    let mut cap = bed.start_capture(&[
        "-w",
        dir.join("r.pcapng").to_str().unwrap(),
        "-C",
        "100k",
        "-c",
        "3000",
        "--duration",
        "30",
        "-q",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    generate(&bed, 3000, 1000, Some(50_000.0));
    let (s, _) = finished(&mut cap, &json);
    assert_eq!(s.packets, 3000);
    let files: Vec<PathBuf> = s
        .files
        .as_ref()
        .unwrap()
        .files
        .iter()
        .map(|f| PathBuf::from(&f.path))
        .collect();
    assert!(files.len() > 20, "{files:?}");
    for f in &files {
        let out = Command::new("tshark").arg("-r").arg(f).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_statistics_match(&s, &files, &iface);
}
