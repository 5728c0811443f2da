//! Kubelet configuration (CIS 4.2) where it is visible: a `KubeletConfiguration` object, or a
//! ConfigMap holding one (kubeadm's `kube-system/kubelet-config`). Unset fields take the
//! `kubelet.config.k8s.io/v1beta1` defaults.

use crate::engine::Emitter;
use crate::patch;
use crate::util::{as_int, esc};
use serde_json::{json, Value};

const KUBELET_CIPHERS: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
];

/// Largest ConfigMap value parsed as YAML.
const MAX_EMBEDDED: usize = 1 << 20;

pub(crate) fn run(e: &mut Emitter) {
    let root = e.root();
    if e.obj.kind == "KubeletConfiguration" {
        check(e, root, "", true);
        return;
    }
    let Some(data) = root.get("data").and_then(Value::as_object) else { return };
    for (key, v) in data {
        let Some(text) = v.as_str() else { continue };
        if text.len() > MAX_EMBEDDED || !text.contains("KubeletConfiguration") {
            continue;
        }
        let Ok(parsed) = palisade_yaml::from_str::<Value>(text) else { continue };
        if parsed.get("kind").and_then(Value::as_str) == Some("KubeletConfiguration") {
            check(e, &parsed, &format!("/data/{}", esc(key)), false);
        }
    }
}

struct Cfg<'a> {
    cfg: &'a Value,
    base: &'a str,
    patchable: bool,
    root: &'a Value,
}

impl Cfg<'_> {
    fn get(&self, ptr: &str) -> Option<&Value> {
        self.cfg.pointer(ptr).filter(|v| !v.is_null())
    }
    fn path(&self, ptr: &str) -> String {
        if self.patchable {
            ptr.to_string()
        } else {
            self.base.to_string()
        }
    }
    fn patch(&self, ptr: &str, v: Value) -> Option<Value> {
        self.patchable.then(|| patch::set(self.root, ptr, v))
    }
    fn field(ptr: &str) -> String {
        ptr.trim_start_matches('/').replace('/', ".")
    }
}

fn fail(e: &mut Emitter, c: &Cfg, id: &'static str, ptr: &str, msg: String, fix: Option<Value>) {
    let where_ = if c.patchable { String::new() } else { format!(" (in {})", c.base) };
    let patch = fix.and_then(|v| c.patch(ptr, v));
    e.fail(id, c.path(ptr), format!("kubelet configuration{where_}: {msg}"), patch);
}

fn check(e: &mut Emitter, cfg: &Value, base: &str, patchable: bool) {
    let c = Cfg { cfg, base, patchable, root: e.root() };
    let b = |p: &str| c.get(p).and_then(Value::as_bool);

    if e.applies("PAL-KLT-001") && b("/authentication/anonymous/enabled") == Some(true) {
        let p = "/authentication/anonymous/enabled";
        fail(e, &c, "PAL-KLT-001", p, format!("{} is true", Cfg::field(p)), Some(json!(false)));
    }
    if e.applies("PAL-KLT-002") {
        let p = "/authorization/mode";
        if c.get(p).and_then(Value::as_str) == Some("AlwaysAllow") {
            fail(e, &c, "PAL-KLT-002", p, "authorization.mode is AlwaysAllow".into(), Some(json!("Webhook")));
        }
    }
    if e.applies("PAL-KLT-003") {
        let p = "/authentication/x509/clientCAFile";
        if c.get(p).and_then(Value::as_str).is_none_or(|s| s.trim().is_empty()) {
            fail(e, &c, "PAL-KLT-003", p, "authentication.x509.clientCAFile is not set".into(), None);
        }
    }
    if e.applies("PAL-KLT-004") {
        let p = "/readOnlyPort";
        if let Some(port) = c.get(p).and_then(as_int).filter(|n| *n != 0) {
            fail(e, &c, "PAL-KLT-004", p, format!("readOnlyPort is {port}"), Some(json!(0)));
        }
    }
    if e.applies("PAL-KLT-005") {
        let p = "/streamingConnectionIdleTimeout";
        let v = c.get(p).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
        if let Some(v) = v.filter(|v| is_zero_duration(v)) {
            fail(e, &c, "PAL-KLT-005", p, format!("streamingConnectionIdleTimeout is {v}"), Some(json!("5m")));
        }
    }
    if e.applies("PAL-KLT-006") && b("/protectKernelDefaults") != Some(true) {
        fail(
            e,
            &c,
            "PAL-KLT-006",
            "/protectKernelDefaults",
            "protectKernelDefaults is not true".into(),
            Some(json!(true)),
        );
    }
    if e.applies("PAL-KLT-007") && b("/makeIPTablesUtilChains") == Some(false) {
        fail(
            e,
            &c,
            "PAL-KLT-007",
            "/makeIPTablesUtilChains",
            "makeIPTablesUtilChains is false".into(),
            Some(json!(true)),
        );
    }
    if e.applies("PAL-KLT-008") {
        if let Some(q) = c.get("/eventRecordQPS").and_then(as_int).filter(|q| *q < 0) {
            fail(e, &c, "PAL-KLT-008", "/eventRecordQPS", format!("eventRecordQPS is {q}"), Some(json!(5)));
        }
    }
    if e.applies("PAL-KLT-009") {
        let set = |p: &str| c.get(p).and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty());
        if !(set("/tlsCertFile") && set("/tlsPrivateKeyFile")) && b("/serverTLSBootstrap") != Some(true) {
            fail(
                e,
                &c,
                "PAL-KLT-009",
                "/tlsCertFile",
                "neither tlsCertFile/tlsPrivateKeyFile nor serverTLSBootstrap is set".into(),
                None,
            );
        }
    }
    if e.applies("PAL-KLT-010") && b("/rotateCertificates") == Some(false) {
        fail(e, &c, "PAL-KLT-010", "/rotateCertificates", "rotateCertificates is false".into(), Some(json!(true)));
    }
    if e.applies("PAL-KLT-011") && b("/featureGates/RotateKubeletServerCertificate") == Some(false) {
        fail(
            e,
            &c,
            "PAL-KLT-011",
            "/featureGates/RotateKubeletServerCertificate",
            "featureGates.RotateKubeletServerCertificate is false".into(),
            Some(json!(true)),
        );
    }
    if e.applies("PAL-KLT-012") {
        let p = "/tlsCipherSuites";
        let suites: Vec<&str> = c
            .get(p)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let weak: Vec<&str> = suites.iter().copied().filter(|s| !KUBELET_CIPHERS.contains(s)).collect();
        if suites.is_empty() || !weak.is_empty() {
            let msg = if suites.is_empty() {
                "tlsCipherSuites is not set (Go's defaults include CBC suites)".to_string()
            } else {
                format!("tlsCipherSuites allows weak suites {}", weak.join(", "))
            };
            fail(e, &c, "PAL-KLT-012", p, msg, Some(json!(KUBELET_CIPHERS)));
        }
    }
    if e.applies("PAL-KLT-013") {
        let v = c.get("/podPidsLimit").and_then(as_int);
        if v.is_none_or(|n| n <= 0) {
            let msg = match v {
                Some(n) => format!("podPidsLimit is {n} (unlimited)"),
                None => "podPidsLimit is not set (unlimited)".into(),
            };
            fail(e, &c, "PAL-KLT-013", "/podPidsLimit", msg, Some(json!(4096)));
        }
    }
    if e.applies("PAL-KLT-014") && b("/seccompDefault") != Some(true) {
        fail(e, &c, "PAL-KLT-014", "/seccompDefault", "seccompDefault is not true".into(), Some(json!(true)));
    }
}

/// `0`, `0s`, `0h0m0s`, ...: a duration with no non-zero digit.
fn is_zero_duration(v: &str) -> bool {
    let t = v.trim();
    t.chars().any(|c| c.is_ascii_digit()) && t.chars().all(|c| c == '0' || c == '.' || c.is_ascii_alphabetic())
}
