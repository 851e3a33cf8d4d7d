//! Consumers of a feed's merged stream, called on the thread that decoded
//! the packet, under the feed's lock: the messages (borrowed from the frame,
//! no copy) and the events, in one order. xsktap's iceoryx2 publisher is one;
//! an in-process consumer (a book builder in the same program) is another.

use hdrhistogram::Histogram;

use super::sequence::{Event, Origin};
use super::Session;

/// A message of the merged stream, as a consumer is handed it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Its session.
    pub session: Session,
    /// Its sequence number.
    pub seq: u64,
    /// Receive time of the frame that brought it (ns since the Unix epoch).
    pub rx_ns: u64,
    /// The line (or the retransmission) that brought it.
    pub origin: Origin,
    /// The message block, borrowed from the frame: valid for the call only.
    pub bytes: &'a [u8],
}

/// What a consumer says about itself in the summary.
#[derive(Debug, Clone)]
pub struct ConsumerStats {
    /// Where it hands the stream on (an iceoryx2 service name, …).
    pub name: String,
    /// Messages and events handed on.
    pub delivered: u64,
    /// Those it could not hand on (lost for every reader), by reason.
    pub failed: Vec<(&'static str, u64)>,
    /// Receive stamp to the moment each message was handed on (ns).
    pub receive_to_delivery: Option<Histogram<u64>>,
}

/// Takes a feed's merged stream on the decoding thread. Each call runs
/// under the feed's lock, inside a worker's batch: it must not block or
/// wait (hand the data on, do not process it there at length).
pub trait Consumer: Send + std::fmt::Debug {
    /// A message taken for the first time, in the order taken.
    fn message(&mut self, message: &Message<'_>);
    /// A gap, a recovery, a session start or end, a line silent or back: in
    /// order with the messages.
    fn event(&mut self, event: &Event) {
        let _ = event;
    }
    /// The end of a packet (or of a burst of messages released in order):
    /// hand on what was gathered.
    fn flush(&mut self) {}
    /// For the summary (`None`: nothing to say).
    fn stats(&self) -> Option<ConsumerStats> {
        None
    }
}

/// Origin as a consumer's line byte: 0 = A (or a single line), 1 = B,
/// 2 = retransmission.
pub fn line_byte(origin: Origin) -> u8 {
    match origin {
        Origin::Line(l) => l,
        Origin::Retransmission => 2,
    }
}
