//! Per-frame timestamps: choosing the clock (`-j`), and for the NIC's clock
//! the thread that keeps its offset to CLOCK_MONOTONIC measured for the XDP
//! program (see `xsktap_core::timestamps` for the method).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use xsktap_core::rxmeta::Carry;
use xsktap_core::timestamps::{self, StampSource};
use xsktap_core::CaptureConfig;
use xsktap_sys::loader::{HwClock, Stamps, XdpProgram};
use xsktap_sys::phc::{self, Phc, RxStamping};
use xsktap_sys::probe::{self, Feature};

use crate::background::{nap, stopping, Background};
use crate::files::Notices;
use crate::{Error, Result};

/// How often the NIC's clock is measured against CLOCK_MONOTONIC. Between
/// two measurements a stamp is off by the clocks' relative drift: a free
/// running PHC 100 ppm away from the host's clock adds up to 100 µs.
const MEASURE_EVERY: Duration = Duration::from_secs(1);

/// Which clock stamps a capture's frames, and why when not the one asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamps {
    /// Software or hardware (frames the NIC gives no stamp get software ones,
    /// counted per queue in `hw_stamp_missing`).
    pub source: StampSource,
    /// Why `-j auto` settled for software stamps, or what the NIC's clock is.
    pub note: Option<String>,
    /// Where the program carries per-frame stamps (`None`: batch stamps).
    pub carry: Option<Carry>,
    /// Why the stamps travel in headroom rather than XDP metadata.
    pub carry_note: Option<String>,
}

impl Timestamps {
    /// Records where `program` carries its stamps, and why when not in
    /// XDP metadata.
    pub(crate) fn carried_by(mut self, program: &XdpProgram) -> Timestamps {
        self.carry = (program.stamps() != Stamps::None).then(|| program.carry());
        self.carry_note = match self.carry {
            Some(Carry::Headroom) if probe::forced_missing(Feature::AdjustMeta) => {
                Some("XDP metadata switched off by XSKTAP_TEST_MISSING: carried in headroom".into())
            }
            Some(Carry::Headroom) => {
                Some("XDP metadata refused by this kernel: carried in headroom".into())
            }
            _ => None,
        };
        self
    }

    /// The notes on the clock and on the carry, joined.
    pub fn notes(&self) -> Option<String> {
        let notes: Vec<&str> = [&self.note, &self.carry_note]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}

/// The NIC's clock, ready for a hardware-stamping program.
pub(crate) struct Hardware {
    rx: RxStamping,
    phc: Phc,
    phc_index: u32,
}

/// The clock `cfg` asks for on `iface`, and for the NIC's, its stamping
/// turned on and its clock opened. Under `-j auto` whatever fails falls
/// back to software stamps with a note; under `-j adapter` it fails.
///
/// # Errors
/// [`Error::Config`]: `-j adapter` on an interface that cannot.
pub(crate) fn choose(cfg: &CaptureConfig) -> Result<(Timestamps, Option<Hardware>)> {
    let cap = phc::capability(&cfg.iface);
    let (source, note) = timestamps::choose(cfg.time_stamp, &cfg.iface, &cap, cfg.xdp_mode)
        .map_err(Error::Config)?;
    let (StampSource::Hardware, Some(phc_index)) = (source, cap.phc_index) else {
        return Ok((
            Timestamps {
                source,
                note,
                carry: None,
                carry_note: None,
            },
            None,
        ));
    };
    let opened = RxStamping::enable(&cfg.iface).and_then(|rx| {
        let phc = Phc::open(phc_index)?;
        Ok(Hardware { rx, phc, phc_index })
    });
    match opened {
        Ok(hw) => Ok((
            Timestamps {
                source,
                note: Some(format!("/dev/ptp{phc_index}")),
                carry: None,
                carry_note: None,
            },
            Some(hw),
        )),
        Err(e) => fallback(cfg, &e.to_string()),
    }
}

/// Software stamps with a note under `-j auto`; the error under `-j adapter`.
pub(crate) fn fallback(cfg: &CaptureConfig, why: &str) -> Result<(Timestamps, Option<Hardware>)> {
    if cfg.time_stamp == timestamps::TimeStampType::Adapter {
        return Err(Error::Config(format!(
            "-j adapter: {}: {why}; use -j host for software timestamps",
            cfg.iface
        )));
    }
    Ok((
        Timestamps {
            source: StampSource::Software,
            note: Some(why.to_string()),
            carry: None,
            carry_note: None,
        },
        None,
    ))
}

/// The variant of the XDP program to load.
pub(crate) fn variant(source: StampSource, hw: Option<&Hardware>, ifindex: u32) -> Stamps {
    match (source, hw) {
        (_, Some(_)) => Stamps::Hardware { ifindex },
        (StampSource::Batch, None) => Stamps::None,
        (_, None) => Stamps::Software,
    }
}

/// Keeps the hardware program's clock offset measured while the capture runs.
pub(crate) struct ClockKeeper {
    // Dropped first: the thread stops before receive stamping is put back.
    _thread: Background,
    _rx: RxStamping,
}

impl ClockKeeper {
    /// Measures the offset once (before the program is attached, so that no
    /// frame needs the fallback for want of it) and then every
    /// [`MEASURE_EVERY`] on a thread on the housekeeping CPUs.
    pub(crate) fn start(
        hw: Hardware,
        program: &XdpProgram,
        cpus: &[usize],
        notices: &Arc<Notices>,
    ) -> Result<ClockKeeper> {
        let clock = program.hw_clock()?;
        let (offset, _) = hw.phc.offset_to_monotonic()?;
        clock.set(offset)?;
        let (phc, index, notices) = (hw.phc, hw.phc_index, notices.clone());
        let thread = Background::spawn("xsktap-phc", cpus, move |stop| {
            keep(&phc, index, &clock, stop, &notices)
        })?;
        Ok(ClockKeeper {
            _thread: thread,
            _rx: hw.rx,
        })
    }
}

fn keep(phc: &Phc, index: u32, clock: &HwClock, stop: &AtomicBool, notices: &Notices) {
    let mut failing = false;
    while !stopping(stop) {
        nap(MEASURE_EVERY);
        if stopping(stop) {
            break;
        }
        let measured = phc
            .offset_to_monotonic()
            .and_then(|(offset, _)| clock.set(offset));
        match measured {
            // Said once per run of failures, not once a second.
            Err(e) if !failing => {
                failing = true;
                notices.push(format!(
                    "measuring /dev/ptp{index} failed ({e}): hardware stamps keep the last offset"
                ));
            }
            Err(_) => {}
            Ok(()) => failing = false,
        }
    }
}
