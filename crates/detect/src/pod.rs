//! The pod spec inside a request: a Pod, a workload's pod template (Deployment, ReplicaSet,
//! StatefulSet, DaemonSet, Job, ReplicationController, PodTemplate) or a CronJob's job template,
//! normalised into [`PodInfo`] — rules see it as `ka.pod`.

use serde::Deserialize;

/// One container of a pod spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Container name.
    pub name: String,
    /// Image reference as written.
    pub image: String,
    /// `container`, `init` or `ephemeral`.
    pub kind: &'static str,
    /// `securityContext.privileged`.
    pub privileged: bool,
    /// `securityContext.allowPrivilegeEscalation` (None when unset).
    pub allow_privilege_escalation: Option<bool>,
    /// `securityContext.capabilities.add`.
    pub capabilities: Vec<String>,
    /// `securityContext.runAsUser` (container, else pod).
    pub run_as_user: Option<i64>,
    /// `command` followed by `args`.
    pub command: Vec<String>,
}

/// The security-relevant parts of a pod spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodInfo {
    /// All containers: regular, init and ephemeral.
    pub containers: Vec<ContainerInfo>,
    /// `hostNetwork`.
    pub host_network: bool,
    /// `hostPID`.
    pub host_pid: bool,
    /// `hostIPC`.
    pub host_ipc: bool,
    /// Paths of `hostPath` volumes.
    pub host_paths: Vec<String>,
    /// `serviceAccountName`.
    pub service_account_name: String,
    /// `nodeName`.
    pub node_name: String,
    /// Pod (or template) name, when set.
    pub name: String,
    /// Labels of the pod or template.
    pub labels: Vec<(String, String)>,
}

impl PodInfo {
    /// The images of all containers.
    pub fn images(&self) -> impl Iterator<Item = &str> {
        self.containers.iter().map(|c| c.image.as_str())
    }

    /// Extracts the pod spec from the `requestObject` of a request on `resource`.
    pub fn from_request(resource: &str, raw: &str) -> Option<PodInfo> {
        let pod: Option<PodW> = match resource {
            "pods" => serde_json::from_str(raw).ok(),
            "deployments" | "replicasets" | "statefulsets" | "daemonsets" | "jobs" | "replicationcontrollers" => {
                let w: WorkloadW = serde_json::from_str(raw).ok()?;
                w.spec.and_then(|s| s.template)
            }
            "cronjobs" => {
                let w: CronJobW = serde_json::from_str(raw).ok()?;
                w.spec.and_then(|s| s.job_template).and_then(|j| j.spec).and_then(|s| s.template)
            }
            "podtemplates" => {
                let w: PodTemplateW = serde_json::from_str(raw).ok()?;
                w.template
            }
            _ => None,
        };
        let pod = pod?;
        let spec = pod.spec?;
        let pod_user = spec.security_context.as_ref().and_then(|s| s.run_as_user);
        let mut containers = Vec::new();
        for (list, kind) in
            [(spec.init_containers, "init"), (spec.containers, "container"), (spec.ephemeral_containers, "ephemeral")]
        {
            for c in list.into_iter().take(256) {
                let sc = c.security_context.unwrap_or_default();
                let mut command = c.command;
                command.extend(c.args);
                containers.push(ContainerInfo {
                    name: c.name,
                    image: c.image,
                    kind,
                    privileged: sc.privileged.unwrap_or(false),
                    allow_privilege_escalation: sc.allow_privilege_escalation,
                    capabilities: sc.capabilities.map(|c| c.add).unwrap_or_default(),
                    run_as_user: sc.run_as_user.or(pod_user),
                    command,
                });
            }
        }
        let meta = pod.metadata.unwrap_or_default();
        Some(PodInfo {
            containers,
            host_network: spec.host_network.unwrap_or(false),
            host_pid: spec.host_pid.unwrap_or(false),
            host_ipc: spec.host_ipc.unwrap_or(false),
            host_paths: spec.volumes.into_iter().filter_map(|v| v.host_path.map(|h| h.path)).collect(),
            service_account_name: spec.service_account_name.unwrap_or_default(),
            node_name: spec.node_name.unwrap_or_default(),
            name: meta.name.unwrap_or_default(),
            labels: meta.labels.map(|l| l.into_iter().collect()).unwrap_or_default(),
        })
    }
}

/// Splits an image reference into `(registry, repository, tag_or_digest)` with Docker Hub
/// defaults: `nginx` → (`docker.io`, `library/nginx`, `latest`).
pub fn split_image(image: &str) -> (String, String, String) {
    let image = image.trim();
    let (name, reference) = match image.split_once('@') {
        Some((n, d)) => (n, d.to_string()),
        None => {
            // a tag is after the last ':' that follows the last '/'
            let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
            match image[slash..].rfind(':') {
                Some(i) => (&image[..slash + i], image[slash + i + 1..].to_string()),
                None => (image, "latest".to_string()),
            }
        }
    };
    let (registry, repo) = match name.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (first.to_ascii_lowercase(), rest.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
        "docker.io".to_string()
    } else {
        registry
    };
    let repo = if registry == "docker.io" && !repo.contains('/') { format!("library/{repo}") } else { repo };
    (registry, repo, reference)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MetaW {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodW {
    #[serde(default)]
    metadata: Option<MetaW>,
    #[serde(default)]
    spec: Option<PodSpecW>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodSpecW {
    #[serde(default)]
    containers: Vec<ContainerW>,
    #[serde(default)]
    init_containers: Vec<ContainerW>,
    #[serde(default)]
    ephemeral_containers: Vec<ContainerW>,
    #[serde(default)]
    host_network: Option<bool>,
    #[serde(default, rename = "hostPID")]
    host_pid: Option<bool>,
    #[serde(default, rename = "hostIPC")]
    host_ipc: Option<bool>,
    #[serde(default)]
    volumes: Vec<VolumeW>,
    #[serde(default)]
    service_account_name: Option<String>,
    #[serde(default)]
    node_name: Option<String>,
    #[serde(default)]
    security_context: Option<SecCtxW>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerW {
    #[serde(default)]
    name: String,
    #[serde(default)]
    image: String,
    #[serde(default)]
    security_context: Option<SecCtxW>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SecCtxW {
    #[serde(default)]
    privileged: Option<bool>,
    #[serde(default)]
    allow_privilege_escalation: Option<bool>,
    #[serde(default)]
    run_as_user: Option<i64>,
    #[serde(default)]
    capabilities: Option<CapsW>,
}

#[derive(Deserialize, Default)]
struct CapsW {
    #[serde(default)]
    add: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeW {
    #[serde(default)]
    host_path: Option<HostPathW>,
}

#[derive(Deserialize)]
struct HostPathW {
    #[serde(default)]
    path: String,
}

#[derive(Deserialize)]
struct WorkloadW {
    #[serde(default)]
    spec: Option<TemplateSpecW>,
}

#[derive(Deserialize)]
struct TemplateSpecW {
    #[serde(default)]
    template: Option<PodW>,
}

#[derive(Deserialize)]
struct CronJobW {
    #[serde(default)]
    spec: Option<CronJobSpecW>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CronJobSpecW {
    #[serde(default)]
    job_template: Option<WorkloadW>,
}

#[derive(Deserialize)]
struct PodTemplateW {
    #[serde(default)]
    template: Option<PodW>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split() {
        assert_eq!(split_image("nginx"), ("docker.io".into(), "library/nginx".into(), "latest".into()));
        assert_eq!(split_image("ghcr.io/org/app:1.2"), ("ghcr.io".into(), "org/app".into(), "1.2".into()));
        assert_eq!(
            split_image("localhost:5000/app@sha256:abc"),
            ("localhost:5000".into(), "app".into(), "sha256:abc".into())
        );
        assert_eq!(split_image("xmrig/xmrig:6"), ("docker.io".into(), "xmrig/xmrig".into(), "6".into()));
    }

    #[test]
    fn pod_spec_from_workloads() {
        let pod = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"},"spec":{"hostPID":true,"containers":[{"name":"c","image":"busybox","securityContext":{"privileged":true}}],"volumes":[{"name":"root","hostPath":{"path":"/"}}]}}"#;
        let p = PodInfo::from_request("pods", pod).unwrap();
        assert!(p.host_pid && p.containers[0].privileged);
        assert_eq!(p.host_paths, vec!["/"]);
        let cj = r#"{"spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":{"spec":{"containers":[{"name":"m","image":"xmrig/xmrig"}]}}}}}}"#;
        let p = PodInfo::from_request("cronjobs", cj).unwrap();
        assert_eq!(p.images().collect::<Vec<_>>(), vec!["xmrig/xmrig"]);
        let ds = r#"{"spec":{"template":{"spec":{"hostNetwork":true,"containers":[]}}}}"#;
        assert!(PodInfo::from_request("daemonsets", ds).unwrap().host_network);
        assert!(PodInfo::from_request("secrets", "{}").is_none());
        assert!(PodInfo::from_request("pods", "[1,2]").is_none());
    }
}
