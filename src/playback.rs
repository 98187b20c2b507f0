//! Playback: the playback audit log, and encrypted media opened for playback.
//!
//! **Audit.** Every read of a recording's media through the API (RWS `play` and `content`,
//! whole or by range, and so the pages' players, which point at those paths) is one line of
//! `<data dir>/audit/plays.jsonl`, beside the deletion log (`audit/deletions.jsonl`) and in its
//! shape: one JSON object a line, `time` first, the file 0600 in a 0700 folder, appended under
//! the file's lock (`flock`) with a torn last line cut first, then fsynced. A line says who
//! (the signed-in user), what (recording, type, mediaId), when (the request's arrival, real
//! clock), the outcome, the status answered, the bytes sent, the range served (`bytes a-b/size`)
//! or refused, the key that opened an encrypted file (its label, never key material) and the
//! reason of a failure. Outcomes:
//! - `succeeded`: every byte of the answer was sent;
//! - `failed`: refused or broken (no such media, a store or decryption error, a range outside
//!   the file, a body that broke mid-way);
//! - `requested`: the answer started and the client went away before its last byte (a browser
//!   that seeks or stops often does).
//!
//! [`PlayAudit::record`] is the one way a line is written (the API's media handlers call it);
//! lines are handed to one writer thread, which appends whatever has queued up as one write and
//! one fsync (group commit: fsynced in batches, never a line at a time, and never on a request's
//! path). Dropping the [`PlayAudit`] (the API's state, at shutdown) writes what is queued.
//! [`plays_of`] reads a recording's plays for the pages; `reclife check` reports torn lines
//! ([`broken_play_lines`]).
//!
//! **Encrypted media.** [`open_encrypted`] decrypts a CMS-enveloped media file (attached, or
//! raw ciphertext with the metadata's `pkcs7`) with the node's key store into memory, at most
//! [`MAX_DECRYPTED`] bytes, so that ranges are served from it: nothing plaintext is written to
//! disk. Each request decrypts again (AES-NI: a 10 MB call takes a few milliseconds), so memory
//! is held only while an answer is sent. [`key_of`] names the key that opens a file by reading
//! only the envelope's head.

use crate::config::Context;
use crate::crypto::{CryptoError, KeyStore};
use crate::lifecycle::journal;
use crate::model::{Kind, MediaFile};
use crate::storage::{Key, MediaStore, RangeReader, StorageError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

/// The most plaintext one play decrypts into memory (512 MiB); a larger file is refused for
/// playback (`reclife decrypt` opens it to disk).
pub const MAX_DECRYPTED: u64 = 512 << 20;
/// Lines written at most in one append.
const BATCH: usize = 1000;

/// `<data dir>/audit/plays.jsonl`.
pub fn plays_path(ctx: &Context) -> PathBuf {
    ctx.data_dir.join("audit").join("plays.jsonl")
}

/// How a media read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Answered in part: the client went away before the last byte.
    Requested,
    Failed,
    Succeeded,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Requested => "requested",
            Outcome::Failed => "failed",
            Outcome::Succeeded => "succeeded",
        })
    }
}

/// One line of `audit/plays.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayLine {
    /// When the request arrived.
    pub time: DateTime<Utc>,
    pub user: String,
    pub recording: String,
    pub kind: Kind,
    pub media: String,
    pub outcome: Outcome,
    /// The HTTP status answered.
    pub status: u16,
    /// Bytes of media sent.
    pub bytes: u64,
    /// The range served (`bytes 0-99/1000`), or the `Range` header of a refused request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// The key that opened an encrypted file (its key file's stem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl PlayLine {
    /// A line for a request that has just arrived (outcome to be set).
    pub fn new(user: &str, recording: &str, kind: Kind, media: &str) -> PlayLine {
        PlayLine {
            time: Utc::now(),
            user: user.to_string(),
            recording: recording.to_string(),
            kind,
            media: media.to_string(),
            outcome: Outcome::Requested,
            status: 0,
            bytes: 0,
            range: None,
            key: None,
            reason: None,
        }
    }
}

/// The playback audit log's writer: one thread appending queued lines in batches.
#[derive(Debug)]
pub struct PlayAudit {
    path: PathBuf,
    tx: Mutex<Option<mpsc::Sender<PlayLine>>>,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl PlayAudit {
    /// Starts the writer of the log at `path` (created on the first line).
    pub fn start(path: PathBuf) -> Arc<PlayAudit> {
        let (tx, rx) = mpsc::channel::<PlayLine>();
        let p = path.clone();
        let worker = std::thread::Builder::new()
            .name("reclife-play-audit".into())
            .spawn(move || write_loop(&p, rx))
            .map_err(|e| tracing::error!(error = %e, "playback audit: no writer thread; plays are not audited"))
            .ok();
        Arc::new(PlayAudit { path, tx: Mutex::new(Some(tx)), worker: Mutex::new(worker) })
    }

    /// The log's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Audits one media read: queued for the writer, which fsyncs it with the others queued
    /// meanwhile. Never blocks on the disk.
    pub fn record(&self, line: PlayLine) {
        tracing::debug!(user = %line.user, recording = %line.recording, media = %line.media,
            outcome = %line.outcome, bytes = line.bytes, "media read");
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = tx.as_ref() {
            if tx.send(line).is_err() {
                tracing::error!("playback audit: the writer has stopped; a play was not audited");
            }
        }
    }

    /// Writes every queued line and stops the writer (later lines are not audited).
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = w.join();
        }
    }
}

impl Drop for PlayAudit {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_loop(path: &Path, rx: mpsc::Receiver<PlayLine>) {
    let mut batch: Vec<PlayLine> = Vec::new();
    loop {
        if batch.is_empty() {
            match rx.recv() {
                Ok(l) => batch.push(l),
                Err(_) => return,
            }
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(l) => batch.push(l),
                Err(_) => break,
            }
        }
        match append(path, &batch) {
            Ok(()) => batch.clear(),
            Err(e) => {
                // Kept and tried again: a full disk must not lose the record of who played what.
                tracing::error!(file = %path.display(), error = %e, lines = batch.len(),
                    "playback audit: cannot append; trying again");
                std::thread::sleep(std::time::Duration::from_secs(1));
                // Unless the process is stopping (sender gone and nothing else queued).
                if batch.len() >= 100 * BATCH {
                    tracing::error!(lines = batch.len(), "playback audit: giving up on these lines");
                    batch.clear();
                }
            }
        }
    }
}

/// Appends `lines` to the log at `path` as one write, under the file's lock, then fsyncs it
/// (and its folder when the file or folder is new).
fn append(path: &Path, lines: &[PlayLine]) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = path.parent().unwrap_or(Path::new("."));
    let new_dir = !dir.exists();
    if new_dir {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let new_file = !path.exists();
    let mut buf = Vec::new();
    for l in lines {
        serde_json::to_writer(&mut buf, l)?;
        buf.push(b'\n');
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).read(true).mode(0o600).open(path)?;
    f.lock()?;
    journal::cut_torn_tail(&mut f)?;
    f.write_all(&buf)?;
    f.sync_data()?;
    if new_file {
        std::fs::File::open(dir)?.sync_all()?;
    }
    if new_dir {
        if let Some(parent) = dir.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    Ok(())
}

/// The last `limit` plays of `recording` in the log at `path`, newest first. Reads the whole
/// log (one pass, one line in memory at a time).
pub fn plays_of(path: &Path, recording: &str, limit: usize) -> Result<Vec<PlayLine>, PlaybackError> {
    let io = |e| PlaybackError::Io { file: path.to_path_buf(), source: e };
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    f.lock_shared().map_err(io)?;
    let needle = format!("\"recording\":{}", serde_json::Value::String(recording.to_string()));
    let mut out = std::collections::VecDeque::new();
    let mut r = std::io::BufReader::new(f);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(io)? == 0 {
            break;
        }
        if !line.contains(&needle) {
            continue;
        }
        if let Ok(p) = serde_json::from_str::<PlayLine>(&line) {
            if p.recording == recording {
                if out.len() == limit {
                    out.pop_front();
                }
                out.push_back(p);
            }
        }
    }
    Ok(out.into_iter().rev().collect())
}

/// Line numbers (from 1) of lines of the playback log at `path` that are not whole lines.
pub fn broken_play_lines(path: &Path) -> Result<Vec<usize>, crate::lifecycle::LifecycleError> {
    journal::broken_lines::<PlayLine>(path)
}

/// Errors opening media for playback; each names the recording and media file.
#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    #[error("media {media} of recording {recording}: {source}")]
    Storage {
        recording: String,
        media: String,
        #[source]
        source: Box<StorageError>,
    },
    #[error("media {media} of recording {recording} is encrypted and cannot be opened: {source}")]
    Crypto {
        recording: String,
        media: String,
        #[source]
        source: Box<CryptoError>,
    },
    #[error("media {media} of recording {recording} is encrypted and this node has no key store: {why}")]
    NoKeys { recording: String, media: String, why: String },
    #[error("{file}: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("playback task: {0}")]
    Task(String),
}

/// True when the media file is stored enveloped (its metadata's `pkcs7`, or ingest found a CMS
/// envelope in its bytes).
pub fn is_encrypted(m: &MediaFile) -> bool {
    m.encrypted || m.pkcs7.is_some()
}

/// A decrypted media file, in memory.
pub struct Opened {
    pub plain: Vec<u8>,
    /// The label of the key that opened it.
    pub key: String,
}

impl std::fmt::Debug for Opened {
    // Never prints the plaintext.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened").field("bytes", &self.plain.len()).field("key", &self.key).finish()
    }
}

/// The keys of this node for playback: `Err` says why there are none.
pub fn load_keys(ctx: &Context) -> Result<Arc<KeyStore>, String> {
    if ctx.config.keys_dir.is_none() {
        return Err("keys_dir is not set in the configuration".into());
    }
    KeyStore::from_config(&ctx.config).map(Arc::new).map_err(|e| e.to_string())
}

/// A blocking reader of the stored media (the file itself on local disk, else ranged reads of
/// `window` bytes) and its stored size.
fn reader(
    store: Arc<dyn MediaStore>,
    key: Key,
    handle: &tokio::runtime::Handle,
    window: u64,
) -> Result<(Box<dyn std::io::Read>, u64), StorageError> {
    if let Some(p) = store.local_path(&key) {
        let f = std::fs::File::open(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                StorageError::NotFound { store: store.describe(), key: key.as_str().to_string() }
            }
            _ => StorageError::Io { store: store.describe(), op: "open", key: key.as_str().to_string(), source: e },
        })?;
        let size = f
            .metadata()
            .map_err(|e| StorageError::Io {
                store: store.describe(),
                op: "stat",
                key: key.as_str().to_string(),
                source: e,
            })?
            .len();
        return Ok((Box::new(f), size));
    }
    let r = RangeReader::open(handle, store, key, window)?;
    let size = r.size();
    Ok((Box::new(r), size))
}

/// Decrypts an encrypted media file of recording `id` into memory with `keys` (see the module
/// docs): at most [`MAX_DECRYPTED`] bytes, nothing written to disk.
pub async fn open_encrypted(
    ctx: &Context,
    keys: Result<Arc<KeyStore>, String>,
    id: &str,
    m: &MediaFile,
) -> Result<Opened, PlaybackError> {
    with_envelope(ctx, keys, id, m, 4 << 20, |keys, r, size, name, mf| {
        // An envelope adds a few KiB at most around its content: refuse a file whose plaintext
        // cannot fit before reading any of it.
        if size > MAX_DECRYPTED + (1 << 20) {
            return Err(CryptoError::TooLarge { file: name.to_path_buf(), max: MAX_DECRYPTED });
        }
        let (plain, key) = keys.decrypt_to_memory(r, name, mf.pkcs7.as_deref(), &mf.cert_alias, MAX_DECRYPTED)?;
        Ok(Opened { plain, key })
    })
    .await
}

/// The label of the key that opens an encrypted media file (only the envelope's head is read).
pub async fn key_of(
    ctx: &Context,
    keys: Result<Arc<KeyStore>, String>,
    id: &str,
    m: &MediaFile,
) -> Result<String, PlaybackError> {
    with_envelope(ctx, keys, id, m, 64 << 10, |keys, r, _, name, mf| {
        keys.which_key(r, name, mf.pkcs7.as_deref(), &mf.cert_alias)
    })
    .await
}

/// What [`open_encrypted`] and [`key_of`] share: the key store (or why there is none), the
/// media file's store and key, and a reader over it (`window` bytes read ahead) handed to `f` off
/// the async workers, with every error naming the recording and the media.
async fn with_envelope<T: Send + 'static>(
    ctx: &Context,
    keys: Result<Arc<KeyStore>, String>,
    id: &str,
    m: &MediaFile,
    window: u64,
    f: impl FnOnce(&KeyStore, Box<dyn std::io::Read>, u64, &std::path::Path, &MediaFile) -> Result<T, CryptoError>
        + Send
        + 'static,
) -> Result<T, PlaybackError> {
    let err_s = |rid: &str, media: &str, source| PlaybackError::Storage {
        recording: rid.to_string(),
        media: media.to_string(),
        source: Box::new(source),
    };
    let keys =
        keys.map_err(|why| PlaybackError::NoKeys { recording: id.to_string(), media: m.media_id.clone(), why })?;
    let (store, key) =
        crate::ingest::in_place::locate_async(ctx, id, &m.media_id).await.map_err(|e| err_s(id, &m.media_id, e))?;
    let handle = tokio::runtime::Handle::current();
    let (rid, mf) = (id.to_string(), m.clone());
    tokio::task::spawn_blocking(move || {
        let name = PathBuf::from(key.as_str().to_string());
        let (r, size) = reader(store, key, &handle, window).map_err(|e| err_s(&rid, &mf.media_id, e))?;
        f(&keys, r, size, &name, &mf).map_err(|source| PlaybackError::Crypto {
            recording: rid.clone(),
            media: mf.media_id.clone(),
            source: Box::new(source),
        })
    })
    .await
    .map_err(|e| PlaybackError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(rec: &str, outcome: Outcome) -> PlayLine {
        let mut l = PlayLine::new("alice", rec, Kind::Voice, "a.mp3");
        l.outcome = outcome;
        l
    }

    /// In memory, the same plaintext as the file decryption, and never more than the bound.
    #[test]
    fn decrypt_to_memory_is_bounded_and_names_the_key() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let keys = KeyStore::load(&root.join("testdata/keys"), None).unwrap();
        let enc = root.join(
            "testdata/recordings/cc1/Environment/2025/06/24/CALLC0000000000000000000000000003/CALLC0000000000000000000000000003_0001.mp3",
        );
        let dir = tempfile::tempdir().unwrap();
        keys.decrypt_file(&enc, &dir.path().join("plain"), None, &[]).unwrap();
        let want = std::fs::read(dir.path().join("plain")).unwrap();
        let (got, key) = keys.decrypt_to_memory(std::fs::File::open(&enc).unwrap(), &enc, None, &[], 1 << 20).unwrap();
        assert!(got == want);
        assert_eq!(key, "recording-key");
        assert_eq!(keys.which_key(std::fs::File::open(&enc).unwrap(), &enc, None, &[]).unwrap(), "recording-key");
        let small = want.len() as u64 - 1;
        let e = keys.decrypt_to_memory(std::fs::File::open(&enc).unwrap(), &enc, None, &[], small).unwrap_err();
        assert!(matches!(e, CryptoError::TooLarge { max, .. } if max == small), "{e}");
        assert!(e.to_string().contains("CALLC0000000000000000000000000003_0001.mp3"), "{e}");
    }

    #[test]
    fn lines_are_batched_fsynced_and_read_back_per_recording() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit").join("plays.jsonl");
        let audit = PlayAudit::start(path.clone());
        for i in 0..30 {
            audit.record(line(if i % 3 == 0 { "R1" } else { "R2" }, Outcome::Succeeded));
        }
        audit.record(line("R1", Outcome::Failed));
        audit.close();
        let plays = plays_of(&path, "R1", 5).unwrap();
        assert_eq!(plays.len(), 5);
        assert_eq!(plays[0].outcome, Outcome::Failed, "newest first");
        assert!(plays.iter().all(|p| p.recording == "R1"));
        assert_eq!(plays_of(&path, "R2", 100).unwrap().len(), 20);
        assert!(broken_play_lines(&path).unwrap().is_empty());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        // A torn last line (a crash mid-write) is reported, and cut by the next append.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"time\":\"20").unwrap();
        assert_eq!(broken_play_lines(&path).unwrap(), vec![32]);
        let audit = PlayAudit::start(path.clone());
        audit.record(line("R3", Outcome::Requested));
        drop(audit);
        assert!(broken_play_lines(&path).unwrap().is_empty());
        assert_eq!(plays_of(&path, "R3", 5).unwrap().len(), 1);
    }
}
