//! Market-data feeds built on sequenced UDP (MoldUDP64 first): decoding,
//! per-session sequence state with gaps and their recovery, and A/B line
//! arbitration. Pure: every time is passed in.
//!
//! ```text
//!  UDP payload ─▶ Protocol::decode ─▶ Downstream { session, seq, kind, blocks }
//!                                        │
//!        line A ─▶ Sequencer (line) ─┐   ▼
//!        line B ─▶ Sequencer (line) ─┴─▶ Sequencer (merged): first copy wins,
//!                                          a gap is declared once no line can fill it
//! ```

pub mod ab;
pub mod consumer;
pub mod itch;
pub mod mold;
pub mod order;
pub mod recovery;
pub mod report;
pub mod sequence;
pub mod tap;
pub mod timing;

use std::fmt;

pub use ab::{Feed, LineStats};
pub use consumer::{Consumer, ConsumerStats, Message};
pub use mold::MoldUdp64;
pub use sequence::{Event, FeedOut, Gap, Origin, Sequencer, SessionStats};
pub use tap::{message_files, FeedSpec, Feeds};

/// A feed protocol built as MoldUDP64 is: packets name a session and the
/// sequence number of their first message and carry length-prefixed message
/// blocks. Others plug in by decoding into the same [`Downstream`].
pub trait Protocol {
    /// How summaries name it.
    const NAME: &'static str;
    /// Decodes one UDP payload; every length checked, nothing trusted.
    ///
    /// # Errors
    /// [`Malformed`] with the reason.
    fn decode(payload: &[u8]) -> Result<Downstream<'_>, Malformed>;
}

/// Why a packet was refused (counted per reason, never trusted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Malformed {
    /// Shorter than the protocol's header.
    TooShort,
    /// The session holds a byte that is not printable ASCII.
    NonAsciiSession,
    /// The count names more message blocks than the payload holds.
    CountBeyondPayload,
    /// A block's length runs past the end of the payload.
    TruncatedBlock,
    /// Bytes after the last block the count names.
    TrailingBytes,
    /// The sequence numbers of its messages would pass 2^64.
    SequenceOverflow,
    /// The frame does not hold the whole UDP datagram (a fragment, a frame
    /// cut short): not decoded.
    TruncatedDatagram,
}

impl Malformed {
    /// Every reason, in the order of [`Malformed::index`].
    pub const ALL: [Malformed; 7] = [
        Malformed::TooShort,
        Malformed::NonAsciiSession,
        Malformed::CountBeyondPayload,
        Malformed::TruncatedBlock,
        Malformed::TrailingBytes,
        Malformed::SequenceOverflow,
        Malformed::TruncatedDatagram,
    ];

    /// Position in [`Malformed::ALL`], for per-reason counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The reason as summaries and events spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::TooShort => "too_short",
            Malformed::NonAsciiSession => "non_ascii_session",
            Malformed::CountBeyondPayload => "count_beyond_payload",
            Malformed::TruncatedBlock => "truncated_block",
            Malformed::TrailingBytes => "trailing_bytes",
            Malformed::SequenceOverflow => "sequence_overflow",
            Malformed::TruncatedDatagram => "truncated_datagram",
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A session name: 10 printable ASCII bytes (MoldUDP64 pads with spaces).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Session([u8; 10]);

impl Session {
    /// The session of `bytes` (exactly 10, printable ASCII), if it is one.
    pub fn new(bytes: &[u8]) -> Option<Session> {
        let name: [u8; 10] = bytes.try_into().ok()?;
        name.iter()
            .all(|b| (0x20..0x7f).contains(b))
            .then_some(Session(name))
    }

    /// The 10 bytes.
    pub fn as_bytes(&self) -> &[u8; 10] {
        &self.0
    }

    /// The name without its padding spaces.
    pub fn as_str(&self) -> &str {
        // Printable ASCII, checked by `new`.
        std::str::from_utf8(&self.0).unwrap_or("").trim_end()
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Session({:?})", self.as_str())
    }
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// This many messages.
    Messages(u16),
    /// No message; its sequence is the next one the sender will use.
    Heartbeat,
    /// The session is over; its sequence is one past the last message.
    EndOfSession,
}

/// A decoded packet.
#[derive(Debug, Clone, Copy)]
pub struct Downstream<'a> {
    /// Its session.
    pub session: Session,
    /// Sequence number of its first message (the next expected, for a
    /// heartbeat or end of session).
    pub seq: u64,
    /// Messages, heartbeat or end of session.
    pub kind: Kind,
    /// Its message blocks, already checked.
    pub blocks: Blocks<'a>,
}

impl Downstream<'_> {
    /// Sequence number of its last message; `None` without messages.
    pub fn last_seq(&self) -> Option<u64> {
        (!self.blocks.is_empty()).then(|| self.seq + u64::from(self.blocks.len()) - 1)
    }
}

/// Length-prefixed message blocks (u16 big-endian length, then the bytes)
/// whose lengths were checked against the payload when made.
#[derive(Debug, Clone, Copy)]
pub struct Blocks<'a> {
    bytes: &'a [u8],
    count: u16,
}

impl<'a> Blocks<'a> {
    /// No blocks.
    pub fn empty() -> Blocks<'static> {
        Blocks {
            bytes: &[],
            count: 0,
        }
    }

    /// `count` blocks filling `bytes` exactly.
    ///
    /// # Errors
    /// [`Malformed::CountBeyondPayload`] when the bytes end before `count`
    /// blocks, [`Malformed::TruncatedBlock`] when a block's length runs past
    /// them, [`Malformed::TrailingBytes`] when bytes are left after them.
    pub fn validate(bytes: &'a [u8], count: u16) -> Result<Blocks<'a>, Malformed> {
        let mut at = 0usize;
        for _ in 0..count {
            let Some(len) = bytes.get(at..at + 2) else {
                return Err(if at == bytes.len() {
                    Malformed::CountBeyondPayload
                } else {
                    Malformed::TruncatedBlock
                });
            };
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            at += 2 + len;
            if at > bytes.len() {
                return Err(Malformed::TruncatedBlock);
            }
        }
        if at != bytes.len() {
            return Err(Malformed::TrailingBytes);
        }
        Ok(Blocks { bytes, count })
    }

    /// Number of blocks.
    pub fn len(&self) -> u16 {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The messages, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut rest = self.bytes;
        (0..self.count).map(move |_| {
            // Checked by `validate`: a length and its bytes are there.
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let (msg, after) = rest[2..].split_at(len);
            rest = after;
            msg
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_printable_ascii_of_ten_bytes() {
        assert_eq!(Session::new(b"ABC       ").unwrap().as_str(), "ABC");
        assert!(Session::new(b"ABC").is_none());
        assert!(Session::new(b"ABC\0\0\0\0\0\0\0").is_none());
        assert_eq!(Malformed::ALL.len(), 7);
        for (i, m) in Malformed::ALL.iter().enumerate() {
            assert_eq!(m.index(), i);
        }
    }
}
