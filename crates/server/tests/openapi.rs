//! The OpenAPI document, the router and the checked-in copy agree.
//!
//! - `crates/server/openapi.json` equals the generated document (`PALISADE_BLESS=1 cargo test
//!   -p palisade-server --test openapi` rewrites it after a deliberate API change);
//! - every documented operation is routed (never 404 "no such API route", 405 or 501), and every
//!   method that is not documented on a documented path is 405;
//! - `/api/openapi.json` serves the same document, without a token.
#![allow(clippy::panic, clippy::unwrap_used)] // a failed expectation is the point of a test or bench

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use palisade_server::{openapi, Config, Server};
use serde_json::Value;
use tower::ServiceExt as _;

fn checked_in() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

#[test]
fn checked_in_document_matches_the_code() {
    let generated = serde_json::to_string_pretty(&openapi::document()).unwrap_or_default() + "\n";
    if std::env::var_os("PALISADE_BLESS").is_some() {
        std::fs::write(checked_in(), &generated).unwrap_or_else(|e| panic!("{e}"));
    }
    let on_disk = std::fs::read_to_string(checked_in()).unwrap_or_default();
    assert!(
        on_disk == generated,
        "crates/server/openapi.json differs from the code's document: run PALISADE_BLESS=1 cargo test -p palisade-server --test openapi and review the diff"
    );
    let doc: Value = serde_json::from_str(&on_disk).unwrap_or_default();
    assert_eq!(doc["openapi"], "3.1.0");
    // Every operation names its role and every path parameter is declared.
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            if path.starts_with("/api/v1") {
                assert!(op["x-palisade-role"].is_string(), "{method} {path}");
            }
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(|c| c == '{' || c == '}');
                let declared = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path"));
                assert!(declared, "{method} {path}: path parameter {name}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_and_document_agree() {
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (server, boot) = Server::open(Config::new(data.path().to_path_buf())).await.unwrap_or_else(|e| panic!("{e}"));
    let admin = boot
        .admin_token_path
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    let call = |method: &str, uri: String, auth: bool| {
        let mut b = Request::builder().method(method).uri(uri);
        if auth {
            b = b.header("authorization", format!("Bearer {admin}"));
        }
        if method != "GET" && method != "DELETE" {
            b = b.header("content-type", "application/json");
        }
        b.body(Body::from(if method == "GET" || method == "DELETE" { "" } else { "{}" }))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let concrete = |p: &str| {
        p.split('/')
            .map(|s| {
                if s.starts_with('{') {
                    if s == "{digest}" {
                        "sha256:00"
                    } else {
                        "1"
                    }
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    for path in openapi::paths() {
        let documented: Vec<&str> = openapi::OPERATIONS.iter().filter(|o| o.path == path).map(|o| o.method).collect();
        for method in ["GET", "POST", "PUT", "DELETE"] {
            let uri = format!("/api/v1{}", concrete(path));
            let resp = palisade_server::router(server.clone())
                .oneshot(call(method, uri.clone(), true))
                .await
                .unwrap_or_else(|e| match e {});
            let status = resp.status();
            let body = resp.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            let text = String::from_utf8_lossy(&body);
            if documented.contains(&method) {
                assert!(
                    status != StatusCode::METHOD_NOT_ALLOWED
                        && status != StatusCode::NOT_IMPLEMENTED
                        && !text.contains("no such API route"),
                    "documented {method} {uri} is not routed: {status} {text}"
                );
            } else {
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "undocumented {method} {uri} answers {text}");
            }
        }
    }
    // The served document is the generated one, and needs no token.
    let resp = palisade_server::router(server.clone())
        .oneshot(call("GET", "/api/openapi.json".into(), false))
        .await
        .unwrap_or_else(|e| match e {});
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let served: Value = serde_json::from_slice(&body).unwrap_or_default();
    assert_eq!(served, openapi::document());
}
