//! placeholder crate, being written
