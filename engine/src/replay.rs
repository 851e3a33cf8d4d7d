//! Reading a capture file back (`-r`): pcap or pcapng, xsktap's own or any
//! other tool's, through the same parse, filter (the compiled program's
//! userspace evaluator), statistics, flow table and outputs as a live
//! capture. No privilege is needed.
//!
//! Files are read with pcap-file (a streaming reader, zero-copy for pcap);
//! pcapng timestamps are scaled by each interface's `if_tsresol` here,
//! since pcap-file reads them as nanoseconds. Only Ethernet interfaces are
//! processed; packets of other link types are counted and skipped.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_utils::CachePadded;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, TsResolution};
use xsktap_core::feed::Feeds;
use xsktap_core::filter::{Program, MAX_TESTS};
use xsktap_core::flows::{FlowTable, Top, EXPIRY_STEPS};
use xsktap_core::latency::LatencyStats;
use xsktap_core::parse::parse;
use xsktap_core::stats::{OutputCounters, QueueSnapshot, Snapshot, TrafficCounters};
use xsktap_core::worker::{FrameStep, Monitor};
use xsktap_core::{AttachedMode, BpfCounters, CaptureConfig, SocketStats};

use crate::capture::{OpenedOutput, Output, Summary, Writers, STOP_GRACE};
use crate::files::{taken_names, Notices};
use crate::{Error, Result};

/// Refuses an output that is the file being read (the same device and
/// inode, whatever the name: a link, `/dev/fd/N`, a name the rotation
/// makes): writing it would truncate the input under the reader, or grow it
/// for as long as it is read.
fn refuse_input_as_output(input: &Path, output: &Output) -> Result<()> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let id = |m: std::fs::Metadata| (m.dev(), m.ino());
    let Ok(read) = std::fs::metadata(input).map(id) else {
        return Ok(());
    };
    let same = |path: &Path| std::fs::metadata(path).map(id).ok() == Some(read);
    let clash = match output {
        Output::None => None,
        Output::File(path) => same(path).then(|| format!("-w {}", path.display())),
        Output::Stdout => {
            let stdout = std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map(File::from);
            (stdout.and_then(|f| f.metadata()).map(id).ok() == Some(read))
                .then(|| "-w - (standard output)".to_string())
        }
        Output::Rotating(path, _) => taken_names(path)
            .into_iter()
            .find(|p| same(p))
            .map(|p| format!("-w {} (as {})", path.display(), p.display())),
    };
    match clash {
        Some(what) => Err(Error::Config(format!(
            "{what} would overwrite the file -r reads ({}): write to another name",
            input.display()
        ))),
        None => Ok(()),
    }
}

/// A file read back.
#[derive(Debug)]
pub struct Replay {
    /// The summary, as a capture's: one queue (0), the filter's verdicts as
    /// the XDP program's counters (`seen`, `redirected`, `filtered_out`).
    pub summary: Summary,
    /// Where the file was damaged or cut, if it was: everything before was
    /// processed.
    pub damage: Option<String>,
    /// Packets of link types other than Ethernet, skipped.
    pub skipped: u64,
    /// From the first packet's timestamp to the last one's, in ns.
    pub span_ns: u64,
    /// `xsktap feed -r`: the feeds, as after a live capture.
    pub feeds: Option<Arc<Feeds>>,
    /// What the outputs had to say (a `-z` command that failed, files of an
    /// earlier capture found), as a capture's [`crate::Capture::notices`].
    pub notices: Vec<String>,
}

/// pcapng interfaces of the current section: (Ethernet?, timestamp units per
/// second, snapshot length).
type NgInterfaces = Vec<(bool, u64, u32)>;

enum Input {
    Pcap {
        reader: PcapReader<BufReader<File>>,
        ns_per_unit: u64,
    },
    PcapNg {
        reader: PcapNgReader<BufReader<File>>,
        interfaces: NgInterfaces,
        /// The time of the last packet with one: a Simple Packet Block has none.
        last_ns: u64,
    },
}

/// What reading one record gave.
enum Next {
    /// An Ethernet frame and its timestamp (ns since the epoch).
    Frame,
    /// A packet that is not an Ethernet frame, or a block of an unknown kind.
    Skipped,
    /// A block that describes the file (section, interfaces, statistics).
    Meta,
    /// The end of the file.
    End,
}

fn units_per_sec(opts: &[InterfaceDescriptionOption<'_>]) -> u64 {
    for o in opts {
        if let InterfaceDescriptionOption::IfTsResol(r) = o {
            let exp = u32::from(r & 0x7f);
            return if r & 0x80 == 0 {
                10u64.checked_pow(exp).unwrap_or(u64::MAX)
            } else {
                2u64.checked_pow(exp).unwrap_or(u64::MAX)
            };
        }
    }
    1_000_000
}

impl Input {
    fn open(path: &Path) -> Result<Input> {
        let fail = |why: String| Error::Config(format!("-r {}: {why}", path.display()));
        let file = File::open(path).map_err(|e| fail(e.to_string()))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut magic = [0u8; 4];
        reader
            .get_mut()
            .read_exact(&mut magic)
            .map_err(|_| fail("too short to be a capture file".into()))?;
        // Back to the start: the readers parse the header themselves.
        let file = reader.into_inner();
        let reader = BufReader::with_capacity(1 << 20, {
            use std::io::Seek;
            let mut f = file;
            f.seek(std::io::SeekFrom::Start(0))
                .map_err(|e| fail(e.to_string()))?;
            f
        });
        if u32::from_le_bytes(magic) == xsktap_core::pcapng::SHB {
            let reader = PcapNgReader::new(reader)
                .map_err(|e| fail(format!("not a valid pcapng file ({e})")))?;
            return Ok(Input::PcapNg {
                reader,
                interfaces: Vec::new(),
                last_ns: 0,
            });
        }
        let reader = PcapReader::new(reader).map_err(|_| {
            fail("neither a pcap nor a pcapng file (its magic number is unknown)".into())
        })?;
        let header = reader.header();
        // As libpcap: version 2, minor 4 or older.
        if header.version_major != 2 || header.version_minor > 4 {
            return Err(fail(format!(
                "pcap version {}.{}: only version 2.4 (and older 2.x) files are read",
                header.version_major, header.version_minor
            )));
        }
        if header.datalink != DataLink::ETHERNET {
            return Err(fail(format!(
                "link type {:?}: only Ethernet captures are read",
                header.datalink
            )));
        }
        let ns_per_unit = match header.ts_resolution {
            TsResolution::MicroSecond => 1_000,
            TsResolution::NanoSecond => 1,
        };
        Ok(Input::Pcap {
            reader,
            ns_per_unit,
        })
    }

    /// Reads the next record, handing an Ethernet frame to `on_frame`.
    fn next(
        &mut self,
        on_frame: &mut impl FnMut(u64, &[u8], usize),
    ) -> std::result::Result<Next, String> {
        match self {
            Input::Pcap {
                reader,
                ns_per_unit,
            } => match reader.next_raw_packet() {
                None => Ok(Next::End),
                Some(Err(e)) => Err(e.to_string()),
                Some(Ok(p)) => {
                    let ts =
                        u64::from(p.ts_sec) * 1_000_000_000 + u64::from(p.ts_frac) * *ns_per_unit;
                    on_frame(ts, &p.data, p.orig_len as usize);
                    Ok(Next::Frame)
                }
            },
            Input::PcapNg {
                reader,
                interfaces,
                last_ns,
            } => match reader.next_block() {
                None => Ok(Next::End),
                Some(Err(e)) => Err(e.to_string()),
                Some(Ok(block)) => match block {
                    Block::SectionHeader(_) => {
                        interfaces.clear();
                        Ok(Next::Meta)
                    }
                    Block::InterfaceDescription(i) => {
                        interfaces.push((
                            i.linktype == DataLink::ETHERNET,
                            units_per_sec(&i.options),
                            i.snaplen,
                        ));
                        Ok(Next::Meta)
                    }
                    Block::InterfaceStatistics(_)
                    | Block::NameResolution(_)
                    | Block::SystemdJournalExport(_) => Ok(Next::Meta),
                    Block::EnhancedPacket(p) => {
                        let Some(&(ethernet, units, _)) = interfaces.get(p.interface_id as usize)
                        else {
                            return Err(format!(
                                "a packet names interface {} which the file does not describe",
                                p.interface_id
                            ));
                        };
                        if !ethernet {
                            return Ok(Next::Skipped);
                        }
                        // pcap-file reads the raw timestamp as nanoseconds.
                        let raw = p.timestamp.as_nanos();
                        let ts = (raw * 1_000_000_000 / u128::from(units.max(1))) as u64;
                        *last_ns = ts;
                        on_frame(ts, &p.data, p.original_len as usize);
                        Ok(Next::Frame)
                    }
                    // The first interface's, without a time (it takes the last
                    // packet's); its data runs to the block's end, padding
                    // included, so it is cut at the original length.
                    Block::SimplePacket(p) => {
                        let Some(&(ethernet, _, snaplen)) = interfaces.first() else {
                            return Err(
                                "a simple packet block comes before any interface description"
                                    .into(),
                            );
                        };
                        if !ethernet {
                            return Ok(Next::Skipped);
                        }
                        let snaplen = if snaplen == 0 { u32::MAX } else { snaplen };
                        let len = (p.original_len.min(snaplen) as usize).min(p.data.len());
                        on_frame(*last_ns, &p.data[..len], p.original_len as usize);
                        Ok(Next::Frame)
                    }
                    _ => Ok(Next::Skipped),
                },
            },
        }
    }
}

/// Frames between two hand-offs of a file's flow records to the exporter.
const HAND_ON_EVERY: u64 = 4096;

/// Reads `input`, filters, counts and writes its frames as `cfg` says
/// (`cfg.iface` names the source in outputs), to `output`.
///
/// # Errors
/// A file that cannot be opened or is not a capture, an output that cannot
/// be created; damage later in the file is reported in [`Replay::damage`].
pub fn replay(cfg: &CaptureConfig, input: &Path, output: Output) -> Result<Replay> {
    let started = Instant::now();
    let mut source = Input::open(input)?;
    refuse_input_as_output(input, &output)?;
    let filter = Program::compile(cfg.filter.as_ref(), usize::from(MAX_TESTS))?;
    let header = crate::capture::file_header(cfg, &output, &[0]);
    let notices = Arc::new(Notices::default());
    let hook = output.hook();
    let opened = OpenedOutput::open(&output, header, &notices, cfg.file_owner)?;
    let out = opened.commit(hook.as_deref(), &[])?;
    let writers = Writers::start(cfg, out, None, 1, &[], &notices)?;
    let output_counters = Arc::new(OutputCounters::default());
    let lines_counters = Arc::new(OutputCounters::default());
    let counting = if writers.pcap.is_some() {
        Some(output_counters.clone())
    } else if writers.monitor.is_some() {
        Some(lines_counters.clone())
    } else {
        None
    };
    let traffic = Arc::new(CachePadded::new(TrafficCounters::default()));
    let (feeds, _publishing) = crate::publish::feeds(cfg, Vec::new())?;
    let mut step = FrameStep {
        queue: 0,
        sink: writers
            .pcap
            .as_ref()
            .map(|w| w.batcher(output_counters.clone(), 0)),
        monitor: match (cfg.monitor, &writers.monitor) {
            (Some(format), Some(w)) => Some(Monitor {
                format,
                iface: Arc::from(cfg.iface.as_str()),
                lines: w.batcher(lines_counters.clone(), 0),
            }),
            _ => None,
        },
        traffic: traffic.clone(),
        flows: match &cfg.flow_export {
            Some(e) => FlowTable::with_export(cfg.flow_table_size, e.timeouts),
            None => FlowTable::new(cfg.flow_table_size),
        },
        latency: LatencyStats::default(),
        closed: false,
        feeds: feeds.clone(),
        batch_wall_ns: 0,
    };
    let stop = AtomicBool::new(false);
    let (mut seen, mut matched, mut bytes, mut handed, mut refused, mut over) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut skipped = 0u64;
    let (mut first_ts, mut last_ts) = (u64::MAX, 0u64);
    let mut damage = None;
    let limit = cfg.count.unwrap_or(u64::MAX);
    // Flow export: the expiry scan runs on the file's clock (a slice every
    // 1/EXPIRY_STEPS s of capture time), and records are handed on often
    // enough that the table never holds EXPIRED_MAX; a file waits for the
    // exporter rather than dropping (there is no ring to overflow).
    let flow_out = cfg.flow_export.as_ref().map(|e| &e.out);
    let mut expired = Vec::new();
    let mut next_expiry_ns = 0u64;
    let mut hand_on_at = HAND_ON_EVERY;
    loop {
        let mut on_frame = |ts: u64, frame: &[u8], orig_len: usize| {
            seen += 1;
            first_ts = first_ts.min(ts);
            last_ts = last_ts.max(ts);
            let packet = parse(frame);
            // As the XDP program: a feed's frames only, then the filter.
            if feeds.as_ref().is_some_and(|f| !f.is_line(&packet)) || !filter.matches(&packet) {
                return;
            }
            matched += 1;
            bytes += orig_len.max(frame.len()) as u64;
            if handed >= limit || stop.load(Ordering::Relaxed) {
                over += 1;
                return;
            }
            if step.frame_of(ts, ts, frame, orig_len, &stop) {
                handed += 1;
            } else {
                refused += 1;
                stop.store(true, Ordering::Relaxed);
            }
        };
        match source.next(&mut on_frame) {
            Ok(Next::Frame | Next::Meta) => {}
            Ok(Next::Skipped) => skipped += 1,
            Ok(Next::End) => break,
            Err(e) => {
                damage = Some(format!(
                    "{}: damaged or cut after {seen} packets ({e}); the packets before it were processed",
                    input.display()
                ));
                break;
            }
        }
        if let Some(out) = flow_out {
            let expiry_due = last_ts >= next_expiry_ns && last_ts > 0;
            if expiry_due {
                step.flows.expire_step(last_ts);
                next_expiry_ns = last_ts + 1_000_000_000 / EXPIRY_STEPS;
            }
            if expiry_due || handed >= hand_on_at {
                step.flows.take_expired(&mut expired);
                out.finish(0, std::mem::take(&mut expired));
                hand_on_at = handed + HAND_ON_EVERY;
            }
        }
        if handed >= limit || step.closed || stop.load(Ordering::Relaxed) {
            break;
        }
    }
    if let Some(out) = flow_out {
        step.flows.drain();
        step.flows.take_expired(&mut expired);
        out.finish(0, std::mem::take(&mut expired));
        out.add_dropped(step.flows.export_dropped());
    }
    step.flush();
    let mut flows = Vec::new();
    step.flows.copy_into(&mut flows);
    let evictions = step.flows.evictions();
    drop(step);
    let deadline = Instant::now() + 2 * STOP_GRACE;
    let writer = writers.pcap.map(|w| w.finish(deadline));
    let monitor_writer = writers.monitor.map(|w| w.finish(deadline));
    let (written, written_bytes, failed) = match &counting {
        Some(c) => (
            c.written.load(Ordering::Relaxed),
            c.written_bytes.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
        ),
        None => (handed, bytes, 0),
    };
    let queue = QueueSnapshot {
        queue: 0,
        core: 0,
        bind_mode: None,
        received: matched,
        received_bytes: bytes,
        written,
        written_bytes,
        over_count: over,
        sink_closed_drops: refused + failed,
        output_failed: failed,
        socket: Some(SocketStats::default()),
        bpf: Some(BpfCounters {
            seen,
            redirected: matched,
            filtered_out: seen - matched,
            ..BpfCounters::default()
        }),
        flow_evictions: evictions,
        ..QueueSnapshot::default()
    };
    let summary = Summary {
        snapshot: Snapshot {
            at: Instant::now(),
            queues: vec![queue],
            traffic: traffic.snapshot(),
        },
        duration: started.elapsed(),
        xdp_mode: AttachedMode::Generic,
        writer,
        monitor_writer,
        top: Top::build(flows, 10),
        latency: None,
        worker_errors: Vec::new(),
        count_reached: cfg.count.is_some_and(|c| handed >= c),
        limit: None,
        limited: Some(Vec::new()),
    };
    Ok(Replay {
        summary,
        damage,
        skipped,
        span_ns: last_ts.saturating_sub(first_ts),
        feeds,
        notices: notices.take(),
    })
}
