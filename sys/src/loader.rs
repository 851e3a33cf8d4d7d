//! Loads the XDP program (through the libbpf-cargo skeleton), fills its maps
//! and attaches it to an interface through a bpf_link.
//!
//! A bpf_link detaches when its last file descriptor closes, so the program
//! goes away with the process however the process ends (SIGKILL included).
//! A link never replaces a program attached by someone else: the kernel
//! refuses, and [`XdpProgram::attach`] checks first to say so clearly.

use std::io;
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle};

use xsktap_core::filter::{FilterInsn, Program};
use xsktap_core::limit::{LimitKey, RateLimit};
use xsktap_core::rxmeta::Carry;
use xsktap_core::{AttachedMode, BpfCounters, XdpMode};

use crate::error::{Error, Result};
use crate::skel::types::{
    xsktap_counters, xsktap_feed_key, xsktap_filter_insn, xsktap_filter_op, xsktap_hw_clock,
    xsktap_limit_key, xsktap_limit_state, xsktap_queue_conf,
};
use crate::skel::XsktapSkelBuilder;

/// The attach flag of a mode.
fn mode_flags(mode: AttachedMode) -> u32 {
    match mode {
        AttachedMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
        AttachedMode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
    }
}

/// The loaded (not yet attached) XDP program and its maps.
#[derive(Debug)]
pub struct XdpProgram {
    prog: OwnedFd,
    /// Loaded as frags-aware (`BPF_F_XDP_HAS_FRAGS`): it takes frames that
    /// span several buffers (jumbo frames, AF_XDP multi-buffer).
    frags: bool,
    /// The variant loaded: software or hardware timestamps.
    stamps: Stamps,
    /// Where the program carries the stamps.
    carry: Carry,
    /// Whether only frames to the feeds map are taken (set by `set_feeds`).
    feeds_only: AtomicU32,
    feeds: MapHandle,
    hw_clock: MapHandle,
    xsks: MapHandle,
    queue_conf: MapHandle,
    counters: MapHandle,
    filter: MapHandle,
    /// The rate limit the program was loaded with, if any.
    limit: Option<RateLimit>,
    limits: MapHandle,
}

/// How the NIC's clock relates to CLOCK_MONOTONIC, as the hardware variant
/// of the program reads it (its `hw_clock` map).
#[derive(Debug)]
pub struct HwClock {
    map: MapHandle,
}

impl HwClock {
    /// Sets `PHC - CLOCK_MONOTONIC` (ns); until the first call the program
    /// writes software stamps.
    pub fn set(&self, phc_minus_mono: i64) -> Result<()> {
        let clock = xsktap_hw_clock {
            phc_minus_mono,
            valid: 1,
            pad: 0,
        };
        // SAFETY: xsktap_hw_clock is a repr(C) struct generated from
        // bpf/xsktap.h: i64, u32, u32, no padding, every byte initialised.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&clock as *const xsktap_hw_clock).cast::<u8>(),
                std::mem::size_of::<xsktap_hw_clock>(),
            )
        };
        self.map.update(&0u32.to_ne_bytes(), bytes, MapFlags::ANY)?;
        Ok(())
    }
}

/// An attached XDP program; dropping it detaches the program.
#[derive(Debug)]
pub struct XdpLink {
    _link: OwnedFd,
    mode: AttachedMode,
}

impl XdpLink {
    /// The mode the program runs in.
    pub fn mode(&self) -> AttachedMode {
        self.mode
    }
}

/// Reads the frames the program redirected into a queue's socket on each
/// CPU: where that queue's receive work runs.
pub struct CpuCounts {
    counters: MapHandle,
}

impl CpuCounts {
    /// Frames redirected into `queue`'s socket so far, by CPU (indexed by
    /// the CPU's number).
    ///
    /// # Errors
    /// [`Error::Bpf`] when the map cannot be read.
    pub fn redirected(&self, queue: u32) -> Result<Vec<u64>> {
        Ok(self
            .counters
            .lookup_percpu(&queue.to_ne_bytes(), MapFlags::ANY)?
            .unwrap_or_default()
            .iter()
            .map(|bytes| counters_from_bytes(bytes).redirected)
            .collect())
    }
}

/// Which timestamps the program writes in front of each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamps {
    /// None: the worker stamps each batch when it takes it (`-j host_lowprec`).
    None,
    /// `bpf_ktime_get_ns()` when the program runs: any interface.
    Software,
    /// The driver's receive timestamp (`bpf_xdp_metadata_rx_timestamp`),
    /// software where it gives none. The program is device-bound: it loads
    /// for, and attaches to, interface `ifindex` only.
    Hardware {
        /// The interface the program is bound to.
        ifindex: u32,
    },
}

impl Stamps {
    /// The variant, as a load failure names it.
    pub fn describe(self) -> &'static str {
        match self {
            Stamps::None => "the variant without per-frame stamps",
            Stamps::Software => "the software-timestamp variant",
            Stamps::Hardware { .. } => "the device-bound hardware-timestamp variant",
        }
    }
}

impl XdpProgram {
    /// Opens and loads the program into the kernel, with `limit` dropping
    /// frames above a rate per key (none: the limiter is not in the program).
    ///
    /// # Errors
    /// [`Error::Bpf`] when libbpf or the verifier refuses the program.
    pub fn load(stamps: Stamps, limit: Option<RateLimit>) -> Result<Self> {
        // Stamps go in XDP metadata where the kernel allows it, in headroom
        // where it does not (or where the verifier refuses the metadata
        // path for another reason).
        let metadata = crate::probe::xdp_metadata();
        let carry = if metadata {
            Carry::Metadata
        } else {
            Carry::Headroom
        };
        crate::bpflog::take();
        let loaded = Self::load_carrying(stamps, limit, carry);
        let loaded = match loaded {
            Err(_) if carry == Carry::Metadata && stamps != Stamps::None => {
                Self::load_carrying(stamps, limit, Carry::Headroom)
            }
            other => other,
        };
        let log = crate::bpflog::take();
        loaded.map_err(|e| match e {
            Error::Bpf(error) => Error::Refused {
                what: crate::bpflog::refusal(&log).unwrap_or_else(|| error.to_string()),
                variant: stamps.describe(),
            },
            e => e,
        })
    }

    /// Loads frags-aware where the kernel knows the flag (5.18 and later),
    /// without it otherwise; the program reads only the headers, which are
    /// in the first buffer.
    fn load_carrying(stamps: Stamps, limit: Option<RateLimit>, carry: Carry) -> Result<Self> {
        let frags = !crate::probe::forced_missing(crate::probe::Feature::Frags);
        if frags {
            if let Ok(program) = Self::load_with(stamps, limit, carry, true) {
                return Ok(program);
            }
        }
        Self::load_with(stamps, limit, carry, false)
    }

    fn load_with(
        stamps: Stamps,
        limit: Option<RateLimit>,
        carry: Carry,
        frags: bool,
    ) -> Result<Self> {
        let mut object = MaybeUninit::uninit();
        let mut open = XsktapSkelBuilder::default().open(&mut object)?;
        let rodata = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| Error::Config("the XDP object has no read-only data".into()))?;
        rodata.stamp_carry = carry.code();
        match limit {
            Some(limit) => {
                rodata.limit_by = limit.by.code();
                rodata.limit_all = u32::from(limit.all);
                rodata.limit_interval_ns = limit.interval_ns();
                rodata.limit_tolerance_ns = limit.tolerance_ns();
            }
            // LRU and array maps are allocated whole when created: keep the
            // unused ones small.
            None => {
                open.maps.limits.set_max_entries(1)?;
                open.maps.limit_cache.set_max_entries(1)?;
            }
        }
        let frags_flag = if frags {
            libbpf_sys::BPF_F_XDP_HAS_FRAGS
        } else {
            0
        };
        // SEC("xdp") carries no other load flag; only one variant loads.
        match stamps {
            Stamps::None => {
                open.progs.xsktap_xdp_hw.set_autoload(false);
                open.progs.xsktap_xdp.set_autoload(false);
                open.progs.xsktap_xdp_nostamp.set_flags(frags_flag);
            }
            Stamps::Software => {
                open.progs.xsktap_xdp_hw.set_autoload(false);
                open.progs.xsktap_xdp_nostamp.set_autoload(false);
                open.progs.xsktap_xdp.set_flags(frags_flag);
            }
            Stamps::Hardware { ifindex } => {
                open.progs.xsktap_xdp.set_autoload(false);
                open.progs.xsktap_xdp_nostamp.set_autoload(false);
                let hw = &mut open.progs.xsktap_xdp_hw;
                hw.set_ifindex(ifindex);
                hw.set_flags(frags_flag | libbpf_sys::BPF_F_XDP_DEV_BOUND_ONLY);
            }
        }
        let skel = open.load()?;
        let loaded = match stamps {
            Stamps::None => skel.progs.xsktap_xdp_nostamp.as_fd(),
            Stamps::Software => skel.progs.xsktap_xdp.as_fd(),
            Stamps::Hardware { .. } => skel.progs.xsktap_xdp_hw.as_fd(),
        };
        // Keep owned handles to the program and maps; the skeleton (and the
        // libbpf object) can then be dropped without unloading anything.
        let prog = loaded
            .try_clone_to_owned()
            .map_err(|e| crate::error::syscall_error("dup(program fd)", e))?;
        Ok(XdpProgram {
            prog,
            frags,
            stamps,
            carry,
            hw_clock: MapHandle::try_from(&skel.maps.hw_clock)?,
            feeds_only: AtomicU32::new(0),
            feeds: MapHandle::try_from(&skel.maps.feeds)?,
            xsks: MapHandle::try_from(&skel.maps.xsks)?,
            queue_conf: MapHandle::try_from(&skel.maps.queue_conf)?,
            counters: MapHandle::try_from(&skel.maps.counters)?,
            filter: MapHandle::try_from(&skel.maps.filter)?,
            limit,
            limits: MapHandle::try_from(&skel.maps.limits)?,
        })
    }

    /// The rate limit the program runs, if any.
    pub fn limit(&self) -> Option<RateLimit> {
        self.limit
    }

    /// Every key in the rate limit's buckets with the frames it lost since
    /// it entered them (keys pushed out of the LRU map take their counts
    /// with them; the queues' `limited` counters hold the exact total);
    /// `None` without a limit.
    ///
    /// # Errors
    /// [`Error::Bpf`] when the map cannot be read.
    pub fn limited_keys(&self) -> Result<Option<Vec<(LimitKey, u64)>>> {
        let Some(limit) = self.limit else {
            return Ok(None);
        };
        let mut keys = Vec::new();
        for (key, value) in self
            .limits
            .lookup_batch(4096, MapFlags::ANY, MapFlags::ANY)?
        {
            if key.len() < std::mem::size_of::<xsktap_limit_key>()
                || value.len() < std::mem::size_of::<xsktap_limit_state>()
            {
                continue;
            }
            // SAFETY: both slices hold at least one value of their repr(C)
            // types (checked above), whose fields (u64, u16, u8 arrays) are
            // valid for any bit pattern; read_unaligned needs no alignment.
            let (k, v) = unsafe {
                (
                    key.as_ptr().cast::<xsktap_limit_key>().read_unaligned(),
                    value.as_ptr().cast::<xsktap_limit_state>().read_unaligned(),
                )
            };
            let bytes = |a: [u64; 2]| {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&a[0].to_ne_bytes());
                b[8..].copy_from_slice(&a[1].to_ne_bytes());
                b
            };
            keys.push((
                LimitKey::from_wire(
                    limit.by,
                    k.family,
                    bytes(k.src),
                    bytes(k.dst),
                    k.proto,
                    k.sport,
                    k.dport,
                ),
                v.dropped,
            ));
        }
        Ok(Some(keys))
    }

    /// Whether the program takes frames spanning several buffers.
    pub fn frags(&self) -> bool {
        self.frags
    }

    /// The timestamps the loaded variant writes.
    pub fn stamps(&self) -> Stamps {
        self.stamps
    }

    /// Where the loaded program carries its stamps (metadata, or headroom
    /// on a kernel that refuses XDP metadata); meaningless without stamps.
    pub fn carry(&self) -> Carry {
        self.carry
    }

    /// A handle on the hardware variant's clock offset, for the thread that
    /// keeps it measured.
    pub fn hw_clock(&self) -> Result<HwClock> {
        Ok(HwClock {
            map: MapHandle::try_from(&self.hw_clock)?,
        })
    }

    /// Highest queue index + 1 the program can redirect.
    pub fn max_queues(&self) -> u32 {
        self.xsks.max_entries()
    }

    /// Puts `socket` in the XSKMAP for `queue` and marks the queue as captured.
    pub fn add_socket(&self, queue: u32, socket: BorrowedFd<'_>) -> Result<()> {
        let fd = socket.as_raw_fd() as u32;
        self.xsks
            .update(&queue.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)?;
        let conf = xsktap_queue_conf {
            capture: 1,
            feeds_only: self.feeds_only.load(Ordering::Relaxed),
        };
        self.queue_conf
            .update(&queue.to_ne_bytes(), as_bytes(&conf), MapFlags::ANY)?;
        Ok(())
    }

    /// Reads the program's counters for `queue`, summed over all CPUs.
    pub fn counters(&self, queue: u32) -> Result<BpfCounters> {
        let mut sum = BpfCounters::default();
        let per_cpu = self
            .counters
            .lookup_percpu(&queue.to_ne_bytes(), MapFlags::ANY)?
            .unwrap_or_default();
        for bytes in per_cpu {
            let c = counters_from_bytes(&bytes);
            sum.seen += c.seen;
            sum.redirected += c.redirected;
            sum.passed += c.passed;
            sum.redirect_failed += c.redirect_failed;
            sum.filtered_out += c.filtered_out;
            sum.hw_stamp_missing += c.hw_stamp_missing;
            sum.limited += c.limited;
        }
        Ok(sum)
    }

    /// A reader of where the program ran for each queue's frames, for a
    /// thread of its own.
    ///
    /// # Errors
    /// [`Error::Bpf`] when the map's descriptor cannot be duplicated.
    pub fn placement_reader(&self) -> Result<CpuCounts> {
        Ok(CpuCounts {
            counters: MapHandle::try_from(&self.counters)?,
        })
    }

    /// Takes only UDP frames to these feed lines (destination address and
    /// port) from now on, on the queues added after this call: one hash
    /// lookup per frame however many lines there are. Each line's value is
    /// its index in `lines`.
    ///
    /// # Errors
    /// [`Error::Config`] with more lines than the map holds.
    pub fn set_feeds(&self, lines: &[(IpAddr, u16)]) -> Result<()> {
        let max = self.feeds.max_entries() as usize;
        if lines.len() > max {
            return Err(Error::Config(format!(
                "{} feed lines given; the XDP program holds at most {max}",
                lines.len()
            )));
        }
        for (i, &(addr, port)) in lines.iter().enumerate() {
            let key = feed_key(addr, port);
            // SAFETY: xsktap_feed_key is a repr(C) struct generated from
            // bpf/xsktap.h (2 x u64, u16, u8, [u8; 5]): 24 bytes, no padding,
            // every byte initialised (pad set to zeros).
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    (&key as *const xsktap_feed_key).cast::<u8>(),
                    std::mem::size_of::<xsktap_feed_key>(),
                )
            };
            self.feeds
                .update(bytes, &(i as u32).to_ne_bytes(), MapFlags::ANY)?;
        }
        self.feeds_only.store(1, Ordering::Relaxed);
        Ok(())
    }

    /// Number of tests the program's filter holds.
    pub fn max_filter_tests(&self) -> usize {
        self.filter.max_entries() as usize
    }

    /// Installs `program` as the filter (an empty one selects every frame).
    /// Call before [`XdpProgram::attach`].
    ///
    /// # Errors
    /// [`Error::Config`] if the program is longer than the filter map.
    pub fn set_filter(&self, program: &Program) -> Result<()> {
        let max = self.filter.max_entries();
        if program.tests.len() > max as usize {
            return Err(Error::Config(format!(
                "filter needs {} tests; the XDP program holds at most {max}",
                program.tests.len()
            )));
        }
        let encoded = program.encode();
        for i in 0..max {
            let insn = encoded.get(i as usize).map(to_bpf).unwrap_or_default();
            self.filter
                .update(&i.to_ne_bytes(), insn_bytes(&insn), MapFlags::ANY)?;
        }
        Ok(())
    }

    /// Runs `frame` through the loaded program as if it arrived on RX queue 0
    /// (`BPF_PROG_TEST_RUN`, nothing is sent or attached) and says whether
    /// the filter selected it. Queue 0 must be marked captured and have no
    /// socket, which [`XdpProgram::capture_queue_without_socket`] arranges.
    pub fn dry_run(&self, frame: &[u8]) -> Result<bool> {
        let before = self.counters(0)?;
        // SAFETY: an all-zero bpf_test_run_opts is valid; `sz` is set right after.
        let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _;
        opts.data_in = frame.as_ptr().cast();
        opts.data_size_in = frame.len() as u32;
        opts.repeat = 1;
        // SAFETY: `opts` points at `frame`, which outlives the call; no output buffers.
        let ret = unsafe { libbpf_sys::bpf_prog_test_run_opts(self.prog.as_raw_fd(), &mut opts) };
        if ret < 0 {
            return Err(crate::error::syscall_error(
                "bpf_prog_test_run_opts",
                io::Error::from_raw_os_error(-ret),
            ));
        }
        let after = self.counters(0)?;
        let selected =
            after.redirected + after.redirect_failed - before.redirected - before.redirect_failed;
        let refused = after.filtered_out - before.filtered_out;
        match (selected, refused) {
            (1, 0) => Ok(true),
            (0, 1) => Ok(false),
            _ => Err(Error::Config(format!(
                "dry run counted {selected} selected and {refused} filtered frames for one frame"
            ))),
        }
    }

    /// Runs `frame` through the loaded program `repeat` times in the kernel
    /// (`BPF_PROG_TEST_RUN`, as [`XdpProgram::dry_run`]) and returns the
    /// kernel's mean time per run, in ns: the program's cost for that frame.
    pub fn time_run(&self, frame: &[u8], repeat: u32) -> Result<u32> {
        // SAFETY: an all-zero bpf_test_run_opts is valid; `sz` is set right after.
        let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _;
        opts.data_in = frame.as_ptr().cast();
        opts.data_size_in = frame.len() as u32;
        opts.repeat = i32::try_from(repeat.max(1)).unwrap_or(i32::MAX);
        // SAFETY: `opts` points at `frame`, which outlives the call; no output buffers.
        let ret = unsafe { libbpf_sys::bpf_prog_test_run_opts(self.prog.as_raw_fd(), &mut opts) };
        if ret < 0 {
            return Err(crate::error::syscall_error(
                "bpf_prog_test_run_opts",
                io::Error::from_raw_os_error(-ret),
            ));
        }
        Ok(opts.duration)
    }

    /// Marks `queue` captured without putting a socket in the XSKMAP (for
    /// [`XdpProgram::dry_run`]: a selected frame then counts as a failed redirect).
    pub fn capture_queue_without_socket(&self, queue: u32) -> Result<()> {
        let conf = xsktap_queue_conf {
            capture: 1,
            feeds_only: self.feeds_only.load(Ordering::Relaxed),
        };
        self.queue_conf
            .update(&queue.to_ne_bytes(), as_bytes(&conf), MapFlags::ANY)?;
        Ok(())
    }

    /// Attaches the program to `ifindex` through a bpf_link.
    ///
    /// # Errors
    /// [`Error::XdpBusy`] when any XDP program is already attached to the
    /// interface; [`Error::Attach`] when the mode is not supported.
    ///
    /// # Minimum kernel version
    /// 5.9 (XDP bpf_link).
    pub fn attach(&self, iface: &str, ifindex: u32, mode: XdpMode) -> Result<XdpLink> {
        check_no_xdp_program(iface, ifindex)?;
        // The kernel runs a device-bound program in the driver only.
        let mode = match (self.stamps, mode) {
            (Stamps::Hardware { .. }, XdpMode::Auto) => XdpMode::Native,
            _ => mode,
        };
        match mode {
            XdpMode::Native => self.link(iface, ifindex, AttachedMode::Native),
            XdpMode::Generic => self.link(iface, ifindex, AttachedMode::Generic),
            XdpMode::Auto => match self.link(iface, ifindex, AttachedMode::Native) {
                Err(Error::Attach { ref error, .. })
                    if matches!(
                        error.raw_os_error(),
                        Some(libc::EOPNOTSUPP) | Some(libc::EINVAL)
                    ) =>
                {
                    self.link(iface, ifindex, AttachedMode::Generic)
                }
                other => other,
            },
        }
    }

    fn link(&self, iface: &str, ifindex: u32, mode: AttachedMode) -> Result<XdpLink> {
        match link_xdp(self.prog.as_fd(), ifindex, mode) {
            Ok(link) => Ok(XdpLink { _link: link, mode }),
            Err(error) => {
                if matches!(error.raw_os_error(), Some(libc::EBUSY) | Some(libc::EEXIST)) {
                    check_no_xdp_program(iface, ifindex)?;
                }
                Err(Error::Attach {
                    iface: iface.to_string(),
                    mode: mode.as_str(),
                    error,
                })
            }
        }
    }
}

/// Attaches the XDP program `prog` to `ifindex` in `mode` through a bpf_link;
/// closing the returned fd detaches it.
pub fn link_xdp(prog: BorrowedFd<'_>, ifindex: u32, mode: AttachedMode) -> io::Result<OwnedFd> {
    // SAFETY: an all-zero bpf_link_create_opts is valid (libbpf's
    // LIBBPF_OPTS does the same); `sz` is set right after.
    let mut opts: libbpf_sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _;
    opts.flags = mode_flags(mode);
    // SAFETY: valid program fd and opts; on success the returned fd is a new
    // link that we own.
    let fd = unsafe {
        libbpf_sys::bpf_link_create(prog.as_raw_fd(), ifindex as i32, libbpf_sys::BPF_XDP, &opts)
    };
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: `fd` is a fresh link fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Fails with [`Error::XdpBusy`] if any XDP program is attached to `ifindex`.
pub fn check_no_xdp_program(iface: &str, ifindex: u32) -> Result<()> {
    let attached = query_xdp(ifindex)?;
    if let Some((mode, prog_id)) = attached {
        return Err(Error::XdpBusy {
            iface: iface.to_string(),
            mode,
            prog_id,
        });
    }
    Ok(())
}

/// The XDP program attached to `ifindex`, if any: its mode and program id.
pub fn query_xdp(ifindex: u32) -> Result<Option<(&'static str, u32)>> {
    // SAFETY: an all-zero bpf_xdp_query_opts is valid; `sz` is set right after.
    let mut opts: libbpf_sys::bpf_xdp_query_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as _;
    // SAFETY: valid opts pointer; libbpf writes only inside `opts.sz` bytes.
    let ret = unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) };
    if ret < 0 {
        return Err(crate::error::syscall_error(
            "bpf_xdp_query",
            io::Error::from_raw_os_error(-ret),
        ));
    }
    let found = [
        ("native", opts.drv_prog_id),
        ("generic", opts.skb_prog_id),
        ("offloaded", opts.hw_prog_id),
    ]
    .into_iter()
    .find(|(_, id)| *id != 0);
    Ok(found)
}

/// The skeleton's layout of one of the core's encoded tests.
fn to_bpf(insn: &FilterInsn) -> xsktap_filter_insn {
    xsktap_filter_insn {
        op: xsktap_filter_op(insn.op as u32),
        family: insn.family,
        lo: insn.lo,
        hi: insn.hi,
        jt: insn.jt,
        jf: insn.jf,
        addr: insn.addr,
        mask: insn.mask,
    }
}

/// The map key of a feed line.
fn feed_key(addr: IpAddr, port: u16) -> xsktap_feed_key {
    let mut bytes = [0u8; 16];
    let family = match addr {
        IpAddr::V4(a) => {
            bytes[..4].copy_from_slice(&a.octets());
            4
        }
        IpAddr::V6(a) => {
            bytes.copy_from_slice(&a.octets());
            6
        }
    };
    xsktap_feed_key {
        // The program copies the address bytes as they are on the wire.
        addr: [
            u64::from_ne_bytes(bytes[..8].try_into().expect("8 bytes")),
            u64::from_ne_bytes(bytes[8..].try_into().expect("8 bytes")),
        ],
        port,
        family,
        pad: [0; 5],
    }
}

fn as_bytes(conf: &xsktap_queue_conf) -> &[u8] {
    // SAFETY: xsktap_queue_conf is a repr(C) struct of two u32 (generated
    // from bpf/xsktap.h): no padding, every byte initialised.
    unsafe {
        std::slice::from_raw_parts(
            (conf as *const xsktap_queue_conf).cast::<u8>(),
            std::mem::size_of::<xsktap_queue_conf>(),
        )
    }
}

fn insn_bytes(insn: &xsktap_filter_insn) -> &[u8] {
    // SAFETY: xsktap_filter_insn is a repr(C) struct generated from
    // bpf/xsktap.h whose fields (u32 enum, u32, 4 x u16, 4 x u64) leave no
    // padding, so every byte is initialised.
    unsafe {
        std::slice::from_raw_parts(
            (insn as *const xsktap_filter_insn).cast::<u8>(),
            std::mem::size_of::<xsktap_filter_insn>(),
        )
    }
}

fn counters_from_bytes(bytes: &[u8]) -> xsktap_counters {
    assert!(
        bytes.len() >= std::mem::size_of::<xsktap_counters>(),
        "per-CPU value size"
    );
    // SAFETY: the slice holds at least one xsktap_counters (checked above);
    // it is a repr(C) struct of u64s, valid for any bit pattern, and
    // read_unaligned does not need the Vec's alignment.
    unsafe { bytes.as_ptr().cast::<xsktap_counters>().read_unaligned() }
}
