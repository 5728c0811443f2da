//! A Kubernetes object as read from a manifest, a dump or the API.

use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// Where an object came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Origin {
    /// File path (or `-` for stdin, or `api://<server>` for the live API).
    pub file: String,
    /// 1-based line where the object's document starts (0 when unknown).
    pub line: usize,
}

/// One Kubernetes object.
#[derive(Debug, Clone, Serialize)]
pub struct Object {
    /// `apiVersion`, e.g. `apps/v1`.
    pub api_version: String,
    /// `kind`, e.g. `Deployment`.
    pub kind: String,
    /// `metadata.namespace` (empty for cluster-scoped objects and manifests without one).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The whole object.
    #[serde(skip)]
    pub value: Arc<Value>,
    /// Where it came from.
    pub origin: Origin,
}

impl Object {
    /// Build from a JSON value; `None` when it lacks `kind` or `metadata.name`
    /// (generateName alone is accepted as the name).
    pub fn from_value(value: Value, origin: Origin) -> Option<Object> {
        let kind = value.get("kind")?.as_str()?.to_string();
        let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string();
        let meta = value.get("metadata");
        let name = meta
            .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .or_else(|| {
                // Component configuration files (KubeletConfiguration, KubeProxyConfiguration, ...)
                // carry no metadata.name: name them after their file.
                kind.ends_with("Configuration").then(|| {
                    std::path::Path::new(&origin.file)
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| kind.to_ascii_lowercase())
                })
            })?;
        let namespace = meta.and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or("").to_string();
        Some(Object { api_version, kind, namespace, name, value: Arc::new(value), origin })
    }

    /// `kind/namespace/name` (or `kind/name` when cluster-scoped).
    pub fn id(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.kind, self.name)
        } else {
            format!("{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }

    /// `metadata.labels`.
    pub fn labels(&self) -> Vec<(&str, &str)> {
        self.value
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v))).collect())
            .unwrap_or_default()
    }

    /// `metadata.annotations[key]`.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.value.pointer("/metadata/annotations").and_then(|a| a.get(key)).and_then(Value::as_str)
    }

    /// The pod spec of a workload and its JSON pointer: Pod → `/spec`, Deployment/StatefulSet/
    /// DaemonSet/ReplicaSet/ReplicationController/Job → `/spec/template/spec`, CronJob →
    /// `/spec/jobTemplate/spec/template/spec`. `None` for other kinds.
    pub fn pod_spec(&self) -> Option<(&Value, &'static str)> {
        let ptr = match self.kind.as_str() {
            "Pod" => "/spec",
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ReplicationController" | "Job" => {
                "/spec/template/spec"
            }
            "CronJob" => "/spec/jobTemplate/spec/template/spec",
            "PodTemplate" => "/template/spec",
            _ => return None,
        };
        self.value.pointer(ptr).filter(|v| v.is_object()).map(|v| (v, ptr))
    }

    /// The pod template metadata (labels/annotations of the pods a workload creates).
    pub fn pod_metadata(&self) -> Option<&Value> {
        let ptr = match self.kind.as_str() {
            "Pod" => "/metadata",
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ReplicationController" | "Job" => {
                "/spec/template/metadata"
            }
            "CronJob" => "/spec/jobTemplate/spec/template/metadata",
            _ => return None,
        };
        self.value.pointer(ptr)
    }
}

/// Containers of a pod spec: `(pointer suffix, container)` for `containers`, `initContainers` and
/// `ephemeralContainers`, e.g. `("/containers/0", {...})`.
pub fn containers(spec: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(list) = spec.get(field).and_then(Value::as_array) {
            for (i, c) in list.iter().enumerate() {
                if c.is_object() {
                    out.push((format!("/{field}/{i}"), c));
                }
            }
        }
    }
    out
}
