//! A run's files: results.json (every trial and the summary), results.csv
//! (every trial) and chart.svg.

use serde_json::json;

use super::{RunConfig, RunResult};

/// Writes the run's files into `cfg.out_dir`.
pub fn write(cfg: &RunConfig, r: &RunResult) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.out_dir)?;
    let doc = json!({
        "frame_size": cfg.frame_size,
        "trial_secs": cfg.trial_secs,
        "fixed_rate": cfg.fixed_rate,
        "napi_thread": cfg.napi_thread,
        "generator": r.generator,
        "summary": r.summary,
        "udp_socket": r.udp,
        "skipped": r.skipped.iter().map(|(rx, why)| json!({"receiver": rx.name(), "why": why})).collect::<Vec<_>>(),
        "trials": r.trials,
    });
    std::fs::write(
        cfg.out_dir.join("results.json"),
        serde_json::to_string_pretty(&doc)? + "\n",
    )?;
    let mut csv = String::from("receiver,target_rate,offered_rate,sent,recorded,veth_drops,socket_drops,receiver_drops,unattributed,busy_secs_off_generator\n");
    for t in &r.trials {
        csv.push_str(&format!(
            "{},{},{:.0},{},{},{},{},{},{},{:.4}\n",
            t.receiver,
            t.target_rate
                .map_or("max".to_string(), |r| format!("{r:.0}")),
            t.offered_rate,
            t.sent,
            t.recorded,
            t.veth_drops,
            t.socket_drops,
            t.receiver_drops,
            t.unattributed,
            t.busy_secs_off_generator
        ));
    }
    std::fs::write(cfg.out_dir.join("results.csv"), csv)?;
    std::fs::write(cfg.out_dir.join("chart.svg"), crate::chart::svg(&r.trials))?;
    Ok(())
}
