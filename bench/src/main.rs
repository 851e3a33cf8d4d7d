//! `xsktap-bench`: traffic for demos and benchmarks.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use xsktap_bench::feedgen::{FeedGen, FeedGenConfig};
use xsktap_bench::gen::{GenConfig, Generator, Via};
use xsktap_bench::harness::{self, AbConfig, AbSide, Receiver, RunConfig};
use xsktap_bench::receivers::{udp_receive, DropReceiver};
use xsktap_bench::report;
use xsktap_bench::{frames, send::FrameSender};

#[derive(Parser)]
#[command(name = "xsktap-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every receiver side by side on a test bed of its own and print the comparison.
    Run {
        /// A quick run for CI: short trials, two search steps.
        #[arg(long)]
        short: bool,
        /// Where to write results.json, results.csv, chart.svg and README.md.
        #[arg(long, default_value = "bench/runs/latest")]
        out: std::path::PathBuf,
        /// Seconds of traffic per trial (default 2, or 0.3 with --short).
        #[arg(long)]
        trial_secs: Option<f64>,
        /// Frame size in bytes.
        #[arg(short = 's', long, default_value_t = 60)]
        size: usize,
        /// Offered rate of the CPU-cost and latency trials, frames per second.
        #[arg(long, default_value_t = 200_000.0)]
        fixed_rate: f64,
        /// Run the receiving veth's NAPI as a real-time thread on the receivers' CPU
        /// (default: softirq on the generator's CPU, as the kernel does).
        #[arg(long)]
        napi_thread: bool,
        /// Rounds, each taking every receiver in turn; the table shows medians
        /// (default 3, or 2 with --short).
        #[arg(long)]
        rounds: Option<u32>,
        /// Only these receivers, by short name, comma-separated (drop, xsktap,
        /// xsktap-placed, xsktap-lowprec, xsktap-busy-poll, xsktap-no-sink, tcpdump, netsniff-ng, testpmd;
        /// default: all).
        #[arg(long, value_name = "NAMES")]
        receivers: Option<String>,
        /// The generator's path: af-xdp (AF_XDP TX: veth receives skbs, as
        /// from any socket sender), live-frames (BPF_PROG_RUN: veth receives
        /// XDP frames), or auto (live frames where the kernel runs them).
        #[arg(long, default_value = "auto", value_parser = parse_via)]
        via: Via,
    },
    /// Two xsktap captures side by side on the same traffic, alternating A and B, measured as
    /// `run` measures (CPU per packet over the whole machine, one-way latency); prints each
    /// trial and the medians. Example: `ab --a-flags=--coalesce-usecs=0 --b-flags=--coalesce-usecs=50`.
    Ab {
        /// xsktap binary of side A (default: the one next to this binary).
        #[arg(long)]
        a: Option<std::path::PathBuf>,
        /// xsktap binary of side B (default: the one next to this binary).
        #[arg(long)]
        b: Option<std::path::PathBuf>,
        /// Extra `capture` flags of side A, as one string of words.
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        a_flags: String,
        /// Extra `capture` flags of side B, as one string of words.
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        b_flags: String,
        /// Alternating pairs of trials.
        #[arg(long, default_value_t = 3)]
        pairs: u32,
        /// Offered rate, frames per second; 0: as fast as the generator goes (compare the
        /// recorded rates).
        #[arg(long, default_value_t = 500_000.0)]
        rate: f64,
        /// Side A runs where xsktap's own placement puts it (no taskset, no --cores).
        #[arg(long)]
        a_unpinned: bool,
        /// Side B runs where xsktap's own placement puts it (no taskset, no --cores).
        #[arg(long)]
        b_unpinned: bool,
        /// Frames per trial (at most 100,000,000).
        #[arg(short = 'c', long, default_value_t = 2_000_000)]
        count: u64,
        /// Frame size in bytes.
        #[arg(short = 's', long, default_value_t = 60)]
        size: usize,
        /// Count only, without `-w` to tmpfs.
        #[arg(long)]
        no_write: bool,
        /// Distinct flows the generator sends (1 to 65535).
        #[arg(long, default_value_t = 16,
              value_parser = clap::value_parser!(u32).range(1..=65535))]
        flows: u32,
        /// Start a ClickHouse server in the receivers' namespace; `{clickhouse}` in
        /// --a-flags/--b-flags becomes its URL (`--export-clickhouse {clickhouse}`).
        #[arg(long)]
        clickhouse: bool,
        /// Keep the ClickHouse server on these CPUs (`taskset -c` list).
        #[arg(long, value_name = "LIST", requires = "clickhouse")]
        clickhouse_cpus: Option<String>,
    },
    /// The reference receiver: an XDP program that counts and drops every frame.
    /// Runs until SIGINT/SIGTERM, then writes {"dropped": N} to --json.
    Drop {
        /// Interface to attach to (native mode).
        #[arg(short = 'i', long = "interface")]
        iface: String,
        /// Where to write the count.
        #[arg(long)]
        json: std::path::PathBuf,
    },
    /// What the feed set costs the XDP program per frame: the kernel's mean run time
    /// (BPF_PROG_TEST_RUN) of a 60-byte UDP frame to a feed line, with no feed set (every
    /// frame taken unparsed), 1 line and 1,000 lines; medians of ROUNDS. Needs root;
    /// nothing is attached or sent.
    FeedMap {
        /// Rounds of 1,000,000 runs each.
        #[arg(long, default_value_t = 5)]
        rounds: u32,
    },
    /// What the rate limit (`--limit-pps`) costs the XDP program per frame: the kernel's
    /// mean run time (BPF_PROG_TEST_RUN) of a 60-byte UDP frame without a limit, with the
    /// frame parsed for a filter, and with a limit by source and by flow (set far above the
    /// rate, so nothing is dropped; and at 1 pps, so nearly everything is); medians of
    /// ROUNDS. Needs root; nothing is attached or sent.
    LimitCost {
        /// Rounds of 1,000,000 runs each.
        #[arg(long, default_value_t = 5)]
        rounds: u32,
    },
    /// Flow rows per second the export sends to a local ClickHouse: synthetic flow records
    /// (IPv4, spread addresses and ports) handed to the same exporter a capture uses, a
    /// `clickhouse-server` started in a test namespace of its own; the time from the first
    /// record to the last row acknowledged, and the rows counted back. Medians of ROUNDS.
    /// Needs root (the namespace) and clickhouse-server.
    ExportRows {
        /// Flow records per round.
        #[arg(long, default_value_t = 5_000_000)]
        rows: u64,
        /// Rounds.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
    /// A kernel UDP socket receiver (recvmmsg) measuring the generator's one-way latency.
    UdpRecv {
        /// UDP port to bind.
        #[arg(long, default_value_t = 9)]
        port: u16,
        /// How long to receive.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// CPU to pin to.
        #[arg(long)]
        cpu: Option<usize>,
    },
    /// Transmit stamped UDP frames at line rate with BPF_PROG_RUN live frames (XDP_TX).
    ///
    /// Each frame carries a stream id (the CPU), a sequence number and the transmit time,
    /// which xsktap reads to measure one-way latency and losses. Run it inside the sending
    /// namespace of a test bed.
    Gen {
        /// Interface to transmit on.
        #[arg(short = 'i', long = "interface")]
        iface: String,
        /// Frames to send (at most 10,000,000,000).
        #[arg(short = 'c', long, default_value_t = 1_000_000)]
        count: u64,
        /// Frame size in bytes, without FCS.
        #[arg(short = 's', long, default_value_t = 60)]
        size: usize,
        /// IPv6 instead of IPv4.
        #[arg(long)]
        ipv6: bool,
        /// UDP source ports to spread the frames over.
        #[arg(long, default_value_t = 1)]
        flows: u32,
        /// Frames per second (paced in batches of 1024); omit for as fast as possible.
        #[arg(long)]
        rate: Option<f64>,
        /// CPUs to send from, one thread each, such as `0` or `0,1` (each CPU is one stream).
        #[arg(long, default_value = "0")]
        cpus: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60)]
        max_secs: u64,
        /// The path frames take: af-xdp (an AF_XDP socket's TX ring), live-frames
        /// (BPF_PROG_RUN, where the kernel allows it), or auto (live frames where they run).
        #[arg(long, default_value = "auto", value_parser = parse_via)]
        via: Via,
    },
    /// Send a MoldUDP64 session of ITCH-sized messages on an A and a B line (UDP ports), with
    /// loss, duplication and reordering injected per line, at up to line rate (BPF_PROG_RUN
    /// live frames), then a heartbeat and the end of session; write what went out exactly
    /// (--truth) and answer retransmission requests (--retransmit). Run it inside the sending
    /// namespace of a test bed.
    Feed {
        /// Interface to transmit on.
        #[arg(short = 'i', long = "interface")]
        iface: String,
        /// Packets of the session (at most 1,000,000,000).
        #[arg(long, default_value_t = 1_000_000)]
        packets: u64,
        /// Messages per packet (1 to 32).
        #[arg(long, default_value_t = 4)]
        messages: u64,
        /// One line only (A).
        #[arg(long)]
        single: bool,
        /// UDP port of line A (to 198.18.0.2).
        #[arg(long, default_value_t = 26_400)]
        port_a: u16,
        /// UDP port of line B.
        #[arg(long, default_value_t = 26_401)]
        port_b: u16,
        /// Chance that a line loses a packet (0 to 1).
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
        /// Chance that a line sends a packet twice.
        #[arg(long, default_value_t = 0.0)]
        dup: f64,
        /// Chance that a line swaps an aligned pair of packets.
        #[arg(long, default_value_t = 0.0)]
        reorder: f64,
        /// Seed of the faults.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Frames per second (both lines together); omit for as fast as possible.
        #[arg(long)]
        rate: Option<f64>,
        /// CPU to send from.
        #[arg(long, default_value_t = 0)]
        cpu: usize,
        /// The path frames take: af-xdp (an AF_XDP socket's TX ring), live-frames
        /// (BPF_PROG_RUN, where the kernel allows it), or auto (live frames where they run).
        #[arg(long, default_value = "auto", value_parser = parse_via)]
        via: Via,

        /// Write the ground truth here (JSON).
        #[arg(long)]
        truth: Option<std::path::PathBuf>,
        /// Answer MoldUDP64 retransmission requests on this UDP address until the end,
        /// and for --linger-secs after it.
        #[arg(long, value_name = "ADDR:PORT")]
        retransmit: Option<std::net::SocketAddr>,
        /// Seconds to go on answering requests after the end of session.
        #[arg(long, default_value_t = 2.0)]
        linger_secs: f64,
        /// Give up sending after this many seconds.
        #[arg(long, default_value_t = 120)]
        max_secs: u64,
    },
    /// What publishing a feed over iceoryx2 costs, without a NIC: frames handed to a feed set
    /// as a worker does (decode, sequence, publish) on --cpu, a spinning subscriber on
    /// --subscriber-cpu; prints one JSON line per case: decode and sequence only, publish
    /// with no subscriber, publish with one (messages/s, ns per message, publish-to-subscriber
    /// latency), and the same paced at --rate messages/s.
    Publish {
        /// Messages per case.
        #[arg(long, default_value_t = 5_000_000)]
        messages: u64,
        /// Messages per packet.
        #[arg(long, default_value_t = 4)]
        per_packet: u64,
        /// Paced rate of the last case, messages per second.
        #[arg(long, default_value_t = 1_000_000.0)]
        rate: f64,
        /// CPU of the publishing thread.
        #[arg(long, default_value_t = 1)]
        cpu: usize,
        /// CPU of the subscriber.
        #[arg(long, default_value_t = 0)]
        subscriber_cpu: usize,
        /// Run only this case (1 to 4), to profile it.
        #[arg(long)]
        case: Option<usize>,
    },
    /// Send a reproducible mix of UDP frames (60..1514 bytes) out of an interface, via AF_PACKET.
    Send {
        /// Interface to send on (run inside the test bed's namespace).
        #[arg(short = 'i', long = "interface")]
        iface: String,
        /// Number of frames (at most 10,000,000).
        #[arg(short = 'c', long, default_value_t = 1000)]
        count: usize,
        /// Number of flows (source ports), spread over the receiver's queues.
        #[arg(long, default_value_t = 16)]
        flows: u16,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30)]
        max_secs: u64,
    },
}

fn udp_in_errors() -> u64 {
    // "Udp: InDatagrams NoPorts InErrors ..." header line, then the values line.
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("Udp:")).collect();
    if lines.len() < 2 {
        return 0;
    }
    let names: Vec<&str> = lines[0].split_whitespace().collect();
    let values: Vec<&str> = lines[1].split_whitespace().collect();
    names
        .iter()
        .position(|n| *n == "InErrors")
        .and_then(|i| values.get(i))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// This binary and the xsktap binary next to it, once it is checked that the
/// harness can run here (root, the repository's root, xsktap built).
fn harness_binaries() -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    anyhow::ensure!(
        euid == 0,
        "run as root: the harness builds network namespaces"
    );
    let exe = std::env::current_exe()?;
    let dir = exe.parent().expect("the binary is in a directory");
    let xsktap = dir.join("xsktap");
    anyhow::ensure!(
        xsktap.is_file(),
        "{} is missing: build it first (cargo build --release)",
        xsktap.display()
    );
    let root = std::env::current_dir()?;
    anyhow::ensure!(
        root.join("tools/testbed.sh").is_file(),
        "run from the repository's root (tools/testbed.sh is used)"
    );
    Ok((exe, xsktap))
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run {
            short,
            out,
            trial_secs,
            size,
            fixed_rate,
            napi_thread,
            rounds,
            receivers,
            via,
        } => {
            let (exe, xsktap) = harness_binaries()?;
            let cfg = RunConfig {
                trial_secs: trial_secs.unwrap_or(if short { 0.3 } else { 2.0 }),
                search_steps: if short { 2 } else { 6 },
                frame_size: size,
                fixed_rate: if short {
                    fixed_rate.min(100_000.0)
                } else {
                    fixed_rate
                },
                out_dir: out.clone(),
                receivers: match receivers {
                    Some(list) => Receiver::parse_list(&list)?,
                    None => Receiver::ALL.to_vec(),
                },
                napi_thread,
                rounds: rounds.unwrap_or(if short { 2 } else { 3 }),
                via,
            };
            let result = harness::run(&cfg, &xsktap, &exe)?;
            let table = report::table(&cfg, &result);
            print!("{table}");
            std::fs::write(out.join("README.md"), report::readme(&cfg, &table))?;
            Ok(())
        }
        Command::Ab {
            a,
            b,
            a_flags,
            b_flags,
            pairs,
            rate,
            a_unpinned,
            b_unpinned,
            count,
            size,
            no_write,
            flows,
            clickhouse,
            clickhouse_cpus,
        } => {
            anyhow::ensure!(
                count <= 100_000_000,
                "--count {count} is above the 100,000,000 limit"
            );
            let (exe, xsktap) = harness_binaries()?;
            let side =
                |label: &str, binary: Option<std::path::PathBuf>, flags: &str, unpinned: bool| {
                    let binary = binary.unwrap_or_else(|| xsktap.clone());
                    anyhow::ensure!(binary.is_file(), "{} is not a file", binary.display());
                    let flags: Vec<String> = flags.split_whitespace().map(String::from).collect();
                    let placed = if unpinned {
                        " (xsktap's placement)"
                    } else {
                        ""
                    };
                    Ok(AbSide {
                        label: format!("{label} {}", flags.join(" "))
                            .trim_end()
                            .to_string()
                            + placed,
                        binary,
                        flags,
                        pinned: !unpinned,
                    })
                };
            let cfg = AbConfig {
                sides: [
                    side("A", a, &a_flags, a_unpinned)?,
                    side("B", b, &b_flags, b_unpinned)?,
                ],
                pairs,
                rate,
                count,
                frame_size: size,
                write: !no_write,
                flows,
                clickhouse,
                clickhouse_cpus,
            };
            harness::run_ab(&cfg, &exe)?;
            Ok(())
        }
        Command::Drop { iface, json } => {
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            for s in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(s, stop.clone())?;
            }
            let rx = DropReceiver::attach(&iface)?;
            eprintln!("xsktap-bench: count-and-drop program attached to {iface}");
            let start = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && start.elapsed() < Duration::from_secs(3600)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            std::fs::write(&json, format!("{{\"dropped\":{}}}\n", rx.count()?))?;
            Ok(())
        }
        Command::FeedMap { rounds } => feed_map(rounds),
        Command::LimitCost { rounds } => limit_cost(rounds),
        Command::ExportRows { rows, rounds } => export_rows(rows, rounds),
        Command::Publish {
            messages,
            per_packet,
            rate,
            cpu,
            subscriber_cpu,
            case,
        } => {
            anyhow::ensure!(
                messages <= 1_000_000_000,
                "--messages {messages} is above the limit"
            );
            let base = xsktap_bench::publish::PublishBench {
                messages,
                per_packet,
                rate: None,
                publish: false,
                subscribe: false,
                cpu,
                subscriber_cpu,
            };
            for case in [
                base,
                xsktap_bench::publish::PublishBench {
                    publish: true,
                    ..base
                },
                xsktap_bench::publish::PublishBench {
                    publish: true,
                    subscribe: true,
                    ..base
                },
                xsktap_bench::publish::PublishBench {
                    publish: true,
                    subscribe: true,
                    rate: Some(rate),
                    ..base
                },
            ]
            .into_iter()
            .enumerate()
            .filter(|(i, _)| case.is_none_or(|c| c == i + 1))
            .map(|(_, c)| c)
            {
                let r = xsktap_bench::publish::run(case)?;
                println!("{}", serde_json::to_string(&r)?);
            }
            Ok(())
        }
        Command::Feed {
            iface,
            packets,
            messages,
            single,
            port_a,
            port_b,
            loss,
            dup,
            reorder,
            seed,
            rate,
            cpu,
            truth,
            retransmit,
            linger_secs,
            max_secs,
            via,
        } => {
            anyhow::ensure!(
                packets <= 1_000_000_000,
                "--packets {packets} is above the limit"
            );
            anyhow::ensure!(max_secs <= 3600, "--max-secs {max_secs} is above one hour");
            anyhow::ensure!(
                (0.0..=60.0).contains(&linger_secs),
                "--linger-secs is 0 to 60"
            );
            let cfg = FeedGenConfig {
                iface: iface.clone(),
                packets,
                messages,
                ab: !single,
                port_a,
                port_b,
                loss,
                dup,
                reorder,
                seed,
                rate,
                max_duration: Duration::from_secs(max_secs),
                via,
            };
            let generator = FeedGen::new(&cfg)?;
            let t = xsktap_bench::feedgen::truth(&cfg);
            if let Some(path) = &truth {
                std::fs::write(
                    path,
                    serde_json::to_string(&serde_json::json!({
                        "config": cfg, "truth": t,
                    }))? + "\n",
                )?;
            }
            let stop = std::sync::atomic::AtomicBool::new(false);
            let answered = std::thread::scope(|s| -> anyhow::Result<u64> {
                let server = match retransmit {
                    Some(addr) => {
                        let socket = std::net::UdpSocket::bind(addr)
                            .map_err(|e| anyhow::anyhow!("--retransmit {addr}: {e}"))?;
                        let stop = &stop;
                        Some(s.spawn(move || {
                            xsktap_bench::feedgen::serve_retransmissions(&socket, messages, stop)
                        }))
                    }
                    None => None,
                };
                let sent = (|| -> anyhow::Result<(u64, Duration)> {
                    xsktap_bench::cpu::pin_to(cpu, "the generator")?;
                    generator.send_session()
                })();
                if sent.is_ok() && server.is_some() {
                    std::thread::sleep(Duration::from_secs_f64(linger_secs));
                }
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                let answered = server.map_or(0, |h| h.join().unwrap_or(0));
                let (runs, took) = sent?;
                eprintln!(
                    "xsktap-bench feed: {runs} slots in {:.3} s ({:.0} frames/s sent: A {}, B {}); {} messages both lines lost in {} gaps",
                    took.as_secs_f64(),
                    (t.sent[0] + t.sent[1]) as f64 / took.as_secs_f64().max(1e-9),
                    t.sent[0],
                    t.sent[1],
                    t.next - 1 - t.delivered_messages,
                    t.gaps.len()
                );
                Ok(answered)
            })?;
            if retransmit.is_some() {
                eprintln!("xsktap-bench feed: answered {answered} retransmission requests");
            }
            Ok(())
        }
        Command::UdpRecv { port, seconds, cpu } => {
            anyhow::ensure!(
                seconds > 0.0 && seconds <= 3600.0,
                "--seconds must be within one hour"
            );
            let errors_before = udp_in_errors();
            let r = udp_receive(port, Duration::from_secs_f64(seconds), cpu)?;
            let l = &r.latency;
            let v = serde_json::json!({
                "received": r.received,
                "socket_drops": udp_in_errors() - errors_before,
                "stamped": l.stamped,
                "missing": l.missing,
                "latency_ns": (l.stamped > 0).then(|| serde_json::json!({
                    "p50": l.quantile_ns(0.5), "p90": l.quantile_ns(0.9), "p99": l.quantile_ns(0.99),
                    "p99_9": l.quantile_ns(0.999), "max": l.histogram.max(),
                })),
            });
            println!("{v}");
            Ok(())
        }
        Command::Gen {
            iface,
            count,
            size,
            ipv6,
            flows,
            rate,
            cpus,
            max_secs,
            via,
        } => {
            anyhow::ensure!(
                count <= 10_000_000_000,
                "--count {count} is above the limit"
            );
            anyhow::ensure!(max_secs <= 3600, "--max-secs {max_secs} is above one hour");
            let cpus = xsktap_core::config::parse_list(&cpus)
                .map_err(|e| anyhow::anyhow!("--cpus: {e}"))?;
            let threads = cpus.len() as u64;
            let cfg = GenConfig {
                iface,
                frame_size: size,
                ipv6,
                count: count.div_ceil(threads),
                flows,
                rate: rate.map(|r| r / threads as f64),
                max_duration: Duration::from_secs(max_secs),
                via,
            };
            let generator = std::sync::Arc::new(Generator::new(&cfg)?);
            let reports: Vec<anyhow::Result<xsktap_bench::gen::GenReport>> =
                std::thread::scope(|s| {
                    let handles: Vec<_> = cpus
                        .iter()
                        .map(|&cpu| {
                            let (g, cfg) = (generator.clone(), cfg.clone());
                            s.spawn(move || {
                                anyhow::ensure!(
                                    core_affinity::set_for_current(core_affinity::CoreId {
                                        id: cpu as usize
                                    }),
                                    "cannot pin the generator to CPU {cpu}"
                                );
                                g.send(&cfg)
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().expect("generator thread"))
                        .collect()
                });
            let mut sent = 0;
            let mut secs = 0f64;
            for r in reports {
                let r = r?;
                sent += r.sent;
                secs = secs.max(r.elapsed.as_secs_f64());
            }
            println!(
                "{{\"sent\":{sent},\"seconds\":{secs:.6},\"rate\":{:.0},\"via\":\"{}\"}}",
                sent as f64 / secs.max(1e-9),
                generator.via().as_str()
            );
            Ok(())
        }
        Command::Send {
            iface,
            count,
            flows,
            max_secs,
        } => {
            anyhow::ensure!(
                count <= 10_000_000,
                "--count {count} is above the 10,000,000 limit"
            );
            let sender = FrameSender::open(&iface)
                .with_context(|| format!("opening a sender on {iface}"))?;
            let deadline = Instant::now() + Duration::from_secs(max_secs);
            let frames = frames::varied_frames(count.min(4096), flows);
            let mut sent = 0usize;
            while sent < count && Instant::now() < deadline {
                sender.send(&frames[sent % frames.len()])?;
                sent += 1;
            }
            eprintln!("xsktap-bench: sent {sent} frames on {iface}");
            Ok(())
        }
    }
}

/// `xsktap-bench limit-cost`.
fn export_rows(rows: u64, rounds: u32) -> anyhow::Result<()> {
    use xsktap::export::{ExportConfig, Prepared, DEFAULT_SPOOL_BYTES};
    use xsktap_bench::clickhouse::ClickHouse;
    use xsktap_core::fleet::{ClickHouseUrl, Origin};
    use xsktap_core::flows::{ExportTimeouts, FlowRecord};
    anyhow::ensure!(
        (1..=1_000_000_000).contains(&rows),
        "--rows {rows}: give 1 to 1,000,000,000"
    );
    let bed = xsktap_bench::testbed::Testbed::named("xr", 1);
    let ch = ClickHouse::start(&bed.ns_b());
    // This process joins the namespace to reach the server's 127.0.0.1.
    xsktap_bench::netns::enter(&bed.ns_b())?;
    let url = ClickHouseUrl::parse(&ch.url(Some("bench"))).map_err(anyhow::Error::msg)?;
    // 10,000 records per batch, as a worker hands them on.
    const BATCH: u64 = 10_000;
    let records: Vec<Vec<FlowRecord>> = (0..rows.div_ceil(BATCH))
        .map(|b| {
            (b * BATCH..((b + 1) * BATCH).min(rows))
                .map(|i| FlowRecord {
                    src: std::net::Ipv4Addr::from(0xc612_0000 | (i as u32 & 0xffff)).into(),
                    dst: std::net::Ipv4Addr::from(0xc613_0000 | ((i >> 16) as u32 & 0xffff)).into(),
                    sport: 1024 + (i % 60_000) as u16,
                    dport: [53, 80, 443, 9][(i % 4) as usize],
                    proto: if i % 3 == 0 { 6 } else { 17 },
                    tcp_flags: if i % 3 == 0 { 0x1b } else { 0 },
                    vlan: 0,
                    packets: 1 + i % 100,
                    bytes: 64 * (1 + i % 100),
                    start_ms: 1_764_900_000_000 + i / 1000,
                    end_ms: 1_764_900_000_500 + i / 1000,
                })
                .collect()
        })
        .collect();
    let mut rates = Vec::new();
    for round in 0..rounds {
        let name = format!("bench-{round}");
        let prepared = Prepared::check(ExportConfig {
            clickhouse: Some(url.clone()),
            password: None,
            ipfix: None,
            origin: Origin {
                host: name.clone(),
                interface: "bench0".into(),
            },
            create: true,
            spool_dir: None,
            spool_bytes: DEFAULT_SPOOL_BYTES,
            optional: false,
            timeouts: ExportTimeouts::default(),
        })?;
        let out = prepared.flow_export().out;
        let exporter = prepared.start()?;
        let batches = records.clone();
        let start = Instant::now();
        for (i, b) in batches.into_iter().enumerate() {
            out.finish((i % 2) as u32, b);
        }
        let report = exporter.finish(Duration::from_secs(600));
        let secs = start.elapsed().as_secs_f64();
        anyhow::ensure!(
            report.rows_sent[0] == rows && report.dropped_rows == 0,
            "round {round}: {} of {rows} rows sent, {} dropped",
            report.rows_sent[0],
            report.dropped_rows
        );
        let counted = ch.number(&format!(
            "SELECT count() FROM bench.flows WHERE host = '{name}'"
        ));
        anyhow::ensure!(
            counted == rows,
            "round {round}: ClickHouse holds {counted} of {rows} rows"
        );
        let rate = rows as f64 / secs;
        println!(
            "round {round}: {rows} flow rows in {secs:.2} s: {:.2} M rows/s ({} inserts, {:.0} MB RowBinary; counted back: {counted})",
            rate / 1e6,
            report.batches_sent,
            report.bytes_sent as f64 / 1e6
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "median {:.2} M flow rows/s (min {:.2}, max {:.2}) to clickhouse-server {} on this machine",
        rates[rates.len() / 2] / 1e6,
        rates[0] / 1e6,
        rates[rates.len() - 1] / 1e6,
        ch.query("SELECT version()")
    );
    Ok(())
}

fn limit_cost(rounds: u32) -> anyhow::Result<()> {
    use xsktap_core::limit::{LimitBy, RateLimit};
    use xsktap_sys::loader::{Stamps, XdpProgram};
    let frame = frames::udp_frame(60, 1, 0);
    let never = |by| RateLimit::new(xsktap_core::limit::MAX_PPS, by, false);
    let rows: [(&str, Stamps, Option<RateLimit>, &str); 7] = [
        ("no limit", Stamps::Software, None, ""),
        ("no limit, filter `ip`", Stamps::Software, None, "ip"),
        ("limit by src", Stamps::Software, never(LimitBy::Source), ""),
        ("limit by flow", Stamps::Software, never(LimitBy::Flow), ""),
        (
            "limit by src, dropping",
            Stamps::Software,
            RateLimit::new(1, LimitBy::Source, false),
            "",
        ),
        ("no limit, -j host_lowprec", Stamps::None, None, ""),
        (
            "limit by src, -j host_lowprec",
            Stamps::None,
            never(LimitBy::Source),
            "",
        ),
    ];
    println!("program | ns per frame (median of {rounds} x 1e6 runs) | min | max");
    for (name, stamps, limit, filter) in rows {
        let program = XdpProgram::load(stamps, limit)?;
        if !filter.is_empty() {
            let expr = xsktap_core::filter::parse_expr(filter)?;
            let compiled =
                xsktap_core::filter::Program::compile(expr.as_ref(), program.max_filter_tests())?;
            program.set_filter(&compiled)?;
        }
        program.capture_queue_without_socket(0)?;
        let mut ns: Vec<u32> = (0..rounds.max(1))
            .map(|_| program.time_run(&frame, 1_000_000))
            .collect::<Result<_, _>>()?;
        ns.sort_unstable();
        println!(
            "{name} | {} | {} | {}",
            ns[ns.len() / 2],
            ns[0],
            ns[ns.len() - 1]
        );
    }
    Ok(())
}

/// `xsktap-bench feed-map`.
fn feed_map(rounds: u32) -> anyhow::Result<()> {
    use xsktap_sys::loader::{Stamps, XdpProgram};
    let mut frame = frames::udp_frame(60, 1, 0);
    frame[30..34].copy_from_slice(&[198, 19, 0, 0]);
    frame[36..38].copy_from_slice(&26_400u16.to_be_bytes());
    let lines = |n: u32| -> Vec<(std::net::IpAddr, u16)> {
        (0..n)
            .map(|i| {
                (
                    std::net::IpAddr::from([198, 19, (i >> 8) as u8, i as u8]),
                    26_400,
                )
            })
            .collect()
    };
    println!("feed lines | ns per frame (median of {rounds} x 1e6 runs) | min | max");
    // 0: no feed set, no filter (frames taken unparsed); u32::MAX: no feed
    // set, the one line as a filter expression (parsing and three tests).
    for n in [0, u32::MAX, 1, 10, 1000, 4096] {
        let program = XdpProgram::load(Stamps::Software, None)?;
        if n == u32::MAX {
            let expr =
                xsktap_core::filter::parse_expr("udp and dst host 198.19.0.0 and dst port 26400")?;
            let compiled =
                xsktap_core::filter::Program::compile(expr.as_ref(), program.max_filter_tests())?;
            program.set_filter(&compiled)?;
        } else if n > 0 {
            program.set_feeds(&lines(n))?;
        }
        program.capture_queue_without_socket(0)?;
        anyhow::ensure!(program.dry_run(&frame)?, "the frame is not selected");
        let mut ns: Vec<u32> = (0..rounds.max(1))
            .map(|_| program.time_run(&frame, 1_000_000))
            .collect::<Result<_, _>>()?;
        ns.sort_unstable();
        println!(
            "{:>10} | {:>4} | {:>4} | {:>4}",
            match n {
                0 => "none".to_string(),
                u32::MAX => "filter".to_string(),
                n => n.to_string(),
            },
            ns[ns.len() / 2],
            ns[0],
            ns[ns.len() - 1]
        );
    }
    Ok(())
}

/// `--via`'s values.
fn parse_via(s: &str) -> anyhow::Result<Via> {
    Via::parse(s)
}
