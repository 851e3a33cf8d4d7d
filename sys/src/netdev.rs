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
