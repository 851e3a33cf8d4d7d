//! The benchmark harness in its short mode, as root, on a test bed it builds
//! itself: every installed receiver runs, and for every trial the frames
//! offered equal the frames recorded plus the drops attributed to a counter.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn short_run_accounts_for_every_frame() {
    xsktap_bench::testbed::require_root();
    let bench = Path::new(env!("CARGO_BIN_EXE_xsktap-bench"));
    let xsktap = bench.with_file_name("xsktap");
    assert!(
        xsktap.is_file(),
        "build the xsktap binary first (cargo test --workspace does)"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = std::env::temp_dir().join(format!("xsktap-bench-test-{}", std::process::id()));
    let run = Command::new(bench)
        .current_dir(root)
        .args(["run", "--short", "--out"])
        .arg(&out)
        .output()
        .expect("running xsktap-bench");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "xsktap-bench run --short failed: {stderr}"
    );
    let table = String::from_utf8_lossy(&run.stdout);
    assert!(table.contains("| xsktap -w tmpfs |"), "{table}");

    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let trials = results["trials"].as_array().unwrap();
    let receivers: std::collections::BTreeSet<&str> = trials
        .iter()
        .map(|t| t["receiver"].as_str().unwrap())
        .collect();
    for expected in [
        "xdp-count-drop",
        "xsktap -w tmpfs",
        "xsktap -w tmpfs, own placement",
        "xsktap (no sink)",
    ] {
        assert!(
            receivers.contains(expected),
            "{expected} ran: {receivers:?}"
        );
    }
    // dpdk-testpmd: Debian's package, or its private unpacking by
    // tools/install-deps.sh.
    let testpmd = format!(
        "command -v dpdk-testpmd || test -x {}",
        xsktap_bench::harness::PRIVATE_DPDK
    );
    for installed in [
        ("command -v tcpdump", "tcpdump -w tmpfs"),
        ("command -v netsniff-ng", "netsniff-ng -o tmpfs"),
        (testpmd.as_str(), "dpdk-testpmd af_xdp rxonly"),
    ] {
        let present = Command::new("sh")
            .args(["-c", installed.0])
            .output()
            .unwrap()
            .status
            .success();
        assert_eq!(
            receivers.contains(installed.1),
            present,
            "{} runs exactly when installed",
            installed.1
        );
    }
    for t in trials {
        let n = |k: &str| t[k].as_u64().unwrap();
        assert!(n("sent") > 0, "{t}");
        assert_eq!(
            n("sent"),
            n("recorded") + n("veth_drops") + n("socket_drops") + n("receiver_drops"),
            "offered = recorded + attributed drops: {t}"
        );
        assert_eq!(t["unattributed"], 0);
    }
    // xsktap's latency and the kernel socket's were both measured.
    let xsktap = results["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["receiver"] == "xsktap (no sink)")
        .unwrap();
    assert!(xsktap["latency_ns"]["p99"].as_u64().unwrap() > 0);
    // CPU per packet is known for every receiver that ran (it needs the
    // fixed-rate and the maximum-rate trials of it and of count-and-drop).
    for s in results["summary"].as_array().unwrap() {
        assert!(s["cpu_ns_per_packet"]["median"].is_f64(), "{s}");
    }
    assert!(results["udp_socket"]["latency_ns"]["p99"].as_u64().unwrap() > 0);
    assert_eq!(results["udp_socket"]["unattributed"], 0);
    let chart = std::fs::read_to_string(out.join("chart.svg")).unwrap();
    assert!(
        chart.starts_with("<svg")
            && chart.contains("polyline")
            && chart.trim_end().ends_with("</svg>")
    );
    assert!(std::fs::read_to_string(out.join("README.md"))
        .unwrap()
        .contains("Machine:"));
    let _ = std::fs::remove_dir_all(&out);
}
