//! Per-source rate limiting in the XDP program (`--limit-pps`): what it is
//! asked for, the bucket parameters the program runs with, and how the
//! program's per-key drop counts read back.
//!
//! The program keeps one bucket per key (source address, destination address
//! or flow) in an LRU hash, as a GCRA: the "theoretical arrival time" of the
//! key's next conforming frame. A frame arriving at `now` conforms when
//! `max(tat, now) - now <= tolerance`, and then moves `tat` to
//! `max(tat, now) + interval`; otherwise it is dropped (`XDP_DROP`) and
//! counted. Over any window a key is admitted at most `window / interval +
//! tolerance / interval + 1` frames: the rate `N`, plus a burst.
//!
//! The bucket is shared by every CPU and updated with compare-and-swap: RSS
//! spreads one source's flows over several queues and CPUs, and a per-CPU
//! bucket would admit `N` on each of them. In front of it each CPU keeps a
//! small cache of keys with frames taken from the bucket ahead of time (up
//! to 16, only while they fit in the tolerance, given back when another key
//! takes the slot): a flood then costs a key compare per frame rather than
//! a hash lookup and an atomic on a line every CPU writes. Frames taken
//! ahead were paid for when taken, so a key's long-run rate is unchanged;
//! its burst can grow by what the CPUs hold, at most 15 frames each.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What one bucket is kept for (`--limit-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitBy {
    /// The source address (the default).
    Source,
    /// The destination address.
    Destination,
    /// The 5-tuple: addresses, protocol and ports.
    Flow,
}

impl LimitBy {
    /// The value the XDP program knows this by (`enum xsktap_limit_by`).
    pub const fn code(self) -> u32 {
        match self {
            LimitBy::Source => 1,
            LimitBy::Destination => 2,
            LimitBy::Flow => 3,
        }
    }

    /// The flag's spelling: `src`, `dst` or `flow`.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitBy::Source => "src",
            LimitBy::Destination => "dst",
            LimitBy::Flow => "flow",
        }
    }

    /// Reads `--limit-by`'s value.
    pub fn parse(text: &str) -> Option<LimitBy> {
        match text {
            "src" => Some(LimitBy::Source),
            "dst" => Some(LimitBy::Destination),
            "flow" => Some(LimitBy::Flow),
            _ => None,
        }
    }

    /// What a key is called in sentences: "sources", "destinations", "flows".
    pub fn plural(self) -> &'static str {
        match self {
            LimitBy::Source => "sources",
            LimitBy::Destination => "destinations",
            LimitBy::Flow => "flows",
        }
    }
}

/// The burst a key may send above its rate, as time: a key idle for a while
/// gets this much of the rate at once. Also what makes the limit hold with the
/// coarse clock (`-j host_lowprec`), which moves once a scheduler tick.
pub const BURST_NS: u64 = 50_000_000;

/// The most packets per second `--limit-pps` takes: a key's interval is at
/// least one nanosecond.
pub const MAX_PPS: u64 = 1_000_000_000;

/// A rate limit (`--limit-pps N [--limit-by src|dst|flow] [--limit-all]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Packets per second admitted from one key.
    pub pps: u64,
    /// What a key is.
    pub by: LimitBy,
    /// Limit every frame the program sees, not only those xsktap captures
    /// (other queues, filtered out).
    pub all: bool,
}

impl RateLimit {
    /// A limit of `pps` per key; `None` unless `1 <= pps <= MAX_PPS`.
    pub fn new(pps: u64, by: LimitBy, all: bool) -> Option<RateLimit> {
        (1..=MAX_PPS)
            .contains(&pps)
            .then_some(RateLimit { pps, by, all })
    }

    /// Nanoseconds between two conforming frames of one key.
    pub fn interval_ns(&self) -> u64 {
        1_000_000_000 / self.pps.clamp(1, MAX_PPS)
    }

    /// How far ahead of `now` a key's next arrival time may run and its frame
    /// still conform: [`BURST_NS`], and never less than one interval (a key
    /// limited to less than 20 packets a second can still send one).
    pub fn tolerance_ns(&self) -> u64 {
        BURST_NS.max(self.interval_ns())
    }

    /// The most frames one key is admitted in a window of `window_ns`.
    pub fn admitted_at_most(&self, window_ns: u64) -> u64 {
        (window_ns + self.tolerance_ns()) / self.interval_ns() + 1
    }
}

/// A key of the program's bucket map, read back: the fields `by` uses are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimitKey {
    /// What the key is.
    pub by: LimitBy,
    /// Source address (flows and `src`).
    pub src: IpAddr,
    /// Destination address (flows and `dst`).
    pub dst: IpAddr,
    /// IP protocol (flows).
    pub proto: u8,
    /// Source port (flows; 0 without ports).
    pub sport: u16,
    /// Destination port (flows; 0 without ports).
    pub dport: u16,
}

impl LimitKey {
    /// A key from the map's bytes as the program wrote them: addresses in
    /// network order (IPv4 in the first four bytes), `family` 4 or 6.
    pub fn from_wire(
        by: LimitBy,
        family: u8,
        src: [u8; 16],
        dst: [u8; 16],
        proto: u8,
        sport: u16,
        dport: u16,
    ) -> LimitKey {
        let addr = |b: [u8; 16]| -> IpAddr {
            if family == 4 {
                IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            } else {
                IpAddr::V6(Ipv6Addr::from(b))
            }
        };
        LimitKey {
            by,
            src: addr(src),
            dst: addr(dst),
            proto,
            sport,
            dport,
        }
    }
}

impl fmt::Display for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.by {
            LimitBy::Source => write!(f, "src {}", self.src),
            LimitBy::Destination => write!(f, "dst {}", self.dst),
            LimitBy::Flow => {
                let proto = match self.proto {
                    6 => "tcp".to_string(),
                    17 => "udp".to_string(),
                    1 | 58 => "icmp".to_string(),
                    132 => "sctp".to_string(),
                    p => format!("proto {p}"),
                };
                let end = |a: IpAddr, port: u16| match a {
                    IpAddr::V4(a) => format!("{a}:{port}"),
                    IpAddr::V6(a) => format!("[{a}]:{port}"),
                };
                write!(
                    f,
                    "flow {proto} {} > {}",
                    end(self.src, self.sport),
                    end(self.dst, self.dport)
                )
            }
        }
    }
}

/// The `n` keys with the most frames dropped, most first (ties by key text,
/// so the order is stable); keys that dropped nothing are left out.
pub fn top_limited(mut keys: Vec<(LimitKey, u64)>, n: usize) -> Vec<(LimitKey, u64)> {
    keys.retain(|&(_, dropped)| dropped > 0);
    keys.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| a.0.to_string().cmp(&b.0.to_string()))
    });
    keys.truncate(n);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The program's bucket, in Rust: the same arithmetic, for the tests.
    struct Gcra {
        tat: u64,
        limit: RateLimit,
    }

    impl Gcra {
        fn admit(&mut self, now: u64) -> bool {
            let base = self.tat.max(now);
            if base - now > self.limit.tolerance_ns() {
                return false;
            }
            self.tat = base + self.limit.interval_ns();
            true
        }
    }

    #[test]
    fn a_source_at_ten_times_the_limit_gets_the_limit_and_its_burst() {
        let limit = RateLimit::new(1000, LimitBy::Source, false).unwrap();
        let mut bucket = Gcra { tat: 0, limit };
        // 10,000 pps for 5 s, from t = 1 s.
        let admitted = (0..50_000u64)
            .filter(|i| bucket.admit(1_000_000_000 + i * 100_000))
            .count() as u64;
        assert!(admitted <= limit.admitted_at_most(5_000_000_000));
        assert!((5000..=5000 + 51).contains(&admitted), "{admitted}");
    }

    #[test]
    fn a_coarse_clock_still_holds_the_rate() {
        // The clock moves in 4 ms ticks (HZ=250): every frame of a tick sees
        // the same time.
        let limit = RateLimit::new(1000, LimitBy::Source, false).unwrap();
        let mut bucket = Gcra { tat: 0, limit };
        let tick = 4_000_000;
        let admitted = (0..50_000u64)
            .filter(|i| bucket.admit((1_000_000_000 + i * 100_000) / tick * tick))
            .count() as u64;
        assert!((4950..=5000 + 51).contains(&admitted), "{admitted}");
    }

    #[test]
    fn a_key_below_the_limit_loses_nothing() {
        let limit = RateLimit::new(1000, LimitBy::Source, false).unwrap();
        let mut bucket = Gcra { tat: 0, limit };
        // 900 pps with jitter: bursts of three frames 1 µs apart.
        let mut t = 0;
        for i in 0..4500u64 {
            t += if i % 3 == 0 { 3_333_000 } else { 1000 };
            assert!(bucket.admit(t), "frame {i} dropped");
        }
    }

    #[test]
    fn slow_limits_still_admit_one_frame_an_interval() {
        let limit = RateLimit::new(2, LimitBy::Flow, false).unwrap();
        assert_eq!(limit.interval_ns(), 500_000_000);
        assert_eq!(limit.tolerance_ns(), 500_000_000);
        let mut bucket = Gcra { tat: 0, limit };
        let admitted = (0..1000u64)
            .filter(|i| bucket.admit(i * 10_000_000))
            .count();
        // 10 s at 2 per second, plus the burst of one.
        assert!((20..=22).contains(&admitted), "{admitted}");
    }

    #[test]
    fn limits_outside_the_range_are_refused() {
        assert!(RateLimit::new(0, LimitBy::Source, false).is_none());
        assert!(RateLimit::new(MAX_PPS + 1, LimitBy::Source, false).is_none());
        assert_eq!(
            RateLimit::new(MAX_PPS, LimitBy::Source, true)
                .unwrap()
                .interval_ns(),
            1
        );
        assert_eq!(LimitBy::parse("dst"), Some(LimitBy::Destination));
        assert_eq!(LimitBy::parse("host"), None);
    }

    #[test]
    fn keys_read_back_and_the_top_is_ordered() {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[198, 18, 0, 1]);
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&[198, 18, 0, 2]);
        let src = LimitKey::from_wire(LimitBy::Source, 4, a, [0; 16], 0, 0, 0);
        assert_eq!(src.to_string(), "src 198.18.0.1");
        let flow = LimitKey::from_wire(LimitBy::Flow, 4, a, b, 17, 1000, 9);
        assert_eq!(flow.to_string(), "flow udp 198.18.0.1:1000 > 198.18.0.2:9");
        let v6: [u8; 16] = "2001:2::1".parse::<Ipv6Addr>().unwrap().octets();
        let dst = LimitKey::from_wire(LimitBy::Destination, 6, [0; 16], v6, 0, 0, 0);
        assert_eq!(dst.to_string(), "dst 2001:2::1");
        let top = top_limited(vec![(src, 5), (flow, 0), (dst, 9)], 5);
        assert_eq!(top, vec![(dst, 9), (src, 5)]);
    }
}
