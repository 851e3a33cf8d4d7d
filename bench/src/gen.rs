//! The generator: the XDP program in `bench/bpf/gen.bpf.c`, run with
//! BPF_PROG_RUN in live-frames mode, transmits stamped frames out of an
//! interface at millions of packets per second, optionally paced.

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
use std::time::{Duration, Instant};

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

/// The loaded generator program.
pub struct Generator {
    prog: OwnedFd,
    rate: Option<f64>,
    frame: Vec<u8>,
    ifindex: u32,
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
        let prog = skel.progs.xsktap_gen.as_fd().try_clone_to_owned()?;
        Ok(Generator {
            prog,
            rate: cfg.rate,
            frame,
            ifindex,
        })
    }

    /// Runs the program `n` times in live-frames mode on the calling CPU.
    fn run(&self, n: u32) -> io::Result<()> {
        // Frames leave in bursts of one batch: when paced, a burst spans at
        // most about 16 us, so that latency measures the receiver, not the burst.
        let batch = match self.rate {
            Some(rate) => ((rate / 62_500.0) as u32).clamp(1, 64),
            None => 64,
        };
        live_frames(&self.prog, &self.frame, self.ifindex, n, batch)
    }

    /// Sends `cfg.count` frames from the calling thread, paced frame by frame
    /// to `cfg.rate` (frames per second of this thread) by the program.
    pub fn send(&self, cfg: &GenConfig) -> anyhow::Result<GenReport> {
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
