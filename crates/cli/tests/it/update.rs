//! `palisade db update` against a real HTTP server on 127.0.0.1 serving the shared feeds laid
//! out as upstream publishes them: resume after a connection cut mid-transfer, 304 reuse,
//! and a failed update that leaves the previous database serving.

use crate::util::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A minimal HTTP/1.1 file server: GET with Range and If-None-Match; one configurable cut.
struct Server {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

fn respond(mut s: TcpStream, root: &Path, cut: &Mutex<BTreeMap<String, usize>>, log: &Mutex<Vec<String>>) {
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
    let range = headers.get("range").cloned().unwrap_or_default();
    log.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{path} {range}"));
    let file = root.join(path.trim_start_matches('/'));
    let Ok(data) = std::fs::read(&file) else {
        let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let etag =
        format!("\"{}-{}\"", data.len(), data.iter().fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(*b as u32)));
    if headers.get("if-none-match") == Some(&etag) {
        let _ = s.write_all(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    let start = range
        .strip_prefix("bytes=")
        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok())
        .unwrap_or(0)
        .min(data.len());
    let head = if start > 0 {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {}-{}/{}\r\nETag: {etag}\r\nConnection: close\r\n\r\n",
            data.len() - start,
            start,
            data.len().saturating_sub(1),
            data.len()
        )
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: {etag}\r\nConnection: close\r\n\r\n", data.len())
    };
    let _ = s.write_all(head.as_bytes());
    let body = &data[start..];
    let limit = cut.lock().unwrap_or_else(|e| e.into_inner()).remove(&path);
    match limit {
        Some(n) => {
            // Send part of the body, then drop the connection.
            let _ = s.write_all(&body[..n.min(body.len())]);
            let _ = s.flush();
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        None => {
            let _ = s.write_all(body);
        }
    }
}

impl Server {
    fn start(root: PathBuf, cuts: BTreeMap<String, usize>) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        l.set_nonblocking(true).unwrap_or_else(|e| panic!("{e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(Mutex::new(cuts));
        let (log2, stop2) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
            while !stop2.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        respond(s, &root, &cut, &log2);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Server { port, log, stop }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap_or(to)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("{} -> {}: {e}", from.display(), to.display()));
}

fn mirror(dir: &Path) {
    let v = shared().join("vulndata");
    copy(&v.join("osv/Go/all.zip"), &dir.join("osv/Go/all.zip"));
    copy(&v.join("osv/crates.io/all.zip"), &dir.join("osv/crates.io/all.zip"));
    copy(&v.join("alpine-secdb-late/v3.10/main.json"), &dir.join("alpine/v3.10/main.json"));
    copy(&v.join("upstream-samples/debian/input/debian.json"), &dir.join("debian/tracker/data/json"));
    copy(&v.join("kev/known_exploited_vulnerabilities.json"), &dir.join("kev/known_exploited_vulnerabilities.json"));
}

fn update(server: &str, db: &Path, feeds: &Path) -> std::process::Output {
    let mirrors = ["osv", "debian", "alpine", "kev", "epss"].map(|g| format!("{g}={server}/{g}")).join(",");
    palisade(&[
        "db",
        "update",
        "--db",
        db.to_str().unwrap_or_default(),
        "--feed-dir",
        feeds.to_str().unwrap_or_default(),
        "--mirror",
        &mirrors,
    ])
}

fn status(db: &Path) -> Value {
    palisade_json(&["db", "status", "--db", db.to_str().unwrap_or_default(), "--json"])
}

#[test]
fn update_resumes_reuses_and_never_breaks_the_database() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = tmp.path().join("mirror");
    mirror(&root);
    let (db, feeds) = (tmp.path().join("db/palisade.db"), tmp.path().join("feeds"));
    let go_size = std::fs::metadata(root.join("osv/Go/all.zip")).map(|m| m.len() as usize).unwrap_or(0);
    let cut_at = go_size / 3;
    let server = Server::start(root.clone(), [("/osv/Go/all.zip".to_string(), cut_at)].into());
    let out = update(&server.url(), &db, &feeds);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = server.log.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(log.contains(&format!("/osv/Go/all.zip bytes={cut_at}-")), "resumed with a Range request: {log:?}");
    let st = status(&db);
    let names: Vec<String> =
        st["sources"].as_array().map(|a| a.iter().map(|x| s(&x["name"])).collect()).unwrap_or_default();
    assert!(names.contains(&"osv:Go".to_string()) && names.contains(&"kev".to_string()), "{names:?}");
    let go_records =
        st["sources"].as_array().into_iter().flatten().find(|x| x["name"] == "osv:Go").map(|x| x["records"].clone());
    assert_eq!(go_records, Some(serde_json::json!(4291)));
    let downloaded = std::fs::read(feeds.join("osv/Go/all.zip")).unwrap_or_default();
    assert_eq!(
        downloaded,
        std::fs::read(root.join("osv/Go/all.zip")).unwrap_or_default(),
        "resumed file is byte-identical"
    );

    // Second run: nothing changed upstream, so everything is reused (If-None-Match → 304).
    let before = server.log.lock().map(|l| l.len()).unwrap_or(0);
    let out = update(&server.url(), &db, &feeds);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 downloaded"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(server.log.lock().map(|l| l.len()).unwrap_or(0) > before);

    // The mirror goes away: with previous downloads the update degrades but still builds.
    drop(server);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let dead = "http://127.0.0.1:9".to_string();
    let out = update(&dead, &db, &feeds);
    assert!(out.status.success(), "previous downloads are reused: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(status(&db)["vulnerabilities"], st["vulnerabilities"]);

    // No previous downloads and no mirror: the update fails and the old database keeps serving.
    let db_bytes = std::fs::read(&db).unwrap_or_default();
    let out = update(&dead, &db, &tmp.path().join("empty-feeds"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no feed could be downloaded"));
    assert_eq!(std::fs::read(&db).unwrap_or_default(), db_bytes, "database untouched");
}
