//! Faults an adversarial user finds (issue 10), each reproduced on a test
//! bed: outputs that fail, fill up, stall or leave; signals while they do;
//! a reader of stderr that leaves. In every case every frame the XDP
//! program redirected is accounted for, and a stop is bounded.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(60);

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn dev_full_fails_at_the_header_before_anything_is_attached() {
    let bed = Testbed::new(1);
    let iface = bed.ns_b();
    let out = bed
        .xsktap(&["capture", "-i", &iface, "-w", "/dev/full"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("/dev/full") && stderr.contains("No space left"),
        "{stderr}"
    );
    assert!(!stderr.contains("capturing"), "{stderr}");
    assert!(!bed.xdp_attached());
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_full_disk_counts_every_frame_and_leaves_whole_records() {
    let bed = Testbed::new(1);
    let disk = SmallDisk::new(2 << 20);
    let pcap = disk.0.join("full.pcap");
    let json = temp_path("full-disk.json");
    let mut cap = bed.start_capture(&[
        "-w",
        pcap.to_str().unwrap(),
        "--duration",
        "30",
        "-q",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    // 20 MB of 1000-byte frames into 2 MiB.
    let sent = generate(&bed, 20_000, 1000, Some(100_000.0));
    let status = cap.wait(WAIT);
    let stderr = cap.stderr();
    assert_eq!(status.code(), Some(1), "the output failed: {stderr}");
    assert!(stderr.contains("No space left"), "{stderr}");
    let s = typed_summary(&json);
    assert_accounted(&s);
    assert!(s.queues[0].output_closed_drops > 0, "{s:?}");
    assert!(s.queues[0].xdp_redirected.unwrap() <= sent);
    // The file ends at its last whole record, and holds exactly what the
    // summary calls written.
    let (_, records) = read_pcap(&pcap);
    assert_eq!(records.len() as u64, s.packets);
    assert!(s.packets > 1000, "{}", s.packets);
    let tcpdump = Command::new("tcpdump")
        .arg("-r")
        .arg(&pcap)
        .arg("-nn")
        .output()
        .unwrap();
    let complaint = String::from_utf8_lossy(&tcpdump.stderr);
    assert!(tcpdump.status.success(), "{complaint}");
    assert!(!complaint.contains("truncated"), "{complaint}");
    assert!(!bed.xdp_attached());
}

/// `xsktap monitor --json` whose stdout is a pipe nobody reads, after
/// enough traffic to fill it and the rings.
fn stalled_monitor(bed: &Testbed, json: &std::path::Path) -> (Running, std::process::ChildStdout) {
    let iface = bed.ns_b();
    let mut cmd = bed.xsktap(&[
        "monitor",
        "-i",
        &iface,
        "--json",
        "-q",
        "--ring-size",
        "2048",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut running = Running::spawn(cmd);
    let stdout = running.child.stdout.take().expect("piped");
    running.wait_for_stderr("xsktap: capturing", Duration::from_secs(20));
    generate(bed, 200_000, 64, Some(400_000.0));
    (running, stdout)
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_stop_on_a_stalled_output_is_bounded_and_counts_every_frame() {
    let bed = Testbed::new(1);
    let json = temp_path("stalled.json");
    let (mut cap, _unread) = stalled_monitor(&bed, &json);
    let asked = Instant::now();
    cap.signal(libc::SIGINT);
    let status = cap.wait(WAIT);
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(4), "stopped in {took:?}");
    let stderr = cap.stderr();
    assert_eq!(status.code(), Some(1), "lines were not written: {stderr}");
    assert!(stderr.contains("standard output"), "{stderr}");
    let s = typed_summary(&json);
    assert_accounted(&s);
    let q = &s.queues[0];
    assert!(q.output_closed_drops > 0, "{q:?}");
    assert!(!bed.xdp_attached());
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_second_signal_ends_the_process_at_once() {
    let bed = Testbed::new(1);
    let json = temp_path("second-signal.json");
    let (mut cap, _unread) = stalled_monitor(&bed, &json);
    cap.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(100));
    let asked = Instant::now();
    cap.signal(libc::SIGTERM);
    let status = cap.wait(WAIT);
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    assert!(!bed.xdp_attached(), "the kernel detached the program");
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_reader_of_stderr_that_leaves_does_not_end_the_capture() {
    let bed = Testbed::new(1);
    let json = temp_path("stderr-gone.json");
    let iface = bed.ns_b();
    let mut cmd = bed.xsktap(&[
        "capture",
        "-i",
        &iface,
        "--duration",
        "3",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // `2>&1 | head -2`: read two lines, then leave.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for _ in 0..2 {
        lines.next().expect("a line").unwrap();
    }
    drop(lines);
    bed.send(&protocols::plain_frames());
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "xsktap never ended");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let s = typed_summary(&json);
    assert_accounted(&s);
    assert!(
        s.duration_s >= 2.9,
        "ran its whole duration: {}",
        s.duration_s
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn cores_are_given_to_the_queues_in_the_order_written() {
    let bed = Testbed::new(2);
    let json = temp_path("cores-order.json");
    let mut cap = bed.start_capture(&[
        "--queues",
        "0,1",
        "--cores",
        "1,0",
        "--duration",
        "0.5",
        "-q",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    assert!(cap.wait(WAIT).success(), "{}", cap.stderr());
    let s = typed_summary(&json);
    let placed: Vec<(u32, usize)> = s.queues.iter().map(|q| (q.queue, q.core)).collect();
    assert_eq!(placed, vec![(0, 1), (1, 0)]);
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn an_interface_deleted_mid_capture_ends_it_with_a_valid_file() {
    interface_lost_mid_capture(&["del"], "disappeared during the capture");
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn an_interface_taken_down_mid_capture_ends_it_with_a_valid_file() {
    interface_lost_mid_capture(&["set", "down"], "went down during the capture");
}

/// `ip link ACTION` on the captured interface mid-capture: noticed within
/// seconds, the file closed valid and complete, one line, exit 1.
fn interface_lost_mid_capture(action: &[&str], says: &str) {
    let bed = Testbed::new(1);
    let pcap = temp_path("deleted.pcap");
    let json = temp_path("deleted.json");
    let mut cap = bed.start_capture(&[
        "-w",
        pcap.to_str().unwrap(),
        "--duration",
        "60",
        "-q",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    let frames = protocols::plain_frames();
    bed.send(&frames);
    std::thread::sleep(Duration::from_millis(300));
    let ns = bed.ns_b();
    let (verb, rest) = action.split_first().unwrap();
    let done = Command::new("ip")
        .args(["-n", &ns, "link", verb, &ns])
        .args(rest)
        .status()
        .unwrap();
    assert!(done.success());
    let asked = Instant::now();
    let status = cap.wait(WAIT);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "noticed in {:?}",
        asked.elapsed()
    );
    let stderr = cap.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let line = stderr.lines().last().unwrap_or("");
    assert!(line.contains(says), "{stderr}");
    let (_, records) = read_pcap(&pcap);
    assert_eq!(
        records.len(),
        frames.len(),
        "the file is valid and complete"
    );
    let s = typed_summary(&json);
    assert_eq!(s.packets, frames.len() as u64);
}
