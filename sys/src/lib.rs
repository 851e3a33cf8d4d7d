//! xsktap's system layer: every system call and every `unsafe` block of the
//! engine lives here, behind small safe wrappers.
//!
//! ```text
//!  build.rs ─ clang ─▶ bpf/xsktap.bpf.c ─▶ skeleton (types from bpf/xsktap.h)
//!  loader   XDP program: load, maps (XSKMAP, queue conf, counters, filter), bpf_link attach
//!  xsk      AF_XDP socket: UMEM, fill/RX rings (RxRings), bind, XDP_STATISTICS; RxQueue impl
//!  netdev   ifindex, RX queue count, sysfs knobs      cpu    allowed CPUs, pinning
//!  caps     capabilities, memlock                      clock  CLOCK_MONOTONIC, wall clock
//! ```
//!
//! The constants and layouts shared with the XDP program are defined once,
//! in `bpf/xsktap.h`; xsktap-core keeps plain copies for its pure code, and
//! the assertions at the end of this file fail the build if they ever differ.

#![deny(missing_docs)]

pub mod bpflog;
pub mod caps;
pub mod clock;
pub mod cpu;
pub mod error;
pub mod loader;
pub mod mcast;
pub mod netdev;
pub mod output;
pub mod phc;
pub mod probe;
mod syscall;
pub mod user;
pub mod xsk;

pub use error::{Error, Result};

#[allow(
    missing_docs,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    unused_imports
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/xsktap.skel.rs"));
}

/// Compile-time checks that xsktap-core's copies of the shared constants
/// equal the header's (through the skeleton).
mod layout_checks {
    use std::mem::{offset_of, size_of};

    use xsktap_core::filter::{self, FilterOp};
    use xsktap_core::latency;
    use xsktap_core::limit::LimitBy;
    use xsktap_core::rxmeta;

    use crate::skel::types::{
        xsktap_filter_insn, xsktap_filter_op as op, xsktap_filter_target as target,
        xsktap_gen as gen, xsktap_gen_stamp, xsktap_limit_by as by, xsktap_limit_key,
        xsktap_limit_state, xsktap_limits as limits, xsktap_meta, xsktap_meta_consts as meta,
        xsktap_meta_flags as meta_flags, xsktap_stamp_carry as carry, xsktap_vlan as vlan,
    };

    const _: () = assert!(filter::MAX_TESTS as u32 == limits::XSKTAP_FILTER_MAX_INSNS.0);
    const _: () = assert!(filter::TARGET_ACCEPT as u32 == target::XSKTAP_FILTER_ACCEPT.0);
    const _: () = assert!(filter::TARGET_REJECT as u32 == target::XSKTAP_FILTER_REJECT.0);
    const _: () = assert!(filter::VLAN_ANY as u32 == vlan::XSKTAP_VLAN_ANY.0);
    const _: () = assert!(FilterOp::Accept as u32 == op::XSKTAP_OP_ACCEPT.0);
    const _: () = assert!(FilterOp::EtherType as u32 == op::XSKTAP_OP_ETHERTYPE.0);
    const _: () = assert!(FilterOp::IpProto as u32 == op::XSKTAP_OP_IP_PROTO.0);
    const _: () = assert!(FilterOp::SrcNet as u32 == op::XSKTAP_OP_SRC_NET.0);
    const _: () = assert!(FilterOp::DstNet as u32 == op::XSKTAP_OP_DST_NET.0);
    const _: () = assert!(FilterOp::SrcPort as u32 == op::XSKTAP_OP_SRC_PORT.0);
    const _: () = assert!(FilterOp::DstPort as u32 == op::XSKTAP_OP_DST_PORT.0);
    const _: () = assert!(FilterOp::Vlan as u32 == op::XSKTAP_OP_VLAN.0);
    const _: () = assert!(
        size_of::<xsktap_filter_insn>() == 48,
        "no padding in a filter test"
    );
    const _: () = assert!(LimitBy::Source.code() == by::XSKTAP_LIMIT_SRC.0);
    const _: () = assert!(LimitBy::Destination.code() == by::XSKTAP_LIMIT_DST.0);
    const _: () = assert!(LimitBy::Flow.code() == by::XSKTAP_LIMIT_FLOW.0);
    const _: () = assert!(
        size_of::<xsktap_limit_key>() == 40 && size_of::<xsktap_limit_state>() == 16,
        "no padding in the rate limit's key and bucket"
    );
    const _: () = assert!(latency::MAGIC as u32 == gen::XSKTAP_GEN_MAGIC.0);
    const _: () = assert!(latency::STAMP_LEN as u32 == gen::XSKTAP_GEN_STAMP_LEN.0);
    const _: () = assert!(latency::STAMP_LEN == size_of::<xsktap_gen_stamp>());
    const _: () = assert!(latency::STREAM_OFFSET == offset_of!(xsktap_gen_stamp, stream));
    const _: () = assert!(latency::SEQ_OFFSET == offset_of!(xsktap_gen_stamp, seq));
    const _: () = assert!(latency::TS_OFFSET == offset_of!(xsktap_gen_stamp, ts_ns));
    const _: () = assert!(rxmeta::MAGIC == meta::XSKTAP_META_MAGIC.0);
    const _: () = assert!(rxmeta::LEN as u32 == meta::XSKTAP_META_LEN.0);
    const _: () = assert!(rxmeta::LEN == size_of::<xsktap_meta>());
    const _: () = assert!(rxmeta::RX_NS_OFFSET == offset_of!(xsktap_meta, rx_ns));
    const _: () = assert!(rxmeta::FLAGS_OFFSET == offset_of!(xsktap_meta, flags));
    const _: () = assert!(rxmeta::MAGIC_OFFSET == offset_of!(xsktap_meta, magic));
    const _: () = assert!(rxmeta::FLAG_HARDWARE == meta_flags::XSKTAP_META_HARDWARE.0);
    const _: () = assert!(rxmeta::FLAG_HEADROOM == meta_flags::XSKTAP_META_HEADROOM.0);
    const _: () = assert!(rxmeta::Carry::Metadata.code() == carry::XSKTAP_CARRY_METADATA.0);
    const _: () = assert!(rxmeta::Carry::Headroom.code() == carry::XSKTAP_CARRY_HEADROOM.0);
}
