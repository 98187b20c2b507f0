//! Media downloads (`mediaUri`): the stored bytes, streamed, with single-range requests.
//!
//! Only a media file listed in the recording's metadata is served. `Range: bytes=a-b`, `a-` and
//! `-n` give 206 with `Content-Range`; a range past the end gives 416; several ranges at once are
//! answered with the whole object (200), as RFC 9110 allows.
//!
//! An encrypted file (a CMS envelope: the metadata's `pkcs7`, or found so at ingest) is
//! decrypted on the server with the node's key store, in memory (at most
//! [`MAX_DECRYPTED`](crate::playback::MAX_DECRYPTED) bytes; nothing plaintext on disk), and its
//! plaintext served with ranges as above; `X-Reclife-Key` names the key that opened it (a
//! label, never key material). Every read, refused or served, is one line of the playback
//! audit log ([`playback`](crate::playback)), written when the answer has ended.
//!
//! The bytes and their type come from whoever wrote the recording, and they are served on the
//! operators' origin, so a media answer can never be a page: its `Content-Type` is the
//! metadata's only when [`served_media_type`] allows it (audio and video), else
//! `application/octet-stream` with `Content-Disposition: attachment`; every answer carries
//! `X-Content-Type-Options: nosniff` and `Content-Security-Policy: sandbox` (no script runs,
//! whatever a browser makes of the bytes).

use super::super::auth::Caller;
use super::super::{ApiFailure, Shared};
use super::check_ccid;
use super::recordings::entry;
use crate::model::Kind;
use crate::playback::{self, Outcome, PlayLine};
use crate::storage::{ByteStream, Key, StorageError};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
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

/// What a media answer sends, before its audit line is finished.
struct Answer {
    status: StatusCode,
    start: u64,
    len: u64,
    size: u64,
    mime: String,
    body: ByteStream,
}

/// The bytes of media `media_id` of recording `id` the request asks for; an encrypted file is
/// opened in memory first (`line.key` says with which key).
async fn answer(
    s: &Shared,
    range: Option<&str>,
    id: &str,
    media_id: &str,
    kind: Kind,
    line: &mut PlayLine,
) -> Result<Answer, Refused> {
    let e = entry(s, id, kind).await?;
    let Some(m) = e.recording.media.iter().find(|m| m.media_id == media_id) else {
        return Err(ApiFailure::not_found(format!("recording {id} has no media file {media_id}")).into());
    };
    Key::media(id, media_id).map_err(ApiFailure::from)?;
    if !playback::is_encrypted(m) {
        let (store, key) = crate::ingest::in_place::locate_async(&s.ctx, id, media_id).await?;
        let size = store.head(&key).await?.size;
        let (status, start, len) = match parse_range(range, size) {
            Want::All => (StatusCode::OK, 0, size),
            Want::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
            Want::Unsatisfiable => return Err(unsatisfiable(id, media_id, size, range)),
        };
        let body = read_range(store.as_ref(), &key, start, len).await?;
        return Ok(Answer { status, start, len, size, mime: m.mime.clone(), body });
    }
    let opened = playback::open_encrypted(&s.ctx, s.keys.clone(), id, m).await.map_err(|e| match e {
        playback::PlaybackError::Storage { ref source, .. } if matches!(**source, StorageError::NotFound { .. }) => {
            ApiFailure::not_found(e.to_string())
        }
        e => ApiFailure::internal(e),
    })?;
    line.key = Some(opened.key);
    let plain = bytes::Bytes::from(opened.plain);
    let size = plain.len() as u64;
    let (status, start, len) = match parse_range(range, size) {
        Want::All => (StatusCode::OK, 0, size),
        Want::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        Want::Unsatisfiable => return Err(unsatisfiable(id, media_id, size, range)),
    };
    let part = plain.slice(start as usize..(start + len) as usize);
    // Handed out in pieces, so the audit counts what was sent.
    let pieces: Vec<Result<bytes::Bytes, StorageError>> =
        (0..part.len()).step_by(PIECE).map(|i| Ok(part.slice(i..(i + PIECE).min(part.len())))).collect();
    Ok(Answer { status, start, len, size, mime: m.mime.clone(), body: Box::pin(futures::stream::iter(pieces)) })
}

/// Decrypted media is sent in pieces of this size.
const PIECE: usize = 256 << 10;

/// A refused read; `size`: the file's, for a 416's `Content-Range: bytes */size`.
struct Refused {
    failure: ApiFailure,
    size: Option<u64>,
}

impl From<ApiFailure> for Refused {
    fn from(failure: ApiFailure) -> Refused {
        Refused { failure, size: None }
    }
}

impl From<StorageError> for Refused {
    fn from(e: StorageError) -> Refused {
        ApiFailure::from(e).into()
    }
}

fn unsatisfiable(id: &str, media_id: &str, size: u64, range: Option<&str>) -> Refused {
    let failure = ApiFailure {
        status: StatusCode::RANGE_NOT_SATISFIABLE,
        code: ApiFailure::BAD_REQUEST,
        message: format!(
            "media {media_id} of recording {id} has {size} bytes; range {} is outside",
            range.unwrap_or("")
        ),
    };
    Refused { failure, size: Some(size) }
}

/// Serves one media read and audits it ([`PlayAudit::record`](crate::playback::PlayAudit::record)):
/// a refusal at once, an answer once its body has ended (or the client has gone).
async fn play(s: Shared, caller: Caller, headers: HeaderMap, id: String, media_id: String, kind: Kind) -> Response {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut line = PlayLine::new(&caller.user, &id, kind, &media_id);
    let a = match answer(&s, range.as_deref(), &id, &media_id, kind, &mut line).await {
        Ok(a) => a,
        Err(Refused { failure: f, size }) => {
            line.outcome = Outcome::Failed;
            line.status = f.status.as_u16();
            line.range = range;
            line.reason = Some(f.message.clone());
            s.plays.record(line);
            let mut r = f.into_response();
            if let Some(v) = size.and_then(|n| HeaderValue::from_str(&format!("bytes */{n}")).ok()) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let content_range = format!("bytes {}-{}/{}", a.start, (a.start + a.len).saturating_sub(1), a.size);
    line.status = a.status.as_u16();
    line.range = (a.status == StatusCode::PARTIAL_CONTENT).then(|| content_range.clone());
    let key = line.key.clone();
    let body = Audited { inner: a.body, sent: 0, expected: a.len, line: Some(line), plays: s.plays.clone() };
    let mut r = Response::new(Body::from_stream(body));
    *r.status_mut() = a.status;
    let h = r.headers_mut();
    media_headers(h, &a.mime, &media_id);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(a.len));
    if a.status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&content_range) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    // Which key opened an encrypted file: its label only.
    if let Some(v) = key.and_then(|k| HeaderValue::from_str(&k).ok()) {
        h.insert("x-reclife-key", v);
    }
    r
}

/// A media body that writes its audit line when it ends: `succeeded` after its last byte,
/// `failed` when the store's stream breaks, `requested` when dropped before its end (the
/// client went away).
struct Audited {
    inner: ByteStream,
    sent: u64,
    expected: u64,
    line: Option<PlayLine>,
    plays: std::sync::Arc<crate::playback::PlayAudit>,
}

impl Audited {
    fn finish(&mut self, outcome: Outcome, reason: Option<String>) {
        if let Some(mut l) = self.line.take() {
            l.outcome = outcome;
            l.bytes = self.sent;
            l.reason = reason;
            self.plays.record(l);
        }
    }
}

impl futures::Stream for Audited {
    type Item = Result<bytes::Bytes, StorageError>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let polled = self.inner.poll_next_unpin(cx);
        match &polled {
            Poll::Ready(Some(Ok(b))) => {
                self.sent += b.len() as u64;
                if self.sent >= self.expected {
                    self.finish(Outcome::Succeeded, None);
                }
            }
            Poll::Ready(Some(Err(e))) => {
                let reason = e.to_string();
                self.finish(Outcome::Failed, Some(reason));
            }
            Poll::Ready(None) => {
                if self.sent >= self.expected {
                    self.finish(Outcome::Succeeded, None);
                } else {
                    let reason = format!("the stored file ended after {} of {} bytes", self.sent, self.expected);
                    self.finish(Outcome::Failed, Some(reason));
                }
            }
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for Audited {
    fn drop(&mut self) {
        self.finish(Outcome::Requested, Some("the client went away before the end".into()));
    }
}

pub async fn play_call(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    headers: HeaderMap,
    Path((id, media)): Path<(String, String)>,
) -> Response {
    play(s, c, headers, id, media, Kind::Voice).await
}

pub async fn play_ops(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    headers: HeaderMap,
    Path((ccid, id, media)): Path<(String, String, String)>,
) -> Response {
    if let Err(f) = check_ccid(&s, &ccid) {
        let mut line = PlayLine::new(&c.user, &id, Kind::Voice, &media);
        line.outcome = Outcome::Failed;
        line.status = f.status.as_u16();
        line.reason = Some(f.message.clone());
        s.plays.record(line);
        return f.into_response();
    }
    play(s, c, headers, id, media, Kind::Voice).await
}

pub async fn play_screen(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    headers: HeaderMap,
    Path((id, media)): Path<(String, String)>,
) -> Response {
    play(s, c, headers, id, media, Kind::Screen).await
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
