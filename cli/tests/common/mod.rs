//! Shared parts of the privileged end-to-end tests: a test bed of our own
//! (built with `tools/testbed.sh`, torn down on every path), the xsktap binary
//! run inside it, a frame sender, and pcap readers (ours and tcpdump).

#![allow(dead_code)]

pub mod damaged;
pub mod protocols;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub const XSKTAP: &str = env!("CARGO_BIN_EXE_xsktap");

#[allow(unused_imports)]
pub use xsktap_bench::testbed::{require_root, Running, Testbed};

/// The xsktap binary on the shared test bed.
pub trait XsktapBed {
    /// `xsktap ARGS` inside namespace b.
    fn xsktap(&self, args: &[&str]) -> Command;
    /// `xsktap capture -i B ARGS`, started in the background, waiting until
    /// the XDP program is attached.
    fn start_capture(&self, args: &[&str]) -> Running;
    /// As `start_capture`, with `env` set for xsktap (such as
    /// `XSKTAP_TEST_MISSING`, which makes its probes report features missing).
    fn start_capture_env(&self, args: &[&str], env: &[(&str, &str)]) -> Running;
}

impl XsktapBed for Testbed {
    fn xsktap(&self, args: &[&str]) -> Command {
        self.command_b(XSKTAP, args)
    }

    fn start_capture(&self, args: &[&str]) -> Running {
        self.start_capture_env(args, &[])
    }

    fn start_capture_env(&self, args: &[&str], env: &[(&str, &str)]) -> Running {
        let iface = self.ns_b();
        let mut all = vec!["capture", "-i", iface.as_str()];
        all.extend_from_slice(args);
        let mut cmd = self.xsktap(&all);
        cmd.envs(env.iter().copied());
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let running = Running::spawn(cmd);
        running.wait_for_stderr("xsktap: capturing", Duration::from_secs(20));
        running
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

/// A `--summary-json` file, read with the schema's own types.
pub fn typed_summary(path: &Path) -> xsktap_core::summary::SummaryJson {
    let text = std::fs::read_to_string(path).expect("reading the JSON summary");
    let s: xsktap_core::summary::SummaryJson =
        serde_json::from_str(&text).expect("a summary of the current schema");
    assert_eq!(s.version, xsktap_core::summary::VERSION);
    s
}

pub fn temp_path(name: &str) -> PathBuf {
    // Tests of one binary run in parallel and may ask for the same name: each
    // call gets its own directory, so no test reads another's file.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir()
        .join(format!("xsktap-test-{}", std::process::id()))
        .join(call.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs to completion, returning output (for bad-input tests).
/// An empty directory of its own for a test's files.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = temp_path(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

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

/// Every frame accounted for, per queue: what the XDP program redirected was
/// taken from the ring or dropped by the kernel at the socket, and what was
/// taken was written, over the count, or lost to the output.
pub fn assert_accounted(s: &xsktap_core::summary::SummaryJson) {
    for q in &s.queues {
        let (Some(redirected), Some(dropped), Some(full)) =
            (q.xdp_redirected, q.rx_dropped, q.rx_ring_full)
        else {
            panic!("queue {}: counters unread: {q:?}", q.queue);
        };
        assert_eq!(
            redirected,
            q.received + dropped + full,
            "queue {}: redirected = received + socket drops: {q:?}",
            q.queue
        );
        assert_eq!(
            q.received,
            q.packets + q.over_count + q.output_closed_drops,
            "queue {}: received = written + over the count + lost to the output: {q:?}",
            q.queue
        );
    }
}

/// Sends `count` stamped UDP frames of `size` bytes from side a with the
/// generator (live frames where the kernel runs them, AF_XDP TX otherwise) (at `rate` frames/s, or as fast as it goes);
/// returns the frames sent.
pub fn generate(bed: &Testbed, count: u64, size: usize, rate: Option<f64>) -> u64 {
    generate_on(bed, None, count, size, rate)
}

/// As [`generate`], with the generator's thread pinned to `cpu` when given:
/// on veth the receive work (the XDP program, the copy into the UMEM) then
/// runs on that CPU too.
pub fn generate_on(
    bed: &Testbed,
    cpu: Option<usize>,
    count: u64,
    size: usize,
    rate: Option<f64>,
) -> u64 {
    let ns = bed.ns_a();
    std::thread::scope(|s| {
        s.spawn(|| {
            if let Some(id) = cpu {
                assert!(
                    core_affinity::set_for_current(core_affinity::CoreId { id }),
                    "pinning the generator to CPU {id}"
                );
            }
            xsktap_bench::netns::enter(&ns).expect("entering namespace a");
            let cfg = xsktap_bench::gen::GenConfig {
                iface: ns.clone(),
                frame_size: size,
                ipv6: false,
                count,
                flows: 8,
                rate,
                max_duration: Duration::from_secs(30),
                via: xsktap_bench::gen::Via::Auto,
            };
            let generator = xsktap_bench::gen::Generator::new(&cfg).expect("loading the generator");
            generator.send(&cfg).expect("generating").sent
        })
        .join()
        .expect("generator thread")
    })
}

/// The tests' ordinary traffic (steady, mixed, bursts that start a capture)
/// raises no alert; only its end may (`traffic-stopped`, which is true).
pub fn assert_no_false_alerts(stderr: &str) {
    let raised: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("xsktap: alert ") && !l.contains(" traffic-stopped "))
        .collect();
    assert!(
        raised.is_empty(),
        "alerts on ordinary traffic: {raised:?}\n{stderr}"
    );
}

/// Runs `xsktap capture -i B FLAGS` and asserts it was refused as a usage
/// error: exit 2, one line naming `expected`, nothing attached.
pub fn assert_refused(bed: &Testbed, flags: &[&str], expected: &str) {
    let iface = bed.ns_b();
    let mut args = vec!["capture", "-i", iface.as_str()];
    args.extend_from_slice(flags);
    let out = run(bed.xsktap(&args));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{flags:?}: {stderr}");
    assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    assert!(!bed.xdp_attached(), "{flags:?} left a program attached");
}

/// A small tmpfs of its own, unmounted on every path.
pub struct SmallDisk(pub std::path::PathBuf);

impl SmallDisk {
    pub fn new(bytes: u64) -> SmallDisk {
        let dir = temp_path(&format!("disk-{bytes}"));
        std::fs::create_dir_all(&dir).unwrap();
        let disk = SmallDisk(dir);
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "xsktap-test"])
            .arg(&disk.0)
            .status()
            .unwrap();
        assert!(ok.success(), "mounting a small tmpfs");
        disk
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Waits for a capture to end by itself, checks that it succeeded and that
/// its traffic raised no alert, and returns its `--summary-json` (written to
/// `json`) and its stderr.
pub fn finished(cap: &mut Running, json: &Path) -> (xsktap_core::summary::SummaryJson, String) {
    let status = cap.wait(Duration::from_secs(60));
    let stderr = cap.stderr();
    assert!(status.success(), "{stderr}");
    assert_no_false_alerts(&stderr);
    (typed_summary(json), stderr)
}

/// `/metrics` of the dashboard on 127.0.0.1:`port` in namespace b, fetched
/// until it holds `want` (at most 10 s).
pub fn metrics_until(bed: &Testbed, port: u16, want: &str) -> String {
    use std::io::{Read, Write};
    let ns = bed.ns_b();
    std::thread::scope(|s| {
        s.spawn(|| {
            xsktap_bench::netns::enter(&ns).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                // The dashboard listens once the start line is out: a moment later.
                let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                    if std::time::Instant::now() > deadline {
                        return String::from("no dashboard");
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                write!(
                    stream,
                    "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                let mut body = String::new();
                stream.read_to_string(&mut body).unwrap();
                if body.contains(want) || std::time::Instant::now() > deadline {
                    return body;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
        .join()
        .unwrap()
    })
}
