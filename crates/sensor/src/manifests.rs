//! The Kubernetes objects that deploy the sensor on every node (`palisade sensor manifests`):
//! a namespace of its own (the sensor is privileged, so it cannot share the webhook's
//! `restricted` namespace), a ServiceAccount with only the rights the pod responses need, the
//! node configuration, and a DaemonSet that tolerates every taint.
//!
//! Why privileged: loading BPF programs needs CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN (for
//! tracefs and iterators), killing needs CAP_KILL across containers, and reading runtime state
//! and `/proc/<pid>` of other containers needs the host PID namespace. The root filesystem is
//! still read-only and the host mounts are read-only except tracefs.

use serde_json::{json, Value};

/// What to render.
#[derive(Debug, Clone)]
pub struct SensorManifestOptions {
    /// Namespace (default `palisade-sensor`).
    pub namespace: String,
    /// Container image.
    pub image: String,
    /// Cluster name put on every event.
    pub cluster: String,
    /// `node.yaml` (drift policy and responses).
    pub node_config: String,
}

/// The default node configuration shipped in the ConfigMap.
pub const DEFAULT_NODE_CONFIG: &str = "\
# Palisade node sensor configuration.
drift:
  default: detect          # allow | detect | block
  rules: []
responses: []              # e.g. - {rules: [PAL-SEN-006], action: isolate}
";

/// Renders every object, in apply order.
pub fn render(o: &SensorManifestOptions) -> Vec<Value> {
    let ns = o.namespace.as_str();
    let name = "palisade-sensor";
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "palisade", "app.kubernetes.io/component": "node-sensor"});
    let host = |n: &str, path: &str| json!({"name": n, "hostPath": {"path": path}});
    let mount = |n: &str, path: &str, ro: bool| json!({"name": n, "mountPath": path, "readOnly": ro});
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "kubernetes.io/metadata.name": ns, "pod-security.kubernetes.io/enforce": "privileged"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns, "labels": labels}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name, "labels": labels},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "patch", "delete"]},
            {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", "create"]}
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("{name}-config"), "namespace": ns, "labels": labels},
            "data": {"node.yaml": o.node_config}}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": name,
                    "hostPID": true,
                    "priorityClassName": "system-node-critical",
                    "tolerations": [{"operator": "Exists"}],
                    "terminationGracePeriodSeconds": 10,
                    "containers": [{
                        "name": "sensor",
                        "image": o.image,
                        "imagePullPolicy": "IfNotPresent",
                        "args": ["sensor", "run", "--config", "/etc/palisade/node.yaml",
                                 "--metrics-listen", "0.0.0.0:9464",
                                 "--health-file", "/var/run/palisade/health.json"],
                        "env": [
                            {"name": "PALISADE_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                            {"name": "PALISADE_CLUSTER_NAME", "value": o.cluster},
                        ],
                        "ports": [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}],
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 30, "failureThreshold": 3},
                        // Defender's collector runs within 360m CPU / 296 MiB; the sensor idles
                        // under 1 % of a core and 64 MB (bench/sensor.sh)
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
                        "securityContext": {"privileged": true, "readOnlyRootFilesystem": true},
                        "volumeMounts": [
                            mount("config", "/etc/palisade", true),
                            mount("state", "/var/run/palisade", false),
                            mount("btf", "/sys/kernel/btf", true),
                            mount("tracefs", "/sys/kernel/tracing", false),
                            mount("cgroup", "/sys/fs/cgroup", true),
                            mount("run", "/run", true),
                            mount("containers", "/var/lib/containers", true),
                        ],
                    }],
                    "volumes": [
                        {"name": "config", "configMap": {"name": format!("{name}-config")}},
                        {"name": "state", "emptyDir": {}},
                        host("btf", "/sys/kernel/btf"),
                        host("tracefs", "/sys/kernel/tracing"),
                        host("cgroup", "/sys/fs/cgroup"),
                        host("run", "/run"),
                        host("containers", "/var/lib/containers"),
                    ],
                }
            }
        }}),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemonset_runs_everywhere_with_least_api_rights() {
        let objs = render(&SensorManifestOptions {
            namespace: "palisade-sensor".into(),
            image: "ghcr.io/palisade-sec/palisade:0.1.0".into(),
            cluster: "prod".into(),
            node_config: DEFAULT_NODE_CONFIG.into(),
        });
        let ds = objs.iter().find(|o| o["kind"] == "DaemonSet").cloned().unwrap_or_default();
        let spec = &ds["spec"]["template"]["spec"];
        assert_eq!(spec["hostPID"], true);
        assert_eq!(spec["tolerations"][0]["operator"], "Exists");
        let c = &spec["containers"][0];
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert!(c["volumeMounts"]
            .as_array()
            .is_some_and(|m| m.iter().any(|v| v["mountPath"] == "/sys/kernel/btf" && v["readOnly"] == true)));
        let role = objs.iter().find(|o| o["kind"] == "ClusterRole").cloned().unwrap_or_default();
        let verbs: Vec<&str> = role["rules"]
            .as_array()
            .map(|r| r.iter().flat_map(|x| x["verbs"].as_array().cloned().unwrap_or_default()).collect::<Vec<_>>())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str().map(|s| if s == "get" { "get" } else { "write" }))
            .collect();
        assert!(!verbs.is_empty());
        assert!(!role.to_string().contains("\"*\""), "no wildcards in the sensor's rights");
        assert!(!role.to_string().contains("secrets"), "the sensor never reads secrets");
        let ns = objs.iter().find(|o| o["kind"] == "Namespace").cloned().unwrap_or_default();
        assert_eq!(ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "privileged");
        assert!(crate::node::NodeConfig::from_yaml(DEFAULT_NODE_CONFIG).is_ok());
    }
}
