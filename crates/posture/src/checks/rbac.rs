//! RBAC: roles' rules, bindings' subjects, and the default service account.

use crate::engine::Emitter;
use crate::patch;
use crate::util::{get_arr, get_bool, get_str, is_bootstrap_rbac, str_list};
use serde_json::{json, Value};

/// Whether a rule grants any of `verbs` on any of `resources` in any of `groups`, following
/// the API server's matching (`*` everywhere, `*/subresource`).
fn grants(rule: &Value, groups: &[&str], resources: &[&str], verbs: &[&str]) -> bool {
    let rg = str_list(rule, "apiGroups");
    let rr = str_list(rule, "resources");
    let rv = str_list(rule, "verbs");
    let group_ok = rg.iter().any(|g| *g == "*" || groups.contains(g));
    let verb_ok = rv.iter().any(|v| *v == "*" || verbs.iter().any(|w| v.eq_ignore_ascii_case(w)));
    let res_ok = rr.iter().any(|r| {
        *r == "*"
            || resources.contains(r)
            || r.strip_prefix("*/")
                .is_some_and(|sub| resources.iter().any(|x| x.split_once('/').map(|(_, s)| s) == Some(sub)))
    });
    group_ok && verb_ok && res_ok
}

fn skip_system(e: &Emitter) -> bool {
    !e.opts.include_system_rbac && is_bootstrap_rbac(e.root(), &e.obj.name, e.obj.kind.starts_with("Cluster"))
}

/// Rule checks on Role / ClusterRole.
pub(crate) fn role(e: &mut Emitter) {
    if skip_system(e) {
        return;
    }
    let rules = get_arr(e.root(), "rules");
    let kind = e.obj.kind.clone();

    if e.applies("PAL-K8S-101") {
        for (i, rule) in rules.iter().enumerate() {
            for field in ["verbs", "resources", "apiGroups"] {
                if str_list(rule, field).contains(&"*") {
                    e.fail(
                        "PAL-K8S-101",
                        format!("/rules/{i}/{field}"),
                        format!("{kind} rule {i} grants \"*\" in {field}"),
                        None,
                    );
                }
            }
        }
    }

    type Spec = (&'static str, &'static [&'static str], &'static [&'static str], &'static [&'static str], &'static str);
    const WORKLOAD_RES: &[&str] = &[
        "pods",
        "deployments",
        "daemonsets",
        "statefulsets",
        "replicasets",
        "replicationcontrollers",
        "jobs",
        "cronjobs",
    ];
    const SPECS: &[Spec] = &[
        ("PAL-K8S-102", &[""], &["secrets"], &["get", "list", "watch"], "can read secrets"),
        (
            "PAL-K8S-103",
            &["", "apps", "batch", "extensions"],
            WORKLOAD_RES,
            &["create"],
            "can create pods or workload controllers",
        ),
        ("PAL-K8S-104", &[""], &["pods/exec", "pods/attach"], &["create"], "can exec or attach into pods"),
        (
            "PAL-K8S-105",
            &["", "authentication.k8s.io"],
            &["users", "groups", "serviceaccounts", "uids", "userextras/*"],
            &["impersonate"],
            "can impersonate users, groups or service accounts",
        ),
        ("PAL-K8S-106", &["rbac.authorization.k8s.io"], &["roles", "clusterroles"], &["bind"], "can bind roles"),
        (
            "PAL-K8S-107",
            &["rbac.authorization.k8s.io"],
            &["roles", "clusterroles"],
            &["escalate"],
            "can escalate roles",
        ),
        (
            "PAL-K8S-108",
            &[""],
            &["nodes/proxy"],
            &["get", "create", "update", "patch", "delete"],
            "can use nodes/proxy",
        ),
        (
            "PAL-K8S-109",
            &["admissionregistration.k8s.io"],
            &["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
            &["create", "update", "patch", "delete", "deletecollection"],
            "can modify admission webhook configurations",
        ),
        ("PAL-K8S-111", &[""], &["persistentvolumes"], &["create"], "can create persistent volumes"),
        ("PAL-K8S-112", &[""], &["serviceaccounts/token"], &["create"], "can create service account tokens"),
    ];
    for (id, groups, resources, verbs, what) in SPECS {
        if !e.applies(id) {
            continue;
        }
        for (i, rule) in rules.iter().enumerate() {
            if grants(rule, groups, resources, verbs) {
                let scoped = if get_arr(rule, "resourceNames").is_empty() { "" } else { " (limited by resourceNames)" };
                e.fail(id, format!("/rules/{i}"), format!("{kind} {what} (rule {i}){scoped}"), None);
            }
        }
    }
    if e.applies("PAL-K8S-110") {
        let approval = rules.iter().position(|r| {
            grants(r, &["certificates.k8s.io"], &["certificatesigningrequests/approval"], &["update", "patch"])
        });
        let signer = rules.iter().any(|r| grants(r, &["certificates.k8s.io"], &["signers"], &["approve"]));
        if let (Some(i), true) = (approval, signer) {
            e.fail(
                "PAL-K8S-110",
                format!("/rules/{i}"),
                format!("{kind} can approve certificate signing requests (certificatesigningrequests/approval and signers approve)"),
                None,
            );
        }
    }
}

/// Subject checks on RoleBinding / ClusterRoleBinding.
pub(crate) fn binding(e: &mut Emitter) {
    if skip_system(e) {
        return;
    }
    let root = e.root();
    let kind = e.obj.kind.clone();
    if e.applies("PAL-K8S-100") {
        let rr = root.get("roleRef");
        let rname = rr.and_then(|r| get_str(r, "name"));
        let rkind = rr.and_then(|r| get_str(r, "kind"));
        if rname == Some("cluster-admin") && rkind.is_none_or(|k| k == "ClusterRole") {
            let who: Vec<String> = get_arr(root, "subjects")
                .iter()
                .map(|s| format!("{} {}", get_str(s, "kind").unwrap_or("?"), get_str(s, "name").unwrap_or("?")))
                .collect();
            e.fail(
                "PAL-K8S-100",
                "/roleRef/name".into(),
                format!("{kind} grants cluster-admin to {}", who.join(", ")),
                None,
            );
        }
    }
    let a113 = e.applies("PAL-K8S-113");
    let a114 = e.applies("PAL-K8S-114");
    let a115 = e.applies("PAL-K8S-115");
    for (i, s) in get_arr(root, "subjects").iter().enumerate() {
        let skind = get_str(s, "kind").unwrap_or("");
        let name = get_str(s, "name").unwrap_or("");
        let p = format!("/subjects/{i}/name");
        if a113 && matches!(name, "system:anonymous" | "system:unauthenticated") {
            e.fail(
                "PAL-K8S-113",
                p.clone(),
                format!("{kind} grants its role to {name}"),
                Some(patch::remove(&format!("/subjects/{i}"))),
            );
        }
        if a114 && skind == "Group" && name == "system:masters" {
            e.fail(
                "PAL-K8S-114",
                p.clone(),
                format!("{kind} binds the system:masters group"),
                Some(patch::remove(&format!("/subjects/{i}"))),
            );
        }
        if a115 && skind == "ServiceAccount" && name == "default" {
            let ns = get_str(s, "namespace").unwrap_or(&e.obj.namespace).to_string();
            e.fail(
                "PAL-K8S-115",
                p,
                format!("{kind} grants its role to the default service account of namespace \"{ns}\""),
                None,
            );
        }
    }
}

/// PAL-K8S-044: the default ServiceAccount should not automount its token.
pub(crate) fn service_account(e: &mut Emitter) {
    if e.obj.name != "default" || !e.applies("PAL-K8S-044") {
        return;
    }
    let root = e.root();
    if get_bool(root, "automountServiceAccountToken") != Some(false) {
        e.fail(
            "PAL-K8S-044",
            "/automountServiceAccountToken".into(),
            format!("default service account of namespace \"{}\" automounts its token", e.obj.namespace),
            Some(patch::set(root, "/automountServiceAccountToken", json!(false))),
        );
    }
}
