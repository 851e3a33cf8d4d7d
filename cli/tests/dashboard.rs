//! Issue 5 end to end, as root, in namespaces made by each test: the page in
//! headless Chromium, /metrics against the summary, the WebSocket's schema,
//! pace and slow clients, and the token on a non-loopback address.
//!
//! xsktap runs in namespace b, so every client here runs on a thread that has
//! entered namespace b and talks to its loopback or its own address.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::protocols::plain_frames;
use common::*;
use serde_json::Value;
use xsktap_core::summary::SummaryJson;

const PORT: u16 = 9100;

/// Runs `f` on a thread inside network namespace `ns`.
fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            xsktap_bench::netns::enter(ns).expect("entering the namespace");
            f()
        })
        .join()
        .expect("namespace thread")
    })
}

/// A minimal HTTP/1.1 client: status, headers (lower-case names) and body.
struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

fn http(host: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(host).expect("connecting to the dashboard");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {host}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    // Headers first, then exactly Content-Length bytes (some servers keep the
    // connection open despite `Connection: close`).
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("reading a reply");
        assert_eq!(n, 1, "the reply ended inside its headers");
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).expect("UTF-8 headers");
    let mut lines = head.trim_end().lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<HashMap<_, _>>();
    let length: usize = headers
        .get("content-length")
        .expect("replies carry a Content-Length")
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("reading the body");
    let body = String::from_utf8(body).expect("a UTF-8 body");
    Reply {
        status,
        headers,
        body,
    }
}

fn get_json(host: &str, path: &str) -> Value {
    let reply = http(host, "GET", path, &[]);
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    serde_json::from_str(&reply.body).expect("JSON")
}

/// Polls /api/summary until `received` reaches `n`.
fn wait_received(host: &str, n: u64) -> SummaryJson {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s: SummaryJson = serde_json::from_value(get_json(host, "/api/summary"))
            .expect("/api/summary in the summary's schema");
        if s.received == n {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard never showed {n} packets: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One sample of the exposition: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// A strict parser of the OpenMetrics/Prometheus text format: every sample
/// belongs to a family declared by # TYPE with a suffix its type allows,
/// names and labels are well formed, no series repeats, and # EOF ends it.
fn parse_metrics(text: &str) -> Vec<Sample> {
    fn valid_name(n: &str) -> bool {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut ended = false;
    for line in text.lines() {
        assert!(!ended, "text after # EOF: {line:?}");
        if line == "# EOF" {
            ended = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let name = parts.next().expect("a metric name").to_string();
            assert!(valid_name(&name), "bad name {name:?}");
            match kind {
                "TYPE" => {
                    let t = parts.next().expect("a type").to_string();
                    assert!(
                        [
                            "counter",
                            "gauge",
                            "histogram",
                            "summary",
                            "info",
                            "unknown"
                        ]
                        .contains(&t.as_str()),
                        "bad type {t}"
                    );
                    assert!(types.insert(name, t).is_none(), "family declared twice");
                }
                "HELP" | "UNIT" => {}
                other => panic!("unknown comment {other:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert!(valid_name(&key), "bad label name {key:?} in {line:?}");
                    assert_eq!(chars.next(), Some('"'), "quoted label value in {line:?}");
                    let mut v = String::new();
                    loop {
                        match chars.next().expect("unterminated label value") {
                            '\\' => v.push(chars.next().expect("escape")),
                            '"' => break,
                            c => v.push(c),
                        }
                    }
                    assert!(labels.insert(key, v).is_none(), "label twice: {line:?}");
                    match chars.next() {
                        None => break,
                        Some(',') => {}
                        Some(c) => panic!("unexpected {c:?} in {line:?}"),
                    }
                }
                (name.to_string(), labels)
            }
        };
        assert!(valid_name(&name), "bad name {name:?}");
        let family_ok = types.iter().any(|(family, t)| {
            let suffixes: &[&str] = match t.as_str() {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                "summary" => &["", "_sum", "_count", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            suffixes.iter().any(|s| name == format!("{family}{s}"))
        });
        assert!(family_ok, "sample {name} has no # TYPE family");
        assert!(
            seen.insert(format!("{name}{labels:?}")),
            "series repeated: {line}"
        );
        samples.push((name, labels, value));
    }
    assert!(ended, "the exposition ends with # EOF");
    samples
}

/// Sum of `name` over series whose labels include `want`.
fn metric(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .collect();
    assert!(!matching.is_empty(), "no sample {name} {want:?}");
    matching.iter().sum()
}

/// Sends `n` frames of `frames` (cycled) over about `secs` seconds, on a thread.
fn send_spread(bed: &Testbed, frames: &[Vec<u8>], n: usize, secs: f64) {
    let per_batch = (n / (secs * 10.0).max(1.0) as usize).max(1);
    let mut sent = 0;
    while sent < n {
        let batch: Vec<Vec<u8>> = frames
            .iter()
            .cycle()
            .skip(sent)
            .take(per_batch.min(n - sent))
            .cloned()
            .collect();
        bed.send(&batch);
        sent += batch.len();
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The token xsktap generated and printed in the dashboard's URL.
fn printed_token(stderr: &str) -> String {
    stderr
        .split("?token=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("a generated token is printed")
        .to_string()
}

/// `xsktap capture --serve PORT -q --summary-json …` on the test bed, attached.
fn start_serving(bed: &Testbed, name: &str) -> (Running, PathBuf) {
    start_serving_with(bed, name, &[])
}

/// As [`start_serving`], with more flags.
fn start_serving_with(bed: &Testbed, name: &str, extra: &[&str]) -> (Running, PathBuf) {
    let json = temp_path(name);
    let port = PORT.to_string();
    let mut args = vec![
        "--serve",
        &port,
        "-q",
        "--summary-json",
        json.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let capture = bed.start_capture(&args);
    capture.wait_for_stderr(
        &format!("dashboard on http://127.0.0.1:{PORT}/"),
        Duration::from_secs(10),
    );
    wait_attached(bed);
    (capture, json)
}

/// Stops the capture as a user would (SIGINT) and reads its --summary-json.
fn stop_and_summarise(mut capture: Running, json: &std::path::Path) -> SummaryJson {
    capture.signal(libc::SIGINT);
    assert!(capture.wait(Duration::from_secs(20)).success());
    let s = typed_summary(json);
    assert_accounted(&s);
    s
}

fn chromium() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    // The test runs only when asked for (it is ignored without root), so a
    // missing browser is a failure, never a silent pass.
    assert!(
        found.is_some(),
        "chromium is not installed: run tools/install-deps.sh"
    );
    found
}

/// A Chrome DevTools Protocol session with one page.
struct Devtools {
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Devtools {
    /// Finds the page showing `url_prefix` on the browser's debugging port.
    fn attach(debug_port: u16, url_prefix: &str) -> Devtools {
        let deadline = Instant::now() + Duration::from_secs(30);
        let ws_url = loop {
            if TcpStream::connect(("127.0.0.1", debug_port)).is_ok() {
                let reply = http(&format!("127.0.0.1:{debug_port}"), "GET", "/json/list", &[]);
                let targets: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
                let page = targets.as_array().and_then(|t| {
                    t.iter().find(|t| {
                        t["type"] == "page"
                            && t["url"].as_str().is_some_and(|u| u.starts_with(url_prefix))
                    })
                });
                if let Some(url) = page.and_then(|p| p["webSocketDebuggerUrl"].as_str()) {
                    break url.to_string();
                }
            }
            assert!(Instant::now() < deadline, "Chromium never opened the page");
            std::thread::sleep(Duration::from_millis(200));
        };
        let (socket, _) = tungstenite::connect(ws_url).expect("connecting to DevTools");
        Devtools { socket, next_id: 1 }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = serde_json::json!({"id": id, "method": method, "params": params});
        self.socket
            .send(tungstenite::Message::Text(msg.to_string().into()))
            .unwrap();
        loop {
            let reply = self.socket.read().expect("reading DevTools");
            let tungstenite::Message::Text(text) = reply else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `expr` in the page; it must return a JSON string.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expr, "returnByValue": true}),
        );
        let text = r["result"]["value"]
            .as_str()
            .unwrap_or_else(|| panic!("{expr} gave {r}"));
        serde_json::from_str(text).unwrap()
    }
}

/// What the page shows, read from the DOM.
const READ_DOM: &str = r##"!document.getElementById("status") ? JSON.stringify({status: "loading"}) : JSON.stringify({
  seq: document.body.dataset.seq || null,
  status: document.getElementById("status").textContent,
  packets: Number(document.getElementById("kpi-packets").dataset.value),
  written: Number(document.getElementById("kpi-written").dataset.value),
  lost: Number(document.getElementById("kpi-lost").dataset.value),
  udp: Number(document.querySelector('#protocols [data-proto="udp"] .v')?.dataset.value),
  tcp: Number(document.querySelector('#protocols [data-proto="tcp"] .v')?.dataset.value),
  xdp: document.getElementById("xdp-mode").textContent,
  mode: document.querySelector('#queues tr[data-queue="0"] .mode')?.textContent,
  queue_received: Number(document.querySelector('#queues tr[data-queue="0"] .received')?.dataset.value),
  samples: Number(document.getElementById("chart-pps").dataset.samples),
  talkers: document.querySelectorAll("#talkers tbody tr").length,
  rx_ring_full: Number(document.querySelector('#drops [data-cause="rx_ring_full"] .v')?.dataset.value),
})"##;

/// Headless chromium in the bed's namespace b on `url`, debugging port 9222;
/// its whole process group killed and reaped on drop.
struct Browser(std::process::Child);

impl Browser {
    fn open(chromium: &std::path::Path, bed: &Testbed, url: &str, profile: &str) -> Browser {
        let profile = temp_path(profile);
        let mut browser = Command::new("ip");
        browser
            .args(["netns", "exec", &bed.ns_b()])
            .arg(chromium)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=9222",
                "--window-size=1400,1700",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        Browser(browser.spawn().expect("starting chromium"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group made for the browser.
        unsafe { libc::kill(-(self.0.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// The feed panel's first row, as the page shows it.
const READ_FEED: &str = r##"JSON.stringify({
  status: document.getElementById("status")?.textContent,
  shown: !document.getElementById("feeds-panel")?.hidden,
  feed: document.querySelector('#feeds tbody tr')?.dataset.feed,
  messages: Number(document.querySelector('#feeds tbody tr .messages')?.dataset.value),
  gaps: Number(document.querySelector('#feeds tbody tr .gaps')?.dataset.value),
  missing: Number(document.querySelector('#feeds tbody tr .missing')?.dataset.value),
  published: Number(document.querySelector('#feeds tbody tr .published')?.dataset.value),
  lead: document.querySelector('#feeds tbody tr .lead')?.textContent,
})"##;

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn the_page_shows_each_feed_with_its_gaps_and_what_was_published() {
    use xsktap_bench::feedgen::{send_session_in, truth, FeedGenConfig};
    require_root();
    let Some(chromium) = chromium() else { return };
    let bed = Testbed::new(1);
    let json = temp_path("dash-feed.json");
    let name = format!("page{}", std::process::id());
    let ab = format!("{name}=198.18.0.2:26400,198.18.0.2:26401");
    let port = PORT.to_string();
    let iface = bed.ns_b();
    let feed = Running::spawn({
        let mut cmd = bed.xsktap(&[
            "feed",
            "-i",
            &iface,
            "--ab",
            &ab,
            "--publish",
            "--serve",
            &port,
            "--summary-json",
            json.to_str().unwrap(),
        ]);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        cmd
    });
    feed.wait_for_stderr(
        &format!("dashboard on http://127.0.0.1:{PORT}/"),
        Duration::from_secs(20),
    );
    let url = format!("http://127.0.0.1:{PORT}/");
    let _browser = Browser::open(&chromium, &bed, &url, "chromium-feed-profile");
    let cfg = FeedGenConfig {
        iface: bed.ns_a(),
        packets: 20_000,
        messages: 4,
        ab: true,
        port_a: 26_400,
        port_b: 26_401,
        loss: 0.02,
        dup: 0.0,
        reorder: 0.0,
        seed: 3,
        rate: Some(100_000.0),
        max_duration: Duration::from_secs(30),
        via: Default::default(),
    };
    let t = truth(&cfg);
    let row = in_ns(&bed.ns_b(), || {
        let mut devtools = Devtools::attach(9222, &url);
        let deadline = Instant::now() + Duration::from_secs(20);
        while devtools.eval(READ_FEED)["status"] != "live" {
            assert!(Instant::now() < deadline, "the page never connected");
            std::thread::sleep(Duration::from_millis(100));
        }
        let ns = bed.ns_a();
        std::thread::scope(|s| s.spawn(|| send_session_in(&ns, &cfg)).join())
            .unwrap()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let row = devtools.eval(READ_FEED);
            if row["messages"].as_u64() == Some(t.delivered_messages) {
                break row;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed every message: {row}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let mut feed = feed;
    feed.signal(libc::SIGINT);
    assert!(
        feed.wait(Duration::from_secs(20)).success(),
        "{}",
        feed.stderr()
    );
    let s = typed_summary(&json);
    let f = &s.feeds[0];
    assert_eq!(row["shown"], true, "{row}");
    assert_eq!(row["feed"].as_str(), Some(name.as_str()));
    assert_eq!(row["gaps"].as_u64(), Some(t.gaps.len() as u64), "{row}");
    assert!(!t.gaps.is_empty());
    assert_eq!(row["gaps"].as_u64(), Some(f.gaps));
    assert_eq!(row["missing"].as_u64(), Some(f.missing));
    // A sample per frame's run of messages: at least one per packet delivered.
    assert!(
        row["published"].as_u64() >= Some(t.delivered_messages / 4),
        "{row}"
    );
    assert!(row["lead"].as_str().unwrap().starts_with("A "), "{row}");
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn the_page_in_chromium_shows_the_capture_counters() {
    require_root();
    let Some(chromium) = chromium() else { return };
    let bed = Testbed::new(1);
    let (capture, json) = start_serving(&bed, "dash-page.json");

    let url = format!("http://127.0.0.1:{PORT}/");
    let _browser = Browser::open(&chromium, &bed, &url, "chromium-profile");

    let frames = plain_frames();
    let n = frames.len() as u64;
    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("dashboard.png");
    let dom = in_ns(&bed.ns_b(), || {
        let mut devtools = Devtools::attach(9222, &url);
        // The page is connected before the traffic starts, so the charts see it arrive.
        let deadline = Instant::now() + Duration::from_secs(20);
        while devtools.eval(READ_DOM)["status"] != "live" {
            assert!(Instant::now() < deadline, "the page never connected");
            std::thread::sleep(Duration::from_millis(100));
        }
        bed.send(&frames);
        let deadline = Instant::now() + Duration::from_secs(30);
        let dom = loop {
            let dom = devtools.eval(READ_DOM);
            if dom["packets"] == n && dom["samples"].as_u64() >= Some(3) {
                break dom;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {n} packets and 3 chart samples: {dom}"
            );
            std::thread::sleep(Duration::from_millis(250));
        };
        let png = devtools.call(
            "Page.captureScreenshot",
            serde_json::json!({"format": "png", "captureBeyondViewport": true}),
        );
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png["data"].as_str().unwrap())
            .unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG screenshot");
        assert!(bytes.len() > 20_000, "the screenshot has content");
        std::fs::write(&shot, bytes).unwrap();
        dom
    });
    eprintln!("screenshot: {}", shot.display());

    let summary = stop_and_summarise(capture, &json);
    // The page agrees with the capture's own final counters.
    let protocol = |p: &str| Some(summary.traffic.protocols[p].packets);
    assert_eq!(dom["packets"].as_u64(), Some(summary.received), "{dom}");
    assert_eq!(dom["written"].as_u64(), Some(summary.packets));
    assert_eq!(dom["lost"].as_u64(), Some(summary.lost));
    assert_eq!(dom["lost"], 0);
    assert_eq!(dom["udp"].as_u64(), protocol("udp"));
    assert!(dom["udp"].as_u64() > Some(0), "{dom}");
    assert_eq!(dom["tcp"].as_u64(), protocol("tcp"));
    assert_eq!(
        dom["queue_received"].as_u64(),
        Some(summary.queues[0].received)
    );
    assert_eq!(dom["xdp"].as_str(), Some(summary.xdp_mode.as_str()));
    assert_eq!(dom["mode"], "copy", "veth binds in copy mode");
    assert_eq!(dom["rx_ring_full"], 0);
    assert!(
        dom["talkers"].as_u64() > Some(0),
        "top talkers listed: {dom}"
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn metrics_parse_and_match_the_summary() {
    let bed = Testbed::new(1);
    let (capture, json) = start_serving(&bed, "dash-metrics.json");
    let frames = plain_frames();
    bed.send(&frames);
    let host = format!("127.0.0.1:{PORT}");
    let (live, samples, content_type) = in_ns(&bed.ns_b(), || {
        let live = wait_received(&host, frames.len() as u64);
        let reply = http(&host, "GET", "/metrics", &[]);
        assert_eq!(reply.status, 200);
        // Loopback without a token: only for loopback names (a rebound foreign name is refused).
        let rebound = http(
            &host,
            "GET",
            "/api/summary",
            &[("Host", "evil.example:9100")],
        );
        assert_eq!(rebound.status, 403);
        let tunnel = http(&host, "GET", "/api/summary", &[("Host", "localhost:8080")]);
        assert_eq!(tunnel.status, 200);
        let ct = reply.headers["content-type"].clone();
        (live, parse_metrics(&reply.body), ct)
    });
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let summary = stop_and_summarise(capture, &json);

    for s in [&live, &summary] {
        let q = &s.queues[0];
        let known = |v: Option<u64>| v.expect("the kernel counters were read");
        let pairs = [
            ("xsktap_packets_total", s.received),
            ("xsktap_bytes_total", s.received_bytes),
            ("xsktap_written_packets_total", s.packets),
            ("xsktap_written_bytes_total", s.bytes),
            ("xsktap_lost_packets_total", s.lost),
            ("xsktap_xdp_seen_packets_total", known(q.xdp_seen)),
            (
                "xsktap_fill_ring_empty_total",
                known(q.rx_fill_ring_empty_descs),
            ),
        ];
        for (name, want) in pairs {
            assert_eq!(metric(&samples, name, &[]), want as f64, "{name}");
        }
        for (cause, want) in [
            ("rx_dropped", known(q.rx_dropped)),
            ("rx_ring_full", known(q.rx_ring_full)),
            ("xdp_redirect_failed", known(q.xdp_redirect_failed)),
            ("output_closed", q.output_closed_drops),
        ] {
            assert_eq!(
                metric(
                    &samples,
                    "xsktap_dropped_packets_total",
                    &[("cause", cause), ("queue", "0")]
                ),
                want as f64,
                "{cause}"
            );
        }
        for (proto, v) in &s.traffic.protocols {
            assert_eq!(
                metric(
                    &samples,
                    "xsktap_protocol_packets_total",
                    &[("protocol", proto)]
                ),
                v.packets as f64,
                "{proto}"
            );
            assert_eq!(
                metric(
                    &samples,
                    "xsktap_protocol_bytes_total",
                    &[("protocol", proto)]
                ),
                v.bytes as f64,
                "{proto} bytes"
            );
        }
    }
    // The size histogram: cumulative buckets ending in +Inf = count = packets.
    let buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|(n, _, _)| n == "xsktap_packet_size_bytes_bucket")
        .map(|(_, l, v)| {
            let le = match l["le"].as_str() {
                "+Inf" => f64::INFINITY,
                x => x.parse().unwrap(),
            };
            (le, *v)
        })
        .collect();
    assert_eq!(buckets.len(), 8);
    assert!(buckets
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
    let count = metric(&samples, "xsktap_packet_size_bytes_count", &[]);
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, count));
    assert_eq!(count, summary.received as f64);
    let mut per_label = 0.0;
    let mut below = 0.0;
    for (label, (_, cumulative)) in xsktap_core::stats::SIZE_LABELS.iter().zip(&buckets) {
        per_label += summary.traffic.sizes[*label] as f64;
        assert_eq!(per_label, *cumulative, "bucket {label}: {buckets:?}");
        below = *cumulative;
    }
    assert_eq!(below, count);
    assert_eq!(
        metric(
            &samples,
            "xsktap_queue_info",
            &[("queue", "0"), ("bind_mode", "copy")]
        ),
        1.0
    );
}

/// Sets a small receive buffer so that a client that never reads fills up quickly.
fn small_rcvbuf(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4096;
    // SAFETY: setsockopt on a live socket with an int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn the_websocket_pushes_a_snapshot_a_second_and_a_stuck_client_stalls_nothing() {
    let bed = Testbed::new(1);
    let (capture, json) = start_serving(&bed, "dash-ws.json");
    let frames = plain_frames();
    let n_sent = 60 * frames.len();
    let host = format!("127.0.0.1:{PORT}");
    let ns = bed.ns_b();
    let (messages, server) = std::thread::scope(|s| {
        // Traffic keeps the counters moving for the whole test (bounded: ~25 s).
        let sender = s.spawn(|| send_spread(&bed, &frames, n_sent, 25.0));
        let result = in_ns(&ns, || {
            // The stuck client: handshakes, then never reads a byte.
            let raw = TcpStream::connect(&host).unwrap();
            small_rcvbuf(&raw);
            let (_stuck, _) = tungstenite::client(format!("ws://{host}/ws"), raw)
                .expect("stuck client handshake");
            let (mut ws, _) = tungstenite::connect(format!("ws://{host}/ws")).expect("ws client");
            let mut messages = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(40);
            let server = loop {
                let msg = ws.read().expect("a message");
                let tungstenite::Message::Text(text) = msg else {
                    continue;
                };
                let v: Value = serde_json::from_str(&text).expect("JSON");
                messages.push((Instant::now(), v));
                if messages.len() >= 8 {
                    // The stuck client is noticed: its updates are skipped or it is closed.
                    let metrics = parse_metrics(&http(&host, "GET", "/metrics", &[]).body);
                    let dropped = metric(&metrics, "xsktap_dashboard_dropped_updates_total", &[]);
                    let closed = metric(&metrics, "xsktap_dashboard_slow_disconnects_total", &[]);
                    if closed >= 1.0 {
                        break serde_json::json!({"dropped": dropped, "closed": closed});
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "the stuck client was never closed"
                );
            };
            (messages, server)
        });
        sender.join().unwrap();
        result
    });
    let summary = stop_and_summarise(capture, &json);

    // Schema of every message.
    for (_, m) in &messages {
        assert_eq!(m["version"], 1);
        for key in ["seq", "time_unix_ms", "interval_s"] {
            assert!(m[key].is_number(), "{key} in {m}");
        }
        for key in ["packets_per_sec", "bits_per_sec", "lost_per_sec"] {
            assert!(m["rates"][key].is_number(), "rates.{key}");
            assert!(
                m["rates"]["queues"][0][key].is_number(),
                "rates.queues[0].{key}"
            );
        }
        for key in [
            "rx_dropped",
            "rx_ring_full",
            "xdp_redirect_failed",
            "output_closed",
        ] {
            assert!(m["drops"][key].is_u64(), "drops.{key}");
        }
        assert!(m["server"]["clients"].is_u64() && m["server"]["dropped_updates"].is_u64());
        let _: SummaryJson = serde_json::from_value(m["summary"].clone())
            .expect("the message's summary in the summary's schema");
    }
    // One message a second, none skipped for the client that reads, counters moving.
    let seqs: Vec<u64> = messages
        .iter()
        .map(|(_, m)| m["seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive: {seqs:?}"
    );
    let span = messages.last().unwrap().0 - messages[1].0;
    let per_message = span.as_secs_f64() / (messages.len() - 2) as f64;
    assert!(
        (0.8..1.25).contains(&per_message),
        "one message a second, got one per {per_message:.2} s"
    );
    let received: Vec<u64> = messages
        .iter()
        .map(|(_, m)| m["summary"]["received"].as_u64().unwrap())
        .collect();
    assert!(received.windows(2).all(|w| w[0] <= w[1]));
    assert!(
        received.last() > received.first(),
        "counters advanced: {received:?}"
    );
    assert!(messages.iter().any(|(_, m)| m["server"]["clients"] == 2));
    // Nothing the stuck client did reached the capture.
    assert_eq!(summary.received, n_sent as u64, "{server}");
    assert_eq!(summary.lost, 0);
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_non_loopback_address_requires_the_token() {
    let bed = Testbed::new(1);
    let capture = bed.start_capture(&["--serve", "198.18.0.2:9100", "-q"]);
    capture.wait_for_stderr("dashboard on", Duration::from_secs(10));
    let stderr = capture.stderr();
    let token = printed_token(&stderr);
    assert_eq!(token.len(), 32, "{stderr}");
    let host = "198.18.0.2:9100";
    in_ns(&bed.ns_b(), || {
        let bearer = format!("Bearer {token}");
        let wrong = format!("Bearer {}", "0".repeat(32));
        for path in ["/", "/metrics", "/api/summary", "/api/snapshot", "/ws"] {
            let none = http(host, "GET", path, &[]);
            assert_eq!(none.status, 401, "{path} without a token");
            assert_eq!(none.headers["www-authenticate"], "Bearer");
            assert_eq!(
                http(host, "GET", path, &[("Authorization", &wrong)]).status,
                401
            );
            assert_eq!(
                http(host, "GET", &format!("{path}?token=x{token}"), &[]).status,
                401
            );
        }
        for path in ["/", "/metrics", "/api/summary", "/api/snapshot"] {
            assert_eq!(
                http(host, "GET", path, &[("Authorization", &bearer)]).status,
                200
            );
            assert_eq!(
                http(host, "GET", &format!("{path}?token={token}"), &[]).status,
                200
            );
        }
        // Nothing changes state.
        assert_eq!(
            http(host, "POST", "/api/summary", &[("Authorization", &bearer)]).status,
            405
        );
        let page = http(host, "GET", &format!("/?token={token}"), &[]);
        assert!(page.body.contains("/ws") && page.body.contains("token"));
        assert!(
            !page.body.contains("http://") && !page.body.contains("https://"),
            "no external assets"
        );
        // The WebSocket too: refused without the token, served with it.
        let refused = tungstenite::connect(format!("ws://{host}/ws"));
        assert!(
            matches!(&refused, Err(tungstenite::Error::Http(r)) if r.status() == 401),
            "ws without a token: {refused:?}"
        );
        let (mut ws, _) =
            tungstenite::connect(format!("ws://{host}/ws?token={token}")).expect("ws with token");
        let msg = ws.read().expect("a snapshot");
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        assert_eq!(v["version"], 1);
        let metrics =
            parse_metrics(&http(host, "GET", "/metrics", &[("Authorization", &bearer)]).body);
        assert!(
            metric(
                &metrics,
                "xsktap_dashboard_unauthorized_requests_total",
                &[]
            ) >= 16.0
        );
    });
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_cross_site_page_is_refused_and_a_given_token_never_printed() {
    let bed = Testbed::new(1);
    let (capture, json) = start_serving(&bed, "dash-origin.json");
    let host = format!("127.0.0.1:{PORT}");
    in_ns(&bed.ns_b(), || {
        // What a page of another site open in a browser on this host sends.
        let evil = [("Origin", "http://evil.example")];
        assert_eq!(http(&host, "GET", "/api/summary", &evil).status, 403);
        let own = format!("http://{host}");
        assert_eq!(
            http(&host, "GET", "/api/summary", &[("Origin", &own)]).status,
            200
        );
        let upgrade = |origin: &str| {
            use tungstenite::client::IntoClientRequest;
            let mut req = format!("ws://{host}/ws").into_client_request().unwrap();
            req.headers_mut()
                .insert("Origin", origin.parse().expect("a header value"));
            tungstenite::connect(req)
        };
        let refused = upgrade("http://evil.example");
        assert!(
            matches!(&refused, Err(tungstenite::Error::Http(r)) if r.status() == 403),
            "cross-site WebSocket: {refused:?}"
        );
        let (mut ws, _) = upgrade(&own).expect("the page's own WebSocket");
        assert!(ws.read().is_ok());
        let m = parse_metrics(&http(&host, "GET", "/metrics", &[]).body);
        assert!(metric(&m, "xsktap_dashboard_forbidden_requests_total", &[]) >= 2.0);
    });
    stop_and_summarise(capture, &json);

    // A token the user gave is theirs: never printed; the scheme is case-insensitive.
    let token = "given-token-0123456789";
    let iface = bed.ns_b();
    let mut cmd = bed.xsktap(&["capture", "-i", &iface, "--serve", "198.18.0.2:9101", "-q"]);
    cmd.env("XSKTAP_SERVE_TOKEN", token)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut capture = Running::spawn(cmd);
    capture.wait_for_stderr("dashboard on", Duration::from_secs(20));
    assert!(!capture.stderr().contains(token), "{}", capture.stderr());
    in_ns(&bed.ns_b(), || {
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let auth = format!("{scheme} {token}");
            let reply = http(
                "198.18.0.2:9101",
                "GET",
                "/api/summary",
                &[("Authorization", &auth)],
            );
            assert_eq!(reply.status, 200, "{scheme}");
        }
    });
    capture.signal(libc::SIGINT);
    assert!(capture.wait(Duration::from_secs(20)).success());
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn served_on_the_captured_interface_it_stays_reachable_and_idle_clients_cannot_block_it() {
    let bed = Testbed::new(2);
    let json = temp_path("dash-captured-iface.json");
    // Every queue captured, the server on the captured interface's address.
    let capture = bed.start_capture(&[
        "--serve",
        "198.18.0.2:9100",
        "-q",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    capture.wait_for_stderr("dashboard on", Duration::from_secs(10));
    let stderr = capture.stderr();
    assert!(stderr.contains("passes to the host stack"), "{stderr}");
    let token = printed_token(&stderr);
    // The other side must resolve the address through the capture too.
    let flushed = Command::new("ip")
        .args(["-n", &bed.ns_a(), "neigh", "flush", "all"])
        .status()
        .unwrap();
    assert!(flushed.success());
    let host = "198.18.0.2:9100";
    let path = format!("/api/summary?token={token}");
    let idle: Vec<TcpStream> = in_ns(&bed.ns_a(), || {
        assert_eq!(
            http(host, "GET", &path, &[]).status,
            200,
            "reachable through the captured veth"
        );
        // 40 connections that never send a byte, from one peer.
        (0..40)
            .map(|_| TcpStream::connect(host).expect("connect"))
            .collect()
    });
    // Another peer is served at once meanwhile.
    in_ns(&bed.ns_b(), || {
        let started = Instant::now();
        assert_eq!(http(host, "GET", &path, &[]).status, 200);
        assert!(started.elapsed() < Duration::from_secs(2));
    });
    // Over the per-peer limit, connections are closed at once; the others
    // after the header timeout.
    std::thread::sleep(Duration::from_secs(7));
    let mut closed = 0;
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut byte = [0u8; 1];
        if matches!(std::io::Read::read(&mut c, &mut byte), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 40, "every idle connection was closed");
    in_ns(&bed.ns_a(), || {
        let reply = http(host, "GET", &format!("/metrics?token={token}"), &[]);
        let m = parse_metrics(&reply.body);
        let refused = metric(&m, "xsktap_dashboard_refused_connections_total", &[]);
        let idle = metric(&m, "xsktap_dashboard_idle_closed_connections_total", &[]);
        // 32 admitted and closed idle, the other 8 refused at once.
        assert!(refused >= 8.0, "{refused}");
        assert!(idle >= 32.0, "{idle}");
    });
    let s = stop_and_summarise(capture, &json);
    let passed: u64 = s.queues.iter().filter_map(|q| q.xdp_filtered_out).sum();
    assert!(passed > 0, "the server's own frames were left to the stack");
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_scan_shows_in_metrics_as_an_alert_started_and_on() {
    let bed = Testbed::new(1);
    let (capture, json) = start_serving(&bed, "dash-alerts.json");
    // 500 SYNs to as many ports from one source.
    let frames: Vec<Vec<u8>> = (1..=500)
        .map(|port| common::protocols::tcp4(40000, port, 0x02))
        .collect();
    bed.send(&frames);
    let host = format!("127.0.0.1:{PORT}");
    let samples = in_ns(&bed.ns_b(), || {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let samples = parse_metrics(&http(&host, "GET", "/metrics", &[]).body);
            let on = samples.iter().any(|(name, labels, v)| {
                name == "xsktap_alert_active"
                    && labels.get("kind").map(String::as_str) == Some("scan")
                    && *v == 1.0
            });
            if on {
                return samples;
            }
            assert!(Instant::now() < deadline, "no scan alert in /metrics");
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let value = |kind: &str| {
        samples
            .iter()
            .find(|(name, labels, _)| {
                name == "xsktap_alerts_total"
                    && labels.get("kind").map(String::as_str) == Some(kind)
            })
            .map(|s| s.2)
    };
    assert_eq!(value("scan"), Some(1.0));
    for kind in ["rate-spike", "traffic-stopped", "syn-flood", "new-talker"] {
        assert_eq!(value(kind), Some(0.0), "{kind}");
    }
    let active: Vec<&BTreeMap<String, String>> = samples
        .iter()
        .filter(|(name, _, _)| name == "xsktap_alert_active")
        .map(|(_, labels, _)| labels)
        .collect();
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0]["subject"], "src 198.18.0.1");
    stop_and_summarise(capture, &json);
}

const READ_ALERTS: &str = r##"!document.getElementById("status") ? JSON.stringify({status: "loading"}) : JSON.stringify({
  status: document.getElementById("status").textContent,
  scan_starts: [...document.querySelectorAll('#alerts-history tr[data-kind="scan"][data-state="start"] td')].map(td => td.textContent),
  history: document.querySelectorAll("#alerts-history tbody tr").length,
  limit_shown: !document.getElementById("limit-panel").hidden,
  limited: Number(document.getElementById("limit-what").dataset.value),
  limited_keys: [...document.querySelectorAll("#limited tbody tr")].map(tr => tr.dataset.key),
})"##;

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn the_page_shows_a_scan_in_its_alert_history_and_what_the_rate_limit_dropped() {
    require_root();
    let Some(chromium) = chromium() else { return };
    let bed = Testbed::new(1);
    // Per flow: each probe of the scan is a flow's first frame, so it passes;
    // the one-flow flood is held to 1,000 frames a second.
    let (capture, json) = start_serving_with(
        &bed,
        "dash-alert-limit.json",
        &[
            "--alert-scan-secs",
            "2",
            "--limit-pps",
            "1000",
            "--limit-by",
            "flow",
        ],
    );
    let url = format!("http://127.0.0.1:{PORT}/");
    let _browser = Browser::open(&chromium, &bed, &url, "chromium-alert-profile");
    let scan: Vec<Vec<u8>> = (1..=500)
        .map(|port| common::protocols::tcp4(40000, port, 0x02))
        .collect();
    let flood: Vec<Vec<u8>> = (0..5000u32)
        .map(|i| {
            let mut f = Vec::new();
            etherparse::PacketBuilder::ethernet2(
                xsktap_bench::frames::MAC_A,
                xsktap_bench::frames::MAC_B,
            )
            .ipv4(xsktap_bench::frames::IP_A, xsktap_bench::frames::IP_B, 64)
            .udp(40000, 9)
            .write(&mut f, &i.to_be_bytes())
            .unwrap();
            f
        })
        .collect();
    let dom = in_ns(&bed.ns_b(), || {
        let mut devtools = Devtools::attach(9222, &url);
        let deadline = Instant::now() + Duration::from_secs(20);
        while devtools.eval(READ_ALERTS)["status"] != "live" {
            assert!(Instant::now() < deadline, "the page never connected");
            std::thread::sleep(Duration::from_millis(100));
        }
        bed.send(&scan);
        bed.send(&flood);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let dom = devtools.eval(READ_ALERTS);
            if dom["scan_starts"].as_array().is_some_and(|a| !a.is_empty()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no scan in the page's history: {dom}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        // Two updates after the last frame: the counts are final.
        std::thread::sleep(Duration::from_millis(2500));
        let metrics =
            parse_metrics(&http(&format!("127.0.0.1:{PORT}"), "GET", "/metrics", &[]).body);
        (devtools.eval(READ_ALERTS), metrics)
    });
    let (dom, metrics) = dom;
    let metric = |name: &str, key: Option<&str>| -> f64 {
        metrics
            .iter()
            .filter(|(n, labels, _)| {
                n == name && key.is_none_or(|k| labels.get("key").map(String::as_str) == Some(k))
            })
            .map(|s| s.2)
            .sum()
    };
    let summary = stop_and_summarise(capture, &json);
    let starts: Vec<&str> = dom["scan_starts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(starts.contains(&"src 198.18.0.1"), "{dom}");
    let limit = summary.limit.expect("the summary has the limit");
    assert_eq!(dom["limit_shown"], true, "{dom}");
    assert!(limit.limited > 4000, "{limit:?}");
    assert_eq!(dom["limited"].as_u64(), Some(limit.limited), "{dom}");
    assert_eq!(
        dom["limited_keys"][0].as_str(),
        Some("flow udp 198.18.0.1:40000 > 198.18.0.2:9"),
        "{dom}"
    );
    // /metrics says the same, per queue and per key.
    let flow = "flow udp 198.18.0.1:40000 > 198.18.0.2:9";
    assert_eq!(
        metric("xsktap_limited_packets_total", None),
        limit.limited as f64
    );
    assert_eq!(
        metric("xsktap_limited_key_packets_total", Some(flow)),
        limit.limited as f64
    );
    // The scan's 500 probes all arrived.
    assert_eq!(summary.traffic.protocols["tcp"].packets, 500);
}
