//! Shared parts of the privileged end-to-end tests: a test bed of our own
//! (built with `tools/testbed.sh`, torn down on every path), the xsktap binary
//! run inside it, a frame sender, and pcap readers (ours and tcpdump).

#![allow(dead_code)]

pub mod protocols;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xsktap_bench::{netns, send::FrameSender};

pub const XSKTAP: &str = env!("CARGO_BIN_EXE_xsktap");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Whether privileged tests can run; with XSKTAP_REQUIRE_PRIVILEGED=1 (as in
/// CI) a missing privilege fails the test instead of skipping it.
pub fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            std::env::var_os("XSKTAP_REQUIRE_PRIVILEGED").is_none(),
            "this test needs root (XSKTAP_REQUIRE_PRIVILEGED is set)"
        );
        eprintln!("skipped: needs root");
    }
    root
}

/// Two namespaces NAME-a and NAME-b joined by a veth pair; deleted on drop.
pub struct Testbed {
    pub name: String,
}

impl Testbed {
    /// A test bed when privileged tests can run (see [`privileged`]), else `None`.
    pub fn if_privileged(queues: u32) -> Option<Testbed> {
        privileged().then(|| Testbed::new(queues))
    }

    pub fn new(queues: u32) -> Testbed {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "xt{}x{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let status = Command::new(repo_root().join("tools/testbed.sh"))
            .args(["setup", &name, "--queues", &queues.to_string()])
            .stdout(Stdio::null())
            .status()
            .expect("running tools/testbed.sh");
        // Built before the assert so that a failed setup is still torn down.
        let bed = Testbed { name };
        assert!(status.success(), "test bed setup failed");
        bed
    }

    pub fn ns_a(&self) -> String {
        format!("{}-a", self.name)
    }

    /// The capturing side: namespace and device share this name.
    pub fn ns_b(&self) -> String {
        format!("{}-b", self.name)
    }

    /// `xsktap ARGS` inside namespace b.
    pub fn xsktap(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns_b(), XSKTAP]).args(args);
        cmd
    }

    /// `xsktap capture -i B ARGS`, started in the background, waiting until
    /// the XDP program is attached.
    pub fn start_capture(&self, args: &[&str]) -> Running {
        let iface = self.ns_b();
        let mut all = vec!["capture", "-i", iface.as_str()];
        all.extend_from_slice(args);
        let mut cmd = self.xsktap(&all);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let running = Running::spawn(cmd);
        running.wait_for_stderr("xsktap: capturing", Duration::from_secs(20));
        running
    }

    /// Whether any XDP program is attached to the capturing device.
    pub fn xdp_attached(&self) -> bool {
        let out = Command::new("ip")
            .args([
                "-n",
                &self.ns_b(),
                "-d",
                "link",
                "show",
                "dev",
                &self.ns_b(),
            ])
            .output()
            .expect("ip link show");
        assert!(out.status.success(), "ip link show failed");
        String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
    }

    /// Sends `frames` from side a, on a thread that enters namespace a.
    pub fn send(&self, frames: &[Vec<u8>]) {
        let ns = self.ns_a();
        std::thread::scope(|s| {
            s.spawn(|| {
                netns::enter(&ns).expect("entering namespace a");
                let sender = FrameSender::open(&ns).expect("opening a sender");
                for f in frames {
                    sender.send(f).expect("sending a frame");
                }
            })
            .join()
            .expect("sender thread");
        });
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("tools/testbed.sh"))
            .args(["teardown", &self.name])
            .status();
    }
}

/// A background xsktap whose standard error is collected as it arrives.
pub struct Running {
    pub child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd.spawn().expect("spawning xsktap");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr piped");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Running { child, stderr }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stderr().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "xsktap did not print {needle:?} in time; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for exit, killing the process if it outlives `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "xsktap did not exit in {timeout:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal to the `ip netns exec` process, which is xsktap itself
    /// (ip execs the command in place).
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        let ret = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(ret, 0, "kill failed");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One pcap record as read back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    pub data: Vec<u8>,
    pub orig_len: u32,
    pub ts_ns: u64,
}

/// Reads a pcap with pcap-file (raw records: its validating reader refuses
/// orig_len > snaplen, which truncated captures have), checking the header.
pub fn read_pcap(path: &Path) -> (u32, Vec<Record>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    read_pcap_bytes(&bytes)
}

pub fn read_pcap_bytes(bytes: &[u8]) -> (u32, Vec<Record>) {
    let mut reader = pcap_file::pcap::PcapReader::new(bytes).expect("a pcap header");
    let header = reader.header();
    assert_eq!(header.ts_resolution, pcap_file::TsResolution::NanoSecond);
    assert_eq!(header.datalink, pcap_file::DataLink::ETHERNET);
    let mut records = Vec::new();
    while let Some(p) = reader.next_raw_packet() {
        let p = p.expect("a whole record");
        assert!(p.incl_len <= header.snaplen && p.incl_len <= p.orig_len);
        assert!(p.ts_frac < 1_000_000_000);
        records.push(Record {
            data: p.data.into_owned(),
            orig_len: p.orig_len,
            ts_ns: u64::from(p.ts_sec) * 1_000_000_000 + u64::from(p.ts_frac),
        });
    }
    (header.snaplen, records)
}

/// Frames as tcpdump reads them (`-xx`: every byte, link header included),
/// rebuilt from its hex dump: an independent reader of our files.
pub fn tcpdump_frames(path: &Path) -> Vec<Vec<u8>> {
    let out = Command::new("tcpdump")
        .args(["-r"])
        .arg(path)
        .args(["-nn", "-xx"])
        .output()
        .expect("running tcpdump");
    assert!(
        out.status.success(),
        "tcpdump -r failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_tcpdump_hex(&String::from_utf8_lossy(&out.stdout))
}

pub fn parse_tcpdump_hex(text: &str) -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("0x") {
            let hex = rest.split_once(':').expect("offset: hex").1;
            let frame = frames.last_mut().expect("hex after a packet line");
            for group in hex.split_whitespace() {
                for i in (0..group.len()).step_by(2) {
                    frame.push(u8::from_str_radix(&group[i..i + 2], 16).expect("hex byte"));
                }
            }
        } else if !trimmed.is_empty() {
            frames.push(Vec::new());
        }
    }
    frames
}

/// Sorted copies, to compare captures whose queues interleave.
pub fn sorted(mut frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    frames.sort();
    frames
}

pub fn summary(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("reading the JSON summary");
    serde_json::from_str(&text).expect("valid JSON")
}

pub fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xsktap-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs to completion, returning output (for bad-input tests).
pub fn run(mut cmd: Command) -> Output {
    cmd.output().expect("running xsktap")
}

/// Writes `frames` as a pcap file with pcap-file's writer (microsecond
/// timestamps, one per millisecond), for tcpdump and tshark to read.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(file).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let ts = Duration::from_millis(1_700_000_000_000 + i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .unwrap();
    }
}

/// Waits until the capturing device has an XDP program, then lets the workers start.
pub fn wait_attached(bed: &Testbed) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !bed.xdp_attached() {
        assert!(
            std::time::Instant::now() < deadline,
            "xsktap never attached"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The program is attached before the workers run; give them a moment.
    std::thread::sleep(Duration::from_millis(100));
}

pub fn wait_output(mut child: std::process::Child, timeout: Duration) -> std::process::Output {
    // Read both pipes while waiting, so a full pipe cannot stall the child.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).unwrap();
        v
    });
    let err_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut v).unwrap();
        v
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            panic!("xsktap did not finish in {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}
