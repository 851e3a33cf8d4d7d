//! xsktap's pure logic: everything a capture decides and computes that needs
//! no system call, so that it is tested anywhere, without root, clang or libbpf.
//!
//! ```text
//!   frame bytes ─▶ parse ─▶ Packet ─┬─▶ stats (per-worker counters) ─▶ Snapshot ─▶ summary
//!                                   ├─▶ flows (bounded table) ─▶ top-N
//!                                   ├─▶ latency (generator stamps, time passed in)
//!                                   ├─▶ filter (compiled tests; same list the XDP program runs)
//!                                   └─▶ pcap / monitor encoding ─▶ a RecordSink
//!   worker: Pacer (nap / poll / busy-poll / flush / -c budget) drives an RxQueue
//! ```
//!
//! The sys crate (`xsktap-sys`) implements [`worker::RxQueue`] for a real
//! AF_XDP socket and checks at compile time that the constants here equal
//! those of `bpf/xsktap.h`; the runtime (`xsktap`) runs [`worker::run`] on
//! pinned threads with real clocks.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod alerts;
pub mod config;
pub mod features;
pub mod feed;
pub mod filter;
pub mod fleet;
pub mod flows;
pub mod ipfix;
pub mod latency;
pub mod limit;
pub mod monitor;
pub mod parse;
pub mod pcap;
pub mod pcapng;
pub mod placement;
pub mod reorder;
pub mod rotation;
pub mod rxmeta;
pub mod stats;
pub mod summary;
pub mod timestamps;
pub mod types;
pub mod worker;

pub use config::{CaptureConfig, ConfigError};
pub use types::{AttachedMode, BindMode, BpfCounters, SocketStats, XdpMode, ZeroCopy};
