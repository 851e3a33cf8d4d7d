//! The harness's test bed: namespaces `NAME-a` (the generator) and `NAME-b`
//! (the receivers), the veth's NAPI placement and interrupt deferral, and the
//! veth's own drop counters.

use std::process::Command;

use anyhow::Context;

use crate::testbed::Testbed;

/// The CPU every receiver (and the veth's NAPI thread) runs on; the generator uses CPU 0.
pub const RECEIVER_CPU: usize = 1;

/// A test bed prepared for trials (torn down when dropped).
pub struct Bed {
    bed: Testbed,
}

impl Bed {
    /// Builds the bed. With `napi_thread`, the receiving veth's NAPI runs as a
    /// SCHED_FIFO thread on [`RECEIVER_CPU`] instead of in softirq on the
    /// generator's CPU.
    pub fn new(napi_thread: bool) -> anyhow::Result<Bed> {
        let bed = Bed {
            bed: Testbed::named("xtb", 1),
        };
        // Frames sent by XDP_TX reach a veth without an XDP program only through GRO.
        let ok = bed
            .exec_b(&["ethtool", "-K", &bed.b(), "gro", "on"])
            .status()?;
        anyhow::ensure!(ok.success(), "enabling GRO on {}", bed.b());
        if napi_thread {
            bed.thread_napi()?;
        }
        Ok(bed)
    }

    /// The receiving veth's NAPI (XDP, copies into UMEM, the stack) would
    /// otherwise run in softirq on the generator's CPU. As a thread pinned to
    /// the receivers' CPU, every receiver pays for all of its own work.
    /// (RT throttling keeps 5 % of CPU 1 for the receiver under overload.)
    fn thread_napi(&self) -> anyhow::Result<()> {
        let threaded = format!("echo 1 > /sys/class/net/{}/threaded", self.b());
        let ok = self.exec_b(&["sh", "-c", &threaded]).status()?;
        anyhow::ensure!(ok.success(), "threaded NAPI on {}", self.b());
        let pid = self
            .napi_thread()
            .context("finding the veth's NAPI thread")? as libc::pid_t;
        // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: RECEIVER_CPU is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(RECEIVER_CPU, &mut set) };
        // SAFETY: a valid cpu_set_t for a thread id found in /proc.
        let ret = unsafe { libc::sched_setaffinity(pid, std::mem::size_of_val(&set), &set) };
        anyhow::ensure!(
            ret == 0,
            "pinning the NAPI thread: {}",
            std::io::Error::last_os_error()
        );
        // Softirq work preempts user threads on a real NIC; SCHED_FIFO gives the
        // NAPI thread the same precedence over whichever receiver shares its CPU.
        let param = libc::sched_param { sched_priority: 50 };
        // SAFETY: a valid sched_param for a thread id found in /proc.
        let ret = unsafe { libc::sched_setscheduler(pid, libc::SCHED_FIFO, &param) };
        anyhow::ensure!(
            ret == 0,
            "raising the NAPI thread's priority: {}",
            std::io::Error::last_os_error()
        );
        Ok(())
    }

    /// Sets (or resets to the kernel's defaults) the receiving veth's
    /// interrupt deferral, which preferred busy polling relies on.
    pub fn defer_interrupts(&self, on: bool) -> anyhow::Result<()> {
        let (defer, timeout) = if on { (2, 20_000) } else { (0, 0) };
        let cmd = format!(
            "echo {defer} > /sys/class/net/{b}/napi_defer_hard_irqs && echo {timeout} > /sys/class/net/{b}/gro_flush_timeout",
            b = self.b()
        );
        let ok = self.exec_b(&["sh", "-c", &cmd]).status()?;
        anyhow::ensure!(ok.success(), "setting interrupt deferral on {}", self.b());
        Ok(())
    }

    /// The kernel thread that runs the receiving veth's NAPI.
    fn napi_thread(&self) -> Option<u32> {
        // Thread names are cut to 15 bytes: "napi/NAME-b-ID".
        let want: String = format!("napi/{}-", self.b()).chars().take(15).collect();
        std::fs::read_dir("/proc")
            .ok()?
            .filter_map(Result::ok)
            .find_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
                comm.trim_end().starts_with(&want).then_some(pid)
            })
    }

    /// The generator's namespace, which is also its device's name.
    pub fn a(&self) -> String {
        self.bed.ns_a()
    }

    /// The receivers' namespace, which is also its device's name.
    pub fn b(&self) -> String {
        self.bed.ns_b()
    }

    /// `args` run inside namespace `ns`.
    pub fn exec_in(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(args);
        c
    }

    /// `args` run inside the receivers' namespace.
    pub fn exec_b(&self, args: &[&str]) -> Command {
        self.exec_in(&self.b(), args)
    }

    /// Sum of the ethtool counters of `dev` (in `ns`) that `want` selects.
    fn ethtool_sum(&self, ns: &str, dev: &str, want: impl Fn(&str) -> bool) -> anyhow::Result<u64> {
        let out = self.exec_in(ns, &["ethtool", "-S", dev]).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .filter_map(|l| l.trim().split_once(": "))
            .filter(|(k, _)| want(k))
            .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
            .sum())
    }

    /// Frames lost between the veths: the receiving side's ring drops, and
    /// the sending side's XDP transmit errors (the peer's ring was full).
    pub fn veth_drops(&self) -> anyhow::Result<u64> {
        let rx = self.ethtool_sum(&self.b(), &self.b(), |k| {
            k.starts_with("rx_queue_") && k.ends_with("_drops") && !k.ends_with("xdp_drops")
        })?;
        let tx = self.ethtool_sum(&self.a(), &self.a(), |k| {
            k.starts_with("tx_queue_") && k.ends_with("_xdp_xmit_errors")
        })?;
        Ok(rx + tx)
    }
}
