//! Kubernetes audit events as `detect audit` and `detect serve` read them: one JSON line, or an
//! EventList body, through the built-in rules. Must never panic.
//!
//! Compiling the rules takes about a second, so one engine serves every input (its per-rule
//! state carries over between inputs, as it does between events of a real log).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::{Mutex, OnceLock};

fn engine() -> &'static Mutex<palisade_detect::engine::Engine> {
    static E: OnceLock<Mutex<palisade_detect::engine::Engine>> = OnceLock::new();
    E.get_or_init(|| {
        let rules = palisade_detect::rules::RuleSet::builtin().unwrap_or_else(|e| panic!("built-in rules: {e}"));
        let engine =
            palisade_detect::engine::Engine::new(&rules, Default::default()).unwrap_or_else(|e| panic!("engine: {e}"));
        Mutex::new(engine)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut engine = engine().lock().unwrap_or_else(|p| p.into_inner());
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
