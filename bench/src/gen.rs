//! The generator: stamped frames out of an interface at millions of packets
//! per second, optionally paced, by one of two paths ([`Via`]):
//!
//! - an AF_XDP socket's TX ring (the default where live frames are refused):
//!   every UMEM frame holds the template, and each frame sent is patched in
//!   place (stamp, source port, IPv6 checksum) before its descriptor goes on
//!   the ring; pacing is done here, frame by frame.
//! - the XDP program in `bench/bpf/gen.bpf.c`, run with BPF_PROG_RUN in
//!   live-frames mode, which stamps, paces and transmits (XDP_TX) in the
//!   kernel; some kernels refuse live frames (EPERM), so it is probed.
//!
//! Both write the same stamp (`struct xsktap_gen_stamp`), spread frames over
//! the same source ports and count what they sent the same way.

#[allow(
    missing_docs,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    unused_imports
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/gen.skel.rs"));
}

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use xsktap_core::latency;
use xsktap_core::ZeroCopy;
use xsktap_sys::xsk::{XskTx, XskTxConfig};

use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use crate::frames;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Interface to transmit on (in the calling thread's namespace).
    pub iface: String,
    /// Frame size in bytes (60..=1514 for IPv4, 78..=1514 for IPv6, without FCS).
    pub frame_size: usize,
    /// IPv6 instead of IPv4.
    pub ipv6: bool,
    /// Frames to send.
    pub count: u64,
    /// UDP source ports to spread frames over.
    pub flows: u32,
    /// Frames per second; `None` sends as fast as possible.
    pub rate: Option<f64>,
    /// Stop after this long even if `count` was not reached.
    pub max_duration: Duration,
    /// The path frames take.
    pub via: Via,
}

/// How the generator transmits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Via {
    /// Live frames where the kernel runs them (the fastest here), AF_XDP
    /// TX otherwise.
    #[default]
    Auto,
    /// An AF_XDP socket's TX ring.
    AfXdp,
    /// BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES.
    LiveFrames,
}

impl Via {
    /// `auto`, `af-xdp` or `live-frames`.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Auto => "auto",
            Via::AfXdp => "af-xdp",
            Via::LiveFrames => "live-frames",
        }
    }

    /// Parses [`Via::as_str`]'s names.
    pub fn parse(s: &str) -> anyhow::Result<Via> {
        match s {
            "auto" => Ok(Via::Auto),
            "af-xdp" => Ok(Via::AfXdp),
            "live-frames" => Ok(Via::LiveFrames),
            _ => anyhow::bail!("--via {s}: give auto, af-xdp or live-frames"),
        }
    }

    /// The path `self` means on interface `ifindex` of this kernel: `auto`
    /// probes live frames; `live-frames` where the kernel refuses them is
    /// an error naming the way out.
    pub fn resolve(self, iface: &str, ifindex: u32) -> anyhow::Result<Via> {
        match self {
            Via::AfXdp => Ok(Via::AfXdp),
            Via::Auto => Ok(match xsktap_sys::probe::live_frames(ifindex) {
                Ok(()) => Via::LiveFrames,
                Err(_) => Via::AfXdp,
            }),
            Via::LiveFrames => match xsktap_sys::probe::live_frames(ifindex) {
                Ok(()) => Ok(Via::LiveFrames),
                Err(e) => anyhow::bail!(
                    "--via live-frames: this kernel refuses BPF_PROG_RUN with live frames on {iface} ({e}); use --via af-xdp (or auto)"
                ),
            },
        }
    }
}

/// What the generator did.
#[derive(Debug, Clone, Copy)]
pub struct GenReport {
    /// Frames the program ran on and transmitted (XDP_TX).
    pub sent: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl GenReport {
    /// Frames per second achieved.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The generator, ready to send.
pub struct Generator {
    /// The live-frames program, when that is the path.
    prog: Option<OwnedFd>,
    rate: Option<f64>,
    frame: Vec<u8>,
    ifindex: u32,
    via: Via,
    udp_offset: usize,
    csum_base: u32,
    /// The TX queue the next sending thread binds (AF_XDP: one per thread).
    next_queue: AtomicU32,
}

/// Most frames per BPF_PROG_RUN call. Each call costs the kernel tens of
/// milliseconds of setup (it swaps the XDP dispatcher in and out), so calls
/// are large; pacing happens frame by frame inside the program.
const MAX_RUN: u64 = 1 << 22;
/// Traffic per call when pacing.
const PACE_SLICE: Duration = Duration::from_secs(1);

impl Generator {
    /// Builds the base frame and loads the program.
    pub fn new(cfg: &GenConfig) -> anyhow::Result<Generator> {
        let min = if cfg.ipv6 {
            14 + 40 + 8 + frames::STAMP_LEN
        } else {
            60
        };
        anyhow::ensure!(
            (min..=frames::MAX_FRAME).contains(&cfg.frame_size),
            "frame size {} is outside {min}..={}",
            cfg.frame_size,
            frames::MAX_FRAME
        );
        anyhow::ensure!(
            cfg.flows >= 1 && cfg.flows <= 65535,
            "flows must be 1..=65535"
        );
        let ifindex = crate::send::ifindex(&cfg.iface)?;
        let (frame, udp_offset, csum_base) = if cfg.ipv6 {
            frames::udp6_frame(cfg.frame_size)
        } else {
            (frames::udp_frame(cfg.frame_size, 0, 0), 34, 0)
        };
        let via = cfg.via.resolve(&cfg.iface, ifindex)?;
        let prog = match via {
            Via::LiveFrames => Some(load(cfg, udp_offset, csum_base)?),
            _ => None,
        };
        Ok(Generator {
            prog,
            rate: cfg.rate,
            frame,
            ifindex,
            via,
            udp_offset,
            csum_base,
            next_queue: AtomicU32::new(0),
        })
    }

    /// The path the frames take (never [`Via::Auto`]).
    pub fn via(&self) -> Via {
        self.via
    }

    /// Runs the program `n` times in live-frames mode on the calling CPU.
    fn run(&self, n: u32) -> io::Result<()> {
        // Frames leave in bursts of one batch: when paced, a burst spans at
        // most about 16 us, so that latency measures the receiver, not the burst.
        let batch = match self.rate {
            Some(rate) => ((rate / 62_500.0) as u32).clamp(1, 64),
            None => 64,
        };
        let prog = self.prog.as_ref().expect("loaded for live frames");
        live_frames(prog, &self.frame, self.ifindex, n, batch)
    }

    /// Sends `cfg.count` frames from the calling thread, paced frame by frame
    /// to `cfg.rate` (frames per second of this thread) by the program.
    pub fn send(&self, cfg: &GenConfig) -> anyhow::Result<GenReport> {
        if self.via == Via::AfXdp {
            return self.send_af_xdp(cfg);
        }
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < cfg.count && start.elapsed() < cfg.max_duration {
            let chunk = match cfg.rate {
                Some(rate) => ((rate * PACE_SLICE.as_secs_f64()) as u64).clamp(64, MAX_RUN),
                None => MAX_RUN,
            };
            let n = (cfg.count - sent).min(chunk) as u32;
            self.run(n)
                .map_err(|e| anyhow::anyhow!("BPF_PROG_RUN (live frames) on {}: {e}", cfg.iface))?;
            sent += u64::from(n);
        }
        Ok(GenReport {
            sent,
            elapsed: start.elapsed(),
        })
    }
}

impl Generator {
    /// [`Generator::send`] through an AF_XDP socket bound to the next TX
    /// queue: frames patched in their UMEM frames, paced frame by frame.
    fn send_af_xdp(&self, cfg: &GenConfig) -> anyhow::Result<GenReport> {
        let queue = self.next_queue.fetch_add(1, Ordering::Relaxed);
        let mut tx = open_tx(&XskTxConfig {
            iface: cfg.iface.clone(),
            ifindex: self.ifindex,
            queue,
            frame_size: 2048,
            ring_size: 2048,
            zero_copy: ZeroCopy::Auto,
        })
        .map_err(|e| anyhow::anyhow!("AF_XDP TX socket on {} queue {queue}: {e}", cfg.iface))?;
        tx.rings().prefill(&self.frame);
        // A burst in one sendto where the kernel allows it (else 32 a call).
        tx.set_tx_budget(64);
        // SAFETY: sched_getcpu reads the calling thread's CPU; no memory.
        let stream = unsafe { libc::sched_getcpu() }.max(0) as u16;
        let interval = self.rate.map(|r| Duration::from_secs_f64(1.0 / r));
        // As the live-frames path: a paced burst spans about 16 us at most.
        let batch = match self.rate {
            Some(rate) => ((rate / 62_500.0) as u32).clamp(1, 64),
            None => 64,
        };
        let len = self.frame.len() as u32;
        let stamper = Stamper {
            payload: self.udp_offset + 8,
            udp: self.udp_offset,
            stream,
            flows: cfg.flows.max(1),
            csum_base: cfg.ipv6.then_some(self.csum_base),
        };
        let start = Instant::now();
        let mut due = start;
        let mut seq = 0u32;
        let mut queued = 0u64;
        while queued < cfg.count && start.elapsed() < cfg.max_duration {
            let n = (cfg.count - queued).min(u64::from(batch)) as u32;
            // Unpaced, a burst's frames share one clock read (the clock is a
            // good part of a frame's cost on a VM); paced, each frame is
            // stamped when it is due.
            let mut ts = xsktap_sys::clock::monotonic_ns();
            let got = tx.rings().send(n, |_, frame| {
                if let Some(interval) = interval {
                    due = pace(due, interval);
                    ts = xsktap_sys::clock::monotonic_ns();
                }
                stamper.apply(frame, seq, ts);
                seq = seq.wrapping_add(1);
                len
            });
            queued += u64::from(got);
            tx.kick()
                .map_err(|e| anyhow::anyhow!("AF_XDP TX (sendto) on {}: {e}", cfg.iface))?;
            if got == 0 {
                std::hint::spin_loop();
            }
        }
        let left = tx
            .flush(Duration::from_secs(1))
            .map_err(|e| anyhow::anyhow!("AF_XDP TX (sendto) on {}: {e}", cfg.iface))?;
        Ok(GenReport {
            sent: queued - left as u64,
            elapsed: start.elapsed(),
        })
    }
}

/// Opens a TX socket, waiting up to a second for a queue a socket just
/// closed by an earlier run to be free: the kernel releases a socket's
/// queue asynchronously, after the process that held it is gone.
pub(crate) fn open_tx(cfg: &XskTxConfig) -> xsktap_sys::Result<XskTx> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match XskTx::new(cfg) {
            Err(xsktap_sys::Error::QueueBusy { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Waits until `due` (sleeping while more than 200 us away, spinning after)
/// and returns when the next frame is due. A sender more than 1 ms behind
/// starts afresh instead of bursting to catch up, as the program does.
pub(crate) fn pace(due: Instant, interval: Duration) -> Instant {
    let now = Instant::now();
    if now > due + Duration::from_millis(1) {
        return now + interval;
    }
    if let Some(ahead) = due.checked_duration_since(now) {
        if ahead > Duration::from_micros(200) {
            std::thread::sleep(ahead - Duration::from_micros(150));
        }
        while Instant::now() < due {
            std::hint::spin_loop();
        }
    }
    due + interval
}

/// Writes what the generator program writes into each frame.
struct Stamper {
    /// Offset of the stamp (the UDP payload).
    payload: usize,
    /// Offset of the UDP header.
    udp: usize,
    stream: u16,
    flows: u32,
    /// IPv6: the folded sum of everything the stamper does not write.
    csum_base: Option<u32>,
}

impl Stamper {
    /// Stamps `frame` number `seq`, leaving at `ts` (CLOCK_MONOTONIC): the
    /// stamp, the source port of flow `seq % flows`, and with IPv6 the UDP
    /// checksum rebuilt from `csum_base`.
    #[inline(always)]
    fn apply(&self, frame: &mut [u8], seq: u32, ts: u64) {
        let (payload, udp) = (self.payload, self.udp);
        let stamp = &mut frame[payload..payload + latency::STAMP_LEN];
        stamp[..2].copy_from_slice(&latency::MAGIC.to_ne_bytes());
        stamp[latency::STREAM_OFFSET..latency::STREAM_OFFSET + 2]
            .copy_from_slice(&self.stream.to_ne_bytes());
        stamp[latency::SEQ_OFFSET..latency::SEQ_OFFSET + 4].copy_from_slice(&seq.to_ne_bytes());
        stamp[latency::TS_OFFSET..latency::TS_OFFSET + 8].copy_from_slice(&ts.to_ne_bytes());
        let port = 10_000u16.wrapping_add((seq % self.flows) as u16);
        frame[udp..udp + 2].copy_from_slice(&port.to_be_bytes());
        if let Some(base) = self.csum_base {
            let words = |b: &[u8]| -> u64 {
                b.chunks(2)
                    .map(|w| u64::from(u16::from_ne_bytes([w[0], w[1]])))
                    .sum()
            };
            let mut sum = u64::from(base)
                + words(&frame[payload..payload + latency::STAMP_LEN])
                + words(&frame[udp..udp + 2]);
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            let c = match !(sum as u16) {
                0 => 0xffff,
                c => c,
            };
            frame[udp + 6..udp + 8].copy_from_slice(&c.to_ne_bytes());
        }
    }
}

/// Loads the live-frames program for `cfg`.
fn load(cfg: &GenConfig, udp_offset: usize, csum_base: u32) -> anyhow::Result<OwnedFd> {
    let mut object = MaybeUninit::uninit();
    let mut open = skel::GenSkelBuilder::default().open(&mut object)?;
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .expect("the program has read-only settings");
    rodata.udp_offset = udp_offset as u32;
    rodata.payload_offset = udp_offset as u32 + 8;
    rodata.flows = cfg.flows;
    rodata.base_port = 10_000;
    rodata.ipv6 = u32::from(cfg.ipv6);
    rodata.csum_base = csum_base;
    rodata.interval_ns = cfg.rate.map_or(0, |r| (1e9 / r) as u64);
    let skel = open.load()?;
    Ok(skel.progs.xsktap_gen.as_fd().try_clone_to_owned()?)
}

/// Runs XDP program `prog` `n` times on `frame` in live-frames mode on the
/// calling CPU, as received on `ifindex`, `batch` frames at a time.
pub(crate) fn live_frames(
    prog: &OwnedFd,
    frame: &[u8],
    ifindex: u32,
    n: u32,
    batch: u32,
) -> io::Result<()> {
    // SAFETY: xdp_md is plain data; all-zero is valid.
    let mut ctx: libbpf_sys::xdp_md = unsafe { std::mem::zeroed() };
    ctx.data_end = frame.len() as u32;
    ctx.ingress_ifindex = ifindex;
    // SAFETY: an all-zero bpf_test_run_opts is valid; `sz` is set right after.
    let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _;
    opts.data_in = frame.as_ptr().cast();
    opts.data_size_in = frame.len() as u32;
    opts.ctx_in = (&ctx as *const libbpf_sys::xdp_md).cast();
    opts.ctx_size_in = std::mem::size_of::<libbpf_sys::xdp_md>() as u32;
    opts.repeat = n as i32;
    opts.flags = libbpf_sys::BPF_F_TEST_XDP_LIVE_FRAMES;
    opts.batch_size = batch;
    // SAFETY: opts points at the frame and context, which outlive the call.
    let ret = unsafe { libbpf_sys::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
    if ret < 0 {
        return Err(io::Error::from_raw_os_error(-ret));
    }
    Ok(())
}
