//! Package catalogers and SBOM writers.
//!
//! The catalogers are pure functions from `(path, bytes)` to packages: they do
//! no I/O. The image crate streams files to them; see [`scan`] for the glue.

pub mod catalog;
mod error;

pub use error::CatalogError;
