//! Kubernetes audit events as `detect audit` and `detect serve` read them: one JSON line, or an
//! EventList body, through the built-in rules. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn rules() -> &'static palisade_detect::rules::RuleSet {
    static R: OnceLock<palisade_detect::rules::RuleSet> = OnceLock::new();
    R.get_or_init(|| palisade_detect::rules::RuleSet::builtin().unwrap_or_else(|e| panic!("built-in rules: {e}")))
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut engine) = palisade_detect::engine::Engine::new(rules(), Default::default()) else { return };
    let mut out = Vec::new();
    for line in data.split(|b| *b == b'\n') {
        if let Ok(Some(ev)) = palisade_detect::audit::parse_line(line) {
            engine.process(&palisade_detect::event::Event::Audit(ev), &mut out);
        }
    }
    if let Ok(body) = std::str::from_utf8(data) {
        if let Ok(list) = palisade_detect::audit::parse_event_list(body) {
            for ev in list.into_iter().flatten() {
                engine.process(&palisade_detect::event::Event::Audit(ev), &mut out);
            }
        }
    }
});
