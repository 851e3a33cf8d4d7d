//! The capture pipeline: config → load → sockets → attach → run → stop.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use xsktap_core::config::{DiskFullPolicy, OutputFormat};
use xsktap_core::feed::Feeds;
use xsktap_core::filter::Program;
use xsktap_core::flows::{FlowStats, FlowTable, Top};
use xsktap_core::latency::LatencyStats;
use xsktap_core::limit::{top_limited, LimitKey, RateLimit};
use xsktap_core::pcapng::Interface;
use xsktap_core::placement::Placement;

use crate::placer::{Current, Placer};
use xsktap_core::stats::{
    OutputCounters, QueueSnapshot, Snapshot, TrafficCounters, TrafficSnapshot, WorkerCounters,
};
use xsktap_core::worker::{FrameStep, Monitor, Pacer, Published, Shared, Worker};
use xsktap_core::{AttachedMode, BindMode, CaptureConfig};
use xsktap_sys::error::syscall_error;
use xsktap_sys::loader::{Stamps, XdpLink, XdpProgram};
use xsktap_sys::netdev;
use xsktap_sys::xsk::{XskConfig, XskSocket, XskStatsHandle};

use crate::files::{FileRotation, FileSet, Notices};
use crate::messages::MessageWriter;
use crate::pcapng::{self, Book, Ledger, LedgerEntry};
use crate::recovery::Rerequester;
use crate::stamps::{self, ClockKeeper, Timestamps};
use crate::worker::QueueWorker;
use crate::writer::{BatchWriter, Destination, DiskFull, WriterOutput, WriterReport};
use crate::{Error, Result};

/// Where captured frames go.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Nowhere: frames are counted only.
    None,
    /// A pcap file, created (or truncated) at start.
    File(PathBuf),
    /// pcap on standard output (`-w -`).
    Stdout,
    /// pcap files named after this `-w` name, one after another as
    /// `rotation` says (`-C`, `-G`, `-W`): see `xsktap_core::rotation`.
    Rotating(PathBuf, FileRotation),
}

/// Why a capture ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// `-c COUNT` packets were written.
    CountReached,
    /// The output closed or failed.
    OutputClosed,
    /// A worker thread ended with an error.
    WorkerFailed,
    /// The interface disappeared (deleted, or moved to another namespace).
    InterfaceGone,
    /// `-G` with `-W N`: the N files are written.
    FilesDone,
    /// The interface was taken down.
    InterfaceDown,
}

struct QueueHandle {
    queue: u32,
    /// The worker's CPU, moved by the placer.
    core: Arc<AtomicUsize>,
    mode: BindMode,
    counters: Arc<CachePadded<WorkerCounters>>,
    traffic: Arc<CachePadded<TrafficCounters>>,
    published: Arc<Published>,
    stats: XskStatsHandle,
    /// Failed reads of this queue's kernel and XDP program counters.
    read_errors: AtomicU64,
    /// What the output's writer wrote of this queue's frames, when some
    /// output counts them.
    output: Option<Arc<OutputCounters>>,
    /// Frames handed to an output that was left behind at the stop.
    abandoned: AtomicU64,
    thread: Option<JoinHandle<Result<()>>>,
}

impl QueueHandle {
    /// The value of a counter read, or `None` (unknown, never zero) when the
    /// read failed, which is counted.
    fn known<T>(&self, read: Result<T>) -> Option<T> {
        read.map_err(|_| self.read_errors.fetch_add(1, Ordering::Relaxed))
            .ok()
    }

    /// (written, written bytes, lost to the output) so far.
    fn output_counts(&self) -> (u64, u64, u64) {
        let c = &self.counters;
        let refused =
            c.sink_closed_drops.load(Ordering::Relaxed) + self.abandoned.load(Ordering::Relaxed);
        match &self.output {
            Some(out) => (
                out.written.load(Ordering::Relaxed),
                out.written_bytes.load(Ordering::Relaxed),
                refused + out.failed.load(Ordering::Relaxed),
            ),
            None => (
                c.written.load(Ordering::Relaxed),
                c.written_bytes.load(Ordering::Relaxed),
                refused,
            ),
        }
    }

    /// Frames handed to the output and neither written nor counted lost yet.
    fn in_flight(&self) -> u64 {
        let Some(out) = &self.output else {
            return 0;
        };
        let handed = self.counters.written.load(Ordering::Relaxed);
        handed.saturating_sub(
            out.written.load(Ordering::Relaxed) + out.failed.load(Ordering::Relaxed),
        )
    }
}

/// A running capture. Dropping it stops the workers and detaches the program;
/// [`Capture::stop`] does the same and returns the summary.
pub struct Capture {
    shared: Arc<Shared>,
    queues: Vec<QueueHandle>,
    writer: Option<BatchWriter>,
    monitor_writer: Option<BatchWriter>,
    link: Option<XdpLink>,
    program: XdpProgram,
    xdp_mode: AttachedMode,
    started: Instant,
    warnings: Vec<String>,
    /// Where the workers and housekeeping are now (the placer moves them).
    current: Arc<Current>,
    _placer: Option<Placer>,
    placement_reason: Option<String>,
    iface: String,
    ifindex: u32,
    notices: Arc<Notices>,
    /// Set when `-G` with `-W N` has written its N files.
    files_done: Option<Arc<AtomicBool>>,
    /// The counters a pcapng output's statistics blocks report, refreshed
    /// by every snapshot.
    ledger: Arc<Ledger>,
    timestamps: Timestamps,
    /// With hardware stamps: keeps the NIC clock's offset measured.
    _clock_keeper: Option<ClockKeeper>,
    feeds: Option<Arc<Feeds>>,
    /// `--join`: the multicast memberships held while capturing.
    membership: Option<xsktap_sys::mcast::Membership>,
    /// `--rerequest`: asks the retransmission server for the feeds' gaps.
    _rerequester: Option<Rerequester>,
    /// `--messages`: writes the feeds' merged messages.
    message_writer: Option<MessageWriter>,
    /// `--publish`: the iceoryx2 node of the feeds' publishers.
    publishing: Option<crate::publish::Publishing>,
}

/// The end of a capture: final counters and how the output went.
#[derive(Debug)]
pub struct Summary {
    /// Final counters of every queue.
    pub snapshot: Snapshot,
    /// Wall time from attach to stop.
    pub duration: Duration,
    /// The mode the XDP program ran in.
    pub xdp_mode: AttachedMode,
    /// The writer's report, when there was an output.
    pub writer: Option<WriterReport>,
    /// The monitor's writer report, when lines were printed.
    pub monitor_writer: Option<WriterReport>,
    /// Top flows and talkers over the whole capture.
    pub top: Top,
    /// Latency and sequence accounting, when generator frames arrived.
    pub latency: Option<LatencyStats>,
    /// Errors of workers that failed.
    pub worker_errors: Vec<Error>,
    /// Whether `-c` was reached.
    pub count_reached: bool,
    /// The rate limit the XDP program ran, if any.
    pub limit: Option<RateLimit>,
    /// The keys the rate limit dropped the most frames of, most first;
    /// `None` when the program's map could not be read.
    pub limited: Option<Vec<(LimitKey, u64)>>,
}

/// How many of the rate limit's keys a summary names.
pub const LIMITED_KEYS_SHOWN: usize = 10;

/// How long a stop waits for the workers to drain their rings, and then
/// again for the writers to write what they were handed.
pub const STOP_GRACE: Duration = Duration::from_secs(1);

/// Headroom the kernel keeps in front of every frame in the UMEM
/// (`XDP_PACKET_HEADROOM`).
const XDP_PACKET_HEADROOM: u32 = 256;

/// A warning when the interface's MTU allows frames larger than a UMEM frame
/// can hold and the sockets take no chains of buffers (no AF_XDP
/// multi-buffer): the kernel drops those (counted in `rx_dropped`).
fn mtu_warning(iface: &str, frame_size: u32) -> Option<String> {
    let mtu = u32::try_from(netdev::sysfs_number(iface, "mtu")?).ok()?;
    let room = frame_size - XDP_PACKET_HEADROOM;
    // Ethernet header and two VLAN tags on top of the MTU.
    let largest = mtu + 14 + 8;
    (largest > room).then(|| {
        format!(
            "{iface} has MTU {mtu}: frames over {room} bytes do not fit a {frame_size}-byte UMEM frame and are dropped (counted in rx_dropped); use --frame-size 4096 or a smaller MTU"
        )
    })
}

/// Preferred busy polling keeps the kernel from processing the queue in
/// softirq only when the device defers its interrupts (Documentation/networking/napi.rst).
fn busy_poll_warning(iface: &str) -> Option<String> {
    let read = |knob: &str| netdev::sysfs_number(iface, knob).unwrap_or(0);
    (read("napi_defer_hard_irqs") == 0 || read("gro_flush_timeout") == 0).then(|| {
        format!(
            "--busy-poll works best with deferred interrupts: echo 2 > /sys/class/net/{iface}/napi_defer_hard_irqs; echo 20000 > /sys/class/net/{iface}/gro_flush_timeout"
        )
    })
}

/// Removes a file we created if setup fails before the capture starts.
struct CreatedFile(Option<PathBuf>);

impl Drop for CreatedFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The output, opened (and its pcap header written, when it is not an
/// existing file) before anything is attached.
pub(crate) struct OpenedOutput {
    out: Option<Destination>,
    /// Where the output is, for messages.
    path: PathBuf,
    /// Removes the file if the start fails and xsktap created it.
    created: CreatedFile,
    /// An existing regular file, truncated (and given its header) only once
    /// the capture runs, so that a failed start leaves it as it was.
    to_truncate: Option<File>,
    header: Vec<u8>,
}

impl OpenedOutput {
    pub(crate) fn open(
        output: &Output,
        header: Vec<u8>,
        notices: &Arc<Notices>,
        owner: Option<(u32, u32)>,
    ) -> Result<OpenedOutput> {
        let mut opened = OpenedOutput {
            out: None,
            path: PathBuf::from("-"),
            created: CreatedFile(None),
            to_truncate: None,
            header,
        };
        match output {
            Output::None => return Ok(opened),
            Output::Stdout => {
                opened.out = Some(Destination::Stream(WriterOutput {
                    out: Box::new(std::io::stdout()),
                    file: None,
                    written: 0,
                    book: None,
                }));
            }
            Output::Rotating(pattern, rotation) => {
                opened.path = pattern.clone();
                let pattern = pattern.to_str().ok_or_else(|| {
                    Error::Config(format!(
                        "-w {}: a rotating output's name must be valid UTF-8",
                        pattern.display()
                    ))
                })?;
                let files = FileSet::open(
                    pattern,
                    rotation,
                    opened.header.clone(),
                    notices.clone(),
                    owner,
                )?;
                opened.out = Some(Destination::Files(Box::new(files)));
                return Ok(opened);
            }
            Output::File(path) => {
                opened.path = path.clone();
                let (file, created) = xsktap_sys::output::open_output(path)?;
                if created {
                    opened.created.0 = Some(path.clone());
                    if let Some((uid, gid)) = owner {
                        std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(
                            |error| Error::Output {
                                path: path.clone(),
                                error,
                            },
                        )?;
                    }
                }
                let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
                let dup = || {
                    file.try_clone()
                        .map_err(|e| syscall_error("dup(output file)", e))
                };
                if regular && !created {
                    opened.to_truncate = Some(dup()?);
                }
                let cut_back = if regular { Some(dup()?) } else { None };
                opened.out = Some(Destination::Stream(WriterOutput {
                    out: Box::new(file),
                    file: cut_back,
                    written: 0,
                    book: None,
                }));
            }
        }
        if opened.to_truncate.is_none() {
            // `-w /dev/full` fails here, before anything is attached.
            opened.write_header()?;
        }
        Ok(opened)
    }

    fn write_header(&mut self) -> Result<()> {
        let Some(Destination::Stream(out)) = &mut self.out else {
            return Ok(());
        };
        out.out
            .write_all(&self.header)
            .and_then(|()| out.out.flush())
            .map_err(|error| Error::OutputWrite {
                path: self.path.clone(),
                error,
            })?;
        out.written = self.header.len() as u64;
        Ok(())
    }

    /// The capture is running: truncate an existing file and write its
    /// header, and keep the file; rotating files start their `-z` thread
    /// on `cpus`.
    pub(crate) fn commit(
        mut self,
        hook: Option<&str>,
        cpus: &[usize],
    ) -> Result<Option<Destination>> {
        if let Some(Destination::Files(files)) = &mut self.out {
            files.commit(hook, cpus)?;
        }
        if let Some(file) = self.to_truncate.take() {
            file.set_len(0).map_err(|error| Error::Output {
                path: self.path.clone(),
                error,
            })?;
            self.write_header()?;
        }
        self.created.0 = None;
        Ok(self.out.take())
    }
}

impl Output {
    /// The `-z` command of a rotating output.
    pub(crate) fn hook(&self) -> Option<String> {
        match self {
            Output::Rotating(_, rotation) => rotation.hook.clone(),
            _ => None,
        }
    }
}

/// The header every file of `output` starts with, for `queues`.
pub(crate) fn file_header(cfg: &CaptureConfig, output: &Output, queues: &[u32]) -> Vec<u8> {
    match (output, cfg.format) {
        (Output::None, _) => Vec::new(),
        (_, OutputFormat::Pcap) => xsktap_core::pcap::file_header(cfg.snaplen).to_vec(),
        (_, OutputFormat::Pcapng) => pcapng::file_header(&interfaces(cfg, queues)),
    }
}

/// What a pcapng file says about each captured queue.
fn interfaces(cfg: &CaptureConfig, queues: &[u32]) -> Vec<Interface> {
    let hardware = netdev::driver(&cfg.iface);
    let speed_bps = netdev::sysfs_number(&cfg.iface, "speed").map(|mbps| mbps * 1_000_000);
    queues
        .iter()
        .map(|q| Interface {
            name: format!("{}/q{q}", cfg.iface),
            description: format!("{} RX queue {q}, captured by xsktap (AF_XDP)", cfg.iface),
            snaplen: cfg.snaplen,
            filter: cfg.filter_text.clone(),
            hardware: hardware.clone(),
            speed_bps,
        })
        .collect()
}

/// Loads the program variant for `stamps`; a device-bound one the kernel
/// refuses falls back to software stamps under `-j auto`.
fn load_program(
    cfg: &CaptureConfig,
    ifindex: u32,
    stamps: (Timestamps, Option<stamps::Hardware>),
) -> Result<(XdpProgram, Timestamps, Option<stamps::Hardware>)> {
    xsktap_sys::caps::raise_memlock();
    let (timestamps, hw) = stamps;
    let variant = stamps::variant(timestamps.source, hw.as_ref(), ifindex);
    match XdpProgram::load(variant, cfg.rate_limit) {
        Ok(program) => Ok((timestamps.carried_by(&program), program, hw)),
        Err(e) if hw.is_some() => {
            let why = format!("the kernel refused the device-bound XDP program ({e})");
            let (timestamps, hw) = stamps::fallback(cfg, &why)?;
            let program = XdpProgram::load(Stamps::Software, cfg.rate_limit)?;
            Ok((timestamps.carried_by(&program), program, hw))
        }
        Err(e) => Err(e),
    }
    .map(|(timestamps, program, hw)| (program, timestamps, hw))
}

/// Installs the filter in `program` and binds one socket per queue into its
/// XSKMAP (nothing attached yet).
fn open_sockets(
    cfg: &CaptureConfig,
    ifindex: u32,
    queues: &[u32],
    program: XdpProgram,
) -> Result<(XdpProgram, Vec<XskSocket>)> {
    // Each queue's UMEM holds twice its ring size in frames (see XskSocket).
    let umem = 2 * u64::from(cfg.ring_size) * u64::from(cfg.frame_size);
    xsktap_sys::caps::check_memlock(umem * queues.len() as u64)?;
    let filter = Program::compile(cfg.filter.as_ref(), program.max_filter_tests())?;
    program.set_filter(&filter)?;
    if let Some(&queue) = queues.iter().find(|&&q| q >= program.max_queues()) {
        return Err(Error::Config(format!(
            "queue {queue} is beyond the {} queues xsktap can redirect",
            program.max_queues()
        )));
    }
    let mut sockets = Vec::with_capacity(queues.len());
    for &queue in queues {
        let mut socket = XskSocket::new(&XskConfig {
            iface: cfg.iface.clone(),
            ifindex,
            queue,
            frame_size: cfg.frame_size,
            ring_size: cfg.ring_size,
            zero_copy: cfg.zero_copy,
            multi_buffer: program.frags(),
        })?;
        socket.set_carry(program.carry());
        if cfg.busy_poll {
            socket.enable_busy_poll(20, cfg.batch_size)?;
        }
        program.add_socket(queue, socket.fd())?;
        sockets.push(socket);
    }
    Ok((program, sockets))
}

/// The writer threads of a capture: the pcap output and the monitor lines.
pub(crate) struct Writers {
    pub(crate) pcap: Option<BatchWriter>,
    pub(crate) monitor: Option<BatchWriter>,
}

impl Writers {
    pub(crate) fn start(
        cfg: &CaptureConfig,
        out: Option<Destination>,
        book: Option<Book>,
        queues: usize,
        cpus: &[usize],
        notices: &Arc<Notices>,
    ) -> Result<Writers> {
        let disk_full = DiskFull {
            drop_and_count: cfg.on_disk_full == DiskFullPolicy::DropAndCount,
            notices: notices.clone(),
        };
        let buffers = 4 * queues + 4;
        let spawn_error = |e| syscall_error("spawn(writer thread)", e);
        let pcap = out
            .map(|mut out| {
                match &mut out {
                    Destination::Files(files) => {
                        files.book = book;
                        files.overwrite_oldest =
                            cfg.on_disk_full == DiskFullPolicy::OverwriteOldest;
                    }
                    Destination::Stream(stream) => stream.book = book,
                }
                BatchWriter::pcap(
                    out,
                    cfg.format,
                    cfg.snaplen,
                    buffers,
                    cpus,
                    disk_full,
                    cfg.sort_window_ns,
                )
                .map_err(spawn_error)
            })
            .transpose()?;
        let monitor = cfg
            .monitor
            .map(|_| {
                let stdout = WriterOutput {
                    out: Box::new(std::io::stdout()),
                    file: None,
                    written: 0,
                    book: None,
                };
                BatchWriter::lines(stdout, buffers, cpus).map_err(spawn_error)
            })
            .transpose()?;
        Ok(Writers { pcap, monitor })
    }

    /// Whether some output counts written frames (else frames are counted
    /// as written when the worker takes them).
    fn counting(&self) -> bool {
        self.pcap.is_some() || self.monitor.is_some()
    }
}

/// Builds one worker per socket (not started).
fn build_workers(
    cfg: &CaptureConfig,
    placement: &Placement,
    sockets: Vec<XskSocket>,
    writers: &Writers,
    shared: &Arc<Shared>,
    feeds: Option<&Arc<Feeds>>,
) -> Result<Vec<(QueueHandle, QueueWorker)>> {
    let iface_name: Arc<str> = Arc::from(cfg.iface.as_str());
    let mut built = Vec::with_capacity(sockets.len());
    for (index, ((socket, &queue), &core)) in sockets
        .into_iter()
        .zip(&placement.queues)
        .zip(&placement.cores)
        .enumerate()
    {
        let index = index as u32;
        let counters = Arc::new(CachePadded::new(WorkerCounters::default()));
        let output = Arc::new(OutputCounters::default());
        let traffic = Arc::new(CachePadded::new(TrafficCounters::default()));
        let published = Arc::new(Published::default());
        let handle = QueueHandle {
            queue,
            core: Arc::new(AtomicUsize::new(core)),
            mode: socket.mode(),
            counters: counters.clone(),
            traffic: traffic.clone(),
            published: published.clone(),
            stats: socket.stats_handle()?,
            read_errors: AtomicU64::new(0),
            output: writers.counting().then(|| output.clone()),
            abandoned: AtomicU64::new(0),
            thread: None,
        };
        // The pcap output counts written frames; monitor lines count only
        // when there is no pcap output.
        let (pcap_counters, lines_counters) = match writers.pcap {
            Some(_) => (output, Arc::new(OutputCounters::default())),
            None => (Arc::new(OutputCounters::default()), output),
        };
        let monitor = match (cfg.monitor, &writers.monitor) {
            (Some(format), Some(w)) => Some(Monitor {
                format,
                iface: iface_name.clone(),
                lines: w.batcher(lines_counters, index),
            }),
            _ => None,
        };
        let worker = Worker {
            batch_size: cfg.batch_size,
            shared: shared.clone(),
            counters,
            step: FrameStep {
                queue,
                sink: writers
                    .pcap
                    .as_ref()
                    .map(|w| w.batcher(pcap_counters, index)),
                monitor,
                traffic,
                flows: match &cfg.flow_export {
                    Some(e) => FlowTable::with_export(cfg.flow_table_size, e.timeouts),
                    None => FlowTable::new(cfg.flow_table_size),
                },
                latency: LatencyStats::default(),
                closed: false,
                feeds: feeds.cloned(),
                batch_wall_ns: 0,
            },
            pacer: Pacer::new(cfg.busy_poll, cfg.coalesce_usecs),
            published,
            flow_out: cfg.flow_export.as_ref().map(|e| e.out.clone()),
        };
        built.push((
            handle,
            QueueWorker {
                queue,
                core,
                socket,
                worker,
            },
        ));
    }
    Ok(built)
}

impl Capture {
    /// Validates `cfg`, loads and attaches the XDP program, binds one socket
    /// per queue and starts one pinned worker per queue.
    ///
    /// Nothing is left attached and no output file is left behind if this fails.
    ///
    /// # Errors
    /// Any [`Error`]: each names what is wrong and how to fix it.
    pub fn start(cfg: &CaptureConfig, output: Output) -> Result<Capture> {
        Capture::start_consuming(cfg, output, Vec::new())
    }

    /// As [`Capture::start`], handing each feed's merged stream to the
    /// in-process consumers given with its name (`GROUP:PORT` or the `--ab`
    /// name), on the worker that decodes each packet: the messages borrowed
    /// from the frame, no copy. With `cfg.publish` the iceoryx2 publisher
    /// takes each message first.
    ///
    /// # Errors
    /// As [`Capture::start`]; a consumer of a feed not in `cfg` is refused.
    pub fn start_consuming(
        cfg: &CaptureConfig,
        output: Output,
        consumers: crate::publish::Consumers,
    ) -> Result<Capture> {
        cfg.validate()?;
        if cfg.monitor.is_some() && output == Output::Stdout {
            return Err(Error::Config(
                "monitor lines go to standard output, so -w - cannot share it: write the pcap to a file with -w FILE".into(),
            ));
        }
        xsktap_sys::caps::check_capabilities()?;
        let ifindex = netdev::ifindex(&cfg.iface)?;
        let allowed = xsktap_sys::cpu::allowed_cores();
        let placement = Placement::plan(
            &cfg.iface,
            cfg.queues.as_deref(),
            netdev::rx_queue_count(&cfg.iface),
            cfg.cores.as_deref(),
            &allowed,
            &xsktap_sys::cpu::queue_irqs(&cfg.iface),
        )?;
        // Refuse early, before binding sockets, if someone else's XDP program
        // (or another capture) holds the interface.
        xsktap_sys::loader::check_no_xdp_program(&cfg.iface, ifindex)?;
        // Open the output now, so that an unwritable path fails before
        // anything is loaded.
        let header = file_header(cfg, &output, &placement.queues);
        let notices = Arc::new(Notices::default());
        let hook = output.hook();
        let output = OpenedOutput::open(&output, header, &notices, cfg.file_owner)?;
        let mut warnings = Vec::new();
        if cfg.busy_poll {
            warnings.extend(busy_poll_warning(&cfg.iface));
        }

        let (feeds, publishing) = crate::publish::feeds(cfg, consumers)?;
        let (program, timestamps, hw) = load_program(cfg, ifindex, stamps::choose(cfg)?)?;
        if let Some(feeds) = &feeds {
            program.set_feeds(&feeds.lines())?;
        }
        let (program, sockets) = open_sockets(cfg, ifindex, &placement.queues, program)?;
        // Frames larger than a UMEM frame arrive as chains of buffers where
        // every socket is multi-buffer; elsewhere the kernel drops them.
        if !sockets.iter().all(XskSocket::multi_buffer) {
            warnings.extend(mtu_warning(&cfg.iface, cfg.frame_size));
        }
        let ledger = Arc::new(Ledger::default());
        let book = match cfg.format {
            OutputFormat::Pcapng if output.out.is_some() => {
                let handles = sockets
                    .iter()
                    .map(XskSocket::stats_handle)
                    .collect::<Result<Vec<_>>>()?;
                Some(Book::new(ledger.clone(), handles))
            }
            _ => None,
        };
        let clock_keeper = hw
            .map(|hw| ClockKeeper::start(hw, &program, &placement.housekeeping, &notices))
            .transpose()?;
        let link = program.attach(&cfg.iface, ifindex, cfg.xdp_mode)?;
        let xdp_mode = link.mode();
        // Joined once the program is attached: the groups' first frames are taken.
        let membership = match &feeds {
            Some(feeds) if cfg.join => {
                let groups: Vec<_> = feeds.lines().into_iter().map(|(a, _)| a).collect();
                Some(xsktap_sys::mcast::join(ifindex, &groups)?)
            }
            _ => None,
        };
        let message_writer = match (&feeds, &cfg.messages) {
            (Some(feeds), Some(path)) => Some(MessageWriter::start(
                feeds.clone(),
                path,
                &placement.housekeeping,
                &notices,
            )?),
            _ => None,
        };
        let rerequester = match (&feeds, cfg.rerequest) {
            (Some(feeds), Some(server)) => Some(Rerequester::start(
                feeds.clone(),
                server,
                &placement.housekeeping,
                &notices,
            )?),
            _ => None,
        };
        let out = output.commit(hook.as_deref(), &placement.housekeeping)?;
        let files_done = match &out {
            Some(Destination::Files(files)) => Some(files.done_flag()),
            _ => None,
        };
        // Writers (and whatever the caller runs beside the capture) belong on
        // the CPUs no worker uses, so that they never preempt a worker.
        let writers = Writers::start(
            cfg,
            out,
            book,
            placement.queues.len(),
            &placement.housekeeping,
            &notices,
        )?;
        let shared = Arc::new(Shared {
            remaining: cfg.count.map(AtomicU64::new),
            ..Shared::default()
        });
        let built = build_workers(cfg, &placement, sockets, &writers, &shared, feeds.as_ref())?;
        let mut capture = Capture {
            shared,
            queues: Vec::with_capacity(built.len()),
            writer: writers.pcap,
            monitor_writer: writers.monitor,
            link: Some(link),
            program,
            xdp_mode,
            started: Instant::now(),
            warnings,
            current: Arc::new(Current {
                cores: Vec::new(),
                housekeeping: Mutex::new(placement.housekeeping.clone()),
            }),
            _placer: None,
            placement_reason: placement.reason.clone(),
            iface: cfg.iface.clone(),
            ifindex,
            notices,
            files_done,
            ledger,
            timestamps,
            _clock_keeper: clock_keeper,
            feeds,
            membership,
            _rerequester: rerequester,
            message_writer,
            publishing,
        };
        for (mut handle, worker) in built {
            let thread = std::thread::Builder::new()
                .name(format!("xsktap-q{}", handle.queue))
                .spawn(move || worker.run())
                .map_err(|e| syscall_error("spawn(worker thread)", e))?;
            handle.thread = Some(thread);
            capture.queues.push(handle);
        }
        // Where xsktap chose the CPUs, it follows the frames: a worker whose
        // CPU turns out to receive its queue's frames is moved. Not with
        // busy polling, whose worker runs the receive work on purpose.
        if placement.reason.is_some() && !cfg.busy_poll && allowed.len() > 1 {
            let current = Arc::new(Current {
                cores: capture.queues.iter().map(|q| q.core.clone()).collect(),
                housekeeping: Mutex::new(placement.housekeeping.clone()),
            });
            capture.current = current.clone();
            capture._placer = Some(Placer::start(
                &placement,
                &allowed,
                capture.program.placement_reader()?,
                current,
                &capture.notices,
            )?);
        }
        Ok(capture)
    }

    /// Things the user should know before trusting the capture, one line each.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// What the writer has to say since last asked (a `-z` command that
    /// failed), one line each.
    pub fn notices(&self) -> Vec<String> {
        self.notices.take()
    }

    /// The notices, to read after [`Capture::stop`] (what the last `-z`
    /// commands said).
    pub fn notices_handle(&self) -> Arc<Notices> {
        self.notices.clone()
    }

    /// `--join`: the multicast groups joined on the interface.
    pub fn joined(&self) -> &[std::net::IpAddr] {
        self.membership.as_ref().map_or(&[], |m| m.groups())
    }

    /// `--publish`: the iceoryx2 services, in feed order.
    pub fn services(&self) -> &[String] {
        self.publishing.as_ref().map_or(&[], |p| &p.services)
    }

    /// `xsktap feed`: the feeds, their sequence state and queued events.
    pub fn feeds(&self) -> Option<&Arc<Feeds>> {
        self.feeds.as_ref()
    }

    /// Which clock stamps the frames, and why when not the one asked for.
    pub fn timestamps(&self) -> &Timestamps {
        &self.timestamps
    }

    /// The mode the XDP program was attached in.
    pub fn xdp_mode(&self) -> AttachedMode {
        self.xdp_mode
    }

    /// Reads every counter without stopping the workers.
    pub fn snapshot(&self) -> Snapshot {
        let at = Instant::now();
        let queues: Vec<QueueSnapshot> = self
            .queues
            .iter()
            .map(|q| {
                let c = &q.counters;
                let (written, written_bytes, output_drops) = q.output_counts();
                QueueSnapshot {
                    queue: q.queue,
                    core: q.core.load(Ordering::Relaxed),
                    bind_mode: Some(q.mode),
                    timestamps: Some(self.timestamps.source),
                    received: c.received.load(Ordering::Relaxed),
                    received_bytes: c.received_bytes.load(Ordering::Relaxed),
                    written,
                    written_bytes,
                    over_count: c.over_count.load(Ordering::Relaxed),
                    sink_closed_drops: output_drops,
                    output_failed: q
                        .output
                        .as_ref()
                        .map_or(0, |o| o.failed.load(Ordering::Relaxed)),
                    empty_polls: c.empty_polls.load(Ordering::Relaxed),
                    naps: c.naps.load(Ordering::Relaxed),
                    waits: c.waits.load(Ordering::Relaxed),
                    kicks: c.kicks.load(Ordering::Relaxed),
                    // A failed read is unknown, never zero drops; it is counted.
                    socket: q.known(q.stats.stats()),
                    bpf: q.known(self.program.counters(q.queue)),
                    counter_read_errors: q.read_errors.load(Ordering::Relaxed),
                    flow_evictions: q.published.flows.evictions.load(Ordering::Relaxed),
                }
            })
            .collect();
        for (i, q) in queues.iter().enumerate() {
            if let Some(bpf) = q.bpf {
                self.ledger.set(
                    i,
                    LedgerEntry {
                        seen: bpf.seen,
                        redirected: bpf.redirected,
                        redirect_failed: bpf.redirect_failed,
                        refused: self.queues[i]
                            .counters
                            .sink_closed_drops
                            .load(Ordering::Relaxed),
                    },
                );
            }
        }
        let mut traffic = TrafficSnapshot::default();
        for q in &self.queues {
            traffic.merge(&q.traffic.snapshot());
        }
        Snapshot {
            at,
            queues,
            traffic,
        }
    }

    /// One-way latency and sequence accounting of generator frames, merged
    /// over the workers; `None` when no stamped frame arrived.
    pub fn latency(&self) -> Option<LatencyStats> {
        let mut total: Option<LatencyStats> = None;
        for q in &self.queues {
            let Ok(l) = q.published.latency.lock() else {
                continue;
            };
            if l.stamped == 0 {
                continue;
            }
            match &mut total {
                Some(t) => t.merge(&l),
                None => total = Some(l.clone()),
            }
        }
        total
    }

    /// Every flow in the workers' tables (a flow seen by several queues
    /// once per queue), from the copies they publish a few times a second.
    pub fn flows(&self) -> Vec<FlowStats> {
        self.queues
            .iter()
            .flat_map(|q| q.published.flows.latest())
            .collect()
    }

    /// The top `n` flows and talkers, from the copies the workers publish
    /// a few times a second.
    pub fn top(&self, n: usize) -> Top {
        Top::build(
            self.queues.iter().flat_map(|q| q.published.flows.latest()),
            n,
        )
    }

    /// The counters so far in the form of the final summary (no writer
    /// report, no worker errors: the capture is still running).
    pub fn progress(&self) -> Summary {
        Summary {
            snapshot: self.snapshot(),
            top: self.top(10),
            latency: self.latency(),
            duration: self.started.elapsed(),
            xdp_mode: self.xdp_mode,
            writer: None,
            monitor_writer: None,
            worker_errors: Vec::new(),
            count_reached: self.shared.count_reached.load(Ordering::Relaxed),
            limit: self.program.limit(),
            limited: self.limited(LIMITED_KEYS_SHOWN),
        }
    }

    /// Writes `line` (a newline is added) into the monitor's output between
    /// the workers' lines, as `monitor --json` carries alert events; false
    /// when there is no monitor output or its writer's queue is full.
    pub fn monitor_note(&self, line: &str) -> bool {
        self.monitor_writer.as_ref().is_some_and(|w| {
            let mut bytes = Vec::with_capacity(line.len() + 1);
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
            w.note(bytes)
        })
    }

    /// The `n` keys the rate limit dropped the most frames of, most first;
    /// empty without a limit, `None` when the program's map cannot be read
    /// (the queues' exact `limited` counters do not depend on it).
    pub fn limited(&self, n: usize) -> Option<Vec<(LimitKey, u64)>> {
        match self.program.limited_keys() {
            Ok(keys) => Some(keys.map_or_else(Vec::new, |k| top_limited(k, n))),
            Err(_) => None,
        }
    }

    /// The CPUs this process may use that run no worker: where reporting,
    /// serving and other housekeeping belong. Empty when every CPU runs one.
    pub fn housekeeping_cpus(&self) -> Vec<usize> {
        self.current
            .housekeeping
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// Why the workers run where they do, when xsktap chose (no `--cores`):
    /// for the start line.
    pub fn placement_reason(&self) -> Option<&str> {
        self.placement_reason.as_deref()
    }

    /// Whether `--busy-poll` found a queue with no NAPI to run (the kernel
    /// gives its socket no NAPI id, as for veth on 6.x kernels): that worker
    /// spins on its ring without sleeping but cannot move the driver's
    /// receive work onto its core. Known once frames have arrived.
    pub fn busy_poll_without_napi(&self) -> bool {
        self.shared.no_napi.load(Ordering::Relaxed)
    }

    /// Whether the captured interface is gone: no device of its name, or
    /// another one (deleted and re-created, or renamed) under it.
    pub fn interface_gone(&self) -> bool {
        netdev::ifindex(&self.iface).map_or(true, |index| index != self.ifindex)
    }

    /// Whether the captured interface was taken down (`ip link set … down`).
    pub fn interface_down(&self) -> bool {
        netdev::is_up(&self.iface) == Some(false)
    }

    /// Why the capture ended by itself, if it did.
    pub fn finished(&self) -> Option<Finish> {
        if self.shared.count_reached.load(Ordering::Relaxed) {
            Some(Finish::CountReached)
        } else if self
            .files_done
            .as_ref()
            .is_some_and(|d| d.load(Ordering::Relaxed))
        {
            Some(Finish::FilesDone)
        } else if self.shared.sink_closed.load(Ordering::Relaxed)
            || [&self.writer, &self.monitor_writer]
                .into_iter()
                .flatten()
                .any(BatchWriter::failed)
        {
            Some(Finish::OutputClosed)
        } else if self
            .queues
            .iter()
            .any(|q| q.thread.as_ref().is_some_and(|t| t.is_finished()))
        {
            if self.interface_gone() {
                Some(Finish::InterfaceGone)
            } else {
                Some(Finish::WorkerFailed)
            }
        } else {
            None
        }
    }

    /// Detaches the program, lets the workers drain what is already in their
    /// rings, flushes the output and returns the final counters.
    ///
    /// Bounded whatever the output does: workers get [`STOP_GRACE`] to drain
    /// (then stop, counting what their rings hold as lost to the output),
    /// writers get until twice that; a writer still blocked then (a reader
    /// that takes nothing) is left behind, and what it had not written is
    /// counted as lost.
    pub fn stop(mut self) -> Summary {
        let duration = self.started.elapsed();
        let deadline = Instant::now() + STOP_GRACE;
        // Detach first: nothing new is redirected, so nothing is lost while
        // the workers finish what the rings already hold.
        self.link.take();
        self.shared.drain.store(true, Ordering::Relaxed);
        while Instant::now() < deadline
            && self
                .queues
                .iter()
                .any(|q| q.thread.as_ref().is_some_and(|t| !t.is_finished()))
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Workers still waiting for the output's buffers give up.
        self.shared.stop.store(true, Ordering::Relaxed);
        let mut worker_errors = Vec::new();
        for q in &mut self.queues {
            if let Some(thread) = q.thread.take() {
                match thread.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => worker_errors.push(e),
                    Err(_) => worker_errors.push(Error::Worker {
                        queue: q.queue,
                        message: "the worker thread panicked".into(),
                    }),
                }
            }
        }
        // Every message the workers delivered is written before the summary.
        self.message_writer.take();
        // The final counters, for the statistics blocks that close the output.
        let _ = self.snapshot();
        let deadline = deadline + STOP_GRACE;
        let writer = self.writer.take().map(|w| w.finish(deadline));
        let monitor_writer = self.monitor_writer.take().map(|w| w.finish(deadline));
        if [&writer, &monitor_writer]
            .into_iter()
            .flatten()
            .any(|r| r.abandoned)
        {
            for q in &self.queues {
                q.abandoned.store(q.in_flight(), Ordering::Relaxed);
            }
        }
        Summary {
            duration,
            writer,
            monitor_writer,
            worker_errors,
            ..self.progress()
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.link.take();
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.drain.store(true, Ordering::Relaxed);
        for q in &mut self.queues {
            if let Some(thread) = q.thread.take() {
                let _ = thread.join();
            }
        }
        for writer in [self.writer.take(), self.monitor_writer.take()]
            .into_iter()
            .flatten()
        {
            writer.finish(Instant::now() + STOP_GRACE);
        }
    }
}
