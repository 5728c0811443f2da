//! Control-plane components from their (static) pod manifests: kube-apiserver,
//! kube-controller-manager, kube-scheduler and etcd command-line flags (CIS 1.2, 1.3, 1.4, 2).

use crate::engine::Emitter;
use crate::util::{get_arr, get_str, Flags};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Component {
    ApiServer,
    ControllerManager,
    Scheduler,
    Etcd,
}

fn component_of_binary(bin: &str) -> Option<Component> {
    let base = bin.rsplit('/').next().unwrap_or(bin);
    match base {
        "kube-apiserver" | "apiserver" => Some(Component::ApiServer),
        "kube-controller-manager" | "controller-manager" => Some(Component::ControllerManager),
        "kube-scheduler" | "scheduler" => Some(Component::Scheduler),
        "etcd" => Some(Component::Etcd),
        _ => None,
    }
}

/// The component a container runs and how many leading command words are the program.
fn detect(c: &Value) -> Option<(Component, usize, bool)> {
    let cmd = get_arr(c, "command");
    let first = cmd.first().and_then(Value::as_str);
    match first {
        Some(f) => {
            let base = f.rsplit('/').next().unwrap_or(f);
            if base == "hyperkube" {
                let sub = cmd.get(1).and_then(Value::as_str)?;
                return component_of_binary(sub).map(|k| (k, 2, false));
            }
            if matches!(base, "sh" | "bash" | "ash" | "dash") {
                // `sh -c "kube-apiserver --flag=..."`
                let script = cmd.iter().filter_map(Value::as_str).find(|s| s.contains(' '))?;
                let prog = script.split_whitespace().next()?;
                let pbase = prog.rsplit('/').next().unwrap_or(prog);
                if !(pbase.starts_with("kube-") || pbase == "etcd") {
                    return None;
                }
                return component_of_binary(pbase).map(|k| (k, 1, true));
            }
            // Only exact program names (not "apiserver" alone, which is too generic).
            if base.starts_with("kube-") || base == "etcd" {
                return component_of_binary(base).map(|k| (k, 1, false));
            }
            None
        }
        None => {
            // No command: the image's entrypoint is the component (e.g. registry.k8s.io/kube-apiserver).
            let image = get_str(c, "image")?;
            let repo = image.split('@').next().unwrap_or(image);
            let last = repo.rsplit('/').next().unwrap_or(repo);
            let name = last.split(':').next().unwrap_or(last);
            let name = name.trim_end_matches("-amd64").trim_end_matches("-arm64");
            if name.starts_with("kube-") {
                component_of_binary(name).map(|k| (k, 0, false))
            } else {
                None
            }
        }
    }
}

/// One container running a component, with its parsed flags.
struct Proc<'a> {
    ptr: String,
    c: &'a Value,
    flags: Flags,
    shell: bool,
    name: &'static str,
}

impl Proc<'_> {
    fn bool_flag(&self, name: &str) -> Option<bool> {
        self.flags.get(name).map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "t" | "yes"))
    }

    /// Pointer to the flag, or to the array it should be added to.
    fn path(&self, flag: &str) -> String {
        match self.flags.position(flag) {
            Some((i, in_args)) => format!("{}/{}/{i}", self.ptr, if in_args { "args" } else { "command" }),
            None => format!("{}/{}", self.ptr, self.target_array()),
        }
    }

    fn target_array(&self) -> &'static str {
        if get_arr(self.c, "command").is_empty() || !get_arr(self.c, "args").is_empty() {
            "args"
        } else {
            "command"
        }
    }

    /// JSON patch setting `--flag=value` (replacing the existing flag or appending it).
    fn set_patch(&self, flag: &str, value: &str) -> Option<Value> {
        if self.shell {
            return None;
        }
        let arg = format!("--{flag}={value}");
        match self.flags.position(flag) {
            Some((i, in_args)) => Some(json!([{
                "op": "replace",
                "path": format!("{}/{}/{i}", self.ptr, if in_args { "args" } else { "command" }),
                "value": arg
            }])),
            None => {
                let arr = self.target_array();
                if self.c.get(arr).and_then(Value::as_array).is_some() {
                    Some(json!([{"op": "add", "path": format!("{}/{arr}/-", self.ptr), "value": arg}]))
                } else {
                    Some(json!([{"op": "add", "path": format!("{}/{arr}", self.ptr), "value": [arg]}]))
                }
            }
        }
    }

    /// JSON patch removing a flag given as one `--flag=value` word.
    fn remove_patch(&self, flag: &str) -> Option<Value> {
        if self.shell {
            return None;
        }
        let (i, in_args) = self.flags.position(flag)?;
        let arr = if in_args { "args" } else { "command" };
        let word = self.c.get(arr).and_then(|a| a.get(i)).and_then(Value::as_str).unwrap_or("");
        if !word.contains('=') && word.trim_start_matches('-') != flag {
            return None;
        }
        Some(json!([{"op": "remove", "path": format!("{}/{arr}/{i}", self.ptr)}]))
    }
}

/// Run the control-plane checks for each component container of a pod spec.
pub(crate) fn run(e: &mut Emitter, spec: &Value, sp: &str) {
    for (suffix, c) in palisade_k8s::containers(spec) {
        let Some((comp, skip, shell)) = detect(c) else { continue };
        let mut flags = Flags::parse(get_arr(c, "command"), get_arr(c, "args"), skip);
        if comp == Component::Etcd {
            for (i, env) in get_arr(c, "env").iter().enumerate() {
                if let (Some(n), Some(v)) = (get_str(env, "name"), get_str(env, "value")) {
                    if let Some(rest) = n.strip_prefix("ETCD_") {
                        flags.add_env(&rest.to_ascii_lowercase().replace('_', "-"), v, i);
                    }
                }
            }
        }
        let name = match comp {
            Component::ApiServer => "kube-apiserver",
            Component::ControllerManager => "kube-controller-manager",
            Component::Scheduler => "kube-scheduler",
            Component::Etcd => "etcd",
        };
        let p = Proc { ptr: format!("{sp}{suffix}"), c, flags, shell, name };
        match comp {
            Component::ApiServer => apiserver(e, &p),
            Component::ControllerManager => controller_manager(e, &p),
            Component::Scheduler => scheduler(e, &p),
            Component::Etcd => etcd(e, &p),
        }
    }
}

/// Fail `id` about `flag` with a message and optional patch.
fn flag_fail(e: &mut Emitter, p: &Proc, id: &'static str, flag: &str, msg: String, patch: Option<Value>) {
    e.fail(id, p.path(flag), format!("{}: {msg}", p.name), patch);
}

fn require_set(e: &mut Emitter, p: &Proc, id: &'static str, flags: &[&str]) {
    if !e.applies(id) {
        return;
    }
    let missing: Vec<&str> =
        flags.iter().copied().filter(|f| p.flags.get(f).is_none_or(|v| v.trim().is_empty())).collect();
    if let Some(first) = missing.first() {
        let list: Vec<String> = missing.iter().map(|f| format!("--{f}")).collect();
        flag_fail(e, p, id, first, format!("{} not set", list.join(" and ")), None);
    }
}

fn require_bool(e: &mut Emitter, p: &Proc, id: &'static str, flag: &str, want: bool, default: bool) {
    if !e.applies(id) {
        return;
    }
    let actual = p.bool_flag(flag).unwrap_or(default);
    if actual != want {
        let msg = match p.flags.get(flag) {
            Some(v) => format!("--{flag}={v}"),
            None => format!("--{flag} is not set (defaults to {default})"),
        };
        flag_fail(e, p, id, flag, msg, p.set_patch(flag, &want.to_string()));
    }
}

fn forbid_set(e: &mut Emitter, p: &Proc, id: &'static str, flag: &str) {
    if !e.applies(id) {
        return;
    }
    if let Some(v) = p.flags.get(flag) {
        flag_fail(e, p, id, flag, format!("--{flag}={v} is set"), p.remove_patch(flag));
    }
}

fn min_int(e: &mut Emitter, p: &Proc, id: &'static str, flag: &str, min: i64) {
    if !e.applies(id) {
        return;
    }
    let v = p.flags.get(flag);
    let n = v.and_then(|v| v.trim().parse::<i64>().ok());
    if n.is_none_or(|n| n < min) {
        let msg = match v {
            Some(v) => format!("--{flag}={v}, below {min}"),
            None => format!("--{flag} is not set"),
        };
        flag_fail(e, p, id, flag, msg, p.set_patch(flag, &min.to_string()));
    }
}

/// Plugins in `--enable-admission-plugins` that must (`want`) or must not be there.
fn plugin(e: &mut Emitter, p: &Proc, id: &'static str, list_flag: &str, name: &str, want: bool) {
    if !e.applies(id) {
        return;
    }
    let list = p.flags.list(list_flag);
    let has = list.contains(&name);
    if has == want {
        return;
    }
    let new_list: Vec<&str> = if want {
        list.iter().copied().chain(std::iter::once(name)).collect()
    } else {
        list.iter().copied().filter(|x| *x != name).collect()
    };
    let msg = if want {
        format!("admission plugin {name} is not in --{list_flag}")
    } else if list_flag == "disable-admission-plugins" {
        format!("admission plugin {name} is disabled (--{list_flag})")
    } else {
        format!("admission plugin {name} is enabled (--{list_flag})")
    };
    let patch =
        if new_list.is_empty() { p.remove_patch(list_flag) } else { p.set_patch(list_flag, &new_list.join(",")) };
    // EventRateLimit needs a configuration file as well: no mechanical fix.
    let patch = if name == "EventRateLimit" { None } else { patch };
    flag_fail(e, p, id, list_flag, msg, patch);
}

const API_CIPHERS: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

fn apiserver(e: &mut Emitter, p: &Proc) {
    require_bool(e, p, "PAL-API-001", "anonymous-auth", false, true);
    forbid_set(e, p, "PAL-API-002", "token-auth-file");
    plugin(e, p, "PAL-API-003", "enable-admission-plugins", "DenyServiceExternalIPs", true);
    require_set(e, p, "PAL-API-004", &["kubelet-client-certificate", "kubelet-client-key"]);
    require_set(e, p, "PAL-API-005", &["kubelet-certificate-authority"]);

    let modes = p.flags.list("authorization-mode");
    let fixed_modes = {
        let mut m: Vec<&str> = modes.iter().copied().filter(|m| *m != "AlwaysAllow").collect();
        for need in ["Node", "RBAC"] {
            if !m.contains(&need) {
                m.push(need);
            }
        }
        m.join(",")
    };
    let mode_desc = if modes.is_empty() {
        "--authorization-mode is not set (defaults to AlwaysAllow)".to_string()
    } else {
        format!("--authorization-mode={}", modes.join(","))
    };
    if e.applies("PAL-API-006") && (modes.is_empty() || modes.contains(&"AlwaysAllow")) {
        flag_fail(
            e,
            p,
            "PAL-API-006",
            "authorization-mode",
            mode_desc.clone(),
            p.set_patch("authorization-mode", &fixed_modes),
        );
    }
    if e.applies("PAL-API-007") && !modes.contains(&"Node") {
        flag_fail(
            e,
            p,
            "PAL-API-007",
            "authorization-mode",
            mode_desc.clone(),
            p.set_patch("authorization-mode", &fixed_modes),
        );
    }
    if e.applies("PAL-API-008") && !modes.contains(&"RBAC") {
        flag_fail(
            e,
            p,
            "PAL-API-008",
            "authorization-mode",
            mode_desc,
            p.set_patch("authorization-mode", &fixed_modes),
        );
    }

    plugin(e, p, "PAL-API-009", "enable-admission-plugins", "EventRateLimit", true);
    plugin(e, p, "PAL-API-010", "enable-admission-plugins", "AlwaysAdmit", false);
    plugin(e, p, "PAL-API-011", "enable-admission-plugins", "AlwaysPullImages", true);
    plugin(e, p, "PAL-API-012", "disable-admission-plugins", "ServiceAccount", false);
    plugin(e, p, "PAL-API-013", "disable-admission-plugins", "NamespaceLifecycle", false);
    plugin(e, p, "PAL-API-014", "enable-admission-plugins", "NodeRestriction", true);
    require_bool(e, p, "PAL-API-015", "profiling", false, true);
    require_set(e, p, "PAL-API-016", &["audit-log-path"]);
    min_int(e, p, "PAL-API-017", "audit-log-maxage", 30);
    min_int(e, p, "PAL-API-018", "audit-log-maxbackup", 10);
    min_int(e, p, "PAL-API-019", "audit-log-maxsize", 100);
    require_bool(e, p, "PAL-API-020", "service-account-lookup", true, true);
    require_set(e, p, "PAL-API-021", &["service-account-key-file"]);
    require_set(e, p, "PAL-API-022", &["etcd-certfile", "etcd-keyfile"]);
    require_set(e, p, "PAL-API-023", &["tls-cert-file", "tls-private-key-file"]);
    require_set(e, p, "PAL-API-024", &["client-ca-file"]);
    require_set(e, p, "PAL-API-025", &["etcd-cafile"]);
    require_set(e, p, "PAL-API-026", &["encryption-provider-config"]);
    if e.applies("PAL-API-027") {
        let suites = p.flags.list("tls-cipher-suites");
        let weak: Vec<&str> = suites.iter().copied().filter(|s| !API_CIPHERS.contains(s)).collect();
        if suites.is_empty() || !weak.is_empty() {
            let msg = if suites.is_empty() {
                "--tls-cipher-suites is not set (Go's defaults include CBC suites)".to_string()
            } else {
                format!("--tls-cipher-suites allows weak suites {}", weak.join(", "))
            };
            flag_fail(
                e,
                p,
                "PAL-API-027",
                "tls-cipher-suites",
                msg,
                p.set_patch("tls-cipher-suites", &API_CIPHERS.join(",")),
            );
        }
    }
    require_bool(e, p, "PAL-API-028", "service-account-extend-token-expiration", false, true);
    if e.applies("PAL-API-029") {
        if let Some(v) = p.flags.get("insecure-port").filter(|v| v.trim() != "0") {
            flag_fail(
                e,
                p,
                "PAL-API-029",
                "insecure-port",
                format!("--insecure-port={v}"),
                p.set_patch("insecure-port", "0"),
            );
        }
    }
    forbid_set(e, p, "PAL-API-030", "insecure-bind-address");
    if e.applies("PAL-API-031") && p.flags.get("secure-port").map(str::trim) == Some("0") {
        flag_fail(
            e,
            p,
            "PAL-API-031",
            "secure-port",
            "--secure-port=0 disables HTTPS".into(),
            p.remove_patch("secure-port"),
        );
    }
}

fn bind_localhost(e: &mut Emitter, p: &Proc, id: &'static str) {
    if !e.applies(id) {
        return;
    }
    let v = p.flags.get("bind-address").map(str::trim);
    if v != Some("127.0.0.1") {
        let msg = match v {
            Some(v) => format!("--bind-address={v}"),
            None => "--bind-address is not set (binds all interfaces)".into(),
        };
        flag_fail(e, p, id, "bind-address", msg, p.set_patch("bind-address", "127.0.0.1"));
    }
}

fn controller_manager(e: &mut Emitter, p: &Proc) {
    if e.applies("PAL-KCM-001") && p.flags.get("terminated-pod-gc-threshold").is_none() {
        flag_fail(
            e,
            p,
            "PAL-KCM-001",
            "terminated-pod-gc-threshold",
            "--terminated-pod-gc-threshold is not set (defaults to 12500)".into(),
            p.set_patch("terminated-pod-gc-threshold", "10"),
        );
    }
    require_bool(e, p, "PAL-KCM-002", "profiling", false, true);
    require_bool(e, p, "PAL-KCM-003", "use-service-account-credentials", true, false);
    require_set(e, p, "PAL-KCM-004", &["service-account-private-key-file"]);
    require_set(e, p, "PAL-KCM-005", &["root-ca-file"]);
    if e.applies("PAL-KCM-006") {
        let gates = p.flags.list("feature-gates");
        if gates.iter().any(|g| g.replace(' ', "").eq_ignore_ascii_case("RotateKubeletServerCertificate=false")) {
            let rest: Vec<&str> =
                gates.iter().copied().filter(|g| !g.starts_with("RotateKubeletServerCertificate")).collect();
            let patch = if rest.is_empty() {
                p.remove_patch("feature-gates")
            } else {
                p.set_patch("feature-gates", &rest.join(","))
            };
            flag_fail(
                e,
                p,
                "PAL-KCM-006",
                "feature-gates",
                "--feature-gates sets RotateKubeletServerCertificate=false".into(),
                patch,
            );
        }
    }
    bind_localhost(e, p, "PAL-KCM-007");
}

fn scheduler(e: &mut Emitter, p: &Proc) {
    require_bool(e, p, "PAL-SCH-001", "profiling", false, true);
    bind_localhost(e, p, "PAL-SCH-002");
}

fn etcd(e: &mut Emitter, p: &Proc) {
    require_set(e, p, "PAL-ETCD-001", &["cert-file", "key-file"]);
    require_bool(e, p, "PAL-ETCD-002", "client-cert-auth", true, false);
    require_bool(e, p, "PAL-ETCD-003", "auto-tls", false, false);
    require_set(e, p, "PAL-ETCD-004", &["peer-cert-file", "peer-key-file"]);
    require_bool(e, p, "PAL-ETCD-005", "peer-client-cert-auth", true, false);
    require_bool(e, p, "PAL-ETCD-006", "peer-auto-tls", false, false);
}
