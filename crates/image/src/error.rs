//! Errors of image access.

use std::path::PathBuf;

/// Why an image could not be read.
///
/// Every variant names what failed (the image reference, the layer digest or
/// the file), so the CLI can print it as a one-line reason.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The reference or transport string could not be parsed.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// As given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A local file or directory could not be read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Underlying error (part of the message, not a separate cause).
        error: std::io::Error,
    },
    /// A manifest, index or config is not what the spec says.
    #[error("{image}: invalid {what}: {reason}")]
    InvalidManifest {
        /// Image name.
        image: String,
        /// `manifest`, `index`, `config`, `index.json`, `manifest.json`.
        what: &'static str,
        /// Details.
        reason: String,
    },
    /// The media type of a manifest or layer is not one we can read.
    #[error("{image}: unsupported media type {media_type:?}")]
    UnsupportedMediaType {
        /// Image name.
        image: String,
        /// The media type seen.
        media_type: String,
    },
    /// No manifest of an index matches the requested platform.
    #[error("{image}: no image for platform {wanted}; available: {}", short_list(available))]
    PlatformNotFound {
        /// Image name.
        image: String,
        /// Requested platform.
        wanted: String,
        /// Platforms the index offers.
        available: Vec<String>,
    },
    /// A tag or manifest was not found in a layout or archive.
    #[error("{image}: {what} not found")]
    NotFound {
        /// Image name.
        image: String,
        /// What is missing.
        what: String,
    },
    /// A layer's content does not match its digest.
    #[error("{image}: layer {layer}: digest mismatch (expected {expected}, got {actual})")]
    DigestMismatch {
        /// Image name.
        image: String,
        /// Layer (descriptor digest or archive path).
        layer: String,
        /// Expected digest.
        expected: String,
        /// Computed digest.
        actual: String,
    },
    /// A layer could not be decompressed or is not a valid tar stream.
    #[error("{image}: layer {layer}: {reason}")]
    BadLayer {
        /// Image name.
        image: String,
        /// Layer digest.
        layer: String,
        /// What went wrong (truncated tar, bad gzip, ...).
        reason: String,
    },
    /// The registry answered with an error.
    #[error("{image}: registry {registry}: {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Registry {
        /// Image name.
        image: String,
        /// Registry host.
        registry: String,
        /// HTTP status (or `connection error`).
        status: String,
        /// Message from the registry's error body, if any.
        message: String,
    },
    /// Authentication with the registry failed.
    #[error("{image}: authentication to {registry} failed: {reason}")]
    Auth {
        /// Image name.
        image: String,
        /// Registry host.
        registry: String,
        /// Details.
        reason: String,
    },
    /// A size limit was exceeded (manifest too large, too many layers, ...).
    #[error("{image}: {what} exceeds the limit of {limit}")]
    Limit {
        /// Image name.
        image: String,
        /// What was too large.
        what: String,
        /// The limit.
        limit: u64,
    },
}

/// Most items an error message lists before "… N more".
pub const MAX_LISTED: usize = 10;

/// `a, b, c` for at most [`MAX_LISTED`] items (each cut to 80 characters), then `… N more`.
fn short_list(items: &[String]) -> String {
    let mut s: Vec<String> = items.iter().take(MAX_LISTED).map(|i| i.chars().take(80).collect()).collect();
    if items.len() > MAX_LISTED {
        s.push(format!("… {} more", items.len() - MAX_LISTED));
    }
    s.join(", ")
}

impl ImageError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ImageError::Io { path: path.into(), error: source }
    }
}

/// Shorthand result type.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;
