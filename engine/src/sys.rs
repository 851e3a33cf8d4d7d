//! The one place where libc calls are made: each wrapper turns a `-1` return
//! into an error naming the call.

use std::io;

use crate::error::{syscall_error, Result};

/// Calls a libc function and turns a `-1` return into [`crate::Error::Syscall`]
/// named `$name`. The call itself is unsafe; the caller writes the SAFETY
/// comment for the arguments it passes.
macro_rules! syscall {
    ($name:expr, $call:expr) => {{
        let ret = $call;
        if ret == -1 {
            Err($crate::error::syscall_error(
                $name,
                ::std::io::Error::last_os_error(),
            ))
        } else {
            Ok(ret)
        }
    }};
}
pub(crate) use syscall;

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

/// Restricts the calling thread to `cpus` (sched_setaffinity on thread 0 = self).
/// core_affinity only pins to one CPU; housekeeping threads get a set.
pub(crate) fn pin_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: `cpu` is below CPU_SETSIZE, checked above.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: a valid, initialised cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The effective capability set of this process, read from `/proc/self/status`.
pub(crate) fn effective_capabilities() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| syscall_error("read(/proc/self/status)", e))?;
    parse_cap_eff(&status).ok_or_else(|| {
        syscall_error(
            "parse(/proc/self/status CapEff)",
            io::Error::new(io::ErrorKind::InvalidData, "no CapEff line"),
        )
    })
}

/// Extracts the `CapEff:` bit mask from the text of `/proc/<pid>/status`.
pub(crate) fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

/// Linux capability bit numbers (include/uapi/linux/capability.h).
pub(crate) mod cap {
    pub const NET_ADMIN: u32 = 12;
    pub const NET_RAW: u32 = 13;
    pub const SYS_ADMIN: u32 = 21;
    pub const PERFMON: u32 = 38;
    pub const BPF: u32 = 39;
}

/// Checks that the capabilities a capture needs are effective, naming the
/// first one missing.
pub(crate) fn check_capabilities() -> Result<()> {
    check_capability_mask(effective_capabilities()?)
}

/// Pure part of [`check_capabilities`].
pub(crate) fn check_capability_mask(eff: u64) -> Result<()> {
    let has = |bit: u32| eff & (1u64 << bit) != 0;
    // CAP_SYS_ADMIN covers CAP_BPF and CAP_PERFMON on every kernel.
    let bpf_ok = has(cap::SYS_ADMIN) || (has(cap::BPF) && has(cap::PERFMON));
    if !has(cap::NET_ADMIN) {
        return Err(crate::Error::MissingCapability("CAP_NET_ADMIN"));
    }
    if !has(cap::NET_RAW) {
        return Err(crate::Error::MissingCapability("CAP_NET_RAW"));
    }
    if !bpf_ok {
        let missing = if has(cap::BPF) {
            "CAP_PERFMON"
        } else {
            "CAP_BPF"
        };
        return Err(crate::Error::MissingCapability(missing));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_eff_is_parsed() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name: x\n"), None);
    }

    #[test]
    fn missing_capabilities_are_named() {
        let all = (1u64 << 41) - 1;
        assert!(check_capability_mask(all).is_ok());
        let no_bpf = all & !(1 << cap::BPF) & !(1 << cap::SYS_ADMIN);
        assert!(matches!(
            check_capability_mask(no_bpf),
            Err(crate::Error::MissingCapability("CAP_BPF"))
        ));
        let no_admin_but_bpf = all & !(1 << cap::SYS_ADMIN);
        assert!(check_capability_mask(no_admin_but_bpf).is_ok());
        assert!(matches!(
            check_capability_mask(all & !(1 << cap::NET_RAW)),
            Err(crate::Error::MissingCapability("CAP_NET_RAW"))
        ));
    }
}
