//! The web console in a real browser: Debian's Chromium, headless, driven through chromedriver
//! (WebDriver, with the `fantoccini` crate) against a server on a real socket, seeded through
//! the real API.
//!
//! What it covers, in one session:
//! 1. sign-in: `/login` serves a form whose CSRF token is the hidden field `csrf`; the admin
//!    token in `token` signs in and lands on the overview;
//! 2. every page (`/`, `/inventory`, `/images`, `/images/{digest}`, `/vulnerabilities`,
//!    `/recommendations`, `/alerts`, `/fleet`, `/settings`) renders what was seeded; a full-page
//!    PNG of each is saved under `$CARGO_TARGET_DIR` (or `target/`) `/console-screenshots/`;
//! 3. a crawl of every internal link (breadth-first from `/`): no link leads to an error page;
//! 4. on every page visited: no browser console error (CSP violations included), every form
//!    control has a label, every `<img>` has an `alt`;
//! 5. the filters of `/vulnerabilities` narrow the results;
//! 6. triage of a finding from its image page, seen on the page and in the API's triage history
//!    (actor "… via console");
//! 7. resolving an alert from `/alerts`, seen on the page and in the API;
//! 8. signing out: the overview then sends the browser to `/login`, and the old session cookie,
//!    put back, opens nothing (the session ended on the server, not only in the browser).
//!
//! Each page check is first shown to fail once (the console's 404 page, a `console.error`, an
//! unlabelled input and an `<img>` without `alt` injected into a page), so a check that can no
//! longer see anything does not pass silently. A failing run leaves `FAILED.png` beside the
//! screenshots.
//!
//! It needs Debian's `chromium` and `chromium-driver` (scripts/install-deps.sh installs them) and
//! FAILS without them: a console that no browser has checked is not a tested console.
//! `PALISADE_CHROMIUM` and `PALISADE_CHROMEDRIVER` override the binaries' paths.
#![allow(clippy::panic, clippy::unwrap_used)] // a failed expectation is the point of a test or bench

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt as _;
use http_body_util::BodyExt as _;
use palisade_server::{Config, Server};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

/// The image the `web` workloads run (two KEV findings).
const WEB: &str = "sha256:4b825dc642cb6eb9a060e54bf8d69288fbee4904e0a1f1b2c3d4e5f60718293a";
/// The image the `worker` workload runs.
const WORKER: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
/// An older `web` build no workload runs (findings, no SBOM).
const OLD: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const LAYER1: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
const LAYER2: &str = "sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9";

/// Most pages the crawl visits.
const CRAWL_CAP: usize = 300;
/// How long one page may take to load after a click.
const NAV_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// The browser

fn install_hint() -> &'static str {
    "install Debian's chromium and chromium-driver: run scripts/install-deps.sh \
     (or apt-get install -y --no-install-recommends chromium chromium-driver)"
}

/// A binary from `$var`, else the first of `candidates` that exists; a missing one fails the test.
fn binary(var: &str, candidates: &[&str], what: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{var}={} does not exist; {}", p.display(), install_hint());
        return p;
    }
    candidates.iter().map(PathBuf::from).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "{what} not found (looked at {}): this test needs a real browser; {}",
            candidates.join(", "),
            install_hint()
        )
    })
}

/// chromedriver, in its own process group; dropping it ends the group (chromedriver and any
/// Chromium it started), also when the test panics.
struct Chromedriver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let pgid = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &pgid]).stderr(Stdio::null()).status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &pgid]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    l.local_addr().unwrap_or_else(|e| panic!("{e}")).port()
}

/// `GET http://127.0.0.1:{port}{path}` with a plain socket; the body.
fn plain_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").ok()?;
    // chromedriver keeps the connection open: read until the body is complete (or a timeout)
    let (mut out, mut buf) = (Vec::new(), [0u8; 4096]);
    loop {
        if let Some(at) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..at]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|n| out.len() >= at + 4 + n) {
                return Some(String::from_utf8_lossy(&out[at + 4..]).into_owned());
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn start_chromedriver() -> Chromedriver {
    let driver = binary("PALISADE_CHROMEDRIVER", &["/usr/bin/chromedriver"], "chromedriver");
    let port = free_port();
    let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = std::env::temp_dir().join(format!("palisade-chromedriver-{port}.log"));
    let mut cmd = Command::new(&driver);
    cmd.arg(format!("--port={port}")).arg(format!("--log-path={}", log.display()));
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).stdin(Stdio::null());
    {
        use std::os::unix::process::CommandExt as _;
        cmd.process_group(0);
    }
    let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}; {}", driver.display(), install_hint()));
    let mut cd = Chromedriver { child, port, _profile: profile };
    let t = Instant::now();
    loop {
        if let Some(body) = plain_get(port, "/status") {
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if v.pointer("/value/ready") == Some(&Value::Bool(true)) {
                return cd;
            }
        }
        if let Ok(Some(st)) = cd.child.try_wait() {
            panic!("chromedriver exited ({st}) before it was ready; log: {}; {}", log.display(), install_hint());
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "chromedriver did not get ready in 20 s (log: {})",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn chromium() -> PathBuf {
    binary("PALISADE_CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"], "chromium")
}

async fn connect(cd: &Chromedriver, chromium: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--disable-default-apps", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", cd._profile.path().display()),
            ],
        }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    // chromedriver listens on loopback: plain HTTP, no TLS connector
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", cd.port))
        .await
        .unwrap_or_else(|e| panic!("cannot start Chromium through chromedriver: {e}; {}", install_hint()))
}

/// chromedriver's log endpoint (`POST /session/{id}/se/log`): the browser console entries since
/// the last call.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }
    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

/// The browser console's SEVERE entries since the last call.
async fn console_errors(c: &Client) -> Vec<String> {
    let v = c.issue_cmd(BrowserLog).await.unwrap_or_else(|e| panic!("reading the browser log: {e}"));
    v.as_array()
        .into_iter()
        .flatten()
        .filter(|e| e.get("level").and_then(Value::as_str) == Some("SEVERE"))
        .map(|e| e.get("message").and_then(Value::as_str).unwrap_or_default().to_string())
        .collect()
}

async fn js(c: &Client, script: &str, args: Vec<Value>) -> Value {
    c.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

async fn find(c: &Client, css: &str) -> Element {
    let url = c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{url}: no element {css:?}: {e}"))
}

async fn find_in(e: &Element, css: &str) -> Element {
    e.find(Locator::Css(css)).await.unwrap_or_else(|err| panic!("no element {css:?} inside: {err}"))
}

/// Mark the current document, so a new one can be told from it.
async fn mark_document(c: &Client) {
    js(c, "document.documentElement.setAttribute('data-test-old', '1'); return null;", vec![]).await;
}

/// Wait until a document other than the marked one has loaded.
async fn wait_new_document(c: &Client) {
    let t = Instant::now();
    loop {
        let done = c
            .execute(
                "return !document.documentElement.hasAttribute('data-test-old') && document.readyState === 'complete';",
                vec![],
            )
            .await
            .map(|v| v == Value::Bool(true))
            .unwrap_or(false);
        if done {
            return;
        }
        assert!(t.elapsed() < NAV_TIMEOUT, "no new page loaded within {NAV_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Click `e` (a submit button or a link) and wait for the page it leads to.
async fn click_and_wait(c: &Client, e: &Element) {
    mark_document(c).await;
    e.click().await.unwrap_or_else(|err| panic!("click: {err}"));
    wait_new_document(c).await;
}

async fn path_and_query(c: &Client) -> String {
    let u = c.current_url().await.unwrap_or_else(|e| panic!("{e}"));
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

/// What a page is: its title, first heading, whether it has the console's frame.
#[derive(Debug)]
struct PageInfo {
    title: String,
    h1: String,
    framed: bool,
}

impl PageInfo {
    /// `Some(why)` when this is an error page (templates/error.html: `<h1>STATUS REASON</h1>`)
    /// or not a console page at all (a bare "template error", JSON, ...).
    fn problem(&self) -> Option<String> {
        let status_like =
            |s: &str| s.len() >= 4 && s.as_bytes()[..3].iter().all(u8::is_ascii_digit) && s.as_bytes()[3] == b' ';
        if status_like(&self.h1) || status_like(&self.title) {
            Some(format!("error page {:?}", self.h1))
        } else if !self.framed {
            Some(format!("not a console page (title {:?}, h1 {:?})", self.title, self.h1))
        } else {
            None
        }
    }
}

async fn page_info(c: &Client) -> PageInfo {
    let v = js(
        c,
        "const h = document.querySelector('h1');
         return { title: document.title,
                  h1: h ? h.textContent.trim() : '',
                  framed: !!document.querySelector('header nav[aria-label=\"Main\"]') && !!document.querySelector('main#main') };",
        vec![],
    )
    .await;
    PageInfo {
        title: v["title"].as_str().unwrap_or_default().to_string(),
        h1: v["h1"].as_str().unwrap_or_default().to_string(),
        framed: v["framed"].as_bool().unwrap_or(false),
    }
}

/// Form controls without a label and images without `alt` on the current page.
async fn a11y_problems(c: &Client) -> Vec<String> {
    let v = js(
        c,
        "const out = [];
         const skip = ['hidden', 'submit', 'button', 'reset', 'image'];
         for (const el of document.querySelectorAll('input, select, textarea')) {
           if (el.tagName === 'INPUT' && skip.includes((el.getAttribute('type') || '').toLowerCase())) continue;
           const byFor = el.id ? [...document.querySelectorAll('label')].some(l => l.htmlFor === el.id && l.textContent.trim() !== '') : false;
           const wrapped = !!el.closest('label');
           const aria = (el.getAttribute('aria-label') || '').trim() !== '';
           const by = (el.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean)
                        .some(id => { const t = document.getElementById(id); return t && t.textContent.trim() !== ''; });
           if (!(byFor || wrapped || aria || by)) out.push('form control without a label: ' + el.outerHTML.slice(0, 160));
         }
         for (const img of document.querySelectorAll('img')) {
           if (!img.hasAttribute('alt')) out.push('img without alt: ' + img.outerHTML.slice(0, 160));
         }
         return out;",
        vec![],
    )
    .await;
    v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)).collect()
}

/// Every check that applies to any page: what is wrong with the current one.
async fn page_problems(c: &Client) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = page_info(c).await.problem() {
        out.push(p);
    }
    out.extend(console_errors(c).await.into_iter().map(|m| format!("browser console error: {m}")));
    out.extend(a11y_problems(c).await);
    out
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// A full-page PNG of the current page, `NAME.png`.
async fn screenshot(c: &Client, name: &str) {
    let h = js(c, "return Math.ceil(document.documentElement.scrollHeight);", vec![]).await.as_u64().unwrap_or(900);
    let h = u32::try_from(h.clamp(600, 8000)).unwrap_or(900);
    let _ = c.set_window_size(1280, h + 140).await;
    let png = c.screenshot().await.unwrap_or_else(|e| panic!("screenshot of {name}: {e}"));
    let _ = c.set_window_size(1280, 900).await;
    assert!(png.starts_with(b"\x89PNG"), "the screenshot of {name} is not a PNG");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Texts of the elements matching `css`.
async fn texts(c: &Client, css: &str) -> Vec<String> {
    let v =
        js(c, "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent.trim());", vec![json!(css)])
            .await;
    v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)).collect()
}

async fn main_text(c: &Client) -> String {
    js(c, "return document.querySelector('main').innerText;", vec![]).await.as_str().unwrap_or_default().to_string()
}

// ---------------------------------------------------------------------------------------------
// The server and its data

struct Running {
    server: Arc<Server>,
    base: String,
    admin: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _data: tempfile::TempDir,
    _feeds: tempfile::TempDir,
}

async fn start_server() -> Running {
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // an offline feed (one OSV record as PyPA publishes it): the start-up database update
    // builds from it and downloads nothing
    let feeds = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pypi = feeds.path().join("osv").join("PyPI");
    std::fs::create_dir_all(&pypi).unwrap_or_else(|e| panic!("{e}"));
    let osv = json!({
        "schema_version": "1.4.0", "id": "GHSA-j8r2-6x86-q33q", "modified": "2023-06-01T00:00:00Z",
        "published": "2023-05-22T20:36:32Z", "aliases": ["CVE-2023-32681", "PYSEC-2023-74"],
        "summary": "Unintended leak of Proxy-Authorization header in requests",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "requests", "purl": "pkg:pypi/requests"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}]}],
        "database_specific": {"severity": "MODERATE"}
    });
    std::fs::write(pypi.join("GHSA-j8r2-6x86-q33q.json"), osv.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let mut c = Config::new(data.path().to_path_buf());
    c.db_from = vec![feeds.path().to_path_buf()];
    c.job_poll = Duration::from_millis(50);
    c.shutdown_grace = Duration::from_secs(2);
    let (server, boot) = Server::open(c).await.unwrap_or_else(|e| panic!("{e}"));
    let path = boot.admin_token_path.unwrap_or_else(|| panic!("no bootstrap token on first start"));
    assert_eq!(path, data.path().join("admin.token"));
    let admin = std::fs::read_to_string(&path).unwrap_or_default().trim().to_string();
    assert!(!admin.is_empty(), "empty {}", path.display());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let s2 = server.clone();
    let task = tokio::spawn(async move {
        let _ = palisade_server::serve(s2, listener, async {
            let _ = rx.await;
        })
        .await;
    });
    // Let the start-up database update and its re-assessment finish before seeding: the
    // re-assessment would otherwise re-match the seeded SBOMs against the empty database.
    let t = Instant::now();
    loop {
        let jobs = server.store.list_jobs().await.unwrap_or_else(|e| panic!("{e}"));
        let job = jobs.iter().find(|j| j.name == palisade_server::DB_UPDATE_JOB);
        if let Some(j) = job.filter(|j| j.finished_at.is_some()) {
            assert_eq!(j.last_error, None, "the start-up database update failed");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the start-up database update did not finish: {jobs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Running { server, base: format!("http://{addr}"), admin, stop: Some(tx), task, _data: data, _feeds: feeds }
}

impl Running {
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }

    /// An API call with the admin token.
    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.admin))
            .header("content-type", "application/json")
            .body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty))
            .unwrap_or_else(|e| panic!("{e}"));
        let res = palisade_server::router(self.server.clone()).oneshot(req).await.unwrap_or_else(|e| panic!("{e}"));
        let status = res.status();
        let bytes = res.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "{method} {path}: {}", String::from_utf8_lossy(&bytes));
        v
    }
}

fn finding(
    vuln: &str,
    ids: &[&str],
    pkg: (&str, &str, &str),
    severity: &str,
    fixed: Option<&str>,
    kev: bool,
    epss: f64,
) -> Value {
    let (name, version, kind) = pkg;
    let purl = match kind {
        "deb" => format!("pkg:deb/debian/{name}@{version}?distro=debian-12"),
        _ => format!("pkg:{kind}/{name}@{version}"),
    };
    json!({
        "vuln_id": vuln, "ids": ids,
        "package": {"name": name, "version": version, "type": kind, "purl": purl},
        "severity": severity, "fixed_version": fixed, "kev": kev, "epss": epss,
        "doc": {"summary": format!("{vuln} in {name}")},
    })
}

fn package(name: &str, version: &str, kind: &str, found_in: &str, layer: &str) -> Value {
    let purl = match kind {
        "deb" => format!("pkg:deb/debian/{name}@{version}?distro=debian-12"),
        _ => format!("pkg:{kind}/{name}@{version}"),
    };
    json!({"name": name, "version": version, "type": kind, "purl": purl, "found_in": found_in, "layer": layer})
}

fn workload(kind: &str, ns: &str, name: &str, image_ref: &str, digest: &str) -> Value {
    json!({"kind": kind, "namespace": ns, "name": name,
           "images": [{"container": name, "image_ref": image_ref, "digest": digest}]})
}

async fn seed(r: &Running) {
    let now = r.server.store.now();
    r.api(
        "POST",
        "/api/v1/inventory",
        Some(json!({
            "cluster": "prod-eu", "k8s_version": "v1.30.2", "full": true,
            "nodes": [{"name": "node-a", "kubelet_version": "v1.30.2"}, {"name": "node-b", "kubelet_version": "v1.30.2"}],
            "objects": [
                {"kind": "Namespace", "namespace": "", "name": "shop"},
                workload("Deployment", "shop", "web", "registry.example/shop/web:1.4.2", WEB),
                workload("Deployment", "shop", "worker", "registry.example/shop/worker:2.0.0", WORKER),
            ],
        })),
    )
    .await;
    r.api(
        "POST",
        "/api/v1/inventory",
        Some(json!({
            "cluster": "staging", "full": true,
            "nodes": [{"name": "stg-1", "kubelet_version": "v1.31.0"}],
            "objects": [workload("Deployment", "payments", "api", "registry.example/shop/web:1.4.2", WEB)],
        })),
    )
    .await;
    let webp = ("libwebp7", "1.2.4-0.2", "deb");
    let web_findings = vec![
        finding(
            "CVE-2023-4863",
            &["CVE-2023-4863", "DSA-5496-1"],
            webp,
            "critical",
            Some("1.2.4-0.2+deb12u1"),
            true,
            0.94,
        ),
        finding(
            "CVE-2023-4911",
            &["CVE-2023-4911", "DSA-5514-1"],
            ("libc6", "2.36-9+deb12u1", "deb"),
            "high",
            Some("2.36-9+deb12u3"),
            true,
            0.71,
        ),
        finding(
            "CVE-2023-5678",
            &["CVE-2023-5678"],
            ("openssl", "3.0.11-1~deb12u1", "deb"),
            "medium",
            Some("3.0.13-1~deb12u1"),
            false,
            0.003,
        ),
        finding(
            "CVE-2023-32681",
            &["CVE-2023-32681", "GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"],
            ("requests", "2.28.0", "pypi"),
            "medium",
            Some("2.31.0"),
            false,
            0.062,
        ),
    ];
    let web_sbom = json!({
        "target": {"name": "registry.example/shop/web:1.4.2", "digest": WEB, "layers": [LAYER1, LAYER2], "platform": "linux/amd64"},
        "os": {"family": "debian", "version": "12", "codename": "bookworm"},
        "packages": [
            package("libc6", "2.36-9+deb12u1", "deb", "/var/lib/dpkg/status", LAYER1),
            package("libwebp7", "1.2.4-0.2", "deb", "/var/lib/dpkg/status", LAYER1),
            package("openssl", "3.0.11-1~deb12u1", "deb", "/var/lib/dpkg/status", LAYER1),
            package("requests", "2.28.0", "pypi", "/usr/lib/python3/dist-packages/requests-2.28.0.dist-info/METADATA", LAYER2),
        ],
    });
    let worker_sbom = json!({
        "target": {"name": "registry.example/shop/worker:2.0.0", "digest": WORKER, "layers": [LAYER1]},
        "os": {"family": "debian", "version": "12"},
        "packages": [package("openssl", "3.0.11-1~deb12u1", "deb", "/var/lib/dpkg/status", LAYER1)],
    });
    r.api(
        "POST",
        "/api/v1/images",
        Some(json!({"images": [
            {"digest": WEB, "repo": "registry.example/shop/web", "tags": ["1.4.2"], "sbom": web_sbom, "findings": web_findings},
            {"digest": WORKER, "repo": "registry.example/shop/worker", "tags": ["2.0.0"], "sbom": worker_sbom, "findings": [
                finding("CVE-2023-5678", &["CVE-2023-5678"], ("openssl", "3.0.11-1~deb12u1", "deb"), "medium", Some("3.0.13-1~deb12u1"), false, 0.003),
                finding("CVE-2024-2511", &["CVE-2024-2511"], ("openssl", "3.0.11-1~deb12u1", "deb"), "low", Some("3.0.14-1~deb12u1"), false, 0.001),
            ]},
            {"digest": OLD, "repo": "registry.example/shop/web", "tags": ["1.3.0"], "findings": [
                finding("CVE-2023-4863", &["CVE-2023-4863"], webp, "critical", Some("1.2.4-0.2+deb12u1"), true, 0.94),
            ]},
        ]})),
    )
    .await;
    r.api(
        "POST",
        "/api/v1/posture",
        Some(json!({"cluster": "prod-eu", "full": true, "findings": [
            {"check_id": "PAL-K8S-001", "object": {"kind": "Deployment", "namespace": "shop", "name": "web"}, "severity": "high",
             "doc": {"message": "Container web may run as root", "remediation": "Set securityContext.runAsNonRoot: true",
                     "patch": {"spec": {"template": {"spec": {"securityContext": {"runAsNonRoot": true}}}}}}},
            {"check_id": "PAL-K8S-014", "object": {"kind": "Deployment", "namespace": "shop", "name": "worker"}, "severity": "medium",
             "doc": {"message": "Container worker has no memory limit", "remediation": "Set resources.limits.memory"}},
        ]})),
    )
    .await;
    r.api(
        "POST",
        "/api/v1/alerts",
        Some(json!({"alerts": [
            {"rule": "shell-in-container", "severity": "high", "at": now - 600, "cluster": "prod-eu",
             "namespace": "shop", "pod": "web-7d9f8-x2k4q", "node": "node-a",
             "doc": {"message": "A shell was started in container web",
                     "tactics": [{"id": "TA0002", "name": "Execution"}],
                     "techniques": [{"id": "T1059.004", "name": "Unix Shell"}],
                     "entities": {"process": {"exe": "/bin/sh"}},
                     "evidence": {"process": {"exe": "/bin/sh", "cmdline": "sh -c id"}, "parent": "/usr/bin/python3"},
                     "remediation": ["Find out who started the shell.", "Remove shells from the image."]}},
            {"rule": "miner-pool-dns", "severity": "critical", "at": now - 300, "cluster": "prod-eu",
             "namespace": "shop", "pod": "worker-5c6b7-p9z8t", "node": "node-b",
             "doc": {"message": "A DNS query for a known mining pool",
                     "tactics": [{"id": "TA0040", "name": "Impact"}],
                     "techniques": [{"id": "T1496", "name": "Resource Hijacking"}],
                     "evidence": "query xmr.pool.example A"}},
        ]})),
    )
    .await;
    // a sensor on node-a only: node-b and stg-1 have none
    r.api(
        "POST",
        "/api/v1/heartbeats",
        Some(json!({"heartbeats": [
            {"cluster": "prod-eu", "component": "sensor", "instance": "palisade-sensor-node-a", "node": "node-a", "version": "0.1.0"},
            {"cluster": "prod-eu", "component": "agent", "instance": "palisade-agent-6f7d9", "version": "0.1.0"},
        ]})),
    )
    .await;
}

/// The ID of the open finding `vuln` in image `digest`.
async fn finding_id(r: &Running, digest: &str, vuln: &str) -> i64 {
    let v = r.api("GET", &format!("/api/v1/images/{digest}/findings"), None).await;
    let items = v.get("items").and_then(Value::as_array).unwrap_or_else(|| panic!("findings of {digest}: {v}"));
    items
        .iter()
        .find(|f| f["vuln_id"] == vuln)
        .and_then(|f| f["id"].as_i64())
        .unwrap_or_else(|| panic!("no finding {vuln} in {digest}: {v}"))
}

async fn alert_id(r: &Running, rule: &str) -> i64 {
    let v = r.api("GET", "/api/v1/alerts", None).await;
    let items = v.get("items").and_then(Value::as_array).unwrap_or_else(|| panic!("alerts: {v}"));
    items
        .iter()
        .find(|a| a["rule"] == rule)
        .and_then(|a| a["id"].as_i64())
        .unwrap_or_else(|| panic!("no alert {rule}: {v}"))
}

// ---------------------------------------------------------------------------------------------
// The test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_works_in_a_real_browser() {
    let started = Instant::now();
    let _ = std::fs::remove_file(screenshot_dir().join("FAILED.png"));
    // the browser first: without it the test fails at once, saying what to install
    let chromium = chromium();
    let driver = start_chromedriver();
    let r = start_server().await;
    seed(&r).await;
    let client = connect(&driver, &chromium).await;
    let outcome = std::panic::AssertUnwindSafe(walk(&client, &r)).catch_unwind().await;
    if outcome.is_err() {
        // what the browser showed when it failed
        let _ = std::panic::AssertUnwindSafe(screenshot(&client, "FAILED")).catch_unwind().await;
        if let Ok(u) = client.current_url().await {
            eprintln!("the browser was at {u}; its screenshot is {}", screenshot_dir().join("FAILED.png").display());
        }
    }
    let _ = client.close().await;
    drop(driver);
    r.stop().await;
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
    eprintln!("console browser test passed in {:.1} s", started.elapsed().as_secs_f64());
}

async fn walk(c: &Client, r: &Running) {
    let base = r.base.as_str();
    let url = |p: &str| format!("{base}{p}");

    // --- 1. sign in -------------------------------------------------------------------------
    c.goto(&url("/")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(path_and_query(c).await, "/login?next=%2F", "signed out, / must send the browser to the sign-in form");
    let problems = page_problems_login(c).await;
    assert!(problems.is_empty(), "/login: {problems:#?}");
    let csrf = find(c, "form[action='/login'] input[type=hidden][name=csrf]").await;
    let csrf_value = csrf.attr("value").await.ok().flatten().unwrap_or_default();
    assert!(
        csrf_value.len() >= 32 && csrf_value.bytes().all(|b| b.is_ascii_hexdigit()),
        "the sign-in form's csrf field holds {csrf_value:?}"
    );
    screenshot(c, "login").await;
    find(c, "input[name=token]").await.send_keys(&r.admin).await.unwrap_or_else(|e| panic!("{e}"));
    let submit = find(c, "form[action='/login'] button[type=submit]").await;
    click_and_wait(c, &submit).await;
    assert_eq!(path_and_query(c).await, "/", "signing in lands on the overview");
    assert_eq!(page_info(c).await.h1, "Overview");

    // --- the page checks catch what they look for -------------------------------------------
    // (a check that cannot fail proves nothing: each is shown failing once on a real page)
    c.goto(&url(&format!("/images/sha256:{}", "0".repeat(64)))).await.unwrap_or_else(|e| panic!("{e}"));
    let why = page_info(c).await.problem();
    assert_eq!(why.as_deref(), Some("error page \"404 Not Found\""), "an unknown image is the console's 404 page");
    c.goto(&url("/no/such/page")).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(page_info(c).await.problem().is_some(), "an unknown path is an error page");
    let _ = console_errors(c).await;
    c.goto(&url("/settings")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page_info(c).await.problem(), None, "/settings is a console page");
    js(c, "console.error('self-check: a console error'); return null;", vec![]).await;
    let errors = console_errors(c).await;
    assert!(
        errors.iter().any(|m| m.contains("self-check: a console error")),
        "the browser log does not show a console.error: {errors:?}"
    );
    js(
        c,
        "const m = document.querySelector('main');
         m.insertAdjacentHTML('beforeend', '<input id=\"self-check\" name=\"q\"><img src=\"/static/favicon.svg\">');
         return null;",
        vec![],
    )
    .await;
    let found = a11y_problems(c).await;
    assert_eq!(found.len(), 2, "an unlabelled input and an img without alt are found: {found:#?}");
    let _ = console_errors(c).await;

    // --- 2. every page ----------------------------------------------------------------------
    let web_path = format!("/images/{WEB}");
    let pages: [(&str, &str, &str); 9] = [
        ("overview", "/", "Overview"),
        ("inventory", "/inventory", "Inventory"),
        ("images", "/images", "Images"),
        ("image", &web_path, "Image sha256:4b825dc642cb"),
        ("vulnerabilities", "/vulnerabilities", "Vulnerabilities"),
        ("recommendations", "/recommendations", "Recommendations"),
        ("alerts", "/alerts", "Alerts and incidents"),
        ("fleet", "/fleet", "Fleet"),
        ("settings", "/settings", "Settings"),
    ];
    let mut problems: Vec<String> = Vec::new();
    for (name, path, h1) in pages {
        c.goto(&url(path)).await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let info = page_info(c).await;
        assert_eq!(info.h1, h1, "{path}: the page's heading");
        assert_eq!(info.title, format!("{h1} · Palisade"), "{path}: the page's title");
        problems.extend(page_problems(c).await.into_iter().map(|p| format!("{path}: {p}")));
        screenshot(c, name).await;
        let text = main_text(c).await;
        let expect: &[&str] = match name {
            "overview" => &["CVE-2023-4863", "CVE-2023-4911", "prod-eu"],
            "inventory" => &["prod-eu", "staging", "registry.example/shop/worker:2.0.0"],
            "images" => {
                &["sha256:4b825dc642cb", "sha256:9f86d081884c", "sha256:e3b0c44298fc", "registry.example/shop/web"]
            }
            "image" => &["libwebp7", "requests", "CVE-2023-32681", "GHSA-j8r2-6x86-q33q", "debian 12", "payments"],
            "vulnerabilities" => &["CVE-2023-4863", "CVE-2024-2511", "libwebp7"],
            "recommendations" => &["PAL-K8S-001", "PAL-K8S-014"],
            "alerts" => &["shell-in-container", "A shell was started in container web", "T1059.004 Unix Shell"],
            "fleet" => &["node-b", "stg-1", "palisade-sensor-node-a"],
            "settings" => &["bootstrap admin", "db-update"],
            _ => &[],
        };
        for e in expect {
            assert!(text.contains(e), "{path} does not show {e:?}:\n{text}");
        }
    }
    // the fleet page names the nodes without a sensor, and only them
    c.goto(&url("/fleet")).await.unwrap_or_else(|e| panic!("{e}"));
    let missing = texts(c, "section[aria-labelledby=h-missing] tbody tr td:nth-child(2)").await;
    assert_eq!(
        missing.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from(["node-b", "stg-1"]),
        "nodes without a healthy sensor"
    );
    let covered = texts(c, "section[aria-labelledby=h-covered] tbody tr td:nth-child(2)").await;
    assert_eq!(covered, vec!["node-a".to_string()], "nodes with a healthy sensor");
    let _ = console_errors(c).await;
    assert!(problems.is_empty(), "problems on the console's pages:\n{}", problems.join("\n"));

    // --- 3 and 4. crawl every internal link ------------------------------------------------
    let origin = url::Url::parse(base).unwrap_or_else(|e| panic!("{e}"));
    let mut seen: HashMap<String, String> = HashMap::from([("/".to_string(), "(start)".to_string())]);
    let mut queue: VecDeque<String> = VecDeque::from(["/".to_string()]);
    let (mut visited, mut broken, mut problems) = (0usize, Vec::new(), Vec::new());
    while let Some(path) = queue.pop_front() {
        if visited >= CRAWL_CAP {
            eprintln!("crawl stopped at {CRAWL_CAP} pages; {} links left unvisited", queue.len() + 1);
            break;
        }
        visited += 1;
        c.goto(&url(&path)).await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let info = page_info(c).await;
        if let Some(why) = info.problem() {
            broken.push(format!("{} links to {path}, which is {why}", seen[&path]));
            let _ = console_errors(c).await;
            continue;
        }
        problems.extend(page_problems(c).await.into_iter().map(|p| format!("{path}: {p}")));
        let hrefs = js(c, "return [...document.querySelectorAll('a[href]')].map(a => a.href);", vec![]).await;
        for h in hrefs.as_array().into_iter().flatten().filter_map(Value::as_str) {
            let Ok(mut u) = url::Url::parse(h) else {
                problems.push(format!("{path}: link {h:?} is not a URL"));
                continue;
            };
            if u.origin() != origin.origin() {
                continue;
            }
            u.set_fragment(None);
            let key = match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_string(),
            };
            if !seen.contains_key(&key) {
                seen.insert(key.clone(), path.clone());
                queue.push_back(key);
            }
        }
    }
    eprintln!("crawl: {visited} pages visited, {} links found", seen.len());
    assert!(broken.is_empty(), "broken internal links:\n{}", broken.join("\n"));
    assert!(problems.is_empty(), "problems on crawled pages:\n{}", problems.join("\n"));
    for must in [
        web_path.as_str(),
        "/vulnerabilities/CVE-2023-4863",
        "/inventory?cluster=prod-eu",
        "/recommendations?check=PAL-K8S-001",
        "/fleet?cluster=prod-eu",
    ] {
        assert!(
            seen.contains_key(must),
            "the crawl never found a link to {must}; found: {:?}",
            seen.keys().collect::<BTreeSet<_>>()
        );
    }

    // --- 5. filters -------------------------------------------------------------------------
    c.goto(&url("/vulnerabilities")).await.unwrap_or_else(|e| panic!("{e}"));
    let rows = "section[aria-labelledby=h-list] tbody tr";
    let all = texts(c, &format!("{rows} td:first-child")).await;
    assert_eq!(all.len(), 7, "every open finding is listed: {all:?}");
    find(c, "#f-sev").await.select_by_value("critical").await.unwrap_or_else(|e| panic!("{e}"));
    let filter = find(c, "form[action='/vulnerabilities'] button[type=submit]").await;
    click_and_wait(c, &filter).await;
    let pq = path_and_query(c).await;
    assert!(
        pq.starts_with("/vulnerabilities?") && pq.contains("min_severity=critical"),
        "the filter is in the URL: {pq}"
    );
    let sev = texts(c, &format!("{rows} td:nth-child(5)")).await;
    assert_eq!(sev, vec!["CRITICAL", "CRITICAL"], "only critical findings remain");
    assert_eq!(texts(c, &format!("{rows} td:first-child")).await, vec!["CVE-2023-4863", "CVE-2023-4863"]);
    let selected = js(c, "return document.querySelector('#f-sev').value;", vec![]).await;
    assert_eq!(selected, json!("critical"), "the form shows the filter in force");
    // then a package instead of a severity
    find(c, "#f-sev").await.select_by_value("").await.unwrap_or_else(|e| panic!("{e}"));
    find(c, "#f-pkg").await.send_keys("openssl").await.unwrap_or_else(|e| panic!("{e}"));
    let filter = find(c, "form[action='/vulnerabilities'] button[type=submit]").await;
    click_and_wait(c, &filter).await;
    let pkgs = texts(c, &format!("{rows} td:nth-child(3) a")).await;
    assert_eq!(pkgs, vec!["openssl"; 3], "only openssl findings remain");
    let ids: BTreeSet<String> = texts(c, &format!("{rows} td:first-child")).await.into_iter().collect();
    assert_eq!(ids, BTreeSet::from(["CVE-2023-5678".to_string(), "CVE-2024-2511".to_string()]));
    let problems = page_problems(c).await;
    assert!(problems.is_empty(), "filtered /vulnerabilities: {problems:#?}");

    // --- 6. triage --------------------------------------------------------------------------
    let fid = finding_id(r, WEB, "CVE-2023-4863").await;
    c.goto(&url(&web_path)).await.unwrap_or_else(|e| panic!("{e}"));
    let row = find(c, &format!("tr#finding-{fid}")).await;
    let details = find_in(&row, "details.triage-form").await;
    assert_eq!(details.prop("open").await.ok().flatten().as_deref(), Some("false"), "the triage form starts closed");
    find_in(&details, "summary").await.click().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(details.prop("open").await.ok().flatten().as_deref(), Some("true"), "clicking Triage opens the form");
    find_in(&details, &format!("#state-{fid}"))
        .await
        .select_by_value("not_affected")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    find_in(&details, &format!("#just-{fid}"))
        .await
        .select_by_value("code_not_reachable")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let detail = "libwebp is only used for thumbnails of trusted uploads; the vulnerable decoder path is never called";
    find_in(&details, &format!("#detail-{fid}")).await.send_keys(detail).await.unwrap_or_else(|e| panic!("{e}"));
    let save = find_in(&details, "button[type=submit]").await;
    assert_eq!(save.text().await.unwrap_or_default(), "Save triage");
    click_and_wait(c, &save).await;
    assert_eq!(path_and_query(c).await, web_path, "after triage the browser is back on the image page");
    let shown = find(c, &format!("tr#finding-{fid} .triage")).await.text().await.unwrap_or_default();
    assert!(
        shown.starts_with("not_affected (code_not_reachable) by ") && shown.contains("via console"),
        "the image page shows the triage: {shown:?}"
    );
    let problems = page_problems(c).await;
    assert!(problems.is_empty(), "image page after triage: {problems:#?}");
    screenshot(c, "image-triaged").await;
    let hist = r.api("GET", &format!("/api/v1/findings/{fid}/triage"), None).await;
    let items = hist["items"].as_array().unwrap_or_else(|| panic!("triage history: {hist}"));
    assert_eq!(items.len(), 1, "one triage change: {hist}");
    let ch = &items[0];
    assert_eq!(ch["new_state"], "not_affected", "{hist}");
    assert_eq!(ch["justification"], "code_not_reachable", "{hist}");
    assert_eq!(ch["detail"], detail, "{hist}");
    assert!(ch["actor"].as_str().is_some_and(|a| a.contains("via console")), "the change's actor: {hist}");

    // --- 7. resolve an alert ----------------------------------------------------------------
    let aid = alert_id(r, "shell-in-container").await;
    let other = alert_id(r, "miner-pool-dns").await;
    c.goto(&url("/alerts")).await.unwrap_or_else(|e| panic!("{e}"));
    let item = find(c, &format!("li#alert-{aid}")).await;
    let resolve = find_in(&item, &format!("form[action='/alerts/{aid}/resolve'] button[type=submit]")).await;
    assert!(resolve.text().await.unwrap_or_default().starts_with("Resolve"), "the alert's button says Resolve");
    click_and_wait(c, &resolve).await;
    assert_eq!(path_and_query(c).await, "/alerts", "after resolving the browser is back on the open alerts");
    let open: Vec<String> = js(c, "return [...document.querySelectorAll('ol.timeline > li')].map(l => l.id);", vec![])
        .await
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    assert_eq!(open, vec![format!("alert-{other}")], "the resolved alert left the open list");
    let problems = page_problems(c).await;
    assert!(problems.is_empty(), "/alerts after resolving: {problems:#?}");
    let a = r.api("GET", &format!("/api/v1/alerts/{aid}"), None).await;
    assert!(a["resolved_at"].is_i64(), "the API shows the alert resolved: {a}");
    assert!(a["resolved_by"].as_str().is_some_and(|b| b.contains("via console")), "resolved by: {a}");
    let b = r.api("GET", &format!("/api/v1/alerts/{other}"), None).await;
    assert!(b["resolved_at"].is_null(), "the other alert stays open: {b}");
    // the resolved one is listed under "Resolved"
    c.goto(&url("/alerts?resolved=true")).await.unwrap_or_else(|e| panic!("{e}"));
    let text = find(c, &format!("li#alert-{aid}")).await.text().await.unwrap_or_default();
    assert!(text.contains("Resolved") && text.contains("via console"), "resolved alert: {text}");

    // --- 8. sign out ------------------------------------------------------------------------
    c.goto(&url("/")).await.unwrap_or_else(|e| panic!("{e}"));
    let session = c.get_named_cookie("palisade_session").await.unwrap_or_else(|e| panic!("no session cookie: {e}"));
    let out = find(c, "form.signout button[type=submit]").await;
    assert_eq!(out.text().await.unwrap_or_default(), "Sign out");
    click_and_wait(c, &out).await;
    assert!(path_and_query(c).await.starts_with("/login"), "signing out shows the sign-in form");
    c.goto(&url("/")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        path_and_query(c).await,
        "/login?next=%2F",
        "after signing out, / sends the browser to the sign-in form"
    );
    // the session ended on the server too: its old cookie, put back, opens nothing
    // (as the browser had it: HttpOnly, SameSite=Strict, path /)
    c.add_cookie(session).await.unwrap_or_else(|e| panic!("{e}"));
    let back = c.get_named_cookie("palisade_session").await.map(|k| k.value().to_string());
    assert!(back.is_ok_and(|v| !v.is_empty()), "the old session cookie could not be put back");
    c.goto(&url("/settings")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(path_and_query(c).await, "/login?next=%2Fsettings", "a signed-out session's cookie still opens pages");
    let errors = console_errors(c).await;
    assert!(errors.is_empty(), "browser console errors after signing out: {errors:#?}");
}

/// The checks of [`page_problems`] for the sign-in page (it has no navigation frame).
async fn page_problems_login(c: &Client) -> Vec<String> {
    let mut out = Vec::new();
    let info = page_info(c).await;
    if info.title != "Sign in · Palisade" {
        out.push(format!("title {:?}", info.title));
    }
    out.extend(console_errors(c).await.into_iter().map(|m| format!("browser console error: {m}")));
    out.extend(a11y_problems(c).await);
    out
}
