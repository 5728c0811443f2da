//! `update::update` against real HTTP servers on 127.0.0.1 that misbehave on purpose: 404 for a
//! source that was there before, a valid but empty file, an endless body, 304 to unconditional
//! requests, files that change between a cut and the resume, and `only` restricted updates.
#![allow(clippy::panic, clippy::unwrap_used)] // a failed expectation is the point of a test or bench

use palisade_vulndb::feed::FeedKind;
use palisade_vulndb::update::{self, Source, UpdateOptions, UpdateOutcome};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server saw it: path and lower-cased headers.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: BTreeMap<String, String>,
}

/// What the server does for one request.
enum Answer {
    /// Status, extra headers and body (Content-Length is added).
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// 200 with a Content-Length of `declared`, the first `send` bytes of `body`, then a cut.
    Cut { headers: Vec<(String, String)>, body: Vec<u8>, send: usize },
    /// 200 without Content-Length, zeros until the client goes away (or `safety` bytes).
    Endless { safety: u64 },
}

type Handler = dyn Fn(&Seen) -> Answer + Send + Sync;

struct Server {
    port: u16,
    log: Arc<Mutex<Vec<Seen>>>,
    handler: Arc<Mutex<Arc<Handler>>>,
    stop: Arc<AtomicBool>,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        404 => "Not Found",
        _ => "Whatever",
    }
}

fn serve_one(s: TcpStream, log: &Mutex<Vec<Seen>>, handler: &Mutex<Arc<Handler>>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match s.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let seen = Seen { path, headers };
    log.lock().unwrap_or_else(|e| e.into_inner()).push(seen.clone());
    let h = handler.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut s = s;
    match h(&seen) {
        Answer::Full(status, extra, body) => {
            let mut head = format!("HTTP/1.1 {status} {}\r\nContent-Length: {}\r\n", reason(status), body.len());
            for (k, v) in extra {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("Connection: close\r\n\r\n");
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
        Answer::Cut { headers, body, send } => {
            let mut head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n", body.len());
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("Connection: close\r\n\r\n");
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body[..send.min(body.len())]);
            let _ = s.flush();
        }
        Answer::Endless { safety } => {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let chunk = vec![0u8; 64 * 1024];
            let mut sent = 0u64;
            while sent < safety && s.write_all(&chunk).is_ok() {
                sent += chunk.len() as u64;
            }
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
}

impl Server {
    fn start(handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        l.set_nonblocking(true).unwrap_or_else(|e| panic!("{e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Mutex<Arc<Handler>>> = Arc::new(Mutex::new(Arc::new(handler)));
        let (log2, stop2, handler2) = (log.clone(), stop.clone(), handler.clone());
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(300);
            while !stop2.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        serve_one(s, &log2, &handler2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Server { port, log, handler, stop }
    }

    /// Replace what the server answers from now on.
    fn answer(&self, handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static) {
        *self.handler.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(handler);
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<Seen> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn clear(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn zip_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(name.as_str(), zip::write::SimpleFileOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        w.write_all(data).unwrap_or_else(|e| panic!("{e}"));
    }
    w.finish().unwrap_or_else(|e| panic!("{e}")).into_inner()
}

/// An OSV archive of `n` Go advisories.
fn go_zip(n: usize) -> Vec<u8> {
    let entries: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let doc = format!(
                r#"{{"id": "GO-2024-{i:04}", "affected": [{{"package": {{"ecosystem": "Go", "name": "example.com/m{i}"}},
                   "ranges": [{{"type": "SEMVER", "events": [{{"introduced": "0"}}, {{"fixed": "1.2.{i}"}}]}}]}}]}}"#
            );
            (format!("GO-2024-{i:04}.json"), doc.into_bytes())
        })
        .collect();
    zip_of(&entries)
}

/// A KEV catalogue of `n` entries, padded so a cut in the middle is possible.
fn kev(n: usize, tag: &str) -> Vec<u8> {
    let items: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"cveID": "CVE-2024-{i:05}", "dateAdded": "2024-01-01", "requiredAction": "{tag}"}}"#))
        .collect();
    format!("{{\"title\": \"{tag}\", \"vulnerabilities\": [{}]}}", items.join(",\n")).into_bytes()
}

const GO: &str = "/osv/Go/all.zip";
const KEV: &str = "/kev/known_exploited_vulnerabilities.json";

fn sources() -> Vec<Source> {
    vec![
        Source { group: "osv", rel: "Go/all.zip".into(), kind: FeedKind::OsvZip },
        Source { group: "kev", rel: "known_exploited_vulnerabilities.json".into(), kind: FeedKind::Kev },
    ]
}

fn options(server: &Server, dir: &Path) -> UpdateOptions {
    let mut o = UpdateOptions::new(dir.to_path_buf());
    for g in ["osv", "debian", "alpine", "kev", "epss"] {
        o.mirrors.insert(g.to_string(), format!("{}/{g}", server.url()));
    }
    o.sources = sources();
    o.retries = 3;
    o.backoff = Duration::from_millis(10);
    o.deadline = Duration::from_secs(30);
    o
}

fn etag_of(data: &[u8]) -> String {
    format!("\"{}-{}\"", data.len(), data.iter().fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(*b))))
}

/// A well-behaved file server over `files` (path → body): ETag, If-None-Match, Range + If-Range.
fn files(files: BTreeMap<&'static str, Vec<u8>>) -> impl Fn(&Seen) -> Answer + Send + Sync + 'static {
    move |r: &Seen| {
        let Some(data) = files.get(r.path.as_str()) else { return Answer::Full(404, vec![], vec![]) };
        let etag = etag_of(data);
        if r.headers.get("if-none-match") == Some(&etag) {
            return Answer::Full(304, vec![("ETag".into(), etag)], vec![]);
        }
        let start = r
            .headers
            .get("range")
            .and_then(|v| v.strip_prefix("bytes="))
            .and_then(|v| v.trim_end_matches('-').parse::<usize>().ok());
        let if_range_ok = r.headers.get("if-range").is_none_or(|v| *v == etag);
        match start {
            Some(s) if s < data.len() && if_range_ok => Answer::Full(
                206,
                vec![
                    ("ETag".into(), etag),
                    ("Content-Range".into(), format!("bytes {s}-{}/{}", data.len() - 1, data.len())),
                ],
                data[s..].to_vec(),
            ),
            _ => Answer::Full(200, vec![("ETag".into(), etag)], data.clone()),
        }
    }
}

fn count_go(o: &UpdateOutcome) -> usize {
    o.sets.iter().flat_map(|s| &s.advisories).filter(|a| a.id.starts_with("GO-")).count()
}

fn count_kev(o: &UpdateOutcome) -> usize {
    o.sets.iter().map(|s| s.kev.len()).sum()
}

/// Every `.part` / `.part.meta` left under `dir`.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains(".part") {
                out.push(p);
            }
        }
    }
    out
}

fn run(o: &UpdateOptions) -> UpdateOutcome {
    update::update(o).unwrap_or_else(|e| panic!("update failed: {e}"))
}

/// Round 1 of most tests: 3 Go advisories and 2 KEV entries downloaded.
fn seeded() -> (tempfile::TempDir, Server, UpdateOptions) {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = Server::start(files([(GO, go_zip(3)), (KEV, kev(2, "one"))].into()));
    let o = options(&server, tmp.path());
    let first = run(&o);
    assert_eq!((count_go(&first), count_kev(&first), first.downloaded), (3, 2, 2), "{:?}", first.warnings);
    assert!(first.warnings.is_empty() && first.failed.is_empty(), "{:?}", first.warnings);
    assert!(leftovers(tmp.path()).is_empty(), "{:?}", leftovers(tmp.path()));
    server.clear();
    (tmp, server, o)
}

#[test]
fn a_404_reuses_the_previous_copy_and_names_the_source() {
    let (tmp, server, o) = seeded();
    server.answer(files([(KEV, kev(2, "one"))].into()));
    let out = run(&o);
    assert_eq!(count_go(&out), 3, "Go kept from the previous copy: {:?}", out.warnings);
    assert_eq!(out.failed, vec!["osv/Go/all.zip".to_string()]);
    let w = out.warnings.iter().find(|w| w.contains("osv/Go/all.zip")).cloned().unwrap_or_default();
    assert!(w.contains("HTTP 404") && w.contains("previous copy") && w.contains("osv:Go"), "{:?}", out.warnings);
    assert!(tmp.path().join("osv/Go/all.zip").is_file(), "the previous copy is still on disk");

    // Any other error status too (403 here), for every group.
    server.answer(|_: &Seen| Answer::Full(403, vec![], b"denied".to_vec()));
    let out = run(&o);
    assert_eq!((count_go(&out), count_kev(&out)), (3, 2), "{:?}", out.warnings);
    assert_eq!(out.failed.len(), 2);
    assert!(out.warnings.iter().all(|w| w.contains("HTTP 403") && w.contains("previous copy")), "{:?}", out.warnings);
}

#[test]
fn the_update_deadline_spans_sources_and_retries_and_keeps_previous_copies() {
    let (_tmp, server, mut o) = seeded();
    // A mirror that asks for retries forever.
    server.answer(|_: &Seen| Answer::Full(503, vec![("Retry-After".into(), "1".into())], vec![]));
    o.retries = 1_000_000;
    o.overall = Duration::from_millis(1500);
    let t = std::time::Instant::now();
    let out = run(&o);
    assert!(t.elapsed() < Duration::from_secs(6), "the update took {:?}", t.elapsed());
    assert_eq!((count_go(&out), count_kev(&out)), (3, 2), "previous copies kept: {:?}", out.warnings);
    assert!(out.warnings.iter().any(|w| w.contains("deadline")), "{:?}", out.warnings);
}

#[test]
fn a_valid_but_empty_download_does_not_replace_a_good_copy() {
    let (tmp, server, o) = seeded();
    let before = std::fs::read(tmp.path().join("osv/Go/all.zip")).unwrap_or_default();
    server.answer(files([(GO, zip_of(&[])), (KEV, kev(0, "none"))].into()));
    let out = run(&o);
    assert_eq!((count_go(&out), count_kev(&out)), (3, 2), "previous copies kept: {:?}", out.warnings);
    assert_eq!(out.downloaded, 0);
    assert!(
        out.warnings.iter().any(|w| w.contains("osv/Go/all.zip") && w.contains("no records")),
        "{:?}",
        out.warnings
    );
    assert!(out.warnings.iter().any(|w| w.contains("kev/known_exploited_vulnerabilities.json")), "{:?}", out.warnings);
    assert_eq!(std::fs::read(tmp.path().join("osv/Go/all.zip")).unwrap_or_default(), before, "file on disk kept");
    assert!(leftovers(tmp.path()).is_empty(), "{:?}", leftovers(tmp.path()));

    // Without a previous copy an empty file is simply what the source has.
    let fresh = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = run(&options(&server, fresh.path()));
    assert_eq!((count_go(&out), out.downloaded), (0, 2), "{:?}", out.warnings);
}

#[test]
fn only_refreshes_the_named_group_and_keeps_the_others() {
    let (_tmp, server, mut o) = seeded();
    server.answer(files([(GO, go_zip(7)), (KEV, kev(5, "two"))].into()));
    o.only = vec!["kev".into()];
    let out = run(&o);
    assert_eq!(count_kev(&out), 5, "KEV refreshed");
    assert_eq!(count_go(&out), 3, "Go from its previous copy, not refreshed");
    assert_eq!((out.downloaded, out.reused), (1, 1));
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec![KEV.to_string()], "only KEV was requested");

    o.only = vec!["nope".into()];
    assert!(update::update(&o).is_err(), "an unknown group is an error");
}

#[test]
fn an_endless_download_hits_the_cap_and_leaves_nothing() {
    let (tmp, server, mut o) = seeded();
    o.max_bytes = 1 << 20;
    server.answer(|r: &Seen| {
        if r.path == GO {
            Answer::Endless { safety: 256 << 20 }
        } else {
            // Declared beyond the cap: refused from the header.
            Answer::Full(200, vec![], vec![b' '; (1 << 20) + 1])
        }
    });
    let out = run(&o);
    assert_eq!((count_go(&out), count_kev(&out)), (3, 2), "previous copies kept: {:?}", out.warnings);
    assert_eq!(out.failed.len(), 2, "{:?}", out.warnings);
    for label in ["osv/Go/all.zip", "kev/known_exploited_vulnerabilities.json"] {
        assert!(
            out.warnings.iter().any(|w| w.starts_with(label) && w.contains("1048576-byte download cap")),
            "{label}: {:?}",
            out.warnings
        );
    }
    assert!(leftovers(tmp.path()).is_empty(), "partial files removed: {:?}", leftovers(tmp.path()));
    assert_eq!(server.requests().iter().filter(|r| r.path == GO).count(), 1, "the cap is not retried");
    assert_eq!(update::MAX_DOWNLOAD_BYTES, 1 << 30);
    assert_eq!(UpdateOptions::new(PathBuf::from("x")).max_bytes, update::MAX_DOWNLOAD_BYTES);

    // Without a previous copy the source fails; the update as a whole fails when nothing is left.
    let fresh = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let err = update::update(&UpdateOptions { dir: fresh.path().to_path_buf(), ..o.clone() });
    assert!(err.is_err_and(|e| e.to_string().contains("download cap")));
    assert!(leftovers(fresh.path()).is_empty(), "{:?}", leftovers(fresh.path()));
}

#[test]
fn a_304_without_a_usable_copy_is_asked_again_or_fails_clearly() {
    // A server that answers 304 to everything, conditional or not.
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let go = go_zip(3);
    let server = Server::start(move |r: &Seen| {
        if r.path == GO {
            Answer::Full(200, vec![("ETag".into(), etag_of(&go))], go.clone())
        } else {
            Answer::Full(304, vec![], vec![])
        }
    });
    let o = options(&server, tmp.path());
    let out = run(&o);
    assert_eq!((count_go(&out), count_kev(&out)), (3, 0));
    assert_eq!(out.failed, vec!["kev/known_exploited_vulnerabilities.json".to_string()]);
    assert!(
        out.warnings.iter().any(|w| w.starts_with("kev/") && w.contains("304") && w.contains("no previous copy")),
        "{:?}",
        out.warnings
    );

    // A cached copy that was damaged while its validators remain: the 304 cannot be honoured,
    // so the file is requested again without conditional headers.
    let (tmp, server, o) = seeded();
    std::fs::write(tmp.path().join("kev/known_exploited_vulnerabilities.json"), b"{ damaged").unwrap_or_default();
    let out = run(&o);
    assert_eq!((count_go(&out), count_kev(&out)), (3, 2), "{:?}", out.warnings);
    assert!(out.failed.is_empty(), "{:?}", out.warnings);
    let kev_reqs: Vec<Seen> = server.requests().into_iter().filter(|r| r.path == KEV).collect();
    assert_eq!(kev_reqs.len(), 2, "{kev_reqs:?}");
    assert!(kev_reqs[0].headers.contains_key("if-none-match"));
    assert!(!kev_reqs[1].headers.contains_key("if-none-match"), "asked again unconditionally");
    assert_eq!(
        std::fs::read(tmp.path().join("kev/known_exploited_vulnerabilities.json")).unwrap_or_default(),
        kev(2, "one"),
        "the damaged copy was replaced"
    );
}

#[test]
fn part_meta_files_are_never_left_behind() {
    let (tmp, server, o) = seeded();
    // A complete download that does not parse.
    server.answer(files([(GO, b"not a zip".to_vec()), (KEV, b"not json".to_vec())].into()));
    let out = run(&o);
    assert_eq!((count_go(&out), count_kev(&out)), (3, 2));
    assert!(out.warnings.iter().all(|w| w.contains("does not parse")), "{:?}", out.warnings);
    assert!(leftovers(tmp.path()).is_empty(), "{:?}", leftovers(tmp.path()));

    // A stale .part.meta without its .part, and a .part without validators, from an older run.
    let kev_dest = tmp.path().join("kev/known_exploited_vulnerabilities.json");
    std::fs::write(tmp.path().join("osv/Go/all.zip.part.meta"), br#"{"etag": "\"x\"", "size": 5}"#).unwrap_or_default();
    std::fs::write(format!("{}.part", kev_dest.display()), b"{\"vuln").unwrap_or_default();
    server.answer(files([(GO, go_zip(4)), (KEV, kev(3, "three"))].into()));
    server.clear();
    let out = run(&o);
    assert_eq!((count_go(&out), count_kev(&out)), (4, 3), "{:?}", out.warnings);
    assert!(leftovers(tmp.path()).is_empty(), "{:?}", leftovers(tmp.path()));
    assert!(
        server.requests().iter().all(|r| !r.headers.contains_key("range")),
        "a partial without validators is not resumed blindly: {:?}",
        server.requests()
    );
    assert!(tmp.path().join("osv/Go/all.zip.meta").is_file(), "validators kept for the next 304");
}

#[test]
fn resume_sends_if_range_and_a_changed_file_restarts_from_zero() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let v1 = kev(200, "version-one");
    let v2 = kev(150, "version-two-is-different");
    let cut = v1.len() / 2;
    // First request: v1, cut half-way. Afterwards upstream has v2.
    let first = Arc::new(AtomicBool::new(true));
    let (v1c, v2c) = (v1.clone(), v2.clone());
    let server = Server::start(move |r: &Seen| {
        if r.path != KEV {
            return Answer::Full(404, vec![], vec![]);
        }
        if first.swap(false, Ordering::SeqCst) {
            return Answer::Cut { headers: vec![("ETag".into(), etag_of(&v1c))], body: v1c.clone(), send: cut };
        }
        files([(KEV, v2c.clone())].into())(r)
    });
    let o = options(&server, tmp.path());
    let out = run(&o);
    let kev_reqs: Vec<Seen> = server.requests().into_iter().filter(|r| r.path == KEV).collect();
    assert!(kev_reqs.len() >= 2, "{kev_reqs:?}");
    assert_eq!(kev_reqs[1].headers.get("range"), Some(&format!("bytes={cut}-")));
    assert_eq!(kev_reqs[1].headers.get("if-range"), Some(&etag_of(&v1)), "If-Range carries the partial's ETag");
    assert_eq!(count_kev(&out), 150, "{:?}", out.warnings);
    let dest = tmp.path().join("kev/known_exploited_vulnerabilities.json");
    assert_eq!(std::fs::read(&dest).unwrap_or_default(), v2, "the 200 restarted the file from zero");
    assert!(leftovers(tmp.path()).is_empty(), "{:?}", leftovers(tmp.path()));

    // Same file after the cut: If-Range matches, the 206 is appended, the file is identical.
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first = Arc::new(AtomicBool::new(true));
    let v1c = v1.clone();
    server.answer(move |r: &Seen| {
        if r.path == KEV && first.swap(false, Ordering::SeqCst) {
            return Answer::Cut { headers: vec![("ETag".into(), etag_of(&v1c))], body: v1c.clone(), send: cut };
        }
        files([(KEV, v1c.clone())].into())(r)
    });
    server.clear();
    let out = run(&options(&server, tmp.path()));
    assert_eq!(count_kev(&out), 200, "{:?}", out.warnings);
    let kev_reqs: Vec<Seen> = server.requests().into_iter().filter(|r| r.path == KEV).collect();
    assert_eq!(kev_reqs.len(), 2, "{kev_reqs:?}");
    assert!(kev_reqs[1].headers.contains_key("if-range"));
    assert_eq!(std::fs::read(tmp.path().join("kev/known_exploited_vulnerabilities.json")).unwrap_or_default(), v1);

    // A server that ignores If-Range and sends a 206 of another version: detected by its ETag,
    // the partial is dropped and the file fetched whole.
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first = Arc::new(AtomicBool::new(true));
    let (v1c, v2c) = (v1.clone(), v2.clone());
    server.answer(move |r: &Seen| {
        if r.path != KEV {
            return Answer::Full(404, vec![], vec![]);
        }
        if first.swap(false, Ordering::SeqCst) {
            return Answer::Cut { headers: vec![("ETag".into(), etag_of(&v1c))], body: v1c.clone(), send: cut };
        }
        let mut naive = r.clone();
        naive.headers.remove("if-range");
        files([(KEV, v2c.clone())].into())(&naive)
    });
    let out = run(&options(&server, tmp.path()));
    assert_eq!(count_kev(&out), 150, "{:?}", out.warnings);
    assert_eq!(std::fs::read(tmp.path().join("kev/known_exploited_vulnerabilities.json")).unwrap_or_default(), v2);
    assert!(leftovers(tmp.path()).is_empty(), "{:?}", leftovers(tmp.path()));
}
