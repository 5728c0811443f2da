//! Persistence for the Palisade server.
//!
//! One schema, one set of migrations ([`schema`]), two backends behind sqlx's `Any` driver:
//!
//! - **SQLite** (the default), a file `palisade.db` in a data directory, in WAL mode with
//!   `synchronous=FULL` (every commit is on disk before the call returns: `kill -9` or a power
//!   loss loses no acknowledged write). Writes go through one connection (SQLite has one writer
//!   anyway; serialising them in-process avoids `SQLITE_BUSY`), reads through a small pool.
//! - **PostgreSQL** (`postgres://…`), for several server replicas behind a load balancer.
//!
//! # How SQL is shared
//! Every query is written once, in the common subset of both dialects: `$N` placeholders (SQLite
//! reads `$N` as positional), `INSERT … ON CONFLICT … DO UPDATE`, `RETURNING`, multi-row
//! `VALUES`. Columns use only the types `Any` maps on both (64-bit integers, doubles, text,
//! blobs); timestamps are Unix seconds and booleans 0/1. The DDL differs only by four type
//! tokens rendered per backend ([`schema`]). The one query that differs is the job claim, which
//! adds `FOR UPDATE SKIP LOCKED` on PostgreSQL ([`Backend`]).
//!
//! # Documents
//! Rows keep their indexed columns plus the whole document as JSON in a `doc` blob, zstd-compressed
//! when larger than [`StoreConfig::compress_above`] (a one-byte tag tells which).
//!
//! # Writes
//! Every write method runs in one transaction that is committed before it returns, records
//! an [audit](Store::list_audit) entry in the same transaction (heartbeats excepted: they are
//! telemetry, kept as the last state per component), and is idempotent: the same payload twice is
//! one record. Transient failures (a dropped connection, a PostgreSQL restart, a serialization
//! failure, SQLite busy) re-run the whole transaction with backoff ([`RetryPolicy`]); because the
//! writes are idempotent, re-running a transaction whose commit outcome was lost is safe.
//!
//! # Findings
//! Vulnerability findings are never deleted: a finding that no longer matches gets `resolved_at`;
//! one that matches again is reopened. Every change is a [`ChangeEvent`].

#![warn(missing_docs)]

mod error;
pub mod schema;
mod types;

mod alerts;
mod auth;
mod codec;
mod exemptions;
mod findings;
mod inventory;
mod jobs;
mod query;
mod retention;
mod sessions;
mod sql;

pub use error::{Result, StoreError};
pub use exemptions::MAX_EXEMPTION_SECS;
pub use sessions::{csrf_token, MAX_SESSION_SECS};
pub use types::*;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The database backend of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A data directory; the database is `DIR/palisade.db` (created when missing).
    DataDir(PathBuf),
    /// A PostgreSQL URL (`postgres://user@host:port/db`).
    Postgres(String),
}

impl Location {
    /// `postgres://…` / `postgresql://…` is PostgreSQL; anything else is a data directory.
    pub fn parse(s: &str) -> Result<Location> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(Location::Postgres(s.to_string()))
        } else if s.contains("://") {
            Err(StoreError::Location {
                location: s.to_string(),
                reason: "only postgres:// URLs or a data directory path are supported".into(),
            })
        } else if s.is_empty() {
            Err(StoreError::Location { location: String::new(), reason: "empty".into() })
        } else {
            Ok(Location::DataDir(PathBuf::from(s)))
        }
    }

    /// The backend this location uses.
    pub fn backend(&self) -> Backend {
        match self {
            Location::DataDir(_) => Backend::Sqlite,
            Location::Postgres(_) => Backend::Postgres,
        }
    }
}

/// How transient failures are retried: exponential backoff from `initial` doubling to
/// `max_delay`, for at most `max_elapsed` in total.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First delay.
    pub initial: Duration,
    /// Largest delay.
    pub max_delay: Duration,
    /// Give up (with [`StoreError::Unavailable`]) after this long.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1`, or `None` when the budget is spent.
    pub(crate) fn delay(&self, attempt: u32, elapsed: Duration) -> Option<Duration> {
        if elapsed >= self.max_elapsed {
            return None;
        }
        let factor = 1u32.checked_shl(attempt.saturating_sub(1).min(16)).unwrap_or(u32::MAX);
        let d = self.initial.saturating_mul(factor).min(self.max_delay);
        Some(d.min(self.max_elapsed - elapsed))
    }
}

/// The clock the store stamps records with (Unix seconds). Tests inject their own.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    })
}

/// SQLite durability: `Full` syncs the WAL on every commit (survives power loss); `Normal`
/// syncs at checkpoints only (survives `kill -9` of the process, may lose the last commits on
/// power loss), which is faster on slow disks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// `PRAGMA synchronous=FULL` (default).
    #[default]
    Full,
    /// `PRAGMA synchronous=NORMAL`.
    Normal,
}

/// How to open a store.
#[derive(Clone)]
pub struct StoreConfig {
    /// Where.
    pub location: Location,
    /// Connection pool size (PostgreSQL; SQLite read pool). Default 8.
    pub max_connections: u32,
    /// Retry of transient failures.
    pub retry: RetryPolicy,
    /// Clock.
    pub clock: Clock,
    /// Documents larger than this many bytes are zstd-compressed. Default 2048.
    pub compress_above: usize,
    /// An EPSS change is an event when the score moved at least this much since the last
    /// EPSS event (or first sight) of the finding. Default 0.1. (The stored score is always
    /// the current one.)
    pub epss_event_threshold: f64,
    /// SQLite durability.
    pub sqlite_sync: SqliteSync,
    /// How long to wait for a pooled connection before it counts as a (transient) timeout.
    pub acquire_timeout: Duration,
    /// Rows written before [`Store::refresh_statistics`] refreshes the planner statistics
    /// (and a fifth of all rows this process wrote); default [`ANALYZE_MIN_ROWS`].
    pub analyze_after_rows: u64,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("location", &redact(&self.location))
            .field("max_connections", &self.max_connections)
            .field("retry", &self.retry)
            .field("compress_above", &self.compress_above)
            .field("epss_event_threshold", &self.epss_event_threshold)
            .field("sqlite_sync", &self.sqlite_sync)
            .finish_non_exhaustive()
    }
}

/// A location for logs: a PostgreSQL password is replaced by `***`.
pub fn redact(l: &Location) -> String {
    match l {
        Location::DataDir(p) => p.display().to_string(),
        Location::Postgres(u) => match (u.find("://"), u.rfind('@')) {
            (Some(s), Some(at)) if at > s => {
                let userinfo = &u[s + 3..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => format!("{}{}:***{}", &u[..s + 3], user, &u[at..]),
                    None => u.clone(),
                }
            }
            _ => u.clone(),
        },
    }
}

impl StoreConfig {
    /// Defaults for `location`.
    pub fn new(location: Location) -> StoreConfig {
        StoreConfig {
            location,
            max_connections: 8,
            retry: RetryPolicy::default(),
            clock: system_clock(),
            compress_above: 2048,
            epss_event_threshold: 0.1,
            sqlite_sync: SqliteSync::Full,
            acquire_timeout: Duration::from_secs(10),
            analyze_after_rows: ANALYZE_MIN_ROWS,
        }
    }
}

/// Default of [`StoreConfig::analyze_after_rows`].
pub const ANALYZE_MIN_ROWS: u64 = 20_000;

pub(crate) struct Inner {
    pub(crate) backend: Backend,
    /// Reads (and, on PostgreSQL, writes).
    pub(crate) read: AnyPool,
    /// Writes (SQLite: one connection).
    pub(crate) write: AnyPool,
    pub(crate) retry: RetryPolicy,
    pub(crate) clock: Clock,
    pub(crate) compress_above: usize,
    pub(crate) epss_threshold: f64,
    /// Rows written since the planner statistics were last refreshed, and in all.
    pub(crate) rows_since_analyze: std::sync::atomic::AtomicU64,
    pub(crate) rows_written: std::sync::atomic::AtomicU64,
    pub(crate) analyze_after_rows: u64,
    pub(crate) location: Location,
}

/// The store: cheap to clone (one shared pool), safe to use from many tasks.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .field("location", &redact(&self.inner.location))
            .finish()
    }
}

/// Re-run `$body` (an `async` block yielding `Result<T>`) while it fails transiently, with the
/// store's backoff; the last transient error becomes [`StoreError::Unavailable`].
macro_rules! retrying {
    ($store:expr, $what:expr, $body:expr) => {{
        let started = std::time::Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let r: $crate::error::Result<_> = $body.await;
            match r {
                Err($crate::error::StoreError::Database(e)) if $crate::error::is_transient(&e) => {
                    match $store.inner.retry.delay(attempt, started.elapsed()) {
                        Some(d) => {
                            tracing::warn!(operation = $what, attempt, error = %e, "transient database error; retrying in {d:?}");
                            tokio::time::sleep(d).await;
                        }
                        None => {
                            break Err($crate::error::StoreError::Unavailable {
                                attempts: attempt,
                                elapsed: started.elapsed(),
                                source: e,
                            })
                        }
                    }
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use retrying;

impl Store {
    /// Open (creating when missing) the store and apply pending migrations.
    ///
    /// SQLite: creates the data directory (mode 0700 on Unix) and `palisade.db` in it.
    /// PostgreSQL: the database must exist; the schema is created in the connection's
    /// `search_path` (so a URL with `?options=-csearch_path%3Dname` selects a schema).
    /// Connecting is retried with the configured backoff (a database still starting up).
    pub async fn open(config: StoreConfig) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = config.location.backend();
        let (read, write) = match &config.location {
            Location::DataDir(dir) => {
                create_data_dir(dir)?;
                let url = sqlite_url(&dir.join("palisade.db"));
                let sync = match config.sqlite_sync {
                    SqliteSync::Full => "FULL",
                    SqliteSync::Normal => "NORMAL",
                };
                let opts = AnyConnectOptions::from_str(&url)?;
                let base: &'static str = match sync {
                    "FULL" => "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;",
                    _ => "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;",
                };
                // The one writer keeps statement journals in memory and a 32 MiB page cache: with
                // SQLite's 2 MiB default, a 20-image upload (6,000 rows and their indexes) spilled
                // dirty pages and wrote every multi-row INSERT's statement journal to a temp file.
                let writer: &'static str = "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-32768;";
                let mk = |n: u32, extra: &'static str| {
                    AnyPoolOptions::new().max_connections(n).acquire_timeout(config.acquire_timeout).after_connect(
                        move |conn, _| {
                            Box::pin(async move {
                                conn.execute(base).await?;
                                if !extra.is_empty() {
                                    conn.execute(extra).await?;
                                }
                                Ok(())
                            })
                        },
                    )
                };
                // The writer first: it switches the file to WAL before readers open it.
                let write = mk(1, writer).connect_with(opts.clone()).await?;
                let read = mk(config.max_connections.max(1), "").connect_lazy_with(opts);
                (read, write)
            }
            Location::Postgres(url) => {
                let opts = AnyConnectOptions::from_str(url)?;
                let pool_opts = AnyPoolOptions::new()
                    .max_connections(config.max_connections.max(2))
                    .acquire_timeout(config.acquire_timeout);
                let started = std::time::Instant::now();
                let mut attempt = 0u32;
                let pool = loop {
                    attempt += 1;
                    match pool_opts.clone().connect_with(opts.clone()).await {
                        Ok(p) => break p,
                        Err(e) if error::is_transient(&e) => match config.retry.delay(attempt, started.elapsed()) {
                            Some(d) => {
                                tracing::warn!(attempt, error = %e, "PostgreSQL not reachable; retrying in {d:?}");
                                tokio::time::sleep(d).await;
                            }
                            None => {
                                return Err(StoreError::Unavailable {
                                    attempts: attempt,
                                    elapsed: started.elapsed(),
                                    source: e,
                                })
                            }
                        },
                        Err(e) => return Err(e.into()),
                    }
                };
                (pool.clone(), pool)
            }
        };
        schema::migrator(backend).run(&write).await?;
        tracing::info!(backend = ?backend, location = %redact(&config.location), "store open");
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                read,
                write,
                retry: config.retry,
                clock: config.clock,
                compress_above: config.compress_above,
                epss_threshold: config.epss_event_threshold,
                rows_since_analyze: Default::default(),
                rows_written: Default::default(),
                analyze_after_rows: config.analyze_after_rows,
                location: config.location,
            }),
        })
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The store's clock, now.
    pub fn now(&self) -> Timestamp {
        (self.inner.clock)()
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.inner.read).await?;
        Ok(())
    }

    /// The applied schema version.
    pub async fn schema_version(&self) -> Result<i64> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations").fetch_one(&self.inner.read).await?;
        Ok(v.unwrap_or(0))
    }

    /// Count rows a committed write added or changed (for [`Store::refresh_statistics`]).
    pub(crate) fn wrote(&self, rows: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let rows = rows as u64;
        self.inner.rows_since_analyze.fetch_add(rows, Relaxed);
        self.inner.rows_written.fetch_add(rows, Relaxed);
    }

    /// Refresh the query planner's statistics when enough has been written since the last
    /// refresh (at least [`StoreConfig::analyze_after_rows`] rows and a fifth of everything this process wrote),
    /// or always with `force`. Returns whether it ran.
    ///
    /// PostgreSQL: `ANALYZE` of the tables the API lists. Its autovacuum daemon does the same,
    /// but only after 10 % of a table changed and on its own schedule: after a bulk load of
    /// 10,000 images the stale estimates made one image-list query take 72 ms instead of 9.
    /// SQLite: nothing (its planner uses no statistics unless `ANALYZE` was run once, which
    /// the store never does; plans follow the indexes alone).
    pub async fn refresh_statistics(&self, force: bool) -> Result<bool> {
        use std::sync::atomic::Ordering::Relaxed;
        let since = self.inner.rows_since_analyze.load(Relaxed);
        let total = self.inner.rows_written.load(Relaxed);
        if !force && (since < self.inner.analyze_after_rows.max(1) || since < total / 5) {
            return Ok(false);
        }
        self.inner.rows_since_analyze.fetch_sub(since, Relaxed);
        if self.inner.backend == Backend::Postgres {
            let started = std::time::Instant::now();
            let analyzed = sqlx::query(
                "ANALYZE findings, finding_ids, finding_events, images, image_tags, sboms, workloads, \
                 workload_images, posture_findings, alerts, heartbeats",
            )
            .execute(&self.inner.read)
            .await;
            if let Err(e) = analyzed {
                // still due: the next call tries again
                self.inner.rows_since_analyze.fetch_add(since, Relaxed);
                return Err(e.into());
            }
            tracing::debug!(rows = since, ms = started.elapsed().as_millis() as u64, "planner statistics refreshed");
        }
        Ok(true)
    }

    /// Close the pools, waiting for connections in use to be returned (graceful shutdown).
    /// SQLite: checkpoints the WAL into the main file first.
    pub async fn close(&self) {
        if self.inner.backend == Backend::Sqlite {
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.inner.write).await;
        }
        self.inner.write.close().await;
        self.inner.read.close().await;
    }

    /// Begin a write transaction (SQLite: `BEGIN IMMEDIATE`, taking the write lock up front).
    pub(crate) async fn begin_write(&self) -> std::result::Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.inner.backend {
            Backend::Sqlite => self.inner.write.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.inner.write.begin().await,
        }
    }
}

fn create_data_dir(dir: &Path) -> Result<()> {
    let err = |source| StoreError::DataDir { path: dir.to_path_buf(), source };
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(dir).map_err(err)?;
    }
    if !dir.is_dir() {
        return Err(err(std::io::Error::other("not a directory")));
    }
    Ok(())
}

fn sqlite_url(path: &Path) -> String {
    let mut s = String::from("sqlite://");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => s.push_str("%25"),
            '?' => s.push_str("%3F"),
            '#' => s.push_str("%23"),
            c => s.push(c),
        }
    }
    s.push_str("?mode=rwc");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(Location::parse("postgres://u@h/db").map(|l| l.backend()).ok(), Some(Backend::Postgres));
        assert_eq!(Location::parse("/var/lib/palisade").map(|l| l.backend()).ok(), Some(Backend::Sqlite));
        assert!(Location::parse("mysql://x").is_err());
        assert!(Location::parse("").is_err());
        assert_eq!(redact(&Location::Postgres("postgres://u:secret@h:5/db".into())), "postgres://u:***@h:5/db");
    }

    #[test]
    fn backoff_grows_and_stops() {
        let p = RetryPolicy {
            initial: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
            max_elapsed: Duration::from_secs(1),
        };
        assert_eq!(p.delay(1, Duration::ZERO), Some(Duration::from_millis(10)));
        assert_eq!(p.delay(2, Duration::ZERO), Some(Duration::from_millis(20)));
        assert_eq!(p.delay(9, Duration::ZERO), Some(Duration::from_millis(40)));
        assert_eq!(p.delay(3, Duration::from_secs(1)), None);
    }

    #[test]
    fn sqlite_urls_escape() {
        assert_eq!(sqlite_url(Path::new("/a b/x?#%.db")), "sqlite:///a b/x%3F%23%25.db?mode=rwc");
    }
}
