//! `DELETE /api/v2/recordings/{id}` and `DELETE /api/v2/screen-recordings/{id}`: one recording
//! deleted the way a purge deletes, journaled and audited ([`lifecycle::purge::purge_one`]).
//!
//! A call goes with its screen recordings. Nothing is deleted when the recording, or one of
//! those screens, is held (`nonDelete` or a hold), or when a screen recording's call is held:
//! 409 with the RWS envelope (`statusCode` 6), naming why. The deletion is one purge journal
//! entry, so a crash midway is finished by the next run, and `<data dir>/audit/deletions.jsonl`
//! gets one line per recording with job `api:<user>`.
//!
//! [`lifecycle::purge::purge_one`]: crate::lifecycle::purge::purge_one

use super::super::auth::Caller;
use super::super::{ApiFailure, Shared};
use crate::lifecycle::purge::{purge_one, PurgeOneError};
use crate::model::Kind;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{json, Value};

async fn delete(s: Shared, caller: Caller, id: String, kind: Kind) -> Result<Json<Value>, ApiFailure> {
    let deleted = purge_one(&s.ctx, &id, kind, &format!("api:{}", caller.user)).await.map_err(|e| match e {
        PurgeOneError::NotFound { .. } => ApiFailure::not_found(e.to_string()),
        PurgeOneError::Refused { .. } => ApiFailure::conflict(e.to_string()),
        PurgeOneError::Failed(e) => e.into(),
    })?;
    tracing::info!(recording = %id, user = %caller.user, "deleted through the API");
    Ok(Json(json!({ "statusCode": 0, "deleted": deleted })))
}

pub async fn delete_call(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiFailure> {
    delete(s, c, id, Kind::Voice).await
}

pub async fn delete_screen(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiFailure> {
    delete(s, c, id, Kind::Screen).await
}
