//! `xsktap features`: the probes run, and the choices a capture makes from
//! them (see `xsktap_core::features`).

use xsktap_core::features::{self, FeaturesJson, InterfaceProbe, Probed};
use xsktap_sys::probe::{self, xdp_act};
use xsktap_sys::{caps, netdev, phc};

use crate::Result;

/// Probes this kernel and, when given, interface `iface` (nothing is
/// attached to it: the live-frames trial drops its one frame).
///
/// # Errors
/// [`crate::Error`] when `iface` does not exist.
pub fn probe(iface: Option<&str>) -> Result<FeaturesJson> {
    caps::raise_memlock();
    let ifindex = iface.map(netdev::ifindex).transpose()?;
    let interface = match (iface, ifindex) {
        (Some(name), Some(ifindex)) => {
            let act = probe::xdp_features(ifindex);
            let has = |bits: u64| act.map(|a| a & bits == bits);
            Some(InterfaceProbe {
                name: name.to_string(),
                driver: netdev::driver(name),
                rx_queues: netdev::rx_queue_count(name),
                native_xdp: has(xdp_act::BASIC | xdp_act::REDIRECT),
                zero_copy: has(xdp_act::XSK_ZEROCOPY),
                rx_sg: has(xdp_act::RX_SG),
                phc_index: phc::capability(name).phc_index,
            })
        }
        _ => None,
    };
    // The trial runs on loopback without an interface: it sends nothing.
    let live = probe::live_frames(ifindex.unwrap_or(1));
    let probed = Probed {
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
        af_xdp: probe::af_xdp(),
        xdp_metadata: probe::xdp_metadata(),
        rx_timestamp_kfunc: probe::rx_timestamp_kfunc(),
        frags: probe::frags(),
        live_frames: live.is_ok(),
        live_frames_error: live.err().map(|e| e.to_string()),
        prefer_busy_poll: probe::prefer_busy_poll(),
        memlock_limit: caps::memlock_limit(),
        missing_capability: caps::check_capabilities().err().map(|e| match e {
            xsktap_sys::Error::MissingCapability(c) => c.to_string(),
            e => e.to_string(),
        }),
        interface,
    };
    let capture = features::choose(&probed);
    Ok(FeaturesJson { probed, capture })
}
