//! What the user sees: the start line, the live line, the top view, the
//! summary at exit and its JSON form.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::time::Duration;

use xsktap::{Capture, Summary};
use xsktap_core::flows::{FlowStats, Top};
use xsktap_core::limit::{LimitKey, RateLimit};
use xsktap_core::parse::Proto;
use xsktap_core::stats::{QueueSnapshot, Rates, Snapshot, TrafficSnapshot, SIZE_LABELS};
use xsktap_core::summary::{
    FileJson, FilesJson, LimitJson, Names, StampingJson, SummaryJson, SummaryParts, TopJson,
    TopSnapshotJson, TrafficJson,
};
use xsktap_core::timestamps::StampSource;

/// Formats a value with a metric prefix, as `1.23 M`.
fn si(value: f64) -> String {
    let (v, prefix) = xsktap_core::stats::metric_prefix(value);
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
                "{}@cpu{} {} {}-stamped",
                q.queue,
                q.core,
                q.bind_mode.map_or("-", |m| m.as_str()),
                q.timestamps.map_or("-", |t| t.as_str())
            )
        })
        .collect();
    let what = if filter.is_empty() {
        "all frames".to_string()
    } else {
        format!("frames matching {filter:?}")
    };
    let stamps = capture.timestamps();
    let per = match stamps.source {
        StampSource::Batch => "per batch, when the worker takes it (-j host_lowprec)",
        _ => "per frame",
    };
    let clock = match &stamps.notes() {
        Some(note) => format!("{} timestamps {per} ({note})", stamps.source),
        None => format!("{} timestamps {per}", stamps.source),
    };
    format!(
        "xsktap: capturing {what} on {iface} ({} XDP, {clock}), queues {}; they bypass the host stack until exit",
        capture.xdp_mode().as_str(),
        queues.join(", ")
    )
}

/// How the frames were stamped, for `--summary-json`.
pub fn stamping_json(stamps: &xsktap::Timestamps) -> StampingJson {
    StampingJson {
        source: stamps.source.to_string(),
        per_frame: stamps.source != StampSource::Batch,
        carried_in: stamps.carry.map(|c| c.as_str().to_string()),
        note: stamps.notes(),
    }
}

/// The once-a-second line on standard error.
pub fn live_line(now: &Snapshot, rates: &Rates) -> String {
    format!(
        "{} pkts  {}pps  {}bit/s  written {}  lost {}{} ({}/s)",
        now.received(),
        si(rates.packets_per_sec),
        si(rates.bits_per_sec),
        now.written(),
        if now.lost_known() { "" } else { "at least " },
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
pub fn top_screen(
    iface: &str,
    now: &Snapshot,
    rates: &Rates,
    top: &Top,
    limit: Option<&LimitJson>,
    tty: bool,
) -> String {
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
    if let Some(l) = limit {
        let _ = writeln!(
            s,
            "rate limit {} pps per {}: {} dropped",
            l.pps, l.by, l.limited
        );
        for k in &l.top {
            let _ = writeln!(s, "  {:<62} {:>10} dropped", k.key, k.dropped);
        }
    }
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

/// One `top --json` snapshot.
pub fn top_json(
    now: &Snapshot,
    rates: &Rates,
    top: &Top,
    limit: Option<LimitJson>,
    elapsed: Duration,
) -> TopSnapshotJson {
    TopSnapshotJson {
        elapsed_s: elapsed.as_secs_f64(),
        packets: now.received(),
        bytes: now.received_bytes(),
        lost: now.lost(),
        lost_known: now.lost_known(),
        packets_per_sec: rates.packets_per_sec,
        bits_per_sec: rates.bits_per_sec,
        lost_per_sec: rates.lost_per_sec,
        traffic: TrafficJson::new(&now.traffic),
        top: TopJson::new(top),
        limit,
    }
}

/// A kernel or XDP program counter summed over queues, or "unknown" when
/// a queue's could not be read.
fn sum_known<T: Copy>(
    queues: &[QueueSnapshot],
    get: impl Fn(&QueueSnapshot) -> Option<T>,
    field: impl Fn(T) -> u64,
) -> String {
    queues
        .iter()
        .map(|q| get(q).map(&field))
        .sum::<Option<u64>>()
        .map_or_else(|| "unknown".to_string(), |n| n.to_string())
}

fn known(v: Option<u64>) -> String {
    v.map_or_else(|| "unknown".to_string(), |n| n.to_string())
}

/// The start line of a rate limit: what it drops, where.
pub fn limit_line(limit: &RateLimit, iface: &str) -> String {
    format!(
        "dropping traffic from {} above {} pps on {iface} ({}; each dropped frame counted)",
        limit.by.plural(),
        limit.pps,
        if limit.all {
            "every frame the interface receives, captured or not"
        } else {
            "only frames xsktap captures; --limit-all for every frame"
        }
    )
}

/// What the rate limit dropped: the total and the keys that lost most.
fn limited_text(limit: &RateLimit, total: u64, top: Option<&[(LimitKey, u64)]>) -> String {
    let mut line = format!(
        "{total} packets dropped by the rate limit (above {} pps per {})",
        limit.pps,
        limit.by.as_str()
    );
    match top {
        None => line.push_str(": the per-key counts could not be read"),
        Some([]) => {}
        Some(top) => {
            let keys: Vec<String> = top.iter().map(|(k, n)| format!("{k} {n}")).collect();
            line.push_str(": ");
            line.push_str(&keys.join(", "));
        }
    }
    line
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
    let lost = if snap.lost_known() {
        snap.lost().to_string()
    } else {
        format!(
            "at least {} (some kernel counters could not be read: {} failed reads)",
            snap.lost(),
            snap.counter_read_errors()
        )
    };
    let qs = &snap.queues;
    let _ = writeln!(
        out,
        "{lost} packets lost (kernel rx_dropped {}, rx_ring_full {}; XDP redirect failures {}; output closed {})",
        sum_known(qs, |q| q.socket, |s| s.rx_dropped),
        sum_known(qs, |q| q.socket, |s| s.rx_ring_full),
        sum_known(qs, |q| q.bpf, |b| b.redirect_failed),
        qs.iter().map(|q| q.sink_closed_drops).sum::<u64>(),
    );
    let filtered: u64 = qs
        .iter()
        .filter_map(|q| q.bpf)
        .map(|b| b.filtered_out)
        .sum();
    if filtered > 0 {
        let _ = writeln!(
            out,
            "{filtered} packets not selected by the filter (left to the host stack)"
        );
    }
    if let Some(limit) = &s.limit {
        let _ = writeln!(
            out,
            "{}",
            limited_text(limit, snap.limited(), s.limited.as_deref())
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
    if let Some(files) = s.writer.as_ref().and_then(|w| w.files.as_ref()) {
        let _ = writeln!(
            out,
            "{} files on disk{}{}:",
            files.files.len(),
            match files.removed_files {
                0 => String::new(),
                n => format!(
                    " ({n} older files deleted, holding {} packets)",
                    files.removed_packets
                ),
            },
            match (files.hooks_run, files.hooked_files) {
                (0, _) => String::new(),
                (n, 0) => format!("; -z ran {n} times, {} failed", files.hooks_failed),
                (n, moved) => format!(
                    "; -z ran {n} times, {} failed, and moved or removed {moved} files holding {} packets",
                    files.hooks_failed, files.hooked_packets
                ),
            }
        );
        // A long capture can leave thousands: the first and last ten.
        let n = files.files.len();
        for (i, f) in files.files.iter().enumerate() {
            if n > 20 && i == 10 {
                let _ = writeln!(out, "  … {} more", n - 20);
            }
            if n <= 20 || i < 10 || i >= n - 10 {
                let _ = writeln!(
                    out,
                    "  {} ({} packets, {} bytes)",
                    f.path.display(),
                    f.packets,
                    f.bytes
                );
            }
        }
    }
    if let Some(n) = s.writer.as_ref().map(|w| w.out_of_order).filter(|&n| n > 0) {
        let _ = writeln!(
            out,
            "{n} records arrived later than --sort-window and were written out of time order"
        );
    }
    let _ = writeln!(out, "XDP program attached in {} mode", s.xdp_mode.as_str());
    for q in &snap.queues {
        let stamps = match (q.timestamps, q.bpf) {
            (Some(StampSource::Hardware), Some(b)) if b.hw_stamp_missing > 0 => format!(
                "hardware-stamped ({} by the host: no stamp from the NIC)",
                b.hw_stamp_missing
            ),
            (Some(t), _) => format!("{t}-stamped"),
            (None, _) => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "  queue {:<3} core {:<3} {:<8} {stamps} received {:<10} written {:<10} rx_dropped {} rx_ring_full {} fill_ring_empty {} invalid {}",
            q.queue,
            q.core,
            q.bind_mode.map_or("-", |m| m.as_str()),
            q.received,
            q.written,
            known(q.socket.map(|s| s.rx_dropped)),
            known(q.socket.map(|s| s.rx_ring_full)),
            known(q.socket.map(|s| s.rx_fill_ring_empty_descs)),
            known(q.socket.map(|s| s.rx_invalid_descs)),
        );
    }
    out
}

/// The summary of a file read back with `-r`.
pub fn replay_text(r: &xsktap::Replay, input: &str, output: &str) -> String {
    let snap = &r.summary.snapshot;
    let q = &snap.queues[0];
    let read = q.bpf.map_or(0, |b| b.seen);
    let mut out = String::new();
    let _ = writeln!(out, "{} packets written to {output}", snap.written());
    let _ = writeln!(
        out,
        "{read} packets read from {input} in {:.3} s, {} selected by the filter ({} bytes){}",
        r.summary.duration.as_secs_f64(),
        q.received,
        q.received_bytes,
        match r.skipped {
            0 => String::new(),
            n => format!("; {n} non-Ethernet packets or unknown blocks skipped"),
        }
    );
    if q.over_count > 0 || q.sink_closed_drops > 0 {
        let _ = writeln!(
            out,
            "{} packets after -c, {} not written (the output failed or closed)",
            q.over_count, q.sink_closed_drops
        );
    }
    let _ = writeln!(out, "protocols: {}", protocol_mix(&snap.traffic));
    out
}

/// The summary as `--summary-json` and `/api/summary` carry it.
pub fn summary_json(s: &Summary, iface: &str, output: &str, filter: &str) -> SummaryJson {
    let mut json = SummaryJson::new(
        SummaryParts {
            snapshot: &s.snapshot,
            top: &s.top,
            latency: s.latency.as_ref(),
            duration: s.duration,
            xdp_mode: s.xdp_mode,
            count_reached: s.count_reached,
        },
        Names {
            iface,
            output,
            filter,
        },
    );
    json.out_of_order = s.writer.as_ref().map_or(0, |w| w.out_of_order);
    json.limit = s
        .limit
        .as_ref()
        .map(|l| LimitJson::new(l, s.snapshot.limited(), s.limited.as_deref()));
    json.files = s
        .writer
        .as_ref()
        .and_then(|w| w.files.as_ref())
        .map(|f| FilesJson {
            files: f
                .files
                .iter()
                .map(|f| FileJson {
                    path: f.path.display().to_string(),
                    packets: f.packets,
                    bytes: f.bytes,
                })
                .collect(),
            removed_files: f.removed_files,
            removed_packets: f.removed_packets,
            hooks_run: f.hooks_run,
            hooks_failed: f.hooks_failed,
            hooked_files: f.hooked_files,
            hooked_packets: f.hooked_packets,
        });
    json
}

/// Prints the feeds' queued events on standard output, one line each.
/// With an export, each event also goes to its `events` table.
pub fn print_feed_events(
    feeds: &xsktap_core::feed::Feeds,
    json: bool,
    export: Option<&crate::exporting::Exporting>,
) -> io::Result<()> {
    use xsktap_core::feed::report::{event_json, event_text};
    let events = feeds.take_events();
    if events.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for (i, event) in events {
        let spec = &feeds.specs()[i];
        let ab = spec.lines.len() == 2;
        let as_json = (json || export.is_some()).then(|| event_json(&spec.name, ab, &event));
        if let (Some(e), Some(line)) = (export, &as_json) {
            e.feed_event(&spec.name, line);
        }
        text.push_str(&match as_json.filter(|_| json) {
            Some(line) => line,
            None => event_text(&spec.name, ab, &event),
        });
        text.push('\n');
    }
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// The feeds' part of the summary.
pub fn feeds_text(feeds: &[xsktap_core::feed::report::FeedJson]) -> String {
    let mut out = String::new();
    for f in feeds {
        let range = match f.last_seq {
            Some(last) => format!("{} to {last}", f.first_seq),
            None => "none".to_string(),
        };
        let _ = writeln!(
            out,
            "feed {} session {}: {} messages ({range}), {} gaps, {} missing, {} recovered, {} duplicates, {} heartbeats, {} malformed{}",
            f.feed,
            if f.session.is_empty() { "-" } else { &f.session },
            f.messages,
            f.gaps,
            f.missing,
            f.recovered,
            f.duplicates,
            f.heartbeats,
            f.malformed,
            if f.end_of_session { ", ended" } else { "" }
        );
        if let Some(x) = &f.exchange_to_tap {
            let _ = writeln!(
                out,
                "  exchange to tap (ITCH stamps) p50 {} ns p99 {} ns max {} ns over {} messages; {} stamped after they arrived",
                x.p50_ns, x.p99_ns, x.max_ns, x.count, f.exchange_to_tap_negative
            );
        }
        if f.released_out_of_sequence > 0 {
            let _ = writeln!(
                out,
                "  {} messages went to consumers out of sequence: more than 65536 (or 16 MiB) waited behind a hole",
                f.released_out_of_sequence
            );
        }
        if f.events_dropped > 0 {
            let _ = writeln!(
                out,
                "  {} events were not shown: more than 4096 waited at once",
                f.events_dropped
            );
        }
        let r = &f.receive_to_decode;
        let b = &f.bursts;
        let fast = format!("{}pps {}bit/s", si(b.max_pps_100us), si(b.max_bps_100us));
        let slow = format!("{}pps {}bit/s", si(b.max_pps_1ms), si(b.max_bps_1ms));
        let _ = writeln!(
            out,
            "  receive to decode p50 {} ns p99 {} ns max {} ns; busiest 100 us {fast} ({} windows over 10x the mean), 1 ms {slow} ({})",
            r.p50_ns, r.p99_ns, r.max_ns, b.flagged_100us, b.flagged_1ms
        );
        for l in &f.lines {
            let _ = writeln!(
                out,
                "  line {}: {} messages, won {}, {} gaps of its own ({} missing), {} duplicates, lead p50 {} ns p99 {} ns max {} ns",
                l.line, l.messages, l.won, l.gaps, l.missing, l.duplicates, l.lead_p50_ns, l.lead_p99_ns, l.lead_max_ns
            );
        }
        for c in &f.consumers {
            let failed: u64 = c.failed.values().sum();
            let latency = c.receive_to_delivery.as_ref().map_or(String::new(), |r| {
                format!(
                    "; receive to publish p50 {} ns p99 {} ns max {} ns",
                    r.p50_ns, r.p99_ns, r.max_ns
                )
            });
            let _ = writeln!(
                out,
                "  published to {}: {} samples, {failed} not published{latency}",
                c.name, c.delivered
            );
        }
    }
    out
}

/// The start line of an export: what goes where.
pub fn export_line(
    cfg: &xsktap_core::CaptureConfig,
    clickhouse: Option<&str>,
    ipfix: Option<&str>,
) -> String {
    let timeouts = cfg
        .flow_export
        .as_ref()
        .map(|e| (e.timeouts.active.as_secs(), e.timeouts.idle.as_secs()))
        .unwrap_or_default();
    let mut to = Vec::new();
    if let Some(url) = clickhouse {
        to.push(format!(
            "flows, statistics each second and events to ClickHouse at {url}"
        ));
    }
    if let Some(addr) = ipfix {
        to.push(format!("flows as IPFIX to {addr}"));
    }
    format!(
        "exporting {} (flow records every {} s while active, after {} s idle, and at the end)",
        to.join(", and "),
        timeouts.0,
        timeouts.1
    )
}

/// The stderr line of an alert starting or ending:
/// `xsktap: alert scan src 198.18.0.9: more than 100 destination ports within 10 s`.
pub fn alert_line(e: &xsktap_core::alerts::Event) -> String {
    let state = if e.start { "" } else { " ended" };
    format!(
        "xsktap: alert {} {}{state}: {}",
        e.kind, e.subject, e.detail
    )
}

/// An alert as a JSON event (`top --json`): `{"event":"alert",...}`.
pub fn alert_json(e: &xsktap_core::alerts::Event, wall_ns: u64) -> serde_json::Value {
    serde_json::json!({
        "event": "alert",
        "kind": e.kind.as_str(),
        "subject": e.subject,
        "state": if e.start { "start" } else { "end" },
        "detail": e.detail,
        "time_ns": wall_ns,
    })
}
