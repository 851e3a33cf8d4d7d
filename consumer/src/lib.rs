//! Subscribe to the market-data feeds `xsktap feed --publish` hands on over
//! iceoryx2 shared memory: one publish-subscribe service per feed, named
//! `xsktap/feed/NAME` (NAME as the feed is named: `GROUP:PORT`, or the `--ab`
//! name), each sample a [`FeedHeader`] and the messages it carries, as
//! MoldUDP64 message blocks (no bytes for a notice). Readers in any language iceoryx2 serves use the same layout:
//! `examples/feed_consumer.py` reads it from Python.
//!
//! A subscriber never slows the tap: the services overflow, so a reader that
//! falls more than its buffer behind loses the oldest samples. Every sample
//! carries its place in the service's stream ([`FeedHeader::publish_seq`]),
//! so [`FeedSubscriber`] counts exactly what was lost and says where
//! ([`Item::Missed`]). Ask for [`Delivery::Reliable`] to get the largest
//! buffer the tap offers: nothing is lost unless the reader falls that far
//! behind, and then the loss is counted the same way.
//!
//! ```no_run
//! use xsktap_consumer::{messages, Delivery, FeedSubscriber, Item, Kind};
//! let mut feed = FeedSubscriber::open("itch", Delivery::Lossy)?;
//! loop {
//!     match feed.receive()? {
//!         Some(Item::Sample(s)) if s.user_header().kind() == Some(Kind::Message) => {
//!             for (seq, message) in (s.user_header().seq..).zip(messages(s.payload())) {
//!                 # let _ = (seq, message);
//!             }
//!         }
//!         Some(Item::Missed(n)) => eprintln!("missed {n} samples"),
//!         Some(Item::Sample(_)) => {}
//!         None => std::thread::sleep(std::time::Duration::from_micros(50)),
//!     }
//! }
//! # Ok::<(), xsktap_consumer::Error>(())
//! ```

#![deny(missing_docs)]

use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use iceoryx2::sample::Sample;

/// Every feed's service name begins with this, then the feed's name.
pub const SERVICE_PREFIX: &str = "xsktap/feed/";

/// The service name of feed `name`.
pub fn service_name(feed: &str) -> String {
    format!("{SERVICE_PREFIX}{feed}")
}

/// Samples a lossy subscriber buffers: a few milliseconds of a busy feed,
/// so a reader that stalls sees recent data when it comes back.
pub const LOSSY_BUFFER: usize = 4096;

/// What a sample is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Messages `seq..=to` of the merged stream, in sequence, each once: the
    /// payload holds them as MoldUDP64 message blocks (u16 big-endian
    /// length, then the message; read them with [`messages`]). One sample
    /// holds the messages of one frame that follow one another, up to the
    /// tap's `--publish-sample-bytes`.
    Message = 0,
    /// Messages `seq..=to` are missing (no line brought them in time).
    Gap = 1,
    /// Messages `seq..=to` of a gap arrived (from `line`), `open_ns` after
    /// they went missing.
    Recovered = 2,
    /// A session began, at message `seq`.
    SessionStart = 3,
    /// The session ended; `seq` is one past its last message.
    SessionEnd = 4,
    /// Line `line` brought nothing for the configured time, since `rx_ns`.
    LineSilent = 5,
    /// Line `line` is back.
    LineBack = 6,
}

impl Kind {
    /// The kind of byte `b`, if it is one.
    pub fn of(b: u8) -> Option<Kind> {
        Some(match b {
            0 => Kind::Message,
            1 => Kind::Gap,
            2 => Kind::Recovered,
            3 => Kind::SessionStart,
            4 => Kind::SessionEnd,
            5 => Kind::LineSilent,
            6 => Kind::LineBack,
            _ => return None,
        })
    }
}

/// The header of every sample (C layout, 64 bytes; the Python example
/// declares the same fields in the same order).
#[derive(Debug, Clone, Copy, Default, ZeroCopySend)]
#[repr(C)]
#[type_name("XsktapFeedHeader")]
pub struct FeedHeader {
    /// The sample's place in the service's stream: 0, 1, 2, … for as long as
    /// one tap publishes. A jump is samples this reader lost.
    pub publish_seq: u64,
    /// Message: its sequence number. Gap, recovered: the first message.
    /// Session start: the first sequence. Session end: one past the last.
    pub seq: u64,
    /// Gap, recovered: the last message (else `seq`).
    pub to: u64,
    /// Receive time of the frame that brought it (ns since the Unix epoch;
    /// hardware-stamped where the tap is). Line silent: its last packet.
    pub rx_ns: u64,
    /// When the tap published it (ns since the Unix epoch).
    pub publish_ns: u64,
    /// Recovered: how long the messages were missing (ns). Line back: how
    /// long the line was quiet.
    pub open_ns: u64,
    /// The MoldUDP64 session (10 ASCII bytes).
    pub session: [u8; 10],
    /// A [`Kind`] as a byte.
    pub kind: u8,
    /// The line that brought it: 0 = A (or the only line), 1 = B,
    /// 2 = the retransmission server.
    pub line: u8,
    /// Zero.
    pub reserved: [u8; 4],
}

impl FeedHeader {
    /// What the sample is (`None` for a kind this library does not know).
    pub fn kind(&self) -> Option<Kind> {
        Kind::of(self.kind)
    }

    /// The session as text.
    pub fn session(&self) -> &str {
        std::str::from_utf8(&self.session).unwrap_or("")
    }
}

/// The messages of a [`Kind::Message`] sample's payload, in order. Blocks
/// that run past the end (never written by xsktap) end the iteration.
pub fn messages(payload: &[u8]) -> Messages<'_> {
    Messages { rest: payload }
}

/// Iterator over a sample's message blocks (see [`messages`]).
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Messages<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        let message = rest.get(..len)?;
        self.rest = &rest[len..];
        Some(message)
    }
}

/// How a subscriber buffers what it has not read yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// [`LOSSY_BUFFER`] samples: a stalled reader loses the oldest.
    Lossy,
    /// The largest buffer the tap's service offers (`--publish-buffer`):
    /// nothing is lost unless the reader falls that many samples behind.
    Reliable,
}

/// Why a feed could not be opened or read.
#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// What [`FeedSubscriber::receive`] hands out.
pub enum Item {
    /// The next sample: [`Sample::user_header`] is its [`FeedHeader`],
    /// [`Sample::payload`] the message bytes (borrowed from shared memory).
    Sample(Sample<ipc::Service, [u8], FeedHeader>),
    /// This many samples were lost here (the reader fell behind), before the
    /// next one.
    Missed(u64),
}

/// One feed's subscriber, counting what it missed.
pub struct FeedSubscriber {
    subscriber: Subscriber<ipc::Service, [u8], FeedHeader>,
    /// The sample held back while its missed count is handed out.
    held: Option<Sample<ipc::Service, [u8], FeedHeader>>,
    /// The publisher and the next `publish_seq` expected from it.
    next: Option<(iceoryx2::identifiers::UniquePublisherId, u64)>,
    missed: u64,
    // Dropped last: the subscriber's node.
    _node: Node<ipc::Service>,
}

impl FeedSubscriber {
    /// Subscribes to feed `name`, as the tap names it. The tap must be
    /// publishing it (or have published it since the machine booted).
    ///
    /// # Errors
    /// One line naming the feed and the cause.
    pub fn open(feed: &str, delivery: Delivery) -> Result<FeedSubscriber, Error> {
        let name = service_name(feed);
        let node = NodeBuilder::new()
            .create::<ipc::Service>()
            .map_err(|e| Error(format!("iceoryx2 node: {e:?}")))?;
        let service_name: ServiceName = name
            .as_str()
            .try_into()
            .map_err(|e| Error(format!("{name}: not a service name ({e:?})")))?;
        let service = node
            .service_builder(&service_name)
            .publish_subscribe::<[u8]>()
            .user_header::<FeedHeader>()
            .open()
            .map_err(|e| {
                Error(format!(
                    "{name}: cannot open ({e:?}); is `xsktap feed --publish` running with that feed?"
                ))
            })?;
        let max = service.static_config().subscriber_max_buffer_size();
        let buffer = match delivery {
            Delivery::Lossy => LOSSY_BUFFER.min(max),
            Delivery::Reliable => max,
        };
        let subscriber = service
            .subscriber_builder()
            .buffer_size(buffer)
            .create()
            .map_err(|e| Error(format!("{name}: cannot subscribe ({e:?})")))?;
        Ok(FeedSubscriber {
            subscriber,
            held: None,
            next: None,
            missed: 0,
            _node: node,
        })
    }

    /// The next item, `None` when nothing is waiting (never blocks).
    ///
    /// # Errors
    /// When the connection to the tap is broken.
    pub fn receive(&mut self) -> Result<Option<Item>, Error> {
        if let Some(sample) = self.held.take() {
            return Ok(Some(Item::Sample(sample)));
        }
        let Some(sample) = self
            .subscriber
            .receive()
            .map_err(|e| Error(format!("receive: {e:?}")))?
        else {
            return Ok(None);
        };
        let at = sample.user_header().publish_seq;
        let origin = sample.origin();
        let lost = match self.next {
            // A new publisher (the tap restarted) starts a new count.
            Some((publisher, next)) if publisher == origin && at > next => at - next,
            _ => 0,
        };
        self.next = Some((origin, at + 1));
        if lost > 0 {
            self.missed += lost;
            self.held = Some(sample);
            return Ok(Some(Item::Missed(lost)));
        }
        Ok(Some(Item::Sample(sample)))
    }

    /// Waits `pause` (zero: just checks), then says whether to go on: false
    /// once the process was asked to stop (SIGINT, SIGTERM).
    pub fn keep_running(&self, pause: std::time::Duration) -> bool {
        self._node.wait(pause).is_ok()
    }

    /// Samples missed so far.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// The buffer this subscriber got, in samples.
    pub fn buffer_size(&self) -> usize {
        self.subscriber.buffer_size()
    }
}

/// The current time in ns since the Unix epoch, as [`FeedHeader::rx_ns`] and
/// [`FeedHeader::publish_ns`] count it: to measure latency on the reader.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_s_blocks_read_back_and_a_cut_one_ends_them() {
        let payload = [0, 2, b'a', b'b', 0, 1, b'c', 0, 5, b'd'];
        let got: Vec<&[u8]> = messages(&payload).collect();
        assert_eq!(got, [&b"ab"[..], &b"c"[..]]);
        assert_eq!(messages(&[]).count(), 0);
    }

    #[test]
    fn the_header_keeps_its_c_layout() {
        assert_eq!(std::mem::size_of::<FeedHeader>(), 64);
        assert_eq!(std::mem::align_of::<FeedHeader>(), 8);
        assert_eq!(std::mem::offset_of!(FeedHeader, session), 48);
        assert_eq!(std::mem::offset_of!(FeedHeader, kind), 58);
        assert_eq!(std::mem::offset_of!(FeedHeader, line), 59);
        for b in 0..=6 {
            assert_eq!(Kind::of(b).map(|k| k as u8), Some(b));
        }
        assert_eq!(Kind::of(7), None);
    }
}
