//! The capture pipeline: config → load → sockets → attach → run → stop.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::config::CaptureConfig;
use crate::error::{Error, Result};
use crate::filter::Program;
use crate::flows::{FlowExchange, FlowTable, Top};
use crate::latency::LatencyStats;
use crate::loader::{AttachedMode, XdpLink, XdpProgram};
use crate::sink::writer::{BatchWriter, WriterReport};
use crate::stats::{QueueSnapshot, Snapshot, TrafficCounters, TrafficSnapshot, WorkerCounters};
use crate::worker::{Monitor, Shared, Worker};
use crate::xsk::{BindMode, XskConfig, XskSocket, XskStatsHandle};

/// Where captured frames go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Nowhere: frames are counted only.
    None,
    /// A pcap file, created (or truncated) at start.
    File(PathBuf),
    /// pcap on standard output (`-w -`).
    Stdout,
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
}

struct QueueHandle {
    queue: u32,
    core: usize,
    mode: BindMode,
    counters: Arc<CachePadded<WorkerCounters>>,
    traffic: Arc<CachePadded<TrafficCounters>>,
    flows: Arc<FlowExchange>,
    latency: Arc<Mutex<LatencyStats>>,
    stats: XskStatsHandle,
    thread: Option<JoinHandle<Result<()>>>,
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
    housekeeping: Vec<usize>,
}

/// Restricts the calling thread to `cpus`, such as [`Capture::housekeeping_cpus`].
pub fn pin_current_thread(cpus: &[usize]) -> Result<()> {
    crate::sys::pin_current_thread(cpus).map_err(|e| {
        Error::Config(format!(
            "cannot pin a housekeeping thread to CPUs {cpus:?}: {e}"
        ))
    })
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
}

/// Names the RX queues of `iface` from sysfs (`/sys/class/net/IFACE/queues/rx-N`).
fn rx_queue_count(iface: &str) -> u32 {
    let dir = format!("/sys/class/net/{iface}/queues");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
        .max(1)
}

/// Headroom the kernel keeps in front of every frame in the UMEM
/// (`XDP_PACKET_HEADROOM`).
const XDP_PACKET_HEADROOM: u32 = 256;

/// A warning when the interface's MTU allows frames larger than a UMEM frame
/// can hold: the kernel drops those (counted in `rx_dropped`).
fn mtu_warning(iface: &str, frame_size: u32) -> Option<String> {
    let mtu: u32 = std::fs::read_to_string(format!("/sys/class/net/{iface}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
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
    let read = |knob: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{iface}/{knob}"))
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    (read("napi_defer_hard_irqs") == 0 || read("gro_flush_timeout") == 0).then(|| {
        format!(
            "--busy-poll works best with deferred interrupts: echo 2 > /sys/class/net/{iface}/napi_defer_hard_irqs; echo 20000 > /sys/class/net/{iface}/gro_flush_timeout"
        )
    })
}

/// The index of `iface` in the calling thread's network namespace.
///
/// # Errors
/// [`Error::NoSuchInterface`] naming it.
pub fn ifindex(iface: &str) -> Result<u32> {
    let name = std::ffi::CString::new(iface).map_err(|_| Error::NoSuchInterface(iface.into()))?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(Error::NoSuchInterface(iface.into()));
    }
    Ok(index)
}

/// CPUs this process may run on, in order.
fn allowed_cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|c| c.id).collect())
        .unwrap_or_default()
}

/// Raises RLIMIT_MEMLOCK so the UMEM can be pinned on kernels that still
/// charge it there; failure is not fatal (CAP_IPC_LOCK or memcg accounting).
fn raise_memlock() {
    let limit = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a valid rlimit struct, read by the kernel only.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) };
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

impl Capture {
    /// Validates `cfg`, loads and attaches the XDP program, binds one socket
    /// per queue and starts one pinned worker per queue.
    ///
    /// Nothing is left attached and no output file is left behind if this fails.
    ///
    /// # Errors
    /// Any [`Error`]: each names what is wrong and how to fix it.
    pub fn start(cfg: &CaptureConfig, output: Output) -> Result<Capture> {
        cfg.validate()?;
        if cfg.monitor.is_some() && output == Output::Stdout {
            return Err(Error::Config(
                "monitor lines go to standard output, so -w - cannot share it: write the pcap to a file with -w FILE".into(),
            ));
        }
        crate::sys::check_capabilities()?;
        let ifindex = ifindex(&cfg.iface)?;
        let available = rx_queue_count(&cfg.iface);
        let queues = cfg
            .queues
            .clone()
            .unwrap_or_else(|| (0..available).collect());
        if let Some(&queue) = queues.iter().find(|&&q| q >= available) {
            return Err(Error::NoSuchQueue {
                iface: cfg.iface.clone(),
                queue,
                available,
            });
        }
        // Refuse early, before binding sockets, if someone else's XDP program
        // (or another capture) holds the interface.
        crate::loader::check_no_xdp_program(&cfg.iface, ifindex)?;
        let allowed = allowed_cores();
        let cores = match &cfg.cores {
            Some(cores) => {
                if let Some(c) = cores.iter().find(|c| !allowed.contains(c)) {
                    return Err(Error::Config(format!(
                        "CPU {c} is not available to this process (available: {allowed:?})"
                    )));
                }
                cores.clone()
            }
            None if allowed.is_empty() => vec![0; queues.len()],
            None => (0..queues.len())
                .map(|i| allowed[i % allowed.len()])
                .collect(),
        };

        // Open the output now, so that an unwritable path fails before
        // anything is loaded, but truncate an existing file only once the
        // capture is running: a failed start leaves it as it was.
        let mut created = CreatedFile(None);
        let mut file_to_truncate = None;
        let out: Option<Box<dyn Write + Send>> = match &output {
            Output::None => None,
            Output::Stdout => Some(Box::new(std::io::stdout())),
            Output::File(path) => {
                let existed = path.exists();
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)
                    .map_err(|error| Error::Output {
                        path: path.clone(),
                        error,
                    })?;
                if !existed {
                    created.0 = Some(path.clone());
                }
                let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
                if regular {
                    file_to_truncate = Some((
                        file.try_clone()
                            .map_err(|e| crate::error::syscall_error("dup(output file)", e))?,
                        path.clone(),
                    ));
                }
                Some(Box::new(file))
            }
        };
        let mut warnings: Vec<String> = mtu_warning(&cfg.iface, cfg.frame_size)
            .into_iter()
            .collect();
        if cfg.busy_poll {
            warnings.extend(busy_poll_warning(&cfg.iface));
        }

        raise_memlock();
        let program = XdpProgram::load()?;
        let filter = Program::compile(cfg.filter.as_ref(), program.max_filter_tests())
            .map_err(|e| Error::Config(e.to_string()))?;
        program.set_filter(&filter)?;
        if let Some(&queue) = queues.iter().find(|&&q| q >= program.max_queues()) {
            return Err(Error::Config(format!(
                "queue {queue} is beyond the {} queues xsktap can redirect",
                program.max_queues()
            )));
        }
        let mut sockets = Vec::with_capacity(queues.len());
        for &queue in &queues {
            let socket = XskSocket::new(&XskConfig {
                iface: cfg.iface.clone(),
                ifindex,
                queue,
                frame_size: cfg.frame_size,
                ring_size: cfg.ring_size,
                zero_copy: cfg.zero_copy,
            })?;
            if cfg.busy_poll {
                socket.enable_busy_poll(20, cfg.batch_size)?;
            }
            program.add_socket(queue, socket.fd())?;
            sockets.push(socket);
        }
        let link = program.attach(&cfg.iface, ifindex, cfg.xdp_mode)?;
        let xdp_mode = link.mode();

        if let Some((file, path)) = file_to_truncate {
            file.set_len(0)
                .map_err(|error| Error::Output { path, error })?;
        }
        // Writers (and whatever the caller runs beside the capture) belong on
        // the CPUs no worker uses, so that they never preempt a worker.
        let housekeeping: Vec<usize> = allowed
            .iter()
            .copied()
            .filter(|c| !cores.contains(c))
            .collect();
        let buffers = 4 * queues.len() + 4;
        let spawn_error = |e| crate::error::syscall_error("spawn(writer thread)", e);
        let writer = match out {
            Some(out) => Some(
                BatchWriter::pcap(out, cfg.snaplen, buffers, &housekeeping).map_err(spawn_error)?,
            ),
            None => None,
        };
        let monitor_writer = match cfg.monitor {
            Some(_) => Some(
                BatchWriter::lines(Box::new(std::io::stdout()), buffers, &housekeeping)
                    .map_err(spawn_error)?,
            ),
            None => None,
        };
        let iface_name: Arc<str> = Arc::from(cfg.iface.as_str());
        let shared = Arc::new(Shared {
            remaining: cfg.count.map(AtomicU64::new),
            ..Shared::default()
        });
        let mut handles = Vec::with_capacity(queues.len());
        for ((socket, &queue), &core) in sockets.into_iter().zip(&queues).zip(&cores) {
            let counters = Arc::new(CachePadded::new(WorkerCounters::default()));
            let traffic = Arc::new(CachePadded::new(TrafficCounters::default()));
            let flows = Arc::new(FlowExchange::default());
            let latency = Arc::new(Mutex::new(LatencyStats::default()));
            let handle = QueueHandle {
                queue,
                core,
                mode: socket.mode(),
                counters: counters.clone(),
                traffic: traffic.clone(),
                flows: flows.clone(),
                latency: latency.clone(),
                stats: socket.stats_handle()?,
                thread: None,
            };
            let monitor = match (cfg.monitor, &monitor_writer) {
                (Some(format), Some(w)) => Some(Monitor {
                    format,
                    iface: iface_name.clone(),
                    lines: w.batcher(),
                }),
                _ => None,
            };
            let worker = Worker {
                queue,
                core,
                socket,
                sink: writer.as_ref().map(BatchWriter::batcher),
                monitor,
                shared: shared.clone(),
                counters,
                traffic,
                flows: FlowTable::new(cfg.flow_table_size),
                flow_exchange: flows,
                latency,
                batch_size: cfg.batch_size,
                busy_poll: cfg.busy_poll,
                coalesce_usecs: cfg.coalesce_usecs,
            };
            handles.push((handle, worker));
        }
        let mut capture = Capture {
            shared,
            queues: Vec::with_capacity(handles.len()),
            writer,
            monitor_writer,
            link: Some(link),
            program,
            xdp_mode,
            started: Instant::now(),
            warnings,
            housekeeping,
        };
        for (mut handle, worker) in handles {
            let thread = std::thread::Builder::new()
                .name(format!("xsktap-q{}", handle.queue))
                .spawn(move || worker.run())
                .map_err(|e| crate::error::syscall_error("spawn(worker thread)", e))?;
            handle.thread = Some(thread);
            capture.queues.push(handle);
        }
        // The capture is running: the output file is ours to keep from here on.
        created.0 = None;
        Ok(capture)
    }

    /// Things the user should know before trusting the capture, one line each.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The mode the XDP program was attached in.
    pub fn xdp_mode(&self) -> AttachedMode {
        self.xdp_mode
    }

    /// Reads every counter without stopping the workers.
    pub fn snapshot(&self) -> Snapshot {
        let at = Instant::now();
        let queues = self
            .queues
            .iter()
            .map(|q| {
                let c = &q.counters;
                QueueSnapshot {
                    queue: q.queue,
                    core: q.core,
                    bind_mode: Some(q.mode),
                    received: c.received.load(Ordering::Relaxed),
                    received_bytes: c.received_bytes.load(Ordering::Relaxed),
                    written: c.written.load(Ordering::Relaxed),
                    written_bytes: c.written_bytes.load(Ordering::Relaxed),
                    over_count: c.over_count.load(Ordering::Relaxed),
                    sink_closed_drops: c.sink_closed_drops.load(Ordering::Relaxed),
                    socket: q.stats.stats().unwrap_or_default(),
                    bpf: self.program.counters(q.queue).unwrap_or_default(),
                    flow_evictions: q.flows.evictions.load(Ordering::Relaxed),
                }
            })
            .collect();
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
            let Ok(l) = q.latency.lock() else { continue };
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

    /// The top `n` flows and talkers, from the copies the workers publish
    /// a few times a second.
    pub fn top(&self, n: usize) -> Top {
        Top::build(self.queues.iter().flat_map(|q| q.flows.latest()), n)
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
        }
    }

    /// The CPUs this process may use that run no worker: where reporting,
    /// serving and other housekeeping belong. Empty when every CPU runs one.
    pub fn housekeeping_cpus(&self) -> Vec<usize> {
        self.housekeeping.clone()
    }

    /// Whether `--busy-poll` found a queue with no NAPI to run (the kernel
    /// gives its socket no NAPI id, as for veth on 6.x kernels): that worker
    /// spins on its ring without sleeping but cannot move the driver's
    /// receive work onto its core. Known once frames have arrived.
    pub fn busy_poll_without_napi(&self) -> bool {
        self.shared.no_napi.load(Ordering::Relaxed)
    }

    /// Why the capture ended by itself, if it did.
    pub fn finished(&self) -> Option<Finish> {
        if self.shared.count_reached.load(Ordering::Relaxed) {
            Some(Finish::CountReached)
        } else if self.shared.sink_closed.load(Ordering::Relaxed) {
            Some(Finish::OutputClosed)
        } else if self
            .queues
            .iter()
            .any(|q| q.thread.as_ref().is_some_and(|t| t.is_finished()))
        {
            Some(Finish::WorkerFailed)
        } else {
            None
        }
    }

    /// Detaches the program, lets the workers drain what is already in their
    /// rings, flushes the output and returns the final counters.
    pub fn stop(mut self) -> Summary {
        let duration = self.started.elapsed();
        // Detach first: nothing new is redirected, so nothing is lost while
        // the workers finish what the rings already hold.
        self.link.take();
        self.shared.drain.store(true, Ordering::Relaxed);
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
        let writer = self.writer.take().map(BatchWriter::finish);
        let monitor_writer = self.monitor_writer.take().map(BatchWriter::finish);
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
        for q in &mut self.queues {
            if let Some(thread) = q.thread.take() {
                let _ = thread.join();
            }
        }
        for writer in [self.writer.take(), self.monitor_writer.take()]
            .into_iter()
            .flatten()
        {
            writer.finish();
        }
    }
}
