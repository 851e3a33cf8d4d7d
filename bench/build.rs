//! Compiles the generator's XDP program in `bench/bpf/` and generates its skeleton.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SOURCES: [(&str, &str); 3] = [
    ("bpf/gen.bpf.c", "gen.skel.rs"),
    ("bpf/drop.bpf.c", "drop.skel.rs"),
    ("bpf/feedgen.bpf.c", "feedgen.skel.rs"),
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // Debian's clang finds <asm/types.h> only under the multiarch include dir.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let multiarch = match arch.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        other => panic!("no multiarch include directory known for target arch {other}"),
    };
    for (source, skeleton) in SOURCES {
        SkeletonBuilder::new()
            .source(source)
            .clang_args([
                format!("-I/usr/include/{multiarch}"),
                "-I../bpf".to_string(),
                "-Wall".to_string(),
                "-Werror".to_string(),
            ])
            .build_and_generate(out.join(skeleton))
            .unwrap_or_else(|e| {
                panic!("compiling {source} (is clang installed? run tools/install-deps.sh): {e}")
            });
        println!("cargo:rerun-if-changed={source}");
    }
    println!("cargo:rerun-if-changed=../bpf/xsktap.h");
}
