//! Feed parsers: upstream vulnerability feeds in their own formats turned into the normalised
//! records of [`crate::record`] ([`Advisory`], [`KevEntry`], [`Epss`]).
//!
//! Every format has its own module with pure functions over bytes (or a `Read + Seek` for zip
//! archives). The error policy is the same everywhere:
//!
//! * a file that is not the format at all (not JSON, wrong shape, not an archive, wrong CSV
//!   header) is a [`FeedError`] naming the file;
//! * a malformed record inside a well-formed file (bad JSON in one zip entry, an advisory without
//!   an id, a version constraint that cannot be converted) is skipped and counted in
//!   [`Parsed::skipped`] — it never aborts the file;
//! * parts of a record that are dropped on purpose (an `affected` entry of an unknown ecosystem,
//!   a GIT range, a secfix note that is not an id) are counted in [`Parsed::ignored`].
//!
//! Everything is bounded: archive entry counts ([`MAX_ARCHIVE_ENTRIES`]), decompressed entry
//! sizes ([`MAX_ENTRY_BYTES`], larger entries are skipped), total decompressed archive size
//! ([`MAX_ARCHIVE_BYTES`]), whole files ([`MAX_FILE_BYTES`]) and records per file
//! ([`MAX_RECORDS`]). Nothing is ever written to disk, so archive paths are only matched, never
//! used as file names.
//!
//! [`load_dir`] discovers and parses every recognised feed file under a directory laid out like
//! the shared `vulndata` tree; [`parse_file`] parses one file of a known [`FeedKind`].

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::record::{Advisory, EcoKind, Epss, KevEntry};

pub mod alpine;
pub mod constraint;
pub mod cvss;
pub mod debian;
pub mod epss;
pub mod friendsofphp;
pub mod kev;
pub mod nodejs;
pub mod nvd;
pub mod osv;
pub mod rubysec;

mod archive;
mod util;

/// Largest decompressed archive entry parsed (larger entries are skipped and counted).
pub const MAX_ENTRY_BYTES: u64 = 64 << 20;
/// Most entries an archive may have.
pub const MAX_ARCHIVE_ENTRIES: usize = 2_000_000;
/// Largest total decompressed size of one archive.
pub const MAX_ARCHIVE_BYTES: u64 = 8 << 30;
/// Largest single document (a feed file read whole, or a decompressed `.gz`).
pub const MAX_FILE_BYTES: u64 = 2 << 30;
/// Largest decompressed size of a gzip-compressed single document (EPSS CSV): the whole
/// document is held in memory, so this is far below [`MAX_FILE_BYTES`] (the real EPSS CSV is
/// about 10 MiB).
pub const MAX_GUNZIP_BYTES: u64 = 256 << 20;
/// Largest decompression ratio of a zip entry (decompressed size over its compressed size;
/// entries below 1 MiB decompressed are exempt). Real OSV records stay under 20.
pub const MAX_ZIP_RATIO: u64 = 200;
/// Most records taken from one file.
pub const MAX_RECORDS: usize = 5_000_000;
/// Deepest directory level [`load_dir`] descends to.
pub const MAX_WALK_DEPTH: usize = 32;
/// Most files [`load_dir`] looks at.
pub const MAX_WALK_FILES: usize = 1_000_000;

/// The feed formats understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedKind {
    /// An OSV `all.zip` archive of JSON records.
    OsvZip,
    /// One OSV JSON record (or a JSON array of records).
    OsvJson,
    /// Alpine secdb (`{"distroversion": …, "packages": […]}`, JSON or the repository's YAML).
    AlpineSecdb,
    /// Debian security tracker JSON (`https://security-tracker.debian.org/tracker/data/json`).
    DebianTracker,
    /// Debian security tracker `data/DSA/list` text.
    DebianDsa,
    /// CISA Known Exploited Vulnerabilities catalogue JSON.
    Kev,
    /// FIRST EPSS scores CSV (plain or gzip).
    Epss,
    /// NVD CVE API 2.0 JSON (a page of `vulnerabilities[].cve`).
    Nvd,
    /// Node.js security WG advisories (`vuln/` tarball, or one `npm/<n>.json`).
    NodeSecurityWg,
    /// rubysec ruby-advisory-db (tarball of `gems/<gem>/<id>.yml`, or one such file).
    RubySec,
    /// FriendsOfPHP security-advisories (tarball of `<vendor>/<pkg>/<id>.yaml`, or one such file).
    FriendsOfPhp,
}

impl FeedKind {
    /// Every format.
    pub const ALL: [FeedKind; 11] = [
        FeedKind::OsvZip,
        FeedKind::OsvJson,
        FeedKind::AlpineSecdb,
        FeedKind::DebianTracker,
        FeedKind::DebianDsa,
        FeedKind::Kev,
        FeedKind::Epss,
        FeedKind::Nvd,
        FeedKind::NodeSecurityWg,
        FeedKind::RubySec,
        FeedKind::FriendsOfPhp,
    ];

    /// A short human name.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::OsvZip => "OSV archive",
            FeedKind::OsvJson => "OSV JSON",
            FeedKind::AlpineSecdb => "Alpine secdb",
            FeedKind::DebianTracker => "Debian security tracker JSON",
            FeedKind::DebianDsa => "Debian DSA list",
            FeedKind::Kev => "CISA KEV",
            FeedKind::Epss => "EPSS CSV",
            FeedKind::Nvd => "NVD CVE JSON 2.0",
            FeedKind::NodeSecurityWg => "Node.js security WG",
            FeedKind::RubySec => "rubysec advisory-db",
            FeedKind::FriendsOfPhp => "FriendsOfPHP security-advisories",
        }
    }
}

impl fmt::Display for FeedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A feed file that could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Reading a file or directory failed.
    #[error("{file}: {source}")]
    Io {
        /// The file or directory.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not in the expected format.
    #[error("{file}: not a valid {kind} file: {reason}")]
    Format {
        /// The file.
        file: String,
        /// The format it was parsed as.
        kind: FeedKind,
        /// What is wrong.
        reason: String,
    },
    /// A size or count limit was exceeded.
    #[error("{file}: {what} exceeds the limit of {limit}")]
    Limit {
        /// The file.
        file: String,
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
}

impl FeedError {
    /// The file the error is about.
    pub fn file(&self) -> &str {
        match self {
            FeedError::Io { file, .. } | FeedError::Format { file, .. } | FeedError::Limit { file, .. } => file,
        }
    }

    pub(crate) fn format(file: &str, kind: FeedKind, reason: impl Into<String>) -> FeedError {
        FeedError::Format { file: file.to_string(), kind, reason: reason.into() }
    }
}

/// Records parsed from one file, with what was dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T> {
    /// The records.
    pub records: Vec<T>,
    /// Malformed records skipped.
    pub skipped: usize,
    /// Parts of records dropped on purpose (unknown ecosystems, GIT ranges, notes that are not
    /// ids, advisories left with nothing matchable).
    pub ignored: usize,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed { records: Vec::new(), skipped: 0, ignored: 0 }
    }
}

impl<T> Parsed<T> {
    /// Add a record, enforcing [`MAX_RECORDS`].
    pub(crate) fn push(&mut self, file: &str, record: T) -> Result<(), FeedError> {
        if self.records.len() >= MAX_RECORDS {
            return Err(FeedError::Limit { file: file.to_string(), what: "records", limit: MAX_RECORDS as u64 });
        }
        self.records.push(record);
        Ok(())
    }
}

/// What one source contributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStats {
    /// Source name: `osv:PyPI`, `alpine-secdb:3.10`, `debian-tracker`, `debian-dsa`, `kev`, `epss`,
    /// `nvd`, `nodejs-security-wg`, `rubysec`, `friendsofphp`.
    pub name: String,
    /// The file (or, for sources made of many loose files, their common directory).
    pub path: String,
    /// Records produced.
    pub records: usize,
    /// Malformed records skipped.
    pub skipped: usize,
    /// Parts of records dropped on purpose (see [`Parsed::ignored`]).
    pub ignored: usize,
}

/// Everything parsed from one file or a directory of feeds.
#[derive(Debug, Default)]
pub struct FeedSet {
    /// Advisories of every source (withdrawn ones included, flagged).
    pub advisories: Vec<Advisory>,
    /// KEV entries.
    pub kev: Vec<KevEntry>,
    /// EPSS scores by CVE id.
    pub epss: Vec<(String, Epss)>,
    /// Per-source statistics.
    pub sources: Vec<SourceStats>,
    /// Files that were recognised but could not be parsed ([`load_dir`] only).
    pub errors: Vec<FeedError>,
}

impl FeedSet {
    /// Append everything of `other` (no de-duplication).
    pub fn extend(&mut self, mut other: FeedSet) {
        self.advisories.append(&mut other.advisories);
        self.kev.append(&mut other.kev);
        self.epss.append(&mut other.epss);
        self.sources.append(&mut other.sources);
        self.errors.append(&mut other.errors);
    }

    fn add_advisories(&mut self, name: String, path: &str, p: Parsed<Advisory>) {
        self.sources.push(SourceStats {
            name,
            path: path.to_string(),
            records: p.records.len(),
            skipped: p.skipped,
            ignored: p.ignored,
        });
        self.advisories.extend(p.records);
    }
}

/// The most common ecosystem among the advisories' affected packages.
fn majority_ecosystem(advs: &[Advisory]) -> Option<EcoKind> {
    let mut counts: HashMap<EcoKind, usize> = HashMap::new();
    for a in advs {
        for af in &a.affected {
            *counts.entry(af.ecosystem).or_default() += 1;
        }
    }
    counts.into_iter().max_by_key(|(k, n)| (*n, std::cmp::Reverse(*k))).map(|(k, _)| k)
}

fn osv_source_name(advs: &[Advisory]) -> String {
    match majority_ecosystem(advs) {
        Some(e) => format!("osv:{}", e.osv_name()),
        None => "osv".to_string(),
    }
}

/// Parse one downloaded feed file of a known kind. `name` is used for errors and statistics
/// (for an OSV archive the source is named after its most common ecosystem, e.g. `osv:PyPI`).
pub fn parse_file(kind: FeedKind, name: &str, data: &[u8]) -> Result<FeedSet, FeedError> {
    let mut set = FeedSet::default();
    match kind {
        FeedKind::OsvZip => {
            let p = osv::parse_zip(name, std::io::Cursor::new(data))?;
            set.add_advisories(osv_source_name(&p.records), name, p);
        }
        FeedKind::OsvJson => {
            let p = osv::parse_json(name, data)?;
            set.add_advisories(osv_source_name(&p.records), name, p);
        }
        FeedKind::AlpineSecdb => {
            let p = alpine::parse(name, data)?;
            let release = p.records.iter().flat_map(|a| a.affected.first()).map(|a| a.release.clone()).next();
            let n = match release {
                Some(r) => format!("alpine-secdb:{r}"),
                None => "alpine-secdb".to_string(),
            };
            set.add_advisories(n, name, p);
        }
        FeedKind::DebianTracker => {
            set.add_advisories("debian-tracker".into(), name, debian::parse_tracker(name, data)?)
        }
        FeedKind::DebianDsa => set.add_advisories("debian-dsa".into(), name, debian::parse_dsa_list(name, data)?),
        FeedKind::Nvd => set.add_advisories("nvd".into(), name, nvd::parse(name, data)?),
        FeedKind::NodeSecurityWg => set.add_advisories("nodejs-security-wg".into(), name, nodejs::parse(name, data)?),
        FeedKind::RubySec => set.add_advisories("rubysec".into(), name, rubysec::parse(name, data)?),
        FeedKind::FriendsOfPhp => set.add_advisories("friendsofphp".into(), name, friendsofphp::parse(name, data)?),
        FeedKind::Kev => {
            let p = kev::parse(name, data)?;
            set.sources.push(SourceStats {
                name: "kev".into(),
                path: name.into(),
                records: p.records.len(),
                skipped: p.skipped,
                ignored: p.ignored,
            });
            set.kev = p.records;
        }
        FeedKind::Epss => {
            let p = epss::parse(name, data)?;
            set.sources.push(SourceStats {
                name: "epss".into(),
                path: name.into(),
                records: p.records.len(),
                skipped: p.skipped,
                ignored: p.ignored,
            });
            set.epss = p.records;
        }
    }
    Ok(set)
}

// ---------------------------------------------------------------------------------------------
// Directory discovery
// ---------------------------------------------------------------------------------------------

/// Walk `dir` (recursively, not following symbolic links, skipping hidden entries), recognise
/// every feed file by name, location and content, and parse it.
///
/// Recognised: `*.zip` (OSV archives); OSV records (`*.json` with `id` and `affected` /
/// `schema_version`); `known_exploited_vulnerabilities.json` and other KEV catalogues; EPSS CSVs
/// (`*epss*.csv[.gz]` or CSVs in an `epss` directory); Alpine secdb JSON/YAML (`distroversion`);
/// Debian tracker JSON (by shape); the Debian `DSA` list; NVD CVE 2.0 pages; the Node.js
/// security WG, rubysec and FriendsOfPHP tarballs (by name) or their loose files (by content).
/// Unrecognised files are ignored (debug log); recognised files that fail to parse are reported
/// in [`FeedSet::errors`] and do not stop the walk. OSV advisories found more than once (same
/// id) are kept once, the most recently modified; KEV and EPSS entries are kept once per CVE
/// (the first found, in path order). Statistics count what each file contributed before this
/// de-duplication. Fails only if `dir` cannot be read.
pub fn load_dir(dir: &Path) -> Result<FeedSet, FeedError> {
    let meta = fs::metadata(dir).map_err(|e| FeedError::Io { file: dir.display().to_string(), source: e })?;
    if !meta.is_dir() {
        return Err(FeedError::Io {
            file: dir.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory"),
        });
    }
    let mut files = Vec::new();
    walk(dir, 0, &mut files).map_err(|e| FeedError::Io { file: dir.display().to_string(), source: e })?;

    let mut set = FeedSet::default();
    // Loose files of one source (OSV records, single native advisories) share one stats entry.
    let mut loose: Vec<(SourceStats, Vec<PathBuf>)> = Vec::new();
    for path in &files {
        let shown = path.display().to_string();
        let kind = match classify(path) {
            Ok(Some(k)) => k,
            Ok(None) => {
                tracing::debug!(file = %shown, "not a recognised feed file");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "feed file skipped");
                set.errors.push(e);
                continue;
            }
        };
        let result = match kind.0 {
            FeedKind::OsvZip => fs::File::open(path)
                .map_err(|e| FeedError::Io { file: shown.clone(), source: e })
                .and_then(|f| osv::parse_zip(&shown, std::io::BufReader::new(f)))
                .map(|p| {
                    let name = zip_source_name(path).unwrap_or_else(|| osv_source_name(&p.records));
                    let mut s = FeedSet::default();
                    s.add_advisories(name, &shown, p);
                    s
                }),
            k => read_file(path).and_then(|data| parse_file(k, &shown, &data)),
        };
        match result {
            Ok(mut s) => {
                if kind.1 {
                    for st in s.sources.drain(..) {
                        merge_loose(&mut loose, st, path);
                    }
                }
                set.extend(s);
            }
            Err(e) => {
                tracing::warn!(error = %e, "feed file failed to parse");
                set.errors.push(e);
            }
        }
    }
    for (mut st, paths) in loose {
        st.path = common_dir(&paths);
        set.sources.push(st);
    }
    dedupe_osv(&mut set.advisories);
    // Samples may repeat catalogue entries: keep the first (walk order is sorted by path).
    let mut seen = std::collections::HashSet::new();
    set.kev.retain(|k| seen.insert(k.cve.clone()));
    let mut seen = std::collections::HashSet::new();
    set.epss.retain(|(cve, _)| seen.insert(cve.clone()));
    Ok(set)
}

fn merge_loose(loose: &mut Vec<(SourceStats, Vec<PathBuf>)>, st: SourceStats, path: &Path) {
    if let Some((s, paths)) = loose.iter_mut().find(|(s, _)| s.name == st.name) {
        s.records += st.records;
        s.skipped += st.skipped;
        s.ignored += st.ignored;
        paths.push(path.to_path_buf());
    } else {
        loose.push((st, vec![path.to_path_buf()]));
    }
}

/// The deepest directory containing every path.
fn common_dir(paths: &[PathBuf]) -> String {
    let mut common: Option<PathBuf> = None;
    for p in paths {
        let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
        common = Some(match common {
            None => dir,
            Some(c) => {
                let mut out = PathBuf::new();
                for (a, b) in c.components().zip(dir.components()) {
                    if a != b {
                        break;
                    }
                    out.push(a);
                }
                out
            }
        });
    }
    common.map(|c| c.display().to_string()).unwrap_or_default()
}

/// Keep one OSV advisory per id: the one modified last (the first on ties).
fn dedupe_osv(advs: &mut Vec<Advisory>) {
    let mut best: HashMap<String, usize> = HashMap::new();
    let mut drop = vec![false; advs.len()];
    for (i, a) in advs.iter().enumerate() {
        if a.source != osv::SOURCE {
            continue;
        }
        match best.get(&a.id) {
            None => {
                best.insert(a.id.clone(), i);
            }
            Some(&j) => {
                if a.modified > advs[j].modified {
                    drop[j] = true;
                    best.insert(a.id.clone(), i);
                } else {
                    drop[i] = true;
                }
            }
        }
    }
    let dups = drop.iter().filter(|d| **d).count();
    if dups > 0 {
        tracing::debug!(duplicates = dups, "duplicate OSV advisories dropped");
        let mut it = drop.into_iter();
        advs.retain(|_| !it.next().unwrap_or(false));
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, FeedError> {
    let shown = || path.display().to_string();
    let f = fs::File::open(path).map_err(|e| FeedError::Io { file: shown(), source: e })?;
    match archive::read_bounded(f, MAX_FILE_BYTES) {
        Ok(Some(d)) => Ok(d),
        Ok(None) => Err(FeedError::Limit { file: shown(), what: "file size", limit: MAX_FILE_BYTES }),
        Err(e) => Err(FeedError::Io { file: shown(), source: e }),
    }
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if depth > MAX_WALK_DEPTH {
        tracing::warn!(dir = %dir.display(), "directory too deep, not descended");
        return Ok(());
    }
    let mut entries: Vec<_> = fs::read_dir(dir)?.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if out.len() >= MAX_WALK_FILES {
            tracing::warn!(dir = %dir.display(), "too many files, stopping the walk");
            return Ok(());
        }
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if let Err(err) = walk(&e.path(), depth + 1, out) {
                tracing::warn!(dir = %e.path().display(), error = %err, "directory unreadable");
            }
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// The source name of an OSV archive from its location (`…/PyPI/all.zip` → `osv:PyPI`).
fn zip_source_name(path: &Path) -> Option<String> {
    let parent = path.parent()?.file_name()?.to_str()?;
    EcoKind::parse_osv(parent).map(|_| format!("osv:{parent}"))
}

fn lower_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default()
}

fn in_dir_named(path: &Path, name: &str) -> bool {
    path.parent().into_iter().flat_map(Path::components).any(|c| c.as_os_str().eq_ignore_ascii_case(name))
}

/// Recognise a file: the kind and whether it is one loose file of a many-file source.
fn classify(path: &Path) -> Result<Option<(FeedKind, bool)>, FeedError> {
    let name = lower_name(path);
    if name.ends_with(".zip") {
        return Ok(Some((FeedKind::OsvZip, false)));
    }
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") || name.ends_with(".tar") {
        let kind = if name.contains("nodejs-security-wg") || name.contains("security-wg") {
            Some(FeedKind::NodeSecurityWg)
        } else if name.contains("rubysec") || name.contains("ruby-advisory-db") {
            Some(FeedKind::RubySec)
        } else if name.contains("friendsofphp") || name.contains("security-advisories") {
            Some(FeedKind::FriendsOfPhp)
        } else {
            None
        };
        return Ok(kind.map(|k| (k, false)));
    }
    if (name.ends_with(".csv") || name.ends_with(".csv.gz")) && (name.contains("epss") || in_dir_named(path, "epss")) {
        return Ok(Some((FeedKind::Epss, false)));
    }
    if name == "known_exploited_vulnerabilities.json" {
        return Ok(Some((FeedKind::Kev, false)));
    }
    if name == "dsa" || (name == "list" && in_dir_named(path, "dsa")) {
        let data = read_file(path)?;
        return Ok(debian::looks_like_dsa_list(&data).then_some((FeedKind::DebianDsa, false)));
    }
    if name.ends_with(".json") {
        let data = read_file(path)?;
        return Ok(sniff_json(&data).map(|k| (k, matches!(k, FeedKind::OsvJson | FeedKind::NodeSecurityWg))));
    }
    if name.ends_with(".yaml") || name.ends_with(".yml") {
        // YAML feeds are small files; anything huge is not one of them.
        let meta = fs::metadata(path).map_err(|e| FeedError::Io { file: path.display().to_string(), source: e })?;
        if meta.len() > MAX_ENTRY_BYTES {
            return Ok(None);
        }
        let data = read_file(path)?;
        let Ok(v) = util::parse_yaml(&data) else { return Ok(None) };
        if v.get("distroversion").is_some() && v.get("packages").is_some() {
            return Ok(Some((FeedKind::AlpineSecdb, false)));
        }
        if v.get("gem").is_some() && (v.get("patched_versions").is_some() || v.get("title").is_some()) {
            return Ok(Some((FeedKind::RubySec, true)));
        }
        if util::str_field(&v, "reference").is_some_and(|r| r.starts_with("composer://")) {
            return Ok(Some((FeedKind::FriendsOfPhp, true)));
        }
    }
    Ok(None)
}

/// The top-level shape of a JSON document, read without building it.
#[derive(Default)]
struct Shape {
    keys: Vec<String>,
    format: Option<String>,
    title: Option<String>,
    /// For a first key that is not a known field name: whether its value is a map whose first
    /// key is a vulnerability id mapped to an object with `releases` (the Debian tracker shape).
    tracker_like: bool,
    /// The first element of a top-level array.
    first_element: Option<Value>,
}

impl Shape {
    fn has(&self, k: &str) -> bool {
        self.keys.iter().any(|x| x == k)
    }
}

const KNOWN_TOP_KEYS: &[&str] = &[
    "id",
    "schema_version",
    "modified",
    "published",
    "affected",
    "aliases",
    "summary",
    "details",
    "withdrawn",
    "vulnerabilities",
    "format",
    "version",
    "resultsPerPage",
    "startIndex",
    "totalResults",
    "timestamp",
    "title",
    "catalogVersion",
    "dateReleased",
    "count",
    "distroversion",
    "reponame",
    "packages",
    "archs",
    "urlprefix",
    "apkurl",
    "identifier",
    "item",
    "schema",
    "cveID",
    "module_name",
    "cves",
    "vulnerable_versions",
];

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object or array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut s = Shape::default();
        let mut first = true;
        while let Some(key) = map.next_key::<String>()? {
            if first && !KNOWN_TOP_KEYS.contains(&key.as_str()) {
                s.tracker_like = map.next_value::<TrackerProbe>()?.0;
            } else if key == "format" || key == "title" {
                let v = map.next_value::<Value>()?;
                let text = v.as_str().map(str::to_string);
                if key == "format" {
                    s.format = text;
                } else {
                    s.title = text;
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            first = false;
            if s.keys.len() < 64 {
                s.keys.push(key);
            }
        }
        Ok(s)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut s = Shape { first_element: seq.next_element::<Value>()?, ..Shape::default() };
        if s.first_element.is_none() {
            s.first_element = Some(Value::Null);
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(s)
    }
}

/// Whether a value is `{"CVE-…": {…, "releases": …}, …}` (only the first entry is looked at).
struct TrackerProbe(bool);

impl<'de> serde::Deserialize<'de> for TrackerProbe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Outer;
        impl<'de> Visitor<'de> for Outer {
            type Value = TrackerProbe;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TrackerProbe, A::Error> {
                let mut found = false;
                if let Some(key) = map.next_key::<String>()? {
                    let has_releases = map.next_value::<HasReleases>()?.0;
                    found = util::looks_like_id(&key) && has_releases;
                }
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(TrackerProbe(found))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TrackerProbe, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TrackerProbe(false))
            }
            fn visit_str<E>(self, _: &str) -> Result<TrackerProbe, E> {
                Ok(TrackerProbe(false))
            }
            fn visit_bool<E>(self, _: bool) -> Result<TrackerProbe, E> {
                Ok(TrackerProbe(false))
            }
            fn visit_i64<E>(self, _: i64) -> Result<TrackerProbe, E> {
                Ok(TrackerProbe(false))
            }
            fn visit_u64<E>(self, _: u64) -> Result<TrackerProbe, E> {
                Ok(TrackerProbe(false))
            }
            fn visit_f64<E>(self, _: f64) -> Result<TrackerProbe, E> {
                Ok(TrackerProbe(false))
            }
            fn visit_unit<E>(self) -> Result<TrackerProbe, E> {
                Ok(TrackerProbe(false))
            }
        }
        d.deserialize_any(Outer)
    }
}

/// Whether a value is a map with a `releases` key.
struct HasReleases(bool);

impl<'de> serde::Deserialize<'de> for HasReleases {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HasReleases;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HasReleases, A::Error> {
                let mut found = false;
                while let Some(k) = map.next_key::<String>()? {
                    found |= k == "releases";
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(HasReleases(found))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HasReleases, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(HasReleases(false))
            }
            fn visit_str<E>(self, _: &str) -> Result<HasReleases, E> {
                Ok(HasReleases(false))
            }
            fn visit_bool<E>(self, _: bool) -> Result<HasReleases, E> {
                Ok(HasReleases(false))
            }
            fn visit_i64<E>(self, _: i64) -> Result<HasReleases, E> {
                Ok(HasReleases(false))
            }
            fn visit_u64<E>(self, _: u64) -> Result<HasReleases, E> {
                Ok(HasReleases(false))
            }
            fn visit_f64<E>(self, _: f64) -> Result<HasReleases, E> {
                Ok(HasReleases(false))
            }
            fn visit_unit<E>(self) -> Result<HasReleases, E> {
                Ok(HasReleases(false))
            }
        }
        d.deserialize_any(V)
    }
}

fn looks_like_osv(v: &Value) -> bool {
    v.get("id").is_some_and(Value::is_string)
        && (v.get("affected").is_some()
            || v.get("schema_version").is_some()
            || (v.get("modified").is_some() && v.get("aliases").is_some()))
}

/// Recognise a JSON feed document by its shape.
fn sniff_json(data: &[u8]) -> Option<FeedKind> {
    let mut de = serde_json::Deserializer::from_slice(data);
    let shape = de.deserialize_any(ShapeVisitor).ok()?;
    if let Some(first) = &shape.first_element {
        if looks_like_osv(first) {
            return Some(FeedKind::OsvJson);
        }
        if first.get("cveID").is_some() {
            return Some(FeedKind::Kev);
        }
        return None;
    }
    let has = |k: &str| shape.has(k);
    if has("distroversion") && has("packages") {
        return Some(FeedKind::AlpineSecdb);
    }
    if has("vulnerabilities") {
        if shape.format.as_deref() == Some("NVD_CVE") || has("resultsPerPage") || has("totalResults") {
            return Some(FeedKind::Nvd);
        }
        if has("catalogVersion") || shape.title.as_deref().is_some_and(|t| t.contains("Known Exploited")) {
            return Some(FeedKind::Kev);
        }
    }
    if has("cveID") && has("dateAdded") {
        return Some(FeedKind::Kev);
    }
    if has("module_name") && has("vulnerable_versions") {
        return Some(FeedKind::NodeSecurityWg);
    }
    if has("id") && (has("affected") || has("schema_version") || (has("modified") && has("aliases"))) {
        return Some(FeedKind::OsvJson);
    }
    if shape.tracker_like {
        return Some(FeedKind::DebianTracker);
    }
    None
}

#[cfg(test)]
mod tests;
