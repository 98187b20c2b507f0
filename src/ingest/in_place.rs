//! Recordings registered in place (`reclife ingest --in-place`): their media stays where the
//! metadata's `mediaDescriptor` says it is (an S3 bucket, a WebDAV server), with no copy, and is
//! read and purged there.
//!
//! Where each media file of such a recording lives is catalog state (namespace [`NAMESPACE`],
//! one entry per recording: mediaId → location URI), written before the document, so a
//! document never points at media that cannot be found. [`locate`] answers, for any media file
//! of any recording, which store and key hold it: the in-place object, else the node's media
//! store under `<recording id>/<mediaId>`. Every reader and the purge go through it. A normal
//! ingest or a restore of the recording (which copies its media into the node's store) drops
//! the entry; a purge drops it after it deleted the media.
//!
//! Descriptors, as GIR writes them (001_b1ce2e73cba9b3f4.txt, "Example Metadata" and the MLM
//! archive layout):
//! - `{"storage": "<name>", "path": "prefixA/x.mp3", "data": {"bucket": "bucket2"}}` → S3
//!   object `s3://bucket2/prefixA/x.mp3` (endpoint and credentials from `[s3]` and the AWS
//!   variables);
//! - `{"storage": "WebDAV", "path": "/x.mp4", "data": {"storagePath": "http://h:8085/recordings"}}`
//!   → `webdav://h:8085/recordings/x.mp4` (`https` → `webdavs`; credentials from `[webdav]`);
//! - a `path` that is itself an `http(s)://` URL → that WebDAV object; an `s3://` path → that object.

use crate::config::Context;
use crate::storage::{Key, Location, MediaStore, StorageConfig, StorageError};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

/// Catalog state namespace: recording id → JSON map of mediaId → location URI.
pub const NAMESPACE: &str = crate::catalog::namespaces::IN_PLACE;

/// Where one media file's object is: a store root and a key beneath it.
fn split(uri: &str) -> Result<(Location, Key), StorageError> {
    let bad = |why: &str| StorageError::Config { store: uri.to_string(), message: why.to_string() };
    if let Some(rest) = uri.strip_prefix("s3://") {
        let (bucket, path) = rest.split_once('/').ok_or_else(|| bad("no object path after the bucket"))?;
        return Ok((Location::parse(&format!("s3://{bucket}"))?, Key::parse(path)?));
    }
    let rest = uri
        .strip_prefix("webdav://")
        .map(|r| ("webdav", r))
        .or_else(|| uri.strip_prefix("webdavs://").map(|r| ("webdavs", r)))
        .ok_or_else(|| bad("not an s3:// or webdav(s):// object"))?;
    let u = url::Url::parse(&format!("http://{}", rest.1)).map_err(|e| bad(&e.to_string()))?;
    let host = u.host_str().ok_or_else(|| bad("no host"))?;
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    let mut segs = Vec::new();
    for s in u.path_segments().into_iter().flatten().filter(|s| !s.is_empty()) {
        let d = percent_decode(s).ok_or_else(|| bad("a path segment is not UTF-8"))?;
        segs.push(d);
    }
    if segs.is_empty() {
        return Err(bad("no object path"));
    }
    Ok((Location::parse(&format!("{}://{host}{port}/", rest.0))?, Key::from_names(&segs)?))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The location URI of a media file, from its descriptor in the document `doc`.
pub fn descriptor_uri(doc: &serde_json::Value, media_id: &str) -> Result<String, String> {
    let files = doc.get("mediaFiles").or_else(|| doc.pointer("/recording/mediaFiles"));
    let m = files
        .and_then(|f| f.as_array())
        .and_then(|a| a.iter().find(|m| m.get("mediaId").and_then(|v| v.as_str()) == Some(media_id)))
        .ok_or_else(|| format!("media {media_id}: not in mediaFiles"))?;
    let d = m.get("mediaDescriptor").ok_or_else(|| format!("media {media_id}: no mediaDescriptor"))?;
    let path = d.get("path").and_then(|v| v.as_str()).unwrap_or_default().trim();
    if path.is_empty() {
        return Err(format!("media {media_id}: mediaDescriptor has no path"));
    }
    let data = d.get("data");
    let text = |k: &str| data.and_then(|x| x.get(k)).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty());
    let webdav = |url: &str| -> Option<String> {
        url.strip_prefix("http://")
            .map(|r| format!("webdav://{r}"))
            .or_else(|| url.strip_prefix("https://").map(|r| format!("webdavs://{r}")))
    };
    if path.starts_with("s3://") {
        return Ok(path.to_string());
    }
    if let Some(u) = webdav(path) {
        return Ok(u);
    }
    if let Some(bucket) = text("bucket") {
        return Ok(format!("s3://{bucket}/{}", path.trim_start_matches('/')));
    }
    if let Some(base) = text("storagePath") {
        let base = webdav(base).ok_or_else(|| format!("media {media_id}: storagePath {base} is not an http(s) URL"))?;
        return Ok(format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/')));
    }
    Err(format!("media {media_id}: mediaDescriptor names no bucket, storagePath or URL: cannot register it in place"))
}

/// Opens (once per process and location) the store holding in-place objects.
fn store_for(loc: &Location, config: &StorageConfig) -> Result<Arc<dyn MediaStore>, StorageError> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn MediaStore>>>> = OnceLock::new();
    let key = format!("{loc} {config:?}");
    let mut m = STORES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = m.get(&key) {
        return Ok(s.clone());
    }
    let s = crate::storage::open_with(loc, config)?;
    m.insert(key, s.clone());
    Ok(s)
}

/// True when any recording is registered in place (one indexed read): callers that handle many
/// recordings skip the per-recording lookups when none is.
pub fn any(ctx: &Context) -> Result<bool, StorageError> {
    let page = ctx
        .catalog
        .state_page(NAMESPACE, None, 1)
        .map_err(|e| StorageError::Config { store: "catalog".into(), message: e.to_string() })?;
    Ok(!page.is_empty())
}

/// The in-place locations of a recording's media (empty for a recording in the node's store).
pub fn placed(ctx: &Context, id: &str) -> Result<BTreeMap<String, String>, StorageError> {
    let text = ctx
        .catalog
        .state_get(NAMESPACE, id)
        .map_err(|e| StorageError::Config { store: "catalog".into(), message: e.to_string() })?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
}

/// The store and key holding media `media_id` of recording `id` (blocking: reads the catalog).
pub fn locate(ctx: &Context, id: &str, media_id: &str) -> Result<(Arc<dyn MediaStore>, Key), StorageError> {
    locate_in(ctx, &placed(ctx, id)?, id, media_id)
}

/// [`locate`] with the recording's [`placed`] map already read.
pub fn locate_in(
    ctx: &Context,
    placed: &BTreeMap<String, String>,
    id: &str,
    media_id: &str,
) -> Result<(Arc<dyn MediaStore>, Key), StorageError> {
    if let Some(uri) = placed.get(media_id) {
        let (loc, key) = split(uri)?;
        return Ok((store_for(&loc, &ctx.config.storage())?, key));
    }
    Ok((ctx.media.clone(), Key::media(id, media_id)?))
}

/// [`locate`] from async code.
pub async fn locate_async(ctx: &Context, id: &str, media_id: &str) -> Result<(Arc<dyn MediaStore>, Key), StorageError> {
    let (c, id, m) = (ctx.clone(), id.to_string(), media_id.to_string());
    tokio::task::spawn_blocking(move || locate(&c, &id, &m))
        .await
        .map_err(|e| StorageError::Config { store: "catalog".into(), message: e.to_string() })?
}

/// Registers where a recording's media lives (before its document is stored).
pub fn register(ctx: &Context, id: &str, placed: &BTreeMap<String, String>) -> Result<(), StorageError> {
    let text = serde_json::to_string(placed)
        .map_err(|e| StorageError::Config { store: "catalog".into(), message: e.to_string() })?;
    ctx.catalog
        .state_put(NAMESPACE, id, &text)
        .map_err(|e| StorageError::Config { store: "catalog".into(), message: e.to_string() })
}

/// Forgets a recording's in-place media (its media is now in the node's store, or deleted).
pub fn forget(ctx: &Context, id: &str) -> Result<(), StorageError> {
    ctx.catalog
        .state_delete(NAMESPACE, id)
        .map_err(|e| StorageError::Config { store: "catalog".into(), message: e.to_string() })
}

/// Checks every media file of `doc` where its descriptor says it is, and returns the map to
/// [`register`]: mediaId → location URI. `sizes` are the sizes the document gives, if any.
pub async fn find(
    ctx: &Context,
    doc: &str,
    media: &[(String, Option<u64>)],
) -> Result<BTreeMap<String, String>, String> {
    let v: serde_json::Value = serde_json::from_str(doc).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for (id, size) in media {
        let uri = descriptor_uri(&v, id)?;
        // An object inside the node's own media store would look like an orphan there (its key
        // is not `<recording id>/<mediaId>`) to `reclife check`: refused.
        if let Some(own) = &ctx.config.media_location {
            let own = own.trim_end_matches('/');
            if uri.starts_with(&format!("{own}/")) {
                return Err(format!(
                    "media {id} at {uri}: inside this node's media store ({own}); ingest it without --in-place"
                ));
            }
        }
        let (loc, key) = split(&uri).map_err(|e| format!("media {id}: {e}"))?;
        let store = store_for(&loc, &ctx.config.storage()).map_err(|e| format!("media {id}: {e}"))?;
        let meta = store.head(&key).await.map_err(|e| format!("media {id} at {uri}: {e}"))?;
        if let Some(s) = size {
            if *s != meta.size {
                return Err(format!("media {id} at {uri}: {} bytes there, the metadata says {s}", meta.size));
            }
        }
        out.insert(id.clone(), uri);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_map_to_objects() {
        let doc = serde_json::json!({"mediaFiles": [
            {"mediaId": "a.mp3", "mediaDescriptor": {"storage": "loc", "path": "prefixA/a.mp3", "data": {"bucket": "bucket2"}}},
            {"mediaId": "b.mp4", "mediaDescriptor": {"storage": "WebDAV", "path": "/b.mp4", "data": {"storagePath": "http://h:8085/recordings"}}},
            {"mediaId": "c.mp3", "mediaDescriptor": {"storage": "WebDAV", "path": "https://h/r/c%20d.mp3"}},
            {"mediaId": "d.mp3", "mediaDescriptor": {"storage": "x", "path": "d.mp3"}}
        ]});
        assert_eq!(descriptor_uri(&doc, "a.mp3").unwrap(), "s3://bucket2/prefixA/a.mp3");
        assert_eq!(descriptor_uri(&doc, "b.mp4").unwrap(), "webdav://h:8085/recordings/b.mp4");
        assert_eq!(descriptor_uri(&doc, "c.mp3").unwrap(), "webdavs://h/r/c%20d.mp3");
        assert!(descriptor_uri(&doc, "d.mp3").unwrap_err().contains("cannot register it in place"));
        let (loc, key) = split("s3://bucket2/prefixA/a.mp3").unwrap();
        assert_eq!(
            (loc.to_string().trim_end_matches('/').to_string(), key.as_str()),
            ("s3://bucket2".into(), "prefixA/a.mp3")
        );
        let (_, key) = split("webdavs://h/r/c%20d.mp3").unwrap();
        assert_eq!(key.as_str(), "r/c d.mp3");
        for bad in ["s3://bucket", "s3://b/../x", "webdav://h/", "webdav://h/a%2Fb/x", "ftp://h/x"] {
            assert!(split(bad).is_err(), "{bad} accepted");
        }
    }
}
