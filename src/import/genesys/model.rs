//! The parts of Genesys Cloud's API models the importer reads, named as the platform API (and
//! its SDKs' model docs) name them: `AnalyticsConversationQueryResponse` /
//! `AnalyticsConversationWithoutAttributes` / `AnalyticsParticipantWithoutAttributes` /
//! `AnalyticsSession` (AnalyticsApi, `POST /api/v2/analytics/conversations/details/query`),
//! `Recording` + `MediaResult` (RecordingApi, `GET /api/v2/conversations/{conversationId}/
//! recordingmetadata` and `GET /api/v2/conversations/{conversationId}/recordings/{recordingId}`),
//! `User` + `Contact` (UsersApi, `GET /api/v2/users/{userId}`). Unknown fields are ignored.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConversationQueryResponse {
    #[serde(default)]
    pub conversations: Vec<Conversation>,
    #[serde(default)]
    pub total_hits: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub conversation_id: String,
    pub conversation_start: DateTime<Utc>,
    #[serde(default)]
    pub conversation_end: Option<DateTime<Utc>>,
    #[serde(default)]
    pub originating_direction: Option<String>,
    #[serde(default)]
    pub participants: Vec<Participant>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    #[serde(default)]
    pub participant_id: Option<String>,
    #[serde(default)]
    pub participant_name: Option<String>,
    /// agent, customer, external, user, acd, ivr, …
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub sessions: Vec<Session>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub ani: Option<String>,
    #[serde(default)]
    pub dnis: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub recording: Option<bool>,
    #[serde(default)]
    pub session_id: Option<String>,
}

/// RecordingApi's `Recording` (metadata, or with `mediaUris` once transcoded).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    pub id: String,
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    /// audio, chat, email, …
    #[serde(default)]
    pub media: Option<String>,
    #[serde(default)]
    pub file_state: Option<String>,
    #[serde(default)]
    pub media_uris: Option<BTreeMap<String, MediaResult>>,
    #[serde(default)]
    pub output_duration_ms: Option<u64>,
    #[serde(default)]
    pub output_size_in_bytes: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaResult {
    #[serde(default)]
    pub media_uri: Option<String>,
}

/// UsersApi's `User`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub addresses: Vec<Contact>,
}

/// `Contact`: a user's phone addresses; `extension` on PHONE entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub extension: Option<String>,
    #[serde(default)]
    pub media_type: Option<String>,
}

impl User {
    /// The user's extension (the first phone address with one), else their phone address.
    pub fn extension(&self) -> Option<String> {
        let phones = || self.addresses.iter().filter(|c| c.media_type.as_deref().is_none_or(|m| m == "PHONE"));
        phones().find_map(|c| c.extension.clone()).or_else(|| phones().find_map(|c| c.address.clone()))
    }
}

impl Recording {
    /// The first media URI the API gave (a pre-signed URL).
    pub fn media_uri(&self) -> Option<&str> {
        self.media_uris.as_ref()?.values().find_map(|m| m.media_uri.as_deref())
    }
}
