//! Hardware receive timestamps: what an interface can stamp (`ethtool -T`),
//! turning its receive stamping on (and back at the end), and reading its
//! PTP hardware clock against CLOCK_MONOTONIC.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use xsktap_core::timestamps::{best_offset, Capability, Sample};

use crate::error::{syscall_error, Result};
use crate::syscall::dgram_socket;

/// `ETHTOOL_GET_TS_INFO` (linux/ethtool.h); libc does not define it.
const ETHTOOL_GET_TS_INFO: u32 = 0x41;

/// `struct ethtool_ts_info` (linux/ethtool.h), written by hand because libc
/// does not define it; its layout has been fixed since 3.5.
#[repr(C)]
#[derive(Default)]
struct EthtoolTsInfo {
    cmd: u32,
    so_timestamping: u32,
    phc_index: i32,
    tx_types: u32,
    tx_reserved: [u32; 3],
    rx_filters: u32,
    rx_reserved: [u32; 3],
}

/// An `ifreq` naming `iface` whose data pointer is `data`.
fn ifreq(iface: &str, data: *mut libc::c_char) -> io::Result<libc::ifreq> {
    // SAFETY: an all-zero ifreq is valid (empty name, null pointers).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = iface.as_bytes();
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    for (dst, &src) in req.ifr_name.iter_mut().zip(name) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_data = data;
    Ok(req)
}

/// Runs interface ioctl `request` on `iface` with `data` as its argument.
fn if_ioctl<T>(iface: &str, request: libc::c_ulong, data: &mut T) -> io::Result<()> {
    // In the caller's namespace.
    let socket = dgram_socket(libc::AF_INET, "socket(AF_INET)")
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut req = ifreq(iface, (data as *mut T).cast())?;
    // SAFETY: `req` names the interface and points at `data`, which is the
    // structure `request` reads and writes and outlives the call.
    let ret = unsafe { libc::ioctl(socket.as_raw_fd(), request as _, &mut req) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What `iface` can do for receive timestamps; nothing when it cannot say.
pub fn capability(iface: &str) -> Capability {
    let mut info = EthtoolTsInfo {
        cmd: ETHTOOL_GET_TS_INFO,
        ..EthtoolTsInfo::default()
    };
    if if_ioctl(iface, libc::SIOCETHTOOL, &mut info).is_err() {
        return Capability::default();
    }
    Capability {
        phc_index: u32::try_from(info.phc_index).ok(),
        rx_hardware: info.so_timestamping & libc::SOF_TIMESTAMPING_RAW_HARDWARE != 0,
        rx_filter_all: info.rx_filters & (1 << libc::HWTSTAMP_FILTER_ALL) != 0,
    }
}

/// Receive stamping of every frame turned on for a capture; dropping it
/// puts back the interface's earlier setting (unless it was already on).
#[derive(Debug)]
pub struct RxStamping {
    iface: String,
    restore: Option<libc::hwtstamp_config>,
}

impl RxStamping {
    /// Makes `iface` stamp every received frame (`HWTSTAMP_FILTER_ALL`),
    /// keeping its transmit setting, as `hwstamp_ctl -r 1` would.
    ///
    /// # Errors
    /// [`crate::Error::Syscall`] when the driver refuses to read or change it.
    pub fn enable(iface: &str) -> Result<RxStamping> {
        let mut config = libc::hwtstamp_config {
            flags: 0,
            tx_type: 0,
            rx_filter: 0,
        };
        if_ioctl(iface, libc::SIOCGHWTSTAMP, &mut config)
            .map_err(|e| syscall_error("ioctl(SIOCGHWTSTAMP)", e))?;
        if config.rx_filter == libc::HWTSTAMP_FILTER_ALL as i32 {
            return Ok(RxStamping {
                iface: iface.to_string(),
                restore: None,
            });
        }
        let before = libc::hwtstamp_config { ..config };
        config.rx_filter = libc::HWTSTAMP_FILTER_ALL as i32;
        if_ioctl(iface, libc::SIOCSHWTSTAMP, &mut config)
            .map_err(|e| syscall_error("ioctl(SIOCSHWTSTAMP)", e))?;
        Ok(RxStamping {
            iface: iface.to_string(),
            restore: Some(before),
        })
    }
}

impl Drop for RxStamping {
    fn drop(&mut self) {
        if let Some(mut before) = self.restore.take() {
            // Best effort: the interface may be gone.
            let _ = if_ioctl(&self.iface, libc::SIOCSHWTSTAMP, &mut before);
        }
    }
}

/// An open PTP hardware clock (`/dev/ptpN`).
#[derive(Debug)]
pub struct Phc {
    file: File,
}

fn ns(t: &libc::ptp_clock_time) -> u64 {
    (t.sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(u64::from(t.nsec))
}

impl Phc {
    /// Opens `/dev/ptpINDEX` for reading.
    ///
    /// # Errors
    /// [`crate::Error::Syscall`] naming the open.
    pub fn open(index: u32) -> Result<Phc> {
        let file = File::open(format!("/dev/ptp{index}"))
            .map_err(|e| syscall_error("open(/dev/ptpN)", e))?;
        Ok(Phc { file })
    }

    /// `PHC - CLOCK_MONOTONIC` in ns and its error bound: the driver's
    /// bracketed reads (`PTP_SYS_OFFSET_EXTENDED` against CLOCK_MONOTONIC,
    /// where the kernel takes a clock id in it; older ones refuse a non-zero
    /// id), or else reads of the PHC between two of
    /// CLOCK_MONOTONIC through clock_gettime; the tightest of 9 either way.
    ///
    /// # Errors
    /// [`crate::Error::Syscall`] when the clock cannot be read.
    pub fn offset_to_monotonic(&self) -> Result<(i64, u64)> {
        let samples = self
            .extended_samples()
            .or_else(|_| self.clock_gettime_samples())
            .map_err(|e| syscall_error("reading the PTP hardware clock", e))?;
        best_offset(&samples).ok_or_else(|| {
            syscall_error(
                "reading the PTP hardware clock",
                io::Error::new(io::ErrorKind::InvalidData, "no consistent reading"),
            )
        })
    }

    fn extended_samples(&self) -> io::Result<Vec<Sample>> {
        // SAFETY: an all-zero ptp_sys_offset_extended is valid.
        let mut req: libc::ptp_sys_offset_extended = unsafe { std::mem::zeroed() };
        req.n_samples = 9;
        req.clockid = libc::CLOCK_MONOTONIC;
        // SAFETY: `req` is the structure PTP_SYS_OFFSET_EXTENDED reads and
        // writes, alive for the call; the fd is open.
        let ret = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::PTP_SYS_OFFSET_EXTENDED as _,
                &mut req,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(req.ts[..req.n_samples as usize]
            .iter()
            .map(|[before, device, after]| Sample {
                before: ns(before),
                device: ns(device),
                after: ns(after),
            })
            .collect())
    }

    fn clock_gettime_samples(&self) -> io::Result<Vec<Sample>> {
        // FD_TO_CLOCKID (linux/posix-timers.h): a dynamic clock named by its fd.
        let clock = ((!self.file.as_raw_fd()) << 3) | 3;
        let read = |id: libc::clockid_t| -> io::Result<u64> {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: a valid timespec to write; an invalid clock id fails
            // with EINVAL, nothing else.
            if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
        };
        (0..9)
            .map(|_| {
                Ok(Sample {
                    before: read(libc::CLOCK_MONOTONIC)?,
                    device: read(clock)?,
                    after: read(libc::CLOCK_MONOTONIC)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_a_missing_interface_have_no_hardware_clock() {
        // SIOCETHTOOL's ETHTOOL_GET_TS_INFO needs no privilege.
        let lo = capability("lo");
        assert_eq!(lo.phc_index, None);
        assert!(!lo.rx_hardware);
        assert_eq!(capability("xsktap-none0"), Capability::default());
        assert_eq!(
            capability("a-name-longer-than-ifnamsiz"),
            Capability::default()
        );
    }

    #[test]
    fn a_missing_clock_device_is_an_error() {
        assert!(Phc::open(u32::MAX).is_err());
    }
}
