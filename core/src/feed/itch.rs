//! NASDAQ TotalView-ITCH 5.0 message timestamps, for the exchange-to-tap
//! latency: every ITCH 5.0 message starts with its type (one letter), the
//! stock locate and tracking number (two bytes each), then the time it was
//! stamped at the exchange: 6 bytes, big-endian, nanoseconds since midnight
//! in the exchange's time zone (US Eastern for NASDAQ).

/// Nanoseconds in a day.
pub const DAY_NS: u64 = 86_400_000_000_000;

/// The exchange timestamp of an ITCH 5.0 message, if it carries one.
#[inline]
pub fn timestamp(message: &[u8]) -> Option<u64> {
    let stamp = message.get(5..11)?;
    if !message[0].is_ascii_alphabetic() {
        return None;
    }
    let ns = stamp.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    (ns < DAY_NS).then_some(ns)
}

/// Receive time minus the exchange's stamp, in ns: `rx_utc_ns` (wall clock,
/// UTC) moved to the exchange's day with `utc_offset_ns` (its offset from
/// UTC: −4 h for New York in summer). Across midnight the nearer day is
/// taken. Negative when the tap's clock is behind the exchange's.
#[inline]
pub fn exchange_to_tap(rx_utc_ns: u64, utc_offset_ns: i64, stamp_ns: u64) -> i64 {
    let day = i128::from(DAY_NS);
    let local = (i128::from(rx_utc_ns) + i128::from(utc_offset_ns)).rem_euclid(day);
    let mut d = local - i128::from(stamp_ns);
    if d > day / 2 {
        d -= day;
    } else if d < -day / 2 {
        d += day;
    }
    d as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_order(ts: u64) -> Vec<u8> {
        let mut m = vec![b'A', 0, 1, 0, 0];
        m.extend_from_slice(&ts.to_be_bytes()[2..]);
        m.extend_from_slice(&[0; 25]);
        m
    }

    #[test]
    fn the_stamp_is_read_from_every_message_that_has_one() {
        let nine_thirty = (9 * 3600 + 30 * 60) * 1_000_000_000u64;
        assert_eq!(timestamp(&add_order(nine_thirty)), Some(nine_thirty));
        assert_eq!(timestamp(&add_order(nine_thirty)[..10]), None, "too short");
        let mut not_itch = add_order(1);
        not_itch[0] = 0;
        assert_eq!(timestamp(&not_itch), None);
        assert_eq!(timestamp(&add_order(DAY_NS)), None, "past midnight");
    }

    #[test]
    fn latency_is_taken_in_the_exchanges_day() {
        let h = 3_600_000_000_000i64;
        // 2026-11-23 14:30:00.000010 UTC = 09:30:00.000010 New York (UTC-5).
        let rx = 1_795_444_200_000_010_000u64;
        assert_eq!(rx % DAY_NS, (14 * 3600 + 30 * 60) * 1_000_000_000 + 10_000);
        let stamp = (9 * 3600 + 30 * 60) * 1_000_000_000u64;
        assert_eq!(exchange_to_tap(rx, -5 * h, stamp), 10_000);
        // A stamp just before midnight, received just after.
        let after_midnight = rx - rx % DAY_NS + 5 * h as u64 + 1_000;
        assert_eq!(
            exchange_to_tap(after_midnight, -5 * h, DAY_NS - 1_000),
            2_000
        );
        // The tap's clock behind the exchange's.
        assert_eq!(exchange_to_tap(rx, -5 * h, stamp + 30_000), -20_000);
    }
}
