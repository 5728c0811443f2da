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
    /// Paths of wanted files written by this layer, whose lower versions must go
    /// (links replace lower versions through `links`).
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

/// Largest GNU long name, long link name or PAX extended header (per
/// member) that is read. A larger one is never buffered: its bytes are
/// streamed past and the entry it describes is skipped with a warning.
pub const MAX_EXTENSION_HEADER: u64 = 64 << 10;

const BLOCK: u64 = 512;

/// An extension header that [`TarGuard`] neutralised, by header offset.
#[derive(Debug)]
struct Neutered {
    header_pos: u64,
    what: &'static str,
    size: u64,
}

/// A reader between the layer stream and the `tar` crate that follows the
/// tar block structure exactly as `tar` reads it (headers, PAX `size`
/// overrides, GNU sparse extension blocks) and rewrites the type flag of GNU
/// long-name/long-link and PAX headers larger than [`MAX_EXTENSION_HEADER`]
/// to an inert type, so `tar` skips their data as a stream instead of
/// buffering it whole. The walker then skips the entry they described.
struct TarGuard<R> {
    inner: R,
    /// Bytes handed out so far.
    pos: u64,
    /// Offset of the next header block.
    next_header: u64,
    /// The current header block and how much of it was handed out.
    block: [u8; 512],
    block_len: usize,
    block_out: usize,
    /// Sparse extension blocks still to come after the current header.
    sparse_ext: bool,
    /// Data size of the member whose sparse extension blocks are being read.
    sparse_size: u64,
    /// Capture of a PAX header's data (bounded), to mirror `tar`'s `size` override.
    capture: Option<Vec<u8>>,
    capture_end: u64,
    pax: Option<Vec<u8>>,
    /// After the end-of-archive block everything passes through.
    done: bool,
    notes: std::rc::Rc<std::cell::RefCell<Vec<Neutered>>>,
}

/// Marker type flag given to neutralised extension headers.
const NEUTERED: u8 = b'N';

fn octal_or_binary(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = 0;
        for (i, b) in field.iter().enumerate() {
            let b = if i == 0 { b & 0x7f } else { *b };
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let s: Vec<u8> = field.iter().copied().skip_while(|b| *b == b' ').take_while(|b| *b != 0 && *b != b' ').collect();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(std::str::from_utf8(&s).ok()?, 8).ok()
}

fn padded(size: u64) -> Option<u64> {
    size.checked_add(BLOCK - 1).map(|s| s & !(BLOCK - 1))
}

fn header_checksum_ok(b: &[u8; 512]) -> bool {
    let sum: u32 = b[..148].iter().chain(&b[156..]).map(|x| u32::from(*x)).sum::<u32>() + 8 * 32;
    octal_or_binary(&b[148..156]).is_some_and(|c| c == u64::from(sum))
}

fn set_checksum(b: &mut [u8; 512]) {
    b[148..156].fill(b' ');
    let sum: u32 = b.iter().map(|x| u32::from(*x)).sum();
    let field = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(field.as_bytes());
}

fn pax_size(data: &[u8]) -> Option<u64> {
    for ext in tar::PaxExtensions::new(data) {
        let ext = ext.ok()?;
        if ext.key() != Ok("size") {
            continue;
        }
        return ext.value().ok()?.parse::<u64>().ok();
    }
    None
}

impl<R: Read> TarGuard<R> {
    fn new(inner: R, notes: std::rc::Rc<std::cell::RefCell<Vec<Neutered>>>) -> Self {
        TarGuard {
            inner,
            pos: 0,
            next_header: 0,
            block: [0; 512],
            block_len: 0,
            block_out: 0,
            sparse_ext: false,
            sparse_size: 0,
            capture: None,
            capture_end: 0,
            pax: None,
            done: false,
            notes,
        }
    }

    /// Look at a complete header (or sparse extension) block at `self.pos`.
    fn on_block(&mut self) {
        let header_pos = self.pos;
        let b = &mut self.block;
        if self.sparse_ext {
            // GNU sparse extension block: `isextended` at offset 504.
            self.sparse_ext = b[504] == 1;
            self.next_header = header_pos + BLOCK;
            if !self.sparse_ext {
                match padded(self.sparse_size) {
                    Some(p) => self.next_header += p,
                    None => self.done = true,
                }
            }
            return;
        }
        if b.iter().all(|x| *x == 0) || !header_checksum_ok(b) {
            // End of archive (tar stops here) or a corrupt header (tar fails here).
            self.done = true;
            return;
        }
        let magic = &b[257..265];
        let gnu = magic == b"ustar  \0";
        let recognized = gnu || magic == b"ustar\x0000";
        let typeflag = b[156];
        let extension = recognized && matches!(typeflag, b'L' | b'K' | b'x');
        let Some(mut size) = octal_or_binary(&b[124..136]) else {
            self.done = true;
            return;
        };
        if extension {
            if size > MAX_EXTENSION_HEADER {
                let what = match typeflag {
                    b'L' => "GNU long name",
                    b'K' => "GNU long link name",
                    _ => "PAX extended header",
                };
                b[156] = NEUTERED;
                set_checksum(b);
                self.notes.borrow_mut().push(Neutered { header_pos, what, size });
                // tar now takes this for a member: a pending PAX `size` applies to it, not to the next one.
                if let Some(p) = self.pax.take().and_then(|d| pax_size(&d)) {
                    size = p;
                }
            } else if typeflag == b'x' {
                self.capture = Some(Vec::with_capacity(size as usize));
                self.capture_end = header_pos + BLOCK + size;
            }
        } else {
            if let Some(p) = self.pax.take().and_then(|d| pax_size(&d)) {
                size = p;
            }
            if typeflag == b'S' && gnu && b[482] == 1 {
                self.sparse_ext = true;
                self.sparse_size = size;
                self.next_header = header_pos + BLOCK;
                return;
            }
        }
        match padded(size).and_then(|p| (header_pos + BLOCK).checked_add(p)) {
            Some(n) => self.next_header = n,
            None => self.done = true,
        }
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.done {
            let n = self.inner.read(buf)?;
            self.pos += n as u64;
            return Ok(n);
        }
        if self.block_out < self.block_len {
            // Hand out the rest of the current header block.
            let n = (self.block_len - self.block_out).min(buf.len());
            buf[..n].copy_from_slice(&self.block[self.block_out..self.block_out + n]);
            self.block_out += n;
            self.pos += n as u64;
            return Ok(n);
        }
        if self.pos == self.next_header {
            // Read a whole block before tar sees any of it.
            self.block_len = 0;
            self.block_out = 0;
            while self.block_len < 512 {
                let n = self.inner.read(&mut self.block[self.block_len..])?;
                if n == 0 {
                    break;
                }
                self.block_len += n;
            }
            if self.block_len == 0 {
                return Ok(0);
            }
            if self.block_len == 512 {
                if let Some(c) = self.capture.take() {
                    self.pax = Some(c);
                }
                self.on_block();
            } else {
                self.done = true;
            }
            return self.read(buf);
        }
        // Member data (or padding) up to the next header.
        let want = (self.next_header.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        if let Some(c) = self.capture.as_mut() {
            let keep = (self.capture_end.saturating_sub(self.pos)).min(n as u64) as usize;
            c.extend_from_slice(&buf[..keep]);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Read one uncompressed layer tar stream.
///
/// GNU long names and PAX headers over [`MAX_EXTENSION_HEADER`] are not
/// buffered: the entry they describe is skipped with a warning and the walk
/// goes on. At most [`MAX_LINKS`] links are recorded per layer (the rest are
/// ignored with one warning), so a layer of millions of links stays small.
pub fn walk_layer<R: Read, A: Analyzer>(tar: R, analyzer: &A) -> std::io::Result<LayerResult<A::Output>> {
    walk_layer_limited(tar, analyzer, MAX_LINKS)
}

fn walk_layer_limited<R: Read, A: Analyzer>(
    tar: R,
    analyzer: &A,
    max_links: usize,
) -> std::io::Result<LayerResult<A::Output>> {
    let mut out = LayerResult::default();
    let notes = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut archive = tar::Archive::new(TarGuard::new(tar, notes.clone()));
    let mut skip_next: Option<String> = None;
    let mut links_full = false;
    for entry in archive.entries()? {
        let mut entry = entry?;
        out.entries += 1;
        {
            let pos = entry.raw_header_position();
            let mut notes = notes.borrow_mut();
            if let Some(i) = notes.iter().position(|n| n.header_pos == pos) {
                let n = notes.swap_remove(i);
                skip_next =
                    Some(format!("{} of {} bytes exceeds the {MAX_EXTENSION_HEADER}-byte limit", n.what, n.size));
                continue;
            }
        }
        if let Some(why) = skip_next.take() {
            let shown: String = String::from_utf8_lossy(&entry.header().path_bytes()).chars().take(200).collect();
            out.warnings.push(format!("entry at offset {} ({shown:?}) skipped: {why}", entry.raw_header_position()));
            continue;
        }
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
            if out.links.len() >= max_links {
                if !links_full {
                    links_full = true;
                    out.warnings.push(format!("more than {max_links} links in this layer; the rest are ignored"));
                }
                continue;
            }
            let target = entry.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            let link = if etype.is_symlink() { Link::Symlink(target) } else { Link::Hard(normalize_path(&target)) };
            // (A link replaces what lower layers had at its path when it is applied.)
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
            self.files.remove(&p);
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

    /// Peak resident memory growth (bytes) of this process while `f` runs
    /// (the kernel's high-water mark, reset first through `clear_refs`).
    fn peak_rss_growth<T>(f: impl FnOnce() -> T) -> (T, u64) {
        fn kib(key: &str) -> u64 {
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                })
                .unwrap_or(0)
        }
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let before = kib("VmRSS:");
        let r = f();
        (r, kib("VmHWM:").saturating_sub(before) * 1024)
    }

    /// A raw tar header block (GNU or ustar magic) with a checksum.
    fn raw_header(name: &str, typeflag: u8, size: u64, gnu: bool) -> Vec<u8> {
        let mut h = if gnu { tar::Header::new_gnu() } else { tar::Header::new_ustar() };
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_mode(0o644);
        h.set_size(size);
        h.set_entry_type(tar::EntryType::new(typeflag));
        h.set_cksum();
        h.as_bytes().to_vec()
    }

    fn file_block(name: &str, content: &[u8]) -> Vec<u8> {
        let mut v = raw_header(name, b'0', content.len() as u64, true);
        v.extend_from_slice(content);
        v.resize(v.len().div_ceil(512) * 512, 0);
        v
    }

    /// A tar stream whose extension header (`typeflag`) claims `claimed` bytes,
    /// generated on the fly (never held in memory), followed by the entry it
    /// describes and one more ordinary file.
    fn hostile_stream(typeflag: u8, claimed: u64, gnu: bool) -> impl Read {
        let head = raw_header("././@LongLink", typeflag, claimed, gnu);
        let filler: Box<dyn Read> = if typeflag == b'x' {
            // One endless PAX record: "<len> path=aaaa…".
            let len = claimed.to_string();
            let prefix = format!("{len} path=");
            Box::new(
                std::io::Cursor::new(prefix.clone().into_bytes())
                    .chain(std::io::repeat(b'a').take(claimed - prefix.len() as u64)),
            )
        } else {
            Box::new(std::io::repeat(b'a').take(claimed))
        };
        let pad = vec![0u8; (claimed.div_ceil(512) * 512 - claimed) as usize];
        let mut tail = file_block("victim.txt", b"described by the long header");
        tail.extend(file_block("after.txt", b"still walked"));
        tail.extend(vec![0u8; 1024]);
        std::io::Cursor::new(head).chain(filler).chain(std::io::Cursor::new(pad)).chain(std::io::Cursor::new(tail))
    }

    #[test]
    fn huge_long_names_and_pax_headers_are_streamed_past_and_skipped() {
        const CLAIMED: u64 = 100 << 20;
        for (typeflag, gnu, what) in
            [(b'L', true, "GNU long name"), (b'K', true, "GNU long link name"), (b'x', false, "PAX extended header")]
        {
            let (r, grown) = peak_rss_growth(|| walk_layer(hostile_stream(typeflag, CLAIMED, gnu), &Keep));
            let r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(grown < 40 << 20, "{what}: resident memory grew by {grown} bytes");
            let keys: Vec<&str> = r.files.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(keys, vec!["/after.txt"], "{what}");
            assert_eq!(r.warnings.len(), 1, "{what}: {:?}", r.warnings);
            assert!(r.warnings[0].contains(what) && r.warnings[0].contains("victim.txt"), "{:?}", r.warnings);
        }
    }

    #[test]
    fn small_extension_headers_still_apply() {
        // A long name within the limit (written by tar::Builder as a GNU long name).
        let long = format!("{}/pkg.txt", "d".repeat(300));
        let l = layer(&[E::F(&long, "long"), E::F("b.txt", "b")]);
        let m = merged(&[l]);
        assert_eq!(m.files.get(&format!("/{long}")).map(|f| f.value.as_str()), Some("long"));
        // A PAX `size` override (ustar size 0): the guard must follow it to stay in step with tar.
        let mut v = Vec::new();
        let record = b"11 size=12\n";
        v.extend(raw_header("PaxHeaders/x", b'x', record.len() as u64, false));
        v.extend_from_slice(record);
        v.resize(v.len().div_ceil(512) * 512, 0);
        v.extend(raw_header("paxsized.txt", b'0', 0, false));
        v.extend_from_slice(b"twelve bytes");
        v.resize(v.len().div_ceil(512) * 512, 0);
        v.extend(file_block("next.txt", b"n"));
        v.extend(vec![0u8; 1024]);
        let r = walk_layer(&v[..], &Keep).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.files,
            vec![("/paxsized.txt".to_string(), "twelve bytes".to_string()), ("/next.txt".to_string(), "n".to_string())]
        );
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn link_limit_applies_while_walking() {
        let mut b = tar::Builder::new(Vec::new());
        for i in 0..110 {
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            h.set_entry_type(tar::EntryType::Symlink);
            b.append_link(&mut h, format!("l{i}"), "t").unwrap_or_else(|e| panic!("{e}"));
        }
        let t = b.into_inner().unwrap_or_else(|e| panic!("{e}"));
        let r = walk_layer_limited(&t[..], &Keep, 100).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.links.len(), 100);
        assert!(r.written.is_empty());
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    }
}
