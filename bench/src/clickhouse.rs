//! A real ClickHouse server for the export's tests and benchmark: Debian's
//! `clickhouse-server` started inside a test namespace, listening on that
//! namespace's 127.0.0.1 only, with its data in a directory of its own;
//! stopped (and its directory removed) when dropped.
//!
//! It runs from a copy of the packaged configuration with the paths and
//! ports overridden on the command line (after `--`), so it needs no
//! systemd unit, touches nothing under /var/lib, and two tests never share
//! a server.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The HTTP port inside the namespace (the export's).
pub const HTTP_PORT: u16 = 18123;
/// The native port inside the namespace (clickhouse-client's).
pub const TCP_PORT: u16 = 19000;

/// A running server; dropped, it is stopped and its data removed.
pub struct ClickHouse {
    ns: String,
    dir: PathBuf,
    child: Option<Child>,
    /// `taskset -c` CPU list the server runs on (`None`: any CPU).
    cpus: Option<String>,
}

impl ClickHouse {
    /// Starts a server in namespace `ns` and waits until it answers.
    ///
    /// # Panics
    /// When clickhouse-server is not installed (tools/install-deps.sh
    /// installs it) or does not answer within 60 s.
    pub fn start(ns: &str) -> ClickHouse {
        ClickHouse::start_on(ns, None)
    }

    /// [`ClickHouse::start`] with the server's threads kept on `cpus` (a
    /// `taskset -c` list), for benchmarks that keep it off a capture's CPU.
    ///
    /// # Panics
    /// As [`ClickHouse::start`].
    pub fn start_on(ns: &str, cpus: Option<&str>) -> ClickHouse {
        let dir =
            std::env::temp_dir().join(format!("xsktap-clickhouse-{ns}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("log")).expect("making the server's directory");
        for file in ["config.xml", "users.xml"] {
            std::fs::copy(
                format!("/etc/clickhouse-server/{file}"),
                dir.join(file),
            )
            .unwrap_or_else(|e| {
                panic!("/etc/clickhouse-server/{file}: {e} (tools/install-deps.sh installs clickhouse-server)")
            });
        }
        // A cluster `fleet` of this one server, for the Distributed tables of docs/fleet.md.
        std::fs::create_dir_all(dir.join("config.d")).expect("making config.d");
        std::fs::write(
            dir.join("config.d/fleet.xml"),
            format!(
                "<yandex><remote_servers><fleet><shard><replica><host>127.0.0.1</host><port>{TCP_PORT}</port></replica></shard></fleet></remote_servers></yandex>\n"
            ),
        )
        .expect("writing the cluster's configuration");
        let mut server = ClickHouse {
            ns: ns.to_string(),
            dir,
            child: None,
            cpus: cpus.map(String::from),
        };
        server.run();
        server
    }

    fn run(&mut self) {
        let d = |p: &str| self.dir.join(p).display().to_string();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]);
        if let Some(cpus) = &self.cpus {
            cmd.args(["taskset", "-c", cpus]);
        }
        let child = cmd
            .arg("clickhouse-server")
            .arg(format!("--config-file={}", d("config.xml")))
            .arg("--")
            .arg(format!("--path={}/", d("data")))
            .arg(format!("--tmp_path={}/", d("tmp")))
            .arg(format!("--user_files_path={}/", d("user_files")))
            .arg(format!("--format_schema_path={}/", d("format_schemas")))
            .arg(format!("--logger.log={}", d("log/server.log")))
            .arg(format!("--logger.errorlog={}", d("log/error.log")))
            .arg("--listen_host=127.0.0.1")
            .arg(format!("--http_port={HTTP_PORT}"))
            .arg(format!("--tcp_port={TCP_PORT}"))
            .arg("--interserver_http_port=19009")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting clickhouse-server (tools/install-deps.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.answers() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "clickhouse-server exited ({status}): {}",
                    std::fs::read_to_string(self.dir.join("log/error.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "clickhouse-server did not answer within 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn answers(&self) -> bool {
        self.client(&["-q", "SELECT 1"])
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    fn client(&self, args: &[&str]) -> std::io::Result<Output> {
        self.client_reading(args, Stdio::null())
    }

    fn client_reading(&self, args: &[&str], stdin: Stdio) -> std::io::Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", &self.ns, "clickhouse-client"])
            .args(["--host", "127.0.0.1", "--port", &TCP_PORT.to_string()])
            .args(args)
            .stdin(stdin)
            .output()
    }

    /// Runs `sql` (an `INSERT … FORMAT …`) with clickhouse-client, the file
    /// at `data` as its rows.
    ///
    /// # Panics
    /// When the file cannot be opened or the insert fails.
    pub fn insert_file(&self, sql: &str, data: &std::path::Path) {
        let file =
            std::fs::File::open(data).unwrap_or_else(|e| panic!("opening {}: {e}", data.display()));
        let out = self
            .client_reading(&["-q", sql], Stdio::from(file))
            .expect("running clickhouse-client");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The export's URL for it, with `database` when given.
    pub fn url(&self, database: Option<&str>) -> String {
        match database {
            Some(db) => format!("http://127.0.0.1:{HTTP_PORT}/?database={db}"),
            None => format!("http://127.0.0.1:{HTTP_PORT}"),
        }
    }

    /// Runs `sql` with clickhouse-client and returns its output (TSV).
    ///
    /// # Panics
    /// When the query fails.
    pub fn query(&self, sql: &str) -> String {
        let out = self
            .client(&["-q", sql])
            .expect("running clickhouse-client");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `query`'s single number.
    pub fn number(&self, sql: &str) -> u64 {
        let text = self.query(sql);
        text.parse()
            .unwrap_or_else(|_| panic!("{sql}: not a number: {text:?}"))
    }

    /// Stops the server (its data stays for [`ClickHouse::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `ip netns exec` execs the server: the child is the server.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Starts the server again on its data.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
