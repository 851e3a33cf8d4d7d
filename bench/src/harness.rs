//! `xsktap-bench run`: every receiver side by side on the same generated
//! traffic, on a test bed the harness builds and tears down.
//!
//! For each receiver: the share recorded at the generator's maximum rate, a
//! binary search (RFC 2544 style) for the highest rate recorded with zero
//! loss, the CPU time per packet at a fixed rate, and for xsktap and a kernel
//! UDP socket the one-way latency. Every frame offered is either recorded or
//! attributed to a counted drop (veth ring, AF_XDP socket, receiver's own);
//! what is left over is reported as unattributed.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use xsktap_core::summary::SummaryJson;

use crate::testbed::Testbed;
use serde_json::{json, Value};

/// The receivers compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// An XDP program that counts and drops: the machine's limit.
    XdpDrop,
    /// xsktap writing pcap to tmpfs.
    XsktapPcap,
    /// xsktap writing pcap to tmpfs with preferred busy polling.
    XsktapBusyPoll,
    /// xsktap counting only.
    XsktapNoSink,
    /// tcpdump writing pcap to tmpfs.
    Tcpdump,
    /// netsniff-ng writing pcap to tmpfs.
    NetsniffNg,
    /// dpdk-testpmd with net_af_xdp, rxonly.
    DpdkTestpmd,
    /// A kernel UDP socket read with recvmmsg (the latency peer; not in the table).
    UdpSocket,
}

impl Receiver {
    /// Every receiver, in table order.
    pub const ALL: [Receiver; 7] = [
        Receiver::XdpDrop,
        Receiver::XsktapPcap,
        Receiver::XsktapBusyPoll,
        Receiver::XsktapNoSink,
        Receiver::Tcpdump,
        Receiver::NetsniffNg,
        Receiver::DpdkTestpmd,
    ];

    /// Its name in tables and files.
    pub fn name(self) -> &'static str {
        match self {
            Receiver::XdpDrop => "xdp-count-drop",
            Receiver::XsktapPcap => "xsktap -w tmpfs",
            Receiver::XsktapBusyPoll => "xsktap -w tmpfs --busy-poll",
            Receiver::XsktapNoSink => "xsktap (no sink)",
            Receiver::Tcpdump => "tcpdump -w tmpfs",
            Receiver::NetsniffNg => "netsniff-ng -o tmpfs",
            Receiver::DpdkTestpmd => "dpdk-testpmd af_xdp rxonly",
            Receiver::UdpSocket => "kernel UDP socket (recvmmsg)",
        }
    }

    /// Why it cannot run here, if it cannot.
    fn missing(self) -> Option<String> {
        let program = match self {
            Receiver::Tcpdump => "tcpdump",
            Receiver::NetsniffNg => "netsniff-ng",
            Receiver::DpdkTestpmd => "dpdk-testpmd",
            _ => return None,
        };
        let found = std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
            .unwrap_or(false);
        (!found).then(|| {
            format!("{program} is not installed (Debian 12 has no package with dpdk-testpmd)")
        })
    }
}

/// How long and how thoroughly to measure.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Seconds of traffic per trial.
    pub trial_secs: f64,
    /// Binary-search steps for the zero-loss rate.
    pub search_steps: u32,
    /// Frame size.
    pub frame_size: usize,
    /// Offered rate for the CPU-cost and latency trials (frames per second).
    pub fixed_rate: f64,
    /// Where results go.
    pub out_dir: PathBuf,
    /// Receivers to run (the others are skipped with a note).
    pub receivers: Vec<Receiver>,
    /// Run the receiving veth's NAPI as a SCHED_FIFO thread on the receivers'
    /// CPU instead of in softirq on the generator's CPU (the kernel default).
    pub napi_thread: bool,
}

/// One trial: a receiver at one offered rate.
#[derive(Debug, Clone)]
pub struct Trial {
    /// The receiver.
    pub receiver: Receiver,
    /// Rate asked of the generator; `None` for as fast as it goes.
    pub target_rate: Option<f64>,
    /// Frames the generator sent.
    pub sent: u64,
    /// Rate actually offered.
    pub offered_rate: f64,
    /// Frames the receiver recorded.
    pub recorded: u64,
    /// Frames dropped by the receiving veth (its ring was full).
    pub veth_drops: u64,
    /// Frames dropped at the AF_XDP socket (rx_dropped + rx_ring_full).
    pub socket_drops: u64,
    /// Frames the receiver reports it dropped itself (tcpdump's "dropped by kernel", ...).
    pub receiver_drops: u64,
    /// CPU seconds the machine spent during the trial (all CPUs, softirq
    /// included) minus the generator's own: the receiver's whole cost.
    pub cpu_secs: f64,
    /// Latency percentiles (ns), when measured: p50, p90, p99, p99.9, max.
    pub latency: Option<[u64; 5]>,
}

impl Trial {
    /// Frames neither recorded nor attributed to a counted drop.
    pub fn unattributed(&self) -> i64 {
        self.sent as i64
            - (self.recorded + self.veth_drops + self.socket_drops + self.receiver_drops) as i64
    }

    /// Frames not recorded.
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.recorded)
    }

    fn to_json(&self) -> Value {
        json!({
            "receiver": self.receiver.name(),
            "target_rate": self.target_rate,
            "sent": self.sent,
            "offered_rate": self.offered_rate,
            "recorded": self.recorded,
            "veth_drops": self.veth_drops,
            "socket_drops": self.socket_drops,
            "receiver_drops": self.receiver_drops,
            "unattributed": self.unattributed(),
            "cpu_secs": self.cpu_secs,
            "latency_ns": self.latency.map(|l| json!({"p50": l[0], "p90": l[1], "p99": l[2], "p99_9": l[3], "max": l[4]})),
        })
    }
}

/// The test bed: namespaces `NAME-a` (generator) and `NAME-b` (receivers).
struct Bed {
    /// The shared test bed (torn down when dropped).
    bed: Testbed,
}

impl Bed {
    fn new(napi_thread: bool) -> anyhow::Result<Bed> {
        let bed = Bed {
            bed: Testbed::named("xtb", 1),
        };
        // Frames sent by XDP_TX reach a veth without an XDP program only through GRO.
        let ok = bed
            .exec_b(&["ethtool", "-K", &bed.b(), "gro", "on"])
            .status()?;
        anyhow::ensure!(ok.success(), "enabling GRO on {}", bed.b());
        if !napi_thread {
            return Ok(bed);
        }
        // The receiving veth's NAPI (XDP, copies into UMEM, the stack) would
        // otherwise run in softirq on the generator's CPU. As a thread pinned
        // to the receivers' CPU, every receiver pays for all of its own work.
        // (RT throttling keeps 5 % of CPU 1 for the receiver under overload.)
        let threaded = format!("echo 1 > /sys/class/net/{}/threaded", bed.b());
        let ok = bed.exec_b(&["sh", "-c", &threaded]).status()?;
        anyhow::ensure!(ok.success(), "threaded NAPI on {}", bed.b());
        let pid = bed
            .napi_thread()
            .context("finding the veth's NAPI thread")?;
        let set = core_affinity_mask(RECEIVER_CPU);
        // SAFETY: a valid cpu_set_t for a thread id we found in /proc.
        let ret = unsafe {
            libc::sched_setaffinity(
                pid as libc::pid_t,
                std::mem::size_of::<libc::cpu_set_t>(),
                &set,
            )
        };
        anyhow::ensure!(
            ret == 0,
            "pinning the NAPI thread: {}",
            std::io::Error::last_os_error()
        );
        // Softirq work preempts user threads on a real NIC; SCHED_FIFO gives the
        // NAPI thread the same precedence over whichever receiver shares its CPU.
        let param = libc::sched_param { sched_priority: 50 };
        // SAFETY: a valid sched_param for a thread id we found in /proc.
        let ret = unsafe { libc::sched_setscheduler(pid as libc::pid_t, libc::SCHED_FIFO, &param) };
        anyhow::ensure!(
            ret == 0,
            "raising the NAPI thread's priority: {}",
            std::io::Error::last_os_error()
        );
        Ok(bed)
    }

    /// Sets (or resets to the kernel's defaults) the receiving veth's
    /// interrupt deferral, which preferred busy polling relies on.
    fn defer_interrupts(&self, on: bool) -> anyhow::Result<()> {
        let (defer, timeout) = if on { (2, 20_000) } else { (0, 0) };
        let cmd = format!(
            "echo {defer} > /sys/class/net/{b}/napi_defer_hard_irqs && echo {timeout} > /sys/class/net/{b}/gro_flush_timeout",
            b = self.b()
        );
        let ok = self.exec_b(&["sh", "-c", &cmd]).status()?;
        anyhow::ensure!(ok.success(), "setting interrupt deferral on {}", self.b());
        Ok(())
    }

    /// The kernel thread that runs the receiving veth's NAPI.
    fn napi_thread(&self) -> Option<u32> {
        // Thread names are cut to 15 bytes: "napi/NAME-b-ID".
        let want: String = format!("napi/{}-", self.b()).chars().take(15).collect();
        std::fs::read_dir("/proc")
            .ok()?
            .filter_map(Result::ok)
            .find_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
                comm.trim_end().starts_with(&want).then_some(pid)
            })
    }

    fn a(&self) -> String {
        self.bed.ns_a()
    }

    fn b(&self) -> String {
        self.bed.ns_b()
    }

    fn exec_in(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(args);
        c
    }

    fn exec_b(&self, args: &[&str]) -> Command {
        self.exec_in(&self.b(), args)
    }

    /// Sum of the ethtool counters of `dev` (in `ns`) that `want` selects.
    fn ethtool_sum(&self, ns: &str, dev: &str, want: impl Fn(&str) -> bool) -> anyhow::Result<u64> {
        let out = self.exec_in(ns, &["ethtool", "-S", dev]).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .filter_map(|l| l.trim().split_once(": "))
            .filter(|(k, _)| want(k))
            .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
            .sum())
    }

    /// Frames lost between the veths: the receiving side's ring drops, and
    /// the sending side's XDP transmit errors (the peer's ring was full).
    fn veth_drops(&self) -> anyhow::Result<u64> {
        let rx = self.ethtool_sum(&self.b(), &self.b(), |k| {
            k.starts_with("rx_queue_") && k.ends_with("_drops") && !k.ends_with("xdp_drops")
        })?;
        let tx = self.ethtool_sum(&self.a(), &self.a(), |k| {
            k.starts_with("tx_queue_") && k.ends_with("_xdp_xmit_errors")
        })?;
        Ok(rx + tx)
    }
}

/// The lowest rate the zero-loss search tries.
const MIN_RATE: f64 = 20_000.0;

/// The CPU every receiver (and the veth's NAPI thread) runs on; the generator uses CPU 0.
const RECEIVER_CPU: usize = 1;

fn core_affinity_mask(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    set
}

/// Busy CPU seconds of the whole machine (every CPU, every kind of work
/// but idle and iowait), from /proc/stat.
fn system_busy_secs() -> f64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice
    let busy: f64 = fields
        .iter()
        .enumerate()
        .filter(|(i, _)| ![3, 4, 8, 9].contains(i))
        .map(|(_, v)| v)
        .sum();
    // SAFETY: sysconf has no preconditions.
    busy / (unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64).max(1.0)
}

/// CPU seconds used by this process's finished children (the generator runs).
fn children_cpu_secs() -> f64 {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid rusage to write.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A receiver process and where it reports.
struct Running {
    child: Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    kind: Receiver,
    pcap: PathBuf,
    json: PathBuf,
}

impl Running {
    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn interrupt(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
    }

    fn wait(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                anyhow::bail!(
                    "{} did not stop; stderr: {}",
                    self.kind.name(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(50));
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Harness<'a> {
    bed: Bed,
    cfg: &'a RunConfig,
    xsktap: PathBuf,
    bench: PathBuf,
    shm: PathBuf,
}

impl Harness<'_> {
    fn start(&self, kind: Receiver, trial: u32) -> anyhow::Result<Running> {
        let pcap = self.shm.join(format!("trial{trial}.pcap"));
        let json = self.shm.join(format!("trial{trial}.json"));
        let _ = std::fs::remove_file(&pcap);
        let _ = std::fs::remove_file(&json);
        let b = self.bed.b();
        let xsktap = self.xsktap.to_string_lossy().to_string();
        let bench = self.bench.to_string_lossy().to_string();
        let pcap_s = pcap.to_string_lossy().to_string();
        let json_s = json.to_string_lossy().to_string();
        // Every receiver's threads live on CPU 1; the generator sends from CPU 0.
        // xsktap's worker is pinned with --cores, its other threads by taskset.
        let owned = |args: &[&str]| -> Vec<String> { args.iter().map(|s| s.to_string()).collect() };
        let xsktap_args = |extra: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = ["taskset", "-c", "1"].map(String::from).to_vec();
            v.extend([&xsktap, "capture", "-i", &b, "--cores", "1", "-q"].map(String::from));
            v.extend(extra.iter().map(|s| s.to_string()));
            v.extend(["--summary-json", &json_s].map(String::from));
            v
        };
        let (args, ready): (Vec<String>, &str) = match kind {
            Receiver::XdpDrop => (
                owned(&[&bench, "drop", "-i", &b, "--json", &json_s]),
                "attached",
            ),
            Receiver::XsktapPcap => (xsktap_args(&["-w", &pcap_s]), "xsktap: capturing"),
            Receiver::XsktapBusyPoll => (
                xsktap_args(&["--busy-poll", "-w", &pcap_s]),
                "xsktap: capturing",
            ),
            Receiver::XsktapNoSink => (xsktap_args(&[]), "xsktap: capturing"),
            Receiver::Tcpdump => (
                owned(&[
                    "taskset", "-c", "1", "tcpdump", "-i", &b, "-Q", "in", "-n", "-B", "65536",
                    "-w", &pcap_s,
                ]),
                "listening on",
            ),
            Receiver::NetsniffNg => (
                owned(&[
                    "netsniff-ng",
                    "--in",
                    &b,
                    "--out",
                    &pcap_s,
                    "--silent",
                    "--bind-cpu",
                    "1",
                    "-t",
                    "host",
                ]),
                "Running!",
            ),
            Receiver::DpdkTestpmd | Receiver::UdpSocket => {
                anyhow::bail!("{} is not started this way", kind.name())
            }
        };
        // Preferred busy polling needs the device to defer its interrupts;
        // every other receiver runs with the kernel's defaults.
        self.bed
            .defer_interrupts(kind == Receiver::XsktapBusyPoll)?;
        let mut child = self
            .bed
            .exec_b(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", kind.name()))?;
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&line);
                        s.push('\n');
                    }
                }
            });
        }
        let mut running = Running {
            child,
            stderr,
            kind,
            pcap,
            json,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !running.stderr().contains(ready) {
            if let Some(status) = running.child.try_wait()? {
                anyhow::bail!("{} exited ({status}): {}", kind.name(), running.stderr());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} never became ready: {}",
                kind.name(),
                running.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Attached and reading: give the capture threads a moment to spin up.
        std::thread::sleep(Duration::from_millis(300));
        Ok(running)
    }

    fn generate(&self, count: u64, rate: Option<f64>) -> anyhow::Result<(u64, f64)> {
        let a = self.bed.a();
        let bench = self.bench.to_string_lossy().to_string();
        let count_s = count.to_string();
        let size = self.cfg.frame_size.to_string();
        let mut args = vec![
            bench.as_str(),
            "gen",
            "-i",
            &a,
            "-c",
            &count_s,
            "-s",
            &size,
            "--cpus",
            "0",
            "--flows",
            "16",
        ];
        let rate_s = rate.map(|r| format!("{r:.0}"));
        if let Some(r) = &rate_s {
            args.extend(["--rate", r.as_str()]);
        }
        let out = self.bed.exec_in(&a, &args).output()?;
        anyhow::ensure!(
            out.status.success(),
            "generator: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).context("generator output")?;
        Ok((
            v["sent"].as_u64().unwrap_or(0),
            v["rate"].as_f64().unwrap_or(0.0),
        ))
    }

    fn trial(
        &self,
        kind: Receiver,
        rate: Option<f64>,
        n: u32,
        latency: bool,
    ) -> anyhow::Result<Trial> {
        let count = match rate {
            Some(r) => (r * self.cfg.trial_secs) as u64,
            // As fast as it goes: about trial_secs at the generator's ~3 Mpps.
            None => (3e6 * self.cfg.trial_secs) as u64,
        }
        .max(1000);
        let mut rx = self.start(kind, n)?;
        let veth_before = self.bed.veth_drops()?;
        let busy_before = system_busy_secs();
        let gen_before = children_cpu_secs();
        let (sent, offered_rate) = self.generate(count, rate)?;
        // Let the receiver drain its rings (tcpdump hands over a partly
        // filled buffer block only after its 1 s timeout) before it stops.
        std::thread::sleep(Duration::from_millis(1500));
        // Everything the machine did meanwhile, minus the generator's own
        // CPU time: the receiver's process, and its softirq work wherever it ran.
        let cpu = (system_busy_secs() - busy_before) - (children_cpu_secs() - gen_before);
        let veth_drops = self.bed.veth_drops()? - veth_before;
        rx.interrupt();
        rx.wait(Duration::from_secs(30))?;
        let stderr = rx.stderr();
        let (recorded, socket_drops, receiver_drops, lat) = match kind {
            Receiver::XdpDrop => {
                let v: Value = serde_json::from_str(&std::fs::read_to_string(&rx.json)?)?;
                (v["dropped"].as_u64().unwrap_or(0), 0, 0, None)
            }
            Receiver::XsktapPcap | Receiver::XsktapBusyPoll | Receiver::XsktapNoSink => {
                let s: SummaryJson = serde_json::from_str(&std::fs::read_to_string(&rx.json)?)
                    .with_context(|| format!("reading {}", rx.json.display()))?;
                anyhow::ensure!(
                    s.lost_known,
                    "{}: some kernel counters could not be read",
                    kind.name()
                );
                let socket_drops = s
                    .queues
                    .iter()
                    .map(|q| q.rx_dropped.unwrap_or(0) + q.rx_ring_full.unwrap_or(0))
                    .sum();
                let lat = latency
                    .then(|| {
                        let l = s.latency.as_ref()?;
                        Some([l.p50_ns, l.p90_ns, l.p99_ns, l.p99_9_ns, l.max_ns])
                    })
                    .flatten();
                (s.packets, socket_drops, 0, lat)
            }
            Receiver::Tcpdump => {
                // Not "received by filter" minus captured: that count includes
                // frames `-Q in` discards afterwards (the stack's own replies).
                // The 1.5 s drain lets tcpdump write everything it received.
                let kernel = leading_number(&stderr, "dropped by kernel")
                    + leading_number(&stderr, "dropped by interface");
                (count_pcap(&rx.pcap)?, 0, kernel, None)
            }
            Receiver::NetsniffNg => {
                // "N packets incoming (M unread on exit)" and "N packets dropped".
                let unread = stderr
                    .lines()
                    .find(|l| l.contains("unread on exit"))
                    .and_then(|l| l.split('(').nth(1))
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
                (
                    count_pcap(&rx.pcap)?,
                    0,
                    leading_number(&stderr, "packets dropped") + unread,
                    None,
                )
            }
            Receiver::DpdkTestpmd | Receiver::UdpSocket => unreachable!("never started here"),
        };
        let _ = std::fs::remove_file(&rx.pcap);
        // The veth counts a redirect its AF_XDP socket could not take as a
        // drop of its own too: attribute those frames once, to the socket.
        let veth_drops = veth_drops.saturating_sub(socket_drops);
        Ok(Trial {
            receiver: kind,
            target_rate: rate,
            sent,
            offered_rate,
            recorded,
            veth_drops,
            socket_drops,
            receiver_drops,
            cpu_secs: cpu,
            latency: lat,
        })
    }

    fn udp_latency(&self, rate: f64) -> anyhow::Result<Trial> {
        let bench = self.bench.to_string_lossy().to_string();
        let secs = (self.cfg.trial_secs + 3.0).to_string();
        let mut child = self
            .bed
            .exec_b(&[
                &bench,
                "udp-recv",
                "--port",
                "9",
                "--seconds",
                &secs,
                "--cpu",
                "1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(500));
        let veth_before = self.bed.veth_drops()?;
        let (sent, offered_rate) =
            self.generate((rate * self.cfg.trial_secs) as u64, Some(rate))?;
        let veth_drops = self.bed.veth_drops()? - veth_before;
        let mut out = String::new();
        child
            .stdout
            .take()
            .expect("piped")
            .read_to_string(&mut out)?;
        let status = child.wait()?;
        anyhow::ensure!(status.success(), "udp-recv failed");
        let v: Value = serde_json::from_str(&out).context("udp-recv output")?;
        let l = &v["latency_ns"];
        let lat = [
            l["p50"].as_u64(),
            l["p90"].as_u64(),
            l["p99"].as_u64(),
            l["p99_9"].as_u64(),
            l["max"].as_u64(),
        ];
        Ok(Trial {
            receiver: Receiver::UdpSocket,
            target_rate: Some(rate),
            sent,
            offered_rate,
            recorded: v["received"].as_u64().unwrap_or(0),
            veth_drops,
            socket_drops: 0,
            receiver_drops: v["socket_drops"].as_u64().unwrap_or(0),
            cpu_secs: 0.0,
            latency: lat
                .iter()
                .all(Option::is_some)
                .then(|| lat.map(|x| x.unwrap_or(0))),
        })
    }
}

/// The number that starts the first line of `text` containing `what`
/// (tcpdump's and netsniff-ng's exit statistics), 0 if there is none.
fn leading_number(text: &str, what: &str) -> u64 {
    text.lines()
        .find(|l| l.contains(what))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Frames in a pcap file (any timestamp resolution).
fn count_pcap(path: &Path) -> anyhow::Result<u64> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(bytes.len() >= 24, "{} has no pcap header", path.display());
    let mut at = 24;
    let mut n = 0;
    while at + 16 <= bytes.len() {
        let incl = u32::from_ne_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
        at += 16 + incl;
        if at > bytes.len() {
            break;
        }
        n += 1;
    }
    Ok(n)
}

/// Results of a whole run.
pub struct RunResult {
    /// Every trial, in order.
    pub trials: Vec<Trial>,
    /// Per receiver: share recorded at the maximum rate, zero-loss rate,
    /// CPU ns per packet at the fixed rate.
    pub summary: Vec<Value>,
    /// Receivers skipped, with the reason.
    pub skipped: Vec<(Receiver, String)>,
    /// The kernel UDP socket's latency trial.
    pub udp: Option<Trial>,
}

/// Runs the comparison.
pub fn run(cfg: &RunConfig, xsktap: &Path, bench: &Path) -> anyhow::Result<RunResult> {
    let shm = PathBuf::from("/dev/shm").join(format!("xsktap-bench-{}", std::process::id()));
    std::fs::create_dir_all(&shm)?;
    let h = Harness {
        bed: Bed::new(cfg.napi_thread)?,
        cfg,
        xsktap: xsktap.to_path_buf(),
        bench: bench.to_path_buf(),
        shm: shm.clone(),
    };
    let mut trials = Vec::new();
    let mut summary = Vec::new();
    let mut skipped = Vec::new();
    let mut n = 0u32;
    let result = (|| -> anyhow::Result<Option<Trial>> {
        for &kind in &cfg.receivers {
            if let Some(why) = kind.missing() {
                eprintln!("xsktap-bench: skipping {}: {why}", kind.name());
                skipped.push((kind, why));
                continue;
            }
            eprintln!("xsktap-bench: {}", kind.name());
            // At the generator's maximum rate.
            n += 1;
            let max = h.trial(kind, None, n, false)?;
            let max_rate = max.offered_rate;
            trials.push(max.clone());
            // The highest rate recorded with zero loss: halve until a trial
            // loses nothing, then bisect between it and the last lossy rate.
            let mut hi = max_rate;
            let mut lo: Option<f64> = None;
            let mut best: Option<f64> = (max.lost() == 0).then_some(max.offered_rate);
            let mut steps = 0;
            while best.is_none() && steps < cfg.search_steps + 6 && hi / 2.0 >= MIN_RATE {
                steps += 1;
                let r = hi / 2.0;
                n += 1;
                let t = h.trial(kind, Some(r), n, false)?;
                if t.lost() == 0 {
                    lo = Some(r);
                    best = Some(t.offered_rate);
                } else {
                    hi = r;
                }
                trials.push(t);
            }
            if let Some(mut low) = lo {
                for _ in 0..cfg.search_steps {
                    let mid = (low + hi) / 2.0;
                    n += 1;
                    let t = h.trial(kind, Some(mid), n, false)?;
                    if t.lost() == 0 {
                        low = mid;
                        best = Some(t.offered_rate);
                    } else {
                        hi = mid;
                    }
                    trials.push(t);
                }
            }
            // CPU cost (and xsktap's latency) at a fixed rate.
            n += 1;
            let measure_latency = matches!(kind, Receiver::XsktapNoSink | Receiver::XsktapBusyPoll);
            let fixed = h.trial(kind, Some(cfg.fixed_rate), n, measure_latency)?;
            let cpu_ns = if fixed.recorded > 0 {
                fixed.cpu_secs * 1e9 / fixed.recorded as f64
            } else {
                0.0
            };
            summary.push(json!({
                "receiver": kind.name(),
                "max_offered_rate": max_rate,
                "recorded_share_at_max": max.recorded as f64 / max.sent.max(1) as f64,
                "zero_loss_rate": best.unwrap_or(0.0),
                "cpu_ns_per_packet": cpu_ns,
                "latency_ns": fixed.latency.map(|l| json!({"p50": l[0], "p90": l[1], "p99": l[2], "p99_9": l[3], "max": l[4]})),
            }));
            trials.push(fixed);
        }
        if cfg.receivers.contains(&Receiver::XsktapNoSink) {
            eprintln!("xsktap-bench: kernel UDP socket (latency)");
            return Ok(Some(h.udp_latency(cfg.fixed_rate)?));
        }
        Ok(None)
    })();
    let _ = std::fs::remove_dir_all(&shm);
    let udp = result?;
    std::fs::create_dir_all(&cfg.out_dir)?;
    let all: Vec<Value> = trials.iter().map(Trial::to_json).collect();
    let doc = json!({
        "frame_size": cfg.frame_size,
        "trial_secs": cfg.trial_secs,
        "fixed_rate": cfg.fixed_rate,
        "napi_thread": cfg.napi_thread,
        "summary": summary,
        "udp_socket": udp.as_ref().map(Trial::to_json),
        "skipped": skipped.iter().map(|(r, why)| json!({"receiver": r.name(), "why": why})).collect::<Vec<_>>(),
        "trials": all,
    });
    std::fs::write(
        cfg.out_dir.join("results.json"),
        serde_json::to_string_pretty(&doc)? + "\n",
    )?;
    let mut csv = String::from("receiver,target_rate,offered_rate,sent,recorded,veth_drops,socket_drops,receiver_drops,unattributed,cpu_secs\n");
    for t in &trials {
        csv.push_str(&format!(
            "{},{},{:.0},{},{},{},{},{},{},{:.4}\n",
            t.receiver.name(),
            t.target_rate
                .map_or("max".to_string(), |r| format!("{r:.0}")),
            t.offered_rate,
            t.sent,
            t.recorded,
            t.veth_drops,
            t.socket_drops,
            t.receiver_drops,
            t.unattributed(),
            t.cpu_secs
        ));
    }
    std::fs::write(cfg.out_dir.join("results.csv"), csv)?;
    std::fs::write(cfg.out_dir.join("chart.svg"), crate::chart::svg(&trials))?;
    Ok(RunResult {
        trials,
        summary,
        skipped,
        udp,
    })
}
