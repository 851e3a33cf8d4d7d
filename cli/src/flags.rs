//! Every flag, defined once; raw arguments become a validated engine config here.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use xsktap::config::{parse_list, DEFAULT_FRAME_SIZE, DEFAULT_RING_SIZE, DEFAULT_SNAPLEN};
use xsktap::{CaptureConfig, Output, XdpMode, ZeroCopy};

/// Capture packets at line rate through AF_XDP.
#[derive(Debug, Parser)]
#[command(name = "xsktap", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Capture the chosen RX queues of an interface, to a pcap file or standard output.
    ///
    /// Frames on the captured queues are redirected to xsktap and do not reach
    /// the host's network stack while the capture runs; other queues are untouched.
    Capture(CaptureArgs),
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

#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// Interface to capture on.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub iface: String,
    /// Write packets to this pcap file (nanosecond timestamps); `-` for standard output.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Stop after exactly COUNT packets are written.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,
    /// Stop after SECS seconds (fractions allowed).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    pub duration: Option<f64>,
    /// Bytes of each packet to keep; longer packets keep their original length in the file. 0 means 262144.
    #[arg(short = 's', long = "snaplen", value_name = "SNAPLEN", default_value_t = DEFAULT_SNAPLEN)]
    pub snaplen: u32,
    /// RX queues to capture, such as `0,2-3` (default: every RX queue).
    #[arg(long, value_name = "LIST")]
    pub queues: Option<String>,
    /// CPUs to pin the workers to, one per queue, such as `2,3` (default: spread over the allowed CPUs).
    #[arg(long, value_name = "CPUS")]
    pub cores: Option<String>,
    /// How to attach the XDP program: native (driver), generic, or auto (native, else generic).
    #[arg(long, value_enum, default_value = "auto")]
    pub xdp_mode: XdpModeArg,
    /// Zero-copy AF_XDP: auto (if the driver supports it), on (or fail), off (copy mode).
    #[arg(long, value_enum, default_value = "auto")]
    pub zero_copy: ZeroCopyArg,
    /// UMEM frame size: 2048 or 4096.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_FRAME_SIZE)]
    pub frame_size: u32,
    /// Fill and RX ring size, a power of two from 64 to 32768.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RING_SIZE)]
    pub ring_size: u32,
    /// Write a JSON summary to PATH at exit.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,
    /// No live statistics line on standard error.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// A capture request, validated.
pub struct CaptureRequest {
    pub config: CaptureConfig,
    pub output: Output,
    pub duration: Option<Duration>,
    pub summary_json: Option<PathBuf>,
    pub quiet: bool,
}

impl CaptureArgs {
    pub fn into_request(self) -> anyhow::Result<CaptureRequest> {
        let mut config = CaptureConfig::new(self.iface);
        config.queues = self
            .queues
            .map(|q| parse_list(&q).map_err(|e| anyhow::anyhow!("--queues: {e}")))
            .transpose()?;
        config.cores = self
            .cores
            .map(|c| {
                parse_list(&c)
                    .map(|v| v.into_iter().map(|c| c as usize).collect())
                    .map_err(|e| anyhow::anyhow!("--cores: {e}"))
            })
            .transpose()?;
        config.xdp_mode = match self.xdp_mode {
            XdpModeArg::Auto => XdpMode::Auto,
            XdpModeArg::Native => XdpMode::Native,
            XdpModeArg::Generic => XdpMode::Generic,
        };
        config.zero_copy = match self.zero_copy {
            ZeroCopyArg::Auto => ZeroCopy::Auto,
            ZeroCopyArg::On => ZeroCopy::On,
            ZeroCopyArg::Off => ZeroCopy::Off,
        };
        config.frame_size = self.frame_size;
        config.ring_size = self.ring_size;
        config.snaplen = if self.snaplen == 0 {
            DEFAULT_SNAPLEN
        } else {
            self.snaplen
        };
        config.count = self.count;
        config.validate()?;
        let duration = match self.duration {
            None => None,
            Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Some(Duration::from_secs_f64(s)),
            Some(s) => anyhow::bail!("--duration {s} is not a positive number of seconds"),
        };
        let output = match self.write {
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
        if let Some(path) = &self.summary_json {
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
        Ok(CaptureRequest {
            config,
            output,
            duration,
            summary_json: self.summary_json,
            quiet: self.quiet,
        })
    }
}
