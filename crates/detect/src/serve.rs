//! The audit webhook receiver (`palisade detect serve`): kube-apiserver's webhook backend POSTs
//! `EventList` bodies; this server takes them over HTTPS (rustls), authenticates the sender by
//! bearer token and/or client certificate, and hands each body to the detection thread, answering
//! 200 only once the events were processed (so the apiserver retries what was not).
//!
//! Connections are served by the async server of `palisade-https` (idle and silent connections
//! are evicted, never block the pool). The sender is authenticated on the request head, before
//! any of the body is read (401 and close without reading it); at most 4 bodies are read at once.
//! Bodies are passed over a bounded channel to the single consumer that owns the
//! [`Detector`](crate::pipeline::Detector). Bearer tokens over plain HTTP are refused unless the
//! listener is loopback (a warning) or `allow_plain_http` is set (`--insecure`).

use palisade_https::{Gate, Handler, Limits, Request, Response, Server};
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

pub use palisade_https::TlsConfig;

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
    /// Time allowed for each request to arrive.
    pub timeout: Duration,
    /// Accept bearer tokens over plain HTTP on a non-loopback address (behind a TLS-terminating
    /// proxy); otherwise that configuration is refused.
    pub allow_plain_http: bool,
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
            allow_plain_http: false,
        }
    }
}

/// Server start-up errors.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Socket or TLS.
    #[error(transparent)]
    Server(#[from] palisade_https::Error),
    /// Neither a token nor a client CA: anyone could post events.
    #[error("refusing to serve without authentication: give a bearer token or a client CA")]
    NoAuth,
    /// Bearer tokens would travel in clear to a non-loopback listener.
    #[error("refusing to accept bearer tokens over plain HTTP on {0}: give --tls-cert/--tls-key, or --insecure behind a TLS-terminating proxy")]
    TokenOverHttp(String),
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
    server: Server,
    rx: Receiver<Batch>,
}

impl WebhookServer {
    /// Binds and starts accepting.
    pub fn bind(cfg: ServeConfig) -> Result<WebhookServer, ServeError> {
        let has_ca = cfg.tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some());
        if cfg.bearer_tokens.is_empty() && !has_ca {
            return Err(ServeError::NoAuth);
        }
        if cfg.tls.is_none() && !cfg.bearer_tokens.is_empty() {
            let loopback = cfg
                .listen
                .parse::<SocketAddr>()
                .map(|a| a.ip().is_loopback())
                .unwrap_or_else(|_| cfg.listen.starts_with("localhost:"));
            if !loopback && !cfg.allow_plain_http {
                return Err(ServeError::TokenOverHttp(cfg.listen.clone()));
            }
            tracing::warn!(listen = %cfg.listen, "bearer tokens are accepted over plain HTTP");
        }
        let tls = match &cfg.tls {
            Some(t) => Some(palisade_https::server_config(t, !cfg.bearer_tokens.is_empty())?),
            None => None,
        };
        let (tx, rx) = mpsc::sync_channel::<Batch>(16);
        let tokens = cfg.bearer_tokens.clone();
        // SyncSender is Sync: connection threads send through one shared sender
        // authentication on the head: an unauthenticated body is never read
        let gate: Gate = Arc::new(move |req: &Request| authorize(req, &tokens));
        let handler: Handler = Arc::new(move |req: &Request| route(req, &tx));
        let limits = Limits {
            max_body_bytes: cfg.max_body_bytes,
            max_connections: cfg.max_connections,
            request_timeout: cfg.timeout,
            idle_timeout: cfg.timeout.max(Duration::from_secs(90)),
            max_inflight_bodies: 4,
            ..Limits::default()
        };
        let server = Server::bind_gated(&cfg.listen, tls, limits, "audit-webhook", Some(gate), handler)?;
        Ok(WebhookServer { server, rx })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The next body, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Batch> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Stops accepting (open connections finish their current request).
    pub fn shutdown(self) {
        self.server.shutdown(Duration::from_secs(1));
    }
}

/// The head check: health probes pass; everything else needs a token or a client certificate,
/// and only POST is accepted. `Some` refuses before the body is read.
fn authorize(req: &Request, tokens: &[String]) -> Option<Response> {
    if req.method == "GET" && (req.path == "/healthz" || req.path == "/readyz") {
        return None;
    }
    let token_ok = req
        .bearer()
        .is_some_and(|t| tokens.iter().any(|k| palisade_https::constant_time_eq(k.as_bytes(), t.as_bytes())));
    if !(token_ok || req.client_cert) {
        return Some(Response::message(401, "authentication required"));
    }
    if req.method != "POST" {
        return Some(Response::message(405, "POST an audit.k8s.io/v1 EventList"));
    }
    None
}

fn route(req: &Request, tx: &SyncSender<Batch>) -> Response {
    if req.method == "GET" && (req.path == "/healthz" || req.path == "/readyz") {
        return Response::text(200, "ok");
    }
    let Ok(body) = String::from_utf8(req.body.clone()) else { return Response::message(400, "body is not UTF-8") };
    let (rtx, rrx) = mpsc::sync_channel(1);
    if tx.send(Batch { body, peer: req.peer, reply: rtx }).is_err() {
        return Response::message(503, "shutting down");
    }
    match rrx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(_)) => Response::json(200, Vec::new()),
        Ok(Err(e)) => Response::message(400, &e),
        Err(_) => Response::message(503, "not processed in time"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    fn send(addr: SocketAddr, raw: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        s.write_all(raw).ok();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn tokens_are_checked_on_headers_and_idle_connections_do_not_block_posts() {
        let mut cfg = ServeConfig::new("127.0.0.1:0");
        cfg.bearer_tokens = vec!["s3cret".into()];
        let server = WebhookServer::bind(cfg).unwrap_or_else(|e| panic!("{e}"));
        let addr = server.local_addr();
        // 60 MB announced without a token: 401 at once, the body is never read
        let started = Instant::now();
        let t = send(addr, b"POST /audit HTTP/1.1\r\nContent-Length: 60000000\r\n\r\n");
        assert!(t.starts_with("HTTP/1.1 401"), "{t}");
        assert!(started.elapsed() < Duration::from_secs(2));
        let t = send(addr, b"POST /audit HTTP/1.1\r\nAuthorization: Bearer wrong\r\nContent-Length: 60000000\r\n\r\n");
        assert!(t.starts_with("HTTP/1.1 401"), "{t}");
        // more silent connections than max_connections (32): authenticated POSTs still go through
        let idle: Vec<TcpStream> = (0..100).filter_map(|_| TcpStream::connect(addr).ok()).collect();
        let consumer = std::thread::spawn(move || {
            let b = server.recv_timeout(Duration::from_secs(5));
            let got = b.as_ref().map(|b| b.body.clone());
            if let Some(b) = b {
                b.respond(Ok(0));
            }
            (server, got)
        });
        let started = Instant::now();
        let t = send(addr, b"POST /audit HTTP/1.1\r\nAuthorization: Bearer s3cret\r\nContent-Length: 2\r\n\r\n{}");
        assert!(t.starts_with("HTTP/1.1 200"), "{t}");
        assert!(started.elapsed() < Duration::from_secs(2));
        let (server, got) = consumer.join().unwrap_or_else(|_| panic!("consumer"));
        assert_eq!(got.as_deref(), Some("{}"));
        drop(idle);
        server.shutdown();
    }

    #[test]
    fn tokens_over_plain_http_are_refused_off_loopback() {
        let mut cfg = ServeConfig::new("0.0.0.0:0");
        cfg.bearer_tokens = vec!["s3cret".into()];
        assert!(matches!(WebhookServer::bind(cfg.clone()), Err(ServeError::TokenOverHttp(_))));
        cfg.allow_plain_http = true;
        assert!(WebhookServer::bind(cfg).is_ok());
    }
}
