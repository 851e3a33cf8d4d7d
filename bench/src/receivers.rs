//! Reference receivers for the benchmarks: the count-and-drop XDP program
//! (the machine's limit) and a kernel UDP socket (the latency peer).

#[allow(
    missing_docs,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    unused_imports
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/drop.skel.rs"));
}

use std::io;
use std::mem::MaybeUninit;
use std::net::UdpSocket;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle};
use xsktap_core::latency::{stamp_in_payload, LatencyStats};
use xsktap_core::AttachedMode;
use xsktap_sys::clock::monotonic_ns;
use xsktap_sys::loader::link_xdp;

/// The count-and-drop program, attached by bpf_link (native mode).
pub struct DropReceiver {
    counter: MapHandle,
    _link: OwnedFd,
}

impl DropReceiver {
    /// Loads the program and attaches it to `iface` in native mode.
    pub fn attach(iface: &str) -> anyhow::Result<DropReceiver> {
        let ifindex = xsktap_sys::netdev::ifindex(iface)?;
        let mut object = MaybeUninit::uninit();
        let skel = skel::DropSkelBuilder::default().open(&mut object)?.load()?;
        let counter = MapHandle::try_from(&skel.maps.dropped)?;
        let link = link_xdp(
            skel.progs.xsktap_drop.as_fd(),
            ifindex,
            AttachedMode::Native,
        )
        .map_err(|e| anyhow::anyhow!("attaching the drop program to {iface}: {e}"))?;
        Ok(DropReceiver {
            counter,
            _link: link,
        })
    }

    /// Frames counted (and dropped) so far, over all CPUs.
    pub fn count(&self) -> anyhow::Result<u64> {
        let per_cpu = self
            .counter
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)?
            .unwrap_or_default();
        Ok(per_cpu
            .iter()
            .map(|b| u64::from_ne_bytes(b[..8].try_into().expect("8-byte values")))
            .sum())
    }
}

/// What the UDP socket receiver saw.
pub struct UdpReport {
    /// Datagrams received.
    pub received: u64,
    /// Latency and sequence accounting of the stamped ones.
    pub latency: LatencyStats,
    /// Datagrams the socket dropped for lack of buffer (SO_RXQ_OVFL is not
    /// read here; see the socket's drops in /proc/net/udp instead).
    pub elapsed: Duration,
}

/// Receives on UDP port `port` with recvmmsg for `duration`, measuring the
/// one-way latency of stamped datagrams (CLOCK_MONOTONIC once per batch, as
/// xsktap's workers do).
pub fn udp_receive(port: u16, duration: Duration, cpu: Option<usize>) -> anyhow::Result<UdpReport> {
    if let Some(cpu) = cpu {
        crate::cpu::pin_to(cpu, "the UDP receiver")?;
    }
    let socket = UdpSocket::bind(("0.0.0.0", port))?;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let big: libc::c_int = 32 << 20;
    // SAFETY: setsockopt with a valid int of the size passed; failure only
    // leaves the default buffer.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&big as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    const BATCH: usize = 64;
    let mut bufs = vec![[0u8; 2048]; BATCH];
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    // SAFETY: mmsghdr is plain data; all-zero is valid.
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (m, iov) in msgs.iter_mut().zip(iovs.iter_mut()) {
        m.msg_hdr.msg_iov = iov;
        m.msg_hdr.msg_iovlen = 1;
    }
    let mut latency = LatencyStats::default();
    let mut received = 0u64;
    let start = Instant::now();
    while start.elapsed() < duration {
        // SAFETY: `msgs` holds BATCH headers pointing at live buffers; the
        // kernel writes at most iov_len bytes into each.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_fd().as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) {
                continue;
            }
            return Err(err.into());
        }
        let now = monotonic_ns();
        for (i, m) in msgs.iter().enumerate().take(n as usize) {
            received += 1;
            let len = m.msg_len as usize;
            if let Some(stamp) = stamp_in_payload(&bufs[i][..len], now) {
                latency.record(stamp, now);
            }
        }
    }
    Ok(UdpReport {
        received,
        latency,
        elapsed: start.elapsed(),
    })
}
