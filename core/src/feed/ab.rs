//! One feed: a single line, or an A and a B line arbitrated into one stream.
//!
//! Each line keeps its own [`Sequencer`] (its own gaps, "line-only" when the
//! other line had the messages, and its own duplicates). The merged stream
//! takes the first copy of each message from whichever line brings it; its
//! gaps are pending for the arbitration window and declared only when no
//! line filled them in that time. The lead of one line over the other is
//! measured per message: when the second copy arrives, the time since the
//! first.

use hdrhistogram::Histogram;

use super::sequence::{Event, FeedOut, Origin, Sequencer};
use super::{Malformed, Protocol, Session};

/// Messages remembered for measuring the lead of one line over the other: a
/// copy arriving more than this many messages after the first is not
/// matched (4 ms of lead at 1 M messages/s; 96 KiB, so it stays in cache).
const LEAD_SLOTS: usize = 1 << 12;

/// The first arrival of a message: its sequence number, when, on which line.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    seq: u64,
    ts_ns: u64,
    line: u8,
}

const NO_ARRIVAL: Arrival = Arrival {
    seq: u64::MAX,
    ts_ns: 0,
    line: 0,
};

/// The default arbitration window: how long a message missing on one line
/// may still come on the other before it is a gap of the feed.
pub const DEFAULT_WINDOW_NS: u64 = 1_000_000;

/// One line's arbitration counters.
#[derive(Debug, Clone)]
pub struct LineStats {
    /// The line's own sequence state (its gaps are the line's alone when
    /// the feed has two lines).
    pub sequencer: Sequencer,
    /// Messages of the merged stream that this line brought first.
    pub won: u64,
    /// By how much this line was ahead when it brought a message first
    /// and the other line brought it too (ns).
    pub lead: Histogram<u64>,
}

impl LineStats {
    fn new() -> LineStats {
        LineStats {
            sequencer: Sequencer::new(0),
            won: 0,
            lead: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds"),
        }
    }
}

/// A feed and its lines.
#[derive(Debug, Clone)]
pub struct Feed {
    /// How summaries and events name it (`GROUP:PORT` or the `--ab` name).
    pub name: String,
    /// The merged stream (for a single line, the line itself).
    pub merged: Sequencer,
    /// The two lines of an A/B feed; empty for a single line.
    pub lines: Vec<LineStats>,
    /// First arrivals of the current session by sequence number, for the lead.
    first: Vec<Arrival>,
    /// The session they belong to.
    first_session: Session,
}

impl Feed {
    /// A feed on one line.
    pub fn single(name: impl Into<String>) -> Feed {
        Feed {
            name: name.into(),
            merged: Sequencer::new(0),
            lines: Vec::new(),
            first: Vec::new(),
            first_session: Session::default(),
        }
    }

    /// A feed on lines A and B, arbitrated with `window_ns`.
    pub fn ab(name: impl Into<String>, window_ns: u64) -> Feed {
        Feed {
            name: name.into(),
            merged: Sequencer::new(window_ns),
            lines: vec![LineStats::new(), LineStats::new()],
            first: vec![NO_ARRIVAL; LEAD_SLOTS],
            first_session: Session::default(),
        }
    }

    /// Whether it has an A and a B line.
    pub fn is_ab(&self) -> bool {
        !self.lines.is_empty()
    }

    /// Takes one UDP payload of `line` (0 = A, 1 = B) received at `ts_ns`:
    /// the merged stream's new messages and events go to `out`.
    pub fn packet<'a, P: Protocol>(
        &mut self,
        line: u8,
        payload: &'a [u8],
        ts_ns: u64,
        out: &mut impl FeedOut<'a>,
    ) {
        let d = match P::decode(payload) {
            Ok(d) => d,
            Err(why) => {
                self.refuse(line, why);
                return;
            }
        };
        let line = line & 1;
        if let [a, b] = self.lines.as_mut_slice() {
            if d.session != self.first_session {
                self.first_session = d.session;
                self.first.fill(NO_ARRIVAL);
            }
            let (mine, other) = if line == 0 { (a, b) } else { (b, a) };
            let mut copies = Copies {
                line,
                ts_ns,
                first: &mut self.first,
                other_lead: &mut other.lead,
                run: (0, 0),
            };
            mine.sequencer
                .packet(&d, ts_ns, Origin::Line(line), &mut copies);
            copies.flush();
        }
        let mut merged = Merged {
            line,
            ts_ns,
            first: &mut self.first,
            lines: &mut self.lines,
            out,
        };
        self.merged
            .packet(&d, ts_ns, Origin::Line(line), &mut merged);
    }

    /// Answers of the retransmission server go to the merged stream only.
    pub fn retransmission<'a, P: Protocol>(
        &mut self,
        payload: &'a [u8],
        ts_ns: u64,
        out: &mut impl FeedOut<'a>,
    ) {
        match P::decode(payload) {
            Ok(d) => self.merged.packet(&d, ts_ns, Origin::Retransmission, out),
            Err(why) => self.merged.refuse(why),
        }
    }

    /// Declares the merged stream's gaps that outlived the window (call at
    /// least every few milliseconds while the feed is quiet).
    pub fn tick<'x>(&mut self, now_ns: u64, out: &mut impl FeedOut<'x>) {
        self.merged.tick(now_ns, out);
    }

    /// Counts a packet of `line` that was not decoded (the line's, or for a
    /// single line the feed's).
    pub fn refuse(&mut self, line: u8, why: Malformed) {
        match self.lines.get_mut(usize::from(line & 1)) {
            Some(l) => l.sequencer.refuse(why),
            None => self.merged.refuse(why),
        }
    }
}

fn slot(seq: u64) -> usize {
    (seq as usize) & (LEAD_SLOTS - 1)
}

/// A line's sequencer output: a line's first copy of a message that the
/// other line brought first gives the other line's lead.
struct Copies<'f> {
    line: u8,
    ts_ns: u64,
    first: &'f mut [Arrival],
    other_lead: &'f mut Histogram<u64>,
    /// Leads not recorded yet: (value, count). The messages of a packet
    /// mostly share one, so each run of equal ones is recorded at once.
    run: (u64, u64),
}

impl Copies<'_> {
    fn flush(&mut self) {
        let (value, n) = std::mem::take(&mut self.run);
        if n > 0 {
            self.other_lead.saturating_record_n(value, n);
        }
    }
}

impl<'a> FeedOut<'a> for Copies<'_> {
    fn message(&mut self, _: Session, seq: u64, _: &'a [u8], _: Origin) {
        let first = self.first[slot(seq)];
        if first.seq == seq && first.line != self.line {
            let lead = self.ts_ns.saturating_sub(first.ts_ns).max(1);
            if self.run.0 != lead {
                self.flush();
                self.run.0 = lead;
            }
            self.run.1 += 1;
            // Matched once: the slot is spent.
            self.first[slot(seq)].seq = u64::MAX;
        }
    }

    fn event(&mut self, _: Event) {}
}

/// The merged stream's output: counts wins, remembers first arrivals and
/// passes everything on.
struct Merged<'f, 'o, O> {
    line: u8,
    ts_ns: u64,
    first: &'f mut [Arrival],
    lines: &'f mut [LineStats],
    out: &'o mut O,
}

impl<'a, O: FeedOut<'a>> FeedOut<'a> for Merged<'_, '_, O> {
    fn message(&mut self, session: Session, seq: u64, message: &'a [u8], origin: Origin) {
        if let Some(l) = self.lines.get_mut(usize::from(self.line)) {
            l.won += 1;
            self.first[slot(seq)] = Arrival {
                seq,
                ts_ns: self.ts_ns,
                line: self.line,
            };
        }
        self.out.message(session, seq, message, origin);
    }

    fn event(&mut self, event: Event) {
        self.out.event(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::{mold, MoldUdp64};

    #[derive(Default)]
    struct Seen {
        seqs: Vec<(u64, Origin)>,
        gaps: Vec<(u64, u64)>,
    }

    impl<'a> FeedOut<'a> for Seen {
        fn message(&mut self, _: Session, seq: u64, _: &'a [u8], origin: Origin) {
            self.seqs.push((seq, origin));
        }
        fn event(&mut self, event: Event) {
            if let Event::Gap(g) = event {
                self.gaps.push((g.from, g.to));
            }
        }
    }

    fn packet(seq: u64) -> Vec<u8> {
        let session = Session::new(b"20261123AB").unwrap();
        mold::encode(&session, seq, &[&[seq as u8], &[seq as u8 + 1]])
    }

    #[test]
    fn the_first_copy_wins_and_only_a_loss_on_both_lines_is_a_gap() {
        let mut feed = Feed::ab("itch", 1_000);
        let mut out = Seen::default();
        let packets: Vec<Vec<u8>> = (0..6).map(|i| packet(1 + 2 * i)).collect();
        // A loses packet 1 (msgs 3-4), B loses packet 3 (msgs 7-8); both lose 4 (9-10).
        for (i, p) in packets.iter().enumerate() {
            let t = 10_000 * i as u64;
            if i != 1 && i != 4 {
                feed.packet::<MoldUdp64>(0, p, t, &mut out);
            }
            if i != 3 && i != 4 {
                feed.packet::<MoldUdp64>(1, p, t + 300, &mut out);
            }
        }
        feed.tick(1_000_000, &mut out);
        let seqs: Vec<u64> = out.seqs.iter().map(|s| s.0).collect();
        assert_eq!(
            seqs,
            [1, 2, 3, 4, 5, 6, 7, 8, 11, 12],
            "each once, in order"
        );
        assert_eq!(out.gaps, [(9, 10)], "only what both lines lost");
        let merged = feed.merged.current().unwrap();
        assert_eq!((merged.gaps, merged.missing), (1, 2));
        let (a, b) = (&feed.lines[0], &feed.lines[1]);
        assert_eq!((a.won, b.won), (8, 2));
        assert_eq!(
            a.sequencer.current().unwrap().gaps,
            2,
            "A's own: 3-4 and 9-10"
        );
        assert_eq!(b.sequencer.current().unwrap().gaps, 1, "B's own: 7-10");
        // A led by 300 ns on every message both brought, B never led.
        assert_eq!(a.lead.len(), 6);
        assert_eq!(a.lead.max(), a.lead.min());
        assert!(a.lead.value_at_quantile(0.5).abs_diff(300) <= 1);
        assert_eq!(b.lead.len(), 0);
    }

    #[test]
    fn a_single_line_feed_declares_gaps_at_once() {
        let mut feed = Feed::single("198.18.0.1:9000");
        let mut out = Seen::default();
        feed.packet::<MoldUdp64>(0, &packet(1), 0, &mut out);
        feed.packet::<MoldUdp64>(0, &packet(5), 1, &mut out);
        assert_eq!(out.gaps, [(3, 4)]);
        feed.packet::<MoldUdp64>(0, &[0; 5], 2, &mut out);
        assert_eq!(feed.merged.malformed[Malformed::TooShort.index()], 1);
        let session = Session::new(b"20261123AB").unwrap();
        let answer = mold::encode(&session, 3, &[b"c", b"d"]);
        feed.retransmission::<MoldUdp64>(&answer, 9, &mut out);
        assert_eq!(out.seqs.last(), Some(&(4, Origin::Retransmission)));
        assert_eq!(feed.merged.current().unwrap().recovered, 2);
    }
}
