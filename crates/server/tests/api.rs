//! The server's HTTP surface through `router().oneshot` (no socket), on SQLite in a temp data
//! directory and, when `PALISADE_TEST_DATABASE_URL` is set (scripts/test.sh starts a throwaway
//! PostgreSQL), on PostgreSQL in a fresh schema per test.
//!
//! The vulnerability data are OSV records in the real format (PyPA advisories for `requests`),
//! written into a feed directory the server builds its database from (`--db-from`).
#![allow(clippy::panic, clippy::unwrap_used)] // a failed expectation is the point of a test or bench

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use palisade_server::{Config, Server};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use tower::ServiceExt as _;

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// GHSA-j8r2-6x86-q33q (CVE-2023-32681), as PyPA publishes it (trimmed to the fields read).
fn osv_requests_2023() -> Value {
    json!({
        "schema_version": "1.4.0", "id": "GHSA-j8r2-6x86-q33q", "modified": "2023-06-01T00:00:00Z",
        "published": "2023-05-22T20:36:32Z", "aliases": ["CVE-2023-32681", "PYSEC-2023-74"],
        "summary": "Unintended leak of Proxy-Authorization header in requests",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "requests", "purl": "pkg:pypi/requests"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}]}],
        "database_specific": {"severity": "MODERATE"}
    })
}

/// GHSA-9wx4-h78v-vm56 (CVE-2024-35195), published later: the "new data" of a DB update.
fn osv_requests_2024() -> Value {
    json!({
        "schema_version": "1.4.0", "id": "GHSA-9wx4-h78v-vm56", "modified": "2024-06-01T00:00:00Z",
        "published": "2024-05-20T20:15:00Z", "aliases": ["CVE-2024-35195"],
        "summary": "Requests Session object does not verify requests after making first request with verify=False",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "requests", "purl": "pkg:pypi/requests"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.32.0"}]}]}],
        "database_specific": {"severity": "MODERATE"}
    })
}

fn write_feed(dir: &Path, name: &str, v: &Value) {
    let d = dir.join("osv").join("PyPI");
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(d.join(name), serde_json::to_vec(v).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
}

fn sbom(requests_version: &str) -> Value {
    json!({
        "target": {"name": "registry.example/shop/web:1.0", "digest": DIGEST},
        "packages": [
            {"name": "requests", "version": requests_version, "type": "pypi",
             "purl": format!("pkg:pypi/requests@{requests_version}"), "found_in": "/usr/lib/python3/site-packages/requests-2.28.0.dist-info/METADATA"},
            {"name": "idna", "version": "3.4", "type": "pypi", "purl": "pkg:pypi/idna@3.4", "found_in": "/usr/lib/python3/site-packages/idna-3.4.dist-info/METADATA"}
        ]
    })
}

struct Env {
    server: Arc<Server>,
    admin: String,
    feeds: tempfile::TempDir,
    _data: tempfile::TempDir,
    _pg: Option<PgSchema>,
}

/// A fresh PostgreSQL schema for one test; `url` selects it through `search_path`.
struct PgSchema {
    url: String,
}

fn pg_url() -> Option<String> {
    std::env::var("PALISADE_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
}

impl PgSchema {
    async fn new(base: &str) -> PgSchema {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let mut admin = tokio::time::timeout(std::time::Duration::from_secs(20), sqlx::AnyConnection::connect(base))
            .await
            .unwrap_or_else(|_| panic!("PALISADE_TEST_DATABASE_URL is set but PostgreSQL did not answer in 20 s"))
            .unwrap_or_else(|e| panic!("PALISADE_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}"));
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let schema =
            format!("srv{}_{}_{nanos}", std::process::id(), SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await.unwrap_or_else(|e| panic!("{e}"));
        let _ = admin.close().await;
        let sep = if base.contains('?') { '&' } else { '?' };
        PgSchema { url: format!("{base}{sep}options[search_path]={schema}") }
    }
}

async fn env(pg: bool) -> Option<Env> {
    let schema = if pg {
        match pg_url() {
            Some(base) => Some(PgSchema::new(&base).await),
            None => {
                eprintln!("PALISADE_TEST_DATABASE_URL unset: PostgreSQL arm skipped");
                return None;
            }
        }
    } else {
        None
    };
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let feeds = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_feed(feeds.path(), "GHSA-j8r2-6x86-q33q.json", &osv_requests_2023());
    let mut c = Config::new(data.path().to_path_buf());
    c.database_url = schema.as_ref().map(|s| s.url.clone());
    c.db_from = vec![feeds.path().to_path_buf()];
    c.job_poll = std::time::Duration::from_millis(50);
    let (server, boot) = Server::open(c).await.unwrap_or_else(|e| panic!("{e}"));
    let path = boot.admin_token_path.unwrap_or_else(|| panic!("no bootstrap token on first start"));
    let admin = std::fs::read_to_string(&path).unwrap_or_default().trim().to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        assert_eq!(mode, 0o600, "admin.token must be readable by the owner only");
    }
    Some(Env { server, admin, feeds, _data: data, _pg: schema })
}

async fn call(e: &Env, method: &str, uri: &str, token: Option<&str>, body: Option<Vec<u8>>) -> (StatusCode, Value) {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let req = b.body(body.map(Body::from).unwrap_or_else(Body::empty)).unwrap_or_else(|e| panic!("{e}"));
    let resp = palisade_server::router(e.server.clone()).oneshot(req).await.unwrap_or_else(|e| match e {});
    let status = resp.status();
    let bytes = resp.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let v =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

/// Run the db-update job now, as `POST /api/v1/admin/db/update` asks, and wait for it.
async fn run_update(e: &Env) {
    let (s, v) = call(e, "POST", "/api/v1/admin/db/update", Some(&e.admin), None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let lease = e
        .server
        .store
        .claim_due(&e.server.replica, palisade_server::jobs::LEASE)
        .await
        .unwrap_or_else(|er| panic!("{er}"))
        .unwrap_or_else(|| panic!("the requested job is not due"));
    palisade_server::jobs::run_claimed(&e.server, lease).await;
    let (_, jobs) = call(e, "GET", "/api/v1/admin/jobs", Some(&e.admin), None).await;
    let job =
        jobs["items"].as_array().and_then(|a| a.iter().find(|j| j["name"] == "db-update")).cloned().unwrap_or_default();
    assert!(job["last_error"].is_null(), "the update failed: {job}");
}

fn ids(findings: &Value) -> Vec<String> {
    let mut out: Vec<String> = findings["items"]
        .as_array()
        .map(|a| a.iter().map(|f| f["vuln_id"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

async fn scan_then_reassess(pg: bool) {
    let Some(e) = env(pg).await else { return };
    // Not ready before the first database exists.
    let (s, _) = call(&e, "GET", "/readyz", None, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    run_update(&e).await;
    let (s, _) = call(&e, "GET", "/readyz", None, None).await;
    assert_eq!(s, StatusCode::OK);

    // Upload an SBOM without findings: the server matches it against its own database.
    let up = serde_json::to_vec(&json!({"images": [{"digest": DIGEST, "repo": "registry.example/shop/web", "tags": ["1.0"], "sbom": sbom("2.28.0")}]}))
        .unwrap_or_default();
    let (s, v) = call(&e, "POST", "/api/v1/images", Some(&e.admin), Some(up.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["images"][0]["assessed"], true);
    assert_eq!(v["images"][0]["new_image"], true);
    // The same upload again is one record.
    let (s, v2) = call(&e, "POST", "/api/v1/images", Some(&e.admin), Some(up)).await;
    assert_eq!(s, StatusCode::OK, "{v2}");
    assert_eq!(v2["images"][0]["new_image"], false);
    assert_eq!(v2["images"][0]["events"], 0);

    let (s, imgs) = call(&e, "GET", "/api/v1/images", Some(&e.admin), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(imgs["items"].as_array().map(Vec::len), Some(1), "{imgs}");
    assert_eq!(imgs["items"][0]["digest"], DIGEST);

    let uri = format!("/api/v1/images/{DIGEST}/findings");
    let (s, f) = call(&e, "GET", &uri, Some(&e.admin), None).await;
    assert_eq!(s, StatusCode::OK, "{f}");
    assert_eq!(ids(&f), vec!["CVE-2023-32681"], "{f}");
    let first = &f["items"][0];
    assert_eq!(first["package"]["name"], "requests");
    assert_eq!(first["package"]["version"], "2.28.0");
    let known: Vec<&str> =
        first["ids"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    assert!(known.contains(&"GHSA-j8r2-6x86-q33q") && known.contains(&"CVE-2023-32681"), "{first}");

    // New advisory data arrive; the update re-assesses the stored SBOM without any upload.
    write_feed(e.feeds.path(), "GHSA-9wx4-h78v-vm56.json", &osv_requests_2024());
    run_update(&e).await;
    let (_, f) = call(&e, "GET", &uri, Some(&e.admin), None).await;
    assert_eq!(ids(&f), vec!["CVE-2023-32681", "CVE-2024-35195"], "{f}");
    let (_, ev) = call(&e, "GET", "/api/v1/events", Some(&e.admin), None).await;
    let reassessed: Vec<&Value> =
        ev["items"].as_array().map(|a| a.iter().filter(|x| x["cause"] == "reassessment").collect()).unwrap_or_default();
    assert!(
        reassessed.iter().any(|x| x["vuln_id"] == "CVE-2024-35195" && x["kind"] == "new"),
        "no re-assessment event for the new advisory: {ev}"
    );

    std::fs::remove_file(e.feeds.path().join("osv/PyPI/GHSA-j8r2-6x86-q33q.json")).unwrap_or_else(|er| panic!("{er}"));
    // The advisory is withdrawn from the feed directory: half the records are gone, which the
    // build's shrink guard refuses; the server keeps its database and the findings stay.
    let (s, _) = call(&e, "POST", "/api/v1/admin/db/update", Some(&e.admin), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let lease = e.server.store.claim_due(&e.server.replica, palisade_server::jobs::LEASE).await.ok().flatten();
    let lease = lease.unwrap_or_else(|| panic!("job not due"));
    let r = palisade_server::jobs::run_db_update(&e.server, &lease).await;
    assert!(r.as_ref().is_err_and(|er| er.to_string().contains("not replaced")), "{r:?}");
    let _ = e.server.store.release(&lease).await;
    let (_, f) = call(&e, "GET", &uri, Some(&e.admin), None).await;
    assert_eq!(ids(&f), vec!["CVE-2023-32681", "CVE-2024-35195"], "a refused update changed findings: {f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_then_reassess_sqlite() {
    scan_then_reassess(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_then_reassess_postgres() {
    scan_then_reassess(true).await;
}

async fn auth_and_bad_input(pg: bool) {
    let Some(e) = env(pg).await else { return };
    // No token, a malformed one, a well-formed unknown one: 401, counted.
    for t in [
        None,
        Some("nonsense"),
        Some("pal_0123456789abcdef_0000000000000000000000000000000000000000000000000000000000000000"),
    ] {
        let (s, v) = call(&e, "GET", "/api/v1/images", t, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{t:?}: {v}");
    }
    // A viewer token may read but not write.
    let (s, v) =
        call(&e, "POST", "/api/v1/tokens", Some(&e.admin), Some(br#"{"name":"dash","role":"viewer"}"#.to_vec())).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let viewer = v["token"].as_str().unwrap_or_default().to_string();
    let (s, _) = call(&e, "GET", "/api/v1/images", Some(&viewer), None).await;
    assert_eq!(s, StatusCode::OK);
    let up = serde_json::to_vec(&json!({"digest": DIGEST, "sbom": sbom("2.28.0")})).unwrap_or_default();
    let (s, v) = call(&e, "POST", "/api/v1/images", Some(&viewer), Some(up)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = call(&e, "POST", "/api/v1/admin/db/update", Some(&viewer), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Malformed bodies: 400 with the reason, nothing stored.
    for (body, why) in [
        (b"{not json".to_vec(), "malformed"),
        (br#"{"images": []}"#.to_vec(), "no images"),
        (br#"[{"digest": "sha256:xyz"}]"#.to_vec(), "expected {"),
        (br#"{"images": {"digest": "x"}}"#.to_vec(), "expected an array"),
        (br#"{"images": [{"digest": 7}]}"#.to_vec(), "images[0]"),
        (br#"{"images": [{"digest": "sha256:xyz"}]}"#.to_vec(), "digest"),
        (br#"{"images": [{"digest": "../../etc/passwd"}]}"#.to_vec(), "digest"),
    ] {
        let (s, v) = call(&e, "POST", "/api/v1/images", Some(&e.admin), Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"].as_str().is_some_and(|m| m.contains(why)), "{why}: {v}");
    }
    // Over the body limit: 413.
    let huge = vec![b' '; palisade_server::MAX_BODY_BYTES + 1];
    let (s, _) = call(&e, "POST", "/api/v1/images", Some(&e.admin), Some(huge)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, imgs) = call(&e, "GET", "/api/v1/images", Some(&e.admin), None).await;
    assert_eq!(imgs["items"].as_array().map(Vec::len), Some(0), "{imgs}");

    // Every write is in the audit log; the refused ones are not.
    let (s, a) = call(&e, "GET", "/api/v1/audit", Some(&e.admin), None).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let actions: Vec<&str> =
        a["items"].as_array().map(|x| x.iter().filter_map(|i| i["action"].as_str()).collect()).unwrap_or_default();
    assert!(actions.iter().any(|x| x.contains("token")), "{actions:?}");
    assert!(!actions.iter().any(|x| x.contains("image")), "{actions:?}");
    let (s, m) = call(&e, "GET", "/metrics", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let text = m.as_str().unwrap_or_default();
    assert!(text.contains("palisade_server_auth_failures_total 3"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_bad_input_sqlite() {
    auth_and_bad_input(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_bad_input_postgres() {
    auth_and_bad_input(true).await;
}

/// The fleet routes: inventory, posture, alerts (idempotent), incidents, heartbeats, triage
/// with its audit trail, NDJSON export across pages, token revocation.
async fn fleet_routes(pg: bool) {
    let Some(e) = env(pg).await else { return };
    let a = Some(e.admin.as_str());
    run_update(&e).await;
    let inv = json!({
        "cluster": "prod-eu", "k8s_version": "v1.30.2", "full": true,
        "nodes": [{"name": "node-a", "kubelet_version": "v1.30.2"}],
        "objects": [{"kind": "Deployment", "namespace": "shop", "name": "web",
                     "images": [{"container": "app", "image_ref": "registry.example/shop/web:1.0", "digest": DIGEST}]}]
    });
    let (s, v) = call(&e, "POST", "/api/v1/inventory", a, Some(serde_json::to_vec(&inv).unwrap_or_default())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, c) = call(&e, "GET", "/api/v1/clusters", a, None).await;
    assert_eq!(c["items"][0]["name"], "prod-eu", "{c}");
    let (_, w) = call(&e, "GET", "/api/v1/workloads?cluster=prod-eu", a, None).await;
    assert_eq!(w["items"][0]["name"], "web", "{w}");

    // An image with findings, then triage of one of them.
    let up = serde_json::to_vec(&json!({"digest": DIGEST, "sbom": sbom("2.28.0")})).unwrap_or_default();
    let (s, v) = call(&e, "POST", "/api/v1/images", a, Some(up)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, f) = call(&e, "GET", &format!("/api/v1/images/{DIGEST}/findings"), a, None).await;
    let fid = f["items"][0]["id"].as_i64().unwrap_or_else(|| panic!("no finding: {f}"));
    let (s, v) =
        call(&e, "PUT", &format!("/api/v1/findings/{fid}/triage"), a, Some(br#"{"state":"not_affected"}"#.to_vec()))
            .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "not_affected needs a justification: {v}");
    let body = br#"{"state":"not_affected","justification":"code_not_reachable","detail":"proxy unused"}"#.to_vec();
    let (s, v) = call(&e, "PUT", &format!("/api/v1/findings/{fid}/triage"), a, Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, h) = call(&e, "GET", &format!("/api/v1/findings/{fid}/triage"), a, None).await;
    assert_eq!(h["items"][0]["new_state"], "not_affected", "{h}");
    assert!(h["items"][0]["actor"].as_str().is_some_and(|x| x.contains("bootstrap") || x.contains("token:")), "{h}");
    let (s, sb) = call(&e, "GET", &format!("/api/v1/images/{DIGEST}/sbom"), a, None).await;
    assert_eq!(s, StatusCode::OK, "{sb}");
    assert_eq!(sb["sbom"]["packages"].as_array().map(Vec::len), Some(2), "{sb}");
    let (s, _) = call(
        &e,
        "GET",
        "/api/v1/images/sha256:2222222222222222222222222222222222222222222222222222222222222222/sbom",
        a,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, one) = call(&e, "GET", &format!("/api/v1/findings/{fid}"), a, None).await;
    assert_eq!(one["triage"]["state"], "not_affected", "{one}");
    let (s, _) = call(&e, "GET", "/api/v1/findings/999999", a, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Posture snapshot, alerts sent twice (one record), resolve.
    let snap = json!({"cluster": "prod-eu", "findings": [{"check_id": "PAL-K8S-001",
        "object": {"kind": "Deployment", "namespace": "shop", "name": "web"}, "severity": "high",
        "doc": {"message": "privileged container app"}}]});
    let (s, v) = call(&e, "POST", "/api/v1/posture", a, Some(serde_json::to_vec(&snap).unwrap_or_default())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, p) = call(&e, "GET", "/api/v1/posture/findings?cluster=prod-eu", a, None).await;
    assert_eq!(p["items"][0]["check_id"], "PAL-K8S-001", "{p}");
    let alerts = json!({"alerts": [
        {"cluster": "prod-eu", "rule": "PAL-RT-001", "severity": "high", "at": 1_765_000_000, "pod": "web-1", "doc": {"msg": "shell in container"}},
        {"cluster": "prod-eu", "rule": "PAL-RT-002", "severity": "critical", "at": 1_765_000_010, "pod": "web-1", "doc": {"msg": "token read"}}
    ]});
    let body = serde_json::to_vec(&alerts).unwrap_or_default();
    let (s, first) = call(&e, "POST", "/api/v1/alerts", a, Some(body.clone())).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let (_, again) = call(&e, "POST", "/api/v1/alerts", a, Some(body)).await;
    assert_eq!(first["ids"], again["ids"], "a re-sent alert is the same record");
    let (_, l) = call(&e, "GET", "/api/v1/alerts?cluster=prod-eu", a, None).await;
    assert_eq!(l["items"].as_array().map(Vec::len), Some(2), "{l}");
    let aid = first["ids"][0].as_i64().unwrap_or_default();
    let (s, r) = call(&e, "POST", &format!("/api/v1/alerts/{aid}/resolve"), a, None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert!(r["resolved_at"].is_i64(), "{r}");
    let (_, open) = call(&e, "GET", "/api/v1/alerts?resolved=false", a, None).await;
    assert_eq!(open["items"].as_array().map(Vec::len), Some(1), "{open}");
    for bad in [br#"{"alerts": []}"#.to_vec(), br#"{"alerts": [{"rule": "x"}]}"#.to_vec(), b"[1,2]".to_vec()] {
        let (s, v) = call(&e, "POST", "/api/v1/alerts", a, Some(bad)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    }

    // Heartbeats make health.
    let beats = json!({"heartbeats": [{"cluster": "prod-eu", "component": "sensor", "instance": "node-a", "node": "node-a", "version": "0.1.0"}]});
    let (s, v) = call(&e, "POST", "/api/v1/heartbeats", a, Some(serde_json::to_vec(&beats).unwrap_or_default())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, hl) = call(&e, "GET", "/api/v1/health?cluster=prod-eu", a, None).await;
    assert_eq!(hl["items"][0]["instance"], "node-a", "{hl}");
    assert_eq!(hl["items"][0]["state"], "healthy", "{hl}");

    // NDJSON export walks every page (page size 1 here) and equals the paged JSON.
    let resp = palisade_server::router(e.server.clone())
        .oneshot(
            Request::get("/api/v1/audit?format=ndjson&limit=1")
                .header("authorization", format!("Bearer {}", e.admin))
                .body(Body::empty())
                .unwrap_or_else(|er| panic!("{er}")),
        )
        .await
        .unwrap_or_else(|er| match er {});
    assert_eq!(resp.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/x-ndjson"));
    let bytes = resp.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let lines: Vec<Value> = String::from_utf8_lossy(&bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|er| panic!("{er}: {l}")))
        .collect();
    let (_, paged) = call(&e, "GET", "/api/v1/audit?limit=1000", a, None).await;
    assert_eq!(lines.len(), paged["items"].as_array().map(Vec::len).unwrap_or(0));
    assert!(lines.len() >= 6, "every write is audited: {}", lines.len());
    let (s, _) = call(&e, "GET", "/api/v1/findings?format=xml", a, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // A token bound to a cluster writes that cluster only.
    let (_, v) = call(
        &e,
        "POST",
        "/api/v1/tokens",
        a,
        Some(br#"{"name":"agent-eu","role":"operator","cluster":"prod-eu"}"#.to_vec()),
    )
    .await;
    let agent = v["token"].as_str().unwrap_or_default().to_string();
    let other = br#"{"cluster":"prod-us","full":true,"objects":[]}"#.to_vec();
    let (s, v) = call(&e, "POST", "/api/v1/inventory", Some(&agent), Some(other)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let beat = br#"{"heartbeats":[{"cluster":"prod-us","component":"sensor","instance":"x"}]}"#.to_vec();
    let (s, _) = call(&e, "POST", "/api/v1/heartbeats", Some(&agent), Some(beat)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let own = br#"{"alerts":[{"rule":"PAL-RT-009","severity":"low","at":1765000100,"doc":{"m":"x"}}]}"#.to_vec();
    let (s, v) = call(&e, "POST", "/api/v1/alerts", Some(&agent), Some(own)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let aid = v["ids"][0].as_i64().unwrap_or_default();
    let (_, al) = call(&e, "GET", &format!("/api/v1/alerts/{aid}"), a, None).await;
    assert_eq!(al["cluster"], "prod-eu", "an alert without a cluster gets the token's: {al}");
    // A detector's folded update (same id, update: true) refreshes the stored alert.
    let rec = |count: u64, update: bool| {
        serde_json::to_vec(&json!({"alerts": [{"type": "alert", "id": "det-1", "update": update, "count": count,
            "time": "2026-12-07T10:00:00Z", "rule": {"id": "PAL-AUD-004"}, "severity": "MEDIUM",
            "entities": {"cluster": "prod-eu", "namespace": "shop"}}]}))
        .unwrap_or_default()
    };
    let (s, v1) = call(&e, "POST", "/api/v1/alerts", a, Some(rec(1, false))).await;
    assert_eq!(s, StatusCode::OK, "{v1}");
    let (_, v2) = call(&e, "POST", "/api/v1/alerts", a, Some(rec(7, true))).await;
    assert_eq!(v1["ids"], v2["ids"], "an update is the same alert");
    let (_, again) = call(&e, "POST", "/api/v1/alerts", a, Some(rec(1, false))).await;
    assert_eq!(v1["ids"], again["ids"]);
    let (_, al) = call(&e, "GET", &format!("/api/v1/alerts/{}", v1["ids"][0]), a, None).await;
    assert_eq!(al["doc"]["count"], 7, "the update's document is kept, a late re-send does not undo it: {al}");
    // A body on GET is refused without being read.
    let (s, _) = call(&e, "GET", "/api/v1/images", a, Some(b"{}".to_vec())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // A viewer cannot triage; a revoked token is refused.
    let (_, v) = call(&e, "POST", "/api/v1/tokens", a, Some(br#"{"name":"ro","role":"viewer"}"#.to_vec())).await;
    let viewer = v["token"].as_str().unwrap_or_default().to_string();
    let id = v["info"]["id"].as_str().unwrap_or_default().to_string();
    let (s, _) = call(
        &e,
        "PUT",
        &format!("/api/v1/findings/{fid}/triage"),
        Some(&viewer),
        Some(br#"{"state":"exploitable"}"#.to_vec()),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(&e, "DELETE", &format!("/api/v1/tokens/{id}"), a, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = call(&e, "GET", "/api/v1/images", Some(&viewer), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, r) = call(&e, "POST", "/api/v1/admin/retention", a, None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
}

/// A stop during a db-update gives the lease up (the job is not recorded as failed or done);
/// the next claim runs it to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_pauses_the_update_and_the_next_run_finishes_it() {
    let Some(e) = env(false).await else { return };
    let up = serde_json::to_vec(&json!({"digest": DIGEST, "sbom": sbom("2.28.0")})).unwrap_or_default();
    let (s, v) = call(&e, "POST", "/api/v1/images", Some(&e.admin), Some(up)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = call(&e, "POST", "/api/v1/admin/db/update", Some(&e.admin), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let replica = e.server.replica.clone();
    let lease = e.server.store.claim_due(&replica, palisade_server::jobs::LEASE).await.ok().flatten();
    let lease = lease.unwrap_or_else(|| panic!("the requested job is not due"));
    e.server.set_stopping(true);
    palisade_server::jobs::run_claimed(&e.server, lease).await;
    let (_, jobs) = call(&e, "GET", "/api/v1/admin/jobs", Some(&e.admin), None).await;
    let job =
        jobs["items"].as_array().and_then(|a| a.iter().find(|j| j["name"] == "db-update")).cloned().unwrap_or_default();
    assert_eq!(job["state"], "running", "paused, not finished: {job}");
    assert!(job["owner"].is_null() && job["last_error"].is_null(), "{job}");
    e.server.set_stopping(false);
    let lease = e.server.store.claim_due(&replica, palisade_server::jobs::LEASE).await.ok().flatten();
    let lease = lease.unwrap_or_else(|| panic!("a released job is claimable at once"));
    palisade_server::jobs::run_claimed(&e.server, lease).await;
    let (_, jobs) = call(&e, "GET", "/api/v1/admin/jobs", Some(&e.admin), None).await;
    let job =
        jobs["items"].as_array().and_then(|a| a.iter().find(|j| j["name"] == "db-update")).cloned().unwrap_or_default();
    assert_eq!(job["state"], "done", "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_routes_sqlite() {
    fleet_routes(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_routes_postgres() {
    fleet_routes(true).await;
}
