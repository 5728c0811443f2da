//! The console's pages and forms. Handlers read the store, build a view with every string
//! already formatted, and render it with an askama template (HTML-escaped by default).

use super::svg;
use super::view::{self, href, seg, Layout};
use super::{cookie, local_path, same_secret, set_cookie, Viewer, LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_SECS};
use crate::Server;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use palisade_store::{
    AlertQuery, AuditQuery, AuthOutcome, ClusterPosture, DashboardCounts, Finding, FindingQuery, HealthQuery,
    HealthState, ImageQuery, ImageSort, IncidentQuery, Justification, NameQuery, NewToken, Order, PostureQuery, Role,
    Severity, TrendPoint, TriageState, TriageUpdate, WorkloadQuery,
};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

type S = State<Arc<Server>>;
type V = Extension<Viewer>;

/// Rows per list page.
const PAGE: u32 = 50;

fn layout(v: &Viewer, title: impl Into<String>, active: &'static str) -> Layout {
    Layout {
        title: title.into(),
        active,
        user: v.token.name.clone(),
        role: v.token.role.as_str(),
        csrf: v.csrf.clone(),
    }
}

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

/// A page stating an error (no layout: it also serves signed-out requests).
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let page = ErrorPage { status: status.as_u16(), reason: status.canonical_reason().unwrap_or(""), message };
    let mut r = render(&page);
    *r.status_mut() = status;
    r
}

type Page = Result<Response, Response>;

/// A store error as a page: the reason for a client error (400, 404); for a server error a
/// generic message (the detail is logged, never shown).
pub(crate) fn store_err(e: palisade_store::StoreError) -> Response {
    let api: crate::api::ApiError = e.into();
    if api.0.is_server_error() {
        error_page(api.0, "The server could not answer this now; try again. The cause is in the server's log.")
    } else {
        error_page(api.0, &api.1)
    }
}

fn need(v: &Viewer, role: Role) -> Result<(), Response> {
    if v.can(role) {
        Ok(())
    } else {
        Err(error_page(
            StatusCode::FORBIDDEN,
            &format!("This needs the {} role; you are signed in as {}.", role.as_str(), v.token.role.as_str()),
        ))
    }
}

/// The checks every console write starts with: the session's CSRF token, then the role.
fn form_allowed(v: &Viewer, sent_csrf: &str, role: Role) -> Result<(), Response> {
    check_csrf(v, sent_csrf)?;
    need(v, role)
}

fn check_csrf(v: &Viewer, sent: &str) -> Result<(), Response> {
    if same_secret(&v.csrf, sent) {
        Ok(())
    } else {
        Err(error_page(StatusCode::FORBIDDEN, "The form's CSRF token is missing or wrong; nothing was changed."))
    }
}

/// An empty form field is no filter.
fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn severity_filter(s: &Option<String>) -> Result<Option<Severity>, Response> {
    match nonempty(s) {
        None => Ok(None),
        Some(w) => Severity::parse(&w)
            .map(Some)
            .ok_or_else(|| error_page(StatusCode::BAD_REQUEST, &format!("unknown severity {w:?}"))),
    }
}

fn bool_filter(s: &Option<String>) -> Option<bool> {
    match nonempty(s).as_deref() {
        Some("true" | "yes" | "1") => Some(true),
        Some("false" | "no" | "0") => Some(false),
        _ => None,
    }
}

/// A `<select>` option.
struct Opt {
    value: String,
    label: String,
    selected: bool,
}

fn options(values: &[(&str, &str)], current: &str) -> Vec<Opt> {
    values.iter().map(|(v, l)| Opt { value: v.to_string(), label: l.to_string(), selected: *v == current }).collect()
}

const SEVERITIES: &[(&str, &str)] = &[
    ("", "Any severity"),
    ("critical", "Critical"),
    ("high", "High and above"),
    ("medium", "Medium and above"),
    ("low", "Low and above"),
];
const YES_NO: &[(&str, &str)] = &[("", "Either"), ("true", "Yes"), ("false", "No")];

// ---------------------------------------------------------------------------------------------
// Sign-in

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    message: String,
}

fn random_hex() -> Result<String, Response> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn login_page(s: &Server, status: StatusCode, next: &str, message: &str) -> Page {
    let csrf = random_hex()?;
    let page = LoginPage { csrf: csrf.clone(), next: next.to_string(), message: message.to_string() };
    let mut r = render(&page);
    *r.status_mut() = status;
    r.headers_mut().append(header::SET_COOKIE, set_cookie(s, LOGIN_CSRF_COOKIE, &csrf, "/login", 600));
    Ok(r)
}

pub(crate) async fn login_form(State(s): S, Query(q): Query<LoginQuery>) -> Page {
    let next = local_path(q.next.as_deref()).unwrap_or("/");
    login_page(&s, StatusCode::OK, next, "")
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

pub(crate) async fn login(State(s): S, headers: HeaderMap, Form(f): Form<LoginForm>) -> Page {
    let next = local_path(f.next.as_deref()).unwrap_or("/").to_string();
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if !same_secret(expected, &f.csrf) {
        return login_page(&s, StatusCode::FORBIDDEN, &next, "The sign-in form expired. Please try again.");
    }
    let outcome = s.store.authenticate(f.token.trim()).await.map_err(store_err)?;
    let token = match outcome {
        AuthOutcome::Valid(t) => t,
        AuthOutcome::Refused(why) => {
            s.metrics.auth_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(reason = ?why, "console sign-in refused");
            return login_page(
                &s,
                StatusCode::UNAUTHORIZED,
                &next,
                "That token is not valid (unknown, revoked or expired).",
            );
        }
    };
    if token.cluster.is_some() || token.single_use {
        // an agent's or sensor's token (bound to one cluster) or a one-time token does not open
        // a 12-hour console session: the console would not honour the binding
        return login_page(
            &s,
            StatusCode::FORBIDDEN,
            &next,
            "This token is bound to one cluster or usable once: it is for agents and scripts. Sign in with a user token.",
        );
    }
    let actor = format!("{} via console", crate::api::actor(&token));
    let secret = s.store.create_session(&token, SESSION_SECS, &actor).await.map_err(store_err)?;
    let mut r = Redirect::to(&next).into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    r.headers_mut().append(header::SET_COOKIE, set_cookie(&s, SESSION_COOKIE, &secret, "/", SESSION_SECS));
    r.headers_mut().append(header::SET_COOKIE, set_cookie(&s, LOGIN_CSRF_COOKIE, "", "/login", 0));
    Ok(r)
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
    back: Option<String>,
}

pub(crate) async fn logout(State(s): S, Extension(v): V, Form(f): Form<CsrfForm>) -> Page {
    check_csrf(&v, &f.csrf)?;
    s.store.end_session(&v.secret, &v.actor()).await.map_err(store_err)?;
    let mut r = see_other("/login");
    r.headers_mut().append(header::SET_COOKIE, set_cookie(&s, SESSION_COOKIE, "", "/", 0));
    Ok(r)
}

fn see_other(to: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    r
}

// ---------------------------------------------------------------------------------------------
// Overview

/// What the overview shows; computed at most every [`OVERVIEW_TTL`] (the counts scan every
/// open finding), served from the cache meanwhile and refreshed in the background.
#[derive(Debug, Clone)]
pub(crate) struct OverviewData {
    at: palisade_store::Timestamp,
    counts: DashboardCounts,
    new_24h: i64,
    trend: Vec<TrendPoint>,
    posture: Vec<ClusterPosture>,
    /// Per framework (in [`FRAMEWORKS`] order): unhealthy resources per cluster.
    frameworks: Vec<HashMap<String, i64>>,
    kev_in_use: Vec<Finding>,
    /// Open posture findings per cluster and check (the recommendations page).
    groups: Vec<palisade_store::PostureGroup>,
}

/// Does a check belong to a framework.
type Belongs = fn(&palisade_posture::Check) -> bool;

/// The frameworks the secure score is also given for: (label, does a check belong to it).
const FRAMEWORKS: &[(&str, Belongs)] = &[
    ("PSS baseline", |c| c.references.pss == Some(palisade_posture::Pss::Baseline)),
    ("PSS restricted", |c| c.references.pss.is_some()),
    ("NSA/CISA", |c| c.references.nsa.is_some()),
    ("CIS", |c| c.references.cis.is_some()),
];

/// How long overview figures are reused.
pub(crate) const OVERVIEW_TTL: Duration = Duration::from_secs(30);

/// The overview cache of one server.
#[derive(Debug, Default)]
pub(crate) struct OverviewCache {
    slot: std::sync::Mutex<Option<(Instant, Arc<OverviewData>)>>,
    refreshing: std::sync::atomic::AtomicBool,
}

async fn compute_overview(s: &Server) -> Result<OverviewData, palisade_store::StoreError> {
    let now = s.store.now();
    let counts = s.store.dashboard_counts().await?;
    let new_24h = s.store.count_new_findings(now - 86_400).await?;
    let trend = s.store.finding_trend(30).await?;
    let posture = s.store.cluster_posture().await?;
    let mut frameworks = Vec::with_capacity(FRAMEWORKS.len());
    for (_, belongs) in FRAMEWORKS {
        let ids: Vec<&str> = palisade_posture::catalogue().iter().filter(|c| belongs(c)).map(|c| c.id).collect();
        frameworks.push(s.store.unhealthy_by_cluster(&ids).await?.into_iter().collect());
    }
    let q = FindingQuery { kev: Some(true), in_use: Some(true), limit: Some(10), ..Default::default() };
    let kev_in_use = s.store.list_findings(&q).await?.items;
    let groups = s.store.posture_summary().await?;
    Ok(OverviewData { at: now, counts, new_24h, trend, posture, frameworks, kev_in_use, groups })
}

async fn overview_data(s: &Arc<Server>) -> Result<Arc<OverviewData>, palisade_store::StoreError> {
    use std::sync::atomic::Ordering;
    let cached = s.overview.slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some((at, data)) = cached {
        if at.elapsed() > OVERVIEW_TTL && !s.overview.refreshing.swap(true, Ordering::AcqRel) {
            let s2 = s.clone();
            tokio::spawn(async move {
                match compute_overview(&s2).await {
                    Ok(d) => {
                        *s2.overview.slot.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some((Instant::now(), Arc::new(d)))
                    }
                    Err(e) => tracing::warn!(error = %e, "overview refresh failed"),
                }
                s2.overview.refreshing.store(false, Ordering::Release);
            });
        }
        return Ok(data);
    }
    let d = Arc::new(compute_overview(s).await?);
    *s.overview.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), d.clone()));
    Ok(d)
}

/// Forget the cached overview (after a console write that changes its figures).
pub(crate) fn invalidate_overview(s: &Server) {
    *s.overview.slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

struct Card {
    label: &'static str,
    value: String,
    href: String,
}

struct ScoreRow {
    cluster: String,
    href: String,
    score: String,
    resources: i64,
    unhealthy: i64,
    /// The score per framework, in [`FRAMEWORKS`] order.
    frameworks: Vec<String>,
}

fn score(resources: i64, unhealthy: i64) -> String {
    if resources == 0 {
        "n/a".into()
    } else {
        format!("{}%", ((resources - unhealthy.clamp(0, resources)) * 100) / resources)
    }
}

struct FindingRow {
    id: i64,
    vuln_id: String,
    vuln_href: String,
    other_ids: String,
    package: String,
    version: String,
    fixed: String,
    severity: &'static str,
    sev_class: &'static str,
    kev: bool,
    epss: String,
    image: String,
    image_href: String,
    first_seen: String,
    triage: String,
    triage_by: String,
}

fn finding_row(f: &Finding) -> FindingRow {
    let others: Vec<&str> = f.ids.iter().map(String::as_str).filter(|i| *i != f.vuln_id).collect();
    FindingRow {
        id: f.id,
        vuln_id: f.vuln_id.clone(),
        vuln_href: format!("/vulnerabilities/{}", seg(&f.vuln_id)),
        other_ids: others.join(", "),
        package: f.package.name.clone(),
        version: f.package.version.clone(),
        fixed: f.fixed_version.clone().unwrap_or_default(),
        severity: f.severity.as_str(),
        sev_class: view::sev_class(f.severity),
        kev: f.kev,
        epss: f.epss.map(|e| format!("{:.1}%", e * 100.0)).unwrap_or_default(),
        image: view::short_digest(&f.image_digest),
        image_href: format!("/images/{}", seg(&f.image_digest)),
        first_seen: view::date(f.first_seen),
        triage: f.triage.as_ref().map(|t| t.state.as_str().to_string()).unwrap_or_default(),
        triage_by: f
            .triage
            .as_ref()
            .map(|t| {
                let j = t.justification.map(|j| format!(" ({})", j.as_str())).unwrap_or_default();
                format!("{}{j} by {} at {}", t.state.as_str(), t.by, view::time(t.at))
            })
            .unwrap_or_default(),
    }
}

struct TrendRow {
    date: String,
    open: i64,
    opened: i64,
    fixed: i64,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    l: Layout,
    as_of: String,
    cards: Vec<Card>,
    severity_svg: String,
    severities: Vec<(&'static str, i64, &'static str)>,
    posture_svg: String,
    scores: Vec<ScoreRow>,
    framework_names: Vec<&'static str>,
    trend_svg: String,
    trend: Vec<TrendRow>,
    kev: Vec<FindingRow>,
}

pub(crate) async fn overview(State(s): S, Extension(v): V) -> Page {
    let d = overview_data(&s).await.map_err(store_err)?;
    let c = &d.counts;
    let cards = vec![
        Card { label: "Clusters", value: c.clusters.to_string(), href: "/inventory".into() },
        Card { label: "Nodes", value: c.nodes.to_string(), href: "/fleet".into() },
        Card { label: "Workloads", value: c.workloads.to_string(), href: "/inventory".into() },
        Card {
            label: "Images in use",
            value: format!("{} of {}", c.images_in_use, c.images),
            href: "/images?in_use=true".into(),
        },
        Card {
            label: "Open vulnerability findings",
            value: c.open_findings.total().to_string(),
            href: "/vulnerabilities".into(),
        },
        Card {
            label: "KEV findings",
            value: c.open_kev_findings.to_string(),
            href: "/vulnerabilities?kev=true".into(),
        },
        Card {
            label: "New in the last 24 hours",
            value: d.new_24h.to_string(),
            href: "/vulnerabilities?sort=first_seen".into(),
        },
        Card {
            label: "Failing posture checks",
            value: c.open_posture_findings.total().to_string(),
            href: "/recommendations".into(),
        },
        Card { label: "Open alerts", value: c.open_alerts.to_string(), href: "/alerts".into() },
        Card { label: "Open incidents", value: c.open_incidents.to_string(), href: "/alerts#incidents".into() },
    ];
    let severities = view::counts(&c.open_findings);
    let posture_sev = view::counts(&c.open_posture_findings);
    let scores = d
        .posture
        .iter()
        .map(|p| ScoreRow {
            cluster: p.cluster.clone(),
            href: href("/recommendations", &[("cluster", &p.cluster)]),
            score: score(p.resources, p.unhealthy),
            resources: p.resources,
            unhealthy: p.unhealthy,
            frameworks: d
                .frameworks
                .iter()
                .map(|m| score(p.resources, m.get(&p.cluster).copied().unwrap_or(0)))
                .collect(),
        })
        .collect();
    let page = OverviewPage {
        l: layout(&v, "Overview", "/"),
        as_of: view::time(d.at),
        cards,
        severity_svg: svg::stacked(&severities, "Open vulnerability findings by severity"),
        severities,
        posture_svg: svg::stacked(&posture_sev, "Failing posture checks by severity"),
        scores,
        framework_names: FRAMEWORKS.iter().map(|f| f.0).collect(),
        trend_svg: svg::trend(&d.trend, "Open vulnerability findings, last 30 days"),
        trend: d
            .trend
            .iter()
            .rev()
            .map(|p| TrendRow { date: view::date(p.day), open: p.open, opened: p.opened, fixed: p.fixed })
            .collect(),
        kev: d.kev_in_use.iter().map(finding_row).collect(),
    };
    Ok(render(&page))
}

// ---------------------------------------------------------------------------------------------
// Inventory

#[derive(Deserialize, Default)]
pub(crate) struct InventoryQuery {
    cluster: Option<String>,
    namespace: Option<String>,
    kind: Option<String>,
    image: Option<String>,
    min_severity: Option<String>,
    posture: Option<String>,
    cursor: Option<String>,
}

struct ClusterRow {
    name: String,
    href: String,
    nodes: i64,
    workloads: i64,
    last_seen: String,
    selected: bool,
}

struct ContainerRow {
    container: String,
    image_ref: String,
    image_href: String,
}

/// A workload row with its namespace link, no containers and no time.
fn workload_row(cluster: &str, namespace: &str, kind: &str, name: &str) -> WorkloadRow {
    WorkloadRow {
        cluster: cluster.to_string(),
        namespace_href: href("/inventory", &[("cluster", cluster), ("namespace", namespace)]),
        namespace: namespace.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        containers: Vec::new(),
        last_seen: String::new(),
    }
}

struct WorkloadRow {
    cluster: String,
    namespace: String,
    namespace_href: String,
    kind: String,
    name: String,
    containers: Vec<ContainerRow>,
    last_seen: String,
}

#[derive(Template)]
#[template(path = "inventory.html")]
struct InventoryPage {
    l: Layout,
    clusters: Vec<ClusterRow>,
    cluster: String,
    namespace: String,
    kind: String,
    image: String,
    severity: Vec<Opt>,
    posture: Vec<Opt>,
    workloads: Vec<WorkloadRow>,
    next: String,
}

pub(crate) async fn inventory(State(s): S, Extension(v): V, Query(q): Query<InventoryQuery>) -> Page {
    let cluster = nonempty(&q.cluster);
    let clusters =
        s.store.list_clusters(&NameQuery { limit: Some(500), ..Default::default() }).await.map_err(store_err)?;
    let wq = WorkloadQuery {
        cluster: cluster.clone(),
        namespace: nonempty(&q.namespace),
        kind: nonempty(&q.kind),
        image_digest: nonempty(&q.image),
        min_severity: severity_filter(&q.min_severity)?,
        failing_posture: bool_filter(&q.posture),
        limit: Some(PAGE),
        cursor: nonempty(&q.cursor),
        ..Default::default()
    };
    let page = s.store.list_workloads(&wq).await.map_err(store_err)?;
    let (ms, po) = (nonempty(&q.min_severity).unwrap_or_default(), nonempty(&q.posture).unwrap_or_default());
    let (c, ns, k, img) = (
        cluster.clone().unwrap_or_default(),
        nonempty(&q.namespace).unwrap_or_default(),
        nonempty(&q.kind).unwrap_or_default(),
        nonempty(&q.image).unwrap_or_default(),
    );
    let next = page
        .next_cursor
        .as_deref()
        .map(|cur| {
            href("/inventory", &[("cluster", &c), ("namespace", &ns), ("kind", &k), ("image", &img), ("cursor", cur)])
        })
        .unwrap_or_default();
    let view = InventoryPage {
        l: layout(&v, "Inventory", "/inventory"),
        clusters: clusters
            .items
            .iter()
            .map(|cl| ClusterRow {
                name: cl.name.clone(),
                href: href("/inventory", &[("cluster", &cl.name)]),
                nodes: cl.nodes,
                workloads: cl.workloads,
                last_seen: view::time(cl.last_seen),
                selected: cluster.as_deref() == Some(cl.name.as_str()),
            })
            .collect(),
        workloads: page
            .items
            .iter()
            .map(|w| WorkloadRow {
                containers: w
                    .images
                    .iter()
                    .map(|ci| ContainerRow {
                        container: ci.container.clone(),
                        image_ref: ci.image_ref.clone(),
                        image_href: ci.digest.as_deref().map(|d| format!("/images/{}", seg(d))).unwrap_or_default(),
                    })
                    .collect(),
                last_seen: view::time(w.last_seen),
                ..workload_row(&w.cluster, &w.namespace, &w.kind, &w.name)
            })
            .collect(),
        cluster: c,
        namespace: ns,
        kind: k,
        image: img,
        severity: options(SEVERITIES, &ms),
        posture: options(YES_NO, &po),
        next,
    };
    Ok(render(&view))
}

// ---------------------------------------------------------------------------------------------
// Images

#[derive(Deserialize, Default)]
pub(crate) struct ImagesQuery {
    repo: Option<String>,
    in_use: Option<String>,
    min_severity: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
}

struct ImageRow {
    digest: String,
    href: String,
    repo: String,
    tags: String,
    in_use: bool,
    findings: String,
    last_seen: String,
}

#[derive(Template)]
#[template(path = "images.html")]
struct ImagesPage {
    l: Layout,
    repo: String,
    in_use: Vec<Opt>,
    severity: Vec<Opt>,
    sort: Vec<Opt>,
    rows: Vec<ImageRow>,
    next: String,
}

pub(crate) async fn images(State(s): S, Extension(v): V, Query(q): Query<ImagesQuery>) -> Page {
    let min = severity_filter(&q.min_severity)?;
    let sort = match nonempty(&q.sort).as_deref() {
        None | Some("last_seen") => ImageSort::LastSeen,
        Some("first_seen") => ImageSort::FirstSeen,
        Some("repo") => ImageSort::Repo,
        Some(o) => return Err(error_page(StatusCode::BAD_REQUEST, &format!("unknown sort {o:?}"))),
    };
    let iq = ImageQuery {
        repo: nonempty(&q.repo),
        in_use: bool_filter(&q.in_use),
        min_severity: min,
        sort,
        order: if sort == ImageSort::Repo { Order::Asc } else { Order::Desc },
        limit: Some(PAGE),
        cursor: nonempty(&q.cursor),
        ..Default::default()
    };
    let page = s.store.list_images(&iq).await.map_err(store_err)?;
    let (repo, iu, ms, so) = (
        nonempty(&q.repo).unwrap_or_default(),
        nonempty(&q.in_use).unwrap_or_default(),
        nonempty(&q.min_severity).unwrap_or_default(),
        nonempty(&q.sort).unwrap_or_default(),
    );
    let next = page
        .next_cursor
        .as_deref()
        .map(|c| {
            href("/images", &[("repo", &repo), ("in_use", &iu), ("min_severity", &ms), ("sort", &so), ("cursor", c)])
        })
        .unwrap_or_default();
    let rows = page
        .items
        .iter()
        .map(|i| ImageRow {
            digest: view::short_digest(&i.digest),
            href: format!("/images/{}", seg(&i.digest)),
            repo: i.repo.clone(),
            tags: view::tags(&i.repo, &i.tags),
            in_use: i.in_use,
            findings: view::counts_short(&i.open_findings),
            last_seen: view::time(i.last_seen),
        })
        .collect();
    let page = ImagesPage {
        l: layout(&v, "Images", "/images"),
        repo,
        in_use: options(YES_NO, &iu),
        severity: options(SEVERITIES, &ms),
        sort: options(&[("", "Last seen"), ("first_seen", "First seen"), ("repo", "Repository")], &so),
        rows,
        next,
    };
    Ok(render(&page))
}

struct LayerRow {
    index: usize,
    digest: String,
    packages: usize,
}

struct PackageRow {
    name: String,
    version: String,
    kind: String,
    layer: String,
    path: String,
}

struct TriageOption {
    value: &'static str,
}

#[derive(Template)]
#[template(path = "image.html")]
struct ImagePage {
    l: Layout,
    digest: String,
    repo: String,
    tags: String,
    first_seen: String,
    last_seen: String,
    pushed: String,
    pulled: String,
    os: String,
    has_sbom: bool,
    layers: Vec<LayerRow>,
    packages: Vec<PackageRow>,
    packages_total: usize,
    findings: Vec<FindingRow>,
    findings_next: String,
    workloads: Vec<WorkloadRow>,
    can_triage: bool,
    back: String,
    states: Vec<TriageOption>,
    justifications: Vec<TriageOption>,
}

#[derive(Deserialize, Default)]
pub(crate) struct ImageQueryPage {
    cursor: Option<String>,
}

/// Packages listed on an image page (the SBOM itself is at `/api/v1/images/{d}/sbom`).
const MAX_PACKAGES_SHOWN: usize = 1000;

const TRIAGE_STATES: &[&str] = &["in_triage", "exploitable", "not_affected", "false_positive", "resolved"];
const JUSTIFICATIONS: &[&str] = &[
    "code_not_present",
    "code_not_reachable",
    "requires_configuration",
    "requires_dependency",
    "requires_environment",
    "protected_by_compiler",
    "protected_at_runtime",
    "protected_at_perimeter",
    "protected_by_mitigating_control",
];

pub(crate) async fn image(
    State(s): S,
    Extension(v): V,
    Path(digest): Path<String>,
    Query(q): Query<ImageQueryPage>,
) -> Page {
    if palisade_store::validate_digest(&digest).is_err() {
        return Err(error_page(StatusCode::BAD_REQUEST, "not an image digest"));
    }
    let Some(img) = s.store.get_image(&digest).await.map_err(store_err)? else {
        return Err(error_page(StatusCode::NOT_FOUND, "No such image is stored."));
    };
    let sbom = s.store.get_sbom(&digest).await.map_err(store_err)?;
    let fq = FindingQuery {
        image_digest: Some(digest.clone()),
        limit: Some(200),
        cursor: nonempty(&q.cursor),
        ..Default::default()
    };
    let findings = s.store.list_findings(&fq).await.map_err(store_err)?;
    let wl = s
        .store
        .list_workloads(&WorkloadQuery { image_digest: Some(digest.clone()), limit: Some(200), ..Default::default() })
        .await
        .map_err(store_err)?;
    let self_href = format!("/images/{}", seg(&digest));
    let (mut layers, mut packages, mut total, mut os) = (Vec::new(), Vec::new(), 0usize, String::new());
    if let Some(sb) = &sbom {
        let mut per_layer: HashMap<&str, usize> = HashMap::new();
        for p in &sb.sbom.packages {
            *per_layer.entry(p.layer.as_str()).or_default() += 1;
        }
        layers = sb
            .sbom
            .target
            .layers
            .iter()
            .enumerate()
            .map(|(i, d)| LayerRow {
                index: i + 1,
                digest: d.clone(),
                packages: per_layer.get(d.as_str()).copied().unwrap_or(0),
            })
            .collect();
        let index: HashMap<&str, usize> =
            sb.sbom.target.layers.iter().enumerate().map(|(i, d)| (d.as_str(), i + 1)).collect();
        total = sb.sbom.packages.len();
        packages = sb
            .sbom
            .packages
            .iter()
            .take(MAX_PACKAGES_SHOWN)
            .map(|p| PackageRow {
                name: p.name.clone(),
                version: p.version.clone(),
                kind: format!("{:?}", p.kind).to_lowercase(),
                layer: match index.get(p.layer.as_str()) {
                    Some(i) => format!("layer {i}"),
                    None => view::short_digest(&p.layer),
                },
                path: p.found_in.clone(),
            })
            .collect();
        if let Some(o) = &sb.sbom.os {
            os = format!("{} {}", o.family, o.version);
        }
    }
    let findings_next = findings.next_cursor.as_deref().map(|c| href(&self_href, &[("cursor", c)])).unwrap_or_default();
    let page = ImagePage {
        l: layout(&v, format!("Image {}", view::short_digest(&digest)), "/images"),
        digest: digest.clone(),
        repo: img.repo.clone(),
        tags: view::tags(&img.repo, &img.tags),
        first_seen: view::time(img.first_seen),
        last_seen: view::time(img.last_seen),
        pushed: view::opt_time(img.pushed_at),
        pulled: view::opt_time(img.pulled_at),
        os,
        has_sbom: sbom.is_some(),
        layers,
        packages,
        packages_total: total,
        findings: findings.items.iter().map(finding_row).collect(),
        findings_next,
        workloads: wl
            .items
            .iter()
            .map(|w| WorkloadRow {
                last_seen: view::time(w.last_seen),
                ..workload_row(&w.cluster, &w.namespace, &w.kind, &w.name)
            })
            .collect(),
        can_triage: v.can(Role::Operator),
        back: self_href,
        states: TRIAGE_STATES.iter().map(|s| TriageOption { value: s }).collect(),
        justifications: JUSTIFICATIONS.iter().map(|s| TriageOption { value: s }).collect(),
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub(crate) struct TriageForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    state: String,
    justification: Option<String>,
    detail: Option<String>,
    back: Option<String>,
}

pub(crate) async fn triage(State(s): S, Extension(v): V, Path(id): Path<i64>, Form(f): Form<TriageForm>) -> Page {
    form_allowed(&v, &f.csrf, Role::Operator)?;
    let Some(state) = TriageState::parse(&f.state) else {
        return Err(error_page(StatusCode::BAD_REQUEST, &format!("unknown triage state {:?}", f.state)));
    };
    let justification = match nonempty(&f.justification) {
        None => None,
        Some(j) => Some(
            Justification::parse(&j)
                .ok_or_else(|| error_page(StatusCode::BAD_REQUEST, &format!("unknown justification {j:?}")))?,
        ),
    };
    let detail = nonempty(&f.detail);
    if detail.as_ref().is_some_and(|d| d.len() > 4096) {
        return Err(error_page(StatusCode::BAD_REQUEST, "the detail is longer than 4096 bytes"));
    }
    let update = TriageUpdate { state, justification, detail };
    let finding = s.store.set_triage(id, &update, &v.actor()).await.map_err(store_err)?;
    let fallback = format!("/images/{}", seg(&finding.image_digest));
    Ok(see_other(local_path(f.back.as_deref()).unwrap_or(&fallback)))
}

// ---------------------------------------------------------------------------------------------
// Vulnerabilities

#[derive(Deserialize, Default)]
pub(crate) struct VulnQuery {
    id: Option<String>,
    package: Option<String>,
    min_severity: Option<String>,
    kev: Option<String>,
    in_use: Option<String>,
    fixable: Option<String>,
    /// First seen at or after (Unix seconds).
    since: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
}

struct AffectedRow {
    image: String,
    href: String,
    repo: String,
    packages: String,
}

struct Blast {
    id: String,
    ids: String,
    severity: &'static str,
    sev_class: &'static str,
    kev: bool,
    epss: String,
    fixed: String,
    images: Vec<AffectedRow>,
    workloads: Vec<WorkloadRow>,
    clusters: String,
    truncated: bool,
}

#[derive(Template)]
#[template(path = "vulnerabilities.html")]
struct VulnPage {
    l: Layout,
    id: String,
    package: String,
    severity: Vec<Opt>,
    kev: Vec<Opt>,
    in_use: Vec<Opt>,
    fixable: Vec<Opt>,
    sort: Vec<Opt>,
    since: String,
    blast: Option<Blast>,
    rows: Vec<FindingRow>,
    next: String,
}

pub(crate) async fn vulnerability(State(s): S, Extension(v): V, Path(id): Path<String>) -> Page {
    vulnerabilities(State(s), Extension(v), Query(VulnQuery { id: Some(id), ..Default::default() })).await
}

pub(crate) async fn vulnerabilities(State(s): S, Extension(v): V, Query(q): Query<VulnQuery>) -> Page {
    let id = nonempty(&q.id);
    if id.as_ref().is_some_and(|i| i.len() > 256) {
        return Err(error_page(StatusCode::BAD_REQUEST, "a vulnerability ID is at most 256 bytes"));
    }
    let sort = match nonempty(&q.sort).as_deref() {
        None | Some("severity") => palisade_store::FindingSort::Severity,
        Some("epss") => palisade_store::FindingSort::Epss,
        Some("first_seen") => palisade_store::FindingSort::FirstSeen,
        Some(o) => return Err(error_page(StatusCode::BAD_REQUEST, &format!("unknown sort {o:?}"))),
    };
    let fq = FindingQuery {
        vuln_id: id.clone(),
        package: nonempty(&q.package),
        min_severity: severity_filter(&q.min_severity)?,
        kev: bool_filter(&q.kev),
        in_use: bool_filter(&q.in_use),
        fixable: bool_filter(&q.fixable),
        first_seen_since: match nonempty(&q.since) {
            None => None,
            Some(t) => Some(t.parse::<i64>().map_err(|_| error_page(StatusCode::BAD_REQUEST, "since: Unix seconds"))?),
        },
        sort,
        order: Order::Desc,
        limit: Some(PAGE),
        cursor: nonempty(&q.cursor),
        ..Default::default()
    };
    let page = s.store.list_findings(&fq).await.map_err(store_err)?;
    let blast = match &id {
        Some(id) => {
            let b = s.store.blast_radius(id, 200).await.map_err(store_err)?;
            let worst = b.images.iter().flat_map(|i| i.findings.iter()).max_by_key(|f| f.severity.rank());
            let mut fixed: Vec<String> = b
                .images
                .iter()
                .flat_map(|i| i.findings.iter())
                .filter_map(|f| f.fixed_version.as_ref().map(|v| format!("{} {v}", f.package.name)))
                .collect();
            fixed.sort();
            fixed.dedup();
            let epss = b
                .images
                .iter()
                .flat_map(|i| i.findings.iter())
                .filter_map(|f| f.epss)
                .fold(None, |m: Option<f64>, e| Some(m.map_or(e, |m| m.max(e))));
            Some(Blast {
                id: b.vuln_id.clone(),
                ids: b.ids.join(", "),
                severity: worst.map(|f| f.severity.as_str()).unwrap_or("unknown"),
                sev_class: view::sev_class(worst.map(|f| f.severity).unwrap_or(Severity::Unknown)),
                kev: b.images.iter().flat_map(|i| i.findings.iter()).any(|f| f.kev),
                epss: epss.map(|e| format!("{:.1}%", e * 100.0)).unwrap_or_default(),
                fixed: fixed.join(", "),
                images: b
                    .images
                    .iter()
                    .map(|i| {
                        let mut pk: Vec<String> =
                            i.findings.iter().map(|f| format!("{} {}", f.package.name, f.package.version)).collect();
                        pk.dedup();
                        AffectedRow {
                            image: view::short_digest(&i.digest),
                            href: format!("/images/{}", seg(&i.digest)),
                            repo: i.repo.clone(),
                            packages: pk.join(", "),
                        }
                    })
                    .collect(),
                workloads: b
                    .workloads
                    .iter()
                    .map(|w| workload_row(&w.cluster, &w.namespace, &w.kind, &w.name))
                    .collect(),
                clusters: b.clusters.join(", "),
                truncated: b.truncated,
            })
        }
        None => None,
    };
    let f = |o: &Option<String>| nonempty(o).unwrap_or_default();
    let (idv, pk, ms, kev, iu, fx, so, since) =
        (f(&q.id), f(&q.package), f(&q.min_severity), f(&q.kev), f(&q.in_use), f(&q.fixable), f(&q.sort), f(&q.since));
    let next = page
        .next_cursor
        .as_deref()
        .map(|c| {
            href(
                "/vulnerabilities",
                &[
                    ("id", &idv),
                    ("package", &pk),
                    ("min_severity", &ms),
                    ("kev", &kev),
                    ("in_use", &iu),
                    ("fixable", &fx),
                    ("since", &since),
                    ("sort", &so),
                    ("cursor", c),
                ],
            )
        })
        .unwrap_or_default();
    let page = VulnPage {
        l: layout(
            &v,
            if idv.is_empty() { "Vulnerabilities".to_string() } else { format!("Vulnerability {idv}") },
            "/vulnerabilities",
        ),
        id: idv,
        package: pk,
        severity: options(SEVERITIES, &ms),
        kev: options(YES_NO, &kev),
        in_use: options(YES_NO, &iu),
        fixable: options(YES_NO, &fx),
        sort: options(&[("", "Severity"), ("epss", "EPSS"), ("first_seen", "Newest")], &so),
        since,
        blast,
        rows: page.items.iter().map(finding_row).collect(),
        next,
    };
    Ok(render(&page))
}

// ---------------------------------------------------------------------------------------------
// Recommendations

#[derive(Deserialize, Default)]
pub(crate) struct RecQuery {
    cluster: Option<String>,
    check: Option<String>,
    cursor: Option<String>,
}

struct CheckRow {
    exempt: i64,
    check_id: String,
    title: String,
    category: String,
    frameworks: String,
    href: String,
    severity: &'static str,
    sev_class: &'static str,
    clusters: String,
    resources: i64,
}

struct PostureRow {
    id: i64,
    cluster: String,
    namespace: String,
    name: String,
    exempt: String,
    object: String,
    severity: &'static str,
    sev_class: &'static str,
    message: String,
    remediation: String,
    patch: String,
    first_seen: String,
}

/// `CIS 5.2.1; NSA Pod security; PSS restricted` for a check.
fn framework_refs(c: &palisade_posture::Check) -> String {
    let r = &c.references;
    let mut out = Vec::new();
    if let Some(x) = r.cis {
        out.push(format!("CIS {x}"));
    }
    if let Some(x) = r.nsa {
        out.push(format!("NSA/CISA {x}"));
    }
    match r.pss {
        Some(palisade_posture::Pss::Baseline) => out.push("PSS baseline".into()),
        Some(palisade_posture::Pss::Restricted) => out.push("PSS restricted".into()),
        None => {}
    }
    if !r.mitre.is_empty() {
        out.push(format!("ATT&CK {}", r.mitre.join(", ")));
    }
    out.join("; ")
}

/// A live exemption, as listed.
struct ExemptionRow {
    id: i64,
    check_id: String,
    scope: String,
    justification: String,
    by: String,
    expires: String,
}

#[derive(Deserialize)]
pub(crate) struct ExemptForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    check: String,
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    /// `resource`, `namespace`, `cluster` or `all`.
    #[serde(default)]
    scope: String,
    #[serde(default)]
    justification: String,
    #[serde(default)]
    days: String,
    back: Option<String>,
}

pub(crate) async fn create_exemption(State(s): S, Extension(v): V, Form(f): Form<ExemptForm>) -> Page {
    form_allowed(&v, &f.csrf, Role::Operator)?;
    let days: i64 = match f.days.trim().parse() {
        Ok(d) if (1..=366).contains(&d) => d,
        _ => return Err(error_page(StatusCode::BAD_REQUEST, "expiry: a whole number of days, 1 to 366")),
    };
    let some = |x: &str| (!x.is_empty()).then(|| x.to_string());
    let (cluster, namespace, name) = match f.scope.as_str() {
        // a cluster-scoped object has the namespace "": kept as such, so the exemption covers
        // that object only, not the name in every namespace
        "resource" => (some(&f.cluster), Some(f.namespace.clone()), some(&f.name)),
        "namespace" if f.namespace.is_empty() => {
            return Err(error_page(StatusCode::BAD_REQUEST, "a cluster-scoped object has no namespace to exempt"))
        }
        "namespace" => (some(&f.cluster), some(&f.namespace), None),
        "cluster" => (some(&f.cluster), None, None),
        "all" => (None, None, None),
        o => return Err(error_page(StatusCode::BAD_REQUEST, &format!("unknown scope {o:?}"))),
    };
    let input = palisade_store::ExemptionInput {
        cluster,
        check_id: f.check.clone(),
        namespace,
        name,
        justification: f.justification.trim().to_string(),
        expires_at: s.store.now() + days * 86_400,
    };
    s.store.create_exemption(&input, &v.actor()).await.map_err(store_err)?;
    invalidate_overview(&s);
    Ok(see_other(local_path(f.back.as_deref()).unwrap_or("/recommendations")))
}

pub(crate) async fn revoke_exemption(
    State(s): S,
    Extension(v): V,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Page {
    form_allowed(&v, &f.csrf, Role::Operator)?;
    s.store.revoke_exemption(id, &v.actor()).await.map_err(store_err)?;
    invalidate_overview(&s);
    Ok(see_other(local_path(f.back.as_deref()).unwrap_or("/recommendations")))
}

/// What the catalogue says of the selected check.
struct CheckInfo {
    title: String,
    rationale: String,
    remediation: String,
    frameworks: String,
}

#[derive(Template)]
#[template(path = "recommendations.html")]
struct RecPage {
    l: Layout,
    cluster: String,
    check: String,
    info: Option<CheckInfo>,
    exemptions: Vec<ExemptionRow>,
    can_exempt: bool,
    back: String,
    checks: Vec<CheckRow>,
    findings: Vec<PostureRow>,
    next: String,
}

pub(crate) async fn recommendations(State(s): S, Extension(v): V, Query(q): Query<RecQuery>) -> Page {
    let cluster = nonempty(&q.cluster);
    let check = nonempty(&q.check);
    // from the overview's figures (one scan of the posture findings, reused for a few seconds)
    let data = overview_data(&s).await.map_err(store_err)?;
    let groups = &data.groups;
    let mut by_check: BTreeMap<String, (Severity, i64, Vec<String>, i64)> = BTreeMap::new();
    for g in groups.iter().filter(|g| cluster.as_ref().is_none_or(|c| *c == g.cluster)) {
        let e = by_check.entry(g.check_id.clone()).or_insert((g.severity, 0, Vec::new(), 0));
        if g.severity.rank() > e.0.rank() {
            e.0 = g.severity;
        }
        e.1 += g.resources;
        e.2.push(g.cluster.clone());
        e.3 += g.exempt;
    }
    let c = cluster.clone().unwrap_or_default();
    let mut checks: Vec<CheckRow> = by_check
        .into_iter()
        .map(|(id, (sev, n, cl, ex))| CheckRow {
            exempt: ex,
            title: palisade_posture::check(&id).map(|k| k.title.to_string()).unwrap_or_default(),
            category: palisade_posture::check(&id).map(|k| k.category.to_string()).unwrap_or_default(),
            frameworks: palisade_posture::check(&id).map(framework_refs).unwrap_or_default(),
            href: href("/recommendations", &[("cluster", &c), ("check", &id)]),
            check_id: id,
            severity: sev.as_str(),
            sev_class: view::sev_class(sev),
            clusters: cl.join(", "),
            resources: n,
        })
        .collect();
    checks.sort_by(|a, b| {
        let r = |s: &str| Severity::parse(s).map(Severity::rank).unwrap_or(0);
        r(b.severity).cmp(&r(a.severity)).then(b.resources.cmp(&a.resources)).then(a.check_id.cmp(&b.check_id))
    });
    let (mut findings, mut next) = (Vec::new(), String::new());
    if let Some(ch) = &check {
        let pq = PostureQuery {
            cluster: cluster.clone(),
            check_id: Some(ch.clone()),
            limit: Some(PAGE),
            cursor: nonempty(&q.cursor),
            ..Default::default()
        };
        let page = s.store.list_posture_findings(&pq).await.map_err(store_err)?;
        next = page
            .next_cursor
            .as_deref()
            .map(|cur| href("/recommendations", &[("cluster", &c), ("check", ch), ("cursor", cur)]))
            .unwrap_or_default();
        findings = page
            .items
            .iter()
            .map(|p| {
                let o = &p.object;
                PostureRow {
                    id: p.id,
                    namespace: o.namespace.clone(),
                    name: o.name.clone(),
                    exempt: p.exemption.map(|x| format!("exempt (exemption #{x})")).unwrap_or_default(),
                    cluster: p.cluster.clone(),
                    object: if o.namespace.is_empty() {
                        format!("{}/{}", o.kind, o.name)
                    } else {
                        format!("{}/{}/{}", o.kind, o.namespace, o.name)
                    },
                    severity: p.severity.as_str(),
                    sev_class: view::sev_class(p.severity),
                    message: view::text(p.doc.get("message")),
                    remediation: view::text(p.doc.get("remediation")),
                    patch: match p.doc.get("patch") {
                        None | Some(serde_json::Value::Null) => String::new(),
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
                    },
                    first_seen: view::date(p.first_seen),
                }
            })
            .collect();
    }
    let page = RecPage {
        l: layout(&v, "Recommendations", "/recommendations"),
        cluster: c,
        info: check.as_deref().and_then(palisade_posture::check).map(|k| CheckInfo {
            title: k.title.to_string(),
            rationale: k.rationale.to_string(),
            remediation: k.remediation.to_string(),
            frameworks: framework_refs(k),
        }),
        exemptions: s
            .store
            .list_exemptions(false)
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|x| check.as_ref().is_none_or(|c| *c == x.check_id))
            .filter(|x| cluster.as_ref().is_none_or(|c| x.cluster.as_ref().is_none_or(|xc| xc == c)))
            .map(|x| ExemptionRow {
                id: x.id,
                check_id: x.check_id,
                scope: match (&x.cluster, &x.namespace, &x.name) {
                    (c, Some(ns), Some(n)) => {
                        format!("{}{ns}/{n}", c.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())
                    }
                    (c, Some(ns), None) => {
                        format!("{}namespace {ns}", c.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())
                    }
                    (Some(c), None, _) => format!("cluster {c}"),
                    (None, None, _) => "every cluster".into(),
                },
                justification: x.justification,
                by: x.created_by,
                expires: view::time(x.expires_at),
            })
            .collect(),
        can_exempt: v.can(Role::Operator),
        back: href(
            "/recommendations",
            &[("cluster", &cluster.clone().unwrap_or_default()), ("check", &check.clone().unwrap_or_default())],
        ),
        check: check.unwrap_or_default(),
        checks,
        findings,
        next,
    };
    Ok(render(&page))
}

// ---------------------------------------------------------------------------------------------
// Alerts and incidents

#[derive(Deserialize, Default)]
pub(crate) struct AlertsQuery {
    cluster: Option<String>,
    rule: Option<String>,
    min_severity: Option<String>,
    resolved: Option<String>,
    cursor: Option<String>,
}

struct AlertRow {
    id: i64,
    at: String,
    severity: &'static str,
    sev_class: &'static str,
    rule: String,
    message: String,
    tactics: String,
    techniques: String,
    entities: String,
    cluster: String,
    evidence: String,
    remediation: String,
    resolved: String,
    incident: String,
}

struct IncidentRow {
    id: i64,
    title: String,
    severity: &'static str,
    sev_class: &'static str,
    cluster: String,
    opened: String,
    alerts: i64,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    l: Layout,
    cluster: String,
    rule: String,
    severity: Vec<Opt>,
    resolved: Vec<Opt>,
    alerts: Vec<AlertRow>,
    incidents: Vec<IncidentRow>,
    next: String,
    can_resolve: bool,
    back: String,
}

fn attack_names(v: Option<&serde_json::Value>) -> String {
    let Some(serde_json::Value::Array(a)) = v else { return String::new() };
    a.iter()
        .filter_map(|t| match (t.get("id").and_then(|x| x.as_str()), t.get("name").and_then(|x| x.as_str())) {
            (Some(id), Some(n)) => Some(format!("{id} {n}")),
            (Some(id), None) => Some(id.to_string()),
            _ => t.as_str().map(str::to_string),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) async fn alerts(State(s): S, Extension(v): V, Query(q): Query<AlertsQuery>) -> Page {
    let resolved = match nonempty(&q.resolved).as_deref() {
        None | Some("false") => Some(false),
        Some("true") => Some(true),
        Some("any") => None,
        Some(o) => return Err(error_page(StatusCode::BAD_REQUEST, &format!("resolved={o:?}: use true, false or any"))),
    };
    let aq = AlertQuery {
        cluster: nonempty(&q.cluster),
        rule: nonempty(&q.rule),
        min_severity: severity_filter(&q.min_severity)?,
        resolved,
        limit: Some(PAGE),
        cursor: nonempty(&q.cursor),
        ..Default::default()
    };
    let page = s.store.list_alerts(&aq).await.map_err(store_err)?;
    let inc = s
        .store
        .list_incidents(&IncidentQuery { resolved: Some(false), limit: Some(100), ..Default::default() })
        .await
        .map_err(store_err)?;
    let f = |o: &Option<String>| nonempty(o).unwrap_or_default();
    let (cl, ru, ms, rs) = (f(&q.cluster), f(&q.rule), f(&q.min_severity), f(&q.resolved));
    let next = page
        .next_cursor
        .as_deref()
        .map(|c| {
            href("/alerts", &[("cluster", &cl), ("rule", &ru), ("min_severity", &ms), ("resolved", &rs), ("cursor", c)])
        })
        .unwrap_or_default();
    let back = href("/alerts", &[("cluster", &cl), ("rule", &ru), ("min_severity", &ms), ("resolved", &rs)]);
    let alerts = page
        .items
        .iter()
        .map(|a| {
            let d = &a.doc;
            let mut ent: Vec<String> = Vec::new();
            if let (Some(ns), Some(p)) = (&a.namespace, &a.pod) {
                ent.push(format!("pod {ns}/{p}"));
            }
            if let Some(n) = &a.node {
                ent.push(format!("node {n}"));
            }
            if let Some(u) = d
                .pointer("/entities/user")
                .and_then(|x| x.as_str())
                .or_else(|| d.pointer("/entities/user/name").and_then(|x| x.as_str()))
            {
                ent.push(format!("user {u}"));
            }
            if let Some(p) = d.pointer("/entities/process/exe").and_then(|x| x.as_str()) {
                ent.push(format!("process {p}"));
            }
            let evidence = match d.get("evidence") {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s.chars().take(4000).collect(),
                Some(v) => serde_json::to_string_pretty(v).unwrap_or_default().chars().take(4000).collect(),
            };
            let remediation = match d.get("remediation") {
                Some(serde_json::Value::Array(r)) => r.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" "),
                other => view::text(other),
            };
            AlertRow {
                id: a.id,
                at: view::time(a.at),
                severity: a.severity.as_str(),
                sev_class: view::sev_class(a.severity),
                rule: a.rule.clone(),
                message: view::text(d.get("message")),
                tactics: attack_names(d.get("tactics")),
                techniques: attack_names(d.get("techniques")),
                entities: ent.join("; "),
                cluster: a.cluster.clone().unwrap_or_default(),
                evidence,
                remediation,
                resolved: a
                    .resolved_at
                    .map(|t| format!("{} by {}", view::time(t), a.resolved_by.clone().unwrap_or_default()))
                    .unwrap_or_default(),
                incident: a.incident_id.map(|i| i.to_string()).unwrap_or_default(),
            }
        })
        .collect();
    let incidents = inc
        .items
        .iter()
        .map(|i| IncidentRow {
            id: i.id,
            title: i.title.clone(),
            severity: i.severity.as_str(),
            sev_class: view::sev_class(i.severity),
            cluster: i.cluster.clone().unwrap_or_default(),
            opened: view::time(i.opened_at),
            alerts: i.alerts,
        })
        .collect();
    let page = AlertsPage {
        l: layout(&v, "Alerts and incidents", "/alerts"),
        cluster: cl,
        rule: ru,
        severity: options(SEVERITIES, &ms),
        resolved: options(&[("", "Open"), ("true", "Resolved"), ("any", "All")], &rs),
        alerts,
        incidents,
        next,
        can_resolve: v.can(Role::Operator),
        back,
    };
    Ok(render(&page))
}

pub(crate) async fn resolve_alert(State(s): S, Extension(v): V, Path(id): Path<i64>, Form(f): Form<CsrfForm>) -> Page {
    form_allowed(&v, &f.csrf, Role::Operator)?;
    s.store.resolve_alert(id, &v.actor()).await.map_err(store_err)?;
    invalidate_overview(&s);
    Ok(see_other(local_path(f.back.as_deref()).unwrap_or("/alerts")))
}

pub(crate) async fn resolve_incident(
    State(s): S,
    Extension(v): V,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Page {
    form_allowed(&v, &f.csrf, Role::Operator)?;
    s.store.resolve_incident(id, &v.actor()).await.map_err(store_err)?;
    invalidate_overview(&s);
    Ok(see_other(local_path(f.back.as_deref()).unwrap_or("/alerts")))
}

// ---------------------------------------------------------------------------------------------
// Fleet

#[derive(Deserialize, Default)]
pub(crate) struct FleetQuery {
    cluster: Option<String>,
}

struct CoverageRow {
    cluster: String,
    href: String,
    nodes: usize,
    covered: usize,
    coverage: String,
    agent: String,
    admission: String,
}

struct NodeRow {
    cluster: String,
    name: String,
    kubelet: String,
    sensor: &'static str,
    sensor_class: &'static str,
    last_contact: String,
}

struct HealthRow {
    cluster: String,
    component: &'static str,
    instance: String,
    node: String,
    version: String,
    state: &'static str,
    state_class: &'static str,
    last_seen: String,
}

#[derive(Template)]
#[template(path = "fleet.html")]
struct FleetPage {
    /// More than [`FLEET_MAX`] nodes or health records: the page shows the first ones.
    truncated: bool,
    l: Layout,
    cluster: String,
    coverage: Vec<CoverageRow>,
    missing: Vec<NodeRow>,
    nodes: Vec<NodeRow>,
    health: Vec<HealthRow>,
}

fn state_str(h: HealthState) -> (&'static str, &'static str) {
    match h {
        HealthState::Healthy => ("healthy", "st st-ok"),
        HealthState::Degraded => ("degraded", "st st-warn"),
        HealthState::Unhealthy => ("unhealthy", "st st-bad"),
        HealthState::Uninitialized => ("never reported", "st st-bad"),
    }
}

/// Most nodes and health records one fleet page reads.
const FLEET_MAX: u32 = 5000;

pub(crate) async fn fleet(State(s): S, Extension(v): V, Query(q): Query<FleetQuery>) -> Page {
    let cluster = nonempty(&q.cluster);
    let nodes = s
        .store
        .list_nodes(&NameQuery { cluster: cluster.clone(), limit: Some(FLEET_MAX), ..Default::default() })
        .await
        .map_err(store_err)?;
    let health = s
        .store
        .list_health(&HealthQuery { cluster: cluster.clone(), limit: Some(FLEET_MAX), ..Default::default() })
        .await
        .map_err(store_err)?;
    let truncated = nodes.next_cursor.is_some() || health.next_cursor.is_some();
    // the best sensor state per (cluster, node)
    let mut sensor: HashMap<(String, String), (HealthState, i64)> = HashMap::new();
    let rank = |h: HealthState| match h {
        HealthState::Healthy => 3,
        HealthState::Degraded => 2,
        HealthState::Unhealthy => 1,
        HealthState::Uninitialized => 0,
    };
    let mut comp_state: HashMap<(String, &'static str), Vec<HealthState>> = HashMap::new();
    for h in &health.items {
        let comp = h.component.as_str();
        comp_state.entry((h.cluster.clone(), comp)).or_default().push(h.state);
        if comp == "sensor" {
            if let Some(n) = &h.node {
                let e = sensor.entry((h.cluster.clone(), n.clone())).or_insert((h.state, h.last_seen));
                if rank(h.state) > rank(e.0) {
                    *e = (h.state, h.last_seen);
                }
            }
        }
    }
    let summary = |cl: &str, comp: &'static str| -> String {
        match comp_state.get(&(cl.to_string(), comp)) {
            None => "none".into(),
            Some(v) => {
                let ok = v.iter().filter(|h| **h == HealthState::Healthy).count();
                format!("{ok} of {} healthy", v.len())
            }
        }
    };
    let mut per_cluster: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut rows = Vec::new();
    for n in &nodes.items {
        let st = sensor.get(&(n.cluster.clone(), n.name.clone()));
        let state = st.map(|s| s.0).unwrap_or(HealthState::Uninitialized);
        let e = per_cluster.entry(n.cluster.clone()).or_default();
        e.0 += 1;
        if state == HealthState::Healthy {
            e.1 += 1;
        }
        let (label, class) = match st {
            None => ("missing", "st st-bad"),
            Some(_) => state_str(state),
        };
        rows.push(NodeRow {
            cluster: n.cluster.clone(),
            name: n.name.clone(),
            kubelet: n.kubelet_version.clone().unwrap_or_default(),
            sensor: label,
            sensor_class: class,
            last_contact: st.map(|s| view::time(s.1)).unwrap_or_default(),
        });
    }
    let coverage = per_cluster
        .iter()
        .map(|(cl, (n, ok))| CoverageRow {
            cluster: cl.clone(),
            href: href("/fleet", &[("cluster", cl)]),
            nodes: *n,
            covered: *ok,
            coverage: if *n == 0 { "n/a".into() } else { format!("{}%", ok * 100 / n) },
            agent: summary(cl, "agent"),
            admission: summary(cl, "admission"),
        })
        .collect();
    let (missing, nodes): (Vec<NodeRow>, Vec<NodeRow>) = rows.into_iter().partition(|r| r.sensor != "healthy");
    let health = health
        .items
        .iter()
        .map(|h| {
            let (state, state_class) = state_str(h.state);
            HealthRow {
                cluster: h.cluster.clone(),
                component: h.component.as_str(),
                instance: h.instance.clone(),
                node: h.node.clone().unwrap_or_default(),
                version: h.version.clone().unwrap_or_default(),
                state,
                state_class,
                last_seen: view::time(h.last_seen),
            }
        })
        .collect();
    let page = FleetPage {
        truncated,
        l: layout(&v, "Fleet", "/fleet"),
        cluster: cluster.unwrap_or_default(),
        coverage,
        missing,
        nodes,
        health,
    };
    Ok(render(&page))
}

// ---------------------------------------------------------------------------------------------
// Settings

struct TokenRow {
    id: String,
    name: String,
    role: &'static str,
    cluster: String,
    created: String,
    created_by: String,
    expires: String,
    last_used: String,
    revoked: String,
    is_self: bool,
}

struct AuditRow {
    at: String,
    actor: String,
    action: String,
    target: String,
}

struct JobRow {
    name: String,
    state: String,
    next_run: String,
    finished: String,
    error: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    l: Layout,
    is_admin: bool,
    tokens: Vec<TokenRow>,
    audit: Vec<AuditRow>,
    jobs: Vec<JobRow>,
    retention: String,
    new_token: String,
    new_token_name: String,
    message: String,
    roles: Vec<Opt>,
}

async fn settings_page(s: &Server, v: &Viewer, new_token: (String, String), message: String) -> Page {
    let is_admin = v.can(Role::Admin);
    let (mut tokens, mut audit) = (Vec::new(), Vec::new());
    if is_admin {
        tokens = s
            .store
            .list_tokens()
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|t| TokenRow {
                is_self: t.id == v.token.id,
                id: t.id,
                name: t.name,
                role: t.role.as_str(),
                cluster: t.cluster.unwrap_or_default(),
                created: view::time(t.created_at),
                created_by: t.created_by,
                expires: view::opt_time(t.expires_at),
                last_used: view::opt_time(t.last_used_at),
                revoked: view::opt_time(t.revoked_at),
            })
            .collect();
        audit = s
            .store
            .list_audit(&AuditQuery { limit: Some(100), ..Default::default() })
            .await
            .map_err(store_err)?
            .items
            .into_iter()
            .map(|a| AuditRow { at: view::time(a.at), actor: a.actor, action: a.action, target: a.target })
            .collect();
    }
    let jobs = s
        .store
        .list_jobs()
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|j| JobRow {
            name: j.name,
            state: format!("{:?}", j.state).to_lowercase(),
            next_run: view::opt_time(j.next_run),
            finished: view::opt_time(j.finished_at),
            error: j.last_error.unwrap_or_default(),
        })
        .collect();
    let r = &s.config.retention;
    let retention = format!(
        "resolved alerts: {} days; images not seen: {} days; audit log: {}; findings: never deleted",
        r.resolved_alert_days,
        r.image_unseen_days,
        r.audit_days.map(|d| format!("{d} days")).unwrap_or_else(|| "kept".into())
    );
    let page = SettingsPage {
        l: layout(v, "Settings", "/settings"),
        is_admin,
        tokens,
        audit,
        jobs,
        retention,
        new_token: new_token.1,
        new_token_name: new_token.0,
        message,
        roles: options(&[("viewer", "viewer"), ("operator", "operator"), ("admin", "admin")], "viewer"),
    };
    Ok(render(&page))
}

pub(crate) async fn settings(State(s): S, Extension(v): V) -> Page {
    settings_page(&s, &v, (String::new(), String::new()), String::new()).await
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    expires_days: Option<String>,
}

pub(crate) async fn create_token(State(s): S, Extension(v): V, Form(f): Form<TokenForm>) -> Page {
    form_allowed(&v, &f.csrf, Role::Admin)?;
    let Some(role) = Role::parse(&f.role) else {
        return Err(error_page(StatusCode::BAD_REQUEST, &format!("unknown role {:?}", f.role)));
    };
    let expires_at = match nonempty(&f.expires_days) {
        None => None,
        Some(d) => match d.parse::<i64>() {
            Ok(n) if (1..=3650).contains(&n) => Some(s.store.now() + n * 86_400),
            _ => return Err(error_page(StatusCode::BAD_REQUEST, "expiry: a whole number of days, 1 to 3650")),
        },
    };
    let new = NewToken { name: f.name.trim().to_string(), role, expires_at, single_use: false, cluster: None };
    let (info, secret) = s.store.create_token(&new, &v.actor()).await.map_err(store_err)?;
    // shown once, in this answer (never in a URL, never stored)
    let mut r = settings_page(&s, &v, (info.name, secret), String::new()).await?;
    r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(r)
}

pub(crate) async fn revoke_token(
    State(s): S,
    Extension(v): V,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Page {
    form_allowed(&v, &f.csrf, Role::Admin)?;
    if id.len() > 64 {
        return Err(error_page(StatusCode::BAD_REQUEST, "not a token ID"));
    }
    s.store.revoke_token(&id, &v.actor()).await.map_err(store_err)?;
    Ok(see_other("/settings"))
}
