//! What the kernel says about a network device: its index, its RX queues,
//! its MTU and its interrupt-deferral knobs (sysfs).

use crate::error::{Error, Result};

/// The index of `iface` in the calling thread's network namespace.
///
/// # Errors
/// [`Error::NoSuchInterface`] naming it.
pub fn ifindex(iface: &str) -> Result<u32> {
    let name = std::ffi::CString::new(iface).map_err(|_| Error::NoSuchInterface(iface.into()))?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(Error::NoSuchInterface(iface.into()));
    }
    Ok(index)
}

/// Counts the RX queues of `iface` from sysfs (`/sys/class/net/IFACE/queues/rx-N`); 1 if unreadable.
pub fn rx_queue_count(iface: &str) -> u32 {
    let dir = format!("/sys/class/net/{iface}/queues");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
        .max(1)
}

/// A number from `/sys/class/net/IFACE/NAME`, if readable.
pub fn sysfs_number(iface: &str, name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The IPv4 and IPv6 addresses of `iface` (empty when it has none or they
/// cannot be read).
pub fn addresses(iface: &str) -> Vec<std::net::IpAddr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut at = list;
    while !at.is_null() {
        // SAFETY: `at` is a node of the list getifaddrs returned, alive until freeifaddrs.
        let entry = unsafe { &*at };
        at = entry.ifa_next;
        if entry.ifa_addr.is_null() || entry.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(entry.ifa_name) };
        if name.to_bytes() != iface.as_bytes() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says its real type.
        let family = i32::from(unsafe { (*entry.ifa_addr).sa_family });
        if family == libc::AF_INET {
            // SAFETY: an AF_INET address is a sockaddr_in.
            let sin = unsafe { &*entry.ifa_addr.cast::<libc::sockaddr_in>() };
            out.push(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).into());
        } else if family == libc::AF_INET6 {
            // SAFETY: an AF_INET6 address is a sockaddr_in6.
            let sin6 = unsafe { &*entry.ifa_addr.cast::<libc::sockaddr_in6>() };
            out.push(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr).into());
        }
    }
    // SAFETY: the list getifaddrs returned, freed once.
    unsafe { libc::freeifaddrs(list) };
    out
}

/// Whether `iface` is administratively up (`IFF_UP` in its sysfs flags);
/// `None` when it cannot be read (it is gone).
pub fn is_up(iface: &str) -> Option<bool> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{iface}/flags")).ok()?;
    let flags = u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).ok()?;
    Some(flags & libc::IFF_UP as u32 != 0)
}

/// The driver behind `iface` (the name of its device's driver in sysfs),
/// where it has a device: `None` for virtual devices such as veth.
pub fn driver(iface: &str) -> Option<String> {
    let link = std::fs::read_link(format!("/sys/class/net/{iface}/device/driver")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// The kernel's name and release (`Linux 6.18.0`), for file headers.
pub fn os_release() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("Linux {}", release.trim())
}
