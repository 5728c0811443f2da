//! Bounded access to compressed feeds: gzip, tar(.gz) and zip, never trusting declared sizes.

use std::io::{self, Read, Seek};

use super::{
    FeedError, FeedKind, MAX_ARCHIVE_BYTES, MAX_ARCHIVE_ENTRIES, MAX_ENTRY_BYTES, MAX_GUNZIP_BYTES, MAX_ZIP_RATIO,
};

/// Read at most `limit` bytes; `Ok(None)` when the stream is longer.
pub(crate) fn read_bounded<R: Read>(r: R, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    r.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        Ok(None)
    } else {
        Ok(Some(buf))
    }
}

/// Whether `data` starts with the gzip magic.
pub(crate) fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
}

/// Whether `data` starts like a zip archive.
#[allow(dead_code)]
pub(crate) fn is_zip(data: &[u8]) -> bool {
    data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06")
}

/// Decompress `data` when it is gzip (bounded by [`MAX_GUNZIP_BYTES`], a clear
/// [`FeedError::Limit`] beyond), else return it as is.
pub(crate) fn maybe_gunzip(file: &str, kind: FeedKind, data: &[u8]) -> Result<Vec<u8>, FeedError> {
    if !is_gzip(data) {
        return Ok(data.to_vec());
    }
    match read_bounded(flate2::read::MultiGzDecoder::new(data), MAX_GUNZIP_BYTES) {
        Ok(Some(out)) => Ok(out),
        Ok(None) => {
            Err(FeedError::Limit { file: file.to_string(), what: "decompressed gzip size", limit: MAX_GUNZIP_BYTES })
        }
        Err(e) => Err(FeedError::Format { file: file.to_string(), kind, reason: format!("bad gzip data: {e}") }),
    }
}

/// What walking an archive saw besides the entries handed to the callback.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// Wanted entries that could not be read or were larger than [`MAX_ENTRY_BYTES`].
    pub skipped: usize,
}

/// Walk the regular files of a tar stream (gzip-compressed or not). `want` selects entries by
/// path; selected entries up to [`MAX_ENTRY_BYTES`] are handed to `f` with their content.
/// A corrupt stream after at least one entry ends the walk (counted as one skipped entry);
/// a stream that is not tar at all is a format error.
pub(crate) fn walk_tar(
    file: &str,
    kind: FeedKind,
    data: &[u8],
    want: impl Fn(&str) -> bool,
    mut f: impl FnMut(&str, &[u8]) -> Result<(), FeedError>,
) -> Result<Walk, FeedError> {
    let reader: Box<dyn Read + '_> =
        if is_gzip(data) { Box::new(flate2::read::MultiGzDecoder::new(data)) } else { Box::new(data) };
    let mut archive = tar::Archive::new(reader);
    let bad = |reason: String| FeedError::Format { file: file.to_string(), kind, reason };
    let entries = archive.entries().map_err(|e| bad(format!("not a tar archive: {e}")))?;
    let mut walk = Walk::default();
    let mut seen = 0usize;
    let mut total: u64 = 0;
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) if seen == 0 => return Err(bad(format!("not a tar archive: {e}"))),
            Err(e) => {
                tracing::warn!(file, error = %e, "tar stream ends with an error");
                walk.skipped += 1;
                break;
            }
        };
        seen += 1;
        if seen > MAX_ARCHIVE_ENTRIES {
            return Err(FeedError::Limit {
                file: file.to_string(),
                what: "archive entries",
                limit: MAX_ARCHIVE_ENTRIES as u64,
            });
        }
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = match entry.path() {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(_) => continue,
        };
        if !want(&path) {
            continue;
        }
        if entry.size() > MAX_ENTRY_BYTES {
            tracing::debug!(file, entry = %path, "archive entry too large, skipped");
            walk.skipped += 1;
            continue;
        }
        match read_bounded(&mut entry, MAX_ENTRY_BYTES) {
            Ok(Some(content)) => {
                total = total.saturating_add(content.len() as u64);
                if total > MAX_ARCHIVE_BYTES {
                    return Err(FeedError::Limit {
                        file: file.to_string(),
                        what: "decompressed archive size",
                        limit: MAX_ARCHIVE_BYTES,
                    });
                }
                f(&path, &content)?;
            }
            Ok(None) => walk.skipped += 1,
            Err(e) => {
                tracing::warn!(file, entry = %path, error = %e, "tar entry unreadable; stopping");
                walk.skipped += 1;
                break;
            }
        }
    }
    if seen == 0 {
        return Err(bad("no tar entries".to_string()));
    }
    Ok(walk)
}

/// Walk the regular files of a zip archive; like [`walk_tar`].
pub(crate) fn walk_zip<R: Read + Seek>(
    file: &str,
    kind: FeedKind,
    reader: R,
    want: impl Fn(&str) -> bool,
    mut f: impl FnMut(&str, &[u8]) -> Result<(), FeedError>,
) -> Result<Walk, FeedError> {
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| FeedError::Format {
        file: file.to_string(),
        kind,
        reason: format!("not a zip archive: {e}"),
    })?;
    if archive.len() > MAX_ARCHIVE_ENTRIES {
        return Err(FeedError::Limit {
            file: file.to_string(),
            what: "archive entries",
            limit: MAX_ARCHIVE_ENTRIES as u64,
        });
    }
    let mut walk = Walk::default();
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = match archive.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(file, index = i, error = %e, "unreadable zip entry");
                walk.skipped += 1;
                continue;
            }
        };
        if !entry.is_file() {
            continue;
        }
        let name = entry.name().to_string();
        if !want(&name) {
            continue;
        }
        if entry.size() > MAX_ENTRY_BYTES {
            tracing::debug!(file, entry = %name, "zip entry too large, skipped");
            walk.skipped += 1;
            continue;
        }
        // A zip bomb is a feed error, not a skipped record: the archive as a whole is hostile.
        #[allow(clippy::manual_clamp)] // max-then-min never panics, whatever the constants
        let ratio_cap = entry.compressed_size().saturating_mul(MAX_ZIP_RATIO).max(1 << 20).min(MAX_ENTRY_BYTES);
        let bomb = |got: &str| FeedError::Limit {
            file: file.to_string(),
            what: if got == "ratio" { "zip entry decompression ratio" } else { "zip entry size" },
            limit: if got == "ratio" { MAX_ZIP_RATIO } else { MAX_ENTRY_BYTES },
        };
        match read_bounded(&mut entry, ratio_cap) {
            Ok(None) => {
                tracing::warn!(file, entry = %name, "zip entry decompresses past its limit (zip bomb)");
                return Err(bomb(if ratio_cap < MAX_ENTRY_BYTES { "ratio" } else { "size" }));
            }
            Ok(Some(content)) => {
                drop(entry);
                total = total.saturating_add(content.len() as u64);
                if total > MAX_ARCHIVE_BYTES {
                    return Err(FeedError::Limit {
                        file: file.to_string(),
                        what: "decompressed archive size",
                        limit: MAX_ARCHIVE_BYTES,
                    });
                }
                f(&name, &content)?;
            }
            Err(e) => {
                tracing::debug!(file, entry = %name, error = %e, "zip entry unreadable");
                walk.skipped += 1;
            }
        }
    }
    Ok(walk)
}
