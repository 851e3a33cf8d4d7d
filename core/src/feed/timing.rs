//! Per-feed timing: how long a packet waited between its receive stamp and
//! its decoding, and microbursts (the busiest 100 µs and 1 ms windows).

use hdrhistogram::Histogram;

/// One window size's burst accounting: packets and bits in fixed windows
/// of `width_ns` aligned on multiples of it.
#[derive(Debug, Clone)]
pub struct Bursts {
    width_ns: u64,
    window: u64,
    packets: u64,
    bytes: u64,
    /// The most packets seen in one window.
    pub max_packets: u64,
    /// The most bytes seen in one window.
    pub max_bytes: u64,
    /// Windows whose packets exceeded [`BURST_FACTOR`] times the mean per window.
    pub flagged: u64,
    first_ns: Option<u64>,
    total_packets: u64,
}

/// A window with this many times the mean packets per window is a burst.
pub const BURST_FACTOR: u64 = 10;

impl Bursts {
    /// Windows of `width_ns`.
    pub fn new(width_ns: u64) -> Bursts {
        Bursts {
            width_ns: width_ns.max(1),
            window: u64::MAX,
            packets: 0,
            bytes: 0,
            max_packets: 0,
            max_bytes: 0,
            flagged: 0,
            first_ns: None,
            total_packets: 0,
        }
    }

    fn close(&mut self, now_ns: u64) {
        if self.window == u64::MAX {
            return;
        }
        self.max_packets = self.max_packets.max(self.packets);
        self.max_bytes = self.max_bytes.max(self.bytes);
        // The mean per window so far, over the time since the first packet.
        let first = self.first_ns.unwrap_or(now_ns);
        let windows = (now_ns.saturating_sub(first) / self.width_ns).max(1);
        let mean = self.total_packets / windows;
        if windows >= 10 && self.packets > BURST_FACTOR * mean.max(1) {
            self.flagged += 1;
        }
    }

    /// A packet of `bytes` received at `ts_ns`.
    #[inline]
    pub fn record(&mut self, ts_ns: u64, bytes: u64) {
        let window = ts_ns / self.width_ns;
        if window != self.window {
            self.close(ts_ns);
            self.window = window;
            self.packets = 0;
            self.bytes = 0;
        }
        self.first_ns.get_or_insert(ts_ns);
        self.packets += 1;
        self.bytes += bytes;
        self.total_packets += 1;
    }

    /// The busiest window's rate: (packets/s, bits/s), the current window included.
    pub fn peak(&self) -> (f64, f64) {
        let per_s = 1e9 / self.width_ns as f64;
        let packets = self.max_packets.max(self.packets) as f64;
        let bytes = self.max_bytes.max(self.bytes) as f64;
        (packets * per_s, bytes * 8.0 * per_s)
    }
}

/// A feed's timing.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Receive stamp to decoding, per packet (ns).
    pub receive_to_decode: Histogram<u64>,
    /// 100 µs windows.
    pub bursts_100us: Bursts,
    /// 1 ms windows.
    pub bursts_1ms: Bursts,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            receive_to_decode: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .expect("valid histogram bounds"),
            bursts_100us: Bursts::new(100_000),
            bursts_1ms: Bursts::new(1_000_000),
        }
    }
}

impl Timing {
    /// A packet of `bytes` (on the wire) received at `rx_ns`, decoded at
    /// `now_ns`; a packet read from a file (decoded at its own time, `now_ns`
    /// equal to `rx_ns`) counts in the bursts only.
    #[inline]
    pub fn record(&mut self, rx_ns: u64, now_ns: u64, bytes: u64) {
        if now_ns > rx_ns {
            self.receive_to_decode.saturating_record(now_ns - rx_ns);
        }
        self.bursts_100us.record(rx_ns, bytes);
        self.bursts_1ms.record(rx_ns, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_window_and_bursts_over_the_mean_are_found() {
        let mut b = Bursts::new(1_000);
        // One packet per window for 100 windows, then 50 in one window.
        for w in 0..100u64 {
            b.record(w * 1_000 + 10, 100);
        }
        for i in 0..50u64 {
            b.record(100_000 + i, 100);
        }
        b.record(101_500, 100);
        assert_eq!(b.max_packets, 50);
        assert_eq!(b.max_bytes, 5_000);
        assert_eq!(b.flagged, 1);
        let (pps, bps) = b.peak();
        assert_eq!(pps, 50e6);
        assert_eq!(bps, 4e10);
    }

    #[test]
    fn steady_traffic_flags_nothing() {
        let mut b = Bursts::new(1_000);
        for i in 0..10_000u64 {
            b.record(i * 250, 60);
        }
        assert_eq!((b.max_packets, b.flagged), (4, 0));
    }

    #[test]
    fn receive_to_decode_is_recorded_per_packet() {
        let mut t = Timing::default();
        t.record(1_000, 3_000, 60);
        t.record(2_000, 2_500, 60);
        assert_eq!(t.receive_to_decode.len(), 2);
        assert!(t.receive_to_decode.max().abs_diff(2_000) <= 2);
    }
}
