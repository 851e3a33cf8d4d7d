//! Which clock stamps the frames (tcpdump's `-j`), and how a NIC's clock is
//! related to the host's.
//!
//! `host` stamps come from `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the XDP
//! program runs. `adapter` stamps are the NIC's own receive timestamps
//! (`bpf_xdp_metadata_rx_timestamp`), taken by its PTP hardware clock (PHC)
//! when the frame arrived: no interrupt or softirq delay in them. The PHC
//! keeps its own time (TAI when ptp4l disciplines it, anything when nothing
//! does), so xsktap measures `PHC - CLOCK_MONOTONIC` about once a second
//! from bracketed reads ([`best_offset`]) and the XDP program moves every
//! hardware stamp onto CLOCK_MONOTONIC with it; from there both kinds become
//! wall-clock time the same way ([`crate::rxmeta::wall_time`]).

use std::fmt;

use crate::types::XdpMode;

/// `-j TYPE`: the timestamps asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeStampType {
    /// The NIC's where it has a PTP hardware clock and stamps received
    /// frames, the host's otherwise (the default).
    #[default]
    Auto,
    /// The host's: when the XDP program ran for the frame.
    Host,
    /// The host's, one per batch: when the worker took the frame's batch
    /// from the ring (tcpdump's `host_lowprec`). Frames of a batch share
    /// it, and it is late by the time the batch waited; the XDP program
    /// reads no clock, which is most of its cost on a VM.
    HostLowprec,
    /// The NIC's; refused where the interface cannot stamp received frames.
    Adapter,
}

/// Which clock stamped a queue's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampSource {
    /// The host's, per batch, in the worker.
    Batch,
    /// The host's, per frame, in the XDP program.
    Software,
    /// The NIC's (frames it did not stamp get the host's, counted).
    Hardware,
}

impl StampSource {
    /// `batch`, `software` or `hardware`.
    pub fn as_str(self) -> &'static str {
        match self {
            StampSource::Batch => "batch",
            StampSource::Software => "software",
            StampSource::Hardware => "hardware",
        }
    }
}

impl fmt::Display for StampSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an interface can do for receive timestamps (`ethtool -T`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capability {
    /// Its PTP hardware clock (`/dev/ptpN`), if it has one.
    pub phc_index: Option<u32>,
    /// It stamps received frames in hardware (SOF_TIMESTAMPING_RAW_HARDWARE).
    pub rx_hardware: bool,
    /// It can stamp every received frame (HWTSTAMP_FILTER_ALL).
    pub rx_filter_all: bool,
}

impl Capability {
    /// Why hardware stamps cannot be had, if they cannot.
    fn missing(&self) -> Option<&'static str> {
        if self.phc_index.is_none() {
            Some("has no PTP hardware clock")
        } else if !self.rx_hardware {
            Some("does not stamp received frames in hardware")
        } else if !self.rx_filter_all {
            Some("cannot stamp every received frame (no HWTSTAMP_FILTER_ALL)")
        } else {
            None
        }
    }
}

/// The source to use for `asked` on `iface` with `cap` in XDP `mode`, with a
/// note for the user when `auto` settled for software; an error line when
/// `adapter` was asked of an interface that cannot. The NIC's stamps are read
/// by a device-bound program, which runs in the driver (native mode) only.
///
/// # Errors
/// One line naming the interface, what it lacks and the way out.
pub fn choose(
    asked: TimeStampType,
    iface: &str,
    cap: &Capability,
    mode: XdpMode,
) -> Result<(StampSource, Option<String>), String> {
    let missing = if mode == XdpMode::Generic {
        Some("is captured in generic XDP mode, where the NIC's stamps cannot be read")
    } else {
        cap.missing()
    };
    match (asked, missing) {
        (TimeStampType::HostLowprec, _) => Ok((StampSource::Batch, None)),
        (TimeStampType::Host, _) => Ok((StampSource::Software, None)),
        (_, None) => Ok((StampSource::Hardware, None)),
        (TimeStampType::Auto, Some(why)) => Ok((
            StampSource::Software,
            Some(format!("{iface} {why}")),
        )),
        (TimeStampType::Adapter, Some(why)) => Err(format!(
            "-j adapter: {iface} {why} (see ethtool -T {iface}); use -j host for software timestamps"
        )),
    }
}

/// One bracketed read of a device clock: the reference clock before, the
/// device clock, the reference clock after (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Reference clock just before the device was read.
    pub before: u64,
    /// The device clock.
    pub device: u64,
    /// Reference clock just after.
    pub after: u64,
}

/// `device - reference` from the tightest of `samples` (the one whose
/// bracket is narrowest, so least disturbed by interrupts), taking the
/// device read as made at the bracket's middle; its error is at most half
/// that bracket, which is returned beside it. `None` without a sane sample.
pub fn best_offset(samples: &[Sample]) -> Option<(i64, u64)> {
    let best = samples
        .iter()
        .filter(|s| s.after >= s.before)
        .min_by_key(|s| s.after - s.before)?;
    let window = best.after - best.before;
    let middle = i128::from(best.before) + i128::from(window / 2);
    let offset = i128::from(best.device) - middle;
    Some((i64::try_from(offset).ok()?, window / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIC: Capability = Capability {
        phc_index: Some(0),
        rx_hardware: true,
        rx_filter_all: true,
    };

    #[test]
    fn auto_takes_the_nic_where_it_can_and_says_why_not() {
        assert_eq!(
            choose(TimeStampType::Auto, "eth1", &NIC, XdpMode::Auto),
            Ok((StampSource::Hardware, None))
        );
        let (source, note) = choose(
            TimeStampType::Auto,
            "veth0",
            &Capability::default(),
            XdpMode::Auto,
        )
        .unwrap();
        assert_eq!(source, StampSource::Software);
        assert_eq!(note.as_deref(), Some("veth0 has no PTP hardware clock"));
        assert_eq!(
            choose(TimeStampType::Host, "eth1", &NIC, XdpMode::Native),
            Ok((StampSource::Software, None))
        );
        assert_eq!(
            choose(TimeStampType::HostLowprec, "eth1", &NIC, XdpMode::Native),
            Ok((StampSource::Batch, None))
        );
    }

    #[test]
    fn adapter_refuses_an_interface_that_cannot() {
        let err = choose(
            TimeStampType::Adapter,
            "veth0",
            &Capability::default(),
            XdpMode::Auto,
        )
        .unwrap_err();
        assert!(err.starts_with("-j adapter: veth0 has no PTP hardware clock"));
        assert!(err.contains("-j host"));
        let no_filter = Capability {
            rx_filter_all: false,
            ..NIC
        };
        let err = choose(TimeStampType::Adapter, "eth1", &no_filter, XdpMode::Auto).unwrap_err();
        assert!(err.contains("HWTSTAMP_FILTER_ALL"), "{err}");
        let no_rx = Capability {
            rx_hardware: false,
            ..NIC
        };
        assert!(choose(TimeStampType::Adapter, "eth1", &no_rx, XdpMode::Auto).is_err());
        let err = choose(TimeStampType::Adapter, "eth1", &NIC, XdpMode::Generic).unwrap_err();
        assert!(err.contains("generic XDP mode"), "{err}");
        assert_eq!(
            choose(TimeStampType::Auto, "eth1", &NIC, XdpMode::Generic)
                .unwrap()
                .0,
            StampSource::Software
        );
    }

    #[test]
    fn the_tightest_bracket_gives_the_offset() {
        let samples = [
            Sample {
                before: 1_000,
                device: 50_000_900,
                after: 3_000,
            },
            Sample {
                before: 10_000,
                device: 50_010_100,
                after: 10_200,
            },
            // A clock read backwards: ignored.
            Sample {
                before: 20_000,
                device: 0,
                after: 19_000,
            },
        ];
        assert_eq!(best_offset(&samples), Some((50_000_000, 100)));
        assert_eq!(best_offset(&samples[2..]), None);
        assert_eq!(best_offset(&[]), None);
    }

    #[test]
    fn a_device_behind_the_reference_has_a_negative_offset() {
        let s = Sample {
            before: 5_000_000_000,
            device: 1_000,
            after: 5_000_000_010,
        };
        assert_eq!(best_offset(&[s]), Some((1_000 - 5_000_000_005, 5)));
    }
}
