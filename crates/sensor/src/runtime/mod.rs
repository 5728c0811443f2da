//! The sensor runtime: the kernel sensor, the node pipeline (attribution, drift) and the rule
//! engine put together as one agent, with its responses and its health.
//!
//! - [`Runtime`] owns a started [`Sensor`] and the event pipeline. [`Runtime::pump`] takes the
//!   events available, converts each ([`crate::node::Node`]), arms drift prevention for new
//!   containers, kills blocked drift, runs the rules and carries out the configured responses
//!   (`kill` in place, pod responses on a worker thread), and hands findings to the caller.
//! - [`Runtime::health`] judges the kernel side and the counters into a typed
//!   [`RuntimeHealth`], the one value behind `/health`, `/metrics`, the health file and
//!   heartbeats.
//! - [`Agent`] is `palisade sensor run`: a runtime plus API access (pod labels, pod
//!   responses), the metrics endpoint, the health file and heartbeats, run until stopped.
//!
//! ```no_run
//! use palisade_sensor::runtime::{Runtime, RuntimeConfig};
//! let rules = palisade_detect::rules::RuleSet::builtin().map_err(|e| format!("{e:?}"))?;
//! let det = palisade_detect::pipeline::Detector::new(&rules, Default::default()).map_err(|e| format!("{e:?}"))?;
//! let mut rt = Runtime::start(RuntimeConfig::default(), &rules, det)?;
//! rt.pump(std::time::Duration::from_millis(200), &mut |f| {
//!     println!("{}", serde_json::to_string(f).unwrap_or_default());
//!     Ok(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod agent;
mod health;
mod heartbeat;
mod labels;
mod pipeline;
mod respond;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use palisade_detect::alert::Finding;
use palisade_detect::pipeline::Detector;
use palisade_detect::rules::{RuleSet, Source};

use crate::attribution::Resolver;
use crate::node::{Node, NodeConfig};
use crate::prevent::{ExecGuard, PreventError};
use crate::{Error, Sensor, SensorConfig};

pub use agent::{Agent, AgentConfig, ApiAccess};
pub use health::{AttachFailure, HealthStatus, LatencySummary, RuntimeHealth};
pub use heartbeat::{HeartbeatConfig, Heartbeats};
pub use respond::ResponseCounts;

use labels::PodLabelWatcher;
use pipeline::Pipeline;

/// Events handled per [`Runtime::pump`] call at most, so health and stop checks keep running
/// under a flood.
const MAX_BATCH: usize = 4096;

/// How often pod labels are read from the API server.
pub const POD_LABEL_REFRESH: Duration = Duration::from_secs(30);

/// Where findings go: the caller's sink, called once per finding.
pub type Emit<'a> = &'a mut dyn FnMut(&Finding) -> io::Result<()>;

/// A destination for the agent's findings ([`Agent::run`]).
pub trait FindingSink {
    /// Delivers one finding; an error stops the agent.
    fn send(&mut self, finding: &Finding) -> io::Result<()>;
    /// Delivers whatever is queued (called once, before the agent returns).
    fn flush(&mut self) {}
}

/// Why the runtime could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The eBPF sensor did not start.
    #[error("starting the eBPF sensor")]
    Sensor(#[source] Error),
    /// Drift prevention was asked for and could not start.
    #[error("drift prevention (fanotify)")]
    Prevention(#[source] PreventError),
    /// The node configuration file could not be read.
    #[error("reading {}", path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The node configuration file is invalid.
    #[error("{}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The Kubernetes API connection could not be set up.
    #[error(transparent)]
    Api(#[from] palisade_k8s::live::LiveError),
    /// The metrics endpoint could not be served.
    #[error(transparent)]
    Metrics(#[from] palisade_https::Error),
    /// Delivering a finding failed.
    #[error(transparent)]
    Output(#[from] io::Error),
}

/// What the runtime needs to start.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// The kernel side (ring buffer, disabled programs, snapshot).
    pub sensor: SensorConfig,
    /// Node name, cluster, drift policy and responses.
    pub node: NodeConfig,
}

/// The node configuration `sensor run` uses: the YAML file at `path` (defaults without one),
/// `node` overriding its node name, the host name when neither names the node, and `cluster`
/// when the file names none.
pub fn load_node_config(path: Option<&Path>, node: Option<&str>, cluster: &str) -> Result<NodeConfig, RuntimeError> {
    let mut cfg = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|source| RuntimeError::ReadConfig { path: p.to_path_buf(), source })?;
            NodeConfig::from_yaml(&text).map_err(|message| RuntimeError::Config { path: p.to_path_buf(), message })?
        }
        None => NodeConfig::default(),
    };
    if let Some(n) = node {
        cfg.node = n.to_string();
    }
    if cfg.node.is_empty() {
        cfg.node = hostname();
    }
    if cfg.cluster.is_empty() {
        cfg.cluster = cluster.to_string();
    }
    Ok(cfg)
}

/// The host name (`/proc/sys/kernel/hostname`; empty if unreadable).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// A hash of the rules (16 hex digits), to tell rule sets apart across a fleet.
pub fn ruleset_version(rules: &RuleSet) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    for r in rules.rules() {
        format!("{r:?}").hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

/// Unix time in microseconds.
pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// The running sensor with its pipeline.
#[derive(Debug)]
pub struct Runtime {
    sensor: Sensor,
    pipeline: Pipeline,
    rules_version: String,
    rules: usize,
    last_dropped: u64,
    /// CPU time used before the runtime started.
    cpu_at_start: f64,
    pod_labels: Option<PodLabelWatcher>,
}

impl Runtime {
    /// Starts the sensor and the pipeline over `rules` (the set `detector` was built from),
    /// and drift prevention when the drift policy asks for it. Programs that did not attach
    /// are in [`Runtime::attach_failures`]; the runtime carries on without them.
    pub fn start(cfg: RuntimeConfig, rules: &RuleSet, detector: Detector) -> Result<Runtime, RuntimeError> {
        let prevent = cfg.node.drift.prevent;
        let sensor = Sensor::start(&cfg.sensor).map_err(RuntimeError::Sensor)?;
        for (prog, err) in &sensor.health().attach_failures {
            tracing::warn!(program = %prog, error = %err, "BPF program not attached; carrying on without it");
        }
        let resolver = Resolver::new(Path::new("/"), Resolver::host_mntns());
        let node = Node::new(cfg.node, resolver, sensor.time_offset(), sensor.snapshot());
        let guard = if prevent { Some(ExecGuard::start().map_err(RuntimeError::Prevention)?) } else { None };
        let kill = Box::new(crate::kill_process);
        Ok(Runtime {
            sensor,
            pipeline: Pipeline::new(node, rules, detector, guard, kill),
            rules_version: ruleset_version(rules),
            rules: rules.rules().iter().filter(|r| r.source == Source::Sensor).count(),
            last_dropped: 0,
            cpu_at_start: health::process_usage().1,
            pod_labels: None,
        })
    }

    /// BPF programs that did not attach: (program, error).
    pub fn attach_failures(&self) -> Vec<(String, String)> {
        self.sensor.health().attach_failures
    }

    /// Sensor rules in the rule set.
    pub fn sensor_rules(&self) -> usize {
        self.rules
    }

    /// The node configuration in use.
    pub fn node_config(&self) -> &NodeConfig {
        self.pipeline.node.config()
    }

    /// Sends pod responses (label, isolate, delete) to the cluster through `client` from now
    /// on, from a worker thread; without this they are counted as skipped.
    pub fn enable_cluster_responses(&mut self, client: palisade_k8s::live::Client) {
        self.pipeline.responder.connect(client);
    }

    /// Refreshes this node's pod labels from the API server every `every` (for drift rules
    /// with `podLabels` on runtimes that do not record labels).
    pub fn watch_pod_labels(&mut self, client: palisade_k8s::live::Client, every: Duration) {
        let node = self.node_config().node.clone();
        self.pod_labels = Some(PodLabelWatcher::spawn(client, node, every));
    }

    /// Writes every converted event that reaches the rules to `w`, one JSON line each.
    pub fn set_event_log(&mut self, w: Box<dyn io::Write + Send>) {
        self.pipeline.event_log = Some(w);
    }

    /// Processes what is available, waiting up to `wait` for the first event and handling at
    /// most 4,096; findings go to `emit`. When no event came, the alert clock advances to
    /// now. Returns the events handled.
    pub fn pump(&mut self, wait: Duration, emit: Emit<'_>) -> io::Result<usize> {
        if let Some(l) = self.pod_labels.as_ref().and_then(PodLabelWatcher::latest) {
            self.pipeline.node.set_api_pod_labels(l);
        }
        let mut n = 0;
        let mut next = self.sensor.events().recv_timeout(wait).ok();
        while let Some(raw) = next {
            n += 1;
            self.pipeline.handle(&raw, emit)?;
            if n >= MAX_BATCH {
                break;
            }
            next = self.sensor.events().try_recv().ok();
        }
        self.pipeline.report_denials(emit)?;
        if n == 0 {
            self.pipeline.idle(now_us(), emit)?;
        }
        Ok(n)
    }

    /// Emits pending alert updates (before stopping).
    pub fn flush(&mut self, emit: Emit<'_>) -> io::Result<()> {
        self.pipeline.flush(emit)
    }

    /// Pod responses so far.
    pub fn cluster_responses(&self) -> ResponseCounts {
        self.pipeline.response_counts()
    }

    /// The health report. Drops are judged against the previous call's count, so call this at
    /// a steady pace.
    pub fn health(&mut self, uptime: Duration) -> RuntimeHealth {
        let h = self.sensor.health();
        let (status, problems) = health::assess(&h, &mut self.last_dropped);
        let (rss, cpu) = health::process_usage();
        let cfg = self.pipeline.node.config();
        let c = self.pipeline.counters;
        RuntimeHealth {
            status,
            problems,
            node: cfg.node.clone(),
            cluster: cfg.cluster.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_seconds: uptime.as_secs(),
            programs_loaded: h.programs_loaded.len(),
            programs_attached: h.programs_attached.len(),
            attach_failures: RuntimeHealth::attach_failures(&h),
            events: h.events,
            delivered: h.delivered,
            dropped_kernel: h.dropped_kernel,
            dropped_user: h.dropped_user,
            decode_errors: h.decode_errors,
            ringbuf_bytes: h.ringbuf_bytes,
            ringbuf_used_bytes: h.ringbuf_used_bytes,
            snapshot_source: format!("{:?}", h.snapshot_source),
            rules: self.rules,
            ruleset_version: self.rules_version.clone(),
            processes_tracked: self.pipeline.node.known_processes(),
            alerts: c.alerts,
            drift_blocked: c.drift_blocked,
            drift_prevented: c.drift_prevented,
            drift_prevention: self.pipeline.guard_stats(),
            kills: c.kills,
            cluster_responses: self.pipeline.response_counts(),
            kill_failures: c.kill_failures,
            event_to_detection_ms: self.pipeline.latency.summary(),
            rss_bytes: rss,
            cpu_seconds: cpu - self.cpu_at_start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_config_file_flags_and_defaults() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("node.yaml");
        std::fs::write(&p, "cluster: prod\nnode: from-file\n").ok();
        let c = load_node_config(Some(&p), None, "default").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.node.as_str(), c.cluster.as_str()), ("from-file", "prod"));
        let c = load_node_config(Some(&p), Some("flag"), "default").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.node, "flag");
        let c = load_node_config(None, None, "edge").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.node, c.cluster.as_str()), (hostname(), "edge"));
        std::fs::write(&p, "bogus: 1\n").ok();
        let e = load_node_config(Some(&p), None, "x").map(|_| ()).unwrap_err();
        assert!(matches!(e, RuntimeError::Config { .. }) && e.to_string().starts_with(&p.display().to_string()), "{e}");
        let gone = dir.path().join("missing.yaml");
        let e = load_node_config(Some(&gone), None, "x").map(|_| ()).unwrap_err();
        assert_eq!(e.to_string(), format!("reading {}", gone.display()));
        assert!(std::error::Error::source(&e).is_some(), "the io error is the cause");
    }

    #[test]
    fn ruleset_version_tells_rule_sets_apart() {
        let a = RuleSet::builtin().unwrap_or_else(|e| panic!("{e:?}"));
        let mut b = RuleSet::builtin().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(ruleset_version(&a), ruleset_version(&b));
        assert_eq!(ruleset_version(&a).len(), 16);
        assert!(b.set_enabled("PAL-SEN-001", false));
        assert_ne!(ruleset_version(&a), ruleset_version(&b));
    }
}
