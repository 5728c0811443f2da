//! The inventory: what is in a cluster, resolved to what a security engineer asks about —
//! workloads down to their containers and images, identities and their permissions, and how
//! things are exposed.

use crate::object::{containers, Object};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A node.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Node {
    /// Name.
    pub name: String,
    /// Kubelet version.
    pub kubelet_version: String,
    /// OS image.
    pub os_image: String,
    /// Container runtime (`containerd://1.7.2`).
    pub container_runtime: String,
    /// Kernel.
    pub kernel: String,
}

/// A container of a workload.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Container {
    /// Name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// `container`, `init` or `ephemeral`.
    pub role: String,
}

/// A workload (controller or bare pod) with its pod template resolved.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Workload {
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Service account its pods run as.
    pub service_account: String,
    /// Containers.
    pub containers: Vec<Container>,
    /// Uses host namespaces (network, PID, IPC).
    pub host_namespaces: Vec<String>,
    /// Owner (`Deployment/x` for a ReplicaSet, for example), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Where it was defined.
    pub origin: String,
}

/// A service and how it is exposed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Service {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// ClusterIP, NodePort, LoadBalancer, ExternalName.
    pub service_type: String,
    /// Ports (`80/TCP`, with `nodePort` when set).
    pub ports: Vec<String>,
    /// External IPs and load-balancer ingress addresses.
    pub external: Vec<String>,
}

/// An RBAC binding, resolved.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Binding {
    /// `RoleBinding` or `ClusterRoleBinding`.
    pub kind: String,
    /// Namespace (RoleBinding).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `ClusterRole/x` or `Role/x`.
    pub role: String,
    /// Subjects (`User/alice`, `Group/devs`, `ServiceAccount/ns/name`).
    pub subjects: Vec<String>,
}

/// Everything.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Inventory {
    /// Cluster name.
    pub cluster: String,
    /// Object counts per kind.
    pub kinds: BTreeMap<String, usize>,
    /// Namespaces (declared or used).
    pub namespaces: Vec<String>,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Workloads.
    pub workloads: Vec<Workload>,
    /// Distinct images with the workloads that run them.
    pub images: BTreeMap<String, Vec<String>>,
    /// Service accounts (`ns/name`).
    pub service_accounts: Vec<String>,
    /// Roles and ClusterRoles (`Role/ns/name`, `ClusterRole/name`).
    pub roles: Vec<String>,
    /// Bindings.
    pub bindings: Vec<Binding>,
    /// Services.
    pub services: Vec<Service>,
    /// Ingresses (`ns/name: hosts`, with TLS flag).
    pub ingresses: Vec<Value>,
    /// NetworkPolicies (`ns/name`).
    pub network_policies: Vec<String>,
    /// Admission webhook configurations (`Kind/name: webhook names`).
    pub admission_webhooks: Vec<String>,
    /// Static control-plane pods (`ns/name (component)`).
    pub control_plane: Vec<String>,
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// Build the inventory.
pub fn build(cluster: &str, objects: &[Object]) -> Inventory {
    let mut inv = Inventory { cluster: cluster.to_string(), ..Default::default() };
    let mut namespaces: BTreeSet<String> = BTreeSet::new();
    // Controllers present, to decide whether a ReplicaSet/Pod is owned by something we list.
    let present: BTreeSet<(String, String, String)> =
        objects.iter().map(|o| (o.kind.clone(), o.namespace.clone(), o.name.clone())).collect();
    for o in objects {
        *inv.kinds.entry(o.kind.clone()).or_insert(0) += 1;
        if !o.namespace.is_empty() {
            namespaces.insert(o.namespace.clone());
        }
        let v = &o.value;
        match o.kind.as_str() {
            "Namespace" => {
                namespaces.insert(o.name.clone());
            }
            "Node" => inv.nodes.push(Node {
                name: o.name.clone(),
                kubelet_version: s(v, "/status/nodeInfo/kubeletVersion").into(),
                os_image: s(v, "/status/nodeInfo/osImage").into(),
                container_runtime: s(v, "/status/nodeInfo/containerRuntimeVersion").into(),
                kernel: s(v, "/status/nodeInfo/kernelVersion").into(),
            }),
            "ServiceAccount" => inv.service_accounts.push(format!("{}/{}", o.namespace, o.name)),
            "Role" | "ClusterRole" => inv.roles.push(o.id()),
            "RoleBinding" | "ClusterRoleBinding" => {
                let subjects = v
                    .get("subjects")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|sub| {
                                let k = s(sub, "/kind");
                                let ns = s(sub, "/namespace");
                                if k == "ServiceAccount" {
                                    format!("{k}/{}/{}", if ns.is_empty() { &o.namespace } else { ns }, s(sub, "/name"))
                                } else {
                                    format!("{k}/{}", s(sub, "/name"))
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                inv.bindings.push(Binding {
                    kind: o.kind.clone(),
                    namespace: o.namespace.clone(),
                    name: o.name.clone(),
                    role: format!("{}/{}", s(v, "/roleRef/kind"), s(v, "/roleRef/name")),
                    subjects,
                });
            }
            "Service" => {
                let ports = v
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|p| {
                                let port = p.get("port").map(|x| x.to_string()).unwrap_or_default();
                                let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                                match p.get("nodePort") {
                                    Some(n) => format!("{port}:{n}/{proto}"),
                                    None => format!("{port}/{proto}"),
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let mut external: Vec<String> = v
                    .pointer("/spec/externalIPs")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                if let Some(ing) = v.pointer("/status/loadBalancer/ingress").and_then(Value::as_array) {
                    for i in ing {
                        let addr = i.get("ip").or_else(|| i.get("hostname")).and_then(Value::as_str).unwrap_or("");
                        if !addr.is_empty() {
                            external.push(addr.to_string());
                        }
                    }
                }
                let t = s(v, "/spec/type");
                inv.services.push(Service {
                    namespace: o.namespace.clone(),
                    name: o.name.clone(),
                    service_type: if t.is_empty() { "ClusterIP".into() } else { t.into() },
                    ports,
                    external,
                });
            }
            "Ingress" => {
                let hosts: Vec<&str> = v
                    .pointer("/spec/rules")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|r| s(r, "/host")).filter(|h| !h.is_empty()).collect())
                    .unwrap_or_default();
                let tls = v.pointer("/spec/tls").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
                inv.ingresses
                    .push(serde_json::json!({"namespace": o.namespace, "name": o.name, "hosts": hosts, "tls": tls}));
            }
            "NetworkPolicy" => inv.network_policies.push(format!("{}/{}", o.namespace, o.name)),
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => {
                let names: Vec<&str> = v
                    .get("webhooks")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|w| s(w, "/name")).collect())
                    .unwrap_or_default();
                inv.admission_webhooks.push(format!("{}: {}", o.id(), names.join(", ")));
            }
            _ => {}
        }
        if let Some((spec, _)) = o.pod_spec() {
            // Skip pods and ReplicaSets whose owner is listed: the owner is the workload.
            let owner = v
                .pointer("/metadata/ownerReferences/0")
                .map(|r| (s(r, "/kind").to_string(), s(r, "/name").to_string()));
            let owner_listed =
                owner.as_ref().is_some_and(|(k, n)| present.contains(&(k.clone(), o.namespace.clone(), n.clone())));
            if o.kind == "Pod" {
                let comp = o.value.pointer("/metadata/labels/component").and_then(Value::as_str).unwrap_or("");
                let mirror = o.annotation("kubernetes.io/config.mirror").is_some();
                if o.namespace == "kube-system"
                    && (mirror
                        || ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"].contains(&comp))
                {
                    inv.control_plane.push(format!(
                        "{}/{} ({})",
                        o.namespace,
                        o.name,
                        if comp.is_empty() { "static" } else { comp }
                    ));
                }
            }
            if owner_listed {
                continue;
            }
            let mut cs = Vec::new();
            for (ptr, c) in containers(spec) {
                let role = if ptr.starts_with("/initContainers") {
                    "init"
                } else if ptr.starts_with("/ephemeralContainers") {
                    "ephemeral"
                } else {
                    "container"
                };
                let image = s(c, "/image").to_string();
                inv.images.entry(image.clone()).or_default().push(o.id());
                cs.push(Container { name: s(c, "/name").into(), image, role: role.into() });
            }
            let mut host = Vec::new();
            for (f, n) in [("hostNetwork", "network"), ("hostPID", "pid"), ("hostIPC", "ipc")] {
                if spec.get(f).and_then(Value::as_bool) == Some(true) {
                    host.push(n.to_string());
                }
            }
            let sa = spec
                .get("serviceAccountName")
                .or_else(|| spec.get("serviceAccount"))
                .and_then(Value::as_str)
                .unwrap_or("default");
            inv.workloads.push(Workload {
                kind: o.kind.clone(),
                namespace: o.namespace.clone(),
                name: o.name.clone(),
                service_account: sa.to_string(),
                containers: cs,
                host_namespaces: host,
                owner: owner.map(|(k, n)| format!("{k}/{n}")),
                origin: if o.origin.line > 0 {
                    format!("{}:{}", o.origin.file, o.origin.line)
                } else {
                    o.origin.file.clone()
                },
            });
        }
    }
    inv.namespaces = namespaces.into_iter().collect();
    for list in inv.images.values_mut() {
        list.sort();
        list.dedup();
    }
    inv
}

/// A compact text rendering.
pub fn table(inv: &Inventory) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "cluster: {}", inv.cluster);
    let kinds: Vec<String> = inv.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(out, "objects: {}", kinds.join(", "));
    let _ = writeln!(out, "namespaces ({}): {}", inv.namespaces.len(), inv.namespaces.join(", "));
    if !inv.nodes.is_empty() {
        let _ = writeln!(out, "\nNODE  KUBELET  OS  RUNTIME");
        for n in &inv.nodes {
            let _ = writeln!(out, "{}  {}  {}  {}", n.name, n.kubelet_version, n.os_image, n.container_runtime);
        }
    }
    let _ = writeln!(out, "\nWORKLOAD{:<52} SERVICE ACCOUNT      IMAGES", "");
    for w in &inv.workloads {
        let id = format!("{}/{}/{}", w.kind, w.namespace, w.name);
        let images: Vec<&str> = w.containers.iter().map(|c| c.image.as_str()).collect();
        let host = if w.host_namespaces.is_empty() {
            String::new()
        } else {
            format!(" [host {}]", w.host_namespaces.join(","))
        };
        let _ = writeln!(out, "{id:<60} {:<20} {}{host}", w.service_account, images.join(", "));
    }
    if !inv.services.is_empty() {
        let _ = writeln!(out, "\nSERVICE{:<53} TYPE          PORTS / EXTERNAL", "");
        for s in &inv.services {
            let _ = writeln!(
                out,
                "{:<60} {:<13} {} {}",
                format!("{}/{}", s.namespace, s.name),
                s.service_type,
                s.ports.join(","),
                s.external.join(",")
            );
        }
    }
    if !inv.bindings.is_empty() {
        let _ = writeln!(out, "\nBINDING{:<53} ROLE{:<36} SUBJECTS", "", "");
        for b in &inv.bindings {
            let id = if b.namespace.is_empty() {
                format!("{}/{}", b.kind, b.name)
            } else {
                format!("{}/{}/{}", b.kind, b.namespace, b.name)
            };
            let _ = writeln!(out, "{id:<60} {:<40} {}", b.role, b.subjects.join(", "));
        }
    }
    for (title, list) in [
        ("network policies", &inv.network_policies),
        ("admission webhooks", &inv.admission_webhooks),
        ("control plane", &inv.control_plane),
    ] {
        if !list.is_empty() {
            let _ = writeln!(out, "\n{title}: {}", list.join("; "));
        }
    }
    let _ = writeln!(
        out,
        "\n{} workloads, {} distinct images, {} services, {} bindings",
        inv.workloads.len(),
        inv.images.len(),
        inv.services.len(),
        inv.bindings.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{load_bytes, Loaded};

    #[test]
    fn resolves_workloads_owners_and_exposure() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[
          {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},
           "spec":{"template":{"spec":{"serviceAccountName":"web","hostNetwork":true,
             "initContainers":[{"name":"init","image":"busybox:1.36"}],"containers":[{"name":"app","image":"nginx:1.25"}]}}}},
          {"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"web-7d","namespace":"shop","ownerReferences":[{"kind":"Deployment","name":"web"}]},
           "spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.25"}]}}}},
          {"apiVersion":"v1","kind":"Pod","metadata":{"name":"debug","namespace":"shop"},"spec":{"containers":[{"name":"sh","image":"alpine"}]}},
          {"apiVersion":"v1","kind":"Pod","metadata":{"name":"kube-apiserver-n1","namespace":"kube-system","labels":{"component":"kube-apiserver"}},
           "spec":{"containers":[{"name":"kube-apiserver","image":"registry.k8s.io/kube-apiserver:v1.29.0"}]}},
          {"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop"},"spec":{"type":"LoadBalancer","ports":[{"port":80,"nodePort":30080}]},
           "status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.7"}]}}},
          {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"admins"},
           "roleRef":{"kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"kind":"ServiceAccount","name":"web","namespace":"shop"},{"kind":"Group","name":"ops"}]},
          {"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"},"status":{"nodeInfo":{"kubeletVersion":"v1.29.0","osImage":"Ubuntu 22.04","containerRuntimeVersion":"containerd://1.7.2"}}}]}"#;
        let mut l = Loaded::default();
        load_bytes("dump.json", text.as_bytes(), &mut l);
        let inv = build("test", &l.objects);
        let ws: Vec<String> = inv.workloads.iter().map(|w| format!("{}/{}", w.kind, w.name)).collect();
        assert_eq!(ws, vec!["Deployment/web", "Pod/debug", "Pod/kube-apiserver-n1"]);
        assert_eq!(inv.workloads[0].containers.len(), 2);
        assert_eq!(inv.workloads[0].host_namespaces, vec!["network"]);
        assert_eq!(inv.images["nginx:1.25"], vec!["Deployment/shop/web"]);
        assert_eq!(inv.services[0].external, vec!["203.0.113.7"]);
        assert_eq!(inv.services[0].ports, vec!["80:30080/TCP"]);
        assert_eq!(inv.bindings[0].subjects, vec!["ServiceAccount/shop/web", "Group/ops"]);
        assert_eq!(inv.control_plane, vec!["kube-system/kube-apiserver-n1 (kube-apiserver)"]);
        assert_eq!(inv.nodes[0].container_runtime, "containerd://1.7.2");
        assert!(table(&inv).contains("Deployment/shop/web"));
    }
}
