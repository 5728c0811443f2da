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
    _spool: Option<tempfile_like::Spool>,
}

mod tempfile_like {
    //! A decompressed copy of a gzip archive in the temp directory, removed on drop.
    use std::path::PathBuf;

    #[derive(Debug)]
    pub struct Spool(pub PathBuf);

    impl Drop for Spool {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

impl DockerArchive {
    /// Open the archive and read the first image's manifest and config.
    pub fn open(path: &Path) -> Result<DockerArchive> {
        let name = format!("docker-archive:{}", path.display());
        let mut file = File::open(path).map_err(|e| ImageError::io(path, e))?;
        let mut head = [0u8; 4];
        let n = file.read(&mut head).map_err(|e| ImageError::io(path, e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| ImageError::io(path, e))?;
        let mut spool = None;
        if crate::layer::sniff(&head[..n]) != crate::layer::Compression::None {
            let tmp = std::env::temp_dir().join(format!(
                "palisade-archive-{}-{}.tar",
                std::process::id(),
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
            ));
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .read(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| ImageError::io(&tmp, e))?;
            spool = Some(tempfile_like::Spool(tmp.clone()));
            {
                let mut dec: Box<dyn Read> = match crate::layer::sniff(&head[..n]) {
                    crate::layer::Compression::Zstd => {
                        Box::new(zstd::stream::read::Decoder::new(&mut file).map_err(|e| {
                            ImageError::InvalidManifest { image: name.clone(), what: "archive", reason: e.to_string() }
                        })?)
                    }
                    _ => Box::new(flate2::read::MultiGzDecoder::new(&mut file)),
                };
                std::io::copy(&mut dec, &mut out).map_err(|e| ImageError::InvalidManifest {
                    image: name.clone(),
                    what: "archive",
                    reason: format!("decompressing: {e}"),
                })?;
            }
            out.seek(SeekFrom::Start(0)).map_err(|e| ImageError::io(&tmp, e))?;
            file = out;
        }
        let index = index_tar(&name, &mut file)?;
        let mut a = DockerArchive { file, index, info: ImageInfo::default(), layer_paths: Vec::new(), _spool: spool };
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
