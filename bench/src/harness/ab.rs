//! `xsktap-bench ab`: two xsktap captures (two builds, or one build with two
//! flag sets) on the same traffic, alternating A and B so that drift in the
//! machine hits both alike, each trial measured exactly as the harness table
//! measures (same bed, same generator, same CPU accounting).

use std::path::{Path, PathBuf};

use super::receiver::{Launch, Receiver};
use super::trial::{Harness, Trial};

/// One side of the comparison.
#[derive(Debug, Clone)]
pub struct AbSide {
    /// Its label in the output.
    pub label: String,
    /// The xsktap binary.
    pub binary: PathBuf,
    /// Extra `capture` flags.
    pub flags: Vec<String>,
    /// On the receivers' CPU (`taskset`, `--cores`), or placed by xsktap.
    pub pinned: bool,
}

/// What to compare and how.
#[derive(Debug, Clone)]
pub struct AbConfig {
    /// A and B.
    pub sides: [AbSide; 2],
    /// Alternating pairs of trials.
    pub pairs: u32,
    /// Offered rate, frames per second; 0: as fast as the generator goes
    /// (then the recorded rate is compared, not CPU).
    pub rate: f64,
    /// Frames per trial.
    pub count: u64,
    /// Frame size in bytes.
    pub frame_size: usize,
    /// Write pcap to tmpfs (`-w`), or count only.
    pub write: bool,
    /// Distinct flows the generator sends.
    pub flows: u32,
    /// Start a ClickHouse server in the receivers' namespace for the
    /// trials; `{clickhouse}` in a side's flags becomes its URL.
    pub clickhouse: bool,
    /// CPUs the ClickHouse server runs on (`taskset -c` list; `None`: any).
    pub clickhouse_cpus: Option<String>,
}

/// The median, smallest and largest of `values` (`None` when empty).
pub fn spread(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    };
    Some((median, v[0], v[v.len() - 1]))
}

fn line(label: &str, t: &Trial, cpu: Option<f64>) -> String {
    let cpu = cpu.map_or("unknown".to_string(), |ns| format!("{ns:.0} ns/packet"));
    let lat = t.latency.map_or(String::new(), |l| {
        format!(
            "  p50 {:.0} us  p99 {:.0} us",
            l.p50 as f64 / 1e3,
            l.p99 as f64 / 1e3
        )
    });
    format!(
        "{label}: offered {:.0} kpps  sent {}  recorded {} ({:.0} kpps)  lost {}  CPU {cpu}{lat}",
        t.offered_rate / 1e3,
        t.sent,
        t.recorded,
        t.recorded_rate() / 1e3,
        t.lost()
    )
}

/// Runs the pairs, printing one line per trial and the medians at the end;
/// returns every trial (A, B, A, B, ...).
pub fn run_ab(cfg: &AbConfig, bench: &Path) -> anyhow::Result<Vec<Trial>> {
    anyhow::ensure!(
        cfg.rate >= 0.0,
        "--rate must be 0 (as fast as it goes) or above"
    );
    let rate = (cfg.rate > 0.0).then_some(cfg.rate);
    // At full speed the generator sends about 3 Mpps here.
    let trial_secs = cfg.count as f64 / rate.unwrap_or(3e6);
    let mut h = Harness::new(
        false,
        trial_secs,
        cfg.frame_size,
        &cfg.sides[0].binary,
        bench,
    )?;
    h.set_flows(cfg.flows);
    let at = h.paths();
    let server = cfg.clickhouse.then(|| {
        crate::clickhouse::ClickHouse::start_on(&h.bed.b(), cfg.clickhouse_cpus.as_deref())
    });
    let url = server
        .as_ref()
        .map(|s| s.url(Some("bench")))
        .unwrap_or_default();
    let launches: Vec<Launch> = cfg
        .sides
        .iter()
        .map(|side| {
            let flags: Vec<String> = side
                .flags
                .iter()
                .map(|f| f.replace("{clickhouse}", &url))
                .collect();
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            Launch::xsktap(
                &side.label,
                &side.binary,
                &flags,
                cfg.write,
                side.pinned,
                &at,
            )
        })
        .collect();
    // Each pair has its CPU baseline: the count-and-drop receiver at the same
    // rate (see crate::cpu).
    let baseline = Receiver::XdpDrop.launch(&at)?;
    let mut trials = Vec::new();
    let mut cpu: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..cfg.pairs {
        // CPU per packet needs each receiver's maximum rate beside the
        // fixed-rate trial (see crate::cpu); at --rate 0 the maximum is all.
        let base_max = h.trial(&baseline, None, false)?;
        let base = match rate {
            Some(_) => h.trial(&baseline, rate, false)?,
            None => base_max.clone(),
        };
        for (i, launch) in launches.iter().enumerate() {
            let max = h.trial(launch, None, rate.is_none())?;
            let t = match rate {
                Some(_) => h.trial(launch, rate, true)?,
                None => max.clone(),
            };
            let ns = t.cpu_ns_per_packet(&base, &max, &base_max);
            println!("{}", line(&launch.name, &t, ns));
            cpu[i].extend(ns);
            trials.push(t);
        }
    }
    println!("medians of {} trials each (min..max):", cfg.pairs);
    for (i, side) in cfg.sides.iter().enumerate() {
        let mine: Vec<&Trial> = trials.iter().skip(i).step_by(2).collect();
        let cpu = &cpu[i];
        let p99: Vec<f64> = mine
            .iter()
            .filter_map(|t| t.latency.map(|l| l.p99 as f64 / 1e3))
            .collect();
        let lost: u64 = mine.iter().map(|t| t.lost()).sum();
        let show = |v: &[f64], unit: &str| {
            spread(v).map_or("unknown".to_string(), |(m, lo, hi)| {
                format!("{m:.0} {unit} ({lo:.0}..{hi:.0})")
            })
        };
        let kpps: Vec<f64> = mine.iter().map(|t| t.recorded_rate() / 1e3).collect();
        println!(
            "{}: recorded {}  CPU {}  p99 {}  lost {lost} in all",
            side.label,
            show(&kpps, "kpps"),
            show(cpu, "ns/packet"),
            show(&p99, "us")
        );
    }
    Ok(trials)
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_is_median_min_max() {
        assert_eq!(spread(&[]), None);
        assert_eq!(spread(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(spread(&[f64::NAN, 5.0]), Some((5.0, 5.0, 5.0)));
    }
}
