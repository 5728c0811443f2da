//! Vulnerability feeds, the local database, per-ecosystem version order and matching.

pub mod feed;
pub mod record;
pub mod version;
