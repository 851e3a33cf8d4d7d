//! The `xsktap` binary: a thin shell over the engine.

mod alerting;
mod exporting;
mod flags;
mod report;
mod serve;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use xsktap::{Capture, Finish, Output};
use xsktap_core::filter::flags::server_traffic;
use xsktap_core::filter::Expr;

use flags::{Cli, Command, Request};

/// Writes a line to stderr, never panicking: a reader of stderr that went
/// away (`2>&1 | head -2`) must not end the capture (`eprintln!` panics).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stderr(), $($arg)*);
    }};
}

/// What is shown while the capture runs.
enum View {
    /// A statistics line on stderr once a second (unless --quiet).
    Live,
    /// The top screen or JSON snapshots on stdout.
    Top {
        interval: Duration,
        rows: usize,
        json: bool,
    },
    /// Feed events on stdout, one line (or JSON object) each.
    Feed { json: bool },
}

/// The exit status of a usage error (a flag's value or the filter), as
/// clap's own; every other failure exits 1.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line, as every other refusal: clap's first line, which
            // names the flag and the value, with the indented lines under it
            // (the arguments a flag requires), plus where to read more.
            let text = e.render().to_string();
            let mut lines = text.lines();
            let first = lines.next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            let listed: Vec<&str> = lines
                .take_while(|l| l.starts_with("  "))
                .map(str::trim)
                .collect();
            let first = match listed.is_empty() {
                true => first.to_string(),
                false => format!("{first} {}", listed.join(", ")),
            };
            say!("xsktap: {first} (see xsktap --help)");
            return ExitCode::from(USAGE);
        }
    };
    xsktap::bpflog::init(cli.verbose);
    if let Command::Features(args) = &cli.command {
        return features(args);
    }
    let request = match cli.command {
        Command::Capture(args) => args.into_request().map(|r| (r, View::Live)),
        Command::Monitor(args) => args.into_request().map(|r| (r, View::Live)),
        Command::Features(_) => unreachable!("handled above"),
        Command::Feed(args) => args
            .into_request()
            .map(|(r, json)| (r, View::Feed { json })),
        Command::Top(args) => args.into_request().map(|(r, interval, rows, json)| {
            (
                r,
                View::Top {
                    interval,
                    rows,
                    json,
                },
            )
        }),
    };
    let (req, view) = match request {
        Ok(r) => r,
        Err(e) => {
            say!("xsktap: {e:#}");
            return ExitCode::from(USAGE);
        }
    };
    match run(req, view) {
        Ok(code) => code,
        Err(e) => {
            say!("xsktap: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `xsktap features`.
fn features(args: &flags::FeaturesArgs) -> ExitCode {
    match xsktap::features::probe(args.iface.as_deref()) {
        Ok(f) => {
            let text = if args.json {
                serde_json::to_string_pretty(&f).expect("JSON values serialise") + "\n"
            } else {
                xsktap_core::features::text(&f)
            };
            match write_stdout(&text) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
        Err(e) => {
            say!("xsktap: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `text` to standard output and flushes it; an error means the
/// reader left.
fn write_stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

fn no_napi_warning(iface: &str) -> String {
    format!(
        "xsktap: warning: --busy-poll: the kernel gives {iface}'s AF_XDP sockets no NAPI to poll (SO_INCOMING_NAPI_ID is 0, as for veth): the workers spin on their rings without sleeping, but the receive work stays where the kernel runs it"
    )
}

/// A dashboard served on an address of the captured interface must still
/// get its own traffic: TCP to its port and the address resolution for its
/// address pass to the host stack before the user's filter. Returns the note
/// that says so.
fn leave_server_traffic(req: &mut Request) -> Option<String> {
    let addr = req.serve.as_ref()?.addr;
    if addr.ip().is_loopback() {
        return None;
    }
    let addrs = if addr.ip().is_unspecified() {
        xsktap::interface_addresses(&req.config.iface)
    } else {
        vec![addr.ip()]
    };
    let own = server_traffic(addr.port(), &addrs);
    req.config.filter = Expr::and(Some(Expr::Not(Box::new(own))), req.config.filter.take());
    let at = match addrs.is_empty() {
        true => String::new(),
        false => {
            let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
            format!(" at {}, and address resolution for it", list.join(", "))
        }
    };
    Some(format!(
        "the dashboard's own traffic (TCP to port {}{at}) passes to the host stack uncaptured (counted in xdp_filtered_out)",
        addr.port()
    ))
}

/// `-r FILE`: the file read back through the same filter, statistics and
/// outputs, then the summary (and, for `top`, one view of the whole file).
fn run_replay(
    mut req: Request,
    view: View,
    input: std::path::PathBuf,
    output_name: &str,
) -> anyhow::Result<ExitCode> {
    // An export takes the file's flow records as the reading goes (the
    // reader waits for it rather than dropping), then one statistics row,
    // the events and the feeds' latency.
    let export_names = export_names(&req);
    let exporter = match req.export.take() {
        Some(cfg) => {
            let prepared = xsktap::export::Prepared::check(cfg)?;
            if let Some(w) = prepared.warning() {
                say!("xsktap: warning: {w}");
            }
            req.config.flow_export = Some(prepared.flow_export());
            Some(prepared.start()?)
        }
        None => None,
    };
    let replay = xsktap::replay(&req.config, &input, req.output.clone())?;
    for notice in &replay.notices {
        say!("xsktap: {notice}");
    }
    let summary = &replay.summary;
    let exporting = exporter.map(|exporter| {
        if let Some((clickhouse, ipfix)) = &export_names {
            say!(
                "xsktap: {}",
                report::export_line(&req.config, clickhouse.as_deref(), ipfix.as_deref())
            );
        }
        exporting::Exporting::new(exporter, &[0], &req.config.iface, &req.filter_text)
    });
    if let View::Top { rows, json, .. } = view {
        let snap = &summary.snapshot;
        let secs = replay.span_ns as f64 / 1e9;
        let rates = xsktap_core::stats::Rates {
            packets_per_sec: if secs > 0.0 {
                snap.received() as f64 / secs
            } else {
                0.0
            },
            bits_per_sec: if secs > 0.0 {
                snap.received_bytes() as f64 * 8.0 / secs
            } else {
                0.0
            },
            lost_per_sec: 0.0,
        };
        let mut top = summary.top.clone();
        top.flows_by_bytes.truncate(rows);
        top.flows_by_packets.truncate(rows);
        top.talkers.truncate(rows);
        let span = Duration::from_nanos(replay.span_ns);
        let text = if json {
            serde_json::to_string(&report::top_json(snap, &rates, &top, None, span))
                .expect("serialises")
                + "\n"
        } else {
            report::top_screen(&req.config.iface, snap, &rates, &top, None, false)
        };
        let _ = io::stdout().write_all(text.as_bytes());
    }
    let feed_summary = match (&replay.feeds, &view) {
        (Some(feeds), View::Feed { json }) => {
            feeds.tick(u64::MAX);
            let _ = report::print_feed_events(feeds, *json, exporting.as_ref());
            Some(xsktap_core::feed::report::summary(feeds))
        }
        _ => None,
    };
    let export_report = exporting.map(|e| {
        e.finish(
            summary,
            &req.config.iface,
            replay.feeds.as_deref(),
            feed_summary.as_deref().unwrap_or(&[]),
        )
    });
    let input_name = input.display().to_string();
    let _ =
        io::stderr().write_all(report::replay_text(&replay, &input_name, output_name).as_bytes());
    if let (Some(r), Some((clickhouse, ipfix))) = (&export_report, &export_names) {
        let text = exporting::report_text(r, clickhouse.as_deref(), ipfix.as_deref());
        let _ = io::stderr().write_all(text.as_bytes());
    }
    if let Some(feeds) = &feed_summary {
        let _ = io::stderr().write_all(report::feeds_text(feeds).as_bytes());
    }
    if let Some(path) = &req.summary_json {
        let mut json = report::summary_json(summary, &input_name, output_name, &req.filter_text);
        json.xdp_mode = "none (read from a file)".into();
        json.feeds = feed_summary.unwrap_or_default();
        json.export = export_report;
        let text = serde_json::to_string_pretty(&json).expect("JSON values serialise");
        std::fs::write(path, text + "\n")
            .with_context(|| format!("writing --summary-json {}", path.display()))?;
    }
    if let Some(e) = summary.writer.as_ref().and_then(|w| w.error.as_ref()) {
        anyhow::bail!("writing {output_name}: {e}");
    }
    if let Some(damage) = &replay.damage {
        anyhow::bail!("{damage}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Where an export goes, as its start line and summary name it: the
/// ClickHouse endpoint and the IPFIX collector.
fn export_names(req: &Request) -> Option<(Option<String>, Option<String>)> {
    req.export.as_ref().map(|e| {
        (
            e.clickhouse.as_ref().map(|c| c.endpoint.clone()),
            e.ipfix.map(|a| a.to_string()),
        )
    })
}

/// Where frames go, as the summary names it.
fn output_name(req: &Request) -> String {
    match &req.output {
        Output::None if req.config.monitor.is_some() => {
            "standard output (monitor lines)".to_string()
        }
        Output::None => "nowhere (no -w given: counted only)".to_string(),
        Output::Stdout => "standard output".to_string(),
        Output::File(p) => p.display().to_string(),
        Output::Rotating(p, _) => format!("files named after {}", p.display()),
    }
}

/// With `-Z USER`, the files made after the switch (the rotation's next
/// files, the summary) must be USER's to create: tried at start, before
/// anything is attached, rather than failing at the first rotation.
fn check_user_can_write(req: &Request) -> anyhow::Result<()> {
    let Some(user) = &req.user else {
        return Ok(());
    };
    let mut later = Vec::new();
    if let xsktap::Output::Rotating(path, _) = &req.output {
        later.push(("-w", path));
    }
    if let Some(path) = &req.summary_json {
        later.push(("--summary-json", path));
    }
    for (flag, path) in later {
        let dir = xsktap_core::rotation::directory_of(path);
        if let Err(e) = user.can_create_in(dir) {
            anyhow::bail!(
                "-Z {}: {flag} {}: {} cannot create files in {} ({e}); give a directory it may write, or another -Z user",
                user.name,
                path.display(),
                user.name,
                dir.display()
            );
        }
    }
    Ok(())
}

fn run(req: Request, view: View) -> anyhow::Result<ExitCode> {
    let output_name = output_name(&req);
    for note in &req.notes {
        say!("xsktap: {note}");
    }
    if let Some(input) = req.read.clone() {
        return run_replay(req, view, input, &output_name);
    }
    let stop = Arc::new(AtomicBool::new(false));
    // SIGUSR1 prints the summary so far, as tcpdump prints its counts.
    let usr1 = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, usr1.clone())
        .context("installing signal handlers")?;
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal stops the capture (bounded: see Capture::stop);
        // a second one ends the process at once (the kernel detaches the
        // program with the link's file descriptor).
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, stop.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    let iface = req.config.iface.clone();
    check_user_can_write(&req)?;
    // Listen before attaching anything: a busy port fails with the machine untouched.
    let listener = req.serve.as_ref().map(serve::bind).transpose()?;
    let mut req = req;
    if let Some(note) = leave_server_traffic(&mut req) {
        say!("xsktap: {note}");
    }
    // The export's server is reached (and its tables made) before anything is attached.
    let export_names = export_names(&req);
    let prepared = req
        .export
        .take()
        .map(xsktap::export::Prepared::check)
        .transpose()?;
    if let Some(w) = prepared.as_ref().and_then(|p| p.warning()) {
        say!("xsktap: warning: {w}");
    }
    req.config.flow_export = prepared.as_ref().map(|p| p.flow_export());
    let capture = Capture::start(&req.config, req.output.clone())?;
    for warning in capture.warnings() {
        say!("xsktap: warning: {warning}");
    }
    say!("{}", report::start_line(&capture, &iface, &req.filter_text));
    if let Some(reason) = capture.placement_reason() {
        say!("xsktap: placement: {reason} (--cores chooses instead)");
    }
    if let Some(limit) = &req.config.rate_limit {
        say!("xsktap: {}", report::limit_line(limit, &iface));
    }
    if !capture.joined().is_empty() {
        let groups: Vec<String> = capture.joined().iter().map(|g| g.to_string()).collect();
        say!(
            "xsktap: joined {} on {iface} for the capture's life (the kernel answers IGMP/MLD queries)",
            groups.join(", ")
        );
    }
    if !capture.services().is_empty() {
        say!(
            "xsktap: publishing over iceoryx2 as {}",
            capture.services().join(", ")
        );
    }
    if let Some(user) = &req.user {
        // Attached, sockets bound, first file open: nothing privileged is left to do.
        user.switch_to()?;
        say!(
            "xsktap: running as {} (uid {}, gid {}) with no capabilities",
            user.name,
            user.uid,
            user.gid
        );
    }
    // This thread reports (and builds the dashboard's updates): keep it off the workers' CPUs.
    let housekeeping = capture.housekeeping_cpus();
    if !housekeeping.is_empty() {
        let _ = xsktap::pin_current_thread(&housekeeping);
    }
    // Started here, after this thread left the workers' CPUs: its threads inherit that.
    let mut exporting = match prepared {
        Some(p) => {
            let exporter = p.start()?;
            if let Some((clickhouse, ipfix)) = &export_names {
                say!(
                    "xsktap: {}",
                    report::export_line(&req.config, clickhouse.as_deref(), ipfix.as_deref())
                );
            }
            let queues: Vec<u32> = capture.snapshot().queues.iter().map(|q| q.queue).collect();
            Some(exporting::Exporting::new(
                exporter,
                &queues,
                &iface,
                &req.filter_text,
            ))
        }
        None => None,
    };
    let mut serving = match (&req.serve, listener) {
        (Some(cfg), Some(listener)) => {
            let bound = listener.local_addr()?;
            let mut publisher =
                serve::publisher::Publisher::new(&capture, &iface, &output_name, &req.filter_text);
            let first = publisher.update(&capture, None, None, exporting.as_ref());
            let server = serve::Server::start(listener, cfg, housekeeping, first)?;
            if let Err(why) = &server.pinned {
                say!(
                    "xsktap: warning: the dashboard server shares the workers' CPUs ({why}); leave a CPU out of --cores to keep it off them"
                );
            }
            say!("xsktap: dashboard on {}", cfg.url(bound));
            if cfg.token_generated {
                say!(
                    "xsktap: {} is not a loopback address: every request needs the token above (Authorization: Bearer TOKEN or ?token=TOKEN)",
                    cfg.addr.ip()
                );
            }
            Some((server, publisher))
        }
        _ => None,
    };
    let mut next_publish = Instant::now() + Duration::from_secs(1);
    let mut napi_warned = false;

    let started = Instant::now();
    let mut last = capture.snapshot();
    let tick = match &view {
        View::Top { interval, .. } => *interval,
        View::Live | View::Feed { .. } => Duration::from_secs(1),
    };
    let mut next_report = started + tick;
    // The anomaly detectors, fed once a second from the workers' counters
    // and flow tables (see xsktap_core::alerts); not for a file read back.
    // Made here, after this thread left the workers' CPUs: --alert-exec's
    // thread inherits that.
    let mut alerting = req
        .alerts
        .filter(|_| req.read.is_none())
        .map(|cfg| alerting::Alerting::new(cfg, req.alert_exec.clone()))
        .transpose()?;
    let monitor_json = matches!(
        req.config.monitor,
        Some(xsktap_core::monitor::MonitorFormat::Json)
    );
    let mut next_watch = started + Duration::from_secs(1);
    let mut next_gone_check = started;
    let tty = io::stdout().is_terminal();
    let mut stdout_closed = false;
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
        if Instant::now() >= next_gone_check {
            next_gone_check += Duration::from_millis(500);
            if capture.interface_gone() {
                break Some(Finish::InterfaceGone);
            }
            if capture.interface_down() {
                break Some(Finish::InterfaceDown);
            }
        }
        for notice in capture.notices() {
            say!("xsktap: {notice}");
        }
        if let (Some(feeds), View::Feed { json }) = (capture.feeds(), &view) {
            // A/B gaps are declared once their window passes, even when quiet.
            feeds.tick(wall_ns());
            if report::print_feed_events(feeds, *json, exporting.as_ref()).is_err() {
                stdout_closed = true;
                break None;
            }
        }
        if usr1.swap(false, Ordering::Relaxed) {
            let text = report::summary_text(&capture.progress(), &iface, &output_name);
            let _ = io::stderr().write_all(text.as_bytes());
        }
        if !napi_warned && capture.busy_poll_without_napi() {
            napi_warned = true;
            say!("{}", no_napi_warning(&iface));
        }
        if let Some((server, publisher)) = &mut serving {
            if Instant::now() >= next_publish {
                next_publish += Duration::from_secs(1);
                server.publish(publisher.update(
                    &capture,
                    Some(server.stats()),
                    alerting.as_ref(),
                    exporting.as_ref(),
                ));
            }
        }
        if let Some(a) = alerting.as_mut().filter(|_| Instant::now() >= next_watch) {
            next_watch += Duration::from_secs(1);
            // Events go where the command's JSON goes: top's and feed's
            // stdout (written by this thread), the monitor's stream (between
            // its writer's lines).
            let mut json = String::new();
            for raised in a.step(&capture, started.elapsed(), wall_ns()) {
                say!("{}", report::alert_line(&raised.event));
                let line = raised.json.to_string();
                if let Some(e) = &exporting {
                    e.alert(&raised.event, &line);
                }
                match &view {
                    View::Top { json: true, .. } | View::Feed { json: true } => {
                        json += &line;
                        json.push('\n');
                    }
                    View::Live if monitor_json && !capture.monitor_note(&line) => {
                        say!("xsktap: the monitor's output is full: the alert above is not in it");
                    }
                    _ => {}
                }
            }
            if !json.is_empty() && write_stdout(&json).is_err() {
                stdout_closed = true;
                break None;
            }
        }
        if let Some(e) = exporting.as_mut() {
            e.tick(&capture);
        }
        if Instant::now() < next_report {
            continue;
        }
        next_report += tick;
        let now = capture.snapshot();
        let rates = now.rates_since(&last);
        match &view {
            View::Live if !req.quiet => say!("{}", report::live_line(&now, &rates)),
            View::Live | View::Feed { .. } => {}
            View::Top { rows, json, .. } => {
                let top = capture.top(*rows);
                let limit = req.config.rate_limit.map(|l| {
                    xsktap_core::summary::LimitJson::new(
                        &l,
                        now.limited(),
                        capture.limited(*rows).as_deref(),
                    )
                });
                let text = if *json {
                    let snapshot = report::top_json(&now, &rates, &top, limit, started.elapsed());
                    serde_json::to_string(&snapshot).expect("the snapshot serialises") + "\n"
                } else {
                    report::top_screen(&iface, &now, &rates, &top, limit.as_ref(), tty)
                };
                if write_stdout(&text).is_err() {
                    // `xsktap top --json | head -3`: the reader left.
                    stdout_closed = true;
                    break None;
                }
            }
        }
        last = now;
    };

    if !napi_warned && capture.busy_poll_without_napi() {
        say!("{}", no_napi_warning(&iface));
    }
    let notices = capture.notices_handle();
    let feeds = capture.feeds().cloned();
    let stamping = report::stamping_json(capture.timestamps());
    let summary = capture.stop();
    if let Some(said) = alerting.and_then(|a| a.finish(Duration::from_secs(5))) {
        say!("xsktap: {said}");
    }
    if let (Some(feeds), View::Feed { json }) = (&feeds, &view) {
        // At the end, what no line brought is missing: every pending gap is declared.
        feeds.tick(u64::MAX);
        if !stdout_closed || exporting.is_some() {
            let _ = report::print_feed_events(feeds, *json, exporting.as_ref());
        }
    }
    for notice in notices.take() {
        say!("xsktap: {notice}");
    }
    if finish == Some(Finish::FilesDone) {
        say!("xsktap: -W: the last of the files is written");
    }
    let feed_summary = feeds.as_deref().map(xsktap_core::feed::report::summary);
    let export_report = exporting.map(|e| {
        e.finish(
            &summary,
            &iface,
            feeds.as_deref(),
            feed_summary.as_deref().unwrap_or(&[]),
        )
    });
    let _ = io::stderr().write_all(report::summary_text(&summary, &iface, &output_name).as_bytes());
    if let (Some(r), Some((clickhouse, ipfix))) = (&export_report, &export_names) {
        let text = exporting::report_text(r, clickhouse.as_deref(), ipfix.as_deref());
        let _ = io::stderr().write_all(text.as_bytes());
    }
    if let Some(feeds) = &feed_summary {
        let _ = io::stderr().write_all(report::feeds_text(feeds).as_bytes());
    }
    if let Some(path) = &req.summary_json {
        let mut json = report::summary_json(&summary, &iface, &output_name, &req.filter_text);
        json.feeds = feed_summary.unwrap_or_default();
        json.export = export_report;
        json.stamping = Some(stamping);
        let text = serde_json::to_string_pretty(&json).expect("JSON values serialise");
        std::fs::write(path, text + "\n")
            .with_context(|| format!("writing --summary-json {}", path.display()))?;
    }
    if matches!(finish, Some(Finish::InterfaceGone | Finish::InterfaceDown)) {
        let kept = match &req.output {
            Output::None => String::new(),
            _ => format!(
                "; {output_name} holds the {} frames captured before",
                summary.snapshot.written()
            ),
        };
        let what = match finish {
            Some(Finish::InterfaceDown) => {
                "went down during the capture (ip link set it up, then capture again)"
            }
            _ => "disappeared during the capture (deleted or moved)",
        };
        anyhow::bail!("interface {iface} {what}{kept}");
    }
    if let Some(e) = summary.worker_errors.first() {
        anyhow::bail!("{e}");
    }
    // A rotating output failed in its newest file.
    let failed_file = summary
        .writer
        .as_ref()
        .and_then(|w| w.files.as_ref())
        .and_then(|f| f.files.last())
        .map(|f| f.path.display().to_string());
    for (writer, name) in [
        (
            &summary.writer,
            failed_file.as_deref().unwrap_or(output_name.as_str()),
        ),
        (&summary.monitor_writer, "standard output"),
    ] {
        if let Some(writer) = writer {
            if let Some(e) = &writer.error {
                // `xsktap capture -w - | tcpdump -r - -c 10`: the reader leaving is a normal end.
                if !writer.reader_closed() {
                    let unwritten: u64 = summary
                        .snapshot
                        .queues
                        .iter()
                        .map(|q| q.sink_closed_drops)
                        .sum();
                    return Err(io::Error::new(e.kind(), e.to_string())).with_context(|| {
                        format!("writing {name} ({unwritten} frames not written, counted as lost)")
                    });
                }
            }
        }
    }
    if finish == Some(Finish::WorkerFailed) && !stdout_closed {
        anyhow::bail!("a worker stopped unexpectedly");
    }
    Ok(ExitCode::SUCCESS)
}

/// Wall-clock time now, in ns since the epoch (the clock feed events use).
fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
