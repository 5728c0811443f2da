//! The routes beyond images and findings: inventory, posture, alerts and incidents, health,
//! triage, tokens and retention; and the one list helper every list route uses (cursor paging,
//! and `?format=ndjson` to export the whole list as one NDJSON stream).

use crate::api::{actor, need, parse_json, ApiError, ApiResult};
use crate::Server;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use palisade_store::{
    AlertInput, AlertQuery, AuditQuery, EventQuery, FindingQuery, HealthQuery, Heartbeat, ImageQuery, IncidentInput,
    IncidentQuery, InventoryUpdate, NameQuery, Page, PostureQuery, PostureSnapshot, RetentionPolicy, Role,
    StoreError, TokenInfo, TriageUpdate, WorkloadQuery,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::future::Future;
use std::sync::Arc;

/// Most alerts, heartbeats or objects in one upload.
pub const MAX_BATCH: usize = 10_000;

/// A query with cursor paging.
pub(crate) trait Paged: Clone + Send + Sync + 'static {
    fn cursor(&mut self) -> &mut Option<String>;
    fn limit(&mut self) -> &mut Option<u32>;
}

macro_rules! paged {
    ($($t:ty),*) => {$(
        impl Paged for $t {
            fn cursor(&mut self) -> &mut Option<String> { &mut self.cursor }
            fn limit(&mut self) -> &mut Option<u32> { &mut self.limit }
        }
    )*};
}
paged!(
    ImageQuery,
    FindingQuery,
    EventQuery,
    AuditQuery,
    AlertQuery,
    IncidentQuery,
    HealthQuery,
    NameQuery,
    WorkloadQuery,
    PostureQuery
);

/// `format=json` (default: one page, `{"items", "next_cursor"}`) or `format=ndjson` (every
/// page, one item per line, streamed).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Format {
    #[serde(default)]
    format: Option<String>,
}

/// One page as JSON, or the whole list as NDJSON.
pub(crate) async fn list<Q, T, F, Fut>(s: Arc<Server>, q: Q, fmt: Format, fetch: F) -> ApiResult<Response>
where
    Q: Paged,
    T: Serialize + Send + 'static,
    F: Fn(Arc<Server>, Q) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Page<T>, StoreError>> + Send + 'static,
{
    match fmt.format.as_deref() {
        None | Some("json") => {
            let page = fetch(s, q).await?;
            Ok(Json(json!({"items": page.items, "next_cursor": page.next_cursor})).into_response())
        }
        Some("ndjson") => {
            let mut q = q;
            *q.limit() = Some(1000);
            // the first page is read before answering, so a bad query is still a 400
            let first = fetch(s.clone(), q.clone()).await?;
            let state = (Some(first), q, s, Arc::new(fetch));
            let stream = futures_util::stream::unfold(state, |(page, mut q, s, fetch)| async move {
                let page = match page {
                    Some(p) => p,
                    None => {
                        q.cursor().as_ref()?;
                        match fetch(s.clone(), q.clone()).await {
                            Ok(p) => p,
                            Err(e) => {
                                // a broken export must not look complete: end with an error line
                                tracing::error!(error = %e, "NDJSON export failed");
                                *q.cursor() = None;
                                let line = json!({"error": format!("export interrupted: {e}")}).to_string() + "\n";
                                return Some((Ok::<Bytes, std::io::Error>(Bytes::from(line)), (None, q, s, fetch)));
                            }
                        }
                    }
                };
                let mut out = Vec::with_capacity(page.items.len() * 256);
                for i in &page.items {
                    if serde_json::to_writer(&mut out, i).is_ok() {
                        out.push(b'\n');
                    }
                }
                *q.cursor() = page.next_cursor;
                if out.is_empty() && q.cursor().is_none() {
                    return None;
                }
                Some((Ok(Bytes::from(out)), (None, q, s, fetch)))
            });
            Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response())
        }
        Some(other) => Err(ApiError(StatusCode::BAD_REQUEST, format!("format {other:?}: use json or ndjson"))),
    }
}

type S = State<Arc<Server>>;
type T = Extension<TokenInfo>;

macro_rules! list_route {
    ($name:ident, $q:ty, $method:ident) => {
        pub(crate) async fn $name(
            State(s): S,
            Extension(t): T,
            Query(q): Query<$q>,
            Query(f): Query<Format>,
        ) -> ApiResult<Response> {
            need(&t, Role::Viewer)?;
            list(s, q, f, |s, q| async move { s.store.$method(&q).await }).await
        }
    };
}

list_route!(list_clusters, NameQuery, list_clusters);
list_route!(list_nodes, NameQuery, list_nodes);
list_route!(list_workloads, WorkloadQuery, list_workloads);
list_route!(list_posture_findings, PostureQuery, list_posture_findings);
list_route!(list_alerts, AlertQuery, list_alerts);
list_route!(list_incidents, IncidentQuery, list_incidents);
list_route!(list_health, HealthQuery, list_health);

/// A JSON list upload: `{"<key>": [...]}` or a bare array, 1..=[`MAX_BATCH`] items.
fn batch<I: serde::de::DeserializeOwned>(body: &[u8], key: &str) -> ApiResult<Vec<I>> {
    let v: Value = parse_json(body)?;
    let arr = match v {
        Value::Array(a) => a,
        Value::Object(mut m) => match m.remove(key) {
            Some(Value::Array(a)) => a,
            _ => return Err(ApiError(StatusCode::BAD_REQUEST, format!("expected {{\"{key}\": [...]}} or an array"))),
        },
        _ => return Err(ApiError(StatusCode::BAD_REQUEST, format!("expected {{\"{key}\": [...]}} or an array"))),
    };
    if arr.is_empty() || arr.len() > MAX_BATCH {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("{key}: between 1 and {MAX_BATCH} items, got {}", arr.len())));
    }
    arr.into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value(v).map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("{key}[{i}]: {e}")))
        })
        .collect()
}

pub(crate) async fn ingest_inventory(State(s): S, Extension(t): T, body: Bytes) -> ApiResult<Json<Value>> {
    need(&t, Role::Operator)?;
    let u: InventoryUpdate = parse_json(&body)?;
    if u.objects.len() + u.nodes.len() > 200_000 {
        return Err(ApiError(StatusCode::BAD_REQUEST, "at most 200,000 objects and nodes per update".into()));
    }
    Ok(Json(json!(s.store.apply_inventory(&u, &actor(&t)).await?)))
}

pub(crate) async fn ingest_posture(State(s): S, Extension(t): T, body: Bytes) -> ApiResult<Json<Value>> {
    need(&t, Role::Operator)?;
    let snap: PostureSnapshot = parse_json(&body)?;
    Ok(Json(json!(s.store.ingest_posture(&snap, &actor(&t)).await?)))
}

pub(crate) async fn ingest_alerts(State(s): S, Extension(t): T, body: Bytes) -> ApiResult<Json<Value>> {
    need(&t, Role::Operator)?;
    let alerts: Vec<AlertInput> = batch(&body, "alerts")?;
    let ids = s.store.ingest_alerts(&alerts, &actor(&t)).await?;
    Ok(Json(json!({"ids": ids})))
}

pub(crate) async fn get_alert(State(s): S, Extension(t): T, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    need(&t, Role::Viewer)?;
    match s.store.get_alert(id).await? {
        Some(a) => Ok(Json(json!(a))),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("alert {id} not found"))),
    }
}

pub(crate) async fn resolve_alert(State(s): S, Extension(t): T, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    need(&t, Role::Operator)?;
    Ok(Json(json!(s.store.resolve_alert(id, &actor(&t)).await?)))
}

pub(crate) async fn open_incident(State(s): S, Extension(t): T, body: Bytes) -> ApiResult<Response> {
    need(&t, Role::Operator)?;
    let input: IncidentInput = parse_json(&body)?;
    let inc = s.store.open_incident(&input, &actor(&t)).await?;
    Ok((StatusCode::CREATED, Json(json!(inc))).into_response())
}

pub(crate) async fn get_incident(State(s): S, Extension(t): T, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    need(&t, Role::Viewer)?;
    match s.store.get_incident(id).await? {
        Some(i) => Ok(Json(json!(i))),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("incident {id} not found"))),
    }
}

pub(crate) async fn resolve_incident(State(s): S, Extension(t): T, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    need(&t, Role::Operator)?;
    Ok(Json(json!(s.store.resolve_incident(id, &actor(&t)).await?)))
}

pub(crate) async fn ingest_heartbeats(State(s): S, Extension(t): T, body: Bytes) -> ApiResult<Json<Value>> {
    need(&t, Role::Operator)?;
    let beats: Vec<Heartbeat> = batch(&body, "heartbeats")?;
    s.store.record_heartbeats(&beats).await?;
    Ok(Json(json!({"recorded": beats.len()})))
}

pub(crate) async fn get_finding(State(s): S, Extension(t): T, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    need(&t, Role::Viewer)?;
    match s.store.get_finding(id).await? {
        Some(f) => Ok(Json(json!(f))),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("finding {id} not found"))),
    }
}

pub(crate) async fn set_triage(State(s): S, Extension(t): T, Path(id): Path<i64>, body: Bytes) -> ApiResult<Json<Value>> {
    need(&t, Role::Operator)?;
    let u: TriageUpdate = parse_json(&body)?;
    Ok(Json(json!(s.store.set_triage(id, &u, &actor(&t)).await?)))
}

pub(crate) async fn triage_history(State(s): S, Extension(t): T, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    need(&t, Role::Viewer)?;
    if s.store.get_finding(id).await?.is_none() {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("finding {id} not found")));
    }
    Ok(Json(json!({"items": s.store.triage_history(id).await?})))
}

pub(crate) async fn list_tokens(State(s): S, Extension(t): T) -> ApiResult<Json<Value>> {
    need(&t, Role::Admin)?;
    Ok(Json(json!({"items": s.store.list_tokens().await?})))
}

pub(crate) async fn revoke_token(State(s): S, Extension(t): T, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    need(&t, Role::Admin)?;
    Ok(Json(json!(s.store.revoke_token(&id, &actor(&t)).await?)))
}

pub(crate) async fn run_retention(State(s): S, Extension(t): T) -> ApiResult<Json<Value>> {
    need(&t, Role::Admin)?;
    let policy: RetentionPolicy = s.config.retention;
    Ok(Json(json!(s.store.apply_retention(&policy, &actor(&t)).await?)))
}
