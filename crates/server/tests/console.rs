//! The web console through `router().oneshot` (no socket, no browser), on SQLite and, when
//! `PALISADE_TEST_DATABASE_URL` is set, on PostgreSQL: sign-in and its CSRF guard, cookie
//! attributes, every page with seeded data, role enforcement, forms that refuse a missing CSRF
//! token and change nothing, sessions that end with their token, escaping of hostile strings,
//! and clear errors for malformed filters. The real-browser walk is `console_browser.rs`.
#![allow(clippy::panic, clippy::unwrap_used)] // a failed expectation is the point of a test or bench

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt as _;
use palisade_server::{Config, Server};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt as _;

const DIGEST: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const LAYER: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
const HOSTILE: &str = "<script>alert(1)</script>";

struct Env {
    server: Arc<Server>,
    admin: String,
    _data: tempfile::TempDir,
}

async fn env(pg: bool) -> Option<Env> {
    let url = if pg {
        match std::env::var("PALISADE_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            Some(base) => Some(pg_schema(&base).await),
            None => {
                eprintln!("PALISADE_TEST_DATABASE_URL unset: PostgreSQL arm skipped");
                return None;
            }
        }
    } else {
        None
    };
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // a data directory the server creates itself: owner-only
    let mut c = Config::new(data.path().join("palisade"));
    c.database_url = url;
    let (server, boot) = Server::open(c).await.unwrap_or_else(|e| panic!("{e}"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.path().join("palisade")).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        assert_eq!(mode, 0o700, "the data directory holds the store and token hashes");
    }
    let path = boot.admin_token_path.unwrap_or_else(|| panic!("no bootstrap token"));
    let admin = std::fs::read_to_string(path).unwrap_or_default().trim().to_string();
    Some(Env { server, admin, _data: data })
}

async fn pg_schema(base: &str) -> String {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(base).await.unwrap_or_else(|e| panic!("PostgreSQL unreachable: {e}"));
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let schema = format!("con{}_{}", std::process::id(), SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut c).await.unwrap_or_else(|e| panic!("{e}"));
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options[search_path]={schema}")
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Resp {
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }
    fn location(&self) -> String {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }
}

async fn send(e: &Env, req: Request<Body>) -> Resp {
    let resp = palisade_server::router(e.server.clone()).oneshot(req).await.unwrap_or_else(|e| match e {});
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    Resp { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

async fn api(e: &Env, method: &str, uri: &str, body: Value) -> Value {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {}", e.admin))
        .header("content-type", "application/json")
        .body(if body.is_null() { Body::empty() } else { Body::from(serde_json::to_vec(&body).unwrap_or_default()) })
        .unwrap_or_else(|e| panic!("{e}"));
    let r = send(e, req).await;
    assert!(r.status.is_success(), "{method} {uri}: {} {}", r.status, r.body);
    serde_json::from_str(&r.body).unwrap_or(Value::Null)
}

async fn get(e: &Env, uri: &str, session: Option<&str>) -> Resp {
    let mut b = Request::builder().uri(uri);
    if let Some(s) = session {
        b = b.header(header::COOKIE, format!("palisade_session={s}"));
    }
    send(e, b.body(Body::empty()).unwrap_or_else(|e| panic!("{e}"))).await
}

async fn post_form(e: &Env, uri: &str, cookie: &str, form: &[(&str, &str)]) -> Resp {
    let body = serde_urlencoded::to_string(form).unwrap_or_default();
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap_or_else(|e| panic!("{e}"));
    send(e, req).await
}

/// The value of the hidden field `name` in a page.
fn hidden(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let at = html.find(&needle).unwrap_or_else(|| panic!("no hidden field {name} in {html}"));
    html[at + needle.len()..].split('"').next().unwrap_or_default().to_string()
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().and_then(|kv| kv.split_once('=')).map(|(_, v)| v.to_string()).unwrap_or_default()
}

/// Sign in with `token`; returns the session secret.
async fn sign_in(e: &Env, token: &str) -> String {
    let form = get(e, "/login", None).await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = hidden(&form.body, "csrf");
    let login_cookie = form.cookie("palisade_login_csrf").unwrap_or_else(|| panic!("no login CSRF cookie"));
    let r = post_form(
        e,
        "/login",
        &format!("palisade_login_csrf={}", cookie_value(&login_cookie)),
        &[("token", token), ("csrf", &csrf), ("next", "/")],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let c = r.cookie("palisade_session").unwrap_or_else(|| panic!("no session cookie"));
    cookie_value(&c)
}

async fn seed(e: &Env) {
    api(
        e,
        "POST",
        "/api/v1/inventory",
        json!({"cluster": "prod", "full": true,
            "nodes": [{"name": "node-a", "kubelet_version": "v1.30.1"}, {"name": "node-b", "kubelet_version": "v1.30.1"}],
            "objects": [{"kind": "Deployment", "namespace": "shop", "name": "web",
                         "images": [{"container": "web", "image_ref": "registry.example/shop/web:1.0", "digest": DIGEST}]}]}),
    )
    .await;
    api(
        e,
        "POST",
        "/api/v1/images",
        json!({"images": [{"digest": DIGEST, "repo": HOSTILE, "tags": ["1.0"],
            "sbom": {"target": {"name": "registry.example/shop/web:1.0", "digest": DIGEST, "layers": [LAYER]},
                     "packages": [{"name": "openssl", "version": "3.0.11-1", "type": "deb", "purl": "pkg:deb/debian/openssl@3.0.11-1",
                                   "found_in": "/var/lib/dpkg/status", "layer": LAYER}]},
            "findings": [{"vuln_id": "CVE-2024-0001", "ids": ["CVE-2024-0001", "DSA-9999-1"],
                          "package": {"name": "openssl", "version": "3.0.11-1", "type": "deb", "purl": "pkg:deb/debian/openssl@3.0.11-1"},
                          "severity": "critical", "fixed_version": "3.0.13-1", "kev": true, "epss": 0.93, "doc": {}}]}]}),
    )
    .await;
    api(
        e,
        "POST",
        "/api/v1/posture",
        json!({"cluster": "prod", "full": true, "findings": [{"check_id": "PAL-K8S-001",
            "object": {"kind": "Deployment", "namespace": "shop", "name": "web"}, "severity": "critical",
            "doc": {"message": "container web runs privileged", "remediation": "set privileged: false",
                    "patch": {"spec": {"template": {"spec": {"containers": [{"name": "web", "securityContext": {"privileged": false}}]}}}}}}]}),
    )
    .await;
    let now = e.server.store.now();
    api(
        e,
        "POST",
        "/api/v1/alerts",
        json!({"alerts": [{"rule": "Terminal shell in container", "severity": "high", "at": now, "cluster": "prod",
            "namespace": "shop", "pod": "web-1", "node": "node-a", "key": "k1",
            "doc": {"message": "shell /bin/sh started in web-1", "tactics": [{"id": "TA0002", "name": "Execution"}],
                    "techniques": [{"id": "T1609", "name": "Container Administration Command"}],
                    "evidence": {"argv": ["/bin/sh"]}, "remediation": ["Find out who opened the shell."]}}]}),
    )
    .await;
    api(
        e,
        "POST",
        "/api/v1/heartbeats",
        json!({"heartbeats": [{"cluster": "prod", "component": "sensor", "instance": "sensor-a", "node": "node-a", "version": "0.1.0"}]}),
    )
    .await;
}

async fn console_pages(pg: bool) {
    let Some(e) = env(pg).await else { return };
    seed(&e).await;

    // Signed out: pages redirect to the sign-in form, keeping where the user was going.
    let r = get(&e, "/images?in_use=true", None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?next=%2Fimages%3Fin_use%3Dtrue");

    // The sign-in form: hidden csrf field and a double-submit cookie; HttpOnly, SameSite=Strict,
    // no Secure on plain HTTP.
    let form = get(&e, "/login", None).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(r#"<label for="token">"#), "{}", form.body);
    let csrf = hidden(&form.body, "csrf");
    let lc = form.cookie("palisade_login_csrf").unwrap_or_default();
    assert!(lc.contains("HttpOnly") && lc.contains("SameSite=Strict") && !lc.contains("Secure"), "{lc}");
    let cookie = format!("palisade_login_csrf={}", cookie_value(&lc));
    // Wrong CSRF: refused, no session.
    let r = post_form(&e, "/login", &cookie, &[("token", &e.admin), ("csrf", "0000")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.cookie("palisade_session").is_none());
    // Wrong token: 401, no session.
    let bad = format!("pal_{}_{}", "0".repeat(16), "0".repeat(64));
    let r = post_form(&e, "/login", &cookie, &[("token", &bad), ("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.cookie("palisade_session").is_none());
    // An off-site `next` is not followed.
    let r =
        post_form(&e, "/login", &cookie, &[("token", &e.admin), ("csrf", &csrf), ("next", "//evil.example/")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/");
    let sc = r.cookie("palisade_session").unwrap_or_default();
    assert!(sc.contains("HttpOnly") && sc.contains("SameSite=Strict") && sc.contains("Path=/"), "{sc}");
    let session = cookie_value(&sc);
    assert_eq!(session.len(), 64);

    // Every page answers with the seeded data, escaped, under a strict CSP.
    let enc = DIGEST.replace(':', "%3A");
    let pages: Vec<(String, Vec<&str>)> = vec![
        (
            "/".into(),
            vec!["Secure score per cluster", "prod", "CVE-2024-0001", "Open incidents", "PSS baseline", "<td>0%</td>"],
        ),
        ("/inventory".into(), vec!["prod", "shop", "registry.example/shop/web:1.0"]),
        ("/inventory?cluster=prod&namespace=shop".into(), vec!["web"]),
        ("/inventory?min_severity=critical&posture=true".into(), vec!["registry.example/shop/web:1.0"]),
        ("/images".into(), vec!["&#60;script&#62;alert(1)", "C1"]),
        (
            format!("/images/{DIGEST}"),
            vec!["openssl", "layer 1", "CVE-2024-0001", "DSA-9999-1", "3.0.13-1", "KEV", "93.0%", "Save triage"],
        ),
        (format!("/images/{enc}"), vec!["openssl"]),
        ("/vulnerabilities".into(), vec!["CVE-2024-0001", "openssl"]),
        ("/vulnerabilities/CVE-2024-0001".into(), vec!["Blast radius of CVE-2024-0001", "Deployment", "prod"]),
        ("/vulnerabilities/DSA-9999-1".into(), vec!["Blast radius of DSA-9999-1", "CVE-2024-0001"]),
        ("/recommendations".into(), vec!["PAL-K8S-001", "Privileged container", "CIS 5.2.2", "PSS baseline"]),
        (
            "/recommendations?check=PAL-K8S-001".into(),
            vec!["container web runs privileged", "set privileged: false", "securityContext", "Why it matters"],
        ),
        (
            "/alerts".into(),
            vec!["Terminal shell in container", "TA0002 Execution", "T1609", "pod shop/web-1", "Resolve"],
        ),
        ("/fleet".into(), vec!["node-b", "missing", "50%"]),
        ("/settings".into(), vec!["bootstrap admin", "session.create", "Create token"]),
    ];
    for (path, wants) in &pages {
        let r = get(&e, path, Some(&session)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        for w in wants {
            assert!(r.body.contains(w), "{path} lacks {w:?}: {}", r.body);
        }
        assert!(!r.body.contains(HOSTILE), "{path} echoes a raw script tag");
        let csp = r.headers.get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(r.headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"), "{path}");
    }
    // Filters narrow; bad filters are clear errors.
    let future = e.server.store.now() + 60;
    let r = get(&e, &format!("/vulnerabilities?since={future}"), Some(&session)).await;
    assert!(r.status == StatusCode::OK && r.body.contains("No open finding matches"), "{}", r.body);
    let r = get(&e, &format!("/vulnerabilities?since={}", future - 3600), Some(&session)).await;
    assert!(r.body.contains("CVE-2024-0001"), "{}", r.body);
    let r = get(&e, "/inventory?posture=false", Some(&session)).await;
    assert!(r.status == StatusCode::OK && r.body.contains("No workload matches"), "{}", r.body);
    let r = get(&e, "/vulnerabilities?package=zlib", Some(&session)).await;
    assert!(r.status == StatusCode::OK && r.body.contains("No open finding matches"), "{}", r.body);
    let r = get(&e, "/images?min_severity=apocalyptic", Some(&session)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("unknown severity"), "{}", r.body);
    let r = get(&e, "/images/sha256:..%2F..%2Fetc%2Fpasswd", Some(&session)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = get(&e, &format!("/vulnerabilities/{}", "A".repeat(5000)), Some(&session)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = get(&e, "/no/such/page", Some(&session)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Forms: without the CSRF token nothing changes.
    let page = get(&e, &format!("/images/{DIGEST}"), Some(&session)).await;
    let csrf = hidden(&page.body, "csrf");
    let fid = {
        let at = page.body.find("/findings/").unwrap_or_else(|| panic!("no triage form"));
        page.body[at + 10..].split('/').next().unwrap_or_default().to_string()
    };
    let sess_cookie = format!("palisade_session={session}");
    let uri = format!("/findings/{fid}/triage");
    let r = post_form(&e, &uri, &sess_cookie, &[("state", "false_positive")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let id: i64 = fid.parse().unwrap_or_else(|e| panic!("{fid}: {e}"));
    let f =
        e.server.store.get_finding(id).await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("no finding"));
    assert!(f.triage.is_none(), "a form without CSRF changed the triage");
    // not_affected without a justification is refused by the store's rule.
    let r = post_form(&e, &uri, &sess_cookie, &[("csrf", &csrf), ("state", "not_affected")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let back = format!("/images/{DIGEST}");
    let r = post_form(
        &e,
        &uri,
        &sess_cookie,
        &[
            ("csrf", &csrf),
            ("state", "not_affected"),
            ("justification", "code_not_reachable"),
            ("detail", "TLS unused"),
            ("back", &back),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), back);
    let hist = e.server.store.triage_history(id).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(hist.len(), 1);
    assert!(hist[0].actor.contains("via console"), "{}", hist[0].actor);
    let r = get(&e, &back, Some(&session)).await;
    assert!(r.body.contains("not_affected (code_not_reachable) by"), "{}", r.body);

    // Exempt the failing resource: still listed, marked, and the secure score no longer counts it.
    let rec = "/recommendations?check=PAL-K8S-001";
    let form = [
        ("csrf", csrf.as_str()),
        ("check", "PAL-K8S-001"),
        ("cluster", "prod"),
        ("namespace", "shop"),
        ("name", "web"),
        ("scope", "resource"),
        ("justification", "needs host devices until the Q1 rewrite"),
        ("days", "30"),
        ("back", rec),
    ];
    let r = post_form(&e, "/recommendations/exemptions", &sess_cookie, &form[1..]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "an exemption without CSRF");
    let mut no_reason = form;
    no_reason[6].1 = "";
    let r = post_form(&e, "/recommendations/exemptions", &sess_cookie, &no_reason).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = post_form(&e, "/recommendations/exemptions", &sess_cookie, &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = get(&e, rec, Some(&session)).await;
    assert!(
        page.body.contains("container web runs privileged") && page.body.contains("exempt (exemption #"),
        "{}",
        page.body
    );
    assert!(page.body.contains("needs host devices until the Q1 rewrite"));
    let page = get(&e, "/", Some(&session)).await;
    assert!(page.body.contains("<td>100%</td>"), "the exemption did not lift the score: {}", page.body);
    let ex = e.server.store.list_exemptions(false).await.unwrap_or_default();
    assert_eq!(ex.len(), 1);
    assert!(ex[0].created_by.contains("via console"));
    let r = post_form(
        &e,
        &format!("/recommendations/exemptions/{}/revoke", ex[0].id),
        &sess_cookie,
        &[("csrf", &csrf), ("back", rec)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = get(&e, "/", Some(&session)).await;
    assert!(page.body.contains("<td>0%</td>"), "a revoked exemption still counts: {}", page.body);
    let listed = api(&e, "GET", "/api/v1/posture/exemptions?include_inactive=true", Value::Null).await;
    assert!(listed["items"][0]["revoked_by"].as_str().is_some_and(|b| b.contains("via console")), "{listed}");
    let made = api(
        &e,
        "POST",
        "/api/v1/posture/exemptions",
        json!({"cluster": "prod", "check_id": "PAL-K8S-001", "namespace": "shop", "justification": "api", "expires_at": e.server.store.now() + 3600}),
    )
    .await;
    let xid = made["id"].as_i64().unwrap_or_default();
    let revoked = api(&e, "POST", &format!("/api/v1/posture/exemptions/{xid}/revoke"), Value::Null).await;
    assert!(revoked["revoked_at"].is_i64(), "{revoked}");

    // Resolve the alert.
    let alerts = e.server.store.list_alerts(&Default::default()).await.unwrap_or_else(|e| panic!("{e}"));
    let aid = alerts.items[0].id;
    let r =
        post_form(&e, &format!("/alerts/{aid}/resolve"), &sess_cookie, &[("csrf", &csrf), ("back", "/alerts")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let a = e.server.store.get_alert(aid).await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("gone"));
    assert!(a.resolved_at.is_some());
    let r = get(&e, "/alerts", Some(&session)).await;
    assert!(r.body.contains("No alert matches"), "{}", r.body);

    // A viewer reads but cannot triage, resolve or manage tokens.
    let r =
        post_form(&e, "/settings/tokens", &sess_cookie, &[("csrf", &csrf), ("name", "ci viewer"), ("role", "viewer")])
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let viewer_token = hidden_value(&r.body, "new-token");
    assert!(viewer_token.starts_with("pal_"), "{viewer_token}");
    assert_eq!(r.headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
    let vs = sign_in(&e, &viewer_token).await;
    let vpage = get(&e, &back, Some(&vs)).await;
    assert_eq!(vpage.status, StatusCode::OK);
    assert!(!vpage.body.contains("Save triage"), "a viewer is offered the triage form");
    let vcsrf = hidden(&vpage.body, "csrf");
    let vcookie = format!("palisade_session={vs}");
    let r = post_form(&e, &uri, &vcookie, &[("csrf", &vcsrf), ("state", "resolved")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let th = e.server.store.triage_history(id).await;
    assert_eq!(th.as_ref().map(Vec::len).ok(), Some(1), "{th:?}");
    let r = get(&e, "/settings", Some(&vs)).await;
    assert!(r.body.contains("needs the admin role") && !r.body.contains("bootstrap admin"), "{}", r.body);
    // The session of another session's CSRF token is refused.
    let r = post_form(&e, "/logout", &vcookie, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // An agent's token (bound to a cluster) and a one-time token open no console session.
    for (name, cluster, once) in [("agent prod", Some("prod".to_string()), false), ("one-time", None, true)] {
        let (_, secret) = e
            .server
            .store
            .create_token(
                &palisade_store::NewToken {
                    name: name.into(),
                    role: palisade_store::Role::Operator,
                    expires_at: None,
                    single_use: once,
                    cluster,
                },
                "test",
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let form = get(&e, "/login", None).await;
        let c =
            format!("palisade_login_csrf={}", cookie_value(&form.cookie("palisade_login_csrf").unwrap_or_default()));
        let r = post_form(&e, "/login", &c, &[("token", &secret), ("csrf", &hidden(&form.body, "csrf"))]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}: {}", r.body);
        assert!(r.cookie("palisade_session").is_none(), "{name} got a session");
    }
    // Console bodies are small: a 100 KiB sign-in form is refused before it is parsed.
    let big = "a".repeat(100 << 10);
    let r = post_form(&e, "/login", "x=y", &[("token", &big)]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Hostile bodies and paths: refused, nothing changes, the server answers the next request.
    let before = e.server.store.list_audit(&Default::default()).await.map(|p| p.items.len()).unwrap_or(0);
    for (uri, ctype, body) in [
        ("/login", "application/x-www-form-urlencoded", vec![0xff, 0xfe, b'=', 0x00, b'%', b'G']),
        ("/login", "application/json", br#"{"token": "x"}"#.to_vec()),
        (
            "/findings/not-a-number/triage",
            "application/x-www-form-urlencoded",
            format!("csrf={csrf}&state=resolved").into_bytes(),
        ),
        (
            "/findings/99999999999999999999/triage",
            "application/x-www-form-urlencoded",
            format!("csrf={csrf}").into_bytes(),
        ),
        (
            "/recommendations/exemptions",
            "application/x-www-form-urlencoded",
            format!("csrf={csrf}&csrf=x&days=-5&scope=all").into_bytes(),
        ),
        ("/settings/tokens", "application/x-www-form-urlencoded", format!("csrf={csrf}&name=x&role=root").into_bytes()),
    ] {
        let req = Request::builder()
            .method("POST")
            .uri(uri)
            .header(header::COOKIE, &sess_cookie)
            .header(header::CONTENT_TYPE, ctype)
            .body(Body::from(body))
            .unwrap_or_else(|e| panic!("{e}"));
        let r = send(&e, req).await;
        assert!(r.status.is_client_error(), "{uri} {ctype}: {} {}", r.status, r.body);
    }
    let after = e.server.store.list_audit(&Default::default()).await.map(|p| p.items.len()).unwrap_or(0);
    assert_eq!(before, after, "a refused form wrote something");
    assert_eq!(get(&e, "/", Some(&session)).await.status, StatusCode::OK);

    // Revoking the token ends its sessions at once.
    let tokens = e.server.store.list_tokens().await.unwrap_or_else(|e| panic!("{e}"));
    let vid = tokens.iter().find(|t| t.name == "ci viewer").map(|t| t.id.clone()).unwrap_or_default();
    let r = post_form(&e, &format!("/settings/tokens/{vid}/revoke"), &sess_cookie, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = get(&e, "/", Some(&vs)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    // Sign-out ends the session server-side (a copied cookie no longer works).
    let r = post_form(&e, "/logout", &sess_cookie, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.cookie("palisade_session").is_some_and(|c| c.contains("Max-Age=0")));
    let r = get(&e, "/", Some(&session)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let audit = e.server.store.list_audit(&Default::default()).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(audit.items.iter().any(|a| a.action == "session.end"));
    // Garbage cookies are just signed-out requests.
    for junk in ["", "zz", &"f".repeat(64), &"x".repeat(10_000)] {
        let r = get(&e, "/", Some(junk)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{junk:.20}");
    }
}

fn hidden_value(html: &str, id: &str) -> String {
    let needle = format!("id=\"{id}\" class=\"secret\" value=\"");
    let at = html.find(&needle).unwrap_or_else(|| panic!("no {id} in {html}"));
    html[at + needle.len()..].split('"').next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_sqlite() {
    console_pages(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_postgres() {
    console_pages(true).await;
}
