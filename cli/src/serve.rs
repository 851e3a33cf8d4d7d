//! The dashboard server behind `--serve`: one page, a WebSocket pushing a
//! snapshot a second, Prometheus metrics and the summary JSON.
//!
//! It runs on a current-thread tokio runtime on a thread of its own, pinned
//! to the CPUs that run no worker. It never touches the capture: the reporter
//! (the main thread) publishes an [`Update`] once a second through a watch
//! channel, and every request reads the latest one. A slow or stuck browser
//! only ever delays its own connection: it skips to the newest update when it
//! catches up, the updates it missed are counted, and a connection that
//! accepts nothing for [`SEND_TIMEOUT`] is closed.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use xsktap_core::latency::LatencyStats;
use xsktap_core::parse::Proto;
use xsktap_core::stats::{QueueSnapshot, Snapshot, SIZE_LABELS};

/// The page, with its script and styles inline: no external assets.
const PAGE: &str = include_str!("dashboard.html");

/// A client that accepts nothing for this long is disconnected.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Kernel send buffer per connection: what a stuck client can hold back
/// before its updates are skipped (the kernel doubles the value).
const CLIENT_SNDBUF: usize = 16 * 1024;

/// Upper bounds of the packet-size buckets of [`SIZE_LABELS`], for the
/// Prometheus histogram (the last is +Inf).
const SIZE_BOUNDS: [f64; 8] = [63.0, 64.0, 127.0, 255.0, 511.0, 1023.0, 1518.0, f64::MAX];

/// Where to listen and whether a token is required.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The address given to `--serve`.
    pub addr: SocketAddr,
    /// Required on every request when set.
    pub token: Option<String>,
    /// The token was generated (and must be shown to the user).
    pub token_generated: bool,
}

impl ServeConfig {
    /// Reads `--serve` (`PORT`, `:PORT`, `ADDR:PORT` or `[V6]:PORT`) and `--serve-token`.
    /// A non-loopback address always gets a token: the given one or a new one.
    pub fn from_args(serve: &str, token: Option<String>) -> anyhow::Result<ServeConfig> {
        let port_only = serve.strip_prefix(':').unwrap_or(serve);
        let addr = match port_only.parse::<u16>() {
            Ok(port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            Err(_) => serve.parse::<SocketAddr>().map_err(|_| {
                anyhow::anyhow!(
                    "--serve {serve:?} is not PORT or ADDR:PORT; use, for example, --serve 9100 (loopback) or --serve 198.18.0.2:9100"
                )
            })?,
        };
        if let Some(t) = &token {
            let url_safe = t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if t.len() < 16 || !url_safe {
                anyhow::bail!(
                    "--serve-token must be at least 16 characters of A-Z a-z 0-9 - . _ ~; omit it to have one generated"
                );
            }
        }
        let (token, token_generated) = match token {
            Some(t) => (Some(t), false),
            None if addr.ip().is_loopback() => (None, false),
            None => (Some(generate_token()?), true),
        };
        Ok(ServeConfig {
            addr,
            token,
            token_generated,
        })
    }

    /// The URL to open, with the token when one is needed.
    pub fn url(&self, bound: SocketAddr) -> String {
        match &self.token {
            Some(t) => format!("http://{bound}/?token={t}"),
            None => format!("http://{bound}/"),
        }
    }
}

/// 128 random bits as 32 hex digits, from the kernel's generator.
fn generate_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?,
        &mut bytes,
    )
    .context("reading /dev/urandom for a --serve token")?;
    Ok(bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// Opens the listening socket, before the capture starts, so that a busy
/// port fails without anything attached.
pub fn bind(cfg: &ServeConfig) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(cfg.addr).map_err(|e| {
        anyhow::anyhow!(
            "--serve {}: cannot listen there ({e}); choose a free port or an address of this host",
            cfg.addr
        )
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Counter values for `/metrics`, as of one update.
#[derive(Debug, Clone)]
pub struct MetricsData {
    /// Every counter of every queue.
    pub snapshot: Snapshot,
    /// Latency of generator frames, if any arrived.
    pub latency: Option<LatencyStats>,
    /// Distinct flows in the workers' tables.
    pub flows: usize,
    /// Seconds since the capture started.
    pub elapsed_s: f64,
    /// native or generic.
    pub xdp_mode: &'static str,
    /// The captured interface.
    pub iface: String,
}

/// What the reporter publishes once a second.
#[derive(Debug, Clone)]
pub struct Update {
    /// 0, 1, 2, … one per publication.
    pub seq: u64,
    /// The WebSocket message (the documented snapshot schema).
    pub snapshot_json: Utf8Bytes,
    /// The same JSON as `--summary-json`, as of now.
    pub summary_json: String,
    /// The numbers behind `/metrics`.
    pub metrics: MetricsData,
}

/// Counters of the server itself.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// WebSocket clients connected now.
    pub clients: AtomicU64,
    /// Updates a slow client skipped, over all clients.
    pub dropped_updates: AtomicU64,
    /// Clients closed because they accepted nothing for SEND_TIMEOUT.
    pub slow_disconnects: AtomicU64,
    /// Requests refused for a missing or wrong token.
    pub unauthorized: AtomicU64,
}

#[derive(Clone)]
struct AppState {
    updates: watch::Receiver<Arc<Update>>,
    stats: Arc<ServerStats>,
    token: Option<Arc<str>>,
}

/// The running server; dropping it leaves the thread to end with the process.
pub struct Server {
    updates: watch::Sender<Arc<Update>>,
    stats: Arc<ServerStats>,
    /// Whether the server thread could be pinned away from the workers.
    pub pinned: Result<Vec<usize>, String>,
}

impl Server {
    /// Starts serving `listener` on a thread of its own, restricted to `cpus`
    /// (the CPUs no worker runs on; unpinned if empty).
    pub fn start(
        listener: std::net::TcpListener,
        cfg: &ServeConfig,
        cpus: Vec<usize>,
        first: Update,
    ) -> anyhow::Result<Server> {
        let (tx, rx) = watch::channel(Arc::new(first));
        let stats = Arc::new(ServerStats::default());
        let state = AppState {
            updates: rx,
            stats: stats.clone(),
            token: cfg.token.as_deref().map(Arc::from),
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("xsktap-serve".into())
            .spawn(move || {
                let pinned = if cpus.is_empty() {
                    Err("every CPU runs a worker".to_string())
                } else {
                    xsktap::pin_current_thread(&cpus)
                        .map(|()| cpus)
                        .map_err(|e| e.to_string())
                };
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build();
                let runtime = match runtime {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("starting the server runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("--serve listener: {e}")));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(pinned));
                    let listener = listener.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                        let _ = socket2::SockRef::from(&*tcp).set_send_buffer_size(CLIENT_SNDBUF);
                    });
                    // Serves until the process exits; a failed accept is retried by axum.
                    let _ = axum::serve(listener, router(state)).await;
                });
            })
            .context("starting the server thread")?;
        let pinned = ready_rx
            .recv()
            .context("the server thread ended before it started")?
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(Server {
            updates: tx,
            stats,
            pinned,
        })
    }

    /// Makes `update` the one every request and client sees from now on.
    pub fn publish(&self, update: Update) {
        self.updates.send_replace(Arc::new(update));
    }

    /// The server's own counters.
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/ws", get(ws))
        .route("/metrics", get(metrics))
        .route("/api/summary", get(summary))
        .route("/api/snapshot", get(snapshot))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// The token check (`Authorization: Bearer T` or `?token=T`) and, when no
/// token is required, a loopback Host header.
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match &state.token {
        Some(token) => {
            let bearer = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let query = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")));
            let ok = [bearer, query]
                .into_iter()
                .flatten()
                .any(|given| same(given.as_bytes(), token.as_bytes()));
            if !ok {
                state.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    "401: this dashboard needs its token: Authorization: Bearer TOKEN or ?token=TOKEN\n",
                )
                    .into_response();
            }
        }
        None => {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok());
            if let Some(host) = host {
                if !loopback_host(host) {
                    return (
                        StatusCode::FORBIDDEN,
                        "403: Host is not a loopback name; bind a non-loopback address (with a token) to serve other names\n",
                    )
                        .into_response();
                }
            }
        }
    }
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Whether a Host header names this machine's loopback (any port, so that
/// SSH tunnels work): a page of another site that rebinds its own name to
/// 127.0.0.1 still sends that name, and is refused.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
            ),
        ],
        PAGE,
    )
        .into_response()
}

fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn summary(State(state): State<AppState>) -> Response {
    json(state.updates.borrow().summary_json.clone())
}

async fn snapshot(State(state): State<AppState>) -> Response {
    json(state.updates.borrow().snapshot_json.to_string())
}

async fn ws(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| client(socket, state))
}

/// One WebSocket client: the newest update each time it has taken the last.
async fn client(mut socket: WebSocket, state: AppState) {
    let AppState {
        mut updates, stats, ..
    } = state;
    stats.clients.fetch_add(1, Ordering::Relaxed);
    let mut last_seq: Option<u64> = None;
    loop {
        let update = updates.borrow_and_update().clone();
        if let Some(last) = last_seq {
            let skipped = update.seq.saturating_sub(last + 1);
            stats.dropped_updates.fetch_add(skipped, Ordering::Relaxed);
        }
        last_seq = Some(update.seq);
        let message = Message::Text(update.snapshot_json.clone());
        match tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => {
                // Everything published while the send was stuck is lost to this client.
                let newest = updates.borrow().seq;
                stats
                    .dropped_updates
                    .fetch_add(newest.saturating_sub(update.seq), Ordering::Relaxed);
                stats.slow_disconnects.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        tokio::select! {
            changed = updates.changed() => if changed.is_err() { break },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    stats.clients.fetch_sub(1, Ordering::Relaxed);
}

async fn metrics(State(state): State<AppState>) -> Response {
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

/// Reads one counter of a queue; `None` when the kernel's could not be
/// read (the series is then left out: absent, never a false zero).
type QueueValue = fn(&QueueSnapshot) -> Option<u64>;

/// Counters with one series per queue: name (without `_total`), help, value.
const QUEUE_COUNTERS: [(&str, &str, QueueValue); 14] = [
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
            let sum: u64 = t.proto_bytes.iter().sum();
            let buckets: Vec<(f64, u64)> = SIZE_BOUNDS.iter().copied().zip(t.sizes).collect();
            debug_assert_eq!(buckets.len(), SIZE_LABELS.len());
            let mut metric = e.encode_descriptor(
                "xsktap_packet_size_bytes",
                "Frame sizes (RMON buckets).",
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
        family(
            e,
            "xsktap_dashboard_dropped_updates",
            "Updates slow WebSocket clients skipped.",
            &[(vec![], st.dropped_updates.load(Ordering::Relaxed))],
            Counter,
        )?;
        family(
            e,
            "xsktap_dashboard_slow_disconnects",
            "WebSocket clients closed for accepting nothing.",
            &[(vec![], st.slow_disconnects.load(Ordering::Relaxed))],
            Counter,
        )?;
        family(
            e,
            "xsktap_dashboard_unauthorized_requests",
            "Requests refused for a missing or wrong token.",
            &[(vec![], st.unauthorized.load(Ordering::Relaxed))],
            Counter,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_tokens() {
        let c = ServeConfig::from_args("9100", None).unwrap();
        assert_eq!(c.addr, "127.0.0.1:9100".parse().unwrap());
        assert!(c.token.is_none());
        let c = ServeConfig::from_args("[::1]:9100", None).unwrap();
        assert!(c.token.is_none());
        let c = ServeConfig::from_args("0.0.0.0:9100", None).unwrap();
        let t = c.token.clone().unwrap();
        assert!(c.token_generated);
        assert_eq!(t.len(), 32);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(
            ServeConfig::from_args("0.0.0.0:9100", None).unwrap().token,
            Some(t)
        );
        assert!(ServeConfig::from_args("localhost:x", None).is_err());
        assert!(ServeConfig::from_args("9100", Some("short".into())).is_err());
        assert!(ServeConfig::from_args("9100", Some("with space 0123456789".into())).is_err());
        let c = ServeConfig::from_args("9100", Some("0123456789abcdef".into())).unwrap();
        assert_eq!(c.token.as_deref(), Some("0123456789abcdef"));
        assert_eq!(
            c.url("127.0.0.1:9100".parse().unwrap()),
            "http://127.0.0.1:9100/?token=0123456789abcdef"
        );
    }

    #[test]
    fn loopback_hosts() {
        for ok in [
            "127.0.0.1:9100",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:9100",
            "127.1.2.3:1",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:9100",
            "198.18.0.2:9100",
            "localhost.evil.example",
            "[2001:2::1]:1",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn token_comparison() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
