//! libbpf's messages (the verifier's log among them): kept, not printed.
//!
//! libbpf prints its warnings, and a refused program's whole verifier log
//! (thousands of lines), on standard error by default. xsktap keeps them in
//! memory instead: printed only when asked ([`show`]: `-v`, or
//! `XSKTAP_DEBUG=1`), and searched after a refused load for the line that
//! names what the kernel refused ([`refusal`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use libbpf_rs::PrintLevel;

/// Whether libbpf's messages go to standard error as they come.
static SHOW: AtomicBool = AtomicBool::new(false);
/// The messages since the last [`take`], bounded.
static KEPT: Mutex<String> = Mutex::new(String::new());
/// At most this much is kept (the end of a verifier log names the refusal).
const KEEP: usize = 1 << 20;

fn keep(_level: PrintLevel, msg: String) {
    if SHOW.load(Ordering::Relaxed) {
        eprint!("{msg}");
    }
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() + msg.len() > KEEP {
        let cut = kept.len().saturating_sub(KEEP / 2);
        let at = (cut..kept.len())
            .find(|&i| kept.is_char_boundary(i))
            .unwrap_or(kept.len());
        kept.drain(..at);
    }
    kept.push_str(&msg);
}

/// Routes libbpf's messages through xsktap: printed when `show` (or when
/// `XSKTAP_DEBUG` is set to anything but `0`), kept otherwise. Call once,
/// before anything is loaded; later calls change `show`.
pub fn init(show: bool) {
    let debug = std::env::var_os("XSKTAP_DEBUG").is_some_and(|v| v != "0" && !v.is_empty());
    let show = show || debug;
    SHOW.store(show, Ordering::Relaxed);
    let level = if show {
        PrintLevel::Debug
    } else {
        PrintLevel::Warn
    };
    libbpf_rs::set_print(Some((level, keep)));
}

/// Whether libbpf's messages are printed.
pub fn shown() -> bool {
    SHOW.load(Ordering::Relaxed)
}

/// The messages kept since the last call, emptied.
pub fn take() -> String {
    std::mem::take(&mut *KEPT.lock().unwrap_or_else(|e| e.into_inner()))
}

/// What the kernel refused, from libbpf's messages of a failed load: the
/// verifier's last word on a helper, a kfunc, or a program too large.
pub fn refusal(log: &str) -> Option<String> {
    const SAYINGS: [&str; 7] = [
        "cannot use helper",
        "unknown func",
        "invalid func",
        "calling kernel function",
        "kernel function",
        "program is too large",
        "BPF program is too large",
    ];
    log.lines()
        .rev()
        .map(str::trim)
        .find(|l| SAYINGS.iter().any(|s| l.contains(s)))
        .map(|l| {
            l.trim_start_matches("libbpf: ")
                .trim_end_matches('.')
                .to_string()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refused_helper_is_found_in_a_verifier_log() {
        let log = "libbpf: prog 'xsktap_xdp': BPF program load failed: Invalid argument\n\
                   libbpf: prog 'xsktap_xdp': -- BEGIN PROG LOAD LOG --\n\
                   0: R1=ctx() R10=fp0\n\
                   612: (85) call bpf_xdp_adjust_meta#54\n\
                   program of this type cannot use helper bpf_xdp_adjust_meta#54\n\
                   processed 2300 insns\n\
                   -- END PROG LOAD LOG --\n";
        assert_eq!(
            refusal(log).as_deref(),
            Some("program of this type cannot use helper bpf_xdp_adjust_meta#54")
        );
        assert_eq!(refusal("libbpf: failed to open: No such file\n"), None);
    }
}
