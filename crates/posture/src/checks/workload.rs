//! Workload hardening: pod-level and per-container checks (containers, init and ephemeral).

use crate::catalogue::SERVING_WORKLOADS;
use crate::engine::Emitter;
use crate::patch;
use crate::util::{as_int, esc, get_arr, get_bool, get_obj, get_str, image_trusted, parse_image, str_list};
use serde_json::{json, Value};

/// Capabilities the PSS baseline profile allows adding.
const BASELINE_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Sysctls PSS baseline allows (namespaced, safe).
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// Volume types PSS restricted allows.
const RESTRICTED_VOLUMES: &[&str] =
    &["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];

/// SELinux types PSS baseline allows.
const SELINUX_TYPES: &[&str] = &["container_t", "container_init_t", "container_kvm_t", "container_engine_t"];

/// Socket file names of container runtimes.
const RUNTIME_SOCKETS: &[&str] =
    &["docker.sock", "containerd.sock", "crio.sock", "cri-dockerd.sock", "dockershim.sock", "podman.sock"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CKind {
    Regular,
    Init,
    Ephemeral,
}

#[derive(Debug)]
struct Ctr<'a> {
    /// Full pointer of the container.
    ptr: String,
    v: &'a Value,
    name: &'a str,
    kind: CKind,
    sc: Option<&'a Value>,
}

impl Ctr<'_> {
    fn label(&self) -> String {
        let k = match self.kind {
            CKind::Regular => "container",
            CKind::Init => "init container",
            CKind::Ephemeral => "ephemeral container",
        };
        format!("{k} \"{}\"", self.name)
    }

    fn sc_ptr(&self, field: &str) -> String {
        format!("{}/securityContext/{field}", self.ptr)
    }
}

/// Metadata pointer of the pod template that `spec_ptr` belongs to.
pub(crate) fn meta_ptr(spec_ptr: &str) -> String {
    match spec_ptr.strip_suffix("/spec") {
        Some(base) => format!("{base}/metadata"),
        None => "/metadata".to_string(),
    }
}

fn norm_cap(c: &str) -> String {
    let u = c.trim().to_ascii_uppercase();
    u.strip_prefix("CAP_").map(str::to_string).unwrap_or(u)
}

#[derive(Debug, PartialEq, Eq)]
enum Seccomp {
    Confined,
    Unconfined,
    Other,
}

fn seccomp_class(v: &str) -> Seccomp {
    match v {
        "RuntimeDefault" | "Localhost" | "runtime/default" | "docker/default" => Seccomp::Confined,
        v if v.starts_with("localhost/") => Seccomp::Confined,
        "Unconfined" | "unconfined" => Seccomp::Unconfined,
        _ => Seccomp::Other,
    }
}

/// Run the workload checks on a pod spec at `sp`.
pub(crate) fn run(e: &mut Emitter, spec: &Value, sp: &str) {
    let root = e.root();
    let mp = meta_ptr(sp);
    let annotations = root.pointer(&format!("{mp}/annotations")).filter(|a| a.is_object());
    let psc = get_obj(spec, "securityContext");
    let psp = format!("{sp}/securityContext");
    let windows = spec.pointer("/os/name").and_then(Value::as_str) == Some("windows");
    let ctrs: Vec<Ctr> = palisade_k8s::containers(spec)
        .into_iter()
        .map(|(suffix, v)| {
            let kind = if suffix.starts_with("/initContainers") {
                CKind::Init
            } else if suffix.starts_with("/ephemeralContainers") {
                CKind::Ephemeral
            } else {
                CKind::Regular
            };
            Ctr {
                ptr: format!("{sp}{suffix}"),
                v,
                name: get_str(v, "name").unwrap_or("?"),
                kind,
                sc: get_obj(v, "securityContext"),
            }
        })
        .collect();

    host_namespaces(e, spec, sp);
    volumes(e, spec, sp, &ctrs);
    pod_security_context(e, spec, sp, psc, &psp);
    service_account(e, spec, sp);
    seccomp(e, psc, &psp, &mp, annotations, &ctrs, windows);
    apparmor(e, psc, &psp, &mp, annotations, &ctrs);
    for c in &ctrs {
        container(e, c, psc, &psp, windows);
    }
}

fn host_namespaces(e: &mut Emitter, spec: &Value, sp: &str) {
    let root = e.root();
    for (id, field, what) in [
        ("PAL-K8S-003", "hostPID", "host PID namespace"),
        ("PAL-K8S-004", "hostIPC", "host IPC namespace"),
        ("PAL-K8S-005", "hostNetwork", "host network namespace"),
    ] {
        if e.applies(id) && get_bool(spec, field) == Some(true) {
            let p = format!("{sp}/{field}");
            e.fail(
                id,
                p.clone(),
                format!("pod shares the {what} ({field}: true)"),
                Some(patch::set(root, &p, json!(false))),
            );
        }
    }
}

fn volumes(e: &mut Emitter, spec: &Value, sp: &str, ctrs: &[Ctr]) {
    let root = e.root();
    let a7 = e.applies("PAL-K8S-007");
    let a8 = e.applies("PAL-K8S-008");
    let a9 = e.applies("PAL-K8S-009");
    let a25 = e.applies("PAL-K8S-025");
    // (volume name, host path) of hostPath volumes.
    let mut host_vols: Vec<(&str, &str)> = Vec::new();
    for (i, v) in get_arr(spec, "volumes").iter().enumerate() {
        let Some(map) = v.as_object() else { continue };
        let vname = get_str(v, "name").unwrap_or("?");
        if let Some(hp) = v.get("hostPath") {
            let hpath = get_str(hp, "path").unwrap_or("");
            host_vols.push((vname, hpath));
            if a7 {
                e.fail(
                    "PAL-K8S-007",
                    format!("{sp}/volumes/{i}/hostPath"),
                    format!("volume \"{vname}\" mounts host path \"{hpath}\""),
                    None,
                );
            }
            let trimmed = hpath.trim_end_matches('/');
            let file = trimmed.rsplit('/').next().unwrap_or("");
            if a9 && RUNTIME_SOCKETS.contains(&file) {
                // Remove the mounts of the volume (highest index first), then the volume.
                let mut ops = Vec::new();
                for c in ctrs {
                    let mounts = get_arr(c.v, "volumeMounts");
                    for (j, m) in mounts.iter().enumerate().rev() {
                        if get_str(m, "name") == Some(vname) {
                            ops.push(json!({"op": "remove", "path": format!("{}/volumeMounts/{j}", c.ptr)}));
                        }
                    }
                }
                ops.push(json!({"op": "remove", "path": format!("{sp}/volumes/{i}")}));
                e.fail(
                    "PAL-K8S-009",
                    format!("{sp}/volumes/{i}/hostPath/path"),
                    format!("volume \"{vname}\" mounts the container runtime socket \"{hpath}\""),
                    Some(Value::Array(ops)),
                );
            }
        }
        if a25 {
            for key in map.keys() {
                if key != "name" && !RESTRICTED_VOLUMES.contains(&key.as_str()) {
                    e.fail(
                        "PAL-K8S-025",
                        format!("{sp}/volumes/{i}/{}", esc(key)),
                        format!("volume \"{vname}\" is of type {key}, not allowed by the restricted profile"),
                        None,
                    );
                }
            }
        }
    }
    if a8 && !host_vols.is_empty() {
        for c in ctrs {
            for (j, m) in get_arr(c.v, "volumeMounts").iter().enumerate() {
                let Some(mname) = get_str(m, "name") else { continue };
                let Some((_, hpath)) = host_vols.iter().find(|(n, _)| *n == mname) else { continue };
                if get_bool(m, "readOnly") != Some(true) {
                    let p = format!("{}/volumeMounts/{j}/readOnly", c.ptr);
                    e.fail(
                        "PAL-K8S-008",
                        p.clone(),
                        format!(
                            "{} mounts hostPath volume \"{mname}\" (host path \"{hpath}\") writable at \"{}\"",
                            c.label(),
                            get_str(m, "mountPath").unwrap_or("?")
                        ),
                        Some(patch::set(root, &p, json!(true))),
                    );
                }
            }
        }
    }
}

fn pod_security_context(e: &mut Emitter, _spec: &Value, _sp: &str, psc: Option<&Value>, psp: &str) {
    let root = e.root();
    if e.applies("PAL-K8S-041") && psc.map(|p| p.as_object().map(|m| m.is_empty()).unwrap_or(true)).unwrap_or(true) {
        e.fail(
            "PAL-K8S-041",
            psp.to_string(),
            "pod has no securityContext".into(),
            Some(patch::set(root, psp, json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}))),
        );
    }
    let a21 = e.applies("PAL-K8S-021");
    let a23 = e.applies("PAL-K8S-023");
    let a24 = e.applies("PAL-K8S-024");
    let a43 = e.applies("PAL-K8S-043");
    let Some(psc) = psc else { return };
    if a23 {
        for (i, s) in get_arr(psc, "sysctls").iter().enumerate() {
            let name = get_str(s, "name").unwrap_or("");
            if !SAFE_SYSCTLS.contains(&name) {
                e.fail(
                    "PAL-K8S-023",
                    format!("{psp}/sysctls/{i}/name"),
                    format!("pod sets unsafe sysctl \"{name}\""),
                    Some(patch::remove(&format!("{psp}/sysctls/{i}"))),
                );
            }
        }
    }
    if a24 && psc.pointer("/windowsOptions/hostProcess").and_then(Value::as_bool) == Some(true) {
        let p = format!("{psp}/windowsOptions/hostProcess");
        e.fail(
            "PAL-K8S-024",
            p.clone(),
            "pod runs as a Windows HostProcess pod".into(),
            Some(patch::set(root, &p, json!(false))),
        );
    }
    if a21 {
        selinux(e, psc, psp, "pod");
    }
    if a43 {
        for field in ["runAsGroup", "fsGroup"] {
            if psc.get(field).and_then(as_int) == Some(0) {
                e.fail("PAL-K8S-043", format!("{psp}/{field}"), format!("pod sets {field}: 0 (root group)"), None);
            }
        }
        for (i, g) in get_arr(psc, "supplementalGroups").iter().enumerate() {
            if as_int(g) == Some(0) {
                e.fail(
                    "PAL-K8S-043",
                    format!("{psp}/supplementalGroups/{i}"),
                    "pod adds supplemental group 0 (root group)".into(),
                    Some(patch::remove(&format!("{psp}/supplementalGroups/{i}"))),
                );
            }
        }
    }
}

fn selinux(e: &mut Emitter, sc: &Value, sc_ptr: &str, who: &str) {
    let Some(opts) = get_obj(sc, "seLinuxOptions") else { return };
    let base = format!("{sc_ptr}/seLinuxOptions");
    if let Some(t) = get_str(opts, "type").filter(|t| !t.is_empty()) {
        if !SELINUX_TYPES.contains(&t) {
            e.fail(
                "PAL-K8S-021",
                format!("{base}/type"),
                format!("{who} sets custom SELinux type \"{t}\""),
                Some(patch::remove(&format!("{base}/type"))),
            );
        }
    }
    for field in ["user", "role"] {
        if let Some(v) = get_str(opts, field).filter(|v| !v.is_empty()) {
            e.fail(
                "PAL-K8S-021",
                format!("{base}/{field}"),
                format!("{who} sets SELinux {field} \"{v}\""),
                Some(patch::remove(&format!("{base}/{field}"))),
            );
        }
    }
}

fn service_account(e: &mut Emitter, spec: &Value, sp: &str) {
    let root = e.root();
    let sa = get_str(spec, "serviceAccountName").or_else(|| get_str(spec, "serviceAccount")).filter(|s| !s.is_empty());
    if e.applies("PAL-K8S-036") && sa.is_none_or(|s| s == "default") {
        e.fail(
            "PAL-K8S-036",
            format!("{sp}/serviceAccountName"),
            "pod runs as the namespace's default service account".into(),
            None,
        );
    }
    if e.applies("PAL-K8S-035") {
        let explicit = get_bool(spec, "automountServiceAccountToken");
        let sa_name = sa.unwrap_or("default");
        let ns = crate::engine::ns_key(e.obj, e.opts);
        let sa_disables =
            e.ctx.complete && e.ctx.service_accounts_without_automount.contains(&(ns.to_string(), sa_name.to_string()));
        let mounted = match explicit {
            Some(b) => b,
            None => !sa_disables,
        };
        if mounted {
            let p = format!("{sp}/automountServiceAccountToken");
            let why = if explicit == Some(true) {
                "pod sets automountServiceAccountToken: true".to_string()
            } else {
                format!("the token of service account \"{sa_name}\" is mounted automatically (automountServiceAccountToken not false)")
            };
            e.fail("PAL-K8S-035", p.clone(), why, Some(patch::set(root, &p, json!(false))));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn seccomp(
    e: &mut Emitter,
    psc: Option<&Value>,
    psp: &str,
    mp: &str,
    annotations: Option<&Value>,
    ctrs: &[Ctr],
    windows: bool,
) {
    let root = e.root();
    let a18 = e.applies("PAL-K8S-018") && !windows;
    let a19 = e.applies("PAL-K8S-019");
    // Pod level: field first, then the deprecated annotation.
    let pod_field = psc.and_then(|s| s.pointer("/seccompProfile/type")).and_then(Value::as_str);
    let pod_ann_key = "seccomp.security.alpha.kubernetes.io/pod";
    let pod_ann = annotations.and_then(|a| get_str(a, pod_ann_key));
    if a19 {
        if pod_field.map(seccomp_class) == Some(Seccomp::Unconfined) {
            let p = format!("{psp}/seccompProfile/type");
            e.fail(
                "PAL-K8S-019",
                p.clone(),
                "pod sets seccomp profile Unconfined".into(),
                Some(patch::set(root, &p, json!("RuntimeDefault"))),
            );
        }
        if pod_ann.map(seccomp_class) == Some(Seccomp::Unconfined) {
            let p = format!("{mp}/annotations/{}", esc(pod_ann_key));
            e.fail(
                "PAL-K8S-019",
                p.clone(),
                "pod annotation sets seccomp unconfined".into(),
                Some(patch::set(root, &p, json!("runtime/default"))),
            );
        }
    }
    let pod_effective = pod_field.or(pod_ann);
    for c in ctrs {
        let c_field = c.sc.and_then(|s| s.pointer("/seccompProfile/type")).and_then(Value::as_str);
        let c_ann_key = format!("container.seccomp.security.alpha.kubernetes.io/{}", c.name);
        let c_ann = annotations.and_then(|a| get_str(a, &c_ann_key));
        if a19 {
            if c_field.map(seccomp_class) == Some(Seccomp::Unconfined) {
                let p = c.sc_ptr("seccompProfile/type");
                e.fail(
                    "PAL-K8S-019",
                    p.clone(),
                    format!("{} sets seccomp profile Unconfined", c.label()),
                    Some(patch::set(root, &p, json!("RuntimeDefault"))),
                );
            }
            if c_ann.map(seccomp_class) == Some(Seccomp::Unconfined) {
                let p = format!("{mp}/annotations/{}", esc(&c_ann_key));
                e.fail(
                    "PAL-K8S-019",
                    p.clone(),
                    format!("annotation sets seccomp unconfined for {}", c.label()),
                    Some(patch::set(root, &p, json!("runtime/default"))),
                );
            }
        }
        if a18 {
            let effective = c_field.or(c_ann).or(pod_effective);
            if effective.map(seccomp_class) != Some(Seccomp::Confined) {
                let p = c.sc_ptr("seccompProfile/type");
                let why = match effective {
                    None => format!(
                        "{} has no seccomp profile (neither pod nor container sets RuntimeDefault or Localhost)",
                        c.label()
                    ),
                    Some(v) => format!("{} runs with seccomp profile \"{v}\"", c.label()),
                };
                e.fail(
                    "PAL-K8S-018",
                    p,
                    why,
                    Some(patch::set(root, &c.sc_ptr("seccompProfile"), json!({"type": "RuntimeDefault"}))),
                );
            }
        }
    }
}

fn apparmor(e: &mut Emitter, psc: Option<&Value>, psp: &str, mp: &str, annotations: Option<&Value>, ctrs: &[Ctr]) {
    if !e.applies("PAL-K8S-020") {
        return;
    }
    let root = e.root();
    if psc.and_then(|s| s.pointer("/appArmorProfile/type")).and_then(Value::as_str) == Some("Unconfined") {
        let p = format!("{psp}/appArmorProfile/type");
        e.fail(
            "PAL-K8S-020",
            p.clone(),
            "pod sets AppArmor profile Unconfined".into(),
            Some(patch::set(root, &p, json!("RuntimeDefault"))),
        );
    }
    for c in ctrs {
        if c.sc.and_then(|s| s.pointer("/appArmorProfile/type")).and_then(Value::as_str) == Some("Unconfined") {
            let p = c.sc_ptr("appArmorProfile/type");
            e.fail(
                "PAL-K8S-020",
                p.clone(),
                format!("{} sets AppArmor profile Unconfined", c.label()),
                Some(patch::set(root, &p, json!("RuntimeDefault"))),
            );
        }
        let key = format!("container.apparmor.security.beta.kubernetes.io/{}", c.name);
        if annotations.and_then(|a| get_str(a, &key)) == Some("unconfined") {
            let p = format!("{mp}/annotations/{}", esc(&key));
            e.fail(
                "PAL-K8S-020",
                p.clone(),
                format!("annotation runs {} AppArmor-unconfined", c.label()),
                Some(patch::set(root, &p, json!("runtime/default"))),
            );
        }
    }
}

fn container(e: &mut Emitter, c: &Ctr, psc: Option<&Value>, psp: &str, windows: bool) {
    let root = e.root();
    let sc = c.sc;
    let label = c.label();
    let scb = |f: &str| sc.and_then(|s| get_bool(s, f));

    if e.applies("PAL-K8S-001") && scb("privileged") == Some(true) {
        let p = c.sc_ptr("privileged");
        e.fail("PAL-K8S-001", p.clone(), format!("{label} is privileged"), Some(patch::set(root, &p, json!(false))));
    }
    if e.applies("PAL-K8S-002") && !windows && scb("allowPrivilegeEscalation") != Some(false) {
        let p = c.sc_ptr("allowPrivilegeEscalation");
        e.fail(
            "PAL-K8S-002",
            p.clone(),
            format!("{label} does not set allowPrivilegeEscalation: false"),
            Some(patch::set(root, &p, json!(false))),
        );
    }
    if e.applies("PAL-K8S-006") {
        for (i, port) in get_arr(c.v, "ports").iter().enumerate() {
            if let Some(hp) = port.get("hostPort").filter(|v| !v.is_null()) {
                if as_int(hp) != Some(0) {
                    let p = format!("{}/ports/{i}/hostPort", c.ptr);
                    e.fail("PAL-K8S-006", p.clone(), format!("{label} binds host port {hp}"), Some(patch::remove(&p)));
                }
            }
        }
    }
    // User and group.
    let c_nonroot = scb("runAsNonRoot");
    let p_nonroot = psc.and_then(|s| get_bool(s, "runAsNonRoot"));
    if e.applies("PAL-K8S-010") && c_nonroot.or(p_nonroot) != Some(true) {
        let (p, why) = if c_nonroot == Some(false) {
            (c.sc_ptr("runAsNonRoot"), format!("{label} sets runAsNonRoot: false"))
        } else if p_nonroot == Some(false) && c_nonroot.is_none() {
            (format!("{psp}/runAsNonRoot"), format!("pod sets runAsNonRoot: false, so {label} may run as root"))
        } else {
            (
                c.sc_ptr("runAsNonRoot"),
                format!("{label} may run as root (runAsNonRoot is not true at pod or container level)"),
            )
        };
        e.fail("PAL-K8S-010", p, why, Some(patch::set(root, &c.sc_ptr("runAsNonRoot"), json!(true))));
    }
    let c_uid = sc.and_then(|s| s.get("runAsUser")).and_then(as_int);
    let p_uid = psc.and_then(|s| s.get("runAsUser")).and_then(as_int);
    let uid_ptr = if c_uid.is_some() {
        c.sc_ptr("runAsUser")
    } else if p_uid.is_some() {
        format!("{psp}/runAsUser")
    } else {
        c.sc_ptr("runAsUser")
    };
    let uid = c_uid.or(p_uid);
    if e.applies("PAL-K8S-011") && uid == Some(0) {
        e.fail(
            "PAL-K8S-011",
            uid_ptr.clone(),
            format!("{label} runs as UID 0 (root)"),
            Some(patch::set(root, &uid_ptr, json!(10001))),
        );
    }
    if e.applies("PAL-K8S-039") && uid.is_none_or(|u| u < 10000) {
        let why = match uid {
            Some(u) => format!("{label} runs as UID {u}, below 10000"),
            None => format!("{label} does not set runAsUser (the image's user is used)"),
        };
        e.fail("PAL-K8S-039", uid_ptr.clone(), why, Some(patch::set(root, &c.sc_ptr("runAsUser"), json!(10001))));
    }
    if e.applies("PAL-K8S-043") && sc.and_then(|s| s.get("runAsGroup")).and_then(as_int) == Some(0) {
        e.fail("PAL-K8S-043", c.sc_ptr("runAsGroup"), format!("{label} sets runAsGroup: 0 (root group)"), None);
    }
    if e.applies("PAL-K8S-012") && scb("readOnlyRootFilesystem") != Some(true) {
        let p = c.sc_ptr("readOnlyRootFilesystem");
        e.fail(
            "PAL-K8S-012",
            p.clone(),
            format!("{label} has a writable root filesystem"),
            Some(patch::set(root, &p, json!(true))),
        );
    }
    if e.applies("PAL-K8S-042") && sc.map(|s| s.as_object().map(|m| m.is_empty()).unwrap_or(true)).unwrap_or(true) {
        let p = format!("{}/securityContext", c.ptr);
        e.fail(
            "PAL-K8S-042",
            p.clone(),
            format!("{label} has no securityContext"),
            Some(patch::set(
                root,
                &p,
                json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true}),
            )),
        );
    }
    capabilities(e, c, windows);
    if let Some(s) = sc {
        if e.applies("PAL-K8S-022") {
            if let Some(pm) = get_str(s, "procMount").filter(|pm| *pm != "Default") {
                let p = c.sc_ptr("procMount");
                e.fail(
                    "PAL-K8S-022",
                    p.clone(),
                    format!("{label} sets procMount: {pm}"),
                    Some(patch::set(root, &p, json!("Default"))),
                );
            }
        }
        if e.applies("PAL-K8S-021") {
            selinux(e, s, &format!("{}/securityContext", c.ptr), &label);
        }
        if e.applies("PAL-K8S-024") && s.pointer("/windowsOptions/hostProcess").and_then(Value::as_bool) == Some(true) {
            let p = c.sc_ptr("windowsOptions/hostProcess");
            e.fail(
                "PAL-K8S-024",
                p.clone(),
                format!("{label} is a Windows HostProcess container"),
                Some(patch::set(root, &p, json!(false))),
            );
        }
    } else {
        // Declare applicability so the pass is counted.
        e.applies("PAL-K8S-022");
        e.applies("PAL-K8S-021");
        e.applies("PAL-K8S-024");
    }
    resources(e, c);
    probes(e, c);
    image(e, c);
    secrets_in_env(e, c);
}

fn capabilities(e: &mut Emitter, c: &Ctr, windows: bool) {
    let root = e.root();
    let label = c.label();
    let caps = c.sc.and_then(|s| get_obj(s, "capabilities"));
    let add: Vec<(usize, String)> = caps
        .map(|cp| {
            get_arr(cp, "add").iter().enumerate().filter_map(|(i, v)| v.as_str().map(|s| (i, norm_cap(s)))).collect()
        })
        .unwrap_or_default();
    let drop: Vec<String> = caps.map(|cp| str_list(cp, "drop").into_iter().map(norm_cap).collect()).unwrap_or_default();
    let add_ptr = c.sc_ptr("capabilities/add");
    let drop_ptr = c.sc_ptr("capabilities/drop");
    let original_add = || -> Vec<Value> { caps.map(|cp| get_arr(cp, "add").to_vec()).unwrap_or_default() };

    for (id, allowed, what) in [
        ("PAL-K8S-013", BASELINE_CAPS, "beyond the baseline set"),
        ("PAL-K8S-014", &["NET_BIND_SERVICE"][..], "other than NET_BIND_SERVICE"),
    ] {
        if id == "PAL-K8S-014" && windows {
            continue;
        }
        if !e.applies(id) {
            continue;
        }
        let bad: Vec<&(usize, String)> = add.iter().filter(|(_, n)| !allowed.contains(&n.as_str())).collect();
        if let Some((first, _)) = bad.first() {
            let names: Vec<&str> = bad.iter().map(|(_, n)| n.as_str()).collect();
            let keep: Vec<Value> = original_add()
                .into_iter()
                .filter(|v| v.as_str().map(|s| allowed.contains(&norm_cap(s).as_str())).unwrap_or(false))
                .collect();
            e.fail(
                id,
                format!("{add_ptr}/{first}"),
                format!("{label} adds capabilities {what}: {}", names.join(", ")),
                Some(patch::set(root, &add_ptr, Value::Array(keep))),
            );
        }
    }
    if e.applies("PAL-K8S-016") {
        if let Some((i, _)) = add.iter().find(|(_, n)| n == "SYS_ADMIN") {
            e.fail(
                "PAL-K8S-016",
                format!("{add_ptr}/{i}"),
                format!("{label} adds SYS_ADMIN"),
                Some(patch::remove(&format!("{add_ptr}/{i}"))),
            );
        }
    }
    if e.applies("PAL-K8S-015") && !windows && !drop.iter().any(|d| d == "ALL") {
        e.fail(
            "PAL-K8S-015",
            drop_ptr.clone(),
            format!("{label} does not drop ALL capabilities"),
            Some(patch::append(root, &drop_ptr, json!("ALL"))),
        );
    }
    if e.applies("PAL-K8S-017") && !drop.iter().any(|d| d == "ALL" || d == "NET_RAW") {
        e.fail(
            "PAL-K8S-017",
            drop_ptr.clone(),
            format!("{label} does not drop NET_RAW"),
            Some(patch::append(root, &drop_ptr, json!("NET_RAW"))),
        );
    }
}

fn resources(e: &mut Emitter, c: &Ctr) {
    if c.kind == CKind::Ephemeral {
        return; // ephemeral containers cannot have resources
    }
    let res = c.v.get("resources");
    let has = |section: &str, r: &str| {
        res.and_then(|x| x.get(section)).and_then(|x| x.get(r)).map(|v| !v.is_null()).unwrap_or(false)
    };
    let label = c.label();
    // A limit without a request defaults the request to the limit.
    for (id, ok, what, p) in [
        ("PAL-K8S-026", has("requests", "cpu") || has("limits", "cpu"), "CPU request", "requests/cpu"),
        ("PAL-K8S-027", has("limits", "cpu"), "CPU limit", "limits/cpu"),
        ("PAL-K8S-028", has("requests", "memory") || has("limits", "memory"), "memory request", "requests/memory"),
        ("PAL-K8S-029", has("limits", "memory"), "memory limit", "limits/memory"),
    ] {
        if e.applies(id) && !ok {
            e.fail(id, format!("{}/resources/{p}", c.ptr), format!("{label} has no {what}"), None);
        }
    }
}

fn probes(e: &mut Emitter, c: &Ctr) {
    if !SERVING_WORKLOADS.contains(&e.obj.kind.as_str()) {
        return;
    }
    let sidecar = c.kind == CKind::Init && get_str(c.v, "restartPolicy") == Some("Always");
    if c.kind == CKind::Ephemeral || (c.kind == CKind::Init && !sidecar) {
        return;
    }
    let label = c.label();
    for (id, field, what) in
        [("PAL-K8S-033", "livenessProbe", "liveness probe"), ("PAL-K8S-034", "readinessProbe", "readiness probe")]
    {
        if e.applies(id) && get_obj(c.v, field).is_none() {
            e.fail(id, format!("{}/{field}", c.ptr), format!("{label} has no {what}"), None);
        }
    }
}

fn image(e: &mut Emitter, c: &Ctr) {
    let root = e.root();
    let Some(img) = get_str(c.v, "image") else { return };
    let p = format!("{}/image", c.ptr);
    let label = c.label();
    let Some(r) = parse_image(img) else {
        if e.applies("PAL-K8S-030") {
            e.fail("PAL-K8S-030", p, format!("{label} has an empty image reference"), None);
        }
        return;
    };
    let floating = r.digest.is_none() && r.tag.as_deref().is_none_or(|t| t == "latest");
    if e.applies("PAL-K8S-030") && floating {
        let why = match &r.tag {
            Some(_) => format!("{label} uses image \"{img}\" with tag latest"),
            None => format!("{label} uses image \"{img}\" without a tag (latest)"),
        };
        e.fail("PAL-K8S-030", p.clone(), why, None);
    }
    if e.applies("PAL-K8S-031") && r.digest.is_none() {
        e.fail("PAL-K8S-031", p.clone(), format!("{label} uses image \"{img}\" without a digest"), None);
    }
    if !e.opts.trusted_registries.is_empty()
        && e.applies("PAL-K8S-032")
        && !image_trusted(&r, &e.opts.trusted_registries)
    {
        e.fail(
            "PAL-K8S-032",
            p.clone(),
            format!("{label} uses image \"{img}\" from untrusted registry {}", r.registry),
            None,
        );
    }
    if e.applies("PAL-K8S-040") {
        let policy = get_str(c.v, "imagePullPolicy");
        // Kubernetes defaults the policy to Always for :latest / untagged images.
        let ok = match policy {
            Some(pol) => pol == "Always",
            None => floating,
        };
        if !ok {
            let pp = format!("{}/imagePullPolicy", c.ptr);
            e.fail(
                "PAL-K8S-040",
                pp.clone(),
                format!("{label} has imagePullPolicy {}", policy.unwrap_or("IfNotPresent (default)")),
                Some(patch::set(root, &pp, json!("Always"))),
            );
        }
    }
}

fn secrets_in_env(e: &mut Emitter, c: &Ctr) {
    if !e.applies("PAL-K8S-038") {
        return;
    }
    let label = c.label();
    for (i, env) in get_arr(c.v, "env").iter().enumerate() {
        if let Some(r) = env.pointer("/valueFrom/secretKeyRef") {
            e.fail(
                "PAL-K8S-038",
                format!("{}/env/{i}/valueFrom/secretKeyRef", c.ptr),
                format!(
                    "{label} reads secret \"{}\" key \"{}\" into environment variable {}",
                    get_str(r, "name").unwrap_or("?"),
                    get_str(r, "key").unwrap_or("?"),
                    get_str(env, "name").unwrap_or("?")
                ),
                None,
            );
        }
    }
    for (i, from) in get_arr(c.v, "envFrom").iter().enumerate() {
        if let Some(r) = from.get("secretRef") {
            e.fail(
                "PAL-K8S-038",
                format!("{}/envFrom/{i}/secretRef", c.ptr),
                format!(
                    "{label} loads every key of secret \"{}\" into its environment",
                    get_str(r, "name").unwrap_or("?")
                ),
                None,
            );
        }
    }
}

/// PAL-K8S-037: namespaced objects in `default`.
pub(crate) fn default_namespace(e: &mut Emitter) {
    const ID: &str = "PAL-K8S-037";
    let Some(c) = crate::catalogue::check(ID) else { return };
    let obj = e.obj;
    if !c.applies_to.contains(&obj.kind.as_str()) {
        return;
    }
    // Objects Kubernetes itself puts in default.
    let builtin = matches!(
        (obj.kind.as_str(), obj.name.as_str()),
        ("ServiceAccount", "default") | ("Service", "kubernetes") | ("ConfigMap", "kube-root-ca.crt")
    );
    if builtin || !e.applies(ID) {
        return;
    }
    let explicit = obj.namespace == "default";
    if explicit || (obj.namespace.is_empty() && e.opts.missing_namespace_is_default) {
        let why = if explicit {
            format!("{} \"{}\" is in the default namespace", obj.kind, obj.name)
        } else {
            format!("{} \"{}\" has no namespace and would be created in default", obj.kind, obj.name)
        };
        e.fail(ID, "/metadata/namespace".into(), why, None);
    }
}
