//! `xsktap features`: what this kernel and an interface support, and what a
//! capture would choose from it, like `bpftool feature probe` narrowed to
//! xsktap's needs. The probing is the sys crate's; this is the choice and
//! its report, so that `features` and a capture choose by the same rules.

use serde::{Deserialize, Serialize};

/// What the probes found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probed {
    /// `uname -r`.
    pub kernel: String,
    /// AF_XDP sockets can be created.
    pub af_xdp: bool,
    /// XDP programs may call `bpf_xdp_adjust_meta` (stamps in XDP metadata).
    pub xdp_metadata: bool,
    /// The XDP receive-timestamp kfunc is in the kernel (hardware stamps).
    pub rx_timestamp_kfunc: bool,
    /// Frags-aware XDP programs load (multi-buffer frames).
    pub frags: bool,
    /// `BPF_PROG_RUN` with live frames runs (the live-frames generator);
    /// `live_frames_error` says why not.
    pub live_frames: bool,
    /// The kernel's answer to the live-frames trial, when it refused.
    pub live_frames_error: Option<String>,
    /// `SO_PREFER_BUSY_POLL` is known (`--busy-poll`).
    pub prefer_busy_poll: bool,
    /// The locked-memory limit UMEMs are charged against (`None`: none).
    pub memlock_limit: Option<u64>,
    /// The first capability a capture needs that is not effective.
    pub missing_capability: Option<String>,
    /// The interface asked about, if any.
    pub interface: Option<InterfaceProbe>,
}

/// What an interface's driver reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceProbe {
    /// Its name.
    pub name: String,
    /// Its driver (`ethtool -i`).
    pub driver: Option<String>,
    /// Its RX queues.
    pub rx_queues: u32,
    /// Native XDP (the driver runs XDP programs and redirects): `None`
    /// where the kernel does not report XDP features.
    pub native_xdp: Option<bool>,
    /// AF_XDP zero-copy in the driver.
    pub zero_copy: Option<bool>,
    /// Multi-buffer frames in native XDP.
    pub rx_sg: Option<bool>,
    /// Its PTP hardware clock, if any (`/dev/ptpN`).
    pub phc_index: Option<u32>,
}

/// What a capture with default flags would use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// The XDP program's variant: `software`, `hardware` (device-bound) or
    /// `batch` (no per-frame stamp).
    pub program: String,
    /// The clock: `software`, `hardware` or `batch`.
    pub stamping: String,
    /// Where per-frame stamps travel: `metadata` or `headroom`.
    pub carried_in: Option<String>,
    /// `native` or `generic` (without an interface: native, generic if refused).
    pub attach: String,
    /// The socket's mode: `zerocopy` or `copy`.
    pub bind: String,
    /// Frames larger than a UMEM frame taken whole (chains of buffers).
    pub multi_buffer: bool,
    /// `--busy-poll` can be asked for.
    pub busy_poll: bool,
    /// Why each choice fell back, one line each.
    pub notes: Vec<String>,
}

/// `xsktap features --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeaturesJson {
    /// What the probes found.
    pub probed: Probed,
    /// What a capture would use.
    pub capture: Choice,
}

/// The choices a default capture (`-j auto`, `--xdp-mode auto`,
/// `--zero-copy auto`) makes from `p`.
pub fn choose(p: &Probed) -> Choice {
    let mut notes = Vec::new();
    let iface = p.interface.as_ref();
    let hardware = iface.and_then(|i| i.phc_index).is_some() && p.rx_timestamp_kfunc;
    if iface.is_some_and(|i| i.phc_index.is_some()) && !p.rx_timestamp_kfunc {
        notes.push("software stamps: this kernel has no XDP receive-timestamp kfunc".into());
    }
    let carried_in = if p.xdp_metadata {
        "metadata"
    } else {
        notes.push("XDP metadata refused by this kernel: stamps carried in headroom".into());
        "headroom"
    };
    let attach = match iface.and_then(|i| i.native_xdp) {
        Some(true) => "native",
        Some(false) => {
            notes.push("the driver has no native XDP redirect: generic (skb) mode".into());
            "generic"
        }
        None => "native, generic if refused",
    };
    let zero_copy = iface.and_then(|i| i.zero_copy) == Some(true);
    if iface.is_some() && !zero_copy {
        notes.push("the driver has no AF_XDP zero-copy: copy mode".into());
    }
    if !p.frags {
        notes.push(
            "frags-aware XDP programs refused: frames larger than a UMEM frame are dropped".into(),
        );
    }
    if !p.live_frames {
        notes.push(format!(
            "xsktap-bench generates over AF_XDP TX: live frames refused ({})",
            p.live_frames_error.as_deref().unwrap_or("no reason given")
        ));
    }
    let source = if hardware { "hardware" } else { "software" };
    Choice {
        program: source.into(),
        stamping: source.into(),
        carried_in: Some(carried_in.into()),
        attach: attach.into(),
        bind: match (iface, zero_copy) {
            (None, _) => "zerocopy where the driver has it, copy otherwise",
            (Some(_), true) => "zerocopy",
            (Some(_), false) => "copy",
        }
        .into(),
        multi_buffer: p.frags,
        busy_poll: p.prefer_busy_poll,
        notes,
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn maybe(b: Option<bool>) -> &'static str {
    b.map_or("unknown (the kernel does not report it)", yes)
}

/// The report `xsktap features` prints.
pub fn text(f: &FeaturesJson) -> String {
    let p = &f.probed;
    let c = &f.capture;
    let mut out = format!("kernel {}\n", p.kernel);
    let mut row = |name: &str, value: String| out.push_str(&format!("  {name:<34} {value}\n"));
    row("AF_XDP sockets", yes(p.af_xdp).into());
    row("XDP metadata (adjust_meta)", yes(p.xdp_metadata).into());
    row("rx timestamp kfunc", yes(p.rx_timestamp_kfunc).into());
    row("multi-buffer XDP (frags)", yes(p.frags).into());
    row(
        "BPF_PROG_RUN live frames",
        match (&p.live_frames, &p.live_frames_error) {
            (true, _) => "yes".into(),
            (false, Some(e)) => format!("no ({e})"),
            (false, None) => "no".into(),
        },
    );
    row("SO_PREFER_BUSY_POLL", yes(p.prefer_busy_poll).into());
    row(
        "memlock limit",
        p.memlock_limit
            .map_or("none charged".into(), |l| format!("{l} bytes")),
    );
    row(
        "capabilities",
        p.missing_capability
            .as_ref()
            .map_or("all a capture needs".into(), |m| format!("missing {m}")),
    );
    if let Some(i) = &p.interface {
        out.push_str(&format!(
            "interface {} (driver {}, {} RX queues)\n",
            i.name,
            i.driver.as_deref().unwrap_or("unknown"),
            i.rx_queues
        ));
        let mut row = |name: &str, value: String| out.push_str(&format!("  {name:<34} {value}\n"));
        row("native XDP redirect", maybe(i.native_xdp).into());
        row("AF_XDP zero-copy", maybe(i.zero_copy).into());
        row("multi-buffer in native XDP", maybe(i.rx_sg).into());
        row(
            "PTP hardware clock",
            i.phc_index
                .map_or("none".into(), |n| format!("/dev/ptp{n}")),
        );
    }
    out.push_str("a capture would use\n");
    let stamps = match &c.carried_in {
        Some(carry) => format!("{} timestamps per frame, carried in {carry}", c.stamping),
        None => format!("{} timestamps", c.stamping),
    };
    let mut row = |name: &str, value: String| out.push_str(&format!("  {name:<34} {value}\n"));
    row("program", format!("{} variant", c.program));
    row("stamping", stamps);
    row("attach", c.attach.clone());
    row("socket", c.bind.clone());
    row("multi-buffer", yes(c.multi_buffer).into());
    row(
        "busy poll",
        if c.busy_poll {
            "available (--busy-poll)".into()
        } else {
            "not on this kernel".into()
        },
    );
    for note in &c.notes {
        out.push_str(&format!("  note: {note}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn veth(metadata: bool) -> Probed {
        Probed {
            kernel: "6.18.44".into(),
            af_xdp: true,
            xdp_metadata: metadata,
            rx_timestamp_kfunc: true,
            frags: true,
            live_frames: false,
            live_frames_error: Some("Operation not permitted".into()),
            prefer_busy_poll: true,
            interface: Some(InterfaceProbe {
                name: "veth0".into(),
                native_xdp: Some(true),
                zero_copy: Some(false),
                rx_queues: 1,
                ..InterfaceProbe::default()
            }),
            ..Probed::default()
        }
    }

    #[test]
    fn a_kernel_without_metadata_carries_stamps_in_headroom_and_says_so() {
        let c = choose(&veth(false));
        assert_eq!(c.carried_in.as_deref(), Some("headroom"));
        assert_eq!((c.attach.as_str(), c.bind.as_str()), ("native", "copy"));
        assert_eq!(c.stamping, "software", "no PTP clock on veth");
        assert!(c.notes.iter().any(|n| n.contains("headroom")));
        assert_eq!(choose(&veth(true)).carried_in.as_deref(), Some("metadata"));
        let shown = text(&FeaturesJson {
            probed: veth(false),
            capture: c,
        });
        assert!(shown.contains("XDP metadata (adjust_meta)         no"));
        assert!(shown.contains("no (Operation not permitted)"));
    }

    #[test]
    fn hardware_stamps_need_both_a_clock_and_the_kfunc() {
        let mut p = veth(true);
        p.interface.as_mut().unwrap().phc_index = Some(0);
        assert_eq!(choose(&p).stamping, "hardware");
        p.rx_timestamp_kfunc = false;
        assert_eq!(choose(&p).stamping, "software");
    }
}
