//! Exposure (Services, Ingresses) and network isolation (NetworkPolicy per namespace).

use crate::engine::Emitter;
use crate::patch;
use crate::util::{get_arr, get_str};
use serde_json::{json, Value};

/// Namespaces that never run workloads and are not expected to carry NetworkPolicies.
pub(crate) fn exempt_namespace(ns: &str) -> bool {
    matches!(ns, "kube-public" | "kube-node-lease")
}

pub(crate) fn service(e: &mut Emitter) {
    let root = e.root();
    let spec = root.get("spec");
    let ty = spec.and_then(|s| get_str(s, "type")).unwrap_or("ClusterIP");
    if e.applies("PAL-K8S-200") && ty == "LoadBalancer" {
        let ranges = spec.map(|s| get_arr(s, "loadBalancerSourceRanges").len()).unwrap_or(0);
        let internal = root
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .map(|a| a.keys().any(|k| k.contains("internal")))
            .unwrap_or(false);
        let note = if ranges > 0 {
            " (restricted by loadBalancerSourceRanges)"
        } else if internal {
            " (an internal load balancer is requested by annotation)"
        } else {
            ""
        };
        e.fail(
            "PAL-K8S-200",
            "/spec/type".into(),
            format!("Service \"{}\" is exposed through a load balancer{note}", e.obj.name),
            Some(patch::set(root, "/spec/type", json!("ClusterIP"))),
        );
    }
    if e.applies("PAL-K8S-201") && ty == "NodePort" {
        e.fail(
            "PAL-K8S-201",
            "/spec/type".into(),
            format!("Service \"{}\" opens a port on every node (NodePort)", e.obj.name),
            Some(patch::set(root, "/spec/type", json!("ClusterIP"))),
        );
    }
    if e.applies("PAL-K8S-202") {
        let ips: Vec<&str> =
            spec.map(|s| get_arr(s, "externalIPs").iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let any = spec.map(|s| !get_arr(s, "externalIPs").is_empty()).unwrap_or(false);
        if any {
            e.fail(
                "PAL-K8S-202",
                "/spec/externalIPs".into(),
                format!("Service \"{}\" claims external IPs {}", e.obj.name, ips.join(", ")),
                Some(patch::remove("/spec/externalIPs")),
            );
        }
    }
}

pub(crate) fn ingress(e: &mut Emitter) {
    if !e.applies("PAL-K8S-203") {
        return;
    }
    let tls = e.root().pointer("/spec/tls").and_then(Value::as_array).map(|a| !a.is_empty()).unwrap_or(false);
    if !tls {
        e.fail("PAL-K8S-203", "/spec/tls".into(), format!("Ingress \"{}\" has no TLS configuration", e.obj.name), None);
    }
}

pub(crate) fn namespace(e: &mut Emitter) {
    // Needs the cluster-wide view: with an empty context the check does not apply.
    if !e.ctx.complete || exempt_namespace(&e.obj.name) || !e.applies("PAL-K8S-300") {
        return;
    }
    if !e.ctx.namespaces_with_network_policy.contains(&e.obj.name) {
        e.fail(
            "PAL-K8S-300",
            "/metadata/name".into(),
            format!("namespace \"{}\" has no NetworkPolicy", e.obj.name),
            None,
        );
    }
}
