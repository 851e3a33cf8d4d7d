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

mod auth;
mod conn;
mod metrics;
pub mod publisher;

use auth::guard;
pub use auth::{bind, ServeConfig};
use metrics::metrics;

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
    /// `xsktap feed`: every feed and session.
    pub feeds: Vec<xsktap_core::feed::report::FeedJson>,
    /// native or generic.
    pub xdp_mode: &'static str,
    /// The captured interface.
    pub iface: String,
    /// Alerts started so far by kind; empty with --no-alerts.
    pub alerts_started: Vec<(&'static str, u64)>,
    /// Alerts on now: (kind, subject).
    pub alerts_active: Vec<(&'static str, String)>,
    /// The rate limit's keys that lost the most frames: (key, frames).
    pub limited: Vec<(String, u64)>,
    /// The fleet export, when one runs.
    pub export: Option<xsktap_core::fleet::ExportReport>,
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
    /// Requests refused for a foreign Origin or Host.
    pub forbidden: AtomicU64,
    /// Connections refused over the limits (in all, per peer).
    pub refused_connections: AtomicU64,
    /// Connections closed for sending no request headers in time.
    pub idle_closed: AtomicU64,
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
                    let listener = conn::Limited::new(listener, state.stats.clone());
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

#[cfg(test)]
mod tests {
    use super::auth::{loopback_host, same, same_origin};
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
        let shown = c.url("127.0.0.1:9100".parse().unwrap());
        assert!(
            !shown.contains("0123456789abcdef"),
            "a given token is never printed: {shown}"
        );
        let c = ServeConfig::from_args("0.0.0.0:9100", None).unwrap();
        let t = c.token.clone().unwrap();
        assert!(c
            .url("198.18.0.2:9100".parse().unwrap())
            .ends_with(&format!("?token={t}")));
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
    fn origins() {
        assert!(same_origin("http://127.0.0.1:9100", "127.0.0.1:9100"));
        assert!(same_origin("http://LOCALHOST:8080", "localhost:8080"));
        assert!(!same_origin("http://evil.example", "127.0.0.1:9100"));
        assert!(!same_origin("null", "127.0.0.1:9100"));
        assert!(!same_origin("https://127.0.0.1:9100", "127.0.0.1:9100"));
        assert!(!same_origin("http://127.0.0.1:9101", "127.0.0.1:9100"));
    }

    #[test]
    fn token_comparison() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
