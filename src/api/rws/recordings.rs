//! Recording listings (scan and scroll), single recordings, labels and holds.
//!
//! A recording document carries the hold in force as `hold` (`catalog::hold::to_json`: reason,
//! at, by, history), and the history of one not held as `holdHistory`.
//! Holds are placed and released in the name of the authenticated user; a second hold keeps
//! the first in force and is added to its history (the answer's `statusMessage` says so).

use super::super::auth::{Caller, Role};
use super::super::{blocking, ApiFailure, Shared};
use super::{base_url, check_ccid};
use crate::catalog::{Catalog, Cursor, Entry, HoldOutcome};
use crate::model::Kind;
use crate::storage::Key;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// A parsed listing request: the catalog query, where to resume, and the page size.
pub(crate) type Listing = crate::catalog::RwsSearch;

/// Parses the RWS search parameters (also the operators' search form, which uses the same
/// names) through the one parser ([`crate::catalog::parse_rws`]); a bad one is a 400.
pub(crate) fn parse_listing(raw: Option<&str>, kind: Kind, intervals: u32) -> Result<Listing, ApiFailure> {
    crate::catalog::parse_rws(raw.unwrap_or(""), kind, intervals).map_err(ApiFailure::bad_request)
}

/// Removes what names the server's stores from a document shown to `role`: for `user`, every
/// media file's `mediaDescriptor` and `originalMediaDescriptor` (GIR's storage, bucket and
/// path). The API and the operators' pages call it on every document they show.
pub(crate) fn without_store_paths(doc: &mut Value, role: Role) {
    if role >= Role::Ops {
        return;
    }
    for field in ["mediaFiles", "mediaFile"] {
        for f in doc.get_mut(field).and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(o) = f.as_object_mut() {
                o.remove("mediaDescriptor");
                o.remove("originalMediaDescriptor");
            }
        }
    }
}

/// The recording document as RWS returns it to `role`: the stored metadata, with `mediaUri`,
/// `mediaPath` and `mediaDescriptor` filled for every media file (for `user`, without the store:
/// [`without_store_paths`]).
pub(crate) fn render(e: &Entry, base: &str, store: &str, role: Role) -> Value {
    let r = &e.recording;
    let mut doc = r.doc_value();
    without_store_paths(&mut doc, role);
    let path_of = |media_id: &str| super::media_path(r.kind, &r.id, media_id);
    for field in ["mediaFiles", "mediaFile"] {
        let Some(files) = doc.get_mut(field).and_then(Value::as_array_mut) else { continue };
        for f in files {
            let Some(id) = f.get("mediaId").and_then(Value::as_str).map(str::to_string) else { continue };
            let Some(o) = f.as_object_mut() else { continue };
            let path = path_of(&id);
            o.insert("mediaUri".into(), Value::String(format!("{base}/api/v2{path}")));
            o.insert("mediaPath".into(), Value::String(path));
            if let Ok(key) = Key::media(&r.id, &id) {
                let d = if role >= Role::Ops {
                    json!({ "storage": store, "key": key.as_str() })
                } else {
                    json!({ "key": key.as_str() })
                };
                o.insert("mediaDescriptor".into(), d);
            }
        }
    }
    if let Some(o) = doc.as_object_mut() {
        use crate::catalog::hold;
        if e.hold.is_some() {
            o.extend(hold::to_json(&e.hold_state()).map(|h| (hold::API_FIELD.to_string(), h)));
        } else if !e.hold_history.is_empty() {
            let h = serde_json::to_value(&e.hold_history).unwrap_or_default();
            o.insert(hold::API_HISTORY_FIELD.into(), h);
        }
    }
    doc
}

/// One page: fills up to `limit` rows across empty slices, then reads their documents.
pub(crate) fn page(catalog: &dyn Catalog, l: &Listing) -> Result<(Vec<Entry>, Option<Cursor>), ApiFailure> {
    let mut rows = Vec::new();
    let mut cursor = Some(l.cursor.clone());
    while let Some(c) = cursor.take() {
        let p = catalog.scroll_page(&l.query, &c, l.limit - rows.len())?;
        rows.extend(p.rows);
        cursor = p.next;
        if rows.len() >= l.limit {
            break;
        }
    }
    // A recording deleted between the scroll and this read is left out.
    let ids: Vec<String> = rows.into_iter().map(|r| r.id).collect();
    Ok((catalog.get_many(&ids)?, cursor))
}

async fn list(
    s: Shared,
    who: Caller,
    headers: HeaderMap,
    raw: Option<String>,
    kind: Kind,
    path: String,
) -> Result<Json<Value>, ApiFailure> {
    let listing = parse_listing(raw.as_deref(), kind, s.ctx.config.scan_intervals_per_day)?;
    let base = base_url(&s, &headers);
    let catalog = s.ctx.catalog.clone();
    let store = s.ctx.media.describe();
    let body = blocking(move || {
        let (entries, next) = page(catalog.as_ref(), &listing)?;
        let recs: Vec<Value> = entries.iter().map(|e| render(e, &base, &store, who.role)).collect();
        let mut body = json!({ "statusCode": 0, "recordings": recs });
        if let Some(next) = next {
            let mut qs = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &listing.echo {
                qs.append_pair(k, v);
            }
            if !listing.echo.iter().any(|(k, _)| k == "limit") {
                qs.append_pair("limit", &listing.limit.to_string());
            }
            qs.append_pair("cursor", &next.token());
            body["nextUri"] = Value::String(format!("{base}{path}?{}", qs.finish()));
        }
        Ok(body)
    })
    .await?;
    Ok(Json(body))
}

pub async fn list_default(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiFailure> {
    list(s, who, headers, q, Kind::Voice, "/api/v2/recordings".into()).await
}

pub async fn list_screens(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiFailure> {
    list(s, who, headers, q, Kind::Screen, "/api/v2/screen-recordings".into()).await
}

pub async fn list_ops(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    Path(ccid): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiFailure> {
    check_ccid(&s, &ccid)?;
    list(
        s,
        who,
        headers,
        q,
        Kind::Voice,
        format!("/api/v2/ops/contact-centers/{}/recordings", crate::model::uri_segment(&ccid)),
    )
    .await
}

/// The recording `id` of this kind, or 404.
pub(crate) async fn entry(s: &Shared, id: &str, kind: Kind) -> Result<Entry, ApiFailure> {
    let catalog = s.ctx.catalog.clone();
    let id2 = id.to_string();
    let e = blocking(move || Ok(catalog.get(&id2)?)).await?;
    let what = match kind {
        Kind::Voice => "recording",
        Kind::Screen => "screen recording",
    };
    match e {
        Some(e) if e.recording.kind == kind => Ok(e),
        _ => Err(ApiFailure::not_found(format!("no {what} {id}"))),
    }
}

async fn get_one(
    s: Shared,
    who: Caller,
    headers: HeaderMap,
    id: String,
    kind: Kind,
) -> Result<Json<Value>, ApiFailure> {
    let e = entry(&s, &id, kind).await?;
    let doc = render(&e, &base_url(&s, &headers), &s.ctx.media.describe(), who.role);
    Ok(Json(json!({ "statusCode": 0, "recording": doc })))
}

pub async fn get_call(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiFailure> {
    get_one(s, who, headers, id, Kind::Voice).await
}

pub async fn get_screen(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiFailure> {
    get_one(s, who, headers, id, Kind::Screen).await
}

pub async fn get_ops(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    headers: HeaderMap,
    Path((ccid, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiFailure> {
    check_ccid(&s, &ccid)?;
    get_one(s, who, headers, id, Kind::Voice).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelBody {
    label: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    reason: String,
}

/// A JSON request body (the API's writes are JSON: [`crate::api::origin`]).
fn body<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ApiFailure> {
    serde_json::from_str(text).map_err(|e| ApiFailure::bad_request(format!("request body: {e}")))
}

/// Runs one catalog edit on a recording of `kind`, after checking it exists as that kind.
async fn edit<F>(s: Shared, id: String, kind: Kind, f: F) -> Result<Json<Value>, ApiFailure>
where
    F: FnOnce(&Arc<dyn Catalog>, &str) -> Result<(), crate::catalog::CatalogError> + Send + 'static,
{
    entry(&s, &id, kind).await?;
    let catalog = s.ctx.catalog.clone();
    blocking(move || Ok(f(&catalog, &id)?)).await?;
    Ok(Json(json!({ "statusCode": 0 })))
}

async fn label(s: Shared, id: String, kind: Kind, b: String) -> Result<Json<Value>, ApiFailure> {
    add_label(s, id, kind, body::<LabelBody>(&b)?.label).await?;
    Ok(Json(json!({ "statusCode": 0 })))
}

/// Labels a recording of `kind` (the API and the operators' pages): the label must be a safe name.
pub(crate) async fn add_label(s: Shared, id: String, kind: Kind, label: String) -> Result<(), ApiFailure> {
    crate::model::check_name(&label).map_err(|e| ApiFailure::bad_request(format!("label {label:?}: {e}")))?;
    edit(s, id, kind, move |c, id| c.label(id, &label)).await.map(drop)
}

/// Removes a label from a recording of `kind`.
pub(crate) async fn remove_label(s: Shared, id: String, kind: Kind, label: String) -> Result<(), ApiFailure> {
    edit(s, id, kind, move |c, id| c.unlabel(id, &label)).await.map(drop)
}

async fn hold(s: Shared, caller: Caller, id: String, kind: Kind, b: String) -> Result<Json<Value>, ApiFailure> {
    let mut answer = json!({ "statusCode": 0 });
    if let HoldOutcome::AlreadyHeld(h) =
        place_hold(s, id.clone(), kind, body::<HoldBody>(&b)?.reason, caller.user).await?
    {
        answer["statusMessage"] = Value::String(already_held(&id, &h));
    }
    Ok(Json(answer))
}

/// What a second hold is told: the first stays in force.
pub(crate) fn already_held(id: &str, h: &crate::catalog::Hold) -> String {
    format!(
        "{id} was already held since {} by {} ({}): that hold stays in force; this one is added to its history",
        h.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        h.by.as_deref().unwrap_or("an unknown user"),
        h.reason
    )
}

/// Holds a recording of `kind` with a reason, placed by `by` (the API's and the operators'
/// pages' user); the catalog refuses an empty reason.
pub(crate) async fn place_hold(
    s: Shared,
    id: String,
    kind: Kind,
    reason: String,
    by: String,
) -> Result<HoldOutcome, ApiFailure> {
    entry(&s, &id, kind).await?;
    let (catalog, now) = (s.ctx.catalog.clone(), s.ctx.clock.now());
    blocking(move || Ok(catalog.hold(&id, &reason, &by, now)?)).await
}

/// Releases the hold of a recording of `kind`, in the name of `by`.
pub(crate) async fn release_hold(s: Shared, id: String, kind: Kind, by: String) -> Result<(), ApiFailure> {
    let now = s.ctx.clock.now();
    edit(s, id, kind, move |c, id| c.unhold(id, &by, now).map(drop)).await.map(drop)
}

pub async fn label_call(State(s): State<Shared>, Path(id): Path<String>, b: String) -> Result<Json<Value>, ApiFailure> {
    label(s, id, Kind::Voice, b).await
}
pub async fn label_screen(
    State(s): State<Shared>,
    Path(id): Path<String>,
    b: String,
) -> Result<Json<Value>, ApiFailure> {
    label(s, id, Kind::Screen, b).await
}
pub async fn unlabel_call(
    State(s): State<Shared>,
    Path((id, l)): Path<(String, String)>,
) -> Result<Json<Value>, ApiFailure> {
    remove_label(s, id, Kind::Voice, l).await?;
    Ok(Json(json!({ "statusCode": 0 })))
}
pub async fn unlabel_screen(
    State(s): State<Shared>,
    Path((id, l)): Path<(String, String)>,
) -> Result<Json<Value>, ApiFailure> {
    remove_label(s, id, Kind::Screen, l).await?;
    Ok(Json(json!({ "statusCode": 0 })))
}
pub async fn hold_call(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
    b: String,
) -> Result<Json<Value>, ApiFailure> {
    hold(s, c, id, Kind::Voice, b).await
}
pub async fn hold_screen(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
    b: String,
) -> Result<Json<Value>, ApiFailure> {
    hold(s, c, id, Kind::Screen, b).await
}
pub async fn unhold_call(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiFailure> {
    release_hold(s, id, Kind::Voice, c.user).await?;
    Ok(Json(json!({ "statusCode": 0 })))
}
pub async fn unhold_screen(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiFailure> {
    release_hold(s, id, Kind::Screen, c.user).await?;
    Ok(Json(json!({ "statusCode": 0 })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::rws_search::{DEFAULT_LIMIT, MAX_LIMIT, MAX_TERMS, MAX_VALUE_BYTES};

    #[test]
    fn listing_parameters() {
        let l =
            parse_listing(Some("startTime=1000&endTime=2000&limit=5000&userName=alice%20AND%20bob"), Kind::Voice, 24)
                .unwrap();
        assert_eq!(l.limit, MAX_LIMIT);
        assert_eq!(l.query.start_from.unwrap().timestamp_millis(), 1000);
        assert_eq!(l.query.stop_to.unwrap().timestamp_millis(), 2001);
        assert_eq!(l.query.agent_user_any, vec![vec!["alice".to_string()], vec!["bob".to_string()]]);
        let l = parse_listing(Some("userData=tom*%20jerry&callerPhoneNumber=%2B1-800*"), Kind::Voice, 24).unwrap();
        assert_eq!(l.query.attached_value_any, vec!["tom*", "jerry"]);
        assert_eq!(l.query.caller_phone.as_deref(), Some("1800*"));
        assert_eq!(parse_listing(None, Kind::Voice, 24).unwrap().limit, DEFAULT_LIMIT);
        for bad in [
            "limit=0",
            "limit=-3",
            "limit=x",
            "startTime=abc",
            "foo=1",
            "limit=1&limit=2",
            "cursor=zz",
            "scanAndScroll=yes",
            "endTime=8210266876799999",
            "startTime=99999999999999999999",
        ] {
            let e = parse_listing(Some(bad), Kind::Voice, 24).unwrap_err();
            assert_eq!(e.code, ApiFailure::BAD_REQUEST, "{bad}");
        }
        let many = vec!["a"; MAX_TERMS + 1].join("%20");
        for name in ["userData", "userName"] {
            let e = parse_listing(Some(&format!("{name}={many}")), Kind::Voice, 24).unwrap_err();
            assert!(e.message.starts_with(name) && e.message.contains("terms"), "{}", e.message);
        }
        let long = "x".repeat(MAX_VALUE_BYTES + 1);
        assert!(parse_listing(Some(&format!("region={long}")), Kind::Voice, 24)
            .unwrap_err()
            .message
            .contains("region"));
    }
}
