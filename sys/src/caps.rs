//! The privileges a capture needs: capabilities and the locked-memory limit.

use std::io;

use crate::error::{syscall_error, Result};

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
    pub const IPC_LOCK: u32 = 14;
    pub const NET_ADMIN: u32 = 12;
    pub const NET_RAW: u32 = 13;
    pub const SYS_ADMIN: u32 = 21;
    pub const PERFMON: u32 = 38;
    pub const BPF: u32 = 39;
}

/// Checks that the capabilities a capture needs are effective, naming the
/// first one missing.
pub fn check_capabilities() -> Result<()> {
    check_capability_mask(effective_capabilities()?)
}

/// Pure part of [`check_capabilities`].
pub(crate) fn check_capability_mask(eff: u64) -> Result<()> {
    let has = |bit: u32| eff & (1u64 << bit) != 0;
    // CAP_SYS_ADMIN covers CAP_BPF and CAP_PERFMON on every kernel.
    let bpf_ok = has(cap::SYS_ADMIN) || (has(cap::BPF) && has(cap::PERFMON));
    if !has(cap::NET_ADMIN) {
        return Err(crate::error::Error::MissingCapability("CAP_NET_ADMIN"));
    }
    if !has(cap::NET_RAW) {
        return Err(crate::error::Error::MissingCapability("CAP_NET_RAW"));
    }
    if !bpf_ok {
        let missing = if has(cap::BPF) {
            "CAP_PERFMON"
        } else {
            "CAP_BPF"
        };
        return Err(crate::error::Error::MissingCapability(missing));
    }
    Ok(())
}

/// Raises RLIMIT_MEMLOCK so the UMEM can be pinned on kernels that still
/// charge it there; failure is not fatal (CAP_IPC_LOCK or memcg accounting).
pub fn raise_memlock() {
    let limit = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a valid rlimit struct, read by the kernel only.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) };
}

/// The locked-memory limit (bytes) UMEM registration is charged against, or
/// `None` when nothing is charged: CAP_IPC_LOCK is effective or the limit
/// is infinite (the kernel's xdp_umem_account_pages).
pub fn memlock_limit() -> Option<u64> {
    if effective_capabilities().is_ok_and(|eff| eff & (1u64 << cap::IPC_LOCK) != 0) {
        return None;
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit struct for the kernel to fill.
    let ret = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
    (ret == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Refuses, before anything is loaded, UMEMs of `needed` bytes in all when
/// the locked-memory limit cannot hold them.
///
/// # Errors
/// [`crate::error::Error::Memlock`] with the amounts and the fixes.
pub fn check_memlock(needed: u64) -> Result<()> {
    match memlock_limit() {
        Some(limit) if limit < needed => Err(crate::error::Error::Memlock { needed, limit }),
        _ => Ok(()),
    }
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
            Err(crate::error::Error::MissingCapability("CAP_BPF"))
        ));
        let no_admin_but_bpf = all & !(1 << cap::SYS_ADMIN);
        assert!(check_capability_mask(no_admin_but_bpf).is_ok());
        assert!(matches!(
            check_capability_mask(all & !(1 << cap::NET_RAW)),
            Err(crate::error::Error::MissingCapability("CAP_NET_RAW"))
        ));
    }
}
