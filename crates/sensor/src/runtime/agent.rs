//! `palisade sensor run`: the runtime as a long-running agent.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_detect::pipeline::Detector;
use palisade_detect::rules::RuleSet;

use crate::runtime::{
    FindingSink, HeartbeatConfig, Heartbeats, Runtime, RuntimeConfig, RuntimeError, RuntimeHealth, POD_LABEL_REFRESH,
};

/// How long one pump waits for events before the agent looks at its clocks and stop flag.
const PUMP_WAIT: Duration = Duration::from_millis(200);
/// How often the health served at `/health` and `/metrics` is refreshed.
const SHARED_HEALTH_EVERY: Duration = Duration::from_secs(1);

/// How the agent reaches the Kubernetes API (pod labels, pod responses).
#[derive(Debug, Clone, Default)]
pub enum ApiAccess {
    /// Through this kubeconfig (and context); failing to read it fails the start.
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// The context (default: the current one).
        context: Option<String>,
    },
    /// The pod's service account when running in a pod; none otherwise.
    #[default]
    InCluster,
    /// No API access.
    None,
}

/// Everything `sensor run` is configured with.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The runtime.
    pub runtime: RuntimeConfig,
    /// API access.
    pub api: ApiAccess,
    /// Serve `/healthz`, `/health` and `/metrics` over plain HTTP here.
    pub metrics_listen: Option<String>,
    /// Write the health report (JSON) here every `health_interval`, and at the end.
    pub health_file: Option<PathBuf>,
    /// How often health is logged, written and sent.
    pub health_interval: Duration,
    /// Stop after this long (default: when the stop flag is set).
    pub duration: Option<Duration>,
    /// Send the health report to a Palisade server.
    pub heartbeats: Option<HeartbeatConfig>,
}

/// A started agent: the runtime, its API access, the metrics endpoint and heartbeats.
#[derive(Debug)]
pub struct Agent {
    runtime: Runtime,
    started: Instant,
    health_file: Option<PathBuf>,
    health_interval: Duration,
    duration: Option<Duration>,
    shared: Arc<Mutex<RuntimeHealth>>,
    metrics: Option<palisade_https::Server>,
    heartbeats: Option<Heartbeats>,
    api_missing: bool,
}

impl Agent {
    /// Starts the runtime, connects to the API server (pod labels always, pod responses when
    /// the node configuration has any), binds the metrics endpoint and starts heartbeats.
    pub fn start(cfg: AgentConfig, rules: &RuleSet, detector: Detector) -> Result<Agent, RuntimeError> {
        let started = Instant::now();
        let wants_api = cfg.runtime.node.responses.iter().any(|r| r.action.needs_api());
        let mut runtime = Runtime::start(cfg.runtime, rules, detector)?;
        let conn = match cfg.api {
            ApiAccess::Kubeconfig { path, context } => {
                Some(palisade_k8s::live::from_kubeconfig(&path, context.as_deref())?)
            }
            ApiAccess::InCluster => palisade_k8s::live::in_cluster(),
            ApiAccess::None => None,
        };
        let api_missing = match conn {
            Some(c) => {
                runtime.watch_pod_labels(palisade_k8s::live::Client::new(c.clone())?, POD_LABEL_REFRESH);
                if wants_api {
                    runtime.enable_cluster_responses(palisade_k8s::live::Client::new(c)?);
                }
                false
            }
            None => wants_api,
        };
        let shared = Arc::new(Mutex::new(runtime.health(started.elapsed())));
        let metrics = match &cfg.metrics_listen {
            Some(addr) => Some(serve_health(addr, shared.clone())?),
            None => None,
        };
        Ok(Agent {
            runtime,
            started,
            health_file: cfg.health_file,
            health_interval: cfg.health_interval,
            duration: cfg.duration,
            shared,
            metrics,
            heartbeats: cfg.heartbeats.map(Heartbeats::spawn),
            api_missing,
        })
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Pod responses are configured but there is no API access to carry them out.
    pub fn api_missing(&self) -> bool {
        self.api_missing
    }

    /// Where `/health` is served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(palisade_https::Server::local_addr)
    }

    /// Runs until `stop` is set or the configured duration has passed: events to `sink`, the
    /// served health refreshed every second, health logged, written and sent every
    /// `health_interval`. Then pending alert updates are flushed, `sink` is flushed, and the
    /// final health is written to the health file and returned.
    pub fn run(&mut self, stop: &AtomicBool, sink: &mut dyn FindingSink) -> Result<RuntimeHealth, RuntimeError> {
        let mut next_health = Instant::now();
        let mut next_shared = Instant::now();
        while !stop.load(Ordering::Relaxed) && self.duration.is_none_or(|d| self.started.elapsed() < d) {
            self.runtime.pump(PUMP_WAIT, &mut |f| sink.send(f))?;
            if Instant::now() >= next_shared {
                next_shared = Instant::now() + SHARED_HEALTH_EVERY;
                let h = self.runtime.health(self.started.elapsed());
                if Instant::now() >= next_health {
                    next_health = Instant::now() + self.health_interval;
                    self.report(&h);
                }
                *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = h;
            }
        }
        self.runtime.flush(&mut |f| sink.send(f))?;
        sink.flush();
        let h = self.runtime.health(self.started.elapsed());
        if let Some(p) = &self.health_file {
            let _ = std::fs::write(p, serde_json::to_vec_pretty(&h.to_json()).unwrap_or_default());
        }
        Ok(h)
    }

    /// The periodic report: a log line, a heartbeat, the health file (replaced atomically).
    fn report(&self, h: &RuntimeHealth) {
        let json = h.to_json();
        tracing::info!(health = %json, "sensor health");
        if let Some(hb) = &self.heartbeats {
            hb.send(h);
        }
        if let Some(p) = &self.health_file {
            let tmp = p.with_extension("tmp");
            if std::fs::write(&tmp, serde_json::to_vec_pretty(&json).unwrap_or_default()).is_ok() {
                let _ = std::fs::rename(&tmp, p);
            }
        }
    }
}

/// The health endpoint: `/healthz` (503 when unhealthy), `/health` (JSON), `/metrics`.
fn serve_health(addr: &str, shared: Arc<Mutex<RuntimeHealth>>) -> Result<palisade_https::Server, RuntimeError> {
    let handler: palisade_https::Handler = Arc::new(move |r: &palisade_https::Request| {
        let h = shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
        health_response(&h, &r.path)
    });
    Ok(palisade_https::Server::bind(addr, None, palisade_https::Limits::default(), "sensor-metrics", handler)?)
}

fn health_response(h: &RuntimeHealth, path: &str) -> palisade_https::Response {
    match path {
        "/healthz" => {
            let (code, body) = h.healthz();
            palisade_https::Response::text(code, body)
        }
        "/health" => palisade_https::Response::json(200, serde_json::to_vec(&h.to_json()).unwrap_or_default()),
        "/metrics" => palisade_https::Response::text(200, h.metrics_text()),
        _ => palisade_https::Response::message(404, "not found: /healthz, /health, /metrics"),
    }
}

impl ApiAccess {
    /// `--kubeconfig` when given, else the service account of the pod.
    pub fn from_kubeconfig(path: Option<PathBuf>, context: Option<String>) -> ApiAccess {
        match path {
            Some(path) => ApiAccess::Kubeconfig { path, context },
            None => ApiAccess::InCluster,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::HealthStatus;

    #[test]
    fn health_endpoint_routes() {
        let h = crate::runtime::health::tests::sample();
        let r = health_response(&h, "/health");
        assert_eq!((r.status, r.content_type), (200, "application/json"));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        assert_eq!(body, h.to_json());
        let r = health_response(&h, "/metrics");
        assert!(r.status == 200 && String::from_utf8_lossy(&r.body).contains("palisade_sensor_up 0.5\n"));
        let r = health_response(&h, "/healthz");
        assert_eq!((r.status, r.body.as_slice()), (200, b"\"degraded\"\n".as_slice()));
        let sick = RuntimeHealth { status: HealthStatus::Unhealthy, ..h };
        assert_eq!(health_response(&sick, "/healthz").status, 503);
        assert_eq!(health_response(&sick, "/").status, 404);
    }

    #[test]
    fn api_access_from_flags() {
        assert!(matches!(ApiAccess::from_kubeconfig(None, None), ApiAccess::InCluster));
        let a = ApiAccess::from_kubeconfig(Some("/k".into()), Some("prod".into()));
        assert!(
            matches!(a, ApiAccess::Kubeconfig { ref path, context: Some(ref c) } if path.as_os_str() == "/k" && c == "prod")
        );
    }
}
