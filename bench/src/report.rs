//! The comparison table, its ratios, and the README written next to the results.

use std::fmt::Write;

use crate::harness::{LatencyNs, ReceiverSummary, RunConfig, RunResult, Spread};

fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} Mpps", v / 1e6)
    } else {
        format!("{:.0} kpps", v / 1e3)
    }
}

/// A rate over the rounds: the median, then the smallest and largest.
fn rates(v: &Spread) -> String {
    format!("{} ({}–{})", rate(v.median), rate(v.min), rate(v.max))
}

fn find<'a>(summary: &'a [ReceiverSummary], name: &str) -> Option<&'a ReceiverSummary> {
    summary.iter().find(|s| s.receiver == name)
}

/// The table printed on stdout and kept in the README.
pub fn table(cfg: &RunConfig, r: &RunResult) -> String {
    let mut s = String::new();
    let napi = if cfg.napi_thread {
        "the veth's NAPI as a SCHED_FIFO thread on CPU 1"
    } else {
        "the veth's NAPI in softirq on CPU 0 (kernel default: receive work throttles the generator)"
    };
    let generator = match r.generator.as_str() {
        "af-xdp" => "generator on AF_XDP TX (the veth receives skbs, as from any socket sender)",
        "live-frames" => "generator on BPF_PROG_RUN live frames (the veth receives XDP frames)",
        _ => "generator",
    };
    let _ = writeln!(
        s,
        "{}-byte frames, one RX queue; {generator} on CPU 0; receiver on CPU 1; {napi}; {} s trials; \
         each figure the median of {} rounds taking the receivers in turn (smallest–largest)\n",
        cfg.frame_size, cfg.trial_secs, cfg.rounds
    );
    let _ = writeln!(s, "| receiver | max offered | recorded at max | share recorded | zero-loss rate | CPU ns/packet at {} (whole machine over count-and-drop: other CPUs at this rate + generator CPU from the maximum rates) |", rate(cfg.fixed_rate));
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for v in &r.summary {
        let share = &v.recorded_share_at_max;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} % ({:.1}–{:.1}) | {} | {} |",
            v.receiver,
            rates(&v.max_offered_rate),
            rates(&v.recorded_rate_at_max),
            100.0 * share.median,
            100.0 * share.min,
            100.0 * share.max,
            rates(&v.zero_loss_rate),
            v.cpu_ns_per_packet
                .map_or("unknown".to_string(), |c| format!(
                    "{:.0} ({:.0}–{:.0})",
                    c.median, c.min, c.max
                )),
        );
    }
    for (receiver, why) in &r.skipped {
        let _ = writeln!(s, "| {} | skipped: {why} | | | | |", receiver.name());
    }
    let _ = writeln!(s);
    // Ratios of medians, recorded rate at the generator's maximum.
    let recorded = |name: &str| find(&r.summary, name).map(|v| v.recorded_rate_at_max.median);
    for name in [
        "xsktap -w tmpfs",
        "xsktap -w tmpfs, own placement",
        "xsktap -w tmpfs -j host_lowprec",
        "xsktap -w tmpfs --busy-poll",
    ] {
        let Some(x) = recorded(name) else { continue };
        for (peer, label) in [
            ("dpdk-testpmd af_xdp rxonly", "x dpdk-testpmd's"),
            ("tcpdump -w tmpfs", "x tcpdump's"),
        ] {
            if let Some(p) = recorded(peer).filter(|p| *p > 0.0) {
                let _ = writeln!(s, "{name} recorded rate at max: {:.2} {label}", x / p);
            }
        }
    }
    if let (Some(x), Some(p)) = (
        recorded("xsktap -w tmpfs, own placement"),
        recorded("xsktap -w tmpfs").filter(|p| *p > 0.0),
    ) {
        let _ = writeln!(
            s,
            "xsktap -w tmpfs, own placement, recorded rate at max: {:.2} x pinned to CPU 1's",
            x / p
        );
    }
    let cpu =
        |name: &str| find(&r.summary, name).and_then(|v| v.cpu_ns_per_packet.map(|c| c.median));
    if let (Some(x), Some(t)) = (cpu("xsktap -w tmpfs"), cpu("tcpdump -w tmpfs")) {
        if t > 0.0 {
            let _ = writeln!(
                s,
                "xsktap -w tmpfs CPU per packet: {:.2} x tcpdump's",
                x / t
            );
        }
    }
    let zl = |name: &str| find(&r.summary, name).map(|v| v.zero_loss_rate.median);
    for name in ["xsktap -w tmpfs", "xsktap -w tmpfs --busy-poll"] {
        let Some(x) = zl(name) else { continue };
        for (peer, label) in [
            ("xdp-count-drop", "of the count-and-drop limit"),
            ("dpdk-testpmd af_xdp rxonly", "x dpdk-testpmd's"),
            ("tcpdump -w tmpfs", "x tcpdump's"),
            ("netsniff-ng -o tmpfs", "x netsniff-ng's"),
        ] {
            if let Some(p) = zl(peer).filter(|p| *p > 0.0) {
                let ratio = x / p;
                if peer == "xdp-count-drop" {
                    let _ = writeln!(s, "{name} zero-loss rate: {:.0} % {label}", 100.0 * ratio);
                } else {
                    let _ = writeln!(s, "{name} zero-loss rate: {ratio:.2} {label}");
                }
            }
        }
    }
    let lat = |v: &LatencyNs| {
        let us = |ns: u64| ns as f64 / 1e3;
        format!(
            "p50 {:.1} us, p90 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
            us(v.p50),
            us(v.p90),
            us(v.p99),
            us(v.p99_9),
            us(v.max)
        )
    };
    for name in ["xsktap (no sink)", "xsktap -w tmpfs --busy-poll"] {
        if let Some(v) = find(&r.summary, name).and_then(|v| v.latency_ns.as_ref()) {
            let _ = writeln!(
                s,
                "one-way latency at {}, {name}: {}",
                rate(cfg.fixed_rate),
                lat(v)
            );
        }
    }
    if let Some(v) = r.udp.as_ref().and_then(|t| t.latency.as_ref()) {
        let _ = writeln!(
            s,
            "one-way latency at {}, kernel UDP socket (recvmmsg): {}",
            rate(cfg.fixed_rate),
            lat(v)
        );
    }
    let worst = r
        .trials
        .iter()
        .map(|t| t.unattributed.abs())
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        s,
        "accounting: {} trials; largest unattributed difference {worst} frames",
        r.trials.len()
    );
    s
}

/// The README kept with a run's results.
pub fn readme(cfg: &RunConfig, table: &str) -> String {
    let cmd = std::env::args().collect::<Vec<_>>().join(" ");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "# xsktap-bench run\n\nMachine: {cpus} CPUs ({cpu}), kernel {}, veth in copy mode.\nCommand: `{cmd}`\n\
         Frame size {} bytes; trials of {} s; results in results.json / results.csv, chart in chart.svg.\n\n{table}",
        kernel.trim(),
        cfg.frame_size,
        cfg.trial_secs
    )
}
