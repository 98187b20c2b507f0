//! Genesys Cloud's public API as the importer uses it. Each call names the SDK operation it is:
//!
//! - AnalyticsApi `post_analytics_conversations_details_query`: `POST
//!   /api/v2/analytics/conversations/details/query` with a `ConversationQuery` (`interval`
//!   `start/end` in ISO-8601, `order` asc, `orderBy` conversationStart, `paging` pageSize and
//!   pageNumber from 1, a segment filter on `mediaType` voice): the conversations of a window.
//! - AnalyticsApi `get_analytics_conversation_details`: `GET
//!   /api/v2/analytics/conversations/{conversationId}/details`: one conversation (the retry buffer).
//! - RecordingApi `get_conversation_recordingmetadata`: `GET
//!   /api/v2/conversations/{conversationId}/recordingmetadata`: its recordings, without media.
//! - RecordingApi `get_conversation_recording`: `GET
//!   /api/v2/conversations/{conversationId}/recordings/{recordingId}?formatId=…&download=true`:
//!   202 while the recording is transcoded ("not ready"), then 200 with `mediaUris`, whose
//!   `mediaUri` is a pre-signed URL.
//! - UsersApi `get_user`: `GET /api/v2/users/{userId}`: name and extension (cached).
//! - RecordingApi `put_conversation_recording`: `PUT
//!   /api/v2/conversations/{conversationId}/recordings/{recordingId}` with `deleteDate` set
//!   (the recording's deletion, delete on completion).

pub mod client;
pub mod model;

use crate::import::ImportError;
use chrono::{DateTime, SecondsFormat, Utc};
use client::Client;
use model::{Conversation, ConversationQueryResponse, Recording, User};
use reqwest::Method;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One page of the conversations that started in `[from, to)` (analytics may return
/// conversations merely active in the interval; the caller filters on the start).
pub async fn conversations(
    c: &Client,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    page: u32,
    page_size: u32,
) -> Result<ConversationQueryResponse, ImportError> {
    let body = serde_json::json!({
        "interval": format!("{}/{}", from.to_rfc3339_opts(SecondsFormat::Millis, true), to.to_rfc3339_opts(SecondsFormat::Millis, true)),
        "order": "asc",
        "orderBy": "conversationStart",
        "paging": { "pageSize": page_size, "pageNumber": page },
        "segmentFilters": [
            { "type": "and", "predicates": [ { "type": "dimension", "dimension": "mediaType", "operator": "matches", "value": "voice" } ] }
        ]
    });
    let (_, r) = c.json(Method::POST, "/api/v2/analytics/conversations/details/query", Some(&body)).await?;
    Ok(r.unwrap_or_default())
}

/// One conversation's details.
pub async fn conversation(c: &Client, id: &str) -> Result<Conversation, ImportError> {
    let path = format!("/api/v2/analytics/conversations/{}/details", enc(id));
    match c.json::<Conversation>(Method::GET, &path, None).await? {
        (_, Some(v)) => Ok(v),
        (s, None) => Err(ImportError::Api {
            source_name: String::new(),
            message: format!("GET {path}: HTTP {s} without a body"),
        }),
    }
}

/// The recordings of a conversation (metadata only).
pub async fn recording_metadata(c: &Client, conversation_id: &str) -> Result<Vec<Recording>, ImportError> {
    let path = format!("/api/v2/conversations/{}/recordingmetadata", enc(conversation_id));
    Ok(c.json::<Vec<Recording>>(Method::GET, &path, None).await?.1.unwrap_or_default())
}

/// A recording with its media URI; `None` while the API says it is not ready (202).
pub async fn recording(
    c: &Client,
    conversation_id: &str,
    recording_id: &str,
    codec: &str,
) -> Result<Option<Recording>, ImportError> {
    let path = format!(
        "/api/v2/conversations/{}/recordings/{}?formatId={}&download=true",
        enc(conversation_id),
        enc(recording_id),
        enc(codec)
    );
    match c.json::<Recording>(Method::GET, &path, None).await? {
        (_, Some(r)) if r.media_uri().is_some() => Ok(Some(r)),
        _ => Ok(None),
    }
}

/// Marks a recording for deletion now (`deleteDate`): Genesys deletes it.
pub async fn delete_recording(
    c: &Client,
    conversation_id: &str,
    recording_id: &str,
    now: DateTime<Utc>,
) -> Result<(), ImportError> {
    let path = format!("/api/v2/conversations/{}/recordings/{}", enc(conversation_id), enc(recording_id));
    let body =
        serde_json::json!({ "id": recording_id, "deleteDate": now.to_rfc3339_opts(SecondsFormat::Millis, true) });
    c.json::<serde_json::Value>(Method::PUT, &path, Some(&body)).await.map(|_| ())
}

/// What the importer keeps of a user.
#[derive(Debug, Clone)]
pub struct UserInfo {
    pub name: Option<String>,
    pub username: Option<String>,
    pub extension: Option<String>,
}

type Cache = Mutex<HashMap<(String, String), (Instant, UserInfo)>>;

fn cache() -> &'static Cache {
    static C: OnceLock<Cache> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// Requests to the users API made by this process (for tests of the cache).
pub static USER_LOOKUPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A user's name and extension, from this process's cache while younger than `lifetime`.
pub async fn user(c: &Client, source: &str, user_id: &str, lifetime: Duration) -> Result<UserInfo, ImportError> {
    let key = (source.to_string(), user_id.to_string());
    if let Some((at, u)) = cache().lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        if at.elapsed() < lifetime {
            return Ok(u.clone());
        }
    }
    let path = format!("/api/v2/users/{}", enc(user_id));
    USER_LOOKUPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let u: User = match c.json::<User>(Method::GET, &path, None).await? {
        (_, Some(u)) => u,
        (s, None) => {
            return Err(ImportError::Api { source_name: source.into(), message: format!("GET {path}: HTTP {s}") })
        }
    };
    let info = UserInfo { name: u.name.clone(), username: u.username.clone(), extension: u.extension() };
    cache().lock().unwrap_or_else(|p| p.into_inner()).insert(key, (Instant::now(), info.clone()));
    Ok(info)
}

/// Percent-encodes a path segment or query value.
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
