//! Documents in `doc` columns and content hashes.
//!
//! A stored document is one tag byte and the payload: `j` + JSON, or `z` + zstd(JSON) for
//! documents above the configured size.

use crate::error::{Result, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// zstd level: fast; documents are compressed on the ingest path.
const LEVEL: i32 = 3;
/// A decompressed document larger than this is refused as corrupt (bounded memory).
const MAX_DOC: usize = 256 << 20;

/// Encode JSON bytes for a `doc` column.
pub(crate) fn pack(json: &[u8], compress_above: usize) -> Vec<u8> {
    if json.len() > compress_above {
        if let Ok(z) = zstd::bulk::compress(json, LEVEL) {
            let mut out = Vec::with_capacity(z.len() + 1);
            out.push(b'z');
            out.extend_from_slice(&z);
            return out;
        }
    }
    let mut out = Vec::with_capacity(json.len() + 1);
    out.push(b'j');
    out.extend_from_slice(json);
    out
}

/// Serialise and encode a value.
pub(crate) fn pack_value<T: Serialize + ?Sized>(v: &T, compress_above: usize) -> Vec<u8> {
    let json = serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec());
    pack(&json, compress_above)
}

/// Decode a `doc` column into JSON bytes.
pub(crate) fn unpack(what: &'static str, key: &str, raw: &[u8]) -> Result<Vec<u8>> {
    let corrupt = |reason: String| StoreError::Corrupt { what, key: key.to_string(), reason };
    match raw.split_first() {
        Some((b'j', rest)) => Ok(rest.to_vec()),
        Some((b'z', rest)) => {
            let mut out = Vec::new();
            let mut dec = zstd::stream::read::Decoder::new(rest).map_err(|e| corrupt(e.to_string()))?;
            use std::io::Read;
            (&mut dec).take(MAX_DOC as u64 + 1).read_to_end(&mut out).map_err(|e| corrupt(e.to_string()))?;
            if out.len() > MAX_DOC {
                return Err(corrupt(format!("larger than {MAX_DOC} bytes")));
            }
            Ok(out)
        }
        Some((t, _)) => Err(corrupt(format!("unknown document tag {t:#04x}"))),
        None => Err(corrupt("empty document".into())),
    }
}

/// Decode a `doc` column into a type.
pub(crate) fn unpack_as<T: DeserializeOwned>(what: &'static str, key: &str, raw: &[u8]) -> Result<T> {
    let bytes = unpack(what, key, raw)?;
    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
        what,
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// Decode an optional `doc` column into JSON.
pub(crate) fn unpack_opt(what: &'static str, key: &str, raw: Option<Vec<u8>>) -> Result<Option<serde_json::Value>> {
    raw.map(|r| unpack_as(what, key, &r)).transpose()
}

/// sha256 hex of bytes.
pub(crate) fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// sha256 hex of NUL-separated parts (a key that cannot be confused by concatenation).
pub(crate) fn key_of(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_forms() {
        let small = serde_json::json!({"a": 1});
        let big = serde_json::json!({"a": "x".repeat(10_000)});
        let p = pack_value(&small, 100);
        assert_eq!(p[0], b'j');
        let q = pack_value(&big, 100);
        assert_eq!(q[0], b'z');
        assert!(q.len() < 1000);
        assert_eq!(unpack_as::<serde_json::Value>("t", "k", &p).ok(), Some(small));
        assert_eq!(unpack_as::<serde_json::Value>("t", "k", &q).ok(), Some(big));
    }

    #[test]
    #[allow(clippy::panic)]
    fn corrupt_documents_are_named_errors() {
        for raw in [&b""[..], b"q{}", b"zgarbage", b"j{not json"] {
            match unpack_as::<serde_json::Value>("finding", "42", raw) {
                Err(StoreError::Corrupt { what: "finding", key, .. }) => assert_eq!(key, "42"),
                other => panic!("{raw:?}: {other:?}"),
            }
        }
    }
}
