//! GIR-compatible Interaction Recording Web Services (RWS) endpoints.
//!
//! Paths and shapes follow the GIR documents (`/api/v2/diagnostics/version`,
//! `/api/v2/ops/contact-centers`, `/api/v2/recordings?startTime=…&endTime=…&limit=…`, the
//! recording document with `mediaFiles[].mediaUri`/`mediaPath`, `…/play/{mediaId}`), so RWS
//! clients such as the Recording Muxer script work unchanged. Where the documents are silent,
//! reclife chooses, and documents here:
//! - paging: `nextUri` carries `cursor=<catalog keyset token>` and every original filter; the
//!   token is opaque and never expires (it is a position, not a server-side session);
//! - `limit` above 1000 is served as 1000; 0, negative or non-numeric is a bad request; every
//!   parameter is bounded (times within what a date can hold, at most 1024 bytes a value, at most
//!   32 terms in `userName` and in `userData`): anything past a bound is a 400 naming it;
//! - documents served to the `user` role carry no store paths: `mediaDescriptor` is only the
//!   media's `key`, and GIR's `originalMediaDescriptor` is left out; `ops` sees both;
//! - media answers never act as pages ([`served_media_type`]);
//! - labels: `POST {recording}/labels` `{"label":"…"}`, `DELETE {recording}/labels/{label}`;
//! - holds: `POST {recording}/hold` `{"reason":"…"}`, `DELETE {recording}/hold`;
//! - `DELETE /api/v2/recordings/{id}` deletes the call with its screens, journaled and audited
//!   like a purge; a held one is refused with 409 ([`delete`]);
//! - `POST /internal-api/contact-centers/{ccid}/recordings`: a metadata document whose media is
//!   already in the store ([`ingest`]);
//! - `{recording}` is `/api/v2/recordings/{id}` or `/api/v2/screen-recordings/{id}`;
//! - errors: see [`ApiFailure`](super::ApiFailure) for the `statusCode` values.

mod delete;
mod ingest;
mod media;
pub(crate) mod recordings;

pub use media::served_media_type;
pub(crate) use media::served_types as media_served_types;

use super::{ApiFailure, Shared};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The version `GET /api/v2/diagnostics/version` reports.
pub const VERSION: &str = concat!("reclife-", env!("CARGO_PKG_VERSION"));

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v2/diagnostics/version", get(version))
        .route("/api/v2/ops/contact-centers", get(contact_centers))
        .route("/api/v2/recordings", get(recordings::list_default))
        .route("/api/v2/ops/contact-centers/{ccid}/recordings", get(recordings::list_ops))
        .route("/api/v2/screen-recordings", get(recordings::list_screens))
        .route("/api/v2/recordings/{id}", get(recordings::get_call).delete(delete::delete_call))
        .route("/api/v2/screen-recordings/{id}", get(recordings::get_screen).delete(delete::delete_screen))
        .route("/internal-api/contact-centers/{ccid}/recordings", post(ingest::post_recording))
        .route("/api/v2/ops/contact-centers/{ccid}/recordings/{id}", get(recordings::get_ops))
        .route("/api/v2/recordings/{id}/play/{media}", get(media::play_call))
        .route("/api/v2/ops/contact-centers/{ccid}/recordings/{id}/play/{media}", get(media::play_ops))
        .route("/api/v2/screen-recordings/{id}/content/{media}", get(media::play_screen))
        .route("/api/v2/recordings/{id}/labels", post(recordings::label_call))
        .route("/api/v2/screen-recordings/{id}/labels", post(recordings::label_screen))
        .route("/api/v2/recordings/{id}/labels/{label}", delete(recordings::unlabel_call))
        .route("/api/v2/screen-recordings/{id}/labels/{label}", delete(recordings::unlabel_screen))
        .route("/api/v2/recordings/{id}/hold", post(recordings::hold_call).delete(recordings::unhold_call))
        .route("/api/v2/screen-recordings/{id}/hold", post(recordings::hold_screen).delete(recordings::unhold_screen))
}

async fn version() -> Json<Value> {
    Json(json!({ "statusCode": 0, "version": VERSION }))
}

async fn contact_centers(State(s): State<Shared>, headers: HeaderMap) -> Json<Value> {
    let base = base_url(&s, &headers);
    let ccid = &s.ctx.config.contact_center_id;
    Json(
        json!({ "statusCode": 0, "uris": [format!("{base}/api/v2/ops/contact-centers/{}", crate::model::uri_segment(ccid))] }),
    )
}

/// One listing page as the API answers `GET /api/v2/recordings?<raw>` (or, for
/// [`Kind::Screen`], `/api/v2/screen-recordings`), outside HTTP: the parameters parsed and
/// bounded as the API does, then one page scrolled on `catalog`. The ids on the page, or the
/// failure the API would answer (the fuzz targets check that bad input never makes it a 5xx).
pub fn list_ids(
    catalog: &dyn crate::catalog::Catalog,
    raw: &str,
    kind: crate::model::Kind,
) -> Result<Vec<String>, ApiFailure> {
    let l = recordings::parse_listing(Some(raw), kind, 24)?;
    let (entries, _) = recordings::page(catalog, &l)?;
    Ok(entries.into_iter().map(|e| e.recording.id).collect())
}

/// The path of a media file under `/api/v2` (`mediaPath`; `mediaUri` is the base URL, `/api/v2`
/// and this), every id percent-encoded. The pages' players use the same path.
pub(crate) fn media_path(kind: crate::model::Kind, recording: &str, media_id: &str) -> String {
    use crate::model::uri_segment;
    match kind {
        crate::model::Kind::Voice => format!("/recordings/{}/play/{}", uri_segment(recording), uri_segment(media_id)),
        crate::model::Kind::Screen => {
            format!("/screen-recordings/{}/content/{}", uri_segment(recording), uri_segment(media_id))
        }
    }
}

/// The public base URL: `[api] public_url`, else `http(s)://<Host>`.
pub(crate) fn base_url(s: &Shared, headers: &HeaderMap) -> String {
    if let Some(u) = &s.ctx.config.api.public_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let scheme = if s.ctx.config.api.tls_cert.is_some() { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// The ops paths name a contact center: it must be this node's.
pub(crate) fn check_ccid(s: &Shared, ccid: &str) -> Result<(), ApiFailure> {
    if ccid == s.ctx.config.contact_center_id {
        Ok(())
    } else {
        Err(ApiFailure::not_found(format!("no contact center {ccid}")))
    }
}
