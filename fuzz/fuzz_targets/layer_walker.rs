//! A layer blob (any compression) through decompression, the tar walker and every cataloger.
#![no_main]
use libfuzzer_sys::fuzz_target;
use palisade_image::layer::{read_layer, LayerInfo};

fuzz_target!(|data: &[u8]| {
    // The blob's real digest, so a valid layer passes verification and the merge and SBOM
    // assembly (link resolution across the layer) are fuzzed too.
    use sha2::Digest as _;
    let digest = format!("sha256:{:x}", sha2::Sha256::digest(data));
    let info = LayerInfo { digest, digest_is_raw: true, ..Default::default() };
    if let Ok(r) =
        read_layer("fuzz", &info, Box::new(data), &palisade_sbom::analyzer::Catalogers, &palisade_image::NoProgress)
    {
        let mut m = palisade_image::Merged::default();
        m.apply(0, "fuzz", r);
        let _ = palisade_sbom::scan::assemble("fuzz", None, m);
    }
});
