//! AF_XDP sockets on `libc`: UMEM registration, the fill/completion/RX rings,
//! bind, and the socket options that report mode and statistics; and the
//! TX and completion rings of a transmitting socket ([`XskTx`]).
//!
//! Written by hand rather than through libxdp because the ring operations must
//! inline into the worker loop and the protocol is small; libxdp's `xsk.h` and
//! the kernel's `Documentation/networking/af_xdp.rst` are the references.
//!
//! One [`XskSocket`] owns one UMEM: frames are never shared across queues.

pub mod mmap;
pub mod ring;
pub mod rx;
mod socket;
pub mod testing;
pub mod tx;

pub use socket::{XskConfig, XskSocket, XskStatsHandle, XskTx, XskTxConfig};
