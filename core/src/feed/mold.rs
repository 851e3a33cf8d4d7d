//! MoldUDP64 (NASDAQ, "MoldUDP64 Protocol Specification" v1.00): the
//! downstream packet that carries a feed's messages over UDP, and the request
//! packet that asks a retransmission server for missed ones.
//!
//! ```text
//! downstream: session (10 ASCII) | sequence (u64 BE) | count (u16 BE) | count × [length (u16 BE) | message]
//!             count 0: heartbeat (sequence = next expected); 0xFFFF: end of session
//! request:    session (10 ASCII) | sequence (u64 BE) | count (u16 BE)
//! ```

use super::{Blocks, Downstream, Kind, Malformed, Protocol, Session};

/// Bytes before the first message block.
pub const HEADER_LEN: usize = 20;
/// The count of an end-of-session packet.
pub const END_OF_SESSION: u16 = 0xFFFF;
/// Length of a request packet.
pub const REQUEST_LEN: usize = 20;
/// The largest UDP payload a request's answer may fill (an Ethernet MTU of
/// 1500 less IPv4 and UDP headers): requests ask for no more messages than
/// fit one answer, as the specification asks of clients.
pub const MAX_ANSWER_PAYLOAD: usize = 1472;

/// MoldUDP64.
#[derive(Debug, Clone, Copy, Default)]
pub struct MoldUdp64;

impl Protocol for MoldUdp64 {
    const NAME: &'static str = "moldudp64";

    fn decode(payload: &[u8]) -> Result<Downstream<'_>, Malformed> {
        decode(payload)
    }
}

/// Decodes a downstream packet. Every length is checked before anything is
/// trusted: a packet is whole and consistent, or it is [`Malformed`].
pub fn decode(payload: &[u8]) -> Result<Downstream<'_>, Malformed> {
    let Some(header) = payload.get(..HEADER_LEN) else {
        return Err(Malformed::TooShort);
    };
    let session = Session::new(&header[..10]).ok_or(Malformed::NonAsciiSession)?;
    let seq = u64::from_be_bytes(header[10..18].try_into().expect("8 bytes"));
    let count = u16::from_be_bytes([header[18], header[19]]);
    let body = &payload[HEADER_LEN..];
    let kind = match count {
        0 => Kind::Heartbeat,
        END_OF_SESSION => Kind::EndOfSession,
        n => Kind::Messages(n),
    };
    let blocks = match kind {
        // Heartbeats and end of session carry no message blocks.
        Kind::Heartbeat | Kind::EndOfSession => {
            if !body.is_empty() {
                return Err(Malformed::TrailingBytes);
            }
            Blocks::empty()
        }
        Kind::Messages(n) => Blocks::validate(body, n)?,
    };
    if seq.checked_add(u64::from(blocks.len())).is_none() {
        return Err(Malformed::SequenceOverflow);
    }
    Ok(Downstream {
        session,
        seq,
        kind,
        blocks,
    })
}

/// A downstream packet of `messages` starting at `seq` (tests, generator).
pub fn encode(session: &Session, seq: u64, messages: &[&[u8]]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(HEADER_LEN + messages.iter().map(|m| 2 + m.len()).sum::<usize>());
    out.extend_from_slice(session.as_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(messages.len() as u16).to_be_bytes());
    for m in messages {
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

/// A heartbeat (`count` 0) or end of session (`count` 0xFFFF) naming `next`.
pub fn encode_marker(session: &Session, next: u64, count: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(session.as_bytes());
    out.extend_from_slice(&next.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out
}

/// A request for `count` messages from `seq` of `session`.
pub fn encode_request(session: &Session, seq: u64, count: u16) -> [u8; REQUEST_LEN] {
    let mut out = [0u8; REQUEST_LEN];
    out[..10].copy_from_slice(session.as_bytes());
    out[10..18].copy_from_slice(&seq.to_be_bytes());
    out[18..].copy_from_slice(&count.to_be_bytes());
    out
}

/// A request packet: session, first sequence, count.
pub fn decode_request(payload: &[u8]) -> Result<(Session, u64, u16), Malformed> {
    if payload.len() != REQUEST_LEN {
        return Err(Malformed::TooShort);
    }
    let session = Session::new(&payload[..10]).ok_or(Malformed::NonAsciiSession)?;
    let seq = u64::from_be_bytes(payload[10..18].try_into().expect("8 bytes"));
    let count = u16::from_be_bytes([payload[18], payload[19]]);
    Ok((session, seq, count))
}

/// The requests that ask for messages `from..=to`, each for no more messages
/// than an answer of `MAX_ANSWER_PAYLOAD` bytes can hold when they are
/// `typical_len` bytes long (at least 1 message per request).
pub fn split_request(from: u64, to: u64, typical_len: usize) -> impl Iterator<Item = (u64, u16)> {
    let per =
        ((MAX_ANSWER_PAYLOAD - HEADER_LEN) / (2 + typical_len.max(1))).clamp(1, 0xFFFE) as u64;
    let mut next = Some(from);
    std::iter::from_fn(move || {
        let at = next.filter(|&at| at <= to)?;
        let n = (to - at).min(per - 1) + 1;
        next = at.checked_add(n);
        Some((at, n as u16))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn session() -> Session {
        Session::new(b"20261123AB").unwrap()
    }

    #[test]
    fn a_packet_of_messages_decodes_as_written() {
        let p = encode(&session(), 41, &[b"A1234", b"", b"xyz"]);
        let d = decode(&p).unwrap();
        assert_eq!(d.session, session());
        assert_eq!(d.seq, 41);
        assert_eq!(d.kind, Kind::Messages(3));
        let msgs: Vec<&[u8]> = d.blocks.iter().collect();
        assert_eq!(msgs, [&b"A1234"[..], b"", b"xyz"]);
        assert_eq!(d.last_seq(), Some(43));
    }

    #[test]
    fn heartbeats_and_end_of_session() {
        let hb = encode_marker(&session(), 100, 0);
        let d = decode(&hb).unwrap();
        assert_eq!((d.kind, d.seq, d.blocks.len()), (Kind::Heartbeat, 100, 0));
        assert_eq!(d.last_seq(), None);
        let end = encode_marker(&session(), 100, END_OF_SESSION);
        assert_eq!(decode(&end).unwrap().kind, Kind::EndOfSession);
    }

    #[test]
    fn every_malformation_has_its_reason() {
        assert_eq!(decode(&[0u8; 19]).unwrap_err(), Malformed::TooShort);
        let mut bad_session = encode(&session(), 1, &[b"a"]);
        bad_session[3] = 0x80;
        assert_eq!(
            decode(&bad_session).unwrap_err(),
            Malformed::NonAsciiSession
        );
        // Count says 3, two blocks present.
        let mut short = encode(&session(), 1, &[b"ab", b"cd"]);
        short[19] = 3;
        assert_eq!(decode(&short).unwrap_err(), Malformed::CountBeyondPayload);
        // A block's length runs past the payload.
        let mut cut = encode(&session(), 1, &[b"abcdef"]);
        cut.truncate(cut.len() - 2);
        assert_eq!(decode(&cut).unwrap_err(), Malformed::TruncatedBlock);
        let mut trailing = encode(&session(), 1, &[b"ab"]);
        trailing.push(0);
        assert_eq!(decode(&trailing).unwrap_err(), Malformed::TrailingBytes);
        let mut hb = encode_marker(&session(), 5, 0);
        hb.push(1);
        assert_eq!(decode(&hb).unwrap_err(), Malformed::TrailingBytes);
        let wrap = encode(&session(), u64::MAX, &[b"a", b"b"]);
        assert_eq!(decode(&wrap).unwrap_err(), Malformed::SequenceOverflow);
    }

    #[test]
    fn requests_round_trip_and_split_to_fit_an_answer() {
        let r = encode_request(&session(), 7, 30);
        assert_eq!(decode_request(&r).unwrap(), (session(), 7, 30));
        // 20-byte messages: (1472 - 20) / 22 = 66 per answer.
        let parts: Vec<_> = split_request(1, 200, 20).collect();
        assert_eq!(parts, [(1, 66), (67, 66), (133, 66), (199, 2)]);
        assert_eq!(split_request(5, 5, 20).collect::<Vec<_>>(), [(5, 1)]);
        assert_eq!(split_request(u64::MAX, u64::MAX, 20).count(), 1);
    }

    proptest! {
        #[test]
        fn no_input_panics_and_what_decodes_is_consistent(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(d) = decode(&bytes) {
                let total: usize = d.blocks.iter().map(|m| 2 + m.len()).sum();
                prop_assert_eq!(HEADER_LEN + total, bytes.len());
                prop_assert_eq!(d.blocks.iter().count(), d.blocks.len() as usize);
            }
        }

        #[test]
        fn encoded_packets_decode_back(seq in 0u64..u64::MAX / 2,
                                       msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..20)) {
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            let p = encode(&session(), seq, &refs);
            let d = decode(&p).unwrap();
            prop_assert_eq!(d.seq, seq);
            let back: Vec<&[u8]> = d.blocks.iter().collect();
            prop_assert_eq!(back, refs);
        }

        #[test]
        fn damaged_packets_are_refused_or_consistent(seq in 0u64..1000, cut in 0usize..60, flip in 0usize..60, to in any::<u8>()) {
            let mut p = encode(&session(), seq, &[b"hello", b"world!", b"x"]);
            if flip < p.len() { p[flip] = to; }
            p.truncate(p.len().saturating_sub(cut % 8));
            if let Ok(d) = decode(&p) {
                let total: usize = d.blocks.iter().map(|m| 2 + m.len()).sum();
                prop_assert_eq!(HEADER_LEN + total, p.len());
            }
        }
    }
}
