//! Manifests, indexes, configs, registry challenges and references.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = palisade_image::spec::classify("fuzz", data, None);
    let text = String::from_utf8_lossy(data);
    let _ = palisade_image::registry::Challenge::parse(&text);
    let _ = palisade_image::Transport::parse(&text);
    let _ = palisade_image::walk::normalize_path(&text);
});
