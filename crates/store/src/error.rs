//! The store's error type.

use std::time::Duration;

/// Everything a store operation can fail with.
///
/// Transient database failures (a dropped connection, a PostgreSQL restart, SQLite `BUSY`, a
/// serialization failure) are retried inside the store with backoff (see
/// [`RetryPolicy`](crate::RetryPolicy)); [`StoreError::Unavailable`] is what is left when the
/// retry budget runs out. Every other variant is returned at once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The location could not be understood (not a directory path, not `postgres://` or `sqlite:`).
    #[error("invalid store location {location:?}: {reason}")]
    Location {
        /// The location as given.
        location: String,
        /// Why it was refused.
        reason: String,
    },
    /// The data directory could not be created or used.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Applying the schema migrations failed (a modified applied migration, a newer database, ...).
    #[error("schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A transient database failure persisted beyond the retry budget.
    #[error("database unavailable after {attempts} attempts over {elapsed:?}: {source}")]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// Time spent retrying.
        elapsed: Duration,
        /// The last error.
        source: sqlx::Error,
    },
    /// Any other database error (constraint, syntax, type): a bug or a corrupt database.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The caller's input was refused; nothing was written.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The named record does not exist.
    #[error("{what} {key} not found")]
    NotFound {
        /// The kind of record (`image`, `finding`, `token`, ...).
        what: &'static str,
        /// Its key.
        key: String,
    },
    /// The job lease is no longer held by this owner (it expired and another replica took it).
    #[error("lease on job {job} lost (generation {generation})")]
    LeaseLost {
        /// The job.
        job: String,
        /// The generation the caller held.
        generation: i64,
    },
    /// A stored document could not be decoded (zstd or JSON): the row is named.
    #[error("stored {what} {key} is unreadable: {reason}")]
    Corrupt {
        /// The kind of record.
        what: &'static str,
        /// Its key.
        key: String,
        /// The decoder's message.
        reason: String,
    },
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Whether this error is a transient database failure worth retrying.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(e) => is_transient(e),
            _ => false,
        }
    }
}

/// Connection loss, PostgreSQL shutdown/restart/too-many-connections, serialization failures and
/// deadlocks, SQLite BUSY/LOCKED: the operation may succeed when run again.
pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        // A connection cut mid-message shows up as a protocol error on PostgreSQL.
        sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else { return false };
            let code = code.as_ref();
            if let Ok(n) = code.parse::<i64>() {
                // SQLite (extended) result codes: SQLITE_BUSY = 5, SQLITE_LOCKED = 6.
                return matches!(n & 0xff, 5 | 6);
            }
            // PostgreSQL SQLSTATE: connection exceptions, shutdown, cannot connect now,
            // too many connections, serialization failure, deadlock.
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01")
        }
        _ => false,
    }
}
