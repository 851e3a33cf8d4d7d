//! Debian's `nfcapd` as an independent IPFIX collector for the tests: it
//! listens on the loopback of a test namespace, writes into a directory of
//! its own, and `nfdump` reads its file back. Stopped, and its directory
//! removed, on every path.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The UDP port it listens on inside the namespace (IPFIX's).
pub const PORT: u16 = 4739;

/// A running collector.
pub struct Collector {
    child: Option<Child>,
    dir: PathBuf,
}

impl Collector {
    /// Starts nfcapd on 127.0.0.1:[`PORT`] in namespace `ns`, and waits
    /// until it listens.
    ///
    /// # Panics
    /// When nfcapd is not installed (tools/install-deps.sh installs nfdump)
    /// or never listens.
    pub fn start(ns: &str) -> Collector {
        let dir = std::env::temp_dir().join(format!("xsktap-nfcapd-{ns}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("making nfcapd's directory");
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "nfcapd", "-b", "127.0.0.1", "-p"])
            .arg(PORT.to_string())
            .arg("-w")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nfcapd is installed (tools/install-deps.sh)");
        let collector = Collector {
            child: Some(child),
            dir,
        };
        collector.wait_listening(ns);
        collector
    }

    /// nfcapd binds after it starts: probes with an empty IPFIX message
    /// (only a header) until one is not refused.
    fn wait_listening(&self, ns: &str) {
        let ns = ns.to_string();
        std::thread::scope(|s| {
            s.spawn(|| {
                crate::netns::enter(&ns).expect("entering the namespace");
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket.connect(("127.0.0.1", PORT)).unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                // Version 10, length 16, no sets: collectors ignore it.
                let mut probe = [0u8; 16];
                probe[1] = 10;
                probe[3] = 16;
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let _ = socket.send(&probe);
                    let mut buf = [0u8; 1];
                    let refused = matches!(socket.recv(&mut buf),
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused);
                    if !refused {
                        return;
                    }
                    assert!(Instant::now() < deadline, "nfcapd never listened");
                }
            })
            .join()
            .expect("probe thread");
        });
    }

    /// Stops nfcapd (SIGTERM: it closes its file under its final name) and
    /// returns the flows `nfdump -r` reads from it, one line each:
    /// `src,dst,sport,dport,proto,packets,bytes,duration,flags` (protocol
    /// numeric, flags as nfdump spells them, `...AP.SF`).
    ///
    /// # Panics
    /// When there is no file or nfdump fails.
    pub fn stop_and_read(&mut self) -> Vec<String> {
        self.terminate();
        let file = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("nfcapd.2")
            })
            .unwrap_or_else(|| panic!("no nfcapd file in {}", self.dir.display()));
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
        assert!(
            out.status.success(),
            "nfdump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split(',').map(str::trim).collect::<Vec<_>>().join(","))
            .filter(|l| !l.is_empty())
            .collect()
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
