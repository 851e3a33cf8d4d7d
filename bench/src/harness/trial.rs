//! One trial: a receiver started on the bed, a counted burst from the
//! generator at one rate, the receiver stopped and read back, and every
//! frame offered either recorded or attributed to a counted drop.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use super::bed::{Bed, RECEIVER_CPU};
use super::receiver::{Launch, Paths, Receiver};
use crate::cpu::CpuMeter;

/// Latency percentiles of a trial, nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyNs {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// Largest.
    pub max: u64,
}

impl LatencyNs {
    fn from_array(l: [u64; 5]) -> LatencyNs {
        LatencyNs {
            p50: l[0],
            p90: l[1],
            p99: l[2],
            p99_9: l[3],
            max: l[4],
        }
    }
}

/// One trial: a receiver at one offered rate.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// The receiver's name.
    pub receiver: String,
    /// Rate asked of the generator; `None` for as fast as it goes.
    pub target_rate: Option<f64>,
    /// Frames the generator sent.
    pub sent: u64,
    /// Rate actually offered.
    pub offered_rate: f64,
    /// Frames the receiver recorded.
    pub recorded: u64,
    /// Frames dropped by the receiving veth (its ring was full).
    pub veth_drops: u64,
    /// Frames dropped at the AF_XDP socket (rx_dropped + rx_ring_full).
    pub socket_drops: u64,
    /// Frames the receiver reports it dropped itself (tcpdump's "dropped by kernel", ...).
    pub receiver_drops: u64,
    /// Frames neither recorded nor attributed to a counted drop.
    pub unattributed: i64,
    /// Busy time of every CPU but the generator's during the trial, seconds
    /// (see [`crate::cpu`]).
    pub busy_secs_off_generator: f64,
    /// Latency percentiles, when measured.
    #[serde(rename = "latency_ns")]
    pub latency: Option<LatencyNs>,
}

impl Trial {
    /// Frames not recorded.
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.recorded)
    }

    /// Frames recorded per second of offered traffic.
    pub fn recorded_rate(&self) -> f64 {
        self.recorded as f64 * self.offered_rate / self.sent.max(1) as f64
    }

    /// Nanoseconds per frame offered that the CPUs other than the
    /// generator's were busy (see [`crate::cpu`]).
    pub fn ns_per_frame_off_generator(&self) -> Option<f64> {
        crate::cpu::ns_per_frame(self.busy_secs_off_generator, self.sent)
    }

    /// CPU nanoseconds per packet of this fixed-rate trial (see
    /// [`crate::cpu`]): over the count-and-drop receiver's trial at the same
    /// rate (`baseline`), plus what the receiver adds to the generator's CPU
    /// as the maximum rates show (`max`: this receiver's trial at the
    /// generator's maximum; `baseline_max`: count-and-drop's).
    pub fn cpu_ns_per_packet(
        &self,
        baseline: &Trial,
        max: &Trial,
        baseline_max: &Trial,
    ) -> Option<f64> {
        crate::cpu::ns_per_packet(
            self.ns_per_frame_off_generator()?,
            baseline.ns_per_frame_off_generator()?,
            max.offered_rate,
            baseline_max.offered_rate,
        )
    }
}

/// A receiver process and everything it printed.
struct Running {
    child: Child,
    output: Arc<Mutex<String>>,
    name: String,
}

impl Running {
    fn output(&self) -> String {
        self.output.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn interrupt(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
    }

    fn wait(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                anyhow::bail!("{} did not stop; output: {}", self.name, self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Let the readers take the last lines.
        std::thread::sleep(Duration::from_millis(50));
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bed, the binaries, a tmpfs directory for the receivers' files, and
/// the trial settings.
pub struct Harness {
    /// The test bed.
    pub bed: Bed,
    xsktap: PathBuf,
    bench: PathBuf,
    shm: PathBuf,
    trial_secs: f64,
    frame_size: usize,
    /// Distinct flows the generator sends (16 unless set with [`Harness::set_flows`]).
    flows: u32,
    /// The generator's `--via`.
    via: crate::gen::Via,
    /// The path the generator last reported taking.
    took: Mutex<Option<String>>,
}

impl Harness {
    /// The generator sends `flows` distinct flows (source ports) from now on.
    pub fn set_flows(&mut self, flows: u32) {
        self.flows = flows;
    }

    /// The generator sends over `via` from now on (default: `auto`).
    pub fn set_via(&mut self, via: crate::gen::Via) {
        self.via = via;
    }

    /// The path the generator last reported taking (`af-xdp`, `live-frames`).
    pub fn generator_path(&self) -> Option<String> {
        self.took.lock().ok()?.clone()
    }

    /// Builds the bed and the tmpfs directory.
    pub fn new(
        napi_thread: bool,
        trial_secs: f64,
        frame_size: usize,
        xsktap: &Path,
        bench: &Path,
    ) -> anyhow::Result<Harness> {
        let shm = PathBuf::from("/dev/shm").join(format!("xsktap-bench-{}", std::process::id()));
        std::fs::create_dir_all(&shm).with_context(|| format!("creating {}", shm.display()))?;
        let harness = Harness {
            bed: Bed::new(napi_thread)?,
            xsktap: xsktap.to_path_buf(),
            bench: bench.to_path_buf(),
            shm,
            trial_secs,
            frame_size,
            flows: 16,
            via: crate::gen::Via::Auto,
            took: Mutex::new(None),
        };
        Ok(harness)
    }

    /// Where every trial's receiver runs and writes (the files are removed
    /// before each trial starts).
    pub fn paths(&self) -> Paths {
        Paths {
            iface: self.bed.b(),
            xsktap: self.xsktap.clone(),
            bench: self.bench.clone(),
            pcap: self.shm.join("receiver.pcap"),
            json: self.shm.join("receiver.json"),
        }
    }

    fn start(&self, launch: &Launch, at: &Paths) -> anyhow::Result<Running> {
        let _ = std::fs::remove_file(&at.pcap);
        let _ = std::fs::remove_file(&at.json);
        // Preferred busy polling needs the device to defer its interrupts;
        // every other receiver runs with the kernel's defaults.
        self.bed.defer_interrupts(launch.busy_poll)?;
        let args: Vec<&str> = launch.args.iter().map(String::as_str).collect();
        let mut child = self
            .bed
            .exec_b(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", launch.name))?;
        let output = Arc::new(Mutex::new(String::new()));
        let pipes = [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ];
        for pipe in pipes.into_iter().flatten() {
            let sink = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&line);
                        s.push('\n');
                    }
                }
            });
        }
        let mut running = Running {
            child,
            output,
            name: launch.name.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !running.output().contains(launch.ready) {
            if let Some(status) = running.child.try_wait()? {
                anyhow::bail!("{} exited ({status}): {}", launch.name, running.output());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} never became ready: {}",
                launch.name,
                running.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Attached and reading: give the capture threads a moment to spin up.
        std::thread::sleep(Duration::from_millis(300));
        Ok(running)
    }

    /// Sends `count` frames from [`super::GENERATOR_CPU`] at `rate` (or as fast as it goes);
    /// returns the frames sent and the rate offered.
    fn generate(&self, count: u64, rate: Option<f64>) -> anyhow::Result<(u64, f64)> {
        let a = self.bed.a();
        let bench = self.bench.to_string_lossy().to_string();
        let count_s = count.to_string();
        let size = self.frame_size.to_string();
        let cpu = super::GENERATOR_CPU.to_string();
        let flows = self.flows.to_string();
        let mut args = vec![
            bench.as_str(),
            "gen",
            "-i",
            &a,
            "-c",
            &count_s,
            "-s",
            &size,
            "--cpus",
            &cpu,
            "--flows",
            &flows,
            "--via",
            self.via.as_str(),
        ];
        let rate_s = rate.map(|r| format!("{r:.0}"));
        if let Some(r) = &rate_s {
            args.extend(["--rate", r.as_str()]);
        }
        let out = self.bed.exec_in(&a, &args).output()?;
        anyhow::ensure!(
            out.status.success(),
            "generator: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).context("generator output")?;
        if let (Some(via), Ok(mut took)) = (v["via"].as_str(), self.took.lock()) {
            *took = Some(via.to_string());
        }
        Ok((
            v["sent"].as_u64().context("generator: no sent count")?,
            v["rate"].as_f64().context("generator: no rate")?,
        ))
    }

    /// Runs `launch` for one trial at `rate` (`None`: the generator's
    /// maximum); keeps its latency when `latency`.
    pub fn trial(
        &self,
        launch: &Launch,
        rate: Option<f64>,
        latency: bool,
    ) -> anyhow::Result<Trial> {
        let count = match rate {
            Some(r) => (r * self.trial_secs) as u64,
            // As fast as it goes: about trial_secs at the generator's ~3 Mpps.
            None => (3e6 * self.trial_secs) as u64,
        }
        .max(1000);
        let at = self.paths();
        let mut rx = self.start(launch, &at)?;
        let veth_before = self.bed.veth_drops()?;
        let cpu = CpuMeter::start();
        let (sent, offered_rate) = self.generate(count, rate)?;
        // Let the receiver drain its rings (tcpdump hands over a partly
        // filled buffer block only after its 1 s timeout) before it stops.
        std::thread::sleep(Duration::from_millis(1500));
        let busy_secs_off_generator = cpu.stop();
        let veth_drops = self.bed.veth_drops()? - veth_before;
        rx.interrupt();
        rx.wait(Duration::from_secs(30))?;
        let got = launch
            .readout
            .read(&at, &rx.output())
            .with_context(|| format!("reading back {}", launch.name))?;
        let _ = std::fs::remove_file(&at.pcap);
        // The veth counts a redirect its AF_XDP socket could not take as a
        // drop of its own too: attribute those frames once, to the socket.
        let veth_drops = veth_drops.saturating_sub(got.socket_drops);
        Ok(Trial {
            receiver: launch.name.clone(),
            target_rate: rate,
            sent,
            offered_rate,
            recorded: got.recorded,
            veth_drops,
            socket_drops: got.socket_drops,
            receiver_drops: got.receiver_drops,
            unattributed: sent as i64
                - (got.recorded + veth_drops + got.socket_drops + got.receiver_drops) as i64,
            busy_secs_off_generator,
            latency: got.latency.filter(|_| latency).map(LatencyNs::from_array),
        })
    }

    /// The kernel UDP socket's latency at `rate` (no CPU accounting).
    pub fn udp_latency(&self, rate: f64) -> anyhow::Result<Trial> {
        let bench = self.bench.to_string_lossy().to_string();
        let secs = (self.trial_secs + 3.0).to_string();
        let cpu = RECEIVER_CPU.to_string();
        let mut child = self
            .bed
            .exec_b(&[
                &bench,
                "udp-recv",
                "--port",
                "9",
                "--seconds",
                &secs,
                "--cpu",
                &cpu,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(500));
        let veth_before = self.bed.veth_drops()?;
        let (sent, offered_rate) = self.generate((rate * self.trial_secs) as u64, Some(rate))?;
        let veth_drops = self.bed.veth_drops()? - veth_before;
        let mut out = String::new();
        child
            .stdout
            .take()
            .expect("piped")
            .read_to_string(&mut out)?;
        let status = child.wait()?;
        anyhow::ensure!(status.success(), "udp-recv failed");
        let v: Value = serde_json::from_str(&out).context("udp-recv output")?;
        let l = &v["latency_ns"];
        let lat = [
            l["p50"].as_u64(),
            l["p90"].as_u64(),
            l["p99"].as_u64(),
            l["p99_9"].as_u64(),
            l["max"].as_u64(),
        ];
        let recorded = v["received"].as_u64().context("udp-recv: no count")?;
        let receiver_drops = v["socket_drops"].as_u64().unwrap_or(0);
        Ok(Trial {
            receiver: Receiver::UdpSocket.name().to_string(),
            target_rate: Some(rate),
            sent,
            offered_rate,
            recorded,
            veth_drops,
            socket_drops: 0,
            receiver_drops,
            unattributed: sent as i64 - (recorded + veth_drops + receiver_drops) as i64,
            busy_secs_off_generator: 0.0,
            latency: lat
                .iter()
                .all(Option::is_some)
                .then(|| LatencyNs::from_array(lat.map(|x| x.unwrap_or(0)))),
        })
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.shm);
    }
}
