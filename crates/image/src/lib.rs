//! Container image access and the streaming layer walker.
//!
//! [`open`] turns a [`Transport`] into something that can be scanned; [`scan`]
//! streams every layer through an [`Analyzer`] (several layers at once, one
//! per core) and folds the results into a [`Merged`] view with whiteouts
//! applied. No layer is unpacked to disk and no layer is held in memory.

mod archive;
pub mod error;
pub mod layer;
mod layout;
pub mod reference;
pub mod registry;
pub mod rootfs;
pub mod spec;
pub mod walk;

pub use archive::DockerArchive;
pub use error::{ImageError, Result};
pub use layer::LayerInfo;
pub use layout::OciLayout;
pub use reference::{RegistryRef, Transport};
pub use registry::{RegistryImage, RegistryOptions};
pub use spec::Platform;
pub use walk::{Analyzer, FileMeta, Found, Merged};

use std::io::Read;
use std::path::PathBuf;

/// What an image is made of.
#[derive(Debug, Clone, Default)]
pub struct ImageInfo {
    /// The name the user gave, with transport.
    pub name: String,
    /// Manifest digest, where there is one.
    pub manifest_digest: String,
    /// Config digest (the image ID).
    pub config_digest: String,
    /// `os/arch[/variant]` from the config.
    pub platform: String,
    /// Layers, bottom first.
    pub layers: Vec<LayerInfo>,
}

/// An image whose layers can be streamed.
pub trait ImageSource: Sync + std::fmt::Debug {
    /// Manifest-level facts.
    fn info(&self) -> &ImageInfo;
    /// The raw (possibly compressed) blob of layer `idx`.
    fn open_layer(&self, idx: usize) -> Result<Box<dyn Read + Send + '_>>;
}

/// Progress reporting for long reads. All methods have empty defaults.
pub trait Progress: Sync {
    /// A scan of `layers` layers totalling `bytes` (0 when unknown) starts.
    fn start(&self, _layers: usize, _bytes: u64) {}
    /// `n` more raw bytes were read.
    fn advance(&self, _n: u64) {}
    /// A layer is done.
    fn layer_done(&self, _idx: usize) {}
}

/// A [`Progress`] that reports nothing.
#[derive(Debug, Clone, Copy)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// Options for [`open`].
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Platform to choose from a multi-arch index.
    pub platform: Platform,
    /// Registry options.
    pub registry: RegistryOptions,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { platform: Platform::host(), registry: RegistryOptions::new() }
    }
}

/// Something [`scan`] can read.
#[derive(Debug)]
pub enum Opened {
    /// A layered image.
    Image(Box<dyn ImageSource>),
    /// A root filesystem.
    Dir(PathBuf),
}

/// Open an image or root filesystem.
pub fn open(transport: &Transport, opts: &OpenOptions) -> Result<Opened> {
    Ok(match transport {
        Transport::Registry(r) => {
            Opened::Image(Box::new(RegistryImage::open(r.clone(), &opts.platform, opts.registry.clone())?))
        }
        Transport::OciLayout { dir, tag } => {
            Opened::Image(Box::new(OciLayout::open(dir, tag.as_deref(), &opts.platform)?))
        }
        Transport::DockerArchive { file } => Opened::Image(Box::new(DockerArchive::open(file)?)),
        Transport::Dir { root } => {
            let md = std::fs::metadata(root).map_err(|e| ImageError::io(root, e))?;
            if !md.is_dir() {
                return Err(ImageError::io(
                    root,
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory"),
                ));
            }
            Opened::Dir(root.clone())
        }
    })
}

/// Stream every layer of `opened` through `analyzer` and merge the results.
///
/// Layers are read concurrently (up to the number of cores) and merged bottom
/// first, so the result is the same as a sequential read.
pub fn scan<A: Analyzer>(opened: &Opened, analyzer: &A, progress: &dyn Progress) -> Result<Merged<A::Output>> {
    match opened {
        Opened::Dir(root) => {
            progress.start(1, 0);
            let r = rootfs::walk_dir(root, analyzer).map_err(|e| ImageError::io(root, e))?;
            let mut m = Merged::default();
            m.apply(0, &root.display().to_string(), r);
            progress.layer_done(0);
            Ok(m)
        }
        Opened::Image(src) => scan_image(src.as_ref(), analyzer, progress),
    }
}

fn scan_image<A: Analyzer>(src: &dyn ImageSource, analyzer: &A, progress: &dyn Progress) -> Result<Merged<A::Output>> {
    let info = src.info();
    let n = info.layers.len();
    progress.start(n, info.layers.iter().filter_map(|l| l.size).sum());
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(n.max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    #[allow(clippy::type_complexity)]
    let slots: Vec<std::sync::Mutex<Option<Result<walk::LayerResult<A::Output>>>>> =
        (0..n).map(|_| std::sync::Mutex::new(None)).collect();
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if failed.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let layer = &info.layers[i];
                let r = src.open_layer(i).and_then(|raw| layer::read_layer(&info.name, layer, raw, analyzer, progress));
                tracing::debug!(layer = %layer.digest, ok = r.is_ok(), "layer read");
                if r.is_err() {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                progress.layer_done(i);
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    });
    let mut merged = Merged::default();
    for (i, slot) in slots.into_iter().enumerate() {
        match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(r)) => merged.apply(i, &info.layers[i].digest, r),
            Some(Err(e)) => return Err(e),
            None => {
                return Err(ImageError::BadLayer {
                    image: info.name.clone(),
                    layer: info.layers[i].digest.clone(),
                    reason: "not read (an earlier layer failed)".into(),
                })
            }
        }
    }
    Ok(merged)
}
