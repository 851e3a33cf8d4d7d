//! The market-data generator (`xsktap-bench feed`): a MoldUDP64 session of
//! ITCH-like messages on an A and a B line, sent by the XDP program in
//! `bench/bpf/feedgen.bpf.c` with BPF_PROG_RUN live frames at up to the
//! bed's line rate, with loss, duplication and reordering injected per line.
//! Every injected fault is a hash of (packet, line, seed), so [`truth`]
//! knows exactly what went out; [`serve_retransmissions`] answers MoldUDP64
//! requests with the very messages of the session.

#[allow(
    missing_docs,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    unused_imports
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/feedgen.skel.rs"));
}

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use serde::Serialize;
use xsktap_core::feed::{mold, Session};
use xsktap_core::ZeroCopy;
use xsktap_sys::xsk::XskTxConfig;

use crate::frames::udp_to_b;

/// The generated session's name.
pub const SESSION: &[u8; 10] = b"XSKTAPGEN1";

/// ITCH 5.0 message types and lengths the packets cycle through: adds,
/// deletes, executions, cancels, replaces, trades, a system event (a busy
/// book's mix, most messages 19 to 40 bytes).
const MIX: [(u8, usize); 10] = [
    (b'A', 36),
    (b'A', 36),
    (b'D', 19),
    (b'E', 31),
    (b'X', 23),
    (b'U', 35),
    (b'P', 44),
    (b'A', 36),
    (b'D', 19),
    (b'F', 40),
];

/// What to generate.
#[derive(Debug, Clone, Serialize)]
pub struct FeedGenConfig {
    /// Interface to transmit on (in the calling thread's namespace).
    #[serde(skip)]
    pub iface: String,
    /// Packets of the session (each sent once per line, faults aside).
    pub packets: u64,
    /// Messages per packet (1 to 32).
    pub messages: u64,
    /// Two lines (A on `port_a`, B on `port_b`) or one (A).
    pub ab: bool,
    /// UDP port of line A.
    pub port_a: u16,
    /// UDP port of line B.
    pub port_b: u16,
    /// Chance that a line loses a packet.
    pub loss: f64,
    /// Chance that a line sends a packet twice.
    pub dup: f64,
    /// Chance that a line swaps an aligned pair of packets.
    pub reorder: f64,
    /// Seed of the faults.
    pub seed: u64,
    /// Frames per second; `None` sends as fast as possible.
    pub rate: Option<f64>,
    /// Stop after this long even if not every packet went out.
    #[serde(skip)]
    pub max_duration: Duration,
    /// The path frames take (see [`crate::gen::Via`]).
    #[serde(skip)]
    pub via: crate::gen::Via,
}

/// The message with sequence number `seq` (1-based) of a session of
/// `messages` per packet: every packet holds the same mix.
pub fn message(seq: u64, messages: u64) -> Vec<u8> {
    let j = ((seq - 1) % messages) as usize;
    let (kind, len) = MIX[j % MIX.len()];
    let mut m = vec![0u8; len];
    m[0] = kind;
    // Stock locate and tracking number, then a recognisable filler.
    m[1..3].copy_from_slice(&(j as u16 + 1).to_be_bytes());
    for (i, b) in m.iter_mut().enumerate().skip(11) {
        *b = b'a' + ((i + j) % 26) as u8;
    }
    m
}

/// The template frame (side a to side b, line A's port) and the offsets of
/// the sequence number and the destination port.
fn template(cfg: &FeedGenConfig) -> (Vec<u8>, usize, usize) {
    let session = Session::new(SESSION).expect("printable");
    let msgs: Vec<Vec<u8>> = (1..=cfg.messages)
        .map(|s| message(s, cfg.messages))
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let f = udp_to_b(cfg.port_a, &mold::encode(&session, 1, &refs));
    (f, 42 + 10, 36)
}

/// A chance of `rate` as the program's fraction of 2^32.
fn fraction(rate: f64) -> u32 {
    (rate.clamp(0.0, 1.0) * 4_294_967_295.0) as u32
}

/// splitmix64's finaliser, as the program computes it.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

const SALT_LOSS: u64 = 1;
const SALT_DUP: u64 = 2;
const SALT_REORDER: u64 = 3;

fn chance(seed: u64, p: u64, line: u64, salt: u64, rate: u32) -> bool {
    rate != 0 && (mix(seed ^ mix(p.wrapping_mul(4) + line) ^ (salt << 56)) >> 32) < u64::from(rate)
}

/// What went out, exactly (the program's choices, replayed).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Truth {
    /// The configuration.
    pub packets: u64,
    /// Messages per packet.
    pub messages_per_packet: u64,
    /// Frames sent per line (A, B).
    pub sent: [u64; 2],
    /// Packets each line lost (never sent), in order.
    pub lost: [Vec<u64>; 2],
    /// Packets each line sent twice.
    pub duplicated: [u64; 2],
    /// Packets each line sent out of order (both of a swapped pair).
    pub reordered: [u64; 2],
    /// Message ranges no line brought (`from`, `to`): the feed's gaps.
    pub gaps: Vec<(u64, u64)>,
    /// Messages the feed can have: every packet some line sent.
    pub delivered_messages: u64,
    /// One past the last message: the end of session names it.
    pub next: u64,
}

/// Replays the program's choices for `cfg`.
pub fn truth(cfg: &FeedGenConfig) -> Truth {
    let lines = if cfg.ab { 2 } else { 1 };
    let (loss, dup, reorder) = (fraction(cfg.loss), fraction(cfg.dup), fraction(cfg.reorder));
    let mut t = Truth {
        packets: cfg.packets,
        messages_per_packet: cfg.messages,
        next: 1 + cfg.packets * cfg.messages,
        ..Truth::default()
    };
    let mut got = vec![false; cfg.packets as usize];
    for l in 0..lines {
        for p in 0..cfg.packets {
            let swapped = chance(cfg.seed, p & !1, l, SALT_REORDER, reorder);
            let pkt = if swapped { p ^ 1 } else { p };
            if pkt >= cfg.packets {
                continue;
            }
            if chance(cfg.seed, pkt, l, SALT_LOSS, loss) {
                t.lost[l as usize].push(pkt);
                continue;
            }
            got[pkt as usize] = true;
            t.sent[l as usize] += 1;
            if swapped {
                t.reordered[l as usize] += 1;
            }
            if dup != 0 && chance(cfg.seed, pkt, l, SALT_DUP, dup) {
                t.sent[l as usize] += 1;
                t.duplicated[l as usize] += 1;
            }
        }
    }
    // A swapped pair past the end sends neither: lost on that line too.
    for (p, g) in got.iter().enumerate() {
        let (from, to) = (1 + p as u64 * cfg.messages, (p as u64 + 1) * cfg.messages);
        if *g {
            t.delivered_messages += cfg.messages;
        } else if let Some(last) = t.gaps.last_mut().filter(|g| g.1 + 1 == from) {
            last.1 = to;
        } else {
            t.gaps.push((from, to));
        }
    }
    t
}

/// Which packet slot `i` of a session sends and on which line, as the
/// program chooses (`None`: nothing goes out in this slot).
fn slot(cfg: &FeedGenConfig, i: u64) -> Option<(u64, u64)> {
    let (lines, slots) = (
        if cfg.ab { 2 } else { 1 },
        if cfg.dup > 0.0 { 2 } else { 1 },
    );
    let l = if lines > 1 { i % 2 } else { 0 };
    let rest = if lines > 1 { i / 2 } else { i };
    let dup_slot = if slots > 1 { rest % 2 } else { 0 };
    let p = if slots > 1 { rest / 2 } else { rest };
    let (loss, dup, reorder) = (fraction(cfg.loss), fraction(cfg.dup), fraction(cfg.reorder));
    let pkt = if chance(cfg.seed, p & !1, l, SALT_REORDER, reorder) {
        p ^ 1
    } else {
        p
    };
    if pkt >= cfg.packets
        || chance(cfg.seed, pkt, l, SALT_LOSS, loss)
        || (dup_slot == 1 && !chance(cfg.seed, pkt, l, SALT_DUP, dup))
    {
        return None;
    }
    Some((pkt, l))
}

/// The loaded generator.
pub struct FeedGen {
    /// The live-frames program, when that is the path.
    prog: Option<OwnedFd>,
    frame: Vec<u8>,
    ifindex: u32,
    cfg: FeedGenConfig,
    seq_offset: usize,
    port_offset: usize,
    via: crate::gen::Via,
}

/// Runs per BPF_PROG_RUN call (as in [`crate::gen`]: calls are costly).
const MAX_RUN: u64 = 1 << 22;

impl FeedGen {
    /// Builds the template and loads the program.
    pub fn new(cfg: &FeedGenConfig) -> anyhow::Result<FeedGen> {
        anyhow::ensure!(
            (1..=32).contains(&cfg.messages),
            "messages per packet must be 1 to 32"
        );
        anyhow::ensure!(cfg.packets >= 1, "at least one packet");
        for (name, v) in [
            ("loss", cfg.loss),
            ("dup", cfg.dup),
            ("reorder", cfg.reorder),
        ] {
            anyhow::ensure!((0.0..=1.0).contains(&v), "--{name} is a chance: 0 to 1");
        }
        let ifindex = crate::send::ifindex(&cfg.iface)?;
        let (frame, seq_offset, port_offset) = template(cfg);
        let via = cfg.via.resolve(&cfg.iface, ifindex)?;
        let prog = match via {
            crate::gen::Via::LiveFrames => Some(load(cfg, seq_offset, port_offset)?),
            _ => None,
        };
        Ok(FeedGen {
            prog,
            frame,
            ifindex,
            cfg: cfg.clone(),
            seq_offset,
            port_offset,
            via,
        })
    }

    /// The path the frames take.
    pub fn via(&self) -> crate::gen::Via {
        self.via
    }

    /// Sends the session's packets from the calling thread (not the end of
    /// session: see [`FeedGen::end_of_session`]); returns the runs made and
    /// how long they took.
    pub fn send(&self) -> anyhow::Result<(u64, Duration)> {
        let Some(prog) = &self.prog else {
            return self.send_af_xdp();
        };
        let lines = if self.cfg.ab { 2 } else { 1 };
        let slots = if self.cfg.dup > 0.0 { 2 } else { 1 };
        let total = self.cfg.packets * lines * slots;
        let start = Instant::now();
        let mut done = 0u64;
        while done < total && start.elapsed() < self.cfg.max_duration {
            let n = (total - done).min(MAX_RUN) as u32;
            let batch = match self.cfg.rate {
                Some(rate) => ((rate / 62_500.0) as u32).clamp(1, 64),
                None => 64,
            };
            crate::gen::live_frames(prog, &self.frame, self.ifindex, n, batch).map_err(|e| {
                anyhow::anyhow!("BPF_PROG_RUN (live frames) on {}: {e}", self.cfg.iface)
            })?;
            done += u64::from(n);
        }
        Ok((done, start.elapsed()))
    }

    /// [`FeedGen::send`] through an AF_XDP socket's TX ring (queue 0), the
    /// program's choices replayed slot by slot.
    fn send_af_xdp(&self) -> anyhow::Result<(u64, Duration)> {
        let cfg = &self.cfg;
        let mut tx = crate::gen::open_tx(&XskTxConfig {
            iface: cfg.iface.clone(),
            ifindex: self.ifindex,
            queue: 0,
            frame_size: 2048,
            ring_size: 2048,
            zero_copy: ZeroCopy::Auto,
        })
        .map_err(|e| anyhow::anyhow!("AF_XDP TX socket on {}: {e}", cfg.iface))?;
        tx.rings().prefill(&self.frame);
        let lines = if cfg.ab { 2 } else { 1 };
        let slots = if cfg.dup > 0.0 { 2 } else { 1 };
        let total = cfg.packets * lines * slots;
        let interval = cfg.rate.map(|r| Duration::from_secs_f64(1.0 / r));
        let batch = match cfg.rate {
            Some(rate) => ((rate / 62_500.0) as u32).clamp(1, 64),
            None => 64,
        };
        let (so, po, len) = (self.seq_offset, self.port_offset, self.frame.len() as u32);
        let start = Instant::now();
        let mut due = start;
        let mut i = 0u64;
        while i < total && start.elapsed() < cfg.max_duration {
            // The slots up to the next `batch` that send something.
            let mut sends = Vec::with_capacity(batch as usize);
            while i < total && sends.len() < batch as usize {
                if let Some(s) = slot(cfg, i) {
                    sends.push(s);
                }
                i += 1;
            }
            let mut done = 0;
            while done < sends.len() {
                let got = tx.rings().send((sends.len() - done) as u32, |k, frame| {
                    let (pkt, line) = sends[done + k as usize];
                    if let Some(interval) = interval {
                        due = crate::gen::pace(due, interval);
                    }
                    frame[so..so + 8].copy_from_slice(&(1 + pkt * cfg.messages).to_be_bytes());
                    let port = if line == 1 { cfg.port_b } else { cfg.port_a };
                    frame[po..po + 2].copy_from_slice(&port.to_be_bytes());
                    len
                });
                done += got as usize;
                tx.kick()
                    .map_err(|e| anyhow::anyhow!("AF_XDP TX (sendto) on {}: {e}", cfg.iface))?;
            }
        }
        tx.flush(Duration::from_secs(1))
            .map_err(|e| anyhow::anyhow!("AF_XDP TX (sendto) on {}: {e}", cfg.iface))?;
        Ok((i, start.elapsed()))
    }

    /// A heartbeat and the end-of-session packet of each line, naming the
    /// message after the last.
    pub fn end_of_session(&self) -> Vec<Vec<u8>> {
        let session = Session::new(SESSION).expect("printable");
        let next = 1 + self.cfg.packets * self.cfg.messages;
        let lines = if self.cfg.ab { 2 } else { 1 };
        let mut out = Vec::new();
        for port in [self.cfg.port_a, self.cfg.port_b].into_iter().take(lines) {
            for count in [0, 0xFFFF] {
                out.push(udp_to_b(port, &mold::encode_marker(&session, next, count)));
            }
        }
        out
    }

    /// Sends the session, then (the A/B window closed) a heartbeat and the
    /// end of session on each line; returns the runs made and how long the
    /// session took.
    pub fn send_session(&self) -> anyhow::Result<(u64, Duration)> {
        let sent = self.send()?;
        std::thread::sleep(Duration::from_millis(20));
        let sender = crate::send::FrameSender::open(&self.cfg.iface)?;
        for f in self.end_of_session() {
            sender.send(&f)?;
        }
        Ok(sent)
    }
}

/// Loads the live-frames program for `cfg`.
fn load(cfg: &FeedGenConfig, seq_offset: usize, port_offset: usize) -> anyhow::Result<OwnedFd> {
    let mut object = MaybeUninit::uninit();
    let mut open = skel::FeedgenSkelBuilder::default().open(&mut object)?;
    let ro = open
        .maps
        .rodata_data
        .as_deref_mut()
        .expect("the program has read-only settings");
    ro.seq_offset = seq_offset as u32;
    ro.port_offset = port_offset as u32;
    ro.msgs = cfg.messages;
    ro.packets = cfg.packets;
    ro.lines = if cfg.ab { 2 } else { 1 };
    ro.slots = if cfg.dup > 0.0 { 2 } else { 1 };
    ro.port_a = cfg.port_a;
    ro.port_b = cfg.port_b;
    ro.seed = cfg.seed;
    ro.loss = fraction(cfg.loss);
    ro.dup = fraction(cfg.dup);
    ro.reorder = fraction(cfg.reorder);
    ro.interval_ns = cfg.rate.map_or(0, |r| (1e9 / r) as u64);
    let skel = open.load()?;
    Ok(skel.progs.xsktap_feedgen.as_fd().try_clone_to_owned()?)
}

/// Enters namespace `ns` (the calling thread), loads the generator for
/// `cfg` and sends its session (see [`FeedGen::send_session`]).
pub fn send_session_in(ns: &str, cfg: &FeedGenConfig) -> anyhow::Result<(u64, Duration)> {
    crate::netns::enter(ns)?;
    FeedGen::new(cfg)?.send_session()
}

/// Answers MoldUDP64 requests on `socket` with the session's messages
/// (`messages` per packet) until `stop`; returns the requests answered.
pub fn serve_retransmissions(
    socket: &std::net::UdpSocket,
    messages: u64,
    stop: &std::sync::atomic::AtomicBool,
) -> u64 {
    let _ = socket.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 2048];
    let mut answered = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Ok((session, seq, count)) = mold::decode_request(&buf[..n]) else {
            continue;
        };
        let msgs: Vec<Vec<u8>> = (seq..seq + u64::from(count))
            .map(|s| message(s, messages))
            .collect();
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        if socket
            .send_to(&mold::encode(&session, seq, &refs), from)
            .is_ok()
        {
            answered += 1;
        }
    }
    answered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(loss: f64, dup: f64, reorder: f64) -> FeedGenConfig {
        FeedGenConfig {
            iface: String::new(),
            packets: 100_000,
            messages: 4,
            ab: true,
            port_a: 1,
            port_b: 2,
            loss,
            dup,
            reorder,
            seed: 7,
            rate: None,
            max_duration: Duration::from_secs(1),
            via: Default::default(),
        }
    }

    #[test]
    fn the_faults_come_at_their_rates_and_gaps_are_what_both_lines_lost() {
        let t = truth(&cfg(0.01, 0.02, 0.03));
        for l in 0..2 {
            let lost = t.lost[l].len() as f64 / 1e5;
            assert!((0.008..0.012).contains(&lost), "{lost}");
            assert!(
                (1_600..2_400).contains(&t.duplicated[l]),
                "{:?}",
                t.duplicated
            );
            // A swapped pair is two packets out of order.
            assert!(
                (2_400..3_600).contains(&t.reordered[l]),
                "{:?}",
                t.reordered
            );
        }
        assert_ne!(t.lost[0], t.lost[1], "independent lines");
        let both: Vec<u64> = t.lost[0]
            .iter()
            .filter(|p| t.lost[1].contains(p))
            .copied()
            .collect();
        assert!(!both.is_empty() && both.len() < 40, "{}", both.len());
        let missing: u64 = t.gaps.iter().map(|g| g.1 - g.0 + 1).sum();
        assert_eq!(missing, both.len() as u64 * 4);
        assert_eq!(t.delivered_messages + missing, 400_000);
        let clean = truth(&cfg(0.0, 0.0, 0.0));
        assert!(clean.gaps.is_empty() && clean.sent == [100_000, 100_000]);
    }

    #[test]
    fn messages_are_itch_sized_and_the_template_decodes() {
        let c = cfg(0.0, 0.0, 0.0);
        let (frame, seq_at, port_at) = template(&c);
        assert_eq!(&frame[port_at..port_at + 2], &1u16.to_be_bytes());
        assert_eq!(&frame[seq_at..seq_at + 8], &1u64.to_be_bytes());
        let d = mold::decode(&frame[42..]).unwrap();
        assert_eq!(d.seq, 1);
        let sizes: Vec<usize> = (1..=4).map(|s| message(s, 4).len()).collect();
        assert_eq!(sizes, [36, 36, 19, 31]);
        assert_eq!(message(5, 4), message(1, 4), "every packet the same mix");
    }
}
