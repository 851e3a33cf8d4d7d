//! The engine's error type (the runtime re-exports it). Every syscall
//! failure names the call that failed.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while setting up or running a capture.
///
/// Each variant renders as one line that names the problem and, where there
/// is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error("{call} failed: {error}")]
    Syscall {
        /// The name of the call, such as `setsockopt(XDP_UMEM_REG)`.
        call: &'static str,
        /// The error the kernel returned (part of the message, so not a `source`).
        error: io::Error,
    },
    /// The configuration is not valid; the message says which value and why.
    #[error("{0}")]
    Config(String),
    /// No interface has the given name.
    #[error("no interface named {0:?} (list interfaces with `ip link`)")]
    NoSuchInterface(String),
    /// The process lacks a capability the capture needs.
    #[error("missing capability {0}: run as root, or grant it with `setcap cap_bpf,cap_net_admin,cap_net_raw,cap_perfmon,cap_ipc_lock+ep $(which xsktap)`")]
    MissingCapability(&'static str),
    /// The kernel was built without AF_XDP sockets.
    #[error("this kernel has no AF_XDP sockets (socket(AF_XDP) answered EAFNOSUPPORT): use a kernel built with CONFIG_XDP_SOCKETS=y (4.18 or later)")]
    NoAfXdp,
    /// Another XDP program is attached to the interface.
    #[error("interface {iface} already has an XDP program attached ({mode} mode, program id {prog_id}); xsktap will not replace it: detach it first (for example `ip link set dev {iface} xdp off`) or capture on another interface")]
    XdpBusy {
        /// The interface.
        iface: String,
        /// The attachment mode of the program found.
        mode: &'static str,
        /// The kernel's id of the program found.
        prog_id: u32,
    },
    /// Zero-copy was required but the driver cannot do it.
    #[error("zero-copy AF_XDP is not available on {iface} queue {queue} ({error}): its driver does not support it; use `--zero-copy auto` to fall back to copy mode")]
    ZeroCopyUnavailable {
        /// The interface.
        iface: String,
        /// The queue.
        queue: u32,
        /// The bind error.
        error: io::Error,
    },
    /// The XDP program could not be attached in the requested mode.
    #[error("cannot attach XDP in {mode} mode to {iface}: {error}")]
    Attach {
        /// The interface.
        iface: String,
        /// The mode tried.
        mode: &'static str,
        /// The kernel's answer.
        error: io::Error,
    },
    /// The kernel refused to load the XDP program.
    #[error("this kernel refused xsktap's XDP program ({variant}): {what}; run with -v (or XSKTAP_DEBUG=1) for the verifier's log, and `xsktap features` for what this kernel supports")]
    Refused {
        /// What it refused, in the verifier's words when it gave them.
        what: String,
        /// The variant tried.
        variant: &'static str,
    },
    /// libbpf failed to open or load the XDP program.
    #[error("loading the XDP program failed: {0}")]
    Bpf(libbpf_rs::Error),
    /// Another AF_XDP socket is bound to the queue.
    #[error("queue {queue} of {iface} is already in use by another AF_XDP socket (another capture?): stop it, or choose other queues with --queues")]
    QueueBusy {
        /// The interface.
        iface: String,
        /// The queue.
        queue: u32,
    },
    /// Creating the output file failed.
    #[error("cannot create output file {path}: {error}; choose a writable path (or -w - for standard output)")]
    Output {
        /// The path of the output.
        path: PathBuf,
        /// The I/O error.
        error: io::Error,
    },
    /// Writing the output's file header failed.
    #[error(
        "cannot write to output {path}: {error}; free space on its device or choose another path"
    )]
    OutputWrite {
        /// The path of the output.
        path: PathBuf,
        /// The I/O error.
        error: io::Error,
    },
    /// The output path is a symbolic link or someone else's file in a
    /// world-writable sticky directory (such as /tmp), where it could have
    /// been planted.
    #[error("refusing output {path}: {why} in a world-writable sticky directory; write to a fresh name or another directory")]
    OutputUnsafe {
        /// The path of the output.
        path: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The UMEMs cannot be locked in memory.
    #[error("the UMEMs need {} MiB of locked memory but RLIMIT_MEMLOCK allows {} MiB: run as root, grant CAP_IPC_LOCK (`setcap cap_bpf,cap_net_admin,cap_net_raw,cap_perfmon,cap_ipc_lock+ep $(which xsktap)`), raise `ulimit -l`, or use smaller rings (--ring-size, --frame-size)", needed.div_ceil(1 << 20), limit >> 20)]
    Memlock {
        /// Bytes the UMEMs of every queue need.
        needed: u64,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A worker thread failed.
    #[error("worker for queue {queue} failed: {message}")]
    Worker {
        /// The queue of the worker.
        queue: u32,
        /// What went wrong.
        message: String,
    },
}

// Not `#[from]`: that would also make it the `source`, and `{:#}` would
// print the libbpf message twice.
impl From<libbpf_rs::Error> for Error {
    fn from(e: libbpf_rs::Error) -> Self {
        Error::Bpf(e)
    }
}

impl From<xsktap_core::ConfigError> for Error {
    fn from(e: xsktap_core::ConfigError) -> Self {
        Error::Config(e.0)
    }
}

impl From<xsktap_core::filter::FilterError> for Error {
    fn from(e: xsktap_core::filter::FilterError) -> Self {
        Error::Config(e.0)
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Turns an `io::Error` from a named call into an [`Error::Syscall`].
pub fn syscall_error(call: &'static str, error: io::Error) -> Error {
    Error::Syscall { call, error }
}
