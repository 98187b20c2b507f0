//! Origin safety: the API shares its origin and its Basic realm with the operators' pages, so a
//! browser resends an operator's credentials with any request another site makes it send.
//!
//! In: every request, after authentication. Out: the request, or a refusal in the RWS envelope.
//!
//! Guarantees, for every state-changing request (any method but GET, HEAD and OPTIONS) under
//! `/api/` and `/internal-api/`, whatever its handler:
//! - it says `Content-Type: application/json` (a `charset` parameter is allowed), else 415
//!   (`statusCode` 2), before its handler runs. A cross-site page can send a form
//!   (`application/x-www-form-urlencoded`, `multipart/form-data`, `text/plain`) or a body-less
//!   POST without asking, but not JSON: a JSON request from another site is preflighted, and
//!   reclife answers no preflight;
//! - when it carries `Origin` (else `Referer`), that names this server ([`same_origin`]), else
//!   403 (`statusCode` 5). Clients other than browsers send neither and are not concerned.
//!
//! [`nosniff`] adds `X-Content-Type-Options: nosniff` to every answer, so that no browser reads
//! a JSON answer (or anything else) as another type.

use super::{ApiFailure, Shared};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The origins this server answers as: `[api] public_url`, and the scheme and `Host` the request
/// came to.
fn own_origins(s: &Shared, headers: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(u) = &s.ctx.config.api.public_url {
        if let Ok(u) = url::Url::parse(u) {
            out.push(u.origin().ascii_serialization());
        }
    }
    if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        let scheme = if s.ctx.config.api.tls_cert.is_some() { "https" } else { "http" };
        out.push(format!("{scheme}://{host}"));
    }
    out
}

/// Where a browser says a request comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// Neither `Origin` nor `Referer`: not a browser's cross-site request.
    Unknown,
    /// This server's own pages.
    Here,
    /// Anywhere else (another origin, `null` from a sandboxed document, a malformed header),
    /// as the header gave it.
    Elsewhere(String),
}

/// The one check of where a request comes from, for the API and the pages' forms: its `Origin`,
/// else its `Referer`'s origin, against this server's own origins.
pub fn same_origin(s: &Shared, headers: &HeaderMap) -> Source {
    let get = |h| headers.get(h).map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let from = if let Some(o) = get(header::ORIGIN) {
        o
    } else if let Some(r) = get(header::REFERER) {
        match url::Url::parse(&r) {
            Ok(u) => u.origin().ascii_serialization(),
            Err(_) => return Source::Elsewhere(format!("a Referer that is not a URL ({r:.80})")),
        }
    } else {
        return Source::Unknown;
    };
    if own_origins(s, headers).iter().any(|a| a.eq_ignore_ascii_case(&from)) {
        Source::Here
    } else {
        Source::Elsewhere(from)
    }
}

/// True for `application/json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(v) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// True for the requests [`require`] checks: writes under the API's paths.
pub fn checked(method: &Method, path: &str) -> bool {
    let reads = [Method::GET, Method::HEAD, Method::OPTIONS].contains(method);
    !reads && (path.starts_with("/api/") || path.starts_with("/internal-api/"))
}

/// Middleware: the API's writes are JSON and come from this origin or from no browser page.
pub async fn require(State(s): State<Shared>, req: Request, next: Next) -> Response {
    if !checked(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    if let Source::Elsewhere(from) = same_origin(&s, req.headers()) {
        tracing::warn!(method = %req.method(), path = %req.uri().path(), from = %from, "cross-origin write refused");
        return ApiFailure {
            status: StatusCode::FORBIDDEN,
            code: ApiFailure::UNAUTHORIZED,
            message: format!(
                "{} {} from {from} is refused: the API accepts writes only from this server's own pages or from clients that are not browsers",
                req.method(),
                req.uri().path()
            ),
        }
        .into_response();
    }
    if !is_json(req.headers()) {
        let given = req.headers().get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        return ApiFailure {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: ApiFailure::BAD_REQUEST,
            message: format!(
                "{} {}: Content-Type {}: every write to the API must say Content-Type: application/json (with an empty body where none is needed)",
                req.method(),
                req.uri().path(),
                given.map_or("missing".to_string(), |g| format!("{g:.80}"))
            ),
        }
        .into_response();
    }
    next.run(req).await
}

/// Middleware: `X-Content-Type-Options: nosniff` on every answer.
pub async fn nosniff(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    r.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_requests_and_which_types() {
        assert!(checked(&Method::POST, "/api/v1/jobs"));
        assert!(checked(&Method::DELETE, "/api/v2/recordings/x"));
        assert!(checked(&Method::PUT, "/internal-api/contact-centers/c/recordings"));
        assert!(!checked(&Method::GET, "/api/v1/check"));
        assert!(!checked(&Method::POST, "/rules/x/enable"), "the pages' forms have their own token");
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        for (v, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
            ("application/jsonx", false),
            ("multipart/form-data; boundary=x", false),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            assert_eq!(is_json(&h), ok, "{v}");
        }
    }
}
