//! `palisade db update`: download the feeds from their upstream locations (or
//! mirrors), resuming interrupted transfers, verifying sizes, and reusing what
//! has not changed (ETag / Last-Modified). A download replaces the previous
//! copy of a feed only once it is complete and parses; a feed that fails keeps
//! its previous copy, so an update can degrade but never break the database.

use crate::feed::{self, FeedKind, FeedSet};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One downloadable feed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Group (`osv`, `debian`, `alpine`, `kev`, `epss`): the unit of mirroring.
    pub group: &'static str,
    /// Path relative to the group's base URL; also the local file name under the feed directory.
    pub rel: String,
    /// Format.
    pub kind: FeedKind,
}

/// Default base URL of each group.
pub fn default_base(group: &str) -> &'static str {
    match group {
        "osv" => "https://osv-vulnerabilities.storage.googleapis.com",
        "debian" => "https://security-tracker.debian.org",
        "alpine" => "https://secdb.alpinelinux.org",
        "kev" => "https://www.cisa.gov/sites/default/files/feeds",
        "epss" => "https://epss.cyentia.com",
        _ => "",
    }
}

/// OSV ecosystems downloaded by default.
pub const OSV_ECOSYSTEMS: [&str; 11] =
    ["Go", "crates.io", "PyPI", "npm", "Maven", "RubyGems", "Packagist", "NuGet", "Debian", "Ubuntu", "Alpine"];
/// Alpine releases whose secdb is downloaded.
pub const ALPINE_RELEASES: [&str; 13] = [
    "v3.10", "v3.11", "v3.12", "v3.13", "v3.14", "v3.15", "v3.16", "v3.17", "v3.18", "v3.19", "v3.20", "v3.21", "edge",
];

/// Every default source.
pub fn default_sources() -> Vec<Source> {
    let mut v = Vec::new();
    for e in OSV_ECOSYSTEMS {
        v.push(Source { group: "osv", rel: format!("{e}/all.zip"), kind: FeedKind::OsvZip });
    }
    v.push(Source { group: "debian", rel: "tracker/data/json".into(), kind: FeedKind::DebianTracker });
    for r in ALPINE_RELEASES {
        for repo in ["main", "community"] {
            v.push(Source { group: "alpine", rel: format!("{r}/{repo}.json"), kind: FeedKind::AlpineSecdb });
        }
    }
    v.push(Source { group: "kev", rel: "known_exploited_vulnerabilities.json".into(), kind: FeedKind::Kev });
    v.push(Source { group: "epss", rel: "epss_scores-current.csv.gz".into(), kind: FeedKind::Epss });
    v
}

/// Options of an update.
#[derive(Debug, Clone)]
pub struct UpdateOptions {
    /// Where downloads are kept.
    pub dir: PathBuf,
    /// Base URL per group, overriding the defaults.
    pub mirrors: BTreeMap<String, String>,
    /// Only these groups (empty = all).
    pub only: Vec<String>,
    /// Attempts per file (each resumes where the last stopped).
    pub retries: u32,
    /// Base backoff between attempts.
    pub backoff: Duration,
    /// Show progress on stderr.
    pub progress: bool,
    /// The sources (default: [`default_sources`]).
    pub sources: Vec<Source>,
}

impl UpdateOptions {
    /// Defaults for `dir`.
    pub fn new(dir: PathBuf) -> Self {
        UpdateOptions {
            dir,
            mirrors: BTreeMap::new(),
            only: Vec::new(),
            retries: 4,
            backoff: Duration::from_millis(300),
            progress: false,
            sources: default_sources(),
        }
    }

    fn url(&self, s: &Source) -> String {
        let base = self.mirrors.get(s.group).map(String::as_str).unwrap_or_else(|| default_base(s.group));
        format!("{}/{}", base.trim_end_matches('/'), s.rel)
    }
}

/// Why an update failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The feed directory could not be used.
    #[error("{}: {error}", path.display())]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        error: std::io::Error,
    },
    /// No source could be downloaded and none was downloaded before.
    #[error("no feed could be downloaded: {0}")]
    Nothing(String),
    /// An unknown group was named.
    #[error("unknown source group {0:?} (osv, debian, alpine, kev, epss)")]
    UnknownGroup(String),
}

/// What an update did.
#[derive(Debug, Default)]
pub struct UpdateOutcome {
    /// Parsed feeds.
    pub sets: Vec<FeedSet>,
    /// Files downloaded in full or resumed.
    pub downloaded: usize,
    /// Files reused (not modified upstream, or kept after a failure).
    pub reused: usize,
    /// Problems.
    pub warnings: Vec<String>,
}

/// Why one file could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// HTTP error status.
    #[error("{url}: HTTP {status}")]
    Status {
        /// URL.
        url: String,
        /// Status code.
        status: u16,
    },
    /// Connection or read failure after all attempts.
    #[error("{url}: {reason}")]
    Transfer {
        /// URL.
        url: String,
        /// Cause.
        reason: String,
    },
    /// The host could not be reached at all (not retried).
    #[error("{url}: unreachable: {reason}")]
    Unreachable {
        /// URL.
        url: String,
        /// Cause.
        reason: String,
    },
    /// Local file error.
    #[error("{}: {error}", path.display())]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        error: std::io::Error,
    },
}

/// Result of a fetch.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// A new complete file is at the returned `.part` path (not yet moved into place).
    New(PathBuf),
    /// The server says the file has not changed.
    NotModified,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
    size: u64,
}

fn meta_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".meta");
    PathBuf::from(s)
}

fn part_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// Download `url` towards `dest`, resuming a `.part` file left by an interrupted attempt.
pub fn fetch(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    retries: u32,
    backoff: Duration,
) -> Result<Fetched, FetchError> {
    let io = |p: &Path, e| FetchError::Io { path: p.to_path_buf(), error: e };
    let part = part_path(dest);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    let old: Validators = if dest.exists() {
        std::fs::read(meta_path(dest)).ok().and_then(|d| serde_json::from_slice(&d).ok()).unwrap_or_default()
    } else {
        Validators::default()
    };
    let mut last_err = String::new();
    for attempt in 0..retries.max(1) {
        if attempt > 0 {
            std::thread::sleep(backoff * attempt);
        }
        let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        let mut req = agent.get(url);
        if have > 0 {
            req = req.set("Range", &format!("bytes={have}-"));
        } else {
            if let Some(e) = &old.etag {
                req = req.set("If-None-Match", e);
            }
            if let Some(lm) = &old.last_modified {
                req = req.set("If-Modified-Since", lm);
            }
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(416, _)) => {
                // Our partial file is not a prefix of what the server has: start over.
                let _ = std::fs::remove_file(&part);
                last_err = "HTTP 416 on resume".into();
                continue;
            }
            Err(ureq::Error::Status(code, _)) if code == 429 || code >= 500 => {
                last_err = format!("HTTP {code}");
                continue;
            }
            Err(ureq::Error::Status(code, _)) => return Err(FetchError::Status { url: url.into(), status: code }),
            Err(ureq::Error::Transport(t))
                if matches!(t.kind(), ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns) =>
            {
                return Err(FetchError::Unreachable { url: url.into(), reason: t.to_string() });
            }
            Err(ureq::Error::Transport(t)) => {
                last_err = t.to_string();
                continue;
            }
        };
        if resp.status() == 304 {
            return Ok(Fetched::NotModified);
        }
        let etag = resp.header("etag").map(str::to_string);
        let last_modified = resp.header("last-modified").map(str::to_string);
        let (mut file, start, total) = if resp.status() == 206 {
            // Content-Range: bytes START-END/TOTAL
            let cr = resp.header("content-range").unwrap_or("").to_string();
            let start = cr.strip_prefix("bytes ").and_then(|r| r.split('-').next()).and_then(|s| s.parse::<u64>().ok());
            let total = cr.rsplit('/').next().and_then(|t| t.parse::<u64>().ok());
            if start != Some(have) {
                let _ = std::fs::remove_file(&part);
                last_err = format!("bad Content-Range {cr:?} for resume at {have}");
                continue;
            }
            let f = std::fs::OpenOptions::new().append(true).open(&part).map_err(|e| io(&part, e))?;
            (f, have, total)
        } else {
            let total = resp.header("content-length").and_then(|l| l.parse::<u64>().ok());
            let f = std::fs::File::create(&part).map_err(|e| io(&part, e))?;
            (f, 0, total)
        };
        let mut reader = resp.into_reader();
        let mut buf = vec![0u8; 256 * 1024];
        let mut written = start;
        let read_result: Result<(), String> = loop {
            match reader.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    file.write_all(&buf[..n]).map_err(|e| io(&part, e))?;
                    written += n as u64;
                }
                Err(e) => break Err(e.to_string()),
            }
        };
        file.sync_all().map_err(|e| io(&part, e))?;
        if let Err(e) = read_result {
            last_err = format!("transfer interrupted at {written} bytes: {e}");
            tracing::warn!(%url, written, "download interrupted; resuming");
            continue;
        }
        if let Some(t) = total {
            if written != t {
                last_err = format!("size mismatch: expected {t} bytes, have {written}");
                if written > t {
                    let _ = std::fs::remove_file(&part);
                }
                continue;
            }
        }
        let v = Validators { etag, last_modified, size: written };
        let _ = std::fs::write(meta_path(&part), serde_json::to_vec(&v).unwrap_or_default());
        return Ok(Fetched::New(part));
    }
    Err(FetchError::Transfer { url: url.into(), reason: last_err })
}

/// Download every selected source and parse it.
pub fn update(opts: &UpdateOptions) -> Result<UpdateOutcome, UpdateError> {
    for g in &opts.only {
        if default_base(g).is_empty() {
            return Err(UpdateError::UnknownGroup(g.clone()));
        }
    }
    std::fs::create_dir_all(&opts.dir).map_err(|e| UpdateError::Io { path: opts.dir.clone(), error: e })?;
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(20))
        .timeout_read(Duration::from_secs(120))
        .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")))
        .build();
    let mut out = UpdateOutcome::default();
    let mut errors = Vec::new();
    let mut unreachable: Vec<&str> = Vec::new();
    for s in &opts.sources {
        if !opts.only.is_empty() && !opts.only.iter().any(|g| g == s.group) {
            continue;
        }
        let url = opts.url(s);
        let dest = opts.dir.join(s.group).join(&s.rel);
        if opts.progress {
            eprintln!("fetching {url}");
        }
        let fetched = if unreachable.contains(&s.group) {
            Err(FetchError::Unreachable { url: url.clone(), reason: "host unreachable earlier in this update".into() })
        } else {
            fetch(&agent, &url, &dest, opts.retries, opts.backoff)
        };
        if let Err(FetchError::Unreachable { .. }) = &fetched {
            if !unreachable.contains(&s.group) {
                unreachable.push(s.group);
            }
        }
        let fresh = match fetched {
            Ok(Fetched::New(part)) => Some(part),
            Ok(Fetched::NotModified) => None,
            Err(FetchError::Status { status: 404, .. }) if s.group == "alpine" || s.group == "osv" => {
                // Not every release / ecosystem exists on every mirror.
                tracing::debug!(%url, "not found; skipped");
                continue;
            }
            Err(e) => {
                let msg = if dest.exists() { format!("{e}; using the previous download") } else { e.to_string() };
                out.warnings.push(msg);
                errors.push(e.to_string());
                None
            }
        };
        if let Some(part) = fresh {
            match std::fs::read(&part)
                .map_err(|e| e.to_string())
                .and_then(|d| feed::parse_file(s.kind, &s.rel, &d).map_err(|e| e.to_string()))
            {
                Ok(set) => {
                    let _ = std::fs::rename(meta_path(&part), meta_path(&dest));
                    if let Err(e) = std::fs::rename(&part, &dest) {
                        out.warnings.push(format!("{}: {e}", dest.display()));
                    }
                    out.downloaded += 1;
                    out.sets.push(set);
                    continue;
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&part);
                    out.warnings
                        .push(format!("{url}: downloaded file does not parse ({e}); keeping the previous copy"));
                }
            }
        }
        if dest.exists() {
            match std::fs::read(&dest)
                .map_err(|e| e.to_string())
                .and_then(|d| feed::parse_file(s.kind, &s.rel, &d).map_err(|e| e.to_string()))
            {
                Ok(set) => {
                    out.reused += 1;
                    out.sets.push(set);
                }
                Err(e) => out.warnings.push(format!("{}: {e}", dest.display())),
            }
        }
    }
    if out.sets.is_empty() {
        return Err(UpdateError::Nothing(errors.join("; ")));
    }
    Ok(out)
}
