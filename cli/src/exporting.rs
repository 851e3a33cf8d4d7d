//! The capture's side of the fleet export: a `stats` row per queue each
//! second (the last one up to the summary, so the rows sum to it), events
//! (start, alerts, feed events, stop), the feeds' latency buckets every
//! [`LATENCY_EVERY`] and at the end, and the closing report.

use std::io::Write as _;
use std::time::{Duration, Instant};

use xsktap::export::Exporter;
use xsktap::{Capture, Summary};
use xsktap_core::feed::report::FeedJson;
use xsktap_core::feed::tap::Feeds;
use xsktap_core::fleet::{stats_rows, EventRow, ExportReport, LatencyMarks};
use xsktap_core::stats::QueueSnapshot;

/// How long the end of a capture waits for ClickHouse to take what is left.
pub const FINISH_WAIT: Duration = Duration::from_secs(15);

/// How often the feeds' latency histograms are exported (what came in the
/// interval, one row per bucket).
pub const LATENCY_EVERY: Duration = Duration::from_secs(10);

/// A running export and what its statistics and latency rows have covered
/// so far.
pub struct Exporting {
    exporter: Exporter,
    exported: Vec<QueueSnapshot>,
    next: Instant,
    latency: LatencyMarks,
    next_latency: Instant,
}

fn now_ms() -> u64 {
    super::wall_ns() / 1_000_000
}

impl Exporting {
    /// Starts exporting for a capture of `queues` of `iface` (or a file
    /// read back): the `start` event names them.
    pub fn new(exporter: Exporter, queues: &[u32], iface: &str, filter: &str) -> Exporting {
        let json = serde_json::json!({
            "event": "start",
            "interface": iface,
            "queues": queues,
            "filter": filter,
            "version": env!("CARGO_PKG_VERSION"),
            "time_ns": super::wall_ns(),
        });
        exporter.event(EventRow {
            time_ms: now_ms(),
            kind: "start".into(),
            subject: iface.into(),
            state: String::new(),
            json: json.to_string(),
        });
        Exporting {
            exporter,
            exported: Vec::new(),
            next: Instant::now() + Duration::from_secs(1),
            latency: LatencyMarks::default(),
            next_latency: Instant::now() + LATENCY_EVERY,
        }
    }

    /// Once a second: the `stats` rows of the second gone by; every
    /// [`LATENCY_EVERY`], the feeds' latency buckets.
    pub fn tick(&mut self, capture: &Capture) {
        if Instant::now() < self.next {
            return;
        }
        self.next += Duration::from_secs(1);
        let now = capture.snapshot().queues;
        self.exporter
            .stats(now_ms(), stats_rows(&self.exported, &now));
        self.exported = now;
        if let Some(feeds) = capture.feeds() {
            if Instant::now() >= self.next_latency {
                self.next_latency += LATENCY_EVERY;
                self.latency_rows(feeds);
            }
        }
    }

    fn latency_rows(&mut self, feeds: &Feeds) {
        let mut rows = Vec::new();
        self.latency.rows(feeds, now_ms(), &mut rows);
        self.exporter.latency(rows);
    }

    /// An alert starting or ending, with its JSON line.
    pub fn alert(&self, e: &xsktap_core::alerts::Event, json: &str) {
        self.exporter.event(EventRow {
            time_ms: now_ms(),
            kind: e.kind.as_str().into(),
            subject: e.subject.clone(),
            state: if e.start { "start" } else { "end" }.into(),
            json: json.into(),
        });
    }

    /// A feed event (gap, recovery, session start or end…) as printed in JSON.
    pub fn feed_event(&self, feed: &str, json: &str) {
        let kind = serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|v| v.get("event").and_then(|k| k.as_str().map(str::to_string)))
            .unwrap_or_else(|| "feed".into());
        self.exporter.event(EventRow {
            time_ms: now_ms(),
            kind,
            subject: feed.into(),
            state: String::new(),
            json: json.into(),
        });
    }

    /// Where the export stands (for /metrics).
    pub fn report(&self) -> ExportReport {
        self.exporter.report()
    }

    /// After the capture stopped: the last `stats` rows (up to the
    /// summary's counts), the last latency buckets of the feeds (`live`),
    /// a `feed` event per feed and session (its counts and latency
    /// quantiles, flat), the `stop` event, and the export's end.
    pub fn finish(
        mut self,
        summary: &Summary,
        iface: &str,
        live: Option<&Feeds>,
        feeds: &[FeedJson],
    ) -> ExportReport {
        let last = &summary.snapshot.queues;
        self.exporter
            .stats(now_ms(), stats_rows(&self.exported, last));
        if let Some(live) = live {
            self.latency_rows(live);
        }
        for f in feeds {
            let x = f.exchange_to_tap.as_ref();
            let json = serde_json::json!({
                "event": "feed",
                "feed": f.feed,
                "session": f.session,
                "messages": f.messages,
                "gaps": f.gaps,
                "missing": f.missing,
                "recovered": f.recovered,
                "duplicates": f.duplicates,
                "receive_to_decode_count": f.receive_to_decode.count,
                "receive_to_decode_p50_ns": f.receive_to_decode.p50_ns,
                "receive_to_decode_p99_ns": f.receive_to_decode.p99_ns,
                "exchange_to_tap_count": x.map_or(0, |x| x.count),
                "exchange_to_tap_p50_ns": x.map(|x| x.p50_ns),
                "exchange_to_tap_p99_ns": x.map(|x| x.p99_ns),
                "exchange_to_tap_max_ns": x.map(|x| x.max_ns),
            });
            self.exporter.event(EventRow {
                time_ms: now_ms(),
                kind: "feed".into(),
                subject: f.feed.clone(),
                state: String::new(),
                json: json.to_string(),
            });
        }
        let json = serde_json::json!({
            "event": "stop",
            "interface": iface,
            "packets": summary.snapshot.written(),
            "bytes": summary.snapshot.written_bytes(),
            "received": summary.snapshot.received(),
            "lost": summary.snapshot.lost(),
            "time_ns": super::wall_ns(),
        });
        self.exporter.event(EventRow {
            time_ms: now_ms(),
            kind: "stop".into(),
            subject: iface.into(),
            state: String::new(),
            json: json.to_string(),
        });
        let now = self.exporter.report();
        if !now.connected || now.spooled_rows > 0 {
            let _ = writeln!(
                std::io::stderr(),
                "xsktap: waiting up to {} s for ClickHouse to take the last rows ({} waiting{})",
                FINISH_WAIT.as_secs(),
                now.spooled_rows,
                now.last_error
                    .as_deref()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            );
        }
        self.exporter.finish(FINISH_WAIT)
    }
}

/// The summary's export line(s).
pub fn report_text(r: &ExportReport, clickhouse: Option<&str>, ipfix: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(url) = clickhouse {
        let [flows, stats, events, latency] = r.rows_sent;
        // Only feeds have latency rows.
        let latency = match latency {
            0 => String::new(),
            n => format!(", {n} latency rows"),
        };
        out += &format!(
            "export to ClickHouse at {url}: {flows} flow rows ({} packets), {stats} stats rows, {events} events{latency} in {} inserts",
            r.flow_packets_sent, r.batches_sent
        );
        if r.retries > 0 {
            out += &format!(
                "; {} failed attempts retried ({} batches found already there)",
                r.retries, r.already_there
            );
        }
        out += "\n";
        if let Some(dir) = &r.left_in {
            out += &format!(
                "export: ClickHouse did not take {} rows ({} bytes) in time: they wait in {dir} for the next run with --export-spool {dir}\n",
                r.spooled_rows, r.spooled_bytes
            );
        }
    }
    if let Some(addr) = ipfix {
        out += &format!(
            "export IPFIX to {addr}: {} flow records in {} messages{}\n",
            r.ipfix_records,
            r.ipfix_messages,
            if r.ipfix_errors > 0 {
                format!(", {} sends failed", r.ipfix_errors)
            } else {
                String::new()
            }
        );
    }
    if r.dropped_rows > 0 || r.control_dropped > 0 {
        out += &format!(
            "export: {} rows dropped ({} packets of flows) and {} statistics/events the queue had no room for{}\n",
            r.dropped_rows,
            r.dropped_flow_packets,
            r.control_dropped,
            r.last_error
                .as_deref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default()
        );
    }
    out
}
