//! `xsktap-bench`: traffic for demos and benchmarks.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use xsktap_bench::gen::{GenConfig, Generator};
use xsktap_bench::{frames, send::FrameSender};

#[derive(Parser)]
#[command(name = "xsktap-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Gen {
            iface,
            count,
            size,
            ipv6,
            flows,
            rate,
            cpus,
            max_secs,
        } => {
            anyhow::ensure!(
                count <= 10_000_000_000,
                "--count {count} is above the limit"
            );
            anyhow::ensure!(max_secs <= 3600, "--max-secs {max_secs} is above one hour");
            let cpus =
                xsktap::config::parse_list(&cpus).map_err(|e| anyhow::anyhow!("--cpus: {e}"))?;
            let threads = cpus.len() as u64;
            let cfg = GenConfig {
                iface,
                frame_size: size,
                ipv6,
                count: count.div_ceil(threads),
                flows,
                rate: rate.map(|r| r / threads as f64),
                max_duration: Duration::from_secs(max_secs),
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
                "{{\"sent\":{sent},\"seconds\":{secs:.6},\"rate\":{:.0}}}",
                sent as f64 / secs.max(1e-9)
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
