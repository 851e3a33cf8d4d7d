//! `-r FILE` (issue 11): files read back, pcap and pcapng, through the same
//! filter, statistics and outputs, without privileges. The files are written
//! by pcap-file and checked against tcpdump reading the same files.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::protocols::plain_frames;
use common::*;
use xsktap_bench::frames::varied_frames;

fn xsktap(args: &[&str]) -> std::process::Output {
    Command::new(XSKTAP).args(args).output().unwrap()
}

/// The frames tcpdump writes for `filter` from `input`, as tcpdump reads them.
fn tcpdump_selects(input: &Path, filter: &str, out: &Path) -> Vec<Vec<u8>> {
    let status = Command::new("tcpdump")
        .arg("-r")
        .arg(input)
        .arg("-w")
        .arg(out)
        .arg(filter)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    tcpdump_frames(out)
}

#[test]
fn a_file_is_filtered_as_tcpdump_filters_it() {
    let input = temp_path("in.pcap");
    // Untagged, well-formed frames: where xsktap's filter selects exactly
    // what tcpdump's does (tcpdump's `udp` does not look past a VLAN tag).
    let mut frames = plain_frames();
    frames.extend(varied_frames(200, 16));
    write_pcap(&input, &frames);
    for filter in ["udp", "tcp port 80", "not tcp", "net 198.18.0.0/15 and udp"] {
        let ours = temp_path("ours.pcap");
        let _ = std::fs::remove_file(&ours);
        let json = temp_path("read.json");
        let run = xsktap(&[
            "capture",
            "-r",
            input.to_str().unwrap(),
            "-w",
            ours.to_str().unwrap(),
            "--summary-json",
            json.to_str().unwrap(),
            filter,
        ]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let theirs = tcpdump_selects(&input, filter, &temp_path("theirs.pcap"));
        let (_, records) = read_pcap(&ours);
        let got: Vec<Vec<u8>> = records.iter().map(|r| r.data.clone()).collect();
        assert_eq!(got.len(), theirs.len(), "{filter}: as many frames");
        assert!(got == theirs, "{filter}: the same frames in the same order");
        let s = typed_summary(&json);
        assert_eq!(s.packets, theirs.len() as u64, "{filter}");
        let q = &s.queues[0];
        assert_eq!(q.xdp_seen, Some(frames.len() as u64));
        assert_eq!(
            q.xdp_filtered_out,
            Some((frames.len() - theirs.len()) as u64)
        );
        // Timestamps come from the file (one per millisecond from 1.7e9 s).
        assert!(
            records.iter().all(|r| r.ts_ns >= 1_700_000_000_000_000_000),
            "{filter}"
        );
    }
}

#[test]
fn pcapng_timestamps_follow_each_interfaces_resolution() {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::{
        InterfaceDescriptionBlock, InterfaceDescriptionOption,
    };
    use pcap_file::pcapng::PcapNgWriter;
    let path = temp_path("res.pcapng");
    let frame = plain_frames().remove(0);
    {
        let mut w = PcapNgWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
        // Interface 0: microseconds (the default); interface 1: nanoseconds.
        for options in [vec![], vec![InterfaceDescriptionOption::IfTsResol(9)]] {
            w.write_pcapng_block(InterfaceDescriptionBlock {
                linktype: pcap_file::DataLink::ETHERNET,
                snaplen: 65535,
                options,
            })
            .unwrap();
        }
        // pcap-file writes the raw units it is given as the timestamp.
        for (interface_id, raw) in [
            (0u32, 1_700_000_000_000_001u64),
            (1, 1_700_000_000_000_000_002),
        ] {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id,
                timestamp: Duration::from_nanos(raw),
                original_len: frame.len() as u32,
                data: frame.clone().into(),
                options: vec![],
            })
            .unwrap();
        }
    }
    let run = xsktap(&["monitor", "-r", path.to_str().unwrap(), "--json"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let ts: Vec<u64> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["ts_ns"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(ts, [1_700_000_000_000_001_000, 1_700_000_000_000_000_002]);
}

#[test]
fn top_summarises_a_file_as_json() {
    let input = temp_path("top-in.pcap");
    let frames = varied_frames(300, 8);
    write_pcap(&input, &frames);
    let run = xsktap(&["top", "-r", input.to_str().unwrap(), "--json", "--top", "3"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = String::from_utf8_lossy(&run.stdout);
    assert_eq!(text.lines().count(), 1, "one snapshot of the whole file");
    let snap: xsktap_core::summary::TopSnapshotJson = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(snap.packets, 300);
    assert!(snap.top.talkers.len() <= 3 && !snap.top.talkers.is_empty());
    // 300 frames one millisecond apart: 299 ms of capture.
    assert!(
        (snap.packets_per_sec - 300.0 / 0.299).abs() < 1.0,
        "{}",
        snap.packets_per_sec
    );
}

#[test]
fn a_cut_file_is_processed_up_to_the_damage_then_named() {
    let input = temp_path("whole.pcap");
    let frames = varied_frames(100, 4);
    write_pcap(&input, &frames);
    let bytes = std::fs::read(&input).unwrap();
    let cut = temp_path("cut.pcap");
    // In the middle of the 51st record (records are written whole: 16-byte
    // header and the frame).
    let before: usize = 24 + frames[..50].iter().map(|f| 16 + f.len()).sum::<usize>();
    std::fs::write(&cut, &bytes[..before + 20]).unwrap();
    let json = temp_path("cut.json");
    let run = xsktap(&[
        "capture",
        "-r",
        cut.to_str().unwrap(),
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("xsktap: ") && last.contains("damaged or cut after 50 packets"),
        "{stderr}"
    );
    assert_eq!(
        typed_summary(&json).packets,
        50,
        "everything before the damage"
    );
    let text = temp_path("notes.txt");
    std::fs::write(&text, "these are notes, not packets\n".repeat(10)).unwrap();
    for (bad, says) in [
        ("/nonexistent/in.pcap", "No such file"),
        (text.to_str().unwrap(), "neither a pcap nor a pcapng file"),
    ] {
        let run = xsktap(&["capture", "-r", bad]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
    let both = xsktap(&["capture", "-r", cut.to_str().unwrap(), "-i", "lo"]);
    assert_eq!(both.status.code(), Some(2), "-r and -i together");
}

#[test]
#[ignore = "needs root to switch to another user: run with --include-ignored as root (tools/test.sh)"]
fn reading_needs_no_privileges() {
    let dir = temp_path("unprivileged");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let input = dir.join("in.pcap");
    write_pcap(&input, &varied_frames(50, 4));
    let out = dir.join("out.pcap");
    let run = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(XSKTAP)
        .args(["capture", "-r"])
        .arg(&input)
        .arg("-w")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(read_pcap(&out).1.len(), 50);
}

#[test]
fn records_cut_by_a_snaplen_keep_their_original_length() {
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    let input = temp_path("cut-records.pcap");
    let frames = varied_frames(50, 4);
    {
        let mut w = PcapWriter::new(std::fs::File::create(&input).unwrap()).unwrap();
        for (i, f) in frames.iter().enumerate() {
            let ts = Duration::from_millis(1_700_000_000_000 + i as u64);
            let kept = &f[..f.len().min(60)];
            w.write_packet(&PcapPacket::new(ts, f.len() as u32, kept))
                .unwrap();
        }
    }
    let out = temp_path("cut-records-out.pcap");
    let _ = std::fs::remove_file(&out);
    let json = temp_path("cut-records.json");
    let run = xsktap(&[
        "capture",
        "-r",
        input.to_str().unwrap(),
        "-w",
        out.to_str().unwrap(),
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (_, records) = read_pcap(&out);
    assert_eq!(records.len(), frames.len());
    for (r, f) in records.iter().zip(&frames) {
        assert_eq!(r.orig_len as usize, f.len(), "original length kept");
        assert_eq!(r.data, f[..f.len().min(60)], "the bytes the file had");
    }
    let total: usize = frames.iter().map(Vec::len).sum();
    assert_eq!(
        typed_summary(&json).bytes,
        total as u64,
        "bytes of the original frames"
    );
}
