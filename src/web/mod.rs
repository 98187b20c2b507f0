//! The operators' pages: HTML rendered on the server (maud), served by `reclife serve` and
//! `reclife run` at `/`, beside the API.
//!
//! In: the API's shared state ([`Shared`]) and the caller the API's authentication found
//! ([`Caller`]: HTTP Basic, role `user` sees, `ops` acts). Out: pages for rules, plans and jobs,
//! recordings, the muxer, the import sources and the node's health, with a stylesheet and a small script served from
//! this binary (`/static/`, no build step, no CDN).
//!
//! Guarantees:
//! - every page calls the same functions the API and the CLI call (catalog, `lifecycle`, the
//!   API's own checks for posted jobs, holds and labels): no second copy of any logic;
//! - every POST is a form carrying a token derived with HMAC-SHA-256 from a key made at start
//!   and the user's name, and coming from this origin (`Origin`, else `Referer`); anything else
//!   is refused with 403 before the handler runs ([`csrf`]). Basic credentials are sent by the
//!   browser on any request to this origin, so `SameSite` cannot help: the token does;
//! - `user` gets 403 on every POST (the API's role check), and the pages offer ops-only actions
//!   to `ops` only;
//! - without JavaScript everything but the live job progress works (the page then shows the
//!   state at load, with a link to reload);
//! - a form's POST that makes something redirects to a page of its own (a plan's preview:
//!   `/jobs/{id}/preview`), so a reload repeats nothing; a refused form comes back as typed,
//!   with the error beside its field, named by its label;
//! - any URL no route serves is [`not_found`]: an HTML page for the pages' paths.

mod csrf;
mod import;
mod jobs;
mod ops;
mod recordings;
mod rules;

pub use csrf::CsrfKey;

use crate::api::auth::{Caller, Role};
use crate::api::{ApiFailure, Shared};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

/// The pages, behind the API's authentication.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(ops::overview))
        .route("/rules", get(rules::list))
        .route("/rules/validate", post(rules::validate))
        .route("/rules/save", post(rules::save))
        .route("/rules/{name}/{action}", post(rules::set_override))
        .route("/jobs", get(jobs::history).post(jobs::plan))
        .route("/jobs/new", get(jobs::form))
        .route("/jobs/{id}", get(jobs::show))
        .route("/jobs/{id}/preview", get(jobs::show_preview))
        .route("/jobs/{id}/start", post(jobs::start))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/recordings", get(recordings::search))
        .route("/recordings/{id}", get(recordings::show))
        .route("/recordings/{id}/hold", post(recordings::hold))
        .route("/recordings/{id}/unhold", post(recordings::unhold))
        .route("/recordings/{id}/labels", post(recordings::label))
        .route("/recordings/{id}/unlabel", post(recordings::unlabel))
        .route("/muxer", get(ops::muxer))
        .route("/muxer/{screen}/retry", post(ops::retry))
        .route("/import", get(import::list))
        .route("/import/{name}", get(import::show))
        .route("/import/{name}/cursor", post(import::set_cursor))
        .route("/import/{name}/retry", post(import::retry_add))
        .route("/import/{name}/retry/{conversation}/remove", post(import::retry_remove))
        .layer(axum::middleware::map_response(guard_headers))
}

/// Headers every page carries: only this server's own script, styles, media and forms; never
/// inside another site's frame (a framed page could be clicked into acting); a `Referer` to
/// this origin only; pages (with their form tokens and recording data) never stored.
async fn guard_headers(mut r: Response) -> Response {
    use axum::http::HeaderValue;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

const CSS: &str = include_str!("static/web.css");
const JS: &str = include_str!("static/web.js");

/// The stylesheet and the script: public (nothing secret in them), cached for an hour.
pub fn assets() -> Router<Shared> {
    fn asset(kind: &'static str, body: &'static str) -> Response {
        ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=3600")], body).into_response()
    }
    Router::new()
        .route("/static/web.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/static/web.js", get(|| async { asset("text/javascript; charset=utf-8", JS) }))
}

/// True for the paths the pages serve (the API's authentication answers these in HTML).
pub fn is_page(path: &str) -> bool {
    !(path.starts_with("/api/") || path.starts_with("/internal-api/") || path == "/metrics")
}

/// An error shown as a page, with the status the API would give.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
}

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        WebError { status, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
}

impl From<ApiFailure> for WebError {
    fn from(f: ApiFailure) -> Self {
        WebError { status: f.status, message: f.message }
    }
}

impl From<crate::lifecycle::LifecycleError> for WebError {
    fn from(e: crate::lifecycle::LifecycleError) -> Self {
        ApiFailure::from(e).into()
    }
}

impl From<crate::catalog::CatalogError> for WebError {
    fn from(e: crate::catalog::CatalogError) -> Self {
        ApiFailure::from(e).into()
    }
}

/// A plain page for an error (no navigation: the caller may not be known).
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(reason)) }
            body {
                main id="main" class="narrow" {
                    h1 { (status.as_u16()) " " (reason) }
                    p class="error" role="alert" { (message) }
                    p { a href="/" { "Back to the overview" } }
                }
            }
        }
    };
    (status, body).into_response()
}

/// Any URL no route serves: an HTML page for the pages' paths (nothing about the node in it:
/// it is answered before authentication), the API's JSON envelope for the API's.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    let path = uri.path();
    if is_page(path) {
        error_page(StatusCode::NOT_FOUND, &format!("There is no page at {path}."))
    } else {
        ApiFailure {
            status: StatusCode::NOT_FOUND,
            code: ApiFailure::NOT_FOUND,
            message: format!("no such endpoint: {path}"),
        }
        .into_response()
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        error_page(self.status, &self.message)
    }
}

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · reclife" }
        link rel="stylesheet" href="/static/web.css";
        script src="/static/web.js" defer {}
    }
}

/// Where a page sits in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Overview,
    Rules,
    Jobs,
    Recordings,
    Muxer,
    Import,
}

/// The frame of every page: skip link, navigation, who is signed in, then `body`.
pub(crate) fn layout(title: &str, who: &Caller, at: Section, body: Markup) -> Markup {
    let nav = [
        (Section::Overview, "/", "Health"),
        (Section::Rules, "/rules", "Rules"),
        (Section::Jobs, "/jobs", "Plans and jobs"),
        (Section::Recordings, "/recordings", "Recordings"),
        (Section::Muxer, "/muxer", "Muxer"),
        (Section::Import, "/import", "Import"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/" { "reclife" }
                    nav aria-label="Sections" {
                        ul {
                            @for (s, href, label) in nav {
                                li {
                                    @if s == at {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    p class="who" {
                        "Signed in as " strong { (who.user) } " (" (role_name(who.role)) ")"
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub(crate) fn role_name(r: Role) -> &'static str {
    match r {
        Role::User => "user: sees",
        Role::Ops => "ops: acts",
    }
}

/// The hidden field every form carries.
pub(crate) fn csrf_field(s: &Shared, who: &Caller) -> Markup {
    html! { input type="hidden" name=(csrf::FIELD) value=(s.csrf.token(&who.user)); }
}

/// A time in UTC; the script adds the browser's local time beside it.
pub(crate) fn time(t: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) data-local="" {
            (t.format("%Y-%m-%d %H:%M:%S UTC"))
        }
    }
}

pub(crate) fn opt_time(t: Option<DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => time(t),
        None => html! { span class="muted" { "never" } },
    }
}

/// Bytes in binary units, as operators read sizes (`1.5 GiB`), with the exact count as a title.
pub(crate) fn bytes(n: u64) -> Markup {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    let text = if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) };
    html! { span title=(format!("{n} bytes")) { (text) } }
}

/// What a redirect after a POST tells the next page (`?done=…&sig=…`).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Notice {
    pub done: Option<String>,
    pub sig: Option<String>,
}

/// The message a redirect carried, shown once as a status; only if this server signed it.
pub(crate) fn notice(s: &Shared, n: &Notice) -> Markup {
    let shown = match (&n.done, &n.sig) {
        (Some(d), Some(sig)) if !d.is_empty() && s.csrf.notice_ok(d, sig) => Some(d.as_str()),
        _ => None,
    };
    html! {
        @if let Some(d) = shown {
            p class="notice" role="status" { (d) }
        }
    }
}

/// A 303 to `to` (after a POST), with a signed message for the next page.
pub(crate) fn see_other(s: &Shared, to: &str, done: &str) -> Response {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("done", done)
        .append_pair("sig", &s.csrf.sign_notice(done))
        .finish();
    let sep = if to.contains('?') { '&' } else { '?' };
    (StatusCode::SEE_OTHER, [(header::LOCATION, format!("{to}{sep}{q}"))]).into_response()
}

/// A path segment, percent-encoded (rule names have spaces; ids may hold `#`, `?`, `%`).
pub(crate) use crate::model::uri_segment as seg;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_segments() {
        assert_eq!(bytes(512).into_string(), "<span title=\"512 bytes\">512 B</span>");
        assert!(bytes(3 * 1024 * 1024 / 2).into_string().contains("1.5 MiB"));
        assert_eq!(seg("Daily backup/x"), "Daily%20backup%2Fx");
        assert!(is_page("/rules") && is_page("/") && !is_page("/api/v1/jobs") && !is_page("/metrics"));
    }
}
