//! Manifests as `posture` and `k8s inventory` read them: bytes → palisade-yaml (aliases, merge
//! keys, YAML 1.1 booleans, UTF-16) → objects → every posture check. Must never panic, and the
//! alias budget must bound the work (libFuzzer's -rss_limit_mb and -timeout catch a blow-up).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut loaded = palisade_k8s::load::Loaded::default();
    palisade_k8s::load::load_bytes("fuzz.yaml", data, &mut loaded);
    let _ = palisade_posture::assess(&loaded.objects, &palisade_posture::Options::default());
    // The raw reader too, with its positioned tree (detection rules use it).
    let text = String::from_utf8_lossy(data);
    let limits = palisade_yaml::Limits::for_input(text.len());
    if let Ok(trees) = palisade_yaml::parse_tree(&text, &limits) {
        for t in &trees {
            let _ = palisade_yaml::value::to_value(t);
        }
    }
});
