//! Package catalogers and SBOM writers.
//!
//! The catalogers are pure functions from `(path, bytes)` to packages: they do
//! no I/O. The image crate streams files to them through [`analyzer::Catalogers`];
//! [`scan::scan`] assembles the result into an [`palisade_model::Sbom`], and
//! [`format`] writes it as a table, native JSON, CycloneDX 1.6 or SPDX 2.3.

pub mod analyzer;
pub mod catalog;
mod error;
pub mod format;
pub mod read;
pub mod scan;

pub use error::CatalogError;
pub use scan::scan;
