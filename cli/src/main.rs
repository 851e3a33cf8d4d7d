//! The `xsktap` binary: a thin shell over the engine.

mod flags;
mod report;

use std::io;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use xsktap::{Capture, Finish, Output};

use flags::{CaptureRequest, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Capture(args) => args.into_request().and_then(capture),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xsktap: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn capture(req: CaptureRequest) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    let iface = req.config.iface.clone();
    let output_name = match &req.output {
        Output::None => "nowhere (no -w given)".to_string(),
        Output::Stdout => "standard output".to_string(),
        Output::File(p) => p.display().to_string(),
    };
    let capture = Capture::start(&req.config, req.output.clone())?;
    for warning in capture.warnings() {
        eprintln!("xsktap: warning: {warning}");
    }
    {
        let snap = capture.snapshot();
        let queues: Vec<String> = snap
            .queues
            .iter()
            .map(|q| {
                format!(
                    "{}@cpu{} {}",
                    q.queue,
                    q.core,
                    q.bind_mode.map_or("-", |m| m.as_str())
                )
            })
            .collect();
        eprintln!(
            "xsktap: capturing on {iface} ({} XDP), queues {}; frames on these queues bypass the host stack until exit",
            capture.xdp_mode().as_str(),
            queues.join(", ")
        );
    }

    let started = Instant::now();
    let mut last = capture.snapshot();
    let mut next_report = started + Duration::from_secs(1);
    let finish = loop {
        std::thread::sleep(Duration::from_millis(20));
        if stop.load(Ordering::Relaxed) {
            break None;
        }
        if let Some(f) = capture.finished() {
            break Some(f);
        }
        if req.duration.is_some_and(|d| started.elapsed() >= d) {
            break None;
        }
        if !req.quiet && Instant::now() >= next_report {
            let now = capture.snapshot();
            eprintln!("{}", report::live_line(&now, &now.rates_since(&last)));
            last = now;
            next_report += Duration::from_secs(1);
        }
    };

    let summary = capture.stop();
    eprint!("{}", report::summary_text(&summary, &iface, &output_name));
    if let Some(path) = &req.summary_json {
        let json = report::summary_json(&summary, &iface, &output_name);
        let text = serde_json::to_string_pretty(&json).expect("JSON values serialise");
        std::fs::write(path, text + "\n")
            .with_context(|| format!("writing --summary-json {}", path.display()))?;
    }
    if let Some(e) = summary.worker_errors.first() {
        anyhow::bail!("{e}");
    }
    if let Some(writer) = &summary.writer {
        if let Some(e) = &writer.error {
            // `xsktap capture -w - | tcpdump -r - -c 10`: the reader leaving is a normal end.
            if !writer.reader_closed() {
                return Err(io::Error::new(e.kind(), e.to_string()))
                    .with_context(|| format!("writing {output_name}"));
            }
        }
    }
    if finish == Some(Finish::WorkerFailed) {
        anyhow::bail!("a worker stopped unexpectedly");
    }
    Ok(ExitCode::SUCCESS)
}
