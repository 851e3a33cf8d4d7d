//! Fleet export (issue 16): flow records, per-queue statistics and events to
//! ClickHouse, and flow records as IPFIX over UDP.
//!
//! ```text
//!  workers ──FlowOut (bounded, never waits)──┐
//!  reporter ──stats, events (bounded)────────┤
//!                                            ▼
//!                     xsktap-export: encodes rows (core::fleet), seals a batch
//!                     per table a second ──▶ IPFIX datagrams (UDP)
//!                                            │
//!                                            ▼
//!                     the spool: batches in order, bounded by size; in memory,
//!                     or on disk (--export-spool DIR) once the server lags
//!                                            │
//!                                            ▼
//!                     xsktap-export-send: one INSERT … FORMAT RowBinary per batch
//!                     (the clickhouse crate, HTTP, lz4); on failure, waits and
//!                     retries the same bytes, after asking whether they landed
//! ```
//!
//! Neither thread ever holds up a worker: a worker hands its records to a
//! bounded queue and counts them as dropped when it is full. A batch leaves
//! the spool only once ClickHouse acknowledged it or, after a failed attempt
//! whose answer was lost, once a query shows its rows (`batch` column) are
//! there: across an outage rows are neither lost nor duplicated. What the
//! spool cannot hold is dropped and counted ([`ExportReport`]).

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use xsktap_core::fleet::{
    self, ClickHouseUrl, EventRow, ExportReport, LatencyRow, Origin, QueueDelta, Table,
};
use xsktap_core::flows::{ExportTimeouts, FlowBatch, FlowExport, FlowOut};
use xsktap_core::ipfix;

use crate::{Error, Result};

/// Batches of flow records the workers may have waiting for the exporter.
const FLOW_QUEUE: usize = 1024;
/// Statistics and events waiting for the exporter.
const CONTROL_QUEUE: usize = 4096;
/// A batch is sealed at least this often.
const SEAL_EVERY: Duration = Duration::from_secs(1);
/// … or once it holds this many rows (ClickHouse inserts a block of up to
/// `max_insert_block_size`, 1,048,576 rows, atomically: a batch lands whole).
const SEAL_ROWS: u64 = 500_000;
/// Batches held in memory before they go to the spool directory.
const MEMORY_HELD: u64 = 64 << 20;
/// Waits between attempts while ClickHouse does not answer.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// IPFIX templates are sent again this often (RFC 7011 section 8.4, UDP).
const TEMPLATE_REFRESH: Duration = Duration::from_secs(30);
/// The spool's default bound.
pub const DEFAULT_SPOOL_BYTES: u64 = 1 << 30;

/// What `--export-*` asked for.
#[derive(Clone)]
pub struct ExportConfig {
    /// `--export-clickhouse URL`.
    pub clickhouse: Option<ClickHouseUrl>,
    /// The password, from [`fleet::PASSWORD_ENV`].
    pub password: Option<String>,
    /// `--export-ipfix HOST:PORT`.
    pub ipfix: Option<SocketAddr>,
    /// Host and interface every row names.
    pub origin: Origin,
    /// `--export-create`: create the database and tables if missing.
    pub create: bool,
    /// `--export-spool DIR`: where batches wait while ClickHouse lags.
    pub spool_dir: Option<PathBuf>,
    /// `--export-spool-size`: the spool's bound in bytes.
    pub spool_bytes: u64,
    /// `--export-optional`: capture even when ClickHouse cannot be reached.
    pub optional: bool,
    /// Active and idle timeouts of flow records.
    pub timeouts: ExportTimeouts,
}

impl std::fmt::Debug for ExportConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("ExportConfig")
            .field("clickhouse", &self.clickhouse)
            .field("password", &self.password.as_ref().map(|_| "(set)"))
            .field("ipfix", &self.ipfix)
            .field("origin", &self.origin)
            .field("create", &self.create)
            .field("spool_dir", &self.spool_dir)
            .field("spool_bytes", &self.spool_bytes)
            .field("optional", &self.optional)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// The host's name (`/proc/sys/kernel/hostname`), `localhost` if unreadable.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Counters of the export, shared by its threads and read at any time.
#[derive(Debug, Default)]
struct Progress {
    rows_sent: [AtomicU64; 4],
    batches_sent: AtomicU64,
    bytes_sent: AtomicU64,
    flow_records: AtomicU64,
    flow_packets: AtomicU64,
    flow_packets_sent: AtomicU64,
    dropped_rows: AtomicU64,
    dropped_flow_packets: AtomicU64,
    control_dropped: AtomicU64,
    retries: AtomicU64,
    already_there: AtomicU64,
    connected: AtomicBool,
    last_error: Mutex<Option<String>>,
    ipfix_messages: AtomicU64,
    ipfix_records: AtomicU64,
    ipfix_errors: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// A sealed batch of one table's rows, on its way to ClickHouse.
#[derive(Debug)]
struct Batch {
    id: u64,
    table: Table,
    rows: u64,
    flow_packets: u64,
    bytes: u64,
    body: Held,
    /// An attempt failed without a clear answer: ask before sending again.
    tried: bool,
}

#[derive(Debug)]
enum Held {
    Memory(Arc<Vec<u8>>),
    File(PathBuf),
}

#[derive(Debug, Default)]
struct SpoolState {
    queue: VecDeque<Batch>,
    bytes: u64,
    memory: u64,
    rows: u64,
    /// No more batches will come.
    closed: bool,
    /// The sender is failing: new batches go to disk (with a directory).
    lagging: bool,
    /// Rows and flow packets of batches whose file could not be read back.
    unreadable: (u64, u64),
}

/// Batches in order, bounded by size, in memory or in a directory.
#[derive(Debug)]
struct Spool {
    state: Mutex<SpoolState>,
    ready: Condvar,
    dir: Option<PathBuf>,
    max_bytes: u64,
}

fn file_name(id: u64, table: Table) -> String {
    format!("{id:016x}-{}.rowbinary", table.name())
}

/// `(id, table)` of a spool file's name.
fn parse_file_name(name: &str) -> Option<(u64, Table)> {
    let stem = name.strip_suffix(".rowbinary")?;
    let (id, table) = stem.split_once('-')?;
    let table = Table::ALL.into_iter().find(|t| t.name() == table)?;
    Some((u64::from_str_radix(id, 16).ok()?, table))
}

impl Spool {
    /// A spool bounded by `max_bytes`, holding first what `dir` kept from
    /// earlier runs (in their order).
    fn open(dir: Option<PathBuf>, max_bytes: u64) -> Result<Spool> {
        let mut state = SpoolState::default();
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::Config(format!(
                    "--export-spool {}: {e}; give a directory xsktap can write",
                    dir.display()
                ))
            })?;
            let mut found: Vec<(u64, Table, PathBuf, u64)> = std::fs::read_dir(dir)
                .map_err(|e| Error::Config(format!("--export-spool {}: {e}", dir.display())))?
                .flatten()
                .filter_map(|entry| {
                    let name = entry.file_name();
                    let (id, table) = parse_file_name(name.to_str()?)?;
                    let len = entry.metadata().ok()?.len();
                    Some((id, table, entry.path(), len))
                })
                .collect();
            found.sort_by_key(|f| f.0);
            for (id, table, path, len) in found {
                state.bytes += len;
                state.queue.push_back(Batch {
                    id,
                    table,
                    rows: 0,
                    flow_packets: 0,
                    bytes: len,
                    body: Held::File(path),
                    // Perhaps sent just before that run ended: ask first.
                    tried: true,
                });
            }
        }
        Ok(Spool {
            state: Mutex::new(state),
            ready: Condvar::new(),
            dir,
            max_bytes,
        })
    }

    /// Queues `body`; `false` when the spool has no room (nothing queued).
    fn push(&self, id: u64, table: Table, rows: u64, flow_packets: u64, body: Vec<u8>) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        let len = body.len() as u64;
        if s.bytes + len > self.max_bytes {
            return false;
        }
        let to_disk = s.lagging || s.memory + len > MEMORY_HELD;
        let body = match (&self.dir, to_disk) {
            (Some(dir), true) => {
                let path = dir.join(file_name(id, table));
                if write_whole(&path, &body).is_err() {
                    return false;
                }
                Held::File(path)
            }
            _ => {
                s.memory += len;
                Held::Memory(Arc::new(body))
            }
        };
        s.bytes += len;
        s.rows += rows;
        s.queue.push_back(Batch {
            id,
            table,
            rows,
            flow_packets,
            bytes: len,
            body,
            tried: false,
        });
        self.ready.notify_all();
        true
    }

    /// The oldest batch (its id, table and bytes), waiting up to `wait`.
    fn front(&self, wait: Duration) -> Option<(u64, Table, bool, Arc<Vec<u8>>)> {
        let mut s = self.state.lock().ok()?;
        if s.queue.is_empty() && !s.closed {
            s = self.ready.wait_timeout(s, wait).ok()?.0;
        }
        loop {
            let b = s.queue.front()?;
            let body = match &b.body {
                Held::Memory(body) => Some(body.clone()),
                Held::File(path) => std::fs::read(path).ok().map(Arc::new),
            };
            if let Some(body) = body {
                return Some((b.id, b.table, b.tried, body));
            }
            // A spool file gone or unreadable (removed by hand, a bad
            // disk): its rows are lost, and counted.
            let b = s.queue.pop_front()?;
            s.bytes -= b.bytes;
            s.rows -= b.rows;
            s.unreadable.0 += b.rows;
            s.unreadable.1 += b.flow_packets;
        }
    }

    /// Rows and flow packets of spool files that could not be read back.
    fn unreadable(&self) -> (u64, u64) {
        self.state.lock().map(|s| s.unreadable).unwrap_or_default()
    }

    /// Removes the oldest batch (it reached ClickHouse).
    fn pop(&self) -> Option<Batch> {
        let mut s = self.state.lock().ok()?;
        let b = s.queue.pop_front()?;
        s.bytes -= b.bytes;
        s.rows -= b.rows;
        match &b.body {
            Held::Memory(_) => s.memory -= b.bytes,
            Held::File(path) => {
                let _ = std::fs::remove_file(path);
            }
        }
        self.ready.notify_all();
        Some(b)
    }

    /// Marks the oldest batch as tried (ask before sending it again) and
    /// the sender as failing.
    fn failed(&self) {
        if let Ok(mut s) = self.state.lock() {
            if let Some(b) = s.queue.front_mut() {
                b.tried = true;
            }
            s.lagging = true;
        }
    }

    fn recovered(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.lagging = false;
        }
    }

    fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.closed = true;
        }
        self.ready.notify_all();
    }

    fn finished(&self) -> bool {
        self.state
            .lock()
            .map(|s| s.closed && s.queue.is_empty())
            .unwrap_or(true)
    }

    fn waiting(&self) -> (u64, u64) {
        self.state
            .lock()
            .map(|s| (s.rows, s.bytes))
            .unwrap_or_default()
    }

    /// At the end, with batches unsent: writes those held in memory to the
    /// directory for the next run, or drops them. Returns the rows and flow
    /// packets dropped, and the directory if batches were left in it.
    fn leave(&self) -> (u64, u64, Option<PathBuf>) {
        let Ok(mut s) = self.state.lock() else {
            return (0, 0, None);
        };
        let (mut rows, mut packets) = (0, 0);
        let mut left = false;
        let queue = std::mem::take(&mut s.queue);
        for b in queue {
            match (&b.body, &self.dir) {
                (Held::File(_), _) => left = true,
                (Held::Memory(body), Some(dir)) => {
                    if write_whole(&dir.join(file_name(b.id, b.table)), body).is_ok() {
                        left = true;
                    } else {
                        rows += b.rows;
                        packets += b.flow_packets;
                    }
                }
                (Held::Memory(_), None) => {
                    rows += b.rows;
                    packets += b.flow_packets;
                }
            }
        }
        (rows, packets, left.then(|| self.dir.clone()).flatten())
    }
}

/// Writes `body` to `path` whole, or not at all (a temporary name renamed).
fn write_whole(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, path)
}

enum Control {
    Stats(u64, Vec<QueueDelta>),
    Event(EventRow),
    Latency(Vec<LatencyRow>),
    Finish,
}

/// The ClickHouse side: a client and where the tables are.
#[derive(Clone)]
struct Target {
    client: clickhouse::Client,
    database: Option<String>,
}

impl Target {
    fn new(url: &ClickHouseUrl, password: Option<&str>) -> Target {
        let mut client = clickhouse::Client::default()
            .with_url(&url.endpoint)
            // ClickHouse 18.16 (Debian 12) has no RowBinaryWithNamesAndTypes,
            // which the crate's schema validation needs.
            .with_validation(false);
        // No default database on the connection: the tables are named with
        // theirs, so that the first check works before --export-create made it.
        if let Some(user) = &url.user {
            client = client.with_user(user);
        }
        if let Some(p) = password {
            client = client.with_password(p);
        }
        Target {
            client,
            database: url.database.clone(),
        }
    }

    async fn insert(&self, table: Table, body: &[u8]) -> std::result::Result<(), String> {
        let sql = format!(
            "INSERT INTO {} FORMAT RowBinary",
            table.qualified(self.database.as_deref())
        );
        let mut insert = self
            .client
            .insert_formatted_with(sql)
            .with_timeouts(Some(Duration::from_secs(10)), Some(Duration::from_secs(30)));
        insert
            .send(bytes::Bytes::copy_from_slice(body))
            .await
            .map_err(one_line)?;
        insert.end().await.map_err(one_line)
    }

    /// Rows of batch `id` in `table` from `origin`.
    async fn rows_of(
        &self,
        table: Table,
        origin: &Origin,
        id: u64,
    ) -> std::result::Result<u64, String> {
        let sql = format!(
            "SELECT count() FROM {} WHERE host = ? AND interface = ? AND batch = ?",
            table.qualified(self.database.as_deref())
        );
        self.client
            .query(&sql)
            .bind(origin.host.as_str())
            .bind(origin.interface.as_str())
            .bind(id)
            .fetch_one::<u64>()
            .await
            .map_err(one_line)
    }

    /// Reaches the server and makes sure the tables are there (creating
    /// them when asked).
    async fn prepare(&self, create: bool) -> std::result::Result<(), String> {
        self.client
            .query("SELECT 1")
            .fetch_one::<u8>()
            .await
            .map_err(one_line)?;
        if create {
            if let Some(db) = &self.database {
                self.client
                    .query(&format!("CREATE DATABASE IF NOT EXISTS `{db}`"))
                    .execute()
                    .await
                    .map_err(one_line)?;
            }
            for t in Table::ALL {
                self.client
                    .query(&t.ddl(self.database.as_deref()))
                    .execute()
                    .await
                    .map_err(one_line)?;
            }
            return Ok(());
        }
        for t in Table::ALL {
            let exists = self
                .client
                .query(&format!(
                    "EXISTS TABLE {}",
                    t.qualified(self.database.as_deref())
                ))
                .fetch_one::<u8>()
                .await
                .map_err(one_line)?;
            if exists == 0 {
                return Err(format!(
                    "table {} does not exist: add --export-create, or create it with the DDL in the README",
                    t.qualified(self.database.as_deref())
                ));
            }
        }
        Ok(())
    }
}

/// An error of the clickhouse crate on one line, without the server's stack.
fn one_line(e: clickhouse::error::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    // The server's message ends with its version and stack trace: keep the reason.
    let cut = first
        .find(", e.what()")
        .or_else(|| first.find(" (version"))
        .unwrap_or(first.len());
    let reason = first[..cut].trim();
    // "bad response: Code: 81, e.displayText() = DB::Exception: Database x doesn't exist"
    match (
        reason.split_once("DB::Exception: "),
        reason.split_once("Code: "),
    ) {
        (Some((_, message)), Some((_, code))) => {
            let code: String = code.chars().take_while(char::is_ascii_digit).collect();
            format!("{message} (ClickHouse error {code})")
        }
        _ => reason.to_string(),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("xsktap-export-io")
        .build()
}

/// An export set up and checked, not yet running: its flow queue goes into
/// the capture's configuration, then [`Prepared::start`] starts its threads
/// (after the capture, on the housekeeping CPUs).
pub struct Prepared {
    cfg: ExportConfig,
    target: Option<Target>,
    ipfix: Option<Ipfix>,
    /// The server answered and the tables are there (else the sender
    /// checks again before its first insert).
    ready: bool,
    flow_out: FlowOut,
    flows: Receiver<FlowBatch>,
    spool: Arc<Spool>,
    progress: Arc<Progress>,
    warning: Option<String>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").finish_non_exhaustive()
    }
}

impl Prepared {
    /// Checks the export's targets: reaches ClickHouse, creates or finds its
    /// tables, opens the spool and the IPFIX socket (before anything is
    /// attached: a failure leaves the machine as it was).
    ///
    /// # Errors
    /// [`Error::Config`] in one line naming the problem and the fix, unless
    /// `optional` is set for a ClickHouse that cannot be reached or refuses
    /// (then [`Prepared::warning`] says so and the rows wait in the spool).
    pub fn check(cfg: ExportConfig) -> Result<Prepared> {
        let progress = Arc::new(Progress::default());
        let spool = Arc::new(Spool::open(cfg.spool_dir.clone(), cfg.spool_bytes)?);
        let mut warning = None;
        let mut ready = false;
        let target = match &cfg.clickhouse {
            None => None,
            Some(url) => {
                let target = Target::new(url, cfg.password.as_deref());
                let rt = runtime().map_err(|e| Error::Config(format!("export runtime: {e}")))?;
                let checked = rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(10), target.prepare(cfg.create))
                        .await
                        .unwrap_or_else(|_| Err("no answer in 10 s".to_string()))
                });
                match checked {
                    Ok(()) => {
                        progress.connected.store(true, Ordering::Relaxed);
                        ready = true;
                    }
                    Err(e) => {
                        let line = format!("ClickHouse at {}: {e}", url.endpoint);
                        if !cfg.optional {
                            return Err(Error::Config(format!(
                                "{line} (start it, check the URL and {}; or add --export-optional to capture anyway)",
                                fleet::PASSWORD_ENV
                            )));
                        }
                        warning = Some(format!(
                            "{line}: capturing anyway (--export-optional); rows wait in the spool and are sent once it answers"
                        ));
                        if let Ok(mut last) = progress.last_error.lock() {
                            *last = Some(e);
                        }
                    }
                }
                Some(target)
            }
        };
        let ipfix = match cfg.ipfix {
            Some(addr) => Some(Ipfix::open(addr)?),
            None => None,
        };
        let (flow_out, flows) = FlowOut::bounded(FLOW_QUEUE);
        Ok(Prepared {
            cfg,
            target,
            ipfix,
            ready,
            flow_out,
            flows,
            spool,
            progress,
            warning,
        })
    }

    /// What the capture's workers need ([`xsktap_core::CaptureConfig::flow_export`]).
    pub fn flow_export(&self) -> FlowExport {
        FlowExport {
            out: self.flow_out.clone(),
            timeouts: self.cfg.timeouts,
        }
    }

    /// Set when ClickHouse could not be reached but `optional` let it go.
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// Starts the exporter's threads (they inherit this thread's CPUs).
    ///
    /// # Errors
    /// A thread could not be made.
    pub fn start(self) -> Result<Exporter> {
        let ipfix = self.ipfix;
        let (ctl_tx, ctl_rx) = crossbeam_channel::bounded(CONTROL_QUEUE);

        let intake = {
            let intake = Intake {
                origin: self.cfg.origin.clone(),
                flows: self.flows,
                control: ctl_rx,
                spool: self.spool.clone(),
                progress: self.progress.clone(),
                ipfix,
                clickhouse: self.target.is_some(),
                next_id: run_ids(),
                pending: Default::default(),
            };
            std::thread::Builder::new()
                .name("xsktap-export".into())
                .spawn(move || intake.run())
                .map_err(|e| Error::Config(format!("cannot start the exporter's thread: {e}")))?
        };
        let stop = Arc::new(AtomicBool::new(false));
        let sender = match self.target {
            Some(target) => {
                let s = Shipper {
                    target,
                    origin: self.cfg.origin.clone(),
                    create: self.cfg.create,
                    ready: self.ready,
                    spool: self.spool.clone(),
                    progress: self.progress.clone(),
                    stop: stop.clone(),
                };
                Some(
                    std::thread::Builder::new()
                        .name("xsktap-export-send".into())
                        .spawn(move || s.run())
                        .map_err(|e| {
                            Error::Config(format!("cannot start the exporter's thread: {e}"))
                        })?,
                )
            }
            None => {
                self.spool.close();
                None
            }
        };
        Ok(Exporter {
            flow_out: self.flow_out,
            control: ctl_tx,
            spool: self.spool,
            progress: self.progress,
            intake: Some(intake),
            sender,
            stop,
        })
    }
}

/// The running export.
pub struct Exporter {
    flow_out: FlowOut,
    control: Sender<Control>,
    spool: Arc<Spool>,
    progress: Arc<Progress>,
    intake: Option<JoinHandle<()>>,
    sender: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").finish_non_exhaustive()
    }
}

impl Exporter {
    /// Exports one interval's per-queue counts, ending at `time_ms`.
    pub fn stats(&self, time_ms: u64, rows: Vec<QueueDelta>) {
        self.control_send(Control::Stats(time_ms, rows));
    }

    /// Exports an event.
    pub fn event(&self, event: EventRow) {
        self.control_send(Control::Event(event));
    }

    /// Exports one interval's latency buckets (nothing when empty).
    pub fn latency(&self, rows: Vec<LatencyRow>) {
        if !rows.is_empty() {
            self.control_send(Control::Latency(rows));
        }
    }

    fn control_send(&self, c: Control) {
        if self.control.try_send(c).is_err() {
            add(&self.progress.control_dropped, 1);
        }
    }

    /// Where the export stands now.
    pub fn report(&self) -> ExportReport {
        let p = &self.progress;
        let (spooled_rows, spooled_bytes) = self.spool.waiting();
        let worker_dropped = self.flow_out.dropped();
        let (lost_rows, lost_packets) = self.spool.unreadable();
        ExportReport {
            rows_sent: [0, 1, 2, 3].map(|i| get(&p.rows_sent[i])),
            batches_sent: get(&p.batches_sent),
            bytes_sent: get(&p.bytes_sent),
            flow_records: get(&p.flow_records),
            flow_packets: get(&p.flow_packets),
            flow_packets_sent: get(&p.flow_packets_sent),
            dropped_rows: get(&p.dropped_rows) + worker_dropped.records + lost_rows,
            dropped_flow_packets: get(&p.dropped_flow_packets)
                + worker_dropped.packets
                + lost_packets,
            control_dropped: get(&p.control_dropped),
            spooled_rows,
            spooled_bytes,
            retries: get(&p.retries),
            already_there: get(&p.already_there),
            connected: p.connected.load(Ordering::Relaxed),
            last_error: p.last_error.lock().ok().and_then(|e| e.clone()),
            ipfix_messages: get(&p.ipfix_messages),
            ipfix_records: get(&p.ipfix_records),
            ipfix_errors: get(&p.ipfix_errors),
            left_in: None,
        }
    }

    /// Ends the export once the capture has stopped (its workers handed on
    /// their last records): seals what is pending and waits up to `wait`
    /// for the spool to empty. Batches still unsent stay in the spool
    /// directory for the next run, or are dropped and counted without one.
    pub fn finish(mut self, wait: Duration) -> ExportReport {
        let _ = self.control.send(Control::Finish);
        if let Some(t) = self.intake.take() {
            let _ = t.join();
        }
        let deadline = Instant::now() + wait;
        while !self.spool.finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::Relaxed);
        self.spool.close();
        if let Some(t) = self.sender.take() {
            let _ = t.join();
        }
        let (rows, packets, left_in) = self.spool.leave();
        add(&self.progress.dropped_rows, rows);
        add(&self.progress.dropped_flow_packets, packets);
        let mut report = self.report();
        if let Some(dir) = left_in {
            report.left_in = Some(dir.display().to_string());
        } else {
            report.spooled_rows = 0;
            report.spooled_bytes = 0;
        }
        report
    }
}

/// IPFIX over UDP: one socket to the collector, templates refreshed.
struct Ipfix {
    socket: UdpSocket,
    encoder: ipfix::Exporter,
    templates_sent: Option<Instant>,
}

impl Ipfix {
    fn open(addr: SocketAddr) -> Result<Ipfix> {
        let local: SocketAddr = if addr.is_ipv4() {
            "0.0.0.0:0".parse().expect("an address")
        } else {
            "[::]:0".parse().expect("an address")
        };
        let socket = UdpSocket::bind(local)
            .and_then(|s| s.connect(addr).map(|()| s))
            .map_err(|e| Error::Config(format!("--export-ipfix {addr}: {e}")))?;
        Ok(Ipfix {
            socket,
            encoder: ipfix::Exporter::new(1, ipfix::DEFAULT_MAX_MESSAGE),
            templates_sent: None,
        })
    }

    fn send(&mut self, records: &[xsktap_core::flows::FlowRecord], progress: &Progress) {
        let now = Instant::now();
        let templates = self
            .templates_sent
            .is_none_or(|t| now.duration_since(t) >= TEMPLATE_REFRESH);
        if templates {
            self.templates_sent = Some(now);
        }
        let secs = (now_ms() / 1000) as u32;
        for msg in self.encoder.messages(records, secs, templates) {
            match self.socket.send(&msg) {
                Ok(_) => add(&progress.ipfix_messages, 1),
                Err(_) => add(&progress.ipfix_errors, 1),
            }
        }
        add(&progress.ipfix_records, records.len() as u64);
    }
}

/// A table's rows being gathered into the next batch.
#[derive(Default)]
struct Pending {
    body: Vec<u8>,
    rows: u64,
    flow_packets: u64,
}

/// The batch number's bits in an id.
const SEQ_MASK: u64 = (1 << 20) - 1;

/// The first batch id of a run: the Unix second it starts in (high 32
/// bits, so that ids increase across runs and a spool directory is sent in
/// order), 12 bits of the process id (two captures of one host starting in
/// the same second), and a batch number from 0 (low 20 bits). A batch is
/// looked up by host, interface and id.
fn run_ids() -> u64 {
    let secs = now_ms() / 1000;
    (secs << 32) | (u64::from(std::process::id()) & 0xfff) << 20
}

/// The `xsktap-export` thread: takes rows, encodes them, seals batches.
struct Intake {
    origin: Origin,
    flows: Receiver<FlowBatch>,
    control: Receiver<Control>,
    spool: Arc<Spool>,
    progress: Arc<Progress>,
    ipfix: Option<Ipfix>,
    clickhouse: bool,
    next_id: u64,
    pending: [Pending; 4],
}

fn index(t: Table) -> usize {
    match t {
        Table::Flows => 0,
        Table::Stats => 1,
        Table::Events => 2,
        Table::Latency => 3,
    }
}

impl Intake {
    fn run(mut self) {
        // Background work: a worker on the same CPU goes first.
        let _ = xsktap_sys::cpu::lower_current_thread_priority();
        let mut next_seal = Instant::now() + SEAL_EVERY;
        loop {
            let timeout = next_seal.saturating_duration_since(Instant::now());
            crossbeam_channel::select! {
                recv(self.flows) -> b => if let Ok(b) = b { self.flows(b) },
                recv(self.control) -> c => match c {
                    // Statistics, events and latency go to ClickHouse only.
                    Ok(Control::Stats(..) | Control::Event(_) | Control::Latency(_)) if !self.clickhouse => {}
                    Ok(Control::Stats(time_ms, rows)) => {
                        let p = &mut self.pending[index(Table::Stats)];
                        fleet::encode_stats(&mut p.body, &self.origin, time_ms, &rows, self.next_id);
                        p.rows += rows.len() as u64;
                    }
                    Ok(Control::Event(e)) => {
                        let p = &mut self.pending[index(Table::Events)];
                        fleet::encode_events(&mut p.body, &self.origin, std::slice::from_ref(&e), self.next_id);
                        p.rows += 1;
                    }
                    Ok(Control::Latency(rows)) => {
                        let p = &mut self.pending[index(Table::Latency)];
                        fleet::encode_latency(&mut p.body, &self.origin, &rows, self.next_id);
                        p.rows += rows.len() as u64;
                    }
                    Ok(Control::Finish) | Err(_) => {
                        // The workers have stopped: their last records are queued.
                        while let Ok(b) = self.flows.try_recv() {
                            self.flows(b);
                        }
                        self.seal_all();
                        self.spool.close();
                        return;
                    }
                },
                default(timeout) => {}
            }
            if Instant::now() >= next_seal {
                self.seal_all();
                next_seal = Instant::now() + SEAL_EVERY;
            }
        }
    }

    fn flows(&mut self, b: FlowBatch) {
        let packets: u64 = b.records.iter().map(|r| r.packets).sum();
        add(&self.progress.flow_records, b.records.len() as u64);
        add(&self.progress.flow_packets, packets);
        if let Some(ipfix) = &mut self.ipfix {
            ipfix.send(&b.records, &self.progress);
        }
        if !self.clickhouse {
            return;
        }
        let p = &mut self.pending[index(Table::Flows)];
        fleet::encode_flows(&mut p.body, &self.origin, b.queue, &b.records, self.next_id);
        p.rows += b.records.len() as u64;
        p.flow_packets += packets;
        if p.rows >= SEAL_ROWS {
            self.seal_all();
        }
    }

    /// Hands every table's pending rows to the spool, one batch per table,
    /// all under the id their rows were encoded with; the next rows get the
    /// next id. (A batch is known by its table and id.)
    fn seal_all(&mut self) {
        let id = self.next_id;
        let mut any = false;
        for t in Table::ALL {
            let p = std::mem::take(&mut self.pending[index(t)]);
            if p.rows == 0 || !self.clickhouse {
                continue;
            }
            any = true;
            if !self.spool.push(id, t, p.rows, p.flow_packets, p.body) {
                add(&self.progress.dropped_rows, p.rows);
                add(&self.progress.dropped_flow_packets, p.flow_packets);
            }
        }
        if any {
            self.next_id += 1;
            if self.next_id & SEQ_MASK == 0 {
                // A million batches (days of them): a new run id, later than this one.
                self.next_id = run_ids().max(self.next_id);
            }
        }
    }
}

/// The `xsktap-export-send` thread: inserts the spool's batches in order.
struct Shipper {
    target: Target,
    origin: Origin,
    create: bool,
    ready: bool,
    spool: Arc<Spool>,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
}

impl Shipper {
    fn run(mut self) {
        // Background work: a worker on the same CPU goes first.
        let _ = xsktap_sys::cpu::lower_current_thread_priority();
        let Ok(rt) = runtime() else {
            return;
        };
        let mut wait = RETRY_FIRST;
        while !self.stop.load(Ordering::Relaxed) {
            let Some((id, table, tried, body)) = self.spool.front(Duration::from_millis(200))
            else {
                if self.spool.finished() {
                    return;
                }
                continue;
            };
            let result = rt.block_on(async {
                if !self.ready {
                    // The server did not answer at start (--export-optional):
                    // find or create its tables first.
                    self.target.prepare(self.create).await?;
                    self.ready = true;
                }
                if tried {
                    // An earlier attempt may have landed: ask first, under
                    // the origin its rows name (a batch left by a run with
                    // another --export-name or interface keeps its own).
                    let origin = xsktap_core::fleet::batch_origin(&body);
                    let origin = origin.as_ref().unwrap_or(&self.origin);
                    if self.target.rows_of(table, origin, id).await? > 0 {
                        return Ok(false);
                    }
                }
                self.target.insert(table, &body).await.map(|()| true)
            });
            match result {
                Ok(sent) => {
                    wait = RETRY_FIRST;
                    self.progress.connected.store(true, Ordering::Relaxed);
                    self.spool.recovered();
                    if let Some(b) = self.spool.pop() {
                        let i = index(b.table);
                        if sent {
                            add(&self.progress.batches_sent, 1);
                            add(&self.progress.bytes_sent, b.bytes);
                        } else {
                            add(&self.progress.already_there, 1);
                        }
                        add(&self.progress.rows_sent[i], b.rows);
                        add(&self.progress.flow_packets_sent, b.flow_packets);
                    }
                }
                Err(e) => {
                    self.progress.connected.store(false, Ordering::Relaxed);
                    if let Ok(mut last) = self.progress.last_error.lock() {
                        *last = Some(e);
                    }
                    add(&self.progress.retries, 1);
                    self.spool.failed();
                    let until = Instant::now() + wait;
                    while Instant::now() < until && !self.stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    wait = (wait * 2).min(RETRY_MAX);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_file_names_round_trip_and_sort_by_id() {
        let a = file_name(0x0000_0001_0000_0009, Table::Flows);
        let b = file_name(0x0000_0001_0000_000a, Table::Events);
        assert!(a < b);
        assert_eq!(
            parse_file_name(&a),
            Some((0x0000_0001_0000_0009, Table::Flows))
        );
        assert_eq!(
            parse_file_name(&b),
            Some((0x0000_0001_0000_000a, Table::Events))
        );
        assert_eq!(parse_file_name("x.partial"), None);
    }

    #[test]
    fn the_spool_keeps_order_and_its_bound_and_leaves_batches_on_disk() {
        let dir = std::env::temp_dir().join(format!("xsktap-spool-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let spool = Spool::open(Some(dir.clone()), 1000).unwrap();
        assert!(spool.push(1, Table::Flows, 2, 10, vec![1; 400]));
        spool.failed(); // the server is down: the next batches go to disk
        assert!(spool.push(2, Table::Stats, 1, 0, vec![2; 400]));
        assert!(
            !spool.push(3, Table::Flows, 1, 5, vec![3; 400]),
            "over the bound"
        );
        let (id, table, tried, body) = spool.front(Duration::ZERO).unwrap();
        assert_eq!((id, table, tried, body[0]), (1, Table::Flows, true, 1));
        assert!(dir.join(file_name(2, Table::Stats)).exists());
        let (rows, packets, left) = spool.leave();
        assert_eq!((rows, packets), (0, 0), "nothing dropped with a directory");
        assert_eq!(left.as_deref(), Some(dir.as_path()));
        // The next run finds both, oldest first, to be checked before sending.
        let again = Spool::open(Some(dir.clone()), 1000).unwrap();
        let (id, _, tried, body) = again.front(Duration::ZERO).unwrap();
        assert_eq!((id, tried, body.len()), (1, true, 400));
        again.pop();
        assert_eq!(again.front(Duration::ZERO).unwrap().0, 2);
        again.pop();
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "sent files removed"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_a_directory_unsent_rows_are_counted_as_dropped() {
        let spool = Spool::open(None, 1 << 20).unwrap();
        assert!(spool.push(1, Table::Flows, 3, 30, vec![0; 10]));
        assert_eq!(spool.leave(), (3, 30, None));
    }
}
