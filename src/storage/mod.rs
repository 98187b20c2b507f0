//! Where media lives: one small async trait, [`MediaStore`], with one implementation per
//! backend (the local filesystem, S3 and WebDAV), and one conformance suite ([`conformance`])
//! that every backend must pass, against real servers for the remote ones.
//!
//! Keys are [`Key`]s: relative paths whose every segment passed
//! [`crate::model::check_name`], so a key built from metadata can never leave the store's root.
//! Guarantees every backend gives: `put` is atomic (a reader sees the old object, or the whole
//! new one, never a part); `put_new` never replaces an object (exactly one of several racing
//! writers wins); `get` streams; `delete` of a missing key is `NotFound`. Remote backends time
//! out every request and retry temporary failures ([`retry`]); an authentication failure is
//! reported at once, naming the location and never a secret.

mod config;
pub mod conformance;
mod key;
mod local;
mod location;
pub mod retry;
mod s3;
mod sync_io;
mod webdav;

pub use config::{NetConfig, S3Config, StorageConfig, WebDavConfig};
pub use key::Key;
pub use local::LocalStore;
pub use location::Location;
pub use s3::{S3Credentials, S3Store};
pub use sync_io::{RangeReader, UploadWriter};
pub use webdav::WebDavStore;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use std::path::Path;
use std::sync::Arc;

/// A stream of byte chunks.
pub type ByteStream = BoxStream<'static, Result<Bytes, StorageError>>;

/// Errors every backend maps into.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{store}: no object at {key}")]
    NotFound { store: String, key: String },
    #[error("{store}: an object already exists at {key}")]
    AlreadyExists { store: String, key: String },
    #[error("{store}: {op} {key}: access refused ({message}); check the credentials for this location")]
    Auth { store: String, op: &'static str, key: String, message: String },
    #[error("{store}: {message}")]
    Config { store: String, message: String },
    #[error("invalid key {key:?}: {why}")]
    InvalidKey { key: String, why: String },
    #[error("invalid location {uri:?}: {why}")]
    InvalidLocation { uri: String, why: String },
    #[error("{store}: {op} {key}: {source}")]
    Io {
        store: String,
        op: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{store}: {op} {key}: {message}")]
    Backend { store: String, op: &'static str, key: String, message: String },
}

/// What a store knows about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: Key,
    pub size: u64,
    /// When the object was last written, where the store says (listings of every backend
    /// do); `None` when unknown. `reclife check` leaves orphans younger than a grace period.
    pub modified: Option<std::time::SystemTime>,
}

impl ObjectMeta {
    /// Metadata of an object whose age is not known.
    pub fn new(key: Key, size: u64) -> ObjectMeta {
        ObjectMeta { key, size, modified: None }
    }

    /// How long ago the object was last written (`None`: unknown; a time in the future is 0).
    pub fn age(&self) -> Option<std::time::Duration> {
        self.modified.map(|t| t.elapsed().unwrap_or_default())
    }
}

/// A media store. Implementations are cheap to share (`Arc<dyn MediaStore>`).
#[async_trait]
pub trait MediaStore: Send + Sync + std::fmt::Debug {
    /// A short description for errors and logs (`file:///var/lib/reclife/media`). Never
    /// contains credentials.
    fn describe(&self) -> String;

    /// Stores `body` under `key`, atomically: the object appears whole or not at all.
    async fn put(&self, key: &Key, body: ByteStream) -> Result<ObjectMeta, StorageError>;

    /// Stores `body` under `key` only if no object is there yet: create-only, atomic. Of
    /// several writers racing for one key exactly one succeeds; the others get
    /// [`StorageError::AlreadyExists`] and leave the winner's object untouched.
    async fn put_new(&self, key: &Key, body: ByteStream) -> Result<ObjectMeta, StorageError>;

    /// Reads the object as a stream.
    async fn get(&self, key: &Key) -> Result<ByteStream, StorageError>;

    /// Reads bytes `range.start .. range.end` of the object (clamped to its size) as a stream.
    async fn get_range(&self, key: &Key, range: std::ops::Range<u64>) -> Result<ByteStream, StorageError>;

    /// Size of the object, or `NotFound`.
    async fn head(&self, key: &Key) -> Result<ObjectMeta, StorageError>;

    /// Removes the object; `NotFound` if there was none.
    async fn delete(&self, key: &Key) -> Result<(), StorageError>;

    /// Every object whose key starts with the segments of `prefix` (all objects for `None`),
    /// in no particular order.
    async fn list(&self, prefix: Option<&Key>) -> Result<Vec<ObjectMeta>, StorageError>;

    /// Removes what writers that died left behind and that no key names: S3 multipart uploads
    /// never completed nor aborted, WebDAV temporaries and claims at the top level, started
    /// more than `older_than` ago. Returns how many. Backups call it before they write.
    async fn clean_up_abandoned(&self, _older_than: std::time::Duration) -> Result<u64, StorageError> {
        Ok(0)
    }

    /// The local file that holds `key`, for backends that keep objects as plain files (the local
    /// disk): lets bulk readers such as backup read it directly. `None` elsewhere.
    fn local_path(&self, _key: &Key) -> Option<std::path::PathBuf> {
        None
    }

    /// Stores a local file. Backends may override this with something faster than streaming.
    async fn put_file(&self, key: &Key, path: &Path) -> Result<ObjectMeta, StorageError> {
        let file = tokio::fs::File::open(path).await.map_err(|source| StorageError::Io {
            store: self.describe(),
            op: "open source file",
            key: path.display().to_string(),
            source,
        })?;
        self.put(key, file_stream(file)).await
    }
}

/// Convenience calls on any store.
#[async_trait]
pub trait MediaStoreExt: MediaStore {
    async fn put_bytes(&self, key: &Key, data: Bytes) -> Result<ObjectMeta, StorageError> {
        self.put(key, Box::pin(futures::stream::once(async move { Ok(data) }))).await
    }

    async fn get_bytes(&self, key: &Key) -> Result<Vec<u8>, StorageError> {
        use futures::TryStreamExt;
        let mut s = self.get(key).await?;
        let mut out = Vec::new();
        while let Some(chunk) = s.try_next().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Copies the object into a local file (created or truncated).
    async fn get_to_file(&self, key: &Key, path: &Path) -> Result<u64, StorageError> {
        use futures::TryStreamExt;
        use tokio::io::AsyncWriteExt;
        let io = |op, source| StorageError::Io { store: self.describe(), op, key: path.display().to_string(), source };
        let mut s = self.get(key).await?;
        // Media out of the store stays owner-only (0600).
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .await
            .map_err(|e| io("create", e))?;
        let mut n = 0u64;
        while let Some(chunk) = s.try_next().await? {
            f.write_all(&chunk).await.map_err(|e| io("write", e))?;
            n += chunk.len() as u64;
        }
        f.flush().await.map_err(|e| io("flush", e))?;
        Ok(n)
    }
}

impl<T: MediaStore + ?Sized> MediaStoreExt for T {}

/// Reads a file as a stream of 256 KiB chunks.
pub fn file_stream(file: tokio::fs::File) -> ByteStream {
    use futures::TryStreamExt;
    let s = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    Box::pin(s.map_err(|source| StorageError::Io { store: "file".into(), op: "read", key: String::new(), source }))
}

/// Opens the store a location URI names, configured from the environment alone (the AWS
/// variables for S3, `WEBDAV_USERNAME`/`WEBDAV_PASSWORD` for WebDAV).
pub fn open(location: &Location) -> Result<Arc<dyn MediaStore>, StorageError> {
    open_with(location, &StorageConfig::default())
}

/// Opens the store a location URI names, with the `[s3]`/`[webdav]` sections of the config
/// (which win over the environment where both say something).
pub fn open_with(location: &Location, config: &StorageConfig) -> Result<Arc<dyn MediaStore>, StorageError> {
    match location {
        Location::File(root) => Ok(Arc::new(LocalStore::new(root.clone()))),
        Location::S3 { bucket, prefix } => Ok(Arc::new(S3Store::open(bucket, prefix, &config.s3)?)),
        Location::WebDav { url } => Ok(Arc::new(WebDavStore::open(url, location, &config.webdav)?)),
    }
}

/// Keeps big transfer buffers (upload parts and download windows of MiBs) out of glibc's heap
/// arenas. With glibc's dynamic mmap threshold, once the first such buffer is freed later ones
/// come from the arenas of whichever threads touch them, and peak RSS grew with the archive size
/// (measured: a 2 GB backup to S3 peaked at 275 MiB, 131 MiB with a fixed threshold). A fixed
/// 256 KiB threshold maps them and gives them back to the system when freed. Call once, at
/// process start, before other threads run.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Splits the location of one object (an archive: `s3://bucket/dir/name.zip`) into the store
/// of its folder and its key there. `None` for a location with no object name (a bucket, a
/// host's root).
pub fn split_object(location: &Location) -> Option<(Location, Key)> {
    match location {
        Location::File(p) => {
            let name = p.file_name()?.to_str()?;
            Some((Location::File(p.parent()?.to_path_buf()), Key::parse(name).ok()?))
        }
        Location::S3 { bucket, prefix } => {
            let (dir, name) = prefix.rsplit_once('/').unwrap_or(("", prefix.as_str()));
            let key = Key::parse(name).ok()?;
            Some((Location::S3 { bucket: bucket.clone(), prefix: dir.to_string() }, key))
        }
        Location::WebDav { url } => {
            let path = url.path().trim_end_matches('/');
            let (dir, name) = path.rsplit_once('/')?;
            let name = url::Url::parse(&format!("http://x/{name}")).ok()?;
            let name = name.path_segments()?.next()?.to_string();
            let key = Key::parse(&webdav_decode(&name)?).ok()?;
            let mut u = url.clone();
            u.set_path(if dir.is_empty() { "/" } else { dir });
            Some((Location::WebDav { url: u }, key))
        }
    }
}

fn webdav_decode(s: &str) -> Option<String> {
    webdav::percent_decode(s)
}

#[cfg(test)]
mod split_tests {
    use super::*;

    #[test]
    fn splits_an_object_location_into_folder_and_name() {
        let (d, k) = split_object(&Location::parse("s3://b/x/y/a.zip").unwrap()).unwrap();
        assert_eq!((d.to_string(), k.as_str()), ("s3://b/x/y".into(), "a.zip"));
        let (d, k) = split_object(&Location::parse("s3://b/a.zip").unwrap()).unwrap();
        assert_eq!((d.to_string(), k.as_str()), ("s3://b".into(), "a.zip"));
        let (d, k) = split_object(&Location::parse("webdav://h:1/dav/a%20b.zip").unwrap()).unwrap();
        assert_eq!((d.to_string(), k.as_str()), ("webdav://h:1/dav".into(), "a b.zip"));
        let (d, k) = split_object(&Location::parse("/var/b/a.zip").unwrap()).unwrap();
        assert_eq!((d.to_string(), k.as_str()), ("file:///var/b".into(), "a.zip"));
        assert!(split_object(&Location::parse("s3://b").unwrap()).is_none());
    }
}
