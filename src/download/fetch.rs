//! Fetching one media file, never twice and never partial.
//!
//! A file already in place with the size the metadata states (or, where it states none, any
//! file: only a complete download is ever renamed into place) is not fetched again. Otherwise
//! the bytes go to `<name>.part` (0600), appended from where an earlier, interrupted run
//! stopped (an S3 ranged GET, or `Range: bytes=n-` to the API), then fsynced and renamed.
//! Recordings are immutable once written, so a resumed file is checked by its final size
//! against the object's; a mismatch drops the `.part` and reports the file.
//!
//! Bounds: a body is never written beyond the size the metadata states (the moment it exceeds
//! it, writing stops, the `.part` goes and the file is reported); a `206` whose `Content-Range`
//! does not start at the byte asked for is not appended: the file is fetched again from its
//! start. A file of unstated size is charged to the disk budget ([`super::budget`]) chunk by
//! chunk and stops at it.

use super::api::Api;
use super::budget::Budget;
use super::layout::PART_SUFFIX;
use super::record::{MediaPlan, Source};
use super::DownloadError;
use crate::storage::{ByteStream, MediaStore, S3Config, S3Store, StorageError};
use futures::TryStreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::io::AsyncWriteExt;

/// What became of one media file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// Already there, complete.
    Present(u64),
    /// Downloaded now (bytes received in this run).
    Downloaded(u64),
}

/// S3 stores by bucket and prefix, opened on first use.
#[derive(Debug)]
pub struct Stores {
    cfg: S3Config,
    open: Mutex<HashMap<(String, String), S3Store>>,
}

impl Stores {
    pub fn new(cfg: S3Config) -> Stores {
        Stores { cfg, open: Mutex::new(HashMap::new()) }
    }

    pub fn get(&self, bucket: &str, prefix: &str) -> Result<S3Store, DownloadError> {
        let mut m = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let k = (bucket.to_string(), prefix.to_string());
        if let Some(s) = m.get(&k) {
            return Ok(s.clone());
        }
        let s = S3Store::open(bucket, prefix, &self.cfg).map_err(storage_fatal)?;
        m.insert(k, s.clone());
        Ok(s)
    }
}

/// A store error that stops the whole run (credentials, configuration), or `None`.
fn storage_fatal(e: StorageError) -> DownloadError {
    match e {
        StorageError::Auth { .. } => DownloadError::Auth(e.to_string()),
        StorageError::Config { .. } => DownloadError::Config(e.to_string()),
        other => DownloadError::Storage(other),
    }
}

/// What of a media file is already on disk: the finished file's size, the `.part`'s.
#[derive(Debug, Clone, Copy, Default)]
pub struct Local {
    pub done: Option<u64>,
    pub part: u64,
}

impl Local {
    /// Looks at `fin` and its `.part` (blocking: two stats).
    pub fn of(fin: &Path) -> Local {
        Local {
            done: std::fs::metadata(fin).ok().map(|m| m.len()),
            part: std::fs::metadata(part_path(fin)).map(|m| m.len()).unwrap_or(0),
        }
    }
}

/// Called with the size of each chunk as it is written.
pub type OnBytes<'a> = dyn Fn(u64) + Send + Sync + 'a;

/// A failure of one file: `Err(fatal)` stops the run, `Ok(reason)` is reported and the run goes on.
pub type FileResult = Result<Result<Fetched, String>, DownloadError>;

/// Fetches `m` into `dir`. `bytes` counts what arrives, as it arrives (for progress).
pub async fn fetch(
    m: &MediaPlan,
    dir: &Path,
    local: Local,
    api: &Api,
    stores: &Stores,
    budget: &Budget,
    bytes: &OnBytes<'_>,
) -> FileResult {
    let fin = dir.join(&m.name);
    if let Some(len) = local.done {
        match m.size {
            Some(s) if s != len => {
                tracing::info!(file = %fin.display(), have = len, want = s, "size differs from the metadata; fetching again")
            }
            _ => return Ok(Ok(Fetched::Present(len))),
        }
    }
    let part = part_path(&fin);
    let mut have = local.part;
    if m.size.is_some_and(|s| have > s) {
        have = 0;
    }
    let (body, restart) = match open(m, have, api, stores).await? {
        Ok(x) => x,
        Err(e) => return Ok(Err(e)),
    };
    if restart {
        have = 0;
    }
    // A small file from the start: gathered in memory, then written, synced and renamed in one
    // blocking call (a dozen trips to the blocking pool fewer per file).
    if have == 0 && m.size.is_some_and(|s| s <= SMALL) {
        let want = m.size.unwrap_or(0);
        let mut buf = Vec::with_capacity(want as usize);
        let mut body = body;
        loop {
            match body.try_next().await {
                Ok(Some(c)) => {
                    bytes(c.len() as u64);
                    buf.extend_from_slice(&c);
                    if buf.len() as u64 > want {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return Ok(Err(e.to_string())),
            }
        }
        if buf.len() as u64 > want {
            return Ok(Err(format!(
                "the source sent more than the {want} bytes the metadata states; stopped and dropped"
            )));
        }
        if buf.len() as u64 != want {
            return Ok(Err(format!("received {} bytes but the metadata states {want}", buf.len())));
        }
        let fin2 = fin.clone();
        tokio::task::spawn_blocking(move || write_whole(&part, &fin2, &buf))
            .await
            .map_err(|e| DownloadError::io(&fin, std::io::Error::other(e)))??;
        return Ok(Ok(Fetched::Downloaded(want)));
    }
    let limit = m.size.map(|s| s.saturating_sub(have));
    // A file of unstated size is charged to the budget as it arrives (a stated one was charged
    // when its recording was admitted).
    let charge = m.size.is_none().then_some(budget);
    let received = match write_part(&part, have, body, limit, charge, bytes).await {
        Ok(n) => n,
        Err(WriteError::Fatal(e)) => return Err(e),
        Err(WriteError::Source(e)) => return Ok(Err(e)),
        Err(WriteError::OverBudget(n)) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Ok(Err(format!(
                "{}: its size is not stated and after {n} bytes it would pass the disk budget of {} bytes; \
                 stopped and dropped",
                super::budget::OVER,
                budget.limit().unwrap_or(0)
            )));
        }
        Err(WriteError::TooLong) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Ok(Err(format!(
                "the source sent more than the {} bytes the metadata states; stopped and dropped",
                m.size.unwrap_or(0)
            )));
        }
    };
    let total = have + received;
    if let Some(s) = m.size {
        if s != total {
            let _ = tokio::fs::remove_file(&part).await;
            return Ok(Err(format!("received {total} bytes but the metadata states {s}")));
        }
    }
    tokio::fs::rename(&part, &fin).await.map_err(|e| DownloadError::io(&fin, e))?;
    Ok(Ok(Fetched::Downloaded(received)))
}

/// Files up to this size are gathered in memory and written in one go (memory: numThreads × this).
const SMALL: u64 = 256 << 10;

/// `.part` (0600), the whole of `data`, fdatasync, rename to `fin`.
fn write_whole(part: &Path, fin: &Path, data: &[u8]) -> Result<(), DownloadError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e| DownloadError::io(part, e);
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(part).map_err(io)?;
    f.write_all(data).and_then(|_| f.sync_data()).map_err(io)?;
    drop(f);
    std::fs::rename(part, fin).map_err(|e| DownloadError::io(fin, e))
}

pub fn part_path(fin: &Path) -> PathBuf {
    let mut s = fin.as_os_str().to_owned();
    s.push(PART_SUFFIX);
    PathBuf::from(s)
}

/// Opens the body from byte `from`; the flag says the source sends the whole object instead.
async fn open(
    m: &MediaPlan,
    from: u64,
    api: &Api,
    stores: &Stores,
) -> Result<Result<(ByteStream, bool), String>, DownloadError> {
    match &m.source {
        Source::S3 { bucket, prefix, key } => {
            let store = stores.get(bucket, prefix)?;
            let r = if from == 0 {
                store.get(key).await
            } else {
                // A resumed read: up to the object's size (an open-ended range is not understood
                // by every S3 server).
                match store.head(key).await {
                    Ok(meta) => store.get_range(key, from..meta.size.max(from)).await,
                    Err(e) => Err(e),
                }
            };
            match r {
                Ok(s) => Ok(Ok((s, false))),
                Err(e @ (StorageError::Auth { .. } | StorageError::Config { .. })) => Err(storage_fatal(e)),
                Err(e) => Ok(Err(e.to_string())),
            }
        }
        Source::Api { uri } => {
            let mut r = api.get(uri, (from > 0).then_some(from)).await?;
            if r.status().as_u16() == 206 && range_start(&r) != Some(from) {
                // Not the bytes asked for: appending them would corrupt the file.
                tracing::warn!(
                    uri = %super::api::redact(uri),
                    asked = from,
                    content_range = ?r.headers().get(reqwest::header::CONTENT_RANGE),
                    "a 206 answer does not start where asked; fetching the whole file again"
                );
                drop(r);
                r = api.get(uri, None).await?;
                if r.status().as_u16() != 200 {
                    return Ok(Err(format!(
                        "{}: HTTP {} to a full read after a 206 with a wrong Content-Range",
                        super::api::redact(uri),
                        r.status().as_u16()
                    )));
                }
                let what = super::api::redact(uri);
                return Ok(Ok((body_stream(r, what), from > 0)));
            }
            let status = r.status().as_u16();
            let restart = match status {
                200 => from > 0,
                206 => false,
                416 => return Ok(Ok((Box::pin(futures::stream::empty()) as ByteStream, false))),
                _ => return Ok(Err(format!("{}: HTTP {status}", super::api::redact(uri)))),
            };
            let what = super::api::redact(uri);
            Ok(Ok((body_stream(r, what), restart)))
        }
    }
}

/// The first byte a `206`'s `Content-Range` (`bytes a-b/n`) says it holds.
fn range_start(r: &reqwest::Response) -> Option<u64> {
    let v = r.headers().get(reqwest::header::CONTENT_RANGE)?.to_str().ok()?;
    let (a, _) = v.trim().strip_prefix("bytes ")?.split_once('-')?;
    a.trim().parse().ok()
}

/// A response's body as a stream of chunks.
fn body_stream(r: reqwest::Response, what: String) -> ByteStream {
    let s = futures::stream::try_unfold(r, move |mut r| {
        let what = what.clone();
        async move {
            match r.chunk().await {
                Ok(Some(c)) => Ok(Some((c, r))),
                Ok(None) => Ok(None),
                Err(e) => {
                    Err(StorageError::Backend { store: "api".into(), op: "read", key: what, message: e.to_string() })
                }
            }
        }
    });
    Box::pin(s)
}

enum WriteError {
    /// The local disk: stops the run.
    Fatal(DownloadError),
    /// The source broke off: this file fails (the `.part` stays for the next run to resume).
    Source(String),
    /// The source sent more than `limit`: nothing past it was written.
    TooLong,
    /// The next chunk would pass the disk budget (bytes written before it).
    OverBudget(u64),
}

/// Appends the body to the `.part` file (truncated to `keep` bytes first), then fsyncs it. A
/// body longer than `limit` stops at the chunk that would pass it (that chunk is not written).
async fn write_part(
    part: &Path,
    keep: u64,
    mut body: ByteStream,
    limit: Option<u64>,
    charge: Option<&Budget>,
    bytes: &OnBytes<'_>,
) -> Result<u64, WriteError> {
    let io = |e| WriteError::Fatal(DownloadError::io(part, e));
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(part)
        .await
        .map_err(io)?;
    f.set_len(keep).await.map_err(io)?;
    use tokio::io::AsyncSeekExt;
    f.seek(std::io::SeekFrom::Start(keep)).await.map_err(io)?;
    // Each write to a tokio file is a trip to the blocking pool: write a MiB at a time.
    let mut f = tokio::io::BufWriter::with_capacity(1 << 20, f);
    let mut n = 0u64;
    let mut failure = None;
    loop {
        match body.try_next().await {
            Ok(Some(chunk)) => {
                if limit.is_some_and(|l| n + chunk.len() as u64 > l) {
                    return Err(WriteError::TooLong);
                }
                if charge.is_some_and(|b| !b.charge(chunk.len() as u64)) {
                    return Err(WriteError::OverBudget(n));
                }
                f.write_all(&chunk).await.map_err(io)?;
                n += chunk.len() as u64;
                bytes(chunk.len() as u64);
            }
            Ok(None) => break,
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    f.flush().await.map_err(io)?;
    f.get_mut().sync_data().await.map_err(io)?;
    match failure {
        Some(e) => Err(WriteError::Source(e)),
        None => Ok(n),
    }
}
