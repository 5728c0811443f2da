//! SBOM documents read back for re-assessment (CycloneDX, SPDX, native).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = palisade_sbom::read::read(data);
    let _ = palisade_vulndb::filter::parse_openvex("fuzz", data);
    let _ = palisade_vulndb::filter::parse_ignore_file("fuzz", &String::from_utf8_lossy(data));
});
