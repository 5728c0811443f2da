//! Java archives and ELF binaries (Go build info, cargo-auditable).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = palisade_sbom::catalog::java::parse("/x.jar", data);
    let _ = palisade_sbom::catalog::binary::parse("/x", data);
    let _ = palisade_sbom::catalog::binary::go_buildinfo(data);
});
