//! `xsktap-bench run`: every receiver side by side on the same generated
//! traffic, on a test bed the harness builds and tears down; and
//! `xsktap-bench ab`: two xsktap builds or flag sets, alternating.
//!
//! For each receiver: the share recorded at the generator's maximum rate, a
//! binary search (RFC 2544 style) for the highest rate recorded with zero
//! loss, the CPU time per packet at a fixed rate (one definition, in
//! [`crate::cpu`]), and for xsktap and a kernel UDP socket the one-way
//! latency. Every frame offered is either recorded or attributed to a counted
//! drop (veth ring, AF_XDP socket, receiver's own); what is left over is
//! reported as unattributed.

mod ab;
mod bed;
mod output;
mod receiver;
mod search;
mod trial;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use ab::{run_ab, AbConfig, AbSide};
pub use receiver::Receiver;
pub use search::{Outcome, Search};
pub use trial::{LatencyNs, Trial};

use trial::Harness;

/// The lowest rate the zero-loss search tries.
const MIN_RATE: f64 = 20_000.0;

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

/// One receiver's line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiverSummary {
    /// The receiver's name.
    pub receiver: String,
    /// The generator's maximum rate in this receiver's first trial.
    pub max_offered_rate: f64,
    /// Share of the frames recorded at that rate.
    pub recorded_share_at_max: f64,
    /// The highest rate recorded with zero loss (0 when none was).
    pub zero_loss_rate: f64,
    /// CPU nanoseconds per packet at the fixed rate (see [`crate::cpu`]).
    pub cpu_ns_per_packet: Option<f64>,
    /// Latency at the fixed rate, when measured.
    pub latency_ns: Option<LatencyNs>,
}

/// Results of a whole run.
pub struct RunResult {
    /// Every trial, in order.
    pub trials: Vec<Trial>,
    /// One line per receiver that ran.
    pub summary: Vec<ReceiverSummary>,
    /// Receivers skipped, with the reason.
    pub skipped: Vec<(Receiver, String)>,
    /// The kernel UDP socket's latency trial.
    pub udp: Option<Trial>,
}

/// Runs the comparison and writes results.json, results.csv and chart.svg
/// into the configured directory.
pub fn run(cfg: &RunConfig, xsktap: &Path, bench: &Path) -> anyhow::Result<RunResult> {
    let h = Harness::new(
        cfg.napi_thread,
        cfg.trial_secs,
        cfg.frame_size,
        xsktap,
        bench,
    )?;
    let mut result = RunResult {
        trials: Vec::new(),
        summary: Vec::new(),
        skipped: Vec::new(),
        udp: None,
    };
    let search = Search {
        steps: cfg.search_steps,
        min_rate: MIN_RATE,
    };
    for &kind in &cfg.receivers {
        if let Some(why) = kind.missing() {
            eprintln!("xsktap-bench: skipping {}: {why}", kind.name());
            result.skipped.push((kind, why));
            continue;
        }
        eprintln!("xsktap-bench: {}", kind.name());
        let launch = kind.launch(&h.paths())?;
        let max = h.trial(&launch, None, false)?;
        let first = Outcome {
            offered_rate: max.offered_rate,
            lossless: max.lost() == 0,
        };
        result.trials.push(max.clone());
        let zero_loss = search.run(first, |rate| {
            let t = h.trial(&launch, Some(rate), false)?;
            let outcome = Outcome {
                offered_rate: t.offered_rate,
                lossless: t.lost() == 0,
            };
            result.trials.push(t);
            Ok(outcome)
        })?;
        // CPU cost (and xsktap's latency) at a fixed rate.
        let latency = matches!(kind, Receiver::XsktapNoSink | Receiver::XsktapBusyPoll);
        let fixed = h.trial(&launch, Some(cfg.fixed_rate), latency)?;
        result.summary.push(ReceiverSummary {
            receiver: kind.name().to_string(),
            max_offered_rate: max.offered_rate,
            recorded_share_at_max: max.recorded as f64 / max.sent.max(1) as f64,
            zero_loss_rate: zero_loss.unwrap_or(0.0),
            cpu_ns_per_packet: fixed.cpu_ns_per_packet(),
            latency_ns: fixed.latency,
        });
        result.trials.push(fixed);
    }
    if cfg.receivers.contains(&Receiver::XsktapNoSink) {
        eprintln!("xsktap-bench: kernel UDP socket (latency)");
        result.udp = Some(h.udp_latency(cfg.fixed_rate)?);
    }
    drop(h);
    output::write(cfg, &result)?;
    Ok(result)
}
