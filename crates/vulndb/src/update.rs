//! `palisade db update`: download the feeds from their upstream locations (or
//! mirrors), resuming interrupted transfers, verifying sizes, and reusing what
//! has not changed (ETag / Last-Modified). A download replaces the previous
//! copy of a feed only once it is complete, parses and is not empty; a source
//! that fails (any HTTP error, 404 included, a transfer error, the size cap, a
//! file that does not parse, a valid but empty file) keeps its previous copy
//! with a warning naming it, so an update can degrade but never silently shrink.
//!
//! Every request goes through [`palisade_net::Client`] (hand-followed redirects,
//! an overall deadline per request, one retry policy). Each download is capped
//! at [`UpdateOptions::max_bytes`] ([`MAX_DOWNLOAD_BYTES`] by default).
//!
//! Files under the feed directory, per source: `DEST` (the last good copy),
//! `DEST.meta` (its ETag / Last-Modified, for `If-None-Match` / `If-Modified-Since`),
//! and while a download is in progress `DEST.part` with `DEST.part.meta` (the
//! validators of the partial, sent as `If-Range` when resuming). The `.part` pair
//! is removed on every outcome except an interrupted transfer that can resume.

use crate::feed::{self, FeedKind, FeedSet};
use palisade_net::{Client, ClientOptions, NetError, Request, RetryPolicy, TransportKind};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest file one source may download: 1 GiB. The largest upstream feed file
/// (an OSV ecosystem archive, Debian's tracker JSON) is far below it; a response
/// beyond it is a broken or hostile server. The source then fails (the partial
/// file is removed and the previous copy kept).
pub const MAX_DOWNLOAD_BYTES: u64 = 1 << 30;

/// Overall deadline of one download request (connect, head and body). A
/// transfer cut by it resumes on the next attempt.
pub const DOWNLOAD_DEADLINE: Duration = Duration::from_secs(10 * 60);

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
    /// Refresh only these groups (empty = all); the other sources contribute their previous copies.
    pub only: Vec<String>,
    /// Attempts per file (each resumes where the last stopped).
    pub retries: u32,
    /// Base backoff between attempts.
    pub backoff: Duration,
    /// Show progress on stderr.
    pub progress: bool,
    /// The sources (default: [`default_sources`]).
    pub sources: Vec<Source>,
    /// Most bytes one file may have (default [`MAX_DOWNLOAD_BYTES`]).
    pub max_bytes: u64,
    /// Overall deadline of one request (default [`DOWNLOAD_DEADLINE`]).
    pub deadline: Duration,
    /// Deadline of the whole update, every source and retry (default [`UPDATE_DEADLINE`]).
    /// Sources not fetched in time contribute their previous copies, with a warning.
    pub overall: Duration,
}

/// Default of [`UpdateOptions::overall`].
pub const UPDATE_DEADLINE: Duration = Duration::from_secs(2 * 3600);

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
            max_bytes: MAX_DOWNLOAD_BYTES,
            deadline: DOWNLOAD_DEADLINE,
            overall: UPDATE_DEADLINE,
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
    /// Files reused (not modified upstream, kept after a failure, or not selected by `only`).
    pub reused: usize,
    /// Problems.
    pub warnings: Vec<String>,
    /// Sources (`group/rel`) that were to be refreshed but could not be: each also has a
    /// warning, and its previous copy (if any) is in `sets`.
    pub failed: Vec<String>,
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
    /// The file is larger than the cap; the partial download was removed.
    #[error("{url}: larger than the {limit}-byte download cap; partial file removed")]
    TooLarge {
        /// URL.
        url: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// The server answered 304 Not Modified to a request that was not conditional.
    #[error("{url}: HTTP 304 Not Modified to a request without If-None-Match / If-Modified-Since")]
    UnaskedNotModified {
        /// URL.
        url: String,
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
    /// A new complete file is at the returned `.part` path (not yet moved into place): move it
    /// with [`commit_part`] or drop it with [`discard_part`].
    New(PathBuf),
    /// The server says the file has not changed (only ever after a conditional request).
    NotModified,
}

/// How one file is fetched.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Retries (attempts, backoff, which statuses).
    pub policy: RetryPolicy,
    /// Most bytes the file may have.
    pub max_bytes: u64,
    /// Overall deadline of each request.
    pub deadline: Duration,
    /// Send `If-None-Match` / `If-Modified-Since` from the previous copy's validators.
    pub conditional: bool,
    /// No request (or retry) starts after this, and none runs past it.
    pub until: Option<std::time::Instant>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            policy: RetryPolicy::default(),
            max_bytes: MAX_DOWNLOAD_BYTES,
            deadline: DOWNLOAD_DEADLINE,
            conditional: true,
            until: None,
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Validators {
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
    #[serde(default)]
    size: u64,
}

impl Validators {
    /// The value for `If-Range`: a strong ETag, else Last-Modified (RFC 9110 §13.1.5).
    fn if_range(&self) -> Option<&str> {
        match &self.etag {
            Some(e) if !e.starts_with("W/") => Some(e),
            _ => self.last_modified.as_deref(),
        }
    }
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

fn read_validators(path: &Path) -> Option<Validators> {
    std::fs::read(path).ok().and_then(|d| serde_json::from_slice(&d).ok())
}

/// Remove the `.part` file of `dest` and its `.part.meta`.
pub fn discard_part(dest: &Path) {
    let part = part_path(dest);
    let _ = std::fs::remove_file(meta_path(&part));
    let _ = std::fs::remove_file(&part);
}

/// Move a complete `.part` download of `dest` into place, with its validators as `dest.meta`.
pub fn commit_part(dest: &Path) -> std::io::Result<()> {
    let part = part_path(dest);
    let part_meta = meta_path(&part);
    // The old validators describe the old file: drop them first, so a crash in between can only
    // cost a full download, never a 304 for a file we do not have.
    let _ = std::fs::remove_file(meta_path(dest));
    if let Err(e) = std::fs::rename(&part, dest) {
        discard_part(dest);
        return Err(e);
    }
    if std::fs::rename(&part_meta, meta_path(dest)).is_err() {
        let _ = std::fs::remove_file(&part_meta);
    }
    Ok(())
}

/// The partial download of `dest`, if it can be resumed: it must have a `.part.meta` with a
/// validator to send as `If-Range`. Anything else (a `.part` without usable validators, a
/// `.part.meta` without a `.part`) is removed.
fn resumable_partial(dest: &Path) -> Option<Validators> {
    let part = part_path(dest);
    let len = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    match read_validators(&meta_path(&part)) {
        Some(v) if len > 0 && v.if_range().is_some() => Some(v),
        _ => {
            discard_part(dest);
            None
        }
    }
}

/// `bytes START-END/TOTAL` → (START, TOTAL).
fn content_range(v: &str) -> (Option<u64>, Option<u64>) {
    let r = v.trim().strip_prefix("bytes ").unwrap_or("");
    let start = r.split('-').next().and_then(|s| s.trim().parse::<u64>().ok());
    let total = r.rsplit('/').next().and_then(|t| t.trim().parse::<u64>().ok());
    (start, total)
}

/// Download `url` towards `dest` (as `dest.part`), resuming a `.part` file left by an
/// interrupted attempt with `Range` + `If-Range`. A `200` answer restarts from zero; a file
/// beyond `opts.max_bytes` fails with [`FetchError::TooLarge`] and leaves nothing behind.
pub fn fetch(client: &Client, url: &str, dest: &Path, opts: &FetchOptions) -> Result<Fetched, FetchError> {
    let io = |p: &Path, e| FetchError::Io { path: p.to_path_buf(), error: e };
    let part = part_path(dest);
    let part_meta = meta_path(&part);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    let cached: Validators = if opts.conditional && dest.is_file() {
        read_validators(&meta_path(dest)).unwrap_or_default()
    } else {
        Validators::default()
    };
    let mut partial = resumable_partial(dest);
    let mut last_err = String::new();
    let mut retry_after: Option<String> = None;
    let attempts = opts.policy.max_attempts.max(1);
    for attempt in 0..attempts {
        if attempt > 0 {
            let mut wait = opts.policy.wait(attempt, retry_after.take().as_deref());
            if let Some(until) = opts.until {
                wait = wait.min(until.saturating_duration_since(std::time::Instant::now()));
            }
            std::thread::sleep(wait);
        }
        let have = if partial.is_some() { std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) } else { 0 };
        let mut deadline = opts.deadline;
        if let Some(until) = opts.until {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                discard_part(dest);
                return Err(FetchError::Transfer {
                    url: url.into(),
                    reason: format!("the update deadline passed ({last_err})"),
                });
            }
            deadline = deadline.min(left);
        }
        let mut req = Request::get(url).deadline(deadline);
        let mut conditional = false;
        match partial.as_ref().and_then(Validators::if_range) {
            Some(validator) if have > 0 => {
                req = req.header("Range", &format!("bytes={have}-")).header("If-Range", validator);
            }
            _ => {
                if let Some(e) = &cached.etag {
                    req = req.header("If-None-Match", e);
                    conditional = true;
                }
                if let Some(lm) = &cached.last_modified {
                    req = req.header("If-Modified-Since", lm);
                    conditional = true;
                }
            }
        }
        let resp = match client.send(req) {
            Ok(r) => r,
            Err(NetError::Transport { kind: TransportKind::Dns | TransportKind::Connect, message, .. }) => {
                return Err(FetchError::Unreachable { url: url.into(), reason: message });
            }
            Err(e) if e.is_transient() => {
                last_err = e.to_string();
                continue;
            }
            Err(e) => {
                discard_part(dest);
                return Err(FetchError::Transfer { url: url.into(), reason: e.to_string() });
            }
        };
        let status = resp.status();
        let (mut file, start, total, validators) = match status {
            304 if conditional => {
                discard_part(dest);
                return Ok(Fetched::NotModified);
            }
            304 if have > 0 => {
                // Not an answer to Range + If-Range: start over without the partial.
                discard_part(dest);
                partial = None;
                last_err = "HTTP 304 to a ranged request".into();
                continue;
            }
            304 => {
                discard_part(dest);
                return Err(FetchError::UnaskedNotModified { url: url.into() });
            }
            416 => {
                // Our partial file is not a prefix of what the server has: start over.
                discard_part(dest);
                partial = None;
                last_err = "HTTP 416 on resume".into();
                continue;
            }
            s if opts.policy.retryable_status(s) => {
                last_err = format!("HTTP {s}");
                retry_after = resp.header("retry-after").map(str::to_string);
                continue;
            }
            206 => {
                let (start, total) = content_range(resp.header("content-range").unwrap_or(""));
                let same = match (&partial, resp.header("etag")) {
                    (Some(p), Some(e)) => p.etag.as_deref().is_none_or(|pe| pe == e),
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if have == 0 || start != Some(have) || !same {
                    // A range we did not ask for, or of another version of the file.
                    discard_part(dest);
                    partial = None;
                    last_err = format!(
                        "unusable 206 answer (Content-Range {:?}) for resume at {have}",
                        resp.header("content-range").unwrap_or("")
                    );
                    continue;
                }
                let v = partial.clone().unwrap_or_default();
                let f = std::fs::OpenOptions::new().append(true).open(&part).map_err(|e| io(&part, e))?;
                (f, have, total, v)
            }
            200 => {
                // A full answer, also to a ranged request (If-Range did not match): from zero.
                discard_part(dest);
                let total = resp.content_length();
                let v = Validators {
                    etag: resp.header("etag").map(str::to_string),
                    last_modified: resp.header("last-modified").map(str::to_string),
                    size: total.unwrap_or(0),
                };
                let f = std::fs::File::create(&part).map_err(|e| io(&part, e))?;
                if v.if_range().is_some() {
                    // Only a partial with a validator can be resumed safely.
                    let data = serde_json::to_vec(&v).unwrap_or_default();
                    std::fs::write(&part_meta, data).map_err(|e| io(&part_meta, e))?;
                }
                (f, 0, total, v)
            }
            s => {
                discard_part(dest);
                return Err(FetchError::Status { url: url.into(), status: s });
            }
        };
        if total.is_some_and(|t| t > opts.max_bytes) {
            drop(file);
            discard_part(dest);
            return Err(FetchError::TooLarge { url: url.into(), limit: opts.max_bytes });
        }
        let mut reader = resp.into_reader_capped(opts.max_bytes.saturating_sub(start));
        let mut buf = vec![0u8; 256 * 1024];
        let mut written = start;
        let read_result: Result<(), String> = loop {
            match reader.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if let Err(e) = file.write_all(&buf[..n]) {
                        // Most likely a full disk: free what we wrote.
                        drop(file);
                        discard_part(dest);
                        return Err(io(&part, e));
                    }
                    written += n as u64;
                }
                Err(e) => break Err(e.to_string()),
            }
        };
        if let Err(e) = read_result {
            drop(file);
            if written >= opts.max_bytes {
                discard_part(dest);
                return Err(FetchError::TooLarge { url: url.into(), limit: opts.max_bytes });
            }
            last_err = format!("transfer interrupted at {written} bytes: {e}");
            if validators.if_range().is_some() {
                tracing::warn!(%url, written, "download interrupted; resuming");
                partial = Some(validators);
            } else {
                discard_part(dest);
                partial = None;
            }
            continue;
        }
        if let Err(e) = file.sync_all() {
            drop(file);
            discard_part(dest);
            return Err(io(&part, e));
        }
        drop(file);
        if let Some(t) = total {
            if written != t {
                last_err = format!("size mismatch: expected {t} bytes, have {written}");
                if written > t || validators.if_range().is_none() {
                    discard_part(dest);
                    partial = None;
                } else {
                    partial = Some(validators);
                }
                continue;
            }
        }
        let v = Validators { size: written, ..validators };
        std::fs::write(&part_meta, serde_json::to_vec(&v).unwrap_or_default()).map_err(|e| io(&part_meta, e))?;
        return Ok(Fetched::New(part));
    }
    // Out of attempts: a partial with validators stays for the next run to resume.
    if partial.is_none() {
        discard_part(dest);
    }
    Err(FetchError::Transfer { url: url.into(), reason: last_err })
}

fn is_empty(set: &FeedSet) -> bool {
    set.advisories.is_empty() && set.kev.is_empty() && set.epss.is_empty()
}

fn records(set: &FeedSet) -> usize {
    set.advisories.len() + set.kev.len() + set.epss.len()
}

fn source_names(set: &FeedSet) -> String {
    let names: Vec<&str> = set.sources.iter().map(|s| s.name.as_str()).collect();
    if names.is_empty() {
        "no source".into()
    } else {
        names.join(", ")
    }
}

/// Parse the previous copy of a source, if there is one.
fn load_previous(s: &Source, dest: &Path) -> Result<FeedSet, String> {
    match std::fs::read(dest) {
        Ok(d) => feed::parse_file(s.kind, &s.rel, &d).map_err(|e| format!("the previous copy does not parse: {e}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("no previous copy".into()),
        Err(e) => Err(format!("the previous copy is unreadable: {e}")),
    }
}

/// Download every selected source and parse it; sources not selected by `only`, and selected
/// ones that fail, contribute their previous copies.
pub fn update(opts: &UpdateOptions) -> Result<UpdateOutcome, UpdateError> {
    for g in &opts.only {
        if default_base(g).is_empty() {
            return Err(UpdateError::UnknownGroup(g.clone()));
        }
    }
    std::fs::create_dir_all(&opts.dir).map_err(|e| UpdateError::Io { path: opts.dir.clone(), error: e })?;
    let client = Client::new(ClientOptions {
        connect_timeout: Duration::from_secs(20),
        deadline: opts.deadline,
        ..ClientOptions::default()
    });
    let fetch_opts = FetchOptions {
        policy: RetryPolicy {
            max_attempts: opts.retries.max(1),
            base: opts.backoff,
            max_wait: Duration::from_secs(30),
            retry_transport: true,
        },
        max_bytes: opts.max_bytes,
        deadline: opts.deadline,
        conditional: true,
        until: Some(std::time::Instant::now() + opts.overall),
    };
    let mut out = UpdateOutcome::default();
    let mut errors = Vec::new();
    let mut unreachable: Vec<&str> = Vec::new();
    for s in &opts.sources {
        let label = format!("{}/{}", s.group, s.rel);
        let dest = opts.dir.join(s.group).join(&s.rel);
        if !opts.only.is_empty() && !opts.only.iter().any(|g| g == s.group) {
            // Not refreshed this time: the database is still built with the previous copy.
            match load_previous(s, &dest) {
                Ok(set) => {
                    out.reused += 1;
                    out.sets.push(set);
                }
                Err(e) if dest.exists() => out.warnings.push(format!("{label}: {e}; left out")),
                Err(_) => {}
            }
            continue;
        }
        let url = opts.url(s);
        if opts.progress {
            eprintln!("fetching {url}");
        }
        let mut fo = fetch_opts.clone();
        // Why the fresh copy is not used (None: it is).
        let failure: Option<String> = loop {
            let fetched = if unreachable.contains(&s.group) {
                Err(FetchError::Unreachable {
                    url: url.clone(),
                    reason: "host unreachable earlier in this update".into(),
                })
            } else {
                fetch(&client, &url, &dest, &fo)
            };
            if let Err(FetchError::Unreachable { .. }) = &fetched {
                if !unreachable.contains(&s.group) {
                    unreachable.push(s.group);
                }
            }
            match fetched {
                Ok(Fetched::New(part)) => {
                    let parsed = std::fs::read(&part)
                        .map_err(|e| e.to_string())
                        .and_then(|d| feed::parse_file(s.kind, &s.rel, &d).map_err(|e| e.to_string()));
                    match parsed {
                        Err(e) => {
                            discard_part(&dest);
                            break Some(format!("{url}: downloaded file does not parse ({e})"));
                        }
                        Ok(set) if is_empty(&set) && load_previous(s, &dest).is_ok_and(|p| !is_empty(&p)) => {
                            discard_part(&dest);
                            break Some(format!("{url}: the download is valid but has no records"));
                        }
                        Ok(set) => {
                            if let Err(e) = commit_part(&dest) {
                                // The parsed data is still good for this build.
                                out.warnings.push(format!("{label}: {}: {e}", dest.display()));
                            }
                            out.downloaded += 1;
                            out.sets.push(set);
                            break None;
                        }
                    }
                }
                Ok(Fetched::NotModified) => match load_previous(s, &dest) {
                    Ok(set) => {
                        out.reused += 1;
                        out.sets.push(set);
                        break None;
                    }
                    Err(e) if fo.conditional => {
                        // 304 but nothing usable to reuse: ask again, unconditionally.
                        tracing::warn!(source = %label, "not modified, but {e}; downloading it again");
                        fo.conditional = false;
                        continue;
                    }
                    Err(e) => break Some(format!("{url}: not modified, but {e}")),
                },
                Err(FetchError::Status { status: 404, .. })
                    if (s.group == "alpine" || s.group == "osv") && !dest.exists() =>
                {
                    // Not every release / ecosystem exists on every mirror, and nothing is lost.
                    tracing::debug!(%url, "not found; skipped");
                    break Some(String::new());
                }
                Err(e) => {
                    errors.push(e.to_string());
                    break Some(e.to_string());
                }
            }
        };
        let Some(why) = failure else { continue };
        if why.is_empty() {
            continue;
        }
        out.failed.push(label.clone());
        match load_previous(s, &dest) {
            Ok(set) => {
                out.warnings.push(format!(
                    "{label}: {why}; using the previous copy ({}: {} records)",
                    source_names(&set),
                    records(&set)
                ));
                out.reused += 1;
                out.sets.push(set);
            }
            Err(e) => out.warnings.push(format!("{label}: {why}; {e}, so this source is left out")),
        }
    }
    if out.sets.is_empty() {
        return Err(UpdateError::Nothing(errors.join("; ")));
    }
    Ok(out)
}
