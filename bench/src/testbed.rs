//! The one test bed of every privileged test and of the benchmark harness:
//! two network namespaces joined by a veth pair (`tools/testbed.sh`), torn
//! down on every path, and the helpers that run programs inside it.

#![allow(missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{netns, send::FrameSender};

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Stops a privileged test that runs without root with one clear message.
/// Such tests are `#[ignore = "needs root"]`: a plain `cargo test` lists
/// them as ignored with that reason, and `tools/test.sh` (as root) runs them
/// with `--include-ignored`.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "this test needs root (it builds network namespaces and attaches XDP): run tools/test.sh as root"
    );
}

/// Two namespaces NAME-a and NAME-b joined by a veth pair; deleted on drop.
pub struct Testbed {
    pub name: String,
}

impl Testbed {
    /// Builds a test bed with `queues` RX queues on each side (needs root).
    pub fn new(queues: u32) -> Testbed {
        Testbed::named("xt", queues)
    }

    /// Builds a test bed whose name starts with `prefix`.
    pub fn named(prefix: &str, queues: u32) -> Testbed {
        require_root();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}{}x{}",
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

    /// `PROGRAM ARGS` inside namespace a.
    pub fn command_a(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns_a()])
            .arg(program)
            .args(args);
        cmd
    }

    /// `PROGRAM ARGS` inside namespace b.
    pub fn command_b(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns_b()])
            .arg(program)
            .args(args);
        cmd
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

    /// Sends `frames` from side a at most `per_sec` frames a second, a
    /// millisecond's worth at a time; a sender that falls behind slips its
    /// schedule rather than catch up in a burst. Returns how long it took.
    pub fn send_paced(&self, frames: &[Vec<u8>], per_sec: f64) -> Duration {
        let ns = self.ns_a();
        let per_ms = (per_sec / 1000.0).max(1.0) as usize;
        std::thread::scope(|s| {
            s.spawn(|| {
                netns::enter(&ns).expect("entering namespace a");
                let sender = FrameSender::open(&ns).expect("opening a sender");
                let start = Instant::now();
                let mut due = start;
                for batch in frames.chunks(per_ms) {
                    let now = Instant::now();
                    match due.checked_duration_since(now) {
                        Some(wait) => std::thread::sleep(wait),
                        None => due = now,
                    }
                    due += Duration::from_millis(1);
                    for f in batch {
                        sender.send(f).expect("sending a frame");
                    }
                }
                start.elapsed()
            })
            .join()
            .expect("sender thread")
        })
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
