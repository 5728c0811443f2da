//! The HTTP surface. Every `/api/v1` route needs `Authorization: Bearer TOKEN`; reads need
//! `viewer`, writes `operator`, administration `admin`. Refusals are logged and counted, and
//! every write is in the store's audit log (the store records it in the write's transaction).
//! Errors are JSON `{"error": "..."}` with 400 (malformed input, nothing changed), 401 (no or
//! bad token), 403 (role too low), 404, 413 (body over [`MAX_BODY_BYTES`]) or 503 (store down).

use crate::{routes, Server, DB_UPDATE_JOB, MAX_BODY_BYTES};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use palisade_store::{
    AuditQuery, AuthOutcome, EventQuery, FindingInput, FindingQuery, ImageQuery, ImageUpload, NewToken, Role,
    StoreError, TokenInfo,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// An API error: a status and a reason for the client.
#[derive(Debug)]
pub struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let status = match &e {
            StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
            StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
            StoreError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            e if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "store error");
        }
        ApiError(status, e.to_string())
    }
}

/// Most images in one `POST /api/v1/images`.
pub const MAX_IMAGES_PER_UPLOAD: usize = 1000;
/// Uploads of at most this many images get each image's findings in the answer.
pub const EMBED_FINDINGS_UP_TO: usize = 10;

pub(crate) type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn need(tok: &TokenInfo, role: Role) -> ApiResult<()> {
    if tok.role.allows(role) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("this needs the {} role; the token has {}", role.as_str(), tok.role.as_str()),
        ))
    }
}

pub(crate) fn actor(tok: &TokenInfo) -> String {
    format!("token:{}({})", tok.id, tok.name)
}

/// The whole HTTP surface of `server`.
pub fn router(server: Arc<Server>) -> Router {
    let mut api = Router::new();
    for path in crate::openapi::paths() {
        api = api.route(path, methods(path));
    }
    let api = api
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such API route".into()) })
        .layer(middleware::from_fn_with_state(server.clone(), bounded_body))
        .layer(middleware::from_fn_with_state(server.clone(), authenticate));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(|| async { Json(crate::openapi::document()) }))
        .nest("/api/v1", api)
        .merge(crate::console::routes(server.clone()))
        .fallback(|| async { crate::console::not_found() })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(server)
}

/// The handlers of one documented path ([`crate::openapi::OPERATIONS`] lists the paths; a
/// test checks that the methods routed here are exactly the documented ones).
fn methods(path: &str) -> axum::routing::MethodRouter<Arc<Server>> {
    use axum::routing::delete;
    match path {
        "/images" => get(list_images).post(ingest_images),
        "/images/{digest}" => get(get_image),
        "/images/{digest}/findings" => get(image_findings),
        "/images/{digest}/sbom" => get(routes::get_sbom),
        "/findings" => get(list_findings),
        "/findings/{id}" => get(routes::get_finding),
        "/findings/{id}/triage" => get(routes::triage_history).put(routes::set_triage),
        "/vulnerabilities/{id}" => get(blast_radius),
        "/events" => get(list_events),
        "/clusters" => get(routes::list_clusters),
        "/nodes" => get(routes::list_nodes),
        "/workloads" => get(routes::list_workloads),
        "/inventory" => post(routes::ingest_inventory),
        "/posture" => post(routes::ingest_posture),
        "/posture/findings" => get(routes::list_posture_findings),
        "/posture/exemptions" => get(routes::list_exemptions).post(routes::create_exemption),
        "/posture/exemptions/{id}/revoke" => post(routes::revoke_exemption),
        "/alerts" => get(routes::list_alerts).post(routes::ingest_alerts),
        "/alerts/{id}" => get(routes::get_alert),
        "/alerts/{id}/resolve" => post(routes::resolve_alert),
        "/incidents" => get(routes::list_incidents).post(routes::open_incident),
        "/incidents/{id}" => get(routes::get_incident),
        "/incidents/{id}/resolve" => post(routes::resolve_incident),
        "/heartbeats" => post(routes::ingest_heartbeats),
        "/health" => get(routes::list_health),
        "/audit" => get(list_audit),
        "/tokens" => get(routes::list_tokens).post(create_token),
        "/tokens/{id}" => delete(routes::revoke_token),
        "/admin/db/update" => post(request_db_update),
        "/admin/retention" => post(routes::run_retention),
        "/admin/jobs" => get(list_jobs),
        // a documented path without handlers answers 501, which the drift test catches
        _ => get(not_implemented).post(not_implemented).put(not_implemented).delete(not_implemented),
    }
}

async fn not_implemented() -> ApiError {
    ApiError(StatusCode::NOT_IMPLEMENTED, "documented but not implemented".into())
}

async fn authenticate(State(s): State<Arc<Server>>, mut req: Request, next: Next) -> Response {
    s.metrics.requests.fetch_add(1, Ordering::Relaxed);
    let path = req.uri().path().to_string();
    let refuse = |why: &str| {
        s.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%path, reason = why, "API request refused");
        let mut r = ApiError(StatusCode::UNAUTHORIZED, format!("unauthorized: {why}")).into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        r
    };
    let Some(token) = bearer(req.headers()).map(str::to_string) else {
        return refuse("no bearer token");
    };
    match s.store.authenticate(&token).await {
        Ok(AuthOutcome::Valid(info)) => {
            req.extensions_mut().insert(info);
            next.run(req).await
        }
        Ok(AuthOutcome::Refused(why)) => refuse(&format!(
            "token {}",
            serde_json::to_value(why).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
        )),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Runs after authentication (so an unauthenticated client never has its body read): takes
/// the body's share of [`crate::BODY_BUDGET_MIB`] (503 when none frees up within the request
/// timeout), then reads the body within the request timeout (408 for a body that trickles) and
/// at most [`MAX_BODY_BYTES`] (413, also before reading when `Content-Length` says so).
async fn bounded_body(State(s): State<Arc<Server>>, req: Request, next: Next) -> Response {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let empty = axum::body::HttpBody::size_hint(req.body()).exact() == Some(0)
        || axum::body::HttpBody::is_end_stream(req.body());
    if empty {
        return next.run(req).await;
    }
    // no route reads a body on these methods: refuse one rather than read it
    if matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::DELETE) {
        return ApiError(StatusCode::BAD_REQUEST, format!("{} takes no request body", req.method())).into_response();
    }
    // every route that reads a body writes: a viewer token never gets its body read (or a
    // share of the body budget)
    if let Some(t) = req.extensions().get::<TokenInfo>() {
        if let Err(e) = need(t, Role::Operator) {
            return e.into_response();
        }
    }
    let too_large = || {
        ApiError(StatusCode::PAYLOAD_TOO_LARGE, format!("request body larger than {MAX_BODY_BYTES} bytes"))
            .into_response()
    };
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    // a chunked body may grow to the body limit: it takes that much of the budget
    let max_mib = (MAX_BODY_BYTES >> 20) as u32;
    let mib = declared.map_or(max_mib, |n| ((n >> 20) as u32 + 1).min(max_mib));
    let wait = s.config.http.request_timeout;
    let Ok(Ok(_permit)) = tokio::time::timeout(wait, s.bodies.acquire_many(mib)).await else {
        return ApiError(StatusCode::SERVICE_UNAVAILABLE, "too many uploads in flight; retry later".into())
            .into_response();
    };
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(wait, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let length_limit = std::error::Error::source(&e)
                .is_some_and(|c| c.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if length_limit {
                return too_large();
            }
            return ApiError(StatusCode::BAD_REQUEST, format!("reading the request body: {e}")).into_response();
        }
        Err(_) => {
            return ApiError(StatusCode::REQUEST_TIMEOUT, format!("request body not received within {wait:?}"))
                .into_response()
        }
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

fn bearer(h: &HeaderMap) -> Option<&str> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
}

async fn readyz(State(s): State<Arc<Server>>) -> Response {
    match s.store.ping().await {
        Ok(()) if s.vulndb().is_some() => "ready\n".into_response(),
        Ok(()) => (StatusCode::SERVICE_UNAVAILABLE, "no vulnerability database yet\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store unavailable: {e}\n")).into_response(),
    }
}

async fn metrics(State(s): State<Arc<Server>>) -> Response {
    let m = &s.metrics;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"));
    };
    counter("palisade_server_api_requests_total", "API requests received.", m.requests.load(Ordering::Relaxed));
    counter(
        "palisade_server_auth_failures_total",
        "API requests refused for their token.",
        m.auth_failures.load(Ordering::Relaxed),
    );
    counter(
        "palisade_server_images_ingested_total",
        "Images accepted by uploads.",
        m.images_ingested.load(Ordering::Relaxed),
    );
    counter(
        "palisade_server_reassessments_total",
        "Re-assessment runs finished.",
        m.reassessments.load(Ordering::Relaxed),
    );
    counter(
        "palisade_server_images_reassessed_total",
        "Stored SBOMs re-matched.",
        m.images_reassessed.load(Ordering::Relaxed),
    );
    counter("palisade_server_job_failures_total", "Job runs that failed.", m.job_failures.load(Ordering::Relaxed));
    for (name, help, v) in [
        (
            "palisade_server_last_db_build_seconds",
            "Duration of the last database build or download.",
            &m.last_db_build_ms,
        ),
        (
            "palisade_server_last_reassessment_seconds",
            "Duration of the last re-assessment of stored SBOMs.",
            &m.last_reassess_ms,
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {:.3}\n",
            v.load(Ordering::Relaxed) as f64 / 1000.0
        ));
    }
    let vulns = s.vulndb().map(|d| d.meta().vulnerabilities).unwrap_or(0);
    out.push_str(&format!(
        "# HELP palisade_server_vulndb_vulnerabilities Vulnerabilities in the server's database.\n# TYPE palisade_server_vulndb_vulnerabilities gauge\npalisade_server_vulndb_vulnerabilities {vulns}\n"
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

async fn list_images(
    State(s): State<Arc<Server>>,
    Extension(t): Extension<TokenInfo>,
    Query(q): Query<ImageQuery>,
    Query(f): Query<routes::Format>,
) -> ApiResult<Response> {
    need(&t, Role::Viewer)?;
    routes::list(s, q, f, |s, q| async move { s.store.list_images(&q).await }).await
}

async fn get_image(
    State(s): State<Arc<Server>>,
    Extension(t): Extension<TokenInfo>,
    Path(digest): Path<String>,
) -> ApiResult<Json<Value>> {
    need(&t, Role::Viewer)?;
    match s.store.get_image(&digest).await? {
        Some(i) => Ok(Json(json!(i))),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("image {digest} not found"))),
    }
}

async fn image_findings(
    State(s): State<Arc<Server>>,
    Extension(t): Extension<TokenInfo>,
    Path(digest): Path<String>,
    Query(mut q): Query<FindingQuery>,
    Query(f): Query<routes::Format>,
) -> ApiResult<Response> {
    need(&t, Role::Viewer)?;
    if s.store.get_image(&digest).await?.is_none() {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("image {digest} not found")));
    }
    q.image_digest = Some(digest);
    routes::list(s, q, f, |s, q| async move { s.store.list_findings(&q).await }).await
}

async fn list_findings(
    State(s): State<Arc<Server>>,
    Extension(t): Extension<TokenInfo>,
    Query(q): Query<FindingQuery>,
    Query(f): Query<routes::Format>,
) -> ApiResult<Response> {
    need(&t, Role::Viewer)?;
    routes::list(s, q, f, |s, q| async move { s.store.list_findings(&q).await }).await
}

#[derive(Debug, Deserialize)]
struct BlastQuery {
    #[serde(default)]
    max_images: Option<u32>,
}

async fn blast_radius(
    State(s): State<Arc<Server>>,
    Extension(t): Extension<TokenInfo>,
    Path(id): Path<String>,
    Query(q): Query<BlastQuery>,
) -> ApiResult<Json<Value>> {
    need(&t, Role::Viewer)?;
    Ok(Json(json!(s.store.blast_radius(&id, q.max_images.unwrap_or(1000).min(10_000)).await?)))
}

async fn list_events(
    State(s): State<Arc<Server>>,
    Extension(t): Extension<TokenInfo>,
    Query(q): Query<EventQuery>,
    Query(f): Query<routes::Format>,
) -> ApiResult<Response> {
    need(&t, Role::Viewer)?;
    routes::list(s, q, f, |s, q| async move { s.store.list_events(&q).await }).await
}

async fn list_audit(
    State(s): State<Arc<Server>>,
    Extension(t): Extension<TokenInfo>,
    Query(q): Query<AuditQuery>,
    Query(f): Query<routes::Format>,
) -> ApiResult<Response> {
    need(&t, Role::Admin)?;
    routes::list(s, q, f, |s, q| async move { s.store.list_audit(&q).await }).await
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("malformed request body: {e}")))
}

async fn create_token(
    State(s): State<Arc<Server>>,
    Extension(t): Extension<TokenInfo>,
    body: Bytes,
) -> ApiResult<Response> {
    need(&t, Role::Admin)?;
    let new: NewToken = parse_json(&body)?;
    let (info, secret) = s.store.create_token(&new, &actor(&t)).await?;
    Ok((StatusCode::CREATED, Json(json!({"token": secret, "info": info}))).into_response())
}

/// `POST /api/v1/images`: `{"images": [ImageUpload, …]}` (or one `ImageUpload`). An image
/// with an SBOM and no findings is matched against the server's own database.
async fn ingest_images(
    State(s): State<Arc<Server>>,
    Extension(t): Extension<TokenInfo>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    need(&t, Role::Operator)?;
    // Split into raw items without building a tree, then parse item by item, so a refusal
    // names the item and the field (a `Value` tree of 20 SBOMs cost more than the parse).
    let bad_shape = || ApiError(StatusCode::BAD_REQUEST, "expected {\"images\": [...]} or one image".into());
    let top: std::collections::BTreeMap<String, &serde_json::value::RawValue> = match serde_json::from_slice(&body) {
        Ok(t) => t,
        Err(e) if e.is_data() => return Err(bad_shape()),
        Err(e) => return Err(ApiError(StatusCode::BAD_REQUEST, format!("malformed request body: {e}"))),
    };
    let items: Vec<&serde_json::value::RawValue> = match top.get("images") {
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "images: expected an array".into()))?,
        None => vec![serde_json::from_slice(&body).map_err(|_| bad_shape())?],
    };
    if items.len() > MAX_IMAGES_PER_UPLOAD {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_IMAGES_PER_UPLOAD} images per upload, got {}", items.len()),
        ));
    }
    let mut images: Vec<ImageUpload> = Vec::with_capacity(items.len());
    for (i, it) in items.into_iter().enumerate() {
        images.push(
            serde_json::from_str(it.get())
                .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("malformed request body: images[{i}]: {e}")))?,
        );
    }
    if images.is_empty() {
        return Err(ApiError(StatusCode::BAD_REQUEST, "no images in the upload".into()));
    }
    let now = s.store.now();
    for i in &mut images {
        // A scan pulled the image now: that keeps it in re-assessment scope (pulled within 30 days).
        if i.pulled_at.is_none() && i.sbom.is_some() {
            i.pulled_at = Some(now);
        }
    }
    let db = s.vulndb();
    // counted while matching, so a running re-assessment yields to this upload
    struct Interactive<'a>(&'a std::sync::atomic::AtomicUsize);
    impl Drop for Interactive<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    s.interactive.fetch_add(1, Ordering::Relaxed);
    let _interactive = Interactive(&s.interactive);
    let assessed: Vec<bool> =
        images.iter().map(|i| i.findings.is_some() || (i.sbom.is_some() && db.is_some())).collect();
    if let Some(db) = db {
        let (tx_images, matched) = tokio::task::spawn_blocking(move || {
            let mut errs = Vec::new();
            for i in &mut images {
                if let (Some(sbom), None) = (&i.sbom, &i.findings) {
                    match palisade_vulndb::matcher::match_sbom(&db, sbom) {
                        Ok(m) => i.findings = Some(m.findings.iter().map(FindingInput::from_vulndb).collect()),
                        Err(e) => errs.push(format!("{}: {e}", i.digest)),
                    }
                }
            }
            (images, errs)
        })
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        if !matched.is_empty() {
            return Err(ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("matching failed: {}", matched.join("; ")),
            ));
        }
        images = tx_images;
    }
    let outcomes = s.store.ingest_images(&images, &actor(&t)).await?;
    s.metrics.images_ingested.fetch_add(outcomes.len() as u64, Ordering::Relaxed);
    let mut out = Vec::with_capacity(outcomes.len());
    for (o, assessed) in outcomes.iter().zip(assessed) {
        // an interactive upload (a scan, a few images) gets its findings back; a bulk upload
        // gets the outcome only (read the findings with GET /images/{digest}/findings)
        if outcomes.len() > EMBED_FINDINGS_UP_TO {
            out.push(json!({
                "digest": o.digest, "new_image": o.new_image, "sbom_changed": o.sbom_changed,
                "events": o.events.len(), "assessed": assessed,
            }));
            continue;
        }
        let findings = s
            .store
            .list_findings(&FindingQuery {
                image_digest: Some(o.digest.clone()),
                limit: Some(1000),
                ..FindingQuery::default()
            })
            .await?;
        out.push(json!({
            "digest": o.digest, "new_image": o.new_image, "sbom_changed": o.sbom_changed,
            "events": o.events.len(), "assessed": assessed,
            "findings": findings.items, "more_findings": findings.next_cursor.is_some(),
        }));
    }
    Ok(Json(json!({"images": out})))
}

async fn request_db_update(State(s): State<Arc<Server>>, Extension(t): Extension<TokenInfo>) -> ApiResult<Response> {
    need(&t, Role::Admin)?;
    s.store.request_run(DB_UPDATE_JOB, &actor(&t)).await?;
    s.wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(json!({"job": DB_UPDATE_JOB, "requested": true}))).into_response())
}

async fn list_jobs(State(s): State<Arc<Server>>, Extension(t): Extension<TokenInfo>) -> ApiResult<Json<Value>> {
    need(&t, Role::Viewer)?;
    Ok(Json(json!({"items": s.store.list_jobs().await?})))
}
