//! `xsktap-bench run`: every receiver side by side on the same generated
//! traffic, on a test bed the harness builds and tears down; and
//! `xsktap-bench ab`: two xsktap builds or flag sets, alternating.
//!
//! For each receiver: the share recorded at the generator's maximum rate, a
//! binary search (RFC 2544 style) for the highest rate recorded with zero
//! loss, the CPU time per packet at a fixed rate (one definition, in
//! [`crate::cpu`], over the count-and-drop receiver's at the same rate), and
//! for xsktap and a kernel UDP socket the one-way latency. Every figure is
//! the median of `rounds` rounds that take the receivers in turn (so that a
//! drift of the machine hits all alike), with the smallest and largest. Every frame offered is either recorded or attributed to a counted
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

pub use ab::{run_ab, spread, AbConfig, AbSide};
pub use receiver::{Receiver, PRIVATE_DPDK};
pub use search::{Outcome, Search};
pub use trial::{LatencyNs, Trial};

use trial::Harness;

/// The CPU the generator sends from (and paces on, spinning).
pub const GENERATOR_CPU: usize = 0;

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
    /// Rounds; each takes every receiver in turn.
    pub rounds: u32,
    /// The generator's path (`xsktap-bench gen --via`).
    pub via: crate::gen::Via,
}

/// A figure over the rounds: median, smallest, largest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// The median.
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Option<Spread> {
        spread(values).map(|(median, min, max)| Spread { median, min, max })
    }
}

/// One receiver's line of the table: each figure over the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiverSummary {
    /// The receiver's name.
    pub receiver: String,
    /// The generator's maximum rate in this receiver's trials at maximum.
    pub max_offered_rate: Spread,
    /// Frames recorded per second at that rate.
    pub recorded_rate_at_max: Spread,
    /// Share of the frames recorded at that rate.
    pub recorded_share_at_max: Spread,
    /// The highest rate recorded with zero loss (0 when none was).
    pub zero_loss_rate: Spread,
    /// CPU nanoseconds per packet at the fixed rate (see [`crate::cpu`]).
    pub cpu_ns_per_packet: Option<Spread>,
    /// Latency at the fixed rate, when measured: the round with the median p99.
    pub latency_ns: Option<LatencyNs>,
}

/// One receiver's figures in one round.
struct Round {
    max: Trial,
    zero_loss: f64,
    cpu_ns: Option<f64>,
    latency: Option<LatencyNs>,
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
    /// The path the generator reported taking (`af-xdp`, `live-frames`):
    /// the bed differs with it (see the README's Benchmarks).
    pub generator: String,
}

/// Runs the comparison and writes results.json, results.csv and chart.svg
/// into the configured directory.
pub fn run(cfg: &RunConfig, xsktap: &Path, bench: &Path) -> anyhow::Result<RunResult> {
    let mut h = Harness::new(
        cfg.napi_thread,
        cfg.trial_secs,
        cfg.frame_size,
        xsktap,
        bench,
    )?;
    h.set_via(cfg.via);
    let mut result = RunResult {
        trials: Vec::new(),
        summary: Vec::new(),
        skipped: Vec::new(),
        udp: None,
        generator: String::new(),
    };
    let search = Search {
        steps: cfg.search_steps,
        min_rate: MIN_RATE,
    };
    let mut runnable = Vec::new();
    for &kind in &cfg.receivers {
        match kind.missing() {
            Some(why) => {
                eprintln!("xsktap-bench: skipping {}: {why}", kind.name());
                result.skipped.push((kind, why));
            }
            None => runnable.push((kind, kind.launch(&h.paths())?)),
        }
    }
    let baseline = Receiver::XdpDrop.launch(&h.paths())?;
    let mut rounds: Vec<Vec<Round>> = runnable.iter().map(|_| Vec::new()).collect();
    for round in 1..=cfg.rounds.max(1) {
        // What the machine costs with the count-and-drop receiver at the
        // fixed rate: the CPU baseline of this round.
        let base = h.trial(&baseline, Some(cfg.fixed_rate), false)?;
        result.trials.push(base.clone());
        // And its maximum: what the generator's CPU can do with the least
        // receive work (see crate::cpu).
        let base_max = h.trial(&baseline, None, false)?;
        result.trials.push(base_max.clone());
        for ((kind, launch), mine) in runnable.iter().zip(&mut rounds) {
            eprintln!("xsktap-bench: round {round}: {}", kind.name());
            let max = h.trial(launch, None, false)?;
            let first = Outcome {
                offered_rate: max.offered_rate,
                lossless: max.lost() == 0,
            };
            result.trials.push(max.clone());
            let zero_loss = search.run(first, |rate| {
                let t = h.trial(launch, Some(rate), false)?;
                let outcome = Outcome {
                    offered_rate: t.offered_rate,
                    lossless: t.lost() == 0,
                };
                result.trials.push(t);
                Ok(outcome)
            })?;
            // CPU cost (and xsktap's latency) at the fixed rate.
            let latency = matches!(kind, Receiver::XsktapNoSink | Receiver::XsktapBusyPoll);
            let fixed = h.trial(launch, Some(cfg.fixed_rate), latency)?;
            let cpu_ns = fixed.cpu_ns_per_packet(&base, &max, &base_max);
            mine.push(Round {
                max,
                zero_loss: zero_loss.unwrap_or(0.0),
                cpu_ns,
                latency: fixed.latency,
            });
            result.trials.push(fixed);
        }
    }
    for ((kind, _), mine) in runnable.iter().zip(&rounds) {
        let of = |f: &dyn Fn(&Round) -> Option<f64>| {
            Spread::of(&mine.iter().filter_map(f).collect::<Vec<_>>())
        };
        let zero = Spread {
            median: 0.0,
            min: 0.0,
            max: 0.0,
        };
        let mut by_p99: Vec<LatencyNs> = mine.iter().filter_map(|r| r.latency).collect();
        by_p99.sort_by_key(|l| l.p99);
        result.summary.push(ReceiverSummary {
            receiver: kind.name().to_string(),
            max_offered_rate: of(&|r| Some(r.max.offered_rate)).unwrap_or(zero),
            recorded_rate_at_max: of(&|r| Some(r.max.recorded_rate())).unwrap_or(zero),
            recorded_share_at_max: of(&|r| Some(r.max.recorded as f64 / r.max.sent.max(1) as f64))
                .unwrap_or(zero),
            zero_loss_rate: of(&|r| Some(r.zero_loss)).unwrap_or(zero),
            cpu_ns_per_packet: of(&|r| r.cpu_ns),
            latency_ns: by_p99.get(by_p99.len() / 2).copied(),
        });
    }
    if cfg.receivers.contains(&Receiver::XsktapNoSink) {
        eprintln!("xsktap-bench: kernel UDP socket (latency)");
        result.udp = Some(h.udp_latency(cfg.fixed_rate)?);
    }
    result.generator = h.generator_path().unwrap_or_default();
    drop(h);
    output::write(cfg, &result)?;
    Ok(result)
}
