//! `palisade server` as a process on 127.0.0.1 with `palisade scan sbom --server` as its client:
//! the bootstrap token, an upload matched by the server's own database, a database update that
//! re-assesses the stored SBOM (no upload), and a restart that keeps everything.

use crate::util::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn osv(id: &str, cve: &str, fixed: &str, modified: &str) -> Value {
    json!({
        "schema_version": "1.4.0", "id": id, "modified": modified, "aliases": [cve],
        "summary": format!("{cve} in requests"),
        "affected": [{"package": {"ecosystem": "PyPI", "name": "requests", "purl": "pkg:pypi/requests"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}],
        "database_specific": {"severity": "MODERATE"}
    })
}

fn write_osv(feeds: &Path, v: &Value) {
    let d = feeds.join("osv/PyPI");
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
    let name = format!("{}.json", v["id"].as_str().unwrap_or("x"));
    std::fs::write(d.join(name), serde_json::to_vec(v).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
}

struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data: &Path, feeds: &Path, port: u16) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["server", "--data-dir"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--db-from"])
        .arg(feeds)
        .env("PALISADE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting palisade server: {e}"));
    let r = Running(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(port, "/healthz", None).0 != 200 {
        assert!(Instant::now() < deadline, "the server did not answer /healthz in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    r
}

fn client() -> palisade_net::Client {
    palisade_net::Client::new(palisade_net::ClientOptions { deadline: Duration::from_secs(30), ..Default::default() })
}

fn get(port: u16, path: &str, token: Option<&str>) -> (u16, Value) {
    let req = palisade_net::Request::get(format!("http://127.0.0.1:{port}{path}"))
        .credential(token.map(|t| format!("Bearer {t}")));
    match client().send(req) {
        Ok(r) => {
            let s = r.status();
            let b = r.read_to_vec(64 << 20).unwrap_or_default();
            (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

fn post(port: u16, path: &str, token: &str) -> u16 {
    let req = palisade_net::Request::post(format!("http://127.0.0.1:{port}{path}"), b"")
        .credential(Some(format!("Bearer {token}")));
    client().send(req).map(|r| r.status()).unwrap_or(0)
}

/// Ask for a database update and wait until a later run of the job (a higher lease
/// generation) has finished.
fn update_and_wait(port: u16, token: &str) {
    let before = get(port, "/api/v1/admin/jobs", Some(token)).1["items"][0]["generation"].as_i64().unwrap_or(0);
    assert_eq!(post(port, "/api/v1/admin/db/update", token), 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, jobs) = get(port, "/api/v1/admin/jobs", Some(token));
        let job = &jobs["items"][0];
        if job["state"] != "running" && job["generation"].as_i64().unwrap_or(0) > before {
            assert!(job["last_error"].is_null(), "the update failed: {job}");
            return;
        }
        assert!(Instant::now() < deadline, "the update did not finish in 60 s: {job}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

fn vuln_ids(findings: &Value) -> Vec<String> {
    let mut v: Vec<String> = findings
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["vuln_id"].as_str().or_else(|| f["id"].as_str()).map(String::from))
        .collect();
    v.sort();
    v
}

#[test]
fn scans_sent_to_the_server_are_reassessed_after_a_db_update() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (data, feeds) = (dir.path().join("data"), dir.path().join("feeds"));
    write_osv(&feeds, &osv("GHSA-j8r2-6x86-q33q", "CVE-2023-32681", "2.31.0", "2023-06-01T00:00:00Z"));
    let port = free_port();
    let server = start(&data, &feeds, port);
    let token_file = data.join("admin.token");
    let token = std::fs::read_to_string(&token_file).unwrap_or_default().trim().to_string();
    assert!(token.starts_with("pal_"), "no bootstrap token in {}", token_file.display());
    assert_eq!(get(port, "/api/v1/images", None).0, 401);
    // The first database is built at start (no database yet): wait for it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(port, "/readyz", None).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "no database after 60 s: {:?}",
            get(port, "/api/v1/admin/jobs", Some(&token))
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let sbom = dir.path().join("web.sbom.json");
    std::fs::write(
        &sbom,
        serde_json::to_vec(&json!({
            "target": {"name": "registry.example/shop/web:1.0"},
            "packages": [{"name": "requests", "version": "2.28.0", "type": "pypi", "purl": "pkg:pypi/requests@2.28.0",
                          "found_in": "/usr/lib/python3/site-packages/requests-2.28.0.dist-info/METADATA"}]
        }))
        .unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let url = format!("http://127.0.0.1:{port}");
    let out = palisade(&[
        "scan",
        "sbom",
        sbom.to_str().unwrap_or_default(),
        "--server",
        &url,
        "--token",
        &token,
        "-f",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rep: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(vuln_ids(&rep["findings"]), vec!["CVE-2023-32681"], "{rep}");
    // A wrong token is refused, and the scan fails rather than reporting nothing.
    let bad = palisade(&[
        "scan",
        "sbom",
        sbom.to_str().unwrap_or_default(),
        "--server",
        &url,
        "--token",
        "wrong",
        "-f",
        "json",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("401"), "{}", String::from_utf8_lossy(&bad.stderr));

    let (_, imgs) = get(port, "/api/v1/images", Some(&token));
    let digest = imgs["items"][0]["digest"].as_str().unwrap_or_default().to_string();
    assert!(digest.starts_with("sha256:"), "{imgs}");

    // New data; the stored SBOM is re-assessed with no upload.
    write_osv(&feeds, &osv("GHSA-9wx4-h78v-vm56", "CVE-2024-35195", "2.32.0", "2024-06-01T00:00:00Z"));
    update_and_wait(port, &token);
    let (s, f) = get(port, &format!("/api/v1/images/{digest}/findings"), Some(&token));
    assert_eq!(s, 200, "{f}");
    assert_eq!(vuln_ids(&f["items"]), vec!["CVE-2023-32681", "CVE-2024-35195"], "{f}");

    // Restart: the data and the token survive; no second bootstrap token.
    drop(server);
    let before = std::fs::metadata(&token_file).and_then(|m| m.modified()).ok();
    let _server = start(&data, &feeds, port);
    assert_eq!(
        std::fs::metadata(&token_file).and_then(|m| m.modified()).ok(),
        before,
        "admin.token rewritten on restart"
    );
    let (s, f) = get(port, &format!("/api/v1/images/{digest}/findings"), Some(&token));
    assert_eq!(s, 200, "{f}");
    assert_eq!(vuln_ids(&f["items"]), vec!["CVE-2023-32681", "CVE-2024-35195"], "{f}");
}

fn count(v: &Value) -> usize {
    v["items"].as_array().map(Vec::len).unwrap_or(0)
}

/// `posture --server` sends the inventory and the posture snapshot; `detect audit --server`
/// sends its alerts, spooled while the server is down and delivered by the next run, once.
#[test]
fn posture_and_detections_reach_the_server_and_survive_an_outage() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (data, feeds) = (dir.path().join("data"), dir.path().join("feeds"));
    write_osv(&feeds, &osv("GHSA-j8r2-6x86-q33q", "CVE-2023-32681", "2.31.0", "2023-06-01T00:00:00Z"));
    let port = free_port();

    // An attack story in an audit log, detected while the server is down: spooled.
    let log = dir.path().join("audit.jsonl");
    let out = palisade(&[
        "simulate",
        "audit",
        "--seed",
        "3",
        "--events",
        "600",
        "--stories",
        "1",
        "-o",
        log.to_str().unwrap_or_default(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spool = dir.path().join("spool");
    let url = format!("http://127.0.0.1:{port}");
    let detect = |token: &str| {
        palisade(&[
            "detect",
            "audit",
            log.to_str().unwrap_or_default(),
            "--cluster",
            "prod-eu",
            "--server",
            &url,
            "--token",
            token,
            "--spool",
            spool.to_str().unwrap_or_default(),
            "-o",
            dir.path().join("alerts.jsonl").to_str().unwrap_or_default(),
        ])
    };
    let out = detect("pal_not_yet");
    assert!(out.status.success(), "an unreachable server is not fatal: {}", String::from_utf8_lossy(&out.stderr));
    let local: Vec<Value> = std::fs::read_to_string(dir.path().join("alerts.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &Value| v["type"] == "alert")
        .collect();
    assert!(!local.is_empty(), "the story raises alerts");
    let spooled = std::fs::read_dir(spool.join("server")).map(|d| d.count()).unwrap_or(0);
    assert!(spooled > 0, "alerts for the server are spooled while it is down");

    let _server = start(&data, &feeds, port);
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap_or_default().trim().to_string();
    // The next run (same log) delivers the spool and its own alerts; re-sent alerts are one record.
    let out = detect(&token);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (s, alerts) = get(port, "/api/v1/alerts?cluster=prod-eu&limit=1000", Some(&token));
    assert_eq!(s, 200, "{alerts}");
    let distinct: std::collections::BTreeSet<&str> = local.iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(count(&alerts), distinct.len(), "every alert once: {alerts}");
    assert!(alerts["items"][0]["doc"]["rule"]["id"].is_string(), "the whole record is kept");

    // Posture of a manifest directory: inventory and findings.
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        manifests.join("web.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: app\n        image: registry.example/shop/web:1.0\n        securityContext: {privileged: true}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = palisade(&[
        "posture",
        "-f",
        manifests.to_str().unwrap_or_default(),
        "--cluster-name",
        "prod-eu",
        "--format",
        "json",
        "--server",
        &url,
        "--token",
        &token,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, w) = get(port, "/api/v1/workloads?cluster=prod-eu", Some(&token));
    assert_eq!(w["items"][0]["name"], "web", "{w}");
    assert_eq!(w["items"][0]["images"][0]["image_ref"], "registry.example/shop/web:1.0", "{w}");
    let (_, p) = get(port, "/api/v1/posture/findings?cluster=prod-eu&check_id=PAL-K8S-001", Some(&token));
    assert_eq!(count(&p), 1, "{p}");
    assert_ne!(p["items"][0]["severity"], "LOW");
    // A report filtered to low findings still sends every finding: nothing is resolved.
    let out = palisade(&[
        "posture",
        "-f",
        manifests.to_str().unwrap_or_default(),
        "--cluster-name",
        "prod-eu",
        "--format",
        "json",
        "--severity",
        "low",
        "--server",
        &url,
        "--token",
        &token,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, p) = get(port, "/api/v1/posture/findings?cluster=prod-eu&check_id=PAL-K8S-001", Some(&token));
    assert_eq!(count(&p), 1, "a --severity filter must not resolve what it hides: {p}");
    // Fixed and assessed again: the full snapshot resolves the finding (kept, not deleted).
    std::fs::write(
        manifests.join("web.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: app\n        image: registry.example/shop/web:1.0\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = palisade(&[
        "posture",
        "-f",
        manifests.to_str().unwrap_or_default(),
        "--cluster-name",
        "prod-eu",
        "--format",
        "json",
        "--server",
        &url,
        "--token",
        &token,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, p) = get(port, "/api/v1/posture/findings?cluster=prod-eu&check_id=PAL-K8S-001", Some(&token));
    assert_eq!(count(&p), 0, "{p}");
    let (_, p) =
        get(port, "/api/v1/posture/findings?cluster=prod-eu&check_id=PAL-K8S-001&include_resolved=true", Some(&token));
    assert_eq!(count(&p), 1, "{p}");
    assert!(p["items"][0]["resolved_at"].is_i64(), "{p}");
}

/// `palisade simulate fleet` sends what it says: the server holds its clusters, workloads,
/// images, findings, alerts and heartbeats afterwards, and the report counts them.
#[test]
fn simulated_fleet_lands_in_the_server() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (data, feeds) = (dir.path().join("data"), dir.path().join("feeds"));
    write_osv(&feeds, &osv("GHSA-j8r2-6x86-q33q", "CVE-2023-32681", "2.31.0", "2023-06-01T00:00:00Z"));
    let port = free_port();
    let _server = start(&data, &feeds, port);
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap_or_default().trim().to_string();
    let url = format!("http://127.0.0.1:{port}");
    let fleet = |extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "fleet",
            "--server",
            url.as_str(),
            "--token",
            token.as_str(),
            "--clusters",
            "2",
            "--workloads",
            "30",
            "--nodes",
            "3",
            "--images",
            "45",
            "--packages",
            "120",
            "--alerts",
            "25",
            "--batch",
            "10",
            "--concurrency",
            "3",
        ];
        args.extend_from_slice(extra);
        palisade(&args)
    };
    let out = fleet(&["--queries", "12"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (r["images"].as_u64(), r["alerts"].as_u64(), r["heartbeats"].as_u64()),
        (Some(45), Some(50), Some(6)),
        "{r}"
    );
    assert_eq!(r["queries"]["requests"].as_u64(), Some(12), "{r}");
    assert!(r["findings"].as_u64().unwrap_or(0) > 0, "{r}");
    let (_, imgs) = get(port, "/api/v1/images?limit=1000", Some(&token));
    assert_eq!(count(&imgs), 45);
    let (_, f) = get(port, "/api/v1/findings?limit=1000", Some(&token));
    assert_eq!(count(&f) as u64, r["findings"].as_u64().unwrap_or(0).min(1000), "{}", count(&f));
    let (_, c) = get(port, "/api/v1/clusters", Some(&token));
    assert_eq!(count(&c), 2);
    let (_, w) = get(port, "/api/v1/workloads?cluster=cluster-001&limit=1000", Some(&token));
    assert_eq!(count(&w), 30);
    let (_, a) = get(port, "/api/v1/alerts?limit=1000", Some(&token));
    assert_eq!(count(&a), 50);
    let (_, h) = get(port, "/api/v1/health?limit=1000", Some(&token));
    assert_eq!(count(&h), 6);
    // the same seed again is the same traffic: nothing new is stored
    let again = fleet(&[]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let (_, imgs) = get(port, "/api/v1/images?limit=1000", Some(&token));
    assert_eq!(count(&imgs), 45);
    let (_, a) = get(port, "/api/v1/alerts?limit=1000", Some(&token));
    assert_eq!(count(&a), 50);
}

/// `kill -9` of the server while uploads are in flight loses no acknowledged upload: every
/// image answered with 200 before the kill is there after a restart.
#[test]
fn kill_9_during_ingest_loses_no_acknowledged_upload() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (data, feeds) = (dir.path().join("data"), dir.path().join("feeds"));
    write_osv(&feeds, &osv("GHSA-j8r2-6x86-q33q", "CVE-2023-32681", "2.31.0", "2023-06-01T00:00:00Z"));
    let port = free_port();
    let mut server = start(&data, &feeds, port);
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap_or_default().trim().to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..3)
        .map(|w| {
            let (token, stop) = (token.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let c = palisade_net::Client::new(palisade_net::ClientOptions {
                    deadline: Duration::from_secs(5),
                    ..Default::default()
                });
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let digest = format!("sha256:{:064x}", w * 1_000_000 + i);
                    let pkgs: Vec<Value> = (0..50)
                        .map(|p| json!({"name": format!("lib{p}"), "version": "1.0", "type": "npm", "purl": format!("pkg:npm/lib{p}@1.0"), "found_in": "/app/package-lock.json"}))
                        .chain([json!({"name": "requests", "version": "2.28.0", "type": "pypi", "purl": "pkg:pypi/requests@2.28.0", "found_in": "/usr/lib/python3/site-packages/requests-2.28.0.dist-info/METADATA"})])
                        .collect();
                    let body = serde_json::to_vec(&json!({"images": [{"digest": digest, "repo": "r/app",
                        "sbom": {"target": {"name": "r/app:1", "digest": digest}, "packages": pkgs}}]}))
                    .unwrap_or_default();
                    let req = palisade_net::Request::post(format!("http://127.0.0.1:{port}/api/v1/images"), &body)
                        .header("content-type", "application/json")
                        .credential(Some(format!("Bearer {token}")));
                    match c.send(req) {
                        Ok(r) if r.is_success() => acked.push(digest),
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = server.0.kill(); // SIGKILL
    let _ = server.0.wait();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: Vec<String> = senders.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect();
    assert!(acked.len() >= 3, "uploads were acknowledged before the kill: {}", acked.len());
    let _server = start(&data, &feeds, port);
    let mut have = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/images?limit=1000&cursor={c}"),
            None => "/api/v1/images?limit=1000".to_string(),
        };
        let (s, page) = get(port, &path, Some(&token));
        assert_eq!(s, 200, "{page}");
        for i in page["items"].as_array().into_iter().flatten() {
            have.insert(i["digest"].as_str().unwrap_or_default().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let lost: Vec<&String> = acked.iter().filter(|d| !have.contains(*d)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged uploads lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    // and each has its findings (matched and stored in the same acknowledged write)
    let (_, f) = get(port, &format!("/api/v1/images/{}/findings", acked[0]), Some(&token));
    assert_eq!(count(&f), 1, "{f}");
}

/// `palisade up --once`: the server starts with its own database built from `--db-from`, this
/// "machine" (a root filesystem with a vulnerable Python package) and a manifest directory are
/// assessed and stored, the console address and the admin token are printed; a server started
/// on the same data directory afterwards holds the image, its findings and the posture findings.
#[test]
fn up_assesses_this_machine_and_manifests_into_the_server() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (data, feeds, root, manifests) =
        (dir.path().join("data"), dir.path().join("feeds"), dir.path().join("root"), dir.path().join("manifests"));
    write_osv(&feeds, &osv("GHSA-j8r2-6x86-q33q", "CVE-2023-32681", "2.31.0", "2023-06-01T00:00:00Z"));
    let meta = root.join("usr/lib/python3/dist-packages/requests-2.28.0.dist-info");
    std::fs::create_dir_all(&meta).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(meta.join("METADATA"), "Metadata-Version: 2.1\nName: requests\nVersion: 2.28.0\n")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(&manifests).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        manifests.join("pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  containers:\n  - name: web\n    image: registry.example/shop/web:1.0\n    securityContext:\n      privileged: true\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["up", "--once", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--db-from")
        .arg(&feeds)
        .arg("--root")
        .arg(&root)
        .arg("-f")
        .arg(&manifests)
        .args(["--cluster-name", "laptop"])
        .env("PALISADE_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("running palisade up: {e}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Console: http://127.0.0.1:"), "{stdout}");
    let token_file = data.join("admin.token");
    assert!(stdout.contains(&format!("Admin token (new): {}", token_file.display())), "{stdout}");
    assert!(stderr.contains("1 vulnerability findings"), "{stderr}");
    let token = std::fs::read_to_string(&token_file).unwrap_or_default().trim().to_string();

    let port = free_port();
    let _server = start(&data, &feeds, port);
    let (s, imgs) = get(port, "/api/v1/images", Some(&token));
    assert_eq!(s, 200, "{imgs}");
    let digest = imgs["items"][0]["digest"].as_str().unwrap_or_default().to_string();
    let (_, f) = get(port, &format!("/api/v1/images/{digest}/findings"), Some(&token));
    assert_eq!(vuln_ids(&f["items"]), vec!["CVE-2023-32681"], "{f}");
    let (_, p) = get(port, "/api/v1/posture/findings?cluster=laptop", Some(&token));
    let checks: Vec<&str> =
        p["items"].as_array().into_iter().flatten().filter_map(|x| x["check_id"].as_str()).collect();
    assert!(!checks.is_empty(), "no posture finding stored: {p}");
    let (_, w) = get(port, "/api/v1/workloads?cluster=laptop", Some(&token));
    assert!(w["items"].as_array().is_some_and(|a| a.iter().any(|x| x["name"] == "web")), "{w}");
    // the assessment's own token was revoked when it was done
    let (_, tokens) = get(port, "/api/v1/tokens", Some(&token));
    let up_tokens: Vec<&Value> =
        tokens["items"].as_array().into_iter().flatten().filter(|t| t["name"] == "palisade up").collect();
    assert!(!up_tokens.is_empty() && up_tokens.iter().all(|t| t["revoked_at"].is_i64()), "{tokens}");
    // a second `up` on the same directory writes no new admin token and says where the old one is
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["up", "--once", "--no-host", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("PALISADE_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let s2 = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success() && s2.contains(&format!("Admin token: {}", token_file.display())), "{s2}");
}
