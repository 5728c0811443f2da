//! The live collector: read-only lists through the Kubernetes API.
//!
//! Configuration comes from a kubeconfig (server, CA, token, token file, client certificate,
//! basic auth, exec credential plugins) or, inside a pod, from the service-account mount.
//! Lists are paginated (`limit`/`continue`); a kind that is forbidden (403) or not served
//! (404) is skipped with a warning naming it, and the rest of the inventory is still read.
//!
//! Everything read from the server or a credential plugin is bounded by [`Limits`]: pages and
//! objects per list, bytes per page and per collection, a repeated `continue` token, an overall
//! deadline per request (the whole response, not only each read) and per collection, and a
//! timeout and output cap for exec plugins. Pages are parsed as a stream: each item becomes an
//! [`Object`] as it is read, without a value tree of the whole page. Redirects are not followed
//! (an API server does not redirect; a 3xx is an error naming the target).

use crate::object::{Object, Origin};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Objects per page.
pub const PAGE: usize = 500;
/// Bytes of an error (non-2xx) body read for its Status message.
const MAX_ERROR_BODY: u64 = 64 << 10;
/// Bytes of a plugin's stderr kept for the error message.
const MAX_PLUGIN_STDERR: u64 = 64 << 10;

/// Bounds on what the collector, the [`Client`] and exec credential plugins may take.
///
/// The defaults are generous for real clusters (the largest lists have a few hundred thousand
/// objects; a 500-object page is a few MiB) and small enough that a hostile or broken server
/// cannot exhaust memory or hang a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Pages per list (`continue` round trips + 1).
    pub max_pages: usize,
    /// Objects per list.
    pub max_objects: usize,
    /// Bytes of one response body (one list page, one discovery document).
    pub max_page_bytes: u64,
    /// Bytes of list pages over a whole [`collect`] (all kinds together).
    pub max_total_bytes: u64,
    /// Bytes of one `continue` token.
    pub max_continue_bytes: usize,
    /// Time to establish a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Overall deadline of one request: connecting, sending, and reading the whole response.
    pub request_timeout: Duration,
    /// Overall deadline of one [`collect`] (discovery and every list).
    pub collect_timeout: Duration,
    /// Time an exec credential plugin may run before it is killed.
    pub exec_timeout: Duration,
    /// Bytes of an exec credential plugin's standard output.
    pub exec_max_output: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_pages: 10_000,
            max_objects: 1_000_000,
            max_page_bytes: 128 << 20,
            max_total_bytes: 4 << 30,
            max_continue_bytes: 16 << 10,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            collect_timeout: Duration::from_secs(15 * 60),
            exec_timeout: Duration::from_secs(30),
            exec_max_output: 1 << 20,
        }
    }
}

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

/// Why one API request (or one list) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The server answered with a non-2xx, non-3xx status; `message` is its Status message
    /// (empty when the body had none).
    #[error("HTTP {code}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Status {
        /// HTTP status code.
        code: u16,
        /// `message` of the Status body.
        message: String,
    },
    /// The server redirected; redirects are not followed.
    #[error("HTTP {code}: redirect to {location:?} not followed (a Kubernetes API server does not redirect)")]
    Redirect {
        /// HTTP status code (3xx).
        code: u16,
        /// The `Location` header (shortened).
        location: String,
    },
    /// Connecting, TLS, or the connection broke.
    #[error("{0}")]
    Transport(String),
    /// The whole response did not arrive within the request deadline.
    #[error("no complete response within {}s (request deadline)", .0.as_secs_f64())]
    Deadline(Duration),
    /// A response body was larger than allowed.
    #[error("response larger than {limit} bytes; refused")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The body is not the JSON expected.
    #[error("bad JSON: {0}")]
    Json(String),
    /// A list went past one of its bounds ([`Limits`]) or repeated a `continue` token.
    #[error("{0}")]
    List(String),
}

impl ApiError {
    /// The HTTP status of a [`ApiError::Status`] or [`ApiError::Redirect`].
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { code, .. } | ApiError::Redirect { code, .. } => Some(*code),
            _ => None,
        }
    }
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
    /// Bounds on requests and lists made with this connection.
    pub limits: Limits,
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

/// Resolve a kubeconfig (and context) into connection settings, with the default [`Limits`].
pub fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<Connection, LiveError> {
    from_kubeconfig_with(path, context, Limits::default())
}

/// Resolve a kubeconfig (and context) into connection settings bounded by `limits` (which also
/// bound an exec credential plugin it runs).
pub fn from_kubeconfig_with(path: &Path, context: Option<&str>, limits: Limits) -> Result<Connection, LiveError> {
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
            token = Some(exec_credential(exec, &limits).map_err(err)?);
        }
    }
    Ok(Connection { server, context: ctx_name, token, basic, ca_pem, client_cert: cert.zip(key), insecure, limits })
}

/// Run an exec credential plugin (client.authentication.k8s.io) and return its token.
///
/// The plugin gets no standard input; its standard output (the ExecCredential) may hold at most
/// `limits.exec_max_output` bytes and it must finish within `limits.exec_timeout`, else it is
/// killed and the error says which bound it crossed.
fn exec_credential(exec: &Value, limits: &Limits) -> Result<String, String> {
    use std::process::Stdio;
    use std::sync::mpsc;
    let cmd = yaml_str(exec, "command").ok_or("exec plugin without command")?;
    let args: Vec<String> = exec
        .get("args")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let mut c = std::process::Command::new(cmd);
    c.args(&args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for e in exec.get("env").and_then(Value::as_array).into_iter().flatten() {
        if let (Some(k), Some(v)) = (yaml_str(e, "name"), yaml_str(e, "value")) {
            c.env(k, v);
        }
    }
    let started = Instant::now();
    let deadline = started + limits.exec_timeout;
    let mut child = c.spawn().map_err(|e| format!("exec plugin {cmd}: {e}"))?;
    // Both pipes are drained by threads (a plugin filling stderr must not block), each capped;
    // the threads are not joined past the deadline, so a grandchild keeping a pipe open cannot
    // hold us either.
    let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>();
    if let Some(out) = child.stdout.take() {
        let cap = limits.exec_max_output;
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let r = out.take(cap.saturating_add(1)).read_to_end(&mut buf).map(|_| buf);
            let _ = tx.send(r);
        });
    }
    let (etx, erx) = mpsc::channel::<Vec<u8>>();
    if let Some(err) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.take(MAX_PLUGIN_STDERR).read_to_end(&mut buf);
            let _ = etx.send(buf);
        });
    }
    let kill = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    let timed_out =
        || format!("exec plugin {cmd}: no credential within {}s; killed", limits.exec_timeout.as_secs_f64());
    let stdout = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Ok(b)) if b.len() as u64 > limits.exec_max_output => {
            kill(&mut child);
            return Err(format!(
                "exec plugin {cmd}: output larger than {} bytes; killed (an ExecCredential is a small JSON object)",
                limits.exec_max_output
            ));
        }
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            kill(&mut child);
            return Err(format!("exec plugin {cmd}: reading its output: {e}"));
        }
        Err(_) => {
            kill(&mut child);
            return Err(timed_out());
        }
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                kill(&mut child);
                return Err(timed_out());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                kill(&mut child);
                return Err(format!("exec plugin {cmd}: {e}"));
            }
        }
    };
    if !status.success() {
        let stderr = erx.recv_timeout(Duration::from_millis(200)).unwrap_or_default();
        return Err(format!("exec plugin {cmd} failed ({status}): {}", String::from_utf8_lossy(&stderr).trim()));
    }
    let v: Value =
        serde_json::from_slice(&stdout).map_err(|e| format!("exec plugin {cmd}: bad ExecCredential: {e}"))?;
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
        limits: Limits::default(),
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
        .timeout_connect(c.limits.connect_timeout)
        .timeout(c.limits.request_timeout)
        .redirects(0)
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
    /// Kinds whose list was read to its end.
    pub read: Vec<String>,
    /// Kinds that could not be read, or only in part: forbidden, failed, over a [`Limits`]
    /// bound, or past the collection deadline. Kinds the cluster does not serve (an API group
    /// it lacks, a 404) are in neither list.
    pub unread: Vec<String>,
    /// Bytes of list pages read.
    pub bytes: u64,
}

impl Collected {
    /// True when not a single list could be read: whatever is assessed from it says nothing
    /// about the cluster (every list forbidden, failed or not served).
    pub fn read_nothing(&self) -> bool {
        self.read.is_empty()
    }

    /// One line naming the kinds that were not (completely) read, if any.
    pub fn summary(&self) -> Option<String> {
        if self.unread.is_empty() {
            return None;
        }
        Some(format!(
            "not read from the cluster: {} ({} of {} kinds); results cover only what was read",
            self.unread.join(", "),
            self.unread.len(),
            self.read.len() + self.unread.len()
        ))
    }
}

/// A reader that refuses to go past `left` bytes (an error, never a silent truncation).
struct Capped<R> {
    inner: R,
    left: u64,
    over: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // At the limit: the body is fine if it ends here, too large if a byte follows.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.over = true;
                    Err(io::Error::other("response body over the size limit"))
                }
            };
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Sends one request with the connection's credentials (`body` is `(content type, JSON)`) and
/// hands the body of a 2xx answer to `read`, within `timeout` (the whole exchange) and `cap`
/// bytes. Returns what `read` made and the bytes read.
#[allow(clippy::too_many_arguments)] // one HTTP exchange: connection, method, path, body, limits and reader
fn exchange<T>(
    agent: &ureq::Agent,
    c: &Connection,
    method: &str,
    url: &str,
    body: Option<(&str, &Value)>,
    timeout: Duration,
    cap: u64,
    read: impl FnOnce(&mut dyn Read) -> Result<T, serde_json::Error>,
) -> Result<(T, u64), ApiError> {
    let started = Instant::now();
    // ureq reports its overall deadline as a timed-out read or connect.
    let past_deadline = || started.elapsed() + Duration::from_millis(50) >= timeout;
    let mut req = agent.request(method, url).timeout(timeout).set("Accept", "application/json");
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
    let resp = match sent {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            let mut b = Vec::new();
            let _ = r.into_reader().take(MAX_ERROR_BODY).read_to_end(&mut b);
            let message = serde_json::from_slice::<Value>(&b)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default();
            return Err(ApiError::Status { code, message });
        }
        Err(ureq::Error::Transport(t)) if past_deadline() => {
            tracing::debug!("{url}: {t}");
            return Err(ApiError::Deadline(timeout));
        }
        Err(ureq::Error::Transport(t)) => return Err(ApiError::Transport(t.to_string())),
    };
    if (300..400).contains(&resp.status()) {
        let location = resp.header("location").unwrap_or("").chars().take(200).collect();
        return Err(ApiError::Redirect { code: resp.status(), location });
    }
    let mut capped = Capped { inner: resp.into_reader(), left: cap, over: false };
    let got = read(&mut capped);
    let used = cap - capped.left;
    match got {
        Ok(v) => Ok((v, used)),
        Err(_) if capped.over => Err(ApiError::TooLarge { limit: cap }),
        Err(e) if e.is_io() && past_deadline() => Err(ApiError::Deadline(timeout)),
        Err(e) if e.is_io() => Err(ApiError::Transport(e.to_string())),
        Err(e) => Err(ApiError::Json(e.to_string())),
    }
}

/// One request whose answer is a JSON document (discovery, a GET, a write's answer).
fn send(
    agent: &ureq::Agent,
    c: &Connection,
    method: &str,
    url: &str,
    body: Option<(&str, &Value)>,
    timeout: Duration,
) -> Result<Value, ApiError> {
    exchange(agent, c, method, url, body, timeout, c.limits.max_page_bytes, |r| {
        serde_json::from_reader(BufReader::with_capacity(64 << 10, r))
    })
    .map(|(v, _)| v)
}

/// Where the items of one list page go, as they are parsed.
struct ItemSink<'a> {
    kind: &'a str,
    api_version: &'a str,
    origin: &'a Origin,
    /// This page's objects.
    objects: Vec<Object>,
    /// Objects the list may still take.
    room: usize,
    /// Set when the page had more items than `room`.
    over: bool,
}

impl ItemSink<'_> {
    fn push(&mut self, mut item: Value) {
        if let Some(m) = item.as_object_mut() {
            m.entry("kind").or_insert_with(|| Value::String(self.kind.to_string()));
            m.entry("apiVersion").or_insert_with(|| Value::String(self.api_version.to_string()));
        }
        if let Some(o) = Object::from_value(item, self.origin.clone()) {
            self.objects.push(o);
        }
    }
}

/// Parses a list page (`{"metadata":{"continue":…},"items":[…]}`) item by item into the sink;
/// yields the `continue` token.
struct PageSeed<'s, 'a>(&'s mut ItemSink<'a>);

#[derive(serde::Deserialize)]
struct ListMeta {
    #[serde(rename = "continue", default)]
    cont: Option<String>,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_, '_> {
    type Value = Option<String>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_, '_> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes list (an object with items)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        let mut cont = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "items" => map.next_value_seed(ItemsSeed(&mut *self.0))?,
                "metadata" => cont = map.next_value::<Option<ListMeta>>()?.and_then(|m| m.cont),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(cont)
    }
}

struct ItemsSeed<'s, 'a>(&'s mut ItemSink<'a>);

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of objects")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<Value>()? {
            if self.0.room == 0 {
                self.0.over = true;
                return Err(de::Error::custom("too many objects"));
            }
            self.0.room -= 1;
            self.0.push(item);
        }
        Ok(())
    }
}

/// Fetches one list page into `sink`; returns the `continue` token (if not empty) and the bytes read.
fn list_page(
    agent: &ureq::Agent,
    c: &Connection,
    url: &str,
    timeout: Duration,
    cap: u64,
    sink: &mut ItemSink<'_>,
) -> Result<(Option<String>, u64), ApiError> {
    let got = exchange(agent, c, "GET", url, None, timeout, cap, |r| {
        let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(64 << 10, r));
        let cont = PageSeed(&mut *sink).deserialize(&mut de)?;
        de.end()?;
        Ok(cont)
    });
    match got {
        Ok((cont, used)) => Ok((cont.filter(|t| !t.is_empty()), used)),
        Err(ApiError::Json(_)) if sink.over => {
            Err(ApiError::List(format!("more than {} objects in the list (limit); stopped", c.limits.max_objects)))
        }
        Err(e) => Err(e),
    }
}

/// A client for the few writes Palisade makes (automatic responses to alerts).
#[derive(Debug)]
pub struct Client {
    conn: Connection,
    agent: ureq::Agent,
}

impl Client {
    /// A client for `conn` (each request bounded by `conn.limits`).
    pub fn new(conn: Connection) -> Result<Client, LiveError> {
        let agent = agent(&conn)?;
        Ok(Client { conn, agent })
    }

    /// Sends one request (`path` from the server root, e.g. `/api/v1/namespaces/x/pods/y`);
    /// returns `Ok(200)` for a 2xx answer, the reason otherwise.
    pub fn call(&self, method: &str, path: &str, body: Option<(&str, &Value)>) -> Result<u16, ApiError> {
        let url = format!("{}{path}", self.conn.server.trim_end_matches('/'));
        send(&self.agent, &self.conn, method, &url, body, self.conn.limits.request_timeout).map(|_| 200)
    }

    /// GETs `path` (with its query) and returns the JSON body.
    pub fn get_json(&self, path: &str) -> Result<Value, ApiError> {
        let url = format!("{}{path}", self.conn.server.trim_end_matches('/'));
        send(&self.agent, &self.conn, "GET", &url, None, self.conn.limits.request_timeout)
    }
}

/// Read every resource in [`RESOURCES`] (read-only), within `c.limits`.
pub fn collect(c: &Connection) -> Result<Collected, LiveError> {
    let limits = &c.limits;
    let phase_end = Instant::now() + limits.collect_timeout;
    let remaining = || phase_end.saturating_duration_since(Instant::now());
    let timeout = || limits.request_timeout.min(remaining());
    let agent = agent(c)?;
    let mut out = Collected::default();
    // Discovery: the core API must answer; groups that are not served are skipped quietly.
    out.requests += 1;
    let version = send(&agent, c, "GET", &format!("{}/api", c.server), None, timeout())
        .map_err(|e| LiveError::Api { server: c.server.clone(), reason: e.to_string() })?;
    if version.get("versions").is_none() {
        return Err(LiveError::Api {
            server: c.server.clone(),
            reason: "not a Kubernetes API server (/api has no versions)".into(),
        });
    }
    out.requests += 1;
    let groups = send(&agent, c, "GET", &format!("{}/apis", c.server), None, timeout()).unwrap_or(Value::Null);
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
    let hasher = RandomState::new();
    for (gv, resource, kind) in RESOURCES {
        if *gv != "api/v1" && !served.iter().any(|s| s == gv) {
            out.warnings.push(format!("{kind}: {gv} is not served by this cluster; skipped"));
            continue;
        }
        let api_version = gv.trim_start_matches("apis/").trim_start_matches("api/");
        let mut cont: Option<String> = None;
        // Hashes of the tokens seen: a server that repeats one would otherwise loop forever.
        let mut seen: HashSet<u64> = HashSet::new();
        let mut pages = 0usize;
        let mut count = 0usize;
        let outcome: Result<(), ApiError> = loop {
            if pages >= limits.max_pages {
                break Err(ApiError::List(format!(
                    "more than {} pages (continue tokens without end; limit); stopped",
                    limits.max_pages
                )));
            }
            if remaining().is_zero() {
                break Err(ApiError::List(format!(
                    "the collection deadline ({}s) passed",
                    limits.collect_timeout.as_secs_f64()
                )));
            }
            let budget = limits.max_total_bytes.saturating_sub(out.bytes);
            if budget == 0 {
                break Err(ApiError::List(format!(
                    "the collection read {} bytes of lists (limit); stopped",
                    limits.max_total_bytes
                )));
            }
            let mut url = format!("{}/{gv}/{resource}?limit={PAGE}", c.server);
            if let Some(t) = &cont {
                url.push_str("&continue=");
                url.push_str(&urlencode(t));
            }
            out.requests += 1;
            pages += 1;
            let cap = limits.max_page_bytes.min(budget);
            let mut sink = ItemSink {
                kind,
                api_version,
                origin: &origin,
                objects: Vec::new(),
                room: limits.max_objects.saturating_sub(count),
                over: false,
            };
            match list_page(&agent, c, &url, timeout(), cap, &mut sink) {
                Ok((next, used)) => {
                    out.bytes += used;
                    let Some(next) = next else {
                        count += sink.objects.len();
                        out.objects.append(&mut sink.objects);
                        break Ok(());
                    };
                    if !seen.insert(hasher.hash_one(&next)) {
                        // This page is most likely a replay of an earlier one: dropped.
                        break Err(ApiError::List(format!(
                            "the server repeated a continue token (page {pages}); stopped instead of looping"
                        )));
                    }
                    count += sink.objects.len();
                    out.objects.append(&mut sink.objects);
                    if next.len() > limits.max_continue_bytes {
                        break Err(ApiError::List(format!(
                            "a continue token of {} bytes (limit {}); stopped",
                            next.len(),
                            limits.max_continue_bytes
                        )));
                    }
                    cont = Some(next);
                }
                Err(e @ ApiError::TooLarge { .. }) => {
                    // Those bytes were read (and dropped): they count against the budget.
                    out.bytes += cap;
                    if cap == limits.max_page_bytes {
                        break Err(e);
                    }
                    break Err(ApiError::List(format!(
                        "the collection read {} bytes of lists (limit); stopped",
                        limits.max_total_bytes
                    )));
                }
                Err(e) => break Err(e),
            }
        };
        let partly = if count == 0 {
            "the inventory lacks this kind".to_string()
        } else {
            format!("only {count} object(s) of this kind were read")
        };
        match outcome {
            Ok(()) => out.read.push(kind.to_string()),
            Err(ApiError::Status { code: 403, message }) => {
                out.warnings.push(format!(
                    "{kind}: forbidden (HTTP 403){}; {partly}",
                    if message.is_empty() { String::new() } else { format!(": {message}") }
                ));
                out.unread.push(kind.to_string());
            }
            Err(ApiError::Status { code: 404, .. }) if count == 0 => {
                out.warnings.push(format!("{kind}: not found (HTTP 404); skipped"));
            }
            Err(e) => {
                out.warnings.push(format!("{kind}: {e}; {partly}"));
                out.unread.push(kind.to_string());
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

#[cfg(test)]
mod hostile {
    //! Servers and plugins that misbehave on purpose, built here: endless and repeated continue
    //! tokens, pages without end, bodies that trickle, redirects without a host, everything
    //! forbidden, and credential plugins that never stop talking or never finish.
    use super::*;
    use std::io::{BufRead, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicU64, Ordering};

    type Handler = dyn Fn(&str, &mut TcpStream) + Send + Sync;

    /// A plain-HTTP server on 127.0.0.1: one request per connection, answered by `h`.
    fn server(h: Arc<Handler>) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let h = h.clone();
                std::thread::spawn(move || {
                    let mut s = s;
                    let Ok(read) = s.try_clone() else { return };
                    let mut r = io::BufReader::new(read);
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                    h(&path, &mut s);
                });
            }
        });
        port
    }

    fn reply(s: &mut TcpStream, code: u16, body: &str) {
        let _ = write!(
            s,
            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }

    /// Discovery of a cluster serving only the core group; lists empty unless `pods` handles them.
    fn cluster(pods: impl Fn(&str, &mut TcpStream) + Send + Sync + 'static) -> u16 {
        server(Arc::new(move |path: &str, s: &mut TcpStream| {
            let p = path.split('?').next().unwrap_or("");
            match p {
                "/api" => reply(s, 200, r#"{"kind":"APIVersions","versions":["v1"]}"#),
                "/apis" => reply(s, 200, r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#),
                _ if p.starts_with("/api/v1/") => pods(path, s),
                _ => reply(s, 404, r#"{"kind":"Status","code":404}"#),
            }
        }))
    }

    fn conn(port: u16, limits: Limits) -> Connection {
        Connection {
            server: format!("http://127.0.0.1:{port}"),
            context: "hostile".into(),
            token: Some("t".into()),
            basic: None,
            ca_pem: None,
            client_cert: None,
            insecure: false,
            limits,
        }
    }

    fn pod(n: u64) -> String {
        format!(
            r#"{{"metadata":{{"name":"p-{n}","namespace":"x"}},"spec":{{"containers":[{{"name":"c","image":"i"}}]}}}}"#
        )
    }

    fn list(items: &[String], cont: &str) -> String {
        format!(
            r#"{{"kind":"PodList","apiVersion":"v1","metadata":{{"continue":"{cont}"}},"items":[{}]}}"#,
            items.join(",")
        )
    }

    fn warning<'a>(got: &'a Collected, kind: &str) -> &'a str {
        got.warnings.iter().find(|w| w.starts_with(&format!("{kind}: "))).map(String::as_str).unwrap_or("")
    }

    fn pods(got: &Collected) -> usize {
        got.objects.iter().filter(|o| o.kind == "Pod").count()
    }

    #[test]
    fn endless_continue_tokens_stop_at_the_page_and_object_limits() {
        let n = Arc::new(AtomicU64::new(0));
        let n2 = n.clone();
        let port = cluster(move |path, s| {
            let i = n2.fetch_add(1, Ordering::SeqCst);
            if path.starts_with("/api/v1/pods?") {
                // One pod and a new token per page, forever.
                reply(s, 200, &list(&[pod(i)], &format!("token-{i}")));
            } else if path.starts_with("/api/v1/configmaps?") {
                let items: Vec<String> = (0..300).map(|k| pod(i * 1000 + k).replace("\"spec\"", "\"data\"")).collect();
                reply(s, 200, &list(&items, &format!("cm-{i}")).replace("PodList", "ConfigMapList"));
            } else {
                reply(s, 200, &list(&[], ""));
            }
        });
        let limits = Limits { max_pages: 25, max_objects: 1000, ..Limits::default() };
        let got = collect(&conn(port, limits)).unwrap_or_else(|e| panic!("{e}"));
        assert!(warning(&got, "Pod").contains("more than 25 pages"), "{:?}", got.warnings);
        assert!(warning(&got, "Pod").contains("only 25 object(s)"), "{:?}", got.warnings);
        assert_eq!(pods(&got), 25);
        assert!(warning(&got, "ConfigMap").contains("more than 1000 objects"), "{:?}", got.warnings);
        // Three whole pages fit; the fourth went over the limit and was dropped.
        assert_eq!(got.objects.iter().filter(|o| o.kind == "ConfigMap").count(), 900);
        assert_eq!(got.unread, vec!["Pod", "ConfigMap"]);
        assert_eq!(got.read, vec!["Namespace", "Node", "ServiceAccount", "Service"]);
        // discovery 2 + 25 pod pages + 4 configmap pages + 4 other lists
        assert_eq!(got.requests, 35);
        assert!(got.summary().is_some_and(|s| s.contains("Pod, ConfigMap (2 of 6 kinds)")), "{:?}", got.summary());
    }

    #[test]
    fn a_repeated_continue_token_is_an_error_not_a_loop() {
        let n = Arc::new(AtomicU64::new(0));
        let n2 = n.clone();
        let port = cluster(move |path, s| {
            if path.starts_with("/api/v1/pods?") {
                let i = n2.fetch_add(1, Ordering::SeqCst);
                reply(s, 200, &list(&[pod(i)], "c2FtZQ=="));
            } else {
                reply(s, 200, &list(&[], ""));
            }
        });
        let got = collect(&conn(port, Limits::default())).unwrap_or_else(|e| panic!("{e}"));
        assert!(warning(&got, "Pod").contains("repeated a continue token (page 2)"), "{:?}", got.warnings);
        assert_eq!(n.load(Ordering::SeqCst), 2, "two pod pages asked for, no more");
        assert_eq!(pods(&got), 1, "the replayed page is dropped");
        assert!(got.unread.contains(&"Pod".to_string()));
    }

    #[test]
    fn an_endless_page_is_refused_at_the_page_cap_while_streaming() {
        let sent = Arc::new(AtomicU64::new(0));
        let sent2 = sent.clone();
        let port = cluster(move |path, s| {
            if path.starts_with("/api/v1/pods?") {
                // No length and no end: items are generated as they are written.
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n");
                let _ = s.write_all(br#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":["#);
                let mut i = 0u64;
                loop {
                    let chunk = format!("{},", pod(i));
                    if s.write_all(chunk.as_bytes()).is_err() {
                        return;
                    }
                    sent2.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                    i += 1;
                }
            } else if path.starts_with("/api/v1/nodes?") {
                // One item that is a single endless string.
                let _ =
                    s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"items\":[{\"metadata\":{\"name\":\"");
                let block = vec![b'a'; 64 << 10];
                while s.write_all(&block).is_ok() {}
            } else {
                reply(s, 200, &list(&[], ""));
            }
        });
        let limits = Limits { max_page_bytes: 4 << 20, ..Limits::default() };
        let t = Instant::now();
        let got = collect(&conn(port, limits)).unwrap_or_else(|e| panic!("{e}"));
        assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
        assert!(warning(&got, "Pod").contains("response larger than 4194304 bytes"), "{:?}", got.warnings);
        assert!(warning(&got, "Node").contains("response larger than 4194304 bytes"), "{:?}", got.warnings);
        assert_eq!(pods(&got), 0, "a page that is refused adds nothing");
        // Two refused pages of 4 MiB each were read (plus the empty lists).
        assert!((8 << 20..(8 << 20) + 4096).contains(&got.bytes), "{}", got.bytes);
        // The server stopped soon after the cap: the client closed rather than read on.
        assert!(sent.load(Ordering::SeqCst) < 64 << 20, "{}", sent.load(Ordering::SeqCst));
        assert_eq!(got.unread, vec!["Node", "Pod"]);
    }

    #[test]
    fn the_collection_byte_budget_spans_kinds() {
        let port = cluster(|_, s| reply(s, 200, &list(&(0..100).map(pod).collect::<Vec<_>>(), "")));
        let limits = Limits { max_total_bytes: 20_000, ..Limits::default() };
        let got = collect(&conn(port, limits)).unwrap_or_else(|e| panic!("{e}"));
        // Each list is ~9.5 KB: two fit, the third runs over and the rest are not asked for.
        assert_eq!(got.read, vec!["Namespace", "Node"], "{:?}", got.warnings);
        assert!(warning(&got, "Pod").contains("read 20000 bytes of lists (limit)"), "{:?}", got.warnings);
        assert!(warning(&got, "ConfigMap").contains("read 20000 bytes of lists (limit)"), "{:?}", got.warnings);
        assert_eq!(got.requests, 2 + 3);
    }

    /// Headers at once, then one body byte at a time, slowly: every read succeeds, only an
    /// overall deadline ends it.
    fn trickle(s: &mut TcpStream, every: Duration) {
        let body = list(&[pod(0)], "");
        let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        for b in body.bytes() {
            if s.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(every);
        }
    }

    #[test]
    fn a_trickling_server_is_cut_off_at_the_request_deadline() {
        let port = cluster(|path, s| {
            if path.starts_with("/api/v1/pods?") {
                trickle(s, Duration::from_millis(250));
            } else {
                reply(s, 200, &list(&[], ""));
            }
        });
        let limits = Limits { request_timeout: Duration::from_millis(1500), ..Limits::default() };
        let t = Instant::now();
        let got = collect(&conn(port, limits)).unwrap_or_else(|e| panic!("{e}"));
        let took = t.elapsed();
        assert!(warning(&got, "Pod").contains("no complete response within 1.5s"), "{:?}", got.warnings);
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(got.unread, vec!["Pod"]);
        assert_eq!(got.read.len(), 5);

        // Headers that trickle: discovery fails within the deadline.
        let port = server(Arc::new(|_: &str, s: &mut TcpStream| {
            for b in b"HTTP/1.1 200 OK\r\nX-Slow: ".iter().chain([b'a'; 200].iter()) {
                if s.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }));
        let limits = Limits { request_timeout: Duration::from_secs(1), ..Limits::default() };
        let t = Instant::now();
        let e = collect(&conn(port, limits)).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("no complete response within 1s"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    }

    #[test]
    fn the_collection_deadline_ends_the_whole_phase() {
        let port = cluster(|path, s| {
            if path.starts_with("/api/v1/nodes?") {
                trickle(s, Duration::from_millis(200));
            } else {
                reply(s, 200, &list(&[], ""));
            }
        });
        let limits = Limits { collect_timeout: Duration::from_millis(1500), ..Limits::default() };
        let t = Instant::now();
        let got = collect(&conn(port, limits)).unwrap_or_else(|e| panic!("{e}"));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(got.read, vec!["Namespace"]);
        assert!(warning(&got, "Pod").contains("collection deadline (1.5s) passed"), "{:?}", got.warnings);
        assert_eq!(got.unread.len(), 5, "{:?}", got.unread);
    }

    #[test]
    fn a_redirect_without_a_host_is_an_error_not_a_panic() {
        for to in ["file:///etc/passwd", "data:text/plain,x", "http://169.254.169.254/latest/"] {
            let to2 = to.to_string();
            let port = server(Arc::new(move |_: &str, s: &mut TcpStream| {
                let _ = write!(s, "HTTP/1.1 302 Found\r\nLocation: {to2}\r\nContent-Length: 0\r\n\r\n");
            }));
            let e = collect(&conn(port, Limits::default())).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("HTTP 302: redirect to") && e.contains(to) && e.contains("not followed"), "{e}");
        }
    }

    #[test]
    fn every_list_forbidden_reads_nothing() {
        let port = cluster(|_, s| {
            reply(
                s,
                403,
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden","reason":"Forbidden","code":403}"#,
            )
        });
        let got = collect(&conn(port, Limits::default())).unwrap_or_else(|e| panic!("{e}"));
        assert!(got.read_nothing());
        assert_eq!(got.unread.len(), 6);
        assert!(got.summary().is_some_and(|s| s.contains("(6 of 6 kinds)")), "{:?}", got.summary());
        let port = cluster(|_, s| reply(s, 200, &list(&[], "")));
        let got = collect(&conn(port, Limits::default())).unwrap_or_else(|e| panic!("{e}"));
        assert!(!got.read_nothing(), "an empty cluster was read");
        assert_eq!(got.summary(), None);
    }

    fn plugin_kubeconfig(dir: &Path, script: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let plugin = dir.join("plugin.sh");
        std::fs::write(&plugin, format!("#!/bin/sh\n{script}\n")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap_or_else(|e| panic!("{e}"));
        let kc = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: t\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n",
            plugin.display()
        );
        std::fs::write(&kc, text).unwrap_or_else(|e| panic!("{e}"));
        kc
    }

    #[test]
    fn exec_plugin_gives_a_token() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let kc = plugin_kubeconfig(
            dir.path(),
            r#"echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-plugin"}}'"#,
        );
        let c = from_kubeconfig(&kc, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.token.as_deref(), Some("from-plugin"));
        let kc = plugin_kubeconfig(dir.path(), "echo denied >&2; exit 3");
        let e = from_kubeconfig(&kc, None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("failed") && e.contains("denied"), "{e}");
    }

    #[test]
    fn an_exec_plugin_that_never_stops_talking_is_killed_at_the_output_cap() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let kc = plugin_kubeconfig(dir.path(), &format!("echo $$ > {}/pid; exec yes", dir.path().display()));
        let t = Instant::now();
        let e = from_kubeconfig(&kc, None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("output larger than 1048576 bytes; killed"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap_or_default();
        assert!(!Path::new(&format!("/proc/{}", pid.trim())).exists(), "the plugin {pid} was killed and reaped");
    }

    #[test]
    fn an_exec_plugin_that_never_finishes_is_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let limits = Limits { exec_timeout: Duration::from_secs(1), ..Limits::default() };
        // Silent, and (second case) done talking but not exiting.
        let d = dir.path().display();
        for script in [
            format!("echo $$ > {d}/pid; exec sleep 60"),
            format!("echo $$ > {d}/pid; echo '{{}}'; exec 1>&-; exec sleep 60"),
        ] {
            let kc = plugin_kubeconfig(dir.path(), &script);
            let t = Instant::now();
            let e = from_kubeconfig_with(&kc, None, limits.clone()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("no credential within 1s; killed"), "{e}");
            assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
            let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap_or_default();
            assert!(!Path::new(&format!("/proc/{}", pid.trim())).exists(), "the plugin {pid} was killed and reaped");
        }
    }
}
