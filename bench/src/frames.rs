//! Deterministic Ethernet/IPv4/UDP frames of chosen sizes and flows (pure).

/// Source MAC of the test bed's side a (see `tools/testbed.sh`).
pub const MAC_A: [u8; 6] = [0x02, 0x00, 0xc6, 0x12, 0x00, 0x01];
/// MAC of the test bed's side b.
pub const MAC_B: [u8; 6] = [0x02, 0x00, 0xc6, 0x12, 0x00, 0x02];
/// Address of side a (198.18.0.1).
pub const IP_A: [u8; 4] = [198, 18, 0, 1];
/// Address of side b (198.18.0.2).
pub const IP_B: [u8; 4] = [198, 18, 0, 2];

/// Smallest Ethernet frame without FCS.
pub const MIN_FRAME: usize = 60;
/// Largest frame that fits an MTU of 1500.
pub const MAX_FRAME: usize = 1514;
const HEADERS: usize = 14 + 20 + 8;

/// Internet checksum of `data` (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A UDP frame from side a (198.18.0.1:40000) to side b (198.18.0.2:`port`)
/// carrying `payload`, no UDP checksum (valid for IPv4).
pub fn udp_to_b(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(HEADERS + payload.len());
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (20 + 8 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&IP_A);
    ip[16..20].copy_from_slice(&IP_B);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&40_000u16.to_be_bytes());
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&(ip_len - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Builds a UDP frame from side a to side b of `size` bytes (60..=1514), in
/// flow `flow` (which sets the source port and the last byte of the source
/// address), carrying `seq` in its payload.
pub fn udp_frame(size: usize, flow: u16, seq: u64) -> Vec<u8> {
    let size = size.clamp(MIN_FRAME, MAX_FRAME);
    let mut f = vec![0u8; size];
    f[0..6].copy_from_slice(&MAC_B);
    f[6..12].copy_from_slice(&MAC_A);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    // The IP datagram: frames padded to 60 bytes carry a shorter datagram.
    let ip_len = (size - 14).max(20 + 8 + 8);
    let ip = &mut f[14..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&(seq as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&IP_A);
    ip[15] = 100 + (flow % 100) as u8; // 198.18.0.100..199, one per flow
    ip[16..20].copy_from_slice(&IP_B);
    let csum = checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    let udp = &mut ip[20..];
    udp[0..2].copy_from_slice(&(10_000 + flow).to_be_bytes());
    udp[2..4].copy_from_slice(&9u16.to_be_bytes()); // discard
    udp[4..6].copy_from_slice(&((ip_len - 20) as u16).to_be_bytes());
    // UDP checksum 0: none, valid for IPv4.
    let payload = &mut f[HEADERS..];
    let seq_bytes = seq.to_be_bytes();
    for (i, b) in payload.iter_mut().enumerate() {
        *b = if i < 8 {
            seq_bytes[i]
        } else {
            (i as u8) ^ (seq as u8)
        };
    }
    f
}

/// Address of side a (2001:2::1).
pub const IP6_A: [u8; 16] = [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// Address of side b (2001:2::2).
pub const IP6_B: [u8; 16] = [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
/// Bytes of the generator's stamp at the start of the UDP payload.
pub const STAMP_LEN: usize = 16;

/// Ones'-complement sum of `data` read as native-endian 16-bit words, unfolded.
fn native_sum(data: &[u8]) -> u64 {
    data.chunks(2)
        .map(|c| u64::from(u16::from_ne_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut sum: u64) -> u32 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u32
}

/// An IPv6/UDP frame of `size` bytes from side a to side b (port 9), with
/// source port and checksum zero and a zeroed stamp area, for the generator.
/// Returns the frame, the UDP header's offset, and the folded native sum of
/// everything the generator does not rewrite (see `bench/bpf/gen.bpf.c`).
pub fn udp6_frame(size: usize) -> (Vec<u8>, usize, u32) {
    let size = size.clamp(14 + 40 + 8 + STAMP_LEN, MAX_FRAME);
    let mut f = vec![0u8; size];
    f[0..6].copy_from_slice(&MAC_B);
    f[6..12].copy_from_slice(&MAC_A);
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let udp_len = size - 14 - 40;
    let ip = &mut f[14..54];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    ip[6] = 17;
    ip[7] = 64;
    ip[8..24].copy_from_slice(&IP6_A);
    ip[24..40].copy_from_slice(&IP6_B);
    f[56..58].copy_from_slice(&9u16.to_be_bytes());
    f[58..60].copy_from_slice(&(udp_len as u16).to_be_bytes());
    for (i, b) in f[62 + STAMP_LEN..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&IP6_A);
    pseudo.extend_from_slice(&IP6_B);
    pseudo.extend_from_slice(&(udp_len as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 17]);
    let sum = native_sum(&pseudo) + native_sum(&f[54..]);
    (f, 54, fold(sum))
}

/// A varied, reproducible set of `count` frames over `flows` flows, with sizes
/// spread over 60..=1514 (both ends included).
pub fn varied_frames(count: usize, flows: u16) -> Vec<Vec<u8>> {
    let flows = flows.max(1);
    (0..count)
        .map(|i| {
            let size = match i % 7 {
                0 => MIN_FRAME,
                1 => MAX_FRAME,
                _ => MIN_FRAME + (i * 389) % (MAX_FRAME - MIN_FRAME + 1),
            };
            udp_frame(size, (i % usize::from(flows)) as u16, i as u64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_requested_sizes_and_valid_ip_checksums() {
        for size in [0, 60, 61, 100, 1514, 9000] {
            let f = udp_frame(size, 3, 77);
            assert_eq!(f.len(), size.clamp(MIN_FRAME, MAX_FRAME));
            assert_eq!(checksum(&f[14..34]), 0, "IP header checksum verifies");
            assert_eq!(&f[42..50], &77u64.to_be_bytes());
        }
    }

    #[test]
    fn ipv6_checksum_base_completes_to_a_valid_checksum() {
        // Do what the generator does in the kernel, then verify the UDP
        // checksum the standard way (RFC 8200 pseudo-header, big-endian words).
        let (mut f, udp, base) = udp6_frame(200);
        f[udp..udp + 2].copy_from_slice(&10_003u16.to_be_bytes());
        for (i, b) in f[udp + 8..udp + 8 + STAMP_LEN].iter_mut().enumerate() {
            *b = (i * 37 + 5) as u8;
        }
        let sum = u64::from(base)
            + native_sum(&f[udp + 8..udp + 8 + STAMP_LEN])
            + native_sum(&f[udp..udp + 2]);
        let c = !(fold(sum) as u16);
        f[udp + 6..udp + 8].copy_from_slice(&c.to_ne_bytes());
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&IP6_A);
        pseudo.extend_from_slice(&IP6_B);
        pseudo.extend_from_slice(&((f.len() - udp) as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 17]);
        pseudo.extend_from_slice(&f[udp..]);
        assert_eq!(
            checksum(&pseudo),
            0,
            "a valid UDP checksum verifies to zero"
        );
    }

    #[test]
    fn varied_frames_cover_the_size_range_and_flows() {
        let frames = varied_frames(100, 8);
        assert!(frames.iter().any(|f| f.len() == MIN_FRAME));
        assert!(frames.iter().any(|f| f.len() == MAX_FRAME));
        let ports: std::collections::HashSet<_> = frames.iter().map(|f| (f[34], f[35])).collect();
        assert_eq!(ports.len(), 8);
        assert_ne!(
            frames[0], frames[7],
            "sequence numbers make frames distinct"
        );
    }
}
