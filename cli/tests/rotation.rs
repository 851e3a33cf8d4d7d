//! Always-on capture (issue 11): files rotated by size and by time, rings,
//! retention and `-z`, each on its own test bed. Every file is read back by
//! tcpdump; the packets of all files add up to the summary's, exactly.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use xsktap_core::summary::SummaryJson;

const WAIT: Duration = Duration::from_secs(60);

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Packets in a file as tcpdump counts them, after checking it reads the
/// file without complaint.
fn tcpdump_count(path: &Path) -> u64 {
    let out = Command::new("tcpdump")
        .arg("-r")
        .arg(path)
        .args(["-nn", "-q"])
        .output()
        .unwrap();
    let complaint = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {complaint}", path.display());
    assert!(!complaint.contains("truncated"), "{complaint}");
    String::from_utf8_lossy(&out.stdout).lines().count() as u64
}

/// Every file the summary lists is on disk, read by tcpdump with the
/// packets the summary says; together with the deleted ones they hold
/// every written packet. Returns the listed files.
fn assert_files_hold_everything(s: &SummaryJson) -> Vec<PathBuf> {
    let files = s.files.as_ref().expect("the summary lists the files");
    let mut sum = files.removed_packets + files.hooked_packets;
    let mut paths = Vec::new();
    for f in &files.files {
        let path = PathBuf::from(&f.path);
        assert_eq!(tcpdump_count(&path), f.packets, "{}", f.path);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            f.bytes,
            "{}",
            f.path
        );
        let (_, records) = read_pcap(&path);
        assert_eq!(records.len() as u64, f.packets);
        sum += f.packets;
        paths.push(path);
    }
    assert_eq!(sum, s.packets, "files' packets = the summary's: {files:?}");
    paths
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn size_rotation_splits_exactly_with_tcpdump_names() {
    let bed = Testbed::new(1);
    let dir = fresh_dir("rotate-size");
    let out = dir.join("out.pcap");
    let json = temp_path("rotate-size.json");
    let mut cap = bed.start_capture(&[
        "-w",
        out.to_str().unwrap(),
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
    // The file being written carries .part until it is complete; the next
    // one is already open, ahead of the rotation.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while names(&dir).len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        names(&dir),
        ["out.pcap.part", "out.pcap1.part"],
        "before any frame"
    );
    generate(&bed, 3000, 1000, Some(50_000.0));
    let (s, _) = finished(&mut cap, &json);
    assert_accounted(&s);
    assert_eq!(s.packets, 3000);
    let paths = assert_files_hold_everything(&s);
    // 3000 records of 1016 bytes in files of at most 100 KiB: 100 per file.
    assert_eq!(paths.len(), 30, "{:?}", names(&dir));
    let mut expected: Vec<String> = vec!["out.pcap".into()];
    expected.extend((1..30).map(|i| format!("out.pcap{i}")));
    expected.sort();
    assert_eq!(names(&dir), expected, "tcpdump's names, no .part left");
    for p in &paths {
        assert!(std::fs::metadata(p).unwrap().len() <= 100 * 1024);
    }
    let files = s.files.unwrap();
    assert_eq!(files.removed_files, 0);
    assert_eq!(files.files[0].path, out.to_str().unwrap(), "oldest first");
    assert!(!bed.xdp_attached());
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_ring_keeps_n_files_and_counts_what_it_overwrote() {
    let bed = Testbed::new(1);
    let dir = fresh_dir("rotate-ring");
    let out = dir.join("ring.pcap");
    let json = temp_path("rotate-ring.json");
    let mut cap = bed.start_capture(&[
        "-w",
        out.to_str().unwrap(),
        "-C",
        "50k",
        "-W",
        "3",
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
    assert_files_hold_everything(&s);
    let files = s.files.as_ref().unwrap();
    // 60 files of 50 records went through a ring of 3.
    assert_eq!(files.files.len(), 3, "{files:?}");
    assert_eq!(files.removed_files, 57, "{files:?}");
    assert_eq!(
        names(&dir),
        ["ring.pcap0", "ring.pcap1", "ring.pcap2"],
        "padded numbers, the ring's files only"
    );
    // The last file written was number 59 % 3 = 2, so 0 is the oldest.
    let order: Vec<&str> = files.files.iter().map(|f| f.path.as_str()).collect();
    assert!(
        order[0].ends_with("ring.pcap0") && order[2].ends_with("ring.pcap2"),
        "{order:?}"
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn time_rotation_names_files_by_strftime_runs_z_and_stops_after_w_files() {
    let bed = Testbed::new(1);
    let dir = fresh_dir("rotate-time");
    let log = dir.join("hook.log");
    let hook = temp_path("hook.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$1\" >> {}\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let pattern = dir.join("t-%s.pcap");
    let json = temp_path("rotate-time.json");
    let mut cap = bed.start_capture(&[
        "-w",
        pattern.to_str().unwrap(),
        "-G",
        "1",
        "-W",
        "3",
        "-z",
        hook.to_str().unwrap(),
        "--duration",
        "30",
        "-q",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    // 4 s of traffic at 1000 frames/s: the capture ends by itself after 3 files.
    generate(&bed, 4000, 100, Some(1000.0));
    let (s, stderr) = finished(&mut cap, &json);
    assert!(
        stderr.contains("-W: the last of the files is written"),
        "{stderr}"
    );
    assert_accounted(&s);
    let paths = assert_files_hold_everything(&s);
    assert_eq!(paths.len(), 3, "{:?}", names(&dir));
    // Named by the epoch second each period started, one second apart.
    let secs: Vec<u64> = paths
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.trim_start_matches("t-")
                .trim_end_matches(".pcap")
                .parse()
                .unwrap_or_else(|_| panic!("{name}"))
        })
        .collect();
    assert_eq!(secs[1], secs[0] + 1, "{secs:?}");
    assert_eq!(secs[2], secs[1] + 1, "{secs:?}");
    assert!(s.packets > 1500, "{}", s.packets);
    // -z ran once per closed file, with its name, the last one included.
    let ran: Vec<PathBuf> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect();
    assert_eq!(ran, paths);
    let files = s.files.unwrap();
    assert_eq!((files.hooks_run, files.hooks_failed), (3, 0));
    assert!(!names(&dir).iter().any(|n| n.ends_with(".part")));
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn max_disk_deletes_the_oldest_files_of_this_capture_only() {
    let bed = Testbed::new(1);
    let dir = fresh_dir("rotate-disk");
    // Someone else's file in the same directory is never touched.
    let other = dir.join("keep.pcap");
    std::fs::write(&other, b"not ours").unwrap();
    let out = dir.join("d.pcap");
    let json = temp_path("rotate-disk.json");
    let mut cap = bed.start_capture(&[
        "-w",
        out.to_str().unwrap(),
        "-C",
        "20k",
        "--max-disk",
        "100k",
        "-z",
        "/nonexistent/xsktap-hook",
        "-c",
        "2000",
        "--duration",
        "30",
        "-q",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    generate(&bed, 2000, 1000, Some(50_000.0));
    let status = cap.wait(WAIT);
    let stderr = cap.stderr();
    assert!(status.success(), "a failing -z is not fatal: {stderr}");
    assert!(
        stderr.contains("-z /nonexistent/xsktap-hook") && stderr.contains("cannot run it"),
        "-z failures are reported: {stderr}"
    );
    let s = typed_summary(&json);
    assert_eq!(s.packets, 2000);
    assert_files_hold_everything(&s);
    let files = s.files.as_ref().unwrap();
    assert!(files.removed_files > 0, "{files:?}");
    assert!(files.hooks_failed > 0 && files.hooks_failed == files.hooks_run);
    let ours: u64 = files.files.iter().map(|f| f.bytes).sum();
    assert!(ours <= 100 * 1024, "{ours} bytes on disk");
    assert_eq!(std::fs::read(&other).unwrap(), b"not ours");
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_full_disk_with_drop_and_count_counts_and_writes_again_when_room_returns() {
    let bed = Testbed::new(1);
    let disk = SmallDisk::new(3 << 20);
    // Someone else's 1 MiB, freed later: the room that returns.
    let filler = disk.0.join("filler");
    std::fs::write(&filler, vec![0u8; 1 << 20]).unwrap();
    let pcap = disk.0.join("x.pcap");
    let json = temp_path("drop-and-count.json");
    let mut cap = bed.start_capture(&[
        "-w",
        pcap.to_str().unwrap(),
        "--on-disk-full",
        "drop-and-count",
        "--duration",
        "30",
        "-q",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    generate(&bed, 5000, 1000, Some(50_000.0));
    cap.wait_for_stderr("dropping and counting frames", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let full = std::fs::metadata(&pcap).unwrap().len();
    std::fs::remove_file(&filler).unwrap();
    generate(&bed, 500, 1000, Some(50_000.0));
    cap.wait_for_stderr("there is room again", Duration::from_secs(10));
    cap.signal(libc::SIGINT);
    let (s, _) = finished(&mut cap, &json);
    assert_accounted(&s);
    let q = &s.queues[0];
    assert!(q.output_failed > 0, "{q:?}");
    assert_eq!(
        q.output_failed, q.output_closed_drops,
        "every unwritten frame counted"
    );
    assert_eq!(q.received, 5500, "the capture went on: {q:?}");
    assert_eq!(tcpdump_count(&pcap), s.packets);
    let end = std::fs::metadata(&pcap).unwrap().len();
    assert!(
        end > full + 400 * 1016,
        "written again after the room returned: {full} -> {end}"
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_full_disk_with_overwrite_oldest_deletes_the_oldest_file_and_loses_nothing() {
    let bed = Testbed::new(1);
    let disk = SmallDisk::new(1 << 20);
    let json = temp_path("overwrite-oldest.json");
    let mut cap = bed.start_capture(&[
        "-w",
        disk.0.join("o.pcap").to_str().unwrap(),
        "-C",
        "200k",
        "--on-disk-full",
        "overwrite-oldest",
        "-c",
        "5000",
        "--duration",
        "30",
        "-q",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    // 5 MB through a 1 MiB disk.
    generate(&bed, 5000, 1000, Some(50_000.0));
    let (s, stderr) = finished(&mut cap, &json);
    assert!(
        stderr.contains("to make room (--on-disk-full overwrite-oldest)"),
        "{stderr}"
    );
    assert_eq!(s.packets, 5000, "nothing lost: {:?}", s.queues[0]);
    assert_eq!(s.queues[0].output_failed, 0);
    assert_files_hold_everything(&s);
    assert!(s.files.as_ref().unwrap().removed_files > 10);
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn sort_window_merges_the_queues_by_time() {
    let bed = Testbed::new(2);
    let pcap = temp_path("sorted.pcap");
    let json = temp_path("sorted.json");
    let mut cap = bed.start_capture(&[
        "-w",
        pcap.to_str().unwrap(),
        "--sort-window",
        "200",
        "-c",
        "4000",
        "--duration",
        "30",
        "-q",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    // Many flows from an AF_PACKET socket: the veth spreads them over both queues.
    // (Without --sort-window the file goes backwards where the queues interleave.)
    bed.send(&xsktap_bench::frames::varied_frames(4000, 64));
    let (s, _) = finished(&mut cap, &json);
    assert_accounted(&s);
    assert_eq!(s.packets, 4000);
    assert!(
        s.queues.iter().all(|q| q.packets > 0),
        "both queues took frames: {:?}",
        s.queues.iter().map(|q| q.packets).collect::<Vec<_>>()
    );
    assert_eq!(s.out_of_order, 0);
    let (_, records) = read_pcap(&pcap);
    assert_eq!(records.len(), 4000);
    let backwards = records
        .windows(2)
        .filter(|w| w[1].ts_ns < w[0].ts_ns)
        .count();
    assert_eq!(backwards, 0, "timestamps never go backwards");
}

/// Issue 28, 7: a `-z` command's output goes to stderr, never into the
/// capture's own stream on stdout (`monitor --json` here).
#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn z_commands_write_to_stderr_not_into_the_json_stream() {
    let bed = Testbed::new(1);
    let dir = fresh_dir("rotate-z-stdout");
    let hook = dir.join("say.sh");
    std::fs::write(&hook, "#!/bin/sh\necho \"hook saw $1\"\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = dir.join("m.pcap");
    let iface = bed.ns_b();
    let mut cmd = bed.xsktap(&[
        "monitor",
        "-i",
        iface.as_str(),
        "--json",
        "-w",
        out.to_str().unwrap(),
        "-C",
        "20k",
        "-z",
        hook.to_str().unwrap(),
        "-c",
        "500",
        "--duration",
        "30",
    ]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    wait_attached(&bed);
    generate(&bed, 500, 200, Some(20_000.0));
    let out = wait_output(child, WAIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = 0;
    for line in stdout.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("stdout holds a line that is not JSON ({e}): {line}"));
        lines += 1;
    }
    assert_eq!(lines, 500, "one JSON line per packet");
    let hooked = stderr
        .lines()
        .filter(|l| l.starts_with("hook saw "))
        .count();
    assert!(
        hooked >= 2,
        "the hooks ran, their output on stderr: {stderr}"
    );
}

/// Issue 28, 8: files a `-z` command removed (`rm`) are not listed as on
/// disk; the summary counts them apart, and every packet is still there.
#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn files_a_z_command_removed_are_not_listed_as_on_disk() {
    let bed = Testbed::new(1);
    let dir = fresh_dir("rotate-z-rm");
    let json = temp_path("rotate-z-rm.json");
    let mut cap = bed.start_capture(&[
        "-w",
        dir.join("rm.pcap").to_str().unwrap(),
        "-C",
        "20k",
        "-z",
        "rm",
        "-c",
        "1000",
        "--duration",
        "30",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    generate(&bed, 1000, 500, Some(20_000.0));
    let status = cap.wait(WAIT);
    let stderr = cap.stderr();
    assert!(status.success(), "{stderr}");
    let s = typed_summary(&json);
    assert_accounted(&s);
    assert_eq!(s.packets, 1000);
    let files = s.files.as_ref().unwrap();
    assert!(files.files.is_empty(), "rm took every file: {files:?}");
    assert!(files.hooked_files > 10 && files.hooked_files == files.hooks_run);
    assert_eq!(files.hooked_packets, 1000);
    assert_files_hold_everything(&s);
    assert!(names(&dir).is_empty(), "{:?}", names(&dir));
    assert!(
        stderr.contains("0 files on disk") && stderr.contains("moved or removed"),
        "{stderr}"
    );
}
