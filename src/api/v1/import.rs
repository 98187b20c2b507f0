//! `/api/v1/import/sources`: the import sources' status, and the operator's edits of a source's
//! cursor and retry buffer. Each handler is one call of [`crate::import`], the same the CLI
//! (`reclife import cursor|retry|status`) and the pages make.

use super::super::{ApiFailure, Shared};
use crate::import;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// `GET /api/v1/import/sources`: every configured source's status.
pub async fn list(State(s): State<Shared>) -> Result<Json<Value>, ApiFailure> {
    let all = import::statuses(&s.ctx).await?;
    Ok(Json(json!({ "statusCode": 0, "sources": all })))
}

/// `GET /api/v1/import/sources/{name}`.
pub async fn show(State(s): State<Shared>, Path(name): Path<String>) -> Result<Json<Value>, ApiFailure> {
    let st = import::status(&s.ctx, &name).await?;
    Ok(Json(json!({ "statusCode": 0, "source": st })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorBody {
    cursor: String,
}

/// `POST /api/v1/import/sources/{name}/cursor` (`ops`): refused (409) while a run holds the
/// source's lease.
pub async fn set_cursor(
    State(s): State<Shared>,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<Value>, ApiFailure> {
    let b: CursorBody = body_of(&body, r#"{"cursor": "<id>;<yyyy.MM.dd HH:mm:ss.SSS>"}"#)?;
    let c = import::set_cursor(&s.ctx, &name, &b.cursor).await?;
    tracing::info!(source = %name, cursor = %c, "import cursor set through the API");
    Ok(Json(json!({ "statusCode": 0, "cursor": c.to_string() })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryBody {
    conversation_id: String,
}

/// `POST /api/v1/import/sources/{name}/retry` (`ops`): puts a conversation in the retry buffer.
pub async fn retry_add(
    State(s): State<Shared>,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<Value>, ApiFailure> {
    let b: RetryBody = body_of(&body, r#"{"conversation_id": "<id>"}"#)?;
    import::retry_add(&s.ctx, &name, &b.conversation_id).await?;
    Ok(Json(json!({ "statusCode": 0, "retry_buffer": import::retry_list(&s.ctx, &name).await? })))
}

/// `DELETE /api/v1/import/sources/{name}/retry/{conversation}` (`ops`): 404 when it is not there.
pub async fn retry_remove(
    State(s): State<Shared>,
    Path((name, conversation)): Path<(String, String)>,
) -> Result<Json<Value>, ApiFailure> {
    import::retry_remove(&s.ctx, &name, &conversation).await?;
    Ok(Json(json!({ "statusCode": 0, "retry_buffer": import::retry_list(&s.ctx, &name).await? })))
}

/// A request body parsed here rather than by axum's `Json`, so that any bad body is a 400 in
/// the envelope (as every other `/api/v1` write answers), naming the shape expected.
fn body_of<T: serde::de::DeserializeOwned>(body: &str, expected: &str) -> Result<T, ApiFailure> {
    serde_json::from_str(body).map_err(|e| ApiFailure::bad_request(format!("request body: {e}; expected {expected}")))
}
