//! Vulnerability feeds, the local database, per-ecosystem version order and matching.
//!
//! - [`feed`]: parsers of upstream feeds into normalised [`record`]s (pure).
//! - [`version`]: each ecosystem's version order and OSV range evaluation (pure).
//! - [`db`]: the database file (build, atomic write, sectioned lazy read).
//! - [`matcher`]: SBOM packages × database → findings (pure over an opened database).

pub mod db;
pub mod feed;
// pub mod matcher; (enabled once version::compare lands)
pub mod record;
pub mod version;
