//! OCI image spec and Docker v2 schema 2 documents (the subset we read), and
//! platform selection from an index.

use crate::error::{ImageError, Result};
use serde::Deserialize;

/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list media type.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker v2 schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest, index or config we accept (bytes).
pub const MAX_DOCUMENT: u64 = 8 << 20;
/// Most layers an image may have.
pub const MAX_LAYERS: usize = 1024;

/// A content descriptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type.
    #[serde(default)]
    pub media_type: String,
    /// Content digest.
    pub digest: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Platform (index entries).
    #[serde(default)]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// An OS/architecture pair.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Platform {
    /// e.g. `amd64`.
    #[serde(default)]
    pub architecture: String,
    /// e.g. `linux`.
    #[serde(default)]
    pub os: String,
    /// e.g. `v8`.
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// Parse `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || ImageError::InvalidReference {
            reference: s.to_string(),
            reason: "platform must be os/arch[/variant]".to_string(),
        };
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform { os: os.to_string(), architecture: arch.to_string(), variant: None })
            }
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
                Ok(Platform { os: os.to_string(), architecture: arch.to_string(), variant: Some(v.to_string()) })
            }
            _ => Err(bad()),
        }
    }

    /// The platform this program runs on, as OCI names it.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            other => other,
        };
        Platform { os: "linux".into(), architecture: arch.into(), variant: None }
    }

    /// Whether `self` (an offered platform) satisfies `wanted`.
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && match (&wanted.variant, &self.variant) {
                (None, _) => true,
                (Some(w), Some(v)) => w == v,
                (Some(_), None) => false,
            }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image index or Docker manifest list.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Media type (may be absent in OCI layouts' index.json).
    #[serde(default)]
    pub media_type: String,
    /// Entries.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// An image manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Media type.
    #[serde(default)]
    pub media_type: String,
    /// Config descriptor.
    pub config: Descriptor,
    /// Layers, bottom first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// The image configuration (the parts we read).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    /// e.g. `amd64`.
    #[serde(default)]
    pub architecture: String,
    /// e.g. `linux`.
    #[serde(default)]
    pub os: String,
    /// Variant.
    #[serde(default)]
    pub variant: Option<String>,
    /// Root filesystem description.
    #[serde(default)]
    pub rootfs: RootFs,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootFs {
    /// Uncompressed layer digests, bottom first.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One entry of a docker-archive `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArchiveManifest {
    /// Path of the config file in the archive.
    pub config: String,
    /// Tags.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// Layer paths in the archive, bottom first.
    #[serde(default)]
    pub layers: Vec<String>,
}

/// Parse a JSON document, naming the image and document kind on error.
pub fn parse_json<T: serde::de::DeserializeOwned>(image: &str, what: &'static str, data: &[u8]) -> Result<T> {
    if data.len() as u64 > MAX_DOCUMENT {
        return Err(ImageError::Limit { image: image.into(), what: what.into(), limit: MAX_DOCUMENT });
    }
    serde_json::from_slice(data).map_err(|e| ImageError::InvalidManifest {
        image: image.to_string(),
        what,
        reason: e.to_string(),
    })
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// `algo:<hex>` of `data` for a supported algorithm (`sha256`, `sha512`), or `None`.
pub fn digest_with(algo: &str, data: &[u8]) -> Option<String> {
    use sha2::Digest;
    match algo {
        "sha256" => Some(format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))),
        "sha512" => Some(format!("sha512:{}", hex::encode(sha2::Sha512::digest(data)))),
        _ => None,
    }
}

/// Check `data` against an expected `sha256:` or `sha512:` digest. Any other
/// algorithm (or a malformed digest) is refused: content is never accepted
/// unverified. `what` names the blob in the error (a digest, or `manifest`).
pub fn verify_digest(image: &str, what: &str, data: &[u8], expected: &str) -> Result<()> {
    crate::reference::validate_digest(expected).map_err(|reason| ImageError::InvalidManifest {
        image: image.into(),
        what: "descriptor",
        reason,
    })?;
    let algo = expected.split_once(':').map(|(a, _)| a).unwrap_or("");
    let actual = digest_with(algo, data).unwrap_or_default();
    if actual != expected {
        return Err(ImageError::DigestMismatch {
            image: image.into(),
            layer: what.into(),
            expected: expected.into(),
            actual,
        });
    }
    Ok(())
}

/// What a fetched manifest document turned out to be.
#[derive(Debug)]
pub enum ManifestOrIndex {
    /// An image manifest.
    Manifest(Manifest),
    /// An index / manifest list.
    Index(Index),
}

/// Classify a manifest document by its media type (from the document, or the HTTP Content-Type).
pub fn classify(image: &str, data: &[u8], content_type: Option<&str>) -> Result<ManifestOrIndex> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: String,
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
    }
    let probe: Probe = parse_json(image, "manifest", data)?;
    let mt = if probe.media_type.is_empty() { content_type.unwrap_or("").to_string() } else { probe.media_type };
    let mt = mt.split(';').next().unwrap_or("").trim().to_string();
    match mt.as_str() {
        OCI_INDEX | DOCKER_LIST => Ok(ManifestOrIndex::Index(parse_json(image, "index", data)?)),
        OCI_MANIFEST | DOCKER_MANIFEST => Ok(ManifestOrIndex::Manifest(parse_json(image, "manifest", data)?)),
        "" | "application/json" | "application/octet-stream" | "text/plain" => {
            if probe.manifests.is_some() {
                Ok(ManifestOrIndex::Index(parse_json(image, "index", data)?))
            } else if probe.config.is_some() {
                Ok(ManifestOrIndex::Manifest(parse_json(image, "manifest", data)?))
            } else if probe.schema_version == Some(1) {
                Err(ImageError::UnsupportedMediaType {
                    image: image.into(),
                    media_type: "docker schema 1 manifest".into(),
                })
            } else {
                Err(ImageError::InvalidManifest {
                    image: image.into(),
                    what: "manifest",
                    reason: "neither an image manifest nor an index".into(),
                })
            }
        }
        other => Err(ImageError::UnsupportedMediaType { image: image.into(), media_type: other.into() }),
    }
}

/// Pick the manifest for `wanted` from an index; a clear error lists what is available.
pub fn select_platform<'a>(image: &str, index: &'a Index, wanted: &Platform) -> Result<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| matches!(d.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST | OCI_INDEX | DOCKER_LIST | ""))
        .collect();
    if let Some(d) = candidates.iter().find(|d| d.platform.as_ref().is_some_and(|p| p.satisfies(wanted))) {
        return Ok(d);
    }
    // An index without platform information and a single manifest: take it.
    if candidates.len() == 1 && candidates[0].platform.is_none() {
        return Ok(candidates[0]);
    }
    let mut available: Vec<String> =
        candidates.iter().filter_map(|d| d.platform.as_ref()).map(|p| p.to_string()).collect();
    available.retain(|p| p != "unknown/unknown");
    available.sort();
    available.dedup();
    Err(ImageError::PlatformNotFound { image: image.into(), wanted: wanted.to_string(), available })
}

/// Media types of layers we can read.
pub fn layer_media_type_supported(mt: &str) -> bool {
    mt.is_empty()
        || matches!(
            mt,
            "application/vnd.oci.image.layer.v1.tar"
                | "application/vnd.oci.image.layer.v1.tar+gzip"
                | "application/vnd.oci.image.layer.v1.tar+zstd"
                | "application/vnd.docker.image.rootfs.diff.tar.gzip"
                | "application/vnd.docker.image.rootfs.diff.tar"
                | "application/vnd.oci.image.layer.nondistributable.v1.tar"
                | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
                | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
                | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_selection_lists_available() {
        let idx: Index = serde_json::from_str(
            r#"{"manifests":[
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:a","size":1,"platform":{"os":"linux","architecture":"amd64"}},
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:b","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let p = Platform::parse("linux/arm64").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(select_platform("x", &idx, &p).map(|d| d.digest.as_str()).ok(), Some("sha256:b"));
        let p = Platform::parse("linux/s390x").unwrap_or_else(|e| panic!("{e}"));
        let err = select_platform("x", &idx, &p).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("linux/amd64, linux/arm64/v8"), "{err}");
    }

    #[test]
    fn classify_rejects_unknown_media_types() {
        let e = classify("x", br#"{"mediaType":"application/x-foo","config":{}}"#, None);
        assert!(matches!(e, Err(ImageError::UnsupportedMediaType { .. })));
        let e = classify("x", b"not json", None);
        assert!(matches!(e, Err(ImageError::InvalidManifest { .. })));
    }

    #[test]
    fn a_huge_index_gives_a_short_error() {
        let manifests: Vec<String> = (0..10_000)
            .map(|i| format!(r#"{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{i}","size":1,"platform":{{"os":"linux","architecture":"arch{i:05}-{}"}}}}"#, "x".repeat(40)))
            .collect();
        let idx: Index = serde_json::from_str(&format!(r#"{{"manifests":[{}]}}"#, manifests.join(",")))
            .unwrap_or_else(|e| panic!("{e}"));
        let p = Platform::parse("linux/s390x").unwrap_or_else(|e| panic!("{e}"));
        let err = select_platform("x", &idx, &p).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.len() < 1200, "{} bytes: {err}", err.len());
        assert!(err.contains("linux/arch00000-") && err.ends_with("… 9990 more"), "{err}");
    }
}
