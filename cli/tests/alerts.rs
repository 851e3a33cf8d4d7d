//! Anomaly alerts end to end, as root: a port scan sent on a test bed is
//! named, on stderr and as a JSON event of `top --json`; `--no-alerts`
//! silences it; bad threshold values are refused before anything attaches.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::protocols::tcp4;
use common::*;

const SYN: u8 = 0x02;

/// 500 SYNs from 198.18.0.1 to ports 1..=500 of 198.18.0.2, and ordinary
/// traffic on one port around them.
fn scan_frames() -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> = (1..=500).map(|port| tcp4(40000, port, SYN)).collect();
    frames.extend((0..200).map(|_| tcp4(40001, 443, 0x18)));
    frames
}

/// Starts `top --json` for `secs` seconds on the bed, with `extra` flags.
fn spawn_top(bed: &Testbed, secs: &str, extra: &[&str]) -> std::process::Child {
    let iface = bed.ns_b();
    let mut args = vec!["top", "-i", iface.as_str(), "--json", "--duration", secs];
    args.extend_from_slice(extra);
    let mut cmd = bed.xsktap(&args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("starting xsktap top");
    wait_attached(bed);
    child
}

/// Waits for `top` to end by itself; (stdout, stderr).
fn finish_top(child: std::process::Child) -> (String, String) {
    let out = wait_output(child, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// Runs `top --json` on the bed while the scan is sent; (stdout, stderr).
fn top_during_scan(extra: &[&str]) -> (String, String) {
    let bed = Testbed::new(1);
    let mut flags = vec!["--alert-scan-secs", "2"];
    flags.extend_from_slice(extra);
    let child = spawn_top(&bed, "8", &flags);
    bed.send(&scan_frames());
    finish_top(child)
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_port_scan_is_named_by_its_source_on_stderr_and_in_the_json_stream() {
    let (stdout, stderr) = top_during_scan(&[]);
    let alerts: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("xsktap: alert "))
        .collect();
    assert_eq!(
        alerts.first().copied(),
        Some("xsktap: alert scan src 198.18.0.1: more than 100 destination ports within 2 s"),
        "{stderr}"
    );
    // It ends once a whole window passes quietly; nothing else is raised.
    assert_eq!(alerts.len(), 2, "{stderr}");
    assert!(
        alerts[1].starts_with("xsktap: alert scan src 198.18.0.1 ended: "),
        "{stderr}"
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .filter(|v: &serde_json::Value| v["event"] == "alert")
        .collect();
    assert_eq!(events.len(), 2, "{stdout}");
    assert_eq!(events[0]["kind"], "scan");
    assert_eq!(events[0]["subject"], "src 198.18.0.1");
    assert_eq!(events[0]["state"], "start");
    assert_eq!(events[1]["state"], "end");
    assert!(events[0]["time_ns"].as_u64().unwrap() > 1_600_000_000_000_000_000);
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn no_alerts_silences_the_detectors() {
    let (stdout, stderr) = top_during_scan(&["--no-alerts"]);
    assert!(!stderr.contains("xsktap: alert"), "{stderr}");
    assert!(!stdout.contains("\"alert\""), "{stdout}");
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn bad_alert_thresholds_are_one_line_exit_2_and_nothing_attached() {
    let bed = Testbed::new(1);
    for (flags, expected) in [
        (
            &["--alert-spike-factor", "0.5"][..],
            "--alert-spike-factor 0.5",
        ),
        (
            &["--alert-spike-factor", "NaN"][..],
            "--alert-spike-factor NaN",
        ),
        (&["--alert-hold", "0"][..], "--alert-hold"),
        (&["--alert-scan", "1"][..], "--alert-scan"),
        (&["--alert-min-pps=-5"][..], "--alert-min-pps"),
        (&["--alert-scan-secs", "lots"][..], "--alert-scan-secs"),
    ] {
        assert_refused(&bed, flags, expected);
    }
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_syn_flood_is_named_with_its_destination() {
    let bed = Testbed::new(1);
    let child = spawn_top(&bed, "9", &["--alert-hold", "2"]);
    // About 5,000 SYNs a second to port 80 for 5 s, each from a new source
    // port (no handshake ever completes), bounded in count and time.
    for chunk in 0..25u16 {
        let frames: Vec<Vec<u8>> = (0..1000)
            .map(|i| tcp4(10_000 + chunk * 1000 + i, 80, SYN))
            .collect();
        bed.send(&frames);
        std::thread::sleep(Duration::from_millis(200));
    }
    let (stdout, stderr) = finish_top(child);
    let alerts: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("xsktap: alert "))
        .collect();
    assert!(
        alerts.first().is_some_and(
            |l| l.starts_with("xsktap: alert syn-flood dst 198.18.0.2: ")
                && l.contains("SYN/s, SYN:ACK ")
        ),
        "{stderr}"
    );
    assert!(
        alerts
            .iter()
            .all(|l| l.contains("syn-flood dst 198.18.0.2")),
        "nothing else is raised: {stderr}"
    );
    assert!(
        stdout.contains(r#""kind":"syn-flood""#)
            && stdout.contains(r#""subject":"dst 198.18.0.2""#),
        "{stdout}"
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn monitor_json_carries_alert_events_between_packets_and_alert_exec_runs_per_event() {
    let bed = Testbed::new(1);
    let iface = bed.ns_b();
    let out_file = temp_path("alert-exec.jsonl");
    let _ = std::fs::remove_file(&out_file);
    let exec = format!(
        "cat >> {} && echo \"$XSKTAP_ALERT_KIND $XSKTAP_ALERT_STATE\"",
        out_file.display()
    );
    let mut cmd = bed.xsktap(&[
        "monitor",
        "-i",
        iface.as_str(),
        "--json",
        "--duration",
        "8",
        "--alert-scan-secs",
        "2",
        "--alert-exec",
        &exec,
    ]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("starting xsktap monitor");
    wait_attached(&bed);
    let frames = scan_frames();
    bed.send(&frames);
    let (stdout, stderr) = finish_top(child);
    // Every line is one JSON object: the packets, and the alert's start and end.
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let events: Vec<&serde_json::Value> = lines.iter().filter(|v| v["event"] == "alert").collect();
    assert_eq!(lines.len() - events.len(), frames.len(), "{stderr}");
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["state"].as_str().unwrap()))
        .collect();
    assert_eq!(seen, [("scan", "start"), ("scan", "end")], "{stderr}");
    // The command got each event as JSON on its stdin, its output went to stderr.
    let ran: Vec<serde_json::Value> = std::fs::read_to_string(&out_file)
        .expect("the command wrote its input")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ran.len(), 2, "{ran:?}");
    assert_eq!(ran[0]["subject"], "src 198.18.0.1");
    assert_eq!(ran[0]["state"], "start");
    assert_eq!(ran[1]["state"], "end");
    assert!(stderr.contains("\nscan start\n"), "{stderr}");
    assert!(
        stderr.contains("xsktap: --alert-exec ran 2 times (0 failed, 0 skipped"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&out_file);
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_failing_or_slow_alert_command_never_holds_the_capture_up() {
    let bed = Testbed::new(1);
    // Each run takes 2 s and fails; the scan's start and end still come on
    // time, the capture ends on time, and the failures are counted.
    let child = spawn_top(
        &bed,
        "8",
        &["--alert-scan-secs", "2", "--alert-exec", "sleep 2; exit 3"],
    );
    let started = std::time::Instant::now();
    bed.send(&scan_frames());
    let (_, stderr) = finish_top(child);
    assert!(
        started.elapsed() < Duration::from_secs(16),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains("xsktap: alert scan src 198.18.0.1 ended"),
        "{stderr}"
    );
    assert!(stderr.contains("exit status: 3"), "{stderr}");
    assert!(
        stderr.contains("xsktap: --alert-exec ran 2 times (2 failed, 0 skipped"),
        "{stderr}"
    );
}
