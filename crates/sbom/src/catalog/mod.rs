//! Catalogers: one module per package database or manifest format.
//!
//! Every cataloger has the shape `fn parse(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError>`
//! (or a close variant), is pure, bounded in memory by its input, and never panics on hostile input.

pub mod binary;
pub mod java;
pub mod lang;
pub mod node;
pub mod os;
pub mod python;
pub mod rpm;
