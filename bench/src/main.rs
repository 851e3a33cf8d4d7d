//! `xsktap-bench`: traffic for demos and benchmarks.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use xsktap_bench::{frames, send::FrameSender};

#[derive(Parser)]
#[command(name = "xsktap-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
