//! The Palisade server: the store ([`palisade_store`]) behind a REST API on axum, and the
//! scheduled vulnerability-database update that re-assesses every stored SBOM without pulling
//! an image again.
//!
//! - [`Server::open`] opens the store (SQLite in the data directory, or PostgreSQL), writes the
//!   bootstrap admin token on first start (`DIR/admin.token`, mode 0600), and loads the server's
//!   own vulnerability database (`DIR/vuln.db`).
//! - [`router`] is the whole HTTP surface (tested with `oneshot`, no socket); [`serve`] binds it.
//! - [`jobs`] runs the `db-update` job: on its schedule, or at once after
//!   `POST /api/v1/admin/db/update`; replicas sharing a PostgreSQL store take a lease, so a job
//!   never runs twice at once, and an interrupted re-assessment resumes from its saved cursor.
//!
//! Contract (other components and tests rely on it): `GET /healthz`, `/readyz`, `/metrics`;
//! `Authorization: Bearer TOKEN` on every `/api/v1` call; `GET /api/v1/images`,
//! `GET /api/v1/images/{digest}/findings`, `POST /api/v1/images`,
//! `POST /api/v1/admin/db/update`, `GET /api/v1/admin/jobs`.

mod api;
mod console;
pub mod jobs;
pub mod openapi;
mod routes;
pub mod simulate;

pub use api::router;

use palisade_store::{NewToken, Role, Store, StoreConfig, StoreError};
use palisade_vulndb::build::BuildOptions;
use palisade_vulndb::db::{DbError, VulnDb};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Name of the scheduled database-update job.
pub const DB_UPDATE_JOB: &str = "db-update";
/// Name of the daily retention job ([`Config::retention`]).
pub const RETENTION_JOB: &str = "retention";
/// Interval of the retention job.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// File (in the data directory) holding the bootstrap admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// File (in the data directory) holding the server's vulnerability database.
pub const VULN_DB_FILE: &str = "vuln.db";
/// Largest request body accepted (an upload of many SBOMs): larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Request bodies held in memory at once, in MiB: a body takes its `Content-Length` (rounded
/// up to MiB; a chunked body the whole [`MAX_BODY_BYTES`]) from this budget while it is read
/// and handled, so memory for bodies stays bounded however many uploads arrive together.
pub const BODY_BUDGET_MIB: u32 = 192;

/// Why the server could not start or a job failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vulnerability database could not be read, built or written.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Building the database from the feed directory failed or was refused.
    #[error(transparent)]
    Build(#[from] palisade_vulndb::build::BuildError),
    /// Downloading feeds failed.
    #[error(transparent)]
    Update(#[from] palisade_vulndb::update::UpdateError),
    /// A file of the data directory could not be written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Cause.
        error: std::io::Error,
    },
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
    /// The server is stopping: the job gave its lease up between two pages (its cursor is
    /// saved; the next start resumes it).
    #[error("stopping; the job resumes from its saved cursor")]
    Stopping,
}

/// How to run the server (every field is a `palisade server` flag and an environment variable).
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory: the SQLite store, the vulnerability database, feed downloads, the admin token.
    pub data_dir: PathBuf,
    /// Where to listen.
    pub listen: SocketAddr,
    /// PostgreSQL URL instead of SQLite in the data directory.
    pub database_url: Option<String>,
    /// Build the vulnerability database from these feed directories (offline) instead of downloading.
    pub db_from: Vec<PathBuf>,
    /// Options of that build.
    pub db_build: BuildOptions,
    /// Interval of the scheduled database update and re-assessment.
    pub db_update_interval: Duration,
    /// SBOMs re-assessed per transaction.
    pub reassess_batch: u32,
    /// How often idle replicas look for a due job.
    pub job_poll: Duration,
    /// Connection handling: deadlines, connection cap, body limit ([`http_limits`]).
    pub http: palisade_https::Limits,
    /// How long a stop waits for requests in flight.
    pub shutdown_grace: Duration,
    /// What the daily retention job removes (defaults: resolved alerts after 30 days, images
    /// not seen for 90 days; findings are never deleted).
    pub retention: palisade_store::RetentionPolicy,
}

/// Connection handling of the API: the webhooks' defaults, with bodies up to
/// [`MAX_BODY_BYTES`] given a minute to arrive (an upload of many SBOMs) and more connections.
pub fn http_limits() -> palisade_https::Limits {
    palisade_https::Limits {
        max_body_bytes: MAX_BODY_BYTES,
        max_connections: 1024,
        request_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(90),
        handshake_timeout: Duration::from_secs(5),
        first_byte_timeout: Duration::from_secs(10),
        max_inflight_bodies: 16,
    }
}

impl Config {
    /// Defaults for a data directory.
    pub fn new(data_dir: PathBuf) -> Config {
        Config {
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: None,
            db_from: Vec::new(),
            db_build: BuildOptions::default(),
            db_update_interval: Duration::from_secs(24 * 3600),
            reassess_batch: 200,
            job_poll: Duration::from_secs(5),
            http: http_limits(),
            shutdown_grace: Duration::from_secs(20),
            retention: palisade_store::RetentionPolicy::default(),
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// API requests answered.
    pub requests: AtomicU64,
    /// Requests refused for a missing, wrong, revoked or expired token.
    pub auth_failures: AtomicU64,
    /// Images accepted by uploads.
    pub images_ingested: AtomicU64,
    /// Re-assessment runs finished.
    pub reassessments: AtomicU64,
    /// Images re-assessed.
    pub images_reassessed: AtomicU64,
    /// Job runs that failed.
    pub job_failures: AtomicU64,
    /// Duration of the last database build or download, ms.
    pub last_db_build_ms: AtomicU64,
    /// Duration of the last re-assessment, ms.
    pub last_reassess_ms: AtomicU64,
}

/// A running server's shared state.
pub struct Server {
    /// The store.
    pub store: Store,
    /// The configuration.
    pub config: Config,
    /// The vulnerability database (`None` until the first update succeeds).
    vulndb: RwLock<Option<Arc<VulnDb>>>,
    /// Counters.
    pub metrics: Metrics,
    /// This replica's ID (lease owner).
    pub replica: String,
    /// Woken by `POST /api/v1/admin/db/update`.
    pub(crate) wake: tokio::sync::Notify,
    /// Body memory in flight, in MiB permits ([`BODY_BUDGET_MIB`]).
    pub(crate) bodies: tokio::sync::Semaphore,
    /// Image uploads being matched now (re-assessment yields to them).
    pub(crate) interactive: std::sync::atomic::AtomicUsize,
    /// Set when the server stops: a running re-assessment gives its lease up after its page.
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    /// Served over TLS (console cookies get `Secure`).
    pub(crate) tls: std::sync::atomic::AtomicBool,
    /// The console overview's figures, reused for a few seconds.
    pub(crate) overview: console::OverviewCache,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("config", &self.config).field("replica", &self.replica).finish_non_exhaustive()
    }
}

/// What [`Server::open`] did on first start.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// Where the bootstrap admin token was written (`None`: an admin token already existed).
    pub admin_token_path: Option<PathBuf>,
}

impl Server {
    /// Mark the server as stopping (done by [`serve`] when its listener closes): a running
    /// re-assessment gives its lease up after the page it is on, keeping its cursor.
    pub fn set_stopping(&self, stopping: bool) {
        self.stopping.store(stopping, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the server is served over TLS (set by [`serve_tls_handle`]; console cookies
    /// are `Secure` then).
    pub fn tls_enabled(&self) -> bool {
        self.tls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Mark the server as served over TLS (done by [`serve_tls_handle`]; for hosts that
    /// terminate TLS themselves in front of [`router`]).
    pub fn set_tls(&self, tls: bool) {
        self.tls.store(tls, std::sync::atomic::Ordering::Relaxed);
    }

    /// Open the store and the database; on first start create the admin token and the
    /// `db-update` job (due at once when there is no database yet).
    pub async fn open(config: Config) -> Result<(Arc<Server>, Bootstrap), ServerError> {
        create_private_dir(&config.data_dir)?;
        let location = match &config.database_url {
            Some(u) => palisade_store::Location::parse(u)?,
            None => palisade_store::Location::DataDir(config.data_dir.clone()),
        };
        let store = Store::open(StoreConfig::new(location)).await?;
        let db_path = config.data_dir.join(VULN_DB_FILE);
        let vulndb = match VulnDb::open(&db_path) {
            Ok(d) => Some(Arc::new(d)),
            Err(DbError::Missing { .. }) => None,
            Err(e) => {
                tracing::warn!(error = %e, "the server's vulnerability database is unreadable; the next update replaces it");
                None
            }
        };
        let mut boot = Bootstrap { admin_token_path: None };
        if !store.has_admin_token().await? {
            let (_, secret) = store
                .create_token(
                    &NewToken {
                        name: "bootstrap admin".into(),
                        role: Role::Admin,
                        expires_at: None,
                        single_use: false,
                        cluster: None,
                    },
                    "system:bootstrap",
                )
                .await?;
            let path = config.data_dir.join(ADMIN_TOKEN_FILE);
            write_secret(&path, &secret)?;
            boot.admin_token_path = Some(path);
        }
        let now = store.now();
        let first = if vulndb.is_none() { now } else { now + secs(config.db_update_interval) };
        store.ensure_job(DB_UPDATE_JOB, 0, Some(first)).await?;
        store.ensure_job(RETENTION_JOB, 0, Some(now + secs(RETENTION_INTERVAL))).await?;
        let server = Server {
            store,
            vulndb: RwLock::new(vulndb),
            metrics: Metrics::default(),
            replica: format!("{}-{}", hostname(), uuid::Uuid::new_v4()),
            wake: tokio::sync::Notify::new(),
            bodies: tokio::sync::Semaphore::new(BODY_BUDGET_MIB as usize),
            interactive: std::sync::atomic::AtomicUsize::new(0),
            stopping: std::sync::atomic::AtomicBool::new(false),
            tls: std::sync::atomic::AtomicBool::new(false),
            overview: console::OverviewCache::default(),
            config,
        };
        Ok((Arc::new(server), boot))
    }

    /// The current vulnerability database, if any.
    pub fn vulndb(&self) -> Option<Arc<VulnDb>> {
        self.vulndb.read().map(|g| g.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    pub(crate) fn set_vulndb(&self, db: VulnDb) {
        let mut g = self.vulndb.write().unwrap_or_else(|p| p.into_inner());
        *g = Some(Arc::new(db));
    }

    /// Where the server keeps its vulnerability database.
    pub fn db_path(&self) -> PathBuf {
        self.config.data_dir.join(VULN_DB_FILE)
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "palisade".into())
}

/// Create `dir` (and its parents) when missing, the last one readable by the owner only (0700:
/// it holds the SQLite store, token hashes and the database). An existing directory is left as
/// it is.
fn create_private_dir(dir: &Path) -> Result<(), ServerError> {
    if dir.is_dir() {
        return Ok(());
    }
    let io = |error| ServerError::Io { path: dir.to_path_buf(), error };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    match b.create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// Write `secret` to `path` readable by the owner only (created 0600, never widened).
fn write_secret(path: &Path, secret: &str) -> Result<(), ServerError> {
    use std::io::Write as _;
    let io = |error| ServerError::Io { path: path.to_path_buf(), error };
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    f.write_all(secret.as_bytes()).map_err(io)?;
    f.write_all(b"\n").map_err(io)?;
    f.sync_all().map_err(io)
}

/// Bind `config.listen`, run the job loop beside the API, and stop (draining in-flight requests)
/// when `shutdown` completes.
pub async fn serve(
    server: Arc<Server>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_with(server, listener, None, shutdown).await
}

/// [`serve`] over TLS when `tls` is given. The router is hosted by the webhooks' serving core
/// ([`palisade_https::serve_on`]): handshake, first-byte, request-head and idle deadlines, a
/// connection cap that evicts idle connections first, and a graceful drain bounded by
/// [`Config::shutdown_grace`]. Use [`serve_tls_handle`] to rotate certificates while running.
pub async fn serve_with(
    server: Arc<Server>,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_tls_handle(server, listener, tls, shutdown).1.await;
    Ok(())
}

/// The parts of [`serve_with`]: a handle (certificate rotation, connection count) and the
/// future that serves until `shutdown`, then drains, stops the jobs and closes the store.
pub fn serve_tls_handle(
    server: Arc<Server>,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (palisade_https::Handle, impl std::future::Future<Output = ()> + Send) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    server.set_tls(tls.is_some());
    let app = router(server.clone());
    let addr = listener.local_addr().ok();
    let limits = server.config.http.clone();
    let grace = server.config.shutdown_grace;
    let svc = hyper_util::service::TowerToHyperService::new(app);
    let (handle, serving) = palisade_https::serve_on(listener, tls, limits, svc, shutdown, grace);
    let run = async move {
        let jobs = tokio::spawn(jobs::run_loop(server.clone(), stop_rx));
        tracing::info!(?addr, "palisade server listening");
        serving.await;
        server.set_stopping(true);
        let _ = stop_tx.send(true);
        let _ = jobs.await;
        server.store.close().await;
    };
    (handle, run)
}
