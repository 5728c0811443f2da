//! The admission request path end to end as the webhook runs it: bytes → `parse_review` →
//! `Engine::decide_request` → `respond`, and the same bytes through the HTTP route
//! (`Service::handle`, metrics included). Invariants: no panic; a request that cannot be
//! evaluated is never allowed under a deny policy; the response is bounded (never amplified
//! beyond the request plus the message caps); metrics stay bounded whatever kinds are sent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use palisade_admission::service::Service;
use palisade_admission::{Action, Config, Engine, Preset};
use std::sync::{Arc, OnceLock};

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::new(Config::preset(Preset::Restricted, Action::Deny), Vec::new()))
}

fn service() -> &'static Arc<Service> {
    static S: OnceLock<Arc<Service>> = OnceLock::new();
    S.get_or_init(|| Service::new(Engine::new(Config::preset(Preset::Baseline, Action::Deny), Vec::new()), None))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = palisade_admission::parse_review(data) {
        let d = engine().decide_request(&req);
        if req.invalid.is_some() {
            assert!(!d.allowed, "an unevaluable request was allowed: {:?}", req.invalid);
        }
        let out = serde_json::to_vec(&palisade_admission::respond(&req, &d)).unwrap_or_default();
        assert!(out.len() <= data.len() + 8 * palisade_admission::MAX_MESSAGE_BYTES, "response of {} bytes", out.len());
    }
    let http = palisade_https::Request {
        method: "POST".into(),
        path: "/validate".into(),
        query: String::new(),
        headers: Vec::new(),
        body: data.to_vec(),
        peer: ([127, 0, 0, 1], 1).into(),
        client_cert: false,
    };
    let r = service().handle(&http);
    assert!(r.status == 200 || r.status == 400, "status {}", r.status);
    assert!(service().metrics_text().len() < 64 * 1024);
});
