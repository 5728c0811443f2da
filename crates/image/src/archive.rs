//! `docker save` / skopeo docker-archive tarballs (`docker-archive:FILE`).
//!
//! The archive is indexed once (entry name → offset and size) and layers are
//! then read in place. A gzip-compressed archive is first decompressed to a
//! temporary file, since gzip allows no random access; nothing is unpacked.

use crate::error::{ImageError, Result};
use crate::layer::LayerInfo;
use crate::layout::image_info;
use crate::spec::{self, ArchiveManifest, ImageConfig, Manifest};
use crate::walk::normalize_path;
use crate::{ImageInfo, ImageSource};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Most entries indexed in an archive.
const MAX_ENTRIES: usize = 100_000;
/// Largest decompressed copy of a compressed archive, in bytes.
pub const MAX_SPOOL: u64 = 32 << 30;
/// Largest decompressed-to-compressed ratio of a compressed archive (above
/// [`SPOOL_RATIO_FLOOR`]); real image archives compress a few times, bombs a thousand.
pub const MAX_SPOOL_RATIO: u64 = 50;
/// Spool size always allowed, whatever the ratio.
pub const SPOOL_RATIO_FLOOR: u64 = 1 << 30;

#[derive(Debug, Clone)]
enum Item {
    File { offset: u64, size: u64 },
    Link(String),
}

/// An image in a docker-archive file.
#[derive(Debug)]
pub struct DockerArchive {
    file: File,
    index: HashMap<String, Item>,
    info: ImageInfo,
    layer_paths: Vec<String>,
}

/// Decompress `dec` into an anonymous temp file (unlinked as soon as it is
/// created, so nothing is left behind even if the process is killed), at
/// most `limit` bytes.
fn spool(name: &str, dec: &mut dyn Read, limit: u64) -> Result<File> {
    let mut out = tempfile::tempfile().map_err(|e| ImageError::io(std::env::temp_dir(), e))?;
    let copied = std::io::copy(&mut dec.take(limit.saturating_add(1)), &mut out).map_err(|e| {
        ImageError::InvalidManifest { image: name.into(), what: "archive", reason: format!("decompressing: {e}") }
    })?;
    if copied > limit {
        return Err(ImageError::Limit { image: name.into(), what: "decompressed archive".into(), limit });
    }
    out.seek(SeekFrom::Start(0)).map_err(|e| ImageError::io(std::env::temp_dir(), e))?;
    Ok(out)
}

/// The spool limit for a compressed archive of `compressed` bytes.
#[allow(clippy::manual_clamp)] // max-then-min never panics, whatever the constants
fn spool_limit(compressed: u64) -> u64 {
    compressed.saturating_mul(MAX_SPOOL_RATIO).max(SPOOL_RATIO_FLOOR).min(MAX_SPOOL)
}

impl DockerArchive {
    /// Open the archive and read the first image's manifest and config.
    pub fn open(path: &Path) -> Result<DockerArchive> {
        let name = format!("docker-archive:{}", path.display());
        let mut file = File::open(path).map_err(|e| ImageError::io(path, e))?;
        let mut head = [0u8; 4];
        let n = file.read(&mut head).map_err(|e| ImageError::io(path, e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| ImageError::io(path, e))?;
        if crate::layer::sniff(&head[..n]) != crate::layer::Compression::None {
            let compressed = file.metadata().map_err(|e| ImageError::io(path, e))?.len();
            let mut dec: Box<dyn Read> =
                match crate::layer::sniff(&head[..n]) {
                    crate::layer::Compression::Zstd => {
                        Box::new(zstd::stream::read::Decoder::new(&mut file).map_err(|e| {
                            ImageError::InvalidManifest { image: name.clone(), what: "archive", reason: e.to_string() }
                        })?)
                    }
                    _ => Box::new(flate2::read::MultiGzDecoder::new(&mut file)),
                };
            let out = spool(&name, &mut dec, spool_limit(compressed))?;
            drop(dec);
            file = out;
        }
        let index = index_tar(&name, &mut file)?;
        let mut a = DockerArchive { file, index, info: ImageInfo::default(), layer_paths: Vec::new() };
        let manifest_bytes = a.read_member(&name, "manifest.json", spec::MAX_DOCUMENT)?;
        let manifests: Vec<ArchiveManifest> = spec::parse_json(&name, "manifest.json", &manifest_bytes)?;
        let m = manifests.into_iter().next().ok_or_else(|| ImageError::InvalidManifest {
            image: name.clone(),
            what: "manifest.json",
            reason: "no images in the archive".into(),
        })?;
        if m.layers.len() > spec::MAX_LAYERS {
            return Err(ImageError::Limit { image: name, what: "layer count".into(), limit: spec::MAX_LAYERS as u64 });
        }
        let config_bytes = a.read_member(&name, &m.config, spec::MAX_DOCUMENT)?;
        let config: ImageConfig = spec::parse_json(&name, "config", &config_bytes)?;
        let config_digest = spec::sha256_digest(&config_bytes);
        let pseudo = Manifest {
            media_type: String::new(),
            config: spec::Descriptor {
                media_type: String::new(),
                digest: config_digest,
                size: config_bytes.len() as u64,
                platform: None,
                annotations: Default::default(),
            },
            layers: Vec::new(),
        };
        let mut info = image_info(&name, String::new(), &pseudo, &config_bytes)?;
        info.layers = m
            .layers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let diff_id = config.rootfs.diff_ids.get(i).cloned();
                LayerInfo {
                    digest: diff_id.clone().unwrap_or_else(|| p.clone()),
                    diff_id,
                    media_type: String::new(),
                    size: None,
                    digest_is_raw: false,
                }
            })
            .collect();
        if config.rootfs.diff_ids.len() != m.layers.len() {
            return Err(ImageError::InvalidManifest {
                image: name,
                what: "config",
                reason: format!(
                    "{} layers in manifest.json but {} diff_ids in the config",
                    m.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            });
        }
        a.info = info;
        a.layer_paths = m.layers;
        Ok(a)
    }

    fn locate(&self, image: &str, member: &str) -> Result<(u64, u64)> {
        let mut path = normalize_path(member);
        for _ in 0..16 {
            match self.index.get(&path) {
                Some(Item::File { offset, size }) => return Ok((*offset, *size)),
                Some(Item::Link(t)) => {
                    let base = path.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
                    path = if t.starts_with('/') { normalize_path(t) } else { normalize_path(&format!("{base}/{t}")) };
                }
                None => break,
            }
        }
        Err(ImageError::NotFound { image: image.into(), what: format!("archive member {member:?}") })
    }

    fn read_member(&mut self, image: &str, member: &str, limit: u64) -> Result<Vec<u8>> {
        let (offset, size) = self.locate(image, member)?;
        if size > limit {
            return Err(ImageError::Limit { image: image.into(), what: member.into(), limit });
        }
        let mut buf = vec![0u8; size as usize];
        let f = &mut self.file;
        f.seek(SeekFrom::Start(offset)).and_then(|_| f.read_exact(&mut buf)).map_err(|e| {
            ImageError::InvalidManifest {
                image: image.into(),
                what: "archive",
                reason: format!("reading {member}: {e}"),
            }
        })?;
        Ok(buf)
    }
}

fn index_tar(name: &str, file: &mut File) -> Result<HashMap<String, Item>> {
    let bad =
        |e: std::io::Error| ImageError::InvalidManifest { image: name.into(), what: "archive", reason: e.to_string() };
    let mut index = HashMap::new();
    let len = file.metadata().map_err(bad)?.len();
    let mut ar = tar::Archive::new(&mut *file);
    for entry in ar.entries_with_seek().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        if index.len() >= MAX_ENTRIES {
            return Err(ImageError::Limit {
                image: name.into(),
                what: "archive entries".into(),
                limit: MAX_ENTRIES as u64,
            });
        }
        let path = normalize_path(&String::from_utf8_lossy(&entry.path_bytes()));
        let t = entry.header().entry_type();
        if entry.raw_file_position().saturating_add(entry.size()) > len {
            // Seeking past the end does not fail; say what is missing instead of "not found" later.
            return Err(ImageError::InvalidManifest {
                image: name.into(),
                what: "archive",
                reason: format!(
                    "truncated: member {path:?} needs {} bytes at offset {}, the file has {len}",
                    entry.size(),
                    entry.raw_file_position()
                ),
            });
        }
        if t.is_file() {
            index.insert(path, Item::File { offset: entry.raw_file_position(), size: entry.size() });
        } else if t.is_symlink() || t.is_hard_link() {
            let target = entry.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            let target = if t.is_hard_link() { normalize_path(&target) } else { target };
            index.insert(path, Item::Link(target));
        }
    }
    file.seek(SeekFrom::Start(0)).map_err(bad)?;
    Ok(index)
}

impl ImageSource for DockerArchive {
    fn info(&self) -> &ImageInfo {
        &self.info
    }

    fn open_layer(&self, idx: usize) -> Result<Box<dyn Read + Send + '_>> {
        let name = &self.info.name;
        let member = self
            .layer_paths
            .get(idx)
            .ok_or_else(|| ImageError::NotFound { image: name.clone(), what: format!("layer {idx}") })?;
        let (offset, size) = self.locate(name, member)?;
        Ok(Box::new(At { file: &self.file, pos: offset, end: offset.saturating_add(size) }))
    }
}

/// A reader over a byte range of a shared file using positional reads, so
/// several layers can be read at once from one descriptor.
struct At<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let left = self.end.saturating_sub(self.pos);
        if left == 0 {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(left) as usize;
        let got = self.file.read_at(&mut buf[..n], self.pos)?;
        if got == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "archive member truncated"));
        }
        self.pos += got as u64;
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_of(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, &data[..]).unwrap_or_else(|e| panic!("{e}"));
        }
        b.into_inner().unwrap_or_else(|e| panic!("{e}"))
    }

    /// A docker-archive whose one layer is `layer`, with `diff_id` in the config.
    fn archive(layer: &[u8], diff_id: &str) -> Vec<u8> {
        let config =
            format!(r#"{{"os":"linux","architecture":"amd64","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#);
        let manifest = r#"[{"Config":"config.json","RepoTags":["x:1"],"Layers":["l/layer.tar"]}]"#;
        // Like `docker save`: layers first, manifest.json last.
        tar_of(&[
            ("l/layer.tar", layer.to_vec()),
            ("config.json", config.into_bytes()),
            ("manifest.json", manifest.as_bytes().to_vec()),
        ])
    }

    fn layer() -> Vec<u8> {
        tar_of(&[("etc/hostname", b"box".to_vec())])
    }

    #[test]
    fn truncated_plain_archive_says_truncated() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let l = layer();
        let full = archive(&l, &spec::sha256_digest(&l));
        let p = dir.path().join("a.tar");
        std::fs::write(&p, &full).unwrap_or_else(|e| panic!("{e}"));
        assert!(DockerArchive::open(&p).is_ok());
        // Cut inside the layer member (at a block boundary, so tar itself sees no error).
        std::fs::write(&p, &full[..1024]).unwrap_or_else(|e| panic!("{e}"));
        let msg = DockerArchive::open(&p).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("truncated") && msg.contains("l/layer.tar"), "{msg}");
    }

    #[test]
    fn md5_diff_ids_are_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let l = layer();
        let p = dir.path().join("a.tar");
        std::fs::write(&p, archive(&l, &format!("md5:{}", "0".repeat(32)))).unwrap_or_else(|e| panic!("{e}"));
        let a = DockerArchive::open(&p).unwrap_or_else(|e| panic!("{e}"));
        let info = a.info().layers[0].clone();
        let raw = a.open_layer(0).unwrap_or_else(|e| panic!("{e}"));
        struct None_;
        impl crate::Analyzer for None_ {
            type Output = ();
            fn wants(&self, _: &crate::FileMeta<'_>) -> bool {
                false
            }
            fn analyze(&self, _: &crate::FileMeta<'_>, _: &mut dyn Read) -> std::io::Result<Option<()>> {
                Ok(None)
            }
        }
        let e = crate::layer::read_layer("a", &info, raw, &None_, &crate::NoProgress);
        let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("unsupported digest algorithm"), "{msg}");
    }

    #[test]
    fn spool_is_capped_and_unlinked() {
        let zeros = vec![0u8; 1 << 20];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&zeros).unwrap_or_else(|e| panic!("{e}"));
        let gz = gz.finish().unwrap_or_else(|e| panic!("{e}"));
        // 1 MiB from about 1 KiB: over a 64 KiB cap, refused before it is all written.
        let mut dec = flate2::read::MultiGzDecoder::new(&gz[..]);
        let e = spool("x", &mut dec, 64 << 10);
        assert!(matches!(e, Err(ImageError::Limit { .. })), "{e:?}");
        // Within the cap: a file with no name in the temp directory.
        let mut dec = flate2::read::MultiGzDecoder::new(&gz[..]);
        let f = spool("x", &mut dec, 2 << 20).unwrap_or_else(|e| panic!("{e}"));
        use std::os::fd::AsRawFd;
        let link = std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())).unwrap_or_else(|e| panic!("{e}"));
        assert!(link.to_string_lossy().ends_with("(deleted)"), "{}", link.display());
        assert_eq!(f.metadata().map(|m| m.len()).ok(), Some(1 << 20));
        // The ratio: a 1 MB gzip may not grow past 50 MB (but small ones get the floor).
        assert_eq!(spool_limit(1 << 20), SPOOL_RATIO_FLOOR);
        assert_eq!(spool_limit(100 << 20), 5000 << 20);
        assert_eq!(spool_limit(10 << 30), MAX_SPOOL);
    }
}
