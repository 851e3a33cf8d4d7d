//! Sequence state of one feed (or one line of it): which messages are new,
//! which are duplicates, which are missing, and when a missing range is
//! filled. Pure: every time is passed in.
//!
//! Messages are numbered per session. The first packet of a session sets the
//! starting point (a tap that joins mid-session misses nothing before it).
//! A packet whose first message lies past the next expected opens a gap for
//! the messages between; one that brings messages from an open gap fills
//! them (recovered); anything else below the next expected is a duplicate.
//! Heartbeats and the end-of-session packet name the next expected message,
//! so a gap at the end of a burst shows without waiting for the next message.
//!
//! With `confirm_after_ns` > 0 (A/B arbitration: the merged stream), a new
//! gap is first pending: if another line fills it within that time it was
//! never a gap of the feed; otherwise it is declared then ([`Sequencer::tick`]).

use std::collections::{BTreeMap, BTreeSet};

use super::{Downstream, Kind, Malformed, Session};

/// Where a packet came from: line A (0), line B (1), or a retransmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A feed line (0 = A, 1 = B; a single-line feed is line 0).
    Line(u8),
    /// An answer of the retransmission server.
    Retransmission,
}

/// A declared gap: messages `from..=to` of `session` missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The session.
    pub session: Session,
    /// First missing message.
    pub from: u64,
    /// Last missing message.
    pub to: u64,
    /// When the message after it (or the heartbeat naming it) arrived.
    pub opened_ns: u64,
}

impl Gap {
    /// Messages in it.
    pub fn missing(&self) -> u64 {
        self.to - self.from + 1
    }
}

/// Something the user should see the moment it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A gap was declared.
    Gap(Gap),
    /// Messages `from..=to` of a declared gap arrived.
    Recovered {
        /// The session.
        session: Session,
        /// First message recovered.
        from: u64,
        /// Last message recovered.
        to: u64,
        /// How long they were missing.
        open_ns: u64,
        /// Who brought them.
        origin: Origin,
        /// When.
        ts_ns: u64,
    },
    /// A session began (the first packet seen, or a new session name).
    SessionStart {
        /// The new session.
        session: Session,
        /// Its first sequence number seen.
        seq: u64,
        /// When.
        ts_ns: u64,
    },
    /// The end-of-session packet arrived.
    SessionEnd {
        /// The session.
        session: Session,
        /// One past its last message.
        next: u64,
        /// When.
        ts_ns: u64,
    },
    /// A line brought no packet (not even a heartbeat) for the configured time.
    LineSilent {
        /// The line (0 = A or a single line, 1 = B).
        line: u8,
        /// Its last packet (or the start, if it never brought one).
        since_ns: u64,
        /// When the silence was noticed.
        ts_ns: u64,
    },
    /// A silent line brought a packet again.
    LineBack {
        /// The line.
        line: u8,
        /// How long it was quiet.
        silent_ns: u64,
        /// When its packet arrived.
        ts_ns: u64,
    },
}

/// What a sequencer hands on: the new messages, in the order they arrive,
/// and the events.
pub trait FeedOut<'a> {
    /// A message seen for the first time.
    fn message(&mut self, session: Session, seq: u64, message: &'a [u8], origin: Origin);
    /// An event.
    fn event(&mut self, event: Event);
}

/// One session's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStats {
    /// The session.
    pub session: Session,
    /// Packets of this session (messages, heartbeats, end of session).
    pub packets: u64,
    /// New messages (each counted once, however many copies arrived).
    pub messages: u64,
    /// Their bytes (message blocks, without length prefixes).
    pub bytes: u64,
    /// Heartbeats.
    pub heartbeats: u64,
    /// Copies of messages already taken.
    pub duplicates: u64,
    /// Gaps declared.
    pub gaps: u64,
    /// Messages missing now (in declared gaps still open).
    pub missing: u64,
    /// Messages of declared gaps that arrived later.
    pub recovered: u64,
    /// Messages given up when more gaps were open than the sequencer keeps.
    pub abandoned: u64,
    /// First sequence number seen.
    pub first_seq: u64,
    /// Highest message sequence number seen (`None` before any message).
    pub last_seq: Option<u64>,
    /// The next message expected.
    pub next_expected: u64,
    /// Whether the end-of-session packet arrived.
    pub end_of_session: bool,
}

impl SessionStats {
    /// Counters of no session (an empty name): a feed that saw nothing valid.
    pub fn empty() -> SessionStats {
        SessionStats::new(Session(*b"          "), 0)
    }

    fn new(session: Session, seq: u64) -> SessionStats {
        SessionStats {
            session,
            packets: 0,
            messages: 0,
            bytes: 0,
            heartbeats: 0,
            duplicates: 0,
            gaps: 0,
            missing: 0,
            recovered: 0,
            abandoned: 0,
            first_seq: seq,
            last_seq: None,
            next_expected: seq,
            end_of_session: false,
        }
    }
}

/// An open range of missing messages.
#[derive(Debug, Clone, Copy)]
struct Open {
    to: u64,
    opened_ns: u64,
    declared: bool,
}

/// Default bound on the open gaps kept per feed.
pub const DEFAULT_MAX_OPEN_GAPS: usize = 65_536;
/// Earlier sessions whose counters are kept.
const KEPT_SESSIONS: usize = 16;

/// The sequence state of one feed or line.
#[derive(Debug, Clone)]
pub struct Sequencer {
    confirm_after_ns: u64,
    max_open_gaps: usize,
    current: Option<SessionStats>,
    earlier: Vec<SessionStats>,
    /// Open ranges of the current session, by first missing message.
    open: BTreeMap<u64, Open>,
    /// The pending (undeclared) ones among them by when they opened, so that
    /// declaring them costs nothing per packet however many are open.
    pending: BTreeSet<(u64, u64)>,
    /// Packets refused, by [`Malformed::index`].
    pub malformed: [u64; Malformed::ALL.len()],
    /// Times the session name changed.
    pub session_changes: u64,
    /// Packets of a session that already ended or was replaced.
    pub stale_packets: u64,
}

impl Sequencer {
    /// A sequencer that declares gaps at once (`confirm_after_ns` 0) or
    /// once they stay open that long.
    pub fn new(confirm_after_ns: u64) -> Sequencer {
        Sequencer::with_bound(confirm_after_ns, DEFAULT_MAX_OPEN_GAPS)
    }

    /// As [`Sequencer::new`], keeping at most `max_open_gaps` open ranges
    /// (the oldest is given up first, counted in `abandoned`).
    pub fn with_bound(confirm_after_ns: u64, max_open_gaps: usize) -> Sequencer {
        Sequencer {
            confirm_after_ns,
            max_open_gaps: max_open_gaps.max(1),
            current: None,
            earlier: Vec::new(),
            open: BTreeMap::new(),
            pending: BTreeSet::new(),
            malformed: [0; Malformed::ALL.len()],
            session_changes: 0,
            stale_packets: 0,
        }
    }

    /// The current session's counters.
    pub fn current(&self) -> Option<&SessionStats> {
        self.current.as_ref()
    }

    /// Every session's counters, oldest first (at most the last 16 earlier
    /// ones and the current).
    pub fn sessions(&self) -> impl Iterator<Item = &SessionStats> {
        self.earlier.iter().chain(self.current.as_ref())
    }

    /// The open ranges of the current session: `(from, to, declared)`.
    pub fn open_gaps(&self) -> impl Iterator<Item = (u64, u64, bool)> + '_ {
        self.open.iter().map(|(&from, o)| (from, o.to, o.declared))
    }

    /// The open ranges with when each opened: `(from, to, declared, opened_ns)`.
    pub fn open_gaps_since(&self) -> impl Iterator<Item = (u64, u64, bool, u64)> + '_ {
        self.open
            .iter()
            .map(|(&from, o)| (from, o.to, o.declared, o.opened_ns))
    }

    /// Counts a packet that did not decode.
    pub fn refuse(&mut self, why: Malformed) {
        self.malformed[why.index()] += 1;
    }

    /// Takes one decoded packet received at `ts_ns` from `origin`: new
    /// messages and events go to `out`.
    pub fn packet<'a>(
        &mut self,
        d: &Downstream<'a>,
        ts_ns: u64,
        origin: Origin,
        out: &mut impl FeedOut<'a>,
    ) {
        if !self.enter_session(d, ts_ns, out) {
            self.stale_packets += 1;
            return;
        }
        self.tick(ts_ns, out);
        let session = d.session;
        let stats = self.current.as_mut().expect("entered");
        stats.packets += 1;
        match d.kind {
            Kind::Heartbeat | Kind::EndOfSession => {
                if d.kind == Kind::Heartbeat {
                    stats.heartbeats += 1;
                }
                if d.seq > stats.next_expected {
                    let from = stats.next_expected;
                    stats.next_expected = d.seq;
                    self.open_range(from, d.seq - 1, ts_ns, out);
                }
                let stats = self.current.as_mut().expect("entered");
                // Said once, however many lines (or repeats) bring it.
                if d.kind == Kind::EndOfSession && !stats.end_of_session {
                    stats.end_of_session = true;
                    out.event(Event::SessionEnd {
                        session,
                        next: d.seq,
                        ts_ns,
                    });
                }
            }
            Kind::Messages(_) => self.messages(d, ts_ns, origin, out),
        }
    }

    /// Declares the pending gaps that stayed open `confirm_after_ns`.
    pub fn tick<'x>(&mut self, now_ns: u64, out: &mut impl FeedOut<'x>) {
        let Some(stats) = self.current.as_mut() else {
            return;
        };
        while let Some(&(opened_ns, from)) = self.pending.first() {
            if now_ns.saturating_sub(opened_ns) < self.confirm_after_ns {
                break;
            }
            self.pending.pop_first();
            let Some(o) = self.open.get_mut(&from) else {
                continue;
            };
            o.declared = true;
            let gap = Gap {
                session: stats.session,
                from,
                to: o.to,
                opened_ns: o.opened_ns,
            };
            stats.gaps += 1;
            stats.missing += gap.missing();
            out.event(Event::Gap(gap));
        }
    }

    /// Makes `d`'s session the current one; false for a stale packet.
    fn enter_session<'x>(
        &mut self,
        d: &Downstream<'_>,
        ts_ns: u64,
        out: &mut impl FeedOut<'x>,
    ) -> bool {
        match &self.current {
            Some(s) if s.session == d.session => return true,
            _ if self.earlier.iter().any(|s| s.session == d.session) => return false,
            Some(_) => self.session_changes += 1,
            None => {}
        }
        if let Some(old) = self.current.take() {
            if self.earlier.len() == KEPT_SESSIONS {
                self.earlier.remove(0);
            }
            self.earlier.push(old);
        }
        self.open.clear();
        self.pending.clear();
        self.current = Some(SessionStats::new(d.session, d.seq));
        out.event(Event::SessionStart {
            session: d.session,
            seq: d.seq,
            ts_ns,
        });
        true
    }

    fn messages<'a>(
        &mut self,
        d: &Downstream<'a>,
        ts_ns: u64,
        origin: Origin,
        out: &mut impl FeedOut<'a>,
    ) {
        let session = d.session;
        let next = self.current.as_ref().expect("entered").next_expected;
        let last = d.seq + u64::from(d.blocks.len()) - 1;
        // A copy of messages all taken already (the other line's, mostly):
        // counted without looking at them.
        let fills_nothing = self
            .open
            .range(..=last)
            .next_back()
            .is_none_or(|(_, o)| o.to < d.seq);
        if last < next && fills_nothing {
            let stats = self.current.as_mut().expect("entered");
            stats.duplicates += u64::from(d.blocks.len());
            return;
        }
        if d.seq == next {
            // In order, the usual case: all new (every open range is below
            // the next expected, so none can be filled here).
            let mut bytes = 0;
            for (i, msg) in d.blocks.iter().enumerate() {
                bytes += msg.len() as u64;
                out.message(session, d.seq + i as u64, msg, origin);
            }
            let stats = self.current.as_mut().expect("entered");
            stats.messages += u64::from(d.blocks.len());
            stats.bytes += bytes;
            stats.next_expected = last + 1;
            stats.last_seq = Some(stats.last_seq.map_or(last, |l| l.max(last)));
            return;
        }
        if d.seq > next {
            self.open_range(next, d.seq - 1, ts_ns, out);
            self.current.as_mut().expect("entered").next_expected = d.seq;
        }
        let mut run: Option<Run> = None;
        for (i, msg) in d.blocks.iter().enumerate() {
            let seq = d.seq + i as u64;
            let stats = self.current.as_mut().expect("entered");
            if seq >= stats.next_expected {
                stats.next_expected = seq + 1;
            } else if let Some(filled) = fill(&mut self.open, seq) {
                if !filled.declared {
                    // The pending range's pieces stay pending, as old as it.
                    self.pending.remove(&(filled.opened_ns, filled.from));
                    for piece in filled.pieces.into_iter().flatten() {
                        self.pending.insert((filled.opened_ns, piece));
                    }
                } else {
                    let stats = self.current.as_mut().expect("entered");
                    stats.recovered += 1;
                    stats.missing -= 1;
                    match &mut run {
                        Some(r) if r.to + 1 == seq && r.opened_ns == filled.opened_ns => r.to = seq,
                        _ => {
                            flush(run.take(), session, origin, ts_ns, out);
                            run = Some(Run {
                                from: seq,
                                to: seq,
                                opened_ns: filled.opened_ns,
                            });
                        }
                    }
                }
            } else {
                stats.duplicates += 1;
                continue;
            }
            let stats = self.current.as_mut().expect("entered");
            stats.messages += 1;
            stats.bytes += msg.len() as u64;
            stats.last_seq = Some(stats.last_seq.map_or(seq, |l| l.max(seq)));
            out.message(session, seq, msg, origin);
        }
        flush(run, session, origin, ts_ns, out);
    }

    /// Opens `from..=to` as missing: declared at once, or pending.
    fn open_range<'x>(&mut self, from: u64, to: u64, ts_ns: u64, out: &mut impl FeedOut<'x>) {
        let declared = self.confirm_after_ns == 0;
        self.open.insert(
            from,
            Open {
                to,
                opened_ns: ts_ns,
                declared,
            },
        );
        let stats = self.current.as_mut().expect("entered");
        if declared {
            let gap = Gap {
                session: stats.session,
                from,
                to,
                opened_ns: ts_ns,
            };
            stats.gaps += 1;
            stats.missing += gap.missing();
            out.event(Event::Gap(gap));
        } else {
            self.pending.insert((ts_ns, from));
        }
        while self.open.len() > self.max_open_gaps {
            let (from, o) = self.open.pop_first().expect("not empty");
            let len = o.to - from + 1;
            if o.declared {
                stats.missing -= len;
                stats.abandoned += len;
            } else {
                self.pending.remove(&(o.opened_ns, from));
            }
        }
    }
}

/// A run of consecutive recovered messages of one gap, reported as one event.
struct Run {
    from: u64,
    to: u64,
    opened_ns: u64,
}

fn flush<'x>(
    run: Option<Run>,
    session: Session,
    origin: Origin,
    ts_ns: u64,
    out: &mut impl FeedOut<'x>,
) {
    if let Some(r) = run {
        out.event(Event::Recovered {
            session,
            from: r.from,
            to: r.to,
            open_ns: ts_ns.saturating_sub(r.opened_ns),
            origin,
            ts_ns,
        });
    }
}

/// What filling one message of an open range found.
struct Filled {
    /// The range's first message.
    from: u64,
    declared: bool,
    opened_ns: u64,
    /// The first messages of the ranges left of it (before and after it).
    pieces: [Option<u64>; 2],
}

/// Removes `seq` from the open range holding it, if one does.
fn fill(open: &mut BTreeMap<u64, Open>, seq: u64) -> Option<Filled> {
    let (&from, &o) = open.range(..=seq).next_back()?;
    if o.to < seq {
        return None;
    }
    open.remove(&from);
    if from < seq {
        open.insert(from, Open { to: seq - 1, ..o });
    }
    if seq < o.to {
        open.insert(seq + 1, o);
    }
    Some(Filled {
        from,
        declared: o.declared,
        opened_ns: o.opened_ns,
        pieces: [
            (from < seq).then_some(from),
            (seq < o.to).then_some(seq + 1),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::mold;
    use proptest::prelude::*;

    #[derive(Default)]
    struct Seen {
        messages: Vec<(u64, Vec<u8>, Origin)>,
        events: Vec<Event>,
    }

    impl<'a> FeedOut<'a> for Seen {
        fn message(&mut self, _: Session, seq: u64, message: &'a [u8], origin: Origin) {
            self.messages.push((seq, message.to_vec(), origin));
        }
        fn event(&mut self, event: Event) {
            self.events.push(event);
        }
    }

    impl Seen {
        fn seqs(&self) -> Vec<u64> {
            self.messages.iter().map(|m| m.0).collect()
        }
        fn gaps(&self) -> Vec<(u64, u64)> {
            self.events
                .iter()
                .filter_map(|e| match e {
                    Event::Gap(g) => Some((g.from, g.to)),
                    _ => None,
                })
                .collect()
        }
        fn recovered(&self) -> Vec<(u64, u64, u64, Origin)> {
            self.events
                .iter()
                .filter_map(|e| match *e {
                    Event::Recovered {
                        from,
                        to,
                        open_ns,
                        origin,
                        ..
                    } => Some((from, to, open_ns, origin)),
                    _ => None,
                })
                .collect()
        }
    }

    fn s(name: &[u8; 10]) -> Session {
        Session::new(name).unwrap()
    }

    /// A packet of `n` one-byte messages (each its sequence's low byte) from `seq`.
    fn packet(session: &Session, seq: u64, n: u64) -> Vec<u8> {
        let msgs: Vec<[u8; 1]> = (seq..seq + n).map(|q| [q as u8]).collect();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| &m[..]).collect();
        mold::encode(session, seq, &refs)
    }

    fn feed(q: &mut Sequencer, out: &mut Seen, bytes: &[u8], ts: u64, origin: Origin) {
        match mold::decode(bytes) {
            Ok(d) => {
                // The messages borrow `bytes`; `Seen` copies them.
                let mut local = Seen::default();
                q.packet(&d, ts, origin, &mut local);
                out.messages.extend(local.messages);
                out.events.extend(local.events);
            }
            Err(why) => q.refuse(why),
        }
    }

    const A: Origin = Origin::Line(0);
    const B: Origin = Origin::Line(1);

    #[test]
    fn in_order_messages_pass_once_each() {
        let ses = s(b"SESSION001");
        let (mut q, mut out) = (Sequencer::new(0), Seen::default());
        feed(&mut q, &mut out, &packet(&ses, 10, 3), 1, A);
        feed(&mut q, &mut out, &packet(&ses, 13, 2), 2, A);
        assert_eq!(out.seqs(), [10, 11, 12, 13, 14]);
        assert_eq!(out.messages[0].1, [10]);
        let st = q.current().unwrap();
        assert_eq!(
            (st.first_seq, st.last_seq, st.next_expected),
            (10, Some(14), 15)
        );
        assert_eq!(
            (st.packets, st.messages, st.bytes, st.gaps, st.duplicates),
            (2, 5, 5, 0, 0)
        );
        assert!(matches!(out.events[0], Event::SessionStart { seq: 10, .. }));
        assert_eq!(out.events.len(), 1);
    }

    #[test]
    fn a_gap_is_declared_with_its_range_and_recovered_with_its_age() {
        let ses = s(b"SESSION001");
        let (mut q, mut out) = (Sequencer::new(0), Seen::default());
        feed(&mut q, &mut out, &packet(&ses, 1, 4), 100, A);
        feed(&mut q, &mut out, &packet(&ses, 8, 2), 200, A);
        assert_eq!(out.gaps(), [(5, 7)]);
        assert_eq!(q.current().unwrap().missing, 3);
        // The middle first (the range splits), then the rest.
        feed(
            &mut q,
            &mut out,
            &packet(&ses, 6, 1),
            700,
            Origin::Retransmission,
        );
        assert_eq!(q.current().unwrap().missing, 2);
        feed(
            &mut q,
            &mut out,
            &packet(&ses, 4, 4),
            900,
            Origin::Retransmission,
        );
        assert_eq!(out.seqs(), [1, 2, 3, 4, 8, 9, 6, 5, 7]);
        assert_eq!(
            out.recovered(),
            [
                (6, 6, 500, Origin::Retransmission),
                (5, 5, 700, Origin::Retransmission),
                (7, 7, 700, Origin::Retransmission)
            ]
        );
        let st = q.current().unwrap();
        assert_eq!(
            (st.gaps, st.missing, st.recovered, st.duplicates),
            (1, 0, 3, 2)
        );
        assert_eq!(q.open_gaps().count(), 0);
    }

    #[test]
    fn duplicates_are_counted_and_not_passed_on() {
        let ses = s(b"SESSION001");
        let (mut q, mut out) = (Sequencer::new(0), Seen::default());
        let p = packet(&ses, 1, 3);
        feed(&mut q, &mut out, &p, 1, A);
        feed(&mut q, &mut out, &p, 2, A);
        feed(&mut q, &mut out, &packet(&ses, 2, 3), 3, A);
        assert_eq!(out.seqs(), [1, 2, 3, 4]);
        assert_eq!(q.current().unwrap().duplicates, 5);
    }

    #[test]
    fn heartbeats_and_the_end_of_session_reveal_a_trailing_gap() {
        let ses = s(b"SESSION001");
        let (mut q, mut out) = (Sequencer::new(0), Seen::default());
        feed(&mut q, &mut out, &packet(&ses, 1, 2), 1, A);
        feed(&mut q, &mut out, &mold::encode_marker(&ses, 3, 0), 2, A);
        assert!(
            out.gaps().is_empty(),
            "a heartbeat naming the next expected"
        );
        feed(&mut q, &mut out, &mold::encode_marker(&ses, 5, 0), 3, A);
        assert_eq!(out.gaps(), [(3, 4)]);
        feed(
            &mut q,
            &mut out,
            &mold::encode_marker(&ses, 6, mold::END_OF_SESSION),
            4,
            A,
        );
        assert_eq!(out.gaps(), [(3, 4), (5, 5)]);
        let st = q.current().unwrap();
        assert_eq!((st.heartbeats, st.end_of_session, st.missing), (2, true, 3));
        assert!(out
            .events
            .iter()
            .any(|e| matches!(e, Event::SessionEnd { next: 6, .. })));
    }

    #[test]
    fn a_new_session_starts_afresh_and_the_old_ones_packets_are_stale() {
        let (one, two) = (s(b"SESSION001"), s(b"SESSION002"));
        let (mut q, mut out) = (Sequencer::new(0), Seen::default());
        feed(&mut q, &mut out, &packet(&one, 100, 2), 1, A);
        feed(&mut q, &mut out, &packet(&two, 1, 2), 2, A);
        feed(&mut q, &mut out, &packet(&one, 102, 2), 3, B);
        assert_eq!(out.seqs(), [100, 101, 1, 2]);
        assert_eq!((q.session_changes, q.stale_packets), (1, 1));
        let sessions: Vec<_> = q.sessions().map(|s| (s.session, s.messages)).collect();
        assert_eq!(sessions, [(one, 2), (two, 2)]);
        assert!(out.gaps().is_empty());
    }

    #[test]
    fn with_a_confirmation_time_a_gap_filled_in_time_was_never_one() {
        let ses = s(b"SESSION001");
        let (mut q, mut out) = (Sequencer::new(1_000), Seen::default());
        feed(&mut q, &mut out, &packet(&ses, 1, 2), 0, A);
        // A lost 3..4; B brings them 500 ns later: no gap of the feed.
        feed(&mut q, &mut out, &packet(&ses, 5, 1), 100, A);
        feed(&mut q, &mut out, &packet(&ses, 3, 3), 600, B);
        q.tick(5_000, &mut out);
        assert!(out.gaps().is_empty());
        assert_eq!(out.seqs(), [1, 2, 5, 3, 4]);
        assert!(
            out.recovered().is_empty(),
            "never declared, so not recovered"
        );
        // Both lost 6..7: declared once the time passes.
        feed(&mut q, &mut out, &packet(&ses, 8, 1), 10_000, A);
        q.tick(10_999, &mut out);
        assert!(out.gaps().is_empty());
        q.tick(11_000, &mut out);
        assert_eq!(out.gaps(), [(6, 7)]);
        let st = q.current().unwrap();
        assert_eq!((st.gaps, st.missing, st.duplicates), (1, 2, 1));
    }

    #[test]
    fn open_gaps_are_bounded_and_what_is_given_up_is_counted() {
        let ses = s(b"SESSION001");
        let (mut q, mut out) = (Sequencer::with_bound(0, 2), Seen::default());
        for (seq, ts) in [(1, 1), (3, 2), (5, 3), (7, 4)] {
            feed(&mut q, &mut out, &packet(&ses, seq, 1), ts, A);
        }
        assert_eq!(out.gaps(), [(2, 2), (4, 4), (6, 6)]);
        let st = q.current().unwrap();
        assert_eq!((st.missing, st.abandoned), (2, 1));
        assert_eq!(
            q.open_gaps().collect::<Vec<_>>(),
            [(4, 4, true), (6, 6, true)]
        );
        // The abandoned message is a duplicate if it comes after all.
        feed(&mut q, &mut out, &packet(&ses, 2, 1), 5, A);
        assert_eq!(q.current().unwrap().duplicates, 1);
    }

    #[test]
    fn malformed_packets_are_counted_by_reason() {
        let (mut q, mut out) = (Sequencer::new(0), Seen::default());
        feed(&mut q, &mut out, &[1, 2, 3], 1, A);
        let mut bad = packet(&s(b"SESSION001"), 1, 2);
        bad.truncate(bad.len() - 1);
        feed(&mut q, &mut out, &bad, 2, A);
        assert_eq!(q.malformed[Malformed::TooShort.index()], 1);
        assert_eq!(q.malformed[Malformed::TruncatedBlock.index()], 1);
        assert!(q.current().is_none() && out.messages.is_empty());
    }

    proptest! {
        /// Any order, loss and duplication of a session's packets: each
        /// message at or after the first one received passes exactly once,
        /// and what is missing at the end is exactly what never came.
        #[test]
        fn every_message_passes_once_and_missing_is_exact(
            sizes in proptest::collection::vec(1u64..4, 1..40),
            order in proptest::collection::vec((0usize..40, 0u8..4), 0..80),
        ) {
            let ses = s(b"SESSION001");
            let mut starts = Vec::new();
            let mut seq = 1;
            for n in &sizes {
                starts.push((seq, *n));
                seq += n;
            }
            let (mut q, mut out) = (Sequencer::new(0), Seen::default());
            let mut received = std::collections::BTreeSet::new();
            let mut first = None;
            for (i, (pick, _)) in order.iter().enumerate() {
                let (start, n) = starts[pick % starts.len()];
                feed(&mut q, &mut out, &packet(&ses, start, n), i as u64, A);
                let first = *first.get_or_insert(start);
                received.extend((start..start + n).filter(|&m| m >= first));
            }
            let delivered = out.seqs();
            let unique: std::collections::BTreeSet<u64> = delivered.iter().copied().collect();
            prop_assert_eq!(unique.len(), delivered.len(), "each message once");
            prop_assert_eq!(&unique, &received);
            if let (Some(st), Some(&max)) = (q.current(), received.iter().next_back()) {
                let never = (st.first_seq..=max).filter(|m| !received.contains(m)).count() as u64;
                prop_assert_eq!(st.missing, never);
                prop_assert_eq!(st.messages, received.len() as u64);
                let open: u64 = q.open_gaps().map(|(f, t, _)| t - f + 1).sum();
                prop_assert_eq!(open, never);
            }
        }
    }
}
