//! The dashboard's publisher: once a second, reads the capture's counters
//! (atomics, never a lock a worker waits on) and builds one immutable update:
//! the WebSocket snapshot, the summary as of now and the numbers behind `/metrics`.

use serde_json::{json, Value};
use xsktap::Capture;
use xsktap_core::stats::{QueueSnapshot, Snapshot};

use crate::report::summary_json;

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
        alerting: Option<&crate::alerting::Alerting>,
        export: Option<&crate::exporting::Exporting>,
    ) -> crate::serve::Update {
        let export = export.map(crate::exporting::Exporting::report);
        let alerts = alerting.map(|a| a.watch());
        use std::sync::atomic::Ordering::Relaxed;
        let progress = capture.progress();
        let now = &progress.snapshot;
        let mut summary = summary_json(&progress, &self.iface, &self.output, &self.filter);
        // Each feed's lock is held for the microseconds its counters take to copy.
        summary.feeds = capture
            .feeds()
            .map(|f| xsktap_core::feed::report::summary(f))
            .unwrap_or_default();
        summary.export.clone_from(&export);
        let rates = now.rates_since(&self.last);
        let secs = now.at.duration_since(self.last.at).as_secs_f64();
        let per_sec = |d: u64| if secs > 0.0 { d as f64 / secs } else { 0.0 };
        let queues: Vec<Value> = now
            .queues
            .iter()
            .map(|q| {
                let before = self.last.queues.iter().find(|b| b.queue == q.queue);
                let delta = |f: fn(&QueueSnapshot) -> u64| f(q).saturating_sub(before.map_or(0, f));
                json!({
                    "queue": q.queue,
                    "packets_per_sec": per_sec(delta(|q| q.received)),
                    "bits_per_sec": 8.0 * per_sec(delta(|q| q.received_bytes)),
                    "lost_per_sec": per_sec(delta(|q| q.lost())),
                })
            })
            .collect();
        // `None` (null in JSON) when a queue's counter could not be read.
        let sum =
            |f: fn(&QueueSnapshot) -> Option<u64>| now.queues.iter().map(f).sum::<Option<u64>>();
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
                "rx_dropped": sum(|q| q.socket.map(|s| s.rx_dropped)),
                "rx_ring_full": sum(|q| q.socket.map(|s| s.rx_ring_full)),
                "xdp_redirect_failed": sum(|q| q.bpf.map(|b| b.redirect_failed)),
                "output_closed": sum(|q| Some(q.sink_closed_drops)),
            },
            "alerts": alerting.map(|a| json!({
                "active": a.watch().active().into_iter().map(|(kind, subject)| json!({
                    "kind": kind.as_str(),
                    "subject": subject,
                })).collect::<Vec<_>>(),
                "history": a.history(),
            })),
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
                feeds: summary.feeds.clone(),
                alerts_started: alerts.map_or_else(Vec::new, |w| {
                    w.started()
                        .into_iter()
                        .map(|(k, n)| (k.as_str(), n))
                        .collect()
                }),
                // Unreadable counts are left out, never shown as zeros.
                limited: progress
                    .limited
                    .iter()
                    .flatten()
                    .map(|(key, n)| (key.to_string(), *n))
                    .collect(),
                export,
                alerts_active: alerts.map_or_else(Vec::new, |w| {
                    w.active()
                        .into_iter()
                        .map(|(k, s)| (k.as_str(), s))
                        .collect()
                }),
            },
        };
        self.seq += 1;
        self.last = progress.snapshot;
        update
    }
}
