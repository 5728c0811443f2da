//! A layer blob (any compression) through decompression, the tar walker and every cataloger.
#![no_main]
use libfuzzer_sys::fuzz_target;
use palisade_image::layer::{read_layer, LayerInfo};

fuzz_target!(|data: &[u8]| {
    let info = LayerInfo { digest: "sha256:fuzz".into(), ..Default::default() };
    if let Ok(r) =
        read_layer("fuzz", &info, Box::new(data), &palisade_sbom::analyzer::Catalogers, &palisade_image::NoProgress)
    {
        let mut m = palisade_image::Merged::default();
        m.apply(0, "fuzz", r);
        let _ = palisade_sbom::scan::assemble("fuzz", None, m);
    }
});
