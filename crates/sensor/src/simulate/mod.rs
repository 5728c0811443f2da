//! `palisade simulate node`: real attack actions inside a real container, with the real sensor
//! runtime watching, and a check that each expected detection fires.
//!
//! The container is started with `runc` from a busybox root filesystem on overlayfs (so files
//! written at run time land on the upper layer, as in any container runtime). It shares the
//! host's network namespace so the reverse shell and the download reach listeners on
//! 127.0.0.1. Its OCI annotations are the ones CRI-O writes (`io.kubernetes.pod.name`, …), so
//! attribution names a pod, a namespace and an image as it would on a Kubernetes node. Each
//! step runs with `runc exec`; alerts are collected until the last step has finished and
//! [`SimConfig::wait`] has passed. Needs root, BPF, `runc` and `/bin/busybox`.

mod container;
mod steps;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_detect::alert::Finding;
use palisade_detect::pipeline::Detector;
use palisade_detect::rules::RuleSet;

use crate::node::{DriftAction, DriftRule, NodeConfig, ResponseAction, ResponseRule};
use crate::runtime::{Runtime, RuntimeConfig, RuntimeError};
use crate::SensorConfig;
use container::StepResult;
use steps::{Step, EXPECT_DRIFT};

/// The simulated pod.
pub const POD: &str = "payments-api-5d8c7b9f4-x2x7k";
/// Its namespace.
pub const NAMESPACE: &str = "palisade-sim";
/// Its image.
pub const IMAGE: &str = "registry.example.com/shop/payments-api:1.4.2";

/// How long a step that the drift policy must stop may take at most.
const DRIFT_STOP_WITHIN: Duration = Duration::from_secs(8);
/// How long the isolation response is waited for after the attack.
const RESPONSE_WAIT: Duration = Duration::from_secs(5);

/// What the simulation checks besides the detections.
#[derive(Debug, Clone, Default)]
pub struct SimConfig {
    /// Keep the container bundle directory (for inspection).
    pub keep: bool,
    /// How long to wait for alerts after the last step.
    pub wait: Duration,
    /// Also write every alert of the simulated pod (JSON lines) to this file.
    pub alerts: Option<PathBuf>,
    /// Check that a drift policy that blocks kills a dropped binary.
    pub block_drift: bool,
    /// Check that drift prevention stops a dropped binary before it runs (implies
    /// `block_drift`).
    pub prevent_drift: bool,
    /// Check that the reverse shell's pod is isolated through this kubeconfig's API server.
    pub kubeconfig: Option<PathBuf>,
    /// Write every converted event (JSON lines) to this file.
    pub event_log: Option<PathBuf>,
}

/// Why the simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The kernel or the privileges do not allow BPF.
    #[error("simulate node needs root and BPF")]
    Unsupported(#[source] crate::Error),
    /// The built-in rules did not load.
    #[error("{0}")]
    Rules(String),
    /// The container or its environment could not be set up.
    #[error("{0}")]
    Setup(String),
    /// A file could not be created.
    #[error("{}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The sensor runtime failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The kubeconfig could not be used.
    #[error(transparent)]
    Api(#[from] palisade_k8s::live::LiveError),
    /// An I/O error while setting up or collecting.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The runc spec could not be read or written.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// One checked expectation.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// A rule had to fire.
    Detection {
        /// Rule id.
        rule: String,
        /// Rule name (`(no such rule)` when the rule set has none by that id).
        name: String,
        /// The step that should raise it.
        step: String,
        /// It fired.
        fired: bool,
        /// The step ran to its end.
        step_completed: bool,
    },
    /// The drift policy had to stop a dropped binary.
    DriftBlock {
        /// The step.
        step: String,
        /// Stopped before it ran (prevention, exit 126) rather than killed (137).
        prevent: bool,
        /// The step's exit code (`None`: it could not run or timed out).
        exit: Option<i32>,
        /// How long the step took.
        took: Duration,
    },
    /// The reverse shell's pod had to be isolated through the API server.
    Isolate {
        /// Responses carried out.
        done: u64,
        /// Responses failed.
        failed: u64,
    },
}

impl Check {
    /// Whether the expectation was met.
    pub fn passed(&self) -> bool {
        match self {
            Check::Detection { fired, .. } => *fired,
            Check::DriftBlock { prevent, exit, took, .. } => {
                // killed after it started (137), or denied before it ran (126: EPERM from execve)
                let want = if *prevent { 126 } else { 137 };
                *exit == Some(want) && *took < DRIFT_STOP_WITHIN
            }
            Check::Isolate { done, failed } => *done >= 1 && *failed == 0,
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Detection { rule, name, step, fired, step_completed } => {
                let status = if *fired { "fired" } else { "MISSING" };
                let note = if *step_completed { "" } else { " (step did not complete)" };
                write!(f, "{rule:<12} {status:<8} {name}  [{step}]{note}")
            }
            Check::DriftBlock { step, prevent, exit, took } => {
                let status = match (self.passed(), prevent) {
                    (false, _) => "MISSING",
                    (true, true) => "denied",
                    (true, false) => "killed",
                };
                let what = if *prevent { "exec denied before it ran" } else { "process killed" };
                write!(
                    f,
                    "{:<12} {status:<8} {what} by the drift policy  [{step}] (exit {exit:?} after {took:.1?})",
                    "drift-block"
                )
            }
            Check::Isolate { done, failed } => {
                let status = if self.passed() { "done" } else { "MISSING" };
                write!(
                    f,
                    "{:<12} {status:<8} pod isolated through the API server  [reverse shell] ({done} done, {failed} failed)",
                    "isolate"
                )
            }
        }
    }
}

/// The outcome of a simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReport {
    /// Attack actions run.
    pub actions: usize,
    /// The container's id.
    pub container: String,
    /// Every expectation, in step order (the isolation check last).
    pub checks: Vec<Check>,
    /// Rules that fired for the pod without being expected.
    pub also_fired: Vec<String>,
}

impl SimReport {
    /// Expectations that were not met.
    pub fn missing(&self) -> usize {
        self.checks.iter().filter(|c| !c.passed()).count()
    }

    /// Every expectation was met.
    pub fn passed(&self) -> bool {
        self.missing() == 0
    }
}

impl fmt::Display for SimReport {
    /// The report as `simulate node` prints it: one line per check, the unexpected rules
    /// before the isolation check, and a summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "palisade simulate node: {} actions in container {} ({NAMESPACE}/{POD}, {IMAGE})",
            self.actions, self.container
        )?;
        let is_isolate = |c: &&Check| matches!(c, Check::Isolate { .. });
        for c in self.checks.iter().filter(|c| !is_isolate(c)) {
            writeln!(f, "{c}")?;
        }
        if !self.also_fired.is_empty() {
            writeln!(f, "also fired: {}", self.also_fired.join(", "))?;
        }
        for c in self.checks.iter().filter(is_isolate) {
            writeln!(f, "{c}")?;
        }
        let total = self.checks.len();
        writeln!(f, "{} of {total} expected detections fired", total - self.missing())
    }
}

/// The node configuration of the simulation: drift blocked for one dropped binary only (the
/// others must run to raise their detections), the reverse shell isolated when there is an
/// API server to do it.
fn node_config(block_drift: bool, prevent_drift: bool, isolate: bool) -> NodeConfig {
    let mut cfg = NodeConfig { cluster: "simulation".into(), node: "sim-node".into(), ..NodeConfig::default() };
    if block_drift {
        cfg.drift.rules.push(DriftRule {
            name: "simulation-block".into(),
            allowed_processes: vec![
                "/tmp/payload".into(),
                "/tmp/xmrig".into(),
                "/tmp/nmap".into(),
                "/tmp/kubectl".into(),
            ],
            action: DriftAction::Block,
            ..Default::default()
        });
        cfg.drift.prevent = prevent_drift;
    }
    if isolate {
        cfg.responses.push(ResponseRule { rules: vec!["PAL-SEN-006".into()], action: ResponseAction::Isolate });
    }
    cfg
}

/// Runs the simulation and reports what fired.
pub fn run(cfg: &SimConfig) -> Result<SimReport, SimError> {
    crate::check_support().map_err(SimError::Unsupported)?;
    let block_drift = cfg.block_drift || cfg.prevent_drift;
    let rules = RuleSet::builtin().map_err(|e| SimError::Rules(format!("built-in rules: {e:?}")))?;
    let det = Detector::new(&rules, Default::default()).map_err(|e| SimError::Rules(format!("rules: {e:?}")))?;
    let node = node_config(block_drift, cfg.prevent_drift, cfg.kubeconfig.is_some());
    let sensor = SensorConfig { snapshot: true, ..SensorConfig::default() };
    let mut runtime = Runtime::start(RuntimeConfig { sensor, node }, &rules, det)?;
    if let Some(k) = &cfg.kubeconfig {
        let conn = palisade_k8s::live::from_kubeconfig(k, None)?;
        runtime.enable_cluster_responses(palisade_k8s::live::Client::new(conn)?);
    }
    if let Some(p) = &cfg.event_log {
        let f = std::fs::File::create(p).map_err(|source| SimError::Create { path: p.clone(), source })?;
        runtime.set_event_log(Box::new(std::io::BufWriter::new(f)));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (rev_port, http_port) = container::listeners(stop.clone())?;
    let c = container::build_container(cfg.keep)?;
    let steps = steps::steps(rev_port, http_port, block_drift);
    let mut log = match &cfg.alerts {
        Some(p) => Some(std::fs::File::create(p).map_err(|source| SimError::Create { path: p.clone(), source })?),
        None => None,
    };
    let collected = collect(&mut runtime, &c, &steps, cfg.wait, log.as_mut().map(|l| l as &mut dyn Write));
    stop.store(true, Ordering::Relaxed);
    let (ran, found) = collected?;
    let mut checks = expectations(&rules, &steps, &ran, &found, cfg.prevent_drift);
    if cfg.kubeconfig.is_some() {
        // the responder works in the background: give it a moment
        let until = Instant::now() + RESPONSE_WAIT;
        while runtime.cluster_responses().done + runtime.cluster_responses().failed == 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        let r = runtime.cluster_responses();
        checks.push(Check::Isolate { done: r.done, failed: r.failed });
    }
    let expected: BTreeSet<&str> = steps.iter().flat_map(|s| s.expect.iter().copied()).chain([EXPECT_DRIFT]).collect();
    let also_fired = found.keys().filter(|k| !expected.contains(k.as_str())).cloned().collect();
    Ok(SimReport { actions: steps.len(), container: c.id.clone(), checks, also_fired })
}

/// The rules that fired for the pod: id → (name, first message).
type Fired = BTreeMap<String, (String, String)>;

/// Runs the steps on a thread while the runtime collects the pod's alerts, until the last step
/// has finished and `wait` has passed. Returns each step's result and the rules that fired
/// (id → name, message).
fn collect(
    runtime: &mut Runtime,
    c: &container::Container,
    steps: &[Step],
    wait: Duration,
    mut log: Option<&mut dyn Write>,
) -> Result<(Vec<StepResult>, Fired), SimError> {
    let done = AtomicBool::new(false);
    let results: Mutex<Vec<StepResult>> = Mutex::default();
    let mut found = Fired::new();
    std::thread::scope(|scope| -> Result<(), SimError> {
        scope.spawn(|| {
            for s in steps {
                let r = container::run_step(c, s);
                results.lock().unwrap_or_else(|p| p.into_inner()).push(r);
            }
            done.store(true, Ordering::SeqCst);
        });
        let mut finished_at: Option<Instant> = None;
        loop {
            let mut emit = |f: &Finding| -> std::io::Result<()> {
                if let Finding::Alert(a) = f {
                    if a.entities.pod == POD {
                        if let Some(l) = log.as_mut() {
                            writeln!(l, "{}", serde_json::to_string(a.as_ref()).unwrap_or_default())?;
                        }
                        found.entry(a.rule.id.clone()).or_insert((a.rule.name.clone(), a.message.clone()));
                    }
                }
                Ok(())
            };
            runtime.pump(Duration::from_millis(100), &mut emit)?;
            if done.load(Ordering::SeqCst) {
                let t = *finished_at.get_or_insert_with(Instant::now);
                if t.elapsed() >= wait {
                    runtime.flush(&mut emit)?;
                    return Ok(());
                }
            }
        }
    })?;
    Ok((results.into_inner().unwrap_or_else(|p| p.into_inner()), found))
}

/// The checks of the steps' expectations against what ran and what fired, and the drift
/// detection that any dropped binary must raise.
fn expectations(rules: &RuleSet, steps: &[Step], ran: &[StepResult], found: &Fired, prevent: bool) -> Vec<Check> {
    let detection = |rule: &str, step: &str, step_completed: bool| Check::Detection {
        rule: rule.to_string(),
        name: rules
            .rules()
            .iter()
            .find(|r| r.id == rule)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| "(no such rule)".into()),
        step: step.to_string(),
        fired: found.contains_key(rule),
        step_completed,
    };
    let mut checks = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let result = ran.get(i).copied();
        for id in s.expect {
            checks.push(detection(id, s.name, result.is_some_and(|r| r.0.is_some())));
        }
        if s.killed {
            let (exit, took) = result.unwrap_or((None, Duration::ZERO));
            checks.push(Check::DriftBlock { step: s.name.to_string(), prevent, exit, took });
        }
    }
    checks.push(detection(EXPECT_DRIFT, "any exec of a file written after start", true));
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_render_as_before_and_judge_drift_exits() {
        let det = |fired, step_completed| Check::Detection {
            rule: "PAL-SEN-006".into(),
            name: "Reverse or bind shell".into(),
            step: "reverse shell to 127.0.0.1".into(),
            fired,
            step_completed,
        };
        assert_eq!(
            det(true, true).to_string(),
            "PAL-SEN-006  fired    Reverse or bind shell  [reverse shell to 127.0.0.1]"
        );
        let m = det(false, false);
        assert!(!m.passed());
        assert_eq!(
            m.to_string(),
            "PAL-SEN-006  MISSING  Reverse or bind shell  [reverse shell to 127.0.0.1] (step did not complete)"
        );
        let drift =
            |prevent, exit, took| Check::DriftBlock { step: "drifted binary blocked".into(), prevent, exit, took };
        let k = drift(false, Some(137), Duration::from_millis(120));
        assert!(k.passed());
        assert_eq!(
            k.to_string(),
            "drift-block  killed   process killed by the drift policy  [drifted binary blocked] (exit Some(137) after 120.0ms)"
        );
        let p = drift(true, Some(126), Duration::from_millis(120));
        assert!(p.to_string().starts_with("drift-block  denied   exec denied before it ran by the drift policy"));
        // killed instead of denied, or too late: missing
        assert!(!drift(true, Some(137), Duration::from_millis(120)).passed());
        let late = drift(false, Some(137), Duration::from_secs(9));
        assert!(!late.passed() && late.to_string().starts_with("drift-block  MISSING  process killed"));
        let i = Check::Isolate { done: 1, failed: 0 };
        assert_eq!(
            i.to_string(),
            "isolate      done     pod isolated through the API server  [reverse shell] (1 done, 0 failed)"
        );
        assert!(!Check::Isolate { done: 1, failed: 1 }.passed() && !Check::Isolate { done: 0, failed: 0 }.passed());
    }

    #[test]
    fn report_lists_checks_extra_rules_then_isolation_and_counts() {
        let r = SimReport {
            actions: 2,
            container: "palisade-sim-1".into(),
            checks: vec![
                Check::Detection {
                    rule: "A".into(),
                    name: "a".into(),
                    step: "s".into(),
                    fired: true,
                    step_completed: true,
                },
                Check::Isolate { done: 0, failed: 0 },
                Check::Detection {
                    rule: "B".into(),
                    name: "b".into(),
                    step: "s".into(),
                    fired: false,
                    step_completed: true,
                },
            ],
            also_fired: vec!["X".into(), "Y".into()],
        };
        let text = r.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!("palisade simulate node: 2 actions in container palisade-sim-1 ({NAMESPACE}/{POD}, {IMAGE})")
        );
        assert!(lines[1].starts_with("A ") && lines[2].starts_with("B "), "{text}");
        assert_eq!(lines[3], "also fired: X, Y");
        assert!(lines[4].starts_with("isolate      MISSING"), "{text}");
        assert_eq!(lines[5], "1 of 3 expected detections fired");
        assert_eq!((r.missing(), r.passed()), (2, false));
    }

    #[test]
    fn expectations_follow_the_steps() {
        let rules = RuleSet::builtin().unwrap_or_else(|e| panic!("{e:?}"));
        let steps = steps::steps(1, 2, true);
        let found: Fired = [("PAL-SEN-001".to_string(), (String::new(), String::new()))].into();
        // only the first step ran; the drift step was denied
        let ran = vec![(Some(0), Duration::from_millis(5))];
        let checks = expectations(&rules, &steps, &ran, &found, true);
        let expected: usize = steps.iter().map(|s| s.expect.len() + usize::from(s.killed)).sum::<usize>() + 1;
        assert_eq!(checks.len(), expected);
        assert!(checks[0].passed(), "{}", checks[0]);
        assert!(matches!(&checks[1], Check::Detection { step_completed: false, fired: false, .. }));
        assert!(checks.iter().any(|c| matches!(c, Check::DriftBlock { exit: None, .. }) && !c.passed()));
        assert!(
            matches!(checks.last(), Some(Check::Detection { rule, step_completed: true, .. }) if rule == EXPECT_DRIFT)
        );
        // names come from the rule set
        assert!(matches!(&checks[0], Check::Detection { name, .. } if name != "(no such rule)"));
        // with block_drift the node config blocks only the drifter, prevention as asked
        let n = node_config(true, true, true);
        assert!(n.drift.prevent && n.drift.rules.len() == 1 && n.responses.len() == 1);
        assert!(node_config(false, true, false).drift.rules.is_empty());
    }
}
