//! The receive timestamp the XDP program writes in front of each frame it
//! redirects, as userspace finds it in the UMEM: 16 bytes (`struct
//! xsktap_meta` in bpf/xsktap.h), carried one of two ways ([`Carry`]): as
//! XDP metadata, ending at the frame's first byte, or, on a kernel that
//! refuses XDP metadata, as the frame's first 16 bytes (prepended in its
//! headroom), which the worker strips before anything reads the frame.
//!
//! The stamp is CLOCK_MONOTONIC (`bpf_ktime_get_ns()`) when the program ran
//! for the frame. The worker turns it into wall-clock time with the offset
//! between CLOCK_REALTIME and CLOCK_MONOTONIC read once per batch, so that
//! a step of the wall clock (NTP, settimeofday) shows from the next batch
//! on, and frames of one batch keep their spacing on the wire.

/// Marks a stamped frame ("TKSX" read as a little-endian u32).
pub const MAGIC: u32 = u32::from_le_bytes(*b"TKSX");
/// Flag: the stamp is the NIC's (moved to CLOCK_MONOTONIC).
pub const FLAG_HARDWARE: u32 = 1;
/// Flag: the 16 bytes are the frame's first, prepended in its headroom.
pub const FLAG_HEADROOM: u32 = 2;

/// Where the XDP program carries each frame's stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Carry {
    /// In XDP metadata, in front of the frame (`bpf_xdp_adjust_meta`).
    #[default]
    Metadata,
    /// Prepended to the frame in its headroom (`bpf_xdp_adjust_head`), for
    /// kernels that refuse XDP metadata; stripped by the worker.
    Headroom,
}

impl Carry {
    /// The program's `stamp_carry` value (`enum xsktap_stamp_carry`).
    pub const fn code(self) -> u32 {
        match self {
            Carry::Metadata => 0,
            Carry::Headroom => 1,
        }
    }

    /// `metadata` or `headroom`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Carry::Metadata => "metadata",
            Carry::Headroom => "headroom",
        }
    }
}

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

/// The receive stamp at the start of `frame` when the program prepended one
/// in headroom, and the frame without it; `None` when the frame carries
/// none (the program found no headroom), to be taken whole. Both the magic
/// and the headroom flag must be there: a frame's own bytes rarely hold the
/// magic at offset 12 (an EtherType and what follows), never both.
#[inline(always)]
pub fn strip(frame: &[u8]) -> Option<(u64, &[u8])> {
    let head: &[u8; LEN] = frame.get(..LEN)?.try_into().ok()?;
    let flags = u32::from_ne_bytes(
        head[FLAGS_OFFSET..FLAGS_OFFSET + 4]
            .try_into()
            .expect("4 bytes"),
    );
    if flags & FLAG_HEADROOM == 0 {
        return None;
    }
    decode(head).map(|ns| (ns, &frame[LEN..]))
}

/// The 16 bytes the program prepends in headroom, for tests and stand-ins.
pub fn encode_headroom(rx_ns: u64) -> [u8; LEN] {
    let mut m = encode(rx_ns);
    m[FLAGS_OFFSET..FLAGS_OFFSET + 4].copy_from_slice(&FLAG_HEADROOM.to_ne_bytes());
    m
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
    fn headroom_stamps_strip_and_frames_without_one_stay_whole() {
        let frame = [7u8; 60];
        let mut carried = encode_headroom(42).to_vec();
        carried.extend_from_slice(&frame);
        assert_eq!(strip(&carried), Some((42, &frame[..])));
        // Metadata-style bytes (no headroom flag) are not a prefix.
        let mut meta = encode(42).to_vec();
        meta.extend_from_slice(&frame);
        assert_eq!(strip(&meta), None);
        assert_eq!(strip(&frame), None);
        assert_eq!(strip(&carried[..10]), None, "shorter than a stamp");
        assert_eq!(Carry::Headroom.code(), 1);
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
