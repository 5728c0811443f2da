//! What happens to one kernel event: conversion, drift prevention and enforcement, the rule
//! engine, responses, and counting. No BPF here: it is driven with hand-made events in tests.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use palisade_detect::alert::Finding;
use palisade_detect::event::{SensorEvent, SensorKind};
use palisade_detect::pipeline::Detector;
use palisade_detect::rules::{RuleSet, Source};

use crate::node::{Converted, DriftAction, Node, ResponseAction};
use crate::prevent::{ExecGuard, GuardStats, PreventError};
use crate::runtime::health::LatencyWindow;
use crate::runtime::respond::{pod_action, Responder, ResponseCounts};
use crate::runtime::{now_us, Emit};

/// Containers remembered as handled by drift prevention.
const MAX_GUARDED: usize = 100_000;
/// Attempts to protect a container whose process exited before it could be looked at.
const MAX_GUARD_TRIES: u32 = 50;

/// Sends SIGKILL to a process (the real one, or a recorder in tests).
pub(crate) type Killer = Box<dyn FnMut(u32) -> io::Result<()> + Send>;

/// Counters the health report shows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) alerts: u64,
    pub(crate) kills: u64,
    pub(crate) kill_failures: u64,
    pub(crate) drift_blocked: u64,
    pub(crate) drift_prevented: u64,
}

/// Drift prevention and the containers it was armed for.
struct Prevention {
    guard: ExecGuard,
    guarded: HashSet<String>,
    retries: HashMap<String, u32>,
}

/// The event pipeline of the runtime.
pub(crate) struct Pipeline {
    pub(crate) node: Node,
    det: Detector,
    out: Vec<Finding>,
    pub(crate) latency: LatencyWindow,
    pub(crate) counters: Counters,
    /// Whether any enabled sensor rule looks at exit events.
    exit_rules: bool,
    pub(crate) responder: Responder,
    prevention: Option<Prevention>,
    pub(crate) event_log: Option<Box<dyn Write + Send>>,
    kill: Killer,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("counters", &self.counters).field("exit_rules", &self.exit_rules).finish()
    }
}

/// Whether any enabled sensor rule of `rules` looks at exit events.
pub(crate) fn wants_exits(rules: &RuleSet) -> bool {
    rules.rules().iter().any(|r| {
        r.source == Source::Sensor
            && (r.matcher.event_types.is_empty() || r.matcher.event_types.iter().any(|t| t == "exit"))
    })
}

impl Pipeline {
    pub(crate) fn new(node: Node, rules: &RuleSet, det: Detector, guard: Option<ExecGuard>, kill: Killer) -> Pipeline {
        Pipeline {
            node,
            det,
            out: Vec::new(),
            latency: LatencyWindow::default(),
            counters: Counters::default(),
            exit_rules: wants_exits(rules),
            responder: Responder::default(),
            prevention: guard.map(|guard| Prevention { guard, guarded: HashSet::new(), retries: HashMap::new() }),
            event_log: None,
            kill,
        }
    }

    /// Drift prevention's counters, when it is on.
    pub(crate) fn guard_stats(&self) -> Option<GuardStats> {
        self.prevention.as_ref().map(|p| p.guard.stats())
    }

    /// Pod responses so far.
    pub(crate) fn response_counts(&self) -> ResponseCounts {
        self.responder.counts()
    }

    /// Handles one kernel event; its findings go to `emit`.
    pub(crate) fn handle(&mut self, raw: &crate::RawEvent, emit: Emit<'_>) -> io::Result<()> {
        let c = self.node.convert(raw);
        let pid = c.event.process.pid;
        self.protect_container(&c, pid);
        self.enforce_drift(&c, pid);
        if c.event.kind == SensorKind::Exit && !self.exit_rules {
            // exits only maintain the process table unless a rule looks at them
            return Ok(());
        }
        let (ns, pod) = (c.event.entity.namespace.clone(), c.event.entity.pod.clone());
        self.log_event(&c.event);
        self.detect(c.event);
        self.respond(pid, &ns, &pod);
        self.emit_findings(emit)
    }

    /// Arms drift prevention for a container the first time one of its events is seen.
    fn protect_container(&mut self, c: &Converted, pid: i64) {
        let (Some(p), Some(cont)) = (self.prevention.as_mut(), &c.container) else { return };
        if p.guarded.len() >= MAX_GUARDED || !p.guarded.insert(cont.id.clone()) {
            return;
        }
        let Some(allow) = self.node.prevention_for(cont) else { return };
        match p.guard.protect(&cont.id, pid as u32, allow) {
            Ok(_) => tracing::info!(container = %cont.id, "drift prevention on"),
            // the process is already gone: try again with the container's next event
            Err(PreventError::Process { .. }) => {
                let tries = p.retries.entry(cont.id.clone()).or_insert(0);
                *tries += 1;
                if *tries < MAX_GUARD_TRIES {
                    p.guarded.remove(&cont.id);
                }
            }
            Err(e) => {
                tracing::warn!(container = %cont.id, error = %e, "drift prevention not possible; drift is still killed")
            }
        }
    }

    /// Kills a process whose exec a blocking drift rule caught.
    fn enforce_drift(&mut self, c: &Converted, pid: i64) {
        if let Some(d) = c.drift.as_ref().filter(|d| d.action == DriftAction::Block) {
            self.counters.drift_blocked += 1;
            self.kill(pid, &format!("drift policy rule {}", d.rule));
        }
    }

    /// Writes the converted event to the event log (`--events`), if there is one.
    fn log_event(&mut self, ev: &SensorEvent) {
        if let Some(w) = self.event_log.as_mut() {
            let _ = writeln!(w, "{}", serde_json::to_string(ev).unwrap_or_default());
        }
    }

    /// Runs the rules, recording the event-to-detection latency when one matched.
    fn detect(&mut self, ev: SensorEvent) {
        let t_event = ev.time_us;
        self.det.process_sensor(ev, &mut self.out);
        if !self.det.last_matches().is_empty() {
            self.latency.record(now_us() - t_event);
        }
    }

    /// Carries out the configured responses to the rules that matched the last event: at most
    /// one kill, pod responses through the responder.
    fn respond(&mut self, pid: i64, ns: &str, pod: &str) {
        let mut killed = false;
        for id in self.det.last_matches().to_vec() {
            for action in self.node.config().responses_for(&id) {
                match action {
                    ResponseAction::None => {}
                    ResponseAction::Kill => {
                        if !killed {
                            self.kill(pid, &id);
                            killed = true;
                        }
                    }
                    ResponseAction::Label | ResponseAction::Isolate | ResponseAction::DeletePod => {
                        if let Some(a) = pod_action(action) {
                            self.responder.request(a, ns, pod, &id);
                        }
                    }
                }
            }
        }
    }

    /// Hands the pending findings to `emit`, counting new alerts.
    fn emit_findings(&mut self, emit: Emit<'_>) -> io::Result<()> {
        for f in self.out.drain(..) {
            if let Finding::Alert(a) = &f {
                if !a.update {
                    self.counters.alerts += 1;
                }
            }
            emit(&f)?;
        }
        Ok(())
    }

    /// Hands the pending findings to `emit` without counting them (clock and flush updates).
    fn drain(&mut self, emit: Emit<'_>) -> io::Result<()> {
        for f in self.out.drain(..) {
            emit(&f)?;
        }
        Ok(())
    }

    fn kill(&mut self, pid: i64, why: &str) {
        match (self.kill)(pid as u32) {
            Ok(()) => {
                self.counters.kills += 1;
                tracing::warn!(pid, reason = why, "process killed");
            }
            Err(e) => {
                self.counters.kill_failures += 1;
                tracing::warn!(pid, reason = why, error = %e, "could not kill process");
            }
        }
    }

    /// Execs stopped by drift prevention never happened, so no exec event comes for them: each
    /// denial becomes a drift event (args say it was denied) for the rule engine.
    pub(crate) fn report_denials(&mut self, emit: Emit<'_>) -> io::Result<()> {
        let Some(p) = &self.prevention else { return Ok(()) };
        for d in p.guard.take_denials() {
            self.counters.drift_prevented += 1;
            let ev = self.node.denied_exec_event(&d.container_id, d.pid, &d.path, now_us());
            self.det.process_sensor(ev, &mut self.out);
            self.drain(emit)?;
        }
        Ok(())
    }

    /// Moves the alert clock to `now_us` while no events come, emitting closed fold windows.
    pub(crate) fn idle(&mut self, now_us: i64, emit: Emit<'_>) -> io::Result<()> {
        self.det.advance_clock(now_us, &mut self.out);
        self.drain(emit)
    }

    /// Emits pending alert updates.
    pub(crate) fn flush(&mut self, emit: Emit<'_>) -> io::Result<()> {
        self.det.flush(&mut self.out);
        self.drain(emit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::Resolver;
    use crate::event::{Body, ExecInfo, RawEvent, TaskHeader};
    use crate::node::NodeConfig;
    use std::sync::{Arc, Mutex};

    const ID: &str = "8f3c1a0b9e7d6c5b4a3928171615141312111009080706050403020100ffeedd";
    const HOST_NS: u32 = 4026531840;

    /// A runtime-state tree in which container `ID` is pod shop/web-1 (containerd layout).
    fn state_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        let state = root.join("run/containerd/runc/k8s.io").join(ID);
        let bundle = format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}");
        std::fs::create_dir_all(&state).ok();
        std::fs::create_dir_all(root.join(&bundle)).ok();
        let st = serde_json::json!({"id": ID, "config": {"labels": [format!("bundle=/{bundle}")]}});
        std::fs::write(state.join("state.json"), serde_json::to_vec(&st).unwrap_or_default()).ok();
        let cfg = serde_json::json!({"annotations": {
            "io.kubernetes.cri.container-name": "api", "io.kubernetes.cri.sandbox-name": "web-1",
            "io.kubernetes.cri.sandbox-namespace": "shop", "io.kubernetes.cri.image-name": "ghcr.io/acme/api:1.2"}});
        std::fs::write(root.join(&bundle).join("config.json"), serde_json::to_vec(&cfg).unwrap_or_default()).ok();
        dir
    }

    fn task(pid: u32, ppid: u32, cgroup: &str) -> TaskHeader {
        TaskHeader {
            pid,
            tid: pid,
            ppid,
            uid: 0,
            euid: 0,
            gid: 0,
            comm: "sh".into(),
            cgroup_id: 1,
            cgroup_name: cgroup.into(),
            mntns: 99,
            pidns: 1,
        }
    }

    fn exec(pid: u32, exe: &str, upper: bool, socket: bool) -> RawEvent {
        RawEvent {
            time_ns_boot: 1_000,
            task: task(pid, 10, &format!("cri-containerd-{ID}.scope")),
            body: Body::Exec(ExecInfo {
                filename: exe.into(),
                exe: exe.into(),
                args: vec![exe.rsplit('/').next().unwrap_or("").into()],
                cwd: "/".into(),
                parent_comm: "node-app".into(),
                upper_layer: upper,
                fileless: false,
                stdio_socket: socket,
                tty: false,
            }),
        }
    }

    fn exit(pid: u32) -> RawEvent {
        RawEvent {
            time_ns_boot: 2_000,
            task: task(pid, 10, &format!("cri-containerd-{ID}.scope")),
            body: Body::Exit { code: 0, signal: 0 },
        }
    }

    /// A pipeline over the built-in rules; kills are recorded, never sent.
    fn pipeline(root: &std::path::Path, yaml: &str) -> (Pipeline, Arc<Mutex<Vec<u32>>>) {
        let cfg = NodeConfig::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"));
        let node = Node::new(cfg, Resolver::new(root, HOST_NS), crate::time_offset(), &[]);
        let rules = RuleSet::builtin().unwrap_or_else(|e| panic!("{e:?}"));
        let det = Detector::new(&rules, Default::default()).unwrap_or_else(|e| panic!("{e:?}"));
        let killed: Arc<Mutex<Vec<u32>>> = Arc::default();
        let k = killed.clone();
        let kill: Killer = Box::new(move |pid| {
            if let Ok(mut v) = k.lock() {
                v.push(pid);
            }
            if pid == 666 {
                Err(io::Error::from(io::ErrorKind::PermissionDenied))
            } else {
                Ok(())
            }
        });
        (Pipeline::new(node, &rules, det, None, kill), killed)
    }

    fn alerts(p: &mut Pipeline, ev: &RawEvent) -> Vec<String> {
        let mut ids = Vec::new();
        p.handle(ev, &mut |f: &Finding| {
            if let Finding::Alert(a) = f {
                ids.push(a.rule.id.clone());
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        ids
    }

    #[test]
    fn reverse_shell_alerts_kills_once_and_isolates_the_pod() {
        let root = state_root();
        let (mut p, killed) = pipeline(
            root.path(),
            "cluster: prod\nnode: n1\nresponses:\n  - {rules: ['PAL-SEN-*'], action: kill}\n  - {rules: ['PAL-SEN-006'], action: kill}\n  - {rules: ['PAL-SEN-006'], action: isolate}\n",
        );
        let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
        let s2 = seen.clone();
        p.responder.start_worker(Box::new(move |_, ns, pod, rule| {
            if let Ok(mut s) = s2.lock() {
                s.push((ns.into(), pod.into(), rule.into()));
            }
            Ok(())
        }));
        let ids = alerts(&mut p, &exec(20, "/bin/sh", false, true));
        assert!(ids.iter().any(|i| i == "PAL-SEN-006"), "{ids:?}");
        // several matching responses, one kill
        assert_eq!(killed.lock().map(|k| k.clone()).unwrap_or_default(), vec![20]);
        assert_eq!(p.counters.kills, 1);
        assert_eq!(p.counters.alerts, ids.len() as u64);
        assert_eq!(p.latency.summary().samples, 1);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while p.response_counts().done == 0 && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(p.response_counts(), ResponseCounts { done: 1, failed: 0, skipped: 0 });
        assert_eq!(
            seen.lock().map(|s| s.clone()).unwrap_or_default(),
            vec![("shop".to_string(), "web-1".to_string(), "PAL-SEN-006".to_string())]
        );
    }

    #[test]
    fn blocked_drift_is_killed_and_failed_kills_counted() {
        let root = state_root();
        let (mut p, killed) = pipeline(
            root.path(),
            "drift:\n  rules:\n    - {name: lockdown, allowedProcesses: ['/tmp/ok'], action: block}\n",
        );
        let mut log = Vec::new();
        let shared = Arc::new(Mutex::new(Vec::<u8>::new()));
        struct W(Arc<Mutex<Vec<u8>>>);
        impl Write for W {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().map(|mut v| v.extend_from_slice(b)).ok();
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        p.event_log = Some(Box::new(W(shared.clone())));
        log.extend(alerts(&mut p, &exec(30, "/tmp/xmrig", true, false)));
        alerts(&mut p, &exec(31, "/tmp/ok", true, false)); // allow-listed: runs
        alerts(&mut p, &exec(666, "/tmp/evil", true, false)); // the kill fails
        assert_eq!(killed.lock().map(|k| k.clone()).unwrap_or_default(), vec![30, 666]);
        assert_eq!((p.counters.drift_blocked, p.counters.kills, p.counters.kill_failures), (2, 1, 1));
        assert!(log.iter().any(|i| i == "PAL-SEN-048"), "drift still raises its alert: {log:?}");
        // every converted event was logged, one JSON line each
        let text = String::from_utf8(shared.lock().map(|v| v.clone()).unwrap_or_default()).unwrap_or_default();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    }

    #[test]
    fn exits_feed_the_process_table_only_and_pod_responses_need_a_pod() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (mut p, _) = pipeline(root.path(), "responses:\n  - {rules: ['PAL-SEN-006'], action: label}\n");
        let shared = Arc::new(Mutex::new(0usize));
        let s2 = shared.clone();
        struct Count(Arc<Mutex<usize>>);
        impl Write for Count {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().map(|mut n| *n += b.iter().filter(|c| **c == b'\n').count()).ok();
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        p.event_log = Some(Box::new(Count(s2)));
        alerts(&mut p, &exec(40, "/usr/bin/python3", false, false));
        let before = p.node.known_processes();
        assert!(alerts(&mut p, &exit(40)).is_empty());
        assert_eq!(p.node.known_processes(), before - 1, "the exit updated the process table");
        let logged = shared.lock().map(|n| *n).unwrap_or(0);
        assert_eq!(logged, if p.exit_rules { 2 } else { 1 }, "exits reach the rules only when one looks at them");
        // no runtime state: the container has no pod, so there is nothing to label
        let ids = alerts(&mut p, &exec(41, "/bin/sh", false, true));
        assert!(ids.iter().any(|i| i == "PAL-SEN-006"), "{ids:?}");
        assert_eq!(p.response_counts(), ResponseCounts { done: 0, failed: 0, skipped: 1 });
    }

    #[test]
    fn an_emit_error_stops_handling_and_is_returned() {
        let root = state_root();
        let (mut p, _) = pipeline(root.path(), "{}");
        let r = p.handle(&exec(50, "/bin/sh", false, true), &mut |_| Err(io::Error::other("disk full")));
        assert_eq!(r.map_err(|e| e.to_string()).err().as_deref(), Some("disk full"));
        assert!(p.report_denials(&mut |_| Ok(())).is_ok(), "no prevention: nothing to report");
    }
}
