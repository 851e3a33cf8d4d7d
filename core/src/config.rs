//! Validated capture configuration, and the pure parsers the CLI uses to build it.

use std::fmt;

use crate::feed::FeedSpec;
use crate::filter::Expr;
use crate::monitor::MonitorFormat;
use crate::timestamps::TimeStampType;
use crate::types::{XdpMode, ZeroCopy};

/// A configuration value that is not valid; the message names the value,
/// what is accepted, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

type Result<T> = std::result::Result<T, ConfigError>;

/// Default snapshot length, as tcpdump's.
pub const DEFAULT_SNAPLEN: u32 = 262_144;
/// Default size of the fill and RX rings. Large, because the rings are what
/// absorbs a worker's stalls (a page fault, a slow write, a preemption): at
/// 2 Mpps, 16384 frames are 8 ms of slack, where 4096 lost frames on the
/// bench's test bed. The UMEM holds twice the ring: 128 MiB per queue with
/// 4096-byte frames.
pub const DEFAULT_RING_SIZE: u32 = 16384;
/// Default UMEM frame size.
pub const DEFAULT_FRAME_SIZE: u32 = 4096;
/// Descriptors taken from the RX ring at a time.
pub const DEFAULT_BATCH_SIZE: u32 = 64;

/// The file format of a capture's output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// Classic pcap, nanosecond timestamps (the default, as tcpdump's).
    #[default]
    Pcap,
    /// pcapng: one interface per queue, drop counts and statistics blocks.
    Pcapng,
}

/// What a capture does when its disk is full (`--on-disk-full`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DiskFullPolicy {
    /// Close the file valid and stop, exit 1.
    #[default]
    Stop,
    /// Delete this capture's oldest file and go on (rotated output only).
    OverwriteOldest,
    /// Go on capturing and counting; write again once there is room.
    DropAndCount,
}

/// Everything a capture needs, checked by [`CaptureConfig::validate`].
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// Interface to capture on.
    pub iface: String,
    /// RX queues to capture; `None` means every RX queue of the interface.
    pub queues: Option<Vec<u32>>,
    /// CPUs to pin the workers to, one per queue in order; `None` spreads
    /// the workers over the CPUs this process may run on.
    pub cores: Option<Vec<usize>>,
    /// How to attach the XDP program.
    pub xdp_mode: XdpMode,
    /// Zero-copy policy.
    pub zero_copy: ZeroCopy,
    /// UMEM frame size (2048 or 4096).
    pub frame_size: u32,
    /// Fill and RX ring size (power of two, 64..=32768).
    pub ring_size: u32,
    /// Bytes of each frame kept in the pcap (1..=262144).
    pub snaplen: u32,
    /// Stop after exactly this many packets are handed to the sink.
    pub count: Option<u64>,
    /// Descriptors taken from the RX ring at a time.
    pub batch_size: u32,
    /// Frames to capture (evaluated in the XDP program); `None` takes every frame.
    pub filter: Option<Expr>,
    /// One line per packet on standard output, in this format.
    pub monitor: Option<MonitorFormat>,
    /// Slots in each worker's flow table (memory is bounded by this).
    pub flow_table_size: usize,
    /// Workers never sleep (one core busy per queue, lower latency) and run
    /// their queue's NAPI from their own core where the kernel names one
    /// (preferred busy polling; see the runtime's `Capture::busy_poll_without_napi`).
    pub busy_poll: bool,
    /// Wake-up coalescing: while frames flow, a worker that finds its ring
    /// empty naps this many microseconds instead of waiting in poll(2), so
    /// the kernel never has to wake it per frame; 0 waits in poll(2) always.
    pub coalesce_usecs: u32,
    /// Owner (user id, group id) given to the files the capture creates,
    /// when it runs as another user once started (`-Z`).
    pub file_owner: Option<(u32, u32)>,
    /// The output's file format.
    pub format: OutputFormat,
    /// The filter as the user gave it, for file headers (pcapng's `if_filter`).
    pub filter_text: String,
    /// What to do when the disk is full.
    pub on_disk_full: DiskFullPolicy,
    /// Merge the queues' records by timestamp, holding each this long
    /// (`--sort-window`); 0 writes them as they come.
    pub sort_window_ns: u64,
    /// Which clock stamps the frames (`-j`).
    pub time_stamp: TimeStampType,
    /// `xsktap feed`: the feeds; the XDP program then takes only their frames.
    pub feeds: Vec<FeedSpec>,
    /// How long a message missing on one line of an A/B feed may still come
    /// on the other before it is a gap of the feed.
    pub ab_window_ns: u64,
    /// Join the feeds' multicast groups on the interface for the capture's life.
    pub join: bool,
    /// Ask this retransmission server for the feeds' gaps (`--rerequest`).
    pub rerequest: Option<std::net::SocketAddr>,
    /// Write the feeds' merged messages here (BinaryFILE layout; `--messages`).
    pub messages: Option<std::path::PathBuf>,
    /// Measure ITCH exchange-to-tap latency, the exchange this far from UTC
    /// (ns; `--itch-utc-offset`).
    pub itch_utc_offset_ns: Option<i64>,
    /// A feed line with no packet (heartbeats included) for this long is
    /// reported silent (`--line-silent-ms`).
    pub line_silent_ns: u64,
    /// Publish each feed's merged stream over iceoryx2 (`--publish`).
    pub publish: Option<Publish>,
    /// Drop frames above this rate per key in the XDP program (`--limit-pps`).
    pub rate_limit: Option<crate::limit::RateLimit>,
    /// Flow export (`--export-clickhouse`, `--export-ipfix`): the
    /// exporter's queue and the timeouts.
    pub flow_export: Option<crate::flows::FlowExport>,
}

/// How the feeds are published over iceoryx2 (one service per feed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    /// The largest buffer a subscriber may ask for, in samples
    /// (`--publish-buffer`): what a reliable subscriber gets.
    pub buffer: usize,
    /// Subscribers each feed's service admits at once.
    pub subscribers: usize,
    /// The most message bytes one sample holds, with their 2-byte lengths
    /// (`--publish-sample-bytes`): the data segment is sized for it; a longer
    /// message is counted, not published.
    pub sample_bytes: usize,
}

impl Default for Publish {
    fn default() -> Publish {
        Publish {
            buffer: 16_384,
            subscribers: 8,
            sample_bytes: 512,
        }
    }
}

/// Default wake-up coalescing, in microseconds. Measured on the bench's test
/// bed, 60-byte frames, alternating with 0: CPU per packet at 500 kpps with
/// `-w` about 20 % lower (742 → 590, 463 → 382 ns in two sets of three
/// pairs), the most the generator could offer 1.8–2.4
/// → 2.4–2.7 Mpps, one-way latency p50 19–23 → 71 µs, p99 unchanged
/// (bench/runs/2026-11-22c/NOTES.md, bench/coalesce-ab.sh).
pub const DEFAULT_COALESCE_USECS: u32 = 50;

/// Default slots in a worker's flow table.
pub const DEFAULT_FLOW_TABLE_SIZE: usize = 8192;

impl CaptureConfig {
    /// A configuration with every default for `iface`.
    pub fn new(iface: impl Into<String>) -> Self {
        CaptureConfig {
            iface: iface.into(),
            queues: None,
            cores: None,
            xdp_mode: XdpMode::Auto,
            zero_copy: ZeroCopy::Auto,
            frame_size: DEFAULT_FRAME_SIZE,
            ring_size: DEFAULT_RING_SIZE,
            snaplen: DEFAULT_SNAPLEN,
            count: None,
            batch_size: DEFAULT_BATCH_SIZE,
            filter: None,
            monitor: None,
            flow_table_size: DEFAULT_FLOW_TABLE_SIZE,
            busy_poll: false,
            coalesce_usecs: DEFAULT_COALESCE_USECS,
            file_owner: None,
            format: OutputFormat::Pcap,
            filter_text: String::new(),
            on_disk_full: DiskFullPolicy::Stop,
            sort_window_ns: 0,
            time_stamp: TimeStampType::Auto,
            feeds: Vec::new(),
            ab_window_ns: crate::feed::ab::DEFAULT_WINDOW_NS,
            join: false,
            rerequest: None,
            messages: None,
            itch_utc_offset_ns: None,
            line_silent_ns: crate::feed::tap::DEFAULT_LINE_SILENT_NS,
            publish: None,
            rate_limit: None,
            flow_export: None,
        }
    }

    /// Checks every value that can be checked without the kernel.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the value and the accepted range.
    pub fn validate(&self) -> Result<()> {
        if self.iface.is_empty() {
            return Err(ConfigError(
                "no interface given: pass one with -i IFACE".into(),
            ));
        }
        if self.frame_size != 2048 && self.frame_size != 4096 {
            return Err(ConfigError(format!(
                "frame size {} is not supported: use 2048 or 4096",
                self.frame_size
            )));
        }
        if !self.ring_size.is_power_of_two() || !(64..=32768).contains(&self.ring_size) {
            return Err(ConfigError(format!(
                "ring size {} is not a power of two between 64 and 32768",
                self.ring_size
            )));
        }
        if self.snaplen == 0 || self.snaplen > DEFAULT_SNAPLEN {
            return Err(ConfigError(format!(
                "snaplen {} is out of range: use 1..={DEFAULT_SNAPLEN}",
                self.snaplen
            )));
        }
        if self.count == Some(0) {
            return Err(ConfigError(
                "count 0 captures nothing: use -c 1 or more".into(),
            ));
        }
        if let Some(q) = &self.queues {
            if q.is_empty() {
                return Err(ConfigError("the queue list is empty".into()));
            }
        }
        if let (Some(q), Some(c)) = (&self.queues, &self.cores) {
            if c.len() != q.len() {
                return Err(ConfigError(format!(
                    "{} core(s) given for {} queue(s): give one core per queue",
                    c.len(),
                    q.len()
                )));
            }
        }
        if self.coalesce_usecs > 10_000 {
            return Err(ConfigError(format!(
                "--coalesce-usecs {} is more than 10000 (10 ms); the rings would fill while the worker naps",
                self.coalesce_usecs
            )));
        }
        if self.batch_size == 0 || self.batch_size > self.ring_size {
            return Err(ConfigError(format!(
                "batch size {} must be between 1 and the ring size {}",
                self.batch_size, self.ring_size
            )));
        }
        Ok(())
    }
}

/// Parses a list such as `0,2,4-7` into sorted, distinct numbers.
///
/// # Errors
/// A message naming the part that is not a number or a range.
pub fn parse_list(text: &str) -> std::result::Result<Vec<u32>, String> {
    let mut out = expand_list(text)?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Parses a list like `parse_list`, keeping the order given (`3,1` is 3
/// then 1) and refusing a number given twice.
///
/// # Errors
/// A message naming the part that is not a number or a range, or the
/// number given twice.
pub fn parse_ordered_list(text: &str) -> std::result::Result<Vec<u32>, String> {
    let out = expand_list(text)?;
    let mut seen = out.clone();
    seen.sort_unstable();
    if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("{} appears twice in {text:?}", w[0]));
    }
    Ok(out)
}

/// The numbers of a list, ranges expanded, in the order written.
fn expand_list(text: &str) -> std::result::Result<Vec<u32>, String> {
    let mut out: Vec<u32> = Vec::new();
    for part in text.split(',').map(str::trim) {
        let bad = || format!("{part:?} in {text:?} is not a number or a range like 2-5");
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.trim().parse().map_err(|_| bad())?;
                let b: u32 = b.trim().parse().map_err(|_| bad())?;
                if a > b || b - a > 4096 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse() {
        assert_eq!(parse_list("0").unwrap(), vec![0]);
        assert_eq!(parse_list("3,1,1-2").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_list(" 4 - 6 ,0").unwrap(), vec![0, 4, 5, 6]);
        assert!(parse_list("").is_err());
        assert!(parse_list("a").unwrap_err().contains("\"a\""));
        assert!(parse_list("5-2").is_err());
        assert!(parse_list("1,").is_err());
        assert_eq!(parse_ordered_list("3,1,5-6").unwrap(), vec![3, 1, 5, 6]);
        assert!(parse_ordered_list("1,0-2")
            .unwrap_err()
            .contains("1 appears twice"));
    }

    #[test]
    fn validation_names_the_value() {
        let ok = CaptureConfig::new("eth9");
        assert!(ok.validate().is_ok());
        let mut c = ok.clone();
        c.frame_size = 3000;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("frame size 3000"));
        let mut c = ok.clone();
        c.ring_size = 1000;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("ring size 1000"));
        let mut c = ok.clone();
        c.snaplen = 0;
        assert!(c.validate().unwrap_err().to_string().contains("snaplen 0"));
        let mut c = ok.clone();
        c.queues = Some(vec![0, 1]);
        c.cores = Some(vec![0]);
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("1 core(s) given for 2 queue(s)"));
        let mut c = ok;
        c.count = Some(0);
        assert!(c.validate().is_err());
    }
}
