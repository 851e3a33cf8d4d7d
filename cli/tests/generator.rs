//! The generator on AF_XDP TX (issue 27): the same stamped frames, counts
//! and ground truth as the live-frames path, which this kernel may refuse;
//! both sides of the live-frames probe.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// Sends `count` frames from side a through an AF_XDP socket.
fn send_af_xdp(bed: &Testbed, count: u64, size: usize, ipv6: bool) -> u64 {
    let ns = bed.ns_a();
    std::thread::scope(|s| {
        s.spawn(|| {
            xsktap_bench::netns::enter(&ns).expect("entering namespace a");
            let cfg = xsktap_bench::gen::GenConfig {
                iface: ns.clone(),
                frame_size: size,
                ipv6,
                count,
                flows: 8,
                rate: Some(200_000.0),
                max_duration: Duration::from_secs(30),
                via: xsktap_bench::gen::Via::AfXdp,
            };
            let g = xsktap_bench::gen::Generator::new(&cfg).expect("the generator");
            assert_eq!(g.via(), xsktap_bench::gen::Via::AfXdp);
            g.send(&cfg).expect("sending").sent
        })
        .join()
        .expect("generator thread")
    })
}

fn capture_what_is_sent(ipv6: bool) {
    let bed = Testbed::new(1);
    const N: u64 = 20_000;
    let family = if ipv6 { "6" } else { "4" };
    let pcap = temp_path(&format!("gen{family}.pcap"));
    let summary = temp_path(&format!("gen{family}.json"));
    let mut cap = bed.start_capture(&[
        "-w",
        pcap.to_str().unwrap(),
        "-c",
        &N.to_string(),
        "--duration",
        "30",
        "--summary-json",
        summary.to_str().unwrap(),
        "-q",
    ]);
    let size = if ipv6 { 100 } else { 64 };
    assert_eq!(send_af_xdp(&bed, N, size, ipv6), N, "every frame completed");
    assert!(cap.wait(WAIT).success(), "{}", cap.stderr());
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["packets"], N);
    let l = &s["latency"];
    assert_eq!(
        l["stamped"], N,
        "every frame carries the generator's stamp: {l}"
    );
    assert_eq!(l["missing"], 0, "{l}");
    assert_eq!(l["duplicates"], 0, "{l}");
    assert_eq!(l["reordered"], 0, "{l}");
    let (_, records) = read_pcap(&pcap);
    assert!(records.iter().all(|r| r.data.len() == size));
    // Flows over eight source ports, evenly.
    let sport = if ipv6 { 54 } else { 34 };
    let mut ports = std::collections::BTreeMap::new();
    for r in &records {
        *ports
            .entry(u16::from_be_bytes([r.data[sport], r.data[sport + 1]]))
            .or_insert(0u64) += 1;
    }
    assert_eq!(
        ports.keys().copied().collect::<Vec<_>>(),
        (10_000..10_008).collect::<Vec<_>>()
    );
    assert!(ports.values().all(|&n| n == N / 8), "{ports:?}");
    if ipv6 {
        // An independent reader checks every UDP checksum the sender rebuilt.
        let out = std::process::Command::new("tshark")
            .args([
                "-r",
                pcap.to_str().unwrap(),
                "-o",
                "udp.check_checksum:TRUE",
            ])
            .args([
                "-Y",
                "udp.checksum.status != 1",
                "-T",
                "fields",
                "-e",
                "frame.number",
            ])
            .output()
            .expect("tshark");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout.is_empty(),
            "frames with a bad UDP checksum: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn af_xdp_generator_frames_arrive_stamped_counted_and_spread_over_flows() {
    capture_what_is_sent(false);
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn af_xdp_generator_ipv6_frames_carry_valid_checksums() {
    capture_what_is_sent(true);
}

/// `xsktap-bench gen` with `env` on side a: exit status, stdout, stderr.
fn bench_gen(bed: &Testbed, via: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let bench = Path::new(XSKTAP).with_file_name("xsktap-bench");
    assert!(
        bench.exists(),
        "{} is built with the workspace",
        bench.display()
    );
    let a = bed.ns_a();
    let mut cmd = bed.command_a(
        &bench,
        &[
            "gen", "-i", &a, "-c", "1000", "--rate", "100000", "--via", via,
        ],
    );
    cmd.env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    cmd.envs(env.iter().copied());
    let out = run(cmd);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn without_live_frames_auto_sends_over_af_xdp_and_live_frames_is_refused_in_one_line() {
    let bed = Testbed::new(1);
    let off = [("XSKTAP_TEST_MISSING", "live_frames")];
    let (code, stdout, stderr) = bench_gen(&bed, "auto", &off);
    assert_eq!(code, Some(0), "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(v["via"], "af-xdp");
    assert_eq!(v["sent"], 1000);
    let (code, _, stderr) = bench_gen(&bed, "live-frames", &off);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("--via af-xdp"),
        "names the way out: {stderr}"
    );
    // Unforced, auto takes live frames exactly where the kernel runs them.
    let live = xsktap::probe::live_frames(1).is_ok();
    let (code, stdout, stderr) = bench_gen(&bed, "auto", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(v["via"], if live { "live-frames" } else { "af-xdp" });
}
