//! The receive timestamp the XDP program writes in front of each frame it
//! redirects (XDP metadata), as userspace finds it in the UMEM: 16 bytes
//! ending at the frame's first byte (`struct xsktap_meta` in bpf/xsktap.h).
//!
//! The stamp is CLOCK_MONOTONIC (`bpf_ktime_get_ns()`) when the program ran
//! for the frame. The worker turns it into wall-clock time with the offset
//! between CLOCK_REALTIME and CLOCK_MONOTONIC read once per batch, so that
//! a step of the wall clock (NTP, settimeofday) shows from the next batch
//! on, and frames of one batch keep their spacing on the wire.

/// Marks a stamped frame ("TKSX" read as a little-endian u32).
pub const MAGIC: u32 = u32::from_le_bytes(*b"TKSX");
/// Length of the metadata.
pub const LEN: usize = 16;
/// Offset of the timestamp in the metadata.
pub const RX_NS_OFFSET: usize = 0;
/// Offset of the flags.
pub const FLAGS_OFFSET: usize = 8;
/// Offset of the magic: last, adjacent to the frame.
pub const MAGIC_OFFSET: usize = 12;

/// The receive timestamp in `meta` (the 16 bytes before a frame), if the
/// program wrote one.
#[inline(always)]
pub fn decode(meta: &[u8; LEN]) -> Option<u64> {
    let word = |o: usize| u32::from_ne_bytes(meta[o..o + 4].try_into().expect("4 bytes"));
    if word(MAGIC_OFFSET) != MAGIC {
        return None;
    }
    let ns = u64::from_ne_bytes(
        meta[RX_NS_OFFSET..RX_NS_OFFSET + 8]
            .try_into()
            .expect("8 bytes"),
    );
    (ns != 0).then_some(ns)
}

/// The metadata the program writes, for tests and stand-ins of the kernel.
pub fn encode(rx_ns: u64) -> [u8; LEN] {
    let mut m = [0u8; LEN];
    m[RX_NS_OFFSET..RX_NS_OFFSET + 8].copy_from_slice(&rx_ns.to_ne_bytes());
    m[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(&MAGIC.to_ne_bytes());
    m
}

/// Wall-clock time of a frame stamped `rx_ns` (CLOCK_MONOTONIC), given both
/// clocks read together; `wall_ns` itself for an unstamped frame (0).
#[inline(always)]
pub fn wall_time(rx_ns: u64, wall_ns: u64, mono_ns: u64) -> u64 {
    if rx_ns == 0 {
        wall_ns
    } else {
        (rx_ns + wall_ns).saturating_sub(mono_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_decode_and_stale_bytes_do_not() {
        assert_eq!(decode(&encode(123_456)), Some(123_456));
        assert_eq!(decode(&[0; LEN]), None);
        let mut stale = encode(5);
        stale[MAGIC_OFFSET] ^= 1;
        assert_eq!(decode(&stale), None);
    }

    #[test]
    fn wall_time_keeps_the_spacing_of_stamps() {
        let (wall, mono) = (1_700_000_000_000_000_000, 5_000_000_000);
        // Two frames 1 ms apart, stamped before the batch was read.
        let a = wall_time(mono - 3_000_000, wall, mono);
        let b = wall_time(mono - 2_000_000, wall, mono);
        assert_eq!(b - a, 1_000_000);
        assert_eq!(wall - b, 2_000_000);
        assert_eq!(
            wall_time(0, wall, mono),
            wall,
            "unstamped: the batch's time"
        );
    }
}
