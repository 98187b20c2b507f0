//! A Genesys Cloud conversation as a GIR-shaped recording document, the shape the rest of
//! reclife reads (`model::Recording`): ids, `startTime`/`stopTime` (UTC), `callType`, the
//! phone numbers, `mediaFiles` (with `parameters.agentId`/`username`), `eventHistory` (the
//! agent's Joined contact), and a `genesysCloud` object with the seed's metadata fields
//! (From/To and their info, Direction and Direction (User), User, Location, Platform Call ID,
//! Source Platform "Genesys", Conversation Type "Voice", Record Type "Standard", the
//! Recording Timezone and the import source).

use super::genesys::model::Conversation;
use super::genesys::UserInfo;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// GIR's time format.
pub fn gir_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// One media file stored for the conversation.
#[derive(Debug, Clone)]
pub struct StoredMedia {
    pub media_id: String,
    pub recording_id: String,
    pub mime: String,
    pub size: u64,
    pub start: DateTime<Utc>,
    pub stop: DateTime<Utc>,
}

/// The people of a conversation as the document names them.
#[derive(Debug, Clone, Default)]
pub struct Parties {
    pub agent_user_id: Option<String>,
    pub agent: Option<UserInfo>,
    /// The customer's (or external party's) number and name.
    pub customer_number: Option<String>,
    pub customer_name: Option<String>,
    /// The number the customer dialled (inbound) or the agent dialled (outbound).
    pub dialed: Option<String>,
    /// The agent's own session direction (Direction (User)).
    pub user_direction: Option<String>,
}

fn number(s: &str) -> String {
    s.trim_start_matches("tel:").trim_start_matches("sip:").to_string()
}

/// Who is who, from the analytics participants.
pub fn parties(conv: &Conversation) -> Parties {
    let mut p = Parties::default();
    for part in &conv.participants {
        let purpose = part.purpose.as_deref().unwrap_or_default();
        let voice = part.sessions.iter().find(|s| s.media_type.as_deref().is_none_or(|m| m == "voice"));
        match purpose {
            "agent" | "user" if p.agent_user_id.is_none() => {
                p.agent_user_id = part.user_id.clone();
                p.user_direction = voice.and_then(|s| s.direction.clone());
            }
            "customer" | "external" if p.customer_number.is_none() => {
                let inbound = conv.originating_direction.as_deref() != Some("outbound");
                p.customer_number =
                    voice.and_then(|s| if inbound { s.ani.clone() } else { s.dnis.clone() }).map(|n| number(&n));
                p.dialed = voice.and_then(|s| s.dnis.clone()).map(|n| number(&n));
                p.customer_name = part.participant_name.clone();
            }
            _ => {}
        }
    }
    p
}

fn cap(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The document of a conversation whose media is `media`.
pub fn build(conv: &Conversation, parties: &Parties, media: &[StoredMedia], source: &str, timezone: &str) -> Value {
    let start = conv.conversation_start;
    let stop = conv.conversation_end.unwrap_or(start);
    let inbound = conv.originating_direction.as_deref() != Some("outbound");
    let agent_name = parties.agent.as_ref().and_then(|a| a.name.clone());
    let agent_username = parties.agent.as_ref().and_then(|a| a.username.clone().or(a.name.clone()));
    let ext = parties.agent.as_ref().and_then(|a| a.extension.clone());
    let customer = parties.customer_number.clone().unwrap_or_default();
    let (from, from_info, to, to_info) = if inbound {
        (customer.clone(), parties.customer_name.clone(), ext.clone().unwrap_or_default(), agent_name.clone())
    } else {
        (ext.clone().unwrap_or_default(), agent_name.clone(), customer.clone(), parties.customer_name.clone())
    };
    let mut params = Map::new();
    if let Some(id) = &parties.agent_user_id {
        params.insert("agentId".into(), json!(id));
    }
    if let Some(u) = &agent_username {
        params.insert("username".into(), json!(u));
    }
    params.insert("callUuid".into(), json!(conv.conversation_id));
    let files: Vec<Value> = media
        .iter()
        .map(|m| {
            json!({
                "mediaId": m.media_id,
                "type": m.mime,
                "startTime": gir_time(m.start),
                "stopTime": gir_time(m.stop),
                "duration": (m.stop - m.start).num_milliseconds().max(0).to_string(),
                "size": m.size.to_string(),
                "callUUID": conv.conversation_id,
                "channels": 2,
                "parameters": Value::Object(params.clone()),
                "genesysRecordingId": m.recording_id,
            })
        })
        .collect();
    let mut events = Vec::new();
    if parties.agent_user_id.is_some() {
        events.push(json!({
            "occurredAt": gir_time(start),
            "calluuid": conv.conversation_id,
            "event": "Joined",
            "contact": {"type": "User", "phoneNumber": ext.clone().unwrap_or_default(), "userName": agent_username.clone().unwrap_or_default(), "firstName": agent_name.clone().unwrap_or_default()},
        }));
    }
    let location = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
    json!({
        "id": conv.conversation_id,
        "callerPhoneNumber": from,
        "dialedPhoneNumber": to,
        "startTime": gir_time(start),
        "stopTime": gir_time(stop),
        "callType": cap(conv.originating_direction.as_deref().unwrap_or("inbound")),
        "mediaFiles": files,
        "eventHistory": events,
        "genesysCloud": {
            "conversationId": conv.conversation_id,
            "platformCallId": conv.conversation_id,
            "sourcePlatform": "Genesys",
            "conversationType": "Voice",
            "recordType": "Standard",
            "duration": (stop - start).num_milliseconds().max(0),
            "user": agent_name,
            "userId": parties.agent_user_id,
            "extension": ext,
            "from": from,
            "fromInfo": from_info,
            "to": to,
            "toInfo": to_info,
            "dialedNumber": parties.dialed,
            "direction": cap(conv.originating_direction.as_deref().unwrap_or("inbound")),
            "directionUser": parties.user_direction.as_deref().map(cap),
            "location": location,
            "timezone": timezone,
            "importSource": source,
        }
    })
}
