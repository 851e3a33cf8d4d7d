//! IPFIX messages from `xsktap_core::ipfix` read back by an independent
//! collector: Debian's `nfcapd` listening on the loopback of a test bed's
//! namespace, its file read by `nfdump`. Needs root (the namespace).

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xsktap_bench::netns;
use xsktap_bench::testbed::{require_root, Testbed};
use xsktap_core::ipfix::{Exporter, FlowRecord, DEFAULT_MAX_MESSAGE};

const PORT: u16 = 4739;

fn flows() -> Vec<FlowRecord> {
    let base = 1_764_900_000_000u64;
    let mut v: Vec<FlowRecord> = (0..300u64)
        .map(|i| FlowRecord {
            src: format!("198.18.{}.{}", i / 200, i % 200 + 1)
                .parse()
                .unwrap(),
            dst: "198.18.0.2".parse().unwrap(),
            sport: 40_000 + i as u16,
            dport: if i % 2 == 0 { 443 } else { 53 },
            proto: if i % 2 == 0 { 6 } else { 17 },
            tcp_flags: if i % 2 == 0 { 0x1b } else { 0 },
            vlan: 0,
            packets: i + 1,
            bytes: 100 * (i + 1),
            start_ms: base + i,
            end_ms: base + i + 1500,
        })
        .collect();
    v.push(FlowRecord {
        src: "2001:2::1".parse().unwrap(),
        dst: "2001:2::2".parse().unwrap(),
        sport: 5353,
        dport: 53,
        proto: 17,
        tcp_flags: 0,
        vlan: 0,
        packets: 9,
        bytes: 900,
        start_ms: base,
        end_ms: base + 10,
    });
    v
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn nfdump_reads_back_every_flow_with_its_packets_and_bytes() {
    require_root();
    let bed = Testbed::named("xf", 1);
    let mut collector = Collector::start(&bed);
    let records = flows();
    let ns = bed.ns_b();
    std::thread::scope(|s| {
        s.spawn(|| {
            netns::enter(&ns).expect("entering namespace b");
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            // nfcapd binds after it starts: wait until a datagram is not refused.
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut e = Exporter::new(1, DEFAULT_MAX_MESSAGE);
            let mut messages = e.messages(&records, 1_764_900_010, true);
            assert!(messages.len() > 10);
            socket.connect(("127.0.0.1", PORT)).unwrap();
            let probe = Exporter::new(1, DEFAULT_MAX_MESSAGE).messages(&[], 0, true);
            loop {
                let _ = socket.send(&probe[0]);
                std::thread::sleep(Duration::from_millis(100));
                let mut buf = [0u8; 1];
                socket.set_nonblocking(true).unwrap();
                let refused = matches!(socket.recv(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused);
                socket.set_nonblocking(false).unwrap();
                if !refused {
                    break;
                }
                assert!(Instant::now() < deadline, "nfcapd never listened");
            }
            for m in messages.drain(..) {
                socket.send(&m).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        })
        .join()
        .expect("exporter thread");
    });
    std::thread::sleep(Duration::from_millis(500));
    let file = collector.stop();
    let out = Command::new("nfdump")
        .arg("-r")
        .arg(&file)
        .args([
            "-q",
            "-N",
            "-o",
            "fmt:%sa,%da,%sp,%dp,%pr,%pkt,%byt,%td,%flg",
        ])
        .output()
        .expect("running nfdump");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<String> = text
        .lines()
        .map(|l| l.split(',').map(str::trim).collect::<Vec<_>>().join(","))
        .filter(|l| !l.is_empty())
        .collect();
    let mut expected: Vec<String> = records
        .iter()
        .map(|r| {
            // Duration from flowStart/EndMilliseconds; flags as nfdump spells them.
            let secs = (r.end_ms - r.start_ms) as f64 / 1000.0;
            let flags = if r.tcp_flags == 0x1b {
                "...AP.SF"
            } else {
                "........"
            };
            format!(
                "{},{},{},{},{},{},{},{secs:.3},{flags}",
                r.src, r.dst, r.sport, r.dport, r.proto, r.packets, r.bytes
            )
        })
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "nfdump printed:\n{text}");
}

/// nfcapd on the loopback of the bed's namespace b, writing into a
/// directory of its own; stopped and its directory removed on every path.
struct Collector {
    child: Option<std::process::Child>,
    dir: PathBuf,
}

impl Collector {
    fn start(bed: &Testbed) -> Collector {
        let dir = PathBuf::from(format!("/tmp/xsktap-nfcapd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &bed.ns_b(),
                "nfcapd",
                "-b",
                "127.0.0.1",
                "-p",
            ])
            .arg(PORT.to_string())
            .arg("-w")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nfcapd is installed (tools/install-deps.sh)");
        Collector {
            child: Some(child),
            dir,
        }
    }

    /// Stops nfcapd (SIGTERM: it closes its file under its final name) and
    /// returns that file.
    fn stop(&mut self) -> PathBuf {
        self.terminate();
        std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("nfcapd.2")
            })
            .unwrap_or_else(|| panic!("no nfcapd file in {}", self.dir.display()))
    }

    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `ip netns exec` execs nfcapd: the child is nfcapd itself.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.terminate();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
