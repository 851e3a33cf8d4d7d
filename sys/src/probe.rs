//! What this kernel lets xsktap do, asked before anything is loaded.
//!
//! Each probe is cheap and attaches nothing: a helper is probed with
//! libbpf's `libbpf_probe_bpf_helper` (a tiny program the verifier accepts
//! or refuses); what only a trial tells (the live-frames test run) is tried
//! once with a two-instruction program that drops the frame. Kernels differ
//! (distributions, clouds, hardened builds), so every feature xsktap can do
//! without is probed and the fallback chosen, never assumed.
//!
//! `XSKTAP_TEST_MISSING` (a comma-separated list of [`Feature`] names)
//! makes the probes report those features missing, so that tests exercise
//! the fallbacks on any kernel.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use libbpf_rs::libbpf_sys;

/// A kernel feature xsktap probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `bpf_xdp_adjust_meta` in XDP programs: stamps in XDP metadata.
    AdjustMeta,
    /// `BPF_PROG_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`: the live-frames generator.
    LiveFrames,
    /// Frags-aware XDP programs (`BPF_F_XDP_HAS_FRAGS`): multi-buffer frames.
    Frags,
    /// The XDP receive-timestamp kfunc (`bpf_xdp_metadata_rx_timestamp`).
    RxTimestamp,
}

impl Feature {
    /// The name `XSKTAP_TEST_MISSING` and `xsktap features` use.
    pub const fn name(self) -> &'static str {
        match self {
            Feature::AdjustMeta => "adjust_meta",
            Feature::LiveFrames => "live_frames",
            Feature::Frags => "frags",
            Feature::RxTimestamp => "rx_timestamp",
        }
    }
}

/// Whether `XSKTAP_TEST_MISSING` names `feature`.
pub fn forced_missing(feature: Feature) -> bool {
    std::env::var("XSKTAP_TEST_MISSING").is_ok_and(|list| {
        list.split(',')
            .map(str::trim)
            .any(|name| name == feature.name())
    })
}

/// Whether XDP programs may call `bpf_xdp_adjust_meta` on this kernel.
pub fn xdp_metadata() -> bool {
    !forced_missing(Feature::AdjustMeta) && helper(libbpf_sys::BPF_FUNC_xdp_adjust_meta)
}

/// Whether XDP programs may call helper `id`.
fn helper(id: libbpf_sys::bpf_func_id) -> bool {
    crate::caps::raise_memlock();
    // SAFETY: plain call; a null opts is allowed and nothing is kept.
    let ret = unsafe {
        libbpf_sys::libbpf_probe_bpf_helper(libbpf_sys::BPF_PROG_TYPE_XDP, id, std::ptr::null())
    };
    ret == 1
}

/// An instruction of a probe program.
fn insn(code: u8, imm: i32) -> libbpf_sys::bpf_insn {
    libbpf_sys::bpf_insn {
        code,
        _bitfield_align_1: [],
        _bitfield_1: libbpf_sys::bpf_insn::new_bitfield_1(0, 0),
        off: 0,
        imm,
    }
}

/// Loads `r0 = action; exit` as an XDP program with load `flags`.
fn tiny_xdp(action: u32, flags: u32) -> std::io::Result<OwnedFd> {
    const MOV64_IMM_R0: u8 =
        (libbpf_sys::BPF_ALU64 | libbpf_sys::BPF_MOV | libbpf_sys::BPF_K) as u8;
    const EXIT: u8 = (libbpf_sys::BPF_JMP | libbpf_sys::BPF_EXIT) as u8;
    let insns = [insn(MOV64_IMM_R0, action as i32), insn(EXIT, 0)];
    // SAFETY: an all-zero bpf_prog_load_opts is valid; `sz` is set right after.
    let mut opts: libbpf_sys::bpf_prog_load_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _;
    opts.prog_flags = flags;
    crate::caps::raise_memlock();
    // SAFETY: the license and the instructions outlive the call; libbpf
    // copies what it keeps. A non-negative return is a new fd we own.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_XDP,
            c"xsktap_probe".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            &mut opts,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: a fresh fd from bpf_prog_load, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether frags-aware XDP programs load (`BPF_F_XDP_HAS_FRAGS`, 5.18).
pub fn frags() -> bool {
    !forced_missing(Feature::Frags)
        && tiny_xdp(libbpf_sys::XDP_PASS, libbpf_sys::BPF_F_XDP_HAS_FRAGS).is_ok()
}

/// Whether `BPF_PROG_RUN` in live-frames mode runs here, tried once on
/// `ifindex` with a program that drops the frame (nothing is sent): `Ok`
/// or the kernel's answer (EPERM on a kernel that refuses it, EINVAL
/// before 5.18).
pub fn live_frames(ifindex: u32) -> std::io::Result<()> {
    if forced_missing(Feature::LiveFrames) {
        return Err(std::io::Error::from_raw_os_error(libc::EPERM));
    }
    let prog = tiny_xdp(libbpf_sys::XDP_DROP, 0)?;
    let frame = [0u8; 64];
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
    opts.repeat = 1;
    opts.flags = libbpf_sys::BPF_F_TEST_XDP_LIVE_FRAMES;
    // SAFETY: opts points at the frame and context, which outlive the call.
    let ret = unsafe { libbpf_sys::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
    if ret < 0 {
        return Err(std::io::Error::from_raw_os_error(-ret));
    }
    Ok(())
}

/// The XDP features an interface's driver reports (the netdev netlink
/// family's `xdp-features`, through libbpf's `bpf_xdp_query`; 6.3 and
/// later): a mask of [`xdp_act`] bits, `None` where the kernel does not say.
pub fn xdp_features(ifindex: u32) -> Option<u64> {
    // SAFETY: an all-zero bpf_xdp_query_opts is valid; `sz` is set right after.
    let mut opts: libbpf_sys::bpf_xdp_query_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as _;
    // SAFETY: opts is a valid, sized bpf_xdp_query_opts the call fills.
    let ret = unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) };
    (ret == 0 && opts.feature_flags != 0).then_some(opts.feature_flags)
}

/// The bits of [`xdp_features`] (`enum netdev_xdp_act`, linux/netdev.h).
pub mod xdp_act {
    /// XDP_PASS, XDP_DROP, XDP_ABORTED, XDP_TX in the driver: native XDP.
    pub const BASIC: u64 = 1 << 0;
    /// XDP_REDIRECT in the driver: native redirects into AF_XDP sockets.
    pub const REDIRECT: u64 = 1 << 1;
    /// AF_XDP zero-copy.
    pub const XSK_ZEROCOPY: u64 = 1 << 3;
    /// Frames in several buffers (multi-buffer) in native XDP.
    pub const RX_SG: u64 = 1 << 5;
}

/// Whether the kernel knows `SO_PREFER_BUSY_POLL` (5.11), tried on a UDP socket.
pub fn prefer_busy_poll() -> bool {
    const SO_PREFER_BUSY_POLL: libc::c_int = 69;
    // SAFETY: plain socket(2) call; the fd is checked and owned right after.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return false;
    }
    // SAFETY: a fresh fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let one: libc::c_int = 1;
    // SAFETY: a valid int option value of its exact size.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PREFER_BUSY_POLL,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    ret == 0
}

/// Whether AF_XDP sockets can be created here.
pub fn af_xdp() -> bool {
    // SAFETY: plain socket(2) call; the fd is owned (and closed) right after.
    let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return false;
    }
    // SAFETY: a fresh fd nobody else owns; dropped at once.
    drop(unsafe { OwnedFd::from_raw_fd(raw) });
    true
}

/// Whether the kernel has the XDP receive-timestamp kfunc
/// (`bpf_xdp_metadata_rx_timestamp`, 6.3), looked up by name in its BTF.
pub fn rx_timestamp_kfunc() -> bool {
    !forced_missing(Feature::RxTimestamp)
        && std::fs::read("/sys/kernel/btf/vmlinux").is_ok_and(|btf| {
            let name = b"\0bpf_xdp_metadata_rx_timestamp\0";
            btf.windows(name.len()).any(|w| w == name)
        })
}
