//! Asking a feed's retransmission server for what is missing
//! (`--rerequest`): which requests to send now, and which were never
//! answered. Pure: the caller sends, receives and passes the time in.
//!
//! A declared gap still open after [`Policy::delay_ns`] (the other line or a
//! late packet may still bring it) is requested, split so that each answer
//! fits one packet ([`super::mold::split_request`]). A request whose range
//! is still open [`Policy::timeout_ns`] later is sent again, at most
//! [`Policy::tries`] times in all; then it is given up and reported, never
//! retried forever. At most [`Policy::per_second`] requests leave per second
//! and at most [`Policy::outstanding`] wait for answers, whatever the gaps.

use std::collections::VecDeque;

use super::mold::split_request;
use super::{Sequencer, Session};

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long a gap stays open before it is requested.
    pub delay_ns: u64,
    /// How long a request waits for its answer before it is sent again.
    pub timeout_ns: u64,
    /// Times a request is sent before it is given up.
    pub tries: u32,
    /// Requests sent per second, at most.
    pub per_second: u32,
    /// Requests waiting for an answer, at most.
    pub outstanding: usize,
    /// The message length requests are split for (answers must fit a packet).
    pub typical_len: usize,
}

impl Policy {
    /// How long a gap can take to be filled by its requests: the delay, then
    /// every try's timeout, and a tenth more for the answer's way back.
    pub fn wait_ns(&self) -> u64 {
        let w = self.delay_ns + u64::from(self.tries) * self.timeout_ns;
        w + w / 10
    }
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            delay_ns: 5_000_000,
            timeout_ns: 200_000_000,
            tries: 3,
            per_second: 200,
            outstanding: 64,
            typical_len: 40,
        }
    }
}

/// One request: `count` messages of `session` from `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The session.
    pub session: Session,
    /// First message asked for.
    pub seq: u64,
    /// Messages asked for.
    pub count: u16,
}

#[derive(Debug, Clone, Copy)]
struct Waiting {
    request: Request,
    sent_ns: u64,
    tries: u32,
}

/// Counters of the requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// Request packets sent (retries included).
    pub sent: u64,
    /// Requests whose range was filled while they waited.
    pub answered: u64,
    /// Requests given up after every try.
    pub unanswered: u64,
}

/// The requests of one feed.
#[derive(Debug, Clone)]
pub struct Recovery {
    policy: Policy,
    waiting: Vec<Waiting>,
    /// Requests given up: never asked again (the oldest forgotten past
    /// `outstanding` of them, so memory stays bounded).
    given_up: VecDeque<Request>,
    /// Send times of the last second's requests, for the rate.
    recent: VecDeque<u64>,
    /// Counters.
    pub stats: RecoveryStats,
}

impl Recovery {
    /// Requests paced by `policy`.
    pub fn new(policy: Policy) -> Recovery {
        Recovery {
            policy,
            waiting: Vec::new(),
            given_up: VecDeque::new(),
            recent: VecDeque::new(),
            stats: RecoveryStats::default(),
        }
    }

    fn may_send(&mut self, now_ns: u64) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|&t| now_ns.saturating_sub(t) >= 1_000_000_000)
        {
            self.recent.pop_front();
        }
        self.recent.len() < self.policy.per_second as usize
    }

    /// What to send now for the gaps of `merged`, and the requests given up
    /// just now (to report).
    pub fn poll(&mut self, merged: &Sequencer, now_ns: u64) -> (Vec<Request>, Vec<Request>) {
        let (mut send, mut given_up) = (Vec::new(), Vec::new());
        let Some(session) = merged.current().map(|s| s.session) else {
            return (send, given_up);
        };
        let still_open = |r: &Request| {
            let to = r.seq + u64::from(r.count) - 1;
            r.session == session
                && merged
                    .open_gaps()
                    .any(|(from, end, declared)| declared && from <= to && end >= r.seq)
        };
        // Answered (filled) or of an earlier session: done.
        let before = self.waiting.len();
        self.waiting.retain(|w| still_open(&w.request));
        self.stats.answered += (before - self.waiting.len()) as u64;
        // Timed out: again, or given up.
        let mut i = 0;
        while i < self.waiting.len() {
            let w = self.waiting[i];
            if now_ns.saturating_sub(w.sent_ns) < self.policy.timeout_ns {
                i += 1;
                continue;
            }
            if w.tries >= self.policy.tries {
                self.waiting.swap_remove(i);
                self.stats.unanswered += 1;
                given_up.push(w.request);
                if self.given_up.len() == self.policy.outstanding {
                    self.given_up.pop_front();
                }
                self.given_up.push_back(w.request);
                continue;
            }
            if !self.may_send(now_ns) {
                break;
            }
            self.waiting[i].sent_ns = now_ns;
            self.waiting[i].tries += 1;
            self.recent.push_back(now_ns);
            self.stats.sent += 1;
            send.push(w.request);
            i += 1;
        }
        // New gaps old enough, not asked for yet.
        let gaps: Vec<(u64, u64)> = merged
            .open_gaps_since()
            .filter(|&(_, _, declared, opened)| {
                declared && now_ns.saturating_sub(opened) >= self.policy.delay_ns
            })
            .map(|(from, to, _, _)| (from, to))
            .collect();
        for (from, to) in gaps {
            for (seq, count) in split_request(from, to, self.policy.typical_len) {
                let last = seq + u64::from(count) - 1;
                let overlaps = |r: &Request| {
                    r.session == session && r.seq <= last && r.seq + u64::from(r.count) > seq
                };
                let asked = self.waiting.iter().any(|w| overlaps(&w.request))
                    || self.given_up.iter().any(overlaps);
                if asked {
                    continue;
                }
                if self.waiting.len() >= self.policy.outstanding || !self.may_send(now_ns) {
                    return (send, given_up);
                }
                let request = Request {
                    session,
                    seq,
                    count,
                };
                self.waiting.push(Waiting {
                    request,
                    sent_ns: now_ns,
                    tries: 1,
                });
                self.recent.push_back(now_ns);
                self.stats.sent += 1;
                send.push(request);
            }
        }
        (send, given_up)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::mold;
    use crate::feed::sequence::{Event, FeedOut, Origin};

    struct Nothing;
    impl FeedOut<'_> for Nothing {
        fn message(&mut self, _: Session, _: u64, _: &[u8], _: Origin) {}
        fn event(&mut self, _: Event) {}
    }

    fn session() -> Session {
        Session::new(b"SESSION001").unwrap()
    }

    fn take(q: &mut Sequencer, seq: u64, n: usize, ts: u64, origin: Origin) {
        let msgs = vec![&b"x"[..]; n];
        let p = mold::encode(&session(), seq, &msgs);
        q.packet(&mold::decode(&p).unwrap(), ts, origin, &mut Nothing);
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn a_gap_is_asked_for_after_the_delay_and_the_answer_ends_it() {
        let mut q = Sequencer::new(0);
        let mut r = Recovery::new(Policy::default());
        take(&mut q, 1, 2, 0, Origin::Line(0));
        take(&mut q, 6, 1, MS, Origin::Line(0));
        assert_eq!(r.poll(&q, 2 * MS).0, [], "not before the delay");
        let (send, _) = r.poll(&q, 6 * MS);
        assert_eq!(
            send,
            [Request {
                session: session(),
                seq: 3,
                count: 3
            }]
        );
        assert_eq!(r.poll(&q, 7 * MS).0, [], "asked once");
        take(&mut q, 3, 3, 8 * MS, Origin::Retransmission);
        assert_eq!(r.poll(&q, 9 * MS), (vec![], vec![]));
        assert_eq!(
            r.stats,
            RecoveryStats {
                sent: 1,
                answered: 1,
                unanswered: 0
            }
        );
    }

    #[test]
    fn an_unanswered_request_is_retried_then_given_up() {
        let mut q = Sequencer::new(0);
        let policy = Policy::default();
        let mut r = Recovery::new(policy);
        take(&mut q, 1, 1, 0, Origin::Line(0));
        take(&mut q, 4, 1, 0, Origin::Line(0));
        let mut sent = 0;
        let mut given_up = Vec::new();
        for t in (0..2_000).map(|i| i * MS) {
            let (s, g) = r.poll(&q, t);
            sent += s.len();
            given_up.extend(g);
        }
        assert_eq!(sent, policy.tries as usize);
        assert_eq!(given_up.len(), 1);
        assert_eq!((given_up[0].seq, given_up[0].count), (2, 2));
        assert_eq!(r.stats.unanswered, 1);
    }

    #[test]
    fn requests_are_split_and_bounded_by_rate_and_outstanding() {
        let mut q = Sequencer::new(0);
        let policy = Policy {
            per_second: 5,
            ..Policy::default()
        };
        let mut r = Recovery::new(policy);
        take(&mut q, 1, 1, 0, Origin::Line(0));
        // 1,000 missing messages: 24 requests of (1472-20)/42 = 34 messages.
        take(&mut q, 1_002, 1, 0, Origin::Line(0));
        let (first, _) = r.poll(&q, 10 * MS);
        assert_eq!(first.len(), 5, "the rate");
        assert_eq!((first[0].seq, first[0].count), (2, 34));
        assert_eq!((first[1].seq, first[1].count), (36, 34));
        assert_eq!(
            r.poll(&q, 20 * MS).0.len(),
            0,
            "the rate, within the second"
        );
        assert_eq!(r.poll(&q, 1_100 * MS).0.len(), 5, "the next second");
    }
}
