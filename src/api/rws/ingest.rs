//! `POST /internal-api/contact-centers/{ccid}/recordings`: the Recording Processor's call.
//!
//! The body is one recording metadata document (bare, or the RWS `{"recording":{…}}` wrapper)
//! whose media files are already in the media store under `<id>/<mediaId>`. Media first, then
//! metadata: a document naming a media file the store does not hold is refused (400, naming
//! it), so the catalog never lists media that cannot be played. The request holds the
//! recording's writer intent ([`crate::ingest::intent`]) from before it looks at the media
//! until the document is written, so `check --repair` cannot remove the media in between; the
//! upload before the call is covered by the repair's grace period (`orphan_grace_seconds`).
//! Answers whether the recording was inserted, updated or unchanged.

use super::super::{blocking, ApiFailure, Shared};
use super::check_ccid;
use crate::catalog::Upsert;
use crate::model::Recording;
use crate::storage::{Key, StorageError};
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

pub async fn post_recording(
    State(s): State<Shared>,
    Path(ccid): Path<String>,
    body: String,
) -> Result<Json<Value>, ApiFailure> {
    check_ccid(&s, &ccid)?;
    let rec = Recording::parse(&body).map_err(|e| ApiFailure::bad_request(format!("recording metadata: {e}")))?;
    let intent = crate::ingest::intent::announce(&s.ctx, &rec.id).await.map_err(ApiFailure::conflict)?;
    for m in &rec.media {
        let key = Key::media(&rec.id, &m.media_id)?;
        match s.ctx.media.head(&key).await {
            Ok(meta) => {
                if let Some(size) = m.size.filter(|&n| n != meta.size) {
                    return Err(ApiFailure::bad_request(format!(
                        "recording {}: media {} has {} bytes in the store, the metadata says {size}",
                        rec.id, m.media_id, meta.size
                    )));
                }
            }
            Err(StorageError::NotFound { .. }) => {
                return Err(ApiFailure::bad_request(format!(
                    "recording {}: media {} is not in the store ({}); store the media first",
                    rec.id,
                    m.media_id,
                    s.ctx.media.describe()
                )))
            }
            Err(e) => return Err(e.into()),
        }
    }
    let catalog = s.ctx.catalog.clone();
    let id = rec.id.clone();
    let done = blocking(move || Ok(catalog.upsert(&rec)?)).await?;
    drop(intent);
    let what = match done {
        Upsert::Inserted => "inserted",
        Upsert::Updated => "updated",
        Upsert::Unchanged => "unchanged",
    };
    Ok(Json(json!({ "statusCode": 0, "id": id, "result": what })))
}
