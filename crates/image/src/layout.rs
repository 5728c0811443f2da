//! OCI image layout directories (`oci:DIR[:TAG]`).

use crate::error::{ImageError, Result};
use crate::layer::LayerInfo;
use crate::reference::validate_digest;
use crate::spec::{self, Descriptor, ImageConfig, Index, Manifest, ManifestOrIndex, Platform};
use crate::{ImageInfo, ImageSource};
use std::io::Read;
use std::path::{Path, PathBuf};

/// An image in an OCI layout directory.
#[derive(Debug)]
pub struct OciLayout {
    dir: PathBuf,
    info: ImageInfo,
}

/// Path of a blob in a layout, refusing digests that are not `algo:hex`.
pub(crate) fn blob_path(root: &Path, digest: &str) -> std::result::Result<PathBuf, String> {
    validate_digest(digest)?;
    let (algo, hex) = digest.split_once(':').ok_or("bad digest")?;
    Ok(root.join("blobs").join(algo).join(hex))
}

pub(crate) fn read_small(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).map_err(|e| ImageError::io(path, e))?;
    let mut v = Vec::new();
    f.take(limit + 1).read_to_end(&mut v).map_err(|e| ImageError::io(path, e))?;
    if v.len() as u64 > limit {
        return Err(ImageError::Limit { image: path.display().to_string(), what: "document".into(), limit });
    }
    Ok(v)
}

/// Assemble [`ImageInfo`] from a manifest and config.
pub(crate) fn image_info(
    name: &str,
    manifest_digest: String,
    manifest: &Manifest,
    config_bytes: &[u8],
) -> Result<ImageInfo> {
    let config: ImageConfig = spec::parse_json(name, "config", config_bytes)?;
    if manifest.layers.len() > spec::MAX_LAYERS {
        return Err(ImageError::Limit {
            image: name.into(),
            what: "layer count".into(),
            limit: spec::MAX_LAYERS as u64,
        });
    }
    let layers = manifest
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerInfo {
            digest: l.digest.clone(),
            diff_id: config.rootfs.diff_ids.get(i).cloned(),
            media_type: l.media_type.clone(),
            size: Some(l.size),
            digest_is_raw: true,
        })
        .collect();
    let platform =
        Platform { os: config.os.clone(), architecture: config.architecture.clone(), variant: config.variant.clone() };
    Ok(ImageInfo {
        name: name.to_string(),
        manifest_digest,
        config_digest: manifest.config.digest.clone(),
        platform: if config.os.is_empty() { String::new() } else { platform.to_string() },
        layers,
    })
}

impl OciLayout {
    /// Open `dir`, choosing the manifest tagged `tag` (or the only one) and,
    /// for an index, the manifest for `platform`.
    pub fn open(dir: &Path, tag: Option<&str>, platform: &Platform) -> Result<OciLayout> {
        let name = match tag {
            Some(t) => format!("oci:{}:{t}", dir.display()),
            None => format!("oci:{}", dir.display()),
        };
        let index_bytes = read_small(&dir.join("index.json"), spec::MAX_DOCUMENT)?;
        let index: Index = spec::parse_json(&name, "index.json", &index_bytes)?;
        let desc: Descriptor = match tag {
            Some(t) => index
                .manifests
                .iter()
                .find(|d| d.annotations.get("org.opencontainers.image.ref.name").map(String::as_str) == Some(t))
                .cloned()
                .ok_or_else(|| {
                    let tags: Vec<&str> = index
                        .manifests
                        .iter()
                        .filter_map(|d| d.annotations.get("org.opencontainers.image.ref.name").map(String::as_str))
                        .collect();
                    ImageError::NotFound { image: name.clone(), what: format!("tag {t:?} (tags: {})", tags.join(", ")) }
                })?,
            None if index.manifests.len() == 1 => index.manifests[0].clone(),
            None => spec::select_platform(&name, &index, platform)?.clone(),
        };
        let mut desc = desc;
        for _depth in 0..4 {
            let bytes = read_blob_verified(dir, &name, &desc.digest)?;
            match spec::classify(&name, &bytes, Some(&desc.media_type))? {
                ManifestOrIndex::Index(idx) => desc = spec::select_platform(&name, &idx, platform)?.clone(),
                ManifestOrIndex::Manifest(m) => {
                    let config = read_blob_verified(dir, &name, &m.config.digest)?;
                    let info = image_info(&name, desc.digest.clone(), &m, &config)?;
                    return Ok(OciLayout { dir: dir.to_path_buf(), info });
                }
            }
        }
        Err(ImageError::InvalidManifest { image: name, what: "index", reason: "indexes nested too deeply".into() })
    }
}

fn read_blob_verified(dir: &Path, name: &str, digest: &str) -> Result<Vec<u8>> {
    let path = blob_path(dir, digest).map_err(|reason| ImageError::InvalidManifest {
        image: name.into(),
        what: "descriptor",
        reason,
    })?;
    let bytes = read_small(&path, spec::MAX_DOCUMENT)?;
    spec::verify_digest(name, digest, &bytes, digest)?;
    Ok(bytes)
}

impl ImageSource for OciLayout {
    fn info(&self) -> &ImageInfo {
        &self.info
    }

    fn open_layer(&self, idx: usize) -> Result<Box<dyn Read + Send + '_>> {
        let layer = self
            .info
            .layers
            .get(idx)
            .ok_or_else(|| ImageError::NotFound { image: self.info.name.clone(), what: format!("layer {idx}") })?;
        let path = blob_path(&self.dir, &layer.digest).map_err(|reason| ImageError::InvalidManifest {
            image: self.info.name.clone(),
            what: "manifest",
            reason,
        })?;
        let f = std::fs::File::open(&path).map_err(|e| ImageError::io(&path, e))?;
        let md = f.metadata().map_err(|e| ImageError::io(&path, e))?;
        if !md.is_file() {
            return Err(ImageError::BadLayer {
                image: self.info.name.clone(),
                layer: layer.digest.clone(),
                reason: "blob is not a regular file".into(),
            });
        }
        // Never read past the descriptor's size (or the file's, when the descriptor says 0).
        let limit = layer.size.filter(|s| *s != 0).unwrap_or(md.len());
        Ok(Box::new(crate::layer::Bounded { inner: f, left: limit }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    fn put(dir: &Path, bytes: &[u8]) -> String {
        let hex = hex::encode(sha2::Sha256::digest(bytes));
        std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    }

    /// A layout whose only layer blob is whatever `make_layer` puts at its path.
    fn layout(make_layer: impl FnOnce(&Path)) -> (tempfile::TempDir, OciLayout) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("blobs/sha256")).unwrap();
        std::fs::write(d.path().join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let layer = "sha256:".to_string() + &"ab".repeat(32);
        make_layer(&d.path().join("blobs/sha256").join("ab".repeat(32)));
        let config = put(
            d.path(),
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:abababababababababababababababababababababababababababababababab"]}}"#,
        );
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":10}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":1024}}]}}"#
        );
        let m = put(d.path(), manifest.as_bytes());
        std::fs::write(
            d.path().join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{m}","size":{}}}]}}"#,
                manifest.len()
            ),
        )
        .unwrap();
        let l = OciLayout::open(d.path(), None, &Platform::host()).unwrap();
        (d, l)
    }

    #[cfg(unix)]
    #[test]
    fn a_blob_linked_to_a_device_is_refused_and_a_long_one_is_cut_at_its_size() {
        // a "blob" that is a link to /dev/zero would never end
        let (_d, l) = layout(|p| std::os::unix::fs::symlink("/dev/zero", p).unwrap());
        let e = l.open_layer(0).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("not a regular file"), "{e}");
        // a regular blob longer than its descriptor says is read up to the descriptor's size
        let (_d, l) = layout(|p| std::fs::write(p, vec![7u8; 1 << 20]).unwrap());
        let mut n = 0u64;
        let mut r = l.open_layer(0).unwrap();
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k as u64,
            }
        }
        assert_eq!(n, 1024);
    }
}
