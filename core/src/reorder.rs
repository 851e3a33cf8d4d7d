//! Merging the queues' records by timestamp within a bounded window
//! (`--sort-window`): a record is held until the wall clock is `window` past
//! its timestamp, then released in timestamp order. One that arrives after
//! a later record was already released cannot be put in its place: it is
//! released at once and counted `out_of_order`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Records held for ordering.
#[derive(Debug)]
pub struct Reorder<T> {
    window_ns: u64,
    held: BinaryHeap<Reverse<Held<T>>>,
    seq: u64,
    last_released: u64,
    out_of_order: u64,
}

#[derive(Debug)]
struct Held<T> {
    ts: u64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Held<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.seq) == (other.ts, other.seq)
    }
}
impl<T> Eq for Held<T> {}
impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Held<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Equal timestamps keep their arrival order.
        (self.ts, self.seq).cmp(&(other.ts, other.seq))
    }
}

impl<T> Reorder<T> {
    /// Holds records for `window_ns`.
    pub fn new(window_ns: u64) -> Reorder<T> {
        Reorder {
            window_ns,
            held: BinaryHeap::new(),
            seq: 0,
            last_released: 0,
            out_of_order: 0,
        }
    }

    /// Holds `item`, stamped `ts` (ns since the epoch).
    pub fn push(&mut self, ts: u64, item: T) {
        self.seq += 1;
        self.held.push(Reverse(Held {
            ts,
            seq: self.seq,
            item,
        }));
    }

    /// Records held now.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Records released late so far.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// Releases, in timestamp order, every record whose time is `window`
    /// before `now_ns` (all of them when `now_ns` is `u64::MAX`).
    pub fn release(&mut self, now_ns: u64, mut out: impl FnMut(u64, T)) {
        let horizon = now_ns.saturating_sub(self.window_ns);
        while self
            .held
            .peek()
            .is_some_and(|Reverse(h)| h.ts <= horizon || now_ns == u64::MAX)
        {
            let Reverse(h) = self.held.pop().expect("peeked");
            if h.ts < self.last_released {
                self.out_of_order += 1;
            } else {
                self.last_released = h.ts;
            }
            out(h.ts, h.item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released(r: &mut Reorder<u32>, now: u64) -> Vec<(u64, u32)> {
        let mut v = Vec::new();
        r.release(now, |ts, item| v.push((ts, item)));
        v
    }

    #[test]
    fn records_of_two_queues_come_out_in_time_order_once_the_window_passed() {
        let mut r = Reorder::new(10);
        // Queue 0's batch, then queue 1's, overlapping in time.
        for ts in [100, 102, 104] {
            r.push(ts, 0);
        }
        for ts in [101, 103, 105] {
            r.push(ts, 1);
        }
        assert_eq!(released(&mut r, 109), vec![]);
        assert_eq!(
            released(&mut r, 113),
            vec![(100, 0), (101, 1), (102, 0), (103, 1)]
        );
        assert_eq!(r.len(), 2);
        assert_eq!(released(&mut r, u64::MAX), vec![(104, 0), (105, 1)]);
        assert_eq!(r.out_of_order(), 0);
    }

    #[test]
    fn a_record_later_than_the_window_is_released_and_counted() {
        let mut r = Reorder::new(10);
        r.push(200, 0);
        assert_eq!(released(&mut r, 215), vec![(200, 0)]);
        r.push(190, 1);
        assert_eq!(
            released(&mut r, 215),
            vec![(190, 1)],
            "never held back for ever"
        );
        assert_eq!(r.out_of_order(), 1);
        r.push(200, 2);
        r.push(200, 3);
        assert_eq!(
            released(&mut r, u64::MAX),
            vec![(200, 2), (200, 3)],
            "ties keep arrival order"
        );
        assert_eq!(r.out_of_order(), 1);
    }
}
