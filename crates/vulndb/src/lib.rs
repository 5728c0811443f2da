//! Vulnerability feeds, the local database, per-ecosystem version order and matching.
//!
//! - [`feed`]: parsers of upstream feeds into normalised [`record`]s (pure).
//! - [`version`]: each ecosystem's version order and OSV range evaluation (pure).
//! - [`db`]: the database file (build, atomic write, sectioned lazy read).
//! - [`matcher`]: SBOM packages × database → findings (pure over an opened database).
//! - [`filter`]: severities, statuses, ignore files and OpenVEX suppressions (pure).
//! - [`report`]: table, JSON, SARIF and CycloneDX renderings (pure).
//! - [`update`]: downloading feeds with resume (the I/O shell of `db update`).

pub mod build;
pub mod db;
pub mod feed;
pub mod filter;
pub mod matcher;
pub mod record;
pub mod report;
pub mod update;
pub mod version;
