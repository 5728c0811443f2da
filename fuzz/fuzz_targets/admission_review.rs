//! AdmissionReview bodies through the whole webhook path: parse, decide (every check), respond.
#![no_main]
use libfuzzer_sys::fuzz_target;
use palisade_admission::{Action, Config, Engine, Preset};
use std::sync::OnceLock;

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::new(Config::preset(Preset::Restricted, Action::Deny), Vec::new()))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = palisade_admission::parse_review(data) {
        let d = engine().decide_request(&req);
        let _ = palisade_admission::respond(&req, &d);
    }
});
