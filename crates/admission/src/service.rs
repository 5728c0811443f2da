//! The webhook service: HTTP routes over the decision core, Prometheus metrics, and the
//! engine swap that makes reloads safe.
//!
//! Routes: `POST /validate` (AdmissionReview in, AdmissionReview out), `GET /healthz`,
//! `GET /readyz` (503 until a configuration is loaded and while draining), `GET /metrics`.
//!
//! **Reload without dropping requests:** each request clones the current `Arc<Engine>` under a
//! read lock held for nanoseconds and decides with it; [`Service::swap`] replaces the `Arc`.
//! Requests in flight finish with the engine they started with; the old engine is freed when
//! the last of them ends. A configuration that fails to load never replaces a working one.

use crate::{parse_review, respond, Action, Decision, Engine, Operation, Request, KNOWN_KINDS};
use palisade_https::{Request as HttpRequest, Response};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 14] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Debug, Default)]
struct Metrics {
    /// (kind, operation, verdict) → count; kinds from [`KNOWN_KINDS`] and the four
    /// [`Operation`]s, anything else `other`, so the map stays small whatever clients send
    requests: Mutex<BTreeMap<(&'static str, &'static str, &'static str), u64>>,
    /// (policy, action) → requests where the policy found at least one violation
    decisions: Mutex<BTreeMap<(String, Action), u64>>,
    bad_requests: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
    reload_ok: AtomicU64,
    reload_failed: AtomicU64,
}

/// The admission webhook service (shared by all connection threads).
pub struct Service {
    engine: RwLock<Arc<Engine>>,
    generation: AtomicU64,
    ready: AtomicBool,
    metrics: Metrics,
    decision_log: Option<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("generation", &self.generation).finish_non_exhaustive()
    }
}

impl Service {
    /// A ready service deciding with `engine`. Decisions with violations are written as JSON
    /// lines to `decision_log` (the audit record of `audit` policies), except for dry runs.
    pub fn new(engine: Engine, decision_log: Option<Box<dyn Write + Send>>) -> Arc<Service> {
        Arc::new(Service {
            engine: RwLock::new(Arc::new(engine)),
            generation: AtomicU64::new(1),
            ready: AtomicBool::new(true),
            metrics: Metrics::default(),
            decision_log: decision_log.map(Mutex::new),
        })
    }

    /// The engine new requests use.
    pub fn engine(&self) -> Arc<Engine> {
        match self.engine.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the engine (a reload). Requests in flight keep the one they started with.
    pub fn swap(&self, engine: Engine) {
        let new = Arc::new(engine);
        match self.engine.write() {
            Ok(mut g) => *g = new,
            Err(p) => *p.into_inner() = new,
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.metrics.reload_ok.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a reload that failed (the running configuration stays).
    pub fn reload_failed(&self) {
        self.metrics.reload_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// The configuration generation (1 at start, +1 per successful reload).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Readiness (`/readyz`); cleared while draining on shutdown.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Answers one HTTP request.
    pub fn handle(&self, req: &HttpRequest) -> Response {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/healthz") => Response::text(200, "ok\n"),
            ("GET", "/readyz") => {
                if self.ready.load(Ordering::SeqCst) {
                    Response::text(200, "ok\n")
                } else {
                    Response::text(503, "not ready\n")
                }
            }
            ("GET", "/metrics") => Response {
                status: 200,
                content_type: "text/plain; version=0.0.4",
                body: self.metrics_text().into_bytes(),
            },
            ("POST", "/validate") => self.review(&req.body),
            (_, "/validate") => Response::message(405, "POST an admission.k8s.io/v1 AdmissionReview"),
            _ => Response::message(404, "not found: the webhook path is /validate"),
        }
    }

    /// Decides on an AdmissionReview body.
    pub fn review(&self, body: &[u8]) -> Response {
        let started = Instant::now();
        let req = match parse_review(body) {
            Ok(r) => r,
            Err(e) => {
                self.metrics.bad_requests.fetch_add(1, Ordering::Relaxed);
                return Response::message(400, &e.to_string());
            }
        };
        let engine = self.engine();
        let d = engine.decide_request(&req);
        let out = serde_json::to_vec(&respond(&req, &d)).unwrap_or_default();
        self.record(&req, &d, started);
        if !d.violations.is_empty() && !req.dry_run {
            self.log_decision(&req, &d);
        }
        Response::json(200, out)
    }

    fn record(&self, req: &Request, d: &Decision, started: Instant) {
        let m = &self.metrics;
        if let Ok(mut r) = m.requests.lock() {
            // labels from a fixed set only: a client chooses `kind` and `operation`
            let kind = KNOWN_KINDS.iter().find(|k| **k == req.kind).copied().unwrap_or("other");
            let op = req.operation.map_or("other", Operation::as_str);
            *r.entry((kind, op, d.verdict.as_str())).or_default() += 1;
        }
        if !d.violations.is_empty() {
            if let Ok(mut dm) = m.decisions.lock() {
                let mut seen: Vec<(&str, Action)> = Vec::new();
                for v in &d.violations {
                    if !seen.contains(&(v.policy.as_str(), v.action)) {
                        seen.push((v.policy.as_str(), v.action));
                        *dm.entry((v.policy.clone(), v.action)).or_default() += 1;
                    }
                }
            }
        }
        let took = started.elapsed();
        let secs = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                m.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        m.latency_count.fetch_add(1, Ordering::Relaxed);
        m.latency_sum_ns.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    fn log_decision(&self, req: &Request, d: &Decision) {
        let Some(log) = &self.decision_log else { return };
        let line = json!({
            "time": palisade_model::rfc3339(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)),
            "uid": req.uid, "kind": req.kind, "namespace": req.namespace, "name": req.name,
            "operation": req.operation, "user": req.user, "verdict": d.verdict,
            "violations": d.violations,
        });
        if let Ok(mut w) = log.lock() {
            let _ = writeln!(w, "{line}");
            let _ = w.flush();
        }
    }

    /// Prometheus text exposition.
    pub fn metrics_text(&self) -> String {
        let m = &self.metrics;
        let mut s = String::with_capacity(2048);
        s.push_str(
            "# HELP palisade_admission_requests_total AdmissionReview requests by kind, operation and verdict.\n",
        );
        s.push_str("# TYPE palisade_admission_requests_total counter\n");
        if let Ok(r) = m.requests.lock() {
            for ((kind, op, verdict), n) in r.iter() {
                let _ = writeln!(
                    s,
                    "palisade_admission_requests_total{{kind=\"{}\",operation=\"{}\",verdict=\"{verdict}\"}} {n}",
                    esc(kind),
                    esc(op)
                );
            }
        }
        s.push_str("# HELP palisade_admission_decisions_total Requests on which a policy found violations, by policy and action.\n");
        s.push_str("# TYPE palisade_admission_decisions_total counter\n");
        if let Ok(dm) = m.decisions.lock() {
            for ((policy, action), n) in dm.iter() {
                let a = match action {
                    Action::Audit => "audit",
                    Action::Warn => "warn",
                    Action::Deny => "deny",
                };
                let _ =
                    writeln!(s, "palisade_admission_decisions_total{{policy=\"{}\",action=\"{a}\"}} {n}", esc(policy));
            }
        }
        s.push_str("# HELP palisade_admission_bad_requests_total Bodies that were not AdmissionReviews.\n");
        s.push_str("# TYPE palisade_admission_bad_requests_total counter\n");
        let _ = writeln!(s, "palisade_admission_bad_requests_total {}", m.bad_requests.load(Ordering::Relaxed));
        s.push_str("# HELP palisade_admission_request_duration_seconds Time to decide on a review.\n");
        s.push_str("# TYPE palisade_admission_request_duration_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "palisade_admission_request_duration_seconds_bucket{{le=\"{b}\"}} {}",
                m.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = m.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(s, "palisade_admission_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            s,
            "palisade_admission_request_duration_seconds_sum {}",
            m.latency_sum_ns.load(Ordering::Relaxed) as f64 / 1e9
        );
        let _ = writeln!(s, "palisade_admission_request_duration_seconds_count {count}");
        s.push_str("# HELP palisade_admission_config_reloads_total Configuration reloads by result.\n");
        s.push_str("# TYPE palisade_admission_config_reloads_total counter\n");
        let _ = writeln!(
            s,
            "palisade_admission_config_reloads_total{{result=\"success\"}} {}",
            m.reload_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "palisade_admission_config_reloads_total{{result=\"failure\"}} {}",
            m.reload_failed.load(Ordering::Relaxed)
        );
        s.push_str("# HELP palisade_admission_config_generation Generation of the configuration in use.\n");
        s.push_str("# TYPE palisade_admission_config_generation gauge\n");
        let _ = writeln!(s, "palisade_admission_config_generation {}", self.generation());
        s
    }
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Preset};

    fn http(method: &str, path: &str, body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: Vec::new(),
            body: body.to_vec(),
            peer: ([127, 0, 0, 1], 1).into(),
            client_cert: false,
        }
    }

    fn review(ns: &str, privileged: bool, dry_run: bool) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "namespace": ns, "operation": "CREATE",
            "userInfo": {"username": "alice"}, "dryRun": dry_run,
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.25", "securityContext": {"privileged": privileged}}]}}}}))
        .unwrap_or_default()
    }

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);
    impl Write for Log {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(b);
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn metrics_label_only_known_kinds() {
        let svc = Service::new(Engine::new(Config::preset(Preset::Baseline, Action::Deny), Vec::new()), None);
        for i in 0..2000 {
            let kind = format!("Kind{i}{}", "x".repeat(1024));
            let body = serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {"uid": format!("u{i}"), "kind": {"group": "evil", "version": "v1", "kind": kind},
                    "operation": format!("OP{i}"), "object": {"apiVersion": "evil/v1", "kind": kind, "metadata": {"name": "x"}}}}))
            .unwrap_or_default();
            assert_eq!(svc.handle(&http("POST", "/validate", &body)).status, 200);
        }
        svc.handle(&http("POST", "/validate", &review("shop", true, false)));
        let m = svc.metrics_text();
        assert!(m.len() < 8 * 1024, "metrics grew to {} bytes", m.len());
        assert!(!m.contains("Kind1"), "{m}");
        assert!(m.contains("kind=\"other\",operation=\"other\""), "{m}");
        assert!(m.contains("kind=\"Pod\",operation=\"CREATE\",verdict=\"denied\"} 1"), "{m}");
    }

    #[test]
    fn routes_decisions_metrics_and_swaps() {
        let log = Log::default();
        let svc = Service::new(
            Engine::new(Config::preset(Preset::Baseline, Action::Deny), Vec::new()),
            Some(Box::new(log.clone())),
        );
        let r = svc.handle(&http("POST", "/validate", &review("shop", true, false)));
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(svc.handle(&http("POST", "/validate", b"{not json")).status, 400);
        assert_eq!(svc.handle(&http("GET", "/validate", b"")).status, 405);
        assert_eq!(svc.handle(&http("GET", "/nope", b"")).status, 404);
        assert_eq!(svc.handle(&http("GET", "/healthz", b"")).status, 200);
        // dry runs are decided but not logged
        let r = svc.handle(&http("POST", "/validate", &review("shop", true, true)));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        assert_eq!(v["response"]["auditAnnotations"]["palisade.dev/dry-run"], "true");
        let logged = String::from_utf8(log.0.lock().map(|v| v.clone()).unwrap_or_default()).unwrap_or_default();
        assert_eq!(logged.lines().count(), 1, "{logged}");
        assert!(logged.contains("PAL-K8S-001"));
        let m = svc.metrics_text();
        assert!(
            m.contains("palisade_admission_requests_total{kind=\"Pod\",operation=\"CREATE\",verdict=\"denied\"} 2"),
            "{m}"
        );
        assert!(m.contains("palisade_admission_decisions_total{policy=\"pss-baseline\",action=\"deny\"} 2"), "{m}");
        assert!(m.contains("palisade_admission_bad_requests_total 1"));
        assert!(m.contains("palisade_admission_request_duration_seconds_count 2"));
        // reload: the new engine decides the next request; readiness follows the flag
        svc.swap(Engine::new(Config::preset(Preset::Baseline, Action::Warn), Vec::new()));
        let r = svc.handle(&http("POST", "/validate", &review("shop", true, false)));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        assert_eq!(v["response"]["allowed"], true);
        assert_eq!(svc.generation(), 2);
        svc.set_ready(false);
        assert_eq!(svc.handle(&http("GET", "/readyz", b"")).status, 503);
    }
}
