//! RPM databases (SQLite, NDB, Berkeley DB) and raw header blobs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = palisade_sbom::catalog::rpm::parse_db(data);
    let _ = palisade_sbom::catalog::rpm::parse_header_blob(data);
});
