//! The web console: server-rendered pages on the API's port (askama templates, assets
//! embedded in the binary, no JavaScript: every page reads and every form works without it).
//!
//! Sign-in: `GET /login` serves a form whose CSRF token is the hidden field `csrf` (a
//! double-submit cookie scoped to `/login`); `POST /login` with `token` and `csrf` checks the
//! API token, opens a store session ([`palisade_store::Store::create_session`]) and sets the
//! cookie `palisade_session` (`HttpOnly`, `SameSite=Strict`, `Secure` on TLS). A session stands
//! for its token: the token's role is enforced on every page and form, and revoking the token
//! ends its sessions. Every form carries the session's CSRF token (derived from the session
//! secret, [`palisade_store::csrf_token`]); a POST without it is refused with 403 and changes
//! nothing. No secret is ever put in a URL: a token created in Settings is shown once, in the
//! answer to the form.
//!
//! Pages: `/`, `/inventory`, `/images`, `/images/{digest}`, `/vulnerabilities` (and
//! `/vulnerabilities/{id}`), `/recommendations`, `/alerts`, `/fleet`, `/settings`.

mod pages;
mod svg;
mod view;

pub(crate) use pages::OverviewCache;

use crate::Server;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use palisade_store::{Role, TokenInfo};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Session cookie.
pub const SESSION_COOKIE: &str = "palisade_session";
/// The sign-in form's double-submit CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "palisade_login_csrf";
/// Largest console form body (413 beyond).
pub const MAX_FORM_BYTES: usize = 64 << 10;
/// How long a console session lasts (never longer than its token).
pub const SESSION_SECS: i64 = 12 * 3600;

const CSS: &str = include_str!("../../assets/console.css");
const FAVICON: &str = include_str!("../../assets/favicon.svg");

/// Content-Security-Policy of every console answer: no script at all, styles and images from
/// this origin only, forms post only here, never framed.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The signed-in user of a console request.
#[derive(Clone)]
pub(crate) struct Viewer {
    pub(crate) token: TokenInfo,
    /// The CSRF token every form of this session carries.
    pub(crate) csrf: String,
    /// The session secret (to end the session).
    pub(crate) secret: String,
}

impl Viewer {
    pub(crate) fn can(&self, role: Role) -> bool {
        self.token.role.allows(role)
    }
    pub(crate) fn actor(&self) -> String {
        format!("{} via console", crate::api::actor(&self.token))
    }
}

/// The console's routes (merged into [`crate::router`]).
pub(crate) fn routes(server: Arc<Server>) -> Router<Arc<Server>> {
    let signed_in = Router::new()
        .route("/", get(pages::overview))
        .route("/inventory", get(pages::inventory))
        .route("/images", get(pages::images))
        .route("/images/{digest}", get(pages::image))
        .route("/vulnerabilities", get(pages::vulnerabilities))
        .route("/vulnerabilities/{id}", get(pages::vulnerability))
        .route("/recommendations", get(pages::recommendations))
        .route("/alerts", get(pages::alerts))
        .route("/fleet", get(pages::fleet))
        .route("/settings", get(pages::settings))
        .route("/logout", post(pages::logout))
        .route("/findings/{id}/triage", post(pages::triage))
        .route("/alerts/{id}/resolve", post(pages::resolve_alert))
        .route("/incidents/{id}/resolve", post(pages::resolve_incident))
        .route("/recommendations/exemptions", post(pages::create_exemption))
        .route("/recommendations/exemptions/{id}/revoke", post(pages::revoke_exemption))
        .route("/settings/tokens", post(pages::create_token))
        .route("/settings/tokens/{id}/revoke", post(pages::revoke_token))
        .layer(middleware::from_fn_with_state(server, require_session));
    Router::new()
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/static/console.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/favicon.ico", get(|| async { asset("image/svg+xml", FAVICON) }))
        .route("/static/favicon.svg", get(|| async { asset("image/svg+xml", FAVICON) }))
        .merge(signed_in)
        // console forms are small: bound their bodies far below the API's upload limit (every
        // console POST, sign-in included, is read whole before its checks)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::from_fn(security_headers))
}

/// The answer to a path nothing serves.
pub(crate) fn not_found() -> Response {
    pages::error_page(StatusCode::NOT_FOUND, "There is no page at this address.")
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

/// Headers on every console answer.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    res
}

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Constant-time equality of two CSRF tokens (both non-empty).
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure` when served over TLS.
pub(crate) fn set_cookie(server: &Server, name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
    let secure = if server.tls_enabled() { "; Secure" } else { "" };
    let v = format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("invalid=1; Max-Age=0"))
}

/// Only a path on this site (`/…`, not `//host` or `/\host`) may be a redirect target.
pub(crate) fn local_path(p: Option<&str>) -> Option<&str> {
    let p = p?;
    let ok = p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && p.len() <= 2048
        && p.bytes().all(|b| (0x21..0x7f).contains(&b));
    ok.then_some(p)
}

/// Resolve the session cookie; without a live session a page redirects to `/login` and a form
/// post is refused.
async fn require_session(State(s): State<Arc<Server>>, mut req: Request, next: Next) -> Response {
    let secret = cookie(req.headers(), SESSION_COOKIE).map(str::to_string);
    let token = match &secret {
        Some(sec) => match s.store.session(sec).await {
            Ok(t) => t,
            Err(e) => return pages::store_err(e),
        },
        None => None,
    };
    match (token, secret) {
        (Some(token), Some(secret)) => {
            let csrf = palisade_store::csrf_token(&secret);
            req.extensions_mut().insert(Viewer { token, csrf, secret });
            next.run(req).await
        }
        _ if req.method() == axum::http::Method::GET => {
            let next_path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let to = format!("/login?{}", view::query(&[("next", next_path)]));
            Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, to)
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::SEE_OTHER.into_response())
        }
        _ => pages::error_page(StatusCode::FORBIDDEN, "Your session has ended. Sign in again."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_targets_stay_on_this_site() {
        assert_eq!(local_path(Some("/images?x=1")), Some("/images?x=1"));
        for bad in ["//evil.example/", "/\\evil.example", "https://evil.example/", "images", "/a b", ""] {
            assert_eq!(local_path(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(local_path(None), None);
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; palisade_session_x=2; palisade_session=abc"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn csrf_comparison_refuses_empty_and_different() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("", ""));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
