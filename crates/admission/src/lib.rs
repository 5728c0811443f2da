//! Admission control: the decision core of the validating webhook.
//!
//! An `AdmissionReview` (`admission.k8s.io/v1` or `v1beta1`) is parsed, the object is checked
//! with the *same* posture checks that raise recommendations ([`palisade_posture::evaluate_object`]),
//! each policy's action is applied — `audit` (allow, record), `warn` (allow with warnings that
//! kubectl prints) or `deny` (a message naming every failed check, its field and remediation) —
//! and a response is built in the API version of the request. Pure: no I/O; the HTTPS server
//! and `palisade admission test` are shells over [`decide`] and [`respond`].

pub mod manifests;
pub mod service;

use palisade_k8s::{Object, Origin};
use palisade_posture::{Context, Framework, Options, RegoPolicy};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// What a policy does with a failed check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Allow and record (audit annotation).
    #[default]
    Audit,
    /// Allow with a warning shown by kubectl.
    Warn,
    /// Reject.
    Deny,
}

/// Check selection presets matching the Pod Security Standards levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// PSS baseline controls.
    Baseline,
    /// PSS restricted controls (includes baseline).
    Restricted,
}

/// One policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    /// Name (appears in messages, annotations and metrics).
    pub name: String,
    /// A preset of checks.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// Explicit check IDs (added to the preset); a trailing `*` is a prefix.
    #[serde(default)]
    pub checks: Vec<String>,
    /// Custom Rego checks: `.rego` files, Gatekeeper ConstraintTemplates (+ Constraints) or
    /// directories of them, relative to the configuration file.
    #[serde(default)]
    pub rego: Vec<PathBuf>,
    /// What to do.
    #[serde(default)]
    pub action: Action,
    /// Only these namespaces (empty = all); a trailing `*` is a prefix.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Never these namespaces; a trailing `*` is a prefix.
    #[serde(default)]
    pub excluded_namespaces: Vec<String>,
    /// Only objects whose labels match (Kubernetes label-selector semantics).
    #[serde(default)]
    pub object_selector: LabelSelector,
}

/// A Kubernetes label selector (`matchLabels` and `matchExpressions`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels that must be present with these values.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    #[serde(default)]
    pub match_expressions: Vec<LabelRequirement>,
}

/// One set-based requirement of a [`LabelSelector`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelRequirement {
    /// Label key.
    pub key: String,
    /// How the key's value is compared with [`LabelRequirement::values`]. An operator other
    /// than the four of Kubernetes fails where the selector is loaded.
    pub operator: LabelOperator,
    /// Values (for `In` / `NotIn`).
    #[serde(default)]
    pub values: Vec<String>,
}

/// The operator of a [`LabelRequirement`] (Kubernetes' four set-based operators, spelled as in
/// a manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LabelOperator {
    /// The label is set to one of the values.
    In,
    /// The label is not set, or set to none of the values.
    NotIn,
    /// The label is set (to anything).
    Exists,
    /// The label is not set.
    DoesNotExist,
}

impl LabelOperator {
    /// Every operator.
    pub const ALL: [LabelOperator; 4] =
        [LabelOperator::In, LabelOperator::NotIn, LabelOperator::Exists, LabelOperator::DoesNotExist];

    /// The name as written in a manifest (`In`, `NotIn`, `Exists`, `DoesNotExist`).
    pub fn as_str(self) -> &'static str {
        match self {
            LabelOperator::In => "In",
            LabelOperator::NotIn => "NotIn",
            LabelOperator::Exists => "Exists",
            LabelOperator::DoesNotExist => "DoesNotExist",
        }
    }
}

impl std::fmt::Display for LabelOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LabelOperator {
    type Err = AdmissionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LabelOperator::ALL.into_iter().find(|o| o.as_str() == s).ok_or_else(|| {
            AdmissionError::Config(format!(
                "unknown label-selector operator {:?}: expected In, NotIn, Exists or DoesNotExist",
                clip(s)
            ))
        })
    }
}

impl LabelSelector {
    /// Whether `labels` satisfy the selector (an empty selector matches everything).
    pub fn matches(&self, labels: &[(&str, &str)]) -> bool {
        let get = |k: &str| labels.iter().find(|(lk, _)| *lk == k).map(|(_, v)| *v);
        self.match_labels.iter().all(|(k, v)| get(k) == Some(v.as_str()))
            && self.match_expressions.iter().all(|r| match r.operator {
                LabelOperator::In => get(&r.key).is_some_and(|v| r.values.iter().any(|x| x == v)),
                LabelOperator::NotIn => get(&r.key).is_none_or(|v| !r.values.iter().any(|x| x == v)),
                LabelOperator::Exists => get(&r.key).is_some(),
                LabelOperator::DoesNotExist => get(&r.key).is_none(),
            })
    }

    fn validate(&self, policy: &str) -> Result<(), AdmissionError> {
        for r in &self.match_expressions {
            let ok = match r.operator {
                LabelOperator::In | LabelOperator::NotIn => !r.values.is_empty(),
                LabelOperator::Exists | LabelOperator::DoesNotExist => r.values.is_empty(),
            };
            if !ok {
                return Err(AdmissionError::Config(format!(
                    "policy {policy:?}: objectSelector requirement on {:?}: operator \"{}\" {} (In/NotIn need values; Exists/DoesNotExist take none)",
                    r.key,
                    r.operator,
                    if r.values.is_empty() { "without values" } else { "with values" }
                )));
            }
        }
        Ok(())
    }
}

fn name_matches(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

/// Who and what is never evaluated.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exemptions {
    /// Namespaces (default: kube-system).
    #[serde(default = "default_exempt_namespaces")]
    pub namespaces: Vec<String>,
    /// Users.
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

fn default_exempt_namespaces() -> Vec<String> {
    vec!["kube-system".into()]
}

impl Default for Exemptions {
    fn default() -> Self {
        Exemptions { namespaces: default_exempt_namespaces(), users: Vec::new(), groups: Vec::new() }
    }
}

/// The webhook configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Policies, evaluated in order; the strictest action wins.
    #[serde(default)]
    pub policies: Vec<Policy>,
    /// Exemptions.
    #[serde(default)]
    pub exemptions: Exemptions,
    /// Registries images may come from (enables the untrusted-registry check).
    #[serde(default)]
    pub trusted_registries: Vec<String>,
}

impl Config {
    /// A single policy from a preset and an action.
    pub fn preset(preset: Preset, action: Action) -> Config {
        Config {
            policies: vec![Policy {
                name: format!("pss-{}", if preset == Preset::Baseline { "baseline" } else { "restricted" }),
                preset: Some(preset),
                checks: Vec::new(),
                rego: Vec::new(),
                action,
                namespaces: Vec::new(),
                excluded_namespaces: Vec::new(),
                object_selector: LabelSelector::default(),
            }],
            ..Config::default()
        }
    }

    /// Parse and validate YAML configuration, with clear diagnostics.
    pub fn from_yaml(text: &str) -> Result<Config, AdmissionError> {
        let c: Config = palisade_yaml::from_str(text).map_err(|e| AdmissionError::Config(e.to_string()))?;
        if c.policies.is_empty() {
            return Err(AdmissionError::Config("no policies: add at least one under `policies:`".into()));
        }
        let mut names = std::collections::HashSet::new();
        for p in &c.policies {
            if !names.insert(p.name.as_str()) {
                return Err(AdmissionError::Config(format!("two policies are named {:?}", p.name)));
            }
            if p.preset.is_none() && p.checks.is_empty() && p.rego.is_empty() {
                return Err(AdmissionError::Config(format!(
                    "policy {:?} selects no checks: set `preset`, `checks` or `rego`",
                    p.name
                )));
            }
            p.object_selector.validate(&p.name)?;
            for id in &p.checks {
                let prefix = id.trim_end_matches('*');
                if !palisade_posture::catalogue().iter().any(|c| {
                    if id.ends_with('*') {
                        c.id.starts_with(prefix)
                    } else {
                        c.id == id
                    }
                }) {
                    return Err(AdmissionError::Config(format!("policy {:?}: unknown check {id:?}", p.name)));
                }
            }
        }
        Ok(c)
    }
}

/// Errors.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The body is not an AdmissionReview.
    #[error("not an AdmissionReview: {0}")]
    BadReview(String),
    /// Configuration problems.
    #[error("invalid admission configuration: {0}")]
    Config(String),
}

/// A parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    /// `admission.k8s.io/v1` or `v1beta1`.
    pub api_version: String,
    /// Request UID (echoed in the response).
    pub uid: String,
    /// CREATE, UPDATE, DELETE or CONNECT; `None` when the review has no operation or one of
    /// another name (the request is then [`Request::invalid`]).
    pub operation: Option<Operation>,
    /// Namespace of the request.
    pub namespace: String,
    /// User name.
    pub user: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Dry run.
    pub dry_run: bool,
    /// The object (absent on DELETE).
    pub object: Option<Value>,
    /// `request.kind.kind` (e.g. `Pod`).
    pub kind: String,
    /// `request.subResource` (e.g. `status`); empty for the main resource.
    pub sub_resource: String,
    /// `request.name`.
    pub name: String,
    /// Why the request parsed but cannot be evaluated (wrong types, no kind, unknown operation,
    /// an object that is not an object). Such a request is never allowed silently: see
    /// [`Engine::decide_request`].
    pub invalid: Option<String>,
}

/// The kinds the webhook registers for (see [`manifests`]); metrics label other kinds `other`.
pub const KNOWN_KINDS: &[&str] = &[
    "Pod",
    "Service",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
];

/// The operations of an AdmissionReview (the names of [`Operation::ALL`]).
pub const OPERATIONS: &[&str] = &["CREATE", "UPDATE", "DELETE", "CONNECT"];

/// The operation of an AdmissionReview request, parsed once from `request.operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    /// `CREATE`.
    Create,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// `CONNECT` (exec, attach, port-forward, proxy).
    Connect,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 4] = [Operation::Create, Operation::Update, Operation::Delete, Operation::Connect];

    /// The name as sent by the API server (`CREATE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }

    /// Whether the request carries an object the checks evaluate (CREATE and UPDATE).
    pub fn writes_object(self) -> bool {
        match self {
            Operation::Create | Operation::Update => true,
            Operation::Delete | Operation::Connect => false,
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operation name that is not one of [`Operation::ALL`] (the name is kept clipped to 64
/// characters: it is client-supplied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operation {0:?} is not CREATE, UPDATE, DELETE or CONNECT")]
pub struct UnknownOperation(pub String);

impl std::str::FromStr for Operation {
    type Err = UnknownOperation;

    /// Exact, upper-case names only, as the API server sends them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::ALL.into_iter().find(|o| o.as_str() == s).ok_or_else(|| UnknownOperation(clip(s)))
    }
}

impl TryFrom<&str> for Operation {
    type Error = UnknownOperation;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Containers (all lists) or volumes of one pod spec evaluated at most; a larger spec cannot be
/// evaluated within bounded work and is decided as invalid (denied under a deny policy).
pub const MAX_CONTAINERS: usize = 1000;
/// Violations of one check under one policy kept individually; the rest become one aggregate.
pub const MAX_SAME_CHECK: usize = 5;
/// Violations kept per decision (after aggregation); the rest become one aggregate.
pub const MAX_VIOLATIONS: usize = 64;
/// Longest deny message, warning list or annotation value built by [`respond`] (bytes).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Most warnings returned (kubectl prints each).
pub const MAX_WARNINGS: usize = 20;

/// Largest review body accepted by [`parse_review`] (the server also enforces its own limit).
pub const MAX_REVIEW_BYTES: usize = 8 << 20;

/// Parse an AdmissionReview body. A body that is not an AdmissionReview is an error (the
/// server answers 400); a review that parses but cannot be evaluated carries the reason in
/// [`Request::invalid`].
pub fn parse_review(body: &[u8]) -> Result<Request, AdmissionError> {
    if body.len() > MAX_REVIEW_BYTES {
        return Err(AdmissionError::BadReview(format!("body larger than {MAX_REVIEW_BYTES} bytes")));
    }
    let mut v: Value = serde_json::from_slice(body).map_err(|e| AdmissionError::BadReview(e.to_string()))?;
    if v.get("kind").and_then(Value::as_str) != Some("AdmissionReview") {
        return Err(AdmissionError::BadReview("kind is not AdmissionReview".into()));
    }
    let api_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string();
    if api_version != "admission.k8s.io/v1" && api_version != "admission.k8s.io/v1beta1" {
        return Err(AdmissionError::BadReview(format!("unsupported apiVersion {api_version:?}")));
    }
    let r = v.get_mut("request").ok_or_else(|| AdmissionError::BadReview("no request".into()))?;
    if !r.is_object() {
        return Err(AdmissionError::BadReview("request is not an object".into()));
    }
    let uid = r.pointer("/uid").and_then(Value::as_str).unwrap_or("").to_string();
    if uid.is_empty() {
        return Err(AdmissionError::BadReview("request.uid is missing".into()));
    }
    // the object is moved out, not cloned: a review can be megabytes
    let object = r.get_mut("object").map(Value::take).filter(|o| !o.is_null());
    let r = &*r;
    let mut problems: Vec<String> = Vec::new();
    let mut s = |p: &str, required: bool| match r.pointer(p) {
        Some(Value::String(x)) => x.clone(),
        None | Some(Value::Null) if !required => String::new(),
        None | Some(Value::Null) => {
            problems.push(format!("request{} is missing", p.replace('/', ".")));
            String::new()
        }
        Some(other) => {
            problems.push(format!("request{} is {}, not a string", p.replace('/', "."), type_name(other)));
            String::new()
        }
    };
    let operation_name = s("/operation", true);
    let kind = s("/kind/kind", true);
    let namespace = s("/namespace", false);
    let user = s("/userInfo/username", false);
    let sub_resource = s("/subResource", false);
    let name = s("/name", false);
    // missing or not a string is already a problem; any string (even "") is parsed
    let operation = match r.get("operation") {
        Some(Value::String(_)) => match operation_name.parse::<Operation>() {
            Ok(op) => Some(op),
            Err(e) => {
                problems.push(format!("request.{e}"));
                None
            }
        },
        _ => None,
    };
    let dry_run = match r.get("dryRun") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            problems.push(format!("request.dryRun is {}, not a boolean", type_name(other)));
            false
        }
    };
    let groups = match r.pointer("/userInfo/groups") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).map(str::to_string).collect()
        }
        Some(_) => {
            problems.push("request.userInfo.groups is not a list of strings".into());
            Vec::new()
        }
    };
    let evaluated = operation.is_some_and(Operation::writes_object)
        && (sub_resource.is_empty() || sub_resource == "ephemeralcontainers");
    match &object {
        Some(o) if !o.is_object() => problems.push(format!("request.object is {}, not an object", type_name(o))),
        Some(o) => problems.extend(object_problems(o).into_iter().map(|p| format!("request.object: {p}"))),
        None if evaluated => problems.push(format!("request.object is missing for {operation_name}")),
        None => {}
    }
    let name = match name {
        n if n.is_empty() => object
            .as_ref()
            .and_then(|o| o.pointer("/metadata/name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        n => n,
    };
    problems.truncate(8);
    Ok(Request {
        api_version,
        uid,
        operation,
        namespace,
        user,
        groups,
        dry_run,
        object: object.filter(Value::is_object),
        kind,
        sub_resource,
        name,
        invalid: (!problems.is_empty()).then(|| problems.join("; ")),
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// At most 64 characters of client-supplied text in a message.
fn clip(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[derive(Clone, Copy)]
enum Want {
    Bool,
    Int,
    Str,
    Obj,
    List,
    StrList,
}

fn want(v: &Value, ptr: &str, w: Want, out: &mut Vec<String>) {
    let ok = match (w, v) {
        (_, Value::Null) => true,
        (Want::Bool, Value::Bool(_)) | (Want::Str, Value::String(_)) | (Want::Obj, Value::Object(_)) => true,
        (Want::Int, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Want::List, Value::Array(_)) => true,
        (Want::StrList, Value::Array(a)) => a.iter().all(Value::is_string),
        _ => false,
    };
    if !ok && out.len() < 8 {
        let expected = match w {
            Want::Bool => "a boolean",
            Want::Int => "an integer",
            Want::Str => "a string",
            Want::Obj => "an object",
            Want::List => "a list",
            Want::StrList => "a list of strings",
        };
        out.push(format!("{ptr} is {}, expected {expected}", type_name(v)));
    }
}

fn fields(v: &Value, base: &str, spec: &[(&str, Want)], out: &mut Vec<String>) {
    for (k, w) in spec {
        if let Some(x) = v.get(*k) {
            want(x, &format!("{base}/{k}"), *w, out);
        }
    }
}

const SECURITY_CONTEXT: &[(&str, Want)] = &[
    ("privileged", Want::Bool),
    ("allowPrivilegeEscalation", Want::Bool),
    ("readOnlyRootFilesystem", Want::Bool),
    ("runAsNonRoot", Want::Bool),
    ("runAsUser", Want::Int),
    ("runAsGroup", Want::Int),
    ("procMount", Want::Str),
    ("capabilities", Want::Obj),
    ("seccompProfile", Want::Obj),
    ("seLinuxOptions", Want::Obj),
    ("appArmorProfile", Want::Obj),
    ("windowsOptions", Want::Obj),
];

/// Type errors in the fields the checks read: a value the checks would misread (e.g. the
/// string `"true"` for `privileged`) must not pass as "not set".
fn object_problems(o: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let kind = match o.get("kind") {
        Some(Value::String(k)) if !k.is_empty() => k.as_str(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            out.push("the object has no kind".to_string());
            return out;
        }
        Some(other) => {
            out.push(format!("/kind is {}, expected a string", type_name(other)));
            return out;
        }
    };
    if let Some(m) = o.get("metadata") {
        want(m, "/metadata", Want::Obj, &mut out);
        fields(m, "/metadata", &[("name", Want::Str), ("namespace", Want::Str), ("labels", Want::Obj)], &mut out);
        if let Some(Value::Object(l)) = m.get("labels") {
            if l.values().any(|v| !v.is_string()) {
                out.push("/metadata/labels has a value that is not a string".into());
            }
        }
    }
    let path: &[&str] = match kind {
        "Pod" => &["spec"],
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ReplicationController" | "Job" => {
            &["spec", "template", "spec"]
        }
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => &[],
    };
    let mut cur = o;
    let mut ptr = String::new();
    for seg in path {
        ptr.push('/');
        ptr.push_str(seg);
        match cur.get(*seg) {
            None | Some(Value::Null) => return out,
            Some(v @ Value::Object(_)) => cur = v,
            Some(v) => {
                want(v, &ptr, Want::Obj, &mut out);
                return out;
            }
        }
    }
    if path.is_empty() {
        return out;
    }
    let spec = cur;
    let n: usize = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|l| spec.get(*l).and_then(Value::as_array))
        .map(Vec::len)
        .sum();
    if n > MAX_CONTAINERS {
        // bounded work per request: evaluation cost and findings grow with every container
        out.push(format!("{ptr} has {} containers, more than the {MAX_CONTAINERS} evaluated", thousands(n)));
        return out;
    }
    if spec.get("volumes").and_then(Value::as_array).is_some_and(|v| v.len() > MAX_CONTAINERS) {
        out.push(format!("{ptr}/volumes has more than {MAX_CONTAINERS} entries"));
        return out;
    }
    fields(
        spec,
        &ptr,
        &[
            ("hostNetwork", Want::Bool),
            ("hostPID", Want::Bool),
            ("hostIPC", Want::Bool),
            ("hostUsers", Want::Bool),
            ("shareProcessNamespace", Want::Bool),
            ("automountServiceAccountToken", Want::Bool),
            ("serviceAccountName", Want::Str),
            ("securityContext", Want::Obj),
            ("volumes", Want::List),
            ("containers", Want::List),
            ("initContainers", Want::List),
            ("ephemeralContainers", Want::List),
        ],
        &mut out,
    );
    if let Some(sc) = spec.get("securityContext").filter(|v| v.is_object()) {
        fields(sc, &format!("{ptr}/securityContext"), SECURITY_CONTEXT, &mut out);
    }
    if let Some(Value::Array(vols)) = spec.get("volumes") {
        for (i, v) in vols.iter().enumerate() {
            let p = format!("{ptr}/volumes/{i}");
            want(v, &p, Want::Obj, &mut out);
            fields(v, &p, &[("hostPath", Want::Obj)], &mut out);
        }
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(Value::Array(cs)) = spec.get(list) else { continue };
        for (i, c) in cs.iter().enumerate() {
            if out.len() >= 8 {
                return out;
            }
            let p = format!("{ptr}/{list}/{i}");
            if !c.is_object() {
                want(c, &p, Want::Obj, &mut out);
                continue;
            }
            fields(
                c,
                &p,
                &[("name", Want::Str), ("image", Want::Str), ("securityContext", Want::Obj), ("ports", Want::List)],
                &mut out,
            );
            if let Some(sc) = c.get("securityContext").filter(|v| v.is_object()) {
                let sp = format!("{p}/securityContext");
                fields(sc, &sp, SECURITY_CONTEXT, &mut out);
                if let Some(caps) = sc.get("capabilities").filter(|v| v.is_object()) {
                    fields(
                        caps,
                        &format!("{sp}/capabilities"),
                        &[("add", Want::StrList), ("drop", Want::StrList)],
                        &mut out,
                    );
                }
            }
        }
    }
    out
}

/// One failed check under one policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// Policy name.
    pub policy: String,
    /// Action of that policy.
    pub action: Action,
    /// Check ID.
    pub check_id: String,
    /// JSON pointer of the failing field.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub remediation: String,
}

/// The outcome of a decision, serialised (and displayed) as `allowed`, `warned`, `denied` or
/// `exempt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Allowed (no violation, or only audited ones).
    Allowed,
    /// Allowed with warnings.
    Warned,
    /// Rejected.
    Denied,
    /// Not evaluated: an exempt namespace, user or group.
    Exempt,
}

impl Verdict {
    /// The name as serialised (`allowed`, `warned`, `denied`, `exempt`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Warned => "warned",
            Verdict::Denied => "denied",
            Verdict::Exempt => "exempt",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the serialised name (`verdict == "denied"`).
impl PartialEq<str> for Verdict {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// Compares with the serialised name (`verdict == "denied"`).
impl PartialEq<&str> for Verdict {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The decision on one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Allowed or not.
    pub allowed: bool,
    /// Allowed, warned, denied or exempt.
    pub verdict: Verdict,
    /// Every violation (all policies, all actions).
    pub violations: Vec<Violation>,
    /// Why exempt, when exempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exempt: Option<String>,
}

/// A policy ready to evaluate.
#[derive(Debug)]
struct Compiled {
    checks: HashSet<&'static str>,
    rego: Vec<RegoPolicy>,
}

/// A configuration compiled for evaluation: check sets resolved, Rego compiled. Shared
/// read-only between request threads; a reload builds a new one.
#[derive(Debug)]
pub struct Engine {
    cfg: Config,
    compiled: Vec<Compiled>,
    opts: Options,
}

impl Engine {
    /// Compiles `cfg`; `rego[i]` are the custom checks of `cfg.policies[i]` (see [`load_rego`]).
    pub fn new(cfg: Config, mut rego: Vec<Vec<RegoPolicy>>) -> Engine {
        rego.resize_with(cfg.policies.len(), Vec::new);
        let compiled = cfg
            .policies
            .iter()
            .zip(rego)
            .map(|(p, rego)| Compiled {
                checks: palisade_posture::catalogue()
                    .iter()
                    .filter(|c| {
                        let by_preset = match p.preset {
                            Some(Preset::Baseline) => Framework::PssBaseline.includes(c),
                            Some(Preset::Restricted) => Framework::PssRestricted.includes(c),
                            None => false,
                        };
                        by_preset
                            || p.checks.iter().any(|id| match id.strip_suffix('*') {
                                Some(prefix) => c.id.starts_with(prefix),
                                None => c.id == id,
                            })
                    })
                    .map(|c| c.id)
                    .collect(),
                rego,
            })
            .collect();
        let opts = Options { trusted_registries: cfg.trusted_registries.clone(), ..Options::default() };
        Engine { cfg, compiled, opts }
    }

    /// The configuration this engine was built from.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Decides on a parsed review request.
    ///
    /// A request that cannot be evaluated ([`Request::invalid`]) is decided by
    /// [`Engine::invalid`]: denied when any policy denies, never allowed silently. The
    /// `ephemeralcontainers` subresource (`kubectl debug`) carries the whole Pod and is checked
    /// like it; other subresources (status, scale, exec, ...) carry no spec to check.
    pub fn decide_request(&self, req: &Request) -> Decision {
        if let Some(why) = &req.invalid {
            return self.invalid(why);
        }
        if !req.sub_resource.is_empty() && req.sub_resource != "ephemeralcontainers" {
            return Decision::allow(Verdict::Allowed, None);
        }
        match (req.operation, &req.object) {
            (Some(op), Some(o)) => self.decide(o, op, &req.user, &req.groups),
            (Some(_), None) => Decision::allow(Verdict::Allowed, None),
            // parse_review marks a request without a known operation invalid; never allow one
            (None, _) => self.invalid("request.operation is missing"),
        }
    }

    /// The decision on a request or object that cannot be evaluated: one violation
    /// (`PAL-ADM-INVALID`) under the strictest policy, so a deny policy denies with the reason,
    /// a warn policy warns and an audit policy records it.
    pub fn invalid(&self, why: &str) -> Decision {
        let Some(p) = self.cfg.policies.iter().max_by_key(|p| p.action) else {
            return Decision::allow(Verdict::Allowed, None);
        };
        let v = Violation {
            policy: p.name.clone(),
            action: p.action,
            check_id: INVALID_CHECK.into(),
            path: "/request".into(),
            message: format!("the request cannot be evaluated: {why}"),
            remediation: "send a well-typed object of a Kubernetes kind".into(),
        };
        Decision {
            allowed: p.action != Action::Deny,
            verdict: match p.action {
                Action::Deny => Verdict::Denied,
                Action::Warn => Verdict::Warned,
                Action::Audit => Verdict::Allowed,
            },
            violations: vec![v],
            exempt: None,
        }
    }

    /// Decides on an object (as the webhook would for a CREATE/UPDATE by `user` in `groups`).
    pub fn decide(&self, object: &Value, operation: Operation, user: &str, groups: &[String]) -> Decision {
        let cfg = &self.cfg;
        if !operation.writes_object() {
            return Decision::allow(Verdict::Allowed, None);
        }
        if !object.is_object() {
            return self.invalid(&format!("the object is {}, not an object", type_name(object)));
        }
        let problems = object_problems(object);
        if !problems.is_empty() {
            return self.invalid(&problems.join("; "));
        }
        let Some(obj) = Object::from_value(object.clone(), Origin { file: "admission".into(), line: 0 }) else {
            return self.invalid("the object has no kind");
        };
        if name_matches(&cfg.exemptions.namespaces, &obj.namespace) {
            return Decision::allow(Verdict::Exempt, Some(format!("namespace {} is exempt", obj.namespace)));
        }
        if cfg.exemptions.users.iter().any(|u| u == user) {
            return Decision::allow(Verdict::Exempt, Some(format!("user {user} is exempt")));
        }
        if let Some(g) = groups.iter().find(|g| cfg.exemptions.groups.contains(g)) {
            return Decision::allow(Verdict::Exempt, Some(format!("group {g} is exempt")));
        }
        let labels = obj.labels();
        let in_scope: Vec<bool> = cfg
            .policies
            .iter()
            .map(|p| {
                (p.namespaces.is_empty() || name_matches(&p.namespaces, &obj.namespace))
                    && !name_matches(&p.excluded_namespaces, &obj.namespace)
                    && p.object_selector.matches(&labels)
            })
            .collect();
        let mut violations = Vec::new();
        if !in_scope.iter().any(|x| *x) {
            return Decision { allowed: true, verdict: Verdict::Allowed, violations, exempt: None };
        }
        let findings = palisade_posture::evaluate_object(&obj, &Context::default(), &self.opts);
        for ((p, c), _) in cfg.policies.iter().zip(&self.compiled).zip(&in_scope).filter(|(_, s)| **s) {
            for f in findings.iter().filter(|f| c.checks.contains(f.check_id.as_str())) {
                violations.push(Violation::of(p, f));
            }
            for r in c.rego.iter().filter(|r| r.applies_to(&obj)) {
                match r.evaluate(&obj) {
                    Ok(fs) => violations.extend(fs.iter().map(|f| Violation::of(p, f))),
                    // A broken custom policy must not block the cluster: report, do not deny.
                    Err(e) => tracing::warn!(policy = %p.name, rego = %r.id, error = %e, "rego evaluation failed"),
                }
            }
        }
        let deny = violations.iter().any(|v| v.action == Action::Deny);
        let warn = violations.iter().any(|v| v.action == Action::Warn);
        let violations = aggregate(violations);
        Decision {
            allowed: !deny,
            verdict: if deny {
                Verdict::Denied
            } else if warn {
                Verdict::Warned
            } else {
                Verdict::Allowed
            },
            violations,
            exempt: None,
        }
    }
}

/// The check ID of a request that cannot be evaluated.
pub const INVALID_CHECK: &str = "PAL-ADM-INVALID";

/// Bounds a decision: at most [`MAX_SAME_CHECK`] violations per (policy, check) — the last one
/// kept stands for all the others ("… and in 5,998 more places") — and at most
/// [`MAX_VIOLATIONS`] in all, the strictest first.
fn aggregate(violations: Vec<Violation>) -> Vec<Violation> {
    let mut groups: Vec<((String, String), Vec<Violation>, usize)> = Vec::new();
    let mut index: std::collections::HashMap<(String, String), usize> = std::collections::HashMap::new();
    for v in violations {
        let key = (v.policy.clone(), v.check_id.clone());
        let i = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new(), 0));
            groups.len() - 1
        });
        let g = &mut groups[i];
        if g.1.len() < MAX_SAME_CHECK {
            g.1.push(v);
        } else {
            g.2 += 1;
        }
    }
    let mut out: Vec<Violation> = Vec::new();
    for (_, mut kept, more) in groups {
        if more > 0 {
            if let Some(last) = kept.last_mut() {
                last.message = format!("{} (and in {} more places)", last.message, thousands(more));
            }
        }
        out.extend(kept);
    }
    if out.len() > MAX_VIOLATIONS {
        out.sort_by_key(|v| std::cmp::Reverse(v.action));
        let dropped = out.split_off(MAX_VIOLATIONS - 1);
        let action = dropped.iter().map(|v| v.action).max().unwrap_or_default();
        let first = &dropped[0];
        out.push(Violation {
            policy: first.policy.clone(),
            action,
            check_id: first.check_id.clone(),
            path: first.path.clone(),
            message: format!(
                "{} violations more (not listed), starting with: {}",
                thousands(dropped.len()),
                first.message
            ),
            remediation: first.remediation.clone(),
        });
    }
    out
}

fn thousands(n: usize) -> String {
    let d = n.to_string();
    let mut s = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            s.push(',');
        }
        s.push(c);
    }
    s
}

/// `s` cut to at most `max` bytes at a character boundary, marked when cut.
fn truncate_msg(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max.saturating_sub(16);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str(" … (truncated)");
    }
    s
}

impl Violation {
    fn of(p: &Policy, f: &palisade_posture::Finding) -> Violation {
        Violation {
            policy: p.name.clone(),
            action: p.action,
            check_id: f.check_id.clone(),
            path: f.path.clone(),
            message: f.message.clone(),
            remediation: f.remediation.clone(),
        }
    }
}

impl Decision {
    fn allow(verdict: Verdict, exempt: Option<String>) -> Decision {
        Decision { allowed: true, verdict, violations: Vec::new(), exempt }
    }
}

/// Loads the Rego of every policy of `cfg`, resolving relative paths against `base` (the
/// configuration file's directory). The result goes to [`Engine::new`].
pub fn load_rego(cfg: &Config, base: &std::path::Path) -> Result<Vec<Vec<RegoPolicy>>, AdmissionError> {
    cfg.policies
        .iter()
        .map(|p| {
            let paths: Vec<PathBuf> =
                p.rego.iter().map(|r| if r.is_absolute() { r.clone() } else { base.join(r) }).collect();
            palisade_posture::rego::load_paths(&paths)
                .map_err(|e| AdmissionError::Config(format!("policy {:?}: {e}", p.name)))
        })
        .collect()
}

/// Decide on an object with a configuration that has no custom Rego (convenience for one-off
/// decisions; a server builds one [`Engine`] and reuses it).
pub fn decide(object: &Value, operation: Operation, user: &str, groups: &[String], cfg: &Config) -> Decision {
    Engine::new(cfg.clone(), Vec::new()).decide(object, operation, user, groups)
}

/// The AdmissionReview response for `req` and `d`, in the request's API version.
pub fn respond(req: &Request, d: &Decision) -> Value {
    let mut response = json!({"uid": req.uid, "allowed": d.allowed});
    let denied: Vec<&Violation> = d.violations.iter().filter(|v| v.action == Action::Deny).collect();
    if !d.allowed {
        let parts: Vec<String> = denied
            .iter()
            .map(|v| format!("[{}] {}: {} (field {}). Fix: {}", v.policy, v.check_id, v.message, v.path, v.remediation))
            .collect();
        let message = truncate_msg(format!("denied by Palisade: {}", parts.join("; ")), MAX_MESSAGE_BYTES);
        response["status"] = json!({"code": 403, "reason": "Forbidden", "message": message});
    }
    // one warning per finding, and none for what is already denied
    let mut warnings: Vec<String> = Vec::new();
    for v in d.violations.iter().filter(|v| v.action == Action::Warn) {
        if denied.iter().any(|x| x.check_id == v.check_id && x.path == v.path) {
            continue;
        }
        let w = format!("[{}] {}: {}. Fix: {}", v.policy, v.check_id, v.message, v.remediation);
        if warnings.len() >= MAX_WARNINGS {
            break;
        }
        if !warnings.contains(&w) {
            warnings.push(truncate_msg(w, MAX_MESSAGE_BYTES / MAX_WARNINGS));
        }
    }
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
    let mut annotations = serde_json::Map::new();
    annotations.insert("palisade.dev/verdict".into(), json!(d.verdict));
    if !d.violations.is_empty() {
        let mut ids: Vec<String> = d.violations.iter().map(|v| format!("{}:{}", v.policy, v.check_id)).collect();
        ids.dedup();
        annotations.insert("palisade.dev/violations".into(), json!(truncate_msg(ids.join(","), MAX_MESSAGE_BYTES)));
    }
    if req.dry_run {
        annotations.insert("palisade.dev/dry-run".into(), json!("true"));
    }
    response["auditAnnotations"] = Value::Object(annotations);
    json!({"apiVersion": req.api_version, "kind": "AdmissionReview", "response": response})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(api: &str, ns: &str, user: &str, object: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": api, "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
                "requestResource": {"group": "", "version": "v1", "resource": "pods"},
                "name": "web", "namespace": ns, "operation": "CREATE",
                "userInfo": {"username": user, "groups": ["system:authenticated"]},
                "object": object, "oldObject": null, "dryRun": false,
                "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
            }
        }))
        .unwrap_or_default()
    }

    fn pod(ns: &str, privileged: bool) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": ns},
               "spec": {"containers": [{"name": "app", "image": "nginx:1.25", "securityContext": {"privileged": privileged}}]}})
    }

    fn raw_review(request: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}))
            .unwrap_or_default()
    }

    #[test]
    fn ephemeral_containers_are_evaluated() {
        let engine = Engine::new(Config::preset(Preset::Baseline, Action::Deny), Vec::new());
        // what `kubectl debug --profile=sysadmin` sends: UPDATE pods/ephemeralcontainers
        let mut pod = pod("shop", false);
        pod["spec"]["ephemeralContainers"] =
            json!([{"name": "debugger", "image": "busybox:1.36", "securityContext": {"privileged": true}}]);
        let body = raw_review(json!({"uid": "e1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "shop", "operation": "UPDATE", "subResource": "ephemeralcontainers",
            "userInfo": {"username": "mallory"}, "object": pod}));
        let req = parse_review(&body).unwrap_or_else(|e| panic!("{e}"));
        let d = engine.decide_request(&req);
        assert!(!d.allowed, "{d:?}");
        assert!(
            d.violations.iter().any(|v| v.path == "/spec/ephemeralContainers/0/securityContext/privileged"),
            "{d:?}"
        );
        // other subresources still carry nothing to check
        let body = raw_review(json!({"uid": "s1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "shop", "operation": "UPDATE", "subResource": "status", "object": pod}));
        assert!(engine.decide_request(&parse_review(&body).unwrap_or_else(|e| panic!("{e}"))).allowed);
    }

    #[test]
    fn requests_that_cannot_be_evaluated_are_denied_with_the_reason() {
        let deny = Engine::new(Config::preset(Preset::Baseline, Action::Deny), Vec::new());
        let warn = Engine::new(Config::preset(Preset::Baseline, Action::Warn), Vec::new());
        let kind = json!({"group": "", "version": "v1", "kind": "Pod"});
        let mut string_bool = pod("shop", false);
        string_bool["spec"]["containers"][0]["securityContext"]["privileged"] = json!("true");
        let mut kindless = pod("shop", true);
        kindless.as_object_mut().map(|o| o.remove("kind"));
        let cases = [
            (
                "object not an object",
                json!({"uid": "1", "kind": kind, "operation": "CREATE", "object": "privileged"}),
                "not an object",
            ),
            (
                "object without kind",
                json!({"uid": "2", "kind": kind, "operation": "CREATE", "object": kindless}),
                "no kind",
            ),
            (
                "no request kind",
                json!({"uid": "3", "operation": "CREATE", "object": pod("shop", true)}),
                "kind.kind is missing",
            ),
            (
                "unknown operation",
                json!({"uid": "4", "kind": kind, "operation": "MERGE", "object": pod("shop", true)}),
                "MERGE",
            ),
            (
                "string for a boolean",
                json!({"uid": "5", "kind": kind, "operation": "CREATE", "object": string_bool}),
                "privileged is a string",
            ),
            (
                "operation not a string",
                json!({"uid": "6", "kind": kind, "operation": 1, "object": pod("shop", true)}),
                "operation is a number",
            ),
            (
                "dryRun not a boolean",
                json!({"uid": "7", "kind": kind, "operation": "CREATE", "dryRun": "yes", "object": pod("shop", false)}),
                "dryRun",
            ),
            (
                "containers not a list",
                json!({"uid": "8", "kind": kind, "operation": "CREATE", "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": {"privileged": true}}}}),
                "containers is an object",
            ),
            ("CREATE without object", json!({"uid": "9", "kind": kind, "operation": "CREATE"}), "object is missing"),
        ];
        for (what, request, reason) in cases {
            let req = parse_review(&raw_review(request)).unwrap_or_else(|e| panic!("{what}: {e}"));
            let d = deny.decide_request(&req);
            assert!(!d.allowed, "{what}: {d:?}");
            let resp = respond(&req, &d);
            let msg = resp["response"]["status"]["message"].as_str().unwrap_or("");
            assert!(msg.contains(INVALID_CHECK) && msg.contains(reason), "{what}: {msg}");
            // a warn policy warns about it instead of allowing silently
            let d = warn.decide_request(&req);
            assert!(d.allowed && d.verdict == "warned" && d.violations[0].check_id == INVALID_CHECK, "{what}: {d:?}");
        }
        // a well-formed DELETE without an object is still simply allowed
        let req = parse_review(&raw_review(json!({"uid": "d", "kind": kind, "operation": "DELETE", "object": null})))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(req.invalid.is_none() && deny.decide_request(&req).allowed);
    }

    #[test]
    fn unknown_selector_operators_fail_where_the_selector_is_loaded() {
        // before: an unknown operator was kept as a string and matched nothing
        let yaml = |op: &str| {
            format!("policies:\n- name: scoped\n  preset: baseline\n  objectSelector:\n    matchExpressions: [{{key: team, operator: {op}, values: [a]}}]\n")
        };
        let err = Config::from_yaml(&yaml("Within")).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("Within") && err.contains("NotIn"), "{err}");
        assert!(Config::from_yaml(&yaml("in")).is_err(), "operators are case-sensitive, as in Kubernetes");
        let cfg = Config::from_yaml(&yaml("NotIn")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.policies[0].object_selector.match_expressions[0].operator, LabelOperator::NotIn);
        // parsed once, matched by the enum
        assert!(cfg.policies[0].object_selector.matches(&[("team", "b")]));
        assert!(!cfg.policies[0].object_selector.matches(&[("team", "a")]));
        for op in LabelOperator::ALL {
            assert_eq!(op.as_str().parse::<LabelOperator>().ok(), Some(op));
            assert_eq!(serde_json::to_value(op).unwrap_or_default(), op.as_str());
        }
        assert!("Within".parse::<LabelOperator>().is_err_and(|e| e.to_string().contains("\"Within\"")));
        // a value-count mismatch is still reported with the operator's name
        let err = Config::from_yaml("policies:\n- name: p\n  preset: baseline\n  objectSelector:\n    matchExpressions: [{key: team, operator: Exists, values: [a]}]\n")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("operator \"Exists\" with values"), "{err}");
    }

    #[test]
    fn operations_are_parsed_once_and_unknown_ones_are_errors() {
        for op in Operation::ALL {
            assert_eq!(op.as_str().parse::<Operation>(), Ok(op));
            assert_eq!(Operation::try_from(op.as_str()), Ok(op));
            assert_eq!(serde_json::to_value(op).unwrap_or_default(), op.as_str());
            assert!(OPERATIONS.contains(&op.as_str()));
        }
        assert_eq!(OPERATIONS.len(), Operation::ALL.len());
        for bad in ["MERGE", "create", "", "CREATE "] {
            let e = bad.parse::<Operation>().map(|_| ()).unwrap_err();
            assert!(e.to_string().contains("is not CREATE, UPDATE, DELETE or CONNECT"), "{bad:?}: {e}");
        }
        // a review's operation is typed: known ones parsed, an unknown or empty one invalid
        let kind = json!({"group": "", "version": "v1", "kind": "Pod"});
        let req = parse_review(&raw_review(
            json!({"uid": "u", "kind": kind, "operation": "UPDATE", "object": pod("shop", false)}),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((req.operation, req.invalid), (Some(Operation::Update), None));
        let deny = Engine::new(Config::preset(Preset::Baseline, Action::Deny), Vec::new());
        for bad in ["MERGE", ""] {
            let req = parse_review(&raw_review(
                json!({"uid": "u", "kind": kind, "operation": bad, "object": pod("shop", false)}),
            ))
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(req.operation, None);
            assert!(req.invalid.as_deref().is_some_and(|w| w.contains(&format!("{bad:?} is not CREATE"))), "{req:?}");
            assert!(!deny.decide_request(&req).allowed, "{bad:?}");
        }
        // a hand-built request without an operation is never allowed silently
        let mut req = parse_review(&review("admission.k8s.io/v1", "shop", "alice", pod("shop", false)))
            .unwrap_or_else(|e| panic!("{e}"));
        req.operation = None;
        assert_eq!(deny.decide_request(&req).verdict, Verdict::Denied);
    }

    #[test]
    fn verdicts_serialise_as_before() {
        let names = [
            (Verdict::Allowed, "allowed"),
            (Verdict::Warned, "warned"),
            (Verdict::Denied, "denied"),
            (Verdict::Exempt, "exempt"),
        ];
        for (v, name) in names {
            assert_eq!(serde_json::to_value(v).unwrap_or_default(), name);
            assert_eq!(v.to_string(), name);
            assert!(v == name);
        }
        let cfg = Config::preset(Preset::Baseline, Action::Deny);
        let req = parse_review(&review("admission.k8s.io/v1", "shop", "alice", pod("shop", true)))
            .unwrap_or_else(|e| panic!("{e}"));
        let d = decide(req.object.as_ref().unwrap_or(&Value::Null), Operation::Create, "alice", &[], &cfg);
        assert_eq!(serde_json::to_value(&d).unwrap_or_default()["verdict"], "denied");
        assert_eq!(respond(&req, &d)["response"]["auditAnnotations"]["palisade.dev/verdict"], "denied");
    }

    #[test]
    fn huge_pods_give_bounded_decisions_and_responses() {
        let engine = Engine::new(Config::preset(Preset::Restricted, Action::Deny), Vec::new());
        let containers: Vec<Value> = (0..MAX_CONTAINERS)
            .map(|i| json!({"name": format!("c{i}"), "image": "nginx:1.25", "securityContext": {"privileged": true}}))
            .collect();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big", "namespace": "shop"},
            "spec": {"containers": containers}});
        let body = raw_review(json!({"uid": "big", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "shop", "operation": "CREATE", "object": pod}));
        let req = parse_review(&body).unwrap_or_else(|e| panic!("{e}"));
        let d = engine.decide_request(&req);
        assert!(!d.allowed);
        assert!(d.violations.len() <= MAX_VIOLATIONS, "{}", d.violations.len());
        let privileged: Vec<&Violation> = d.violations.iter().filter(|v| v.check_id == "PAL-K8S-001").collect();
        assert_eq!(privileged.len(), MAX_SAME_CHECK);
        assert!(privileged[MAX_SAME_CHECK - 1].message.contains("and in 995 more places"), "{:?}", privileged);
        let out = serde_json::to_vec(&respond(&req, &d)).unwrap_or_default();
        assert!(out.len() < 4 * MAX_MESSAGE_BYTES, "response of {} bytes", out.len());
        assert!(body.len() > 10 * out.len(), "{} vs {}", body.len(), out.len());
        // 6,000 containers: more than is evaluated; denied with the reason, not evaluated
        let containers: Vec<Value> =
            (0..6000).map(|i| json!({"name": format!("c{i}"), "image": "nginx:1.25"})).collect();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big", "namespace": "shop"},
            "spec": {"containers": containers}});
        let d = engine.decide(&pod, Operation::Create, "u", &[]);
        assert!(!d.allowed && d.violations.len() == 1 && d.violations[0].message.contains("6,000 containers"), "{d:?}");
    }

    #[test]
    fn denies_privileged_pods_and_names_the_check() {
        let cfg = Config::preset(Preset::Baseline, Action::Deny);
        let req = parse_review(&review("admission.k8s.io/v1", "shop", "alice", pod("shop", true)))
            .unwrap_or_else(|e| panic!("{e}"));
        let d = decide(
            req.object.as_ref().unwrap_or(&Value::Null),
            req.operation.unwrap_or_else(|| panic!("no operation")),
            &req.user,
            &req.groups,
            &cfg,
        );
        assert_eq!(d.verdict, "denied");
        let resp = respond(&req, &d);
        assert_eq!(resp["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(resp["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(resp["response"]["allowed"], false);
        let msg = resp["response"]["status"]["message"].as_str().unwrap_or("");
        assert!(msg.contains("PAL-K8S-001") && msg.contains("/spec/containers/0/securityContext/privileged"), "{msg}");
        // A compliant pod is allowed under baseline.
        let d = decide(&pod("shop", false), Operation::Create, "alice", &[], &cfg);
        assert!(d.allowed && d.verdict == "allowed", "{d:?}");
    }

    #[test]
    fn warn_audit_exemptions_and_versions() {
        let warn = Config::preset(Preset::Baseline, Action::Warn);
        let req = parse_review(&review("admission.k8s.io/v1beta1", "shop", "alice", pod("shop", true)))
            .unwrap_or_else(|e| panic!("{e}"));
        let d = decide(req.object.as_ref().unwrap_or(&Value::Null), Operation::Create, "alice", &[], &warn);
        let resp = respond(&req, &d);
        assert_eq!(resp["apiVersion"], "admission.k8s.io/v1beta1", "answers in the request's version");
        assert_eq!(resp["response"]["allowed"], true);
        assert!(resp["response"]["warnings"][0].as_str().unwrap_or("").contains("PAL-K8S-001"));
        let audit = Config::preset(Preset::Baseline, Action::Audit);
        let d = decide(&pod("shop", true), Operation::Create, "alice", &[], &audit);
        assert!(d.allowed && d.verdict == "allowed" && !d.violations.is_empty());
        let deny = Config::preset(Preset::Baseline, Action::Deny);
        assert_eq!(decide(&pod("kube-system", true), Operation::Create, "alice", &[], &deny).verdict, "exempt");
        let mut cfg = deny.clone();
        cfg.exemptions.users.push("ci-bot".into());
        assert_eq!(decide(&pod("shop", true), Operation::Create, "ci-bot", &[], &cfg).verdict, "exempt");
        assert_eq!(decide(&pod("shop", true), Operation::Delete, "alice", &[], &deny).verdict, "allowed");
        // Scoping by namespace.
        let mut scoped = deny.clone();
        scoped.policies[0].namespaces = vec!["prod".into()];
        assert!(decide(&pod("shop", true), Operation::Create, "alice", &[], &scoped).allowed);
        assert!(!decide(&pod("prod", true), Operation::Create, "alice", &[], &scoped).allowed);
    }

    #[test]
    fn per_policy_rego_denies_with_its_message() {
        let dir = std::env::temp_dir().join(format!("palisade-adm-rego-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        std::fs::write(
            dir.join("team-label.rego"),
            "package palisade.teamlabel\nviolation[{\"msg\": msg}] {\n  not input.review.object.metadata.labels.team\n  msg := \"every workload needs a team label\"\n}\n",
        )
        .ok();
        let cfg = Config::from_yaml("policies:\n- name: ownership\n  rego: [team-label.rego]\n  action: deny\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let rego = load_rego(&cfg, &dir).unwrap_or_else(|e| panic!("{e}"));
        let engine = Engine::new(cfg, rego);
        let d = engine.decide(&pod("shop", false), Operation::Create, "alice", &[]);
        assert!(!d.allowed, "{d:?}");
        assert!(d.violations.iter().any(|v| v.policy == "ownership" && v.message.contains("team label")), "{d:?}");
        let mut labelled = pod("shop", false);
        labelled["metadata"]["labels"] = json!({"team": "payments"});
        assert!(engine.decide(&labelled, Operation::Create, "alice", &[]).allowed);
        // a missing file is a configuration error naming the policy
        let bad = Config::from_yaml("policies:\n- name: gone\n  rego: [nope.rego]\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(load_rego(&bad, &dir).is_err_and(|e| e.to_string().contains("gone")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn workloads_through_pod_templates_and_bad_input() {
        let deny = Config::preset(Preset::Restricted, Action::Deny);
        let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "shop"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}});
        let d = decide(&dep, Operation::Create, "alice", &[], &deny);
        assert!(!d.allowed, "restricted requires runAsNonRoot etc.");
        assert!(d.violations.iter().all(|v| v.path.starts_with("/spec/template/spec")), "{d:?}");
        for bad in [
            &b"not json"[..],
            b"{}",
            br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v2","request":{"uid":"x"}}"#,
            br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{}}"#,
        ] {
            assert!(parse_review(bad).is_err());
        }
        // Junk objects never panic.
        for junk in
            [json!({"kind": "Pod"}), json!({"kind": "Pod", "metadata": {"name": "x"}, "spec": "nope"}), json!(42)]
        {
            let _ = decide(&junk, Operation::Create, "u", &[], &deny);
        }
        assert!(Config::from_yaml("policies: []").is_err());
        assert!(Config::from_yaml("policies:\n- name: x\n  checks: [PAL-NOPE]\n").is_err());
        assert!(Config::from_yaml("policies:\n- name: x\n  preset: baseline\n  action: deny\n  bogus: 1\n").is_err());
        assert!(Config::from_yaml("policies:\n- name: x\n  preset: restricted\n  action: warn\n  namespaces: [prod]\nexemptions:\n  users: [ci]\n").is_ok());
    }
}
