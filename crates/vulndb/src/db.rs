//! The local vulnerability database: one file, built from normalised feed
//! records, written atomically, read section by section.
//!
//! Layout: an 8-byte magic, a little-endian `u32` header length, a JSON
//! header (metadata and a section table), then sections, each
//! `zstd(postcard(...))`. A section per (ecosystem, release) holds the
//! affected entries indexed by normalised package name; one section holds
//! the vulnerability details (IDs, aliases, alias groups, CVSS, summary);
//! one holds CVE enrichment (KEV, EPSS, NVD CVSS). A scan decodes only the
//! sections of the ecosystems its packages belong to.

use crate::record::{Advisory, Affected, Cvss, EcoKind, Epss, KevEntry, Severity};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const MAGIC: &[u8; 8] = b"PLSDVDB1";
/// Schema version of the file; a reader refuses other versions with a clear error.
pub const SCHEMA: u32 = 1;
/// Largest header accepted.
const MAX_HEADER: u32 = 16 << 20;
/// Largest decompressed section accepted.
const MAX_SECTION: usize = 2 << 30;

/// Errors of the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The file could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        error: std::io::Error,
    },
    /// No database exists at the path.
    #[error("no vulnerability database at {} (run `palisade db update`, or `palisade db build --from DIR`)", path.display())]
    Missing {
        /// Path.
        path: PathBuf,
    },
    /// The file is not a database of this schema.
    #[error("{}: not a Palisade vulnerability database (schema {SCHEMA}): {reason}", path.display())]
    Format {
        /// Path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Statistics of one feed source that went into the database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceInfo {
    /// Source name (`osv:PyPI`, `alpine-secdb:3.10`, `kev`, ...).
    pub name: String,
    /// Where it was read from.
    pub path: String,
    /// Records taken.
    pub records: usize,
    /// Records skipped as malformed.
    pub skipped: usize,
}

/// Database metadata (the JSON header).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Meta {
    /// Schema version.
    pub schema: u32,
    /// When it was built (RFC 3339).
    pub built_at: String,
    /// Build time as seconds since the epoch (for age checks).
    pub built_at_unix: u64,
    /// Sources.
    pub sources: Vec<SourceInfo>,
    /// Number of vulnerability records.
    pub vulnerabilities: usize,
    /// Number of affected-package entries per section.
    pub entries: BTreeMap<String, usize>,
    /// KEV entries.
    pub kev: usize,
    /// EPSS scores.
    pub epss: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    meta: Meta,
    /// name → (offset from the start of the section area, length)
    sections: BTreeMap<String, (u64, u64)>,
}

/// Details of one vulnerability record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VulnInfo {
    /// Primary ID.
    pub id: String,
    /// Aliases.
    pub aliases: Vec<String>,
    /// Alias group: records that share an ID (directly or transitively) share a group.
    pub group: u32,
    /// Summary.
    pub summary: String,
    /// The source's overall rating.
    pub severity: Option<Severity>,
    /// CVSS vectors.
    pub cvss: Vec<Cvss>,
    /// Published.
    pub published: Option<String>,
    /// References.
    pub references: Vec<String>,
    /// Source feed.
    pub source: String,
}

/// An affected entry: the [`Affected`] record and the vulnerability it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// Index into the vulnerability table.
    pub vuln: u32,
    /// What is affected.
    pub affected: Affected,
}

/// Per-CVE enrichment.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CveInfo {
    /// KEV entry.
    pub kev: Option<KevEntry>,
    /// EPSS score.
    pub epss: Option<Epss>,
    /// NVD CVSS vectors.
    pub nvd_cvss: Vec<Cvss>,
}

/// The index of one (ecosystem, release): normalised package name → entries.
pub type EcoIndex = HashMap<String, Vec<Entry>>;

/// Section name for an ecosystem and release.
pub fn section_name(eco: EcoKind, release: &str) -> String {
    if release.is_empty() {
        format!("eco:{}", eco.osv_name())
    } else {
        format!("eco:{}:{release}", eco.osv_name())
    }
}

/// Everything a database is built from.
#[derive(Debug, Default)]
pub struct BuildInput {
    /// Advisories (duplicates by (source, id) are merged by the last one winning).
    pub advisories: Vec<Advisory>,
    /// KEV.
    pub kev: Vec<KevEntry>,
    /// EPSS.
    pub epss: Vec<(String, Epss)>,
    /// Sources.
    pub sources: Vec<SourceInfo>,
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let raw = postcard::to_stdvec(v).unwrap_or_default();
    zstd::encode_all(&raw[..], 6).unwrap_or_default()
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let p = parent[x as usize];
        parent[x as usize] = parent[p as usize];
        x = parent[x as usize];
    }
    x
}

/// Build the database bytes.
pub fn build(input: BuildInput, now_unix: u64) -> Vec<u8> {
    // Alias groups: union-find over every ID.
    let mut id_index: HashMap<String, u32> = HashMap::new();
    let mut parent: Vec<u32> = Vec::new();
    let mut intern = |id: &str, parent: &mut Vec<u32>| -> u32 {
        if let Some(&i) = id_index.get(id) {
            return i;
        }
        let i = parent.len() as u32;
        parent.push(i);
        id_index.insert(id.to_string(), i);
        i
    };
    let advisories: Vec<Advisory> = input.advisories.into_iter().filter(|a| !a.withdrawn).collect();
    let mut roots = Vec::with_capacity(advisories.len());
    for a in &advisories {
        let r = intern(&a.id, &mut parent);
        for al in &a.aliases {
            let x = intern(al, &mut parent);
            let (ra, rb) = (find(&mut parent, r), find(&mut parent, x));
            if ra != rb {
                parent[rb as usize] = ra;
            }
        }
        roots.push(r);
    }
    let mut cve: BTreeMap<String, CveInfo> = BTreeMap::new();
    let mut vulns: Vec<VulnInfo> = Vec::new();
    let mut ecos: BTreeMap<String, EcoIndex> = BTreeMap::new();
    for (a, r) in advisories.into_iter().zip(roots) {
        let group = find(&mut parent, r);
        if a.affected.is_empty() && a.source == "nvd" {
            // CVSS enrichment only.
            let e = cve.entry(a.id.clone()).or_default();
            e.nvd_cvss.extend(a.cvss);
            continue;
        }
        let idx = vulns.len() as u32;
        for af in a.affected.iter() {
            let sec = section_name(af.ecosystem, &af.release);
            let name = crate::record::normalize_name(af.ecosystem, &af.package);
            ecos.entry(sec).or_default().entry(name).or_default().push(Entry { vuln: idx, affected: af.clone() });
        }
        vulns.push(VulnInfo {
            id: a.id,
            aliases: a.aliases,
            group,
            summary: a.summary,
            severity: a.severity,
            cvss: a.cvss,
            published: a.published,
            references: a.references,
            source: a.source,
        });
    }
    let kev_count = input.kev.len();
    for k in input.kev {
        let id = k.cve.clone();
        cve.entry(id).or_default().kev = Some(k);
    }
    let epss_count = input.epss.len();
    for (id, e) in input.epss {
        cve.entry(id).or_default().epss = Some(e);
    }
    let mut sections: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut body: Vec<u8> = Vec::new();
    let mut put = |name: String, bytes: Vec<u8>, body: &mut Vec<u8>| {
        sections.insert(name, (body.len() as u64, bytes.len() as u64));
        body.extend_from_slice(&bytes);
    };
    let entries: BTreeMap<String, usize> =
        ecos.iter().map(|(k, v)| (k.clone(), v.values().map(Vec::len).sum())).collect();
    put("vulns".into(), encode(&vulns), &mut body);
    put("cve".into(), encode(&cve), &mut body);
    for (name, idx) in &ecos {
        put(name.clone(), encode(idx), &mut body);
    }
    let meta = Meta {
        schema: SCHEMA,
        built_at: humantime_rfc3339(now_unix),
        built_at_unix: now_unix,
        sources: input.sources,
        vulnerabilities: vulns.len(),
        entries,
        kev: kev_count,
        epss: epss_count,
    };
    let header = serde_json::to_vec(&Header { meta, sections }).unwrap_or_default();
    let mut out = Vec::with_capacity(12 + header.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&body);
    out
}

/// Format seconds since the epoch as RFC 3339 UTC.
pub fn humantime_rfc3339(secs: u64) -> String {
    palisade_model::rfc3339(secs as i64)
}

/// Write `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename.
/// A failure leaves the old database in place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DbError> {
    let io = |e| DbError::Io { path: path.to_path_buf(), error: e };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "db".into()),
        std::process::id()
    ));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(io)
}

/// Largest share (in percent) of vulnerability records a rebuilt database may lose against the
/// one it replaces before [`replace_refusals`] refuses it (override: `allow_shrink`).
pub const MAX_SHRINK_PERCENT: usize = 10;

/// Why a freshly built database must not replace `prev` (empty: it may). `feed_errors` are the
/// per-feed failures of the build (each one refuses); a source group (by name) that yields no
/// records refuses, and so does, unless `allow_shrink`, a group of `prev` that is gone or a total
/// loss of more than [`MAX_SHRINK_PERCENT`] of `prev`'s vulnerability records.
pub fn replace_refusals(prev: Option<&Meta>, new: &Meta, feed_errors: &[String], allow_shrink: bool) -> Vec<String> {
    let mut out: Vec<String> = feed_errors.iter().map(|e| format!("feed error: {e}")).collect();
    let group = |m: &Meta| {
        let mut g: BTreeMap<String, usize> = BTreeMap::new();
        for s in &m.sources {
            *g.entry(s.name.clone()).or_default() += s.records;
        }
        g
    };
    let new_groups = group(new);
    let prev_groups = prev.map(group).unwrap_or_default();
    for (name, n) in &new_groups {
        if *n == 0 {
            match prev_groups.get(name) {
                Some(p) if *p > 0 => {
                    out.push(format!("source {name} yields no records (the current database has {p})"))
                }
                _ if !allow_shrink => out.push(format!("source {name} yields no records")),
                _ => {}
            }
        }
    }
    if let Some(prev) = prev {
        if !allow_shrink {
            for (name, p) in &prev_groups {
                if *p > 0 && !new_groups.contains_key(name) {
                    out.push(format!("source {name} ({p} records in the current database) is missing"));
                }
            }
            let lost = prev.vulnerabilities.saturating_sub(new.vulnerabilities);
            if lost > 0 && lost.saturating_mul(100) > prev.vulnerabilities.saturating_mul(MAX_SHRINK_PERCENT) {
                out.push(format!(
                    "{} vulnerabilities instead of {} (more than {MAX_SHRINK_PERCENT}% fewer; --allow-shrink accepts it)",
                    new.vulnerabilities, prev.vulnerabilities
                ));
            }
        }
    }
    out
}

/// An opened database. Sections are decoded on first use and cached.
#[derive(Debug)]
pub struct VulnDb {
    path: PathBuf,
    header: Header,
    body: Vec<u8>,
    vulns: Vec<VulnInfo>,
    cve: HashMap<String, CveInfo>,
    ecos: Mutex<HashMap<String, Arc<EcoIndex>>>,
}

impl VulnDb {
    /// Open the database at `path`.
    pub fn open(path: &Path) -> Result<VulnDb, DbError> {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(DbError::Missing { path: path.into() }),
            Err(e) => return Err(DbError::Io { path: path.into(), error: e }),
        };
        Self::from_bytes(path, data)
    }

    /// Open from bytes already read (`path` is used in messages).
    pub fn from_bytes(path: &Path, data: Vec<u8>) -> Result<VulnDb, DbError> {
        let fmt = |reason: &str| DbError::Format { path: path.into(), reason: reason.into() };
        if data.len() < 12 || &data[..8] != MAGIC {
            return Err(fmt("bad magic"));
        }
        let hlen = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
        if hlen > MAX_HEADER || 12 + hlen as usize > data.len() {
            return Err(fmt("bad header length"));
        }
        let header: Header =
            serde_json::from_slice(&data[12..12 + hlen as usize]).map_err(|e| fmt(&format!("header: {e}")))?;
        if header.meta.schema != SCHEMA {
            return Err(fmt(&format!("schema {} found", header.meta.schema)));
        }
        let body = data[12 + hlen as usize..].to_vec();
        let mut db = VulnDb {
            path: path.into(),
            header,
            body,
            vulns: Vec::new(),
            cve: HashMap::new(),
            ecos: Mutex::new(HashMap::new()),
        };
        db.vulns = db.section("vulns")?.unwrap_or_default();
        let cve: BTreeMap<String, CveInfo> = db.section("cve")?.unwrap_or_default();
        db.cve = cve.into_iter().collect();
        Ok(db)
    }

    fn section<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>, DbError> {
        let Some(&(off, len)) = self.header.sections.get(name) else { return Ok(None) };
        let fmt = |reason: String| DbError::Format { path: self.path.clone(), reason };
        let end = off
            .checked_add(len)
            .filter(|e| *e as usize <= self.body.len())
            .ok_or_else(|| fmt(format!("section {name} out of bounds")))?;
        let compressed = &self.body[off as usize..end as usize];
        let mut raw = Vec::new();
        let dec = zstd::stream::read::Decoder::new(compressed).map_err(|e| fmt(format!("section {name}: {e}")))?;
        use std::io::Read;
        dec.take(MAX_SECTION as u64).read_to_end(&mut raw).map_err(|e| fmt(format!("section {name}: {e}")))?;
        postcard::from_bytes(&raw).map(Some).map_err(|e| fmt(format!("section {name}: {e}")))
    }

    /// Metadata.
    pub fn meta(&self) -> &Meta {
        &self.header.meta
    }

    /// Path the database was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The index for an ecosystem and release (empty when the database has none).
    pub fn eco(&self, eco: EcoKind, release: &str) -> Result<Arc<EcoIndex>, DbError> {
        let name = section_name(eco, release);
        if let Some(ix) = self.ecos.lock().unwrap_or_else(|e| e.into_inner()).get(&name) {
            return Ok(ix.clone());
        }
        let ix: Arc<EcoIndex> = Arc::new(self.section(&name)?.unwrap_or_default());
        self.ecos.lock().unwrap_or_else(|e| e.into_inner()).insert(name, ix.clone());
        Ok(ix)
    }

    /// Whether the database has any data for an ecosystem and release.
    pub fn has(&self, eco: EcoKind, release: &str) -> bool {
        self.header.sections.contains_key(&section_name(eco, release))
    }

    /// Releases present for a distro ecosystem.
    pub fn releases(&self, eco: EcoKind) -> Vec<String> {
        let prefix = format!("eco:{}:", eco.osv_name());
        self.header.sections.keys().filter_map(|k| k.strip_prefix(&prefix).map(str::to_string)).collect()
    }

    /// Vulnerability details by index.
    pub fn vuln(&self, idx: u32) -> Option<&VulnInfo> {
        self.vulns.get(idx as usize)
    }

    /// All vulnerability records.
    pub fn vulns(&self) -> &[VulnInfo] {
        &self.vulns
    }

    /// Enrichment for a CVE.
    pub fn cve(&self, id: &str) -> Option<&CveInfo> {
        self.cve.get(id)
    }
}

/// The default database path: `$PALISADE_CACHE_DIR`, else `$XDG_CACHE_HOME/palisade`, else `~/.cache/palisade`, + `/db/palisade.db`.
pub fn default_path() -> PathBuf {
    let base = std::env::var_os("PALISADE_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|p| PathBuf::from(p).join("palisade")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/palisade")))
        .unwrap_or_else(|| PathBuf::from(".palisade-cache"));
    base.join("db").join("palisade.db")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Event, Range, RangeKind, Status};

    fn adv(id: &str, aliases: &[&str], eco: EcoKind, pkg: &str) -> Advisory {
        Advisory {
            id: id.into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            summary: format!("{id} summary"),
            severity: None,
            cvss: vec![],
            published: None,
            modified: None,
            withdrawn: false,
            references: vec![],
            affected: vec![Affected {
                ecosystem: eco,
                release: String::new(),
                package: pkg.into(),
                ranges: vec![Range {
                    kind: RangeKind::Ecosystem,
                    events: vec![Event::Introduced("0".into()), Event::Fixed("2.0".into())],
                }],
                versions: vec![],
                status: Status::Fixed,
                severity: None,
            }],
            source: "osv".into(),
        }
    }

    #[test]
    fn round_trip_with_alias_groups_and_sections() {
        let mut w = adv("GHSA-1", &["CVE-1"], EcoKind::PyPI, "Py_YAML");
        w.withdrawn = true;
        let input = BuildInput {
            advisories: vec![
                adv("PYSEC-1", &["CVE-1"], EcoKind::PyPI, "PyYAML"),
                adv("GHSA-x", &["CVE-1", "CVE-2"], EcoKind::PyPI, "pyyaml"),
                adv("RUSTSEC-1", &[], EcoKind::CratesIo, "smallvec"),
                w,
            ],
            kev: vec![KevEntry {
                cve: "CVE-1".into(),
                date_added: "2024-01-01".into(),
                due_date: "2024-01-22".into(),
                ransomware: false,
                required_action: "patch".into(),
            }],
            epss: vec![("CVE-1".into(), Epss { score: 0.5, percentile: 0.9 })],
            sources: vec![],
        };
        let bytes = build(input, 1_700_000_000);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("sub/palisade.db");
        write_atomic(&p, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let db = VulnDb::open(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(db.meta().vulnerabilities, 3, "withdrawn records are dropped");
        assert_eq!(db.meta().built_at, "2023-11-14T22:13:20Z");
        let py = db.eco(EcoKind::PyPI, "").unwrap_or_else(|e| panic!("{e}"));
        let entries = py.get("pyyaml").cloned().unwrap_or_default();
        assert_eq!(entries.len(), 2);
        let g: Vec<u32> = entries.iter().filter_map(|e| db.vuln(e.vuln)).map(|v| v.group).collect();
        assert_eq!(g[0], g[1], "PYSEC-1 and GHSA-x share CVE-1");
        let rs = db.eco(EcoKind::CratesIo, "").unwrap_or_else(|e| panic!("{e}"));
        let r = &rs["smallvec"][0];
        assert_ne!(db.vuln(r.vuln).map(|v| v.group), Some(g[0]));
        assert!(db.cve("CVE-1").is_some_and(|c| c.kev.is_some() && c.epss.is_some()));
        assert!(db.eco(EcoKind::Npm, "").unwrap_or_else(|e| panic!("{e}")).is_empty());
        assert!(!db.has(EcoKind::Npm, ""));
    }

    #[test]
    fn corrupt_files_are_format_errors() {
        let bytes = build(BuildInput::default(), 0);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for cut in [0, 5, 11, 13, bytes.len() - 1] {
            let r = VulnDb::from_bytes(dir.path(), bytes[..cut].to_vec());
            assert!(r.is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let n = flipped.len();
        flipped[n - 3] ^= 0xff;
        let _ = VulnDb::from_bytes(dir.path(), flipped);
        assert!(matches!(VulnDb::open(&dir.path().join("none")), Err(DbError::Missing { .. })));
    }

    fn meta_of(sources: &[(&str, usize)], vulns: usize) -> Meta {
        Meta {
            schema: SCHEMA,
            built_at: String::new(),
            built_at_unix: 0,
            sources: sources
                .iter()
                .map(|(n, r)| SourceInfo { name: n.to_string(), path: String::new(), records: *r, skipped: 0 })
                .collect(),
            vulnerabilities: vulns,
            entries: BTreeMap::new(),
            kev: 0,
            epss: 0,
        }
    }

    #[test]
    fn broken_rebuild_is_refused() {
        let prev = meta_of(&[("osv:Go", 4291), ("alpine-secdb:3.10", 600), ("alpine-secdb:3.10", 100)], 15452);
        // Same groups, similar size: accepted.
        let ok = meta_of(&[("osv:Go", 4290), ("alpine-secdb:3.10", 700)], 15400);
        assert!(replace_refusals(Some(&prev), &ok, &[], false).is_empty());
        // A feed error always refuses, even with --allow-shrink.
        let r = replace_refusals(Some(&prev), &ok, &["all.zip: decompressed size exceeds".into()], true);
        assert_eq!(r.len(), 1, "{r:?}");
        // A group that yields nothing refuses, even with --allow-shrink.
        let empty = meta_of(&[("osv:Go", 0), ("alpine-secdb:3.10", 700)], 15000);
        let r = replace_refusals(Some(&prev), &empty, &[], true);
        assert!(r.iter().any(|m| m.contains("osv:Go") && m.contains("4291")), "{r:?}");
        // Losing a group or >10% of the records refuses unless allowed.
        let shrunk = meta_of(&[("alpine-secdb:3.10", 700)], 1696);
        let r = replace_refusals(Some(&prev), &shrunk, &[], false);
        assert!(r.iter().any(|m| m.contains("osv:Go") && m.contains("missing")), "{r:?}");
        assert!(r.iter().any(|m| m.contains("1696 vulnerabilities instead of 15452")), "{r:?}");
        assert!(replace_refusals(Some(&prev), &shrunk, &[], true).is_empty());
        // Exactly at the threshold is fine; one more is not.
        assert!(replace_refusals(Some(&meta_of(&[], 100)), &meta_of(&[], 90), &[], false).is_empty());
        assert_eq!(replace_refusals(Some(&meta_of(&[], 100)), &meta_of(&[], 89), &[], false).len(), 1);
        // No previous database: only errors and empty groups count.
        assert!(replace_refusals(None, &shrunk, &[], false).is_empty());
        assert_eq!(replace_refusals(None, &empty, &[], false).len(), 1);
    }
}
