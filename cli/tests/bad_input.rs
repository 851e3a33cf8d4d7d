//! Every bad input gets one clear line, a non-zero exit, and leaves the
//! machine as it was: nothing attached, no output file left behind.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

/// The one line xsktap printed, checked to be alone on standard error.
fn one_error_line(out: &Output) -> String {
    one_line_with_status(out, 1)
}

/// The one line of a usage error (a flag's value, the filter): exit status 2.
fn one_usage_line(out: &Output) -> String {
    one_line_with_status(out, 2)
}

fn one_line_with_status(out: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status {code}; stderr: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "exactly one line: {stderr:?}");
    assert!(stderr.starts_with("xsktap: "), "{stderr}");
    stderr
}

/// The one error line, after checking the refusal left nothing behind: no
/// XDP program on the device and no output file at `output`.
fn refused_cleanly(bed: &Testbed, out: &Output, output: &std::path::Path) -> String {
    let line = one_error_line(out);
    assert!(!bed.xdp_attached(), "nothing attached after: {line}");
    assert!(!output.exists(), "no output file left behind after: {line}");
    line
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_missing_interface_is_named() {
    let bed = Testbed::new(1);
    let out = run(bed.xsktap(&["capture", "-i", "nosuch0", "-c", "1"]));
    let line = one_error_line(&out);
    assert!(line.contains("no interface named \"nosuch0\""), "{line}");
    assert!(
        line.contains("ip link"),
        "says how to list interfaces: {line}"
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_queue_the_interface_lacks_is_refused() {
    let bed = Testbed::new(2);
    let pcap = temp_path("badqueue.pcap");
    let iface = bed.ns_b();
    let out = run(bed.xsktap(&[
        "capture",
        "-i",
        &iface,
        "--queues",
        "1,5",
        "-w",
        pcap.to_str().unwrap(),
    ]));
    let line = refused_cleanly(&bed, &out, &pcap);
    assert!(
        line.contains("has 2 RX queue(s)") && line.contains("queue 5 does not exist"),
        "{line}"
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn an_unwritable_output_path_is_refused_before_attaching() {
    let bed = Testbed::new(1);
    let iface = bed.ns_b();
    let out = run(bed.xsktap(&["capture", "-i", &iface, "-w", "/nonexistent-dir/x.pcap"]));
    let line = one_error_line(&out);
    assert!(
        line.contains("cannot create output file /nonexistent-dir/x.pcap"),
        "{line}"
    );
    assert!(line.contains("writable path"), "{line}");
    assert!(!bed.xdp_attached());
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn missing_privilege_names_the_capability() {
    let bed = Testbed::new(1);
    let iface = bed.ns_b();
    // Drop CAP_BPF, CAP_SYS_ADMIN and CAP_PERFMON from the bounding set: the
    // exec'd root process keeps every other capability.
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &bed.ns_b()])
        .args([
            "setpriv",
            "--bounding-set",
            "-bpf,-sys_admin,-perfmon",
            "--",
        ])
        .args([XSKTAP, "capture", "-i", &iface, "-c", "1"]);
    let line = one_error_line(&run(cmd));
    assert!(line.contains("missing capability CAP_BPF"), "{line}");
    assert!(line.contains("run as root"), "{line}");
    assert!(!bed.xdp_attached());

    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &bed.ns_b()])
        .args(["setpriv", "--bounding-set", "-net_admin", "--"])
        .args([XSKTAP, "capture", "-i", &iface, "-c", "1"]);
    let line = one_error_line(&run(cmd));
    assert!(line.contains("missing capability CAP_NET_ADMIN"), "{line}");
}

/// A seccomp filter that answers socket(AF_XDP, ...) with EAFNOSUPPORT, as a
/// kernel built without CONFIG_XDP_SOCKETS does; every other call is allowed.
#[cfg(target_arch = "x86_64")]
fn deny_af_xdp() -> std::io::Result<()> {
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const NR_SOCKET: u32 = 41;
    const AF_XDP: u32 = 44;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = |offset: u32| stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
    let mut filter = [
        load(4), // seccomp_data.arch
        jeq(AUDIT_ARCH_X86_64, 0, 4),
        load(0), // seccomp_data.nr
        jeq(NR_SOCKET, 0, 2),
        load(16), // seccomp_data.args[0], low half
        jeq(AF_XDP, 1, 0),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | (libc::EAFNOSUPPORT as u32 & libc::SECCOMP_RET_DATA),
        ),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prctl with plain integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `prog` points to a valid filter that lives across the call;
    // the kernel copies it.
    if unsafe { libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_kernel_without_af_xdp_is_explained() {
    let bed = Testbed::new(1);
    let iface = bed.ns_b();
    let pcap = temp_path("noafxdp.pcap");
    let mut cmd = bed.xsktap(&["capture", "-i", &iface, "-w", pcap.to_str().unwrap()]);
    // SAFETY: the closure runs between fork and exec and only calls prctl,
    // which is async-signal-safe, and allocates nothing.
    unsafe { cmd.pre_exec(deny_af_xdp) };
    let line = refused_cleanly(&bed, &run(cmd), &pcap);
    assert!(
        line.contains("no AF_XDP sockets") && line.contains("CONFIG_XDP_SOCKETS"),
        "{line}"
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn another_xdp_program_is_not_replaced() {
    let bed = Testbed::new(1);
    let iface = bed.ns_b();
    let first = bed.start_capture(&["-q"]);
    let pcap = temp_path("busy.pcap");
    let out = run(bed.xsktap(&["capture", "-i", &iface, "-w", pcap.to_str().unwrap()]));
    let line = one_error_line(&out);
    assert!(
        line.contains("already has an XDP program attached"),
        "{line}"
    );
    assert!(line.contains("will not replace it"), "{line}");
    assert!(line.contains("xdp off"), "says how to detach: {line}");
    assert!(!pcap.exists(), "the output file we created is removed");
    // The first capture still owns the interface.
    assert!(bed.xdp_attached());
    first.signal(libc::SIGTERM);
    let mut first = first;
    assert!(first.wait(Duration::from_secs(30)).success());
    assert!(!bed.xdp_attached());
}

#[test]
fn bad_values_are_refused_without_root() {
    // Argument checks happen before anything touches the kernel.
    let cases: &[(&[&str], &str)] = &[
        (&["-i", "x", "--frame-size", "3000"], "frame size 3000"),
        (&["-i", "x", "--ring-size", "1000"], "ring size 1000"),
        (&["-i", "x", "--queues", "1,a"], "--queues"),
        (&["-i", "x", "--duration", "-1"], "--duration"),
        (&["-i", "x", "-c", "0"], "count 0"),
        (
            &["-i", "x", "--queues", "0,1", "--cores", "0"],
            "1 core(s) given for 2 queue(s)",
        ),
        (
            &["-i", "x", "--summary-json", "/nonexistent-dir/s.json"],
            "does not exist",
        ),
        (
            &["-i", "x", "--serve", "nonsense"],
            "is not PORT or ADDR:PORT",
        ),
        (
            &["-i", "x", "--serve", "9100", "--serve-token", "short"],
            "at least 16 characters",
        ),
        (
            &["-i", "x", "--serve-token", "0123456789abcdef"],
            "--serve-token needs --serve",
        ),
        (
            &["-i", "x", "--queues", "0,1", "--cores", "1,1"],
            "1 appears twice",
        ),
        (&["-i", "x", "udp and"], "at the end of the expression"),
        // A flag's value is a value: filter words in it are refused, not obeyed.
        (
            &[
                "-i",
                "x",
                "--protocol",
                "tcp",
                "--src-ip",
                "198.18.0.9 or udp",
            ],
            "--src-ip \"198.18.0.9 or udp\": expected an IP address",
        ),
        (&["-i", "x", "--host", "198.18.0.1/15"], "non-network bits"),
        (&["-i", "x", "--vlan", "4095"], "VLAN ids go from 0 to 4094"),
        (&["-i", "x", "port", "99999"], "port"),
        (&["-i", "x", "-j", "adapter_unsynced"], "--time-stamp-type"),
        (&["-r", "/dev/null", "-j", "host"], "cannot be used with"),
    ];
    // 20,000 nested parentheses or negations: one line, no stack overflow.
    let deep = format!("{}udp{}", "(".repeat(20_000), ")".repeat(20_000));
    let nots = "not ".repeat(20_000) + "udp";
    let many = vec!["udp"; 100].join(" or ");
    let nested = format!("{}udp{}", "(".repeat(65), ")".repeat(65));
    for (filter, needle) in [
        (deep.as_str(), "simplify it"),
        (nots.as_str(), "simplify it"),
        (many.as_str(), "simplify it"),
        (nested.as_str(), "deeper than 64"),
    ] {
        let out = Command::new(XSKTAP)
            .args(["capture", "-i", "x", filter])
            .output()
            .unwrap();
        assert!(one_usage_line(&out).contains(needle), "{filter:.40}");
    }
    for (args, needle) in cases {
        let out = Command::new(XSKTAP)
            .arg("capture")
            .args(*args)
            .output()
            .unwrap();
        let line = one_usage_line(&out);
        assert!(line.contains(needle), "{args:?}: {line}");
    }
    for (args, needle) in [
        (&["-i", "x"][..], "at least one --moldudp64"),
        (
            &["-i", "x", "--moldudp64", "198.19.0.1"],
            "expected ADDR:PORT",
        ),
        (
            &["-i", "x", "--ab", "itch=198.19.0.1:1,198.19.0.1:1"],
            "lines A and B are the same",
        ),
        (
            &[
                "-i",
                "x",
                "--moldudp64",
                "198.19.0.1:1",
                "--ab",
                "f=198.19.0.1:1,198.19.0.2:1",
            ],
            "given twice",
        ),
        (
            &[
                "-i",
                "x",
                "--moldudp64",
                "198.19.0.1:1",
                "--ab-window-us",
                "0",
            ],
            "--ab-window-us 0",
        ),
        (
            &[
                "-r",
                "/dev/null",
                "--moldudp64",
                "198.19.0.1:1",
                "--rerequest",
                "198.18.0.1:1",
            ],
            "cannot be used with -r FILE",
        ),
        (
            &["-i", "x", "--join", "--moldudp64", "198.19.0.1:1"],
            "198.19.0.1 is not a multicast group",
        ),
        (
            &[
                "-i",
                "x",
                "--moldudp64",
                "198.19.0.1:1",
                "--itch-utc-offset",
                "20",
            ],
            "--itch-utc-offset 20",
        ),
        (
            &[
                "-i",
                "x",
                "--moldudp64",
                "198.19.0.1:1",
                "--messages",
                "/nonexistent-dir/m.bin",
            ],
            "its directory does not exist",
        ),
        (
            &[
                "-i",
                "x",
                "--moldudp64",
                "198.19.0.1:1",
                "--rerequest",
                "somewhere",
            ],
            "--rerequest \"somewhere\": expected",
        ),
    ] {
        let out = Command::new(XSKTAP)
            .arg("feed")
            .args(args)
            .output()
            .unwrap();
        let line = one_usage_line(&out);
        assert!(line.contains(needle), "{args:?}: {line}");
    }
    // A filter xsktap cannot take is a usage error on every command, live
    // or reading a file, and for the flags that build a filter.
    let pcap = temp_path("bad-filter.pcap");
    write_pcap(&pcap, &[]);
    let pcap = pcap.to_str().unwrap();
    for source in [["-i", "x"], ["-r", pcap]] {
        for (command, extra) in [
            ("capture", &[][..]),
            ("monitor", &[][..]),
            ("top", &[][..]),
            ("feed", &["--moldudp64", "198.19.0.1:1"][..]),
        ] {
            for filter in [&["tcp", "and"][..], &["rarp", "host"], &["--port", "http"]] {
                let out = Command::new(XSKTAP)
                    .arg(command)
                    .args(source)
                    .args(extra)
                    .args(filter)
                    .output()
                    .unwrap();
                let line = one_usage_line(&out);
                assert!(
                    line.contains("filter") || line.contains("--port"),
                    "{command} {source:?} {filter:?}: {line}"
                );
            }
        }
    }
    let out = Command::new(XSKTAP)
        .args(["monitor", "-i", "x", "-w", "-"])
        .stdout(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(one_usage_line(&out).contains("-w - cannot share it"));
    let out = Command::new(XSKTAP)
        .args(["top", "-i", "x", "--interval", "0"])
        .output()
        .unwrap();
    assert!(one_usage_line(&out).contains("--interval 0"));
}

#[test]
fn bad_rotation_values_are_refused_and_leave_no_file() {
    let dir = temp_path("bad-rotation");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("r.pcap");
    let w = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["-w", w, "-C", "0"], "-C \"0\" is not a size"),
        (&["-w", w, "-C", "10x"], "-C \"10x\" is not a size"),
        (&["-w", w, "-C", "-5"], "'-5'"),
        (&["-w", w, "-G", "0"], "-G 0"),
        (&["-w", w, "-G", "soon"], "'-G <SECS>'"),
        (&["-w", w, "-W", "3"], "-W needs -C SIZE"),
        (&["-w", w, "-C", "1", "-W", "0"], "-W 0"),
        (&["-w", w, "-C", "1", "-W", "many"], "'-W <N>'"),
        (&["-w", w, "-C", "1", "--align"], "--align needs -G"),
        (&["-w", w, "-z", "gzip"], "add -C SIZE or -G SECS"),
        (&["-w", w, "--max-disk", "1g"], "add -C SIZE or -G SECS"),
        (
            &["-w", w, "-C", "1", "--max-disk", "lots"],
            "--max-disk \"lots\"",
        ),
        (&["-w", w, "-C", "1", "--max-disk", "0%"], "above 0%"),
        (
            &["-w", w, "-C", "1", "--max-disk", "1m"],
            "less than two -C files",
        ),
        (&["-w", w, "-C", "1", "-z", " "], "-z needs a program"),
        (&["-C", "1"], "give their name with -w FILE"),
        (
            &["-w", w, "--on-disk-full", "overwrite-oldest"],
            "add -C SIZE or -G SECS",
        ),
        (
            &["-w", w, "--on-disk-full", "never"],
            "'--on-disk-full <ON_DISK_FULL>'",
        ),
        (&["-w", w, "--format", "pcapx"], "'--format <FORMAT>'"),
    ];
    for (args, needle) in cases {
        let run = Command::new(XSKTAP)
            .args(["capture", "-i", "x"])
            .args(*args)
            .output()
            .unwrap();
        let line = one_usage_line(&run);
        assert!(line.contains(needle), "{args:?}: {line}");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "{args:?} left a file"
        );
    }
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_foreign_xdp_program_is_not_replaced() {
    let bed = Testbed::new(1);
    let iface = bed.ns_b();
    // Somebody else's program, attached the old way (netlink, generic mode).
    let dir = temp_path("foreign");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("pass.c");
    let obj = dir.join("pass.o");
    std::fs::write(
        &src,
        "#include <linux/bpf.h>\n\
         __attribute__((section(\"xdp\"), used)) int pass(struct xdp_md *ctx) { return XDP_PASS; }\n\
         char LICENSE[] __attribute__((section(\"license\"), used)) = \"GPL\";\n",
    )
    .unwrap();
    let multiarch = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let cc = Command::new("clang")
        .args(["-O2", "-target", "bpf", &multiarch, "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .unwrap();
    assert!(cc.success(), "clang compiled the foreign program");
    let attach = Command::new("ip")
        .args([
            "-n",
            &bed.ns_b(),
            "link",
            "set",
            "dev",
            &iface,
            "xdpgeneric",
            "obj",
        ])
        .arg(&obj)
        .args(["sec", "xdp"])
        .status()
        .unwrap();
    assert!(attach.success(), "ip attached the foreign program");
    assert!(bed.xdp_attached());

    let out = run(bed.xsktap(&["capture", "-i", &iface, "-c", "1"]));
    let line = one_error_line(&out);
    assert!(
        line.contains("already has an XDP program attached (generic mode"),
        "{line}"
    );
    assert!(bed.xdp_attached(), "the foreign program is still there");
    let detach = Command::new("ip")
        .args([
            "-n",
            &bed.ns_b(),
            "link",
            "set",
            "dev",
            &iface,
            "xdpgeneric",
            "off",
        ])
        .status()
        .unwrap();
    assert!(detach.success());
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn zero_copy_on_fails_clearly_where_the_driver_lacks_it() {
    let bed = Testbed::new(2);
    let iface = bed.ns_b();
    let pcap = temp_path("zc.pcap");
    // A file that already exists is left as it was by a start that fails.
    let existing = temp_path("zc-existing.pcap");
    std::fs::write(&existing, b"keep me").unwrap();
    let out = run(bed.xsktap(&[
        "capture",
        "-i",
        &iface,
        "--zero-copy",
        "on",
        "-w",
        existing.to_str().unwrap(),
    ]));
    one_error_line(&out);
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    let out = run(bed.xsktap(&[
        "capture",
        "-i",
        &iface,
        "--zero-copy",
        "on",
        "-w",
        pcap.to_str().unwrap(),
    ]));
    let line = refused_cleanly(&bed, &out, &pcap);
    assert!(line.contains("zero-copy AF_XDP is not available"), "{line}");
    assert!(line.contains("--zero-copy auto"), "names the fix: {line}");
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn hardware_timestamps_are_refused_clearly_where_the_nic_has_no_clock() {
    let bed = Testbed::new(1);
    let iface = bed.ns_b();
    let pcap = temp_path("hwts.pcap");
    let out = run(bed.xsktap(&[
        "capture",
        "-i",
        &iface,
        "-j",
        "adapter",
        "-w",
        pcap.to_str().unwrap(),
    ]));
    let line = refused_cleanly(&bed, &out, &pcap);
    assert!(
        line.contains(&format!("-j adapter: {iface} has no PTP hardware clock")),
        "{line}"
    );
    assert!(line.contains("-j host"), "names the fix: {line}");
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_busy_dashboard_port_is_refused_before_attaching() {
    let bed = Testbed::new(1);
    let ns = bed.ns_b();
    // Something else listens on the port, in the capture's namespace.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        xsktap_bench::netns::enter(&ns).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:9100").unwrap();
        ready_tx.send(()).unwrap();
        let _ = done_rx.recv();
        drop(listener);
    });
    ready_rx.recv().unwrap();
    let pcap = temp_path("busyport.pcap");
    let iface = bed.ns_b();
    let out = run(bed.xsktap(&[
        "capture",
        "-i",
        &iface,
        "--serve",
        "9100",
        "-w",
        pcap.to_str().unwrap(),
    ]));
    done_tx.send(()).unwrap();
    holder.join().unwrap();
    let line = refused_cleanly(&bed, &out, &pcap);
    assert!(
        line.contains("--serve 127.0.0.1:9100: cannot listen there") && line.contains("free port"),
        "{line}"
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn the_locked_memory_limit_is_named_with_its_fixes() {
    let bed = Testbed::new(1);
    let iface = bed.ns_b();
    // The capabilities the README lists, without CAP_IPC_LOCK (and without
    // CAP_SYS_RESOURCE, which could raise the limit), under the default 8 MiB.
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &bed.ns_b()])
        .args(["prlimit", "--memlock=8388608:8388608", "--"])
        .args(["setpriv", "--bounding-set", "-ipc_lock,-sys_resource", "--"])
        .args([XSKTAP, "capture", "-i", &iface, "-c", "1"]);
    let line = one_error_line(&run(cmd));
    assert!(line.contains("need 128 MiB of locked memory"), "{line}");
    assert!(line.contains("allows 8 MiB"), "{line}");
    assert!(
        line.contains("CAP_IPC_LOCK") && line.contains("ulimit -l"),
        "{line}"
    );
    assert!(!bed.xdp_attached());
    // Rings that fit the limit work with the same privileges.
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &bed.ns_b()])
        .args(["prlimit", "--memlock=8388608:8388608", "--"])
        .args(["setpriv", "--bounding-set", "-ipc_lock,-sys_resource", "--"])
        .args([
            XSKTAP,
            "capture",
            "-i",
            &iface,
            "--ring-size",
            "256",
            "--duration",
            "0.3",
            "-q",
        ]);
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored as root (tools/test.sh)"]
fn a_planted_link_or_foreign_file_in_a_shared_directory_is_refused() {
    use std::os::unix::fs::{chown, PermissionsExt};
    let bed = Testbed::new(1);
    let iface = bed.ns_b();
    // A world-writable sticky directory, as /tmp.
    let shared = temp_path("sticky");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let precious = temp_path("precious");
    std::fs::write(&precious, b"precious").unwrap();
    let link = shared.join("planted.pcap");
    std::os::unix::fs::symlink(&precious, &link).unwrap();
    let out = run(bed.xsktap(&[
        "capture",
        "-i",
        &iface,
        "-w",
        link.to_str().unwrap(),
        "-c",
        "1",
    ]));
    let line = one_error_line(&out);
    assert!(line.contains("symbolic link"), "{line}");
    assert_eq!(
        std::fs::read(&precious).unwrap(),
        b"precious",
        "the target is untouched"
    );
    assert!(!bed.xdp_attached());
    // Another user's file there is refused too, and left as it was.
    let foreign = shared.join("foreign.pcap");
    std::fs::write(&foreign, b"theirs").unwrap();
    chown(&foreign, Some(65534), Some(65534)).unwrap();
    let out = run(bed.xsktap(&[
        "capture",
        "-i",
        &iface,
        "-w",
        foreign.to_str().unwrap(),
        "-c",
        "1",
    ]));
    let line = one_error_line(&out);
    assert!(line.contains("belongs to another user"), "{line}");
    assert_eq!(std::fs::read(&foreign).unwrap(), b"theirs");
    // A new file is created with 0666 less the umask.
    let fresh = shared.join("fresh.pcap");
    let out = run(bed.xsktap(&[
        "capture",
        "-i",
        &iface,
        "-w",
        fresh.to_str().unwrap(),
        "--duration",
        "0.2",
        "-q",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    // SAFETY: umask(2) only sets and returns this process's mask; it is put back at once.
    let umask = unsafe {
        let m = libc::umask(0o022);
        libc::umask(m);
        m
    };
    assert_eq!(mode, 0o666 & !umask, "{mode:o}");
    std::fs::remove_dir_all(&shared).unwrap();
}
