//! Sends whole Ethernet frames out of an interface with an AF_PACKET socket.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// A raw packet socket bound to one interface (of the calling thread's namespace).
#[derive(Debug)]
pub struct FrameSender {
    fd: OwnedFd,
}

/// The index of `iface` in the calling thread's network namespace (the engine's lookup).
pub fn ifindex(iface: &str) -> io::Result<u32> {
    xsktap_sys::netdev::ifindex(iface).map_err(io::Error::other)
}

impl FrameSender {
    /// Opens a sender on `iface`.
    pub fn open(iface: &str) -> io::Result<Self> {
        let ifindex = ifindex(iface)?;
        // Protocol 0: this socket sends only and receives nothing.
        // SAFETY: plain socket(2) call; the fd is checked and owned below.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid start.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: valid sockaddr_ll of the size passed.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if ret != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(FrameSender { fd })
    }

    /// Sends one frame, retrying briefly while the device queue is full.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            // SAFETY: `frame` is valid for `frame.len()` bytes.
            let ret =
                unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
            if ret >= 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            let retry = matches!(err.raw_os_error(), Some(libc::ENOBUFS) | Some(libc::EAGAIN));
            if !retry || Instant::now() >= deadline {
                return Err(err);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}
