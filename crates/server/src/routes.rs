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
    IncidentQuery, InventoryUpdate, NameQuery, Page, PostureQuery, PostureSnapshot, RetentionPolicy, Role, StoreError,
    TokenInfo, TriageUpdate, WorkloadQuery,
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

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ExemptionList {
    #[serde(default)]
    include_inactive: bool,
}

pub(crate) async fn list_exemptions(
    State(s): S,
    Extension(t): T,
    Query(q): Query<ExemptionList>,
) -> ApiResult<Json<Value>> {
    need(&t, Role::Viewer)?;
    Ok(Json(json!({"items": s.store.list_exemptions(q.include_inactive).await?})))
}

pub(crate) async fn create_exemption(State(s): S, Extension(t): T, body: Bytes) -> ApiResult<Json<Value>> {
    need(&t, Role::Operator)?;
    let e: palisade_store::ExemptionInput = parse_json(&body)?;
    own_cluster(&t, e.cluster.as_deref())?;
    if t.cluster.is_some() && e.cluster.is_none() {
        return Err(ApiError(StatusCode::FORBIDDEN, "a token bound to a cluster exempts in that cluster only".into()));
    }
    Ok(Json(json!(s.store.create_exemption(&e, &actor(&t)).await?)))
}

pub(crate) async fn revoke_exemption(State(s): S, Extension(t): T, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    need(&t, Role::Operator)?;
    let Some(e) = s.store.get_exemption(id).await? else {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no exemption {id}")));
    };
    own_cluster(&t, e.cluster.as_deref())?;
    if t.cluster.is_some() && e.cluster.is_none() {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "a token bound to a cluster cannot revoke a fleet-wide exemption".into(),
        ));
    }
    Ok(Json(json!(s.store.revoke_exemption(id, &actor(&t)).await?)))
}

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
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("{key}: between 1 and {MAX_BATCH} items, got {}", arr.len()),
        ));
    }
    arr.into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value(v).map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("{key}[{i}]: {e}")))
        })
        .collect()
}

/// A token bound to a cluster (an agent's, a sensor's) writes only that cluster's data.
fn own_cluster(t: &TokenInfo, cluster: Option<&str>) -> ApiResult<()> {
    match (&t.cluster, cluster) {
        (Some(bound), Some(c)) if bound != c => Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("this token is bound to cluster {bound:?}; it cannot write cluster {c:?}"),
        )),
        _ => Ok(()),
    }
}

pub(crate) async fn ingest_inventory(State(s): S, Extension(t): T, body: Bytes) -> ApiResult<Json<Value>> {
    need(&t, Role::Operator)?;
    let u: InventoryUpdate = parse_json(&body)?;
    own_cluster(&t, Some(&u.cluster))?;
    if u.objects.len() + u.nodes.len() > 200_000 {
        return Err(ApiError(StatusCode::BAD_REQUEST, "at most 200,000 objects and nodes per update".into()));
    }
    Ok(Json(json!(s.store.apply_inventory(&u, &actor(&t)).await?)))
}

pub(crate) async fn ingest_posture(State(s): S, Extension(t): T, body: Bytes) -> ApiResult<Json<Value>> {
    need(&t, Role::Operator)?;
    let snap: PostureSnapshot = parse_json(&body)?;
    own_cluster(&t, Some(&snap.cluster))?;
    Ok(Json(json!(s.store.ingest_posture(&snap, &actor(&t)).await?)))
}

/// `POST /api/v1/alerts`: [`AlertInput`]s, or the JSON records `palisade detect` and `palisade
/// sensor run` write (`{"type": "alert", ...}`; what their `--server` sink sends). Incident
/// records of a detector are acknowledged and not stored (the server groups its own).
pub(crate) async fn ingest_alerts(State(s): S, Extension(t): T, body: Bytes) -> ApiResult<Json<Value>> {
    need(&t, Role::Operator)?;
    let raw: Vec<Value> = batch(&body, "alerts")?;
    let mut alerts = Vec::with_capacity(raw.len());
    let mut ignored = 0usize;
    for (i, v) in raw.into_iter().enumerate() {
        match alert_input(v) {
            Ok(Some(mut a)) => {
                own_cluster(&t, a.cluster.as_deref())?;
                if a.cluster.is_none() {
                    a.cluster.clone_from(&t.cluster);
                }
                alerts.push(a)
            }
            Ok(None) => ignored += 1,
            Err(e) => return Err(ApiError(StatusCode::BAD_REQUEST, format!("alerts[{i}]: {e}"))),
        }
    }
    let ids = if alerts.is_empty() { Vec::new() } else { s.store.ingest_alerts(&alerts, &actor(&t)).await? };
    Ok(Json(json!({"ids": ids, "ignored": ignored})))
}

/// One uploaded alert: an [`AlertInput`], or a detector's alert record (`None` for its
/// incident records).
pub(crate) fn alert_input(v: Value) -> Result<Option<AlertInput>, String> {
    match v.get("type").and_then(Value::as_str) {
        Some("incident") => Ok(None),
        Some("alert") => {
            let str_at =
                |ptr: &str| v.pointer(ptr).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
            let id = str_at("/id").ok_or("alert record without id")?;
            let rule = str_at("/rule/id").ok_or("alert record without rule.id")?;
            let time = str_at("/time").ok_or("alert record without time")?;
            let at = parse_rfc3339(&time).ok_or_else(|| format!("time {time:?} is not RFC 3339"))?;
            let severity = match str_at("/severity") {
                Some(s) => {
                    palisade_store::Severity::parse(&s).ok_or_else(|| format!("severity {s:?} is not a severity"))?
                }
                None => palisade_store::Severity::default(),
            };
            Ok(Some(AlertInput {
                key: Some(id),
                cluster: str_at("/entities/cluster"),
                rule,
                severity,
                at,
                namespace: str_at("/entities/namespace"),
                pod: str_at("/entities/pod"),
                node: str_at("/entities/node"),
                doc: v,
            }))
        }
        Some(other) => Err(format!("unknown record type {other:?}")),
        None => serde_json::from_value(v).map(Some).map_err(|e| e.to_string()),
    }
}

/// Digits only (no sign, no space) at `r` of `s`.
fn num_in(s: &str, r: std::ops::Range<usize>) -> Option<i64> {
    let t = s.get(r)?;
    t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` → Unix seconds; anything else (non-ASCII, out of
/// range fields, a 31st of February) is `None`.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    if !s.is_ascii() {
        return None;
    }
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| num_in(s, r);
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || d < 1 || d > days_in[(mo - 1) as usize] || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(f) = rest.strip_prefix('.') {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &f[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && o.as_bytes()[3] == b':' => {
            let (oh, om) = (num_in(o, 1..3)?, num_in(o, 4..6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let v = oh * 3600 + om * 60;
            if o.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    // days from civil (proleptic Gregorian)
    let (y2, m2) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
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
    for b in &beats {
        own_cluster(&t, Some(&b.cluster))?;
    }
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

pub(crate) async fn set_triage(
    State(s): S,
    Extension(t): T,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
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

/// `GET /api/v1/images/{digest}/sbom`: the stored SBOM (the native JSON document), as uploaded
/// with its content hash (also the `ETag`).
pub(crate) async fn get_sbom(State(s): S, Extension(t): T, Path(digest): Path<String>) -> ApiResult<Response> {
    need(&t, Role::Viewer)?;
    match s.store.get_sbom(&digest).await? {
        Some(sb) => Ok((
            [(header::ETAG, format!("\"{}\"", sb.content_hash))],
            Json(json!({"digest": sb.digest, "content_hash": sb.content_hash, "updated_at": sb.updated_at, "sbom": sb.sbom})),
        )
            .into_response()),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("no SBOM stored for {digest}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-12-07T10:00:00.123456Z"), Some(1_796_637_600));
        assert_eq!(parse_rfc3339("2024-02-29T23:59:59+01:00"), Some(1_709_247_599));
        for bad in [
            "2026-12-07T10:00:00+\u{20ac}00",
            "2026-12-07T10:00:00+1\u{e9}00",
            "2026-12-07T10:00:00+-1:00",
            "2026-12-07T10:00:00+99:99",
            "2026-02-31T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-12-07T10:00:00.\u{e9}Z",
            "2026-12-07T10:00:0\u{e9}Z",
            "",
            "2026-12-07",
            "2026-13-01T00:00:00Z",
            "2026-12-07T10:00:00",
            "2026-12-07T10:00:00.Z",
            "2026-12-07T1a:00:00Z",
            "2026-12-07T10:00:00+0100",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn detector_records_become_alerts() {
        let rec = json!({"type": "alert", "id": "a-1", "time": "2026-12-07T10:00:00Z", "rule": {"id": "PAL-RT-001"},
            "severity": "HIGH", "entities": {"cluster": "c", "namespace": "ns", "pod": "p", "node": "n"}});
        let a = alert_input(rec).ok().flatten().unwrap_or_else(|| panic!("not converted"));
        assert_eq!((a.key.as_deref(), a.rule.as_str(), a.at), (Some("a-1"), "PAL-RT-001", 1_796_637_600));
        assert_eq!((a.cluster.as_deref(), a.node.as_deref()), (Some("c"), Some("n")));
        assert_eq!(a.severity, palisade_store::Severity::High);
        assert!(matches!(alert_input(json!({"type": "incident", "id": "i"})), Ok(None)));
        assert!(alert_input(json!({"type": "alert", "id": "x", "rule": {"id": "r"}, "time": "yesterday"})).is_err());
        assert!(alert_input(json!({"type": "other"})).is_err());
        // an unknown severity is refused, not stored as UNKNOWN
        let odd = json!({"type": "alert", "id": "a-2", "time": "2026-12-07T10:00:00Z", "rule": {"id": "r"},
            "severity": "catastrophic"});
        assert!(alert_input(odd).is_err_and(|e| e.contains("catastrophic")));
        let info = json!({"type": "alert", "id": "a-3", "time": "2026-12-07T10:00:00Z", "rule": {"id": "r"},
            "severity": "Informational"});
        assert_eq!(alert_input(info).ok().flatten().map(|a| a.severity), Some(palisade_store::Severity::Negligible));
    }
}
