//! What `xsktap feed` shows: one line (or JSON object) per event, and the
//! per-feed, per-session summary (`feeds` in `--summary-json`).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::sequence::{Event, Origin, Sequencer, SessionStats};
use super::tap::Feeds;
use super::{LineStats, Malformed, Session};

/// How a line is named: `A`, `B`, or `line` for a single-line feed.
fn line_name(origin: Origin, ab: bool) -> &'static str {
    match origin {
        Origin::Retransmission => "retransmission",
        Origin::Line(0) if ab => "A",
        Origin::Line(_) if ab => "B",
        Origin::Line(_) => "line",
    }
}

/// An event as one JSON object, `feed` named.
pub fn event_json(feed: &str, ab: bool, event: &Event) -> String {
    let feed = serde_json_string(feed);
    match *event {
        Event::Gap(g) => format!(
            r#"{{"event":"gap","feed":{feed},"session":"{}","from":{},"to":{},"missing":{},"ts_ns":{}}}"#,
            g.session,
            g.from,
            g.to,
            g.missing(),
            g.opened_ns
        ),
        Event::Recovered {
            session,
            from,
            to,
            open_ns,
            origin,
            ts_ns,
        } => format!(
            r#"{{"event":"recovered","feed":{feed},"session":"{session}","from":{from},"to":{to},"messages":{},"by":"{}","open_ns":{open_ns},"ts_ns":{ts_ns}}}"#,
            to - from + 1,
            line_name(origin, ab)
        ),
        Event::SessionStart {
            session,
            seq,
            ts_ns,
        } => format!(
            r#"{{"event":"session_start","feed":{feed},"session":"{session}","seq":{seq},"ts_ns":{ts_ns}}}"#
        ),
        Event::SessionEnd {
            session,
            next,
            ts_ns,
        } => format!(
            r#"{{"event":"session_end","feed":{feed},"session":"{session}","next":{next},"ts_ns":{ts_ns}}}"#
        ),
        Event::LineSilent {
            line,
            since_ns,
            ts_ns,
        } => format!(
            r#"{{"event":"line_silent","feed":{feed},"line":"{}","since_ns":{since_ns},"ts_ns":{ts_ns}}}"#,
            line_name(Origin::Line(line), ab)
        ),
        Event::LineBack {
            line,
            silent_ns,
            ts_ns,
        } => format!(
            r#"{{"event":"line_back","feed":{feed},"line":"{}","silent_ns":{silent_ns},"ts_ns":{ts_ns}}}"#,
            line_name(Origin::Line(line), ab)
        ),
    }
}

/// An event as one line of text.
pub fn event_text(feed: &str, ab: bool, event: &Event) -> String {
    let mut s = String::new();
    let _ = match *event {
        Event::Gap(g) => write!(
            s,
            "gap {feed} session {}: {} missing, {} to {}",
            g.session,
            g.missing(),
            g.from,
            g.to
        ),
        Event::Recovered {
            session,
            from,
            to,
            open_ns,
            origin,
            ..
        } => write!(
            s,
            "recovered {feed} session {session}: {} to {} by {} after {:.3} ms",
            from,
            to,
            line_name(origin, ab),
            open_ns as f64 / 1e6
        ),
        Event::SessionStart { session, seq, .. } => {
            write!(s, "session start {feed} session {session} at {seq}")
        }
        Event::SessionEnd { session, next, .. } => {
            write!(s, "session end {feed} session {session} at {next}")
        }
        Event::LineSilent {
            line,
            since_ns,
            ts_ns,
        } => write!(
            s,
            "line silent {feed} {}: no packet for {:.3} s",
            line_name(Origin::Line(line), ab),
            ts_ns.saturating_sub(since_ns) as f64 / 1e9
        ),
        Event::LineBack {
            line, silent_ns, ..
        } => write!(
            s,
            "line back {feed} {} after {:.3} s",
            line_name(Origin::Line(line), ab),
            silent_ns as f64 / 1e9
        ),
    };
    s
}

/// A string as a JSON string literal (session names are printable ASCII;
/// feed names come from the command line).
fn serde_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One line of an A/B feed in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineJson {
    /// `A` or `B`.
    pub line: String,
    /// Packets of the session on this line.
    pub packets: u64,
    /// Messages this line brought (each once).
    pub messages: u64,
    /// Messages of the merged stream this line brought first.
    pub won: u64,
    /// Gaps of this line alone (the other line may have had the messages).
    pub gaps: u64,
    /// Messages missing on this line now.
    pub missing: u64,
    /// Copies this line brought twice.
    pub duplicates: u64,
    /// Malformed packets on this line (every session).
    pub malformed: u64,
    /// How far ahead this line was when it won a message the other line
    /// also brought: median, 99th percentile, largest (ns; 0 when never).
    pub lead_p50_ns: u64,
    /// 99th percentile of the lead.
    pub lead_p99_ns: u64,
    /// Largest lead.
    pub lead_max_ns: u64,
}

/// A feed's requests to its retransmission server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestsJson {
    /// Request packets sent, retries included.
    pub sent: u64,
    /// Requests whose messages arrived.
    pub answered: u64,
    /// Requests given up after every try.
    pub unanswered: u64,
}

/// Quantiles of a latency histogram (ns; 0 without samples).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyQuantiles {
    /// Packets measured.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p99_9_ns: u64,
    /// Largest.
    pub max_ns: u64,
}

impl LatencyQuantiles {
    /// From a histogram.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> LatencyQuantiles {
        let q = |p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        LatencyQuantiles {
            count: h.len(),
            p50_ns: q(0.5),
            p99_ns: q(0.99),
            p99_9_ns: q(0.999),
            max_ns: if h.is_empty() { 0 } else { h.max() },
        }
    }
}

/// Microbursts: the busiest windows' rates, and windows over 10 times the mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurstsJson {
    /// Packets/s in the busiest 100 µs window.
    pub max_pps_100us: f64,
    /// Bits/s in the busiest 100 µs window.
    pub max_bps_100us: f64,
    /// 100 µs windows over 10 times the mean.
    pub flagged_100us: u64,
    /// Packets/s in the busiest 1 ms window.
    pub max_pps_1ms: f64,
    /// Bits/s in the busiest 1 ms window.
    pub max_bps_1ms: f64,
    /// 1 ms windows over 10 times the mean.
    pub flagged_1ms: u64,
}

/// One feed and session in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedJson {
    /// `GROUP:PORT`, or the `--ab` name.
    pub feed: String,
    /// The session name.
    pub session: String,
    /// Packets (of both lines for an A/B feed).
    pub packets: u64,
    /// Messages, each once.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Heartbeats.
    pub heartbeats: u64,
    /// Copies of messages already taken (for A/B: within a line).
    pub duplicates: u64,
    /// Gaps declared (for A/B: messages no line brought in time).
    pub gaps: u64,
    /// Messages missing now.
    pub missing: u64,
    /// Messages of gaps that arrived later.
    pub recovered: u64,
    /// Missing messages given up when too many gaps were open.
    pub abandoned: u64,
    /// First sequence number seen.
    pub first_seq: u64,
    /// Highest message sequence number seen.
    pub last_seq: Option<u64>,
    /// The next message expected.
    pub next_expected: u64,
    /// Whether the end of session arrived.
    pub end_of_session: bool,
    /// Malformed packets of the feed (every session, every line).
    pub malformed: u64,
    /// Of those, by reason (non-zero ones).
    pub malformed_reasons: std::collections::BTreeMap<String, u64>,
    /// Receive stamp to decoding, per packet (every session).
    pub receive_to_decode: LatencyQuantiles,
    /// `--itch-utc-offset`: receive time minus each ITCH message's own
    /// timestamp (every session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_to_tap: Option<LatencyQuantiles>,
    /// Of those, messages stamped after they were received (clocks disagree).
    #[serde(default)]
    pub exchange_to_tap_negative: u64,
    /// The busiest 100 µs and 1 ms windows (every session).
    pub bursts: BurstsJson,
    /// Events not shown because the reporter fell 4,096 behind (every session).
    #[serde(default)]
    pub events_dropped: u64,
    /// `--messages`: messages not written because the writer fell behind.
    #[serde(default)]
    pub messages_not_written: u64,
    /// Messages handed to consumers and `--messages` before the hole before
    /// them was filled or declared, because holding them reached its bound
    /// (every session).
    #[serde(default)]
    pub released_out_of_sequence: u64,
    /// `--rerequest`: requests sent, answered, given up (every session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<RequestsJson>,
    /// The A and B lines, for an A/B feed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<LineJson>,
    /// Where the merged stream is handed on (`--publish`: the iceoryx2
    /// service), every session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<ConsumerJson>,
}

/// A consumer of a feed, in the summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConsumerJson {
    /// Where it hands the stream on (`xsktap/feed/NAME`).
    pub name: String,
    /// Samples (messages and notices) handed on.
    pub delivered: u64,
    /// Samples it could not hand on, by reason (non-zero ones).
    pub failed: std::collections::BTreeMap<String, u64>,
    /// Receive stamp to hand-on, per message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_to_delivery: Option<LatencyQuantiles>,
}

fn malformed_of<'a>(
    sequencers: impl Iterator<Item = &'a Sequencer>,
) -> [u64; Malformed::ALL.len()] {
    let mut sum = [0u64; Malformed::ALL.len()];
    for s in sequencers {
        for (t, v) in sum.iter_mut().zip(s.malformed) {
            *t += v;
        }
    }
    sum
}

fn line_json(name: &str, l: &LineStats, session: Session) -> LineJson {
    let st: Option<&SessionStats> = l.sequencer.sessions().find(|s| s.session == session);
    let q = |p: f64| {
        if l.lead.is_empty() {
            0
        } else {
            l.lead.value_at_quantile(p)
        }
    };
    LineJson {
        line: name.to_string(),
        packets: st.map_or(0, |s| s.packets),
        messages: st.map_or(0, |s| s.messages),
        won: l.won,
        gaps: st.map_or(0, |s| s.gaps),
        missing: st.map_or(0, |s| s.missing),
        duplicates: st.map_or(0, |s| s.duplicates),
        malformed: l.sequencer.malformed.iter().sum(),
        lead_p50_ns: q(0.5),
        lead_p99_ns: q(0.99),
        lead_max_ns: if l.lead.is_empty() { 0 } else { l.lead.max() },
    }
}

/// The summary of every feed: one entry per feed and session (a feed that
/// saw no valid packet has one entry with an empty session).
pub fn summary(feeds: &Feeds) -> Vec<FeedJson> {
    let mut out = Vec::new();
    for i in 0..feeds.len() {
        let state = feeds.lock(i);
        let feed = &state.feed;
        let malformed = malformed_of(
            std::iter::once(&feed.merged).chain(feed.lines.iter().map(|l| &l.sequencer)),
        );
        let reasons: std::collections::BTreeMap<String, u64> = Malformed::ALL
            .iter()
            .zip(malformed)
            .filter(|(_, n)| *n > 0)
            .map(|(m, n)| (m.as_str().to_string(), n))
            .collect();
        let empty = SessionStats::empty();
        let sessions: Vec<&SessionStats> = feed.merged.sessions().collect();
        let sessions = if sessions.is_empty() {
            vec![&empty]
        } else {
            sessions
        };
        for st in sessions {
            let ab = feed.is_ab();
            // Packets, heartbeats and duplicates are the lines' own for A/B
            // (a copy on the other line is not a duplicate).
            let per_line = |f: fn(&SessionStats) -> u64| -> u64 {
                if !ab {
                    return f(st);
                }
                feed.lines
                    .iter()
                    .filter_map(|l| l.sequencer.sessions().find(|s| s.session == st.session))
                    .map(f)
                    .sum()
            };
            out.push(FeedJson {
                feed: feed.name.clone(),
                session: st.session.to_string(),
                packets: per_line(|s| s.packets),
                messages: st.messages,
                bytes: st.bytes,
                heartbeats: per_line(|s| s.heartbeats),
                duplicates: per_line(|s| s.duplicates),
                gaps: st.gaps,
                missing: st.missing,
                recovered: st.recovered,
                abandoned: st.abandoned,
                first_seq: st.first_seq,
                last_seq: st.last_seq,
                next_expected: st.next_expected,
                end_of_session: st.end_of_session,
                malformed: malformed.iter().sum(),
                malformed_reasons: reasons.clone(),
                messages_not_written: state.events.stream.messages_dropped,
                released_out_of_sequence: state.events.order.released_early,
                events_dropped: state.events.dropped,
                receive_to_decode: LatencyQuantiles::of(&state.timing.receive_to_decode),
                exchange_to_tap: state
                    .events
                    .itch
                    .as_ref()
                    .map(|i| LatencyQuantiles::of(&i.histogram)),
                exchange_to_tap_negative: state.events.itch.as_ref().map_or(0, |i| i.negative),
                bursts: {
                    let (t, fast, slow) = (
                        &state.timing,
                        state.timing.bursts_100us.peak(),
                        state.timing.bursts_1ms.peak(),
                    );
                    BurstsJson {
                        max_pps_100us: fast.0,
                        max_bps_100us: fast.1,
                        flagged_100us: t.bursts_100us.flagged,
                        max_pps_1ms: slow.0,
                        max_bps_1ms: slow.1,
                        flagged_1ms: t.bursts_1ms.flagged,
                    }
                },
                requests: state.recovery.as_ref().map(|r| RequestsJson {
                    sent: r.stats.sent,
                    answered: r.stats.answered,
                    unanswered: r.stats.unanswered,
                }),
                lines: feed
                    .lines
                    .iter()
                    .zip(["A", "B"])
                    .map(|(l, name)| line_json(name, l, st.session))
                    .collect(),
                consumers: state
                    .events
                    .stream
                    .consumers
                    .iter()
                    .filter_map(|c| c.stats())
                    .map(|c| ConsumerJson {
                        name: c.name,
                        delivered: c.delivered,
                        failed: c
                            .failed
                            .into_iter()
                            .filter(|(_, n)| *n > 0)
                            .map(|(r, n)| (r.to_string(), n))
                            .collect(),
                        receive_to_delivery: c
                            .receive_to_delivery
                            .as_ref()
                            .map(LatencyQuantiles::of),
                    })
                    .collect(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::sequence::Gap;

    #[test]
    fn events_read_as_the_issue_spells_them() {
        let session = Session::new(b"SESSION001").unwrap();
        let gap = Event::Gap(Gap {
            session,
            from: 5,
            to: 7,
            opened_ns: 99,
        });
        let json = event_json("198.19.0.1:26400", false, &gap);
        assert_eq!(
            json,
            r#"{"event":"gap","feed":"198.19.0.1:26400","session":"SESSION001","from":5,"to":7,"missing":3,"ts_ns":99}"#
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["missing"], 3);
        let rec = Event::Recovered {
            session,
            from: 5,
            to: 6,
            open_ns: 2_000_000,
            origin: Origin::Line(1),
            ts_ns: 5,
        };
        let v: serde_json::Value = serde_json::from_str(&event_json("it\"ch", true, &rec)).unwrap();
        assert_eq!(
            (v["by"].as_str(), v["messages"].as_u64()),
            (Some("B"), Some(2))
        );
        assert_eq!(v["feed"], "it\"ch");
        assert_eq!(
            event_text("itch", true, &rec),
            "recovered itch session SESSION001: 5 to 6 by B after 2.000 ms"
        );
        assert_eq!(
            event_text("f", false, &gap),
            "gap f session SESSION001: 3 missing, 5 to 7"
        );
    }
}
