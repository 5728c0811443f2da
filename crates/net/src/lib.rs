//! Palisade's one HTTP client.
//!
//! Every outbound HTTP request of the workspace (registries, feed mirrors, the Kubernetes API,
//! webhook sinks, the server) goes through [`Client`]. It wraps a `ureq` agent whose own redirect
//! handling is switched off, and adds what a client talking to servers it does not control needs:
//!
//! - **Redirects followed by hand** ([`Client::send`]): only `http`/`https` targets, at most
//!   [`ClientOptions::max_redirects`] hops, no `https` → `http` downgrade (except to a loopback
//!   address), and a `POST`/`PUT` is only re-sent on `307`/`308` (a `301`/`302`/`303` would turn it
//!   into a body-less `GET`, so it is returned to the caller as the answer, never as delivered).
//!   A `GET`/`HEAD` follows all five redirect statuses.
//! - **Scoped credentials**: a request's [`Request::credential`] is sent only to the origin
//!   (scheme, host, port) of the request's first URL. After a redirect to any other origin it is
//!   dropped. It is never sent over plain HTTP to a host that is not a loopback IP literal or
//!   `localhost` ([`is_loopback_host`]) unless [`ClientOptions::allow_plain_http_credentials`].
//! - **Deadlines**: every request has an overall deadline ([`ClientOptions::deadline`], or the
//!   request's own), which covers connecting, the head *and* reading the body; a server trickling
//!   a byte every few seconds is cut off.
//! - **Size caps**: [`Response::read_to_vec`] and [`Response::into_reader_capped`] fail (rather
//!   than truncate silently) once a body exceeds the caller's cap.
//! - **One retry policy** ([`RetryPolicy`]): which statuses are retried is decided in one place
//!   ([`RetryPolicy::retryable_status`]), with exponential backoff and `Retry-After`.
//!
//! Statuses are not errors here: any answer, 2xx to 5xx, is an `Ok(Response)`; callers decide.
//! Errors ([`NetError`]) are transport failures, refused redirects and caps, each naming the URL.

use std::io::{self, Read};
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use url::Url;

/// Errors of the HTTP client. Every variant names the URL it concerns.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The URL could not be parsed or has a scheme other than http/https.
    #[error("{url}: invalid URL: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A redirect that is not followed: bad or missing `Location`, a scheme other than
    /// http/https, a downgrade to plain HTTP, or too many hops.
    #[error("{url}: redirect refused: {reason}")]
    Redirect {
        /// The URL that answered with the redirect.
        url: String,
        /// Why it was not followed.
        reason: String,
    },
    /// Connecting, TLS, or reading/writing failed (the cause chain is included).
    #[error("{url}: {message}")]
    Transport {
        /// The URL being fetched.
        url: String,
        /// The transport error with its causes, e.g. the TLS alert behind a reset.
        message: String,
        /// What kind of failure this is.
        kind: TransportKind,
    },
    /// The request's deadline passed.
    #[error("{url}: no complete answer within {deadline:?}")]
    Deadline {
        /// The URL being fetched.
        url: String,
        /// The deadline that passed.
        deadline: Duration,
    },
    /// A body exceeded the caller's cap.
    #[error("{url}: response larger than {limit} bytes")]
    TooLarge {
        /// The URL being fetched.
        url: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// A credential would have been sent over plain HTTP to a non-loopback host.
    #[error("{url}: refusing to send credentials over plain HTTP to a non-loopback host")]
    PlainHttpCredentials {
        /// The URL.
        url: String,
    },
}

/// The kind of a transport failure, for retry decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// DNS lookup failed.
    Dns,
    /// The TCP connection could not be made.
    Connect,
    /// TLS failed (handshake, certificate).
    Tls,
    /// Reading or writing on an established connection failed.
    Io,
    /// Anything else (protocol errors, malformed answers).
    Other,
}

impl NetError {
    /// Whether a retry may help (connection-level failures and deadlines; not refused redirects,
    /// TLS certificate errors or caps).
    pub fn is_transient(&self) -> bool {
        match self {
            NetError::Transport { kind, .. } => matches!(kind, TransportKind::Connect | TransportKind::Io),
            NetError::Deadline { .. } => true,
            _ => false,
        }
    }
}

/// How a [`Client`] behaves. The defaults suit a CLI talking to registries and mirrors.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time to establish a TCP connection.
    pub connect_timeout: Duration,
    /// Overall deadline of one request: connect, head and the whole body.
    pub deadline: Duration,
    /// Most redirects followed per request.
    pub max_redirects: u32,
    /// `User-Agent` header.
    pub user_agent: String,
    /// TLS configuration (custom roots, client certificates); default: webpki roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Allow credentials over plain HTTP to non-loopback hosts (an explicit user choice only).
    pub allow_plain_http_credentials: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(15),
            deadline: Duration::from_secs(300),
            max_redirects: 8,
            user_agent: concat!("palisade/", env!("CARGO_PKG_VERSION")).to_string(),
            tls: None,
            allow_plain_http_credentials: false,
        }
    }
}

/// The HTTP client. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    opts: ClientOptions,
}

/// One request. Build with [`Request::get`] / [`Request::new`] and the setters.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    method: &'a str,
    url: String,
    headers: Vec<(String, String)>,
    credential: Option<String>,
    body: Option<&'a [u8]>,
    deadline: Option<Duration>,
}

impl<'a> Request<'a> {
    /// A request with any method.
    pub fn new(method: &'a str, url: impl Into<String>) -> Self {
        Request { method, url: url.into(), headers: Vec::new(), credential: None, body: None, deadline: None }
    }
    /// A GET request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }
    /// A POST request with a body.
    pub fn post(url: impl Into<String>, body: &'a [u8]) -> Self {
        let mut r = Self::new("POST", url);
        r.body = Some(body);
        r
    }
    /// Adds a header (not for `Authorization`: use [`Request::credential`]).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    /// Adds a query parameter (percent-encoded).
    pub fn query(mut self, name: &str, value: &str) -> Self {
        if let Ok(mut u) = Url::parse(&self.url) {
            u.query_pairs_mut().append_pair(name, value);
            self.url = u.to_string();
        }
        self
    }
    /// The `Authorization` header value (`Basic …`, `Bearer …`), sent only to the first URL's
    /// origin and never over plain HTTP to a non-loopback host.
    pub fn credential(mut self, value: Option<String>) -> Self {
        self.credential = value;
        self
    }
    /// A body for POST/PUT/PATCH.
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = Some(body);
        self
    }
    /// Overrides the client's deadline for this request.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }
}

/// An answer: any status. The body is read through a deadline-bound reader.
pub struct Response {
    status: u16,
    url: Url,
    headers: Vec<(String, String)>,
    reader: Box<dyn Read + Send + Sync + 'static>,
    deadline: Duration,
    redirects: u32,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response").field("status", &self.status).field("url", &self.url.as_str()).finish()
    }
}

impl Response {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }
    /// Whether the status is 2xx (the only statuses that mean "delivered").
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
    /// The URL that gave this answer (after redirects).
    pub fn url(&self) -> &Url {
        &self.url
    }
    /// How many redirects were followed.
    pub fn redirects(&self) -> u32 {
        self.redirects
    }
    /// A header, by case-insensitive name (the first one).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// The media type of `Content-Type`, without parameters.
    pub fn content_type(&self) -> &str {
        self.header("content-type").and_then(|v| v.split(';').next()).map(str::trim).unwrap_or("")
    }
    /// `Content-Length`, when the server sent a valid one.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.trim().parse().ok())
    }
    /// The body, failing with [`NetError::TooLarge`] beyond `limit` bytes.
    pub fn read_to_vec(self, limit: u64) -> Result<Vec<u8>, NetError> {
        if let Some(n) = self.content_length() {
            if n > limit {
                return Err(NetError::TooLarge { url: self.url.to_string(), limit });
            }
        }
        let url = self.url.to_string();
        let deadline = self.deadline;
        let mut out = Vec::new();
        let mut r = self.into_reader_capped(limit);
        r.read_to_end(&mut out).map_err(|e| io_to_net(&url, deadline, e))?;
        Ok(out)
    }
    /// A short, printable excerpt of the body for error messages (at most 64 KiB is read, 300
    /// characters kept, control characters replaced).
    pub fn error_excerpt(self) -> String {
        let mut buf = Vec::new();
        let _ = self.reader.take(64 * 1024).read_to_end(&mut buf);
        printable(&String::from_utf8_lossy(&buf), 300)
    }
    /// The body as a reader that fails (an `io::Error` of kind `InvalidData` whose message names
    /// the cap) once more than `limit` bytes arrive.
    pub fn into_reader_capped(self, limit: u64) -> CappedReader {
        CappedReader { inner: self.reader, left: limit, limit }
    }
    /// The body as a reader bounded only by the deadline.
    pub fn into_reader(self) -> Box<dyn Read + Send + Sync + 'static> {
        self.reader
    }
}

/// A reader that fails once more than its limit has been read.
pub struct CappedReader {
    inner: Box<dyn Read + Send + Sync + 'static>,
    left: u64,
    limit: u64,
}

impl std::fmt::Debug for CappedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CappedReader").field("limit", &self.limit).field("left", &self.left).finish()
    }
}

impl Read for CappedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One probe byte tells "exactly at the limit" from "over it".
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("response larger than {} bytes", self.limit),
                )),
            };
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

fn io_to_net(url: &str, deadline: Duration, e: io::Error) -> NetError {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => NetError::Deadline { url: url.to_string(), deadline },
        io::ErrorKind::InvalidData if e.to_string().starts_with("response larger than") => {
            let limit = e.to_string().split_whitespace().nth(3).and_then(|n| n.parse().ok()).unwrap_or(0);
            NetError::TooLarge { url: url.to_string(), limit }
        }
        _ => NetError::Transport { url: url.to_string(), message: error_chain(&e), kind: TransportKind::Io },
    }
}

/// `e` and its causes, joined with `: ` (duplicates removed), so a TLS alert behind a reset shows.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// Replaces control characters (terminal escapes included) and cuts to `max` characters.
pub fn printable(s: &str, max: usize) -> String {
    let mut out: String = s.trim().chars().take(max).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if s.trim().chars().count() > max {
        out.push('…');
    }
    out
}

/// Whether `host` (as written in a URL: a name, an IP literal, or `[v6]`) is loopback.
/// Only IP literals in 127.0.0.0/8 or `::1`, and the name `localhost` when every address it
/// resolves to is loopback, count. A name that merely starts with `127.` does not.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = h.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    let name = h.trim_end_matches('.');
    if name.eq_ignore_ascii_case("localhost") {
        return match (name, 0u16).to_socket_addrs() {
            Ok(addrs) => {
                let v: Vec<_> = addrs.collect();
                !v.is_empty() && v.iter().all(|a| a.ip().is_loopback())
            }
            Err(_) => false,
        };
    }
    false
}

fn origin(u: &Url) -> (String, String, Option<u16>) {
    (u.scheme().to_string(), u.host_str().unwrap_or("").to_ascii_lowercase(), u.port_or_known_default())
}

fn parse_http_url(s: &str) -> Result<Url, NetError> {
    let u = Url::parse(s).map_err(|e| NetError::InvalidUrl { url: printable(s, 200), reason: e.to_string() })?;
    check_http(&u).map_err(|reason| NetError::InvalidUrl { url: printable(s, 200), reason })?;
    Ok(u)
}

fn check_http(u: &Url) -> Result<(), String> {
    match u.scheme() {
        "http" | "https" => {}
        other => return Err(format!("scheme {other:?} is not http or https")),
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(())
}

fn transport_kind(t: &ureq::Transport) -> TransportKind {
    match t.kind() {
        ureq::ErrorKind::Dns => TransportKind::Dns,
        ureq::ErrorKind::ConnectionFailed => {
            let m = error_chain(t).to_ascii_lowercase();
            if m.contains("certificate") || m.contains("tls") || m.contains("handshake") {
                TransportKind::Tls
            } else {
                TransportKind::Connect
            }
        }
        ureq::ErrorKind::Io => {
            let m = error_chain(t).to_ascii_lowercase();
            if m.contains("certificate") || m.contains("tls") || m.contains("alert") {
                TransportKind::Tls
            } else {
                TransportKind::Io
            }
        }
        _ => TransportKind::Other,
    }
}

impl Client {
    /// A client with `opts`.
    pub fn new(opts: ClientOptions) -> Client {
        let mut b = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(opts.connect_timeout)
            .user_agent(&opts.user_agent)
            .max_idle_connections_per_host(8);
        if let Some(tls) = &opts.tls {
            b = b.tls_config(tls.clone());
        }
        Client { agent: b.build(), opts }
    }

    /// The options this client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Sends `req`, following redirects by the rules in the crate docs. Any HTTP status is an
    /// `Ok` answer; errors are transport failures, refused redirects and deadlines.
    pub fn send(&self, req: Request<'_>) -> Result<Response, NetError> {
        let deadline = req.deadline.unwrap_or(self.opts.deadline);
        let started = Instant::now();
        let first = parse_http_url(&req.url)?;
        let first_origin = origin(&first);
        let mut url = first;
        let method = req.method.to_string();
        let body = req.body;
        let mut hops = 0u32;
        loop {
            let left = deadline.checked_sub(started.elapsed()).filter(|d| !d.is_zero());
            let Some(left) = left else {
                return Err(NetError::Deadline { url: url.to_string(), deadline });
            };
            let mut r = self.agent.request_url(&method, &url).timeout(left);
            for (k, v) in &req.headers {
                r = r.set(k, v);
            }
            if let Some(c) = &req.credential {
                if origin(&url) == first_origin {
                    if url.scheme() == "http"
                        && !self.opts.allow_plain_http_credentials
                        && !is_loopback_host(url.host_str().unwrap_or(""))
                    {
                        return Err(NetError::PlainHttpCredentials { url: url.to_string() });
                    }
                    r = r.set("Authorization", c);
                }
            }
            let sent = match body {
                Some(b) => r.send_bytes(b),
                None => r.call(),
            };
            let resp = match sent {
                Ok(r) => r,
                Err(ureq::Error::Status(_, r)) => r,
                Err(ureq::Error::Transport(t)) => {
                    if started.elapsed() >= deadline
                        || matches!(t.kind(), ureq::ErrorKind::Io) && error_chain(&t).contains("timed out")
                    {
                        return Err(NetError::Deadline { url: url.to_string(), deadline });
                    }
                    return Err(NetError::Transport {
                        url: url.to_string(),
                        message: error_chain(&t),
                        kind: transport_kind(&t),
                    });
                }
            };
            let status = resp.status();
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let replays_body = matches!(status, 307 | 308);
                let idempotent = matches!(method.as_str(), "GET" | "HEAD");
                if !idempotent && !replays_body {
                    // Following would turn the request into a body-less GET: hand the 3xx back.
                    return Ok(wrap(resp, url, deadline, hops));
                }
                let loc = resp.header("location").map(str::to_string);
                let redirect_err = |reason: String| NetError::Redirect { url: url.to_string(), reason };
                let Some(loc) = loc else {
                    return Err(redirect_err(format!("HTTP {status} without Location")));
                };
                let next =
                    url.join(&loc).map_err(|e| redirect_err(format!("Location {}: {e}", printable(&loc, 200))))?;
                check_http(&next).map_err(|e| redirect_err(format!("Location {}: {e}", printable(&loc, 200))))?;
                if url.scheme() == "https"
                    && next.scheme() == "http"
                    && !is_loopback_host(next.host_str().unwrap_or(""))
                {
                    return Err(redirect_err(format!("downgrade from https to {}", printable(next.as_str(), 200))));
                }
                hops += 1;
                if hops > self.opts.max_redirects {
                    return Err(redirect_err(format!("more than {} redirects", self.opts.max_redirects)));
                }
                // Drain a little so the connection can be reused; never much.
                let _ = io::copy(&mut resp.into_reader().take(64 * 1024), &mut io::sink());
                tracing::debug!(from = %url, to = %next, status, "following redirect");
                url = next;
                continue;
            }
            return Ok(wrap(resp, url, deadline, hops));
        }
    }

    /// Sends `req` again while the answer or failure is transient under `policy`; returns the
    /// last answer (which may be a non-2xx status) or error.
    pub fn send_with_retry(&self, req: &Request<'_>, policy: &RetryPolicy) -> Result<Response, NetError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let last = attempt >= policy.max_attempts.max(1);
            match self.send(req.clone()) {
                Ok(r) if policy.retryable_status(r.status()) && !last => {
                    let wait = policy.wait(attempt, r.header("retry-after"));
                    tracing::warn!(url = %r.url(), status = r.status(), ?wait, attempt, "retrying");
                    std::thread::sleep(wait);
                }
                Err(e) if e.is_transient() && !last && policy.retry_transport => {
                    let wait = policy.wait(attempt, None);
                    tracing::warn!(error = %e, ?wait, attempt, "retrying");
                    std::thread::sleep(wait);
                }
                other => return other,
            }
        }
    }
}

fn wrap(resp: ureq::Response, url: Url, deadline: Duration, redirects: u32) -> Response {
    let status = resp.status();
    let headers =
        resp.headers_names().into_iter().filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string()))).collect();
    Response { status, url, headers, reader: resp.into_reader(), deadline, redirects }
}

/// The one retry strategy: exponential backoff from [`RetryPolicy::base`], capped at
/// [`RetryPolicy::max_wait`], honouring `Retry-After` (seconds, capped the same way).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// First wait.
    pub base: Duration,
    /// Longest wait.
    pub max_wait: Duration,
    /// Also retry connection-level failures and deadlines (idempotent requests).
    pub retry_transport: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(500),
            max_wait: Duration::from_secs(30),
            retry_transport: true,
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..Self::default() }
    }
    /// The statuses worth retrying: 408 (request timeout), 429 (too many requests), 500, 502, 503
    /// and 504. Not 501 (not implemented) or other 5xx that describe a permanent condition, and
    /// no 4xx besides 408/429.
    pub fn retryable_status(&self, status: u16) -> bool {
        matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
    }
    /// The wait before attempt `attempt + 1`.
    pub fn wait(&self, attempt: u32, retry_after: Option<&str>) -> Duration {
        if let Some(s) = retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
            return Duration::from_secs(s).min(self.max_wait);
        }
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        self.base.saturating_mul(factor).min(self.max_wait)
    }
}

#[cfg(test)]
mod tests;
