//! An OCI Distribution API v2 client: manifests and blobs, anonymous, basic
//! and bearer-token authentication (the `WWW-Authenticate` challenge flow),
//! retries with backoff on 429 and 5xx.

use crate::error::{ImageError, Result};
use crate::layout::image_info;
use crate::reference::{RegistryRef, DOCKER_HUB};
use crate::spec::{self, ManifestOrIndex, Platform};
use crate::{ImageInfo, ImageSource};
use base64::Engine;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// How to reach and authenticate to a registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Use plain HTTP (and accept it as a fallback for loopback registries).
    pub insecure: bool,
    /// User name (overrides the Docker config file).
    pub username: Option<String>,
    /// Password or token.
    pub password: Option<String>,
    /// Docker config file to read credentials from (default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`).
    pub docker_config: Option<std::path::PathBuf>,
    /// Attempts for a request that fails with 429, 5xx or a connection error.
    pub retries: u32,
    /// Base delay of the exponential backoff.
    pub backoff: Duration,
    /// Deadline of everything one client does (a whole pull: token, manifests, config and every
    /// layer, retries included); `None` is [`PULL_DEADLINE`]. A registry that answers slowly or
    /// keeps asking for retries ends with an error rather than holding the command forever.
    pub pull_deadline: Option<Duration>,
}

/// Default of [`RegistryOptions::pull_deadline`].
pub const PULL_DEADLINE: Duration = Duration::from_secs(2 * 3600);

impl RegistryOptions {
    /// Defaults: three attempts, 500 ms base backoff, credentials from the Docker config.
    pub fn new() -> Self {
        RegistryOptions { retries: 3, backoff: Duration::from_millis(500), ..Default::default() }
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer` or `basic` (lower case).
    pub scheme: String,
    /// Parameters (realm, service, scope, ...).
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Parse a header value such as `Bearer realm="https://a/token",service="r",scope="repository:x:pull"`.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
        if scheme.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                chars.next();
            }
            let mut key = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' || c == ',' {
                    break;
                }
                key.push(c);
                chars.next();
            }
            if key.is_empty() {
                break;
            }
            if chars.next() != Some('=') {
                break;
            }
            let mut val = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                val.push(n)
                            }
                        }
                        '"' => break,
                        c => val.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    val.push(c);
                    chars.next();
                }
            }
            params.push((key.trim().to_ascii_lowercase(), val));
        }
        Some(Challenge { scheme: scheme.to_ascii_lowercase(), params })
    }

    fn param(&self, k: &str) -> Option<&str> {
        self.params.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
    }
}

/// Credentials for `registry` from a Docker config file.
pub fn docker_config_credentials(path: &std::path::Path, registry: &str) -> Option<(String, String)> {
    let data = std::fs::read(path).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&data).ok()?;
    let auths = v.get("auths")?.as_object()?;
    let keys: Vec<String> = if registry == DOCKER_HUB {
        vec!["https://index.docker.io/v1/".into(), "index.docker.io".into(), "docker.io".into(), registry.into()]
    } else {
        vec![
            registry.into(),
            format!("https://{registry}"),
            format!("http://{registry}"),
            format!("https://{registry}/v1/"),
        ]
    };
    for k in keys {
        if let Some(entry) = auths.get(&k) {
            if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
                let decoded = base64::engine::general_purpose::STANDARD.decode(auth.trim()).ok()?;
                let s = String::from_utf8(decoded).ok()?;
                let (u, p) = s.split_once(':')?;
                return Some((u.to_string(), p.to_string()));
            }
            if let (Some(u), Some(p)) =
                (entry.get("username").and_then(|x| x.as_str()), entry.get("password").and_then(|x| x.as_str()))
            {
                return Some((u.to_string(), p.to_string()));
            }
        }
    }
    None
}

fn default_docker_config() -> Option<std::path::PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(std::path::PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".docker/config.json"))
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    Basic(String),
    Bearer(String),
}

/// A client for one repository of one registry, on the workspace's one HTTP client
/// ([`palisade_net`]): redirects are followed by hand, and credentials go only to the registry
/// host they were configured for (and the token realm that host names), never after a redirect
/// (a blob redirected to a CDN is fetched without them) and never over plain HTTP to a host that
/// is not loopback.
#[derive(Debug)]
pub struct Client {
    net: palisade_net::Client,
    reference: RegistryRef,
    scheme: Mutex<&'static str>,
    creds: Option<(String, String)>,
    auth: Mutex<Auth>,
    opts: RegistryOptions,
    started: std::time::Instant,
}

/// Deadline of a manifest, config or token request.
const DOCUMENT_DEADLINE: Duration = Duration::from_secs(120);
/// Deadline of a layer download (the whole body).
const BLOB_DEADLINE: Duration = Duration::from_secs(3600);

impl Client {
    /// A client for `reference`.
    pub fn new(reference: RegistryRef, opts: RegistryOptions) -> Client {
        let net = palisade_net::Client::new(palisade_net::ClientOptions {
            connect_timeout: Duration::from_secs(15),
            deadline: DOCUMENT_DEADLINE,
            ..Default::default()
        });
        let creds = match (&opts.username, &opts.password) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            _ => opts
                .docker_config
                .clone()
                .or_else(default_docker_config)
                .and_then(|p| docker_config_credentials(&p, &reference.registry)),
        };
        let scheme = if opts.insecure { "http" } else { "https" };
        Client {
            net,
            reference,
            scheme: Mutex::new(scheme),
            creds,
            auth: Mutex::new(Auth::None),
            opts,
            started: std::time::Instant::now(),
        }
    }

    fn image(&self) -> String {
        self.reference.to_string()
    }

    fn err(&self, status: String, message: String) -> ImageError {
        ImageError::Registry { image: self.image(), registry: self.reference.registry.clone(), status, message }
    }

    fn url(&self, path: &str) -> String {
        let scheme = *self.scheme.lock().unwrap_or_else(|e| e.into_inner());
        format!("{scheme}://{}/v2/{}/{}", self.reference.registry, self.reference.repository, path)
    }

    /// GET `path` (relative to `/v2/<repo>/`), handling auth challenges and retries.
    fn get(&self, path: &str, accept: Option<&str>, deadline: Duration) -> Result<palisade_net::Response> {
        let policy = palisade_net::RetryPolicy {
            max_attempts: self.opts.retries.max(1),
            base: self.opts.backoff,
            ..Default::default()
        };
        let mut attempt = 0u32;
        let mut authenticated_once = false;
        let mut https_error: Option<String> = None;
        let overall = self.opts.pull_deadline.unwrap_or(PULL_DEADLINE);
        loop {
            let url = self.url(path);
            let left = overall.saturating_sub(self.started.elapsed());
            if left.is_zero() {
                return Err(self.err(
                    "deadline".into(),
                    format!("the pull did not finish within {}s (pull deadline)", overall.as_secs_f64()),
                ));
            }
            let mut req = palisade_net::Request::get(url.clone()).deadline(deadline.min(left));
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            let auth = self.auth.lock().unwrap_or_else(|e| e.into_inner()).clone();
            req = req.credential(match &auth {
                Auth::None => None,
                Auth::Basic(b) => Some(format!("Basic {b}")),
                Auth::Bearer(t) => Some(format!("Bearer {t}")),
            });
            match self.net.send(req) {
                Ok(r) if r.is_success() => return Ok(r),
                Ok(r) if r.status() == 401 && r.redirects() > 0 => {
                    // A redirect target (a CDN) asking for credentials: they are never sent there.
                    let host = r.url().host_str().unwrap_or("").to_string();
                    return Err(self.err(
                        "HTTP 401 after a redirect".into(),
                        format!(
                            "{host} asks for authentication; credentials are only sent to {}",
                            self.reference.registry
                        ),
                    ));
                }
                Ok(r) if r.status() == 401 && !authenticated_once => {
                    authenticated_once = true;
                    let header = r.header("www-authenticate").unwrap_or("").to_string();
                    self.authenticate(&header)?;
                }
                Ok(r) if policy.retryable_status(r.status()) => {
                    attempt += 1;
                    let code = r.status();
                    if attempt >= policy.max_attempts {
                        return Err(self.err(format!("HTTP {code}"), error_message(r)));
                    }
                    let wait = policy.wait(attempt, r.header("retry-after"));
                    tracing::warn!(registry = %self.reference.registry, status = code, ?wait, "retrying");
                    std::thread::sleep(wait);
                }
                Ok(r) => {
                    let code = r.status();
                    let msg = error_message(r);
                    let status = match code {
                        401 => "HTTP 401 unauthorized (check credentials: --username/--password, PALISADE_REGISTRY_USERNAME/PASSWORD or ~/.docker/config.json)".to_string(),
                        403 => "HTTP 403 forbidden".to_string(),
                        404 => format!("HTTP 404 not found ({path})"),
                        c => format!("HTTP {c}"),
                    };
                    return Err(self.err(status, msg));
                }
                Err(e @ palisade_net::NetError::Transport { .. }) => {
                    let mut scheme = self.scheme.lock().unwrap_or_else(|e| e.into_inner());
                    if *scheme == "https" && self.reference.is_loopback() {
                        // Like Docker: loopback registries (IP literals or localhost) may speak plain HTTP.
                        *scheme = "http";
                        https_error = Some(e.to_string());
                        continue;
                    }
                    drop(scheme);
                    attempt += 1;
                    if !e.is_transient() || attempt >= policy.max_attempts {
                        // when plain HTTP was only the fallback, the HTTPS cause (a TLS error,
                        // usually) is what the user needs to see
                        let reason = match &https_error {
                            Some(tls) => format!("over HTTPS: {tls}; over plain HTTP: {e}"),
                            None => e.to_string(),
                        };
                        return Err(self.err("connection error".into(), reason));
                    }
                    std::thread::sleep(policy.wait(attempt, None));
                }
                Err(palisade_net::NetError::Deadline { .. }) if self.started.elapsed() >= overall => {
                    return Err(self.err(
                        "deadline".into(),
                        format!("the pull did not finish within {}s (pull deadline)", overall.as_secs_f64()),
                    ));
                }
                Err(e) => return Err(self.err("request refused".into(), e.to_string())),
            }
        }
    }

    fn authenticate(&self, header: &str) -> Result<()> {
        let auth_err = |reason: String| ImageError::Auth {
            image: self.image(),
            registry: self.reference.registry.clone(),
            reason,
        };
        let ch = Challenge::parse(header)
            .ok_or_else(|| auth_err(format!("unparseable challenge {:?}", palisade_net::printable(header, 200))))?;
        let basic =
            self.creds.as_ref().map(|(u, p)| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
        match ch.scheme.as_str() {
            "basic" => {
                let b = basic.ok_or_else(|| auth_err("registry requires credentials (basic auth)".into()))?;
                *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = Auth::Basic(b);
                Ok(())
            }
            "bearer" => {
                let realm = ch.param("realm").ok_or_else(|| auth_err("bearer challenge without realm".into()))?;
                let mut req = palisade_net::Request::get(realm);
                if let Some(s) = ch.param("service") {
                    req = req.query("service", s);
                }
                let scope = ch
                    .param("scope")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("repository:{}:pull", self.reference.repository));
                req = req.query("scope", &scope).credential(basic.as_ref().map(|b| format!("Basic {b}")));
                let resp = self.net.send(req).map_err(|e| auth_err(format!("token server: {e}")))?;
                if !resp.is_success() {
                    let c = resp.status();
                    return Err(auth_err(format!("token server {realm} answered HTTP {c}: {}", error_message(resp))));
                }
                let body = resp.read_to_vec(1 << 20).map_err(|e| auth_err(e.to_string()))?;
                let v: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| auth_err(format!("token response: {e}")))?;
                let token = v
                    .get("token")
                    .or_else(|| v.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| auth_err("token response without token".into()))?;
                *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = Auth::Bearer(token.to_string());
                Ok(())
            }
            other => Err(auth_err(format!("unsupported auth scheme {:?}", palisade_net::printable(other, 50)))),
        }
    }

    /// Fetch a manifest or index by tag or digest; returns bytes, content type and digest.
    pub fn manifest(&self, reference: &str) -> Result<(Vec<u8>, String, String)> {
        let r = self.get(&format!("manifests/{reference}"), Some(ACCEPT), DOCUMENT_DEADLINE)?;
        let ct = r.content_type().to_string();
        let header_digest = r.header("docker-content-digest").map(str::to_string);
        let mut body = Vec::new();
        r.into_reader()
            .take(spec::MAX_DOCUMENT + 1)
            .read_to_end(&mut body)
            .map_err(|e| self.err("read error".into(), e.to_string()))?;
        if body.len() as u64 > spec::MAX_DOCUMENT {
            return Err(ImageError::Limit { image: self.image(), what: "manifest".into(), limit: spec::MAX_DOCUMENT });
        }
        manifest_digest(&self.image(), reference, header_digest.as_deref(), &body).map(|d| (body, ct, d))
    }

    /// Fetch a small blob (config) fully, verifying its digest.
    pub fn small_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        self.blob(digest)?
            .take(spec::MAX_DOCUMENT + 1)
            .read_to_end(&mut body)
            .map_err(|e| self.err("read error".into(), e.to_string()))?;
        if body.len() as u64 > spec::MAX_DOCUMENT {
            return Err(ImageError::Limit {
                image: self.image(),
                what: format!("blob {digest}"),
                limit: spec::MAX_DOCUMENT,
            });
        }
        spec::verify_digest(&self.image(), digest, &body, digest)?;
        Ok(body)
    }

    /// Stream a blob.
    pub fn blob(&self, digest: &str) -> Result<Box<dyn Read + Send>> {
        crate::reference::validate_digest(digest).map_err(|reason| ImageError::InvalidManifest {
            image: self.image(),
            what: "descriptor",
            reason,
        })?;
        Ok(Box::new(self.get(&format!("blobs/{digest}"), None, BLOB_DEADLINE)?.into_reader()))
    }
}

/// The digest to report for manifest `body` fetched by `reference` (a tag or a
/// digest): always one computed here. A digest reference (`sha256:` or
/// `sha512:`) must match the bytes; for a tag, the registry's
/// `Docker-Content-Digest` header is only compared with the bytes (a
/// mismatch is an error), never reported as such.
fn manifest_digest(image: &str, reference: &str, header: Option<&str>, body: &[u8]) -> Result<String> {
    if reference.contains(':') {
        spec::verify_digest(image, "manifest", body, reference)?;
        return Ok(reference.to_string());
    }
    let computed = spec::sha256_digest(body);
    if let Some(h) = header.map(str::trim).filter(|h| !h.is_empty()) {
        let algo = h.split_once(':').map(|(a, _)| a).unwrap_or("");
        match spec::digest_with(algo, body) {
            Some(actual) if actual == h => {}
            Some(actual) => {
                return Err(ImageError::DigestMismatch {
                    image: image.into(),
                    layer: "manifest (Docker-Content-Digest)".into(),
                    expected: h.chars().take(200).collect(),
                    actual,
                })
            }
            None => {
                tracing::warn!(image, header = %h.chars().take(200).collect::<String>(), "registry sent a Docker-Content-Digest of an unknown algorithm; ignored")
            }
        }
    }
    Ok(computed)
}

fn error_message(r: palisade_net::Response) -> String {
    let mut body = Vec::new();
    let _ = r.into_reader().take(64 * 1024).read_to_end(&mut body);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
        if let Some(errs) = v.get("errors").and_then(|e| e.as_array()) {
            let msgs: Vec<String> = errs
                .iter()
                .map(|e| {
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                    format!("{code} {msg}").trim().to_string()
                })
                .collect();
            return msgs.join("; ");
        }
    }
    String::from_utf8_lossy(&body).chars().take(200).collect::<String>().trim().to_string()
}

/// An image in a registry.
#[derive(Debug)]
pub struct RegistryImage {
    client: Client,
    info: ImageInfo,
}

impl RegistryImage {
    /// Resolve the reference (following an index to `platform`) and fetch the config.
    pub fn open(reference: RegistryRef, platform: &Platform, opts: RegistryOptions) -> Result<RegistryImage> {
        let client = Client::new(reference, opts);
        let name = client.image();
        let mut want = client.reference.reference().to_string();
        for _depth in 0..4 {
            let (bytes, ct, digest) = client.manifest(&want)?;
            match spec::classify(&name, &bytes, Some(&ct))? {
                ManifestOrIndex::Index(idx) => {
                    want = spec::select_platform(&name, &idx, platform)?.digest.clone();
                }
                ManifestOrIndex::Manifest(m) => {
                    let config = client.small_blob(&m.config.digest)?;
                    let info = image_info(&name, digest, &m, &config)?;
                    return Ok(RegistryImage { client, info });
                }
            }
        }
        Err(ImageError::InvalidManifest { image: name, what: "index", reason: "indexes nested too deeply".into() })
    }
}

impl ImageSource for RegistryImage {
    fn info(&self) -> &ImageInfo {
        &self.info
    }

    fn open_layer(&self, idx: usize) -> Result<Box<dyn Read + Send + '_>> {
        let layer = self
            .info
            .layers
            .get(idx)
            .ok_or_else(|| ImageError::NotFound { image: self.info.name.clone(), what: format!("layer {idx}") })?;
        self.client.blob(&layer.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::sync::mpsc;

    /// A loopback HTTP server: `answer(path)` gives the raw response; every request's path and
    /// `Authorization` header is reported on the channel.
    fn hostile_server(
        answer: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> (String, mpsc::Receiver<(String, Option<String>)>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let (tx, rx) = mpsc::channel();
        let answer = std::sync::Arc::new(answer);
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let (tx, answer) = (tx.clone(), answer.clone());
                std::thread::spawn(move || {
                    let mut r = BufReader::new(s.try_clone().unwrap());
                    let mut s = s;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        let mut auth = None;
                        loop {
                            let mut h = String::new();
                            if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':') {
                                if k.eq_ignore_ascii_case("authorization") {
                                    auth = Some(v.trim().to_string());
                                }
                            }
                        }
                        let _ = tx.send((path.clone(), auth));
                        if s.write_all(answer(&path).as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, rx)
    }

    fn basic_client(registry: &str) -> Client {
        let reference = RegistryRef {
            registry: registry.into(),
            repository: "team/app".into(),
            tag: Some("1.0".into()),
            digest: None,
        };
        Client::new(
            reference,
            RegistryOptions {
                insecure: true,
                username: Some("user".into()),
                password: Some("secret".into()),
                retries: 1,
                backoff: Duration::from_millis(1),
                ..Default::default()
            },
        )
    }

    #[test]
    fn the_pull_deadline_spans_requests_and_retries() {
        // A registry that asks for retries forever (503 with Retry-After: 0) and then trickles.
        let (addr, _seen) = hostile_server(|path| {
            if path.contains("manifests") {
                "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n".to_string()
            } else {
                String::new()
            }
        });
        let reference =
            RegistryRef { registry: addr, repository: "team/app".into(), tag: Some("1.0".into()), digest: None };
        let c = Client::new(
            reference,
            RegistryOptions {
                insecure: true,
                retries: 1_000_000,
                backoff: Duration::from_millis(20),
                pull_deadline: Some(Duration::from_millis(800)),
                ..Default::default()
            },
        );
        let t = std::time::Instant::now();
        let e =
            c.get("manifests/1.0", Some(ACCEPT), DOCUMENT_DEADLINE).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("pull deadline"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    }

    #[test]
    fn the_tls_cause_is_kept_when_the_plain_http_fallback_fails_too() {
        // Something on a loopback port that speaks neither TLS nor HTTP.
        let (addr, _seen) = hostile_server(|_| "SSH-2.0-OpenSSH_9.2\r\n\r\n".to_string());
        let reference =
            RegistryRef { registry: addr, repository: "team/app".into(), tag: Some("1.0".into()), digest: None };
        let c = Client::new(
            reference,
            RegistryOptions { retries: 1, backoff: Duration::from_millis(1), ..Default::default() },
        );
        let e =
            c.get("manifests/1.0", Some(ACCEPT), DOCUMENT_DEADLINE).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("over HTTPS:") && e.contains("over plain HTTP:"), "{e}");
    }

    #[test]
    fn credentials_never_follow_a_blob_redirect_to_another_host() {
        // The "CDN" answers 401 with a bearer realm on its own host.
        let (cdn, cdn_seen) = hostile_server(move |path| {
            if path.starts_with("/token") {
                "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"token\":\"t1\"}".to_string()
            } else {
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nWww-Authenticate: Basic realm=\"cdn\"\r\n\r\n"
                    .to_string()
            }
        });
        let cdn2 = cdn.clone();
        let (registry, reg_seen) = hostile_server(move |path| {
            if path.starts_with("/v2/team/app/blobs/") {
                format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{cdn2}/blob\r\nContent-Length: 0\r\n\r\n")
            } else {
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nWww-Authenticate: Basic realm=\"r\"\r\n\r\n"
                    .to_string()
            }
        });
        let c = basic_client(&registry);
        let digest = format!("sha256:{}", "a".repeat(64));
        let e = c.blob(&digest).err().expect("a CDN asking for credentials is an error");
        assert!(e.to_string().contains("credentials are only sent to"), "{e}");
        assert!(reg_seen.try_iter().count() >= 1);
        let to_cdn: Vec<_> = cdn_seen.try_iter().collect();
        assert!(!to_cdn.is_empty());
        assert!(to_cdn.iter().all(|(_, a)| a.is_none()), "credentials reached the CDN: {to_cdn:?}");
    }

    #[test]
    fn a_redirect_to_a_url_without_host_is_an_error_not_a_crash() {
        for loc in ["file:///etc/passwd", "data:,x"] {
            let loc = loc.to_string();
            let (registry, _seen) =
                hostile_server(move |_| format!("HTTP/1.1 302 Found\r\nLocation: {loc}\r\nContent-Length: 0\r\n\r\n"));
            let e = basic_client(&registry).manifest("1.0").expect_err("refused redirect");
            assert!(e.to_string().contains("redirect refused"), "{e}");
        }
    }

    #[test]
    fn a_look_alike_loopback_name_gets_no_plain_http_fallback() {
        assert!(RegistryRef { registry: "127.0.0.1:5000".into(), repository: "a".into(), tag: None, digest: None }
            .is_loopback());
        assert!(!RegistryRef {
            registry: "127.evil.test:5000".into(),
            repository: "a".into(),
            tag: None,
            digest: None
        }
        .is_loopback());
    }

    #[test]
    fn parses_bearer_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#,
        )
        .unwrap_or_else(|| panic!("no challenge"));
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("scope"), Some("repository:library/alpine:pull,push"));
        let c = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap_or_else(|| panic!("no challenge"));
        assert_eq!(c.scheme, "basic");
        for junk in ["", "Bearer", "Bearer ,,,=", "Bearer realm=\"unterminated", "\u{0}\u{1}"] {
            let _ = Challenge::parse(junk);
        }
    }

    #[test]
    fn reads_docker_config_credentials() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:pw:with:colons");
        std::fs::write(&p, format!(r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{auth}"}}}}}}"#))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            docker_config_credentials(&p, "127.0.0.1:5000"),
            Some(("bob".to_string(), "pw:with:colons".to_string()))
        );
        assert_eq!(docker_config_credentials(&p, "other:5000"), None);
    }

    #[test]
    fn reported_manifest_digests_are_computed() {
        let body = br#"{"schemaVersion":2}"#;
        let s256 = spec::sha256_digest(body);
        let s512 = spec::digest_with("sha512", body).unwrap_or_default();
        // A sha512 pin is checked against the bytes.
        assert_eq!(manifest_digest("i", &s512, None, body).ok(), Some(s512.clone()));
        let other512 = spec::digest_with("sha512", b"other").unwrap_or_default();
        assert!(matches!(manifest_digest("i", &other512, None, body), Err(ImageError::DigestMismatch { .. })));
        // A tag: the header is compared, the computed digest reported.
        assert_eq!(manifest_digest("i", "latest", Some(&s256), body).ok(), Some(s256.clone()));
        let lie = spec::sha256_digest(b"some other manifest");
        assert!(matches!(manifest_digest("i", "latest", Some(&lie), body), Err(ImageError::DigestMismatch { .. })));
        assert_eq!(manifest_digest("i", "latest", None, body).ok(), Some(s256.clone()));
        // A pin of an unknown algorithm is refused.
        assert!(manifest_digest("i", &format!("md5:{}", "0".repeat(32)), None, body).is_err());
    }
}
