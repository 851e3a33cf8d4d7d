//! What the user sees: the start line, the live line, the top view, the
//! summary at exit and its JSON form.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};
use xsktap::flows::{FlowStats, Top};
use xsktap::parse::Proto;
use xsktap::stats::{Rates, Snapshot, TrafficSnapshot, SIZE_LABELS};
use xsktap::{Capture, Summary};

/// Formats a value with a metric prefix, as `1.23 M`.
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

/// Says what is being captured, and that it bypasses the host stack.
pub fn start_line(capture: &Capture, iface: &str, filter: &str) -> String {
    let snap = capture.snapshot();
    let queues: Vec<String> = snap
        .queues
        .iter()
        .map(|q| {
            format!(
                "{}@cpu{} {}",
                q.queue,
                q.core,
                q.bind_mode.map_or("-", |m| m.as_str())
            )
        })
        .collect();
    let what = if filter.is_empty() {
        "all frames".to_string()
    } else {
        format!("frames matching {filter:?}")
    };
    format!(
        "xsktap: capturing {what} on {iface} ({} XDP), queues {}; they bypass the host stack until exit",
        capture.xdp_mode().as_str(),
        queues.join(", ")
    )
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

fn protocol_mix(t: &TrafficSnapshot) -> String {
    let total: u64 = t.proto_packets.iter().sum();
    let mut out = String::new();
    for p in Proto::ALL {
        let n = t.packets(p);
        if n > 0 {
            let _ = write!(
                out,
                "{} {} ({:.1}%, {}B)  ",
                p.as_str(),
                n,
                100.0 * n as f64 / total.max(1) as f64,
                si(t.bytes(p) as f64)
            );
        }
    }
    if out.is_empty() {
        out.push_str("none");
    }
    out.trim_end().to_string()
}

fn flow_line(f: &FlowStats) -> String {
    let proto = match f.key.proto {
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        1 => "icmp".to_string(),
        58 => "icmp6".to_string(),
        n => format!("proto {n}"),
    };
    let ports = f.key.sport != 0 || f.key.dport != 0;
    if ports {
        format!(
            "{proto} {}.{} > {}.{}",
            f.key.src, f.key.sport, f.key.dst, f.key.dport
        )
    } else {
        format!("{proto} {} > {}", f.key.src, f.key.dst)
    }
}

/// The refreshing `top` screen.
pub fn top_screen(iface: &str, now: &Snapshot, rates: &Rates, top: &Top, tty: bool) -> String {
    let mut s = String::new();
    if tty {
        s.push_str("\x1b[H\x1b[2J");
    }
    let _ = writeln!(
        s,
        "xsktap top: {iface}   {}pps  {}bit/s  lost {}/s   total {} pkts, {}B, lost {}",
        si(rates.packets_per_sec),
        si(rates.bits_per_sec),
        si(rates.lost_per_sec).trim_end(),
        now.received(),
        si(now.received_bytes() as f64),
        now.lost()
    );
    let _ = writeln!(s, "protocols: {}", protocol_mix(&now.traffic));
    let sizes: Vec<String> = SIZE_LABELS
        .iter()
        .zip(now.traffic.sizes)
        .filter(|(_, n)| *n > 0)
        .map(|(l, n)| format!("{l}: {n}"))
        .collect();
    let _ = writeln!(s, "sizes: {}", sizes.join("  "));
    let _ = writeln!(
        s,
        "\n{:<42} {:>12} {:>12} {:>10}",
        "top talkers", "up", "down", "packets"
    );
    for t in &top.talkers {
        let _ = writeln!(
            s,
            "{:<42} {:>11}B {:>11}B {:>10}",
            t.addr.to_string(),
            si(t.up_bytes as f64),
            si(t.down_bytes as f64),
            t.packets
        );
    }
    for (title, flows) in [
        ("top flows by bytes", &top.flows_by_bytes),
        ("top flows by packets", &top.flows_by_packets),
    ] {
        let _ = writeln!(s, "\n{title:<64} {:>12} {:>10}", "bytes", "packets");
        for f in flows {
            let _ = writeln!(
                s,
                "{:<64} {:>11}B {:>10}",
                flow_line(f),
                si(f.bytes as f64),
                f.packets
            );
        }
    }
    if !tty {
        s.push('\n');
    }
    s
}

fn protocols_json(t: &TrafficSnapshot) -> Value {
    let mut m = serde_json::Map::new();
    for p in Proto::ALL {
        m.insert(
            p.as_str().into(),
            json!({"packets": t.packets(p), "bytes": t.bytes(p)}),
        );
    }
    Value::Object(m)
}

fn traffic_json(t: &TrafficSnapshot) -> Value {
    let sizes: serde_json::Map<String, Value> = SIZE_LABELS
        .iter()
        .zip(t.sizes)
        .map(|(l, n)| (l.to_string(), json!(n)))
        .collect();
    json!({
        "protocols": protocols_json(t),
        "malformed": t.packets(Proto::Malformed),
        "vlans": t.vlans.iter().map(|(id, p, b)| json!({"vlan": id, "packets": p, "bytes": b})).collect::<Vec<_>>(),
        "sizes": sizes,
    })
}

fn flow_json(f: &FlowStats) -> Value {
    json!({
        "src": f.key.src.to_string(),
        "dst": f.key.dst.to_string(),
        "sport": f.key.sport,
        "dport": f.key.dport,
        "proto": f.key.proto,
        "packets": f.packets,
        "bytes": f.bytes,
    })
}

fn top_value(top: &Top) -> Value {
    json!({
        "flows": top.flows,
        "flows_by_bytes": top.flows_by_bytes.iter().map(flow_json).collect::<Vec<_>>(),
        "flows_by_packets": top.flows_by_packets.iter().map(flow_json).collect::<Vec<_>>(),
        "talkers": top.talkers.iter().map(|t| json!({
            "addr": t.addr.to_string(),
            "up_bytes": t.up_bytes,
            "down_bytes": t.down_bytes,
            "packets": t.packets,
        })).collect::<Vec<_>>(),
    })
}

/// One `top --json` snapshot.
pub fn top_json(now: &Snapshot, rates: &Rates, top: &Top, elapsed: Duration) -> Value {
    let mut v = traffic_json(&now.traffic);
    let obj = v.as_object_mut().expect("an object");
    obj.insert("elapsed_s".into(), json!(elapsed.as_secs_f64()));
    obj.insert("packets".into(), json!(now.received()));
    obj.insert("bytes".into(), json!(now.received_bytes()));
    obj.insert("lost".into(), json!(now.lost()));
    obj.insert("packets_per_sec".into(), json!(rates.packets_per_sec));
    obj.insert("bits_per_sec".into(), json!(rates.bits_per_sec));
    obj.insert("lost_per_sec".into(), json!(rates.lost_per_sec));
    obj.insert("top".into(), top_value(top));
    v
}

/// The summary printed on standard error at exit.
pub fn summary_text(s: &Summary, iface: &str, output: &str) -> String {
    let snap = &s.snapshot;
    let secs = s.duration.as_secs_f64();
    let mut out = String::new();
    let _ = writeln!(out, "{} packets written to {output}", snap.written());
    let _ = writeln!(
        out,
        "{} packets received on {iface} in {secs:.3} s ({} bytes, {}pps avg)",
        snap.received(),
        snap.received_bytes(),
        si(if secs > 0.0 {
            snap.received() as f64 / secs
        } else {
            0.0
        }),
    );
    let _ = writeln!(
        out,
        "{} packets lost (kernel rx_dropped {}, rx_ring_full {}; XDP redirect failures {}; output closed {})",
        snap.lost(),
        snap.queues.iter().map(|q| q.socket.rx_dropped).sum::<u64>(),
        snap.queues.iter().map(|q| q.socket.rx_ring_full).sum::<u64>(),
        snap.queues.iter().map(|q| q.bpf.redirect_failed).sum::<u64>(),
        snap.queues.iter().map(|q| q.sink_closed_drops).sum::<u64>(),
    );
    let filtered: u64 = snap.queues.iter().map(|q| q.bpf.filtered_out).sum();
    if filtered > 0 {
        let _ = writeln!(
            out,
            "{filtered} packets not selected by the filter (left to the host stack)"
        );
    }
    let _ = writeln!(out, "protocols: {}", protocol_mix(&snap.traffic));
    if let Some(l) = &s.latency {
        let us = |q: f64| l.quantile_ns(q) as f64 / 1000.0;
        let _ = writeln!(
            out,
            "generator frames: {} (missing {}, duplicates {}, reordered {}); one-way latency p50 {:.1} us, p90 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
            l.stamped,
            l.missing,
            l.duplicates,
            l.reordered,
            us(0.5),
            us(0.9),
            us(0.99),
            us(0.999),
            l.histogram.max() as f64 / 1000.0
        );
    }
    let _ = writeln!(out, "XDP program attached in {} mode", s.xdp_mode.as_str());
    for q in &snap.queues {
        let _ = writeln!(
            out,
            "  queue {:<3} core {:<3} {:<8} received {:<10} written {:<10} rx_dropped {} rx_ring_full {} fill_ring_empty {} invalid {}",
            q.queue,
            q.core,
            q.bind_mode.map_or("-", |m| m.as_str()),
            q.received,
            q.written,
            q.socket.rx_dropped,
            q.socket.rx_ring_full,
            q.socket.rx_fill_ring_empty_descs,
            q.socket.rx_invalid_descs,
        );
    }
    out
}

/// Latency percentiles (ns) and sequence counters.
pub fn latency_json(l: &xsktap::latency::LatencyStats) -> Value {
    json!({
        "stamped": l.stamped,
        "missing": l.missing,
        "duplicates": l.duplicates,
        "reordered": l.reordered,
        "min_ns": l.histogram.min(),
        "p50_ns": l.quantile_ns(0.5),
        "p90_ns": l.quantile_ns(0.9),
        "p99_ns": l.quantile_ns(0.99),
        "p99_9_ns": l.quantile_ns(0.999),
        "max_ns": l.histogram.max(),
        "mean_ns": l.histogram.mean(),
    })
}

/// The summary as JSON (`--summary-json`).
pub fn summary_json(s: &Summary, iface: &str, output: &str, filter: &str) -> Value {
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
                "xdp_filtered_out": q.bpf.filtered_out,
                "over_count": q.over_count,
                "output_closed_drops": q.sink_closed_drops,
                "flow_evictions": q.flow_evictions,
            })
        })
        .collect();
    let mut v = traffic_json(&snap.traffic);
    let obj = v.as_object_mut().expect("an object");
    for (k, val) in [
        ("interface", json!(iface)),
        ("output", json!(output)),
        ("filter", json!(filter)),
        ("packets", json!(snap.written())),
        ("bytes", json!(snap.written_bytes())),
        ("received", json!(snap.received())),
        ("received_bytes", json!(snap.received_bytes())),
        ("lost", json!(snap.lost())),
        ("duration_s", json!(s.duration.as_secs_f64())),
        ("xdp_mode", json!(s.xdp_mode.as_str())),
        ("count_reached", json!(s.count_reached)),
        ("top", top_value(&s.top)),
        (
            "latency",
            s.latency.as_ref().map_or(Value::Null, latency_json),
        ),
        ("queues", Value::Array(queues)),
    ] {
        obj.insert(k.into(), val);
    }
    v
}

/// Version of the WebSocket snapshot schema (README, "Dashboard").
pub const SNAPSHOT_VERSION: u32 = 1;

/// Builds the dashboard's once-a-second update: the snapshot message, the
/// summary as of now and the numbers behind `/metrics`.
pub struct Publisher {
    seq: u64,
    last: Snapshot,
    iface: String,
    output: String,
    filter: String,
}

impl Publisher {
    pub fn new(capture: &Capture, iface: &str, output: &str, filter: &str) -> Publisher {
        Publisher {
            seq: 0,
            last: capture.snapshot(),
            iface: iface.to_string(),
            output: output.to_string(),
            filter: filter.to_string(),
        }
    }

    pub fn update(
        &mut self,
        capture: &Capture,
        server: Option<&crate::serve::ServerStats>,
    ) -> crate::serve::Update {
        use std::sync::atomic::Ordering::Relaxed;
        let progress = capture.progress();
        let now = &progress.snapshot;
        let summary = summary_json(&progress, &self.iface, &self.output, &self.filter);
        let rates = now.rates_since(&self.last);
        let secs = now.at.duration_since(self.last.at).as_secs_f64();
        let per_sec = |d: u64| if secs > 0.0 { d as f64 / secs } else { 0.0 };
        let queues: Vec<Value> = now
            .queues
            .iter()
            .map(|q| {
                let before = self.last.queues.iter().find(|b| b.queue == q.queue);
                let delta = |f: fn(&xsktap::stats::QueueSnapshot) -> u64| {
                    f(q).saturating_sub(before.map_or(0, f))
                };
                json!({
                    "queue": q.queue,
                    "packets_per_sec": per_sec(delta(|q| q.received)),
                    "bits_per_sec": 8.0 * per_sec(delta(|q| q.received_bytes)),
                    "lost_per_sec": per_sec(delta(|q| q.lost())),
                })
            })
            .collect();
        let sum =
            |f: fn(&xsktap::stats::QueueSnapshot) -> u64| now.queues.iter().map(f).sum::<u64>();
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let snapshot = json!({
            "version": SNAPSHOT_VERSION,
            "seq": self.seq,
            "time_unix_ms": since_epoch.as_millis() as u64,
            "interval_s": secs,
            "rates": {
                "packets_per_sec": rates.packets_per_sec,
                "bits_per_sec": rates.bits_per_sec,
                "lost_per_sec": rates.lost_per_sec,
                "queues": queues,
            },
            "drops": {
                "rx_dropped": sum(|q| q.socket.rx_dropped),
                "rx_ring_full": sum(|q| q.socket.rx_ring_full),
                "xdp_redirect_failed": sum(|q| q.bpf.redirect_failed),
                "output_closed": sum(|q| q.sink_closed_drops),
            },
            "server": {
                "clients": server.map_or(0, |s| s.clients.load(Relaxed)),
                "dropped_updates": server.map_or(0, |s| s.dropped_updates.load(Relaxed)),
            },
            "summary": summary,
        });
        let update = crate::serve::Update {
            seq: self.seq,
            snapshot_json: snapshot.to_string().into(),
            summary_json: serde_json::to_string_pretty(&summary).expect("JSON values serialise"),
            metrics: crate::serve::MetricsData {
                snapshot: now.clone(),
                latency: progress.latency.clone(),
                flows: progress.top.flows,
                elapsed_s: progress.duration.as_secs_f64(),
                xdp_mode: progress.xdp_mode.as_str(),
                iface: self.iface.clone(),
            },
        };
        self.seq += 1;
        self.last = progress.snapshot;
        update
    }
}
