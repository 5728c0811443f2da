//! The [`Analyzer`] that routes each file of an image to its cataloger.
//!
//! Routing is by path (and, for binaries, the execute bit), so deciding
//! costs no I/O; contents are read only for wanted files, each bounded by a
//! per-kind size limit.

use crate::catalog::{binary, java, lang, node, os, python, rpm};
use crate::CatalogError;
use palisade_image::{Analyzer, FileMeta};
use palisade_model::Package;
use std::io::Read;

/// Largest text metadata file read (dpkg status, lock files, ...).
pub const MAX_TEXT: u64 = 64 << 20;
/// Largest RPM database read.
pub const MAX_RPMDB: u64 = 512 << 20;
/// Largest archive (jar/war/ear) or executable read.
pub const MAX_BLOB: u64 = 512 << 20;
/// Smallest executable worth parsing.
const MIN_BINARY: u64 = 1024;
/// Most bytes of executables held in memory at once, over all layer threads
/// (each executable is read whole for the build-info readers, so without a
/// shared budget every core could hold a [`MAX_BLOB`] file at the same time).
pub const BINARY_BUDGET: u64 = 512 << 20;

/// A byte budget shared by threads: `take` waits until enough is free.
#[derive(Debug)]
struct Budget {
    free: std::sync::Mutex<u64>,
    freed: std::sync::Condvar,
    total: u64,
}

impl Budget {
    const fn new(total: u64) -> Budget {
        Budget { free: std::sync::Mutex::new(total), freed: std::sync::Condvar::new(), total }
    }

    fn take(&self, n: u64) -> Held<'_> {
        let n = n.min(self.total);
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free < n {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= n;
        Held { budget: self, n }
    }
}

/// Bytes taken from a [`Budget`], returned on drop.
struct Held<'a> {
    budget: &'a Budget,
    n: u64,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        *self.budget.free.lock().unwrap_or_else(|e| e.into_inner()) += self.n;
        self.budget.freed.notify_all();
    }
}

static BINARIES: Budget = Budget::new(BINARY_BUDGET);

/// What kind of file a path is, for the catalogers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An OS release file.
    Release,
    /// dpkg status file or distroless status.d entry.
    Dpkg,
    /// apk installed database.
    Apk,
    /// RPM database (any of the three formats).
    Rpm,
    /// Python METADATA / PKG-INFO.
    Python,
    /// package.json (installed packages and application roots).
    PackageJson,
    /// package-lock.json / npm-shrinkwrap.json.
    PackageLock,
    /// yarn.lock.
    YarnLock,
    /// pnpm-lock.yaml.
    PnpmLock,
    /// Cargo.lock.
    CargoLock,
    /// Ruby gemspec in a specifications directory.
    Gemspec,
    /// Gemfile.lock.
    GemfileLock,
    /// composer.lock or installed.json.
    Composer,
    /// .NET deps.json.
    DepsJson,
    /// Java archive.
    Jar,
    /// Possibly a Go or Rust binary.
    Binary,
}

impl Kind {
    fn limit(self) -> u64 {
        match self {
            Kind::Rpm => MAX_RPMDB,
            Kind::Jar | Kind::Binary => MAX_BLOB,
            _ => MAX_TEXT,
        }
    }
}

/// Classify a file by path and mode.
pub fn classify(meta: &FileMeta<'_>) -> Option<Kind> {
    let path = meta.path;
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    if os::RELEASE_FILES.contains(&path) {
        return Some(Kind::Release);
    }
    match path {
        "/var/lib/dpkg/status" => return Some(Kind::Dpkg),
        "/lib/apk/db/installed" => return Some(Kind::Apk),
        _ => {}
    }
    if dir == "/var/lib/dpkg/status.d" {
        return (!name.ends_with(".md5sums")).then_some(Kind::Dpkg);
    }
    if (dir == "/var/lib/rpm" || dir == "/usr/lib/sysimage/rpm")
        && matches!(name, "Packages" | "Packages.db" | "rpmdb.sqlite")
    {
        return Some(Kind::Rpm);
    }
    match name {
        "METADATA" if dir.ends_with(".dist-info") => return Some(Kind::Python),
        "PKG-INFO" if dir.ends_with(".egg-info") => return Some(Kind::Python),
        // Installed packages and application roots alike (as Trivy does); files without
        // a name and version are ignored by the cataloger.
        "package.json" => return Some(Kind::PackageJson),
        "package-lock.json" | "npm-shrinkwrap.json" if !dir.contains("/node_modules") => {
            return Some(Kind::PackageLock)
        }
        "yarn.lock" if !dir.contains("/node_modules/") => return Some(Kind::YarnLock),
        "pnpm-lock.yaml" if !dir.contains("/node_modules/") => return Some(Kind::PnpmLock),
        "Cargo.lock" => return Some(Kind::CargoLock),
        "Gemfile.lock" => return Some(Kind::GemfileLock),
        "composer.lock" => return Some(Kind::Composer),
        "installed.json" if dir.ends_with("/vendor/composer") => return Some(Kind::Composer),
        _ => {}
    }
    if name.ends_with(".egg-info") {
        return Some(Kind::Python);
    }
    if name.ends_with(".gemspec") && (dir.ends_with("/specifications") || dir.ends_with("/specifications/default")) {
        return Some(Kind::Gemspec);
    }
    if name.ends_with(".deps.json") {
        return Some(Kind::DepsJson);
    }
    let lower_ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    if matches!(lower_ext.as_deref(), Some("jar" | "war" | "ear" | "jpi" | "hpi" | "par")) {
        return Some(Kind::Jar);
    }
    if meta.is_executable() && meta.size >= MIN_BINARY {
        return Some(Kind::Binary);
    }
    None
}

/// What one file contributed.
#[derive(Debug, Clone)]
pub enum Finding {
    /// Packages found in the file.
    Packages(Vec<Package>),
    /// The text of an OS release file.
    Release(String),
    /// The file could not be catalogued; the scan goes on.
    Warning(String),
    /// Packages found, but part of the file was not searched (a limit was reached): both are
    /// reported.
    Partial(Vec<Package>, String),
}

/// Routes files to catalogers.
#[derive(Debug, Default, Clone, Copy)]
pub struct Catalogers;

fn run(kind: Kind, path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    match kind {
        Kind::Dpkg => os::parse_dpkg(path, data),
        Kind::Apk => os::parse_apk(path, data),
        Kind::Rpm => rpm::parse(path, data),
        Kind::Python => python::parse(path, data),
        Kind::PackageJson => node::parse_package_json(path, data),
        Kind::PackageLock => node::parse_package_lock(path, data),
        Kind::YarnLock => node::parse_yarn_lock(path, data),
        Kind::PnpmLock => node::parse_pnpm_lock(path, data),
        Kind::CargoLock => lang::parse_cargo_lock(path, data),
        Kind::Gemspec => lang::parse_gemspec(path, data),
        Kind::GemfileLock => lang::parse_gemfile_lock(path, data),
        Kind::Composer => lang::parse_composer(path, data),
        Kind::DepsJson => lang::parse_deps_json(path, data),
        Kind::Jar => java::parse(path, data),
        Kind::Binary => binary::parse(path, data),
        Kind::Release => Ok(Vec::new()),
    }
}

impl Analyzer for Catalogers {
    type Output = Finding;

    fn wants(&self, meta: &FileMeta<'_>) -> bool {
        classify(meta).is_some()
    }

    fn analyze(&self, meta: &FileMeta<'_>, content: &mut dyn Read) -> std::io::Result<Option<Finding>> {
        let Some(kind) = classify(meta) else { return Ok(None) };
        let limit = kind.limit();
        if meta.size > limit {
            return Ok(Some(Finding::Warning(format!("skipped: {} bytes exceeds the {limit}-byte limit", meta.size))));
        }
        if kind == Kind::Binary {
            let mut magic = [0u8; 4];
            let mut got = 0;
            while got < 4 {
                let n = content.read(&mut magic[got..])?;
                if n == 0 {
                    return Ok(None);
                }
                got += n;
            }
            if &magic != b"\x7fELF" {
                return Ok(None);
            }
            let _held = BINARIES.take(meta.size);
            let mut data = Vec::with_capacity(meta.size.min(64 << 20) as usize);
            data.extend_from_slice(&magic);
            content.take(meta.size.min(BINARY_BUDGET).saturating_sub(4)).read_to_end(&mut data)?;
            return Ok(match run(kind, meta.path, &data) {
                Ok(p) if p.is_empty() => None,
                Ok(p) => Some(Finding::Packages(p)),
                Err(e) => Some(Finding::Warning(e.to_string())),
            });
        }
        let mut data = Vec::with_capacity(meta.size.min(64 << 20) as usize);
        content.read_to_end(&mut data)?;
        if kind == Kind::Jar {
            return Ok(Some(match java::parse_noted(meta.path, &data) {
                Ok((p, notes)) if notes.is_empty() => Finding::Packages(p),
                Ok((p, notes)) => Finding::Partial(p, notes.join("; ")),
                Err(e) => Finding::Warning(e.to_string()),
            }));
        }
        if kind == Kind::Release {
            return Ok(Some(Finding::Release(
                String::from_utf8_lossy(&data[..data.len().min(64 * 1024)]).into_owned(),
            )));
        }
        Ok(Some(match run(kind, meta.path, &data) {
            Ok(p) => Finding::Packages(p),
            Err(e) => Finding::Warning(e.to_string()),
        }))
    }
}

/// Catalogue one file's bytes directly (used by the fuzz targets and tests).
pub fn catalog_bytes(path: &str, mode: u32, data: &[u8]) -> Option<Result<Vec<Package>, CatalogError>> {
    let meta = FileMeta { path, size: data.len() as u64, mode };
    classify(&meta).map(|k| run(k, path, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(path: &str, mode: u32, size: u64) -> Option<Kind> {
        classify(&FileMeta { path, size, mode })
    }

    #[test]
    fn routes_paths() {
        assert_eq!(kind("/var/lib/dpkg/status", 0o644, 10), Some(Kind::Dpkg));
        assert_eq!(kind("/var/lib/dpkg/status.d/base", 0o644, 10), Some(Kind::Dpkg));
        assert_eq!(kind("/var/lib/dpkg/status.d/base.md5sums", 0o644, 10), None);
        assert_eq!(kind("/var/lib/rpm/rpmdb.sqlite", 0o644, 10), Some(Kind::Rpm));
        assert_eq!(kind("/usr/lib/python3/dist-packages/yaml-6.0.dist-info/METADATA", 0o644, 10), Some(Kind::Python));
        assert_eq!(kind("/app/node_modules/@s/x/package.json", 0o644, 10), Some(Kind::PackageJson));
        assert_eq!(kind("/app/package.json", 0o644, 10), Some(Kind::PackageJson));
        assert_eq!(kind("/app/node_modules/x/package-lock.json", 0o644, 10), None);
        assert_eq!(kind("/usr/share/java/x.JAR", 0o644, 10), Some(Kind::Jar));
        assert_eq!(kind("/usr/bin/ls", 0o755, 100_000), Some(Kind::Binary));
        assert_eq!(kind("/usr/bin/tiny", 0o755, 10), None);
        assert_eq!(kind("/etc/passwd", 0o644, 1000), None);
    }

    #[test]
    fn binary_budget_is_shared_and_returned() {
        let b = std::sync::Arc::new(Budget::new(100));
        let first = b.take(80);
        let (tx, rx) = std::sync::mpsc::channel();
        let b2 = b.clone();
        let t = std::thread::spawn(move || {
            let _h = b2.take(50);
            let _ = tx.send(());
        });
        // The second taker waits while the first holds most of the budget ...
        assert!(rx.recv_timeout(std::time::Duration::from_millis(200)).is_err());
        drop(first);
        // ... and goes on once it is returned.
        assert!(rx.recv_timeout(std::time::Duration::from_secs(5)).is_ok());
        let _ = t.join();
        // A request larger than the whole budget is clamped, never a deadlock.
        drop(b.take(1000));
        assert_eq!(*b.free.lock().unwrap_or_else(|e| e.into_inner()), 100);
    }
}
