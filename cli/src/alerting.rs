//! The anomaly alerts of a live capture: the detectors fed once a second
//! from the workers' counters and flow tables, the recent history the
//! dashboard shows, and `--alert-exec`, which runs a command per alert on a
//! thread of its own so that a slow command never holds up the reporter (and
//! the workers never see it at all).

use std::collections::VecDeque;
use std::io::Write as _;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xsktap::Capture;
use xsktap_core::alerts::{Event, Second, Watch, WatchConfig};

use crate::report;

/// Alert events the dashboard keeps (the most recent).
pub const HISTORY: usize = 100;

/// Alerts waiting for `--alert-exec` beyond which new ones are skipped (and counted).
const EXEC_QUEUE: usize = 64;

/// How long one `--alert-exec` command may run before it is killed.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// A capture's detectors and what is done with their events.
pub struct Alerting {
    watch: Watch,
    history: VecDeque<serde_json::Value>,
    exec: Option<Exec>,
}

/// One second's events: each with its JSON form.
pub struct Raised {
    /// The event.
    pub event: Event,
    /// `{"event":"alert",...}`.
    pub json: serde_json::Value,
}

impl Alerting {
    /// With thresholds `cfg`, running `exec` (a shell command) per event.
    pub fn new(cfg: WatchConfig, exec: Option<String>) -> anyhow::Result<Alerting> {
        Ok(Alerting {
            watch: Watch::new(cfg),
            history: VecDeque::with_capacity(HISTORY),
            exec: exec.map(Exec::start).transpose()?,
        })
    }

    /// Feeds one second of `capture` (`at` seconds since it started) to the
    /// detectors; the events that start or end, handed to `--alert-exec`.
    pub fn step(&mut self, capture: &Capture, at: Duration, wall_ns: u64) -> Vec<Raised> {
        let snap = capture.snapshot();
        let queues: Vec<(u32, u64)> = snap.queues.iter().map(|q| (q.queue, q.received)).collect();
        let flows = capture.flows();
        let events = self.watch.step(&Second {
            at_secs: at.as_secs_f64(),
            packets: snap.received(),
            queues: &queues,
            flows: &flows,
        });
        events
            .into_iter()
            .map(|event| {
                let json = report::alert_json(&event, wall_ns);
                if self.history.len() == HISTORY {
                    self.history.pop_front();
                }
                self.history.push_back(json.clone());
                if let Some(exec) = &self.exec {
                    exec.submit(&event, &json);
                }
                Raised { event, json }
            })
            .collect()
    }

    /// The detectors.
    pub fn watch(&self) -> &Watch {
        &self.watch
    }

    /// The most recent events, oldest first.
    pub fn history(&self) -> Vec<serde_json::Value> {
        self.history.iter().cloned().collect()
    }

    /// Stops `--alert-exec` (waiting up to `grace` for the command running
    /// and those queued) and says what it did, if it ran.
    pub fn finish(self, grace: Duration) -> Option<String> {
        self.exec.map(|e| e.finish(grace))
    }
}

#[derive(Debug, Default)]
struct ExecCounts {
    ran: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
}

/// `--alert-exec CMD`: `sh -c CMD` per alert, the event's JSON on its
/// standard input, its output on xsktap's standard error (standard output
/// may be a capture or a JSON stream), one at a time on a thread of its own.
struct Exec {
    tx: Option<SyncSender<(Event, String)>>,
    counts: Arc<ExecCounts>,
    thread: Option<JoinHandle<()>>,
}

impl Exec {
    fn start(command: String) -> anyhow::Result<Exec> {
        let (tx, rx) = sync_channel::<(Event, String)>(EXEC_QUEUE);
        let counts = Arc::new(ExecCounts::default());
        let seen = counts.clone();
        let thread = std::thread::Builder::new()
            .name("xsktap-alert-exec".into())
            .spawn(move || {
                for (event, json) in rx {
                    let ok = run_one(&command, &event, &json);
                    seen.ran.fetch_add(1, Ordering::Relaxed);
                    if let Err(why) = ok {
                        seen.failed.fetch_add(1, Ordering::Relaxed);
                        let _ = writeln!(std::io::stderr(), "xsktap: --alert-exec: {why}");
                    }
                }
            })?;
        Ok(Exec {
            tx: Some(tx),
            counts,
            thread: Some(thread),
        })
    }

    /// Queues one event; never waits (a full queue skips it, counted).
    fn submit(&self, event: &Event, json: &serde_json::Value) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send((event.clone(), json.to_string())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counts.skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn finish(mut self, grace: Duration) -> String {
        drop(self.tx.take());
        let deadline = Instant::now() + grace;
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
        let c = &self.counts;
        format!(
            "--alert-exec ran {} times ({} failed, {} skipped: {} alerts already waiting)",
            c.ran.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
            c.skipped.load(Ordering::Relaxed),
            EXEC_QUEUE
        )
    }
}

/// Runs `command` for one alert; why it failed, if it did.
fn run_one(command: &str, event: &Event, json: &str) -> Result<(), String> {
    let stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("duplicating standard error: {e}"))?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("XSKTAP_ALERT_KIND", event.kind.as_str())
        .env("XSKTAP_ALERT_SUBJECT", &event.subject)
        .env(
            "XSKTAP_ALERT_STATE",
            if event.start { "start" } else { "end" },
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::from(stderr))
        .spawn()
        .map_err(|e| format!("cannot run sh -c {command:?}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is fine.
        let _ = stdin.write_all(json.as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    let deadline = Instant::now() + EXEC_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{command:?} for {}: {status}", event.subject)),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{command:?} ran longer than {} s and was killed",
                    EXEC_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting for {command:?}: {e}")),
        }
    }
}
