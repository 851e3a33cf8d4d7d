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
