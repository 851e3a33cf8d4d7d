//! pcapng encoding (draft-ietf-opsawg-pcapng): a section header naming the
//! OS and xsktap, one Interface Description Block per captured queue,
//! Enhanced Packet Blocks carrying their queue's interface id, the inbound
//! direction and the drops since the queue's previous packet, and Interface
//! Statistics Blocks when a file closes.
//!
//! Encoded by hand for the same reason as [`crate::pcap`]: workers encode
//! blocks into their own batch buffers. Blocks are in this machine's byte
//! order, which the section header's byte-order magic declares. The tests
//! read the output back with pcap-file and with tshark.

/// Block type of a Section Header Block.
pub const SHB: u32 = 0x0A0D_0D0A;
/// Block type of an Interface Description Block.
pub const IDB: u32 = 1;
/// Block type of an Interface Statistics Block.
pub const ISB: u32 = 5;
/// Block type of an Enhanced Packet Block.
pub const EPB: u32 = 6;
/// The byte-order magic of a section header.
pub const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Fixed part of an EPB before the packet data.
const EPB_HEAD: usize = 28;
/// The options every EPB carries: `epb_flags` (8) and the end of options (4).
const EPB_OPTIONS: usize = 12;
/// `epb_flags` value: inbound.
const FLAGS_INBOUND: u32 = 1;

const OPT_END: u16 = 0;
const OPT_SHB_OS: u16 = 3;
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_DESCRIPTION: u16 = 3;
const OPT_IF_SPEED: u16 = 8;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_FILTER: u16 = 11;
const OPT_IF_HARDWARE: u16 = 15;
const OPT_EPB_FLAGS: u16 = 2;
const OPT_EPB_DROPCOUNT: u16 = 4;
const OPT_ISB_STARTTIME: u16 = 2;
const OPT_ISB_ENDTIME: u16 = 3;
const OPT_ISB_IFRECV: u16 = 4;
const OPT_ISB_IFDROP: u16 = 5;
const OPT_ISB_FILTERACCEPT: u16 = 6;
const OPT_ISB_OSDROP: u16 = 7;
const OPT_ISB_USRDELIV: u16 = 8;

use crate::pcap::u32_at;

#[inline(always)]
fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_ne_bytes());
}

fn put_option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    out.extend_from_slice(&code.to_ne_bytes());
    out.extend_from_slice(&(value.len() as u16).to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(pad4(out.len()), 0);
}

/// A timestamp in nanoseconds as pcapng's (high, low) 32-bit halves.
fn put_ts(out: &mut Vec<u8>, ts_ns: u64) {
    put_u32(out, (ts_ns >> 32) as u32);
    put_u32(out, ts_ns as u32);
}

fn ts_bytes(ts_ns: u64) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&((ts_ns >> 32) as u32).to_ne_bytes());
    b[4..].copy_from_slice(&(ts_ns as u32).to_ne_bytes());
    b
}

/// Wraps a block body: type, total length, body, total length.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let total = (12 + body.len()) as u32;
    let mut out = Vec::with_capacity(total as usize);
    put_u32(&mut out, kind);
    put_u32(&mut out, total);
    out.extend_from_slice(body);
    put_u32(&mut out, total);
    out
}

/// A Section Header Block naming the OS and the application.
pub fn section_header(os: &str, application: &str) -> Vec<u8> {
    let mut body = Vec::new();
    put_u32(&mut body, BYTE_ORDER_MAGIC);
    body.extend_from_slice(&1u16.to_ne_bytes());
    body.extend_from_slice(&0u16.to_ne_bytes());
    // Section length unknown (-1): a capture is written as it goes.
    body.extend_from_slice(&u64::MAX.to_ne_bytes());
    put_option(&mut body, OPT_SHB_OS, os.as_bytes());
    put_option(&mut body, OPT_SHB_USERAPPL, application.as_bytes());
    put_option(&mut body, OPT_END, &[]);
    block(SHB, &body)
}

/// What an Interface Description Block says about one captured queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    /// `if_name`: the interface and queue, as monitor lines name them (`eth1/q0`).
    pub name: String,
    /// `if_description`.
    pub description: String,
    /// Snapshot length.
    pub snaplen: u32,
    /// `if_filter`: the capture's filter expression (empty: none).
    pub filter: String,
    /// `if_hardware`: the driver, where known.
    pub hardware: Option<String>,
    /// `if_speed` in bits per second, where known.
    pub speed_bps: Option<u64>,
}

/// An Interface Description Block (Ethernet, nanosecond timestamps).
pub fn interface_description(i: &Interface) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(crate::pcap::LINKTYPE_ETHERNET as u16).to_ne_bytes());
    body.extend_from_slice(&0u16.to_ne_bytes());
    put_u32(&mut body, i.snaplen);
    put_option(&mut body, OPT_IF_NAME, i.name.as_bytes());
    put_option(&mut body, OPT_IF_DESCRIPTION, i.description.as_bytes());
    put_option(&mut body, OPT_IF_TSRESOL, &[9]);
    if !i.filter.is_empty() {
        // Filter type 0: a libpcap filter string.
        let mut f = vec![0u8];
        f.extend_from_slice(i.filter.as_bytes());
        put_option(&mut body, OPT_IF_FILTER, &f);
    }
    if let Some(hw) = &i.hardware {
        put_option(&mut body, OPT_IF_HARDWARE, hw.as_bytes());
    }
    if let Some(speed) = i.speed_bps {
        put_option(&mut body, OPT_IF_SPEED, &speed.to_ne_bytes());
    }
    put_option(&mut body, OPT_END, &[]);
    block(IDB, &body)
}

/// Bytes an EPB of a `frame_len` frame takes under `snaplen`.
#[inline(always)]
pub fn epb_len(frame_len: usize, snaplen: u32) -> usize {
    EPB_HEAD + pad4(frame_len.min(snaplen as usize)) + EPB_OPTIONS + 4
}

/// Appends an Enhanced Packet Block: the frame cut to `snaplen`, on
/// interface `if_id`, inbound.
#[inline(always)]
pub fn append_epb(out: &mut Vec<u8>, if_id: u32, ts_ns: u64, frame: &[u8], snaplen: u32) {
    append_epb_of(out, if_id, ts_ns, frame, frame.len(), snaplen);
}

/// [`append_epb`] for a frame of `orig_len` bytes of which `frame` holds
/// the first ones.
#[inline(always)]
pub fn append_epb_of(
    out: &mut Vec<u8>,
    if_id: u32,
    ts_ns: u64,
    frame: &[u8],
    orig_len: usize,
    snaplen: u32,
) {
    let caplen = frame.len().min(snaplen as usize);
    let orig_len = orig_len.max(frame.len());
    let total = epb_len(frame.len(), snaplen) as u32;
    let mut h = [0u8; EPB_HEAD];
    h[0..4].copy_from_slice(&EPB.to_ne_bytes());
    h[4..8].copy_from_slice(&total.to_ne_bytes());
    h[8..12].copy_from_slice(&if_id.to_ne_bytes());
    h[12..16].copy_from_slice(&((ts_ns >> 32) as u32).to_ne_bytes());
    h[16..20].copy_from_slice(&(ts_ns as u32).to_ne_bytes());
    h[20..24].copy_from_slice(&(caplen as u32).to_ne_bytes());
    h[24..28].copy_from_slice(&(orig_len as u32).to_ne_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&frame[..caplen]);
    out.resize(out.len() + pad4(caplen) - caplen, 0);
    let mut tail = [0u8; EPB_OPTIONS + 4];
    tail[0..2].copy_from_slice(&OPT_EPB_FLAGS.to_ne_bytes());
    tail[2..4].copy_from_slice(&4u16.to_ne_bytes());
    tail[4..8].copy_from_slice(&FLAGS_INBOUND.to_ne_bytes());
    // tail[8..12]: end of options, zero.
    tail[12..16].copy_from_slice(&total.to_ne_bytes());
    out.extend_from_slice(&tail);
}

/// The EPB at the start of `epb` (as [`append_epb`] wrote it) with an
/// `epb_dropcount` option added: `drops` frames of its queue were lost
/// since the previous packet.
pub fn with_dropcount(epb: &[u8], drops: u64) -> Option<Vec<u8>> {
    let (len, _) = first_block(epb)?;
    let kind = u32::from_ne_bytes(epb[0..4].try_into().ok()?);
    if kind != EPB || len < EPB_HEAD + EPB_OPTIONS + 4 {
        return None;
    }
    let caplen = u32::from_ne_bytes(epb[20..24].try_into().ok()?) as usize;
    let data_end = EPB_HEAD + pad4(caplen);
    let mut body = epb[8..data_end].to_vec();
    put_option(&mut body, OPT_EPB_FLAGS, &FLAGS_INBOUND.to_ne_bytes());
    put_option(&mut body, OPT_EPB_DROPCOUNT, &drops.to_ne_bytes());
    put_option(&mut body, OPT_END, &[]);
    Some(block(EPB, &body))
}

/// The block that starts `data`, if it lies whole there: its length and,
/// for an EPB, the original length of its frame (0 for other blocks).
#[inline]
pub fn first_block(data: &[u8]) -> Option<(usize, u32)> {
    let len = u32_at(data, 4)? as usize;
    if len < 12 || !len.is_multiple_of(4) || len > data.len() {
        return None;
    }
    let orig = if u32_at(data, 0)? == EPB {
        u32_at(data, 24)?
    } else {
        0
    };
    Some((len, orig))
}

/// The timestamp (ns since the epoch, `if_tsresol` 9) of the EPB that
/// starts `data`.
pub fn epb_time(data: &[u8]) -> Option<u64> {
    Some((u64::from(u32_at(data, 12)?) << 32) | u64::from(u32_at(data, 16)?))
}

/// The EPBs that lie whole at the start of `data`: their count, the
/// original bytes of their frames, and the length they take.
pub fn whole_blocks(data: &[u8]) -> (u64, u64, usize) {
    let (mut n, mut bytes, mut at) = (0, 0, 0);
    while let Some((len, orig)) = first_block(&data[at..]) {
        n += 1;
        bytes += u64::from(orig);
        at += len;
    }
    (n, bytes, at)
}

/// What an Interface Statistics Block reports for one queue over one file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Statistics {
    /// `isb_starttime`: when the file was opened.
    pub start_ns: u64,
    /// `isb_endtime`: when it was closed.
    pub end_ns: u64,
    /// `isb_ifrecv`: frames the XDP program saw on the queue. `None`
    /// (the option left out) where a counter could not be read.
    pub if_recv: Option<u64>,
    /// `isb_ifdrop`: frames lost before xsktap took them (socket and ring
    /// drops, failed redirects).
    pub if_drop: Option<u64>,
    /// `isb_filteraccept`: frames the filter selected (redirected).
    pub filter_accept: Option<u64>,
    /// `isb_osdrop`: frames taken but not written (the output failed or closed).
    pub os_drop: Option<u64>,
    /// `isb_usrdeliv`: frames written to this file.
    pub user_delivered: u64,
}

/// An Interface Statistics Block for interface `if_id`, stamped `ts_ns`.
pub fn interface_statistics(if_id: u32, ts_ns: u64, s: &Statistics) -> Vec<u8> {
    let mut body = Vec::new();
    put_u32(&mut body, if_id);
    put_ts(&mut body, ts_ns);
    put_option(&mut body, OPT_ISB_STARTTIME, &ts_bytes(s.start_ns));
    put_option(&mut body, OPT_ISB_ENDTIME, &ts_bytes(s.end_ns));
    for (code, v) in [
        (OPT_ISB_IFRECV, s.if_recv),
        (OPT_ISB_IFDROP, s.if_drop),
        (OPT_ISB_FILTERACCEPT, s.filter_accept),
        (OPT_ISB_OSDROP, s.os_drop),
        (OPT_ISB_USRDELIV, Some(s.user_delivered)),
    ] {
        // An unknown count is left out, never written as 0.
        if let Some(v) = v {
            put_option(&mut body, code, &v.to_ne_bytes());
        }
    }
    put_option(&mut body, OPT_END, &[]);
    block(ISB, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    use pcap_file::pcapng::blocks::interface_statistics::InterfaceStatisticsOption;
    use pcap_file::pcapng::{Block, PcapNgReader};

    fn file() -> Vec<u8> {
        let mut f = section_header("Linux 6.18", "xsktap 0.1.0");
        for q in 0..2 {
            f.extend(interface_description(&Interface {
                name: format!("eth1/q{q}"),
                description: format!("eth1 RX queue {q}"),
                snaplen: 100,
                filter: "udp port 53".into(),
                hardware: Some("veth".into()),
                speed_bps: Some(10_000_000_000),
            }));
        }
        let frame: Vec<u8> = (0..150u8).collect();
        append_epb(&mut f, 0, 1_700_000_000_123_456_789, &frame[..61], 100);
        let mut second = Vec::new();
        append_epb(&mut second, 1, 1_700_000_000_223_456_789, &frame, 100);
        f.extend(with_dropcount(&second, 7).unwrap());
        f.extend(interface_statistics(
            1,
            1_700_000_001_000_000_000,
            &Statistics {
                start_ns: 1_700_000_000_000_000_000,
                end_ns: 1_700_000_001_000_000_000,
                if_recv: Some(10),
                if_drop: Some(7),
                filter_accept: Some(9),
                os_drop: None,
                user_delivered: 1,
            },
        ));
        f
    }

    #[test]
    fn blocks_read_back_with_pcap_file() {
        let bytes = file();
        let mut reader = PcapNgReader::new(&bytes[..]).unwrap();
        let mut idbs = Vec::new();
        let mut epbs = Vec::new();
        let mut isbs = Vec::new();
        while let Some(block) = reader.next_block() {
            match block.unwrap() {
                Block::InterfaceDescription(i) => idbs.push(i.into_owned()),
                Block::EnhancedPacket(p) => epbs.push(p.into_owned()),
                Block::InterfaceStatistics(s) => isbs.push(s.into_owned()),
                other => panic!("unexpected block {other:?}"),
            }
        }
        assert_eq!(idbs.len(), 2);
        assert_eq!(idbs[1].snaplen, 100);
        assert!(idbs[1]
            .options
            .contains(&InterfaceDescriptionOption::IfName("eth1/q1".into())));
        assert!(idbs[0]
            .options
            .contains(&InterfaceDescriptionOption::IfTsResol(9)));
        assert_eq!(epbs.len(), 2);
        assert_eq!(epbs[0].interface_id, 0);
        assert_eq!(epbs[0].data.len(), 61);
        assert_eq!(epbs[0].original_len, 61);
        assert_eq!(epbs[1].interface_id, 1);
        assert_eq!(epbs[1].data.len(), 100, "cut to snaplen");
        assert_eq!(epbs[1].original_len, 150);
        assert!(epbs[1]
            .options
            .contains(&EnhancedPacketOption::DropCount(7)));
        assert!(epbs[0].options.contains(&EnhancedPacketOption::Flags(1)));
        assert_eq!(isbs.len(), 1);
        assert!(isbs[0]
            .options
            .contains(&InterfaceStatisticsOption::IsbIfDrop(7)));
        assert!(isbs[0]
            .options
            .contains(&InterfaceStatisticsOption::IsbUsrDeliv(1)));
        assert!(
            !isbs[0]
                .options
                .iter()
                .any(|o| matches!(o, InterfaceStatisticsOption::IsbOsDrop(_))),
            "an unknown count is left out"
        );
    }

    #[test]
    fn whole_blocks_stop_before_a_cut_one() {
        let mut data = Vec::new();
        append_epb(&mut data, 0, 1, &[1u8; 61], 65535);
        let one = data.len();
        append_epb(&mut data, 0, 2, &[2u8; 1000], 100);
        assert_eq!(one, epb_len(61, 65535));
        assert_eq!(whole_blocks(&data), (2, 1061, data.len()));
        assert_eq!(whole_blocks(&data[..data.len() - 1]), (1, 61, one));
        assert_eq!(whole_blocks(&data[..3]), (0, 0, 0));
    }
}
