//! Media downloads (`mediaUri`): the stored bytes, streamed, with single-range requests.
//!
//! Only a media file listed in the recording's metadata is served. `Range: bytes=a-b`, `a-` and
//! `-n` give 206 with `Content-Range`; a range past the end gives 416; several ranges at once are
//! answered with the whole object (200), as RFC 9110 allows. The bytes are the stored ones
//! (still enveloped when the media is encrypted): decryption is the caller's, as in GIR.
//!
//! The bytes and their type come from whoever wrote the recording, and they are served on the
//! operators' origin, so a media answer can never be a page: its `Content-Type` is the
//! metadata's only when [`served_media_type`] allows it (audio and video), else
//! `application/octet-stream` with `Content-Disposition: attachment`; every answer carries
//! `X-Content-Type-Options: nosniff` and `Content-Security-Policy: sandbox` (no script runs,
//! whatever a browser makes of the bytes).

use super::super::{ApiFailure, Shared};
use super::check_ccid;
use super::recordings::entry;
use crate::model::Kind;
use crate::storage::{ByteStream, Key, StorageError};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

/// The audio and video types media is served as; anything else is served as
/// `application/octet-stream`, as an attachment.
const SERVED_TYPES: &[&str] = &[
    "audio/mp3",
    "audio/mpeg",
    "audio/mp4",
    "audio/aac",
    "audio/wav",
    "audio/wave",
    "audio/x-wav",
    "audio/vnd.wave",
    "audio/ogg",
    "audio/opus",
    "audio/webm",
    "audio/flac",
    "audio/x-flac",
    "audio/basic",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "video/quicktime",
    "video/x-matroska",
    "video/mpeg",
];

/// The allow-list itself (for the OpenAPI document).
pub(crate) fn served_types() -> &'static [&'static str] {
    SERVED_TYPES
}

/// The one allow-list of the types stored media is served as (the API's media answers, the
/// pages' players): the metadata's `type` (case and parameters aside) when it is a known audio
/// or video type, else `None` (serve `application/octet-stream`, as an attachment).
pub fn served_media_type(mime: &str) -> Option<&'static str> {
    let t = mime.split(';').next().unwrap_or("").trim();
    SERVED_TYPES.iter().copied().find(|a| a.eq_ignore_ascii_case(t))
}

/// The headers of every media answer: its type, how a browser shows it, and the guards.
fn media_headers(h: &mut HeaderMap, mime: &str, media_id: &str) {
    let (kind, disposition) = match served_media_type(mime) {
        Some(t) => (t, "inline".to_string()),
        None => {
            // Media ids are safe names already; the quoted name only ever holds these.
            let plain = media_id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            let d = if plain { format!("attachment; filename=\"{media_id}\"") } else { "attachment".into() };
            ("application/octet-stream", d)
        }
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
}

/// What a `Range` header asks for, against an object of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Want {
    All,
    /// Inclusive byte range.
    Part(u64, u64),
    Unsatisfiable,
}

pub(crate) fn parse_range(h: Option<&str>, size: u64) -> Want {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Want::All };
    if spec.contains(',') {
        return Want::All;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Want::All };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, true) => return Want::All,
        // Suffix: the last n bytes.
        (true, false) => match b.parse::<u64>() {
            Ok(0) => return Want::Unsatisfiable,
            Ok(n) => (size.saturating_sub(n), size.saturating_sub(1)),
            Err(_) => return Want::All,
        },
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else { return Want::All };
            let end = if b.is_empty() {
                size.saturating_sub(1)
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e.min(size.saturating_sub(1)),
                    _ => return Want::All,
                }
            };
            (start, end)
        }
    };
    if size == 0 || parsed.0 >= size {
        Want::Unsatisfiable
    } else {
        Want::Part(parsed.0, parsed.1)
    }
}

/// `len` bytes of the object from `start`: from the file where the store keeps plain files,
/// else with a ranged read.
async fn read_range(
    media: &dyn crate::storage::MediaStore,
    key: &Key,
    start: u64,
    len: u64,
) -> Result<ByteStream, StorageError> {
    if let Some(path) = media.local_path(key) {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let io = |op, source| StorageError::Io { store: media.describe(), op, key: key.as_str().to_string(), source };
        let mut f = tokio::fs::File::open(&path).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                StorageError::NotFound { store: media.describe(), key: key.as_str().to_string() }
            }
            _ => io("open", e),
        })?;
        f.seek(std::io::SeekFrom::Start(start)).await.map_err(|e| io("seek", e))?;
        let store = media.describe();
        let k = key.as_str().to_string();
        let body = tokio_util::io::ReaderStream::with_capacity(f.take(len), 256 * 1024).map(move |r| {
            r.map_err(|source| StorageError::Io { store: store.clone(), op: "read", key: k.clone(), source })
        });
        return Ok(Box::pin(body));
    }
    media.get_range(key, start..start + len).await
}

async fn play(s: Shared, headers: HeaderMap, id: String, media_id: String, kind: Kind) -> Result<Response, ApiFailure> {
    let e = entry(&s, &id, kind).await?;
    let Some(m) = e.recording.media.iter().find(|m| m.media_id == media_id) else {
        return Err(ApiFailure::not_found(format!("recording {id} has no media file {media_id}")));
    };
    Key::media(&id, &media_id)?;
    let (store, key) = crate::ingest::in_place::locate_async(&s.ctx, &id, &media_id).await?;
    let size = store.head(&key).await?.size;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, len) = match parse_range(range, size) {
        Want::All => (StatusCode::OK, 0, size),
        Want::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        Want::Unsatisfiable => {
            let mut r = ApiFailure {
                status: StatusCode::RANGE_NOT_SATISFIABLE,
                code: ApiFailure::BAD_REQUEST,
                message: format!(
                    "media {media_id} of recording {id} has {size} bytes; range {} is outside",
                    range.unwrap_or("")
                ),
            }
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let body = read_range(store.as_ref(), &key, start, len).await?;
    let mut r = Response::new(Body::from_stream(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    media_headers(h, &m.mime, &media_id);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(r)
}

pub async fn play_call(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((id, media)): Path<(String, String)>,
) -> Result<Response, ApiFailure> {
    play(s, headers, id, media, Kind::Voice).await
}

pub async fn play_ops(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((ccid, id, media)): Path<(String, String, String)>,
) -> Result<Response, ApiFailure> {
    check_ccid(&s, &ccid)?;
    play(s, headers, id, media, Kind::Voice).await
}

pub async fn play_screen(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((id, media)): Path<(String, String)>,
) -> Result<Response, ApiFailure> {
    play(s, headers, id, media, Kind::Screen).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Want::All);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Want::Part(0, 3));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Want::Part(5, 9));
        assert_eq!(parse_range(Some("bytes=-4"), 10), Want::Part(6, 9));
        assert_eq!(parse_range(Some("bytes=-40"), 10), Want::Part(0, 9));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Want::Part(8, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Want::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Want::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Want::All);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Want::All);
        assert_eq!(parse_range(Some("items=0-1"), 10), Want::All);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), Want::Unsatisfiable);
    }

    #[test]
    fn only_audio_and_video_types_are_served_as_such() {
        assert_eq!(served_media_type("audio/mp3"), Some("audio/mp3"));
        assert_eq!(served_media_type("Video/MP4; codecs=avc1"), Some("video/mp4"));
        for t in ["text/html", "image/svg+xml", "application/xhtml+xml", "audio/mp3\r\nx: y", "", "video/"] {
            assert_eq!(served_media_type(t), None, "{t}");
        }
        let mut h = HeaderMap::new();
        media_headers(&mut h, "text/html", "x.html");
        assert_eq!(h[header::CONTENT_TYPE], "application/octet-stream");
        assert_eq!(h[header::CONTENT_DISPOSITION], "attachment; filename=\"x.html\"");
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], "sandbox");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}
