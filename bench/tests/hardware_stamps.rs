//! The hardware-timestamp variant of the XDP program, on a live veth: it
//! loads device-bound (its `bpf_xdp_metadata_rx_timestamp` call resolved to
//! the driver's), attaches in native mode only, and where the driver gives no
//! stamp (veth stamps nothing in hardware) it counts every selected frame in
//! `hw_stamp_missing` and still redirects it. Needs root.

use xsktap_bench::frames::udp_frame;
use xsktap_bench::netns;
use xsktap_bench::testbed::Testbed;
use xsktap_core::XdpMode;
use xsktap_sys::error::Error;
use xsktap_sys::loader::{Stamps, XdpProgram};
use xsktap_sys::netdev;

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn the_device_bound_variant_runs_and_counts_frames_without_a_hardware_stamp() {
    let bed = Testbed::named("xh", 1);
    let ns = bed.ns_b();
    let frames: Vec<Vec<u8>> = (0..50).map(|i| udp_frame(60, 1, i)).collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            netns::enter(&ns).expect("entering namespace b");
            let ifindex = netdev::ifindex(&ns).expect("the test bed's interface");
            let program = XdpProgram::load(Stamps::Hardware { ifindex }, None)
                .expect("loading the device-bound variant");
            assert_eq!(program.stamps(), Stamps::Hardware { ifindex });
            program.capture_queue_without_socket(0).unwrap();
            program.hw_clock().unwrap().set(0).unwrap();

            // The kernel runs device-bound programs in the driver only.
            match program.attach(&ns, ifindex, XdpMode::Generic) {
                Err(Error::Attach { mode, .. }) => assert_eq!(mode, "generic"),
                other => panic!("generic attach of a device-bound program: {other:?}"),
            }
            let link = program
                .attach(&ns, ifindex, XdpMode::Auto)
                .expect("attaching natively");
            assert_eq!(link.mode().as_str(), "native");
            bed.send(&frames);
            let c = program.counters(0).unwrap();
            drop(link);
            assert!(c.seen >= frames.len() as u64, "{c:?}");
            // Selected (no socket in the map: a failed redirect) and, veth
            // giving no hardware stamp, each one stamped by the host.
            assert_eq!(c.redirect_failed, c.seen - c.passed - c.filtered_out);
            assert_eq!(c.hw_stamp_missing, c.redirect_failed, "{c:?}");
            assert!(!bed.xdp_attached(), "detached when the link closed");
        })
        .join()
        .expect("test thread");
    });
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn the_software_variant_never_counts_missing_hardware_stamps() {
    let bed = Testbed::named("xs", 1);
    let ns = bed.ns_b();
    let frames: Vec<Vec<u8>> = (0..20).map(|i| udp_frame(60, 1, i)).collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            netns::enter(&ns).expect("entering namespace b");
            let ifindex = netdev::ifindex(&ns).unwrap();
            let program = XdpProgram::load(Stamps::Software, None).unwrap();
            program.capture_queue_without_socket(0).unwrap();
            let link = program.attach(&ns, ifindex, XdpMode::Generic).unwrap();
            bed.send(&frames);
            let c = program.counters(0).unwrap();
            drop(link);
            assert!(c.redirect_failed >= frames.len() as u64, "{c:?}");
            assert_eq!(c.hw_stamp_missing, 0);
        })
        .join()
        .expect("test thread");
    });
}
