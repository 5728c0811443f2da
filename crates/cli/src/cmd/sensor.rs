//! `palisade sensor run|check` and `palisade simulate node`: the shell around the kernel sensor
//! (`palisade-sensor`), the node pipeline (attribution, drift) and the rule engine.

use crate::args::{SensorCommand, SensorRunArgs};
use anyhow::Context as _;
use palisade_detect::alert::Finding;
use palisade_detect::pipeline::Detector;
use palisade_sensor::attribution::Resolver;
use palisade_sensor::node::{DriftAction, Node, NodeConfig, ResponseAction};
use palisade_sensor::{Sensor, SensorConfig};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counters of cluster responses.
#[derive(Debug, Default)]
pub(crate) struct ResponseStats {
    done: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    skipped: std::sync::atomic::AtomicU64,
}

/// The running sensor with its pipeline.
pub(crate) struct Runner {
    sensor: Sensor,
    node: Node,
    det: Detector,
    out: Vec<Finding>,
    latencies_us: VecDeque<u32>,
    alerts: u64,
    kills: u64,
    kill_failures: u64,
    drift_blocked: u64,
    drift_prevented: u64,
    rules_version: String,
    rules: usize,
    last_dropped: u64,
    ticks: f64,
    /// Whether any enabled rule looks at exit events.
    exit_rules: bool,
    /// Cluster responses go to a worker thread (API calls must not stall the event loop).
    responder: Option<std::sync::mpsc::SyncSender<(palisade_k8s::respond::PodAction, String, String, String)>>,
    responded: std::collections::HashSet<(palisade_k8s::respond::PodAction, String, String)>,
    response_stats: Arc<ResponseStats>,
    /// Drift prevention (fanotify), when the drift policy asks for it.
    guard: Option<palisade_sensor::ExecGuard>,
    guarded: std::collections::HashSet<String>,
    guard_retries: std::collections::HashMap<String, u32>,
    /// Pod labels refreshed from the API server.
    pod_labels_rx: Option<std::sync::mpsc::Receiver<palisade_k8s::respond::PodLabels>>,
    /// Every converted event, as JSON lines (`--events FILE`), for inspection.
    pub(crate) event_log: Option<Box<dyn std::io::Write + Send>>,
}

fn rules_version(rs: &palisade_detect::rules::RuleSet) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    for r in rs.rules() {
        format!("{r:?}").hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

fn self_stat() -> (u64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0u64);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (rss_kb * 1024, ticks as f64 / 100.0)
}

impl Runner {
    pub(crate) fn start(
        cfg: &SensorConfig,
        node_cfg: NodeConfig,
        rs: &palisade_detect::rules::RuleSet,
        det: Detector,
    ) -> anyhow::Result<Runner> {
        let prevent = node_cfg.drift.prevent;
        let sensor = Sensor::start(cfg).context("starting the eBPF sensor")?;
        for (prog, err) in &sensor.health().attach_failures {
            tracing::warn!(program = %prog, error = %err, "BPF program not attached; carrying on without it");
            eprintln!("palisade: warning: {prog} did not attach ({err}); carrying on with the rest");
        }
        let resolver = Resolver::new(std::path::Path::new("/"), Resolver::host_mntns());
        let node = Node::new(node_cfg, resolver, sensor.time_offset(), sensor.snapshot());
        let guard = if prevent {
            Some(palisade_sensor::ExecGuard::start().context("drift prevention (fanotify)")?)
        } else {
            None
        };
        Ok(Runner {
            sensor,
            node,
            det,
            out: Vec::new(),
            latencies_us: VecDeque::new(),
            alerts: 0,
            kills: 0,
            kill_failures: 0,
            drift_blocked: 0,
            drift_prevented: 0,
            rules_version: rules_version(rs),
            rules: rs.rules().iter().filter(|r| r.source == palisade_detect::rules::Source::Sensor).count(),
            last_dropped: 0,
            ticks: self_stat().1,
            event_log: None,
            responder: None,
            responded: std::collections::HashSet::new(),
            response_stats: Arc::default(),
            guard,
            guarded: std::collections::HashSet::new(),
            guard_retries: std::collections::HashMap::new(),
            pod_labels_rx: None,
            exit_rules: rs.rules().iter().any(|r| {
                r.source == palisade_detect::rules::Source::Sensor
                    && (r.matcher.event_types.is_empty() || r.matcher.event_types.iter().any(|t| t == "exit"))
            }),
        })
    }

    /// Sends pod responses (label, isolate, delete) to the cluster through `client` from now on.
    pub(crate) fn enable_cluster_responses(&mut self, client: palisade_k8s::live::Client) {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(palisade_k8s::respond::PodAction, String, String, String)>(256);
        let stats = self.response_stats.clone();
        std::thread::spawn(move || {
            for (action, ns, pod, rule) in rx {
                let r = palisade_k8s::respond::plan(action, &ns, &pod, &rule)
                    .and_then(|calls| palisade_k8s::respond::execute(&client, &calls));
                match r {
                    Ok(()) => {
                        stats.done.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(?action, namespace = %ns, pod = %pod, rule = %rule, "cluster response carried out");
                    }
                    Err(e) => {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(?action, namespace = %ns, pod = %pod, rule = %rule, error = %e, "cluster response failed");
                    }
                }
            }
        });
        self.responder = Some(tx);
    }

    /// Refreshes this node's pod labels from the API server every `every` (for drift rules with
    /// `podLabels` on runtimes that do not record labels).
    pub(crate) fn watch_pod_labels(&mut self, client: palisade_k8s::live::Client, every: Duration) {
        let node = self.node.config().node.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::spawn(move || loop {
            match palisade_k8s::respond::node_pod_labels(&client, &node) {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "pod labels not refreshed"),
            }
            std::thread::sleep(every);
        });
        self.pod_labels_rx = Some(rx);
    }

    fn respond_in_cluster(&mut self, action: ResponseAction, ns: &str, pod: &str, rule: &str) {
        use palisade_k8s::respond::PodAction;
        let a = match action {
            ResponseAction::Label => PodAction::Label,
            ResponseAction::Isolate => PodAction::Isolate,
            _ => PodAction::DeletePod,
        };
        if ns.is_empty() || pod.is_empty() {
            self.response_stats.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // once per pod and action
        if !self.responded.insert((a, ns.to_string(), pod.to_string())) {
            return;
        }
        if self.responded.len() > 10_000 {
            self.responded.clear();
        }
        match &self.responder {
            Some(tx) => {
                if tx.try_send((a, ns.to_string(), pod.to_string(), rule.to_string())).is_err() {
                    self.response_stats.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                if self.response_stats.skipped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!("a cluster response is configured but the sensor has no API access (--kubeconfig, or run in a pod)");
                }
            }
        }
    }

    fn kill(&mut self, pid: i64, why: &str) {
        match palisade_sensor::kill_process(pid as u32) {
            Ok(()) => {
                self.kills += 1;
                tracing::warn!(pid, reason = why, "process killed");
            }
            Err(e) => {
                self.kill_failures += 1;
                tracing::warn!(pid, reason = why, error = %e, "could not kill process");
            }
        }
    }

    /// Processes what is available (waiting up to `wait` for the first event); findings go to `emit`.
    pub(crate) fn pump(
        &mut self,
        wait: Duration,
        emit: &mut dyn FnMut(&Finding) -> std::io::Result<()>,
    ) -> std::io::Result<usize> {
        let mut n = 0;
        if let Some(l) = self.pod_labels_rx.as_ref().and_then(|rx| rx.try_recv().ok()) {
            self.node.set_api_pod_labels(l);
        }
        let first = self.sensor.events().recv_timeout(wait).ok();
        let mut next = first;
        while let Some(raw) = next {
            n += 1;
            let c = self.node.convert(&raw);
            let pid = c.event.process.pid;
            if let (Some(guard), Some(cont)) = (&self.guard, &c.container) {
                if self.guarded.len() < 100_000 && self.guarded.insert(cont.id.clone()) {
                    if let Some(allow) = self.node.prevention_for(cont) {
                        match guard.protect(&cont.id, pid as u32, allow) {
                            Ok(_) => tracing::info!(container = %cont.id, "drift prevention on"),
                            // the process is already gone: try again with the container's next event
                            Err(palisade_sensor::PreventError::Process { .. }) => {
                                let tries = self.guard_retries.entry(cont.id.clone()).or_insert(0);
                                *tries += 1;
                                if *tries < 50 {
                                    self.guarded.remove(&cont.id);
                                }
                            }
                            Err(e) => {
                                tracing::warn!(container = %cont.id, error = %e, "drift prevention not possible; drift is still killed")
                            }
                        }
                    }
                }
            }

            if let Some(d) = &c.drift {
                if d.action == DriftAction::Block {
                    self.drift_blocked += 1;
                    self.kill(pid, &format!("drift policy rule {}", d.rule));
                }
            }
            if c.event.kind == palisade_detect::event::SensorKind::Exit && !self.exit_rules {
                // exits only maintain the process table unless a rule looks at them
                if n >= 4096 {
                    break;
                }
                next = self.sensor.events().try_recv().ok();
                continue;
            }
            let t_event = c.event.time_us;
            let (ns, pod) = (c.event.entity.namespace.clone(), c.event.entity.pod.clone());
            if let Some(w) = self.event_log.as_mut() {
                let _ = writeln!(w, "{}", serde_json::to_string(&c.event).unwrap_or_default());
            }
            self.det.process_sensor(c.event, &mut self.out);
            let mut killed = false;
            if !self.det.last_matches().is_empty() {
                // event-to-detection latency: kernel timestamp to the rule match
                if self.latencies_us.len() >= 10_000 {
                    self.latencies_us.pop_front();
                }
                self.latencies_us.push_back((now_us() - t_event).clamp(0, u32::MAX as i64) as u32);
            }
            for id in self.det.last_matches().to_vec() {
                for action in self.node.config().responses_for(&id) {
                    match action {
                        ResponseAction::None => {}
                        ResponseAction::Kill if !killed => {
                            self.kill(pid, &id);
                            killed = true;
                        }
                        ResponseAction::Kill => {}
                        ResponseAction::Label | ResponseAction::Isolate | ResponseAction::DeletePod => {
                            self.respond_in_cluster(action, &ns, &pod, &id);
                        }
                    }
                }
            }
            for f in self.out.drain(..) {
                if let Finding::Alert(a) = &f {
                    if !a.update {
                        self.alerts += 1;
                    }
                }
                emit(&f)?;
            }
            if n >= 4096 {
                break;
            }
            next = self.sensor.events().try_recv().ok();
        }
        self.report_denials(emit)?;
        if n == 0 {
            self.det.advance_clock(now_us(), &mut self.out);
            for f in self.out.drain(..) {
                emit(&f)?;
            }
        }
        Ok(n)
    }

    /// Execs stopped by drift prevention never happened, so no exec event comes for them: each
    /// denial becomes a drift event (args say it was denied) for the rule engine.
    fn report_denials(&mut self, emit: &mut dyn FnMut(&Finding) -> std::io::Result<()>) -> std::io::Result<()> {
        let Some(guard) = &self.guard else { return Ok(()) };
        for d in guard.take_denials() {
            self.drift_prevented += 1;
            let ev = self.node.denied_exec_event(&d.container_id, d.pid, &d.path, now_us());
            self.det.process_sensor(ev, &mut self.out);
            for f in self.out.drain(..) {
                emit(&f)?;
            }
        }
        Ok(())
    }

    /// Flushes pending alert updates.
    pub(crate) fn flush(&mut self, emit: &mut dyn FnMut(&Finding) -> std::io::Result<()>) -> std::io::Result<()> {
        self.det.flush(&mut self.out);
        for f in self.out.drain(..) {
            emit(&f)?;
        }
        Ok(())
    }

    /// The sensor's health report (the fleet view reads this).
    pub(crate) fn health(&mut self, uptime: Duration) -> Value {
        let h = self.sensor.health();
        let mut l: Vec<u32> = self.latencies_us.iter().copied().collect();
        l.sort_unstable();
        let q = |p: f64| l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1))).copied();
        let (rss, cpu) = self_stat();
        let dropped = h.dropped_kernel + h.dropped_user;
        let mut problems = Vec::new();
        if !h.programs_attached.iter().any(|p| p == "handle_exec") {
            problems.push("process exec events are not collected (handle_exec not attached)".to_string());
        }
        if dropped > self.last_dropped {
            problems.push(format!("{} events dropped since the last report", dropped - self.last_dropped));
        }
        if h.decode_errors > 0 {
            problems.push(format!("{} records did not decode", h.decode_errors));
        }
        self.last_dropped = dropped;
        let status = if problems.is_empty() {
            if h.attach_failures.is_empty() {
                "healthy"
            } else {
                "degraded"
            }
        } else {
            "unhealthy"
        };
        json!({
            "status": status,
            "problems": problems,
            "node": self.node.config().node,
            "cluster": self.node.config().cluster,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": uptime.as_secs(),
            "programs_loaded": h.programs_loaded.len(),
            "programs_attached": h.programs_attached.len(),
            "attach_failures": h.attach_failures.iter().map(|(p, e)| json!({"program": p, "error": e})).collect::<Vec<_>>(),
            "events": h.events,
            "delivered": h.delivered,
            "dropped_kernel": h.dropped_kernel,
            "dropped_user": h.dropped_user,
            "decode_errors": h.decode_errors,
            "ringbuf_bytes": h.ringbuf_bytes,
            "ringbuf_used_bytes": h.ringbuf_used_bytes,
            "snapshot_source": format!("{:?}", h.snapshot_source),
            "rules": self.rules,
            "ruleset_version": self.rules_version,
            "processes_tracked": self.node.known_processes(),
            "alerts": self.alerts,
            "drift_blocked": self.drift_blocked,
            "drift_prevented": self.drift_prevented,
            "drift_prevention": self.guard.as_ref().map(|g| serde_json::to_value(g.stats()).unwrap_or_default()),
            "kills": self.kills,
            "cluster_responses": {
                "done": self.response_stats.done.load(Ordering::Relaxed),
                "failed": self.response_stats.failed.load(Ordering::Relaxed),
                "skipped": self.response_stats.skipped.load(Ordering::Relaxed),
            },
            "kill_failures": self.kill_failures,
            "event_to_detection_ms": {"p50": q(0.5).map(|v| v as f64 / 1000.0), "p99": q(0.99).map(|v| v as f64 / 1000.0), "samples": l.len()},
            "rss_bytes": rss,
            "cpu_seconds": cpu - self.ticks,
        })
    }
}

fn metrics_text(h: &Value) -> String {
    let n = |k: &str| h.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let mut s = String::new();
    let mut m = |name: &str, kind: &str, help: &str, v: f64| {
        s.push_str(&format!(
            "# HELP palisade_sensor_{name} {help}\n# TYPE palisade_sensor_{name} {kind}\npalisade_sensor_{name} {v}\n"
        ));
    };
    m(
        "up",
        "gauge",
        "1 when healthy, 0.5 degraded, 0 unhealthy.",
        match h["status"].as_str() {
            Some("healthy") => 1.0,
            Some("degraded") => 0.5,
            _ => 0.0,
        },
    );
    m("programs_attached", "gauge", "BPF programs attached.", n("programs_attached"));
    m(
        "attach_failures",
        "gauge",
        "BPF programs that failed to attach.",
        h["attach_failures"].as_array().map_or(0, Vec::len) as f64,
    );
    m("events_total", "counter", "Events written by the kernel side.", n("events"));
    m("dropped_kernel_total", "counter", "Events lost because the ring buffer was full.", n("dropped_kernel"));
    m("dropped_user_total", "counter", "Events lost because the consumer was behind.", n("dropped_user"));
    m("ringbuf_used_bytes", "gauge", "Ring-buffer bytes not yet consumed.", n("ringbuf_used_bytes"));
    m("alerts_total", "counter", "Alerts raised.", n("alerts"));
    m("kills_total", "counter", "Processes killed by responses.", n("kills"));
    m(
        "event_to_detection_p99_seconds",
        "gauge",
        "p99 of kernel-event-to-rule-match latency (last 10,000 matches).",
        h["event_to_detection_ms"]["p99"].as_f64().unwrap_or(0.0) / 1000.0,
    );
    m("resident_memory_bytes", "gauge", "Resident memory.", n("rss_bytes"));
    m("cpu_seconds_total", "counter", "CPU time used.", n("cpu_seconds"));
    s
}

fn node_config(a: &SensorRunArgs) -> anyhow::Result<NodeConfig> {
    let mut cfg = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            NodeConfig::from_yaml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => NodeConfig::default(),
    };
    if let Some(n) = &a.node {
        cfg.node = n.clone();
    }
    if cfg.node.is_empty() {
        cfg.node =
            std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default();
    }
    if cfg.cluster.is_empty() {
        cfg.cluster = a.detect.cluster.clone();
    }
    Ok(cfg)
}

pub fn run(c: SensorCommand) -> anyhow::Result<ExitCode> {
    match c {
        SensorCommand::Check => {
            let s = Sensor::start(&SensorConfig { snapshot: true, ..SensorConfig::default() })
                .context("the eBPF sensor cannot run here")?;
            let h = s.health();
            println!("{}", serde_json::to_string_pretty(&h)?);
            s.stop();
            Ok(if h.attach_failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        SensorCommand::Run(a) => run_sensor(*a),
        SensorCommand::Manifests { namespace, image, cluster, config, output } => {
            use palisade_sensor::manifests::{render, SensorManifestOptions, DEFAULT_NODE_CONFIG};
            let node_config = match &config {
                Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
                None => DEFAULT_NODE_CONFIG.to_string(),
            };
            NodeConfig::from_yaml(&node_config).map_err(|e| anyhow::anyhow!("node configuration: {e}"))?;
            let objs = render(&SensorManifestOptions { namespace, image, cluster, node_config });
            let text = palisade_admission::manifests::to_yaml(&objs)
                .replace("palisade admission manifests", "palisade sensor manifests");
            match &output {
                Some(p) => std::fs::write(p, text).with_context(|| p.display().to_string())?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_sensor(a: SensorRunArgs) -> anyhow::Result<ExitCode> {
    let node_cfg = node_config(&a)?;
    let rs = crate::cmd::detect::ruleset(&a.detect)?;
    let det = crate::cmd::detect::detector(&a.detect)?;
    let mut sinks = crate::cmd::detect::Sinks::new(&a.detect)?;
    let cfg = SensorConfig {
        ringbuf_bytes: a.ringbuf_mb << 20,
        disabled_programs: a.disable_programs.clone(),
        ..SensorConfig::default()
    };
    let started = Instant::now();
    let wants_api = node_cfg
        .responses
        .iter()
        .any(|r| matches!(r.action, ResponseAction::Label | ResponseAction::Isolate | ResponseAction::DeletePod));
    let mut runner = Runner::start(&cfg, node_cfg, &rs, det)?;
    // API access: --kubeconfig, or the service account in a pod
    let conn = match &a.kubeconfig {
        Some(p) => Some(palisade_k8s::live::from_kubeconfig(p, a.context.as_deref())?),
        None => palisade_k8s::live::in_cluster(),
    };
    match conn {
        Some(c) => {
            runner.watch_pod_labels(palisade_k8s::live::Client::new(c.clone())?, Duration::from_secs(30));
            if wants_api {
                runner.enable_cluster_responses(palisade_k8s::live::Client::new(c)?);
            }
        }
        None if wants_api => eprintln!(
            "palisade: warning: pod responses (label/isolate/delete-pod) are configured, but there is no API access: give --kubeconfig or run in a pod"
        ),
        None => {}
    }
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    let shared = Arc::new(Mutex::new(runner.health(started.elapsed())));
    let _metrics = match &a.metrics_listen {
        Some(addr) => {
            let sh = shared.clone();
            let handler: palisade_https::Handler = Arc::new(move |r: &palisade_https::Request| {
                let h = sh.lock().map(|g| g.clone()).unwrap_or_default();
                match r.path.as_str() {
                    "/healthz" => {
                        let ok = h["status"] != "unhealthy";
                        palisade_https::Response::text(if ok { 200 } else { 503 }, format!("{}\n", h["status"]))
                    }
                    "/health" => palisade_https::Response::json(200, serde_json::to_vec(&h).unwrap_or_default()),
                    "/metrics" => palisade_https::Response::text(200, metrics_text(&h)),
                    _ => palisade_https::Response::message(404, "not found: /healthz, /health, /metrics"),
                }
            });
            let srv =
                palisade_https::Server::bind(addr, None, palisade_https::Limits::default(), "sensor-metrics", handler)?;
            eprintln!("sensor health on http://{}/health", srv.local_addr());
            Some(srv)
        }
        None => None,
    };
    eprintln!("palisade sensor running ({} sensor rules)", runner.rules);
    let heartbeats = a.detect.server.as_ref().map(|server| {
        let node = a.node.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
        });
        Heartbeats::spawn(server, a.detect.token.clone(), &a.detect.cluster, &node)
    });
    let mut next_health = Instant::now();
    let mut next_shared = Instant::now();
    let mut emit = |f: &Finding| sinks.send(f);
    while !stop.load(Ordering::Relaxed) && a.duration.is_none_or(|d| started.elapsed() < d) {
        runner.pump(Duration::from_millis(200), &mut emit)?;
        if Instant::now() >= next_shared {
            next_shared = Instant::now() + Duration::from_secs(1);
            let h = runner.health(started.elapsed());
            if Instant::now() >= next_health {
                next_health = Instant::now() + a.health_interval;
                tracing::info!(health = %h, "sensor health");
                if let Some(hb) = &heartbeats {
                    hb.send(&h);
                }
                if let Some(p) = &a.health_file {
                    let tmp = p.with_extension("tmp");
                    if std::fs::write(&tmp, serde_json::to_vec_pretty(&h).unwrap_or_default()).is_ok() {
                        let _ = std::fs::rename(&tmp, p);
                    }
                }
            }
            if let Ok(mut g) = shared.lock() {
                *g = h;
            }
        }
    }
    runner.flush(&mut emit)?;
    sinks.flush();
    let h = runner.health(started.elapsed());
    if let Some(p) = &a.health_file {
        let _ = std::fs::write(p, serde_json::to_vec_pretty(&h).unwrap_or_default());
    }
    eprintln!("{}", serde_json::to_string(&h).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

impl Runner {
    /// Cluster responses carried out and failed so far.
    pub(crate) fn cluster_responses(&self) -> (u64, u64) {
        (self.response_stats.done.load(Ordering::Relaxed), self.response_stats.failed.load(Ordering::Relaxed))
    }
}

/// Sends the sensor's health to the server as heartbeats (`POST /api/v1/heartbeats`) from a
/// thread of its own, so a slow or unreachable server never stalls event processing. Only the
/// newest report waits to be sent: heartbeats are telemetry, a missed one is not replayed.
pub(crate) struct Heartbeats {
    tx: std::sync::mpsc::SyncSender<Value>,
}

impl Heartbeats {
    pub(crate) fn spawn(server: &str, token: Option<String>, cluster: &str, node: &str) -> Heartbeats {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Value>(1);
        let url = format!("{}/api/v1/heartbeats", server.trim_end_matches('/'));
        let (cluster, node) = (cluster.to_string(), node.to_string());
        std::thread::spawn(move || {
            let client = palisade_net::Client::new(palisade_net::ClientOptions {
                deadline: Duration::from_secs(10),
                max_redirects: 0,
                ..palisade_net::ClientOptions::default()
            });
            for health in rx {
                let beat = serde_json::json!({"heartbeats": [{
                    "cluster": cluster, "component": "sensor", "instance": node, "node": node,
                    "version": env!("CARGO_PKG_VERSION"), "doc": health,
                }]});
                let body = serde_json::to_vec(&beat).unwrap_or_default();
                let req = palisade_net::Request::post(url.as_str(), &body)
                    .header("content-type", "application/json")
                    .credential(token.as_ref().map(|t| format!("Bearer {t}")));
                match client.send(req) {
                    Ok(r) if r.is_success() => tracing::debug!("heartbeat sent"),
                    Ok(r) => {
                        let status = r.status();
                        tracing::warn!(status, "heartbeat refused: {}", r.error_excerpt());
                    }
                    Err(e) => tracing::warn!(error = %e, "heartbeat not sent"),
                }
            }
        });
        Heartbeats { tx }
    }

    pub(crate) fn send(&self, health: &Value) {
        // a full channel means one is being sent: skip this one
        let _ = self.tx.try_send(health.clone());
    }
}
