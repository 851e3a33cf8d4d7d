//! The feeds of a capture as the workers see them: which (address, port)
//! is which line of which feed, and each feed's state behind its own lock,
//! so that a feed's two lines can arrive on different RX queues (workers)
//! and still be arbitrated into one stream.
//!
//! A worker that takes a frame to a feed line locks that feed only (the
//! other feeds go on), hands the UDP payload over without a copy, and
//! queues the events for the reporting thread (bounded; what does not fit
//! is counted).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use super::consumer::{Consumer, ConsumerStats, Message};
use super::itch;
use super::order::{Deliver, Orderer};
use super::recovery::{Policy, Recovery, Request};
use super::sequence::{Event, FeedOut, Origin};
use super::timing::Timing;
use super::{Feed, Malformed, MoldUdp64, Session};
use crate::config::CaptureConfig;
use crate::parse::Packet;
use hdrhistogram::Histogram;

/// One feed as configured: a name and one line, or an A and a B line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSpec {
    /// `ADDR:PORT` for a single line, the `--ab` name otherwise.
    pub name: String,
    /// Its lines: one, or A and B.
    pub lines: Vec<(IpAddr, u16)>,
}

impl FeedSpec {
    /// `--moldudp64 ADDR:PORT` (`[V6ADDR]:PORT` for IPv6): a single-line feed named so.
    ///
    /// # Errors
    /// One line naming the value and the form.
    pub fn single(arg: &str) -> Result<FeedSpec, String> {
        let line = parse_line(arg).map_err(|e| format!("--moldudp64 {arg:?}: {e}"))?;
        Ok(FeedSpec {
            name: arg.to_string(),
            lines: vec![line],
        })
    }

    /// `--ab NAME=A_ADDR:PORT,B_ADDR:PORT`: an arbitrated feed.
    ///
    /// # Errors
    /// One line naming the value and the form.
    pub fn ab(arg: &str) -> Result<FeedSpec, String> {
        let form = "give NAME=A_ADDR:PORT,B_ADDR:PORT";
        let (name, lines) = arg
            .split_once('=')
            .ok_or_else(|| format!("--ab {arg:?}: {form}"))?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "--ab {arg:?}: the name must be printable, without spaces; {form}"
            ));
        }
        let (a, b) = lines
            .split_once(',')
            .ok_or_else(|| format!("--ab {arg:?}: {form}"))?;
        let a = parse_line(a).map_err(|e| format!("--ab {arg:?}: line A: {e}"))?;
        let b = parse_line(b).map_err(|e| format!("--ab {arg:?}: line B: {e}"))?;
        if a == b {
            return Err(format!("--ab {arg:?}: lines A and B are the same"));
        }
        Ok(FeedSpec {
            name: name.to_string(),
            lines: vec![a, b],
        })
    }
}

/// The `--messages` files, one per feed: `path` for a single feed, `path.1`,
/// `path.2`, … in the order the feeds were given otherwise.
pub fn message_files(path: &std::path::Path, feeds: usize) -> Vec<std::path::PathBuf> {
    if feeds == 1 {
        return vec![path.to_path_buf()];
    }
    (1..=feeds)
        .map(|i| {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".{i}"));
            std::path::PathBuf::from(name)
        })
        .collect()
}

/// `ADDR:PORT` or `[V6ADDR]:PORT`.
fn parse_line(s: &str) -> Result<(IpAddr, u16), String> {
    let addr: std::net::SocketAddr = s.parse().map_err(|_| {
        "expected ADDR:PORT, such as 233.54.12.1:26400 or [ff15::1]:26400".to_string()
    })?;
    if addr.port() == 0 {
        return Err("port 0 is not a feed's port".into());
    }
    Ok((addr.ip(), addr.port()))
}

/// A line quiet this long is reported silent, by default: MoldUDP64
/// servers send a heartbeat each second when idle, so two missed ones.
pub const DEFAULT_LINE_SILENT_NS: u64 = 2_000_000_000;

/// When a line last brought a packet, and whether it was reported silent.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineWatch {
    /// Its last packet's receive time (or the first check's time before any).
    pub last_ns: Option<u64>,
    /// Reported silent and not back yet.
    pub silent: bool,
}

/// Events queued per feed for the reporter before the oldest are dropped.
const MAX_QUEUED_EVENTS: usize = 4096;

/// One feed's state, shared by the workers.
#[derive(Debug)]
pub struct FeedState {
    /// Sequencing and arbitration.
    pub feed: Feed,
    /// Events not yet taken by the reporter.
    pub events: Events,
    /// Requests to the retransmission server (`--rerequest`).
    pub recovery: Option<Recovery>,
    /// Receive-to-decode latency and microbursts.
    pub timing: Timing,
    /// Per line: when it last brought a packet.
    pub watch: Vec<LineWatch>,
}

/// A feed's events waiting for the reporter, and its merged stream on its
/// way to the consumers and the `--messages` writer.
#[derive(Debug, Default)]
pub struct Events {
    /// Oldest first.
    pub queue: VecDeque<Event>,
    /// Events dropped because the reporter did not take them in time.
    pub dropped: u64,
    /// `--itch-utc-offset`: exchange-to-tap latency of ITCH messages.
    pub itch: Option<ItchLatency>,
    /// Receive time of the packet being handed on (set per packet).
    pub rx_ns: u64,
    /// Puts the stream in sequence for `stream`.
    pub order: Orderer,
    /// Where the stream goes, in sequence.
    pub stream: Stream,
}

/// Where a feed's merged stream goes, in sequence.
#[derive(Debug, Default)]
pub struct Stream {
    /// Consumers (the iceoryx2 publisher, in-process ones).
    pub consumers: Vec<Box<dyn Consumer>>,
    /// `--messages`: the messages in the BinaryFILE layout (u16 big-endian
    /// length, then the message), in order.
    pub messages: Option<Vec<u8>>,
    /// Messages not kept because the writer fell [`MAX_PENDING_MESSAGE_BYTES`] behind.
    pub messages_dropped: u64,
}

impl Deliver for Stream {
    #[inline]
    fn message(&mut self, m: &Message<'_>) {
        for c in &mut self.consumers {
            c.message(m);
        }
        let Some(out) = &mut self.messages else {
            return;
        };
        if out.len() + 2 + m.bytes.len() > MAX_PENDING_MESSAGE_BYTES {
            self.messages_dropped += 1;
            return;
        }
        out.extend_from_slice(&(m.bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(m.bytes);
    }

    fn event(&mut self, event: &Event) {
        for c in &mut self.consumers {
            c.event(event);
        }
    }
}

impl Stream {
    fn active(&self) -> bool {
        !self.consumers.is_empty() || self.messages.is_some()
    }

    /// The end of a packet: consumers hand on what they gathered.
    fn flush(&mut self) {
        for c in &mut self.consumers {
            c.flush();
        }
    }
}

/// Receive time minus each ITCH message's own timestamp.
#[derive(Debug, Clone)]
pub struct ItchLatency {
    /// The exchange's offset from UTC, in ns.
    pub utc_offset_ns: i64,
    /// Exchange to tap, per message (ns).
    pub histogram: Histogram<u64>,
    /// Messages stamped later than they were received (the clocks disagree).
    pub negative: u64,
}

/// Bytes of messages a feed holds for the `--messages` writer at most.
pub const MAX_PENDING_MESSAGE_BYTES: usize = 64 << 20;

impl FeedOut<'_> for Events {
    #[inline]
    fn message(&mut self, session: Session, seq: u64, message: &[u8], origin: Origin) {
        if let Some(itch) = &mut self.itch {
            if let Some(stamp) = itch::timestamp(message) {
                match itch::exchange_to_tap(self.rx_ns, itch.utc_offset_ns, stamp) {
                    d if d >= 0 => itch.histogram.saturating_record((d as u64).max(1)),
                    _ => itch.negative += 1,
                }
            }
        }
        if self.stream.active() {
            let m = Message {
                session,
                seq,
                rx_ns: self.rx_ns,
                origin,
                bytes: message,
            };
            self.order.message(&m, &mut self.stream);
        }
    }

    fn event(&mut self, event: Event) {
        if self.stream.active() {
            self.order.event(&event, &mut self.stream);
        }
        if self.queue.len() == MAX_QUEUED_EVENTS {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back(event);
    }
}

/// The feeds of a capture.
#[derive(Debug)]
pub struct Feeds {
    specs: Vec<FeedSpec>,
    /// (address, port) → (feed, line).
    index: HashMap<(IpAddr, u16), (usize, u8)>,
    states: Vec<Mutex<FeedState>>,
    /// A line quiet this long is silent (0: never).
    silent_ns: u64,
}

impl Feeds {
    /// The feeds of `specs`, A/B ones arbitrated with `window_ns`.
    ///
    /// # Errors
    /// One line when a line is given twice or a feed has no line or more than two.
    pub fn new(specs: Vec<FeedSpec>, window_ns: u64) -> Result<Feeds, String> {
        let mut index = HashMap::new();
        let mut states = Vec::with_capacity(specs.len());
        for (f, spec) in specs.iter().enumerate() {
            if spec.lines.is_empty() || spec.lines.len() > 2 {
                return Err(format!(
                    "feed {}: give one line or an A and a B line",
                    spec.name
                ));
            }
            for (l, &line) in spec.lines.iter().enumerate() {
                if index.insert(line, (f, l as u8)).is_some() {
                    return Err(format!(
                        "{}:{} is given twice: each feed line once",
                        line.0, line.1
                    ));
                }
            }
            let feed = if spec.lines.len() == 2 {
                Feed::ab(spec.name.clone(), window_ns)
            } else {
                Feed::single(spec.name.clone())
            };
            states.push(Mutex::new(FeedState {
                feed,
                events: Events::default(),
                recovery: None,
                timing: Timing::default(),
                watch: vec![LineWatch::default(); spec.lines.len()],
            }));
        }
        Ok(Feeds {
            specs,
            index,
            states,
            silent_ns: DEFAULT_LINE_SILENT_NS,
        })
    }

    /// The feeds `cfg` asks for (`None` without any), with its A/B window and
    /// ITCH latency setting: one place for a live capture and a file read back.
    ///
    /// # Errors
    /// As [`Feeds::new`].
    pub fn of_config(cfg: &CaptureConfig) -> Result<Option<Feeds>, String> {
        if cfg.feeds.is_empty() {
            return Ok(None);
        }
        let mut feeds = Feeds::new(cfg.feeds.clone(), cfg.ab_window_ns)?;
        feeds.silent_ns = cfg.line_silent_ns;
        if let Some(offset) = cfg.itch_utc_offset_ns {
            feeds.measure_itch(offset);
        }
        Ok(Some(feeds))
    }

    /// The feeds as configured.
    pub fn specs(&self) -> &[FeedSpec] {
        &self.specs
    }

    /// Every line of every feed, for the XDP program's feed set.
    pub fn lines(&self) -> Vec<(IpAddr, u16)> {
        self.specs
            .iter()
            .flat_map(|s| s.lines.iter().copied())
            .collect()
    }

    /// Feed `i`'s state, locked.
    pub fn lock(&self, i: usize) -> MutexGuard<'_, FeedState> {
        // A worker that panicked holding the lock leaves the counts as they
        // were: still the best there is.
        self.states[i]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Number of feeds.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Whether `packet` goes to one of the feed lines (UDP to its address and port).
    pub fn is_line(&self, packet: &Packet) -> bool {
        self.line_of(packet).is_some()
    }

    /// The feed and line `packet` goes to, if any.
    #[inline]
    fn line_of(&self, packet: &Packet) -> Option<(usize, u8)> {
        match (packet.dst, packet.dport, packet.ip_proto) {
            (Some(dst), Some(port), Some(17)) => self.index.get(&(dst, port)).copied(),
            _ => None,
        }
    }

    /// Hands a frame received at `ts_ns` (its receive stamp) and decoded at
    /// `now_ns` to its feed, if it is to a feed line (parsed as `packet`);
    /// returns whether it was.
    #[inline]
    pub fn frame(&self, ts_ns: u64, now_ns: u64, frame: &[u8], packet: &Packet) -> bool {
        let Some((feed, line)) = self.line_of(packet) else {
            return false;
        };
        let mut state = self.lock(feed);
        // A datagram the frame does not hold whole (a fragment, a cut frame)
        // is never decoded: counted with the feed's malformed packets.
        let Some(payload) = udp_payload(frame, packet) else {
            state.feed.refuse(line, Malformed::TruncatedDatagram);
            return true;
        };
        let FeedState {
            feed,
            events,
            timing,
            watch,
            ..
        } = &mut *state;
        let w = &mut watch[usize::from(line)];
        if std::mem::take(&mut w.silent) {
            events.event(Event::LineBack {
                line,
                silent_ns: ts_ns.saturating_sub(w.last_ns.unwrap_or(ts_ns)),
                ts_ns,
            });
        }
        w.last_ns = Some(ts_ns);
        timing.record(ts_ns, now_ns, u64::from(packet.len));
        events.rx_ns = ts_ns;
        feed.packet::<MoldUdp64>(line, payload, ts_ns, events);
        events.stream.flush();
        true
    }

    /// Declares the A/B gaps that outlived the window and the lines silent
    /// for too long (the reporter calls this often; `u64::MAX` at the end of
    /// a capture declares the last gaps, and no silence).
    pub fn tick(&self, now_ns: u64) {
        for i in 0..self.len() {
            let mut state = self.lock(i);
            let FeedState {
                feed,
                events,
                watch,
                ..
            } = &mut *state;
            feed.tick(now_ns, events);
            if events.order.hold_for_ns > 0 {
                let Events { order, stream, .. } = events;
                order.expire(now_ns, stream);
            }
            events.stream.flush();
            if now_ns == u64::MAX || self.silent_ns == 0 {
                continue;
            }
            for (line, w) in watch.iter_mut().enumerate() {
                // A line never heard is timed from the first check.
                let last = *w.last_ns.get_or_insert(now_ns);
                if !w.silent && now_ns.saturating_sub(last) >= self.silent_ns {
                    w.silent = true;
                    events.event(Event::LineSilent {
                        line: line as u8,
                        since_ns: last,
                        ts_ns: now_ns,
                    });
                }
            }
        }
    }

    /// Measures every feed's ITCH exchange-to-tap latency from now on, the
    /// exchange being `utc_offset_ns` from UTC.
    pub fn measure_itch(&self, utc_offset_ns: i64) {
        for i in 0..self.len() {
            self.lock(i).events.itch = Some(ItchLatency {
                utc_offset_ns,
                histogram: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                    .expect("valid histogram bounds"),
                negative: 0,
            });
        }
    }

    /// Keeps every feed's messages for the `--messages` writer from now on.
    pub fn keep_messages(&self) {
        for i in 0..self.len() {
            self.lock(i).events.stream.messages = Some(Vec::new());
        }
    }

    /// Swaps feed `i`'s kept messages with `into` (emptied first): the
    /// writer takes them without holding the lock while it writes.
    pub fn take_messages(&self, i: usize, into: &mut Vec<u8>) {
        into.clear();
        if let Some(pending) = &mut self.lock(i).events.stream.messages {
            std::mem::swap(pending, into);
        }
    }

    /// Hands feed `i`'s merged stream to `consumer` from now on, after the
    /// consumers it has.
    pub fn consume(&self, i: usize, consumer: Box<dyn Consumer>) {
        self.lock(i).events.stream.consumers.push(consumer);
    }

    /// The index of the feed named `name` (`GROUP:PORT` or the `--ab` name).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.name == name)
    }

    /// What feed `i`'s consumers say about themselves.
    pub fn consumer_stats(&self, i: usize) -> Vec<ConsumerStats> {
        self.lock(i)
            .events
            .stream
            .consumers
            .iter()
            .filter_map(|c| c.stats())
            .collect()
    }

    /// Asks every feed's retransmission server for its gaps from now on.
    pub fn recover(&self, policy: Policy) {
        for i in 0..self.len() {
            let mut state = self.lock(i);
            state.recovery = Some(Recovery::new(policy));
            // Consumers get the recovered messages in their place: a gap is
            // waited for as long as its requests may be answered.
            state.events.order.hold_for_ns = policy.wait_ns();
        }
    }

    /// Feed `i`'s requests to send now, and those given up just now.
    pub fn requests(&self, i: usize, now_ns: u64) -> (Vec<Request>, Vec<Request>) {
        let mut state = self.lock(i);
        let FeedState {
            feed,
            recovery,
            events,
            ..
        } = &mut *state;
        let Some(r) = recovery else {
            return (Vec::new(), Vec::new());
        };
        let (send, given_up) = r.poll(&feed.merged, now_ns);
        let Events { order, stream, .. } = events;
        for g in &given_up {
            order.give_up(g.session, g.seq, g.seq + u64::from(g.count) - 1, stream);
        }
        stream.flush();
        (send, given_up)
    }

    /// An answer of feed `i`'s retransmission server, received at `ts_ns`.
    pub fn retransmission(&self, i: usize, payload: &[u8], ts_ns: u64) {
        let mut state = self.lock(i);
        let FeedState { feed, events, .. } = &mut *state;
        feed.retransmission::<MoldUdp64>(payload, ts_ns, events);
        events.stream.flush();
    }

    /// Takes the queued events of every feed, with their feed's index.
    pub fn take_events(&self) -> Vec<(usize, Event)> {
        let mut out = Vec::new();
        for i in 0..self.len() {
            out.extend(self.lock(i).events.queue.drain(..).map(|e| (i, e)));
        }
        out
    }
}

/// The UDP payload of `frame`: the datagram's own length, not Ethernet padding.
fn udp_payload<'a>(frame: &'a [u8], packet: &Packet) -> Option<&'a [u8]> {
    let at = usize::from(packet.udp_payload);
    if at < 8 || packet.ip_proto != Some(17) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([frame[at - 4], frame[at - 3]]));
    frame.get(at..(at - 8).checked_add(len)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::{mold, report};
    use crate::parse::parse;
    use etherparse::PacketBuilder;

    fn frame(dst: [u8; 4], port: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [1, 0, 0x5e, 0, 0, 1])
            .ipv4([198, 18, 0, 1], dst, 16)
            .udp(5000, port)
            .write(&mut f, payload)
            .unwrap();
        f
    }

    fn spec(name: &str, lines: &[([u8; 4], u16)]) -> FeedSpec {
        FeedSpec {
            name: name.into(),
            lines: lines.iter().map(|&(a, p)| (IpAddr::from(a), p)).collect(),
        }
    }

    #[test]
    fn frames_reach_their_feed_and_line() {
        let feeds = Feeds::new(
            vec![
                spec("198.19.0.1:26400", &[([198, 19, 0, 1], 26400)]),
                spec(
                    "itch",
                    &[([198, 19, 0, 2], 26400), ([198, 19, 0, 3], 26401)],
                ),
            ],
            1_000,
        )
        .unwrap();
        assert_eq!(feeds.lines().len(), 3);
        let session = Session::new(b"SESSION001").unwrap();
        let p1 = mold::encode(&session, 1, &[b"a", b"b"]);
        let p3 = mold::encode(&session, 3, &[b"c"]);
        // Bytes after the datagram (padding, a trailer) are not payload.
        let mut padded = frame([198, 19, 0, 1], 26400, &p3);
        padded.resize(padded.len() + 6, 0);
        for (ts, f) in [
            (1, frame([198, 19, 0, 1], 26400, &p1)),
            (2, padded),
            (3, frame([198, 19, 0, 2], 26400, &p1)),
            (4, frame([198, 19, 0, 3], 26401, &p1)),
        ] {
            assert!(feeds.frame(ts, ts, &f, &parse(&f)));
        }
        let other = frame([198, 19, 0, 1], 26401, &p1);
        assert!(!feeds.frame(5, 5, &other, &parse(&other)));
        let single = feeds.lock(0);
        let st = single.feed.merged.current().unwrap();
        assert_eq!((st.messages, st.gaps, st.duplicates), (3, 0, 0));
        assert_eq!(single.feed.merged.malformed.iter().sum::<u64>(), 0);
        drop(single);
        let ab = feeds.lock(1);
        assert_eq!((ab.feed.lines[0].won, ab.feed.lines[1].won), (2, 0));
        drop(ab);
        let events = feeds.take_events();
        assert_eq!(events.len(), 2, "a session start per feed: {events:?}");
        assert!(feeds.take_events().is_empty());
    }

    #[test]
    fn feed_flags_parse_or_say_why_not() {
        let f = FeedSpec::single("198.19.0.1:26400").unwrap();
        assert_eq!(f.lines, [(IpAddr::from([198, 19, 0, 1]), 26400)]);
        let v6 = FeedSpec::single("[2001:2::1]:9").unwrap();
        assert_eq!(v6.lines[0].1, 9);
        let ab = FeedSpec::ab("itch=198.19.0.1:1,198.19.0.2:1").unwrap();
        assert_eq!((ab.name.as_str(), ab.lines.len()), ("itch", 2));
        for (bad, needle) in [
            (FeedSpec::single("198.19.0.1"), "expected ADDR:PORT"),
            (FeedSpec::single("198.19.0.1:0"), "port 0"),
            (FeedSpec::ab("198.19.0.1:1,198.19.0.2:1"), "NAME="),
            (FeedSpec::ab("x=198.19.0.1:1"), "NAME="),
            (FeedSpec::ab("x=198.19.0.1:1,bad"), "line B"),
            (FeedSpec::ab("x=198.19.0.1:1,198.19.0.1:1"), "the same"),
            (FeedSpec::ab("a b=198.19.0.1:1,198.19.0.2:1"), "printable"),
        ] {
            let err = bad.unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn a_datagram_the_frame_cuts_is_counted_malformed_and_tcp_is_not_a_feed() {
        let feeds = Feeds::new(vec![spec("f", &[([198, 19, 0, 1], 26400)])], 0).unwrap();
        let session = Session::new(b"SESSION001").unwrap();
        let f = frame(
            [198, 19, 0, 1],
            26400,
            &mold::encode(&session, 1, &[b"abc"]),
        );
        let cut = &f[..f.len() - 2];
        assert!(feeds.frame(1, 1, cut, &parse(cut)));
        let mut tcp = f.clone();
        tcp[23] = 6;
        assert!(!feeds.frame(2, 2, &tcp, &parse(&tcp)));
        let state = feeds.lock(0);
        assert_eq!(
            state.feed.merged.malformed[Malformed::TruncatedDatagram.index()],
            1
        );
        assert!(state.feed.merged.current().is_none());
    }

    /// Records what it is handed, as an in-process consumer would.
    #[derive(Debug, Default)]
    struct Seen(std::sync::Arc<Mutex<Vec<String>>>);

    impl Consumer for Seen {
        fn message(&mut self, m: &Message<'_>) {
            let text = format!("{} {} {:?}", m.seq, m.rx_ns, m.bytes);
            self.0.lock().unwrap().push(text);
        }
        fn event(&mut self, e: &Event) {
            self.0
                .lock()
                .unwrap()
                .push(report::event_text("f", true, e));
        }
    }

    #[test]
    fn consumers_get_messages_and_events_in_one_order() {
        let feeds = Feeds::new(
            vec![spec(
                "itch",
                &[([198, 19, 0, 2], 26400), ([198, 19, 0, 3], 26400)],
            )],
            0,
        )
        .unwrap();
        let seen = Seen::default();
        let log = seen.0.clone();
        feeds.consume(feeds.index_of("itch").unwrap(), Box::new(seen));
        assert_eq!(feeds.index_of("nope"), None);
        let session = Session::new(b"SESSION001").unwrap();
        for (ts, dst, p) in [
            (10, [198, 19, 0, 2], mold::encode(&session, 1, &[b"a"])),
            (
                20,
                [198, 19, 0, 3],
                mold::encode(&session, 1, &[b"a", b"b"]),
            ),
            (30, [198, 19, 0, 2], mold::encode(&session, 4, &[b"d"])),
        ] {
            let f = frame(dst, 26400, &p);
            feeds.frame(ts, ts, &f, &parse(&f));
        }
        feeds.tick(31);
        assert_eq!(
            *log.lock().unwrap(),
            [
                "session start f session SESSION001 at 1",
                "1 10 [97]",
                "2 20 [98]",
                // With no A/B window the gap is declared as message 4
                // arrives: its notice comes before it.
                "gap f session SESSION001: 1 missing, 3 to 3",
                "4 30 [100]",
            ]
        );
    }

    #[test]
    fn ab_messages_in_sequence_are_handed_on_at_once() {
        let feeds = Feeds::new(
            vec![spec("f", &[([198, 19, 0, 2], 1), ([198, 19, 0, 3], 1)])],
            1_000_000,
        )
        .unwrap();
        let seen = Seen::default();
        let log = seen.0.clone();
        feeds.consume(0, Box::new(seen));
        let session = Session::new(b"SESSION001").unwrap();
        for (ts, dst, seq) in [
            (10, [198, 19, 0, 2], 1),
            (20, [198, 19, 0, 3], 1),
            (30, [198, 19, 0, 2], 2),
        ] {
            let f = frame(dst, 1, &mold::encode(&session, seq, &[&[seq as u8]]));
            feeds.frame(ts, ts, &f, &parse(&f));
        }
        assert_eq!(
            *log.lock().unwrap(),
            [
                "session start f session SESSION001 at 1",
                "1 10 [1]",
                "2 30 [2]"
            ]
        );
    }

    #[test]
    fn a_quiet_line_is_silent_once_and_back_once() {
        let mut feeds = Feeds::new(
            vec![spec("f", &[([198, 19, 0, 2], 1), ([198, 19, 0, 3], 1)])],
            0,
        )
        .unwrap();
        feeds.silent_ns = 100;
        let session = Session::new(b"SESSION001").unwrap();
        let hb = mold::encode(&session, 1, &[]);
        let a = frame([198, 19, 0, 2], 1, &hb);
        feeds.tick(1_000);
        feeds.frame(1_050, 1_050, &a, &parse(&a));
        for t in [1_099, 1_100, 1_140, 1_160, 5_000] {
            feeds.tick(t);
        }
        feeds.frame(5_010, 5_010, &a, &parse(&a));
        feeds.tick(u64::MAX);
        let texts: Vec<String> = feeds
            .take_events()
            .iter()
            .map(|(_, e)| report::event_text("f", true, e))
            .collect();
        assert_eq!(
            texts,
            [
                "session start f session SESSION001 at 1",
                "line silent f B: no packet for 0.000 s",
                "line silent f A: no packet for 0.000 s",
                "line back f A after 0.000 s",
            ]
        );
        let silent: Vec<(u8, u64, u64)> = feeds
            .lock(0)
            .watch
            .iter()
            .enumerate()
            .map(|(l, w)| (l as u8, w.last_ns.unwrap(), u64::from(w.silent)))
            .collect();
        assert_eq!(silent, [(0, 5_010, 0), (1, 1_000, 1)]);
    }

    #[test]
    fn message_files_are_numbered_for_more_than_one_feed() {
        let p = std::path::Path::new("/cap/m.bin");
        assert_eq!(message_files(p, 1), [p]);
        assert_eq!(
            message_files(p, 2),
            [
                std::path::PathBuf::from("/cap/m.bin.1"),
                std::path::PathBuf::from("/cap/m.bin.2")
            ]
        );
    }

    #[test]
    fn a_line_given_twice_is_refused() {
        let err = Feeds::new(
            vec![
                spec("a", &[([198, 19, 0, 1], 1)]),
                spec("b", &[([198, 19, 0, 1], 1)]),
            ],
            0,
        )
        .unwrap_err();
        assert!(err.contains("198.19.0.1:1 is given twice"), "{err}");
    }
}
