//! Compiles `src/bpf/sensor.bpf.c` with clang into a CO-RE BPF object and generates the
//! libbpf-rs skeleton (`$OUT_DIR/sensor.skel.rs`).
//!
//! Needs clang (any version with the BPF target, 11 or newer) on `PATH`, or set `CLANG` to
//! its path. The libbpf headers come from the vendored libbpf; `vmlinux.h` is committed.

use std::env;
use std::path::PathBuf;
use std::process::Command;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/sensor.bpf.c";

fn main() {
    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-changed=src/bpf/vmlinux.h");
    println!("cargo:rerun-if-env-changed=CLANG");

    let clang = env::var_os("CLANG").map_or_else(|| PathBuf::from("clang"), PathBuf::from);
    match Command::new(&clang).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => fail(&format!(
            "`{} --version` failed ({}): {}",
            clang.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => fail(&format!(
            "clang not found ({}: {e}). palisade-sensor compiles its BPF programs at build \
             time: install clang (Debian/Ubuntu: `apt-get install clang llvm libelf-dev \
             zlib1g-dev pkg-config`) or point the CLANG environment variable at a clang binary",
            clang.display()
        )),
    }

    let out =
        PathBuf::from(env::var_os("OUT_DIR").unwrap_or_else(|| fail("OUT_DIR is not set"))).join("sensor.skel.rs");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let include = manifest.join("src/bpf");
    let mut include_arg = std::ffi::OsString::from("-I");
    include_arg.push(&include);
    if let Err(e) = SkeletonBuilder::new()
        .source(manifest.join(SRC))
        .clang(&clang)
        .clang_args([include_arg, "-Wall".into(), "-Wno-unused-function".into()])
        .build_and_generate(&out)
    {
        fail(&format!("building the BPF skeleton from {SRC} failed: {e:#}"));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: palisade-sensor: {msg}");
    std::process::exit(1);
}
