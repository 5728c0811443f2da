//! The audit webhook receiver (`palisade detect serve`): kube-apiserver's webhook backend POSTs
//! `EventList` bodies; this server takes them over HTTPS (rustls), authenticates the sender by
//! bearer token and/or client certificate, and hands each body to the detection thread, answering
//! 200 only once the events were processed (so the apiserver retries what was not).
//!
//! Connections are handled on their own threads (at most `max_connections`); bodies are passed
//! over a bounded channel to the single consumer that owns the [`Detector`](crate::pipeline::Detector).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

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

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on, e.g. `0.0.0.0:8443`.
    pub listen: String,
    /// TLS; `None` serves plain HTTP (only behind a TLS-terminating proxy, or for tests).
    pub tls: Option<TlsConfig>,
    /// Accepted bearer tokens (any of them).
    pub bearer_tokens: Vec<String>,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Concurrent connections.
    pub max_connections: usize,
    /// Idle / read timeout per connection.
    pub timeout: Duration,
}

impl ServeConfig {
    /// Defaults for `listen`.
    pub fn new(listen: &str) -> Self {
        ServeConfig {
            listen: listen.to_string(),
            tls: None,
            bearer_tokens: Vec::new(),
            max_body_bytes: 64 << 20,
            max_connections: 32,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Server start-up errors.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Socket.
    #[error("listen: {0}")]
    Io(#[from] io::Error),
    /// Certificates and keys.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// Neither a token nor a client CA: anyone could post events.
    #[error("refusing to serve without authentication: give a bearer token or a client CA")]
    NoAuth,
}

/// One POSTed body waiting for the consumer.
#[derive(Debug)]
pub struct Batch {
    /// The request body (an `EventList`).
    pub body: String,
    /// Who sent it (for logs).
    pub peer: SocketAddr,
    reply: SyncSender<Result<usize, String>>,
}

impl Batch {
    /// Answers the sender: `Ok(n)` → 200; `Err` → 400 with the message.
    pub fn respond(self, r: Result<usize, String>) {
        let _ = self.reply.send(r);
    }
}

/// A running receiver.
#[derive(Debug)]
pub struct WebhookServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    rx: Receiver<Batch>,
}

fn tls_config(t: &TlsConfig, tokens: bool) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&t.cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| ServeError::Tls(format!("server certificate: {e}")))?;
    if certs.is_empty() {
        return Err(ServeError::Tls("no certificate in the server certificate file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&t.key_pem).map_err(|e| ServeError::Tls(format!("server key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    let builder = match &t.client_ca_pem {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca) {
                let c = c.map_err(|e| ServeError::Tls(format!("client CA: {e}")))?;
                roots.add(c).map_err(|e| ServeError::Tls(format!("client CA: {e}")))?;
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            // with tokens too, a client may use either
            let v = if tokens { v.allow_unauthenticated() } else { v };
            builder.with_client_cert_verifier(v.build().map_err(|e| ServeError::Tls(e.to_string()))?)
        }
        None => builder.with_no_client_auth(),
    };
    let cfg = builder.with_single_cert(certs, key).map_err(|e| ServeError::Tls(e.to_string()))?;
    Ok(Arc::new(cfg))
}

impl WebhookServer {
    /// Binds and starts accepting.
    pub fn bind(cfg: ServeConfig) -> Result<WebhookServer, ServeError> {
        let has_ca = cfg.tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some());
        if cfg.bearer_tokens.is_empty() && !has_ca {
            return Err(ServeError::NoAuth);
        }
        let tls = match &cfg.tls {
            Some(t) => Some(tls_config(t, !cfg.bearer_tokens.is_empty())?),
            None => None,
        };
        let listener = TcpListener::bind(&cfg.listen)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::sync_channel::<Batch>(16);
        let cfg = Arc::new(cfg);
        let stop2 = stop.clone();
        let active = Arc::new(AtomicUsize::new(0));
        let accept = std::thread::Builder::new().name("audit-webhook-accept".into()).spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((sock, peer)) => {
                        if active.load(Ordering::SeqCst) >= cfg.max_connections {
                            drop(sock);
                            continue;
                        }
                        active.fetch_add(1, Ordering::SeqCst);
                        let (cfg, tls, tx, stop, active) =
                            (cfg.clone(), tls.clone(), tx.clone(), stop2.clone(), active.clone());
                        let spawned = std::thread::Builder::new().name("audit-webhook-conn".into()).spawn(move || {
                            if let Err(e) = handle_conn(sock, peer, &cfg, tls, &tx, &stop) {
                                tracing::debug!(%peer, error = %e, "webhook connection ended");
                            }
                            active.fetch_sub(1, Ordering::SeqCst);
                        });
                        if spawned.is_err() {
                            tracing::warn!("cannot spawn a connection thread");
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
        Ok(WebhookServer { addr, stop, accept: Some(accept), rx })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next body, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Batch> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Stops accepting (open connections finish their current request).
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn handle_conn(
    sock: TcpStream,
    peer: SocketAddr,
    cfg: &ServeConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
    tx: &SyncSender<Batch>,
    stop: &AtomicBool,
) -> io::Result<()> {
    sock.set_nonblocking(false)?;
    sock.set_read_timeout(Some(cfg.timeout))?;
    sock.set_write_timeout(Some(cfg.timeout))?;
    let (stream, client_cert): (Box<dyn Stream>, bool) = match tls {
        Some(tc) => {
            let conn = rustls::ServerConnection::new(tc).map_err(io::Error::other)?;
            let mut s = rustls::StreamOwned::new(conn, sock);
            // complete the handshake to learn whether a client certificate was verified
            while s.conn.is_handshaking() {
                s.conn.complete_io(&mut s.sock)?;
            }
            let has_cert = s.conn.peer_certificates().is_some_and(|c| !c.is_empty());
            (Box::new(s), has_cert)
        }
        None => (Box::new(sock), false),
    };
    let mut r = BufReader::new(stream);
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(req) = read_request(&mut r, cfg.max_body_bytes)? else { return Ok(()) };
        let (status, msg) = route(&req, client_cert, cfg, tx, peer);
        let close = req.close || status >= 400 && status != 401;
        let body = if msg.is_empty() {
            String::new()
        } else {
            format!("{{\"message\":{}}}\n", serde_json::Value::String(msg))
        };
        let w = r.get_mut();
        write!(
            w,
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{body}",
            reason(status),
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        )?;
        w.flush()?;
        if close {
            return Ok(());
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

struct Request {
    method: String,
    path: String,
    auth: Option<String>,
    body: Result<Vec<u8>, u16>,
    close: bool,
}

fn read_request<R: BufRead>(r: &mut R, max_body: usize) -> io::Result<Option<Request>> {
    let mut line = String::new();
    let mut head_bytes = 0usize;
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let http10 = parts.next().is_some_and(|v| v == "HTTP/1.0");
    let mut len: Option<usize> = None;
    let mut chunked = false;
    let mut auth = None;
    let mut close = http10;
    loop {
        let mut h = String::new();
        let n = r.read_line(&mut h)?;
        head_bytes += n;
        if n == 0 || head_bytes > 64 * 1024 {
            return Ok(None);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => len = v.parse().ok(),
                "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                "authorization" => auth = Some(v.to_string()),
                "connection" => close = v.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
    let body = if chunked {
        read_chunked(r, max_body)?
    } else {
        match len {
            None if method == "POST" => Err(411),
            None => Ok(Vec::new()),
            Some(n) if n > max_body => {
                // drain it so the connection stays usable? no: close it
                close = true;
                Err(413)
            }
            Some(n) => {
                let mut b = vec![0u8; n];
                r.read_exact(&mut b)?;
                Ok(b)
            }
        }
    };
    if body.is_err() {
        close = true;
    }
    Ok(Some(Request { method, path, auth, body, close }))
}

fn read_chunked<R: BufRead>(r: &mut R, max_body: usize) -> io::Result<Result<Vec<u8>, u16>> {
    let mut out = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size)?;
        let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if n == 0 {
            // trailers
            loop {
                let mut t = String::new();
                if r.read_line(&mut t)? == 0 || t.trim().is_empty() {
                    break;
                }
            }
            return Ok(Ok(out));
        }
        if out.len() + n > max_body {
            return Ok(Err(413));
        }
        let start = out.len();
        out.resize(start + n, 0);
        r.read_exact(&mut out[start..])?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn route(
    req: &Request,
    client_cert: bool,
    cfg: &ServeConfig,
    tx: &SyncSender<Batch>,
    peer: SocketAddr,
) -> (u16, String) {
    if req.method == "GET" && (req.path == "/healthz" || req.path == "/readyz") {
        return (200, String::new());
    }
    let token_ok = req
        .auth
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")))
        .is_some_and(|t| cfg.bearer_tokens.iter().any(|k| constant_time_eq(k.as_bytes(), t.trim().as_bytes())));
    if !(token_ok || client_cert) {
        return (401, "authentication required".into());
    }
    if req.method != "POST" {
        return (405, "POST an audit.k8s.io/v1 EventList".into());
    }
    let body = match &req.body {
        Ok(b) => b,
        Err(code) => return (*code, "bad body".into()),
    };
    let Ok(body) = String::from_utf8(body.clone()) else { return (400, "body is not UTF-8".into()) };
    let (rtx, rrx) = mpsc::sync_channel(1);
    if tx.send(Batch { body, peer, reply: rtx }).is_err() {
        return (503, "shutting down".into());
    }
    match rrx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(_)) => (200, String::new()),
        Ok(Err(e)) => (400, e),
        Err(_) => (503, "not processed in time".into()),
    }
}

/// Runs the consumer loop: every received `EventList` goes through `det`; findings go to `emit`.
/// Returns when `stop()` is true (checked every 200 ms), after flushing pending alert updates.
pub fn run(
    server: &WebhookServer,
    det: &mut crate::pipeline::Detector,
    stop: &dyn Fn() -> bool,
    mut emit: impl FnMut(&crate::alert::Finding) -> io::Result<()>,
) -> io::Result<()> {
    let mut out = Vec::new();
    while !stop() {
        let Some(batch) = server.recv_timeout(Duration::from_millis(200)) else {
            det.advance_clock(crate::pipeline::now_us(), &mut out);
            for f in out.drain(..) {
                emit(&f)?;
            }
            continue;
        };
        let r = det.process_event_list(&batch.body, &mut out);
        let mut failed = None;
        for f in out.drain(..) {
            if let Err(e) = emit(&f) {
                failed = Some(e);
                break;
            }
        }
        match (r, failed) {
            (_, Some(e)) => {
                batch.respond(Err("sink failure".into()));
                return Err(e);
            }
            (Ok(n), None) => batch.respond(Ok(n)),
            (Err(e), None) => batch.respond(Err(e.to_string())),
        }
    }
    det.flush(&mut out);
    for f in out.drain(..) {
        emit(&f)?;
    }
    Ok(())
}
