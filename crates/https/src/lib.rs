//! A small blocking HTTPS/1.1 server for Palisade's webhooks (the audit-log receiver of
//! `palisade detect serve` and the admission webhook of `palisade admission serve`).
//!
//! Webhook traffic is a handful of long-lived keep-alive connections from kube-apiserver, so the
//! model is one thread per connection (at most [`Limits::max_connections`]), a blocking
//! `accept`, and a handler called with each complete request. What it guarantees:
//!
//! - **TLS** with rustls (ring), optional client-certificate verification, and certificates that
//!   can be swapped while running ([`Server::set_tls`]): new connections get the new chain.
//! - **Slow clients are timed out**: the TLS handshake and each request (head and body) must
//!   arrive within [`Limits::request_timeout`]; an idle keep-alive connection is closed after
//!   [`Limits::idle_timeout`]. A client trickling one byte a second cannot hold a thread.
//! - **Bounded memory**: headers at most 64 KiB, bodies at most [`Limits::max_body_bytes`]
//!   (413 without reading the rest), chunked bodies counted as they arrive.
//! - **Graceful shutdown**: [`Server::shutdown`] stops accepting and waits (up to a grace period)
//!   for requests in flight to be answered.
//!
//! Requests the handler never sees get a short JSON error: 400 (malformed head), 411 (POST
//! without a length), 413 (too large).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// TLS material (PEM).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Server certificate chain.
    pub cert_pem: Vec<u8>,
    /// Server private key.
    pub key_pem: Vec<u8>,
    /// CA bundle for client certificates; with it, clients may authenticate by certificate.
    pub client_ca_pem: Option<Vec<u8>>,
}

/// Errors building a server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding or configuring the socket.
    #[error("listen: {0}")]
    Io(#[from] io::Error),
    /// Certificates and keys.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// Builds a rustls server configuration. With a client CA, clients presenting a certificate are
/// verified against it; `client_cert_optional` also admits clients without one (which must then
/// authenticate otherwise, e.g. with a bearer token).
pub fn server_config(t: &TlsConfig, client_cert_optional: bool) -> Result<Arc<rustls::ServerConfig>, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&t.cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Tls(format!("server certificate: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Tls("no certificate in the server certificate file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&t.key_pem).map_err(|e| Error::Tls(format!("server key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let builder = match &t.client_ca_pem {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca) {
                let c = c.map_err(|e| Error::Tls(format!("client CA: {e}")))?;
                roots.add(c).map_err(|e| Error::Tls(format!("client CA: {e}")))?;
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if client_cert_optional { v.allow_unauthenticated() } else { v };
            builder.with_client_cert_verifier(v.build().map_err(|e| Error::Tls(e.to_string()))?)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(certs, key).map_err(|e| Error::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Resource limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Concurrent connections; more are closed at once.
    pub max_connections: usize,
    /// Time allowed for the TLS handshake and for each whole request to arrive.
    pub request_timeout: Duration,
    /// How long an idle keep-alive connection is kept.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 << 20,
            max_connections: 256,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
        }
    }
}

/// A complete request.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The query string (after `?`), possibly empty.
    pub query: String,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The client address.
    pub peer: SocketAddr,
    /// Whether the client presented a certificate that verified against the client CA.
    pub client_cert: bool,
}

impl Request {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The bearer token of the `Authorization` header.
    pub fn bearer(&self) -> Option<&str> {
        let a = self.header("authorization")?;
        a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")).map(str::trim)
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response { status, content_type: "application/json", body }
    }

    /// `{"message": msg}` with a status.
    pub fn message(status: u16, msg: &str) -> Response {
        let mut body = b"{\"message\":".to_vec();
        write_json_string(&mut body, msg);
        body.extend_from_slice(b"}\n");
        Response::json(status, body)
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response { status, content_type: "text/plain; charset=utf-8", body: body.into() }
    }
}

fn write_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// What answers requests. Called on the connection's thread; must be cheap to share.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A running server.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    active: Arc<AtomicUsize>,
    tls: Arc<RwLock<Option<Arc<rustls::ServerConfig>>>>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `listen` and starts accepting. `tls: None` serves plain HTTP (tests, or behind a
    /// TLS-terminating proxy).
    pub fn bind(
        listen: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: Limits,
        name: &str,
        handler: Handler,
    ) -> Result<Server, Error> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let tls = Arc::new(RwLock::new(tls));
        let limits = Arc::new(limits);
        let (stop2, active2, tls2) = (stop.clone(), active.clone(), tls.clone());
        let conn_name = format!("{name}-conn");
        let accept = std::thread::Builder::new().name(format!("{name}-accept")).spawn(move || {
            for sock in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let sock = match sock {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                };
                if active2.load(Ordering::SeqCst) >= limits.max_connections {
                    tracing::warn!(max = limits.max_connections, "connection limit reached; closing a new connection");
                    continue;
                }
                let peer = sock.peer_addr().unwrap_or(addr);
                let tls = tls2.read().map(|g| g.clone()).unwrap_or_else(|p| p.into_inner().clone());
                active2.fetch_add(1, Ordering::SeqCst);
                let guard = ActiveGuard(active2.clone());
                let (limits, stop, handler) = (limits.clone(), stop2.clone(), handler.clone());
                let spawned = std::thread::Builder::new().name(conn_name.clone()).spawn(move || {
                    let _guard = guard;
                    if let Err(e) = serve_conn(sock, peer, &limits, tls, &stop, &handler) {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                });
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "cannot spawn a connection thread");
                }
            }
        })?;
        Ok(Server { addr, stop, active, tls, accept: Some(accept) })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections open now.
    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Replaces the TLS configuration for new connections (certificate rotation).
    pub fn set_tls(&self, cfg: Arc<rustls::ServerConfig>) {
        match self.tls.write() {
            Ok(mut g) => *g = Some(cfg),
            Err(p) => *p.into_inner() = Some(cfg),
        }
    }

    /// Stops accepting, lets requests in flight finish (up to `grace`), then returns.
    pub fn shutdown(mut self, grace: Duration) {
        self.stop_accepting();
        let until = Instant::now() + grace;
        while self.active.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop_accepting(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the blocking accept
        let wake = if self.addr.ip().is_unspecified() {
            SocketAddr::new(
                if self.addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() },
                self.addr.port(),
            )
        } else {
            self.addr
        };
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop_accepting();
        }
    }
}

struct ActiveGuard(Arc<AtomicUsize>);
impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A socket whose reads fail with `TimedOut` once a deadline has passed.
struct DeadlineStream {
    sock: TcpStream,
    deadline: Rc<Cell<Instant>>,
    applied: Option<Duration>,
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.get().saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "client too slow"));
        }
        // setsockopt only when the budget changed noticeably
        if self.applied.is_none_or(|a| a > left || a + Duration::from_millis(50) < left) {
            self.sock.set_read_timeout(Some(left))?;
            self.applied = Some(left);
        }
        self.sock.read(buf)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn serve_conn(
    sock: TcpStream,
    peer: SocketAddr,
    limits: &Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: &AtomicBool,
    handler: &Handler,
) -> io::Result<()> {
    sock.set_nodelay(true)?;
    sock.set_write_timeout(Some(limits.request_timeout))?;
    let deadline = Rc::new(Cell::new(Instant::now() + limits.request_timeout));
    let ds = DeadlineStream { sock: sock.try_clone()?, deadline: deadline.clone(), applied: None };
    let (stream, client_cert): (Box<dyn Stream>, bool) = match tls {
        Some(tc) => {
            let conn = rustls::ServerConnection::new(tc).map_err(io::Error::other)?;
            let mut s = rustls::StreamOwned::new(conn, ds);
            while s.conn.is_handshaking() {
                s.conn.complete_io(&mut s.sock)?;
            }
            let has_cert = s.conn.peer_certificates().is_some_and(|c| !c.is_empty());
            (Box::new(s), has_cert)
        }
        None => (Box::new(ds), false),
    };
    let mut r = BufReader::with_capacity(16 * 1024, stream);
    let mut out = Vec::with_capacity(4096);
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        // idle wait for the next request, then a deadline for the whole of it
        deadline.set(Instant::now() + limits.idle_timeout);
        match r.fill_buf() {
            Ok([]) => break,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => break,
            Err(e) => return Err(e),
        }
        deadline.set(Instant::now() + limits.request_timeout);
        let (resp, close) = match read_request(&mut r, limits.max_body_bytes) {
            Ok(Parsed::Request(head, body)) => {
                let close = head.close;
                let req = Request {
                    method: head.method,
                    path: head.path,
                    query: head.query,
                    headers: head.headers,
                    body,
                    peer,
                    client_cert,
                };
                (handler(&req), close)
            }
            Ok(Parsed::Reject(status, msg)) => (Response::message(status, msg), true),
            Ok(Parsed::Eof) => break,
            Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
                tracing::debug!(%peer, "request not received in time; closing");
                let _ = write_response(r.get_mut(), &Response::message(408, "request timeout"), true, &mut out);
                break;
            }
            Err(e) => return Err(e),
        };
        let close = close || stop.load(Ordering::SeqCst);
        write_response(r.get_mut(), &resp, close, &mut out)?;
        if close {
            break;
        }
    }
    let _ = sock.shutdown(Shutdown::Both);
    Ok(())
}

fn write_response(w: &mut dyn Stream, resp: &Response, close: bool, out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )?;
    out.extend_from_slice(&resp.body);
    w.write_all(out)?;
    w.flush()
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

struct Head {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    close: bool,
}

enum Parsed {
    Request(Head, Vec<u8>),
    Reject(u16, &'static str),
    Eof,
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;

/// Reads one line of at most `budget` bytes; `None` at EOF or when the line is too long.
fn read_line_limited<R: BufRead>(r: &mut R, budget: &mut usize) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = r.by_ref().take(*budget as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 || n > *budget {
        return Ok(None);
    }
    *budget -= n;
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

fn read_request<R: BufRead>(r: &mut R, max_body: usize) -> io::Result<Parsed> {
    let mut budget = MAX_HEAD;
    let Some(line) = read_line_limited(r, &mut budget)? else { return Ok(Parsed::Eof) };
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(Parsed::Reject(400, "malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Ok(Parsed::Reject(400, "only HTTP/1.x is served"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut head = Head {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers: Vec::new(),
        close: version == "HTTP/1.0",
    };
    let mut len: Option<usize> = None;
    let mut chunked = false;
    loop {
        let Some(h) = read_line_limited(r, &mut budget)? else {
            return Ok(Parsed::Reject(400, "request head too large or truncated"));
        };
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let Some((k, v)) = h.split_once(':') else { return Ok(Parsed::Reject(400, "malformed header")) };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
        match k.as_str() {
            "content-length" => match v.parse() {
                Ok(n) => len = Some(n),
                Err(_) => return Ok(Parsed::Reject(400, "bad Content-Length")),
            },
            "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
            "connection" => head.close = v.eq_ignore_ascii_case("close"),
            _ => {}
        }
        if head.headers.len() >= MAX_HEADERS {
            return Ok(Parsed::Reject(400, "too many headers"));
        }
        head.headers.push((k, v));
    }
    let body = if chunked {
        match read_chunked(r, max_body)? {
            Ok(b) => b,
            Err(status) => return Ok(Parsed::Reject(status, "body too large or malformed chunking")),
        }
    } else {
        match len {
            None if head.method == "POST" || head.method == "PUT" => {
                return Ok(Parsed::Reject(411, "Content-Length required"))
            }
            None => Vec::new(),
            Some(n) if n > max_body => return Ok(Parsed::Reject(413, "body larger than the configured limit")),
            Some(n) => {
                let mut b = vec![0u8; n];
                r.read_exact(&mut b)?;
                b
            }
        }
    };
    Ok(Parsed::Request(head, body))
}

fn read_chunked<R: BufRead>(r: &mut R, max_body: usize) -> io::Result<Result<Vec<u8>, u16>> {
    let mut out = Vec::new();
    let mut budget = MAX_HEAD;
    loop {
        let Some(size) = read_line_limited(r, &mut budget)? else { return Ok(Err(400)) };
        let Ok(n) = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16) else {
            return Ok(Err(400));
        };
        if n == 0 {
            loop {
                match read_line_limited(r, &mut budget)? {
                    None => return Ok(Err(400)),
                    Some(t) if t.trim().is_empty() => return Ok(Ok(out)),
                    Some(_) => {}
                }
            }
        }
        if out.len().saturating_add(n) > max_body {
            return Ok(Err(413));
        }
        let start = out.len();
        out.resize(start + n, 0);
        r.read_exact(&mut out[start..])?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
    }
}

/// Compares secrets without an early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8], max: usize) -> Parsed {
        read_request(&mut io::Cursor::new(raw.to_vec()), max).unwrap_or(Parsed::Reject(0, "io"))
    }

    #[test]
    fn parses_requests_and_rejects_bad_ones() {
        match parse(
            b"POST /validate?timeout=10s HTTP/1.1\r\nContent-Length: 2\r\nAuthorization: Bearer t\r\n\r\n{}",
            10,
        ) {
            Parsed::Request(h, b) => {
                assert_eq!(
                    (h.method.as_str(), h.path.as_str(), h.query.as_str()),
                    ("POST", "/validate", "timeout=10s")
                );
                assert_eq!(b, b"{}");
                assert!(!h.close);
            }
            _ => panic!("expected a request"),
        }
        match parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 10) {
            Parsed::Request(_, b) => assert_eq!(b, b"{}"),
            _ => panic!("chunked"),
        }
        assert!(matches!(parse(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 10), Parsed::Reject(413, _)));
        assert!(matches!(parse(b"POST / HTTP/1.1\r\n\r\n", 10), Parsed::Reject(411, _)));
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nff\r\n", 10),
            Parsed::Reject(413, _)
        ));
        assert!(matches!(parse(b"GARBAGE\r\n\r\n", 10), Parsed::Reject(400, _)));
        assert!(matches!(parse(b"GET / SPDY/3\r\n\r\n", 10), Parsed::Reject(400, _)));
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 10), Parsed::Reject(400, _)));
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        assert!(matches!(parse(&huge, 10), Parsed::Reject(400, _)));
        assert!(matches!(parse(b"", 10), Parsed::Eof));
    }

    #[test]
    fn json_messages_are_escaped() {
        let r = Response::message(400, "bad \"x\"\n");
        assert_eq!(r.body, b"{\"message\":\"bad \\\"x\\\"\\u000a\"}\n");
    }

    #[test]
    fn plain_server_answers_keeps_alive_and_times_out_slow_clients() {
        let limits = Limits { request_timeout: Duration::from_millis(300), ..Limits::default() };
        let h: Handler = Arc::new(|r: &Request| Response::text(200, format!("{} {}", r.method, r.body.len())));
        let server = Server::bind("127.0.0.1:0", None, limits, "t", h).unwrap_or_else(|e| panic!("{e}"));
        let mut s = TcpStream::connect(server.local_addr()).unwrap_or_else(|e| panic!("{e}"));
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        for _ in 0..2 {
            s.write_all(b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").ok();
            let mut buf = [0u8; 256];
            let n = s.read(&mut buf).unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]);
            assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("POST 3"), "{text}");
        }
        // a slow client: sends half a request head and stalls
        let mut slow = TcpStream::connect(server.local_addr()).unwrap_or_else(|e| panic!("{e}"));
        slow.set_read_timeout(Some(Duration::from_secs(5))).ok();
        slow.write_all(b"POST /x HTTP/1.1\r\nContent-Le").ok();
        let started = Instant::now();
        let mut text = String::new();
        let _ = slow.read_to_string(&mut text);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(3));
        server.shutdown(Duration::from_secs(1));
    }
}
