//! What the user sees: the live line, the summary at exit and its JSON form.

use serde_json::{json, Value};
use xsktap::stats::{Rates, Snapshot};
use xsktap::Summary;

/// Formats a rate with a metric prefix, as `1.23 M`.
fn si(value: f64) -> String {
    let (v, prefix) = if value >= 1e9 {
        (value / 1e9, "G")
    } else if value >= 1e6 {
        (value / 1e6, "M")
    } else if value >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    format!("{v:.2} {prefix}")
}

/// The once-a-second line on standard error.
pub fn live_line(now: &Snapshot, rates: &Rates) -> String {
    format!(
        "{} pkts  {}pps  {}bit/s  written {}  lost {} ({}/s)",
        now.received(),
        si(rates.packets_per_sec),
        si(rates.bits_per_sec),
        now.written(),
        now.lost(),
        si(rates.lost_per_sec).trim_end(),
    )
}

/// The summary printed on standard error at exit.
pub fn summary_text(s: &Summary, iface: &str, output: &str) -> String {
    let snap = &s.snapshot;
    let secs = s.duration.as_secs_f64();
    let mut out = String::new();
    out.push_str(&format!(
        "{} packets written to {output}\n{} packets received on {iface} in {secs:.3} s ({} bytes, {}pps avg)\n",
        snap.written(),
        snap.received(),
        snap.received_bytes(),
        si(if secs > 0.0 { snap.received() as f64 / secs } else { 0.0 }),
    ));
    out.push_str(&format!(
        "{} packets lost (kernel rx_dropped {}, rx_ring_full {}; XDP redirect failures {}; output closed {})\n",
        snap.lost(),
        snap.queues.iter().map(|q| q.socket.rx_dropped).sum::<u64>(),
        snap.queues.iter().map(|q| q.socket.rx_ring_full).sum::<u64>(),
        snap.queues.iter().map(|q| q.bpf.redirect_failed).sum::<u64>(),
        snap.queues.iter().map(|q| q.sink_closed_drops).sum::<u64>(),
    ));
    out.push_str(&format!(
        "XDP program attached in {} mode\n",
        s.xdp_mode.as_str()
    ));
    for q in &snap.queues {
        out.push_str(&format!(
            "  queue {:<3} core {:<3} {:<8} received {:<10} written {:<10} rx_dropped {} rx_ring_full {} fill_ring_empty {} invalid {}\n",
            q.queue,
            q.core,
            q.bind_mode.map_or("-", |m| m.as_str()),
            q.received,
            q.written,
            q.socket.rx_dropped,
            q.socket.rx_ring_full,
            q.socket.rx_fill_ring_empty_descs,
            q.socket.rx_invalid_descs,
        ));
    }
    out
}

/// The summary as JSON (`--summary-json`).
pub fn summary_json(s: &Summary, iface: &str, output: &str) -> Value {
    let snap = &s.snapshot;
    let queues: Vec<Value> = snap
        .queues
        .iter()
        .map(|q| {
            json!({
                "queue": q.queue,
                "core": q.core,
                "bind_mode": q.bind_mode.map(|m| m.as_str()),
                "packets": q.written,
                "bytes": q.written_bytes,
                "received": q.received,
                "received_bytes": q.received_bytes,
                "rx_dropped": q.socket.rx_dropped,
                "rx_ring_full": q.socket.rx_ring_full,
                "rx_fill_ring_empty_descs": q.socket.rx_fill_ring_empty_descs,
                "rx_invalid_descs": q.socket.rx_invalid_descs,
                "xdp_seen": q.bpf.seen,
                "xdp_redirected": q.bpf.redirected,
                "xdp_passed": q.bpf.passed,
                "xdp_redirect_failed": q.bpf.redirect_failed,
                "over_count": q.over_count,
                "output_closed_drops": q.sink_closed_drops,
            })
        })
        .collect();
    json!({
        "interface": iface,
        "output": output,
        "packets": snap.written(),
        "bytes": snap.written_bytes(),
        "received": snap.received(),
        "received_bytes": snap.received_bytes(),
        "lost": snap.lost(),
        "duration_s": s.duration.as_secs_f64(),
        "xdp_mode": s.xdp_mode.as_str(),
        "count_reached": s.count_reached,
        "queues": queues,
    })
}
