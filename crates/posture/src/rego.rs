//! Custom checks written in Rego, with Gatekeeper's ConstraintTemplate input shape.
//!
//! The policy sees `input.review.object` (the object), `input.review.kind`
//! (`{group, version, kind}`), `input.review.name`, `input.review.namespace`,
//! `input.review.operation` (`"CREATE"`) and `input.parameters` (the policy's parameters), and
//! reports through `violation[{"msg": msg}]` (optionally with `details`), so templates from the
//! Gatekeeper library run unchanged. Rego v0 syntax is the default, as in Gatekeeper;
//! `import rego.v1` switches a module to v1.

use crate::{Finding, ObjectRef, Severity};
use palisade_k8s::Object;
use regorus::Engine;
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::Duration;

/// Errors compiling or reading a Rego policy.
#[derive(Debug, thiserror::Error)]
pub enum RegoError {
    /// The Rego does not parse or compile.
    #[error("rego policy {id}: {message}")]
    Compile {
        /// Policy id.
        id: String,
        /// What the compiler said.
        message: String,
    },
    /// A ConstraintTemplate or Constraint is missing something.
    #[error("constraint template: {0}")]
    Template(String),
    /// A policy file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A policy in a file failed to compile.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The compile error.
        source: Box<RegoError>,
    },
}

/// Loads custom checks from files or directories (searched recursively, in name order): `*.rego`
/// modules (the id is the file stem) and Gatekeeper ConstraintTemplates with their Constraints
/// (`*.yaml`, `*.yml`, `*.json`; one policy per Constraint, or per template without one).
pub fn load_paths(paths: &[std::path::PathBuf]) -> Result<Vec<RegoPolicy>, RegoError> {
    let io = |p: &std::path::Path, e: std::io::Error| RegoError::Io { path: p.display().to_string(), source: e };
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).map_err(|e| io(&d, e))?.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if matches!(
                        path.extension().and_then(|x| x.to_str()),
                        Some("rego" | "yaml" | "yml" | "json")
                    ) {
                        files.push(path);
                    }
                }
            }
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    let mut out = Vec::new();
    let mut templates: Vec<Value> = Vec::new();
    let mut constraints: Vec<Value> = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| io(f, e))?;
        let in_file = |e: RegoError| RegoError::File { path: f.display().to_string(), source: Box::new(e) };
        if f.extension().and_then(|x| x.to_str()) == Some("rego") {
            let id = f.file_stem().and_then(|s| s.to_str()).unwrap_or("custom").to_string();
            out.push(RegoPolicy::new(&id, &id, Severity::Medium, &text, &[], Value::Null, vec![]).map_err(in_file)?);
            continue;
        }
        let mut loaded = palisade_k8s::load::Loaded::default();
        palisade_k8s::load::load_bytes(&f.display().to_string(), text.as_bytes(), &mut loaded);
        for o in loaded.objects {
            if o.kind == "ConstraintTemplate" {
                templates.push((*o.value).clone());
            } else if o.api_version.starts_with("constraints.gatekeeper.sh/") {
                constraints.push((*o.value).clone());
            }
        }
    }
    for t in &templates {
        let kind = t.pointer("/spec/crd/spec/names/kind").and_then(Value::as_str).unwrap_or("");
        let matching: Vec<&Value> =
            constraints.iter().filter(|c| c.get("kind").and_then(Value::as_str) == Some(kind)).collect();
        if matching.is_empty() {
            out.push(RegoPolicy::from_constraint_template(t, None, Severity::Medium)?);
        }
        for c in matching {
            out.push(RegoPolicy::from_constraint_template(t, Some(c), Severity::Medium)?);
        }
    }
    Ok(out)
}

/// A compiled custom check.
#[derive(Debug)]
pub struct RegoPolicy {
    /// Check id reported in findings (e.g. `K8sPSPPrivilegedContainer`).
    pub id: String,
    /// Title.
    pub title: String,
    /// Severity of its findings.
    pub severity: Severity,
    /// Kinds it applies to (empty: every kind).
    pub kinds: Vec<String>,
    /// `input.parameters`.
    pub parameters: Value,
    /// Remediation text put on findings.
    pub remediation: String,
    /// Present workload controllers to the policy as the Pod they would create (like Gatekeeper's
    /// expansion), so Pod-only templates also see Deployments, Jobs, ... .
    pub expand_workloads: bool,
    rule: String,
    engine: Mutex<Engine>,
}

impl Clone for RegoPolicy {
    fn clone(&self) -> Self {
        let engine = match self.engine.lock() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        RegoPolicy {
            id: self.id.clone(),
            title: self.title.clone(),
            severity: self.severity,
            kinds: self.kinds.clone(),
            parameters: self.parameters.clone(),
            remediation: self.remediation.clone(),
            expand_workloads: self.expand_workloads,
            rule: self.rule.clone(),
            engine: Mutex::new(engine),
        }
    }
}

/// Wall-clock budget of one evaluation.
const EVAL_LIMIT: Duration = Duration::from_secs(2);

impl RegoPolicy {
    /// Compile a policy: `rego` is the main module (it must define `violation`), `libs` any
    /// modules it imports (Gatekeeper's `libs`).
    pub fn new(
        id: &str,
        title: &str,
        severity: Severity,
        rego: &str,
        libs: &[String],
        parameters: Value,
        kinds: Vec<String>,
    ) -> Result<RegoPolicy, RegoError> {
        let err = |m: String| RegoError::Compile { id: id.to_string(), message: m };
        let mut engine = Engine::new();
        engine.set_rego_v0(true);
        if let Ok(n) = std::num::NonZeroU32::try_from(1000u32) {
            engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
                limit: EVAL_LIMIT,
                check_interval: n,
            });
        }
        for (i, lib) in libs.iter().enumerate() {
            engine.add_policy(format!("{id}-lib{i}.rego"), lib.clone()).map_err(|e| err(e.to_string()))?;
        }
        let package = engine.add_policy(format!("{id}.rego"), rego.to_string()).map_err(|e| err(e.to_string()))?;
        let package = if package.starts_with("data.") { package } else { format!("data.{package}") };
        let rule = format!("{package}.violation");
        // Evaluate once on an empty review: prepares the engine and surfaces semantic errors now.
        engine.set_input(regorus::Value::from(json!({"review": {"object": {}}, "parameters": parameters})));
        if let Err(e) = engine.eval_rule(rule.clone()) {
            let msg = e.to_string();
            if !msg.contains("undefined") {
                return Err(err(msg));
            }
        }
        Ok(RegoPolicy {
            id: id.to_string(),
            title: title.to_string(),
            severity,
            kinds,
            parameters,
            remediation: title.to_string(),
            expand_workloads: false,
            rule,
            engine: Mutex::new(engine),
        })
    }

    /// Build a policy from a Gatekeeper ConstraintTemplate (its `spec.targets[0].rego` and
    /// `libs`) and optionally a Constraint of that template (its `spec.parameters` and
    /// `spec.match.kinds[].kinds`). The id is the template's `spec.crd.spec.names.kind`.
    pub fn from_constraint_template(
        template: &Value,
        constraint: Option<&Value>,
        severity: Severity,
    ) -> Result<RegoPolicy, RegoError> {
        let target = template
            .pointer("/spec/targets/0")
            .ok_or_else(|| RegoError::Template("spec.targets[0] is missing".into()))?;
        let rego = target
            .get("rego")
            .and_then(Value::as_str)
            .ok_or_else(|| RegoError::Template("spec.targets[0].rego is missing".into()))?;
        let libs: Vec<String> = target
            .get("libs")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|l| l.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let id = template
            .pointer("/spec/crd/spec/names/kind")
            .and_then(Value::as_str)
            .or_else(|| template.pointer("/metadata/name").and_then(Value::as_str))
            .ok_or_else(|| RegoError::Template("spec.crd.spec.names.kind is missing".into()))?;
        let title = template
            .pointer("/metadata/annotations/description")
            .and_then(Value::as_str)
            .or_else(|| template.pointer("/metadata/annotations/metadata.gatekeeper.sh~1title").and_then(Value::as_str))
            .unwrap_or(id);
        let parameters = constraint.and_then(|c| c.pointer("/spec/parameters")).cloned().unwrap_or(json!({}));
        let kinds: Vec<String> = constraint
            .and_then(|c| c.pointer("/spec/match/kinds").and_then(Value::as_array))
            .map(|ks| {
                ks.iter()
                    .flat_map(|k| k.get("kinds").and_then(Value::as_array).cloned().unwrap_or_default())
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .filter(|k| k != "*")
                    .collect()
            })
            .unwrap_or_default();
        let mut p = RegoPolicy::new(id, title, severity, rego, &libs, parameters, kinds)?;
        p.expand_workloads = true;
        Ok(p)
    }

    /// Whether the policy looks at this object.
    pub fn applies_to(&self, obj: &Object) -> bool {
        if self.kinds.is_empty() {
            return true;
        }
        let expanded = self.expand_workloads && obj.pod_spec().is_some();
        self.kinds.iter().any(|k| k == &obj.kind || (expanded && k == "Pod"))
    }

    fn review(&self, obj: &Object) -> Value {
        let (group, version) = match obj.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", obj.api_version.as_str()),
        };
        // A workload is shown as the Pod it creates unless the policy asked for its kind.
        let kind_listed = self.kinds.iter().any(|k| k == &obj.kind);
        let object = if self.expand_workloads && obj.kind != "Pod" && !kind_listed {
            match obj.pod_spec() {
                Some((spec, _)) => {
                    let mut meta = obj.pod_metadata().cloned().unwrap_or(json!({}));
                    if let Some(m) = meta.as_object_mut() {
                        m.insert("name".into(), json!(obj.name));
                        if !obj.namespace.is_empty() {
                            m.insert("namespace".into(), json!(obj.namespace));
                        }
                    }
                    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
                }
                None => (*obj.value).clone(),
            }
        } else {
            (*obj.value).clone()
        };
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or(&obj.kind).to_string();
        let (group, version) = if kind == obj.kind { (group, version) } else { ("", "v1") };
        json!({
            "review": {
                "kind": {"group": group, "version": version, "kind": kind},
                "name": obj.name,
                "namespace": obj.namespace,
                "operation": "CREATE",
                "object": object,
            },
            "parameters": self.parameters,
        })
    }

    /// Run the policy on one object.
    pub fn evaluate(&self, obj: &Object) -> Result<Vec<Finding>, String> {
        let input = self.review(obj);
        let result = {
            let mut engine = match self.engine.lock() {
                Ok(e) => e,
                Err(poisoned) => poisoned.into_inner(),
            };
            engine.set_input(regorus::Value::from(input));
            engine.eval_rule(self.rule.clone())
        };
        let value = match result {
            Ok(v) => v,
            Err(e) => {
                let msg = e.to_string();
                // An undefined `violation` set means no violation.
                return if msg.contains("undefined") { Ok(Vec::new()) } else { Err(msg) };
            }
        };
        if value == regorus::Value::Undefined {
            return Ok(Vec::new());
        }
        let text = value.to_json_str().map_err(|e| e.to_string())?;
        let json: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let items = match json {
            Value::Array(a) => a,
            Value::Null => Vec::new(),
            other => vec![other],
        };
        let objref = ObjectRef::of(obj);
        Ok(items
            .into_iter()
            .map(|v| {
                let message = match v.get("msg") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => v.to_string(),
                };
                let path = v
                    .pointer("/details/path")
                    .and_then(Value::as_str)
                    .filter(|p| p.starts_with('/'))
                    .map(str::to_string)
                    .unwrap_or_default();
                Finding {
                    check_id: self.id.clone(),
                    severity: self.severity,
                    object: objref.clone(),
                    path,
                    message,
                    remediation: self.remediation.clone(),
                    patch: None,
                }
            })
            .collect())
    }
}
