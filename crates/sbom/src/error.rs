//! Errors of the catalogers and writers.

/// Why a package database or manifest could not be read.
///
/// A cataloger error never stops a scan: the scan records it as a warning
/// naming the file and carries on with the other files.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The data is not in the format the cataloger expects.
    #[error("malformed {format}: {reason}")]
    Malformed {
        /// Format name, e.g. `rpm ndb`, `package-lock.json`.
        format: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The data is larger than the cataloger accepts.
    #[error("{format} too large: {size} bytes (limit {limit})")]
    TooLarge {
        /// Format name.
        format: &'static str,
        /// Size seen.
        size: u64,
        /// Limit applied.
        limit: u64,
    },
}

impl CatalogError {
    /// Shorthand for [`CatalogError::Malformed`].
    pub fn malformed(format: &'static str, reason: impl Into<String>) -> Self {
        CatalogError::Malformed { format, reason: reason.into() }
    }
}
