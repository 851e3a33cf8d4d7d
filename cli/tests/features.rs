//! `xsktap features` (issue 27): what it reports on a bed's veth is what a
//! capture then chooses, on both sides of the metadata probe; and a refused
//! feature is said in one line, never with libbpf's or the verifier's log.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// `xsktap features -i B --json` with `env`.
fn features(bed: &Testbed, env: &[(&str, &str)]) -> Value {
    let iface = bed.ns_b();
    let mut cmd = bed.xsktap(&["features", "-i", &iface, "--json"]);
    cmd.envs(env.iter().copied());
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "nothing on stderr: {:?}", out.stderr);
    serde_json::from_slice(&out.stdout).expect("features --json is JSON")
}

/// A one-second capture with `env`: its summary and its standard error.
fn capture(bed: &Testbed, env: &[(&str, &str)]) -> (Value, String) {
    let summary = temp_path("features-summary.json");
    let mut cap = bed.start_capture_env(
        &[
            "-w",
            "/dev/null",
            "--duration",
            "1",
            "--summary-json",
            summary.to_str().unwrap(),
        ],
        env,
    );
    assert!(cap.wait(WAIT).success(), "{}", cap.stderr());
    let text = std::fs::read_to_string(&summary).expect("the summary");
    (serde_json::from_str(&text).expect("JSON"), cap.stderr())
}

fn features_match_the_capture(env: &[(&str, &str)]) -> Value {
    let bed = Testbed::new(1);
    let f = features(&bed, env);
    let iface = &f["probed"]["interface"];
    assert_eq!(iface["name"], bed.ns_b().as_str());
    assert_eq!(
        iface["native_xdp"], true,
        "veth redirects in its driver: {f}"
    );
    assert_eq!(iface["zero_copy"], false, "veth has no zero-copy: {f}");
    let (summary, stderr) = capture(&bed, env);
    let chosen = &f["capture"];
    let stamping = &summary["stamping"];
    assert_eq!(
        stamping["carried_in"], chosen["carried_in"],
        "{f}\n{summary}"
    );
    assert_eq!(stamping["source"], chosen["stamping"], "{f}\n{summary}");
    assert_eq!(stamping["per_frame"], true);
    assert_eq!(summary["queues"][0]["bind_mode"], chosen["bind"]);
    if chosen["attach"] != "native, generic if refused" {
        assert_eq!(summary["xdp_mode"], chosen["attach"], "{f}\n{summary}");
    }
    let metadata = f["probed"]["xdp_metadata"].as_bool().unwrap();
    let carried = if metadata { "metadata" } else { "headroom" };
    assert_eq!(chosen["carried_in"], carried);
    assert_eq!(
        stderr.contains("carried in headroom"),
        !metadata,
        "the start line says so exactly when stamps go in headroom: {stderr}"
    );
    assert!(
        !stderr.contains("libbpf") && !stderr.contains("PROG LOAD LOG"),
        "no libbpf or verifier line by default: {stderr}"
    );
    f
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn features_say_what_the_capture_then_uses() {
    features_match_the_capture(&[]);
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn features_and_capture_agree_with_metadata_switched_off() {
    let env = [("XSKTAP_TEST_MISSING", "adjust_meta,live_frames")];
    let f = features_match_the_capture(&env);
    assert_eq!(f["probed"]["xdp_metadata"], false);
    assert_eq!(f["probed"]["live_frames"], false);
    assert_eq!(f["capture"]["carried_in"], "headroom");
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn features_text_names_each_probe() {
    let bed = Testbed::new(1);
    let iface = bed.ns_b();
    let out = run(bed.xsktap(&["features", "-i", &iface]));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for row in [
        "XDP metadata (adjust_meta)",
        "BPF_PROG_RUN live frames",
        "multi-buffer XDP (frags)",
        "AF_XDP zero-copy",
        "a capture would use",
        "stamping",
    ] {
        assert!(text.contains(row), "{row}: {text}");
    }
    let out = run(bed.xsktap(&["features", "-i", "xsktap-no-such-if"]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

/// `-v` prints libbpf's messages; without it, nothing of them.
#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn verbose_prints_libbpf_messages() {
    let bed = Testbed::new(1);
    let iface = bed.ns_b();
    let out = run(bed.xsktap(&[
        "capture",
        "-v",
        "-i",
        &iface,
        "-w",
        "/dev/null",
        "--duration",
        "1",
    ]));
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("libbpf:"), "-v shows libbpf's messages: {err}");
}
