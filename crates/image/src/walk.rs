//! The streaming layer walker and the merged view of an image's files.
//!
//! A layer is read once, as a stream: each tar entry is normalised to an
//! absolute path inside the image root (no entry can name a path outside it),
//! whiteouts are recorded, and the entries an [`Analyzer`] wants are handed to
//! it one at a time with a reader bounded by the entry's size. Nothing is
//! written to disk and only the analyzers' results are kept, so memory does not
//! grow with the size or the number of files of a layer (beyond the symlink
//! table, which is capped).
//!
//! [`Merged::apply`] then folds the per-layer results bottom-up: whiteouts and
//! opaque directories delete what lower layers put there, and a path written
//! again in an upper layer replaces the lower result.

use std::collections::BTreeMap;
use std::io::Read;

/// Most symlinks and hard links remembered per image.
pub const MAX_LINKS: usize = 1_000_000;
/// Most symlink hops followed when resolving a path.
pub const MAX_HOPS: usize = 40;

/// What a tar entry or directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Hard link.
    Hardlink,
    /// Anything else (devices, fifos).
    Other,
}

/// Metadata of a file offered to an analyzer.
#[derive(Debug, Clone, Copy)]
pub struct FileMeta<'a> {
    /// Absolute, normalised path inside the image.
    pub path: &'a str,
    /// Size in bytes (as the tar header or the filesystem says).
    pub size: u64,
    /// Unix permission bits.
    pub mode: u32,
}

impl FileMeta<'_> {
    /// Whether any execute bit is set.
    pub fn is_executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

/// Something that looks at files of an image.
///
/// `wants` is called for every regular file and must be cheap (it sees a
/// million paths in a large image); `analyze` is called for the wanted ones.
pub trait Analyzer: Sync {
    /// The result kept for one file.
    type Output: Send;
    /// Whether the content of this file is needed.
    fn wants(&self, meta: &FileMeta<'_>) -> bool;
    /// Look at the content. The reader yields at most `meta.size` bytes.
    /// An I/O error (a truncated layer) aborts the layer; format problems
    /// belong in `Self::Output`.
    fn analyze(&self, meta: &FileMeta<'_>, content: &mut dyn Read) -> std::io::Result<Option<Self::Output>>;
}

/// Normalise a tar or filesystem path to `/a/b`, resolving `.` and `..`
/// lexically and never above the root.
pub fn normalize_path(raw: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut s = String::with_capacity(raw.len() + 1);
    for p in &parts {
        s.push('/');
        s.push_str(p);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// What one layer contributed.
#[derive(Debug)]
pub struct LayerResult<T> {
    /// Analyzer results by path, in archive order.
    pub files: Vec<(String, T)>,
    /// Paths written by this layer whose lower versions must go (wanted files, links).
    pub written: Vec<String>,
    /// Symlinks and hard links: path → target as stored.
    pub links: Vec<(String, Link)>,
    /// Paths deleted by `.wh.NAME` entries (the path and everything under it).
    pub whiteouts: Vec<String>,
    /// Directories made opaque by `.wh..wh..opq` (everything under them from lower layers goes).
    pub opaque: Vec<String>,
    /// Number of entries read.
    pub entries: u64,
    /// Problems that did not stop the layer.
    pub warnings: Vec<String>,
}

impl<T> Default for LayerResult<T> {
    fn default() -> Self {
        LayerResult {
            files: Vec::new(),
            written: Vec::new(),
            links: Vec::new(),
            whiteouts: Vec::new(),
            opaque: Vec::new(),
            entries: 0,
            warnings: Vec::new(),
        }
    }
}

/// A link target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// A symlink's target as written (relative to the link's directory, or absolute).
    Symlink(String),
    /// A hard link's target: an absolute path in the image.
    Hard(String),
}

/// Read one uncompressed layer tar stream.
pub fn walk_layer<R: Read, A: Analyzer>(tar: R, analyzer: &A) -> std::io::Result<LayerResult<A::Output>> {
    let mut out = LayerResult::default();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        out.entries += 1;
        let raw_path = entry.path_bytes();
        let path = normalize_path(&String::from_utf8_lossy(&raw_path));
        if path == "/" {
            continue;
        }
        let (dir, name) = match path.rfind('/') {
            Some(i) => (parent_of(&path).to_string(), &path[i + 1..]),
            None => ("/".to_string(), path.as_str()),
        };
        if name == ".wh..wh..opq" {
            out.opaque.push(dir);
            continue;
        }
        if let Some(victim) = name.strip_prefix(".wh.") {
            if !victim.is_empty() && !victim.starts_with(".wh.") {
                out.whiteouts.push(join(&dir, victim));
            }
            continue;
        }
        let header = entry.header();
        let etype = header.entry_type();
        let mode = header.mode().unwrap_or(0o644);
        if etype.is_file() || etype.is_contiguous() {
            let size = entry.size();
            let meta = FileMeta { path: &path, size, mode };
            if analyzer.wants(&meta) {
                out.written.push(path.clone());
                let mut limited = (&mut entry).take(size);
                if let Some(v) = analyzer.analyze(&meta, &mut limited)? {
                    out.files.push((path.clone(), v));
                }
            }
        } else if etype.is_symlink() || etype.is_hard_link() {
            let target = entry.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            let link = if etype.is_symlink() { Link::Symlink(target) } else { Link::Hard(normalize_path(&target)) };
            out.written.push(path.clone());
            out.links.push((path, link));
        }
    }
    Ok(out)
}

/// A result with the index of the layer that produced it.
#[derive(Debug, Clone)]
pub struct Found<T> {
    /// Index of the layer (0 = bottom).
    pub layer: usize,
    /// The analyzer's result.
    pub value: T,
}

/// The image's files after all layers are applied.
#[derive(Debug)]
pub struct Merged<T> {
    /// Analyzer results by absolute path.
    pub files: BTreeMap<String, Found<T>>,
    /// Links by absolute path.
    pub links: BTreeMap<String, Link>,
    /// Entries read over all layers.
    pub entries: u64,
    /// Problems that did not stop the scan (`(layer or path, message)`).
    pub warnings: Vec<(String, String)>,
}

impl<T> Default for Merged<T> {
    fn default() -> Self {
        Merged { files: BTreeMap::new(), links: BTreeMap::new(), entries: 0, warnings: Vec::new() }
    }
}

fn remove_subtree<V>(map: &mut BTreeMap<String, V>, path: &str, include_self: bool) {
    if include_self {
        map.remove(path);
    }
    let prefix = if path == "/" { "/".to_string() } else { format!("{path}/") };
    let doomed: Vec<String> =
        map.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)).map(|(k, _)| k.clone()).collect();
    for k in doomed {
        map.remove(&k);
    }
}

impl<T> Merged<T> {
    /// Apply one layer on top of what is there. Layers must be applied bottom first.
    pub fn apply(&mut self, layer: usize, name: &str, result: LayerResult<T>) {
        self.entries += result.entries;
        for w in result.warnings {
            self.warnings.push((name.to_string(), w));
        }
        for p in &result.whiteouts {
            remove_subtree(&mut self.files, p, true);
            remove_subtree(&mut self.links, p, true);
        }
        for d in &result.opaque {
            remove_subtree(&mut self.files, d, false);
            remove_subtree(&mut self.links, d, false);
        }
        for p in &result.written {
            self.files.remove(p);
            self.links.remove(p);
        }
        for (p, l) in result.links {
            if self.links.len() >= MAX_LINKS {
                self.warnings.push((name.to_string(), format!("more than {MAX_LINKS} links; the rest are ignored")));
                break;
            }
            self.links.insert(p, l);
        }
        for (p, v) in result.files {
            self.files.insert(p, Found { layer, value: v });
        }
    }

    /// Resolve symlinks in `path` inside the image root (never above it).
    /// Returns the path of the file it finally names.
    pub fn resolve(&self, path: &str) -> String {
        let mut current = normalize_path(path);
        for _ in 0..MAX_HOPS {
            // Find the first component prefix that is a link.
            let mut replaced = None;
            let mut prefix_end = 0;
            let bytes = current.as_bytes();
            while prefix_end < bytes.len() {
                let next = current[prefix_end + 1..].find('/').map(|i| prefix_end + 1 + i).unwrap_or(bytes.len());
                let prefix = &current[..next];
                if let Some(link) = self.links.get(prefix) {
                    let rest = &current[next..];
                    let target = match link {
                        Link::Symlink(t) if t.starts_with('/') => t.clone(),
                        Link::Symlink(t) => format!("{}/{}", parent_of(prefix), t),
                        Link::Hard(t) => t.clone(),
                    };
                    replaced = Some(normalize_path(&format!("{target}{rest}")));
                    break;
                }
                prefix_end = next;
            }
            match replaced {
                Some(p) => current = p,
                None => return current,
            }
        }
        current
    }

    /// The result for `path`, following symlinks.
    pub fn get(&self, path: &str) -> Option<&Found<T>> {
        self.files.get(path).or_else(|| self.files.get(&self.resolve(path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Keep;
    impl Analyzer for Keep {
        type Output = String;
        fn wants(&self, m: &FileMeta<'_>) -> bool {
            m.path.ends_with(".txt")
        }
        fn analyze(&self, _m: &FileMeta<'_>, r: &mut dyn Read) -> std::io::Result<Option<String>> {
            let mut s = String::new();
            r.read_to_string(&mut s)?;
            Ok(Some(s))
        }
    }

    enum E<'a> {
        F(&'a str, &'a str),
        L(&'a str, &'a str),
        D(&'a str),
    }

    fn layer(entries: &[E<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            match e {
                E::F(p, c) => {
                    h.set_size(c.len() as u64);
                    h.set_mode(0o644);
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_cksum();
                    b.append_data(&mut h, p, c.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
                }
                E::L(p, t) => {
                    h.set_size(0);
                    h.set_entry_type(tar::EntryType::Symlink);
                    b.append_link(&mut h, p, t).unwrap_or_else(|e| panic!("{e}"));
                }
                E::D(p) => {
                    h.set_size(0);
                    h.set_mode(0o755);
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_cksum();
                    b.append_data(&mut h, p, &[][..]).unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
        b.into_inner().unwrap_or_else(|e| panic!("{e}"))
    }

    fn merged(layers: &[Vec<u8>]) -> Merged<String> {
        let mut m = Merged::default();
        for (i, l) in layers.iter().enumerate() {
            let r = walk_layer(&l[..], &Keep).unwrap_or_else(|e| panic!("{e}"));
            m.apply(i, "l", r);
        }
        m
    }

    #[test]
    fn normalizes_hostile_paths() {
        assert_eq!(normalize_path("../../etc/passwd"), "/etc/passwd");
        assert_eq!(normalize_path("./a/./b/../c"), "/a/c");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("a//b/"), "/a/b");
    }

    #[test]
    fn whiteouts_and_opaque_dirs_apply_in_order() {
        let l0 = layer(&[E::F("a/x.txt", "x"), E::F("a/y.txt", "y"), E::F("b/z.txt", "z"), E::F("c/k.txt", "k")]);
        let l1 = layer(&[
            E::F("a/.wh.x.txt", ""),
            E::F("b/.wh..wh..opq", ""),
            E::F("b/new.txt", "n"),
            E::F("c/k.txt", "k2"),
        ]);
        let m = merged(&[l0, l1]);
        let keys: Vec<&str> = m.files.keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["/a/y.txt", "/b/new.txt", "/c/k.txt"]);
        assert_eq!(m.files["/c/k.txt"].value, "k2");
        assert_eq!(m.files["/c/k.txt"].layer, 1);
        assert_eq!(m.files["/a/y.txt"].layer, 0);
    }

    #[test]
    fn whiteout_of_a_directory_removes_its_subtree() {
        let l0 = layer(&[E::D("pkg"), E::F("pkg/meta/x.txt", "x"), E::F("pkgs/y.txt", "y")]);
        let l1 = layer(&[E::F(".wh.pkg", "")]);
        let m = merged(&[l0, l1]);
        let keys: Vec<&str> = m.files.keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["/pkgs/y.txt"]);
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let l0 = layer(&[
            E::F("usr/lib/os.txt", "debian"),
            E::L("etc/os.txt", "../usr/lib/os.txt"),
            E::L("evil.txt", "../../../../../usr/lib/os.txt"),
            E::L("loop1", "loop2"),
            E::L("loop2", "loop1"),
            E::L("lib", "usr/lib"),
        ]);
        let m = merged(&[l0]);
        assert_eq!(m.get("/etc/os.txt").map(|f| f.value.as_str()), Some("debian"));
        assert_eq!(m.get("/evil.txt").map(|f| f.value.as_str()), Some("debian"));
        assert_eq!(m.get("/lib/os.txt").map(|f| f.value.as_str()), Some("debian"));
        assert!(m.get("/loop1/x").is_none());
    }

    #[test]
    fn truncated_layers_are_errors_not_panics() {
        let l0 = layer(&[E::F("a/x.txt", &"x".repeat(5000)), E::F("b.txt", "y")]);
        for cut in (0..l0.len()).step_by(97) {
            let _ = walk_layer(&l0[..cut], &Keep);
        }
        assert!(walk_layer(&l0[..1000], &Keep).is_err());
    }
}
