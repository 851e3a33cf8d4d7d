//! Plain values that describe how a capture is attached and what the kernel
//! reports about it. The sys crate produces them; everything else reads them.

/// How to attach the XDP program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native (driver) mode, then generic if the driver has no XDP support.
    Auto,
    /// In the driver, before any socket buffer is allocated.
    Native,
    /// In the core network stack, after the socket buffer is built (works on any device).
    Generic,
}

/// The mode the program was actually attached in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachedMode {
    /// Driver mode.
    Native,
    /// Generic (SKB) mode.
    Generic,
}

impl AttachedMode {
    /// `native` or `generic`, as shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            AttachedMode::Native => "native",
            AttachedMode::Generic => "generic",
        }
    }
}

/// Whether to ask for zero-copy AF_XDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroCopy {
    /// Try zero-copy; the kernel falls back to copy mode when the driver cannot.
    Auto,
    /// Zero-copy or an error.
    On,
    /// Copy mode only.
    Off,
}

/// The mode a socket was bound in, as read back from the kernel (`XDP_OPTIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// Frames are copied from the driver's buffers into the UMEM.
    Copy,
    /// The driver DMAs straight into the UMEM.
    ZeroCopy,
}

impl BindMode {
    /// `copy` or `zerocopy`, as shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            BindMode::Copy => "copy",
            BindMode::ZeroCopy => "zerocopy",
        }
    }
}

/// The kernel's drop counters for one socket (`XDP_STATISTICS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Frames dropped for reasons other than a full ring or an empty fill ring.
    pub rx_dropped: u64,
    /// Frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty (frames lost for lack of buffers).
    pub rx_fill_ring_empty_descs: u64,
    /// Invalid descriptors seen on RX.
    pub rx_invalid_descs: u64,
}

/// Counters kept by the XDP program for one queue, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BpfCounters {
    /// Frames the program ran on.
    pub seen: u64,
    /// Frames redirected into the queue's socket.
    pub redirected: u64,
    /// Frames passed to the host stack because the queue is not captured.
    pub passed: u64,
    /// Frames of a captured queue that found no socket in the XSKMAP (passed on).
    pub redirect_failed: u64,
    /// Frames of a captured queue that the filter did not select (passed on, by design).
    pub filtered_out: u64,
    /// Frames redirected with a software timestamp because hardware ones
    /// were asked for and the driver gave none for them.
    pub hw_stamp_missing: u64,
    /// Frames dropped in the program by the rate limit (`--limit-pps`).
    pub limited: u64,
}
