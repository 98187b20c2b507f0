//! The one vocabulary: call and screen recording metadata exactly as GIR documents it.
//!
//! In: a metadata document as GIR writes it (`meta-data.json`, or the RWS API wrapper
//! `{"statusCode":0,"recording":{…}}`). Out: a [`Recording`] with typed, derived fields for
//! queries, plus the document itself, kept byte for byte, so that what goes in comes back out
//! unchanged. Real files mix timestamp styles, give sizes and durations as strings and carry
//! undocumented fields; all of that is accepted and kept.

mod name;
mod time;

pub use name::{archive_path, check_name, relative_path, uri_segment};
pub use time::{parse_duration_ms, parse_time, parse_time_str, parse_u64};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// Errors in a metadata document. Each names the field or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a recording document: the top level is not a JSON object")]
    NotAnObject,
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("field `{field}` has a time that does not parse: {value}")]
    BadTime { field: String, value: String },
    #[error("field `{field}` is invalid: {why}")]
    BadField { field: String, why: String },
    #[error("unsafe name {name:?}: {why}")]
    UnsafeName { name: String, why: &'static str },
}

/// Voice (call) or screen recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Voice,
    Screen,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Voice => "voice",
            Kind::Screen => "screen",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "voice" | "call" => Ok(Kind::Voice),
            "screen" => Ok(Kind::Screen),
            _ => Err(format!("unknown recording type {s:?} (expected voice or screen)")),
        }
    }
}

/// One entry of `mediaFiles`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaFile {
    /// `mediaId`: the file name under which the media is stored and archived.
    pub media_id: String,
    /// `type`, the MIME type (`audio/mp3`, `audio/wav`, `video/mp4`).
    pub mime: String,
    pub start: Option<DateTime<Utc>>,
    pub stop: Option<DateTime<Utc>>,
    /// `size` in bytes, as the metadata states it.
    pub size: Option<u64>,
    pub duration_ms: Option<u64>,
    pub channels: Option<u32>,
    /// True when the metadata carries an envelope (`pkcs7`), or the stored bytes are a CMS
    /// EnvelopedData (set by ingest after looking at the file).
    pub encrypted: bool,
    pub cert_alias: Vec<String>,
    /// The detached envelope (PEM or base64) holding the wrapped session key.
    pub pkcs7: Option<String>,
    /// `originalMediaDescriptor.path`, else `mediaDescriptor.path`.
    pub stored_path: Option<String>,
    /// `parameters.muxed_mediaIds` on a muxed screen file.
    pub muxed_media_ids: Vec<String>,
}

impl MediaFile {
    pub fn is_video(&self) -> bool {
        self.mime.starts_with("video/")
    }
}

/// A recording: typed fields derived from the document, and the document itself.
#[derive(Debug, Clone)]
pub struct Recording {
    pub id: String,
    pub kind: Kind,
    pub start: DateTime<Utc>,
    pub stop: DateTime<Utc>,
    pub region: Option<String>,
    pub call_type: Option<String>,
    pub labels: Vec<String>,
    /// `nonDelete: true` in the document.
    pub non_delete: bool,
    pub agent_user: Option<String>,
    pub agent_id: Option<String>,
    /// Every agent user name that appears (media parameters, Joined contacts).
    pub agent_users: Vec<String>,
    /// For screen recordings: the call they belong to.
    pub call_recording_id: Option<String>,
    pub call_uuid: Option<String>,
    pub partitions: Vec<String>,
    /// Attached data as it is now: each key with its last `added`/`updated` value in
    /// `eventHistory` order, and no key whose last event `deleted` it (GIR's selective
    /// recording flow changes `keep_recording` during a call; filters mean the final value).
    pub attached_data: Vec<(String, String)>,
    /// The call's `screenRecording` flag.
    pub screen_flag: bool,
    pub media: Vec<MediaFile>,
    /// The document exactly as it was given (the inner object for the API wrapper).
    doc: String,
}

impl Recording {
    /// Parses a document: a bare recording object, or the API wrapper.
    pub fn parse(text: &str) -> Result<Recording, ModelError> {
        Self::parse_in(text, None)
    }

    /// Parses a document found beneath a call recording (the archive's `screen/<id>/`
    /// folder): a screen recording without `callRecordingId` takes the parent's id.
    pub fn parse_in(text: &str, parent_call: Option<&str>) -> Result<Recording, ModelError> {
        let raw: &RawValue = serde_json::from_str(text)?;
        let value: Value = serde_json::from_str(raw.get())?;
        let obj = value.as_object().ok_or(ModelError::NotAnObject)?;
        // The RWS API wraps the document: {"statusCode":0,"recording":{…}}.
        if obj.contains_key("recording") && !obj.contains_key("id") {
            #[derive(Deserialize)]
            struct Wrapper<'a> {
                #[serde(borrow)]
                recording: &'a RawValue,
            }
            let w: Wrapper = serde_json::from_str(text)?;
            let inner: Value = serde_json::from_str(w.recording.get())?;
            return Self::from_value(&inner, w.recording.get().to_string(), parent_call);
        }
        Self::from_value(&value, raw.get().to_string(), parent_call)
    }

    /// The stored document, as given.
    pub fn doc(&self) -> &str {
        &self.doc
    }

    /// The document as a JSON value.
    pub fn doc_value(&self) -> Value {
        serde_json::from_str(&self.doc).expect("the document was parsed when the recording was made")
    }

    /// Sum of media sizes stated in the metadata.
    pub fn bytes(&self) -> u64 {
        self.media.iter().filter_map(|m| m.size).sum()
    }

    /// Replaces the document with `value` (for metadata edits such as labels and muxed
    /// files), re-deriving every typed field. Media flags found by inspection are kept.
    pub fn with_doc(&self, value: &Value) -> Result<Recording, ModelError> {
        let text = serde_json::to_string_pretty(value)?;
        let mut r = Self::from_value(value, text, self.call_recording_id.as_deref())?;
        for m in &mut r.media {
            if let Some(old) = self.media.iter().find(|o| o.media_id == m.media_id) {
                m.encrypted |= old.encrypted;
            }
        }
        Ok(r)
    }

    fn from_value(v: &Value, doc: String, parent_call: Option<&str>) -> Result<Recording, ModelError> {
        let o = v.as_object().ok_or(ModelError::NotAnObject)?;
        let id = str_field(o, "id").ok_or(ModelError::Missing("id"))?.to_string();
        check_name(&id).map_err(|e| ModelError::BadField { field: "id".into(), why: e.to_string() })?;
        let start = time_field(o, "startTime")?.ok_or(ModelError::Missing("startTime"))?;
        let stop = time_field(o, "stopTime")?.unwrap_or(start);

        let media_vals = o
            .get("mediaFiles")
            .or_else(|| o.get("mediaFile"))
            .map(|m| m.as_array().cloned().unwrap_or_default())
            .unwrap_or_default();
        let mut media = Vec::with_capacity(media_vals.len());
        for (i, m) in media_vals.iter().enumerate() {
            media.push(parse_media(i, m)?);
        }
        let call_recording_id = str_field(o, "callRecordingId").map(str::to_string).or(parent_call.map(str::to_string));
        if let Some(c) = &call_recording_id {
            check_name(c).map_err(|e| ModelError::BadField { field: "callRecordingId".into(), why: e.to_string() })?;
        }
        let kind = if call_recording_id.is_some() || (!media.is_empty() && media.iter().all(MediaFile::is_video)) {
            Kind::Screen
        } else {
            Kind::Voice
        };

        let mut agent_users = Vec::new();
        let mut agent_id = None;
        let mut call_uuid = None;
        let mut partitions = Vec::new();
        for m in &media_vals {
            if let Some(p) = m.get("parameters").and_then(Value::as_object) {
                for key in ["username", "userName"] {
                    if let Some(u) = p.get(key).and_then(Value::as_str) {
                        push_unique(&mut agent_users, u);
                    }
                }
                if let Some(u) = p.get("contact").and_then(|c| c.get("userName")).and_then(Value::as_str) {
                    push_unique(&mut agent_users, u);
                }
                if agent_id.is_none() {
                    agent_id = ["agentId", "agentID"].iter().find_map(|k| p.get(*k).and_then(scalar_string));
                }
                if call_uuid.is_none() {
                    call_uuid =
                        ["callUuid", "callUUID", "calluuid"].iter().find_map(|k| p.get(*k).and_then(scalar_string));
                }
            }
            if call_uuid.is_none() {
                call_uuid = m.get("callUUID").and_then(scalar_string);
            }
            for p in string_list(m.get("partitions")) {
                push_unique(&mut partitions, &p);
            }
        }
        let mut attached_data = Vec::new();
        for ev in o.get("eventHistory").and_then(Value::as_array).into_iter().flatten() {
            let is_user = ev.get("contact").and_then(|c| c.get("type")).and_then(Value::as_str) == Some("User");
            if ev.get("event").and_then(Value::as_str) == Some("Joined") && is_user {
                if let Some(u) = ev.get("contact").and_then(|c| c.get("userName")).and_then(Value::as_str) {
                    push_unique(&mut agent_users, u);
                }
            }
            if let Some(data) = ev.get("data").and_then(Value::as_object) {
                for part in ["added", "updated", "deleted"] {
                    for (k, val) in data.get(part).and_then(Value::as_object).into_iter().flatten() {
                        attached_data.retain(|(key, _): &(String, String)| key != k);
                        if part != "deleted" {
                            if let Some(s) = scalar_string(val) {
                                attached_data.push((k.clone(), s));
                            }
                        }
                    }
                }
            }
        }
        for p in string_list(o.get("partitions")) {
            push_unique(&mut partitions, &p);
        }
        if call_uuid.is_none() {
            call_uuid = str_field(o, "callUuid").map(str::to_string);
        }
        Ok(Recording {
            id,
            kind,
            start,
            stop,
            region: str_field(o, "region").filter(|s| !s.is_empty()).map(str::to_string),
            call_type: str_field(o, "callType").filter(|s| !s.is_empty()).map(str::to_string),
            labels: string_list(o.get("labels")),
            non_delete: o.get("nonDelete").map(truthy).unwrap_or(false),
            agent_user: agent_users.first().cloned(),
            agent_id,
            agent_users,
            call_recording_id,
            call_uuid,
            partitions,
            attached_data,
            screen_flag: o.get("screenRecording").map(truthy).unwrap_or(false),
            media,
            doc,
        })
    }
}

fn parse_media(i: usize, m: &Value) -> Result<MediaFile, ModelError> {
    let o = m
        .as_object()
        .ok_or_else(|| ModelError::BadField { field: format!("mediaFiles[{i}]"), why: "not an object".into() })?;
    let field = |f: &str| format!("mediaFiles[{i}].{f}");
    let media_id = str_field(o, "mediaId")
        .or_else(|| str_field(o, "mediaID"))
        .ok_or_else(|| ModelError::BadField { field: field("mediaId"), why: "missing".into() })?
        .to_string();
    check_name(&media_id).map_err(|e| ModelError::BadField { field: field("mediaId"), why: e.to_string() })?;
    let time = |k: &str| -> Result<Option<DateTime<Utc>>, ModelError> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                parse_time(v).map(Some).ok_or_else(|| ModelError::BadTime { field: field(k), value: v.to_string() })
            }
        }
    };
    let params = o.get("parameters");
    let stored_path = ["originalMediaDescriptor", "mediaDescriptor"]
        .iter()
        .find_map(|d| o.get(*d).and_then(|d| d.get("path")).and_then(Value::as_str))
        .map(str::to_string);
    let pkcs7 = str_field(o, "pkcs7").filter(|s| !s.trim().is_empty()).map(str::to_string);
    Ok(MediaFile {
        mime: str_field(o, "type").unwrap_or("").to_string(),
        start: time("startTime")?,
        stop: time("stopTime")?,
        size: o.get("size").and_then(parse_u64),
        duration_ms: o.get("duration").and_then(parse_duration_ms),
        channels: o.get("channels").and_then(parse_u64).map(|c| c as u32),
        encrypted: pkcs7.is_some(),
        cert_alias: string_list(o.get("certAlias")),
        pkcs7,
        stored_path,
        muxed_media_ids: string_list(params.and_then(|p| p.get("muxed_mediaIds"))),
        media_id,
    })
}

fn str_field<'a>(o: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str)
}

fn time_field(o: &serde_json::Map<String, Value>, k: &str) -> Result<Option<DateTime<Utc>>, ModelError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse_time(v).map(Some).ok_or_else(|| ModelError::BadTime { field: k.into(), value: v.to_string() }),
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list given as an array of strings, a single string, or a comma-separated string.
fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(scalar_string).collect(),
        Some(Value::String(s)) if !s.is_empty() => {
            s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
        }
        _ => Vec::new(),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true") || s == "1",
        Value::Number(n) => n.as_i64() == Some(1),
        _ => false,
    }
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !s.is_empty() && !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

#[cfg(test)]
mod tests;
