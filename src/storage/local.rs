//! The local filesystem backend: one file per key beneath a root folder.

use super::{ByteStream, Key, MediaStore, ObjectMeta, StorageError};
use async_trait::async_trait;
use futures::TryStreamExt;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

const TMP_DIR: &str = ".reclife-tmp";

/// Media on a local disk. `put` writes a temporary file in the same filesystem, fsyncs it,
/// renames it over the final name and fsyncs the folder, so a crash leaves the old object
/// or the new one, never a torn file.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds `key`.
    pub fn path_of(&self, key: &Key) -> Result<PathBuf, StorageError> {
        if key.segments().next() == Some(TMP_DIR) {
            return Err(StorageError::InvalidKey { key: key.to_string(), why: "reserved name".into() });
        }
        let mut p = self.root.clone();
        for s in key.segments() {
            p.push(s);
        }
        Ok(p)
    }

    async fn write(&self, key: &Key, mut body: ByteStream, create_only: bool) -> Result<ObjectMeta, StorageError> {
        let dest = self.path_of(key)?;
        let tmp_dir = self.root.join(TMP_DIR);
        tokio::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tmp_dir)
            .await
            .map_err(|e| self.io("create folder", key, e))?;
        let tmp = tempfile::Builder::new()
            .prefix("put-")
            .tempfile_in(&tmp_dir)
            .map_err(|e| self.io("create temporary file", key, e))?;
        let (std_file, tmp_path) = tmp.into_parts();
        let mut f = tokio::fs::File::from_std(std_file);
        let mut size = 0u64;
        let written: Result<(), StorageError> = async {
            while let Some(chunk) = body.try_next().await? {
                f.write_all(&chunk).await.map_err(|e| self.io("write", key, e))?;
                size += chunk.len() as u64;
            }
            f.flush().await.map_err(|e| self.io("flush", key, e))?;
            f.sync_all().await.map_err(|e| self.io("fsync", key, e))?;
            Ok(())
        }
        .await;
        // On error the TempPath drops and removes the temporary file.
        written?;
        drop(f);
        let parent = dest.parent().expect("a key has at least one segment").to_path_buf();
        let dest2 = dest.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            // A delete of the folder's last other object removes the emptied folder (see
            // `delete`), so between creating the folder and linking into it the folder may be
            // gone again: then it is made anew and the link tried again.
            let mut tmp_path = tmp_path;
            let mut attempts = 0;
            loop {
                std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
                    .create(&parent)?;
                // Create-only: link(2) fails if the name exists, so of racing writers one wins.
                let done = if create_only { tmp_path.persist_noclobber(&dest2) } else { tmp_path.persist(&dest2) };
                match done {
                    Ok(_) => break,
                    Err(e) if e.error.kind() == std::io::ErrorKind::NotFound && attempts < 16 => {
                        attempts += 1;
                        tmp_path = e.path;
                    }
                    Err(e) => return Err(e.error),
                }
            }
            std::fs::File::open(&parent)?.sync_all()
        })
        .await
        .map_err(|e| self.io("rename", key, std::io::Error::other(e)))?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                StorageError::AlreadyExists { store: self.describe(), key: key.to_string() }
            }
            _ => self.io("rename", key, e),
        })?;
        Ok(ObjectMeta::new(key.clone(), size))
    }

    fn io(&self, op: &'static str, key: &Key, source: std::io::Error) -> StorageError {
        if source.kind() == std::io::ErrorKind::NotFound && matches!(op, "open" | "stat" | "remove") {
            return StorageError::NotFound { store: self.describe(), key: key.to_string() };
        }
        StorageError::Io { store: self.describe(), op, key: key.to_string(), source }
    }
}

#[async_trait]
impl MediaStore for LocalStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn local_path(&self, key: &Key) -> Option<PathBuf> {
        self.path_of(key).ok()
    }

    async fn put(&self, key: &Key, body: ByteStream) -> Result<ObjectMeta, StorageError> {
        self.write(key, body, false).await
    }

    async fn put_new(&self, key: &Key, body: ByteStream) -> Result<ObjectMeta, StorageError> {
        self.write(key, body, true).await
    }

    async fn get_range(&self, key: &Key, range: std::ops::Range<u64>) -> Result<ByteStream, StorageError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let p = self.path_of(key)?;
        let mut f = tokio::fs::File::open(&p).await.map_err(|e| self.io("open", key, e))?;
        f.seek(std::io::SeekFrom::Start(range.start)).await.map_err(|e| self.io("seek", key, e))?;
        let store = self.describe();
        let k = key.to_string();
        let s = tokio_util::io::ReaderStream::with_capacity(f.take(range.end.saturating_sub(range.start)), 256 * 1024);
        Ok(Box::pin(s.map_err(move |source| StorageError::Io {
            store: store.clone(),
            op: "read",
            key: k.clone(),
            source,
        })))
    }

    async fn get(&self, key: &Key) -> Result<ByteStream, StorageError> {
        let p = self.path_of(key)?;
        let f = tokio::fs::File::open(&p).await.map_err(|e| self.io("open", key, e))?;
        let store = self.describe();
        let k = key.to_string();
        let s = tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024);
        Ok(Box::pin(s.map_err(move |source| StorageError::Io {
            store: store.clone(),
            op: "read",
            key: k.clone(),
            source,
        })))
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta, StorageError> {
        let p = self.path_of(key)?;
        let md = tokio::fs::metadata(&p).await.map_err(|e| self.io("stat", key, e))?;
        if !md.is_file() {
            return Err(StorageError::NotFound { store: self.describe(), key: key.to_string() });
        }
        Ok(ObjectMeta { key: key.clone(), size: md.len(), modified: md.modified().ok() })
    }

    async fn delete(&self, key: &Key) -> Result<(), StorageError> {
        let p = self.path_of(key)?;
        tokio::fs::remove_file(&p).await.map_err(|e| self.io("remove", key, e))?;
        // Tidy empty folders up to the root; a folder that is not empty stays.
        let mut dir = p.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if d == self.root || tokio::fs::remove_dir(&d).await.is_err() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        Ok(())
    }

    async fn list(&self, prefix: Option<&Key>) -> Result<Vec<ObjectMeta>, StorageError> {
        let root = self.root.clone();
        let start = match prefix {
            Some(k) => self.path_of(k)?,
            None => root.clone(),
        };
        let store = self.describe();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            if !start.exists() {
                return Ok(out);
            }
            let walker = walkdir::WalkDir::new(&start).into_iter().filter_entry(|e| e.file_name() != TMP_DIR);
            for entry in walker {
                let entry = entry.map_err(|e| StorageError::Io {
                    store: store.clone(),
                    op: "list",
                    key: start.display().to_string(),
                    source: e.into(),
                })?;
                if !entry.file_type().is_file() {
                    continue;
                }
                let rel = entry.path().strip_prefix(&root).unwrap_or(entry.path());
                let rel = rel.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/");
                let key = match Key::parse(&rel) {
                    Ok(k) => k,
                    Err(_) => continue, // a stray file no key can name
                };
                let md = entry.metadata().ok();
                let size = md.as_ref().map(|m| m.len()).unwrap_or(0);
                out.push(ObjectMeta { key, size, modified: md.and_then(|m| m.modified().ok()) });
            }
            Ok(out)
        })
        .await
        .map_err(|e| StorageError::Backend {
            store: self.describe(),
            op: "list",
            key: String::new(),
            message: e.to_string(),
        })?
    }
}
