//! The rows xsktap exports to ClickHouse (`--export-clickhouse`, issue 16):
//! the four tables' columns, their DDL, and the rows' RowBinary encoding.
//!
//! One list of columns per table ([`Table::columns`]) gives both the DDL and
//! the order the encoders write in; a test decodes every encoded row by that
//! list. Rows are encoded here, in the pure core, rather than by the
//! `clickhouse` crate's typed inserts because a batch must be sent as the
//! same bytes after an outage: the exporter keeps each batch's encoded body
//! (in memory or in the spool directory) and resends it as it is, and the
//! crate's RowBinary serializer is private. RowBinary is a few fixed rules
//! (little-endian integers, DateTime as UInt32 seconds, String as a LEB128
//! length and its bytes).
//!
//! The schema runs unchanged on Debian 12's ClickHouse 18.16 (no DateTime64,
//! no IPv4/IPv6 types there) and on current releases: times are `DateTime`
//! seconds beside `UInt64` milliseconds since the epoch, addresses are
//! `String`s in their usual text form.
//!
//! Every row carries `batch`: the id of the insert it came in (the capture's
//! run id in the high 32 bits, the batch's number in the low ones). An
//! insert whose answer was lost is looked up by it before being sent again,
//! so an outage neither loses nor duplicates rows.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::flows::FlowRecord;
use crate::stats::QueueSnapshot;
use crate::types::{BpfCounters, SocketStats};

/// One of the exported tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Flow records.
    Flows,
    /// One row per queue per second.
    Stats,
    /// Alerts, feed events, starts and stops.
    Events,
    /// Feed latency histograms, one row per bucket per feed per interval.
    Latency,
}

impl Table {
    /// Every table, in the order they are created.
    pub const ALL: [Table; 4] = [Table::Flows, Table::Stats, Table::Events, Table::Latency];

    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Flows => "flows",
            Table::Stats => "stats",
            Table::Events => "events",
            Table::Latency => "latency",
        }
    }

    /// The columns, name and ClickHouse type, in encoding order.
    pub fn columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Table::Flows => &[
                ("host", "String"),
                ("interface", "String"),
                ("queue", "UInt16"),
                ("start", "DateTime"),
                ("end", "DateTime"),
                ("start_ms", "UInt64"),
                ("end_ms", "UInt64"),
                ("proto", "UInt8"),
                ("src", "String"),
                ("dst", "String"),
                ("src_port", "UInt16"),
                ("dst_port", "UInt16"),
                ("vlan", "UInt16"),
                ("packets", "UInt64"),
                ("bytes", "UInt64"),
                ("tcp_flags", "UInt8"),
                ("batch", "UInt64"),
            ],
            Table::Stats => &[
                ("host", "String"),
                ("interface", "String"),
                ("queue", "UInt16"),
                ("time", "DateTime"),
                ("time_ms", "UInt64"),
                ("packets", "UInt64"),
                ("bytes", "UInt64"),
                ("received", "UInt64"),
                ("received_bytes", "UInt64"),
                ("rx_dropped", "Nullable(UInt64)"),
                ("rx_ring_full", "Nullable(UInt64)"),
                ("rx_fill_ring_empty", "Nullable(UInt64)"),
                ("rx_invalid_descs", "Nullable(UInt64)"),
                ("xdp_redirect_failed", "Nullable(UInt64)"),
                ("xdp_filtered_out", "Nullable(UInt64)"),
                ("xdp_limited", "Nullable(UInt64)"),
                ("output_closed_drops", "UInt64"),
                ("output_failed", "UInt64"),
                ("over_count", "UInt64"),
                ("flow_evictions", "UInt64"),
                ("batch", "UInt64"),
            ],
            Table::Events => &[
                ("host", "String"),
                ("interface", "String"),
                ("time", "DateTime"),
                ("time_ms", "UInt64"),
                ("kind", "String"),
                ("subject", "String"),
                ("state", "String"),
                ("json", "String"),
                ("batch", "UInt64"),
            ],
            Table::Latency => &[
                ("host", "String"),
                ("interface", "String"),
                ("time", "DateTime"),
                ("time_ms", "UInt64"),
                ("feed", "String"),
                ("measure", "String"),
                ("value_ns", "UInt64"),
                ("count", "UInt64"),
                ("batch", "UInt64"),
            ],
        }
    }

    /// `CREATE TABLE IF NOT EXISTS` for the table in `database` (none: the
    /// connection's), a MergeTree partitioned by day and ordered for the
    /// questions asked of it (by host, then time).
    pub fn ddl(self, database: Option<&str>) -> String {
        let mut sql = String::from("CREATE TABLE IF NOT EXISTS ");
        sql += &self.qualified(database);
        sql += " (\n";
        let cols = self.columns();
        for (i, (name, ty)) in cols.iter().enumerate() {
            let comma = if i + 1 < cols.len() { "," } else { "" };
            let _ = writeln!(sql, "    `{name}` {ty}{comma}");
        }
        let (time, order) = match self {
            Table::Flows => ("start", "host, interface, start"),
            Table::Stats => ("time", "host, interface, queue, time"),
            Table::Events => ("time", "host, interface, time, kind"),
            Table::Latency => ("time", "host, interface, feed, measure, time"),
        };
        let _ = write!(
            sql,
            ") ENGINE = MergeTree PARTITION BY toYYYYMMDD({time}) ORDER BY ({order})"
        );
        sql
    }

    /// The table's name, with its database when one is given.
    pub fn qualified(self, database: Option<&str>) -> String {
        match database {
            Some(db) => format!("`{db}`.`{}`", self.name()),
            None => format!("`{}`", self.name()),
        }
    }
}

/// The environment variable the ClickHouse password is read from (never argv).
pub const PASSWORD_ENV: &str = "XSKTAP_CLICKHOUSE_PASSWORD";

/// Where `--export-clickhouse` sends: `http://HOST:PORT[/?database=DB&user=USER]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHouseUrl {
    /// `http://HOST:PORT`, what the client connects to.
    pub endpoint: String,
    /// `database=`: the tables' database (none: the user's default).
    pub database: Option<String>,
    /// `user=`: the user (none: `default`).
    pub user: Option<String>,
}

impl ClickHouseUrl {
    /// Parses the URL, or says in one line what is wrong and how to write it.
    ///
    /// # Errors
    /// Another scheme than `http`, no port, a path, an unknown parameter, or
    /// a password in the URL (it belongs in [`PASSWORD_ENV`]).
    pub fn parse(url: &str) -> Result<ClickHouseUrl, String> {
        let usage = "write it as http://HOST:PORT[/?database=DB&user=USER]";
        let Some(rest) = url.strip_prefix("http://") else {
            if url.starts_with("https://") {
                return Err(format!(
                    "--export-clickhouse {url}: https is not built in; use http to a local or tunnelled port ({usage})"
                ));
            }
            return Err(format!(
                "--export-clickhouse {url}: not an http URL; {usage}"
            ));
        };
        let (authority, query) = match rest.split_once('/') {
            Some((a, tail)) => {
                let q = tail.strip_prefix('?').or((tail.is_empty()).then_some(""));
                match q {
                    Some(q) => (a, q),
                    None => {
                        return Err(format!(
                            "--export-clickhouse {url}: a path is not supported; {usage}"
                        ))
                    }
                }
            }
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(format!(
                "--export-clickhouse: credentials do not go in the URL; give user= and set {PASSWORD_ENV}"
            ));
        }
        let port_ok = authority.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !port_ok {
            return Err(format!(
                "--export-clickhouse {url}: HOST:PORT is needed (ClickHouse's HTTP port is usually 8123); {usage}"
            ));
        }
        let mut parsed = ClickHouseUrl {
            endpoint: format!("http://{authority}"),
            database: None,
            user: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let ok_name = !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            match k {
                "database" | "user" if !ok_name => {
                    return Err(format!(
                        "--export-clickhouse: {k}={v} is not a name (letters, digits, _ and -)"
                    ))
                }
                "database" => parsed.database = Some(v.to_string()),
                "user" => parsed.user = Some(v.to_string()),
                "password" => {
                    return Err(format!(
                        "--export-clickhouse: the password does not go in the URL (it would show in ps); set {PASSWORD_ENV}"
                    ))
                }
                _ => {
                    return Err(format!(
                        "--export-clickhouse: unknown parameter {k}; {usage}"
                    ))
                }
            }
        }
        Ok(parsed)
    }
}

/// Where an export stands: what was sent, waits, and was dropped (the
/// summary's `export`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportReport {
    /// Rows inserted into `flows`, `stats`, `events` and `latency`.
    pub rows_sent: [u64; 4],
    /// Inserts that succeeded.
    pub batches_sent: u64,
    /// RowBinary bytes inserted (before compression).
    pub bytes_sent: u64,
    /// Flow records the workers handed on.
    pub flow_records: u64,
    /// Packets in those records.
    pub flow_packets: u64,
    /// Packets in the flow rows ClickHouse holds (sent, or found there).
    pub flow_packets_sent: u64,
    /// Rows dropped: spool full, or left unsent at the end without a spool
    /// directory; and flow records the workers could not hand on.
    pub dropped_rows: u64,
    /// Packets in the dropped flow rows and records.
    pub dropped_flow_packets: u64,
    /// Statistics and events the exporter's queue had no room for.
    pub control_dropped: u64,
    /// Rows waiting in the spool.
    pub spooled_rows: u64,
    /// Their bytes.
    pub spooled_bytes: u64,
    /// Failed inserts retried.
    pub retries: u64,
    /// Batches found already inserted when retried (not sent twice).
    pub already_there: u64,
    /// Whether the last insert or check reached ClickHouse.
    pub connected: bool,
    /// The last failure, one line.
    pub last_error: Option<String>,
    /// IPFIX messages sent.
    pub ipfix_messages: u64,
    /// IPFIX data records sent.
    pub ipfix_records: u64,
    /// IPFIX sends that failed.
    pub ipfix_errors: u64,
    /// The spool directory, when batches were left in it at the end.
    pub left_in: Option<String>,
}

/// What every row names: the capture host and its interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `--export-name`, by default the host name.
    pub host: String,
    /// The captured interface.
    pub interface: String,
}

/// RowBinary encoding of the column types the tables use.
struct Row<'a>(&'a mut Vec<u8>);

impl Row<'_> {
    fn string(&mut self, s: &str) -> &mut Self {
        let mut n = s.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(byte);
                break;
            }
            self.0.push(byte | 0x80);
        }
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A `Nullable(UInt64)`: a byte 1 for NULL, or 0 and the value.
    fn nullable_u64(&mut self, v: Option<u64>) -> &mut Self {
        match v {
            None => self.u8(1),
            Some(v) => self.u8(0).u64(v),
        }
    }
    /// A `DateTime` (UInt32 seconds) from milliseconds since the epoch.
    fn datetime_ms(&mut self, ms: u64) -> &mut Self {
        let secs = u32::try_from(ms / 1000).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&secs.to_le_bytes());
        self
    }
    fn origin(&mut self, o: &Origin) -> &mut Self {
        self.string(&o.host).string(&o.interface)
    }
}

/// Reads a RowBinary `String` (LEB128 length, then the bytes) at `at`;
/// returns it and the offset after it, or `None` when `b` ends first.
fn read_string(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let (mut len, mut shift, mut at) = (0usize, 0u32, at);
    loop {
        let byte = *b.get(at)?;
        at += 1;
        len |= usize::from(byte & 0x7f).checked_shl(shift)?;
        shift += 7;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let end = at.checked_add(len)?;
    Some((b.get(at..end)?, end))
}

/// The origin a batch of encoded rows names (every table's rows begin with
/// `host` and `interface`, and a batch holds one origin's rows): a batch
/// left in the spool by an earlier run is looked up under its own origin,
/// not the sending run's. `None` for an empty or damaged batch.
pub fn batch_origin(body: &[u8]) -> Option<Origin> {
    let (host, at) = read_string(body, 0)?;
    let (interface, _) = read_string(body, at)?;
    Some(Origin {
        host: String::from_utf8(host.to_vec()).ok()?,
        interface: String::from_utf8(interface.to_vec()).ok()?,
    })
}

/// An address in its usual text form, into `buf` (no allocation once grown).
fn addr_text(a: IpAddr, buf: &mut String) -> &str {
    buf.clear();
    let _ = write!(buf, "{a}");
    buf
}

/// Appends the `flows` rows of `records`, exported by `queue`, to `out`.
pub fn encode_flows(
    out: &mut Vec<u8>,
    origin: &Origin,
    queue: u32,
    records: &[FlowRecord],
    batch: u64,
) {
    let mut text = String::with_capacity(40);
    for r in records {
        let mut row = Row(out);
        row.origin(origin)
            .u16(queue as u16)
            .datetime_ms(r.start_ms)
            .datetime_ms(r.end_ms)
            .u64(r.start_ms)
            .u64(r.end_ms)
            .u8(r.proto);
        row.string(addr_text(r.src, &mut text));
        row.string(addr_text(r.dst, &mut text));
        row.u16(r.sport)
            .u16(r.dport)
            .u16(r.vlan)
            .u64(r.packets)
            .u64(r.bytes)
            .u8(r.tcp_flags as u8)
            .u64(batch);
    }
}

/// One queue's counts over an interval: what a `stats` row holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDelta {
    /// The RX queue.
    pub queue: u32,
    /// Frames written.
    pub packets: u64,
    /// Their original bytes.
    pub bytes: u64,
    /// Frames taken from the RX ring.
    pub received: u64,
    /// Their bytes.
    pub received_bytes: u64,
    /// Kernel: dropped by the socket.
    pub rx_dropped: Option<u64>,
    /// Kernel: RX ring full.
    pub rx_ring_full: Option<u64>,
    /// Kernel: fill ring found empty.
    pub rx_fill_ring_empty: Option<u64>,
    /// Kernel: invalid descriptors.
    pub rx_invalid_descs: Option<u64>,
    /// XDP: redirects that found no socket.
    pub xdp_redirect_failed: Option<u64>,
    /// XDP: frames the filter did not select.
    pub xdp_filtered_out: Option<u64>,
    /// XDP: frames the rate limit dropped.
    pub xdp_limited: Option<u64>,
    /// Frames the closed, failed or stalled output refused.
    pub output_closed_drops: u64,
    /// Of those, frames whose write failed.
    pub output_failed: u64,
    /// Frames after `-c` was reached.
    pub over_count: u64,
    /// Flows evicted from the flow table.
    pub flow_evictions: u64,
}

impl QueueDelta {
    /// What `now` counted since `before` (the same queue; `None`: since the
    /// start). A kernel or XDP counter unreadable at either end is `None`
    /// for the interval (NULL in the row): unknown, never a false 0.
    pub fn between(before: Option<&QueueSnapshot>, now: &QueueSnapshot) -> QueueDelta {
        let zero = QueueSnapshot {
            socket: Some(Default::default()),
            bpf: Some(Default::default()),
            ..QueueSnapshot::default()
        };
        let b = before.unwrap_or(&zero);
        let d = |f: fn(&QueueSnapshot) -> u64| f(now).saturating_sub(f(b));
        let socket =
            |f: fn(&SocketStats) -> u64| Some(f(&now.socket?).saturating_sub(f(&b.socket?)));
        let bpf = |f: fn(&BpfCounters) -> u64| Some(f(&now.bpf?).saturating_sub(f(&b.bpf?)));
        QueueDelta {
            queue: now.queue,
            packets: d(|q| q.written),
            bytes: d(|q| q.written_bytes),
            received: d(|q| q.received),
            received_bytes: d(|q| q.received_bytes),
            rx_dropped: socket(|s| s.rx_dropped),
            rx_ring_full: socket(|s| s.rx_ring_full),
            rx_fill_ring_empty: socket(|s| s.rx_fill_ring_empty_descs),
            rx_invalid_descs: socket(|s| s.rx_invalid_descs),
            xdp_redirect_failed: bpf(|p| p.redirect_failed),
            xdp_filtered_out: bpf(|p| p.filtered_out),
            xdp_limited: bpf(|p| p.limited),
            output_closed_drops: d(|q| q.sink_closed_drops),
            output_failed: d(|q| q.output_failed),
            over_count: d(|q| q.over_count),
            flow_evictions: d(|q| q.flow_evictions),
        }
    }
}

/// The `stats` rows of one interval ending at `time_ms`: one per queue of
/// `now`, each against the same queue in `before` (absent: since the start).
pub fn stats_rows(before: &[QueueSnapshot], now: &[QueueSnapshot]) -> Vec<QueueDelta> {
    now.iter()
        .map(|q| QueueDelta::between(before.iter().find(|b| b.queue == q.queue), q))
        .collect()
}

/// Appends the `stats` rows of one interval ending at `time_ms` to `out`.
pub fn encode_stats(
    out: &mut Vec<u8>,
    origin: &Origin,
    time_ms: u64,
    rows: &[QueueDelta],
    batch: u64,
) {
    for q in rows {
        let mut row = Row(out);
        row.origin(origin)
            .u16(q.queue as u16)
            .datetime_ms(time_ms)
            .u64(time_ms);
        for v in [q.packets, q.bytes, q.received, q.received_bytes] {
            row.u64(v);
        }
        for v in [
            q.rx_dropped,
            q.rx_ring_full,
            q.rx_fill_ring_empty,
            q.rx_invalid_descs,
            q.xdp_redirect_failed,
            q.xdp_filtered_out,
            q.xdp_limited,
        ] {
            row.nullable_u64(v);
        }
        for v in [
            q.output_closed_drops,
            q.output_failed,
            q.over_count,
            q.flow_evictions,
        ] {
            row.u64(v);
        }
        row.u64(batch);
    }
}

/// One `events` row: something that happened, with its JSON line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// When, ms since the epoch.
    pub time_ms: u64,
    /// `start`, `stop`, an alert's kind (`rate-spike`, `scan`…), a feed
    /// event's (`gap`, `recovered`, `session`…).
    pub kind: String,
    /// What it is about (a queue, an address, a feed); may be empty.
    pub subject: String,
    /// `start`/`end` for alerts, empty otherwise.
    pub state: String,
    /// The event as xsktap prints it in JSON.
    pub json: String,
}

/// Appends the `events` rows of `events` to `out`.
pub fn encode_events(out: &mut Vec<u8>, origin: &Origin, events: &[EventRow], batch: u64) {
    for e in events {
        Row(out)
            .origin(origin)
            .datetime_ms(e.time_ms)
            .u64(e.time_ms)
            .string(&e.kind)
            .string(&e.subject)
            .string(&e.state)
            .string(&e.json)
            .u64(batch);
    }
}

/// One bucket of a feed's latency histogram over an interval: `count`
/// values of `measure` were at most `value_ns` (and above the bucket
/// below, within the histogram's 3 significant digits). Summed over hosts
/// and intervals, `quantileExactWeighted(q)(value_ns, count)` gives a
/// fleet-wide quantile, not a bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyRow {
    /// The end of the interval, ms since the epoch.
    pub time_ms: u64,
    /// The feed, as its events name it (`198.18.0.2:26400`).
    pub feed: String,
    /// `receive_to_decode` or `exchange_to_tap`.
    pub measure: &'static str,
    /// The bucket's highest value, ns.
    pub value_ns: u64,
    /// Values in the bucket during the interval.
    pub count: u64,
}

/// Appends to `out` the rows of what `now` (a histogram that only grows)
/// holds beyond `before` (`None`: nothing yet), one per bucket. The rows'
/// counts add up to `now.len() - before.len()`.
pub fn latency_rows(
    time_ms: u64,
    feed: &str,
    measure: &'static str,
    before: Option<&hdrhistogram::Histogram<u64>>,
    now: &hdrhistogram::Histogram<u64>,
    out: &mut Vec<LatencyRow>,
) {
    for v in now.iter_recorded() {
        let value = v.value_iterated_to();
        // The feeds' histograms only grow; saturating keeps a histogram
        // that ever shrank from wrapping to a huge count.
        let count = v
            .count_at_value()
            .saturating_sub(before.map_or(0, |b| b.count_at(value)));
        if count > 0 {
            out.push(LatencyRow {
                time_ms,
                feed: feed.to_string(),
                measure,
                value_ns: value,
                count,
            });
        }
    }
}

/// What each feed's latency histograms held when last exported, so that
/// each interval's rows hold only what came in it.
#[derive(Debug, Default)]
pub struct LatencyMarks {
    /// Per feed: receive-to-decode, exchange-to-tap.
    last: Vec<[Option<hdrhistogram::Histogram<u64>>; 2]>,
}

impl LatencyMarks {
    /// Appends to `out` the rows of what every feed's histograms gained
    /// since the last call, as of `time_ms`. Each feed's lock is held only
    /// for copies of its histograms (tens of microseconds, every few seconds).
    pub fn rows(
        &mut self,
        feeds: &crate::feed::tap::Feeds,
        time_ms: u64,
        out: &mut Vec<LatencyRow>,
    ) {
        self.last.resize_with(feeds.len(), Default::default);
        for (i, last) in self.last.iter_mut().enumerate() {
            let (name, now) = {
                let state = feeds.lock(i);
                let itch = state.events.itch.as_ref().map(|x| x.histogram.clone());
                (
                    state.feed.name.clone(),
                    [Some(state.timing.receive_to_decode.clone()), itch],
                )
            };
            for ((measure, before), now) in ["receive_to_decode", "exchange_to_tap"]
                .into_iter()
                .zip(last.iter())
                .zip(now.iter())
            {
                if let Some(now) = now {
                    latency_rows(time_ms, &name, measure, before.as_ref(), now, out);
                }
            }
            *last = now;
        }
    }
}

/// Appends the `latency` rows of `rows` to `out`.
pub fn encode_latency(out: &mut Vec<u8>, origin: &Origin, rows: &[LatencyRow], batch: u64) {
    for r in rows {
        Row(out)
            .origin(origin)
            .datetime_ms(r.time_ms)
            .u64(r.time_ms)
            .string(&r.feed)
            .string(r.measure)
            .u64(r.value_ns)
            .u64(r.count)
            .u64(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads one row of `table` from `b` at `at` by the column list; returns
    /// the values as text and the offset after the row.
    fn decode(table: Table, b: &[u8], mut at: usize) -> (Vec<String>, usize) {
        let mut values = Vec::new();
        for (_, ty) in table.columns() {
            let int = |at: &mut usize, n: usize| {
                let mut v = 0u64;
                for i in 0..n {
                    v |= u64::from(b[*at + i]) << (8 * i);
                }
                *at += n;
                v
            };
            let v = match *ty {
                "String" => {
                    let (s, end) = read_string(b, at).expect("a whole string");
                    at = end;
                    String::from_utf8(s.to_vec()).unwrap()
                }
                "UInt8" => int(&mut at, 1).to_string(),
                "UInt16" => int(&mut at, 2).to_string(),
                "DateTime" => int(&mut at, 4).to_string(),
                "UInt64" => int(&mut at, 8).to_string(),
                "Nullable(UInt64)" => {
                    at += 1;
                    if b[at - 1] == 1 {
                        "NULL".to_string()
                    } else {
                        int(&mut at, 8).to_string()
                    }
                }
                other => panic!("type {other} has no decoder"),
            };
            values.push(v);
        }
        (values, at)
    }

    fn origin() -> Origin {
        Origin {
            host: "tap-1".into(),
            interface: "eth1".into(),
        }
    }

    #[test]
    fn flow_rows_decode_by_the_column_list() {
        let r = FlowRecord {
            src: "198.18.0.1".parse().unwrap(),
            dst: "2001:2::9".parse().unwrap(),
            sport: 40000,
            dport: 443,
            proto: 6,
            tcp_flags: 0x1b,
            vlan: 100,
            packets: 12,
            bytes: 3456,
            start_ms: 1_764_900_000_123,
            end_ms: 1_764_900_004_999,
        };
        let mut out = Vec::new();
        encode_flows(&mut out, &origin(), 3, &[r, r], 0x0000_0007_0000_0002);
        let (row, at) = decode(Table::Flows, &out, 0);
        assert_eq!(
            row,
            [
                "tap-1",
                "eth1",
                "3",
                "1764900000",
                "1764900004",
                "1764900000123",
                "1764900004999",
                "6",
                "198.18.0.1",
                "2001:2::9",
                "40000",
                "443",
                "100",
                "12",
                "3456",
                "27",
                "30064771074"
            ]
        );
        let (second, end) = decode(Table::Flows, &out, at);
        assert_eq!(second, row);
        assert_eq!(end, out.len());
    }

    #[test]
    fn stats_rows_are_the_interval_s_differences_and_decode() {
        let mut a = QueueSnapshot {
            queue: 2,
            written: 100,
            received: 110,
            ..QueueSnapshot::default()
        };
        a.socket = Some(crate::types::SocketStats {
            rx_ring_full: 4,
            ..Default::default()
        });
        let mut b = a;
        b.written = 250;
        b.received = 270;
        b.sink_closed_drops = 3;
        b.socket = Some(crate::types::SocketStats {
            rx_ring_full: 9,
            ..Default::default()
        });
        let rows = stats_rows(&[a], &[b]);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].packets, rows[0].received, rows[0].rx_ring_full),
            (150, 160, Some(5))
        );
        // The XDP counters were not read at either end: unknown, not 0.
        assert_eq!(rows[0].xdp_limited, None);
        assert_eq!(rows[0].output_closed_drops, 3);
        // A queue not seen before counts from the start.
        assert_eq!(stats_rows(&[], &[b])[0].packets, 250);
        let mut out = Vec::new();
        encode_stats(&mut out, &origin(), 1_764_900_001_000, &rows, 9);
        let (row, end) = decode(Table::Stats, &out, 0);
        assert_eq!(end, out.len());
        assert_eq!(
            &row[..6],
            ["tap-1", "eth1", "2", "1764900001", "1764900001000", "150"]
        );
        assert_eq!(row[10], "5", "rx_ring_full in its column");
        assert_eq!(row[13], "NULL", "xdp_redirect_failed unknown");
        // A counter read at the start but not now is unknown for the interval.
        let mut c = b;
        c.socket = None;
        assert_eq!(stats_rows(&[b], &[c])[0].rx_ring_full, None);
        assert_eq!(row.last().unwrap(), "9");
    }

    #[test]
    fn event_rows_decode_with_long_strings() {
        let e = EventRow {
            time_ms: 1_764_900_002_500,
            kind: "scan".into(),
            subject: "src 198.18.0.1".into(),
            state: "start".into(),
            json: format!("{{\"pad\":\"{}\"}}", "x".repeat(300)),
        };
        let mut out = Vec::new();
        encode_events(&mut out, &origin(), std::slice::from_ref(&e), 1);
        let (row, end) = decode(Table::Events, &out, 0);
        assert_eq!(end, out.len());
        assert_eq!(row[4..8], [e.kind, e.subject, e.state, e.json]);
    }

    #[test]
    fn latency_rows_are_each_interval_s_buckets_and_give_the_histogram_s_quantiles() {
        use hdrhistogram::Histogram;
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        let mut rows = Vec::new();
        // First interval: 1,000 values from 1 µs to 1 ms.
        for i in 1..=1000u64 {
            h.record(i * 1000).unwrap();
        }
        latency_rows(1_000, "feed-a", "receive_to_decode", None, &h, &mut rows);
        let first = h.clone();
        // Second: 500 more, some in buckets the first used.
        for i in 1..=500u64 {
            h.record(i * 3000).unwrap();
        }
        let at = rows.len();
        latency_rows(
            2_000,
            "feed-a",
            "receive_to_decode",
            Some(&first),
            &h,
            &mut rows,
        );
        let sum = |r: &[LatencyRow]| r.iter().map(|r| r.count).sum::<u64>();
        assert_eq!(sum(&rows[..at]), 1000);
        assert_eq!(sum(&rows[at..]), 500);
        assert!(rows[at..].iter().all(|r| r.time_ms == 2_000));
        // A weighted quantile over every row (what ClickHouse's
        // quantileExactWeighted computes) is the whole histogram's.
        let mut weighted: Vec<(u64, u64)> = rows.iter().map(|r| (r.value_ns, r.count)).collect();
        weighted.sort();
        for q in [0.5, 0.99, 0.999] {
            let rank = (q * h.len() as f64).ceil() as u64;
            let mut seen = 0;
            let value = weighted
                .iter()
                .find(|(_, n)| {
                    seen += n;
                    seen >= rank
                })
                .unwrap()
                .0;
            assert_eq!(value, h.value_at_quantile(q), "q {q}");
        }
        // An interval without values gives no rows.
        let before = rows.len();
        latency_rows(
            3_000,
            "feed-a",
            "receive_to_decode",
            Some(&h),
            &h,
            &mut rows,
        );
        assert_eq!(rows.len(), before);
        // They decode by the column list.
        let mut b = Vec::new();
        encode_latency(&mut b, &origin(), &rows[..1], 9);
        let (values, end) = decode(Table::Latency, &b, 0);
        assert_eq!(end, b.len());
        assert_eq!(
            values,
            [
                "tap-1",
                "eth1",
                "1",
                "1000",
                "feed-a",
                "receive_to_decode",
                &rows[0].value_ns.to_string(),
                &rows[0].count.to_string(),
                "9"
            ]
        );
    }

    #[test]
    fn latency_marks_export_each_interval_s_packets_once() {
        use crate::feed::tap::{FeedSpec, Feeds};
        use crate::feed::{mold, Session};
        let feeds = Feeds::new(
            vec![FeedSpec {
                name: "198.19.0.1:26400".into(),
                lines: vec![("198.19.0.1".parse().unwrap(), 26400)],
            }],
            1_000,
        )
        .unwrap();
        let session = Session::new(b"SESSION001").unwrap();
        let send = |seqs: std::ops::Range<u64>| {
            for seq in seqs {
                let mut f = Vec::new();
                etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [1, 0, 0x5e, 0, 0, 1])
                    .ipv4([198, 18, 0, 1], [198, 19, 0, 1], 16)
                    .udp(5000, 26400)
                    .write(&mut f, &mold::encode(&session, seq, &[b"m"]))
                    .unwrap();
                // Decoded 5 µs after it was received.
                let rx = 1_000_000 * seq;
                assert!(feeds.frame(rx, rx + 5_000, &f, &crate::parse::parse(&f)));
            }
        };
        let mut marks = LatencyMarks::default();
        let mut rows = Vec::new();
        send(1..11);
        marks.rows(&feeds, 1_000, &mut rows);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (rows[0].feed.as_str(), rows[0].measure, rows[0].count),
            ("198.19.0.1:26400", "receive_to_decode", 10)
        );
        assert!(rows[0].value_ns.abs_diff(5_000) <= 5, "{rows:?}");
        send(11..16);
        marks.rows(&feeds, 2_000, &mut rows);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!((rows[1].time_ms, rows[1].count), (2_000, 5));
        // Nothing new: no rows (without --itch-utc-offset, no exchange_to_tap).
        marks.rows(&feeds, 3_000, &mut rows);
        assert_eq!(rows.len(), 2, "{rows:?}");
    }

    #[test]
    fn a_batch_names_its_origin_from_its_first_row() {
        let long = Origin {
            host: "h".repeat(200),
            interface: "eth1".into(),
        };
        for o in [origin(), long] {
            let mut b = Vec::new();
            let e = EventRow {
                time_ms: 1,
                kind: "start".into(),
                subject: String::new(),
                state: String::new(),
                json: "{}".into(),
            };
            encode_events(&mut b, &o, &[e], 7);
            assert_eq!(batch_origin(&b), Some(o.clone()));
            // Cut anywhere inside the two strings: no origin, no panic.
            let names = 2 + o.host.len() + usize::from(o.host.len() > 127) + o.interface.len();
            for cut in 0..names {
                assert_eq!(batch_origin(&b[..cut]), None, "cut at {cut}");
            }
        }
    }

    #[test]
    fn urls_parse_or_say_what_is_wrong() {
        let u = ClickHouseUrl::parse("http://127.0.0.1:8123/?database=fleet&user=tap").unwrap();
        assert_eq!(u.endpoint, "http://127.0.0.1:8123");
        assert_eq!(u.database.as_deref(), Some("fleet"));
        assert_eq!(u.user.as_deref(), Some("tap"));
        let plain = ClickHouseUrl::parse("http://ch.example:8123").unwrap();
        assert_eq!((plain.database, plain.user), (None, None));
        assert!(ClickHouseUrl::parse("http://[2001:2::1]:8123/").is_ok());
        for (bad, says) in [
            ("ch:8123", "not an http URL"),
            ("https://ch:8443", "https is not built in"),
            ("http://ch", "HOST:PORT is needed"),
            ("http://ch:0", "HOST:PORT is needed"),
            ("http://ch:8123/db", "a path is not supported"),
            ("http://u:p@ch:8123", "credentials do not go in the URL"),
            ("http://ch:8123/?password=x", PASSWORD_ENV),
            ("http://ch:8123/?database=a;drop", "is not a name"),
            ("http://ch:8123/?db=x", "unknown parameter db"),
        ] {
            let e = ClickHouseUrl::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn the_readme_documents_the_ddl_that_runs() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md");
        for t in Table::ALL {
            let ddl = t.ddl(Some("xsktap"));
            assert!(readme.contains(&ddl), "README lacks, as it runs:\n{ddl}");
        }
    }

    #[test]
    fn ddl_names_every_column_in_order() {
        for t in Table::ALL {
            let sql = t.ddl(Some("xsktap"));
            assert!(sql.starts_with(&format!(
                "CREATE TABLE IF NOT EXISTS `xsktap`.`{}` (",
                t.name()
            )));
            let mut last = 0;
            for (name, ty) in t.columns() {
                let at = sql.find(&format!("`{name}` {ty}")).expect("column in DDL");
                assert!(at > last, "{name} in order");
                last = at;
            }
            assert!(sql.contains("ENGINE = MergeTree"));
        }
    }
}
