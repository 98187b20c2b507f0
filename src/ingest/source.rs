//! Where ingest reads from: a folder tree or a zip archive.

use super::{is_meta_file, IngestError};
use crate::archive::SCREEN_DIR;
use crate::crypto::looks_enveloped;
use crate::model::{archive_path, relative_path, MediaFile};
use crate::storage::{file_stream, ByteStream, Key, MediaStore, ObjectMeta, StorageError};
use bytes::Bytes;
use futures::TryStreamExt;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A metadata file found in a source.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// What error lines show: a path, or `archive.zip!entry`.
    pub display: String,
    /// The metadata file: a path, or an entry name.
    meta: String,
    /// Its folder: a path, or an entry prefix (`""` at the top).
    dir: String,
    /// The call id, when the file sits in `<call>/screen/<id>/`.
    pub parent_call: Option<String>,
}

/// A media file found for a recording.
#[derive(Debug, Clone)]
pub enum MediaRef {
    File { path: PathBuf, size: u64 },
    Zip { index: usize, size: u64 },
}

impl MediaRef {
    pub fn size(&self) -> u64 {
        match self {
            MediaRef::File { size, .. } | MediaRef::Zip { size, .. } => *size,
        }
    }
}

enum Kind {
    Dir,
    Zip { archive: Mutex<zip::ZipArchive<std::fs::File>>, entries: HashMap<String, (usize, u64)> },
}

/// An opened source and the metadata files in it.
pub struct Source {
    path: PathBuf,
    kind: Kind,
    pub candidates: Vec<Candidate>,
}

fn parent_call_of(dir_segments: &[&str]) -> Option<String> {
    match dir_segments {
        [.., call, screen, _sid] if *screen == SCREEN_DIR => Some((*call).to_string()),
        _ => None,
    }
}

/// The largest metadata document read (16 MiB): GIR's are a few KiB; a larger one is hostile
/// or broken, and is refused rather than read into memory.
pub const MAX_META_BYTES: u64 = 16 << 20;

fn too_big(size: u64) -> String {
    format!("metadata document of {size} bytes is larger than the {} MiB limit", MAX_META_BYTES >> 20)
}

/// Reads at most [`MAX_META_BYTES`] (+1 to tell a longer one apart) as UTF-8.
fn read_capped(r: impl Read) -> Result<String, String> {
    let mut s = String::new();
    r.take(MAX_META_BYTES + 1).read_to_string(&mut s).map_err(|e| e.to_string())?;
    if s.len() as u64 > MAX_META_BYTES {
        return Err(too_big(s.len() as u64));
    }
    Ok(s)
}

/// Opens a regular file without following a symlink at its last component.
pub(crate) fn open_regular(path: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("{}: {e} (symlinks are refused)", path.display()))?;
    let md = f.metadata().map_err(|e| e.to_string())?;
    if !md.is_file() {
        return Err(format!("{} is not a regular file; refused", path.display()));
    }
    Ok(f)
}

impl Source {
    /// Opens a folder or a zip archive and lists its metadata files (blocking).
    pub fn open(path: &Path) -> Result<Source, IngestError> {
        let err = |message: String| IngestError::Source { path: path.to_path_buf(), message };
        let md = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if md.is_dir() {
            let mut candidates = Vec::new();
            for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
                let entry = entry.map_err(|e| err(e.to_string()))?;
                let name = entry.file_name().to_string_lossy();
                if !entry.file_type().is_file() || !is_meta_file(&name) {
                    continue;
                }
                let dir = entry.path().parent().unwrap_or(path);
                let segs: Vec<String> = dir.iter().map(|s| s.to_string_lossy().into_owned()).collect();
                let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
                candidates.push(Candidate {
                    display: entry.path().display().to_string(),
                    meta: entry.path().to_string_lossy().into_owned(),
                    dir: dir.to_string_lossy().into_owned(),
                    parent_call: parent_call_of(&segs),
                });
            }
            return Ok(Source { path: path.to_path_buf(), kind: Kind::Dir, candidates });
        }
        if md.is_file() && is_meta_file(&path.file_name().unwrap_or_default().to_string_lossy()) {
            let dir = path.parent().unwrap_or(Path::new("."));
            let c = Candidate {
                display: path.display().to_string(),
                meta: path.to_string_lossy().into_owned(),
                dir: dir.to_string_lossy().into_owned(),
                parent_call: None,
            };
            return Ok(Source { path: dir.to_path_buf(), kind: Kind::Dir, candidates: vec![c] });
        }
        let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        let mut za =
            zip::ZipArchive::new(file).map_err(|e| err(format!("not a folder or a readable zip archive: {e}")))?;
        let mut entries = HashMap::with_capacity(za.len());
        let mut candidates = Vec::new();
        for i in 0..za.len() {
            let f = za.by_index_raw(i).map_err(|e| err(format!("entry {i}: {e}")))?;
            if f.is_dir() {
                continue;
            }
            let name = f.name().map_err(|e| err(format!("entry {i}: {e}")))?.to_string();
            entries.insert(name.clone(), (i, f.size()));
            let (dir, file) = name.rsplit_once('/').unwrap_or(("", name.as_str()));
            if is_meta_file(file) {
                let segs: Vec<&str> = dir.split('/').collect();
                candidates.push(Candidate {
                    display: format!("{}!{name}", path.display()),
                    meta: name.clone(),
                    dir: dir.to_string(),
                    parent_call: parent_call_of(&segs),
                });
            }
        }
        candidates.sort_by(|a, b| a.meta.cmp(&b.meta));
        Ok(Source { path: path.to_path_buf(), kind: Kind::Zip { archive: Mutex::new(za), entries }, candidates })
    }

    /// Reads a metadata file.
    pub async fn read_meta(self: &Arc<Self>, c: &Candidate) -> Result<String, String> {
        match &self.kind {
            Kind::Dir => {
                let path = PathBuf::from(&c.meta);
                tokio::task::spawn_blocking(move || -> Result<String, String> {
                    let f = open_regular(&path)?;
                    let size = f.metadata().map_err(|e| e.to_string())?.len();
                    if size > MAX_META_BYTES {
                        return Err(too_big(size));
                    }
                    read_capped(f)
                })
                .await
                .map_err(|e| e.to_string())?
            }
            Kind::Zip { entries, .. } => {
                let &(index, _) = entries.get(&c.meta).ok_or("entry vanished")?;
                let me = self.clone();
                tokio::task::spawn_blocking(move || -> Result<String, String> {
                    let Kind::Zip { archive, .. } = &me.kind else { unreachable!("checked above") };
                    let mut za = archive.lock().unwrap_or_else(|p| p.into_inner());
                    let f = za.by_index(index).map_err(|e| e.to_string())?;
                    if f.size() > MAX_META_BYTES {
                        return Err(too_big(f.size()));
                    }
                    read_capped(f)
                })
                .await
                .map_err(|e| e.to_string())?
            }
        }
    }

    /// Finds a recording's media file beside its metadata: by mediaId, else by the stored
    /// path (the `useFullPathInMediaFileBackup` layout).
    pub fn find_media(&self, c: &Candidate, m: &MediaFile) -> Result<MediaRef, String> {
        let mut names = vec![m.media_id.clone()];
        if let Some(p) = &m.stored_path {
            // GIR's name (a URI kept whole: `http://host/x`), then the one older reclife wrote.
            for rel in [archive_path(p), relative_path(p)].into_iter().flatten() {
                if !names.contains(&rel) {
                    names.push(rel);
                }
            }
        }
        for n in &names {
            match &self.kind {
                Kind::Dir => {
                    let p = Path::new(&c.dir).join(n);
                    // Never follow a symlink or read a device: a crafted folder could
                    // otherwise copy any file the process can read into the store.
                    if let Ok(md) = std::fs::symlink_metadata(&p) {
                        if md.is_file() {
                            return Ok(MediaRef::File { path: p, size: md.len() });
                        }
                        return Err(format!("{} is not a regular file (a symlink or a device); refused", p.display()));
                    }
                }
                Kind::Zip { entries, .. } => {
                    let name = if c.dir.is_empty() { n.clone() } else { format!("{}/{n}", c.dir) };
                    if let Some(&(index, size)) = entries.get(&name) {
                        return Ok(MediaRef::Zip { index, size });
                    }
                }
            }
        }
        Err(format!("missing media file (looked for {:?} in {})", names, self.where_(c)))
    }

    fn where_(&self, c: &Candidate) -> String {
        match self.kind {
            Kind::Dir => c.dir.clone(),
            Kind::Zip { .. } => format!("{}!{}/", self.path.display(), c.dir),
        }
    }

    /// Streams a media file into the store. Returns what was stored and whether the bytes
    /// are a CMS envelope.
    pub async fn copy_media(
        self: &Arc<Self>,
        r: &MediaRef,
        key: &Key,
        store: &dyn MediaStore,
    ) -> Result<(ObjectMeta, bool), StorageError> {
        let flag = Arc::new(AtomicBool::new(false));
        let body = match r {
            MediaRef::File { path, .. } => {
                let f = tokio::fs::File::from_std(open_regular(path).map_err(|m| StorageError::Io {
                    store: "ingest".into(),
                    op: "open",
                    key: path.display().to_string(),
                    source: std::io::Error::other(m),
                })?);
                file_stream(f)
            }
            MediaRef::Zip { index, .. } => self.zip_stream(*index),
        };
        let meta = store.put(key, sniff(body, flag.clone())).await?;
        if meta.size != r.size() {
            return Err(StorageError::Backend {
                store: store.describe(),
                op: "put",
                key: key.to_string(),
                message: format!("stored {} bytes of {}", meta.size, r.size()),
            });
        }
        Ok((meta, flag.load(Ordering::Relaxed)))
    }

    /// A zip entry as a stream: a blocking reader feeds a bounded channel.
    fn zip_stream(self: &Arc<Self>, index: usize) -> ByteStream {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, StorageError>>(4);
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let Kind::Zip { archive, .. } = &me.kind else { return };
            let fail = |m: String| StorageError::Backend {
                store: "ingest".into(),
                op: "read zip entry",
                key: format!("#{index}"),
                message: m,
            };
            let mut za = archive.lock().unwrap_or_else(|p| p.into_inner());
            let mut f = match za.by_index(index) {
                Ok(f) => f,
                Err(e) => {
                    let _ = tx.blocking_send(Err(fail(e.to_string())));
                    return;
                }
            };
            loop {
                let mut buf = vec![0u8; 256 * 1024];
                match f.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(fail(e.to_string())));
                        return;
                    }
                }
            }
        });
        Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }))
    }
}

/// Passes a stream through, noting whether its first bytes are a CMS envelope.
fn sniff(body: ByteStream, flag: Arc<AtomicBool>) -> ByteStream {
    let mut first = true;
    Box::pin(body.map_ok(move |chunk| {
        if first && !chunk.is_empty() {
            first = false;
            flag.store(looks_enveloped(&chunk), Ordering::Relaxed);
        }
        chunk
    }))
}
