//! The API's OpenAPI 3.1 document, generated from one table ([`OPERATIONS`]) that the router is
//! also built from (every path of the table is routed, and only those). The document is served
//! at `/api/openapi.json` and checked in as `crates/server/openapi.json`; a test fails when the
//! checked-in copy, the table and the router disagree (`PALISADE_BLESS=1` rewrites the copy).

use serde_json::{json, Map, Value};

/// One documented operation.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// HTTP method (upper case).
    pub method: &'static str,
    /// Path under `/api/v1` (axum syntax: `{digest}`).
    pub path: &'static str,
    /// Least role allowed.
    pub role: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Query parameters: name, JSON type, description.
    pub query: &'static [(&'static str, &'static str, &'static str)],
    /// Request body (a JSON document), described; `None`: no body.
    pub body: Option<&'static str>,
    /// Status of success.
    pub ok: u16,
    /// A list with cursor paging and `format=ndjson` export.
    pub list: bool,
}

const PAGING: [(&str, &str, &str); 3] = [
    ("limit", "integer", "page size, 1..=1000 (default 100)"),
    ("cursor", "string", "next_cursor of the previous page"),
    ("format", "string", "json (one page) or ndjson (the whole list, one item per line)"),
];

macro_rules! op {
    ($m:literal, $p:literal, $r:literal, $s:literal) => {
        Operation { method: $m, path: $p, role: $r, summary: $s, query: &[], body: None, ok: 200, list: false }
    };
    ($m:literal, $p:literal, $r:literal, $s:literal, body: $b:literal) => {
        Operation { method: $m, path: $p, role: $r, summary: $s, query: &[], body: Some($b), ok: 200, list: false }
    };
    ($m:literal, $p:literal, $r:literal, $s:literal, list: $q:expr) => {
        Operation { method: $m, path: $p, role: $r, summary: $s, query: $q, body: None, ok: 200, list: true }
    };
}

/// Every operation of `/api/v1`.
pub const OPERATIONS: &[Operation] = &[
    op!("GET", "/images", "viewer", "Stored images with open findings by severity", list: &[
        ("repo", "string", "repository"), ("digest_prefix", "string", "digest prefix"),
        ("in_use", "boolean", "run by a live workload"), ("seen_since", "integer", "last seen at or after (Unix s)"),
        ("min_severity", "string", "at least one open finding this severe"),
        ("sort", "string", "last_seen | pushed | repo | critical"), ("order", "string", "asc | desc")]),
    op!("POST", "/images", "operator", "Upload images: {\"images\": [{digest, repo, tags, sbom, findings?}]}; without findings the server matches the SBOM; idempotent", body: "ImageUpload list"),
    op!("GET", "/images/{digest}", "viewer", "One image"),
    op!("GET", "/images/{digest}/findings", "viewer", "Findings of an image", list: &[
        ("vuln_id", "string", "any ID or alias"), ("package", "string", "package name"),
        ("min_severity", "string", "severity floor"), ("kev", "boolean", "KEV-listed"), ("fixable", "boolean", "a fix exists"),
        ("triage", "string", "triage state"), ("include_resolved", "boolean", "resolved ones too")]),
    op!(
        "GET",
        "/images/{digest}/sbom",
        "viewer",
        "The stored SBOM of an image (native JSON) and its content hash (ETag)"
    ),
    op!("GET", "/findings", "viewer", "Every finding", list: &[
        ("image_digest", "string", "image"), ("vuln_id", "string", "any ID or alias"), ("package", "string", "package name"),
        ("min_severity", "string", "severity floor"), ("kev", "boolean", "KEV-listed"), ("fixable", "boolean", "a fix exists"),
        ("in_use", "boolean", "in an image a live workload runs"),
        ("first_seen_since", "integer", "first seen at or after (Unix s)"),
        ("triage", "string", "triage state"), ("include_resolved", "boolean", "resolved ones too"),
        ("sort", "string", "severity | first_seen | last_seen | epss"), ("order", "string", "asc | desc")]),
    op!("GET", "/findings/{id}", "viewer", "One finding"),
    op!("GET", "/findings/{id}/triage", "viewer", "The finding's triage audit trail"),
    op!("PUT", "/findings/{id}/triage", "operator", "Set triage (CycloneDX VEX states; not_affected needs a justification)", body: "TriageUpdate {state, justification?, detail?}"),
    op!(
        "GET",
        "/vulnerabilities/{id}",
        "viewer",
        "Blast radius: images, workloads and clusters a vulnerability (any alias) reaches"
    ),
    op!("GET", "/events", "viewer", "Changes found by re-assessment (new, fixed, severity, KEV, EPSS)", list: &[
        ("image_digest", "string", "image"), ("kind", "string", "change kind"), ("run_id", "string", "re-assessment run"),
        ("since", "integer", "at or after (Unix s)")]),
    op!("GET", "/clusters", "viewer", "Clusters", list: &[]),
    op!("GET", "/nodes", "viewer", "Nodes", list: &[("cluster", "string", "cluster name"), ("include_removed", "boolean", "removed ones too")]),
    op!("GET", "/workloads", "viewer", "Workloads and the images they run", list: &[
        ("cluster", "string", "cluster name"), ("namespace", "string", "namespace"), ("kind", "string", "kind"),
        ("image_digest", "string", "runs this image"), ("min_severity", "string", "runs an image with an open finding this severe"),
        ("failing_posture", "boolean", "has an open, unexempted posture finding"), ("include_removed", "boolean", "removed ones too")]),
    op!("POST", "/inventory", "operator", "Inventory of one cluster: a full snapshot or a delta", body: "InventoryUpdate {cluster, nodes, objects, removed_*, full}"),
    op!("POST", "/posture", "operator", "Posture snapshot of one cluster (a full run resolves what it no longer finds)", body: "PostureSnapshot {cluster, findings, full}"),
    op!("GET", "/posture/findings", "viewer", "Posture findings", list: &[
        ("cluster", "string", "cluster name"), ("check_id", "string", "check"), ("namespace", "string", "namespace"),
        ("min_severity", "string", "severity floor"), ("include_resolved", "boolean", "resolved ones too")]),
    op!(
        "GET",
        "/posture/exemptions",
        "viewer",
        "Posture exemptions: live ones, or with include_inactive=true expired and revoked ones too"
    ),
    op!("POST", "/posture/exemptions", "operator", "Exempt a check for a resource, a namespace or a cluster until a date (at most 366 days), with a justification", body: "ExemptionInput {check_id, cluster?, namespace?, name?, justification, expires_at}"),
    op!("POST", "/posture/exemptions/{id}/revoke", "operator", "Revoke an exemption (kept, with who revoked it)"),
    op!("GET", "/alerts", "viewer", "Alerts, newest first", list: &[
        ("cluster", "string", "cluster name"), ("rule", "string", "rule"), ("min_severity", "string", "severity floor"),
        ("incident_id", "integer", "incident"), ("since", "integer", "at or after (Unix s)"), ("resolved", "boolean", "resolved or open")]),
    op!("POST", "/alerts", "operator", "Upload alerts ({\"alerts\": [...]} or an array, at most 10,000); a re-sent alert is one record", body: "AlertInput list"),
    op!("GET", "/alerts/{id}", "viewer", "One alert"),
    op!("POST", "/alerts/{id}/resolve", "operator", "Resolve an alert"),
    op!("GET", "/incidents", "viewer", "Incidents", list: &[("cluster", "string", "cluster name"), ("resolved", "boolean", "resolved or open")]),
    op!("POST", "/incidents", "operator", "Open an incident grouping alerts", body: "IncidentInput {cluster?, title, severity, alert_ids}"),
    op!("GET", "/incidents/{id}", "viewer", "One incident"),
    op!("POST", "/incidents/{id}/resolve", "operator", "Resolve an incident and its alerts"),
    op!("POST", "/heartbeats", "operator", "Heartbeats of agents, sensors and webhooks ({\"heartbeats\": [...]})", body: "Heartbeat list"),
    op!("GET", "/health", "viewer", "Health of every component from its last heartbeat", list: &[("cluster", "string", "cluster name"), ("component", "string", "agent | sensor | admission | audit")]),
    op!("GET", "/audit", "admin", "The audit log: who wrote what and when", list: &[
        ("actor", "string", "actor"), ("action", "string", "action"), ("since", "integer", "at or after (Unix s)")]),
    op!("GET", "/tokens", "admin", "API tokens (never their secrets)"),
    Operation {
        ok: 201,
        ..op!("POST", "/tokens", "admin", "Create a token (shown once, stored hashed)", body: "NewToken {name, role, expires_at?}")
    },
    op!("DELETE", "/tokens/{id}", "admin", "Revoke a token"),
    Operation {
        ok: 202,
        ..op!(
            "POST",
            "/admin/db/update",
            "admin",
            "Update the vulnerability database now, then re-assess every stored SBOM"
        )
    },
    op!("POST", "/admin/retention", "admin", "Apply retention now (resolved alerts, images not seen)"),
    op!("GET", "/admin/jobs", "viewer", "Scheduled jobs and their progress"),
];

/// The distinct paths of [`OPERATIONS`], in table order.
pub fn paths() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for o in OPERATIONS {
        if !out.contains(&o.path) {
            out.push(o.path);
        }
    }
    out
}

fn error_response(why: &str) -> Value {
    json!({"description": why, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for o in OPERATIONS {
        let mut params: Vec<Value> = Vec::new();
        for seg in o.path.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let ty = if name == "id" && !o.path.starts_with("/tokens") && !o.path.starts_with("/vulnerabilities") {
                    "integer"
                } else {
                    "string"
                };
                params.push(json!({"name": name, "in": "path", "required": true, "schema": {"type": ty}}));
            }
        }
        let extra: &[(&str, &str, &str)] = if o.list { &PAGING } else { &[] };
        for (name, ty, desc) in o.query.iter().chain(extra) {
            params.push(
                json!({"name": name, "in": "query", "required": false, "description": desc, "schema": {"type": ty}}),
            );
        }
        let mut responses = Map::new();
        let ok_content = if o.list {
            json!({
                "application/json": {"schema": {"$ref": "#/components/schemas/Page"}},
                "application/x-ndjson": {"schema": {"type": "object"}}
            })
        } else {
            json!({"application/json": {"schema": {"type": "object"}}})
        };
        responses.insert(o.ok.to_string(), json!({"description": "success", "content": ok_content}));
        responses.insert("400".into(), error_response("malformed input; nothing changed"));
        responses.insert("401".into(), error_response("no, wrong, revoked or expired token"));
        responses.insert("403".into(), error_response(&format!("the token's role is below {}", o.role)));
        if o.path.contains('{') {
            responses.insert("404".into(), error_response("not found"));
        }
        if o.body.is_some() {
            responses.insert("408".into(), error_response("the body did not arrive in time"));
            responses.insert("413".into(), error_response("the body is over 64 MiB"));
        }
        responses.insert("503".into(), error_response("the store is unavailable; retry"));
        let mut op = json!({
            "summary": o.summary,
            "operationId": format!("{}{}", o.method.to_ascii_lowercase(), o.path.replace(['{', '}'], "").replace('/', "_")),
            "x-palisade-role": o.role,
            "security": [{"bearer": []}],
            "parameters": params,
            "responses": responses,
        });
        if let Some(b) = o.body {
            op["requestBody"] = json!({
                "required": true, "description": b,
                "content": {"application/json": {"schema": {"type": ["object", "array"]}}}
            });
        }
        let entry = paths.entry(format!("/api/v1{}", o.path)).or_insert_with(|| json!({}));
        entry[o.method.to_ascii_lowercase()] = op;
    }
    for (p, what) in [
        ("/healthz", "Liveness"),
        ("/readyz", "Readiness: the store answers and a vulnerability database exists (503 before)"),
        ("/metrics", "Prometheus metrics"),
        ("/api/openapi.json", "This document"),
    ] {
        paths.insert(p.into(), json!({"get": {"summary": what, "operationId": format!("get{}", p.replace(['/', '.'], "_")), "security": [], "responses": {"200": {"description": "success"}}}}));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Palisade server API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Images, SBOMs and findings (never deleted; triage with an audit trail), inventory, posture, alerts and incidents, sensor health. Every /api/v1 call needs `Authorization: Bearer TOKEN`; roles viewer < operator < admin; every write is in the audit log."
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "Page": {"type": "object", "required": ["items"], "properties": {
                    "items": {"type": "array", "items": {"type": "object"}},
                    "next_cursor": {"type": ["string", "null"], "description": "pass as cursor for the next page; null on the last"}
                }}
            }
        },
        "paths": paths,
    })
}
