//! xsktap's runtime: capture packets from a NIC's RX queues through AF_XDP,
//! joining the pure logic of `xsktap-core` to the system layer of `xsktap-sys`.
//!
//! ```text
//!  NIC queue q ──XDP program──┬─ queue not captured / filtered out ─▶ XDP_PASS (host stack)
//!                             └─ bpf_redirect_map(xsks, q) ─▶ AF_XDP socket q (UMEM q)
//!                                                               │ RX ring, in batches
//!                    worker q (pinned CPU) ◀────────────────────┘
//!                      core::worker::Worker::run over the socket (xsktap-sys's RxQueue)
//!                      records ▶ RecordBatcher ─▶ writer thread ─▶ file/stdout
//!                      frames back to the fill ring
//! ```
//!
//! Lifecycle: a [`CaptureConfig`] is validated; [`Capture::start`] plans the
//! placement (queues, CPUs), opens the output, loads the XDP program, creates
//! one socket per queue and puts it in the XSKMAP, attaches the program
//! through a bpf_link, and starts one pinned worker per queue.
//! [`Capture::snapshot`] reads counters at any time without stopping
//! anything. [`Capture::stop`] detaches the program, lets the workers drain
//! their rings, flushes the output and returns a [`Summary`]. The bpf_link
//! detaches by itself if the process dies.
//!
//! Counters are kept apart by where they come from (`xsktap_core::stats`):
//! the XDP program's, the kernel socket's (`XDP_STATISTICS`) and the workers' own.

#![deny(missing_docs)]

mod background;
pub mod capture;
pub mod export;
pub mod features;
mod files;
mod messages;
mod pcapng;
mod placer;
pub mod publish;
mod recovery;
pub mod replay;
mod stamps;
mod worker;
mod writer;

pub use capture::{Capture, Finish, Output, Summary};
pub use files::{FileReport, FileRotation, FilesReport, Notices};
pub use publish::Consumers;
pub use replay::{replay, Replay};
pub use stamps::Timestamps;
pub use writer::WriterReport;
pub use xsktap_core::feed::{Consumer, ConsumerStats, Message};
pub use xsktap_core::CaptureConfig;
pub use xsktap_sys::error::{Error, Result};
pub use xsktap_sys::user::User;
pub use xsktap_sys::{bpflog, probe};

/// Restricts the calling thread to `cpus`, such as [`Capture::housekeeping_cpus`]:
/// for the threads a program runs beside a capture (reporting, serving).
///
/// # Errors
/// [`Error::Config`] naming the CPUs when the kernel refuses.
pub fn pin_current_thread(cpus: &[usize]) -> Result<()> {
    xsktap_sys::cpu::pin_current_thread(cpus).map_err(|e| {
        Error::Config(format!(
            "cannot pin a housekeeping thread to CPUs {cpus:?}: {e}"
        ))
    })
}

/// The IPv4 and IPv6 addresses of `iface` (empty when unreadable): where a
/// server bound to every address answers on that interface.
pub fn interface_addresses(iface: &str) -> Vec<std::net::IpAddr> {
    xsktap_sys::netdev::addresses(iface)
}

/// A worker's failure, naming its queue.
pub(crate) fn error_worker(queue: u32, message: impl ToString) -> Error {
    Error::Worker {
        queue,
        message: message.to_string(),
    }
}
