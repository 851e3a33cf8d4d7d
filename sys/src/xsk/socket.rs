//! One AF_XDP socket with its own UMEM, bound to one RX queue.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use std::time::Duration;

use xsktap_core::worker::RxQueue;
use xsktap_core::{BindMode, SocketStats, ZeroCopy};

use super::mmap::Mmap;
use super::ring::{ConsumerRing, ProducerRing, RawRing};
use super::rx::RxRings;
use super::tx::TxRings;
use crate::error::{syscall_error, Error, Result};
use crate::syscall::syscall;

/// Everything needed to create and bind one socket.
#[derive(Debug, Clone)]
pub struct XskConfig {
    /// Interface name, for messages.
    pub iface: String,
    /// Interface index.
    pub ifindex: u32,
    /// RX queue to bind to.
    pub queue: u32,
    /// UMEM frame size: 2048 or 4096.
    pub frame_size: u32,
    /// Size of the fill and RX rings (a power of two). The UMEM holds twice
    /// as many frames, so a full RX ring never starves the fill ring.
    pub ring_size: u32,
    /// Zero-copy policy.
    pub zero_copy: ZeroCopy,
    /// Try AF_XDP multi-buffer (`XDP_USE_SG`): frames larger than a UMEM
    /// frame arrive as chains of buffers. Falls back without it.
    pub multi_buffer: bool,
}

/// An AF_XDP socket bound to one queue, owning its UMEM and rings.
///
/// Field order matters for drop: the rings only point into the mappings,
/// which are unmapped before the socket is closed.
#[derive(Debug)]
pub struct XskSocket {
    rings: RxRings,
    mode: BindMode,
    multi_buffer: bool,
    _fill_map: Mmap,
    _completion_map: Mmap,
    _rx_map: Mmap,
    _umem: Mmap,
    fd: OwnedFd,
}

/// Busy-polling socket options (include/uapi/asm-generic/socket.h, the values
/// x86_64 and arm64 use; the libc crate exports them only for some architectures).
mod busy_poll {
    pub const SO_BUSY_POLL: libc::c_int = 46;
    pub const SO_PREFER_BUSY_POLL: libc::c_int = 69;
    pub const SO_BUSY_POLL_BUDGET: libc::c_int = 70;
}

use crate::syscall::setsockopt_at;

fn setsockopt<T>(fd: &OwnedFd, name: libc::c_int, value: &T, call: &'static str) -> Result<()> {
    setsockopt_at(fd, libc::SOL_XDP, name, value, call)
}

fn getsockopt<T: Copy>(fd: &OwnedFd, name: libc::c_int, call: &'static str) -> Result<T> {
    getsockopt_at(fd, libc::SOL_XDP, name, call)
}

fn getsockopt_at<T: Copy>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    call: &'static str,
) -> Result<T> {
    let mut value = MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`, which has room for them.
    syscall!(call, unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value.as_mut_ptr().cast(),
            &mut len,
        )
    })?;
    if len as usize != size_of::<T>() {
        return Err(syscall_error(
            call,
            io::Error::new(
                io::ErrorKind::InvalidData,
                "kernel returned a shorter struct",
            ),
        ));
    }
    // SAFETY: zero-initialised, then fully written by the kernel (len checked);
    // the libc structs used here are plain integers, valid for any bytes.
    Ok(unsafe { value.assume_init() })
}

/// Maps one ring of `size` entries of `T` and returns the mapping and its raw view.
fn map_ring<T: Copy>(
    fd: &OwnedFd,
    off: &libc::xdp_ring_offset,
    size: u32,
    pgoff: u64,
    call: &'static str,
) -> Result<(Mmap, RawRing<T>)> {
    let len = off.desc as usize + size as usize * size_of::<T>();
    let map = Mmap::ring(fd.as_fd(), len, pgoff, call)?;
    // SAFETY: the kernel laid out the ring at these offsets inside the mapping
    // (XDP_MMAP_OFFSETS), `size` entries long; `map` is stored next to the
    // ring in the same XskSocket and outlives it (see the field order).
    let raw = unsafe {
        RawRing::new(
            map.at(off.producer),
            map.at(off.consumer),
            map.at(off.flags),
            map.at(off.desc),
            size,
        )
    };
    Ok((map, raw))
}

/// A new AF_XDP socket.
fn open_socket() -> Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the returned fd is checked and owned below.
    let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EAFNOSUPPORT) {
            return Err(Error::NoAfXdp);
        }
        return Err(syscall_error("socket(AF_XDP)", err));
    }
    // SAFETY: `raw` is a fresh, valid fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Maps a UMEM of `frames` frames of `frame_size` bytes and registers it.
fn register_umem(fd: &OwnedFd, frames: usize, frame_size: u32) -> Result<Mmap> {
    let umem = Mmap::anonymous(frames * frame_size as usize)?;
    let reg = libc::xdp_umem_reg {
        addr: umem.as_ptr() as u64,
        len: umem.len() as u64,
        chunk_size: frame_size,
        headroom: 0,
        flags: 0,
        tx_metadata_len: 0,
    };
    setsockopt(fd, libc::XDP_UMEM_REG, &reg, "setsockopt(XDP_UMEM_REG)").map_err(|e| {
        // ENOBUFS under a memlock limit: the user's locked memory (other
        // UMEMs, mlock) is over it. Without a limit the system error stands.
        let limit = crate::caps::memlock_limit();
        match (e, limit) {
            (Error::Syscall { ref error, .. }, Some(limit))
                if error.raw_os_error() == Some(libc::ENOBUFS) =>
            {
                Error::Memlock {
                    needed: umem.len() as u64,
                    limit,
                }
            }
            (e, _) => e,
        }
    })?;
    Ok(umem)
}

/// Binds `fd` to `queue` of `ifindex` with the zero-copy policy and `flags`;
/// returns bind(2)'s error as is.
fn bind_queue(
    fd: &OwnedFd,
    ifindex: u32,
    queue: u32,
    zero_copy: ZeroCopy,
    flags: u16,
) -> io::Result<()> {
    let mode_flag = match zero_copy {
        ZeroCopy::Auto => 0,
        ZeroCopy::On => libc::XDP_ZEROCOPY,
        ZeroCopy::Off => libc::XDP_COPY,
    };
    let addr = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: libc::XDP_USE_NEED_WAKEUP | mode_flag | flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: 0,
    };
    // SAFETY: `addr` is a valid sockaddr_xdp and we pass its exact size.
    let ret = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_xdp).cast(),
            size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The error of a failed bind, named for the user.
fn bind_error(iface: &str, queue: u32, zero_copy: ZeroCopy, err: io::Error) -> Error {
    if zero_copy == ZeroCopy::On && err.raw_os_error() == Some(libc::EOPNOTSUPP) {
        return Error::ZeroCopyUnavailable {
            iface: iface.to_string(),
            queue,
            error: err,
        };
    }
    if err.raw_os_error() == Some(libc::EBUSY) {
        return Error::QueueBusy {
            iface: iface.to_string(),
            queue,
        };
    }
    syscall_error("bind(AF_XDP)", err)
}

/// The mode the kernel bound `fd` in.
fn bound_mode(fd: &OwnedFd) -> Result<BindMode> {
    let opts: libc::xdp_options = getsockopt(fd, libc::XDP_OPTIONS, "getsockopt(XDP_OPTIONS)")?;
    Ok(if opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0 {
        BindMode::ZeroCopy
    } else {
        BindMode::Copy
    })
}

impl XskSocket {
    /// Creates the socket, registers its UMEM, maps its rings, fills the fill
    /// ring and binds to the queue.
    ///
    /// # Errors
    /// [`Error::NoAfXdp`] on a kernel without AF_XDP, [`Error::ZeroCopyUnavailable`]
    /// when zero-copy is required and the driver lacks it, and
    /// [`Error::Syscall`] naming the call for anything else.
    ///
    /// # Minimum kernel version
    /// 5.4 (need-wakeup flags and `XDP_OPTIONS`); statistics of full rings need 5.9.
    pub fn new(cfg: &XskConfig) -> Result<Self> {
        let fd = open_socket()?;
        let umem = register_umem(&fd, cfg.ring_size as usize * 2, cfg.frame_size)?;
        let size = cfg.ring_size;
        setsockopt(
            &fd,
            libc::XDP_UMEM_FILL_RING,
            &size,
            "setsockopt(XDP_UMEM_FILL_RING)",
        )?;
        // Nothing is transmitted, but the kernel requires a completion ring.
        let comp_size: u32 = 64;
        setsockopt(
            &fd,
            libc::XDP_UMEM_COMPLETION_RING,
            &comp_size,
            "setsockopt(XDP_UMEM_COMPLETION_RING)",
        )?;
        setsockopt(&fd, libc::XDP_RX_RING, &size, "setsockopt(XDP_RX_RING)")?;
        let off: libc::xdp_mmap_offsets =
            getsockopt(&fd, libc::XDP_MMAP_OFFSETS, "getsockopt(XDP_MMAP_OFFSETS)")?;

        let (fill_map, fill_raw) = map_ring::<u64>(
            &fd,
            &off.fr,
            size,
            libc::XDP_UMEM_PGOFF_FILL_RING,
            "mmap(fill ring)",
        )?;
        let (completion_map, _) = map_ring::<u64>(
            &fd,
            &off.cr,
            comp_size,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            "mmap(completion ring)",
        )?;
        let (rx_map, rx_raw) = map_ring::<libc::xdp_desc>(
            &fd,
            &off.rx,
            size,
            libc::XDP_PGOFF_RX_RING as u64,
            "mmap(RX ring)",
        )?;

        // SAFETY: the UMEM mapping is stored in the same XskSocket as the
        // rings and outlives them (field order); the kernel writes a frame
        // only between its production on the fill ring and its RX descriptor.
        let rings = unsafe {
            RxRings::new(
                ProducerRing::new(fill_raw),
                ConsumerRing::new(rx_raw),
                std::ptr::NonNull::new(umem.as_ptr()).expect("a mapping is not null"),
                umem.len(),
                cfg.frame_size,
            )
        };

        let bind = |flags| bind_queue(&fd, cfg.ifindex, cfg.queue, cfg.zero_copy, flags);
        // Multi-buffer first (frames larger than a UMEM frame arrive as
        // chains of buffers: jumbo frames); without it where the kernel or
        // the driver cannot (before 6.6, some zero-copy drivers).
        let mut multi_buffer = cfg.multi_buffer;
        let mut bound = if multi_buffer {
            bind(libc::XDP_USE_SG)
        } else {
            Err(io::Error::from_raw_os_error(libc::EINVAL))
        };
        if bound.is_err() {
            multi_buffer = false;
            bound = bind(0);
        }
        bound.map_err(|e| bind_error(&cfg.iface, cfg.queue, cfg.zero_copy, e))?;
        let mode = bound_mode(&fd)?;

        Ok(XskSocket {
            rings,
            mode,
            multi_buffer,
            _fill_map: fill_map,
            _completion_map: completion_map,
            _rx_map: rx_map,
            _umem: umem,
            fd,
        })
    }

    /// Says where the XDP program carries each frame's stamp, so that the
    /// rings take it from there (see [`RxRings::set_carry`]).
    pub fn set_carry(&mut self, carry: xsktap_core::rxmeta::Carry) {
        self.rings.set_carry(carry);
    }

    /// Whether the socket takes frames spanning several buffers (`XDP_USE_SG`).
    pub fn multi_buffer(&self) -> bool {
        self.multi_buffer
    }

    /// The mode the kernel bound the socket in.
    pub fn mode(&self) -> BindMode {
        self.mode
    }

    /// The socket's file descriptor, for the XSKMAP.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Tells the kernel that the fill ring has frames (`recvfrom` with
    /// `MSG_DONTWAIT`, as libxdp's examples do for RX).
    #[cold]
    pub fn kick(&self) {
        // SAFETY: recvfrom with a null buffer of length 0 only triggers the
        // socket's wakeup; it writes nothing.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }

    /// Asks for preferred busy polling: the application drives the queue's
    /// NAPI from its own thread (see [`XskSocket::busy_poll`]) instead of the
    /// kernel doing it in softirq, for up to `usecs` per call and `budget`
    /// frames per poll.
    ///
    /// # Minimum kernel version
    /// 5.11.
    pub fn enable_busy_poll(&self, usecs: u32, budget: u32) -> Result<()> {
        let one: libc::c_int = 1;
        setsockopt_at(
            &self.fd,
            libc::SOL_SOCKET,
            busy_poll::SO_PREFER_BUSY_POLL,
            &one,
            "setsockopt(SO_PREFER_BUSY_POLL)",
        )?;
        let usecs = usecs as libc::c_int;
        setsockopt_at(
            &self.fd,
            libc::SOL_SOCKET,
            busy_poll::SO_BUSY_POLL,
            &usecs,
            "setsockopt(SO_BUSY_POLL)",
        )?;
        let budget = budget as libc::c_int;
        setsockopt_at(
            &self.fd,
            libc::SOL_SOCKET,
            busy_poll::SO_BUSY_POLL_BUDGET,
            &budget,
            "setsockopt(SO_BUSY_POLL_BUDGET)",
        )
    }

    /// The NAPI instance the kernel delivers this socket's frames from
    /// (SO_INCOMING_NAPI_ID), once a frame has arrived; 0 when there is none
    /// to busy-poll.
    pub fn napi_id(&self) -> u32 {
        getsockopt_at::<libc::c_uint>(
            &self.fd,
            libc::SOL_SOCKET,
            libc::SO_INCOMING_NAPI_ID,
            "getsockopt(SO_INCOMING_NAPI_ID)",
        )
        .unwrap_or(0)
    }

    /// A second handle on the socket for reading its statistics from another thread.
    pub fn stats_handle(&self) -> Result<XskStatsHandle> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| syscall_error("dup(AF_XDP socket)", e))?;
        Ok(XskStatsHandle { fd })
    }

    /// Waits up to `timeout_ms` for frames (poll(2)); this also wakes the
    /// kernel when it set the need-wakeup flag. Returns whether frames are ready.
    ///
    /// # Errors
    /// poll(2)'s error, other than an interruption.
    pub fn wait(&self, timeout_ms: i32) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, count 1.
        let ret = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(err);
        }
        if pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            // The device went away (the kernel sets ENETDOWN on its sockets):
            // report it instead of polling an endless error.
            let pending: i32 = getsockopt_at(
                &self.fd,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                "getsockopt(SO_ERROR)",
            )
            .unwrap_or(0);
            let code = if pending != 0 {
                pending
            } else {
                libc::ENETDOWN
            };
            return Err(io::Error::from_raw_os_error(code));
        }
        Ok(ret > 0)
    }
}

impl RxQueue for XskSocket {
    #[inline(always)]
    fn recv<F: FnMut(u32, u32, &[u8], u64)>(&mut self, max: u32, on_frame: F) -> u32 {
        self.rings.recv(max, on_frame)
    }

    #[inline(always)]
    fn fill_needs_wakeup(&self) -> bool {
        self.rings.fill_needs_wakeup()
    }

    fn kick(&mut self) {
        XskSocket::kick(self);
    }

    #[inline]
    fn busy_poll(&mut self) {
        XskSocket::kick(self);
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<bool> {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        XskSocket::wait(self, ms)
    }

    fn napi_id(&self) -> u32 {
        XskSocket::napi_id(self)
    }
}

/// Reads a socket's `XDP_STATISTICS` from any thread; keeps the socket open.
#[derive(Debug)]
pub struct XskStatsHandle {
    fd: OwnedFd,
}

impl XskStatsHandle {
    /// Reads the kernel's drop counters for this socket.
    pub fn stats(&self) -> Result<SocketStats> {
        let s: libc::xdp_statistics =
            getsockopt(&self.fd, libc::XDP_STATISTICS, "getsockopt(XDP_STATISTICS)")?;
        Ok(SocketStats {
            rx_dropped: s.rx_dropped,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            rx_invalid_descs: s.rx_invalid_descs,
        })
    }
}

/// Everything needed to create and bind one transmitting socket.
#[derive(Debug, Clone)]
pub struct XskTxConfig {
    /// Interface name, for messages.
    pub iface: String,
    /// Interface index.
    pub ifindex: u32,
    /// TX queue to bind to.
    pub queue: u32,
    /// UMEM frame size: 2048 or 4096.
    pub frame_size: u32,
    /// Size of the TX and completion rings (a power of two); the UMEM holds
    /// twice as many frames.
    pub ring_size: u32,
    /// Zero-copy policy.
    pub zero_copy: ZeroCopy,
}

/// An AF_XDP socket that transmits from its own UMEM: copy mode on veth
/// (the kernel builds an skb per frame in `sendto`), zero-copy where the
/// driver has it (the NIC reads the UMEM).
///
/// Field order matters for drop, as for [`XskSocket`].
#[derive(Debug)]
pub struct XskTx {
    rings: TxRings,
    mode: BindMode,
    _tx_map: Mmap,
    _fill_map: Mmap,
    _completion_map: Mmap,
    _umem: Mmap,
    fd: OwnedFd,
}

impl XskTx {
    /// Creates the socket, registers its UMEM, maps its rings and binds to
    /// the queue.
    ///
    /// # Errors
    /// As [`XskSocket::new`].
    pub fn new(cfg: &XskTxConfig) -> Result<Self> {
        let fd = open_socket()?;
        let umem = register_umem(&fd, cfg.ring_size as usize * 2, cfg.frame_size)?;
        let size = cfg.ring_size;
        // Nothing is received, but binding wants both rings of the UMEM.
        let fill_size: u32 = 64;
        setsockopt(
            &fd,
            libc::XDP_UMEM_FILL_RING,
            &fill_size,
            "setsockopt(XDP_UMEM_FILL_RING)",
        )?;
        setsockopt(
            &fd,
            libc::XDP_UMEM_COMPLETION_RING,
            &size,
            "setsockopt(XDP_UMEM_COMPLETION_RING)",
        )?;
        setsockopt(&fd, libc::XDP_TX_RING, &size, "setsockopt(XDP_TX_RING)")?;
        let off: libc::xdp_mmap_offsets =
            getsockopt(&fd, libc::XDP_MMAP_OFFSETS, "getsockopt(XDP_MMAP_OFFSETS)")?;
        let (fill_map, _) = map_ring::<u64>(
            &fd,
            &off.fr,
            fill_size,
            libc::XDP_UMEM_PGOFF_FILL_RING,
            "mmap(fill ring)",
        )?;
        let (completion_map, completion_raw) = map_ring::<u64>(
            &fd,
            &off.cr,
            size,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            "mmap(completion ring)",
        )?;
        let (tx_map, tx_raw) = map_ring::<libc::xdp_desc>(
            &fd,
            &off.tx,
            size,
            libc::XDP_PGOFF_TX_RING as u64,
            "mmap(TX ring)",
        )?;
        // SAFETY: the UMEM mapping is stored in the same XskTx as the rings
        // and outlives them (field order); the kernel reads a frame only
        // between its TX descriptor and its completion.
        let rings = unsafe {
            TxRings::new(
                ProducerRing::new(tx_raw),
                ConsumerRing::new(completion_raw),
                std::ptr::NonNull::new(umem.as_ptr()).expect("a mapping is not null"),
                umem.len(),
                cfg.frame_size,
            )
        };
        bind_queue(&fd, cfg.ifindex, cfg.queue, cfg.zero_copy, 0)
            .map_err(|e| bind_error(&cfg.iface, cfg.queue, cfg.zero_copy, e))?;
        let mode = bound_mode(&fd)?;
        Ok(XskTx {
            rings,
            mode,
            _tx_map: tx_map,
            _fill_map: fill_map,
            _completion_map: completion_map,
            _umem: umem,
            fd,
        })
    }

    /// The mode the kernel bound the socket in.
    pub fn mode(&self) -> BindMode {
        self.mode
    }

    /// Lets one `sendto` hand up to `frames` descriptors to the driver in
    /// copy mode (`XDP_MAX_TX_SKB_BUDGET`, 6.17; 32 before, and by default):
    /// fewer system calls a frame. Returns whether the kernel took it.
    pub fn set_tx_budget(&self, frames: u32) -> bool {
        /// include/uapi/linux/if_xdp.h; not in the libc crate yet.
        const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
        setsockopt(
            &self.fd,
            XDP_MAX_TX_SKB_BUDGET,
            &frames,
            "setsockopt(XDP_MAX_TX_SKB_BUDGET)",
        )
        .is_ok()
    }

    /// The rings, to fill frames and queue them.
    pub fn rings(&mut self) -> &mut TxRings {
        &mut self.rings
    }

    /// Has the kernel transmit what is queued (`sendto` with `MSG_DONTWAIT`;
    /// in copy mode the frames go out in this call, a budget at a time),
    /// when the ring asks for it, then takes back completed frames.
    ///
    /// # Errors
    /// `sendto`'s error, other than the transient ones (`EAGAIN`, `EBUSY`,
    /// `ENOBUFS`: the device is busy; the frames stay queued).
    pub fn kick(&mut self) -> io::Result<()> {
        if self.rings.tx_needs_wakeup() {
            // SAFETY: sendto with a null buffer of length 0 only triggers
            // the socket's transmit; it reads nothing.
            let ret = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
            if ret < 0 {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::EINTR) => {}
                    _ => return Err(err),
                }
            }
        }
        self.rings.complete();
        Ok(())
    }

    /// Kicks until every queued frame completed or `timeout` passed;
    /// returns the frames still in flight.
    ///
    /// # Errors
    /// As [`XskTx::kick`].
    pub fn flush(&mut self, timeout: Duration) -> io::Result<usize> {
        let start = std::time::Instant::now();
        while self.rings.in_flight() > 0 && start.elapsed() < timeout {
            self.kick()?;
            if self.rings.in_flight() > 0 {
                std::thread::yield_now();
            }
        }
        Ok(self.rings.in_flight())
    }
}
