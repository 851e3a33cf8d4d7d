//! Subscribes to a feed `xsktap feed --publish` publishes, counts its
//! messages by ITCH message type (the first byte), follows the notices, and
//! prints one JSON summary line when the session ends (or on Ctrl-C, or
//! after `--seconds`).
//!
//! ```sh
//! sudo xsktap feed -i eth1 --ab itch=233.54.12.1:26400,233.54.13.1:26400 --publish
//! sudo cargo run --release -p xsktap-consumer --example feed_consumer -- itch
//! ```
//!
//! Options: `--reliable` (the largest buffer the tap offers instead of a
//! lossy one), `--spin` (poll without sleeping: lowest latency, one CPU
//! busy), `--seconds N` (stop after N seconds), `--stall-after N --stall-ms M`
//! (stop reading for M ms after N samples: to see what a stalled reader
//! loses), `--quiet` (no notice lines on stderr), `--trace` (a line per
//! sample on stderr).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use xsktap_consumer::{now_ns, Delivery, FeedSubscriber, Item, Kind};

struct Options {
    feed: String,
    delivery: Delivery,
    spin: bool,
    seconds: Option<u64>,
    stall: Option<(u64, u64)>,
    quiet: bool,
    trace: bool,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        feed: String::new(),
        delivery: Delivery::Lossy,
        spin: false,
        seconds: None,
        stall: None,
        quiet: false,
        trace: false,
    };
    let number = |v: Option<String>, flag: &str| -> Result<u64, String> {
        v.and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a whole number"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reliable" => o.delivery = Delivery::Reliable,
            "--spin" => o.spin = true,
            "--quiet" => o.quiet = true,
            "--trace" => o.trace = true,
            "--seconds" => o.seconds = Some(number(args.next(), "--seconds")?),
            "--stall-after" => {
                let n = number(args.next(), "--stall-after")?;
                o.stall = Some((n, o.stall.map_or(10_000, |s| s.1)));
            }
            "--stall-ms" => {
                let ms = number(args.next(), "--stall-ms")?;
                o.stall = Some((o.stall.map_or(0, |s| s.0), ms));
            }
            f if f.starts_with("--") => return Err(format!("unknown option {f}")),
            name if o.feed.is_empty() => o.feed = name.to_string(),
            extra => return Err(format!("one feed name only ({extra}?)")),
        }
    }
    if o.feed.is_empty() {
        return Err("usage: feed_consumer FEED [--reliable] [--spin] [--seconds N] [--stall-after N --stall-ms M] [--quiet]".into());
    }
    Ok(o)
}

fn quantiles(h: &Histogram<u64>) -> String {
    let q = |p: f64| {
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(p)
        }
    };
    format!(
        r#"{{"count":{},"p50_ns":{},"p99_ns":{},"max_ns":{}}}"#,
        h.len(),
        q(0.5),
        q(0.99),
        if h.is_empty() { 0 } else { h.max() }
    )
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("feed_consumer: {e}");
            std::process::exit(2);
        }
    };
    // iceoryx2's own notes (such as "no config file was loaded") only when
    // IOX2_LOG_LEVEL asks for them.
    iceoryx2::prelude::set_log_level_from_env_or(iceoryx2::prelude::LogLevel::Error);
    let mut feed = match FeedSubscriber::open(&o.feed, o.delivery) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("feed_consumer: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "feed_consumer: subscribed to xsktap/feed/{} (buffer {} samples)",
        o.feed,
        feed.buffer_size()
    );
    let histogram = || Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let (mut rx_to_here, mut publish_to_here) = (histogram(), histogram());
    let mut by_type: BTreeMap<char, u64> = BTreeMap::new();
    let (mut messages, mut samples, mut late, mut unannounced) = (0u64, 0u64, 0u64, 0u64);
    let (mut gaps, mut recovered, mut markers) = (Vec::new(), 0u64, 0u64);
    // The next message expected, from the stream and its gap notices.
    let mut next: Option<u64> = None;
    let mut ended = false;
    let started = Instant::now();
    let mut idle = 0u32;
    loop {
        let item = match feed.receive() {
            Ok(item) => item,
            Err(e) => {
                eprintln!("feed_consumer: {e}");
                std::process::exit(1);
            }
        };
        let Some(item) = item else {
            if o.seconds
                .is_some_and(|s| started.elapsed() >= Duration::from_secs(s))
            {
                break;
            }
            idle += 1;
            let pause = if o.spin {
                Duration::ZERO
            } else {
                Duration::from_micros(50)
            };
            if (!o.spin || idle.is_multiple_of(4096)) && !feed.keep_running(pause) {
                break;
            }
            continue;
        };
        idle = 0;
        let sample = match item {
            Item::Missed(n) => {
                markers += 1;
                // The messages lost with them are no jump of the stream's.
                next = None;
                if !o.quiet {
                    eprintln!("feed_consumer: missed {n} samples here (fell behind)");
                }
                continue;
            }
            Item::Sample(s) => s,
        };
        samples += 1;
        let now = now_ns();
        let h = *sample.user_header();
        if o.trace {
            eprintln!(
                "feed_consumer: {:?} seq {} to {} line {} rx {} publish +{} ns here +{} ns",
                h.kind(),
                h.seq,
                h.to,
                h.line,
                h.rx_ns,
                h.publish_ns.saturating_sub(h.rx_ns),
                now.saturating_sub(h.publish_ns)
            );
        }
        match h.kind() {
            Some(Kind::Message) => {
                for (seq, bytes) in (h.seq..).zip(xsktap_consumer::messages(sample.payload())) {
                    messages += 1;
                    *by_type
                        .entry(bytes.first().map_or('?', |&b| b as char))
                        .or_default() += 1;
                    match next {
                        Some(n) if seq < n => late += 1,
                        Some(n) if seq > n => unannounced += 1,
                        _ => {}
                    }
                    next = Some(next.map_or(seq + 1, |n| n.max(seq + 1)));
                }
                let n = h.to - h.seq + 1;
                let _ = rx_to_here.record_n(now.saturating_sub(h.rx_ns).max(1), n);
                let _ = publish_to_here.record_n(now.saturating_sub(h.publish_ns).max(1), n);
            }
            Some(Kind::Gap) => {
                gaps.push((h.seq, h.to));
                next = Some(next.map_or(h.to + 1, |n| n.max(h.to + 1)));
                if !o.quiet {
                    eprintln!(
                        "feed_consumer: gap {} to {} in session {}",
                        h.seq,
                        h.to,
                        h.session()
                    );
                }
            }
            Some(Kind::Recovered) => recovered += h.to - h.seq + 1,
            Some(Kind::SessionStart) => next = Some(h.seq),
            Some(Kind::SessionEnd) => ended = true,
            Some(Kind::LineSilent | Kind::LineBack) | None => {
                if !o.quiet {
                    eprintln!("feed_consumer: notice {} on line {}", h.kind, h.line);
                }
            }
        }
        drop(sample);
        if let Some((after, ms)) = o.stall {
            if samples == after {
                std::thread::sleep(Duration::from_millis(ms));
            }
        }
        if ended {
            break;
        }
    }
    let types: Vec<String> = by_type
        .iter()
        .map(|(t, n)| format!(r#""{t}":{n}"#))
        .collect();
    let gaps: Vec<String> = gaps.iter().map(|(a, b)| format!("[{a},{b}]")).collect();
    println!(
        r#"{{"feed":"{}","buffer":{},"samples":{samples},"messages":{messages},"by_type":{{{}}},"gaps":[{}],"recovered":{recovered},"late":{late},"unannounced_jumps":{unannounced},"missed_samples":{},"missed_markers":{markers},"session_end":{ended},"rx_to_consumer":{},"publish_to_consumer":{}}}"#,
        o.feed,
        feed.buffer_size(),
        types.join(","),
        gaps.join(","),
        feed.missed(),
        quantiles(&rx_to_here),
        quantiles(&publish_to_here),
    );
}
