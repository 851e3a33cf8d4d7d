//! `/metrics`: the Prometheus/OpenMetrics exposition, encoded at scrape
//! time from the latest update.

use super::*;

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let update = state.updates.borrow().clone();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Metrics {
        update,
        stats: state.stats.clone(),
    }));
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Encodes one update's counters at scrape time.
#[derive(Debug)]
struct Metrics {
    update: Arc<Update>,
    stats: Arc<ServerStats>,
}

type Labels = Vec<(&'static str, String)>;

/// One metric family: name (without `_total`), help, type and its series.
fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, u64)],
    kind: MetricType,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in series {
        let encoder = metric.encode_family(labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(*value).encode(encoder)?,
            _ => ConstGauge::new(*value as i64).encode(encoder)?,
        }
    }
    Ok(())
}

/// The fleet export's families (`--export-clickhouse`, `--export-ipfix`).
fn export_families(
    e: &mut DescriptorEncoder,
    x: &xsktap_core::fleet::ExportReport,
) -> Result<(), std::fmt::Error> {
    let tables: Vec<(Labels, u64)> = xsktap_core::fleet::Table::ALL
        .map(|t| t.name())
        .into_iter()
        .zip(x.rows_sent)
        .map(|(t, n)| (vec![("table", t.to_string())], n))
        .collect();
    family(
        e,
        "xsktap_export_rows",
        "Rows ClickHouse took, by table.",
        &tables,
        MetricType::Counter,
    )?;
    let one = |v: u64| vec![(Vec::new(), v)];
    for (name, help, value, kind) in [
        (
            "xsktap_export_flow_packets",
            "Packets in the flow rows ClickHouse took.",
            x.flow_packets_sent,
            MetricType::Counter,
        ),
        (
            "xsktap_export_dropped_rows",
            "Rows dropped: the spool full, or flow records the exporter's queue had no room for.",
            x.dropped_rows,
            MetricType::Counter,
        ),
        (
            "xsktap_export_dropped_flow_packets",
            "Packets in the dropped flow rows.",
            x.dropped_flow_packets,
            MetricType::Counter,
        ),
        (
            "xsktap_export_retries",
            "Inserts that failed and were tried again.",
            x.retries,
            MetricType::Counter,
        ),
        (
            "xsktap_export_spooled_rows",
            "Rows waiting for ClickHouse.",
            x.spooled_rows,
            MetricType::Gauge,
        ),
        (
            "xsktap_export_spooled_bytes",
            "Bytes waiting for ClickHouse.",
            x.spooled_bytes,
            MetricType::Gauge,
        ),
        (
            "xsktap_export_connected",
            "1 while the last insert or check reached ClickHouse.",
            u64::from(x.connected),
            MetricType::Gauge,
        ),
        (
            "xsktap_export_ipfix_records",
            "Flow records sent as IPFIX.",
            x.ipfix_records,
            MetricType::Counter,
        ),
    ] {
        family(e, name, help, &one(value), kind)?;
    }
    Ok(())
}

/// Reads one counter of a queue; `None` when the kernel's could not be
/// read (the series is then left out: absent, never a false zero).
type QueueValue = fn(&QueueSnapshot) -> Option<u64>;

/// Counters with one series per queue: name (without `_total`), help, value.
const QUEUE_COUNTERS: [(&str, &str, QueueValue); 16] = [
    ("xsktap_packets", "Frames taken from the RX ring.", |q| {
        Some(q.received)
    }),
    (
        "xsktap_bytes",
        "Bytes of the frames taken from the RX ring.",
        |q| Some(q.received_bytes),
    ),
    (
        "xsktap_written_packets",
        "Frames handed to the output.",
        |q| Some(q.written),
    ),
    ("xsktap_written_bytes", "Bytes handed to the output.", |q| {
        Some(q.written_bytes)
    }),
    ("xsktap_lost_packets", "Frames lost, all causes.", |q| {
        q.lost_known().then(|| q.lost())
    }),
    (
        "xsktap_output_failed_packets",
        "Frames whose write failed (disk full, I/O error): part of the output_closed cause.",
        |q| Some(q.output_failed),
    ),
    (
        "xsktap_fill_ring_empty",
        "Times the kernel found the fill ring empty (XDP_STATISTICS).",
        |q| q.socket.map(|s| s.rx_fill_ring_empty_descs),
    ),
    (
        "xsktap_xdp_seen_packets",
        "Frames the XDP program saw.",
        |q| q.bpf.map(|b| b.seen),
    ),
    (
        "xsktap_filtered_packets",
        "Frames the filter left to the host stack.",
        |q| q.bpf.map(|b| b.filtered_out),
    ),
    (
        "xsktap_limited_packets",
        "Frames the rate limit (--limit-pps) dropped in the XDP program.",
        |q| q.bpf.map(|b| b.limited),
    ),
    (
        "xsktap_flow_evictions",
        "Flows evicted from a full flow table.",
        |q| Some(q.flow_evictions),
    ),
    (
        "xsktap_worker_empty_polls",
        "Times a worker found its RX ring empty.",
        |q| Some(q.empty_polls),
    ),
    (
        "xsktap_worker_naps",
        "Coalescing naps a worker took instead of waiting in poll(2).",
        |q| Some(q.naps),
    ),
    (
        "xsktap_worker_waits",
        "Waits of a worker in poll(2).",
        |q| Some(q.waits),
    ),
    (
        "xsktap_worker_kicks",
        "Wake-ups of the kernel for the fill ring (need_wakeup).",
        |q| Some(q.kicks),
    ),
    (
        "xsktap_counter_read_errors",
        "Failed reads of the kernel's or the XDP program's counters.",
        |q| Some(q.counter_read_errors),
    ),
];

/// `xsktap feed`'s families: per feed and session (and line, for A/B).
fn feed_families(
    e: &mut DescriptorEncoder,
    feeds: &[xsktap_core::feed::report::FeedJson],
) -> Result<(), std::fmt::Error> {
    use MetricType::{Counter, Gauge};
    let of = |f: fn(&xsktap_core::feed::report::FeedJson) -> u64| -> Vec<(Labels, u64)> {
        feeds
            .iter()
            .map(|j| {
                let labels = vec![("feed", j.feed.clone()), ("session", j.session.clone())];
                (labels, f(j))
            })
            .collect()
    };
    let mut messages = Vec::new();
    for j in feeds {
        let labels = |line: &str| {
            vec![
                ("feed", j.feed.clone()),
                ("session", j.session.clone()),
                ("line", line.to_string()),
            ]
        };
        if j.lines.is_empty() {
            messages.push((labels("line"), j.messages));
        } else {
            messages.push((labels("merged"), j.messages));
            for l in &j.lines {
                messages.push((labels(&l.line), l.messages));
            }
        }
    }
    family(
        e,
        "xsktap_feed_messages",
        "Feed messages, each once (line: A, B, merged, or line for a single-line feed).",
        &messages,
        Counter,
    )?;
    family(
        e,
        "xsktap_feed_gaps",
        "Gaps declared in a feed (for A/B: messages no line brought in time).",
        &of(|j| j.gaps),
        Counter,
    )?;
    family(
        e,
        "xsktap_feed_missing_messages",
        "Feed messages missing now.",
        &of(|j| j.missing),
        Gauge,
    )?;
    family(
        e,
        "xsktap_feed_recovered",
        "Missing feed messages that arrived later.",
        &of(|j| j.recovered),
        Counter,
    )?;
    family(
        e,
        "xsktap_feed_duplicates",
        "Copies of feed messages already taken.",
        &of(|j| j.duplicates),
        Counter,
    )?;
    let quantiles: Vec<(Labels, u64)> = feeds
        .iter()
        .flat_map(|j| quantile_series(j, &j.receive_to_decode))
        .collect();
    family(
        e,
        "xsktap_feed_receive_to_decode_ns",
        "Receive stamp to decoding per feed packet, by quantile (ns).",
        &quantiles,
        Gauge,
    )?;
    let exchange: Vec<(Labels, u64)> = feeds
        .iter()
        .filter_map(|j| Some(quantile_series(j, j.exchange_to_tap.as_ref()?)))
        .flatten()
        .collect();
    if !exchange.is_empty() {
        family(
            e,
            "xsktap_feed_exchange_to_tap_ns",
            "Receive time minus the ITCH message's own timestamp, by quantile (ns).",
            &exchange,
            Gauge,
        )?;
    }
    // --publish: what went to iceoryx2 (every session; the first consumer
    // is the publisher when there is one).
    let published: Vec<&xsktap_core::feed::report::FeedJson> =
        feeds.iter().filter(|j| !j.consumers.is_empty()).collect();
    if !published.is_empty() {
        let series =
            |f: fn(&xsktap_core::feed::report::ConsumerJson) -> u64| -> Vec<(Labels, u64)> {
                published
                    .iter()
                    .map(|j| {
                        let c = &j.consumers[0];
                        let labels = vec![
                            ("feed", j.feed.clone()),
                            ("session", j.session.clone()),
                            ("service", c.name.clone()),
                        ];
                        (labels, f(c))
                    })
                    .collect()
            };
        family(
            e,
            "xsktap_feed_published_samples",
            "Samples (runs of messages, notices) published over iceoryx2 (every session).",
            &series(|c| c.delivered),
            Counter,
        )?;
        family(
            e,
            "xsktap_feed_publish_failed_samples",
            "Samples that could not be published: every subscriber counts them missed.",
            &series(|c| c.failed.values().sum()),
            Counter,
        )?;
        let latency: Vec<(Labels, u64)> = published
            .iter()
            .filter_map(|j| {
                Some(quantile_series(
                    j,
                    j.consumers[0].receive_to_delivery.as_ref()?,
                ))
            })
            .flatten()
            .collect();
        family(
            e,
            "xsktap_feed_receive_to_publish_ns",
            "Receive stamp to iceoryx2 publish per message, by quantile (ns).",
            &latency,
            Gauge,
        )?;
    }
    family(
        e,
        "xsktap_feed_malformed_packets",
        "Feed packets refused as malformed (every session).",
        &of(|j| j.malformed),
        Counter,
    )
}

/// A feed's latency quantiles as series labelled feed, session, quantile.
fn quantile_series(
    j: &xsktap_core::feed::report::FeedJson,
    q: &xsktap_core::feed::report::LatencyQuantiles,
) -> Vec<(Labels, u64)> {
    [
        ("0.5", q.p50_ns),
        ("0.99", q.p99_ns),
        ("0.999", q.p99_9_ns),
        ("1", q.max_ns),
    ]
    .into_iter()
    .map(|(quantile, v)| {
        let labels = vec![
            ("feed", j.feed.clone()),
            ("session", j.session.clone()),
            ("quantile", quantile.to_string()),
        ];
        (labels, v)
    })
    .collect()
}

fn per_queue(s: &Snapshot, f: QueueValue) -> Vec<(Labels, u64)> {
    s.queues
        .iter()
        .filter_map(|q| Some((vec![("queue", q.queue.to_string())], f(q)?)))
        .collect()
}

impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use MetricType::{Counter, Gauge};
        let m = &self.update.metrics;
        let s = &m.snapshot;
        let e = &mut encoder;
        for (name, help, value) in QUEUE_COUNTERS {
            family(e, name, help, &per_queue(s, value), Counter)?;
        }
        let causes: Vec<(Labels, u64)> = s
            .queues
            .iter()
            .flat_map(|q| {
                [
                    ("rx_dropped", q.socket.map(|s| s.rx_dropped)),
                    ("rx_ring_full", q.socket.map(|s| s.rx_ring_full)),
                    ("xdp_redirect_failed", q.bpf.map(|b| b.redirect_failed)),
                    ("output_closed", Some(q.sink_closed_drops)),
                ]
                .into_iter()
                .filter_map(|(cause, n)| {
                    let labels = vec![("queue", q.queue.to_string()), ("cause", cause.to_string())];
                    Some((labels, n?))
                })
            })
            .collect();
        family(
            e,
            "xsktap_dropped_packets",
            "Frames lost, by cause.",
            &causes,
            Counter,
        )?;
        let info: Vec<(Labels, u64)> = s
            .queues
            .iter()
            .map(|q| {
                let labels = vec![
                    ("interface", m.iface.clone()),
                    ("queue", q.queue.to_string()),
                    ("core", q.core.to_string()),
                    ("xdp_mode", m.xdp_mode.to_string()),
                    (
                        "bind_mode",
                        q.bind_mode.map_or("-", |b| b.as_str()).to_string(),
                    ),
                ];
                (labels, 1)
            })
            .collect();
        feed_families(e, &m.feeds)?;
        let started: Vec<(Labels, u64)> = m
            .alerts_started
            .iter()
            .map(|(kind, n)| (vec![("kind", kind.to_string())], *n))
            .collect();
        family(
            e,
            "xsktap_alerts",
            "Anomaly alerts started, by kind.",
            &started,
            Counter,
        )?;
        let active: Vec<(Labels, u64)> = m
            .alerts_active
            .iter()
            .map(|(kind, subject)| {
                (
                    vec![("kind", kind.to_string()), ("subject", subject.clone())],
                    1,
                )
            })
            .collect();
        let limited: Vec<(Labels, u64)> = m
            .limited
            .iter()
            .map(|(key, n)| (vec![("key", key.clone())], *n))
            .collect();
        family(
            e,
            "xsktap_limited_key_packets",
            "Frames the rate limit dropped, for the keys that lost the most (counted since the key entered the XDP program's map).",
            &limited,
            Counter,
        )?;
        if let Some(x) = &m.export {
            export_families(e, x)?;
        }
        family(
            e,
            "xsktap_alert_active",
            "1 for each alert on now (kind, subject).",
            &active,
            Gauge,
        )?;
        family(
            e,
            "xsktap_queue_info",
            "One per captured queue: its CPU and modes.",
            &info,
            Gauge,
        )?;
        let t = &s.traffic;
        let protos = |bytes: bool| -> Vec<(Labels, u64)> {
            Proto::ALL
                .iter()
                .map(|p| {
                    let v = if bytes { t.bytes(*p) } else { t.packets(*p) };
                    (vec![("protocol", p.as_str().to_string())], v)
                })
                .collect()
        };
        family(
            e,
            "xsktap_protocol_packets",
            "Frames by protocol.",
            &protos(false),
            Counter,
        )?;
        family(
            e,
            "xsktap_protocol_bytes",
            "Bytes by protocol.",
            &protos(true),
            Counter,
        )?;
        {
            let count: u64 = t.proto_packets.iter().sum();
            // On the buckets' scale: octets on the wire, FCS included.
            let sum: u64 =
                t.proto_bytes.iter().sum::<u64>() + count * u64::from(xsktap_core::stats::FCS_LEN);
            let buckets: Vec<(f64, u64)> = SIZE_BOUNDS.iter().copied().zip(t.sizes).collect();
            debug_assert_eq!(buckets.len(), SIZE_LABELS.len());
            let mut metric = e.encode_descriptor(
                "xsktap_packet_size_bytes",
                "Frame sizes on the wire, FCS included (RMON buckets: a 60-byte frame is 64).",
                None,
                MetricType::Histogram,
            )?;
            metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                sum as f64, count, &buckets, None,
            )?;
        }
        family(
            e,
            "xsktap_flows",
            "Distinct flows in the flow tables.",
            &[(vec![], m.flows as u64)],
            Gauge,
        )?;
        let mut up = e.encode_descriptor(
            "xsktap_capture_duration_seconds",
            "Seconds since the capture started.",
            None,
            Gauge,
        )?;
        ConstGauge::new(m.elapsed_s).encode(up.encode_family(&Labels::new())?)?;
        if let Some(l) = &m.latency {
            let mut metric = e.encode_descriptor(
                "xsktap_latency_seconds",
                "One-way latency of generator frames, by quantile.",
                None,
                Gauge,
            )?;
            for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
                let labels: Labels = vec![("quantile", q.to_string())];
                let v = if q == 1.0 {
                    l.histogram.max()
                } else {
                    l.quantile_ns(q)
                };
                ConstGauge::new(v as f64 / 1e9).encode(metric.encode_family(&labels)?)?;
            }
            for (name, help, v) in [
                (
                    "xsktap_generator_packets",
                    "Stamped generator frames seen.",
                    l.stamped,
                ),
                (
                    "xsktap_generator_missing_packets",
                    "Generator sequence numbers never seen.",
                    l.missing,
                ),
                (
                    "xsktap_generator_duplicate_packets",
                    "Generator frames seen twice.",
                    l.duplicates,
                ),
                (
                    "xsktap_generator_reordered_packets",
                    "Generator frames seen out of order.",
                    l.reordered,
                ),
            ] {
                family(e, name, help, &[(vec![], v)], Counter)?;
            }
        }
        let st = &self.stats;
        family(
            e,
            "xsktap_dashboard_clients",
            "WebSocket clients connected.",
            &[(vec![], st.clients.load(Ordering::Relaxed))],
            Gauge,
        )?;
        for (name, help, counter) in [
            (
                "xsktap_dashboard_dropped_updates",
                "Updates slow WebSocket clients skipped.",
                &st.dropped_updates,
            ),
            (
                "xsktap_dashboard_slow_disconnects",
                "WebSocket clients closed for accepting nothing.",
                &st.slow_disconnects,
            ),
            (
                "xsktap_dashboard_unauthorized_requests",
                "Requests refused for a missing or wrong token.",
                &st.unauthorized,
            ),
            (
                "xsktap_dashboard_forbidden_requests",
                "Requests refused for a foreign Origin or Host.",
                &st.forbidden,
            ),
            (
                "xsktap_dashboard_refused_connections",
                "Connections refused over the connection limits (in all, per peer).",
                &st.refused_connections,
            ),
            (
                "xsktap_dashboard_idle_closed_connections",
                "Connections closed for sending no request headers in time.",
                &st.idle_closed,
            ),
        ] {
            let value = counter.load(Ordering::Relaxed);
            family(e, name, help, &[(vec![], value)], Counter)?;
        }
        Ok(())
    }
}
