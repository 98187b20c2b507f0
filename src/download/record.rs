//! One recording of a listing, turned into what to write: its folder, the media files that
//! match `mediaTypePattern` (with where to fetch each), and the metadata bytes as the API sent
//! them.
//!
//! A screen recording whose call (`callRecordingId`) is in the same download goes inside the
//! call's folder, in `screen/<screen id>/` ([`InCall`]).
//!
//! Where a media file comes from: its `mediaDescriptor`, in either of the two shapes in use:
//! reclife's (`{"storage": "s3://bucket/prefix", "key": "<id>/<mediaId>"}`) and GIR's
//! (`{"storage": "…", "path": "prefix/name.mp3", "data": {"bucket": "…"}}`, or a `path` that is
//! an `s3://bucket/key` URI). A descriptor that
//! names no S3 bucket (local or WebDAV storage), or `--via-api`, means the API's play URL
//! (`mediaUri`, else `mediaPath` below the prefix).

use super::layout::{media_name, FolderFormat};
use crate::model::uri_segment;
use crate::model::{parse_time, parse_u64, relative_path};
use crate::storage::{Key, Location};
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    S3 { bucket: String, prefix: String, key: Key },
    Api { uri: String },
}

#[derive(Debug, Clone)]
pub struct MediaPlan {
    pub media_id: String,
    /// The local file name.
    pub name: String,
    /// Size the metadata states.
    pub size: Option<u64>,
    pub source: Source,
    /// Detached envelope and key aliases, for `--decrypt`.
    pub pkcs7: Option<String>,
    pub cert_alias: Vec<String>,
}

#[derive(Debug)]
pub struct Planned {
    pub id: String,
    pub start: DateTime<Utc>,
    /// `<folder format>/<id>` below the target.
    pub rel_dir: PathBuf,
    pub files: Vec<MediaPlan>,
    /// Media files that cannot be fetched (an unsafe name, no source), with the reason.
    pub bad_files: Vec<(String, String)>,
    pub raw: Box<RawValue>,
}

impl Planned {
    pub fn dir(&self, root: &Path) -> PathBuf {
        root.join(&self.rel_dir)
    }
}

/// The id and start time of a listed recording, or why it is unusable.
pub fn id_and_start(doc: &Value) -> Result<(String, DateTime<Utc>), String> {
    let id = doc.get("id").and_then(Value::as_str).ok_or("a recording without an id")?;
    let start = doc.get("startTime").and_then(parse_time).ok_or_else(|| format!("recording {id}: no startTime"))?;
    Ok((id.to_string(), start))
}

/// The call a screen recording belongs to (`callRecordingId`), if it names one.
pub fn call_of(doc: &Value) -> Option<&str> {
    doc.get("callRecordingId").and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Where a screen recording whose call is in the download lands: `screen/<screen id>/` inside
/// the call's folder (`<folder format of the call's start>/<call id>/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InCall {
    pub call: String,
    pub start: DateTime<Utc>,
}

/// Plans one recording; `in_call`: a screen recording laid in its call's folder.
pub fn plan(
    raw: Box<RawValue>,
    format: &FolderFormat,
    types: &regex::Regex,
    metadata_only: bool,
    via_api: bool,
    in_call: Option<&InCall>,
) -> Result<Planned, String> {
    let doc: Value = serde_json::from_str(raw.get()).map_err(|e| format!("malformed recording: {e}"))?;
    let (id, start) = id_and_start(&doc)?;
    let rel_dir = match in_call {
        None => format.recording_dir(Path::new(""), start, &id),
        Some(c) => format.recording_dir(Path::new(""), c.start, &c.call).and_then(|d| {
            crate::model::check_name(&id).map_err(|e| e.to_string())?;
            Ok(d.join(super::layout::SCREEN_DIR).join(&id))
        }),
    }
    .map_err(|e| format!("recording {id}: {e}"))?;
    let mut files = Vec::new();
    let mut bad_files = Vec::new();
    let list = doc.get("mediaFiles").or_else(|| doc.get("mediaFile")).and_then(Value::as_array);
    for m in list.into_iter().flatten().filter(|_| !metadata_only) {
        let mime = m.get("type").and_then(Value::as_str).unwrap_or("");
        if !types.is_match(mime) {
            continue;
        }
        let media_id = m.get("mediaId").and_then(Value::as_str).unwrap_or("").to_string();
        match media_plan(m, &id, &media_id, via_api) {
            Ok(p) => {
                if files.iter().any(|f: &MediaPlan| f.name == p.name) {
                    bad_files.push((media_id, format!("two media files named {}", p.name)));
                } else {
                    files.push(p);
                }
            }
            Err(e) => bad_files.push((media_id, e)),
        }
    }
    Ok(Planned { id, start, rel_dir, files, bad_files, raw })
}

/// How one media file is fetched: its S3 descriptor, else its `mediaUri`/`mediaPath`, else (an
/// RCBS record, which carries neither) RWS's documented play path below `gwsUriPrefix`,
/// `/recordings/<id>/play/<mediaId>`.
fn media_plan(m: &Value, id: &str, media_id: &str, via_api: bool) -> Result<MediaPlan, String> {
    let d = m.get("mediaDescriptor");
    let s3 = d.and_then(s3_source);
    let stored = match &s3 {
        Some(Source::S3 { key, .. }) => Some(key.as_str().to_string()),
        _ => d.and_then(|d| d.get("path")).and_then(Value::as_str).map(str::to_string),
    };
    let name = media_name(stored.as_deref(), media_id)?;
    let source = match s3 {
        Some(s) if !via_api => s,
        _ => {
            let uri = match m
                .get("mediaUri")
                .and_then(Value::as_str)
                .or_else(|| m.get("mediaPath").and_then(Value::as_str))
            {
                Some(u) => u.to_string(),
                None if media_id.is_empty() => return Err("no mediaId, no S3 descriptor and no mediaUri".into()),
                None => format!("/recordings/{}/play/{}", uri_segment(id), uri_segment(media_id)),
            };
            Source::Api { uri }
        }
    };
    let cert_alias = match m.get("certAlias") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    Ok(MediaPlan {
        media_id: media_id.to_string(),
        name,
        size: m.get("size").and_then(parse_u64),
        source,
        pkcs7: m.get("pkcs7").and_then(Value::as_str).map(str::to_string),
        cert_alias,
    })
}

/// The S3 object a descriptor names, if it names one.
fn s3_source(d: &Value) -> Option<Source> {
    let storage = d.get("storage").and_then(Value::as_str).unwrap_or("");
    if let Some(key) = d.get("key").and_then(Value::as_str) {
        if let Ok(Location::S3 { bucket, prefix }) = Location::parse(storage) {
            return Some(Source::S3 { bucket, prefix, key: Key::parse(key).ok()? });
        }
    }
    let path = d.get("path").and_then(Value::as_str)?;
    // A path that is itself an S3 URI names its bucket.
    if let Some(rest) = path.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/')?;
        return Some(Source::S3 {
            bucket: bucket.to_string(),
            prefix: String::new(),
            key: Key::parse(&relative_path(key).ok()?).ok()?,
        });
    }
    let bucket = d.get("data").and_then(|x| x.get("bucket")).and_then(Value::as_str)?;
    let path = relative_path(path).ok()?;
    Some(Source::S3 { bucket: bucket.to_string(), prefix: String::new(), key: Key::parse(&path).ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn plans_both_descriptor_shapes() {
        let f = FolderFormat::parse("yyyy/MM/dd/HH").unwrap();
        let re = regex::Regex::new("^(?:audio/mp3|video/mp4)$").unwrap();
        let doc = r#"{"id":"R1","startTime":"2015-06-24T20:18:31.000+0000","mediaFiles":[
            {"mediaId":"a.mp3","type":"audio/mp3","size":"10","mediaDescriptor":{"storage":"s3://b/p","key":"R1/a.mp3"},"mediaUri":"http://x/play/a.mp3"},
            {"mediaId":"g.mp3","type":"audio/mp3","mediaDescriptor":{"storage":"loc","path":"/prefixA/g2.mp3","data":{"bucket":"bucket2"}},"certAlias":"c1"},
            {"mediaId":"w.wav","type":"audio/wav","mediaUri":"http://x/play/w.wav"},
            {"mediaId":"v.mp4","type":"video/mp4","mediaDescriptor":{"storage":"WebDAV","path":"/x/v.mp4"},"mediaPath":"/recordings/R1/play/v.mp4"},
            {"mediaId":"bad","type":"audio/mp3","mediaDescriptor":{"storage":"s3://b","key":"R1/meta-data.json"}}]}"#;
        let p = plan(raw(doc), &f, &re, false, false, None).unwrap();
        assert_eq!(p.rel_dir, PathBuf::from("2015/06/24/20/R1"));
        let names: Vec<_> = p.files.iter().map(|f| (f.name.as_str(), f.size)).collect();
        assert_eq!(names, [("a.mp3", Some(10)), ("g2.mp3", None), ("v.mp4", None)]);
        assert_eq!(
            p.files[0].source,
            Source::S3 { bucket: "b".into(), prefix: "p".into(), key: Key::parse("R1/a.mp3").unwrap() }
        );
        assert_eq!(
            p.files[1].source,
            Source::S3 { bucket: "bucket2".into(), prefix: String::new(), key: Key::parse("prefixA/g2.mp3").unwrap() }
        );
        assert_eq!(p.files[1].cert_alias, ["c1"]);
        assert_eq!(p.files[2].source, Source::Api { uri: "/recordings/R1/play/v.mp4".into() });
        assert_eq!(p.bad_files.len(), 1);
        let p = plan(raw(doc), &f, &re, false, true, None).unwrap();
        assert_eq!(p.files[0].source, Source::Api { uri: "http://x/play/a.mp3".into() });
        assert!(plan(raw(doc), &f, &re, true, false, None).unwrap().files.is_empty());
        assert!(plan(raw(r#"{"id":"../x","startTime":"2015-06-24T20:18:31Z"}"#), &f, &re, false, false, None).is_err());
    }
}
