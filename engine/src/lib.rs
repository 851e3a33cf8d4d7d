//! xsktap's engine: capture packets from a NIC's RX queues through AF_XDP.
//!
//! ```text
//!  NIC queue q ──XDP program──┬─ queue not captured ─▶ XDP_PASS (host stack)
//!                             └─ bpf_redirect_map(xsks, q) ─▶ AF_XDP socket q (UMEM q)
//!                                                               │ RX ring, in batches
//!                    worker q (pinned CPU) ◀────────────────────┘
//!                      counters (per worker) ▶ pcap batcher ─▶ writer thread ─▶ file/stdout
//!                      frames back to the fill ring
//! ```
//!
//! Lifecycle: a [`CaptureConfig`] is validated; [`Capture::start`] loads the
//! XDP program ([`loader`]), creates one [`xsk::XskSocket`] per queue and puts
//! it in the XSKMAP, attaches the program through a bpf_link, and starts one
//! [`worker`] per queue. [`Capture::snapshot`] reads counters at any time
//! without stopping anything. [`Capture::stop`] detaches the program, lets
//! the workers drain their rings, flushes the output and returns a
//! [`Summary`]. The bpf_link detaches by itself if the process dies.
//!
//! Counters are kept apart by where they come from ([`stats`]): the XDP
//! program's, the kernel socket's (`XDP_STATISTICS`) and the workers' own.

#![deny(missing_docs)]

pub mod capture;
pub mod config;
pub mod error;
pub mod filter;
pub mod flows;
pub mod latency;
pub mod loader;
pub mod parse;
pub mod sink;
pub mod stats;
mod sys;
mod worker;
pub mod xsk;

#[allow(
    missing_docs,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    unused_imports
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/xsktap.skel.rs"));
}

pub use capture::{Capture, Finish, Output, Summary};
pub use config::CaptureConfig;
pub use error::{Error, Result};
pub use loader::{AttachedMode, XdpMode};
pub use xsk::{BindMode, ZeroCopy};
