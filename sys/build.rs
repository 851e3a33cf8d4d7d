//! Compiles the XDP program in `bpf/` and generates its Rust skeleton.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SOURCE: &str = "../bpf/xsktap.bpf.c";
const HEADER: &str = "../bpf/xsktap.h";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // Debian's clang finds <asm/types.h> only under the multiarch include dir.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let multiarch = match arch.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        other => panic!("no multiarch include directory known for target arch {other}"),
    };
    SkeletonBuilder::new()
        .source(SOURCE)
        .clang_args([
            format!("-I/usr/include/{multiarch}"),
            "-I../bpf".to_string(),
            // v3 (kernel 5.1+): the rate limiter's compare-and-swap needs it.
            "-mcpu=v3".to_string(),
            "-Wall".to_string(),
            "-Werror".to_string(),
        ])
        .build_and_generate(out.join("xsktap.skel.rs"))
        .expect("compiling bpf/xsktap.bpf.c (is clang installed? run tools/install-deps.sh)");
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed={HEADER}");
}
