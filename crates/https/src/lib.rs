//! The HTTPS/1.1 server of Palisade's webhooks (the audit-log receiver of `palisade detect
//! serve` and the admission webhook of `palisade admission serve`).
//!
//! An async server: tokio, hyper 1 (HTTP/1.1 only) and tokio-rustls. The serving core
//! ([`Server::bind_service`]) takes any hyper [`Service`](hyper::service::Service) — an axum
//! `Router` fits through `hyper_util::service::TowerToHyperService` — and the webhooks' plain
//! handler API ([`Server::bind`], [`Server::bind_gated`]: `Fn(&Request) -> Response`) is an adapter
//! over it that runs each handler on tokio's blocking pool, so CPU-bound decisions never stall
//! the reactor. What it guarantees:
//!
//! - **TLS** with rustls (ring), optional client-certificate verification, and certificates that
//!   can be swapped while running ([`Server::set_tls`]): new connections get the new chain.
//! - **Idle and half-open connections are cheap and evictable**: the accept loop never blocks and
//!   never refuses because of idle connections. At [`Limits::max_connections`] a new connection
//!   evicts the oldest idle one (first those that never completed a request — a flood of
//!   handshaken-but-silent connections — then the longest idle keep-alive connection); only when
//!   every connection is busy with a request is the new one closed.
//! - **Slow clients are timed out**: the TLS handshake within [`Limits::handshake_timeout`], the
//!   first byte of the first request within [`Limits::first_byte_timeout`], each request head
//!   and body within [`Limits::request_timeout`] (a body too slow gets 408), and an idle
//!   keep-alive connection is closed after [`Limits::idle_timeout`].
//! - **Bounded memory**: headers at most 64 KiB and 100 of them, bodies at most
//!   [`Limits::max_body_bytes`] (413 without reading the rest, chunked bodies counted as they
//!   arrive), and at most [`Limits::max_inflight_bodies`] bodies read or handled at once (others
//!   wait for a slot within their deadline, else 503).
//! - **Header-first authentication**: a [`Gate`] sees the request head before any of the body is
//!   read; its refusal (e.g. 401) is sent and the connection closed without reading the body.
//! - **Graceful shutdown**: [`Server::shutdown`] stops accepting, closes idle connections and
//!   waits (up to a grace period) for requests in flight to be answered.
//!
//! Requests the handler never sees get a short error: hyper's own 400/431 for a malformed or
//! oversized head, and a JSON `{"message"}` for 411 (POST without a length), 413 (too large),
//! 408 (body too slow) and 503 (no body slot in time).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio_rustls::TlsAcceptor;

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
    /// Connections kept open; at the cap a new connection evicts the oldest idle one.
    pub max_connections: usize,
    /// Time allowed for each request head, and for its body, to arrive.
    pub request_timeout: Duration,
    /// How long an idle keep-alive connection is kept (after it answered a request).
    pub idle_timeout: Duration,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time allowed, after the handshake, for the first byte of the first request.
    pub first_byte_timeout: Duration,
    /// Bodies read or handled at once (the memory bound is this times `max_body_bytes`).
    pub max_inflight_bodies: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 << 20,
            max_connections: 256,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            handshake_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(5),
            max_inflight_bodies: 8,
        }
    }
}

/// What the server knows about a request's connection; an extension of every request passed
/// to a service given to [`Server::bind_service`].
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client address.
    pub peer: SocketAddr,
    /// Whether the client presented a certificate that verified against the client CA.
    pub client_cert: bool,
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

/// What answers requests. Runs on tokio's blocking pool (CPU-bound work is fine); must be cheap
/// to share.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A check on the request head, before any of the body is read (the request it sees has an
/// empty body). `Some(response)` refuses: the response is sent, the body is never read and the
/// connection is closed. Runs on the reactor: keep it cheap (a header comparison).
pub type Gate = Arc<dyn Fn(&Request) -> Option<Response> + Send + Sync>;

const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;

/// One open connection, as the cap and the watchdog see it.
#[derive(Debug)]
struct Conn {
    /// Requests being handled now (0 = idle).
    busy: AtomicUsize,
    /// Whether it answered at least one request.
    served: AtomicBool,
    /// Last activity (bytes read, request finished, handshake done), ms since `Shared::epoch`.
    last_ms: AtomicU64,
    /// Evicted: close now.
    kill: Notify,
}

struct Shared {
    epoch: Instant,
    limits: Limits,
    tls: RwLock<Option<Arc<rustls::ServerConfig>>>,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// Connection tasks alive (including evicted ones still closing).
    live: AtomicUsize,
    stop: watch::Sender<bool>,
}

impl Shared {
    fn new(limits: Limits, tls: Option<Arc<rustls::ServerConfig>>) -> Arc<Shared> {
        let (stop, _) = watch::channel(false);
        Arc::new(Shared {
            epoch: Instant::now(),
            limits,
            tls: RwLock::new(tls),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            stop,
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn touch(&self, c: &Conn) {
        c.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Registers a new connection, evicting the oldest idle one at the cap. `None`: every
    /// connection is busy with a request; the new one is closed.
    fn admit(&self) -> Option<(u64, Arc<Conn>)> {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        if conns.len() >= self.limits.max_connections.max(1) {
            // never-served connections first, then the longest idle
            let victim = conns
                .iter()
                .filter(|(_, c)| c.busy.load(Ordering::SeqCst) == 0)
                .min_by_key(|(_, c)| (c.served.load(Ordering::Relaxed), c.last_ms.load(Ordering::Relaxed)))
                .map(|(id, _)| *id);
            match victim.and_then(|id| conns.remove(&id)) {
                Some(v) => {
                    tracing::debug!("connection limit reached; evicting the oldest idle connection");
                    v.kill.notify_one();
                }
                None => {
                    tracing::warn!(
                        max = self.limits.max_connections,
                        "connection limit reached and every connection is busy; closing a new connection"
                    );
                    return None;
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let c = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            last_ms: AtomicU64::new(self.now_ms()),
            kill: Notify::new(),
        });
        conns.insert(id, c.clone());
        Some((id, c))
    }
}

/// Removes a connection from the registry and the live count when its task ends.
struct ConnGuard(Arc<Shared>, u64);
impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.conns.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.1);
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Marks a connection busy while a request is handled.
struct BusyGuard(Arc<Shared>, Arc<Conn>);
impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.1.served.store(true, Ordering::Relaxed);
        self.0.touch(&self.1);
        self.1.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An I/O stream that records reads and writes as activity (the first-byte and idle clocks): a
/// long response still being written (an NDJSON export to a slow reader) is not idle.
struct Tracked<S> {
    io: S,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.shared.touch(&self.conn);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.shared.touch(&self.conn);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.shared.touch(&self.conn);
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Wraps a service: marks the connection busy per request and adds [`ConnInfo`].
#[derive(Clone)]
struct Tracking<S> {
    inner: S,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
    info: ConnInfo,
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> hyper::service::Service<hyper::Request<Incoming>> for Tracking<S>
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = hyper::Response<B>;
    type Error = S::Error;
    type Future = BoxFut<Result<hyper::Response<B>, S::Error>>;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        self.conn.busy.fetch_add(1, Ordering::SeqCst);
        let guard = BusyGuard(self.shared.clone(), self.conn.clone());
        req.extensions_mut().insert(self.info);
        let fut = self.inner.call(req);
        Box::pin(async move {
            let _g = guard;
            fut.await
        })
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `listen` and starts accepting; every request goes to `handler` (on the blocking
    /// pool). `tls: None` serves plain HTTP (tests, or behind a TLS-terminating proxy).
    pub fn bind(
        listen: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: Limits,
        name: &str,
        handler: Handler,
    ) -> Result<Server, Error> {
        Server::bind_gated(listen, tls, limits, name, None, handler)
    }

    /// [`Server::bind`] with a [`Gate`] checked on each request head before its body is read.
    pub fn bind_gated(
        listen: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: Limits,
        name: &str,
        gate: Option<Gate>,
        handler: Handler,
    ) -> Result<Server, Error> {
        let svc = HandlerService {
            handler,
            gate,
            limits: Arc::new(limits.clone()),
            bodies: Arc::new(Semaphore::new(limits.max_inflight_bodies.max(1))),
        };
        Server::bind_service(listen, tls, limits, name, svc)
    }

    /// The serving core: binds `listen` and serves every connection with `service` (HTTP/1.1,
    /// keep-alive). Each request carries a [`ConnInfo`] extension. Body limits and the handler
    /// pool are the service's business; connection handling, deadlines and the cap are the
    /// server's.
    pub fn bind_service<S, B>(
        listen: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: Limits,
        name: &str,
        service: S,
    ) -> Result<Server, Error>
    where
        S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let std_listener = std::net::TcpListener::bind(listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4)))
            .max_blocking_threads(64)
            .thread_name(name.to_string())
            .enable_all()
            .build()?;
        let shared = Shared::new(limits, tls);
        let listener = {
            let _g = rt.enter();
            TcpListener::from_std(std_listener)?
        };
        rt.spawn(accept_loop(listener, shared.clone(), service));
        Ok(Server { addr, shared, rt: Some(rt) })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections open now (including evicted ones still closing).
    pub fn active_connections(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// Replaces the TLS configuration for new connections (certificate rotation).
    pub fn set_tls(&self, cfg: Arc<rustls::ServerConfig>) {
        *self.shared.tls.write().unwrap_or_else(|p| p.into_inner()) = Some(cfg);
    }

    /// Stops accepting, closes idle connections, lets requests in flight finish (up to
    /// `grace`), then returns.
    pub fn shutdown(mut self, grace: Duration) {
        self.shared.stop.send_replace(true);
        let until = Instant::now() + grace;
        while self.shared.live.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_millis(100));
        }
    }
}

/// A handle on a server hosted by [`serve_on`]: certificate rotation and connection counts.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl Handle {
    /// Replaces the TLS configuration for new connections (certificate rotation).
    pub fn set_tls(&self, cfg: Arc<rustls::ServerConfig>) {
        *self.shared.tls.write().unwrap_or_else(|p| p.into_inner()) = Some(cfg);
    }

    /// Connections open now (including evicted ones still closing).
    pub fn active_connections(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }
}

/// The serving core of [`Server::bind_service`] on the caller's tokio runtime (the Palisade
/// server hosts its axum router this way): the same TLS, deadlines, connection cap and
/// eviction. The returned future accepts until `shutdown` completes, then stops accepting,
/// closes idle connections and waits up to `grace` for requests in flight.
pub fn serve_on<S, B>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    service: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> (Handle, impl Future<Output = ()> + Send)
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let shared = Shared::new(limits, tls);
    let handle = Handle { shared: shared.clone() };
    let run = async move {
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), service));
        shutdown.await;
        shared.stop.send_replace(true);
        let _ = accept.await;
        let until = Instant::now() + grace;
        while shared.live.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    (handle, run)
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            self.shared.stop.send_replace(true);
            rt.shutdown_background();
        }
    }
}

async fn accept_loop<S, B>(listener: TcpListener, shared: Arc<Shared>, service: S)
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut stop = shared.stop.subscribe();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stopped(&mut stop) => break,
        };
        let (sock, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off a little, never spin
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some((id, conn)) = shared.admit() else { continue };
        shared.live.fetch_add(1, Ordering::SeqCst);
        let guard = ConnGuard(shared.clone(), id);
        tokio::spawn(serve_conn(sock, peer, conn, guard, service.clone()));
    }
}

async fn serve_conn<S, B>(sock: TcpStream, peer: SocketAddr, conn: Arc<Conn>, guard: ConnGuard, service: S)
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let shared = guard.0.clone();
    let _ = sock.set_nodelay(true);
    let kill = conn.kill.notified();
    tokio::pin!(kill);
    let mut stop = shared.stop.subscribe();
    let tls = shared.tls.read().unwrap_or_else(|p| p.into_inner()).clone();
    match tls {
        Some(cfg) => {
            let accept = tokio::time::timeout(shared.limits.handshake_timeout, TlsAcceptor::from(cfg).accept(sock));
            let stream = tokio::select! {
                r = accept => match r {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => { tracing::debug!(%peer, error = %e, "TLS handshake failed"); return }
                    Err(_) => { tracing::debug!(%peer, "TLS handshake not completed in time"); return }
                },
                _ = &mut kill => return,
                _ = stopped(&mut stop) => return,
            };
            let client_cert = stream.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
            shared.touch(&conn);
            run_http(
                stream,
                ConnInfo { peer, client_cert },
                conn.clone(),
                shared.clone(),
                service,
                kill.as_mut(),
                stop,
            )
            .await;
        }
        None => {
            run_http(
                sock,
                ConnInfo { peer, client_cert: false },
                conn.clone(),
                shared.clone(),
                service,
                kill.as_mut(),
                stop,
            )
            .await
        }
    }
    drop(guard);
}

async fn run_http<I, S, B>(
    io: I,
    info: ConnInfo,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
    service: S,
    mut kill: Pin<&mut tokio::sync::futures::Notified<'_>>,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limits = &shared.limits;
    let svc = Tracking { inner: service, conn: conn.clone(), shared: shared.clone(), info };
    let tracked = Tracked { io, conn: conn.clone(), shared: shared.clone() };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_timeout)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let c = builder.serve_connection(TokioIo::new(tracked), svc);
    tokio::pin!(c);
    tokio::select! {
        r = c.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(peer = %info.peer, error = %e, "connection ended");
            }
        }
        _ = &mut kill => tracing::debug!(peer = %info.peer, "evicted"),
        _ = idle_watch(&conn, &shared) => tracing::debug!(peer = %info.peer, "idle; closing"),
        _ = stopped(&mut stop) => {
            // finish the request in flight (bounded by the shutdown grace), close idle at once
            c.as_mut().graceful_shutdown();
            let _ = c.await;
        }
    }
}

/// Completes when the server stops (drops the watch guard before returning).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Completes when an idle connection has been idle too long: `first_byte_timeout` before its
/// first request, `idle_timeout` after. Busy connections are never closed here.
async fn idle_watch(conn: &Conn, shared: &Shared) {
    loop {
        let limit = if conn.served.load(Ordering::Relaxed) {
            shared.limits.idle_timeout
        } else {
            shared.limits.first_byte_timeout
        };
        let idle_for = Duration::from_millis(shared.now_ms().saturating_sub(conn.last_ms.load(Ordering::Relaxed)));
        if conn.busy.load(Ordering::SeqCst) == 0 && idle_for >= limit {
            return;
        }
        let wait = if conn.busy.load(Ordering::SeqCst) > 0 { limit } else { limit - idle_for };
        tokio::time::sleep(wait.max(Duration::from_millis(20))).await;
    }
}

/// The adapter from hyper to the plain [`Handler`] API.
#[derive(Clone)]
struct HandlerService {
    handler: Handler,
    gate: Option<Gate>,
    limits: Arc<Limits>,
    bodies: Arc<Semaphore>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for HandlerService {
    type Response = hyper::Response<Full<Bytes>>;
    type Error = std::convert::Infallible;
    type Future = BoxFut<Result<Self::Response, Self::Error>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.answer(req).await) })
    }
}

impl HandlerService {
    async fn answer(self, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let deadline = tokio::time::Instant::now() + self.limits.request_timeout;
        let (parts, mut body) = req.into_parts();
        let info = parts.extensions.get::<ConnInfo>().copied();
        let mut r = Request {
            method: parts.method.as_str().to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or("").to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).trim().to_string()))
                .collect(),
            body: Vec::new(),
            peer: info.map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |i| i.peer),
            client_cert: info.is_some_and(|i| i.client_cert),
        };
        // hyper bounds its read buffer; the head itself is held to MAX_HEAD here
        let head_len: usize = r.headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>() + r.path.len();
        if head_len > MAX_HEAD {
            return to_hyper(Response::message(431, "request head too large"), true);
        }
        if let Some(gate) = &self.gate {
            if let Some(refused) = gate(&r) {
                return to_hyper(refused, true);
            }
        }
        let max = self.limits.max_body_bytes;
        let chunked = parts
            .headers
            .get(hyper::header::TRANSFER_ENCODING)
            .is_some_and(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase().contains("chunked"));
        let len: Option<u64> = parts
            .headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        match len {
            Some(n) if n > max as u64 => {
                return to_hyper(Response::message(413, "body larger than the configured limit"), true)
            }
            None if !chunked && (r.method == "POST" || r.method == "PUT") => {
                return to_hyper(Response::message(411, "Content-Length required"), true)
            }
            _ => {}
        }
        let has_body = chunked || len.is_some_and(|n| n > 0);
        // one slot per body read or handled at once: bounded memory under parallel big bodies
        let permit = if has_body {
            match tokio::time::timeout_at(deadline, self.bodies.clone().acquire_owned()).await {
                Ok(Ok(p)) => Some(p),
                _ => return to_hyper(Response::message(503, "too many requests in flight; retry"), true),
            }
        } else {
            None
        };
        if has_body {
            let mut buf = Vec::with_capacity(len.unwrap_or(0).min(max as u64) as usize);
            loop {
                match tokio::time::timeout_at(deadline, body.frame()).await {
                    Err(_) => return to_hyper(Response::message(408, "request timeout"), true),
                    Ok(None) => break,
                    Ok(Some(Err(e))) => {
                        tracing::debug!(peer = %r.peer, error = %e, "body read failed");
                        return to_hyper(Response::message(400, "malformed body"), true);
                    }
                    Ok(Some(Ok(frame))) => {
                        if let Ok(d) = frame.into_data() {
                            if buf.len().saturating_add(d.len()) > max {
                                return to_hyper(Response::message(413, "body larger than the configured limit"), true);
                            }
                            buf.extend_from_slice(&d);
                        }
                    }
                }
            }
            r.body = buf;
        }
        let handler = self.handler.clone();
        let resp = tokio::task::spawn_blocking(move || {
            let resp = handler(&r);
            drop(permit);
            resp
        })
        .await;
        match resp {
            Ok(resp) => to_hyper(resp, false),
            Err(e) => {
                tracing::error!(error = %e, "handler failed");
                to_hyper(Response::message(500, "internal error"), false)
            }
        }
    }
}

fn to_hyper(resp: Response, close: bool) -> hyper::Response<Full<Bytes>> {
    let mut b = hyper::Response::builder().status(resp.status).header(hyper::header::CONTENT_TYPE, resp.content_type);
    if close {
        b = b.header(hyper::header::CONNECTION, "close");
    }
    b.body(Full::new(Bytes::from(resp.body))).unwrap_or_else(|_| {
        let mut r = hyper::Response::new(Full::new(Bytes::new()));
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
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
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
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
    use std::io::{Read, Write};
    use std::net::TcpStream as StdTcp;
    use std::sync::atomic::AtomicUsize;

    fn plain(limits: Limits, h: Handler) -> Server {
        Server::bind("127.0.0.1:0", None, limits, "t", h).unwrap_or_else(|e| panic!("{e}"))
    }

    fn echo() -> Handler {
        Arc::new(|r: &Request| Response::text(200, format!("{} {}", r.method, r.body.len())))
    }

    /// Sends `raw` and reads the answer until the server closes or `wait` passes.
    fn exchange(addr: SocketAddr, raw: &[u8], wait: Duration) -> String {
        let mut s = StdTcp::connect(addr).unwrap_or_else(|e| panic!("{e}"));
        s.set_read_timeout(Some(wait)).ok();
        s.write_all(raw).ok();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if out.windows(4).any(|w| w == b"\r\n\r\n") && !raw.starts_with(b"GET") {
                // one response is enough for the rejections
                let text = String::from_utf8_lossy(&out);
                if let Some(len) = text.to_ascii_lowercase().split("content-length: ").nth(1) {
                    let len: usize = len.split("\r\n").next().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
                    let head = text.find("\r\n\r\n").map_or(0, |i| i + 4);
                    if out.len() >= head + len {
                        break;
                    }
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn json_messages_are_escaped() {
        let r = Response::message(400, "bad \"x\"\n");
        assert_eq!(r.body, b"{\"message\":\"bad \\\"x\\\"\\u000a\"}\n");
    }

    #[test]
    fn limits_and_malformed_requests() {
        let limits = Limits { max_body_bytes: 10, ..Limits::default() };
        let s = plain(limits, echo());
        let a = s.local_addr();
        let w = Duration::from_secs(5);
        let t = exchange(a, b"POST /x?q=1 HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", w);
        assert!(t.starts_with("HTTP/1.1 200") && t.ends_with("POST 2"), "{t}");
        let t = exchange(a, b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", w);
        assert!(t.starts_with("HTTP/1.1 200") && t.ends_with("POST 2"), "{t}");
        // 413 at once from the head: the 1 GB body is never sent
        let started = Instant::now();
        let t = exchange(a, b"POST / HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n", w);
        assert!(t.starts_with("HTTP/1.1 413"), "{t}");
        assert!(started.elapsed() < Duration::from_secs(2));
        let t = exchange(a, b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n01234567890123456789\r\n", w);
        assert!(t.starts_with("HTTP/1.1 413"), "{t}");
        assert!(exchange(a, b"POST / HTTP/1.1\r\n\r\n", w).starts_with("HTTP/1.1 411"));
        assert!(exchange(a, b"GARBAGE\r\n\r\n", w).starts_with("HTTP/1.1 400"));
        assert!(exchange(a, b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", w).starts_with("HTTP/1.1 400"));
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        huge.extend_from_slice(b"\r\n\r\n");
        let t = exchange(a, &huge, w);
        assert!(t.starts_with("HTTP/1.1 431") || t.starts_with("HTTP/1.1 400"), "{t}");
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..MAX_HEADERS + 5 {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let t = exchange(a, &many, w);
        assert!(t.starts_with("HTTP/1.1 431") || t.starts_with("HTTP/1.1 400"), "{t}");
        s.shutdown(Duration::from_secs(1));
    }

    #[test]
    fn plain_server_answers_keeps_alive_and_times_out_slow_clients() {
        let limits = Limits { request_timeout: Duration::from_millis(300), ..Limits::default() };
        let server = plain(limits, echo());
        let mut s = StdTcp::connect(server.local_addr()).unwrap_or_else(|e| panic!("{e}"));
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        for _ in 0..2 {
            s.write_all(b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").ok();
            let mut buf = [0u8; 256];
            let n = s.read(&mut buf).unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]);
            assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("POST 3"), "{text}");
        }
        // a slow client: half a request head, then nothing: closed in time
        let started = Instant::now();
        let t = exchange(server.local_addr(), b"POST /x HTTP/1.1\r\nContent-Le", Duration::from_secs(5));
        assert!(t.is_empty() || t.starts_with("HTTP/1.1 408"), "{t}");
        assert!(started.elapsed() < Duration::from_secs(3));
        // a slow body: head complete, body stalls: 408
        let started = Instant::now();
        let t =
            exchange(server.local_addr(), b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", Duration::from_secs(5));
        assert!(t.starts_with("HTTP/1.1 408"), "{t}");
        assert!(started.elapsed() < Duration::from_secs(3));
        server.shutdown(Duration::from_secs(1));
    }

    #[test]
    fn gate_refuses_on_headers_without_reading_the_body() {
        let reached = Arc::new(AtomicUsize::new(0));
        let r2 = reached.clone();
        let gate: Gate = Arc::new(|r: &Request| {
            (r.header("authorization") != Some("Bearer good"))
                .then(|| Response::message(401, "authentication required"))
        });
        let h: Handler = Arc::new(move |r: &Request| {
            r2.fetch_add(1, Ordering::SeqCst);
            Response::text(200, format!("{}", r.body.len()))
        });
        let limits = Limits { max_body_bytes: 64 << 20, ..Limits::default() };
        let s = Server::bind_gated("127.0.0.1:0", None, limits, "t", Some(gate), h).unwrap_or_else(|e| panic!("{e}"));
        // 60 MB announced, none sent: the 401 comes at once from the head
        let started = Instant::now();
        let t = exchange(
            s.local_addr(),
            b"POST /audit HTTP/1.1\r\nAuthorization: Bearer bad\r\nContent-Length: 60000000\r\n\r\n",
            Duration::from_secs(5),
        );
        assert!(t.starts_with("HTTP/1.1 401") && t.to_ascii_lowercase().contains("connection: close"), "{t}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(reached.load(Ordering::SeqCst), 0);
        let t = exchange(
            s.local_addr(),
            b"POST /audit HTTP/1.1\r\nAuthorization: Bearer good\r\nContent-Length: 3\r\n\r\nabc",
            Duration::from_secs(5),
        );
        assert!(t.starts_with("HTTP/1.1 200") && t.ends_with('3'), "{t}");
        s.shutdown(Duration::from_secs(1));
    }

    #[test]
    fn in_flight_bodies_are_bounded_and_shutdown_drains() {
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (n2, p2) = (now.clone(), peak.clone());
        let h: Handler = Arc::new(move |_r: &Request| {
            let n = n2.fetch_add(1, Ordering::SeqCst) + 1;
            p2.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(150));
            n2.fetch_sub(1, Ordering::SeqCst);
            Response::text(200, "done")
        });
        let limits = Limits { max_inflight_bodies: 2, ..Limits::default() };
        let s = plain(limits, h);
        let a = s.local_addr();
        let clients: Vec<_> = (0..6)
            .map(|_| {
                std::thread::spawn(move || {
                    exchange(a, b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", Duration::from_secs(10))
                })
            })
            .collect();
        for c in clients {
            let t = c.join().unwrap_or_default();
            assert!(t.starts_with("HTTP/1.1 200"), "{t}");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2, "at most two bodies handled at once");
        // graceful drain: a request in flight when shutdown starts is still answered
        let inflight = std::thread::spawn(move || {
            exchange(a, b"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", Duration::from_secs(5))
        });
        std::thread::sleep(Duration::from_millis(50));
        s.shutdown(Duration::from_secs(3));
        let t = inflight.join().unwrap_or_default();
        assert!(t.starts_with("HTTP/1.1 200") && t.ends_with("done"), "{t}");
        assert!(
            StdTcp::connect(a).is_err() || exchange(a, b"GET / HTTP/1.1\r\n\r\n", Duration::from_secs(1)).is_empty()
        );
    }

    #[test]
    fn silent_and_idle_connections_are_closed() {
        let limits = Limits {
            first_byte_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(600),
            ..Limits::default()
        };
        let s = plain(limits, echo());
        let mut silent = StdTcp::connect(s.local_addr()).unwrap_or_else(|e| panic!("{e}"));
        silent.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let started = Instant::now();
        let mut b = [0u8; 16];
        assert_eq!(silent.read(&mut b).unwrap_or(0), 0);
        let e = started.elapsed();
        assert!(e >= Duration::from_millis(250) && e < Duration::from_secs(2), "{e:?}");
        // after a request, the keep-alive connection lives idle_timeout, not first_byte_timeout
        let mut ka = StdTcp::connect(s.local_addr()).unwrap_or_else(|e| panic!("{e}"));
        ka.set_read_timeout(Some(Duration::from_secs(5))).ok();
        ka.write_all(b"GET / HTTP/1.1\r\n\r\n").ok();
        let n = ka.read(&mut [0u8; 256]).unwrap_or(0);
        assert!(n > 0);
        let started = Instant::now();
        assert_eq!(ka.read(&mut b).unwrap_or(0), 0);
        let e = started.elapsed();
        assert!(e >= Duration::from_millis(500) && e < Duration::from_secs(3), "{e:?}");
        let until = Instant::now() + Duration::from_secs(1);
        while s.active_connections() > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(s.active_connections(), 0);
        s.shutdown(Duration::from_secs(1));
    }

    fn tls_pair() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap_or_else(|e| panic!("{e}"));
        let t = TlsConfig {
            cert_pem: ck.cert.pem().into_bytes(),
            key_pem: ck.key_pair.serialize_pem().into_bytes(),
            client_ca_pem: None,
        };
        let server = server_config(&t, false).unwrap_or_else(|e| panic!("{e}"));
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ck.cert.der().clone()).unwrap_or_else(|e| panic!("{e}"));
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|e| panic!("{e}"))
            .with_root_certificates(roots)
            .with_no_client_auth();
        (server, Arc::new(client))
    }

    fn tls_connect(
        addr: SocketAddr,
        c: &Arc<rustls::ClientConfig>,
    ) -> io::Result<rustls::StreamOwned<rustls::ClientConnection, StdTcp>> {
        let sock = StdTcp::connect(addr)?;
        sock.set_read_timeout(Some(Duration::from_secs(5)))?;
        let name = rustls::pki_types::ServerName::try_from("localhost").map_err(io::Error::other)?;
        let conn = rustls::ClientConnection::new(c.clone(), name).map_err(io::Error::other)?;
        let mut s = rustls::StreamOwned::new(conn, sock);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        Ok(s)
    }

    /// Item 1 of issue 21: a flood of handshaken-but-silent TLS connections and of plain TCP
    /// connections that send nothing must not stop legitimate requests.
    #[test]
    fn probes_are_answered_under_a_connection_flood() {
        let (server_tls, client_tls) = tls_pair();
        let limits = Limits { max_connections: 64, ..Limits::default() };
        let s =
            Server::bind("127.0.0.1:0", Some(server_tls), limits, "flood", echo()).unwrap_or_else(|e| panic!("{e}"));
        let a = s.local_addr();
        let mut idle_tls = Vec::new();
        for _ in 0..300 {
            // an evicted connection may fail its handshake: that is the point
            if let Ok(c) = tls_connect(a, &client_tls) {
                idle_tls.push(c);
            }
        }
        let tcp: Vec<_> = (0..200).filter_map(|_| StdTcp::connect(a).ok()).collect();
        // evicted connections close promptly: the open count settles at the cap
        let until = Instant::now() + Duration::from_secs(2);
        while s.active_connections() > 64 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(s.active_connections() <= 64, "{}", s.active_connections());
        let mut worst = Duration::ZERO;
        for i in 0..20 {
            let started = Instant::now();
            let mut c = tls_connect(a, &client_tls).unwrap_or_else(|e| panic!("probe {i}: {e}"));
            c.write_all(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}").ok();
            let mut buf = [0u8; 512];
            let n = c.read(&mut buf).unwrap_or(0);
            let t = String::from_utf8_lossy(&buf[..n]);
            assert!(t.starts_with("HTTP/1.1 200") && t.ends_with("POST 2"), "probe {i}: {t}");
            worst = worst.max(started.elapsed());
            // more silent connections between probes
            let _more: Vec<_> = (0..20).filter_map(|_| StdTcp::connect(a).ok()).collect();
        }
        assert!(worst < Duration::from_secs(1), "slowest probe {worst:?}");
        drop((idle_tls, tcp));
        s.shutdown(Duration::from_secs(1));
    }

    #[test]
    fn tls_hot_swap_serves_the_new_chain() {
        let (tls1, client1) = tls_pair();
        let (tls2, client2) = tls_pair();
        let s = Server::bind("127.0.0.1:0", Some(tls1), Limits::default(), "swap", echo())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(tls_connect(s.local_addr(), &client1).is_ok());
        assert!(tls_connect(s.local_addr(), &client2).is_err());
        s.set_tls(tls2);
        assert!(tls_connect(s.local_addr(), &client2).is_ok());
        assert!(tls_connect(s.local_addr(), &client1).is_err());
        s.shutdown(Duration::from_secs(1));
    }
}
