//! The user-space half of the node sensor, between the kernel's [`RawEvent`]s and the rule
//! engine: a process table (parent executables, ancestry), container attribution, the drift
//! policy, and the conversion into the shared [`SensorEvent`] that sensor rules see as `evt`.
//!
//! Pure apart from the [`Resolver`]'s reads of runtime state files: no BPF here, so it is
//! tested with hand-made events.

use crate::attribution::{ContainerInfo, Resolver};
use crate::event::{Body, ProcSnapshot, RawEvent};
use crate::TimeOffset;
use palisade_detect::event::{Entity, FileInfo, NetworkInfo, ProcessInfo, SensorEvent, SensorKind, SyscallInfo};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What the drift policy does with an executable that was not in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DriftAction {
    /// Nothing (drift is expected here, e.g. build or CI containers).
    Allow,
    /// Mark the exec as drift (the drift rule raises an alert).
    #[default]
    Detect,
    /// Detect and kill the process at once.
    Block,
}

/// One drift rule: scope, allow-listed processes, action. Empty scope lists match anything;
/// items are globs (`*`, `?`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DriftRule {
    /// Name (shown in alerts and logs).
    pub name: String,
    /// Clusters.
    #[serde(default)]
    pub clusters: Vec<String>,
    /// Namespaces.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Image references.
    #[serde(default)]
    pub images: Vec<String>,
    /// Container names.
    #[serde(default)]
    pub containers: Vec<String>,
    /// Pod labels that must all be present (values are globs). Labels come from the API server
    /// (the pods of this node, refreshed every 30 s when the sensor has API access) or from
    /// CRI-O's `io.kubernetes.cri-o.Labels` annotation; a rule with labels never matches a
    /// container whose labels are unknown.
    #[serde(default)]
    pub pod_labels: BTreeMap<String, String>,
    /// Executables (globs on the path) that may run even when written after start.
    #[serde(default)]
    pub allowed_processes: Vec<String>,
    /// What to do.
    #[serde(default)]
    pub action: DriftAction,
}

/// The drift policy: ordered rules, first match wins, then the default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DriftPolicy {
    /// Rules in order.
    #[serde(default)]
    pub rules: Vec<DriftRule>,
    /// Action when no rule matches.
    #[serde(default)]
    pub default: DriftAction,
    /// Stop drifted execs before they run (fanotify `FAN_OPEN_EXEC_PERM` on the root mount of
    /// containers whose rule blocks), instead of killing them after they started.
    #[serde(default)]
    pub prevent: bool,
}

/// The decision on one exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftDecision {
    /// Name of the matching rule (`default` when none).
    pub rule: String,
    /// Its action, after the allow-list (`Allow` when the process is allow-listed).
    pub action: DriftAction,
}

impl DriftPolicy {
    /// Decides on an exec of `exe` in `c` (labels: the pod's, when known).
    pub fn decide(
        &self,
        cluster: &str,
        c: &ContainerInfo,
        labels: &BTreeMap<String, String>,
        exe: &str,
    ) -> DriftDecision {
        for r in &self.rules {
            let scoped = any_glob(&r.clusters, cluster)
                && any_glob(&r.namespaces, &c.namespace)
                && any_glob(&r.images, &c.image)
                && any_glob(&r.containers, &c.name)
                && r.pod_labels.iter().all(|(k, v)| labels.get(k).is_some_and(|have| glob(v, have)));
            if scoped {
                let allowed = r.allowed_processes.iter().any(|p| glob(p, exe));
                return DriftDecision {
                    rule: r.name.clone(),
                    action: if allowed { DriftAction::Allow } else { r.action },
                };
            }
        }
        DriftDecision { rule: "default".into(), action: self.default }
    }
}

fn any_glob(patterns: &[String], s: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| glob(p, s))
}

/// `*` and `?` glob match (the rule language's, so policies and rules agree).
pub use palisade_detect::bind::glob;

/// Node-level settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeConfig {
    /// Cluster name put on events.
    #[serde(default)]
    pub cluster: String,
    /// Node name (default: the host name).
    #[serde(default)]
    pub node: String,
    /// Drift policy.
    #[serde(default)]
    pub drift: DriftPolicy,
    /// Automatic responses to alerts.
    #[serde(default)]
    pub responses: Vec<ResponseRule>,
}

/// An automatic response: when an alert of one of `rules` (globs on rule ids) fires, do `action`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponseRule {
    /// Rule ids (globs), e.g. `PAL-SEN-002`, `PAL-SEN-*`.
    pub rules: Vec<String>,
    /// What to do.
    pub action: ResponseAction,
}

/// Response actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResponseAction {
    /// Alert only.
    None,
    /// SIGKILL the process.
    Kill,
    /// Label the pod (`palisade.dev/alert`); needs API access.
    Label,
    /// Label the pod and cut its network with a deny-all NetworkPolicy; needs API access.
    Isolate,
    /// Delete the pod; needs API access.
    DeletePod,
}

impl ResponseAction {
    /// Whether the action is carried out through the Kubernetes API (label, isolate,
    /// delete-pod).
    pub fn needs_api(self) -> bool {
        match self {
            ResponseAction::Label | ResponseAction::Isolate | ResponseAction::DeletePod => true,
            ResponseAction::None | ResponseAction::Kill => false,
        }
    }
}

impl NodeConfig {
    /// Parses and validates YAML.
    pub fn from_yaml(text: &str) -> Result<NodeConfig, String> {
        let c: NodeConfig = palisade_yaml::from_str(text).map_err(|e| e.to_string())?;
        for (i, r) in c.drift.rules.iter().enumerate() {
            if r.name.is_empty() {
                return Err(format!("drift.rules[{i}]: a rule needs a name"));
            }
        }
        for (i, r) in c.responses.iter().enumerate() {
            if r.rules.is_empty() {
                return Err(format!("responses[{i}]: list the rule ids it applies to"));
            }
        }
        Ok(c)
    }

    /// The responses for an alert of `rule_id`: every matching entry's action, in order.
    pub fn responses_for(&self, rule_id: &str) -> Vec<ResponseAction> {
        self.responses.iter().filter(|r| r.rules.iter().any(|g| glob(g, rule_id))).map(|r| r.action).collect()
    }
}

#[derive(Debug, Clone)]
struct Proc {
    exe: Arc<str>,
    args: Arc<[String]>,
    ppid: u32,
}

/// Bound on the process table (entries are removed on exit; this caps a leak if exits are lost).
const MAX_PROCS: usize = 1 << 17;
/// Ancestors reported per event.
const MAX_ANCESTORS: usize = 8;

/// Converts kernel events into rule-engine events.
#[derive(Debug)]
pub struct Node {
    cfg: NodeConfig,
    resolver: Resolver,
    offset: TimeOffset,
    procs: HashMap<u32, Proc>,
    /// Pod labels from the API server, by (namespace, pod).
    api_labels: HashMap<(String, String), BTreeMap<String, String>>,
}

/// One converted event.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The event for the rule engine.
    pub event: SensorEvent,
    /// The drift decision, for execs from the upper layer of a container.
    pub drift: Option<DriftDecision>,
    /// The container, when the task is in one.
    pub container: Option<ContainerInfo>,
}

impl Node {
    /// A converter seeded with the start-up process snapshot.
    pub fn new(cfg: NodeConfig, resolver: Resolver, offset: TimeOffset, snapshot: &[ProcSnapshot]) -> Node {
        let mut procs = HashMap::with_capacity(snapshot.len() * 2);
        for p in snapshot {
            procs.insert(p.pid, Proc { exe: Arc::from(p.exe.as_str()), args: Arc::from(Vec::new()), ppid: p.ppid });
        }
        Node { cfg, resolver, offset, procs, api_labels: HashMap::new() }
    }

    /// The configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.cfg
    }

    /// For a container whose drift rule blocks, the allow-list check prevention should use
    /// (`exe` inside the container → allowed); `None` when the container is not blocked.
    pub fn prevention_for(&self, c: &ContainerInfo) -> Option<crate::prevent::AllowFn> {
        let labels = self.pod_labels(c);
        // a path no allow-list names: the rule's own action
        let d = self.cfg.drift.decide(&self.cfg.cluster, c, &labels, "\u{0}");
        if d.action != DriftAction::Block {
            return None;
        }
        let (policy, cluster, c) = (self.cfg.drift.clone(), self.cfg.cluster.clone(), c.clone());
        Some(Arc::new(move |exe: &str| policy.decide(&cluster, &c, &labels, exe).action == DriftAction::Allow))
    }

    /// The event for an exec that drift prevention denied (it never ran, so the kernel reported
    /// no exec): marked as drift, with the container's attribution if it is known.
    pub fn denied_exec_event(&mut self, container_id: &str, pid: i32, path: &str, time_us: i64) -> SensorEvent {
        let c = self.procs.get(&(pid as u32)).map(|p| p.exe.to_string());
        let ancestors = self.ancestors(pid as u32);
        let known = self.resolver.cached(container_id);
        SensorEvent {
            kind: SensorKind::Process,
            time_us,
            node: self.cfg.node.clone(),
            entity: Entity {
                cluster: self.cfg.cluster.clone(),
                namespace: known.as_ref().map(|k| k.namespace.clone()).unwrap_or_default(),
                pod: known.as_ref().map(|k| k.pod.clone()).unwrap_or_default(),
                container: known.as_ref().map(|k| k.name.clone()).unwrap_or_default(),
                image: known.as_ref().map(|k| k.image.clone()).unwrap_or_default(),
                container_id: container_id.to_string(),
            },
            process: ProcessInfo {
                pid: i64::from(pid),
                exe: path.to_string(),
                args: vec![path.to_string(), "(exec denied by drift prevention)".to_string()],
                parent_exe: c.unwrap_or_default(),
                ancestors,
                upper_layer: true,
                drift: true,
                ..ProcessInfo::default()
            },
            file: None,
            network: None,
            syscall: None,
        }
    }

    /// Processes known.
    pub fn known_processes(&self) -> usize {
        self.procs.len()
    }

    fn ancestors(&self, mut pid: u32) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < MAX_ANCESTORS {
            let Some(p) = self.procs.get(&pid) else { break };
            out.push(p.exe.to_string());
            if p.ppid == pid || p.ppid == 0 {
                break;
            }
            pid = p.ppid;
        }
        out
    }

    /// Pod labels read from the API server (the pods of this node), used for containers whose
    /// runtime does not record them (containerd).
    pub fn set_api_pod_labels(&mut self, labels: HashMap<(String, String), BTreeMap<String, String>>) {
        self.api_labels = labels;
    }

    /// The pod's labels: from the API server when known, else what the runtime recorded.
    fn pod_labels(&self, c: &ContainerInfo) -> BTreeMap<String, String> {
        self.api_labels.get(&(c.namespace.clone(), c.pod.clone())).unwrap_or(&c.labels).clone()
    }

    /// Converts one kernel event (updating the process table).
    pub fn convert(&mut self, ev: &RawEvent) -> Converted {
        let t = &ev.task;
        let container = self.resolver.resolve(&t.cgroup_name, t.mntns);
        let entity = match &container {
            Some(c) => Entity {
                cluster: self.cfg.cluster.clone(),
                namespace: c.namespace.clone(),
                pod: c.pod.clone(),
                container: c.name.clone(),
                image: c.image.clone(),
                container_id: c.id.clone(),
            },
            None => Entity { cluster: self.cfg.cluster.clone(), ..Entity::default() },
        };
        let mut process = ProcessInfo {
            pid: i64::from(t.pid),
            ppid: i64::from(t.ppid),
            tid: i64::from(t.tid),
            uid: i64::from(t.uid),
            euid: i64::from(t.euid),
            gid: i64::from(t.gid),
            comm: t.comm.clone(),
            ..ProcessInfo::default()
        };
        let (mut file, mut network, mut syscall) = (None, None, None);
        let mut drift = None;
        let kind = match &ev.body {
            Body::Exec(x) => {
                if self.procs.len() >= MAX_PROCS {
                    self.procs.clear();
                }
                let exe = if x.exe.is_empty() { x.filename.clone() } else { x.exe.clone() };
                self.procs.insert(
                    t.pid,
                    Proc { exe: Arc::from(exe.as_str()), args: Arc::from(x.args.clone()), ppid: t.ppid },
                );
                process.exe = exe;
                process.args = x.args.clone();
                process.cwd = x.cwd.clone();
                process.upper_layer = x.upper_layer;
                process.fileless = x.fileless;
                process.stdio_socket = x.stdio_socket;
                process.tty = x.tty;
                if x.upper_layer {
                    if let Some(c) = &container {
                        let labels = self.pod_labels(c);
                        let d = self.cfg.drift.decide(&self.cfg.cluster, c, &labels, &process.exe);
                        process.drift = d.action != DriftAction::Allow;
                        drift = Some(d);
                    }
                }
                SensorKind::Process
            }
            Body::Exit { .. } => SensorKind::Exit,
            Body::Open { path, flags } => {
                let write = flags & (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC) as u32 != 0;
                file = Some(FileInfo {
                    path: path.clone(),
                    op: if write { "write" } else { "open" }.into(),
                    flags: i64::from(*flags),
                    ..FileInfo::default()
                });
                SensorKind::File
            }
            Body::Unlink { path } => {
                file = Some(FileInfo { path: path.clone(), op: "unlink".into(), ..FileInfo::default() });
                SensorKind::File
            }
            Body::Rename { from, to } => {
                file = Some(FileInfo {
                    path: from.clone(),
                    op: "rename".into(),
                    new_path: to.clone(),
                    ..FileInfo::default()
                });
                SensorKind::File
            }
            Body::Chmod { path, mode } => {
                file = Some(FileInfo {
                    path: path.clone(),
                    op: "chmod".into(),
                    mode: i64::from(*mode),
                    ..FileInfo::default()
                });
                SensorKind::File
            }
            Body::Connect { family, sock_type, addr, port, unix_path } => {
                let fam = match *family as i32 {
                    libc::AF_INET => "inet",
                    libc::AF_INET6 => "inet6",
                    libc::AF_UNIX => "unix",
                    _ => "other",
                };
                let proto = match (fam, sock_type) {
                    ("unix", _) => "unix",
                    (_, Some(t)) if *t == libc::SOCK_DGRAM => "udp",
                    (_, Some(t)) if *t == libc::SOCK_STREAM => "tcp",
                    _ => "",
                };
                network = Some(NetworkInfo {
                    family: fam.into(),
                    unix_path: unix_path.clone(),
                    direction: "connect".into(),
                    protocol: proto.into(),
                    dst_ip: addr.map(|a| a.to_string()).unwrap_or_default(),
                    dst_port: *port,
                    ..NetworkInfo::default()
                });
                SensorKind::Network
            }
            Body::SetId { syscall: name, ids } => {
                let n = if name.starts_with("setres") || name.starts_with("setre") { ids.len() } else { 1 };
                syscall =
                    Some(SyscallInfo { name: (*name).into(), ids: ids[..n.min(3)].to_vec(), ..SyscallInfo::default() });
                SensorKind::Syscall
            }
            Body::Capset { target, effective, .. } => {
                syscall = Some(SyscallInfo {
                    name: "capset".into(),
                    target_pid: i64::from(*target),
                    flags: *effective as i64,
                    ..SyscallInfo::default()
                });
                SensorKind::Syscall
            }
            Body::Ptrace { request, target } => {
                syscall = Some(SyscallInfo {
                    name: "ptrace".into(),
                    request: *request,
                    target_pid: i64::from(*target),
                    ..SyscallInfo::default()
                });
                SensorKind::Syscall
            }
            Body::ModuleLoad { name, syscall: which } => {
                syscall = Some(SyscallInfo { name: (*which).into(), source: name.clone(), ..SyscallInfo::default() });
                SensorKind::Syscall
            }
            Body::Mount { source, target, fstype, flags } => {
                syscall = Some(SyscallInfo {
                    name: "mount".into(),
                    source: source.clone(),
                    target: target.clone(),
                    fstype: fstype.clone(),
                    flags: *flags as i64,
                    ..SyscallInfo::default()
                });
                SensorKind::Syscall
            }
            Body::Unshare { flags } => {
                syscall = Some(SyscallInfo { name: "unshare".into(), flags: *flags as i64, ..SyscallInfo::default() });
                SensorKind::Syscall
            }
            Body::Setns { nstype, .. } => {
                syscall = Some(SyscallInfo { name: "setns".into(), flags: *nstype as i64, ..SyscallInfo::default() });
                SensorKind::Syscall
            }
            Body::MemfdCreate { name, flags } => {
                syscall = Some(SyscallInfo {
                    name: "memfd_create".into(),
                    source: name.clone(),
                    flags: i64::from(*flags),
                    ..SyscallInfo::default()
                });
                SensorKind::Syscall
            }
        };
        if kind != SensorKind::Process {
            if let Some(p) = self.procs.get(&t.pid) {
                process.exe = p.exe.to_string();
                process.args = p.args.to_vec();
            }
        }
        if process.exe.is_empty() {
            process.exe = t.comm.clone();
        }
        let ancestors = self.ancestors(t.ppid);
        process.parent_exe = ancestors.first().cloned().unwrap_or_default();
        process.ancestors = ancestors;
        if kind == SensorKind::Exit {
            self.procs.remove(&t.pid);
        }
        let event = SensorEvent {
            kind,
            time_us: self.offset.unix_micros(ev.time_ns_boot),
            node: self.cfg.node.clone(),
            entity,
            process,
            file,
            network,
            syscall,
        };
        Converted { event, drift, container }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ExecInfo, TaskHeader};

    fn task(pid: u32, ppid: u32, cgroup: &str, mntns: u32) -> TaskHeader {
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
            mntns,
            pidns: 1,
        }
    }

    fn exec(t: TaskHeader, exe: &str, upper: bool) -> RawEvent {
        RawEvent {
            time_ns_boot: 1_000,
            task: t,
            body: Body::Exec(ExecInfo {
                filename: exe.into(),
                exe: exe.into(),
                args: vec![exe.rsplit('/').next().unwrap_or("").into()],
                cwd: "/".into(),
                parent_comm: String::new(),
                upper_layer: upper,
                fileless: false,
                stdio_socket: false,
                tty: false,
            }),
        }
    }

    const HOST_NS: u32 = 4026531840;
    const ID: &str = "8f3c1a0b9e7d6c5b4a3928171615141312111009080706050403020100ffeedd";

    #[test]
    fn globs() {
        assert!(glob("ghcr.io/acme/*", "ghcr.io/acme/api:1"));
        assert!(glob("team-?", "team-a") && !glob("team-?", "team-ab"));
        assert!(glob("*", "") && glob("a*b*c", "aXXbYYc") && !glob("a*b*c", "aXXbYY"));
        assert!(!glob(&"a*".repeat(50), &"a".repeat(30)) || glob(&"a*".repeat(50), &"a".repeat(60)));
    }

    #[test]
    fn ancestry_attribution_and_drift() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cfg = NodeConfig::from_yaml(
            "cluster: prod\nnode: n1\ndrift:\n  default: detect\n  rules:\n    - name: plugins\n      allowedProcesses: ['/opt/plugins/*']\n      action: block\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let snap = vec![ProcSnapshot {
            pid: 10,
            ppid: 1,
            uid: 0,
            comm: "nginx".into(),
            exe: "/usr/sbin/nginx".into(),
            cgroup_id: 1,
            cgroup_name: String::new(),
            mntns: HOST_NS,
        }];
        let mut n = Node::new(cfg, Resolver::new(dir.path(), HOST_NS), crate::time_offset(), &snap);
        let leaf = format!("cri-containerd-{ID}.scope");
        let a = n.convert(&exec(task(20, 10, &leaf, 99), "/bin/sh", false));
        assert_eq!(a.event.process.parent_exe, "/usr/sbin/nginx");
        assert_eq!(a.event.entity.container_id, ID);
        assert_eq!(a.event.entity.cluster, "prod");
        assert!(a.drift.is_none() && !a.event.process.drift);
        let b = n.convert(&exec(task(30, 20, &leaf, 99), "/tmp/xmrig", true));
        assert_eq!(b.event.process.ancestors, vec!["/bin/sh".to_string(), "/usr/sbin/nginx".to_string()]);
        assert_eq!(b.drift.as_ref().map(|d| d.action), Some(DriftAction::Block));
        assert!(b.event.process.drift);
        let c = n.convert(&exec(task(31, 20, &leaf, 99), "/opt/plugins/x", true));
        assert_eq!(c.drift.map(|d| d.action), Some(DriftAction::Allow));
        assert!(!c.event.process.drift);
        // a host process is never drift and has no container
        let h = n.convert(&exec(task(40, 1, "session-1.scope", HOST_NS), "/tmp/tool", true));
        assert!(h.container.is_none() && h.drift.is_none() && h.event.entity.container_id.is_empty());
        // later events of a process carry its exe and args; exit forgets it
        let open = RawEvent {
            time_ns_boot: 2_000,
            task: task(30, 20, &leaf, 99),
            body: Body::Open { path: "/etc/shadow".into(), flags: 0 },
        };
        let o = n.convert(&open);
        assert_eq!(
            (o.event.process.exe.as_str(), o.event.file.map(|f| f.op)),
            ("/tmp/xmrig", Some("open".to_string()))
        );
        let before = n.known_processes();
        n.convert(&RawEvent {
            time_ns_boot: 3_000,
            task: task(30, 20, &leaf, 99),
            body: Body::Exit { code: 0, signal: 0 },
        });
        assert_eq!(n.known_processes(), before - 1);
    }

    #[test]
    fn first_matching_drift_rule_wins_and_responses() {
        let p: NodeConfig = NodeConfig::from_yaml(
            "drift:\n  default: block\n  rules:\n    - {name: ci, namespaces: ['ci-*'], action: allow}\n    - {name: shop, namespaces: [shop], images: ['ghcr.io/acme/*'], podLabels: {app: 'web*'}, action: detect}\nresponses:\n  - {rules: ['PAL-SEN-002'], action: kill}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let c = |ns: &str, image: &str| ContainerInfo {
            namespace: ns.into(),
            image: image.into(),
            ..ContainerInfo::default()
        };
        let web: BTreeMap<String, String> = [("app".to_string(), "web-1".to_string())].into();
        assert_eq!(p.drift.decide("", &c("ci-7", "x"), &web, "/tmp/a").action, DriftAction::Allow);
        assert_eq!(p.drift.decide("", &c("shop", "ghcr.io/acme/api:1"), &web, "/tmp/a").rule, "shop");
        assert_eq!(p.drift.decide("", &c("shop", "ghcr.io/acme/api:1"), &BTreeMap::new(), "/tmp/a").rule, "default");
        assert_eq!(p.drift.decide("", &c("shop", "docker.io/x"), &web, "/tmp/a").action, DriftAction::Block);
        // prevention is armed only where the rule blocks, with the rule's allow-list
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut cfg = p.clone();
        cfg.drift.rules.push(DriftRule {
            name: "plugins".into(),
            namespaces: vec!["plug".into()],
            allowed_processes: vec!["/opt/plugins/*".into()],
            action: DriftAction::Block,
            ..DriftRule::default()
        });
        let mut n = Node::new(cfg, Resolver::new(dir.path(), 1), crate::time_offset(), &[]);
        assert!(n.prevention_for(&c("ci-1", "x")).is_none(), "allow rule: no prevention");
        // labels from the API server (containerd records none) scope podLabels rules
        let shop = ContainerInfo {
            namespace: "shop".into(),
            pod: "web-1".into(),
            image: "ghcr.io/acme/api:1".into(),
            ..ContainerInfo::default()
        };
        assert!(n.prevention_for(&shop).is_some(), "no labels: default (block)");
        n.set_api_pod_labels([(("shop".to_string(), "web-1".to_string()), web.clone())].into());
        assert!(n.prevention_for(&shop).is_none(), "labelled app=web-1: the detect rule matches");
        let allow = n.prevention_for(&c("plug", "x")).unwrap_or_else(|| Arc::new(|_: &str| true));
        assert!(allow("/opt/plugins/a") && !allow("/tmp/x"));
        assert_eq!(p.responses_for("PAL-SEN-002"), vec![ResponseAction::Kill]);
        assert!(p.responses_for("PAL-SEN-001").is_empty());
        let q = NodeConfig::from_yaml(
            "responses:\n  - {rules: ['PAL-SEN-00*'], action: kill}\n  - {rules: ['PAL-SEN-006'], action: isolate}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.responses_for("PAL-SEN-006"), vec![ResponseAction::Kill, ResponseAction::Isolate]);
        assert!(NodeConfig::from_yaml("drift: {rules: [{action: allow}]}").is_err());
        assert!(NodeConfig::from_yaml("bogus: 1").is_err());
    }
}
