//! One line per packet: tcpdump-like text, or one JSON object per line.
//!
//! Pure formatting into a byte buffer; the worker hands full buffers to the
//! writer thread like pcap records.

use std::io::Write;
use std::net::IpAddr;

use crate::parse::{Fragment, Packet, Proto, TcpFlags};

/// The monitor's line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorFormat {
    /// `12:34:56.123456789 eth0/q1 UDP 198.18.0.1.5353 > 198.18.0.2.53 len 74`
    Text,
    /// `{"ts_ns":…,"queue":1,"len":74,"proto":"udp","src":…}`
    Json,
}

/// Longest line either format writes (addresses, ports, two VLANs, reason).
pub const MAX_LINE: usize = 512;

fn endpoint(out: &mut Vec<u8>, addr: IpAddr, port: Option<u16>) {
    let _ = match port {
        Some(port) => write!(out, "{addr}.{port}"),
        None => write!(out, "{addr}"),
    };
}

/// The lines that lie whole at the start of `data`: their count and the
/// length they take (up to and including the last newline).
pub fn whole_lines(data: &[u8]) -> (u64, usize) {
    let end = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let n = data[..end].iter().filter(|&&b| b == b'\n').count() as u64;
    (n, end)
}

/// Appends the text line for one packet.
pub fn write_text(out: &mut Vec<u8>, ts_ns: u64, iface: &str, queue: u32, p: &Packet) {
    let secs = ts_ns / 1_000_000_000;
    let day = secs % 86_400;
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}.{:09} {iface}/q{queue} ",
        day / 3600,
        day / 60 % 60,
        day % 60,
        ts_ns % 1_000_000_000
    );
    if p.vlan_count > 0 {
        out.extend_from_slice(b"vlan ");
        for (i, id) in p.vlan_ids().iter().enumerate() {
            let _ = write!(out, "{}{id}", if i > 0 { "," } else { "" });
        }
        out.push(b' ');
    }
    let name = match p.proto {
        Proto::Malformed => "MALFORMED",
        Proto::Tcp => "TCP",
        Proto::Udp => "UDP",
        Proto::Icmp => "ICMP",
        Proto::Icmpv6 => "ICMP6",
        Proto::Arp => "ARP",
        Proto::Other => "OTHER",
    };
    out.extend_from_slice(name.as_bytes());
    match (p.src, p.dst, p.arp) {
        (Some(s), Some(d), _) => {
            out.push(b' ');
            endpoint(out, s, p.sport);
            out.extend_from_slice(b" > ");
            endpoint(out, d, p.dport);
        }
        (_, _, Some((s, d))) => {
            let _ = write!(out, " {s} > {d}");
        }
        _ => {
            if p.proto == Proto::Other {
                let _ = write!(out, " ethertype 0x{:04x}", p.ethertype);
            }
        }
    }
    if p.proto == Proto::Other {
        if let Some(proto) = p.ip_proto {
            let _ = write!(out, " proto {proto}");
        }
    }
    let _ = write!(out, " len {}", p.len);
    if let Some(flags) = p.tcp_flags {
        let _ = write!(out, " [{}]", TcpFlags(flags));
    }
    if p.fragment == Fragment::Later {
        out.extend_from_slice(b" (fragment)");
    }
    if let Some(why) = p.malformed {
        let _ = write!(out, " ({why})");
    }
    if let Some(note) = p.warning {
        let _ = write!(out, " (warning: {note})");
    }
    out.push(b'\n');
}

/// Appends the JSON object for one packet, on one line. Fields: `ts_ns`,
/// `queue`, `len`, `proto`, and when present `src`, `dst`, `sport`, `dport`,
/// `vlan`, `tcp_flags`, `fragment`, `reason` (why a frame is malformed),
/// `warning` (a note on a frame decoded as usual).
pub fn write_json(out: &mut Vec<u8>, ts_ns: u64, queue: u32, p: &Packet) {
    let _ = write!(
        out,
        "{{\"ts_ns\":{ts_ns},\"queue\":{queue},\"len\":{},\"proto\":\"{}\"",
        p.len,
        p.proto.as_str()
    );
    if let (Some(s), Some(d)) = (p.src, p.dst) {
        let _ = write!(out, ",\"src\":\"{s}\",\"dst\":\"{d}\"");
    }
    if let Some(port) = p.sport {
        let _ = write!(out, ",\"sport\":{port}");
    }
    if let Some(port) = p.dport {
        let _ = write!(out, ",\"dport\":{port}");
    }
    out.extend_from_slice(b",\"vlan\":[");
    for (i, id) in p.vlan_ids().iter().enumerate() {
        let _ = write!(out, "{}{id}", if i > 0 { "," } else { "" });
    }
    out.push(b']');
    if let Some(flags) = p.tcp_flags {
        let _ = write!(out, ",\"tcp_flags\":\"{}\"", TcpFlags(flags));
    }
    match p.fragment {
        Fragment::None => {}
        Fragment::First => out.extend_from_slice(b",\"fragment\":\"first\""),
        Fragment::Later => out.extend_from_slice(b",\"fragment\":\"later\""),
    }
    if let Some(why) = p.malformed {
        // Reasons are fixed ASCII strings without quotes or backslashes.
        let _ = write!(out, ",\"reason\":\"{why}\"");
    }
    if let Some(note) = p.warning {
        // Fixed ASCII too.
        let _ = write!(out, ",\"warning\":\"{note}\"");
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    #[test]
    fn whole_lines_end_at_the_last_newline() {
        assert_eq!(whole_lines(b"a\nbb\nccc"), (2, 5));
        assert_eq!(whole_lines(b"abc"), (0, 0));
        assert_eq!(whole_lines(b""), (0, 0));
    }

    fn udp_frame() -> Vec<u8> {
        let mut f = vec![0u8; 14 + 4 + 20 + 8];
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        f[14..16].copy_from_slice(&[0x00, 0x0a]);
        f[16..18].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[18..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&28u16.to_be_bytes());
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[198, 18, 0, 1]);
        ip[16..20].copy_from_slice(&[198, 18, 0, 2]);
        ip[20..22].copy_from_slice(&5353u16.to_be_bytes());
        ip[22..24].copy_from_slice(&53u16.to_be_bytes());
        ip[24..26].copy_from_slice(&8u16.to_be_bytes());
        f
    }

    #[test]
    fn text_line_reads_like_tcpdump() {
        let mut out = Vec::new();
        write_text(
            &mut out,
            3_723_000_000_042,
            "veth0",
            1,
            &parse(&udp_frame()),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "01:02:03.000000042 veth0/q1 vlan 10 UDP 198.18.0.1.5353 > 198.18.0.2.53 len 46\n"
        );
    }

    #[test]
    fn json_line_has_the_documented_fields() {
        let mut out = Vec::new();
        write_json(&mut out, 42, 1, &parse(&udp_frame()));
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"ts_ns\":42,\"queue\":1,\"len\":46,\"proto\":\"udp\",\"src\":\"198.18.0.1\",\"dst\":\"198.18.0.2\",\"sport\":5353,\"dport\":53,\"vlan\":[10]}\n"
        );
        let mut out = Vec::new();
        write_json(&mut out, 1, 0, &parse(&udp_frame()[..20]));
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"proto\":\"malformed\""), "{text}");
        assert!(
            text.contains("\"reason\":\"truncated IPv4 header\""),
            "{text}"
        );
        assert!(!text.contains("\"src\""), "{text}");
        assert!(text.len() < MAX_LINE);
    }

    #[test]
    fn a_group_source_address_is_a_warning_on_a_decoded_frame() {
        let mut frame = udp_frame();
        frame[6] = 0x01;
        let p = parse(&frame);
        let mut json = Vec::new();
        write_json(&mut json, 42, 1, &p);
        let json = String::from_utf8(json).unwrap();
        assert!(json.contains("\"proto\":\"udp\""), "{json}");
        assert!(json.contains("\"dport\":53"), "{json}");
        assert!(
            json.ends_with(",\"warning\":\"Ethernet source address is a group address\"}\n"),
            "{json}"
        );
        assert!(!json.contains("reason"), "{json}");
        let mut text = Vec::new();
        write_text(&mut text, 0, "veth0", 1, &p);
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("UDP 198.18.0.1.5353 > 198.18.0.2.53"),
            "{text}"
        );
        assert!(
            text.ends_with(" (warning: Ethernet source address is a group address)\n"),
            "{text}"
        );
    }
}
