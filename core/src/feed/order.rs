//! In-sequence delivery of a feed's merged stream to its consumers.
//!
//! The merged stream takes each message the moment a line brings it. When
//! line A loses a packet that line B brings a little later (the lines race
//! on different queues), messages past the hole arrive first: a consumer
//! building a book wants them after it. The [`Orderer`] holds messages past
//! a hole until the hole is filled or declared a gap (within the A/B
//! window), then hands them on in sequence, the gap notice in its place.
//! Messages that fill a declared gap later (a retransmission) come when they
//! arrive, after their `recovered` notice's place. Holding is bounded: past
//! [`MAX_HELD`] messages or [`MAX_HELD_BYTES`], the hold is released in
//! order (counted in `released_early`) as if the hole were a gap.

use std::collections::BTreeMap;

use super::consumer::Message;
use super::sequence::{Event, Gap, Origin};
use super::Session;

/// Messages held past a hole at most.
pub const MAX_HELD: usize = 65_536;
/// Bytes of messages held past a hole at most.
pub const MAX_HELD_BYTES: usize = 16 << 20;

/// Where ordered messages and notices go.
pub trait Deliver {
    /// A message, in sequence.
    fn message(&mut self, message: &Message<'_>);
    /// A notice, in its place among the messages.
    fn event(&mut self, event: &Event);
}

/// A message held past a hole, its bytes copied into the arena (its frame
/// goes back to the NIC).
#[derive(Debug, Clone, Copy)]
struct Held {
    rx_ns: u64,
    origin: Origin,
    at: usize,
    len: usize,
}

/// Puts one feed's merged stream in sequence.
#[derive(Debug, Default)]
pub struct Orderer {
    session: Option<Session>,
    /// The next message to hand on (`None` until the session's start).
    next: Option<u64>,
    held: BTreeMap<u64, Held>,
    /// Bytes of the held messages, appended; emptied when nothing is held
    /// (one allocation reused, not one per message).
    arena: Vec<u8>,
    /// Bytes of messages held now.
    held_bytes: usize,
    /// Declared gaps not handed on yet, by first message.
    skipped: BTreeMap<u64, Gap>,
    /// Other notices that came while messages were held: after them.
    trailing: Vec<Event>,
    /// Messages handed on before their hole was filled or declared,
    /// because the hold reached its bound.
    pub released_early: u64,
    /// With recovery (`--rerequest`): how long after it opened a declared
    /// gap is waited for (0: declared gaps are passed at once).
    pub hold_for_ns: u64,
    /// Declared gaps waited for, by first message.
    awaiting: BTreeMap<u64, Gap>,
}

impl Orderer {
    /// Takes a message of the merged stream.
    #[inline]
    pub fn message(&mut self, m: &Message<'_>, out: &mut impl Deliver) {
        let next = match self.next {
            Some(next) if self.session == Some(m.session) => next,
            _ => {
                // No start seen (a file read from the middle): start here.
                self.release_all(out);
                self.session = Some(m.session);
                self.next = Some(m.seq + 1);
                out.message(m);
                return;
            }
        };
        if m.seq == next && self.held.is_empty() && self.skipped.is_empty() {
            self.next = Some(next + 1);
            out.message(m);
            return;
        }
        if m.seq < next {
            // Fills a declared gap: late, but not lost.
            out.message(m);
            return;
        }
        self.held_bytes += m.bytes.len();
        let at = self.arena.len();
        self.arena.extend_from_slice(m.bytes);
        self.held.insert(
            m.seq,
            Held {
                rx_ns: m.rx_ns,
                origin: m.origin,
                at,
                len: m.bytes.len(),
            },
        );
        self.release(out);
        // The arena holds the bytes of messages handed on too until the hold
        // empties: bounding it bounds both.
        if self.held.len() > MAX_HELD || self.arena.len() > MAX_HELD_BYTES {
            self.released_early += self.held.len() as u64;
            self.release_all(out);
        }
    }

    /// Takes a notice of the merged stream.
    pub fn event(&mut self, event: &Event, out: &mut impl Deliver) {
        match *event {
            Event::SessionStart { session, seq, .. } => {
                self.release_all(out);
                self.session = Some(session);
                self.next = Some(seq);
                out.event(event);
            }
            Event::Gap(g) if self.session == Some(g.session) && self.next.is_some() => {
                if self.hold_for_ns > 0 {
                    // Its messages may still come from the retransmission
                    // server: they will go on in their place.
                    self.awaiting.insert(g.from, g);
                } else {
                    self.skipped.insert(g.from, g);
                    self.release(out);
                }
            }
            _ if self.held.is_empty() => out.event(event),
            _ => self.trailing.push(*event),
        }
    }

    /// Gives up waiting for the awaited gaps opened `hold_for_ns` before
    /// `now_ns` (what did not come is a gap, said in its place).
    pub fn expire(&mut self, now_ns: u64, out: &mut impl Deliver) {
        let due: Vec<u64> = self
            .awaiting
            .iter()
            .filter(|(_, g)| now_ns.saturating_sub(g.opened_ns) >= self.hold_for_ns)
            .map(|(&from, _)| from)
            .collect();
        for from in due {
            self.stop_waiting(from);
        }
        self.release(out);
    }

    /// Gives up waiting for messages `from..=to` of `session` (the
    /// retransmission server did not bring them).
    pub fn give_up(&mut self, session: Session, from: u64, to: u64, out: &mut impl Deliver) {
        if self.session != Some(session) {
            return;
        }
        let due: Vec<u64> = self
            .awaiting
            .iter()
            .filter(|(&f, g)| f <= to && g.to >= from)
            .map(|(&f, _)| f)
            .collect();
        for f in due {
            self.stop_waiting(f);
        }
        self.release(out);
    }

    /// Moves an awaited gap, less what already came, to the passed ones.
    fn stop_waiting(&mut self, from: u64) {
        let Some(g) = self.awaiting.remove(&from) else {
            return;
        };
        let mut cursor = g.from.max(self.next.unwrap_or(0));
        let came: Vec<u64> = self.held.range(cursor..=g.to).map(|(&k, _)| k).collect();
        for k in came {
            if k > cursor {
                self.skipped.insert(
                    cursor,
                    Gap {
                        from: cursor,
                        to: k - 1,
                        ..g
                    },
                );
            }
            cursor = k + 1;
        }
        if cursor <= g.to {
            self.skipped.insert(cursor, Gap { from: cursor, ..g });
        }
    }

    /// Hands on what is in sequence now: gap notices in their place, the
    /// messages after them.
    fn release(&mut self, out: &mut impl Deliver) {
        while let Some(next) = self.next {
            if let Some(entry) = self.skipped.first_entry() {
                if *entry.key() <= next {
                    let g = entry.remove();
                    out.event(&Event::Gap(g));
                    self.next = Some(next.max(g.to + 1));
                    continue;
                }
            }
            let Some(h) = self.held.remove(&next) else {
                break;
            };
            self.held_bytes -= h.len;
            self.next = Some(next + 1);
            self.hand_on(next, &h, out);
        }
        // Awaited gaps the stream has passed: recovered.
        if let Some(next) = self.next {
            self.awaiting.retain(|_, g| g.to >= next);
        }
        if self.held.is_empty() {
            self.arena.clear();
            for e in std::mem::take(&mut self.trailing) {
                out.event(&e);
            }
        }
    }

    /// Hands on everything held, in order, holes or not.
    fn release_all(&mut self, out: &mut impl Deliver) {
        let awaited: Vec<u64> = self.awaiting.keys().copied().collect();
        for from in awaited {
            self.stop_waiting(from);
        }
        let held = std::mem::take(&mut self.held);
        self.held_bytes = 0;
        for (seq, h) in &held {
            while let Some(entry) = self.skipped.first_entry() {
                if entry.key() > seq {
                    break;
                }
                out.event(&Event::Gap(entry.remove()));
            }
            self.hand_on(*seq, h, out);
            self.next = Some(self.next.map_or(seq + 1, |n| n.max(seq + 1)));
        }
        self.arena.clear();
        self.release(out);
        for g in std::mem::take(&mut self.skipped).into_values() {
            out.event(&Event::Gap(g));
        }
        for e in std::mem::take(&mut self.trailing) {
            out.event(&e);
        }
    }

    fn hand_on(&self, seq: u64, h: &Held, out: &mut impl Deliver) {
        let bytes = &self.arena[h.at..h.at + h.len];
        out.message(&Message {
            session: self.session.unwrap_or_default(),
            seq,
            rx_ns: h.rx_ns,
            origin: h.origin,
            bytes,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what is handed on: `m7` for message 7, `gap 3-4`, `end`.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl Deliver for Log {
        fn message(&mut self, m: &Message<'_>) {
            assert_eq!(m.bytes, m.seq.to_be_bytes());
            self.0.push(format!("m{}", m.seq));
        }
        fn event(&mut self, e: &Event) {
            self.0.push(match e {
                Event::Gap(g) => format!("gap {}-{}", g.from, g.to),
                Event::SessionEnd { .. } => "end".into(),
                other => format!("{other:?}"),
            });
        }
    }

    fn session() -> Session {
        Session::new(b"SESSION001").unwrap()
    }

    enum In {
        M(u64),
        Gap(u64, u64),
        End,
    }

    fn run(inputs: &[In]) -> (Vec<String>, Orderer) {
        let mut o = Orderer::default();
        let mut log = Log::default();
        o.event(
            &Event::SessionStart {
                session: session(),
                seq: 1,
                ts_ns: 0,
            },
            &mut log,
        );
        log.0.clear();
        for i in inputs {
            match *i {
                In::M(seq) => {
                    let bytes = seq.to_be_bytes();
                    let m = Message {
                        session: session(),
                        seq,
                        rx_ns: seq,
                        origin: Origin::Line(0),
                        bytes: &bytes,
                    };
                    o.message(&m, &mut log);
                }
                In::Gap(from, to) => o.event(
                    &Event::Gap(Gap {
                        session: session(),
                        from,
                        to,
                        opened_ns: 0,
                    }),
                    &mut log,
                ),
                In::End => o.event(
                    &Event::SessionEnd {
                        session: session(),
                        next: 9,
                        ts_ns: 0,
                    },
                    &mut log,
                ),
            }
        }
        (log.0, o)
    }

    #[test]
    fn messages_past_a_hole_wait_for_the_other_line() {
        use In::*;
        let (log, o) = run(&[M(1), M(4), M(5), End, M(2), M(3), M(6)]);
        assert_eq!(log, ["m1", "m2", "m3", "m4", "m5", "end", "m6"]);
        assert_eq!(o.released_early, 0);
    }

    #[test]
    fn a_declared_gap_releases_the_hold_with_its_notice_in_place() {
        use In::*;
        let (log, _) = run(&[M(1), M(4), M(6), Gap(2, 3), M(2), Gap(5, 5), M(7)]);
        assert_eq!(log, ["m1", "gap 2-3", "m4", "m2", "gap 5-5", "m6", "m7"]);
    }

    #[test]
    fn a_single_line_gap_is_declared_before_the_message_after_it() {
        use In::*;
        let (log, _) = run(&[M(1), Gap(2, 4), M(5), M(6), M(3)]);
        assert_eq!(log, ["m1", "gap 2-4", "m5", "m6", "m3"]);
    }

    #[test]
    fn with_recovery_a_declared_gap_is_waited_for_and_only_what_never_came_is_a_gap() {
        let mut o = Orderer {
            hold_for_ns: 1_000,
            ..Orderer::default()
        };
        let mut log = Log::default();
        let s = session();
        o.event(
            &Event::SessionStart {
                session: s,
                seq: 1,
                ts_ns: 0,
            },
            &mut log,
        );
        let msg = |o: &mut Orderer, log: &mut Log, seq: u64| {
            let bytes = seq.to_be_bytes();
            let m = Message {
                session: s,
                seq,
                rx_ns: 0,
                origin: Origin::Retransmission,
                bytes: &bytes,
            };
            o.message(&m, log);
        };
        let gap = |from, to| {
            Event::Gap(Gap {
                session: s,
                from,
                to,
                opened_ns: 100,
            })
        };
        msg(&mut o, &mut log, 1);
        msg(&mut o, &mut log, 7);
        o.event(&gap(2, 6), &mut log);
        o.event(&gap(9, 9), &mut log);
        msg(&mut o, &mut log, 8);
        msg(&mut o, &mut log, 10);
        // The server brings 2, 3 and 5.
        for seq in [3, 2, 5] {
            msg(&mut o, &mut log, seq);
        }
        o.expire(1_099, &mut log);
        assert_eq!(log.0[1..], ["m1", "m2", "m3"]);
        // 4 and 6 never come; neither does 9: gaps in their place, then on.
        o.expire(1_100, &mut log);
        assert_eq!(
            log.0[1..],
            ["m1", "m2", "m3", "gap 4-4", "m5", "gap 6-6", "m7", "m8", "gap 9-9", "m10"]
        );
        assert!(o.held.is_empty() && o.awaiting.is_empty() && o.skipped.is_empty());
        // A given-up request passes its range at once.
        o.event(&gap(11, 12), &mut log);
        msg(&mut o, &mut log, 13);
        o.give_up(s, 11, 12, &mut log);
        assert_eq!(log.0[11..], ["gap 11-12", "m13"]);
    }

    #[test]
    fn the_hold_is_bounded() {
        let mut inputs = vec![In::M(1)];
        inputs.extend((3..=MAX_HELD as u64 + 3).map(In::M));
        let (log, o) = run(&inputs);
        assert_eq!(o.released_early, MAX_HELD as u64 + 1);
        assert_eq!(log.len(), MAX_HELD + 2);
        assert_eq!((log[1].as_str(), log[2].as_str()), ("m3", "m4"));
        assert!(o.held.is_empty() && o.held_bytes == 0);
    }
}
