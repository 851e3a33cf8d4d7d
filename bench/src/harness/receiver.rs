//! The receivers compared, how each is started, and how what it recorded and
//! dropped is read back once it stops.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xsktap_core::pcap;
use xsktap_core::summary::SummaryJson;

use super::bed::RECEIVER_CPU;

/// The receivers compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// An XDP program that counts and drops: the machine's limit.
    XdpDrop,
    /// xsktap writing pcap to tmpfs, pinned to the receivers' CPU.
    XsktapPcap,
    /// xsktap writing pcap to tmpfs where its own placement puts it.
    XsktapPlaced,
    /// xsktap writing pcap to tmpfs, stamping per batch (`-j host_lowprec`).
    XsktapLowprec,
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
    pub const ALL: [Receiver; 9] = [
        Receiver::XdpDrop,
        Receiver::XsktapPcap,
        Receiver::XsktapPlaced,
        Receiver::XsktapLowprec,
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
            Receiver::XsktapPlaced => "xsktap -w tmpfs, own placement",
            Receiver::XsktapLowprec => "xsktap -w tmpfs -j host_lowprec",
            Receiver::XsktapBusyPoll => "xsktap -w tmpfs --busy-poll",
            Receiver::XsktapNoSink => "xsktap (no sink)",
            Receiver::Tcpdump => "tcpdump -w tmpfs",
            Receiver::NetsniffNg => "netsniff-ng -o tmpfs",
            Receiver::DpdkTestpmd => "dpdk-testpmd af_xdp rxonly",
            Receiver::UdpSocket => "kernel UDP socket (recvmmsg)",
        }
    }

    /// Its short name for `run --receivers`.
    pub fn slug(self) -> &'static str {
        match self {
            Receiver::XdpDrop => "drop",
            Receiver::XsktapPcap => "xsktap",
            Receiver::XsktapPlaced => "xsktap-placed",
            Receiver::XsktapLowprec => "xsktap-lowprec",
            Receiver::XsktapBusyPoll => "xsktap-busy-poll",
            Receiver::XsktapNoSink => "xsktap-no-sink",
            Receiver::Tcpdump => "tcpdump",
            Receiver::NetsniffNg => "netsniff-ng",
            Receiver::DpdkTestpmd => "testpmd",
            Receiver::UdpSocket => "udp",
        }
    }

    /// The receivers named by a comma-separated list of [`Receiver::slug`]s.
    ///
    /// # Errors
    /// A name that is none of them, with the names there are.
    pub fn parse_list(list: &str) -> anyhow::Result<Vec<Receiver>> {
        list.split(',')
            .map(|name| {
                Receiver::ALL
                    .into_iter()
                    .find(|r| r.slug() == name.trim())
                    .ok_or_else(|| {
                        let names: Vec<&str> = Receiver::ALL.iter().map(|r| r.slug()).collect();
                        anyhow::anyhow!(
                            "--receivers: no receiver is called {name:?} (there are: {})",
                            names.join(", ")
                        )
                    })
            })
            .collect()
    }

    /// Why it cannot run here, if it cannot.
    pub fn missing(self) -> Option<String> {
        let program = match self {
            Receiver::Tcpdump => "tcpdump",
            Receiver::NetsniffNg => "netsniff-ng",
            Receiver::DpdkTestpmd => "dpdk-testpmd",
            _ => return None,
        };
        find_program(program)
            .is_none()
            .then(|| format!("{program} is not installed (tools/install-deps.sh installs it)"))
    }

    /// How to start it for one trial.
    pub fn launch(self, at: &Paths) -> anyhow::Result<Launch> {
        let cpu = RECEIVER_CPU.to_string();
        let owned = |args: &[&str]| -> Vec<String> { args.iter().map(|s| s.to_string()).collect() };
        let (args, ready, readout) = match self {
            Receiver::XdpDrop => (
                owned(&[
                    &at.bench.to_string_lossy(),
                    "drop",
                    "-i",
                    &at.iface,
                    "--json",
                    &at.json.to_string_lossy(),
                ]),
                "attached",
                Readout::DropCount,
            ),
            Receiver::XsktapPcap => {
                return Ok(Launch::xsktap(self.name(), &at.xsktap, &[], true, true, at))
            }
            Receiver::XsktapPlaced => {
                return Ok(Launch::xsktap(
                    self.name(),
                    &at.xsktap,
                    &[],
                    true,
                    false,
                    at,
                ))
            }
            Receiver::XsktapLowprec => {
                return Ok(Launch::xsktap(
                    self.name(),
                    &at.xsktap,
                    &["-j", "host_lowprec"],
                    true,
                    true,
                    at,
                ))
            }
            Receiver::XsktapBusyPoll => {
                return Ok(Launch::xsktap(
                    self.name(),
                    &at.xsktap,
                    &["--busy-poll"],
                    true,
                    true,
                    at,
                ))
            }
            Receiver::XsktapNoSink => {
                return Ok(Launch::xsktap(
                    self.name(),
                    &at.xsktap,
                    &[],
                    false,
                    true,
                    at,
                ))
            }
            Receiver::Tcpdump => (
                owned(&[
                    "taskset",
                    "-c",
                    &cpu,
                    "tcpdump",
                    "-i",
                    &at.iface,
                    "-Q",
                    "in",
                    "-n",
                    "-B",
                    "65536",
                    "-w",
                    &at.pcap.to_string_lossy(),
                ]),
                "listening on",
                Readout::Tcpdump,
            ),
            Receiver::NetsniffNg => (
                owned(&[
                    "netsniff-ng",
                    "--in",
                    &at.iface,
                    "--out",
                    &at.pcap.to_string_lossy(),
                    "--silent",
                    "--bind-cpu",
                    &cpu,
                    "-t",
                    "host",
                ]),
                "Running!",
                Readout::NetsniffNg,
            ),
            Receiver::DpdkTestpmd => {
                let program =
                    find_program("dpdk-testpmd").context("dpdk-testpmd is not installed")?;
                (
                    testpmd_args(&program, &at.iface),
                    TESTPMD_READY,
                    Readout::Testpmd,
                )
            }
            Receiver::UdpSocket => anyhow::bail!("{} is not started this way", self.name()),
        };
        Ok(Launch {
            name: self.name().to_string(),
            args,
            ready,
            readout,
            busy_poll: false,
        })
    }
}

/// Where tools/install-deps.sh unpacks DPDK's testpmd when Debian's
/// package is not installed (see there why).
pub const PRIVATE_DPDK: &str = "/opt/xsktap-peers/dpdk/bin/dpdk-testpmd";

/// `program` on `PATH`, or (dpdk-testpmd) in its private prefix.
fn find_program(program: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let private = PathBuf::from(PRIVATE_DPDK);
        (program == "dpdk-testpmd" && private.is_file()).then_some(private)
    })
}

/// What testpmd prints once it forwards (receives) packets.
const TESTPMD_READY: &str = "packet forwarding - ports=";

/// testpmd receiving from `iface` through DPDK's AF_XDP driver: queue 0,
/// rxonly (count and drop), its forwarding lcore on the receivers' CPU and
/// its main lcore (which only waits for the signal) on the generator's,
/// without hugepages or PCI, statistics printed every second until SIGINT.
fn testpmd_args(program: &Path, iface: &str) -> Vec<String> {
    let generator = if RECEIVER_CPU == 0 { 1 } else { 0 };
    let lcores = format!("{generator},{RECEIVER_CPU}");
    let vdev = format!("net_af_xdp0,iface={iface},start_queue=0,queue_count=1");
    let prefix = format!("xsktap-bench-{}", std::process::id());
    [
        program.to_string_lossy().as_ref(),
        "--no-huge",
        "--no-pci",
        "-m",
        "512",
        "--file-prefix",
        &prefix,
        "-l",
        &lcores,
        "--main-lcore",
        &generator.to_string(),
        "--vdev",
        &vdev,
        "--",
        "--forward-mode=rxonly",
        "--nb-cores=1",
        // 32768 mbufs (71 MB) fit in the 512 MB given without hugepages.
        "--total-num-mbufs=32768",
        "--stats-period",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The last value after `label` in testpmd's output (its accumulated
/// forward statistics at exit come last).
fn testpmd_count(output: &str, label: &str) -> Option<u64> {
    output
        .rsplit(label)
        .next()
        .filter(|_| output.contains(label))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Where a trial's receiver runs and writes.
pub struct Paths {
    /// The receiving interface.
    pub iface: String,
    /// The xsktap binary.
    pub xsktap: PathBuf,
    /// The xsktap-bench binary (the count-and-drop receiver).
    pub bench: PathBuf,
    /// The capture file, on tmpfs.
    pub pcap: PathBuf,
    /// Where the receiver writes its counts as JSON.
    pub json: PathBuf,
}

/// A receiver ready to start: its command line and how to read it back.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Its name in tables and files.
    pub name: String,
    /// The command line, run inside the receivers' namespace.
    pub args: Vec<String>,
    /// A line it prints on stdout or stderr once it is receiving.
    pub ready: &'static str,
    /// How to read what it recorded and dropped.
    pub readout: Readout,
    /// Whether it needs the device's interrupts deferred (preferred busy polling).
    pub busy_poll: bool,
}

impl Launch {
    /// An xsktap capture from `binary` with `flags`: the worker on the
    /// receivers' CPU, its other threads there too, `-w` to tmpfs when `write`.
    /// xsktap `capture` with `flags`, on the receivers' CPU (`taskset` and
    /// `--cores`) when `pinned`, else where xsktap's own placement puts it.
    pub fn xsktap(
        name: &str,
        binary: &Path,
        flags: &[&str],
        write: bool,
        pinned: bool,
        at: &Paths,
    ) -> Launch {
        let cpu = RECEIVER_CPU.to_string();
        let mut args: Vec<String> = Vec::new();
        if pinned {
            args.extend(["taskset".into(), "-c".into(), cpu.clone()]);
        }
        args.push(binary.to_string_lossy().into_owned());
        args.extend(["capture", "-i", &at.iface].map(String::from));
        if pinned {
            args.extend(["--cores".into(), cpu.clone()]);
        }
        args.push("-q".into());
        args.extend(flags.iter().map(|s| s.to_string()));
        if write {
            args.extend(["-w".into(), at.pcap.to_string_lossy().into_owned()]);
        }
        args.extend([
            "--summary-json".into(),
            at.json.to_string_lossy().into_owned(),
        ]);
        Launch {
            name: name.to_string(),
            args,
            ready: "xsktap: capturing",
            readout: Readout::XsktapSummary,
            busy_poll: flags.contains(&"--busy-poll"),
        }
    }
}

/// How a receiver reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readout {
    /// `{"dropped": N}` written by the count-and-drop receiver.
    DropCount,
    /// xsktap's `--summary-json`.
    XsktapSummary,
    /// The pcap file and tcpdump's exit statistics.
    Tcpdump,
    /// The pcap file and netsniff-ng's exit statistics.
    NetsniffNg,
    /// testpmd's forward statistics at exit (it records nothing).
    Testpmd,
}

/// What a receiver recorded and dropped in one trial.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    /// Frames recorded.
    pub recorded: u64,
    /// Frames dropped at the AF_XDP socket (rx_dropped + rx_ring_full).
    pub socket_drops: u64,
    /// Frames the receiver reports it dropped itself.
    pub receiver_drops: u64,
    /// Latency percentiles (ns): p50, p90, p99, p99.9, max.
    pub latency: Option<[u64; 5]>,
}

impl Readout {
    /// Reads the counts of a stopped receiver from its files and output.
    pub fn read(self, at: &Paths, output: &str) -> anyhow::Result<Recorded> {
        Ok(match self {
            Readout::DropCount => {
                let v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&at.json)?)?;
                Recorded {
                    recorded: v["dropped"].as_u64().context("no dropped count")?,
                    ..Recorded::default()
                }
            }
            Readout::XsktapSummary => {
                let s: SummaryJson = serde_json::from_str(&std::fs::read_to_string(&at.json)?)
                    .with_context(|| format!("reading {}", at.json.display()))?;
                anyhow::ensure!(s.lost_known, "some kernel counters could not be read");
                Recorded {
                    recorded: s.packets,
                    socket_drops: s
                        .queues
                        .iter()
                        .map(|q| q.rx_dropped.unwrap_or(0) + q.rx_ring_full.unwrap_or(0))
                        .sum(),
                    receiver_drops: 0,
                    latency: s
                        .latency
                        .map(|l| [l.p50_ns, l.p90_ns, l.p99_ns, l.p99_9_ns, l.max_ns]),
                }
            }
            // Not "received by filter" minus captured: that count includes
            // frames `-Q in` discards afterwards (the stack's own replies).
            Readout::Tcpdump => Recorded {
                recorded: count_pcap(&at.pcap)?,
                receiver_drops: leading_number(output, "dropped by kernel")
                    + leading_number(output, "dropped by interface"),
                ..Recorded::default()
            },
            // RX-dropped is the AF_XDP socket's rx_dropped (DPDK's imissed).
            Readout::Testpmd => Recorded {
                recorded: testpmd_count(output, "RX-packets:")
                    .context("testpmd printed no forward statistics")?,
                socket_drops: testpmd_count(output, "RX-dropped:").unwrap_or(0),
                ..Recorded::default()
            },
            // "N packets incoming (M unread on exit)" and "N packets dropped".
            Readout::NetsniffNg => {
                let unread = output
                    .lines()
                    .find(|l| l.contains("unread on exit"))
                    .and_then(|l| l.split('(').nth(1))
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
                Recorded {
                    recorded: count_pcap(&at.pcap)?,
                    receiver_drops: leading_number(output, "packets dropped") + unread,
                    ..Recorded::default()
                }
            }
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

/// Whole records in a pcap file written on this machine (any timestamp
/// resolution; a cut last record is not counted).
fn count_pcap(path: &Path) -> anyhow::Result<u64> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() >= pcap::FILE_HEADER_LEN,
        "{} has no pcap header",
        path.display()
    );
    Ok(pcap::whole_records(&bytes[pcap::FILE_HEADER_LEN..]).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statistics_are_read_by_their_words() {
        let tcpdump =
            "1000 packets captured\n1200 packets received by filter\n7 packets dropped by kernel\n";
        assert_eq!(leading_number(tcpdump, "dropped by kernel"), 7);
        assert_eq!(leading_number(tcpdump, "dropped by interface"), 0);
    }

    #[test]
    fn testpmd_statistics_are_read_from_the_last_summary() {
        let out = "Port statistics ====\n  RX-packets: 5 RX-missed: 0\n\n  \
            ---- Forward statistics for port 0 ----\n  RX-packets: 999  RX-dropped: 3  RX-total: 1002\n\
            +++ Accumulated forward statistics for all ports +++\n  RX-packets: 1000  RX-dropped: 4  RX-total: 1004\n";
        assert_eq!(testpmd_count(out, "RX-packets:"), Some(1000));
        assert_eq!(testpmd_count(out, "RX-dropped:"), Some(4));
        assert_eq!(testpmd_count("nothing", "RX-packets:"), None);
        let args = testpmd_args(Path::new("/x/dpdk-testpmd"), "bed-b").join(" ");
        assert!(
            args.contains("--vdev net_af_xdp0,iface=bed-b,start_queue=0,queue_count=1"),
            "{args}"
        );
        assert!(
            args.ends_with(
                "-- --forward-mode=rxonly --nb-cores=1 --total-num-mbufs=32768 --stats-period 1"
            ),
            "{args}"
        );
    }

    #[test]
    fn a_cut_last_record_is_not_counted() {
        let path = std::env::temp_dir().join(format!("xsktap-count-{}.pcap", std::process::id()));
        let mut bytes = vec![0u8; 24];
        for len in [60u32, 64, 1514] {
            bytes.extend([0u8; 8]);
            bytes.extend(len.to_ne_bytes());
            bytes.extend(len.to_ne_bytes());
            bytes.extend(vec![0u8; len as usize]);
        }
        bytes.truncate(bytes.len() - 1);
        std::fs::write(&path, &bytes).unwrap();
        let n = count_pcap(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn xsktap_launch_names_its_flags_and_outputs() {
        let at = Paths {
            iface: "bed-b".into(),
            xsktap: "/x/xsktap".into(),
            bench: "/x/xsktap-bench".into(),
            pcap: "/dev/shm/t.pcap".into(),
            json: "/dev/shm/t.json".into(),
        };
        let l = Launch::xsktap(
            "b",
            Path::new("/y/xsktap"),
            &["--busy-poll"],
            true,
            true,
            &at,
        );
        assert!(l.busy_poll);
        assert_eq!(l.args[3], "/y/xsktap");
        let line = l.args.join(" ");
        assert!(line.contains("-i bed-b --cores 1 -q --busy-poll -w /dev/shm/t.pcap --summary-json /dev/shm/t.json"), "{line}");
        let nosink = Receiver::XsktapNoSink.launch(&at).unwrap();
        assert!(!nosink.args.contains(&"-w".to_string()));
        assert!(!nosink.busy_poll);
    }
}
