//! Every flag, defined once; raw arguments become a validated engine config here.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use xsktap::{FileRotation, Output};
use xsktap_core::config::{
    parse_list, parse_ordered_list, DiskFullPolicy, OutputFormat, DEFAULT_COALESCE_USECS,
    DEFAULT_FLOW_TABLE_SIZE, DEFAULT_FRAME_SIZE, DEFAULT_RING_SIZE, DEFAULT_SNAPLEN,
};
use xsktap_core::feed::{FeedSpec, Feeds};
use xsktap_core::filter::flags::{parse_net, FilterFlags, FlagProtocol};
use xsktap_core::filter::{parse_expr, Expr, Program, MAX_TESTS};
use xsktap_core::limit::{LimitBy, RateLimit};
use xsktap_core::monitor::MonitorFormat;
use xsktap_core::rotation::{parse_file_size, DiskLimit, Rotation};
use xsktap_core::timestamps::TimeStampType;
use xsktap_core::{CaptureConfig, XdpMode, ZeroCopy};

/// Capture packets at line rate through AF_XDP.
#[derive(Debug, Parser)]
#[command(name = "xsktap", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print libbpf's messages and the verifier's log (also XSKTAP_DEBUG=1); kept quiet otherwise.
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Capture the chosen RX queues of an interface, to a pcap file or standard output.
    ///
    /// Frames on the captured queues that the filter selects are redirected to xsktap and do
    /// not reach the host's network stack while the capture runs; other frames and queues are
    /// untouched.
    Capture(CaptureArgs),
    /// Print one line per packet (or one JSON object per line with --json).
    ///
    /// Like capture, the selected frames do not reach the host's stack while it runs.
    Monitor(MonitorArgs),
    /// A refreshing view of rates, protocol mix and top talkers (or JSON snapshots with --json).
    ///
    /// Like capture, the selected frames do not reach the host's stack while it runs.
    Top(TopArgs),
    /// A market-data tap: MoldUDP64 feeds sequenced, gaps and recoveries reported as they
    /// happen, A and B lines arbitrated into one stream.
    ///
    /// Only the feeds' UDP frames (destination address and port) are redirected to xsktap;
    /// everything else reaches the host stack.
    Feed(FeedArgs),
    /// What this kernel (and an interface) support, and what a capture would use.
    ///
    /// Probes XDP metadata, the metadata kfuncs, multi-buffer, live frames, zero-copy, native
    /// XDP, busy polling, memlock and capabilities; attaches nothing.
    Features(FeaturesArgs),
}

#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// The interface a capture would run on.
    #[arg(short = 'i', long = "interface")]
    pub iface: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum XdpModeArg {
    Auto,
    Native,
    Generic,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ZeroCopyArg {
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TimeStampArg {
    Auto,
    Host,
    #[value(name = "host_lowprec", alias = "host-lowprec")]
    HostLowprec,
    Adapter,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LimitByArg {
    Src,
    Dst,
    Flow,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Pcap,
    Pcapng,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProtocolArg {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
}

/// Options every command shares: where to capture and how.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Interface to capture on.
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IFACE",
        required_unless_present = "read"
    )]
    pub iface: Option<String>,
    /// Read packets from a pcap or pcapng file instead of an interface (no privileges
    /// needed): the same filter, statistics and outputs.
    #[arg(
        short = 'r',
        long = "read",
        value_name = "FILE",
        conflicts_with = "iface"
    )]
    pub read: Option<PathBuf>,
    /// Stop after exactly COUNT packets.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,
    /// Stop after SECS seconds (fractions allowed).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    pub duration: Option<f64>,
    /// RX queues to capture, such as `0,2-3` (default: every RX queue).
    #[arg(long, value_name = "LIST")]
    pub queues: Option<String>,
    /// CPUs to pin the workers to, one per queue in the order of the queues (`--queues 0,1 --cores 3,1`: queue 0 on CPU 3, queue 1 on CPU 1; default: away from the CPUs that receive the queues' frames, moved when frames show where that is; see "Placement without --cores" in the README).
    #[arg(long, value_name = "CPUS")]
    pub cores: Option<String>,
    /// How to attach the XDP program: native (driver), generic, or auto (native, else generic).
    #[arg(long, value_enum, default_value = "auto")]
    pub xdp_mode: XdpModeArg,
    /// Zero-copy AF_XDP: auto (if the driver supports it), on (or fail), off (copy mode).
    #[arg(long, value_enum, default_value = "auto")]
    pub zero_copy: ZeroCopyArg,
    /// Timestamps, as tcpdump's -j: adapter (the NIC's own receive stamps, through its PTP
    /// hardware clock; fails where it has none), host (when the XDP program runs, per frame),
    /// host_lowprec (when the worker takes the frame's batch: one clock read per batch, none in
    /// the XDP program), or auto (adapter where the NIC can, else host). Start line and summary
    /// say which per queue.
    #[arg(
        short = 'j',
        long = "time-stamp-type",
        value_enum,
        default_value = "auto",
        conflicts_with = "read"
    )]
    pub time_stamp_type: TimeStampArg,
    /// UMEM frame size: 2048 or 4096.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_FRAME_SIZE)]
    pub frame_size: u32,
    /// Fill and RX ring size, a power of two from 64 to 32768. The UMEM holds twice as
    /// many frames (128 MiB per queue by default); smaller rings lose frames sooner
    /// when a worker stalls.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RING_SIZE)]
    pub ring_size: u32,
    /// Workers never sleep (lower latency, one busy core per queue) and, where the driver
    /// has a NAPI for the queue, run its receive work on their own cores (preferred busy
    /// polling). Set the device's napi_defer_hard_irqs and gro_flush_timeout too (xsktap
    /// says so if they are 0, and when the device has no NAPI to poll, as veth).
    #[arg(long)]
    pub busy_poll: bool,
    /// While frames flow, a worker that finds its ring empty naps USECS microseconds
    /// instead of waiting to be woken: far fewer wake-ups and less CPU per packet, at
    /// most USECS more latency. 0 wakes on every frame. Ignored with --busy-poll. Default
    /// 50, and 0 for `feed` (market data wants the latency, not the CPU).
    #[arg(long, value_name = "USECS")]
    pub coalesce_usecs: Option<u32>,
    /// Write a JSON summary to PATH at exit.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,
    /// No live statistics line on standard error.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// No anomaly alerts (rate spikes, traffic stopping, scans, new top talkers).
    #[arg(long)]
    pub no_alerts: bool,
    /// A rate spike is this many times its moving baseline (above 1).
    #[arg(long, value_name = "FACTOR", default_value_t = 4.0)]
    pub alert_spike_factor: f64,
    /// Rates below this many packets/s never spike, and traffic must have been
    /// above it to count as stopped.
    #[arg(long, value_name = "PPS", default_value_t = 10_000)]
    pub alert_min_pps: u64,
    /// Seconds a condition must hold before an alert starts, and fail before it ends.
    #[arg(long, value_name = "SECS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub alert_hold: u32,
    /// A SYN flood: more than this many TCP SYNs a second to one destination, ten or
    /// more for each handshake completed.
    #[arg(long, value_name = "PER_SEC", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub alert_syn_rate: u64,
    /// A scan: one source reaching more than N destination ports or hosts…
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(2..=65536))]
    pub alert_scan: u32,
    /// …within this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub alert_scan_secs: u32,
    /// Drop frames above N packets a second from one source (--limit-by: or to one
    /// destination, or of one flow) in the XDP program, before the capture or the host
    /// sees them; each dropped frame is counted, per source in the summary. Off by default:
    /// it changes the host's traffic. Only frames xsktap captures, unless --limit-all.
    #[arg(long, value_name = "N", conflicts_with = "read",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub limit_pps: Option<u64>,
    /// What --limit-pps counts a rate for: src (source address), dst (destination
    /// address) or flow (addresses, protocol and ports).
    #[arg(long, value_enum, default_value = "src", requires = "limit_pps")]
    pub limit_by: LimitByArg,
    /// With --limit-pps: limit every frame the interface receives on any queue, including
    /// those xsktap does not capture (other queues, frames the filter leaves to the host).
    #[arg(long, requires = "limit_pps")]
    pub limit_all: bool,
    /// Run CMD with `sh -c` for every alert that starts or ends, the alert as one JSON
    /// line on its standard input (also XSKTAP_ALERT_KIND, _SUBJECT and _STATE in its
    /// environment), its output on standard error: one at a time on a thread of its own,
    /// killed after 30 s; alerts arriving while 64 wait are skipped and counted.
    #[arg(long, value_name = "CMD", conflicts_with = "no_alerts")]
    pub alert_exec: Option<String>,
    /// Slots of each queue's flow table (rounded up to a power of two). A full table
    /// evicts its smallest flow (counted; with an export, the flow is exported then):
    /// size it above the flows a queue sees at once. About 100 bytes a slot.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_FLOW_TABLE_SIZE as u32,
          value_parser = clap::value_parser!(u32).range(16..=16_777_216))]
    pub flow_table_size: u32,
    /// Export flow records, per-queue statistics each second, events (alerts, feed
    /// gaps, start and stop) and feeds' latency histograms to ClickHouse:
    /// http://HOST:PORT[/?database=DB&user=USER], the password in
    /// XSKTAP_CLICKHOUSE_PASSWORD. Tables `flows`, `stats`, `events`, `latency`.
    /// With -r FILE: the file's flows, timed by the file, one statistics row and the
    /// events.
    #[arg(long, value_name = "URL")]
    pub export_clickhouse: Option<String>,
    /// Export flow records as IPFIX (RFC 7011) over UDP to a collector at HOST:PORT
    /// (nfcapd, GoFlow2, nProbe…), templates sent again every 30 s.
    #[arg(long, value_name = "HOST:PORT")]
    pub export_ipfix: Option<String>,
    /// The `host` every exported row carries (default: this machine's host name).
    #[arg(long, value_name = "NAME")]
    pub export_name: Option<String>,
    /// Create the database and the tables if they do not exist.
    #[arg(long, requires = "export_clickhouse")]
    pub export_create: bool,
    /// Keep batches ClickHouse has not taken yet in DIR (bounded by --export-spool-size)
    /// instead of memory: they survive an outage longer, and the next run sends what
    /// this one could not.
    #[arg(long, value_name = "DIR", requires = "export_clickhouse")]
    pub export_spool: Option<PathBuf>,
    /// The spool's bound (tcpdump -C units: a plain number is MB; k, m, g suffixes);
    /// rows beyond it are dropped and counted.
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "1g",
        requires = "export_clickhouse"
    )]
    pub export_spool_size: String,
    /// Capture even when ClickHouse cannot be reached or refuses at start (its rows wait
    /// in the spool until it answers).
    #[arg(long, requires = "export_clickhouse")]
    pub export_optional: bool,
    /// Export an active flow's counts every SECS seconds.
    #[arg(long, value_name = "SECS", default_value_t = xsktap_core::flows::DEFAULT_ACTIVE_SECS,
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub export_active_timeout: u32,
    /// Export and forget a flow silent for SECS seconds.
    #[arg(long, value_name = "SECS", default_value_t = xsktap_core::flows::DEFAULT_IDLE_SECS,
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub export_idle_timeout: u32,
    /// Serve the live dashboard, /ws, /metrics and /api/summary on ADDR:PORT (PORT alone
    /// means 127.0.0.1:PORT). A non-loopback address requires a token on every request.
    #[arg(long, value_name = "ADDR:PORT")]
    pub serve: Option<String>,
    /// The token for --serve (at least 16 URL-safe characters); generated and printed when
    /// --serve has a non-loopback address and none is given.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "XSKTAP_SERVE_TOKEN",
        hide_env_values = true
    )]
    pub serve_token: Option<String>,
    /// Once the XDP program is attached and the first file open, run as USER (and its
    /// groups) with no capability left, as tcpdump's -Z; files are created as USER.
    #[arg(short = 'Z', long = "relinquish-privileges", value_name = "USER")]
    pub user: Option<String>,
}

/// Which frames to take, evaluated in the XDP program: flags and a tcpdump-style expression,
/// all of which must match.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only this protocol.
    #[arg(long, value_enum)]
    pub protocol: Option<ProtocolArg>,
    /// Source address or CIDR network.
    #[arg(long, value_name = "ADDR[/LEN]")]
    pub src_ip: Option<String>,
    /// Destination address or CIDR network.
    #[arg(long, value_name = "ADDR[/LEN]")]
    pub dst_ip: Option<String>,
    /// Source or destination address or CIDR network.
    #[arg(long, value_name = "ADDR[/LEN]")]
    pub host: Option<String>,
    /// Source port (TCP, UDP, SCTP).
    #[arg(long, value_name = "PORT")]
    pub src_port: Option<u16>,
    /// Destination port.
    #[arg(long, value_name = "PORT")]
    pub dst_port: Option<u16>,
    /// Source or destination port.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// VLAN id (any tag of the frame).
    #[arg(long, value_name = "ID")]
    pub vlan: Option<u16>,
    /// Filter expression in tcpdump's syntax, such as `udp and port 53` (see the README for the subset).
    #[arg(value_name = "EXPRESSION", num_args = 0..)]
    pub expression: Vec<String>,
}

impl FilterArgs {
    /// The filter the flags and the expression ask for, and its text for
    /// display. Flag values are parsed as what they are and become tests of
    /// their own: they are never pasted into the expression.
    pub fn filter(&self) -> anyhow::Result<(Option<Expr>, String)> {
        let net =
            |flag: &str, v: &Option<String>| v.as_deref().map(|v| parse_net(flag, v)).transpose();
        let flags = FilterFlags {
            protocol: self.protocol.map(|p| match p {
                ProtocolArg::Tcp => FlagProtocol::Tcp,
                ProtocolArg::Udp => FlagProtocol::Udp,
                ProtocolArg::Icmp => FlagProtocol::Icmp,
                ProtocolArg::Icmpv6 => FlagProtocol::Icmp6,
            }),
            src: net("--src-ip", &self.src_ip)?,
            dst: net("--dst-ip", &self.dst_ip)?,
            host: net("--host", &self.host)?,
            src_port: self.src_port,
            dst_port: self.dst_port,
            port: self.port,
            vlan: self.vlan,
        };
        let expression = self.expression.join(" ");
        let filter = Expr::and(flags.expr()?, parse_expr(&expression)?);
        let flags_text = flags.text();
        let text = match (flags_text.is_empty(), expression.trim().is_empty()) {
            (_, true) => flags_text,
            (true, false) => expression,
            (false, false) => format!("{flags_text} and ({expression})"),
        };
        Ok((filter, text))
    }
}

/// Spreading the output over files (tcpdump's -C, -G, -W, -z).
#[derive(Debug, Args)]
pub struct RotationArgs {
    /// Start a new file before the current one would pass SIZE (millions of bytes, or
    /// 50k, 100m, 2g for KiB, MiB, GiB): out.pcap, out.pcap1, out.pcap2, …
    #[arg(short = 'C', value_name = "SIZE")]
    pub file_size: Option<String>,
    /// Start a new file every SECS seconds; -w may hold strftime escapes (-w %Y%m%d-%H%M%S.pcap).
    #[arg(short = 'G', value_name = "SECS")]
    pub rotate_secs: Option<u64>,
    /// With -C, a ring of N files (out.pcap0 … out.pcapN-1), the oldest overwritten; with
    /// -G alone, stop after N files.
    #[arg(short = 'W', value_name = "N")]
    pub files: Option<u32>,
    /// Run CMD with each closed file's name as its argument (such as gzip), one at a time,
    /// off the capture's CPUs; failures are reported, not fatal.
    #[arg(short = 'z', value_name = "CMD")]
    pub hook: Option<String>,
    /// With -G, start files on multiples of SECS on the clock (-G 60: every minute at :00).
    #[arg(long)]
    pub align: bool,
    /// Keep this capture's files within BYTES (500m, 20g) or PCT% of their file system,
    /// deleting its oldest files as needed (never any other file).
    #[arg(long, value_name = "BYTES|PCT%")]
    pub max_disk: Option<String>,
    /// When the disk is full: stop (close the file valid, exit 1), overwrite-oldest (delete
    /// this capture's oldest file and go on; with -C or -G), or drop-and-count (count the
    /// frames not written and write again once there is room).
    #[arg(long, value_enum, default_value = "stop")]
    pub on_disk_full: DiskFullArg,
    /// Merge the queues' records by timestamp, holding each MS milliseconds (1 to 10000):
    /// timestamps in the files then never go backwards; a record later than that is
    /// written at once and counted out_of_order.
    #[arg(long, value_name = "MS")]
    pub sort_window: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiskFullArg {
    Stop,
    OverwriteOldest,
    DropAndCount,
}

/// The output's format: `--format`, else pcapng for a `.pcapng` name, else pcap.
fn choose_format(req: &mut Request, format: Option<FormatArg>) {
    let named = match &req.output {
        Output::File(p) | Output::Rotating(p, _) => p.extension().is_some_and(|e| e == "pcapng"),
        _ => false,
    };
    req.config.format = match (format, named) {
        (Some(FormatArg::Pcapng), _) | (None, true) => OutputFormat::Pcapng,
        _ => OutputFormat::Pcap,
    };
}

impl RotationArgs {
    /// The rotation asked for, if any, checked against the output.
    fn rotation(&self, output: Output) -> anyhow::Result<(Output, Option<String>)> {
        let rotation = Rotation {
            size: self
                .file_size
                .as_deref()
                .map(|t| parse_file_size("-C", t))
                .transpose()?,
            interval_secs: self.rotate_secs,
            files: self.files,
            align: self.align,
        };
        rotation.validate()?;
        let max_disk = self.max_disk.as_deref().map(DiskLimit::parse).transpose()?;
        if !rotation.is_active() {
            if max_disk.is_some() || self.hook.is_some() {
                anyhow::bail!("--max-disk and -z act on rotated files: add -C SIZE or -G SECS");
            }
            return Ok((output, None));
        }
        let Output::File(path) = output else {
            anyhow::bail!("-C and -G write a sequence of files: give their name with -w FILE");
        };
        if let (Some(DiskLimit::Bytes(limit)), Some(size)) = (max_disk, rotation.size) {
            if limit < 2 * size {
                anyhow::bail!(
                    "--max-disk {} holds less than two -C files of {size} bytes: the file being written is never deleted, so give at least {}",
                    self.max_disk.as_deref().unwrap_or_default(),
                    2 * size
                );
            }
        }
        if let Some(hook) = &self.hook {
            if hook.trim().is_empty() {
                anyhow::bail!("-z needs a program to run, such as -z gzip");
            }
        }
        let note = (rotation.interval_secs.is_some() && !path.to_string_lossy().contains('%'))
            .then(|| {
                format!(
                    "-G with -w {} (no strftime escape): every period's file has the same name and replaces the previous one; use a name such as {}-%Y%m%d-%H%M%S.pcap",
                    path.display(),
                    path.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default()
                )
            });
        let files = FileRotation {
            rotation,
            max_disk,
            hook: self.hook.clone(),
        };
        Ok((Output::Rotating(path, files), note))
    }
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Where the packets are written, and how.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Write packets to this file (nanosecond timestamps); `-` for standard output (not
    /// with monitor, whose lines take it).
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Bytes of each packet to keep; longer packets keep their original length in the file. 0 means 262144.
    #[arg(short = 's', long = "snaplen", value_name = "SNAPLEN", default_value_t = DEFAULT_SNAPLEN)]
    pub snaplen: u32,
    /// File format: pcap (default) or pcapng (one interface per queue, drop counts and
    /// statistics; chosen by a .pcapng name too).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    #[command(flatten)]
    pub rotation: RotationArgs,
}

impl OutputArgs {
    /// The request for `common` and `filter` with this output.
    fn request(self, common: CommonArgs, filter: &FilterArgs) -> anyhow::Result<Request> {
        let req = request(common, filter, self.write, self.snaplen)?;
        let mut req = rotate(req, &self.rotation)?;
        choose_format(&mut req, self.format);
        Ok(req)
    }
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct FeedArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// A MoldUDP64 feed on one line: UDP to ADDR:PORT ([V6ADDR]:PORT for IPv6). Repeat for
    /// more feeds.
    #[arg(long = "moldudp64", value_name = "ADDR:PORT")]
    pub moldudp64: Vec<String>,
    /// A MoldUDP64 feed on an A and a B line, arbitrated into one stream: the first copy of
    /// each message wins, a gap is one only when both lines miss it. Repeat for more feeds.
    #[arg(long = "ab", value_name = "NAME=A_ADDR:PORT,B_ADDR:PORT")]
    pub ab: Vec<String>,
    /// How long a message missing on one line may still come on the other before it is a
    /// gap of the feed, in microseconds.
    #[arg(long, value_name = "USECS", default_value_t = 1000)]
    pub ab_window_us: u64,
    /// Join the feeds' multicast groups on the interface (IGMP/MLD) for the capture's life,
    /// so that a switch forwards them; without it the port must already carry them (a tap
    /// or SPAN port).
    #[arg(long)]
    pub join: bool,
    /// Ask this MoldUDP64 retransmission server for the messages of gaps still open after
    /// 5 ms (requests split to fit an answer, at most 200 a second and 64 waiting, each
    /// tried 3 times 200 ms apart, then reported).
    #[arg(long, value_name = "ADDR:PORT")]
    pub rerequest: Option<String>,
    /// Also write each feed's merged messages, in order and each once, in the BinaryFILE
    /// layout (u16 big-endian length, then the message) that ITCH replay tools read: FILE for
    /// one feed, FILE.1, FILE.2, … in the order given for more.
    #[arg(long, value_name = "FILE")]
    pub messages: Option<PathBuf>,
    /// Measure the exchange-to-tap latency of ITCH 5.0 messages (receive time minus the
    /// message's own timestamp, ns since the exchange's midnight), the exchange being HOURS
    /// from UTC: -5 for New York in winter, -4 in summer.
    #[arg(long, value_name = "HOURS", allow_negative_numbers = true)]
    pub itch_utc_offset: Option<f64>,
    /// Report a line silent when it brings no packet (not even a heartbeat) for this
    /// long, and back when it does again; 0: never.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub line_silent_ms: u64,
    /// Publish each feed's merged stream over iceoryx2 shared memory, one service per feed
    /// (xsktap/feed/NAME): messages in the order taken, gap, recovery, session and line
    /// notices among them. Subscribers never slow the capture: one that falls behind loses
    /// its oldest samples, and counts them exactly (see examples/feed_consumer.rs).
    #[arg(long)]
    pub publish: bool,
    /// With --publish: the largest buffer a subscriber may ask for, in samples (what a
    /// reliable subscriber gets).
    #[arg(long, value_name = "SAMPLES", default_value_t = 16384)]
    pub publish_buffer: usize,
    /// With --publish: the most message bytes one sample holds, with their 2-byte lengths (the
    /// shared memory is sized for it): a frame's messages that follow one another go out as one
    /// sample up to this; a longer message is counted in the summary and not published.
    #[arg(long, value_name = "BYTES", default_value_t = 512)]
    pub publish_sample_bytes: usize,
    /// With --publish: subscribers each feed admits at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub publish_subscribers: usize,
    /// Events as one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
}

impl FeedArgs {
    pub fn into_request(self) -> anyhow::Result<(Request, bool)> {
        if self.common.read.is_some() && (self.join || self.rerequest.is_some()) {
            anyhow::bail!(
                "--join and --rerequest talk to the network: they cannot be used with -r FILE"
            );
        }
        let mut feeds = Vec::new();
        for arg in &self.moldudp64 {
            feeds.push(FeedSpec::single(arg).map_err(|e| anyhow::anyhow!(e))?);
        }
        for arg in &self.ab {
            feeds.push(FeedSpec::ab(arg).map_err(|e| anyhow::anyhow!(e))?);
        }
        if feeds.is_empty() {
            anyhow::bail!("feed needs at least one --moldudp64 ADDR:PORT or --ab NAME=A_ADDR:PORT,B_ADDR:PORT");
        }
        if !(1..=10_000_000).contains(&self.ab_window_us) {
            anyhow::bail!(
                "--ab-window-us {}: give 1 to 10000000 microseconds",
                self.ab_window_us
            );
        }
        // A line given twice is refused here too, before anything is loaded.
        Feeds::new(feeds.clone(), 0).map_err(|e| anyhow::anyhow!(e))?;
        if self.join {
            if let Some((addr, _)) = feeds
                .iter()
                .flat_map(|f| f.lines.iter())
                .find(|(a, _)| !a.is_multicast())
            {
                anyhow::bail!(
                    "--join: {addr} is not a multicast group (224.0.0.0/4, ff00::/8); leave out --join for unicast feeds"
                );
            }
        }
        let coalesce_given = self.common.coalesce_usecs.is_some();
        let mut req = self.output.request(self.common, &self.filter)?;
        if req.output == Output::Stdout {
            anyhow::bail!(
                "feed events go to standard output, so -w - cannot share it: write the frames to a file with -w FILE"
            );
        }
        req.config.feeds = feeds;
        // A feed handler is judged by its latency: wake on every frame
        // unless asked otherwise.
        if !coalesce_given {
            req.config.coalesce_usecs = 0;
        }
        req.config.ab_window_ns = self.ab_window_us * 1_000;
        req.config.line_silent_ns = self
            .line_silent_ms
            .checked_mul(1_000_000)
            .filter(|_| self.line_silent_ms <= 3_600_000)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--line-silent-ms {}: give 0 (never) to 3600000 milliseconds",
                    self.line_silent_ms
                )
            })?;
        if self.publish {
            if !(1..=1 << 22).contains(&self.publish_buffer) {
                anyhow::bail!(
                    "--publish-buffer {}: give 1 to 4194304 samples",
                    self.publish_buffer
                );
            }
            if !(1..=64).contains(&self.publish_subscribers) {
                anyhow::bail!(
                    "--publish-subscribers {}: give 1 to 64",
                    self.publish_subscribers
                );
            }
            if !(1..=65_535).contains(&self.publish_sample_bytes) {
                anyhow::bail!(
                    "--publish-sample-bytes {}: give 1 to 65535 bytes",
                    self.publish_sample_bytes
                );
            }
            req.config.publish = Some(xsktap_core::config::Publish {
                buffer: self.publish_buffer,
                subscribers: self.publish_subscribers,
                sample_bytes: self.publish_sample_bytes,
            });
        }
        req.config.join = self.join;
        if let Some(path) = &self.messages {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            if dir.is_some_and(|d| !d.is_dir()) {
                anyhow::bail!(
                    "--messages {}: its directory does not exist; choose a path in an existing directory",
                    path.display()
                );
            }
        }
        req.config.messages = self.messages.clone();
        req.config.itch_utc_offset_ns = match self.itch_utc_offset {
            None => None,
            Some(h) if h.is_finite() && (-12.0..=14.0).contains(&h) => {
                Some((h * 3_600e9).round() as i64)
            }
            Some(h) => anyhow::bail!(
                "--itch-utc-offset {h}: give the exchange's offset from UTC in hours, -12 to 14"
            ),
        };
        req.config.rerequest = self
            .rerequest
            .as_deref()
            .map(|s| {
                s.parse::<std::net::SocketAddr>()
                    .ok()
                    .filter(|a| a.port() != 0 && !a.ip().is_unspecified())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "--rerequest {s:?}: expected the retransmission server's ADDR:PORT, such as 198.18.0.1:26500"
                        )
                    })
            })
            .transpose()?;
        // The events are the live view; no stats line on top of them.
        req.quiet = true;
        Ok((req, self.json))
    }
}

#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Print one JSON snapshot per line instead of a refreshing screen.
    #[arg(long)]
    pub json: bool,
    /// Seconds between refreshes.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub interval: f64,
    /// Rows in each top list.
    #[arg(long = "top", value_name = "N", default_value_t = 10)]
    pub top: usize,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// What the user asked for, validated.
pub struct Request {
    pub config: CaptureConfig,
    /// The detectors' thresholds; `None` with --no-alerts.
    pub alerts: Option<xsktap_core::alerts::WatchConfig>,
    /// `--alert-exec`: the shell command run per alert.
    pub alert_exec: Option<String>,
    pub output: Output,
    pub duration: Option<Duration>,
    pub summary_json: Option<std::path::PathBuf>,
    pub quiet: bool,
    pub filter_text: String,
    pub serve: Option<crate::serve::ServeConfig>,
    /// Things to say at start (a flag combination that may surprise).
    pub notes: Vec<String>,
    /// The user to run as once the capture runs (`-Z`).
    pub user: Option<xsktap::User>,
    /// `-r FILE`: read this file instead of capturing.
    pub read: Option<PathBuf>,
    /// `--export-*`: where flows, statistics and events go.
    pub export: Option<xsktap::export::ExportConfig>,
}

fn request(
    common: CommonArgs,
    filter: &FilterArgs,
    write: Option<PathBuf>,
    snaplen: u32,
) -> anyhow::Result<Request> {
    // A file read back is named by its file name where an interface would be.
    let source = match (&common.iface, &common.read) {
        (Some(iface), _) => iface.clone(),
        (None, Some(path)) => path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        (None, None) => String::new(),
    };
    let export = export_config(&common, &source)?;
    let mut config = CaptureConfig::new(source);
    config.queues = common
        .queues
        .map(|q| parse_list(&q).map_err(|e| anyhow::anyhow!("--queues: {e}")))
        .transpose()?;
    config.cores = common
        .cores
        .map(|c| {
            parse_ordered_list(&c)
                .map(|v| v.into_iter().map(|c| c as usize).collect())
                .map_err(|e| anyhow::anyhow!("--cores: {e}"))
        })
        .transpose()?;
    config.xdp_mode = match common.xdp_mode {
        XdpModeArg::Auto => XdpMode::Auto,
        XdpModeArg::Native => XdpMode::Native,
        XdpModeArg::Generic => XdpMode::Generic,
    };
    config.zero_copy = match common.zero_copy {
        ZeroCopyArg::Auto => ZeroCopy::Auto,
        ZeroCopyArg::On => ZeroCopy::On,
        ZeroCopyArg::Off => ZeroCopy::Off,
    };
    config.time_stamp = match common.time_stamp_type {
        TimeStampArg::Auto => TimeStampType::Auto,
        TimeStampArg::Host => TimeStampType::Host,
        TimeStampArg::HostLowprec => TimeStampType::HostLowprec,
        TimeStampArg::Adapter => TimeStampType::Adapter,
    };
    config.frame_size = common.frame_size;
    config.ring_size = common.ring_size;
    config.snaplen = if snaplen == 0 {
        DEFAULT_SNAPLEN
    } else {
        snaplen
    };
    config.count = common.count;
    config.flow_table_size = common.flow_table_size as usize;
    config.busy_poll = common.busy_poll;
    config.coalesce_usecs = common.coalesce_usecs.unwrap_or(DEFAULT_COALESCE_USECS);
    let (expr, filter_text) = filter.filter()?;
    config.filter = expr;
    config.filter_text = filter_text.clone();
    // A filter the XDP program cannot hold is a usage error too.
    Program::compile(config.filter.as_ref(), usize::from(MAX_TESTS))?;
    config.validate()?;
    let duration = match common.duration {
        None => None,
        Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Some(Duration::from_secs_f64(s)),
        Some(s) => anyhow::bail!("--duration {s} is not a positive number of seconds"),
    };
    let output = match write {
        None => Output::None,
        Some(p) if p.as_os_str() == "-" => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                anyhow::bail!(
                    "-w - writes binary pcap, and standard output is a terminal: pipe it into a program (| tcpdump -r -) or write a file with -w FILE"
                );
            }
            Output::Stdout
        }
        Some(p) => Output::File(p),
    };
    if let Some(path) = &common.summary_json {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = parent {
            if !dir.is_dir() {
                anyhow::bail!(
                    "--summary-json {}: directory {} does not exist; choose a path in an existing directory",
                    path.display(),
                    dir.display()
                );
            }
        }
    }
    let user = common
        .user
        .as_deref()
        .map(xsktap::User::lookup)
        .transpose()?;
    config.file_owner = user.as_ref().map(|u| (u.uid, u.gid));
    if common.read.is_some() && common.serve.is_some() {
        anyhow::bail!("--serve shows a live capture: it cannot be used with -r FILE");
    }
    let serve = match (&common.serve, common.serve_token) {
        (Some(addr), token) => Some(crate::serve::ServeConfig::from_args(addr, token)?),
        (None, Some(_)) if std::env::var_os("XSKTAP_SERVE_TOKEN").is_none() => {
            anyhow::bail!("--serve-token needs --serve ADDR:PORT")
        }
        (None, _) => None,
    };
    config.rate_limit = common.limit_pps.map(|pps| {
        let by = match common.limit_by {
            LimitByArg::Src => LimitBy::Source,
            LimitByArg::Dst => LimitBy::Destination,
            LimitByArg::Flow => LimitBy::Flow,
        };
        RateLimit::new(pps, by, common.limit_all).expect("clap checked the range")
    });
    let alerts = if common.no_alerts {
        None
    } else {
        let factor = common.alert_spike_factor;
        anyhow::ensure!(
            factor.is_finite() && factor > 1.0,
            "--alert-spike-factor {factor}: a spike is a rate above its baseline; give a factor above 1 (default 4)"
        );
        let mut watch = xsktap_core::alerts::WatchConfig::default();
        watch.rate.factor = factor;
        watch.rate.floor = common.alert_min_pps as f64;
        watch.rate.hold = common.alert_hold;
        watch.talker.hold = common.alert_hold;
        watch.syn.hold = common.alert_hold;
        watch.syn.rate = common.alert_syn_rate as f64;
        watch.scan.distinct = common.alert_scan as usize;
        watch.scan.window = common.alert_scan_secs;
        Some(watch)
    };
    if let Some(cmd) = &common.alert_exec {
        anyhow::ensure!(
            !cmd.trim().is_empty(),
            "--alert-exec needs a command to run, such as --alert-exec 'logger -t xsktap'"
        );
    }
    Ok(Request {
        config,
        alerts,
        alert_exec: common.alert_exec,
        output,
        duration,
        summary_json: common.summary_json,
        quiet: common.quiet,
        filter_text,
        serve,
        notes: Vec::new(),
        user,
        read: common.read,
        export,
    })
}

/// The export flags, checked (`None` without --export-clickhouse or
/// --export-ipfix); `source` (the interface, or the file read) is every
/// row's `interface`.
fn export_config(
    common: &CommonArgs,
    source: &str,
) -> anyhow::Result<Option<xsktap::export::ExportConfig>> {
    use xsktap_core::fleet::{ClickHouseUrl, Origin, PASSWORD_ENV};
    if common.export_clickhouse.is_none() && common.export_ipfix.is_none() {
        anyhow::ensure!(
            common.export_name.is_none(),
            "--export-name names the rows of an export: add --export-clickhouse URL or --export-ipfix HOST:PORT"
        );
        return Ok(None);
    }
    let clickhouse = common
        .export_clickhouse
        .as_deref()
        .map(ClickHouseUrl::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!(e))?;
    let ipfix = match &common.export_ipfix {
        None => None,
        Some(text) => {
            use std::net::ToSocketAddrs;
            let addr = text
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--export-ipfix {text}: not HOST:PORT (a collector's address and UDP port, such as 198.18.0.2:4739)"
                    )
                })?;
            Some(addr)
        }
    };
    let host = match &common.export_name {
        Some(name) => {
            anyhow::ensure!(
                !name.trim().is_empty() && !name.chars().any(char::is_control),
                "--export-name needs a name such as tap-ny4-01"
            );
            name.clone()
        }
        None => xsktap::export::host_name(),
    };
    let spool_bytes = parse_file_size("--export-spool-size", &common.export_spool_size)?;
    Ok(Some(xsktap::export::ExportConfig {
        clickhouse,
        password: std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()),
        ipfix,
        origin: Origin {
            host,
            interface: source.to_string(),
        },
        create: common.export_create,
        spool_dir: common.export_spool.clone(),
        spool_bytes,
        optional: common.export_optional,
        timeouts: xsktap_core::flows::ExportTimeouts {
            active: Duration::from_secs(u64::from(common.export_active_timeout)),
            idle: Duration::from_secs(u64::from(common.export_idle_timeout)),
        },
    }))
}

/// Applies the rotation flags to a request's output.
fn rotate(mut req: Request, rotation: &RotationArgs) -> anyhow::Result<Request> {
    req.config.on_disk_full = match rotation.on_disk_full {
        DiskFullArg::Stop => DiskFullPolicy::Stop,
        DiskFullArg::OverwriteOldest => DiskFullPolicy::OverwriteOldest,
        DiskFullArg::DropAndCount => DiskFullPolicy::DropAndCount,
    };
    if let Some(ms) = rotation.sort_window {
        if !(1..=10_000).contains(&ms) {
            anyhow::bail!("--sort-window {ms}: give 1 to 10000 milliseconds");
        }
        if matches!(req.output, Output::None) {
            anyhow::bail!("--sort-window orders the records written with -w FILE: add -w");
        }
        req.config.sort_window_ns = ms * 1_000_000;
    }
    let rotating = rotation.file_size.is_some() || rotation.rotate_secs.is_some();
    if rotation.on_disk_full == DiskFullArg::OverwriteOldest && !rotating {
        anyhow::bail!(
            "--on-disk-full overwrite-oldest deletes older files of the capture: add -C SIZE or -G SECS"
        );
    }
    let (output, note) = rotation.rotation(req.output)?;
    req.output = output;
    req.notes.extend(note);
    Ok(req)
}

impl CaptureArgs {
    pub fn into_request(self) -> anyhow::Result<Request> {
        self.output.request(self.common, &self.filter)
    }
}

impl MonitorArgs {
    pub fn into_request(self) -> anyhow::Result<Request> {
        let format = if self.json {
            MonitorFormat::Json
        } else {
            MonitorFormat::Text
        };
        let mut req = self.output.request(self.common, &self.filter)?;
        req.config.monitor = Some(format);
        if req.output == Output::Stdout {
            anyhow::bail!(
                "monitor lines go to standard output, so -w - cannot share it: write the pcap to a file with -w FILE"
            );
        }
        // The monitor's lines are the live view; no stats line on top of them.
        req.quiet = true;
        Ok(req)
    }
}

impl TopArgs {
    pub fn into_request(self) -> anyhow::Result<(Request, Duration, usize, bool)> {
        if !(self.interval.is_finite() && self.interval >= 0.1 && self.interval <= 3600.0) {
            anyhow::bail!(
                "--interval {} must be between 0.1 and 3600 seconds",
                self.interval
            );
        }
        if self.top == 0 || self.top > 1000 {
            anyhow::bail!("--top {} must be between 1 and 1000", self.top);
        }
        let mut req = request(self.common, &self.filter, None, DEFAULT_SNAPLEN)?;
        req.quiet = true;
        Ok((
            req,
            Duration::from_secs_f64(self.interval),
            self.top,
            self.json,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(args: &[&str]) -> String {
        let mut all = vec!["xsktap", "capture", "-i", "x"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all).unwrap().command {
            Command::Capture(c) => {
                let (expr, text) = c.filter.filter().unwrap();
                // The text reads back as the same filter.
                assert_eq!(expr, parse_expr(&text).unwrap(), "{text}");
                text
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_and_expression_combine() {
        assert_eq!(filter(&[]), "");
        assert_eq!(filter(&["udp", "port", "53"]), "udp port 53");
        assert_eq!(
            filter(&[
                "--protocol",
                "tcp",
                "--src-ip",
                "198.18.0.0/15",
                "--port",
                "80"
            ]),
            "tcp and src net 198.18.0.0/15 and port 80"
        );
        assert_eq!(
            filter(&["--host", "2001:2::1", "--vlan", "7", "not", "icmp6"]),
            "host 2001:2::1 and vlan 7 and (not icmp6)"
        );
        assert_eq!(
            filter(&["--dst-port", "1", "--src-port", "2"]),
            "src port 2 and dst port 1"
        );
    }

    #[test]
    fn flag_values_are_values_not_filter_text() {
        let mut all = vec!["xsktap", "capture", "-i", "x"];
        all.extend_from_slice(&["--protocol", "tcp", "--src-ip", "198.18.0.9 or udp"]);
        let Command::Capture(c) = Cli::try_parse_from(all).unwrap().command else {
            unreachable!()
        };
        let err = c.filter.filter().unwrap_err().to_string();
        assert!(err.contains("--src-ip \"198.18.0.9 or udp\""), "{err}");
    }
}
