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

/// Issue 28, 6: `-w` naming the file `-r` reads, under any name (itself, a
/// hard link, a symbolic link, `/dev/fd/N`, a name the rotation makes, or
/// standard output appended to it) is refused in one line, exit 1, and the
/// input is left as it was.
#[test]
fn writing_the_file_being_read_is_refused_and_the_input_kept() {
    let dir = fresh_dir("self-overwrite");
    let input = dir.join("in.pcap");
    write_pcap(&input, &varied_frames(200, 4));
    let before = std::fs::read(&input).unwrap();
    let hard = dir.join("hard.pcap");
    std::fs::hard_link(&input, &hard).unwrap();
    let soft = dir.join("soft.pcap");
    std::os::unix::fs::symlink(&input, &soft).unwrap();
    // A ring whose second file is the input.
    let ring = dir.join("ring.pcap");
    std::fs::hard_link(&input, dir.join("ring.pcap1")).unwrap();
    let r = input.to_str().unwrap();
    let cases: Vec<Vec<String>> = vec![
        vec!["-w".into(), r.into()],
        vec!["-w".into(), hard.to_str().unwrap().into()],
        vec!["-w".into(), soft.to_str().unwrap().into()],
        vec![
            "-w".into(),
            ring.to_str().unwrap().into(),
            "-C".into(),
            "10k".into(),
            "-W".into(),
            "3".into(),
        ],
    ];
    for case in &cases {
        let mut args = vec!["capture", "-r", r];
        args.extend(case.iter().map(String::as_str));
        let run = xsktap(&args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{case:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{case:?}: {stderr}");
        assert!(
            stderr.contains("would overwrite the file -r reads"),
            "{stderr}"
        );
        assert_eq!(std::fs::read(&input).unwrap(), before, "{case:?}");
    }
    // The same file opened as descriptor 3, and as standard output (append).
    let sh = |script: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(XSKTAP)
            .arg(r)
            .output()
            .unwrap()
    };
    for script in [
        "\"$1\" capture -r \"$2\" -w /dev/fd/3 3<>\"$2\"",
        "\"$1\" capture -r \"$2\" -w - >>\"$2\"",
    ] {
        let run = sh(script);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{script}: {stderr}");
        assert!(
            stderr.contains("would overwrite the file -r reads"),
            "{stderr}"
        );
        assert_eq!(std::fs::read(&input).unwrap(), before, "{script}");
    }
    // Another name in the same directory is written as before.
    let other = dir.join("out.pcap");
    let run = xsktap(&["capture", "-r", r, "-w", other.to_str().unwrap()]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(read_pcap(&other).1.len(), 200);
}

/// Issue 28, 12: a `-w` name whose rotated names would pass the 255 bytes a
/// file name may have is refused at start, before anything is written; one
/// whose longest rotated name fits is written.
#[test]
fn rotated_names_too_long_for_the_file_system_are_refused_at_start() {
    let dir = fresh_dir("long-names");
    let input = dir.join("in.pcap");
    write_pcap(&input, &varied_frames(300, 4));
    let r = input.to_str().unwrap();
    // 245 bytes: with -C alone its numbers may reach 10 digits, and ".part".
    let long = dir.join("x".repeat(245));
    let run = xsktap(&[
        "capture",
        "-r",
        r,
        "-w",
        long.to_str().unwrap(),
        "-C",
        "20k",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("over the 255 a name may have"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(left.len(), 1, "nothing written beside the input: {left:?}");
    // Under -W 10 the numbers stop at one digit: 245 + 1 + 5 bytes fit.
    let ring = xsktap(&[
        "capture",
        "-r",
        r,
        "-w",
        long.to_str().unwrap(),
        "-C",
        "200k",
        "-W",
        "10",
    ]);
    assert!(
        ring.status.success(),
        "{}",
        String::from_utf8_lossy(&ring.stderr)
    );
    let written: usize = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('x'))
        .map(|e| read_pcap(&e.path()).1.len())
        .sum();
    assert_eq!(written, 300);
}

/// Issue 28, 11: a pcap header of a version libpcap refuses is refused (one
/// line, exit 1), and pcapng Simple Packet Blocks are read as tcpdump reads
/// them: every frame, cut at its original length (not at its padding), at
/// the time of the packet before.
#[test]
fn pcap_versions_are_checked_and_simple_packet_blocks_are_read() {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
    use pcap_file::pcapng::PcapNgWriter;
    let good = temp_path("v24.pcap");
    let frames = varied_frames(20, 4);
    write_pcap(&good, &frames);
    let mut bytes = std::fs::read(&good).unwrap();
    // Version 39938.4 in place of 2.4 (little-endian file).
    bytes[4..6].copy_from_slice(&39938u16.to_le_bytes());
    let odd = temp_path("v39938.pcap");
    std::fs::write(&odd, &bytes).unwrap();
    let out = temp_path("v39938-out.pcap");
    let run = xsktap(&[
        "capture",
        "-r",
        odd.to_str().unwrap(),
        "-w",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("pcap version 39938.4"), "{stderr}");
    assert!(!out.exists(), "nothing written for a refused input");

    // One timed packet, then simple packet blocks of odd lengths (padded).
    let ng = temp_path("spb.pcapng");
    {
        let mut w = PcapNgWriter::new(std::fs::File::create(&ng).unwrap()).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: pcap_file::DataLink::ETHERNET,
            snaplen: 65535,
            options: vec![],
        })
        .unwrap();
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            // pcap-file writes the raw units it is given: microseconds here.
            timestamp: Duration::from_nanos(1_700_000_000_000_123),
            original_len: frames[0].len() as u32,
            data: frames[0].clone().into(),
            options: vec![],
        })
        .unwrap();
        for f in &frames[1..] {
            w.write_pcapng_block(SimplePacketBlock {
                original_len: f.len() as u32,
                data: f.clone().into(),
            })
            .unwrap();
        }
    }
    assert_eq!(
        sorted(tcpdump_frames(&ng)),
        sorted(frames.clone()),
        "tcpdump reads them"
    );
    let copy = temp_path("spb-out.pcap");
    let run = xsktap(&[
        "capture",
        "-r",
        ng.to_str().unwrap(),
        "-w",
        copy.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (_, records) = read_pcap(&copy);
    let got: Vec<Vec<u8>> = records.iter().map(|r| r.data.clone()).collect();
    assert_eq!(got, frames, "every frame, byte for byte, in order");
    assert!(records.iter().all(|r| r.ts_ns == 1_700_000_000_000_123_000));
}

/// Issue 28, 13: files an earlier capture left under the same `-w` name
/// (whole, and `.part` files of one that was killed) are named at start;
/// a clean directory gets no such line. What the outputs have to say while
/// a file is read back (a `-z` that fails) is printed too.
#[test]
fn files_of_an_earlier_capture_under_the_name_are_named_at_start() {
    let dir = fresh_dir("earlier-ring");
    let input = temp_path("earlier-in.pcap");
    write_pcap(&input, &varied_frames(300, 4));
    for name in [
        "ring.pcap",
        "ring.pcap1",
        "ring.pcap3.part",
        "ring.pcap.old",
    ] {
        std::fs::write(dir.join(name), b"an earlier run's").unwrap();
    }
    let ring = dir.join("ring.pcap");
    let args = |w: &Path| {
        xsktap(&[
            "capture",
            "-r",
            input.to_str().unwrap(),
            "-w",
            w.to_str().unwrap(),
            "-C",
            "200k",
            "-W",
            "5",
            "-z",
            "/nonexistent/xsktap-hook",
        ])
    };
    let run = args(&ring);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("2 file(s) of an earlier capture and 1 .part file(s)"),
        "{stderr}"
    );
    assert!(stderr.contains("-z /nonexistent/xsktap-hook"), "{stderr}");
    assert_eq!(
        std::fs::read(dir.join("ring.pcap.old")).unwrap(),
        b"an earlier run's",
        "not a name of the ring"
    );
    let clean = fresh_dir("clean-ring");
    let run = args(&clean.join("ring.pcap"));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(!stderr.contains("earlier capture"), "{stderr}");
}
