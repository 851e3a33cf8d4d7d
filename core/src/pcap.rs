//! Classic pcap encoding with nanosecond timestamps (magic `0xa1b23c4d`).
//!
//! Encoded by hand rather than with pcap-file's writer because workers encode
//! records into their own batch buffers, which one writer thread then writes
//! whole; pcap-file's writer owns the output stream and takes one call per
//! packet. The tests read our output back with pcap-file and with tcpdump.

/// Magic number of a pcap file with nanosecond timestamps, native byte order.
pub const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// Link type of Ethernet frames.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Size of the file header.
pub const FILE_HEADER_LEN: usize = 24;
/// Size of a record header.
pub const RECORD_HEADER_LEN: usize = 16;

/// The 24-byte pcap file header for `snaplen`.
pub fn file_header(snaplen: u32) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC_NANOS.to_ne_bytes());
    h[4..6].copy_from_slice(&2u16.to_ne_bytes());
    h[6..8].copy_from_slice(&4u16.to_ne_bytes());
    // thiszone (8..12) and sigfigs (12..16) stay zero.
    h[16..20].copy_from_slice(&snaplen.to_ne_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
    h
}

/// Bytes a record of `frame_len` takes in the file under `snaplen`.
#[inline(always)]
pub fn record_len(frame_len: usize, snaplen: u32) -> usize {
    RECORD_HEADER_LEN + frame_len.min(snaplen as usize)
}

/// Appends one record: the frame cut to `snaplen`, with its original length.
#[inline(always)]
pub fn append_record(out: &mut Vec<u8>, ts_ns: u64, frame: &[u8], snaplen: u32) {
    append_record_of(out, ts_ns, frame, frame.len(), snaplen);
}

/// Appends one record of a frame of `orig_len` bytes of which `frame` holds
/// the first ones (a frame read back from a file cut by its own snaplen).
#[inline(always)]
pub fn append_record_of(
    out: &mut Vec<u8>,
    ts_ns: u64,
    frame: &[u8],
    orig_len: usize,
    snaplen: u32,
) {
    let caplen = frame.len().min(snaplen as usize);
    let orig_len = orig_len.max(frame.len());
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[0..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_ne_bytes());
    h[4..8].copy_from_slice(&((ts_ns % 1_000_000_000) as u32).to_ne_bytes());
    h[8..12].copy_from_slice(&(caplen as u32).to_ne_bytes());
    h[12..16].copy_from_slice(&(orig_len as u32).to_ne_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&frame[..caplen]);
}

/// The native-endian u32 at `at` in `data`, if `data` holds it (the
/// records and blocks xsktap writes are in this machine's byte order).
#[inline(always)]
pub fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4)
        .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
}

/// The record that starts `data`, if it lies whole there: its length in
/// `data` and the original length of its frame.
#[inline]
pub fn first_record(data: &[u8]) -> Option<(usize, u32)> {
    let len = RECORD_HEADER_LEN + u32_at(data, 8)? as usize;
    (len <= data.len()).then(|| (len, u32_at(data, 12).unwrap_or(0)))
}

/// The timestamp (ns since the epoch) of the record that starts `data`.
pub fn record_time(data: &[u8]) -> Option<u64> {
    Some(u64::from(u32_at(data, 0)?) * 1_000_000_000 + u64::from(u32_at(data, 4)?))
}

/// The records that lie whole at the start of `data` (records after the
/// file header, in this machine's byte order): their count, the original
/// bytes of their frames, and the length they take. What follows is a cut
/// record, if anything.
pub fn whole_records(data: &[u8]) -> (u64, u64, usize) {
    let (mut n, mut bytes, mut at) = (0, 0, 0);
    while let Some((len, orig)) = first_record(&data[at..]) {
        n += 1;
        bytes += u64::from(orig);
        at += len;
    }
    (n, bytes, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;
    use pcap_file::TsResolution;

    #[test]
    fn records_read_back_with_pcap_file() {
        let mut file = file_header(100).to_vec();
        let big: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        append_record(&mut file, 1_700_000_000_123_456_789, &big[..60], 100);
        append_record(&mut file, 1_700_000_001_000_000_001, &big, 100);
        assert_eq!(file.len(), 24 + 16 + 60 + record_len(300, 100));

        let mut reader = PcapReader::new(&file[..]).unwrap();
        let header = reader.header();
        assert_eq!(header.ts_resolution, TsResolution::NanoSecond);
        assert_eq!(header.snaplen, 100);
        // pcap-file 2.0's validating reader rejects orig_len > snaplen, which
        // every truncated capture has; read the raw records instead.
        let p = reader.next_raw_packet().unwrap().unwrap();
        assert_eq!((p.ts_sec, p.ts_frac), (1_700_000_000, 123_456_789));
        assert_eq!(&p.data[..], &big[..60]);
        assert_eq!((p.incl_len, p.orig_len), (60, 60));
        let p = reader.next_raw_packet().unwrap().unwrap();
        assert_eq!((p.ts_sec, p.ts_frac), (1_700_000_001, 1));
        assert_eq!(p.data.len(), 100, "cut to snaplen");
        assert_eq!((p.incl_len, p.orig_len), (100, 300), "original length kept");
        assert!(reader.next_raw_packet().is_none());
    }

    #[test]
    fn whole_records_stop_before_a_cut_one() {
        let mut data = Vec::new();
        append_record(&mut data, 1, &[1u8; 60], 65535);
        append_record(&mut data, 2, &[2u8; 1000], 100);
        let two = data.len();
        append_record(&mut data, 3, &[3u8; 64], 65535);
        assert_eq!(whole_records(&data), (3, 60 + 1000 + 64, data.len()));
        assert_eq!(whole_records(&data[..data.len() - 1]), (2, 1060, two));
        assert_eq!(whole_records(&data[..two + 10]), (2, 1060, two));
        assert_eq!(whole_records(&data[..5]), (0, 0, 0));
    }
}
