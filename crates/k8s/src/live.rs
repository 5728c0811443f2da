//! The live collector: read-only lists through the Kubernetes API.
//!
//! Configuration comes from a kubeconfig (server, CA, token, token file, client certificate,
//! basic auth, exec credential plugins) or, inside a pod, from the service-account mount.
//! Lists are paginated (`limit`/`continue`); a kind that is forbidden (403) or not served
//! (404) is skipped with a warning naming it, and the rest of the inventory is still read.

use crate::object::{Object, Origin};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Objects per page.
pub const PAGE: usize = 500;
/// Largest list page accepted.
const MAX_PAGE_BYTES: u64 = 512 << 20;

/// Why the collector could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// Kubeconfig problems.
    #[error("kubeconfig {}: {reason}", path.display())]
    Config {
        /// File.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No configuration at all.
    #[error("no kubeconfig found (set --kubeconfig or KUBECONFIG) and not running in a pod")]
    NoConfig,
    /// The API server could not be reached or refused us.
    #[error("{server}: {reason}")]
    Api {
        /// Server URL.
        server: String,
        /// What happened.
        reason: String,
    },
}

/// Resolved connection settings.
#[derive(Debug, Clone)]
pub struct Connection {
    /// API server URL.
    pub server: String,
    /// Context name (used as the cluster name).
    pub context: String,
    /// Bearer token.
    pub token: Option<String>,
    /// Basic auth.
    pub basic: Option<(String, String)>,
    /// CA bundle (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and key (PEM).
    pub client_cert: Option<(Vec<u8>, Vec<u8>)>,
    /// Skip TLS verification (kubeconfig `insecure-skip-tls-verify`).
    pub insecure: bool,
}

fn yaml_str<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn named<'a>(list: Option<&'a Value>, name: &str, field: &str) -> Option<&'a Value> {
    list?.as_array()?.iter().find(|e| yaml_str(e, "name") == Some(name)).and_then(|e| e.get(field))
}

fn read_rel(base: &Path, p: &str) -> std::io::Result<Vec<u8>> {
    let p = Path::new(p);
    let full = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    std::fs::read(full)
}

fn b64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s.trim()).ok()
}

/// The kubeconfig path: explicit, `$KUBECONFIG` (first entry), or `~/.kube/config`.
pub fn default_kubeconfig() -> Option<PathBuf> {
    if let Some(k) = std::env::var_os("KUBECONFIG") {
        let first = std::env::split_paths(&k).next()?;
        return Some(first);
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config")).filter(|p| p.exists())
}

/// Resolve a kubeconfig (and context) into connection settings.
pub fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<Connection, LiveError> {
    let err = |reason: String| LiveError::Config { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let cfg: Value = palisade_yaml::from_str(&text).map_err(|e| err(e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let ctx_name = context
        .map(str::to_string)
        .or_else(|| yaml_str(&cfg, "current-context").map(str::to_string))
        .ok_or_else(|| err("no context given and no current-context".into()))?;
    let ctx = named(cfg.get("contexts"), &ctx_name, "context")
        .ok_or_else(|| err(format!("context {ctx_name:?} not found")))?;
    let cluster_name = yaml_str(ctx, "cluster").unwrap_or("");
    let user_name = yaml_str(ctx, "user").unwrap_or("");
    let cluster = named(cfg.get("clusters"), cluster_name, "cluster")
        .ok_or_else(|| err(format!("cluster {cluster_name:?} not found")))?;
    let user = named(cfg.get("users"), user_name, "user").cloned().unwrap_or(Value::Null);
    let server = yaml_str(cluster, "server")
        .ok_or_else(|| err(format!("cluster {cluster_name:?} has no server")))?
        .trim_end_matches('/')
        .to_string();
    let ca_pem = match (yaml_str(cluster, "certificate-authority-data"), yaml_str(cluster, "certificate-authority")) {
        (Some(d), _) => Some(b64(d).ok_or_else(|| err("certificate-authority-data is not base64".into()))?),
        (None, Some(f)) => Some(read_rel(base, f).map_err(|e| err(format!("certificate-authority {f}: {e}")))?),
        _ => None,
    };
    let insecure = cluster.get("insecure-skip-tls-verify").and_then(Value::as_bool).unwrap_or(false);
    let mut token = yaml_str(&user, "token").map(str::to_string);
    if token.is_none() {
        if let Some(f) = yaml_str(&user, "tokenFile") {
            token = Some(
                String::from_utf8_lossy(&read_rel(base, f).map_err(|e| err(format!("tokenFile {f}: {e}")))?)
                    .trim()
                    .to_string(),
            );
        }
    }
    let cert = match (yaml_str(&user, "client-certificate-data"), yaml_str(&user, "client-certificate")) {
        (Some(d), _) => b64(d),
        (None, Some(f)) => read_rel(base, f).ok(),
        _ => None,
    };
    let key = match (yaml_str(&user, "client-key-data"), yaml_str(&user, "client-key")) {
        (Some(d), _) => b64(d),
        (None, Some(f)) => read_rel(base, f).ok(),
        _ => None,
    };
    let basic = match (yaml_str(&user, "username"), yaml_str(&user, "password")) {
        (Some(u), Some(p)) => Some((u.to_string(), p.to_string())),
        _ => None,
    };
    if token.is_none() {
        if let Some(exec) = user.get("exec") {
            token = Some(exec_credential(exec).map_err(err)?);
        }
    }
    Ok(Connection { server, context: ctx_name, token, basic, ca_pem, client_cert: cert.zip(key), insecure })
}

/// Run an exec credential plugin (client.authentication.k8s.io) and return its token.
fn exec_credential(exec: &Value) -> Result<String, String> {
    let cmd = yaml_str(exec, "command").ok_or("exec plugin without command")?;
    let args: Vec<String> = exec
        .get("args")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let mut c = std::process::Command::new(cmd);
    c.args(&args);
    for e in exec.get("env").and_then(Value::as_array).into_iter().flatten() {
        if let (Some(k), Some(v)) = (yaml_str(e, "name"), yaml_str(e, "value")) {
            c.env(k, v);
        }
    }
    let out = c.output().map_err(|e| format!("exec plugin {cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!("exec plugin {cmd} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let v: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("exec plugin {cmd}: bad ExecCredential: {e}"))?;
    v.pointer("/status/token")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("exec plugin {cmd}: no status.token"))
}

/// In-cluster configuration from the service-account mount.
pub fn in_cluster() -> Option<Connection> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST").ok()?;
    let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
    let dir = Path::new("/var/run/secrets/kubernetes.io/serviceaccount");
    let token = std::fs::read_to_string(dir.join("token")).ok()?.trim().to_string();
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    Some(Connection {
        server: format!("https://{host}:{port}"),
        context: "in-cluster".into(),
        token: Some(token),
        basic: None,
        ca_pem: std::fs::read(dir.join("ca.crt")).ok(),
        client_cert: None,
        insecure: false,
    })
}

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn agent(c: &Connection) -> Result<ureq::Agent, LiveError> {
    let err = |reason: String| LiveError::Api { server: c.server.clone(), reason };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?;
    let builder = if c.insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &c.ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| err(format!("CA bundle: {e}")))?;
                    roots.add(cert).map_err(|e| err(format!("CA bundle: {e}")))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots)
    };
    let config = match &c.client_cert {
        Some((cert, key)) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<_, _>>()
                .map_err(|e| err(format!("client certificate: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| err(format!("client key: {e}")))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| err(format!("client certificate: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(ureq::AgentBuilder::new()
        .tls_config(Arc::new(config))
        .timeout_connect(Duration::from_secs(10))
        .timeout_read(Duration::from_secs(60))
        .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")))
        .build())
}

/// Resources read, with their API path and the kind of their items.
pub const RESOURCES: &[(&str, &str, &str)] = &[
    ("api/v1", "namespaces", "Namespace"),
    ("api/v1", "nodes", "Node"),
    ("api/v1", "pods", "Pod"),
    ("api/v1", "serviceaccounts", "ServiceAccount"),
    ("api/v1", "services", "Service"),
    ("api/v1", "configmaps", "ConfigMap"),
    ("apis/apps/v1", "deployments", "Deployment"),
    ("apis/apps/v1", "statefulsets", "StatefulSet"),
    ("apis/apps/v1", "daemonsets", "DaemonSet"),
    ("apis/apps/v1", "replicasets", "ReplicaSet"),
    ("apis/batch/v1", "jobs", "Job"),
    ("apis/batch/v1", "cronjobs", "CronJob"),
    ("apis/rbac.authorization.k8s.io/v1", "roles", "Role"),
    ("apis/rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole"),
    ("apis/rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding"),
    ("apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding"),
    ("apis/networking.k8s.io/v1", "ingresses", "Ingress"),
    ("apis/networking.k8s.io/v1", "networkpolicies", "NetworkPolicy"),
    ("apis/admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration"),
    ("apis/admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration"),
];

/// What the collector read.
#[derive(Debug, Default)]
pub struct Collected {
    /// Objects.
    pub objects: Vec<Object>,
    /// Kinds that could not be read, and why.
    pub warnings: Vec<String>,
    /// Requests made.
    pub requests: usize,
}

fn get(agent: &ureq::Agent, c: &Connection, url: &str) -> Result<Value, (u16, String)> {
    send(agent, c, "GET", url, None)
}

/// One API request with the connection's credentials; `body` is `(content type, JSON)`.
fn send(
    agent: &ureq::Agent,
    c: &Connection,
    method: &str,
    url: &str,
    body: Option<(&str, &Value)>,
) -> Result<Value, (u16, String)> {
    let mut req = agent.request(method, url).set("Accept", "application/json");
    if let Some(t) = &c.token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    } else if let Some((u, p)) = &c.basic {
        use base64::Engine;
        req = req.set(
            "Authorization",
            &format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))),
        );
    }
    let sent = match body {
        Some((ct, v)) => req.set("Content-Type", ct).send_bytes(&serde_json::to_vec(v).unwrap_or_default()),
        None => req.call(),
    };
    match sent {
        Ok(r) => {
            let mut body = Vec::new();
            r.into_reader().take(MAX_PAGE_BYTES).read_to_end(&mut body).map_err(|e| (0, e.to_string()))?;
            serde_json::from_slice(&body).map_err(|e| (0, format!("bad JSON: {e}")))
        }
        Err(ureq::Error::Status(code, r)) => {
            let msg = r
                .into_json::<Value>()
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default();
            Err((code, msg))
        }
        Err(ureq::Error::Transport(t)) => Err((0, t.to_string())),
    }
}

/// A client for the few writes Palisade makes (automatic responses to alerts).
#[derive(Debug)]
pub struct Client {
    conn: Connection,
    agent: ureq::Agent,
}

impl Client {
    /// A client for `conn`.
    pub fn new(conn: Connection) -> Result<Client, LiveError> {
        let agent = agent(&conn)?;
        Ok(Client { conn, agent })
    }

    /// Sends one request (`path` from the server root, e.g. `/api/v1/namespaces/x/pods/y`);
    /// returns the status-code class as `Ok(code)` for 2xx, `Err((code, message))` otherwise.
    pub fn call(&self, method: &str, path: &str, body: Option<(&str, &Value)>) -> Result<u16, (u16, String)> {
        let url = format!("{}{path}", self.conn.server.trim_end_matches('/'));
        send(&self.agent, &self.conn, method, &url, body).map(|_| 200)
    }

    /// GETs `path` (with its query) and returns the JSON body.
    pub fn get_json(&self, path: &str) -> Result<Value, (u16, String)> {
        let url = format!("{}{path}", self.conn.server.trim_end_matches('/'));
        send(&self.agent, &self.conn, "GET", &url, None)
    }
}

/// Read every resource in [`RESOURCES`] (read-only).
pub fn collect(c: &Connection) -> Result<Collected, LiveError> {
    let agent = agent(c)?;
    let mut out = Collected::default();
    // Discovery: the core API must answer; groups that are not served are skipped quietly.
    out.requests += 1;
    let version = get(&agent, c, &format!("{}/api", c.server)).map_err(|(code, m)| LiveError::Api {
        server: c.server.clone(),
        reason: if code == 0 { m } else { format!("HTTP {code}: {m}") },
    })?;
    if version.get("versions").is_none() {
        return Err(LiveError::Api {
            server: c.server.clone(),
            reason: "not a Kubernetes API server (/api has no versions)".into(),
        });
    }
    out.requests += 1;
    let groups = get(&agent, c, &format!("{}/apis", c.server)).unwrap_or(Value::Null);
    let served: Vec<String> = groups
        .get("groups")
        .and_then(Value::as_array)
        .map(|gs| {
            gs.iter()
                .flat_map(|g| g.get("versions").and_then(Value::as_array).cloned().unwrap_or_default())
                .filter_map(|v| v.get("groupVersion").and_then(Value::as_str).map(|s| format!("apis/{s}")))
                .collect()
        })
        .unwrap_or_default();
    let origin = Origin { file: format!("api://{}", c.server.trim_start_matches("https://")), line: 0 };
    for (gv, resource, kind) in RESOURCES {
        if *gv != "api/v1" && !served.iter().any(|s| s == gv) {
            out.warnings.push(format!("{kind}: {gv} is not served by this cluster; skipped"));
            continue;
        }
        let api_version = gv.trim_start_matches("apis/").trim_start_matches("api/");
        let mut cont: Option<String> = None;
        loop {
            let mut url = format!("{}/{gv}/{resource}?limit={PAGE}", c.server);
            if let Some(t) = &cont {
                url.push_str("&continue=");
                url.push_str(&urlencode(t));
            }
            out.requests += 1;
            match get(&agent, c, &url) {
                Ok(page) => {
                    for item in page.get("items").and_then(Value::as_array).cloned().unwrap_or_default() {
                        let mut item = item;
                        if let Some(m) = item.as_object_mut() {
                            m.entry("kind").or_insert_with(|| Value::String(kind.to_string()));
                            m.entry("apiVersion").or_insert_with(|| Value::String(api_version.to_string()));
                        }
                        if let Some(o) = Object::from_value(item, origin.clone()) {
                            out.objects.push(o);
                        }
                    }
                    cont = page
                        .pointer("/metadata/continue")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string);
                    if cont.is_none() {
                        break;
                    }
                }
                Err((403, m)) => {
                    out.warnings.push(format!(
                        "{kind}: forbidden (HTTP 403){}; the inventory lacks this kind",
                        if m.is_empty() { String::new() } else { format!(": {m}") }
                    ));
                    break;
                }
                Err((404, _)) => {
                    out.warnings.push(format!("{kind}: not found (HTTP 404); skipped"));
                    break;
                }
                Err((code, m)) => {
                    out.warnings.push(format!(
                        "{kind}: {}{m}",
                        if code == 0 { String::new() } else { format!("HTTP {code}: ") }
                    ));
                    break;
                }
            }
        }
    }
    Ok(out)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! There is no kube-apiserver on these machines: the collector is tested against recorded-shape
    //! API responses (discovery, paginated lists, a 403) served over real HTTPS on 127.0.0.1.
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Mutex;

    fn route(path: &str, auth: &str) -> (u16, String) {
        if auth != "Bearer s3cr3t-token" {
            return (401, r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#.into());
        }
        let list = |kind: &str, items: &str, cont: &str| {
            format!(
                r#"{{"kind":"{kind}","apiVersion":"v1","metadata":{{"resourceVersion":"123456","continue":"{cont}"}},"items":[{items}]}}"#
            )
        };
        let (p, q) = path.split_once('?').unwrap_or((path, ""));
        match p {
            "/api" => (200, r#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"10.0.0.1:6443"}]}"#.into()),
            "/apis" => (200, r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[
                {"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}],"preferredVersion":{"groupVersion":"apps/v1","version":"v1"}},
                {"name":"rbac.authorization.k8s.io","versions":[{"groupVersion":"rbac.authorization.k8s.io/v1","version":"v1"}]},
                {"name":"batch","versions":[{"groupVersion":"batch/v1","version":"v1"}]}]}"#.into()),
            "/api/v1/pods" if !q.contains("continue=") => (200, list("PodList",
                r#"{"metadata":{"name":"web-1","namespace":"shop","uid":"a"},"spec":{"containers":[{"name":"app","image":"nginx:1.25","securityContext":{"privileged":true}}]}}"#,
                "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzNDU2fQ==")),
            "/api/v1/pods" => {
                assert!(q.contains("continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzNDU2fQ%3D%3D"), "{q}");
                (200, list("PodList", r#"{"metadata":{"name":"web-2","namespace":"shop","uid":"b"},"spec":{"containers":[{"name":"app","image":"nginx:1.25"}]}}"#, ""))
            }
            "/api/v1/namespaces" => (200, list("NamespaceList", r#"{"metadata":{"name":"shop"}}"#, "")),
            "/apis/apps/v1/deployments" => (200, list("DeploymentList", r#"{"metadata":{"name":"web","namespace":"shop"},"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.25"}]}}}}"#, "")),
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings" => (403, r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"clusterrolebindings.rbac.authorization.k8s.io is forbidden: User \"system:serviceaccount:palisade:reader\" cannot list resource \"clusterrolebindings\" in API group \"rbac.authorization.k8s.io\" at the cluster scope","reason":"Forbidden","code":403}"#.into()),
            _ if p.starts_with("/api/v1/") || p.starts_with("/apis/") => (200, list("List", "", "")),
            _ => (404, r#"{"kind":"Status","code":404}"#.into()),
        }
    }

    fn serve() -> (u16, Vec<u8>, Arc<Mutex<Vec<String>>>) {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        let cert_pem = cert.cert.pem().into_bytes();
        let key =
            PrivateKeyDer::from_pem_slice(cert.key_pair.serialize_pem().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let chain = vec![cert.cert.der().clone()];
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|e| panic!("{e}"))
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap_or_else(|e| panic!("{e}"));
        let cfg = Arc::new(cfg);
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for stream in l.incoming().take(200).flatten() {
                let cfg = cfg.clone();
                let log = log2.clone();
                std::thread::spawn(move || {
                    let Ok(conn) = rustls::ServerConnection::new(cfg) else { return };
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    loop {
                        let mut reader = BufReader::new(&mut tls);
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                        let mut auth = String::new();
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                                break;
                            }
                            if let Some(v) =
                                h.strip_prefix("Authorization: ").or_else(|| h.strip_prefix("authorization: "))
                            {
                                auth = v.trim().to_string();
                            }
                        }
                        log.lock().unwrap_or_else(|e| e.into_inner()).push(path.clone());
                        let (code, body) = route(&path, &auth);
                        let resp = format!(
                            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if tls.write_all(resp.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, cert_pem, log)
    }

    fn kubeconfig(dir: &Path, port: u16, ca: &[u8], token: &str) -> PathBuf {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(ca);
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority-data: {ca}\ncontexts:\n- name: test\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user:\n    token: {token}\n"
        );
        let p = dir.join("kubeconfig");
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        p
    }

    #[test]
    fn collects_with_pagination_and_partial_403() {
        let (port, ca, log) = serve();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let conn =
            from_kubeconfig(&kubeconfig(dir.path(), port, &ca, "s3cr3t-token"), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(conn.context, "test");
        let got = collect(&conn).unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<String> = got.objects.iter().map(Object::id).collect();
        assert_eq!(ids, vec!["Namespace/shop", "Pod/shop/web-1", "Pod/shop/web-2", "Deployment/shop/web"]);
        assert_eq!(got.objects[1].api_version, "v1");
        assert_eq!(got.objects[3].api_version, "apps/v1");
        assert!(
            got.warnings.iter().any(|w| w.starts_with("ClusterRoleBinding: forbidden (HTTP 403)")),
            "{:?}",
            got.warnings
        );
        assert!(
            got.warnings.iter().any(|w| w.starts_with("Ingress: apis/networking.k8s.io/v1 is not served")),
            "{:?}",
            got.warnings
        );
        let paths = log.lock().map(|l| l.clone()).unwrap_or_default();
        assert!(paths.iter().any(|p| p.starts_with("/api/v1/pods?limit=500&continue=")), "{paths:?}");
        // Discovery (2) + 16 served resources + 1 second page; 4 kinds of unserved groups skipped.
        assert_eq!(got.requests, 19);
        assert_eq!(paths.len(), 19);
    }

    #[test]
    fn wrong_token_and_untrusted_ca_fail_clearly() {
        let (port, ca, _) = serve();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let conn = from_kubeconfig(&kubeconfig(dir.path(), port, &ca, "wrong"), None).unwrap_or_else(|e| panic!("{e}"));
        let e = collect(&conn).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("HTTP 401"), "{e}");
        let other = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap_or_else(|e| panic!("{e}"));
        let conn = from_kubeconfig(&kubeconfig(dir.path(), port, other.cert.pem().as_bytes(), "s3cr3t-token"), None)
            .unwrap_or_else(|e| panic!("{e}"));
        let e = collect(&conn).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.to_lowercase().contains("certificate") || e.contains("invalid peer"), "{e}");
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "current-context: nope\ncontexts: []\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(from_kubeconfig(&bad, None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("context \"nope\" not found"));
    }
}
