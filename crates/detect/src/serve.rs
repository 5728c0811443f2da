//! The audit webhook receiver (`palisade detect serve`): kube-apiserver's webhook backend POSTs
//! `EventList` bodies; this server takes them over HTTPS (rustls), authenticates the sender by
//! bearer token and/or client certificate, and hands each body to the detection thread, answering
//! 200 only once the events were processed (so the apiserver retries what was not).
//!
//! Connections are handled on their own threads (at most `max_connections`); bodies are passed
//! over a bounded channel to the single consumer that owns the [`Detector`](crate::pipeline::Detector).

use palisade_https::{Handler, Limits, Request, Response, Server};
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
    /// Socket or TLS.
    #[error(transparent)]
    Server(#[from] palisade_https::Error),
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
        let tls = match &cfg.tls {
            Some(t) => Some(palisade_https::server_config(t, !cfg.bearer_tokens.is_empty())?),
            None => None,
        };
        let (tx, rx) = mpsc::sync_channel::<Batch>(16);
        let tokens = cfg.bearer_tokens.clone();
        // SyncSender is Sync: connection threads send through one shared sender
        let handler: Handler = Arc::new(move |req: &Request| route(req, &tokens, &tx));
        let limits = Limits {
            max_body_bytes: cfg.max_body_bytes,
            max_connections: cfg.max_connections,
            request_timeout: cfg.timeout,
            idle_timeout: cfg.timeout.max(Duration::from_secs(90)),
        };
        let server = Server::bind(&cfg.listen, tls, limits, "audit-webhook", handler)?;
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

fn route(req: &Request, tokens: &[String], tx: &SyncSender<Batch>) -> Response {
    if req.method == "GET" && (req.path == "/healthz" || req.path == "/readyz") {
        return Response::text(200, "ok");
    }
    let token_ok = req
        .bearer()
        .is_some_and(|t| tokens.iter().any(|k| palisade_https::constant_time_eq(k.as_bytes(), t.as_bytes())));
    if !(token_ok || req.client_cert) {
        return Response::message(401, "authentication required");
    }
    if req.method != "POST" {
        return Response::message(405, "POST an audit.k8s.io/v1 EventList");
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
