//! The clocks: CLOCK_MONOTONIC (the one `bpf_ktime_get_ns()` reads) and the
//! wall clock, and the worker's [`Clock`] over them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use xsktap_core::worker::Clock;

/// CLOCK_MONOTONIC in nanoseconds: the clock `bpf_ktime_get_ns()` reads.
/// (`Instant` uses it too, but does not expose the value.)
#[inline(always)]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to write; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Wall-clock time in nanoseconds since the Unix epoch (0 before it).
#[inline(always)]
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The real clocks, and a real sleep for naps.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline(always)]
    fn wall_ns(&self) -> u64 {
        wall_ns()
    }

    #[inline(always)]
    fn mono_ns(&self) -> u64 {
        monotonic_ns()
    }

    fn nap(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// `pattern` with its strftime escapes expanded for `unix_secs` in local
/// time, as tcpdump names `-G` files (the C library's strftime, so every
/// escape means what it means to tcpdump). `None` if the time cannot be
/// converted or the result is longer than a path may be.
pub fn local_strftime(pattern: &str, unix_secs: i64) -> Option<String> {
    let c_pattern = std::ffi::CString::new(pattern).ok()?;
    let t: libc::time_t = unix_secs;
    // SAFETY: tm is plain data; all-zero is a valid value to overwrite.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the
    // reentrant form and writes only into `tm`.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return None;
    }
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: buf has buf.len() writable bytes, the pattern is a valid C
    // string and tm was filled by localtime_r; strftime writes at most
    // buf.len() bytes including the terminating NUL and returns the count
    // without it (0 when it does not fit).
    let n = unsafe { libc::strftime(buf.as_mut_ptr().cast(), buf.len(), c_pattern.as_ptr(), &tm) };
    if n == 0 && !pattern.is_empty() {
        return None;
    }
    buf.truncate(n);
    String::from_utf8(buf).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_expands_escapes_and_keeps_the_rest() {
        // The test runs in whatever zone the machine has: check what does
        // not depend on it.
        let name = local_strftime("/cap/%Y-%%-x.pcap", 1_700_000_000).unwrap();
        assert!(name == "/cap/2023-%-x.pcap", "{name}");
        assert_eq!(local_strftime("plain", 0).as_deref(), Some("plain"));
        assert!(local_strftime("bad\0nul", 0).is_none());
    }
}
