//! Integration tests of the `palisade` binary, in one test binary (as ripgrep does).
//!
//! The image tests need the project's test images (built and cached by
//! `scripts/build-test-images.sh`) and, for the registry tests, registries on
//! 127.0.0.1 started by `scripts/test.sh`. Run the suite with `scripts/test.sh`.
#![allow(clippy::panic, clippy::unwrap_used)] // a failed expectation is the point of a test or bench

mod admission;
mod detect;
mod errors;
mod images;
mod posture;
mod registry;
mod rootfs;
mod scan;
#[cfg(feature = "sensor")]
mod sensor;
mod server;
mod update;
mod util;
